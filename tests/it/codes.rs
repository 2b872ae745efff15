//! The code table (`src/codes.rs`) against requirements §1, and `docs/error-codes.md` against
//! `render_markdown()`. Run with `CKS_BLESS=1` to rewrite the Markdown file.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use cks_doctor::codes::{
    is_known, lookup, lookup_state, render_markdown, suggest, CodeKind, StoreKind, CODES,
    CONNECTION_STATES,
};

// ---- requirements §1, hard-coded -------------------------------------------------------------

const CONNECTION_ERROR_CODES_BOTH: &[&str] =
    &["INTERNAL_ERROR", "NETWORK_ERRORS", "INVALID_CREDENTIALS"];

const CONNECTION_ERROR_CODES_CLOUDHSM: &[&str] = &[
    "CLUSTER_NOT_FOUND",
    "INSUFFICIENT_CLOUDHSM_HSMS",
    "INSUFFICIENT_FREE_ADDRESSES_IN_SUBNET",
    "SUBNET_NOT_FOUND",
    "USER_LOCKED_OUT",
    "USER_LOGGED_IN",
    "USER_NOT_FOUND",
];

const CONNECTION_ERROR_CODES_XKS: &[&str] = &[
    "XKS_PROXY_ACCESS_DENIED",
    "XKS_PROXY_INVALID_CONFIGURATION",
    "XKS_PROXY_INVALID_RESPONSE",
    "XKS_PROXY_INVALID_TLS_CONFIGURATION",
    "XKS_PROXY_NOT_REACHABLE",
    "XKS_PROXY_TIMED_OUT",
    "XKS_VPC_ENDPOINT_SERVICE_INVALID_CONFIGURATION",
    "XKS_VPC_ENDPOINT_SERVICE_NOT_FOUND",
];

const CREATE_ERRORS: &[&str] = &[
    "CloudHsmClusterInUseException",
    "CloudHsmClusterInvalidConfigurationException",
    "CloudHsmClusterNotActiveException",
    "CloudHsmClusterNotFoundException",
    "CustomKeyStoreNameInUseException",
    "IncorrectTrustAnchorException",
    "KMSInternalException",
    "LimitExceededException",
    "XksProxyIncorrectAuthenticationCredentialException",
    "XksProxyInvalidConfigurationException",
    "XksProxyInvalidResponseException",
    "XksProxyUriEndpointInUseException",
    "XksProxyUriInUseException",
    "XksProxyUriUnreachableException",
    "XksProxyVpcEndpointServiceInUseException",
    "XksProxyVpcEndpointServiceInvalidConfigurationException",
    "XksProxyVpcEndpointServiceNotFoundException",
];

const UPDATE_EXTRAS: &[&str] = &[
    "CustomKeyStoreNotFoundException",
    "CustomKeyStoreInvalidStateException",
    "CloudHsmClusterNotRelatedException",
];

const CONNECT_ERRORS: &[&str] = &[
    "CloudHsmClusterNotActiveException",
    "CloudHsmClusterInvalidConfigurationException",
    "CustomKeyStoreInvalidStateException",
    "CustomKeyStoreNotFoundException",
    "KMSInternalException",
];

const CONNECTION_STATE_NAMES: &[&str] = &[
    "CONNECTED",
    "CONNECTING",
    "FAILED",
    "DISCONNECTED",
    "DISCONNECTING",
];

/// Names allowed in the table beyond §1's lists: the common ValidationException, the
/// cryptographic operations' KMSInvalidStateException, and the other errors the KMS API model
/// lists for DeleteCustomKeyStore, DescribeCustomKeyStores and CreateKey (requirements §10).
const EXTRA_EXCEPTIONS: &[&str] = &[
    "ValidationException",
    "KMSInvalidStateException",
    "CustomKeyStoreHasCMKsException",
    "InvalidMarkerException",
    "XksKeyNotFoundException",
    "XksKeyInvalidConfigurationException",
    "XksKeyAlreadyInUseException",
    "MalformedPolicyDocumentException",
    "DependencyTimeoutException",
    "InvalidArnException",
    "UnsupportedOperationException",
    "TagException",
];

