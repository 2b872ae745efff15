//! The CloudHSM cluster behind a key store (requirements §3): the cluster, its HSMs, its
//! network and the trust anchor that must have signed its certificate.

use super::{got, is_gone, need_cluster, register, Outcome, Step};
use crate::certs::{self, Cert, ChainOutcome, VerifyError};
use crate::facts::model::{Cluster, IpPermission};
use crate::facts::Facts;
use std::collections::{BTreeMap, BTreeSet};

register! {
    "cloudhsm.cluster.exists" => cluster_exists,
    "cloudhsm.cluster.active" => cluster_active,
    "cloudhsm.cluster.not-in-use" => cluster_not_in_use,
    "cloudhsm.cluster.no-shared-backup-history" => no_shared_backup_history,
    "cloudhsm.cluster.hsm-type-mode" => hsm_type_mode,
    "cloudhsm.cluster.mtls-not-enforced" => mtls_not_enforced,
    "cloudhsm.hsms.active" => hsms_active,
    "cloudhsm.hsms.two-az" => hsms_two_az,
    "cloudhsm.subnets.two-az" => subnets_two_az,
    "cloudhsm.subnets.exist" => subnets_exist,
    "cloudhsm.subnets.free-addresses" => subnets_free_addresses,
    "cloudhsm.security-group.rules" => security_group_rules,
    "cloudhsm.trust-anchor.valid" => trust_anchor_valid,
    "cloudhsm.trust-anchor.signed-cluster-cert" => trust_anchor_signed_cluster_cert,
}

pub(crate) fn hsm_lines(c: &Cluster) -> Vec<String> {
    if c.hsms.is_empty() {
        return vec!["no HSMs".into()];
    }
    c.hsms
        .iter()
        .map(|h| {
            let msg = h
                .state_message
                .as_deref()
                .filter(|m| !m.is_empty())
                .map(|m| format!(" — {m}"))
                .unwrap_or_default();
            format!("{} in {}: {}{msg}", h.hsm_id, h.availability_zone, h.state)
        })
        .collect()
}

// ----- cluster -----

async fn cluster_exists(f: &Facts) -> Step<Outcome> {
    let id = f.request.cluster_id().unwrap_or_default();
    let cluster = got(f.cluster().await)?;
    match cluster {
        None => Ok(Outcome::fail(format!(
            "DescribeClusters does not return {id} ({})",
            f.source().describe()
        ))),
        Some(c) if is_gone(&c.state) => Ok(Outcome::fail(format!("{id} is {}", c.state))
            .fix("A deleted cluster cannot be used: restore a cluster from its latest backup, then use the new cluster id (for an existing store: disconnect → UpdateCustomKeyStore(CloudHsmClusterId) → connect)")),
        Some(c) => Ok(Outcome::pass(format!(
            "{id} found (state {}{})",
            c.state,
            c.vpc_id
                .as_deref()
                .map(|v| format!(", {v}"))
                .unwrap_or_default()
        ))),
    }
}

