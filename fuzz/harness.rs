//! What each fuzz target feeds its input to (project issue 7).
//!
//! One function per target in `fuzz/fuzz_targets/`. This file is shared by the fuzz targets
//! (`#[path = "../harness.rs"] mod harness;`) and by the main package's
//! `tests/it/fuzz_regressions.rs`, which replays every seed (`fuzz/corpus/<target>/`) and every
//! minimized crash (`fuzz/regressions/<target>/`) through exactly the same calls. It must
//! therefore use nothing but `cks_doctor`, `serde`, `serde_json`, `tokio` and `std` (the
//! dependencies both packages have).
//!
//! The rule under test: no input makes cks-doctor panic (errors are fine). A few assertions
//! below also check invariants that, when broken, mean a real bug (a certificate accepted as DER
//! must survive a PEM round trip; a snapshot struct must read back what `cks-doctor snapshot`
//! writes).

#![allow(dead_code)]

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use cks_doctor::certs::{self, Cert};
use cks_doctor::checks::xks::{classify_health, parse_health};
use cks_doctor::facts::model::*;
use cks_doctor::facts::recorded::{self, Recorded};
use cks_doctor::input;
use cks_doctor::xks::probe::Exchange;

/// The fuzz targets, by the name of their directory under `fuzz/corpus/` and `fuzz/regressions/`.
pub const TARGETS: &[(&str, fn(&[u8]))] = &[
    ("cert_pem", cert_pem),
    ("cert_der", cert_der),
    ("xks_health", xks_health),
    ("snapshot", snapshot),
    ("cli_input", cli_input),
    ("facts", facts),
];

// ----------------------------------------------------------------------------------------------
// (1) Trust anchor / certificate input
// ----------------------------------------------------------------------------------------------

/// The input as a trust anchor file: `parse_pem_chain_bytes` (what `--trust-anchor FILE` reads)
/// and, when it is UTF-8, `parse_pem_chain`; every chain that parses is then verified.
pub fn cert_pem(data: &[u8]) {
    if let Ok(chain) = certs::parse_pem_chain_bytes(data) {
        exercise_chain(&chain);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        match certs::parse_pem_chain(text) {
            Ok(chain) => exercise_chain(&chain),
            Err(e) => drop(e.to_string()),
        }
    }
}

/// The input as DER: `Cert::from_der` on the whole input, then on each consecutive DER element
/// (so that a seed made of cluster certificate + CA (+ root) is mutated as DER, never through
/// base64), and the certificates that parse are verified as a chain, first one = cluster.
pub fn cert_der(data: &[u8]) {
    match Cert::from_der(data.to_vec()) {
        Ok(c) => exercise_chain(std::slice::from_ref(&c)),
        Err(e) => drop(e.to_string()),
    }
    let parts = split_der(data, certs::MAX_PEM_CERTIFICATES);
    if parts.len() < 2 {
        return;
    }
    let mut chain = Vec::new();
    for p in parts {
        match Cert::from_der(p.to_vec()) {
            Ok(c) => chain.push(c),
            Err(e) => drop(e.to_string()),
        }
    }
    exercise_chain(&chain);
}

/// Consecutive DER TLV elements (at most `max`; anything unparsable is the last piece).
fn split_der(data: &[u8], max: usize) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut pos = 0;
    while pos < data.len() && parts.len() < max {
        let rest = &data[pos..];
        let end = der_element_len(rest).filter(|&n| n <= rest.len());
        match end {
            Some(n) if n > 0 => {
                parts.push(&rest[..n]);
                pos += n;
            }
            _ => {
                parts.push(rest);
                break;
            }
        }
    }
    parts
}

/// Header + content length of the DER element at the start of `d` (definite lengths only).
fn der_element_len(d: &[u8]) -> Option<usize> {
    let first = *d.get(1)?;
    if first < 0x80 {
        return Some(2 + first as usize);
    }
    let n = (first & 0x7f) as usize;
    if n == 0 || n > 4 {
        return None;
    }
    let bytes = d.get(2..2 + n)?;
    let len = bytes.iter().fold(0usize, |acc, &b| (acc << 8) | b as usize);
    Some(2 + n + len)
}

