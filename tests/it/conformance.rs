//! `cks-doctor conformance` against the test XKS proxy (`support/xks_proxy.rs`: real TLS, SigV4
//! verified independently, real AES-256-GCM on in-memory keys): a healthy proxy passes every
//! case, each misbehaviour of the proxy fails the case that should catch it, the output formats
//! parse, the secret never appears, and every case goes over one connection.

use crate::support::bin;
use crate::support::xks_proxy::*;
use serde_json::Value;
use std::collections::BTreeMap;

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.stdout, self.stderr))
    }
}

/// `cks-doctor --region R --output FORMAT conformance …` against `proxy`, the secret from a file.
fn conformance(proxy: &TestProxy, format: &str, extra: &[&str]) -> Out {
    let tmp = tempfile::tempdir().unwrap();
    let secret = tmp.path().join("xks.secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    let ca = tmp.path().join("root.pem");
    std::fs::write(&ca, proxy.root_ca_pem()).unwrap();
    let out = bin()
        .args(["--region", REGION, "--timeout", "5", "--output", format])
        .args([
            "conformance",
            "--uri-endpoint",
            ENDPOINT,
            "--uri-path",
            PATH,
        ])
        .args(["--access-key-id", ACCESS_KEY_ID, "--key-id", KEY_AES])
        .arg("--secret-file")
        .arg(&secret)
        .args(["--connect-to", &proxy.connect_to_arg()])
        .arg("--trust-ca")
        .arg(&ca)
        .args(extra)
        .output()
        .unwrap();
    Out {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn run_json(opts: ProxyOptions, extra: &[&str]) -> (Out, Value, TestProxy) {
    let proxy = TestProxy::start_blocking(opts);
    let out = conformance(&proxy, "json", extra);
    let v = out.json();
    (out, v, proxy)
}

/// id → the case's JSON.
fn cases(v: &Value) -> BTreeMap<String, Value> {
    v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["id"].as_str().unwrap().to_string(), c.clone()))
        .collect()
}

fn verdicts(v: &Value) -> BTreeMap<String, String> {
    cases(v)
        .into_iter()
        .map(|(id, c)| (id, c["verdict"].as_str().unwrap().to_string()))
        .collect()
}

/// The ids of the cases with this verdict.
fn with(v: &Value, verdict: &str) -> Vec<String> {
    verdicts(v)
        .into_iter()
        .filter(|(_, x)| x == verdict)
        .map(|(id, _)| id)
        .collect()
}

const USAGE_KEYS: [&str; 6] = [
    "--encrypt-only-key-id",
    KEY_ENCRYPT_ONLY,
    "--decrypt-only-key-id",
    KEY_DECRYPT_ONLY,
    // An RSA key cannot do AES-GCM: the test proxy refuses Encrypt with it with
    // InvalidKeyUsageException, what the test client's "impotent" key must answer.
    "--impotent-key-id",
    KEY_RSA,
];

#[test]
fn a_healthy_proxy_passes_every_case_on_one_connection() {
    let (out, v, proxy) = run_json(ProxyOptions::default(), &[]);
    assert_eq!(with(&v, "fail"), Vec::<String>::new(), "{}", out.stdout);
    assert_eq!(with(&v, "error"), Vec::<String>::new(), "{}", out.stdout);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    // Skipped: only what needs a key or a client certificate that was not given.
    for id in with(&v, "skip") {
        assert!(
            id.starts_with("usage.") || id.starts_with("mtls.") || id == "decrypt.changed-metadata",
            "{id} skipped: {}",
            cases(&v)[&id]["message"]
        );
    }
    let c = cases(&v);
    assert!(c["encrypt.aad-cdiv"]["message"]
        .as_str()
        .unwrap()
        .contains("ciphertextDataIntegrityValue verified"));
    assert!(c["decrypt.largest"]["message"]
        .as_str()
        .unwrap()
        .contains("4300 bytes"));
    // Every case of AWS's test client is covered.
    let mut covered: Vec<u64> = c
        .values()
        .flat_map(|c| c["test_client_cases"].as_array().unwrap().clone())
        .map(|n| n.as_u64().unwrap())
        .collect();
    covered.sort();
    covered.dedup();
    assert_eq!(covered, (1..=49).collect::<Vec<u64>>());

    // One kept-alive connection carried every request, one after the other.
    assert_eq!(proxy.handshakes(), 1);
    assert_eq!(v["connection"]["connections"], 1);
    let seen = proxy.requests();
    assert_eq!(
        v["connection"]["requests"].as_u64().unwrap() as usize,
        seen.len()
    );
    assert!(seen.iter().all(|r| r.connection == 1));
    let s = &v["summary"];
    let timed = c.values().filter(|c| c["request_ms"].is_number()).count();
    assert_eq!(s["latency"]["count"].as_u64().unwrap() as usize, timed);
    assert_eq!(timed, seen.len(), "every request is one timed case");
    let sum = s["latency"]["sum_ms"].as_f64().unwrap();
    assert!(s["wall_ms"].as_f64().unwrap() >= sum, "{s}");
    assert!(s["latency"]["min_ms"].as_f64() <= s["latency"]["median_ms"].as_f64());
    assert!(s["latency"]["median_ms"].as_f64() <= s["latency"]["max_ms"].as_f64());
    assert_eq!(s["total"].as_u64().unwrap() as usize, c.len());
    assert_eq!(
        s["pass"].as_u64().unwrap() + s["skip"].as_u64().unwrap(),
        c.len() as u64
    );

    // Only the key given and the one id that names no key are ever sent; no key is created,
    // changed or deleted (the proxy's API has no such call, and none other is sent).
    for r in &seen {
        assert_eq!(r.method, "POST", "{}", r.path);
        if let Some(rest) = r.path.split("/keys/").nth(1) {
            let key = rest.split('/').next().unwrap();
            assert!(
                key == KEY_AES || key == "cks-doctor-no-such-key",
                "{key} sent in {}",
                r.path
            );
        }
    }
}

#[test]
fn the_usage_keys_refuse_the_other_operation() {
    let (out, v, _proxy) = run_json(ProxyOptions::default(), &USAGE_KEYS);
    let verdicts = verdicts(&v);
    for (id, verdict) in &verdicts {
        if id.starts_with("mtls.") || id == "decrypt.changed-metadata" {
            assert_eq!(verdict, "skip", "{id}");
            continue;
        }
        assert_eq!(verdict, "pass", "{id}: {}", cases(&v)[id]["message"]);
    }
    let c = cases(&v);
    for id in [
        "usage.encrypt-only.decrypt",
        "usage.decrypt-only.encrypt",
        "usage.impotent.encrypt-aad-cdiv",
        // AWS's test client (cases 38, 39): an encrypt-only key refuses an Encrypt that asks for
        // a ciphertextDataIntegrityValue (it cannot verify the Encrypt by decrypting it).
        "usage.encrypt-only.encrypt-aad-cdiv",
        "usage.encrypt-only.encrypt-cdiv",
    ] {
        assert_eq!(c[id]["observed"]["status"], 400, "{id}");
        assert_eq!(
            c[id]["observed"]["error_name"], "InvalidKeyUsageException",
            "{id}"
        );
    }
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[test]
fn ciphertext_metadata_is_bound_into_the_cdiv_and_checked_on_decrypt() {
    let opts = ProxyOptions {
        ciphertext_metadata: Some(b"key_version=1".to_vec()),
        ..Default::default()
    };
    let (out, v, _proxy) = run_json(opts, &[]);
    assert_eq!(with(&v, "fail"), Vec::<String>::new(), "{}", out.stdout);
    let c = cases(&v);
    assert_eq!(c["decrypt.changed-metadata"]["verdict"], "pass");
    assert!(c["encrypt.aad"]["message"]
        .as_str()
        .unwrap()
        .contains("13-byte ciphertextMetadata"));
    assert_eq!(out.code, 0);
}

/// Runs with one fault and returns the failing case ids.
fn failing_with(faults: KeyFaults) -> (Vec<String>, Value, Out) {
    let (out, v, _proxy) = run_json(ProxyOptions::key_faults(faults), &[]);
    assert_eq!(with(&v, "error"), Vec::<String>::new(), "{}", out.stdout);
    (with(&v, "fail"), v, out)
}

#[test]
fn a_wrong_cdiv_fails_the_cdiv_cases() {
    let (failed, v, out) = failing_with(KeyFaults {
        wrong_cdiv: true,
        ..Default::default()
    });
    assert_eq!(
        failed,
        ["encrypt.aad-cdiv", "encrypt.cdiv-no-aad", "encrypt.largest"],
        "{}",
        out.stdout
    );
    assert_eq!(out.code, 1);
    let c = &cases(&v)["encrypt.aad-cdiv"];
    assert!(c["message"]
        .as_str()
        .unwrap()
        .contains("is not Base64(SHA-256(AAD || ciphertextMetadata || IV || ciphertext || tag))"));
    assert_eq!(c["kms_error_mapping"], "inferred");
    assert!(c["kms_error"]
        .as_str()
        .unwrap()
        .contains("KMSInvalidStateException"));
    // Its decrypt is skipped, naming the case it needs.
    assert_eq!(cases(&v)["decrypt.aad-cdiv"]["verdict"], "skip");
}

#[test]
fn a_proxy_that_accepts_a_changed_aad_fails_the_aad_cases() {
    let (failed, v, out) = failing_with(KeyFaults {
        accept_changed_aad: true,
        ..Default::default()
    });
    assert_eq!(
        failed,
        ["decrypt.missing-aad", "decrypt.other-aad"],
        "{}",
        out.stdout
    );
    let c = &cases(&v)["decrypt.other-aad"];
    assert!(c["message"].as_str().unwrap().starts_with("accepted (200)"));
    assert_eq!(c["expected"]["error_name"], "InvalidCiphertextException");
    assert_eq!(c["kms_error_mapping"], "none");
}

#[test]
fn a_slow_decrypt_fails_every_decrypt_as_a_kms_time_out() {
    let (failed, v, out) = failing_with(KeyFaults {
        slow_decrypt_ms: 300,
        ..Default::default()
    });
    assert_eq!(
        failed,
        [
            "decrypt.aad",
            "decrypt.aad-cdiv",
            "decrypt.cdiv-no-aad",
            "decrypt.largest",
            "decrypt.no-aad",
            "forward.decrypt.unknown-operation",
        ],
        "{}",
        out.stdout
    );
    let c = &cases(&v)["decrypt.aad"];
    assert!(c["request_ms"].as_f64().unwrap() > 250.0);
    assert!(c["message"]
        .as_str()
        .unwrap()
        .contains("KMS would time out"));
    assert!(c["kms_error"]
        .as_str()
        .unwrap()
        .starts_with("KMSInvalidStateException"));
    assert_eq!(c["kms_error_mapping"], "inferred");
    assert!(v["summary"]["latency"]["over_budget"].as_u64().unwrap() >= 6);
    assert!(v["summary"]["latency"]["max_ms"].as_f64().unwrap() > 250.0);
}

#[test]
fn rejecting_an_unknown_kms_operation_fails_the_forward_cases() {
    let (failed, v, out) = failing_with(KeyFaults {
        reject_unknown_operation: true,
        ..Default::default()
    });
    assert_eq!(
        failed,
        [
            "forward.decrypt.unknown-operation",
            "forward.encrypt.unknown-operation",
            "forward.metadata.unknown-operation",
        ],
        "{}",
        out.stdout
    );
    let c = &cases(&v)["forward.encrypt.unknown-operation"];
    assert_eq!(c["observed"]["status"], 400);
    assert_eq!(c["observed"]["error_name"], "ValidationException");
}

#[test]
fn wrong_key_metadata_fails_the_metadata_cases_naming_the_fields() {
    let (failed, v, out) = failing_with(KeyFaults {
        metadata_override: Some(
            r#"{"keySpec":"RSA_2048","keyUsage":["ENCRYPT"],"keyStatus":"DISABLED"}"#.into(),
        ),
        ..Default::default()
    });
    assert_eq!(
        failed,
        [
            "forward.metadata.unknown-operation",
            "metadata.create-key",
            "metadata.describe-key",
        ],
        "{}",
        out.stdout
    );
    let c = &cases(&v)["metadata.create-key"];
    let m = c["message"].as_str().unwrap();
    for field in ["keySpec", "DECRYPT", "keyStatus"] {
        assert!(m.contains(field), "{m}");
    }
    assert!(c["kms_error"]
        .as_str()
        .unwrap()
        .contains("XksKeyInvalidConfigurationException"));
    assert_eq!(c["kms_error_mapping"], "documented");
}

#[test]
fn a_proxy_that_accepts_unsigned_requests_fails_every_authentication_case() {
    let (out, v, _proxy) = run_json(ProxyOptions::mode(Mode::AcceptUnsigned), &[]);
    let failed = with(&v, "fail");
    for id in [
        "auth.health.unsigned",
        "auth.encrypt.unsigned",
        "auth.health.wrong-secret",
        "auth.encrypt.wrong-access-key-id",
        "auth.health.clock-ahead",
    ] {
        assert!(failed.contains(&id.to_string()), "{id}: {}", out.stdout);
    }
    assert!(
        failed.iter().all(|id| id.starts_with("auth.")),
        "{failed:?}"
    );
    assert_eq!(out.code, 1);
}

#[test]
fn an_unreachable_proxy_is_could_not_run() {
    // A port nothing listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let tmp = tempfile::tempdir().unwrap();
    let secret = tmp.path().join("s");
    std::fs::write(&secret, SECRET).unwrap();
    let out = bin()
        .args(["--region", REGION, "--timeout", "2", "--output", "json"])
        .args([
            "conformance",
            "--uri-endpoint",
            ENDPOINT,
            "--uri-path",
            PATH,
        ])
        .args(["--access-key-id", ACCESS_KEY_ID, "--key-id", KEY_AES])
        .arg("--secret-file")
        .arg(&secret)
        .args(["--connect-to", &format!("{HOST}:443:127.0.0.1:{port}")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["verdict"] == "error"));
    assert!(v["connection"]["error"].is_string());
}

#[test]
fn table_and_junit_outputs() {
    let proxy = TestProxy::start_blocking(ProxyOptions::key_faults(KeyFaults {
        accept_changed_aad: true,
        ..Default::default()
    }));
    let table = conformance(&proxy, "table", &[]);
    assert_eq!(table.code, 1);
    let t = &table.stdout;
    assert!(t.contains("cks-doctor conformance of the XKS proxy https://myproxy.xks.example.com/example-prefix/kms/xks/v1"), "{t}");
    assert!(t.contains("✓") && t.contains("✗"), "{t}");
    assert!(t.contains("decrypt.other-aad"), "{t}");
    assert!(t.contains("400 InvalidCiphertextException"), "{t}");
    assert!(t.contains("The proxy does not conform: 2 of"), "{t}");
    assert!(t.contains("--connect-to: the proxy was reached at"), "{t}");
    assert!(t.contains("against KMS's 250 ms budget"), "{t}");

    let junit = conformance(&proxy, "junit", &[]);
    assert_eq!(junit.code, 1);
    let parsed = quick_junit::Report::deserialize_from_str(&junit.stdout)
        .unwrap_or_else(|e| panic!("JUnit XML does not parse: {e}\n{}", junit.stdout));
    let json = conformance(&proxy, "json", &[]).json();
    let s = &json["summary"];
    assert_eq!(parsed.test_suites.len(), 1);
    let suite = &parsed.test_suites[0];
    assert_eq!(suite.tests as u64, s["total"].as_u64().unwrap());
    assert_eq!(suite.failures as u64, s["fail"].as_u64().unwrap());
    assert_eq!(suite.errors as u64, s["error"].as_u64().unwrap());
    assert_eq!(suite.skipped as u64, s["skip"].as_u64().unwrap());
    assert_eq!(suite.failures, 2);
    let failed: Vec<&str> = suite
        .test_cases
        .iter()
        .filter(|t| matches!(t.status, quick_junit::TestCaseStatus::NonSuccess { .. }))
        .map(|t| t.name.as_str())
        .collect();
    assert!(
        failed.iter().any(|n| n.starts_with("decrypt.other-aad:")),
        "{failed:?}"
    );

    // The JSON's stable shape.
    for k in [
        "schema_version",
        "target",
        "connection",
        "cases",
        "summary",
        "verdict",
    ] {
        assert!(!json[k].is_null(), "{k}");
    }
    let c = &json["cases"][0];
    for k in [
        "id",
        "title",
        "operation",
        "expected",
        "observed",
        "request_ms",
        "verdict",
        "kms_error",
        "kms_error_mapping",
        "kms_error_note",
    ] {
        assert!(c.get(k).is_some(), "{k} missing: {c}");
    }
}

#[test]
fn the_secret_never_appears_in_any_output() {
    let proxy = TestProxy::start_blocking(ProxyOptions::key_faults(KeyFaults {
        wrong_cdiv: true,
        ..Default::default()
    }));
    let hex: String = SECRET.bytes().map(|b| format!("{b:02x}")).collect();
    let b64 = base64_encode(SECRET.as_bytes());
    for format in ["table", "json", "junit"] {
        let out = conformance(&proxy, format, &["-vv"]);
        for text in [&out.stdout, &out.stderr] {
            for form in [SECRET, &hex, &b64[..b64.len() - 4]] {
                assert!(
                    !text.contains(form),
                    "{format}: a form of the secret appears"
                );
            }
        }
    }
}

#[test]
fn a_missing_key_id_is_a_one_line_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let secret = tmp.path().join("s");
    std::fs::write(&secret, SECRET).unwrap();
    let out = bin()
        .args([
            "--region",
            REGION,
            "conformance",
            "--uri-endpoint",
            ENDPOINT,
        ])
        .args(["--uri-path", PATH, "--access-key-id", ACCESS_KEY_ID])
        .arg("--secret-file")
        .arg(&secret)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("--key-id"), "{err}");
    assert!(out.stdout.is_empty());

    // Without a secret, or a Region, or with a bad key id: one line too.
    for (args, with_secret) in [
        (
            vec!["--region", REGION, "conformance", "--key-id", KEY_AES],
            false,
        ),
        (vec!["conformance", "--key-id", KEY_AES], true),
        (
            vec!["--region", REGION, "conformance", "--key-id", "a/b"],
            true,
        ),
    ] {
        let mut cmd = bin();
        cmd.args(&args)
            .args(["--uri-endpoint", ENDPOINT, "--uri-path", PATH])
            .args(["--access-key-id", ACCESS_KEY_ID]);
        if with_secret {
            cmd.env("CKS_XKS_SECRET_ACCESS_KEY", SECRET);
        }
        let out = cmd.output().unwrap();
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(!err.contains(SECRET));
    }
}

#[test]
fn help_says_what_it_touches() {
    let out = bin().args(["conformance", "--help"]).output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    let flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
    for s in [
        "only ever uses the keys you name",
        "never creates, changes, disables or deletes a key",
        "test data it generates",
        "only what the proxy sees",
    ] {
        assert!(flat.contains(s), "--help lacks {s:?}:\n{help}");
    }
}

#[test]
fn docs_list_every_case() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/conformance.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let (begin, end) = ("<!-- cases:begin -->\n", "<!-- cases:end -->");
    let start = text
        .find(begin)
        .expect("docs/conformance.md: no cases:begin marker")
        + begin.len();
    let stop = text
        .find(end)
        .expect("docs/conformance.md: no cases:end marker");
    let table = cks_doctor::xks::conformance::cases_markdown();
    if std::env::var("CKS_BLESS").is_ok_and(|v| v == "1") {
        let new = format!("{}{table}{}", &text[..start], &text[stop..]);
        std::fs::write(&path, new).unwrap();
        return;
    }
    assert_eq!(
        &text[start..stop],
        table,
        "docs/conformance.md is stale: run `CKS_BLESS=1 cargo test --test it conformance::` to regenerate it"
    );
}
