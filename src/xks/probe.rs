//! The XKS proxy probe: one fresh connection made the way KMS makes it (DNS, TCP to 443, TLS
//! 1.2+ offering only the four cipher suites the XKS specification lists, a SigV4-signed
//! `GetHealthStatus`), timed phase by phase; then, on the same connection where the proxy keeps
//! it open, the requests a proxy must refuse. Everything the checks need is recorded here once;
//! no check opens a connection of its own.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{ring as ring_provider, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// KMS gives up this long after sending a request, TCP and TLS included.
pub const KMS_BUDGET_MS: f64 = 250.0;
/// The XKS specification's recommended round trip.
pub const RECOMMENDED_RTT_MS: f64 = 35.0;
/// Largest response body read from the proxy.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// The four suites the XKS specification lists; KMS needs the proxy to accept one of them.
pub const KMS_SUITES: [&str; 4] = [
    "TLS13_AES_256_GCM_SHA384",
    "TLS13_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
];

/// What to probe and how.
#[derive(Clone)]
pub struct ProbeConfig {
    /// The endpoint's DNS name (from XksProxyUriEndpoint, without `https://`).
    pub host: String,
    /// XksProxyUriPath, e.g. `/example-prefix/kms/xks/v1`.
    pub path: String,
    /// `--connect-to`: connect here instead of resolving `host:443`.
    pub connect_to: Option<SocketAddr>,
    /// The key store's Region: it goes into the SigV4 scope as KMS puts it there.
    pub region: String,
    pub access_key_id: Option<String>,
    /// Used only as the SigV4 signing key.
    pub secret: Option<SecretString>,
    /// Bound on each network step.
    pub timeout: Duration,
    /// `kmsOperation` in the request metadata.
    pub kms_operation: &'static str,
    /// Presented when the proxy asks for a client certificate (`--client-cert`).
    pub client_identity: Option<Arc<rustls::sign::CertifiedKey>>,
}

impl std::fmt::Debug for ProbeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeConfig")
            .field("host", &self.host)
            .field("path", &self.path)
            .field("connect_to", &self.connect_to)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret", &self.secret.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

/// Milliseconds of each phase of the fresh connection.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Timings {
    /// Name resolution (absent with --connect-to).
    pub dns_ms: Option<f64>,
    pub connect_ms: Option<f64>,
    pub tls_ms: Option<f64>,
    /// From the request written to the response head.
    pub first_byte_ms: Option<f64>,
    /// From the request written to the last body byte: the time KMS's "does not receive a
    /// response within 250 ms" is about, on a connection already open.
    pub request_ms: Option<f64>,
    /// Connect + TLS + request until the last body byte: what KMS's 250 ms budget covers.
    pub total_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TlsSession {
    /// e.g. "TLSv1_3"
    pub version: String,
    /// e.g. "TLS13_AES_256_GCM_SHA384"
    pub cipher_suite: String,
    /// As presented, leaf first.
    #[serde(skip)]
    pub chain_der: Vec<Vec<u8>>,
}

/// Why the KMS-like handshake failed, and what a permissive handshake then saw.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TlsFailure {
    pub error: String,
    /// The same server with every suite rustls knows: `Ok` shows what it would negotiate.
    pub permissive: Result<TlsSession, String>,
}

/// One HTTP exchange with the proxy.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Exchange {
    pub status: u16,
    pub content_type: Option<String>,
    /// The proxy's `Date` header.
    pub date: Option<String>,
    /// Local time when the response head arrived (Unix seconds), to compare with `date`.
    pub received_unix: i64,
    #[serde(skip)]
    pub body: Vec<u8>,
    pub body_truncated: bool,
}

