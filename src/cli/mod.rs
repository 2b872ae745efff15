//! The command line: clap's options, resolved into the engine's [`Settings`] (and how to show
//! the result) before any command runs; one module per subcommand. The library knows nothing
//! of it. Exit codes: 0 no FAIL, 1 a FAIL, 2 usage or invalid input, 3 no FAIL but some checks
//! could not run.

mod alarms;
mod conformance;
mod connect;
mod diagnose;
mod info;
mod preflight;
mod scan;
mod snapshot;

use cks_doctor::engine::{Progress, Settings, SourceSettings};
use cks_doctor::facts::Facts;
use cks_doctor::input::InputError;
use cks_doctor::kind::StoreKind;
use cks_doctor::meta::Severity;
use cks_doctor::report::render::{self, Filter, Format, TableStyle};
use cks_doctor::report::scan::ScanError;
use cks_doctor::report::Report;
use cks_doctor::results::Status;
use cks_doctor::runner::Selection;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub const EXIT_OK: i32 = 0;
pub const EXIT_FAIL: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_INCOMPLETE: i32 = 3;

#[derive(Debug, Parser)]
#[command(
    name = "cks-doctor",
    version,
    about = "Tells you, before CreateCustomKeyStore and whenever a key store is FAILED, what is wrong with an AWS KMS custom key store setup, in KMS's own words",
    after_help = "Exit codes: 0 no check failed; 1 at least one check failed; 2 usage or invalid input; 3 nothing failed but some checks could not run."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Args)]
pub struct Global {
    /// AWS named profile (as the AWS CLI's --profile)
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// AWS Region of the key store
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// Send every AWS API call to this URL (a local or private endpoint)
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// Output format
    #[arg(long, global = true, value_enum, default_value = "table")]
    pub output: Format,
    /// Colour in table output (NO_COLOR is honoured in auto mode)
    #[arg(long, global = true, value_enum, default_value = "auto")]
    pub color: ColorChoice,
    /// Run only these checks (ids or id prefixes, e.g. cloudhsm.hsms)
    #[arg(long, global = true, value_delimiter = ',', value_name = "ID")]
    pub only: Vec<String>,
    /// Do not run these checks (ids or id prefixes)
    #[arg(long, global = true, value_delimiter = ',', value_name = "ID")]
    pub skip: Vec<String>,
    /// Seconds each check (and each AWS call) may take before it is reported as "could not check"
    #[arg(long, global = true, default_value = "20", value_name = "SECONDS", value_parser = parse_timeout)]
    pub timeout: f64,
    /// Read facts from a directory of AWS CLI JSON output instead of calling AWS (no AWS call;
    /// an XKS proxy under check is still probed)
    #[arg(long, global = true, value_name = "DIR")]
    pub snapshot: Option<PathBuf>,
    /// Also write the report to FILE, in the format its extension names (.json, .xml, .sarif, .md,
    /// .html, .csv) or else in --output's
    #[arg(long, global = true, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Show only checks of at least this severity
    #[arg(long, global = true, value_enum)]
    pub severity: Option<Severity>,
    /// Show only checks with these statuses (comma-separated)
    #[arg(long, global = true, value_enum, value_delimiter = ',')]
    pub status: Vec<Status>,
    /// No progress display on standard error
    #[arg(long, global = true)]
    pub no_progress: bool,
    /// Run at most N checks at once, across all the stores and Regions of a scan, and make at most N AWS calls at once (default: all at once)
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub jobs: Option<u32>,
    /// On standard error: -v how often each fact was fetched; -vv also what the XKS probe saw
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// The window of the CloudWatch metrics an existing external key store's checks read (diagnose,
    /// scan, snapshot): 30m, 24h, 7d, 1d12h (5m to 15d)
    #[arg(long, global = true, default_value = "24h", value_name = "DURATION", value_parser = cks_doctor::facts::metrics::parse_duration)]
    pub since: Duration,
    /// xks.metrics.credential-age warns past this many days (cks-doctor's default; AWS gives none)
    #[arg(long, global = true, default_value_t = cks_doctor::facts::metrics::DEFAULT_MAX_CREDENTIAL_AGE_DAYS, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub max_credential_age: u32,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Predict whether CreateCustomKeyStore will succeed, and why not
    Preflight(preflight::PreflightArgs),
    /// List every check: id, title, kind, and the exceptions and codes it maps to
    Checks,
    /// Record the facts a pre-flight reads, as AWS CLI JSON files for --snapshot
    Snapshot(snapshot::SnapshotArgs),
    /// Find out why an existing key store is FAILED (or check a CONNECTED one)
    Diagnose(diagnose::DiagnoseArgs),
    /// Diagnose every custom key store of the account in one or more Regions (and accounts)
    Scan(scan::ScanArgs),
    /// Exercise the XKS proxy API on test keys as KMS uses it, each case timed against 250 ms
    Conformance(conformance::ConformanceArgs),
    /// Connect a key store (ConnectCustomKeyStore) after its checks, disconnecting a FAILED one
    /// first; with --wait, follow it to CONNECTED or FAILED and diagnose a failure (changes the store)
    Connect(connect::ConnectArgs),
    /// Print the CloudWatch alarms AWS recommends for external key stores (CloudFormation or
    /// put-metric-alarm JSON) and say which exist; read-only: creates nothing
    Alarms(alarms::AlarmsArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to standard output
    Man,
    /// Print the least-privilege read-only IAM policy the checks need
    IamPolicy {
        /// Only the checks of this key store kind
        #[arg(long, value_enum, default_value = "all")]
        kind: StoreKind,
        /// Instead, the policy `connect` needs besides it (Connect, Disconnect, Describe)
        #[arg(long, conflicts_with_all = ["organization", "security_hub_import"])]
        connect: bool,
        /// Instead, what the caller of `scan --organization --role-name ROLE` needs in the
        /// management account (ListAccounts, and AssumeRole on ROLE in every account)
        #[arg(long, value_name = "ROLE", conflicts_with = "security_hub_import")]
        organization: Option<String>,
        /// Instead, what `scan --security-hub-import` needs in each account scanned, beside the
        /// read-only policy (BatchImportFindings of the account's default product)
        #[arg(long)]
        security_hub_import: bool,
    },
    /// Explain a KMS exception, ConnectionErrorCode, ConnectionState or check id
    Explain {
        /// e.g. IncorrectTrustAnchorException, SUBNET_NOT_FOUND, cloudhsm.hsms.two-az
        name: String,
    },
}

fn parse_timeout(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 3600.0 => Ok(v),
        _ => Err("expected a number of seconds between 0 and 3600".into()),
    }
}

