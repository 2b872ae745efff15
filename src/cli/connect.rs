//! `connect`: ConnectCustomKeyStore, explicit and safe — the one command that changes anything
//! in an AWS account. The store's checks first (a FAIL stops it unless --force); a FAILED store
//! disconnected first, after asking (or --yes); then the connection followed to its end with
//! --wait, and diagnosed at once when it FAILs. The state machine and the KMS calls are the
//! engine's (`cks_doctor::connect`); this module asks, shows progress and prints.

use super::preflight::{read_client_identity, read_trust_ca, read_xks_secret, XksProbeArgs};
use super::{Ctx, Done, EXIT_FAIL, EXIT_INCOMPLETE, EXIT_OK};
use cks_doctor::connect::{
    self, format_duration, Action, Backoff, Connector, Driven, End, Follow, Journal, Plan, State,
    Tick,
};
use cks_doctor::diagnose::{self, Extras};
use cks_doctor::engine;
use cks_doctor::facts::model::CustomKeyStore;
use cks_doctor::facts::{Facts, Source};
use cks_doctor::input::{self, InputError};
use cks_doctor::kind::StoreKind;
use cks_doctor::report::render::{self, Format};
use cks_doctor::report::{Report, SCHEMA_VERSION};
use cks_doctor::results::Status;
use clap::Args;
use serde::Serialize;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const EXIT_HELP: &str = "\
Exit codes:
  0  CONNECTED (or already CONNECTED; without --wait: ConnectCustomKeyStore accepted); --dry-run: it would go ahead
  1  the store ended FAILED (the diagnosis that follows says why), or a check FAILed and nothing was done (--force goes on)
  2  usage or invalid input, including a FAILED store without --yes when standard input is not a terminal
  3  could not finish: --max-wait passed, interrupted (Ctrl-C) or declined, the store went elsewhere, or an AWS call could not be made (permission, throttling); the store is left as it is and nothing is undone

Needs kms:ConnectCustomKeyStore, kms:DisconnectCustomKeyStore and kms:DescribeCustomKeyStores (cks-doctor iam-policy --connect) besides the checks' read-only policy.";

#[derive(Debug, Args)]
#[command(after_help = EXIT_HELP)]
pub struct ConnectArgs {
    /// The custom key store id (cks-...)
    #[arg(value_name = "STORE_ID", required_unless_present = "name")]
    pub id: Option<String>,
    /// Find the store by its name instead
    #[arg(long, value_name = "NAME", conflicts_with = "id")]
    pub name: Option<String>,
    /// Follow the connection (DescribeCustomKeyStores, with backoff) until CONNECTED or FAILED;
    /// without it, return once ConnectCustomKeyStore is accepted
    #[arg(long)]
    pub wait: bool,
    /// Give up waiting after this long, leaving the store as it is (e.g. 90s, 5m, 1h; default
    /// 20m for a CloudHSM key store, 10m for an external key store)
    #[arg(long, value_name = "DURATION", value_parser = parse_max_wait)]
    pub max_wait: Option<Duration>,
    /// Read the store every DURATION instead of 2s doubling to 30s
    #[arg(long, value_name = "DURATION", value_parser = parse_poll_interval)]
    pub poll_interval: Option<Duration>,
    /// Agree to disconnect a FAILED store first (no question asked: for scripts)
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Connect even though a check FAILs
    #[arg(long)]
    pub force: bool,
    /// Run the checks and print what would be done; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// JSON output of `cloudhsm-cli user list`, for the kmsuser checks
    #[arg(long, value_name = "FILE")]
    pub cloudhsm_users: Option<String>,
    #[command(flatten)]
    pub xks: XksProbeArgs,
}

fn parse_max_wait(s: &str) -> Result<Duration, String> {
    match connect::parse_duration(s)? {
        d if d.is_zero() => Err("--max-wait must be more than 0".into()),
        d if d > Duration::from_secs(24 * 3600) => Err("--max-wait is at most 24h".into()),
        d => Ok(d),
    }
}

fn parse_poll_interval(s: &str) -> Result<Duration, String> {
    match connect::parse_duration(s)? {
        d if d < Duration::from_millis(10) => Err("--poll-interval is at least 10ms".into()),
        d if d > Duration::from_secs(600) => Err("--poll-interval is at most 10m".into()),
        d => Ok(d),
    }
}

// ------------------------------------------------------------------------------------------------
// what is printed

/// The checks' verdict, in short.
#[derive(Debug, Serialize)]
struct ChecksVerdict {
    outlook: cks_doctor::report::Outlook,
    summary: cks_doctor::report::Summary,
    text: String,
    failing: Vec<String>,
}

