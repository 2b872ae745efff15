//! Unit tests of the VPC endpoint service checks (src/checks/vpce.rs) on in-memory facts, and
//! of what VPC_ENDPOINT_SERVICE connectivity changes in the proxy checks (src/checks/xks.rs):
//! for each check a passing case and every FAIL / WARN / ERROR / SKIP case the code has, with
//! the exact KMS exceptions and ConnectionErrorCodes the result carries.

use cks_doctor::checks::{self, Status, Status::*};
use cks_doctor::facts::model::*;
use cks_doctor::facts::recorded::Recorded;
use cks_doctor::facts::{Facts, Source};
use cks_doctor::input::{ConnectTo, Request, XksRequest};
use cks_doctor::report::CheckResult;
use cks_doctor::runner;
use std::sync::Arc;
use std::time::Duration;

const REGION: &str = "us-east-1";
const NAME: &str = "com.amazonaws.vpce.us-east-1.vpce-svc-0123456789abcdef0";
const SVC_ID: &str = "vpce-svc-0123456789abcdef0";
const HOST: &str = "myproxy-private.xks.example.com";
const ENDPOINT: &str = "https://myproxy-private.xks.example.com";
const NLB: &str =
    "arn:aws:elasticloadbalancing:us-east-1:111122223333:loadbalancer/net/xks/0123456789abcdef";
const ACCOUNT: &str = "111122223333";
const OTHER: &str = "444455556666";
const PRINCIPAL: &str = "cks.kms.us-east-1.amazonaws.com";

const NOT_FOUND: &[&str] = &["XksProxyVpcEndpointServiceNotFoundException"];
const NOT_FOUND_CODE: &[&str] = &["XKS_VPC_ENDPOINT_SERVICE_NOT_FOUND"];
const INVALID: &[&str] = &["XksProxyVpcEndpointServiceInvalidConfigurationException"];
const INVALID_CODE: &[&str] = &["XKS_VPC_ENDPOINT_SERVICE_INVALID_CONFIGURATION"];
const VALIDATION: &[&str] = &["ValidationException"];
/// A missing KMS principal: AWS's documents name both codes (issue 11 #6).
const PRINCIPAL_CODES: &[&str] = &[
    "XKS_VPC_ENDPOINT_SERVICE_NOT_FOUND",
    "XKS_VPC_ENDPOINT_SERVICE_INVALID_CONFIGURATION",
];
/// Acceptance required: the API reference and the VPC connectivity guide name different exceptions.
const ACCEPTANCE_EXC: &[&str] = &[
    "XksProxyVpcEndpointServiceInvalidConfigurationException",
    "XksProxyInvalidConfigurationException",
];

/// The result carries a "documents disagree" note naming every one of `codes`.
fn assert_disagree(r: &cks_doctor::results::CheckResult, codes: &[&str]) {
    let n = r
        .mapping_notes
        .iter()
        .find(|n| n.basis == cks_doctor::meta::MappingBasis::DocumentsDisagree)
        .unwrap_or_else(|| panic!("no disagreement note: {r:#?}"));
    let names: Vec<&str> = n.codes.iter().map(|c| c.as_str()).collect();
    assert_eq!(names, codes);
    assert!(n.line().contains("AWS documents disagree"), "{}", n.line());
}
const IN_USE: &[&str] = &["XksProxyVpcEndpointServiceInUseException"];

/// The eight checks that need VPC connectivity and a valid service name.
const VPCE_CHECKS: [&str; 8] = [
    "xks.vpce.service-exists",
    "xks.vpce.kms-allowed",
    "xks.vpce.load-balancer",
    "xks.vpce.two-az",
    "xks.vpce.acceptance",
    "xks.vpce.private-dns",
    "xks.vpce.endpoint-matches-dns",
    "xks.account.vpce-unused",
];

// ----- builders -----

fn request() -> XksRequest {
    XksRequest {
        name: Some("ExampleVPCExternalKeyStore".into()),
        uri_endpoint: ENDPOINT.into(),
        uri_path: "/example-prefix/kms/xks/v1".into(),
        connectivity: "VPC_ENDPOINT_SERVICE".into(),
        vpc_endpoint_service_name: Some(NAME.into()),
        vpc_endpoint_service_owner: None,
        access_key_id: Some("ABCDE12345670EXAMPLE".into()),
        secret: None,
        connect_to: None,
        trust_ca: Vec::new(),
        client_identity: None,
        region: REGION.into(),
        timeout: Duration::from_secs(3),
    }
}

fn public_request() -> XksRequest {
    XksRequest {
        uri_endpoint: "https://myproxy.xks.example.com".into(),
        connectivity: "PUBLIC_ENDPOINT".into(),
        vpc_endpoint_service_name: None,
        ..request()
    }
}

fn interface() -> Vec<ServiceTypeDetail> {
    vec![ServiceTypeDetail {
        service_type: "Interface".into(),
    }]
}

fn configuration() -> ServiceConfiguration {
    ServiceConfiguration {
        service_type: interface(),
        service_id: SVC_ID.into(),
        service_name: NAME.into(),
        service_state: Some("Available".into()),
        availability_zones: vec!["us-east-1a".into(), "us-east-1b".into()],
        acceptance_required: Some(false),
        network_load_balancer_arns: vec![NLB.into()],
        gateway_load_balancer_arns: vec![],
        private_dns_name: Some(HOST.into()),
        private_dns_name_configuration: Some(PrivateDnsNameConfiguration {
            state: Some("verified".into()),
            r#type: Some("TXT".into()),
            value: Some("vpce:l6p0ERxlTt45jevFwOCp".into()),
            name: Some("_6e86v84tqgqubxbwii1m".into()),
        }),
        supported_ip_address_types: vec!["ipv4".into()],
    }
}

fn principal(p: &str, kind: &str) -> AllowedPrincipal {
    AllowedPrincipal {
        principal_type: Some(kind.into()),
        principal: p.into(),
        service_id: Some(SVC_ID.into()),
    }
}

