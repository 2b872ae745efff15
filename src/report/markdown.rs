//! The Markdown report: a summary table of every store, then one section per store with each
//! check (✅ ❌ ⚠️ ❓ ⏭️ 📝), its message, evidence, exceptions/codes and fix. For pull requests,
//! wikis and tickets.
//!
//! The naming helpers here ([`store_label`], [`resource`], [`outlook_label`]) are shared by the
//! other report formats so that every format names a store the same way.

use super::{CheckResult, Outlook, Report};
use crate::checks::Status;
use crate::meta::AREAS;
use std::fmt::Write;

/// How every format names the store a report is about: "ExampleKeyStore (cluster-…)",
/// "ExampleKeyStore (cks-…)" for a diagnosis, the cluster or proxy URI without a name.
pub fn store_label(report: &Report) -> String {
    if let Some(d) = &report.diagnosis {
        return format!("{} ({})", d.custom_key_store_name, d.custom_key_store_id);
    }
    let res = resource(report);
    match (&report.target.custom_key_store_name, res) {
        (Some(n), Some(r)) => format!("{n} ({r})"),
        (Some(n), None) => n.clone(),
        (None, Some(r)) => r,
        (None, None) => report.target.kind.to_string(),
    }
}

/// The resource checked: the CloudHSM cluster id, or the XKS proxy's endpoint and path.
pub fn resource(report: &Report) -> Option<String> {
    let t = &report.target;
    match (&t.cloud_hsm_cluster_id, &t.xks_proxy_uri_endpoint) {
        (Some(c), _) => Some(c.clone()),
        (None, Some(e)) => Some(format!(
            "{e}{}",
            t.xks_proxy_uri_path.as_deref().unwrap_or_default()
        )),
        _ => None,
    }
}

/// "would fail", "incomplete", "no failure found".
pub fn outlook_label(outlook: Outlook) -> &'static str {
    match outlook {
        Outlook::WouldFail => "would fail",
        Outlook::Incomplete => "incomplete",
        Outlook::NoFailureFound => "no failure found",
    }
}

/// "could not check: …", unless the message already says so.
pub fn could_not_check(message: &str) -> String {
    if message.to_lowercase().starts_with("could not check") {
        message.to_string()
    } else {
        format!("could not check: {message}")
    }
}

pub fn emoji(status: Status) -> &'static str {
    match status {
        Status::Pass => "✅",
        Status::Fail => "❌",
        Status::Warn => "⚠️",
        Status::Error => "❓",
        Status::Skip => "⏭️",
        Status::Manual => "📝",
    }
}

fn outlook_emoji(outlook: Outlook) -> &'static str {
    match outlook {
        Outlook::WouldFail => "❌",
        Outlook::Incomplete => "❓",
        Outlook::NoFailureFound => "✅",
    }
}