/// The outcome of a command: what to print and the exit code.
pub struct Done {
    pub stdout: String,
    pub code: i32,
}

impl Done {
    fn ok(stdout: String) -> Done {
        Done {
            stdout,
            code: EXIT_OK,
        }
    }
}

/// The parsed options, resolved: the engine's settings and how to show what it returns.
pub struct Ctx {
    pub settings: Settings,
    pub output: Format,
    pub report_file: Option<PathBuf>,
    pub filter: Filter,
    pub style: TableStyle,
    pub verbose: u8,
    progress: Option<Arc<Bar>>,
}

/// The progress display: a bar on standard error.
struct Bar(indicatif::ProgressBar);

impl Progress for Bar {
    fn queued(&self, checks: usize) {
        self.0.inc_length(checks as u64);
    }
    fn done(&self, _check_id: &str) {
        self.0.inc(1);
    }
    fn accounts(&self, done: usize, total: usize) {
        self.0
            .set_message(format!("· {done}/{total} accounts done"));
    }
}

fn use_color(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::io::stdout().is_terminal()
        }
    }
}

/// A progress bar on standard error, only for a person watching a terminal: never with a
/// machine format on standard output, never in a pipe, never with --no-progress.
fn progress_bar(global: &Global, command: &Command) -> Option<Arc<Bar>> {
    let runs_checks = matches!(
        command,
        Command::Preflight(_) | Command::Diagnose(_) | Command::Scan(_) | Command::Connect(_)
    );
    if !runs_checks
        || global.no_progress
        || global.output != Format::Table
        || !std::io::stderr().is_terminal()
    {
        return None;
    }
    let pb = indicatif::ProgressBar::new(0);
    pb.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {pos}/{len} checks done {msg} {elapsed}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    pb.enable_steady_tick(Duration::from_millis(120));
    Some(Arc::new(Bar(pb)))
}

impl Ctx {
    fn resolve(global: &Global, command: &Command) -> Ctx {
        let progress = progress_bar(global, command);
        let mut settings = Settings::new(
            Duration::from_secs_f64(global.timeout),
            global.jobs.map(|j| j as usize),
        );
        settings.source = SourceSettings {
            snapshot: global.snapshot.clone(),
            profile: global.profile.clone(),
            region: global.region.clone(),
            endpoint_url: global.endpoint_url.clone(),
        };
        settings.selection = Selection {
            only: global.only.clone(),
            skip: global.skip.clone(),
        };
        settings.progress = progress.clone().map(|p| p as Arc<dyn Progress>);
        // Findings (ASFF, OCSF) name the account: read the caller identity for them.
        let findings = |f: Format| matches!(f, Format::Asff | Format::Ocsf);
        settings.want_account = findings(global.output)
            || global
                .report
                .as_deref()
                .is_some_and(|p| findings(Format::from_path(p).unwrap_or(global.output)));
        settings.metrics = cks_doctor::facts::metrics::MetricSettings {
            since: global.since,
            max_credential_age_days: global.max_credential_age,
        };
        Ctx {
            settings,
            output: global.output,
            report_file: global.report.clone(),
            filter: Filter {
                min_severity: global.severity,
                statuses: global.status.clone(),
            },
            style: TableStyle {
                color: use_color(global.color),
                wrap: std::io::stdout().is_terminal(),
            },
            verbose: global.verbose,
            progress,
        }
    }

