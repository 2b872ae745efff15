//! External key stores with VPC endpoint service connectivity, through the live path: the built
//! binary's real SDK clients (EC2, Elastic Load Balancing v2, STS, KMS) against
//! `tests/live/server.py` (moto with its VPC endpoint service quirks corrected, cross-account
//! services, fault injection, server-side call counts), one scenario at a time on one shared
//! server. Each scenario asserts the exact exceptions and connection error codes in the JSON
//! report, and that each fact was fetched once.
//!
//! The private proxy is unreachable from here (its name does not resolve), as it usually is
//! outside its VPC: the proxy checks are "could not check", never failures. One scenario starts
//! the test XKS proxy and reaches it with `--connect-to`: then they run and pass.
//!
//! The last test runs the bundled example snapshot `examples/xks-vpc`.
//!
//! Needs the project's Python environment: `scripts/setup-venv.sh` (`scripts/test.sh` runs it).

use crate::support::live_server;
use crate::support::xks_proxy;

use live_server::{root, run_cks_doctor, tmp, Run, Scenario, Scenarios, Server};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

const REGION: &str = "us-east-1";
/// The account the binary runs as (moto's default; the server's `account`).
const ACCOUNT: &str = "123456789012";
/// The account that owns the cross-account endpoint service.
const OTHER_ACCOUNT: &str = "111122223333";
const KMS_PRINCIPAL: &str = "cks.kms.us-east-1.amazonaws.com";
/// The private proxy: its name resolves nowhere but inside its VPC (here: nowhere).
const PRIVATE_HOST: &str = "myproxy-private.xks.example.com";
const ENDPOINT: &str = "https://myproxy-private.xks.example.com";
const URI_PATH: &str = "/kms/xks/v1";
/// A well-formed name that no scenario makes.
const MISSING_SERVICE: &str = "com.amazonaws.vpce.us-east-1.vpce-svc-0a1b2c3d4e5f67890";

const NOT_FOUND: &str = "XksProxyVpcEndpointServiceNotFoundException";
const NOT_FOUND_CODE: &str = "XKS_VPC_ENDPOINT_SERVICE_NOT_FOUND";
const INVALID: &str = "XksProxyVpcEndpointServiceInvalidConfigurationException";
/// A missing KMS principal: AWS's documents name both codes, and cks-doctor reports both.
const PRINCIPAL_CODES: [&str; 2] = [NOT_FOUND_CODE, INVALID_CODE];
/// Acceptance required: the API reference and the VPC connectivity page name different exceptions.
const ACCEPTANCE_EXC: [&str; 2] = [INVALID, "XksProxyInvalidConfigurationException"];
const INVALID_CODE: &str = "XKS_VPC_ENDPOINT_SERVICE_INVALID_CONFIGURATION";
const IN_USE: &str = "XksProxyVpcEndpointServiceInUseException";

const VPCE_CHECKS: [&str; 10] = [
    "xks.params.vpc-endpoint-service",
    "xks.vpce.service-exists",
    "xks.vpce.kms-allowed",
    "xks.vpce.load-balancer",
    "xks.vpce.listener-targets",
    "xks.vpce.two-az",
    "xks.vpce.acceptance",
    "xks.vpce.private-dns",
    "xks.vpce.endpoint-matches-dns",
    "xks.account.vpce-unused",
];

/// The AWS calls behind the VPC endpoint service facts (and the key store list), as the
/// server counts them.
const ACTIONS: [&str; 6] = [
    "ec2:DescribeVpcEndpointServiceConfigurations",
    "ec2:DescribeVpcEndpointServicePermissions",
    "ec2:DescribeVpcEndpointServices",
    "elasticloadbalancing:DescribeLoadBalancers",
    "sts:GetCallerIdentity",
    "kms:DescribeCustomKeyStores",
];
const CONFIGS: &str = ACTIONS[0];
const PERMISSIONS: &str = ACTIONS[1];
const SERVICES: &str = ACTIONS[2];
const LBS: &str = ACTIONS[3];
const STS: &str = ACTIONS[4];
const KMS: &str = ACTIONS[5];

// ------------------------------------------------------------------------------------------------
// the shared server

static SERVER: Scenarios = Scenarios::new("live-vpce-server.log");

/// Every (check id, status) any live run reported, for the coverage test.
fn seen() -> MutexGuard<'static, BTreeSet<(String, String)>> {
    static SEEN: OnceLock<Mutex<BTreeSet<(String, String)>>> = OnceLock::new();
    SEEN.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// Runs a scenario once per process (the coverage test reuses scenarios already run), alone on
/// the shared server, timed.
fn run_named(name: &str) {
    SERVER.run(SCENARIOS, name);
}

fn secret_file() -> String {
    let path = tmp("live-vpce-xks.secret");
    std::fs::write(&path, format!("{}\n", xks_proxy::SECRET)).unwrap();
    path.display().to_string()
}

