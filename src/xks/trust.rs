//! TLS trust as KMS sees it: does the certificate chain an XKS proxy presents end at a root on
//! KMS's own list of trusted certificate authorities?
//!
//! KMS's list (`kms-xks-trusted-certificate-authorities.txt`, 130 roots) is not Mozilla's: a chain
//! a browser accepts can still end at a root KMS does not trust, and then KMS fails with
//! `XKS_PROXY_INVALID_TLS_CONFIGURATION`. The list is embedded as a generated table
//! ([`kms_trusted_cas`], from `scripts/gen-kms-trusted-cas.py`); the roots themselves come from
//! `webpki-root-certs` (Mozilla's store), matched by SHA-256, so a KMS root that Mozilla has since
//! removed cannot be verified offline ([`kms_roots_available_offline`]) unless the proxy presents it.
//!
//! Path building and signature checks are rustls-webpki's (the same code the probe's TLS stack
//! uses). Everything here is offline and pure: no network, no clock (the caller passes "now").

use std::sync::OnceLock;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
use sha2::{Digest, Sha256};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;
use x509_parser::x509::X509Name;

use crate::certs::{Cert, CertSummary, VerifyError};

/// KMS's XksProxyCertificateDaysToExpire metric: warn when the proxy certificate expires sooner.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

// ----------------------------------------------------------------------------------------------
// KMS's list of trusted certificate authorities
// ----------------------------------------------------------------------------------------------

/// One root certificate authority on KMS's list, as published (keytool format).
#[derive(Debug, PartialEq, Eq)]
pub struct KmsTrustedCa {
    /// keytool alias, e.g. `digicertglobalrootg2`.
    pub alias: &'static str,
    /// Subject as keytool prints it (Java order: most specific attribute first, e.g. `CN=..., O=..., C=US`).
    pub owner: &'static str,
    /// notAfter as printed in the file, e.g. `Tue Dec 31 01:37:37 PST 2030`.
    pub not_after: &'static str,
    /// SHA-256 of the certificate's DER.
    pub sha256: [u8; 32],
}

#[path = "kms_trusted_cas.rs"]
mod table;

/// Every root on KMS's list, in the order of the published file.
pub fn kms_trusted_cas() -> &'static [KmsTrustedCa] {
    table::KMS_TRUSTED_CAS
}

/// The entry of KMS's list whose certificate has this SHA-256 fingerprint.
pub fn kms_trusted_by_fingerprint(sha256: &[u8; 32]) -> Option<&'static KmsTrustedCa> {
    kms_trusted_cas().iter().find(|ca| &ca.sha256 == sha256)
}

/// How many of KMS's roots are in the bundled Mozilla store (`webpki-root-certs`), i.e. can be
/// used as trust anchors without the proxy presenting the root itself.
pub fn kms_roots_available_offline() -> usize {
    bundled_kms_roots().len()
}

/// Is this root of KMS's list in the bundled Mozilla store?
pub fn kms_root_bundled(ca: &KmsTrustedCa) -> bool {
    mozilla_fingerprints().contains(&ca.sha256)
}

/// One line for reports: "N of 130 KMS roots are bundled; ...".
pub fn offline_coverage_note() -> String {
    format!(
        "{} of {} KMS roots are bundled; a chain ending at one of the others cannot be verified offline",
        kms_roots_available_offline(),
        kms_trusted_cas().len()
    )
}

fn sha256(der: &[u8]) -> [u8; 32] {
    Sha256::digest(der).into()
}

fn mozilla_fingerprints() -> &'static [[u8; 32]] {
    static FPS: OnceLock<Vec<[u8; 32]>> = OnceLock::new();
    FPS.get_or_init(|| {
        webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .map(|c| sha256(c.as_ref()))
            .collect()
    })
}

/// Mozilla root certificates (DER) whose SHA-256 is on KMS's list.
fn bundled_kms_roots() -> &'static [Vec<u8>] {
    static ROOTS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .zip(mozilla_fingerprints())
            .filter(|(_, fp)| kms_trusted_by_fingerprint(fp).is_some())
            .map(|(c, _)| c.as_ref().to_vec())
            .collect()
    })
}

