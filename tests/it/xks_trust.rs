//! XKS proxy TLS trust: the embedded KMS list against the published file, and the verdicts on
//! chains minted at test time with rcgen (private root → intermediate → leaf).

use std::path::Path;

use cks_doctor::xks::trust::{
    evaluate, evaluate_with, kms_root_bundled, kms_roots_available_offline,
    kms_trusted_by_fingerprint, kms_trusted_cas, offline_coverage_note, CertReport, Trust,
    EXPIRY_WARNING_DAYS,
};
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

const HOST: &str = "myproxy.xks.example.com";
const DAY: i64 = 86_400;

// ----------------------------------------------------------------------------------------------
// The embedded table
// ----------------------------------------------------------------------------------------------

/// (alias, SHA-256) of every entry of the published keytool listing, in file order.
fn parse_reference(text: &str) -> Vec<(String, [u8; 32])> {
    let mut out = Vec::new();
    let mut alias: Option<String> = None;
    for line in text.lines() {
        if let Some(a) = line.strip_prefix("Alias name: ") {
            assert!(alias.is_none(), "alias {a} follows an entry without SHA256");
            alias = Some(a.trim().to_string());
        } else if let Some(fp) = line.trim_start().strip_prefix("SHA256: ") {
            // One line carries stray text after the fingerprint: take the first word.
            let fp = fp.split_whitespace().next().unwrap();
            let bytes: Vec<u8> = fp
                .split(':')
                .map(|h| u8::from_str_radix(h, 16).unwrap())
                .collect();
            let a = alias.take().expect("SHA256 line without an alias");
            out.push((a, bytes.try_into().expect("32-byte SHA-256")));
        }
    }
    assert!(alias.is_none(), "last entry has no SHA256");
    out
}

#[test]
fn embedded_table_equals_the_reference_file() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("reference/kms-xks-trusted-certificate-authorities.txt");
    // Deliberately not skipped when missing: the reference is part of the repository.
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let reference = parse_reference(&text);
    assert_eq!(reference.len(), 130);
    let table = kms_trusted_cas();
    assert_eq!(table.len(), reference.len());
    for (entry, (alias, sha256)) in table.iter().zip(&reference) {
        assert_eq!(entry.alias, alias);
        assert_eq!(&entry.sha256, sha256, "{alias}");
        assert!(
            !entry.owner.is_empty() && !entry.not_after.is_empty(),
            "{alias}"
        );
        assert_eq!(
            kms_trusted_by_fingerprint(sha256).map(|c| c.alias),
            Some(entry.alias)
        );
    }
    assert!(kms_trusted_by_fingerprint(&[0u8; 32]).is_none());
    // Spot checks of fields the generator copies verbatim.
    let accv = &table[0];
    assert_eq!(accv.owner, "C=ES, O=ACCV, OU=PKIACCV, CN=ACCVRAIZ1");
    assert_eq!(accv.not_after, "Tue Dec 31 01:37:37 PST 2030");
    assert!(table
        .iter()
        .any(|c| c.owner == "CN=Cybertrust Global Root, O=\"Cybertrust, Inc\""));
}

#[test]
fn most_kms_roots_are_bundled_offline() {
    let n = kms_roots_available_offline();
    println!("{}", offline_coverage_note());
    let missing: Vec<&str> = kms_trusted_cas()
        .iter()
        .filter(|c| !kms_root_bundled(c))
        .map(|c| c.alias)
        .collect();
    println!("not bundled ({}): {}", missing.len(), missing.join(", "));
    // 74 with webpki-root-certs 1.0.11: Mozilla has since dropped or re-issued (same name and key,
    // new certificate, so a different SHA-256) many roots of KMS's 2022-era list.
    assert!((60..=130).contains(&n), "{n}");
    assert_eq!(n + missing.len(), 130);
}

// ----------------------------------------------------------------------------------------------
// Minting chains
// ----------------------------------------------------------------------------------------------

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

fn at(offset_secs: i64) -> OffsetDateTime {
    OffsetDateTime::now_utc() + Duration::seconds(offset_secs)
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "cks-doctor tests");
    dn.push(DnType::CommonName, cn);
    dn
}

