//! `cks-doctor diagnose` and `cks-doctor scan` through the live path: the built binary's real
//! AWS SDK clients against `tests/live/server.py` (moto extended with CloudHSM v2, KMS custom
//! key stores and VPC endpoint services), and, for external key stores, the test XKS proxy
//! (`tests/it/support/xks_proxy.rs`) reached with `--connect-to`.
//!
//! Every ConnectionErrorCode of requirements §1 is diagnosed on a store seeded FAILED with that
//! code, next to the infrastructure that causes it: the diagnosis names the check that confirms
//! the code (`diagnosis.confirmed_by`), or, where the cause lives inside the HSM or KMS and no
//! API shows it, gives the documented recovery steps (disconnect, fix, connect) and says to
//! follow them. The last diagnose test asserts that all 18 codes were exercised.
//!
//! `scan` covers two Regions of one account (the server's KMS and CloudHSM state is per
//! Region, as in AWS): one report with the stores of both, each with its Region; JUnit and CSV
//! counts agree with the JSON; a Region whose DescribeCustomKeyStores is denied is an error of
//! the scan (exit 3 when nothing fails).
//!
//! One server serves the whole test binary; scenarios run one at a time behind a mutex and each
//! starts from a fresh seed.
//!
//! Needs the project's Python environment: `scripts/setup-venv.sh` (`scripts/test.sh` runs it).

use crate::support::live_server;
use crate::support::live_server::{cloudhsm_ec2, self_rule, strings};
use crate::support::xks_proxy;

use cks_doctor::codes::{CodeKind, CODES};
use live_server::{
    run_cks_doctor, run_cks_doctor_raw, tmp, RawRun, Run, Scenario, Scenarios, Server,
};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use xks_proxy::{CertSetup, Mode, ProxyOptions, TestProxy};

const REGION: &str = "us-east-1";
const OTHER_REGION: &str = "eu-west-1";
const LOG: &str = "live-diagnose-server.log";

/// The cluster behind the CloudHSM store under diagnosis.
const CLUSTER: &str = "cluster-jxhlf7644ne";
/// Clusters behind the account's other CloudHSM key stores (other certificates: no shared
/// backup history with CLUSTER).
const OTHER_A: &str = "cluster-paymentsclstra";
/// The CloudHSM store under diagnosis.
const STORE: &str = "cks-0a1b2c3d4e5f60789";
/// The external key store under diagnosis.
const XKS_STORE: &str = "cks-0b7c1a2d3e4f56789";
const CLUSTER_CERT: &str = "rsa2048-pkcs1-sha256-cluster.crt";

/// The private proxy of a VPC endpoint service store.
const PRIVATE_HOST: &str = "myproxy-private.xks.example.com";
const KMS_PRINCIPAL: &str = "cks.kms.us-east-1.amazonaws.com";
/// A well-formed endpoint service name that no scenario makes.
const MISSING_SERVICE: &str = "com.amazonaws.vpce.us-east-1.vpce-svc-0a1b2c3d4e5f67890";
/// A secret of the right form that is not the proxy's.
const WRONG_SECRET: &str = "Zq9mW3xV7bN1cT5yH8kL2pR6dF0gJ4sA+eU/oI9wEXAMPLEWRONG";

// ------------------------------------------------------------------------------------------------
// the shared server, the scenarios run, the codes exercised

static SERVER: Scenarios = Scenarios::new(LOG);

/// Every ConnectionErrorCode a diagnose scenario confirmed or answered with recovery steps.
fn exercised() -> MutexGuard<'static, BTreeSet<String>> {
    static EXERCISED: OnceLock<Mutex<BTreeSet<String>>> = OnceLock::new();
    EXERCISED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// Runs a scenario once per process (the coverage test reuses scenarios already run), alone on
/// the shared server, timed.
fn run_named(name: &str) {
    SERVER.run(SCENARIOS, name);
}

// ------------------------------------------------------------------------------------------------
// running diagnose

/// `cks-doctor --region us-east-1 --endpoint-url URL --output json diagnose STORE EXTRA...`.
fn diagnose(srv: &Server, store: &str, extra: &[&str]) -> Run {
    let mut args = strings(&[
        "--region",
        REGION,
        "--endpoint-url",
        &srv.url(),
        "--output",
        "json",
        "--timeout",
        "10",
        "diagnose",
        store,
    ]);
    args.extend(strings(extra));
    let run = run_cks_doctor(&args, &tmp(LOG));
    assert!(
        run.report["target"]["source"]
            .as_str()
            .unwrap_or_default()
            .contains(&srv.url()),
        "the facts should come from the live server: {}",
        run.report["target"]
    );
    assert_eq!(run.report["target"]["operation"], "ConnectCustomKeyStore");
    assert_eq!(run.report["target"]["region"], REGION);
    assert_eq!(run.report["diagnosis"]["custom_key_store_id"], store);
    run
}

fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

