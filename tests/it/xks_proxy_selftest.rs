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

// ---------------------------------------------------------------------------------------------
// Key operations (GetKeyMetadata, Encrypt, Decrypt)

const KEY_ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const PRINCIPAL: &str = "arn:aws:iam::111122223333:user/Alice";

fn request_metadata(kms_operation: &str) -> serde_json::Value {
    serde_json::json!({
        "awsPrincipalArn": PRINCIPAL,
        "kmsKeyArn": KEY_ARN,
        "kmsOperation": kms_operation,
        "kmsRequestId": uuid::Uuid::new_v4().to_string(),
    })
}

fn metadata_request(kms_operation: &str) -> serde_json::Value {
    serde_json::json!({ "requestMetadata": request_metadata(kms_operation) })
}

fn encrypt_request(plaintext: &[u8], aad: Option<&[u8]>, cdiv: bool) -> serde_json::Value {
    let mut v = serde_json::json!({
        "requestMetadata": request_metadata("Encrypt"),
        "plaintext": base64_encode(plaintext),
        "encryptionAlgorithm": "AES_GCM",
    });
    if let Some(a) = aad {
        v["additionalAuthenticatedData"] = base64_encode(a).into();
    }
    if cdiv {
        v["ciphertextDataIntegrityValueAlgorithm"] = "SHA_256".into();
    }
    v
}

/// What Encrypt answered, decoded.
#[derive(Clone, Debug)]
struct Sealed {
    ciphertext: Vec<u8>,
    iv: Vec<u8>,
    tag: Vec<u8>,
    metadata: Option<Vec<u8>>,
    cdiv: Option<String>,
}

impl Sealed {
    fn from(a: &Answer) -> Sealed {
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(a.header("content-type"), Some("application/json"));
        let j = a.json();
        let field = |n: &str| {
            j[n].as_str()
                .map(|s| base64_decode(s).unwrap_or_else(|e| panic!("{n} {s:?}: {e}")))
        };
        Sealed {
            ciphertext: field("ciphertext").expect("ciphertext"),
            iv: field("initializationVector").expect("initializationVector"),
            tag: field("authenticationTag").expect("authenticationTag"),
            metadata: field("ciphertextMetadata"),
            cdiv: j["ciphertextDataIntegrityValue"]
                .as_str()
                .map(str::to_string),
        }
    }

    fn decrypt_request(&self, aad: Option<&[u8]>) -> serde_json::Value {
        let mut v = serde_json::json!({
            "requestMetadata": request_metadata("Decrypt"),
            "ciphertext": base64_encode(&self.ciphertext),
            "encryptionAlgorithm": "AES_GCM",
            "initializationVector": base64_encode(&self.iv),
            "authenticationTag": base64_encode(&self.tag),
        });
        if let Some(a) = aad {
            v["additionalAuthenticatedData"] = base64_encode(a).into();
        }
        if let Some(m) = &self.metadata {
            v["ciphertextMetadata"] = base64_encode(m).into();
        }
        v
    }
}

async fn key_call(
    c: &mut SendRequest<Full<Bytes>>,
    key: &str,
    op: &str,
    body: &serde_json::Value,
) -> Answer {
    send(
        c,
        request("POST", &key_path(key, op), &body.to_string(), SIGNED),
    )
    .await
}

async fn encrypt(
    c: &mut SendRequest<Full<Bytes>>,
    key: &str,
    plaintext: &[u8],
    aad: Option<&[u8]>,
    cdiv: bool,
) -> Sealed {
    Sealed::from(&key_call(c, key, "encrypt", &encrypt_request(plaintext, aad, cdiv)).await)
}

async fn decrypt(
    c: &mut SendRequest<Full<Bytes>>,
    key: &str,
    sealed: &Sealed,
    aad: Option<&[u8]>,
) -> Answer {
    key_call(c, key, "decrypt", &sealed.decrypt_request(aad)).await
}

fn plaintext_of(a: &Answer) -> Vec<u8> {
    assert_eq!(a.status, 200, "{}", a.body);
    let j = a.json();
    assert_eq!(j.as_object().unwrap().len(), 1, "{}", a.body);
    base64_decode(j["plaintext"].as_str().expect("plaintext")).unwrap()
}

fn assert_error(a: &Answer, status: u16, name: &str, what: &str) {
    assert_eq!(a.status, status, "{what}: {}", a.body);
    assert_eq!(a.error_name(), name, "{what}: {}", a.body);
    let message = a.json()["errorMessage"].as_str().unwrap_or("").to_string();
    assert!(
        message.len() < 512 && message.bytes().all(|b| (0x20..=0x7e).contains(&b)),
        "{what}: errorMessage {message:?}"
    );
}

/// SHA-256 over the parts, computed here (sha2), compared with the decoded CDIV.
fn assert_cdiv(cdiv: &str, parts: &[&[u8]]) {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update(p);
    }
    let expected = h.finalize().to_vec();
    assert_eq!(base64_decode(cdiv).unwrap(), expected, "CDIV {cdiv}");
}

