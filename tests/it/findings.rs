//! The findings formats (`--output asff`, `--output ocsf`) and the compliance mappings.
//!
//! - ASFF is validated against Security Hub's API model as botocore ships it in the project's
//!   Python environment (scripts/setup-venv.sh): the document is a `BatchImportFindingsRequest`;
//!   every member emitted exists in its shape (recursively), required members are present,
//!   strings match the shape's enum and pattern, and lengths and item counts stay within the
//!   limits the model gives, as `min`/`max` or in its documentation ("Length Constraints:
//!   Minimum length of 1. Maximum length of 256.", "Array Members: Maximum number of 32 items.").
//! - OCSF is validated against the JSON Schema of the OCSF 1.3.0 Compliance Finding class
//!   (`tests/fixtures/formats/`, see its README for where it comes from).
//! - Ids are stable across runs and differ between stores and checks; secrets never appear; a
//!   scan row that could not be read is a finding; the bundled snapshots render.
//! - Every check id or prefix of `compliance/*.json` names existing checks.

use crate::support::common::assert_clean;
use crate::support::{bin, xks_proxy};
use cks_doctor::report::scan::ScanError;
use cks_doctor::report::{asff, ocsf, render, CheckResult, Report, Target};
use cks_doctor::results::Status;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const PASSWORD: &str = "Kms0Password9Secret";
const ACCOUNT: &str = "111122223333";
const CLUSTER: &str = "cluster-jxhlf7644ne";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn example(name: &str) -> PathBuf {
    root().join("examples").join(name)
}

