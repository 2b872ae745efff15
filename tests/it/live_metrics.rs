//! The CloudWatch metrics of external key stores through the live path: the built binary's real
//! AWS SDK CloudWatch client (Smithy RPC v2 CBOR) against `tests/live/server.py`, which serves
//! GetMetricData, ListMetrics, DescribeAlarmsForMetric and DescribeAlarms from seeded time
//! series and alarms. An expired certificate confirms XKS_PROXY_INVALID_TLS_CONFIGURATION in
//! diagnose; a scan reads every store's metrics in one GetMetricData; a denied GetMetricData is
//! "could not check"; `snapshot xks` records the metrics and diagnose reads them back; `alarms`
//! says which alarms exist.
//!
//! Needs the project's Python environment: `scripts/setup-venv.sh` (`scripts/test.sh` runs it).

use crate::support::live_server;
use crate::support::live_server::{cloudhsm_ec2, strings};

use live_server::{run_cks_doctor, run_cks_doctor_raw, tmp, Run, Scenario, Scenarios, Server};
use serde_json::{json, Value};

const REGION: &str = "us-east-1";
const LOG: &str = "live-metrics-server.log";
const STORE_A: &str = "cks-0b7c1a2d3e4f56789";
const STORE_B: &str = "cks-0c8d2b3e4f5a67890";
const CLUSTER: &str = "cluster-jxhlf7644ne";

static SERVER: Scenarios = Scenarios::new(LOG);

fn run_named(name: &str) {
    SERVER.run(SCENARIOS, name);
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

/// A certificate time series: days to expiry, published `ago` seconds ago.
fn cert(store: &str, points: &[(u64, f64)]) -> Value {
    json!({
        "store": store, "metric": "XksProxyCertificateDaysToExpire",
        "dimensions": {"CertificateName": "myproxy.xks.example.com"},
        "points": points.iter().map(|(ago, v)| json!({"ago": ago, "value": v})).collect::<Vec<_>>(),
    })
}

fn latency(store: &str, op: &str, samples: &[f64]) -> Value {
    json!({
        "store": store, "metric": "XksProxyLatency",
        "dimensions": {"KmsOperation": op, "XksOperation": op, "KeySpec": "SYMMETRIC_DEFAULT"},
        "points": [{"ago": 600, "values": samples}],
    })
}

fn errors(store: &str, exception: &str, kind: &str, n: f64) -> Value {
    json!({
        "store": store, "metric": "XksProxyErrors",
        "dimensions": {"KmsOperation": "Decrypt", "XksOperation": "Decrypt", "KeySpec": "SYMMETRIC_DEFAULT",
                       "ErrorType": kind, "ExceptionName": exception},
        "points": [{"ago": 600, "value": n}],
    })
}

fn states(store: &str, state: &str, n: f64) -> Value {
    json!({
        "store": store, "metric": "XksExternalKeyManagerStates",
        "dimensions": {"XksExternalKeyManagerState": state},
        "points": [{"ago": 900, "value": n}, {"ago": 300, "value": n}],
    })
}

/// Two external key stores and a CloudHSM one; STORE_A's certificate has expired (its last
/// value, two hours ago, was 0), STORE_B's has 20 days left.
fn account(a_state: &str, a_code: Option<&str>) -> Value {
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
            {"id": "cks-0a1b2c3d4e5f60789", "name": "HsmStore", "cluster": CLUSTER, "state": "CONNECTED"},
        ],
        "metrics": [
            cert(STORE_A, &[(7200, 0.0)]),
            cert(STORE_B, &[(900, 20.0), (300, 20.0)]),
            latency(STORE_A, "Decrypt", &[20.0, 30.0, 40.0, 35.0]),
            latency(STORE_B, "Encrypt", &[120.0, 260.0, 230.0, 240.0]),
            errors(STORE_A, "None", "N/A", 50.0),
            errors(STORE_B, "AuthenticationFailedException", "Non-retryable", 60.0),
            states(STORE_A, "Active", 2.0),
            states(STORE_B, "Active", 1.0),
            states(STORE_B, "Degraded", 1.0),
            // The CloudHSM store's cluster: one HSM unhealthy now.
            {"cluster": CLUSTER, "metric": "HsmUnhealthy", "dimensions": {"HsmId": "hsm-aaaaaaaaaaa"},
             "points": [{"ago": 900, "value": 0}, {"ago": 200, "value": 1}]},
            {"cluster": CLUSTER, "metric": "HsmUnhealthy", "dimensions": {"HsmId": "hsm-bbbbbbbbbbb"},
             "points": [{"ago": 900, "value": 0}, {"ago": 200, "value": 0}]},
        ],
    })
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
        "--only",
        "xks.metrics",
    ])
}