impl Exchange {
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A request the proxy must refuse, and what it answered.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Refusal {
    pub kind: RefusalKind,
    pub result: Result<Exchange, String>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RefusalKind {
    /// POST health without any signature: must be 401.
    Unsigned,
    /// POST health signed with a wrong secret: must be 401.
    WrongSecret,
    /// A signed POST to a path the proxy does not serve: must be 404.
    UnknownPath,
    /// A signed GET on the health URI: must be 405.
    Get,
    /// A signed POST with an empty body: must be 400.
    EmptyBody,
}

/// Everything the probe observed. Each step is `None` when an earlier step failed.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProbeReport {
    pub host: String,
    pub url: String,
    pub connect_to: Option<SocketAddr>,
    pub resolved: Result<Vec<SocketAddr>, String>,
    pub tcp: Option<Result<SocketAddr, String>>,
    pub tls: Option<Result<TlsSession, TlsFailure>>,
    /// The signed GetHealthStatus; `None` without a secret or when TLS failed.
    pub health: Option<Result<Exchange, String>>,
    pub refusals: Vec<Refusal>,
    pub timings: Timings,
    /// TLS handshakes made in all.
    pub handshakes: usize,
    pub signed: bool,
    /// The proxy asked for a client certificate (mutual TLS) in a handshake: the certificate
    /// authorities it named (RFC 5280 distinguished names; empty when it named none).
    pub client_cert_requested: Option<Vec<String>>,
    /// A client certificate (`--client-cert`) was presented when the proxy asked.
    pub client_cert_presented: bool,
}

impl ProbeReport {
    /// The proxy demands a client certificate: it asked for one, and without one the handshake
    /// (TLS 1.2) or the first request (TLS 1.3, refused after the handshake) failed.
    pub fn requires_client_cert(&self) -> bool {
        if self.client_cert_requested.is_none() {
            return false;
        }
        let handshake_failed = matches!(self.tls, Some(Err(_)));
        let first_request_failed = match &self.health {
            Some(r) => r.is_err(),
            None => self.refusals.first().is_some_and(|r| r.result.is_err()),
        };
        handshake_failed || first_request_failed
    }
}

/// A distinguished name from a CertificateRequest as text: DER with or without its outer
/// SEQUENCE (rustls hands over what the peer sent).
fn dn_text(der: &[u8]) -> String {
    use x509_parser::prelude::FromDer;
    if let Ok((_, n)) = x509_parser::x509::X509Name::from_der(der) {
        return n.to_string();
    }
    let mut wrapped = vec![0x30u8];
    let len = der.len();
    if len < 0x80 {
        wrapped.push(len as u8);
    } else if len < 0x100 {
        wrapped.extend([0x81, len as u8]);
    } else {
        wrapped.extend([0x82, (len >> 8) as u8, len as u8]);
    }
    wrapped.extend_from_slice(der);
    match x509_parser::x509::X509Name::from_der(&wrapped) {
        Ok((_, n)) => n.to_string(),
        Err(_) => "(a name that is not DER)".into(),
    }
}

/// Records whether the server asked for a client certificate, and whom it trusts to issue one;
/// presents none (cks-doctor has no KMS client certificate).
#[derive(Debug, Default)]
pub(crate) struct ClientCertRequest {
    /// The CA names of the first CertificateRequest seen.
    pub(crate) asked: std::sync::Mutex<Option<Vec<String>>>,
    /// What to present (`--client-cert`), or nothing.
    pub(crate) present: Option<Arc<rustls::sign::CertifiedKey>>,
}

impl rustls::client::ResolvesClientCert for ClientCertRequest {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        let names = root_hint_subjects.iter().map(|der| dn_text(der)).collect();
        if let Ok(mut asked) = self.asked.lock() {
            asked.get_or_insert(names);
        }
        self.present.clone()
    }
    fn has_certs(&self) -> bool {
        true
    }
}

pub(crate) fn ms(since: Instant) -> f64 {
    (since.elapsed().as_secs_f64() * 1000.0 * 10.0).round() / 10.0
}

/// Accepts any certificate, so that the handshake completes and the chain can be judged by
/// the checks against KMS's own list. Signatures on the handshake are still verified.
#[derive(Debug)]
struct RecordOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for RecordOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

pub(crate) fn connector(
    kms_suites_only: bool,
    asked: &Arc<ClientCertRequest>,
) -> Result<TlsConnector, String> {
    let mut provider = ring_provider::default_provider();
    if kms_suites_only {
        use ring_provider::cipher_suite as cs;
        provider.cipher_suites = vec![
            cs::TLS13_AES_256_GCM_SHA384,
            cs::TLS13_CHACHA20_POLY1305_SHA256,
            cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        ];
    }
    let provider = Arc::new(provider);
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(RecordOnly(provider)))
        .with_client_cert_resolver(asked.clone());
    Ok(TlsConnector::from(Arc::new(config)))
}

pub(crate) fn session(tls: &TlsStream<TcpStream>) -> TlsSession {
    let (_, conn) = tls.get_ref();
    TlsSession {
        version: conn
            .protocol_version()
            .map(|v| format!("{v:?}"))
            .unwrap_or_default(),
        cipher_suite: conn
            .negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()))
            .unwrap_or_default(),
        chain_der: conn
            .peer_certificates()
            .map(|c| c.iter().map(|d| d.as_ref().to_vec()).collect())
            .unwrap_or_default(),
    }
}

