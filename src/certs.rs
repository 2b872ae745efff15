//! X.509 certificates for CloudHSM key stores: the trust anchor (`customerCA.crt`, possibly an
//! intermediate chain, root last) and the cluster certificate it signed.
//!
//! Everything here is offline and pure: PEM parsing, a summary of each certificate, and signature
//! verification with the RustCrypto crates (RSA PKCS#1 v1.5, RSASSA-PSS, ECDSA on P-256/P-384/P-521,
//! SHA-1 and SHA-224..SHA-512). No OpenSSL, no network, no clock except where a function says so.
//!
//! Nothing in this module panics on any input: every parse or verification failure is an `Err`.
//! Error messages are one line and never repeat the raw input (distinguished names and key ids,
//! which are public certificate fields, are the only certificate text they show).

use std::fmt;

use rsa::signature::hazmat::PrehashVerifier;
use rsa::signature::Verifier;
use sha1::Sha1;
use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};
use time::format_description::well_known::Rfc3339;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::FromDer;
use x509_parser::public_key::RSAPublicKey;
use x509_parser::signature_algorithm::RsaSsaPssParams;
use x509_parser::time::ASN1Time;
use x509_parser::x509::{AlgorithmIdentifier, SubjectPublicKeyInfo, X509Name};

/// At most this many certificates are accepted in one PEM input.
pub const MAX_PEM_CERTIFICATES: usize = 10;

/// CloudHSM accepts a trust anchor chain of at most this many certificates (root last).
pub const MAX_ANCHOR_CHAIN: usize = 4;

/// KMS `TrustAnchorCertificate` length limit (characters).
pub const TRUST_ANCHOR_MAX_CHARS: usize = 5000;

/// Largest RSA modulus (bits) this module verifies.
const MAX_RSA_BITS: usize = 16384;

// ----------------------------------------------------------------------------------------------
// Errors
// ----------------------------------------------------------------------------------------------

/// Why a PEM (or DER) input could not be read as certificates.
///
/// `index` is the 0-based position of the PEM block in the input (messages print it 1-based).
/// Messages never include the input text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertInputError {
    /// The input is empty or only whitespace.
    #[error(
        "the input is empty: expected a PEM certificate starting with -----BEGIN CERTIFICATE-----"
    )]
    Empty,
    /// The input is binary (looks like DER), not PEM text.
    #[error("the input is binary (DER?), not PEM text: convert it with `openssl x509 -inform DER -in <file> -out <file>.pem`")]
    LooksLikeDer,
    /// No `-----BEGIN ...-----` line anywhere.
    #[error("no PEM block found: expected text starting with -----BEGIN CERTIFICATE-----")]
    NoPemBlock,
    /// A PEM block that is not a certificate (e.g. `PRIVATE KEY`, `CERTIFICATE REQUEST`).
    #[error("PEM block {} is a {kind}, not a CERTIFICATE", index + 1)]
    NotACertificate { index: usize, kind: String },
    /// A `-----BEGIN CERTIFICATE-----` without its `-----END CERTIFICATE-----`.
    #[error("PEM block {} has no matching -----END line (truncated?)", index + 1)]
    Unterminated { index: usize },
    /// The block contains literal `\n` sequences (text copied from JSON output).
    #[error("PEM block {} contains literal \\n sequences instead of line breaks (copied from JSON output?): write the certificate with real newlines", index + 1)]
    EscapedNewlines { index: usize },
    /// The block body is not valid base64 (truncated or edited).
    #[error("PEM block {} is not valid base64 (truncated or edited?)", index + 1)]
    BadBase64 { index: usize },
    /// The decoded bytes are not one X.509 certificate.
    #[error("PEM block {} is not a valid X.509 certificate: {reason}", index + 1)]
    BadDer { index: usize, reason: String },
    /// More than [`MAX_PEM_CERTIFICATES`] certificate blocks.
    #[error("the input has {count} certificates; at most {max} are accepted", max = MAX_PEM_CERTIFICATES)]
    TooManyCertificates { count: usize },
}

/// Why a certificate is not (provably) signed by another.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The child's issuer name (DER) differs from the candidate issuer's subject name (DER).
    #[error("{}", issuer_mismatch_message(expected_issuer, actual_subject))]
    IssuerMismatch {
        /// The issuer name written in the child certificate.
        expected_issuer: String,
        /// The subject name of the certificate offered as its issuer.
        actual_subject: String,
    },
    /// Both key identifiers are present and differ: the child was signed by another key.
    #[error("the certificate's authority key identifier {aki} differs from the CA certificate's subject key identifier {ski}: it was signed by a different CA key")]
    KeyIdMismatch { aki: String, ski: String },
    /// The signature does not verify with the issuer's public key.
    #[error("the signature does not verify with the CA certificate's public key")]
    BadSignature,
    /// An algorithm (or curve, or key size) this tool cannot verify offline.
    #[error("cannot verify {algorithm} signatures offline")]
    Unsupported { algorithm: String },
    /// The certificate's signature or key fields are not well-formed.
    #[error("malformed certificate: {reason}")]
    Malformed { reason: String },
}

fn issuer_mismatch_message(expected_issuer: &str, actual_subject: &str) -> String {
    if expected_issuer == actual_subject {
        format!(
            "the certificate's issuer \"{expected_issuer}\" reads the same as the CA certificate's subject but is encoded differently (DER differs, e.g. PrintableString vs UTF8String)"
        )
    } else {
        format!(
            "the certificate's issuer is \"{expected_issuer}\" but the CA certificate's subject is \"{actual_subject}\""
        )
    }
}

// ----------------------------------------------------------------------------------------------
// Certificates and summaries
// ----------------------------------------------------------------------------------------------

/// A parsed (well-formed) X.509 certificate: its DER bytes plus a cached summary.
#[derive(Clone, PartialEq, Eq)]
pub struct Cert {
    /// The complete DER encoding.
    pub der: Vec<u8>,
    summary: CertSummary,
}

impl fmt::Debug for Cert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cert")
            .field("subject", &self.summary.subject)
            .field("issuer", &self.summary.issuer)
            .field("sha256", &self.summary.sha256_fingerprint)
            .finish()
    }
}

