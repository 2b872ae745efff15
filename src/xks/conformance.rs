//! `cks-doctor conformance`: the XKS proxy API exercised the way KMS uses it, case by case, on
//! the test keys the user names. Every case is sent on ONE kept-alive connection
//! ([`super::api::Client`]), in order, and timed on its own against KMS's 250 ms budget.
//!
//! The cases cover every case of AWS's XKS proxy test client (aws-samples/
//! aws-kms-xksproxy-test-client, cases numbered 1–49 in [`CaseDef::test_client`]) and what that
//! client does not check: the answers' fields, the ciphertextDataIntegrityValue recomputed as
//! the specification defines it, a changed ciphertext, tag, IV or ciphertextMetadata, the
//! largest plaintext and AAD KMS may send, a clock more than 5 minutes off, unsigned requests,
//! an unknown `kmsOperation`, and the error names and bodies of every answer.
//!
//! Each case names the KMS error a user would see when it fails (`kms_error`) and where that
//! mapping comes from: an AWS document, or an inference (said so).
//!
//! Nothing here creates, changes or deletes a key: the only key ids sent are the ones given in
//! [`Options`] and one id that names no key ([`UNKNOWN_KEY_ID`]). Encrypt and Decrypt are sent on
//! test data made here (fixed strings and random bytes), never on user data.

use super::api::{key_path, Call, Client, RequestMetadata, Signing};
use super::probe::{ProbeConfig, KMS_BUDGET_MS};
use serde::Serialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::time::Instant;

/// The largest plaintext KMS sends to Encrypt (and ciphertext to Decrypt), in bytes.
pub const MAX_PLAINTEXT_BYTES: usize = 4300;
/// The largest additionalAuthenticatedData KMS sends, in bytes.
pub const MAX_AAD_BYTES: usize = 8192;
/// The largest ciphertextMetadata a proxy may return, in bytes.
pub const MAX_CIPHERTEXT_METADATA_BYTES: usize = 20;
/// `awsPrincipalArn` sent unless `--principal-arn` says otherwise: only what the proxy sees.
pub const DEFAULT_PRINCIPAL_ARN: &str = "arn:aws:iam::111122223333:role/cks-doctor-conformance";
/// An external key id that names no key.
pub const UNKNOWN_KEY_ID: &str = "cks-doctor-no-such-key";
/// A `kmsOperation` value the specification does not list (proxies must accept it).
pub const UNKNOWN_OPERATION: &str = "CksDoctorFutureOperation";
/// A well-formed access key id (`[A-Z2-7]{20}`) that is not the configured one.
pub const WRONG_ACCESS_KEY_ID: &str = "CKSDOCTORWRONGKEYID2";
/// A well-formed secret (`[A-Za-z0-9+/=]{43,64}`) that is not the configured one. It is not
/// derived from the real secret.
const WRONG_SECRET: &str = "CksDoctorWrongSecretNotTheConfiguredOne0000000=";
/// How far off the clock of the skewed requests is (the specification: more than 5 minutes
/// SHOULD fail authentication).
pub const CLOCK_OFFSET_SECS: i64 = 360;

/// Every errorName the specification's error table lists.
pub const SPEC_ERROR_NAMES: [&str; 12] = [
    "ValidationException",
    "InvalidStateException",
    "InvalidCiphertextException",
    "InvalidKeyUsageException",
    "AuthenticationFailedException",
    "AccessDeniedException",
    "KeyNotFoundException",
    "InvalidUriPathException",
    "ThrottlingException",
    "UnsupportedOperationException",
    "DependencyTimeoutException",
    "InternalException",
];

/// The test client's small inputs (the same bytes, so that results compare).
const P1: &[u8] = b"plaintext\n";
const P2: &[u8] = b"Hello World!";
const AAD: &[u8] = b"project=nile,department=marketing";
const AAD2: &[u8] = b"project=blue,department=finance";

/// The documents the mappings cite, by the names the notes use.
pub const REFERENCES: [(&str, &str); 5] = [
    (
        "KMS developer guide, Troubleshooting external key stores",
        "https://docs.aws.amazon.com/kms/latest/developerguide/xks-troubleshooting.html",
    ),
    (
        "KMS API reference, CreateKey",
        "https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateKey.html",
    ),
    (
        "KMS API reference, CreateCustomKeyStore",
        "https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateCustomKeyStore.html",
    ),
    (
        "AWS KMS External Keystore (XKS) Proxy API specification",
        "https://github.com/aws/aws-kms-xksproxy-api-spec",
    ),
    (
        "AWS's XKS proxy test client (aws-kms-xksproxy-test-client)",
        "https://github.com/aws-samples/aws-kms-xksproxy-test-client",
    ),
];

/// One document the mappings cite.
#[derive(Debug, Clone, Serialize)]
pub struct Reference {
    pub name: &'static str,
    pub url: &'static str,
}

/// What the run needs besides the connection.
#[derive(Debug, Clone)]
pub struct Options {
    /// The test key: AES_256, ENABLED, ENCRYPT and DECRYPT.
    pub key_id: String,
    pub encrypt_only_key_id: Option<String>,
    pub decrypt_only_key_id: Option<String>,
    /// A key that allows neither ENCRYPT nor DECRYPT (the test client's "impotent" key).
    pub impotent_key_id: Option<String>,
    /// `awsPrincipalArn` of every key operation (only what the proxy sees).
    pub principal_arn: String,
    /// `kmsKeyArn` of Encrypt, Decrypt and GetKeyMetadata for DescribeKey.
    pub kms_key_arn: String,
}

impl Options {
    /// `kmsKeyArn` when none is given: a key ARN of the principal's account in `region`. No
    /// such KMS key exists; a proxy that authorizes on it may refuse (the report says so).
    pub fn default_kms_key_arn(region: &str, principal_arn: &str) -> String {
        let account = principal_arn
            .split(':')
            .nth(4)
            .filter(|a| a.len() == 12 && a.chars().all(|c| c.is_ascii_digit()))
            .unwrap_or("111122223333");
        format!("arn:aws:kms:{region}:{account}:key/00000000-0000-4000-8000-00000000c0de")
    }
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    Skip,
    /// Could not run (the connection failed, no answer came).
    Error,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Skip => "skip",
            Verdict::Error => "error",
        }
    }
}

/// Where the KMS error of a case comes from.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Mapping {
    /// An AWS document says it (the note names it).
    Documented,
    /// Reasoned from AWS's documents, not stated by them.
    Inferred,
    /// KMS shows no error: a security or specification finding only.
    None,
}

/// Which key a case uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRole {
    NoKey,
    Main,
    Unknown,
    EncryptOnly,
    DecryptOnly,
    Impotent,
}

