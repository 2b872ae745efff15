//! External key stores with VPC endpoint service connectivity (requirements §5, §6): the
//! endpoint service KMS connects through, which CreateCustomKeyStore itself validates. The
//! service may belong to another account (XksProxyVpcEndpointServiceOwner, 2025-10-30): then
//! its configuration cannot be read from this account, and the checks say which could not be
//! made from here.

use super::{got, register, Outcome, Step};
use crate::facts::model::{ServiceConfiguration, ServiceDetail};
use crate::facts::Facts;
use crate::input::{name_problem, XksRequest};
use std::collections::BTreeSet;

register! {
    "xks.params.vpc-endpoint-service" => params,
    "xks.vpce.service-exists" => service_exists,
    "xks.vpce.kms-allowed" => kms_allowed,
    "xks.vpce.load-balancer" => load_balancer,
    "xks.vpce.listener-targets" => listener_targets,
    "xks.vpce.two-az" => two_az,
    "xks.vpce.acceptance" => acceptance,
    "xks.vpce.private-dns" => private_dns,
    "xks.vpce.endpoint-matches-dns" => endpoint_matches_dns,
    "xks.account.vpce-unused" => vpce_unused,
}

pub const VPC: &str = crate::input::VPC_ENDPOINT_SERVICE;

/// The KMS service principal that must be allowed to connect to the endpoint service.
pub fn kms_principal(region: &str) -> String {
    format!("cks.kms.{region}.amazonaws.com")
}

/// An XKS request with VPC connectivity and its service name, or SKIP.
fn vpc(f: &Facts) -> Step<(&XksRequest, &str)> {
    let Some(r) = f.request.xks() else {
        return Err(Outcome::skip("not an external key store request"));
    };
    if r.connectivity != VPC {
        return Err(Outcome::skip(
            "not applicable: the key store uses PUBLIC_ENDPOINT connectivity",
        ));
    }
    let owner_ok = r
        .vpc_endpoint_service_owner
        .as_deref()
        .is_none_or(|o| o.len() == 12 && o.chars().all(|c| c.is_ascii_digit()));
    match r.vpc_endpoint_service_name.as_deref() {
        Some(n) if name_problem(n).is_none() && owner_ok => Ok((r, n)),
        _ => Err(Outcome::blocked(
            "xks.params.vpc-endpoint-service",
            "no valid XksProxyVpcEndpointServiceName and owner",
        )),
    }
}

/// The Region in a service name.
fn name_region(n: &str) -> Option<&str> {
    n.split('.').nth(3)
}

async fn params(f: &Facts) -> Step<Outcome> {
    let Some(r) = f.request.xks() else {
        return Ok(Outcome::skip("not an external key store request"));
    };
    if r.connectivity != VPC {
        if r.vpc_endpoint_service_name.is_some() {
            return Ok(Outcome::warn(
                "XksProxyVpcEndpointServiceName is set, but the connectivity is PUBLIC_ENDPOINT: KMS expects it only with VPC_ENDPOINT_SERVICE",
            )
            .exceptions(&[]));
        }
        return Ok(Outcome::skip(
            "not applicable: the key store uses PUBLIC_ENDPOINT connectivity",
        ));
    }
    let Some(name) = r.vpc_endpoint_service_name.as_deref() else {
        return Ok(Outcome::fail(
            "VPC_ENDPOINT_SERVICE connectivity needs XksProxyVpcEndpointServiceName (--vpc-endpoint-service-name)",
        ));
    };
    if let Some(p) = name_problem(name) {
        return Ok(Outcome::fail(format!(
            "XksProxyVpcEndpointServiceName {name:?} {p}"
        )));
    }
    if let Some(owner) = &r.vpc_endpoint_service_owner {
        if owner.len() != 12 || !owner.chars().all(|c| c.is_ascii_digit()) {
            return Ok(Outcome::fail(format!(
                "XksProxyVpcEndpointServiceOwner {owner:?} must be a 12-digit account id"
            )));
        }
    }
    Ok(Outcome::pass(format!("{name} has the API's form")))
}

