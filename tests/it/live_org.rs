//! `scan --organization` through the live path: the built binary's real AWS SDK clients
//! (Organizations ListAccounts, STS AssumeRole through the SDK's AssumeRoleProvider, then every
//! store's facts with the assumed role's credentials) against `tests/live/server.py`, which
//! serves an organisation whose accounts each hold their own key stores, clusters and EC2
//! resources (moto's per-account state), and answers a call in the account whose access key
//! AssumeRole handed out.
//!
//! Covered: pages of ListAccounts, ACTIVE accounts only, one AssumeRole per account however many
//! Regions, the session name, a denied role, a required external id, a Region the account has
//! not enabled, `--regions all` per account, a throttled account (retried, or could-not-check
//! when it stays throttled), --accounts and --exclude-accounts, a caller that is not the
//! management account, and the account of every finding in ASFF.
//!
//! Needs the project's Python environment: `scripts/setup-venv.sh` (`scripts/test.sh` runs it).

use crate::support::live_server;
use crate::support::live_server::{cloudhsm_ec2, strings};

use live_server::{run_cks_doctor_raw, tmp, RawRun, Scenario, Scenarios, Server};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

const REGION: &str = "us-east-1";
const OTHER_REGION: &str = "eu-west-1";
const OPT_IN_REGION: &str = "ap-east-1";
const LOG: &str = "live-org-server.log";
const ROLE: &str = "CksDoctorAudit";

const MANAGEMENT: &str = "111111111111";
/// Two Regions, a CloudHSM store in us-east-1 and an external one in eu-west-1.
const PROD: &str = "222222222222";
/// Its role refuses cks-doctor.
const DENIED: &str = "333333333333";
/// Suspended: never assumed.
const SUSPENDED: &str = "444444444444";
/// Has not enabled ap-east-1.
const NO_OPT_IN: &str = "555555555555";
/// Its trust policy requires an external id.
const EXTERNAL: &str = "666666666666";
const EXTERNAL_ID: &str = "cks-doctor-7f3a";

const PROD_CLUSTER: &str = "cluster-prodclusterusa";
const PROD_STORE: &str = "cks-2222222222222a001";
const PROD_XKS: &str = "cks-2222222222222b001";
const MGMT_XKS: &str = "cks-1111111111111a001";
const NO_OPT_IN_XKS: &str = "cks-5555555555555a001";
const EXTERNAL_XKS: &str = "cks-6666666666666a001";

static SERVER: Scenarios = Scenarios::new(LOG);

fn run_named(name: &str) {
    SERVER.run(SCENARIOS, name);
}

fn xks(id: &str, name: &str, state: &str) -> Value {
    json!({
        "id": id, "name": name, "type": "EXTERNAL_KEY_STORE", "state": state,
        "connectivity": "PUBLIC_ENDPOINT",
        "uri_endpoint": format!("https://{name}.xks.example.com"), "uri_path": "/kms/xks/v1",
        "access_key_id": "ABCDE12345670EXAMPLE",
    })
}

/// The organisation: the management account's own store, and five member accounts.
fn organization() -> Value {
    json!({
        "region": REGION,
        "account": MANAGEMENT,
        "key_stores": [xks(MGMT_XKS, "mgmt", "CONNECTED")],
        "organization": {
            "role": ROLE,
            // Three pages of ListAccounts for six accounts.
            "page_size": 2,
            "accounts": [
                {
                    "id": PROD, "name": "prod",
                    "regions": [REGION, OTHER_REGION],
                    "region": REGION,
                    "ec2": cloudhsm_ec2(PROD_CLUSTER, true),
                    "clusters": [{
                        "id": PROD_CLUSTER, "vpc": "vpc",
                        "subnets": {"us-east-1a": "a", "us-east-1b": "b"},
                        "security_group": "sg",
                        "hsms": [{"az": "us-east-1a", "state": "ACTIVE"}, {"az": "us-east-1b", "state": "ACTIVE"}],
                    }],
                    "key_stores": [{"id": PROD_STORE, "name": "prod-hsm", "cluster": PROD_CLUSTER, "state": "CONNECTED"}],
                    "more_regions": [{"region": OTHER_REGION, "key_stores": [xks(PROD_XKS, "prod-xks", "FAILED")]}],
                },
                {"id": DENIED, "name": "denied", "deny": true},
                {"id": SUSPENDED, "name": "suspended", "state": "SUSPENDED",
                 "key_stores": [xks("cks-4444444444444a001", "suspended", "CONNECTED")]},
                {"id": NO_OPT_IN, "name": "no-opt-in",
                 "regions": [REGION, OTHER_REGION], "disabled_regions": [OPT_IN_REGION],
                 "key_stores": [xks(NO_OPT_IN_XKS, "no-opt-in", "CONNECTED")]},
                {"id": EXTERNAL, "name": "external", "external_id": EXTERNAL_ID,
                 "key_stores": [xks(EXTERNAL_XKS, "external", "CONNECTED")]},
            ],
        },
    })
}

