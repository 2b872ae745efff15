//! What the integration tests share:
//!
//! - [`bin`]: the built binary in an environment that can reach no AWS configuration of the
//!   machine;
//! - [`common`]: builders for check tests (a healthy CloudHSM setup held in memory);
//! - [`live_server`]: the local AWS endpoint `tests/live/server.py` and the binary run against it;
//! - [`xks_proxy`]: a real XKS proxy on 127.0.0.1 (also the benchmark's,
//!   `bench/xks_test_proxy.rs`).

pub mod common;
// Not every field of its runs is read by some test (as when each test file included it).
#[allow(dead_code)]
pub mod live_server;
pub mod xks_proxy;

use assert_cmd::Command;

/// The binary with an environment that can reach no AWS configuration of the machine.
pub fn bin() -> Command {
    let mut c = Command::cargo_bin("cks-doctor").unwrap();
    c.env_remove("CKS_KEY_STORE_PASSWORD")
        .env_remove("CKS_XKS_SECRET_ACCESS_KEY")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent/cks-doctor-test-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/cks-doctor-test-credentials",
        )
        .env("NO_COLOR", "1");
    c
}
