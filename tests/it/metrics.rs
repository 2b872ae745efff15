//! The CloudWatch metrics checks (`xks.metrics.*`) through the engine's diagnose on in-memory
//! facts: an existing external key store and a recorded GetMetricData answer. For each check a
//! passing case and each failing case with the exact exceptions and codes; what "no data
//! point" means for each; the diagnosis an expired certificate confirms.

use crate::support::common::*;
use cks_doctor::checks::Status::{self, *};
use cks_doctor::diagnose::Extras;
use cks_doctor::engine::{self, Settings, Stage};
use cks_doctor::facts::metrics::{format_time, now_secs, Query};
use cks_doctor::facts::model::*;
use cks_doctor::facts::recorded::Recorded;
use cks_doctor::facts::{FactKind, Source};
use cks_doctor::kind::StoreKind;
use cks_doctor::report::{CheckResult, Report};
use cks_doctor::runner::Selection;
use std::time::Duration;

const XKS_STORE: &str = "cks-0b7c1a2d3e4f56789";

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

/// One time series of a query's answer: (seconds ago, value) points.
fn series(q: Query, label: &str, points: &[(i64, f64)]) -> MetricDataResult {
    let now = now_secs();
    MetricDataResult {
        id: q.id(XKS_STORE),
        label: Some(label.into()),
        timestamps: points
            .iter()
            .map(|(ago, _)| format_time(now - ago))
            .collect(),
        values: points.iter().map(|(_, v)| *v).collect(),
        status_code: Some("Complete".into()),
        messages: Vec::new(),
    }
}

/// An answer to every query, empty, with `results` in place of the empty ones of their queries.
fn answer(results: Vec<MetricDataResult>) -> GetMetricDataOutput {
    let mut out = GetMetricDataOutput::default();
    for q in Query::ALL {
        let id = q.id(XKS_STORE);
        let mine: Vec<MetricDataResult> = results.iter().filter(|r| r.id == id).cloned().collect();
        if mine.is_empty() {
            out.metric_data_results.push(MetricDataResult {
                id,
                label: Some(String::new()),
                status_code: Some("Complete".into()),
                ..Default::default()
            });
        } else {
            out.metric_data_results.extend(mine);
        }
    }
    out
}

