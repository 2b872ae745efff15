//! The use cases: what the command line (and the fuzz harness, and the tests) run. Each takes
//! resolved [`Settings`] and returns [`Report`]s; nothing here parses arguments or prints.
//!
//! - [`preflight`]: a CreateCustomKeyStore request against the account's facts.
//! - [`diagnose_store`]: an existing store's checks, read against its ConnectionErrorCode.
//! - [`scan_region`]: every store of one account and Region, its facts fetched together.

use crate::checks::{self, Check};
use crate::diagnose::{self, Extras};
use crate::facts::live::{LiveOptions, LiveSource};
use crate::facts::model::CustomKeyStore;
use crate::facts::recorded::Recorded;
use crate::facts::{shared::Shared, Facts, Source};
use crate::input::{InputError, KeyRequest, KeyStoreRef, Request};
use crate::kind::StoreKind;
use crate::meta;
use crate::report::scan::ScanError;
use crate::report::{Latency, Outlook, Report, Target};
use crate::results::CheckResult;
use crate::runner::{self, Selection};
use crate::xks::probe::{ProbeReport, KMS_BUDGET_MS};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Told as checks are queued and as each one ends (a progress display); the engine knows
/// nothing about how that is shown.
pub trait Progress: Send + Sync {
    fn queued(&self, checks: usize);
    fn done(&self, check_id: &str);
}

/// Where facts come from: a recorded snapshot, or the live AWS APIs of a profile and Region.
#[derive(Debug, Clone, Default)]
pub struct SourceSettings {
    pub snapshot: Option<PathBuf>,
    pub profile: Option<String>,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
}

/// Everything a run needs, resolved from the command line before any command runs.
#[derive(Clone)]
pub struct Settings {
    pub source: SourceSettings,
    /// Each check's time limit; an AWS call gets 90% of it, the XKS probe 80%.
    pub timeout: Duration,
    /// `--jobs`: at most this many checks (and AWS calls) at once; None: all at once.
    pub jobs: Option<usize>,
    /// The `--jobs` permits, shared by every run of checks in this process.
    pub permits: Arc<tokio::sync::Semaphore>,
    pub selection: Selection,
    pub progress: Option<Arc<dyn Progress>>,
    /// The CloudWatch metrics checks' window and thresholds (`--since`, `--max-credential-age`).
    pub metrics: crate::facts::metrics::MetricSettings,
    /// Name the account in every report (findings formats need it): the caller identity is read
    /// (sts:GetCallerIdentity, no permission needed) even when no check asks for it.
    pub want_account: bool,
}

impl Settings {
    pub fn new(timeout: Duration, jobs: Option<usize>) -> Settings {
        Settings {
            source: SourceSettings::default(),
            timeout,
            jobs,
            permits: runner::permits(jobs.unwrap_or(usize::MAX)),
            selection: Selection::default(),
            progress: None,
            metrics: Default::default(),
            want_account: false,
        }
    }

    /// The time the XKS probe may take: it stays inside the checks' timeout.
    pub fn probe_timeout(&self) -> Duration {
        self.timeout.mul_f64(0.8)
    }
}

/// What a check is run for: a store about to be created, or one that exists (which would
/// fail the create-only checks against itself: its own name, cluster, endpoint, quota slot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Create,
    Existing,
    /// A CreateKey pre-flight: only the key checks.
    Key,
}

/// The checks of a store kind, in registry order, as `selection` and `stage` leave them.
/// Bad `--only`/`--skip` patterns, or none left, are input errors.
pub fn checks_for(
    kind: StoreKind,
    selection: &Selection,
    stage: Stage,
) -> Result<Vec<&'static Check>, InputError> {
    let ids: Vec<&str> = checks::registry().iter().map(|c| c.id).collect();
    selection.validate(&ids).map_err(InputError)?;
    let chosen: Vec<&'static Check> = checks::registry()
        .iter()
        .filter(|c| selection.includes(c.id))
        .filter(|c| meta::applies_to(c.id, kind))
        .filter(|c| {
            let m = meta::get(c.id);
            let key_check = m.is_some_and(|m| m.create_key);
            match stage {
                Stage::Key => key_check,
                Stage::Create => !key_check && !m.is_some_and(|m| m.existing_only),
                Stage::Existing => !key_check && !m.is_some_and(|m| m.create_only),
            }
        })
        .collect();
    if chosen.is_empty() {
        return Err(InputError::new(
            "--only/--skip leave no check to run for this key store kind",
        ));
    }
    Ok(chosen)
}

