//! The report model and its renderers (one per output format). The model is what
//! `--output json` prints; every other format renders the same facts.

pub mod asff;
pub mod catalogue;
pub mod csv;
pub mod explain;
pub mod findings;
pub mod html;
pub mod human;
pub mod junit;
pub mod markdown;
pub mod ocsf;
pub mod render;
pub mod sarif;
pub mod scan;

use crate::kind::StoreKind;
use crate::results::Status;
use serde::{Deserialize, Serialize};

pub use crate::results::CheckResult;

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Summary {
    pub pass: usize,
    pub fail: usize,
    pub warn: usize,
    pub error: usize,
    pub skip: usize,
    pub manual: usize,
}

impl Summary {
    pub fn of(results: &[CheckResult]) -> Summary {
        let mut s = Summary::default();
        for r in results {
            match r.status {
                Status::Pass => s.pass += 1,
                Status::Fail => s.fail += 1,
                Status::Warn => s.warn += 1,
                Status::Error => s.error += 1,
                Status::Skip => s.skip += 1,
                Status::Manual => s.manual += 1,
            }
        }
        s
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

/// What was checked, and where the facts came from.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Target {
    /// The kind of store checked (`any` for a scan row about a whole Region or account).
    pub kind: StoreKind,
    /// The operation whose outcome is predicted.
    pub operation: String,
    /// The existing store a key pre-flight is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_key_store_id: Option<String>,
    /// The external key a key pre-flight is about (XksKeyId).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xks_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_key_store_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud_hsm_cluster_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trust_anchor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xks_proxy_uri_endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xks_proxy_uri_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xks_proxy_connectivity: Option<String>,
    /// `--connect-to`: the proxy was reached at this address instead of its DNS name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// "AWS APIs in us-east-1", "snapshot DIR".
    pub source: String,
}

/// The phases of the fresh connection to the XKS proxy, against KMS's budget.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Latency {
    pub dns_ms: Option<f64>,
    pub connect_ms: Option<f64>,
    pub tls_ms: Option<f64>,
    pub first_byte_ms: Option<f64>,
    /// The request alone, written to last byte: what KMS's 250 ms are about on an open
    /// connection (AWS does not say whether connection set-up counts).
    #[serde(default)]
    pub request_ms: Option<f64>,
    pub total_ms: Option<f64>,
    pub budget_ms: f64,
    /// TLS version and cipher suite of the KMS-like handshake, when it succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cipher_suite: Option<String>,
    /// TLS handshakes made to the proxy in all.
    pub handshakes: usize,
    pub measured_from: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Outlook {
    /// At least one check FAILs.
    WouldFail,
    /// Nothing fails, but some checks could not run.
    Incomplete,
    /// Nothing fails and everything that could be checked was.
    NoFailureFound,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Verdict {
    pub outlook: Outlook,
    /// Exceptions the failing checks predict for the operation.
    pub kms_exceptions: Vec<String>,
    /// ConnectionErrorCodes the failing checks predict once the store exists.
    pub connection_error_codes: Vec<String>,
    pub text: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Report {
    pub schema_version: u32,
    pub tool: Tool,
    pub target: Target,
    /// The AWS account the facts were read in (the caller identity's account), when known: the
    /// findings formats (`asff.rs`, `ocsf.rs`) name it. `None` until the engine fills it, and in
    /// snapshot runs without `sts-get-caller-identity.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    pub summary: Summary,
    pub verdict: Verdict,
    /// XKS only: the timed fresh connection to the proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<Latency>,
    /// `diagnose` only: the store's state and error code against the checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnosis: Option<crate::diagnose::Diagnosis>,
    pub checks: Vec<CheckResult>,
}

impl Report {
    pub fn new(target: Target, checks: Vec<CheckResult>) -> Report {
        let summary = Summary::of(&checks);
        let verdict = verdict(&target, &checks);
        Report {
            schema_version: SCHEMA_VERSION,
            tool: Tool {
                name: env!("CARGO_PKG_NAME").into(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
            target,
            account: None,
            summary,
            verdict,
            latency: None,
            diagnosis: None,
            checks,
        }
    }

    /// 0 no FAIL; 1 at least one FAIL; 3 no FAIL but some checks could not run.
    pub fn exit_code(&self) -> i32 {
        match self.verdict.outlook {
            Outlook::WouldFail => 1,
            Outlook::Incomplete => 3,
            Outlook::NoFailureFound => 0,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the report serializes")
    }
}

fn verdict(target: &Target, checks: &[CheckResult]) -> Verdict {
    let failing: Vec<&CheckResult> = checks.iter().filter(|c| c.status == Status::Fail).collect();
    let errors = checks.iter().filter(|c| c.status == Status::Error).count();
    let mut exceptions: Vec<String> = Vec::new();
    let mut codes: Vec<String> = Vec::new();
    for c in &failing {
        for e in &c.kms_exceptions {
            if !exceptions.iter().any(|x| e == x.as_str()) {
                exceptions.push(e.to_string());
            }
        }
        for e in &c.connection_error_codes {
            if !codes.iter().any(|x| e == x.as_str()) {
                codes.push(e.to_string());
            }
        }
    }
    let op = &target.operation;
    let outlook = if !failing.is_empty() {
        Outlook::WouldFail
    } else if errors > 0 {
        Outlook::Incomplete
    } else {
        Outlook::NoFailureFound
    };
    let existing = op == "ConnectCustomKeyStore";
    // The failing checks, for a failure no KMS error names.
    let unnamed = || {
        failing
            .iter()
            .map(|c| c.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut text = match outlook {
        Outlook::WouldFail if existing && !codes.is_empty() => format!(
            "Connecting would fail with ConnectionErrorCode {}",
            codes.join(", ")
        ),
        Outlook::WouldFail if existing && !exceptions.is_empty() => format!(
            "The store has problems that CreateCustomKeyStore/UpdateCustomKeyStore would reject: {}",
            exceptions.join(", ")
        ),
        Outlook::WouldFail if existing => format!(
            "The store has problems that no KMS error names (yet): {}",
            unnamed()
        ),
        Outlook::WouldFail if !exceptions.is_empty() => {
            format!("{op} would fail with: {}", exceptions.join(", "))
        }
        Outlook::WouldFail if !codes.is_empty() => format!(
            "{op} itself would not fail on what was checked, but the key store would not connect"
        ),
        Outlook::WouldFail => format!(
            "{op} would fail, with an error AWS does not document for the cause: {}",
            unnamed()
        ),
        Outlook::Incomplete => {
            format!("No failure found, but {errors} check(s) could not run: {op} may still fail")
        }
        Outlook::NoFailureFound => format!("No failure found: {op} should succeed"),
    };
    if !codes.is_empty() && !existing {
        text.push_str(&format!(
            ". Once created, connecting would fail with ConnectionErrorCode {}",
            codes.join(", ")
        ));
    }
    Verdict {
        outlook,
        kms_exceptions: exceptions,
        connection_error_codes: codes,
        text,
    }
}