fn run(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let mut c = bin();
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn broken_args(output: &str) -> Vec<String> {
    let dir = example("broken");
    [
        "--snapshot",
        dir.to_str().unwrap(),
        "--output",
        output,
        "preflight",
        "cloudhsm",
        "--cluster-id",
        CLUSTER,
        "--name",
        "ExampleKeyStore",
        "--trust-anchor",
        dir.join("customerCA.crt").to_str().unwrap(),
        "--cloudhsm-users",
        dir.join("cloudhsm-users.json").to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec()
}

fn failed_store_args(output: &str) -> Vec<String> {
    let dir = example("failed-store");
    [
        "--snapshot",
        dir.to_str().unwrap(),
        "--region",
        "us-east-1",
        "--output",
        output,
        "diagnose",
        "cks-0a1b2c3d4e5f60789",
        "--cloudhsm-users",
        dir.join("cloudhsm-users.json").to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn report_of(args: &[String]) -> Report {
    let (_, out, err) = run(&strs(args), &[("CKS_KEY_STORE_PASSWORD", PASSWORD)]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not a JSON report ({e}): {out}\n{err}"))
}

/// The broken pre-flight and the FAILED store's diagnosis, as the binary reports them.
fn reports() -> &'static (Report, Report) {
    static R: OnceLock<(Report, Report)> = OnceLock::new();
    R.get_or_init(|| {
        (
            report_of(&broken_args("json")),
            report_of(&failed_store_args("json")),
        )
    })
}

fn with_account(r: &Report, account: &str) -> Report {
    let mut r = r.clone();
    r.account = Some(account.into());
    r
}

fn findings_of(v: &Value) -> &Vec<Value> {
    v["Findings"].as_array().expect("a Findings array")
}

// ----- the Security Hub API model ----------------------------------------------------------------

/// The shapes of Security Hub's API model that `BatchImportFindingsRequest` reaches, from
/// botocore's service JSON in the project's Python environment. Each member keeps only the
/// sentences of its documentation that state a limit.
fn model() -> &'static Value {
    static M: OnceLock<Value> = OnceLock::new();
    M.get_or_init(|| {
        let python = root().join(".venv/bin/python");
        assert!(
            python.exists(),
            "this test reads the Security Hub API model from the project's Python environment {}: run scripts/setup-venv.sh (scripts/test.sh does it)",
            python.display()
        );
        let script = r#"
import json, re, botocore.loaders
m = botocore.loaders.Loader().load_service_model("securityhub", "service-2")
shapes = m["shapes"]
limit = re.compile(r"(Length Constraints:[^<]*|Array Members:[^<]*|Can contain up to[^<]*)")
out, todo = {}, ["BatchImportFindingsRequest"]
while todo:
    name = todo.pop()
    if name in out:
        continue
    s = dict(shapes[name])
    s.pop("documentation", None)
    if "members" in s:
        members = {}
        for k, v in s["members"].items():
            members[k] = {"shape": v["shape"], "limits": " ".join(limit.findall(v.get("documentation", "")))}
            todo.append(v["shape"])
        s["members"] = members
    for k in ("member", "key", "value"):
        if k in s:
            todo.append(s[k]["shape"])
            s[k] = {"shape": s[k]["shape"]}
    out[name] = s
print(json.dumps({"version": m["metadata"]["apiVersion"], "shapes": out}))
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
    })
}

/// Limits stated in a member's documentation: (min length, max length) of a string, (min, max)
/// items of a list, and a map's (pairs, key length, value length).
#[derive(Debug, Default)]
struct Limits {
    min_len: Option<usize>,
    max_len: Option<usize>,
    min_items: Option<usize>,
    max_items: Option<usize>,
    max_pairs: Option<usize>,
    max_key: Option<usize>,
    max_value: Option<usize>,
}

fn limits(doc: &str) -> Limits {
    let num = |re: &str| -> Option<usize> {
        regex::Regex::new(re)
            .unwrap()
            .captures(doc)
            .map(|c| c[1].parse().unwrap())
    };
    let mut l = Limits {
        min_len: num(r"Minimum length of (\d+)").or(num(r"Minimum of (\d+) length")),
        max_len: num(r"Maximum length of (\d+)").or(num(r"Maximum of (\d+) length")),
        min_items: num(r"Minimum number of (\d+) item"),
        max_items: num(r"Maximum number of (\d+) item"),
        max_pairs: num(r"up to (\d+) key-value pairs"),
        max_key: num(r"the key can contain up to (\d+) characters"),
        max_value: num(r"the value can contain up to (\d+) characters"),
    };
    // "Length Constraints: 12." is an exact length.
    if let Some(n) = num(r"Length Constraints: (\d+)\.") {
        l.min_len = Some(n);
        l.max_len = Some(n);
    }
    l
}

fn check_len(
    what: &str,
    n: usize,
    min: Option<usize>,
    max: Option<usize>,
    path: &str,
    errors: &mut Vec<String>,
) {
    if min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m) {
        errors.push(format!("{path}: {what} {n} outside {min:?}..{max:?}"));
    }
}

/// Validates `v` against the shape `name` (with the limits its member documentation states).
fn validate(v: &Value, name: &str, doc: &Limits, path: &str, errors: &mut Vec<String>) {
    let shapes = &model()["shapes"];
    let s = &shapes[name];
    assert!(s.is_object(), "shape {name} not in the extract");
    let ty = s["type"].as_str().unwrap();
    let smin = s["min"].as_u64().map(|x| x as usize);
    let smax = s["max"].as_u64().map(|x| x as usize);
    match ty {
        "structure" => {
            let Some(obj) = v.as_object() else {
                errors.push(format!("{path}: not an object for {name}"));
                return;
            };
            let members = s["members"].as_object().unwrap();
            for req in s["required"].as_array().into_iter().flatten() {
                let req = req.as_str().unwrap();
                if !obj.contains_key(req) {
                    errors.push(format!("{path}: required member {req} of {name} missing"));
                }
            }
            for (k, x) in obj {
                match members.get(k) {
                    None => errors.push(format!("{path}: {k} is not a member of {name}")),
                    Some(m) => validate(
                        x,
                        m["shape"].as_str().unwrap(),
                        &limits(m["limits"].as_str().unwrap_or_default()),
                        &format!("{path}.{k}"),
                        errors,
                    ),
                }
            }
        }
        "list" => {
            let Some(items) = v.as_array() else {
                errors.push(format!("{path}: not an array for {name}"));
                return;
            };
            check_len("items", items.len(), smin, smax, path, errors);
            check_len(
                "items",
                items.len(),
                doc.min_items,
                doc.max_items,
                path,
                errors,
            );
            let member = s["member"]["shape"].as_str().unwrap();
            for (i, x) in items.iter().enumerate() {
                validate(
                    x,
                    member,
                    &Limits::default(),
                    &format!("{path}[{i}]"),
                    errors,
                );
            }
        }
        "map" => {
            let Some(obj) = v.as_object() else {
                errors.push(format!("{path}: not an object for map {name}"));
                return;
            };
            check_len("pairs", obj.len(), smin, smax, path, errors);
            check_len("pairs", obj.len(), None, doc.max_pairs, path, errors);
            let key = s["key"]["shape"].as_str().unwrap();
            let value = s["value"]["shape"].as_str().unwrap();
            for (k, x) in obj {
                let key_limits = Limits {
                    max_len: doc.max_key,
                    ..Default::default()
                };
                validate(
                    &Value::String(k.clone()),
                    key,
                    &key_limits,
                    &format!("{path} key {k:?}"),
                    errors,
                );
                let value_limits = Limits {
                    max_len: doc.max_value,
                    ..Default::default()
                };
                validate(x, value, &value_limits, &format!("{path}[{k:?}]"), errors);
            }
        }
        "string" => {
            let Some(text) = v.as_str() else {
                errors.push(format!("{path}: not a string for {name}"));
                return;
            };
            if let Some(e) = s["enum"].as_array() {
                if !e.iter().any(|x| x == text) {
                    errors.push(format!("{path}: {text:?} is not one of {name}'s values"));
                }
            }
            if let Some(p) = s["pattern"].as_str() {
                let re = regex::Regex::new(&format!("^(?s:{p})$")).unwrap();
                if !re.is_match(text) {
                    errors.push(format!(
                        "{path}: {text:?} does not match {name}'s pattern {p}"
                    ));
                }
            }
            let n = text.chars().count();
            check_len("length", n, smin, smax, path, errors);
            check_len("length", n, doc.min_len, doc.max_len, path, errors);
        }
        "integer" | "long" => {
            if !(v.is_i64() || v.is_u64()) {
                errors.push(format!("{path}: not an integer"));
            }
        }
        "double" | "float" => {
            if !v.is_number() {
                errors.push(format!("{path}: not a number"));
            }
        }
        "boolean" => {
            if !v.is_boolean() {
                errors.push(format!("{path}: not a boolean"));
            }
        }
        other => errors.push(format!("{path}: shape type {other} not handled")),
    }
}

/// The errors of an ASFF document against the model: as one BatchImportFindings request, or as
/// the requests of 100 findings each that a larger document is split into.
fn asff_errors(doc: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    let all = findings_of(doc);
    for (i, chunk) in all.chunks(100).enumerate() {
        let request = serde_json::json!({ "Findings": chunk });
        validate(
            &request,
            "BatchImportFindingsRequest",
            &Limits::default(),
            &format!("batch {i}"),
            &mut errors,
        );
    }
    if all.is_empty() {
        errors.push("no finding".into());
    }
    // Times are RFC 3339 in UTC.
    let time = regex::Regex::new(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$").unwrap();
    for f in all {
        for k in ["CreatedAt", "UpdatedAt"] {
            let t = f[k].as_str().unwrap_or_default();
            if !time.is_match(t) {
                errors.push(format!("{}: {k} {t:?} is not RFC 3339", f["Id"]));
            }
        }
    }
    errors
}

#[track_caller]
fn assert_valid_asff(doc: &Value) {
    let errors = asff_errors(doc);
    assert!(
        errors.is_empty(),
        "{} ASFF error(s) against the Security Hub model {}:\n{}",
        errors.len(),
        model()["version"],
        errors.join("\n")
    );
}

// ----- the OCSF schema ---------------------------------------------------------------------------

fn ocsf_validator() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| {
        let text = std::fs::read_to_string(
            root().join("tests/fixtures/formats/ocsf-1.3.0-compliance_finding.schema.json"),
        )
        .unwrap();
        let schema: Value = serde_json::from_str(&text).unwrap();
        jsonschema::options()
            .build(&schema)
            .expect("the OCSF schema compiles")
    })
}

fn ocsf_errors(events: &Value) -> Vec<String> {
    let v = ocsf_validator();
    let mut errors = Vec::new();
    let list = events.as_array().expect("an array of events");
    if list.is_empty() {
        errors.push("no event".into());
    }
    for (i, e) in list.iter().enumerate() {
        errors.extend(
            v.iter_errors(e)
                .map(|err| format!("event {i}: {err} at {}", err.instance_path())),
        );
        // What the schema cannot say: type_uid is class_uid * 100 + activity_id.
        let (class, activity, ty) = (
            e["class_uid"].as_u64().unwrap_or(0),
            e["activity_id"].as_u64().unwrap_or(0),
            e["type_uid"].as_u64().unwrap_or(0),
        );
        if ty != class * 100 + activity {
            errors.push(format!(
                "event {i}: type_uid {ty} for class {class}, activity {activity}"
            ));
        }
    }
    errors
}

#[track_caller]
fn assert_valid_ocsf(events: &Value) {
    let errors = ocsf_errors(events);
    assert!(
        errors.is_empty(),
        "{} OCSF schema error(s):\n{}",
        errors.len(),
        errors.join("\n")
    );
}

// ----- tests -------------------------------------------------------------------------------------

/// The validators are strict: an unknown member, a missing required member, a wrong enum value,
/// an over-long title and a wrong class are refused.
#[test]
fn the_validators_refuse_what_is_wrong() {
    let (broken, _) = reports();
    let good = asff::to_value(std::slice::from_ref(broken));
    assert_valid_asff(&good);
    let mut f = findings_of(&good)[0].clone();
    f["Colour"] = "red".into();
    f["Severity"]["Label"] = "SEVERE".into();
    f["Title"] = "x".repeat(257).into();
    f.as_object_mut().unwrap().remove("GeneratorId");
    f["Resources"][0]["Partition"] = "mars".into();
    f["AwsAccountId"] = "1234".into();
    f["Description"] = " ".into();
    let errors = asff_errors(&serde_json::json!({ "Findings": [f] }));
    for what in [
        "Colour is not a member",
        "\"SEVERE\" is not one of",
        "length 257 outside",
        "required member GeneratorId",
        "\"mars\" is not one of",
        "length 4 outside",
        "does not match NonEmptyString's pattern",
    ] {
        assert!(
            errors.iter().any(|e| e.contains(what)),
            "no error {what:?} in {errors:#?}"
        );
    }

    let good = ocsf::to_value(std::slice::from_ref(broken));
    assert_valid_ocsf(&good);
    let mut e = good[0].clone();
    e["class_uid"] = 2004.into();
    e["compliance"]["colour"] = "red".into();
    e["metadata"]["product"]
        .as_object_mut()
        .unwrap()
        .remove("vendor_name");
    let errors = ocsf_errors(&Value::Array(vec![e]));
    assert!(errors.len() >= 4, "{errors:#?}");
}

/// The bundled snapshots, through the binary: valid ASFF and OCSF, one finding per check.
#[test]
fn the_snapshot_examples_render_valid_findings() {
    let (broken, failed) = reports();
    for (args, report) in [
        (broken_args as fn(&str) -> Vec<String>, broken),
        (failed_store_args, failed),
    ] {
        let (code, out, err) = run(&strs(&args("asff")), &[]);
        assert!(matches!(code, Some(1)), "{err}");
        let doc: Value = serde_json::from_str(&out).unwrap();
        assert_valid_asff(&doc);
        assert_eq!(findings_of(&doc).len(), report.checks.len());
        let (code, out, err) = run(&strs(&args("ocsf")), &[]);
        assert!(matches!(code, Some(1)), "{err}");
        let events: Value = serde_json::from_str(&out).unwrap();
        assert_valid_ocsf(&events);
        assert_eq!(events.as_array().unwrap().len(), report.checks.len());
    }
    // The FAILED store: the failing check is a FAILED, HIGH finding about the store, whose ARN
    // is built from the Region and (unknown here) account.
    let (_, out, _) = run(&strs(&failed_store_args("asff")), &[]);
    let doc: Value = serde_json::from_str(&out).unwrap();
    let f = findings_of(&doc)
        .iter()
        .find(|f| f["GeneratorId"] == "cloudhsm.subnets.free-addresses")
        .unwrap();
    assert_eq!(f["Compliance"]["Status"], "FAILED");
    assert_eq!(f["Severity"]["Label"], "HIGH");
    assert_eq!(f["RecordState"], "ACTIVE");
    assert_eq!(f["AwsAccountId"], asff::PLACEHOLDER_ACCOUNT);
    assert!(f["ProductFields"]["cks-doctor/AccountUnknown"].is_string());
    assert_eq!(
        f["ProductFields"]["cks-doctor/ConnectionErrorCodes"],
        "INSUFFICIENT_FREE_ADDRESSES_IN_SUBNET"
    );
    assert_eq!(
        f["Resources"][0]["Id"],
        "arn:aws:kms:us-east-1::custom-key-store/cks-0a1b2c3d4e5f60789"
    );
    assert_eq!(
        f["Resources"][0]["Details"]["Other"]["ResourceType"],
        "AwsKmsCustomKeyStore"
    );
    assert_eq!(
        f["Resources"][1]["Id"],
        "arn:aws:cloudhsm:us-east-1::cluster/cluster-jxhlf7644ne"
    );
}

/// With the account known: the account is the finding's, the product's and the ARNs'; every
/// status gets its compliance status, severity and record state; the fix and its URL, the KMS
/// names and the compliance requirements are there.
#[test]
fn asff_fields_follow_the_report() {
    let (broken, failed) = reports();
    let reps = [with_account(broken, ACCOUNT), with_account(failed, ACCOUNT)];
    let doc = asff::to_value(&reps);
    assert_valid_asff(&doc);
    let all = findings_of(&doc);
    let by = |report: usize, id: &str| -> &Value {
        let label = if report == 0 {
            "cloudhsm-cluster/"
        } else {
            "cks-0a1b2c3d4e5f60789/"
        };
        all.iter()
            .find(|f| f["GeneratorId"] == id && f["Id"].as_str().unwrap().contains(label))
            .unwrap_or_else(|| panic!("no finding for {id}"))
    };
    for f in all {
        assert_eq!(f["AwsAccountId"], ACCOUNT);
        assert!(f["ProductFields"]
            .get("cks-doctor/AccountUnknown")
            .is_none());
        assert_eq!(
            f["ProductFields"]["cks-doctor/Version"],
            env!("CARGO_PKG_VERSION")
        );
    }
    // The broken pre-flight has no Region: the ARNs leave it empty, the account is there.
    let f = by(0, "cloudhsm.trust-anchor.signed-cluster-cert");
    assert_eq!(
        f["ProductArn"],
        format!("arn:aws:securityhub::{ACCOUNT}:product/{ACCOUNT}/default")
    );
    assert_eq!(
        f["Resources"][0]["Id"],
        format!("arn:aws:cloudhsm::{ACCOUNT}:cluster/{CLUSTER}")
    );
    assert_eq!(
        f["Resources"][0]["Details"]["Other"]["PlannedCustomKeyStoreName"],
        "ExampleKeyStore"
    );
    assert_eq!(f["Compliance"]["Status"], "FAILED");
    assert_eq!(f["Severity"]["Label"], "CRITICAL");
    assert_eq!(f["FindingProviderFields"]["Severity"]["Label"], "CRITICAL");
    assert_eq!(
        f["ProductFields"]["cks-doctor/KmsExceptions"],
        "IncorrectTrustAnchorException"
    );
    assert_eq!(
        f["Compliance"]["RelatedRequirements"],
        serde_json::json!(["NIST.800-53.r5 SC-23"])
    );
    assert!(f["Types"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t.as_str().unwrap().ends_with("NIST 800-53 Controls (USA)")));
    let fix = &f["Remediation"]["Recommendation"];
    assert!(fix["Text"].as_str().unwrap().len() <= 512);
    assert!(fix["Url"].as_str().unwrap().starts_with("https://"));

    let f = by(1, "cloudhsm.subnets.free-addresses");
    assert_eq!(
        f["ProductArn"],
        format!("arn:aws:securityhub:us-east-1:{ACCOUNT}:product/{ACCOUNT}/default")
    );
    assert_eq!(
        f["Resources"][0]["Id"],
        format!("arn:aws:kms:us-east-1:{ACCOUNT}:custom-key-store/cks-0a1b2c3d4e5f60789")
    );
    assert_eq!(f["Region"], "us-east-1");
    // Status by status.
    let seen: HashSet<Status> = reps
        .iter()
        .flat_map(|r| r.checks.iter().map(|c| c.status))
        .collect();
    for f in all {
        let status = f["ProductFields"]["cks-doctor/Status"].as_str().unwrap();
        let (compliance, record, workflow) = match status {
            "FAIL" => ("FAILED", "ACTIVE", "NEW"),
            "WARN" => ("WARNING", "ACTIVE", "NEW"),
            "MANUAL" => ("WARNING", "ACTIVE", "NEW"),
            "ERROR" => ("NOT_AVAILABLE", "ACTIVE", "NEW"),
            "SKIP" => ("NOT_AVAILABLE", "ARCHIVED", "RESOLVED"),
            "PASS" => ("PASSED", "ARCHIVED", "RESOLVED"),
            s => panic!("status {s}"),
        };
        assert_eq!(f["Compliance"]["Status"], compliance, "{status}");
        assert_eq!(f["RecordState"], record, "{status}");
        assert_eq!(f["Workflow"]["Status"], workflow, "{status}");
        if matches!(status, "PASS" | "SKIP" | "MANUAL") {
            assert_eq!(f["Severity"]["Label"], "INFORMATIONAL", "{status}");
        }
    }
    assert!(
        seen.contains(&Status::Pass)
            && seen.contains(&Status::Fail)
            && seen.contains(&Status::Warn)
            && seen.contains(&Status::Manual)
    );
    // A WARN is one step below its check's severity (never below LOW).
    let f = by(0, "cloudhsm.network.private-subnets");
    assert_eq!(f["ProductFields"]["cks-doctor/Status"], "WARN");
    assert_eq!(f["Severity"]["Original"], "low");
    assert_eq!(f["Severity"]["Label"], "LOW");
}

/// The same checks as OCSF events, with the account, Region, requirements and ids of ASFF.
#[test]
fn ocsf_fields_follow_the_report() {
    let (broken, failed) = reports();
    let reps = [with_account(broken, ACCOUNT), with_account(failed, ACCOUNT)];
    let events = ocsf::to_value(&reps);
    assert_valid_ocsf(&events);
    let asff_ids: Vec<Value> = findings_of(&asff::to_value(&reps))
        .iter()
        .map(|f| f["Id"].clone())
        .collect();
    let ocsf_ids: Vec<Value> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["finding_info"]["uid"].clone())
        .collect();
    assert_eq!(asff_ids, ocsf_ids);
    let e = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["finding_info"]["analytic"]["uid"] == "cloudhsm.subnets.free-addresses"
                && e["cloud"]["region"] == "us-east-1"
        })
        .unwrap();
    assert_eq!(e["class_uid"], 2003);
    assert_eq!(e["category_uid"], 2);
    assert_eq!(e["type_uid"], 200301);
    assert_eq!(e["severity_id"], 4);
    assert_eq!(e["compliance"]["status_id"], 3);
    assert_eq!(e["compliance"]["status_code"], "FAIL");
    assert_eq!(e["cloud"]["provider"], "AWS");
    assert_eq!(e["cloud"]["account"]["uid"], ACCOUNT);
    assert_eq!(
        e["resources"][0]["uid"],
        format!("arn:aws:kms:us-east-1:{ACCOUNT}:custom-key-store/cks-0a1b2c3d4e5f60789")
    );
    assert_eq!(
        e["unmapped"]["connection_error_codes"],
        serde_json::json!(["INSUFFICIENT_FREE_ADDRESSES_IN_SUBNET"])
    );
    assert!(e["remediation"]["desc"].as_str().unwrap().len() > 10);
    let pass = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["compliance"]["status_code"] == "PASS")
        .unwrap();
    assert_eq!(pass["activity_id"], 3);
    assert_eq!(pass["status_id"], 4);
    assert_eq!(pass["compliance"]["status_id"], 1);
    // Without an account, OCSF leaves it out rather than invent one.
    let events = ocsf::to_value(std::slice::from_ref(failed));
    assert_valid_ocsf(&events);
    assert!(events[0]["cloud"].get("account").is_none());
}

