//! A real XKS proxy for integration tests: HTTPS (tokio + rustls on ring) on 127.0.0.1:0, HTTP/1.1
//! (hyper, keep-alive), certificates generated at start with rcgen, and an INDEPENDENT SigV4
//! verifier (hmac + sha2, not aws-sigv4), so the tool's signer is checked against a second
//! implementation.
//!
//! Include it with `#[path = "support/xks_proxy.rs"] mod xks_proxy;`.
//!
//! Facts a prober test may rely on:
//! - Every certificate (root, intermediate, leaf) has an ECDSA P-256 key and is signed with
//!   ecdsa-with-SHA256. TLS 1.2 therefore negotiates only `TLS_ECDHE_ECDSA_*` suites (the
//!   `TLS_ECDHE_RSA_*` suites configured for [`TlsSetup::Tls12WeakSuiteOnly`] are unusable with
//!   an ECDSA key and never chosen).
//! - Suites offered (rustls ring provider, key exchange X25519, P-256, P-384):
//!   - [`TlsSetup::Default`]: TLS 1.3 `TLS13_AES_256_GCM_SHA384`, `TLS13_AES_128_GCM_SHA256`,
//!     `TLS13_CHACHA20_POLY1305_SHA256`; TLS 1.2 `TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384`,
//!     `TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256`, `TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256`.
//!   - [`TlsSetup::Tls12Only`]: the three TLS 1.2 suites above, TLS 1.2 only.
//!   - [`TlsSetup::Tls12WeakSuiteOnly`]: TLS 1.2 only, `TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256`
//!     (and `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`, unusable): none of KMS's four suites.
//!   - [`TlsSetup::Tls13Only`]: the three TLS 1.3 suites, TLS 1.3 only.
//! - No ALPN is negotiated (HTTP/1.1 only); no client certificate is requested.
//! - Order in which a request is answered:
//!   1. [`Mode::Slow`] waits `delay_ms` before answering ANY request (a slow server).
//!   2. [`Mode::HtmlError`] answers every request (any path, any method) with its HTML page.
//!   3. A path that is not an XKS API URI → 404 `InvalidUriPathException` (any method, signed or not).
//!      API URIs: `{PATH}/health` and `{PATH}/keys/{id}/{metadata|encrypt|decrypt}`.
//!   4. A method other than POST on an API URI → 405 (empty body, `Allow: POST`).
//!   5. SigV4 not valid → 401 `AuthenticationFailedException` (skipped for [`Mode::AcceptUnsigned`]).
//!   6. A key API URI → the key operation (see "Keys" below; [`Mode`] other than `Slow`,
//!      `HtmlError` and `AcceptUnsigned` does not apply to key operations).
//!   7. Health body not `{"requestMetadata":{"kmsRequestId":"…","kmsOperation":"…"}}` → 400
//!      `ValidationException`.
//!   8. Health → the [`Mode`]'s answer ([`Mode::Error`] is applied here, i.e. after auth).
//! - Keys: GetKeyMetadata, Encrypt and Decrypt of the AWS KMS XKS proxy API specification, with
//!   real AES-256-GCM (ring) on key material drawn at random when the proxy starts:
//!   - [`KEY_AES`]: `AES_256`, `ENABLED`, `["ENCRYPT","DECRYPT"]`.
//!   - [`KEY_RSA`]: `RSA_2048`, `ENABLED`, `["ENCRYPT","DECRYPT"]`: only its keySpec is wrong for
//!     KMS; Encrypt and Decrypt → 400 `InvalidKeyUsageException` (it cannot do AES-GCM).
//!   - [`KEY_DISABLED`]: `AES_256`, `DISABLED`: metadata answers, Encrypt and Decrypt → 400
//!     `InvalidStateException`.
//!   - [`KEY_ENCRYPT_ONLY`] (`["ENCRYPT"]`) and [`KEY_DECRYPT_ONLY`] (`["DECRYPT"]`) share one AES
//!     key: what the first encrypts the second decrypts; the other operation → 400
//!     `InvalidKeyUsageException`, and so is Encrypt with a CDIV on the encrypt-only key (the
//!     CDIV flow of Appendix C decrypts the output before answering).
//!   - Any other key id → 404 `KeyNotFoundException`.
//!
//!   Order within a key operation: the body (JSON object; `requestMetadata` with the fields the
//!   specification REQUIRES for that operation, any other field accepted, any `kmsOperation`
//!   accepted unless [`KeyFaults::reject_unknown_operation`]; `encryptionAlgorithm` `AES_GCM`;
//!   Base64 fields (standard alphabet, padded); IV 12 or 16 bytes, tag 16 bytes,
//!   ciphertextMetadata at most 20 bytes) → 400 `ValidationException`; plaintext or ciphertext
//!   over [`MAX_PLAINTEXT_BYTES`] or AAD over [`MAX_AAD_BYTES`] (the sizes the specification
//!   requires a proxy to support, and this proxy's limit) → 501 `UnsupportedOperationException`;
//!   then the key (404), its status (`InvalidStateException`), its spec and usage
//!   (`InvalidKeyUsageException`); then the cryptography (Decrypt that does not authenticate →
//!   400 `InvalidCiphertextException`).
//!
//!   Encrypt draws a 12-byte IV, returns a 16-byte tag, and authenticates
//!   `len16be(AAD) || AAD || len8(ciphertextMetadata) || ciphertextMetadata` as the GCM AAD (as
//!   the specification asks). It returns `ciphertextMetadata` only when
//!   [`ProxyOptions::ciphertext_metadata`] is set, and `ciphertextDataIntegrityValue` (see
//!   [`cdiv`]) only when the request has `ciphertextDataIntegrityValueAlgorithm` `SHA_256`.
//!   Misbehaviours: [`KeyFaults`].
//! - The proxy's clock is the local clock shifted by `date_offset_secs`: it is used both for the
//!   `Date` header of every response and for the 5-minute x-amz-date check.
//! - The server runs on its own OS thread with its own tokio runtime, so it works from sync
//!   `#[test]`s and from any `#[tokio::test]` flavour; Drop stops it and joins the thread, so when
//!   Drop returns the listener is closed and every open connection has been dropped.
#![allow(dead_code)]

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderMap, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::crypto::ring::cipher_suite as cs;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, SupportedCipherSuite, SupportedProtocolVersion};
use sha2::{Digest, Sha256};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio_rustls::TlsAcceptor;

pub const HOST: &str = "myproxy.xks.example.com";
/// Matches `^[A-Z2-7]{20,30}$` (the XKS proxy access key id pattern).
pub const ACCESS_KEY_ID: &str = "ABCDE22345672EXAMPLE";
/// 52 characters of `[a-zA-Z0-9/+=]` (the XKS proxy secret pattern allows 43–64).
pub const SECRET: &str = "K4tK8pSx/Wq2Zr7Nf3Lm9Vb6Hd1Jc5Ge0Ty+Ru2Xo8EXAMPLEKEY";
pub const REGION: &str = "us-east-1";
/// The SigV4 service name KMS signs XKS requests with.
pub const SERVICE: &str = "kms-xks-proxy";
/// `XksProxyUriPath` of the key store.
pub const PATH: &str = "/example-prefix/kms/xks/v1";
/// `PATH` + `/health`.
pub const HEALTH_PATH: &str = "/example-prefix/kms/xks/v1/health";
/// `XksProxyUriEndpoint` of the key store.
pub const ENDPOINT: &str = "https://myproxy.xks.example.com";
/// The largest accepted difference between x-amz-date and the proxy's clock.
pub const MAX_SKEW_SECS: i64 = 300;

