#!/usr/bin/env bash
# Regenerates the recorded example snapshots in examples/ (certificates and AWS CLI JSON).
#
#   examples/ready   a cluster that meets every prerequisite
#   examples/failed-store  an existing store, FAILED with INSUFFICIENT_FREE_ADDRESSES_IN_SUBNET, for
#                    `cks-doctor diagnose`: one of its cluster's subnets has no free address left
#   examples/broken  a cluster that fails several ways at once: HSMs in one Availability Zone,
#                    a missing outbound security group rule, a subnet without free addresses
#                    (and one public subnet, an advisory warning),
#                    a trust anchor that did not sign the cluster certificate (same subject
#                    name, different key), a key store name already in use, a locked kmsuser
#
# The certificates are made with the openssl command line tool, only here, to produce test
# data; cks-doctor itself uses rustls and RustCrypto, never OpenSSL. The JSON files have the
# exact shape `aws ... --output json` prints. Run from anywhere: scripts/gen-examples.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

mkca() { # dir name subject
  openssl req -x509 -newkey rsa:2048 -sha256 -nodes -days 3650 -subj "$3" \
    -keyout "$1/$2.key" -out "$1/$2.crt" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" 2>/dev/null
}
mkcluster() { # dir ca-name out-name
  # As CloudHSM does: the first HSM makes a key pair and a CSR; the customer's CA signs it.
  openssl req -new -newkey rsa:2048 -nodes -keyout "$1/$3.key" -out "$1/$3.csr" \
    -subj "/C=US/ST=CA/O=Cavium/OU=N3FIPS/L=SanJose/CN=HSM:5.3G1941-ICM000590:PARTN:27, for FIPS mode" 2>/dev/null
  printf 'basicConstraints=CA:FALSE\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' > "$1/ext.cnf"
  openssl x509 -req -in "$1/$3.csr" -CA "$1/$2.crt" -CAkey "$1/$2.key" -CAcreateserial \
    -days 3650 -sha256 -extfile "$1/ext.cnf" -out "$1/$3.crt" 2>/dev/null
}

subject="/C=US/ST=Washington/L=Seattle/O=Example Corp/OU=Security/CN=Example Corp HSM Root CA"
# ready: the real CA signs the cluster; a second, unrelated cluster backs an existing store.
mkca "$work" ready-ca "$subject"
mkcluster "$work" ready-ca ready-cluster
mkca "$work" other-ca "/C=US/O=Example Corp/CN=Payments HSM CA"
mkcluster "$work" other-ca other-cluster
# broken: the cluster was signed by one CA; the operator holds another with the same name.
mkca "$work" broken-ca "$subject"
mkcluster "$work" broken-ca broken-cluster
mkca "$work" impostor-ca "$subject"

python3 - "$root/examples" "$work" <<'PY'
import json, os, sys
out, work = sys.argv[1], sys.argv[2]
read = lambda n: open(os.path.join(work, n)).read()

def write(d, name, obj):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "w") as f:
        if isinstance(obj, str):
            f.write(obj)
        else:
            json.dump(obj, f, indent=4)
            f.write("\n")

def hsm(hid, az, subnet, ip, state="ACTIVE", cluster="cluster-jxhlf7644ne"):
    return {"AvailabilityZone": az, "ClusterId": cluster, "SubnetId": subnet,
            "EniId": "eni-0%s" % hid[4:].ljust(16, "0")[:16], "EniIp": ip, "HsmId": hid,
            "State": state, "StateMessage": "HSM created." if state == "ACTIVE" else "HSM is degraded."}

def cluster(cid, hsms, mapping, cert, csr, sg="sg-0b0a8fd3e12f91c8a", vpc="vpc-0e5a8c2d7f3b4a1e9"):
    return {"BackupPolicy": "DEFAULT", "BackupRetentionPolicy": {"Type": "DAYS", "Value": "90"},
            "Certificates": {"ClusterCsr": csr, "ClusterCertificate": cert},
            "ClusterId": cid, "CreateTimestamp": "2025-03-11T09:24:08.192000+00:00",
            "Hsms": hsms, "HsmType": "hsm2m.medium", "Mode": "FIPS",
            "SecurityGroup": sg, "State": "ACTIVE", "SubnetMapping": mapping,
            "VpcId": vpc, "NetworkType": "IPV4", "TagList": []}

