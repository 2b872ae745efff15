//! The CloudTrail checks through the live path: the built binary's real AWS SDK CloudTrail
//! client (AWS JSON 1.1) against `tests/live/server.py`, which serves LookupEvents from seeded
//! events. The store's changes are listed and its failed calls grouped; every page is followed
//! and the KMS lookup's page cap is said; a denied or throttled LookupEvents is "could not
//! check"; a scan makes the same six lookups whatever the number of stores.
//!
//! Needs the project's Python environment: `scripts/setup-venv.sh` (`scripts/test.sh` runs it).

use crate::support::live_server;
use crate::support::live_server::{cloudhsm_ec2, strings};

use live_server::{run_cks_doctor, run_cks_doctor_raw, tmp, Scenario, Scenarios, Server};
use serde_json::{json, Value};

const REGION: &str = "us-east-1";
const LOG: &str = "live-trail-server.log";
const STORE_A: &str = "cks-0b7c1a2d3e4f56789";
const STORE_B: &str = "cks-0c8d2b3e4f5a67890";
const HSM_STORE: &str = "cks-0a1b2c3d4e5f60789";
const CLUSTER: &str = "cluster-jxhlf7644ne";
const KEY_A: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";
const CHANGES: &str = "account.trail.store-changes";
const FAILED: &str = "account.trail.failed-calls";
const LOOKUP: &str = "cloudtrail:LookupEvents";

static SERVER: Scenarios = Scenarios::new(LOG);

fn run_named(name: &str) {
    SERVER.run(SCENARIOS, name);
}

fn key_arn(id: &str) -> String {
    format!("arn:aws:kms:{REGION}:123456789012:key/{id}")
}

fn xks(id: &str, name: &str, state: &str, code: Option<&str>) -> Value {
    let mut s = json!({
        "id": id, "name": name, "type": "EXTERNAL_KEY_STORE", "state": state,
        "connectivity": "PUBLIC_ENDPOINT",
        "uri_endpoint": format!("https://{name}.xks.example.com"), "uri_path": "/kms/xks/v1",
        "access_key_id": "ABCDE12345670EXAMPLE",
    });
    if let Some(c) = code {
        s["error_code"] = json!(c);
    }
    s
}

/// Two external key stores and a CloudHSM one, STORE_A holding KEY_A; `trail` seeded.
fn account(a_state: &str, a_code: Option<&str>, trail: Value) -> Value {
    json!({
        "region": REGION,
        "ec2": cloudhsm_ec2(CLUSTER, false),
        "clusters": [{
            "id": CLUSTER, "state": "ACTIVE", "hsm_type": "hsm2m.medium", "mode": "FIPS",
            "vpc": "vpc", "subnets": {"us-east-1a": "a", "us-east-1b": "b"},
            "security_group": "sg",
            "hsms": [{"az": "us-east-1a", "state": "ACTIVE"}, {"az": "us-east-1b", "state": "ACTIVE"}],
            "certificate_file": "rsa2048-pkcs1-sha256-cluster.crt",
        }],
        "key_stores": [
            xks(STORE_A, "proxya", a_state, a_code),
            xks(STORE_B, "proxyb", "CONNECTED", None),
            {"id": HSM_STORE, "name": "HsmStore", "cluster": CLUSTER, "state": "CONNECTED"},
        ],
        "keys": [{"id": KEY_A, "store": STORE_A, "xks_key_id": "ext-key-1"}],
        "trail": trail,
    })
}