/// The store is FAILED with `code`, and `check` FAILs predicting it and confirms it.
#[track_caller]
fn confirmed(run: &Run, code: &str, check: &str) {
    let d = &run.report["diagnosis"];
    assert_eq!(d["connection_state"], "FAILED", "{d:#}");
    assert_eq!(d["connection_error_code"], code, "{d:#}");
    let c = run.expect(check, "FAIL");
    assert!(
        ids(&c["connection_error_codes"]).iter().any(|x| x == code),
        "{check} should predict {code}: {c:#}"
    );
    let by = ids(&d["confirmed_by"]);
    assert!(
        by.iter().any(|x| x == check),
        "{code} should be confirmed by {check}: {d:#}\n{}",
        run.summary_lines().join("\n")
    );
    // Every confirming check fails with the code; nothing confirms it by accident.
    for id in &by {
        let c = run.expect(id, "FAIL");
        assert!(
            ids(&c["connection_error_codes"]).iter().any(|x| x == code),
            "{id} confirms {code} without predicting it: {c:#}"
        );
    }
    let text = d["text"].as_str().unwrap();
    assert!(
        text.contains(&format!("FAILED with {code}: confirmed by"))
            && text.contains(check)
            && text.contains(&d["custom_key_store_id"].as_str().unwrap().to_string()),
        "{text}"
    );
    assert!(
        run.report["verdict"]["connection_error_codes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x == code),
        "the verdict should name {code}: {:#}",
        run.report["verdict"]
    );
    assert_recovery_steps(d);
    run.expect_code(1);
    exercised().insert(code.to_string());
}

/// The store is FAILED with `code`, whose cause no API shows: no check confirms it, and the
/// diagnosis gives the documented steps (disconnect ... connect) and says to follow them.
#[track_caller]
fn hidden(run: &Run, code: &str) {
    let d = &run.report["diagnosis"];
    assert_eq!(d["connection_state"], "FAILED", "{d:#}");
    assert_eq!(d["connection_error_code"], code, "{d:#}");
    assert_eq!(ids(&d["confirmed_by"]), Vec::<String>::new(), "{d:#}");
    let text = d["text"].as_str().unwrap();
    assert!(
        text.contains(&format!("FAILED with {code}"))
            && text.contains("no API shows it")
            && text.contains("follow the recovery steps"),
        "{text}"
    );
    assert_recovery_steps(d);
    // What the code means, in AWS's words (from src/codes.rs).
    let meaning = cks_doctor::codes::lookup(code).unwrap().meaning;
    assert_eq!(d["meaning"], meaning);
    exercised().insert(code.to_string());
}

/// `recovery` holds the documented steps in order: disconnect first, connect last.
#[track_caller]
fn assert_recovery_steps(d: &Value) {
    let steps = ids(&d["recovery"]);
    let code = d["connection_error_code"].as_str().unwrap();
    let documented: Vec<String> = cks_doctor::codes::lookup(code)
        .unwrap()
        .fix
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(steps, documented, "{code}: the documented steps");
    let disconnect = steps
        .iter()
        .position(|s| s.contains("DisconnectCustomKeyStore"))
        .unwrap_or_else(|| panic!("{code}: no disconnect step in {steps:#?}"));
    let connect = steps
        .iter()
        .rposition(|s| s.contains("ConnectCustomKeyStore") && !s.contains("Disconnect"))
        .unwrap_or_else(|| panic!("{code}: no connect step in {steps:#?}"));
    assert_eq!(disconnect, 0, "{code}: disconnect comes first: {steps:#?}");
    assert!(
        connect > disconnect,
        "{code}: connect after disconnect: {steps:#?}"
    );
}

// ------------------------------------------------------------------------------------------------
// CloudHSM key stores

fn cluster(id: &str, cert_file: &str) -> Value {
    json!({
        "id": id,
        "state": "ACTIVE",
        "hsm_type": "hsm2m.medium",
        "mode": "FIPS",
        "vpc": "vpc",
        "subnets": {"us-east-1a": "a", "us-east-1b": "b"},
        "security_group": "sg",
        "hsms": [{"az": "us-east-1a", "state": "ACTIVE"}, {"az": "us-east-1b", "state": "ACTIVE"}],
        "certificate_file": cert_file,
    })
}

/// An account whose CloudHSM store STORE (on CLUSTER) is FAILED with `code` (CONNECTED when
/// None); CLUSTER is healthy (ACTIVE, two HSMs in two AZs, subnets with room, the default
/// security group rules, a certificate signed by the store's trust anchor). Another CloudHSM
/// store (another cluster, another certificate) and an external key store are in the account.
fn cloudhsm_account(code: Option<&str>) -> Value {
    let mut store =
        json!({"id": STORE, "name": "ExampleKeyStore", "cluster": CLUSTER, "state": "FAILED"});
    match code {
        Some(c) => store["error_code"] = json!(c),
        None => store["state"] = json!("CONNECTED"),
    }
    json!({
        "region": REGION,
        "ec2": cloudhsm_ec2(CLUSTER, true),
        "clusters": [cluster(CLUSTER, CLUSTER_CERT), cluster(OTHER_A, "ec-p256-sha256-cluster.crt")],
        "key_stores": [
            store,
            {"name": "PaymentsKeyStore", "cluster": OTHER_A, "trust_anchor_file": "ec-p256-sha256-ca.crt", "state": "CONNECTED"},
            {"name": "ExternalKeyStore", "type": "EXTERNAL_KEY_STORE", "connectivity": "VPC_ENDPOINT_SERVICE", "state": "DISCONNECTED"},
        ],
    })
}

fn with(mut v: Value, f: impl FnOnce(&mut Value)) -> Value {
    f(&mut v);
    v
}

fn main_cluster(v: &mut Value) -> &mut Value {
    &mut v["clusters"][0]
}

/// A `cloudhsm-cli user list` file in the test's scratch directory.
fn users_file(name: &str, kmsuser: Option<Value>) -> String {
    let mut users = vec![
        json!({"username": "admin", "role": "admin", "locked": "false", "mfa": [], "quorum": [], "cluster-coverage": "full"}),
    ];
    users.extend(kmsuser);
    let path = tmp(&format!("live-diagnose-users-{name}.json"));
    std::fs::write(
        &path,
        json!({"error_code": 0, "data": {"users": users}}).to_string(),
    )
    .unwrap();
    path.display().to_string()
}

fn kmsuser(locked: bool) -> Value {
    json!({"username": "kmsuser", "role": "crypto-user", "locked": locked.to_string(), "mfa": [], "quorum": [], "cluster-coverage": "full"})
}

#[test]
fn diagnose_cluster_not_found() {
    run_named("cluster_not_found");
}

fn cluster_not_found(srv: &Server) {
    // The store's cluster was deleted: DescribeClusters no longer knows it.
    srv.seed(&with(cloudhsm_account(Some("CLUSTER_NOT_FOUND")), |v| {
        v["clusters"].as_array_mut().unwrap().remove(0);
    }));
    let run = diagnose(srv, STORE, &[]);
    confirmed(&run, "CLUSTER_NOT_FOUND", "cloudhsm.cluster.exists");
    assert_eq!(
        ids(&run.report["diagnosis"]["confirmed_by"]),
        ["cloudhsm.cluster.exists"]
    );
    assert!(run.message("cloudhsm.cluster.exists").contains(CLUSTER));
    // Nothing else about a cluster that does not exist is asked or failed.
    run.expect("cloudhsm.subnets.exist", "SKIP");
    let calls = srv.calls();
    assert!(!calls.contains_key("ec2:DescribeSubnets"), "{calls:?}");
}

#[test]
fn diagnose_insufficient_cloudhsm_hsms() {
    run_named("insufficient_hsms");
}

fn insufficient_hsms(srv: &Server) {
    // Both HSMs are gone or failing: no ACTIVE HSM.
    srv.seed(&with(
        cloudhsm_account(Some("INSUFFICIENT_CLOUDHSM_HSMS")),
        |v| {
            main_cluster(v)["hsms"] = json!([
                {"az": "us-east-1a", "state": "DEGRADED", "state_message": "HSM hardware failure"},
                {"az": "us-east-1b", "state": "DELETED", "eni": false},
            ]);
        },
    ));
    let run = diagnose(srv, STORE, &[]);
    confirmed(&run, "INSUFFICIENT_CLOUDHSM_HSMS", "cloudhsm.hsms.active");
    assert_eq!(
        ids(&run.report["diagnosis"]["confirmed_by"]),
        ["cloudhsm.hsms.active"]
    );
    assert!(run
        .evidence("cloudhsm.hsms.active")
        .contains("DEGRADED — HSM hardware failure"));
    // Not the store's error, but also wrong: listed as another failure.
    assert!(ids(&run.report["diagnosis"]["other_failures"])
        .contains(&"cloudhsm.hsms.two-az".to_string()));
}

#[test]
fn diagnose_insufficient_free_addresses_in_subnet() {
    run_named("free_addresses");
}

fn free_addresses(srv: &Server) {
    // A /28 filled with network interfaces until no address is free.
    let seeded = srv.seed(&with(
        cloudhsm_account(Some("INSUFFICIENT_FREE_ADDRESSES_IN_SUBNET")),
        |v| {
            v["ec2"]["subnets"][0]["cidr"] = json!("10.0.0.0/28");
            v["ec2"]["subnets"][0]["free"] = json!(0);
        },
    ));
    let run = diagnose(srv, STORE, &[]);
    confirmed(
        &run,
        "INSUFFICIENT_FREE_ADDRESSES_IN_SUBNET",
        "cloudhsm.subnets.free-addresses",
    );
    assert_eq!(
        ids(&run.report["diagnosis"]["confirmed_by"]),
        ["cloudhsm.subnets.free-addresses"]
    );
    assert!(run
        .evidence("cloudhsm.subnets.free-addresses")
        .contains(&format!("{}: 0 free address(es)", seeded.id("a"))));
    assert_eq!(
        ids(&run.report["diagnosis"]["other_failures"]),
        Vec::<String>::new()
    );
}

#[test]
fn diagnose_subnet_not_found() {
    run_named("subnet_not_found");
}

fn subnet_not_found(srv: &Server) {
    let seeded = srv.seed(&with(cloudhsm_account(Some("SUBNET_NOT_FOUND")), |v| {
        v["ec2"]["subnets"][1]["deleted"] = json!(true);
    }));
    let run = diagnose(srv, STORE, &[]);
    confirmed(&run, "SUBNET_NOT_FOUND", "cloudhsm.subnets.exist");
    assert_eq!(
        ids(&run.report["diagnosis"]["confirmed_by"]),
        ["cloudhsm.subnets.exist"]
    );
    assert!(run
        .message("cloudhsm.subnets.exist")
        .contains(&format!("{} (us-east-1b) does not exist", seeded.id("b"))));
}

#[test]
fn diagnose_network_errors() {
    run_named("network_errors");
}

fn network_errors(srv: &Server) {
    // The cluster's security group lost its rules for TCP 2223-2225.
    srv.seed(&with(cloudhsm_account(Some("NETWORK_ERRORS")), |v| {
        v["ec2"]["security_groups"][0]["ingress"] = json!([]);
        v["ec2"]["security_groups"][0]["egress"] = json!([]);
    }));
    let run = diagnose(srv, STORE, &[]);
    confirmed(&run, "NETWORK_ERRORS", "cloudhsm.security-group.rules");
    assert!(run
        .message("cloudhsm.security-group.rules")
        .contains("no inbound rule allows TCP 2223, 2224, 2225"));
}

#[test]
fn diagnose_user_locked_out_with_and_without_the_users_file() {
    run_named("user_locked_out");
}

fn user_locked_out(srv: &Server) {
    srv.seed(&cloudhsm_account(Some("USER_LOCKED_OUT")));
    // Without the users file: nothing shows kmsuser; the documented steps.
    let run = diagnose(srv, STORE, &[]);
    hidden(&run, "USER_LOCKED_OUT");
    run.expect("cloudhsm.kmsuser.unlocked", "MANUAL");
    assert!(ids(&run.report["diagnosis"]["not_checked"])
        .contains(&"cloudhsm.kmsuser.unlocked".to_string()));
    // With `cloudhsm-cli user list` showing kmsuser locked: confirmed.
    let users = users_file("locked", Some(kmsuser(true)));
    let run = diagnose(srv, STORE, &["--cloudhsm-users", &users]);
    confirmed(&run, "USER_LOCKED_OUT", "cloudhsm.kmsuser.unlocked");
    assert_eq!(
        ids(&run.report["diagnosis"]["confirmed_by"]),
        ["cloudhsm.kmsuser.unlocked"]
    );
    // ... and showing it unlocked: ruled out, not confirmed.
    let users = users_file("unlocked", Some(kmsuser(false)));
    let run = diagnose(srv, STORE, &["--cloudhsm-users", &users]);
    let d = &run.report["diagnosis"];
    assert_eq!(ids(&d["confirmed_by"]), Vec::<String>::new(), "{d:#}");
    assert_eq!(ids(&d["ruled_out"]), ["cloudhsm.kmsuser.unlocked"], "{d:#}");
}

#[test]
fn diagnose_user_not_found_with_and_without_the_users_file() {
    run_named("user_not_found");
}

fn user_not_found(srv: &Server) {
    srv.seed(&cloudhsm_account(Some("USER_NOT_FOUND")));
    let run = diagnose(srv, STORE, &[]);
    hidden(&run, "USER_NOT_FOUND");
    run.expect("cloudhsm.kmsuser.exists", "MANUAL");
    // A users file without kmsuser: confirmed.
    let users = users_file("no-kmsuser", None);
    let run = diagnose(srv, STORE, &["--cloudhsm-users", &users]);
    confirmed(&run, "USER_NOT_FOUND", "cloudhsm.kmsuser.exists");
    assert_eq!(
        ids(&run.report["diagnosis"]["confirmed_by"]),
        ["cloudhsm.kmsuser.exists"]
    );
}

#[test]
fn diagnose_user_logged_in() {
    run_named("user_logged_in");
}

fn user_logged_in(srv: &Server) {
    srv.seed(&cloudhsm_account(Some("USER_LOGGED_IN")));
    // Even a users file cannot show a session: the documented steps.
    let users = users_file("logged-in", Some(kmsuser(false)));
    let run = diagnose(srv, STORE, &["--cloudhsm-users", &users]);
    hidden(&run, "USER_LOGGED_IN");
    run.expect("cloudhsm.kmsuser.login", "MANUAL");
    assert!(ids(&run.report["diagnosis"]["not_checked"])
        .contains(&"cloudhsm.kmsuser.login".to_string()));
}

#[test]
fn diagnose_invalid_credentials_of_a_cloudhsm_store() {
    run_named("cloudhsm_invalid_credentials");
}

fn cloudhsm_invalid_credentials(srv: &Server) {
    // The kmsuser password lives in the HSM and in KMS: no API shows it.
    srv.seed(&cloudhsm_account(Some("INVALID_CREDENTIALS")));
    let run = diagnose(srv, STORE, &[]);
    hidden(&run, "INVALID_CREDENTIALS");
    let steps = ids(&run.report["diagnosis"]["recovery"]).join("\n");
    assert!(steps.contains("change-password"), "{steps}");
    // The cluster itself is fine.
    assert_eq!(
        ids(&run.report["diagnosis"]["other_failures"]),
        Vec::<String>::new()
    );
}

#[test]
fn diagnose_internal_error() {
    run_named("internal_error");
}

fn internal_error(srv: &Server) {
    srv.seed(&cloudhsm_account(Some("INTERNAL_ERROR")));
    let run = diagnose(srv, STORE, &[]);
    hidden(&run, "INTERNAL_ERROR");
    let d = &run.report["diagnosis"];
    // No check maps to it: nothing ruled out or left unchecked either.
    assert_eq!(ids(&d["ruled_out"]), Vec::<String>::new(), "{d:#}");
    assert_eq!(ids(&d["not_checked"]), Vec::<String>::new(), "{d:#}");
    assert!(ids(&d["recovery"]).last().unwrap().contains("AWS Support"));
}

#[test]
fn diagnose_connected_store_with_one_hsm() {
    run_named("connected_one_hsm");
}

fn connected_one_hsm(srv: &Server) {
    srv.seed(&with(cloudhsm_account(None), |v| {
        main_cluster(v)["hsms"] = json!([{"az": "us-east-1a", "state": "ACTIVE"}]);
    }));
    let run = diagnose(srv, STORE, &[]);
    let d = &run.report["diagnosis"];
    assert_eq!(d["connection_state"], "CONNECTED", "{d:#}");
    assert!(d.get("connection_error_code").is_none(), "{d:#}");
    assert_eq!(ids(&d["confirmed_by"]), Vec::<String>::new());
    assert_eq!(ids(&d["recovery"]), Vec::<String>::new());
    assert!(
        ids(&d["other_failures"]).contains(&"cloudhsm.hsms.two-az".to_string()),
        "{d:#}"
    );
    run.expect("cloudhsm.hsms.active", "PASS");
    let text = d["text"].as_str().unwrap();
    assert!(
        text.contains("is CONNECTED, but") && text.contains("cloudhsm.hsms.two-az"),
        "{text}"
    );
    run.expect_code(1);
}

// ------------------------------------------------------------------------------------------------
// external key stores with a public endpoint: the test proxy, reached with --connect-to

/// An account whose external key store XKS_STORE (public endpoint, the test proxy's endpoint,
/// `path`, its access key id) is FAILED with `code`.
fn xks_account(code: &str, path: &str) -> Value {
    json!({
        "region": REGION,
        "key_stores": [
            {"id": XKS_STORE, "name": "ExternalStore", "type": "EXTERNAL_KEY_STORE",
             "state": "FAILED", "error_code": code, "connectivity": "PUBLIC_ENDPOINT",
             "uri_endpoint": xks_proxy::ENDPOINT, "uri_path": path,
             "access_key_id": xks_proxy::ACCESS_KEY_ID},
            {"name": "PaymentsKeyStore", "cluster": OTHER_A, "trust_anchor_file": "ec-p256-sha256-ca.crt", "state": "CONNECTED"},
        ],
    })
}

fn secret_file(name: &str, secret: &str) -> String {
    let path = tmp(&format!("live-diagnose-{name}.secret"));
    std::fs::write(&path, format!("{secret}\n")).unwrap();
    path.display().to_string()
}

/// `diagnose XKS_STORE` against the proxy: --connect-to, its lab CA, and a secret.
fn diagnose_xks(srv: &Server, proxy: &TestProxy, name: &str, secret: &str) -> Run {
    let ca = tmp(&format!("live-diagnose-ca-{name}.pem"));
    std::fs::write(&ca, proxy.root_ca_pem()).unwrap();
    let run = diagnose(
        srv,
        XKS_STORE,
        &[
            "--connect-to",
            &proxy.connect_to_arg(),
            "--trust-ca",
            &ca.display().to_string(),
            "--secret-file",
            &secret_file(name, secret),
        ],
    );
    assert_eq!(
        run.report["target"]["connect_to"],
        proxy.addr.to_string(),
        "{}",
        run.report["target"]
    );
    run
}

#[test]
fn diagnose_xks_proxy_access_denied() {
    run_named("xks_access_denied");
}

fn xks_access_denied(srv: &Server) {
    srv.seed(&xks_account("XKS_PROXY_ACCESS_DENIED", xks_proxy::PATH));
    let proxy = TestProxy::start_blocking(ProxyOptions::mode(Mode::Error {
        status: 403,
        error_name: "AccessDeniedException",
    }));
    let run = diagnose_xks(srv, &proxy, "access-denied", xks_proxy::SECRET);
    confirmed(&run, "XKS_PROXY_ACCESS_DENIED", "xks.health.response");
    assert_eq!(
        ids(&run.report["diagnosis"]["confirmed_by"]),
        ["xks.health.response"]
    );
    assert!(run.message("xks.health.response").contains("403"));
    // The proxy saw the signed health request KMS would send.
    assert!(proxy
        .requests()
        .iter()
        .any(|r| r.path == xks_proxy::HEALTH_PATH && r.signature_valid == Some(true)));
}

#[test]
fn diagnose_xks_proxy_invalid_configuration() {
    run_named("xks_invalid_configuration");
}

fn xks_invalid_configuration(srv: &Server) {
    // The store's XksProxyUriPath is not the one the proxy serves: 404 InvalidUriPathException.
    let wrong = "/wrong-prefix/kms/xks/v1";
    srv.seed(&xks_account("XKS_PROXY_INVALID_CONFIGURATION", wrong));
    let proxy = TestProxy::start_blocking(ProxyOptions::default());
    let run = diagnose_xks(srv, &proxy, "invalid-configuration", xks_proxy::SECRET);
    confirmed(
        &run,
        "XKS_PROXY_INVALID_CONFIGURATION",
        "xks.health.response",
    );
    assert!(run.message("xks.health.response").contains("404"));
    assert!(run
        .message("xks.health.response")
        .contains("InvalidUriPathException"));
    assert!(proxy
        .requests()
        .iter()
        .any(|r| r.path == format!("{wrong}/health") && r.status == 404));
}

#[test]
fn diagnose_xks_proxy_invalid_response() {
    run_named("xks_invalid_response");
}

fn xks_invalid_response(srv: &Server) {
    srv.seed(&xks_account("XKS_PROXY_INVALID_RESPONSE", xks_proxy::PATH));
    // 200 with a body cut short: not the GetHealthStatus shape.
    let proxy = TestProxy::start_blocking(ProxyOptions::mode(Mode::Body(
        "{\"xksProxyFleetSize\": 2,".into(),
    )));
    let run = diagnose_xks(srv, &proxy, "invalid-response", xks_proxy::SECRET);
    confirmed(&run, "XKS_PROXY_INVALID_RESPONSE", "xks.health.response");
    assert_eq!(
        ids(&run.report["diagnosis"]["confirmed_by"]),
        ["xks.health.response"]
    );
}

#[test]
fn diagnose_xks_proxy_invalid_tls_configuration() {
    run_named("xks_invalid_tls");
}

fn xks_invalid_tls(srv: &Server) {
    srv.seed(&xks_account(
        "XKS_PROXY_INVALID_TLS_CONFIGURATION",
        xks_proxy::PATH,
    ));
    let proxy = TestProxy::start_blocking(ProxyOptions::cert(CertSetup::Expired));
    let run = diagnose_xks(srv, &proxy, "invalid-tls", xks_proxy::SECRET);
    confirmed(
        &run,
        "XKS_PROXY_INVALID_TLS_CONFIGURATION",
        "xks.tls.certificate-validity",
    );
    let d = &run.report["diagnosis"];
    // The other TLS checks pass from here, but what this machine negotiates is not what KMS
    // meets: not ruled out from here (issue 11 #5).
    for id in [
        "xks.tls.version",
        "xks.tls.cipher-suite",
        "xks.tls.certificate-name",
    ] {
        assert!(
            ids(&d["not_ruled_out"]).contains(&id.to_string())
                && !ids(&d["ruled_out"]).contains(&id.to_string()),
            "{id}: {d:#}"
        );
    }
}

#[test]
fn diagnose_xks_proxy_timed_out() {
    run_named("xks_timed_out");
}

fn xks_timed_out(srv: &Server) {
    srv.seed(&xks_account("XKS_PROXY_TIMED_OUT", xks_proxy::PATH));
    let proxy = TestProxy::start_blocking(ProxyOptions::mode(Mode::Slow { delay_ms: 400 }));
    let run = diagnose_xks(srv, &proxy, "timed-out", xks_proxy::SECRET);
    confirmed(&run, "XKS_PROXY_TIMED_OUT", "xks.latency.budget");
    assert!(
        run.report["latency"]["total_ms"].as_f64().unwrap() > 250.0,
        "{:#}",
        run.report["latency"]
    );
    // An answer within the tool's own timeout does not rule out KMS's 250 ms (issue 11 #5).
    run.expect("xks.health.response", "PASS");
    let d = &run.report["diagnosis"];
    assert!(
        ids(&d["not_ruled_out"]).contains(&"xks.health.response".to_string())
            && !ids(&d["ruled_out"]).contains(&"xks.health.response".to_string()),
        "{d:#}"
    );
}

#[test]
fn diagnose_xks_proxy_not_reachable() {
    run_named("xks_not_reachable");
}

fn xks_not_reachable(srv: &Server) {
    srv.seed(&xks_account("XKS_PROXY_NOT_REACHABLE", xks_proxy::PATH));
    // A port nothing listens on: the connection is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let connect_to = format!("{}:443:127.0.0.1:{}", xks_proxy::HOST, closed.port());
    let secret = secret_file("not-reachable", xks_proxy::SECRET);
    let run = diagnose(
        srv,
        XKS_STORE,
        &["--connect-to", &connect_to, "--secret-file", &secret],
    );
    // A public endpoint that refuses connections is a finding, not "could not check".
    confirmed(&run, "XKS_PROXY_NOT_REACHABLE", "xks.connection.tcp");
    assert_eq!(
        ids(&run.report["diagnosis"]["confirmed_by"]),
        ["xks.connection.tcp"]
    );
    let c = run.expect("xks.tls.version", "SKIP");
    assert!(c["message"]
        .as_str()
        .unwrap()
        .contains("blocked by xks.connection.tcp"));
    assert!(
        run.elapsed.as_secs() < 15,
        "a refused connection is quick: {:?}",
        run.elapsed
    );
}

#[test]
fn diagnose_xks_invalid_credentials() {
    run_named("xks_invalid_credentials");
}

fn xks_invalid_credentials(srv: &Server) {
    srv.seed(&xks_account("INVALID_CREDENTIALS", xks_proxy::PATH));
    let proxy = TestProxy::start_blocking(ProxyOptions::default());
    // The secret KMS holds (given here) is not the proxy's: 401.
    let run = diagnose_xks(srv, &proxy, "wrong-secret", WRONG_SECRET);
    confirmed(&run, "INVALID_CREDENTIALS", "xks.health.response");
    let d = &run.report["diagnosis"];
    assert!(
        run.message("xks.health.response")
            .contains("AuthenticationFailedException"),
        "{}",
        run.message("xks.health.response")
    );
    // For an external key store the cause is visible: no "follow the recovery steps" text.
    assert!(!d["text"].as_str().unwrap().contains("no API shows it"));
    // The clocks agree: that cause is ruled out.
    assert!(
        ids(&d["ruled_out"]).contains(&"xks.clock.skew".to_string()),
        "{d:#}"
    );
    // The right secret: health passes, nothing confirms the code.
    let run = diagnose_xks(srv, &proxy, "right-secret", xks_proxy::SECRET);
    run.expect("xks.health.response", "PASS");
    assert_eq!(
        ids(&run.report["diagnosis"]["confirmed_by"]),
        Vec::<String>::new()
    );
    let text = run.report["diagnosis"]["text"].as_str().unwrap();
    assert!(text.contains("no check confirms a cause"), "{text}");
}

// ------------------------------------------------------------------------------------------------
// external key stores behind a VPC endpoint service

/// An account with an endpoint service (Interface, an active NLB in two AZs, KMS allowed, a
/// verified private DNS name) and the external key store XKS_STORE on `service` (a ref, or a
/// literal name), FAILED with `code`.
fn vpce_account(code: &str, service: &str, acceptance_required: bool) -> Value {
    json!({
        "region": REGION,
        "ec2": {
            "vpcs": [{"ref": "vpc", "cidr": "10.0.0.0/16"}],
            "subnets": [
                {"ref": "a", "vpc": "vpc", "cidr": "10.0.0.0/24", "az": "us-east-1a"},
                {"ref": "b", "vpc": "vpc", "cidr": "10.0.1.0/24", "az": "us-east-1b"},
            ],
        },
        "load_balancers": [{"ref": "nlb", "type": "network", "subnets": ["a", "b"]}],
        "endpoint_services": [{
            "ref": "svc",
            "load_balancers": ["nlb"],
            "acceptance_required": acceptance_required,
            "private_dns_name": PRIVATE_HOST,
            "private_dns_state": "verified",
            "principals": [KMS_PRINCIPAL],
        }],
        "key_stores": [
            {"id": XKS_STORE, "name": "PrivateXks", "type": "EXTERNAL_KEY_STORE",
             "state": "FAILED", "error_code": code, "connectivity": "VPC_ENDPOINT_SERVICE",
             "uri_endpoint": format!("https://{PRIVATE_HOST}"), "uri_path": "/kms/xks/v1",
             "access_key_id": xks_proxy::ACCESS_KEY_ID,
             "vpc_endpoint_service_name": service},
        ],
    })
}

/// `diagnose XKS_STORE` with the private proxy sent to a closed port (as unreachable from here
/// as it is outside its VPC, without depending on DNS).
fn diagnose_vpce(srv: &Server, name: &str) -> Run {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let connect_to = format!("{PRIVATE_HOST}:443:127.0.0.1:{}", closed.port());
    let secret = secret_file(name, xks_proxy::SECRET);
    let run = diagnose(
        srv,
        XKS_STORE,
        &["--connect-to", &connect_to, "--secret-file", &secret],
    );
    // The private proxy is "not reachable from here": could not check, not a finding.
    let c = run.expect("xks.connection.tcp", "ERROR");
    assert!(c["message"]
        .as_str()
        .unwrap()
        .contains("not reachable from here"));
    // ... so the proxy checks for the store's code are "could not check", never its cause.
    let d = &run.report["diagnosis"];
    assert!(
        ids(&d["not_checked"]).contains(&"xks.connection.tcp".to_string()) || {
            let code = d["connection_error_code"].as_str().unwrap_or_default();
            !ids(&c["connection_error_codes"]).iter().any(|x| x == code)
        },
        "{d:#}"
    );
    run
}

#[test]
fn diagnose_xks_vpc_endpoint_service_not_found() {
    run_named("vpce_not_found");
}

fn vpce_not_found(srv: &Server) {
    srv.seed(&vpce_account(
        "XKS_VPC_ENDPOINT_SERVICE_NOT_FOUND",
        MISSING_SERVICE,
        false,
    ));
    let run = diagnose_vpce(srv, "vpce-not-found");
    confirmed(
        &run,
        "XKS_VPC_ENDPOINT_SERVICE_NOT_FOUND",
        "xks.vpce.service-exists",
    );
    assert_eq!(
        ids(&run.report["diagnosis"]["confirmed_by"]),
        ["xks.vpce.service-exists"]
    );
    assert!(run
        .message("xks.vpce.service-exists")
        .contains(MISSING_SERVICE));
    // KMS's principal could not be looked up on a missing service: not checked, not ruled out.
    let d = &run.report["diagnosis"];
    assert!(
        ids(&d["not_checked"]).contains(&"xks.vpce.kms-allowed".to_string()),
        "{d:#}"
    );
}

#[test]
fn diagnose_xks_vpc_endpoint_service_invalid_configuration() {
    run_named("vpce_invalid_configuration");
}

fn vpce_invalid_configuration(srv: &Server) {
    // The service makes every connection wait for acceptance: KMS's would never be accepted.
    srv.seed(&vpce_account(
        "XKS_VPC_ENDPOINT_SERVICE_INVALID_CONFIGURATION",
        "${svc}",
        true,
    ));
    let run = diagnose_vpce(srv, "vpce-acceptance");
    confirmed(
        &run,
        "XKS_VPC_ENDPOINT_SERVICE_INVALID_CONFIGURATION",
        "xks.vpce.acceptance",
    );
    assert_eq!(
        ids(&run.report["diagnosis"]["confirmed_by"]),
        ["xks.vpce.acceptance"]
    );
    // The service's other settings are right: ruled out.
    let d = &run.report["diagnosis"];
    for id in [
        "xks.vpce.load-balancer",
        "xks.vpce.two-az",
        "xks.vpce.private-dns",
        "xks.vpce.endpoint-matches-dns",
    ] {
        assert!(
            ids(&d["ruled_out"]).contains(&id.to_string()),
            "{id}: {d:#}"
        );
    }
}

// ------------------------------------------------------------------------------------------------
// every ConnectionErrorCode

#[test]
fn diagnose_every_connection_error_code_is_exercised() {
    for (name, _) in SCENARIOS {
        run_named(name);
    }
    let want: BTreeSet<String> = CODES
        .iter()
        .filter(|c| c.kind == CodeKind::ConnectionErrorCode)
        .map(|c| c.name.to_string())
        .collect();
    assert_eq!(
        want.len(),
        18,
        "requirements §1 lists 18 ConnectionErrorCodes"
    );
    let got = exercised().clone();
    let missing: Vec<&String> = want.difference(&got).collect();
    assert!(
        missing.is_empty(),
        "ConnectionErrorCodes no diagnose test exercised: {missing:?}"
    );
    assert_eq!(
        got, want,
        "codes exercised that requirements §1 does not list"
    );
}

// ------------------------------------------------------------------------------------------------
// scan: two Regions of one account

/// A Region's CloudHSM infrastructure: a VPC, two subnets in two AZs, the cluster security
/// group with its default rules; refs prefixed with `p`.
fn region_ec2(p: &str, region: &str, cidr: u8) -> Value {
    json!({
        "vpcs": [{"ref": format!("{p}vpc"), "cidr": format!("10.{cidr}.0.0/16")}],
        "subnets": [
            {"ref": format!("{p}a"), "vpc": format!("{p}vpc"), "cidr": format!("10.{cidr}.0.0/24"), "az": format!("{region}a")},
            {"ref": format!("{p}b"), "vpc": format!("{p}vpc"), "cidr": format!("10.{cidr}.1.0/24"), "az": format!("{region}b")},
        ],
        "security_groups": [{
            "ref": format!("{p}sg"), "vpc": format!("{p}vpc"),
            "ingress": [self_rule()], "egress": [self_rule()],
        }],
    })
}

fn region_cluster(p: &str, region: &str, id: &str, cert: &str, hsms: usize) -> Value {
    let zones = [format!("{region}a"), format!("{region}b")];
    json!({
        "id": id,
        "vpc": format!("{p}vpc"),
        "subnets": {zones[0].clone(): format!("{p}a"), zones[1].clone(): format!("{p}b")},
        "security_group": format!("{p}sg"),
        "hsms": (0..hsms).map(|i| json!({"az": zones[i % 2], "state": "ACTIVE"})).collect::<Vec<_>>(),
        "certificate_file": cert,
    })
}

const US_HEALTHY: &str = "cks-0000000000000a001";
const US_FAILED: &str = "cks-0000000000000a002";
const EU_HEALTHY: &str = "cks-0000000000000b001";
const EU_FAILED: &str = "cks-0000000000000b002";

/// us-east-1: a healthy CONNECTED store (and, unless `healthy_only`, a FAILED one whose subnet
/// was deleted); eu-west-1: a healthy CONNECTED store and a FAILED one whose cluster has no
/// HSM. Each Region its own VPC, subnets, security group and clusters.
fn two_regions(healthy_only: bool) -> Value {
    let mut us_ec2 = region_ec2("us-", REGION, 0);
    let mut us_clusters = vec![region_cluster(
        "us-",
        REGION,
        "cluster-usclusterhealthy",
        CLUSTER_CERT,
        2,
    )];
    let mut us_stores = vec![
        json!({"id": US_HEALTHY, "name": "UsHealthy", "cluster": "cluster-usclusterhealthy", "state": "CONNECTED"}),
    ];
    if !healthy_only {
        us_ec2["subnets"]
            .as_array_mut()
            .unwrap()
            .extend([
                json!({"ref": "us-c", "vpc": "us-vpc", "cidr": "10.0.2.0/24", "az": "us-east-1a"}),
                json!({"ref": "us-d", "vpc": "us-vpc", "cidr": "10.0.3.0/24", "az": "us-east-1b", "deleted": true}),
            ]);
        let mut c = region_cluster(
            "us-",
            REGION,
            "cluster-usclusterbroken",
            "ec-p256-sha256-cluster.crt",
            2,
        );
        c["subnets"] = json!({"us-east-1a": "us-c", "us-east-1b": "us-d"});
        us_clusters.push(c);
        us_stores.push(json!({"id": US_FAILED, "name": "UsBroken", "cluster": "cluster-usclusterbroken",
            "trust_anchor_file": "ec-p256-sha256-ca.crt", "state": "FAILED", "error_code": "SUBNET_NOT_FOUND"}));
    }
    json!({
        "region": REGION,
        "ec2": us_ec2,
        "clusters": us_clusters,
        "key_stores": us_stores,
        "regions": [{
            "region": OTHER_REGION,
            "ec2": region_ec2("eu-", OTHER_REGION, 1),
            "clusters": [
                region_cluster("eu-", OTHER_REGION, "cluster-euclusterhealthy", "rsa3072-pss-sha384-cluster.crt", 2),
                region_cluster("eu-", OTHER_REGION, "cluster-euclusternohsms", "ec-p384-sha384-cluster.crt", 0),
            ],
            "key_stores": [
                {"id": EU_HEALTHY, "name": "EuHealthy", "cluster": "cluster-euclusterhealthy",
                 "trust_anchor_file": "rsa3072-pss-sha384-ca.crt", "state": "CONNECTED"},
                {"id": EU_FAILED, "name": "EuBroken", "cluster": "cluster-euclusternohsms",
                 "trust_anchor_file": "ec-p384-sha384-ca.crt", "state": "FAILED", "error_code": "INSUFFICIENT_CLOUDHSM_HSMS"},
            ],
        }],
    })
}

fn scan(srv: &Server, output: &str) -> RawRun {
    scan_with(srv, output, &[])
}

fn scan_with(srv: &Server, output: &str, extra: &[&str]) -> RawRun {
    let mut args = strings(extra);
    args.extend(strings(&[
        "--region",
        REGION,
        "--endpoint-url",
        &srv.url(),
        "--output",
        output,
        "--timeout",
        "10",
        "scan",
        "--regions",
        &format!("{REGION},{OTHER_REGION}"),
    ]));
    run_cks_doctor_raw(&args, &tmp(LOG))
}

fn scan_json(srv: &Server) -> (RawRun, Value) {
    let run = scan(srv, "json");
    let v = json_of(&run);
    (run, v)
}

fn json_of(run: &RawRun) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| {
        panic!(
            "{}: not JSON ({e})\n{}\n{}",
            run.args, run.stdout, run.stderr
        )
    })
}