pub(crate) fn tls_error(e: &std::io::Error) -> String {
    match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::AlertReceived(a)) => {
            format!("the proxy ended the handshake with alert {a:?}")
        }
        Some(rustls::Error::PeerIncompatible(p)) => format!("the proxy is incompatible: {p:?}"),
        Some(rustls::Error::InvalidMessage(m)) => {
            format!("the proxy sent something that is not TLS 1.2/1.3 ({m:?})")
        }
        Some(other) => other.to_string(),
        None => e.to_string(),
    }
}

pub(crate) async fn tcp(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, String> {
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => {
            let _ = s.set_nodelay(true);
            Ok(s)
        }
        Ok(Err(e)) => Err(format!("TCP connect to {addr} failed: {e}")),
        Err(_) => Err(format!(
            "TCP connect to {addr}: no answer within {}s",
            timeout.as_secs_f64()
        )),
    }
}

pub(crate) async fn handshake(
    addr: SocketAddr,
    host: &str,
    kms_suites_only: bool,
    timeout: Duration,
    asked: &Arc<ClientCertRequest>,
) -> Result<TlsStream<TcpStream>, String> {
    let stream = tcp(addr, timeout).await?;
    let name = ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
    let connector = connector(kms_suites_only, asked)?;
    match tokio::time::timeout(timeout, connector.connect(name, stream)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(tls_error(&e)),
        Err(_) => Err(format!(
            "TLS handshake: no answer within {}s",
            timeout.as_secs_f64()
        )),
    }
}

pub(crate) type Sender = http1::SendRequest<Full<Bytes>>;

pub(crate) async fn http(tls: TlsStream<TcpStream>) -> Result<Sender, String> {
    let (sender, conn) = http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| format!("HTTP/1.1 setup failed: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// The JSON body KMS sends to `/health`.
pub fn health_body(kms_operation: &str) -> Vec<u8> {
    serde_json::json!({
        "requestMetadata": {
            "kmsRequestId": uuid::Uuid::new_v4().to_string(),
            "kmsOperation": kms_operation,
        }
    })
    .to_string()
    .into_bytes()
}

/// Builds a request as KMS sends it, signed with SigV4 (service `kms-xks-proxy`, signed headers
/// `host;x-amz-date`, payload hash of the body) when a key is given.
pub fn build_request(
    method: &str,
    host: &str,
    path: &str,
    body: Vec<u8>,
    signing: Option<(&str, &str, &str)>,
) -> Result<http::Request<Full<Bytes>>, String> {
    build_request_at(method, host, path, body, signing, SystemTime::now())
}

/// As [`build_request`], signed as of `time` (a clock that is off, for the conformance cases).
pub fn build_request_at(
    method: &str,
    host: &str,
    path: &str,
    body: Vec<u8>,
    signing: Option<(&str, &str, &str)>,
    time: SystemTime,
) -> Result<http::Request<Full<Bytes>>, String> {
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", host)
        .header("content-type", "application/json")
        .header(
            "user-agent",
            concat!("cks-doctor/", env!("CARGO_PKG_VERSION")),
        )
        .body(Full::new(Bytes::from(body.clone())))
        .map_err(|e| e.to_string())?;
    if let Some((access_key_id, secret, region)) = signing {
        use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
        let identity =
            aws_credential_types::Credentials::new(access_key_id, secret, None, None, "cks-doctor")
                .into();
        let mut settings = SigningSettings::default();
        settings.excluded_headers = Some(vec![
            "content-type".into(),
            "user-agent".into(),
            "content-length".into(),
        ]);
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name("kms-xks-proxy")
            .time(time)
            .settings(settings)
            .build()
            .map_err(|e| format!("SigV4 parameters: {e}"))?
            .into();
        let url = format!("https://{host}{path}");
        let headers = [("host", host)];
        let signable =
            SignableRequest::new(method, url, headers.into_iter(), SignableBody::Bytes(&body))
                .map_err(|e| format!("SigV4: {e}"))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| format!("SigV4: {e}"))?
            .into_parts();
        instructions.apply_to_request_http1x(&mut req);
    }
    Ok(req)
}

/// Sends one request; returns the exchange and the time to the response head.
pub(crate) async fn exchange(
    sender: &mut Sender,
    req: http::Request<Full<Bytes>>,
    timeout: Duration,
) -> Result<(Exchange, f64), String> {
    let run = async {
        sender
            .ready()
            .await
            .map_err(|e| format!("connection closed: {e}"))?;
        let sent = Instant::now();
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("no HTTP response: {e}"))?;
        let first_byte = ms(sent);
        let received_unix = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let header = |n: &str| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let status = resp.status().as_u16();
        let content_type = header("content-type");
        let date = header("date");
        let (body, body_truncated) = match Limited::new(resp.into_body(), MAX_BODY_BYTES)
            .collect()
            .await
        {
            Ok(b) => (b.to_bytes().to_vec(), false),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => (Vec::new(), true),
            Err(e) => return Err(format!("the response body broke off: {e}")),
        };
        Ok((
            Exchange {
                status,
                content_type,
                date,
                received_unix,
                body,
                body_truncated,
            },
            first_byte,
        ))
    };
    match tokio::time::timeout(timeout, run).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "no complete answer within {}s",
            timeout.as_secs_f64()
        )),
    }
}