/// `cks-doctor ... preflight xks --connectivity VPC_ENDPOINT_SERVICE` against the server.
fn preflight_vpc(srv: &Server, endpoint: &str, path: &str, service: &str, extra: &[&str]) -> Run {
    let mut args: Vec<String> = [
        "--region",
        REGION,
        "--endpoint-url",
        &srv.url(),
        "--output",
        "json",
        "--timeout",
        "10",
        "preflight",
        "xks",
        "--connectivity",
        "VPC_ENDPOINT_SERVICE",
        "--uri-endpoint",
        endpoint,
        "--uri-path",
        path,
        "--vpc-endpoint-service-name",
        service,
        "--access-key-id",
        xks_proxy::ACCESS_KEY_ID,
        "--secret-file",
        &secret_file(),
        "--name",
        "NewXksStore",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    let run = run_cks_doctor(&args, &tmp("live-vpce-server.log"));
    let mut s = seen();
    for c in run.checks() {
        s.insert((
            c["id"].as_str().unwrap().to_string(),
            c["status"].as_str().unwrap().to_string(),
        ));
    }
    drop(s);
    assert!(
        run.report["target"]["source"]
            .as_str()
            .unwrap_or_default()
            .contains(&srv.url()),
        "the facts should come from the live server: {}",
        run.report["target"]
    );
    run
}

/// The private proxy (unreachable from here) and the named service.
fn preflight(srv: &Server, service: &str, extra: &[&str]) -> Run {
    preflight_vpc(srv, ENDPOINT, URI_PATH, service, extra)
}

/// The server counted exactly these calls of `ACTIONS` (others: none).
#[track_caller]
fn assert_calls(srv: &Server, expected: &[(&str, u64)]) {
    let calls = srv.calls();
    let want: BTreeMap<&str, u64> = expected.iter().copied().collect();
    for action in ACTIONS {
        assert_eq!(
            calls.get(action).copied().unwrap_or(0),
            want.get(action).copied().unwrap_or(0),
            "server-side calls of {action}: {calls:?}"
        );
    }
}

fn is_proxy_check(id: &str) -> bool {
    [
        "xks.connection.",
        "xks.tls.",
        "xks.health.",
        "xks.latency.",
        "xks.clock.",
        "xks.security.",
        "xks.spec.",
    ]
    .iter()
    .any(|p| id.starts_with(p))
}

fn proxy_checks(run: &Run) -> Vec<&Value> {
    let checks: Vec<&Value> = run
        .checks()
        .iter()
        .filter(|c| is_proxy_check(c["id"].as_str().unwrap()))
        .collect();
    assert!(checks.len() >= 16, "the proxy checks ran: {}", checks.len());
    checks
}

/// With VPC connectivity KMS reaches the proxy only at Connect: no proxy check predicts a
/// CreateCustomKeyStore exception, whatever its status.
#[track_caller]
fn assert_proxy_checks_predict_codes_only(run: &Run) {
    for c in proxy_checks(run) {
        assert_eq!(c["kms_exceptions"], json!([]), "{}: {c:#}", c["id"]);
    }
}

/// The private proxy could not be reached from here -- its name does not resolve (or, on a
/// network whose resolver answers every name, nothing accepts the connection): "could not
/// check", never a failure; the checks after it are blocked by it.
#[track_caller]
fn assert_proxy_not_reachable_from_here(run: &Run) {
    let dns = run.check("xks.connection.dns");
    let first = if dns["status"] == "ERROR" {
        "xks.connection.dns"
    } else {
        "xks.connection.tcp"
    };
    let c = run.expect(first, "ERROR");
    let m = c["message"].as_str().unwrap();
    assert!(m.contains("not reachable from here"), "{m}");
    for c in proxy_checks(run) {
        let id = c["id"].as_str().unwrap();
        if id == first || (first == "xks.connection.tcp" && id == "xks.connection.dns") {
            continue;
        }
        assert_eq!(c["status"], "SKIP", "{id}: {c:#}");
        assert!(
            c["message"]
                .as_str()
                .unwrap()
                .contains(&format!("blocked by {first}")),
            "{id}: {c:#}"
        );
    }
    assert_proxy_checks_predict_codes_only(run);
}

#[track_caller]
fn assert_vpce_pass(run: &Run, except: &[&str]) {
    for id in VPCE_CHECKS {
        if !except.contains(&id) {
            run.expect(id, "PASS");
        }
    }
}

/// The checks that read the endpoint service (service-exists first).
const SERVICE_READERS: [&str; 8] = [
    "xks.vpce.service-exists",
    "xks.vpce.kms-allowed",
    "xks.vpce.load-balancer",
    "xks.vpce.listener-targets",
    "xks.vpce.two-az",
    "xks.vpce.acceptance",
    "xks.vpce.private-dns",
    "xks.vpce.endpoint-matches-dns",
];

/// The other checks that read the service are blocked by service-exists.
#[track_caller]
fn assert_blocked_by_service_exists(run: &Run) {
    for id in &SERVICE_READERS[1..] {
        let c = run.expect(id, "SKIP");
        assert!(
            c["message"]
                .as_str()
                .unwrap()
                .contains("blocked by xks.vpce.service-exists"),
            "{id}: {c:#}"
        );
    }
}

#[track_caller]
fn assert_message_contains(run: &Run, id: &str, needle: &str) {
    let m = run.message(id);
    assert!(m.contains(needle), "{id}: {needle:?} not in {m:?}");
}

// ------------------------------------------------------------------------------------------------
// scenarios

/// A healthy setup in this account: an Interface service behind an active internal NLB in two
/// AZs, KMS's principal allowed, no acceptance, a verified private DNS name that is the proxy's
/// host; two other external key stores (one public, one on another service).
fn healthy() -> Value {
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
            "acceptance_required": false,
            "private_dns_name": PRIVATE_HOST,
            "private_dns_state": "verified",
            "principals": [KMS_PRINCIPAL],
        }],
        "key_stores": [
            {"name": "PaymentsXks", "type": "EXTERNAL_KEY_STORE", "connectivity": "PUBLIC_ENDPOINT",
             "uri_endpoint": "https://payments-xks.example.com", "uri_path": "/payments/kms/xks/v1"},
            {"name": "OtherVpcXks", "type": "EXTERNAL_KEY_STORE", "connectivity": "VPC_ENDPOINT_SERVICE",
             "uri_endpoint": "https://other-private.xks.example.com",
             "vpc_endpoint_service_name": "com.amazonaws.vpce.us-east-1.vpce-svc-0aaaabbbbccccdddd"},
        ],
    })
}

fn with(mut v: Value, f: impl FnOnce(&mut Value)) -> Value {
    f(&mut v);
    v
}

/// The endpoint service under check in a scenario.
fn svc(v: &mut Value) -> &mut Value {
    &mut v["endpoint_services"][0]
}

#[test]
fn vpce_healthy_passes_and_the_private_proxy_is_not_reachable_from_here() {
    run_named("healthy");
}