#[test]
fn base64_helpers_follow_rfc4648() {
    // RFC 4648 section 10 test vectors.
    for (raw, enc) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
        // The specification's examples.
        ("Hello World!", "SGVsbG8gV29ybGQh"),
        (
            "project=nile,department=marketing",
            "cHJvamVjdD1uaWxlLGRlcGFydG1lbnQ9bWFya2V0aW5n",
        ),
        ("key_version=1", "a2V5X3ZlcnNpb249MQ=="),
    ] {
        assert_eq!(base64_encode(raw.as_bytes()), enc);
        assert_eq!(base64_decode(enc).unwrap(), raw.as_bytes());
    }
    let all: Vec<u8> = (0..=255).collect();
    assert_eq!(base64_decode(&base64_encode(&all)).unwrap(), all);
    assert!(base64_encode(&[0xfb, 0xff]).contains('+') && base64_encode(&[0xff]).contains('/'));
    for bad in [
        "Zg", "Zg=", "Z===", "Zh==", "Zm9=", "Zm9v!", "Zg==Zg==", "Zm 9v", "Zm9v\n", "Zm-_",
    ] {
        assert!(base64_decode(bad).is_err(), "{bad:?} must not decode");
    }
}

#[test]
fn cdiv_matches_the_specification_example() {
    // Appendix C: 33 bytes of AAD, 13 of ciphertextMetadata, 12 of IV, 12 of ciphertext, 16 of
    // tag; SHA-256 a8703f22…5ec7.
    let aad = b"project=nile,department=marketing";
    let metadata = b"key_version=1";
    let iv = base64_decode("HMrlRw85cAJUd5Ax").unwrap();
    let ciphertext = base64_decode("ghxkK1txeDNn3q8Y").unwrap();
    let tag = base64_decode("vBxN2ncH1oEkR8WVXpmyYQ==").unwrap();
    assert_eq!(
        (
            aad.len(),
            metadata.len(),
            iv.len(),
            ciphertext.len(),
            tag.len()
        ),
        (33, 13, 12, 12, 16)
    );
    let value = cdiv(aad, metadata, &iv, &ciphertext, &tag);
    assert_eq!(value, "qHA/ImC9h5HsLRXqCyPmWgYx7tzyoTplzILbP0fPXsc=");
    let hex: String = base64_decode(&value)
        .unwrap()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        hex,
        "a8703f2260bd8791ec2d15ea0b23e65a0631eedcf2a13a65cc82db3f47cf5ec7"
    );
    assert_cdiv(&value, &[aad, metadata, &iv, &ciphertext, &tag]);
}

#[tokio::test]
async fn key_metadata_for_each_key() {
    let proxy = TestProxy::start(ProxyOptions::default()).await;
    let mut c = connect(&proxy).await;
    let both = ["ENCRYPT", "DECRYPT"];
    for (key, spec, usage, status) in [
        (KEY_AES, "AES_256", &both[..], "ENABLED"),
        (KEY_RSA, "RSA_2048", &both[..], "ENABLED"),
        (KEY_DISABLED, "AES_256", &both[..], "DISABLED"),
        (KEY_ENCRYPT_ONLY, "AES_256", &["ENCRYPT"][..], "ENABLED"),
        (KEY_DECRYPT_ONLY, "AES_256", &["DECRYPT"][..], "ENABLED"),
    ] {
        let a = key_call(&mut c, key, "metadata", &metadata_request("DescribeKey")).await;
        assert_eq!(a.status, 200, "{key}: {}", a.body);
        assert_eq!(a.header("content-type"), Some("application/json"));
        assert_eq!(
            a.json(),
            serde_json::json!({"keySpec": spec, "keyUsage": usage, "keyStatus": status}),
            "{key}"
        );
    }
    assert_eq!(KEY_IDS.len(), 5);
    // CreateKey: KMS sends no kmsKeyArn (the key does not exist yet).
    let mut create = metadata_request("CreateKey");
    create["requestMetadata"]
        .as_object_mut()
        .unwrap()
        .remove("kmsKeyArn");
    let a = key_call(&mut c, KEY_AES, "metadata", &create).await;
    assert_eq!(a.status, 200, "{}", a.body);
    // Unknown key.
    for op in ["metadata", "encrypt", "decrypt"] {
        let body = match op {
            "metadata" => metadata_request("DescribeKey"),
            "encrypt" => encrypt_request(b"x", None, false),
            _ => Sealed {
                ciphertext: vec![1],
                iv: vec![0; 12],
                tag: vec![0; 16],
                metadata: None,
                cdiv: None,
            }
            .decrypt_request(None),
        };
        let a = key_call(&mut c, "no-such-key", op, &body).await;
        assert_error(&a, 404, "KeyNotFoundException", op);
    }
}