/// The service as DescribeVpcEndpointServices shows it to a consumer account.
fn detail(owner: &str) -> ServiceDetail {
    ServiceDetail {
        service_name: NAME.into(),
        service_id: Some(SVC_ID.into()),
        service_type: interface(),
        availability_zones: vec!["us-east-1a".into(), "us-east-1b".into()],
        owner: Some(owner.into()),
        acceptance_required: Some(false),
        private_dns_name: Some(HOST.into()),
        private_dns_name_verification_state: Some("verified".into()),
    }
}

fn zone(name: &str) -> LbAvailabilityZone {
    LbAvailabilityZone {
        zone_name: name.into(),
        subnet_id: Some(format!("subnet-{name}")),
    }
}

fn nlb() -> LoadBalancer {
    LoadBalancer {
        load_balancer_arn: NLB.into(),
        load_balancer_name: Some("xks".into()),
        r#type: Some("network".into()),
        scheme: Some("internal".into()),
        vpc_id: Some("vpc-0e5a8c2d7f3b4a1e9".into()),
        state: Some(LoadBalancerState {
            code: "active".into(),
        }),
        availability_zones: vec![zone("us-east-1a"), zone("us-east-1b")],
    }
}

const TARGET_GROUP: &str =
    "arn:aws:elasticloadbalancing:us-east-1:111122223333:targetgroup/xks/73e2d6bc24d8a067";

fn listener(port: i32, protocol: &str) -> Listener {
    Listener {
        listener_arn: format!("{NLB}/listener-{port}"),
        load_balancer_arn: NLB.into(),
        port: Some(port),
        protocol: Some(protocol.into()),
        default_actions: vec![ListenerAction {
            r#type: "forward".into(),
            target_group_arn: Some(TARGET_GROUP.into()),
            forward_config: None,
        }],
    }
}

fn target(id: &str, state: &str) -> TargetHealthDescription {
    TargetHealthDescription {
        target: Some(TargetDescription {
            id: id.into(),
            port: Some(443),
            availability_zone: None,
        }),
        health_check_port: Some("443".into()),
        target_health: Some(TargetHealth {
            state: state.into(),
            reason: (state != "healthy").then(|| "Target.FailedHealthChecks".into()),
            description: None,
        }),
    }
}

fn xks_store(
    id: &str,
    endpoint: &str,
    connectivity: &str,
    service: Option<&str>,
) -> CustomKeyStore {
    CustomKeyStore {
        custom_key_store_id: id.into(),
        custom_key_store_name: format!("Store {id}"),
        custom_key_store_type: Some("EXTERNAL_KEY_STORE".into()),
        connection_state: Some("CONNECTED".into()),
        xks_proxy_configuration: Some(XksProxyConfiguration {
            connectivity: Some(connectivity.into()),
            access_key_id: Some("ABCDE12345670EXAMPLE".into()),
            uri_endpoint: Some(endpoint.into()),
            uri_path: Some("/kms/xks/v1".into()),
            vpc_endpoint_service_name: service.map(str::to_string),
            vpc_endpoint_service_owner: None,
        }),
        ..Default::default()
    }
}

/// A VPC endpoint service setup of this account where every check passes.
fn healthy() -> Recorded {
    Recorded {
        origin: "test".into(),
        custom_key_stores: Some(vec![xks_store(
            "cks-1111111111111111a",
            "https://other.xks.example.com",
            "PUBLIC_ENDPOINT",
            None,
        )]),
        vpce_configurations: Some(vec![configuration()]),
        vpce_permissions: Some(vec![principal(PRINCIPAL, "Service")]),
        vpce_services: Some(vec![detail(ACCOUNT)]),
        load_balancers: Some(vec![nlb()]),
        listeners: Some(vec![listener(443, "TCP")]),
        target_health: Some(vec![
            target("10.0.1.10", "healthy"),
            target("10.0.2.10", "healthy"),
        ]),
        caller_identity: Some(CallerIdentity {
            account: ACCOUNT.into(),
            arn: Some(format!("arn:aws:iam::{ACCOUNT}:user/operator")),
            user_id: Some("AIDAEXAMPLE".into()),
        }),
        ..Default::default()
    }
}

/// The service belongs to another account that lets this one see it: no configuration of this
/// account has the name, DescribeVpcEndpointServices shows it with its Owner.
fn cross_account() -> Recorded {
    let mut facts = healthy();
    facts.vpce_configurations = Some(vec![]);
    facts.vpce_permissions = None;
    facts.load_balancers = None;
    facts.vpce_services = Some(vec![detail(OTHER)]);
    facts
}

fn owned_by(owner: &str) -> XksRequest {
    XksRequest {
        vpc_endpoint_service_owner: Some(owner.into()),
        ..request()
    }
}

fn cfg(facts: &mut Recorded) -> &mut ServiceConfiguration {
    &mut facts.vpce_configurations.as_mut().unwrap()[0]
}

fn svc(facts: &mut Recorded) -> &mut ServiceDetail {
    &mut facts.vpce_services.as_mut().unwrap()[0]
}

async fn run_on(id: &str, facts: Arc<Facts>) -> CheckResult {
    let check = checks::find(id).unwrap_or_else(|| panic!("no check {id}"));
    runner::run(facts, &[check], Duration::from_secs(10))
        .await
        .pop()
        .unwrap()
}

/// Runs one check on the given facts and request, through the real runner.
async fn run(id: &str, facts: Recorded, req: XksRequest) -> CheckResult {
    run_on(id, Facts::new(Request::Xks(req), Source::Recorded(facts))).await
}

/// Asserts status and the exact exceptions/codes the result carries.
#[track_caller]
fn assert_result(r: &CheckResult, status: Status, exceptions: &[&str], codes: &[&str]) {
    assert_eq!(
        r.status, status,
        "{}: {} — {:?}",
        r.id, r.message, r.evidence
    );
    assert_eq!(r.kms_exceptions, exceptions, "{}: exceptions", r.id);
    assert_eq!(
        r.connection_error_codes, codes,
        "{}: connection error codes",
        r.id
    );
}

#[track_caller]
fn assert_says(r: &CheckResult, text: &str) {
    assert!(
        r.message.contains(text),
        "{}: {:?} does not say {text:?}",
        r.id,
        r.message
    );
}

