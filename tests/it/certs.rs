//! Integration tests for `cks_doctor::certs` against the fixtures made by `scripts/gen-fixtures.sh`.

use std::path::PathBuf;

use cks_doctor::certs::{
    find_issuer, parse_pem_chain, parse_pem_chain_bytes, verify_anchor_chain,
    verify_anchor_chain_at, verify_cluster_cert, verify_self_signed, verify_signed_by, Cert,
    CertInputError, ChainIssue, ChainOutcome, IssueSeverity, VerifyError, MAX_PEM_CERTIFICATES,
};

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/certs")
        .join(name)
}

fn text(name: &str) -> String {
    std::fs::read_to_string(fixture_path(name)).unwrap_or_else(|e| panic!("read {name}: {e}"))
}

fn chain(name: &str) -> Vec<Cert> {
    parse_pem_chain(&text(name)).unwrap_or_else(|e| panic!("parse {name}: {e}"))
}

fn one(name: &str) -> Cert {
    let mut v = chain(name);
    assert_eq!(v.len(), 1, "{name} should hold one certificate");
    v.remove(0)
}

/// (fixture prefix, expected key description of the CA, expected signature algorithm name)
const PAIRS: &[(&str, &str, &str)] = &[
    (
        "rsa2048-pkcs1-sha256",
        "RSA 2048",
        "sha256WithRSAEncryption",
    ),
    ("rsa3072-pss-sha384", "RSA 3072", "RSASSA-PSS (SHA-384)"),
    ("ec-p256-sha256", "EC P-256", "ecdsa-with-SHA256"),
    ("ec-p384-sha384", "EC P-384", "ecdsa-with-SHA384"),
    ("ec-p521-sha512", "EC P-521", "ecdsa-with-SHA512"),
    (
        "rsa2048-pkcs1-sha224",
        "RSA 2048",
        "sha224WithRSAEncryption",
    ),
    ("rsa2048-pkcs1-sha1", "RSA 2048", "sha1WithRSAEncryption"),
    (
        "rsa2048-pkcs1-sha512",
        "RSA 2048",
        "sha512WithRSAEncryption",
    ),
    ("ec-p384-sha256", "EC P-384", "ecdsa-with-SHA256"),
    ("ec-p521-sha256", "EC P-521", "ecdsa-with-SHA256"),
    ("ec-p256-sha512", "EC P-256", "ecdsa-with-SHA512"),
];

// ------------------------------------------------------------------------------------- positive

#[test]
fn every_supported_pair_verifies() {
    for (name, key, sig) in PAIRS {
        let ca = one(&format!("{name}-ca.crt"));
        let cluster = one(&format!("{name}-cluster.crt"));
        let s = ca.summary();
        assert_eq!(&s.key, key, "{name} CA key");
        assert_eq!(&s.signature_algorithm, sig, "{name} CA signature algorithm");
        assert_eq!(
            &cluster.summary().signature_algorithm,
            sig,
            "{name} cluster sig"
        );
        assert!(s.is_ca, "{name} CA flag");
        assert!(s.self_issued, "{name} self-issued");
        assert_eq!(verify_self_signed(&ca), Ok(()), "{name} CA self-signature");
        assert_eq!(
            verify_signed_by(&cluster, &ca),
            Ok(()),
            "{name} cluster signed by CA"
        );
        assert_eq!(
            verify_cluster_cert(&cluster, std::slice::from_ref(&ca)),
            Ok(()),
            "{name} verify_cluster_cert"
        );
        let v = verify_anchor_chain(std::slice::from_ref(&ca));
        assert_eq!(v.links.len(), 1);
        assert!(v.links[0].is_self_signature());
        assert_eq!(v.errors().count(), 0, "{name}: {:?}", v.issues);
        assert!(v.is_ok(), "{name}: {v:?}");
        assert_eq!(v.outcome(), ChainOutcome::Verified);
    }
}