#[derive(Clone, Debug)]
pub enum Mode {
    /// 200, all ACTIVE.
    Healthy,
    /// 200, one of two entries DEGRADED.
    Degraded,
    /// 200, every entry UNAVAILABLE.
    AllUnavailable,
    /// JSON error shape `{"errorName","errorMessage"}` with this status, for health requests
    /// that pass authentication and body validation.
    Error {
        status: u16,
        error_name: &'static str,
    },
    /// A web server's own page (text/html, no JSON) for every request.
    HtmlError { status: u16 },
    /// 200 with this exact body (`Content-Type: application/json`).
    Body(String),
    /// Healthy, but every response is sent `delay_ms` after the request was read.
    Slow { delay_ms: u64 },
    /// Answers 200 to health even without a valid signature (a security finding).
    AcceptUnsigned,
    /// Healthy, headers (with Content-Length) sent at once, then the body in chunks of
    /// `bytes_per_chunk`, each chunk sent `delay_ms` after the previous one (the first one too).
    Trickle {
        bytes_per_chunk: usize,
        delay_ms: u64,
    },
}

#[derive(Clone, Debug)]
pub enum CertSetup {
    /// root → intermediate → leaf for HOST; the server sends leaf + intermediate.
    Valid,
    /// The same chain, but the server sends only the leaf.
    MissingIntermediate,
    /// Leaf valid from 30 days ago until yesterday.
    Expired,
    /// Leaf expires `days` days from now.
    ExpiresSoon { days: u32 },
    /// Leaf for other.example.org only.
    WrongName,
    /// Leaf for *.xks.example.com (matches HOST).
    Wildcard,
    /// Self-signed leaf for HOST (not issued by the root returned by `root_ca_pem`).
    SelfSigned,
    /// subjectAltName HOST, subject CN legacy.example.org.
    OtherCommonName,
    /// subjectAltName other.example.org, subject CN HOST.
    CommonNameOnly,
}

#[derive(Clone, Debug)]
pub enum TlsSetup {
    Default,
    Tls12Only,
    /// Only TLS_ECDHE_*_WITH_AES_128_GCM_SHA256 on TLS 1.2: outside KMS's four suites.
    Tls12WeakSuiteOnly,
    Tls13Only,
}

#[derive(Clone, Debug)]
pub struct ProxyOptions {
    pub mode: Mode,
    pub cert: CertSetup,
    pub tls: TlsSetup,
    /// Skew of the proxy's clock: of the `Date` header it sends and of its x-amz-date check.
    pub date_offset_secs: i64,
    /// Waits this long after accepting a TCP connection before the TLS handshake: a slow
    /// connection set-up in front of a fast answer.
    pub handshake_delay_ms: u64,
    /// Demands a client certificate issued by the test root CA (mutual TLS), as a proxy set up
    /// for KMS's `cks.kms.<Region>.amazonaws.com` certificate does.
    pub require_client_cert: bool,
    /// Key operations that misbehave (all off by default).
    pub key_faults: KeyFaults,
    /// Encrypt returns these bytes as `ciphertextMetadata` (and binds them into the GCM AAD and
    /// the CDIV); None: Encrypt returns no ciphertextMetadata. The specification allows at most
    /// 20 bytes: more is a misbehaviour this option allows (up to 255 bytes).
    pub ciphertext_metadata: Option<Vec<u8>>,
}

/// Key operations that deviate from the specification, one switch per fault.
#[derive(Clone, Debug, Default)]
pub struct KeyFaults {
    /// Encrypt returns a `ciphertextDataIntegrityValue` that is not the specification's value
    /// (SHA-256 of ciphertext || IV || tag: wrong order, AAD and ciphertextMetadata left out;
    /// last bit flipped should that ever equal the right value).
    pub wrong_cdiv: bool,
    /// Decrypt ignores the AAD it is given: it authenticates with the AAD (and
    /// ciphertextMetadata) that Encrypt used for that IV, so a changed AAD is accepted. A changed
    /// ciphertext, tag or IV is still refused.
    pub accept_changed_aad: bool,
    /// Every POST to a Decrypt URI is answered this many milliseconds after it was read.
    pub slow_decrypt_ms: u64,
    /// Key operations with a `kmsOperation` the specification does not list for that API → 400
    /// `ValidationException` (which the specification forbids). Lists: GetKeyMetadata CreateKey,
    /// DescribeKey; Encrypt Encrypt, ReEncrypt, GenerateDataKey, GenerateDataKeyWithoutPlaintext;
    /// Decrypt Decrypt, ReEncrypt. Health is not affected.
    pub reject_unknown_operation: bool,
    /// GetKeyMetadata of [`KEY_AES`] answers 200 with this exact body (application/json), after
    /// authentication and body validation.
    pub metadata_override: Option<String>,
}

impl Default for ProxyOptions {
    fn default() -> Self {
        ProxyOptions {
            mode: Mode::Healthy,
            cert: CertSetup::Valid,
            tls: TlsSetup::Default,
            date_offset_secs: 0,
            handshake_delay_ms: 0,
            require_client_cert: false,
            key_faults: KeyFaults::default(),
            ciphertext_metadata: None,
        }
    }
}

impl ProxyOptions {
    pub fn mode(mode: Mode) -> Self {
        ProxyOptions {
            mode,
            ..Default::default()
        }
    }
    pub fn cert(cert: CertSetup) -> Self {
        ProxyOptions {
            cert,
            ..Default::default()
        }
    }
    pub fn tls(tls: TlsSetup) -> Self {
        ProxyOptions {
            tls,
            ..Default::default()
        }
    }
    pub fn key_faults(key_faults: KeyFaults) -> Self {
        ProxyOptions {
            key_faults,
            ..Default::default()
        }
    }
}

/// One HTTP request the proxy read, and how it answered.
#[derive(Clone, Debug)]
pub struct SeenRequest {
    pub method: String,
    /// Path and query exactly as sent.
    pub path: String,
    /// Header names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// None: no Authorization header; Some(true): a valid SigV4 signature for this proxy's
    /// credentials, Region and service, within 5 minutes of the proxy's clock.
    pub signature_valid: Option<bool>,
    /// Why the signature was rejected (also the 401's errorMessage).
    pub signature_error: Option<String>,
    /// The status the proxy answered.
    pub status: u16,
    /// Which TLS connection carried it: the value of `handshakes()` right after that
    /// connection's handshake (1 for the first connection, 2 for the second, ...).
    pub connection: usize,
    /// Negotiated on that connection, e.g. "TLSv1_3" and "TLS13_AES_256_GCM_SHA384".
    pub tls_version: String,
    pub cipher_suite: String,
    /// The SNI the client sent on that connection.
    pub sni: Option<String>,
}

impl SeenRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Shared {
    requests: Mutex<Vec<SeenRequest>>,
    handshakes: AtomicUsize,
    handshake_errors: Mutex<Vec<String>>,
    /// IV → the GCM AAD Encrypt used with it (kept only for [`KeyFaults::accept_changed_aad`]).
    encrypt_aads: Mutex<std::collections::HashMap<Vec<u8>, Vec<u8>>>,
}

