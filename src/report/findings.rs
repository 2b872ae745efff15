//! What the two findings formats (`asff.rs`, `ocsf.rs`) share: the stable id of a finding, the
//! resources a report is about (with their ARNs), the severity and compliance status of each
//! check status, and safe truncation.
//!
//! Every check of a report becomes one finding, whatever its status, so that a re-run updates
//! every finding an earlier run created (a FAILED one becomes PASSED) instead of leaving it
//! behind; `--status` still hides rows, and so findings, when only some are wanted.
//!
//! | status | severity | compliance | record / workflow |
//! |---|---|---|---|
//! | FAIL | the check's (critical → CRITICAL … info → INFORMATIONAL) | FAILED | ACTIVE / NEW |
//! | WARN | one step below the check's, never below LOW (info stays INFORMATIONAL) | WARNING | ACTIVE / NEW |
//! | ERROR (could not check) | one step below the check's, never below LOW; MEDIUM without one (a scan row) | NOT_AVAILABLE | ACTIVE / NEW |
//! | MANUAL | INFORMATIONAL | WARNING | ACTIVE / NEW |
//! | PASS | INFORMATIONAL | PASSED | ARCHIVED / RESOLVED |
//! | SKIP | INFORMATIONAL | NOT_AVAILABLE | ARCHIVED / RESOLVED |

use super::{CheckResult, Report};
use crate::kind::StoreKind;
use crate::meta::Severity;
use crate::results::Status;
use sha2::{Digest, Sha256};

/// A finding's severity, in ASFF's five labels (OCSF has the same five, with ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl Level {
    pub fn of(s: Severity) -> Level {
        match s {
            Severity::Critical => Level::Critical,
            Severity::High => Level::High,
            Severity::Medium => Level::Medium,
            Severity::Low => Level::Low,
            Severity::Info => Level::Informational,
        }
    }

    /// One step down, never below LOW; INFORMATIONAL stays.
    fn lower(self) -> Level {
        match self {
            Level::Critical => Level::High,
            Level::High => Level::Medium,
            Level::Medium | Level::Low => Level::Low,
            Level::Informational => Level::Informational,
        }
    }

    pub fn asff(self) -> &'static str {
        match self {
            Level::Informational => "INFORMATIONAL",
            Level::Low => "LOW",
            Level::Medium => "MEDIUM",
            Level::High => "HIGH",
            Level::Critical => "CRITICAL",
        }
    }
}

/// The check's own severity: the result's, else its metadata's.
pub fn check_severity(c: &CheckResult) -> Option<Severity> {
    c.severity
        .or_else(|| crate::meta::get(&c.id).map(|m| m.severity))
}

/// The severity of the finding a result becomes (the table above).
pub fn level(c: &CheckResult) -> Level {
    let own = check_severity(c).map(Level::of);
    match c.status {
        Status::Fail => own.unwrap_or(Level::High),
        Status::Warn => own.map_or(Level::Low, Level::lower),
        Status::Error => own.map_or(Level::Medium, Level::lower),
        Status::Manual | Status::Pass | Status::Skip => Level::Informational,
    }
}

/// Whether the finding is something to act on (ACTIVE) or closed (PASS, SKIP: ARCHIVED).
pub fn is_open(status: Status) -> bool {
    !matches!(status, Status::Pass | Status::Skip)
}

/// "2024-05-01T12:00:00.000Z": RFC 3339 in UTC with milliseconds, as ASFF's examples write it.
pub fn rfc3339(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// At most `max` bytes of UTF-8 (so at most `max` characters, and UTF-16 units, whichever a
/// consumer counts), cut on a character boundary and marked with "…" when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let ell = "…";
    let mut end = max.saturating_sub(ell.len());
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ell}", s[..end].trim_end())
}

/// The account, when the report knows it (twelve digits).
pub fn account(report: &Report) -> Option<&str> {
    report
        .account
        .as_deref()
        .filter(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))
}

