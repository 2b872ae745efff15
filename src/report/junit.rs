//! JUnit XML for CI dashboards: one `<testsuite>` per report (store), one `<testcase>` per
//! check.
//!
//! | status | JUnit |
//! |---|---|
//! | PASS | passed (the message in system-out) |
//! | FAIL | `<failure>`: the message with the KMS exceptions and ConnectionErrorCodes it predicts |
//! | WARN | passed, system-out starting with `WARNING:` |
//! | ERROR | `<error>`: could not check, and why |
//! | SKIP, MANUAL | `<skipped>` with the reason (MANUAL: what to verify by hand) |

use super::markdown::{could_not_check, outlook_label, resource, store_label};
use super::{CheckResult, Report};
use crate::checks::Status;
use quick_junit::{NonSuccessKind, Property, TestCase, TestCaseStatus, TestSuite};
use std::time::Duration;

/// "KMS: A, B; ConnectionErrorCode: C", or empty.
fn names(c: &CheckResult) -> String {
    let mut parts = Vec::new();
    if !c.kms_exceptions.is_empty() {
        parts.push(format!(
            "KMS: {}",
            crate::codes::join(&c.kms_exceptions, ", ")
        ));
    }
    if !c.connection_error_codes.is_empty() {
        parts.push(format!(
            "ConnectionErrorCode: {}",
            crate::codes::join(&c.connection_error_codes, ", ")
        ));
    }
    parts.join("; ")
}

/// Evidence, fix and where to read more, as the text of a failure or system-out.
fn details(c: &CheckResult) -> String {
    let mut out = String::new();
    for e in &c.evidence {
        out.push_str(&format!("- {e}\n"));
    }
    if let Some(fix) = &c.remediation {
        out.push_str(&format!("Fix: {fix}\n"));
    }
    out.push_str(&format!("(cks-doctor explain {})\n", c.id));
    out
}

/// Names are attributes shown on one line.
fn one_line(s: &str) -> String {
    s.replace(['\r', '\n', '\t'], " ")
}

fn area_slug(area: &str) -> String {
    area.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

fn test_case(report: &Report, c: &CheckResult) -> TestCase {
    let status = match c.status {
        Status::Pass | Status::Warn => TestCaseStatus::success(),
        Status::Fail => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            let n = names(c);
            let message = if n.is_empty() {
                c.message.clone()
            } else {
                format!("{} — {n}", c.message)
            };
            let ty = c
                .kms_exceptions
                .iter()
                .chain(&c.connection_error_codes)
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            s.set_message(message)
                .set_type(if ty.is_empty() { "FAIL".into() } else { ty })
                .set_description(details(c));
            s
        }
        Status::Error => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
            s.set_message(could_not_check(&c.message))
                .set_type("ERROR")
                .set_description(details(c));
            s
        }
        Status::Skip => {
            let mut s = TestCaseStatus::skipped();
            s.set_message(format!("skipped: {}", c.message))
                .set_type("SKIP");
            s
        }
        Status::Manual => {
            let mut s = TestCaseStatus::skipped();
            s.set_message(format!("manual check: {}", c.message))
                .set_type("MANUAL")
                .set_description(details(c));
            s
        }
    };
    let mut tc = TestCase::new(one_line(&format!("{}: {}", c.id, c.title)), status);
    tc.set_classname(format!(
        "cks-doctor.{}.{}",
        area_slug(report.target.kind.as_str()),
        area_slug(&c.area)
    ))
    .set_time(Duration::from_millis(c.duration_ms));
    match c.status {
        Status::Pass => {
            tc.set_system_out(format!("{}\n", c.message));
        }
        Status::Warn => {
            let n = names(c);
            let n = if n.is_empty() {
                String::new()
            } else {
                format!(" ({n})")
            };
            tc.set_system_out(format!("WARNING: {}{n}\n{}", c.message, details(c)));
        }
        _ => {}
    }
    tc.add_property(Property::new("status", c.status.as_str()));
    if let Some(s) = c.severity {
        tc.add_property(Property::new("severity", format!("{s:?}").to_lowercase()));
    }
    tc
}

fn test_suite(report: &Report) -> TestSuite {
    let t = &report.target;
    let mut suite = TestSuite::new(one_line(&store_label(report)));
    let mut props: Vec<(&str, String)> = vec![
        ("kind", t.kind.to_string()),
        ("operation", t.operation.clone()),
        ("source", t.source.clone()),
    ];
    if let Some(r) = resource(report) {
        props.push(("resource", r));
    }
    for (k, v) in [
        ("custom_key_store_name", &t.custom_key_store_name),
        ("region", &t.region),
        ("connect_to", &t.connect_to),
    ] {
        if let Some(v) = v {
            props.push((k, v.clone()));
        }
    }
    if let Some(d) = &report.diagnosis {
        props.push(("custom_key_store_id", d.custom_key_store_id.clone()));
        props.push(("connection_state", d.connection_state.clone()));
        if let Some(c) = &d.connection_error_code {
            props.push(("connection_error_code", c.clone()));
        }
    }
    props.push(("outlook", outlook_label(report.verdict.outlook).into()));
    props.push(("verdict", report.verdict.text.clone()));
    for (k, v) in props {
        suite.add_property(Property::new(k, v));
    }
    let mut out = format!("{}\n", report.verdict.text);
    if let Some(d) = &report.diagnosis {
        out.push_str(&format!("{}\n", d.text));
    }
    suite.set_system_out(out);
    suite.add_test_cases(report.checks.iter().map(|c| test_case(report, c)));
    suite
}

pub fn render(reports: &[Report]) -> String {
    let mut junit = quick_junit::Report::new("cks-doctor");
    junit.add_test_suites(reports.iter().map(test_suite));
    junit
        .to_string()
        .expect("a JUnit report of strings serializes")
}