/// Every Mozilla root certificate (DER).
fn mozilla_roots() -> &'static [Vec<u8>] {
    static ROOTS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .map(|c| c.as_ref().to_vec())
            .collect()
    })
}

// ----------------------------------------------------------------------------------------------
// The verdict
// ----------------------------------------------------------------------------------------------

/// What the server presented and what it means for KMS.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CertReport {
    /// The certificates as presented, leaf first (certificates that do not parse are left out).
    pub chain: Vec<CertSummary>,
    /// The leaf's subjectAltName DNS names.
    pub dns_names: Vec<String>,
    /// The leaf's subjectAltName IP addresses.
    pub ip_addresses: Vec<String>,
    /// The leaf is valid for the endpoint's name (webpki's rules: SANs only, wildcards allowed).
    pub name_matches: bool,
    /// The leaf's subject common names (AWS's guide speaks of the CN matching the endpoint).
    pub common_names: Vec<String>,
    /// A subject CN names the endpoint's host (the same rules: case, one wildcard label).
    pub cn_matches: bool,
    /// The leaf's notAfter.
    pub not_after_unix: i64,
    /// Whole days from "now" to the leaf's notAfter (negative once expired).
    pub days_to_expiry: i64,
    pub expired: bool,
    pub not_yet_valid: bool,
    /// Where the chain leads. Evaluated as if "now" were inside the leaf's validity, so an expired
    /// leaf shows in `expired`, not here.
    pub trust: Trust,
}

impl CertReport {
    /// Expires within [`EXPIRY_WARNING_DAYS`] (and has not expired yet).
    pub fn expires_soon(&self) -> bool {
        !self.expired && self.days_to_expiry < EXPIRY_WARNING_DAYS
    }
}

/// Where the presented chain leads, from KMS's point of view.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Trust {
    /// Chains to a root whose SHA-256 is on KMS's list.
    KmsTrusted {
        root_alias: String,
        root_subject: String,
        root_sha256: String,
    },
    /// Chains only to a `--trust-ca` certificate: fine for a lab, but KMS will not trust it.
    ExtraCa { subject: String },
    /// Chains to a Mozilla root that is not on KMS's list: browsers accept it, KMS does not.
    BrowserOnly { root_subject: String },
    /// The chain names (by issuer) a root on KMS's list that is not bundled with this tool and
    /// was not presented: it cannot be verified offline ("could not check", not a failure).
    KmsRootNotBundled { root_alias: String },
    /// The issuer of the last certificate in the chain is neither presented nor a known root.
    MissingIntermediate { issuer: String },
    /// The leaf is self-signed (and not a `--trust-ca` certificate).
    SelfSigned { subject: String },
    /// Anything else: the reason in plain words.
    Untrusted { reason: String },
}

impl Trust {
    /// Would KMS accept this chain? `None` when it cannot be told offline.
    pub fn kms_accepts(&self) -> Option<bool> {
        match self {
            Trust::KmsTrusted { .. } => Some(true),
            Trust::KmsRootNotBundled { .. } => None,
            _ => Some(false),
        }
    }

    /// One or two sentences saying what the verdict means (no error code: the check adds it).
    pub fn explain(&self) -> String {
        match self {
            Trust::KmsTrusted {
                root_alias,
                root_subject,
                ..
            } => format!(
                "the chain ends at \"{root_subject}\" ({root_alias}), a root on KMS's list of trusted certificate authorities"
            ),
            Trust::ExtraCa { subject } => format!(
                "the chain ends at \"{subject}\", a CA given with --trust-ca: acceptable for a lab test, but KMS itself will not trust it; use a certificate from a CA on KMS's list"
            ),
            Trust::BrowserOnly { root_subject } => format!(
                "the chain ends at \"{root_subject}\", a root browsers trust but that is NOT on KMS's list of trusted certificate authorities: KMS will reject the certificate; get one from a CA on KMS's list"
            ),
            Trust::KmsRootNotBundled { root_alias } => {
                let owner = kms_trusted_cas()
                    .iter()
                    .find(|c| c.alias == root_alias)
                    .map(|c| c.owner)
                    .unwrap_or("?");
                format!(
                    "the chain leads to \"{owner}\" ({root_alias}), which is on KMS's list but not bundled with this tool, so it cannot be verified offline ({})",
                    offline_coverage_note()
                )
            }
            Trust::MissingIntermediate { issuer } => format!(
                "the certificate issued by \"{issuer}\" is missing: the server did not send it and it is not a root KMS trusts; configure the proxy to send the full chain (leaf, then every intermediate)"
            ),
            Trust::SelfSigned { subject } => format!(
                "the server's certificate \"{subject}\" is self-signed: KMS only trusts certificates issued under a CA on its list"
            ),
            Trust::Untrusted { reason } => reason.clone(),
        }
    }
}