#[test]
fn cluster_cert_without_extensions_verifies() {
    // Signed the way the CloudHSM guide does it: no AKI, so only name + signature are checked.
    let ca = one("rsa2048-pkcs1-sha256-ca.crt");
    let cluster = one("rsa2048-pkcs1-sha256-cluster-noext.crt");
    assert_eq!(cluster.summary().authority_key_id, None);
    assert_eq!(verify_signed_by(&cluster, &ca), Ok(()));
}

#[test]
fn summary_fields() {
    let ca = one("rsa2048-pkcs1-sha256-ca.crt");
    let cluster = one("rsa2048-pkcs1-sha256-cluster.crt");
    let s = ca.summary();
    assert_eq!(
        s.subject,
        "C=US, O=Example Corp, OU=KMS custom key store tests, CN=rsa2048-pkcs1-sha256 customer CA"
    );
    assert_eq!(s.issuer, s.subject);
    assert_eq!(s.serial_hex, "0101");
    assert!(s.not_before.ends_with('Z') && s.not_before.contains('T'));
    assert!(s.not_after_unix > s.not_before_unix);
    assert_eq!(s.key_cert_sign, Some(true));
    assert!(!s.signature_uses_sha1);
    let ski = s.subject_key_id.clone().expect("CA has an SKI");
    assert_eq!(ski.len(), 20 * 3 - 1, "20 bytes, colon-separated: {ski}");
    assert_eq!(s.sha256_fingerprint.len(), 32 * 3 - 1);
    assert_eq!(
        s.sha256_fingerprint,
        s.sha256_fingerprint.to_uppercase(),
        "uppercase"
    );

    let c = cluster.summary();
    assert!(!c.is_ca);
    assert!(!c.self_issued);
    assert_eq!(c.issuer, s.subject);
    assert_eq!(c.authority_key_id.as_deref(), Some(ski.as_str()));
    assert!(c
        .subject
        .contains("HSM:5.3G1941-ICM000001:PARTN:1, for FIPS mode"));
    assert_eq!(c.key, "RSA 2048");
    assert_eq!(c.serial_hex, "0201");

    assert!(
        one("rsa2048-pkcs1-sha1-cluster.crt")
            .summary()
            .signature_uses_sha1
    );
    assert_eq!(one("ed25519-ca.crt").summary().key, "Ed25519");
    assert_eq!(one("ec-p224-sha256-ca.crt").summary().key, "EC P-224");
}

#[test]
fn pem_round_trip() {
    let ca = one("ec-p384-sha384-ca.crt");
    let again = parse_pem_chain(&ca.to_pem()).unwrap();
    assert_eq!(again, vec![ca.clone()]);
    assert_eq!(Cert::from_der(ca.der.clone()).unwrap(), ca);
    // The fixture file itself is exactly what to_pem writes.
    assert_eq!(ca.to_pem(), text("ec-p384-sha384-ca.crt"));
}

#[test]
fn crlf_and_surrounding_text_are_accepted() {
    let pem = text("ec-p256-sha256-ca.crt").replace('\n', "\r\n");
    let input = format!("Subject: my CA\r\n\r\n{pem}\r\ntrailing notes\r\n");
    let certs = parse_pem_chain(&input).unwrap();
    assert_eq!(certs.len(), 1);
    assert_eq!(certs[0], one("ec-p256-sha256-ca.crt"));
}

// ------------------------------------------------------------------------------------- negative

