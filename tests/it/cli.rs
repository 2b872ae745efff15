//! CLI tests: the real binary on the bundled example snapshots and on bad input.

use crate::support::bin;
use assert_cmd::Command;
use serde_json::Value;
use std::path::{Path, PathBuf};

const CLUSTER: &str = "cluster-jxhlf7644ne";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn example(name: &str) -> PathBuf {
    root().join("examples").join(name)
}

fn preflight(dir: &Path, extra: &[&str]) -> Command {
    let mut c = bin();
    c.arg("--snapshot")
        .arg(dir)
        .args(["--region", "us-east-1", "preflight", "cloudhsm"]);
    c.args([
        "--cluster-id",
        CLUSTER,
        "--name",
        "ExampleKeyStore",
        "--trust-anchor",
    ])
    .arg(dir.join("customerCA.crt"))
    .arg("--cloudhsm-users")
    .arg(dir.join("cloudhsm-users.json"));
    c.args(extra);
    c
}

fn json_of(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn check<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no result for {id}"))
}

fn status(report: &Value, id: &str) -> String {
    check(report, id)["status"].as_str().unwrap().to_string()
}

#[test]
fn broken_example_lists_each_seeded_failure_with_its_exception() {
    let out = preflight(&example("broken"), &["--output", "json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = json_of(&out);
    assert_eq!(r["schema_version"], 1);
    let expect = [
        (
            "cloudhsm.hsms.two-az",
            "CloudHsmClusterInvalidConfigurationException",
        ),
        (
            "cloudhsm.security-group.rules",
            "CloudHsmClusterInvalidConfigurationException",
        ),
        (
            "cloudhsm.trust-anchor.signed-cluster-cert",
            "IncorrectTrustAnchorException",
        ),
        ("account.name-unused", "CustomKeyStoreNameInUseException"),
    ];
    for (id, exception) in expect {
        let c = check(&r, id);
        assert_eq!(c["status"], "FAIL", "{id}: {}", c["message"]);
        assert!(
            c["kms_exceptions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e == exception),
            "{id} should map to {exception}"
        );
        assert!(r["verdict"]["kms_exceptions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == exception));
    }
    let c = check(&r, "cloudhsm.subnets.free-addresses");
    assert_eq!(c["status"], "FAIL");
    assert_eq!(
        c["connection_error_codes"][0],
        "INSUFFICIENT_FREE_ADDRESSES_IN_SUBNET"
    );
    let c = check(&r, "cloudhsm.kmsuser.unlocked");
    assert_eq!(c["status"], "FAIL");
    assert_eq!(c["connection_error_codes"][0], "USER_LOCKED_OUT");
    assert_eq!(r["verdict"]["outlook"], "would_fail");
    let summary = &r["summary"];
    let total: u64 = ["pass", "fail", "warn", "error", "skip", "manual"]
        .iter()
        .map(|k| summary[k].as_u64().unwrap())
        .sum();
    assert_eq!(total as usize, r["checks"].as_array().unwrap().len());
    for c in r["checks"].as_array().unwrap() {
        for field in [
            "id",
            "title",
            "status",
            "message",
            "kms_exceptions",
            "connection_error_codes",
            "duration_ms",
        ] {
            assert!(!c[field].is_null(), "{} lacks {field}", c["id"]);
        }
    }
}

#[test]
fn broken_example_human_output() {
    let out = preflight(&example("broken"), &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("[✗] Two ACTIVE HSMs") || text.contains("[✗]"),
        "{text}"
    );
    assert!(text.contains("[✓]"));
    assert!(text.contains("Fix:"));
    let last = text.lines().last().unwrap();
    assert!(
        last.starts_with("CreateCustomKeyStore would fail with: "),
        "{last}"
    );
    assert!(last.contains("IncorrectTrustAnchorException"));
    assert!(!text.contains("\x1b["), "NO_COLOR means no escape codes");
}

#[test]
fn ready_example_passes() {
    let out = preflight(&example("ready"), &["--output", "json"])
        .output()
        .unwrap();
    let r = json_of(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        serde_json::to_string_pretty(&r).unwrap()
    );
    assert_eq!(r["summary"]["fail"], 0);
    assert_eq!(r["summary"]["error"], 0);
    assert_eq!(r["verdict"]["outlook"], "no_failure_found");
    // Without a password the format check is left to a human, never passed.
    assert_eq!(status(&r, "params.password"), "MANUAL");
}

#[test]
fn cli_input_json_gives_the_same_results() {
    let dir = example("ready");
    let a = json_of(&preflight(&dir, &["--output", "json"]).output().unwrap());
    let out = bin()
        .arg("--snapshot")
        .arg(&dir)
        .args([
            "--region",
            "us-east-1",
            "--output",
            "json",
            "preflight",
            "--cli-input-json",
        ])
        .arg(format!("file://{}", dir.join("request.json").display()))
        .arg("--cloudhsm-users")
        .arg(dir.join("cloudhsm-users.json"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let b = json_of(&out);
    let statuses = |r: &Value| -> Vec<(String, String)> {
        r["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["id"].as_str().unwrap().into(),
                    c["status"].as_str().unwrap().into(),
                )
            })
            .collect()
    };
    assert_eq!(statuses(&a), statuses(&b));
}

#[test]
fn missing_snapshot_file_is_could_not_check_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(example("ready")).unwrap() {
        let f = f.unwrap();
        if f.file_name() != "ec2-describe-security-groups.json" {
            std::fs::copy(f.path(), tmp.path().join(f.file_name())).unwrap();
        }
    }
    let out = preflight(tmp.path(), &["--output", "json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "no FAIL but a check could not run"
    );
    let r = json_of(&out);
    let c = check(&r, "cloudhsm.security-group.rules");
    assert_eq!(c["status"], "ERROR");
    assert!(c["message"]
        .as_str()
        .unwrap()
        .contains("ec2-describe-security-groups.json"));
    assert_eq!(r["verdict"]["outlook"], "incomplete");
    // Other checks still give their verdicts.
    assert_eq!(status(&r, "cloudhsm.hsms.two-az"), "PASS");
}

#[test]
fn only_and_skip_select_checks() {
    let out = preflight(
        &example("broken"),
        &["--output", "json", "--only", "cloudhsm.hsms"],
    )
    .output()
    .unwrap();
    let r = json_of(&out);
    let ids: Vec<&str> = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["cloudhsm.hsms.active", "cloudhsm.hsms.two-az"]);
    let out = preflight(
        &example("broken"),
        &["--output", "json", "--skip", "cloudhsm,account"],
    )
    .output()
    .unwrap();
    let r = json_of(&out);
    assert!(r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["id"].as_str().unwrap().starts_with("params.")));
    let out = preflight(&example("broken"), &["--only", "cloudhsm.hsm"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean"));
}

/// Every bad input: exit 2, one line on stderr naming the input, nothing on stdout.
#[test]
fn bad_input_is_one_line_and_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| -> PathBuf {
        let p = tmp.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let garbage = write(
        "garbage.pem",
        b"-----BEGIN CERTIFICATE-----\nnot base64 at all!!\n-----END CERTIFICATE-----\n",
    );
    let empty = write("empty.pem", b"");
    let der = write(
        "ca.der",
        &[
            0x30, 0x82, 0x01, 0x0a, 0x02, 0x82, 0x01, 0x01, 0x00, 0xff, 0xfe,
        ],
    );
    let key = write(
        "key.pem",
        b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n",
    );
    let bad_json = write("request.json", b"{\"CloudHsmClusterId\": ");
    let unknown = write("unknown.json", br#"{"CloudHsmClusterId":"cluster-jxhlf7644ne","TrustAnchorCertificate":"x","Colour":"blue"}"#);
    let bad_users = write("users.json", b"[1,2,3]");
    // 50 certificates in one trust anchor file, and a 10 MB file.
    let one = std::fs::read_to_string(example("ready").join("customerCA.crt")).unwrap();
    let fifty = write("fifty.pem", one.repeat(50).as_bytes());
    let huge = write("huge.pem", &vec![b'A'; 10 * 1024 * 1024]);
    let huge_json = write("huge.json", &vec![b' '; 10 * 1024 * 1024]);
    let snap = tempfile::tempdir().unwrap();
    std::fs::write(
        snap.path().join("cloudhsmv2-describe-clusters.json"),
        b"{\"Clusters\": [",
    )
    .unwrap();
    let ca = example("ready").join("customerCA.crt");
    let ca = ca.to_str().unwrap();

    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "--cluster-id",
                CLUSTER,
                "--trust-anchor",
                fifty.to_str().unwrap(),
            ],
            "fifty.pem",
        ),
        (
            vec![
                "--cluster-id",
                CLUSTER,
                "--trust-anchor",
                huge.to_str().unwrap(),
            ],
            "huge.pem",
        ),
        (
            vec![
                "--cluster-id",
                CLUSTER,
                "--trust-anchor",
                ca,
                "--cloudhsm-users",
                huge_json.to_str().unwrap(),
            ],
            "huge.json",
        ),
        (
            vec![
                "--cluster-id",
                CLUSTER,
                "--trust-anchor",
                garbage.to_str().unwrap(),
            ],
            "garbage.pem",
        ),
        (
            vec![
                "--cluster-id",
                CLUSTER,
                "--trust-anchor",
                empty.to_str().unwrap(),
            ],
            "empty.pem",
        ),
        (
            vec![
                "--cluster-id",
                CLUSTER,
                "--trust-anchor",
                der.to_str().unwrap(),
            ],
            "ca.der",
        ),
        (
            vec![
                "--cluster-id",
                CLUSTER,
                "--trust-anchor",
                key.to_str().unwrap(),
            ],
            "key.pem",
        ),
        (
            vec![
                "--cluster-id",
                CLUSTER,
                "--trust-anchor",
                "/nonexistent/ca.crt",
            ],
            "/nonexistent/ca.crt",
        ),
        (
            vec!["--cluster-id", "cluster-123", "--trust-anchor", ca],
            "cluster-123",
        ),
        (
            vec!["--cluster-id", "hsm-jxhlf7644ne", "--trust-anchor", ca],
            "hsm-jxhlf7644ne",
        ),
        (
            vec![
                "--cluster-id",
                CLUSTER,
                "--trust-anchor",
                ca,
                "--cloudhsm-users",
                bad_users.to_str().unwrap(),
            ],
            "users.json",
        ),
    ]
    .into_iter()
    .map(|(v, n)| (v.into_iter().map(String::from).collect(), n))
    .collect();
    for (args, names) in cases {
        let out = bin()
            .arg("--snapshot")
            .arg(example("ready"))
            .args(["preflight", "cloudhsm"])
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(names), "{args:?}: {err}");
        assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"));
        assert!(out.stdout.is_empty());
    }
    for (doc, name) in [(&bad_json, "request.json"), (&unknown, "Colour")] {
        let out = bin()
            .arg("--snapshot")
            .arg(example("ready"))
            .args(["preflight", "--cli-input-json"])
            .arg(doc)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(name), "{err}");
    }
    let out = bin()
        .arg("--snapshot")
        .arg(snap.path())
        .args([
            "preflight",
            "cloudhsm",
            "--cluster-id",
            CLUSTER,
            "--trust-anchor",
            ca,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("cloudhsmv2-describe-clusters.json"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn password_is_never_a_plain_argument() {
    let out = bin()
        .args([
            "preflight",
            "cloudhsm",
            "--cluster-id",
            CLUSTER,
            "--password",
            "Secret123",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("Secret123"));
}

fn assert_no_secret(secret: &str, haystacks: &[&[u8]]) {
    let b64 = base64_encode(secret.as_bytes());
    let hex: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
    for h in haystacks {
        let s = String::from_utf8_lossy(h);
        for needle in [secret, b64.as_str(), hex.as_str()] {
            assert!(
                !s.contains(needle),
                "secret form {needle:?} found in output"
            );
        }
    }
}

fn base64_encode(bytes: &[u8]) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn password_never_appears_in_any_output() {
    let tmp = tempfile::tempdir().unwrap();
    // A valid one, a too-short one and one with symbols: every branch of the password check.
    for secret in ["Kms0Password9Secret", "Sh0rt", "Has Symbols & Spaces 42!"] {
        let file = tmp.path().join("pw");
        std::fs::write(&file, format!("{secret}\n")).unwrap();
        for output in ["json", "table"] {
            let via_file = preflight(
                &example("broken"),
                &[
                    "--output",
                    output,
                    "--password-file",
                    file.to_str().unwrap(),
                ],
            )
            .output()
            .unwrap();
            let via_env = preflight(&example("broken"), &["--output", output])
                .env("CKS_KEY_STORE_PASSWORD", secret)
                .output()
                .unwrap();
            let via_stdin = preflight(
                &example("broken"),
                &["--output", output, "--password-stdin"],
            )
            .write_stdin(format!("{secret}\n"))
            .output()
            .unwrap();
            for out in [&via_file, &via_env, &via_stdin] {
                assert_eq!(out.status.code(), Some(1));
                assert_no_secret(secret, &[&out.stdout, &out.stderr]);
            }
            // The password was really read: its check ran on it.
            let r = if output == "json" {
                Some(json_of(&via_env))
            } else {
                None
            };
            if let Some(r) = r {
                assert_ne!(status(&r, "params.password"), "MANUAL");
            }
        }
    }
}

#[test]
fn password_in_cli_input_json_is_never_printed() {
    let tmp = tempfile::tempdir().unwrap();
    let secret = "JsonPassw0rdSecret";
    let mut doc: Value = serde_json::from_str(
        &std::fs::read_to_string(example("broken").join("request.json")).unwrap(),
    )
    .unwrap();
    doc["KeyStorePassword"] = Value::String(secret.into());
    let p = tmp.path().join("request.json");
    std::fs::write(&p, doc.to_string()).unwrap();
    for output in ["json", "table"] {
        let out = bin()
            .arg("--snapshot")
            .arg(example("broken"))
            .args(["--output", output, "preflight", "--cli-input-json"])
            .arg(&p)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_no_secret(secret, &[&out.stdout, &out.stderr]);
    }
    // A malformed document holding the password: the error names the problem, not the value.
    std::fs::write(
        &p,
        format!("{{\"KeyStorePassword\": \"{secret}\", \"Bogus\": 1}}"),
    )
    .unwrap();
    let out = bin()
        .args(["preflight", "--cli-input-json"])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_no_secret(secret, &[&out.stdout, &out.stderr]);
}

#[test]
fn checks_lists_the_registry() {
    let out = bin().args(["checks"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    for c in cks_doctor::checks::registry() {
        assert!(text.contains(c.id), "{} missing from `checks`", c.id);
    }
    let out = bin().args(["checks", "--output", "json"]).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v.as_array().unwrap().len(),
        cks_doctor::checks::registry().len()
    );
}

#[test]
fn explain_knows_every_code_and_state() {
    for code in cks_doctor::codes::CODES {
        let out = bin().args(["explain", code.name]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", code.name);
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.starts_with(code.name), "{text}");
        assert!(text.contains("Fix"), "{text}");
    }
    for state in cks_doctor::codes::CONNECTION_STATES {
        let out = bin().args(["explain", state.name]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", state.name);
    }
    let out = bin()
        .args(["explain", "IncorrectTrustAnchorException"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("cloudhsm.trust-anchor.signed-cluster-cert"),
        "{text}"
    );
    let out = bin()
        .args(["explain", "cloudhsm.hsms.two-az"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    // Where AWS's documents disagree, explain says so and names both codes; where a PASS seen
    // from here does not rule a code out, it says that too (issue 11 #5, #6).
    let text = |name: &str| {
        let out = bin().args(["explain", name]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{name}");
        String::from_utf8(out.stdout).unwrap()
    };
    let t = text("xks.vpce.kms-allowed");
    assert!(
        t.contains("XKS_VPC_ENDPOINT_SERVICE_NOT_FOUND or XKS_VPC_ENDPOINT_SERVICE_INVALID_CONFIGURATION: AWS documents disagree"),
        "{t}"
    );
    assert!(
        t.contains("A PASS rules out: XKS_VPC_ENDPOINT_SERVICE_NOT_FOUND"),
        "{t}"
    );
    let t = text("xks.vpce.acceptance");
    assert!(
        t.contains("XksProxyInvalidConfigurationException: AWS documents disagree"),
        "{t}"
    );
    let t = text("cloudhsm.security-group.rules");
    assert!(t.contains("NETWORK_ERRORS: inferred"), "{t}");
    let t = text("xks.latency.budget");
    assert!(
        t.contains(
            "A PASS does not rule out (the check does not see what KMS sees): XKS_PROXY_TIMED_OUT"
        ),
        "{t}"
    );
    let t = text("XKS_PROXY_TIMED_OUT");
    let after = &t[t
        .find("xks.latency.budget")
        .expect("the latency check detects it")..];
    assert!(after.contains("a PASS does not rule it out"), "{t}");
    let t = text("CLUSTER_NOT_FOUND");
    assert!(t.contains("a PASS rules this cause out"), "{t}");
    let out = bin()
        .args(["explain", "IncorrectTrustAnchorExeption"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("did you mean IncorrectTrustAnchorException")
    );
}

/// Offline commands open no network connection: every AWS endpoint points at a local
/// listener that records connections.
#[test]
fn offline_commands_make_no_network_call() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let runs: Vec<Vec<String>> = vec![
        vec!["checks".into()],
        vec!["explain".into(), "SUBNET_NOT_FOUND".into()],
        vec![
            "--snapshot".into(),
            example("broken").display().to_string(),
            "preflight".into(),
            "--cli-input-json".into(),
            example("broken").join("request.json").display().to_string(),
        ],
    ];
    for args in runs {
        let out = bin()
            .env("AWS_ENDPOINT_URL", &url)
            .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", &url)
            .env("AWS_EC2_METADATA_DISABLED", "false")
            .env("HTTPS_PROXY", &url)
            .env("HTTP_PROXY", &url)
            .args(&args)
            .output()
            .unwrap();
        assert!(
            out.status.code().is_some_and(|c| c <= 1),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(listener.accept().is_err(), "{args:?} opened a connection");
    }
}

/// The live path with nothing listening: every fact is "could not check", never a FAIL or PASS
/// of a prerequisite that needs AWS, and the run ends quickly.
#[test]
fn live_run_against_a_closed_port_is_could_not_check() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = example("ready");
    let out = bin()
        .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env(
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        )
        .args([
            "--region",
            "us-east-1",
            "--endpoint-url",
            &format!("http://127.0.0.1:{port}"),
        ])
        .args([
            "--timeout",
            "5",
            "--output",
            "json",
            "preflight",
            "cloudhsm",
            "--cluster-id",
            CLUSTER,
            "--trust-anchor",
        ])
        .arg(dir.join("customerCA.crt"))
        .output()
        .unwrap();
    let r = json_of(&out);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        serde_json::to_string_pretty(&r).unwrap()
    );
    for id in [
        "cloudhsm.cluster.exists",
        "account.store-quota",
        "cloudhsm.cluster.not-in-use",
    ] {
        let c = check(&r, id);
        assert_eq!(c["status"], "ERROR", "{id}");
        assert!(
            c["message"].as_str().unwrap().contains("could not"),
            "{id}: {}",
            c["message"]
        );
    }
    assert_eq!(r["summary"]["fail"], 0);
    // Local-only checks still run.
    assert_eq!(status(&r, "cloudhsm.trust-anchor.valid"), "PASS");
}

#[test]
fn report_file_format_follows_its_extension_and_filters_only_hide_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = example("broken");
    for (name, needle) in [
        ("r.html", "<html"),
        ("r.sarif", "\"version\": \"2.1.0\""),
        ("r.xml", "<testsuites"),
        ("r.csv", "cloudhsm.hsms.two-az"),
        ("r.md", "cloudhsm.hsms.two-az"),
        ("r.json", "\"schema_version\": 1"),
    ] {
        let file = tmp.path().join(name);
        let out = preflight(&dir, &["--report", file.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        // The screen keeps the table.
        assert!(String::from_utf8_lossy(&out.stdout).contains("[✗]"));
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.contains(needle),
            "{name}: {}",
            &text[..text.len().min(300)]
        );
    }
    // --status/--severity hide rows; the summary, verdict and exit code still cover everything.
    let out = preflight(
        &dir,
        &[
            "--output",
            "json",
            "--status",
            "fail",
            "--severity",
            "critical",
        ],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let r = json_of(&out);
    let shown = r["checks"].as_array().unwrap();
    assert!(!shown.is_empty());
    assert!(shown
        .iter()
        .all(|c| c["status"] == "FAIL" && c["severity"] == "critical"));
    assert!(r["summary"]["fail"].as_u64().unwrap() > shown.len() as u64);
}

#[test]
fn iam_policy_covers_every_action_the_checks_name() {
    let out = bin().args(["iam-policy"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let actions: Vec<&str> = v["Statement"][0]["Action"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    for m in cks_doctor::meta::all() {
        for a in &m.iam_actions {
            assert!(actions.contains(&a.as_str()), "{a} of {} missing", m.id);
        }
    }
    assert!(actions.iter().all(|a| a.contains(":Describe")
        || a.contains(":Get")
        || a.contains(":List")
        || a.contains(":Lookup")));
    let out = bin()
        .args(["iam-policy", "--kind", "cloudhsm"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let cloudhsm: Vec<&str> = v["Statement"][0]["Action"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(cloudhsm.contains(&"cloudhsm:DescribeClusters"));
    assert!(!cloudhsm.contains(&"elasticloadbalancing:DescribeLoadBalancers"));
}

/// The organisation caller's policy and the import's are apart from the read-only one: the
/// read-only policy has neither AssumeRole nor a write.
#[test]
fn iam_policy_for_an_organisation_scan_and_a_security_hub_import() {
    let policy = |args: &[&str]| -> Value {
        let out = bin().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let org = policy(&["iam-policy", "--organization", "audit/CksDoctorAudit"]);
    assert_eq!(
        org["Statement"][0]["Action"][0],
        "organizations:ListAccounts"
    );
    assert_eq!(org["Statement"][1]["Action"][0], "sts:AssumeRole");
    assert_eq!(
        org["Statement"][1]["Resource"],
        "arn:aws:iam::*:role/audit/CksDoctorAudit"
    );
    let import = policy(&["iam-policy", "--security-hub-import"]);
    assert_eq!(
        import["Statement"][0]["Action"][0],
        "securityhub:BatchImportFindings"
    );
    let read_only = serde_json::to_string(&policy(&["iam-policy"])).unwrap();
    assert!(!read_only.contains("sts:AssumeRole") && !read_only.contains("BatchImportFindings"));
    let bad = bin()
        .args(["iam-policy", "--organization", "no spaces"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("is not an IAM role name"));
}

#[test]
fn completions_man_page_and_no_progress_in_a_pipe() {
    for shell in ["bash", "zsh", "fish"] {
        let out = bin().args(["completions", shell]).output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("preflight"),
            "{shell}"
        );
    }
    let out = bin().args(["man"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with(".ie"));
    // Standard error is not a terminal here: no progress display, nothing on stderr.
    let out = preflight(&example("broken"), &[]).output().unwrap();
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
