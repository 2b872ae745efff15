//! The CreateKey pre-flight through the live path: the built binary's real AWS SDK clients
//! against `tests/live/server.py` (KMS ListKeys and DescribeKey served from seeded keys, paged),
//! and for external key stores the test XKS proxy reached with `--connect-to`. Also `snapshot
//! --keys` and the same pre-flight read back from the snapshot.
//!
//! Needs the project's Python environment: `scripts/setup-venv.sh` (`scripts/test.sh` runs it).

use crate::support::live_server;
use crate::support::live_server::{cloudhsm_ec2, strings};
use crate::support::xks_proxy;

use live_server::{run_cks_doctor, tmp, Run, Scenario, Scenarios, Server};
use serde_json::{json, Value};
use xks_proxy::{ProxyOptions, TestProxy};

const REGION: &str = "us-east-1";
const LOG: &str = "live-keys-server.log";
const CLUSTER: &str = "cluster-jxhlf7644ne";
const STORE: &str = "cks-0a1b2c3d4e5f60789";
const XKS_STORE: &str = "cks-0b7c1a2d3e4f56789";

static SERVER: Scenarios = Scenarios::new(LOG);

fn run_named(name: &str) {
    SERVER.run(SCENARIOS, name);
}

/// An account with the CloudHSM store STORE (CONNECTED, on a cluster with `hsms`), the
/// external key store XKS_STORE (CONNECTED, the test proxy's endpoint) and `keys`; ListKeys
/// answers two keys a page.
fn account(hsms: Value, keys: Value) -> Value {
    json!({
        "region": REGION,
        "options": {"kms_keys_page_size": 2},
        "ec2": cloudhsm_ec2(CLUSTER, true),
        "clusters": [{
            "id": CLUSTER, "state": "ACTIVE", "hsm_type": "hsm2m.medium", "mode": "FIPS",
            "vpc": "vpc", "subnets": {"us-east-1a": "a", "us-east-1b": "b"},
            "security_group": "sg", "hsms": hsms,
            "certificate_file": "rsa2048-pkcs1-sha256-cluster.crt",
        }],
        "key_stores": [
            {"id": STORE, "name": "ExampleKeyStore", "cluster": CLUSTER, "state": "CONNECTED"},
            {"id": XKS_STORE, "name": "ExternalStore", "type": "EXTERNAL_KEY_STORE",
             "state": "CONNECTED", "connectivity": "PUBLIC_ENDPOINT",
             "uri_endpoint": xks_proxy::ENDPOINT, "uri_path": xks_proxy::PATH,
             "access_key_id": xks_proxy::ACCESS_KEY_ID},
        ],
        "keys": keys,
    })
}

fn two_zones() -> Value {
    json!([{"az": "us-east-1a", "state": "ACTIVE"}, {"az": "us-east-1b", "state": "ACTIVE"}])
}

/// Five keys, over three ListKeys pages: one in each store and three of AWS KMS; the external
/// one, last, is backed by `external`.
fn five_keys(external: &str) -> Value {
    json!([
        {"id": "1111aaaa-0000-4000-8000-000000000001"},
        {"id": "1111aaaa-0000-4000-8000-000000000002", "store": STORE},
        {"id": "1111aaaa-0000-4000-8000-000000000003"},
        {"id": "1111aaaa-0000-4000-8000-000000000004", "manager": "AWS"},
        {"id": "1111aaaa-0000-4000-8000-000000000005", "store": XKS_STORE, "xks_key_id": external},
    ])
}

fn base(srv: &Server) -> Vec<String> {
    strings(&[
        "--region",
        REGION,
        "--endpoint-url",
        &srv.url(),
        "--output",
        "json",
        "--timeout",
        "10",
    ])
}

fn secret_file(name: &str) -> String {
    let path = tmp(&format!("live-keys-{name}.secret"));
    std::fs::write(&path, format!("{}\n", xks_proxy::SECRET)).unwrap();
    path.display().to_string()
}