def rule(sg, port_from=2223, port_to=2225):
    return {"FromPort": port_from, "IpProtocol": "tcp", "IpRanges": [], "Ipv6Ranges": [],
            "PrefixListIds": [], "ToPort": port_to,
            "UserIdGroupPairs": [{"GroupId": sg, "UserId": "111122223333"}]}

def group(sg, ingress, egress, cid="cluster-jxhlf7644ne", vpc="vpc-0e5a8c2d7f3b4a1e9"):
    return {"SecurityGroups": [{"Description": "Security group for %s" % cid,
            "GroupName": "cloudhsm-%s-sg" % cid, "IpPermissions": ingress, "OwnerId": "111122223333",
            "GroupId": sg, "IpPermissionsEgress": egress, "VpcId": vpc}]}

def subnet(sid, az, free, cidr, vpc="vpc-0e5a8c2d7f3b4a1e9"):
    return {"AvailabilityZone": az, "AvailabilityZoneId": az.replace("us-east-1", "use1-az").replace("a", "1").replace("b", "2").replace("c", "4"),
            "AvailableIpAddressCount": free, "CidrBlock": cidr, "DefaultForAz": False,
            "MapPublicIpOnLaunch": False, "State": "available", "SubnetId": sid, "VpcId": vpc,
            "OwnerId": "111122223333", "AssignIpv6AddressOnCreation": False, "Ipv6CidrBlockAssociationSet": [],
            "SubnetArn": "arn:aws:ec2:us-east-1:111122223333:subnet/%s" % sid}

def route_tables(public_subnet=None, vpc="vpc-0e5a8c2d7f3b4a1e9"):
    local = {"DestinationCidrBlock": "10.0.0.0/16", "GatewayId": "local", "Origin": "CreateRouteTable", "State": "active"}
    tables = [{"Associations": [{"Main": True, "RouteTableAssociationId": "rtbassoc-0a1b2c3d4e5f67890", "RouteTableId": "rtb-0a1b2c3d4e5f67890",
                                 "AssociationState": {"State": "associated"}}],
               "PropagatingVgws": [], "RouteTableId": "rtb-0a1b2c3d4e5f67890", "Routes": [local], "Tags": [], "VpcId": vpc, "OwnerId": "111122223333"}]
    if public_subnet:
        tables.append({"Associations": [{"Main": False, "RouteTableAssociationId": "rtbassoc-0f1e2d3c4b5a69788", "RouteTableId": "rtb-0f1e2d3c4b5a69788",
                                         "SubnetId": public_subnet, "AssociationState": {"State": "associated"}}],
                       "PropagatingVgws": [], "RouteTableId": "rtb-0f1e2d3c4b5a69788",
                       "Routes": [local, {"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": "igw-0d9c8b7a6f5e43210", "Origin": "CreateRoute", "State": "active"}],
                       "Tags": [], "VpcId": vpc, "OwnerId": "111122223333"})
    return {"RouteTables": tables}

def network_acls(subnets, vpc="vpc-0e5a8c2d7f3b4a1e9"):
    def entry(n, egress, action):
        return {"CidrBlock": "0.0.0.0/0", "Egress": egress, "Protocol": "-1", "RuleAction": action, "RuleNumber": n}
    return {"NetworkAcls": [{"Associations": [{"NetworkAclAssociationId": "aclassoc-0%015x" % i, "NetworkAclId": "acl-0a9b8c7d6e5f43210", "SubnetId": s}
                                              for i, s in enumerate(subnets)],
                             "Entries": [entry(100, True, "allow"), entry(32767, True, "deny"), entry(100, False, "allow"), entry(32767, False, "deny")],
                             "IsDefault": True, "NetworkAclId": "acl-0a9b8c7d6e5f43210", "Tags": [], "VpcId": vpc, "OwnerId": "111122223333"}]}

