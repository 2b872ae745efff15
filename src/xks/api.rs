//! The XKS proxy API beyond the health probe: one client that talks to the proxy as KMS does
//! (TLS 1.2+ with KMS's four cipher suites only, HTTP/1.1 kept alive, every request signed with
//! SigV4 for the key store's Region) and times each call on its own. The key pre-flight
//! (GetKeyMetadata) and `conformance` both send their requests through it.
//!
//! The certificate is recorded, not judged: whether KMS trusts it is the `xks.tls.*` checks'
//! question, and a key pre-flight of a CONNECTED store talks to a proxy KMS already accepted.

use super::probe::{
    build_request_at, connector, exchange, http, ms, session, tcp, tls_error, ClientCertRequest,
    Exchange, ProbeConfig, Sender, TlsSession,
};
use rustls::pki_types::ServerName;
use secrecy::{ExposeSecret, SecretString};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// How one request is signed.
#[derive(Clone)]
pub enum Signing {
    /// With the configured access key id and secret (as KMS signs).
    Configured,
    /// No Authorization header at all.
    Unsigned,
    /// With another credential (a wrong secret or access key id).
    Credential {
        access_key_id: String,
        secret: SecretString,
    },
    /// With the configured credential, as of a clock this many seconds off.
    ClockOffset(i64),
}

impl std::fmt::Debug for Signing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Signing::Configured => f.write_str("Configured"),
            Signing::Unsigned => f.write_str("Unsigned"),
            Signing::Credential { access_key_id, .. } => f
                .debug_struct("Credential")
                .field("access_key_id", access_key_id)
                .field("secret", &"[REDACTED]")
                .finish(),
            Signing::ClockOffset(s) => write!(f, "ClockOffset({s})"),
        }
    }
}

/// One request and what came back, timed.
#[derive(Debug, Clone)]
pub struct Call {
    pub result: Result<Exchange, String>,
    /// From the request written to the last body byte: what KMS's 250 ms are about.
    pub request_ms: Option<f64>,
    /// From the request written to the response head.
    pub first_byte_ms: Option<f64>,
    /// The proxy had closed the connection, so this call made a new one first (TCP + TLS,
    /// `setup_ms`, not counted in `request_ms`).
    pub reconnected: bool,
    pub setup_ms: Option<f64>,
}

impl Call {
    /// The HTTP status, when an answer came.
    pub fn status(&self) -> Option<u16> {
        self.result.as_ref().ok().map(|e| e.status)
    }
    /// The answer's JSON body, when it has one.
    pub fn json(&self) -> Option<serde_json::Value> {
        let e = self.result.as_ref().ok()?;
        serde_json::from_slice(&e.body).ok()
    }
    /// The XKS error name of an error answer (`{"errorName": ...}`).
    pub fn error_name(&self) -> Option<String> {
        self.json()?.get("errorName")?.as_str().map(str::to_string)
    }
}

/// A kept-alive connection to the proxy, reopened when the proxy closes it.
pub struct Client {
    cfg: ProbeConfig,
    addr: SocketAddr,
    sender: Option<Sender>,
    asked: Arc<ClientCertRequest>,
    /// The first connection's TLS session.
    pub tls: TlsSession,
    /// Milliseconds of the first connection's TCP connect and TLS handshake.
    pub connect_ms: f64,
    pub tls_ms: f64,
    /// Connections opened in all.
    pub connections: usize,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("cfg", &self.cfg)
            .field("addr", &self.addr)
            .field("connections", &self.connections)
            .finish()
    }
}