// ----------------------------------------------------------------------------------------------
// Evaluation
// ----------------------------------------------------------------------------------------------

/// Evaluates the chain a proxy presented (`presented_der`, leaf first) for `host` at `now_unix`,
/// against KMS's roots, then `extra_trust_der` (`--trust-ca`), then Mozilla's roots.
///
/// `Err` only when there is no certificate or the leaf does not parse.
pub fn evaluate(
    presented_der: &[Vec<u8>],
    host: &str,
    now_unix: i64,
    extra_trust_der: &[Vec<u8>],
) -> Result<CertReport, String> {
    evaluate_with(
        presented_der,
        host,
        now_unix,
        bundled_kms_roots(),
        extra_trust_der,
        mozilla_roots(),
    )
}

/// [`evaluate`] with the anchor sets given: `kms_anchor_der` stands for the bundled roots on
/// KMS's list and `browser_anchor_der` for Mozilla's store (tests put their own roots there).
///
/// Presented self-signed certificates whose SHA-256 is on KMS's list are KMS anchors too, and
/// `browser_anchor_der` entries on KMS's list (or in `kms_anchor_der`) are ignored, so that
/// `BrowserOnly` always names a root KMS does not trust.
pub fn evaluate_with(
    presented_der: &[Vec<u8>],
    host: &str,
    now_unix: i64,
    kms_anchor_der: &[Vec<u8>],
    extra_trust_der: &[Vec<u8>],
    browser_anchor_der: &[Vec<u8>],
) -> Result<CertReport, String> {
    let Some(leaf_der) = presented_der.first() else {
        return Err("the server presented no certificate".into());
    };
    let leaf = Cert::from_der(leaf_der.clone())
        .map_err(|e| format!("the server's certificate does not parse: {e}"))?;
    // The rest of the chain as presented; certificates that do not parse are set aside.
    let mut chain = vec![Presented::new(0, leaf)];
    let mut unparsable = Vec::new();
    for (i, der) in presented_der.iter().enumerate().skip(1) {
        match Cert::from_der(der.clone()) {
            Ok(c) => chain.push(Presented::new(i, c)),
            Err(_) => unparsable.push(i),
        }
    }
    let leaf = &chain[0];
    let ls = leaf.cert.summary_ref();

    let (dns_names, ip_addresses) = leaf_san_names(&leaf.cert.der);
    let common_names = leaf_common_names(&leaf.cert.der);
    let cn_matches = common_names.iter().any(|cn| name_covers(cn, host));
    let not_after_unix = ls.not_after_unix;
    let days_to_expiry = (not_after_unix - now_unix).div_euclid(86_400);
    let expired = now_unix > not_after_unix;
    let not_yet_valid = now_unix < ls.not_before_unix;

    // Trust is judged at a time inside the leaf's validity: the leaf's dates are reported apart.
    let at = if ls.not_before_unix <= ls.not_after_unix {
        now_unix.clamp(ls.not_before_unix, ls.not_after_unix)
    } else {
        now_unix
    };
    let at_time = UnixTime::since_unix_epoch(Duration::from_secs(at.max(0) as u64));

    let leaf_cd = CertificateDer::from(leaf.cert.der.as_slice());
    let ee = webpki::EndEntityCert::try_from(&leaf_cd);

    let name_matches = match (&ee, ServerName::try_from(host)) {
        (Ok(ee), Ok(name)) => ee.verify_is_valid_for_subject_name(&name).is_ok(),
        _ => false,
    };

    let trust = match &ee {
        Err(e) => Trust::Untrusted {
            reason: format!(
                "the server's certificate is not acceptable for TLS path validation: {}",
                plain_webpki_error(e)
            ),
        },
        Ok(ee) => {
            let ctx = Ctx {
                chain: &chain,
                unparsable: &unparsable,
                at,
                at_time,
                kms_anchor_der,
                extra_trust_der,
                browser_anchor_der,
            };
            ctx.classify(ee)
        }
    };

    Ok(CertReport {
        chain: chain.iter().map(|p| p.cert.summary()).collect(),
        dns_names,
        ip_addresses,
        name_matches,
        common_names,
        cn_matches,
        not_after_unix,
        days_to_expiry,
        expired,
        not_yet_valid,
        trust,
    })
}

