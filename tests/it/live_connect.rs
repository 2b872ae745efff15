//! `cks-doctor connect STORE --wait` end to end: the built binary's real AWS SDK clients against
//! `tests/live/server.py`, which runs KMS's connection state machine on its seeded stores
//! (ConnectCustomKeyStore: DISCONNECTED → CONNECTING → the seeded outcome after the seeded
//! delay; CustomKeyStoreInvalidStateException on FAILED or DISCONNECTING; DisconnectCustomKeyStore
//! → DISCONNECTED, or DISCONNECTING for a while) and, for an external key store, the test XKS
//! proxy reached with `--connect-to`.
//!
//! Covered: CONNECTED; FAILED with three different ConnectionErrorCodes, each diagnosed at once;
//! a FAILED store disconnected first with --yes, refused without it when standard input is not
//! a terminal; a connection already in progress followed without any call; --dry-run changing
//! nothing; --max-wait (exit 3, the store left CONNECTING); Ctrl-C (SIGINT to the child: exit 3,
//! "nothing was undone"); a FAIL in the checks stopping it before Connect unless --force; an
//! AccessDenied ConnectCustomKeyStore (exit 3, naming the permission).
//!
//! One server serves the module; scenarios run one at a time and each starts from a fresh seed.
//! Needs the project's Python environment: `scripts/setup-venv.sh` (`scripts/test.sh` runs it).

use crate::support::live_server;
use crate::support::live_server::{cloudhsm_ec2, strings};
use crate::support::xks_proxy;

use live_server::{run_cks_doctor_raw, tmp, RawRun, Scenario, Scenarios, Server};
use serde_json::{json, Value};
use std::process::Stdio;
use std::time::{Duration, Instant};
use xks_proxy::{ProxyOptions, TestProxy};

const REGION: &str = "us-east-1";
const LOG: &str = "live-connect-server.log";
const CLUSTER: &str = "cluster-jxhlf7644ne";
const STORE: &str = "cks-0a1b2c3d4e5f60789";
const XKS_STORE: &str = "cks-0b7c1a2d3e4f56789";

static SERVER: Scenarios = Scenarios::new(LOG);

fn run_named(name: &str) {
    SERVER.run(SCENARIOS, name);
}

/// An account with a healthy cluster and the CloudHSM store STORE on it in `state`, answering
/// ConnectCustomKeyStore as `connect` says (see the server's `StoreLifecycle`).
fn account(state: &str, error_code: Option<&str>, connect: Value) -> Value {
    let mut store = json!({"id": STORE, "name": "ExampleKeyStore", "cluster": CLUSTER,
                           "state": state, "connect": connect});
    if let Some(c) = error_code {
        store["error_code"] = json!(c);
    }
    json!({
        "region": REGION,
        "ec2": cloudhsm_ec2(CLUSTER, true),
        "clusters": [{
            "id": CLUSTER, "state": "ACTIVE", "hsm_type": "hsm2m.medium", "mode": "FIPS",
            "vpc": "vpc", "subnets": {"us-east-1a": "a", "us-east-1b": "b"},
            "security_group": "sg",
            "hsms": [{"az": "us-east-1a", "state": "ACTIVE"}, {"az": "us-east-1b", "state": "ACTIVE"}],
            "certificate_file": "rsa2048-pkcs1-sha256-cluster.crt",
        }],
        "key_stores": [store],
    })
}

fn base(srv: &Server, output: &str) -> Vec<String> {
    strings(&[
        "--region",
        REGION,
        "--endpoint-url",
        &srv.url(),
        "--output",
        output,
        "--timeout",
        "10",
    ])
}

/// `cks-doctor ... --output json connect ARGS`: the raw run and its JSON document.
fn connect_json(srv: &Server, args: &[&str]) -> (RawRun, Value) {
    let mut all = base(srv, "json");
    all.push("connect".into());
    all.extend(strings(args));
    let run = run_cks_doctor_raw(&all, &tmp(LOG));
    no_panic(&run);
    let doc: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| {
        panic!(
            "{}: stdout is not JSON ({e}), exit {}\nstdout: {}\nstderr: {}",
            run.args, run.code, run.stdout, run.stderr
        )
    });
    assert_eq!(doc["command"], "connect", "{doc:#}");
    (run, doc)
}

