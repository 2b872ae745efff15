//! One descriptor per fact: the AWS read it is, the IAM action that read needs, the snapshot
//! file that records it and the AWS CLI command that prints that file, and its fetch counter.
//!
//! Everything about a fact that is data lives here once; the fetch counters
//! ([`FetchCounts`]), the snapshot file list ([`FILES`]), the prefetch (which facts the IAM
//! actions of the checks about to run read) and `snapshot`'s error list all read it.

use std::sync::atomic::{AtomicUsize, Ordering};

/// One recorded fact: the snapshot file it lives in and the AWS CLI command that prints it.
#[derive(Debug, PartialEq, Eq)]
pub struct FactFile {
    pub file: &'static str,
    pub command: &'static str,
}

/// Every fact the facts layer reads from AWS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FactKind {
    /// The cluster named in the request.
    Cluster,
    /// The clusters of the account's other CloudHSM key stores (the same read, counted apart).
    AssociatedClusters,
    SecurityGroup,
    Subnets,
    KeyStores,
    RouteTables,
    NetworkAcls,
    VpceConfiguration,
    VpcePermissions,
    VpceService,
    LoadBalancers,
    CallerIdentity,
    /// The listeners of the service's network load balancers.
    Listeners,
    /// The health of the targets behind the port 443 listeners.
    TargetHealth,
    /// The account's KMS keys in this Region (a key pre-flight).
    Keys,
    /// Each listed key's metadata (its custom key store and external key id).
    KeyDescriptions,
    /// The AWS/KMS CloudWatch metrics of external key stores (`metrics.rs`): one GetMetricData
    /// for every store of a Region.
    Metrics,
    /// CloudTrail LookupEvents of custom key store management events and failed KMS calls
    /// (`trail.rs`): the same lookups for every store of a Region.
    Trail,
}

/// What is data about a fact kind.
#[derive(Debug)]
pub struct FactInfo {
    /// The API call, as `--verbose` and the fetch counts name it.
    pub call: &'static str,
    /// The IAM action the call needs (as the checks' metadata lists it).
    pub iam_action: &'static str,
    /// Where a snapshot records it.
    pub file: &'static FactFile,
}

const CLUSTERS: FactFile = FactFile {
    file: "cloudhsmv2-describe-clusters.json",
    command:
        "aws cloudhsmv2 describe-clusters --filters clusterIds=<id>,<associated ids> --output json",
};

impl FactKind {
    pub const ALL: [FactKind; 18] = [
        FactKind::Cluster,
        FactKind::AssociatedClusters,
        FactKind::SecurityGroup,
        FactKind::Subnets,
        FactKind::KeyStores,
        FactKind::RouteTables,
        FactKind::NetworkAcls,
        FactKind::VpceConfiguration,
        FactKind::VpcePermissions,
        FactKind::VpceService,
        FactKind::LoadBalancers,
        FactKind::CallerIdentity,
        FactKind::Listeners,
        FactKind::TargetHealth,
        FactKind::Keys,
        FactKind::KeyDescriptions,
        FactKind::Metrics,
        FactKind::Trail,
    ];