// ----- xks.params.vpc-endpoint-service -----

#[tokio::test]
async fn params_pass() {
    const ID: &str = "xks.params.vpc-endpoint-service";
    let r = run(ID, healthy(), request()).await;
    assert_result(&r, Pass, VALIDATION, &[]);
    for name in [
        "eu.amazonaws.vpce.eu-central-1.vpce-svc-0123456789abcdef0",
        "com.amazonaws.vpce.us-gov-west-1.vpce-svc-0123456789abcdef0",
        "com.amazonaws.vpce.us-east-1.vpce-svc-0",
    ] {
        let req = XksRequest {
            vpc_endpoint_service_name: Some(name.into()),
            ..request()
        };
        let r = run(ID, healthy(), req).await;
        assert_result(&r, Pass, VALIDATION, &[]);
    }
    let r = run(ID, healthy(), owned_by(OTHER)).await;
    assert_result(&r, Pass, VALIDATION, &[]);
}

#[tokio::test]
async fn params_fail() {
    const ID: &str = "xks.params.vpc-endpoint-service";
    let req = XksRequest {
        vpc_endpoint_service_name: None,
        ..request()
    };
    let r = run(ID, healthy(), req).await;
    assert_result(&r, Fail, VALIDATION, &[]);
    assert_says(&r, "needs XksProxyVpcEndpointServiceName");
    for (name, why) in [
        ("com.amazonaws.vpce", "characters"),
        (
            "com.amazonaws.vpce.us-east-1.vpce-svc-0123456789abcdef0123456789abcdef",
            "characters",
        ),
        (
            "org.amazonaws.vpce.us-east-1.vpce-svc-0123",
            "must start with",
        ),
        ("com.amazonaws.vpce.useast1.vpce-svc-0123456", "Region"),
        ("com.amazonaws.vpce.us-east.vpce-svc-0123456", "Region"),
        ("com.amazonaws.vpce.a-b-c-d-1.vpce-svc-0123456", "Region"),
        ("com.amazonaws.vpce.US-east-1.vpce-svc-0123456", "Region"),
        ("com.amazonaws.vpce.us-east-1.vpce-svc-ABCDEF", "vpce-svc-"),
        ("com.amazonaws.vpce.us-east-1.vpce-0123456789", "vpce-svc-"),
        ("com.amazonaws.vpce.us-east-1.vpce-svc-", "vpce-svc-"),
    ] {
        let req = XksRequest {
            vpc_endpoint_service_name: Some(name.into()),
            ..request()
        };
        let r = run(ID, healthy(), req).await;
        assert_result(&r, Fail, VALIDATION, &[]);
        assert_says(&r, why);
    }
    for owner in ["44445555666", "4444555566667", "44445555666a"] {
        let r = run(ID, healthy(), owned_by(owner)).await;
        assert_result(&r, Fail, VALIDATION, &[]);
        assert_says(&r, "12-digit");
    }
}

#[tokio::test]
async fn params_public_endpoint() {
    const ID: &str = "xks.params.vpc-endpoint-service";
    let r = run(ID, healthy(), public_request()).await;
    assert_result(&r, Skip, VALIDATION, &[]);
    let req = XksRequest {
        vpc_endpoint_service_name: Some(NAME.into()),
        ..public_request()
    };
    let r = run(ID, healthy(), req).await;
    assert_result(&r, Warn, &[], &[]);
    assert_says(&r, "PUBLIC_ENDPOINT");
}

#[tokio::test]
async fn malformed_name_blocks_every_vpce_check() {
    for name in [None, Some("com.amazonaws.vpce.us-east-1.svc-0123456789")] {
        for id in VPCE_CHECKS {
            let req = XksRequest {
                vpc_endpoint_service_name: name.map(str::to_string),
                ..request()
            };
            let r = run(id, healthy(), req).await;
            assert_eq!(r.status, Skip, "{id}: {}", r.message);
            assert_says(&r, "blocked by xks.params.vpc-endpoint-service");
        }
    }
}

#[tokio::test]
async fn public_endpoint_skips_every_vpce_check_and_reads_nothing() {
    for id in VPCE_CHECKS {
        let facts = Facts::new(
            Request::Xks(public_request()),
            Source::Recorded(Recorded::default()),
        );
        let r = run_on(id, facts.clone()).await;
        assert_eq!(r.status, Skip, "{id}: {}", r.message);
        assert_says(&r, "PUBLIC_ENDPOINT");
        let fetched: usize = facts.counts.snapshot().iter().map(|(_, n)| n).sum();
        assert_eq!(fetched, 0, "{id} read facts for a public endpoint store");
    }
}

#[tokio::test]
async fn not_an_external_key_store_request() {
    for id in VPCE_CHECKS
        .iter()
        .chain(&["xks.params.vpc-endpoint-service"])
    {
        let facts = Facts::new(
            Request::ClusterFacts {
                cluster_id: "cluster-jxhlf7644ne".into(),
            },
            Source::Recorded(Recorded::default()),
        );
        let r = run_on(id, facts).await;
        assert_eq!(r.status, Skip, "{id}: {}", r.message);
    }
}

// ----- xks.vpce.service-exists -----

const EXISTS: &str = "xks.vpce.service-exists";

#[tokio::test]
async fn service_exists_in_this_account() {
    let r = run(EXISTS, healthy(), request()).await;
    assert_result(&r, Pass, NOT_FOUND, NOT_FOUND_CODE);
    assert_says(&r, SVC_ID);
    // The owner given is this account.
    let r = run(EXISTS, healthy(), owned_by(ACCOUNT)).await;
    assert_result(&r, Pass, NOT_FOUND, NOT_FOUND_CODE);
}

