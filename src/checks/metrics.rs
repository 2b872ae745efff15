//! An existing external key store as KMS itself measured it: the AWS/KMS CloudWatch metrics of
//! the store over `--since` (`facts::metrics`, one GetMetricData per Region). Run by `diagnose`
//! and `scan` only (metadata `existing_only`): a store about to be created has no metrics.
//!
//! The thresholds are data: the constants below, repeated in each check's metadata description.
//! Where the metrics say nothing (no data point in the window), a check says so: PASS only
//! where no data point means "none happened" (errors, throttling), SKIP where it means nothing
//! was measured (the certificate, the credential, latency, key manager states).

use super::{got, register, Outcome, Step};
use crate::codes::Code;
use crate::facts::metrics::{self, now_secs, Point, Query, Reading, Series, StoreMetrics};
use crate::facts::Facts;
use std::collections::BTreeMap;

register! {
    "xks.metrics.certificate-expiry" => certificate_expiry,
    "xks.metrics.credential-age" => credential_age,
    "xks.metrics.latency" => latency,
    "xks.metrics.errors" => errors,
    "xks.metrics.key-manager-states" => key_manager_states,
    "xks.metrics.throttling" => throttling,
    "cloudhsm.metrics.hsm-health" => hsm_health,
}

/// WARN when the proxy's certificate expires in fewer days (cks-doctor's threshold, as
/// `xks.tls.certificate-validity` uses it).
pub const CERT_WARN_DAYS: f64 = 30.0;
/// FAIL when it expires in fewer days: the threshold of AWS's recommended alarm
/// ("alert you 10 days before your certificate is set to expire", xks-alarms).
pub const CERT_FAIL_DAYS: f64 = 10.0;
/// AWS's recommended latency alarm threshold (xks-alarms: "longer than 200 milliseconds").
pub const LATENCY_WARN_MS: f64 = 200.0;
/// KMS's timeout: "If the request timed out, the recorded value is the 250 millisecond timeout
/// limit" (monitoring-cloudwatch).
pub const LATENCY_TIMEOUT_MS: f64 = 250.0;
/// AWS's recommended error alarms: "more than five retryable [non-retryable] errors are
/// recorded in a one minute period" (xks-alarms).
pub const ERRORS_PER_MINUTE: f64 = 5.0;
/// How many exceptions the errors check names (the console's "Top 5 exceptions" graph).
pub const TOP_EXCEPTIONS: usize = 5;

const SECONDS_PER_DAY: f64 = 86400.0;

/// The store's metrics, or the outcome that ends a check (not an existing external key store:
/// SKIP; the metrics could not be read: ERROR).
async fn need(f: &Facts) -> Step<&StoreMetrics> {
    let Some(store) = f.key.as_ref().and_then(|k| k.existing()) else {
        return Err(Outcome::skip(
            "not an existing key store: KMS publishes these metrics for a store once it exists",
        ));
    };
    if store.is_cloudhsm() {
        return Err(Outcome::skip("not an external key store"));
    }
    got(f.xks_metrics().await)
}

/// The time series of a query with data, `None` when it has no data point in the window, or
/// the outcome (ERROR) when the read holds no answer to it or CloudWatch failed it.
fn series(m: &StoreMetrics, q: Query) -> Step<Option<&[Series]>> {
    match m.read(q) {
        Reading::NotAsked => Err(Outcome::error(format!(
            "could not check: the metrics read holds no answer to the query {} ({}): record the snapshot with the queries docs/metrics.md lists",
            q.id(&m.store_id),
            q.metric()
        ))),
        Reading::Failed(s) => Err(Outcome::error(format!(
            "could not check: CloudWatch answered {} to the query {} ({}){}",
            s.status.as_deref().unwrap_or("an error"),
            q.id(&m.store_id),
            q.metric(),
            if s.messages.is_empty() {
                String::new()
            } else {
                format!(": {}", s.messages.join("; "))
            }
        ))),
        Reading::NoData => Ok(None),
        Reading::Data(s) => Ok(Some(s)),
    }
}

/// The lines every metrics result starts its evidence with.
fn base_evidence(m: &StoreMetrics, queries: &[Query]) -> Vec<String> {
    let mut e = vec![format!("{} over {}", m.store_id, m.window_text())];
    for q in queries {
        e.push(format!(
            "query {}: {} ({}) of {}",
            q.id(&m.store_id),
            q.metric(),
            q.statistic(),
            q.namespace()
        ));
    }
    e.extend(m.notes.iter().cloned());
    e
}

