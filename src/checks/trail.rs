//! An existing key store as CloudTrail recorded it (`facts::trail`, one set of LookupEvents
//! calls per Region): who changed the store recently, and which calls against its keys failed.
//! Run by `diagnose` and `scan` only (metadata `existing_only`), for both kinds of store.

use super::{got, register, Outcome, Step};
use crate::codes::Code;
use crate::facts::trail::{StoreTrail, TrailData, TrailEvent, KMS_PAGE_CAP, PAGE_SIZE};
use crate::facts::Facts;
use std::collections::BTreeMap;

/// The evidence line of `account.trail.store-changes` that names the latest successful change
/// (diagnose cites it).
pub const LATEST_CHANGE: &str = "latest change: ";

/// The id of the management events check (diagnose cites it).
pub const CHANGES: &str = "account.trail.store-changes";

register! {
    "account.trail.store-changes" => changes,
    "account.trail.failed-calls" => failed_calls,
}

/// How many events of each kind the evidence lists (the newest).
pub const LISTED: usize = 20;
/// Request ids named per group of failed calls.
pub const REQUEST_IDS: usize = 3;

/// Said by every result of `account.trail.store-changes`: what CloudTrail cannot show.
pub const CONNECT_NOT_IN_TRAIL: &str = "CloudTrail does not record the outcome of ConnectCustomKeyStore: the call returns as soon as the connection starts and its entry has responseElements null; the outcome is the store's ConnectionState and ConnectionErrorCode (DescribeCustomKeyStores)";

struct Read<'a> {
    data: &'a TrailData,
    store: StoreTrail,
    evidence: Vec<String>,
    /// Why the store's keys are not known (kms:ListKeys/DescribeKey could not be read), when
    /// they were asked for and are not.
    keys_unknown: Option<String>,
}

/// The store's part of the Region's events, or the outcome that ends a check.
async fn need(f: &Facts, with_keys: bool) -> Step<Read<'_>> {
    let store = super::key::existing_store(f)?;
    let data = got(f.trail().await)?;
    let mut evidence = vec![format!(
        "{} over {}: cloudtrail:LookupEvents",
        store.custom_key_store_id,
        data.window_text()
    )];
    for l in &data.lookups {
        evidence.push(format!(
            "lookup {}: {} event(s) in {} page(s){}",
            l.lookup.describe(),
            l.events,
            l.pages,
            if l.truncated {
                format!(
                    ", stopped at the cap of {} pages (more were left unread)",
                    l.lookup.page_cap()
                )
            } else {
                String::new()
            }
        ));
    }
    let mut keys: Vec<String> = Vec::new();
    let mut keys_unknown = None;
    if with_keys {
        match f.key_descriptions().await {
            Ok(d) => {
                for k in d.keys.iter().filter(|k| {
                    k.custom_key_store_id.as_deref() == Some(&store.custom_key_store_id)
                }) {
                    keys.push(k.key_id.clone());
                    keys.extend(k.arn.clone());
                }
                evidence.push(format!(
                    "the store holds {} KMS key(s) (kms:ListKeys, kms:DescribeKey)",
                    keys.iter().filter(|k| !k.starts_with("arn:")).count()
                ));
            }
            Err(e) => {
                evidence.push(format!(
                    "the store's keys are not known ({e}): failed calls are matched by the customKeyStoreId KMS records in additionalEventData only"
                ));
                keys_unknown = Some(e.to_string());
            }
        }
    }
    let trail = StoreTrail::of(
        data,
        &store.custom_key_store_id,
        &store.custom_key_store_name,
        &keys,
    );
    evidence.extend(trail.notes.iter().cloned());
    Ok(Read {
        data,
        store: trail,
        evidence,
        keys_unknown,
    })
}

fn newest(events: &[TrailEvent]) -> impl Iterator<Item = String> + '_ {
    let skip = events.len().saturating_sub(LISTED);
    events.iter().skip(skip).map(TrailEvent::line)
}

// ----- management events -----