/// Everything the tool does with a parsed trust anchor input (and, with two or more
/// certificates, with "the first one is the cluster certificate, the rest the anchor").
fn exercise_chain(chain: &[Cert]) {
    for c in chain {
        let s = c.summary_ref();
        let _ = format!("{c:?} {s:?}");
        let _ = c.is_valid_at(0);
        let _ = certs::verify_self_signed(c).map_err(|e| e.to_string());
        // A certificate accepted as DER is written back as PEM (reports, `snapshot`): that text
        // must parse to the very same certificate.
        let pem = c.to_pem();
        match certs::parse_pem_chain(&pem) {
            Ok(back) => assert!(
                back.len() == 1 && back[0] == *c,
                "PEM round trip changed the certificate"
            ),
            Err(e) => {
                panic!("a certificate accepted as DER does not parse back from its own PEM: {e}")
            }
        }
    }
    for now in [0, 1_700_000_000, i64::MIN, i64::MAX] {
        let v = certs::verify_anchor_chain_at(chain, now);
        describe_verdict(&v);
    }
    describe_verdict(&certs::verify_anchor_chain(chain));
    if let Some((cluster, anchor)) = chain.split_first() {
        if !anchor.is_empty() {
            let _ = certs::verify_cluster_cert(cluster, anchor).map_err(|e| e.to_string());
            let _ = certs::find_issuer(cluster, anchor);
            let _ = certs::verify_signed_by(cluster, &anchor[0]).map_err(|e| e.to_string());
        }
    }
}

fn describe_verdict(v: &certs::ChainVerdict) {
    let _ = (v.outcome(), v.is_ok());
    for i in v.errors().chain(v.warnings()) {
        let _ = (i.to_string(), i.severity());
    }
    for l in v.failed_links() {
        let _ = (l.is_self_signature(), format!("{:?}", l.result));
    }
}

// ----------------------------------------------------------------------------------------------
// (2) XKS GetHealthStatus answers
// ----------------------------------------------------------------------------------------------

/// `parse_health` on the whole input; then an `Exchange` with the HTTP status from the first two
/// bytes (big-endian) and the rest as the body, classified by `classify_health`.
pub fn xks_health(data: &[u8]) {
    let _ = parse_health(data).map(|h| format!("{h:?}"));
    let Some((status, body)) = data.split_first_chunk::<2>() else {
        return;
    };
    let status = u16::from_be_bytes(*status);
    let _ = parse_health(body).map(|h| format!("{h:?}"));
    for body_truncated in [false, true] {
        let ex = Exchange {
            status,
            content_type: Some("application/json".into()),
            date: None,
            received_unix: 0,
            body: body.to_vec(),
            body_truncated,
        };
        let o = classify_health(&ex);
        let _ = format!("{o:?}");
        let _ = ex.body_text();
    }
}

// ----------------------------------------------------------------------------------------------
// (3) Snapshot files
// ----------------------------------------------------------------------------------------------

/// The input as every snapshot file `src/facts/recorded.rs` reads (each `Describe*Output`, the
/// caller identity), as a `cloudhsm-cli user list` file, and through `Recorded::load_dir` on a
/// directory where every snapshot file name holds the input.
pub fn snapshot(data: &[u8]) {
    roundtrip::<DescribeClustersOutput>(data);
    roundtrip::<DescribeSecurityGroupsOutput>(data);
    roundtrip::<DescribeSubnetsOutput>(data);
    roundtrip::<DescribeCustomKeyStoresOutput>(data);
    roundtrip::<DescribeRouteTablesOutput>(data);
    roundtrip::<DescribeNetworkAclsOutput>(data);
    roundtrip::<DescribeVpcEndpointServiceConfigurationsOutput>(data);
    roundtrip::<DescribeVpcEndpointServicePermissionsOutput>(data);
    roundtrip::<DescribeVpcEndpointServicesOutput>(data);
    roundtrip::<DescribeLoadBalancersOutput>(data);
    roundtrip::<CallerIdentity>(data);

    match std::str::from_utf8(data) {
        Ok(text) => users(text),
        Err(_) => users(&String::from_utf8_lossy(data)),
    }

    with_scratch(|dir| {
        let snap = dir.join("snapshot");
        let users_file = dir.join("users.json");
        if !snap.is_dir() {
            std::fs::create_dir_all(&snap).expect("scratch directory");
            let data_file = dir.join("snapshot-data.json");
            std::fs::write(&data_file, b"").expect("scratch file");
            for f in recorded::FILES {
                link_or_copy(&data_file, &snap.join(f.file));
            }
            link_or_copy(&data_file, &users_file);
        }
        std::fs::write(dir.join("snapshot-data.json"), data).expect("scratch file");
        match Recorded::load_dir(&snap) {
            Ok(r) => use_recorded(&r),
            Err(e) => drop(e.to_string()),
        }
        let _ = input::load_users(users_file.to_str().expect("UTF-8 temp path"))
            .map_err(|e| e.to_string());
    });
}