fn all_connection_error_codes() -> Vec<&'static str> {
    [
        CONNECTION_ERROR_CODES_BOTH,
        CONNECTION_ERROR_CODES_CLOUDHSM,
        CONNECTION_ERROR_CODES_XKS,
    ]
    .concat()
}

fn all_exceptions() -> Vec<&'static str> {
    let mut v: Vec<&str> = [
        CREATE_ERRORS,
        UPDATE_EXTRAS,
        CONNECT_ERRORS,
        EXTRA_EXCEPTIONS,
    ]
    .concat();
    v.sort_unstable();
    v.dedup();
    v
}

fn exact(name: &str) -> &'static cks_doctor::codes::CodeInfo {
    let code = lookup(name).unwrap_or_else(|| panic!("{name} missing from CODES"));
    assert_eq!(
        code.name, name,
        "lookup({name}) found a differently spelled entry"
    );
    code
}

// ---- completeness ----------------------------------------------------------------------------

#[test]
fn counts_match_requirements() {
    assert_eq!(all_connection_error_codes().len(), 18);
    assert_eq!(CREATE_ERRORS.len(), 17);
    assert_eq!(CONNECTION_STATE_NAMES.len(), 5);
    let table_cec = CODES
        .iter()
        .filter(|c| c.kind == CodeKind::ConnectionErrorCode)
        .count();
    assert_eq!(table_cec, 18, "ConnectionErrorCodes in CODES");
    assert_eq!(CODES.len(), 18 + all_exceptions().len());
    assert_eq!(CONNECTION_STATES.len(), 5);
}

#[test]
fn connection_error_codes_present_with_kind_and_store() {
    for (names, store) in [
        (CONNECTION_ERROR_CODES_BOTH, StoreKind::Any),
        (CONNECTION_ERROR_CODES_CLOUDHSM, StoreKind::Cloudhsm),
        (CONNECTION_ERROR_CODES_XKS, StoreKind::Xks),
    ] {
        for name in names {
            let code = exact(name);
            assert_eq!(code.kind, CodeKind::ConnectionErrorCode, "{name}");
            assert_eq!(code.store, store, "{name}");
            assert_eq!(code.operations, ["ConnectCustomKeyStore"], "{name}");
        }
    }
}

#[test]
fn exceptions_present_with_kind_and_operations() {
    for name in all_exceptions() {
        assert_eq!(exact(name).kind, CodeKind::Exception, "{name}");
    }
    for (names, op) in [
        (CREATE_ERRORS, "CreateCustomKeyStore"),
        (UPDATE_EXTRAS, "UpdateCustomKeyStore"),
        (CONNECT_ERRORS, "ConnectCustomKeyStore"),
    ] {
        for name in names {
            assert!(
                exact(name).operations.contains(&op),
                "{name} should list {op} among its operations"
            );
        }
    }
    // Store kinds that follow from the names.
    for code in CODES.iter().filter(|c| c.kind == CodeKind::Exception) {
        if code.name.starts_with("Xks") {
            assert_eq!(code.store, StoreKind::Xks, "{}", code.name);
        }
        if code.name.starts_with("CloudHsm") || code.name == "IncorrectTrustAnchorException" {
            assert_eq!(code.store, StoreKind::Cloudhsm, "{}", code.name);
        }
    }
}

#[test]
fn connection_states_present() {
    let names: Vec<&str> = CONNECTION_STATES.iter().map(|s| s.name).collect();
    assert_eq!(names, CONNECTION_STATE_NAMES);
    for state in CONNECTION_STATES {
        assert!(!state.meaning.trim().is_empty(), "{}", state.name);
        assert!(
            lookup(state.name).is_none(),
            "{} is a state, not a code",
            state.name
        );
    }
}