#[tokio::test]
async fn service_exists_fails() {
    // The name's Region is not the key store's.
    let req = XksRequest {
        vpc_endpoint_service_name: Some(
            "com.amazonaws.vpce.us-west-2.vpce-svc-0123456789abcdef0".into(),
        ),
        ..request()
    };
    let r = run(EXISTS, healthy(), req).await;
    assert_result(&r, Fail, NOT_FOUND, NOT_FOUND_CODE);
    assert_says(&r, "us-west-2");
    // No such service, anywhere visible.
    let mut facts = healthy();
    facts.vpce_configurations = Some(vec![]);
    facts.vpce_services = Some(vec![]);
    let r = run(EXISTS, facts.clone(), request()).await;
    assert_result(&r, Fail, NOT_FOUND, NOT_FOUND_CODE);
    assert_says(&r, "no VPC endpoint service named");
    // ... nor in this account, named as the owner.
    let r = run(EXISTS, facts, owned_by(ACCOUNT)).await;
    assert_result(&r, Fail, NOT_FOUND, NOT_FOUND_CODE);
    assert_says(&r, &format!("owned by {ACCOUNT}"));
    // A service of this account, but the request names another owner.
    let r = run(EXISTS, healthy(), owned_by(OTHER)).await;
    assert_result(&r, Fail, NOT_FOUND, NOT_FOUND_CODE);
    assert_says(&r, OTHER);
}

#[tokio::test]
async fn service_exists_cross_account() {
    // Owned by 444455556666 and named so: found, its configuration unreadable from here.
    let r = run(EXISTS, cross_account(), owned_by(OTHER)).await;
    assert_result(&r, Pass, NOT_FOUND, NOT_FOUND_CODE);
    assert_says(&r, "cross-account");
    // Without XksProxyVpcEndpointServiceOwner KMS looks in the calling account.
    let r = run(EXISTS, cross_account(), request()).await;
    assert_result(&r, Fail, NOT_FOUND, NOT_FOUND_CODE);
    assert_says(&r, OTHER);
    assert_says(&r, "--vpc-endpoint-service-owner");
    // The owner given is yet another account.
    let r = run(EXISTS, cross_account(), owned_by("777788889999")).await;
    assert_result(&r, Fail, NOT_FOUND, NOT_FOUND_CODE);
    assert_says(&r, "777788889999");
}

#[tokio::test]
async fn service_exists_invisible_service_of_another_owner_is_could_not_check() {
    let mut facts = healthy();
    facts.vpce_configurations = Some(vec![]);
    facts.vpce_services = Some(vec![]);
    let r = run(EXISTS, facts.clone(), owned_by(OTHER)).await;
    assert_result(&r, Error, NOT_FOUND, NOT_FOUND_CODE);
    assert_says(&r, "could not check from this account");
    assert_says(&r, OTHER);
    // The checks that need the service could not be made either (not "blocked" by a check
    // that did not fail).
    for id in &VPCE_CHECKS[1..7] {
        let r = run(id, facts.clone(), owned_by(OTHER)).await;
        assert_eq!(r.status, Error, "{id}: {}", r.message);
        assert_says(&r, "could not check from this account");
    }
}

#[tokio::test]
async fn service_exists_unreadable_facts_are_errors() {
    let mut facts = healthy();
    facts.vpce_configurations = None;
    let r = run(EXISTS, facts, request()).await;
    assert_result(&r, Error, NOT_FOUND, NOT_FOUND_CODE);
    assert_says(&r, "ec2-describe-vpc-endpoint-service-configurations.json");
    let mut facts = healthy();
    facts.vpce_configurations = Some(vec![]);
    facts.vpce_services = None;
    let r = run(EXISTS, facts, request()).await;
    assert_result(&r, Error, NOT_FOUND, NOT_FOUND_CODE);
    assert_says(&r, "ec2-describe-vpc-endpoint-services.json");
    // The caller identity is read only when an owner is given.
    let mut facts = healthy();
    facts.caller_identity = None;
    let r = run(EXISTS, facts.clone(), request()).await;
    assert_result(&r, Pass, NOT_FOUND, NOT_FOUND_CODE);
    let r = run(EXISTS, facts, owned_by(ACCOUNT)).await;
    assert_result(&r, Error, NOT_FOUND, NOT_FOUND_CODE);
    assert_says(&r, "sts-get-caller-identity.json");
}

// ----- xks.vpce.kms-allowed -----

const ALLOWED: &str = "xks.vpce.kms-allowed";

#[tokio::test]
async fn kms_allowed_pass() {
    let r = run(ALLOWED, healthy(), request()).await;
    assert_result(&r, Pass, NOT_FOUND, PRINCIPAL_CODES);
    assert_says(&r, PRINCIPAL);
    // Next to other principals, and next to `*`.
    let mut facts = healthy();
    facts.vpce_permissions = Some(vec![
        principal(&format!("arn:aws:iam::{ACCOUNT}:root"), "Account"),
        principal("*", "All"),
        principal(PRINCIPAL, "Service"),
    ]);
    let r = run(ALLOWED, facts, request()).await;
    assert_result(&r, Pass, NOT_FOUND, PRINCIPAL_CODES);
    assert_eq!(r.evidence.len(), 3);
}

#[tokio::test]
async fn kms_allowed_principal_missing_fails() {
    for others in [
        vec![],
        vec![principal(
            &format!("arn:aws:iam::{ACCOUNT}:root"),
            "Account",
        )],
        // The principal of another Region.
        vec![principal("cks.kms.us-west-2.amazonaws.com", "Service")],
    ] {
        let mut facts = healthy();
        facts.vpce_permissions = Some(others);
        let r = run(ALLOWED, facts, request()).await;
        assert_result(&r, Fail, NOT_FOUND, PRINCIPAL_CODES);
        assert_disagree(&r, PRINCIPAL_CODES);
        assert_says(&r, PRINCIPAL);
        let fix = r.remediation.as_deref().unwrap_or_default();
        assert!(
            fix.contains("modify-vpc-endpoint-service-permissions")
                && fix.contains(&format!("--add-allowed-principals {PRINCIPAL}")),
            "{fix}"
        );
    }
}

#[tokio::test]
async fn kms_allowed_star_warns() {
    let mut facts = healthy();
    facts.vpce_permissions = Some(vec![principal("*", "All")]);
    let r = run(ALLOWED, facts, request()).await;
    assert_result(&r, Warn, &[], &[]);
    assert_says(&r, "(*)");
}