/// Ids: the same across two runs (of the binary), unique within a document, different for
/// another store, account or Region, and never longer than ASFF allows.
#[test]
fn ids_are_stable_and_distinct() {
    let ids = |out: &str| -> Vec<String> {
        let doc: Value = serde_json::from_str(out).unwrap();
        findings_of(&doc)
            .iter()
            .map(|f| f["Id"].as_str().unwrap().to_string())
            .collect()
    };
    let args = failed_store_args("asff");
    let (_, first, _) = run(&strs(&args), &[]);
    std::thread::sleep(std::time::Duration::from_millis(5));
    let (_, second, _) = run(&strs(&args), &[]);
    assert_eq!(ids(&first), ids(&second));
    let (broken, failed) = reports();
    let mut other = with_account(failed, ACCOUNT);
    other.diagnosis.as_mut().unwrap().custom_key_store_id = "cks-0fffffffffffffff1".into();
    let mut other_region = with_account(failed, ACCOUNT);
    other_region.target.region = Some("eu-west-1".into());
    let reps = [
        broken.clone(),
        with_account(broken, ACCOUNT),
        failed.clone(),
        with_account(failed, ACCOUNT),
        other,
        other_region,
    ];
    let doc = asff::to_value(&reps);
    let all: Vec<&str> = findings_of(&doc)
        .iter()
        .map(|f| f["Id"].as_str().unwrap())
        .collect();
    let unique: HashSet<&&str> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "duplicate ids");
    assert!(all
        .iter()
        .all(|id| id.len() <= 512 && !id.contains(char::is_whitespace)));
    assert!(all.contains(
        &"cks-doctor/111122223333/us-east-1/cks-0a1b2c3d4e5f60789/cloudhsm.subnets.free-addresses"
    ));
    assert!(all.contains(&"cks-doctor/unknown-account/unknown-region/cloudhsm-cluster/cluster-jxhlf7644ne/cloudhsm.hsms.two-az"));
    // A subject too long for 512 characters is hashed, still stable and distinct.
    let mut long = failed.clone();
    long.diagnosis.as_mut().unwrap().custom_key_store_id = "x".repeat(600);
    let a = asff::to_value(std::slice::from_ref(&long));
    let b = asff::to_value(std::slice::from_ref(&long));
    assert_eq!(findings_of(&a)[0]["Id"], findings_of(&b)[0]["Id"]);
    assert!(findings_of(&a)[0]["Id"]
        .as_str()
        .unwrap()
        .contains("/sha256-"));
    assert_valid_asff(&a);
}

