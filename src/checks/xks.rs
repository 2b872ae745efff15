//! External key store checks (requirements §2, §4, §6): the request's parameters, the proxy
//! as KMS reaches it (DNS, TCP, TLS, trust, GetHealthStatus, latency, clock), what the proxy
//! must refuse, and the account's other stores. Every network fact comes from the one shared
//! probe in [`Facts::xks_probe`].

use super::{got, register, Outcome, Step};
use crate::codes::Code;
use crate::facts::Facts;
use crate::input::{endpoint_problem, path_problem, XksRequest};
use crate::xks::address::non_public;
use crate::xks::probe::{
    Exchange, ProbeReport, RefusalKind, TlsSession, KMS_BUDGET_MS, KMS_SUITES, RECOMMENDED_RTT_MS,
};
use crate::xks::trust::{self, Trust};
use secrecy::ExposeSecret;

register! {
    "xks.params.uri-endpoint" => uri_endpoint,
    "xks.params.uri-path" => uri_path,
    "xks.params.credential" => credential,
    "xks.params.region" => region,
    "xks.account.uri-unused" => uri_unused,
    "xks.account.endpoint-unused" => endpoint_unused,
    "xks.connection.dns" => dns,
    "xks.connection.tcp" => tcp,
    "xks.tls.version" => tls_version,
    "xks.tls.cipher-suite" => cipher_suite,
    "xks.tls.certificate-validity" => certificate_validity,
    "xks.tls.certificate-name" => certificate_name,
    "xks.tls.certificate-trust" => certificate_trust,
    "xks.health.response" => health_response,
    "xks.health.fleet" => health_fleet,
    "xks.latency.budget" => latency_budget,
    "xks.clock.skew" => clock_skew,
    "xks.security.rejects-unsigned" => rejects_unsigned,
    "xks.security.rejects-wrong-secret" => rejects_wrong_secret,
    "xks.spec.unknown-path" => spec_unknown_path,
    "xks.spec.get-method" => spec_get,
    "xks.spec.empty-body" => spec_empty_body,
}

const UNREACHABLE: Code = Code::XksProxyUriUnreachableException;
const INVALID_CONFIG: Code = Code::XksProxyInvalidConfigurationException;
const INVALID_RESPONSE: Code = Code::XksProxyInvalidResponseException;
const BAD_CREDENTIAL: Code = Code::XksProxyIncorrectAuthenticationCredentialException;

fn req(f: &Facts) -> Step<&XksRequest> {
    f.request
        .xks()
        .ok_or_else(|| Outcome::skip("not an external key store request"))
}

// ----- parameters (§2) -----

/// `reference/xks-regions.json`: the Regions AWS's developer guide says have no external key
/// stores, with its source and date, and the Regions that statement covers.
#[derive(serde::Deserialize)]
struct XksRegions {
    source: String,
    url: String,
    as_of: String,
    quote: String,
    unsupported: std::collections::BTreeMap<String, String>,
    supported: Vec<String>,
}

fn xks_regions() -> &'static XksRegions {
    static REGIONS: std::sync::OnceLock<XksRegions> = std::sync::OnceLock::new();
    REGIONS.get_or_init(|| {
        serde_json::from_str(include_str!("../../reference/xks-regions.json"))
            .expect("reference/xks-regions.json is valid (tests/it/checks.rs reads it)")
    })
}

async fn region(f: &Facts) -> Step<Outcome> {
    let r = req(f)?;
    let list = xks_regions();
    let evidence = [
        format!("{} ({})", list.source, list.as_of),
        format!("\"{}\"", list.quote),
        list.url.clone(),
    ];
    if r.region.is_empty() {
        return Ok(Outcome::skip("no Region given for the key store"));
    }
    if let Some(name) = list.unsupported.get(&r.region) {
        return Ok(Outcome::fail(format!(
            "{} ({name}) is one of the Regions where AWS's developer guide says external key stores are not supported: create the store in another Region (which exception CreateCustomKeyStore answers there is not documented)",
            r.region
        ))
        .evidence(evidence));
    }
    if list.supported.iter().any(|s| s == &r.region) {
        return Ok(Outcome::pass(format!(
            "{} offers external key stores: AWS's developer guide names every Region but eight, and not this one",
            r.region
        ))
        .evidence(evidence));
    }
    Ok(Outcome::error(format!(
        "could not check: {} is in neither list of cks-doctor's copy of AWS's statement ({}): it may be a Region that opened later, or not a Region; see the developer guide's current list",
        r.region, list.as_of
    ))
    .evidence(evidence))
}

async fn uri_endpoint(f: &Facts) -> Step<Outcome> {
    let r = req(f)?;
    match endpoint_problem(&r.uri_endpoint) {
        Some(p) => Ok(Outcome::fail(format!(
            "XksProxyUriEndpoint {:?} {p}",
            r.uri_endpoint
        ))),
        None => match crate::input::endpoint_fqdn_note(&r.uri_endpoint) {
            // The API takes it: not a ValidationException; the TLS and health checks say
            // whether KMS could use it.
            Some(note) => Ok(Outcome::warn(format!(
                "XksProxyUriEndpoint {:?} {note}: the API accepts it, but the proxy's \
                 certificate must name it and KMS must reach it (see the TLS and health checks)",
                r.uri_endpoint
            ))
            .exceptions(&[])
            .codes(&[])),
            None => Ok(Outcome::pass(format!(
                "{} is an https:// DNS name without port or path",
                r.uri_endpoint
            ))),
        },
    }
}