fn healthy_setup(srv: &Server) {
    let seeded = srv.seed(&healthy());
    let name = seeded.id("svc");
    let run = preflight(srv, &name, &[]);
    assert_vpce_pass(&run, &[]);
    for id in [
        "xks.params.uri-endpoint",
        "xks.params.uri-path",
        "xks.params.credential",
        "xks.account.uri-unused",
        "xks.account.endpoint-unused",
        "account.name-unused",
        "account.store-quota",
    ] {
        run.expect(id, "PASS");
    }
    assert_proxy_not_reachable_from_here(&run);
    run.expect_code(3);
    assert_eq!(run.report["verdict"]["kms_exceptions"], json!([]));
    // The NLB as AWS reports it (moto says app/ and provisioning).
    let lb = run.evidence("xks.vpce.load-balancer");
    assert!(
        lb.contains(":loadbalancer/net/") && lb.contains("network, active"),
        "{lb}"
    );
    assert!(
        run.evidence("xks.vpce.kms-allowed")
            .contains(&format!("{KMS_PRINCIPAL} (Service)")),
        "{}",
        run.evidence("xks.vpce.kms-allowed")
    );
    // Each fact once; the consumer view and the caller identity are not needed.
    assert_calls(srv, &[(CONFIGS, 1), (PERMISSIONS, 1), (LBS, 1), (KMS, 1)]);
    let req = &srv.requests(CONFIGS)[0];
    assert_eq!(req["Filter.1.Name"], "service-name", "{req}");
    assert_eq!(req["Filter.1.Value.1"], name.as_str(), "{req}");
    assert_eq!(
        srv.requests(PERMISSIONS)[0]["ServiceId"],
        seeded.id("svc.id").as_str()
    );
    assert_eq!(
        srv.requests(LBS)[0]["LoadBalancerArns.member.1"],
        seeded.id("nlb").as_str()
    );

    // Reached elsewhere (--connect-to) where nothing listens: TCP "not reachable from here".
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let connect_to = format!("{PRIVATE_HOST}:443:127.0.0.1:{}", closed.port());
    let run = preflight(srv, &name, &["--connect-to", &connect_to]);
    run.expect("xks.connection.dns", "SKIP");
    run.expect("xks.connection.tcp", "ERROR");
    assert_message_contains(&run, "xks.connection.tcp", "not reachable from here");
    assert_proxy_not_reachable_from_here(&run);
    assert_vpce_pass(&run, &[]);
    run.expect_code(3);

    // XksProxyVpcEndpointServiceOwner naming this account: the caller identity, once.
    let run = preflight(srv, &name, &["--vpc-endpoint-service-owner", ACCOUNT]);
    assert_vpce_pass(&run, &[]);
    run.expect_code(3);
    assert_calls(
        srv,
        &[(CONFIGS, 3), (PERMISSIONS, 3), (LBS, 3), (STS, 1), (KMS, 3)],
    );

    // ... and naming another account, while the service is this account's.
    let run = preflight(srv, &name, &["--vpc-endpoint-service-owner", OTHER_ACCOUNT]);
    run.expect_exact(
        "xks.vpce.service-exists",
        "FAIL",
        &[NOT_FOUND],
        &[NOT_FOUND_CODE],
    );
    assert_message_contains(&run, "xks.vpce.service-exists", ACCOUNT);
    run.expect_code(1);
}

#[test]
fn vpce_service_not_found_and_wrong_region() {
    run_named("service_not_found");
}

fn service_not_found(srv: &Server) {
    srv.seed(&healthy());
    let run = preflight(srv, MISSING_SERVICE, &[]);
    run.expect_exact(
        "xks.vpce.service-exists",
        "FAIL",
        &[NOT_FOUND],
        &[NOT_FOUND_CODE],
    );
    run.expect_fail(
        "xks.vpce.service-exists",
        Some(NOT_FOUND),
        Some(NOT_FOUND_CODE),
    );
    assert_blocked_by_service_exists(&run);
    run.expect("xks.params.vpc-endpoint-service", "PASS");
    run.expect("xks.account.vpce-unused", "PASS");
    run.expect_code(1);
    assert_proxy_checks_predict_codes_only(&run);
    // Not ours, so the consumer view was asked too (an empty answer, not an error).
    assert_calls(srv, &[(CONFIGS, 1), (SERVICES, 1), (KMS, 1)]);
    let req = &srv.requests(SERVICES)[0];
    assert_eq!(req["Filter.1.Name"], "service-name", "{req}");
    assert_eq!(req["Filter.1.Value.1"], MISSING_SERVICE, "{req}");

    // A service of another Region: KMS looks in the key store's Region.
    let run = preflight(
        srv,
        "com.amazonaws.vpce.us-west-2.vpce-svc-0a1b2c3d4e5f67890",
        &[],
    );
    run.expect_exact(
        "xks.vpce.service-exists",
        "FAIL",
        &[NOT_FOUND],
        &[NOT_FOUND_CODE],
    );
    assert_message_contains(&run, "xks.vpce.service-exists", "us-west-2");

    // A name KMS's validation rejects: nothing is looked up.
    srv.seed(&healthy());
    let run = preflight(
        srv,
        "com.amazonaws.vpce.us-east-1.svc-0a1b2c3d4e5f67890",
        &[],
    );
    run.expect_exact(
        "xks.params.vpc-endpoint-service",
        "FAIL",
        &["ValidationException"],
        &[],
    );
    for id in SERVICE_READERS {
        let c = run.expect(id, "SKIP");
        assert!(
            c["message"]
                .as_str()
                .unwrap()
                .contains("blocked by xks.params.vpc-endpoint-service"),
            "{id}: {c:#}"
        );
    }
    run.expect_code(1);
    assert_calls(srv, &[(KMS, 1)]);
}

#[test]
fn vpce_kms_principal_missing_fails_and_star_warns() {
    run_named("kms_principal");
}