fn when(p: &Point) -> String {
    metrics::format_time(p.t)
}

fn days(v: f64) -> String {
    format!("{v:.1}")
}

fn label_or<'a>(s: &'a Series, fallback: &'a str) -> &'a str {
    if s.label.trim().is_empty() {
        fallback
    } else {
        s.label.as_str()
    }
}

// ----- certificate -----

async fn certificate_expiry(f: &Facts) -> Step<Outcome> {
    let m = need(f).await?;
    let mut evidence = base_evidence(m, &[Query::Certificate]);
    let Some(all) = series(m, Query::Certificate)? else {
        return Ok(Outcome::skip(format!(
            "nothing to judge: no {} data point in {}. KMS publishes it while it talks to the proxy, so the store may not have been connected in that window; the developer guide also says the value is not shown when the certificate's subject CN has a wildcard",
            metrics::CERTIFICATE_METRIC,
            m.window_text()
        ))
        .evidence(evidence));
    };
    let now = now_secs();
    // Each certificate's latest value, less the days since it was published.
    let mut worst: Option<(f64, Point, &str)> = None;
    for s in all {
        let Some(p) = s.latest() else { continue };
        let left = p.v - (now - p.t).max(0) as f64 / SECONDS_PER_DAY;
        let name = label_or(s, "the proxy's certificate");
        evidence.push(format!(
            "{name}: {} days to expiry at {}, so {} days now",
            days(p.v),
            when(&p),
            days(left)
        ));
        if worst.is_none_or(|(w, _, _)| left < w) {
            worst = Some((left, p, name));
        }
    }
    let Some((left, p, name)) = worst else {
        return Ok(Outcome::skip("nothing to judge: no data point").evidence(evidence));
    };
    if left <= 0.0 {
        return Ok(Outcome::fail(format!(
            "the proxy's TLS certificate ({name}) has expired: KMS last published {} days to expiry at {} ({} days now). Once it expires KMS cannot communicate with the proxy: cryptographic operations with the store's keys fail (KMSInvalidStateException) and connecting fails with XKS_PROXY_INVALID_TLS_CONFIGURATION",
            days(p.v),
            when(&p),
            days(left)
        ))
        .evidence(evidence)
        .exceptions(&[Code::KMSInvalidStateException])
        .codes(&[Code::XKS_PROXY_INVALID_TLS_CONFIGURATION]));
    }
    if left < CERT_FAIL_DAYS {
        return Ok(Outcome::fail(format!(
            "the proxy's TLS certificate ({name}) expires in {} days, under {CERT_FAIL_DAYS} (the threshold of AWS's recommended alarm): renew it now. Once it expires, cryptographic operations with the store's keys fail (KMSInvalidStateException) and connecting fails with XKS_PROXY_INVALID_TLS_CONFIGURATION",
            days(left)
        ))
        .evidence(evidence)
        .exceptions(&[])
        .codes(&[]));
    }
    if left < CERT_WARN_DAYS {
        return Ok(Outcome::warn(format!(
            "the proxy's TLS certificate ({name}) expires in {} days (under cks-doctor's {CERT_WARN_DAYS}-day warning)",
            days(left)
        ))
        .evidence(evidence)
        .exceptions(&[])
        .codes(&[]));
    }
    Ok(Outcome::pass(format!(
        "the proxy's TLS certificate ({name}) expires in {} days, as KMS measured it",
        days(left)
    ))
    .evidence(evidence))
}

// ----- credential -----