fn org_scan(srv: &Server, output: &str, extra: &[&str]) -> RawRun {
    let mut args = strings(&[
        "--region",
        REGION,
        "--endpoint-url",
        &srv.url(),
        "--output",
        output,
        "--timeout",
        "10",
        "scan",
        "--organization",
        "--role-name",
        ROLE,
    ]);
    args.extend(strings(extra));
    run_cks_doctor_raw(&args, &tmp(LOG))
}

fn json_of(run: &RawRun) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| {
        panic!(
            "{}: not JSON ({e})\n{}\n{}",
            run.args, run.stdout, run.stderr
        )
    })
}

/// (account, store id) of every report.
fn stores(v: &Value) -> BTreeSet<(String, String)> {
    v["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["account"].as_str().unwrap_or("").to_string(),
                r["diagnosis"]["custom_key_store_id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect()
}

/// (account, Region or "", error) of every could-not-scan row.
fn errors(v: &Value) -> Vec<(String, String, String)> {
    v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["account"].as_str().unwrap_or("").to_string(),
                e["region"].as_str().unwrap_or("").to_string(),
                e["error"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Every call of `action` the server saw, with its parameters, Region and account.
fn requests(srv: &Server, action: &str) -> Vec<Value> {
    srv.control("GET", "requests", None)
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == action)
        .cloned()
        .collect()
}

/// The AssumeRole requests the server saw: (role ARN, session name, external id).
fn assume_role_requests(srv: &Server) -> Vec<(String, String, Option<String>)> {
    requests(srv, "sts:AssumeRole")
        .iter()
        .map(|r| {
            let p = &r["params"];
            (
                p["RoleArn"].as_str().unwrap().to_string(),
                p["RoleSessionName"].as_str().unwrap().to_string(),
                p["ExternalId"].as_str().map(str::to_string),
            )
        })
        .collect()
}

fn role(account: &str) -> String {
    format!("arn:aws:iam::{account}:role/{ROLE}")
}

#[test]
fn org_every_active_account_is_scanned_with_its_own_role() {
    run_named("org_scan");
}

fn org_scan_all(srv: &Server) {
    srv.seed(&organization());
    let run = org_scan(
        srv,
        "json",
        &[
            "--regions",
            &format!("{REGION},{OTHER_REGION},{OPT_IN_REGION}"),
            "--external-id",
            EXTERNAL_ID,
        ],
    );
    let v = json_of(&run);
    // Each account's stores, each report naming its account; the suspended account's store
    // is never read.
    assert_eq!(
        stores(&v),
        BTreeSet::from([
            (MANAGEMENT.to_string(), MGMT_XKS.to_string()),
            (PROD.to_string(), PROD_STORE.to_string()),
            (PROD.to_string(), PROD_XKS.to_string()),
            (NO_OPT_IN.to_string(), NO_OPT_IN_XKS.to_string()),
            (EXTERNAL.to_string(), EXTERNAL_XKS.to_string()),
        ]),
        "{}",
        run.stderr
    );
    // Each store was read in its own Region with its own account's facts: the CloudHSM
    // store's cluster and EC2 resources are in PROD's us-east-1 only.
    let prod_hsm = v["reports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["diagnosis"]["custom_key_store_id"] == PROD_STORE)
        .unwrap();
    assert_eq!(prod_hsm["target"]["region"], REGION);
    let active = prod_hsm["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "cloudhsm.cluster.active")
        .unwrap();
    assert_eq!(active["status"], "PASS", "{active:#}");

    // The denied role and the Region not enabled are could-not-check rows; nothing else is.
    let errs = errors(&v);
    assert_eq!(errs.len(), 2, "{errs:#?}");
    let denied = errs.iter().find(|e| e.0 == DENIED).expect("DENIED's row");
    assert_eq!(denied.1, "", "the whole account: {denied:?}");
    assert!(
        denied.2.contains("could not assume the role")
            && denied.2.contains("access denied")
            && denied.2.contains(&role(DENIED)),
        "{}",
        denied.2
    );
    let opt_in = errs
        .iter()
        .find(|e| e.0 == NO_OPT_IN)
        .expect("NO_OPT_IN's row");
    assert_eq!(opt_in.1, OPT_IN_REGION);
    assert!(
        opt_in.2.contains("is ap-east-1 enabled for the account"),
        "{}",
        opt_in.2
    );
    // Nothing failed for certain: the prod XKS store is FAILED, so the scan fails.
    assert_eq!(run.code, 1, "{}", run.stderr);

    // One AssumeRole per ACTIVE account (the management account's too), however many Regions,
    // with cks-doctor's session name; the run's one --external-id is sent to every role, and
    // the suspended account's role is never asked for.
    let assumed = assume_role_requests(srv);
    let arns: BTreeSet<String> = assumed.iter().map(|a| a.0.clone()).collect();
    assert_eq!(
        arns,
        [MANAGEMENT, PROD, DENIED, NO_OPT_IN, EXTERNAL]
            .iter()
            .map(|a| role(a))
            .collect::<BTreeSet<_>>()
    );
    assert_eq!(assumed.len(), 5, "one AssumeRole each: {assumed:#?}");
    assert!(assumed.iter().all(|a| a.1 == "cks-doctor-scan"));
    assert!(assumed.iter().all(|a| a.2.as_deref() == Some(EXTERNAL_ID)));
    // Three pages of ListAccounts, all read.
    assert_eq!(srv.calls()["organizations:ListAccounts"], 3);
    // Every Region of PROD was read with PROD's credentials.
    let prod_calls: BTreeMap<String, u64> =
        serde_json::from_value(srv.control("GET", &format!("calls?account={PROD}"), None)).unwrap();
    assert_eq!(
        prod_calls["kms:DescribeCustomKeyStores"], 3,
        "{prod_calls:?}"
    );
    assert_eq!(prod_calls["cloudhsm:DescribeClusters"], 1, "{prod_calls:?}");

    // The table names the accounts and says what could not be scanned.
    let table = org_scan(
        srv,
        "table",
        &[
            "--regions",
            &format!("{REGION},{OTHER_REGION},{OPT_IN_REGION}"),
            "--external-id",
            EXTERNAL_ID,
        ],
    );
    assert!(table.stdout.contains("account"), "{}", table.stdout);
    assert!(
        table
            .stdout
            .contains(&format!("could not scan account {DENIED}")),
        "{}",
        table.stdout
    );
    assert!(
        table.stdout.contains(&format!(
            "could not scan {OPT_IN_REGION} (account {NO_OPT_IN})"
        )),
        "{}",
        table.stdout
    );

    // ASFF: every finding in its own account, the rows that could not be read included.
    let asff = json_of(&org_scan(
        srv,
        "asff",
        &["--regions", REGION, "--external-id", EXTERNAL_ID],
    ));
    let findings = asff["Findings"].as_array().unwrap();
    let by_account: BTreeSet<&str> = findings
        .iter()
        .map(|f| f["AwsAccountId"].as_str().unwrap())
        .collect();
    assert!(by_account.contains(DENIED), "{by_account:?}");
    assert!(by_account.contains(PROD), "{by_account:?}");
    for f in findings {
        let account = f["AwsAccountId"].as_str().unwrap();
        assert!(
            f["ProductArn"]
                .as_str()
                .unwrap()
                .contains(&format!(":{account}:product/{account}/default")),
            "{f:#}"
        );
    }
    let denied_finding = findings
        .iter()
        .find(|f| f["AwsAccountId"] == DENIED)
        .unwrap();
    assert_eq!(denied_finding["GeneratorId"], "scan.account");
    assert_eq!(denied_finding["Compliance"]["Status"], "NOT_AVAILABLE");
}

/// Without the external id the account that requires it cannot be read; --accounts and
/// --exclude-accounts choose the accounts; an account --accounts names that is not in the
/// organisation, or is not ACTIVE, is a row of its own.
fn org_choose_accounts(srv: &Server) {
    srv.seed(&organization());
    let run = org_scan(srv, "json", &["--accounts", &format!("{EXTERNAL},{PROD}")]);
    let v = json_of(&run);
    let errs = errors(&v);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].0, EXTERNAL);
    assert!(errs[0].2.contains("AccessDenied"), "{}", errs[0].2);
    let accounts: BTreeSet<String> = stores(&v).into_iter().map(|s| s.0).collect();
    assert_eq!(accounts, BTreeSet::from([PROD.to_string()]));
    let arns: BTreeSet<String> = assume_role_requests(srv).into_iter().map(|a| a.0).collect();
    assert_eq!(arns, BTreeSet::from([role(EXTERNAL), role(PROD)]));

    srv.seed(&organization());
    let run = org_scan(
        srv,
        "json",
        &[
            "--exclude-accounts",
            &format!("{DENIED},{EXTERNAL},{NO_OPT_IN},{MANAGEMENT}"),
        ],
    );
    let v = json_of(&run);
    assert!(errors(&v).is_empty(), "{:#?}", errors(&v));
    let accounts: BTreeSet<String> = stores(&v).into_iter().map(|s| s.0).collect();
    assert_eq!(accounts, BTreeSet::from([PROD.to_string()]));

    srv.seed(&organization());
    let v = json_of(&org_scan(
        srv,
        "json",
        &["--accounts", &format!("{SUSPENDED},999999999999")],
    ));
    let errs = errors(&v);
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert!(errs
        .iter()
        .any(|e| e.0 == SUSPENDED && e.2.contains("SUSPENDED")));
    assert!(errs
        .iter()
        .any(|e| e.0 == "999999999999" && e.2.contains("does not list")));
    assert!(assume_role_requests(srv).is_empty());
}

/// `--regions all`: each account's own enabled Regions (its DescribeRegions, made with its
/// role), never the ones it has not opted in to.
fn org_all_regions(srv: &Server) {
    srv.seed(&organization());
    let run = org_scan(
        srv,
        "json",
        &[
            "--regions",
            "all",
            "--accounts",
            &format!("{NO_OPT_IN},{PROD}"),
        ],
    );
    let v = json_of(&run);
    assert!(errors(&v).is_empty(), "{:#?}", errors(&v));
    for account in [NO_OPT_IN, PROD] {
        let regions: BTreeSet<String> = requests(srv, "kms:DescribeCustomKeyStores")
            .iter()
            .filter(|r| r["account"] == account)
            .map(|r| r["region"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            regions,
            BTreeSet::from([REGION.to_string(), OTHER_REGION.to_string()]),
            "{account}"
        );
        let calls: BTreeMap<String, u64> =
            serde_json::from_value(srv.control("GET", &format!("calls?account={account}"), None))
                .unwrap();
        assert_eq!(calls["ec2:DescribeRegions"], 1, "{account}: {calls:?}");
    }
}

/// A throttled account: a few throttled calls are retried and the scan reads it; an account
/// that stays throttled is could-not-check ("throttled"), and the others are read.
fn org_throttled_account(srv: &Server) {
    srv.seed(&organization());
    srv.faults(json!([
        {"action": "kms:DescribeCustomKeyStores", "error": "ThrottlingException", "account": PROD, "times": 2},
        {"action": "kms:DescribeCustomKeyStores", "error": "ThrottlingException", "account": NO_OPT_IN},
    ]));
    let v = json_of(&org_scan(
        srv,
        "json",
        &[
            "--regions",
            REGION,
            "--accounts",
            &format!("{PROD},{NO_OPT_IN}"),
        ],
    ));
    let errs = errors(&v);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(
        (errs[0].0.as_str(), errs[0].1.as_str()),
        (NO_OPT_IN, REGION)
    );
    assert!(errs[0].2.contains("throttled"), "{}", errs[0].2);
    assert!(stores(&v).contains(&(PROD.to_string(), PROD_STORE.to_string())));
    let prod: BTreeMap<String, u64> =
        serde_json::from_value(srv.control("GET", &format!("calls?account={PROD}"), None)).unwrap();
    assert_eq!(
        prod["kms:DescribeCustomKeyStores"], 3,
        "two throttled, one answered"
    );

    // --retry-mode adaptive: the SDK's client-side rate limiter holds the retry after a
    // throttle (about 10 s for a new client), inside a --timeout with room for it.
    srv.seed(&organization());
    srv.faults(json!({"action": "kms:DescribeCustomKeyStores", "error": "ThrottlingException", "account": PROD, "times": 1}));
    let mut args = strings(&[
        "--region",
        REGION,
        "--endpoint-url",
        &srv.url(),
        "--output",
        "json",
        "--timeout",
        "40",
        "scan",
        "--organization",
        "--role-name",
        ROLE,
        "--accounts",
        PROD,
        "--retry-mode",
        "adaptive",
    ]);
    args.extend(strings(&["--regions", REGION]));
    let v = json_of(&run_cks_doctor_raw(&args, &tmp(LOG)));
    assert!(errors(&v).is_empty(), "{:#?}", errors(&v));
    assert!(stores(&v).contains(&(PROD.to_string(), PROD_STORE.to_string())));
}

/// A caller that is not the organisation's management account cannot list its accounts: one
/// could-not-check row, exit 3, and nothing assumed.
fn org_not_management(srv: &Server) {
    let mut seed = organization();
    seed["organization"]["page_size"] = json!(20);
    srv.seed(&seed);
    srv.faults(json!({"action": "organizations:ListAccounts", "error": "AccessDeniedException"}));
    let run = org_scan(srv, "json", &[]);
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    let errs = errors(&json_of(&run));
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0]
            .2
            .contains("could not list the organisation's accounts")
            && errs[0].2.contains("organizations:ListAccounts"),
        "{}",
        errs[0].2
    );
    assert!(assume_role_requests(srv).is_empty());
}

#[test]
fn org_accounts_are_chosen_with_accounts_and_exclude_accounts() {
    run_named("org_choose_accounts");
}

#[test]
fn org_regions_all_is_each_account_s_enabled_regions() {
    run_named("org_all_regions");
}

#[test]
fn org_a_throttled_account_is_retried_or_could_not_check() {
    run_named("org_throttled_account");
}

#[test]
fn org_a_caller_outside_the_management_account_gets_one_row() {
    run_named("org_not_management");
}

/// Bad input is a one-line error and exit 2, before any AWS call.
#[test]
fn org_bad_input_is_exit_2() {
    for (extra, needle) in [
        (
            vec!["--organization", "--role-name", ROLE, "--accounts", "12345"],
            "is not an AWS account id",
        ),
        (
            vec!["--organization", "--role-name", "bad name!"],
            "is not an IAM role name",
        ),
        (
            vec![
                "--organization",
                "--role-name",
                ROLE,
                "--regions",
                "all,us-east-1",
            ],
            "--regions all cannot be combined",
        ),
        (vec!["--organization"], "--role-name"),
    ] {
        let mut args = strings(&[
            "--region",
            REGION,
            "--endpoint-url",
            "http://127.0.0.1:9",
            "scan",
        ]);
        args.extend(strings(&extra));
        let run = run_cks_doctor_raw(&args, &tmp(LOG));
        assert_eq!(run.code, 2, "{extra:?}: {}", run.stderr);
        assert!(run.stderr.contains(needle), "{extra:?}: {}", run.stderr);
        assert!(run.stdout.is_empty());
    }
}

const SCENARIOS: &[Scenario] = &[
    ("org_scan", org_scan_all),
    ("org_choose_accounts", org_choose_accounts),
    ("org_all_regions", org_all_regions),
    ("org_throttled_account", org_throttled_account),
    ("org_not_management", org_not_management),
    ("org_security_hub_import", org_security_hub_import),
];

// ------------------------------------------------------------------------------------------------
// scan --security-hub-import

/// Three more external key stores in PROD's us-east-1: with the CloudHSM store, more than 100
/// findings there, so two BatchImportFindings calls.
fn organization_with_many_findings() -> Value {
    let mut seed = organization();
    let prod = &mut seed["organization"]["accounts"][0];
    for (i, id) in [
        "cks-2222222222222c001",
        "cks-2222222222222c002",
        "cks-2222222222222c003",
    ]
    .iter()
    .enumerate()
    {
        prod["key_stores"].as_array_mut().unwrap().push(xks(
            id,
            &format!("prod-more-{i}"),
            "CONNECTED",
        ));
    }
    seed
}

fn import_run(srv: &Server, output: &str, extra: &[&str]) -> RawRun {
    let mut args = vec![
        "--regions",
        REGION,
        "--external-id",
        EXTERNAL_ID,
        "--security-hub-import",
    ];
    args.extend_from_slice(extra);
    org_scan(srv, output, &args)
}

/// What Security Hub holds, per (account, Region), by finding id.
fn imported(srv: &Server) -> BTreeMap<(String, String), BTreeMap<String, Value>> {
    let mut out: BTreeMap<(String, String), BTreeMap<String, Value>> = BTreeMap::new();
    for x in srv.control("GET", "findings", None).as_array().unwrap() {
        let key = (
            x["account"].as_str().unwrap().to_string(),
            x["region"].as_str().unwrap().to_string(),
        );
        let f = x["finding"].clone();
        out.entry(key)
            .or_default()
            .insert(f["Id"].as_str().unwrap().to_string(), f);
    }
    out
}

/// A finding without the two fields that change between runs.
fn timeless(f: &Value) -> Value {
    let mut f = f.clone();
    let o = f.as_object_mut().unwrap();
    o.remove("CreatedAt");
    o.remove("UpdatedAt");
    f
}

fn org_security_hub_import(srv: &Server) {
    srv.seed(&organization_with_many_findings());
    // Without a terminal or --yes it refuses, before any AWS call.
    let refused = import_run(srv, "asff", &[]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(refused.stderr.contains("pass --yes"), "{}", refused.stderr);
    assert!(srv.calls().is_empty(), "{:?}", srv.calls());

    // --dry-run says where each finding would go and sends nothing.
    let dry = import_run(srv, "asff", &["--dry-run"]);
    assert!(dry.stderr.contains("nothing sent"), "{}", dry.stderr);
    assert!(
        dry.stderr
            .contains(&format!("account {PROD} in {REGION}: ")),
        "{}",
        dry.stderr
    );
    assert!(
        dry.stderr.contains(&format!(
            "account {DENIED}: 1 finding(s) NOT importable: this run has no credentials"
        )),
        "{}",
        dry.stderr
    );
    assert!(imported(srv).is_empty());
    assert!(!srv
        .calls()
        .contains_key("securityhub:POST /findings/import"));

    // --yes: each account's findings in its own account and Region, exactly as --output asff
    // printed them; more than 100 in one place go in calls of at most 100.
    let run = import_run(srv, "asff", &["--yes"]);
    assert_eq!(run.code, 1, "the FAILED store fails: {}", run.stderr);
    let printed = json_of(&run);
    let held = imported(srv);
    let mut expected: BTreeMap<(String, String), BTreeMap<String, Value>> = BTreeMap::new();
    for f in printed["Findings"].as_array().unwrap() {
        let account = f["AwsAccountId"].as_str().unwrap();
        if account == DENIED {
            continue; // no credentials there: not imported, and said so
        }
        expected
            .entry((account.to_string(), REGION.to_string()))
            .or_default()
            .insert(f["Id"].as_str().unwrap().to_string(), f.clone());
    }
    assert_eq!(
        held.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (place, findings) in &expected {
        let got = &held[place];
        assert_eq!(got.len(), findings.len(), "{place:?}");
        for (id, f) in findings {
            assert_eq!(timeless(&got[id]), timeless(f), "{place:?} {id}");
        }
    }
    let prod_count = expected[&(PROD.to_string(), REGION.to_string())].len();
    assert!(prod_count > 100, "{prod_count}");
    let prod_calls: BTreeMap<String, u64> =
        serde_json::from_value(srv.control("GET", &format!("calls?account={PROD}"), None)).unwrap();
    assert_eq!(
        prod_calls["securityhub:POST /findings/import"] as usize,
        prod_count.div_ceil(100)
    );
    assert!(
        run.stderr.contains(&format!(
            "✓ account {PROD} in {REGION}: {prod_count} imported"
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!(
            "✗ account {DENIED}: 0 of 0 sent imported; not imported: this run has no credentials"
        )),
        "{}",
        run.stderr
    );

    // A second import updates the same findings (stable ids): nothing is duplicated.
    let again = import_run(srv, "json", &["--yes"]);
    assert_eq!(again.code, 1);
    let held_again = imported(srv);
    for (place, findings) in &held {
        assert_eq!(held_again[place].len(), findings.len(), "{place:?}");
    }

    // An account whose Security Hub refuses (not enabled there) is said so; the others are
    // imported.
    srv.seed(&organization_with_many_findings());
    srv.faults(json!({
        "action": "securityhub:POST /findings/import", "account": PROD,
        "error": "InvalidAccessException", "status": 401,
        "message": format!("Account {PROD} is not subscribed to AWS Security Hub"),
    }));
    let run = import_run(srv, "json", &["--yes"]);
    assert!(
        run.stderr
            .contains(&format!("✗ account {PROD} in {REGION}"))
            && run.stderr.contains("not subscribed to AWS Security Hub"),
        "{}",
        run.stderr
    );
    assert!(!imported(srv).contains_key(&(PROD.to_string(), REGION.to_string())));
    assert!(imported(srv).contains_key(&(MANAGEMENT.to_string(), REGION.to_string())));
}

#[test]
fn org_security_hub_import_sends_each_account_s_findings_to_its_own_security_hub() {
    run_named("org_security_hub_import");
}
