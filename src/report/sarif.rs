//! SARIF 2.1.0 (valid against the OASIS schema; `tests/it/formats.rs` checks it): one run whose
//! driver lists every check that appears in any report as a rule, and one result per check
//! that needs attention:
//!
//! | status | result |
//! |---|---|
//! | FAIL | level `error` |
//! | WARN | level `warning` |
//! | ERROR | level `note`, "could not check: …" |
//! | MANUAL | kind `review` (level `none`): a human must verify it |
//! | PASS, SKIP | no result |
//!
//! Each result names the store in a logical location (kind `resource`): its `name` is the
//! store's label, its `fullyQualifiedName` Region/kind/cluster-or-endpoint/store.

use super::markdown::{could_not_check, outlook_label, resource, store_label};
use super::{CheckResult, Report};
use crate::checks::Status;
use serde_json::{json, Map, Value};

/// The schema every SARIF 2.1.0 log names.
pub const SCHEMA_URI: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

/// Where to read about the tool: the package's homepage or repository when Cargo.toml names
/// one, else AWS's page on custom key stores.
fn information_uri() -> &'static str {
    let home = env!("CARGO_PKG_HOMEPAGE");
    let repo = env!("CARGO_PKG_REPOSITORY");
    if !home.is_empty() {
        home
    } else if !repo.is_empty() {
        repo
    } else {
        "https://docs.aws.amazon.com/kms/latest/developerguide/key-store-overview.html"
    }
}

fn severity_name(s: crate::meta::Severity) -> String {
    format!("{s:?}").to_lowercase()
}

