#!/usr/bin/env bash
# Regenerates examples/xks-vpc: a recorded snapshot (exactly what `aws ... --output json` prints)
# of an external key store setup with VPC endpoint service connectivity that fails three ways:
#
#   * the endpoint service allows the account (arn:aws:iam::111122223333:root) but not KMS's
#     service principal cks.kms.us-east-1.amazonaws.com    -> XksProxyVpcEndpointServiceNotFoundException
#   * its private DNS name is still pendingVerification    -> XksProxyVpcEndpointServiceInvalidConfigurationException
#   * its Network Load Balancer has a subnet in one Availability Zone only (so has the service)
#                                                          -> XksProxyVpcEndpointServiceInvalidConfigurationException
#
# Everything else is right: an Interface service behind an active internal NLB (a TCP 443
# listener with a healthy target), no acceptance
# required, the proxy's host is the private DNS name, the service serves no other key store.
# The files, and the command that records each (README.md shows the cks-doctor command):
#
#   ec2-describe-vpc-endpoint-service-configurations.json  aws ec2 describe-vpc-endpoint-service-configurations --filters Name=service-name,Values=<name>
#   ec2-describe-vpc-endpoint-service-permissions.json     aws ec2 describe-vpc-endpoint-service-permissions --service-id <id>
#   ec2-describe-vpc-endpoint-services.json                aws ec2 describe-vpc-endpoint-services --filters Name=service-name,Values=<name>
#   elbv2-describe-load-balancers.json                     aws elbv2 describe-load-balancers --load-balancer-arns <NLB ARNs>
#   elbv2-describe-listeners.json                          aws elbv2 describe-listeners --load-balancer-arn <NLB ARN>
#   elbv2-describe-target-health.json                      aws elbv2 describe-target-health --target-group-arn <group of the 443 listener>
#   sts-get-caller-identity.json                           aws sts get-caller-identity
#   kms-describe-custom-key-stores.json                    aws kms describe-custom-key-stores
#
# Deterministic: the same files on every run. Run from anywhere: scripts/gen-example-xks-vpc.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

python3 - "$root/examples/xks-vpc" <<'PY'
import json
import os
import sys

out = sys.argv[1]
os.makedirs(out, exist_ok=True)

REGION = "us-east-1"
ACCOUNT = "111122223333"
SERVICE_ID = "vpce-svc-0e1f2a3b4c5d6e7f8"
SERVICE_NAME = f"com.amazonaws.vpce.{REGION}.{SERVICE_ID}"
PRIVATE_DNS = "myproxy-private.xks.example.com"
VPC = "vpc-0a1b2c3d4e5f60718"
SUBNET_A = "subnet-0a11b22c33d44e55f"
NLB_NAME = "xks-proxy-nlb"
NLB_ARN = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:loadbalancer/net/{NLB_NAME}/5d2e8f1a7c3b9e40"
ZONES = ["us-east-1a"]  # the NLB's only subnet: the finding
SERVICE_TYPE = [{"ServiceType": "Interface"}]
DNS_RECORD = {"Name": "_8kq3xw2m7zplv4n9cd1t", "Value": "vpce:Zr4xQm8Tn2Wb6Kd1Lp9Ys3Fh"}
VERIFICATION = "pendingVerification"  # the TXT record is not published yet: the finding
TAGS = [{"Key": "Name", "Value": "xks-proxy"}]


def write(name, obj):
    with open(os.path.join(out, name), "w") as f:
        json.dump(obj, f, indent=4)
        f.write("\n")


write(
    "ec2-describe-vpc-endpoint-service-configurations.json",
    {
        "ServiceConfigurations": [
            {
                "ServiceType": SERVICE_TYPE,
                "ServiceId": SERVICE_ID,
                "ServiceName": SERVICE_NAME,
                "ServiceState": "Available",
                "AvailabilityZones": ZONES,
                "AcceptanceRequired": False,
                "ManagesVpcEndpoints": False,
                "NetworkLoadBalancerArns": [NLB_ARN],
                "SupportedIpAddressTypes": ["ipv4"],
                "BaseEndpointDnsNames": [f"{SERVICE_ID}.{REGION}.vpce.amazonaws.com"],
                "PrivateDnsName": PRIVATE_DNS,
                "PrivateDnsNameConfiguration": {
                    "State": VERIFICATION,
                    "Type": "TXT",
                    "Value": DNS_RECORD["Value"],
                    "Name": DNS_RECORD["Name"],
                },
                "Tags": TAGS,
                "SupportedRegions": [{"Region": REGION, "ServiceState": "Available"}],
                "RemoteAccessEnabled": False,
            }
        ]
    },
)

# The account may connect, KMS's principal (cks.kms.us-east-1.amazonaws.com) may not: the finding.
write(
    "ec2-describe-vpc-endpoint-service-permissions.json",
    {
        "AllowedPrincipals": [
            {
                "PrincipalType": "Account",
                "Principal": f"arn:aws:iam::{ACCOUNT}:root",
                "ServicePermissionId": "vpce-svc-perm-0c4d5e6f7a8b9c0d1",
                "ServiceId": SERVICE_ID,
            }
        ]
    },
)