/// Opens the fact source: the snapshot if one is set, else the live APIs (of `profile` and
/// `region` when given, else the settings' own). Returns the Region the facts are of.
pub async fn open_source(
    settings: &Settings,
    profile: Option<&str>,
    region: Option<&str>,
) -> Result<(Source, Option<String>), InputError> {
    let s = &settings.source;
    if let Some(dir) = &s.snapshot {
        let rec = Recorded::load_dir(dir).map_err(|e| InputError(e.to_string()))?;
        return Ok((Source::Recorded(rec), s.region.clone()));
    }
    let opts = LiveOptions {
        profile: profile.map(str::to_string).or_else(|| s.profile.clone()),
        region: region.map(str::to_string).or_else(|| s.region.clone()),
        endpoint_url: s.endpoint_url.clone(),
        timeout: settings.timeout.mul_f64(0.9),
        calls_at_once: settings.jobs,
    };
    let live = LiveSource::connect(&opts)
        .await
        .map_err(|e| InputError(e.0))?;
    let region = live.region().to_string();
    Ok((Source::Live(live), Some(region)))
}

/// A finished run: its report, and the facts it read (for `-v`'s fetch counts).
pub struct Run {
    pub report: Report,
    pub facts: Arc<Facts>,
}

/// The timed fresh connection of an XKS probe, as the report shows it.
pub fn latency(p: &ProbeReport) -> Latency {
    let t = &p.timings;
    let (tls_version, cipher_suite) = match &p.tls {
        Some(Ok(s)) => (Some(s.version.clone()), Some(s.cipher_suite.clone())),
        _ => (None, None),
    };
    Latency {
        dns_ms: t.dns_ms,
        connect_ms: t.connect_ms,
        tls_ms: t.tls_ms,
        first_byte_ms: t.first_byte_ms,
        request_ms: t.request_ms,
        total_ms: t.total_ms,
        budget_ms: KMS_BUDGET_MS,
        tls_version,
        cipher_suite,
        handshakes: p.handshakes,
        measured_from: "this machine (KMS connects from its own network in the key store's Region)"
            .into(),
    }
}