/// What a case expects.
#[derive(Debug, Clone, Copy)]
pub enum Expect {
    /// 200 with this valid answer, within 250 ms.
    Ok(&'static str),
    /// This status and errorName.
    Refusal(u16, &'static str),
    /// A property of every answer of the run.
    Every(&'static str),
    /// Not run by cks-doctor.
    NotRun(&'static str),
}

/// One case, as data.
#[derive(Debug, Clone, Copy)]
pub struct CaseDef {
    pub id: &'static str,
    pub title: &'static str,
    pub group: &'static str,
    /// The XKS API (GetHealthStatus, GetKeyMetadata, Encrypt, Decrypt) or "all".
    pub operation: &'static str,
    pub key: KeyRole,
    /// What is sent.
    pub sent: &'static str,
    pub expect: Expect,
    /// The KMS error a user would see when the case fails.
    pub kms_error: &'static str,
    pub mapping: Mapping,
    /// Why, and where it comes from.
    pub mapping_note: &'static str,
    /// The cases of AWS's test client this one covers (1–49, in the order its scripts run).
    pub test_client: &'static [u8],
}

#[derive(Debug, Clone, Serialize)]
pub struct Expected {
    pub status: Option<u16>,
    pub error_name: Option<&'static str>,
    pub text: String,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Observed {
    pub status: Option<u16>,
    pub error_name: Option<String>,
}

/// One case's result.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    pub id: &'static str,
    pub title: &'static str,
    pub group: &'static str,
    pub operation: &'static str,
    /// The key id sent (None for health and the checks over every answer).
    pub key_id: Option<String>,
    pub sent: &'static str,
    pub expected: Expected,
    pub observed: Observed,
    /// From the request written to the last body byte (what KMS's 250 ms are about).
    pub request_ms: Option<f64>,
    /// The proxy had closed the connection: this request opened a new one first.
    pub reconnected: bool,
    pub verdict: Verdict,
    pub message: String,
    /// The KMS error a user would see when this case fails (whatever its verdict here).
    pub kms_error: String,
    pub kms_error_mapping: Mapping,
    pub kms_error_note: String,
    pub test_client_cases: Vec<u8>,
}

/// The connection the run used.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ConnectionInfo {
    pub tls_version: Option<String>,
    pub cipher_suite: Option<String>,
    pub connect_ms: Option<f64>,
    pub tls_ms: Option<f64>,
    /// Connections opened in all (1 when the proxy kept the connection open throughout).
    pub connections: usize,
    /// Requests sent in all.
    pub requests: usize,
    /// The proxy asked for a client certificate (mutual TLS).
    pub client_certificate_requested: bool,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Latency {
    pub count: usize,
    pub min_ms: Option<f64>,
    pub median_ms: Option<f64>,
    pub max_ms: Option<f64>,
    /// The sum of every request's time (the run is sequential: compare with `wall_ms`).
    pub sum_ms: f64,
    pub budget_ms: f64,
    /// Requests slower than the budget.
    pub over_budget: usize,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Summary {
    pub total: usize,
    pub pass: usize,
    pub fail: usize,
    pub skip: usize,
    pub error: usize,
    pub latency: Latency,
    /// From the first connection attempt to the last answer (connection set-up included).
    pub wall_ms: f64,
    /// From the first request sent to the last answer: the run is sequential on one
    /// connection, so this against `latency.sum_ms` is the tool's own time between requests.
    pub requests_wall_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub uri_endpoint: String,
    pub uri_path: String,
    pub region: String,
    pub access_key_id: Option<String>,
    pub key_id: String,
    pub encrypt_only_key_id: Option<String>,
    pub decrypt_only_key_id: Option<String>,
    pub impotent_key_id: Option<String>,
    pub principal_arn: String,
    pub kms_key_arn: String,
    /// `--connect-to`: where the proxy was reached instead of through DNS.
    pub connect_to: Option<String>,
}

/// A whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub schema_version: u32,
    pub command: &'static str,
    pub target: Target,
    pub connection: ConnectionInfo,
    pub cases: Vec<CaseResult>,
    pub summary: Summary,
    pub verdict: String,
    /// The documents the KMS error notes cite.
    pub references: Vec<Reference>,
}

impl Run {
    /// 0 every case passed or was skipped, 1 a case failed, 3 none failed but some could not run.
    pub fn exit_code(&self) -> i32 {
        if self.summary.fail > 0 {
            1
        } else if self.summary.error > 0 {
            3
        } else {
            0
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The cases

const HEALTH: &str = "GetHealthStatus";
const METADATA: &str = "GetKeyMetadata";
const ENCRYPT: &str = "Encrypt";
const DECRYPT: &str = "Decrypt";

const G_HEALTH: &str = "GetHealthStatus";
const G_AUTH: &str = "Authentication and path";
const G_METADATA: &str = "GetKeyMetadata";
const G_CRYPTO: &str = "Encrypt and Decrypt";
const G_TAMPER: &str = "Decrypt refuses what was changed";
const G_FORWARD: &str = "Forward compatibility";
const G_USAGE: &str = "Key usage";
const G_ANSWERS: &str = "Every answer";
const G_MTLS: &str = "Mutual TLS";

const KMS_HEALTH: &str = "CreateCustomKeyStore: XksProxyInvalidResponseException; an existing store: XKS_PROXY_INVALID_RESPONSE";
const NOTE_HEALTH: &str = "KMS API reference (CreateCustomKeyStore, XksProxyInvalidResponseException: \"KMS cannot interpret the response it received from the external key store proxy\"); as cks-doctor's check xks.health.response. Slower than 250 ms: XksProxyUriUnreachableException / XKS_PROXY_TIMED_OUT (xks.latency.budget); every ekmFleetDetails UNAVAILABLE: XksProxyUriUnreachableException (documented: \"also thrown when ... all external key manager instances are unavailable\").";
const KMS_CRYPTO: &str = "KMSInvalidStateException (Encrypt, Decrypt, ReEncrypt, GenerateDataKey*)";
const NOTE_CRYPTO: &str = "KMS developer guide, Troubleshooting external key stores: cryptographic operations on keys in an external key store return KMSInvalidStateException for failures of the external configuration, the message telling the cause; the KMS API reference: \"For cryptographic operations on KMS keys in custom key stores, this exception represents a general failure with many possible causes\". A success slower than 250 ms is a time-out for KMS: that it surfaces as this exception is inferred.";
const NOTE_CRYPTO_INFERRED: &str = "Inferred from the KMS developer guide (Troubleshooting external key stores: cryptographic operations on external keys fail with KMSInvalidStateException) and the specification (Appendix C: KMS verifies the value): AWS does not document this failure separately.";
const KMS_NONE_AUTH: &str = "none: KMS signs correctly, so it sees no error; a proxy that accepts this lets anyone who reaches it use its keys";
const NOTE_AUTH: &str = "Security finding, no KMS error (specification: \"MUST\" authenticate every request with SigV4; an unknown access key id or a wrong signature is 401 AuthenticationFailedException). A proxy that refuses with another status makes a wrong credential look like another cause: KMS maps 401 to XksProxyIncorrectAuthenticationCredentialException / INVALID_CREDENTIALS (as cks-doctor's check xks.health.response).";
const KMS_NONE_SPEC: &str =
    "none: KMS always sends requestMetadata; a specification finding (AWS's test client fails it)";
const NOTE_SPEC: &str = "Specification finding: the body lacks what the specification requires, and AWS's test client expects 400 ValidationException. KMS never sends such a request.";
const KMS_NONE_TAMPER: &str =
    "none: KMS would not see an error; a changed ciphertext or AAD must never decrypt";
const NOTE_TAMPER: &str = "Security finding (specification: InvalidCiphertextException when \"ciphertext, IV, AAD or tag [are] corrupted, missing, or otherwise invalid\"; the ciphertextMetadata \"MUST\" be integrity-protected). No KMS error.";
const KMS_NONE_USAGE: &str = "none: a key without ENCRYPT or DECRYPT cannot back a KMS key (CreateKey: XksKeyInvalidConfigurationException), so KMS never sends this";
const NOTE_USAGE: &str = "Specification finding (InvalidKeyUsageException: \"the specified key does not support the requested operation\"), as AWS's test client checks it; CreateKey's rule is the KMS API reference's (XksKeyInvalidConfigurationException: the key must perform encryption and decryption).";

macro_rules! case {
    ($id:expr, $title:expr, $group:expr, $op:expr, $key:expr, $sent:expr, $expect:expr,
     $kms:expr, $mapping:expr, $note:expr, $tc:expr) => {
        CaseDef {
            id: $id,
            title: $title,
            group: $group,
            operation: $op,
            key: $key,
            sent: $sent,
            expect: $expect,
            kms_error: $kms,
            mapping: $mapping,
            mapping_note: $note,
            test_client: $tc,
        }
    };
}

use Expect::{Every, NotRun, Ok as OkAnswer, Refusal};
use KeyRole::*;
use Mapping::{Documented, Inferred, None as NoError};

/// Every case, in the order they run.
pub const CASES: &[CaseDef] = &[
    // GetHealthStatus
    case!("health.status", "GetHealthStatus", G_HEALTH, HEALTH, NoKey,
        "POST /health, kmsOperation KmsHealthCheck, signed",
        OkAnswer("200: xksProxyFleetSize > 0, xksProxyVendor, xksProxyModel, ekmVendor, 1-10 ekmFleetDetails (id, model, healthStatus ACTIVE|DEGRADED|UNAVAILABLE), not all UNAVAILABLE"),
        KMS_HEALTH, Documented, NOTE_HEALTH, &[1]),
    case!("health.no-metadata", "GetHealthStatus without requestMetadata", G_HEALTH, HEALTH, NoKey,
        "POST /health, body {}, signed", Refusal(400, "ValidationException"),
        KMS_NONE_SPEC, NoError, NOTE_SPEC, &[2]),
    case!("health.empty-metadata", "GetHealthStatus with empty requestMetadata", G_HEALTH, HEALTH, NoKey,
        "POST /health, body {\"requestMetadata\": {}}, signed", Refusal(400, "ValidationException"),
        KMS_NONE_SPEC, NoError, NOTE_SPEC, &[3]),
    // Authentication and path
    case!("auth.health.wrong-access-key-id", "GetHealthStatus with a wrong access key id", G_AUTH, HEALTH, NoKey,
        "POST /health signed with a well-formed access key id that is not the configured one",
        Refusal(401, "AuthenticationFailedException"), KMS_NONE_AUTH, NoError, NOTE_AUTH, &[4]),
    case!("auth.health.wrong-secret", "GetHealthStatus with a wrong secret", G_AUTH, HEALTH, NoKey,
        "POST /health signed with the configured access key id and another secret",
        Refusal(401, "AuthenticationFailedException"), KMS_NONE_AUTH, NoError, NOTE_AUTH, &[5]),
    case!("auth.health.wrong-prefix", "GetHealthStatus with a wrong path prefix", G_AUTH, HEALTH, NoKey,
        "POST <prefix>/invalid/kms/xks/v1/health, correctly signed",
        Refusal(404, "InvalidUriPathException"),
        "none for this store (KMS sends the right path); the day a key store names a mistyped XksProxyUriPath, CreateCustomKeyStore tells the cause (XksProxyInvalidConfigurationException) only if the proxy answers 404 InvalidUriPathException",
        Inferred, "Specification (InvalidUriPathException: \"the specified URI path is not valid\"). That KMS maps that answer to XksProxyInvalidConfigurationException / XKS_PROXY_INVALID_CONFIGURATION is how cks-doctor's check xks.health.response reads it; no AWS document states it for this answer, so inferred. A proxy that serves an unknown prefix could also serve another key store's credentials and keys.",
        &[6]),
    case!("auth.health.unsigned", "GetHealthStatus without a signature", G_AUTH, HEALTH, NoKey,
        "POST /health, no Authorization header", Refusal(401, "AuthenticationFailedException"),
        KMS_NONE_AUTH, NoError, NOTE_AUTH, &[]),
    case!("auth.health.clock-ahead", "GetHealthStatus signed 6 minutes in the future", G_AUTH, HEALTH, NoKey,
        "POST /health signed with x-amz-date 360 s ahead of this machine's clock",
        Refusal(401, "AuthenticationFailedException"),
        "none: KMS's clock is right; a proxy that accepts old or future signatures lets a captured request be replayed",
        NoError, "Specification, Appendix A: requests \"more than 5 minutes in the past (or future, due to clock drift) SHOULD fail authentication\". Security finding; measured against this machine's clock (a skewed local clock shows here too: compare with preflight xks's xks.clock.skew).",
        &[]),
    case!("auth.health.clock-behind", "GetHealthStatus signed 6 minutes in the past", G_AUTH, HEALTH, NoKey,
        "POST /health signed with x-amz-date 360 s behind this machine's clock",
        Refusal(401, "AuthenticationFailedException"),
        "none: KMS's clock is right; a proxy that accepts old or future signatures lets a captured request be replayed",
        NoError, "Specification, Appendix A: requests \"more than 5 minutes in the past (or future, due to clock drift) SHOULD fail authentication\". Security finding; measured against this machine's clock.",
        &[]),
    case!("auth.metadata.wrong-access-key-id", "GetKeyMetadata with a wrong access key id", G_AUTH, METADATA, Main,
        "POST /keys/<key>/metadata signed with another access key id",
        Refusal(401, "AuthenticationFailedException"), KMS_NONE_AUTH, NoError, NOTE_AUTH, &[12]),
    case!("auth.metadata.wrong-secret", "GetKeyMetadata with a wrong secret", G_AUTH, METADATA, Main,
        "POST /keys/<key>/metadata signed with another secret",
        Refusal(401, "AuthenticationFailedException"), KMS_NONE_AUTH, NoError, NOTE_AUTH, &[13]),
    case!("auth.metadata.wrong-prefix", "GetKeyMetadata with a wrong path prefix", G_AUTH, METADATA, Main,
        "POST <prefix>/invalid/kms/xks/v1/keys/<key>/metadata, correctly signed",
        Refusal(404, "InvalidUriPathException"),
        "none for this store: a proxy that serves an unknown prefix could serve another key store's keys",
        NoError, "Specification (InvalidUriPathException). Security finding.", &[14]),
    case!("auth.encrypt.wrong-access-key-id", "Encrypt with a wrong access key id", G_AUTH, ENCRYPT, Main,
        "POST /keys/<key>/encrypt signed with another access key id",
        Refusal(401, "AuthenticationFailedException"), KMS_NONE_AUTH, NoError, NOTE_AUTH, &[17]),
    case!("auth.encrypt.wrong-secret", "Encrypt with a wrong secret", G_AUTH, ENCRYPT, Main,
        "POST /keys/<key>/encrypt signed with another secret",
        Refusal(401, "AuthenticationFailedException"), KMS_NONE_AUTH, NoError, NOTE_AUTH, &[18]),
    case!("auth.encrypt.wrong-prefix", "Encrypt with a wrong path prefix", G_AUTH, ENCRYPT, Main,
        "POST <prefix>/invalid/kms/xks/v1/keys/<key>/encrypt, correctly signed",
        Refusal(404, "InvalidUriPathException"),
        "none for this store: a proxy that serves an unknown prefix could serve another key store's keys",
        NoError, "Specification (InvalidUriPathException). Security finding.", &[19]),
    case!("auth.encrypt.unsigned", "Encrypt without a signature", G_AUTH, ENCRYPT, Main,
        "POST /keys/<key>/encrypt, no Authorization header",
        Refusal(401, "AuthenticationFailedException"), KMS_NONE_AUTH, NoError, NOTE_AUTH, &[]),
    // GetKeyMetadata
    case!("metadata.describe-key", "GetKeyMetadata for DescribeKey", G_METADATA, METADATA, Main,
        "POST /keys/<key>/metadata, kmsOperation DescribeKey, with kmsKeyArn",
        OkAnswer("200: keySpec AES_256, keyUsage with ENCRYPT and DECRYPT (at most 10 values), keyStatus ENABLED"),
        "not documented: AWS does not say what KMS shows when GetKeyMetadata fails for DescribeKey",
        Inferred, "The specification lists DescribeKey among GetKeyMetadata's kmsOperation values; the KMS API reference lists no XKS error for DescribeKey. What a user sees is unknown; the same answer fails CreateKey (metadata.create-key).",
        &[7]),
    case!("metadata.create-key", "GetKeyMetadata for CreateKey", G_METADATA, METADATA, Main,
        "POST /keys/<key>/metadata, kmsOperation CreateKey, without kmsKeyArn (as KMS sends it: the KMS key does not exist yet)",
        OkAnswer("200: keySpec AES_256, keyUsage with ENCRYPT and DECRYPT (at most 10 values), keyStatus ENABLED"),
        "CreateKey: XksKeyInvalidConfigurationException (a field) or XksKeyNotFoundException (404)",
        Documented, "KMS API reference, CreateKey: XksKeyInvalidConfigurationException (\"The external key must be an AES-256 symmetric key that is enabled and performs encryption and decryption\"), XksKeyNotFoundException. Another error answer or a time-out: not documented (CreateKey's list has DependencyTimeoutException and KMSInternalException; which one is inferred).",
        &[8]),
    case!("metadata.no-metadata", "GetKeyMetadata without requestMetadata", G_METADATA, METADATA, Main,
        "POST /keys/<key>/metadata, body {}", Refusal(400, "ValidationException"),
        KMS_NONE_SPEC, NoError, NOTE_SPEC, &[9]),
    case!("metadata.empty-metadata", "GetKeyMetadata with empty requestMetadata", G_METADATA, METADATA, Main,
        "POST /keys/<key>/metadata, body {\"requestMetadata\": {}}", Refusal(400, "ValidationException"),
        KMS_NONE_SPEC, NoError, NOTE_SPEC, &[10]),
    case!("metadata.unknown-key", "GetKeyMetadata for a key that does not exist", G_METADATA, METADATA, Unknown,
        "POST /keys/cks-doctor-no-such-key/metadata, kmsOperation CreateKey",
        Refusal(404, "KeyNotFoundException"),
        "CreateKey with a mistyped XksKeyId: XksKeyNotFoundException only if the proxy answers 404 KeyNotFoundException",
        Documented, "KMS API reference, CreateKey: XksKeyNotFoundException \"is thrown when the value of the XksKeyId parameter doesn't identify a key in the external key manager\"; the specification's answer for it is 404 KeyNotFoundException. Any other answer gives the user a misleading error (which one is not documented).",
        &[11]),
    // Encrypt and Decrypt
    case!("encrypt.unknown-key", "Encrypt with a key that does not exist", G_CRYPTO, ENCRYPT, Unknown,
        "POST /keys/cks-doctor-no-such-key/encrypt, plaintext \"plaintext\\n\"",
        Refusal(404, "KeyNotFoundException"), KMS_CRYPTO, Documented,
        "KMSInvalidStateException whatever the proxy answers (KMS developer guide, Troubleshooting external key stores); the message then tells the cause, which a wrong answer hides.",
        &[15]),
    case!("encrypt.no-plaintext", "Encrypt with missing plaintext", G_CRYPTO, ENCRYPT, Main,
        "POST /keys/<key>/encrypt with encryptionAlgorithm but no plaintext",
        Refusal(400, "ValidationException"), KMS_NONE_SPEC, NoError, NOTE_SPEC, &[16]),
    case!("encrypt.no-aad", "Encrypt without AAD", G_CRYPTO, ENCRYPT, Main,
        "POST /keys/<key>/encrypt, plaintext \"Hello World!\" (12 B), no AAD",
        OkAnswer("200: ciphertext as long as the plaintext, a 12- or 16-byte IV, a 16-byte tag, ciphertextMetadata at most 20 bytes, all standard Base64"),
        KMS_CRYPTO, Documented, NOTE_CRYPTO, &[24]),
    case!("decrypt.no-aad", "Decrypt without AAD", G_CRYPTO, DECRYPT, Main,
        "POST /keys/<key>/decrypt with what encrypt.no-aad returned",
        OkAnswer("200: plaintext equal to what was encrypted"),
        KMS_CRYPTO, Documented, NOTE_CRYPTO, &[25]),
    case!("encrypt.aad", "Encrypt with AAD", G_CRYPTO, ENCRYPT, Main,
        "POST /keys/<key>/encrypt, plaintext \"Hello World!\", AAD \"project=nile,department=marketing\"",
        OkAnswer("200: ciphertext, IV, tag (as encrypt.no-aad)"),
        KMS_CRYPTO, Documented, NOTE_CRYPTO, &[26]),
    case!("decrypt.aad", "Decrypt with the same AAD", G_CRYPTO, DECRYPT, Main,
        "POST /keys/<key>/decrypt with what encrypt.aad returned and the same AAD",
        OkAnswer("200: plaintext equal to what was encrypted"),
        KMS_CRYPTO, Documented, NOTE_CRYPTO, &[27]),
    case!("encrypt.aad-cdiv", "Encrypt with AAD and ciphertextDataIntegrityValue", G_CRYPTO, ENCRYPT, Main,
        "POST /keys/<key>/encrypt, plaintext \"Hello World!\", AAD, ciphertextDataIntegrityValueAlgorithm SHA_256",
        OkAnswer("200 with ciphertextDataIntegrityValue = Base64(SHA-256(AAD || ciphertextMetadata || IV || ciphertext || tag))"),
        KMS_CRYPTO, Inferred, NOTE_CRYPTO_INFERRED, &[28]),
    case!("decrypt.aad-cdiv", "Decrypt what was encrypted with AAD and CDIV", G_CRYPTO, DECRYPT, Main,
        "POST /keys/<key>/decrypt with what encrypt.aad-cdiv returned and the same AAD",
        OkAnswer("200: plaintext equal to what was encrypted"),
        KMS_CRYPTO, Documented, NOTE_CRYPTO, &[29]),
    case!("encrypt.cdiv-no-aad", "Encrypt with ciphertextDataIntegrityValue but without AAD", G_CRYPTO, ENCRYPT, Main,
        "POST /keys/<key>/encrypt, plaintext \"Hello World!\", no AAD, ciphertextDataIntegrityValueAlgorithm SHA_256",
        OkAnswer("200 with ciphertextDataIntegrityValue = Base64(SHA-256(ciphertextMetadata || IV || ciphertext || tag))"),
        KMS_CRYPTO, Inferred, NOTE_CRYPTO_INFERRED, &[30]),
    case!("decrypt.cdiv-no-aad", "Decrypt what was encrypted with CDIV and without AAD", G_CRYPTO, DECRYPT, Main,
        "POST /keys/<key>/decrypt with what encrypt.cdiv-no-aad returned",
        OkAnswer("200: plaintext equal to what was encrypted"),
        KMS_CRYPTO, Documented, NOTE_CRYPTO, &[31]),
    case!("encrypt.largest", "Encrypt the largest plaintext and AAD KMS sends", G_CRYPTO, ENCRYPT, Main,
        "POST /keys/<key>/encrypt, 4300 random bytes of plaintext, 8192 random bytes of AAD, SHA_256 CDIV",
        OkAnswer("200: a 4300-byte ciphertext, IV, tag and a valid ciphertextDataIntegrityValue"),
        KMS_CRYPTO, Documented, "Specification: a proxy \"MUST support\" plaintexts up to 4300 bytes and AAD up to 8192 bytes (what KMS sends, e.g. for GenerateDataKey and ReEncrypt); a failure is KMSInvalidStateException, as for every cryptographic operation on an external key (KMS developer guide, Troubleshooting external key stores). AWS's test client sends 4096 bytes.",
        &[32]),
    case!("decrypt.largest", "Decrypt the largest ciphertext with the largest AAD", G_CRYPTO, DECRYPT, Main,
        "POST /keys/<key>/decrypt with what encrypt.largest returned and the same 8192-byte AAD",
        OkAnswer("200: the 4300 bytes encrypted"),
        KMS_CRYPTO, Documented, NOTE_CRYPTO, &[33]),
    // Decrypt refuses what was changed
    case!("encrypt.for-tampering", "Encrypt with AAD, to be changed and decrypted", G_TAMPER, ENCRYPT, Main,
        "POST /keys/<key>/encrypt, plaintext \"plaintext\\n\", AAD \"project=nile,department=marketing\"",
        OkAnswer("200: ciphertext, IV, tag (as encrypt.no-aad)"),
        KMS_CRYPTO, Documented, NOTE_CRYPTO, &[20, 22]),
    case!("decrypt.missing-aad", "Decrypt with missing AAD", G_TAMPER, DECRYPT, Main,
        "POST /keys/<key>/decrypt with what encrypt.for-tampering returned, without its AAD",
        Refusal(400, "InvalidCiphertextException"), KMS_NONE_TAMPER, NoError, NOTE_TAMPER, &[21]),
    case!("decrypt.other-aad", "Decrypt with a different AAD", G_TAMPER, DECRYPT, Main,
        "POST /keys/<key>/decrypt with what encrypt.for-tampering returned and AAD \"project=blue,department=finance\"",
        Refusal(400, "InvalidCiphertextException"), KMS_NONE_TAMPER, NoError, NOTE_TAMPER, &[23]),
    case!("decrypt.changed-ciphertext", "Decrypt a changed ciphertext", G_TAMPER, DECRYPT, Main,
        "POST /keys/<key>/decrypt with one bit of the ciphertext flipped",
        Refusal(400, "InvalidCiphertextException"), KMS_NONE_TAMPER, NoError, NOTE_TAMPER, &[]),
    case!("decrypt.changed-tag", "Decrypt with a changed authentication tag", G_TAMPER, DECRYPT, Main,
        "POST /keys/<key>/decrypt with one bit of the tag flipped",
        Refusal(400, "InvalidCiphertextException"), KMS_NONE_TAMPER, NoError, NOTE_TAMPER, &[]),
    case!("decrypt.changed-iv", "Decrypt with a changed IV", G_TAMPER, DECRYPT, Main,
        "POST /keys/<key>/decrypt with one bit of the IV flipped",
        Refusal(400, "InvalidCiphertextException"), KMS_NONE_TAMPER, NoError, NOTE_TAMPER, &[]),
    case!("decrypt.changed-metadata", "Decrypt with changed ciphertextMetadata", G_TAMPER, DECRYPT, Main,
        "POST /keys/<key>/decrypt with one bit of the ciphertextMetadata flipped (when the proxy returns any)",
        Refusal(400, "InvalidCiphertextException"), KMS_NONE_TAMPER, NoError, NOTE_TAMPER, &[]),
    // Forward compatibility
    case!("forward.health.unknown-operation", "GetHealthStatus with an unlisted kmsOperation", G_FORWARD, HEALTH, NoKey,
        "POST /health, kmsOperation CksDoctorFutureOperation",
        OkAnswer("200 (a proxy \"MUST NOT reject a request as invalid\" for a kmsOperation it does not know)"),
        "inferred: the day KMS sends a new kmsOperation value, its health checks would fail (ConnectCustomKeyStore: XKS_PROXY_INVALID_RESPONSE)",
        Inferred, "Specification: \"The XKS Proxy MUST NOT reject a request as invalid if it sees a kmsOperation other than those listed\". What KMS would then show is inferred.",
        &[]),
    case!("forward.metadata.unknown-operation", "GetKeyMetadata with an unlisted kmsOperation", G_FORWARD, METADATA, Main,
        "POST /keys/<key>/metadata, kmsOperation CksDoctorFutureOperation",
        OkAnswer("200 with the key's metadata"),
        "inferred: operations KMS adds later would fail for this key",
        Inferred, "Specification: \"MUST NOT reject a request as invalid if it sees a kmsOperation other than those listed\" (e.g. a future BulkDescribeKey). What KMS would then show is inferred.",
        &[]),
    case!("forward.encrypt.unknown-operation", "Encrypt with an unlisted kmsOperation", G_FORWARD, ENCRYPT, Main,
        "POST /keys/<key>/encrypt, kmsOperation CksDoctorFutureOperation",
        OkAnswer("200: ciphertext, IV, tag"),
        "inferred: KMSInvalidStateException for cryptographic operations KMS adds later",
        Inferred, "Specification: \"MUST NOT reject a request as invalid if it sees a kmsOperation other than those listed\" (e.g. a future BulkEncrypt); KMSInvalidStateException is KMS's error for failed cryptographic operations on external keys (KMS developer guide).",
        &[]),
    case!("forward.decrypt.unknown-operation", "Decrypt with an unlisted kmsOperation", G_FORWARD, DECRYPT, Main,
        "POST /keys/<key>/decrypt of what forward.encrypt.unknown-operation returned (or encrypt.aad, when that did not pass), kmsOperation CksDoctorFutureOperation",
        OkAnswer("200: plaintext equal to what was encrypted"),
        "inferred: KMSInvalidStateException for cryptographic operations KMS adds later",
        Inferred, "Specification: \"MUST NOT reject a request as invalid if it sees a kmsOperation other than those listed\" (e.g. a future BulkDecrypt).",
        &[]),
    // Key usage
    case!("usage.encrypt-only.encrypt", "Encrypt without AAD with an encrypt-only key", G_USAGE, ENCRYPT, EncryptOnly,
        "POST /keys/<encrypt-only key>/encrypt, plaintext \"plaintext\\n\"",
        OkAnswer("200: ciphertext, IV, tag"), KMS_NONE_USAGE, NoError, NOTE_USAGE, &[34]),
    case!("usage.encrypt-only.decrypt", "Decrypt without AAD with an encrypt-only key", G_USAGE, DECRYPT, EncryptOnly,
        "POST /keys/<encrypt-only key>/decrypt of what usage.encrypt-only.encrypt returned",
        Refusal(400, "InvalidKeyUsageException"), KMS_NONE_USAGE, NoError, NOTE_USAGE, &[35]),
    case!("usage.encrypt-only.encrypt-aad", "Encrypt with AAD with an encrypt-only key", G_USAGE, ENCRYPT, EncryptOnly,
        "POST /keys/<encrypt-only key>/encrypt, plaintext \"plaintext\\n\", AAD",
        OkAnswer("200: ciphertext, IV, tag"), KMS_NONE_USAGE, NoError, NOTE_USAGE, &[36]),
    case!("usage.encrypt-only.decrypt-aad", "Decrypt with the same AAD with an encrypt-only key", G_USAGE, DECRYPT, EncryptOnly,
        "POST /keys/<encrypt-only key>/decrypt of what usage.encrypt-only.encrypt-aad returned, same AAD",
        Refusal(400, "InvalidKeyUsageException"), KMS_NONE_USAGE, NoError, NOTE_USAGE, &[37]),
    case!("usage.encrypt-only.encrypt-aad-cdiv", "Encrypt with AAD and CDIV with an encrypt-only key", G_USAGE, ENCRYPT, EncryptOnly,
        "POST /keys/<encrypt-only key>/encrypt, AAD, ciphertextDataIntegrityValueAlgorithm SHA_256",
        Refusal(400, "InvalidKeyUsageException"), KMS_NONE_USAGE, NoError,
        "AWS's test client expects InvalidKeyUsageException: the specification's recommended flow verifies an Encrypt by decrypting it before returning the ciphertextDataIntegrityValue, which a key without DECRYPT cannot do. No KMS error (such a key cannot back a KMS key).",
        &[38]),
    case!("usage.encrypt-only.encrypt-cdiv", "Encrypt with CDIV but without AAD with an encrypt-only key", G_USAGE, ENCRYPT, EncryptOnly,
        "POST /keys/<encrypt-only key>/encrypt, no AAD, ciphertextDataIntegrityValueAlgorithm SHA_256",
        Refusal(400, "InvalidKeyUsageException"), KMS_NONE_USAGE, NoError,
        "AWS's test client expects InvalidKeyUsageException: the specification's recommended flow verifies an Encrypt by decrypting it before returning the ciphertextDataIntegrityValue, which a key without DECRYPT cannot do. No KMS error (such a key cannot back a KMS key).",
        &[39]),
    case!("usage.decrypt-only.encrypt-aad", "Encrypt with AAD with a decrypt-only key", G_USAGE, ENCRYPT, DecryptOnly,
        "POST /keys/<decrypt-only key>/encrypt, plaintext \"plaintext\\n\", AAD",
        Refusal(400, "InvalidKeyUsageException"), KMS_NONE_USAGE, NoError, NOTE_USAGE, &[40]),
    case!("usage.decrypt-only.encrypt", "Encrypt without AAD with a decrypt-only key", G_USAGE, ENCRYPT, DecryptOnly,
        "POST /keys/<decrypt-only key>/encrypt, plaintext \"plaintext\\n\"",
        Refusal(400, "InvalidKeyUsageException"), KMS_NONE_USAGE, NoError, NOTE_USAGE, &[41]),
    case!("usage.decrypt-only.encrypt-aad-cdiv", "Encrypt with AAD and CDIV with a decrypt-only key", G_USAGE, ENCRYPT, DecryptOnly,
        "POST /keys/<decrypt-only key>/encrypt, AAD, SHA_256 CDIV",
        Refusal(400, "InvalidKeyUsageException"), KMS_NONE_USAGE, NoError, NOTE_USAGE, &[42]),
    case!("usage.decrypt-only.encrypt-cdiv", "Encrypt with CDIV but without AAD with a decrypt-only key", G_USAGE, ENCRYPT, DecryptOnly,
        "POST /keys/<decrypt-only key>/encrypt, no AAD, SHA_256 CDIV",
        Refusal(400, "InvalidKeyUsageException"), KMS_NONE_USAGE, NoError, NOTE_USAGE, &[43]),
    case!("usage.impotent.encrypt-aad", "Encrypt with AAD with a key that allows neither ENCRYPT nor DECRYPT", G_USAGE, ENCRYPT, Impotent,
        "POST /keys/<impotent key>/encrypt, plaintext \"plaintext\\n\", AAD",
        Refusal(400, "InvalidKeyUsageException"), KMS_NONE_USAGE, NoError, NOTE_USAGE, &[44]),
    case!("usage.impotent.encrypt", "Encrypt without AAD with a key that allows neither ENCRYPT nor DECRYPT", G_USAGE, ENCRYPT, Impotent,
        "POST /keys/<impotent key>/encrypt, plaintext \"plaintext\\n\"",
        Refusal(400, "InvalidKeyUsageException"), KMS_NONE_USAGE, NoError, NOTE_USAGE, &[45]),
    case!("usage.impotent.encrypt-aad-cdiv", "Encrypt with AAD and CDIV with a key that allows neither ENCRYPT nor DECRYPT", G_USAGE, ENCRYPT, Impotent,
        "POST /keys/<impotent key>/encrypt, AAD, SHA_256 CDIV",
        Refusal(400, "InvalidKeyUsageException"), KMS_NONE_USAGE, NoError, NOTE_USAGE, &[46]),
    case!("usage.impotent.encrypt-cdiv", "Encrypt with CDIV but without AAD with a key that allows neither ENCRYPT nor DECRYPT", G_USAGE, ENCRYPT, Impotent,
        "POST /keys/<impotent key>/encrypt, no AAD, SHA_256 CDIV",
        Refusal(400, "InvalidKeyUsageException"), KMS_NONE_USAGE, NoError, NOTE_USAGE, &[47]),
    // Mutual TLS
    case!("mtls.expired-client-certificate", "GetHealthStatus via mutual TLS with an expired client certificate", G_MTLS, HEALTH, NoKey,
        "nothing: cks-doctor has no expired client certificate to present",
        NotRun("the TLS handshake is refused"),
        "none: KMS presents a valid certificate; a proxy that accepts an expired one is a security finding",
        NoError, "AWS's test client (test_negative_mtls) expects the handshake to fail; the specification says a proxy SHOULD authenticate KMS's client certificate.",
        &[48]),
    case!("mtls.self-signed-client-certificate", "GetHealthStatus via mutual TLS with a self-signed client certificate", G_MTLS, HEALTH, NoKey,
        "nothing: cks-doctor has no self-signed client certificate to present",
        NotRun("the TLS handshake is refused"),
        "none: KMS presents a valid certificate; a proxy that accepts a self-signed one is a security finding",
        NoError, "AWS's test client (test_negative_mtls) expects the handshake to fail; the specification says a proxy SHOULD authenticate KMS's client certificate.",
        &[49]),
    // Every answer
    case!("answers.error-names", "Every error answer names a specified errorName", G_ANSWERS, "all", NoKey,
        "nothing more: every error answer of this run",
        Every("{\"errorName\": one of the specification's 12 names, \"errorMessage\": optional, fewer than 512 printable ASCII characters}"),
        "XksProxyInvalidResponseException (Create/Update) or XKS_PROXY_INVALID_RESPONSE; KMSInvalidStateException on cryptographic operations",
        Inferred, "Specification, Errors: errorName REQUIRED from its table, errorMessage \"MUST be less than 512 characters\" of printable ASCII. That KMS cannot interpret other answers is the KMS API reference's description of XksProxyInvalidResponseException (\"cannot interpret the response\"); that this is what KMS throws for them is inferred.",
        &[]),
    case!("answers.single-line-json", "Every answer is one JSON object (on one line for AWS's test client)", G_ANSWERS, "all", NoKey,
        "nothing more: every answer of this run",
        Every("a JSON object; one over several lines passes with a note (KMS reads it; AWS's test client reads the last line of output)"),
        "not JSON: XksProxyInvalidResponseException / XKS_PROXY_INVALID_RESPONSE, KMSInvalidStateException on cryptographic operations; JSON over several lines: none (KMS parses it, only AWS's test client fails)",
        Inferred, "Specification: every answer is a JSON body. AWS's test client takes the last line of curl's output as the JSON body, so a pretty-printed answer fails its decrypt and CDIV cases although the specification does not forbid it.",
        &[]),
];

// ---------------------------------------------------------------------------------------------
// Base64 and the CDIV

/// Standard Base64 (RFC 4648 §4), padded: what the specification's "Base64" means.
pub fn base64_encode(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Strict standard Base64: the RFC 4648 §4 alphabet, padded to a multiple of 4, `=` only at the
/// end, no whitespace, unused bits zero (the `base64` crate's STANDARD engine).
pub fn base64_decode(s: &str) -> Result<Vec<u8>, String> {
    use base64::{DecodeError, Engine as _};
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| match e {
            DecodeError::InvalidByte(at, b) => format!(
                "{:?} at offset {at} is not standard Base64 (URL-safe Base64, whitespace or padding inside?)",
                b as char
            ),
            DecodeError::InvalidLength(n) => format!(
                "{n} Base64 symbols, not a whole number of bytes (unpadded Base64?)"
            ),
            DecodeError::InvalidLastSymbol { offset, symbol, .. } => format!(
                "{:?} at offset {offset} leaves unused bits set (not canonical Base64)",
                symbol as char
            ),
            DecodeError::InvalidPadding => "missing or extra padding (=)".to_string(),
        })
}

/// The specification's ciphertextDataIntegrityValue (Appendix C): Base64 of SHA-256 over the
/// decoded AAD (from the Encrypt request), ciphertextMetadata, IV, ciphertext and tag (from its
/// answer), concatenated in that order; absent fields are empty, no lengths.
pub fn cdiv(aad: &[u8], metadata: &[u8], iv: &[u8], ciphertext: &[u8], tag: &[u8]) -> String {
    let mut h = Sha256::new();
    for part in [aad, metadata, iv, ciphertext, tag] {
        h.update(part);
    }
    base64_encode(&h.finalize())
}

fn random_bytes(n: usize) -> Vec<u8> {
    use ring::rand::SecureRandom;
    let mut v = vec![0u8; n];
    if ring::rand::SystemRandom::new().fill(&mut v).is_err() {
        // Test data only: a fixed pattern still exercises the sizes.
        for (i, b) in v.iter_mut().enumerate() {
            *b = (i * 131 + 7) as u8;
        }
    }
    v
}

fn flip_bit(v: &[u8]) -> Vec<u8> {
    let mut v = v.to_vec();
    if let Some(b) = v.first_mut() {
        *b ^= 0x01;
    }
    v
}

// ---------------------------------------------------------------------------------------------
// The run

/// What an Encrypt returned, for the Decrypt after it.
#[derive(Debug, Clone)]
struct Sealed {
    plaintext: Vec<u8>,
    aad: Option<Vec<u8>>,
    ciphertext: Vec<u8>,
    iv: Vec<u8>,
    tag: Vec<u8>,
    metadata: Option<Vec<u8>>,
}

/// One answer the run saw, for the checks over every answer.
struct Seen {
    case: &'static str,
    status: u16,
    body: Vec<u8>,
}

/// How a call ended, for a case that expects a 200.
enum Answer {
    /// 200 with a JSON object.
    Object(Map<String, Value>),
    /// Recorded already (failed or could not run).
    Done,
}

struct Runner<'a> {
    opts: &'a Options,
    cfg: &'a ProbeConfig,
    client: Option<Client>,
    results: HashMap<&'static str, CaseResult>,
    seen: Vec<Seen>,
    requests: usize,
    /// Requests that got no answer in time, in a row: after three the proxy is taken as gone.
    timeouts_in_a_row: usize,
    gone: Option<String>,
    /// What encrypt.aad sealed: decrypted again by forward.decrypt.unknown-operation when
    /// forward.encrypt.unknown-operation did not pass, so that each is judged on its own.
    sealed_with_aad: Option<Sealed>,
    first_sent: Option<Instant>,
    last_answer: Option<Instant>,
}

fn def(id: &str) -> &'static CaseDef {
    CASES
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no conformance case {id}"))
}

fn expected_of(d: &CaseDef) -> Expected {
    match d.expect {
        Expect::Ok(text) => Expected {
            status: Some(200),
            error_name: None,
            text: format!("{text}, within {KMS_BUDGET_MS} ms"),
        },
        Expect::Refusal(status, name) => Expected {
            status: Some(status),
            error_name: Some(name),
            text: format!("{status} {name}"),
        },
        Expect::Every(text) | Expect::NotRun(text) => Expected {
            status: None,
            error_name: None,
            text: text.to_string(),
        },
    }
}

fn observed_of(call: Option<&Call>) -> Observed {
    match call {
        Some(c) => Observed {
            status: c.status(),
            error_name: c.error_name(),
        },
        None => Observed::default(),
    }
}

fn said(call: &Call) -> String {
    match (call.status(), call.error_name()) {
        (Some(s), Some(n)) => format!("{s} {n}"),
        (Some(s), None) => format!("{s}"),
        _ => "no answer".into(),
    }
}

fn is_no_answer_in_time(e: &str) -> bool {
    e.contains("within")
}

impl<'a> Runner<'a> {
    fn key(&self, role: KeyRole) -> Option<String> {
        match role {
            NoKey => None,
            Main => Some(self.opts.key_id.clone()),
            Unknown => Some(UNKNOWN_KEY_ID.to_string()),
            EncryptOnly => self.opts.encrypt_only_key_id.clone(),
            DecryptOnly => self.opts.decrypt_only_key_id.clone(),
            Impotent => self.opts.impotent_key_id.clone(),
        }
    }

    fn record(&mut self, id: &'static str, call: Option<&Call>, verdict: Verdict, message: String) {
        let d = def(id);
        let result = CaseResult {
            id,
            title: d.title,
            group: d.group,
            operation: d.operation,
            key_id: self.key(d.key),
            sent: d.sent,
            expected: expected_of(d),
            observed: observed_of(call),
            request_ms: call.and_then(|c| c.request_ms),
            reconnected: call.is_some_and(|c| c.reconnected),
            verdict,
            message,
            kms_error: d.kms_error.to_string(),
            kms_error_mapping: d.mapping,
            kms_error_note: d.mapping_note.to_string(),
            test_client_cases: d.test_client.to_vec(),
        };
        self.results.insert(id, result);
    }

    /// Overrides the KMS error of a recorded case (a time-out names its own).
    fn kms_error(&mut self, id: &str, error: &str, mapping: Mapping, note: &str) {
        if let Some(r) = self.results.get_mut(id) {
            r.kms_error = error.to_string();
            r.kms_error_mapping = mapping;
            r.kms_error_note = note.to_string();
        }
    }

    fn skip(&mut self, id: &'static str, why: impl Into<String>) {
        self.record(id, None, Verdict::Skip, why.into());
    }

    /// Sends one request, keeping what came back for the checks over every answer.
    async fn send(
        &mut self,
        id: &'static str,
        path: &str,
        body: Vec<u8>,
        signing: &Signing,
    ) -> Option<Call> {
        if let Some(why) = &self.gone {
            let why = why.clone();
            self.record(id, None, Verdict::Error, format!("not run: {why}"));
            return None;
        }
        let client = self.client.as_mut()?;
        self.first_sent.get_or_insert_with(Instant::now);
        let call = client.send("POST", path, body, signing).await;
        self.last_answer = Some(Instant::now());
        self.requests += 1;
        match &call.result {
            Ok(ex) => {
                self.timeouts_in_a_row = 0;
                self.seen.push(Seen {
                    case: id,
                    status: ex.status,
                    body: ex.body.clone(),
                });
            }
            Err(e) if is_no_answer_in_time(e) => {
                self.timeouts_in_a_row += 1;
                if self.timeouts_in_a_row >= 3 {
                    self.gone = Some(format!(
                        "the proxy stopped answering (three requests in a row got no answer within {}s)",
                        self.cfg.timeout.as_secs_f64()
                    ));
                }
            }
            Err(_) => {}
        }
        Some(call)
    }

    async fn post(&mut self, id: &'static str, suffix: &str, body: &Value) -> Option<Call> {
        let path = format!("{}{suffix}", self.cfg.path);
        self.send(
            id,
            &path,
            body.to_string().into_bytes(),
            &Signing::Configured,
        )
        .await
    }

    fn metadata(&self, operation: &str, with_key_arn: bool) -> Value {
        RequestMetadata {
            aws_principal_arn: self.opts.principal_arn.clone(),
            kms_key_arn: with_key_arn.then(|| self.opts.kms_key_arn.clone()),
            kms_operation: operation.to_string(),
        }
        .json()
    }

    fn health_body(operation: &str) -> Value {
        json!({ "requestMetadata": {
            "kmsRequestId": uuid::Uuid::new_v4().to_string(),
            "kmsOperation": operation,
        }})
    }

    fn encrypt_body(
        &self,
        operation: &str,
        plaintext: &[u8],
        aad: Option<&[u8]>,
        want_cdiv: bool,
    ) -> Value {
        let mut b = json!({
            "requestMetadata": self.metadata(operation, true),
            "plaintext": base64_encode(plaintext),
            "encryptionAlgorithm": "AES_GCM",
        });
        if let Some(a) = aad {
            b["additionalAuthenticatedData"] = Value::String(base64_encode(a));
        }
        if want_cdiv {
            b["ciphertextDataIntegrityValueAlgorithm"] = Value::String("SHA_256".into());
        }
        b
    }

    fn decrypt_body(&self, operation: &str, s: &Sealed) -> Value {
        let mut b = json!({
            "requestMetadata": self.metadata(operation, true),
            "ciphertext": base64_encode(&s.ciphertext),
            "encryptionAlgorithm": "AES_GCM",
            "initializationVector": base64_encode(&s.iv),
            "authenticationTag": base64_encode(&s.tag),
        });
        if let Some(m) = &s.metadata {
            b["ciphertextMetadata"] = Value::String(base64_encode(m));
        }
        if let Some(a) = &s.aad {
            b["additionalAuthenticatedData"] = Value::String(base64_encode(a));
        }
        b
    }

    /// A case that expects a refusal: the status and errorName must match.
    fn judge_refusal(&mut self, id: &'static str, call: Option<Call>) {
        let Some(call) = call else { return };
        let Expect::Refusal(status, name) = def(id).expect else {
            unreachable!("{id} expects a refusal")
        };
        let (verdict, message) = match &call.result {
            Err(e) => (Verdict::Error, format!("could not run: {e}")),
            Ok(_) => {
                let got = (call.status(), call.error_name());
                if got == (Some(status), Some(name.to_string())) {
                    (Verdict::Pass, format!("refused: {}", said(&call)))
                } else if call.status() == Some(200) {
                    (
                        Verdict::Fail,
                        format!("accepted (200) where {status} {name} was due"),
                    )
                } else {
                    (
                        Verdict::Fail,
                        format!("answered {} where {status} {name} was due", said(&call)),
                    )
                }
            }
        };
        self.record(id, Some(&call), verdict, message);
    }

    /// A case that expects a 200 with a JSON object. Records failures itself.
    fn answer(&mut self, id: &'static str, call: &Call) -> Answer {
        match &call.result {
            Err(e) if is_no_answer_in_time(e) => {
                self.record(
                    id,
                    Some(call),
                    Verdict::Fail,
                    format!("{e}: KMS would have given up after {KMS_BUDGET_MS} ms"),
                );
                self.timed_out_mapping(id);
                Answer::Done
            }
            Err(e) => {
                self.record(
                    id,
                    Some(call),
                    Verdict::Error,
                    format!("could not run: {e}"),
                );
                Answer::Done
            }
            Ok(ex) if ex.status != 200 => {
                let mut m = format!("answered {} where 200 was due", said(call));
                if let Some(msg) = call.json().and_then(|j| {
                    j.get("errorMessage")
                        .and_then(|v| v.as_str())
                        .map(String::from)
                }) {
                    m.push_str(&format!(" ({})", msg.chars().take(200).collect::<String>()));
                }
                self.record(id, Some(call), Verdict::Fail, m);
                Answer::Done
            }
            Ok(ex) => match serde_json::from_slice::<Value>(&ex.body) {
                Ok(Value::Object(o)) => Answer::Object(o),
                _ => {
                    self.record(
                        id,
                        Some(call),
                        Verdict::Fail,
                        "200 without a JSON object body".into(),
                    );
                    Answer::Done
                }
            },
        }
    }

    /// A 200 whose content was judged: a pass unless it came too late for KMS.
    fn judged(&mut self, id: &'static str, call: &Call, content: Result<String, String>) {
        match content {
            Err(e) => self.record(id, Some(call), Verdict::Fail, e),
            Ok(m) => match call.request_ms {
                Some(ms) if ms > KMS_BUDGET_MS => {
                    self.record(
                        id,
                        Some(call),
                        Verdict::Fail,
                        format!("{m}, but in {ms:.1} ms: over KMS's {KMS_BUDGET_MS} ms, KMS would time out"),
                    );
                    self.timed_out_mapping(id);
                }
                _ => self.record(id, Some(call), Verdict::Pass, m),
            },
        }
    }

    fn timed_out_mapping(&mut self, id: &'static str) {
        match def(id).operation {
            HEALTH => self.kms_error(
                id,
                "CreateCustomKeyStore: XksProxyUriUnreachableException; an existing store: XKS_PROXY_TIMED_OUT",
                Documented,
                "KMS API reference (ConnectionErrorCode XKS_PROXY_TIMED_OUT: \"the proxy does not respond to KMS in the time allotted\"); XksProxyUriUnreachableException at CreateCustomKeyStore as cks-doctor's check xks.latency.budget maps it. Measured from here, not from KMS's network.",
            ),
            METADATA => self.kms_error(
                id,
                "CreateKey fails (inferred: DependencyTimeoutException or KMSInternalException)",
                Inferred,
                "AWS documents KMS's 250 ms limit for every proxy request but no CreateKey exception for a proxy that exceeds it; these two are the candidates in CreateKey's error list. Measured from here, not from KMS's network.",
            ),
            _ => self.kms_error(
                id,
                "KMSInvalidStateException (Encrypt, Decrypt, ReEncrypt, GenerateDataKey*)",
                Inferred,
                "KMS gives up on a proxy request after 250 ms; that a time-out surfaces as KMSInvalidStateException (KMS's error for failed cryptographic operations on external keys, KMS developer guide) is inferred. Measured from here, not from KMS's network.",
            ),
        }
    }

    // --- the cases, in order

    async fn all(&mut self) {
        self.health().await;
        self.auth().await;
        self.key_metadata().await;
        self.crypto().await;
        self.tampering().await;
        self.forward().await;
        self.usage().await;
        self.mtls();
        self.answers();
    }

    async fn health(&mut self) {
        let id = "health.status";
        if let Some(call) = self
            .post(id, "/health", &Self::health_body("KmsHealthCheck"))
            .await
        {
            if let Answer::Object(o) = self.answer(id, &call) {
                let all_unavailable = o
                    .get("ekmFleetDetails")
                    .and_then(|v| v.as_array())
                    .is_some_and(|a| {
                        !a.is_empty()
                            && a.iter().all(|e| {
                                e.get("healthStatus").and_then(|s| s.as_str())
                                    == Some("UNAVAILABLE")
                            })
                    });
                let content = check_health(&o);
                self.judged(id, &call, content);
                if all_unavailable {
                    self.kms_error(
                        id,
                        "CreateCustomKeyStore: XksProxyUriUnreachableException; an existing store: XKS_PROXY_NOT_REACHABLE",
                        Documented,
                        "KMS API reference, XksProxyUriUnreachableException: \"also thrown when the external key store proxy response to a GetHealthStatus request indicates that all external key manager instances are unavailable\".",
                    );
                }
            }
        }
        let call = self.post("health.no-metadata", "/health", &json!({})).await;
        self.judge_refusal("health.no-metadata", call);
        let call = self
            .post(
                "health.empty-metadata",
                "/health",
                &json!({"requestMetadata": {}}),
            )
            .await;
        self.judge_refusal("health.empty-metadata", call);
    }

    fn wrong_prefix(&self, suffix: &str) -> String {
        let p = self.cfg.path.trim_end_matches('/');
        let prefix = p.strip_suffix("/kms/xks/v1").unwrap_or(p);
        format!("{prefix}/invalid/kms/xks/v1{suffix}")
    }

    fn wrong_access_key_id(&self) -> Signing {
        let configured = self.cfg.access_key_id.clone().unwrap_or_default();
        let id = if configured == WRONG_ACCESS_KEY_ID {
            "CKSDOCTORWRONGKEYID3".to_string()
        } else {
            WRONG_ACCESS_KEY_ID.to_string()
        };
        Signing::Credential {
            access_key_id: id,
            secret: self
                .cfg
                .secret
                .clone()
                .unwrap_or_else(|| WRONG_SECRET.to_string().into()),
        }
    }

    fn wrong_secret(&self) -> Signing {
        Signing::Credential {
            access_key_id: self.cfg.access_key_id.clone().unwrap_or_default(),
            secret: WRONG_SECRET.to_string().into(),
        }
    }

    async fn refusal_with(
        &mut self,
        id: &'static str,
        path: String,
        body: &Value,
        signing: Signing,
    ) {
        let call = self
            .send(id, &path, body.to_string().into_bytes(), &signing)
            .await;
        self.judge_refusal(id, call);
    }

    async fn auth(&mut self) {
        let health = self.cfg.path.clone() + "/health";
        let hb = Self::health_body("KmsHealthCheck");
        let s = self.wrong_access_key_id();
        self.refusal_with("auth.health.wrong-access-key-id", health.clone(), &hb, s)
            .await;
        let s = self.wrong_secret();
        self.refusal_with("auth.health.wrong-secret", health.clone(), &hb, s)
            .await;
        let p = self.wrong_prefix("/health");
        self.refusal_with("auth.health.wrong-prefix", p, &hb, Signing::Configured)
            .await;
        self.refusal_with(
            "auth.health.unsigned",
            health.clone(),
            &hb,
            Signing::Unsigned,
        )
        .await;
        self.refusal_with(
            "auth.health.clock-ahead",
            health.clone(),
            &hb,
            Signing::ClockOffset(CLOCK_OFFSET_SECS),
        )
        .await;
        self.refusal_with(
            "auth.health.clock-behind",
            health,
            &hb,
            Signing::ClockOffset(-CLOCK_OFFSET_SECS),
        )
        .await;

        let key = self.opts.key_id.clone();
        let md_suffix = key_path(&key, "metadata");
        let md_path = format!("{}{md_suffix}", self.cfg.path);
        let mb = json!({ "requestMetadata": self.metadata("DescribeKey", true) });
        let s = self.wrong_access_key_id();
        self.refusal_with("auth.metadata.wrong-access-key-id", md_path.clone(), &mb, s)
            .await;
        let s = self.wrong_secret();
        self.refusal_with("auth.metadata.wrong-secret", md_path, &mb, s)
            .await;
        let p = self.wrong_prefix(&md_suffix);
        self.refusal_with("auth.metadata.wrong-prefix", p, &mb, Signing::Configured)
            .await;

        let enc_suffix = key_path(&key, "encrypt");
        let enc_path = format!("{}{enc_suffix}", self.cfg.path);
        let eb = self.encrypt_body("Encrypt", P1, None, false);
        let s = self.wrong_access_key_id();
        self.refusal_with("auth.encrypt.wrong-access-key-id", enc_path.clone(), &eb, s)
            .await;
        let s = self.wrong_secret();
        self.refusal_with("auth.encrypt.wrong-secret", enc_path.clone(), &eb, s)
            .await;
        let p = self.wrong_prefix(&enc_suffix);
        self.refusal_with("auth.encrypt.wrong-prefix", p, &eb, Signing::Configured)
            .await;
        self.refusal_with("auth.encrypt.unsigned", enc_path, &eb, Signing::Unsigned)
            .await;
    }

    async fn metadata_case(&mut self, id: &'static str, key: &str, body: Value) {
        let suffix = key_path(key, "metadata");
        if let Some(call) = self.post(id, &suffix, &body).await {
            if let Answer::Object(o) = self.answer(id, &call) {
                let content = check_key_metadata(&o);
                self.judged(id, &call, content);
            }
        }
    }

    async fn key_metadata(&mut self) {
        let key = self.opts.key_id.clone();
        let b = json!({ "requestMetadata": self.metadata("DescribeKey", true) });
        self.metadata_case("metadata.describe-key", &key, b).await;
        let b = json!({ "requestMetadata": self.metadata("CreateKey", false) });
        self.metadata_case("metadata.create-key", &key, b).await;
        let suffix = key_path(&key, "metadata");
        let call = self.post("metadata.no-metadata", &suffix, &json!({})).await;
        self.judge_refusal("metadata.no-metadata", call);
        let call = self
            .post(
                "metadata.empty-metadata",
                &suffix,
                &json!({"requestMetadata": {}}),
            )
            .await;
        self.judge_refusal("metadata.empty-metadata", call);
        let b = json!({ "requestMetadata": self.metadata("CreateKey", false) });
        let call = self
            .post(
                "metadata.unknown-key",
                &key_path(UNKNOWN_KEY_ID, "metadata"),
                &b,
            )
            .await;
        self.judge_refusal("metadata.unknown-key", call);
    }

    /// An Encrypt that must succeed; returns what it sealed.
    async fn encrypt_ok(
        &mut self,
        id: &'static str,
        key: &str,
        operation: &str,
        plaintext: &[u8],
        aad: Option<&[u8]>,
        want_cdiv: bool,
    ) -> Option<Sealed> {
        let body = self.encrypt_body(operation, plaintext, aad, want_cdiv);
        let call = self.post(id, &key_path(key, "encrypt"), &body).await?;
        let Answer::Object(o) = self.answer(id, &call) else {
            return None;
        };
        let content = check_encrypt(&o, plaintext, aad, want_cdiv);
        let sealed = content.as_ref().ok().map(|(s, _)| s.clone());
        self.judged(id, &call, content.map(|(_, m)| m));
        sealed
    }

    /// A Decrypt that must give back `sealed.plaintext`.
    async fn decrypt_ok(
        &mut self,
        id: &'static str,
        after: &'static str,
        key: &str,
        operation: &str,
        sealed: Option<&Sealed>,
    ) {
        let Some(s) = sealed else {
            self.skip(
                id,
                format!("needs the ciphertext of {after}, which did not pass"),
            );
            return;
        };
        let body = self.decrypt_body(operation, s);
        let Some(call) = self.post(id, &key_path(key, "decrypt"), &body).await else {
            return;
        };
        if let Answer::Object(o) = self.answer(id, &call) {
            let content = check_decrypt(&o, &s.plaintext);
            self.judged(id, &call, content);
        }
    }

    async fn decrypt_refused(
        &mut self,
        id: &'static str,
        after: &'static str,
        key: &str,
        sealed: Option<Sealed>,
    ) {
        let Some(s) = sealed else {
            self.skip(
                id,
                format!("needs the ciphertext of {after}, which did not pass"),
            );
            return;
        };
        let body = self.decrypt_body("Decrypt", &s);
        let call = self.post(id, &key_path(key, "decrypt"), &body).await;
        self.judge_refusal(id, call);
    }

    async fn encrypt_refused(
        &mut self,
        id: &'static str,
        key: &str,
        plaintext: Option<&[u8]>,
        aad: Option<&[u8]>,
        want_cdiv: bool,
    ) {
        let mut body = self.encrypt_body("Encrypt", plaintext.unwrap_or(b""), aad, want_cdiv);
        if plaintext.is_none() {
            if let Some(o) = body.as_object_mut() {
                o.remove("plaintext");
            }
        }
        let call = self.post(id, &key_path(key, "encrypt"), &body).await;
        self.judge_refusal(id, call);
    }

    async fn crypto(&mut self) {
        let key = self.opts.key_id.clone();
        self.encrypt_refused("encrypt.unknown-key", UNKNOWN_KEY_ID, Some(P1), None, false)
            .await;
        self.encrypt_refused("encrypt.no-plaintext", &key, None, None, false)
            .await;

        let s = self
            .encrypt_ok("encrypt.no-aad", &key, "Encrypt", P2, None, false)
            .await;
        self.decrypt_ok(
            "decrypt.no-aad",
            "encrypt.no-aad",
            &key,
            "Decrypt",
            s.as_ref(),
        )
        .await;
        let s = self
            .encrypt_ok("encrypt.aad", &key, "Encrypt", P2, Some(AAD), false)
            .await;
        self.decrypt_ok("decrypt.aad", "encrypt.aad", &key, "Decrypt", s.as_ref())
            .await;
        self.sealed_with_aad = s;
        let s = self
            .encrypt_ok("encrypt.aad-cdiv", &key, "Encrypt", P2, Some(AAD), true)
            .await;
        self.decrypt_ok(
            "decrypt.aad-cdiv",
            "encrypt.aad-cdiv",
            &key,
            "Decrypt",
            s.as_ref(),
        )
        .await;
        let s = self
            .encrypt_ok("encrypt.cdiv-no-aad", &key, "Encrypt", P2, None, true)
            .await;
        self.decrypt_ok(
            "decrypt.cdiv-no-aad",
            "encrypt.cdiv-no-aad",
            &key,
            "Decrypt",
            s.as_ref(),
        )
        .await;
        let plaintext = random_bytes(MAX_PLAINTEXT_BYTES);
        let aad = random_bytes(MAX_AAD_BYTES);
        let s = self
            .encrypt_ok(
                "encrypt.largest",
                &key,
                "Encrypt",
                &plaintext,
                Some(&aad),
                true,
            )
            .await;
        self.decrypt_ok(
            "decrypt.largest",
            "encrypt.largest",
            &key,
            "Decrypt",
            s.as_ref(),
        )
        .await;
    }

    async fn tampering(&mut self) {
        let key = self.opts.key_id.clone();
        let from = "encrypt.for-tampering";
        let s = self
            .encrypt_ok(from, &key, "Encrypt", P1, Some(AAD), false)
            .await;
        let changed = |f: &dyn Fn(&mut Sealed)| {
            s.clone().map(|mut s| {
                f(&mut s);
                s
            })
        };
        let missing_aad = changed(&|s| s.aad = None);
        let other_aad = changed(&|s| s.aad = Some(AAD2.to_vec()));
        let ciphertext = changed(&|s| s.ciphertext = flip_bit(&s.ciphertext));
        let tag = changed(&|s| s.tag = flip_bit(&s.tag));
        let iv = changed(&|s| s.iv = flip_bit(&s.iv));
        let metadata = changed(&|s| s.metadata = s.metadata.as_deref().map(flip_bit));
        self.decrypt_refused("decrypt.missing-aad", from, &key, missing_aad)
            .await;
        self.decrypt_refused("decrypt.other-aad", from, &key, other_aad)
            .await;
        self.decrypt_refused("decrypt.changed-ciphertext", from, &key, ciphertext)
            .await;
        self.decrypt_refused("decrypt.changed-tag", from, &key, tag)
            .await;
        self.decrypt_refused("decrypt.changed-iv", from, &key, iv)
            .await;
        match &metadata {
            Some(m) if m.metadata.as_deref().is_none_or(|v| v.is_empty()) => self.skip(
                "decrypt.changed-metadata",
                "the proxy returns no ciphertextMetadata: nothing to change",
            ),
            _ => {
                self.decrypt_refused("decrypt.changed-metadata", from, &key, metadata)
                    .await
            }
        }
    }

    async fn forward(&mut self) {
        let id = "forward.health.unknown-operation";
        if let Some(call) = self
            .post(id, "/health", &Self::health_body(UNKNOWN_OPERATION))
            .await
        {
            if let Answer::Object(o) = self.answer(id, &call) {
                let content = check_health(&o);
                self.judged(id, &call, content);
            }
        }
        let key = self.opts.key_id.clone();
        let b = json!({ "requestMetadata": self.metadata(UNKNOWN_OPERATION, true) });
        self.metadata_case("forward.metadata.unknown-operation", &key, b)
            .await;
        let s = self
            .encrypt_ok(
                "forward.encrypt.unknown-operation",
                &key,
                UNKNOWN_OPERATION,
                P2,
                Some(AAD),
                false,
            )
            .await;
        let s = s.or_else(|| self.sealed_with_aad.clone());
        self.decrypt_ok(
            "forward.decrypt.unknown-operation",
            "forward.encrypt.unknown-operation",
            &key,
            UNKNOWN_OPERATION,
            s.as_ref(),
        )
        .await;
    }

    async fn usage(&mut self) {
        const EO: [&str; 6] = [
            "usage.encrypt-only.encrypt",
            "usage.encrypt-only.decrypt",
            "usage.encrypt-only.encrypt-aad",
            "usage.encrypt-only.decrypt-aad",
            "usage.encrypt-only.encrypt-aad-cdiv",
            "usage.encrypt-only.encrypt-cdiv",
        ];
        match self.opts.encrypt_only_key_id.clone() {
            None => {
                for id in EO {
                    self.skip(id, "no --encrypt-only-key-id given");
                }
            }
            Some(k) => {
                let s = self.encrypt_ok(EO[0], &k, "Encrypt", P1, None, false).await;
                self.decrypt_refused(EO[1], EO[0], &k, s).await;
                let s = self
                    .encrypt_ok(EO[2], &k, "Encrypt", P1, Some(AAD), false)
                    .await;
                self.decrypt_refused(EO[3], EO[2], &k, s).await;
                self.encrypt_refused(EO[4], &k, Some(P1), Some(AAD), true)
                    .await;
                self.encrypt_refused(EO[5], &k, Some(P1), None, true).await;
            }
        }
        for (key, flag, ids) in [
            (
                self.opts.decrypt_only_key_id.clone(),
                "--decrypt-only-key-id",
                [
                    "usage.decrypt-only.encrypt-aad",
                    "usage.decrypt-only.encrypt",
                    "usage.decrypt-only.encrypt-aad-cdiv",
                    "usage.decrypt-only.encrypt-cdiv",
                ],
            ),
            (
                self.opts.impotent_key_id.clone(),
                "--impotent-key-id",
                [
                    "usage.impotent.encrypt-aad",
                    "usage.impotent.encrypt",
                    "usage.impotent.encrypt-aad-cdiv",
                    "usage.impotent.encrypt-cdiv",
                ],
            ),
        ] {
            match key {
                None => {
                    for id in ids {
                        self.skip(id, format!("no {flag} given"));
                    }
                }
                Some(k) => {
                    self.encrypt_refused(ids[0], &k, Some(P1), Some(AAD), false)
                        .await;
                    self.encrypt_refused(ids[1], &k, Some(P1), None, false)
                        .await;
                    self.encrypt_refused(ids[2], &k, Some(P1), Some(AAD), true)
                        .await;
                    self.encrypt_refused(ids[3], &k, Some(P1), None, true).await;
                }
            }
        }
    }

    fn mtls(&mut self) {
        let asked = self
            .client
            .as_ref()
            .and_then(|c| c.client_cert_requested())
            .is_some();
        let why = if asked {
            "cks-doctor has no expired or self-signed client certificate to present: run AWS's test client's test_negative_mtls for this case"
        } else {
            "the proxy does not ask for a client certificate (no mutual TLS): there is nothing to refuse"
        };
        self.skip("mtls.expired-client-certificate", why);
        self.skip("mtls.self-signed-client-certificate", why);
    }

    fn answers(&mut self) {
        if self.seen.is_empty() {
            for id in ["answers.error-names", "answers.single-line-json"] {
                self.record(
                    id,
                    None,
                    Verdict::Error,
                    "could not run: no answer came".into(),
                );
            }
            return;
        }
        let mut bad_names = Vec::new();
        let mut errors = 0;
        for s in &self.seen {
            if s.status == 200 {
                continue;
            }
            errors += 1;
            if let Err(e) = check_error_body(&s.body) {
                bad_names.push(format!("{} ({}): {e}", s.case, s.status));
            }
        }
        let (v, m) = if bad_names.is_empty() {
            (
                Verdict::Pass,
                format!("{errors} error answers, each with a specified errorName and a valid errorMessage"),
            )
        } else {
            (
                Verdict::Fail,
                format!(
                    "{} of {errors} error answers: {}",
                    bad_names.len(),
                    bad_names
                        .iter()
                        .take(4)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            )
        };
        self.record("answers.error-names", None, v, m);

        // Not a JSON object: KMS cannot read it (FAIL). A JSON object over several lines: KMS
        // reads it, only AWS's test client (which takes curl's last line) does not, so that is
        // said, not failed.
        let mut bad = Vec::new();
        let mut multi_line = Vec::new();
        for s in &self.seen {
            match body_shape(&s.body) {
                BodyShape::OneLine => {}
                BodyShape::Lines(n) => multi_line.push(format!(
                    "{} ({}): a JSON object over {n} lines",
                    s.case, s.status
                )),
                BodyShape::NotAnObject(e) => bad.push(format!("{} ({}): {e}", s.case, s.status)),
            }
        }
        let (v, m) = if bad.is_empty() && multi_line.is_empty() {
            (
                Verdict::Pass,
                format!(
                    "{} answers, each one JSON object on one line",
                    self.seen.len()
                ),
            )
        } else if bad.is_empty() {
            (
                Verdict::Pass,
                format!(
                    "{} answers, each one JSON object; {} of them over several lines, which KMS reads but AWS's test client does not (it takes the last line of curl's output): {}",
                    self.seen.len(),
                    multi_line.len(),
                    multi_line.iter().take(4).cloned().collect::<Vec<_>>().join("; ")
                ),
            )
        } else {
            (
                Verdict::Fail,
                format!(
                    "{} of {} answers: {}",
                    bad.len(),
                    self.seen.len(),
                    bad.iter().take(4).cloned().collect::<Vec<_>>().join("; ")
                ),
            )
        };
        self.record("answers.single-line-json", None, v, m);
    }
}

// ---------------------------------------------------------------------------------------------
// What the answers must hold

fn str_field<'o>(o: &'o Map<String, Value>, name: &str) -> Result<&'o str, String> {
    match o.get(name) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(format!("{name} is not a string")),
        None => Err(format!("{name} is missing")),
    }
}

fn check_health(o: &Map<String, Value>) -> Result<String, String> {
    let size = match o.get("xksProxyFleetSize") {
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) if v > 0 => v,
            _ => {
                return Err(format!(
                    "200, but xksProxyFleetSize is {n}, not an integer > 0"
                ))
            }
        },
        Some(_) => return Err("200, but xksProxyFleetSize is not a number".into()),
        None => return Err("200, but xksProxyFleetSize is missing".into()),
    };
    let vendor = str_field(o, "xksProxyVendor").map_err(|e| format!("200, but {e}"))?;
    let model = str_field(o, "xksProxyModel").map_err(|e| format!("200, but {e}"))?;
    let ekm = str_field(o, "ekmVendor").map_err(|e| format!("200, but {e}"))?;
    let Some(Value::Array(fleet)) = o.get("ekmFleetDetails") else {
        return Err("200, but ekmFleetDetails is missing or not an array".into());
    };
    if fleet.is_empty() || fleet.len() > 10 {
        return Err(format!(
            "200, but ekmFleetDetails has {} entries (1 to 10 allowed)",
            fleet.len()
        ));
    }
    let mut statuses = Vec::new();
    for (i, e) in fleet.iter().enumerate() {
        let Some(e) = e.as_object() else {
            return Err(format!("200, but ekmFleetDetails[{i}] is not an object"));
        };
        for f in ["id", "model"] {
            str_field(e, f).map_err(|m| format!("200, but ekmFleetDetails[{i}].{m}"))?;
        }
        let st = str_field(e, "healthStatus")
            .map_err(|m| format!("200, but ekmFleetDetails[{i}].{m}"))?;
        if !matches!(st, "ACTIVE" | "DEGRADED" | "UNAVAILABLE") {
            return Err(format!(
                "200, but ekmFleetDetails[{i}].healthStatus is {st:?} (ACTIVE, DEGRADED or UNAVAILABLE)"
            ));
        }
        statuses.push(st);
    }
    if statuses.iter().all(|s| *s == "UNAVAILABLE") {
        return Err("200, but every ekmFleetDetails entry is UNAVAILABLE: the external key manager cannot serve".into());
    }
    Ok(format!(
        "200 from {vendor} {model} (EKM {ekm}), fleet size {size}, EKM {}",
        statuses.join(", ")
    ))
}

fn check_key_metadata(o: &Map<String, Value>) -> Result<String, String> {
    let spec = str_field(o, "keySpec").map_err(|e| format!("200, but {e}"))?;
    let status = str_field(o, "keyStatus").map_err(|e| format!("200, but {e}"))?;
    let Some(Value::Array(usage)) = o.get("keyUsage") else {
        return Err("200, but keyUsage is missing or not an array".into());
    };
    let usage: Vec<&str> = usage.iter().filter_map(|v| v.as_str()).collect();
    let mut problems = Vec::new();
    if spec != "AES_256" {
        problems.push(format!("keySpec is {spec:?}, not AES_256"));
    }
    for u in ["ENCRYPT", "DECRYPT"] {
        if !usage.contains(&u) {
            problems.push(format!("keyUsage {usage:?} lacks {u}"));
        }
    }
    if usage.len() > 10 {
        problems.push(format!("keyUsage has {} values (at most 10)", usage.len()));
    }
    if status != "ENABLED" {
        problems.push(format!("keyStatus is {status:?}, not ENABLED"));
    }
    if problems.is_empty() {
        Ok(format!("200: {spec}, {}, {status}", usage.join("+")))
    } else {
        Err(format!("200, but {}", problems.join("; ")))
    }
}

fn b64_field(o: &Map<String, Value>, name: &str) -> Result<Option<Vec<u8>>, String> {
    match o.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => base64_decode(s)
            .map(Some)
            .map_err(|e| format!("{name} is not standard Base64: {e}")),
        Some(_) => Err(format!("{name} is not a string")),
    }
}