fn kms_principal(srv: &Server) {
    let seeded = srv.seed(&with(healthy(), |v| {
        svc(v)["principals"] = json!([format!("arn:aws:iam::{ACCOUNT}:root")]);
    }));
    let run = preflight(srv, &seeded.id("svc"), &[]);
    run.expect_exact(
        "xks.vpce.kms-allowed",
        "FAIL",
        &[NOT_FOUND],
        &PRINCIPAL_CODES,
    );
    run.expect_fail(
        "xks.vpce.kms-allowed",
        Some(NOT_FOUND),
        Some(NOT_FOUND_CODE),
    );
    assert_message_contains(&run, "xks.vpce.kms-allowed", KMS_PRINCIPAL);
    let evidence = run.evidence("xks.vpce.kms-allowed");
    assert!(
        evidence.contains(&format!("arn:aws:iam::{ACCOUNT}:root (Account)")),
        "{evidence}"
    );
    assert_vpce_pass(&run, &["xks.vpce.kms-allowed"]);
    run.expect_code(1);
    assert_calls(srv, &[(CONFIGS, 1), (PERMISSIONS, 1), (LBS, 1), (KMS, 1)]);

    // No principals at all.
    let seeded = srv.seed(&with(healthy(), |v| svc(v)["principals"] = json!([])));
    let run = preflight(srv, &seeded.id("svc"), &[]);
    run.expect_exact(
        "xks.vpce.kms-allowed",
        "FAIL",
        &[NOT_FOUND],
        &PRINCIPAL_CODES,
    );

    // Everyone: KMS can connect, so no exception; a warning.
    let seeded = srv.seed(&with(healthy(), |v| svc(v)["principals"] = json!(["*"])));
    let run = preflight(srv, &seeded.id("svc"), &[]);
    run.expect_exact("xks.vpce.kms-allowed", "WARN", &[], &[]);
    assert!(run.evidence("xks.vpce.kms-allowed").contains("* (All)"));
    assert_vpce_pass(&run, &["xks.vpce.kms-allowed"]);
    run.expect_code(3);
}

#[test]
fn vpce_gateway_application_and_missing_load_balancers() {
    run_named("load_balancers");
}

fn load_balancers(srv: &Server) {
    // A Gateway Load Balancer endpoint service.
    let seeded = srv.seed(&with(healthy(), |v| {
        v["load_balancers"] = json!([{"ref": "gwlb", "type": "gateway", "subnets": ["a", "b"]}]);
        svc(v)["load_balancers"] = json!(["gwlb"]);
    }));
    assert!(seeded.id("gwlb").contains(":loadbalancer/gwy/"));
    let run = preflight(srv, &seeded.id("svc"), &[]);
    run.expect_exact(
        "xks.vpce.load-balancer",
        "FAIL",
        &[INVALID],
        &[INVALID_CODE],
    );
    run.expect_fail("xks.vpce.load-balancer", Some(INVALID), Some(INVALID_CODE));
    assert_message_contains(&run, "xks.vpce.load-balancer", "Gateway");
    run.expect_code(1);

    // An application load balancer named as the service's NLB.
    let seeded = srv.seed(&with(healthy(), |v| {
        v["load_balancers"] = json!([{"ref": "alb", "type": "application", "subnets": ["a", "b"]}]);
        svc(v)["load_balancers"] = json!([]);
        svc(v)["network_load_balancers"] = json!(["alb"]);
    }));
    let run = preflight(srv, &seeded.id("svc"), &[]);
    run.expect_exact(
        "xks.vpce.load-balancer",
        "FAIL",
        &[INVALID],
        &[INVALID_CODE],
    );
    assert_message_contains(
        &run,
        "xks.vpce.load-balancer",
        "application load balancer, not network",
    );
    assert_calls(srv, &[(CONFIGS, 1), (PERMISSIONS, 1), (LBS, 1), (KMS, 1)]);

    // An NLB that is not active.
    let seeded = srv.seed(&with(healthy(), |v| {
        v["load_balancers"][0]["state"] = json!("failed");
    }));
    let run = preflight(srv, &seeded.id("svc"), &[]);
    run.expect_exact(
        "xks.vpce.load-balancer",
        "FAIL",
        &[INVALID],
        &[INVALID_CODE],
    );
    assert_message_contains(&run, "xks.vpce.load-balancer", "is failed, not active");

    // Two NLBs, one gone: DescribeLoadBalancers fails with LoadBalancerNotFound for the
    // pair; the binary asks for each alone and reports the missing one.
    let seeded = srv.seed(&with(healthy(), |v| {
        v["load_balancers"] = json!([
            {"ref": "nlb", "subnets": ["a", "b"]},
            {"ref": "gone", "subnets": ["a", "b"], "deleted": true},
        ]);
        svc(v)["load_balancers"] = json!(["nlb", "gone"]);
    }));
    let run = preflight(srv, &seeded.id("svc"), &[]);
    run.expect_exact(
        "xks.vpce.load-balancer",
        "FAIL",
        &[INVALID],
        &[INVALID_CODE],
    );
    assert_message_contains(
        &run,
        "xks.vpce.load-balancer",
        &format!("{} does not exist", seeded.id("gone")),
    );
    // One fact fetch: the pair, then each ARN alone.
    assert_calls(srv, &[(CONFIGS, 1), (PERMISSIONS, 1), (LBS, 3), (KMS, 1)]);
}

#[test]
fn vpce_one_availability_zone() {
    run_named("one_az");
}

fn one_az(srv: &Server) {
    let seeded = srv.seed(&with(healthy(), |v| {
        v["load_balancers"][0]["subnets"] = json!(["a"]);
    }));
    let run = preflight(srv, &seeded.id("svc"), &[]);
    run.expect_exact("xks.vpce.two-az", "FAIL", &[INVALID], &[INVALID_CODE]);
    run.expect_fail("xks.vpce.two-az", Some(INVALID), Some(INVALID_CODE));
    assert_message_contains(&run, "xks.vpce.two-az", "1 Availability Zone");
    assert_vpce_pass(&run, &["xks.vpce.two-az"]);
    run.expect_code(1);
    assert_calls(srv, &[(CONFIGS, 1), (PERMISSIONS, 1), (LBS, 1), (KMS, 1)]);
}

#[test]
fn vpce_acceptance_required() {
    run_named("acceptance");
}

fn acceptance(srv: &Server) {
    let seeded = srv.seed(&with(healthy(), |v| {
        svc(v)["acceptance_required"] = json!(true);
    }));
    let run = preflight(srv, &seeded.id("svc"), &[]);
    run.expect_exact(
        "xks.vpce.acceptance",
        "FAIL",
        &ACCEPTANCE_EXC,
        &[INVALID_CODE],
    );
    run.expect_fail("xks.vpce.acceptance", Some(INVALID), Some(INVALID_CODE));
    assert_vpce_pass(&run, &["xks.vpce.acceptance"]);
    run.expect_code(1);
}