async fn uri_path(f: &Facts) -> Step<Outcome> {
    let r = req(f)?;
    if let Some(p) = path_problem(&r.uri_path) {
        return Ok(Outcome::fail(format!(
            "XksProxyUriPath {:?} {p}",
            r.uri_path
        )));
    }
    Ok(Outcome::pass(format!("{} has KMS's form", r.uri_path)))
}

async fn credential(f: &Facts) -> Step<Outcome> {
    let r = req(f)?;
    let Some(id) = &r.access_key_id else {
        return Ok(Outcome::fail(
            "no XksProxyAuthenticationCredential.AccessKeyId: CreateCustomKeyStore requires it (--access-key-id)",
        ));
    };
    if let Some(p) = crate::input::access_key_id_problem(id) {
        return Ok(Outcome::fail(p));
    }
    let Some(secret) = &r.secret else {
        return Ok(Outcome::manual(
            "no RawSecretAccessKey given (--secret-file, --secret-stdin or CKS_XKS_SECRET_ACCESS_KEY): its form (43–64 characters of a-z, A-Z, 0-9, /, +, =) was not checked, and no signed request can be sent",
        ));
    };
    let s = secret.expose_secret();
    let len = s.chars().count();
    if !(43..=64).contains(&len) {
        return Ok(Outcome::fail(if len < 43 {
            "RawSecretAccessKey is shorter than 43 characters, the API minimum"
        } else {
            "RawSecretAccessKey is longer than 64 characters, the API maximum"
        }));
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '+' | '='))
    {
        return Ok(Outcome::fail(
            "RawSecretAccessKey has characters outside a-z, A-Z, 0-9, /, + and =",
        ));
    }
    Ok(Outcome::pass(format!(
        "AccessKeyId {id} and the secret access key have KMS's form"
    )))
}

// ----- account (§6) -----

