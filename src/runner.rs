//! Runs checks concurrently, each in its own task with a timeout. A check that panics or
//! times out becomes ERROR ("could not check"); the run itself never aborts.

use crate::checks::{Check, Outcome, Status};
use crate::facts::Facts;
use crate::meta;
use crate::results::CheckResult;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Which checks to run: `--only` and `--skip` take ids or id prefixes (`cloudhsm.hsms`).
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub only: Vec<String>,
    pub skip: Vec<String>,
}

fn matches(id: &str, pattern: &str) -> bool {
    id == pattern || id.starts_with(&format!("{pattern}."))
}

impl Selection {
    /// Every pattern must name at least one check: a typo is bad input, not an empty run.
    pub fn validate(&self, ids: &[&str]) -> Result<(), String> {
        for p in self.only.iter().chain(&self.skip) {
            if !ids.iter().any(|id| matches(id, p)) {
                let hint = ids
                    .iter()
                    .find(|id| id.contains(p.as_str()))
                    .map(|id| format!(" (did you mean {id}?)"))
                    .unwrap_or_default();
                return Err(format!(
                    "no check matches {p:?}{hint}: `cks-doctor checks` lists them"
                ));
            }
        }
        Ok(())
    }

    pub fn includes(&self, id: &str) -> bool {
        (self.only.is_empty() || self.only.iter().any(|p| matches(id, p)))
            && !self.skip.iter().any(|p| matches(id, p))
    }
}

/// Makes a result from a check's outcome and its metadata.
pub fn result(id: &str, outcome: Outcome, duration: Duration) -> CheckResult {
    result_for(id, outcome, duration, false)
}

