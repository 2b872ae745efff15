//! Self-test of the test XKS proxy (tests/it/support/xks_proxy.rs): a minimal HTTPS client signs
//! with aws-sigv4 (so this is also an interoperability test between aws-sigv4 and the proxy's
//! independent verifier), and the verifier is checked against AWS's published SigV4 vectors.

use crate::support::xks_proxy;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::Request;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::ring::cipher_suite as cs;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use xks_proxy::*;

// ---------------------------------------------------------------------------------------------
// A minimal client

fn provider(suites: Option<Vec<rustls::SupportedCipherSuite>>) -> Arc<CryptoProvider> {
    let mut p = rustls::crypto::ring::default_provider();
    if let Some(s) = suites {
        p.cipher_suites = s;
    }
    Arc::new(p)
}

fn roots(pem: &str) -> RootCertStore {
    let mut store = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        store.add(cert.expect("root PEM")).expect("root cert");
    }
    store
}

fn client_config(root_pem: &str) -> Arc<ClientConfig> {
    Arc::new(
        ClientConfig::builder_with_provider(provider(None))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots(root_pem))
            .with_no_client_auth(),
    )
}

async fn tls_connect(
    proxy: &TestProxy,
    config: Arc<ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(proxy.addr).await?;
    TlsConnector::from(config)
        .connect(ServerName::try_from(HOST).unwrap(), tcp)
        .await
}

async fn http(stream: TlsStream<TcpStream>) -> SendRequest<Full<Bytes>> {
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("http1 handshake");
    tokio::spawn(conn);
    sender
}

async fn connect(proxy: &TestProxy) -> SendRequest<Full<Bytes>> {
    http(
        tls_connect(proxy, client_config(&proxy.root_ca_pem()))
            .await
            .expect("TLS handshake"),
    )
    .await
}

fn health_request_body() -> String {
    serde_json::json!({
        "requestMetadata": {
            "kmsRequestId": uuid::Uuid::new_v4().to_string(),
            "kmsOperation": "CreateCustomKeyStore",
        }
    })
    .to_string()
}

#[derive(Clone, Copy)]
enum Signing<'a> {
    Unsigned,
    Signed { secret: &'a str, time: SystemTime },
}

const SIGNED: Signing<'static> = Signing::Signed {
    secret: SECRET,
    time: SystemTime::UNIX_EPOCH, // replaced by now() in `request`
};

fn request(method: &str, path: &str, body: &str, signing: Signing<'_>) -> Request<Full<Bytes>> {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", HOST)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    if let Signing::Signed { secret, time } = signing {
        let time = if time == SystemTime::UNIX_EPOCH {
            SystemTime::now()
        } else {
            time
        };
        sigv4_sign(&mut req, body.as_bytes(), secret, time);
    }
    req
}