/// The `--output json` document (and what the table shows).
#[derive(Debug, Serialize)]
struct Outcome {
    schema_version: u32,
    tool: serde_json::Value,
    command: &'static str,
    custom_key_store_id: String,
    custom_key_store_name: String,
    custom_key_store_type: String,
    region: Option<String>,
    dry_run: bool,
    initial_state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    initial_connection_error_code: Option<String>,
    /// What it does (or, with --dry-run, would do), in order.
    plan: Vec<String>,
    /// The checks run before anything changed (none when nothing was to change).
    checks: Option<ChecksVerdict>,
    /// What it changed, in order.
    actions: Vec<Action>,
    /// connected | already_connected | started | failed | timed_out | interrupted | declined |
    /// stopped_by_checks | would_connect | would_stop | unexpected_state | aws_error
    outcome: &'static str,
    message: String,
    final_state: String,
    connection_error_code: Option<String>,
    elapsed_seconds: f64,
    /// DescribeCustomKeyStores calls made while waiting.
    polls: u32,
    max_wait_seconds: f64,
    /// FAILED: `diagnose` on the store as it ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    diagnosis: Option<Report>,
    /// Stopped by a FAIL: the checks' report.
    #[serde(skip_serializing_if = "Option::is_none")]
    checks_report: Option<Report>,
    #[serde(skip)]
    code: i32,
    /// Whether the drive ran (the table then shows the final state).
    #[serde(skip)]
    drove: bool,
}

fn verdict_of(report: &Report) -> ChecksVerdict {
    ChecksVerdict {
        outlook: report.verdict.outlook,
        summary: report.summary.clone(),
        text: report.verdict.text.clone(),
        failing: failing(report),
    }
}

fn failing(report: &Report) -> Vec<String> {
    report
        .checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .map(|c| c.id.clone())
        .collect()
}

fn counts(s: &cks_doctor::report::Summary) -> String {
    let parts: Vec<String> = [
        (s.pass, "pass"),
        (s.fail, "fail"),
        (s.warn, "warn"),
        (s.error, "could not check"),
        (s.skip, "skip"),
        (s.manual, "manual"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, w)| format!("{n} {w}"))
    .collect();
    parts.join(", ")
}

impl Outcome {
    fn render(&self, ctx: &Ctx) -> String {
        if ctx.output == Format::Json {
            return serde_json::to_string_pretty(self).expect("serializes") + "\n";
        }
        let mut out = format!("{}\n", self.message);
        if let Some(c) = &self.checks {
            out.push_str(&format!(
                "checks before connecting: {} ({})\n",
                c.text,
                counts(&c.summary)
            ));
        }
        if self.dry_run {
            out.push_str("plan:\n");
            for (i, s) in self.plan.iter().enumerate() {
                out.push_str(&format!("  {}. {s}\n", i + 1));
            }
        }
        for a in &self.actions {
            out.push_str(&format!(
                "{} {}: {}\n",
                a.action, a.custom_key_store_id, a.result
            ));
        }
        if self.drove {
            out.push_str(&format!(
                "final state: {}{} after {}\n",
                self.final_state,
                self.connection_error_code
                    .as_deref()
                    .map(|c| format!(" ({c})"))
                    .unwrap_or_default(),
                format_duration(Duration::from_secs_f64(self.elapsed_seconds))
            ));
        }
        if let Some(r) = self.diagnosis.as_ref().or(self.checks_report.as_ref()) {
            out.push('\n');
            out.push_str(&render::render(
                Format::Table,
                &[ctx.filter.apply(r)],
                None,
                ctx.style,
            ));
        }
        out
    }

    fn done(mut self, ctx: &Ctx) -> Result<Done, InputError> {
        // --severity/--status hide rows of the reports, as everywhere.
        self.diagnosis = self.diagnosis.take().map(|r| ctx.filter.apply(&r));
        self.checks_report = self.checks_report.take().map(|r| ctx.filter.apply(&r));
        if let Some(path) = &ctx.report_file {
            // The report file holds the diagnosis (or the checks that stopped it), in the format
            // its extension names; with no report, the outcome as JSON.
            let text = match self.diagnosis.as_ref().or(self.checks_report.as_ref()) {
                Some(r) => render::render(
                    Format::from_path(path).unwrap_or(ctx.output),
                    &[ctx.filter.apply(r)],
                    None,
                    ctx.style,
                ),
                None => serde_json::to_string_pretty(&self).expect("serializes") + "\n",
            };
            std::fs::write(path, text)
                .map_err(|e| InputError(format!("--report {}: {e}", path.display())))?;
        }
        Ok(Done {
            stdout: self.render(ctx),
            code: self.code,
        })
    }
}