async fn changes(f: &Facts) -> Step<Outcome> {
    let store = super::key::existing_store(f)?;
    let Read {
        data,
        store: trail,
        mut evidence,
        ..
    } = need(f, false).await?;
    let state = format!(
        "now {}{}",
        store.connection_state.as_deref().unwrap_or("UNKNOWN"),
        store
            .connection_error_code
            .as_deref()
            .map(|c| format!(" with {c}"))
            .unwrap_or_default()
    );
    let capped: Vec<String> = data
        .lookups
        .iter()
        .filter(|l| l.truncated && l.lookup != crate::facts::trail::Lookup::KmsEvents)
        .map(|l| l.lookup.describe())
        .collect();
    let bound = if capped.is_empty() {
        String::new()
    } else {
        format!(
            " (the lookups {} stopped at their page cap: older events were not read)",
            capped.join(", ")
        )
    };
    let events = &trail.changes;
    if events.len() > LISTED {
        evidence.push(format!("the {LISTED} newest of {} events:", events.len()));
    }
    evidence.extend(newest(events));
    evidence.push(CONNECT_NOT_IN_TRAIL.to_string());
    if events.is_empty() {
        return Ok(Outcome::pass(format!(
            "no management event of {} in {}{bound}; the store is {state}. {CONNECT_NOT_IN_TRAIL}",
            trail.store_id,
            data.window_text()
        ))
        .evidence(evidence));
    }
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for e in events {
        *counts.entry(e.event_name.as_str()).or_default() += 1;
    }
    let counted = counts
        .iter()
        .map(|(n, c)| format!("{c} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    // A change that succeeded: the configuration changed, or the store was disconnected.
    let changed: Vec<&TrailEvent> = events
        .iter()
        .filter(|e| {
            !e.failed()
                && matches!(
                    e.event_name.as_str(),
                    "UpdateCustomKeyStore" | "DisconnectCustomKeyStore"
                )
        })
        .collect();
    if let Some(last) = changed.last() {
        evidence.insert(0, format!("{LATEST_CHANGE}{}", last.line()));
        return Ok(Outcome::warn(format!(
            "{} was changed in {}: {counted}; the latest change: {}. The store is {state}. {CONNECT_NOT_IN_TRAIL}{bound}",
            trail.store_id,
            data.window_text(),
            last.line()
        ))
        .evidence(evidence)
        .exceptions(&[])
        .codes(&[]));
    }
    Ok(Outcome::pass(format!(
        "{} in {}: {counted} (no successful UpdateCustomKeyStore or DisconnectCustomKeyStore); the latest: {}. The store is {state}. {CONNECT_NOT_IN_TRAIL}{bound}",
        trail.store_id,
        data.window_text(),
        events.last().map(TrailEvent::line).unwrap_or_default()
    ))
    .evidence(evidence))
}

// ----- failed calls -----

/// What a caller saw for a failed call's errorCode, where AWS documents it.
pub fn what_callers_saw(code: &str) -> &'static str {
    match code {
        "KMSInvalidStateException" => "for errors on cryptographic operations with KMS keys in custom key stores KMS always returns KMSInvalidStateException (developer guide, xks-monitoring); its message names the cause (the proxy did not respond in time, KMS cannot communicate with the CloudHSM cluster, the store is not connected, ...)",
        "CustomKeyStoreInvalidStateException" => "the store was not CONNECTED (or was being connected) when the call was made",
        "AccessDeniedException" => "the caller's IAM or key policy denied the call: a permission, not the store",
        "NotFoundException" | "DisabledException" | "KMSInternalException"
        | "InvalidCiphertextException" | "IncorrectKeyException" | "KeyUnavailableException"
        | "DependencyTimeoutException" => "the KMS API reference lists this exception for the operation; it concerns the key or the request rather than the store's connection",
        _ => "not mapped by cks-doctor: read the message",
    }
}

async fn failed_calls(f: &Facts) -> Step<Outcome> {
    let Read {
        data,
        store: trail,
        mut evidence,
        keys_unknown,
    } = need(f, true).await?;
    let bound = match data.kms_lookup() {
        Some(l) if l.truncated => format!(
            "; bounded: only the {} most recent KMS events of the Region were read ({KMS_PAGE_CAP} pages of {PAGE_SIZE}), back to {}, not the whole window: older failed calls are not counted",
            l.events,
            l.oldest
                .map(crate::facts::metrics::format_time)
                .unwrap_or_else(|| "an unknown time".into())
        ),
        Some(_) => String::new(),
        None => "; the snapshot does not say whether its KMS events cover the whole window".into(),
    };
    let failed = &trail.failed_calls;
    if let (true, Some(why)) = (failed.is_empty(), &keys_unknown) {
        // None found, but calls against the store's keys that name no store id would not have
        // been seen: not a pass.
        return Ok(Outcome::error(format!(
            "could not check: no failed call names {} in {}, but the store's keys could not be read ({why}), so calls against them that do not name the store were not looked for",
            trail.store_id,
            data.window_text()
        ))
        .evidence(evidence));
    }
    if failed.is_empty() {
        return Ok(Outcome::pass(format!(
            "no failed call against the keys of {} in {}{bound}",
            trail.store_id,
            data.window_text()
        ))
        .evidence(evidence));
    }
    // Grouped by errorCode and errorMessage.
    let mut groups: BTreeMap<(String, String), Vec<&TrailEvent>> = BTreeMap::new();
    for e in failed {
        groups
            .entry((
                e.error_code.clone().unwrap_or_default(),
                e.error_message.clone().unwrap_or_default(),
            ))
            .or_default()
            .push(e);
    }
    let mut ordered: Vec<(&(String, String), &Vec<&TrailEvent>)> = groups.iter().collect();
    ordered.sort_by_key(|g| std::cmp::Reverse(g.1.len()));
    let mut summary = Vec::new();
    for ((code, message), events) in &ordered {
        let mut ops: Vec<&str> = events.iter().map(|e| e.event_name.as_str()).collect();
        ops.sort();
        ops.dedup();
        let ids: Vec<&str> = events
            .iter()
            .rev()
            .filter_map(|e| e.request_id.as_deref())
            .take(REQUEST_IDS)
            .collect();
        let first = events.first().and_then(|e| e.time);
        let last = events.last().and_then(|e| e.time);
        evidence.push(format!(
            "{} x {code}{} in {} from {} to {}; request ids {}: {}",
            events.len(),
            if message.is_empty() {
                String::new()
            } else {
                format!(" \"{message}\"")
            },
            ops.join(", "),
            first
                .map(crate::facts::metrics::format_time)
                .unwrap_or_default(),
            last.map(crate::facts::metrics::format_time)
                .unwrap_or_default(),
            if ids.is_empty() {
                "none recorded".to_string()
            } else {
                ids.join(", ")
            },
            what_callers_saw(code)
        ));
        summary.push(format!("{} x {code}", events.len()));
    }
    let invalid_state = groups.keys().any(|(c, _)| c == "KMSInvalidStateException");
    let out = Outcome::warn(format!(
        "{} failed call(s) against the keys of {} in {} ({}); match the request ids against the {} logs{bound}",
        failed.len(),
        trail.store_id,
        data.window_text(),
        summary.join(", "),
        if f.request.cluster_id().is_some() {
            "CloudHSM audit"
        } else {
            "proxy's"
        }
    ))
    .evidence(evidence)
    .codes(&[]);
    Ok(if invalid_state {
        out.exceptions(&[Code::KMSInvalidStateException])
    } else {
        out.exceptions(&[])
    })
}
