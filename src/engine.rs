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
use crate::facts::org::{self, AssumedRole, OrgAccount};
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
    /// A scan of several accounts: `done` of `total` accounts are finished.
    fn accounts(&self, _done: usize, _total: usize) {}
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
    /// The SDK's adaptive retry mode (a scan of many accounts and Regions meets throttling).
    pub adaptive_retry: bool,
    /// A scan's (account, Region) pairs read at once ([`SCAN_PLACES_AT_ONCE`] by default).
    pub places_at_once: usize,
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
            adaptive_retry: false,
            places_at_once: SCAN_PLACES_AT_ONCE,
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
    open_place(
        settings,
        &Access::Profile(profile.map(str::to_string)),
        region,
    )
    .await
}

/// Opens the fact source of one place of a scan: an account reached as `access`, in `region`.
pub async fn open_place(
    settings: &Settings,
    access: &Access,
    region: Option<&str>,
) -> Result<(Source, Option<String>), InputError> {
    let s = &settings.source;
    if let Some(dir) = &s.snapshot {
        let rec = Recorded::load_dir(dir).map_err(|e| InputError(e.to_string()))?;
        return Ok((Source::Recorded(rec), s.region.clone()));
    }
    let (profile, credentials, retry_scope) = match access {
        Access::Profile(p) => {
            let p = p.clone().or_else(|| s.profile.clone());
            (p.clone(), None, p.map(|p| format!("profile {p}")))
        }
        Access::Role(role) => (
            s.profile.clone(),
            Some(role.credentials.clone()),
            Some(format!("account {}", role.account)),
        ),
    };
    let opts = LiveOptions {
        profile,
        region: region.map(str::to_string).or_else(|| s.region.clone()),
        endpoint_url: s.endpoint_url.clone(),
        timeout: settings.timeout.mul_f64(0.9),
        calls_at_once: settings.jobs,
        credentials,
        adaptive_retry: settings.adaptive_retry,
        retry_scope,
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

/// A target's external key store proxy fields, from the request (none for a CloudHSM store).
fn with_proxy(target: Target, xks: Option<&crate::input::XksRequest>) -> Target {
    Target {
        xks_proxy_uri_endpoint: xks.map(|x| x.uri_endpoint.clone()),
        xks_proxy_uri_path: xks.map(|x| x.uri_path.clone()),
        xks_proxy_connectivity: xks.map(|x| x.connectivity.clone()),
        connect_to: xks.and_then(|x| x.connect_addr()).map(|a| a.to_string()),
        ..target
    }
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
    let target = with_proxy(
        Target {
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
            region,
            source: match xks {
                Some(_) => format!("{}; the proxy probed live", source.describe()),
                None => source.describe(),
            },
            ..Default::default()
        },
        xks,
    );
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
    let target = with_proxy(
        Target {
            kind,
            operation: "CreateKey".into(),
            custom_key_store_id: existing.as_ref().map(|s| s.custom_key_store_id.clone()),
            xks_key_id: xks_key_id.clone(),
            custom_key_store_name: existing.as_ref().map(|s| s.custom_key_store_name.clone()),
            cloud_hsm_cluster_id: request.cluster_id().map(str::to_string),
            trust_anchor: None,
            region,
            source: match xks {
                Some(_) if xks_key_id.is_some() => {
                    format!("{}; the proxy asked live", source.describe())
                }
                _ => source.describe(),
            },
            ..Default::default()
        },
        xks,
    );
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
    let target = with_proxy(
        Target {
            kind,
            operation: "ConnectCustomKeyStore".into(),
            custom_key_store_id: None,
            xks_key_id: None,
            custom_key_store_name: Some(store.custom_key_store_name.clone()),
            cloud_hsm_cluster_id: request.cluster_id().map(str::to_string),
            trust_anchor: request
                .cloudhsm()
                .map(|_| "the store's TrustAnchorCertificate".to_string()),
            region,
            source: source.describe(),
            ..Default::default()
        },
        xks,
    );
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
    access: &Access,
    region: Option<String>,
) -> Result<(Vec<Report>, Vec<ScanError>), ScanError> {
    let fail = |e: String| access.error(region.clone(), not_enabled_hint(e, region.as_deref()));
    let (source, resolved) = open_place(settings, access, region.as_deref())
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
            let shared = Shared::fetch(
                source,
                &scanned,
                &actions,
                &settings.permits,
                settings.metrics.since,
            )
            .await;
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
            Ok(mut report) => {
                // An assumed role's account is known without asking for the caller identity.
                if let Access::Role(role) = access {
                    report.account = Some(role.account.clone());
                }
                reports.push(report)
            }
            Err(e) => errors.push(fail(e)),
        }
    }
    Ok((reports, errors))
}