/// Human-readable facts about one certificate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CertSummary {
    /// Subject DN, e.g. `C=US, O=Example Corp, CN=Example CA` (control characters replaced).
    pub subject: String,
    /// Issuer DN, same format.
    pub issuer: String,
    /// Serial number: uppercase hex, two digits per byte, no separators, leading zero bytes removed.
    pub serial_hex: String,
    /// notBefore, RFC 3339 (UTC).
    pub not_before: String,
    /// notAfter, RFC 3339 (UTC).
    pub not_after: String,
    pub not_before_unix: i64,
    pub not_after_unix: i64,
    /// Subject public key, e.g. `RSA 2048`, `EC P-256`, `Ed25519`.
    pub key: String,
    /// e.g. `sha256WithRSAEncryption`, `ecdsa-with-SHA384`, `RSASSA-PSS (SHA-256)`.
    pub signature_algorithm: String,
    /// The signature's hash is SHA-1 (verified, but weak).
    pub signature_uses_sha1: bool,
    /// basicConstraints CA=TRUE.
    pub is_ca: bool,
    /// The certificate has a basicConstraints extension at all (a v1 certificate has none).
    pub basic_constraints: bool,
    /// basicConstraints pathLenConstraint.
    pub path_len_constraint: Option<u32>,
    /// keyUsage keyCertSign; `None` when the certificate has no keyUsage extension.
    pub key_cert_sign: Option<bool>,
    /// Subject key identifier, uppercase hex, colon-separated.
    pub subject_key_id: Option<String>,
    /// Authority key identifier (keyIdentifier field), uppercase hex, colon-separated.
    pub authority_key_id: Option<String>,
    /// Issuer DER == subject DER.
    pub self_issued: bool,
    /// SHA-256 of the DER, uppercase hex, colon-separated.
    pub sha256_fingerprint: String,
}

impl Cert {
    /// Parses one DER certificate (the whole buffer must be exactly one certificate).
    pub fn from_der(der: Vec<u8>) -> Result<Cert, CertInputError> {
        cert_from_der(der, 0)
    }

    /// The cached summary.
    pub fn summary(&self) -> CertSummary {
        self.summary.clone()
    }

    /// The cached summary, by reference.
    pub fn summary_ref(&self) -> &CertSummary {
        &self.summary
    }

    /// PEM text (`-----BEGIN CERTIFICATE-----`, 64-column base64, trailing newline).
    pub fn to_pem(&self) -> String {
        let b64 = base64_encode(&self.der);
        let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 60);
        out.push_str("-----BEGIN CERTIFICATE-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            // base64 output is ASCII, so every chunk is valid UTF-8.
            out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
        out
    }

    /// Is the certificate valid at `unix` seconds? (notBefore <= t <= notAfter)
    pub fn is_valid_at(&self, unix: i64) -> bool {
        self.summary.not_before_unix <= unix && unix <= self.summary.not_after_unix
    }

    fn parsed(&self) -> Result<X509Certificate<'_>, VerifyError> {
        match X509Certificate::from_der(&self.der) {
            Ok((_, c)) => Ok(c),
            Err(_) => Err(VerifyError::Malformed {
                reason: "the certificate does not parse".into(),
            }),
        }
    }
}

fn cert_from_der(der: Vec<u8>, index: usize) -> Result<Cert, CertInputError> {
    if der.is_empty() {
        return Err(CertInputError::BadDer {
            index,
            reason: "the block is empty".into(),
        });
    }
    let summary = {
        let (rest, x) = X509Certificate::from_der(&der).map_err(|e| CertInputError::BadDer {
            index,
            reason: describe_nom_err(&e),
        })?;
        if !rest.is_empty() {
            return Err(CertInputError::BadDer {
                index,
                reason: format!("{} unexpected bytes after the certificate", rest.len()),
            });
        }
        // The parser is lenient about some tags of the (unsigned) outer structure: check it.
        if der_layout(&der).is_none() {
            return Err(CertInputError::BadDer {
                index,
                reason: "unexpected DER structure around the signed part".into(),
            });
        }
        summarize(&x, &der)
    };
    Ok(Cert { der, summary })
}

fn describe_nom_err(e: &x509_parser::nom::Err<x509_parser::error::X509Error>) -> String {
    match e {
        x509_parser::nom::Err::Incomplete(_) => "the DER data is truncated".into(),
        x509_parser::nom::Err::Error(e) | x509_parser::nom::Err::Failure(e) => {
            one_line(&e.to_string())
        }
    }
}

fn summarize(x: &X509Certificate<'_>, der: &[u8]) -> CertSummary {
    let tbs = &x.tbs_certificate;
    let validity = tbs.validity();
    let mut subject_key_id = None;
    let mut authority_key_id = None;
    let mut is_ca = false;
    let mut basic_constraints = false;
    let mut path_len_constraint = None;
    let mut key_cert_sign = None;
    for ext in tbs.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => {
                subject_key_id = Some(hex_colon(k.0));
            }
            ParsedExtension::AuthorityKeyIdentifier(a) => {
                authority_key_id = a.key_identifier.as_ref().map(|k| hex_colon(k.0));
            }
            ParsedExtension::BasicConstraints(bc) => {
                basic_constraints = true;
                is_ca = bc.ca;
                path_len_constraint = bc.path_len_constraint;
            }
            ParsedExtension::KeyUsage(ku) => key_cert_sign = Some(ku.key_cert_sign()),
            _ => {}
        }
    }
    let sig_name = signature_algorithm_name(&x.signature_algorithm);
    let signature_uses_sha1 = matches!(
        signature_scheme(&x.signature_algorithm),
        Ok(Scheme::RsaPkcs1(Hash::Sha1))
            | Ok(Scheme::Ecdsa(Hash::Sha1))
            | Ok(Scheme::RsaPss {
                hash: Hash::Sha1,
                ..
            })
    );
    CertSummary {
        subject: name_string(tbs.subject()),
        issuer: name_string(tbs.issuer()),
        serial_hex: serial_hex(tbs.raw_serial()),
        not_before: rfc3339(&validity.not_before),
        not_after: rfc3339(&validity.not_after),
        not_before_unix: validity.not_before.timestamp(),
        not_after_unix: validity.not_after.timestamp(),
        key: key_description(tbs.public_key()),
        signature_algorithm: sig_name,
        signature_uses_sha1,
        is_ca,
        basic_constraints,
        path_len_constraint,
        key_cert_sign,
        subject_key_id,
        authority_key_id,
        self_issued: tbs.issuer().as_raw() == tbs.subject().as_raw(),
        sha256_fingerprint: hex_colon(&Sha256::digest(der)),
    }
}

fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn name_string(n: &X509Name<'_>) -> String {
    let s = one_line(&n.to_string());
    if s.is_empty() {
        "(empty name)".into()
    } else {
        s
    }
}

