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

/// `--connect-to HOST:PORT:ADDR:PORT2` (curl's semantics): connections for HOST:PORT go to
/// ADDR:PORT2, while SNI, the certificate name and the signature keep HOST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectTo {
    /// Empty: any host.
    pub host: String,
    pub port: u16,
    pub addr: std::net::SocketAddr,
}

impl std::str::FromStr for ConnectTo {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!("--connect-to {s:?}: expected HOST:443:ADDR:PORT, ADDR an IP address (IPv6 in brackets)")
        };
        let (host, rest) = s.split_once(':').ok_or_else(bad)?;
        let (port, target) = rest.split_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        let (addr, to_port) = target.rsplit_once(':').ok_or_else(bad)?;
        let addr = addr.trim_start_matches('[').trim_end_matches(']');
        let ip: std::net::IpAddr = addr.parse().map_err(|_| bad())?;
        let to_port: u16 = to_port.parse().map_err(|_| bad())?;
        Ok(ConnectTo {
            host: host.to_ascii_lowercase(),
            port,
            addr: std::net::SocketAddr::new(ip, to_port),
        })
    }
}

/// An external key store request (CustomKeyStoreType EXTERNAL_KEY_STORE). Parameters are kept
/// as given: their rules are judged by checks.
pub struct XksRequest {
    pub name: Option<String>,
    pub uri_endpoint: String,
    pub uri_path: String,
    pub connectivity: String,
    pub vpc_endpoint_service_name: Option<String>,
    pub vpc_endpoint_service_owner: Option<String>,
    pub access_key_id: Option<String>,
    /// XksProxyAuthenticationCredential.RawSecretAccessKey: used only as the SigV4 signing key.
    pub secret: Option<SecretString>,
    pub connect_to: Option<ConnectTo>,
    /// `--trust-ca`: private CAs for lab setups (KMS itself will not trust them).
    pub trust_ca: Vec<Cert>,
    /// `--client-cert`/`--client-key`: a client certificate to present to a proxy that requires
    /// mutual TLS (KMS presents its own, CN cks.kms.<Region>.amazonaws.com).
    pub client_identity: Option<ClientIdentity>,
    /// The key store's Region, for the SigV4 scope and the account checks.
    pub region: String,
    /// Bound on each network step of the probe.
    pub timeout: std::time::Duration,
}

impl std::fmt::Debug for XksRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XksRequest")
            .field("name", &self.name)
            .field("uri_endpoint", &self.uri_endpoint)
            .field("uri_path", &self.uri_path)
            .field("connectivity", &self.connectivity)
            .field("access_key_id", &self.access_key_id)
            .field("secret", &self.secret.as_ref().map(|_| "[REDACTED]"))
            .field("connect_to", &self.connect_to)
            .field("client_identity", &self.client_identity)
            .field("region", &self.region)
            .finish()
    }
}

/// A client certificate chain and its private key, for a proxy that requires mutual TLS. The
/// key is held only to sign the handshake and never shown.
#[derive(Clone)]
pub struct ClientIdentity {
    pub key: std::sync::Arc<rustls::sign::CertifiedKey>,
    /// The leaf's subject, for the report.
    pub subject: String,
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("subject", &self.subject)
            .field("key", &"[REDACTED]")
            .finish()
    }
}

impl ClientIdentity {
    /// Reads a PEM certificate chain (leaf first) and its PEM private key (PKCS#8, PKCS#1 or
    /// SEC1); a one-line error names the file and what is wrong.
    pub fn from_pem(
        cert_origin: &str,
        cert_pem: &str,
        key_origin: &str,
        key_pem: &str,
    ) -> Result<ClientIdentity, String> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(cert_pem.as_bytes())
                .collect::<Result<_, _>>()
                .map_err(|e| format!("{cert_origin}: not a PEM certificate ({e})"))?;
        let Some(leaf) = chain.first() else {
            return Err(format!("{cert_origin}: no PEM CERTIFICATE block"));
        };
        let subject = x509_parser::parse_x509_certificate(leaf)
            .map(|(_, c)| c.subject().to_string())
            .map_err(|e| format!("{cert_origin}: the first certificate is not X.509 ({e})"))?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|_| format!("{key_origin}: no PEM private key (PKCS#8, RSA or EC)"))?;
        let signing = rustls::crypto::ring::default_provider()
            .key_provider
            .load_private_key(key)
            .map_err(|e| format!("{key_origin}: the private key cannot be used ({e})"))?;
        let key = rustls::sign::CertifiedKey::new(chain, signing);
        match key.keys_match() {
            Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
            Err(rustls::Error::InconsistentKeys(_)) => {
                return Err(format!(
                "{key_origin}: the private key does not belong to the certificate in {cert_origin}"
            ))
            }
            Err(e) => {
                return Err(format!(
                    "{cert_origin}: the certificate cannot be used ({e})"
                ))
            }
        }
        Ok(ClientIdentity {
            key: std::sync::Arc::new(key),
            subject,
        })
    }
}