fn check_encrypt(
    o: &Map<String, Value>,
    plaintext: &[u8],
    aad: Option<&[u8]>,
    want_cdiv: bool,
) -> Result<(Sealed, String), String> {
    let bad = |e: String| format!("200, but {e}");
    let need = |name: &str| -> Result<Vec<u8>, String> {
        b64_field(o, name)?.ok_or_else(|| format!("{name} is missing"))
    };
    let ciphertext = need("ciphertext").map_err(bad)?;
    let iv = need("initializationVector").map_err(bad)?;
    let tag = need("authenticationTag").map_err(bad)?;
    let metadata = b64_field(o, "ciphertextMetadata").map_err(bad)?;
    let mut problems = Vec::new();
    if ciphertext.len() != plaintext.len() {
        problems.push(format!(
            "the ciphertext is {} bytes for {} bytes of plaintext (AES-GCM keeps the length; the tag goes apart)",
            ciphertext.len(),
            plaintext.len()
        ));
    }
    if iv.len() != 12 && iv.len() != 16 {
        problems.push(format!(
            "the initializationVector is {} bytes (12 or 16)",
            iv.len()
        ));
    }
    if tag.len() != 16 {
        problems.push(format!("the authenticationTag is {} bytes (16)", tag.len()));
    }
    if let Some(m) = &metadata {
        if m.len() > MAX_CIPHERTEXT_METADATA_BYTES {
            problems.push(format!(
                "ciphertextMetadata is {} bytes (at most {MAX_CIPHERTEXT_METADATA_BYTES}: KMS rejects the answer)",
                m.len()
            ));
        }
    }
    let mut note = String::new();
    if want_cdiv {
        let want = cdiv(
            aad.unwrap_or(&[]),
            metadata.as_deref().unwrap_or(&[]),
            &iv,
            &ciphertext,
            &tag,
        );
        match o.get("ciphertextDataIntegrityValue") {
            None | Some(Value::Null) => problems.push(
                "ciphertextDataIntegrityValue is missing (it was asked for with SHA_256)".into(),
            ),
            Some(Value::String(got)) => {
                if *got != want {
                    problems.push(format!(
                        "ciphertextDataIntegrityValue {got} is not Base64(SHA-256(AAD || ciphertextMetadata || IV || ciphertext || tag)) = {want}"
                    ));
                } else {
                    note = ", ciphertextDataIntegrityValue verified".into();
                }
            }
            Some(_) => problems.push("ciphertextDataIntegrityValue is not a string".into()),
        }
    }
    if !problems.is_empty() {
        return Err(bad(problems.join("; ")));
    }
    let m = format!(
        "200: {} bytes of ciphertext, {}-byte IV, 16-byte tag{}{note}",
        ciphertext.len(),
        iv.len(),
        metadata
            .as_ref()
            .map(|m| format!(", {}-byte ciphertextMetadata", m.len()))
            .unwrap_or_default()
    );
    Ok((
        Sealed {
            plaintext: plaintext.to_vec(),
            aad: aad.map(<[u8]>::to_vec),
            ciphertext,
            iv,
            tag,
            metadata,
        },
        m,
    ))
}

