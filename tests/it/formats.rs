//! The report formats (JUnit, SARIF, Markdown, HTML, CSV) on real reports: the binary's JSON
//! on the bundled snapshots (a broken and a ready CloudHSM pre-flight, a diagnosis of a FAILED
//! store, a ready setup with a missing snapshot file) and an XKS pre-flight against the test
//! proxy. Every format's counts agree with the JSON summary, SARIF validates against the
//! official 2.1.0 schema, the HTML is self-contained and escapes everything, and the secrets
//! given to the runs never appear in any format.

use crate::support::xks_proxy;

use crate::support::bin;
use assert_cmd::Command;
use cks_doctor::checks::Status;
use cks_doctor::report::{csv, html, junit, markdown, sarif, CheckResult, Report, Summary};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const PASSWORD: &str = "Kms0Password9Secret";
const CLUSTER: &str = "cluster-jxhlf7644ne";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn example(name: &str) -> PathBuf {
    root().join("examples").join(name)
}

fn report_of(cmd: &mut Command) -> Report {
    let out = cmd.output().unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not a JSON report ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn preflight_cloudhsm(dir: &Path) -> Command {
    let mut c = bin();
    c.arg("--snapshot")
        .arg(dir)
        .args(["--region", "us-east-1", "--output", "json"])
        .args(["preflight", "cloudhsm", "--cluster-id", CLUSTER])
        .args(["--name", "ExampleKeyStore", "--trust-anchor"])
        .arg(dir.join("customerCA.crt"))
        .arg("--cloudhsm-users")
        .arg(dir.join("cloudhsm-users.json"));
    c
}

/// The XKS secret the proxy run signs with (the proxy's own).
fn xks_secret() -> &'static str {
    xks_proxy::SECRET
}

struct Reports {
    /// broken (with the password), ready, failed-store (diagnose), ready without one snapshot
    /// file, XKS against a slow proxy (with the secret).
    all: Vec<Report>,
}

impl Reports {
    fn broken(&self) -> &Report {
        &self.all[0]
    }
    fn xks(&self) -> &Report {
        &self.all[4]
    }
}

fn reports() -> &'static Reports {
    static R: OnceLock<Reports> = OnceLock::new();
    R.get_or_init(|| {
        let broken = report_of(
            preflight_cloudhsm(&example("broken")).env("CKS_KEY_STORE_PASSWORD", PASSWORD),
        );
        let ready = report_of(&mut preflight_cloudhsm(&example("ready")));
        let failed = report_of(
            bin()
                .arg("--snapshot")
                .arg(example("failed-store"))
                .args(["--region", "us-east-1", "--output", "json", "diagnose"])
                .arg("cks-0a1b2c3d4e5f60789")
                .arg("--cloudhsm-users")
                .arg(example("failed-store").join("cloudhsm-users.json")),
        );
        // A missing snapshot file: the checks that need it could not run (ERROR).
        let tmp = tempfile::tempdir().unwrap();
        for f in std::fs::read_dir(example("ready")).unwrap() {
            let f = f.unwrap();
            if f.file_name() != "ec2-describe-network-acls.json" {
                std::fs::copy(f.path(), tmp.path().join(f.file_name())).unwrap();
            }
        }
        let incomplete = report_of(&mut preflight_cloudhsm(tmp.path()));
        // XKS: a proxy that answers after 300 ms (over KMS's 250 ms budget).
        let proxy = xks_proxy::TestProxy::start_blocking(xks_proxy::ProxyOptions::mode(
            xks_proxy::Mode::Slow { delay_ms: 300 },
        ));
        let ca = tmp.path().join("lab-root.pem");
        std::fs::write(&ca, proxy.root_ca_pem()).unwrap();
        let xks = report_of(
            bin()
                .arg("--snapshot")
                .arg(example("ready"))
                .args([
                    "--region",
                    "us-east-1",
                    "--timeout",
                    "5",
                    "--output",
                    "json",
                ])
                .args(["preflight", "xks", "--uri-endpoint", xks_proxy::ENDPOINT])
                .args(["--uri-path", xks_proxy::PATH])
                .args(["--access-key-id", xks_proxy::ACCESS_KEY_ID])
                .args(["--name", "ExternalStore2", "--connect-to"])
                .arg(proxy.connect_to_arg())
                .arg("--trust-ca")
                .arg(&ca)
                .env("CKS_XKS_SECRET_ACCESS_KEY", xks_secret()),
        );
        drop(proxy);
        Reports {
            all: vec![broken, ready, failed, incomplete, xks],
        }
    })
}