pub fn region(report: &Report) -> Option<&str> {
    report
        .target
        .region
        .as_deref()
        .filter(|r| !r.trim().is_empty())
}

/// The partition a Region is in (`aws` when it is unknown).
pub fn partition(region: Option<&str>) -> &'static str {
    match region {
        Some(r) if r.starts_with("cn-") => "aws-cn",
        Some(r) if r.starts_with("us-gov-") => "aws-us-gov",
        Some(r) if r.starts_with("us-isob-") => "aws-us-iso-b",
        Some(r) if r.starts_with("us-iso-") => "aws-us-iso",
        _ => "aws",
    }
}

/// The existing store a report is about: a key pre-flight's, or a diagnosis's.
pub fn store_id(report: &Report) -> Option<&str> {
    report
        .target
        .custom_key_store_id
        .as_deref()
        .or(report
            .diagnosis
            .as_ref()
            .map(|d| d.custom_key_store_id.as_str()))
        .filter(|s| !s.is_empty())
}

/// The XKS proxy's URI (endpoint and path).
fn proxy_uri(report: &Report) -> Option<String> {
    let t = &report.target;
    t.xks_proxy_uri_endpoint.as_ref().map(|e| {
        format!(
            "{}{}",
            e.trim_end_matches('/'),
            t.xks_proxy_uri_path.as_deref().unwrap_or_default()
        )
    })
}

/// What a resource of a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    /// An existing custom key store.
    KeyStore,
    /// A CloudHSM cluster (of a store, or of a store about to be created).
    CloudHsmCluster,
    /// An XKS proxy (of a store about to be created).
    XksProxy,
    /// The account and Region a scan could not read.
    Account,
}

impl ResourceKind {
    /// The resource type's name, in ASFF's `AwsServiceResource` style. Security Hub has no type
    /// for any of them: ASFF findings give `Other` as the type and this name in the details.
    pub fn name(self) -> &'static str {
        match self {
            ResourceKind::KeyStore => "AwsKmsCustomKeyStore",
            ResourceKind::CloudHsmCluster => "AwsCloudHsmCluster",
            ResourceKind::XksProxy => "AwsKmsXksProxy",
            ResourceKind::Account => "AwsAccount",
        }
    }
}