    pub const fn info(self) -> &'static FactInfo {
        match self {
            FactKind::Cluster => &FactInfo {
                call: "cloudhsmv2:DescribeClusters",
                iam_action: "cloudhsm:DescribeClusters",
                file: &CLUSTERS,
            },
            FactKind::AssociatedClusters => &FactInfo {
                call: "cloudhsmv2:DescribeClusters (associated clusters)",
                iam_action: "cloudhsm:DescribeClusters",
                file: &CLUSTERS,
            },
            FactKind::SecurityGroup => &FactInfo {
                call: "ec2:DescribeSecurityGroups",
                iam_action: "ec2:DescribeSecurityGroups",
                file: &FactFile {
                    file: "ec2-describe-security-groups.json",
                    command: "aws ec2 describe-security-groups --group-ids <cluster security group> --output json",
                },
            },
            FactKind::Subnets => &FactInfo {
                call: "ec2:DescribeSubnets",
                iam_action: "ec2:DescribeSubnets",
                file: &FactFile {
                    file: "ec2-describe-subnets.json",
                    command: "aws ec2 describe-subnets --filters Name=subnet-id,Values=<cluster subnets> --output json",
                },
            },
            FactKind::KeyStores => &FactInfo {
                call: "kms:DescribeCustomKeyStores",
                iam_action: "kms:DescribeCustomKeyStores",
                file: &FactFile {
                    file: "kms-describe-custom-key-stores.json",
                    command: "aws kms describe-custom-key-stores --output json",
                },
            },
            FactKind::RouteTables => &FactInfo {
                call: "ec2:DescribeRouteTables",
                iam_action: "ec2:DescribeRouteTables",
                file: &FactFile {
                    file: "ec2-describe-route-tables.json",
                    command: "aws ec2 describe-route-tables --filters Name=vpc-id,Values=<cluster VPC> --output json",
                },
            },
            FactKind::NetworkAcls => &FactInfo {
                call: "ec2:DescribeNetworkAcls",
                iam_action: "ec2:DescribeNetworkAcls",
                file: &FactFile {
                    file: "ec2-describe-network-acls.json",
                    command: "aws ec2 describe-network-acls --filters Name=vpc-id,Values=<cluster VPC> --output json",
                },
            },
            FactKind::VpceConfiguration => &FactInfo {
                call: "ec2:DescribeVpcEndpointServiceConfigurations",
                iam_action: "ec2:DescribeVpcEndpointServiceConfigurations",
                file: &FactFile {
                    file: "ec2-describe-vpc-endpoint-service-configurations.json",
                    command: "aws ec2 describe-vpc-endpoint-service-configurations --filters Name=service-name,Values=<service name> --output json",
                },
            },
            FactKind::VpcePermissions => &FactInfo {
                call: "ec2:DescribeVpcEndpointServicePermissions",
                iam_action: "ec2:DescribeVpcEndpointServicePermissions",
                file: &FactFile {
                    file: "ec2-describe-vpc-endpoint-service-permissions.json",
                    command: "aws ec2 describe-vpc-endpoint-service-permissions --service-id <vpce-svc-id> --output json",
                },
            },
            FactKind::VpceService => &FactInfo {
                call: "ec2:DescribeVpcEndpointServices",
                iam_action: "ec2:DescribeVpcEndpointServices",
                file: &FactFile {
                    file: "ec2-describe-vpc-endpoint-services.json",
                    command: "aws ec2 describe-vpc-endpoint-services --filters Name=service-name,Values=<service name> --output json",
                },
            },
            FactKind::LoadBalancers => &FactInfo {
                call: "elasticloadbalancing:DescribeLoadBalancers",
                iam_action: "elasticloadbalancing:DescribeLoadBalancers",
                file: &FactFile {
                    file: "elbv2-describe-load-balancers.json",
                    command: "aws elbv2 describe-load-balancers --load-balancer-arns <NLB ARNs of the service> --output json",
                },
            },
            FactKind::CallerIdentity => &FactInfo {
                call: "sts:GetCallerIdentity",
                iam_action: "sts:GetCallerIdentity",
                file: &FactFile {
                    file: "sts-get-caller-identity.json",
                    command: "aws sts get-caller-identity --output json",
                },
            },
            FactKind::Listeners => &FactInfo {
                call: "elasticloadbalancing:DescribeListeners",
                iam_action: "elasticloadbalancing:DescribeListeners",
                file: &FactFile {
                    file: "elbv2-describe-listeners.json",
                    command: "aws elbv2 describe-listeners --load-balancer-arn <NLB ARN of the service> --output json",
                },
            },
            FactKind::TargetHealth => &FactInfo {
                call: "elasticloadbalancing:DescribeTargetHealth",
                iam_action: "elasticloadbalancing:DescribeTargetHealth",
                file: &FactFile {
                    file: "elbv2-describe-target-health.json",
                    command: "aws elbv2 describe-target-health --target-group-arn <target group of the NLB's port 443 listener> --output json",
                },
            },
            FactKind::Keys => &FactInfo {
                call: "kms:ListKeys",
                iam_action: "kms:ListKeys",
                file: &FactFile {
                    file: "kms-list-keys.json",
                    command: "aws kms list-keys --output json",
                },
            },
            FactKind::KeyDescriptions => &FactInfo {
                call: "kms:DescribeKey",
                iam_action: "kms:DescribeKey",
                file: &FactFile {
                    file: "kms-describe-key.json",
                    command: "aws kms list-keys --query 'Keys[].KeyId' --output text | tr '\\t' '\\n' | xargs -I{} aws kms describe-key --key-id {} --output json | jq -s . (a JSON array of describe-key outputs)",
                },
            },
            FactKind::Metrics => &FactInfo {
                call: "cloudwatch:GetMetricData",
                iam_action: "cloudwatch:GetMetricData",
                file: &FactFile {
                    file: "cloudwatch-get-metric-data.json",
                    command: "aws cloudwatch get-metric-data --metric-data-queries file://q.json --start-time T0 --end-time T1 --output json (q.json: the queries docs/metrics.md lists for each external key store, ids <query>_<store id with '-' as '_'>)",
                },
            },
            FactKind::Trail => &FactInfo {
                call: "cloudtrail:LookupEvents",
                iam_action: "cloudtrail:LookupEvents",
                file: &FactFile {
                    file: "cloudtrail-lookup-events.json",
                    command: "for n in CreateCustomKeyStore ConnectCustomKeyStore DisconnectCustomKeyStore UpdateCustomKeyStore DeleteCustomKeyStore; do aws cloudtrail lookup-events --lookup-attributes AttributeKey=EventName,AttributeValue=$n --start-time T0 --output json; done; aws cloudtrail lookup-events --lookup-attributes AttributeKey=EventSource,AttributeValue=kms.amazonaws.com --start-time T0 --max-items 500 --output json; all joined with jq -s '{Events: map(.Events) | add}' (docs/cloudtrail.md)",
                },
            },
        }
    }

    pub const fn file(self) -> &'static FactFile {
        self.info().file
    }
}

