//! The human report: checks grouped by area, one line each with a mark, evidence and fix
//! under anything that is not a pass, and a closing verdict.

use super::{CheckResult, Report};
use crate::checks::Status;
use crate::meta::AREAS;
use std::fmt::Write;

/// ANSI styling, or none.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }
    fn dim(&self, s: &str) -> String {
        self.paint("2", s)
    }
}

pub fn mark(status: Status) -> &'static str {
    match status {
        Status::Pass => "✓",
        Status::Fail => "✗",
        Status::Warn => "!",
        Status::Error => "?",
        Status::Skip => "-",
        Status::Manual => "☐",
    }
}

fn colour(status: Status) -> &'static str {
    match status {
        Status::Pass => "32",
        Status::Fail => "31;1",
        Status::Warn => "33",
        Status::Error => "35",
        Status::Skip => "2",
        Status::Manual => "36",
    }
}

fn render_check(out: &mut String, c: &CheckResult, style: Style) {
    let m = style.paint(colour(c.status), &format!("[{}]", mark(c.status)));
    let advisory = if c.advisory { " (advisory)" } else { "" };
    let _ = writeln!(out, "  {m} {}{advisory} — {}", c.title, c.message);
    if c.status == Status::Pass || c.status == Status::Skip {
        return;
    }
    for e in &c.evidence {
        let _ = writeln!(out, "      • {e}");
    }
    if matches!(c.status, Status::Fail | Status::Warn) {
        let mut names: Vec<&str> = c.kms_exceptions.iter().map(|c| c.as_str()).collect();
        if !names.is_empty() {
            let _ = writeln!(
                out,
                "      {} {}",
                style.dim("KMS:"),
                style.bold(&names.join(", "))
            );
        }
        names = c
            .connection_error_codes
            .iter()
            .map(|c| c.as_str())
            .collect();
        if !names.is_empty() {
            let _ = writeln!(
                out,
                "      {} {}",
                style.dim("ConnectionErrorCode:"),
                style.bold(&names.join(", "))
            );
        }
        for n in &c.mapping_notes {
            let _ = writeln!(out, "      {} {}", style.dim("Mapping:"), n.line());
        }
    }
    if let Some(fix) = &c.remediation {
        let _ = writeln!(out, "      {} {fix}", style.dim("Fix:"));
    }
    let _ = writeln!(
        out,
        "      {}",
        style.dim(&format!("(cks-doctor explain {})", c.id))
    );
}

pub fn render(report: &Report, style: Style) -> String {
    let mut out = String::new();
    let t = &report.target;
    let store = match (&t.custom_key_store_id, &t.custom_key_store_name) {
        (Some(id), Some(n)) => format!(", key store {id} {n:?}"),
        (None, Some(n)) => format!(", key store {n:?}"),
        (Some(id), None) => format!(", key store {id}"),
        (None, None) => String::new(),
    };
    let key = t
        .xks_key_id
        .as_ref()
        .map(|k| format!(", external key {k:?}"))
        .unwrap_or_default();
    let what = match (&t.cloud_hsm_cluster_id, &t.xks_proxy_uri_endpoint) {
        (Some(c), _) => format!("CloudHSM cluster {c}{store}"),
        (None, Some(e)) => format!(
            "external key store proxy {e}{}{store}",
            t.xks_proxy_uri_path.as_deref().unwrap_or_default()
        ),
        _ if t.operation == "CreateKey" => "a key store this account does not have".to_string(),
        _ => t.kind.to_string(),
    };
    let what = format!("{what}{key}");
    let headline = if t.operation == "ConnectCustomKeyStore" {
        format!(
            "{} diagnosis of the key store on {what}",
            style.bold("cks-doctor")
        )
    } else {
        format!(
            "{} {} pre-flight for {what}",
            style.bold("cks-doctor"),
            t.operation
        )
    };
    let _ = writeln!(out, "{headline}");
    let _ = writeln!(out, "{}", style.dim(&format!("facts from {}", t.source)));
    if let Some(c) = &t.connect_to {
        let _ = writeln!(
            out,
            "{}",
            style.dim(&format!(
                "--connect-to: the proxy was reached at {c}, not through DNS"
            ))
        );
    }
    let mut areas: Vec<&str> = AREAS.to_vec();
    for c in &report.checks {
        if !areas.contains(&c.area.as_str()) {
            areas.push(&c.area);
        }
    }
    for area in areas {
        let in_area: Vec<&CheckResult> = report.checks.iter().filter(|c| c.area == area).collect();
        if in_area.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{}", style.bold(area));
        for c in in_area {
            render_check(&mut out, c, style);
        }
    }
    if let Some(l) = &report.latency {
        render_latency(&mut out, l, style);
    }
    if let Some(d) = &report.diagnosis {
        render_diagnosis(&mut out, d, style);
    }
    let s = &report.summary;
    let _ = writeln!(
        out,
        "\n{} passed, {} failed, {} warnings, {} could not check, {} skipped, {} manual",
        s.pass, s.fail, s.warn, s.error, s.skip, s.manual
    );
    let verdict = &report.verdict.text;
    let painted = match report.exit_code() {
        0 => style.paint("32;1", verdict),
        1 => style.paint("31;1", verdict),
        _ => style.paint("35;1", verdict),
    };
    let _ = writeln!(out, "{painted}");
    out
}