impl Client {
    /// Resolves the endpoint (or takes `--connect-to`), connects and shakes hands as KMS does.
    /// The error says which step failed and, when the proxy demands a client certificate
    /// without one given, says so.
    pub async fn connect(cfg: &ProbeConfig) -> Result<Client, String> {
        let asked = Arc::new(ClientCertRequest {
            asked: std::sync::Mutex::new(None),
            present: cfg.client_identity.clone(),
        });
        let addrs: Vec<SocketAddr> = match cfg.connect_to {
            Some(a) => vec![a],
            None => {
                match tokio::time::timeout(
                    cfg.timeout,
                    tokio::net::lookup_host((cfg.host.as_str(), 443)),
                )
                .await
                {
                    Ok(Ok(it)) => it.collect(),
                    Ok(Err(e)) => return Err(format!("{} does not resolve: {e}", cfg.host)),
                    Err(_) => return Err(format!("resolving {} timed out", cfg.host)),
                }
            }
        };
        let mut errors = Vec::new();
        for addr in addrs {
            let mut client = Client {
                cfg: cfg.clone(),
                addr,
                sender: None,
                asked: asked.clone(),
                tls: TlsSession {
                    version: String::new(),
                    cipher_suite: String::new(),
                    chain_der: Vec::new(),
                },
                connect_ms: 0.0,
                tls_ms: 0.0,
                connections: 0,
            };
            match client.open().await {
                Ok(()) => return Ok(client),
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            return Err(format!("{} resolves to no address", cfg.host));
        }
        let mut e = errors.join("; ");
        if let Some(cas) = asked.asked.lock().ok().and_then(|a| a.clone()) {
            if cfg.client_identity.is_none() {
                e = format!(
                    "the proxy requires mutual TLS (it asked for a client certificate{}; present one with --client-cert/--client-key): {e}",
                    if cas.is_empty() {
                        String::new()
                    } else {
                        format!(" issued by {}", cas.join(" | "))
                    }
                );
            }
        }
        Err(e)
    }

    /// The CA names of the proxy's request for a client certificate, when it asked for one.
    pub fn client_cert_requested(&self) -> Option<Vec<String>> {
        self.asked.asked.lock().ok().and_then(|a| a.clone())
    }

    async fn open(&mut self) -> Result<(), String> {
        let start = Instant::now();
        let stream = tcp(self.addr, self.cfg.timeout).await?;
        let connect_ms = ms(start);
        let name = ServerName::try_from(self.cfg.host.clone())
            .map_err(|e| format!("not a valid TLS server name: {e}"))?;
        let start = Instant::now();
        let tls = match tokio::time::timeout(
            self.cfg.timeout,
            connector(true, &self.asked)?.connect(name, stream),
        )
        .await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                return Err(format!(
                    "TLS handshake with KMS's cipher suites failed: {}",
                    tls_error(&e)
                ))
            }
            Err(_) => return Err("TLS handshake: no answer in time".into()),
        };
        let tls_ms = ms(start);
        if self.connections == 0 {
            self.tls = session(&tls);
            self.connect_ms = connect_ms;
            self.tls_ms = tls_ms;
        }
        self.connections += 1;
        self.sender = Some(http(tls).await?);
        Ok(())
    }

    /// The full request path of an API suffix (`/health`, `/keys/ID/metadata`).
    pub fn path(&self, suffix: &str) -> String {
        format!("{}{}", self.cfg.path, suffix)
    }

    /// POSTs a JSON body to `{XksProxyUriPath}{suffix}`, signed as KMS signs.
    pub async fn post(&mut self, suffix: &str, body: &serde_json::Value) -> Call {
        let path = self.path(suffix);
        self.send(
            "POST",
            &path,
            body.to_string().into_bytes(),
            &Signing::Configured,
        )
        .await
    }

    /// Sends one request to a full path (so a wrong prefix can be sent too).
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        body: Vec<u8>,
        signing: &Signing,
    ) -> Call {
        let mut call = Call {
            result: Err("not sent".into()),
            request_ms: None,
            first_byte_ms: None,
            reconnected: false,
            setup_ms: None,
        };
        let usable = match self.sender.as_mut() {
            Some(s) => s.ready().await.is_ok(),
            None => false,
        };
        if !usable {
            let start = Instant::now();
            call.reconnected = true;
            if let Err(e) = self.open().await {
                call.result = Err(format!("could not connect again: {e}"));
                return call;
            }
            call.setup_ms = Some(ms(start));
        }
        let region = self.cfg.region.clone();
        let configured = match (&self.cfg.access_key_id, &self.cfg.secret) {
            (Some(id), Some(secret)) => Some((id.clone(), secret.clone())),
            _ => None,
        };
        let mut time = SystemTime::now();
        let credential: Option<(String, SecretString)> = match signing {
            Signing::Unsigned => None,
            Signing::Configured => configured,
            Signing::ClockOffset(secs) => {
                time = if *secs >= 0 {
                    time + Duration::from_secs(secs.unsigned_abs())
                } else {
                    time - Duration::from_secs(secs.unsigned_abs())
                };
                configured
            }
            Signing::Credential {
                access_key_id,
                secret,
            } => Some((access_key_id.clone(), secret.clone())),
        };
        if credential.is_none() && !matches!(signing, Signing::Unsigned) {
            call.result = Err("no access key id and secret to sign with".into());
            return call;
        }
        let req = build_request_at(
            method,
            &self.cfg.host,
            path,
            body,
            credential
                .as_ref()
                .map(|(id, s)| (id.as_str(), s.expose_secret(), region.as_str())),
            time,
        );
        let req = match req {
            Ok(r) => r,
            Err(e) => {
                call.result = Err(e);
                return call;
            }
        };
        let Some(sender) = self.sender.as_mut() else {
            call.result = Err("no connection".into());
            return call;
        };
        let sent = Instant::now();
        match exchange(sender, req, self.cfg.timeout).await {
            Ok((ex, first_byte)) => {
                call.request_ms = Some(ms(sent));
                call.first_byte_ms = Some(first_byte);
                call.result = Ok(ex);
            }
            Err(e) => call.result = Err(e),
        }
        call
    }
}