/// Signs with aws-sigv4, exactly as an AWS SDK would (it signs content-type too).
fn sigv4_sign(req: &mut Request<Full<Bytes>>, body: &[u8], secret: &str, time: SystemTime) {
    let identity = Credentials::new(ACCESS_KEY_ID, secret, None, None, "selftest").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name(SERVICE)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let url = format!("{ENDPOINT}{}", req.uri());
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap().to_string()))
        .collect();
    let signable = SignableRequest::new(
        req.method().as_str(),
        url,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    for (name, value) in instructions.headers() {
        req.headers_mut().insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    fn error_name(&self) -> String {
        self.json()["errorName"].as_str().unwrap_or("").to_string()
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

async fn send(sender: &mut SendRequest<Full<Bytes>>, req: Request<Full<Bytes>>) -> Answer {
    sender.ready().await.expect("connection ready");
    let resp = sender.send_request(req).await.expect("response");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

async fn health(proxy: &TestProxy, signing: Signing<'_>) -> Answer {
    let mut c = connect(proxy).await;
    send(
        &mut c,
        request("POST", HEALTH_PATH, &health_request_body(), signing),
    )
    .await
}

fn fleet_statuses(a: &Answer) -> Vec<String> {
    a.json()["ekmFleetDetails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["healthStatus"].as_str().unwrap().to_string())
        .collect()
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn date_secs(a: &Answer) -> i64 {
    let date = a.header("date").expect("Date header");
    httpdate::parse_http_date(date)
        .unwrap()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

// ---------------------------------------------------------------------------------------------
// Constants

#[test]
fn constants_follow_the_xks_patterns() {
    let akid = regex::Regex::new("^[A-Z2-7]{20,30}$").unwrap();
    assert!(akid.is_match(ACCESS_KEY_ID), "{ACCESS_KEY_ID}");
    let secret = regex::Regex::new("^[a-zA-Z0-9/+=]{43,64}$").unwrap();
    assert!(secret.is_match(SECRET), "{SECRET} ({} chars)", SECRET.len());
    assert_eq!(HEALTH_PATH, format!("{PATH}/health"));
    assert_eq!(ENDPOINT, format!("https://{HOST}"));
    assert_eq!(SERVICE, "kms-xks-proxy");
}

// ---------------------------------------------------------------------------------------------
// The verifier against AWS's published SigV4 test suite (aws-sig-v4-test-suite)

const AWS_VECTOR_KEY: SigV4Key<'static> = SigV4Key {
    access_key_id: "AKIDEXAMPLE",
    secret: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    region: "us-east-1",
    service: "service",
};
/// 2015-08-30T12:36:00Z
const AWS_VECTOR_TIME: i64 = 1_440_938_160;

fn vector(
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
    signed_headers: &str,
    signature: &str,
) -> Result<(), String> {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        map.append(
            HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    map.insert("x-amz-date", HeaderValue::from_static("20150830T123600Z"));
    map.insert(
        "authorization",
        HeaderValue::from_str(&format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders={signed_headers}, Signature={signature}"
        ))
        .unwrap(),
    );
    verify_sigv4_with(
        &AWS_VECTOR_KEY,
        method,
        &uri.parse().unwrap(),
        &map,
        body.as_bytes(),
        AWS_VECTOR_TIME,
    )
}

#[test]
fn verifier_accepts_aws_published_sigv4_vectors() {
    let host = [("Host", "example.amazonaws.com")];
    // post-vanilla
    vector(
        "POST",
        "/",
        &host,
        "",
        "host;x-amz-date",
        "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
    )
    .unwrap();
    // get-vanilla-query-order-key-case
    vector(
        "GET",
        "/?Param2=value2&Param1=value1",
        &host,
        "",
        "host;x-amz-date",
        "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
    )
    .unwrap();
    // get-header-value-trim
    vector(
        "GET",
        "/",
        &[
            ("Host", "example.amazonaws.com"),
            ("My-Header1", " value1"),
            ("My-Header2", " \"a   b   c\""),
        ],
        "",
        "host;my-header1;my-header2;x-amz-date",
        "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
    )
    .unwrap();
    // post-x-www-form-urlencoded (signed body, extra signed headers)
    vector(
        "POST",
        "/",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Host", "example.amazonaws.com"),
            ("Content-Length", "13"),
            (
                "x-amz-content-sha256",
                "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
            ),
        ],
        "Param1=value1",
        "content-length;content-type;host;x-amz-content-sha256;x-amz-date",
        "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b",
    )
    .unwrap();
}

#[test]
fn verifier_rejects_altered_vectors() {
    let host = [("Host", "example.amazonaws.com")];
    let good = "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b";
    // another body
    let e = vector("POST", "/", &host, "x", "host;x-amz-date", good).unwrap_err();
    assert!(e.contains("does not match"), "{e}");
    // another path
    let e = vector("POST", "/a", &host, "", "host;x-amz-date", good).unwrap_err();
    assert!(e.contains("does not match"), "{e}");
    // host not signed
    let e = vector("POST", "/", &host, "", "x-amz-date", good).unwrap_err();
    assert!(e.contains("lacks host"), "{e}");
    // a signed header that is not in the request
    let e = vector("POST", "/", &host, "", "host;x-amz-date;x-foo", good).unwrap_err();
    assert!(e.contains("x-foo"), "{e}");
    // far from the verifier's clock
    let mut map = HeaderMap::new();
    map.insert("host", HeaderValue::from_static("example.amazonaws.com"));
    map.insert("x-amz-date", HeaderValue::from_static("20150830T123600Z"));
    map.insert(
        "authorization",
        HeaderValue::from_str(&format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature={good}"
        ))
        .unwrap(),
    );
    let uri: hyper::Uri = "/".parse().unwrap();
    let v = |now| verify_sigv4_with(&AWS_VECTOR_KEY, "POST", &uri, &map, b"", now);
    v(AWS_VECTOR_TIME + 300).unwrap();
    v(AWS_VECTOR_TIME - 300).unwrap();
    assert!(v(AWS_VECTOR_TIME + 301)
        .unwrap_err()
        .contains("limit 300 s"));
    assert!(v(AWS_VECTOR_TIME - 301)
        .unwrap_err()
        .contains("limit 300 s"));
    // the proxy's own key rejects the vector's credentials
    let e = verify_sigv4("POST", &uri, &map, b"", AWS_VECTOR_TIME).unwrap_err();
    assert!(e.contains("unknown access key id"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Health and the rejections a proxy must make

#[tokio::test]
async fn signed_health_answers_200_with_the_health_document() {
    let proxy = TestProxy::start(ProxyOptions::default()).await;
    let a = health(&proxy, SIGNED).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.header("content-type"), Some("application/json"));
    let j = a.json();
    assert_eq!(j["xksProxyFleetSize"], 2);
    assert!(j["xksProxyVendor"].is_string());
    assert!(j["xksProxyModel"].is_string());
    assert!(j["ekmVendor"].is_string());
    assert_eq!(fleet_statuses(&a), ["ACTIVE", "ACTIVE"]);
    assert!((date_secs(&a) - now_secs()).abs() <= 2);

    let seen = proxy.requests();
    assert_eq!(seen.len(), 1);
    let r = &seen[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, HEALTH_PATH);
    assert_eq!(r.signature_valid, Some(true), "{:?}", r.signature_error);
    assert_eq!(r.signature_error, None);
    assert_eq!(r.status, 200);
    assert_eq!(r.connection, 1);
    assert_eq!(r.sni.as_deref(), Some(HOST));
    assert_eq!(r.header("host"), Some(HOST));
    // aws-sigv4 signs content-type too: extra signed headers are accepted.
    let auth = r.header("authorization").unwrap();
    assert!(
        auth.contains("SignedHeaders=content-type;host;x-amz-date"),
        "{auth}"
    );
    assert!(auth.contains(&format!("/{REGION}/kms-xks-proxy/aws4_request")));
    let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(
        body["requestMetadata"]["kmsOperation"],
        "CreateCustomKeyStore"
    );
    assert_eq!(proxy.handshakes(), 1);
}

#[tokio::test]
async fn unsigned_health_is_401() {
    let proxy = TestProxy::start(ProxyOptions::default()).await;
    let a = health(&proxy, Signing::Unsigned).await;
    assert_eq!(a.status, 401);
    assert_eq!(a.error_name(), "AuthenticationFailedException");
    let r = &proxy.requests()[0];
    assert_eq!(r.signature_valid, None);
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn wrong_secret_is_401() {
    let proxy = TestProxy::start(ProxyOptions::default()).await;
    let wrong = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEYwJalrXUt";
    let a = health(
        &proxy,
        Signing::Signed {
            secret: wrong,
            time: SystemTime::now(),
        },
    )
    .await;
    assert_eq!(a.status, 401);
    assert_eq!(a.error_name(), "AuthenticationFailedException");
    let r = &proxy.requests()[0];
    assert_eq!(r.signature_valid, Some(false));
    assert!(r
        .signature_error
        .as_deref()
        .unwrap()
        .contains("does not match"));
}

#[tokio::test]
async fn six_minute_old_signature_is_401() {
    let proxy = TestProxy::start(ProxyOptions::default()).await;
    let a = health(
        &proxy,
        Signing::Signed {
            secret: SECRET,
            time: SystemTime::now() - Duration::from_secs(360),
        },
    )
    .await;
    assert_eq!(a.status, 401);
    assert_eq!(a.error_name(), "AuthenticationFailedException");
    assert!(a.json()["errorMessage"]
        .as_str()
        .unwrap()
        .contains("proxy's clock"));
    // Four minutes is fine.
    let a = health(
        &proxy,
        Signing::Signed {
            secret: SECRET,
            time: SystemTime::now() - Duration::from_secs(240),
        },
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
}

#[tokio::test]
async fn get_on_health_is_405() {
    let proxy = TestProxy::start(ProxyOptions::default()).await;
    let mut c = connect(&proxy).await;
    let a = send(&mut c, request("GET", HEALTH_PATH, "", SIGNED)).await;
    assert_eq!(a.status, 405);
    assert_eq!(a.header("allow"), Some("POST"));
    assert!(a.header("date").is_some());
}

#[tokio::test]
async fn wrong_path_is_404() {
    let proxy = TestProxy::start(ProxyOptions::default()).await;
    let mut c = connect(&proxy).await;
    for path in [
        "/kms/xks/v1/health",
        "/example-prefix/kms/xks/v2/health",
        "/example-prefix/kms/xks/v1/nothing",
    ] {
        let a = send(
            &mut c,
            request("POST", path, &health_request_body(), SIGNED),
        )
        .await;
        assert_eq!(a.status, 404, "{path}");
        assert_eq!(a.error_name(), "InvalidUriPathException");
    }
    // The verifier still says whether those requests were signed correctly.
    assert!(proxy
        .requests()
        .iter()
        .all(|r| r.signature_valid == Some(true)));
}

#[tokio::test]
async fn empty_or_invalid_body_is_400() {
    let proxy = TestProxy::start(ProxyOptions::default()).await;
    let mut c = connect(&proxy).await;
    for body in ["", "{", "{}", r#"{"requestMetadata":{"kmsOperation":"x"}}"#] {
        let a = send(&mut c, request("POST", HEALTH_PATH, body, SIGNED)).await;
        assert_eq!(a.status, 400, "{body:?}");
        assert_eq!(a.error_name(), "ValidationException");
    }
    // Unsigned, the signature is checked first.
    let a = send(&mut c, request("POST", HEALTH_PATH, "", Signing::Unsigned)).await;
    assert_eq!(a.status, 401);
}

#[tokio::test]
async fn key_apis_exist_but_are_not_implemented() {
    let proxy = TestProxy::start(ProxyOptions::default()).await;
    let mut c = connect(&proxy).await;
    let path = format!("{PATH}/keys/key-1/metadata");
    let a = send(&mut c, request("GET", &path, "", SIGNED)).await;
    assert_eq!(a.status, 405);
    let a = send(
        &mut c,
        request("POST", &path, &health_request_body(), SIGNED),
    )
    .await;
    assert_eq!(a.status, 501);
    assert_eq!(a.error_name(), "UnsupportedOperationException");
}

#[tokio::test]
async fn keep_alive_serves_several_requests_on_one_connection() {
    let proxy = TestProxy::start(ProxyOptions::default()).await;
    let mut c = connect(&proxy).await;
    for _ in 0..3 {
        let a = send(
            &mut c,
            request("POST", HEALTH_PATH, &health_request_body(), SIGNED),
        )
        .await;
        assert_eq!(a.status, 200);
    }
    let a = send(&mut c, request("GET", HEALTH_PATH, "", SIGNED)).await;
    assert_eq!(a.status, 405);
    assert_eq!(proxy.handshakes(), 1);
    let seen = proxy.requests();
    assert_eq!(seen.len(), 4);
    assert!(seen.iter().all(|r| r.connection == 1));
    // A second connection is a second handshake.
    let _ = health(&proxy, SIGNED).await;
    assert_eq!(proxy.handshakes(), 2);
    assert_eq!(proxy.requests()[4].connection, 2);
}

// ---------------------------------------------------------------------------------------------
// Modes

#[tokio::test]
async fn degraded_and_unavailable_fleets() {
    let proxy = TestProxy::start(ProxyOptions::mode(Mode::Degraded)).await;
    let a = health(&proxy, SIGNED).await;
    assert_eq!(a.status, 200);
    assert_eq!(fleet_statuses(&a), ["ACTIVE", "DEGRADED"]);

    let proxy = TestProxy::start(ProxyOptions::mode(Mode::AllUnavailable)).await;
    let a = health(&proxy, SIGNED).await;
    assert_eq!(a.status, 200);
    assert_eq!(fleet_statuses(&a), ["UNAVAILABLE", "UNAVAILABLE"]);
}

#[tokio::test]
async fn error_mode_answers_the_json_error_shape() {
    for (status, name) in [
        (400, "ValidationException"),
        (400, "InvalidStateException"),
        (401, "AuthenticationFailedException"),
        (403, "AccessDeniedException"),
        (404, "InvalidUriPathException"),
        (429, "ThrottlingException"),
        (500, "InternalException"),
        (501, "UnsupportedOperationException"),
        (503, "DependencyTimeoutException"),
    ] {
        let proxy = TestProxy::start(ProxyOptions::mode(Mode::Error {
            status,
            error_name: name,
        }))
        .await;
        let a = health(&proxy, SIGNED).await;
        assert_eq!(a.status, status);
        assert_eq!(a.header("content-type"), Some("application/json"));
        assert_eq!(a.error_name(), name);
        assert!(a.json()["errorMessage"].is_string());
    }
}

#[tokio::test]
async fn html_error_mode_answers_a_web_page_to_everything() {
    let proxy = TestProxy::start(ProxyOptions::mode(Mode::HtmlError { status: 502 })).await;
    let mut c = connect(&proxy).await;
    for req in [
        request("POST", HEALTH_PATH, &health_request_body(), SIGNED),
        request("POST", "/elsewhere", "", Signing::Unsigned),
        request("GET", HEALTH_PATH, "", Signing::Unsigned),
    ] {
        let a = send(&mut c, req).await;
        assert_eq!(a.status, 502);
        assert_eq!(a.header("content-type"), Some("text/html"));
        assert!(a.body.contains("502 Bad Gateway"), "{}", a.body);
        assert!(serde_json::from_str::<serde_json::Value>(&a.body).is_err());
    }
}

#[tokio::test]
async fn body_mode_answers_that_exact_body() {
    for body in ["{", r#"{"xksProxyFleetSize":0}"#, "[]"] {
        let proxy = TestProxy::start(ProxyOptions::mode(Mode::Body(body.into()))).await;
        let a = health(&proxy, SIGNED).await;
        assert_eq!(a.status, 200);
        assert_eq!(a.body, body);
    }
}

#[tokio::test]
async fn slow_mode_answers_after_the_delay() {
    let proxy = TestProxy::start(ProxyOptions::mode(Mode::Slow { delay_ms: 300 })).await;
    let mut c = connect(&proxy).await;
    let t = Instant::now();
    let a = send(
        &mut c,
        request("POST", HEALTH_PATH, &health_request_body(), SIGNED),
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(fleet_statuses(&a), ["ACTIVE", "ACTIVE"]);
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn accept_unsigned_mode_answers_200_without_a_signature() {
    let proxy = TestProxy::start(ProxyOptions::mode(Mode::AcceptUnsigned)).await;
    let a = health(&proxy, Signing::Unsigned).await;
    assert_eq!(a.status, 200);
    let a = health(
        &proxy,
        Signing::Signed {
            secret: "wrongwrongwrongwrongwrongwrongwrongwrongwrong",
            time: SystemTime::now(),
        },
    )
    .await;
    assert_eq!(a.status, 200);
    let seen = proxy.requests();
    assert_eq!(seen[0].signature_valid, None);
    assert_eq!(seen[1].signature_valid, Some(false));
    // Still routes and validates.
    let mut c = connect(&proxy).await;
    let a = send(&mut c, request("POST", "/nope", "", Signing::Unsigned)).await;
    assert_eq!(a.status, 404);
    let a = send(&mut c, request("POST", HEALTH_PATH, "", Signing::Unsigned)).await;
    assert_eq!(a.status, 400);
}

#[tokio::test]
async fn trickle_mode_sends_the_healthy_body_slowly() {
    let proxy = TestProxy::start(ProxyOptions::mode(Mode::Trickle {
        bytes_per_chunk: 64,
        delay_ms: 100,
    }))
    .await;
    let expected = health_body(&["ACTIVE", "ACTIVE"]);
    let chunks = expected.len().div_ceil(64) as u32;
    assert!(chunks >= 3);
    let mut c = connect(&proxy).await;
    let t = Instant::now();
    let req = request("POST", HEALTH_PATH, &health_request_body(), SIGNED);
    c.ready().await.unwrap();
    let resp = c.send_request(req).await.unwrap();
    let first_byte = t.elapsed();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-length"].to_str().unwrap(),
        expected.len().to_string()
    );
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let total = t.elapsed();
    assert_eq!(body, expected.as_bytes());
    assert!(first_byte < Duration::from_millis(100), "{first_byte:?}");
    assert!(total >= Duration::from_millis(100) * chunks, "{total:?}");
}

#[tokio::test]
async fn date_header_follows_the_offset_and_so_does_the_skew_check() {
    let proxy = TestProxy::start(ProxyOptions {
        date_offset_secs: -600,
        ..Default::default()
    })
    .await;
    let a = health(&proxy, SIGNED).await;
    assert_eq!(a.status, 401);
    assert_eq!(a.error_name(), "AuthenticationFailedException");
    assert!((date_secs(&a) - (now_secs() - 600)).abs() <= 2);

    let proxy = TestProxy::start(ProxyOptions {
        date_offset_secs: 120,
        ..Default::default()
    })
    .await;
    let a = health(&proxy, SIGNED).await;
    assert_eq!(a.status, 200);
    assert!((date_secs(&a) - (now_secs() + 120)).abs() <= 2);
}

// ---------------------------------------------------------------------------------------------
// TLS

/// Accepts any chain and records how many certificates the server sent.
#[derive(Debug)]
struct Recorder {
    presented: Mutex<Option<usize>>,
    algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        *self.presented.lock().unwrap() = Some(1 + intermediates.len());
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

async fn presented_chain_len(proxy: &TestProxy) -> usize {
    let recorder = Arc::new(Recorder {
        presented: Mutex::new(None),
        algs: rustls::crypto::ring::default_provider().signature_verification_algorithms,
    });
    let config = ClientConfig::builder_with_provider(provider(None))
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(recorder.clone())
        .with_no_client_auth();
    tls_connect(proxy, Arc::new(config)).await.unwrap();
    let n = recorder.presented.lock().unwrap().unwrap();
    n
}

async fn handshake_error(proxy: &TestProxy) -> Option<String> {
    tls_connect(proxy, client_config(&proxy.root_ca_pem()))
        .await
        .err()
        .map(|e| e.to_string())
}

#[tokio::test]
async fn valid_chain_is_leaf_plus_intermediate() {
    let proxy = TestProxy::start(ProxyOptions::default()).await;
    assert_eq!(presented_chain_len(&proxy).await, 2);
    assert_eq!(handshake_error(&proxy).await, None);
    assert_eq!(proxy.chain_pem().matches("BEGIN CERTIFICATE").count(), 2);
    // ECDSA P-256 everywhere.
    for pem in [proxy.root_ca_pem(), proxy.chain_pem()] {
        for der in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let der = der.unwrap();
            let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
            assert_eq!(
                cert.public_key().algorithm.algorithm.to_id_string(),
                "1.2.840.10045.2.1"
            );
        }
    }
}

#[tokio::test]
async fn missing_intermediate_presents_one_certificate() {
    let proxy = TestProxy::start(ProxyOptions::cert(CertSetup::MissingIntermediate)).await;
    assert_eq!(presented_chain_len(&proxy).await, 1);
    let e = handshake_error(&proxy).await.expect("must not verify");
    assert!(e.contains("UnknownIssuer"), "{e}");
}

#[tokio::test]
async fn broken_certificates_fail_verification() {
    for (setup, needle) in [
        (CertSetup::Expired, "certificate expired"),
        (CertSetup::WrongName, "not valid for name"),
        (CertSetup::SelfSigned, "UnknownIssuer"),
    ] {
        let proxy = TestProxy::start(ProxyOptions::cert(setup.clone())).await;
        let e = handshake_error(&proxy)
            .await
            .unwrap_or_else(|| panic!("{setup:?} must not verify"));
        assert!(e.contains(needle), "{setup:?}: {e}");
    }
    for setup in [CertSetup::Wildcard, CertSetup::ExpiresSoon { days: 3 }] {
        let proxy = TestProxy::start(ProxyOptions::cert(setup.clone())).await;
        assert_eq!(handshake_error(&proxy).await, None, "{setup:?}");
    }
    let proxy = TestProxy::start(ProxyOptions::cert(CertSetup::ExpiresSoon { days: 3 })).await;
    let pem = proxy.chain_pem();
    let der = CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .unwrap()
        .unwrap();
    let (_, leaf) = x509_parser::parse_x509_certificate(&der).unwrap();
    let left = leaf.validity().not_after.timestamp() - now_secs();
    assert!((3 * 86400 - 60..=3 * 86400).contains(&left), "{left}");
}

async fn negotiated(proxy: &TestProxy) -> (String, String) {
    let _ = health(proxy, SIGNED).await;
    let r = proxy.requests().pop().unwrap();
    (r.tls_version, r.cipher_suite)
}

#[tokio::test]
async fn tls_setups_negotiate_what_they_say() {
    let p = TestProxy::start(ProxyOptions::default()).await;
    assert_eq!(negotiated(&p).await.0, "TLSv1_3");
    let p = TestProxy::start(ProxyOptions::tls(TlsSetup::Tls13Only)).await;
    assert_eq!(negotiated(&p).await.0, "TLSv1_3");
    let p = TestProxy::start(ProxyOptions::tls(TlsSetup::Tls12Only)).await;
    assert_eq!(
        negotiated(&p).await,
        (
            "TLSv1_2".to_string(),
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384".to_string()
        )
    );
    let p = TestProxy::start(ProxyOptions::tls(TlsSetup::Tls12WeakSuiteOnly)).await;
    assert_eq!(
        negotiated(&p).await,
        (
            "TLSv1_2".to_string(),
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256".to_string()
        )
    );
}

#[tokio::test]
async fn weak_suite_server_refuses_a_client_offering_only_kms_suites() {
    let proxy = TestProxy::start(ProxyOptions::tls(TlsSetup::Tls12WeakSuiteOnly)).await;
    let kms_suites = vec![
        cs::TLS13_AES_256_GCM_SHA384,
        cs::TLS13_CHACHA20_POLY1305_SHA256,
        cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    ];
    let config = ClientConfig::builder_with_provider(provider(Some(kms_suites)))
        .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots(&proxy.root_ca_pem()))
        .with_no_client_auth();
    let e = tls_connect(&proxy, Arc::new(config))
        .await
        .expect_err("no common suite");
    assert!(e.to_string().contains("HandshakeFailure"), "{e}");
    assert_eq!(proxy.handshakes(), 0);
    let deadline = Instant::now() + Duration::from_secs(5);
    while proxy.handshake_errors().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let errors = proxy.handshake_errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
}

#[tokio::test]
async fn tls13_only_server_refuses_a_tls12_client() {
    let proxy = TestProxy::start(ProxyOptions::tls(TlsSetup::Tls13Only)).await;
    let config = ClientConfig::builder_with_provider(provider(None))
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(roots(&proxy.root_ca_pem()))
        .with_no_client_auth();
    assert!(tls_connect(&proxy, Arc::new(config)).await.is_err());
    assert_eq!(proxy.handshakes(), 0);
}

// ---------------------------------------------------------------------------------------------
// Lifecycle

#[tokio::test]
async fn drop_closes_the_listener_and_the_connections() {
    let proxy = TestProxy::start(ProxyOptions::default()).await;
    let addr = proxy.addr;
    assert_eq!(
        proxy.connect_to_arg(),
        format!("{HOST}:443:127.0.0.1:{}", addr.port())
    );
    let mut c = connect(&proxy).await;
    let a = send(
        &mut c,
        request("POST", HEALTH_PATH, &health_request_body(), SIGNED),
    )
    .await;
    assert_eq!(a.status, 200);
    drop(proxy);
    assert!(TcpStream::connect(addr).await.is_err(), "still listening");
    // The kept-alive connection is gone too.
    let r = c
        .send_request(request("POST", HEALTH_PATH, &health_request_body(), SIGNED))
        .await;
    assert!(r.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_from_a_multi_thread_runtime() {
    let proxy = TestProxy::start(ProxyOptions::default()).await;
    let a = health(&proxy, SIGNED).await;
    assert_eq!(a.status, 200);
}

#[test]
fn start_blocking_works_from_a_sync_test() {
    let proxy = TestProxy::start_blocking(ProxyOptions::default());
    let addr = proxy.addr;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let a = rt.block_on(health(&proxy, SIGNED));
    assert_eq!(a.status, 200);
    assert_eq!(proxy.requests().len(), 1);
    drop(proxy);
    assert!(std::net::TcpStream::connect(addr).is_err());
}