#[test]
fn vpce_private_dns_pending_verification_and_failed() {
    run_named("private_dns");
}

fn private_dns(srv: &Server) {
    for state in ["pendingVerification", "failed"] {
        let seeded = srv.seed(&with(healthy(), |v| {
            svc(v)["private_dns_state"] = json!(state);
        }));
        let run = preflight(srv, &seeded.id("svc"), &[]);
        run.expect_exact("xks.vpce.private-dns", "FAIL", &[INVALID], &[INVALID_CODE]);
        run.expect_fail("xks.vpce.private-dns", Some(INVALID), Some(INVALID_CODE));
        assert_message_contains(
            &run,
            "xks.vpce.private-dns",
            &format!("{PRIVATE_HOST} is {state}, not verified"),
        );
        assert_vpce_pass(&run, &["xks.vpce.private-dns"]);
        run.expect_code(1);
    }
}

#[test]
fn vpce_endpoint_host_is_not_the_private_dns_name() {
    run_named("endpoint_matches_dns");
}

fn endpoint_matches_dns(srv: &Server) {
    let seeded = srv.seed(&with(healthy(), |v| {
        svc(v)["private_dns_name"] = json!("xks.internal.example.com");
    }));
    let run = preflight(srv, &seeded.id("svc"), &[]);
    run.expect_exact(
        "xks.vpce.endpoint-matches-dns",
        "FAIL",
        &[INVALID],
        &[INVALID_CODE],
    );
    run.expect_fail(
        "xks.vpce.endpoint-matches-dns",
        Some(INVALID),
        Some(INVALID_CODE),
    );
    assert_message_contains(
        &run,
        "xks.vpce.endpoint-matches-dns",
        "xks.internal.example.com",
    );
    assert_vpce_pass(&run, &["xks.vpce.endpoint-matches-dns"]);
    run.expect_code(1);
}

#[test]
fn vpce_service_used_by_another_store() {
    run_named("in_use");
}

fn in_use(srv: &Server) {
    let seeded = srv.seed(&with(healthy(), |v| {
        v["key_stores"].as_array_mut().unwrap().push(json!({
            "id": "cks-1234567890abcdef0",
            "name": "ExistingVpcXks",
            "type": "EXTERNAL_KEY_STORE",
            "connectivity": "VPC_ENDPOINT_SERVICE",
            "uri_endpoint": "https://existing-private.xks.example.com",
            "vpc_endpoint_service_name": "${svc}",
        }));
    }));
    let run = preflight(srv, &seeded.id("svc"), &[]);
    run.expect_exact("xks.account.vpce-unused", "FAIL", &[IN_USE], &[]);
    run.expect_fail("xks.account.vpce-unused", Some(IN_USE), None);
    assert_message_contains(&run, "xks.account.vpce-unused", "cks-1234567890abcdef0");
    assert_vpce_pass(&run, &["xks.account.vpce-unused"]);
    run.expect_code(1);
    assert_calls(srv, &[(CONFIGS, 1), (PERMISSIONS, 1), (LBS, 1), (KMS, 1)]);
}

/// The service belongs to another account, which allows this one (and KMS) to connect.
fn cross_account(shared_with_us: bool) -> Value {
    let mut principals = vec![json!(KMS_PRINCIPAL)];
    if shared_with_us {
        principals.push(json!(format!("arn:aws:iam::{ACCOUNT}:root")));
    }
    with(healthy(), |v| {
        v["ec2"]["vpcs"] = json!([
            {"ref": "vpc", "cidr": "10.0.0.0/16"},
            {"ref": "ovpc", "cidr": "10.1.0.0/16", "account": OTHER_ACCOUNT},
        ]);
        v["ec2"]["subnets"].as_array_mut().unwrap().extend([
            json!({"ref": "oa", "vpc": "ovpc", "cidr": "10.1.0.0/24", "az": "us-east-1a", "account": OTHER_ACCOUNT}),
            json!({"ref": "oc", "vpc": "ovpc", "cidr": "10.1.2.0/24", "az": "us-east-1c", "account": OTHER_ACCOUNT}),
        ]);
        v["load_balancers"] =
            json!([{"ref": "onlb", "subnets": ["oa", "oc"], "account": OTHER_ACCOUNT}]);
        *svc(v) = json!({
            "ref": "svc",
            "owner": OTHER_ACCOUNT,
            "load_balancers": ["onlb"],
            "private_dns_name": PRIVATE_HOST,
            "principals": principals,
        });
    })
}

#[test]
fn vpce_cross_account_service() {
    run_named("cross_account");
}

fn cross_account_services(srv: &Server) {
    let seeded = srv.seed(&cross_account(true));
    let name = seeded.id("svc");
    assert_eq!(seeded.0["endpoint_services"]["svc"]["owner"], OTHER_ACCOUNT);

    // With XksProxyVpcEndpointServiceOwner: found through the consumer view; what only the
    // owner can read is "could not check from this account".
    let run = preflight(srv, &name, &["--vpc-endpoint-service-owner", OTHER_ACCOUNT]);
    run.expect("xks.vpce.service-exists", "PASS");
    assert_message_contains(&run, "xks.vpce.service-exists", OTHER_ACCOUNT);
    for id in ["xks.vpce.kms-allowed", "xks.vpce.load-balancer"] {
        run.expect(id, "ERROR");
        assert_message_contains(&run, id, "could not check from this account");
        assert_message_contains(&run, id, OTHER_ACCOUNT);
    }
    for id in [
        "xks.params.vpc-endpoint-service",
        "xks.vpce.two-az",
        "xks.vpce.acceptance",
        "xks.vpce.private-dns",
        "xks.vpce.endpoint-matches-dns",
        "xks.account.vpce-unused",
    ] {
        run.expect(id, "PASS");
    }
    run.expect_code(3);
    // Invisible to DescribeVpcEndpointServiceConfigurations, listed by
    // DescribeVpcEndpointServices; the owner's permissions and load balancers never asked.
    assert_calls(srv, &[(CONFIGS, 1), (SERVICES, 1), (KMS, 1)]);

    // Without it, KMS would look in this account.
    let run = preflight(srv, &name, &[]);
    run.expect_exact(
        "xks.vpce.service-exists",
        "FAIL",
        &[NOT_FOUND],
        &[NOT_FOUND_CODE],
    );
    assert_message_contains(&run, "xks.vpce.service-exists", OTHER_ACCOUNT);
    run.expect_code(1);

    // A service of another account that does not share it with this one: invisible from
    // here, so "could not check" rather than "not found" when the owner is named, for
    // every check that reads the service.
    let seeded = srv.seed(&cross_account(false));
    let name = seeded.id("svc");
    let run = preflight(srv, &name, &["--vpc-endpoint-service-owner", OTHER_ACCOUNT]);
    for id in SERVICE_READERS {
        run.expect(id, "ERROR");
        assert_message_contains(&run, id, "could not check from this account");
        assert_message_contains(&run, id, OTHER_ACCOUNT);
    }
    run.expect_code(3);
    assert_calls(srv, &[(CONFIGS, 1), (SERVICES, 1), (STS, 1), (KMS, 1)]);
    // ... and not found when it is not.
    let run = preflight(srv, &name, &[]);
    run.expect_exact(
        "xks.vpce.service-exists",
        "FAIL",
        &[NOT_FOUND],
        &[NOT_FOUND_CODE],
    );
}

