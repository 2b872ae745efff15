//! The checks: pure logic over [`Facts`], one file per family.
//!
//! A check reads facts (never the SDK), decides, and returns an [`Outcome`]: a status, a
//! message with the evidence, and optionally a narrower set of KMS exceptions or connection
//! error codes than its metadata lists. Everything static about a check (title, area,
//! severity, the codes it maps to, remediation) lives in its metadata file in `checks/`.

pub mod account;
pub mod cloudhsm;
pub mod kmsuser;
pub mod params;
pub mod vpc;
pub mod vpce;
pub mod xks;

use crate::facts::model::Cluster;
use crate::facts::{FactError, Facts};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, OnceLock};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    pub kms_exceptions: Option<Vec<&'static str>>,
    /// When set, the connection error codes this outcome predicts.
    pub connection_error_codes: Option<Vec<&'static str>>,
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
    pub fn exceptions(mut self, names: &[&'static str]) -> Outcome {
        self.kms_exceptions = Some(names.to_vec());
        self
    }
    pub fn codes(mut self, names: &[&'static str]) -> Outcome {
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

pub type CheckFn = fn(Arc<Facts>) -> BoxFuture<'static, Outcome>;

/// A registered check: its id (which names its metadata file) and its implementation.
pub struct Check {
    pub id: &'static str,
    pub run: CheckFn,
}

pub fn flatten(s: Step<Outcome>) -> Outcome {
    match s {
        Ok(o) | Err(o) => o,
    }
}

/// Declares a family's checks: `id => async fn(&Facts) -> Step<Outcome>`.
macro_rules! register {
    ($($id:literal => $f:path),* $(,)?) => {
        pub fn checks() -> Vec<$crate::checks::Check> {
            vec![$($crate::checks::Check {
                id: $id,
                run: |facts| Box::pin(async move { $crate::checks::flatten($f(&facts).await) }),
            }),*]
        }
    };
}
pub(crate) use register;

/// Every check, in report order.
pub fn registry() -> &'static [Check] {
    static REGISTRY: OnceLock<Vec<Check>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut all = Vec::new();
        all.extend(params::checks());
        all.extend(account::checks());
        all.extend(cloudhsm::checks());
        all.extend(vpc::checks());
        all.extend(xks::checks());
        all.extend(vpce::checks());
        all.extend(kmsuser::checks());
        all
    })
}

pub fn find(id: &str) -> Option<&'static Check> {
    registry().iter().find(|c| c.id == id)
}

// ----- shared fact access for checks -----

pub const CLUSTER_EXISTS: &str = "cloudhsm.cluster.exists";

/// States in which KMS no longer finds a cluster.
pub fn is_gone(state: &str) -> bool {
    matches!(state, "DELETE_IN_PROGRESS" | "DELETED")
}

/// The requested cluster, or the outcome that ends a check which needs it.
pub async fn need_cluster(f: &Facts) -> Step<&Cluster> {
    match f.cluster().await {
        Ok(Some(c)) if !is_gone(&c.state) => Ok(c),
        Ok(Some(c)) => Err(Outcome::blocked(
            CLUSTER_EXISTS,
            format!("the cluster is {}", c.state),
        )),
        Ok(None) => Err(Outcome::blocked(
            CLUSTER_EXISTS,
            "the cluster was not found",
        )),
        Err(e) => Err(Outcome::could_not_read(e)),
    }
}

/// Lifts a fact into a step: an unreadable fact ends the check as "could not check".
pub fn got<T>(fact: &Result<T, FactError>) -> Step<&T> {
    fact.as_ref().map_err(Outcome::could_not_read)
}
