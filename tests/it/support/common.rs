//! Builders for check tests: a healthy CloudHSM setup held in memory, which each test breaks
//! in exactly one way.
#![allow(dead_code)]

use cks_doctor::checks::{self, Status};
use cks_doctor::facts::model::*;
use cks_doctor::facts::recorded::Recorded;
use cks_doctor::facts::{Facts, Source};
use cks_doctor::input::{CloudHsmRequest, Request, TrustAnchor};
use cks_doctor::report::CheckResult;
use cks_doctor::runner;
use secrecy::SecretString;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub const CLUSTER_ID: &str = "cluster-jxhlf7644ne";
pub const SG: &str = "sg-0b0a8fd3e12f91c8a";
pub const VPC: &str = "vpc-0e5a8c2d7f3b4a1e9";

pub fn fixture(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/certs")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

pub fn hsm(id: &str, az: &str, state: &str) -> Hsm {
    Hsm {
        hsm_id: id.into(),
        availability_zone: az.into(),
        subnet_id: Some(format!("subnet-{az}")),
        state: state.into(),
        ..Default::default()
    }
}

pub fn rule(proto: &str, from: i32, to: i32, peer: &str) -> IpPermission {
    IpPermission {
        ip_protocol: proto.into(),
        from_port: Some(from),
        to_port: Some(to),
        user_id_group_pairs: vec![UserIdGroupPair {
            group_id: Some(peer.into()),
            user_id: Some("111122223333".into()),
        }],
        ..Default::default()
    }
}

pub fn cluster() -> Cluster {
    let mut mapping = BTreeMap::new();
    mapping.insert("us-east-1a".to_string(), "subnet-a".to_string());
    mapping.insert("us-east-1b".to_string(), "subnet-b".to_string());
    Cluster {
        cluster_id: CLUSTER_ID.into(),
        state: "ACTIVE".into(),
        hsm_type: Some("hsm2m.medium".into()),
        mode: Some("FIPS".into()),
        security_group: Some(SG.into()),
        vpc_id: Some(VPC.into()),
        subnet_mapping: mapping,
        hsms: vec![
            hsm("hsm-aaaaaaaaaaa", "us-east-1a", "ACTIVE"),
            hsm("hsm-bbbbbbbbbbb", "us-east-1b", "ACTIVE"),
        ],
        certificates: Some(Certificates {
            cluster_certificate: Some(fixture("rsa2048-pkcs1-sha256-cluster.crt")),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn subnet(id: &str, az: &str, free: i32, cidr: &str) -> Subnet {
    Subnet {
        subnet_id: id.into(),
        vpc_id: Some(VPC.into()),
        availability_zone: Some(az.into()),
        state: Some("available".into()),
        available_ip_address_count: Some(free),
        cidr_block: Some(cidr.into()),
    }
}

pub fn group() -> SecurityGroup {
    SecurityGroup {
        group_id: SG.into(),
        group_name: Some(format!("cloudhsm-{CLUSTER_ID}-sg")),
        vpc_id: Some(VPC.into()),
        owner_id: Some("111122223333".into()),
        ip_permissions: vec![rule("tcp", 2223, 2225, SG)],
        ip_permissions_egress: vec![rule("tcp", 2223, 2225, SG)],
    }
}

pub fn store(id: &str, name: &str, cluster: &str) -> CustomKeyStore {
    CustomKeyStore {
        custom_key_store_id: id.into(),
        custom_key_store_name: name.into(),
        custom_key_store_type: Some("AWS_CLOUDHSM".into()),
        cloud_hsm_cluster_id: Some(cluster.into()),
        trust_anchor_certificate: Some(fixture("ec-p256-sha256-ca.crt")),
        connection_state: Some("CONNECTED".into()),
        ..Default::default()
    }
}

/// A setup where every check passes.
pub fn healthy() -> Recorded {
    Recorded {
        origin: "test".into(),
        clusters: Some(vec![cluster()]),
        security_groups: Some(vec![group()]),
        subnets: Some(vec![
            subnet("subnet-a", "us-east-1a", 250, "10.0.0.0/24"),
            subnet("subnet-b", "us-east-1b", 249, "10.0.1.0/24"),
        ]),
        custom_key_stores: Some(vec![store(
            "cks-1111111111111111a",
            "Other",
            "cluster-w3bg7xq2k4n",
        )]),
        route_tables: Some(vec![main_route_table()]),
        network_acls: Some(vec![default_acl()]),
        ..Default::default()
    }
}

/// The VPC's main route table: only the local route.
pub fn main_route_table() -> RouteTable {
    RouteTable {
        route_table_id: "rtb-main".into(),
        vpc_id: Some(VPC.into()),
        associations: vec![RouteTableAssociation {
            main: true,
            subnet_id: None,
        }],
        routes: vec![Route {
            destination_cidr_block: Some("10.0.0.0/16".into()),
            gateway_id: Some("local".into()),
            state: Some("active".into()),
            ..Default::default()
        }],
    }
}

pub fn acl_entry(
    n: i32,
    egress: bool,
    proto: &str,
    action: &str,
    cidr: &str,
    ports: Option<(i32, i32)>,
) -> NetworkAclEntry {
    NetworkAclEntry {
        rule_number: n,
        protocol: proto.into(),
        rule_action: action.into(),
        egress,
        cidr_block: Some(cidr.into()),
        ipv6_cidr_block: None,
        port_range: ports.map(|(from, to)| PortRange { from, to }),
    }
}

/// The VPC's default ACL: allow everything both ways (then the implicit deny).
pub fn default_acl() -> NetworkAcl {
    NetworkAcl {
        network_acl_id: "acl-default".into(),
        vpc_id: Some(VPC.into()),
        is_default: true,
        associations: vec![],
        entries: vec![
            acl_entry(100, false, "-1", "allow", "0.0.0.0/0", None),
            acl_entry(100, true, "-1", "allow", "0.0.0.0/0", None),
            acl_entry(32767, false, "-1", "deny", "0.0.0.0/0", None),
            acl_entry(32767, true, "-1", "deny", "0.0.0.0/0", None),
        ],
    }
}

pub fn users(json: &str) -> Option<CloudHsmUserList> {
    Some(CloudHsmUserList::from_json(json).expect("valid users json"))
}

pub const USERS_OK: &str = r#"{"error_code":0,"data":{"users":[
 {"username":"admin","role":"admin","locked":"false","mfa":[],"quorum":[],"cluster-coverage":"full"},
 {"username":"kmsuser","role":"crypto-user","locked":"false","mfa":[],"quorum":[],"cluster-coverage":"full"}]}}"#;

pub fn request() -> CloudHsmRequest {
    CloudHsmRequest {
        name: Some("ExampleKeyStore".into()),
        cluster_id: CLUSTER_ID.into(),
        trust_anchor: TrustAnchor::from_text(
            "customerCA.crt",
            fixture("rsa2048-pkcs1-sha256-ca.crt"),
        )
        .unwrap(),
        password: Some(SecretString::from("Passw0rdExample")),
        users: users(USERS_OK),
    }
}

pub fn anchor(fixture_name: &str) -> TrustAnchor {
    TrustAnchor::from_text(fixture_name, fixture(fixture_name)).unwrap()
}

/// Runs one check on the given facts and request, through the real runner.
pub async fn run(id: &str, facts: Recorded, req: CloudHsmRequest) -> CheckResult {
    let check = checks::find(id).unwrap_or_else(|| panic!("no check {id}"));
    let facts = Facts::new(Request::CloudHsm(req), Source::Recorded(facts));
    runner::run(facts, &[check], Duration::from_secs(10))
        .await
        .pop()
        .unwrap()
}

/// Asserts status and the exact exceptions/codes the result carries.
#[track_caller]
pub fn assert_result(r: &CheckResult, status: Status, exceptions: &[&str], codes: &[&str]) {
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

// ----- secrets never shown -----

pub fn b64(bytes: &[u8], alphabet: &[u8; 64]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..=chunk.len() {
            out.push(alphabet[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// The secret, its base64 (standard and URL-safe, at three alignments, without padding) and hex.
pub fn secret_forms(secret: &str) -> Vec<String> {
    const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut v = vec![
        secret.to_string(),
        secret.bytes().map(|b| format!("{b:02x}")).collect(),
        secret.bytes().map(|b| format!("{b:02X}")).collect(),
    ];
    for shift in 0..3 {
        let bytes = &secret.as_bytes()[shift..];
        for a in [STD, URL] {
            // Drop the edges, which depend on the neighbouring bytes.
            let s = b64(bytes, a);
            v.push(s[..s.len() - 2].to_string());
        }
    }
    v
}

/// No form of the secret appears in `text` (`what` names the output).
#[track_caller]
pub fn assert_clean(secret: &str, what: &str, text: &str) {
    for f in secret_forms(secret) {
        assert!(
            !text.contains(&f),
            "{what}: a form of the secret ({f}) appears"
        );
    }
}