fn users(text: &str) {
    if let Ok(list) = CloudHsmUserList::from_json(text) {
        let _ = format!("{list:?}");
    }
}

/// Deserializes `T`; when that works, what `cks-doctor snapshot` would write for it must read
/// back as the same value.
fn roundtrip<T>(data: &[u8])
where
    T: serde::de::DeserializeOwned + serde::Serialize + PartialEq + std::fmt::Debug,
{
    let Ok(v) = serde_json::from_slice::<T>(data) else {
        return;
    };
    let text = serde_json::to_string_pretty(&v).expect("a fact serializes");
    match serde_json::from_str::<T>(&text) {
        Ok(back) => assert_eq!(back, v, "snapshot round trip changed the value"),
        Err(e) => panic!("cks-doctor cannot read back the snapshot it writes: {e}\n{text}"),
    }
}

fn use_recorded(r: &Recorded) {
    let _ = r.describe();
    let clusters: Vec<String> = r
        .clusters
        .iter()
        .flatten()
        .map(|c| c.cluster_id.clone())
        .collect();
    let _ = r.describe_clusters(&clusters);
    let groups: Vec<String> = r
        .security_groups
        .iter()
        .flatten()
        .map(|g| g.group_id.clone())
        .collect();
    let _ = r.describe_security_groups(&groups);
    let subnets: Vec<String> = r
        .subnets
        .iter()
        .flatten()
        .map(|s| s.subnet_id.clone())
        .collect();
    let _ = r.describe_subnets(&subnets);
    let _ = r.describe_custom_key_stores();
    let vpc = ["vpc-0123456789abcdef0".to_string()];
    let service = ["com.amazonaws.vpce.x".to_string()];
    let _ = r.describe_route_tables(&vpc);
    let _ = r.describe_network_acls(&vpc);
    let _ = r.describe_vpc_endpoint_service_configurations(&service);
    let _ = r.describe_vpc_endpoint_service_permissions("vpce-svc-0");
    let _ = r.describe_vpc_endpoint_services(&service);
    let _ = r.describe_load_balancers(&[]);
    let _ = r.get_caller_identity();
}

// ----------------------------------------------------------------------------------------------
// (4) --cli-input-json and --proxy-config documents
// ----------------------------------------------------------------------------------------------

/// The input as the file of `--cli-input-json` (`parse_cli_input`, plain path and `file://`)
/// and of `--proxy-config` (`parse_proxy_config`).
pub fn cli_input(data: &[u8]) {
    with_scratch(|dir| {
        let file = dir.join("request.json");
        std::fs::write(&file, data).expect("scratch file");
        let path = file.to_str().expect("UTF-8 temp path");
        for arg in [path.to_string(), format!("file://{path}")] {
            match input::parse_cli_input(&arg) {
                Ok(input::CliInputRequest::CloudHsm { trust_anchor, .. }) => {
                    exercise_chain(&trust_anchor.chain);
                    let _ = trust_anchor.text.chars().count();
                }
                Ok(input::CliInputRequest::Xks(p)) => drop(p.uri_endpoint),
                Err(e) => drop(e.to_string()),
            }
            match input::parse_proxy_config(&arg) {
                Ok(p) => drop((p.uri_endpoint, p.uri_path)),
                Err(e) => drop(e.to_string()),
            }
        }
    });
}

