//! Account-level rules (requirements §6): what the other custom key stores of the account
//! and Region allow. One DescribeCustomKeyStores (all pages) serves every check here.

use super::{got, register, Outcome, Step};
use crate::facts::model::CustomKeyStore;
use crate::facts::Facts;
use crate::input::CloudHsmRequest;

register! {
    "account.name-unused" => name_unused,
    "account.store-quota" => store_quota,
    "account.store-keys" => store_keys,
}

/// Custom key stores per account and Region, both kinds together; not adjustable.
pub const STORE_QUOTA: usize = 10;

pub fn describe_store(s: &CustomKeyStore) -> String {
    let kind = s.custom_key_store_type.as_deref().unwrap_or("AWS_CLOUDHSM");
    let state = s.connection_state.as_deref().unwrap_or("unknown state");
    let target = match (&s.cloud_hsm_cluster_id, &s.xks_proxy_configuration) {
        (Some(c), _) => format!(", cluster {c}"),
        (None, Some(x)) => format!(
            ", proxy {}{}",
            x.uri_endpoint.as_deref().unwrap_or("?"),
            x.uri_path.as_deref().unwrap_or("")
        ),
        _ => String::new(),
    };
    format!(
        "{} {:?} ({kind}, {state}{target})",
        s.custom_key_store_id, s.custom_key_store_name
    )
}

fn same_pem(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.split_whitespace().collect::<String>();
    norm(a) == norm(b)
}

/// KMS makes CreateCustomKeyStore idempotent for a DISCONNECTED store with the same name and
/// identical properties, the password included: it returns that store's id instead of failing.
/// This compares what can be compared (name, state, cluster, trust anchor); the password cannot.
pub fn is_idempotent_match(req: &CloudHsmRequest, s: &CustomKeyStore) -> bool {
    s.is_cloudhsm()
        && req.name.as_deref() == Some(s.custom_key_store_name.as_str())
        && s.connection_state.as_deref() == Some("DISCONNECTED")
        && s.cloud_hsm_cluster_id.as_deref() == Some(req.cluster_id.as_str())
        && s.trust_anchor_certificate
            .as_deref()
            .is_some_and(|t| same_pem(t, &req.trust_anchor.text))
}

async fn name_unused(f: &Facts) -> Step<Outcome> {
    let Some(name) = f.request.name() else {
        return Ok(Outcome::skip(
            "no key store name given (--name or CustomKeyStoreName): not checked against the account's stores",
        ));
    };
    let stores = got(f.key_stores().await)?;
    let Some(existing) = stores.iter().find(|s| s.custom_key_store_name == name) else {
        return Ok(Outcome::pass(format!(
            "no custom key store in this account and Region is named {name:?} ({} stores looked at)",
            stores.len()
        )));
    };
    if let Some(req) = f.request.cloudhsm() {
        if is_idempotent_match(req, existing) {
            return Ok(Outcome::warn(format!(
                "{} already has this name, cluster and trust anchor and is DISCONNECTED: KMS returns its id instead of creating a new store only when every property matches, the KeyStorePassword included, which KMS never returns and cks-doctor cannot compare; with another password CreateCustomKeyStore fails with CustomKeyStoreNameInUseException",
                existing.custom_key_store_id
            ))
            .evidence([describe_store(existing)])
            .fix(format!(
                "Use the existing store {} (connect it; if its kmsuser password changed, UpdateCustomKeyStore --key-store-password while it is DISCONNECTED), or choose another name",
                existing.custom_key_store_id
            )));
        }
    }
    Ok(Outcome::fail(format!(
        "the name {name:?} is already used by {}",
        existing.custom_key_store_id
    ))
    .evidence([describe_store(existing)]))
}

async fn store_quota(f: &Facts) -> Step<Outcome> {
    let stores = got(f.key_stores().await)?;
    let n = stores.len();
    let listing: Vec<String> = stores.iter().map(describe_store).collect();
    if n >= STORE_QUOTA {
        return Ok(Outcome::fail(format!(
            "the account already has {n} custom key stores in this Region; the quota is {STORE_QUOTA} (both kinds together) and cannot be raised"
        ))
        .evidence(listing));
    }
    let o = format!("{n} of {STORE_QUOTA} custom key stores used in this Region");
    if n == STORE_QUOTA - 1 {
        return Ok(
            Outcome::warn(format!("{o}: this store would use the last slot"))
                .evidence(listing)
                .exceptions(&[]),
        );
    }
    Ok(Outcome::pass(o).evidence(listing))
}

/// Key states in which a KMS key of a custom key store would be usable with its store CONNECTED.
fn key_line(k: &crate::facts::model::KeyMetadata) -> String {
    let external = k
        .xks_key_configuration
        .as_ref()
        .and_then(|x| x.id.as_deref())
        .map(|x| format!(", external key {x}"))
        .unwrap_or_default();
    format!(
        "{} ({}{external})",
        k.arn.as_deref().unwrap_or(&k.key_id),
        k.key_state.as_deref().unwrap_or("unknown state")
    )
}

async fn store_keys(f: &Facts) -> Step<Outcome> {
    let store = super::key::existing_store(f)?;
    let d = got(f.key_descriptions().await)?;
    let mine: Vec<&crate::facts::model::KeyMetadata> = d
        .keys
        .iter()
        .filter(|k| k.custom_key_store_id.as_deref() == Some(store.custom_key_store_id.as_str()))
        .collect();
    let mut evidence: Vec<String> = mine.iter().take(25).map(|k| key_line(k)).collect();
    if mine.len() > 25 {
        evidence.push(format!("... and {} more", mine.len() - 25));
    }
    let unread = if d.unreadable.is_empty() {
        String::new()
    } else {
        evidence.extend(
            d.unreadable
                .iter()
                .take(10)
                .map(|(k, why)| format!("not described: {k}: {why}")),
        );
        format!(
            "; {} of the account's keys could not be described and may be in it too",
            d.unreadable.len()
        )
    };
    let state = store.connection_state.as_deref().unwrap_or("unknown");
    // A store that is not CONNECTED and whose keys may be among the unreadable ones: whether it
    // leaves keys unusable is not known, which is not a PASS.
    if mine.is_empty() && !d.unreadable.is_empty() && state != "CONNECTED" {
        return Ok(Outcome::error(format!(
            "could not check: {} is {state}, none of the keys described is in it, and {} of the account's keys could not be described",
            store.custom_key_store_id,
            d.unreadable.len()
        ))
        .evidence(evidence));
    }
    if mine.is_empty() {
        return Ok(Outcome::pass(format!(
            "{} holds no KMS key{unread}",
            store.custom_key_store_id
        ))
        .evidence(evidence));
    }
    let mut states: std::collections::BTreeMap<&str, usize> = Default::default();
    for k in &mine {
        *states
            .entry(k.key_state.as_deref().unwrap_or("unknown"))
            .or_default() += 1;
    }
    let counted = states
        .iter()
        .map(|(s, n)| format!("{n} {s}"))
        .collect::<Vec<_>>()
        .join(", ");
    if state == "CONNECTED" {
        return Ok(Outcome::pass(format!(
            "{} holds {} KMS key(s) ({counted}){unread}",
            store.custom_key_store_id,
            mine.len()
        ))
        .evidence(evidence));
    }
    Ok(Outcome::warn(format!(
        "{} is {state} and holds {} KMS key(s) ({counted}): until it is CONNECTED again, every cryptographic operation with them fails (KMSInvalidStateException: a key of a store that is not connected is Unavailable){unread}",
        store.custom_key_store_id,
        mine.len()
    ))
    .evidence(evidence)
    .exceptions(&[]))
}