struct Ca {
    cert: Certificate,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn der(&self) -> Vec<u8> {
        self.cert.der().to_vec()
    }
}

fn ca_params(name: DistinguishedName, from: i64, until: i64) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name = name;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = at(from);
    p.not_after = at(until);
    p
}

fn root_named(name: DistinguishedName) -> Ca {
    let p = ca_params(name, -365 * DAY, 365 * DAY);
    let key = KeyPair::generate().unwrap();
    let cert = p.self_signed(&key).unwrap();
    Ca {
        cert,
        issuer: Issuer::new(p, key),
    }
}

fn root(cn: &str) -> Ca {
    root_named(dn(cn))
}

fn intermediate_valid(cn: &str, parent: &Ca, from: i64, until: i64) -> Ca {
    let mut p = ca_params(dn(cn), from, until);
    p.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, &parent.issuer).unwrap();
    Ca {
        cert,
        issuer: Issuer::new(p, key),
    }
}

fn intermediate(cn: &str, parent: &Ca) -> Ca {
    intermediate_valid(cn, parent, -300 * DAY, 300 * DAY)
}

fn leaf_params(san: &str, from: i64, until: i64) -> CertificateParams {
    let mut p = CertificateParams::new(vec![san.to_string()]).unwrap();
    p.distinguished_name = dn(san);
    p.use_authority_key_identifier_extension = true;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.not_before = at(from);
    p.not_after = at(until);
    p
}

fn leaf_valid(san: &str, parent: &Ca, from: i64, until: i64) -> Vec<u8> {
    let key = KeyPair::generate().unwrap();
    leaf_params(san, from, until)
        .signed_by(&key, &parent.issuer)
        .unwrap()
        .der()
        .to_vec()
}

fn leaf(san: &str, parent: &Ca) -> Vec<u8> {
    leaf_valid(san, parent, -DAY, 90 * DAY)
}

struct Pki {
    root: Ca,
    inter: Ca,
    leaf: Vec<u8>,
}

fn pki() -> Pki {
    let root = root("XKS Lab Root CA");
    let inter = intermediate("XKS Lab Issuing CA", &root);
    let leaf = leaf(HOST, &inter);
    Pki { root, inter, leaf }
}

fn subject(der: &[u8]) -> String {
    cks_doctor::certs::Cert::from_der(der.to_vec())
        .unwrap()
        .summary()
        .subject
}

fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn eval(presented: &[&Vec<u8>], host: &str, extra: &[&Vec<u8>]) -> CertReport {
    let presented: Vec<Vec<u8>> = presented.iter().map(|d| d.to_vec()).collect();
    let extra: Vec<Vec<u8>> = extra.iter().map(|d| d.to_vec()).collect();
    evaluate(&presented, host, now(), &extra).unwrap()
}

// ----------------------------------------------------------------------------------------------
// --trust-ca, missing intermediates, names, dates
// ----------------------------------------------------------------------------------------------

#[test]
fn private_chain_is_trusted_only_through_trust_ca() {
    let p = pki();
    let (root, inter) = (p.root.der(), p.inter.der());
    let r = eval(&[&p.leaf, &inter], HOST, &[&root]);
    assert_eq!(
        r.trust,
        Trust::ExtraCa {
            subject: subject(&root)
        }
    );
    assert_eq!(r.trust.kms_accepts(), Some(false));
    assert!(r.trust.explain().contains("KMS itself will not trust it"));
    assert_eq!(r.chain.len(), 2);
    assert_eq!(r.chain[0].subject, subject(&p.leaf));
    assert_eq!(r.dns_names, vec![HOST.to_string()]);
    assert!(r.name_matches);
    assert!(!r.expired && !r.not_yet_valid && !r.expires_soon());
    assert!(
        (88..=90).contains(&r.days_to_expiry),
        "{}",
        r.days_to_expiry
    );

    // The intermediate itself may be the --trust-ca certificate.
    let r = eval(&[&p.leaf], HOST, &[&inter]);
    assert_eq!(
        r.trust,
        Trust::ExtraCa {
            subject: subject(&inter)
        }
    );
    // Presenting the root too changes nothing.
    let r = eval(&[&p.leaf, &inter, &root], HOST, &[&root]);
    assert!(matches!(r.trust, Trust::ExtraCa { .. }), "{:?}", r.trust);
    assert_eq!(r.chain.len(), 3);
}