/// A presented certificate with its position in the server's list and its raw names.
struct Presented {
    index: usize,
    cert: Cert,
    subject_raw: Vec<u8>,
    issuer_raw: Vec<u8>,
    sha256: [u8; 32],
}

impl Presented {
    fn new(index: usize, cert: Cert) -> Presented {
        let (subject_raw, issuer_raw) = raw_names(&cert.der).unwrap_or_default();
        let sha256 = sha256(&cert.der);
        Presented {
            index,
            cert,
            subject_raw,
            issuer_raw,
            sha256,
        }
    }

    fn self_issued(&self) -> bool {
        self.subject_raw == self.issuer_raw
    }

    fn describe(&self) -> String {
        format!(
            "certificate {} (\"{}\")",
            self.index + 1,
            self.cert.summary_ref().subject
        )
    }
}

fn raw_names(der: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let (_, x) = X509Certificate::from_der(der).ok()?;
    Some((
        x.tbs_certificate.subject().as_raw().to_vec(),
        x.tbs_certificate.issuer().as_raw().to_vec(),
    ))
}

/// The leaf's subjectAltName DNS names and IP addresses.
fn leaf_san_names(der: &[u8]) -> (Vec<String>, Vec<String>) {
    let Ok((_, x)) = X509Certificate::from_der(der) else {
        return (Vec::new(), Vec::new());
    };
    let (mut dns, mut ips) = (Vec::new(), Vec::new());
    if let Ok(Some(san)) = x.subject_alternative_name() {
        for g in &san.value.general_names {
            match g {
                GeneralName::DNSName(n) => dns.push(n.to_string()),
                GeneralName::IPAddress(b) => match b.len() {
                    4 => ips.push(
                        std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*b).unwrap()).to_string(),
                    ),
                    16 => ips.push(
                        std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*b).unwrap()).to_string(),
                    ),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    (dns, ips)
}

/// The leaf's subject common names (usually one).
fn leaf_common_names(der: &[u8]) -> Vec<String> {
    let Ok((_, x)) = X509Certificate::from_der(der) else {
        return Vec::new();
    };
    x.subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok().map(str::to_string))
        .collect()
}

/// A certificate name covers a host as TLS clients match DNS names: without regard to case, a
/// leading `*.` covering exactly one label; an IP address only as itself.
fn name_covers(name: &str, host: &str) -> bool {
    let (name, host) = (name.to_ascii_lowercase(), host.to_ascii_lowercase());
    let host = host.trim_end_matches('.');
    if let Some(rest) = name.strip_prefix("*.") {
        return host.parse::<std::net::IpAddr>().is_err()
            && host
                .split_once('.')
                .is_some_and(|(label, tail)| !label.is_empty() && tail == rest);
    }
    name.trim_end_matches('.') == host
}

/// An anchor set: the DER certificates and the trust anchors made from them (same order; a
/// certificate webpki cannot use as an anchor is left out of both).
struct Anchors<'a> {
    der: Vec<&'a [u8]>,
    anchors: Vec<TrustAnchor<'a>>,
}

impl<'a> Anchors<'a> {
    fn new(ders: impl IntoIterator<Item = &'a [u8]>) -> Anchors<'a> {
        let mut der = Vec::new();
        let mut anchors = Vec::new();
        for d in ders {
            let cd = CertificateDer::from(d);
            if let Ok(a) = webpki::anchor_from_trusted_cert(&cd) {
                anchors.push(a.to_owned());
                der.push(d);
            }
        }
        Anchors { der, anchors }
    }
}

struct Ctx<'a> {
    chain: &'a [Presented],
    unparsable: &'a [usize],
    at: i64,
    at_time: UnixTime,
    kms_anchor_der: &'a [Vec<u8>],
    extra_trust_der: &'a [Vec<u8>],
    browser_anchor_der: &'a [Vec<u8>],
}