fn connect_table(srv: &Server, args: &[&str]) -> RawRun {
    let mut all = base(srv, "table");
    all.push("connect".into());
    all.extend(strings(args));
    let run = run_cks_doctor_raw(&all, &tmp(LOG));
    no_panic(&run);
    run
}

fn no_panic(run: &RawRun) {
    assert!(
        !run.stderr.contains("panicked") && !run.stderr.contains("internal error"),
        "{} panicked:\n{}",
        run.args,
        run.stderr
    );
}

#[track_caller]
fn expect_code(run: &RawRun, code: i32) {
    assert_eq!(
        run.code, code,
        "exit code of {}\nstdout: {}\nstderr: {}",
        run.args, run.stdout, run.stderr
    );
}

fn calls(srv: &Server, action: &str) -> u64 {
    srv.calls().get(action).copied().unwrap_or(0)
}

/// The store's state as the server holds it now.
fn server_state(srv: &Server, id: &str) -> (String, Option<String>) {
    let state = srv.control("GET", "state", None);
    let store = state["key_stores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["data"])
        .find(|d| d["CustomKeyStoreId"] == id)
        .unwrap_or_else(|| panic!("no {id} in {state:#}"))
        .clone();
    (
        store["ConnectionState"].as_str().unwrap().to_string(),
        store["ConnectionErrorCode"].as_str().map(str::to_string),
    )
}

fn actions(doc: &Value) -> Vec<String> {
    doc["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            format!(
                "{} {}: {}",
                a["action"].as_str().unwrap(),
                a["custom_key_store_id"].as_str().unwrap(),
                a["result"].as_str().unwrap()
            )
        })
        .collect()
}

/// The order of the changing calls the server saw.
fn changes_seen(srv: &Server) -> Vec<String> {
    srv.control("GET", "requests", None)
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["action"].as_str())
        .filter(|a| ["kms:ConnectCustomKeyStore", "kms:DisconnectCustomKeyStore"].contains(a))
        .map(str::to_string)
        .collect()
}

// ------------------------------------------------------------------------------------------------
// scenarios

#[test]
fn live_connect_follows_the_connection_to_connected() {
    run_named("connected");
}

fn connected(srv: &Server) {
    srv.seed(&account(
        "DISCONNECTED",
        None,
        json!({"delay_ms": 400, "outcome": "CONNECTED"}),
    ));
    let (run, doc) = connect_json(srv, &[STORE, "--wait", "--poll-interval", "100ms"]);
    expect_code(&run, 0);
    assert_eq!(doc["outcome"], "connected", "{doc:#}");
    assert_eq!(doc["initial_state"], "DISCONNECTED");
    assert_eq!(doc["final_state"], "CONNECTED");
    assert_eq!(doc["connection_error_code"], Value::Null);
    assert_eq!(
        actions(&doc),
        [format!("ConnectCustomKeyStore {STORE}: accepted")]
    );
    // The checks ran first and found nothing that fails.
    assert_eq!(doc["checks"]["summary"]["fail"], 0, "{doc:#}");
    assert!(calls(srv, "cloudhsm:DescribeClusters") >= 1);
    let elapsed = doc["elapsed_seconds"].as_f64().unwrap();
    assert!(elapsed >= 0.4, "{elapsed}");
    // A CloudHSM store's default bound.
    assert_eq!(doc["max_wait_seconds"], 1200.0);
    let polls = doc["polls"].as_u64().unwrap();
    assert!((2..=20).contains(&polls), "{polls} reads");
    assert!(doc.get("diagnosis").is_none());
    assert_eq!(calls(srv, "kms:ConnectCustomKeyStore"), 1);
    assert_eq!(calls(srv, "kms:DisconnectCustomKeyStore"), 0);
    assert_eq!(
        srv.requests("kms:ConnectCustomKeyStore")[0]["CustomKeyStoreId"],
        STORE
    );
    // The wait reads that one store (CustomKeyStoreId), not the account's list.
    let reads = srv.requests("kms:DescribeCustomKeyStores");
    assert_eq!(
        reads
            .iter()
            .filter(|r| r["CustomKeyStoreId"] == STORE)
            .count() as u64,
        polls,
        "{reads:?}"
    );
    assert_eq!(server_state(srv, STORE), ("CONNECTED".into(), None));

    // Now CONNECTED: nothing to do, nothing called, no check run.
    let before = srv.calls();
    let run = connect_table(srv, &[STORE, "--wait"]);
    expect_code(&run, 0);
    assert!(
        run.stdout.starts_with(&format!(
            "{STORE} (ExampleKeyStore) is already CONNECTED: nothing to do"
        )),
        "{}",
        run.stdout
    );
    let after = srv.calls();
    assert_eq!(
        after.get("kms:ConnectCustomKeyStore"),
        before.get("kms:ConnectCustomKeyStore")
    );
    assert_eq!(
        after.get("cloudhsm:DescribeClusters"),
        before.get("cloudhsm:DescribeClusters")
    );

    // Without --wait: back once ConnectCustomKeyStore is accepted, the store CONNECTING.
    srv.seed(&account("DISCONNECTED", None, json!({"delay_ms": 600_000})));
    let (run, doc) = connect_json(srv, &[STORE]);
    expect_code(&run, 0);
    assert_eq!(doc["outcome"], "started", "{doc:#}");
    assert_eq!(doc["final_state"], "CONNECTING");
    assert_eq!(doc["polls"], 0);
    assert_eq!(
        actions(&doc),
        [format!("ConnectCustomKeyStore {STORE}: accepted")]
    );
    assert!(doc["message"].as_str().unwrap().contains("--wait"));

    // The table: the outcome, the checks' verdict, the action, the final state.
    srv.seed(&account("DISCONNECTED", None, json!({"delay_ms": 200})));
    let run = connect_table(srv, &[STORE, "--wait", "--poll-interval", "100ms"]);
    expect_code(&run, 0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(
        lines[0].starts_with(&format!("{STORE} (ExampleKeyStore) is CONNECTED after ")),
        "{}",
        run.stdout
    );
    assert!(
        lines[1].starts_with("checks before connecting: "),
        "{}",
        run.stdout
    );
    assert!(
        lines.contains(&format!("ConnectCustomKeyStore {STORE}: accepted").as_str()),
        "{}",
        run.stdout
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("final state: CONNECTED after ")),
        "{}",
        run.stdout
    );
}