fn proxy_args(proxy: &TestProxy, name: &str) -> Vec<String> {
    let ca = tmp(&format!("live-keys-ca-{name}.pem"));
    std::fs::write(&ca, proxy.root_ca_pem()).unwrap();
    strings(&[
        "--connect-to",
        &proxy.connect_to_arg(),
        "--trust-ca",
        &ca.display().to_string(),
        "--secret-file",
        &secret_file(name),
    ])
}

fn preflight_key(srv: &Server, store: &str, extra: &[String]) -> Run {
    let mut args = base(srv);
    args.extend(strings(&[
        "preflight",
        "key",
        "--custom-key-store-id",
        store,
    ]));
    args.extend(extra.iter().cloned());
    let run = run_cks_doctor(&args, &tmp(LOG));
    assert_eq!(run.report["target"]["operation"], "CreateKey");
    run
}

#[test]
fn live_key_preflight_in_a_cloudhsm_store_reads_every_page_and_no_description() {
    run_named("cloudhsm_store");
}

fn cloudhsm_store(srv: &Server) {
    srv.seed(&account(two_zones(), five_keys("ext-key-0001")));
    let run = preflight_key(srv, STORE, &[]);
    for id in [
        "key.store.exists",
        "key.store.connected",
        "key.cloudhsm.hsms",
        "key.quota",
    ] {
        run.expect(id, "PASS");
    }
    assert!(
        run.message("key.quota").contains("returns 5 KMS keys"),
        "{}",
        run.message("key.quota")
    );
    run.expect_code(0);
    let calls = srv.calls();
    assert_eq!(calls.get("kms:ListKeys"), Some(&3), "{calls:?}");
    assert_eq!(calls.get("kms:DescribeKey"), None, "{calls:?}");
    assert_eq!(
        calls.get("kms:DescribeCustomKeyStores"),
        Some(&1),
        "{calls:?}"
    );
    assert_eq!(
        calls.get("cloudhsm:DescribeClusters"),
        Some(&1),
        "{calls:?}"
    );
}

#[test]
fn live_key_preflight_with_one_hsm_fails_with_cluster_invalid_configuration() {
    run_named("one_hsm");
}

fn one_hsm(srv: &Server) {
    srv.seed(&account(
        json!([{"az": "us-east-1a", "state": "ACTIVE"}]),
        json!([]),
    ));
    let run = preflight_key(srv, STORE, &[]);
    run.expect_fail(
        "key.cloudhsm.hsms",
        Some("CloudHsmClusterInvalidConfigurationException"),
        None,
    );
    run.expect_code(1);
}

#[test]
fn live_key_preflight_finds_the_external_key_in_use_on_the_last_page() {
    run_named("xks_in_use");
}

fn xks_in_use(srv: &Server) {
    srv.seed(&account(two_zones(), five_keys(xks_proxy::KEY_AES)));
    let proxy = TestProxy::start_blocking(ProxyOptions::default());
    let mut extra = strings(&["--xks-key-id", xks_proxy::KEY_AES]);
    extra.extend(proxy_args(&proxy, "in-use"));
    let run = preflight_key(srv, XKS_STORE, &extra);
    run.expect("key.xks.metadata", "PASS");
    run.expect("key.xks.configuration", "PASS");
    run.expect_fail(
        "key.xks.not-in-use",
        Some("XksKeyAlreadyInUseException"),
        None,
    );
    assert!(
        run.message("key.xks.not-in-use")
            .contains("1111aaaa-0000-4000-8000-000000000005"),
        "{}",
        run.message("key.xks.not-in-use")
    );
    run.expect_code(1);
    let calls = srv.calls();
    assert_eq!(calls.get("kms:ListKeys"), Some(&3), "{calls:?}");
    assert_eq!(calls.get("kms:DescribeKey"), Some(&5), "{calls:?}");
    // The proxy was asked with the caller's ARN, as KMS names the caller of CreateKey.
    let caller = srv.control("GET", "state", None)["account"]
        .as_str()
        .unwrap()
        .to_string();
    let seen: Vec<_> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/metadata"))
        .collect();
    assert_eq!(seen.len(), 1);
    let body: Value = serde_json::from_str(&seen[0].body).unwrap();
    assert!(
        body["requestMetadata"]["awsPrincipalArn"]
            .as_str()
            .is_some_and(|a| a.contains(&caller)),
        "{body}"
    );
    // Another external key of the same store passes.
    let mut extra = strings(&["--xks-key-id", xks_proxy::KEY_ENCRYPT_ONLY]);
    extra.extend(proxy_args(&proxy, "other"));
    let run = preflight_key(srv, XKS_STORE, &extra);
    run.expect("key.xks.not-in-use", "PASS");
    run.expect_fail(
        "key.xks.configuration",
        Some("XksKeyInvalidConfigurationException"),
        None,
    );
}

