//! The check catalogue: `docs/checks.md` (generated from the metadata in `checks/`), the
//! IAM actions and policy the checks need, and the `checks` command's table.

use crate::codes::Code;
use crate::kind::StoreKind;
use crate::meta::{all, CheckMeta, Severity, AREAS};
use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};

// ----- docs/checks.md -----

/// A key store kind as the catalogue names it.
fn severity_label(severity: Severity) -> String {
    format!("{severity:?}").to_lowercase()
}

/// The GitHub anchor of a Markdown heading: lowercase, spaces to hyphens, punctuation other
/// than `-` and `_` dropped.
fn heading_anchor(heading: &str) -> String {
    heading
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

/// A table cell: pipes escaped, line breaks flattened.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// Code names linked to their entry in `docs/error-codes.md`, or a dash.
fn code_links(names: &[Code], sep: &str) -> String {
    if names.is_empty() {
        return "–".to_string();
    }
    names
        .iter()
        .map(|n| format!("[`{n}`](error-codes.md#{})", heading_anchor(n.as_str())))
        .collect::<Vec<_>>()
        .join(sep)
}

/// The checks in catalogue order: by area (as the report shows them), then in registry order.
fn catalogue_order(all: &[CheckMeta]) -> Vec<&CheckMeta> {
    let registry = crate::checks::registry();
    let mut sorted: Vec<&CheckMeta> = all.iter().collect();
    sorted.sort_by_key(|m| {
        (
            AREAS
                .iter()
                .position(|a| *a == m.area)
                .unwrap_or(AREAS.len()),
            registry
                .iter()
                .position(|c| c.id == m.id)
                .unwrap_or(usize::MAX),
            m.id.clone(),
        )
    });
    sorted
}

/// The union of every check's IAM actions, sorted, each with the checks that need it.
pub fn iam_actions() -> Vec<(String, Vec<String>)> {
    let mut map: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for m in catalogue_order(all()) {
        for a in &m.iam_actions {
            map.entry(a.clone()).or_default().push(m.id.clone());
        }
    }
    map.into_iter().collect()
}

/// The least-privilege, read-only IAM policy that every check needs, as pretty JSON.
pub fn iam_policy_json() -> String {
    let actions: Vec<String> = iam_actions().into_iter().map(|(a, _)| a).collect();
    let mut s = String::from(
        "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n    {\n      \"Sid\": \"CksDoctorReadOnly\",\n      \"Effect\": \"Allow\",\n      \"Action\": [\n",
    );
    for (i, a) in actions.iter().enumerate() {
        let comma = if i + 1 < actions.len() { "," } else { "" };
        s.push_str(&format!(
            "        {}{comma}\n",
            serde_json::Value::from(a.as_str())
        ));
    }
    s.push_str("      ],\n      \"Resource\": \"*\"\n    }\n  ]\n}\n");
    s
}

/// `docs/checks.md`: every check's metadata, generated. `tests/it/metadata.rs` keeps the file in
/// step (`CKS_BLESS=1 cargo test --test it metadata::` rewrites it).
pub fn render_catalogue() -> String {
    use std::fmt::Write as _;
    let checks = catalogue_order(all());
    let mut out = String::new();
    out.push_str(
        "<!--\n\
         Generated from checks/*.json by cks_doctor::meta::render_catalogue(). Do not edit by hand:\n\
         edit the metadata file of the check, then regenerate this file with\n\
         \x20   CKS_BLESS=1 cargo test --test it metadata::\n\
         -->\n\n",
    );
    out.push_str("# cks-doctor checks\n\n");
    let _ = write!(
        out,
        "cks-doctor runs {} checks. Each one tests a prerequisite of `CreateCustomKeyStore` (or of \
         connecting the store afterwards) and names the KMS exception or `ConnectionErrorCode` that \
         KMS would return if the prerequisite does not hold. `cks-doctor checks` lists them and \
         `cks-doctor explain ID` prints one; `docs/error-codes.md` explains every code.\n\n",
        checks.len()
    );
    out.push_str(
        "A check ends in one of these states: **PASS** (the prerequisite holds), **FAIL** (it does \
         not: KMS would fail with the codes listed), **WARN** (it holds, but something is risky or \
         undocumented), **ERROR** (it could not be checked: a permission, throttling, the network), \
         **SKIP** (not applicable, or blocked by a failed check it names) or **MANUAL** (the fact is \
         in no AWS API: the message says what to verify by hand). *Advisory* checks go beyond what \
         KMS itself verifies.\n\n",
    );
    out.push_str(
        "Connection errors are fixed in this order: disconnect the store \
         (`aws kms disconnect-custom-key-store`), correct the cause (`aws kms \
         update-custom-key-store` when a property of the store changes), then connect it again \
         (`aws kms connect-custom-key-store`).\n\n",
    );

    out.push_str("| check | title | area | severity | KMS exceptions | ConnectionErrorCodes |\n");
    out.push_str("|---|---|---|---|---|---|\n");
    for m in &checks {
        let severity = if m.advisory {
            format!("{} (advisory)", severity_label(m.severity))
        } else {
            severity_label(m.severity)
        };
        let _ = writeln!(
            out,
            "| [`{id}`](#{anchor}) | {title} | {area} | {severity} | {exc} | {codes} |",
            id = m.id,
            anchor = heading_anchor(&m.id),
            title = cell(&m.title),
            area = cell(&m.area),
            exc = code_links(&m.kms_exceptions, "<br>"),
            codes = code_links(&m.connection_error_codes, "<br>"),
        );
    }
    out.push('\n');

    let mut area: Option<&str> = None;
    for m in &checks {
        if area != Some(m.area.as_str()) {
            area = Some(m.area.as_str());
            let _ = writeln!(out, "## {}\n", m.area);
        }
        let _ = writeln!(out, "### `{}`\n", m.id);
        let _ = writeln!(out, "**{}**\n", m.title.trim());
        let _ = writeln!(out, "{}\n", m.description.trim());
        let _ = writeln!(out, "- Applies to: {}", m.kind.plural_label());
        if m.create_key {
            let _ = writeln!(
                out,
                "- Runs in: the CreateKey pre-flight (`preflight key`, `preflight xks --xks-key-id`)"
            );
        }
        let _ = writeln!(
            out,
            "- Severity: {}{}",
            severity_label(m.severity),
            if m.advisory {
                " (advisory: KMS itself does not check this)"
            } else {
                ""
            }
        );
        let _ = writeln!(
            out,
            "- KMS exceptions: {}",
            code_links(&m.kms_exceptions, ", ")
        );
        let _ = writeln!(
            out,
            "- ConnectionErrorCodes: {}",
            code_links(&m.connection_error_codes, ", ")
        );
        if !m.connection_error_codes.is_empty() {
            let out_of: Vec<Code> = m
                .connection_error_codes
                .iter()
                .filter(|c| m.pass_rules_out.contains(c))
                .copied()
                .collect();
            let _ = writeln!(
                out,
                "- A PASS rules out: {}",
                if out_of.is_empty() {
                    "nothing (the check does not see what KMS sees)".to_string()
                } else {
                    code_links(&out_of, ", ")
                }
            );
        }
        for n in &m.mapping_notes {
            let _ = writeln!(
                out,
                "- Mapping ({}): {}: {}",
                n.basis.label(),
                code_links(&n.codes, " or "),
                n.note
            );
        }
        let iam = if m.iam_actions.is_empty() {
            "none (no AWS call)".to_string()
        } else {
            m.iam_actions
                .iter()
                .map(|a| format!("`{a}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(out, "- IAM actions: {iam}\n");
        let _ = writeln!(out, "**Fix:** {}\n", m.remediation.trim());
        if !m.references.is_empty() {
            out.push_str("References:\n\n");
            for r in &m.references {
                let _ = writeln!(out, "- <{r}>");
            }
            out.push('\n');
        }
    }

    out.push_str("## IAM permissions\n\n");
    out.push_str(
        "cks-doctor only reads. The policy below is the union of the IAM actions of every check: \
         attach it to the identity that runs cks-doctor. CloudHSM has no resource-level \
         permissions, so the resource is `*`. cks-doctor never needs `kms:CreateCustomKeyStore` or \
         any other write action. A missing permission is never reported as a failed prerequisite: \
         the checks that need it end in ERROR, naming the denied action.\n\n",
    );
    out.push_str("| action | needed by |\n|---|---|\n");
    for (action, ids) in iam_actions() {
        let _ = writeln!(
            out,
            "| `{action}` | {} |",
            ids.iter()
                .map(|id| format!("[`{id}`](#{})", heading_anchor(id)))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    out.push_str("\n```json\n");
    out.push_str(&iam_policy_json());
    out.push_str("```\n");
    out
}

/// The read-only IAM policy for the checks of one key store kind (`Any`: every check).
pub fn iam_policy(kind: StoreKind) -> serde_json::Value {
    let mut actions: Vec<&str> = all()
        .iter()
        .filter(|m| m.kind.applies_to(kind))
        .flat_map(|m| m.iam_actions.iter().map(String::as_str))
        .collect();
    actions.sort_unstable();
    actions.dedup();
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "CksDoctorReadOnly",
            "Effect": "Allow",
            "Action": actions,
            "Resource": "*"
        }]
    })
}

/// The `checks` command: every check as a table (`wrap`: wrap titles to a terminal's width;
/// in a pipe, never break an id or a name).
pub fn table(wrap: bool) -> String {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(if wrap {
            ContentArrangement::Dynamic
        } else {
            ContentArrangement::Disabled
        })
        .set_header(vec![
            "id",
            "title",
            "kind",
            "severity",
            "KMS exceptions",
            "ConnectionErrorCodes",
        ]);
    for c in crate::checks::registry() {
        let Some(m) = crate::meta::get(c.id) else {
            continue;
        };
        table.add_row(vec![
            m.id.clone(),
            m.title.clone(),
            m.kind.as_str().to_string(),
            format!("{:?}", m.severity).to_lowercase(),
            crate::codes::join(&m.kms_exceptions, "\n"),
            crate::codes::join(&m.connection_error_codes, "\n"),
        ]);
    }
    format!("{table}\n{} checks\n", crate::checks::registry().len())
}

/// The `checks` command's JSON: every check's metadata.
pub fn json() -> String {
    serde_json::to_string_pretty(all()).expect("metadata serializes") + "\n"
}