fn serial_hex(raw: &[u8]) -> String {
    let mut bytes = raw;
    while bytes.len() > 1 && bytes[0] == 0 {
        bytes = &bytes[1..];
    }
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn hex_colon(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn rfc3339(t: &ASN1Time) -> String {
    let dt = t.to_datetime();
    dt.format(&Rfc3339)
        .unwrap_or_else(|_| format!("@{}", dt.unix_timestamp()))
}

fn unix_to_rfc3339(unix: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(unix) {
        Ok(dt) => dt.format(&Rfc3339).unwrap_or_else(|_| format!("@{unix}")),
        Err(_) => format!("@{unix}"),
    }
}

// ----------------------------------------------------------------------------------------------
// Algorithm names and OIDs
// ----------------------------------------------------------------------------------------------

const OID_RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const OID_RSASSA_PSS: &str = "1.2.840.113549.1.1.10";
const OID_MGF1: &str = "1.2.840.113549.1.1.8";
const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";
const OID_P521: &str = "1.3.132.0.35";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hash {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn from_oid(oid: &str) -> Option<Hash> {
        Some(match oid {
            "1.3.14.3.2.26" => Hash::Sha1,
            "2.16.840.1.101.3.4.2.4" => Hash::Sha224,
            "2.16.840.1.101.3.4.2.1" => Hash::Sha256,
            "2.16.840.1.101.3.4.2.2" => Hash::Sha384,
            "2.16.840.1.101.3.4.2.3" => Hash::Sha512,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Hash::Sha1 => "SHA-1",
            Hash::Sha224 => "SHA-224",
            Hash::Sha256 => "SHA-256",
            Hash::Sha384 => "SHA-384",
            Hash::Sha512 => "SHA-512",
        }
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha1 => Sha1::digest(data).to_vec(),
            Hash::Sha224 => Sha224::digest(data).to_vec(),
            Hash::Sha256 => Sha256::digest(data).to_vec(),
            Hash::Sha384 => Sha384::digest(data).to_vec(),
            Hash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }
}

fn hash_oid_name(oid: &str) -> String {
    match Hash::from_oid(oid) {
        Some(h) => h.name().to_string(),
        None => match oid {
            "1.2.840.113549.2.5" => "MD5".into(),
            "1.2.840.113549.2.2" => "MD2".into(),
            "2.16.840.1.101.3.4.2.8" => "SHA3-256".into(),
            "2.16.840.1.101.3.4.2.9" => "SHA3-384".into(),
            "2.16.840.1.101.3.4.2.10" => "SHA3-512".into(),
            other => format!("hash {other}"),
        },
    }
}

/// A signature scheme this module can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    RsaPkcs1(Hash),
    RsaPss { hash: Hash, salt_len: u32 },
    Ecdsa(Hash),
}

/// Names for signature algorithm OIDs (also the unsupported ones, so errors can name them).
fn plain_signature_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "1.2.840.113549.1.1.2" => "md2WithRSAEncryption",
        "1.2.840.113549.1.1.3" => "md4WithRSAEncryption",
        "1.2.840.113549.1.1.4" => "md5WithRSAEncryption",
        "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption",
        "1.3.14.3.2.29" => "sha1WithRSASignature (OIW)",
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption",
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption",
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption",
        "1.2.840.113549.1.1.14" => "sha224WithRSAEncryption",
        "1.2.840.113549.1.1.15" => "sha512-224WithRSAEncryption",
        "1.2.840.113549.1.1.16" => "sha512-256WithRSAEncryption",
        "2.16.840.1.101.3.4.3.13" => "RSA with SHA3-224",
        "2.16.840.1.101.3.4.3.14" => "RSA with SHA3-256",
        "2.16.840.1.101.3.4.3.15" => "RSA with SHA3-384",
        "2.16.840.1.101.3.4.3.16" => "RSA with SHA3-512",
        "1.2.840.10045.4.1" => "ecdsa-with-SHA1",
        "1.2.840.10045.4.3.1" => "ecdsa-with-SHA224",
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512",
        "2.16.840.1.101.3.4.3.9" => "ecdsa-with-SHA3-224",
        "2.16.840.1.101.3.4.3.10" => "ecdsa-with-SHA3-256",
        "2.16.840.1.101.3.4.3.11" => "ecdsa-with-SHA3-384",
        "2.16.840.1.101.3.4.3.12" => "ecdsa-with-SHA3-512",
        "1.2.840.10040.4.3" => "dsa-with-SHA1",
        "2.16.840.1.101.3.4.3.1" => "dsa-with-SHA224",
        "2.16.840.1.101.3.4.3.2" => "dsa-with-SHA256",
        "1.3.101.112" => "Ed25519",
        "1.3.101.113" => "Ed448",
        "1.2.643.7.1.1.3.2" => "GOST R 34.10-2012 (256)",
        "1.2.643.7.1.1.3.3" => "GOST R 34.10-2012 (512)",
        "1.2.156.10197.1.501" => "SM2 with SM3",
        _ => return None,
    })
}

fn signature_algorithm_name(alg: &AlgorithmIdentifier<'_>) -> String {
    let oid = alg.algorithm.to_id_string();
    if oid == OID_RSASSA_PSS {
        return match pss_params(alg) {
            Ok(p) => {
                let hash = hash_oid_name(&p.hash);
                let mgf_hash = hash_oid_name(&p.mgf_hash);
                if p.mgf != OID_MGF1 {
                    format!("RSASSA-PSS ({hash}, mask generation {})", p.mgf)
                } else if mgf_hash != hash {
                    format!("RSASSA-PSS ({hash}, MGF1 with {mgf_hash})")
                } else {
                    format!("RSASSA-PSS ({hash})")
                }
            }
            Err(_) => "RSASSA-PSS (malformed parameters)".into(),
        };
    }
    match plain_signature_name(&oid) {
        Some(n) => n.to_string(),
        None => oid,
    }
}

struct PssParams {
    hash: String,
    mgf: String,
    mgf_hash: String,
    salt_len: u32,
    trailer: u32,
}

fn pss_params(alg: &AlgorithmIdentifier<'_>) -> Result<PssParams, VerifyError> {
    let malformed = |what: &str| VerifyError::Malformed {
        reason: format!("RSASSA-PSS parameters: {what}"),
    };
    let any = alg
        .parameters
        .as_ref()
        .ok_or_else(|| malformed("missing"))?;
    let p = RsaSsaPssParams::try_from(any).map_err(|_| malformed("not valid DER"))?;
    let mgf = p
        .mask_gen_algorithm()
        .map_err(|_| malformed("mask generation algorithm not valid"))?;
    Ok(PssParams {
        hash: p.hash_algorithm_oid().to_id_string(),
        mgf: mgf.mgf.to_id_string(),
        mgf_hash: mgf.hash.to_id_string(),
        salt_len: p.salt_length(),
        trailer: p.trailer_field(),
    })
}