#[test]
fn missing_intermediate_is_named() {
    let p = pki();
    let (root, inter) = (p.root.der(), p.inter.der());
    // Even with the root trusted, a leaf alone cannot reach it.
    for extra in [vec![], vec![&root]] {
        let r = eval(&[&p.leaf], HOST, &extra);
        assert_eq!(
            r.trust,
            Trust::MissingIntermediate {
                issuer: subject(&inter)
            }
        );
        assert!(r.trust.explain().contains("XKS Lab Issuing CA"));
    }
    // Leaf and root, intermediate left out.
    let r = eval(&[&p.leaf, &root], HOST, &[&root]);
    assert_eq!(
        r.trust,
        Trust::MissingIntermediate {
            issuer: subject(&inter)
        }
    );
}

#[test]
fn private_chain_without_trust_ca_fails() {
    let p = pki();
    let (root, inter) = (p.root.der(), p.inter.der());
    // Leaf + intermediate: the private root is neither presented nor known.
    let r = eval(&[&p.leaf, &inter], HOST, &[]);
    assert_eq!(
        r.trust,
        Trust::MissingIntermediate {
            issuer: subject(&root)
        }
    );
    assert_eq!(r.trust.kms_accepts(), Some(false));
    // The full chain, ending at a private self-signed root.
    let r = eval(&[&p.leaf, &inter, &root], HOST, &[]);
    match &r.trust {
        Trust::Untrusted { reason } => {
            assert!(reason.contains("XKS Lab Root CA"), "{reason}");
            assert!(reason.contains("not on KMS's list"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // Out of order (root before intermediate) is still understood.
    let r = eval(&[&p.leaf, &root, &inter], HOST, &[&root]);
    assert!(matches!(r.trust, Trust::ExtraCa { .. }), "{:?}", r.trust);
}

#[test]
fn name_mismatch_is_reported_apart_from_trust() {
    let p = pki();
    let (root, inter) = (p.root.der(), p.inter.der());
    let r = eval(&[&p.leaf, &inter], "other.example.org", &[&root]);
    assert!(!r.name_matches);
    assert!(matches!(r.trust, Trust::ExtraCa { .. }));
    assert_eq!(r.dns_names, vec![HOST.to_string()]);
    // Case does not matter for DNS names.
    let r = eval(&[&p.leaf, &inter], "MyProxy.XKS.example.com", &[&root]);
    assert!(r.name_matches);
}

/// AWS's guide speaks of the subject CN, TLS clients of the subjectAltName: both are read and
/// compared with the host apart (issue 11 #10).
#[test]
fn common_name_is_compared_apart_from_the_subject_alt_name() {
    let p = pki();
    let (root, inter) = (p.root.der(), p.inter.der());
    // pki()'s leaf has CN = SAN = HOST.
    let r = eval(&[&p.leaf, &inter], HOST, &[&root]);
    assert_eq!(r.common_names, vec![HOST.to_string()]);
    assert!(r.name_matches && r.cn_matches);
    // SAN for HOST, CN for another name.
    let mut params = leaf_params(HOST, -DAY, 90 * DAY);
    params.distinguished_name = dn("legacy.example.org");
    let key = KeyPair::generate().unwrap();
    let other_cn = params
        .signed_by(&key, &p.inter.issuer)
        .unwrap()
        .der()
        .to_vec();
    let r = eval(&[&other_cn, &inter], HOST, &[&root]);
    assert!(r.name_matches);
    assert!(!r.cn_matches);
    assert_eq!(r.common_names, vec!["legacy.example.org".to_string()]);
    // CN for HOST, SAN for another name: TLS clients go by the SAN.
    let mut params = leaf_params("other.example.org", -DAY, 90 * DAY);
    params.distinguished_name = dn(HOST);
    let key = KeyPair::generate().unwrap();
    let cn_only = params
        .signed_by(&key, &p.inter.issuer)
        .unwrap()
        .der()
        .to_vec();
    let r = eval(&[&cn_only, &inter], HOST, &[&root]);
    assert!(!r.name_matches);
    assert!(r.cn_matches);
    // A wildcard CN covers one label, as a wildcard SAN does.
    let wild = leaf("*.xks.example.com", &p.inter);
    assert!(eval(&[&wild, &inter], HOST, &[&root]).cn_matches);
    assert!(!eval(&[&wild, &inter], "a.b.xks.example.com", &[&root]).cn_matches);
}

/// An endpoint that is an IP address is matched against the certificate's IP addresses.
#[test]
fn ip_address_names_are_read() {
    let p = pki();
    let (root, inter) = (p.root.der(), p.inter.der());
    let ip_leaf = leaf("203.0.113.10", &p.inter);
    let r = eval(&[&ip_leaf, &inter], "203.0.113.10", &[&root]);
    assert_eq!(r.ip_addresses, vec!["203.0.113.10".to_string()]);
    assert!(r.dns_names.is_empty());
    assert!(r.name_matches);
    assert!(!eval(&[&ip_leaf, &inter], "203.0.113.11", &[&root]).name_matches);
}

#[test]
fn wildcard_leaf_matches_one_label() {
    let p = pki();
    let (root, inter) = (p.root.der(), p.inter.der());
    let wild = leaf("*.xks.example.com", &p.inter);
    let r = eval(&[&wild, &inter], HOST, &[&root]);
    assert!(r.name_matches);
    assert_eq!(r.dns_names, vec!["*.xks.example.com".to_string()]);
    assert!(matches!(r.trust, Trust::ExtraCa { .. }));
    for host in [
        "a.b.xks.example.com",
        "xks.example.com",
        "myproxy.example.com",
    ] {
        let r = eval(&[&wild, &inter], host, &[&root]);
        assert!(!r.name_matches, "{host}");
    }
}

#[test]
fn expired_leaf_keeps_its_trust_verdict() {
    let p = pki();
    let (root, inter) = (p.root.der(), p.inter.der());
    let old = leaf_valid(HOST, &p.inter, -100 * DAY, -10 * DAY);
    let r = eval(&[&old, &inter], HOST, &[&root]);
    assert!(r.expired);
    assert!(!r.not_yet_valid);
    assert!(
        r.days_to_expiry <= -10 && r.days_to_expiry >= -11,
        "{}",
        r.days_to_expiry
    );
    assert!(!r.expires_soon());
    assert_eq!(
        r.trust,
        Trust::ExtraCa {
            subject: subject(&root)
        }
    );

    let future = leaf_valid(HOST, &p.inter, 5 * DAY, 50 * DAY);
    let r = eval(&[&future, &inter], HOST, &[&root]);
    assert!(r.not_yet_valid && !r.expired);
    assert!(matches!(r.trust, Trust::ExtraCa { .. }));
}

#[test]
fn expiry_within_thirty_days_is_flagged() {
    let p = pki();
    let (root, inter) = (p.root.der(), p.inter.der());
    let soon = leaf_valid(HOST, &p.inter, -80 * DAY, 10 * DAY);
    let r = eval(&[&soon, &inter], HOST, &[&root]);
    assert!(!r.expired);
    assert!((9..=10).contains(&r.days_to_expiry), "{}", r.days_to_expiry);
    assert!(r.days_to_expiry < EXPIRY_WARNING_DAYS);
    assert!(r.expires_soon());
    let subject_now = r.chain[0].not_after_unix;
    assert_eq!(r.not_after_unix, subject_now);
}

#[test]
fn self_signed_leaf() {
    let key = KeyPair::generate().unwrap();
    let cert = leaf_params(HOST, -DAY, 90 * DAY).self_signed(&key).unwrap();
    let der = cert.der().to_vec();
    let r = eval(&[&der], HOST, &[]);
    assert_eq!(
        r.trust,
        Trust::SelfSigned {
            subject: subject(&der)
        }
    );
    assert!(r.name_matches);
    // Given with --trust-ca, the very certificate is pinned for a lab.
    let r = eval(&[&der], HOST, &[&der]);
    assert_eq!(
        r.trust,
        Trust::ExtraCa {
            subject: subject(&der)
        }
    );

    // `openssl req -x509` style: self-signed with CA:TRUE.
    let mut params = leaf_params(HOST, -DAY, 90 * DAY);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_like = params.self_signed(&key).unwrap().der().to_vec();
    let r = eval(&[&ca_like], HOST, &[]);
    assert!(matches!(r.trust, Trust::SelfSigned { .. }), "{:?}", r.trust);
    let r = eval(&[&ca_like], HOST, &[&ca_like]);
    assert!(matches!(r.trust, Trust::ExtraCa { .. }), "{:?}", r.trust);
}

// ----------------------------------------------------------------------------------------------
// Broken chains
// ----------------------------------------------------------------------------------------------

#[test]
fn root_with_the_same_name_but_another_key_is_a_bad_signature() {
    let p = pki();
    let inter = p.inter.der();
    let impostor = root("XKS Lab Root CA").der();
    let r = eval(&[&p.leaf, &inter], HOST, &[&impostor]);
    match &r.trust {
        Trust::Untrusted { reason } => {
            assert!(reason.contains("signature"), "{reason}");
            assert!(reason.contains("XKS Lab Issuing CA"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn expired_intermediate_is_named() {
    let root = root("XKS Lab Root CA");
    let inter = intermediate_valid("XKS Old Issuing CA", &root, -400 * DAY, -DAY);
    // The leaf outlives its issuer.
    let leaf = leaf_valid(HOST, &inter, -30 * DAY, 60 * DAY);
    let r = eval(&[&leaf, &inter.der()], HOST, &[&root.der()]);
    assert!(!r.expired);
    match &r.trust {
        Trust::Untrusted { reason } => {
            assert!(reason.contains("XKS Old Issuing CA"), "{reason}");
            assert!(reason.contains("expired"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn leaf_without_server_auth_is_untrusted() {
    let p = pki();
    let (root, inter) = (p.root.der(), p.inter.der());
    let mut params = leaf_params(HOST, -DAY, 90 * DAY);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate().unwrap();
    let client = params
        .signed_by(&key, &p.inter.issuer)
        .unwrap()
        .der()
        .to_vec();
    let r = eval(&[&client, &inter], HOST, &[&root]);
    match &r.trust {
        Trust::Untrusted { reason } => assert!(reason.contains("serverAuth"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn no_certificate_or_unparsable_leaf_is_an_error() {
    assert!(evaluate(&[], HOST, now(), &[]).is_err());
    assert!(evaluate(&[b"not a certificate".to_vec()], HOST, now(), &[]).is_err());
    // An unparsable intermediate is set aside, not fatal.
    let p = pki();
    let presented = vec![p.leaf.clone(), b"junk".to_vec(), p.inter.der()];
    let r = evaluate(&presented, HOST, now(), &[p.root.der()]).unwrap();
    assert_eq!(r.chain.len(), 2);
    assert!(matches!(r.trust, Trust::ExtraCa { .. }), "{:?}", r.trust);
}

// ----------------------------------------------------------------------------------------------
// KMS's roots versus Mozilla's (anchor sets injected)
// ----------------------------------------------------------------------------------------------

#[test]
fn kms_anchor_gives_kms_trusted() {
    let p = pki();
    let (root, inter) = (p.root.der(), p.inter.der());
    let roots = vec![root.clone()];
    let presented = vec![p.leaf.clone(), inter.clone()];
    let r = evaluate_with(&presented, HOST, now(), &roots, &[], &[]).unwrap();
    match &r.trust {
        Trust::KmsTrusted {
            root_subject,
            root_sha256,
            ..
        } => {
            assert_eq!(root_subject, &subject(&root));
            assert_eq!(root_sha256, &fingerprint(&root));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r.trust.kms_accepts(), Some(true));
    // KMS's roots come before --trust-ca and Mozilla's.
    let r = evaluate_with(&presented, HOST, now(), &roots, &roots, &roots).unwrap();
    assert!(matches!(r.trust, Trust::KmsTrusted { .. }), "{:?}", r.trust);
    // An expired leaf under a KMS root: trusted chain, expired certificate.
    let old = leaf_valid(HOST, &p.inter, -100 * DAY, -10 * DAY);
    let r = evaluate_with(&[old, inter], HOST, now(), &roots, &[], &[]).unwrap();
    assert!(r.expired);
    assert!(matches!(r.trust, Trust::KmsTrusted { .. }), "{:?}", r.trust);
}

#[test]
fn browser_only_root_fails_and_says_so() {
    let p = pki();
    let (root, inter) = (p.root.der(), p.inter.der());
    let roots = vec![root.clone()];
    let presented = vec![p.leaf.clone(), inter];
    let r = evaluate_with(&presented, HOST, now(), &[], &[], &roots).unwrap();
    assert_eq!(
        r.trust,
        Trust::BrowserOnly {
            root_subject: subject(&root)
        }
    );
    assert_eq!(r.trust.kms_accepts(), Some(false));
    assert!(r.trust.explain().contains("NOT on KMS's list"));
    // A --trust-ca certificate wins over a browser root (lab mode).
    let r = evaluate_with(&presented, HOST, now(), &[], &roots, &roots).unwrap();
    assert!(matches!(r.trust, Trust::ExtraCa { .. }), "{:?}", r.trust);
}

#[test]
fn real_mozilla_roots_are_not_kms_roots_unless_listed() {
    // Through `evaluate` (real anchor sets) a private chain is never KmsTrusted or BrowserOnly.
    let p = pki();
    let r = eval(&[&p.leaf, &p.inter.der()], HOST, &[]);
    assert!(!matches!(
        r.trust,
        Trust::KmsTrusted { .. } | Trust::BrowserOnly { .. }
    ));
}

#[test]
fn chain_to_an_unbundled_kms_root_cannot_be_checked_offline() {
    // Pick a root on KMS's list that Mozilla's store no longer has, and mint a root bearing its
    // name (values only: the comparison ignores attribute types), as a re-issue would.
    let Some(ca) = kms_trusted_cas()
        .iter()
        .find(|c| !kms_root_bundled(c) && !c.owner.contains('"') && !c.owner.contains('\\'))
    else {
        println!("every KMS root is bundled: nothing to test");
        return;
    };
    let mut name = DistinguishedName::new();
    for (i, part) in ca.owner.split(", ").enumerate() {
        let (_, value) = part.split_once('=').unwrap();
        name.push(
            DnType::CustomDnType(vec![1, 3, 6, 1, 4, 1, 55555, i as u64]),
            value,
        );
    }
    let look_alike = root_named(name);
    let inter = intermediate("XKS Cross Issuing CA", &look_alike);
    let leaf = leaf(HOST, &inter);
    let expected = Trust::KmsRootNotBundled {
        root_alias: ca.alias.to_string(),
    };
    // The chain names the root as its last issuer.
    let r = eval(&[&leaf, &inter.der()], HOST, &[]);
    assert_eq!(r.trust, expected);
    assert_eq!(r.trust.kms_accepts(), None);
    assert!(r.trust.explain().contains("cannot be verified offline"));
    // The server presents a root with that name but another fingerprint.
    let r = eval(&[&leaf, &inter.der(), &look_alike.der()], HOST, &[]);
    assert_eq!(r.trust, expected);
    // A browser root with that name is not called "browser only".
    let presented = vec![leaf.clone(), inter.der()];
    let r = evaluate_with(&presented, HOST, now(), &[], &[], &[look_alike.der()]).unwrap();
    assert_eq!(r.trust, expected);
    // A concrete defect on the way still fails: the leaf is not for TLS servers.
    let mut params = leaf_params(HOST, -DAY, 90 * DAY);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate().unwrap();
    let client = params
        .signed_by(&key, &inter.issuer)
        .unwrap()
        .der()
        .to_vec();
    let r = eval(&[&client, &inter.der()], HOST, &[]);
    assert!(matches!(r.trust, Trust::Untrusted { .. }), "{:?}", r.trust);
}

#[test]
fn report_serializes_with_a_kind_tag() {
    let p = pki();
    let r = eval(&[&p.leaf, &p.inter.der()], HOST, &[&p.root.der()]);
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["trust"]["kind"], "extra_ca");
    assert_eq!(v["name_matches"], true);
    assert_eq!(v["chain"].as_array().unwrap().len(), 2);
}