#[tokio::test]
async fn kms_allowed_cross_account_and_errors() {
    let r = run(ALLOWED, cross_account(), owned_by(OTHER)).await;
    assert_result(&r, Error, NOT_FOUND, PRINCIPAL_CODES);
    assert_says(&r, "could not check from this account");
    assert_says(&r, OTHER);
    let mut facts = healthy();
    facts.vpce_permissions = None;
    let r = run(ALLOWED, facts, request()).await;
    assert_result(&r, Error, NOT_FOUND, PRINCIPAL_CODES);
    assert_says(&r, "ec2-describe-vpc-endpoint-service-permissions.json");
    let mut facts = healthy();
    facts.vpce_configurations = Some(vec![]);
    facts.vpce_services = Some(vec![]);
    let r = run(ALLOWED, facts, request()).await;
    assert_result(&r, Skip, NOT_FOUND, PRINCIPAL_CODES);
    assert_says(&r, "blocked by xks.vpce.service-exists");
}

// ----- xks.vpce.load-balancer -----

const LB: &str = "xks.vpce.load-balancer";

#[tokio::test]
async fn load_balancer_pass() {
    let r = run(LB, healthy(), request()).await;
    assert_result(&r, Pass, INVALID, INVALID_CODE);
    assert_eq!(r.evidence, [format!("{NLB}: network, active")]);
}

#[tokio::test]
async fn load_balancer_gateway_fails() {
    const GWLB: &str =
        "arn:aws:elasticloadbalancing:us-east-1:111122223333:loadbalancer/gwy/xks/0123456789abcdef";
    // A Gateway Load Balancer endpoint service.
    let mut facts = healthy();
    let c = cfg(&mut facts);
    c.service_type = vec![ServiceTypeDetail {
        service_type: "GatewayLoadBalancer".into(),
    }];
    c.network_load_balancer_arns = vec![];
    c.gateway_load_balancer_arns = vec![GWLB.into()];
    let r = run(LB, facts, request()).await;
    assert_result(&r, Fail, INVALID, INVALID_CODE);
    assert_says(&r, "GatewayLoadBalancer, not Interface");
    // A Gateway Load Balancer ARN on an Interface service.
    let mut facts = healthy();
    cfg(&mut facts).gateway_load_balancer_arns = vec![GWLB.into()];
    let r = run(LB, facts, request()).await;
    assert_result(&r, Fail, INVALID, INVALID_CODE);
    assert_says(&r, "Gateway Load Balancer");
}

#[tokio::test]
async fn load_balancer_not_a_healthy_nlb_fails() {
    // No Network Load Balancer at all.
    let mut facts = healthy();
    cfg(&mut facts).network_load_balancer_arns = vec![];
    let r = run(LB, facts, request()).await;
    assert_result(&r, Fail, INVALID, INVALID_CODE);
    assert_says(&r, "no Network Load Balancer");
    // The ARN is an application load balancer.
    let mut facts = healthy();
    facts.load_balancers.as_mut().unwrap()[0].r#type = Some("application".into());
    let r = run(LB, facts, request()).await;
    assert_result(&r, Fail, INVALID, INVALID_CODE);
    assert_says(&r, "application load balancer, not network");
    // Not active yet.
    let mut facts = healthy();
    facts.load_balancers.as_mut().unwrap()[0].state = Some(LoadBalancerState {
        code: "provisioning".into(),
    });
    let r = run(LB, facts, request()).await;
    assert_result(&r, Fail, INVALID, INVALID_CODE);
    assert_says(&r, "provisioning, not active");
    // Failed.
    let mut facts = healthy();
    facts.load_balancers.as_mut().unwrap()[0].state = Some(LoadBalancerState {
        code: "failed".into(),
    });
    let r = run(LB, facts, request()).await;
    assert_result(&r, Fail, INVALID, INVALID_CODE);
    assert_says(&r, "failed, not active");
    // Deleted.
    let mut facts = healthy();
    facts.load_balancers = Some(vec![]);
    let r = run(LB, facts, request()).await;
    assert_result(&r, Fail, INVALID, INVALID_CODE);
    assert_says(&r, "does not exist");
}

/// `active_impaired` routes traffic but cannot scale: a warning that predicts no error (AWS
/// does not say that KMS refuses it), as the check's metadata says (issue 11 #11).
#[tokio::test]
async fn load_balancer_active_impaired_warns() {
    let mut facts = healthy();
    facts.load_balancers.as_mut().unwrap()[0].state = Some(LoadBalancerState {
        code: "active_impaired".into(),
    });
    let r = run(LB, facts, request()).await;
    assert_result(&r, Warn, &[], &[]);
    assert_says(&r, "active_impaired");
    assert_says(&r, "routes traffic but cannot scale");
    assert_eq!(r.evidence, [format!("{NLB}: network, active_impaired")]);
    let meta = cks_doctor::meta::get(LB).unwrap();
    assert!(meta.description.contains("WARN"), "{}", meta.description);
    assert!(meta.description.contains("active_impaired"));
    assert!(!meta
        .description
        .contains("active_impaired and failed included"));
}

#[tokio::test]
async fn load_balancer_cross_account_and_errors() {
    let r = run(LB, cross_account(), owned_by(OTHER)).await;
    assert_result(&r, Error, INVALID, INVALID_CODE);
    assert_says(&r, "could not check from this account");
    // The consumer view still shows the type.
    let mut facts = cross_account();
    svc(&mut facts).service_type = vec![ServiceTypeDetail {
        service_type: "GatewayLoadBalancer".into(),
    }];
    let r = run(LB, facts, owned_by(OTHER)).await;
    assert_result(&r, Fail, INVALID, INVALID_CODE);
    assert_says(&r, "not Interface");
    let mut facts = healthy();
    facts.load_balancers = None;
    let r = run(LB, facts, request()).await;
    assert_result(&r, Error, INVALID, INVALID_CODE);
    assert_says(&r, "elbv2-describe-load-balancers.json");
}

// ----- xks.vpce.two-az -----

const TWO_AZ: &str = "xks.vpce.two-az";