fn count(s: &Summary, status: Status) -> usize {
    match status {
        Status::Pass => s.pass,
        Status::Fail => s.fail,
        Status::Warn => s.warn,
        Status::Error => s.error,
        Status::Skip => s.skip,
        Status::Manual => s.manual,
    }
}

#[test]
fn the_reports_cover_every_status_and_shape() {
    let r = reports();
    let mut seen = Summary::default();
    for rep in &r.all {
        assert_eq!(rep.summary, Summary::of(&rep.checks));
        seen.pass += rep.summary.pass;
        seen.fail += rep.summary.fail;
        seen.warn += rep.summary.warn;
        seen.error += rep.summary.error;
        seen.skip += rep.summary.skip;
        seen.manual += rep.summary.manual;
    }
    for st in Status::ALL {
        assert!(count(&seen, st) > 0, "no {st:?} result in the test reports");
    }
    assert!(r.all[2].diagnosis.is_some());
    let l = r.xks().latency.as_ref().expect("XKS latency");
    assert!(l.total_ms.unwrap() > l.budget_ms, "{l:?}");
    // The secrets were really used: the password's format was checked, the proxy's answer
    // was signed.
    let pw = r.broken().checks.iter().find(|c| c.id == "params.password");
    assert_ne!(pw.unwrap().status, Status::Manual);
    let health = r
        .xks()
        .checks
        .iter()
        .find(|c| c.id == "xks.health.response");
    assert_eq!(health.unwrap().status, Status::Pass, "{health:?}");
}

// ----- JUnit -----

#[test]
fn junit_counts_agree_with_the_summary() {
    let r = reports();
    for rep in &r.all {
        let xml = junit::render(std::slice::from_ref(rep));
        let parsed = quick_junit::Report::deserialize_from_str(&xml)
            .unwrap_or_else(|e| panic!("JUnit XML does not parse: {e}\n{xml}"));
        assert_eq!(parsed.test_suites.len(), 1);
        let suite = &parsed.test_suites[0];
        let s = &rep.summary;
        assert_eq!(suite.name.as_str(), markdown::store_label(rep));
        assert_eq!(suite.tests, rep.checks.len());
        assert_eq!(suite.failures, s.fail);
        assert_eq!(suite.errors, s.error);
        assert_eq!(suite.skipped, s.skip + s.manual);
        assert_eq!(parsed.tests, rep.checks.len());
        assert_eq!(parsed.failures, s.fail);
        assert_eq!(parsed.errors, s.error);
        let warnings = suite
            .test_cases
            .iter()
            .filter(|t| {
                t.system_out
                    .as_ref()
                    .is_some_and(|o| o.as_str().starts_with("WARNING:"))
            })
            .count();
        assert_eq!(warnings, s.warn);
        for (tc, c) in suite.test_cases.iter().zip(&rep.checks) {
            assert!(tc.name.as_str().starts_with(&c.id), "{}", tc.name.as_str());
            use quick_junit::TestCaseStatus as T;
            match (&tc.status, c.status) {
                (T::Success { .. }, Status::Pass | Status::Warn) => {}
                (T::NonSuccess { kind, message, .. }, Status::Fail) => {
                    assert_eq!(*kind, quick_junit::NonSuccessKind::Failure);
                    let m = message.as_ref().unwrap().as_str();
                    for name in c.kms_exceptions.iter().chain(&c.connection_error_codes) {
                        assert!(m.contains(name.as_str()), "{}: {m} lacks {name}", c.id);
                    }
                }
                (T::NonSuccess { kind, message, .. }, Status::Error) => {
                    assert_eq!(*kind, quick_junit::NonSuccessKind::Error);
                    assert!(message
                        .as_ref()
                        .unwrap()
                        .as_str()
                        .starts_with("could not check"));
                }
                (T::Skipped { message, .. }, Status::Skip | Status::Manual) => {
                    assert!(message.as_ref().unwrap().as_str().contains(&c.message));
                }
                (t, s) => panic!("{}: {s:?} rendered as {t:?}", c.id),
            }
        }
    }
    // Several stores: one suite each, in order.
    let parsed = quick_junit::Report::deserialize_from_str(&junit::render(&r.all)).unwrap();
    assert_eq!(parsed.test_suites.len(), r.all.len());
    let fails: usize = r.all.iter().map(|x| x.summary.fail).sum();
    assert_eq!(parsed.failures, fails);
}