async fn credential_age(f: &Facts) -> Step<Outcome> {
    let m = need(f).await?;
    let max = f.metric_settings().max_credential_age_days as f64;
    let mut evidence = base_evidence(m, &[Query::CredentialAge]);
    let Some(all) = series(m, Query::CredentialAge)? else {
        return Ok(Outcome::skip(format!(
            "nothing to judge: no {} data point in {} (KMS publishes it for an external key store; the store may not have been connected in that window)",
            metrics::CREDENTIAL_AGE_METRIC,
            m.window_text()
        ))
        .evidence(evidence));
    };
    let now = now_secs();
    let Some(p) = all.iter().filter_map(Series::latest).max_by_key(|p| p.t) else {
        return Ok(Outcome::skip("nothing to judge: no data point").evidence(evidence));
    };
    let age = p.v + (now - p.t).max(0) as f64 / SECONDS_PER_DAY;
    evidence.push(format!(
        "{} days at {}, so {} days now",
        days(p.v),
        when(&p),
        days(age)
    ));
    evidence.push(
        "KMS counts from when the credential was entered in the store (CreateCustomKeyStore or UpdateCustomKeyStore), not from when it was made on the proxy".into(),
    );
    if age > max {
        return Ok(Outcome::warn(format!(
            "the store's proxy authentication credential is {} days old, past {max} days (cks-doctor's default rotation age, set with --max-credential-age; AWS gives none): rotate it",
            days(age)
        ))
        .evidence(evidence)
        .exceptions(&[])
        .codes(&[]));
    }
    Ok(Outcome::pass(format!(
        "the store's proxy authentication credential is {} days old (at most {max})",
        days(age)
    ))
    .evidence(evidence))
}

// ----- latency -----

/// Each time series' worst period, worst first.
fn worst_periods(all: &[Series]) -> Vec<(&Series, Point)> {
    let mut w: Vec<(&Series, Point)> = all.iter().filter_map(|s| s.max().map(|p| (s, p))).collect();
    w.sort_by(|a, b| b.1.v.total_cmp(&a.1.v));
    w
}

fn operation(s: &Series) -> String {
    let parts = s.parts();
    match parts.as_slice() {
        [kms, xks] if !kms.is_empty() => format!("{kms} (proxy {xks})"),
        _ => label_or(s, "all operations").to_string(),
    }
}

async fn latency(f: &Facts) -> Step<Outcome> {
    let m = need(f).await?;
    let mut evidence = base_evidence(m, &[Query::LatencyP99, Query::LatencyMax]);
    let p99 = series(m, Query::LatencyP99)?;
    let max = series(m, Query::LatencyMax)?;
    let (all, stat) = match (p99, max) {
        (Some(s), _) => (s, "p99"),
        (None, Some(s)) => (s, "Maximum"),
        (None, None) => {
            return Ok(Outcome::skip(format!(
                "nothing to judge: no {} data point in {}: KMS sent the proxy no request in that window (it sends GetHealthStatus periodically while the store is CONNECTED)",
                metrics::LATENCY_METRIC,
                m.window_text()
            ))
            .evidence(evidence));
        }
    };
    let worst = worst_periods(all);
    for (s, p) in worst.iter().take(5) {
        evidence.push(format!(
            "{}: {stat} {:.0} ms in the period of {}",
            operation(s),
            p.v,
            when(p)
        ));
    }
    if let (Some(maxes), "p99") = (max, stat) {
        if let Some((s, p)) = worst_periods(maxes).first() {
            evidence.push(format!(
                "slowest single request: {:.0} ms ({}, period of {})",
                p.v,
                operation(s),
                when(p)
            ));
        }
    }
    let Some((s, p)) = worst.first().copied() else {
        return Ok(Outcome::skip("nothing to judge: no data point").evidence(evidence));
    };
    let op = operation(s);
    if stat == "p99" && p.v >= LATENCY_TIMEOUT_MS {
        return Ok(Outcome::fail(format!(
            "the proxy's p99 latency for {op} reached {:.0} ms in the period of {}: at least 1% of KMS's requests then timed out ({LATENCY_TIMEOUT_MS} ms is what KMS records for a request that timed out). Cryptographic operations that time out fail with KMSInvalidStateException (\"the external key store proxy did not respond in time\"); a connect whose GetHealthStatus times out fails with XKS_PROXY_TIMED_OUT",
            p.v,
            when(&p)
        ))
        .evidence(evidence)
        .exceptions(&[Code::KMSInvalidStateException])
        .codes(&[Code::XKS_PROXY_TIMED_OUT]));
    }
    if p.v >= LATENCY_TIMEOUT_MS {
        return Ok(Outcome::warn(format!(
            "at least one request for {op} timed out ({:.0} ms in the period of {}; KMS records {LATENCY_TIMEOUT_MS} ms for a request that timed out). KMS publishes no p99 for this store's latency here, so how many did is not known",
            p.v,
            when(&p)
        ))
        .evidence(evidence)
        .exceptions(&[])
        .codes(&[]));
    }
    if p.v > LATENCY_WARN_MS {
        return Ok(Outcome::warn(format!(
            "the proxy's {stat} latency for {op} reached {:.0} ms in the period of {}: over the {LATENCY_WARN_MS} ms of AWS's recommended alarm, close to KMS's {LATENCY_TIMEOUT_MS} ms timeout",
            p.v,
            when(&p)
        ))
        .evidence(evidence)
        .exceptions(&[])
        .codes(&[]));
    }
    Ok(Outcome::pass(format!(
        "the proxy's {stat} latency stayed at or under {:.0} ms in every period (worst: {op}), within {LATENCY_WARN_MS} ms",
        p.v
    ))
    .evidence(evidence))
}