async fn uri_unused(f: &Facts) -> Step<Outcome> {
    let r = req(f)?;
    let stores = got(f.key_stores().await)?;
    let same: Vec<_> = stores
        .iter()
        .filter(|s| {
            s.xks_proxy_configuration.as_ref().is_some_and(|x| {
                x.uri_endpoint.as_deref().map(str::to_ascii_lowercase)
                    == Some(r.uri_endpoint.to_ascii_lowercase())
                    && x.uri_path.as_deref() == Some(r.uri_path.as_str())
            })
        })
        .collect();
    if same.is_empty() {
        return Ok(Outcome::pass(format!(
            "no external key store of this account and Region uses {}{}",
            r.uri_endpoint, r.uri_path
        )));
    }
    Ok(Outcome::fail(format!(
        "{}{} is already used by {}",
        r.uri_endpoint,
        r.uri_path,
        same.iter()
            .map(|s| s.custom_key_store_id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ))
    .evidence(same.iter().map(|s| super::account::describe_store(s))))
}

async fn endpoint_unused(f: &Facts) -> Step<Outcome> {
    let r = req(f)?;
    let stores = got(f.key_stores().await)?;
    let endpoint = r.uri_endpoint.to_ascii_lowercase();
    let clash: Vec<_> = stores
        .iter()
        .filter(|s| {
            s.xks_proxy_configuration.as_ref().is_some_and(|x| {
                x.uri_endpoint
                    .as_deref()
                    .map(str::to_ascii_lowercase)
                    .as_deref()
                    == Some(endpoint.as_str())
                    && (x.connectivity.as_deref() == Some("VPC_ENDPOINT_SERVICE")
                        || r.connectivity == "VPC_ENDPOINT_SERVICE")
            })
        })
        .collect();
    if clash.is_empty() {
        return Ok(Outcome::pass(format!(
            "no store with VPC endpoint service connectivity uses {endpoint}"
        )));
    }
    let why = if r.connectivity == super::vpce::VPC {
        "each store with VPC endpoint service connectivity needs its own endpoint (private DNS name)"
    } else {
        "it uses VPC endpoint service connectivity, and a public endpoint store cannot share its endpoint"
    };
    Ok(Outcome::fail(format!(
        "{endpoint} is already the endpoint of {}: {why}",
        clash
            .iter()
            .map(|s| s.custom_key_store_id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ))
    .evidence(clash.iter().map(|s| super::account::describe_store(s))))
}

// ----- the probe -----

/// The probe, or the outcome that ends a check which needs it.
async fn probe(f: &Facts) -> Step<&ProbeReport> {
    let r = req(f)?;
    match f.xks_probe().await {
        Some(p) => Ok(p),
        None if endpoint_problem(&r.uri_endpoint).is_some() => Err(Outcome::blocked(
            "xks.params.uri-endpoint",
            "the endpoint has no form KMS could connect to",
        )),
        None => Err(Outcome::error("could not check: the proxy was not probed")),
    }
}

fn connected(p: &ProbeReport) -> Step<()> {
    match (&p.resolved, &p.tcp) {
        (Err(_), _) => Err(Outcome::blocked(
            "xks.connection.dns",
            "the name does not resolve",
        )),
        (_, Some(Err(_))) | (_, None) => Err(Outcome::blocked(
            "xks.connection.tcp",
            "no TCP connection to port 443",
        )),
        _ => Ok(()),
    }
}

/// A proxy that demands a client certificate (mutual TLS, which the XKS specification says a
/// proxy SHOULD support): KMS presents one with CN cks.kms.<Region>.amazonaws.com, cks-doctor
/// has none, so whatever lies behind the demand is "could not check", never a finding.
fn no_mtls(p: &ProbeReport) -> Step<()> {
    if !p.requires_client_cert() {
        return Ok(());
    }
    let cas = p.client_cert_requested.clone().unwrap_or_default();
    let named = if cas.is_empty() {
        "naming no certificate authority".to_string()
    } else {
        format!("issued by {}", cas.join("; "))
    };
    let message = if p.client_cert_presented {
        format!(
            "could not check: the proxy requires mutual TLS and refused the client certificate given with --client-cert: it accepts certificates {named}; KMS presents one whose subject CN is cks.kms.<Region>.amazonaws.com"
        )
    } else {
        format!(
            "could not check: the proxy requires mutual TLS: it asked for a client certificate ({named}) and refused the connection without one (give one with --client-cert and --client-key to go further). KMS presents a certificate whose subject CN is cks.kms.<Region>.amazonaws.com, which cks-doctor does not have; the XKS specification says a proxy SHOULD support mutual TLS, so this is no finding, but what lies behind the handshake cannot be checked from here"
        )
    };
    Err(Outcome::error(message).evidence(
        cas.iter()
            .map(|c| format!("accepted client certificate issuer: {c}")),
    ))
}

fn session(p: &ProbeReport) -> Step<&TlsSession> {
    connected(p)?;
    match &p.tls {
        Some(Ok(s)) => Ok(s),
        Some(Err(_)) if p.requires_client_cert() => Err(no_mtls(p).unwrap_err()),
        Some(Err(f)) => match &f.permissive {
            Ok(s) => Ok(s),
            Err(_) => Err(Outcome::blocked("xks.tls.version", "no TLS session")),
        },
        None => Err(Outcome::blocked("xks.tls.version", "no TLS session")),
    }
}

/// The KMS-like session (the four suites): requests were only sent on it.
fn kms_session(p: &ProbeReport) -> Step<&TlsSession> {
    session(p)?;
    no_mtls(p)?;
    match &p.tls {
        Some(Ok(s)) => Ok(s),
        _ => Err(Outcome::blocked(
            "xks.tls.cipher-suite",
            "KMS could not complete the TLS handshake, so no request was sent",
        )),
    }
}

fn redirected(p: &ProbeReport) -> String {
    match p.connect_to {
        Some(a) => format!(" (--connect-to {a})"),
        None => String::new(),
    }
}

fn vpc_request(f: &Facts) -> bool {
    f.request
        .xks()
        .is_some_and(|r| r.connectivity == super::vpce::VPC)
}

/// A private proxy is usually unreachable from outside its VPC: that is no finding about it.
fn not_reachable_from_here(e: &str) -> Outcome {
    Outcome::error(format!(
        "could not check: not reachable from here ({e}). With VPC endpoint service connectivity the proxy is usually reachable only inside its VPC: run cks-doctor from there (or use --connect-to) to test it; at Connect, KMS would report XKS_PROXY_NOT_REACHABLE if it could not reach it either"
    ))
}

async fn dns(f: &Facts) -> Step<Outcome> {
    let p = probe(f).await?;
    if let Some(a) = p.connect_to {
        return Ok(Outcome::skip(format!(
            "not resolved: --connect-to sends the connection to {a}; KMS will resolve {} itself",
            p.host
        )));
    }
    match &p.resolved {
        Ok(addrs) => {
            let text = format!(
                "{} resolves to {}{}",
                p.host,
                addrs
                    .iter()
                    .map(|a| a.ip().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                p.timings
                    .dns_ms
                    .map(|m| format!(" ({m} ms)"))
                    .unwrap_or_default()
            );
            if vpc_request(f) {
                return Ok(Outcome::pass(text));
            }
            // KMS reaches a PUBLIC_ENDPOINT proxy over the internet: addresses the internet
            // does not route are no way in for it, even when this machine reaches them.
            let mut ips: Vec<std::net::IpAddr> = addrs.iter().map(|a| a.ip()).collect();
            ips.sort_unstable();
            ips.dedup();
            let private: Vec<String> = ips
                .iter()
                .filter_map(|ip| non_public(*ip).map(|why| format!("{ip}: {why}")))
                .collect();
            if private.is_empty() {
                Ok(Outcome::pass(text))
            } else if private.len() == ips.len() {
                Ok(Outcome::fail(format!(
                    "{text}, none of them a public internet address: with PUBLIC_ENDPOINT connectivity KMS reaches the proxy over the internet, so it cannot reach these, even if this machine can"
                ))
                .evidence(private)
                .fix(format!(
                    "Publish {} in public DNS with the proxy's public address (an internet-facing load balancer, for instance), or use VPC_ENDPOINT_SERVICE connectivity for a proxy that lives in a VPC. A split-horizon zone that answers private addresses inside your network is what this machine sees; KMS sees the public answer",
                    p.host
                )))
            } else {
                Ok(Outcome::warn(format!(
                    "{text}; some of them are not public internet addresses, which KMS, coming from the internet, cannot reach"
                ))
                .evidence(private)
                .exceptions(&[])
                .codes(&[]))
            }
        }
        Err(e) if vpc_request(f) => Ok(not_reachable_from_here(e)),
        Err(e) => Ok(Outcome::fail(format!(
            "{e} (from this machine; KMS uses public DNS)"
        ))),
    }
}

async fn tcp(f: &Facts) -> Step<Outcome> {
    let p = probe(f).await?;
    if p.resolved.is_err() {
        return Ok(Outcome::blocked(
            "xks.connection.dns",
            "the name does not resolve",
        ));
    }
    match &p.tcp {
        Some(Ok(a)) => Ok(Outcome::pass(format!(
            "TCP connection to {a}{}{}",
            redirected(p),
            p.timings
                .connect_ms
                .map(|m| format!(" in {m} ms"))
                .unwrap_or_default()
        ))),
        Some(Err(e)) if vpc_request(f) => {
            Ok(not_reachable_from_here(&format!("{e}{}", redirected(p))))
        }
        Some(Err(e)) => Ok(Outcome::fail(format!("{e}{}", redirected(p)))),
        None => Ok(Outcome::error(
            "could not check: no connection was attempted",
        )),
    }
}

async fn tls_version(f: &Facts) -> Step<Outcome> {
    let p = probe(f).await?;
    connected(p)?;
    if matches!(p.tls, Some(Err(_))) {
        no_mtls(p)?;
    }
    match &p.tls {
        Some(Ok(s)) => Ok(Outcome::pass(format!("{} negotiated", s.version)).evidence(
            p.client_cert_requested
                .as_ref()
                .filter(|_| !p.requires_client_cert())
                .map(|_| {
                    if p.client_cert_presented {
                        "the proxy asks for a client certificate (mutual TLS) and accepted the one given with --client-cert".to_string()
                    } else {
                        "the proxy asks for a client certificate (mutual TLS) and accepted this connection without one".to_string()
                    }
                }),
        )),
        Some(Err(fail)) => match &fail.permissive {
            Ok(s) => Ok(Outcome::pass(format!(
                "{} negotiated (with a wider choice of cipher suites than KMS offers; see xks.tls.cipher-suite)",
                s.version
            ))),
            Err(_) if fail.error.contains("no answer within") => Ok(Outcome::fail(format!(
                "the TLS handshake did not finish: {}",
                fail.error
            ))
            .codes(&[Code::XKS_PROXY_TIMED_OUT])
            .exceptions(&[UNREACHABLE])),
            Err(e) => Ok(Outcome::fail(format!(
                "no TLS 1.2 or 1.3 session with a suite rustls supports (AEAD suites with ECDHE): {} (with every such suite offered: {e})",
                fail.error
            ))),
        },
        None => Ok(Outcome::error("could not check: no TLS handshake was attempted")),
    }
}

async fn cipher_suite(f: &Facts) -> Step<Outcome> {
    let p = probe(f).await?;
    connected(p)?;
    if matches!(p.tls, Some(Err(_))) {
        no_mtls(p)?;
    }
    match &p.tls {
        Some(Ok(s)) => Ok(Outcome::pass(format!(
            "{} negotiated when offered only KMS's suites",
            s.cipher_suite
        ))),
        Some(Err(fail)) => match &fail.permissive {
            Ok(s) => Ok(Outcome::fail(format!(
                "the proxy accepts none of {}: offered every suite, it chose {} ({}); the handshake with KMS's suites failed: {}",
                KMS_SUITES.join(", "),
                s.cipher_suite,
                s.version,
                fail.error
            ))),
            Err(_) => Ok(Outcome::blocked("xks.tls.version", "no TLS session at all")),
        },
        None => Ok(Outcome::error("could not check: no TLS handshake was attempted")),
    }
}

/// The certificate report, or why there is none.
fn cert_report(f: &Facts, p: &ProbeReport) -> Step<trust::CertReport> {
    let s = session(p)?;
    let r = req(f)?;
    let extra: Vec<Vec<u8>> = r.trust_ca.iter().map(|c| c.der.clone()).collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    trust::evaluate(&s.chain_der, &p.host, now, &extra)
        .map_err(|e| Outcome::error(format!("could not check: {e}")))
}

fn leaf_line(c: &trust::CertReport) -> Vec<String> {
    c.chain
        .iter()
        .enumerate()
        .map(|(i, s)| {
            format!(
                "{}: subject {} | issuer {} | valid {} to {}",
                if i == 0 {
                    "leaf".to_string()
                } else {
                    format!("chain[{i}]")
                },
                s.subject,
                s.issuer,
                s.not_before,
                s.not_after
            )
        })
        .collect()
}

async fn certificate_validity(f: &Facts) -> Step<Outcome> {
    let p = probe(f).await?;
    let c = cert_report(f, p)?;
    let ev = leaf_line(&c);
    if c.expired {
        return Ok(Outcome::fail(format!(
            "the proxy's certificate expired {} day(s) ago",
            -c.days_to_expiry
        ))
        .evidence(ev));
    }
    if c.not_yet_valid {
        return Ok(Outcome::fail("the proxy's certificate is not valid yet").evidence(ev));
    }
    if c.days_to_expiry < trust::EXPIRY_WARNING_DAYS {
        return Ok(Outcome::warn(format!(
            "the proxy's certificate expires in {} day(s): renew it now (KMS publishes the days left as the XksProxyCertificateDaysToExpire metric; cks-doctor warns under {})",
            c.days_to_expiry,
            trust::EXPIRY_WARNING_DAYS
        ))
        .evidence(ev)
        .exceptions(&[])
        .codes(&[]));
    }
    Ok(Outcome::pass(format!(
        "the proxy's certificate is valid for {} more days",
        c.days_to_expiry
    ))
    .evidence(ev))
}

async fn certificate_name(f: &Facts) -> Step<Outcome> {
    let p = probe(f).await?;
    let c = cert_report(f, p)?;
    let host = &p.host;
    let list = |v: &[String]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    let mut evidence = vec![format!("subjectAltName DNS names: {}", list(&c.dns_names))];
    if !c.ip_addresses.is_empty() {
        evidence.push(format!(
            "subjectAltName IP addresses: {}",
            c.ip_addresses.join(", ")
        ));
    }
    evidence.push(format!("subject CN: {}", list(&c.common_names)));
    let cn = list(&c.common_names);
    // A certificate for another name than the private DNS name: AWS's documents name both
    // codes for a VPC store (metadata's mapping note); a public store gets the TLS code only.
    let codes: &[Code] = if req(f)?.is_vpc() {
        &[
            Code::XKS_PROXY_INVALID_TLS_CONFIGURATION,
            Code::XKS_VPC_ENDPOINT_SERVICE_INVALID_CONFIGURATION,
        ]
    } else {
        &[Code::XKS_PROXY_INVALID_TLS_CONFIGURATION]
    };
    // TLS clients, KMS's included, match the subjectAltName; AWS's guide speaks of the CN.
    let outcome = match (c.name_matches, c.cn_matches) {
        (true, true) => Outcome::pass(format!(
            "the certificate covers {host} (subjectAltName and subject CN)"
        )),
        (true, false) if c.common_names.is_empty() => Outcome::pass(format!(
            "the subjectAltName covers {host} (the certificate has no subject CN, which TLS clients do not need)"
        )),
        (true, false) => Outcome::warn(format!(
            "the subjectAltName covers {host}, which is what TLS clients check, but the subject CN ({cn}) does not: \
             AWS's guide asks for a CN matching the endpoint, and KMS is not documented to accept or refuse this; \
             a certificate whose CN is {host} removes the doubt"
        ))
        .exceptions(&[])
        .codes(&[]),
        (false, true) => Outcome::fail(format!(
            "the subject CN names {host} but the subjectAltName does not: TLS clients match only the \
             subjectAltName, so the name check fails; add {host} to the subjectAltName"
        )),
        (false, false) => Outcome::fail(format!(
            "neither the subjectAltName nor the subject CN covers {host}"
        )),
    };
    Ok(match outcome.status {
        crate::results::Status::Fail | crate::results::Status::Pass => outcome.codes(codes),
        _ => outcome,
    }
    .evidence(evidence))
}

async fn certificate_trust(f: &Facts) -> Step<Outcome> {
    let p = probe(f).await?;
    let c = cert_report(f, p)?;
    let ev = leaf_line(&c);
    Ok(match &c.trust {
        Trust::KmsTrusted { root_alias, root_subject, .. } => Outcome::pass(format!(
            "the chain ends at {root_subject} ({root_alias}), which is on KMS's list of trusted CAs"
        )),
        Trust::ExtraCa { subject } => Outcome::warn(format!(
            "the chain is trusted only through --trust-ca ({subject}): fine for this lab test, but KMS itself will not trust it and would fail with XKS_PROXY_INVALID_TLS_CONFIGURATION"
        ))
        .exceptions(&[])
        .codes(&[]),
        Trust::BrowserOnly { root_subject } => Outcome::fail(format!(
            "the chain is fine for a browser (it ends at {root_subject}, a Mozilla root) but that root is not on KMS's list of trusted CAs: KMS will reject it"
        )),
        Trust::MissingIntermediate { issuer } => Outcome::fail(format!(
            "the chain is incomplete: the proxy does not send the intermediate certificate {issuer}; serve the full chain (leaf first, then intermediates)"
        )),
        Trust::SelfSigned { subject } => Outcome::fail(format!(
            "the certificate is self-signed ({subject}): KMS needs one issued by a CA on its list"
        )),
        Trust::Untrusted { reason } => Outcome::fail(format!("the chain is not trusted: {reason}")),
        Trust::KmsRootNotBundled { root_alias } => Outcome::error(format!(
            "could not check: the chain ends at {root_alias}, on KMS's list but not bundled with cks-doctor, so the signature cannot be verified offline ({})",
            trust::offline_coverage_note()
        )),
    }
    .evidence(ev))
}

// ----- GetHealthStatus -----

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ErrorBody {
    error_name: String,
    #[serde(default)]
    error_message: Option<String>,
}

/// The error shape of §4, if the body has it.
fn error_name(ex: &Exchange) -> Option<(String, Option<String>)> {
    let e: ErrorBody = serde_json::from_slice(&ex.body).ok()?;
    Some((e.error_name, e.error_message))
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthBody {
    pub xks_proxy_fleet_size: i64,
    pub xks_proxy_vendor: String,
    pub xks_proxy_model: String,
    pub ekm_vendor: String,
    pub ekm_fleet_details: Vec<FleetEntry>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetEntry {
    pub id: String,
    pub model: String,
    pub health_status: String,
}

/// Validates a 200 body against the GetHealthStatus response schema.
pub fn parse_health(body: &[u8]) -> Result<HealthBody, String> {
    let h: HealthBody = serde_json::from_slice(body)
        .map_err(|e| format!("not the GetHealthStatus response shape: {e}"))?;
    if h.xks_proxy_fleet_size < 1 {
        return Err(format!(
            "xksProxyFleetSize is {}; it must be at least 1",
            h.xks_proxy_fleet_size
        ));
    }
    if !(1..=10).contains(&h.ekm_fleet_details.len()) {
        return Err(format!(
            "ekmFleetDetails has {} entries; it must have 1 to 10",
            h.ekm_fleet_details.len()
        ));
    }
    if let Some(bad) = h.ekm_fleet_details.iter().find(|e| {
        !matches!(
            e.health_status.as_str(),
            "ACTIVE" | "DEGRADED" | "UNAVAILABLE"
        )
    }) {
        return Err(format!(
            "ekmFleetDetails entry {:?} has healthStatus {:?}; it must be ACTIVE, DEGRADED or UNAVAILABLE",
            bad.id, bad.health_status
        ));
    }
    Ok(h)
}

fn health_exchange(f: &Facts, p: &ProbeReport) -> Step<Result<Exchange, String>> {
    kms_session(p)?;
    let r = req(f)?;
    if r.access_key_id.is_none() || r.secret.is_none() {
        return Err(Outcome::error(
            "could not check: GetHealthStatus needs a SigV4 signature, and no access key id and secret were given",
        ));
    }
    match &p.health {
        Some(h) => Ok(h.clone()),
        None => Err(Outcome::error(
            "could not check: GetHealthStatus was not sent",
        )),
    }
}

fn snippet(ex: &Exchange) -> String {
    let t: String = ex.body_text().chars().take(160).collect();
    format!(
        "HTTP {} ({}): {}",
        ex.status,
        ex.content_type.as_deref().unwrap_or("no content type"),
        t.split_whitespace().collect::<Vec<_>>().join(" ")
    )
}

/// Classifies a GetHealthStatus answer as §4's table does.
pub fn classify_health(ex: &Exchange) -> Outcome {
    let ev = [snippet(ex)];
    if ex.body_truncated {
        return Outcome::fail("the response body is larger than 1 MiB")
            .exceptions(&[INVALID_RESPONSE])
            .codes(&[Code::XKS_PROXY_INVALID_RESPONSE])
            .evidence(ev);
    }
    if ex.status == 200 {
        return match parse_health(&ex.body) {
            Ok(h) => Outcome::pass(format!(
                "200 from {} {} (EKM {}), fleet size {}",
                h.xks_proxy_vendor, h.xks_proxy_model, h.ekm_vendor, h.xks_proxy_fleet_size
            )),
            Err(e) => Outcome::fail(format!("200, but {e}"))
                .exceptions(&[INVALID_RESPONSE])
                .codes(&[Code::XKS_PROXY_INVALID_RESPONSE])
                .evidence(ev),
        };
    }
    let Some((name, message)) = error_name(ex) else {
        return Outcome::fail(format!(
            "HTTP {} without the XKS error shape ({{\"errorName\": ...}}): a web server's own page, not the proxy's API?",
            ex.status
        ))
        .exceptions(&[INVALID_RESPONSE])
        .codes(&[Code::XKS_PROXY_INVALID_RESPONSE])
        .evidence(ev);
    };
    let said = match &message {
        Some(m) => format!("{} {name}: {m}", ex.status),
        None => format!("{} {name}", ex.status),
    };
    let o = |text: String, exc: &[Code], codes: &[Code]| {
        Outcome::fail(text)
            .exceptions(exc)
            .codes(codes)
            .evidence(ev.clone())
    };
    match (ex.status, name.as_str()) {
        (401, "AuthenticationFailedException") => o(
            format!("{said}: the proxy rejects the credential (wrong access key id or secret, a proxy set up for another Region, or clocks more than 5 minutes apart: see xks.clock.skew)"),
            &[BAD_CREDENTIAL],
            &[Code::INVALID_CREDENTIALS],
        ),
        (403, "AccessDeniedException") => o(
            format!("{said}: the proxy's authorization policy denies GetHealthStatus, which the XKS specification says must be exempt from it (KMS documents no Create exception for this)"),
            &[],
            &[Code::XKS_PROXY_ACCESS_DENIED],
        ),
        (404, "InvalidUriPathException") => o(
            format!("{said}: the proxy does not serve this XksProxyUriPath (wrong prefix or version?)"),
            &[INVALID_CONFIG],
            &[Code::XKS_PROXY_INVALID_CONFIGURATION],
        ),
        (503, "DependencyTimeoutException") => o(
            format!("{said}: the proxy could not reach its external key manager in time (XKS_PROXY_TIMED_OUT is inferred: the specification maps this answer to XksProxyUriUnreachableException and no AWS document names its ConnectionErrorCode)"),
            &[UNREACHABLE],
            &[Code::XKS_PROXY_TIMED_OUT],
        ),
        (429, "ThrottlingException") => o(
            format!("{said}: the proxy throttles KMS (no ConnectionErrorCode is documented for this)"),
            &[UNREACHABLE],
            &[],
        ),
        (500, "InternalException") | (400, "ValidationException") => o(
            format!("{said}: a valid GetHealthStatus request should not get this (XKS_PROXY_INVALID_RESPONSE is inferred)"),
            &[INVALID_RESPONSE],
            &[Code::XKS_PROXY_INVALID_RESPONSE],
        ),
        (400, "InvalidStateException") | (501, "UnsupportedOperationException") => o(
            format!("{said}: a valid GetHealthStatus request should not get this (mapping inferred)"),
            &[INVALID_RESPONSE],
            &[Code::XKS_PROXY_INVALID_RESPONSE],
        ),
        _ => o(
            format!("{said}: not an answer the XKS specification defines for GetHealthStatus"),
            &[INVALID_RESPONSE],
            &[Code::XKS_PROXY_INVALID_RESPONSE],
        ),
    }
}

fn is_timeout(e: &str) -> bool {
    e.contains("within")
}

async fn health_response(f: &Facts) -> Step<Outcome> {
    let p = probe(f).await?;
    match health_exchange(f, p)? {
        Ok(ex) => Ok(classify_health(&ex)),
        Err(e) if is_timeout(&e) => Ok(Outcome::fail(format!("GetHealthStatus: {e}"))
            .exceptions(&[UNREACHABLE])
            .codes(&[Code::XKS_PROXY_TIMED_OUT])),
        Err(e) => Ok(Outcome::fail(format!("GetHealthStatus: {e}"))
            .exceptions(&[UNREACHABLE])
            .codes(&[Code::XKS_PROXY_NOT_REACHABLE])),
    }
}

async fn health_fleet(f: &Facts) -> Step<Outcome> {
    let p = probe(f).await?;
    let ex = match health_exchange(f, p)? {
        Ok(ex) => ex,
        Err(_) => return Ok(Outcome::blocked("xks.health.response", "no answer")),
    };
    let h = match (ex.status, parse_health(&ex.body)) {
        (200, Ok(h)) => h,
        _ => {
            return Ok(Outcome::blocked(
                "xks.health.response",
                "no valid GetHealthStatus answer",
            ))
        }
    };
    let lines: Vec<String> = h
        .ekm_fleet_details
        .iter()
        .map(|e| format!("{} ({}): {}", e.id, e.model, e.health_status))
        .collect();
    let count = |s: &str| {
        h.ekm_fleet_details
            .iter()
            .filter(|e| e.health_status == s)
            .count()
    };
    let (unavailable, degraded) = (count("UNAVAILABLE"), count("DEGRADED"));
    let n = h.ekm_fleet_details.len();
    if unavailable == n {
        return Ok(
            Outcome::fail(format!("every external key manager ({n}) is UNAVAILABLE"))
                .evidence(lines),
        );
    }
    if degraded > 0 || unavailable > 0 {
        return Ok(Outcome::warn(format!(
            "{degraded} DEGRADED and {unavailable} UNAVAILABLE of {n} external key managers"
        ))
        .evidence(lines)
        .exceptions(&[])
        .codes(&[]));
    }
    Ok(Outcome::pass(format!("all {n} external key managers are ACTIVE")).evidence(lines))
}

// ----- latency and clock -----

fn fmt_ms(v: Option<f64>) -> String {
    v.map(|m| format!("{m} ms")).unwrap_or_else(|| "–".into())
}

/// The phases of the fresh connection as one line each.
pub fn phase_lines(p: &ProbeReport) -> Vec<String> {
    let t = &p.timings;
    vec![
        format!(
            "DNS {}",
            if p.connect_to.is_some() {
                "not used (--connect-to)".into()
            } else {
                fmt_ms(t.dns_ms)
            }
        ),
        format!("TCP connect {}", fmt_ms(t.connect_ms)),
        format!("TLS handshake {}", fmt_ms(t.tls_ms)),
        format!("request to first byte {}", fmt_ms(t.first_byte_ms)),
        format!(
            "request to last byte {} of KMS's {KMS_BUDGET_MS} ms budget",
            fmt_ms(t.request_ms)
        ),
        format!("total with connection set-up {}", fmt_ms(t.total_ms)),
    ]
}

async fn latency_budget(f: &Facts) -> Step<Outcome> {
    let p = probe(f).await?;
    session(p)?;
    no_mtls(p)?;
    if !matches!(p.tls, Some(Ok(_))) {
        return Ok(Outcome::blocked(
            "xks.tls.cipher-suite",
            "KMS could not complete the handshake",
        ));
    }
    let t = &p.timings;
    let Some(total) = t.total_ms else {
        return Ok(Outcome::error(
            "could not check: no request completed on the fresh connection, so its round trip is unknown",
        )
        .evidence(phase_lines(p)));
    };
    let whence = "measured from this machine, not from KMS in the key store's Region";
    // KMS gives up when it "does not receive a response within 250 ms" of sending a request;
    // AWS does not say that connection set-up counts (KMS keeps connections open). The
    // request's time is one network round trip (about the TCP connect time) plus the proxy's
    // own: the proxy's own share is what KMS meets from anywhere, the round trip only from here.
    let request = t.request_ms.unwrap_or(total);
    let rtt = t.connect_ms.unwrap_or(0.0);
    let server = (request - rtt).max(0.0);
    if server > KMS_BUDGET_MS {
        return Ok(Outcome::fail(format!(
            "the proxy took {server:.1} ms to answer beyond the network round trip ({request} ms for the request, TCP round trip {rtt} ms): KMS gives up {KMS_BUDGET_MS} ms after sending a request, and this time is the proxy's own, wherever it is measured from"
        ))
        .evidence(phase_lines(p)));
    }
    if request > KMS_BUDGET_MS {
        return Ok(Outcome::warn(format!(
            "the request took {request} ms, over KMS's {KMS_BUDGET_MS} ms, in the network round trip ({rtt} ms to connect) more than in the proxy ({whence}): from KMS in the key store's Region the round trip may be shorter; measure from there"
        ))
        .evidence(phase_lines(p)));
    }
    if total > KMS_BUDGET_MS {
        return Ok(Outcome::warn(format!(
            "the request took {request} ms, within KMS's {KMS_BUDGET_MS} ms, but with connection set-up (TCP {}, TLS {}) it took {total} ms: AWS does not say whether set-up counts against the budget (KMS keeps its connections open) ({whence})",
            fmt_ms(t.connect_ms),
            fmt_ms(t.tls_ms)
        ))
        .evidence(phase_lines(p)));
    }
    if let Some(c) = t.connect_ms.filter(|c| *c > RECOMMENDED_RTT_MS) {
        return Ok(Outcome::warn(format!(
            "{total} ms in all, within the {KMS_BUDGET_MS} ms budget, but the TCP round trip is {c} ms, above the {RECOMMENDED_RTT_MS} ms the XKS specification recommends ({whence})"
        ))
        .evidence(phase_lines(p))
        .exceptions(&[])
        .codes(&[]));
    }
    Ok(Outcome::pass(format!(
        "{request} ms for the request, {total} ms with a fresh connection, within KMS's {KMS_BUDGET_MS} ms ({whence})"
    ))
    .evidence(phase_lines(p)))
}

/// The first answer that carries a Date header.
fn dated(p: &ProbeReport) -> Option<&Exchange> {
    p.health
        .iter()
        .filter_map(|h| h.as_ref().ok())
        .chain(p.refusals.iter().filter_map(|r| r.result.as_ref().ok()))
        .find(|e| e.date.is_some())
}

async fn clock_skew(f: &Facts) -> Step<Outcome> {
    let p = probe(f).await?;
    kms_session(p)?;
    let Some(ex) = dated(p) else {
        return Ok(Outcome::skip(
            "the proxy sent no Date header to compare clocks with",
        ));
    };
    let date = ex.date.as_deref().unwrap_or_default();
    let Ok(t) = httpdate::parse_http_date(date) else {
        return Ok(Outcome::warn(format!(
            "the proxy's Date header {date:?} is not an HTTP date"
        ))
        .exceptions(&[])
        .codes(&[]));
    };
    let proxy = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let skew = proxy - ex.received_unix;
    if skew.abs() > 300 {
        return Ok(Outcome::warn(format!(
            "the proxy's clock is {}s {} this machine's: proxies reject requests more than 5 minutes off, so if this machine's clock is right, KMS's requests will fail authentication",
            skew.abs(),
            if skew > 0 { "ahead of" } else { "behind" }
        ))
        .evidence([format!("Date: {date}")]));
    }
    Ok(Outcome::pass(format!(
        "the proxy's clock is within {}s of this machine's",
        skew.abs().max(1)
    )))
}

// ----- what the proxy must refuse -----

fn refusal(p: &ProbeReport, kind: RefusalKind) -> Option<&Result<Exchange, String>> {
    p.refusals
        .iter()
        .find(|r| r.kind == kind)
        .map(|r| &r.result)
}

/// A request that must be refused with `want`: PASS on it, FAIL (security) on a 200 when
/// `security`, WARN otherwise.
fn judge_refusal(
    p: &ProbeReport,
    kind: RefusalKind,
    want: u16,
    what: &str,
    security: bool,
) -> Step<Outcome> {
    kms_session(p)?;
    let Some(result) = refusal(p, kind) else {
        let needs = match kind {
            RefusalKind::Unsigned => "it was not sent",
            RefusalKind::WrongSecret => "it needs the access key id",
            _ => "it is signed, so it needs the access key id and secret",
        };
        return Ok(Outcome::error(format!("could not check: {what}: {needs}")));
    };
    let ex = match result {
        Ok(ex) => ex,
        Err(e) => return Ok(Outcome::error(format!("could not check: {what}: {e}"))),
    };
    let got = match error_name(ex) {
        Some((n, _)) => format!("{} {n}", ex.status),
        None => format!("{}", ex.status),
    };
    if ex.status == want {
        return Ok(Outcome::pass(format!("{what} gets {got}")));
    }
    if security && (200..300).contains(&ex.status) {
        return Ok(Outcome::fail(format!(
            "{what} gets {got}: the proxy answers without valid authentication (a security finding; KMS itself never reports it)"
        ))
        .evidence([snippet(ex)]));
    }
    Ok(Outcome::warn(format!(
        "{what} gets {got}; the XKS specification says {want}"
    ))
    .evidence([snippet(ex)]))
}

async fn rejects_unsigned(f: &Facts) -> Step<Outcome> {
    let p = probe(f).await?;
    judge_refusal(
        p,
        RefusalKind::Unsigned,
        401,
        "an unsigned GetHealthStatus",
        true,
    )
}

async fn rejects_wrong_secret(f: &Facts) -> Step<Outcome> {
    let p = probe(f).await?;
    judge_refusal(
        p,
        RefusalKind::WrongSecret,
        401,
        "a GetHealthStatus signed with a wrong secret",
        true,
    )
}

async fn spec_unknown_path(f: &Facts) -> Step<Outcome> {
    let p = probe(f).await?;
    judge_refusal(
        p,
        RefusalKind::UnknownPath,
        404,
        "a signed POST to an unknown path",
        false,
    )
}

async fn spec_get(f: &Facts) -> Step<Outcome> {
    let p = probe(f).await?;
    judge_refusal(
        p,
        RefusalKind::Get,
        405,
        "a signed GET on the health URI",
        false,
    )
}

async fn spec_empty_body(f: &Facts) -> Step<Outcome> {
    let p = probe(f).await?;
    judge_refusal(
        p,
        RefusalKind::EmptyBody,
        400,
        "a signed GetHealthStatus with an empty body",
        false,
    )
}