#[tokio::test]
async fn two_az_pass() {
    let r = run(TWO_AZ, healthy(), request()).await;
    assert_result(&r, Pass, INVALID, INVALID_CODE);
    assert_eq!(
        r.evidence,
        [
            "service: us-east-1a, us-east-1b",
            "xks: us-east-1a, us-east-1b"
        ]
    );
}

#[tokio::test]
async fn two_az_fails() {
    // One zone in the service.
    let mut facts = healthy();
    cfg(&mut facts).availability_zones = vec!["us-east-1a".into()];
    let r = run(TWO_AZ, facts, request()).await;
    assert_result(&r, Fail, INVALID, INVALID_CODE);
    // The same zone twice is still one.
    let mut facts = healthy();
    cfg(&mut facts).availability_zones = vec!["us-east-1a".into(), "us-east-1a".into()];
    let r = run(TWO_AZ, facts, request()).await;
    assert_result(&r, Fail, INVALID, INVALID_CODE);
    // One zone in the load balancer.
    let mut facts = healthy();
    facts.load_balancers.as_mut().unwrap()[0].availability_zones = vec![zone("us-east-1a")];
    let r = run(TWO_AZ, facts, request()).await;
    assert_result(&r, Fail, INVALID, INVALID_CODE);
    assert_says(&r, NLB);
}

#[tokio::test]
async fn two_az_cross_account_and_errors() {
    let r = run(TWO_AZ, cross_account(), owned_by(OTHER)).await;
    assert_result(&r, Pass, INVALID, INVALID_CODE);
    assert_says(&r, "owner account");
    let mut facts = cross_account();
    svc(&mut facts).availability_zones = vec!["us-east-1a".into()];
    let r = run(TWO_AZ, facts, owned_by(OTHER)).await;
    assert_result(&r, Fail, INVALID, INVALID_CODE);
    let mut facts = healthy();
    facts.load_balancers = None;
    let r = run(TWO_AZ, facts, request()).await;
    assert_result(&r, Error, INVALID, INVALID_CODE);
}

// ----- xks.vpce.acceptance -----

const ACCEPTANCE: &str = "xks.vpce.acceptance";

#[tokio::test]
async fn acceptance() {
    let r = run(ACCEPTANCE, healthy(), request()).await;
    assert_result(&r, Pass, ACCEPTANCE_EXC, INVALID_CODE);
    let mut facts = healthy();
    cfg(&mut facts).acceptance_required = Some(true);
    let r = run(ACCEPTANCE, facts, request()).await;
    assert_result(&r, Fail, ACCEPTANCE_EXC, INVALID_CODE);
    assert_disagree(&r, ACCEPTANCE_EXC);
    assert!(r
        .remediation
        .as_deref()
        .is_some_and(|f| f.contains("--no-acceptance-required")));
    let mut facts = healthy();
    cfg(&mut facts).acceptance_required = None;
    let r = run(ACCEPTANCE, facts, request()).await;
    assert_result(&r, Error, ACCEPTANCE_EXC, INVALID_CODE);
}

#[tokio::test]
async fn acceptance_cross_account() {
    let r = run(ACCEPTANCE, cross_account(), owned_by(OTHER)).await;
    assert_result(&r, Pass, ACCEPTANCE_EXC, INVALID_CODE);
    let mut facts = cross_account();
    svc(&mut facts).acceptance_required = Some(true);
    let r = run(ACCEPTANCE, facts, owned_by(OTHER)).await;
    assert_result(&r, Fail, ACCEPTANCE_EXC, INVALID_CODE);
}

// ----- xks.vpce.private-dns -----

const PRIVATE_DNS: &str = "xks.vpce.private-dns";

fn dns_state(facts: &mut Recorded, state: Option<&str>) {
    cfg(facts)
        .private_dns_name_configuration
        .as_mut()
        .unwrap()
        .state = state.map(str::to_string);
}

#[tokio::test]
async fn private_dns() {
    let r = run(PRIVATE_DNS, healthy(), request()).await;
    assert_result(&r, Pass, INVALID, INVALID_CODE);
    for state in ["pendingVerification", "failed"] {
        let mut facts = healthy();
        dns_state(&mut facts, Some(state));
        let r = run(PRIVATE_DNS, facts, request()).await;
        assert_result(&r, Fail, INVALID, INVALID_CODE);
        assert_says(&r, state);
        assert!(r
            .remediation
            .as_deref()
            .is_some_and(|f| f.contains("start-vpc-endpoint-service-private-dns-verification")));
    }
    for name in [None, Some("")] {
        let mut facts = healthy();
        cfg(&mut facts).private_dns_name = name.map(str::to_string);
        let r = run(PRIVATE_DNS, facts, request()).await;
        assert_result(&r, Fail, INVALID, INVALID_CODE);
        assert_says(&r, "no private DNS name");
        assert!(r
            .remediation
            .as_deref()
            .is_some_and(|f| f.contains("--private-dns-name")));
    }
    let mut facts = healthy();
    dns_state(&mut facts, None);
    let r = run(PRIVATE_DNS, facts, request()).await;
    assert_result(&r, Error, INVALID, INVALID_CODE);
}

#[tokio::test]
async fn private_dns_cross_account() {
    let r = run(PRIVATE_DNS, cross_account(), owned_by(OTHER)).await;
    assert_result(&r, Pass, INVALID, INVALID_CODE);
    let mut facts = cross_account();
    svc(&mut facts).private_dns_name_verification_state = Some("pendingVerification".into());
    let r = run(PRIVATE_DNS, facts, owned_by(OTHER)).await;
    assert_result(&r, Fail, INVALID, INVALID_CODE);
}

// ----- xks.vpce.endpoint-matches-dns -----

const MATCHES: &str = "xks.vpce.endpoint-matches-dns";