def store(sid, name, cid, anchor, state="CONNECTED"):
    return {"CustomKeyStoreId": sid, "CustomKeyStoreName": name, "CloudHsmClusterId": cid,
            "TrustAnchorCertificate": anchor, "ConnectionState": state,
            "CreationDate": "2025-04-02T15:31:52.147000+00:00", "CustomKeyStoreType": "AWS_CLOUDHSM"}

xks = {"CustomKeyStoreId": "cks-0b7c1a2d3e4f56789", "CustomKeyStoreName": "ExternalStore",
       "ConnectionState": "CONNECTED", "CreationDate": "2025-06-20T08:12:44.913000+00:00",
       "CustomKeyStoreType": "EXTERNAL_KEY_STORE",
       "XksProxyConfiguration": {"Connectivity": "PUBLIC_ENDPOINT", "AccessKeyId": "ABCDE12345670EXAMPLE",
                                 "UriEndpoint": "https://myproxy.xks.example.com", "UriPath": "/kms/xks/v1"}}

users_ok = {"error_code": 0, "data": {"users": [
    {"username": "admin", "role": "admin", "locked": "false", "mfa": [], "quorum": [], "cluster-coverage": "full"},
    {"username": "app_user", "role": "crypto-user", "locked": "false", "mfa": [], "quorum": [], "cluster-coverage": "full"},
    {"username": "kmsuser", "role": "crypto-user", "locked": "false", "mfa": [], "quorum": [], "cluster-coverage": "full"}]}}
users_locked = json.loads(json.dumps(users_ok))
users_locked["data"]["users"][2]["locked"] = "true"

sg = "sg-0b0a8fd3e12f91c8a"
mapping2 = {"us-east-1a": "subnet-0a1b2c3d4e5f60718", "us-east-1b": "subnet-0f9e8d7c6b5a40312"}
other = cluster("cluster-w3bg7xq2k4n", [hsm("hsm-o1x2y3z4a5b", "us-east-1a", "subnet-0c1c2c3c4c5c6c7c8", "10.1.0.10"),
                                         hsm("hsm-o6x7y8z9a0b", "us-east-1b", "subnet-0d1d2d3d4d5d6d7d8", "10.1.1.10")],
                {"us-east-1a": "subnet-0c1c2c3c4c5c6c7c8", "us-east-1b": "subnet-0d1d2d3d4d5d6d7d8"},
                read("other-cluster.crt"), read("other-cluster.csr"), sg="sg-0c1d2e3f4a5b6c7d8", vpc="vpc-0a9b8c7d6e5f40312")

# ---- ready ----
d = os.path.join(out, "ready")
write(d, "customerCA.crt", read("ready-ca.crt"))
write(d, "cloudhsmv2-describe-clusters.json", {"Clusters": [
    cluster("cluster-jxhlf7644ne", [hsm("hsm-r2tk4e6pqwy", "us-east-1a", mapping2["us-east-1a"], "10.0.0.12"),
                                    hsm("hsm-x7mc3bfd2sz", "us-east-1b", mapping2["us-east-1b"], "10.0.1.20")],
            mapping2, read("ready-cluster.crt"), read("ready-cluster.csr")), other]})
write(d, "ec2-describe-security-groups.json", group(sg, [rule(sg)], [rule(sg)]))
write(d, "ec2-describe-subnets.json", {"Subnets": [subnet(mapping2["us-east-1a"], "us-east-1a", 249, "10.0.0.0/24"),
                                                   subnet(mapping2["us-east-1b"], "us-east-1b", 250, "10.0.1.0/24")]})
write(d, "kms-describe-custom-key-stores.json", {"CustomKeyStores": [
    store("cks-1234567890abcdef0", "PaymentsKeyStore", "cluster-w3bg7xq2k4n", read("other-ca.crt")), xks]})
write(d, "ec2-describe-route-tables.json", route_tables())
write(d, "ec2-describe-network-acls.json", network_acls(mapping2.values()))
write(d, "cloudhsm-users.json", users_ok)
write(d, "request.json", {"CustomKeyStoreName": "ExampleKeyStore", "CloudHsmClusterId": "cluster-jxhlf7644ne",
                          "TrustAnchorCertificate": read("ready-ca.crt")})