impl Ctx<'_> {
    /// Which anchor of `set` does the leaf chain to? `Ok(der of the anchor)` or webpki's error.
    fn verify<'s>(
        &self,
        ee: &webpki::EndEntityCert<'_>,
        set: &Anchors<'s>,
    ) -> Result<&'s [u8], webpki::Error> {
        let intermediates: Vec<CertificateDer<'_>> = self.chain[1..]
            .iter()
            .map(|p| CertificateDer::from(p.cert.der.as_slice()))
            .collect();
        let path = ee.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &set.anchors,
            &intermediates,
            self.at_time,
            webpki::KeyUsage::server_auth(),
            None,
            None,
        )?;
        let anchor = path.anchor();
        let i = set
            .anchors
            .iter()
            .position(|a| std::ptr::eq(a, anchor))
            .or_else(|| {
                set.anchors.iter().position(|a| {
                    a.subject == anchor.subject
                        && a.subject_public_key_info == anchor.subject_public_key_info
                })
            })
            .unwrap_or(0);
        Ok(set.der[i])
    }

    fn classify(&self, ee: &webpki::EndEntityCert<'_>) -> Trust {
        let leaf = &self.chain[0];

        // 1. KMS's roots: bundled ones, plus any root on KMS's list the server itself presented.
        let kms_fps: Vec<[u8; 32]> = self.kms_anchor_der.iter().map(|d| sha256(d)).collect();
        let presented_kms_roots = self
            .chain
            .iter()
            .filter(|p| p.self_issued() && kms_trusted_by_fingerprint(&p.sha256).is_some())
            .map(|p| p.cert.der.as_slice());
        let kms = Anchors::new(
            self.kms_anchor_der
                .iter()
                .map(Vec::as_slice)
                .chain(presented_kms_roots),
        );
        let kms_err = match self.verify(ee, &kms) {
            Ok(root) => {
                let fp = sha256(root);
                let subject = Cert::from_der(root.to_vec())
                    .map(|c| c.summary().subject)
                    .unwrap_or_default();
                return Trust::KmsTrusted {
                    root_alias: kms_trusted_by_fingerprint(&fp)
                        .map(|c| c.alias.to_string())
                        .unwrap_or_else(|| "unlisted".into()),
                    root_subject: subject,
                    root_sha256: hex_colon(&fp),
                };
            }
            Err(e) => e,
        };

        // 2. --trust-ca certificates (a self-signed leaf given with --trust-ca is pinned).
        if self
            .extra_trust_der
            .iter()
            .any(|d| sha256(d) == leaf.sha256)
        {
            return Trust::ExtraCa {
                subject: leaf.cert.summary_ref().subject.clone(),
            };
        }
        let extra = Anchors::new(self.extra_trust_der.iter().map(Vec::as_slice));
        let extra_err = match self.verify(ee, &extra) {
            Ok(ca) => {
                return Trust::ExtraCa {
                    subject: Cert::from_der(ca.to_vec())
                        .map(|c| c.summary().subject)
                        .unwrap_or_default(),
                }
            }
            Err(e) => e,
        };

        // 3. The chain leads (by name) to a KMS root this tool does not have: cannot tell offline.
        //    Checked before Mozilla's roots so that a cross-signed chain is not failed wrongly.
        //    Only when nothing concrete went wrong on the way (webpki found no issuer at all).
        let top = self.top_of_chain();
        //    A presented self-signed root is looked up by its own name (a re-issued KMS root: same
        //    name and key, a certificate with another fingerprint).
        if matches!(kms_err, webpki::Error::UnknownIssuer) {
            if let Some(ca) = unbundled_kms_root_named(&top.cert, &kms_fps) {
                return Trust::KmsRootNotBundled {
                    root_alias: ca.alias.to_string(),
                };
            }
        }

        // 4. Mozilla's roots that are not KMS roots: browsers accept the chain, KMS does not.
        let browser = Anchors::new(
            self.browser_anchor_der
                .iter()
                .filter(|d| {
                    let fp = sha256(d);
                    kms_trusted_by_fingerprint(&fp).is_none() && !kms_fps.contains(&fp)
                })
                .map(Vec::as_slice),
        );
        let browser_err = match self.verify(ee, &browser) {
            Ok(root) => {
                // A Mozilla root bearing the name of a KMS root it is not (by fingerprint): most
                // likely a re-issue of the same key, which KMS's copy would verify too.
                if let Some(ca) = Cert::from_der(root.to_vec())
                    .ok()
                    .and_then(|c| unbundled_kms_root_named(&c, &kms_fps))
                {
                    return Trust::KmsRootNotBundled {
                        root_alias: ca.alias.to_string(),
                    };
                }
                return Trust::BrowserOnly {
                    root_subject: Cert::from_der(root.to_vec())
                        .map(|c| c.summary().subject)
                        .unwrap_or_default(),
                };
            }
            Err(e) => e,
        };

        // 5. Diagnose.
        if leaf.self_issued() {
            return Trust::SelfSigned {
                subject: leaf.cert.summary_ref().subject.clone(),
            };
        }
        // The most telling error: one met on the way to a KMS root first, then a --trust-ca, then
        // a Mozilla root. UnknownIssuer only says that no path was found.
        let specific = [&kms_err, &extra_err, &browser_err]
            .into_iter()
            .find(|e| !matches!(e, webpki::Error::UnknownIssuer));
        if let Some(e) = specific {
            let all: Vec<&[u8]> = kms
                .der
                .iter()
                .chain(&extra.der)
                .chain(&browser.der)
                .copied()
                .collect();
            return Trust::Untrusted {
                reason: self.with_unparsable(self.explain_error(e, &all)),
            };
        }
        if top.self_issued() {
            return Trust::Untrusted {
                reason: self.with_unparsable(format!(
                    "the chain ends at the self-signed root \"{}\", which is not on KMS's list of trusted certificate authorities (a private or unknown CA)",
                    top.cert.summary_ref().subject
                )),
            };
        }
        let issuer = top.cert.summary_ref().issuer.clone();
        if self.unparsable.is_empty() {
            Trust::MissingIntermediate { issuer }
        } else {
            Trust::Untrusted {
                reason: self.with_unparsable(format!(
                    "the certificate issued by \"{issuer}\" is missing from the chain"
                )),
            }
        }
    }

    /// Follows issuer names through the presented certificates from the leaf; returns the last one.
    fn top_of_chain(&self) -> &Presented {
        let mut current = &self.chain[0];
        let mut seen = vec![0usize];
        while !current.self_issued() {
            let next = self.chain.iter().enumerate().find(|(i, p)| {
                !seen.contains(i)
                    && !p.subject_raw.is_empty()
                    && p.subject_raw == current.issuer_raw
            });
            match next {
                Some((i, p)) => {
                    seen.push(i);
                    current = p;
                }
                None => break,
            }
        }
        current
    }

    fn with_unparsable(&self, reason: String) -> String {
        if self.unparsable.is_empty() {
            return reason;
        }
        let list: Vec<String> = self
            .unparsable
            .iter()
            .map(|i| (i + 1).to_string())
            .collect();
        format!(
            "{reason} (the server also sent certificate(s) {} that do not parse and were ignored)",
            list.join(", ")
        )
    }

    /// webpki's reason in plain words, naming the certificate concerned where it can be found.
    #[allow(deprecated)] // webpki still returns the context-less variants in some paths
    fn explain_error(&self, e: &webpki::Error, anchors: &[&[u8]]) -> String {
        use webpki::Error as E;
        match e {
            E::CertExpired { .. } | E::CertNotValidYet { .. } => {
                let bad: Vec<String> = self.chain[1..]
                    .iter()
                    .filter(|p| !p.cert.is_valid_at(self.at))
                    .map(|p| {
                        let s = p.cert.summary_ref();
                        if self.at > s.not_after_unix {
                            format!("{} expired on {}", p.describe(), s.not_after)
                        } else {
                            format!("{} is not valid before {}", p.describe(), s.not_before)
                        }
                    })
                    .collect();
                if bad.is_empty() {
                    "a certificate in the chain is outside its validity period".into()
                } else {
                    format!(
                        "{} (certificates numbered as the server sent them, the server's own first)",
                        bad.join("; ")
                    )
                }
            }
            E::InvalidSignatureForPublicKey => match self.bad_signature(anchors) {
                Some(s) => s,
                None => "a signature in the chain does not verify: a certificate was not signed by the CA whose name it carries".into(),
            },
            E::UnsupportedSignatureAlgorithm
            | E::UnsupportedSignatureAlgorithmContext(_)
            | E::UnsupportedSignatureAlgorithmForPublicKey
            | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => format!(
                "a certificate in the chain is signed with an algorithm TLS path validation does not accept (e.g. SHA-1, RSA under 2048 bits): {}",
                plain_webpki_error(e)
            ),
            _ => plain_webpki_error(e),
        }
    }

    /// Finds the link whose signature fails: presented certificate → presented issuer, or the
    /// top of the chain → an anchor with the issuer's name.
    fn bad_signature(&self, anchors: &[&[u8]]) -> Option<String> {
        for child in self.chain {
            if child.self_issued() {
                continue;
            }
            for parent in self.chain.iter().filter(|p| p.index != child.index) {
                if parent.subject_raw == child.issuer_raw {
                    if let Err(VerifyError::BadSignature | VerifyError::KeyIdMismatch { .. }) =
                        crate::certs::verify_signed_by(&child.cert, &parent.cert)
                    {
                        return Some(format!(
                            "the signature of {} does not verify with the key of {}, although the names match",
                            child.describe(),
                            parent.describe()
                        ));
                    }
                }
            }
        }
        let top = self.top_of_chain();
        for der in anchors {
            let Some((subject, _)) = raw_names(der) else {
                continue;
            };
            if subject != top.issuer_raw {
                continue;
            }
            let Ok(anchor) = Cert::from_der(der.to_vec()) else {
                continue;
            };
            if let Err(VerifyError::BadSignature | VerifyError::KeyIdMismatch { .. }) =
                crate::certs::verify_signed_by(&top.cert, &anchor)
            {
                return Some(format!(
                    "the signature of {} does not verify with the key of the root \"{}\", although the names match (another key under the same name?)",
                    top.describe(),
                    anchor.summary_ref().subject
                ));
            }
        }
        None
    }
}