/// How this account sees the service.
enum Seen<'a> {
    /// This account owns it: the configuration is readable.
    Own(&'a ServiceConfiguration),
    /// Another account owns it and lets this account see it.
    Other(&'a ServiceDetail),
    /// Not visible from here.
    Unseen,
}

async fn seen(f: &Facts) -> Step<Seen<'_>> {
    if let Some(c) = got(f.vpce_configuration().await)? {
        return Ok(Seen::Own(c));
    }
    match got(f.vpce_service().await)? {
        Some(d) => Ok(Seen::Other(d)),
        None => Ok(Seen::Unseen),
    }
}

/// A service that is visible from this account.
enum Found<'a> {
    Own(&'a ServiceConfiguration),
    Other(&'a ServiceDetail),
}

/// For checks that need the service: found, or the outcome that ends them.
async fn found(f: &Facts) -> Step<Found<'_>> {
    match seen(f).await? {
        Seen::Own(c) => Ok(Found::Own(c)),
        Seen::Other(d) => Ok(Found::Other(d)),
        Seen::Unseen => {
            if let Some(o) = f
                .request
                .xks()
                .and_then(|x| x.vpc_endpoint_service_owner.as_deref())
            {
                if got(f.caller_identity().await)?.account != o {
                    return Err(Outcome::error(format!(
                        "could not check from this account: the endpoint service would belong to {o} and is not visible from here"
                    )));
                }
            }
            Err(Outcome::blocked(
                "xks.vpce.service-exists",
                "the endpoint service is not visible from this account",
            ))
        }
    }
}

fn not_from_here(d: &ServiceDetail, what: &str) -> Outcome {
    Outcome::error(format!(
        "could not check from this account: the endpoint service belongs to {}, and only its owner can read {what}; run this check with that account's credentials",
        d.owner.as_deref().unwrap_or("another account")
    ))
}

async fn service_exists(f: &Facts) -> Step<Outcome> {
    let (r, name) = vpc(f)?;
    if name_region(name) != Some(r.region.as_str()) {
        return Ok(Outcome::fail(format!(
            "{name} names the Region {}, but the key store is in {}: KMS looks for the service in the key store's Region",
            name_region(name).unwrap_or("?"),
            r.region
        )));
    }
    let owner = r.vpc_endpoint_service_owner.as_deref();
    match seen(f).await? {
        Seen::Own(c) => {
            if let Some(owner) = owner {
                let caller = got(f.caller_identity().await)?;
                if caller.account != owner {
                    return Ok(Outcome::fail(format!(
                        "{name} is a service of this account ({}), but XksProxyVpcEndpointServiceOwner is {owner}: KMS will look for it in {owner}",
                        caller.account
                    )));
                }
            }
            match c.service_state.as_deref() {
                Some("Available") | None => Ok(Outcome::pass(format!(
                    "{name} ({}) exists in this account{}",
                    c.service_id,
                    c.service_state
                        .as_deref()
                        .map(|s| format!(", state {s}"))
                        .unwrap_or_default()
                ))),
                Some("Pending") => Ok(Outcome::warn(format!(
                    "{name} ({}) is still Pending: wait until it is Available",
                    c.service_id
                ))
                .exceptions(&[])
                .codes(&[])),
                Some(state) => Ok(Outcome::fail(format!(
                    "{name} ({}) is {state}, not Available",
                    c.service_id
                ))),
            }
        }
        Seen::Other(d) => {
            let svc_owner = d.owner.as_deref().unwrap_or("another account");
            match owner {
                Some(_) if d.owner.is_none() => Ok(Outcome::error(
                    "could not check: DescribeVpcEndpointServices does not report the service's owner",
                )),
                Some(o) if Some(o) == d.owner.as_deref() => Ok(Outcome::pass(format!(
                    "{name} exists, owned by {o} (cross-account): its configuration can only be read from that account, so the checks that need it could not be made from here"
                ))),
                Some(o) => Ok(Outcome::fail(format!(
                    "{name} is owned by {svc_owner}, not by {o} as XksProxyVpcEndpointServiceOwner says"
                ))),
                None => Ok(Outcome::fail(format!(
                    "{name} is owned by {svc_owner}, not by this account: set XksProxyVpcEndpointServiceOwner to {svc_owner} (--vpc-endpoint-service-owner), or KMS looks for it in this account"
                ))),
            }
        }
        Seen::Unseen => {
            if let Some(o) = owner {
                let caller = got(f.caller_identity().await)?;
                if caller.account != o {
                    return Ok(Outcome::error(format!(
                        "could not check from this account: {name} would belong to {o}, which does not let this account ({}) see it; KMS may still find it. Run this check with {o}'s credentials",
                        caller.account
                    )));
                }
            }
            Ok(Outcome::fail(format!(
                "no VPC endpoint service named {name} in {}{}",
                r.region,
                owner.map(|o| format!(" owned by {o}")).unwrap_or_default()
            )))
        }
    }
}

