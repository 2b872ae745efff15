//! OCSF 1.3.0 Compliance Finding events (class `compliance_finding`, `class_uid` 2003, category
//! Findings, `category_uid` 2, with the `cloud` profile): a JSON array, one event per check per
//! store — the same findings as ASFF (`findings.rs` for the shared rules), each valid against
//! the class's JSON Schema (`tests/it/findings.rs`, schema in `tests/fixtures/formats/`).
//!
//! | status | activity_id | status_id (finding) | compliance.status_id | severity_id |
//! |---|---|---|---|---|
//! | FAIL | 1 Create | 1 New | 3 Fail | the check's: 5 Critical … 1 Informational |
//! | WARN | 1 Create | 1 New | 2 Warning | one step below the check's |
//! | ERROR | 1 Create | 1 New | 99 Other ("Could not check") | one step below the check's |
//! | MANUAL | 1 Create | 1 New | 2 Warning | 1 Informational |
//! | PASS | 3 Close | 4 Resolved | 1 Pass | 1 Informational |
//! | SKIP | 3 Close | 99 Other ("Not applicable") | 99 Other ("Not applicable") | 1 Informational |
//!
//! `type_uid` is `class_uid * 100 + activity_id`. `finding_info.uid` is the ASFF `Id` (stable
//! across runs), `finding_info.analytic` the check (a rule); `compliance.control` the check id,
//! `compliance.requirements` from `compliance/*.json`, `compliance.standards` "AWS KMS custom
//! key store prerequisites" (what every check verifies, from KMS's documentation) and the
//! mapped frameworks; `compliance.status_code` cks-doctor's status. `cloud` names AWS, the
//! Region and the account (left out when unknown: OCSF requires neither); `resources` the store
//! (its ARN as `uid`), its cluster or, for a store about to be created, the cluster or proxy;
//! `unmapped` the KMS exceptions and ConnectionErrorCodes the check predicts.

use super::findings::{self, Level, Resource};
use super::{CheckResult, Report};
use crate::results::Status;
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

pub const OCSF_VERSION: &str = "1.3.0";
pub const CLASS_UID: u32 = 2003;
pub const CATEGORY_UID: u32 = 2;

/// The standard every check verifies, first in `compliance.standards`.
pub const KMS_STANDARD: &str = "AWS KMS custom key store prerequisites";

fn severity_id(l: Level) -> (u32, &'static str) {
    match l {
        Level::Informational => (1, "Informational"),
        Level::Low => (2, "Low"),
        Level::Medium => (3, "Medium"),
        Level::High => (4, "High"),
        Level::Critical => (5, "Critical"),
    }
}

/// (activity_id, activity_name)
fn activity(s: Status) -> (u32, &'static str) {
    if findings::is_open(s) {
        (1, "Create")
    } else {
        (3, "Close")
    }
}

/// (status_id, status) of the finding.
fn finding_status(s: Status) -> (u32, &'static str) {
    match s {
        Status::Pass => (4, "Resolved"),
        Status::Skip => (99, "Not applicable"),
        _ => (1, "New"),
    }
}

/// (compliance.status_id, compliance.status)
fn compliance_status(s: Status) -> (u32, &'static str) {
    match s {
        Status::Pass => (1, "Pass"),
        Status::Warn | Status::Manual => (2, "Warning"),
        Status::Fail => (3, "Fail"),
        Status::Error => (99, "Could not check"),
        Status::Skip => (99, "Not applicable"),
    }
}

fn resource(r: &Resource) -> Value {
    let mut v = Map::new();
    v.insert("uid".into(), json!(r.id));
    if let Some(n) = &r.name {
        v.insert("name".into(), json!(n));
    }
    v.insert("type".into(), json!(r.kind.name()));
    v.insert("cloud_partition".into(), json!(r.partition));
    if let Some(region) = &r.region {
        v.insert("region".into(), json!(region));
    }
    if !r.details.is_empty() {
        let data: Map<String, Value> = r
            .details
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        v.insert("data".into(), Value::Object(data));
    }
    Value::Object(v)
}

