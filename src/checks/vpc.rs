//! Advisory checks of the cluster's VPC (requirements §3, below the table): they follow from
//! the documents but are not something KMS itself verifies at CreateCustomKeyStore.
//! - the cluster subnets are private (no route to an internet gateway);
//! - network ACLs let TCP 2223–2225 pass between the cluster subnets, both ways (ACLs are
//!   stateless, so the return traffic to ephemeral ports must pass too).

use super::{got, need_cluster, register, Outcome, Step};
use crate::facts::model::{Cluster, NetworkAcl, NetworkAclEntry, RouteTable, Subnet};
use crate::facts::Facts;

register! {
    "cloudhsm.network.private-subnets" => private_subnets,
    "cloudhsm.network.acls" => network_acls,
}

/// The route table that applies to a subnet: its explicit association, else the VPC's main table.
pub fn table_for<'a>(tables: &'a [RouteTable], subnet_id: &str) -> Option<&'a RouteTable> {
    tables
        .iter()
        .find(|t| {
            t.associations
                .iter()
                .any(|a| a.subnet_id.as_deref() == Some(subnet_id))
        })
        .or_else(|| {
            tables
                .iter()
                .find(|t| t.associations.iter().any(|a| a.main))
        })
}

async fn private_subnets(f: &Facts) -> Step<Outcome> {
    let c = need_cluster(f).await?;
    let tables = got(f.route_tables().await)?;
    let mut public = Vec::new();
    let mut evidence = Vec::new();
    for (az, subnet) in &c.subnet_mapping {
        let Some(t) = table_for(tables, subnet) else {
            evidence.push(format!("{subnet} ({az}): no route table found"));
            continue;
        };
        let igw: Vec<String> = t
            .routes
            .iter()
            .filter(|r| {
                r.gateway_id
                    .as_deref()
                    .is_some_and(|g| g.starts_with("igw-"))
            })
            .filter(|r| r.state.as_deref() != Some("blackhole"))
            .map(|r| {
                format!(
                    "{} → {}",
                    r.destination_cidr_block
                        .as_deref()
                        .or(r.destination_ipv6_cidr_block.as_deref())
                        .unwrap_or("?"),
                    r.gateway_id.as_deref().unwrap_or("?")
                )
            })
            .collect();
        if igw.is_empty() {
            evidence.push(format!(
                "{subnet} ({az}): {} has no internet gateway route",
                t.route_table_id
            ));
        } else {
            evidence.push(format!(
                "{subnet} ({az}): {} routes {}",
                t.route_table_id,
                igw.join(", ")
            ));
            public.push(subnet.clone());
        }
    }
    if public.is_empty() {
        return Ok(
            Outcome::pass("no cluster subnet routes to an internet gateway").evidence(evidence),
        );
    }
    Ok(Outcome::warn(format!(
        "cluster subnet(s) {} route to an internet gateway: AWS recommends private subnets for CloudHSM clusters",
        public.join(", ")
    ))
    .evidence(evidence))
}

// ----- network ACL evaluation -----

/// Inclusive port intervals.
type Ports = Vec<(i32, i32)>;

fn subtract(ports: &Ports, from: i32, to: i32) -> (Ports, Ports) {
    let mut rest = Vec::new();
    let mut hit = Vec::new();
    for &(a, b) in ports {
        if b < from || a > to {
            rest.push((a, b));
            continue;
        }
        if a < from {
            rest.push((a, from - 1));
        }
        if b > to {
            rest.push((to + 1, b));
        }
        hit.push((a.max(from), b.min(to)));
    }
    (rest, hit)
}

fn parse_v4(cidr: &str) -> Option<(u32, u32)> {
    let (addr, len) = cidr.split_once('/')?;
    let len: u32 = len.parse().ok().filter(|l| *l <= 32)?;
    let mut n: u32 = 0;
    let mut parts = 0;
    for octet in addr.split('.') {
        n = (n << 8) | octet.parse::<u8>().ok()? as u32;
        parts += 1;
    }
    if parts != 4 {
        return None;
    }
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    Some((n & mask, mask))
}

/// How a rule's CIDR relates to a peer CIDR.
#[derive(PartialEq)]
enum Overlap {
    Contains,
    Partial,
    None,
}

fn overlap(rule: &str, peer: &str) -> Overlap {
    let (Some((rn, rm)), Some((pn, pm))) = (parse_v4(rule), parse_v4(peer)) else {
        return Overlap::None;
    };
    if rm & pm == rm && pn & rm == rn {
        // The rule's prefix is no longer than the peer's and covers it.
        Overlap::Contains
    } else if pm & rm == pm && rn & pm == pn {
        // The peer's range contains the rule's: the rule covers part of the peer.
        Overlap::Partial
    } else {
        Overlap::None
    }
}

