//! The CreateKey pre-flight (`key.*` checks) through the engine on in-memory facts: for each
//! check a passing case and the failing case(s) with the exact KMS exception. The external key
//! store cases ask the test XKS proxy (`support/xks_proxy.rs`) with GetKeyMetadata as KMS does.

use crate::support::common::*;
use crate::support::xks_proxy::{self, ProxyOptions, TestProxy};
use cks_doctor::checks::Status::{self, *};
use cks_doctor::diagnose::Extras;
use cks_doctor::engine::{self, Settings};
use cks_doctor::facts::model::*;
use cks_doctor::facts::recorded::Recorded;
use cks_doctor::facts::{FactKind, Source};
use cks_doctor::report::{CheckResult, Report};
use secrecy::SecretString;
use std::time::Duration;

const STORE: &str = "cks-0a1b2c3d4e5f60789";
const XKS_STORE: &str = "cks-0b7c1a2d3e4f56789";
const CALLER: &str = "arn:aws:iam::111122223333:role/KeyAdmin";

fn xks_store(state: &str) -> CustomKeyStore {
    CustomKeyStore {
        custom_key_store_id: XKS_STORE.into(),
        custom_key_store_name: "ExternalStore".into(),
        custom_key_store_type: Some("EXTERNAL_KEY_STORE".into()),
        connection_state: Some(state.into()),
        xks_proxy_configuration: Some(XksProxyConfiguration {
            connectivity: Some("PUBLIC_ENDPOINT".into()),
            access_key_id: Some(xks_proxy::ACCESS_KEY_ID.into()),
            uri_endpoint: Some(xks_proxy::ENDPOINT.into()),
            uri_path: Some(xks_proxy::PATH.into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn kms_key(id: &str, store: Option<&str>, xks_id: Option<&str>, state: &str) -> KeyMetadata {
    KeyMetadata {
        key_id: id.into(),
        arn: Some(format!("arn:aws:kms:us-east-1:111122223333:key/{id}")),
        key_state: Some(state.into()),
        key_manager: Some("CUSTOMER".into()),
        origin: Some(
            if xks_id.is_some() {
                "EXTERNAL_KEY_STORE"
            } else {
                "AWS_KMS"
            }
            .into(),
        ),
        custom_key_store_id: store.map(str::to_string),
        xks_key_configuration: xks_id.map(|x| XksKeyConfiguration { id: Some(x.into()) }),
    }
}

/// The account: the CloudHSM store STORE on the healthy cluster, the external key store
/// XKS_STORE, and three KMS keys (one in the external store, backed by `other-external-1`).
fn account(store_state: &str, xks_state: &str) -> Recorded {
    let mut r = healthy();
    let mut s = store(STORE, "ExampleKeyStore", CLUSTER_ID);
    s.connection_state = Some(store_state.into());
    r.custom_key_stores = Some(vec![s, xks_store(xks_state)]);
    let keys = vec![
        kms_key(
            "1111aaaa-0000-4000-8000-000000000001",
            None,
            None,
            "Enabled",
        ),
        kms_key(
            "1111aaaa-0000-4000-8000-000000000002",
            Some(XKS_STORE),
            Some("other-external-1"),
            "Enabled",
        ),
        kms_key(
            "1111aaaa-0000-4000-8000-000000000003",
            Some(STORE),
            None,
            "Enabled",
        ),
    ];
    r.keys = Some(
        keys.iter()
            .map(|k| KeyListEntry {
                key_id: k.key_id.clone(),
                key_arn: k.arn.clone(),
            })
            .collect(),
    );
    r.key_descriptions = Some(keys);
    r.caller_identity = Some(CallerIdentity {
        account: "111122223333".into(),
        arn: Some(CALLER.into()),
        user_id: None,
    });
    r
}

fn extras(proxy: Option<&TestProxy>, secret: &str) -> Extras {
    Extras {
        secret: Some(SecretString::from(secret.to_string())),
        users: None,
        connect_to: proxy.map(|p| p.connect_to_arg().parse().unwrap()),
        trust_ca: Vec::new(),
        client_identity: None,
        region: "us-east-1".into(),
        timeout: Duration::from_secs(5),
    }
}

struct KeyRun {
    report: Report,
    fetched: Vec<(FactKind, usize)>,
}

impl KeyRun {
    fn get(&self, id: &str) -> &CheckResult {
        self.report
            .checks
            .iter()
            .find(|r| r.id == id)
            .unwrap_or_else(|| panic!("no result for {id}"))
    }
    /// The status, and for a FAIL or WARN the exact exceptions it predicts (a result of any
    /// other status lists its check's exceptions, predicting none).
    #[track_caller]
    fn expect(&self, id: &str, status: Status, exceptions: &[&str]) -> &CheckResult {
        let r = self.get(id);
        if matches!(status, Fail | Warn) {
            assert_result(r, status, exceptions, &[]);
        } else {
            assert_eq!(r.status, status, "{id}: {} — {:?}", r.message, r.evidence);
        }
        r
    }
}

async fn preflight_key(
    facts: Recorded,
    store_id: &str,
    xks_key_id: Option<&str>,
    extras: Extras,
) -> KeyRun {
    let settings = Settings::new(Duration::from_secs(10), None);
    let stores = facts.custom_key_stores.clone().unwrap_or_default();
    let store = stores
        .iter()
        .find(|s| s.custom_key_store_id == store_id)
        .cloned()
        .ok_or_else(|| format!("with the id {store_id}"));
    let run = engine::preflight_key(
        &settings,
        Source::Recorded(facts),
        Some("us-east-1".into()),
        stores,
        store,
        xks_key_id.map(str::to_string),
        extras,
    )
    .await
    .expect("the pre-flight runs");
    let fetched = FactKind::ALL
        .iter()
        .map(|&k| (k, run.facts.counts.get(k)))
        .collect();
    KeyRun {
        report: run.report,
        fetched,
    }
}

// ----- the store -----

#[tokio::test]
async fn a_connected_cloudhsm_store_with_two_hsms_in_two_zones_takes_a_key() {
    let run = preflight_key(
        account("CONNECTED", "CONNECTED"),
        STORE,
        None,
        extras(None, "x"),
    )
    .await;
    assert_eq!(run.report.target.operation, "CreateKey");
    assert_eq!(
        run.report.target.custom_key_store_id.as_deref(),
        Some(STORE)
    );
    run.expect("key.store.exists", Pass, &[]);
    run.expect("key.store.connected", Pass, &[]);
    run.expect("key.cloudhsm.hsms", Pass, &[]);
    run.expect("key.quota", Pass, &[]);
    // The external key checks do not apply to a CloudHSM store.
    for id in [
        "key.xks.metadata",
        "key.xks.configuration",
        "key.xks.not-in-use",
        "key.xks.id-stable",
    ] {
        assert!(
            run.report.checks.iter().all(|r| r.id != id),
            "{id} ran for a CloudHSM store"
        );
    }
    assert_eq!(run.report.exit_code(), 0);
    // Nothing but the key list and the cluster is read: no DescribeKey for a CloudHSM store.
    for (kind, n) in &run.fetched {
        let want = match kind {
            FactKind::Cluster | FactKind::Keys | FactKind::KeyStores => 1,
            _ => 0,
        };
        assert_eq!(*n, want, "{kind:?} fetched {n} times");
    }
}

#[tokio::test]
async fn a_store_that_is_not_connected_fails_with_custom_key_store_invalid_state() {
    for state in ["DISCONNECTED", "FAILED", "CONNECTING"] {
        let run = preflight_key(account(state, "CONNECTED"), STORE, None, extras(None, "x")).await;
        let r = run.expect(
            "key.store.connected",
            Fail,
            &["CustomKeyStoreInvalidStateException"],
        );
        assert!(r.message.contains(state), "{}", r.message);
        assert_eq!(run.report.exit_code(), 1);
    }
}

#[tokio::test]
async fn a_cluster_without_two_active_hsms_in_two_zones_fails_with_invalid_configuration() {
    for hsms in [
        vec![hsm("hsm-a", "us-east-1a", "ACTIVE")],
        vec![
            hsm("hsm-a", "us-east-1a", "ACTIVE"),
            hsm("hsm-b", "us-east-1a", "ACTIVE"),
        ],
        vec![
            hsm("hsm-a", "us-east-1a", "ACTIVE"),
            hsm("hsm-b", "us-east-1b", "CREATE_IN_PROGRESS"),
        ],
    ] {
        let mut facts = account("CONNECTED", "CONNECTED");
        let mut c = cluster();
        c.hsms = hsms;
        facts.clusters = Some(vec![c]);
        let run = preflight_key(facts, STORE, None, extras(None, "x")).await;
        let r = run.expect(
            "key.cloudhsm.hsms",
            Fail,
            &["CloudHsmClusterInvalidConfigurationException"],
        );
        assert!(!r.evidence.is_empty());
    }
    // A cluster that is not ACTIVE fails even with two HSMs.
    let mut facts = account("CONNECTED", "CONNECTED");
    let mut c = cluster();
    c.state = "UPDATE_IN_PROGRESS".into();
    facts.clusters = Some(vec![c]);
    let run = preflight_key(facts, STORE, None, extras(None, "x")).await;
    let r = run.expect(
        "key.cloudhsm.hsms",
        Fail,
        &["CloudHsmClusterInvalidConfigurationException"],
    );
    assert!(r.message.contains("UPDATE_IN_PROGRESS"), "{}", r.message);
}

#[tokio::test]
async fn a_store_that_does_not_exist_fails_with_custom_key_store_not_found() {
    let run = preflight_key(
        account("CONNECTED", "CONNECTED"),
        "cks-1234567890abcdef0",
        Some("cks-test-aes-1"),
        extras(None, "x"),
    )
    .await;
    let r = run.expect(
        "key.store.exists",
        Fail,
        &["CustomKeyStoreNotFoundException"],
    );
    assert!(r.message.contains("cks-1234567890abcdef0"), "{}", r.message);
    // The stores the account does have are the evidence.
    assert!(
        r.evidence.iter().any(|e| e.contains(STORE)),
        "{:?}",
        r.evidence
    );
    for id in [
        "key.store.connected",
        "key.xks.metadata",
        "key.xks.not-in-use",
    ] {
        let r = run.get(id);
        assert_eq!(r.status, Skip, "{id}: {}", r.message);
        assert!(
            r.message.contains("key.store.exists"),
            "{id}: {}",
            r.message
        );
    }
    assert_eq!(run.report.exit_code(), 1);
}

#[tokio::test]
async fn the_key_quota_warns_at_the_default_and_an_unlisted_account_could_not_be_checked() {
    let mut facts = account("CONNECTED", "CONNECTED");
    facts.keys = Some(
        (0..engine_quota())
            .map(|i| KeyListEntry {
                key_id: format!("{i:08x}-0000-4000-8000-000000000000"),
                key_arn: None,
            })
            .collect(),
    );
    let run = preflight_key(facts, STORE, None, extras(None, "x")).await;
    let r = run.expect("key.quota", Warn, &["LimitExceededException"]);
    assert!(r.message.contains("100000"), "{}", r.message);
    // No key list: could not check, never a PASS.
    let mut facts = account("CONNECTED", "CONNECTED");
    facts.keys = None;
    let run = preflight_key(facts, STORE, None, extras(None, "x")).await;
    let r = run.expect("key.quota", Error, &[]);
    assert!(r.message.contains("kms-list-keys.json"), "{}", r.message);
    assert_eq!(run.report.exit_code(), 3);
}

fn engine_quota() -> usize {
    cks_doctor::checks::key::KEY_QUOTA
}

// ----- external key stores: the proxy's GetKeyMetadata -----

async fn xks_run(
    facts: Recorded,
    key: &str,
    opts: ProxyOptions,
    secret: &str,
) -> (KeyRun, TestProxy) {
    let proxy = TestProxy::start(opts).await;
    let ca = proxy.root_ca_pem();
    let mut e = extras(Some(&proxy), secret);
    e.trust_ca = cks_doctor::certs::parse_pem_chain(&ca).unwrap();
    let run = preflight_key(facts, XKS_STORE, Some(key), e).await;
    (run, proxy)
}

#[tokio::test]
async fn an_enabled_aes_key_the_proxy_knows_passes_and_is_asked_for_as_kms_asks() {
    let (run, proxy) = xks_run(
        account("CONNECTED", "CONNECTED"),
        xks_proxy::KEY_AES,
        ProxyOptions::default(),
        xks_proxy::SECRET,
    )
    .await;
    run.expect("key.store.connected", Pass, &[]);
    run.expect("key.xks.metadata", Pass, &[]);
    run.expect("key.xks.configuration", Pass, &[]);
    let r = run.expect("key.xks.not-in-use", Pass, &[]);
    assert!(
        r.message.contains("1 KMS key(s) in the store"),
        "{}",
        r.message
    );
    run.expect("key.xks.id-stable", Pass, &[]);
    assert_eq!(run.report.exit_code(), 0, "{:#?}", run.report.checks);
    // One GetKeyMetadata, signed, shaped as KMS sends it at CreateKey.
    let seen: Vec<_> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/metadata"))
        .collect();
    assert_eq!(seen.len(), 1, "{seen:#?}");
    let req = &seen[0];
    assert_eq!(
        req.path,
        format!("{}/keys/{}/metadata", xks_proxy::PATH, xks_proxy::KEY_AES)
    );
    assert_eq!(req.signature_valid, Some(true), "{:?}", req.signature_error);
    let body: serde_json::Value = serde_json::from_str(&req.body).unwrap();
    let m = &body["requestMetadata"];
    assert_eq!(m["kmsOperation"], "CreateKey");
    assert_eq!(m["awsPrincipalArn"], CALLER);
    assert!(m["kmsRequestId"].as_str().is_some_and(|s| s.len() == 36));
    assert!(
        m.get("kmsKeyArn").is_none(),
        "CreateKey sends no kmsKeyArn: {m}"
    );
    // KMS's four suites only.
    assert!(
        [
            "TLS13_AES_256_GCM_SHA384",
            "TLS13_CHACHA20_POLY1305_SHA256",
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"
        ]
        .contains(&req.cipher_suite.as_str()),
        "{}",
        req.cipher_suite
    );
    // ListKeys and DescribeKey once each, however many checks read them.
    let fetched = |k: FactKind| run.fetched.iter().find(|(x, _)| *x == k).unwrap().1;
    assert_eq!(fetched(FactKind::Keys), 1);
    assert_eq!(fetched(FactKind::KeyDescriptions), 1);
}

#[tokio::test]
async fn a_key_the_proxy_does_not_know_fails_with_xks_key_not_found() {
    let (run, _proxy) = xks_run(
        account("CONNECTED", "CONNECTED"),
        "cks-test-missing-7",
        ProxyOptions::default(),
        xks_proxy::SECRET,
    )
    .await;
    let r = run.expect("key.xks.metadata", Fail, &["XksKeyNotFoundException"]);
    assert!(r.message.contains("KeyNotFoundException"), "{}", r.message);
    let r = run.get("key.xks.configuration");
    assert_eq!(r.status, Skip, "{}", r.message);
    assert!(r.message.contains("key.xks.metadata"), "{}", r.message);
}

#[tokio::test]
async fn a_key_of_the_wrong_spec_status_or_usage_fails_with_xks_key_invalid_configuration() {
    for (key, field) in [
        (xks_proxy::KEY_RSA, "keySpec"),
        (xks_proxy::KEY_DISABLED, "keyStatus"),
        (xks_proxy::KEY_ENCRYPT_ONLY, "lacks DECRYPT"),
        (xks_proxy::KEY_DECRYPT_ONLY, "lacks ENCRYPT"),
    ] {
        let (run, _proxy) = xks_run(
            account("CONNECTED", "CONNECTED"),
            key,
            ProxyOptions::default(),
            xks_proxy::SECRET,
        )
        .await;
        run.expect("key.xks.metadata", Pass, &[]);
        let r = run.expect(
            "key.xks.configuration",
            Fail,
            &["XksKeyInvalidConfigurationException"],
        );
        assert!(r.message.contains(field), "{key}: {}", r.message);
    }
}

#[tokio::test]
async fn an_external_key_already_backing_a_key_of_the_store_fails_with_already_in_use() {
    let mut facts = account("CONNECTED", "CONNECTED");
    let taken = kms_key(
        "2222bbbb-0000-4000-8000-000000000009",
        Some(XKS_STORE),
        Some(xks_proxy::KEY_AES),
        "PendingDeletion",
    );
    facts.keys.as_mut().unwrap().push(KeyListEntry {
        key_id: taken.key_id.clone(),
        key_arn: taken.arn.clone(),
    });
    facts.key_descriptions.as_mut().unwrap().push(taken);
    let (run, _proxy) = xks_run(
        facts,
        xks_proxy::KEY_AES,
        ProxyOptions::default(),
        xks_proxy::SECRET,
    )
    .await;
    let r = run.expect("key.xks.not-in-use", Fail, &["XksKeyAlreadyInUseException"]);
    assert!(
        r.message.contains("2222bbbb-0000-4000-8000-000000000009"),
        "{}",
        r.message
    );
    assert!(
        r.evidence.iter().any(|e| e.contains("PendingDeletion")),
        "{:?}",
        r.evidence
    );
    // The same external key id in another store is not in use in this one.
    let mut facts = account("CONNECTED", "CONNECTED");
    let elsewhere = kms_key(
        "2222bbbb-0000-4000-8000-00000000000a",
        Some("cks-99999999999999999"),
        Some(xks_proxy::KEY_AES),
        "Enabled",
    );
    facts.keys.as_mut().unwrap().push(KeyListEntry {
        key_id: elsewhere.key_id.clone(),
        key_arn: None,
    });
    facts.key_descriptions.as_mut().unwrap().push(elsewhere);
    let (run, _proxy) = xks_run(
        facts,
        xks_proxy::KEY_AES,
        ProxyOptions::default(),
        xks_proxy::SECRET,
    )
    .await;
    run.expect("key.xks.not-in-use", Pass, &[]);
}

#[tokio::test]
async fn keys_that_cannot_be_described_make_the_in_use_check_could_not_check() {
    let mut facts = account("CONNECTED", "CONNECTED");
    facts.keys.as_mut().unwrap().push(KeyListEntry {
        key_id: "3333cccc-0000-4000-8000-000000000001".into(),
        key_arn: None,
    });
    let (run, _proxy) = xks_run(
        facts,
        xks_proxy::KEY_AES,
        ProxyOptions::default(),
        xks_proxy::SECRET,
    )
    .await;
    let r = run.expect("key.xks.not-in-use", Error, &[]);
    assert!(
        r.evidence
            .iter()
            .any(|e| e.contains("3333cccc-0000-4000-8000-000000000001")),
        "{:?}",
        r.evidence
    );
    assert_eq!(run.report.exit_code(), 3);
}

#[tokio::test]
async fn a_refused_signature_is_could_not_check_and_the_secret_is_never_shown() {
    let wrong = "Zq9mW3xV7bN1cT5yH8kL2pR6dF0gJ4sA+eU/oI9wEXAMPLEWRONG";
    let (run, _proxy) = xks_run(
        account("CONNECTED", "CONNECTED"),
        xks_proxy::KEY_AES,
        ProxyOptions::default(),
        wrong,
    )
    .await;
    let r = run.expect("key.xks.metadata", Error, &[]);
    assert!(r.message.contains("401"), "{}", r.message);
    let r = run.get("key.xks.configuration");
    assert_eq!(r.status, Skip, "{}", r.message);
    let json = serde_json::to_string(&run.report).unwrap();
    assert!(!json.contains(wrong) && !json.contains(xks_proxy::SECRET));
}

#[tokio::test]
async fn a_malformed_metadata_answer_fails_naming_no_exception() {
    let mut opts = ProxyOptions::default();
    opts.key_faults.metadata_override =
        Some(r#"{"keySpec":"AES_256","keyStatus":"ENABLED"}"#.into());
    let (run, _proxy) = xks_run(
        account("CONNECTED", "CONNECTED"),
        xks_proxy::KEY_AES,
        opts,
        xks_proxy::SECRET,
    )
    .await;
    let r = run.expect("key.xks.metadata", Fail, &[]);
    assert!(r.message.contains("keyUsage"), "{}", r.message);
    // A failure no KMS error names is said to be one, naming the check.
    assert_eq!(
        run.report.verdict.text,
        "CreateKey would fail, with an error AWS does not document for the cause: key.xks.metadata"
    );
}

#[tokio::test]
async fn an_unreachable_proxy_is_could_not_check() {
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut e = extras(None, xks_proxy::SECRET);
    e.connect_to = Some(
        format!("{}:443:127.0.0.1:{port}", xks_proxy::HOST)
            .parse()
            .unwrap(),
    );
    let run = preflight_key(
        account("CONNECTED", "CONNECTED"),
        XKS_STORE,
        Some(xks_proxy::KEY_AES),
        e,
    )
    .await;
    let r = run.expect("key.xks.metadata", Error, &[]);
    assert!(r.message.contains("could not be reached"), "{}", r.message);
}

#[tokio::test]
async fn an_alias_like_external_key_id_warns() {
    for id in ["prod-alias-7", "current-key-3", "finance-key"] {
        let (run, _proxy) = xks_run(
            account("CONNECTED", "CONNECTED"),
            id,
            ProxyOptions::default(),
            xks_proxy::SECRET,
        )
        .await;
        run.expect("key.xks.id-stable", Warn, &[]);
    }
}

#[tokio::test]
async fn a_snapshot_records_and_reads_the_key_facts() {
    let dir = tempfile::tempdir().unwrap();
    let facts = account("CONNECTED", "CONNECTED");
    let written = facts.write_dir(dir.path()).unwrap();
    let names: Vec<String> = written
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.contains(&"kms-list-keys.json".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"kms-describe-key.json".to_string()),
        "{names:?}"
    );
    // The file is what `aws kms describe-key` prints, one per key, in a JSON array.
    let text = std::fs::read_to_string(dir.path().join("kms-describe-key.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        v[1]["KeyMetadata"]["XksKeyConfiguration"]["Id"],
        "other-external-1"
    );
    let back = Recorded::load_dir(dir.path()).unwrap();
    assert_eq!(back.keys, facts.keys);
    assert_eq!(back.key_descriptions, facts.key_descriptions);
}

// ----- the command line, on the bundled failed-store snapshot -----

fn example(name: &str) -> String {
    format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn cli(args: &[&str]) -> (i32, String, String) {
    let out = crate::support::bin()
        .args([
            "--snapshot",
            &example("failed-store"),
            "--region",
            "us-east-1",
            "--no-progress",
        ])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn preflight_key_on_the_failed_store_snapshot_names_custom_key_store_invalid_state() {
    let (code, out, err) = cli(&[
        "--output",
        "json",
        "preflight",
        "key",
        "--custom-key-store-id",
        STORE,
    ]);
    assert_eq!(code, 1, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["target"]["operation"], "CreateKey");
    assert_eq!(v["target"]["custom_key_store_id"], STORE);
    assert_eq!(
        v["verdict"]["kms_exceptions"],
        serde_json::json!(["CustomKeyStoreInvalidStateException"])
    );
    let quota = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "key.quota")
        .unwrap();
    assert_eq!(quota["status"], "PASS", "{quota:#}");
    // By name, the same store.
    let (code, out, _) = cli(&[
        "preflight",
        "key",
        "--custom-key-store-name",
        "ExampleKeyStore",
    ]);
    assert_eq!(code, 1);
    assert!(out.contains("CreateKey pre-flight for CloudHSM cluster cluster-jxhlf7644ne, key store cks-0a1b2c3d4e5f60789"), "{out}");
}

#[test]
fn preflight_key_input_errors_are_one_line_with_exit_2() {
    for (args, want) in [
        (
            vec![
                "preflight",
                "key",
                "--custom-key-store-id",
                XKS_STORE,
                "--xks-key-id",
                "has space",
            ],
            "is not a valid XksKeyId",
        ),
        (
            vec![
                "preflight",
                "key",
                "--custom-key-store-id",
                XKS_STORE,
                "--xks-key-id",
                &"k".repeat(129),
            ],
            "is not a valid XksKeyId",
        ),
        (
            vec![
                "preflight",
                "key",
                "--custom-key-store-id",
                STORE,
                "--xks-key-id",
                "abc-1",
            ],
            "applies to an external key store",
        ),
    ] {
        let (code, out, err) = cli(&args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    // Neither an id nor a name: clap's usage error.
    let (code, _, err) = cli(&["preflight", "key"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn diagnose_of_the_failed_store_warns_about_its_unusable_keys() {
    let (code, out, err) = cli(&["--output", "json", "diagnose", STORE]);
    assert_eq!(code, 1, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let c = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "account.store-keys")
        .unwrap();
    assert_eq!(c["status"], "WARN", "{c:#}");
    assert!(
        c["message"]
            .as_str()
            .unwrap()
            .contains("holds 2 KMS key(s) (1 PendingDeletion, 1 Unavailable)"),
        "{c:#}"
    );
}

#[test]
fn a_store_whose_keys_may_be_among_the_undescribed_is_could_not_check_not_a_pass() {
    let dir = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(example("failed-store")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
    }
    // Only the AWS managed key is described; the store's two keys are listed but not described.
    let described: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("kms-describe-key.json")).unwrap(),
    )
    .unwrap();
    let others: Vec<_> = described
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["KeyMetadata"]["CustomKeyStoreId"].is_null())
        .cloned()
        .collect();
    std::fs::write(
        dir.path().join("kms-describe-key.json"),
        serde_json::to_string(&others).unwrap(),
    )
    .unwrap();
    let out = crate::support::bin()
        .args([
            "--region",
            "us-east-1",
            "--output",
            "json",
            "--only",
            "account.store-keys",
            "--snapshot",
        ])
        .arg(dir.path())
        .args(["diagnose", STORE])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = &v["checks"][0];
    assert_eq!(c["status"], "ERROR", "{c:#}");
    assert!(
        c["message"]
            .as_str()
            .unwrap()
            .starts_with("could not check"),
        "{c:#}"
    );
}