fn event(report: &Report, c: &CheckResult, now_ms: i64) -> Value {
    let level = findings::level(c);
    let (severity_id, severity) = severity_id(level);
    let (activity_id, activity_name) = activity(c.status);
    let (status_id, status) = finding_status(c.status);
    let (cstatus_id, cstatus) = compliance_status(c.status);
    let requirements = crate::compliance::for_check(&c.id);
    let mut standards = vec![KMS_STANDARD.to_string()];
    for r in &requirements {
        if !standards.contains(&r.framework.name) {
            standards.push(r.framework.name.clone());
        }
    }
    let mut compliance = Map::new();
    compliance.insert("control".into(), json!(c.id));
    compliance.insert("standards".into(), json!(standards));
    if !requirements.is_empty() {
        compliance.insert(
            "requirements".into(),
            json!(requirements.iter().map(|r| r.label()).collect::<Vec<_>>()),
        );
    }
    compliance.insert("status_id".into(), json!(cstatus_id));
    compliance.insert("status".into(), json!(cstatus));
    compliance.insert("status_code".into(), json!(c.status.as_str()));
    compliance.insert("status_detail".into(), json!(c.message));

    let mut analytic = Map::new();
    analytic.insert("uid".into(), json!(c.id));
    analytic.insert("name".into(), json!(c.title));
    analytic.insert("type_id".into(), json!(1));
    analytic.insert("type".into(), json!("Rule"));
    analytic.insert("category".into(), json!(c.area));
    if let Some(m) = crate::meta::get(&c.id) {
        analytic.insert("desc".into(), json!(m.description));
    }
    analytic.insert("version".into(), json!(report.tool.version));

    let mut types = vec![super::asff::BEST_PRACTICES_TYPE.to_string()];
    for r in &requirements {
        if let Some(t) = &r.framework.asff_type {
            if !types.contains(t) {
                types.push(t.clone());
            }
        }
    }
    let mut finding_info = Map::new();
    finding_info.insert("uid".into(), json!(findings::finding_id(report, c)));
    finding_info.insert("title".into(), json!(c.title));
    finding_info.insert("desc".into(), json!(findings::description(c)));
    finding_info.insert("types".into(), json!(types));
    finding_info.insert("analytic".into(), Value::Object(analytic));
    finding_info.insert("created_time".into(), json!(now_ms));
    finding_info.insert("modified_time".into(), json!(now_ms));
    let refs = findings::references(c);
    if let Some(u) = refs.first() {
        finding_info.insert("src_url".into(), json!(u));
    }

    let mut cloud = Map::new();
    cloud.insert("provider".into(), json!("AWS"));
    if let Some(r) = findings::region(report) {
        cloud.insert("region".into(), json!(r));
    }
    if let Some(a) = findings::account(report) {
        cloud.insert(
            "account".into(),
            json!({ "uid": a, "type_id": 10, "type": "AWS Account" }),
        );
    }

    let mut e = Map::new();
    e.insert("activity_id".into(), json!(activity_id));
    e.insert("activity_name".into(), json!(activity_name));
    e.insert("category_uid".into(), json!(CATEGORY_UID));
    e.insert("category_name".into(), json!("Findings"));
    e.insert("class_uid".into(), json!(CLASS_UID));
    e.insert("class_name".into(), json!("Compliance Finding"));
    e.insert("type_uid".into(), json!(CLASS_UID * 100 + activity_id));
    e.insert(
        "type_name".into(),
        json!(format!("Compliance Finding: {activity_name}")),
    );
    e.insert("time".into(), json!(now_ms));
    e.insert("severity_id".into(), json!(severity_id));
    e.insert("severity".into(), json!(severity));
    e.insert("status_id".into(), json!(status_id));
    e.insert("status".into(), json!(status));
    e.insert("status_code".into(), json!(c.status.as_str()));
    e.insert("message".into(), json!(findings::description(c)));
    e.insert(
        "metadata".into(),
        json!({
            "version": OCSF_VERSION,
            "profiles": ["cloud"],
            "product": {
                "name": "cks-doctor",
                "vendor_name": "cks-doctor",
                "version": report.tool.version,
            },
        }),
    );
    e.insert("cloud".into(), Value::Object(cloud));
    e.insert("finding_info".into(), Value::Object(finding_info));
    e.insert("compliance".into(), Value::Object(compliance));
    let resources: Vec<Value> = findings::resources(report).iter().map(resource).collect();
    e.insert("resources".into(), json!(resources));
    if let Some(fix) = findings::remediation(c) {
        let mut r = Map::new();
        r.insert("desc".into(), json!(fix));
        if !refs.is_empty() {
            r.insert("references".into(), json!(refs));
        }
        e.insert("remediation".into(), Value::Object(r));
    }
    let mut unmapped = Map::new();
    unmapped.insert(
        "kms_exceptions".into(),
        json!(c
            .kms_exceptions
            .iter()
            .map(|x| x.as_str())
            .collect::<Vec<_>>()),
    );
    unmapped.insert(
        "connection_error_codes".into(),
        json!(c
            .connection_error_codes
            .iter()
            .map(|x| x.as_str())
            .collect::<Vec<_>>()),
    );
    if let Some(s) = findings::check_severity(c) {
        unmapped.insert("check_severity".into(), json!(findings::severity_name(s)));
    }
    if !c.evidence.is_empty() {
        unmapped.insert("evidence".into(), json!(c.evidence));
    }
    let t = &report.target;
    unmapped.insert("store_kind".into(), json!(t.kind.to_string()));
    unmapped.insert("operation".into(), json!(t.operation));
    unmapped.insert("source".into(), json!(t.source));
    if let Some(d) = &report.diagnosis {
        unmapped.insert("connection_state".into(), json!(d.connection_state));
        if let Some(code) = &d.connection_error_code {
            unmapped.insert("connection_error_code".into(), json!(code));
        }
    }
    e.insert("unmapped".into(), Value::Object(unmapped));
    Value::Object(e)
}

/// Every event, in report and check order, at a given time.
pub fn to_value_at(reports: &[Report], now: OffsetDateTime) -> Value {
    let now_ms = (now.unix_timestamp_nanos() / 1_000_000) as i64;
    Value::Array(
        reports
            .iter()
            .flat_map(|r| r.checks.iter().map(move |c| event(r, c, now_ms)))
            .collect(),
    )
}

pub fn to_value(reports: &[Report]) -> Value {
    to_value_at(reports, OffsetDateTime::now_utc())
}

pub fn render(reports: &[Report]) -> String {
    let mut s = serde_json::to_string_pretty(&to_value(reports)).expect("OCSF serializes");
    s.push('\n');
    s
}