/// Ports of `wanted` that the ACL denies for TCP traffic in one direction to or from `peer`,
/// evaluating rules in order as AWS does (first match wins, then the implicit deny). A rule
/// that covers only part of the peer's range counts against the traffic when it denies and
/// not for it when it allows, so a warning here is conservative.
pub fn denied_ports(acl: &NetworkAcl, egress: bool, peer: &str, wanted: (i32, i32)) -> Ports {
    let mut entries: Vec<&NetworkAclEntry> =
        acl.entries.iter().filter(|e| e.egress == egress).collect();
    entries.sort_by_key(|e| e.rule_number);
    let mut open: Ports = vec![wanted];
    let mut denied: Ports = Vec::new();
    for e in entries {
        if open.is_empty() {
            break;
        }
        if !matches!(e.protocol.as_str(), "-1" | "6" | "tcp" | "all") {
            continue;
        }
        let Some(cidr) = e.cidr_block.as_deref() else {
            continue;
        };
        let allow = e.rule_action == "allow";
        let applies = match overlap(cidr, peer) {
            Overlap::Contains => true,
            Overlap::Partial => !allow,
            Overlap::None => false,
        };
        if !applies {
            continue;
        }
        let (from, to) = match (&e.port_range, e.protocol.as_str()) {
            (_, "-1" | "all") | (None, _) => (0, 65535),
            (Some(p), _) => (p.from, p.to),
        };
        let (rest, hit) = subtract(&open, from, to);
        open = rest;
        if !allow {
            denied.extend(hit);
        }
    }
    denied.extend(open);
    denied.sort();
    denied
}

fn fmt_ports(p: &Ports) -> String {
    p.iter()
        .map(|(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

const HSM_PORTS: (i32, i32) = (2223, 2225);
const EPHEMERAL: (i32, i32) = (1024, 65535);

fn acl_for<'a>(acls: &'a [NetworkAcl], subnet: &str) -> Option<&'a NetworkAcl> {
    acls.iter()
        .find(|a| {
            a.associations
                .iter()
                .any(|x| x.subnet_id.as_deref() == Some(subnet))
        })
        .or_else(|| acls.iter().find(|a| a.is_default))
}

fn problems_for(
    c: &Cluster,
    subnets: &[Subnet],
    acls: &[NetworkAcl],
) -> (Vec<String>, Vec<String>) {
    let mut problems = Vec::new();
    let mut evidence = Vec::new();
    let cidrs: Vec<(&str, &str)> = subnets
        .iter()
        .filter(|s| c.subnet_mapping.values().any(|id| *id == s.subnet_id))
        .filter_map(|s| s.cidr_block.as_deref().map(|b| (s.subnet_id.as_str(), b)))
        .collect();
    for (subnet, _) in &cidrs {
        let Some(acl) = acl_for(acls, subnet) else {
            evidence.push(format!("{subnet}: no network ACL found"));
            continue;
        };
        evidence.push(format!("{subnet}: {}", acl.network_acl_id));
        for (peer_id, peer) in &cidrs {
            // KMS's interfaces and the HSMs both live in every cluster subnet, so each subnet
            // sends and receives on 2223–2225 and the return traffic on ephemeral ports.
            let needs = [
                (false, HSM_PORTS, "inbound TCP"),
                (true, HSM_PORTS, "outbound TCP"),
                (false, EPHEMERAL, "inbound return traffic on"),
                (true, EPHEMERAL, "outbound return traffic on"),
            ];
            for (egress, ports, what) in needs {
                let denied = denied_ports(acl, egress, peer, ports);
                if !denied.is_empty() {
                    let dir = if egress { "to" } else { "from" };
                    problems.push(format!(
                        "{} on {subnet} blocks {what} ports {} {dir} {peer_id} ({peer})",
                        acl.network_acl_id,
                        fmt_ports(&denied)
                    ));
                }
            }
        }
    }
    (problems, evidence)
}

async fn network_acls(f: &Facts) -> Step<Outcome> {
    let c = need_cluster(f).await?;
    // One after the other: the prefetch has already started both (no round trip is added),
    // and with --jobs a check makes one call at a time, as the permit it holds promises.
    let subnets = got(f.subnets().await)?;
    let acls = got(f.network_acls().await)?;
    let (problems, evidence) = problems_for(c, subnets, acls);
    if problems.is_empty() {
        return Ok(Outcome::pass(
            "network ACLs let TCP 2223-2225 and its return traffic pass between all cluster subnets",
        )
        .evidence(evidence));
    }
    Ok(Outcome::warn(problems.join("; ")).evidence(evidence))
}