#[test]
fn no_duplicates_and_nothing_outside_the_lists() {
    let mut seen = HashSet::new();
    for code in CODES.iter() {
        assert!(
            seen.insert(code.name.to_ascii_lowercase()),
            "duplicate (case-insensitive) name {}",
            code.name
        );
    }
    let allowed: HashSet<&str> = all_exceptions()
        .into_iter()
        .chain(all_connection_error_codes())
        .collect();
    for code in CODES.iter() {
        assert!(
            allowed.contains(code.name),
            "{} is not in requirements §1 (typo, or update tests/it/codes.rs)",
            code.name
        );
    }
    let mut states = HashSet::new();
    for state in CONNECTION_STATES {
        assert!(states.insert(state.name), "duplicate state {}", state.name);
    }
}

#[test]
fn names_are_well_formed() {
    for code in CODES.iter() {
        match code.kind {
            CodeKind::Exception => {
                assert!(code.name.ends_with("Exception"), "{}", code.name);
                assert!(
                    code.name.chars().all(|c| c.is_ascii_alphanumeric())
                        && code.name.starts_with(|c: char| c.is_ascii_uppercase()),
                    "{}",
                    code.name
                );
            }
            CodeKind::ConnectionErrorCode => assert!(
                code.name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c == '_'),
                "{}",
                code.name
            ),
        }
    }
}

// ---- requirements.md itself, when it is available ---------------------------------------------

fn requirements_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("reference/requirements.md")
}

/// The text of §1: from the `## 1.` heading up to the next `## ` heading.
fn section_1(text: &str) -> Option<String> {
    let mut lines = text.lines().skip_while(|l| !l.starts_with("## 1."));
    lines.next()?;
    Some(
        lines
            .take_while(|l| !l.starts_with("## "))
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

fn tokens(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|t| !t.is_empty())
}

fn is_all_caps(t: &str) -> bool {
    t.chars().any(|c| c.is_ascii_uppercase())
        && t.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// The top-level bullet of §1 that starts with `- **<label>**`, with its nested lines.
fn bullet<'a>(section: &'a str, label: &str) -> Vec<&'a str> {
    let start = format!("- **{label}**");
    let mut lines = section.lines().skip_while(|l| !l.starts_with(&start));
    let Some(first) = lines.next() else {
        return Vec::new();
    };
    let mut out = vec![first];
    out.extend(lines.take_while(|l| !l.starts_with("- ") && !l.trim().is_empty()));
    out
}

#[test]
fn requirements_section_1_names_are_known() {
    let path = requirements_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let section = section_1(&text).expect("requirements.md has a '## 1.' section");

    // Every identifier ending in Exception, anywhere in §1.
    let exceptions: HashSet<&str> = tokens(&section)
        .filter(|t| t.len() > "Exception".len() && t.ends_with("Exception"))
        .collect();
    for name in &exceptions {
        assert!(
            is_known(name),
            "requirements §1 names unknown exception {name}"
        );
        assert_eq!(lookup(name).unwrap().name, *name, "spelling of {name}");
    }
    assert!(
        exceptions.len() >= 21,
        "expected at least 21 exception names in §1, found {}",
        exceptions.len()
    );

    // ALL_CAPS codes of the ConnectionErrorCode bullet (they all contain an underscore; words
    // such as XKS in the prose are not codes).
    let ceci = bullet(&section, "ConnectionErrorCode").join("\n");
    let codes: HashSet<&str> = tokens(&ceci)
        .filter(|t| is_all_caps(t) && t.contains('_'))
        .collect();
    for name in &codes {
        let code = lookup(name).unwrap_or_else(|| panic!("§1 names unknown code {name}"));
        assert_eq!(code.name, *name);
        assert_eq!(code.kind, CodeKind::ConnectionErrorCode, "{name}");
    }
    assert_eq!(
        codes.len(),
        18,
        "ConnectionErrorCodes found in §1: {codes:?}"
    );

    // The ConnectionState values: the ALL_CAPS words of the bullet's first sentence.
    let state_line = bullet(&section, "ConnectionState").join(" ");
    let first_sentence = state_line.split(". ").next().unwrap_or_default();
    let states: HashSet<&str> = tokens(first_sentence)
        .filter(|t| t.len() >= 3 && is_all_caps(t))
        .collect();
    for name in &states {
        let state = lookup_state(name).unwrap_or_else(|| panic!("§1 names unknown state {name}"));
        assert_eq!(state.name, *name);
    }
    assert_eq!(
        states.len(),
        5,
        "ConnectionState values found in §1: {states:?}"
    );
}