#[test]
fn vpce_denied_actions_are_could_not_check_naming_the_action() {
    run_named("denied");
}

fn denied(srv: &Server) {
    // (denied action, error code, service, extra arguments, checks it makes ERROR)
    let cases: [(&str, &str, &str, &[&str], &[&str]); 7] = [
        (
            PERMISSIONS,
            "UnauthorizedOperation",
            "svc",
            &[],
            &["xks.vpce.kms-allowed"],
        ),
        (
            LBS,
            "AccessDenied",
            "svc",
            &[],
            &[
                "xks.vpce.load-balancer",
                "xks.vpce.two-az",
                "xks.vpce.listener-targets",
            ],
        ),
        (
            "elasticloadbalancing:DescribeListeners",
            "AccessDenied",
            "svc",
            &[],
            &["xks.vpce.listener-targets"],
        ),
        (
            "elasticloadbalancing:DescribeTargetHealth",
            "AccessDenied",
            "svc",
            &[],
            &["xks.vpce.listener-targets"],
        ),
        (
            CONFIGS,
            "UnauthorizedOperation",
            "svc",
            &[],
            &SERVICE_READERS,
        ),
        (
            SERVICES,
            "UnauthorizedOperation",
            MISSING_SERVICE,
            &[],
            &["xks.vpce.service-exists"],
        ),
        (
            STS,
            "AccessDenied",
            "svc",
            &["--vpc-endpoint-service-owner", ACCOUNT],
            &["xks.vpce.service-exists"],
        ),
    ];
    for (action, code, service, extra, errors) in cases {
        let seeded = srv.seed(&with(healthy(), |v| {
            v["faults"] = json!([{"action": action, "error": code}]);
        }));
        let name = if service == "svc" {
            seeded.id("svc")
        } else {
            service.to_string()
        };
        let run = preflight(srv, &name, extra);
        for id in errors {
            run.expect(id, "ERROR");
            assert_message_contains(&run, id, &format!("access denied calling {action}"));
        }
        if service == "svc" {
            assert_vpce_pass(&run, errors);
        }
        run.expect_code(3);
        // Denied is not retried: one call.
        assert_eq!(srv.calls()[action], 1, "{action}: {:?}", srv.calls());
    }
}

#[test]
fn vpce_reachable_proxy_checks_run_and_predict_codes_only() {
    run_named("reachable_proxy");
}

/// A VPC pre-flight of the service whose traffic goes to the test proxy (`--connect-to`),
/// trusting its lab root CA.
fn preflight_through(srv: &Server, proxy: &xks_proxy::TestProxy, service: &str) -> Run {
    let ca = tmp("live-vpce-lab-root.pem");
    std::fs::write(&ca, proxy.root_ca_pem()).unwrap();
    preflight_vpc(
        srv,
        xks_proxy::ENDPOINT,
        xks_proxy::PATH,
        service,
        &[
            "--connect-to",
            &proxy.connect_to_arg(),
            "--trust-ca",
            &ca.display().to_string(),
        ],
    )
}

fn reachable_proxy(srv: &Server) {
    use xks_proxy::{ProxyOptions, TestProxy};
    let proxy = TestProxy::start_blocking(ProxyOptions::default());
    let seeded = srv.seed(&with(healthy(), |v| {
        svc(v)["private_dns_name"] = json!(xks_proxy::HOST);
    }));
    let run = preflight_through(srv, &proxy, &seeded.id("svc"));
    assert_vpce_pass(&run, &[]);
    for c in proxy_checks(&run) {
        let id = c["id"].as_str().unwrap();
        let want: &[&str] = match id {
            // --connect-to: nothing was resolved.
            "xks.connection.dns" => &["SKIP"],
            // Trusted only through --trust-ca: a lab warning.
            "xks.tls.certificate-trust" => &["WARN"],
            // Timed on a loaded test machine: a slow run warns, it never fails.
            _ => &["PASS", "WARN"],
        };
        assert!(
            want.contains(&c["status"].as_str().unwrap()),
            "{id}: expected {want:?}: {c:#}"
        );
    }
    assert_proxy_checks_predict_codes_only(&run);
    run.expect_exact("xks.tls.certificate-trust", "WARN", &[], &[]);
    assert_eq!(run.report["target"]["connect_to"], proxy.addr.to_string());
    run.expect_code(0);
    assert_eq!(run.report["verdict"]["kms_exceptions"], json!([]));
    assert_eq!(run.report["verdict"]["connection_error_codes"], json!([]));
    assert_calls(srv, &[(CONFIGS, 1), (PERMISSIONS, 1), (LBS, 1), (KMS, 1)]);
    // The proxy saw the signed GetHealthStatus.
    assert!(
        proxy
            .requests()
            .iter()
            .any(|r| r.path == xks_proxy::HEALTH_PATH && r.signature_valid == Some(true)),
        "no verified GetHealthStatus reached the proxy"
    );

    // A certificate for another name than the private DNS name: AWS's documents name
    // XKS_PROXY_INVALID_TLS_CONFIGURATION and XKS_VPC_ENDPOINT_SERVICE_INVALID_CONFIGURATION;
    // both are reported, with the disagreement said (issue 11 #6).
    let proxy = TestProxy::start_blocking(ProxyOptions::cert(xks_proxy::CertSetup::WrongName));
    let run = preflight_through(srv, &proxy, &seeded.id("svc"));
    let both = [
        "XKS_PROXY_INVALID_TLS_CONFIGURATION",
        "XKS_VPC_ENDPOINT_SERVICE_INVALID_CONFIGURATION",
    ];
    let c = run.expect_exact("xks.tls.certificate-name", "FAIL", &[], &both);
    let notes = c["mapping_notes"].as_array().expect("mapping notes");
    assert!(
        notes
            .iter()
            .any(|n| n["basis"] == "documents_disagree" && n["codes"] == json!(both)),
        "{c:#}"
    );
}