fn diagnose(srv: &Server, store: &str) -> Run {
    let mut args = base(srv);
    args.extend(strings(&["diagnose", store]));
    run_cks_doctor(&args, &tmp(LOG))
}

#[test]
fn live_an_expired_certificate_confirms_invalid_tls_configuration() {
    run_named("expired_certificate");
}

fn expired_certificate(srv: &Server) {
    srv.seed(&account(
        "FAILED",
        Some("XKS_PROXY_INVALID_TLS_CONFIGURATION"),
    ));
    let run = diagnose(srv, STORE_A);
    run.expect_fail(
        "xks.metrics.certificate-expiry",
        None,
        Some("XKS_PROXY_INVALID_TLS_CONFIGURATION"),
    );
    let d = &run.report["diagnosis"];
    assert_eq!(
        d["confirmed_by"],
        json!(["xks.metrics.certificate-expiry"]),
        "{d:#}"
    );
    run.expect("xks.metrics.latency", "PASS");
    run.expect("xks.metrics.errors", "PASS");
    run.expect("xks.metrics.key-manager-states", "PASS");
    run.expect("xks.metrics.throttling", "PASS");
    run.expect("xks.metrics.credential-age", "SKIP");
    run.expect_code(1);
    // One GetMetricData, with the store's nine queries, over the last 24 hours.
    assert_eq!(srv.calls().get("cloudwatch:GetMetricData"), Some(&1));
    let asked = srv.requests("cloudwatch:GetMetricData");
    let queries = asked[0]["MetricDataQueries"].as_array().unwrap();
    assert_eq!(queries.len(), 9, "{queries:#?}");
    assert!(queries
        .iter()
        .any(|q| q["Id"] == "cert_cks_0b7c1a2d3e4f56789"));
    let window = asked[0]["EndTime"].as_f64().unwrap() - asked[0]["StartTime"].as_f64().unwrap();
    assert!((86400.0..86400.0 + 600.0).contains(&window), "{window}");
    // --since narrows the window: the certificate's last value (2 hours ago) falls outside 1h.
    let mut args = base(srv);
    args.extend(strings(&["--since", "1h", "diagnose", STORE_A]));
    let run = run_cks_doctor(&args, &tmp(LOG));
    run.expect("xks.metrics.certificate-expiry", "SKIP");
}

#[test]
fn live_a_scan_reads_every_store_s_metrics_in_one_call() {
    run_named("scan_one_call");
}