// ----------------------------------------------------------------------------------------------
// Scratch files
// ----------------------------------------------------------------------------------------------

thread_local! {
    static SCRATCH: RefCell<Option<PathBuf>> = const { RefCell::new(None) };
}

/// A directory of this thread's own (made once per thread, under the system's temp dir; the
/// fuzzers and the regression test run single inputs, so it holds a few small files at most).
fn with_scratch<R>(f: impl FnOnce(&Path) -> R) -> R {
    SCRATCH.with(|cell| {
        let mut slot = cell.borrow_mut();
        let dir = slot.get_or_insert_with(|| {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static N: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "cks-doctor-fuzz-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("scratch directory");
            dir
        });
        f(dir)
    })
}

/// Removes this thread's scratch directory (the regression test calls it when done).
pub fn remove_scratch() {
    SCRATCH.with(|cell| {
        if let Some(dir) = cell.borrow_mut().take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    });
}

/// Every snapshot file name is a hard link to one data file, so one write per input feeds them
/// all (`std::fs::write` truncates and rewrites the same inode).
fn link_or_copy(target: &Path, link: &Path) {
    std::fs::hard_link(target, link).expect("scratch link");
}

// ----------------------------------------------------------------------------------------------
// (5) The checks on arbitrary facts
// ----------------------------------------------------------------------------------------------

/// A trust anchor for the pre-flight request (`--trust-anchor`); the facts are what is fuzzed.
const FACTS_ANCHOR: &str = include_str!("../tests/fixtures/certs/rsa2048-pkcs1-sha256-ca.crt");

/// `key`'s part of a JSON object read as the AWS CLI output `T`: `None` when the key is absent
/// (a snapshot file that is not there) or does not read as `T` (a file `load_dir` refuses).
fn part<T: serde::de::DeserializeOwned>(v: &serde_json::Value, key: &str) -> Option<T> {
    v.get(key)?;
    serde_json::from_value(v.clone()).ok()
}