pub struct TestProxy {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    root_pem: String,
    chain_pem: String,
    client_pem: (String, String),
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestProxy {
    /// Starts the proxy on 127.0.0.1:0. The server runs on its own thread and runtime, so this
    /// works from any runtime flavour.
    pub async fn start(opts: ProxyOptions) -> TestProxy {
        Self::start_blocking(opts)
    }

    /// Starts the proxy from synchronous code (for `assert_cmd` tests). The proxy owns its own
    /// tokio runtime, on its own thread, until Drop.
    pub fn start_blocking(opts: ProxyOptions) -> TestProxy {
        if let Some(cm) = &opts.ciphertext_metadata {
            assert!(cm.len() <= 255, "ciphertext_metadata: at most 255 bytes");
        }
        let certs = Certs::generate(&opts.cert);
        let config = server_config(&opts.tls, &certs, opts.require_client_cert);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("set_nonblocking");
        let addr = listener.local_addr().expect("local_addr");
        let shared = Arc::new(Shared::default());
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = Server {
            opts: Arc::new(opts),
            shared: shared.clone(),
            keys: Arc::new(Keys::generate()),
        };
        let thread = std::thread::Builder::new()
            .name(format!("xks-test-proxy-{}", addr.port()))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("test proxy runtime");
                rt.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                    let acceptor = TlsAcceptor::from(config);
                    tokio::select! {
                        _ = server.accept_loop(listener, acceptor) => {}
                        _ = stop_rx => {}
                    }
                });
                // Dropping the runtime here drops the listener and every connection task.
                drop(rt);
            })
            .expect("spawn test proxy thread");
        TestProxy {
            addr,
            shared,
            root_pem: certs.root_pem,
            client_pem: certs.client_pem.clone(),
            chain_pem: certs.chain_pem,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// The private root CA (PEM), to pass with `--trust-ca`.
    /// A client certificate issued by the test root CA (CN cks.kms.us-east-1.amazonaws.com, as
    /// KMS's) and its private key, both PEM: what a proxy that requires mutual TLS accepts.
    pub fn client_identity_pem(&self) -> (String, String) {
        self.client_pem.clone()
    }

    pub fn root_ca_pem(&self) -> String {
        self.root_pem.clone()
    }

    /// The certificates the server sends, leaf first (PEM).
    pub fn chain_pem(&self) -> String {
        self.chain_pem.clone()
    }

    pub fn requests(&self) -> Vec<SeenRequest> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// TLS handshakes completed.
    pub fn handshakes(&self) -> usize {
        self.shared.handshakes.load(Ordering::SeqCst)
    }

    /// Why each failed handshake failed, as rustls said it (recorded after the alert is sent).
    pub fn handshake_errors(&self) -> Vec<String> {
        self.shared.handshake_errors.lock().unwrap().clone()
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `myproxy.xks.example.com:443:127.0.0.1:PORT` (curl `--connect-to` semantics).
    pub fn connect_to_arg(&self) -> String {
        format!("{HOST}:443:{}:{}", self.addr.ip(), self.addr.port())
    }
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Certificates and TLS

struct Certs {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    root_pem: String,
    root_der: CertificateDer<'static>,
    client_pem: (String, String),
    chain_pem: String,
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "cks-doctor tests");
    dn.push(DnType::CommonName, cn);
    dn
}

impl Certs {
    fn generate(setup: &CertSetup) -> Certs {
        use time::{Duration as Days, OffsetDateTime};
        let now = OffsetDateTime::now_utc();

        let mut root_params = CertificateParams::default();
        root_params.distinguished_name = dn("cks-doctor XKS test root CA");
        root_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        root_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        root_params.not_before = now - Days::days(1);
        root_params.not_after = now + Days::days(3650);
        let root = CertifiedIssuer::self_signed(root_params, KeyPair::generate().unwrap())
            .expect("root CA");

        let mut client_params =
            CertificateParams::new(Vec::<String>::new()).expect("client certificate");
        client_params.distinguished_name = dn("cks.kms.us-east-1.amazonaws.com");
        client_params.is_ca = IsCa::NoCa;
        client_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        client_params.use_authority_key_identifier_extension = true;
        client_params.not_before = now - Days::days(1);
        client_params.not_after = now + Days::days(30);
        let client_key = KeyPair::generate().unwrap();
        let client = client_params
            .signed_by(&client_key, &*root)
            .expect("client certificate");
        let client_pem = (client.pem(), client_key.serialize_pem());

        let mut inter_params = CertificateParams::default();
        inter_params.distinguished_name = dn("cks-doctor XKS test intermediate CA");
        inter_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        inter_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        inter_params.use_authority_key_identifier_extension = true;
        inter_params.not_before = now - Days::days(1);
        inter_params.not_after = now + Days::days(1825);
        let inter = CertifiedIssuer::signed_by(inter_params, KeyPair::generate().unwrap(), &*root)
            .expect("intermediate CA");

        let name = match setup {
            CertSetup::WrongName => "other.example.org",
            CertSetup::Wildcard => "*.xks.example.com",
            _ => HOST,
        };
        let (not_before, not_after) = match setup {
            CertSetup::Expired => (now - Days::days(30), now - Days::days(1)),
            CertSetup::ExpiresSoon { days } => {
                (now - Days::days(1), now + Days::days(*days as i64))
            }
            _ => (now - Days::days(1), now + Days::days(365)),
        };
        let (name, cn) = match setup {
            CertSetup::OtherCommonName => (HOST, "legacy.example.org"),
            CertSetup::CommonNameOnly => ("other.example.org", HOST),
            _ => (name, name),
        };
        let mut leaf_params = CertificateParams::new(vec![name.to_string()]).expect("leaf SAN");
        leaf_params.distinguished_name = dn(cn);
        leaf_params.is_ca = IsCa::NoCa;
        leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf_params.not_before = not_before;
        leaf_params.not_after = not_after;
        let leaf_key = KeyPair::generate().unwrap();

        let chain: Vec<CertificateDer<'static>> = match setup {
            CertSetup::SelfSigned => {
                vec![leaf_params.self_signed(&leaf_key).expect("leaf").into()]
            }
            _ => {
                leaf_params.use_authority_key_identifier_extension = true;
                let leaf = leaf_params.signed_by(&leaf_key, &*inter).expect("leaf");
                match setup {
                    CertSetup::MissingIntermediate => vec![leaf.into()],
                    _ => vec![leaf.into(), inter.der().clone()],
                }
            }
        };
        let chain_pem = chain.iter().map(|c| der_to_pem(c)).collect::<String>();
        Certs {
            chain,
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
            root_pem: root.pem(),
            root_der: root.der().clone(),
            client_pem,
            chain_pem,
        }
    }
}

