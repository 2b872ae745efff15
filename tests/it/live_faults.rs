//! Faults of the AWS endpoint, through the live path: the built binary's real SDK clients
//! against `tests/live/server.py` with faults injected per action (see `Fault` in server.py).
//!
//! For each fault: the checks that need the broken fact end as ERROR ("could not check") with
//! the reason, naming the action, within `--timeout`; the run never hangs or panics; and the
//! checks that did not depend on the broken fact still give their verdicts. Faults the SDK's
//! bounded retries absorb (a burst of 5xx, one reset connection) leave no trace but the
//! server's call count.
//!
//! - a connection reset mid-response (status line, headers and part of the body, then RST)
//! - an endpoint that accepts the request and never answers
//! - a burst of 503s: three (retried, then success) and five (ERROR after 4 attempts)
//! - throttling beyond the retries
//! - a slow endpoint: by default the independent calls are in flight at once; `--jobs N` makes
//!   at most N (the server counts the calls it is answering at once)
//!
//! Wall times are asserted against `--timeout` plus a margin: a hang guard, not a benchmark.
//!
//! Needs the project's Python environment: `scripts/setup-venv.sh` (`scripts/test.sh` runs it).

use crate::support::live_server;
use crate::support::live_server::self_rule;

use live_server::{root, run_cks_doctor, tmp, Run, Scenario, Scenarios, Server};
use serde_json::{json, Value};

use std::time::Duration;

const REGION: &str = "us-east-1";
const LOG: &str = "live-faults-server.log";
const CLUSTER: &str = "cluster-jxhlf7644ne";
const OTHER_A: &str = "cluster-paymentsclstra";
const ANCHOR: &str = "rsa2048-pkcs1-sha256-ca.crt";
const CLUSTER_CERT: &str = "rsa2048-pkcs1-sha256-cluster.crt";
const NAME: &str = "NewKeyStore";
/// What the wall time of a run may exceed --timeout by (process start, the SDK's setup).
const MARGIN: Duration = Duration::from_secs(5);
/// The SDK's attempts per call (src/facts/live.rs: standard retries, 4 attempts).
const ATTEMPTS: u64 = 4;

/// The checks that read kms:DescribeCustomKeyStores in a CloudHSM pre-flight.
const KMS_CHECKS: [&str; 4] = [
    "account.name-unused",
    "account.store-quota",
    "cloudhsm.cluster.not-in-use",
    "cloudhsm.cluster.no-shared-backup-history",
];
/// The checks that read ec2:DescribeSubnets.
const SUBNET_CHECKS: [&str; 3] = [
    "cloudhsm.subnets.exist",
    "cloudhsm.subnets.free-addresses",
    "cloudhsm.network.acls",
];

// ------------------------------------------------------------------------------------------------
// the shared server

static SERVER: Scenarios = Scenarios::new(LOG);

fn run_named(name: &str) {
    SERVER.run(SCENARIOS, name);
}

// ------------------------------------------------------------------------------------------------
// the account and the run

fn cluster(id: &str, cert_file: &str) -> Value {
    json!({
        "id": id,
        "vpc": "vpc",
        "subnets": {"us-east-1a": "a", "us-east-1b": "b"},
        "security_group": "sg",
        "hsms": [{"az": "us-east-1a", "state": "ACTIVE"}, {"az": "us-east-1b", "state": "ACTIVE"}],
        "certificate_file": cert_file,
    })
}

