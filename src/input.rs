//! The CreateCustomKeyStore request under check, built from command-line options or from the
//! `--cli-input-json` document the AWS CLI takes, and validated as far as the tool needs to use it.
//!
//! Rule: values the tool needs to look things up (the cluster id) or to read at all (files,
//! PEM, JSON) are validated here, and bad ones are bad input (exit 2). Values the tool only
//! judges (name, password, trust anchor properties) are judged by checks, which report the
//! exception KMS would return.

use crate::certs::{self, Cert};
use crate::facts::model::CloudHsmUserList;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::path::Path;

/// Bad input: one line, naming the input. Exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

impl InputError {
    pub fn new(s: impl Into<String>) -> Self {
        InputError(s.into())
    }
}

/// The trust anchor as given: its text (for the length rule) and the certificates in it.
#[derive(Debug, Clone)]
pub struct TrustAnchor {
    pub origin: String,
    pub text: String,
    pub chain: Vec<Cert>,
}

impl TrustAnchor {
    pub fn from_text(origin: &str, text: String) -> Result<TrustAnchor, InputError> {
        let chain = certs::parse_pem_chain(&text)
            .map_err(|e| InputError(format!("trust anchor {origin}: {e}")))?;
        Ok(TrustAnchor {
            origin: origin.to_string(),
            text,
            chain,
        })
    }
}

/// A CloudHSM key store request.
pub struct CloudHsmRequest {
    pub name: Option<String>,
    pub cluster_id: String,
    pub trust_anchor: TrustAnchor,
    /// Only its format is checked; it is never printed, logged or sent anywhere.
    pub password: Option<SecretString>,
    /// `cloudhsm-cli user list` output, when the operator supplied it.
    pub users: Option<CloudHsmUserList>,
}

impl std::fmt::Debug for CloudHsmRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudHsmRequest")
            .field("name", &self.name)
            .field("cluster_id", &self.cluster_id)
            .field("trust_anchor", &self.trust_anchor.origin)
            .field("password", &self.password.as_ref().map(|_| "[REDACTED]"))
            .field("users", &self.users.as_ref().map(|u| u.users.len()))
            .finish()
    }
}

#[derive(Debug)]
pub enum Request {
    /// Pre-flight of a CloudHSM key store.
    CloudHsm(CloudHsmRequest),
    /// Only the facts about a cluster and the account (`cks-doctor snapshot cloudhsm`).
    ClusterFacts { cluster_id: String },
}

impl Request {
    pub fn cluster_id(&self) -> Option<&str> {
        match self {
            Request::CloudHsm(r) => Some(&r.cluster_id),
            Request::ClusterFacts { cluster_id } => Some(cluster_id),
        }
    }
    pub fn name(&self) -> Option<&str> {
        match self {
            Request::CloudHsm(r) => r.name.as_deref(),
            Request::ClusterFacts { .. } => None,
        }
    }
    pub fn cloudhsm(&self) -> Option<&CloudHsmRequest> {
        match self {
            Request::CloudHsm(r) => Some(r),
            Request::ClusterFacts { .. } => None,
        }
    }
    /// Every secret in the request, for redaction tests and defence in depth.
    pub fn secrets(&self) -> Vec<&str> {
        match self {
            Request::CloudHsm(r) => r.password.iter().map(|p| p.expose_secret()).collect(),
            Request::ClusterFacts { .. } => Vec::new(),
        }
    }
}