async fn kms_allowed(f: &Facts) -> Step<Outcome> {
    let (r, _) = vpc(f)?;
    let principal = kms_principal(&r.region);
    match found(f).await? {
        Found::Other(d) => return Ok(not_from_here(d, "its allowed principals")),
        Found::Own(_) => {}
    }
    let allowed = got(f.vpce_permissions().await)?;
    let list: Vec<String> = allowed
        .iter()
        .map(|p| {
            format!(
                "{} ({})",
                p.principal,
                p.principal_type.as_deref().unwrap_or("?")
            )
        })
        .collect();
    if allowed.iter().any(|p| p.principal == principal) {
        return Ok(Outcome::pass(format!("{principal} may connect")).evidence(list));
    }
    if allowed.iter().any(|p| p.principal == "*") {
        return Ok(Outcome::warn(format!(
            "the service allows every principal (*): KMS ({principal}) can connect, but so can anyone; allow only {principal}"
        ))
        .evidence(list)
        .exceptions(&[])
        .codes(&[]));
    }
    Ok(Outcome::fail(format!(
        "{principal} is not among the service's allowed principals"
    ))
    .evidence(list)
    .fix(format!(
        "aws ec2 modify-vpc-endpoint-service-permissions --service-id <vpce-svc-id> --add-allowed-principals {principal}"
    )))
}

fn type_names(t: &[crate::facts::model::ServiceTypeDetail]) -> Vec<&str> {
    t.iter().map(|x| x.service_type.as_str()).collect()
}

async fn load_balancer(f: &Facts) -> Step<Outcome> {
    vpc(f)?;
    let c = match found(f).await? {
        Found::Own(c) => c,
        Found::Other(d) => {
            let types = type_names(&d.service_type);
            if !types.contains(&"Interface") {
                return Ok(Outcome::fail(format!(
                    "the service type is {}, not Interface",
                    types.join(", ")
                )));
            }
            return Ok(not_from_here(d, "which load balancers serve it"));
        }
    };
    let types = type_names(&c.service_type);
    if !types.contains(&"Interface") {
        return Ok(Outcome::fail(format!(
            "the service type is {}, not Interface",
            types.join(", ")
        )));
    }
    if !c.gateway_load_balancer_arns.is_empty() {
        return Ok(Outcome::fail(
            "the service is behind a Gateway Load Balancer; KMS needs a Network Load Balancer",
        )
        .evidence(c.gateway_load_balancer_arns.clone()));
    }
    if c.network_load_balancer_arns.is_empty() {
        return Ok(Outcome::fail("the service has no Network Load Balancer"));
    }
    let lbs = got(f.load_balancers().await)?;
    let mut evidence = Vec::new();
    let mut problems = Vec::new();
    let mut impaired = Vec::new();
    for arn in &c.network_load_balancer_arns {
        match lbs.iter().find(|l| &l.load_balancer_arn == arn) {
            None => problems.push(format!("{arn} does not exist")),
            Some(l) => {
                let kind = l.r#type.as_deref().unwrap_or("unknown");
                let state = l
                    .state
                    .as_ref()
                    .map(|s| s.code.as_str())
                    .unwrap_or("unknown");
                evidence.push(format!("{arn}: {kind}, {state}"));
                if kind != "network" {
                    let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
                        "an"
                    } else {
                        "a"
                    };
                    problems.push(format!(
                        "{arn} is {article} {kind} load balancer, not network"
                    ));
                }
                match state {
                    "active" => {}
                    // Routing traffic, short of what it needs to scale: AWS does not say that
                    // KMS refuses it.
                    "active_impaired" => impaired.push(arn.as_str()),
                    _ => problems.push(format!("{arn} is {state}, not active")),
                }
            }
        }
    }
    if problems.is_empty() && !impaired.is_empty() {
        return Ok(Outcome::warn(format!(
            "{} is active_impaired: it routes traffic but cannot scale (Elastic Load Balancing); \
             KMS is not documented to refuse it, but requests may be slow or dropped under load",
            impaired.join(", ")
        ))
        .evidence(evidence)
        .exceptions(&[])
        .codes(&[]));
    }
    if problems.is_empty() {
        return Ok(
            Outcome::pass("an Interface service behind an active Network Load Balancer")
                .evidence(evidence),
        );
    }
    Ok(Outcome::fail(problems.join("; ")).evidence(evidence))
}