/// Every snapshot file this version reads, once each, in the order of [`FactKind::ALL`].
pub const FILES: &[&FactFile] = &{
    // Associated clusters share the cluster's file.
    let mut out = [FactKind::Cluster.file(); FactKind::ALL.len() - 1];
    let mut i = 0;
    let mut n = 0;
    while i < FactKind::ALL.len() {
        let kind = FactKind::ALL[i];
        if !matches!(kind, FactKind::AssociatedClusters) {
            out[n] = kind.file();
            n += 1;
        }
        i += 1;
    }
    out
};

/// How many times each fact was fetched from the source (for tests and `--verbose`).
#[derive(Debug, Default)]
pub struct FetchCounts([AtomicUsize; FactKind::ALL.len()]);

impl FetchCounts {
    pub fn add(&self, kind: FactKind) {
        self.0[kind as usize].fetch_add(1, Ordering::Relaxed);
    }
    pub fn set(&self, kind: FactKind, n: usize) {
        self.0[kind as usize].store(n, Ordering::Relaxed);
    }
    pub fn get(&self, kind: FactKind) -> usize {
        self.0[kind as usize].load(Ordering::Relaxed)
    }
    /// Every fact kind's call and how often it was made.
    pub fn snapshot(&self) -> Vec<(&'static str, usize)> {
        FactKind::ALL
            .iter()
            .map(|&k| (k.info().call, self.get(k)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_listed_in_declaration_order() {
        for (i, k) in FactKind::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i, "{k:?}");
        }
    }

    #[test]
    fn every_snapshot_file_is_listed_once() {
        let mut names: Vec<&str> = FILES.iter().map(|f| f.file).collect();
        assert_eq!(names.len(), 17);
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 17, "{names:?}");
        for k in FactKind::ALL {
            assert!(FILES.contains(&k.file()), "{k:?}");
        }
    }
}