// ----- SARIF -----

fn sarif_validator() -> jsonschema::Validator {
    let text =
        std::fs::read_to_string(root().join("tests/fixtures/formats/sarif-schema-2.1.0.json"))
            .unwrap();
    let mut schema: Value = serde_json::from_str(&text).unwrap();
    // The official schema's `run.language` pattern, `^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$`,
    // has a lone `]`: a literal in ECMA-262's legacy syntax, but refused by the validator's
    // meta-schema check of `format: regex`. `\]` is the same literal, written the strict way.
    // (It appears twice: run.language and toolComponent.language.)
    for def in ["run", "toolComponent"] {
        let language = &mut schema["definitions"][def]["properties"]["language"]["pattern"];
        assert_eq!(language, "^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$");
        *language = Value::String(r"^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}\]?$".into());
    }
    // Formats are asserted: a `uri` must be a URI.
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the SARIF schema compiles")
}

#[track_caller]
fn assert_valid_sarif(v: &jsonschema::Validator, log: &Value) {
    let errors: Vec<String> = v
        .iter_errors(log)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "SARIF schema errors:\n{}",
        errors.join("\n")
    );
}

#[test]
fn sarif_is_valid_and_counts_agree_with_the_summary() {
    let r = reports();
    let v = sarif_validator();
    // The validator is really strict: a wrong level is refused.
    let mut bad = sarif::to_value(std::slice::from_ref(r.broken()));
    bad["runs"][0]["results"][0]["level"] = Value::String("fatal".into());
    assert!(!v.is_valid(&bad));
    let mut bad = sarif::to_value(std::slice::from_ref(r.broken()));
    bad["runs"][0]["tool"]["driver"]["informationUri"] = Value::String("not a uri".into());
    assert!(!v.is_valid(&bad), "formats are asserted");

    for rep in &r.all {
        let log: Value = serde_json::from_str(&sarif::render(std::slice::from_ref(rep))).unwrap();
        assert_valid_sarif(&v, &log);
        assert_eq!(log["version"], "2.1.0");
        let run = &log["runs"][0];
        let driver = &run["tool"]["driver"];
        assert_eq!(driver["name"], "cks-doctor");
        assert_eq!(driver["version"], env!("CARGO_PKG_VERSION"));
        assert!(driver["informationUri"]
            .as_str()
            .unwrap()
            .starts_with("https://"));
        // Rules: every check that appears, once, with its metadata.
        let rules = driver["rules"].as_array().unwrap();
        let ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
        let expected: Vec<&str> = rep.checks.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, expected);
        for (rule, c) in rules.iter().zip(&rep.checks) {
            let meta = cks_doctor::meta::get(&c.id).unwrap();
            assert_eq!(rule["shortDescription"]["text"], meta.title);
            assert_eq!(rule["fullDescription"]["text"], meta.description);
            assert_eq!(rule["help"]["text"], meta.remediation);
            assert_eq!(
                rule["properties"]["kms_exceptions"],
                serde_json::json!(meta.kms_exceptions)
            );
            assert_eq!(
                rule["properties"]["connection_error_codes"],
                serde_json::json!(meta.connection_error_codes)
            );
            assert_eq!(
                rule["properties"]["severity"],
                format!("{:?}", meta.severity).to_lowercase()
            );
        }
        // Results: FAIL error, WARN warning, ERROR note, MANUAL review; PASS and SKIP none.
        let results = run["results"].as_array().unwrap();
        let level = |l: &str| results.iter().filter(|x| x["level"] == l).count();
        let s = &rep.summary;
        assert_eq!(level("error"), s.fail);
        assert_eq!(level("warning"), s.warn);
        assert_eq!(level("note"), s.error);
        assert_eq!(
            results.iter().filter(|x| x["kind"] == "review").count(),
            s.manual
        );
        assert_eq!(results.len(), s.fail + s.warn + s.error + s.manual);
        for x in results {
            let id = x["ruleId"].as_str().unwrap();
            let i = x["ruleIndex"].as_u64().unwrap() as usize;
            assert_eq!(rules[i]["id"], id);
            let c = rep.checks.iter().find(|c| c.id == id).unwrap();
            let text = x["message"]["text"].as_str().unwrap();
            assert!(text.contains(&c.message), "{text}");
            if c.status == Status::Fail {
                for name in c.kms_exceptions.iter().chain(&c.connection_error_codes) {
                    assert!(text.contains(name.as_str()), "{id}: {text} lacks {name}");
                }
            }
            if c.status == Status::Error {
                assert!(text.contains("could not check"), "{text}");
            }
            let loc = &x["locations"][0]["logicalLocations"][0];
            assert_eq!(loc["name"], markdown::store_label(rep));
            assert_eq!(loc["kind"], "resource");
            let fqn = loc["fullyQualifiedName"].as_str().unwrap();
            assert!(
                fqn.contains(&markdown::resource(rep).unwrap()),
                "{fqn} does not name the cluster or endpoint"
            );
        }
    }
    // All stores in one log: one rule per check id, results of every store.
    let log = sarif::to_value(&r.all);
    assert_valid_sarif(&v, &log);
    let rules = log["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .unwrap();
    let mut ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "a rule is listed twice");
    let errors: usize = r.all.iter().map(|x| x.summary.fail).sum();
    let results = log["runs"][0]["results"].as_array().unwrap();
    assert_eq!(
        results.iter().filter(|x| x["level"] == "error").count(),
        errors
    );
    assert_eq!(
        log["runs"][0]["properties"]["stores"]
            .as_array()
            .unwrap()
            .len(),
        r.all.len()
    );
}