/// The verifiable scheme named by a signature AlgorithmIdentifier, or why not.
fn signature_scheme(alg: &AlgorithmIdentifier<'_>) -> Result<Scheme, VerifyError> {
    let oid = alg.algorithm.to_id_string();
    let scheme = match oid.as_str() {
        "1.2.840.113549.1.1.5" | "1.3.14.3.2.29" => Scheme::RsaPkcs1(Hash::Sha1),
        "1.2.840.113549.1.1.14" => Scheme::RsaPkcs1(Hash::Sha224),
        "1.2.840.113549.1.1.11" => Scheme::RsaPkcs1(Hash::Sha256),
        "1.2.840.113549.1.1.12" => Scheme::RsaPkcs1(Hash::Sha384),
        "1.2.840.113549.1.1.13" => Scheme::RsaPkcs1(Hash::Sha512),
        "1.2.840.10045.4.1" => Scheme::Ecdsa(Hash::Sha1),
        "1.2.840.10045.4.3.1" => Scheme::Ecdsa(Hash::Sha224),
        "1.2.840.10045.4.3.2" => Scheme::Ecdsa(Hash::Sha256),
        "1.2.840.10045.4.3.3" => Scheme::Ecdsa(Hash::Sha384),
        "1.2.840.10045.4.3.4" => Scheme::Ecdsa(Hash::Sha512),
        OID_RSASSA_PSS => {
            let p = pss_params(alg)?;
            let name = signature_algorithm_name(alg);
            if p.trailer != 1 {
                return Err(VerifyError::Malformed {
                    reason: format!("RSASSA-PSS trailer field {} (must be 1)", p.trailer),
                });
            }
            let hash = Hash::from_oid(&p.hash).ok_or(VerifyError::Unsupported {
                algorithm: name.clone(),
            })?;
            if p.mgf != OID_MGF1 || p.mgf_hash != p.hash {
                return Err(VerifyError::Unsupported { algorithm: name });
            }
            Scheme::RsaPss {
                hash,
                salt_len: p.salt_len,
            }
        }
        other => {
            return Err(VerifyError::Unsupported {
                algorithm: plain_signature_name(other)
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("signature algorithm {other}")),
            })
        }
    };
    Ok(scheme)
}

fn curve_name(oid: &str) -> String {
    match oid {
        OID_P256 => "P-256".into(),
        OID_P384 => "P-384".into(),
        OID_P521 => "P-521".into(),
        "1.3.132.0.33" => "P-224".into(),
        "1.2.840.10045.3.1.1" => "P-192".into(),
        "1.3.132.0.10" => "secp256k1".into(),
        "1.3.36.3.3.2.8.1.1.7" => "brainpoolP256r1".into(),
        "1.3.36.3.3.2.8.1.1.11" => "brainpoolP384r1".into(),
        "1.3.36.3.3.2.8.1.1.13" => "brainpoolP512r1".into(),
        other => format!("curve {other}"),
    }
}

/// The namedCurve OID of an EC SubjectPublicKeyInfo.
fn ec_curve_oid(spki: &SubjectPublicKeyInfo<'_>) -> Option<String> {
    spki.algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|o| o.to_id_string())
}

fn rsa_modulus_bits(modulus: &[u8]) -> usize {
    let mut m = modulus;
    while let [0, rest @ ..] = m {
        m = rest;
    }
    match m.first() {
        Some(&b) => (m.len() - 1) * 8 + (8 - b.leading_zeros() as usize),
        None => 0,
    }
}

fn key_description(spki: &SubjectPublicKeyInfo<'_>) -> String {
    let oid = spki.algorithm.algorithm.to_id_string();
    match oid.as_str() {
        OID_RSA_ENCRYPTION | OID_RSASSA_PSS => {
            let label = if oid == OID_RSASSA_PSS {
                "RSA-PSS"
            } else {
                "RSA"
            };
            match RSAPublicKey::from_der(&spki.subject_public_key.data) {
                Ok((_, k)) => format!("{label} {}", rsa_modulus_bits(k.modulus)),
                Err(_) => format!("{label} (malformed key)"),
            }
        }
        OID_EC_PUBLIC_KEY => match ec_curve_oid(spki) {
            Some(c) => format!("EC {}", curve_name(&c)),
            None => "EC (explicit or missing curve parameters)".into(),
        },
        "1.3.101.112" => "Ed25519".into(),
        "1.3.101.113" => "Ed448".into(),
        "1.2.840.10040.4.1" => "DSA".into(),
        other => format!("key type {other}"),
    }
}

// ----------------------------------------------------------------------------------------------
// PEM
// ----------------------------------------------------------------------------------------------

/// Parses one or more `-----BEGIN CERTIFICATE-----` blocks; text between blocks is ignored.
///
/// Any other PEM block (private key, CSR, ...) is an error, as is empty, binary or truncated input,
/// and more than [`MAX_PEM_CERTIFICATES`] certificates. Certificates are returned in input order.
pub fn parse_pem_chain(text: &str) -> Result<Vec<Cert>, CertInputError> {
    if text.trim().is_empty() {
        return Err(CertInputError::Empty);
    }
    if !text.contains("-----BEGIN") {
        if looks_binary(text) {
            return Err(CertInputError::LooksLikeDer);
        }
        return Err(CertInputError::NoPemBlock);
    }
    let blocks = scan_pem_blocks(text)?;
    let cert_count = blocks.iter().filter(|b| b.label == "CERTIFICATE").count();
    if cert_count > MAX_PEM_CERTIFICATES {
        return Err(CertInputError::TooManyCertificates { count: cert_count });
    }
    let mut certs = Vec::with_capacity(blocks.len());
    for (index, b) in blocks.iter().enumerate() {
        if b.label != "CERTIFICATE" {
            return Err(CertInputError::NotACertificate {
                index,
                kind: sanitize_label(b.label),
            });
        }
        if b.body.contains("\\n") || b.body.contains("\\r") {
            return Err(CertInputError::EscapedNewlines { index });
        }
        let der = base64_decode(b.body).ok_or(CertInputError::BadBase64 { index })?;
        certs.push(cert_from_der(der, index)?);
    }
    Ok(certs)
}

/// Like [`parse_pem_chain`] for raw file bytes: binary DER is reported as
/// [`CertInputError::LooksLikeDer`]; non-UTF-8 bytes outside the PEM blocks are tolerated.
pub fn parse_pem_chain_bytes(bytes: &[u8]) -> Result<Vec<Cert>, CertInputError> {
    let has_begin = bytes.windows(10).any(|w| w == b"-----BEGIN");
    if !has_begin && bytes.first() == Some(&0x30) && bytes.len() > 1 {
        return Err(CertInputError::LooksLikeDer);
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => parse_pem_chain(s),
        Err(_) => parse_pem_chain(&String::from_utf8_lossy(bytes)),
    }
}

