//! CreateKey pre-flight (requirements §10): what KMS verifies when a KMS key is created in a
//! custom key store. The store: it exists and is CONNECTED; a CloudHSM store's cluster has two
//! ACTIVE HSMs in different Availability Zones; the account has room for another key. An
//! external key store's key: the proxy's GetKeyMetadata, sent as KMS sends it at CreateKey,
//! finds it, and it is an enabled AES-256 key that encrypts and decrypts; no other KMS key of
//! the store is backed by it.

use super::{got, register, Outcome, Step};
use crate::facts::model::KeyMetadata;
use crate::facts::Facts;
use crate::input::KeyStoreRef;

register! {
    "key.store.exists" => store_exists,
    "key.store.connected" => store_connected,
    "key.cloudhsm.hsms" => cloudhsm_hsms,
    "key.quota" => quota,
    "key.xks.metadata" => xks_metadata,
    "key.xks.configuration" => xks_configuration,
    "key.xks.not-in-use" => xks_not_in_use,
    "key.xks.id-stable" => xks_id_stable,
}

pub const STORE_EXISTS: &str = "key.store.exists";
pub const XKS_METADATA: &str = "key.xks.metadata";

/// KMS keys per account and Region (customer managed keys, any key state): the default
/// value of an adjustable quota.
pub const KEY_QUOTA: usize = 100_000;

/// The store under a key pre-flight, or the outcome that ends a check needing an existing one.
pub(crate) fn existing_store(f: &Facts) -> Step<&crate::facts::model::CustomKeyStore> {
    let Some(key) = &f.key else {
        return Err(Outcome::skip("not a key pre-flight"));
    };
    match &key.store {
        KeyStoreRef::Existing(s) => Ok(s),
        KeyStoreRef::New => Err(Outcome::skip(
            "the store is about to be created by this pre-flight's CreateCustomKeyStore",
        )),
        KeyStoreRef::NotFound(named) => Err(Outcome::blocked(
            STORE_EXISTS,
            format!("no custom key store {named}"),
        )),
    }
}

async fn store_exists(f: &Facts) -> Step<Outcome> {
    let Some(key) = &f.key else {
        return Ok(Outcome::skip("not a key pre-flight"));
    };
    match &key.store {
        KeyStoreRef::Existing(s) => Ok(Outcome::pass(format!(
            "{} exists in this account and Region",
            super::account::describe_store(s)
        ))),
        KeyStoreRef::New => Ok(Outcome::skip(
            "the store is about to be created by this pre-flight's CreateCustomKeyStore; CreateKey takes its CustomKeyStoreId once it exists",
        )),
        KeyStoreRef::NotFound(named) => {
            let stores = got(f.key_stores().await)?;
            Ok(Outcome::fail(format!(
                "no custom key store {named} in this account and Region: CreateKey with it fails with CustomKeyStoreNotFoundException"
            ))
            .evidence(
                stores
                    .iter()
                    .map(super::account::describe_store)
                    .collect::<Vec<_>>(),
            ))
        }
    }
}

async fn store_connected(f: &Facts) -> Step<Outcome> {
    let Some(key) = &f.key else {
        return Ok(Outcome::skip("not a key pre-flight"));
    };
    if matches!(key.store, KeyStoreRef::New) {
        return Ok(Outcome::warn(
            "a new store is DISCONNECTED after CreateCustomKeyStore: until ConnectCustomKeyStore brings it to CONNECTED, CreateKey fails with CustomKeyStoreInvalidStateException",
        )
        .exceptions(&[])
        .fix("After creating the store: aws kms connect-custom-key-store --custom-key-store-id <id>, then wait until aws kms describe-custom-key-stores --custom-key-store-id <id> shows ConnectionState CONNECTED"));
    }
    let s = existing_store(f)?;
    let state = s.connection_state.as_deref().unwrap_or("unknown");
    if state == "CONNECTED" {
        return Ok(Outcome::pass(format!(
            "{} is CONNECTED",
            s.custom_key_store_id
        )));
    }
    let mut o = Outcome::fail(format!(
        "{} is {state}: CreateKey needs a CONNECTED store (else CustomKeyStoreInvalidStateException)",
        s.custom_key_store_id
    ))
    .evidence([super::account::describe_store(s)]);
    if let Some(code) = &s.connection_error_code {
        o = o.fix(format!(
            "The last connection failed with {code}: run `cks-doctor diagnose {}` for its cause, fix it, then disconnect and connect the store again",
            s.custom_key_store_id
        ));
    }
    Ok(o)
}

