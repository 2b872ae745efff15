//! `scan`: every custom key store of one or more Regions and accounts (profiles, or an
//! organisation's accounts through a role assumed in each).

use super::{Ctx, Done};
use cks_doctor::engine::{self, Accounts, OrgPlan, Regions, ScanPlan};
use cks_doctor::input::InputError;
use clap::Args;
use std::io::IsTerminal;

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Regions to scan (comma-separated or repeated), or `all`: every Region enabled for each
    /// account (ec2:DescribeRegions, opt-in status respected); default: the configured Region
    #[arg(long, value_delimiter = ',', value_name = "REGION")]
    pub regions: Vec<String>,
    /// The same as --regions all
    #[arg(long, conflicts_with = "regions")]
    pub all_regions: bool,
    /// AWS profiles (accounts) to scan into one report (comma-separated or repeated)
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "PROFILE",
        conflicts_with = "organization"
    )]
    pub profiles: Vec<String>,
    /// Scan every ACTIVE account of the caller's organisation (organizations:ListAccounts, from
    /// the management account or a delegated administrator), assuming --role-name in each
    #[arg(long, requires = "role_name")]
    pub organization: bool,
    /// The role to assume in each account (sts:AssumeRole; session name cks-doctor-scan); it
    /// needs the read-only policy `cks-doctor iam-policy` prints
    #[arg(long, value_name = "NAME", requires = "organization")]
    pub role_name: Option<String>,
    /// The external id the role's trust policy requires
    #[arg(long, value_name = "ID", requires = "organization")]
    pub external_id: Option<String>,
    /// Only these accounts of the organisation (12-digit ids, comma-separated or repeated)
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "ACCOUNT",
        requires = "organization"
    )]
    pub accounts: Vec<String>,
    /// Leave out these accounts of the organisation
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "ACCOUNT",
        requires = "organization"
    )]
    pub exclude_accounts: Vec<String>,
    /// At most N (account, Region) pairs read at once across the whole scan
    #[arg(long, value_name = "N", default_value_t = engine::SCAN_PLACES_AT_ONCE as u32, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub places_at_once: u32,
    /// The SDK's retry mode for throttled calls: standard (exponential backoff with jitter, a
    /// retry budget per account and Region) or adaptive (also a client-side rate limit once
    /// throttled; the SDK then holds a new client's next attempt about 10 s, so give --timeout room)
    #[arg(long, value_enum, default_value = "standard")]
    pub retry_mode: RetryMode,
    /// Send the findings (ASFF, as --output asff prints them) to AWS Security Hub with
    /// BatchImportFindings, each account's in its own account and Region: the one change scan
    /// makes; asks first on a terminal
    #[arg(long)]
    pub security_hub_import: bool,
    /// With --security-hub-import: import without asking (scripts)
    #[arg(long, requires = "security_hub_import")]
    pub yes: bool,
    /// With --security-hub-import: say where each finding would go, and send nothing
    #[arg(long, requires = "security_hub_import")]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RetryMode {
    Standard,
    Adaptive,
}

/// A 12-digit AWS account id, or a one-line error naming the option.
fn account_id(option: &str, s: &str) -> Result<String, InputError> {
    let s = s.trim();
    if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
        Ok(s.to_string())
    } else {
        Err(InputError(format!(
            "{option}: {s:?} is not an AWS account id (12 digits)"
        )))
    }
}

/// An IAM role name, with an optional path (`audit/cks-doctor`): IAM's characters only.
pub(super) fn role_name(s: &str) -> Result<String, InputError> {
    let ok = |part: &str| {
        !part.is_empty()
            && part.len() <= 64
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
    };
    let trimmed = s.trim_matches('/');
    if trimmed.split('/').all(ok) {
        Ok(trimmed.to_string())
    } else {
        Err(InputError(format!(
            "--role-name: {s:?} is not an IAM role name (letters, digits and +=,.@_- , with an optional path)"
        )))
    }
}