/// AWS refuses an account's credentials in an opt-in Region the account has not enabled, with
/// an invalid-token error that reads like a permission problem: say what it likely means.
fn not_enabled_hint(error: String, region: Option<&str>) -> String {
    let token = [
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "AuthFailure",
    ];
    match region {
        Some(r) if token.iter().any(|t| error.contains(t)) => format!(
            "{error}; AWS refuses credentials this way in a Region the account has not enabled: is {r} enabled for the account (an opt-in Region)? `--regions all` reads only the enabled ones"
        ),
        _ => error,
    }
}

/// How a scan reaches an account: the configured credentials or a named profile, or a role
/// assumed in an account of the organisation.
#[derive(Debug, Clone)]
pub enum Access {
    Profile(Option<String>),
    Role(Arc<AssumedRole>),
}

impl Access {
    /// A could-not-check row for this account (and Region, when it is about one).
    pub fn error(&self, region: Option<String>, error: String) -> ScanError {
        let (profile, account) = match self {
            Access::Profile(p) => (p.clone(), None),
            Access::Role(r) => (None, Some(r.account.clone())),
        };
        ScanError {
            account,
            profile,
            region,
            error,
        }
    }
}

/// The Regions a scan reads in each account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Regions {
    /// The configured Region (--region, the profile's, AWS_REGION).
    Default,
    Listed(Vec<String>),
    /// Every Region enabled for the account (ec2:DescribeRegions, which lists only the Regions
    /// that need no opt-in and those the account opted in to), asked in each account.
    Enabled,
}

/// What a scan covers: the accounts (the caller's, named profiles, or an organisation's) and
/// the Regions of each.
#[derive(Debug, Clone)]
pub struct ScanPlan {
    pub accounts: Accounts,
    pub regions: Regions,
}

#[derive(Debug, Clone)]
pub enum Accounts {
    /// The configured credentials (None) or these named profiles.
    Profiles(Vec<Option<String>>),
    Organization(OrgPlan),
}

/// `scan --organization`: the role to assume in each account and which accounts to read.
#[derive(Debug, Clone, Default)]
pub struct OrgPlan {
    pub role_name: String,
    pub external_id: Option<String>,
    /// `--accounts`: only these (empty: every ACTIVE account).
    pub only: Vec<String>,
    /// `--exclude-accounts`.
    pub exclude: Vec<String>,
}

/// A scan's outcome: the stores' reports, the places that could not be read, and how each
/// account was reached (for a Security Hub import, made with the account's own credentials).
pub struct ScanOutcome {
    pub reports: Vec<Report>,
    pub errors: Vec<ScanError>,
    pub access: Vec<(String, Access)>,
}

impl ScanOutcome {
    fn new() -> ScanOutcome {
        ScanOutcome {
            reports: Vec::new(),
            errors: Vec::new(),
            access: Vec::new(),
        }
    }

    /// Remembers how `account` was reached (once).
    fn reached(&mut self, account: &str, access: &Access) {
        if !self.access.iter().any(|(k, _)| k == account) {
            self.access.push((account.to_string(), access.clone()));
        }
    }

