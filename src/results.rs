//! What checks conclude: a [`Status`], an [`Outcome`] (status, message, evidence, the codes it
//! predicts) and the [`CheckResult`] a report holds (an outcome joined with its check's
//! metadata). Below the checks, the runner, the diagnosis and the reports, which all use them.

use crate::codes::Code;
use crate::facts::FactError;
use crate::meta::{MappingNote, Severity};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    /// The prerequisite holds.
    Pass,
    /// The prerequisite does not hold: KMS would fail with the mapped exception/code.
    Fail,
    /// It holds, but something is risky or not documented.
    Warn,
    /// Could not check (permission, throttling, network, missing snapshot file, timeout).
    Error,
    /// Not applicable, or blocked by a failed check it names.
    Skip,
    /// Needs a human: the fact is in no AWS API.
    Manual,
}

impl Status {
    pub const ALL: [Status; 6] = [
        Status::Pass,
        Status::Fail,
        Status::Warn,
        Status::Error,
        Status::Skip,
        Status::Manual,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Warn => "WARN",
            Status::Error => "ERROR",
            Status::Skip => "SKIP",
            Status::Manual => "MANUAL",
        }
    }
}

/// What a check concluded.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: Status,
    pub message: String,
    pub evidence: Vec<String>,
    /// When set, the exceptions this outcome predicts (a subset of the metadata's).
    pub kms_exceptions: Option<Vec<Code>>,
    /// When set, the connection error codes this outcome predicts.
    pub connection_error_codes: Option<Vec<Code>>,
    /// A fix specific to this outcome; the metadata's remediation otherwise.
    pub remediation: Option<String>,
}

impl Outcome {
    pub fn new(status: Status, message: impl Into<String>) -> Outcome {
        Outcome {
            status,
            message: message.into(),
            evidence: Vec::new(),
            kms_exceptions: None,
            connection_error_codes: None,
            remediation: None,
        }
    }
    pub fn pass(m: impl Into<String>) -> Outcome {
        Outcome::new(Status::Pass, m)
    }
    pub fn fail(m: impl Into<String>) -> Outcome {
        Outcome::new(Status::Fail, m)
    }
    pub fn warn(m: impl Into<String>) -> Outcome {
        Outcome::new(Status::Warn, m)
    }
    pub fn skip(m: impl Into<String>) -> Outcome {
        Outcome::new(Status::Skip, m)
    }
    pub fn manual(m: impl Into<String>) -> Outcome {
        Outcome::new(Status::Manual, m)
    }
    /// Could not check, with the reason.
    pub fn error(m: impl Into<String>) -> Outcome {
        Outcome::new(Status::Error, m)
    }
    pub fn could_not_read(e: &FactError) -> Outcome {
        Outcome::error(format!("could not check: {e}"))
    }
    /// Not run because the check `by` already fails.
    pub fn blocked(by: &str, why: impl std::fmt::Display) -> Outcome {
        Outcome::skip(format!("blocked by {by}: {why}"))
    }
    pub fn evidence(mut self, lines: impl IntoIterator<Item = impl Into<String>>) -> Outcome {
        self.evidence.extend(lines.into_iter().map(Into::into));
        self
    }
    pub fn exceptions(mut self, names: &[Code]) -> Outcome {
        self.kms_exceptions = Some(names.to_vec());
        self
    }
    pub fn codes(mut self, names: &[Code]) -> Outcome {
        self.connection_error_codes = Some(names.to_vec());
        self
    }
    pub fn fix(mut self, text: impl Into<String>) -> Outcome {
        self.remediation = Some(text.into());
        self
    }
}

/// A check either concludes early (`Err`) or at the end (`Ok`); both are outcomes.
pub type Step<T> = Result<T, Outcome>;

/// One check's result in a report: its outcome with the metadata it was run under.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CheckResult {
    pub id: String,
    pub title: String,
    pub area: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub advisory: bool,
    pub status: Status,
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
    /// Exceptions CreateCustomKeyStore returns when this check fails.
    pub kms_exceptions: Vec<Code>,
    /// ConnectionErrorCodes a store shows when this check fails after creation.
    pub connection_error_codes: Vec<Code>,
    /// How certain the mapping to those codes is, where it is inferred or AWS's documents
    /// disagree (from the check's metadata, for the codes this result predicts).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mapping_notes: Vec<MappingNote>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remediation: Option<String>,
    pub duration_ms: u64,
}
