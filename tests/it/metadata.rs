//! The check metadata (`checks/*.json`) against the check implementations, the code table and
//! `docs/checks.md`. Run with `CKS_BLESS=1` to rewrite the Markdown file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use cks_doctor::checks::registry;
use cks_doctor::codes::{self, CodeKind};
use cks_doctor::meta::{self, CheckMeta, Severity, StoreKind, AREAS};
use regex::Regex;

fn metadata() -> Vec<CheckMeta> {
    match meta::load_all() {
        Ok(all) => all,
        Err(e) => panic!("the check metadata does not load: {e}"),
    }
}

/// Collects every problem, then fails once with all of them (one per line).
fn report(problems: Vec<String>) {
    assert!(
        problems.is_empty(),
        "{} problem(s):\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

// ---- metadata ↔ implementations ---------------------------------------------------------------

#[test]
fn metadata_loads() {
    let all = metadata();
    assert!(!all.is_empty(), "checks/ holds no metadata file");
}

#[test]
fn registry_has_no_duplicate_ids() {
    let mut seen = BTreeMap::<&str, usize>::new();
    for c in registry() {
        *seen.entry(c.id).or_default() += 1;
    }
    report(
        seen.into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(id, n)| format!("{id}: registered {n} times"))
            .collect(),
    );
}

#[test]
fn metadata_has_no_duplicate_ids() {
    let mut seen = BTreeMap::<String, usize>::new();
    for m in metadata() {
        *seen.entry(m.id).or_default() += 1;
    }
    report(
        seen.into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(id, n)| format!("{id}: {n} metadata files"))
            .collect(),
    );
}

#[test]
fn every_registered_check_has_metadata() {
    let ids: BTreeSet<String> = metadata().into_iter().map(|m| m.id).collect();
    report(
        registry()
            .iter()
            .filter(|c| !ids.contains(c.id))
            .map(|c| format!("{}: registered but has no checks/{}.json", c.id, c.id))
            .collect(),
    );
}

#[test]
fn every_metadata_file_has_an_implementation() {
    let registered: BTreeSet<&str> = registry().iter().map(|c| c.id).collect();
    report(
        metadata()
            .iter()
            .filter(|m| !registered.contains(m.id.as_str()))
            .map(|m| {
                format!(
                    "{}: checks/{}.json has no registered implementation (register! block)",
                    m.id, m.id
                )
            })
            .collect(),
    );
}

// ---- codes -------------------------------------------------------------------------------------

/// The code table's store kind(s) a check of `kind` may name.
fn store_fits(kind: StoreKind, store: codes::StoreKind) -> bool {
    match kind {
        StoreKind::Any => store == StoreKind::Any,
        StoreKind::Cloudhsm => matches!(store, StoreKind::Cloudhsm | StoreKind::Any),
        StoreKind::Xks => matches!(store, StoreKind::Xks | StoreKind::Any),
    }
}

#[test]
fn codes_are_known_and_of_the_right_kind() {
    let mut problems = Vec::new();
    for m in metadata() {
        let lists = [
            ("kms_exceptions", &m.kms_exceptions, CodeKind::Exception),
            (
                "connection_error_codes",
                &m.connection_error_codes,
                CodeKind::ConnectionErrorCode,
            ),
        ];
        for (field, names, want) in lists {
            let mut seen = BTreeSet::new();
            for name in names {
                if !seen.insert(name) {
                    problems.push(format!("{}: {field} lists {name} twice", m.id));
                }
                let Some(code) = codes::lookup(name.as_str()) else {
                    problems.push(format!("{}: {field}: {name} is not a known code", m.id));
                    continue;
                };
                if code.name != name.as_str() {
                    problems.push(format!(
                        "{}: {field}: {name} should be spelled {}",
                        m.id, code.name
                    ));
                }
                if code.kind != want {
                    problems.push(format!(
                        "{}: {field}: {name} is a {}, not a {}",
                        m.id,
                        code.kind.label(),
                        want.label()
                    ));
                }
                if !store_fits(m.kind, code.store) {
                    problems.push(format!(
                        "{}: {field}: {name} applies to {}, but the check is of kind {:?}",
                        m.id,
                        code.store.label(),
                        m.kind
                    ));
                }
            }
        }
    }
    report(problems);
}

// ---- form --------------------------------------------------------------------------------------

