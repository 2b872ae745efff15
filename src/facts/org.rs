//! An organisation's accounts, and a role assumed in each of them (`scan --organization`).
//!
//! The accounts are read with organizations:ListAccounts (every page) from the caller's own
//! account, which must be the organisation's management account or a delegated administrator.
//! In each account a role is assumed with sts:AssumeRole through the SDK's own
//! [`AssumeRoleProvider`], authorised by the caller's credentials, with a session name that
//! names cks-doctor. The role's credentials are kept for the run ([`RunCredentials`]): every
//! Region of an account is read with one AssumeRole, and a new one is made only when the
//! credentials are about to expire.

use super::live::{classify, root_causes, LiveSource};
use super::{Fact, FactError};
use aws_config::sts::AssumeRoleProvider;
use aws_credential_types::provider::{self, future, ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use std::time::{Duration, SystemTime};

/// The session name of every role cks-doctor assumes (CloudTrail shows it in the member
/// account as the role session's name).
pub const SESSION_NAME: &str = "cks-doctor-scan";

/// Credentials this close to expiry are renewed before use.
const RENEW_BEFORE: Duration = Duration::from_secs(5 * 60);

/// One account of the organisation, as ListAccounts lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgAccount {
    pub id: String,
    pub name: Option<String>,
    /// The account's ARN (`arn:<partition>:organizations::<management>:account/o-.../<id>`).
    pub arn: Option<String>,
    /// `State` (ACTIVE, SUSPENDED, PENDING_CLOSURE, CLOSED, ...), or the deprecated `Status`
    /// when an older endpoint sends only that.
    pub state: String,
}

impl OrgAccount {
    /// Whether the account is ACTIVE (the only accounts a scan assumes a role in).
    pub fn is_active(&self) -> bool {
        self.state == "ACTIVE"
    }

    /// The partition of the account's ARN (`aws` when the ARN is missing).
    pub fn partition(&self) -> &str {
        self.arn
            .as_deref()
            .and_then(|a| a.split(':').nth(1))
            .filter(|p| !p.is_empty())
            .unwrap_or("aws")
    }
}

/// Every account of the caller's organisation (all pages, every state).
pub async fn list_accounts(live: &LiveSource) -> Fact<Vec<OrgAccount>> {
    const ACTION: &str = "organizations:ListAccounts";
    let client = aws_sdk_organizations::Client::new(live.sdk_config());
    let mut pages = client.list_accounts().into_paginator().send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| classify(ACTION, live.timeout(), e))?;
        for a in page.accounts() {
            let Some(id) = a.id() else { continue };
            #[allow(deprecated)]
            let state = a
                .state()
                .map(|s| s.as_str().to_string())
                .or_else(|| a.status().map(|s| s.as_str().to_string()))
                .unwrap_or_default();
            out.push(OrgAccount {
                id: id.to_string(),
                name: a.name().map(str::to_string),
                arn: a.arn().map(str::to_string),
                state,
            });
        }
    }
    Ok(out)
}

/// A role assumed in one account: its credentials, kept for the run.
#[derive(Debug, Clone)]
pub struct AssumedRole {
    pub account: String,
    pub role_arn: String,
    pub credentials: SharedCredentialsProvider,
}

/// `arn:<partition>:iam::<account>:role/<name>` (a name may carry a path: `ops/cks-doctor`).
pub fn role_arn(partition: &str, account: &str, role_name: &str) -> String {
    let name = role_name.trim_start_matches('/');
    format!("arn:{partition}:iam::{account}:role/{name}")
}

/// Assumes `role_arn` with the credentials of `live` (the caller's), and makes the first
/// AssumeRole call now, so that a role that cannot be assumed is known before any of the
/// account's Regions is read.
pub async fn assume_role(
    live: &LiveSource,
    account: &str,
    role_arn: &str,
    external_id: Option<&str>,
) -> Fact<AssumedRole> {
    let mut builder = AssumeRoleProvider::builder(role_arn)
        .configure(live.sdk_config())
        .session_name(SESSION_NAME);
    if let Some(id) = external_id {
        builder = builder.external_id(id);
    }
    let cached = RunCredentials {
        inner: builder.build().await,
        cached: tokio::sync::Mutex::new(None),
    };
    let budget = live.timeout();
    match tokio::time::timeout(budget, cached.provide_credentials()).await {
        Err(_) => Err(FactError::TimedOut {
            action: "sts:AssumeRole".into(),
            seconds: budget.as_secs_f64(),
        }),
        Ok(Err(e)) => Err(assume_role_error(role_arn, &e)),
        Ok(Ok(_)) => Ok(AssumedRole {
            account: account.to_string(),
            role_arn: role_arn.to_string(),
            credentials: SharedCredentialsProvider::new(cached),
        }),
    }
}

/// Why a role could not be assumed, as a fact error: STS's own error (code and message) when
/// the provider's error carries it, classified as every other AWS call's.
fn assume_role_error(role_arn: &str, e: &provider::error::CredentialsError) -> FactError {
    use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
    use aws_sdk_sts::operation::assume_role::AssumeRoleError;
    let action = "sts:AssumeRole".to_string();
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(sdk) = c.downcast_ref::<SdkError<AssumeRoleError>>() {
            if let SdkError::ServiceError(_) = sdk {
                let code = sdk.code().unwrap_or("error");
                let detail = format!("{role_arn}: {code}: {}", sdk.message().unwrap_or_default());
                return match code {
                    "AccessDenied" | "AccessDeniedException" | "InvalidClientTokenId" => {
                        FactError::AccessDenied { action, detail }
                    }
                    "Throttling" | "ThrottlingException" => FactError::Throttled { action, detail },
                    _ => FactError::Service { action, detail },
                };
            }
            let detail = format!("{role_arn}: {}", root_causes(sdk));
            return match sdk {
                SdkError::TimeoutError(_) => FactError::Unreachable { action, detail },
                SdkError::DispatchFailure(_) => FactError::Unreachable { action, detail },
                _ => FactError::Service { action, detail },
            };
        }
        cause = c.source();
    }
    FactError::Service {
        action,
        detail: format!("{role_arn}: {}", root_causes(e)),
    }
}

/// An assumed role's credentials, fetched once and kept until they are about to expire; callers
/// that ask while the first AssumeRole is in flight wait for it instead of making their own.
#[derive(Debug)]
struct RunCredentials {
    inner: AssumeRoleProvider,
    cached: tokio::sync::Mutex<Option<Credentials>>,
}

impl ProvideCredentials for RunCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            let mut cached = self.cached.lock().await;
            if let Some(c) = cached.as_ref() {
                let fresh = c
                    .expiry()
                    .is_none_or(|e| e > SystemTime::now() + RENEW_BEFORE);
                if fresh {
                    return Ok(c.clone());
                }
            }
            let c = self.inner.provide_credentials().await?;
            *cached = Some(c.clone());
            Ok(c)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arns_and_partitions() {
        assert_eq!(
            role_arn("aws", "111122223333", "CksDoctorAudit"),
            "arn:aws:iam::111122223333:role/CksDoctorAudit"
        );
        assert_eq!(
            role_arn("aws-us-gov", "111122223333", "/audit/cks"),
            "arn:aws-us-gov:iam::111122223333:role/audit/cks"
        );
        let a = OrgAccount {
            id: "111122223333".into(),
            name: None,
            arn: Some("arn:aws-cn:organizations::999:account/o-abc/111122223333".into()),
            state: "SUSPENDED".into(),
        };
        assert_eq!(a.partition(), "aws-cn");
        assert!(!a.is_active());
    }
}