fn check_decrypt(o: &Map<String, Value>, plaintext: &[u8]) -> Result<String, String> {
    match b64_field(o, "plaintext") {
        Err(e) => Err(format!("200, but {e}")),
        Ok(None) => Err("200, but plaintext is missing".into()),
        Ok(Some(p)) if p == plaintext => Ok(format!("200: the {} bytes encrypted", p.len())),
        Ok(Some(p)) => Err(format!(
            "200, but the plaintext ({} bytes) is not what was encrypted ({} bytes)",
            p.len(),
            plaintext.len()
        )),
    }
}

fn check_error_body(body: &[u8]) -> Result<(), String> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|_| "not a JSON body ({\"errorName\": ...} is due)".to_string())?;
    let o = v.as_object().ok_or("not a JSON object")?;
    let name = match o.get("errorName") {
        Some(Value::String(s)) => s,
        Some(_) => return Err("errorName is not a string".into()),
        None => return Err("no errorName".into()),
    };
    if !SPEC_ERROR_NAMES.contains(&name.as_str()) {
        return Err(format!(
            "errorName {:?} is not one the specification lists",
            name.chars().take(60).collect::<String>()
        ));
    }
    match o.get("errorMessage") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(m)) => {
            if m.chars().count() >= 512 {
                Err(format!(
                    "errorMessage has {} characters (fewer than 512)",
                    m.chars().count()
                ))
            } else if let Some(c) = m.chars().find(|c| !(' '..='~').contains(c)) {
                Err(format!("errorMessage holds {c:?}, not printable ASCII"))
            } else {
                Ok(())
            }
        }
        Some(_) => Err("errorMessage is not a string".into()),
    }
}

