//! The test XKS proxy of the integration tests (`tests/it/support/xks_proxy.rs`), as a program,
//! for the benchmark (`bench/bench.py`): a healthy proxy with a valid chain, on 127.0.0.1.
//!
//! ```text
//! cargo run --release --example xks_test_proxy -- --root-ca /tmp/root.pem
//! ```
//!
//! Writes the proxy's private root CA (PEM, for `--trust-ca`) to `--root-ca FILE`, then prints
//! its port on stdout (one line, just the number). It runs until its standard input closes (so a
//! benchmark that dies cannot leave it behind) or `--max-seconds` pass (default 1800). A line
//! `stats` on stdin prints one JSON line: `{"handshakes": N, "requests": N}` (totals since
//! start: completed TLS handshakes and HTTP requests read).
//!
//! The proxy binds 127.0.0.1:0 (a free port): `TestProxy` takes no port.

#[path = "../tests/it/support/xks_proxy.rs"]
mod xks_proxy;

use std::io::{BufRead, Write};
use std::time::{Duration, Instant};
use xks_proxy::{ProxyOptions, TestProxy};

fn usage() -> ! {
    eprintln!("usage: xks_test_proxy --root-ca FILE [--max-seconds N]");
    std::process::exit(2);
}

fn main() {
    let mut root_ca = None;
    let mut max_seconds = 1800u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--root-ca" => root_ca = Some(args.next().unwrap_or_else(|| usage())),
            "--max-seconds" => {
                max_seconds = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| usage())
            }
            _ => usage(),
        }
    }
    let Some(root_ca) = root_ca else { usage() };

    let proxy = TestProxy::start_blocking(ProxyOptions::default());
    if let Err(e) = std::fs::write(&root_ca, proxy.root_ca_pem()) {
        eprintln!("xks_test_proxy: cannot write {root_ca}: {e}");
        std::process::exit(1);
    }
    println!("{}", proxy.port());
    let _ = std::io::stdout().flush();

    // Bounded in time: a watchdog ends the process after --max-seconds whatever stdin does.
    let deadline = Instant::now() + Duration::from_secs(max_seconds);
    std::thread::spawn(move || {
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(500));
        }
        eprintln!("xks_test_proxy: --max-seconds reached, stopping");
        std::process::exit(0);
    });

    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        if line.trim() == "stats" {
            println!(
                "{{\"handshakes\": {}, \"requests\": {}}}",
                proxy.handshakes(),
                proxy.requests().len()
            );
            let _ = std::io::stdout().flush();
        }
    }
    drop(proxy);
}
