//! The commands that describe cks-doctor itself: `checks`, `explain`, `iam-policy`,
//! `completions`, `man`. No AWS call.

use super::{Cli, Ctx, Done};
use cks_doctor::input::InputError;
use cks_doctor::kind::StoreKind;
use cks_doctor::report::{catalogue, explain as explained, render::Format};

pub fn checks(ctx: &Ctx) -> Done {
    Done::ok(match ctx.output {
        Format::Json => catalogue::json(),
        _ => catalogue::table(ctx.style.wrap),
    })
}

pub fn explain(ctx: &Ctx, name: &str) -> Result<Done, InputError> {
    explained::explain(name, ctx.output == Format::Json)
        .map(Done::ok)
        .map_err(InputError)
}

/// The checks' read-only policy, or (`--connect`) the one `connect` needs besides it.
pub fn iam_policy(
    kind: StoreKind,
    connect: bool,
    organization: Option<&str>,
    security_hub_import: bool,
) -> Result<Done, InputError> {
    let policy = if connect {
        serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "CksDoctorConnect",
                "Effect": "Allow",
                "Action": cks_doctor::connect::IAM_ACTIONS,
                "Resource": "*"
            }]
        })
    } else if let Some(role) = organization {
        let role = super::scan::role_name(role)?;
        serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "CksDoctorListAccounts",
                    "Effect": "Allow",
                    "Action": ["organizations:ListAccounts"],
                    "Resource": "*"
                },
                {
                    "Sid": "CksDoctorAssumeScanRole",
                    "Effect": "Allow",
                    "Action": ["sts:AssumeRole"],
                    "Resource": format!("arn:aws:iam::*:role/{role}")
                }
            ]
        })
    } else if security_hub_import {
        serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "CksDoctorImportFindings",
                "Effect": "Allow",
                "Action": ["securityhub:BatchImportFindings"],
                "Resource": "arn:aws:securityhub:*:*:product/*/default"
            }]
        })
    } else {
        catalogue::iam_policy(kind)
    };
    Ok(Done::ok(
        serde_json::to_string_pretty(&policy).expect("serializes") + "\n",
    ))
}

pub fn completions(shell: clap_complete::Shell) -> Done {
    use clap::CommandFactory;
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "cks-doctor", &mut out);
    Done::ok(String::from_utf8_lossy(&out).into_owned())
}

pub fn man() -> Result<Done, InputError> {
    use clap::CommandFactory;
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut out)
        .map_err(|e| InputError(format!("man page: {e}")))?;
    Ok(Done::ok(String::from_utf8_lossy(&out).into_owned()))
}