/// How an answer's body reads: one JSON object on one line (as AWS's test client needs), one
/// over several lines (KMS reads it), or not a JSON object at all (KMS cannot).
#[derive(Debug, PartialEq)]
enum BodyShape {
    OneLine,
    Lines(usize),
    NotAnObject(&'static str),
}

fn body_shape(body: &[u8]) -> BodyShape {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(_)) => {}
        Ok(_) => return BodyShape::NotAnObject("JSON, but not an object"),
        Err(_) if body.is_empty() => return BodyShape::NotAnObject("an empty body"),
        Err(_) => return BodyShape::NotAnObject("not JSON"),
    }
    let text = String::from_utf8_lossy(body);
    let inner = text.trim_end_matches(['\n', '\r']);
    if inner.contains(['\n', '\r']) {
        return BodyShape::Lines(inner.lines().count());
    }
    BodyShape::OneLine
}

fn summarize(cases: &[CaseResult], wall_ms: f64, requests_wall_ms: Option<f64>) -> Summary {
    let count = |v: Verdict| cases.iter().filter(|c| c.verdict == v).count();
    let mut times: Vec<f64> = cases.iter().filter_map(|c| c.request_ms).collect();
    times.sort_by(|a, b| a.total_cmp(b));
    let median = if times.is_empty() {
        None
    } else if times.len() % 2 == 1 {
        Some(times[times.len() / 2])
    } else {
        let m = times.len() / 2;
        Some(((times[m - 1] + times[m]) / 2.0 * 10.0).round() / 10.0)
    };
    Summary {
        total: cases.len(),
        pass: count(Verdict::Pass),
        fail: count(Verdict::Fail),
        skip: count(Verdict::Skip),
        error: count(Verdict::Error),
        latency: Latency {
            count: times.len(),
            min_ms: times.first().copied(),
            median_ms: median,
            max_ms: times.last().copied(),
            sum_ms: (times.iter().sum::<f64>() * 10.0).round() / 10.0,
            budget_ms: KMS_BUDGET_MS,
            over_budget: times.iter().filter(|t| **t > KMS_BUDGET_MS).count(),
        },
        wall_ms: (wall_ms * 10.0).round() / 10.0,
        requests_wall_ms: requests_wall_ms.map(|w| (w * 10.0).round() / 10.0),
    }
}