async fn cloudhsm_hsms(f: &Facts) -> Step<Outcome> {
    let s = existing_store(f)?;
    if !s.is_cloudhsm() {
        return Ok(Outcome::skip("not an AWS CloudHSM key store"));
    }
    let c = super::need_cluster(f).await?;
    let (active, azs) = super::cloudhsm::active_hsm_zones(c);
    let evidence = super::cloudhsm::hsm_lines(c);
    if c.state != "ACTIVE" {
        return Ok(Outcome::fail(format!(
            "the cluster {} is {}: CreateKey needs it ACTIVE with at least two ACTIVE HSMs in different Availability Zones",
            c.cluster_id, c.state
        ))
        .evidence(evidence));
    }
    if active >= 2 && azs.len() >= 2 {
        return Ok(Outcome::pass(format!(
            "the cluster {} is ACTIVE with {} ACTIVE HSMs in {} Availability Zones ({})",
            c.cluster_id,
            active,
            azs.len(),
            azs.iter().copied().collect::<Vec<_>>().join(", ")
        ))
        .evidence(evidence));
    }
    Ok(Outcome::fail(format!(
        "CreateKey needs at least two ACTIVE HSMs in different Availability Zones; the cluster {} has {} ACTIVE HSM(s) in {} zone(s)",
        c.cluster_id,
        active,
        azs.len()
    ))
    .evidence(evidence)
    .fix(format!(
        "Add an HSM in another Availability Zone: aws cloudhsmv2 create-hsm --cluster-id {} --availability-zone <zone with a cluster subnet>",
        c.cluster_id
    )))
}

async fn quota(f: &Facts) -> Step<Outcome> {
    if f.key.is_none() {
        return Ok(Outcome::skip("not a key pre-flight"));
    }
    let keys = got(f.keys().await)?;
    let n = keys.len();
    if n >= KEY_QUOTA {
        return Ok(Outcome::warn(format!(
            "ListKeys returns {n} KMS keys in this Region, at or above the default quota of {KEY_QUOTA} customer managed keys: unless the quota was raised, CreateKey fails with LimitExceededException (AWS managed keys are listed too but do not count)"
        ))
        .exceptions(&[crate::codes::Code::LimitExceededException]));
    }
    Ok(Outcome::pass(format!(
        "ListKeys returns {n} KMS keys in this Region (AWS managed keys included), below the default quota of {KEY_QUOTA} customer managed keys; a quota changed in Service Quotas or by AWS Support is not visible to cks-doctor"
    )))
}

/// The XKS key id of the pre-flight, or the outcome that ends an XKS key check.
fn xks_key_id(f: &Facts) -> Step<&str> {
    let Some(key) = &f.key else {
        return Err(Outcome::skip("not a key pre-flight"));
    };
    if let KeyStoreRef::NotFound(named) = &key.store {
        return Err(Outcome::blocked(
            STORE_EXISTS,
            format!("no custom key store {named}"),
        ));
    }
    if let KeyStoreRef::Existing(s) = &key.store {
        if s.is_cloudhsm() {
            return Err(Outcome::skip("not an external key store"));
        }
    }
    match key.xks_key_id.as_deref() {
        Some(id) => Ok(id),
        None => Err(Outcome::skip(
            "no external key id given (--xks-key-id): CreateKey in an external key store needs one",
        )),
    }
}