#[test]
fn live_connect_follows_a_connection_already_in_progress_without_calling_connect() {
    run_named("already_connecting");
}

fn already_connecting(srv: &Server) {
    srv.seed(&account("CONNECTING", None, json!({"delay_ms": 300})));
    let (run, doc) = connect_json(srv, &[STORE, "--wait", "--poll-interval", "100ms"]);
    expect_code(&run, 0);
    assert_eq!(doc["outcome"], "connected", "{doc:#}");
    assert_eq!(doc["initial_state"], "CONNECTING");
    assert_eq!(actions(&doc), Vec::<String>::new());
    // Following changes nothing: no checks first.
    assert_eq!(doc["checks"], Value::Null);
    assert_eq!(calls(srv, "kms:ConnectCustomKeyStore"), 0);
    assert_eq!(calls(srv, "cloudhsm:DescribeClusters"), 0);
}

#[test]
fn live_connect_diagnoses_a_failed_connection_at_once_for_each_code() {
    run_named("failed_codes");
}

/// The outcome is FAILED with `code`, and the diagnosis that follows is of the store as it
/// ended: FAILED with that code.
#[track_caller]
fn failed_with(run: &RawRun, doc: &Value, code: &str) {
    expect_code(run, 1);
    assert_eq!(doc["outcome"], "failed", "{doc:#}");
    assert_eq!(doc["final_state"], "FAILED");
    assert_eq!(doc["connection_error_code"], code);
    let d = &doc["diagnosis"]["diagnosis"];
    assert_eq!(d["connection_state"], "FAILED", "{d:#}");
    assert_eq!(d["connection_error_code"], code, "{d:#}");
    assert!(d["text"].as_str().unwrap().contains(code), "{d:#}");
    assert_eq!(
        doc["diagnosis"]["target"]["operation"],
        "ConnectCustomKeyStore"
    );
    assert!(doc["message"]
        .as_str()
        .unwrap()
        .contains(&format!("FAILED with {code}")));
}