#[tokio::test]
async fn key_uris_are_routed_before_method_and_signature_checks() {
    let proxy = TestProxy::start(ProxyOptions::default()).await;
    let mut c = connect(&proxy).await;
    let path = key_path(KEY_AES, "metadata");
    assert_eq!(path, format!("{PATH}/keys/{KEY_AES}/metadata"));
    let a = send(&mut c, request("GET", &path, "", SIGNED)).await;
    assert_eq!(a.status, 405);
    assert_eq!(a.header("allow"), Some("POST"));
    let body = metadata_request("DescribeKey").to_string();
    let a = send(&mut c, request("POST", &path, &body, Signing::Unsigned)).await;
    assert_error(&a, 401, "AuthenticationFailedException", "unsigned");
    // Unsigned with an invalid body: the signature is checked first.
    let a = send(&mut c, request("POST", &path, "{", Signing::Unsigned)).await;
    assert_eq!(a.status, 401);
    for bad in [
        format!("{PATH}/keys/{KEY_AES}/sign"),
        format!("{PATH}/keys//metadata"),
        format!("{PATH}/keys/{KEY_AES}/metadata/x"),
        format!("{PATH}/keys/{KEY_AES}"),
    ] {
        let a = send(&mut c, request("POST", &bad, &body, SIGNED)).await;
        assert_error(&a, 404, "InvalidUriPathException", &bad);
    }
    // Body validation comes before the key lookup.
    let a = send(
        &mut c,
        request("POST", &key_path("no-such-key", "metadata"), "{}", SIGNED),
    )
    .await;
    assert_error(&a, 400, "ValidationException", "unknown key, bad body");
}

#[tokio::test]
async fn encrypt_decrypt_round_trip_with_and_without_aad() {
    let proxy = TestProxy::start(ProxyOptions::default()).await;
    let mut c = connect(&proxy).await;
    let plaintext = b"a 32-byte data key, more or less";
    for aad in [None, Some(&b"project=nile,department=marketing"[..])] {
        let a = key_call(
            &mut c,
            KEY_AES,
            "encrypt",
            &encrypt_request(plaintext, aad, false),
        )
        .await;
        let mut keys: Vec<String> = a.json().as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            ["authenticationTag", "ciphertext", "initializationVector"],
            "no CDIV unless asked, no ciphertextMetadata by default"
        );
        let sealed = Sealed::from(&a);
        assert_eq!(sealed.iv.len(), 12);
        assert_eq!(sealed.tag.len(), 16);
        assert_eq!(sealed.ciphertext.len(), plaintext.len());
        assert_ne!(&sealed.ciphertext[..], &plaintext[..]);
        let a = decrypt(&mut c, KEY_AES, &sealed, aad).await;
        assert_eq!(plaintext_of(&a), plaintext, "{aad:?}");
        // A second encryption draws another IV.
        let again = encrypt(&mut c, KEY_AES, plaintext, aad, false).await;
        assert_ne!(again.iv, sealed.iv);
        assert_ne!(again.ciphertext, sealed.ciphertext);
    }
    // An empty AAD is the same as none; the empty plaintext works too.
    let sealed = encrypt(&mut c, KEY_AES, b"", Some(b""), false).await;
    assert!(sealed.ciphertext.is_empty());
    assert_eq!(
        plaintext_of(&decrypt(&mut c, KEY_AES, &sealed, None).await),
        b""
    );
    // Every kmsOperation KMS uses for Encrypt and Decrypt.
    for op in [
        "Encrypt",
        "ReEncrypt",
        "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext",
    ] {
        let mut body = encrypt_request(b"k", None, false);
        body["requestMetadata"]["kmsOperation"] = op.into();
        let sealed = Sealed::from(&key_call(&mut c, KEY_AES, "encrypt", &body).await);
        let mut body = sealed.decrypt_request(None);
        body["requestMetadata"]["kmsOperation"] = "ReEncrypt".into();
        assert_eq!(
            plaintext_of(&key_call(&mut c, KEY_AES, "decrypt", &body).await),
            b"k"
        );
    }
}

#[tokio::test]
async fn largest_plaintext_and_aad_the_specification_requires() {
    let proxy = TestProxy::start(ProxyOptions::default()).await;
    let mut c = connect(&proxy).await;
    let plaintext: Vec<u8> = (0..MAX_PLAINTEXT_BYTES).map(|i| (i * 7) as u8).collect();
    let aad: Vec<u8> = (0..MAX_AAD_BYTES).map(|i| (i * 13) as u8).collect();
    assert_eq!((plaintext.len(), aad.len()), (4300, 8192));
    let sealed = encrypt(&mut c, KEY_AES, &plaintext, Some(&aad), true).await;
    assert_eq!(sealed.ciphertext.len(), 4300);
    assert_cdiv(
        sealed.cdiv.as_deref().unwrap(),
        &[&aad, &sealed.iv, &sealed.ciphertext, &sealed.tag],
    );
    let a = decrypt(&mut c, KEY_AES, &sealed, Some(&aad)).await;
    assert_eq!(plaintext_of(&a), plaintext);
    // One byte more than the specification requires: this proxy's limit (501).
    let a = key_call(
        &mut c,
        KEY_AES,
        "encrypt",
        &encrypt_request(&[0; 4301], None, false),
    )
    .await;
    assert_error(
        &a,
        501,
        "UnsupportedOperationException",
        "4301-byte plaintext",
    );
    let a = key_call(
        &mut c,
        KEY_AES,
        "encrypt",
        &encrypt_request(b"x", Some(&[0; 8193]), false),
    )
    .await;
    assert_error(&a, 501, "UnsupportedOperationException", "8193-byte AAD");
    let mut big = sealed.clone();
    big.ciphertext.push(0);
    let a = decrypt(&mut c, KEY_AES, &big, Some(&aad)).await;
    assert_error(
        &a,
        501,
        "UnsupportedOperationException",
        "4301-byte ciphertext",
    );
    let a = decrypt(&mut c, KEY_AES, &sealed, Some(&[0; 8193])).await;
    assert_error(&a, 501, "UnsupportedOperationException", "8193-byte AAD");
}