#[tokio::test]
async fn endpoint_matches_dns() {
    let r = run(MATCHES, healthy(), request()).await;
    assert_result(&r, Pass, INVALID, INVALID_CODE);
    // Without regard to case.
    let mut facts = healthy();
    cfg(&mut facts).private_dns_name = Some(HOST.to_ascii_uppercase());
    let r = run(MATCHES, facts, request()).await;
    assert_result(&r, Pass, INVALID, INVALID_CODE);
    // Another host.
    let req = XksRequest {
        uri_endpoint: "https://myproxy.xks.example.com".into(),
        ..request()
    };
    let r = run(MATCHES, healthy(), req).await;
    assert_result(&r, Fail, INVALID, INVALID_CODE);
    assert_says(&r, "myproxy.xks.example.com");
    assert_says(&r, HOST);
    // Cross-account, from the consumer view.
    let r = run(MATCHES, cross_account(), owned_by(OTHER)).await;
    assert_result(&r, Pass, INVALID, INVALID_CODE);
    let mut facts = cross_account();
    svc(&mut facts).private_dns_name = Some("other.xks.example.com".into());
    let r = run(MATCHES, facts, owned_by(OTHER)).await;
    assert_result(&r, Fail, INVALID, INVALID_CODE);
}

#[tokio::test]
async fn endpoint_matches_dns_blocked() {
    let mut facts = healthy();
    cfg(&mut facts).private_dns_name = None;
    let r = run(MATCHES, facts, request()).await;
    assert_result(&r, Skip, INVALID, INVALID_CODE);
    assert_says(&r, "blocked by xks.vpce.private-dns");
    let req = XksRequest {
        uri_endpoint: format!("{ENDPOINT}/prefix"),
        ..request()
    };
    let r = run(MATCHES, healthy(), req).await;
    assert_result(&r, Skip, INVALID, INVALID_CODE);
    assert_says(&r, "blocked by xks.params.uri-endpoint");
}

// ----- xks.account.vpce-unused -----

const UNUSED: &str = "xks.account.vpce-unused";

#[tokio::test]
async fn vpce_unused() {
    let r = run(UNUSED, healthy(), request()).await;
    assert_result(&r, Pass, IN_USE, &[]);
    let mut facts = healthy();
    facts.custom_key_stores.as_mut().unwrap().push(xks_store(
        "cks-2222222222222222b",
        "https://another-private.xks.example.com",
        "VPC_ENDPOINT_SERVICE",
        Some(NAME),
    ));
    let r = run(UNUSED, facts, request()).await;
    assert_result(&r, Fail, IN_USE, &[]);
    assert_says(&r, "cks-2222222222222222b");
    assert_eq!(r.evidence.len(), 1);
    // Another service is no clash.
    let mut facts = healthy();
    facts.custom_key_stores.as_mut().unwrap().push(xks_store(
        "cks-2222222222222222b",
        "https://another-private.xks.example.com",
        "VPC_ENDPOINT_SERVICE",
        Some("com.amazonaws.vpce.us-east-1.vpce-svc-0fedcba9876543210"),
    ));
    let r = run(UNUSED, facts, request()).await;
    assert_result(&r, Pass, IN_USE, &[]);
    let mut facts = healthy();
    facts.custom_key_stores = None;
    let r = run(UNUSED, facts, request()).await;
    assert_result(&r, Error, IN_USE, &[]);
    assert_says(&r, "kms-describe-custom-key-stores.json");
}

// ----- the proxy checks with VPC connectivity -----

/// A port on 127.0.0.1 that nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn connect_to(port: u16) -> Option<ConnectTo> {
    Some(format!("{HOST}:443:127.0.0.1:{port}").parse().unwrap())
}

const TCP_CODES: &[&str] = &["XKS_PROXY_NOT_REACHABLE", "NETWORK_ERRORS"];

#[tokio::test]
async fn tcp_unreachable_with_vpc_connectivity_is_could_not_check() {
    let req = XksRequest {
        connect_to: connect_to(closed_port()),
        ..request()
    };
    let r = run("xks.connection.tcp", Recorded::default(), req).await;
    assert_result(&r, Error, &[], TCP_CODES);
    assert_says(&r, "not reachable from here");
    // With a public endpoint the same failure is KMS's too.
    let req = XksRequest {
        connect_to: Some(
            format!("myproxy.xks.example.com:443:127.0.0.1:{}", closed_port())
                .parse()
                .unwrap(),
        ),
        ..public_request()
    };
    let r = run("xks.connection.tcp", Recorded::default(), req).await;
    assert_result(&r, Fail, &["XksProxyUriUnreachableException"], TCP_CODES);
}

/// A PUBLIC_ENDPOINT name that resolves only to addresses the internet does not route: KMS,
/// coming from the internet, cannot reach them, even though this machine resolves the name
/// (issue 11 #2). `localhost` resolves from the hosts file, with no network.
#[tokio::test]
async fn dns_public_endpoint_resolving_only_to_non_public_addresses_fails() {
    for endpoint in [
        "https://localhost",
        "https://127.0.0.1",
        "https://10.20.30.40",
    ] {
        let req = XksRequest {
            uri_endpoint: endpoint.into(),
            timeout: Duration::from_secs(2),
            ..public_request()
        };
        let r = run("xks.connection.dns", Recorded::default(), req).await;
        assert_result(
            &r,
            Fail,
            &["XksProxyUriUnreachableException"],
            &["XKS_PROXY_NOT_REACHABLE"],
        );
        assert_says(&r, "none of them a public internet address");
        let evidence = r.evidence.join("\n");
        assert!(
            evidence.contains("loopback") || evidence.contains("private (RFC 1918)"),
            "{endpoint}: {evidence}"
        );
    }
    // The same name for a VPC store: resolving privately is what it should do.
    let req = XksRequest {
        uri_endpoint: "https://127.0.0.1".into(),
        timeout: Duration::from_secs(2),
        ..request()
    };
    let r = run("xks.connection.dns", Recorded::default(), req).await;
    assert_eq!(r.status, Pass, "{}", r.message);
}

#[tokio::test]
async fn dns_with_vpc_connectivity() {
    // --connect-to: not resolved, and no exception predicted.
    let req = XksRequest {
        connect_to: connect_to(closed_port()),
        ..request()
    };
    let r = run("xks.connection.dns", Recorded::default(), req).await;
    assert_result(&r, Skip, &[], &["XKS_PROXY_NOT_REACHABLE"]);
    // A name that does not resolve (or not in time, without a resolver) is no finding.
    let req = XksRequest {
        uri_endpoint: "https://myproxy-private.xks.invalid".into(),
        timeout: Duration::from_secs(2),
        ..request()
    };
    let r = run("xks.connection.dns", Recorded::default(), req).await;
    assert_result(&r, Error, &[], &["XKS_PROXY_NOT_REACHABLE"]);
    assert_says(&r, "not reachable from here");
}