/// "name (id)": how JUnit suites and CSV rows name a diagnosed store.
fn store_label(r: &Value) -> String {
    format!(
        "{} ({})",
        r["diagnosis"]["custom_key_store_name"].as_str().unwrap(),
        r["diagnosis"]["custom_key_store_id"].as_str().unwrap()
    )
}

fn count(summary: &Value, k: &str) -> usize {
    summary[k].as_u64().unwrap() as usize
}

#[test]
fn scan_two_regions_into_one_report() {
    run_named("scan_two_regions");
}

fn scan_two_regions(srv: &Server) {
    let seeded = srv.seed(&two_regions(false));
    // The seed answers which Region holds which store.
    let mut region_of: BTreeMap<String, String> = BTreeMap::new();
    for (region, made) in seeded.0["regions"].as_object().unwrap() {
        for id in ids(&made["key_stores"]) {
            region_of.insert(id, region.clone());
        }
    }
    assert_eq!(region_of.len(), 4, "{:#}", seeded.0);

    let (run, v) = scan_json(srv);
    assert_eq!(run.code, 1, "two stores fail: {}", run.stderr);
    assert_eq!(v["errors"], json!([]), "{:#}", v["errors"]);
    let reports = v["reports"].as_array().unwrap();
    let found: BTreeMap<String, &Value> = reports
        .iter()
        .map(|r| {
            (
                r["diagnosis"]["custom_key_store_id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                r,
            )
        })
        .collect();
    assert_eq!(
        found.keys().cloned().collect::<BTreeSet<_>>(),
        region_of.keys().cloned().collect::<BTreeSet<_>>(),
        "every store of both Regions, once"
    );
    assert_eq!(reports.len(), 4);
    for (id, r) in &found {
        assert_eq!(
            r["target"]["region"],
            region_of[id].as_str(),
            "{id}: {:#}",
            r["target"]
        );
        assert!(
            r["target"]["source"]
                .as_str()
                .unwrap()
                .contains(&format!("AWS APIs in {}", region_of[id])),
            "{id}: {:#}",
            r["target"]
        );
        assert_eq!(r["target"]["operation"], "ConnectCustomKeyStore");
    }
    // Each store was diagnosed with the facts of its own Region.
    let d = |id: &str| &found[id]["diagnosis"];
    assert_eq!(
        ids(&d(US_FAILED)["confirmed_by"]),
        ["cloudhsm.subnets.exist"]
    );
    assert_eq!(ids(&d(EU_FAILED)["confirmed_by"]), ["cloudhsm.hsms.active"]);
    for id in [US_HEALTHY, EU_HEALTHY] {
        assert_eq!(d(id)["connection_state"], "CONNECTED");
        assert_eq!(
            found[id]["summary"]["fail"], 0,
            "{id}: {:#}",
            found[id]["summary"]
        );
        assert_eq!(
            found[id]["summary"]["error"], 0,
            "{id}: {:#}",
            found[id]["summary"]
        );
    }
    // Each Region's facts were read once for all its stores, each call signed for its Region:
    // one call per kind of fact, however many stores (not one DescribeClusters per store and
    // another for the clusters of the other stores).
    for region in [REGION, OTHER_REGION] {
        let calls = srv.calls_in(region);
        for action in [
            "kms:DescribeCustomKeyStores",
            "cloudhsm:DescribeClusters",
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeSubnets",
            "ec2:DescribeRouteTables",
            "ec2:DescribeNetworkAcls",
        ] {
            assert_eq!(
                calls.get(action).copied(),
                Some(1),
                "{region} {action}: {calls:?}"
            );
        }
    }

    // JUnit: one suite per store, counts as in the JSON.
    let junit = scan(srv, "junit");
    assert_eq!(junit.code, run.code, "{}", junit.stderr);
    let parsed = quick_junit::Report::deserialize_from_str(&junit.stdout)
        .unwrap_or_else(|e| panic!("JUnit XML does not parse: {e}\n{}", junit.stdout));
    assert_eq!(parsed.test_suites.len(), reports.len());
    let mut totals = (0, 0, 0);
    for r in reports {
        let label = store_label(r);
        let suite = parsed
            .test_suites
            .iter()
            .find(|s| s.name.as_str() == label)
            .unwrap_or_else(|| panic!("no JUnit suite {label}"));
        let s = &r["summary"];
        let checks = r["checks"].as_array().unwrap().len();
        assert_eq!(suite.tests, checks, "{label}");
        assert_eq!(suite.failures, count(s, "fail"), "{label}");
        assert_eq!(suite.errors, count(s, "error"), "{label}");
        assert_eq!(
            suite.skipped,
            count(s, "skip") + count(s, "manual"),
            "{label}"
        );
        let region = suite
            .properties
            .iter()
            .find(|p| p.name.as_str() == "region")
            .map(|p| p.value.as_str().to_string());
        assert_eq!(region.as_deref(), r["target"]["region"].as_str(), "{label}");
        totals.0 += checks;
        totals.1 += count(s, "fail");
        totals.2 += count(s, "error");
    }
    assert_eq!(parsed.tests, totals.0);
    assert_eq!(parsed.failures, totals.1);
    assert_eq!(parsed.errors, totals.2);

    // CSV: one row per check, statuses per store as in the JSON.
    let csv = scan(srv, "csv");
    assert_eq!(csv.code, run.code, "{}", csv.stderr);
    let mut rd = ::csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(csv.stdout.as_bytes());
    let header: Vec<String> = rd.headers().unwrap().iter().map(String::from).collect();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (store_col, status_col) = (col("store"), col("status"));
    let rows: Vec<Vec<String>> = rd
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    assert_eq!(rows.len(), totals.0, "one row per check");
    for r in reports {
        let label = store_label(r);
        for (k, status) in [
            ("pass", "PASS"),
            ("fail", "FAIL"),
            ("warn", "WARN"),
            ("error", "ERROR"),
            ("skip", "SKIP"),
            ("manual", "MANUAL"),
        ] {
            let n = rows
                .iter()
                .filter(|row| row[store_col] == label && row[status_col] == status)
                .count();
            assert_eq!(n, count(&r["summary"], k), "{label} {status}");
        }
    }
}

/// (store id, check id) → status, for every check of every store of a JSON scan.
fn scan_statuses(v: &Value) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    for r in v["reports"].as_array().unwrap() {
        let store = r["diagnosis"]["custom_key_store_id"].as_str().unwrap();
        for c in r["checks"].as_array().unwrap() {
            out.insert(
                (store.to_string(), c["id"].as_str().unwrap().to_string()),
                c["status"].as_str().unwrap().to_string(),
            );
        }
    }
    out
}