async fn cluster_active(f: &Facts) -> Step<Outcome> {
    let c = need_cluster(f).await?;
    if c.state == "ACTIVE" {
        return Ok(Outcome::pass("the cluster is ACTIVE"));
    }
    let fix = match c.state.as_str() {
        "UNINITIALIZED" => "Sign the cluster CSR with your CA, run InitializeCluster with the signed certificate and the CA certificate as trust anchor, then activate the cluster (cloudhsm-cli cluster activate)",
        "INITIALIZED" => "Activate the cluster: connect with cloudhsm-cli and run `cluster activate` to set the admin password",
        "CREATE_IN_PROGRESS" | "INITIALIZE_IN_PROGRESS" | "UPDATE_IN_PROGRESS"
        | "MODIFY_IN_PROGRESS" | "ROLLBACK_IN_PROGRESS" => {
            "Wait for the operation in progress to finish, then run cks-doctor again"
        }
        "DEGRADED" => "The cluster is DEGRADED: replace the failed HSMs listed above (delete-hsm, create-hsm) until the cluster is ACTIVE",
        _ => "KMS needs the cluster in the ACTIVE state",
    };
    let known = [
        "CREATE_IN_PROGRESS",
        "UNINITIALIZED",
        "INITIALIZE_IN_PROGRESS",
        "INITIALIZED",
        "UPDATE_IN_PROGRESS",
        "MODIFY_IN_PROGRESS",
        "ROLLBACK_IN_PROGRESS",
        "DEGRADED",
    ];
    let note = if known.contains(&c.state.as_str()) {
        String::new()
    } else {
        " (a state this version of cks-doctor does not know)".to_string()
    };
    let mut evidence = Vec::new();
    if let Some(m) = c.state_message.as_deref().filter(|m| !m.is_empty()) {
        evidence.push(format!("StateMessage: {m}"));
    }
    if c.state == "DEGRADED" {
        evidence.extend(hsm_lines(c));
    }
    // AWS documents only "must be ACTIVE", and CloudHsmClusterNotActiveException for a cluster
    // not yet initialized and activated. A cluster on its way there is certainly refused; one
    // that is ACTIVE apart from an operation in progress or a degraded HSM, or in a state this
    // version does not know, is a WARN: the refusal is inferred and the state may pass.
    let certain = matches!(
        c.state.as_str(),
        "CREATE_IN_PROGRESS" | "UNINITIALIZED" | "INITIALIZE_IN_PROGRESS" | "INITIALIZED"
    );
    let outcome = if certain {
        Outcome::fail(format!(
            "the cluster is {}, not ACTIVE: it has not been initialized and activated",
            c.state
        ))
    } else {
        let what = match c.state.as_str() {
            "DEGRADED" => "a cluster with a failed HSM",
            s if s.ends_with("_IN_PROGRESS") => {
                "a transitional state (UPDATE_IN_PROGRESS, for instance, while an HSM is added)"
            }
            _ => "a state whose effect AWS does not document",
        };
        Outcome::warn(format!(
            "the cluster is {}{note}, not ACTIVE: {what}. AWS documents only that the cluster must be ACTIVE; \
             while it is not, KMS would likely refuse it with CloudHsmClusterNotActiveException (inferred)",
            c.state
        ))
    };
    Ok(outcome.evidence(evidence).fix(fix))
}