#[tokio::test]
async fn changed_aad_ciphertext_tag_or_iv_is_invalid_ciphertext() {
    let proxy = TestProxy::start(ProxyOptions::default()).await;
    let mut c = connect(&proxy).await;
    let aad = b"kms header and encryption context".to_vec();
    let sealed = encrypt(&mut c, KEY_AES, b"the data key", Some(&aad), false).await;
    let mut other_aad = aad.clone();
    other_aad[0] ^= 1;
    let flip = |v: &mut Vec<u8>, i: usize| v[i] ^= 0x80;
    let mut cases: Vec<(&str, Sealed, Option<Vec<u8>>)> = vec![
        ("changed AAD", sealed.clone(), Some(other_aad)),
        ("no AAD", sealed.clone(), None),
        (
            "longer AAD",
            sealed.clone(),
            Some([&aad[..], b"x"].concat()),
        ),
    ];
    let mut s = sealed.clone();
    flip(&mut s.ciphertext, 3);
    cases.push(("changed ciphertext", s, Some(aad.clone())));
    let mut s = sealed.clone();
    s.ciphertext.pop();
    cases.push(("truncated ciphertext", s, Some(aad.clone())));
    let mut s = sealed.clone();
    flip(&mut s.tag, 15);
    cases.push(("changed tag", s, Some(aad.clone())));
    let mut s = sealed.clone();
    flip(&mut s.iv, 0);
    cases.push(("changed IV", s, Some(aad.clone())));
    let mut s = sealed.clone();
    s.iv.extend_from_slice(&[0; 4]);
    cases.push(("16-byte IV", s, Some(aad.clone())));
    let mut s = sealed.clone();
    s.metadata = Some(b"v=1".to_vec());
    cases.push(("ciphertextMetadata added", s, Some(aad.clone())));
    for (what, s, aad) in cases {
        let a = decrypt(&mut c, KEY_AES, &s, aad.as_deref()).await;
        assert_error(&a, 400, "InvalidCiphertextException", what);
    }
    // Another key (other material) does not decrypt it either.
    let a = decrypt(&mut c, KEY_DECRYPT_ONLY, &sealed, Some(&aad)).await;
    assert_error(&a, 400, "InvalidCiphertextException", "other key");
    // Without AAD at encryption, adding one at decryption fails.
    let plain = encrypt(&mut c, KEY_AES, b"k", None, false).await;
    let a = decrypt(&mut c, KEY_AES, &plain, Some(b"x")).await;
    assert_error(&a, 400, "InvalidCiphertextException", "AAD added");
    // The GCM AAD binds the AAD's length (the specification's 2-byte length prefix): without it,
    // AAD [2, 'x'] and no metadata would authenticate as no AAD and metadata ['x', 0].
    let s = encrypt(&mut c, KEY_AES, b"k", Some(&[2, b'x']), false).await;
    let mut moved = s.clone();
    moved.metadata = Some(vec![b'x', 0]);
    let a = decrypt(&mut c, KEY_AES, &moved, None).await;
    assert_error(
        &a,
        400,
        "InvalidCiphertextException",
        "AAD moved into the metadata",
    );
    assert_eq!(
        plaintext_of(&decrypt(&mut c, KEY_AES, &s, Some(&[2, b'x'])).await),
        b"k"
    );
    // The unchanged request still decrypts.
    let a = decrypt(&mut c, KEY_AES, &sealed, Some(&aad)).await;
    assert_eq!(plaintext_of(&a), b"the data key");
}

#[tokio::test]
async fn cdiv_is_the_specification_value() {
    let proxy = TestProxy::start(ProxyOptions::default()).await;
    let mut c = connect(&proxy).await;
    let aad = b"encryption context".to_vec();
    let s = encrypt(&mut c, KEY_AES, b"data key bytes", Some(&aad), true).await;
    let value = s.cdiv.clone().expect("ciphertextDataIntegrityValue");
    assert_cdiv(&value, &[&aad, &s.iv, &s.ciphertext, &s.tag]);
    assert_eq!(value, cdiv(&aad, &[], &s.iv, &s.ciphertext, &s.tag));
    let s = encrypt(&mut c, KEY_AES, b"data key bytes", None, true).await;
    assert_cdiv(s.cdiv.as_deref().unwrap(), &[&s.iv, &s.ciphertext, &s.tag]);
    let a = decrypt(&mut c, KEY_AES, &s, None).await;
    assert_eq!(plaintext_of(&a), b"data key bytes");
}

