//! The facts, as the AWS CLI prints them with `--output json`.
//!
//! These structs are the one shape every fact has inside cks-doctor: the live source converts
//! SDK output into them, the recorded source deserializes them from snapshot files, and
//! `snapshot` capture serializes them back. Field names follow the AWS APIs (PascalCase).
//! Unknown fields are ignored so that files from newer CLI versions still load; enum-like
//! values are kept as strings so that values newer than this build are shown, not dropped.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `aws cloudhsmv2 describe-clusters`
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeClustersOutput {
    #[serde(default)]
    pub clusters: Vec<Cluster>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Cluster {
    pub cluster_id: String,
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hsm_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
    /// Availability Zone → subnet id.
    pub subnet_mapping: BTreeMap<String, String>,
    pub hsms: Vec<Hsm>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificates: Option<Certificates>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Hsm {
    pub hsm_id: String,
    pub availability_zone: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subnet_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eni_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eni_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_message: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Certificates {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_csr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hsm_certificate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws_hardware_certificate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manufacturer_hardware_certificate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_certificate: Option<String>,
}

/// `aws ec2 describe-security-groups`
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeSecurityGroupsOutput {
    #[serde(default)]
    pub security_groups: Vec<SecurityGroup>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct SecurityGroup {
    pub group_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
    pub ip_permissions: Vec<IpPermission>,
    pub ip_permissions_egress: Vec<IpPermission>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct IpPermission {
    pub ip_protocol: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_port: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_port: Option<i32>,
    pub user_id_group_pairs: Vec<UserIdGroupPair>,
    pub ip_ranges: Vec<IpRange>,
    pub ipv6_ranges: Vec<Ipv6Range>,
    pub prefix_list_ids: Vec<PrefixListId>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct UserIdGroupPair {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct IpRange {
    pub cidr_ip: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Ipv6Range {
    pub cidr_ipv6: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct PrefixListId {
    pub prefix_list_id: String,
}

/// `aws ec2 describe-subnets`
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeSubnetsOutput {
    #[serde(default)]
    pub subnets: Vec<Subnet>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Subnet {
    pub subnet_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available_ip_address_count: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cidr_block: Option<String>,
}

/// `aws ec2 describe-route-tables`
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeRouteTablesOutput {
    #[serde(default)]
    pub route_tables: Vec<RouteTable>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct RouteTable {
    pub route_table_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
    pub associations: Vec<RouteTableAssociation>,
    pub routes: Vec<Route>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct RouteTableAssociation {
    pub main: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subnet_id: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Route {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_cidr_block: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_ipv6_cidr_block: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

/// `aws ec2 describe-network-acls`
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeNetworkAclsOutput {
    #[serde(default)]
    pub network_acls: Vec<NetworkAcl>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkAcl {
    pub network_acl_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
    pub is_default: bool,
    pub associations: Vec<NetworkAclAssociation>,
    pub entries: Vec<NetworkAclEntry>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkAclAssociation {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subnet_id: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkAclEntry {
    pub rule_number: i32,
    /// "-1" (all), "6" (tcp), "17" (udp), ...
    pub protocol: String,
    /// "allow" or "deny"
    pub rule_action: String,
    pub egress: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cidr_block: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6_cidr_block: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_range: Option<PortRange>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct PortRange {
    pub from: i32,
    pub to: i32,
}

/// `aws ec2 describe-vpc-endpoint-service-configurations` (services this account owns)
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeVpcEndpointServiceConfigurationsOutput {
    #[serde(default)]
    pub service_configurations: Vec<ServiceConfiguration>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ServiceConfiguration {
    pub service_type: Vec<ServiceTypeDetail>,
    pub service_id: String,
    pub service_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_state: Option<String>,
    pub availability_zones: Vec<String>,
    pub acceptance_required: Option<bool>,
    pub network_load_balancer_arns: Vec<String>,
    pub gateway_load_balancer_arns: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_dns_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_dns_name_configuration: Option<PrivateDnsNameConfiguration>,
    /// ipv4 | ipv6 (both for a dual-stack service)
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub supported_ip_address_types: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ServiceTypeDetail {
    pub service_type: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct PrivateDnsNameConfiguration {
    /// pendingVerification | verified | failed
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `aws ec2 describe-vpc-endpoint-service-permissions --service-id ...`
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeVpcEndpointServicePermissionsOutput {
    #[serde(default)]
    pub allowed_principals: Vec<AllowedPrincipal>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct AllowedPrincipal {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal_type: Option<String>,
    pub principal: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_id: Option<String>,
}

/// `aws ec2 describe-vpc-endpoint-services` (services this account may connect to)
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeVpcEndpointServicesOutput {
    #[serde(default)]
    pub service_details: Vec<ServiceDetail>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ServiceDetail {
    pub service_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_id: Option<String>,
    pub service_type: Vec<ServiceTypeDetail>,
    pub availability_zones: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    pub acceptance_required: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_dns_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_dns_name_verification_state: Option<String>,
}

/// `aws elbv2 describe-load-balancers`
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeLoadBalancersOutput {
    #[serde(default)]
    pub load_balancers: Vec<LoadBalancer>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct LoadBalancer {
    pub load_balancer_arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_balancer_name: Option<String>,
    /// network | application | gateway
    #[serde(skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<LoadBalancerState>,
    pub availability_zones: Vec<LbAvailabilityZone>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct LoadBalancerState {
    pub code: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct LbAvailabilityZone {
    pub zone_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subnet_id: Option<String>,
}

/// `aws elbv2 describe-listeners --load-balancer-arn <NLB ARN>` (a snapshot holds the
/// listeners of every load balancer of the service in one list).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeListenersOutput {
    #[serde(default)]
    pub listeners: Vec<Listener>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Listener {
    pub listener_arn: String,
    pub load_balancer_arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    /// TCP | TLS | UDP | TCP_UDP (network load balancers)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    pub default_actions: Vec<ListenerAction>,
}

impl Listener {
    /// KMS's connections arrive on TCP port 443 (a TLS or TCP_UDP listener also takes them).
    pub fn takes_kms(&self) -> bool {
        self.port == Some(443)
            && matches!(self.protocol.as_deref(), Some("TCP" | "TLS" | "TCP_UDP"))
    }

    /// The target groups its default actions forward to.
    pub fn target_groups(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for a in &self.default_actions {
            let groups = a.target_group_arn.iter().chain(
                a.forward_config
                    .iter()
                    .flat_map(|f| f.target_groups.iter().map(|t| &t.target_group_arn)),
            );
            for g in groups {
                if !out.contains(g) {
                    out.push(g.clone());
                }
            }
        }
        out
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ListenerAction {
    pub r#type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_group_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forward_config: Option<ForwardConfig>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ForwardConfig {
    pub target_groups: Vec<TargetGroupTuple>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct TargetGroupTuple {
    pub target_group_arn: String,
}

/// `aws elbv2 describe-target-health --target-group-arn <group of the 443 listener>` (a
/// snapshot holds the descriptions of every such group in one list).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeTargetHealthOutput {
    #[serde(default)]
    pub target_health_descriptions: Vec<TargetHealthDescription>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct TargetHealthDescription {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetDescription>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_check_port: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_health: Option<TargetHealth>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct TargetDescription {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct TargetHealth {
    /// initial | healthy | unhealthy | unused | draining | unavailable | unhealthy.draining
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `aws sts get-caller-identity`
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct CallerIdentity {
    pub account: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

/// `aws kms describe-custom-key-stores`
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeCustomKeyStoresOutput {
    #[serde(default)]
    pub custom_key_stores: Vec<CustomKeyStore>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct CustomKeyStore {
    pub custom_key_store_id: String,
    pub custom_key_store_name: String,
    /// AWS_CLOUDHSM or EXTERNAL_KEY_STORE; absent in old responses, which means AWS_CLOUDHSM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_key_store_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud_hsm_cluster_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trust_anchor_certificate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xks_proxy_configuration: Option<XksProxyConfiguration>,
}

impl CustomKeyStore {
    pub fn is_cloudhsm(&self) -> bool {
        matches!(
            self.custom_key_store_type.as_deref(),
            None | Some("AWS_CLOUDHSM")
        )
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct XksProxyConfiguration {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connectivity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri_endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpc_endpoint_service_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpc_endpoint_service_owner: Option<String>,
}

/// The JSON printed by `cloudhsm-cli user list` (CloudHSM Client SDK 5).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct CloudHsmUserList {
    pub users: Vec<CloudHsmUser>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct CloudHsmUser {
    pub username: String,
    pub role: String,
    /// `cloudhsm-cli` prints "true"/"false" as strings; booleans are accepted too.
    #[serde(deserialize_with = "bool_or_string")]
    pub locked: bool,
    pub mfa: Vec<serde_json::Value>,
    #[serde(rename = "cluster-coverage")]
    pub cluster_coverage: Option<String>,
}

fn bool_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    use serde::de::Error;
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Bool(b) => Ok(b),
        serde_json::Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        serde_json::Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        other => Err(D::Error::custom(format!(
            "expected true or false, found {other}"
        ))),
    }
}

impl CloudHsmUserList {
    /// Accepts the full `cloudhsm-cli` envelope (`{"error_code":0,"data":{"users":[...]}}`)
    /// or just `{"users":[...]}`.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not valid JSON ({e})"))?;
        if let Some(code) = value.get("error_code").and_then(|c| c.as_i64()) {
            if code != 0 {
                return Err(format!(
                    "cloudhsm-cli reported error_code {code}; rerun `cloudhsm-cli user list` and save its output"
                ));
            }
        }
        let inner = value.get("data").unwrap_or(&value);
        if inner.get("users").is_none() {
            return Err(
                "no \"users\" array: expected the JSON printed by `cloudhsm-cli user list`".into(),
            );
        }
        serde_json::from_value(inner.clone()).map_err(|e| format!("unexpected shape ({e})"))
    }
}

/// One entry of `ListKeys`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct KeyListEntry {
    pub key_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_arn: Option<String>,
}

/// `DescribeKey`'s KeyMetadata: what a key pre-flight reads of the account's KMS keys.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct KeyMetadata {
    pub key_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// Enabled, Disabled, PendingDeletion, Unavailable, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_state: Option<String>,
    /// CUSTOMER or AWS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_manager: Option<String>,
    /// AWS_KMS, EXTERNAL, AWS_CLOUDHSM, EXTERNAL_KEY_STORE.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_key_store_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xks_key_configuration: Option<XksKeyConfiguration>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct XksKeyConfiguration {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// The `DescribeKey` answers for a list of keys: the keys read, and those that could not be
/// (a key policy that denies the caller, a key deleted since it was listed).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyDescriptions {
    pub keys: Vec<KeyMetadata>,
    /// Key id and why it could not be described.
    pub unreadable: Vec<(String, String)>,
}

/// `aws kms list-keys --output json` (all pages: the CLI joins them).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ListKeysOutput {
    #[serde(default)]
    pub keys: Vec<KeyListEntry>,
}

/// One `aws kms describe-key --output json`; a snapshot holds a JSON array of them.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeKeyOutput {
    pub key_metadata: KeyMetadata,
}

/// `aws cloudwatch get-metric-data --output json` (every page: the CLI joins them).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct GetMetricDataOutput {
    #[serde(default)]
    pub metric_data_results: Vec<MetricDataResult>,
    #[serde(default)]
    pub messages: Vec<MessageData>,
}

/// One time series of a GetMetricData answer (a search expression answers one per series it
/// finds, all with the query's id). Timestamps as the CLI prints them (RFC 3339).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct MetricDataResult {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub timestamps: Vec<String>,
    pub values: Vec<f64>,
    /// Complete, InternalError, PartialData, Forbidden.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<String>,
    pub messages: Vec<MessageData>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct MessageData {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}