/// An NLB listening on 8443 only, or whose targets all fail their health checks, passes every
/// other VPC check; xks.vpce.listener-targets reads its listeners and the health of the targets
/// behind port 443 through the real SDK, one call each (issue 11 #14).
#[test]
fn vpce_listener_and_targets() {
    run_named("listeners");
}

fn listeners_and_targets(srv: &Server) {
    let listener_calls = |srv: &Server| {
        let calls = srv.calls();
        (
            calls
                .get("elasticloadbalancing:DescribeListeners")
                .copied()
                .unwrap_or(0),
            calls
                .get("elasticloadbalancing:DescribeTargetHealth")
                .copied()
                .unwrap_or(0),
        )
    };
    let seeded = srv.seed(&healthy());
    let run = preflight(srv, &seeded.id("svc"), &[]);
    let c = run.expect("xks.vpce.listener-targets", "PASS");
    assert!(
        c["message"].as_str().unwrap().contains("1 healthy target"),
        "{c:#}"
    );
    assert_eq!(listener_calls(srv), (1, 1));

    let seeded = srv.seed(&with(healthy(), |v| {
        v["load_balancers"][0]["listeners"] = json!([
            {"port": 8443, "protocol": "TCP", "targets": [{"id": "10.0.1.10"}]}
        ]);
    }));
    let run = preflight(srv, &seeded.id("svc"), &[]);
    run.expect_exact(
        "xks.vpce.listener-targets",
        "FAIL",
        &[],
        &["XKS_PROXY_NOT_REACHABLE", "XKS_PROXY_TIMED_OUT"],
    );
    assert!(run
        .evidence("xks.vpce.listener-targets")
        .contains("TCP:8443"));
    assert_vpce_pass(&run, &["xks.vpce.listener-targets"]);
    // No 443 listener: no target group to ask about.
    assert_eq!(listener_calls(srv), (1, 0));

    let seeded = srv.seed(&with(healthy(), |v| {
        v["load_balancers"][0]["listeners"] = json!([{"port": 443, "protocol": "TCP", "targets": [
            {"id": "10.0.1.10", "state": "unhealthy", "reason": "Target.Timeout", "description": "Request timed out"}
        ]}]);
    }));
    let run = preflight(srv, &seeded.id("svc"), &[]);
    run.expect("xks.vpce.listener-targets", "FAIL");
    let evidence = run.evidence("xks.vpce.listener-targets");
    assert!(
        evidence.contains("10.0.1.10:443: unhealthy (Target.Timeout: Request timed out)"),
        "{evidence}"
    );
    assert_vpce_pass(&run, &["xks.vpce.listener-targets"]);
}

// ------------------------------------------------------------------------------------------------
// every VPC check seen through the live path

#[test]
fn vpce_scan_reads_every_service_of_the_region_at_once() {
    run_named("scan");
}

