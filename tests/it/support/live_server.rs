//! Shared by the live test modules (`tests/it/live.rs`, `tests/it/live_vpce.rs`,
//! `tests/it/live_diagnose.rs`, `tests/it/live_faults.rs`): the local AWS
//! endpoint `tests/live/server.py` as a child process (moto extended, with a control API under
//! `/_cks/`), and the built binary run against it in an environment that can reach no real AWS
//! configuration or credentials, its JSON report checked for consistency.
//!
//! Include it with `#[path = "support/live_server.rs"] mod live_server;`.

// ------------------------------------------------------------------------------------------------
// scenarios on one shared server

/// A named scenario: seeds the server, runs the binary, asserts.
pub type Scenario = (&'static str, fn(&Server));

/// The server a test binary's scenarios share, and the scenarios that already ran (and passed).
pub struct Shared {
    pub server: Server,
    pub done: BTreeSet<&'static str>,
}

/// One server for a test binary, started on first use (its log in `tmp(log)`); scenarios run
/// on it one at a time, each once per process, so that a coverage test can reuse the scenarios
/// already run.
pub struct Scenarios {
    log: &'static str,
    shared: OnceLock<Mutex<Shared>>,
}

impl Scenarios {
    pub const fn new(log: &'static str) -> Scenarios {
        Scenarios {
            log,
            shared: OnceLock::new(),
        }
    }

    /// The server, alone (other scenarios wait).
    pub fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared
            .get_or_init(|| {
                Mutex::new(Shared {
                    server: Server::start(self.log, &[]),
                    done: BTreeSet::new(),
                })
            })
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs the scenario `name` of `list` unless it already ran in this process, timed.
    pub fn run(&self, list: &[Scenario], name: &str) {
        let (name, f) = list
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("no scenario {name}"));
        let mut s = self.lock();
        if s.done.contains(name) {
            return;
        }
        let start = Instant::now();
        f(&s.server);
        eprintln!("scenario {name}: {:.1}s", start.elapsed().as_secs_f64());
        s.done.insert(name);
    }
}

use assert_cmd::Command;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A file in the test binaries' scratch directory (logs, generated inputs).
pub fn tmp(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name)
}

// ------------------------------------------------------------------------------------------------
// the server

/// `tests/live/server.py` as a child process: started with a free port, killed and waited for on
/// drop. It also exits by itself when its stdin closes (this process ending).
pub struct Server {
    pub child: Child,
    /// Held open for the server's lifetime: closing it stops the server.
    pub stdin: Option<ChildStdin>,
    pub port: u16,
    pub log: PathBuf,
}

