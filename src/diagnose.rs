//! Diagnosing an existing key store (requirements §7): rebuild its configuration from
//! DescribeCustomKeyStores, run every check that applies to an existing store, and say which
//! checks confirm its ConnectionErrorCode and which rule out the code's other causes.

use crate::certs;
use crate::checks::Status;
use crate::codes;
use crate::codes::Code;
use crate::facts::model::CustomKeyStore;
use crate::input::{CloudHsmRequest, ConnectTo, Request, TrustAnchor, XksRequest};
use crate::results::CheckResult;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Connection error codes whose cause lives inside the HSM or KMS: no AWS API shows it, so
/// the documented recovery steps are the answer, with whatever evidence could be gathered.
pub fn cause_is_hidden(code: &str, cloudhsm: bool) -> bool {
    let Some(code) = Code::from_name(code) else {
        return false;
    };
    matches!(
        code,
        Code::USER_LOCKED_OUT | Code::USER_LOGGED_IN | Code::USER_NOT_FOUND | Code::INTERNAL_ERROR
    ) || (cloudhsm && code == Code::INVALID_CREDENTIALS)
}

/// What the operator supplies that KMS does not return.
#[derive(Default)]
pub struct Extras {
    pub secret: Option<SecretString>,
    pub users: Option<crate::facts::model::CloudHsmUserList>,
    pub connect_to: Option<ConnectTo>,
    pub trust_ca: Vec<certs::Cert>,
    pub client_identity: Option<crate::input::ClientIdentity>,
    pub region: String,
    pub timeout: Duration,
}

/// Finds the store by id or name.
pub fn find<'a>(
    stores: &'a [CustomKeyStore],
    id: Option<&str>,
    name: Option<&str>,
) -> Result<&'a CustomKeyStore, String> {
    let found = stores.iter().find(|s| {
        id.is_some_and(|i| s.custom_key_store_id == i)
            || name.is_some_and(|n| s.custom_key_store_name == n)
    });
    found.ok_or_else(|| {
        let what = id
            .map(|i| format!("id {i}"))
            .or(name.map(|n| format!("name {n:?}")))
            .unwrap_or_default();
        let known: Vec<String> = stores
            .iter()
            .map(|s| format!("{} ({})", s.custom_key_store_id, s.custom_key_store_name))
            .collect();
        if known.is_empty() {
            format!("no custom key store with {what}: the account has none in this Region")
        } else {
            format!(
                "no custom key store with {what}; the account has: {}",
                known.join(", ")
            )
        }
    })
}

