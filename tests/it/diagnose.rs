//! `cks-doctor diagnose`: an existing store's ConnectionErrorCode confirmed or ruled out by
//! the checks, on recorded facts (and, for an external key store, a live test proxy).

use crate::support::xks_proxy;

use crate::support::bin;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

fn diagnose(dir: &Path, args: &[&str]) -> (i32, Value, String) {
    let out = bin()
        .arg("--snapshot")
        .arg(dir)
        .args(["--region", "us-east-1", "--output", "json", "diagnose"])
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap(), v, stderr)
}

/// A copy of an example whose store list is rewritten by `edit`.
fn variant(base: &str, edit: impl Fn(&mut Value)) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(example(base)).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), tmp.path().join(f.file_name())).unwrap();
    }
    let p = tmp.path().join("kms-describe-custom-key-stores.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(&p, v.to_string()).unwrap();
    tmp
}

fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn failed_store_is_confirmed_by_the_check_for_its_code() {
    let users = example("failed-store").join("cloudhsm-users.json");
    let (code, r, err) = diagnose(
        &example("failed-store"),
        &[
            "cks-0a1b2c3d4e5f60789",
            "--cloudhsm-users",
            users.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1, "{err}");
    let d = &r["diagnosis"];
    assert_eq!(d["connection_state"], "FAILED");
    assert_eq!(
        d["connection_error_code"],
        "INSUFFICIENT_FREE_ADDRESSES_IN_SUBNET"
    );
    assert_eq!(ids(&d["confirmed_by"]), ["cloudhsm.subnets.free-addresses"]);
    assert!(d["recovery"].as_array().unwrap().len() >= 2);
    assert_eq!(r["target"]["operation"], "ConnectCustomKeyStore");
    // Checks about creating a store are not run against the store itself.
    let run: Vec<&str> = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    let create_only: Vec<&str> = cks_doctor::meta::all()
        .iter()
        .filter(|m| m.create_only)
        .map(|m| m.id.as_str())
        .collect();
    assert_eq!(create_only.len(), 6, "{create_only:?}");
    for id in create_only {
        assert!(!run.contains(&id), "{id} ran");
    }
    assert!(r["verdict"]["text"]
        .as_str()
        .unwrap()
        .contains("INSUFFICIENT_FREE_ADDRESSES_IN_SUBNET"));
    // By name too.
    let (code, r, _) = diagnose(&example("failed-store"), &["--name", "ExampleKeyStore"]);
    assert_eq!(code, 1);
    assert_eq!(
        r["diagnosis"]["custom_key_store_id"],
        "cks-0a1b2c3d4e5f60789"
    );
}

#[test]
fn a_code_no_check_confirms_lists_what_was_ruled_out() {
    // SUBNET_NOT_FOUND, while every subnet exists: ruled out, not confirmed.
    let dir = variant("failed-store", |v| {
        v["CustomKeyStores"][0]["ConnectionErrorCode"] = "SUBNET_NOT_FOUND".into();
    });
    let (_, r, _) = diagnose(dir.path(), &["cks-0a1b2c3d4e5f60789"]);
    let d = &r["diagnosis"];
    assert!(ids(&d["confirmed_by"]).is_empty());
    assert_eq!(ids(&d["ruled_out"]), ["cloudhsm.subnets.exist"]);
    assert!(
        d["text"].as_str().unwrap().contains("no check confirms"),
        "{}",
        d["text"]
    );
}

#[test]
fn codes_whose_cause_is_inside_the_hsm_get_recovery_steps_and_evidence() {
    let dir = variant("failed-store", |v| {
        v["CustomKeyStores"][0]["ConnectionErrorCode"] = "USER_LOCKED_OUT".into();
    });
    // Free the subnet, so that nothing else fails.
    let subnets = dir.path().join("ec2-describe-subnets.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&subnets).unwrap()).unwrap();
    for s in v["Subnets"].as_array_mut().unwrap() {
        s["AvailableIpAddressCount"] = 20.into();
    }
    std::fs::write(&subnets, v.to_string()).unwrap();
    // Without the users file: no evidence, the documented steps; not "no failure found".
    let (code, r, _) = diagnose(dir.path(), &["cks-0a1b2c3d4e5f60789"]);
    assert_eq!(code, 3);
    assert_eq!(r["verdict"]["outlook"], "incomplete");
    assert_eq!(r["verdict"]["connection_error_codes"][0], "USER_LOCKED_OUT");
    let d = &r["diagnosis"];
    assert!(ids(&d["confirmed_by"]).is_empty());
    assert!(ids(&d["not_checked"]).contains(&"cloudhsm.kmsuser.unlocked".to_string()));
    assert!(
        d["text"]
            .as_str()
            .unwrap()
            .contains("follow the recovery steps"),
        "{}",
        d["text"]
    );
    let steps = ids(&d["recovery"]).join(" ");
    assert!(steps.to_lowercase().contains("disconnect"), "{steps}");
    // With a users file that shows kmsuser locked: confirmed.
    let users = dir.path().join("cloudhsm-users.json");
    let mut list: Value = serde_json::from_str(&std::fs::read_to_string(&users).unwrap()).unwrap();
    for u in list["data"]["users"].as_array_mut().unwrap() {
        if u["username"] == "kmsuser" {
            u["locked"] = "true".into();
        }
    }
    std::fs::write(&users, list.to_string()).unwrap();
    let (_, r, _) = diagnose(
        dir.path(),
        &[
            "cks-0a1b2c3d4e5f60789",
            "--cloudhsm-users",
            users.to_str().unwrap(),
        ],
    );
    assert_eq!(
        ids(&r["diagnosis"]["confirmed_by"]),
        ["cloudhsm.kmsuser.unlocked"]
    );
}

#[test]
fn a_connected_store_is_checked_too() {
    let dir = variant("failed-store", |v| {
        let s = &mut v["CustomKeyStores"][0];
        s["ConnectionState"] = "CONNECTED".into();
        s.as_object_mut().unwrap().remove("ConnectionErrorCode");
    });
    let (code, r, _) = diagnose(dir.path(), &["cks-0a1b2c3d4e5f60789"]);
    // A connected store can still lack what a new connection needs.
    assert_eq!(code, 1);
    let d = &r["diagnosis"];
    assert_eq!(d["connection_state"], "CONNECTED");
    assert_eq!(
        ids(&d["other_failures"]),
        ["cloudhsm.subnets.free-addresses"]
    );
}

#[test]
fn unknown_store_is_a_one_line_error_listing_the_stores() {
    let (code, _, err) = diagnose(&example("failed-store"), &["cks-00000000000000000"]);
    assert_eq!(code, 2);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("cks-0a1b2c3d4e5f60789"), "{err}");
}

#[test]
fn external_store_with_an_expired_proxy_certificate() {
    use xks_proxy::*;
    let proxy = TestProxy::start_blocking(ProxyOptions::cert(CertSetup::Expired));
    let dir = variant("failed-store", |v| {
        v["CustomKeyStores"] = serde_json::json!([{
            "CustomKeyStoreId": "cks-0b7c1a2d3e4f56789",
            "CustomKeyStoreName": "ExternalStore",
            "ConnectionState": "FAILED",
            "ConnectionErrorCode": "XKS_PROXY_INVALID_TLS_CONFIGURATION",
            "CustomKeyStoreType": "EXTERNAL_KEY_STORE",
            "XksProxyConfiguration": {
                "Connectivity": "PUBLIC_ENDPOINT",
                "AccessKeyId": ACCESS_KEY_ID,
                "UriEndpoint": ENDPOINT,
                "UriPath": PATH
            }
        }]);
    });
    let ca = dir.path().join("lab-ca.pem");
    std::fs::write(&ca, proxy.root_ca_pem()).unwrap();
    // The secret is not in KMS: without it, everything that needs no signature still runs.
    let (code, r, err) = diagnose(
        dir.path(),
        &[
            "cks-0b7c1a2d3e4f56789",
            "--connect-to",
            &proxy.connect_to_arg(),
            "--trust-ca",
            ca.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1, "{err}");
    let d = &r["diagnosis"];
    assert!(
        ids(&d["confirmed_by"]).contains(&"xks.tls.certificate-validity".to_string()),
        "{d}"
    );
    // TLS 1.2 negotiated from here does not rule out what KMS meets (issue 11 #5).
    assert!(
        ids(&d["not_ruled_out"]).contains(&"xks.tls.version".to_string())
            && !ids(&d["ruled_out"]).contains(&"xks.tls.version".to_string()),
        "{d}"
    );
    let health = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "xks.health.response")
        .unwrap();
    assert_eq!(health["status"], "ERROR", "no secret: could not sign");
}