/// The store's recent history: a disconnect, an update of the endpoint, a connect; another
/// store's update; three timed-out Decrypts with STORE_A's key; an update two days ago.
fn history() -> Value {
    let timeout =
        "The request was rejected because the external key store proxy did not respond in time.";
    json!([
        {"name": "DisconnectCustomKeyStore", "store": STORE_A, "ago": 7300, "id": "ev-disc", "ip": "198.51.100.24"},
        {"name": "UpdateCustomKeyStore", "store": STORE_A, "ago": 7200, "id": "ev-upd", "ip": "198.51.100.24",
         "params": {"xksProxyUriEndpoint": "https://proxya.xks.example.com"}},
        {"name": "ConnectCustomKeyStore", "store": STORE_A, "ago": 7100, "id": "ev-conn"},
        {"name": "UpdateCustomKeyStore", "store": STORE_B, "ago": 7000, "id": "ev-other"},
        {"name": "Decrypt", "key": key_arn(KEY_A), "ago": 600, "error": "KMSInvalidStateException",
         "message": timeout, "count": 3, "id": "ev-dec", "request_id": "req-dec",
         "additional": {"customKeyStoreId": STORE_A}},
        {"name": "UpdateCustomKeyStore", "store": STORE_A, "ago": 2 * 86400, "id": "ev-old"},
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
        "20",
        "--only",
        CHANGES,
        "--only",
        FAILED,
    ])
}

fn diagnose(srv: &Server, store: &str) -> live_server::Run {
    let mut args = base(srv);
    args.extend(strings(&["diagnose", store]));
    run_cks_doctor(&args, &tmp(LOG))
}

#[test]
fn live_changes_are_listed_and_failed_calls_grouped() {
    run_named("listed");
}

fn listed(srv: &Server) {
    srv.seed(&account(
        "FAILED",
        Some("XKS_PROXY_NOT_REACHABLE"),
        history(),
    ));
    let run = diagnose(srv, STORE_A);
    let c = run.expect(CHANGES, "WARN");
    let m = c["message"].as_str().unwrap();
    assert!(
        m.contains("1 ConnectCustomKeyStore, 1 DisconnectCustomKeyStore, 1 UpdateCustomKeyStore"),
        "{m}"
    );
    assert!(
        m.contains(
            "UpdateCustomKeyStore by arn:aws:iam::123456789012:user/Alice from 198.51.100.24"
        ),
        "{m}"
    );
    assert!(m.contains("changed: xksProxyUriEndpoint"), "{m}");
    assert!(m.contains("responseElements null"), "{m}");
    let evidence = run.evidence(CHANGES);
    assert!(
        !evidence.contains("ev-other") && !m.contains(STORE_B),
        "{evidence}"
    );
    // Two days ago is outside the default 24h window.
    assert_eq!(
        evidence.matches("UpdateCustomKeyStore by").count(),
        2,
        "{evidence}"
    );
    let f = run.expect(FAILED, "WARN");
    assert_eq!(f["kms_exceptions"], json!(["KMSInvalidStateException"]));
    let fm = f["message"].as_str().unwrap();
    assert!(fm.contains("3 x KMSInvalidStateException"), "{fm}");
    let fe = run.evidence(FAILED);
    assert!(
        fe.contains("did not respond in time") && fe.contains("req-dec-2"),
        "{fe}"
    );
    // The diagnosis cites the change.
    let d = run.report["diagnosis"]["text"].as_str().unwrap();
    assert!(d.contains("UpdateCustomKeyStore"), "{d}");
    // Six lookups of one attribute each, over the last 24 hours.
    assert_eq!(srv.calls().get(LOOKUP), Some(&6), "{:?}", srv.calls());
    let asked = srv.requests(LOOKUP);
    let mut attributes: Vec<String> = asked
        .iter()
        .map(|a| {
            let list = a["LookupAttributes"].as_array().unwrap();
            assert_eq!(list.len(), 1, "{a}");
            format!(
                "{}={}",
                list[0]["AttributeKey"].as_str().unwrap(),
                list[0]["AttributeValue"].as_str().unwrap()
            )
        })
        .collect();
    attributes.sort();
    assert_eq!(
        attributes,
        [
            "EventName=ConnectCustomKeyStore",
            "EventName=CreateCustomKeyStore",
            "EventName=DeleteCustomKeyStore",
            "EventName=DisconnectCustomKeyStore",
            "EventName=UpdateCustomKeyStore",
            "EventSource=kms.amazonaws.com",
        ]
    );
    let window = asked[0]["EndTime"].as_f64().unwrap() - asked[0]["StartTime"].as_f64().unwrap();
    assert!((86400.0 - 1.0..86400.0 + 1.0).contains(&window), "{window}");

    // `snapshot xks --cloudtrail` records the same lookups, and diagnose reads them back from
    // the snapshot with the same verdicts.
    let (dir, printed) =
        live_server::record_xks_snapshot(srv, REGION, "trail-snapshot", &["--cloudtrail"]);
    assert!(
        printed.contains("cloudtrail-lookup-events.json"),
        "{printed}"
    );
    let mut args = strings(&["--snapshot", dir.to_str().unwrap()]);
    args.extend(base(srv));
    args.extend(strings(&["diagnose", STORE_A]));
    let replayed = run_cks_doctor(&args, &tmp(LOG));
    let rm = replayed.expect(CHANGES, "WARN")["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        rm.contains("1 ConnectCustomKeyStore, 1 DisconnectCustomKeyStore, 1 UpdateCustomKeyStore"),
        "{rm}"
    );
    assert_eq!(
        replayed.expect(FAILED, "WARN")["kms_exceptions"],
        json!(["KMSInvalidStateException"])
    );
}