/// A root on KMS's list, not among the KMS anchors (`kms_fps`), whose name is `cert`'s issuer
/// (for a self-signed `cert`, its own name). Names are compared as sets of attribute values.
fn unbundled_kms_root_named(cert: &Cert, kms_fps: &[[u8; 32]]) -> Option<&'static KmsTrustedCa> {
    let (_, x) = X509Certificate::from_der(&cert.der).ok()?;
    let issuer = x509_name_values(x.tbs_certificate.issuer());
    if issuer.is_empty() {
        return None;
    }
    kms_trusted_cas()
        .iter()
        .filter(|ca| !kms_fps.contains(&ca.sha256))
        .find(|ca| keytool_name_values(ca.owner) == issuer)
}

/// webpki errors in plain words.
#[allow(deprecated)] // webpki still returns the context-less variants in some paths
fn plain_webpki_error(e: &webpki::Error) -> String {
    use webpki::Error as E;
    let s = match e {
        E::UnknownIssuer => "no issuer certificate was found for a certificate in the chain",
        E::CaUsedAsEndEntity => {
            "the server's certificate is a CA certificate (basicConstraints CA:TRUE); a TLS server certificate must not be a CA"
        }
        E::EndEntityUsedAsCa => {
            "a certificate used as an intermediate is not a CA (basicConstraints CA:TRUE missing)"
        }
        E::RequiredEkuNotFound | E::RequiredEkuNotFoundContext(_) => {
            "a certificate in the chain has an extended key usage extension without serverAuth (TLS Web Server Authentication)"
        }
        E::EmptyEkuExtension => "a certificate in the chain has an empty extended key usage extension",
        E::PathLenConstraintViolated => {
            "the chain has more intermediates than a CA's pathLenConstraint allows"
        }
        E::NameConstraintViolation => "a certificate violates a CA's name constraints",
        E::CertDistrusted => "a certificate in the chain is explicitly distrusted",
        E::CertRevoked => "a certificate in the chain is revoked",
        E::InvalidSignatureForPublicKey => "a signature in the chain does not verify",
        E::SignatureAlgorithmMismatch => {
            "a certificate's inner and outer signature algorithms differ"
        }
        E::UnsupportedCriticalExtension => {
            "a certificate in the chain has a critical extension TLS path validation does not understand"
        }
        E::UnsupportedCertVersion => "a certificate in the chain is not an X.509 v3 certificate",
        E::InvalidCertValidity => "a certificate's notAfter is before its notBefore",
        E::MalformedExtensions | E::ExtensionValueInvalid => {
            "a certificate in the chain has malformed extensions"
        }
        E::MaximumPathDepthExceeded
        | E::MaximumPathBuildCallsExceeded
        | E::MaximumSignatureChecksExceeded => "the chain is too long or too complex to build",
        E::CertExpired { .. } => "a certificate in the chain has expired",
        E::CertNotValidYet { .. } => "a certificate in the chain is not valid yet",
        E::BadDer | E::BadDerTime | E::TrailingData(_) => {
            "a certificate in the chain is not well-formed DER"
        }
        _ => "",
    };
    if s.is_empty() {
        format!("certificate path validation failed ({e:?})")
    } else {
        format!("{s} (webpki: {})", short_debug(e))
    }
}