// ---- lookup and suggest -----------------------------------------------------------------------

#[test]
fn lookup_is_case_insensitive_and_exact_first() {
    assert_eq!(
        lookup("IncorrectTrustAnchorException").map(|c| c.name),
        Some("IncorrectTrustAnchorException")
    );
    assert_eq!(
        lookup("incorrecttrustanchorexception").map(|c| c.name),
        Some("IncorrectTrustAnchorException")
    );
    assert_eq!(
        lookup("xks_proxy_timed_out").map(|c| c.name),
        Some("XKS_PROXY_TIMED_OUT")
    );
    // The AWS SDK for Rust spelling.
    assert_eq!(
        lookup("KmsInternalException").map(|c| c.name),
        Some("KMSInternalException")
    );
    assert!(lookup("ValidationError").is_none(), "only exact AWS names");
    assert!(
        lookup("XKS-PROXY-TIMED-OUT").is_none(),
        "no separator folding"
    );
    assert!(lookup("").is_none());
    assert!(is_known("network_errors"));
    assert!(!is_known("CONNECTED"), "states are not codes");
    assert_eq!(lookup_state("connected").map(|s| s.name), Some("CONNECTED"));
    assert_eq!(lookup_state("Failed").map(|s| s.name), Some("FAILED"));
    assert!(lookup_state("NETWORK_ERRORS").is_none());
    for code in CODES.iter() {
        assert!(std::ptr::eq(lookup(code.name).unwrap(), code));
        assert!(std::ptr::eq(
            lookup(&code.name.to_ascii_uppercase()).unwrap(),
            code
        ));
        assert!(std::ptr::eq(
            lookup(&code.name.to_ascii_lowercase()).unwrap(),
            code
        ));
    }
}

#[test]
fn suggest_finds_typos() {
    assert_eq!(
        suggest("IncorrectTrustAnchorExeption"),
        Some("IncorrectTrustAnchorException")
    );
    assert_eq!(suggest("XKS_PROXY_TIMEDOUT"), Some("XKS_PROXY_TIMED_OUT"));
    assert_eq!(suggest("xks-proxy-timed-out"), Some("XKS_PROXY_TIMED_OUT"));
    assert_eq!(suggest("CONECTED"), Some("CONNECTED"));
    assert_eq!(suggest("USER_LOCKED"), Some("USER_LOCKED_OUT"));
    assert_eq!(
        suggest("CloudHsmClusterNotFoundExcepton"),
        Some("CloudHsmClusterNotFoundException")
    );
    assert_eq!(
        suggest("KmsInternalException"),
        Some("KMSInternalException")
    );
    assert_eq!(suggest("completely unrelated words"), None);
    assert_eq!(suggest(""), None);
    // A prefix shared by many codes is not a unique suggestion, and too far from any single one.
    assert_eq!(suggest("XKS"), None);
    for code in CODES.iter() {
        assert_eq!(suggest(code.name), Some(code.name));
    }
}

// ---- content -----------------------------------------------------------------------------------