/// The `requestMetadata` KMS sends with a key operation.
#[derive(Debug, Clone)]
pub struct RequestMetadata {
    /// The principal that called KMS (the tool's caller identity stands in for it).
    pub aws_principal_arn: String,
    /// The KMS key's ARN (absent for CreateKey: the key does not exist yet).
    pub kms_key_arn: Option<String>,
    pub kms_operation: String,
}

impl RequestMetadata {
    pub fn json(&self) -> serde_json::Value {
        let mut m = serde_json::json!({
            "awsPrincipalArn": self.aws_principal_arn,
            "kmsOperation": self.kms_operation,
            "kmsRequestId": uuid::Uuid::new_v4().to_string(),
        });
        if let Some(arn) = &self.kms_key_arn {
            m["kmsKeyArn"] = serde_json::Value::String(arn.clone());
        }
        m
    }
}

/// The path suffix of a key operation (`metadata`, `encrypt`, `decrypt`).
pub fn key_path(key_id: &str, operation: &str) -> String {
    format!("/keys/{key_id}/{operation}")
}

/// What GetKeyMetadata answered, as a key pre-flight reads it.
#[derive(Debug, Clone)]
pub struct KeyMetadataAnswer {
    pub call: Call,
    /// The request's URL (for evidence).
    pub url: String,
}

/// Sends GetKeyMetadata for `key_id` as KMS does at CreateKey, on a fresh connection.
pub async fn get_key_metadata(
    cfg: &ProbeConfig,
    key_id: &str,
    metadata: &RequestMetadata,
) -> Result<KeyMetadataAnswer, String> {
    let mut client = Client::connect(cfg).await?;
    let suffix = key_path(key_id, "metadata");
    let url = format!("https://{}{}", cfg.host, client.path(&suffix));
    let call = client
        .post(
            &suffix,
            &serde_json::json!({ "requestMetadata": metadata.json() }),
        )
        .await;
    Ok(KeyMetadataAnswer { call, url })
}