// ----- errors -----

/// What a caller sees for each exception the proxy answers (or KMS records), per the KMS
/// developer guide's table (xks-monitoring, "Top 5 exceptions"): its error type, the
/// exception CreateCustomKeyStore/UpdateCustomKeyStore return, and CreateKey's. Cryptographic
/// operations always return KMSInvalidStateException.
pub const EXCEPTIONS: &[(&str, &str, &str, &str)] = &[
    (
        "AccessDeniedException",
        "Non-retryable",
        "",
        "CustomKeyStoreInvalidStateException",
    ),
    (
        "AuthenticationFailedException",
        "Non-retryable",
        "XksProxyIncorrectAuthenticationCredentialException",
        "CustomKeyStoreInvalidStateException",
    ),
    (
        "DependencyTimeoutException",
        "Retryable",
        "XksProxyUriUnreachableException",
        "CustomKeyStoreInvalidStateException",
    ),
    (
        "InternalException",
        "Retryable",
        "XksProxyInvalidResponseException",
        "CustomKeyStoreInvalidStateException",
    ),
    ("InvalidCiphertextException", "Non-retryable", "", ""),
    (
        "InvalidKeyUsageException",
        "Non-retryable",
        "",
        "XksKeyInvalidConfigurationException",
    ),
    (
        "InvalidStateException",
        "Non-retryable",
        "",
        "XksKeyInvalidConfigurationException",
    ),
    (
        "InvalidUriPathException",
        "Non-retryable",
        "XksProxyInvalidConfigurationException",
        "CustomKeyStoreInvalidStateException",
    ),
    (
        "KeyNotFoundException",
        "Non-retryable",
        "",
        "XksKeyNotFoundException",
    ),
    (
        "ThrottlingException",
        "Retryable",
        "XksProxyUriUnreachableException",
        "CustomKeyStoreInvalidStateException",
    ),
    (
        "UnsupportedOperationException",
        "Non-retryable",
        "",
        "XksKeyInvalidResponseException",
    ),
    (
        "ValidationException",
        "Non-retryable",
        "XksProxyInvalidResponseException",
        "CustomKeyStoreInvalidStateException",
    ),
    (
        "XksProxyUnreachableException",
        "Retryable",
        "XksProxyUriUnreachableException",
        "CustomKeyStoreInvalidStateException",
    ),
];

/// The exceptions that concern the store itself (not one key), and the ConnectionErrorCode a
/// connect would then fail with. Inferred: no AWS document maps the metric's exception names
/// to ConnectionErrorCodes (the metadata's mapping notes say so).
pub const CONNECTION_LEVEL: &[(&str, Code)] = &[
    ("AccessDeniedException", Code::XKS_PROXY_ACCESS_DENIED),
    ("AuthenticationFailedException", Code::INVALID_CREDENTIALS),
    ("DependencyTimeoutException", Code::XKS_PROXY_TIMED_OUT),
    ("InternalException", Code::XKS_PROXY_INVALID_RESPONSE),
    (
        "InvalidUriPathException",
        Code::XKS_PROXY_INVALID_CONFIGURATION,
    ),
    ("ValidationException", Code::XKS_PROXY_INVALID_RESPONSE),
    (
        "XksProxyUnreachableException",
        Code::XKS_PROXY_NOT_REACHABLE,
    ),
];

/// What a caller saw for this exception, in words.
pub fn seen_by_callers(exception: &str) -> String {
    let mut parts = vec!["cryptographic operations: KMSInvalidStateException".to_string()];
    if let Some((_, _, create, key)) = EXCEPTIONS.iter().find(|e| e.0 == exception) {
        if !key.is_empty() {
            parts.push(format!("CreateKey: {key}"));
        }
        if !create.is_empty() {
            parts.push(format!("Create/UpdateCustomKeyStore: {create}"));
        }
    }
    parts.join("; ")
}