/// Two external key stores on two healthy endpoint services of this account (and a public one):
/// `scan` reads both services' configurations in one call, the consumer view of both in one
/// call (read up front for the Region, where a single pre-flight asks only when it needs it),
/// their load balancers in one call, the permissions once per service, the caller identity
/// once (the stores name their owner); each store is judged on its own service.
fn scan_services(srv: &Server) {
    let second_host = "second-private.xks.example.com";
    let seeded = srv.seed(&with(healthy(), |v| {
        v["load_balancers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"ref": "nlb2", "type": "network", "subnets": ["a", "b"]}));
        v["endpoint_services"].as_array_mut().unwrap().push(json!({
            "ref": "svc2",
            "load_balancers": ["nlb2"],
            "acceptance_required": false,
            "private_dns_name": second_host,
            "private_dns_state": "verified",
            "principals": [KMS_PRINCIPAL],
        }));
        v["key_stores"] = json!([
            {"name": "PaymentsXks", "type": "EXTERNAL_KEY_STORE", "connectivity": "PUBLIC_ENDPOINT",
             "uri_endpoint": "https://payments-xks.example.com", "uri_path": "/payments/kms/xks/v1"},
            {"id": "cks-00000000000000f01", "name": "FirstVpcXks", "type": "EXTERNAL_KEY_STORE",
             "connectivity": "VPC_ENDPOINT_SERVICE", "uri_endpoint": ENDPOINT, "uri_path": URI_PATH,
             "vpc_endpoint_service_name": "${svc}"},
            {"id": "cks-00000000000000f02", "name": "SecondVpcXks", "type": "EXTERNAL_KEY_STORE",
             "connectivity": "VPC_ENDPOINT_SERVICE", "uri_endpoint": format!("https://{second_host}"),
             "uri_path": URI_PATH, "vpc_endpoint_service_name": "${svc2}"},
        ]);
    }));
    let args: Vec<String> = [
        "--region",
        REGION,
        "--endpoint-url",
        &srv.url(),
        "--output",
        "json",
        "--timeout",
        "10",
        "scan",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let raw = live_server::run_cks_doctor_raw(&args, &tmp("live-vpce-server.log"));
    let v: Value = serde_json::from_str(&raw.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", raw.stdout, raw.stderr));
    assert_eq!(v["errors"], json!([]), "{:#}", v["errors"]);
    let reports = v["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 3);
    for (id, service) in [
        ("cks-00000000000000f01", seeded.id("svc")),
        ("cks-00000000000000f02", seeded.id("svc2")),
    ] {
        let r = reports
            .iter()
            .find(|r| r["diagnosis"]["custom_key_store_id"] == id)
            .unwrap_or_else(|| panic!("{id} not scanned"));
        for c in r["checks"].as_array().unwrap() {
            let check = c["id"].as_str().unwrap();
            if VPCE_CHECKS.contains(&check) {
                assert_eq!(c["status"], "PASS", "{id} {check}: {c:#}");
            }
        }
        let exists = r["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == "xks.vpce.service-exists")
            .unwrap();
        assert!(
            exists.to_string().contains(&service),
            "{id} judged on {service}: {exists:#}"
        );
    }
    assert_calls(
        srv,
        &[
            (CONFIGS, 1),
            (SERVICES, 1),
            (PERMISSIONS, 2),
            (LBS, 1),
            (STS, 1),
            (KMS, 1),
        ],
    );
    let req = &srv.requests(CONFIGS)[0];
    let mut names = vec![
        req["Filter.1.Value.1"].as_str().unwrap().to_string(),
        req["Filter.1.Value.2"].as_str().unwrap().to_string(),
    ];
    names.sort();
    let mut want = vec![seeded.id("svc"), seeded.id("svc2")];
    want.sort();
    assert_eq!(names, want, "{req}");
}

const SCENARIOS: &[Scenario] = &[
    ("scan", scan_services),
    ("listeners", listeners_and_targets),
    ("healthy", healthy_setup),
    ("service_not_found", service_not_found),
    ("kms_principal", kms_principal),
    ("load_balancers", load_balancers),
    ("one_az", one_az),
    ("acceptance", acceptance),
    ("private_dns", private_dns),
    ("endpoint_matches_dns", endpoint_matches_dns),
    ("in_use", in_use),
    ("cross_account", cross_account_services),
    ("denied", denied),
    ("reachable_proxy", reachable_proxy),
];

/// Every VPC endpoint service check was seen through the live path passing and failing (the
/// `*` principal also warning, and "could not check" for what only the owner can read).
#[test]
fn vpce_every_check_is_exercised_pass_and_fail() {
    for (name, _) in SCENARIOS {
        run_named(name);
    }
    let seen = seen().clone();
    let mut missing = Vec::new();
    for id in VPCE_CHECKS {
        for status in ["PASS", "FAIL"] {
            if !seen.contains(&(id.to_string(), status.to_string())) {
                missing.push(format!("{id}: never {status}"));
            }
        }
    }
    for (id, status) in [
        ("xks.vpce.kms-allowed", "WARN"),
        ("xks.vpce.kms-allowed", "ERROR"),
        ("xks.vpce.load-balancer", "ERROR"),
        ("xks.vpce.service-exists", "ERROR"),
        ("xks.connection.dns", "ERROR"),
    ] {
        if !seen.contains(&(id.to_string(), status.to_string())) {
            missing.push(format!("{id}: never {status}"));
        }
    }
    assert!(
        missing.is_empty(),
        "not exercised through the live path:\n{}",
        missing.join("\n")
    );
}

// ------------------------------------------------------------------------------------------------
// the bundled example (no server)

/// `examples/xks-vpc` (made by `scripts/gen-example-xks-vpc.sh`): the command its README shows
/// (run as written, plus `--output json`) finds exactly the seeded failures.
#[test]
fn example_xks_vpc_snapshot_fails_as_seeded() {
    let readme = std::fs::read_to_string(root().join("examples/xks-vpc/README.md")).unwrap();
    let block = readme
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a ```sh block in examples/xks-vpc/README.md");
    let words: Vec<String> = block
        .replace("\\\n", " ")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(words[0], "cks-doctor", "{block}");
    let mut args = words[1..].to_vec();
    for (flag, value) in [
        ("--snapshot", "examples/xks-vpc"),
        ("--connectivity", "VPC_ENDPOINT_SERVICE"),
        ("--uri-endpoint", ENDPOINT),
        ("--vpc-endpoint-service-name", EXAMPLE_SERVICE),
    ] {
        assert!(
            args.windows(2).any(|w| w[0] == flag && w[1] == value),
            "the README's command should have {flag} {value}: {block}"
        );
    }
    assert!(readme.contains("scripts/gen-example-xks-vpc.sh"));
    args.extend(["--output".to_string(), "json".to_string()]);
    let run = run_cks_doctor(&args, &tmp("no-server.log"));
    assert!(run.report["target"]["source"]
        .as_str()
        .unwrap()
        .contains("snapshot"));
    run.expect_exact(
        "xks.vpce.kms-allowed",
        "FAIL",
        &[NOT_FOUND],
        &PRINCIPAL_CODES,
    );
    assert!(run
        .evidence("xks.vpce.kms-allowed")
        .contains("arn:aws:iam::111122223333:root (Account)"));
    run.expect_exact("xks.vpce.private-dns", "FAIL", &[INVALID], &[INVALID_CODE]);
    assert_message_contains(&run, "xks.vpce.private-dns", "pendingVerification");
    run.expect_exact("xks.vpce.two-az", "FAIL", &[INVALID], &[INVALID_CODE]);
    for id in [
        "xks.params.vpc-endpoint-service",
        "xks.vpce.service-exists",
        "xks.vpce.load-balancer",
        "xks.vpce.acceptance",
        "xks.vpce.endpoint-matches-dns",
        "xks.account.vpce-unused",
        "xks.account.uri-unused",
        "xks.account.endpoint-unused",
        "account.store-quota",
    ] {
        run.expect(id, "PASS");
    }
    assert_proxy_not_reachable_from_here(&run);
    run.expect_code(1);
    let mut verdict: Vec<String> =
        serde_json::from_value(run.report["verdict"]["kms_exceptions"].clone()).unwrap();
    verdict.sort();
    assert_eq!(verdict, [INVALID, NOT_FOUND]);
}

/// The example's service (see scripts/gen-example-xks-vpc.sh).
const EXAMPLE_SERVICE: &str = "com.amazonaws.vpce.us-east-1.vpce-svc-0e1f2a3b4c5d6e7f8";
