//! Request parameters (requirements §2): the rules CreateCustomKeyStore enforces before it
//! looks at anything else. Violations come back as ValidationException.

use super::{register, Outcome, Step};
use crate::codes::Code;
use crate::facts::Facts;
use secrecy::ExposeSecret;

register! {
    "params.name" => name,
    "params.password" => password,
    "params.trust-anchor-length" => trust_anchor_length,
}

async fn name(f: &Facts) -> Step<Outcome> {
    let Some(name) = f.request.name() else {
        return Ok(Outcome::skip(
            "no key store name given (--name or CustomKeyStoreName): the name rules were not checked",
        ));
    };
    let n = name.chars().count();
    if !(1..=256).contains(&n) {
        return Ok(Outcome::fail(format!(
            "CustomKeyStoreName is {n} characters; KMS accepts 1 to 256"
        ))
        .exceptions(&[Code::ValidationException]));
    }
    if name.chars().any(char::is_control) {
        return Ok(Outcome::warn(
            "CustomKeyStoreName contains control characters; it is shown in the console and CloudTrail logs",
        )
        .exceptions(&[]));
    }
    Ok(Outcome::pass(format!(
        "{name:?} is {n} characters (1–256); it appears in CloudTrail logs, so it must hold nothing secret"
    )))
}

/// The password is judged only on its form; nothing about it but its rule is ever printed.
async fn password(f: &Facts) -> Step<Outcome> {
    let Some(req) = f.request.cloudhsm() else {
        return Ok(Outcome::skip("not a CloudHSM key store request"));
    };
    let Some(secret) = &req.password else {
        return Ok(Outcome::manual(
            "no kmsuser password given (--password-file, --password-stdin or CKS_KEY_STORE_PASSWORD): check by hand that it is 7–32 characters, letters and digits only, and is the current password of the kmsuser crypto user",
        ));
    };
    let p = secret.expose_secret();
    let n = p.chars().count();
    if n < 7 {
        return Ok(
            Outcome::fail("KeyStorePassword is shorter than 7 characters, the API minimum")
                .exceptions(&[Code::ValidationException]),
        );
    }
    if n > 32 {
        return Ok(
            Outcome::fail("KeyStorePassword is longer than 32 characters, the API maximum")
                .exceptions(&[Code::ValidationException]),
        );
    }
    let alnum = p.chars().all(|c| c.is_ascii_alphanumeric());
    if !alnum || n < 8 {
        let why = match (alnum, n < 8) {
            (false, true) => {
                "has characters other than letters and digits, and is shorter than 8 characters"
            }
            (false, false) => "has characters other than letters and digits",
            _ => "is shorter than 8 characters",
        };
        return Ok(Outcome::warn(format!(
            "KeyStorePassword {why}: the API accepts it, but the KMS guide asks for letters and digits only and current CloudHSM rules need 8–32 characters, so kmsuser may not be able to have this password"
        ))
        .exceptions(&[]));
    }
    Ok(Outcome::pass(
        "KeyStorePassword has an accepted form (8–32 letters and digits); whether it is kmsuser's current password can only be seen at connect time",
    ))
}

async fn trust_anchor_length(f: &Facts) -> Step<Outcome> {
    let Some(req) = f.request.cloudhsm() else {
        return Ok(Outcome::skip("not a CloudHSM key store request"));
    };
    let n = req.trust_anchor.text.chars().count();
    if !(1..=5000).contains(&n) {
        return Ok(Outcome::fail(format!(
            "TrustAnchorCertificate ({}) is {n} characters; KMS accepts 1 to 5000",
            req.trust_anchor.origin
        ))
        .exceptions(&[Code::ValidationException]));
    }
    Ok(Outcome::pass(format!(
        "TrustAnchorCertificate is {n} characters (1–5000)"
    )))
}