fn verdict_text(s: &Summary) -> String {
    if s.fail > 0 {
        format!(
            "The proxy does not conform: {} of {} cases failed",
            s.fail, s.total
        )
    } else if s.error > 0 {
        format!(
            "No case failed, but {} of {} could not run",
            s.error, s.total
        )
    } else {
        format!(
            "The proxy conforms: {} cases passed{}",
            s.pass,
            if s.skip > 0 {
                format!(", {} skipped", s.skip)
            } else {
                String::new()
            }
        )
    }
}

/// The target as the report shows it (no secret: only the access key id).
pub fn target(cfg: &ProbeConfig, uri_endpoint: &str, opts: &Options) -> Target {
    Target {
        uri_endpoint: uri_endpoint.to_string(),
        uri_path: cfg.path.clone(),
        region: cfg.region.clone(),
        access_key_id: cfg.access_key_id.clone(),
        key_id: opts.key_id.clone(),
        encrypt_only_key_id: opts.encrypt_only_key_id.clone(),
        decrypt_only_key_id: opts.decrypt_only_key_id.clone(),
        impotent_key_id: opts.impotent_key_id.clone(),
        principal_arn: opts.principal_arn.clone(),
        kms_key_arn: opts.kms_key_arn.clone(),
        connect_to: cfg.connect_to.map(|a| a.to_string()),
    }
}