#[test]
fn ids_are_dotted_kebab_case_and_match_the_kind() {
    let re = Regex::new(r"^[a-z]+(\.[a-z0-9-]+)+$").unwrap();
    let mut problems = Vec::new();
    for m in metadata() {
        if !re.is_match(&m.id) {
            problems.push(format!(
                "{}: id is not dotted kebab-case (family.name[.name…])",
                m.id
            ));
            continue;
        }
        if m.id
            .split('.')
            .any(|s| s.starts_with('-') || s.ends_with('-'))
        {
            problems.push(format!("{}: a segment starts or ends with a hyphen", m.id));
        }
        let family = m.id.split('.').next().unwrap_or_default();
        let ok = match family {
            // Request parameters and account rules exist for every kind, or for the one they name.
            "params" | "account" => true,
            "cloudhsm" => m.kind == StoreKind::Cloudhsm,
            "xks" => m.kind == StoreKind::Xks,
            // CreateKey pre-flight checks: only there, and the second segment names the kind
            // where it is one kind's (key.cloudhsm.*, key.xks.*).
            "key" => {
                if !m.create_key {
                    problems.push(format!(
                        "{}: a key.* check is a CreateKey check (create_key)",
                        m.id
                    ));
                }
                match m.id.split('.').nth(1) {
                    Some("cloudhsm") => m.kind == StoreKind::Cloudhsm,
                    Some("xks") => m.kind == StoreKind::Xks,
                    _ => m.kind == StoreKind::Any,
                }
            }
            _ => {
                problems.push(format!(
                    "{}: unknown family {family:?} (params, account, cloudhsm, xks, key)",
                    m.id
                ));
                continue;
            }
        };
        if !ok {
            problems.push(format!(
                "{}: a {family}.* check must be of kind {family}, not {:?}",
                m.id, m.kind
            ));
        }
    }
    report(problems);
}

#[test]
fn text_fields_are_filled_in() {
    let mut problems = Vec::new();
    for m in metadata() {
        for (field, text) in [
            ("title", &m.title),
            ("description", &m.description),
            ("remediation", &m.remediation),
        ] {
            if text.trim().is_empty() {
                problems.push(format!("{}: {field} is empty", m.id));
            } else if text.trim() != text {
                problems.push(format!(
                    "{}: {field} has leading or trailing whitespace",
                    m.id
                ));
            }
        }
        if m.title.ends_with('.') {
            problems.push(format!("{}: title ends with a full stop", m.id));
        }
        if m.title.contains('\n') {
            problems.push(format!("{}: title spans several lines", m.id));
        }
        if !AREAS.contains(&m.area.as_str()) {
            problems.push(format!("{}: unknown area {:?}", m.id, m.area));
        }
        if m.advisory && !matches!(m.severity, Severity::Info | Severity::Low) {
            problems.push(format!(
                "{}: an advisory check should be of severity info or low, not {:?}",
                m.id, m.severity
            ));
        }
    }
    report(problems);
}

#[test]
fn iam_actions_are_read_only_service_actions() {
    let re = Regex::new(r"^[a-z0-9-]+:[A-Z][A-Za-z0-9]+$").unwrap();
    let mut problems = Vec::new();
    for m in metadata() {
        let mut seen = BTreeSet::new();
        for a in &m.iam_actions {
            if !seen.insert(a) {
                problems.push(format!("{}: iam_actions lists {a} twice", m.id));
            }
            if !re.is_match(a) {
                problems.push(format!(
                    "{}: iam action {a:?} does not look like service:Action",
                    m.id
                ));
                continue;
            }
            let action = a.split(':').nth(1).unwrap_or_default();
            // CloudTrail's LookupEvents reads the event history.
            if !["Describe", "List", "Get", "Lookup"]
                .iter()
                .any(|p| action.starts_with(p))
            {
                problems.push(format!(
                    "{}: iam action {a} is not read-only (Describe*, List*, Get*, Lookup*)",
                    m.id
                ));
            }
        }
    }
    report(problems);
}

#[test]
fn references_are_https_urls() {
    let mut problems = Vec::new();
    for m in metadata() {
        if m.references.is_empty() {
            problems.push(format!("{}: no references", m.id));
        }
        for r in &m.references {
            if !r.starts_with("https://") || r.contains(char::is_whitespace) {
                problems.push(format!("{}: reference {r:?} is not an https:// URL", m.id));
            }
        }
    }
    report(problems);
}

// ---- docs/checks.md ----------------------------------------------------------------------------

fn catalogue_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/checks.md")
}