fn failed_codes(srv: &Server) {
    // A CloudHSM store: kmsuser locked out, which no API shows.
    srv.seed(&account(
        "DISCONNECTED",
        None,
        json!({"delay_ms": 200, "outcome": "FAILED", "error_code": "USER_LOCKED_OUT"}),
    ));
    let (run, doc) = connect_json(srv, &[STORE, "--wait", "--poll-interval", "100ms"]);
    failed_with(&run, &doc, "USER_LOCKED_OUT");
    // The checks ran twice: before the connect and on the store as it ended.
    assert_eq!(calls(srv, "cloudhsm:DescribeClusters"), 2);
    assert_eq!(
        server_state(srv, STORE),
        ("FAILED".into(), Some("USER_LOCKED_OUT".into()))
    );

    // The table: a one-line outcome first, then the diagnosis naming the code.
    srv.seed(&account(
        "DISCONNECTED",
        None,
        json!({"delay_ms": 100, "outcome": "FAILED", "error_code": "USER_LOCKED_OUT"}),
    ));
    let run = connect_table(srv, &[STORE, "--wait", "--poll-interval", "100ms"]);
    expect_code(&run, 1);
    let (first, rest) = run.stdout.split_once('\n').unwrap();
    assert!(
        first.starts_with(&format!(
            "{STORE} (ExampleKeyStore) is FAILED with USER_LOCKED_OUT after "
        )),
        "{}",
        run.stdout
    );
    assert!(
        rest.contains(&format!("ConnectCustomKeyStore {STORE}: accepted")),
        "{}",
        run.stdout
    );
    assert!(
        rest.contains("FAILED with USER_LOCKED_OUT"),
        "the diagnosis: {}",
        run.stdout
    );

    // An external key store (the test proxy, its secret given for the checks): the proxy timed
    // out for KMS. The secret never appears.
    let proxy = TestProxy::start_blocking(ProxyOptions::default());
    srv.seed(&json!({
        "region": REGION,
        "key_stores": [{
            "id": XKS_STORE, "name": "ExternalStore", "type": "EXTERNAL_KEY_STORE",
            "state": "DISCONNECTED", "connectivity": "PUBLIC_ENDPOINT",
            "uri_endpoint": xks_proxy::ENDPOINT, "uri_path": xks_proxy::PATH,
            "access_key_id": xks_proxy::ACCESS_KEY_ID,
            "connect": {"delay_ms": 200, "outcome": "FAILED", "error_code": "XKS_PROXY_TIMED_OUT"},
        }],
    }));
    let ca = tmp("live-connect-ca.pem");
    std::fs::write(&ca, proxy.root_ca_pem()).unwrap();
    let secret = tmp("live-connect.secret");
    std::fs::write(&secret, format!("{}\n", xks_proxy::SECRET)).unwrap();
    let connect_to = proxy.connect_to_arg();
    let (ca, secret) = (ca.display().to_string(), secret.display().to_string());
    let xks_args = [
        XKS_STORE,
        "--wait",
        "--poll-interval",
        "100ms",
        "--connect-to",
        &connect_to,
        "--trust-ca",
        &ca,
        "--secret-file",
        &secret,
    ];
    let (run, doc) = connect_json(srv, &xks_args);
    failed_with(&run, &doc, "XKS_PROXY_TIMED_OUT");
    // An external key store's default bound; the proxy was probed, signed, by the checks.
    assert_eq!(doc["max_wait_seconds"], 600.0);
    assert_eq!(doc["custom_key_store_type"], "EXTERNAL_KEY_STORE");
    assert!(!proxy.requests().is_empty());
    for text in [&run.stdout, &run.stderr] {
        assert!(!text.contains(xks_proxy::SECRET), "the secret was printed");
    }
}

#[test]
fn live_connect_disconnects_a_failed_store_first_only_with_yes() {
    run_named("failed_store");
}