/// Runs every case on one connection, in order. Never fails: a connection that cannot be made
/// makes every case "could not run".
pub async fn run(cfg: &ProbeConfig, uri_endpoint: &str, opts: &Options) -> Run {
    let started = Instant::now();
    let mut r = Runner {
        opts,
        cfg,
        client: None,
        results: HashMap::new(),
        seen: Vec::new(),
        requests: 0,
        timeouts_in_a_row: 0,
        gone: None,
        sealed_with_aad: None,
        first_sent: None,
        last_answer: None,
    };
    let mut connection = ConnectionInfo::default();
    match Client::connect(cfg).await {
        Ok(client) => {
            connection.tls_version = Some(client.tls.version.clone());
            connection.cipher_suite = Some(client.tls.cipher_suite.clone());
            connection.connect_ms = Some(client.connect_ms);
            connection.tls_ms = Some(client.tls_ms);
            r.client = Some(client);
            r.all().await;
        }
        Err(e) => {
            connection.error = Some(e.clone());
            for d in CASES {
                r.record(d.id, None, Verdict::Error, format!("could not run: {e}"));
            }
        }
    }
    let wall_ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Some(c) = &r.client {
        connection.connections = c.connections;
        connection.client_certificate_requested = c.client_cert_requested().is_some();
    }
    connection.requests = r.requests;
    let mut results = std::mem::take(&mut r.results);
    let cases: Vec<CaseResult> = CASES
        .iter()
        .map(|d| {
            results.remove(d.id).unwrap_or_else(|| CaseResult {
                id: d.id,
                title: d.title,
                group: d.group,
                operation: d.operation,
                key_id: r.key(d.key),
                sent: d.sent,
                expected: expected_of(d),
                observed: Observed::default(),
                request_ms: None,
                reconnected: false,
                verdict: Verdict::Error,
                message: "could not run".into(),
                kms_error: d.kms_error.to_string(),
                kms_error_mapping: d.mapping,
                kms_error_note: d.mapping_note.to_string(),
                test_client_cases: d.test_client.to_vec(),
            })
        })
        .collect();
    let requests_wall_ms = match (r.first_sent, r.last_answer) {
        (Some(a), Some(b)) => Some(b.duration_since(a).as_secs_f64() * 1000.0),
        _ => None,
    };
    let summary = summarize(&cases, wall_ms, requests_wall_ms);
    Run {
        schema_version: 1,
        command: "conformance",
        target: target(cfg, uri_endpoint, opts),
        connection,
        verdict: verdict_text(&summary),
        cases,
        summary,
        references: REFERENCES
            .iter()
            .map(|(name, url)| Reference { name, url })
            .collect(),
    }
}