fn scan_error() -> ScanError {
    ScanError {
        account: None,
        profile: Some("prod".into()),
        region: Some("eu-west-1".into()),
        error: "access denied: kms:DescribeCustomKeyStores".into(),
    }
}

/// A Region a scan could not read is a could-not-check finding (NOT_AVAILABLE, MEDIUM) in both
/// formats, alongside the stores that were read.
#[test]
fn a_scan_error_row_becomes_a_finding() {
    let (_, failed) = reports();
    let errors = [scan_error()];
    let style = render::TableStyle::default();
    let one = std::slice::from_ref(failed);
    let doc: Value = serde_json::from_str(&render::render(
        render::Format::Asff,
        one,
        Some(&errors),
        style,
    ))
    .unwrap();
    assert_valid_asff(&doc);
    assert_eq!(findings_of(&doc).len(), failed.checks.len() + 1);
    let f = findings_of(&doc).last().unwrap();
    assert_eq!(f["GeneratorId"], "scan.region");
    assert_eq!(f["Compliance"]["Status"], "NOT_AVAILABLE");
    assert_eq!(f["Severity"]["Label"], "MEDIUM");
    assert_eq!(f["Region"], "eu-west-1");
    assert!(f["Description"].as_str().unwrap().contains("access denied"));
    assert!(f["Id"].as_str().unwrap().contains("/scan/"));
    let events: Value = serde_json::from_str(&render::render(
        render::Format::Ocsf,
        &[],
        Some(&errors),
        style,
    ))
    .unwrap();
    assert_valid_ocsf(&events);
    assert_eq!(events.as_array().unwrap().len(), 1);
    assert_eq!(events[0]["compliance"]["status_code"], "ERROR");
    assert_eq!(events[0]["resources"][0]["type"], "AwsAccount");
    // With the account known, the scan row is about the account itself.
    let mut r = cks_doctor::report::scan::error_report(&errors[0]);
    r.account = Some(ACCOUNT.into());
    let doc = asff::to_value(std::slice::from_ref(&r));
    assert_valid_asff(&doc);
    assert_eq!(findings_of(&doc)[0]["Resources"][0]["Type"], "AwsAccount");
    assert_eq!(
        findings_of(&doc)[0]["Resources"][0]["Id"],
        format!("AWS::::Account:{ACCOUNT}")
    );
}