/// Runs checks with the settings' timeout and permits, telling the progress display.
pub async fn run_checks(
    settings: &Settings,
    facts: Arc<Facts>,
    checks: &[&'static Check],
) -> Vec<CheckResult> {
    // Every fact the selected checks read starts at once (not when a check first asks); with
    // --jobs, facts are read as the running checks ask, so at most that many calls are in flight.
    if settings.jobs.is_none() {
        facts.prefetch(&meta::actions_of(checks.iter().map(|c| c.id)));
    }
    let on_done: Option<runner::OnDone> = settings.progress.clone().map(|p| {
        p.queued(checks.len());
        Arc::new(move |id: &str| p.done(id)) as runner::OnDone
    });
    runner::run_limited(
        facts,
        checks,
        settings.timeout,
        settings.permits.clone(),
        on_done,
    )
    .await
}

/// The account the facts are of, for the report: the caller identity when it was read (or, with
/// `want_account`, read now); `None` when it is not known (a snapshot without
/// sts-get-caller-identity.json, a denied or failed call).
async fn account_of(settings: &Settings, facts: &Facts) -> Option<String> {
    let read = match facts.caller_identity_if_read() {
        Some(r) => r,
        None if settings.want_account => facts.caller_identity().await,
        None => return None,
    };
    read.as_ref()
        .ok()
        .map(|c| c.account.clone())
        .filter(|a| !a.is_empty())
}

/// Pre-flight of a CreateCustomKeyStore request. `region` is the Region of the facts (the
/// SigV4 scope of an XKS probe).
pub async fn preflight(
    settings: &Settings,
    request: Request,
    source: Source,
    region: Option<String>,
) -> Result<Run, InputError> {
    preflight_with_key(settings, request, source, region, None).await
}

/// Pre-flight of a CreateCustomKeyStore request and, with `xks_key_id`, of the CreateKey that
/// would follow in the new store (`preflight xks --xks-key-id`): the key checks after the
/// store's.
pub async fn preflight_with_key(
    settings: &Settings,
    mut request: Request,
    source: Source,
    region: Option<String>,
    xks_key_id: Option<String>,
) -> Result<Run, InputError> {
    let kind = request.kind();
    let mut checks = checks_for(kind, &settings.selection, Stage::Create)?;
    if xks_key_id.is_some() {
        checks.extend(checks_for(kind, &settings.selection, Stage::Key)?);
    }
    if let Request::Xks(x) = &mut request {
        x.region = region.clone().ok_or_else(|| {
            InputError::new(
                "an external key store pre-flight needs the key store's Region (--region): it goes into the SigV4 scope",
            )
        })?;
        x.timeout = settings.probe_timeout();
        if x.connect_to.is_some() && x.connect_addr().is_none() {
            return Err(InputError(format!(
                "--connect-to does not apply to {}:443 (its HOST and first PORT must match the endpoint)",
                x.host().unwrap_or_else(|| x.uri_endpoint.clone())
            )));
        }
    }
    let xks = request.xks();
    let target = Target {
        kind,
        operation: match xks_key_id {
            Some(_) => "CreateCustomKeyStore, then CreateKey".into(),
            None => "CreateCustomKeyStore".into(),
        },
        custom_key_store_id: None,
        xks_key_id: xks_key_id.clone(),
        custom_key_store_name: request.name().map(str::to_string),
        cloud_hsm_cluster_id: request.cluster_id().map(str::to_string),
        trust_anchor: request.cloudhsm().map(|r| r.trust_anchor.origin.clone()),
        xks_proxy_uri_endpoint: xks.map(|x| x.uri_endpoint.clone()),
        xks_proxy_uri_path: xks.map(|x| x.uri_path.clone()),
        xks_proxy_connectivity: xks.map(|x| x.connectivity.clone()),
        connect_to: xks.and_then(|x| x.connect_addr()).map(|a| a.to_string()),
        region,
        source: match xks {
            Some(_) => format!("{}; the proxy probed live", source.describe()),
            None => source.describe(),
        },
    };
    let facts = match xks_key_id {
        Some(id) => Facts::for_key(
            request,
            source,
            None,
            KeyRequest {
                store: KeyStoreRef::New,
                xks_key_id: Some(id),
            },
        ),
        None => Facts::new(request, source),
    };
    let results = run_checks(settings, facts.clone(), &checks).await;
    let mut report = Report::new(target, results);
    report.latency = facts.xks_probe_if_run().map(latency);
    report.account = account_of(settings, &facts).await;
    Ok(Run { report, facts })
}

/// Pre-flight of CreateKey in an existing store, found by id or name among `stores` (the
/// account's, already read). A store that is not found is the report's FAIL
/// (CustomKeyStoreNotFoundException), not an input error: it is what CreateKey would answer.
pub async fn preflight_key(
    settings: &Settings,
    source: Source,
    region: Option<String>,
    stores: Vec<CustomKeyStore>,
    store: Result<CustomKeyStore, String>,
    xks_key_id: Option<String>,
    extras: Extras,
) -> Result<Run, InputError> {
    let (request, store_ref, kind) = match store {
        Ok(s) => {
            let kind = StoreKind::of_type(s.custom_key_store_type.as_deref());
            if kind == StoreKind::Cloudhsm && xks_key_id.is_some() {
                return Err(InputError(format!(
                    "--xks-key-id applies to an external key store; {} is an AWS CloudHSM key store (CreateKey takes no XksKeyId for it)",
                    s.custom_key_store_id
                )));
            }
            let request = diagnose::request_for(&s, extras)
                .map_err(|e| InputError(format!("{}: {e}", s.custom_key_store_id)))?;
            (request, KeyStoreRef::Existing(s), kind)
        }
        Err(named) => (
            Request::NoStore,
            KeyStoreRef::NotFound(named),
            StoreKind::Any,
        ),
    };
    let checks = checks_for(kind, &settings.selection, Stage::Key)?;
    let existing = match &store_ref {
        KeyStoreRef::Existing(s) => Some(s.clone()),
        _ => None,
    };
    let xks = request.xks();
    let target = Target {
        kind,
        operation: "CreateKey".into(),
        custom_key_store_id: existing.as_ref().map(|s| s.custom_key_store_id.clone()),
        xks_key_id: xks_key_id.clone(),
        custom_key_store_name: existing.as_ref().map(|s| s.custom_key_store_name.clone()),
        cloud_hsm_cluster_id: request.cluster_id().map(str::to_string),
        trust_anchor: None,
        xks_proxy_uri_endpoint: xks.map(|x| x.uri_endpoint.clone()),
        xks_proxy_uri_path: xks.map(|x| x.uri_path.clone()),
        xks_proxy_connectivity: xks.map(|x| x.connectivity.clone()),
        connect_to: xks.and_then(|x| x.connect_addr()).map(|a| a.to_string()),
        region,
        source: match xks {
            Some(_) if xks_key_id.is_some() => {
                format!("{}; the proxy asked live", source.describe())
            }
            _ => source.describe(),
        },
    };
    let facts = Facts::for_key(
        request,
        source,
        Some(stores),
        KeyRequest {
            store: store_ref,
            xks_key_id,
        },
    );
    let results = run_checks(settings, facts.clone(), &checks).await;
    let mut report = Report::new(target, results);
    report.account = account_of(settings, &facts).await;
    Ok(Run { report, facts })
}

/// Reads the account's custom key stores (the start of diagnose and scan).
pub async fn key_stores(source: &Source) -> Result<Vec<CustomKeyStore>, InputError> {
    Facts::read_key_stores(source).await.map_err(|e| {
        InputError(format!(
            "cannot read the account's custom key stores, so there is nothing to diagnose: {e}"
        ))
    })
}

/// Diagnoses one existing store: every check that applies to it, and the diagnosis of its
/// state and ConnectionErrorCode. `stores` are the account's stores (the facts already read).
pub async fn diagnose_store(
    settings: &Settings,
    source: Source,
    region: Option<String>,
    stores: Vec<CustomKeyStore>,
    store: CustomKeyStore,
    extras: Extras,
) -> Result<Run, InputError> {
    let kind = StoreKind::of_type(store.custom_key_store_type.as_deref());
    let checks = checks_for(kind, &settings.selection, Stage::Existing)?;
    let request = diagnose::request_for(&store, extras)
        .map_err(|e| InputError(format!("{}: {e}", store.custom_key_store_id)))?;
    let xks = request.xks();
    let target = Target {
        kind,
        operation: "ConnectCustomKeyStore".into(),
        custom_key_store_id: None,
        xks_key_id: None,
        custom_key_store_name: Some(store.custom_key_store_name.clone()),
        cloud_hsm_cluster_id: request.cluster_id().map(str::to_string),
        trust_anchor: request
            .cloudhsm()
            .map(|_| "the store's TrustAnchorCertificate".to_string()),
        xks_proxy_uri_endpoint: xks.map(|x| x.uri_endpoint.clone()),
        xks_proxy_uri_path: xks.map(|x| x.uri_path.clone()),
        xks_proxy_connectivity: xks.map(|x| x.connectivity.clone()),
        connect_to: xks.and_then(|x| x.connect_addr()).map(|a| a.to_string()),
        region,
        source: source.describe(),
    };
    // The store itself is known to the checks of what it holds (its KMS keys).
    let facts = Facts::for_key(
        request,
        source,
        Some(stores),
        KeyRequest {
            store: KeyStoreRef::Existing(store.clone()),
            xks_key_id: None,
        },
    );
    facts.set_metric_settings(settings.metrics);
    let results = run_checks(settings, facts.clone(), &checks).await;
    let mut report = diagnosed(target, &store, results, facts.xks_probe_if_run());
    report.account = account_of(settings, &facts).await;
    Ok(Run { report, facts })
}

/// The report of an existing store's checks, with its diagnosis. A FAILED store whose cause
/// no check confirms is not "no failure found": its verdict is incomplete.
pub fn diagnosed(
    target: Target,
    store: &CustomKeyStore,
    results: Vec<CheckResult>,
    probe: Option<&ProbeReport>,
) -> Report {
    let diagnosis = diagnose::diagnose(store, &results);
    let mut report = Report::new(target, results);
    if let Some(code) = &diagnosis.connection_error_code {
        if diagnosis.confirmed_by.is_empty() && report.verdict.outlook == Outlook::NoFailureFound {
            report.verdict.outlook = Outlook::Incomplete;
            report.verdict.connection_error_codes = vec![code.clone()];
            report.verdict.text = diagnosis.text.clone();
        }
    }
    report.latency = probe.map(latency);
    report.diagnosis = Some(diagnosis);
    report
}

/// How many stores of a Region a scan diagnoses at once: the AWS facts are read for all of
/// them together, so this bounds the XKS proxies probed at the same time; --jobs bounds the
/// checks, across stores.
pub const SCAN_STORES_AT_ONCE: usize = 32;

/// Diagnoses every store of one account (profile) and Region. A store that cannot be
/// diagnosed is an error beside the others' reports; a Region that cannot be read is `Err`.
pub async fn scan_region(
    settings: &Settings,
    profile: Option<String>,
    region: Option<String>,
) -> Result<(Vec<Report>, Vec<ScanError>), ScanError> {
    let fail = |e: String| ScanError {
        profile: profile.clone(),
        region: region.clone(),
        error: e,
    };
    let (source, resolved) = open_source(settings, profile.as_deref(), region.as_deref())
        .await
        .map_err(|e| fail(e.0))?;
    // The Region's first call holds a --jobs permit like every other: the Regions of a scan
    // start at once, and `--jobs 1` means one AWS call at a time across all of them.
    let stores = {
        let _permit = settings.permits.acquire().await;
        Facts::read_key_stores(&source)
            .await
            .map_err(|e| fail(e.to_string()))?
    };
    // Stores of a kind that --only/--skip leave no check for are not scanned.
    let cloudhsm_checks =
        checks_for(StoreKind::Cloudhsm, &settings.selection, Stage::Existing).ok();
    let xks_checks = checks_for(StoreKind::Xks, &settings.selection, Stage::Existing).ok();
    let checks_of = |s: &CustomKeyStore| {
        if s.is_cloudhsm() {
            cloudhsm_checks.as_deref()
        } else {
            xks_checks.as_deref()
        }
    };
    let scanned: Vec<CustomKeyStore> = stores
        .iter()
        .filter(|s| checks_of(s).is_some())
        .cloned()
        .collect();
    // Every fact the stores' checks read, for all the stores at once: one call per kind of
    // fact (per batch AWS allows), not one per store.
    let source = match source {
        Source::Live(_) => {
            let actions =
                meta::actions_of(scanned.iter().filter_map(checks_of).flatten().map(|c| c.id));
            let shared = Shared::fetch(source, &scanned, &actions, &settings.permits).await;
            Source::Shared(Arc::new(shared))
        }
        other => other,
    };
    let work = scanned.into_iter().map(|store| {
        let source = source.clone();
        let stores = stores.clone();
        let resolved = resolved.clone();
        async move {
            let extras = Extras {
                region: resolved.clone().unwrap_or_default(),
                timeout: settings.probe_timeout(),
                ..Default::default()
            };
            let id = store.custom_key_store_id.clone();
            diagnose_store(settings, source, resolved, stores, store, extras)
                .await
                .map(|run| run.report)
                .map_err(|e| format!("{id}: {}", e.0))
        }
    });
    use futures::StreamExt;
    let results: Vec<Result<Report, String>> = futures::stream::iter(work)
        .buffered(SCAN_STORES_AT_ONCE)
        .collect()
        .await;
    // One store that cannot be diagnosed does not hide the others.
    let mut reports = Vec::new();
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(report) => reports.push(report),
            Err(e) => errors.push(fail(e)),
        }
    }
    Ok((reports, errors))
}