#[test]
fn scan_with_jobs_1_makes_one_call_at_a_time() {
    run_named("scan_jobs");
}

fn scan_jobs(srv: &Server) {
    srv.seed(&two_regions(false));
    let (all, v) = scan_json(srv);
    let calls = [srv.calls_in(REGION), srv.calls_in(OTHER_REGION)];
    // The same scan, one check and one AWS call at a time across both Regions.
    srv.seed(&two_regions(false));
    // Every call slowed down, so that calls made at once would overlap here (the Regions'
    // first calls, DescribeCustomKeyStores, start together).
    let actions: BTreeSet<&String> = calls[0].keys().chain(calls[1].keys()).collect();
    for action in actions {
        srv.faults(json!({"action": action, "delay_ms": 100}));
    }
    let one = scan_with(srv, "json", &["--jobs", "1"]);
    assert_eq!(one.code, all.code, "{}", one.stderr);
    assert_eq!(scan_statuses(&json_of(&one)), scan_statuses(&v));
    assert_eq!(
        srv.control("GET", "in-flight", None)["max"],
        1,
        "--jobs 1: one call at a time"
    );
    assert_eq!(
        [srv.calls_in(REGION), srv.calls_in(OTHER_REGION)],
        calls,
        "the same calls"
    );
}

#[test]
fn scan_a_fault_of_a_shared_fact_reaches_every_store_of_its_region() {
    run_named("scan_shared_fault");
}