fn scan_one_call(srv: &Server) {
    srv.seed(&account("CONNECTED", None));
    let mut args = base(srv);
    args.extend(strings(&["scan", "--regions", REGION]));
    let raw = run_cks_doctor_raw(&args, &tmp(LOG));
    let v: Value =
        serde_json::from_str(&raw.stdout).unwrap_or_else(|e| panic!("{e}: {}", raw.stdout));
    let reports = v["reports"].as_array().unwrap();
    let result = |store: &str, id: &str| -> Value {
        let r = reports
            .iter()
            .find(|r| r["diagnosis"]["custom_key_store_id"] == store)
            .unwrap_or_else(|| panic!("no report for {store}"));
        r["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{store}: no {id}"))
    };
    assert_eq!(
        result(STORE_A, "xks.metrics.certificate-expiry")["status"],
        "FAIL"
    );
    assert_eq!(
        result(STORE_B, "xks.metrics.certificate-expiry")["status"],
        "WARN"
    );
    let lat = result(STORE_B, "xks.metrics.latency");
    assert_eq!(lat["status"], "FAIL", "{lat:#}");
    assert_eq!(
        lat["connection_error_codes"],
        json!(["XKS_PROXY_TIMED_OUT"])
    );
    let err = result(STORE_B, "xks.metrics.errors");
    assert_eq!(err["status"], "FAIL", "{err:#}");
    assert_eq!(
        err["connection_error_codes"],
        json!(["INVALID_CREDENTIALS"])
    );
    assert_eq!(
        result(STORE_B, "xks.metrics.key-manager-states")["status"],
        "WARN"
    );
    // The CloudHSM store runs none of them.
    let hsm = reports
        .iter()
        .find(|r| r["diagnosis"]["custom_key_store_id"] == "cks-0a1b2c3d4e5f60789");
    assert!(
        hsm.is_none(),
        "--only xks.metrics leaves no check for a CloudHSM store"
    );
    // One GetMetricData for both stores: 18 queries (the CloudHSM store, with no check to run,
    // is not scanned, so its cluster's query is not asked).
    assert_eq!(
        srv.calls().get("cloudwatch:GetMetricData"),
        Some(&1),
        "{:?}",
        srv.calls()
    );
    let asked = srv.requests("cloudwatch:GetMetricData");
    assert_eq!(asked[0]["MetricDataQueries"].as_array().unwrap().len(), 18);
}

#[test]
fn live_a_scan_reads_the_cloudhsm_clusters_health_in_the_same_call() {
    run_named("hsm_health");
}