/// The fresh connection's phases as bars against KMS's 250 ms budget.
fn render_latency(out: &mut String, l: &super::Latency, style: Style) {
    const WIDTH: f64 = 40.0;
    let _ = writeln!(
        out,
        "\n{} (fresh connection, measured from {})",
        style.bold("Latency against KMS's 250 ms budget"),
        l.measured_from
    );
    let phases = [
        ("DNS", l.dns_ms),
        ("TCP connect", l.connect_ms),
        ("TLS handshake", l.tls_ms),
        ("first byte", l.first_byte_ms),
        ("request", l.request_ms),
        ("total", l.total_ms),
    ];
    for (name, v) in phases {
        let Some(ms) = v else {
            let _ = writeln!(out, "  {name:<14} {:>9}", "–");
            continue;
        };
        let n = ((ms / l.budget_ms) * WIDTH).round().clamp(0.0, WIDTH * 2.0) as usize;
        let bar = "█".repeat(n.max(usize::from(ms > 0.0)));
        let painted = if (name == "total" || name == "request") && ms > l.budget_ms {
            style.paint("31;1", &bar)
        } else {
            bar
        };
        let _ = writeln!(out, "  {name:<14} {:>6.1} ms {painted}", ms);
    }
    let _ = writeln!(
        out,
        "  {:<14} {:>6.1} ms {}|",
        "budget",
        l.budget_ms,
        " ".repeat(WIDTH as usize)
    );
    if let (Some(v), Some(c)) = (&l.tls_version, &l.cipher_suite) {
        let _ = writeln!(
            out,
            "  {}",
            style.dim(&format!(
                "{v}, {c}; {} TLS handshake(s) in all",
                l.handshakes
            ))
        );
    }
}

fn render_diagnosis(out: &mut String, d: &crate::diagnose::Diagnosis, style: Style) {
    let _ = writeln!(out, "\n{}", style.bold("Diagnosis"));
    let state = match &d.connection_error_code {
        Some(c) => format!("{} with {c}", d.connection_state),
        None => d.connection_state.clone(),
    };
    let _ = writeln!(
        out,
        "  {} ({}, {}) is {state}",
        d.custom_key_store_id, d.custom_key_store_name, d.custom_key_store_type
    );
    if !d.meaning.is_empty() {
        let _ = writeln!(out, "  {}", style.dim(&d.meaning));
    }
    let list = |out: &mut String, title: &str, ids: &[String]| {
        if !ids.is_empty() {
            let _ = writeln!(out, "  {title}: {}", ids.join(", "));
        }
    };
    list(out, "Confirmed by", &d.confirmed_by);
    list(out, "Ruled out", &d.ruled_out);
    list(out, "Pass from here, not ruled out", &d.not_ruled_out);
    list(out, "Could not check", &d.not_checked);
    list(out, "Other failures", &d.other_failures);
    if !d.recovery.is_empty() {
        let _ = writeln!(out, "  Recovery:");
        for (i, step) in d.recovery.iter().enumerate() {
            let _ = writeln!(out, "    {}. {step}", i + 1);
        }
    }
    let _ = writeln!(out, "  {}", style.bold(&d.text));
}
