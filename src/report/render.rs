//! One entry point for every report format, the JSON envelope of many reports, and the
//! display filter (`--severity`, `--status`) that hides rows but never changes a verdict.

use super::scan::{self, ScanError};
use super::{human, Report, SCHEMA_VERSION};
use crate::meta::Severity;
use crate::results::Status;

/// A report format (`--output`, or the extension of `--report`'s file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Junit,
    Sarif,
    Markdown,
    Html,
    Csv,
    /// AWS Security Finding Format: the `BatchImportFindings` request (`asff.rs`).
    Asff,
    /// OCSF 1.3.0 Compliance Finding events, a JSON array (`ocsf.rs`).
    Ocsf,
}

impl Format {
    /// The format a report file's extension names.
    pub fn from_path(p: &std::path::Path) -> Option<Format> {
        let ext = p.extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "json" => Format::Json,
            "xml" | "junit" => Format::Junit,
            "sarif" => Format::Sarif,
            "md" | "markdown" => Format::Markdown,
            "html" | "htm" => Format::Html,
            "csv" => Format::Csv,
            "txt" => Format::Table,
            _ => return None,
        })
    }
}

/// Which rows are shown: at least this severity, with one of these statuses (empty: any).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub min_severity: Option<Severity>,
    pub statuses: Vec<Status>,
}

impl Filter {
    /// The report with only the rows the filter shows. The summary and verdict keep covering
    /// every check: the filters only hide rows.
    pub fn apply(&self, report: &Report) -> Report {
        if self.min_severity.is_none() && self.statuses.is_empty() {
            return report.clone();
        }
        let checks = report
            .checks
            .iter()
            .filter(|c| {
                self.min_severity
                    .is_none_or(|m| c.severity.is_none_or(|s| s <= m))
            })
            .filter(|c| self.statuses.is_empty() || self.statuses.contains(&c.status))
            .cloned()
            .collect();
        Report {
            checks,
            ..report.clone()
        }
    }
}

/// How the table format is drawn.
#[derive(Debug, Clone, Copy, Default)]
pub struct TableStyle {
    pub color: bool,
    /// Wrap to a terminal's width (never in a pipe: an id or a name stays whole).
    pub wrap: bool,
}

/// The JSON of several reports (a scan), with the places that could not be scanned.
pub fn json_envelope(reports: &[Report], errors: &[ScanError]) -> String {
    serde_json::to_string_pretty(&serde_json::json!({
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": env!("CARGO_PKG_NAME"), "version": env!("CARGO_PKG_VERSION")},
        "reports": reports,
        "errors": errors,
    }))
    .expect("serializes")
        + "\n"
}

/// Renders reports in one format. `scan_errors` is Some for a scan (many stores).
pub fn render(
    format: Format,
    reports: &[Report],
    scan_errors: Option<&[ScanError]>,
    style: TableStyle,
) -> String {
    match (format, scan_errors) {
        (Format::Json, None) if reports.len() == 1 => reports[0].to_json() + "\n",
        (Format::Json, errors) => json_envelope(reports, errors.unwrap_or_default()),
        (Format::Table, Some(errors)) => scan::table(reports, errors, style.wrap),
        (Format::Table, None) => reports
            .iter()
            .map(|r| human::render(r, human::Style { color: style.color }))
            .collect::<Vec<_>>()
            .join("\n"),
        (format, errors) => {
            // A Region or account that could not be scanned is a report of its own, with one
            // "could not check" row, so that no format drops it.
            let mut all = reports.to_vec();
            all.extend(errors.unwrap_or_default().iter().map(scan::error_report));
            match format {
                Format::Junit => super::junit::render(&all),
                Format::Sarif => super::sarif::render(&all),
                Format::Markdown => super::markdown::render(&all),
                Format::Html => super::html::render(&all),
                Format::Asff => super::asff::render(&all),
                Format::Ocsf => super::ocsf::render(&all),
                _ => super::csv::render(&all),
            }
        }
    }
}