/// A URI that the schema's `format: uri` accepts: absolute, no whitespace.
fn is_uri(s: &str) -> bool {
    (s.starts_with("https://") || s.starts_with("http://"))
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn rule(c: &CheckResult) -> Value {
    let meta = crate::meta::get(&c.id);
    let description = meta
        .map(|m| m.description.clone())
        .unwrap_or_else(|| c.title.clone());
    let remediation = meta
        .map(|m| m.remediation.clone())
        .or_else(|| c.remediation.clone());
    let exceptions = meta
        .map(|m| m.kms_exceptions.clone())
        .unwrap_or_else(|| c.kms_exceptions.clone());
    let codes = meta
        .map(|m| m.connection_error_codes.clone())
        .unwrap_or_else(|| c.connection_error_codes.clone());
    let severity = meta.map(|m| m.severity).or(c.severity);
    let mut r = Map::new();
    r.insert("id".into(), json!(c.id));
    r.insert("shortDescription".into(), json!({ "text": c.title }));
    r.insert("fullDescription".into(), json!({ "text": description }));
    if let Some(fix) = &remediation {
        let mut markdown = fix.clone();
        let refs: Vec<&String> = meta
            .map(|m| m.references.iter().filter(|u| is_uri(u)).collect())
            .unwrap_or_default();
        if !refs.is_empty() {
            markdown.push_str("\n\nReferences:\n");
            for u in &refs {
                markdown.push_str(&format!("\n- <{u}>"));
            }
        }
        r.insert("help".into(), json!({ "text": fix, "markdown": markdown }));
    }
    if let Some(u) = meta.and_then(|m| m.references.iter().find(|u| is_uri(u))) {
        r.insert("helpUri".into(), json!(u));
    }
    let level = match severity {
        Some(crate::meta::Severity::Critical | crate::meta::Severity::High) => "error",
        Some(crate::meta::Severity::Medium) => "warning",
        _ => "note",
    };
    r.insert("defaultConfiguration".into(), json!({ "level": level }));
    let mut props = Map::new();
    props.insert("kms_exceptions".into(), json!(exceptions));
    props.insert("connection_error_codes".into(), json!(codes));
    if let Some(s) = severity {
        props.insert("severity".into(), json!(severity_name(s)));
    }
    props.insert("area".into(), json!(c.area));
    if let Some(m) = meta {
        props.insert(
            "store_kind".into(),
            json!(format!("{:?}", m.kind).to_lowercase()),
        );
        props.insert("advisory".into(), json!(m.advisory));
    }
    let mut tags = vec![c.area.clone()];
    if c.advisory || meta.is_some_and(|m| m.advisory) {
        tags.push("advisory".into());
    }
    props.insert("tags".into(), json!(tags));
    r.insert("properties".into(), Value::Object(props));
    Value::Object(r)
}

/// "; KMS exceptions: A, B; ConnectionErrorCodes: C", or empty.
fn names(c: &CheckResult) -> String {
    let mut out = String::new();
    if !c.kms_exceptions.is_empty() {
        out.push_str(&format!(
            " KMS exceptions: {}.",
            crate::codes::join(&c.kms_exceptions, ", ")
        ));
    }
    if !c.connection_error_codes.is_empty() {
        out.push_str(&format!(
            " ConnectionErrorCodes: {}.",
            crate::codes::join(&c.connection_error_codes, ", ")
        ));
    }
    out
}

fn logical_location(report: &Report) -> Value {
    let t = &report.target;
    let store = report
        .diagnosis
        .as_ref()
        .map(|d| d.custom_key_store_id.clone())
        .or_else(|| t.custom_key_store_name.clone());
    let fqn: Vec<String> = [
        t.region.clone(),
        Some(t.kind.to_string()),
        resource(report),
        store,
    ]
    .into_iter()
    .flatten()
    .filter(|s| !s.is_empty())
    .collect();
    json!({
        "name": store_label(report),
        "fullyQualifiedName": fqn.join("/"),
        "kind": "resource",
    })
}

fn result(report: &Report, c: &CheckResult, rule_index: usize) -> Option<Value> {
    let (level, kind, text) = match c.status {
        Status::Fail => ("error", "fail", format!("{}{}", c.message, names(c))),
        Status::Warn => ("warning", "fail", format!("{}{}", c.message, names(c))),
        Status::Error => ("note", "fail", could_not_check(&c.message)),
        Status::Manual => ("none", "review", format!("needs a human: {}", c.message)),
        Status::Pass | Status::Skip => return None,
    };
    let mut props = Map::new();
    props.insert("status".into(), json!(c.status.as_str()));
    props.insert("store".into(), json!(store_label(report)));
    props.insert("title".into(), json!(c.title));
    props.insert("kms_exceptions".into(), json!(c.kms_exceptions));
    props.insert(
        "connection_error_codes".into(),
        json!(c.connection_error_codes),
    );
    if !c.evidence.is_empty() {
        props.insert("evidence".into(), json!(c.evidence));
    }
    if let Some(fix) = &c.remediation {
        props.insert("remediation".into(), json!(fix));
    }
    Some(json!({
        "ruleId": c.id,
        "ruleIndex": rule_index,
        "kind": kind,
        "level": level,
        "message": { "text": text },
        "locations": [ { "logicalLocations": [ logical_location(report) ] } ],
        "properties": Value::Object(props),
    }))
}

/// The SARIF log as a JSON value (what [`render`] prints).
pub fn to_value(reports: &[Report]) -> Value {
    let mut rules: Vec<Value> = Vec::new();
    let mut rule_ids: Vec<&str> = Vec::new();
    for c in reports.iter().flat_map(|r| &r.checks) {
        if !rule_ids.contains(&c.id.as_str()) {
            rule_ids.push(&c.id);
            rules.push(rule(c));
        }
    }
    let mut results = Vec::new();
    for r in reports {
        for c in &r.checks {
            let index = rule_ids
                .iter()
                .position(|id| *id == c.id)
                .expect("every check has a rule");
            results.extend(result(r, c, index));
        }
    }
    let stores: Vec<Value> = reports
        .iter()
        .map(|r| {
            let mut s = json!({
                "store": store_label(r),
                "kind": r.target.kind,
                "operation": r.target.operation,
                "source": r.target.source,
                "outlook": outlook_label(r.verdict.outlook),
                "verdict": r.verdict.text,
                "summary": r.summary,
            });
            if let Some(d) = &r.diagnosis {
                s["connection_state"] = json!(d.connection_state);
                s["connection_error_code"] = json!(d.connection_error_code);
                s["diagnosis"] = json!(d.text);
            }
            s
        })
        .collect();
    json!({
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [ {
            "tool": { "driver": {
                "name": "cks-doctor",
                "version": env!("CARGO_PKG_VERSION"),
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "informationUri": information_uri(),
                "rules": rules,
            } },
            "results": results,
            "properties": { "stores": stores },
        } ],
    })
}

pub fn render(reports: &[Report]) -> String {
    let mut s = serde_json::to_string_pretty(&to_value(reports)).expect("SARIF serializes");
    s.push('\n');
    s
}
