//! AWS Security Finding Format (ASFF, `SchemaVersion` 2018-10-08): the request document
//! `aws securityhub batch-import-findings --cli-input-json file://findings.json` takes,
//! `{"Findings": [...]}`, one finding per check per store (every status: see `findings.rs` for
//! severity, `Compliance.Status`, `RecordState` and `Workflow` per status), valid against
//! Security Hub's API model (`tests/it/findings.rs` checks it against botocore's).
//!
//! - `Id`: `cks-doctor/<account>/<region>/<store or target>/<check id>`, stable across runs, so
//!   that a re-import updates a finding (a FAILED one becomes PASSED and ARCHIVED).
//! - `ProductArn`: `arn:aws:securityhub:<region>:<account>:product/<account>/default` (a
//!   custom integration); `GeneratorId` the check id; `Types` "Software and Configuration
//!   Checks/AWS Security Best Practices", plus each mapped framework's type.
//! - `Severity` (and `FindingProviderFields.Severity`, which Security Hub takes on updates):
//!   the label from the check's severity and status, `Original` the check's severity.
//! - `Title` (≤ 256) the check's title, `Description` (≤ 1024) its message with the KMS
//!   exceptions and ConnectionErrorCodes it predicts, `Remediation.Recommendation` its fix
//!   (≤ 512) and first reference; cut on character boundaries.
//! - `Resources`: `Other` (Security Hub has no type for custom key stores), with the name
//!   cks-doctor gives the type (`AwsKmsCustomKeyStore`, `AwsCloudHsmCluster`,
//!   `AwsKmsXksProxy`) in `Details.Other`; a scan row that could not be read is about the
//!   account (`AwsAccount`).
//! - `Compliance`: the status, and `RelatedRequirements` from `compliance/*.json`
//!   ("NIST.800-53.r5 SC-12").
//! - `ProductFields`: `cks-doctor/…` keys: check id, status, severity, KMS exceptions,
//!   ConnectionErrorCodes, the store's state, tool version.
//!
//! When the report does not know the account (a snapshot run without
//! `sts-get-caller-identity.json`), `AwsAccountId` and the product ARN's account are
//! `000000000000` and `ProductFields["cks-doctor/AccountUnknown"]` says so: BatchImportFindings
//! refuses such findings (the caller's account must be the finding's), so they can never land
//! in a wrong account; the resource ARNs leave the account field empty.

use super::findings::{self, Resource};
use super::{CheckResult, Report};
use crate::results::Status;
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

pub const SCHEMA_VERSION: &str = "2018-10-08";

/// `AwsAccountId` when the account is unknown: twelve digits, as the field requires, that no
/// account has.
pub const PLACEHOLDER_ACCOUNT: &str = "000000000000";

/// Every finding's first type.
pub const BEST_PRACTICES_TYPE: &str =
    "Software and Configuration Checks/AWS Security Best Practices";

/// ASFF's limits (Security Hub API reference): characters, kept as UTF-8 bytes here.
const MAX_TITLE: usize = 256;
const MAX_DESCRIPTION: usize = 1024;
const MAX_RECOMMENDATION: usize = 512;
const MAX_FIELD_KEY: usize = 128;
const MAX_FIELD_VALUE: usize = 2048;
const MAX_REQUIREMENTS: usize = 32;
const MAX_RESOURCES: usize = 32;
const MAX_REGION: usize = 16;

fn compliance_status(s: Status) -> &'static str {
    match s {
        Status::Pass => "PASSED",
        Status::Fail => "FAILED",
        Status::Warn | Status::Manual => "WARNING",
        Status::Error | Status::Skip => "NOT_AVAILABLE",
    }
}

