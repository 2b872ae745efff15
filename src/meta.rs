//! Check metadata: one JSON file per check in `checks/`, embedded at build time.
//!
//! The metadata is data, not code: id, title, what store kind and area it belongs to, its
//! severity, the exact KMS exceptions and ConnectionErrorCodes it predicts, the IAM actions it
//! needs, the remediation and references. Tests tie every file to exactly one implementation.

use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

include!(concat!(env!("OUT_DIR"), "/checks_embedded.rs"));

/// Which key store kind a check applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    Cloudhsm,
    Xks,
    /// Applies to both kinds (request and account rules).
    Any,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    High,
    Medium,
    Low,
    Info,
}

/// Areas in the order the human report shows them.
pub const AREAS: &[&str] = &[
    "Request",
    "Account",
    "Cluster",
    "HSMs",
    "Network",
    "Trust anchor",
    "kmsuser",
];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckMeta {
    pub id: String,
    pub title: String,
    pub kind: StoreKind,
    pub area: String,
    pub severity: Severity,
    /// True for checks that go beyond what KMS itself verifies (best practice, not a KMS error).
    #[serde(default)]
    pub advisory: bool,
    pub description: String,
    pub kms_exceptions: Vec<String>,
    pub connection_error_codes: Vec<String>,
    pub iam_actions: Vec<String>,
    pub remediation: String,
    pub references: Vec<String>,
}

/// Parses and validates every embedded metadata file.
pub fn load_all() -> Result<Vec<CheckMeta>, String> {
    let mut out = Vec::new();
    for (file, text) in EMBEDDED {
        let m: CheckMeta =
            serde_json::from_str(text).map_err(|e| format!("checks/{file}: {e}"))?;
        if format!("{}.json", m.id) != *file {
            return Err(format!("checks/{file}: id {:?} does not match the file name", m.id));
        }
        if !AREAS.contains(&m.area.as_str()) {
            return Err(format!("checks/{file}: unknown area {:?}", m.area));
        }
        for name in m.kms_exceptions.iter().chain(&m.connection_error_codes) {
            if crate::codes::lookup(name).map(|c| c.name) != Some(name.as_str()) {
                return Err(format!("checks/{file}: {name:?} is not a known KMS exception or ConnectionErrorCode"));
            }
        }
        out.push(m);
    }
    Ok(out)
}

/// All metadata, loaded once. The embedded files are validated by the test suite, so a
/// failure here means a broken build.
pub fn all() -> &'static [CheckMeta] {
    static ALL: OnceLock<Vec<CheckMeta>> = OnceLock::new();
    ALL.get_or_init(|| load_all().unwrap_or_else(|e| panic!("invalid embedded check metadata: {e}")))
}

pub fn get(id: &str) -> Option<&'static CheckMeta> {
    all().iter().find(|m| m.id == id)
}