fn failed_store(srv: &Server) {
    // FAILED with a code whose cause no API shows (the checks find nothing wrong); Disconnect
    // takes a while (DISCONNECTING), then the connect succeeds.
    let mut seed = account(
        "FAILED",
        Some("INTERNAL_ERROR"),
        json!({"delay_ms": 200, "outcome": "CONNECTED"}),
    );
    seed["key_stores"][0]["disconnect"] = json!({"delay_ms": 300});
    srv.seed(&seed);

    // Standard input is not a terminal and there is no --yes: refused, before anything runs.
    let mut all = base(srv, "json");
    all.extend(strings(&["connect", STORE, "--wait"]));
    let run = run_cks_doctor_raw(&all, &tmp(LOG));
    expect_code(&run, 2);
    assert_eq!(run.stdout, "");
    let line = run.stderr.trim_end();
    assert!(!line.contains('\n'), "one line: {line}");
    assert!(
        line.contains(&format!("{STORE} is FAILED with INTERNAL_ERROR")) && line.contains("--yes"),
        "{line}"
    );
    assert_eq!(calls(srv, "kms:DisconnectCustomKeyStore"), 0);
    assert_eq!(calls(srv, "kms:ConnectCustomKeyStore"), 0);
    assert_eq!(calls(srv, "cloudhsm:DescribeClusters"), 0, "no check ran");

    // With --yes: disconnected, waited for DISCONNECTED, connected, followed.
    let (run, doc) = connect_json(srv, &[STORE, "--wait", "--yes", "--poll-interval", "100ms"]);
    expect_code(&run, 0);
    assert_eq!(doc["outcome"], "connected", "{doc:#}");
    assert_eq!(doc["initial_state"], "FAILED");
    assert_eq!(doc["initial_connection_error_code"], "INTERNAL_ERROR");
    assert_eq!(
        actions(&doc),
        [
            format!("DisconnectCustomKeyStore {STORE}: done"),
            format!("ConnectCustomKeyStore {STORE}: accepted"),
        ]
    );
    assert_eq!(
        changes_seen(srv),
        ["kms:DisconnectCustomKeyStore", "kms:ConnectCustomKeyStore"]
    );
    assert_eq!(server_state(srv, STORE), ("CONNECTED".into(), None));

    // A store someone else is disconnecting: waited for, then connected (also asks first).
    let mut seed = account("DISCONNECTING", None, json!({"delay_ms": 100}));
    seed["key_stores"][0]["disconnect"] = json!({"delay_ms": 300});
    srv.seed(&seed);
    let (run, doc) = connect_json(srv, &[STORE, "--wait", "--yes", "--poll-interval", "100ms"]);
    expect_code(&run, 0);
    assert_eq!(doc["outcome"], "connected", "{doc:#}");
    assert_eq!(
        actions(&doc),
        [format!("ConnectCustomKeyStore {STORE}: accepted")]
    );
    // KMS rejects Disconnect on DISCONNECTING: none was sent.
    assert_eq!(changes_seen(srv), ["kms:ConnectCustomKeyStore"]);
}

#[test]
fn live_connect_dry_run_changes_nothing() {
    run_named("dry_run");
}

