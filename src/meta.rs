//! Check metadata: one JSON file per check in `checks/`, embedded at build time.
//!
//! The metadata is data, not code: id, title, what store kind and area it belongs to, its
//! severity, the exact KMS exceptions and ConnectionErrorCodes it predicts, the IAM actions it
//! needs, the remediation and references. Tests tie every file to exactly one implementation.

use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

include!(concat!(env!("OUT_DIR"), "/checks_embedded.rs"));

use crate::codes::{Code, CodeKind};
pub use crate::kind::StoreKind;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum,
)]
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
    "VPC endpoint service",
    "Proxy connection",
    "Proxy TLS",
    "Proxy API",
    "Proxy security",
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
    pub kms_exceptions: Vec<Code>,
    pub connection_error_codes: Vec<Code>,
    /// KMS reaches the XKS proxy for what this check observes. With VPC_ENDPOINT_SERVICE
    /// connectivity KMS contacts the proxy only when it connects the store, so for such a
    /// store the check predicts ConnectionErrorCodes only, never a CreateCustomKeyStore error
    /// (applied in one place: `runner::result`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub proxy_contact: bool,
    /// Judges only whether a new store could be created (name, quota, a cluster or endpoint
    /// not in use): an existing store would fail it against itself, so `diagnose` and `scan`
    /// leave it out.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub create_only: bool,
    pub iam_actions: Vec<String>,
    pub remediation: String,
    pub references: Vec<String>,
}

/// Parses and validates every embedded metadata file.
pub fn load_all() -> Result<Vec<CheckMeta>, String> {
    let mut out = Vec::new();
    for (file, text) in EMBEDDED {
        let m: CheckMeta = serde_json::from_str(text).map_err(|e| format!("checks/{file}: {e}"))?;
        if format!("{}.json", m.id) != *file {
            return Err(format!(
                "checks/{file}: id {:?} does not match the file name",
                m.id
            ));
        }
        if !AREAS.contains(&m.area.as_str()) {
            return Err(format!("checks/{file}: unknown area {:?}", m.area));
        }
        for (list, kind) in [
            (&m.kms_exceptions, CodeKind::Exception),
            (&m.connection_error_codes, CodeKind::ConnectionErrorCode),
        ] {
            if let Some(c) = list.iter().find(|c| c.kind() != kind) {
                return Err(format!("checks/{file}: {c} is not a {}", kind.label()));
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
    ALL.get_or_init(|| {
        load_all().unwrap_or_else(|e| panic!("invalid embedded check metadata: {e}"))
    })
}

pub fn get(id: &str) -> Option<&'static CheckMeta> {
    all().iter().find(|m| m.id == id)
}

/// The IAM actions the checks with these ids need: the AWS facts they read.
pub fn actions_of<'a>(
    ids: impl IntoIterator<Item = &'a str>,
) -> std::collections::BTreeSet<&'static str> {
    ids.into_iter()
        .filter_map(get)
        .flat_map(|m| m.iam_actions.iter().map(String::as_str))
        .collect()
}

/// Whether the check with this id applies to a store of this kind (`Any` checks apply to both).
pub fn applies_to(id: &str, kind: StoreKind) -> bool {
    get(id).is_some_and(|m| m.kind.applies_to(kind))
}