#[tokio::test]
async fn ciphertext_metadata_is_returned_authenticated_and_in_the_cdiv() {
    let proxy = TestProxy::start(ProxyOptions {
        ciphertext_metadata: Some(b"key_version=1".to_vec()),
        ..Default::default()
    })
    .await;
    let mut c = connect(&proxy).await;
    let aad = b"project=nile,department=marketing".to_vec();
    let s = encrypt(&mut c, KEY_AES, b"Hello World!", Some(&aad), true).await;
    let metadata = s.metadata.clone().expect("ciphertextMetadata");
    assert_eq!(metadata, b"key_version=1");
    assert_cdiv(
        s.cdiv.as_deref().unwrap(),
        &[&aad, &metadata, &s.iv, &s.ciphertext, &s.tag],
    );
    assert_eq!(
        plaintext_of(&decrypt(&mut c, KEY_AES, &s, Some(&aad)).await),
        b"Hello World!"
    );
    let mut missing = s.clone();
    missing.metadata = None;
    let mut changed = s.clone();
    changed.metadata = Some(b"key_version=2".to_vec());
    for (what, sealed) in [
        ("metadata left out", missing),
        ("metadata changed", changed),
    ] {
        let a = decrypt(&mut c, KEY_AES, &sealed, Some(&aad)).await;
        assert_error(&a, 400, "InvalidCiphertextException", what);
    }
    // The specification's NOTE: encrypted without AAD, the metadata passed as AAD instead (and
    // no metadata) must not decrypt: the lengths are part of the GCM AAD.
    let s = encrypt(&mut c, KEY_AES, b"k", None, true).await;
    assert_cdiv(
        s.cdiv.as_deref().unwrap(),
        &[b"key_version=1", &s.iv, &s.ciphertext, &s.tag],
    );
    let mut moved = s.clone();
    moved.metadata = None;
    let a = decrypt(&mut c, KEY_AES, &moved, Some(b"key_version=1")).await;
    assert_error(
        &a,
        400,
        "InvalidCiphertextException",
        "metadata moved into the AAD",
    );
    assert_eq!(
        plaintext_of(&decrypt(&mut c, KEY_AES, &s, None).await),
        b"k"
    );
    // More than 20 bytes of ciphertextMetadata in a Decrypt request is invalid.
    let mut long = s.clone();
    long.metadata = Some(vec![b'm'; 21]);
    let a = decrypt(&mut c, KEY_AES, &long, None).await;
    assert_error(&a, 400, "ValidationException", "21-byte ciphertextMetadata");
}

#[tokio::test]
async fn encrypt_only_and_decrypt_only_keys() {
    let proxy = TestProxy::start(ProxyOptions::default()).await;
    let mut c = connect(&proxy).await;
    let sealed = encrypt(
        &mut c,
        KEY_ENCRYPT_ONLY,
        b"shared material",
        Some(b"ctx"),
        false,
    )
    .await;
    // A CDIV needs the verifying Decrypt of Appendix C, which this key may not do.
    for aad in [None, Some(&b"ctx"[..])] {
        let a = key_call(
            &mut c,
            KEY_ENCRYPT_ONLY,
            "encrypt",
            &encrypt_request(b"x", aad, true),
        )
        .await;
        assert_error(
            &a,
            400,
            "InvalidKeyUsageException",
            "encrypt-only with CDIV",
        );
    }
    let a = decrypt(&mut c, KEY_ENCRYPT_ONLY, &sealed, Some(b"ctx")).await;
    assert_error(
        &a,
        400,
        "InvalidKeyUsageException",
        "decrypt on encrypt-only",
    );
    let a = key_call(
        &mut c,
        KEY_DECRYPT_ONLY,
        "encrypt",
        &encrypt_request(b"x", None, false),
    )
    .await;
    assert_error(
        &a,
        400,
        "InvalidKeyUsageException",
        "encrypt on decrypt-only",
    );
    let a = decrypt(&mut c, KEY_DECRYPT_ONLY, &sealed, Some(b"ctx")).await;
    assert_eq!(plaintext_of(&a), b"shared material");
    // The pair's material is not KEY_AES's.
    let a = decrypt(&mut c, KEY_AES, &sealed, Some(b"ctx")).await;
    assert_error(&a, 400, "InvalidCiphertextException", "KEY_AES");
}

#[tokio::test]
async fn disabled_and_rsa_keys_refuse_encrypt_and_decrypt() {
    let proxy = TestProxy::start(ProxyOptions::default()).await;
    let mut c = connect(&proxy).await;
    let sealed = encrypt(&mut c, KEY_AES, b"k", None, false).await;
    for (key, status, name) in [
        (KEY_DISABLED, 400, "InvalidStateException"),
        (KEY_RSA, 400, "InvalidKeyUsageException"),
    ] {
        let a = key_call(&mut c, key, "encrypt", &encrypt_request(b"k", None, true)).await;
        assert_error(&a, status, name, &format!("{key} encrypt"));
        let a = decrypt(&mut c, key, &sealed, None).await;
        assert_error(&a, status, name, &format!("{key} decrypt"));
    }
}