/// A healthy account: every AWS-backed check of the pre-flight of CLUSTER passes.
fn healthy() -> Value {
    json!({
        "region": REGION,
        "ec2": {
            "vpcs": [{"ref": "vpc", "cidr": "10.0.0.0/16"}],
            "subnets": [
                {"ref": "a", "vpc": "vpc", "cidr": "10.0.0.0/24", "az": "us-east-1a"},
                {"ref": "b", "vpc": "vpc", "cidr": "10.0.1.0/24", "az": "us-east-1b"},
            ],
            "security_groups": [{
                "ref": "sg", "vpc": "vpc",
                "name": format!("cloudhsm-{CLUSTER}-sg"),
                "ingress": [self_rule()],
                "egress": [self_rule()],
            }],
        },
        "clusters": [cluster(CLUSTER, CLUSTER_CERT), cluster(OTHER_A, "ec-p256-sha256-cluster.crt")],
        "key_stores": [
            {"name": "PaymentsKeyStore", "cluster": OTHER_A, "trust_anchor_file": "ec-p256-sha256-ca.crt", "state": "CONNECTED"},
        ],
    })
}

/// `cks-doctor --timeout T preflight cloudhsm ...` against the server; the run ends by itself
/// within T plus a margin.
fn preflight(srv: &Server, timeout: u64) -> Run {
    preflight_with(srv, timeout, &[])
}

fn preflight_with(srv: &Server, timeout: u64, extra: &[&str]) -> Run {
    let anchor = root().join("tests/fixtures/certs").join(ANCHOR);
    let url = srv.url();
    let timeout_s = timeout.to_string();
    let anchor_s = anchor.display().to_string();
    let mut args: Vec<&str> = extra.to_vec();
    args.extend([
        "--region",
        REGION,
        "--endpoint-url",
        &url,
        "--output",
        "json",
        "--timeout",
        &timeout_s,
        "preflight",
        "cloudhsm",
        "--cluster-id",
        CLUSTER,
        "--trust-anchor",
        &anchor_s,
        "--name",
        NAME,
    ]);
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let run = run_cks_doctor(&args, &tmp(LOG));
    let budget = Duration::from_secs(timeout) + MARGIN;
    assert!(
        run.elapsed < budget,
        "{}: took {:?}, more than --timeout {timeout}s + {MARGIN:?}",
        run.args,
        run.elapsed
    );
    for c in run.checks() {
        let m = c["message"].as_str().unwrap_or_default();
        assert!(!m.contains("panic"), "{}: {m}", c["id"]);
    }
    run
}

/// The check could not run, and its message says why, naming the action.
#[track_caller]
fn assert_error_naming(run: &Run, id: &str, action: &str, reason: &str) {
    let c = run.expect(id, "ERROR");
    let m = c["message"].as_str().unwrap();
    assert!(
        m.contains(action) && m.contains(reason),
        "{id} should name {action} and {reason:?}: {m}"
    );
}

/// Every check not in `broken` gave its verdict: the healthy account passes (kmsuser and the
/// mTLS setting are in no API: MANUAL).
#[track_caller]
fn assert_others_pass(run: &Run, broken: &[&str]) {
    for c in run.checks() {
        let id = c["id"].as_str().unwrap();
        if broken.contains(&id) {
            continue;
        }
        let status = c["status"].as_str().unwrap();
        assert!(
            matches!(status, "PASS" | "MANUAL"),
            "{id} did not depend on the broken fact and should still pass: {status} {}",
            c["message"]
        );
    }
}

#[track_caller]
fn assert_calls(srv: &Server, action: &str, n: u64) {
    let calls = srv.calls();
    assert_eq!(
        calls.get(action).copied().unwrap_or(0),
        n,
        "{action}: {calls:?}"
    );
}

// ------------------------------------------------------------------------------------------------
// scenarios

#[test]
fn faults_healthy_account_passes() {
    run_named("healthy");
}

fn healthy_account(srv: &Server) {
    srv.seed(&healthy());
    let run = preflight(srv, 10);
    run.expect_code(0);
    assert_others_pass(&run, &[]);
}

#[test]
fn faults_connection_reset_mid_response() {
    run_named("reset");
}

