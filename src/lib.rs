//! cks-doctor: pre-flight and troubleshooting for AWS KMS custom key stores.
//!
//! The crate is an engine (facts, checks, runner, report) with a thin command line on top
//! (`src/main.rs` + [`cli`]). Checks never call AWS themselves: they read [`facts::Facts`],
//! which fetches every fact once, from the live AWS APIs or from a recorded snapshot.

pub mod certs;
pub mod checks;
pub mod cli;
pub mod codes;
pub mod diagnose;
pub mod facts;
pub mod input;
pub mod meta;
pub mod report;
pub mod runner;
pub mod xks;