/// The proxy's answer to GetKeyMetadata parsed, or why it is not a usable answer.
pub struct KeyAnswer {
    pub key_spec: Option<String>,
    pub key_usage: Option<Vec<String>>,
    pub key_status: Option<String>,
}

fn parse_metadata(body: &serde_json::Value) -> Result<KeyAnswer, String> {
    let obj = body
        .as_object()
        .ok_or("the 200 body is not a JSON object")?;
    let key_spec = obj
        .get("keySpec")
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .ok_or("keySpec is not a string")
        })
        .transpose()?;
    let key_status = obj
        .get("keyStatus")
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .ok_or("keyStatus is not a string")
        })
        .transpose()?;
    let key_usage = match obj.get("keyUsage") {
        None => None,
        Some(serde_json::Value::Array(a)) => Some(
            a.iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or("keyUsage is not an array of strings")?,
        ),
        Some(_) => return Err("keyUsage is not an array".into()),
    };
    let missing: Vec<&str> = [
        ("keySpec", key_spec.is_none()),
        ("keyUsage", key_usage.is_none()),
        ("keyStatus", key_status.is_none()),
    ]
    .iter()
    .filter(|(_, m)| *m)
    .map(|(n, _)| *n)
    .collect();
    if !missing.is_empty() {
        return Err(format!(
            "the 200 body lacks {} (the specification requires keySpec, keyUsage and keyStatus)",
            missing.join(", ")
        ));
    }
    Ok(KeyAnswer {
        key_spec,
        key_usage,
        key_status,
    })
}

/// The answer, or the outcome that ends a check needing it.
async fn need_metadata(f: &Facts, this_check: &str) -> Step<KeyAnswer> {
    let _ = xks_key_id(f)?;
    let Some(m) = f.xks_key_metadata().await else {
        return Err(Outcome::blocked(
            "xks.params.uri-endpoint",
            "the store's proxy endpoint has no form cks-doctor can connect to",
        ));
    };
    let blocked = |why: &str| {
        if this_check == XKS_METADATA {
            Outcome::error(why.to_string())
        } else {
            Outcome::blocked(XKS_METADATA, why)
        }
    };
    let a = match &m.answer {
        Ok(a) => a,
        Err(e) => {
            return Err(blocked(&format!(
                "could not check: the proxy could not be reached from here: {e}"
            )))
        }
    };
    match &a.call.result {
        Err(e) => Err(blocked(&format!(
            "could not check: GetKeyMetadata got no complete answer: {e}"
        ))),
        Ok(ex) if ex.status == 200 => match a.call.json() {
            Some(v) => parse_metadata(&v).map_err(|e| {
                if this_check == XKS_METADATA {
                    Outcome::fail(format!("GetKeyMetadata answered 200, but {e}")).exceptions(&[])
                } else {
                    Outcome::blocked(XKS_METADATA, e)
                }
            }),
            None => Err(if this_check == XKS_METADATA {
                Outcome::fail("GetKeyMetadata answered 200 with a body that is not JSON")
                    .exceptions(&[])
            } else {
                Outcome::blocked(XKS_METADATA, "the answer is not JSON")
            }),
        },
        Ok(ex) => Err(blocked(&format!(
            "GetKeyMetadata answered HTTP {} {}",
            ex.status,
            a.call.error_name().unwrap_or_default()
        ))),
    }
}