/// Binary data read as text: replacement characters (invalid UTF-8) or control characters.
fn looks_binary(text: &str) -> bool {
    text.chars()
        .take(256)
        .any(|c| c == '\u{FFFD}' || (c.is_control() && !matches!(c, '\n' | '\r' | '\t')))
}

struct PemBlock<'a> {
    label: &'a str,
    body: &'a str,
}

fn scan_pem_blocks(text: &str) -> Result<Vec<PemBlock<'_>>, CertInputError> {
    const BEGIN: &str = "-----BEGIN ";
    let mut blocks = Vec::new();
    let mut pos = 0;
    while let Some(found) = text[pos..].find(BEGIN) {
        let index = blocks.len();
        let label_start = pos + found + BEGIN.len();
        // The label ends at the next "-----" on the same line.
        let line_end = text[label_start..]
            .find('\n')
            .map_or(text.len(), |i| label_start + i);
        let Some(label_len) = text[label_start..line_end].find("-----") else {
            return Err(CertInputError::Unterminated { index });
        };
        let label = &text[label_start..label_start + label_len];
        let body_start = label_start + label_len + 5;
        let end_marker = format!("-----END {label}-----");
        let Some(end_rel) = text[body_start..].find(&end_marker) else {
            return Err(CertInputError::Unterminated { index });
        };
        let body = &text[body_start..body_start + end_rel];
        if body.contains(BEGIN) {
            return Err(CertInputError::Unterminated { index });
        }
        blocks.push(PemBlock { label, body });
        pos = body_start + end_rel + end_marker.len();
    }
    if blocks.is_empty() {
        return Err(CertInputError::NoPemBlock);
    }
    Ok(blocks)
}

/// A PEM label is shown in messages only if it looks like one (capitals, digits, spaces).
fn sanitize_label(label: &str) -> String {
    let ok = !label.is_empty()
        && label.len() <= 40
        && label
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == ' ');
    if ok {
        label.to_string()
    } else {
        "unrecognised block".into()
    }
}

fn b64_value(c: u8) -> Option<u8> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    })
}

/// Strict standard base64 (ASCII whitespace ignored, `=` padding only at the end, length % 4 == 0).
fn base64_decode(body: &str) -> Option<Vec<u8>> {
    let chars: Vec<u8> = body.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if chars.is_empty() || chars.len() % 4 != 0 {
        return None;
    }
    let pad = chars.iter().rev().take_while(|&&c| c == b'=').count();
    if pad > 2 {
        return None;
    }
    let data = &chars[..chars.len() - pad];
    let mut out = Vec::with_capacity(chars.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut nbits = 0;
    for &c in data {
        acc = (acc << 6) | u32::from(b64_value(c)?);
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((acc >> nbits) as u8);
            acc &= (1 << nbits) - 1;
        }
    }
    Some(out)
}