    /// Prints in --output's format, writes --report's file, and picks the exit code.
    fn finish(
        &self,
        reports: Vec<Report>,
        scan_errors: Option<&[ScanError]>,
    ) -> Result<Done, InputError> {
        let code = reports
            .iter()
            .map(Report::exit_code)
            .chain(
                scan_errors
                    .filter(|e| !e.is_empty())
                    .map(|_| EXIT_INCOMPLETE),
            )
            .fold(EXIT_OK, |a, b| match (a, b) {
                (EXIT_FAIL, _) | (_, EXIT_FAIL) => EXIT_FAIL,
                (EXIT_INCOMPLETE, _) | (_, EXIT_INCOMPLETE) => EXIT_INCOMPLETE,
                _ => EXIT_OK,
            });
        let shown: Vec<Report> = reports.iter().map(|r| self.filter.apply(r)).collect();
        if let Some(path) = &self.report_file {
            let format = Format::from_path(path).unwrap_or(self.output);
            let text = render::render(format, &shown, scan_errors, self.style);
            std::fs::write(path, text)
                .map_err(|e| InputError(format!("--report {}: {e}", path.display())))?;
        }
        Ok(Done {
            stdout: render::render(self.output, &shown, scan_errors, self.style),
            code,
        })
    }

    /// y/N on standard error (standard input is a terminal); the progress bar hidden meanwhile.
    /// The two commands that change anything ask with it: `connect`, `scan --security-hub-import`.
    fn ask(&self, question: &str) -> bool {
        use std::io::Write;
        let read = || {
            let mut err = std::io::stderr();
            let _ = write!(err, "{question} [y/N] ");
            let _ = err.flush();
            let mut line = String::new();
            if std::io::stdin().read_line(&mut line).is_err() {
                return false;
            }
            matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes")
        };
        // Blocking is fine: nothing else runs on this thread, and the checks are done.
        match &self.progress {
            Some(pb) => pb.0.suspend(read),
            None => read(),
        }
    }

    /// -v: how often each fact was fetched; -vv: also what the XKS probe saw.
    fn verbose_facts(&self, facts: &Facts) {
        if self.verbose == 0 {
            return;
        }
        eprintln!("cks-doctor: facts from {}", facts.source().describe());
        for (what, n) in facts.counts.snapshot() {
            eprintln!("cks-doctor: {what}: fetched {n} time(s)");
        }
        if let Some(p) = facts.xks_probe_if_run() {
            eprintln!(
                "cks-doctor: XKS probe of {}: {} TLS handshake(s), signed requests: {}",
                p.url, p.handshakes, p.signed
            );
            if self.verbose > 1 {
                // The probe report holds no secret: the key is only ever used to sign.
                eprintln!("cks-doctor: {p:#?}");
            }
        }
    }
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<Done, InputError> {
    let ctx = Ctx::resolve(&cli.global, &cli.command);
    let done = match &cli.command {
        Command::Preflight(args) => preflight::run(&ctx, args).await,
        Command::Diagnose(args) => diagnose::run(&ctx, args).await,
        Command::Scan(args) => scan::run(&ctx, args).await,
        Command::Conformance(args) => conformance::run(&ctx, args).await,
        Command::Connect(args) => connect::run(&ctx, args).await,
        Command::Snapshot(args) => snapshot::run(&ctx, args).await,
        Command::Alarms(args) => alarms::run(&ctx, args).await,
        Command::Checks => Ok(info::checks(&ctx)),
        Command::Explain { name } => info::explain(&ctx, name),
        Command::IamPolicy {
            kind,
            connect,
            organization,
            security_hub_import,
        } => info::iam_policy(
            *kind,
            *connect,
            organization.as_deref(),
            *security_hub_import,
        ),
        Command::Completions { shell } => Ok(info::completions(*shell)),
        Command::Man => info::man(),
    };
    if let Some(p) = &ctx.progress {
        p.0.finish_and_clear();
    }
    done
}