/// A FieldMap: non-empty keys and values within Security Hub's lengths.
fn field_map(pairs: impl IntoIterator<Item = (String, String)>) -> Value {
    let mut m = Map::new();
    for (k, v) in pairs {
        if k.trim().is_empty() || v.trim().is_empty() || m.len() >= 50 {
            continue;
        }
        m.insert(
            findings::truncate(&k, MAX_FIELD_KEY),
            json!(findings::truncate(&v, MAX_FIELD_VALUE)),
        );
    }
    Value::Object(m)
}

fn resource(r: &Resource) -> Value {
    let mut v = Map::new();
    v.insert(
        "Type".into(),
        json!(match r.kind {
            findings::ResourceKind::Account if r.id.starts_with("AWS::::Account:") => "AwsAccount",
            _ => "Other",
        }),
    );
    v.insert("Id".into(), json!(r.id));
    v.insert("Partition".into(), json!(r.partition));
    if let Some(region) = r.region.as_deref().filter(|x| x.len() <= MAX_REGION) {
        v.insert("Region".into(), json!(region));
    }
    let mut other: Vec<(String, String)> = vec![("ResourceType".into(), r.kind.name().into())];
    if let Some(n) = &r.name {
        other.push(("Name".into(), n.clone()));
    }
    other.extend(r.details.iter().map(|(k, v)| (k.to_string(), v.clone())));
    v.insert("Details".into(), json!({ "Other": field_map(other) }));
    Value::Object(v)
}