fn dry_run(srv: &Server) {
    srv.seed(&account("FAILED", Some("INTERNAL_ERROR"), json!({})));
    // No --yes needed: nothing will be done.
    let (run, doc) = connect_json(srv, &[STORE, "--wait", "--dry-run", "--max-wait", "5m"]);
    expect_code(&run, 0);
    assert_eq!(doc["dry_run"], true);
    assert_eq!(doc["outcome"], "would_connect", "{doc:#}");
    let plan: Vec<&str> = doc["plan"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(plan.len(), 4, "{plan:#?}");
    assert!(
        plan[0].starts_with(&format!("DisconnectCustomKeyStore {STORE}")),
        "{plan:#?}"
    );
    assert!(
        plan[1].starts_with("wait up to 5m for DISCONNECTED"),
        "{plan:#?}"
    );
    assert_eq!(plan[2], format!("ConnectCustomKeyStore {STORE}"));
    assert!(
        plan[3].starts_with("wait up to 5m for CONNECTED or FAILED"),
        "{plan:#?}"
    );
    assert_eq!(doc["checks"]["summary"]["fail"], 0, "{doc:#}");
    assert_eq!(actions(&doc), Vec::<String>::new());

    // The table says it and lists the steps.
    let run = connect_table(srv, &[STORE, "--wait", "--dry-run"]);
    expect_code(&run, 0);
    assert!(
        run.stdout.starts_with("dry run: nothing was changed"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("plan:\n  1. DisconnectCustomKeyStore"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("wait up to 20m for CONNECTED or FAILED"),
        "{}",
        run.stdout
    );

    // A dry run that the checks would stop: exit 1, the failing check named.
    srv.seed(&{
        let mut v = account("DISCONNECTED", None, json!({}));
        v["clusters"] = json!([]);
        v
    });
    let (run, doc) = connect_json(srv, &[STORE, "--wait", "--dry-run"]);
    expect_code(&run, 1);
    assert_eq!(doc["outcome"], "would_stop", "{doc:#}");
    assert!(doc["checks"]["failing"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == "cloudhsm.cluster.exists"));

    // Nothing reached the server that changes a store, in any of them.
    assert_eq!(changes_seen(srv), Vec::<String>::new());
    assert_eq!(server_state(srv, STORE), ("DISCONNECTED".into(), None));
}

#[test]
fn live_connect_gives_up_at_max_wait_and_leaves_the_store_connecting() {
    run_named("timeout");
}

fn timeout(srv: &Server) {
    srv.seed(&account("DISCONNECTED", None, json!({"delay_ms": 600_000})));
    let start = Instant::now();
    let (run, doc) = connect_json(
        srv,
        &[
            STORE,
            "--wait",
            "--max-wait",
            "1s",
            "--poll-interval",
            "200ms",
        ],
    );
    expect_code(&run, 3);
    assert_eq!(doc["outcome"], "timed_out", "{doc:#}");
    assert_eq!(doc["final_state"], "CONNECTING");
    assert_eq!(doc["max_wait_seconds"], 1.0);
    let message = doc["message"].as_str().unwrap();
    assert!(
        message.contains("--max-wait 1s")
            && message.contains("still CONNECTING")
            && message.contains("nothing was undone"),
        "{message}"
    );
    let elapsed = doc["elapsed_seconds"].as_f64().unwrap();
    assert!((1.0..8.0).contains(&elapsed), "{elapsed}");
    assert!(start.elapsed() < Duration::from_secs(30));
    // A few reads, no more: 1 s at 200 ms.
    let polls = doc["polls"].as_u64().unwrap();
    assert!((3..=7).contains(&polls), "{polls} reads");
    assert_eq!(server_state(srv, STORE), ("CONNECTING".into(), None));
    assert_eq!(calls(srv, "kms:DisconnectCustomKeyStore"), 0);
}

#[test]
fn live_connect_ctrl_c_leaves_the_store_as_it_is() {
    run_named("ctrl_c");
}

fn ctrl_c(srv: &Server) {
    srv.seed(&account("DISCONNECTED", None, json!({"delay_ms": 600_000})));
    // The binary as a child this test can signal, in the same hermetic environment as the
    // others (dummy credentials, no AWS configuration).
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("cks-doctor"));
    cmd.env_clear()
        .env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
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
        .env("NO_COLOR", "1")
        .args(base(srv, "table"))
        .args(["connect", STORE, "--wait", "--poll-interval", "100ms"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let pid = child.id();
    // Until it is waiting: Connect accepted and the store read since.
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let seen = srv.control("GET", "requests", None);
        let actions: Vec<&str> = seen
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["action"].as_str())
            .collect();
        if let Some(i) = actions
            .iter()
            .position(|a| *a == "kms:ConnectCustomKeyStore")
        {
            if actions[i..]
                .iter()
                .filter(|a| **a == "kms:DescribeCustomKeyStores")
                .count()
                >= 2
            {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the child never got to waiting: {seen:#}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // It exits by itself, soon.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("cks-doctor did not exit within 20 s of SIGINT")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(3),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    let first = stdout.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("interrupted after ")
            && first.contains("nothing was undone")
            && first.contains("last known state CONNECTING"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("ConnectCustomKeyStore {STORE}: accepted")),
        "{stdout}"
    );
    // Left as it is: still connecting, nothing disconnected.
    assert_eq!(server_state(srv, STORE), ("CONNECTING".into(), None));
    assert_eq!(calls(srv, "kms:DisconnectCustomKeyStore"), 0);
}

#[test]
fn live_connect_a_failing_check_stops_it_before_connect_unless_forced() {
    run_named("checks_stop");
}

fn checks_stop(srv: &Server) {
    // The store's cluster is gone: cloudhsm.cluster.exists FAILs (CLUSTER_NOT_FOUND).
    srv.seed(&{
        let mut v = account(
            "DISCONNECTED",
            None,
            json!({"delay_ms": 100, "outcome": "FAILED", "error_code": "CLUSTER_NOT_FOUND"}),
        );
        v["clusters"] = json!([]);
        v
    });
    let (run, doc) = connect_json(srv, &[STORE, "--wait", "--poll-interval", "100ms"]);
    expect_code(&run, 1);
    assert_eq!(doc["outcome"], "stopped_by_checks", "{doc:#}");
    assert_eq!(doc["final_state"], "DISCONNECTED");
    assert!(
        doc["checks"]["failing"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "cloudhsm.cluster.exists"),
        "{doc:#}"
    );
    assert!(doc["message"].as_str().unwrap().contains("--force"));
    // The checks' report is there, with the failing check.
    assert!(doc["checks_report"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["id"] == "cloudhsm.cluster.exists" && c["status"] == "FAIL"));
    assert_eq!(calls(srv, "kms:ConnectCustomKeyStore"), 0);

    // --force: connected anyway; it FAILs as the check said, and the diagnosis confirms it.
    let (run, doc) = connect_json(
        srv,
        &[STORE, "--wait", "--force", "--poll-interval", "100ms"],
    );
    failed_with(&run, &doc, "CLUSTER_NOT_FOUND");
    let confirmed: Vec<&str> = doc["diagnosis"]["diagnosis"]["confirmed_by"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(confirmed, ["cloudhsm.cluster.exists"]);
    assert_eq!(calls(srv, "kms:ConnectCustomKeyStore"), 1);
}

#[test]
fn live_connect_denied_names_the_permission() {
    run_named("denied");
}

fn denied(srv: &Server) {
    srv.seed(&account("DISCONNECTED", None, json!({})));
    srv.faults(json!({"action": "kms:ConnectCustomKeyStore", "error": "AccessDeniedException"}));
    let (run, doc) = connect_json(srv, &[STORE, "--wait", "--poll-interval", "100ms"]);
    expect_code(&run, 3);
    assert_eq!(doc["outcome"], "aws_error", "{doc:#}");
    let message = doc["message"].as_str().unwrap();
    assert!(
        message.contains("access denied") && message.contains("kms:ConnectCustomKeyStore"),
        "{message}"
    );
    assert_eq!(doc["final_state"], "DISCONNECTED");
    assert_eq!(actions(&doc), Vec::<String>::new());
    assert_eq!(server_state(srv, STORE), ("DISCONNECTED".into(), None));

    // The same in the table, on its first line.
    let run = connect_table(srv, &[STORE, "--wait"]);
    expect_code(&run, 3);
    let first = run.stdout.lines().next().unwrap_or_default();
    assert!(
        first.contains("the caller needs the IAM permission kms:ConnectCustomKeyStore"),
        "{}",
        run.stdout
    );
}

static SCENARIOS: &[Scenario] = &[
    ("connected", connected),
    ("already_connecting", already_connecting),
    ("failed_codes", failed_codes),
    ("failed_store", failed_store),
    ("dry_run", dry_run),
    ("timeout", timeout),
    ("ctrl_c", ctrl_c),
    ("checks_stop", checks_stop),
    ("denied", denied),
];

// ------------------------------------------------------------------------------------------------
// without a server

#[test]
fn connect_needs_the_live_apis_and_well_formed_durations() {
    use crate::support::bin;
    // --snapshot cannot connect anything.
    let out = bin()
        .args([
            "--snapshot",
            "examples/failed-store",
            "--region",
            REGION,
            "connect",
            "cks-0a1b2c3d4e5f60789",
            "--yes",
        ])
        .current_dir(live_server::root())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs the live AWS APIs"));
    for bad in [
        ["--max-wait", "5x"],
        ["--max-wait", "0s"],
        ["--poll-interval", "1ms"],
    ] {
        let out = bin().args(["connect", STORE]).args(bad).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
    // The exit codes are in --help.
    let out = bin().args(["connect", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for code in [
        "0  CONNECTED",
        "1  the store ended FAILED",
        "2  usage",
        "3  could not finish",
    ] {
        assert!(help.contains(code), "{code}: {help}");
    }
}

#[test]
fn iam_policy_connect_is_apart_from_the_read_only_one() {
    use crate::support::bin;
    let out = bin().args(["iam-policy", "--connect"]).output().unwrap();
    assert!(out.status.success());
    let policy: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        policy["Statement"][0]["Action"],
        json!([
            "kms:ConnectCustomKeyStore",
            "kms:DescribeCustomKeyStores",
            "kms:DisconnectCustomKeyStore"
        ])
    );
    let out = bin().args(["iam-policy"]).output().unwrap();
    let read_only: Value = serde_json::from_slice(&out.stdout).unwrap();
    let actions = read_only["Statement"][0]["Action"].as_array().unwrap();
    assert!(
        !actions
            .iter()
            .any(|a| a.as_str().unwrap().contains("ConnectCustomKeyStore")),
        "{actions:?}"
    );
}