#[test]
fn every_code_is_documented() {
    for code in CODES.iter() {
        assert!(!code.meaning.trim().is_empty(), "{}: meaning", code.name);
        assert!(!code.causes.is_empty(), "{}: causes", code.name);
        assert!(!code.fix.is_empty(), "{}: fix", code.name);
        assert!(!code.operations.is_empty(), "{}: operations", code.name);
        for text in code
            .causes
            .iter()
            .chain(code.fix)
            .chain(code.notes)
            .chain(code.operations)
        {
            assert!(!text.trim().is_empty(), "{}: empty item", code.name);
            assert!(
                !text.contains("  "),
                "{}: double space in {text:?}",
                code.name
            );
        }
        assert!(!code.meaning.contains("  "), "{}: double space", code.name);
    }
}

#[test]
fn connection_error_fixes_follow_the_recovery_order() {
    for code in CODES
        .iter()
        .filter(|c| c.kind == CodeKind::ConnectionErrorCode)
    {
        let first = code.fix.first().unwrap();
        let last = code.fix.last().unwrap();
        assert!(
            first.starts_with("DisconnectCustomKeyStore"),
            "{}: fix should start by disconnecting",
            code.name
        );
        assert!(
            code.fix
                .iter()
                .skip(1)
                .any(|s| s.contains("ConnectCustomKeyStore")
                    && !s.starts_with("DisconnectCustomKeyStore")),
            "{}: fix should end by connecting again (last step: {last})",
            code.name
        );
    }
}

#[test]
fn serializes_to_json() {
    let code = lookup("XKS_PROXY_TIMED_OUT").unwrap();
    let json = serde_json::to_value(code).unwrap();
    assert_eq!(json["name"], "XKS_PROXY_TIMED_OUT");
    assert_eq!(json["kind"], "connection_error_code");
    assert_eq!(json["store"], "external");
    assert_eq!(json["operations"][0], "ConnectCustomKeyStore");
    let json = serde_json::to_value(lookup("IncorrectTrustAnchorException").unwrap()).unwrap();
    assert_eq!(json["kind"], "exception");
    assert_eq!(json["store"], "cloud_hsm");
    for kind in [CodeKind::Exception, CodeKind::ConnectionErrorCode] {
        assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
    }
    for store in [StoreKind::Cloudhsm, StoreKind::Xks, StoreKind::Any] {
        assert_eq!(serde_json::to_value(store).unwrap(), store.as_str());
    }
}

// ---- docs/error-codes.md -----------------------------------------------------------------------

#[test]
fn markdown_has_a_section_per_name() {
    let md = render_markdown();
    assert!(
        md.starts_with("<!--"),
        "starts with the generated-file comment"
    );
    assert!(md.contains("CKS_BLESS=1"));
    let headings: Vec<&str> = md.lines().filter_map(|l| l.strip_prefix("## ")).collect();
    let expected: Vec<&str> = CODES
        .iter()
        .map(|c| c.name)
        .chain(CONNECTION_STATES.iter().map(|s| s.name))
        .collect();
    let mut sorted_headings = headings.clone();
    let mut sorted_expected = expected.clone();
    sorted_headings.sort_unstable();
    sorted_expected.sort_unstable();
    assert_eq!(sorted_headings, sorted_expected);
    for code in CODES.iter() {
        let placeholder = format!(
            "Checks that detect it: see `cks-doctor explain {}`",
            code.name
        );
        assert!(md.contains(&placeholder), "{}", code.name);
    }
    for group in [
        "# CreateCustomKeyStore exceptions",
        "# Other exceptions",
        "# ConnectionErrorCodes: both key store types",
        "# ConnectionErrorCodes: AWS CloudHSM key stores",
        "# ConnectionErrorCodes: external key stores",
        "# ConnectionState values",
    ] {
        assert!(md.lines().any(|l| l == group), "missing group {group}");
    }
    assert!(
        !md.contains("<cluster-id>"),
        "raw angle brackets must be escaped"
    );
}