impl Server {
    pub fn start(log_name: &str, extra: &[&str]) -> Server {
        let python = root().join(".venv/bin/python");
        if !python.exists() {
            panic!(
                "the live tests need the project's Python environment {}: run scripts/setup-venv.sh (scripts/test.sh does it)",
                python.display()
            );
        }
        let log = tmp(log_name);
        let log_file =
            std::fs::File::create(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        let mut child = std::process::Command::new(&python)
            .arg(root().join("tests/live/server.py"))
            .arg("--verbose")
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {}: {e}", python.display()));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        // The port line, with a deadline: a server that never gets ready must not hang the tests.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(90)).unwrap_or_default();
        let port = match line.trim().parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "tests/live/server.py did not print its port (got {line:?}); its log {}:\n{}",
                    log.display(),
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
        };
        Server {
            child,
            stdin,
            port,
            log,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// One HTTP/1.1 request to the server (no HTTP client crate needed): (status, body).
    pub fn http(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, String) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))
            .unwrap_or_else(|e| panic!("cannot reach the live server on port {}: {e}", self.port));
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.port,
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(body);
        s.write_all(req.as_bytes()).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let raw = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw.as_str(), ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP response: {raw:?}"));
        (status, body.to_string())
    }

    /// A control call (`/_cks/...`): the JSON answer, or a panic with the server's reason.
    pub fn control(&self, method: &str, what: &str, body: Option<&Value>) -> Value {
        let text = body.map(|b| b.to_string()).unwrap_or_default();
        let (status, answer) = self.http(
            method,
            &format!("/_cks/{what}"),
            &[("Content-Type", "application/json")],
            &text,
        );
        let value: Value = serde_json::from_str(&answer)
            .unwrap_or_else(|e| panic!("/_cks/{what}: {status} not JSON ({e}): {answer}"));
        assert_eq!(
            status,
            200,
            "/_cks/{what} failed: {value:#} (server log {})",
            self.log.display()
        );
        value
    }

    /// Resets the server and builds the scenario: answers the ids it made.
    pub fn seed(&self, scenario: &Value) -> Seeded {
        Seeded(self.control("POST", "seed", Some(scenario)))
    }

    pub fn faults(&self, faults: Value) {
        self.control("POST", "faults", Some(&faults));
    }

    pub fn calls(&self) -> BTreeMap<String, u64> {
        serde_json::from_value(self.control("GET", "calls", None)).unwrap()
    }

    /// Calls per action signed for one Region (the server's state is per Region).
    pub fn calls_in(&self, region: &str) -> BTreeMap<String, u64> {
        serde_json::from_value(self.control("GET", &format!("calls?region={region}"), None))
            .unwrap()
    }

    pub fn requests(&self, action: &str) -> Vec<Value> {
        self.control("GET", "requests", None)
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["action"] == action)
            .map(|r| r["params"].clone())
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a seed made: refs → the ids moto gave the EC2 resources.
pub struct Seeded(pub Value);

impl Seeded {
    pub fn id(&self, r: &str) -> String {
        self.0["refs"][r]
            .as_str()
            .unwrap_or_else(|| panic!("the seed made no {r}: {:#}", self.0))
            .to_string()
    }
}

// ------------------------------------------------------------------------------------------------
// running the binary

pub struct Run {
    pub report: Value,
    pub code: i32,
    pub elapsed: Duration,
    pub args: String,
    pub stderr: String,
}

impl Run {
    pub fn checks(&self) -> &Vec<Value> {
        self.report["checks"].as_array().unwrap()
    }

    pub fn check(&self, id: &str) -> &Value {
        self.checks()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap_or_else(|| panic!("no result for {id} ({})", self.args))
    }

    pub fn message(&self, id: &str) -> &str {
        self.check(id)["message"].as_str().unwrap()
    }