/// The case list as a Markdown table (docs/conformance.md holds it between its
/// `<!-- cases:begin -->` and `<!-- cases:end -->` markers; the tests keep them equal).
pub fn cases_markdown() -> String {
    let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    let mut out = String::from(
        "| case | AWS test client | sent | expected | KMS error when it fails | mapping |\n|---|---|---|---|---|---|\n",
    );
    for d in CASES {
        let tc = d
            .test_client
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let e = expected_of(d);
        let mapping = match d.mapping {
            Mapping::Documented => "documented",
            Mapping::Inferred => "inferred",
            Mapping::None => "no KMS error",
        };
        out.push_str(&format!(
            "| `{}` {} | {} | {} | {} | {} | {}: {} |\n",
            d.id,
            cell(d.title),
            if tc.is_empty() { "–".into() } else { tc },
            cell(d.sent),
            cell(&e.text),
            cell(d.kms_error),
            mapping,
            cell(d.mapping_note)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdiv_is_the_specification_example() {
        // Appendix C's example: AAD, ciphertextMetadata, IV, ciphertext and tag of the spec's
        // Encrypt response.
        let aad = base64_decode("cHJvamVjdD1uaWxlLGRlcGFydG1lbnQ9bWFya2V0aW5n").unwrap();
        let ctm = base64_decode("a2V5X3ZlcnNpb249MQ==").unwrap();
        let iv = base64_decode("HMrlRw85cAJUd5Ax").unwrap();
        let ct = base64_decode("ghxkK1txeDNn3q8Y").unwrap();
        let tag = base64_decode("vBxN2ncH1oEkR8WVXpmyYQ==").unwrap();
        assert_eq!(
            cdiv(&aad, &ctm, &iv, &ct, &tag),
            "qHA/ImC9h5HsLRXqCyPmWgYx7tzyoTplzILbP0fPXsc="
        );
    }

    #[test]
    fn base64_round_trips_and_is_strict() {
        for n in 0..40 {
            let v: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(base64_decode(&base64_encode(&v)).unwrap(), v);
        }
        assert!(base64_decode("SGVsbG8").is_err(), "unpadded");
        assert!(base64_decode("SGV-bG8h").is_err(), "URL-safe");
        assert!(base64_decode("SG==bG8h").is_err(), "padding inside");
        assert!(base64_decode("SGVsbG9=").is_err(), "non-zero padding bits");
    }

    #[test]
    fn every_case_is_unique_and_covers_the_test_client() {
        let mut ids: Vec<&str> = CASES.iter().map(|c| c.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), CASES.len());
        let mut covered: Vec<u8> = CASES
            .iter()
            .flat_map(|c| c.test_client.iter().copied())
            .collect();
        covered.sort();
        covered.dedup();
        assert_eq!(covered, (1..=49).collect::<Vec<u8>>());
    }

    #[test]
    fn error_bodies_are_judged_as_the_specification_says() {
        assert!(check_error_body(br#"{"errorName":"KeyNotFoundException"}"#).is_ok());
        assert!(check_error_body(br#"{"errorName":"KeyNotFound"}"#).is_err());
        assert!(check_error_body(
            br#"{"errorName":"InternalException","errorMessage":"caf\u00e9"}"#
        )
        .is_err());
        let long = format!(
            r#"{{"errorName":"InternalException","errorMessage":"{}"}}"#,
            "a".repeat(512)
        );
        assert!(check_error_body(long.as_bytes()).is_err());
        assert!(check_error_body(b"<html>").is_err());
        assert_eq!(body_shape(b"{\"a\":1}\n"), BodyShape::OneLine);
        assert_eq!(body_shape(b"{\n\"a\":1}"), BodyShape::Lines(2));
        assert_eq!(
            body_shape(b"[1]"),
            BodyShape::NotAnObject("JSON, but not an object")
        );
    }

    #[test]
    fn health_and_metadata_fields() {
        let o = |v: Value| v.as_object().unwrap().clone();
        let good = o(
            json!({"xksProxyFleetSize":2,"xksProxyVendor":"v","xksProxyModel":"m","ekmVendor":"e",
            "ekmFleetDetails":[{"id":"a","model":"b","healthStatus":"ACTIVE"}]}),
        );
        assert!(check_health(&good).is_ok());
        let mut bad = good.clone();
        bad.insert("xksProxyFleetSize".into(), json!(0));
        assert!(check_health(&bad).is_err());
        assert!(check_key_metadata(&o(
            json!({"keySpec":"AES_256","keyUsage":["ENCRYPT","DECRYPT"],"keyStatus":"ENABLED"})
        ))
        .is_ok());
        let e = check_key_metadata(&o(
            json!({"keySpec":"RSA_2048","keyUsage":["ENCRYPT"],"keyStatus":"DISABLED"}),
        ))
        .unwrap_err();
        assert!(
            e.contains("keySpec") && e.contains("DECRYPT") && e.contains("keyStatus"),
            "{e}"
        );
    }
}