// ----- CSV -----

fn csv_rows(text: &str) -> Vec<Vec<String>> {
    let mut rd = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes());
    rd.records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect()
}

#[test]
fn csv_has_one_row_per_check_and_counts_agree() {
    let r = reports();
    let text = csv::render(&r.all);
    assert!(text.contains("\r\n"), "RFC 4180 lines end with CRLF");
    let rows = csv_rows(&text);
    assert_eq!(rows[0], csv::HEADER);
    let total: usize = r.all.iter().map(|x| x.checks.len()).sum();
    assert_eq!(rows.len(), 1 + total);
    let mut i = 1;
    for rep in &r.all {
        let label = markdown::store_label(rep);
        // Two reports may name the same store (broken and ready): count this one's rows.
        for st in Status::ALL {
            let n = rows[i..i + rep.checks.len()]
                .iter()
                .filter(|row| row[0] == label && row[6] == st.as_str())
                .count();
            assert_eq!(n, count(&rep.summary, st), "{label} {st:?}");
        }
        for c in &rep.checks {
            let row = &rows[i];
            assert_eq!(row[0], label);
            assert_eq!(row[1], rep.target.kind.as_str());
            assert_eq!(row[3], c.id);
            assert_eq!(row[4], c.title);
            assert_eq!(row[8], cks_doctor::codes::join(&c.kms_exceptions, ";"));
            assert_eq!(
                row[9],
                cks_doctor::codes::join(&c.connection_error_codes, ";")
            );
            assert_eq!(row[10], c.message);
            assert_eq!(row[11], c.evidence.join("\n"));
            assert_eq!(row[12], c.remediation.clone().unwrap_or_default());
            i += 1;
        }
    }
}