    /// One place's outcome: its reports (each report's account reached through `access`) and
    /// errors, or the error that it could not be read.
    fn add_place(
        &mut self,
        access: &Access,
        place: Result<(Vec<Report>, Vec<ScanError>), ScanError>,
    ) {
        match place {
            Ok((reports, errors)) => {
                for a in reports.iter().filter_map(|r| r.account.clone()) {
                    self.reached(&a, access);
                }
                self.reports.extend(reports);
                self.errors.extend(errors);
            }
            Err(e) => self.errors.push(e),
        }
    }

    fn append(&mut self, other: ScanOutcome) {
        self.reports.extend(other.reports);
        self.errors.extend(other.errors);
        for (a, access) in other.access {
            self.reached(&a, &access);
        }
    }
}

/// How many (account, Region) pairs a scan reads at once by default: each pair's facts are
/// read together, so this bounds the connections and calls in flight across the whole run
/// (--jobs bounds the checks and AWS calls too).
pub const SCAN_PLACES_AT_ONCE: usize = 32;

/// Scans (account, Region) pairs, at most `settings.places_at_once` at a time, in the order
/// given.
async fn scan_places(settings: &Settings, places: Vec<(Access, Option<String>)>) -> ScanOutcome {
    use futures::StreamExt;
    let runs = places.into_iter().map(|(access, region)| async move {
        let r = scan_region(settings, &access, region).await;
        (access, r)
    });
    let done: Vec<_> = futures::stream::iter(runs)
        .buffered(settings.places_at_once.max(1))
        .collect()
        .await;
    let mut out = ScanOutcome::new();
    for (access, place) in done {
        out.add_place(&access, place);
    }
    out
}

/// Runs a scan plan: profiles or an organisation's accounts, each in its Regions.
pub async fn scan_plan(settings: &Settings, plan: &ScanPlan) -> Result<ScanOutcome, InputError> {
    if settings.source.snapshot.is_some()
        && (plan.regions == Regions::Enabled || matches!(plan.accounts, Accounts::Organization(_)))
    {
        return Err(InputError::new(
            "--regions all and --organization need the live AWS APIs (a snapshot holds one account and Region)",
        ));
    }
    match &plan.accounts {
        Accounts::Profiles(profiles) => {
            let mut places = Vec::new();
            let mut errors = Vec::new();
            for p in profiles {
                let access = Access::Profile(p.clone());
                match regions_of(settings, &access, &plan.regions).await {
                    Ok(regions) => places.extend(regions.into_iter().map(|r| (access.clone(), r))),
                    Err(e) => errors.push(access.error(None, e)),
                }
            }
            let mut out = scan_places(settings, places).await;
            errors.append(&mut out.errors);
            out.errors = errors;
            Ok(out)
        }
        Accounts::Organization(org) => scan_organization(settings, org, &plan.regions).await,
    }
}

/// The Regions to read in one account.
async fn regions_of(
    settings: &Settings,
    access: &Access,
    regions: &Regions,
) -> Result<Vec<Option<String>>, String> {
    match regions {
        Regions::Default => Ok(vec![None]),
        Regions::Listed(r) => Ok(r.iter().cloned().map(Some).collect()),
        Regions::Enabled => {
            let (source, _) = open_place(settings, access, None).await.map_err(|e| e.0)?;
            let Source::Live(live) = &source else {
                return Err("--regions all needs the live AWS APIs".into());
            };
            let _permit = settings.permits.acquire().await;
            live.describe_regions()
                .await
                .map(|r| r.into_iter().map(Some).collect())
                .map_err(|e| format!("could not list the account's enabled Regions: {e}"))
        }
    }
}