/// `cluster-[2-7a-zA-Z]{11,16}` (CreateCustomKeyStore's CloudHsmClusterId, 19–24 characters).
pub fn validate_cluster_id(id: &str) -> Result<(), InputError> {
    let body = id.strip_prefix("cluster-");
    let ok = body.is_some_and(|b| {
        (11..=16).contains(&b.len())
            && b.chars()
                .all(|c| c.is_ascii_alphabetic() || ('2'..='7').contains(&c))
    });
    if ok {
        Ok(())
    } else {
        Err(InputError(format!(
            "cluster id {:?} does not match cluster-[2-7a-zA-Z]{{11,16}} (KMS would reject it with ValidationException)",
            truncate(id, 40)
        )))
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() > n {
        format!("{}…", s.chars().take(n).collect::<String>())
    } else {
        s.to_string()
    }
}

/// Largest input file cks-doctor reads (trust anchors are ≤ 5000 characters; a user list or a
/// request document is far below this).
pub const MAX_INPUT_BYTES: u64 = 1024 * 1024;

/// Reads a small text file named on the command line; `file://` prefixes are accepted as the
/// AWS CLI accepts them.
pub fn read_text_file(what: &str, arg: &str) -> Result<String, InputError> {
    let path = arg.strip_prefix("file://").unwrap_or(arg);
    let p = Path::new(path);
    let meta = std::fs::metadata(p)
        .map_err(|e| InputError(format!("{what} {path}: {}", io_reason(&e))))?;
    if meta.is_dir() {
        return Err(InputError(format!("{what} {path}: is a directory")));
    }
    if meta.len() > MAX_INPUT_BYTES {
        return Err(InputError(format!(
            "{what} {path}: {} bytes is larger than the 1 MiB limit",
            meta.len()
        )));
    }
    let bytes =
        std::fs::read(p).map_err(|e| InputError(format!("{what} {path}: {}", io_reason(&e))))?;
    String::from_utf8(bytes).map_err(|_| {
        InputError(format!(
            "{what} {path}: not UTF-8 text (a DER or other binary file where text was expected?)"
        ))
    })
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// Strips one trailing newline (as `echo` or an editor leaves it) from a secret read from a
/// file or stdin; everything else is kept as given.
pub fn secret_from_text(mut text: String) -> SecretString {
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    SecretString::from(text)
}

pub fn load_users(arg: &str) -> Result<CloudHsmUserList, InputError> {
    let text = read_text_file("--cloudhsm-users", arg)?;
    CloudHsmUserList::from_json(&text).map_err(|e| {
        InputError(format!(
            "--cloudhsm-users {}: {e}",
            arg.strip_prefix("file://").unwrap_or(arg)
        ))
    })
}

/// The document `aws kms create-custom-key-store --cli-input-json` takes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct CliInput {
    custom_key_store_name: Option<String>,
    cloud_hsm_cluster_id: Option<String>,
    trust_anchor_certificate: Option<String>,
    key_store_password: Option<String>,
    custom_key_store_type: Option<String>,
    xks_proxy_uri_endpoint: Option<String>,
    xks_proxy_uri_path: Option<String>,
    xks_proxy_vpc_endpoint_service_name: Option<String>,
    xks_proxy_vpc_endpoint_service_owner: Option<String>,
    xks_proxy_authentication_credential: Option<serde_json::Value>,
    xks_proxy_connectivity: Option<String>,
}

/// What `--cli-input-json` held, before anything from the command line is merged in.
pub struct CliInputRequest {
    pub name: Option<String>,
    pub cluster_id: String,
    pub trust_anchor: TrustAnchor,
    pub password: Option<SecretString>,
}

pub fn parse_cli_input(arg: &str) -> Result<CliInputRequest, InputError> {
    if arg.trim_start().starts_with('{') {
        return Err(InputError::new(
            "--cli-input-json takes a file (request.json or file://request.json), not inline JSON: the document may hold the key store password",
        ));
    }
    let path = arg.strip_prefix("file://").unwrap_or(arg).to_string();
    let text = read_text_file("--cli-input-json", arg)?;
    let doc: CliInput = serde_json::from_str(&text).map_err(|e| {
        // serde_json's messages name the field and position, never a value.
        InputError(format!("--cli-input-json {path}: {e}"))
    })?;
    let kind = doc
        .custom_key_store_type
        .as_deref()
        .unwrap_or("AWS_CLOUDHSM");
    match kind {
        "AWS_CLOUDHSM" => {}
        "EXTERNAL_KEY_STORE" => {
            return Err(InputError(format!(
                "--cli-input-json {path}: EXTERNAL_KEY_STORE requests are not supported by this version of cks-doctor yet (CloudHSM key stores only)"
            )))
        }
        other => {
            return Err(InputError(format!(
                "--cli-input-json {path}: CustomKeyStoreType {:?} is neither AWS_CLOUDHSM nor EXTERNAL_KEY_STORE",
                truncate(other, 40)
            )))
        }
    }
    let xks_fields = [
        ("XksProxyUriEndpoint", doc.xks_proxy_uri_endpoint.is_some()),
        ("XksProxyUriPath", doc.xks_proxy_uri_path.is_some()),
        (
            "XksProxyVpcEndpointServiceName",
            doc.xks_proxy_vpc_endpoint_service_name.is_some(),
        ),
        (
            "XksProxyVpcEndpointServiceOwner",
            doc.xks_proxy_vpc_endpoint_service_owner.is_some(),
        ),
        (
            "XksProxyAuthenticationCredential",
            doc.xks_proxy_authentication_credential.is_some(),
        ),
        ("XksProxyConnectivity", doc.xks_proxy_connectivity.is_some()),
    ];
    if let Some((field, _)) = xks_fields.iter().find(|(_, set)| *set) {
        return Err(InputError(format!(
            "--cli-input-json {path}: {field} is an external key store parameter, but CustomKeyStoreType is AWS_CLOUDHSM"
        )));
    }
    let cluster_id = doc.cloud_hsm_cluster_id.ok_or_else(|| {
        InputError(format!(
            "--cli-input-json {path}: CloudHsmClusterId is required for an AWS_CLOUDHSM key store"
        ))
    })?;
    validate_cluster_id(&cluster_id)?;
    let anchor_text = doc.trust_anchor_certificate.ok_or_else(|| {
        InputError(format!(
            "--cli-input-json {path}: TrustAnchorCertificate is required for an AWS_CLOUDHSM key store"
        ))
    })?;
    let trust_anchor =
        TrustAnchor::from_text(&format!("TrustAnchorCertificate in {path}"), anchor_text)?;
    Ok(CliInputRequest {
        name: doc.custom_key_store_name,
        cluster_id,
        trust_anchor,
        password: doc.key_store_password.map(SecretString::from),
    })
}