// ----- Markdown -----

#[test]
fn markdown_summary_table_agrees_with_the_summary() {
    let r = reports();
    let md = markdown::render(&r.all);
    let rows: Vec<Vec<String>> = md
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| Store"))
        .take(r.all.len())
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect();
    assert_eq!(rows.len(), r.all.len());
    for (row, rep) in rows.iter().zip(&r.all) {
        let s = &rep.summary;
        let counts: Vec<String> = [s.pass, s.fail, s.warn, s.error, s.skip, s.manual]
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(&row[4..10], &counts[..], "{row:?}");
        for c in rep.checks.iter().filter(|c| c.status == Status::Fail) {
            assert!(row[10].contains(&format!("`{}`", c.id)), "{row:?}");
        }
        if let Some(d) = &rep.diagnosis {
            assert!(row[2].contains(&d.connection_state), "{row:?}");
        }
        let line = format!(
            "{} passed, {} failed, {} warnings, {} could not check, {} skipped, {} manual",
            s.pass, s.fail, s.warn, s.error, s.skip, s.manual
        );
        assert!(md.contains(&line), "{line}");
    }
    // One line per check, with its emoji.
    for rep in &r.all {
        let md = markdown::render(std::slice::from_ref(rep));
        for st in Status::ALL {
            let n = md
                .lines()
                .filter(|l| l.starts_with(&format!("- {} **", markdown::emoji(st))))
                .count();
            assert_eq!(n, count(&rep.summary, st), "{st:?}");
        }
    }
    assert!(markdown::render(std::slice::from_ref(r.xks())).contains("### Latency"));
}

// ----- HTML -----

/// Every attribute of every tag: (tag, name, value).
fn attributes(html: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        let end = rest[start..]
            .find('>')
            .map(|e| start + e)
            .unwrap_or(rest.len());
        let tag = &rest[start + 1..end];
        rest = &rest[end.min(rest.len())..];
        let name: String = tag
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '!' || *c == '/')
            .collect();
        let mut attrs = &tag[name.len()..];
        while let Some(eq) = attrs.find("=\"") {
            let key = attrs[..eq]
                .rsplit(' ')
                .next()
                .unwrap_or_default()
                .to_string();
            let after = &attrs[eq + 2..];
            let close = after.find('"').expect("attribute values are quoted");
            out.push((name.to_lowercase(), key, after[..close].to_string()));
            attrs = &after[close + 1..];
        }
    }
    out
}