/// The XksProxyConnectivity value with which KMS reaches the proxy through a VPC endpoint
/// service (the other is PUBLIC_ENDPOINT).
pub const VPC_ENDPOINT_SERVICE: &str = "VPC_ENDPOINT_SERVICE";

// ----- the API's rules for the request's parameters (ValidationException) -----

/// Why an XksProxyUriEndpoint breaks KMS's rules, if it does.
pub fn endpoint_problem(e: &str) -> Option<String> {
    let n = e.chars().count();
    if !(10..=128).contains(&n) {
        return Some(format!("is {n} characters; KMS accepts 10 to 128"));
    }
    let Some(rest) = e.strip_prefix("https://") else {
        return Some("must start with https:// (KMS only speaks HTTPS to the proxy)".into());
    };
    if let Some((host, port)) = rest.split_once(':') {
        if !port.is_empty() && port.chars().all(|c| c.is_ascii_digit() || c == '/') {
            return Some(format!(
                "has a port ({host}:{port}): KMS always connects to port 443 and accepts no port in the endpoint"
            ));
        }
    }
    if let Some((host, path)) = rest.split_once('/') {
        return Some(format!(
            "has a path (/{path} after {host}): the path belongs in XksProxyUriPath"
        ));
    }
    if !rest
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    {
        return Some("does not match ^https://[a-zA-Z0-9.-]+$".into());
    }
    None
}

/// Why an XksProxyUriEndpoint that the API accepts is still not what the XKS specification
/// asks for, a fully qualified domain name: an IP address or a single label. KMS does not
/// refuse it with ValidationException; it fails later, if at all, at the certificate's name
/// or at reaching the host, which the TLS and health checks see.
pub fn endpoint_fqdn_note(e: &str) -> Option<String> {
    let host = e.strip_prefix("https://")?;
    if host.parse::<std::net::IpAddr>().is_ok()
        || host
            .split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
    {
        return Some(format!(
            "is an IP address ({host}), not the fully qualified domain name the XKS specification asks for"
        ));
    }
    if !host.trim_end_matches('.').contains('.') {
        return Some(format!(
            "names a single label ({host}), not the fully qualified domain name the XKS specification asks for"
        ));
    }
    None
}