/// Runs the whole probe. It never panics and never returns early with an error: every
/// failure is recorded in the step where it happened.
pub async fn run(cfg: &ProbeConfig) -> ProbeReport {
    let asked = Arc::new(ClientCertRequest {
        asked: std::sync::Mutex::new(None),
        present: cfg.client_identity.clone(),
    });
    let mut report = run_with(cfg, &asked).await;
    report.client_cert_requested = asked.asked.lock().ok().and_then(|a| a.clone());
    report.client_cert_presented =
        report.client_cert_requested.is_some() && cfg.client_identity.is_some();
    report
}

async fn run_with(cfg: &ProbeConfig, asked: &Arc<ClientCertRequest>) -> ProbeReport {
    // One deadline for the whole probe, so that a proxy that stops answering cannot hold the
    // checks past --timeout.
    let deadline = Instant::now() + cfg.timeout;
    let left = || {
        deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    };
    let url = format!("https://{}{}/health", cfg.host, cfg.path);
    let mut report = ProbeReport {
        host: cfg.host.clone(),
        url: url.clone(),
        connect_to: cfg.connect_to,
        resolved: Err("not resolved".into()),
        tcp: None,
        tls: None,
        health: None,
        refusals: Vec::new(),
        timings: Timings::default(),
        handshakes: 0,
        signed: cfg.secret.is_some() && cfg.access_key_id.is_some(),
        client_cert_requested: None,
        client_cert_presented: false,
    };
    // DNS
    let addrs: Vec<SocketAddr> = match cfg.connect_to {
        Some(a) => vec![a],
        None => {
            let start = Instant::now();
            let lookup =
                tokio::time::timeout(left(), tokio::net::lookup_host((cfg.host.as_str(), 443)))
                    .await;
            report.timings.dns_ms = Some(ms(start));
            match lookup {
                Ok(Ok(it)) => it.collect(),
                Ok(Err(e)) => {
                    report.resolved = Err(format!("{} does not resolve: {e}", cfg.host));
                    return report;
                }
                Err(_) => {
                    report.resolved = Err(format!(
                        "resolving {} took longer than {}s",
                        cfg.host,
                        cfg.timeout.as_secs_f64()
                    ));
                    return report;
                }
            }
        }
    };
    if addrs.is_empty() {
        report.resolved = Err(format!("{} resolves to no address", cfg.host));
        return report;
    }
    report.resolved = Ok(addrs.clone());
    // TCP, to the first address that answers
    let total = Instant::now();
    let mut stream = None;
    let mut errors = Vec::new();
    for addr in &addrs {
        let start = Instant::now();
        match tcp(*addr, left()).await {
            Ok(s) => {
                report.timings.connect_ms = Some(ms(start));
                report.tcp = Some(Ok(*addr));
                stream = Some((s, *addr));
                break;
            }
            Err(e) => errors.push(e),
        }
    }
    let Some((stream, addr)) = stream else {
        report.tcp = Some(Err(errors.join("; ")));
        return report;
    };
    // TLS, as KMS: TLS 1.2+, the four suites only
    let start = Instant::now();
    let name = match ServerName::try_from(cfg.host.clone()) {
        Ok(n) => n,
        Err(e) => {
            report.tls = Some(Err(TlsFailure {
                error: format!("not a valid TLS server name: {e}"),
                permissive: Err("not tried".into()),
            }));
            return report;
        }
    };
    let strict = match connector(true, asked) {
        Ok(c) => c,
        Err(e) => {
            report.tls = Some(Err(TlsFailure {
                error: e,
                permissive: Err("not tried".into()),
            }));
            return report;
        }
    };
    report.handshakes += 1;
    let tls = match tokio::time::timeout(left(), strict.connect(name, stream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            let error = tls_error(&e);
            report.handshakes += 1;
            let permissive = handshake(addr, &cfg.host, false, left(), asked)
                .await
                .map(|s| session(&s));
            report.tls = Some(Err(TlsFailure { error, permissive }));
            return report;
        }
        Err(_) => {
            report.tls = Some(Err(TlsFailure {
                error: format!(
                    "TLS handshake: no answer within {}s",
                    cfg.timeout.as_secs_f64()
                ),
                permissive: Err("not tried".into()),
            }));
            return report;
        }
    };
    report.timings.tls_ms = Some(ms(start));
    report.tls = Some(Ok(session(&tls)));
    let mut sender = match http(tls).await {
        Ok(s) => Some(s),
        Err(e) => {
            report.health = Some(Err(e));
            None
        }
    };
    let health_path = format!("{}/health", cfg.path);
    let signing = match (&cfg.access_key_id, &cfg.secret) {
        (Some(id), Some(secret)) => {
            Some((id.as_str(), secret.expose_secret(), cfg.region.as_str()))
        }
        _ => None,
    };
    // The first request on the fresh connection is the timed one: the signed GetHealthStatus,
    // or without a secret the unsigned one below.
    let mut fresh = true;
    if let (Some(signing), Some(s)) = (signing, sender.as_mut()) {
        fresh = false;
        let result = build_request(
            "POST",
            &cfg.host,
            &health_path,
            health_body(cfg.kms_operation),
            Some(signing),
        );
        let sent = Instant::now();
        let result = match result {
            Ok(req) => exchange(s, req, left()).await,
            Err(e) => Err(e),
        };
        match result {
            Ok((ex, first_byte)) => {
                report.timings.first_byte_ms = Some(first_byte);
                report.timings.request_ms = Some(ms(sent));
                report.timings.total_ms = Some(ms(total));
                report.health = Some(Ok(ex));
            }
            Err(e) => report.health = Some(Err(e)),
        }
    }
    // What the proxy must refuse, on the same connection while it stays open.
    let wrong_secret = "cksDoctorWrongSecretForProbingOnly0000000000";
    let mut plan: Vec<(
        RefusalKind,
        &str,
        String,
        Vec<u8>,
        Option<(&str, &str, &str)>,
    )> = vec![(
        RefusalKind::Unsigned,
        "POST",
        health_path.clone(),
        health_body(cfg.kms_operation),
        None,
    )];
    if let Some(id) = cfg.access_key_id.as_deref() {
        plan.push((
            RefusalKind::WrongSecret,
            "POST",
            health_path.clone(),
            health_body(cfg.kms_operation),
            Some((id, wrong_secret, cfg.region.as_str())),
        ));
    }
    if let Some(signing) = signing {
        let unknown = format!("{}/cks-doctor-unknown-operation", cfg.path);
        plan.push((
            RefusalKind::UnknownPath,
            "POST",
            unknown,
            health_body(cfg.kms_operation),
            Some(signing),
        ));
        plan.push((
            RefusalKind::Get,
            "GET",
            health_path.clone(),
            Vec::new(),
            Some(signing),
        ));
        plan.push((
            RefusalKind::EmptyBody,
            "POST",
            health_path.clone(),
            Vec::new(),
            Some(signing),
        ));
    }
    for (kind, method, path, body, sign) in plan {
        if deadline.saturating_duration_since(Instant::now()) < Duration::from_millis(20) {
            report.refusals.push(Refusal {
                kind,
                result: Err("not tried: the probe's time budget (--timeout) ran out".into()),
            });
            continue;
        }
        // Reconnect (untimed) when the proxy closed the connection after the last answer.
        let usable = match sender.as_mut() {
            Some(s) => s.ready().await.is_ok(),
            None => false,
        };
        if !usable {
            fresh = false;
            report.handshakes += 1;
            sender = match handshake(addr, &cfg.host, false, left(), asked).await {
                Ok(tls) => http(tls).await.ok(),
                Err(_) => None,
            };
        }
        let result = match sender.as_mut() {
            None => Err("could not connect again".to_string()),
            Some(s) => match build_request(method, &cfg.host, &path, body, sign) {
                Ok(req) => {
                    let sent = Instant::now();
                    exchange(s, req, left()).await.map(|(e, first_byte)| {
                        if fresh {
                            report.timings.first_byte_ms = Some(first_byte);
                            report.timings.request_ms = Some(ms(sent));
                            report.timings.total_ms = Some(ms(total));
                        }
                        e
                    })
                }
                Err(e) => Err(e),
            },
        };
        fresh = false;
        report.refusals.push(Refusal { kind, result });
    }
    report
}