#[tokio::test]
async fn key_request_bodies_are_validated() {
    let proxy = TestProxy::start(ProxyOptions::default()).await;
    let mut c = connect(&proxy).await;
    let sealed = encrypt(&mut c, KEY_AES, b"data key", Some(b"ctx"), false).await;
    let good_encrypt = encrypt_request(b"data key", Some(b"ctx"), true);
    let good_decrypt = sealed.decrypt_request(Some(b"ctx"));
    type Edit = fn(&mut serde_json::Value);
    fn remove(v: &mut serde_json::Value, path: &[&str]) {
        let (last, parents) = path.split_last().unwrap();
        let mut o = v;
        for p in parents {
            o = &mut o[*p];
        }
        o.as_object_mut().unwrap().remove(*last);
    }
    let encrypt_cases: Vec<(&str, Edit)> = vec![
        ("no requestMetadata", |v| remove(v, &["requestMetadata"])),
        ("requestMetadata a string", |v| {
            v["requestMetadata"] = "x".into()
        }),
        ("no awsPrincipalArn", |v| {
            remove(v, &["requestMetadata", "awsPrincipalArn"])
        }),
        ("no kmsKeyArn", |v| {
            remove(v, &["requestMetadata", "kmsKeyArn"])
        }),
        ("no kmsOperation", |v| {
            remove(v, &["requestMetadata", "kmsOperation"])
        }),
        ("no kmsRequestId", |v| {
            remove(v, &["requestMetadata", "kmsRequestId"])
        }),
        ("kmsViaService a number", |v| {
            v["requestMetadata"]["kmsViaService"] = 5.into()
        }),
        ("no plaintext", |v| remove(v, &["plaintext"])),
        ("plaintext not Base64", |v| {
            v["plaintext"] = "not base64!".into()
        }),
        ("plaintext unpadded", |v| v["plaintext"] = "SGVsbG8".into()),
        ("plaintext a number", |v| v["plaintext"] = 7.into()),
        ("no encryptionAlgorithm", |v| {
            remove(v, &["encryptionAlgorithm"])
        }),
        ("encryptionAlgorithm AES_CBC", |v| {
            v["encryptionAlgorithm"] = "AES_CBC".into()
        }),
        ("encryptionAlgorithm AES_GCM_256", |v| {
            v["encryptionAlgorithm"] = "AES_GCM_256".into()
        }),
        ("AAD not Base64", |v| {
            v["additionalAuthenticatedData"] = "@@@@".into()
        }),
        ("CDIV algorithm SHA_512", |v| {
            v["ciphertextDataIntegrityValueAlgorithm"] = "SHA_512".into()
        }),
        ("body an array", |v| *v = serde_json::json!([1])),
    ];
    let decrypt_cases: Vec<(&str, Edit)> = vec![
        ("no kmsKeyArn", |v| {
            remove(v, &["requestMetadata", "kmsKeyArn"])
        }),
        ("no awsPrincipalArn", |v| {
            remove(v, &["requestMetadata", "awsPrincipalArn"])
        }),
        ("no ciphertext", |v| remove(v, &["ciphertext"])),
        ("ciphertext not Base64", |v| v["ciphertext"] = "%%%%".into()),
        ("no encryptionAlgorithm", |v| {
            remove(v, &["encryptionAlgorithm"])
        }),
        ("no initializationVector", |v| {
            remove(v, &["initializationVector"])
        }),
        ("11-byte IV", |v| {
            v["initializationVector"] = base64_encode(&[0; 11]).into()
        }),
        ("13-byte IV", |v| {
            v["initializationVector"] = base64_encode(&[0; 13]).into()
        }),
        ("no authenticationTag", |v| {
            remove(v, &["authenticationTag"])
        }),
        ("15-byte tag", |v| {
            v["authenticationTag"] = base64_encode(&[0; 15]).into()
        }),
        ("17-byte tag", |v| {
            v["authenticationTag"] = base64_encode(&[0; 17]).into()
        }),
        ("ciphertextMetadata not Base64", |v| {
            v["ciphertextMetadata"] = "a".into()
        }),
    ];
    for (op, good, cases) in [
        ("encrypt", &good_encrypt, encrypt_cases),
        ("decrypt", &good_decrypt, decrypt_cases),
    ] {
        for (what, edit) in cases {
            let mut body = good.clone();
            edit(&mut body);
            let a = key_call(&mut c, KEY_AES, op, &body).await;
            assert_error(&a, 400, "ValidationException", &format!("{op}: {what}"));
        }
        for raw in ["", "{", "null", &health_request_body()] {
            let a = send(&mut c, request("POST", &key_path(KEY_AES, op), raw, SIGNED)).await;
            assert_error(&a, 400, "ValidationException", &format!("{op}: {raw:?}"));
        }
    }
    let a = key_call(
        &mut c,
        KEY_AES,
        "metadata",
        &serde_json::json!({"requestMetadata": {"kmsOperation": "DescribeKey", "kmsRequestId": "1"}}),
    )
    .await;
    assert_error(
        &a,
        400,
        "ValidationException",
        "metadata without awsPrincipalArn",
    );

    // Accepted: an unknown kmsOperation (the specification forbids rejecting it), unknown
    // requestMetadata fields, the optional fields, a 16-byte IV (that does not authenticate).
    let mut body = good_encrypt.clone();
    body["requestMetadata"]["kmsOperation"] = "BulkEncrypt".into();
    body["requestMetadata"]["kmsRecipientAttestationImageSha384"] = "abc".into();
    body["requestMetadata"]["awsSourceVpc"] = "vpc-1".into();
    body["requestMetadata"]["awsSourceVpce"] = "vpce-1".into();
    body["requestMetadata"]["kmsViaService"] = "ebs".into();
    let s = Sealed::from(&key_call(&mut c, KEY_AES, "encrypt", &body).await);
    let mut body = s.decrypt_request(Some(b"ctx"));
    body["requestMetadata"]["kmsOperation"] = "BulkDecrypt".into();
    assert_eq!(
        plaintext_of(&key_call(&mut c, KEY_AES, "decrypt", &body).await),
        b"data key"
    );
    let mut body = metadata_request("BulkDescribeKey");
    body["requestMetadata"]["newField"] = serde_json::json!({"x": 1});
    let a = key_call(&mut c, KEY_AES, "metadata", &body).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let mut body = good_decrypt.clone();
    body["initializationVector"] = base64_encode(&[0; 16]).into();
    let a = key_call(&mut c, KEY_AES, "decrypt", &body).await;
    assert_error(&a, 400, "InvalidCiphertextException", "16-byte IV");
}

