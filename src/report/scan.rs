//! A scan's own output: the one-row-per-store table, and the places (a Region, an account)
//! that could not be scanned, which every other format shows as a report of their own.

use super::{Report, Target};
use crate::kind::StoreKind;
use crate::results::{CheckResult, Status};
use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};

/// One place scan could not look at, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ScanError {
    pub profile: Option<String>,
    pub region: Option<String>,
    pub error: String,
}

impl ScanError {
    /// "eu-west-1 (profile prod)".
    pub fn place(&self) -> String {
        format!(
            "{}{}",
            self.region.as_deref().unwrap_or("the default Region"),
            self.profile
                .as_deref()
                .map(|p| format!(" (profile {p})"))
                .unwrap_or_default()
        )
    }
}

/// A place that could not be scanned as a report with one "could not check" row, so that no
/// format drops it. Its target's kind is `any`: it is about no one store.
pub fn error_report(e: &ScanError) -> Report {
    let place = e.place();
    let check = CheckResult {
        id: "scan.region".into(),
        title: format!("Key stores of {place} could be read"),
        area: "Account".into(),
        severity: None,
        advisory: false,
        status: Status::Error,
        message: format!("could not check: {}", e.error),
        evidence: Vec::new(),
        kms_exceptions: Vec::new(),
        connection_error_codes: Vec::new(),
        mapping_notes: Vec::new(),
        remediation: Some("Fix what stopped the scan (permissions: kms:DescribeCustomKeyStores) and run it again.".into()),
        duration_ms: 0,
    };
    Report::new(
        Target {
            kind: StoreKind::Any,
            operation: "ConnectCustomKeyStore".into(),
            region: e.region.clone(),
            source: place,
            ..Default::default()
        },
        vec![check],
    )
}

/// The table: one row per store (`wrap`: wrap to a terminal's width).
pub fn table(reports: &[Report], errors: &[ScanError], wrap: bool) -> String {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(if wrap {
            ContentArrangement::Dynamic
        } else {
            ContentArrangement::Disabled
        })
        .set_header(vec![
            "region",
            "store",
            "name",
            "kind",
            "state",
            "verdict",
            "failing checks",
        ]);
    for r in reports {
        let d = r.diagnosis.as_ref();
        let state = d
            .map(|d| match &d.connection_error_code {
                Some(c) => format!("{} ({c})", d.connection_state),
                None => d.connection_state.clone(),
            })
            .unwrap_or_default();
        let failing: Vec<&str> = r
            .checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .map(|c| c.id.as_str())
            .collect();
        let verdict = match r.exit_code() {
            0 => "ok",
            1 => "FAIL",
            _ => "incomplete",
        };
        table.add_row(vec![
            r.target.region.clone().unwrap_or_default(),
            d.map(|d| d.custom_key_store_id.clone()).unwrap_or_default(),
            r.target.custom_key_store_name.clone().unwrap_or_default(),
            r.target.kind.to_string(),
            state,
            verdict.to_string(),
            failing.join("\n"),
        ]);
    }
    let mut out = format!("{table}\n{} key store(s) scanned\n", reports.len());
    for e in errors {
        out += &format!("could not scan {}: {}\n", e.place(), e.error);
    }
    out
}