fn base64_encode(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

// ----------------------------------------------------------------------------------------------
// Minimal DER reading (outer certificate layout, ECDSA signatures)
// ----------------------------------------------------------------------------------------------

/// Reads one DER TLV with the given tag: `(content, rest)`. Definite lengths up to 4 bytes.
fn read_tlv(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&t, rest) = input.split_first()?;
    if t != tag {
        return None;
    }
    let (&l0, rest) = rest.split_first()?;
    let (len, rest) = if l0 < 0x80 {
        (usize::from(l0), rest)
    } else {
        let n = usize::from(l0 & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((&rest[..len], &rest[len..]))
}

/// Byte ranges of the parts of a certificate that are not covered by its signature.
struct DerLayout {
    /// The signatureAlgorithm field inside tbsCertificate (whole TLV).
    inner_alg: std::ops::Range<usize>,
    /// The outer signatureAlgorithm (whole TLV).
    outer_alg: std::ops::Range<usize>,
}

/// `Certificate ::= SEQUENCE { tbsCertificate SEQUENCE, signatureAlgorithm SEQUENCE, signature BIT STRING }`
/// and, inside tbsCertificate, `[0] version OPTIONAL, serialNumber INTEGER, signature SEQUENCE`.
fn der_layout(der: &[u8]) -> Option<DerLayout> {
    let offset = |part: &[u8]| part.as_ptr() as usize - der.as_ptr() as usize;
    let (cert, rest) = read_tlv(der, 0x30)?;
    if !rest.is_empty() {
        return None;
    }
    let (tbs, after_tbs) = read_tlv(cert, 0x30)?;
    let (_, after_alg) = read_tlv(after_tbs, 0x30)?;
    let outer_alg = offset(after_tbs)..offset(after_tbs) + (after_tbs.len() - after_alg.len());
    let (_, after_sig) = read_tlv(after_alg, 0x03)?;
    if !after_sig.is_empty() {
        return None;
    }
    let mut fields = tbs;
    if fields.first() == Some(&0xA0) {
        fields = read_tlv(fields, 0xA0)?.1;
    }
    let (_, after_serial) = read_tlv(fields, 0x02)?;
    let (_, after_inner) = read_tlv(after_serial, 0x30)?;
    let inner_alg =
        offset(after_serial)..offset(after_serial) + (after_serial.len() - after_inner.len());
    Some(DerLayout {
        inner_alg,
        outer_alg,
    })
}

// ----------------------------------------------------------------------------------------------
// Verification
// ----------------------------------------------------------------------------------------------

/// Checks that `issuer` signed `child`: issuer name (DER) = issuer's subject (DER), AKI = SKI when
/// both are present, then the signature over child's tbsCertificate with issuer's public key.
/// Validity dates and CA flags are not checked here.
pub fn verify_signed_by(child: &Cert, issuer: &Cert) -> Result<(), VerifyError> {
    let c = child.parsed()?;
    let i = issuer.parsed()?;
    let c_tbs = &c.tbs_certificate;
    let i_tbs = &i.tbs_certificate;

    if c_tbs.issuer().as_raw() != i_tbs.subject().as_raw() {
        return Err(VerifyError::IssuerMismatch {
            expected_issuer: child.summary.issuer.clone(),
            actual_subject: issuer.summary.subject.clone(),
        });
    }
    if let (Some(aki), Some(ski)) = (
        &child.summary.authority_key_id,
        &issuer.summary.subject_key_id,
    ) {
        if aki != ski {
            return Err(VerifyError::KeyIdMismatch {
                aki: aki.clone(),
                ski: ski.clone(),
            });
        }
    }
    let same_alg = der_layout(&child.der)
        .is_some_and(|l| child.der.get(l.outer_alg.clone()) == child.der.get(l.inner_alg.clone()));
    if !same_alg || c.signature_algorithm != c_tbs.signature {
        return Err(VerifyError::Malformed {
            reason: "the signature algorithm inside the signed part differs from the outer one"
                .into(),
        });
    }
    let scheme = signature_scheme(&c.signature_algorithm)?;
    if c.signature_value.unused_bits != 0 {
        return Err(VerifyError::Malformed {
            reason: "the signature bit string has unused bits".into(),
        });
    }
    verify_signature(
        scheme,
        i_tbs.public_key(),
        c_tbs.as_ref(),
        &c.signature_value.data,
    )
}

/// `verify_signed_by(cert, cert)`: issuer = subject and the certificate's own key verifies it.
pub fn verify_self_signed(cert: &Cert) -> Result<(), VerifyError> {
    verify_signed_by(cert, cert)
}

fn verify_signature(
    scheme: Scheme,
    spki: &SubjectPublicKeyInfo<'_>,
    message: &[u8],
    signature: &[u8],
) -> Result<(), VerifyError> {
    match scheme {
        Scheme::RsaPkcs1(hash) => {
            let key = rsa_key(spki)?;
            let signature = &rsa_signature_bytes(&key, signature)?;
            let sig = rsa::pkcs1v15::Signature::try_from(signature.as_slice())
                .map_err(|_| VerifyError::BadSignature)?;
            let ok = match hash {
                Hash::Sha1 => rsa::pkcs1v15::VerifyingKey::<Sha1>::new(key).verify(message, &sig),
                Hash::Sha224 => {
                    rsa::pkcs1v15::VerifyingKey::<Sha224>::new(key).verify(message, &sig)
                }
                Hash::Sha256 => {
                    rsa::pkcs1v15::VerifyingKey::<Sha256>::new(key).verify(message, &sig)
                }
                Hash::Sha384 => {
                    rsa::pkcs1v15::VerifyingKey::<Sha384>::new(key).verify(message, &sig)
                }
                Hash::Sha512 => {
                    rsa::pkcs1v15::VerifyingKey::<Sha512>::new(key).verify(message, &sig)
                }
            };
            ok.map_err(|_| VerifyError::BadSignature)
        }
        Scheme::RsaPss { hash, salt_len } => {
            let key = rsa_key(spki)?;
            let salt = salt_len as usize;
            if salt > rsa::traits::PublicKeyParts::size(&key) {
                return Err(VerifyError::BadSignature);
            }
            let signature = rsa_signature_bytes(&key, signature)?;
            let sig = rsa::pss::Signature::try_from(signature.as_slice())
                .map_err(|_| VerifyError::BadSignature)?;
            let ok = match hash {
                Hash::Sha1 => rsa::pss::VerifyingKey::<Sha1>::new_with_salt_len(key, salt)
                    .verify(message, &sig),
                Hash::Sha224 => rsa::pss::VerifyingKey::<Sha224>::new_with_salt_len(key, salt)
                    .verify(message, &sig),
                Hash::Sha256 => rsa::pss::VerifyingKey::<Sha256>::new_with_salt_len(key, salt)
                    .verify(message, &sig),
                Hash::Sha384 => rsa::pss::VerifyingKey::<Sha384>::new_with_salt_len(key, salt)
                    .verify(message, &sig),
                Hash::Sha512 => rsa::pss::VerifyingKey::<Sha512>::new_with_salt_len(key, salt)
                    .verify(message, &sig),
            };
            ok.map_err(|_| VerifyError::BadSignature)
        }
        Scheme::Ecdsa(hash) => verify_ecdsa(hash, spki, message, signature),
    }
}

/// The RSA signature as exactly k = modulus-size bytes. Some signers drop leading zero bytes;
/// left-padding them back is harmless: the integer is the same.
fn rsa_signature_bytes(key: &rsa::RsaPublicKey, signature: &[u8]) -> Result<Vec<u8>, VerifyError> {
    let k = rsa::traits::PublicKeyParts::size(key);
    if signature.is_empty() || signature.len() > k {
        return Err(VerifyError::BadSignature);
    }
    let mut out = vec![0u8; k - signature.len()];
    out.extend_from_slice(signature);
    Ok(out)
}

/// The issuer's RSA public key; a non-RSA key cannot have made an RSA signature.
fn rsa_key(spki: &SubjectPublicKeyInfo<'_>) -> Result<rsa::RsaPublicKey, VerifyError> {
    let oid = spki.algorithm.algorithm.to_id_string();
    if oid != OID_RSA_ENCRYPTION && oid != OID_RSASSA_PSS {
        // The CA's key is not RSA: it cannot have made this RSA signature.
        return Err(VerifyError::BadSignature);
    }
    let (_, k) = RSAPublicKey::from_der(&spki.subject_public_key.data).map_err(|_| {
        VerifyError::Malformed {
            reason: "the CA certificate's RSA public key does not parse".into(),
        }
    })?;
    let bits = rsa_modulus_bits(k.modulus);
    if bits > MAX_RSA_BITS {
        return Err(VerifyError::Unsupported {
            algorithm: format!("RSA {bits}-bit key"),
        });
    }
    let n = rsa::BigUint::from_bytes_be(k.modulus);
    let e = rsa::BigUint::from_bytes_be(k.exponent);
    rsa::RsaPublicKey::new_with_max_size(n, e, MAX_RSA_BITS).map_err(|err| VerifyError::Malformed {
        reason: format!("the CA certificate's RSA public key is invalid ({err})"),
    })
}

fn verify_ecdsa(
    hash: Hash,
    spki: &SubjectPublicKeyInfo<'_>,
    message: &[u8],
    signature: &[u8],
) -> Result<(), VerifyError> {
    if spki.algorithm.algorithm.to_id_string() != OID_EC_PUBLIC_KEY {
        // The CA's key is not an EC key: it cannot have made this ECDSA signature.
        return Err(VerifyError::BadSignature);
    }
    let curve = ec_curve_oid(spki).ok_or_else(|| VerifyError::Unsupported {
        algorithm: "ECDSA with explicit curve parameters".into(),
    })?;
    let point: &[u8] = &spki.subject_public_key.data;
    let field_len = match curve.as_str() {
        OID_P256 => 32,
        OID_P384 => 48,
        OID_P521 => 66,
        other => {
            return Err(VerifyError::Unsupported {
                algorithm: format!("ECDSA on {}", curve_name(other)),
            })
        }
    };
    let bad_key = || VerifyError::Malformed {
        reason: format!(
            "the CA certificate's EC public key is not a valid {} point",
            curve_name(&curve)
        ),
    };
    let rs = ecdsa_der_to_fixed(signature, field_len).ok_or(VerifyError::BadSignature)?;
    // The common cases on ring, with the same fixed-width signature: an uncompressed point
    // (ring takes no other) and a curve/digest pair ring has.
    let ring_alg: Option<&'static ring::signature::EcdsaVerificationAlgorithm> =
        match (curve.as_str(), &hash) {
            (OID_P256, Hash::Sha256) => Some(&ring::signature::ECDSA_P256_SHA256_FIXED),
            (OID_P384, Hash::Sha384) => Some(&ring::signature::ECDSA_P384_SHA384_FIXED),
            _ => None,
        };
    if let Some(alg) = ring_alg {
        if point.first() == Some(&0x04)
            && ring::signature::UnparsedPublicKey::new(alg, point)
                .verify(message, &rs)
                .is_ok()
        {
            return Ok(());
        }
        // Not verified: the code below says whether the key or the signature is at fault.
    }
    // Pad a digest shorter than the field on the left: the same integer, and it keeps the
    // ecdsa crate from rejecting digests shorter than half the field (SHA-1/SHA-224 on P-521).
    let mut digest = hash.digest(message);
    if digest.len() < field_len {
        let mut padded = vec![0u8; field_len - digest.len()];
        padded.extend_from_slice(&digest);
        digest = padded;
    }
    let ok = match curve.as_str() {
        OID_P256 => {
            let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(|_| bad_key())?;
            let sig =
                p256::ecdsa::Signature::from_slice(&rs).map_err(|_| VerifyError::BadSignature)?;
            vk.verify_prehash(&digest, &sig)
        }
        OID_P384 => {
            let vk = p384::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(|_| bad_key())?;
            let sig =
                p384::ecdsa::Signature::from_slice(&rs).map_err(|_| VerifyError::BadSignature)?;
            vk.verify_prehash(&digest, &sig)
        }
        _ => {
            let vk = p521::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(|_| bad_key())?;
            let sig =
                p521::ecdsa::Signature::from_slice(&rs).map_err(|_| VerifyError::BadSignature)?;
            vk.verify_prehash(&digest, &sig)
        }
    };
    ok.map_err(|_| VerifyError::BadSignature)
}

/// DER `ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }` to fixed-width `r || s`.
fn ecdsa_der_to_fixed(sig: &[u8], field_len: usize) -> Option<Vec<u8>> {
    let (seq, trailing) = read_tlv(sig, 0x30)?;
    if !trailing.is_empty() {
        return None;
    }
    let (r, rest) = read_tlv(seq, 0x02)?;
    let (s, rest) = read_tlv(rest, 0x02)?;
    if !rest.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(2 * field_len);
    for int in [r, s] {
        // Negative integers are invalid; strip leading zero bytes.
        if int.first().is_none_or(|&b| b & 0x80 != 0) {
            return None;
        }
        let mut v = int;
        while let [0, rest @ ..] = v {
            v = rest;
        }
        if v.len() > field_len {
            return None;
        }
        out.extend(std::iter::repeat_n(0u8, field_len - v.len()));
        out.extend_from_slice(v);
    }
    Some(out)
}

// ----------------------------------------------------------------------------------------------
// Chains
// ----------------------------------------------------------------------------------------------

/// One signature check in a trust anchor chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainLink {
    /// Index of the signed certificate in the input.
    pub child: usize,
    /// Index of the certificate expected to have signed it (`== child` for the root's self-signature).
    pub issuer: usize,
    pub result: Result<(), VerifyError>,
}

impl ChainLink {
    /// This link is the last certificate's self-signature check.
    pub fn is_self_signature(&self) -> bool {
        self.child == self.issuer
    }
}

/// How much a [`ChainIssue`] matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueSeverity {
    /// KMS / CloudHSM would reject the trust anchor, or it cannot be what signed the cluster.
    Error,
    /// Worth saying; not a rejection reason by itself.
    Warning,
}