fn scan_shared_fault(srv: &Server) {
    // eu-west-1's security groups cannot be read (throttled beyond the retries): both its
    // stores cannot check them, from one batched call (retried), not one call per store;
    // us-east-1 is untouched.
    srv.seed(&two_regions(false));
    srv.faults(json!({
        "action": "ec2:DescribeSecurityGroups",
        "error": "RequestLimitExceeded",
        "region": OTHER_REGION,
    }));
    let (run, v) = scan_json(srv);
    assert_eq!(v["errors"], json!([]), "{:#}", v["errors"]);
    let attempts = srv.calls_in(OTHER_REGION)["ec2:DescribeSecurityGroups"];
    assert!(
        (1..=4).contains(&attempts),
        "one batched call and its retries: {attempts}"
    );
    assert_eq!(srv.calls_in(REGION)["ec2:DescribeSecurityGroups"], 1);
    let statuses = scan_statuses(&v);
    for r in v["reports"].as_array().unwrap() {
        let id = r["diagnosis"]["custom_key_store_id"].as_str().unwrap();
        let sg_errors: Vec<&Value> = r["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| {
                c["status"] == "ERROR"
                    && c["message"]
                        .as_str()
                        .unwrap()
                        .contains("ec2:DescribeSecurityGroups")
            })
            .collect();
        if [EU_HEALTHY, EU_FAILED].contains(&id) {
            assert!(!sg_errors.is_empty(), "{id}: {:#}", r["checks"]);
            for c in sg_errors {
                assert!(
                    c["message"].as_str().unwrap().contains("throttled"),
                    "{id}: {}",
                    c["message"]
                );
            }
        } else {
            assert!(sg_errors.is_empty(), "{id}: {sg_errors:?}");
        }
    }
    // The healthy store of the faulty Region still gets every other verdict.
    assert_eq!(
        statuses[&(EU_HEALTHY.to_string(), "cloudhsm.hsms.active".to_string())],
        "PASS"
    );
    assert_eq!(run.code, 1, "us-east-1's broken store still fails");
}