/// One resource of a finding: its identifier (an ARN where AWS has one), name and details.
#[derive(Debug, Clone)]
pub struct Resource {
    pub kind: ResourceKind,
    pub id: String,
    pub name: Option<String>,
    pub partition: &'static str,
    pub region: Option<String>,
    /// Non-empty values only.
    pub details: Vec<(&'static str, String)>,
}

/// `arn:<partition>:<service>:<region>:<account>:<resource>`, with empty Region and account
/// fields where they are unknown.
fn arn(report: &Report, service: &str, resource: &str) -> String {
    let r = region(report);
    format!(
        "arn:{}:{service}:{}:{}:{resource}",
        partition(r),
        r.unwrap_or_default(),
        account(report).unwrap_or_default()
    )
}

fn details(pairs: Vec<(&'static str, Option<String>)>) -> Vec<(&'static str, String)> {
    pairs
        .into_iter()
        .filter_map(|(k, v)| v.filter(|v| !v.trim().is_empty()).map(|v| (k, v)))
        .collect()
}

/// The resources a report is about, the main one first: the store when it exists (KMS has no
/// ARN for custom key stores: `arn:<partition>:kms:<region>:<account>:custom-key-store/<id>`
/// is built in the form of KMS's key ARNs, as an identifier), then its CloudHSM cluster
/// (`arn:…:cloudhsm:…:cluster/<id>`, the form IAM documents); for a store about to be created,
/// the cluster or the XKS proxy's URI; for a scan row, the account (or the place scanned).
pub fn resources(report: &Report) -> Vec<Resource> {
    let t = &report.target;
    let r = region(report).map(str::to_string);
    let p = partition(region(report));
    let mut out = Vec::new();
    if let Some(id) = store_id(report) {
        let d = report.diagnosis.as_ref();
        out.push(Resource {
            kind: ResourceKind::KeyStore,
            id: arn(report, "kms", &format!("custom-key-store/{id}")),
            name: t
                .custom_key_store_name
                .clone()
                .or_else(|| d.map(|d| d.custom_key_store_name.clone())),
            partition: p,
            region: r.clone(),
            details: details(vec![
                ("CustomKeyStoreId", Some(id.to_string())),
                (
                    "CustomKeyStoreName",
                    t.custom_key_store_name
                        .clone()
                        .or_else(|| d.map(|d| d.custom_key_store_name.clone())),
                ),
                (
                    "CustomKeyStoreType",
                    d.map(|d| d.custom_key_store_type.clone()).or(match t.kind {
                        StoreKind::Cloudhsm => Some("AWS_CLOUDHSM".into()),
                        StoreKind::Xks => Some("EXTERNAL_KEY_STORE".into()),
                        _ => None,
                    }),
                ),
                ("ConnectionState", d.map(|d| d.connection_state.clone())),
                (
                    "ConnectionErrorCode",
                    d.and_then(|d| d.connection_error_code.clone()),
                ),
                ("CloudHsmClusterId", t.cloud_hsm_cluster_id.clone()),
                ("XksProxyUriEndpoint", t.xks_proxy_uri_endpoint.clone()),
                ("XksProxyUriPath", t.xks_proxy_uri_path.clone()),
                ("XksProxyConnectivity", t.xks_proxy_connectivity.clone()),
                ("XksKeyId", t.xks_key_id.clone()),
            ]),
        });
    }
    if let Some(cluster) = t.cloud_hsm_cluster_id.as_deref().filter(|c| !c.is_empty()) {
        out.push(Resource {
            kind: ResourceKind::CloudHsmCluster,
            id: arn(report, "cloudhsm", &format!("cluster/{cluster}")),
            name: Some(cluster.to_string()),
            partition: p,
            region: r.clone(),
            details: details(vec![
                ("ClusterId", Some(cluster.to_string())),
                (
                    "PlannedCustomKeyStoreName",
                    match store_id(report) {
                        None => t.custom_key_store_name.clone(),
                        Some(_) => None,
                    },
                ),
            ]),
        });
    }
    if store_id(report).is_none() {
        if let Some(uri) = proxy_uri(report) {
            out.push(Resource {
                kind: ResourceKind::XksProxy,
                id: uri.clone(),
                name: t.custom_key_store_name.clone(),
                partition: p,
                region: r.clone(),
                details: details(vec![
                    ("XksProxyUriEndpoint", t.xks_proxy_uri_endpoint.clone()),
                    ("XksProxyUriPath", t.xks_proxy_uri_path.clone()),
                    ("XksProxyConnectivity", t.xks_proxy_connectivity.clone()),
                    ("PlannedCustomKeyStoreName", t.custom_key_store_name.clone()),
                    ("XksKeyId", t.xks_key_id.clone()),
                ]),
            });
        }
    }
    if out.is_empty() {
        out.push(Resource {
            kind: ResourceKind::Account,
            id: match account(report) {
                Some(a) => format!("AWS::::Account:{a}"),
                None => format!("cks-doctor: {}", t.source),
            },
            name: None,
            partition: p,
            region: r,
            details: details(vec![("Place", Some(t.source.clone()))]),
        });
    }
    out
}

/// What a finding is about, as its id writes it: the store id, `cloudhsm-cluster/<id>` or
/// `xks-proxy/<uri>` for a store about to be created, `scan/<place>` for a scan row; a key
/// pre-flight's checks of an external key add `/xks-key/<id>`.
fn subject(report: &Report, c: &CheckResult) -> String {
    let t = &report.target;
    let mut s = match (store_id(report), &t.cloud_hsm_cluster_id, proxy_uri(report)) {
        (Some(id), _, _) => id.to_string(),
        (None, Some(cluster), _) => format!("cloudhsm-cluster/{cluster}"),
        (None, None, Some(uri)) => format!("xks-proxy/{uri}"),
        (None, None, None) => format!("scan/{}", t.source),
    };
    let key_check = crate::meta::get(&c.id).is_some_and(|m| m.create_key);
    if let (true, Some(key)) = (key_check, &t.xks_key_id) {
        s.push_str(&format!("/xks-key/{key}"));
    }
    s
}

/// The longest id ASFF accepts.
pub const MAX_ID: usize = 512;

/// The finding's id: `cks-doctor/<account>/<region>/<subject>/<check id>`, from what the
/// finding is about only (no time, nothing random), so that a re-run, or a scan after a
/// diagnose, updates the same finding. A subject too long for 512 characters is replaced by
/// its SHA-256.
pub fn finding_id(report: &Report, c: &CheckResult) -> String {
    let account = account(report).unwrap_or("unknown-account");
    let region = region(report).unwrap_or("unknown-region");
    let subject = subject(report, c);
    let id = format!("cks-doctor/{account}/{region}/{subject}/{}", c.id);
    if id.len() <= MAX_ID && !id.chars().any(char::is_control) {
        return id;
    }
    let digest: String = Sha256::digest(subject.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    truncate(
        &format!("cks-doctor/{account}/{region}/sha256-{digest}/{}", c.id),
        MAX_ID,
    )
}

/// The text of a finding: the check's message, with the KMS names it predicts when it fails
/// or warns, and "could not check" / "needs a human" made explicit.
pub fn description(c: &CheckResult) -> String {
    let mut names = String::new();
    if !c.kms_exceptions.is_empty() {
        names.push_str(&format!(
            " KMS exceptions: {}.",
            crate::codes::join(&c.kms_exceptions, ", ")
        ));
    }
    if !c.connection_error_codes.is_empty() {
        names.push_str(&format!(
            " ConnectionErrorCodes: {}.",
            crate::codes::join(&c.connection_error_codes, ", ")
        ));
    }
    match c.status {
        Status::Fail | Status::Warn => format!("{}.{names}", c.message.trim_end_matches('.')),
        Status::Error => super::markdown::could_not_check(&c.message),
        Status::Manual => format!("Needs a human: {}", c.message),
        Status::Skip => format!("Skipped: {}", c.message),
        Status::Pass => c.message.clone(),
    }
}

/// The remediation of a finding: the result's own, else its check's.
pub fn remediation(c: &CheckResult) -> Option<String> {
    c.remediation
        .clone()
        .or_else(|| crate::meta::get(&c.id).map(|m| m.remediation.clone()))
        .filter(|r| !r.trim().is_empty())
}

/// The check's references that are absolute https URLs.
pub fn references(c: &CheckResult) -> Vec<String> {
    crate::meta::get(&c.id)
        .map(|m| {
            m.references
                .iter()
                .filter(|u| u.starts_with("https://") && !u.chars().any(char::is_whitespace))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// `high`, as the metadata writes a severity.
pub fn severity_name(s: Severity) -> String {
    format!("{s:?}").to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_cuts_on_a_char_boundary() {
        assert_eq!(truncate("abc", 3), "abc");
        let s = "ééééé"; // 10 bytes
        let t = truncate(s, 6);
        assert!(t.len() <= 6, "{t}");
        assert!(t.ends_with('…'));
        assert_eq!(truncate("", 5), "");
    }

    #[test]
    fn partitions() {
        assert_eq!(partition(Some("cn-north-1")), "aws-cn");
        assert_eq!(partition(Some("us-gov-west-1")), "aws-us-gov");
        assert_eq!(partition(Some("eu-west-1")), "aws");
        assert_eq!(partition(None), "aws");
    }

    #[test]
    fn rfc3339_has_milliseconds_and_z() {
        let t = time::OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).unwrap();
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20.123Z");
    }
}
