//! The integration tests, as one test binary (`cargo test --test it`; one link instead of one
//! per file). Each file of `tests/it/` is a module; what they share is in `support/`.
//!
//! Run one module's tests with a filter on its path, e.g. `cargo test --test it cli::`.

mod support;

mod certs;
mod checks;
mod checks_vpce;
mod cli;
mod codes;
mod conformance;
mod diagnose;
mod findings;
mod formats;
mod fuzz_regressions;
mod hermetic;
mod keys;
mod live;
mod live_connect;
mod live_diagnose;
mod live_faults;
mod live_keys;
mod live_metrics;
mod live_org;
mod live_trail;
mod live_vpce;
mod metadata;
mod metrics;
mod scan;
mod secrets;
mod snapshot;
mod trail;
mod xks;
mod xks_proxy_selftest;
mod xks_trust;