#[test]
fn live_pages_are_followed_and_the_kms_lookup_cap_is_said() {
    run_named("pages");
}

fn pages(srv: &Server) {
    srv.seed(&account(
        "CONNECTED",
        None,
        json!([
            {"name": "UpdateCustomKeyStore", "store": STORE_A, "ago": 3600, "count": 120, "id": "upd"},
            {"name": "Decrypt", "key": key_arn(KEY_A), "ago": 60, "error": "KMSInvalidStateException",
             "message": "m", "count": 560, "id": "dec"},
        ]),
    ));
    let run = diagnose(srv, STORE_A);
    let c = run.expect(CHANGES, "WARN");
    assert!(
        c["message"]
            .as_str()
            .unwrap()
            .contains("120 UpdateCustomKeyStore"),
        "{}",
        c["message"]
    );
    let evidence = run.evidence(CHANGES);
    assert!(
        evidence.contains("lookup EventName=UpdateCustomKeyStore: 120 event(s) in 3 page(s)"),
        "{evidence}"
    );
    // The KMS lookup stops at 10 pages (500 events) and says so.
    let f = run.expect(FAILED, "WARN");
    let m = f["message"].as_str().unwrap();
    assert!(m.contains("500 failed call(s)"), "{m}");
    assert!(
        m.contains("bounded: only the 500 most recent KMS events"),
        "{m}"
    );
    assert!(
        run.evidence(FAILED)
            .contains("stopped at the cap of 10 pages"),
        "{}",
        run.evidence(FAILED)
    );
    // 3 pages of updates, one each for the other four names, 10 of KMS events.
    assert_eq!(srv.calls().get(LOOKUP), Some(&17), "{:?}", srv.calls());
}

#[test]
fn live_a_denied_or_throttled_lookup_is_could_not_check() {
    run_named("denied");
}

fn denied(srv: &Server) {
    srv.seed(&account("CONNECTED", None, history()));
    srv.faults(json!({"action": LOOKUP, "error": "AccessDeniedException"}));
    let run = diagnose(srv, STORE_A);
    for id in [CHANGES, FAILED] {
        run.expect(id, "ERROR");
        let m = run.message(id);
        assert!(
            m.contains("access denied") && m.contains(LOOKUP),
            "{id}: {m}"
        );
    }
    run.expect_code(3);
    srv.seed(&account("CONNECTED", None, history()));
    srv.faults(json!({"action": LOOKUP, "error": "ThrottlingException"}));
    let run = diagnose(srv, STORE_A);
    for id in [CHANGES, FAILED] {
        run.expect(id, "ERROR");
        assert!(
            run.message(id).contains("throttled"),
            "{id}: {}",
            run.message(id)
        );
    }
    assert_eq!(srv.calls().get(LOOKUP), Some(&4), "the SDK retried");
}