/// The variant name of a webpki error, without its (long) context.
fn short_debug(e: &webpki::Error) -> String {
    let d = format!("{e:?}");
    d.split(['(', ' ', '{'])
        .next()
        .unwrap_or_default()
        .to_string()
}

fn hex_colon(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

// ----------------------------------------------------------------------------------------------
// Distinguished names: an X.509 name against keytool's text, compared as sets of values
// ----------------------------------------------------------------------------------------------

/// Attribute values of an X.509 name, trimmed and lowercased, sorted (order and type spellings
/// differ between keytool and x509-parser, values do not).
fn x509_name_values(name: &X509Name<'_>) -> Vec<String> {
    let mut v: Vec<String> = name
        .iter_attributes()
        .filter_map(|a| a.as_str().ok())
        .map(|s| s.trim().to_lowercase())
        .collect();
    v.sort();
    v
}

/// Attribute values of a keytool (RFC 2253-like) name: `CN=x, O="a, b", C=US`.
fn keytool_name_values(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            '"' => quoted = !quoted,
            ',' | '+' if !quoted => parts.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    parts.push(cur);
    let mut v: Vec<String> = parts
        .iter()
        .filter_map(|p| p.split_once('='))
        .map(|(_, value)| value.trim().to_lowercase())
        .collect();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keytool_names_split_on_unquoted_commas() {
        assert_eq!(
            keytool_name_values("CN=Cybertrust Global Root, O=\"Cybertrust, Inc\""),
            vec!["cybertrust global root", "cybertrust, inc"]
        );
        assert_eq!(
            keytool_name_values("C=ES, O=ACCV, OU=PKIACCV, CN=ACCVRAIZ1"),
            vec!["accv", "accvraiz1", "es", "pkiaccv"]
        );
    }

    #[test]
    fn every_kms_root_owner_parses() {
        for ca in kms_trusted_cas() {
            assert!(keytool_name_values(ca.owner).len() >= 2, "{}", ca.alias);
        }
    }

    #[test]
    fn bundled_kms_roots_match_their_owner_names() {
        // The name comparison used for KmsRootNotBundled agrees with the bundled certificates.
        let mut matched = 0;
        for der in bundled_kms_roots() {
            let ca = kms_trusted_by_fingerprint(&sha256(der)).unwrap();
            let (_, x) = X509Certificate::from_der(der).unwrap();
            if x509_name_values(x.tbs_certificate.subject()) == keytool_name_values(ca.owner) {
                matched += 1;
            } else {
                eprintln!(
                    "name differs: {} / {}",
                    ca.alias,
                    x.tbs_certificate.subject()
                );
            }
        }
        assert!(matched * 10 >= bundled_kms_roots().len() * 9, "{matched}");
    }
}