fn reset(srv: &Server) {
    // Once: the SDK retries a response cut short, and the second answer is used.
    srv.seed(&healthy());
    srv.faults(json!([
        {"action": "kms:DescribeCustomKeyStores", "reset": true, "times": 1},
        {"action": "ec2:DescribeSecurityGroups", "reset": true, "times": 1},
    ]));
    let run = preflight(srv, 10);
    run.expect_code(0);
    assert_others_pass(&run, &[]);
    assert_calls(srv, "kms:DescribeCustomKeyStores", 2);
    assert_calls(srv, "ec2:DescribeSecurityGroups", 2);

    // Every time: on a call served from the harness's state (KMS, AWS JSON) and on one served by
    // moto (EC2 Query, cut after its first 64 bytes).
    srv.seed(&healthy());
    srv.faults(json!([
        {"action": "kms:DescribeCustomKeyStores", "reset": true},
        {"action": "ec2:DescribeSecurityGroups", "reset": true, "after": 64},
    ]));
    let timeout = 10;
    let run = preflight(srv, timeout);
    for id in KMS_CHECKS {
        assert_error_naming(&run, id, "kms:DescribeCustomKeyStores", "");
    }
    assert_error_naming(
        &run,
        "cloudhsm.security-group.rules",
        "ec2:DescribeSecurityGroups",
        "",
    );
    for id in KMS_CHECKS.iter().chain(&["cloudhsm.security-group.rules"]) {
        let m = run.message(id).to_lowercase();
        assert!(
            m.contains("connection reset") || m.contains("end of file before message length"),
            "{id}: the reason should say the connection broke: {m}"
        );
    }
    let mut broken = KMS_CHECKS.to_vec();
    broken.push("cloudhsm.security-group.rules");
    assert_others_pass(&run, &broken);
    run.expect_code(3);
    assert_eq!(run.report["verdict"]["outlook"], "incomplete");
    // Bounded: the SDK's attempts, then it gives up.
    assert_calls(srv, "kms:DescribeCustomKeyStores", ATTEMPTS);
    assert_calls(srv, "ec2:DescribeSecurityGroups", ATTEMPTS);
}

#[test]
fn faults_endpoint_that_never_answers() {
    run_named("hang");
}

fn hang(srv: &Server) {
    srv.seed(&healthy());
    srv.faults(json!({"action": "ec2:DescribeSubnets", "hang": true}));
    let timeout = 3;
    let run = preflight(srv, timeout);
    for id in SUBNET_CHECKS {
        assert_error_naming(&run, id, "ec2:DescribeSubnets", "did not answer within");
    }
    assert_others_pass(&run, &SUBNET_CHECKS);
    run.expect_code(3);
    // The bound is the AWS call budget under --timeout, not the runner's own timeout.
    assert!(
        run.elapsed >= Duration::from_secs_f64(timeout as f64 * 0.9 - 0.5),
        "{:?}",
        run.elapsed
    );
    // The hung call was not retried: the budget covers all attempts.
    assert_calls(srv, "ec2:DescribeSubnets", 1);
}

#[test]
fn faults_burst_of_5xx_is_retried_then_errors() {
    run_named("burst_5xx");
}

fn burst_5xx(srv: &Server) {
    // Three 503s: the fourth attempt answers.
    srv.seed(&healthy());
    srv.faults(json!({"action": "ec2:DescribeSubnets", "error": "ServiceUnavailable", "status": 503, "times": 3}));
    let run = preflight(srv, 15);
    run.expect_code(0);
    assert_others_pass(&run, &[]);
    assert_calls(srv, "ec2:DescribeSubnets", 4);

    // Five 503s (AWS JSON this time): the SDK's attempts run out first.
    srv.seed(&healthy());
    srv.faults(json!({"action": "kms:DescribeCustomKeyStores", "error": "ServiceUnavailableException", "status": 503, "times": 5}));
    let run = preflight(srv, 15);
    for id in KMS_CHECKS {
        assert_error_naming(
            &run,
            id,
            "kms:DescribeCustomKeyStores",
            "ServiceUnavailableException",
        );
    }
    assert_others_pass(&run, &KMS_CHECKS);
    run.expect_code(3);
    assert_calls(srv, "kms:DescribeCustomKeyStores", ATTEMPTS);
}