#[test]
fn live_a_scan_makes_the_same_lookups_for_every_store() {
    run_named("scan");
}

fn scan(srv: &Server) {
    srv.seed(&account("CONNECTED", None, history()));
    let mut args = base(srv);
    args.extend(strings(&["scan", "--regions", REGION]));
    let raw = run_cks_doctor_raw(&args, &tmp(LOG));
    let v: Value =
        serde_json::from_str(&raw.stdout).unwrap_or_else(|e| panic!("{e}: {}", raw.stdout));
    let reports = v["reports"].as_array().unwrap();
    let status = |store: &str, id: &str| -> Value {
        let r = reports
            .iter()
            .find(|r| r["diagnosis"]["custom_key_store_id"] == store)
            .unwrap_or_else(|| panic!("no report for {store}"));
        r["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .map(|c| c["status"].clone())
            .unwrap_or_else(|| panic!("{store}: no {id}"))
    };
    assert_eq!(status(STORE_A, CHANGES), "WARN");
    assert_eq!(status(STORE_A, FAILED), "WARN");
    assert_eq!(status(STORE_B, CHANGES), "WARN");
    assert_eq!(status(STORE_B, FAILED), "PASS");
    assert_eq!(status(HSM_STORE, CHANGES), "PASS");
    // Three stores, the same six lookups as one store's diagnose.
    assert_eq!(srv.calls().get(LOOKUP), Some(&6), "{:?}", srv.calls());
}

#[test]
fn live_the_emulation_refuses_what_cloudtrail_refuses() {
    run_named("invalid");
}

/// LookupEvents called by hand (as the AWS CLI would), to pin the emulation to AWS's rules.
fn invalid(srv: &Server) {
    srv.seed(&account("CONNECTED", None, history()));
    let call = |body: Value| {
        srv.http(
            "POST",
            "/",
            &[
                ("Content-Type", "application/x-amz-json-1.1"),
                ("X-Amz-Target", "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents"),
                ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240601/us-east-1/cloudtrail/aws4_request, SignedHeaders=host, Signature=0"),
            ],
            &body.to_string(),
        )
    };
    let two = json!({"LookupAttributes": [
        {"AttributeKey": "EventName", "AttributeValue": "UpdateCustomKeyStore"},
        {"AttributeKey": "EventSource", "AttributeValue": "kms.amazonaws.com"}]});
    let (status, body) = call(two);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("InvalidLookupAttributesException"), "{body}");
    let (status, body) = call(json!({"MaxResults": 51}));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("InvalidMaxResultsException"), "{body}");
    let (status, body) = call(json!({"StartTime": 2000.0, "EndTime": 1000.0}));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("InvalidTimeRangeException"), "{body}");
    let (status, body) = call(json!({"NextToken": "bogus"}));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("InvalidNextTokenException"), "{body}");
    // Pages of 2, newest first, the events of this Region only.
    let (status, body) = call(json!({"MaxResults": 2,
        "LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "UpdateCustomKeyStore"}]}));
    assert_eq!(status, 200, "{body}");
    let page: Value = serde_json::from_str(&body).unwrap();
    let ids: Vec<&str> = page["Events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["EventId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["ev-other", "ev-upd"]);
    let (_, body) = call(json!({"MaxResults": 2, "NextToken": page["NextToken"],
        "LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "UpdateCustomKeyStore"}]}));
    let page: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["Events"][0]["EventId"], "ev-old");
    assert!(page.get("NextToken").is_none(), "{page}");
    assert_eq!(srv.calls().get(LOOKUP), Some(&6));
}

const SCENARIOS: &[Scenario] = &[
    ("invalid", invalid),
    ("listed", listed),
    ("pages", pages),
    ("denied", denied),
    ("scan", scan),
];