# ---- broken ----
d = os.path.join(out, "broken")
mapping3 = {"us-east-1a": "subnet-0a1b2c3d4e5f60718", "us-east-1b": "subnet-0f9e8d7c6b5a40312", "us-east-1c": "subnet-05d4c3b2a1f0e9d8c"}
write(d, "customerCA.crt", read("impostor-ca.crt"))
write(d, "cloudhsmv2-describe-clusters.json", {"Clusters": [
    cluster("cluster-jxhlf7644ne", [hsm("hsm-r2tk4e6pqwy", "us-east-1a", mapping3["us-east-1a"], "10.0.0.12"),
                                    hsm("hsm-h5vn8kq3tya", "us-east-1a", mapping3["us-east-1a"], "10.0.0.37")],
            mapping3, read("broken-cluster.crt"), read("broken-cluster.csr")), other]})
write(d, "ec2-describe-security-groups.json", group(sg, [rule(sg)], [
    {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
     "Ipv6Ranges": [], "PrefixListIds": [], "UserIdGroupPairs": []}]))
write(d, "ec2-describe-subnets.json", {"Subnets": [subnet(mapping3["us-east-1a"], "us-east-1a", 12, "10.0.0.0/24"),
                                                   subnet(mapping3["us-east-1b"], "us-east-1b", 0, "10.0.1.0/28"),
                                                   subnet(mapping3["us-east-1c"], "us-east-1c", 1, "10.0.2.0/28")]})
write(d, "kms-describe-custom-key-stores.json", {"CustomKeyStores": [
    store("cks-1234567890abcdef0", "PaymentsKeyStore", "cluster-w3bg7xq2k4n", read("other-ca.crt")),
    store("cks-0fedcba9876543210", "ExampleKeyStore", "cluster-w3bg7xq2k4n", read("other-ca.crt"), state="DISCONNECTED"), xks]})
write(d, "ec2-describe-route-tables.json", route_tables(public_subnet=mapping3["us-east-1c"]))
write(d, "ec2-describe-network-acls.json", network_acls(mapping3.values()))
write(d, "cloudhsm-users.json", users_locked)
write(d, "request.json", {"CustomKeyStoreName": "ExampleKeyStore", "CloudHsmClusterId": "cluster-jxhlf7644ne",
                          "TrustAnchorCertificate": read("impostor-ca.crt")})

# ---- failed-store: diagnose an existing store ----
d = os.path.join(out, "failed-store")
write(d, "cloudhsmv2-describe-clusters.json", {"Clusters": [
    cluster("cluster-jxhlf7644ne", [hsm("hsm-r2tk4e6pqwy", "us-east-1a", mapping2["us-east-1a"], "10.0.0.12"),
                                    hsm("hsm-x7mc3bfd2sz", "us-east-1b", mapping2["us-east-1b"], "10.0.1.20")],
            mapping2, read("ready-cluster.crt"), read("ready-cluster.csr"))]})
write(d, "ec2-describe-security-groups.json", group(sg, [rule(sg)], [rule(sg)]))
write(d, "ec2-describe-subnets.json", {"Subnets": [subnet(mapping2["us-east-1a"], "us-east-1a", 31, "10.0.0.0/27"),
                                                   subnet(mapping2["us-east-1b"], "us-east-1b", 0, "10.0.1.0/28")]})
write(d, "ec2-describe-route-tables.json", route_tables())
write(d, "ec2-describe-network-acls.json", network_acls(mapping2.values()))
failed = store("cks-0a1b2c3d4e5f60789", "ExampleKeyStore", "cluster-jxhlf7644ne", read("ready-ca.crt"), state="FAILED")
failed["ConnectionErrorCode"] = "INSUFFICIENT_FREE_ADDRESSES_IN_SUBNET"
write(d, "kms-describe-custom-key-stores.json", {"CustomKeyStores": [failed, xks]})
write(d, "cloudhsm-users.json", users_ok)
PY
echo "examples regenerated in $root/examples"