#[test]
fn catalogue_covers_every_check() {
    let md = cks_doctor::report::catalogue::render_catalogue();
    assert!(
        md.starts_with("<!--"),
        "starts with the generated-file comment"
    );
    assert!(md.contains("CKS_BLESS=1 cargo test --test it metadata::"));
    let mut problems = Vec::new();
    for m in metadata() {
        if !md.contains(&format!("### `{}`\n", m.id)) {
            problems.push(format!("{}: no section in the catalogue", m.id));
        }
        if !md.contains(&format!("| [`{}`](#", m.id)) {
            problems.push(format!("{}: no row in the catalogue table", m.id));
        }
    }
    report(problems);
}

#[test]
fn catalogue_policy_is_the_union_of_iam_actions() {
    let union: BTreeSet<String> = metadata().into_iter().flat_map(|m| m.iam_actions).collect();
    let policy: serde_json::Value =
        serde_json::from_str(&cks_doctor::report::catalogue::iam_policy_json())
            .expect("the IAM policy is valid JSON");
    assert_eq!(policy["Version"], "2012-10-17");
    let statements = policy["Statement"].as_array().expect("a Statement list");
    assert_eq!(statements.len(), 1);
    let st = &statements[0];
    assert_eq!(st["Effect"], "Allow");
    assert_eq!(st["Resource"], "*");
    let actions: BTreeSet<String> = st["Action"]
        .as_array()
        .expect("an Action list")
        .iter()
        .map(|a| a.as_str().expect("a string").to_string())
        .collect();
    assert_eq!(actions, union);
    let md = cks_doctor::report::catalogue::render_catalogue();
    let section = md
        .split("## IAM permissions\n")
        .nth(1)
        .expect("an IAM permissions section");
    assert!(
        section.contains(&format!(
            "```json\n{}```\n",
            cks_doctor::report::catalogue::iam_policy_json()
        )),
        "the IAM permissions section holds the policy"
    );
}

#[test]
fn catalogue_file_is_up_to_date() {
    let path = catalogue_path();
    let expected = cks_doctor::report::catalogue::render_catalogue();
    if std::env::var_os("CKS_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &expected).expect("write docs/checks.md");
        return;
    }
    let actual = std::fs::read_to_string(&path).unwrap_or_default();
    if actual != expected {
        let line = actual
            .lines()
            .zip(expected.lines())
            .position(|(a, b)| a != b)
            .map(|i| format!("first difference at line {}", i + 1))
            .unwrap_or_else(|| "the files differ in length".to_string());
        panic!(
            "docs/checks.md is out of date ({line}); regenerate it with\n    CKS_BLESS=1 cargo test --test it metadata::"
        );
    }
}

/// "A PASS rules this cause out" is a property of each (check, ConnectionErrorCode) pair, said in
/// every file whose check predicts a ConnectionErrorCode (an empty list: nothing is ruled out
/// from here), and only about the check's own codes (issue 11 #5).
#[test]
fn every_check_with_connection_codes_says_what_a_pass_rules_out() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("checks");
    let mut problems = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let codes = v["connection_error_codes"].as_array().unwrap();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        match v.get("pass_rules_out").and_then(|x| x.as_array()) {
            None if !codes.is_empty() => problems.push(format!("{name}: no pass_rules_out")),
            Some(out) => {
                for c in out {
                    if !codes.contains(c) {
                        problems.push(format!(
                            "{name}: pass_rules_out names {c}, not one of its codes"
                        ));
                    }
                }
            }
            None => {}
        }
    }
    report(problems);
    // What the issue names: seen from here, these do not rule out what KMS meets.
    for (id, code) in [
        ("xks.connection.dns", "XKS_PROXY_NOT_REACHABLE"),
        ("xks.connection.tcp", "XKS_PROXY_NOT_REACHABLE"),
        ("xks.tls.version", "XKS_PROXY_INVALID_TLS_CONFIGURATION"),
        ("xks.latency.budget", "XKS_PROXY_TIMED_OUT"),
        ("xks.health.response", "XKS_PROXY_TIMED_OUT"),
        ("xks.health.response", "XKS_PROXY_NOT_REACHABLE"),
    ] {
        let m = meta::get(id).unwrap();
        assert!(
            !m.pass_rules_out.iter().any(|c| c.as_str() == code),
            "{id} must not rule out {code}"
        );
    }
    let m = meta::get("cloudhsm.cluster.exists").unwrap();
    assert_eq!(m.pass_rules_out.len(), 1);
}