    pub fn evidence(&self, id: &str) -> String {
        self.check(id)["evidence"]
            .as_array()
            .map(|v| {
                v.iter()
                    .map(|e| e.as_str().unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default()
    }

    /// The check has this status (with its message and evidence on failure).
    pub fn expect(&self, id: &str, status: &str) -> &Value {
        let c = self.check(id);
        assert_eq!(
            c["status"], status,
            "{id}: expected {status}, got {} ({})\nmessage: {}\nevidence: {}",
            c["status"], self.args, c["message"], c["evidence"]
        );
        c
    }

    /// The check FAILs predicting this exception and/or connection error code, and the verdict
    /// names them.
    pub fn expect_fail(&self, id: &str, exception: Option<&str>, code: Option<&str>) -> &Value {
        let c = self.expect(id, "FAIL");
        if let Some(e) = exception {
            assert!(
                c["kms_exceptions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|x| x == e),
                "{id} should predict {e}: {c:#}"
            );
            assert!(
                self.report["verdict"]["kms_exceptions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|x| x == e),
                "the verdict should name {e}: {:#}",
                self.report["verdict"]
            );
        }
        if let Some(code) = code {
            assert!(
                c["connection_error_codes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|x| x == code),
                "{id} should predict {code}: {c:#}"
            );
            assert!(
                self.report["verdict"]["connection_error_codes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|x| x == code),
                "the verdict should name {code}: {:#}",
                self.report["verdict"]
            );
        }
        c
    }

    pub fn expect_code(&self, code: i32) {
        assert_eq!(
            self.code,
            code,
            "exit code ({}): {}",
            self.args,
            serde_json::to_string_pretty(&self.summary_lines()).unwrap()
        );
    }

    pub fn summary_lines(&self) -> Vec<String> {
        self.checks()
            .iter()
            .map(|c| {
                format!(
                    "{} {}: {}",
                    c["status"].as_str().unwrap_or("?"),
                    c["id"].as_str().unwrap_or("?"),
                    c["message"].as_str().unwrap_or("")
                )
            })
            .collect()
    }

    /// The check has exactly this status, these predicted exceptions and these connection
    /// error codes (in the report's order).
    #[track_caller]
    pub fn expect_exact(
        &self,
        id: &str,
        status: &str,
        exceptions: &[&str],
        codes: &[&str],
    ) -> &Value {
        let c = self.expect(id, status);
        let names = |k: &str| -> Vec<String> {
            c[k].as_array()
                .unwrap_or_else(|| panic!("{id}: no {k} array: {c:#}"))
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(
            names("kms_exceptions"),
            exceptions,
            "{id} kms_exceptions ({}): {}",
            self.args,
            c["message"]
        );
        assert_eq!(
            names("connection_error_codes"),
            codes,
            "{id} connection_error_codes ({}): {}",
            self.args,
            c["message"]
        );
        c
    }
}

/// Environment variables that could send the binary to real AWS or change its behaviour.
const SCRUBBED_ENV: &[&str] = &[
    "AWS_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_KMS",
    "AWS_ENDPOINT_URL_EC2",
    "AWS_ENDPOINT_URL_CLOUDHSM_V2",
    "AWS_ENDPOINT_URL_STS",
    "AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2",
    "AWS_CA_BUNDLE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "CKS_KEY_STORE_PASSWORD",
    "CKS_XKS_SECRET_ACCESS_KEY",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
];

/// What the binary printed, as it is.
pub struct RawRun {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    pub args: String,
}

/// `cks-doctor ARGS` with dummy credentials and no AWS configuration, whatever its output
/// format (`scan`'s JSON, JUnit, CSV...). `server_log` is named when the binary does not exit by
/// itself within 60 s.
pub fn run_cks_doctor_raw(args: &[String], server_log: &Path) -> RawRun {
    let mut cmd = cks_doctor_command();
    cmd.args(args).timeout(Duration::from_secs(60));
    let start = Instant::now();
    let out = cmd.output().unwrap();
    let elapsed = start.elapsed();
    let shown = format!("cks-doctor {}", args.join(" "));
    let code = out.status.code().unwrap_or_else(|| {
        panic!(
            "{shown} did not exit by itself within 60s ({:?}); server log {}",
            out.status,
            server_log.display()
        )
    });
    RawRun {
        code,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed,
        args: shown,
    }
}

/// The binary in an environment that can reach no real AWS configuration or credentials.
pub fn cks_doctor_command() -> Command {
    let mut cmd = Command::cargo_bin("cks-doctor").unwrap();
    for var in SCRUBBED_ENV {
        cmd.env_remove(var);
    }
    cmd.env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
        .env(
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent/cks-doctor-live-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/cks-doctor-live-credentials",
        )
        .env("NO_PROXY", "127.0.0.1")
        .env("NO_COLOR", "1");
    cmd
}

/// `cks-doctor ARGS` with dummy credentials and no AWS configuration: the report, checked for
/// consistency (the summary counts the checks, the exit code follows the verdict). `server_log`
/// is named when the binary does not exit by itself within 60 s.
pub fn run_cks_doctor(args: &[String], server_log: &Path) -> Run {
    let mut cmd = cks_doctor_command();
    cmd.args(args).timeout(Duration::from_secs(60));
    let start = Instant::now();
    let out = cmd.output().unwrap();
    let elapsed = start.elapsed();
    let shown = format!("cks-doctor {}", args.join(" "));
    let code = out.status.code().unwrap_or_else(|| {
        panic!(
            "{shown} did not exit by itself within 60s ({:?}); server log {}",
            out.status,
            server_log.display()
        )
    });
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{shown}: stdout is not JSON ({e}), exit {code}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    // Whatever AWS answered, the binary never panics (a panicking check is reported as ERROR,
    // and says so in the report, not on stderr).
    assert!(
        !stderr.contains("panicked") && !stderr.contains("cks-doctor: internal error"),
        "{shown} panicked:\n{stderr}"
    );
    let run = Run {
        report,
        code,
        elapsed,
        args: shown,
        stderr,
    };
    // The report is consistent with itself: the summary counts the checks, the exit code
    // follows the verdict.
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for c in run.checks() {
        *counts
            .entry(c["status"].as_str().unwrap().to_lowercase())
            .or_default() += 1;
    }
    for k in ["pass", "fail", "warn", "error", "skip", "manual"] {
        assert_eq!(
            run.report["summary"][k].as_u64().unwrap(),
            counts.get(k).copied().unwrap_or(0),
            "summary.{k}"
        );
    }
    let outlook = run.report["verdict"]["outlook"]
        .as_str()
        .unwrap()
        .to_string();
    // A diagnosed store whose ConnectionErrorCode no check confirms is never "no failure found".
    let d = &run.report["diagnosis"];
    let unconfirmed_code = d["connection_error_code"].is_string()
        && d["confirmed_by"].as_array().is_some_and(|c| c.is_empty());
    let expected = match (
        counts.contains_key("fail"),
        counts.contains_key("error") || unconfirmed_code,
    ) {
        (true, _) => ("would_fail", 1),
        (false, true) => ("incomplete", 3),
        (false, false) => ("no_failure_found", 0),
    };
    assert_eq!(
        (outlook.as_str(), run.code),
        expected,
        "verdict and exit code ({})",
        run.args
    );
    run
}

// ------------------------------------------------------------------------------------------------
// small helpers of the live test modules

/// Owned arguments from string literals.
pub fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// A security group rule: TCP 2223-2225 from (or to) the group itself, as CloudHSM makes it.
pub fn self_rule() -> serde_json::Value {
    serde_json::json!({"protocol": "tcp", "from": 2223, "to": 2225, "peer": "self"})
}

/// The EC2 section of a seed for one CloudHSM cluster: a VPC, subnets `a` and `b` in us-east-1a
/// and us-east-1b, and the cluster's security group `sg` (with CloudHSM's default self rules on
/// TCP 2223-2225 when `rules`, else none).
pub fn cloudhsm_ec2(cluster: &str, rules: bool) -> serde_json::Value {
    let rule = if rules {
        serde_json::json!([self_rule()])
    } else {
        serde_json::json!([])
    };
    serde_json::json!({
        "vpcs": [{"ref": "vpc", "cidr": "10.0.0.0/16"}],
        "subnets": [
            {"ref": "a", "vpc": "vpc", "cidr": "10.0.0.0/24", "az": "us-east-1a"},
            {"ref": "b", "vpc": "vpc", "cidr": "10.0.1.0/24", "az": "us-east-1b"},
        ],
        "security_groups": [{
            "ref": "sg", "vpc": "vpc",
            "name": format!("cloudhsm-{cluster}-sg"),
            "description": format!("Security group for CloudHSM cluster {cluster}"),
            "ingress": rule.clone(),
            "egress": rule,
        }],
    })
}

/// `cks-doctor --region REGION --endpoint-url URL snapshot xks EXTRA... --out tmp(name)`: the
/// directory, recorded (the run must succeed), and what the command printed.
pub fn record_xks_snapshot(
    srv: &Server,
    region: &str,
    name: &str,
    extra: &[&str],
) -> (PathBuf, String) {
    let dir = tmp(name);
    let _ = std::fs::remove_dir_all(&dir);
    let out = cks_doctor_command()
        .args([
            "--region",
            region,
            "--endpoint-url",
            &srv.url(),
            "snapshot",
            "xks",
        ])
        .args(extra)
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (dir, String::from_utf8_lossy(&out.stdout).into_owned())
}
