//! Known secret values never reach any output: every command that takes a secret, every output
//! format, report files, snapshots and debug logs (-vv), searched for the secret, its base64
//! and its hex.

use crate::support::xks_proxy;

use crate::support::bin;
use crate::support::common::assert_clean;
use std::path::{Path, PathBuf};

const PASSWORD: &str = "Kms0Password9Secret";
const FORMATS: [&str; 7] = ["table", "json", "junit", "sarif", "markdown", "html", "csv"];

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

/// Runs `args` once per output format with `--report` to a file and `-vv`, and checks stdout,
/// stderr and the report file.
fn check_all_formats(secret: &str, dir: &Path, args: &[&str], env: &[(&str, &str)]) {
    for format in FORMATS {
        let report = dir.join(format!("report.{format}.out"));
        let mut cmd = bin();
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd
            .args(["-vv", "--output", format, "--report"])
            .arg(&report)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.code().is_some_and(|c| c != 2),
            "{format}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_clean(
            secret,
            &format!("{format} stdout"),
            &String::from_utf8_lossy(&out.stdout),
        );
        assert_clean(
            secret,
            &format!("{format} stderr"),
            &String::from_utf8_lossy(&out.stderr),
        );
        assert_clean(
            secret,
            &format!("{format} report"),
            &std::fs::read_to_string(&report).unwrap(),
        );
    }
}

#[test]
fn cloudhsm_password_in_every_format_and_log() {
    let tmp = tempfile::tempdir().unwrap();
    let snap = example("broken");
    let args = [
        "--snapshot",
        snap.to_str().unwrap(),
        "preflight",
        "--cli-input-json",
        &example("broken").join("request.json").display().to_string(),
    ]
    .map(String::from);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    check_all_formats(
        PASSWORD,
        tmp.path(),
        &args,
        &[("CKS_KEY_STORE_PASSWORD", PASSWORD)],
    );
}

#[test]
fn xks_secret_in_preflight_diagnose_and_snapshot() {
    use xks_proxy::*;
    let proxy = TestProxy::start_blocking(ProxyOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    let ca = tmp.path().join("ca.pem");
    std::fs::write(&ca, proxy.root_ca_pem()).unwrap();
    let connect = proxy.connect_to_arg();
    let snap = example("ready");
    let env = [("CKS_XKS_SECRET_ACCESS_KEY", SECRET)];
    let preflight = [
        "--snapshot",
        snap.to_str().unwrap(),
        "--region",
        REGION,
        "preflight",
        "xks",
        "--uri-endpoint",
        ENDPOINT,
        "--uri-path",
        PATH,
        "--access-key-id",
        ACCESS_KEY_ID,
        "--connect-to",
        &connect,
        "--trust-ca",
        ca.to_str().unwrap(),
    ];
    check_all_formats(SECRET, tmp.path(), &preflight, &env);

    // diagnose an external store of a snapshot, signing with the secret.
    let store_dir = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(example("failed-store")).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), store_dir.path().join(f.file_name())).unwrap();
    }
    std::fs::write(
        store_dir.path().join("kms-describe-custom-key-stores.json"),
        serde_json::json!({"CustomKeyStores": [{
            "CustomKeyStoreId": "cks-0b7c1a2d3e4f56789", "CustomKeyStoreName": "ExternalStore",
            "ConnectionState": "CONNECTED", "CustomKeyStoreType": "EXTERNAL_KEY_STORE",
            "XksProxyConfiguration": {"Connectivity": "PUBLIC_ENDPOINT", "AccessKeyId": ACCESS_KEY_ID,
                                      "UriEndpoint": ENDPOINT, "UriPath": PATH}}]})
        .to_string(),
    )
    .unwrap();
    let diagnose = [
        "--snapshot",
        store_dir.path().to_str().unwrap(),
        "--region",
        REGION,
        "diagnose",
        "cks-0b7c1a2d3e4f56789",
        "--connect-to",
        &connect,
        "--trust-ca",
        ca.to_str().unwrap(),
    ];
    check_all_formats(SECRET, tmp.path(), &diagnose, &env);
    // The proxy saw signatures, never the key.
    for q in proxy.requests() {
        assert_clean(
            SECRET,
            "a request to the proxy",
            &format!("{:?} {}", q.headers, q.body),
        );
    }
    assert!(proxy
        .requests()
        .iter()
        .any(|q| q.signature_valid == Some(true)));

    // A snapshot recorded while a secret is in the environment holds none of it.
    let out_dir = tmp.path().join("snap");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = bin()
        .env("CKS_XKS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env(
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        )
        .args([
            "--region",
            REGION,
            "--timeout",
            "3",
            "--endpoint-url",
            &format!("http://127.0.0.1:{port}"),
        ])
        .args(["-vv", "snapshot", "xks", "--out"])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert_clean(
        SECRET,
        "snapshot stdout",
        &String::from_utf8_lossy(&out.stdout),
    );
    assert_clean(
        SECRET,
        "snapshot stderr",
        &String::from_utf8_lossy(&out.stderr),
    );
    if out_dir.exists() {
        for f in std::fs::read_dir(&out_dir).unwrap() {
            let text = std::fs::read_to_string(f.unwrap().path()).unwrap();
            assert_clean(SECRET, "snapshot file", &text);
        }
    }
}