/// The network load balancer must listen on TCP port 443, where KMS's endpoint connects, and
/// forward to targets its health checks find healthy. KMS does not validate this at
/// CreateCustomKeyStore (as far as AWS documents), only meets it when it connects.
async fn listener_targets(f: &Facts) -> Step<Outcome> {
    vpc(f)?;
    let c = match found(f).await? {
        Found::Own(c) => c,
        Found::Other(d) => {
            return Ok(not_from_here(
                d,
                "its load balancers' listeners and targets",
            ))
        }
    };
    if c.network_load_balancer_arns.is_empty() {
        return Ok(Outcome::blocked(
            "xks.vpce.load-balancer",
            "the service has no Network Load Balancer",
        ));
    }
    if !got(f.load_balancers().await)?
        .iter()
        .any(|l| l.r#type.as_deref() == Some("network"))
    {
        return Ok(Outcome::blocked(
            "xks.vpce.load-balancer",
            "none of the service's load balancers is a Network Load Balancer",
        ));
    }
    // KMS's interface endpoint reaches the service over IPv4.
    if !c.supported_ip_address_types.is_empty()
        && !c
            .supported_ip_address_types
            .iter()
            .any(|t| t.eq_ignore_ascii_case("ipv4"))
    {
        return Ok(Outcome::fail(format!(
            "the endpoint service supports only {}: KMS connects to it over IPv4",
            c.supported_ip_address_types.join(", ")
        ))
        .fix("Add IPv4 to the service's supported IP address types: `aws ec2 modify-vpc-endpoint-service-configuration --service-id <vpce-svc-id> --add-supported-ip-address-types ipv4`"));
    }
    let listeners = got(f.listeners().await)?;
    let listing: Vec<String> = listeners
        .iter()
        .map(|l| {
            let groups = l.target_groups();
            format!(
                "{} {}:{} → {}",
                l.load_balancer_arn
                    .rsplit('/')
                    .nth(1)
                    .unwrap_or(&l.load_balancer_arn),
                l.protocol.as_deref().unwrap_or("?"),
                l.port.map(|p| p.to_string()).unwrap_or_else(|| "?".into()),
                if groups.is_empty() {
                    "no target group".to_string()
                } else {
                    groups.join(", ")
                }
            )
        })
        .collect();
    let on_443: Vec<_> = listeners.iter().filter(|l| l.takes_kms()).collect();
    if on_443.is_empty() {
        return Ok(Outcome::fail(if listeners.is_empty() {
            "the Network Load Balancer has no listener: KMS's connections to port 443 of the endpoint are refused".to_string()
        } else {
            "no TCP or TLS listener on port 443: KMS connects to the proxy's endpoint on port 443 only".to_string()
        })
        .evidence(listing)
        .fix("Add a TCP listener on port 443 that forwards to the proxy's target group: `aws elbv2 create-listener --load-balancer-arn <NLB ARN> --protocol TCP --port 443 --default-actions Type=forward,TargetGroupArn=<target group ARN>`"));
    }
    if on_443.iter().all(|l| l.target_groups().is_empty()) {
        return Ok(
            Outcome::fail("the port 443 listener forwards to no target group").evidence(listing),
        );
    }
    let targets = got(f.target_health().await)?;
    let mut evidence = listing;
    let mut healthy = 0;
    for t in targets {
        let id = t
            .target
            .as_ref()
            .map(|x| {
                format!(
                    "{}{}",
                    x.id,
                    x.port.map(|p| format!(":{p}")).unwrap_or_default()
                )
            })
            .unwrap_or_else(|| "?".into());
        let h = t.target_health.clone().unwrap_or_default();
        if h.state == "healthy" {
            healthy += 1;
        }
        let why = [h.reason.as_deref(), h.description.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(": ");
        evidence.push(format!(
            "target {id}: {}{}",
            if h.state.is_empty() {
                "unknown"
            } else {
                &h.state
            },
            if why.is_empty() {
                String::new()
            } else {
                format!(" ({why})")
            }
        ));
    }
    let ipv6 = |t: &crate::facts::model::TargetHealthDescription| {
        t.target
            .as_ref()
            .and_then(|x| x.id.parse::<std::net::IpAddr>().ok())
            .is_some_and(|ip| ip.is_ipv6())
    };
    if !targets.is_empty() && targets.iter().all(ipv6) {
        return Ok(Outcome::fail(
            "every target behind the port 443 listener is an IPv6 address: KMS's connections arrive over IPv4, and a target group serves one IP version",
        )
        .evidence(evidence)
        .fix("Register the proxy's IPv4 addresses in an IPv4 target group behind the port 443 listener"));
    }
    if healthy == 0 {
        return Ok(Outcome::fail(if targets.is_empty() {
            "the port 443 listener's target group has no registered target: nothing answers KMS behind the load balancer".to_string()
        } else {
            format!(
                "none of the {} target(s) behind the port 443 listener is healthy: the load balancer has nowhere to send KMS's requests",
                targets.len()
            )
        })
        .evidence(evidence)
        .fix("Register the proxy's instances or addresses in the target group and make its health check pass: `aws elbv2 describe-target-health --target-group-arn <target group ARN>` shows each target's reason"));
    }
    if healthy < targets.len() {
        return Ok(Outcome::warn(format!(
            "{healthy} of {} target(s) behind the port 443 listener are healthy: KMS is served, with less room to spare",
            targets.len()
        ))
        .evidence(evidence)
        .exceptions(&[])
        .codes(&[]));
    }
    Ok(Outcome::pass(format!(
        "a port 443 listener forwards to {healthy} healthy target(s)"
    ))
    .evidence(evidence))
}

async fn two_az(f: &Facts) -> Step<Outcome> {
    vpc(f)?;
    let (service_azs, owner_view) = match found(f).await? {
        Found::Own(c) => (c.availability_zones.clone(), true),
        Found::Other(d) => (d.availability_zones.clone(), false),
    };
    let mut evidence = vec![format!("service: {}", service_azs.join(", "))];
    let distinct = service_azs.iter().collect::<BTreeSet<_>>().len();
    if distinct < 2 {
        return Ok(Outcome::fail(format!(
            "the service is in {distinct} Availability Zone(s); KMS needs at least two"
        ))
        .evidence(evidence));
    }
    if !owner_view {
        return Ok(Outcome::pass(format!(
            "the service is in {distinct} Availability Zones (its load balancer's zones can only be read from the owner account)"
        ))
        .evidence(evidence));
    }
    let lbs = got(f.load_balancers().await)?;
    for l in lbs {
        let zones: BTreeSet<&str> = l
            .availability_zones
            .iter()
            .map(|z| z.zone_name.as_str())
            .collect();
        evidence.push(format!(
            "{}: {}",
            l.load_balancer_name
                .as_deref()
                .unwrap_or(&l.load_balancer_arn),
            zones.iter().copied().collect::<Vec<_>>().join(", ")
        ));
        if zones.len() < 2 {
            return Ok(Outcome::fail(format!(
                "the load balancer {} has subnets in {} Availability Zone(s); KMS needs at least two",
                l.load_balancer_arn,
                zones.len()
            ))
            .evidence(evidence));
        }
    }
    Ok(Outcome::pass(format!(
        "the service and its load balancer span {distinct} or more Availability Zones"
    ))
    .evidence(evidence))
}

async fn acceptance(f: &Facts) -> Step<Outcome> {
    vpc(f)?;
    let required = match found(f).await? {
        Found::Own(c) => c.acceptance_required,
        Found::Other(d) => d.acceptance_required,
    };
    match required {
        Some(false) => Ok(Outcome::pass("connections are accepted without manual acceptance")),
        Some(true) => Ok(Outcome::fail(
            "the service requires acceptance of endpoint connections: KMS's connection would wait for it",
        )
        .fix("aws ec2 modify-vpc-endpoint-service-configuration --service-id <vpce-svc-id> --no-acceptance-required")),
        None => Ok(Outcome::error("could not check: AcceptanceRequired is not reported")),
    }
}

async fn private_dns(f: &Facts) -> Step<Outcome> {
    vpc(f)?;
    let (name, state) = match found(f).await? {
        Found::Own(c) => (
            c.private_dns_name.clone(),
            c.private_dns_name_configuration
                .as_ref()
                .and_then(|p| p.state.clone()),
        ),
        Found::Other(d) => (
            d.private_dns_name.clone(),
            d.private_dns_name_verification_state.clone(),
        ),
    };
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        return Ok(Outcome::fail("the service has no private DNS name")
            .fix("aws ec2 modify-vpc-endpoint-service-configuration --service-id <vpce-svc-id> --private-dns-name <the proxy's host name>, then verify it"));
    };
    match state.as_deref() {
        Some("verified") => Ok(Outcome::pass(format!("private DNS name {name} is verified"))),
        Some(s) => Ok(Outcome::fail(format!(
            "private DNS name {name} is {s}, not verified"
        ))
        .fix(format!(
            "Publish the TXT record shown by `aws ec2 describe-vpc-endpoint-service-configurations` (PrivateDnsNameConfiguration Name and Value) in the public zone of {name}, then run `aws ec2 start-vpc-endpoint-service-private-dns-verification --service-id <vpce-svc-id>`"
        ))),
        None => Ok(Outcome::error(format!(
            "could not check: the verification state of {name} is not reported"
        ))),
    }
}

async fn endpoint_matches_dns(f: &Facts) -> Step<Outcome> {
    let (r, _) = vpc(f)?;
    let name = match found(f).await? {
        Found::Own(c) => c.private_dns_name.clone(),
        Found::Other(d) => d.private_dns_name.clone(),
    };
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        return Ok(Outcome::blocked(
            "xks.vpce.private-dns",
            "the service has no private DNS name",
        ));
    };
    let Some(host) = r.host() else {
        return Ok(Outcome::blocked(
            "xks.params.uri-endpoint",
            "the endpoint has no DNS name",
        ));
    };
    if host.eq_ignore_ascii_case(&name) {
        return Ok(Outcome::pass(format!(
            "{host} is the service's private DNS name (the proxy's certificate must cover it: see xks.tls.certificate-name)"
        )));
    }
    Ok(Outcome::fail(format!(
        "the endpoint's host {host} is not the service's private DNS name {name}"
    )))
}

async fn vpce_unused(f: &Facts) -> Step<Outcome> {
    let (_, name) = vpc(f)?;
    let stores = got(f.key_stores().await)?;
    let same: Vec<_> = stores
        .iter()
        .filter(|s| {
            s.xks_proxy_configuration
                .as_ref()
                .and_then(|x| x.vpc_endpoint_service_name.as_deref())
                == Some(name)
        })
        .collect();
    if same.is_empty() {
        return Ok(Outcome::pass(format!("no other key store uses {name}")));
    }
    Ok(Outcome::fail(format!(
        "{name} already serves {}",
        same.iter()
            .map(|s| s.custom_key_store_id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ))
    .evidence(same.iter().map(|s| super::account::describe_store(s))))
}