/// Scans every (profile, Region) pair at once; the reports and the places that could not be
/// scanned, in the order given.
pub async fn scan(
    settings: &Settings,
    targets: Vec<(Option<String>, Option<String>)>,
) -> (Vec<Report>, Vec<ScanError>) {
    let runs = targets
        .into_iter()
        .map(|(p, r)| scan_region(settings, p, r));
    let mut reports = Vec::new();
    let mut errors = Vec::new();
    for o in futures::future::join_all(runs).await {
        match o {
            Ok((r, e)) => {
                reports.extend(r);
                errors.extend(e);
            }
            Err(e) => errors.push(e),
        }
    }
    (reports, errors)
}

/// The Regions enabled for the account of `profile` (ec2:DescribeRegions); live only.
pub async fn enabled_regions(
    settings: &Settings,
    profile: Option<&str>,
) -> Result<Vec<String>, InputError> {
    if settings.source.snapshot.is_some() {
        return Err(InputError::new(
            "--all-regions needs the live AWS APIs (a snapshot holds one Region)",
        ));
    }
    let (source, _) = open_source(settings, profile, None).await?;
    let Source::Live(live) = &source else {
        return Err(InputError::new("--all-regions needs the live AWS APIs"));
    };
    live.describe_regions()
        .await
        .map_err(|e| InputError(format!("--all-regions: {e}")))
}