fn der_to_pem(der: &[u8]) -> String {
    let b64 = base64_encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

fn server_config(tls: &TlsSetup, certs: &Certs, require_client_cert: bool) -> Arc<ServerConfig> {
    use rustls::version::{TLS12, TLS13};
    let tls13 = [
        cs::TLS13_AES_256_GCM_SHA384,
        cs::TLS13_AES_128_GCM_SHA256,
        cs::TLS13_CHACHA20_POLY1305_SHA256,
    ];
    let tls12 = [
        cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ];
    let (suites, versions): (
        Vec<SupportedCipherSuite>,
        Vec<&'static SupportedProtocolVersion>,
    ) = match tls {
        TlsSetup::Default => (
            tls13.iter().chain(tls12.iter()).copied().collect(),
            vec![&TLS13, &TLS12],
        ),
        TlsSetup::Tls12Only => (tls12.to_vec(), vec![&TLS12]),
        TlsSetup::Tls12WeakSuiteOnly => (
            vec![
                cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
                cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            ],
            vec![&TLS12],
        ),
        TlsSetup::Tls13Only => (tls13.to_vec(), vec![&TLS13]),
    };
    let provider = CryptoProvider {
        cipher_suites: suites,
        ..rustls::crypto::ring::default_provider()
    };
    let provider = Arc::new(provider);
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .expect("TLS versions");
    let builder = if require_client_cert {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(certs.root_der.clone()).expect("test root CA");
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .expect("client certificate verifier");
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let config = builder
        .with_single_cert(certs.chain.clone(), certs.key.clone_key())
        .expect("server certificate");
    Arc::new(config)
}

// ---------------------------------------------------------------------------------------------
// Server

type Body = UnsyncBoxBody<Bytes, Infallible>;

#[derive(Clone)]
struct ConnInfo {
    connection: usize,
    tls_version: String,
    cipher_suite: String,
    sni: Option<String>,
}

#[derive(Clone)]
struct Server {
    opts: Arc<ProxyOptions>,
    shared: Arc<Shared>,
    keys: Arc<Keys>,
}

impl Server {
    async fn accept_loop(self, listener: tokio::net::TcpListener, acceptor: TlsAcceptor) {
        loop {
            let tcp = match listener.accept().await {
                Ok((tcp, _)) => tcp,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let server = self.clone();
            tokio::spawn(async move {
                if server.opts.handshake_delay_ms > 0 {
                    tokio::time::sleep(Duration::from_millis(server.opts.handshake_delay_ms)).await;
                }
                let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp))
                    .await
                {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        server
                            .shared
                            .handshake_errors
                            .lock()
                            .unwrap()
                            .push(e.to_string());
                        return;
                    }
                    Err(_) => {
                        server
                            .shared
                            .handshake_errors
                            .lock()
                            .unwrap()
                            .push("handshake timed out".into());
                        return;
                    }
                };
                let conn = tls.get_ref().1;
                let info = ConnInfo {
                    connection: server.shared.handshakes.fetch_add(1, Ordering::SeqCst) + 1,
                    tls_version: conn
                        .protocol_version()
                        .map(|v| format!("{v:?}"))
                        .unwrap_or_default(),
                    cipher_suite: conn
                        .negotiated_cipher_suite()
                        .map(|s| format!("{:?}", s.suite()))
                        .unwrap_or_default(),
                    sni: conn.server_name().map(str::to_string),
                };
                let service = hyper::service::service_fn(move |req| {
                    let server = server.clone();
                    let info = info.clone();
                    async move { Ok::<_, Infallible>(server.handle(req, &info).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    }

    fn now_secs(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            + self.opts.date_offset_secs
    }

    fn date_header(&self) -> String {
        let now = SystemTime::now();
        let off = self.opts.date_offset_secs;
        let shifted = if off >= 0 {
            now + Duration::from_secs(off as u64)
        } else {
            now - Duration::from_secs(off.unsigned_abs())
        };
        httpdate::fmt_http_date(shifted)
    }

    async fn handle(&self, req: Request<Incoming>, info: &ConnInfo) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let path_and_query = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| parts.uri.path().to_string());

        let (signature_valid, signature_error) =
            if parts.headers.contains_key(hyper::header::AUTHORIZATION) {
                match verify_sigv4(
                    parts.method.as_str(),
                    &parts.uri,
                    &parts.headers,
                    &body,
                    self.now_secs(),
                ) {
                    Ok(()) => (Some(true), None),
                    Err(e) => (Some(false), Some(e)),
                }
            } else {
                (None, Some("missing Authorization header".to_string()))
            };

        if let Mode::Slow { delay_ms } = self.opts.mode {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        }
        let slow_decrypt = self.opts.key_faults.slow_decrypt_ms;
        if slow_decrypt > 0
            && parts.method == hyper::Method::POST
            && matches!(parse_key_uri(parts.uri.path()), Some((_, KeyOp::Decrypt)))
        {
            tokio::time::sleep(Duration::from_millis(slow_decrypt)).await;
        }

        let response = self.answer(
            parts.method.as_str(),
            parts.uri.path(),
            &body,
            signature_valid == Some(true),
            signature_error.as_deref(),
        );

        let mut response = response;
        response.headers_mut().insert(
            hyper::header::DATE,
            HeaderValue::from_str(&self.date_header()).unwrap(),
        );

        self.shared.requests.lock().unwrap().push(SeenRequest {
            method: parts.method.to_string(),
            path: path_and_query,
            headers: parts
                .headers
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: String::from_utf8_lossy(&body).into_owned(),
            signature_valid,
            signature_error: if signature_valid == Some(true) {
                None
            } else {
                signature_error
            },
            status: response.status().as_u16(),
            connection: info.connection,
            tls_version: info.tls_version.clone(),
            cipher_suite: info.cipher_suite.clone(),
            sni: info.sni.clone(),
        });
        response
    }

    fn answer(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        signed: bool,
        signature_error: Option<&str>,
    ) -> Response<Body> {
        if let Mode::HtmlError { status } = self.opts.mode {
            return html_error(status);
        }
        let is_health = path == HEALTH_PATH;
        let key_api = parse_key_uri(path);
        if !is_health && key_api.is_none() {
            return json_error(
                404,
                "InvalidUriPathException",
                &format!("no XKS API at {path}"),
            );
        }
        if method != "POST" {
            let mut r = plain(405, "", "text/plain");
            r.headers_mut()
                .insert(hyper::header::ALLOW, HeaderValue::from_static("POST"));
            return r;
        }
        if !signed && !matches!(self.opts.mode, Mode::AcceptUnsigned) {
            return json_error(
                401,
                "AuthenticationFailedException",
                signature_error.unwrap_or("invalid signature"),
            );
        }
        if let Some((key_id, op)) = key_api {
            return self.key_operation(key_id, op, body);
        }
        if let Err(e) = validate_body(body) {
            return json_error(400, "ValidationException", &e);
        }
        match &self.opts.mode {
            Mode::Healthy | Mode::Slow { .. } | Mode::AcceptUnsigned => {
                json(200, health_body(&["ACTIVE", "ACTIVE"]))
            }
            Mode::Degraded => json(200, health_body(&["ACTIVE", "DEGRADED"])),
            Mode::AllUnavailable => json(200, health_body(&["UNAVAILABLE", "UNAVAILABLE"])),
            Mode::Error { status, error_name } => json_error(
                *status,
                error_name,
                &format!("the test proxy is configured to answer {error_name}"),
            ),
            Mode::Body(b) => json(200, b.clone()),
            Mode::Trickle {
                bytes_per_chunk,
                delay_ms,
            } => trickle(
                health_body(&["ACTIVE", "ACTIVE"]),
                *bytes_per_chunk,
                Duration::from_millis(*delay_ms),
            ),
            Mode::HtmlError { .. } => unreachable!(),
        }
    }
}

/// The 200 health body with one ekmFleetDetails entry per status (ids hsm-1, hsm-2, ...).
pub fn health_body(statuses: &[&str]) -> String {
    let fleet: Vec<serde_json::Value> = statuses
        .iter()
        .enumerate()
        .map(|(i, s)| {
            serde_json::json!({
                "id": format!("hsm-{}", i + 1),
                "model": "ExampleHSM 7.4",
                "healthStatus": s,
            })
        })
        .collect();
    serde_json::json!({
        "xksProxyFleetSize": 2,
        "xksProxyVendor": "cks-doctor tests",
        "xksProxyModel": "TestProxy 1.0",
        "ekmVendor": "Example EKM Inc.",
        "ekmFleetDetails": fleet,
    })
    .to_string()
}

fn validate_body(body: &[u8]) -> Result<(), String> {
    if body.is_empty() {
        return Err("the request body is empty".into());
    }
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("the request body is not JSON: {e}"))?;
    let md = v
        .get("requestMetadata")
        .and_then(|m| m.as_object())
        .ok_or("requestMetadata is missing or not an object")?;
    for field in ["kmsRequestId", "kmsOperation"] {
        match md.get(field).and_then(|x| x.as_str()) {
            Some(s) if !s.is_empty() => {}
            _ => return Err(format!("requestMetadata.{field} is missing or empty")),
        }
    }
    Ok(())
}

fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into()).boxed_unsync()
}

fn plain(status: u16, body: &str, content_type: &'static str) -> Response<Body> {
    let mut r = Response::new(full(body.to_string()));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    r
}

fn json(status: u16, body: String) -> Response<Body> {
    plain(status, &body, "application/json")
}

fn json_error(status: u16, name: &str, message: &str) -> Response<Body> {
    json(
        status,
        serde_json::json!({"errorName": name, "errorMessage": message}).to_string(),
    )
}

fn html_error(status: u16) -> Response<Body> {
    let reason = StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    let page = format!(
        "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n\
         <center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n\
         </body>\r\n</html>\r\n"
    );
    let mut r = plain(status, &page, "text/html");
    r.headers_mut()
        .insert(hyper::header::SERVER, HeaderValue::from_static("nginx"));
    r
}

fn trickle(body: String, bytes_per_chunk: usize, delay: Duration) -> Response<Body> {
    let len = body.len();
    let chunks: Vec<Bytes> = body
        .into_bytes()
        .chunks(bytes_per_chunk.max(1))
        .map(Bytes::copy_from_slice)
        .collect();
    let stream = futures::stream::unfold(chunks.into_iter(), move |mut it| async move {
        let chunk = it.next()?;
        tokio::time::sleep(delay).await;
        Some((Ok::<_, Infallible>(Frame::data(chunk)), it))
    });
    let mut r = Response::new(StreamBody::new(stream).boxed_unsync());
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r.headers_mut()
        .insert(hyper::header::CONTENT_LENGTH, HeaderValue::from(len));
    r
}

// ---------------------------------------------------------------------------------------------
// Keys: GetKeyMetadata, Encrypt, Decrypt

/// `AES_256`, `ENABLED`, keyUsage `["ENCRYPT","DECRYPT"]`: what KMS accepts at CreateKey.
pub const KEY_AES: &str = "cks-test-aes-1";
/// `RSA_2048`, `ENABLED`, keyUsage `["ENCRYPT","DECRYPT"]`: Encrypt and Decrypt → 400
/// `InvalidKeyUsageException` (no AES-GCM on an RSA key).
pub const KEY_RSA: &str = "cks-test-rsa-1";
/// `AES_256`, `DISABLED`: Encrypt and Decrypt → 400 `InvalidStateException`.
pub const KEY_DISABLED: &str = "cks-test-disabled-1";
/// `AES_256`, `ENABLED`, keyUsage `["ENCRYPT"]`; same key material as [`KEY_DECRYPT_ONLY`].
/// Decrypt, and Encrypt with `ciphertextDataIntegrityValueAlgorithm`, → 400
/// `InvalidKeyUsageException`.
pub const KEY_ENCRYPT_ONLY: &str = "cks-test-encrypt-only-1";
/// `AES_256`, `ENABLED`, keyUsage `["DECRYPT"]`; same key material as [`KEY_ENCRYPT_ONLY`].
pub const KEY_DECRYPT_ONLY: &str = "cks-test-decrypt-only-1";
/// Every key the proxy holds.
pub const KEY_IDS: [&str; 5] = [
    KEY_AES,
    KEY_RSA,
    KEY_DISABLED,
    KEY_ENCRYPT_ONLY,
    KEY_DECRYPT_ONLY,
];
/// The largest plaintext (Encrypt) and ciphertext (Decrypt) the proxy takes, in bytes: the
/// specification's "MUST support the ability to process up to 4300 bytes". Larger → 501
/// `UnsupportedOperationException`.
pub const MAX_PLAINTEXT_BYTES: usize = 4300;
/// The largest AAD the proxy takes, in bytes (the specification's "up to 8192 bytes"). Larger →
/// 501 `UnsupportedOperationException`.
pub const MAX_AAD_BYTES: usize = 8192;
/// The specification's limit on ciphertextMetadata ("MUST NOT exceed 20 bytes").
pub const MAX_CIPHERTEXT_METADATA_BYTES: usize = 20;
/// The IV Encrypt draws (Decrypt also accepts 16-byte IVs, as the specification allows, but
/// none was made by this proxy: they never authenticate).
pub const IV_BYTES: usize = 12;
/// The authentication tag ("MUST be 16 bytes").
pub const TAG_BYTES: usize = 16;

/// `{PATH}/keys/{key_id}/{operation}` (operation `metadata`, `encrypt` or `decrypt`).
pub fn key_path(key_id: &str, operation: &str) -> String {
    format!("{PATH}/keys/{key_id}/{operation}")
}

/// The specification's ciphertextDataIntegrityValue (Appendix C): Base64 of the SHA-256 of
/// `additionalAuthenticatedData || ciphertextMetadata || initializationVector || ciphertext ||
/// authenticationTag` (decoded bytes; pass an empty slice for an absent AAD or metadata).
pub fn cdiv(
    aad: &[u8],
    ciphertext_metadata: &[u8],
    iv: &[u8],
    ciphertext: &[u8],
    tag: &[u8],
) -> String {
    let mut h = Sha256::new();
    for part in [aad, ciphertext_metadata, iv, ciphertext, tag] {
        h.update(part);
    }
    base64_encode(&h.finalize())
}

/// The AAD input of AES-GCM, as the specification asks: `2-byte big-endian length of the AAD ||
/// AAD || 1-byte length of the ciphertextMetadata || ciphertextMetadata`.
fn gcm_aad(aad: &[u8], ciphertext_metadata: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(3 + aad.len() + ciphertext_metadata.len());
    v.extend_from_slice(&(aad.len() as u16).to_be_bytes());
    v.extend_from_slice(aad);
    v.push(ciphertext_metadata.len() as u8);
    v.extend_from_slice(ciphertext_metadata);
    v
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Base64 (RFC 4648 section 4: standard alphabet, `=` padding).
pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk.iter().fold(0u32, |acc, b| (acc << 8) | *b as u32) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Strict Base64 (RFC 4648 section 4): standard alphabet, padded to a multiple of 4, `=` only at
/// the end, unused bits zero; no whitespace.
pub fn base64_decode(s: &str) -> Result<Vec<u8>, String> {
    let b = s.as_bytes();
    if b.len() % 4 != 0 {
        return Err(format!("{} characters, not a multiple of 4", b.len()));
    }
    let value = |c: u8| -> Option<u32> {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        Some(v as u32)
    };
    let quads = b.len() / 4;
    let mut out = Vec::with_capacity(quads * 3);
    for (i, quad) in b.chunks(4).enumerate() {
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && i + 1 != quads) {
            return Err("misplaced padding".into());
        }
        let mut n = 0u32;
        for &c in &quad[..4 - pad] {
            n = (n << 6) | value(c).ok_or("a character outside the Base64 alphabet")?;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        if bytes[3 - pad..].iter().any(|&x| x != 0) {
            return Err("non-zero bits in the padding".into());
        }
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Ok(out)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyOp {
    Metadata,
    Encrypt,
    Decrypt,
}

impl KeyOp {
    /// The `kmsOperation` values the specification lists for this API.
    fn known_operations(self) -> &'static [&'static str] {
        match self {
            KeyOp::Metadata => &["CreateKey", "DescribeKey"],
            KeyOp::Encrypt => &[
                "Encrypt",
                "ReEncrypt",
                "GenerateDataKey",
                "GenerateDataKeyWithoutPlaintext",
            ],
            KeyOp::Decrypt => &["Decrypt", "ReEncrypt"],
        }
    }
    /// The requestMetadata fields the specification marks REQUIRED for this API.
    fn required_metadata(self) -> &'static [&'static str] {
        match self {
            KeyOp::Metadata => &["awsPrincipalArn", "kmsOperation", "kmsRequestId"],
            KeyOp::Encrypt | KeyOp::Decrypt => &[
                "awsPrincipalArn",
                "kmsKeyArn",
                "kmsOperation",
                "kmsRequestId",
            ],
        }
    }
}

/// `{PATH}/keys/{id}/{metadata|encrypt|decrypt}` → (id, operation).
fn parse_key_uri(path: &str) -> Option<(&str, KeyOp)> {
    let (id, op) = path
        .strip_prefix(PATH)?
        .strip_prefix("/keys/")?
        .split_once('/')?;
    let op = match op {
        "metadata" => KeyOp::Metadata,
        "encrypt" => KeyOp::Encrypt,
        "decrypt" => KeyOp::Decrypt,
        _ => return None,
    };
    (!id.is_empty()).then_some((id, op))
}

struct TestKey {
    id: &'static str,
    spec: &'static str,
    usage: &'static [&'static str],
    enabled: bool,
    /// None for a key that is not AES.
    aes: Option<ring::aead::LessSafeKey>,
}

struct Keys {
    keys: Vec<TestKey>,
    rng: ring::rand::SystemRandom,
}

impl Keys {
    fn generate() -> Keys {
        use ring::aead::{LessSafeKey, UnboundKey, AES_256_GCM};
        use ring::rand::SecureRandom;
        let rng = ring::rand::SystemRandom::new();
        let material = || {
            let mut k = [0u8; 32];
            rng.fill(&mut k).expect("random key material");
            k
        };
        let aes = |k: &[u8; 32]| Some(LessSafeKey::new(UnboundKey::new(&AES_256_GCM, k).unwrap()));
        let both: &'static [&'static str] = &["ENCRYPT", "DECRYPT"];
        let shared = material();
        let key = |id, spec, usage, enabled, aes| TestKey {
            id,
            spec,
            usage,
            enabled,
            aes,
        };
        let keys = vec![
            key(KEY_AES, "AES_256", both, true, aes(&material())),
            key(KEY_RSA, "RSA_2048", both, true, None),
            key(KEY_DISABLED, "AES_256", both, false, aes(&material())),
            key(
                KEY_ENCRYPT_ONLY,
                "AES_256",
                &["ENCRYPT"],
                true,
                aes(&shared),
            ),
            key(
                KEY_DECRYPT_ONLY,
                "AES_256",
                &["DECRYPT"],
                true,
                aes(&shared),
            ),
        ];
        Keys { keys, rng }
    }

    fn get(&self, id: &str) -> Option<&TestKey> {
        self.keys.iter().find(|k| k.id == id)
    }
}

/// A key operation's error answer.
struct KeyError {
    status: u16,
    name: &'static str,
    message: String,
}

impl KeyError {
    /// The JSON error; the errorMessage obeys the specification (printable ASCII, under 512).
    fn response(&self) -> Response<Body> {
        let message: String = self
            .message
            .chars()
            .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
            .take(511)
            .collect();
        json_error(self.status, self.name, &message)
    }
}

fn key_error(status: u16, name: &'static str, message: &str) -> KeyError {
    KeyError {
        status,
        name,
        message: message.to_string(),
    }
}

fn invalid(message: &str) -> KeyError {
    key_error(400, "ValidationException", message)
}

type Fields = serde_json::Map<String, serde_json::Value>;

/// A string field; absent and JSON null are None.
fn string_field<'a>(obj: &'a Fields, name: &str) -> Result<Option<&'a str>, KeyError> {
    match obj.get(name) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(&format!("{name} is not a string"))),
    }
}