/// As [`result`]. `connect_time_only`: the request uses VPC endpoint service connectivity, with
/// which KMS contacts the proxy only when it connects the store, not at CreateCustomKeyStore,
/// so a check whose metadata says `proxy_contact` predicts ConnectionErrorCodes only.
pub fn result_for(
    id: &str,
    mut outcome: Outcome,
    duration: Duration,
    connect_time_only: bool,
) -> CheckResult {
    let m = meta::get(id);
    if connect_time_only && m.is_some_and(|m| m.proxy_contact) {
        outcome.kms_exceptions = Some(Vec::new());
        let predicts_code = match &outcome.connection_error_codes {
            Some(c) => !c.is_empty(),
            None => m.is_some_and(|m| !m.connection_error_codes.is_empty()),
        };
        if predicts_code && matches!(outcome.status, Status::Fail | Status::Warn) {
            outcome.message.push_str(
                " (VPC endpoint service connectivity: KMS contacts the proxy only when it connects the store, so this predicts a ConnectionErrorCode, not a CreateCustomKeyStore error)",
            );
        }
    }
    let kms_exceptions = match outcome.kms_exceptions {
        Some(v) => v,
        None => m.map(|m| m.kms_exceptions.clone()).unwrap_or_default(),
    };
    let connection_error_codes = match outcome.connection_error_codes {
        Some(v) => v,
        None => m
            .map(|m| m.connection_error_codes.clone())
            .unwrap_or_default(),
    };
    let mapping_notes = m
        .map(|m| {
            m.mapping_notes
                .iter()
                .filter(|n| {
                    let predicted = n
                        .codes
                        .iter()
                        .filter(|c| {
                            kms_exceptions.contains(c) || connection_error_codes.contains(c)
                        })
                        .count();
                    // A disagreement is shown where the result names more than one of its codes.
                    match n.basis {
                        meta::MappingBasis::Inferred => predicted > 0,
                        meta::MappingBasis::DocumentsDisagree => predicted > 1,
                    }
                })
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let remediation = match outcome.status {
        Status::Pass | Status::Skip => None,
        Status::Error => Some(match m {
            Some(m) if !m.iam_actions.is_empty() => format!(
                "Fix what stopped the check and run again. It needs: {}.",
                m.iam_actions.join(", ")
            ),
            _ => "Fix what stopped the check and run again.".to_string(),
        }),
        _ => outcome
            .remediation
            .or_else(|| m.map(|m| m.remediation.clone())),
    };
    CheckResult {
        id: id.to_string(),
        title: m.map(|m| m.title.clone()).unwrap_or_else(|| id.to_string()),
        area: m.map(|m| m.area.clone()).unwrap_or_default(),
        severity: m.map(|m| m.severity),
        advisory: m.is_some_and(|m| m.advisory),
        status: outcome.status,
        message: outcome.message,
        evidence: outcome.evidence,
        kms_exceptions,
        connection_error_codes,
        mapping_notes,
        remediation,
        duration_ms: duration.as_millis() as u64,
    }
}

fn panic_message(e: tokio::task::JoinError) -> String {
    match e.try_into_panic() {
        Ok(p) => p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into()),
        Err(e) => e.to_string(),
    }
}

/// Runs `checks` concurrently over `facts`; results come back in the order given.
pub async fn run(
    facts: Arc<Facts>,
    checks: &[&'static Check],
    timeout: Duration,
) -> Vec<CheckResult> {
    run_with_jobs(facts, checks, timeout, usize::MAX).await
}

/// Called with a check's id as soon as it is done (progress display); the engine itself knows
/// nothing about how that is shown.
pub type OnDone = Arc<dyn Fn(&str) + Send + Sync>;

/// As [`run`], with at most `jobs` checks in flight (`--jobs`; 1 runs them one after another).
/// A check's timeout starts when it starts.
pub async fn run_with_jobs(
    facts: Arc<Facts>,
    checks: &[&'static Check],
    timeout: Duration,
    jobs: usize,
) -> Vec<CheckResult> {
    run_observed(facts, checks, timeout, jobs, None).await
}

/// As [`run_with_jobs`], calling `on_done` as each check finishes.
pub async fn run_observed(
    facts: Arc<Facts>,
    checks: &[&'static Check],
    timeout: Duration,
    jobs: usize,
    on_done: Option<OnDone>,
) -> Vec<CheckResult> {
    run_limited(facts, checks, timeout, permits(jobs), on_done).await
}

/// Permits for at most `jobs` checks in flight, to share between runs ([`run_limited`]).
pub fn permits(jobs: usize) -> Arc<tokio::sync::Semaphore> {
    Arc::new(tokio::sync::Semaphore::new(
        jobs.clamp(1, tokio::sync::Semaphore::MAX_PERMITS),
    ))
}

/// As [`run_observed`], each check taking one of `permits` while it runs: runs that share the
/// permits (the stores of a scan) have at most that many checks in flight between them.
pub async fn run_limited(
    facts: Arc<Facts>,
    checks: &[&'static Check],
    timeout: Duration,
    permits: Arc<tokio::sync::Semaphore>,
    on_done: Option<OnDone>,
) -> Vec<CheckResult> {
    let handles: Vec<_> = checks
        .iter()
        .map(|check| {
            let facts = facts.clone();
            let run = check.run;
            let permits = permits.clone();
            let on_done = on_done.clone();
            let id = check.id;
            tokio::spawn(async move {
                let _permit = permits.acquire_owned().await;
                let start = Instant::now();
                let outcome = tokio::time::timeout(timeout, run(facts)).await;
                if let Some(f) = &on_done {
                    f(id);
                }
                (outcome, start.elapsed())
            })
        })
        .collect();
    let connect_time_only = facts.request.xks().is_some_and(|r| r.is_vpc());
    let mut out = Vec::with_capacity(checks.len());
    for (check, handle) in checks.iter().zip(handles) {
        let (outcome, elapsed) = match handle.await {
            Ok((Ok(o), d)) => (o, d),
            Ok((Err(_), d)) => (
                Outcome::error(format!(
                    "could not check: no answer within the {}s timeout (--timeout)",
                    timeout.as_secs_f64()
                )),
                d,
            ),
            Err(e) => (
                Outcome::error(format!(
                    "could not check: the check crashed ({}); please report this",
                    panic_message(e)
                )),
                Duration::ZERO,
            ),
        };
        out.push(result_for(check.id, outcome, elapsed, connect_time_only));
    }
    out
}