#[tokio::test]
async fn tls_failure_with_vpc_connectivity_predicts_only_the_connection_code() {
    // Something on the port that does not speak TLS.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::Write;
        for mut s in listener.incoming().flatten() {
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
        }
    });
    let req = XksRequest {
        connect_to: connect_to(port),
        ..request()
    };
    let r = run("xks.tls.version", Recorded::default(), req).await;
    assert_result(&r, Fail, &[], &["XKS_PROXY_INVALID_TLS_CONFIGURATION"]);
    assert_says(&r, "VPC endpoint service connectivity");
}

// ----- xks.vpce.listener-targets (issue 11 #14) -----

const LISTENER: &str = "xks.vpce.listener-targets";
const LISTENER_CODES: &[&str] = &["XKS_PROXY_NOT_REACHABLE", "XKS_PROXY_TIMED_OUT"];

#[tokio::test]
async fn listener_targets_pass_and_fail() {
    let r = run(LISTENER, healthy(), request()).await;
    assert_result(&r, Pass, &[], LISTENER_CODES);
    assert_says(&r, "2 healthy target(s)");
    // An NLB listening on 8443 only: every other VPC check passes, this one does not.
    let mut facts = healthy();
    facts.listeners = Some(vec![listener(8443, "TCP")]);
    let r = run(LISTENER, facts, request()).await;
    assert_result(&r, Fail, &[], LISTENER_CODES);
    assert_says(&r, "port 443");
    assert!(
        r.evidence.iter().any(|e| e.contains("TCP:8443")),
        "{:?}",
        r.evidence
    );
    // UDP on 443 carries no TLS.
    let mut facts = healthy();
    facts.listeners = Some(vec![listener(443, "UDP")]);
    let r = run(LISTENER, facts, request()).await;
    assert_eq!(r.status, Fail, "{}", r.message);
    // No listener at all.
    let mut facts = healthy();
    facts.listeners = Some(vec![]);
    let r = run(LISTENER, facts, request()).await;
    assert_eq!(r.status, Fail, "{}", r.message);
    assert_says(&r, "no listener");
    // No healthy target.
    let mut facts = healthy();
    facts.target_health = Some(vec![target("10.0.1.10", "unhealthy")]);
    let r = run(LISTENER, facts, request()).await;
    assert_result(&r, Fail, &[], LISTENER_CODES);
    assert!(
        r.evidence
            .iter()
            .any(|e| e.contains("10.0.1.10:443: unhealthy (Target.FailedHealthChecks)")),
        "{:?}",
        r.evidence
    );
    // No registered target.
    let mut facts = healthy();
    facts.target_health = Some(vec![]);
    let r = run(LISTENER, facts, request()).await;
    assert_eq!(r.status, Fail, "{}", r.message);
    assert_says(&r, "no registered target");
    // Some healthy: a warning that predicts nothing.
    let mut facts = healthy();
    facts.target_health = Some(vec![
        target("10.0.1.10", "healthy"),
        target("10.0.2.10", "unhealthy"),
    ]);
    let r = run(LISTENER, facts, request()).await;
    assert_result(&r, Warn, &[], &[]);
    // The mapping is inferred, and says so.
    let mut facts = healthy();
    facts.listeners = Some(vec![listener(8443, "TCP")]);
    let r = run(LISTENER, facts, request()).await;
    assert!(
        r.mapping_notes
            .iter()
            .any(|n| n.basis == cks_doctor::meta::MappingBasis::Inferred),
        "{r:#?}"
    );
}

#[tokio::test]
async fn listener_targets_could_not_check() {
    // The owner's load balancers cannot be read from another account.
    let r = run(LISTENER, cross_account(), owned_by(OTHER)).await;
    assert_eq!(r.status, Error, "{}", r.message);
    assert_says(&r, "could not check from this account");
    // A snapshot without the listeners file names the command that records it.
    let mut facts = healthy();
    facts.listeners = None;
    let r = run(LISTENER, facts, request()).await;
    assert_eq!(r.status, Error, "{}", r.message);
    assert_says(&r, "elbv2-describe-listeners.json");
    // Not a VPC store.
    let r = run(LISTENER, healthy(), public_request()).await;
    assert_eq!(r.status, Skip, "{}", r.message);
}

/// Every component IPv4: an IPv6-only endpoint service, or only IPv6 targets, cannot take
/// KMS's IPv4 connections; a dual-stack service can (issue 11 #14).
#[tokio::test]
async fn listener_targets_ipv4() {
    let mut facts = healthy();
    cfg(&mut facts).supported_ip_address_types = vec!["ipv4".into(), "ipv6".into()];
    let r = run(LISTENER, facts, request()).await;
    assert_eq!(r.status, Pass, "{}", r.message);
    let mut facts = healthy();
    cfg(&mut facts).supported_ip_address_types = vec!["ipv6".into()];
    let r = run(LISTENER, facts, request()).await;
    assert_result(&r, Fail, &[], LISTENER_CODES);
    assert_says(&r, "supports only ipv6");
    let mut facts = healthy();
    facts.target_health = Some(vec![target("2600:1f18::10", "healthy")]);
    let r = run(LISTENER, facts, request()).await;
    assert_result(&r, Fail, &[], LISTENER_CODES);
    assert_says(&r, "IPv6 address");
}

/// A service whose load balancer is not a network one: xks.vpce.load-balancer fails, and this
/// check is blocked by it, not "could not check".
#[tokio::test]
async fn listener_targets_blocked_without_a_network_load_balancer() {
    let mut facts = healthy();
    facts.load_balancers.as_mut().unwrap()[0].r#type = Some("application".into());
    let r = run(LISTENER, facts, request()).await;
    assert_eq!(r.status, Skip, "{}", r.message);
    assert_says(&r, "blocked by xks.vpce.load-balancer");
}