#[derive(Default)]
struct ExceptionCount {
    error_type: String,
    total: f64,
    /// Per period start: the count.
    per_period: BTreeMap<i64, f64>,
    operations: std::collections::BTreeSet<String>,
}

async fn errors(f: &Facts) -> Step<Outcome> {
    let m = need(f).await?;
    let mut evidence = base_evidence(m, &[Query::Errors]);
    let Some(all) = series(m, Query::Errors)? else {
        return Ok(Outcome::pass(format!(
            "KMS recorded no {} data point in {}: no error (and no request either)",
            metrics::ERRORS_METRIC,
            m.window_text()
        ))
        .evidence(evidence));
    };
    let mut ok = 0.0;
    let mut by: BTreeMap<String, ExceptionCount> = BTreeMap::new();
    for s in all {
        let parts = s.parts();
        let exception = parts.first().copied().unwrap_or_default();
        let error_type = parts.get(1).copied().unwrap_or_default();
        if exception.is_empty() || exception == "None" || error_type == "N/A" {
            ok += s.sum();
            continue;
        }
        let e = by.entry(exception.to_string()).or_default();
        e.error_type = error_type.to_string();
        e.total += s.sum();
        for p in &s.points {
            *e.per_period.entry(p.t).or_default() += p.v;
        }
        if let (Some(k), Some(x)) = (parts.get(2), parts.get(3)) {
            e.operations.insert(format!("{k}/{x}"));
        }
    }
    by.retain(|_, e| e.total > 0.0);
    let failed: f64 = by.values().map(|e| e.total).sum();
    if failed == 0.0 {
        return Ok(Outcome::pass(format!(
            "no error in {}{}",
            m.window_text(),
            if ok > 0.0 {
                format!(": {ok:.0} request(s) answered without error")
            } else {
                String::new()
            }
        ))
        .evidence(evidence));
    }
    let period = m.period(all).unwrap_or(60).max(60) as f64;
    let limit = ERRORS_PER_MINUTE * period / 60.0;
    let mut top: Vec<(&String, &ExceptionCount)> = by.iter().collect();
    top.sort_by(|a, b| b.1.total.total_cmp(&a.1.total).then(a.0.cmp(b.0)));
    let total = ok + failed;
    evidence.push(format!(
        "{failed:.0} error(s) of {total:.0} request(s) ({:.1}%); AWS's recommended alarms fire at more than {ERRORS_PER_MINUTE} retryable (or non-retryable) errors a minute, {limit:.0} per {period:.0}-second period",
        100.0 * failed / total
    ));
    let mut over: Vec<(String, Code, f64, i64)> = Vec::new();
    for (name, e) in top.iter().take(TOP_EXCEPTIONS) {
        let (peak_t, peak) = e
            .per_period
            .iter()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(t, v)| (*t, *v))
            .unwrap_or_default();
        evidence.push(format!(
            "{name} ({}): {:.0} in the window, at most {peak:.0} in the period of {}{}; callers saw {}",
            if e.error_type.is_empty() { "error type not recorded" } else { &e.error_type },
            e.total,
            metrics::format_time(peak_t),
            if e.operations.is_empty() {
                String::new()
            } else {
                format!(" ({})", e.operations.iter().cloned().collect::<Vec<_>>().join(", "))
            },
            seen_by_callers(name)
        ));
    }
    for (name, e) in &by {
        let peak = e.per_period.values().copied().fold(0.0, f64::max);
        if let Some((_, code)) = CONNECTION_LEVEL.iter().find(|(n, _)| n == name) {
            if peak > limit {
                let t = e
                    .per_period
                    .iter()
                    .find(|(_, v)| **v == peak)
                    .map(|(t, _)| *t)
                    .unwrap_or_default();
                over.push((name.clone(), *code, peak, t));
            }
        }
    }
    if top.len() > TOP_EXCEPTIONS {
        evidence.push(format!(
            "... and {} other exception(s)",
            top.len() - TOP_EXCEPTIONS
        ));
    }
    let names: Vec<String> = top
        .iter()
        .take(TOP_EXCEPTIONS)
        .map(|(n, e)| format!("{n} ×{:.0}", e.total))
        .collect();
    if !over.is_empty() {
        let mut codes: Vec<Code> = over.iter().map(|o| o.1).collect();
        codes.sort();
        codes.dedup();
        let what: Vec<String> = over
            .iter()
            .map(|(n, c, peak, t)| {
                format!(
                    "{n} ({peak:.0} in the period of {}; a connect would fail with {c}, inferred)",
                    metrics::format_time(*t)
                )
            })
            .collect();
        return Ok(Outcome::fail(format!(
            "the proxy failed KMS's requests for the store itself faster than AWS's recommended alarms allow: {}. Cryptographic operations with the store's keys failed with KMSInvalidStateException. Top exceptions: {}",
            what.join("; "),
            names.join(", ")
        ))
        .evidence(evidence)
        .exceptions(&[Code::KMSInvalidStateException])
        .codes(&codes));
    }
    Ok(Outcome::warn(format!(
        "{failed:.0} of KMS's {total:.0} request(s) to the proxy failed in {} (cryptographic operations then fail with KMSInvalidStateException): {}",
        m.window_text(),
        names.join(", ")
    ))
    .evidence(evidence)
    .exceptions(&[])
    .codes(&[]))
}