#[test]
fn live_key_preflight_says_which_keys_it_could_not_describe() {
    run_named("describe_denied");
}

fn describe_denied(srv: &Server) {
    srv.seed(&account(
        two_zones(),
        json!([
            {"id": "1111aaaa-0000-4000-8000-000000000001", "store": XKS_STORE, "xks_key_id": "ext-key-0001"},
            {"id": "1111aaaa-0000-4000-8000-000000000002", "deny": true},
        ]),
    ));
    let proxy = TestProxy::start_blocking(ProxyOptions::default());
    let mut extra = strings(&["--xks-key-id", xks_proxy::KEY_AES]);
    extra.extend(proxy_args(&proxy, "denied"));
    let run = preflight_key(srv, XKS_STORE, &extra);
    run.expect("key.xks.not-in-use", "ERROR");
    assert!(
        run.evidence("key.xks.not-in-use")
            .contains("1111aaaa-0000-4000-8000-000000000002"),
        "{}",
        run.evidence("key.xks.not-in-use")
    );
    run.expect("key.xks.configuration", "PASS");
    run.expect_code(3);
}

#[test]
fn live_key_preflight_without_list_keys_permission_is_could_not_check() {
    run_named("list_denied");
}

fn list_denied(srv: &Server) {
    srv.seed(&account(two_zones(), five_keys("ext-key-0001")));
    srv.faults(json!({"action": "kms:ListKeys", "error": "AccessDeniedException", "message": "not allowed"}));
    let proxy = TestProxy::start_blocking(ProxyOptions::default());
    let mut extra = strings(&["--xks-key-id", xks_proxy::KEY_AES]);
    extra.extend(proxy_args(&proxy, "list-denied"));
    let run = preflight_key(srv, XKS_STORE, &extra);
    for id in ["key.quota", "key.xks.not-in-use"] {
        run.expect(id, "ERROR");
        assert!(
            run.message(id).contains("kms:ListKeys"),
            "{id}: {}",
            run.message(id)
        );
    }
    run.expect_code(3);
}

#[test]
fn live_key_preflight_of_a_new_store_runs_the_key_checks_after_the_store_checks() {
    run_named("new_store");
}

fn new_store(srv: &Server) {
    srv.seed(&account(two_zones(), json!([])));
    let proxy = TestProxy::start_blocking(ProxyOptions::default());
    let mut args = base(srv);
    args.extend(strings(&[
        "preflight",
        "xks",
        "--uri-endpoint",
        xks_proxy::ENDPOINT,
        "--uri-path",
        xks_proxy::PATH,
        "--access-key-id",
        xks_proxy::ACCESS_KEY_ID,
        "--name",
        "NewStore",
        "--xks-key-id",
        xks_proxy::KEY_RSA,
    ]));
    args.extend(proxy_args(&proxy, "new"));
    let run = run_cks_doctor(&args, &tmp(LOG));
    assert_eq!(
        run.report["target"]["operation"],
        "CreateCustomKeyStore, then CreateKey"
    );
    run.expect("xks.health.response", "PASS");
    run.expect("key.store.exists", "SKIP");
    run.expect("key.store.connected", "WARN");
    run.expect("key.xks.not-in-use", "SKIP");
    run.expect_fail(
        "key.xks.configuration",
        Some("XksKeyInvalidConfigurationException"),
        None,
    );
    let ids: Vec<&str> = run
        .checks()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    let first_key = ids.iter().position(|i| i.starts_with("key.")).unwrap();
    assert!(
        ids[first_key..].iter().all(|i| i.starts_with("key.")),
        "{ids:?}"
    );
    // No DescribeKey for a store that does not exist yet.
    assert_eq!(srv.calls().get("kms:DescribeKey"), None);
}

