//! The `kmsuser` crypto user KMS logs in as (requirements §3, last rows). No AWS API shows
//! HSM users: with `--cloudhsm-users` (the JSON of `cloudhsm-cli user list`) these checks
//! decide; without it they say exactly what to verify by hand (MANUAL, never PASS).

use super::{register, Outcome, Step};
use crate::facts::model::CloudHsmUser;
use crate::facts::Facts;

register! {
    "cloudhsm.kmsuser.exists" => exists,
    "cloudhsm.kmsuser.unlocked" => unlocked,
    "cloudhsm.kmsuser.no-mfa" => no_mfa,
    "cloudhsm.kmsuser.login" => login,
}

const LIST: &str = "cloudhsm-cli user list";

enum Found<'a> {
    NoFile,
    Missing(Vec<String>),
    User(&'a CloudHsmUser),
}

fn kmsuser(f: &Facts) -> Found<'_> {
    let Some(list) = f.request.cloudhsm().and_then(|r| r.users.as_ref()) else {
        return Found::NoFile;
    };
    match list.users.iter().find(|u| u.username == "kmsuser") {
        Some(u) => Found::User(u),
        None => Found::Missing(
            list.users
                .iter()
                .map(|u| format!("{} ({})", u.username, u.role))
                .collect(),
        ),
    }
}

fn describe(u: &CloudHsmUser) -> String {
    format!(
        "kmsuser: role {}, locked {}, mfa {}{}",
        u.role,
        u.locked,
        if u.mfa.is_empty() {
            "none"
        } else {
            "configured"
        },
        u.cluster_coverage
            .as_deref()
            .map(|c| format!(", cluster-coverage {c}"))
            .unwrap_or_default()
    )
}

/// For the checks that need kmsuser to exist first.
fn need_user<'a>(f: &'a Facts, what: &str) -> Step<&'a CloudHsmUser> {
    match kmsuser(f) {
        Found::User(u) => Ok(u),
        Found::Missing(_) => Err(Outcome::blocked("cloudhsm.kmsuser.exists", "there is no kmsuser")),
        Found::NoFile => Err(Outcome::manual(format!(
            "no --cloudhsm-users file: run `{LIST}` on a host with the CloudHSM client and check that kmsuser {what}, or pass its JSON output with --cloudhsm-users"
        ))),
    }
}

async fn exists(f: &Facts) -> Step<Outcome> {
    match kmsuser(f) {
        Found::NoFile => Ok(Outcome::manual(format!(
            "no --cloudhsm-users file: run `{LIST}` and check that a user named kmsuser exists with role crypto-user (create it with `cloudhsm-cli user create --username kmsuser --role crypto-user`), or pass the JSON output with --cloudhsm-users"
        ))),
        Found::Missing(others) => Ok(Outcome::fail("the cluster has no user named kmsuser")
            .evidence(others)
            .fix("Create it: cloudhsm-cli user create --username kmsuser --role crypto-user, with the password you give KMS as KeyStorePassword")),
        Found::User(u) if u.role != "crypto-user" => Ok(Outcome::fail(format!(
            "kmsuser exists but has role {}, not crypto-user",
            u.role
        ))
        .evidence([describe(u)])
        .fix("Delete it and create kmsuser again with role crypto-user (cloudhsm-cli user delete / user create --role crypto-user)")),
        Found::User(u) if u.cluster_coverage.as_deref().is_some_and(|c| c != "full") => Ok(Outcome::warn(format!(
            "kmsuser exists with role crypto-user, but its cluster-coverage is {}: it is missing on some HSMs, so KMS may not find it on every one",
            u.cluster_coverage.as_deref().unwrap_or_default()
        ))
        .evidence([describe(u)])
        .codes(&[])
        .fix("Synchronize the user across the cluster's HSMs (see the CloudHSM guide on user synchronization), or delete and create kmsuser again while every HSM is ACTIVE")),
        Found::User(u) => Ok(Outcome::pass("kmsuser exists with role crypto-user").evidence([describe(u)])),
    }
}

async fn unlocked(f: &Facts) -> Step<Outcome> {
    let u = need_user(f, "is not locked (locked: false)")?;
    if u.locked {
        return Ok(
            Outcome::fail("kmsuser is locked out (too many failed logins)").evidence([describe(u)]),
        );
    }
    Ok(Outcome::pass("kmsuser is not locked").evidence([describe(u)]))
}

async fn no_mfa(f: &Facts) -> Step<Outcome> {
    let u = need_user(f, "has no MFA configured (mfa: [])")?;
    if !u.mfa.is_empty() {
        return Ok(Outcome::fail(
            "kmsuser has MFA configured: KMS logs in with the password alone, so it cannot log in (KMS does not document which ConnectionErrorCode this gives)",
        )
        .evidence([describe(u)]));
    }
    Ok(Outcome::pass("kmsuser has no MFA configured").evidence([describe(u)]))
}

/// Whether kmsuser is logged in, and whether KMS has its current password, is visible to no
/// API and to no `cloudhsm-cli` listing: always a job for a human.
async fn login(f: &Facts) -> Step<Outcome> {
    let pw = match f.request.cloudhsm().and_then(|r| r.password.as_ref()) {
        Some(_) => "the KeyStorePassword you give KMS",
        None => "the KeyStorePassword you will give KMS",
    };
    Ok(Outcome::manual(format!(
        "check by hand that kmsuser is not logged in to the cluster (log it out of every cloudhsm-cli or PKCS#11 session: KMS cannot log in while it is) and that {pw} is kmsuser's current password (a wrong one gives INVALID_CREDENTIALS at connect time)"
    )))
}