/// The store's configuration as a request the checks understand.
pub fn request_for(store: &CustomKeyStore, extras: Extras) -> Result<Request, String> {
    if store.is_cloudhsm() {
        let cluster_id = store
            .cloud_hsm_cluster_id
            .clone()
            .ok_or("the store reports no CloudHsmClusterId")?;
        let anchor_text = store
            .trust_anchor_certificate
            .clone()
            .ok_or("the store reports no TrustAnchorCertificate")?;
        let trust_anchor =
            TrustAnchor::from_text("the store's TrustAnchorCertificate", anchor_text)
                .map_err(|e| e.to_string())?;
        return Ok(Request::CloudHsm(CloudHsmRequest {
            name: Some(store.custom_key_store_name.clone()),
            cluster_id,
            trust_anchor,
            // KMS never returns the password; its format can only be checked at creation.
            password: None,
            users: extras.users,
        }));
    }
    let x = store
        .xks_proxy_configuration
        .clone()
        .ok_or("the external key store reports no XksProxyConfiguration")?;
    Ok(Request::Xks(XksRequest {
        name: Some(store.custom_key_store_name.clone()),
        uri_endpoint: x.uri_endpoint.unwrap_or_default(),
        uri_path: x.uri_path.unwrap_or_default(),
        connectivity: x.connectivity.unwrap_or_else(|| "PUBLIC_ENDPOINT".into()),
        vpc_endpoint_service_name: x.vpc_endpoint_service_name,
        vpc_endpoint_service_owner: x.vpc_endpoint_service_owner,
        access_key_id: x.access_key_id,
        secret: extras.secret,
        connect_to: extras.connect_to,
        trust_ca: extras.trust_ca,
        client_identity: extras.client_identity,
        region: extras.region,
        timeout: extras.timeout,
    }))
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Diagnosis {
    pub custom_key_store_id: String,
    pub custom_key_store_name: String,
    pub custom_key_store_type: String,
    pub connection_state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_error_code: Option<String>,
    /// What the state or code means, in AWS's words.
    pub meaning: String,
    /// Checks that fail with the store's ConnectionErrorCode: the cause found.
    pub confirmed_by: Vec<String>,
    /// Checks for the same code that pass and observe what KMS observes (the metadata's
    /// `pass_rules_out`): causes ruled out.
    pub ruled_out: Vec<String>,
    /// Checks for the same code that pass from this machine but do not observe what KMS
    /// observes (DNS, TCP, TLS, latency from here): not ruled out from here.
    #[serde(default)]
    pub not_ruled_out: Vec<String>,
    /// Checks for the same code that could not run or need a human.
    pub not_checked: Vec<String>,
    /// Other failing checks: problems the store has besides its current error.
    pub other_failures: Vec<String>,
    /// The documented recovery steps, in order.
    pub recovery: Vec<String>,
    /// Evidence from CloudTrail (`account.trail.store-changes` WARN: a successful Update or
    /// Disconnect in the window), cited, not taken as the cause.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent_changes: Vec<String>,
    pub text: String,
}

/// Reads the results against the store's state and error code.
pub fn diagnose(store: &CustomKeyStore, results: &[CheckResult]) -> Diagnosis {
    let state = store
        .connection_state
        .clone()
        .unwrap_or_else(|| "UNKNOWN".into());
    let code = store
        .connection_error_code
        .clone()
        .filter(|c| !c.is_empty());
    let cloudhsm = store.is_cloudhsm();
    let for_code = |r: &&CheckResult| {
        code.as_ref()
            .is_some_and(|c| r.connection_error_codes.iter().any(|x| x == c.as_str()))
    };
    let ids = |pred: &dyn Fn(&CheckResult) -> bool| -> Vec<String> {
        results
            .iter()
            .filter(|r| pred(r))
            .map(|r| r.id.clone())
            .collect()
    };
    let confirmed_by = ids(&|r| for_code(&r) && r.status == Status::Fail);
    let rules_out = |r: &CheckResult| {
        code.as_deref()
            .and_then(Code::from_name)
            .is_some_and(|c| crate::meta::get(&r.id).is_some_and(|m| m.pass_rules_out.contains(&c)))
    };
    let ruled_out = ids(&|r| for_code(&r) && r.status == Status::Pass && rules_out(r));
    let not_ruled_out = ids(&|r| for_code(&r) && r.status == Status::Pass && !rules_out(r));
    let not_checked = ids(&|r| {
        for_code(&r)
            && matches!(
                r.status,
                Status::Error | Status::Manual | Status::Warn | Status::Skip
            )
    });
    let other_failures = ids(&|r| !for_code(&r) && r.status == Status::Fail);
    let meaning = match &code {
        Some(c) => codes::lookup(c)
            .map(|x| x.meaning.to_string())
            .unwrap_or_else(|| {
                format!("{c} is a ConnectionErrorCode this version of cks-doctor does not know")
            }),
        None => codes::lookup_state(&state)
            .map(|s| s.meaning.to_string())
            .unwrap_or_default(),
    };
    let mut recovery: Vec<String> = code
        .as_ref()
        .and_then(|c| codes::lookup(c))
        .map(|c| c.fix.iter().map(|s| s.to_string()).collect())
        .unwrap_or_default();
    if recovery.is_empty() && state == "FAILED" {
        recovery.push("Disconnect the store (aws kms disconnect-custom-key-store), fix the cause, then connect it again (aws kms connect-custom-key-store); connecting can take up to 20 minutes".into());
    }
    let name = &store.custom_key_store_name;
    // A change recorded shortly before the failure is evidence worth naming; whether it caused
    // it, CloudTrail cannot say (Connect's outcome is not in it).
    let recent_changes: Vec<String> = results
        .iter()
        .filter(|r| r.id == crate::checks::trail::CHANGES && r.status == Status::Warn)
        .flat_map(|r| r.evidence.iter())
        .filter(|e| e.starts_with(crate::checks::trail::LATEST_CHANGE))
        .cloned()
        .collect();
    let mut text = match (&code, confirmed_by.is_empty()) {
        (Some(c), false) => format!(
            "{} ({name}) is {state} with {c}: confirmed by {}",
            store.custom_key_store_id,
            confirmed_by.join(", ")
        ),
        (Some(c), true) if cause_is_hidden(c, cloudhsm) => format!(
            "{} ({name}) is {state} with {c}: its cause lives inside the {} and no API shows it; follow the recovery steps{}",
            store.custom_key_store_id,
            if cloudhsm { "HSM or KMS" } else { "proxy or KMS" },
            if ruled_out.is_empty() { String::new() } else { format!(" (ruled out: {})", ruled_out.join(", ")) }
        ),
        (Some(c), true) => format!(
            "{} ({name}) is {state} with {c}, but no check confirms a cause{}{}{}",
            store.custom_key_store_id,
            if ruled_out.is_empty() { String::new() } else { format!("; ruled out: {}", ruled_out.join(", ")) },
            if not_ruled_out.is_empty() { String::new() } else { format!("; pass from here but not ruled out (KMS's view may differ): {}", not_ruled_out.join(", ")) },
            if not_checked.is_empty() { String::new() } else { format!("; could not check: {}", not_checked.join(", ")) }
        ),
        (None, _) if !other_failures.is_empty() => format!(
            "{} ({name}) is {state}, but {} fail: the store may not work fully (e.g. CreateKey needs two HSMs in different zones)",
            store.custom_key_store_id,
            other_failures.join(", ")
        ),
        (None, _) => format!("{} ({name}) is {state}; no check fails", store.custom_key_store_id),
    };
    if !recent_changes.is_empty() && (code.is_some() || state != "CONNECTED") {
        text.push_str(&format!(
            "; CloudTrail ({}) shows a recent change{}: {}",
            crate::checks::trail::CHANGES,
            if confirmed_by.is_empty() {
                ", which may explain it"
            } else {
                ""
            },
            recent_changes.join("; ")
        ));
    }
    Diagnosis {
        custom_key_store_id: store.custom_key_store_id.clone(),
        custom_key_store_name: name.clone(),
        custom_key_store_type: store
            .custom_key_store_type
            .clone()
            .unwrap_or_else(|| "AWS_CLOUDHSM".into()),
        connection_state: state,
        connection_error_code: code,
        meaning,
        confirmed_by,
        ruled_out,
        not_ruled_out,
        not_checked,
        other_failures,
        recovery,
        recent_changes,
        text,
    }
}