fn state_and_code(store: &CustomKeyStore) -> (String, Option<String>) {
    let state = State::of(store);
    let code = match state {
        State::Failed => store.connection_error_code.clone(),
        _ => None,
    };
    (state.name().to_string(), code)
}

fn with_code(state: &str, code: &Option<String>) -> String {
    match code {
        Some(c) => format!("{state} with {c}"),
        None => state.to_string(),
    }
}

// ------------------------------------------------------------------------------------------------
// the terminal

fn bar(ctx: &Ctx) -> Option<&indicatif::ProgressBar> {
    ctx.progress.as_ref().map(|b| &b.0)
}

/// The bar back to counting checks (for the diagnosis after a FAILED connect).
fn bar_for_checks(ctx: &Ctx) {
    if let Some(pb) = bar(ctx) {
        pb.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {pos}/{len} checks done {elapsed}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb.set_length(0);
        pb.set_position(0);
        pb.reset_elapsed();
    }
}

/// The bar as a spinner with a message (the wait).
fn bar_for_wait(ctx: &Ctx, message: String) {
    if let Some(pb) = bar(ctx) {
        pb.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {elapsed} {wide_msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        pb.reset_elapsed();
        pb.set_message(message);
    }
}

// ------------------------------------------------------------------------------------------------
// the command

pub async fn run(ctx: &Ctx, args: &ConnectArgs) -> Result<Done, InputError> {
    let settings = &ctx.settings;
    if !matches!(ctx.output, Format::Table | Format::Json) {
        return Err(InputError::new(
            "connect prints --output table or json (--report FILE writes the diagnosis in any format)",
        ));
    }
    if settings.source.snapshot.is_some() {
        return Err(InputError::new(
            "connect changes a key store: it needs the live AWS APIs, not --snapshot",
        ));
    }
    // Everything the operator supplies is read before any network call.
    let users = args
        .cloudhsm_users
        .as_deref()
        .map(input::load_users)
        .transpose()?;
    let secret = read_xks_secret(&args.xks)?;
    let trust_ca = read_trust_ca(&args.xks.trust_ca)?;
    let client_identity = read_client_identity(&args.xks)?;

    let (source, region) = engine::open_source(settings, None, None).await?;
    let Source::Live(live) = &source else {
        return Err(InputError::new("connect needs the live AWS APIs"));
    };
    let connector = Connector::new(live.kms(), settings.timeout.mul_f64(0.9));
    let start = Instant::now();
    let stores = match Facts::read_key_stores(&source).await {
        Ok(s) => s,
        Err(e) => {
            // Nothing was done, and nothing can be: exit 3, not bad input.
            eprintln!(
                "cks-doctor: cannot read the account's custom key stores, so nothing was done: {e}"
            );
            return Ok(Done {
                stdout: String::new(),
                code: EXIT_INCOMPLETE,
            });
        }
    };
    let store = diagnose::find(&stores, args.id.as_deref(), args.name.as_deref())
        .map_err(InputError)?
        .clone();
    let id = store.custom_key_store_id.clone();
    let kind = StoreKind::of_type(store.custom_key_store_type.as_deref());
    let state = State::of(&store);
    let plan = Plan::for_state(&state);
    let max_wait = args
        .max_wait
        .unwrap_or_else(|| connect::default_max_wait(kind));
    let backoff = args
        .poll_interval
        .map(Backoff::fixed)
        .unwrap_or_else(Backoff::standard);
    let (initial_state, initial_code) = state_and_code(&store);
    let shown = with_code(&initial_state, &initial_code);

    // A question that cannot be asked is refused before anything runs.
    if plan.needs_confirmation() && !args.yes && !args.dry_run && !std::io::stdin().is_terminal() {
        return Err(InputError(format!(
            "{id} is {shown}: connecting it again {}; pass --yes to agree (standard input is not a terminal, so cks-doctor cannot ask)",
            match plan {
                Plan::DisconnectThenConnect => "disconnects it first (DisconnectCustomKeyStore)",
                _ => "waits for the disconnection in progress to end, then connects it",
            }
        )));
    }

    let extras = || Extras {
        secret: secret.clone(),
        users: users.clone(),
        connect_to: args.xks.connect_to.clone(),
        trust_ca: trust_ca.clone(),
        client_identity: client_identity.clone(),
        region: region.clone().unwrap_or_default(),
        timeout: settings.probe_timeout(),
    };
    let mut out = Outcome {
        schema_version: SCHEMA_VERSION,
        tool: serde_json::json!({"name": env!("CARGO_PKG_NAME"), "version": env!("CARGO_PKG_VERSION")}),
        command: "connect",
        custom_key_store_id: id.clone(),
        custom_key_store_name: store.custom_key_store_name.clone(),
        custom_key_store_type: store
            .custom_key_store_type
            .clone()
            .unwrap_or_else(|| "AWS_CLOUDHSM".into()),
        region: region.clone(),
        dry_run: args.dry_run,
        initial_state: initial_state.clone(),
        initial_connection_error_code: initial_code.clone(),
        plan: plan.steps(&id, args.wait, max_wait, &backoff),
        checks: None,
        actions: Vec::new(),
        outcome: "",
        message: String::new(),
        final_state: initial_state.clone(),
        connection_error_code: initial_code.clone(),
        elapsed_seconds: 0.0,
        polls: 0,
        max_wait_seconds: max_wait.as_secs_f64(),
        diagnosis: None,
        checks_report: None,
        code: EXIT_OK,
        drove: false,
    };
    let name = format!("{id} ({})", store.custom_key_store_name);

    // The checks, before anything changes (not when nothing will).
    let checks = if plan.changes_anything() {
        let run = engine::diagnose_store(
            settings,
            source.clone(),
            region.clone(),
            stores.clone(),
            store.clone(),
            extras(),
        )
        .await?;
        ctx.verbose_facts(&run.facts);
        Some(run.report)
    } else {
        None
    };
    out.checks = checks.as_ref().map(verdict_of);
    let fails = checks.as_ref().map(failing).unwrap_or_default();
    let stopped = !fails.is_empty() && !args.force;
    let stop_reason = format!(
        "{} check(s) FAIL ({}): ConnectCustomKeyStore would fail",
        fails.len(),
        fails.join(", ")
    );

    if args.dry_run {
        out.elapsed_seconds = start.elapsed().as_secs_f64();
        (out.outcome, out.code, out.message) = match &plan {
            Plan::AlreadyConnected => (
                "already_connected",
                EXIT_OK,
                format!("dry run: {name} is already CONNECTED: nothing to do"),
            ),
            Plan::Unsupported(_) => (
                "unexpected_state",
                EXIT_INCOMPLETE,
                format!("dry run: {name} is {shown}: cks-doctor would do nothing"),
            ),
            _ if stopped => (
                "would_stop",
                EXIT_FAIL,
                format!("dry run: nothing was changed; {name} is {shown}; connect would stop here: {stop_reason} (--force goes on anyway)"),
            ),
            _ => (
                "would_connect",
                EXIT_OK,
                format!(
                    "dry run: nothing was changed; {name} is {shown}; connect would go ahead as planned below"
                ),
            ),
        };
        if stopped {
            out.checks_report = checks;
        }
        return out.done(ctx);
    }
    match &plan {
        Plan::AlreadyConnected => {
            out.outcome = "already_connected";
            out.message = format!("{name} is already CONNECTED: nothing to do");
            out.elapsed_seconds = start.elapsed().as_secs_f64();
            return out.done(ctx);
        }
        Plan::Unsupported(_) => {
            out.outcome = "unexpected_state";
            out.code = EXIT_INCOMPLETE;
            out.message = format!(
                "{name} is {shown}, a ConnectionState this version does not act on: nothing was done"
            );
            return out.done(ctx);
        }
        _ => {}
    }
    if stopped {
        out.outcome = "stopped_by_checks";
        out.code = EXIT_FAIL;
        out.message = format!(
            "{name} is {shown}; nothing was done: {stop_reason} (fix them, or --force to connect anyway)"
        );
        out.checks_report = checks;
        out.elapsed_seconds = start.elapsed().as_secs_f64();
        return out.done(ctx);
    }
    if plan.needs_confirmation() && !args.yes {
        let question = match plan {
            Plan::DisconnectThenConnect => format!(
                "{name} is {shown}. Disconnect it (DisconnectCustomKeyStore; its KMS keys stay unusable until it connects) and connect it again?"
            ),
            _ => format!(
                "{name} is DISCONNECTING (someone else is disconnecting it). Wait for DISCONNECTED and connect it again?"
            ),
        };
        if !ctx.ask(&question) {
            out.outcome = "declined";
            out.code = EXIT_INCOMPLETE;
            out.message = format!("{name} is {shown}: declined, nothing was done");
            out.elapsed_seconds = start.elapsed().as_secs_f64();
            return out.done(ctx);
        }
    }

    // The change, followed; Ctrl-C drops the drive and leaves the store as it is.
    let follow = Follow {
        wait: args.wait,
        max_wait,
        backoff,
    };
    let journal = Mutex::new(Journal::default());
    let limit = format_duration(max_wait);
    bar_for_wait(ctx, format!("{id} {initial_state}"));
    let observe = |t: &Tick| {
        if let Some(pb) = bar(ctx) {
            let what = t.last_action.as_deref().unwrap_or("following");
            pb.set_message(format!(
                "{id} {} · {what} · {} read(s), at most {limit}",
                t.state, t.polls
            ));
        }
    };
    let acting = Instant::now();
    let driven = {
        let drive = connector.drive(&store, &follow, &journal, &observe);
        tokio::pin!(drive);
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        tokio::select! {
            biased;
            r = &mut ctrl_c => match r {
                Ok(()) => None,
                // No signal handler could be installed: just wait.
                Err(_) => Some(drive.await),
            },
            d = &mut drive => Some(d),
        }
    };
    let elapsed = acting.elapsed();
    let j = journal
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let last = j.last.clone().unwrap_or_else(|| store.clone());
    let (final_state, final_code) = state_and_code(&last);
    let last_shown = with_code(&final_state, &final_code);
    out.drove = true;
    out.actions = j.actions.clone();
    out.final_state = final_state.clone();
    out.connection_error_code = final_code.clone();
    out.elapsed_seconds = elapsed.as_secs_f64();
    out.polls = j.polls;
    let took = format_duration(elapsed);
    let untouched = "left as it is, nothing was undone";
    match driven {
        None => {
            out.outcome = "interrupted";
            out.code = EXIT_INCOMPLETE;
            let in_flight = j
                .in_flight
                .filter(|c| *c != "DescribeCustomKeyStores")
                .map(|c| format!(" ({c} was under way: whether KMS got it is unknown)"))
                .unwrap_or_default();
            out.message = format!(
                "interrupted after {took}: {name} {untouched}; last known state {last_shown}{in_flight}"
            );
        }
        Some(Driven::End(End::Connected | End::AlreadyConnected)) => {
            out.outcome = "connected";
            out.message = format!("{name} is CONNECTED after {took}");
        }
        Some(Driven::End(End::Failed { error_code })) => {
            out.outcome = "failed";
            out.code = EXIT_FAIL;
            let code = error_code.unwrap_or_else(|| "no ConnectionErrorCode".into());
            out.connection_error_code = Some(code.clone());
            out.message =
                format!("{name} is FAILED with {code} after {took}; the diagnosis follows");
            // The diagnosis of the store as it ended, at once.
            let fresh: Vec<CustomKeyStore> = stores
                .iter()
                .map(|s| {
                    if s.custom_key_store_id == id {
                        last.clone()
                    } else {
                        s.clone()
                    }
                })
                .collect();
            bar_for_checks(ctx);
            let diagnosis = engine::diagnose_store(
                settings,
                source.clone(),
                region.clone(),
                fresh,
                last.clone(),
                extras(),
            );
            // The Ctrl-C handler is still installed: it must still end the command.
            let diagnosed = tokio::select! {
                biased;
                _ = tokio::signal::ctrl_c() => Err("interrupted".to_string()),
                r = diagnosis => r.map_err(|e| e.to_string()),
            };
            match diagnosed {
                Ok(run) => {
                    ctx.verbose_facts(&run.facts);
                    out.diagnosis = Some(run.report);
                }
                Err(e) => {
                    out.message = format!(
                        "{name} is FAILED with {code} after {took}; it could not be diagnosed: {e}"
                    );
                }
            }
        }
        Some(Driven::End(End::Unexpected { state, why })) => {
            out.outcome = "unexpected_state";
            out.code = EXIT_INCOMPLETE;
            out.message = format!("{name} is {state} after {took}: {why}; {untouched}");
        }
        Some(Driven::Started) => {
            out.outcome = "started";
            let what = if out.actions.is_empty() {
                "a connection is in progress"
            } else {
                "the connection started"
            };
            out.message = format!(
                "{name}: {what} ({last_shown}); not followed: `cks-doctor connect {id} --wait` follows it"
            );
        }
        Some(Driven::TimedOut) => {
            out.outcome = "timed_out";
            out.code = EXIT_INCOMPLETE;
            out.message = format!(
                "timed out after {took} (--max-wait {limit}): {name} is still {last_shown}; {untouched}"
            );
        }
        Some(Driven::CallFailed { action, error }) => {
            out.outcome = "aws_error";
            out.code = EXIT_INCOMPLETE;
            out.message = format!(
                "{action} {id} could not be made: {error}; {name} is {last_shown}, {untouched}"
            );
        }
    }
    if let Some(pb) = bar(ctx) {
        pb.finish_and_clear();
    }
    out.done(ctx)
}
