//! `explain NAME`: a check id, a KMS exception, a ConnectionErrorCode or a ConnectionState,
//! in words or as JSON.

use crate::codes::{self, Code, CodeKind};
use crate::meta::{self, CheckMeta};

/// The explanation of `name`, or the one-line error that says it is unknown.
pub fn explain(name: &str, json: bool) -> Result<String, String> {
    if let Some(m) = meta::get(name) {
        return Ok(if json {
            serde_json::to_string_pretty(m).expect("metadata serializes") + "\n"
        } else {
            check(m)
        });
    }
    if let Some(state) = codes::lookup_state(name) {
        return Ok(if json {
            serde_json::json!({"name": state.name, "kind": "connection_state", "meaning": state.meaning}).to_string() + "\n"
        } else {
            format!("{} (ConnectionState)\n\n{}\n", state.name, state.meaning)
        });
    }
    let Some(code) = codes::lookup(name) else {
        let hint = codes::suggest(name)
            .map(|s| format!(" (did you mean {s}?)"))
            .unwrap_or_default();
        return Err(format!(
            "{name:?} is not a KMS exception, ConnectionErrorCode, ConnectionState or check id known to cks-doctor{hint}"
        ));
    };
    let detecting: Vec<&CheckMeta> = meta::all()
        .iter()
        .filter(|m| {
            m.kms_exceptions
                .iter()
                .chain(&m.connection_error_codes)
                .any(|n| *n == code.code)
        })
        .collect();
    if json {
        let v = serde_json::json!({
            "code": code,
            "checks": detecting.iter().map(|m| {
                let notes: Vec<_> = m.mapping_notes.iter().filter(|n| n.codes.contains(&code.code)).collect();
                let mut v = serde_json::json!({"id": m.id, "title": m.title, "mapping_notes": notes});
                if code.kind == CodeKind::ConnectionErrorCode {
                    v["pass_rules_out"] = m.pass_rules_out.contains(&code.code).into();
                }
                v
            }).collect::<Vec<_>>(),
        });
        return Ok(serde_json::to_string_pretty(&v).expect("serializes") + "\n");
    }
    let kind = match code.kind {
        CodeKind::Exception => "exception",
        CodeKind::ConnectionErrorCode => "ConnectionErrorCode",
    };
    let mut s = format!(
        "{} ({kind}; {})\n\n{}\n",
        code.name,
        code.operations.join(", "),
        code.meaning
    );
    let list = |title: &str, items: &[&str]| -> String {
        if items.is_empty() {
            return String::new();
        }
        let mut t = format!("\n{title}:\n");
        for (i, x) in items.iter().enumerate() {
            t += &format!("  {}. {x}\n", i + 1);
        }
        t
    };
    s += &list("Causes", code.causes);
    s += &list("Fix", code.fix);
    s += &list("Notes", code.notes);
    if detecting.is_empty() {
        s += "\nNo check of this version detects it.\n";
    } else {
        s += "\nChecks that detect it:\n";
        for m in detecting {
            s += &format!("  {} — {}\n", m.id, m.title);
            for n in m
                .mapping_notes
                .iter()
                .filter(|n| n.codes.contains(&code.code))
            {
                s += &format!("      {}\n", n.line());
            }
            if code.kind == CodeKind::ConnectionErrorCode {
                s += if m.pass_rules_out.contains(&code.code) {
                    "      a PASS rules this cause out\n"
                } else {
                    "      a PASS does not rule it out: the check does not see what KMS sees\n"
                };
            }
        }
    }
    Ok(s)
}

fn check(m: &CheckMeta) -> String {
    let mut s = format!("{} — {}\n\n{}\n", m.id, m.title, m.description);
    if !m.kms_exceptions.is_empty() {
        s += &format!(
            "\nKMS exceptions: {}\n",
            codes::join(&m.kms_exceptions, ", ")
        );
    }
    if !m.connection_error_codes.is_empty() {
        s += &format!(
            "ConnectionErrorCodes: {}\n",
            codes::join(&m.connection_error_codes, ", ")
        );
    }
    let (out, kept): (Vec<Code>, Vec<Code>) = m
        .connection_error_codes
        .iter()
        .partition(|c| m.pass_rules_out.contains(c));
    for (title, list) in [
        ("A PASS rules out", out),
        (
            "A PASS does not rule out (the check does not see what KMS sees)",
            kept,
        ),
    ] {
        if !list.is_empty() {
            s += &format!("{title}: {}\n", codes::join(&list, ", "));
        }
    }
    for n in &m.mapping_notes {
        s += &format!("Mapping: {}\n", n.line());
    }
    for r in crate::compliance::for_check(&m.id) {
        s += &format!(
            "Compliance: {} {} ({}: {})\n",
            r.label(),
            r.mapping.title,
            r.mapping.basis.label(),
            r.mapping.note
        );
    }
    if !m.iam_actions.is_empty() {
        s += &format!("IAM actions: {}\n", m.iam_actions.join(", "));
    }
    s += &format!("\nFix: {}\n", m.remediation);
    for r in &m.references {
        s += &format!("See: {r}\n");
    }
    s
}