#[test]
fn faults_throttling_beyond_the_retries() {
    run_named("throttled");
}

fn throttled(srv: &Server) {
    srv.seed(&healthy());
    srv.faults(json!({"action": "ec2:DescribeSubnets", "error": "RequestLimitExceeded"}));
    let run = preflight(srv, 15);
    for id in SUBNET_CHECKS {
        assert_error_naming(
            &run,
            id,
            "ec2:DescribeSubnets",
            "was throttled and retries were exhausted",
        );
    }
    assert_others_pass(&run, &SUBNET_CHECKS);
    run.expect_code(3);
    assert_calls(srv, "ec2:DescribeSubnets", ATTEMPTS);
}

#[test]
fn faults_in_one_region_leave_the_others_alone() {
    run_named("other_region");
}

fn other_region(srv: &Server) {
    // A fault limited to eu-west-1 does not touch a us-east-1 pre-flight.
    srv.seed(&healthy());
    srv.faults(json!([
        {"action": "kms:DescribeCustomKeyStores", "hang": true, "region": "eu-west-1"},
        {"action": "cloudhsm:DescribeClusters", "reset": true, "region": "eu-west-1"},
    ]));
    let run = preflight(srv, 10);
    run.expect_code(0);
    assert_others_pass(&run, &[]);
    assert_calls(srv, "kms:DescribeCustomKeyStores", 1);
}

#[test]
fn faults_slow_endpoint_and_jobs_bound_the_calls_in_flight() {
    run_named("jobs");
}

/// Every call of a CloudHSM pre-flight slowed down, so that calls made at once overlap.
const PREFLIGHT_ACTIONS: [&str; 6] = [
    "cloudhsm:DescribeClusters",
    "kms:DescribeCustomKeyStores",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeRouteTables",
    "ec2:DescribeNetworkAcls",
];

fn max_in_flight(srv: &Server) -> u64 {
    srv.control("GET", "in-flight", None)["max"]
        .as_u64()
        .unwrap()
}

fn statuses(run: &Run) -> Vec<(String, String)> {
    run.checks()
        .iter()
        .map(|c| (c["id"].to_string(), c["status"].to_string()))
        .collect()
}

fn jobs(srv: &Server) {
    let slow: Vec<Value> = PREFLIGHT_ACTIONS
        .iter()
        .map(|a| json!({"action": a, "delay_ms": 300}))
        .collect();
    // Default: the cluster and the key store list are asked for at once, and then the four
    // EC2 facts of the cluster.
    srv.seed(&healthy());
    srv.faults(json!(slow));
    let all = preflight(srv, 20);
    all.expect_code(0);
    assert_others_pass(&all, &[]);
    let calls = srv.calls();
    assert!(
        max_in_flight(srv) >= 4,
        "the EC2 facts should be in flight at once: {}",
        max_in_flight(srv)
    );
    // --jobs 1: one call at a time, the same calls and the same verdicts.
    srv.seed(&healthy());
    srv.faults(json!(slow));
    let one = preflight_with(srv, 20, &["--jobs", "1"]);
    one.expect_code(0);
    assert_eq!(statuses(&one), statuses(&all));
    assert_eq!(max_in_flight(srv), 1);
    assert_eq!(srv.calls(), calls);
    // --jobs 2: at most two.
    srv.seed(&healthy());
    srv.faults(json!(slow));
    let two = preflight_with(srv, 20, &["--jobs", "2"]);
    two.expect_code(0);
    assert_eq!(statuses(&two), statuses(&all));
    assert!(max_in_flight(srv) <= 2, "{}", max_in_flight(srv));
}

const SCENARIOS: &[Scenario] = &[
    ("healthy", healthy_account),
    ("reset", reset),
    ("hang", hang),
    ("burst_5xx", burst_5xx),
    ("throttled", throttled),
    ("other_region", other_region),
    ("jobs", jobs),
];