# The consumer view (what another account allowed to connect would see).
write(
    "ec2-describe-vpc-endpoint-services.json",
    {
        "ServiceNames": [SERVICE_NAME],
        "ServiceDetails": [
            {
                "ServiceName": SERVICE_NAME,
                "ServiceId": SERVICE_ID,
                "ServiceType": SERVICE_TYPE,
                "ServiceRegion": REGION,
                "AvailabilityZones": ZONES,
                "Owner": ACCOUNT,
                "BaseEndpointDnsNames": [f"{SERVICE_ID}.{REGION}.vpce.amazonaws.com"],
                "PrivateDnsName": PRIVATE_DNS,
                "PrivateDnsNames": [{"PrivateDnsName": PRIVATE_DNS}],
                "VpcEndpointPolicySupported": False,
                "AcceptanceRequired": False,
                "ManagesVpcEndpoints": False,
                "Tags": TAGS,
                "PrivateDnsNameVerificationState": VERIFICATION,
                "SupportedIpAddressTypes": ["ipv4"],
            }
        ],
    },
)

write(
    "elbv2-describe-load-balancers.json",
    {
        "LoadBalancers": [
            {
                "LoadBalancerArn": NLB_ARN,
                "DNSName": f"{NLB_NAME}-5d2e8f1a7c3b9e40.elb.{REGION}.amazonaws.com",
                "CanonicalHostedZoneId": "Z26RNL4JYFTOTI",
                "CreatedTime": "2025-03-12T09:41:27.118000+00:00",
                "LoadBalancerName": NLB_NAME,
                "Scheme": "internal",
                "VpcId": VPC,
                "State": {"Code": "active"},
                "Type": "network",
                "AvailabilityZones": [
                    {"ZoneName": "us-east-1a", "SubnetId": SUBNET_A, "LoadBalancerAddresses": []}
                ],
                "SecurityGroups": ["sg-0f1e2d3c4b5a69788"],
                "IpAddressType": "ipv4",
                "EnablePrefixForIpv6SourceNat": "off",
            }
        ]
    },
)

TARGET_GROUP = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/xks-proxy/8c1f0e5d2a7b3c96"

write(
    "elbv2-describe-listeners.json",
    {
        "Listeners": [
            {
                "ListenerArn": f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:listener/net/{NLB_NAME}/5d2e8f1a7c3b9e40/1f4e7a2c9b3d5e68",
                "LoadBalancerArn": NLB_ARN,
                "Port": 443,
                "Protocol": "TCP",
                "DefaultActions": [
                    {
                        "Type": "forward",
                        "TargetGroupArn": TARGET_GROUP,
                        "ForwardConfig": {
                            "TargetGroups": [{"TargetGroupArn": TARGET_GROUP, "Weight": 1}],
                            "TargetGroupStickinessConfig": {"Enabled": False},
                        },
                    }
                ],
            }
        ]
    },
)

write(
    "elbv2-describe-target-health.json",
    {
        "TargetHealthDescriptions": [
            {
                "Target": {"Id": "10.20.1.15", "Port": 443, "AvailabilityZone": "us-east-1a"},
                "HealthCheckPort": "443",
                "TargetHealth": {"State": "healthy"},
            }
        ]
    },
)

write(
    "sts-get-caller-identity.json",
    {
        "UserId": "AIDAJQABLZS4A3QDU576Q",
        "Account": ACCOUNT,
        "Arn": f"arn:aws:iam::{ACCOUNT}:user/xks-admin",
    },
)

# The account's other stores: a CloudHSM key store and an external key store with a public
# endpoint; neither uses the endpoint service or the proxy's URI.
write(
    "kms-describe-custom-key-stores.json",
    {
        "CustomKeyStores": [
            {
                "CustomKeyStoreId": "cks-1234567890abcdef0",
                "CustomKeyStoreName": "ExampleCloudHsmKeyStore",
                "CloudHsmClusterId": "cluster-234abcdefgh",
                "TrustAnchorCertificate": "<certificate appears here>",
                "ConnectionState": "CONNECTED",
                "CreationDate": "2024-11-02T14:18:07.211000+00:00",
                "CustomKeyStoreType": "AWS_CLOUDHSM",
            },
            {
                "CustomKeyStoreId": "cks-9876543210fedcba0",
                "CustomKeyStoreName": "ExamplePublicXksKeyStore",
                "ConnectionState": "CONNECTED",
                "CreationDate": "2025-01-20T08:02:55.640000+00:00",
                "CustomKeyStoreType": "EXTERNAL_KEY_STORE",
                "XksProxyConfiguration": {
                    "Connectivity": "PUBLIC_ENDPOINT",
                    "AccessKeyId": "ABCDE98765432EXAMPLE",
                    "UriEndpoint": "https://xks.example.com",
                    "UriPath": "/payments/kms/xks/v1",
                },
            },
        ]
    },
)
PY
echo "wrote $root/examples/xks-vpc"