fn account(store: CustomKeyStore, metrics: Option<GetMetricDataOutput>) -> Recorded {
    Recorded {
        origin: "test".into(),
        custom_key_stores: Some(vec![store]),
        metric_data: metrics,
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
    fn expect(
        &self,
        id: &str,
        status: Status,
        exceptions: &[&str],
        codes: &[&str],
    ) -> &CheckResult {
        let r = self.get(id);
        if matches!(status, Fail | Warn) {
            assert_result(r, status, exceptions, codes);
        } else {
            assert_eq!(r.status, status, "{id}: {} — {:?}", r.message, r.evidence);
        }
        r
    }
}

async fn diagnose_with(facts: Recorded, settings: Settings) -> Run {
    let stores = facts.custom_key_stores.clone().unwrap_or_default();
    let store = stores[0].clone();
    let extras = Extras {
        region: "us-east-1".into(),
        timeout: Duration::from_secs(5),
        ..Default::default()
    };
    let run = engine::diagnose_store(
        &settings,
        Source::Recorded(facts),
        Some("us-east-1".into()),
        stores,
        store,
        extras,
    )
    .await
    .expect("the diagnosis runs");
    Run {
        fetched: run.facts.counts.get(FactKind::Metrics),
        report: run.report,
    }
}

/// Only the metrics checks (no probe of the proxy).
fn settings() -> Settings {
    let mut s = Settings::new(Duration::from_secs(10), None);
    s.selection = Selection {
        only: vec!["xks.metrics".into()],
        skip: Vec::new(),
    };
    s
}

async fn diagnose(results: Vec<MetricDataResult>) -> Run {
    diagnose_with(
        account(xks_store("CONNECTED", None), Some(answer(results))),
        settings(),
    )
    .await
}

const CERT: &str = "xks.metrics.certificate-expiry";
const CRED: &str = "xks.metrics.credential-age";
const LATENCY: &str = "xks.metrics.latency";
const ERRORS: &str = "xks.metrics.errors";
const STATES: &str = "xks.metrics.key-manager-states";
const THROTTLE: &str = "xks.metrics.throttling";

// ----- the window and what runs where -----

#[tokio::test]
async fn the_metrics_checks_run_for_existing_external_stores_only() {
    let create = engine::checks_for(StoreKind::Xks, &Selection::default(), Stage::Create).unwrap();
    assert!(create.iter().all(|c| !c.id.starts_with("xks.metrics.")));
    let existing =
        engine::checks_for(StoreKind::Xks, &Selection::default(), Stage::Existing).unwrap();
    assert_eq!(
        existing
            .iter()
            .filter(|c| c.id.starts_with("xks.metrics."))
            .count(),
        6
    );
    let cloudhsm =
        engine::checks_for(StoreKind::Cloudhsm, &Selection::default(), Stage::Existing).unwrap();
    assert!(cloudhsm.iter().all(|c| !c.id.starts_with("xks.metrics.")));
    // Nothing in the window: what "no data point" means differs per check; one read serves all.
    let run = diagnose(Vec::new()).await;
    assert_eq!(run.fetched, 1);
    run.expect(CERT, Skip, &[], &[]);
    run.expect(CRED, Skip, &[], &[]);
    run.expect(LATENCY, Skip, &[], &[]);
    run.expect(STATES, Skip, &[], &[]);
    let e = run.expect(ERRORS, Pass, &[], &[]);
    assert!(e.message.contains("no error"), "{}", e.message);
    run.expect(THROTTLE, Pass, &[], &[]);
    assert!(
        run.get(CERT).message.contains("nothing to judge"),
        "{}",
        run.get(CERT).message
    );
}

#[tokio::test]
async fn without_the_metrics_file_every_metrics_check_could_not_check() {
    let run = diagnose_with(account(xks_store("CONNECTED", None), None), settings()).await;
    for id in [CERT, CRED, LATENCY, ERRORS, STATES, THROTTLE] {
        let r = run.expect(id, Error, &[], &[]);
        assert!(
            r.message.contains("cloudwatch-get-metric-data.json"),
            "{id}: {}",
            r.message
        );
    }
    assert_eq!(run.report.exit_code(), 3);
}

#[tokio::test]
async fn a_query_the_read_does_not_hold_or_that_cloudwatch_failed_is_could_not_check() {
    // A snapshot recorded by hand with only the certificate query.
    let only_cert = GetMetricDataOutput {
        metric_data_results: vec![series(Query::Certificate, "myproxy", &[(600, 200.0)])],
        ..Default::default()
    };
    let run = diagnose_with(
        account(xks_store("CONNECTED", None), Some(only_cert)),
        settings(),
    )
    .await;
    run.expect(CERT, Pass, &[], &[]);
    let r = run.expect(LATENCY, Error, &[], &[]);
    assert!(
        r.message.contains("latp99_cks_0b7c1a2d3e4f56789"),
        "{}",
        r.message
    );
    let mut forbidden = series(Query::CredentialAge, "", &[]);
    forbidden.status_code = Some("Forbidden".into());
    let run = diagnose(vec![forbidden]).await;
    let r = run.expect(CRED, Error, &[], &[]);
    assert!(r.message.contains("Forbidden"), "{}", r.message);
}

// ----- certificate -----

#[tokio::test]
async fn certificate_days_to_expiry_pass_warn_fail() {
    let cert = |days: f64| {
        diagnose(vec![series(
            Query::Certificate,
            "myproxy.xks.example.com",
            &[(900, days + 1.0), (300, days)],
        )])
    };
    let r = cert(200.0).await;
    let p = r.expect(CERT, Pass, &[], &[]);
    assert!(
        p.evidence
            .iter()
            .any(|e| e.contains("myproxy.xks.example.com")),
        "{:?}",
        p.evidence
    );
    cert(20.0).await.expect(CERT, Warn, &[], &[]);
    // Under 10 days: a FAIL that names no code yet (nothing has failed so far).
    let r = cert(5.0).await;
    let f = r.expect(CERT, Fail, &[], &[]);
    assert!(f.message.contains("expires in 5.0 days"), "{}", f.message);
    // Expired: KMS cannot talk to the proxy.
    cert(-1.0).await.expect(
        CERT,
        Fail,
        &["KMSInvalidStateException"],
        &["XKS_PROXY_INVALID_TLS_CONFIGURATION"],
    );
    // The latest value, 3 days ago, said 1.5 days: it has expired since.
    let r = diagnose(vec![series(Query::Certificate, "", &[(3 * 86400, 1.5)])]).await;
    let f = r.expect(
        CERT,
        Fail,
        &["KMSInvalidStateException"],
        &["XKS_PROXY_INVALID_TLS_CONFIGURATION"],
    );
    assert!(f.message.contains("has expired"), "{}", f.message);
}

#[tokio::test]
async fn an_expired_certificate_confirms_a_store_failed_with_invalid_tls_configuration() {
    let facts = account(
        xks_store("FAILED", Some("XKS_PROXY_INVALID_TLS_CONFIGURATION")),
        Some(answer(vec![series(Query::Certificate, "", &[(7200, 0.0)])])),
    );
    let run = diagnose_with(facts, settings()).await;
    let d = run.report.diagnosis.as_ref().unwrap();
    assert_eq!(d.confirmed_by, vec![CERT.to_string()], "{}", d.text);
    assert!(
        d.text
            .contains("confirmed by xks.metrics.certificate-expiry"),
        "{}",
        d.text
    );
    assert_eq!(run.report.exit_code(), 1);
    // A certificate that expires in 5 days does not confirm it.
    let facts = account(
        xks_store("FAILED", Some("XKS_PROXY_INVALID_TLS_CONFIGURATION")),
        Some(answer(vec![series(Query::Certificate, "", &[(600, 5.0)])])),
    );
    let run = diagnose_with(facts, settings()).await;
    assert!(run
        .report
        .diagnosis
        .as_ref()
        .unwrap()
        .confirmed_by
        .is_empty());
}

// ----- credential -----

#[tokio::test]
async fn credential_age_warns_past_the_configured_age() {
    let cred = |days: f64| vec![series(Query::CredentialAge, "", &[(600, days)])];
    diagnose(cred(30.0)).await.expect(CRED, Pass, &[], &[]);
    let r = diagnose(cred(120.0)).await;
    let w = r.expect(CRED, Warn, &[], &[]);
    assert!(w.message.contains("past 90 days"), "{}", w.message);
    let mut s = settings();
    s.metrics.max_credential_age_days = 20;
    let facts = account(xks_store("CONNECTED", None), Some(answer(cred(30.0))));
    diagnose_with(facts, s).await.expect(CRED, Warn, &[], &[]);
}

// ----- latency -----

#[tokio::test]
async fn latency_p99_near_or_over_the_timeout() {
    let lat = |p99: f64, max: f64| {
        vec![
            series(
                Query::LatencyP99,
                "Decrypt|Decrypt",
                &[(900, 40.0), (300, p99)],
            ),
            series(Query::LatencyP99, "Encrypt|Encrypt", &[(600, 30.0)]),
            series(Query::LatencyMax, "Decrypt|Decrypt", &[(300, max)]),
        ]
    };
    diagnose(lat(120.0, 150.0))
        .await
        .expect(LATENCY, Pass, &[], &[]);
    let r = diagnose(lat(220.0, 240.0)).await;
    let w = r.expect(LATENCY, Warn, &[], &[]);
    assert!(
        w.message.contains("Decrypt (proxy Decrypt)"),
        "{}",
        w.message
    );
    diagnose(lat(250.0, 500.0)).await.expect(
        LATENCY,
        Fail,
        &["KMSInvalidStateException"],
        &["XKS_PROXY_TIMED_OUT"],
    );
    // No p99 published: the maximum, which shows one timed-out request at most.
    let only_max = vec![series(
        Query::LatencyMax,
        "Decrypt|Decrypt",
        &[(300, 250.0)],
    )];
    let r = diagnose(only_max).await;
    let w = r.expect(LATENCY, Warn, &[], &[]);
    assert!(w.message.contains("timed out"), "{}", w.message);
}

// ----- errors -----

fn errors(exception: &str, kind: &str, points: &[(i64, f64)]) -> MetricDataResult {
    series(
        Query::Errors,
        &format!("{exception}|{kind}|Decrypt|Decrypt"),
        points,
    )
}

#[tokio::test]
async fn errors_by_exception_name() {
    // Only successful requests: a PASS that counts them.
    let r = diagnose(vec![errors("None", "N/A", &[(600, 100.0), (300, 80.0)])]).await;
    let p = r.expect(ERRORS, Pass, &[], &[]);
    assert!(p.message.contains("180 request(s)"), "{}", p.message);
    // Errors of one key: a WARN naming what callers saw.
    let r = diagnose(vec![
        errors("None", "N/A", &[(600, 100.0), (300, 80.0)]),
        errors(
            "KeyNotFoundException",
            "Non-retryable",
            &[(600, 90.0), (300, 90.0)],
        ),
    ])
    .await;
    let w = r.expect(ERRORS, Warn, &[], &[]);
    assert!(
        w.message.contains("KeyNotFoundException ×180"),
        "{}",
        w.message
    );
    assert!(
        w.evidence
            .iter()
            .any(|e| e.contains("CreateKey: XksKeyNotFoundException")
                && e.contains("cryptographic operations: KMSInvalidStateException")),
        "{:?}",
        w.evidence
    );
    // A wrong credential, faster than AWS's alarm rate (5 a minute, 25 per 5-minute period).
    let r = diagnose(vec![
        errors("None", "N/A", &[(600, 10.0), (300, 10.0)]),
        errors(
            "AuthenticationFailedException",
            "Non-retryable",
            &[(600, 2.0), (300, 40.0)],
        ),
        errors("XksProxyUnreachableException", "Retryable", &[(600, 3.0)]),
    ])
    .await;
    let f = r.expect(
        ERRORS,
        Fail,
        &["KMSInvalidStateException"],
        &["INVALID_CREDENTIALS"],
    );
    assert!(!f.mapping_notes.is_empty(), "the inferred codes say so");
    // Under the rate: a WARN.
    let r = diagnose(vec![errors(
        "AuthenticationFailedException",
        "Non-retryable",
        &[(600, 2.0), (300, 20.0)],
    )])
    .await;
    r.expect(ERRORS, Warn, &[], &[]);
}

// ----- external key manager states -----

#[tokio::test]
async fn key_manager_states_degraded_and_unavailable() {
    let active = series(
        Query::ManagersActive,
        "",
        &[(900, 2.0), (600, 2.0), (300, 2.0)],
    );
    diagnose(vec![active.clone()])
        .await
        .expect(STATES, Pass, &[], &[]);
    let r = diagnose(vec![
        active.clone(),
        series(Query::ManagersDegraded, "", &[(600, 1.0), (300, 0.0)]),
    ])
    .await;
    let w = r.expect(STATES, Warn, &[], &[]);
    assert!(w.message.contains("Degraded"), "{}", w.message);
    // Every instance Unavailable in the latest period.
    let r = diagnose(vec![
        series(Query::ManagersActive, "", &[(900, 2.0)]),
        series(Query::ManagersUnavailable, "", &[(300, 2.0)]),
    ])
    .await;
    r.expect(
        STATES,
        Fail,
        &["KMSInvalidStateException"],
        &["XKS_PROXY_NOT_REACHABLE"],
    );
}

// ----- throttling -----

#[tokio::test]
async fn throttled_requests_warn() {
    diagnose(vec![series(Query::Throttle, "Decrypt", &[(300, 0.0)])])
        .await
        .expect(THROTTLE, Pass, &[], &[]);
    let r = diagnose(vec![series(
        Query::Throttle,
        "Decrypt",
        &[(600, 12.0), (300, 30.0)],
    )])
    .await;
    let w = r.expect(THROTTLE, Warn, &[], &[]);
    assert!(w.message.contains("42 request(s)"), "{}", w.message);
    assert!(
        w.evidence
            .iter()
            .any(|e| e.contains("Decrypt: 42 throttled")),
        "{:?}",
        w.evidence
    );
}

#[test]
fn docs_metrics_md_lists_the_queries_the_tool_sends() {
    let doc = std::fs::read_to_string(
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/metrics.md"),
    )
    .unwrap();
    let json = doc
        .split("```json\n")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .expect("a json block");
    let documented: serde_json::Value =
        serde_json::from_str(json).expect("the q.json of docs/metrics.md");
    let sent = serde_json::to_value(cks_doctor::facts::metrics::queries(
        &["cks-1234567890abcdef0".to_string()],
        300,
    ))
    .unwrap();
    assert_eq!(documented, sent);
}

// ----- CloudHSM: HSM health -----

/// An HsmUnhealthy series of the cluster's HSM `hsm`: (seconds ago, value) points.
fn unhealthy(hsm: &str, points: &[(i64, f64)]) -> MetricDataResult {
    let now = now_secs();
    MetricDataResult {
        id: Query::HsmUnhealthy.id(CLUSTER_ID),
        label: Some(hsm.into()),
        timestamps: points
            .iter()
            .map(|(ago, _)| format_time(now - ago))
            .collect(),
        values: points.iter().map(|(_, v)| *v).collect(),
        status_code: Some("Complete".into()),
        messages: Vec::new(),
    }
}

async fn diagnose_cluster(results: Vec<MetricDataResult>) -> Run {
    let mut facts = healthy();
    facts.custom_key_stores = Some(vec![store("cks-2222222222222222b", "Hsm", CLUSTER_ID)]);
    facts.metric_data = Some(GetMetricDataOutput {
        metric_data_results: if results.is_empty() {
            vec![MetricDataResult {
                id: Query::HsmUnhealthy.id(CLUSTER_ID),
                label: Some(String::new()),
                status_code: Some("Complete".into()),
                ..Default::default()
            }]
        } else {
            results
        },
        ..Default::default()
    });
    let mut s = Settings::new(Duration::from_secs(10), None);
    s.selection = Selection {
        only: vec![HSM_HEALTH.into()],
        skip: Vec::new(),
    };
    diagnose_with(facts, s).await
}

const HSM_HEALTH: &str = "cloudhsm.metrics.hsm-health";

#[tokio::test]
async fn hsm_health_pass_warn_fail_and_skip() {
    assert_eq!(
        Query::HsmUnhealthy.id(CLUSTER_ID),
        "hsmunhealthy_cluster_jxhlf7644ne"
    );
    let existing =
        engine::checks_for(StoreKind::Cloudhsm, &Selection::default(), Stage::Existing).unwrap();
    assert!(existing.iter().any(|c| c.id == HSM_HEALTH));
    let create =
        engine::checks_for(StoreKind::Cloudhsm, &Selection::default(), Stage::Create).unwrap();
    assert!(create.iter().all(|c| c.id != HSM_HEALTH));
    let xks = engine::checks_for(StoreKind::Xks, &Selection::default(), Stage::Existing).unwrap();
    assert!(xks.iter().all(|c| c.id != HSM_HEALTH));

    let run = diagnose_cluster(vec![
        unhealthy("hsm-aaaaaaaaaaa", &[(900, 0.0), (300, 0.0)]),
        unhealthy("hsm-bbbbbbbbbbb", &[(900, 0.0), (300, 0.0)]),
    ])
    .await;
    assert_eq!(run.fetched, 1);
    run.expect(HSM_HEALTH, Pass, &[], &[]);

    let run = diagnose_cluster(vec![
        unhealthy("hsm-aaaaaaaaaaa", &[(900, 1.0), (300, 0.0)]),
        unhealthy("hsm-bbbbbbbbbbb", &[(900, 0.0), (300, 0.0)]),
    ])
    .await;
    let r = run.expect(HSM_HEALTH, Warn, &[], &[]);
    assert!(r.message.contains("hsm-aaaaaaaaaaa"), "{}", r.message);

    let run = diagnose_cluster(vec![unhealthy(
        "hsm-bbbbbbbbbbb",
        &[(900, 0.0), (300, 1.0)],
    )])
    .await;
    let r = run.expect(HSM_HEALTH, Fail, &["KMSInvalidStateException"], &[]);
    assert!(r.message.contains("hsm-bbbbbbbbbbb"), "{}", r.message);
    assert!(
        r.evidence
            .iter()
            .any(|e| e.contains("HsmUnhealthy (Maximum) of AWS/CloudHSM")),
        "{:?}",
        r.evidence
    );

    let run = diagnose_cluster(Vec::new()).await;
    let r = run.expect(HSM_HEALTH, Skip, &[], &[]);
    assert!(r.message.contains("nothing to judge"), "{}", r.message);
}