#[test]
fn html_is_self_contained_and_counts_agree() {
    let r = reports();
    let page = html::render(&r.all);
    assert!(page.starts_with("<!DOCTYPE html>"));
    let lower = page.to_lowercase();
    for banned in [
        "<script", "<link", "<img", "<iframe", "<object", "<embed", "@import", "url(", " src=",
        "srcset=",
    ] {
        assert!(!lower.contains(banned), "the HTML has {banned}");
    }
    // The only URLs in attributes are documentation links.
    for (tag, key, value) in attributes(&page) {
        if value.contains("://") || value.starts_with("//") {
            assert!(tag == "a" && key == "href", "<{tag} {key}=\"{value}\">");
            assert!(value.starts_with("https://"), "{value}");
        }
    }
    assert!(lower.contains("<svg"));
    assert!(
        page.contains(" UTC</time> by cks-doctor "),
        "generation time and version"
    );
    assert!(page.contains(&format!("cks-doctor {}", env!("CARGO_PKG_VERSION"))));
    // Per store: the counts, and one table row per check in each status.
    let sections: Vec<&str> = page
        .split("<section class=\"card store\"")
        .skip(1)
        .collect();
    assert_eq!(sections.len(), r.all.len());
    for (sec, rep) in sections.iter().zip(&r.all) {
        let s = &rep.summary;
        for st in Status::ALL {
            let n = count(s, st);
            let attr = format!("data-{}=\"{n}\"", st.as_str().to_lowercase());
            assert!(sec.contains(&attr), "{attr}");
            let rows = sec
                .matches(&format!("<tr class=\"check {}\">", st.as_str()))
                .count();
            assert_eq!(rows, n, "{st:?} rows");
            assert!(sec.contains(&format!("<b>{n}</b>")), "legend count {n}");
        }
        assert!(sec.contains(&html::html_escape(&rep.verdict.text)));
        if let Some(d) = &rep.diagnosis {
            assert!(sec.contains("<h3>Diagnosis</h3>"));
            assert!(sec.contains(&html::html_escape(&d.text)));
        }
        assert_eq!(rep.latency.is_some(), sec.contains("class=\"latency\""));
    }
    // XKS: the phases against the 250 ms budget line.
    let xks = html::render(std::slice::from_ref(r.xks()));
    assert!(xks.contains("250 ms budget"));
    assert!(xks.contains("stroke-dasharray"));
    let total = r.xks().latency.as_ref().unwrap().total_ms.unwrap();
    assert!(xks.contains(&format!("Total: {total:.1} ms")));
}

// ----- escaping -----

const HOSTILE: &str = "=HYPERLINK(\"x\") <script>alert('x')</script> & \"quoted\", comma | pipe *star* _u_ [l](j) ]]> `tick\nsecond line";

fn hostile_report() -> Report {
    let mut rep = reports().broken().clone();
    rep.target.custom_key_store_name = Some(HOSTILE.into());
    for c in rep.checks.iter_mut() {
        c.message = HOSTILE.into();
        c.evidence = vec![HOSTILE.into(), "second <b>item</b>".into()];
    }
    rep.verdict.text = HOSTILE.into();
    rep
}