// ----- external key manager states -----

async fn key_manager_states(f: &Facts) -> Step<Outcome> {
    let m = need(f).await?;
    let qs = [
        Query::ManagersActive,
        Query::ManagersDegraded,
        Query::ManagersUnavailable,
    ];
    let mut evidence = base_evidence(m, &qs);
    let mut points: BTreeMap<&str, Vec<Point>> = BTreeMap::new();
    for q in qs {
        if let Some(all) = series(m, q)? {
            let state = q.manager_state().unwrap_or_default();
            points.insert(
                state,
                all.iter().flat_map(|s| s.points.iter().copied()).collect(),
            );
        }
    }
    let Some(latest) = points.values().flatten().map(|p| p.t).max() else {
        return Ok(Outcome::skip(format!(
            "nothing to judge: no {} data point in {} (the counts come from the proxy's GetHealthStatus answers to KMS; the store may not have been connected in that window)",
            metrics::MANAGER_STATES_METRIC,
            m.window_text()
        ))
        .evidence(evidence));
    };
    let at = |state: &str, t: i64| -> f64 {
        points
            .get(state)
            .map(|v| v.iter().filter(|p| p.t == t).map(|p| p.v).sum())
            .unwrap_or(0.0)
    };
    let (active, degraded, unavailable) = (
        at("Active", latest),
        at("Degraded", latest),
        at("Unavailable", latest),
    );
    evidence.push(format!(
        "latest period ({}): {active:.0} Active, {degraded:.0} Degraded, {unavailable:.0} Unavailable",
        metrics::format_time(latest)
    ));
    let bad: Vec<String> = ["Degraded", "Unavailable"]
        .iter()
        .filter_map(|state| {
            let v = points.get(state)?;
            let worst = v.iter().copied().max_by(|a, b| a.v.total_cmp(&b.v))?;
            (worst.v > 0.0).then(|| {
                let periods = v.iter().filter(|p| p.v > 0.0).count();
                format!(
                    "{state}: up to {:.0} instance(s) (period of {}), in {periods} period(s)",
                    worst.v,
                    when(&worst)
                )
            })
        })
        .collect();
    evidence.extend(bad.iter().cloned());
    if unavailable > 0.0 && active == 0.0 && degraded == 0.0 {
        return Ok(Outcome::fail(format!(
            "the proxy reports every external key manager instance Unavailable ({unavailable:.0}) in the latest period ({}): connecting fails with XKS_PROXY_NOT_REACHABLE, and cryptographic operations with the store's keys fail (KMSInvalidStateException)",
            metrics::format_time(latest)
        ))
        .evidence(evidence)
        .exceptions(&[Code::KMSInvalidStateException])
        .codes(&[Code::XKS_PROXY_NOT_REACHABLE]));
    }
    if !bad.is_empty() {
        return Ok(Outcome::warn(format!(
            "the proxy reported external key manager instances Degraded or Unavailable in {}: {}",
            m.window_text(),
            bad.join("; ")
        ))
        .evidence(evidence)
        .exceptions(&[])
        .codes(&[]));
    }
    Ok(Outcome::pass(format!(
        "every external key manager instance the proxy reported was Active in {} ({active:.0} in the latest period)",
        m.window_text()
    ))
    .evidence(evidence))
}

// ----- throttling -----

