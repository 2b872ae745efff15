//! cks-doctor: pre-flight and troubleshooting for AWS KMS custom key stores.
//!
//! The crate is the engine (facts, checks, runner, report, and the use cases in [`engine`]);
//! the command line lives only in the binary (`src/main.rs`, `src/cli/`). Checks never call AWS themselves: they read [`facts::Facts`],
//! which fetches every fact once, from the live AWS APIs or from a recorded snapshot.

pub mod alarms;
pub mod certs;
pub mod checks;
pub mod codes;
pub mod compliance;
pub mod connect;
pub mod diagnose;
pub mod engine;
pub mod facts;
pub mod input;
pub mod kind;
pub mod meta;
pub mod report;
pub mod results;
pub mod runner;
pub mod securityhub;
pub mod xks;