/// Long, multi-byte and hostile text is cut to ASFF's limits on character boundaries, and
/// still valid in both formats.
#[test]
fn long_text_is_cut_to_the_limits() {
    let check = CheckResult {
        id: "cloudhsm.hsms.two-az".into(),
        title: "é".repeat(300),
        area: "HSMs".into(),
        severity: Some(cks_doctor::meta::Severity::High),
        advisory: false,
        status: Status::Error,
        message: "ü\u{1F600}<script>\"".repeat(400),
        evidence: vec!["e".repeat(5000)],
        kms_exceptions: vec![],
        connection_error_codes: vec![],
        mapping_notes: vec![],
        remediation: Some("ß".repeat(1000)),
        duration_ms: 1,
    };
    let mut r = Report::new(
        Target {
            kind: cks_doctor::kind::StoreKind::Cloudhsm,
            operation: "CreateCustomKeyStore".into(),
            cloud_hsm_cluster_id: Some(CLUSTER.into()),
            region: Some("ap-southeast-2".into()),
            source: "test".into(),
            ..Default::default()
        },
        vec![check],
    );
    r.account = Some(ACCOUNT.into());
    let doc = asff::to_value(std::slice::from_ref(&r));
    assert_valid_asff(&doc);
    let f = &findings_of(&doc)[0];
    assert!(f["Title"].as_str().unwrap().ends_with('…'));
    assert!(f["Description"]
        .as_str()
        .unwrap()
        .starts_with("could not check"));
    assert_eq!(f["Severity"]["Label"], "MEDIUM");
    assert_valid_ocsf(&ocsf::to_value(std::slice::from_ref(&r)));
}