#[test]
fn every_format_escapes_what_it_renders() {
    let rep = hostile_report();
    let one = std::slice::from_ref(&rep);
    // HTML: no tag from the data, every value escaped.
    let page = html::render(one);
    assert!(!page.contains("<script"), "unescaped script tag");
    assert!(!page.contains("<b>item</b>"));
    assert!(page.contains(&html::html_escape(HOSTILE)));
    // Markdown: no raw HTML, no table cell broken by the pipe, one line per value.
    let md = markdown::render(one);
    assert!(!md.contains("<script"));
    let table_row = md.lines().find(|l| l.contains("HYPERLINK")).unwrap();
    assert_eq!(table_row.matches(" | ").count(), 10, "{table_row}");
    // CSV: the values round-trip (a formula is defused with a quote).
    let rows = csv_rows(&csv::render(one));
    assert_eq!(rows.len(), 1 + rep.checks.len());
    assert!(rows[1][0].starts_with("'=HYPERLINK"), "{}", rows[1][0]);
    assert_eq!(rows[1][10], format!("'{HOSTILE}"));
    // JUnit: well-formed, the values round-trip.
    let parsed = quick_junit::Report::deserialize_from_str(&junit::render(one)).unwrap();
    assert_eq!(
        parsed.test_suites[0].name.as_str(),
        markdown::store_label(&rep).replace('\n', " ")
    );
    // SARIF: still valid, the message round-trips.
    let log = sarif::to_value(one);
    assert_valid_sarif(&sarif_validator(), &log);
    let failed = log["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["level"] == "error")
        .unwrap();
    assert!(failed["message"]["text"]
        .as_str()
        .unwrap()
        .starts_with(HOSTILE));
}

// ----- secrets -----

fn base64(bytes: &[u8], alphabet: &[u8; 64]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..=chunk.len() {
            out.push(alphabet[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// The secret, its base64 (standard and URL-safe, also shifted by one and two bytes as inside a
/// longer encoded text) and its hex (both cases).
fn secret_forms(secret: &str) -> Vec<String> {
    const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut forms = vec![secret.to_string()];
    for alphabet in [STD, URL] {
        for shift in 0..3 {
            let mut bytes = vec![b'x'; shift];
            bytes.extend_from_slice(secret.as_bytes());
            let enc = base64(&bytes, alphabet);
            // Drop the characters that depend on the prefix and the last, partial group.
            let skip = if shift == 0 {
                0
            } else {
                (shift * 8).div_ceil(6) + 1
            };
            let keep = enc.len().saturating_sub(skip + 3);
            forms.push(enc[skip..skip + keep].to_string());
        }
    }
    let hex: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
    forms.push(hex.to_uppercase());
    forms.push(hex);
    forms
}

#[test]
fn secrets_never_appear_in_any_format() {
    let r = reports();
    let outputs: Vec<(&str, String)> = vec![
        ("junit", junit::render(&r.all)),
        ("sarif", sarif::render(&r.all)),
        ("markdown", markdown::render(&r.all)),
        ("html", html::render(&r.all)),
        ("csv", csv::render(&r.all)),
    ];
    for secret in [PASSWORD, xks_secret()] {
        let forms = secret_forms(secret);
        for f in &forms {
            assert!(
                f.len() >= 12,
                "{f:?} is too short to be a meaningful needle"
            );
        }
        for (name, text) in &outputs {
            for f in &forms {
                assert!(
                    !text.contains(f.as_str()),
                    "{name}: secret form {f:?} found"
                );
            }
        }
    }
}

/// A report built in-process (Report::new) renders too, and so does an empty list.
#[test]
fn renderers_take_an_in_process_report() {
    let checks = vec![CheckResult {
        id: "params.name".into(),
        title: "t".into(),
        area: "Request".into(),
        severity: None,
        advisory: false,
        status: Status::Warn,
        message: "m".into(),
        evidence: vec![],
        kms_exceptions: vec![],
        connection_error_codes: vec![],
        mapping_notes: vec![],
        remediation: None,
        duration_ms: 1,
    }];
    let rep = Report::new(
        cks_doctor::report::Target {
            kind: cks_doctor::kind::StoreKind::Cloudhsm,
            operation: "CreateCustomKeyStore".into(),
            source: "test".into(),
            ..Default::default()
        },
        checks,
    );
    let one = std::slice::from_ref(&rep);
    assert_valid_sarif(&sarif_validator(), &sarif::to_value(one));
    assert!(junit::render(one).contains("WARNING: m"));
    assert_eq!(csv_rows(&csv::render(one)).len(), 2);
    assert!(markdown::render(one).contains("- ⚠️ **t**"));
    assert!(html::render(one).contains("<tr class=\"check WARN\">"));
    assert!(html::render(&[]).contains("0 key store(s)"));
}

/// `CKS_FORMATS_OUT=DIR cargo test --test it formats::` also writes every format of the test
/// reports to DIR, to look at (all stores in one file, and the XKS store alone).
#[test]
fn writes_samples_when_asked() {
    let Ok(dir) = std::env::var("CKS_FORMATS_OUT") else {
        return;
    };
    let dir = PathBuf::from(dir);
    std::fs::create_dir_all(&dir).unwrap();
    let r = reports();
    for (name, reps) in [
        ("all", &r.all[..]),
        ("xks", std::slice::from_ref(r.xks())),
        ("diagnose", &r.all[2..3]),
    ] {
        for (ext, text) in [
            ("junit.xml", junit::render(reps)),
            ("sarif", sarif::render(reps)),
            ("md", markdown::render(reps)),
            ("html", html::render(reps)),
            ("csv", csv::render(reps)),
        ] {
            std::fs::write(dir.join(format!("{name}.{ext}")), text).unwrap();
        }
    }
}