/// The input as the facts of one account and Region: a JSON object read as every AWS CLI output
/// a snapshot holds (`{"Clusters": [...], "SecurityGroups": [...], "CustomKeyStores": [...],
/// "Account": ..., ...}`, each key optional). Every check of the right kind then runs on those
/// facts for each key store they list (up to four, as `diagnose` and `scan` would; an external
/// key store's proxy is "reached" at 127.0.0.1:9, where nothing listens, and a store whose
/// endpoint `--connect-to` cannot redirect is left out so that no name is ever resolved) and for
/// a new store on their first cluster (as `preflight` would); then the diagnosis and every
/// report format are made. No check may panic: under libFuzzer the panic aborts; without it the
/// runner would report "the check crashed", which is asserted against too.
pub fn facts(data: &[u8]) {
    use cks_doctor::diagnose::{self, Extras};
    use cks_doctor::engine;
    use cks_doctor::facts::{Facts, Source};
    use cks_doctor::input::{CloudHsmRequest, ConnectTo, Request, TrustAnchor};
    use cks_doctor::report::{self, Report, Target};
    use cks_doctor::runner::Selection;
    use std::time::Duration;

    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if !v.is_object() {
        return;
    }
    let recorded = Recorded {
        origin: "fuzz input".into(),
        clusters: part::<DescribeClustersOutput>(&v, "Clusters").map(|o| o.clusters),
        security_groups: part::<DescribeSecurityGroupsOutput>(&v, "SecurityGroups")
            .map(|o| o.security_groups),
        subnets: part::<DescribeSubnetsOutput>(&v, "Subnets").map(|o| o.subnets),
        custom_key_stores: part::<DescribeCustomKeyStoresOutput>(&v, "CustomKeyStores")
            .map(|o| o.custom_key_stores),
        route_tables: part::<DescribeRouteTablesOutput>(&v, "RouteTables").map(|o| o.route_tables),
        network_acls: part::<DescribeNetworkAclsOutput>(&v, "NetworkAcls").map(|o| o.network_acls),
        vpce_configurations: part::<DescribeVpcEndpointServiceConfigurationsOutput>(
            &v,
            "ServiceConfigurations",
        )
        .map(|o| o.service_configurations),
        vpce_permissions: part::<DescribeVpcEndpointServicePermissionsOutput>(
            &v,
            "AllowedPrincipals",
        )
        .map(|o| o.allowed_principals),
        vpce_services: part::<DescribeVpcEndpointServicesOutput>(&v, "ServiceDetails")
            .map(|o| o.service_details),
        load_balancers: part::<DescribeLoadBalancersOutput>(&v, "LoadBalancers")
            .map(|o| o.load_balancers),
        caller_identity: part::<CallerIdentity>(&v, "Account"),
        listeners: part::<DescribeListenersOutput>(&v, "Listeners").map(|o| o.listeners),
        target_health: part::<DescribeTargetHealthOutput>(&v, "TargetHealthDescriptions")
            .map(|o| o.target_health_descriptions),
        keys: part::<ListKeysOutput>(&v, "Keys").map(|o| o.keys),
        key_descriptions: part::<DescribeKeyOutput>(&v, "KeyMetadata")
            .map(|o| vec![o.key_metadata]),
        metric_data: part::<GetMetricDataOutput>(&v, "MetricDataResults"),
        trail: part::<cks_doctor::facts::trail::LookupEventsOutput>(&v, "Events"),
    };

    let nowhere = ConnectTo {
        host: String::new(),
        port: 443,
        addr: "127.0.0.1:9".parse().expect("an address"),
    };
    let mut requests: Vec<(Option<CustomKeyStore>, Request)> = Vec::new();
    for store in recorded.custom_key_stores.iter().flatten().take(4) {
        let extras = Extras {
            connect_to: Some(nowhere.clone()),
            region: "us-east-1".into(),
            timeout: Duration::from_millis(500),
            ..Default::default()
        };
        let Ok(request) = diagnose::request_for(store, extras) else {
            continue;
        };
        if let Request::Xks(x) = &request {
            if x.probe_config("ConnectCustomKeyStore").is_some() && x.connect_addr().is_none() {
                continue;
            }
        }
        requests.push((Some(store.clone()), request));
    }
    if let Some(c) = recorded.clusters.iter().flatten().next() {
        let trust_anchor = TrustAnchor::from_text("fuzz anchor", FACTS_ANCHOR.to_string())
            .expect("the fixture anchor reads");
        requests.push((
            None,
            Request::CloudHsm(CloudHsmRequest {
                name: Some("FuzzKeyStore".into()),
                cluster_id: c.cluster_id.clone(),
                trust_anchor,
                password: None,
                users: None,
            }),
        ));
    }

    thread_local! {
        static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
    }
    for (store, request) in requests {
        let kind = request.kind();
        // The checks the binary would run: a pre-flight's for a new store, a diagnosis's
        // (no create-only checks) for an existing one.
        let stage = if store.is_some() {
            engine::Stage::Existing
        } else {
            engine::Stage::Create
        };
        let selected =
            engine::checks_for(kind, &Selection::default(), stage).expect("every kind has checks");
        let facts = Facts::new(request, Source::Recorded(recorded.clone()));
        let settings = engine::Settings::new(Duration::from_secs(10), None);
        let results =
            RUNTIME.with(|rt| rt.block_on(engine::run_checks(&settings, facts, &selected)));
        for r in &results {
            assert!(
                !r.message.contains("the check crashed"),
                "{}: {}",
                r.id,
                r.message
            );
        }
        let target = Target {
            kind,
            operation: "ConnectCustomKeyStore".into(),
            source: "fuzz input".into(),
            ..Default::default()
        };
        // Through the same verdict and diagnosis the binary makes.
        let report = match &store {
            Some(store) => engine::diagnosed(target, store, results, None),
            None => Report::new(target, results),
        };
        let reports = [report];
        let _ = report::human::render(&reports[0], report::human::Style { color: true });
        let _ = serde_json::to_string(&reports[0]).expect("a report serializes");
        let _ = report::markdown::render(&reports);
        let _ = report::csv::render(&reports);
        let _ = report::junit::render(&reports);
        let _ = report::sarif::render(&reports);
        let _ = report::html::render(&reports);
    }
}
