//! CSV (RFC 4180: comma-separated, CRLF line ends, fields quoted when they hold a comma, a
//! quote or a line break, quotes doubled): a header, then one row per check per report.
//!
//! Columns: store, kind, operation, check_id, title, area, status, severity, kms_exceptions and
//! connection_error_codes (`;`-joined: the names the check maps to, as in the JSON report),
//! message, evidence (one item per line), remediation.
//!
//! A text cell that a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, a tab
//! or a carriage return: a key store name is chosen by whoever created it) is prefixed with `'`.

use super::markdown::store_label;
use super::Report;

pub const HEADER: [&str; 13] = [
    "store",
    "kind",
    "operation",
    "check_id",
    "title",
    "area",
    "status",
    "severity",
    "kms_exceptions",
    "connection_error_codes",
    "message",
    "evidence",
    "remediation",
];

/// Defuses spreadsheet formulas (OWASP "CSV injection").
fn cell(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

pub fn render(reports: &[Report]) -> String {
    let mut w = ::csv::WriterBuilder::new()
        .terminator(::csv::Terminator::CRLF)
        .quote_style(::csv::QuoteStyle::Necessary)
        .from_writer(Vec::new());
    w.write_record(HEADER).expect("writing to memory");
    for r in reports {
        let store = cell(&store_label(r));
        for c in &r.checks {
            let severity = c
                .severity
                .map(|s| format!("{s:?}").to_lowercase())
                .unwrap_or_default();
            w.write_record([
                store.as_str(),
                &cell(r.target.kind.as_str()),
                &cell(&r.target.operation),
                &cell(&c.id),
                &cell(&c.title),
                &cell(&c.area),
                c.status.as_str(),
                &severity,
                &crate::codes::join(&c.kms_exceptions, ";"),
                &crate::codes::join(&c.connection_error_codes, ";"),
                &cell(&c.message),
                &cell(&c.evidence.join("\n")),
                &cell(c.remediation.as_deref().unwrap_or_default()),
            ])
            .expect("writing to memory");
        }
    }
    let bytes = w.into_inner().expect("flushing to memory");
    String::from_utf8(bytes).expect("UTF-8 in, UTF-8 out")
}
