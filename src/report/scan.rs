//! A scan's own output: the one-row-per-store table, and the places (a Region, an account)
//! that could not be scanned, which every other format shows as a report of their own.

use super::{Report, Target};
use crate::kind::StoreKind;
use crate::results::{CheckResult, Status};
use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};

/// One place scan could not look at, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ScanError {
    /// The account, when the scan reached it as one of an organisation's (`--organization`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    pub profile: Option<String>,
    pub region: Option<String>,
    pub error: String,
}

impl ScanError {
    /// "eu-west-1 (profile prod)", "account 111122223333", "eu-west-1 (account 111122223333)".
    pub fn place(&self) -> String {
        let whose = match (&self.account, &self.profile) {
            (Some(a), _) => Some(format!("account {a}")),
            (None, Some(p)) => Some(format!("profile {p}")),
            (None, None) => None,
        };
        match (&self.region, whose) {
            (Some(r), Some(w)) => format!("{r} ({w})"),
            (Some(r), None) => r.clone(),
            (None, Some(w)) if self.account.is_some() => w,
            (None, Some(w)) => format!("the default Region ({w})"),
            (None, None) => "the default Region".into(),
        }
    }
}

/// A place that could not be scanned as a report with one "could not check" row, so that no
/// format drops it. Its target's kind is `any`: it is about no one store.
pub fn error_report(e: &ScanError) -> Report {
    let place = e.place();
    // A whole account of an organisation scan (its role, its Region list), or one Region.
    let whole_account = e.account.is_some() && e.region.is_none();
    let remediation = if whole_account {
        "Check that the role exists in the account, that its trust policy lets the scanning principal assume it (with the --external-id it requires), and that it allows the read-only policy `cks-doctor iam-policy` prints; then run the scan again."
    } else {
        "Fix what stopped the scan (permissions: kms:DescribeCustomKeyStores; a Region the account has not enabled cannot be read) and run it again."
    };
    let check = CheckResult {
        id: if whole_account {
            "scan.account"
        } else {
            "scan.region"
        }
        .into(),
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
        remediation: Some(remediation.into()),
        duration_ms: 0,
    };
    let mut report = Report::new(
        Target {
            kind: StoreKind::Any,
            operation: "ConnectCustomKeyStore".into(),
            region: e.region.clone(),
            source: place,
            ..Default::default()
        },
        vec![check],
    );
    report.account = e.account.clone();
    report
}

/// The table: one row per store (`wrap`: wrap to a terminal's width).
pub fn table(reports: &[Report], errors: &[ScanError], wrap: bool) -> String {
    // An account column when the scan covered more than one account (an organisation).
    let mut accounts: Vec<&str> = reports
        .iter()
        .filter_map(|r| r.account.as_deref())
        .collect();
    accounts.sort();
    accounts.dedup();
    let by_account = accounts.len() > 1 || errors.iter().any(|e| e.account.is_some());
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(if wrap {
            ContentArrangement::Dynamic
        } else {
            ContentArrangement::Disabled
        })
        .set_header({
            let mut h = vec![
                "region",
                "store",
                "name",
                "kind",
                "state",
                "verdict",
                "failing checks",
            ];
            if by_account {
                h.insert(0, "account");
            }
            h
        });
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
        let mut row = vec![
            r.target.region.clone().unwrap_or_default(),
            d.map(|d| d.custom_key_store_id.clone()).unwrap_or_default(),
            r.target.custom_key_store_name.clone().unwrap_or_default(),
            r.target.kind.to_string(),
            state,
            verdict.to_string(),
            failing.join("\n"),
        ];
        if by_account {
            row.insert(0, r.account.clone().unwrap_or_default());
        }
        table.add_row(row);
    }
    let mut out = format!("{table}\n{} key store(s) scanned\n", reports.len());
    for e in errors {
        out += &format!("could not scan {}: {}\n", e.place(), e.error);
    }
    out
}