/// The kmsuser password and the XKS secret given to a run appear in neither format (stdout,
/// stderr with -vv, the --report file).
#[test]
fn secrets_never_appear_in_findings() {
    let tmp = tempfile::tempdir().unwrap();
    let check = |secret: &str, args: &[String], env: &[(&str, &str)]| {
        for format in ["asff", "ocsf"] {
            let file = tmp.path().join(format!("report.{format}.out"));
            let mut a: Vec<String> = vec![
                "-vv".into(),
                "--output".into(),
                format.into(),
                "--report".into(),
            ];
            a.push(file.display().to_string());
            a.extend(args.iter().cloned());
            let (code, out, err) = run(&strs(&a), env);
            assert!(code.is_some_and(|c| c != 2), "{format}: {err}");
            assert!(
                out.trim_start()
                    .starts_with(if format == "asff" { "{" } else { "[" }),
                "{format}: {out}"
            );
            assert_clean(secret, &format!("{format} stdout"), &out);
            assert_clean(secret, &format!("{format} stderr"), &err);
            assert_clean(
                secret,
                &format!("{format} report"),
                &std::fs::read_to_string(&file).unwrap(),
            );
        }
    };
    // The password, through a request document.
    let snap = example("broken");
    check(
        PASSWORD,
        &[
            "--snapshot".into(),
            snap.display().to_string(),
            "preflight".into(),
            "--cli-input-json".into(),
            snap.join("request.json").display().to_string(),
        ],
        &[("CKS_KEY_STORE_PASSWORD", PASSWORD)],
    );
    // The XKS secret, signing requests to a real proxy.
    use xks_proxy::*;
    let proxy = TestProxy::start_blocking(ProxyOptions::default());
    let ca = tmp.path().join("ca.pem");
    std::fs::write(&ca, proxy.root_ca_pem()).unwrap();
    let args: Vec<String> = [
        "--snapshot",
        example("ready").to_str().unwrap(),
        "--region",
        REGION,
        "preflight",
        "xks",
        "--uri-endpoint",
        ENDPOINT,
        "--uri-path",
        PATH,
        "--access-key-id",
        ACCESS_KEY_ID,
        "--connect-to",
        &proxy.connect_to_arg(),
        "--trust-ca",
        ca.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec();
    check(SECRET, &args, &[("CKS_XKS_SECRET_ACCESS_KEY", SECRET)]);
    // And the XKS report itself is valid in both formats.
    let mut json_args = vec!["--output".to_string(), "json".into()];
    json_args.extend(args.iter().cloned());
    let (_, out, err) = run(&strs(&json_args), &[("CKS_XKS_SECRET_ACCESS_KEY", SECRET)]);
    let xks: Report = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    let xks = with_account(&xks, ACCOUNT);
    let doc = asff::to_value(std::slice::from_ref(&xks));
    assert_valid_asff(&doc);
    let f = findings_of(&doc)
        .iter()
        .find(|f| f["GeneratorId"] == "xks.tls.version")
        .unwrap();
    assert_eq!(
        f["Resources"][0]["Details"]["Other"]["ResourceType"],
        "AwsKmsXksProxy"
    );
    assert!(f["Resources"][0]["Id"]
        .as_str()
        .unwrap()
        .starts_with(ENDPOINT));
    assert_eq!(
        f["Compliance"]["RelatedRequirements"],
        serde_json::json!(["NIST.800-53.r5 SC-8(1)", "NIST.800-53.r5 SC-13"])
    );
    assert_valid_ocsf(&ocsf::to_value(std::slice::from_ref(&xks)));
}

/// `--status` hides findings as it hides rows; the exit code still covers every check.
#[test]
fn the_status_filter_selects_findings() {
    let mut args = vec!["--status".to_string(), "fail,error".into()];
    args.extend(failed_store_args("asff"));
    let (code, out, _) = run(&strs(&args), &[]);
    assert_eq!(code, Some(1));
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_valid_asff(&doc);
    let statuses: HashSet<&str> = findings_of(&doc)
        .iter()
        .map(|f| f["ProductFields"]["cks-doctor/Status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, HashSet::from(["FAIL"]));
}

// ----- compliance mappings -----------------------------------------------------------------------

/// Every check id or prefix of every mapping names at least one existing check, requirement ids
/// look like the framework's, and the mapped checks show their requirements in HTML and explain.
#[test]
fn every_mapping_names_existing_checks() {
    let frameworks = cks_doctor::compliance::load_all().unwrap();
    assert!(!frameworks.is_empty());
    let ids: Vec<&str> = cks_doctor::meta::all()
        .iter()
        .map(|m| m.id.as_str())
        .collect();
    let nist = regex::Regex::new(r"^[A-Z]{2}-\d+(\(\d+\))?$").unwrap();
    let mut problems = Vec::new();
    let mut covered: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in &frameworks {
        for (req, m) in &f.mappings {
            if f.id.starts_with("nist-800-53") && !nist.is_match(req) {
                problems.push(format!(
                    "{}: {req} is not a NIST SP 800-53 control id",
                    f.id
                ));
            }
            for p in &m.checks {
                let hit: Vec<&&str> = ids
                    .iter()
                    .filter(|id| cks_doctor::compliance::matches(id, p))
                    .collect();
                if hit.is_empty() {
                    problems.push(format!("{} {req}: {p:?} names no check", f.id));
                }
                for id in hit {
                    covered.entry(id.to_string()).or_default().push(req.clone());
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The framework files are on disk as embedded (no stale build).
    let on_disk = std::fs::read_dir(root().join("compliance"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "json")
        })
        .count();
    assert_eq!(on_disk, frameworks.len());
    // Shown in HTML and explain.
    let (broken, _) = reports();
    let html = cks_doctor::report::html::render(std::slice::from_ref(broken));
    assert!(
        html.contains("Compliance: NIST.800-53.r5 SC-36"),
        "no compliance line in the HTML"
    );
    assert!(
        html.contains("<b>NIST.800-53.r5 SC-36:</b> Distributed Processing and Storage (judgement")
    );
    let (code, out, _) = run(&["explain", "cloudhsm.hsms.two-az"], &[]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains(
            "Compliance: NIST.800-53.r5 SC-36 Distributed Processing and Storage (judgement"
        ),
        "{out}"
    );
    assert!(covered.contains_key("xks.tls.version"));
}

/// `asff` and `ocsf` are --output values; a --report file keeps following its extension.
#[test]
fn the_formats_are_output_values() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("r.sarif");
    let mut args = vec!["--report".to_string(), file.display().to_string()];
    args.extend(failed_store_args("ocsf"));
    let (_, out, _) = run(&strs(&args), &[]);
    assert!(out.trim_start().starts_with('['));
    let sarif: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    assert_eq!(
        render::Format::from_path(Path::new("x.json")),
        Some(render::Format::Json)
    );
}

// ------------------------------------------------------------------------------------------------
// --security-hub-import: the printed ASFF in the SDK's types

/// Every finding `--output asff` prints converts to the SDK's AwsSecurityFinding with every
/// field it has (the SDK's own serializer is what BatchImportFindings sends; the live test
/// compares what arrives with what was printed); a field the importer does not know is an
/// error naming it, never dropped.
#[test]
fn every_printed_finding_converts_for_batch_import_and_unknown_fields_are_refused() {
    use cks_doctor::securityhub;
    let (a, b) = reports();
    let mut with_account = b.clone();
    with_account.account = Some("222233334444".into());
    let doc = asff::to_value(&[a.clone(), with_account]);
    let findings = findings_of(&doc);
    assert!(findings.len() > 10);
    for f in findings {
        let sdk = securityhub::to_sdk(f).unwrap_or_else(|e| panic!("{e}: {f:#}"));
        assert_eq!(sdk.id(), f["Id"].as_str());
        assert_eq!(sdk.aws_account_id(), f["AwsAccountId"].as_str());
        assert_eq!(
            sdk.compliance()
                .and_then(|c| c.status())
                .map(|s| s.as_str()),
            f["Compliance"]["Status"].as_str()
        );
        assert_eq!(
            sdk.resources().len(),
            f["Resources"].as_array().unwrap().len()
        );
        assert_eq!(
            sdk.product_fields().map(|m| m.len()),
            f["ProductFields"].as_object().map(|m| m.len())
        );
    }
    let mut extra = findings[0].clone();
    extra["Note"] = serde_json::json!({"Text": "x"});
    let e = securityhub::to_sdk(&extra).unwrap_err();
    assert!(e.contains("finding.Note"), "{e}");
    let mut nested = findings[0].clone();
    nested["Severity"]["Normalized"] = serde_json::json!(40);
    let e = securityhub::to_sdk(&nested).unwrap_err();
    assert!(e.contains("Severity.Normalized"), "{e}");

    // The plan: one group per account and Region; a report that does not know its account is
    // not importable, and says why.
    let groups = securityhub::plan(findings.clone(), &[]);
    assert_eq!(groups.len(), 2, "{groups:#?}");
    assert!(groups
        .iter()
        .all(|g| g.access.is_none() && g.why_not.is_some()));
    let unknown = groups
        .iter()
        .find(|g| g.account == asff::PLACEHOLDER_ACCOUNT)
        .expect("the report without an account");
    assert!(unknown
        .why_not
        .as_deref()
        .unwrap()
        .contains("does not know its AWS account"));
    let dry = securityhub::dry_run(&groups);
    assert!(
        dry.contains("nothing sent") && dry.contains("NOT importable"),
        "{dry}"
    );
}