async fn throttling(f: &Facts) -> Step<Outcome> {
    let m = need(f).await?;
    let mut evidence = base_evidence(m, &[Query::Throttle]);
    let all = series(m, Query::Throttle)?.unwrap_or_default();
    let total: f64 = all.iter().map(Series::sum).sum();
    if total == 0.0 {
        return Ok(Outcome::pass(format!(
            "KMS throttled no request for the store's keys in {}",
            m.window_text()
        ))
        .evidence(evidence));
    }
    let mut per: Vec<(String, f64, Option<Point>)> = all
        .iter()
        .map(|s| (label_or(s, "all operations").to_string(), s.sum(), s.max()))
        .filter(|(_, n, _)| *n > 0.0)
        .collect();
    per.sort_by(|a, b| b.1.total_cmp(&a.1));
    for (op, n, peak) in &per {
        evidence.push(format!(
            "{op}: {n:.0} throttled{}",
            peak.map(|p| format!(", at most {:.0} in the period of {}", p.v, when(&p)))
                .unwrap_or_default()
        ));
    }
    Ok(Outcome::warn(format!(
        "KMS throttled {total:.0} request(s) for the store's keys in {} (the callers got ThrottlingException): the custom key store request quota was exceeded",
        m.window_text()
    ))
    .evidence(evidence)
    .exceptions(&[])
    .codes(&[]))
}

// ----- CloudHSM: HSM health -----

/// The cluster's metrics, or the outcome that ends the check.
async fn need_cluster(f: &Facts) -> Step<&StoreMetrics> {
    let Some(store) = f.key.as_ref().and_then(|k| k.existing()) else {
        return Err(Outcome::skip(
            "not an existing key store: the cluster's health is read for a store once it exists",
        ));
    };
    if !store.is_cloudhsm() {
        return Err(Outcome::skip("not a CloudHSM key store"));
    }
    got(f.cluster_metrics().await)
}

async fn hsm_health(f: &Facts) -> Step<Outcome> {
    let m = need_cluster(f).await?;
    let mut evidence = base_evidence(m, &[Query::HsmUnhealthy]);
    let Some(all) = series(m, Query::HsmUnhealthy)? else {
        return Ok(Outcome::skip(format!(
            "nothing to judge: no {} data point for {} in {} (CloudHSM publishes it for a cluster's HSMs; a cluster without HSMs, or a snapshot recorded without the query, has none)",
            metrics::HSM_UNHEALTHY_METRIC,
            m.store_id,
            m.window_text()
        ))
        .evidence(evidence));
    };
    // Per HSM: its worst period, and whether its latest period is still unhealthy.
    let mut now_unhealthy = Vec::new();
    let mut were_unhealthy = Vec::new();
    for s in all {
        let name = label_or(s, "the cluster");
        let (Some(worst), Some(latest)) = (s.max(), s.latest()) else {
            continue;
        };
        if worst.v > 0.0 {
            evidence.push(format!(
                "{name}: HsmUnhealthy {} at {} (latest {} at {})",
                worst.v,
                when(&worst),
                latest.v,
                when(&latest)
            ));
            if latest.v > 0.0 {
                now_unhealthy.push(name.to_string());
            } else {
                were_unhealthy.push(name.to_string());
            }
        } else {
            evidence.push(format!("{name}: HsmUnhealthy 0 in every period"));
        }
    }
    if !now_unhealthy.is_empty() {
        return Ok(Outcome::fail(format!(
            "CloudHSM reports {} unhealthy in the latest period ({}): \"all the requests that were sent to the HSM after it started behaving unexpectedly and before it is marked as unhealthy will fail\" (AWS prescriptive guidance); CloudHSM replaces unhealthy HSMs itself. KMS's cryptographic calls routed to it fail (KMSInvalidStateException)",
            now_unhealthy.join(", "),
            m.window_text()
        ))
        .evidence(evidence)
        .exceptions(&[Code::KMSInvalidStateException])
        .codes(&[]));
    }
    if !were_unhealthy.is_empty() {
        return Ok(Outcome::warn(format!(
            "CloudHSM reported {} unhealthy earlier in {} (healthy in the latest period: replaced or recovered); requests sent to it while unhealthy failed",
            were_unhealthy.join(", "),
            m.window_text()
        ))
        .evidence(evidence)
        .exceptions(&[])
        .codes(&[]));
    }
    Ok(Outcome::pass(format!(
        "no HSM of {} was unhealthy in {}",
        m.store_id,
        m.window_text()
    ))
    .evidence(evidence))
}