fn finding(report: &Report, c: &CheckResult, now: &str) -> Value {
    let region = findings::region(report);
    let partition = findings::partition(region);
    let known = findings::account(report);
    let account = known.unwrap_or(PLACEHOLDER_ACCOUNT);
    let level = findings::level(c);
    let severity = findings::check_severity(c);
    let requirements = crate::compliance::for_check(&c.id);
    let mut types = vec![BEST_PRACTICES_TYPE.to_string()];
    for r in &requirements {
        if let Some(t) = &r.framework.asff_type {
            if !types.contains(t) {
                types.push(t.clone());
            }
        }
    }
    let mut sev = Map::new();
    sev.insert("Label".into(), json!(level.asff()));
    if let Some(s) = severity {
        sev.insert("Original".into(), json!(findings::severity_name(s)));
    }
    let sev = Value::Object(sev);

    let mut f = Map::new();
    f.insert("SchemaVersion".into(), json!(SCHEMA_VERSION));
    f.insert("Id".into(), json!(findings::finding_id(report, c)));
    f.insert(
        "ProductArn".into(),
        json!(format!(
            "arn:{partition}:securityhub:{}:{account}:product/{account}/default",
            region.unwrap_or_default()
        )),
    );
    f.insert("ProductName".into(), json!("cks-doctor"));
    f.insert("CompanyName".into(), json!("cks-doctor"));
    if let Some(r) = region.filter(|r| r.len() <= MAX_REGION) {
        f.insert("Region".into(), json!(r));
    }
    f.insert("GeneratorId".into(), json!(c.id));
    f.insert("AwsAccountId".into(), json!(account));
    f.insert("Types".into(), json!(types));
    f.insert("CreatedAt".into(), json!(now));
    f.insert("UpdatedAt".into(), json!(now));
    f.insert("Severity".into(), sev.clone());
    f.insert(
        "Title".into(),
        json!(findings::truncate(
            if c.title.trim().is_empty() {
                &c.id
            } else {
                &c.title
            },
            MAX_TITLE
        )),
    );
    let description = findings::description(c);
    f.insert(
        "Description".into(),
        json!(findings::truncate(
            if description.trim().is_empty() {
                &c.id
            } else {
                &description
            },
            MAX_DESCRIPTION
        )),
    );
    let mut recommendation = Map::new();
    if let Some(fix) = findings::remediation(c) {
        recommendation.insert(
            "Text".into(),
            json!(findings::truncate(&fix, MAX_RECOMMENDATION)),
        );
    }
    if let Some(u) = findings::references(c).first() {
        recommendation.insert("Url".into(), json!(u));
    }
    if !recommendation.is_empty() {
        f.insert(
            "Remediation".into(),
            json!({ "Recommendation": Value::Object(recommendation) }),
        );
    }
    let t = &report.target;
    let d = report.diagnosis.as_ref();
    let mut fields: Vec<(String, String)> = vec![
        ("cks-doctor/CheckId".into(), c.id.clone()),
        ("cks-doctor/Status".into(), c.status.as_str().into()),
        (
            "cks-doctor/Severity".into(),
            severity.map(findings::severity_name).unwrap_or_default(),
        ),
        ("cks-doctor/Area".into(), c.area.clone()),
        ("cks-doctor/StoreKind".into(), t.kind.to_string()),
        ("cks-doctor/Operation".into(), t.operation.clone()),
        (
            "cks-doctor/KmsExceptions".into(),
            crate::codes::join(&c.kms_exceptions, ", "),
        ),
        (
            "cks-doctor/ConnectionErrorCodes".into(),
            crate::codes::join(&c.connection_error_codes, ", "),
        ),
        (
            "cks-doctor/MappingNotes".into(),
            c.mapping_notes
                .iter()
                .map(|n| n.line())
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        ("cks-doctor/Evidence".into(), c.evidence.join("\n")),
        (
            "cks-doctor/StoreConnectionState".into(),
            d.map(|d| d.connection_state.clone()).unwrap_or_default(),
        ),
        (
            "cks-doctor/StoreConnectionErrorCode".into(),
            d.and_then(|d| d.connection_error_code.clone())
                .unwrap_or_default(),
        ),
        ("cks-doctor/Source".into(), t.source.clone()),
        ("cks-doctor/Version".into(), report.tool.version.clone()),
    ];
    if known.is_none() {
        fields.push((
            "cks-doctor/AccountUnknown".into(),
            "true: the report does not name its AWS account; AwsAccountId is a placeholder and BatchImportFindings will refuse the finding".into(),
        ));
    }
    f.insert("ProductFields".into(), field_map(fields));
    let resources: Vec<Value> = findings::resources(report)
        .iter()
        .take(MAX_RESOURCES)
        .map(resource)
        .collect();
    f.insert("Resources".into(), json!(resources));
    let mut compliance = Map::new();
    compliance.insert("Status".into(), json!(compliance_status(c.status)));
    let related: Vec<String> = requirements
        .iter()
        .map(|r| r.label())
        .take(MAX_REQUIREMENTS)
        .collect();
    if !related.is_empty() {
        compliance.insert("RelatedRequirements".into(), json!(related));
    }
    f.insert("Compliance".into(), Value::Object(compliance));
    let open = findings::is_open(c.status);
    f.insert(
        "RecordState".into(),
        json!(if open { "ACTIVE" } else { "ARCHIVED" }),
    );
    f.insert(
        "Workflow".into(),
        json!({ "Status": if open { "NEW" } else { "RESOLVED" } }),
    );
    f.insert(
        "FindingProviderFields".into(),
        json!({ "Severity": sev, "Types": types }),
    );
    Value::Object(f)
}

/// The findings of every report, in report and check order.
pub fn findings_at(reports: &[Report], now: OffsetDateTime) -> Vec<Value> {
    let now = findings::rfc3339(now);
    reports
        .iter()
        .flat_map(|r| r.checks.iter().map(move |c| (r, c)))
        .map(|(r, c)| finding(r, c, &now))
        .collect()
}

/// The BatchImportFindings request, `{"Findings": [...]}`, at a given time.
pub fn to_value_at(reports: &[Report], now: OffsetDateTime) -> Value {
    json!({ "Findings": findings_at(reports, now) })
}

pub fn to_value(reports: &[Report]) -> Value {
    to_value_at(reports, OffsetDateTime::now_utc())
}

pub fn render(reports: &[Report]) -> String {
    let mut s = serde_json::to_string_pretty(&to_value(reports)).expect("ASFF serializes");
    s.push('\n');
    s
}