/// `scan --organization`: the ACTIVE accounts of ListAccounts (or those `--accounts` names),
/// a role assumed in each, and every Region of each scanned as one place. An account whose
/// role cannot be assumed, or whose Regions cannot be listed, is a could-not-check row; the
/// others go on.
async fn scan_organization(
    settings: &Settings,
    org: &OrgPlan,
    regions: &Regions,
) -> Result<ScanOutcome, InputError> {
    let (source, _) = open_source(settings, None, None).await?;
    let Source::Live(caller) = &source else {
        return Err(InputError::new("--organization needs the live AWS APIs"));
    };
    let listed = {
        let _permit = settings.permits.acquire().await;
        org::list_accounts(caller).await
    };
    let listed = match listed {
        Ok(l) => l,
        Err(e) => {
            // Nothing to scan: one row that says why.
            return Ok(ScanOutcome {
                reports: Vec::new(),
                errors: vec![ScanError {
                    account: None,
                    profile: settings.source.profile.clone(),
                    region: None,
                    error: format!("could not list the organisation's accounts: {e}"),
                }],
                access: Vec::new(),
            });
        }
    };
    let mut errors = Vec::new();
    for id in &org.only {
        if !listed.iter().any(|a| &a.id == id) {
            errors.push(ScanError {
                account: Some(id.clone()),
                profile: None,
                region: None,
                error: "--accounts names an account that ListAccounts does not list in this organisation".into(),
            });
        }
    }
    let accounts: Vec<OrgAccount> = listed
        .into_iter()
        .filter(|a| org.only.is_empty() || org.only.contains(&a.id))
        .filter(|a| !org.exclude.contains(&a.id))
        .filter(|a| {
            // Named with --accounts but not ACTIVE: say so rather than skip it silently.
            if !a.is_active() && org.only.contains(&a.id) {
                errors.push(ScanError {
                    account: Some(a.id.clone()),
                    profile: None,
                    region: None,
                    error: format!("the account is {} in the organisation, not ACTIVE", a.state),
                });
            }
            a.is_active()
        })
        .collect();
    let total = accounts.len();
    let finished = std::sync::atomic::AtomicUsize::new(0);
    if let Some(p) = &settings.progress {
        p.accounts(0, total);
    }
    // Every account's role is assumed, and its Regions listed, with a place permit; then each
    // of its Regions is scanned with one. At most `places_at_once` are in flight in all.
    let places = Arc::new(tokio::sync::Semaphore::new(settings.places_at_once.max(1)));
    let runs = accounts.iter().map(|account| {
        let places = places.clone();
        let finished = &finished;
        async move {
            let out = scan_account(settings, caller, org, regions, account, &places).await;
            let n = finished.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if let Some(p) = &settings.progress {
                p.accounts(n, total);
            }
            out
        }
    });
    let mut out = ScanOutcome::new();
    out.errors = errors;
    for one in futures::future::join_all(runs).await {
        out.append(one);
    }
    Ok(out)
}

/// One account of an organisation scan.
async fn scan_account(
    settings: &Settings,
    caller: &LiveSource,
    org: &OrgPlan,
    regions: &Regions,
    account: &OrgAccount,
    places: &tokio::sync::Semaphore,
) -> ScanOutcome {
    let mut out = ScanOutcome::new();
    let arn = org::role_arn(account.partition(), &account.id, &org.role_name);
    let unreachable = |error: String| ScanError {
        account: Some(account.id.clone()),
        profile: None,
        region: None,
        error,
    };
    let (access, regions) = {
        let _place = places.acquire().await;
        let assumed = {
            let _permit = settings.permits.acquire().await;
            org::assume_role(caller, &account.id, &arn, org.external_id.as_deref()).await
        };
        let role = match assumed {
            Ok(r) => r,
            Err(e) => {
                out.errors
                    .push(unreachable(format!("could not assume the role: {e}")));
                return out;
            }
        };
        let access = Access::Role(Arc::new(role));
        match regions_of(settings, &access, regions).await {
            Ok(r) => (access, r),
            Err(e) => {
                out.errors.push(unreachable(e));
                return out;
            }
        }
    };
    out.reached(&account.id, &access);
    let runs = regions.into_iter().map(|region| {
        let access = &access;
        async move {
            let _place = places.acquire().await;
            scan_region(settings, access, region).await
        }
    });
    for place in futures::future::join_all(runs).await {
        out.add_place(&access, place);
    }
    out
}