#[tokio::test]
async fn health_modes_do_not_apply_to_key_operations() {
    for mode in [
        Mode::Error {
            status: 500,
            error_name: "InternalException",
        },
        Mode::Body("[]".into()),
        Mode::AllUnavailable,
    ] {
        let proxy = TestProxy::start(ProxyOptions::mode(mode.clone())).await;
        let mut c = connect(&proxy).await;
        let a = key_call(
            &mut c,
            KEY_AES,
            "metadata",
            &metadata_request("DescribeKey"),
        )
        .await;
        assert_eq!(a.json()["keyStatus"], "ENABLED", "{mode:?}");
        let s = encrypt(&mut c, KEY_AES, b"k", None, true).await;
        assert_eq!(
            plaintext_of(&decrypt(&mut c, KEY_AES, &s, None).await),
            b"k"
        );
    }
    let proxy = TestProxy::start(ProxyOptions::mode(Mode::Error {
        status: 500,
        error_name: "InternalException",
    }))
    .await;
    assert_eq!(health(&proxy, SIGNED).await.status, 500);
    // AcceptUnsigned skips authentication for key operations too.
    let proxy = TestProxy::start(ProxyOptions::mode(Mode::AcceptUnsigned)).await;
    let mut c = connect(&proxy).await;
    let body = metadata_request("DescribeKey").to_string();
    let a = send(
        &mut c,
        request(
            "POST",
            &key_path(KEY_AES, "metadata"),
            &body,
            Signing::Unsigned,
        ),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
}

// ---------------------------------------------------------------------------------------------
// Key faults

#[tokio::test]
async fn fault_wrong_cdiv() {
    let proxy = TestProxy::start(ProxyOptions::key_faults(KeyFaults {
        wrong_cdiv: true,
        ..Default::default()
    }))
    .await;
    let mut c = connect(&proxy).await;
    for aad in [None, Some(&b"ctx"[..])] {
        let s = encrypt(&mut c, KEY_AES, b"data key", aad, true).await;
        let value = s.cdiv.clone().expect("a CDIV is still returned");
        assert_eq!(base64_decode(&value).unwrap().len(), 32);
        let right = cdiv(aad.unwrap_or(&[]), &[], &s.iv, &s.ciphertext, &s.tag);
        assert_ne!(value, right, "{aad:?}");
        // Only the CDIV is wrong: the ciphertext decrypts.
        assert_eq!(
            plaintext_of(&decrypt(&mut c, KEY_AES, &s, aad).await),
            b"data key"
        );
    }
    // Not asked for, still absent.
    assert_eq!(encrypt(&mut c, KEY_AES, b"k", None, false).await.cdiv, None);
}

#[tokio::test]
async fn fault_accept_changed_aad() {
    let proxy = TestProxy::start(ProxyOptions::key_faults(KeyFaults {
        accept_changed_aad: true,
        ..Default::default()
    }))
    .await;
    let mut c = connect(&proxy).await;
    let s = encrypt(&mut c, KEY_AES, b"data key", Some(b"right context"), false).await;
    for aad in [
        Some(&b"wrong context"[..]),
        None,
        Some(&b"right context"[..]),
    ] {
        let a = decrypt(&mut c, KEY_AES, &s, aad).await;
        assert_eq!(plaintext_of(&a), b"data key", "{aad:?}");
    }
    // The ciphertext and the tag are still authenticated.
    let mut changed = s.clone();
    changed.ciphertext[0] ^= 1;
    let a = decrypt(&mut c, KEY_AES, &changed, Some(b"right context")).await;
    assert_error(&a, 400, "InvalidCiphertextException", "changed ciphertext");
    let mut changed = s.clone();
    changed.tag[0] ^= 1;
    let a = decrypt(&mut c, KEY_AES, &changed, Some(b"right context")).await;
    assert_error(&a, 400, "InvalidCiphertextException", "changed tag");
    // The same test against a proxy without the fault.
    let proxy = TestProxy::start(ProxyOptions::default()).await;
    let mut c = connect(&proxy).await;
    let s = encrypt(&mut c, KEY_AES, b"data key", Some(b"right context"), false).await;
    let a = decrypt(&mut c, KEY_AES, &s, Some(b"wrong context")).await;
    assert_error(&a, 400, "InvalidCiphertextException", "no fault");
}

#[tokio::test]
async fn fault_slow_decrypt() {
    let delay = Duration::from_millis(400);
    let proxy = TestProxy::start(ProxyOptions::key_faults(KeyFaults {
        slow_decrypt_ms: delay.as_millis() as u64,
        ..Default::default()
    }))
    .await;
    let mut c = connect(&proxy).await;
    let t = Instant::now();
    let s = encrypt(&mut c, KEY_AES, b"k", None, false).await;
    let a = key_call(
        &mut c,
        KEY_AES,
        "metadata",
        &metadata_request("DescribeKey"),
    )
    .await;
    assert_eq!(a.status, 200);
    assert!(
        t.elapsed() < delay,
        "encrypt and metadata: {:?}",
        t.elapsed()
    );
    let t = Instant::now();
    let a = decrypt(&mut c, KEY_AES, &s, None).await;
    assert!(t.elapsed() >= delay, "decrypt: {:?}", t.elapsed());
    assert_eq!(plaintext_of(&a), b"k");
    // Errors from Decrypt are slow too.
    let t = Instant::now();
    let a = decrypt(&mut c, "no-such-key", &s, None).await;
    assert!(t.elapsed() >= delay, "{:?}", t.elapsed());
    assert_eq!(a.status, 404);
}

#[tokio::test]
async fn fault_reject_unknown_operation() {
    let proxy = TestProxy::start(ProxyOptions::key_faults(KeyFaults {
        reject_unknown_operation: true,
        ..Default::default()
    }))
    .await;
    let mut c = connect(&proxy).await;
    let mut body = encrypt_request(b"k", None, false);
    body["requestMetadata"]["kmsOperation"] = "BulkEncrypt".into();
    let a = key_call(&mut c, KEY_AES, "encrypt", &body).await;
    assert_error(&a, 400, "ValidationException", "BulkEncrypt");
    let a = key_call(
        &mut c,
        KEY_AES,
        "metadata",
        &metadata_request("BulkDescribeKey"),
    )
    .await;
    assert_error(&a, 400, "ValidationException", "BulkDescribeKey");
    // Decrypt is not a kmsOperation for Encrypt.
    let a = key_call(
        &mut c,
        KEY_AES,
        "encrypt",
        &serde_json::json!({
            "requestMetadata": request_metadata("Decrypt"),
            "plaintext": "AA==",
            "encryptionAlgorithm": "AES_GCM",
        }),
    )
    .await;
    assert_error(&a, 400, "ValidationException", "Decrypt on Encrypt");
    // The listed operations still work.
    let mut body = encrypt_request(b"k", None, false);
    body["requestMetadata"]["kmsOperation"] = "GenerateDataKey".into();
    let s = Sealed::from(&key_call(&mut c, KEY_AES, "encrypt", &body).await);
    assert_eq!(
        plaintext_of(&decrypt(&mut c, KEY_AES, &s, None).await),
        b"k"
    );
    for op in ["CreateKey", "DescribeKey"] {
        let a = key_call(&mut c, KEY_AES, "metadata", &metadata_request(op)).await;
        assert_eq!(a.status, 200, "{op}");
    }
    // Health is not affected.
    let body = serde_json::json!({
        "requestMetadata": {"kmsRequestId": "1", "kmsOperation": "SomethingNew"}
    })
    .to_string();
    let a = send(&mut c, request("POST", HEALTH_PATH, &body, SIGNED)).await;
    assert_eq!(a.status, 200);
}

#[tokio::test]
async fn fault_metadata_override() {
    let body = r#"{"keySpec":"AES_256","keyUsage":["ENCRYPT"],"keyStatus":"ENABLED"}"#;
    let proxy = TestProxy::start(ProxyOptions::key_faults(KeyFaults {
        metadata_override: Some(body.to_string()),
        ..Default::default()
    }))
    .await;
    let mut c = connect(&proxy).await;
    let a = key_call(
        &mut c,
        KEY_AES,
        "metadata",
        &metadata_request("DescribeKey"),
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-type"), Some("application/json"));
    assert_eq!(a.body, body);
    // Other keys, and the checks before it, are unchanged.
    let a = key_call(
        &mut c,
        KEY_DISABLED,
        "metadata",
        &metadata_request("DescribeKey"),
    )
    .await;
    assert_eq!(a.json()["keyStatus"], "DISABLED");
    let a = send(
        &mut c,
        request("POST", &key_path(KEY_AES, "metadata"), "{}", SIGNED),
    )
    .await;
    assert_eq!(a.status, 400);
    // Not JSON at all is possible too.
    let proxy = TestProxy::start(ProxyOptions::key_faults(KeyFaults {
        metadata_override: Some("<html>".into()),
        ..Default::default()
    }))
    .await;
    let mut c = connect(&proxy).await;
    let a = key_call(
        &mut c,
        KEY_AES,
        "metadata",
        &metadata_request("DescribeKey"),
    )
    .await;
    assert_eq!(a.body, "<html>");
}