#[test]
fn live_snapshot_records_the_keys_and_the_preflight_reads_them_back() {
    run_named("snapshot_keys");
}

fn snapshot_keys(srv: &Server) {
    srv.seed(&account(two_zones(), five_keys(xks_proxy::KEY_AES)));
    let (dir, _) = live_server::record_xks_snapshot(srv, REGION, "live-keys-snapshot", &["--keys"]);
    let listed: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("kms-list-keys.json")).unwrap())
            .unwrap();
    assert_eq!(listed["Keys"].as_array().unwrap().len(), 5);
    let described: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("kms-describe-key.json")).unwrap())
            .unwrap();
    assert_eq!(described.as_array().unwrap().len(), 5);
    // From the snapshot: the same verdict, and no AWS call.
    let before = srv.calls();
    let proxy = TestProxy::start_blocking(ProxyOptions::default());
    let mut args = strings(&[
        "--region",
        REGION,
        "--snapshot",
        &dir.display().to_string(),
        "--output",
        "json",
        "preflight",
        "key",
        "--custom-key-store-id",
        XKS_STORE,
        "--xks-key-id",
        xks_proxy::KEY_AES,
    ]);
    args.extend(proxy_args(&proxy, "snapshot"));
    let run = run_cks_doctor(&args, &tmp(LOG));
    run.expect_fail(
        "key.xks.not-in-use",
        Some("XksKeyAlreadyInUseException"),
        None,
    );
    run.expect("key.xks.metadata", "PASS");
    assert_eq!(srv.calls(), before, "a snapshot run calls no AWS API");
}

#[test]
fn live_diagnose_names_the_keys_a_store_holds_and_what_its_state_does_to_them() {
    run_named("diagnose_store_keys");
}

fn diagnose_store_keys(srv: &Server) {
    let mut seed = account(two_zones(), five_keys("ext-key-0001"));
    seed["key_stores"][0]["state"] = json!("FAILED");
    seed["key_stores"][0]["error_code"] = json!("INTERNAL_ERROR");
    srv.seed(&seed);
    let diagnose = |store: &str| {
        let mut args = base(srv);
        args.extend(strings(&["diagnose", store]));
        run_cks_doctor(&args, &tmp(LOG))
    };
    let run = diagnose(STORE);
    let c = run.expect("account.store-keys", "WARN");
    assert!(c["kms_exceptions"].as_array().unwrap().is_empty(), "{c:#}");
    let m = run.message("account.store-keys");
    assert!(m.contains("FAILED and holds 1 KMS key(s)"), "{m}");
    assert!(
        run.evidence("account.store-keys")
            .contains("1111aaaa-0000-4000-8000-000000000002"),
        "{}",
        run.evidence("account.store-keys")
    );
    // Findings name the account the facts were read in (the caller identity, read for them).
    let mut args = base(srv);
    let at = args.iter().position(|a| a == "json").unwrap();
    args[at] = "asff".into();
    args.extend(strings(&["diagnose", STORE]));
    let out = crate::support::live_server::cks_doctor_command()
        .args(&args)
        .output()
        .unwrap();
    let asff: Value = serde_json::from_slice(&out.stdout).unwrap();
    let account = srv.control("GET", "state", None)["account"]
        .as_str()
        .unwrap()
        .to_string();
    let findings = asff["Findings"].as_array().unwrap();
    assert!(!findings.is_empty());
    for f in findings {
        assert_eq!(f["AwsAccountId"], account.as_str(), "{f:#}");
    }
    assert!(
        srv.calls().get("sts:GetCallerIdentity").is_some(),
        "{:?}",
        srv.calls()
    );
    // A CONNECTED store's keys are usable: PASS, listed.
    let mut args = base(srv);
    args.extend(strings(&["diagnose", XKS_STORE]));
    let run = run_cks_doctor(&args, &tmp(LOG));
    run.expect("account.store-keys", "PASS");
    assert!(
        run.evidence("account.store-keys")
            .contains("external key ext-key-0001"),
        "{}",
        run.evidence("account.store-keys")
    );
}

