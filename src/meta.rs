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
    "CloudWatch metrics",
    "CloudTrail",
    "KMS key",
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
    /// Judges whether CreateKey would succeed in the store (a key pre-flight: `preflight key`,
    /// `preflight xks --xks-key-id`); a store's own checks (pre-flight, diagnose, scan) leave it out.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub create_key: bool,
    /// Judges an existing store only (what it holds): a pre-flight of a store about to be
    /// created leaves it out.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub existing_only: bool,
    /// The ConnectionErrorCodes whose cause a PASS of this check rules out, because the check
    /// observes what KMS observes (an AWS API, the proxy's own answer). Every other code of the
    /// check is "not ruled out from here" when it passes: DNS, TCP, TLS or latency seen from the
    /// tool's machine say nothing of a firewall or route that keeps KMS out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pass_rules_out: Vec<Code>,
    /// Where a code this check predicts is not simply documented: inferred, or named
    /// differently by two of AWS's documents (both names are then in the lists above).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mapping_notes: Vec<MappingNote>,
    pub iam_actions: Vec<String>,
    pub remediation: String,
    pub references: Vec<String>,
}

/// How certain a mapping from a check to a code is, where AWS's documents do not simply say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MappingBasis {
    /// No AWS document names this code for this cause; cks-doctor infers it.
    Inferred,
    /// AWS's documents name different codes for the same cause: every name is reported.
    DocumentsDisagree,
}

impl MappingBasis {
    pub fn label(self) -> &'static str {
        match self {
            MappingBasis::Inferred => "inferred",
            MappingBasis::DocumentsDisagree => "AWS documents disagree",
        }
    }
}

/// A note on one or more of a check's codes: how certain the mapping is, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingNote {
    /// The codes the note is about: one for an inferred mapping, every name the documents use
    /// for one that disagrees.
    pub codes: Vec<Code>,
    pub basis: MappingBasis,
    /// Which document says what.
    pub note: String,
}

impl MappingNote {
    /// One line: `NETWORK_ERRORS: inferred: ...`, `A or B: AWS documents disagree: ...`.
    pub fn line(&self) -> String {
        format!(
            "{}: {}: {}",
            crate::codes::join(&self.codes, " or "),
            self.basis.label(),
            self.note
        )
    }
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
        if let Some(c) = m
            .pass_rules_out
            .iter()
            .find(|c| !m.connection_error_codes.contains(c))
        {
            return Err(format!(
                "checks/{file}: pass_rules_out names {c}, which is not one of its connection_error_codes"
            ));
        }
        for n in &m.mapping_notes {
            let all: Vec<Code> = m
                .kms_exceptions
                .iter()
                .chain(&m.connection_error_codes)
                .copied()
                .collect();
            if let Some(c) = n.codes.iter().find(|c| !all.contains(c)) {
                return Err(format!(
                    "checks/{file}: a mapping note names {c}, which the check does not predict"
                ));
            }
            let ok = match n.basis {
                MappingBasis::Inferred => !n.codes.is_empty(),
                MappingBasis::DocumentsDisagree => {
                    n.codes.len() >= 2 && n.codes.iter().all(|c| c.kind() == n.codes[0].kind())
                }
            };
            if !ok || n.note.trim().is_empty() {
                return Err(format!(
                    "checks/{file}: a mapping note needs a note and, when documents disagree, two codes or more of one kind"
                ));
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