#[test]
fn scan_a_denied_region_is_an_error_of_the_scan() {
    run_named("scan_denied_region");
}

fn scan_denied_region(srv: &Server) {
    srv.seed(&two_regions(true));
    srv.faults(json!({
        "action": "kms:DescribeCustomKeyStores",
        "error": "AccessDeniedException",
        "region": OTHER_REGION,
    }));
    let (run, v) = scan_json(srv);
    // Nothing fails in us-east-1, but eu-west-1 could not be looked at: incomplete.
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    let errors = v["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0]["region"], OTHER_REGION);
    let e = errors[0]["error"].as_str().unwrap();
    assert!(
        e.contains("kms:DescribeCustomKeyStores") && e.contains("access denied"),
        "{e}"
    );
    let reports = v["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 1, "only us-east-1's store");
    assert_eq!(reports[0]["diagnosis"]["custom_key_store_id"], US_HEALTHY);
    assert_eq!(reports[0]["target"]["region"], REGION);
    assert_eq!(reports[0]["summary"]["fail"], 0);
    assert_eq!(reports[0]["summary"]["error"], 0);
    // The denied Region was asked once (no retry of a denial), and nothing else there.
    let eu = srv.calls_in(OTHER_REGION);
    assert_eq!(
        eu,
        BTreeMap::from([("kms:DescribeCustomKeyStores".to_string(), 1)]),
        "{eu:?}"
    );

    // The table says which Region could not be scanned; the exit code is the same.
    let table = scan(srv, "table");
    assert_eq!(table.code, 3);
    assert!(
        table
            .stdout
            .contains(&format!("could not scan {OTHER_REGION}")),
        "{}",
        table.stdout
    );
    // Every file format carries the Region that could not be scanned, as a could-not-check row.
    for (format, needle) in [
        ("junit", "scan.region"),
        ("csv", "scan.region"),
        ("sarif", "scan.region"),
        ("markdown", OTHER_REGION),
        ("html", OTHER_REGION),
    ] {
        let out = scan(srv, format);
        assert_eq!(out.code, 3, "{format}");
        assert!(out.stdout.contains(needle), "{format}: {}", out.stdout);
    }
}

// ------------------------------------------------------------------------------------------------

const SCENARIOS: &[Scenario] = &[
    ("cluster_not_found", cluster_not_found),
    ("insufficient_hsms", insufficient_hsms),
    ("free_addresses", free_addresses),
    ("subnet_not_found", subnet_not_found),
    ("network_errors", network_errors),
    ("user_locked_out", user_locked_out),
    ("user_not_found", user_not_found),
    ("user_logged_in", user_logged_in),
    ("cloudhsm_invalid_credentials", cloudhsm_invalid_credentials),
    ("internal_error", internal_error),
    ("connected_one_hsm", connected_one_hsm),
    ("xks_access_denied", xks_access_denied),
    ("xks_invalid_configuration", xks_invalid_configuration),
    ("xks_invalid_response", xks_invalid_response),
    ("xks_invalid_tls", xks_invalid_tls),
    ("xks_timed_out", xks_timed_out),
    ("xks_not_reachable", xks_not_reachable),
    ("xks_invalid_credentials", xks_invalid_credentials),
    ("vpce_not_found", vpce_not_found),
    ("vpce_invalid_configuration", vpce_invalid_configuration),
    ("scan_two_regions", scan_two_regions),
    ("scan_denied_region", scan_denied_region),
    ("scan_jobs", scan_jobs),
    ("scan_shared_fault", scan_shared_fault),
];