/// The scan the options describe.
pub fn plan(args: &ScanArgs) -> Result<ScanPlan, InputError> {
    let regions = if args.all_regions || args.regions.iter().any(|r| r == "all") {
        if args.regions.len() > 1 {
            return Err(InputError::new(
                "--regions all cannot be combined with named Regions",
            ));
        }
        Regions::Enabled
    } else if args.regions.is_empty() {
        Regions::Default
    } else {
        Regions::Listed(args.regions.clone())
    };
    let accounts = if args.organization {
        let ids = |option: &str, v: &[String]| -> Result<Vec<String>, InputError> {
            v.iter().map(|s| account_id(option, s)).collect()
        };
        Accounts::Organization(OrgPlan {
            role_name: role_name(args.role_name.as_deref().unwrap_or_default())?,
            external_id: args.external_id.clone(),
            only: ids("--accounts", &args.accounts)?,
            exclude: ids("--exclude-accounts", &args.exclude_accounts)?,
        })
    } else if args.profiles.is_empty() {
        Accounts::Profiles(vec![None])
    } else {
        Accounts::Profiles(args.profiles.iter().cloned().map(Some).collect())
    };
    Ok(ScanPlan { accounts, regions })
}

pub async fn run(ctx: &Ctx, args: &ScanArgs) -> Result<Done, InputError> {
    let plan = plan(args)?;
    let mut settings = ctx.settings.clone();
    settings.places_at_once = args.places_at_once as usize;
    settings.adaptive_retry = args.retry_mode == RetryMode::Adaptive;
    if args.security_hub_import {
        if settings.source.snapshot.is_some() {
            return Err(InputError::new(
                "--security-hub-import needs the live AWS APIs (a snapshot's findings name no account's credentials)",
            ));
        }
        if !args.yes && !args.dry_run && !std::io::stdin().is_terminal() {
            return Err(InputError::new(
                "--security-hub-import writes findings to AWS Security Hub: pass --yes to agree (standard input is not a terminal, so cks-doctor cannot ask), or --dry-run to see what it would send",
            ));
        }
        // The findings name their account: read it.
        settings.want_account = true;
    }
    let out = engine::scan_plan(&settings, &plan).await?;
    let mut done = ctx.finish(out.reports.clone(), Some(&out.errors))?;
    if args.security_hub_import {
        let code = import(ctx, &settings, args, &out).await?;
        done.code = combine(done.code, code);
    }
    Ok(done)
}

/// The exit code of a scan and its import together: a FAIL stays 1; an import that did not
/// complete makes an otherwise clean run 3.
fn combine(scan: i32, import: i32) -> i32 {
    match (scan, import) {
        (super::EXIT_FAIL, _) => super::EXIT_FAIL,
        (_, super::EXIT_INCOMPLETE) | (super::EXIT_INCOMPLETE, _) => super::EXIT_INCOMPLETE,
        _ => super::EXIT_OK,
    }
}

/// `--security-hub-import`: plan, say it, ask (or --yes / --dry-run), send, and say what
/// happened on standard error. Returns EXIT_OK when everything planned was imported.
async fn import(
    ctx: &Ctx,
    settings: &engine::Settings,
    args: &ScanArgs,
    out: &engine::ScanOutcome,
) -> Result<i32, InputError> {
    use cks_doctor::report::{asff, scan::error_report};
    use cks_doctor::securityhub;
    let mut all = out.reports.clone();
    all.extend(out.errors.iter().map(error_report));
    let groups = securityhub::plan(
        asff::findings_at(&all, time::OffsetDateTime::now_utc()),
        &out.access,
    );
    let plan_text = securityhub::dry_run(&groups);
    if args.dry_run {
        eprint!("{plan_text}");
        return Ok(super::EXIT_OK);
    }
    if groups.iter().all(|g| g.access.is_none()) {
        eprint!(
            "{}",
            securityhub::summary(&securityhub::import(settings, &groups).await)
        );
        return Ok(if groups.is_empty() {
            super::EXIT_OK
        } else {
            super::EXIT_INCOMPLETE
        });
    }
    if !args.yes {
        eprint!(
            "{}",
            plan_text.replace(" (--dry-run, nothing sent): would", ": about to")
        );
        if !ctx.ask("Import these findings into AWS Security Hub?") {
            eprintln!("Security Hub: nothing imported (not confirmed)");
            return Ok(super::EXIT_OK);
        }
    }
    let outcomes = securityhub::import(settings, &groups).await;
    eprint!("{}", securityhub::summary(&outcomes));
    Ok(if outcomes.iter().all(|o| o.complete()) {
        super::EXIT_OK
    } else {
        super::EXIT_INCOMPLETE
    })
}