async fn xks_metadata(f: &Facts) -> Step<Outcome> {
    let id = xks_key_id(f)?;
    let Some(m) = f.xks_key_metadata().await else {
        return Ok(Outcome::blocked(
            "xks.params.uri-endpoint",
            "the store's proxy endpoint has no form cks-doctor can connect to",
        ));
    };
    let mut evidence = vec![format!(
        "awsPrincipalArn sent: {}{}",
        m.principal,
        m.principal_note
            .as_ref()
            .map(|n| format!(" ({n}; KMS sends the ARN of the caller of CreateKey)"))
            .unwrap_or_default()
    )];
    let a = match &m.answer {
        Ok(a) => a,
        Err(e) => {
            return Ok(Outcome::error(format!(
                "could not check: the proxy could not be reached from here: {e}"
            ))
            .evidence(evidence))
        }
    };
    evidence.insert(0, format!("POST {}", a.url));
    if let Some(ms) = a.call.request_ms {
        evidence.push(format!(
            "answered in {ms:.1} ms (request written to last byte)"
        ));
    }
    let ex = match &a.call.result {
        Ok(ex) => ex,
        Err(e) => {
            return Ok(Outcome::error(format!(
                "could not check: GetKeyMetadata got no complete answer: {e}"
            ))
            .evidence(evidence))
        }
    };
    let name = a.call.error_name();
    match (ex.status, name.as_deref()) {
        (200, _) => match need_metadata(f, XKS_METADATA).await {
            Ok(_) => Ok(Outcome::pass(format!(
                "the proxy knows the external key {id:?}: GetKeyMetadata answered 200"
            ))
            .evidence(evidence)),
            Err(o) => Ok(o.evidence(evidence)),
        },
        (404, Some("KeyNotFoundException")) => Ok(Outcome::fail(format!(
            "the proxy does not know the external key {id:?}: GetKeyMetadata answered 404 KeyNotFoundException"
        ))
        .evidence(evidence)),
        (404, _) => Ok(Outcome::fail(format!(
            "GetKeyMetadata answered 404 {}: the path is not the proxy's key API (a wrong XksProxyUriPath, or a web server in front of the proxy), not a missing key",
            name.unwrap_or_else(|| "without the XKS error body".into())
        ))
        .evidence(evidence)
        .exceptions(&[])),
        (401, _) => Ok(Outcome::error(
            "could not check: the proxy refused cks-doctor's signature (401 AuthenticationFailedException); the access key id and secret given here may not be the store's own, which KMS signs with",
        )
        .evidence(evidence)),
        (403, _) => Ok(Outcome::error(format!(
            "could not check: the proxy's authorization refused the request (403 {}); it judges the awsPrincipalArn, and KMS sends the ARN of whoever calls CreateKey, not cks-doctor's",
            name.unwrap_or_default()
        ))
        .evidence(evidence)),
        (status, n) => Ok(Outcome::fail(format!(
            "GetKeyMetadata answered HTTP {status} {}: CreateKey's documented errors name no exception for this answer",
            n.unwrap_or("without the XKS error body")
        ))
        .evidence(evidence)
        .exceptions(&[])),
    }
}

async fn xks_configuration(f: &Facts) -> Step<Outcome> {
    let id = xks_key_id(f)?;
    let k = need_metadata(f, "key.xks.configuration").await?;
    let spec = k.key_spec.unwrap_or_default();
    let status = k.key_status.unwrap_or_default();
    let usage = k.key_usage.unwrap_or_default();
    let mut wrong = Vec::new();
    if spec != "AES_256" {
        wrong.push(format!("keySpec is {spec:?}, not AES_256"));
    }
    if status != "ENABLED" {
        wrong.push(format!("keyStatus is {status:?}, not ENABLED"));
    }
    let lacks: Vec<&str> = ["ENCRYPT", "DECRYPT"]
        .into_iter()
        .filter(|u| !usage.iter().any(|x| x == u))
        .collect();
    if !lacks.is_empty() {
        wrong.push(format!("keyUsage {usage:?} lacks {}", lacks.join(" and ")));
    }
    let evidence = [format!(
        "keySpec {spec:?}, keyUsage {usage:?}, keyStatus {status:?}"
    )];
    if wrong.is_empty() {
        return Ok(Outcome::pass(format!(
            "the external key {id:?} is an ENABLED AES_256 key that may ENCRYPT and DECRYPT"
        ))
        .evidence(evidence));
    }
    Ok(Outcome::fail(format!(
        "the external key {id:?} does not meet KMS's requirements: {}",
        wrong.join("; ")
    ))
    .evidence(evidence))
}