/// Escapes text for Markdown: backslash-escapes the characters that start emphasis, links,
/// code or tables, and entity-encodes `<`, `>` and `&` so that no text becomes raw HTML.
/// Line breaks become spaces (every value is rendered on one line). An `_` inside a word
/// (INSUFFICIENT_FREE_ADDRESSES_IN_SUBNET) starts no emphasis and is left as it is.
pub fn escape(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    for (i, &c) in chars.iter().enumerate() {
        match c {
            '_' if i > 0
                && chars[i - 1].is_alphanumeric()
                && chars.get(i + 1).is_some_and(|n| n.is_alphanumeric()) =>
            {
                out.push(c)
            }
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '#' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\r' => {}
            '\n' | '\t' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

/// Remediation texts are written with `code` spans; keep them, escape everything else.
fn escape_keeping_code(s: &str) -> String {
    let parts: Vec<&str> = s.split('`').collect();
    if parts.len() % 2 == 0 {
        // An unbalanced backtick: treat it all as text.
        return escape(s);
    }
    let mut out = String::new();
    for (i, p) in parts.iter().enumerate() {
        if i % 2 == 1 && !p.is_empty() && !p.contains(['\n', '\r', '|']) {
            let _ = write!(out, "`{p}`");
        } else if i % 2 == 1 {
            out.push_str(&escape(&format!("`{p}`")));
        } else {
            out.push_str(&escape(p));
        }
    }
    out
}

/// Names as code spans (exception and code names never hold a backtick).
fn code_list<S: AsRef<str>>(names: &[S]) -> String {
    names
        .iter()
        .map(|n| format!("`{}`", n.as_ref().replace('`', "'")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The checks that fail, by id.
fn failing(report: &Report) -> Vec<&str> {
    report
        .checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .map(|c| c.id.as_str())
        .collect()
}

pub fn render(reports: &[Report]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# cks-doctor report\n");
    let _ = writeln!(
        out,
        "{} key store(s) checked by cks-doctor {}.\n",
        reports.len(),
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(
        out,
        "| Store | Kind | State | Verdict | ✅ Pass | ❌ Fail | ⚠️ Warn | ❓ Could not check | ⏭️ Skip | 📝 Manual | Failing checks |"
    );
    let _ = writeln!(out, "|---|---|---|---|---:|---:|---:|---:|---:|---:|---|");
    for r in reports {
        let s = &r.summary;
        let state = match &r.diagnosis {
            Some(d) => match &d.connection_error_code {
                Some(c) => format!("{} ({})", escape(&d.connection_state), escape(c)),
                None => escape(&d.connection_state),
            },
            None => "—".into(),
        };
        let fails = failing(r);
        let fails = if fails.is_empty() {
            "—".to_string()
        } else {
            fails
                .iter()
                .map(|id| format!("`{}`", id.replace('`', "'")))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            out,
            "| {} | {} | {state} | {} {} | {} | {} | {} | {} | {} | {} | {fails} |",
            escape(&store_label(r)),
            escape(r.target.kind.as_str()),
            outlook_emoji(r.verdict.outlook),
            outlook_label(r.verdict.outlook),
            s.pass,
            s.fail,
            s.warn,
            s.error,
            s.skip,
            s.manual,
        );
    }
    for r in reports {
        render_report(&mut out, r);
    }
    out
}

fn render_report(out: &mut String, r: &Report) {
    let t = &r.target;
    let _ = writeln!(out, "\n## {}\n", escape(&store_label(r)));
    let mut facts: Vec<(&str, String)> = vec![
        ("Kind", escape(t.kind.as_str())),
        ("Operation", escape(&t.operation)),
    ];
    let opt = |v: &Option<String>| v.as_deref().map(escape);
    for (k, v) in [
        ("Key store name", opt(&t.custom_key_store_name)),
        ("CloudHSM cluster", opt(&t.cloud_hsm_cluster_id)),
        ("Trust anchor", opt(&t.trust_anchor)),
        ("XKS proxy endpoint", opt(&t.xks_proxy_uri_endpoint)),
        ("XKS proxy path", opt(&t.xks_proxy_uri_path)),
        ("Connectivity", opt(&t.xks_proxy_connectivity)),
        ("Reached at (--connect-to)", opt(&t.connect_to)),
        ("Region", opt(&t.region)),
    ] {
        if let Some(v) = v {
            facts.push((k, v));
        }
    }
    facts.push(("Facts from", escape(&t.source)));
    for (k, v) in facts {
        let _ = writeln!(out, "- **{k}:** {v}");
    }
    let s = &r.summary;
    let _ = writeln!(
        out,
        "\n**Verdict:** {} {}\n\n{} passed, {} failed, {} warnings, {} could not check, {} skipped, {} manual",
        outlook_emoji(r.verdict.outlook),
        escape(&r.verdict.text),
        s.pass,
        s.fail,
        s.warn,
        s.error,
        s.skip,
        s.manual
    );
    if let Some(d) = &r.diagnosis {
        render_diagnosis(out, d);
    }
    if let Some(l) = &r.latency {
        render_latency(out, l);
    }
    let mut areas: Vec<&str> = AREAS.to_vec();
    for c in &r.checks {
        if !areas.contains(&c.area.as_str()) {
            areas.push(&c.area);
        }
    }
    let _ = writeln!(out, "\n### Checks");
    for area in areas {
        let in_area: Vec<&CheckResult> = r.checks.iter().filter(|c| c.area == area).collect();
        if in_area.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n#### {}\n", escape(area));
        for c in in_area {
            render_check(out, c);
        }
    }
}

fn render_check(out: &mut String, c: &CheckResult) {
    let advisory = if c.advisory { " (advisory)" } else { "" };
    let _ = writeln!(
        out,
        "- {} **{}**{advisory} (`{}`, {}) — {}",
        emoji(c.status),
        escape(&c.title),
        c.id.replace('`', "'"),
        c.status.as_str(),
        escape(&c.message)
    );
    if c.status == Status::Pass || c.status == Status::Skip {
        return;
    }
    for e in &c.evidence {
        let _ = writeln!(out, "  - {}", escape(e));
    }
    if matches!(c.status, Status::Fail | Status::Warn) {
        if !c.kms_exceptions.is_empty() {
            let _ = writeln!(out, "  - KMS: {}", code_list(&c.kms_exceptions));
        }
        if !c.connection_error_codes.is_empty() {
            let _ = writeln!(
                out,
                "  - ConnectionErrorCode: {}",
                code_list(&c.connection_error_codes)
            );
        }
        for n in &c.mapping_notes {
            let _ = writeln!(out, "  - Mapping: {}", escape(&n.line()));
        }
    }
    if let Some(fix) = &c.remediation {
        let _ = writeln!(out, "  - Fix: {}", escape_keeping_code(fix));
    }
}

fn render_diagnosis(out: &mut String, d: &crate::diagnose::Diagnosis) {
    let _ = writeln!(out, "\n### Diagnosis\n");
    let state = match &d.connection_error_code {
        Some(c) => format!(
            "{} with `{}`",
            escape(&d.connection_state),
            c.replace('`', "'")
        ),
        None => escape(&d.connection_state),
    };
    let _ = writeln!(
        out,
        "{} ({}, {}) is {state}.",
        escape(&d.custom_key_store_id),
        escape(&d.custom_key_store_name),
        escape(&d.custom_key_store_type)
    );
    if !d.meaning.is_empty() {
        let _ = writeln!(out, "\n> {}", escape(&d.meaning));
    }
    let _ = writeln!(out);
    for (title, ids) in [
        ("Confirmed by", &d.confirmed_by),
        ("Ruled out", &d.ruled_out),
        ("Pass from here, not ruled out", &d.not_ruled_out),
        ("Could not check", &d.not_checked),
        ("Other failures", &d.other_failures),
    ] {
        if !ids.is_empty() {
            let _ = writeln!(out, "- **{title}:** {}", code_list(ids));
        }
    }
    if !d.recovery.is_empty() {
        let _ = writeln!(out, "\nRecovery:\n");
        for (i, step) in d.recovery.iter().enumerate() {
            let _ = writeln!(out, "{}. {}", i + 1, escape_keeping_code(step));
        }
    }
    let _ = writeln!(out, "\n**{}**", escape(&d.text));
}

fn render_latency(out: &mut String, l: &super::Latency) {
    let _ = writeln!(
        out,
        "\n### Latency against KMS's {:.0} ms budget\n",
        l.budget_ms
    );
    let _ = writeln!(out, "| Phase | ms |\n|---|---:|");
    for (name, v) in [
        ("DNS", l.dns_ms),
        ("TCP connect", l.connect_ms),
        ("TLS handshake", l.tls_ms),
        ("First byte", l.first_byte_ms),
        ("Request", l.request_ms),
        ("Total", l.total_ms),
    ] {
        let v = v.map(|ms| format!("{ms:.1}")).unwrap_or_else(|| "–".into());
        let _ = writeln!(out, "| {name} | {v} |");
    }
    let _ = writeln!(out, "| Budget | {:.1} |", l.budget_ms);
    let mut notes = vec![format!("measured from {}", escape(&l.measured_from))];
    if let (Some(v), Some(c)) = (&l.tls_version, &l.cipher_suite) {
        notes.push(format!("{}, {}", escape(v), escape(c)));
    }
    notes.push(format!("{} TLS handshake(s) in all", l.handshakes));
    let _ = writeln!(out, "\n{}", notes.join("; "));
}