#[test]
fn impostor_with_same_name_fails() {
    let cluster = one("rsa2048-pkcs1-sha256-cluster.crt");
    let real = one("rsa2048-pkcs1-sha256-ca.crt");
    let impostor = one("impostor-ca.crt");
    let impostor_noski = one("impostor-noski-ca.crt");
    // Same subject DN, byte for byte.
    assert_eq!(impostor.summary().subject, real.summary().subject);
    assert_eq!(verify_self_signed(&impostor), Ok(()));
    assert_eq!(verify_self_signed(&impostor_noski), Ok(()));

    // The cluster certificate has an AKI, the impostor an SKI: key ids differ.
    match verify_signed_by(&cluster, &impostor) {
        Err(VerifyError::KeyIdMismatch { aki, ski }) => {
            assert_eq!(Some(aki), cluster.summary().authority_key_id);
            assert_eq!(Some(ski), impostor.summary().subject_key_id);
        }
        other => panic!("expected KeyIdMismatch, got {other:?}"),
    }
    // Without key ids on one side, the signature itself must catch it.
    assert_eq!(
        verify_signed_by(&cluster, &impostor_noski),
        Err(VerifyError::BadSignature)
    );
    let noext = one("rsa2048-pkcs1-sha256-cluster-noext.crt");
    assert_eq!(
        verify_signed_by(&noext, &impostor),
        Err(VerifyError::BadSignature)
    );
    assert!(verify_cluster_cert(&cluster, &[impostor]).is_err());
    assert_eq!(
        verify_cluster_cert(&noext, &[impostor_noski]),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn wrong_ca_is_issuer_mismatch() {
    let cluster = one("rsa2048-pkcs1-sha256-cluster.crt");
    let other = one("ec-p256-sha256-ca.crt");
    match verify_signed_by(&cluster, &other) {
        Err(VerifyError::IssuerMismatch {
            expected_issuer,
            actual_subject,
        }) => {
            assert!(expected_issuer.contains("rsa2048-pkcs1-sha256 customer CA"));
            assert!(actual_subject.contains("ec-p256-sha256 customer CA"));
        }
        other => panic!("expected IssuerMismatch, got {other:?}"),
    }
    // Every CA fixture against every other pair's cluster certificate fails.
    for (a, _, _) in PAIRS {
        for (b, _, _) in PAIRS {
            if a == b {
                continue;
            }
            let r = verify_signed_by(
                &one(&format!("{a}-cluster.crt")),
                &one(&format!("{b}-ca.crt")),
            );
            assert!(
                matches!(r, Err(VerifyError::IssuerMismatch { .. })),
                "{a} vs {b}: {r:?}"
            );
        }
    }
}

#[test]
fn tampered_signature_is_bad_signature() {
    for (name, _, _) in PAIRS {
        let ca = one(&format!("{name}-ca.crt"));
        let cluster = one(&format!("{name}-cluster.crt"));
        // Flip one bit in the middle of the signature (the signature ends the DER).
        let mut der = cluster.der.clone();
        let at = der.len() - 10;
        der[at] ^= 0x01;
        let tampered = Cert::from_der(der).expect("still parses");
        assert_eq!(
            verify_signed_by(&tampered, &ca),
            Err(VerifyError::BadSignature),
            "{name}"
        );
        // Change one letter of the subject (inside the signed part) instead.
        let mut der = cluster.der.clone();
        let pos = der
            .windows(5)
            .position(|w| w == b"PARTN")
            .expect("subject CN");
        der[pos] = b'Q';
        assert!(Cert::from_der(der.clone())
            .unwrap()
            .summary()
            .subject
            .contains("QARTN"));
        let tampered = Cert::from_der(der).expect("still parses");
        assert_eq!(
            verify_signed_by(&tampered, &ca),
            Err(VerifyError::BadSignature),
            "{name} tbs"
        );
    }
}

#[test]
fn unsupported_algorithms_are_named() {
    let ed_ca = one("ed25519-ca.crt");
    let ed_cluster = one("ed25519-cluster.crt");
    assert_eq!(
        verify_signed_by(&ed_cluster, &ed_ca),
        Err(VerifyError::Unsupported {
            algorithm: "Ed25519".into()
        })
    );
    assert_eq!(
        verify_self_signed(&ed_ca),
        Err(VerifyError::Unsupported {
            algorithm: "Ed25519".into()
        })
    );
    let v = verify_anchor_chain(std::slice::from_ref(&ed_ca));
    assert_eq!(v.outcome(), ChainOutcome::Unverifiable);
    assert!(!v.is_ok());
    assert!(v.issues.iter().any(
        |i| matches!(i, ChainIssue::Unverifiable { index: 0, algorithm } if algorithm == "Ed25519")
    ));

    let p224_ca = one("ec-p224-sha256-ca.crt");
    let p224_cluster = one("ec-p224-sha256-cluster.crt");
    assert_eq!(
        verify_signed_by(&p224_cluster, &p224_ca),
        Err(VerifyError::Unsupported {
            algorithm: "ECDSA on P-224".into()
        })
    );
    let msg = VerifyError::Unsupported {
        algorithm: "ECDSA on P-224".into(),
    }
    .to_string();
    assert_eq!(msg, "cannot verify ECDSA on P-224 signatures offline");
}

#[test]
fn not_a_ca_is_reported() {
    let c = one("not-a-ca.crt");
    assert!(!c.summary().is_ca);
    assert!(c.summary().self_issued);
    assert_eq!(verify_self_signed(&c), Ok(()));
    let v = verify_anchor_chain(std::slice::from_ref(&c));
    assert_eq!(v.outcome(), ChainOutcome::Failed);
    assert!(v.issues.contains(&ChainIssue::NotCa { index: 0 }));
    assert!(v.issues.contains(&ChainIssue::NoKeyCertSign { index: 0 }));
    assert_eq!(
        ChainIssue::NotCa { index: 0 }.severity(),
        IssueSeverity::Error
    );
}

/// A self-signed root without basicConstraints (as a v1 certificate has none) that did sign the
/// cluster certificate: AWS does not document that KMS rejects it, so it is a warning, not an
/// IncorrectTrustAnchorException (issue 11 #9). CA:FALSE stated outright stays an error.
#[test]
fn root_without_basic_constraints_is_a_warning() {
    use rcgen::{CertificateParams, DistinguishedName, DnType, IsCa, KeyPair};
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "Legacy v1-style root");
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = dn;
    params.is_ca = IsCa::NoCa; // no basicConstraints extension at all
    let key = KeyPair::generate().unwrap();
    let issuer = rcgen::Issuer::new(
        params.clone(),
        KeyPair::from_pem(&key.serialize_pem()).unwrap(),
    );
    let root = params.self_signed(&key).unwrap();
    let mut cluster = CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut cdn = DistinguishedName::new();
    cdn.push(
        DnType::CommonName,
        "HSM:0123456789AB:PARTN:1, for FIPS mode",
    );
    cluster.distinguished_name = cdn;
    let cluster_key = KeyPair::generate().unwrap();
    let cluster = cluster.signed_by(&cluster_key, &issuer).unwrap();

    let root = Cert::from_der(root.der().to_vec()).unwrap();
    let cluster = Cert::from_der(cluster.der().to_vec()).unwrap();
    assert!(!root.summary().is_ca);
    assert!(!root.summary().basic_constraints);
    let v = verify_anchor_chain(std::slice::from_ref(&root));
    assert!(
        v.issues
            .contains(&ChainIssue::NoBasicConstraints { index: 0 }),
        "{:?}",
        v.issues
    );
    assert!(!v.issues.contains(&ChainIssue::NotCa { index: 0 }));
    assert_eq!(
        ChainIssue::NoBasicConstraints { index: 0 }.severity(),
        IssueSeverity::Warning
    );
    assert_eq!(v.outcome(), ChainOutcome::Verified);
    assert_eq!(
        verify_cluster_cert(&cluster, std::slice::from_ref(&root)),
        Ok(())
    );
    // not-a-ca.crt states CA:FALSE: still an error.
    let c = one("not-a-ca.crt");
    assert!(c.summary().basic_constraints);
    let v = verify_anchor_chain(std::slice::from_ref(&c));
    assert!(v.issues.contains(&ChainIssue::NotCa { index: 0 }));
}

#[test]
fn not_self_signed_ca_alone_fails() {
    let c = one("not-self-signed-ca.crt");
    assert!(c.summary().is_ca);
    assert!(!c.summary().self_issued);
    assert!(matches!(
        verify_self_signed(&c),
        Err(VerifyError::IssuerMismatch { .. })
    ));
    let v = verify_anchor_chain(std::slice::from_ref(&c));
    assert_eq!(v.outcome(), ChainOutcome::Failed);
    assert!(v
        .issues
        .iter()
        .any(|i| matches!(i, ChainIssue::RootMissing { issuer } if issuer.contains("rsa2048-pkcs1-sha256 customer CA"))));
    // Together with its issuer it is a valid two-certificate chain.
    let root = one("rsa2048-pkcs1-sha256-ca.crt");
    assert_eq!(verify_signed_by(&c, &root), Ok(()));
    let v = verify_anchor_chain(&[c, root]);
    assert!(v.is_ok(), "{v:?}");
}

#[test]
fn expired_ca_warns_only() {
    let ca = one("expired-ca.crt");
    let cluster = one("expired-ca-cluster.crt");
    assert_eq!(ca.summary().not_after, "2015-01-01T00:00:00Z");
    assert_eq!(ca.summary().not_before, "2010-01-01T00:00:00Z");
    assert!(!ca.is_valid_at(time::OffsetDateTime::now_utc().unix_timestamp()));
    assert_eq!(verify_self_signed(&ca), Ok(()));
    assert_eq!(
        verify_cluster_cert(&cluster, std::slice::from_ref(&ca)),
        Ok(())
    );
    let v = verify_anchor_chain(std::slice::from_ref(&ca));
    assert!(v.is_ok(), "dates are warnings only: {v:?}");
    assert_eq!(
        v.warnings().cloned().collect::<Vec<_>>(),
        vec![ChainIssue::Expired {
            index: 0,
            not_after: "2015-01-01T00:00:00Z".into()
        }]
    );
    // Before its notBefore it is "not yet valid".
    let v = verify_anchor_chain_at(std::slice::from_ref(&ca), 1_000_000_000);
    assert!(matches!(
        v.warnings().next(),
        Some(ChainIssue::NotYetValid { index: 0, .. })
    ));
    // Inside its validity period there is no date warning.
    let v = verify_anchor_chain_at(std::slice::from_ref(&ca), 1_300_000_000);
    assert_eq!(v.warnings().count(), 0);
}

#[test]
fn sha1_is_verified_but_noted() {
    let ca = one("rsa2048-pkcs1-sha1-ca.crt");
    let v = verify_anchor_chain(std::slice::from_ref(&ca));
    assert!(v.is_ok());
    assert!(v.issues.contains(&ChainIssue::Sha1Signature { index: 0 }));
}

// ---------------------------------------------------------------------------------------- chains

#[test]
fn chain_intermediate_then_root_verifies() {
    let anchors = chain("chain-intermediate-root.pem");
    assert_eq!(anchors.len(), 2);
    assert_eq!(anchors[0], one("chain-intermediate.crt"));
    assert_eq!(anchors[1], one("chain-root.crt"));
    let cluster = one("chain-cluster.crt");
    assert_eq!(verify_cluster_cert(&cluster, &anchors), Ok(()));
    let v = verify_anchor_chain(&anchors);
    assert!(v.is_ok(), "{v:?}");
    assert_eq!(v.links.len(), 2);
    assert_eq!((v.links[0].child, v.links[0].issuer), (0, 1));
    assert_eq!((v.links[1].child, v.links[1].issuer), (1, 1));
    assert_eq!(v.certificates[1].key, "EC P-384");
    assert_eq!(v.certificates[0].path_len_constraint, Some(0));
    assert_eq!(find_issuer(&cluster, &anchors), Some(0));
}

#[test]
fn chain_problems_are_reported_per_link() {
    let anchors = chain("chain-intermediate-root.pem");
    let cluster = one("chain-cluster.crt");

    // Root only: the cluster certificate was issued by the (missing) intermediate.
    assert!(matches!(
        verify_cluster_cert(&cluster, &anchors[1..]),
        Err(VerifyError::IssuerMismatch { .. })
    ));
    // Intermediate only: the chain does not reach a self-signed root.
    assert!(matches!(
        verify_cluster_cert(&cluster, &anchors[..1]),
        Err(VerifyError::IssuerMismatch { .. })
    ));
    let v = verify_anchor_chain(&anchors[..1]);
    assert_eq!(v.outcome(), ChainOutcome::Failed);
    assert!(v
        .issues
        .iter()
        .any(|i| matches!(i, ChainIssue::RootMissing { .. })));

    // Root first: wrong order.
    let reversed = vec![anchors[1].clone(), anchors[0].clone()];
    assert!(verify_cluster_cert(&cluster, &reversed).is_err());
    assert_eq!(find_issuer(&cluster, &reversed), Some(1));
    let v = verify_anchor_chain(&reversed);
    assert_eq!(v.outcome(), ChainOutcome::Failed);
    assert!(v.issues.contains(&ChainIssue::RootFirst));
    assert!(matches!(
        v.links[0].result,
        Err(VerifyError::IssuerMismatch { .. })
    ));
    assert!(matches!(
        v.links[1].result,
        Err(VerifyError::IssuerMismatch { .. })
    ));

    // A broken middle link: intermediate followed by an unrelated root.
    let broken = vec![anchors[0].clone(), one("ec-p384-sha384-ca.crt")];
    let v = verify_anchor_chain(&broken);
    assert_eq!(v.outcome(), ChainOutcome::Failed);
    assert!(matches!(
        v.links[0].result,
        Err(VerifyError::IssuerMismatch { .. })
    ));
    assert_eq!(v.links[1].result, Ok(()));
    assert_eq!(v.failed_links().count(), 1);

    // Too long for CloudHSM (more than 4), and pathLen 0 on the intermediate is exceeded.
    let long = vec![
        anchors[0].clone(),
        anchors[0].clone(),
        anchors[0].clone(),
        anchors[0].clone(),
        anchors[1].clone(),
    ];
    let v = verify_anchor_chain(&long);
    assert!(v.issues.contains(&ChainIssue::TooLong { count: 5, max: 4 }));
    assert!(v
        .issues
        .iter()
        .any(|i| matches!(i, ChainIssue::PathLenExceeded { .. })));

    let v = verify_anchor_chain(&[]);
    assert_eq!(v.issues, vec![ChainIssue::Empty]);
    assert_eq!(v.outcome(), ChainOutcome::Failed);
    assert!(matches!(
        verify_cluster_cert(&cluster, &[]),
        Err(VerifyError::Malformed { .. })
    ));
}

// ---------------------------------------------------------------------------------- parse errors

/// Base64 body of a PEM file (no armour lines).
fn body_of(pem: &str) -> String {
    pem.lines().filter(|l| !l.starts_with("-----")).collect()
}

/// A syntactically plausible private key block (not a real key).
const FAKE_KEY: &str = "-----BEGIN PRIVATE KEY-----\n\
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDZzUdVm7n9rJ0X\n\
c2VjcmV0LWxvb2tpbmctYnV0LWZha2Uta2V5LW1hdGVyaWFsLWZvci10ZXN0cw==\n\
-----END PRIVATE KEY-----\n";

fn parse_errors() -> Vec<(&'static str, String, CertInputError)> {
    let pem = text("rsa2048-pkcs1-sha256-ca.crt");
    let der = one("rsa2048-pkcs1-sha256-ca.crt").der;
    let mut cases: Vec<(&'static str, String)> = vec![
        ("empty", String::new()),
        ("whitespace", " \n\t\n".into()),
        ("garbage", "hello this is not a certificate at all".into()),
        ("bare base64", body_of(&pem)),
        ("der as text", String::from_utf8_lossy(&der).into_owned()),
        ("private key", FAKE_KEY.into()),
        ("cert then key", format!("{pem}{FAKE_KEY}")),
        (
            "csr",
            "-----BEGIN CERTIFICATE REQUEST-----\nMIIBAA==\n-----END CERTIFICATE REQUEST-----\n"
                .into(),
        ),
        ("fifty", pem.repeat(50)),
        ("unterminated", pem.replace("-----END CERTIFICATE-----", "")),
        ("escaped newlines", pem.replace('\n', "\\n")),
    ];
    // Truncated base64: drop 3 characters from the last body line (length no longer % 4).
    let mut lines: Vec<String> = pem.lines().map(str::to_string).collect();
    let n = lines.len();
    let last_body = &mut lines[n - 2];
    last_body.truncate(last_body.len() - 3);
    cases.push(("truncated base64", lines.join("\n")));
    // Truncated at a 4-character boundary: base64 is fine, the DER is cut short.
    let mut lines: Vec<String> = pem.lines().map(str::to_string).collect();
    lines.drain(5..n - 1);
    cases.push(("truncated der", lines.join("\n")));
    // An invalid character in the middle.
    let mut lines: Vec<String> = pem.lines().map(str::to_string).collect();
    lines[3].replace_range(10..11, "*");
    cases.push(("bad char", lines.join("\n")));
    // A second, broken certificate after a good one.
    cases.push((
        "second broken",
        format!("{pem}{}", pem.replacen("MII", "MIJ", 1)),
    ));
    cases
        .into_iter()
        .map(|(name, input)| {
            let err = parse_pem_chain(&input).map(|v| v.len()).expect_err(name);
            (name, input, err)
        })
        .collect()
}

#[test]
fn parse_errors_have_the_right_variant() {
    for (name, _, err) in parse_errors() {
        let ok = match name {
            "empty" | "whitespace" => err == CertInputError::Empty,
            "garbage" | "bare base64" => err == CertInputError::NoPemBlock,
            "der as text" => err == CertInputError::LooksLikeDer,
            "private key" => {
                err == CertInputError::NotACertificate {
                    index: 0,
                    kind: "PRIVATE KEY".into(),
                }
            }
            "cert then key" => {
                err == CertInputError::NotACertificate {
                    index: 1,
                    kind: "PRIVATE KEY".into(),
                }
            }
            "csr" => {
                err == CertInputError::NotACertificate {
                    index: 0,
                    kind: "CERTIFICATE REQUEST".into(),
                }
            }
            "fifty" => err == CertInputError::TooManyCertificates { count: 50 },
            "unterminated" => err == CertInputError::Unterminated { index: 0 },
            "escaped newlines" => err == CertInputError::EscapedNewlines { index: 0 },
            "truncated base64" | "bad char" => err == CertInputError::BadBase64 { index: 0 },
            "truncated der" => matches!(err, CertInputError::BadDer { index: 0, .. }),
            "second broken" => matches!(err, CertInputError::BadDer { index: 1, .. }),
            other => panic!("no expectation for {other}"),
        };
        assert!(ok, "{name}: got {err:?}");
    }
}

#[test]
fn parse_error_messages_never_echo_the_input() {
    let pem = text("rsa2048-pkcs1-sha256-ca.crt");
    let b64 = body_of(&pem);
    for (name, input, err) in parse_errors() {
        let msg = err.to_string();
        assert!(!msg.contains('\n'), "{name}: one line: {msg}");
        assert!(!msg.is_empty());
        // No 12-character window of the input (PEM armour lines aside) appears in the message.
        let mut masked = input.clone();
        for armour in [
            "-----BEGIN CERTIFICATE REQUEST-----",
            "-----END CERTIFICATE REQUEST-----",
            "-----BEGIN CERTIFICATE-----",
            "-----END CERTIFICATE-----",
            "-----BEGIN PRIVATE KEY-----",
            "-----END PRIVATE KEY-----",
        ] {
            masked = masked.replace(armour, "\u{0}");
        }
        let chars: Vec<char> = masked.chars().collect();
        for w in chars.windows(12) {
            if w.contains(&'\u{0}') {
                continue;
            }
            let s: String = w.iter().collect();
            assert!(
                !msg.contains(&s),
                "{name}: message {msg:?} echoes input {s:?}"
            );
        }
        for w in b64.as_bytes().chunks(8) {
            let s = std::str::from_utf8(w).unwrap();
            assert!(!msg.contains(s), "{name}: message echoes base64 {s:?}");
        }
        assert!(!msg.contains("c2VjcmV0"), "{name}: key material in {msg:?}");
    }
}

#[test]
fn too_many_is_capped_at_the_constant() {
    let pem = text("ec-p256-sha256-ca.crt");
    assert_eq!(
        parse_pem_chain(&pem.repeat(MAX_PEM_CERTIFICATES))
            .unwrap()
            .len(),
        MAX_PEM_CERTIFICATES
    );
    assert_eq!(
        parse_pem_chain(&pem.repeat(MAX_PEM_CERTIFICATES + 1)).unwrap_err(),
        CertInputError::TooManyCertificates {
            count: MAX_PEM_CERTIFICATES + 1
        }
    );
}

#[test]
fn raw_der_bytes_are_rejected_clearly() {
    let der = one("rsa2048-pkcs1-sha256-ca.crt").der;
    assert_eq!(
        parse_pem_chain_bytes(&der).unwrap_err(),
        CertInputError::LooksLikeDer
    );
    assert_eq!(
        parse_pem_chain_bytes(text("ec-p256-sha256-ca.crt").as_bytes())
            .unwrap()
            .len(),
        1
    );
    // DER is fine through Cert::from_der, but trailing bytes are not.
    assert!(Cert::from_der(der.clone()).is_ok());
    let mut longer = der.clone();
    longer.push(0);
    assert!(matches!(
        Cert::from_der(longer),
        Err(CertInputError::BadDer { index: 0, .. })
    ));
    assert!(matches!(
        Cert::from_der(Vec::new()),
        Err(CertInputError::BadDer { .. })
    ));
    assert!(matches!(
        Cert::from_der(der[..der.len() / 2].to_vec()),
        Err(CertInputError::BadDer { .. })
    ));
}

/// Where the signed part ends: `Certificate` and `tbsCertificate` both use 2-byte long-form lengths.
fn tbs_end(der: &[u8]) -> usize {
    assert_eq!(&der[..2], &[0x30, 0x82]);
    assert_eq!(&der[4..6], &[0x30, 0x82]);
    8 + usize::from(der[6]) * 256 + usize::from(der[7])
}

#[test]
fn arbitrary_corruption_never_panics() {
    // Corrupt bytes in turn: parsing and verification must return an error, never panic or pass.
    // Every byte of the unsigned framing (headers, outer algorithm, signature header) is tried
    // with several masks; the rest is sampled (signature checks are slow in debug builds).
    for name in [
        "ec-p256-sha256",
        "rsa2048-pkcs1-sha256",
        "rsa3072-pss-sha384",
        "ec-p521-sha512",
    ] {
        let ca = one(&format!("{name}-ca.crt"));
        let cluster = one(&format!("{name}-cluster.crt"));
        let len = cluster.der.len();
        let end = tbs_end(&cluster.der);
        let mut positions: Vec<usize> = (0..16).chain(end - 2..(end + 24).min(len)).collect();
        positions.extend((16..len).step_by(41));
        for i in positions {
            for mask in [0x01u8, 0x80, 0xFF] {
                let mut der = cluster.der.clone();
                der[i] ^= mask;
                if let Ok(c) = Cert::from_der(der) {
                    let _ = c.summary();
                    let _ = c.to_pem();
                    assert!(
                        verify_signed_by(&c, &ca).is_err(),
                        "{name} byte {i} mask {mask:#x}"
                    );
                }
            }
        }
        for i in (0..ca.der.len()).step_by(23) {
            let mut der = ca.der.clone();
            der[i] ^= 0x5A;
            if let Ok(c) = Cert::from_der(der) {
                let _ = verify_signed_by(&cluster, &c);
                let _ = verify_anchor_chain(&[c]);
            }
        }
    }
}

#[test]
fn outer_algorithm_must_match_the_signed_one() {
    // Rewrite the outer signatureAlgorithm of a sha256WithRSAEncryption certificate to sha384
    // (same length): the signed part still names sha256, so it is malformed, not "verified".
    let ca = one("rsa2048-pkcs1-sha256-ca.crt");
    let cluster = one("rsa2048-pkcs1-sha256-cluster.crt");
    let mut der = cluster.der.clone();
    let end = tbs_end(&der);
    let oid_sha256_rsa = [0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0B];
    let at = end + 4;
    assert_eq!(&der[at..at + 9], &oid_sha256_rsa);
    der[at + 8] = 0x0C;
    let c = Cert::from_der(der).expect("parses");
    assert_eq!(c.summary().signature_algorithm, "sha384WithRSAEncryption");
    assert!(matches!(
        verify_signed_by(&c, &ca),
        Err(VerifyError::Malformed { .. })
    ));
}