#[test]
fn live_scan_reads_the_keys_beside_the_stores_facts_not_after_them() {
    run_named("scan_keys_first_wave");
}

/// A scan reads the Region's KMS keys (for account.store-keys) at the start, beside
/// DescribeCustomKeyStores → DescribeClusters → EC2, not once the stores' checks run: with
/// DescribeClusters slowed, ListKeys and DescribeKey reach the server before the EC2 calls that
/// wait for the clusters (an order, not a time, is asserted).
fn scan_keys_first_wave(srv: &Server) {
    srv.seed(&account(two_zones(), five_keys("ext-key-0001")));
    srv.faults(json!({"action": "cloudhsm:DescribeClusters", "delay_ms": 400}));
    let mut args = base(srv);
    args.extend(strings(&["scan", "--regions", REGION]));
    let run = live_server::run_cks_doctor_raw(&args, &tmp(LOG));
    // The external key store's proxy has no DNS name here: its DNS check fails (exit 1).
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let order: Vec<String> = srv
        .control("GET", "requests", None)
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap_or_default().to_string())
        .collect();
    let first = |a: &str| {
        order
            .iter()
            .position(|x| x == a)
            .unwrap_or_else(|| panic!("no {a} in {order:?}"))
    };
    assert!(
        first("kms:DescribeKey") < first("ec2:DescribeSecurityGroups"),
        "{order:?}"
    );
    assert!(
        first("kms:ListKeys") < first("ec2:DescribeSubnets"),
        "{order:?}"
    );
    // The Region's metrics and CloudTrail events too: from the first wave, not after the EC2
    // reads (each would cost the scan one more round trip).
    assert!(
        first("cloudwatch:GetMetricData") < first("ec2:DescribeSubnets"),
        "{order:?}"
    );
    assert!(
        first("cloudtrail:LookupEvents") < first("ec2:DescribeSubnets"),
        "{order:?}"
    );
    let calls = srv.calls();
    assert_eq!(calls.get("kms:ListKeys"), Some(&3), "{calls:?}");
    assert_eq!(
        calls.get("kms:DescribeKey"),
        Some(&5),
        "one DescribeKey per key for both stores: {calls:?}"
    );
}

#[test]
fn live_key_preflight_describes_keys_within_jobs() {
    run_named("describe_within_jobs");
}

/// DescribeKey of many keys runs 8 at a time, and `--jobs N` bounds that too: with every
/// DescribeKey slowed on the server, `--jobs 1` has one call in flight at most, the default
/// several (the server counts the calls it answers at once).
fn describe_within_jobs(srv: &Server) {
    let proxy = TestProxy::start_blocking(ProxyOptions::default());
    let max_in_flight = |jobs: &[&str]| {
        srv.seed(&account(two_zones(), five_keys("ext-key-0001")));
        srv.faults(json!({"action": "kms:DescribeKey", "delay_ms": 150}));
        let mut args = base(srv);
        args.extend(strings(jobs));
        args.extend(strings(&[
            "preflight",
            "key",
            "--custom-key-store-id",
            XKS_STORE,
            "--xks-key-id",
            xks_proxy::KEY_AES,
        ]));
        args.extend(proxy_args(&proxy, "jobs"));
        let run = run_cks_doctor(&args, &tmp(LOG));
        run.expect("key.xks.not-in-use", "PASS");
        assert_eq!(srv.calls().get("kms:DescribeKey"), Some(&5));
        srv.control("GET", "in-flight", None)["max"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(max_in_flight(&["--jobs", "1"]), 1);
    assert!(
        max_in_flight(&[]) > 1,
        "without --jobs the keys are described at once"
    );
}

const SCENARIOS: &[Scenario] = &[
    ("describe_within_jobs", describe_within_jobs),
    ("scan_keys_first_wave", scan_keys_first_wave),
    ("diagnose_store_keys", diagnose_store_keys),
    ("cloudhsm_store", cloudhsm_store),
    ("one_hsm", one_hsm),
    ("xks_in_use", xks_in_use),
    ("describe_denied", describe_denied),
    ("list_denied", list_denied),
    ("new_store", new_store),
    ("snapshot_keys", snapshot_keys),
];
