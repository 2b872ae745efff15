//! The CloudTrail checks (`account.trail.store-changes`, `account.trail.failed-calls`) through the
//! engine's diagnose on in-memory facts: an existing store and recorded LookupEvents events.
//! Who changed the store and when; that Connect's outcome is not in CloudTrail; failed calls
//! grouped by error; a missing file is "could not check"; the diagnosis cites a change.

use crate::support::common::*;
use cks_doctor::checks::Status::{self, *};
use cks_doctor::diagnose::Extras;
use cks_doctor::engine::{self, Settings, Stage};
use cks_doctor::facts::model::*;
use cks_doctor::facts::recorded::Recorded;
use cks_doctor::facts::trail::{Event, LookupEventsOutput, Resource};
use cks_doctor::facts::{FactKind, Source};
use cks_doctor::kind::StoreKind;
use cks_doctor::report::{CheckResult, Report};
use cks_doctor::runner::Selection;
use serde_json::json;
use std::time::Duration;

const XKS_STORE: &str = "cks-0b7c1a2d3e4f56789";
const KEY_ID: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";
const KEY_ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const CHANGES: &str = "account.trail.store-changes";
const FAILED: &str = "account.trail.failed-calls";

fn xks_store(state: &str, code: Option<&str>) -> CustomKeyStore {
    CustomKeyStore {
        custom_key_store_id: XKS_STORE.into(),
        custom_key_store_name: "ExternalStore".into(),
        custom_key_store_type: Some("EXTERNAL_KEY_STORE".into()),
        connection_state: Some(state.into()),
        connection_error_code: code.map(str::to_string),
        xks_proxy_configuration: Some(XksProxyConfiguration {
            connectivity: Some("PUBLIC_ENDPOINT".into()),
            access_key_id: Some("ABCDE12345670EXAMPLE".into()),
            uri_endpoint: Some("https://myproxy.xks.example.com".into()),
            uri_path: Some("/kms/xks/v1".into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A management event of a store, as LookupEvents returns it.
fn management(id: &str, name: &str, store: &str, time: &str, error: Option<&str>) -> Event {
    let mut record = json!({
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/Alice"},
        "eventTime": time,
        "eventSource": "kms.amazonaws.com",
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "192.0.2.7",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": {"customKeyStoreId": store},
        "responseElements": null,
        "requestID": format!("req-{id}"),
        "eventID": id,
        "readOnly": false,
        "eventType": "AwsApiCall",
    });
    if name == "UpdateCustomKeyStore" {
        record["requestParameters"]["xksProxyAuthenticationCredential"] = json!({"accessKeyId": "ABCDE12345670EXAMPLE", "rawSecretAccessKey": "HIDDEN_DUE_TO_SECURITY_REASONS"});
    }
    if let Some(e) = error {
        record["errorCode"] = json!(e);
        record["errorMessage"] = json!("the store is not in a valid state");
    }
    Event {
        event_id: Some(id.into()),
        event_name: Some(name.into()),
        event_time: Some(time.into()),
        event_source: Some("kms.amazonaws.com".into()),
        cloud_trail_event: Some(record.to_string()),
        ..Default::default()
    }
}

/// A failed Decrypt with a key.
fn failed_decrypt(id: &str, key: &str, code: &str, message: &str, with_store: bool) -> Event {
    let mut record = json!({
        "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/app/i-1"},
        "eventTime": "2024-06-01T12:10:00Z",
        "eventSource": "kms.amazonaws.com",
        "eventName": "Decrypt",
        "sourceIPAddress": "10.0.0.5",
        "requestParameters": {"keyId": key, "encryptionAlgorithm": "SYMMETRIC_DEFAULT"},
        "responseElements": null,
        "errorCode": code,
        "errorMessage": message,
        "requestID": format!("req-{id}"),
        "eventID": id,
        "resources": [{"type": "AWS::KMS::Key", "ARN": key}],
    });
    if with_store {
        record["additionalEventData"] = json!({"customKeyStoreId": XKS_STORE});
    }
    Event {
        event_id: Some(id.into()),
        event_name: Some("Decrypt".into()),
        event_source: Some("kms.amazonaws.com".into()),
        resources: vec![Resource {
            resource_type: Some("AWS::KMS::Key".into()),
            resource_name: Some(key.into()),
        }],
        cloud_trail_event: Some(record.to_string()),
        ..Default::default()
    }
}

fn account(store: CustomKeyStore, events: Option<Vec<Event>>, with_keys: bool) -> Recorded {
    let key = KeyMetadata {
        key_id: KEY_ID.into(),
        arn: Some(KEY_ARN.into()),
        key_state: Some("Enabled".into()),
        custom_key_store_id: Some(store.custom_key_store_id.clone()),
        ..Default::default()
    };
    Recorded {
        origin: "test".into(),
        custom_key_stores: Some(vec![store]),
        trail: events.map(|events| LookupEventsOutput { events }),
        keys: with_keys.then(|| {
            vec![KeyListEntry {
                key_id: KEY_ID.into(),
                key_arn: Some(KEY_ARN.into()),
            }]
        }),
        key_descriptions: with_keys.then(|| vec![key]),
        ..Default::default()
    }
}

struct Run {
    report: Report,
    fetched: usize,
}

impl Run {
    fn get(&self, id: &str) -> &CheckResult {
        self.report
            .checks
            .iter()
            .find(|r| r.id == id)
            .unwrap_or_else(|| panic!("no result for {id}"))
    }
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

fn settings() -> Settings {
    let mut s = Settings::new(Duration::from_secs(10), None);
    s.selection = Selection {
        only: vec![CHANGES.into(), FAILED.into()],
        skip: Vec::new(),
    };
    s
}

async fn diagnose(facts: Recorded) -> Run {
    let stores = facts.custom_key_stores.clone().unwrap_or_default();
    let store = stores[0].clone();
    let extras = Extras {
        region: "us-east-1".into(),
        timeout: Duration::from_secs(5),
        ..Default::default()
    };
    let run = engine::diagnose_store(
        &settings(),
        Source::Recorded(facts),
        Some("us-east-1".into()),
        stores,
        store,
        extras,
    )
    .await
    .expect("the diagnosis runs");
    Run {
        fetched: run.facts.counts.get(FactKind::Trail),
        report: run.report,
    }
}

#[tokio::test]
async fn the_trail_checks_run_for_existing_stores_of_both_kinds_only() {
    for kind in [StoreKind::Xks, StoreKind::Cloudhsm] {
        let create = engine::checks_for(kind, &Selection::default(), Stage::Create).unwrap();
        assert!(create.iter().all(|c| c.id != CHANGES && c.id != FAILED));
        let existing = engine::checks_for(kind, &Selection::default(), Stage::Existing).unwrap();
        assert!(existing.iter().any(|c| c.id == CHANGES), "{kind:?}");
        assert!(existing.iter().any(|c| c.id == FAILED), "{kind:?}");
    }
    // No event in the window: both pass, one read serves both checks, and Connect's outcome is
    // said to be outside CloudTrail.
    let run = diagnose(account(
        xks_store("CONNECTED", None),
        Some(Vec::new()),
        true,
    ))
    .await;
    assert_eq!(run.fetched, 1);
    let c = run.expect(CHANGES, Pass, &[]);
    assert!(
        c.message.contains("outcome of ConnectCustomKeyStore")
            && c.message.contains("responseElements null"),
        "{}",
        c.message
    );
    run.expect(FAILED, Pass, &[]);
}

#[tokio::test]
async fn without_the_trail_file_both_checks_could_not_check() {
    let run = diagnose(account(xks_store("CONNECTED", None), None, true)).await;
    for id in [CHANGES, FAILED] {
        let r = run.expect(id, Error, &[]);
        assert!(
            r.message.contains("cloudtrail-lookup-events.json"),
            "{id}: {}",
            r.message
        );
    }
    assert_eq!(run.report.exit_code(), 3);
}

#[tokio::test]
async fn an_update_or_a_disconnect_in_the_window_warns_with_who_when_and_where() {
    let events = vec![
        management(
            "e1",
            "ConnectCustomKeyStore",
            XKS_STORE,
            "2024-06-01T09:00:00Z",
            None,
        ),
        management(
            "e2",
            "UpdateCustomKeyStore",
            XKS_STORE,
            "2024-06-01T11:00:00Z",
            None,
        ),
        // Another store's change is not this store's.
        management(
            "e3",
            "DisconnectCustomKeyStore",
            "cks-99999999999999999",
            "2024-06-01T11:30:00Z",
            None,
        ),
    ];
    let run = diagnose(account(xks_store("CONNECTED", None), Some(events), true)).await;
    let r = run.expect(CHANGES, Warn, &[]);
    assert!(
        r.message
            .contains("1 ConnectCustomKeyStore, 1 UpdateCustomKeyStore"),
        "{}",
        r.message
    );
    assert!(
        r.message.contains("2024-06-01T11:00:00+00:00 UpdateCustomKeyStore by arn:aws:iam::111122223333:user/Alice from 192.0.2.7 (aws-cli/2.15.0)"),
        "{}",
        r.message
    );
    // The names of what changed, never the values.
    assert!(
        r.message
            .contains("changed: xksProxyAuthenticationCredential"),
        "{}",
        r.message
    );
    let all = format!("{} {:?}", r.message, r.evidence);
    assert!(!all.contains("HIDDEN_DUE_TO_SECURITY_REASONS"), "{all}");
    assert!(!all.contains("cks-99999999999999999"), "{all}");
    assert!(all.contains("responseElements null"), "{all}");

    // A failed Update and a Connect change nothing: PASS, listed.
    let events = vec![
        management(
            "e1",
            "ConnectCustomKeyStore",
            XKS_STORE,
            "2024-06-01T09:00:00Z",
            None,
        ),
        management(
            "e2",
            "UpdateCustomKeyStore",
            XKS_STORE,
            "2024-06-01T11:00:00Z",
            Some("CustomKeyStoreInvalidStateException"),
        ),
    ];
    let run = diagnose(account(xks_store("CONNECTED", None), Some(events), true)).await;
    let r = run.expect(CHANGES, Pass, &[]);
    assert!(
        r.message
            .contains("failed, CustomKeyStoreInvalidStateException"),
        "{}",
        r.message
    );
}

#[tokio::test]
async fn failed_calls_are_grouped_by_error_with_counts_and_request_ids() {
    let timeout =
        "The request was rejected because the external key store proxy did not respond in time.";
    let events = vec![
        failed_decrypt("d1", KEY_ARN, "KMSInvalidStateException", timeout, false),
        failed_decrypt("d2", KEY_ID, "KMSInvalidStateException", timeout, false),
        failed_decrypt("d3", KEY_ARN, "KMSInvalidStateException", timeout, false),
        failed_decrypt(
            "d4",
            KEY_ARN,
            "AccessDeniedException",
            "not authorized",
            false,
        ),
        // Another key's failure is not the store's.
        failed_decrypt(
            "d5",
            "arn:aws:kms:us-east-1:111122223333:key/other",
            "KMSInvalidStateException",
            "x",
            false,
        ),
    ];
    let run = diagnose(account(xks_store("CONNECTED", None), Some(events), true)).await;
    let r = run.expect(FAILED, Warn, &["KMSInvalidStateException"]);
    assert!(r.message.contains("4 failed call(s)"), "{}", r.message);
    assert!(
        r.message
            .contains("3 x KMSInvalidStateException, 1 x AccessDeniedException"),
        "{}",
        r.message
    );
    let group = r
        .evidence
        .iter()
        .find(|e| e.starts_with("3 x KMSInvalidStateException"))
        .unwrap_or_else(|| panic!("{:?}", r.evidence));
    assert!(group.contains("did not respond in time"), "{group}");
    assert!(
        group.contains("req-d1") && group.contains("req-d2") && group.contains("req-d3"),
        "{group}"
    );
    assert!(
        group.contains("always returns KMSInvalidStateException"),
        "{group}"
    );
    assert!(!format!("{:?}", r.evidence).contains("req-d5"));

    // Only an AccessDenied: WARN without KMSInvalidStateException.
    let events = vec![failed_decrypt(
        "d4",
        KEY_ARN,
        "AccessDeniedException",
        "not authorized",
        false,
    )];
    let run = diagnose(account(xks_store("CONNECTED", None), Some(events), true)).await;
    run.expect(FAILED, Warn, &[]);
}

#[tokio::test]
async fn without_the_store_keys_failed_calls_are_matched_by_the_recorded_store_id() {
    let events = vec![
        failed_decrypt("d1", KEY_ARN, "KMSInvalidStateException", "m", true),
        failed_decrypt("d2", KEY_ARN, "KMSInvalidStateException", "m", false),
    ];
    let run = diagnose(account(xks_store("CONNECTED", None), Some(events), false)).await;
    let r = run.expect(FAILED, Warn, &["KMSInvalidStateException"]);
    assert!(r.message.contains("1 failed call(s)"), "{}", r.message);
    assert!(
        r.evidence
            .iter()
            .any(|e| e.contains("additionalEventData only")),
        "{:?}",
        r.evidence
    );
}

/// Without the store's keys, finding no failed call is could-not-check, not a pass: calls
/// against its keys that do not name the store would not have been seen.
#[tokio::test]
async fn without_the_store_keys_no_failed_call_is_could_not_check() {
    let events = vec![failed_decrypt(
        "d1",
        KEY_ARN,
        "KMSInvalidStateException",
        "m",
        false,
    )];
    let run = diagnose(account(
        xks_store("CONNECTED", None),
        Some(events.clone()),
        false,
    ))
    .await;
    let r = run.expect(FAILED, Error, &[]);
    assert!(r.message.starts_with("could not check"), "{}", r.message);
    // With the keys the same event is found.
    let run = diagnose(account(xks_store("CONNECTED", None), Some(events), true)).await;
    run.expect(FAILED, Warn, &["KMSInvalidStateException"]);
}

#[tokio::test]
async fn a_cloudhsm_store_reads_the_same_events() {
    let mut facts = healthy();
    let s = store("cks-2222222222222222b", "Hsm", CLUSTER_ID);
    facts.custom_key_stores = Some(vec![s.clone()]);
    facts.trail = Some(LookupEventsOutput {
        events: vec![management(
            "h1",
            "DisconnectCustomKeyStore",
            &s.custom_key_store_id,
            "2024-06-01T11:00:00Z",
            None,
        )],
    });
    let run = diagnose(facts).await;
    let r = run.expect(CHANGES, Warn, &[]);
    assert!(
        r.message.contains("DisconnectCustomKeyStore"),
        "{}",
        r.message
    );
}

#[tokio::test]
async fn the_diagnosis_cites_a_recent_change_of_a_failed_store() {
    let events = vec![management(
        "e2",
        "UpdateCustomKeyStore",
        XKS_STORE,
        "2024-06-01T11:00:00Z",
        None,
    )];
    let run = diagnose(account(
        xks_store("FAILED", Some("XKS_PROXY_NOT_REACHABLE")),
        Some(events),
        true,
    ))
    .await;
    let d = run.report.diagnosis.as_ref().expect("a diagnosis");
    assert!(d.text.contains("UpdateCustomKeyStore"), "{}", d.text);
    assert!(d.text.contains(CHANGES), "{}", d.text);
}

/// The example snapshot: its store was disconnected, updated and connected, and failed since.
#[test]
fn the_failed_store_example_shows_its_recent_changes_and_failed_calls() {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/failed-store");
    let out = crate::support::bin()
        .arg("--snapshot")
        .arg(&dir)
        .args(["--region", "us-east-1", "diagnose", "cks-0a1b2c3d4e5f60789"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("CloudTrail\n"), "{text}");
    assert!(
        text.contains("[!] Who connected, disconnected or changed the store recently"),
        "{text}"
    );
    assert!(
        text.contains("2025-07-14T09:12:03+00:00 UpdateCustomKeyStore by arn:aws:iam::111122223333:user/Alice from 198.51.100.24"),
        "{text}"
    );
    assert!(text.contains("changed: cloudHsmClusterId"), "{text}");
    assert!(
        text.contains("CloudTrail does not record the outcome of ConnectCustomKeyStore"),
        "{text}"
    );
    assert!(
        text.contains("3 failed call(s) against the keys of cks-0a1b2c3d4e5f60789 in the recorded events (3 x KMSInvalidStateException)"),
        "{text}"
    );
    assert!(
        text.contains("e1f2a3b4-c5d6-4e7f-8a9b-c0d1e2f3a484"),
        "{text}"
    );
    // The diagnosis: confirmed by the subnet check, the update cited.
    assert!(
        text.contains("confirmed by cloudhsm.subnets.free-addresses; CloudTrail (account.trail.store-changes) shows a recent change: latest change: 2025-07-14T09:12:03+00:00 UpdateCustomKeyStore"),
        "{text}"
    );
    // No secret-like value of the records: access key ids are not printed.
    assert!(!text.contains("AKIAEXAMPLEALICE0001"), "{text}");
}