/// Findings about a trust anchor chain beyond each link's signature. Indexes are 0-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainIssue {
    #[error("no certificate given")]
    Empty,
    #[error("{count} certificates given; CloudHSM accepts a chain of at most {max} (root last)")]
    TooLong { count: usize, max: usize },
    #[error("certificate {} is not a CA (basicConstraints CA:TRUE missing)", index + 1)]
    NotCa { index: usize },
    /// A self-signed root with no basicConstraints extension at all (as in a v1 certificate):
    /// AWS does not document that KMS rejects it.
    #[error("certificate {} is a self-signed root without a basicConstraints extension (as a v1 certificate is): AWS does not document that KMS rejects this, but a root made today states CA:TRUE", index + 1)]
    NoBasicConstraints { index: usize },
    #[error("certificate {} has a keyUsage extension without keyCertSign", index + 1)]
    NoKeyCertSign { index: usize },
    #[error("certificate {} has pathLenConstraint {limit} but {below} CA certificate(s) below it", index + 1)]
    PathLenExceeded {
        index: usize,
        limit: u32,
        below: usize,
    },
    #[error("the last certificate is not self-signed (its issuer is \"{issuer}\"): the root CA is missing, so the chain cannot be verified offline; append the root certificate last")]
    RootMissing { issuer: String },
    #[error("the first certificate is a self-signed root but more follow: put the issuing CA first and the root last")]
    RootFirst,
    #[error("certificate {} uses {algorithm}, which cannot be verified offline", index + 1)]
    Unverifiable { index: usize, algorithm: String },
    #[error("certificate {} is signed with SHA-1 (verified, but weak)", index + 1)]
    Sha1Signature { index: usize },
    #[error("certificate {} expired on {not_after}", index + 1)]
    Expired { index: usize, not_after: String },
    #[error("certificate {} is not valid before {not_before}", index + 1)]
    NotYetValid { index: usize, not_before: String },
}

impl ChainIssue {
    pub fn severity(&self) -> IssueSeverity {
        match self {
            ChainIssue::Empty
            | ChainIssue::TooLong { .. }
            | ChainIssue::NotCa { .. }
            | ChainIssue::RootMissing { .. }
            | ChainIssue::RootFirst => IssueSeverity::Error,
            ChainIssue::NoKeyCertSign { .. }
            | ChainIssue::NoBasicConstraints { .. }
            | ChainIssue::PathLenExceeded { .. }
            | ChainIssue::Unverifiable { .. }
            | ChainIssue::Sha1Signature { .. }
            | ChainIssue::Expired { .. }
            | ChainIssue::NotYetValid { .. } => IssueSeverity::Warning,
        }
    }
}

