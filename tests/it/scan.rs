//! `cks-doctor scan`: every store of the account, each diagnosed, in one report.

use assert_cmd::Command;
use serde_json::Value;
use std::path::PathBuf;

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

fn scan(output: &str) -> (i32, String) {
    let out = Command::cargo_bin("cks-doctor")
        .unwrap()
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("NO_COLOR", "1")
        .arg("--snapshot")
        .arg(example("failed-store"))
        .args([
            "--region",
            "us-east-1",
            "--timeout",
            "5",
            "--output",
            output,
            "scan",
        ])
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
    )
}

#[test]
fn scan_diagnoses_every_store_into_one_report() {
    let (code, text) = scan("json");
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&text).unwrap();
    let reports = v["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 2, "both stores of the snapshot");
    let ids: Vec<&str> = reports
        .iter()
        .map(|r| r["diagnosis"]["custom_key_store_id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"cks-0a1b2c3d4e5f60789") && ids.contains(&"cks-0b7c1a2d3e4f56789"));
    // The external store has no secret: still scanned, the signed checks could not run.
    let xks = reports
        .iter()
        .find(|r| r["target"]["kind"] == "xks")
        .unwrap();
    let health = xks["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "xks.health.response")
        .unwrap();
    assert_ne!(health["status"], "PASS");
    assert!(v["errors"].as_array().unwrap().is_empty());
}

#[test]
fn scan_table_has_a_row_per_store() {
    let (code, text) = scan("table");
    assert_eq!(code, 1);
    assert!(text.contains("cks-0a1b2c3d4e5f60789"), "{text}");
    assert!(
        text.contains("FAILED (INSUFFICIENT_FREE_ADDRESSES_IN_SUBNET)"),
        "{text}"
    );
    assert!(text.contains("2 key store(s) scanned"), "{text}");
}