#[test]
fn docs_error_codes_md_is_up_to_date() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/error-codes.md");
    let rendered = render_markdown();
    if std::env::var("CKS_BLESS").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &rendered).unwrap();
        return;
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; run `CKS_BLESS=1 cargo test --test it codes::` to create it",
            path.display()
        )
    });
    if on_disk != rendered {
        let line = on_disk
            .lines()
            .zip(rendered.lines())
            .position(|(a, b)| a != b)
            .map_or_else(
                || on_disk.lines().count().min(rendered.lines().count()) + 1,
                |i| i + 1,
            );
        panic!(
            "{} is out of date with src/codes.rs (first difference at line {line}); \
             run `CKS_BLESS=1 cargo test --test it codes::` to regenerate it",
            path.display()
        );
    }
}

// ---- the KMS API model -----------------------------------------------------------------------

/// The operations whose errors the table covers, and the errors each lists in the KMS API
/// model, with the ConnectionErrorCodeType enum: read from botocore's service JSON in the
/// project's Python environment (scripts/setup-venv.sh, which scripts/test.sh runs).
fn api_model() -> serde_json::Value {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".venv/bin/python");
    assert!(
        python.exists(),
        "this test reads the KMS API model from the project's Python environment {}: run scripts/setup-venv.sh (scripts/test.sh does it)",
        python.display()
    );
    let script = r#"
import json, botocore.loaders
m = botocore.loaders.Loader().load_service_model("kms", "service-2")
ops = ["CreateCustomKeyStore", "UpdateCustomKeyStore", "ConnectCustomKeyStore",
       "DisconnectCustomKeyStore", "DeleteCustomKeyStore", "DescribeCustomKeyStores", "CreateKey"]
print(json.dumps({
    "operations": {o: sorted(e["shape"] for e in m["operations"][o].get("errors", [])) for o in ops},
    "connection_error_codes": sorted(m["shapes"]["ConnectionErrorCodeType"]["enum"]),
}))
"#;
    let out = std::process::Command::new(&python)
        .args(["-c", script])
        .output()
        .expect("run the project's Python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the model extract is JSON")
}

/// Every error the API model lists for a custom key store operation (and CreateKey) is in the
/// table with that operation, and the table names no operation the model does not give it;
/// the table's ConnectionErrorCodes are exactly the model's enum (issue 11 #13).
#[test]
fn the_table_matches_the_kms_api_model() {
    let model = api_model();
    let mut problems = Vec::new();
    for (op, errors) in model["operations"].as_object().unwrap() {
        let errors: Vec<&str> = errors
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap())
            .collect();
        for e in &errors {
            match lookup(e) {
                None => problems.push(format!("{op}: {e} is not in the table")),
                Some(c) if !c.operations.contains(&op.as_str()) => {
                    problems.push(format!("{op}: {e} does not list {op} among its operations"))
                }
                _ => {}
            }
        }
        for c in CODES.iter().filter(|c| c.kind == CodeKind::Exception) {
            // ValidationException is common to every operation, in no operation's list.
            if c.operations.contains(&op.as_str())
                && c.name != "ValidationException"
                && !errors.contains(&c.name)
            {
                problems.push(format!(
                    "{op}: the table lists {} but the model does not",
                    c.name
                ));
            }
        }
    }
    let mut table: Vec<&str> = CODES
        .iter()
        .filter(|c| c.kind == CodeKind::ConnectionErrorCode)
        .map(|c| c.name)
        .collect();
    table.sort_unstable();
    let enum_values: Vec<&str> = model["connection_error_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    if table != enum_values {
        problems.push(format!(
            "ConnectionErrorCodes: table {table:?}, model {enum_values:?}"
        ));
    }
    assert!(
        problems.is_empty(),
        "{} difference(s) from the KMS API model:\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}