fn hsm_health(srv: &Server) {
    srv.seed(&account("CONNECTED", None));
    let mut args = base(srv);
    args.extend(strings(&[
        "--only",
        "cloudhsm.metrics",
        "scan",
        "--regions",
        REGION,
    ]));
    let raw = run_cks_doctor_raw(&args, &tmp(LOG));
    let v: Value =
        serde_json::from_str(&raw.stdout).unwrap_or_else(|e| panic!("{e}: {}", raw.stdout));
    let hsm = v["reports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["diagnosis"]["custom_key_store_id"] == "cks-0a1b2c3d4e5f60789")
        .expect("the CloudHSM store's report");
    let c = hsm["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "cloudhsm.metrics.hsm-health")
        .expect("cloudhsm.metrics.hsm-health");
    assert_eq!(c["status"], "FAIL", "{c:#}");
    assert_eq!(c["kms_exceptions"], json!(["KMSInvalidStateException"]));
    assert!(
        c["message"].as_str().unwrap().contains("hsm-aaaaaaaaaaa"),
        "{c:#}"
    );
    // Still one GetMetricData for the Region, its cluster query among the stores' ones.
    assert_eq!(srv.calls().get("cloudwatch:GetMetricData"), Some(&1));
    let asked = srv.requests("cloudwatch:GetMetricData");
    let queries = asked[0]["MetricDataQueries"].as_array().unwrap();
    assert!(queries
        .iter()
        .any(|q| q["Id"] == "hsmunhealthy_cluster_jxhlf7644ne"));
}

#[test]
fn live_a_denied_get_metric_data_is_could_not_check() {
    run_named("denied");
}

fn denied(srv: &Server) {
    srv.seed(&account("CONNECTED", None));
    srv.faults(json!({"action": "cloudwatch:GetMetricData", "error": "AccessDenied", "message": "not authorized to perform cloudwatch:GetMetricData"}));
    let run = diagnose(srv, STORE_A);
    for id in [
        "xks.metrics.certificate-expiry",
        "xks.metrics.credential-age",
        "xks.metrics.latency",
        "xks.metrics.errors",
        "xks.metrics.key-manager-states",
        "xks.metrics.throttling",
    ] {
        run.expect(id, "ERROR");
        let m = run.message(id);
        assert!(
            m.contains("access denied") && m.contains("cloudwatch:GetMetricData"),
            "{id}: {m}"
        );
    }
    run.expect_code(3);
    // Throttled past the SDK's retries: could not check too.
    srv.seed(&account("CONNECTED", None));
    srv.faults(json!({"action": "cloudwatch:GetMetricData", "error": "Throttling"}));
    let run = diagnose(srv, STORE_A);
    let m = run.message("xks.metrics.errors").to_string();
    assert!(m.contains("throttled"), "{m}");
    assert_eq!(
        srv.calls().get("cloudwatch:GetMetricData"),
        Some(&4),
        "the SDK retried"
    );
}

#[test]
fn live_snapshot_records_the_metrics_and_diagnose_reads_them_back() {
    run_named("snapshot_metrics");
}

fn snapshot_metrics(srv: &Server) {
    srv.seed(&account(
        "FAILED",
        Some("XKS_PROXY_INVALID_TLS_CONFIGURATION"),
    ));
    let (dir, stdout) = live_server::record_xks_snapshot(srv, REGION, "live-metrics-snapshot", &[]);
    assert!(
        stdout.contains("cloudwatch-get-metric-data.json"),
        "{stdout}"
    );
    let recorded: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("cloudwatch-get-metric-data.json")).unwrap(),
    )
    .unwrap();
    let results = recorded["MetricDataResults"].as_array().unwrap();
    // Both external stores' nine queries (empty ones too), as the CLI prints them.
    for store in [STORE_A, STORE_B] {
        let sid = store.replace('-', "_");
        let n = results
            .iter()
            .filter(|r| r["Id"].as_str().unwrap().ends_with(&sid))
            .map(|r| r["Id"].as_str().unwrap())
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        assert_eq!(n, 9, "{store}");
    }
    let cert = results
        .iter()
        .find(|r| r["Id"] == "cert_cks_0b7c1a2d3e4f56789")
        .unwrap();
    assert!(
        cert["Timestamps"][0].as_str().unwrap().ends_with("+00:00"),
        "{cert:#}"
    );
    assert_eq!(srv.calls().get("cloudwatch:GetMetricData"), Some(&1));
    // Read back: the same diagnosis, and no AWS call.
    let before = srv.calls();
    let run = run_cks_doctor(
        &strings(&[
            "--region",
            REGION,
            "--snapshot",
            &dir.display().to_string(),
            "--output",
            "json",
            "--only",
            "xks.metrics",
            "diagnose",
            STORE_A,
        ]),
        &tmp(LOG),
    );
    run.expect_fail(
        "xks.metrics.certificate-expiry",
        None,
        Some("XKS_PROXY_INVALID_TLS_CONFIGURATION"),
    );
    assert_eq!(
        run.report["diagnosis"]["confirmed_by"],
        json!(["xks.metrics.certificate-expiry"])
    );
    assert!(
        run.evidence("xks.metrics.certificate-expiry")
            .contains("the recorded window"),
        "{}",
        run.evidence("xks.metrics.certificate-expiry")
    );
    assert_eq!(srv.calls(), before, "a snapshot run calls no AWS API");
}

#[test]
fn live_alarms_prints_the_template_and_which_alarms_exist() {
    run_named("alarms");
}

fn alarms_args(srv: &Server, extra: &[&str]) -> Vec<String> {
    let mut args = strings(&["--region", REGION, "--endpoint-url", &srv.url(), "alarms"]);
    args.extend(strings(extra));
    args
}