/// A Base64 field of at most `max` decoded bytes (`too_large`: the status and error name for
/// more).
fn base64_field(
    obj: &Fields,
    name: &str,
    max: usize,
    too_large: (u16, &'static str),
) -> Result<Option<Vec<u8>>, KeyError> {
    let Some(s) = string_field(obj, name)? else {
        return Ok(None);
    };
    let bytes = base64_decode(s).map_err(|e| invalid(&format!("{name} is not Base64: {e}")))?;
    if bytes.len() > max {
        return Err(key_error(
            too_large.0,
            too_large.1,
            &format!(
                "{name} is {} bytes, this proxy takes at most {max}",
                bytes.len()
            ),
        ));
    }
    Ok(Some(bytes))
}

fn required<T>(v: Option<T>, name: &str) -> Result<T, KeyError> {
    v.ok_or_else(|| invalid(&format!("{name} is missing")))
}

const TOO_LARGE: (u16, &str) = (501, "UnsupportedOperationException");
const MALFORMED: (u16, &str) = (400, "ValidationException");

impl Server {
    fn key_operation(&self, key_id: &str, op: KeyOp, body: &[u8]) -> Response<Body> {
        match self.key_operation_inner(key_id, op, body) {
            Ok(r) => r,
            Err(e) => e.response(),
        }
    }

    fn key_operation_inner(
        &self,
        key_id: &str,
        op: KeyOp,
        body: &[u8],
    ) -> Result<Response<Body>, KeyError> {
        let faults = &self.opts.key_faults;
        if body.is_empty() {
            return Err(invalid("the request body is empty"));
        }
        let v: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| invalid(&format!("the request body is not JSON: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| invalid("the request body is not a JSON object"))?;
        let md = obj
            .get("requestMetadata")
            .and_then(|m| m.as_object())
            .ok_or_else(|| invalid("requestMetadata is missing or not an object"))?;
        for field in op.required_metadata() {
            match string_field(md, field)? {
                Some(s) if !s.is_empty() => {}
                _ => return Err(invalid(&format!("requestMetadata.{field} is missing"))),
            }
        }
        // Optional fields must be strings when present; any other field is accepted (KMS may
        // add fields, Appendix B).
        for field in [
            "kmsKeyArn",
            "awsSourceVpc",
            "awsSourceVpce",
            "kmsViaService",
        ] {
            string_field(md, field)?;
        }
        let kms_operation = string_field(md, "kmsOperation")?.unwrap_or_default();
        if faults.reject_unknown_operation && !op.known_operations().contains(&kms_operation) {
            return Err(invalid(&format!(
                "unknown kmsOperation {kms_operation} for this API"
            )));
        }

        match op {
            KeyOp::Metadata => {
                let key = self.key(key_id)?;
                if key.id == KEY_AES {
                    if let Some(b) = &faults.metadata_override {
                        return Ok(json(200, b.clone()));
                    }
                }
                Ok(json(
                    200,
                    serde_json::json!({
                        "keySpec": key.spec,
                        "keyUsage": key.usage,
                        "keyStatus": if key.enabled { "ENABLED" } else { "DISABLED" },
                    })
                    .to_string(),
                ))
            }
            KeyOp::Encrypt => {
                let plaintext = required(
                    base64_field(obj, "plaintext", MAX_PLAINTEXT_BYTES, TOO_LARGE)?,
                    "plaintext",
                )?;
                check_algorithm(obj)?;
                let aad =
                    base64_field(obj, "additionalAuthenticatedData", MAX_AAD_BYTES, TOO_LARGE)?;
                let want_cdiv = match string_field(obj, "ciphertextDataIntegrityValueAlgorithm")? {
                    None => false,
                    Some("SHA_256") => true,
                    Some(other) => {
                        return Err(invalid(&format!(
                            "ciphertextDataIntegrityValueAlgorithm {other}, expected SHA_256"
                        )))
                    }
                };
                let aes = self.usable_key(key_id, "ENCRYPT")?;
                if want_cdiv {
                    // Appendix C: a CDIV answer follows a verifying Decrypt, which a key without
                    // DECRYPT cannot do (AWS's XKS proxy test client expects this refusal).
                    self.usable_key(key_id, "DECRYPT")?;
                }
                self.encrypt(aes, &plaintext, aad.as_deref(), want_cdiv)
            }
            KeyOp::Decrypt => {
                let ciphertext = required(
                    base64_field(obj, "ciphertext", MAX_PLAINTEXT_BYTES, TOO_LARGE)?,
                    "ciphertext",
                )?;
                let metadata = base64_field(
                    obj,
                    "ciphertextMetadata",
                    MAX_CIPHERTEXT_METADATA_BYTES,
                    MALFORMED,
                )?;
                check_algorithm(obj)?;
                let aad =
                    base64_field(obj, "additionalAuthenticatedData", MAX_AAD_BYTES, TOO_LARGE)?;
                let iv = required(
                    base64_field(obj, "initializationVector", usize::MAX, MALFORMED)?,
                    "initializationVector",
                )?;
                if iv.len() != 12 && iv.len() != 16 {
                    return Err(invalid(&format!(
                        "initializationVector is {} bytes, not 12 or 16",
                        iv.len()
                    )));
                }
                let tag = required(
                    base64_field(obj, "authenticationTag", usize::MAX, MALFORMED)?,
                    "authenticationTag",
                )?;
                if tag.len() != TAG_BYTES {
                    return Err(invalid(&format!(
                        "authenticationTag is {} bytes, not {TAG_BYTES}",
                        tag.len()
                    )));
                }
                let aes = self.usable_key(key_id, "DECRYPT")?;
                let gcm = if faults.accept_changed_aad {
                    self.shared.encrypt_aads.lock().unwrap().get(&iv).cloned()
                } else {
                    None
                };
                let gcm = gcm.unwrap_or_else(|| {
                    gcm_aad(
                        aad.as_deref().unwrap_or(&[]),
                        metadata.as_deref().unwrap_or(&[]),
                    )
                });
                match open(aes, &iv, &gcm, &ciphertext, &tag) {
                    Some(plaintext) => Ok(json(
                        200,
                        serde_json::json!({ "plaintext": base64_encode(&plaintext) }).to_string(),
                    )),
                    None => Err(key_error(
                        400,
                        "InvalidCiphertextException",
                        "the ciphertext, initialization vector, additional authenticated data, \
                         ciphertext metadata or authentication tag does not authenticate",
                    )),
                }
            }
        }
    }

    fn key(&self, key_id: &str) -> Result<&TestKey, KeyError> {
        self.keys.get(key_id).ok_or_else(|| {
            key_error(
                404,
                "KeyNotFoundException",
                &format!("no external key {key_id}"),
            )
        })
    }

    /// The AES key for Encrypt (`usage` ENCRYPT) or Decrypt (DECRYPT), or the error the
    /// specification names: disabled → InvalidStateException; not AES or without that usage →
    /// InvalidKeyUsageException.
    fn usable_key(&self, key_id: &str, usage: &str) -> Result<&ring::aead::LessSafeKey, KeyError> {
        let key = self.key(key_id)?;
        if !key.enabled {
            return Err(key_error(
                400,
                "InvalidStateException",
                &format!("external key {key_id} is disabled"),
            ));
        }
        let Some(aes) = key.aes.as_ref() else {
            return Err(key_error(
                400,
                "InvalidKeyUsageException",
                &format!("external key {key_id} is {}, not AES_256", key.spec),
            ));
        };
        if !key.usage.contains(&usage) {
            return Err(key_error(
                400,
                "InvalidKeyUsageException",
                &format!("external key {key_id} does not allow {usage}"),
            ));
        }
        Ok(aes)
    }

    fn encrypt(
        &self,
        aes: &ring::aead::LessSafeKey,
        plaintext: &[u8],
        aad: Option<&[u8]>,
        want_cdiv: bool,
    ) -> Result<Response<Body>, KeyError> {
        use ring::aead::{Aad, Nonce};
        use ring::rand::SecureRandom;
        let internal = |m: &str| key_error(500, "InternalException", m);
        let metadata = self.opts.ciphertext_metadata.as_deref();
        let aad_bytes = aad.unwrap_or(&[]);
        let gcm = gcm_aad(aad_bytes, metadata.unwrap_or(&[]));
        let mut iv = [0u8; IV_BYTES];
        self.keys
            .rng
            .fill(&mut iv)
            .map_err(|_| internal("no random IV"))?;
        let mut ciphertext = plaintext.to_vec();
        let tag = aes
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(iv),
                Aad::from(&gcm),
                &mut ciphertext,
            )
            .map_err(|_| internal("AES-GCM encryption failed"))?;
        let tag = tag.as_ref().to_vec();
        // Appendix C: the CDIV is computed before the proxy checks that the output decrypts.
        let cdiv_value = want_cdiv.then(|| {
            let right = cdiv(aad_bytes, metadata.unwrap_or(&[]), &iv, &ciphertext, &tag);
            if self.opts.key_faults.wrong_cdiv {
                wrong_cdiv(&right, &iv, &ciphertext, &tag)
            } else {
                right
            }
        });
        if open(aes, &iv, &gcm, &ciphertext, &tag).as_deref() != Some(plaintext) {
            return Err(internal("the encryption output does not decrypt"));
        }
        if self.opts.key_faults.accept_changed_aad {
            self.shared
                .encrypt_aads
                .lock()
                .unwrap()
                .insert(iv.to_vec(), gcm);
        }
        let mut out = serde_json::json!({
            "authenticationTag": base64_encode(&tag),
            "ciphertext": base64_encode(&ciphertext),
            "initializationVector": base64_encode(&iv),
        });
        if let Some(m) = metadata {
            out["ciphertextMetadata"] = base64_encode(m).into();
        }
        if let Some(c) = cdiv_value {
            out["ciphertextDataIntegrityValue"] = c.into();
        }
        Ok(json(200, out.to_string()))
    }
}

fn check_algorithm(obj: &Fields) -> Result<(), KeyError> {
    match string_field(obj, "encryptionAlgorithm")? {
        Some("AES_GCM") => Ok(()),
        Some(other) => Err(invalid(&format!(
            "encryptionAlgorithm {other}, expected AES_GCM"
        ))),
        None => Err(invalid("encryptionAlgorithm is missing")),
    }
}

/// AES-256-GCM decryption; None if it does not authenticate (or the IV is not 12 bytes: this
/// proxy never makes 16-byte IVs).
fn open(
    aes: &ring::aead::LessSafeKey,
    iv: &[u8],
    gcm_aad: &[u8],
    ciphertext: &[u8],
    tag: &[u8],
) -> Option<Vec<u8>> {
    use ring::aead::{Aad, Nonce, Tag};
    let nonce = Nonce::try_assume_unique_for_key(iv).ok()?;
    let tag = Tag::try_from(tag).ok()?;
    let mut buf = ciphertext.to_vec();
    let n = aes
        .open_in_place_separate_tag(nonce, Aad::from(gcm_aad), tag, &mut buf, 0..)
        .ok()?
        .len();
    buf.truncate(n);
    Some(buf)
}

/// [`KeyFaults::wrong_cdiv`]: ciphertext || IV || tag, without AAD or ciphertextMetadata.
fn wrong_cdiv(right: &str, iv: &[u8], ciphertext: &[u8], tag: &[u8]) -> String {
    let mut h = Sha256::new();
    for part in [ciphertext, iv, tag] {
        h.update(part);
    }
    let mut digest = h.finalize().to_vec();
    if base64_encode(&digest) == right {
        digest[31] ^= 1;
    }
    base64_encode(&digest)
}

// ---------------------------------------------------------------------------------------------
// SigV4 verification, written from the AWS specification (independent of aws-sigv4)

type HmacSha256 = hmac::Hmac<Sha256>;

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    use hmac::Mac;
    let mut mac = HmacSha256::new_from_slice(key).expect("any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// URI-encodes every byte except the unreserved characters A-Z a-z 0-9 - . _ ~
fn uri_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Some(v) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Canonical URI for a non-S3 service: dot segments removed, each segment of the path as sent
/// (already percent-encoded) URI-encoded again.
fn canonical_uri(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for seg in path.split('/').skip(1) {
        match seg {
            "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let encoded: Vec<String> = segments.iter().map(|s| uri_encode(s)).collect();
    format!("/{}", encoded.join("/"))
}

fn canonical_query(query: Option<&str>) -> String {
    let mut pairs: Vec<(String, String)> = query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&percent_decode(k)),
                uri_encode(&percent_decode(v)),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn normalize_header_value(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Seconds since the epoch of an x-amz-date value `YYYYMMDDTHHMMSSZ`.
fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    if !s[..8]
        .bytes()
        .chain(s[9..15].bytes())
        .all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s[r].parse::<i64>().ok();
    let (y, mo, d) = (n(0..4)?, n(4..6)?, n(6..8)?);
    let (h, mi, se) = (n(9..11)?, n(11..13)?, n(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(days * 86400 + h * 3600 + mi * 60 + se)
}

/// The credentials, Region and service a SigV4 verifier accepts.
#[derive(Clone, Copy, Debug)]
pub struct SigV4Key<'a> {
    pub access_key_id: &'a str,
    pub secret: &'a str,
    pub region: &'a str,
    pub service: &'a str,
}

/// What this proxy accepts: [`ACCESS_KEY_ID`], [`SECRET`], [`REGION`], [`SERVICE`].
pub const PROXY_KEY: SigV4Key<'static> = SigV4Key {
    access_key_id: ACCESS_KEY_ID,
    secret: SECRET,
    region: REGION,
    service: SERVICE,
};

/// Verifies an `Authorization: AWS4-HMAC-SHA256 …` header against this proxy's credentials,
/// Region and service, with the payload hash computed from `body`, and x-amz-date within
/// [`MAX_SKEW_SECS`] of `now_secs`.
pub fn verify_sigv4(
    method: &str,
    uri: &hyper::Uri,
    headers: &HeaderMap,
    body: &[u8],
    now_secs: i64,
) -> Result<(), String> {
    verify_sigv4_with(&PROXY_KEY, method, uri, headers, body, now_secs)
}

/// [`verify_sigv4`] for any key (the self-test runs AWS's published SigV4 test vectors with it).
/// Signed headers must include `host` and `x-amz-date`; any other signed header is accepted if
/// it is present in the request.
pub fn verify_sigv4_with(
    key: &SigV4Key<'_>,
    method: &str,
    uri: &hyper::Uri,
    headers: &HeaderMap,
    body: &[u8],
    now_secs: i64,
) -> Result<(), String> {
    let auth = headers
        .get(hyper::header::AUTHORIZATION)
        .ok_or("missing Authorization header")?
        .to_str()
        .map_err(|_| "Authorization header is not ASCII")?;
    let rest = auth
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or("Authorization is not AWS4-HMAC-SHA256")?;
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        if let Some((k, v)) = part.trim().split_once('=') {
            match k.trim() {
                "Credential" => credential = Some(v.trim()),
                "SignedHeaders" => signed_headers = Some(v.trim()),
                "Signature" => signature = Some(v.trim()),
                _ => {}
            }
        }
    }
    let credential = credential.ok_or("Authorization has no Credential")?;
    let signed_headers = signed_headers.ok_or("Authorization has no SignedHeaders")?;
    let signature = signature.ok_or("Authorization has no Signature")?;

    let scope: Vec<&str> = credential.split('/').collect();
    if scope.len() != 5 {
        return Err(format!("malformed Credential {credential}"));
    }
    let (akid, scope_date, region, service, terminator) =
        (scope[0], scope[1], scope[2], scope[3], scope[4]);
    if akid != key.access_key_id {
        return Err(format!("unknown access key id {akid}"));
    }
    if region != key.region {
        return Err(format!(
            "credential scope Region {region}, this proxy is for {}",
            key.region
        ));
    }
    if service != key.service {
        return Err(format!(
            "credential scope service {service}, expected {}",
            key.service
        ));
    }
    if terminator != "aws4_request" {
        return Err(format!("credential scope ends with {terminator}"));
    }

    let names: Vec<&str> = signed_headers.split(';').collect();
    for required in ["host", "x-amz-date"] {
        if !names.contains(&required) {
            return Err(format!("SignedHeaders {signed_headers} lacks {required}"));
        }
    }
    let mut canonical_headers = String::new();
    for name in &names {
        if name.is_empty() || *name != name.to_ascii_lowercase() {
            return Err(format!("malformed SignedHeaders {signed_headers}"));
        }
        let values: Vec<String> = headers
            .get_all(*name)
            .iter()
            .map(|v| normalize_header_value(&String::from_utf8_lossy(v.as_bytes())))
            .collect();
        if values.is_empty() {
            return Err(format!("signed header {name} is not in the request"));
        }
        canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }

    let amz_date = headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or("missing x-amz-date header")?;
    let t = parse_amz_date(amz_date).ok_or(format!("malformed x-amz-date {amz_date}"))?;
    if &amz_date[..8] != scope_date {
        return Err(format!(
            "credential scope date {scope_date} does not match x-amz-date {amz_date}"
        ));
    }
    let skew = t - now_secs;
    if skew.abs() > MAX_SKEW_SECS {
        return Err(format!(
            "signature expired or not yet valid: x-amz-date {amz_date} is {skew} s from the proxy's clock (limit {MAX_SKEW_SECS} s)"
        ));
    }

    let payload_hash = sha256_hex(body);
    if let Some(declared) = headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
    {
        if declared != payload_hash {
            return Err(format!(
                "x-amz-content-sha256 {declared} is not the SHA-256 of the body"
            ));
        }
    }
    let canonical_request = format!(
        "{method}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{payload_hash}",
        canonical_uri(uri.path()),
        canonical_query(uri.query()),
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope_date}/{region}/{service}/aws4_request\n{}",
        sha256_hex(canonical_request.as_bytes())
    );
    let k_date = hmac_sha256(
        format!("AWS4{}", key.secret).as_bytes(),
        scope_date.as_bytes(),
    );
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, service.as_bytes());
    let k_signing = hmac_sha256(&k_service, b"aws4_request");
    let expected = hex(&hmac_sha256(&k_signing, string_to_sign.as_bytes()));
    if expected != signature {
        return Err(
            "the request signature does not match (wrong secret, or the request was altered)"
                .into(),
        );
    }
    Ok(())
}