/// Why an XksProxyUriPath breaks KMS's rules, if it does.
pub fn path_problem(p: &str) -> Option<String> {
    let n = p.chars().count();
    if !(10..=128).contains(&n) {
        return Some(format!("is {n} characters; KMS accepts 10 to 128"));
    }
    let Some(prefix) = p.find("/kms/xks/v").map(|i| &p[..i]) else {
        return Some("must end in /kms/xks/v1 (or another version, /kms/xks/vN)".into());
    };
    let version = &p[prefix.len() + "/kms/xks/v".len()..];
    if version.is_empty() || version.len() > 2 || !version.chars().all(|c| c.is_ascii_digit()) {
        return Some("must end in /kms/xks/v followed by one or two digits".into());
    }
    if !prefix.is_empty()
        && !(prefix.starts_with('/')
            && prefix.len() > 1
            && prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-')))
    {
        return Some(
            "its prefix before /kms/xks/vN may only hold letters, digits, /, _ and -".into(),
        );
    }
    None
}

/// Why an XksProxyVpcEndpointServiceName breaks the API's rules, if it does:
/// `^(com|eu)\.amazonaws\.vpce\.([a-z]+-){2,3}\d+\.vpce-svc-[0-9a-z]+$`, 20–64 characters.
pub fn name_problem(n: &str) -> Option<String> {
    let len = n.chars().count();
    if !(20..=64).contains(&len) {
        return Some(format!("is {len} characters; KMS accepts 20 to 64"));
    }
    let rest = n
        .strip_prefix("com.amazonaws.vpce.")
        .or_else(|| n.strip_prefix("eu.amazonaws.vpce."));
    let Some(rest) = rest else {
        return Some("must start with com.amazonaws.vpce. (or eu.amazonaws.vpce.)".into());
    };
    let Some((region, svc)) = rest.split_once('.') else {
        return Some("must be com.amazonaws.vpce.<region>.vpce-svc-<id>".into());
    };
    let parts: Vec<&str> = region.split('-').collect();
    let region_ok = (3..=4).contains(&parts.len())
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts[parts.len() - 1].chars().all(|c| c.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty();
    if !region_ok {
        return Some(format!("{region:?} is not a Region name"));
    }
    let id_ok = svc.strip_prefix("vpce-svc-").is_some_and(|id| {
        !id.is_empty()
            && id
                .chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
    });
    if !id_ok {
        return Some("must end in .vpce-svc- and lowercase letters and digits".into());
    }
    None
}

impl XksRequest {
    /// KMS reaches the proxy through a VPC endpoint service.
    pub fn is_vpc(&self) -> bool {
        self.connectivity == VPC_ENDPOINT_SERVICE
    }

    /// The endpoint's host when the endpoint has KMS's form (`https://` + a DNS name), else None.
    pub fn host(&self) -> Option<String> {
        let host = self.uri_endpoint.strip_prefix("https://")?;
        // What the API's pattern accepts (an IP address or a single label included).
        let ok = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
        ok.then(|| host.to_ascii_lowercase())
    }

    /// Where the probe connects, when --connect-to applies to this endpoint.
    pub fn connect_addr(&self) -> Option<std::net::SocketAddr> {
        let c = self.connect_to.as_ref()?;
        let host = self.host()?;
        (c.port == 443 && (c.host.is_empty() || c.host == host)).then_some(c.addr)
    }

    pub fn probe_config(
        &self,
        kms_operation: &'static str,
    ) -> Option<crate::xks::probe::ProbeConfig> {
        Some(crate::xks::probe::ProbeConfig {
            host: self.host()?,
            path: self.uri_path.clone(),
            connect_to: self.connect_addr(),
            region: self.region.clone(),
            access_key_id: self.access_key_id.clone(),
            secret: self.secret.clone(),
            timeout: self.timeout,
            kms_operation,
            client_identity: self.client_identity.as_ref().map(|c| c.key.clone()),
        })
    }
}

#[derive(Debug)]
pub enum Request {
    /// Pre-flight of a CloudHSM key store.
    CloudHsm(CloudHsmRequest),
    /// Pre-flight of an external key store.
    Xks(XksRequest),
    /// Only the facts about a cluster and the account (`cks-doctor snapshot cloudhsm`).
    ClusterFacts { cluster_id: String },
    /// A key pre-flight whose store the account does not have: no store to check.
    NoStore,
}

/// A CreateKey pre-flight: the store the key would be created in, and the external key.
#[derive(Debug, Clone)]
pub struct KeyRequest {
    pub store: KeyStoreRef,
    /// XksKeyId: the external key's id in the proxy (external key stores).
    pub xks_key_id: Option<String>,
}

/// Which store a key pre-flight is about.
#[derive(Debug, Clone)]
pub enum KeyStoreRef {
    /// The store the same pre-flight is about to create (`preflight xks --xks-key-id`).
    New,
    /// An existing store, as DescribeCustomKeyStores returned it.
    Existing(crate::facts::model::CustomKeyStore),
    /// The id or name the user gave matches no store of the account and Region.
    NotFound(String),
}

impl KeyRequest {
    pub fn existing(&self) -> Option<&crate::facts::model::CustomKeyStore> {
        match &self.store {
            KeyStoreRef::Existing(s) => Some(s),
            _ => None,
        }
    }
}

/// XksKeyId: `^[a-zA-Z0-9-_.]+$`, 1 to 128 characters (CreateKey's pattern; KMS answers
/// anything else with a ValidationException before it contacts the proxy).
pub fn validate_xks_key_id(id: &str) -> Result<(), InputError> {
    let ok_chars = id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if id.is_empty() || id.len() > 128 || !ok_chars {
        return Err(InputError(format!(
            "--xks-key-id {:?} is not a valid XksKeyId: CreateKey takes 1 to 128 characters of letters, digits, '-', '_' and '.' (else ValidationException)",
            truncate(id, 40)
        )));
    }
    Ok(())
}

impl Request {
    /// The kind of store the request is about.
    pub fn kind(&self) -> crate::kind::StoreKind {
        match self {
            Request::Xks(_) => crate::kind::StoreKind::Xks,
            Request::NoStore => crate::kind::StoreKind::Any,
            _ => crate::kind::StoreKind::Cloudhsm,
        }
    }
    pub fn cluster_id(&self) -> Option<&str> {
        match self {
            Request::CloudHsm(r) => Some(&r.cluster_id),
            Request::ClusterFacts { cluster_id } => Some(cluster_id),
            Request::Xks(_) | Request::NoStore => None,
        }
    }
    pub fn name(&self) -> Option<&str> {
        match self {
            Request::CloudHsm(r) => r.name.as_deref(),
            Request::ClusterFacts { .. } | Request::NoStore => None,
            Request::Xks(r) => r.name.as_deref(),
        }
    }
    pub fn cloudhsm(&self) -> Option<&CloudHsmRequest> {
        match self {
            Request::CloudHsm(r) => Some(r),
            _ => None,
        }
    }
    pub fn xks(&self) -> Option<&XksRequest> {
        match self {
            Request::Xks(r) => Some(r),
            _ => None,
        }
    }
    /// Every secret in the request, for redaction tests and defence in depth.
    pub fn secrets(&self) -> Vec<&str> {
        match self {
            Request::CloudHsm(r) => r.password.iter().map(|p| p.expose_secret()).collect(),
            Request::ClusterFacts { .. } | Request::NoStore => Vec::new(),
            Request::Xks(r) => r.secret.iter().map(|p| p.expose_secret()).collect(),
        }
    }
}

/// `cluster-[2-7a-zA-Z]{11,16}` (CreateCustomKeyStore's CloudHsmClusterId, 19–24 characters).
pub fn validate_cluster_id(id: &str) -> Result<(), InputError> {
    let shown = truncate(id, 40);
    let problem = match id.strip_prefix("cluster-") {
        None => Some("it does not start with cluster-".to_string()),
        Some(b) => {
            let n = b.chars().count();
            let mut parts = Vec::new();
            if !(11..=16).contains(&n) {
                parts.push(format!(
                    "it has {n} characters after cluster-, not 11 to 16"
                ));
            }
            if let Some(bad) = outside(b, |c| c.is_ascii_alphabetic() || ('2'..='7').contains(&c)) {
                parts.push(format!("it has {bad} (only letters and 2-7 are allowed)"));
            }
            (!parts.is_empty()).then(|| parts.join(" and "))
        }
    };
    match problem {
        None => Ok(()),
        Some(p) => Err(InputError(format!(
            "cluster id {shown:?} does not match cluster-[2-7a-zA-Z]{{11,16}}: {p} (KMS would reject it with ValidationException){}",
            documentation_example(id)
        ))),
    }
}

/// The API's pattern for XksProxyAuthenticationCredential.AccessKeyId, `[A-Z2-7]{20,30}`
/// (base32): what is wrong with `id`, naming the characters it does not allow.
pub fn access_key_id_problem(id: &str) -> Option<String> {
    let n = id.chars().count();
    let mut parts = Vec::new();
    if !(20..=30).contains(&n) {
        parts.push(format!("it is {n} characters"));
    }
    if let Some(bad) = outside(id, |c| c.is_ascii_uppercase() || ('2'..='7').contains(&c)) {
        let lower = if id.chars().any(|c| c.is_ascii_lowercase()) {
            "; lower-case letters are not"
        } else {
            ""
        };
        parts.push(format!(
            "it has {bad} (only A-Z and 2-7 are allowed{lower})"
        ));
    }
    if parts.is_empty() {
        return None;
    }
    Some(format!(
        "AccessKeyId {:?} must be 20–30 characters of A-Z and 2-7 (base32): {}{}",
        truncate(id, 40),
        parts.join(", and "),
        documentation_example(id)
    ))
}

/// The distinct characters of `s` that `ok` rejects, quoted, in order of appearance (at most
/// eight): `'1' and '0'`. `None` when there are none.
fn outside(s: &str, ok: impl Fn(char) -> bool) -> Option<String> {
    let mut bad: Vec<char> = Vec::new();
    for c in s.chars().filter(|c| !ok(*c)) {
        if !bad.contains(&c) {
            bad.push(c);
        }
    }
    let more = bad.len() > 8;
    let shown: Vec<String> = bad.iter().take(8).map(|c| format!("{:?}", c)).collect();
    match shown.len() {
        0 => None,
        1 => Some(shown[0].clone()),
        _ if more => Some(format!("{} and others", shown.join(", "))),
        k => Some(format!(
            "{} and {}",
            shown[..k - 1].join(", "),
            shown[k - 1]
        )),
    }
}

/// Placeholder values of AWS's documentation that break the API's own patterns: someone who
/// pasted one is told so.
fn documentation_example(value: &str) -> &'static str {
    const EXAMPLES: &[&str] = &["ABCDE12345670EXAMPLE", "cluster-1a23b4cdefg"];
    if EXAMPLES.contains(&value) {
        "; this is AWS's documentation example, which is not a valid value: use your own"
    } else {
        ""
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

/// `XksProxyAuthenticationCredential` as the API and the console's proxy configuration file
/// write it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct Credential {
    access_key_id: Option<String>,
    raw_secret_access_key: Option<String>,
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
    xks_proxy_authentication_credential: Option<Credential>,
    xks_proxy_connectivity: Option<String>,
}

/// The external key store parameters of a request document or proxy configuration file,
/// before the command line is merged in.
#[derive(Default)]
pub struct XksParams {
    pub name: Option<String>,
    pub uri_endpoint: Option<String>,
    pub uri_path: Option<String>,
    pub connectivity: Option<String>,
    pub vpc_endpoint_service_name: Option<String>,
    pub vpc_endpoint_service_owner: Option<String>,
    pub access_key_id: Option<String>,
    pub secret: Option<SecretString>,
}

/// What `--cli-input-json` held, before anything from the command line is merged in.
pub enum CliInputRequest {
    CloudHsm {
        name: Option<String>,
        cluster_id: String,
        trust_anchor: TrustAnchor,
        password: Option<SecretString>,
    },
    Xks(XksParams),
}

fn read_json_doc(what: &str, arg: &str) -> Result<(String, String), InputError> {
    if arg.trim_start().starts_with('{') {
        return Err(InputError(format!(
            "{what} takes a file (request.json or file://request.json), not inline JSON: the document may hold a secret"
        )));
    }
    let path = arg.strip_prefix("file://").unwrap_or(arg).to_string();
    let text = read_text_file(what, arg)?;
    Ok((path, text))
}

pub fn parse_cli_input(arg: &str) -> Result<CliInputRequest, InputError> {
    let (path, text) = read_json_doc("--cli-input-json", arg)?;
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
            for (field, set) in [
                ("CloudHsmClusterId", doc.cloud_hsm_cluster_id.is_some()),
                ("TrustAnchorCertificate", doc.trust_anchor_certificate.is_some()),
                ("KeyStorePassword", doc.key_store_password.is_some()),
            ] {
                if set {
                    return Err(InputError(format!(
                        "--cli-input-json {path}: {field} is a CloudHSM key store parameter, but CustomKeyStoreType is EXTERNAL_KEY_STORE"
                    )));
                }
            }
            let (access_key_id, secret) = match doc.xks_proxy_authentication_credential {
                Some(c) => (c.access_key_id, c.raw_secret_access_key.map(SecretString::from)),
                None => (None, None),
            };
            return Ok(CliInputRequest::Xks(XksParams {
                name: doc.custom_key_store_name,
                uri_endpoint: doc.xks_proxy_uri_endpoint,
                uri_path: doc.xks_proxy_uri_path,
                connectivity: doc.xks_proxy_connectivity,
                vpc_endpoint_service_name: doc.xks_proxy_vpc_endpoint_service_name,
                vpc_endpoint_service_owner: doc.xks_proxy_vpc_endpoint_service_owner,
                access_key_id,
                secret,
            }));
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
    Ok(CliInputRequest::CloudHsm {
        name: doc.custom_key_store_name,
        cluster_id,
        trust_anchor,
        password: doc.key_store_password.map(SecretString::from),
    })
}

/// The proxy configuration file the KMS console offers to upload: the proxy's URI endpoint and
/// path, connectivity and authentication credential.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ProxyConfigFile {
    xks_proxy_uri_endpoint: Option<String>,
    xks_proxy_uri_path: Option<String>,
    xks_proxy_connectivity: Option<String>,
    xks_proxy_vpc_endpoint_service_name: Option<String>,
    xks_proxy_authentication_credential: Option<Credential>,
}

pub fn parse_proxy_config(arg: &str) -> Result<XksParams, InputError> {
    let (path, text) = read_json_doc("--proxy-config", arg)?;
    let doc: ProxyConfigFile = serde_json::from_str(&text)
        .map_err(|e| InputError(format!("--proxy-config {path}: {e}")))?;
    let (access_key_id, secret) = match doc.xks_proxy_authentication_credential {
        Some(c) => (
            c.access_key_id,
            c.raw_secret_access_key.map(SecretString::from),
        ),
        None => (None, None),
    };
    if doc.xks_proxy_uri_endpoint.is_none() && doc.xks_proxy_uri_path.is_none() {
        return Err(InputError(format!(
            "--proxy-config {path}: neither XksProxyUriEndpoint nor XksProxyUriPath is set: not a proxy configuration file"
        )));
    }
    Ok(XksParams {
        name: None,
        uri_endpoint: doc.xks_proxy_uri_endpoint,
        uri_path: doc.xks_proxy_uri_path,
        connectivity: doc.xks_proxy_connectivity,
        vpc_endpoint_service_name: doc.xks_proxy_vpc_endpoint_service_name,
        vpc_endpoint_service_owner: None,
        access_key_id,
        secret,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_key_id_names_the_characters_outside_the_pattern() {
        // AWS's own documentation example: the right length, but 0 and 1 are not base32.
        let m = access_key_id_problem("ABCDE12345670EXAMPLE").unwrap();
        assert!(m.contains("'1' and '0'"), "{m}");
        assert!(m.contains("A-Z and 2-7"), "{m}");
        assert!(m.contains("documentation example"), "{m}");
        assert!(!m.contains("(it is 20)"), "{m}");
        // Lower case and a length problem both named.
        let m = access_key_id_problem("abcdefghijklmnop").unwrap();
        assert!(m.contains("16 characters"), "{m}");
        assert!(m.contains("lower-case"), "{m}");
        let m = access_key_id_problem("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567").unwrap();
        assert!(m.contains("32 characters"), "{m}");
        assert_eq!(access_key_id_problem("ABCDEFGHIJKLMNOPQRST"), None);
        assert_eq!(access_key_id_problem("AKIA2345672345672345"), None);
    }

    #[test]
    fn cluster_id_names_the_characters_outside_the_pattern() {
        // The CloudHSM guide's example id: 0, 1, 8 and 9 are not in [2-7a-zA-Z].
        let e = validate_cluster_id("cluster-1a23b4cdefg").unwrap_err().0;
        assert!(e.contains("'1'"), "{e}");
        assert!(e.contains("documentation example"), "{e}");
        assert!(e.contains("ValidationException"), "{e}");
        let e = validate_cluster_id("cluster-123").unwrap_err().0;
        assert!(e.contains("3 characters after cluster-"), "{e}");
        let e = validate_cluster_id("hsm-jxhlf7644ne").unwrap_err().0;
        assert!(e.contains("cluster-"), "{e}");
        assert!(validate_cluster_id("cluster-jxhlf7644ne").is_ok());
    }
}

#[cfg(test)]
mod client_identity_tests {
    use super::ClientIdentity;

    #[test]
    fn a_certificate_and_its_key_load_and_a_foreign_key_is_refused() {
        let a = rcgen::generate_simple_self_signed(vec!["client.example".to_string()]).unwrap();
        let b = rcgen::generate_simple_self_signed(vec!["other.example".to_string()]).unwrap();
        let id =
            ClientIdentity::from_pem("cert", &a.cert.pem(), "key", &a.signing_key.serialize_pem())
                .unwrap_or_else(|e| panic!("{e}"));
        assert!(id.subject.contains("rcgen"), "{}", id.subject);
        assert!(!format!("{id:?}").contains("PRIVATE"));
        let e =
            ClientIdentity::from_pem("cert", &a.cert.pem(), "key", &b.signing_key.serialize_pem())
                .unwrap_err();
        assert!(e.contains("does not belong"), "{e}");
        let e = ClientIdentity::from_pem("cert", "not pem", "key", "").unwrap_err();
        assert!(e.starts_with("cert: "), "{e}");
    }
}