async fn cluster_not_in_use(f: &Facts) -> Step<Outcome> {
    let id = f.request.cluster_id().unwrap_or_default();
    let stores = got(f.key_stores().await)?;
    let users: Vec<_> = stores
        .iter()
        .filter(|s| s.is_cloudhsm() && s.cloud_hsm_cluster_id.as_deref() == Some(id))
        .collect();
    if users.is_empty() {
        return Ok(Outcome::pass(format!(
            "no custom key store of this account and Region uses {id}"
        )));
    }
    if let (Some(req), [only]) = (f.request.cloudhsm(), users.as_slice()) {
        if super::account::is_idempotent_match(req, only) {
            return Ok(Outcome::warn(format!(
                "{id} backs {}, a DISCONNECTED store with this name and trust anchor: CreateCustomKeyStore would return its id instead of creating a store",
                only.custom_key_store_id
            ))
            .evidence([super::account::describe_store(only)])
            .exceptions(&[]));
        }
    }
    Ok(Outcome::fail(format!(
        "{id} is already associated with {}",
        users
            .iter()
            .map(|s| s.custom_key_store_id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ))
    .evidence(users.iter().map(|s| super::account::describe_store(s))))
}

/// The first certificate of a PEM text as its base64 body without line breaks (the same DER
/// is the same base64), or the whitespace-free text when it has no PEM block. Byte equality is
/// all that matters here, and a scan compares every cluster with every other of its Region,
/// so nothing is decoded or parsed.
fn cert_identity(pem: &str) -> String {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    let body = pem
        .find(BEGIN)
        .map(|i| &pem[i + BEGIN.len()..])
        .map(|rest| rest.split("-----END").next().unwrap_or(rest))
        .unwrap_or(pem);
    body.split_whitespace().collect()
}

async fn no_shared_backup_history(f: &Facts) -> Step<Outcome> {
    let c = need_cluster(f).await?;
    let Some(own) = c
        .certificates
        .as_ref()
        .and_then(|x| x.cluster_certificate.as_deref())
    else {
        return Ok(Outcome::skip(
            "the cluster has no cluster certificate yet (not initialized): nothing to compare",
        ));
    };
    let stores = got(f.key_stores().await)?;
    let associated = got(f.associated_clusters().await)?;
    let own_id = cert_identity(own);
    let expected: BTreeSet<&str> = stores
        .iter()
        .filter(|s| s.is_cloudhsm())
        .filter_map(|s| s.cloud_hsm_cluster_id.as_deref())
        .filter(|id| *id != c.cluster_id)
        .collect();
    let mut evidence = Vec::new();
    let mut related = Vec::new();
    let mut compared = 0;
    for other in associated {
        let Some(cert) = other
            .certificates
            .as_ref()
            .and_then(|x| x.cluster_certificate.as_deref())
        else {
            evidence.push(format!(
                "{} has no cluster certificate: not compared",
                other.cluster_id
            ));
            continue;
        };
        compared += 1;
        if cert_identity(cert) == own_id {
            let stores_of: Vec<_> = stores
                .iter()
                .filter(|s| s.cloud_hsm_cluster_id.as_deref() == Some(other.cluster_id.as_str()))
                .map(|s| s.custom_key_store_id.as_str())
                .collect();
            related.push(other.cluster_id.clone());
            evidence.push(format!(
                "{} has the same cluster certificate and backs {}",
                other.cluster_id,
                stores_of.join(", ")
            ));
        }
    }
    let seen: BTreeSet<&str> = associated.iter().map(|x| x.cluster_id.as_str()).collect();
    let missing: Vec<&str> = expected.difference(&seen).copied().collect();
    if !related.is_empty() {
        return Ok(Outcome::fail(format!(
            "the cluster shares a backup history with {}, which already backs a custom key store",
            related.join(", ")
        ))
        .evidence(evidence));
    }
    if !missing.is_empty() {
        evidence.push(format!(
            "not found, so not compared (deleted clusters?): {}",
            missing.join(", ")
        ));
    }
    Ok(Outcome::pass(format!(
        "the cluster certificate differs from those of the {compared} other cluster(s) associated with custom key stores"
    ))
    .evidence(evidence))
}

async fn hsm_type_mode(f: &Facts) -> Step<Outcome> {
    let c = need_cluster(f).await?;
    let hsm_type = c.hsm_type.as_deref().unwrap_or("not reported");
    let mode = c.mode.as_deref().unwrap_or("not reported");
    let evidence = [format!("HsmType {hsm_type}, Mode {mode}")];
    let known_type = matches!(hsm_type, "hsm1.medium" | "hsm2m.medium");
    if !known_type {
        return Ok(Outcome::warn(format!(
            "HSM type {hsm_type} is not one KMS documents for custom key stores (hsm1.medium, hsm2m.medium)"
        ))
        .evidence(evidence));
    }
    match mode {
        "FIPS" => Ok(Outcome::pass(format!("{hsm_type} in FIPS mode")).evidence(evidence)),
        "NON_FIPS" => Ok(Outcome::warn(format!(
            "{hsm_type} in NON_FIPS mode: KMS documents FIPS-validated clusters; non-FIPS clusters are not documented either way"
        ))
        .evidence(evidence)),
        _ => Ok(Outcome::warn(format!(
            "cluster mode {mode} is not reported as FIPS: KMS documents FIPS-validated clusters"
        ))
        .evidence(evidence)),
    }
}

async fn mtls_not_enforced(f: &Facts) -> Step<Outcome> {
    let c = need_cluster(f).await?;
    if c.hsm_type.as_deref() == Some("hsm1.medium") {
        return Ok(Outcome::pass(
            "hsm1.medium clusters do not support mTLS, so it cannot be enforced",
        ));
    }
    let on = match c.hsm_type.as_deref() {
        Some(t) => format!("on this {t} cluster,"),
        None => "the cluster reports no HSM type, so".to_string(),
    };
    Ok(Outcome::manual(format!(
        "mTLS enforcement is not visible in any AWS API: {on} run `cloudhsm-cli cluster mtls get-enforcement` and check it says none (KMS does not support mTLS to CloudHSM)"
    )))
}

// ----- HSMs -----

async fn hsms_active(f: &Facts) -> Step<Outcome> {
    let c = need_cluster(f).await?;
    let active = c.hsms.iter().filter(|h| h.state == "ACTIVE").count();
    if active >= 1 {
        return Ok(Outcome::pass(format!("{active} ACTIVE HSM(s)")).evidence(hsm_lines(c)));
    }
    Ok(Outcome::fail(format!(
        "the cluster has no ACTIVE HSM ({} HSM(s) in all)",
        c.hsms.len()
    ))
    .evidence(hsm_lines(c)))
}

/// The cluster's ACTIVE HSMs and the Availability Zones they are in: what KMS counts for
/// CreateCustomKeyStore, ConnectCustomKeyStore and CreateKey (two ACTIVE HSMs in two zones).
pub(crate) fn active_hsm_zones(c: &Cluster) -> (usize, BTreeSet<&str>) {
    let active: Vec<_> = c.hsms.iter().filter(|h| h.state == "ACTIVE").collect();
    let azs = active
        .iter()
        .map(|h| h.availability_zone.as_str())
        .collect();
    (active.len(), azs)
}

async fn hsms_two_az(f: &Facts) -> Step<Outcome> {
    let c = need_cluster(f).await?;
    let (active, azs) = active_hsm_zones(c);
    if active >= 2 && azs.len() >= 2 {
        return Ok(Outcome::pass(format!(
            "{} ACTIVE HSMs in {} Availability Zones ({})",
            active,
            azs.len(),
            azs.iter().copied().collect::<Vec<_>>().join(", ")
        ))
        .evidence(hsm_lines(c)));
    }
    let free_azs: Vec<&str> = c
        .subnet_mapping
        .keys()
        .map(String::as_str)
        .filter(|az| !azs.contains(az))
        .collect();
    let fix = match free_azs.first() {
        Some(az) => format!(
            "Add an HSM in another Availability Zone: aws cloudhsmv2 create-hsm --cluster-id {} --availability-zone {az}",
            c.cluster_id
        ),
        None => "Add an HSM in a second Availability Zone (aws cloudhsmv2 create-hsm); the cluster must have a subnet there".to_string(),
    };
    Ok(Outcome::fail(format!(
        "KMS needs at least two ACTIVE HSMs in different Availability Zones; the cluster has {} ACTIVE HSM(s) in {} zone(s)",
        active,
        azs.len()
    ))
    .evidence(hsm_lines(c))
    .fix(fix))
}

// ----- subnets -----

async fn subnets_two_az(f: &Facts) -> Step<Outcome> {
    let c = need_cluster(f).await?;
    let lines: Vec<String> = c
        .subnet_mapping
        .iter()
        .map(|(az, s)| format!("{az}: {s}"))
        .collect();
    if c.subnet_mapping.len() >= 2 {
        return Ok(Outcome::pass(format!(
            "the cluster has subnets in {} Availability Zones",
            c.subnet_mapping.len()
        ))
        .evidence(lines));
    }
    Ok(Outcome::fail(format!(
        "the cluster has subnets in {} Availability Zone(s); KMS needs at least two",
        c.subnet_mapping.len()
    ))
    .evidence(lines))
}

async fn subnets_exist(f: &Facts) -> Step<Outcome> {
    let c = need_cluster(f).await?;
    if c.subnet_mapping.is_empty() {
        return Ok(Outcome::skip(
            "the cluster lists no subnets (see cloudhsm.subnets.two-az)",
        ));
    }
    let subnets = got(f.subnets().await)?;
    let by_id: BTreeMap<&str, _> = subnets.iter().map(|s| (s.subnet_id.as_str(), s)).collect();
    let mut problems = Vec::new();
    let mut evidence = Vec::new();
    for (az, id) in &c.subnet_mapping {
        match by_id.get(id.as_str()) {
            None => problems.push(format!("{id} ({az}) does not exist")),
            Some(s) => {
                let state = s.state.as_deref().unwrap_or("unknown");
                evidence.push(format!(
                    "{id} ({az}): {state}, {}",
                    s.vpc_id.as_deref().unwrap_or("no VPC")
                ));
                if state != "available" {
                    problems.push(format!("{id} ({az}) is {state}, not available"));
                }
                if let (Some(want), Some(have)) = (&c.vpc_id, &s.vpc_id) {
                    if want != have {
                        problems.push(format!(
                            "{id} ({az}) is in {have}, not the cluster's {want}"
                        ));
                    }
                }
            }
        }
    }
    if problems.is_empty() {
        return Ok(Outcome::pass(format!(
            "all {} subnets of the cluster exist and are available",
            c.subnet_mapping.len()
        ))
        .evidence(evidence));
    }
    Ok(Outcome::fail(problems.join("; ")).evidence(evidence))
}

async fn subnets_free_addresses(f: &Facts) -> Step<Outcome> {
    let c = need_cluster(f).await?;
    if c.subnet_mapping.is_empty() {
        return Ok(Outcome::skip(
            "the cluster lists no subnets (see cloudhsm.subnets.two-az)",
        ));
    }
    let subnets = got(f.subnets().await)?;
    let mine: Vec<_> = subnets
        .iter()
        .filter(|s| c.subnet_mapping.values().any(|id| *id == s.subnet_id))
        .collect();
    if mine.is_empty() {
        return Ok(Outcome::blocked(
            "cloudhsm.subnets.exist",
            "none of the cluster's subnets exists",
        ));
    }
    let mut zero = Vec::new();
    let mut one = Vec::new();
    let mut unknown = Vec::new();
    let mut evidence = Vec::new();
    for s in &mine {
        match s.available_ip_address_count {
            Some(n) => {
                evidence.push(format!("{}: {n} free address(es)", s.subnet_id));
                if n <= 0 {
                    zero.push(s.subnet_id.clone());
                } else if n == 1 {
                    one.push(s.subnet_id.clone());
                }
            }
            None => unknown.push(s.subnet_id.clone()),
        }
    }
    if !zero.is_empty() {
        return Ok(Outcome::fail(format!(
            "no free IP address in {}: KMS creates a network interface in every cluster subnet",
            zero.join(", ")
        ))
        .evidence(evidence));
    }
    if !unknown.is_empty() {
        return Ok(Outcome::error(format!(
            "could not check: AvailableIpAddressCount missing for {}",
            unknown.join(", ")
        ))
        .evidence(evidence));
    }
    if !one.is_empty() {
        return Ok(Outcome::warn(format!(
            "only one free IP address in {}: enough for KMS's interface, none to spare (two are recommended)",
            one.join(", ")
        ))
        .evidence(evidence)
        .exceptions(&[])
        .codes(&[]));
    }
    Ok(Outcome::pass("every cluster subnet has at least two free IP addresses").evidence(evidence))
}

// ----- security group -----

const PORTS: std::ops::RangeInclusive<i32> = 2223..=2225;

/// Ports of 2223–2225 a rule opens to the group itself (all of them for "all traffic").
fn self_ports(rule: &IpPermission, group_id: &str) -> BTreeSet<i32> {
    let peer_is_self = rule
        .user_id_group_pairs
        .iter()
        .any(|p| p.group_id.as_deref() == Some(group_id));
    if !peer_is_self {
        return BTreeSet::new();
    }
    match rule.ip_protocol.to_ascii_lowercase().as_str() {
        "-1" | "all" => PORTS.collect(),
        "tcp" | "6" => {
            let from = rule.from_port.unwrap_or(0);
            let to = rule.to_port.unwrap_or(65535);
            PORTS.filter(|p| (from..=to).contains(p)).collect()
        }
        _ => BTreeSet::new(),
    }
}

fn describe_rule(rule: &IpPermission) -> String {
    let ports = match (rule.from_port, rule.to_port) {
        (Some(a), Some(b)) if a == b => format!("{a}"),
        (Some(a), Some(b)) => format!("{a}-{b}"),
        _ => "all".into(),
    };
    let proto = match rule.ip_protocol.as_str() {
        "-1" => "all traffic".to_string(),
        "6" => "tcp".to_string(),
        p => p.to_string(),
    };
    let mut peers: Vec<String> = rule
        .user_id_group_pairs
        .iter()
        .filter_map(|p| p.group_id.clone())
        .collect();
    peers.extend(rule.ip_ranges.iter().map(|r| r.cidr_ip.clone()));
    peers.extend(rule.ipv6_ranges.iter().map(|r| r.cidr_ipv6.clone()));
    peers.extend(
        rule.prefix_list_ids
            .iter()
            .map(|r| r.prefix_list_id.clone()),
    );
    format!("{proto} {ports} ↔ {}", peers.join(", "))
}

fn coverage(rules: &[IpPermission], group_id: &str) -> BTreeSet<i32> {
    rules.iter().flat_map(|r| self_ports(r, group_id)).collect()
}

async fn security_group_rules(f: &Facts) -> Step<Outcome> {
    let c = need_cluster(f).await?;
    let Some(group_id) = c.security_group.as_deref() else {
        return Ok(Outcome::fail("the cluster reports no security group"));
    };
    let Some(group) = got(f.security_group().await)? else {
        return Ok(Outcome::fail(format!("the cluster's security group {group_id} does not exist"))
            .fix("The cluster's security group was deleted: restore a cluster from a backup (a new cluster gets a new group), then use the new cluster id"));
    };
    let mut problems = Vec::new();
    if let (Some(want), Some(have)) = (&c.vpc_id, &group.vpc_id) {
        if want != have {
            problems.push(format!("{group_id} is in {have}, not the cluster's {want}"));
        }
    }
    let all: BTreeSet<i32> = PORTS.collect();
    let inbound = coverage(&group.ip_permissions, group_id);
    let outbound = coverage(&group.ip_permissions_egress, group_id);
    let missing = |got: &BTreeSet<i32>| -> String {
        all.difference(got)
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if inbound != all {
        problems.push(format!(
            "no inbound rule allows TCP {} from the group itself",
            missing(&inbound)
        ));
    }
    if outbound != all {
        problems.push(format!(
            "no outbound rule allows TCP {} to the group itself",
            missing(&outbound)
        ));
    }
    let mut evidence = vec![format!(
        "{group_id} ({})",
        group.group_name.as_deref().unwrap_or("unnamed")
    )];
    evidence.extend(
        group
            .ip_permissions
            .iter()
            .map(|r| format!("inbound: {}", describe_rule(r))),
    );
    evidence.extend(
        group
            .ip_permissions_egress
            .iter()
            .map(|r| format!("outbound: {}", describe_rule(r))),
    );
    if problems.is_empty() {
        return Ok(Outcome::pass(format!(
            "{group_id} allows TCP 2223-2225 in and out between its members"
        ))
        .evidence(evidence));
    }
    Ok(Outcome::fail(problems.join("; "))
        .evidence(evidence)
        .fix(format!(
            "Restore the default rules of the cluster's group: aws ec2 authorize-security-group-ingress --group-id {group_id} --ip-permissions 'IpProtocol=tcp,FromPort=2223,ToPort=2225,UserIdGroupPairs=[{{GroupId={group_id}}}]' and the same with authorize-security-group-egress"
        )))
}

// ----- trust anchor -----

fn cert_line(c: &Cert) -> String {
    let s = c.summary();
    format!(
        "subject {} | issuer {} | {} | {} | valid {} to {} | SHA-256 {}",
        s.subject,
        s.issuer,
        s.key,
        s.signature_algorithm,
        s.not_before,
        s.not_after,
        s.sha256_fingerprint
    )
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

async fn trust_anchor_valid(f: &Facts) -> Step<Outcome> {
    let Some(req) = f.request.cloudhsm() else {
        return Ok(Outcome::skip("not a CloudHSM key store request"));
    };
    let chain = &req.trust_anchor.chain;
    let evidence: Vec<String> = chain.iter().map(cert_line).collect();
    let verdict = certs::verify_anchor_chain(chain);
    let link_problems: Vec<String> = verdict
        .failed_links()
        .map(|l| match &l.result {
            Err(e) if l.is_self_signature() => {
                format!(
                    "certificate {} does not verify its own signature: {e}",
                    l.child + 1
                )
            }
            Err(e) => format!(
                "certificate {} is not signed by certificate {}: {e}",
                l.child + 1,
                l.issuer + 1
            ),
            Ok(()) => String::new(),
        })
        .collect();
    let errors: Vec<String> = verdict.errors().map(|i| i.to_string()).collect();
    let warnings: Vec<String> = verdict.warnings().map(|i| i.to_string()).collect();
    let what = if chain.len() == 1 {
        "a self-signed CA certificate".to_string()
    } else {
        format!(
            "a chain of {} CA certificates ending in a self-signed root",
            chain.len()
        )
    };
    match verdict.outcome() {
        ChainOutcome::Failed => {
            let mut all = errors;
            all.extend(link_problems);
            Ok(Outcome::fail(all.join("; ")).evidence(evidence))
        }
        ChainOutcome::Unverifiable => Ok(Outcome::error(format!(
            "could not check: {}",
            link_problems.join("; ")
        ))
        .evidence(evidence)),
        ChainOutcome::Verified if !warnings.is_empty() => Ok(Outcome::warn(format!(
            "{what}, but: {}",
            warnings.join("; ")
        ))
        .evidence(evidence)
        .exceptions(&[])),
        ChainOutcome::Verified => Ok(Outcome::pass(what).evidence(evidence)),
    }
}

async fn trust_anchor_signed_cluster_cert(f: &Facts) -> Step<Outcome> {
    let Some(req) = f.request.cloudhsm() else {
        return Ok(Outcome::skip("not a CloudHSM key store request"));
    };
    let c = need_cluster(f).await?;
    let Some(pem) = c
        .certificates
        .as_ref()
        .and_then(|x| x.cluster_certificate.as_deref())
        .filter(|p| !p.trim().is_empty())
    else {
        if matches!(
            c.state.as_str(),
            "UNINITIALIZED" | "CREATE_IN_PROGRESS" | "INITIALIZE_IN_PROGRESS"
        ) {
            return Ok(Outcome::blocked(
                "cloudhsm.cluster.active",
                "the cluster is not initialized, so it has no cluster certificate yet",
            ));
        }
        return Ok(Outcome::error(format!(
            "could not check: DescribeClusters returned no ClusterCertificate for {} (state {})",
            c.cluster_id, c.state
        )));
    };
    let cluster_cert = match certs::parse_pem_chain(pem) {
        Ok(v) if !v.is_empty() => v.into_iter().next().expect("non-empty"),
        Ok(_) => {
            return Ok(Outcome::error(
                "could not check: the ClusterCertificate returned by DescribeClusters holds no certificate",
            ))
        }
        Err(e) => {
            return Ok(Outcome::error(format!(
                "could not check: the ClusterCertificate returned by DescribeClusters does not parse: {e}"
            )))
        }
    };
    let mut evidence = vec![format!("cluster certificate: {}", cert_line(&cluster_cert))];
    evidence.extend(
        req.trust_anchor
            .chain
            .iter()
            .map(|x| format!("trust anchor: {}", cert_line(x))),
    );
    match certs::verify_cluster_cert(&cluster_cert, &req.trust_anchor.chain) {
        Ok(()) => {
            let s = cluster_cert.summary();
            let now = now_unix();
            if s.not_after_unix < now || s.not_before_unix > now {
                return Ok(Outcome::warn(format!(
                    "the trust anchor signed the cluster certificate, but the cluster certificate is outside its validity period ({} to {})",
                    s.not_before, s.not_after
                ))
                .evidence(evidence)
                .exceptions(&[]));
            }
            Ok(Outcome::pass(
                "the trust anchor signed the cluster certificate (issuer name, key identifier and signature verified)",
            )
            .evidence(evidence))
        }
        Err(e @ VerifyError::Unsupported { .. }) => Ok(Outcome::error(format!(
            "could not check: the signature cannot be verified offline: {e}"
        ))
        .evidence(evidence)),
        Err(e) => Ok(Outcome::fail(format!(
            "the trust anchor did not sign the cluster certificate: {e}"
        ))
        .evidence(evidence)),
    }
}