/// Overall outcome of a chain check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainOutcome {
    /// Every link verified and no error-level issue.
    Verified,
    /// A link failed (other than an unsupported algorithm) or an error-level issue was found.
    Failed,
    /// Nothing failed, but at least one link uses an algorithm that cannot be verified offline.
    Unverifiable,
}

/// The verdict on a trust anchor input of N certificates (issuing CA first, root last).
///
/// `links[i]` checks that certificate `i` was signed by certificate `i + 1`; the last link checks
/// that the last certificate is self-signed. `issues` adds CA flags, order, length, SHA-1 and
/// validity dates (dates are warnings only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainVerdict {
    /// Summaries of the input certificates, in input order.
    pub certificates: Vec<CertSummary>,
    pub links: Vec<ChainLink>,
    pub issues: Vec<ChainIssue>,
}

impl ChainVerdict {
    pub fn outcome(&self) -> ChainOutcome {
        let hard_link_failure = self
            .links
            .iter()
            .any(|l| matches!(&l.result, Err(e) if !matches!(e, VerifyError::Unsupported { .. })));
        let error_issue = self
            .issues
            .iter()
            .any(|i| i.severity() == IssueSeverity::Error);
        if hard_link_failure || error_issue {
            ChainOutcome::Failed
        } else if self.links.iter().any(|l| l.result.is_err()) {
            ChainOutcome::Unverifiable
        } else {
            ChainOutcome::Verified
        }
    }

    /// Everything verified and no error-level issue (warnings allowed).
    pub fn is_ok(&self) -> bool {
        self.outcome() == ChainOutcome::Verified
    }

    /// Links whose check failed, in order.
    pub fn failed_links(&self) -> impl Iterator<Item = &ChainLink> {
        self.links.iter().filter(|l| l.result.is_err())
    }

    pub fn errors(&self) -> impl Iterator<Item = &ChainIssue> {
        self.issues
            .iter()
            .filter(|i| i.severity() == IssueSeverity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &ChainIssue> {
        self.issues
            .iter()
            .filter(|i| i.severity() == IssueSeverity::Warning)
    }
}

/// Verifies a trust anchor input (issuing CA first, root last) against the current time.
pub fn verify_anchor_chain(chain: &[Cert]) -> ChainVerdict {
    verify_anchor_chain_at(chain, time::OffsetDateTime::now_utc().unix_timestamp())
}

/// [`verify_anchor_chain`] with an explicit "now" (Unix seconds) for the date warnings.
pub fn verify_anchor_chain_at(chain: &[Cert], now_unix: i64) -> ChainVerdict {
    let certificates: Vec<CertSummary> = chain.iter().map(Cert::summary).collect();
    let mut links = Vec::with_capacity(chain.len());
    let mut issues = Vec::new();
    let n = chain.len();
    if n == 0 {
        issues.push(ChainIssue::Empty);
        return ChainVerdict {
            certificates,
            links,
            issues,
        };
    }
    if n > MAX_ANCHOR_CHAIN {
        issues.push(ChainIssue::TooLong {
            count: n,
            max: MAX_ANCHOR_CHAIN,
        });
    }
    for i in 0..n {
        let issuer = if i + 1 < n { i + 1 } else { i };
        let result = verify_signed_by(&chain[i], &chain[issuer]);
        if let Err(VerifyError::Unsupported { algorithm }) = &result {
            issues.push(ChainIssue::Unverifiable {
                index: i,
                algorithm: algorithm.clone(),
            });
        }
        links.push(ChainLink {
            child: i,
            issuer,
            result,
        });
    }
    if n > 1 && certificates[0].self_issued {
        issues.push(ChainIssue::RootFirst);
    }
    if !certificates[n - 1].self_issued {
        issues.push(ChainIssue::RootMissing {
            issuer: certificates[n - 1].issuer.clone(),
        });
    }
    for (index, s) in certificates.iter().enumerate() {
        if !s.basic_constraints && s.self_issued && index + 1 == n {
            issues.push(ChainIssue::NoBasicConstraints { index });
        } else if !s.is_ca {
            issues.push(ChainIssue::NotCa { index });
        }
        if s.key_cert_sign == Some(false) {
            issues.push(ChainIssue::NoKeyCertSign { index });
        }
        if let Some(limit) = s.path_len_constraint {
            // CA certificates below this one (the certificates before it, excluding self-issued ones).
            let below = certificates[..index]
                .iter()
                .filter(|c| c.is_ca && !c.self_issued)
                .count();
            if below > limit as usize {
                issues.push(ChainIssue::PathLenExceeded {
                    index,
                    limit,
                    below,
                });
            }
        }
        if s.signature_uses_sha1 {
            issues.push(ChainIssue::Sha1Signature { index });
        }
        if now_unix > s.not_after_unix {
            issues.push(ChainIssue::Expired {
                index,
                not_after: unix_to_rfc3339(s.not_after_unix),
            });
        } else if now_unix < s.not_before_unix {
            issues.push(ChainIssue::NotYetValid {
                index,
                not_before: unix_to_rfc3339(s.not_before_unix),
            });
        }
    }
    ChainVerdict {
        certificates,
        links,
        issues,
    }
}

/// Does the trust anchor input (possibly a chain, issuing CA first, root last) sign the cluster
/// certificate? The cluster certificate must be signed by `anchor_chain[0]`, each certificate by
/// the next, and the last must be self-signed. Returns the first failing check. CA flags and
/// dates are not checked here: see [`verify_anchor_chain`].
pub fn verify_cluster_cert(cluster: &Cert, anchor_chain: &[Cert]) -> Result<(), VerifyError> {
    let Some(first) = anchor_chain.first() else {
        return Err(VerifyError::Malformed {
            reason: "no trust anchor certificate given".into(),
        });
    };
    verify_signed_by(cluster, first)?;
    for pair in anchor_chain.windows(2) {
        verify_signed_by(&pair[0], &pair[1])?;
    }
    match anchor_chain.last() {
        Some(root) => verify_self_signed(root),
        None => Ok(()),
    }
}

/// Which certificate of `candidates` signed `cert` (name, key id and signature all check out)?
/// Useful to explain a wrong order ("the cluster certificate was signed by certificate 2").
pub fn find_issuer(cert: &Cert, candidates: &[Cert]) -> Option<usize> {
    candidates
        .iter()
        .position(|c| verify_signed_by(cert, c).is_ok())
}