fn alarms(srv: &Server) {
    let mut seed = account("CONNECTED", None);
    seed["alarms"] = json!([
        // Made from an earlier template.
        {"name": format!("cks-doctor-{STORE_A}-certificate-expiry"),
         "expression": format!("SELECT MIN(XksProxyCertificateDaysToExpire) FROM \"AWS/KMS\" WHERE CustomKeyStoreId = '{STORE_A}'"),
         "threshold": 10, "comparison": "LessThanThreshold"},
        // Made in the console as AWS's page says: on one KmsOperation's latency.
        {"name": "proxya-decrypt-latency", "store": STORE_A, "metric": "XksProxyLatency",
         "dimensions": {"KmsOperation": "Decrypt", "XksOperation": "Decrypt", "KeySpec": "SYMMETRIC_DEFAULT"},
         "threshold": 200, "comparison": "GreaterThanThreshold", "statistic": "Average"},
    ]);
    srv.seed(&seed);
    let run = run_cks_doctor_raw(
        &alarms_args(
            srv,
            &[
                STORE_A,
                "--sns-topic-arn",
                "arn:aws:sns:us-east-1:111122223333:kms-alarms",
            ],
        ),
        &tmp(LOG),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let template: Value = serde_json::from_str(&run.stdout).unwrap();
    let resources = template["Resources"].as_object().unwrap();
    assert_eq!(resources.len(), 5, "{template:#}");
    for r in resources.values() {
        assert_eq!(r["Type"], "AWS::CloudWatch::Alarm");
        assert_eq!(
            r["Properties"]["AlarmActions"][0],
            "arn:aws:sns:us-east-1:111122223333:kms-alarms"
        );
    }
    let line = |key: &str| -> String {
        run.stderr
            .lines()
            .find(|l| l.contains(&format!("{STORE_A} {key}:")))
            .unwrap_or_else(|| panic!("no line for {key}: {}", run.stderr))
            .to_string()
    };
    assert!(
        line("certificate-expiry").contains("exists: cks-doctor-"),
        "{}",
        run.stderr
    );
    let lat = line("response-timeout");
    assert!(
        lat.contains("exists: proxya-decrypt-latency (on XksProxyLatency"),
        "{lat}"
    );
    assert!(
        line("retryable-errors").contains("not found"),
        "{}",
        run.stderr
    );
    let calls = srv.calls();
    assert_eq!(
        calls.get("cloudwatch:DescribeAlarms"),
        Some(&1),
        "{calls:?}"
    );
    assert!(
        calls
            .get("cloudwatch:DescribeAlarmsForMetric")
            .copied()
            .unwrap_or(0)
            >= 2,
        "{calls:?}"
    );
    assert_eq!(calls.get("cloudwatch:PutMetricAlarm"), None, "read-only");
    // Every external store by default, one put-metric-alarm input a line.
    let run = run_cks_doctor_raw(
        &alarms_args(srv, &["--format", "put-metric-alarm"]),
        &tmp(LOG),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let inputs: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(inputs.len(), 10);
    assert!(inputs
        .iter()
        .all(|i| i["AlarmActions"][0] == "REPLACE-WITH-YOUR-SNS-TOPIC-ARN"));
    assert!(run.stderr.contains("no --sns-topic-arn"), "{}", run.stderr);
    // A CloudHSM store has none.
    let run = run_cks_doctor_raw(&alarms_args(srv, &["HsmStore"]), &tmp(LOG));
    assert_eq!(run.code, 2, "{}", run.stderr);
    // Without the permission: the template, and "could not check which exist".
    srv.faults(json!({"action": "cloudwatch:DescribeAlarms", "error": "AccessDenied"}));
    let run = run_cks_doctor_raw(&alarms_args(srv, &[STORE_B]), &tmp(LOG));
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("could not check which alarms exist"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("cloudwatch:DescribeAlarms"),
        "{}",
        run.stderr
    );
    let template: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(template["Resources"].as_object().unwrap().len(), 5);
    assert_eq!(template["Parameters"]["AlarmTopicArn"]["Type"], "String");
}

const SCENARIOS: &[Scenario] = &[
    ("expired_certificate", expired_certificate),
    ("scan_one_call", scan_one_call),
    ("denied", denied),
    ("snapshot_metrics", snapshot_metrics),
    ("alarms", alarms),
    ("hsm_health", hsm_health),
];