async fn xks_not_in_use(f: &Facts) -> Step<Outcome> {
    let id = xks_key_id(f)?;
    let store = match existing_store(f) {
        Ok(s) => s,
        Err(_) => {
            return Ok(Outcome::skip(
                "a store about to be created has no KMS keys yet",
            ))
        }
    };
    let d = got(f.key_descriptions().await)?;
    let in_store: Vec<&KeyMetadata> = d
        .keys
        .iter()
        .filter(|k| k.custom_key_store_id.as_deref() == Some(store.custom_key_store_id.as_str()))
        .collect();
    let line = |k: &KeyMetadata| {
        format!(
            "{} ({}), external key {}",
            k.arn.as_deref().unwrap_or(&k.key_id),
            k.key_state.as_deref().unwrap_or("unknown state"),
            k.xks_key_configuration
                .as_ref()
                .and_then(|x| x.id.as_deref())
                .unwrap_or("?")
        )
    };
    let users: Vec<&&KeyMetadata> = in_store
        .iter()
        .filter(|k| {
            k.xks_key_configuration
                .as_ref()
                .and_then(|x| x.id.as_deref())
                == Some(id)
        })
        .collect();
    if !users.is_empty() {
        return Ok(Outcome::fail(format!(
            "the external key {id:?} already backs {} of the store {}: each KMS key of an external key store needs its own external key (a key pending deletion still holds it)",
            users.iter().map(|k| k.key_id.as_str()).collect::<Vec<_>>().join(", "),
            store.custom_key_store_id
        ))
        .evidence(users.iter().map(|k| line(k)).collect::<Vec<_>>()));
    }
    if !d.unreadable.is_empty() {
        let shown: Vec<String> = d
            .unreadable
            .iter()
            .take(20)
            .map(|(k, why)| format!("{k}: {why}"))
            .collect();
        return Ok(Outcome::error(format!(
            "could not check: {} of the account's keys could not be described, and any of them may be a key of this store backed by {id:?}",
            d.unreadable.len()
        ))
        .evidence(shown));
    }
    Ok(Outcome::pass(format!(
        "no KMS key of the store {} is backed by {id:?} ({} KMS key(s) in the store, {} described in all)",
        store.custom_key_store_id,
        in_store.len(),
        d.keys.len()
    ))
    .evidence(in_store.iter().map(|k| line(k)).collect::<Vec<_>>()))
}

/// Words an external key manager uses for names that can be moved to another key.
const MUTABLE_HINTS: &[&str] = &["alias", "label", "name", "current", "latest", "default"];

async fn xks_id_stable(f: &Facts) -> Step<Outcome> {
    let id = xks_key_id(f)?;
    let lower = id.to_ascii_lowercase();
    let hint = MUTABLE_HINTS.iter().find(|h| lower.contains(*h));
    let has_digit = id.chars().any(|c| c.is_ascii_digit());
    let why = match (hint, has_digit) {
        (Some(h), _) => Some(format!("it contains {h:?}")),
        (None, false) => {
            Some("it has no digit, as names people choose often have none".to_string())
        }
        _ => None,
    };
    match why {
        Some(why) => Ok(Outcome::warn(format!(
            "{id:?} looks like an alias or a name rather than an immutable key id ({why}): the XksKeyId of a KMS key can never change, and if the name is later moved to another key, the KMS key cannot decrypt what it encrypted"
        ))),
        None => Ok(Outcome::pass(format!(
            "{id:?} looks like a generated key id (cks-doctor cannot tell an alias from an id; check your key manager)"
        ))),
    }
}
