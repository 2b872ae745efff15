//! The command line: parses options, builds the request and the fact source, runs the
//! engine and renders the report. Exit codes: 0 no FAIL, 1 a FAIL, 2 usage or invalid input,
//! 3 no FAIL but some checks could not run.

use crate::checks::{self, Check};
use crate::codes;
use crate::facts::live::{LiveOptions, LiveSource};
use crate::facts::recorded::Recorded;
use crate::facts::{Facts, Source};
use crate::input::{self, CloudHsmRequest, InputError, Request, TrustAnchor};
use crate::meta::{self, StoreKind};
use crate::report::{human, Report, Target};
use crate::runner::{self, Selection};
use clap::{Args, Parser, Subcommand, ValueEnum};
use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};
use secrecy::SecretString;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::time::Duration;

pub const EXIT_OK: i32 = 0;
pub const EXIT_FAIL: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_INCOMPLETE: i32 = 3;

/// Environment variable that may hold the kmsuser password.
pub const PASSWORD_ENV: &str = "CKS_KEY_STORE_PASSWORD";

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
pub enum OutputFormat {
    Table,
    Json,
    Junit,
    Sarif,
    Markdown,
    Html,
    Csv,
}

impl OutputFormat {
    /// The format a report file's extension names.
    pub fn from_path(p: &std::path::Path) -> Option<OutputFormat> {
        let ext = p.extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "json" => OutputFormat::Json,
            "xml" | "junit" => OutputFormat::Junit,
            "sarif" => OutputFormat::Sarif,
            "md" | "markdown" => OutputFormat::Markdown,
            "html" | "htm" => OutputFormat::Html,
            "csv" => OutputFormat::Csv,
            "txt" => OutputFormat::Table,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum SeverityArg {
    Critical,
    High,
    Medium,
    Low,
    Info,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum StatusArg {
    Pass,
    Fail,
    Warn,
    Error,
    Skip,
    Manual,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum PolicyKind {
    Cloudhsm,
    Xks,
    All,
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
    pub output: OutputFormat,
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
    pub severity: Option<SeverityArg>,
    /// Show only checks with these statuses (comma-separated)
    #[arg(long, global = true, value_enum, value_delimiter = ',')]
    pub status: Vec<StatusArg>,
    /// No progress display on standard error
    #[arg(long, global = true)]
    pub no_progress: bool,
    #[arg(skip)]
    pub progress: Option<indicatif::ProgressBar>,
    /// Run at most N checks at once, across all the stores and Regions of a scan, and make at most N AWS calls at once (default: all at once)
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub jobs: Option<u32>,
    /// The --jobs permits, shared by every run of checks in this process.
    #[arg(skip = runner::permits(usize::MAX))]
    pub permits: std::sync::Arc<tokio::sync::Semaphore>,
    /// On standard error: -v how often each fact was fetched; -vv also what the XKS probe saw
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

fn parse_timeout(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 3600.0 => Ok(v),
        _ => Err("expected a number of seconds between 0 and 3600".into()),
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Predict whether CreateCustomKeyStore will succeed, and why not
    Preflight(PreflightArgs),
    /// List every check: id, title, kind, and the exceptions and codes it maps to
    Checks,
    /// Record the facts a pre-flight reads, as AWS CLI JSON files for --snapshot
    Snapshot(SnapshotArgs),
    /// Find out why an existing key store is FAILED (or check a CONNECTED one)
    Diagnose(DiagnoseArgs),
    /// Diagnose every custom key store of the account in one or more Regions (and accounts)
    Scan(ScanArgs),
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
        kind: PolicyKind,
    },
    /// Explain a KMS exception, ConnectionErrorCode, ConnectionState or check id
    Explain {
        /// e.g. IncorrectTrustAnchorException, SUBNET_NOT_FOUND, cloudhsm.hsms.two-az
        name: String,
    },
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_required = false)]
pub struct PreflightArgs {
    /// The request document `aws kms create-custom-key-store --cli-input-json` takes (a file path or file://path)
    #[arg(long, value_name = "FILE")]
    pub cli_input_json: Option<String>,
    #[command(flatten)]
    pub secrets: PasswordArgs,
    /// JSON output of `cloudhsm-cli user list`, for the kmsuser checks
    #[arg(long, value_name = "FILE")]
    pub cloudhsm_users: Option<String>,
    #[command(flatten)]
    pub xks: XksProbeArgs,
    #[command(subcommand)]
    pub kind: Option<PreflightKind>,
}

/// How to reach and authenticate to an XKS proxy (also usable with --cli-input-json).
#[derive(Debug, Args, Clone, Default)]
pub struct XksProbeArgs {
    /// Read the XKS proxy secret access key (RawSecretAccessKey) from this file; it is used only
    /// to sign requests and is never printed. Also: --secret-stdin, or the
    /// CKS_XKS_SECRET_ACCESS_KEY environment variable. Never a plain argument.
    #[arg(long, value_name = "FILE", conflicts_with = "secret_stdin")]
    pub secret_file: Option<String>,
    /// Read the XKS proxy secret access key from standard input (see --secret-file)
    #[arg(long)]
    pub secret_stdin: bool,
    /// Connect to ADDR:PORT instead of HOST:443, keeping HOST for SNI, the certificate and the
    /// signature (curl's --connect-to): HOST:443:ADDR:PORT
    #[arg(long, value_name = "HOST:443:ADDR:PORT")]
    pub connect_to: Option<crate::input::ConnectTo>,
    /// Also trust this CA (PEM) for the proxy's certificate: for lab setups only; KMS itself will
    /// not trust it, and the report says so
    #[arg(long, value_name = "FILE")]
    pub trust_ca: Vec<String>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct PasswordArgs {
    /// Read the kmsuser password (KeyStorePassword) from this file. It is only used to check its
    /// format (7–32 characters; letters and digits advised) and is never printed. Also:
    /// --password-stdin, or the CKS_KEY_STORE_PASSWORD environment variable. Never a plain argument.
    #[arg(long, value_name = "FILE", conflicts_with = "password_stdin")]
    pub password_file: Option<String>,
    /// Read the kmsuser password from standard input (see --password-file)
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Regions to scan (comma-separated or repeated); default: the configured Region
    #[arg(long, value_delimiter = ',', value_name = "REGION")]
    pub regions: Vec<String>,
    /// Every Region enabled for the account (ec2:DescribeRegions)
    #[arg(long, conflicts_with = "regions")]
    pub all_regions: bool,
    /// AWS profiles (accounts) to scan into one report (comma-separated or repeated)
    #[arg(long, value_delimiter = ',', value_name = "PROFILE")]
    pub profiles: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DiagnoseArgs {
    /// The custom key store id (cks-...)
    #[arg(value_name = "STORE_ID", required_unless_present = "name")]
    pub id: Option<String>,
    /// Find the store by its name instead
    #[arg(long, value_name = "NAME", conflicts_with = "id")]
    pub name: Option<String>,
    /// JSON output of `cloudhsm-cli user list`, evidence for the kmsuser codes
    #[arg(long, value_name = "FILE")]
    pub cloudhsm_users: Option<String>,
    #[command(flatten)]
    pub xks: XksProbeArgs,
}

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    #[command(subcommand)]
    pub kind: SnapshotKind,
}

#[derive(Debug, Subcommand)]
pub enum SnapshotKind {
    /// The cluster, its security group and subnets, the account's key stores and their clusters
    Cloudhsm {
        /// The CloudHSM cluster id (cluster-[2-7a-zA-Z]{11,16})
        #[arg(long, value_name = "ID")]
        cluster_id: String,
        /// Directory to write the files to (created if missing)
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// The account's key stores and the caller identity; with a VPC endpoint service name also
    /// the service's configuration, permissions, consumer view and load balancers
    Xks {
        #[arg(long, value_name = "NAME")]
        vpc_endpoint_service_name: Option<String>,
        #[arg(long, value_name = "ACCOUNT")]
        vpc_endpoint_service_owner: Option<String>,
        /// Directory to write the files to (created if missing)
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum PreflightKind {
    /// A CloudHSM key store (CustomKeyStoreType AWS_CLOUDHSM)
    Cloudhsm(CloudHsmArgs),
    /// An external key store (CustomKeyStoreType EXTERNAL_KEY_STORE): probes the XKS proxy as KMS does
    Xks(XksArgs),
}

#[derive(Debug, Args)]
pub struct XksArgs {
    /// XksProxyUriEndpoint: https:// and the proxy's DNS name, no port, no path
    #[arg(long, value_name = "URL")]
    pub uri_endpoint: Option<String>,
    /// XksProxyUriPath, e.g. /example-prefix/kms/xks/v1
    #[arg(long, value_name = "PATH")]
    pub uri_path: Option<String>,
    /// XksProxyConnectivity
    #[arg(long, value_name = "PUBLIC_ENDPOINT|VPC_ENDPOINT_SERVICE")]
    pub connectivity: Option<String>,
    /// XksProxyAuthenticationCredential.AccessKeyId
    #[arg(long, value_name = "ID")]
    pub access_key_id: Option<String>,
    /// XksProxyVpcEndpointServiceName (with --connectivity VPC_ENDPOINT_SERVICE)
    #[arg(long, value_name = "NAME")]
    pub vpc_endpoint_service_name: Option<String>,
    /// XksProxyVpcEndpointServiceOwner: the account that owns the endpoint service, when it is not
    /// this one (cross-account endpoint services)
    #[arg(long, value_name = "ACCOUNT")]
    pub vpc_endpoint_service_owner: Option<String>,
    /// The proxy configuration file the KMS console takes (endpoint, path, connectivity, credential)
    #[arg(long, value_name = "FILE")]
    pub proxy_config: Option<String>,
    /// The key store name you will give CreateCustomKeyStore
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    #[command(flatten)]
    pub probe: XksProbeArgs,
}

#[derive(Debug, Args)]
pub struct CloudHsmArgs {
    /// The CloudHSM cluster id (cluster-[2-7a-zA-Z]{11,16})
    #[arg(long, value_name = "ID")]
    pub cluster_id: String,
    /// customerCA.crt: the PEM CA certificate that signed the cluster certificate (path or file://path)
    #[arg(long, value_name = "FILE")]
    pub trust_anchor: String,
    /// The key store name you will give CreateCustomKeyStore
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    #[command(flatten)]
    pub secrets: PasswordArgs,
    /// JSON output of `cloudhsm-cli user list`, for the kmsuser checks
    #[arg(long, value_name = "FILE")]
    pub cloudhsm_users: Option<String>,
}

/// The outcome of a command: what to print and the exit code.
pub struct Done {
    pub stdout: String,
    pub code: i32,
}

/// Environment variable that may hold the XKS proxy secret access key.
pub const XKS_SECRET_ENV: &str = "CKS_XKS_SECRET_ACCESS_KEY";

/// Reads a secret from a file, standard input or an environment variable, never from an
/// argument value.
fn read_secret(
    file: Option<&str>,
    file_flag: &str,
    stdin: bool,
    stdin_flag: &str,
    env: &str,
) -> Result<Option<SecretString>, InputError> {
    if let Some(f) = file {
        let text = input::read_text_file(file_flag, f)?;
        return Ok(Some(input::secret_from_text(text)));
    }
    if stdin {
        let mut text = String::new();
        std::io::stdin()
            .take(64 * 1024)
            .read_to_string(&mut text)
            .map_err(|e| {
                InputError(format!("{stdin_flag}: could not read standard input ({e})"))
            })?;
        return Ok(Some(input::secret_from_text(text)));
    }
    if let Ok(v) = std::env::var(env) {
        return Ok(Some(input::secret_from_text(v)));
    }
    Ok(None)
}

fn read_password(args: &PasswordArgs) -> Result<Option<SecretString>, InputError> {
    read_secret(
        args.password_file.as_deref(),
        "--password-file",
        args.password_stdin,
        "--password-stdin",
        PASSWORD_ENV,
    )
}

fn read_xks_secret(args: &XksProbeArgs) -> Result<Option<SecretString>, InputError> {
    read_secret(
        args.secret_file.as_deref(),
        "--secret-file",
        args.secret_stdin,
        "--secret-stdin",
        XKS_SECRET_ENV,
    )
}

/// One value from two places: both given is an error unless they agree.
fn merge(field: &str, a: Option<String>, b: Option<String>) -> Result<Option<String>, InputError> {
    match (a, b) {
        (Some(x), Some(y)) if x != y => Err(InputError(format!(
            "{field} is given twice with different values (in a file and on the command line); keep one"
        ))),
        (a, b) => Ok(a.or(b)),
    }
}

fn merge_secret(
    file_value: Option<SecretString>,
    cli_value: Option<SecretString>,
    what: &str,
) -> Result<Option<SecretString>, InputError> {
    match (file_value, cli_value) {
        (Some(_), Some(_)) => Err(InputError(format!(
            "{what} is given twice: in the request document and by --secret-file/--secret-stdin/the environment; keep one"
        ))),
        (a, b) => Ok(a.or(b)),
    }
}

fn xks_request(
    from_file: input::XksParams,
    cli: Option<&XksArgs>,
    probe: &XksProbeArgs,
) -> Result<Request, InputError> {
    let (name, endpoint, path, connectivity, akid, vpce_name, vpce_owner) = match cli {
        Some(a) => (
            a.name.clone(),
            a.uri_endpoint.clone(),
            a.uri_path.clone(),
            a.connectivity.clone(),
            a.access_key_id.clone(),
            a.vpc_endpoint_service_name.clone(),
            a.vpc_endpoint_service_owner.clone(),
        ),
        None => (None, None, None, None, None, None, None),
    };
    let vpc_endpoint_service_name = merge(
        "XksProxyVpcEndpointServiceName",
        from_file.vpc_endpoint_service_name,
        vpce_name,
    )?;
    let vpc_endpoint_service_owner = merge(
        "XksProxyVpcEndpointServiceOwner",
        from_file.vpc_endpoint_service_owner,
        vpce_owner,
    )?;
    let name = merge("CustomKeyStoreName", from_file.name, name)?;
    let uri_endpoint = merge("XksProxyUriEndpoint", from_file.uri_endpoint, endpoint)?
        .ok_or_else(|| InputError::new("the XksProxyUriEndpoint is missing (--uri-endpoint)"))?;
    let uri_path = merge("XksProxyUriPath", from_file.uri_path, path)?
        .ok_or_else(|| InputError::new("the XksProxyUriPath is missing (--uri-path)"))?;
    let connectivity = merge("XksProxyConnectivity", from_file.connectivity, connectivity)?
        .unwrap_or_else(|| "PUBLIC_ENDPOINT".to_string());
    match connectivity.as_str() {
        "PUBLIC_ENDPOINT" | "VPC_ENDPOINT_SERVICE" => {}
        other => {
            return Err(InputError(format!(
                "XksProxyConnectivity {:?} is neither PUBLIC_ENDPOINT nor VPC_ENDPOINT_SERVICE",
                other.chars().take(40).collect::<String>()
            )))
        }
    }
    let access_key_id = merge("AccessKeyId", from_file.access_key_id, akid)?;
    let secret = merge_secret(
        from_file.secret,
        read_xks_secret(probe)?,
        "RawSecretAccessKey",
    )?;
    let trust_ca = read_trust_ca(&probe.trust_ca)?;
    Ok(Request::Xks(input::XksRequest {
        name,
        uri_endpoint,
        uri_path,
        connectivity,
        vpc_endpoint_service_name,
        vpc_endpoint_service_owner,
        access_key_id,
        secret,
        connect_to: probe.connect_to.clone(),
        trust_ca,
        region: String::new(),
        timeout: Duration::from_secs(10),
    }))
}

/// Builds the request from the command line: bad input is an [`InputError`] (exit 2).
pub fn build_request(args: &PreflightArgs) -> Result<Request, InputError> {
    match (&args.cli_input_json, &args.kind) {
        (Some(doc), _) => match input::parse_cli_input(doc)? {
            input::CliInputRequest::CloudHsm {
                name,
                cluster_id,
                trust_anchor,
                password,
            } => {
                let cli_password = read_password(&args.secrets)?;
                let password = match (password, cli_password) {
                    (Some(_), Some(_)) => {
                        return Err(InputError::new(
                            "the password is given twice: in --cli-input-json (KeyStorePassword) and on the command line; keep one",
                        ))
                    }
                    (a, b) => a.or(b),
                };
                let users = args
                    .cloudhsm_users
                    .as_deref()
                    .map(input::load_users)
                    .transpose()?;
                Ok(Request::CloudHsm(CloudHsmRequest {
                    name,
                    cluster_id,
                    trust_anchor,
                    password,
                    users,
                }))
            }
            input::CliInputRequest::Xks(params) => xks_request(params, None, &args.xks),
        },
        (None, Some(PreflightKind::Cloudhsm(a))) => {
            input::validate_cluster_id(&a.cluster_id)?;
            let text = input::read_text_file("--trust-anchor", &a.trust_anchor)?;
            let origin = a
                .trust_anchor
                .strip_prefix("file://")
                .unwrap_or(&a.trust_anchor);
            let trust_anchor = TrustAnchor::from_text(origin, text)?;
            let users = a
                .cloudhsm_users
                .as_deref()
                .map(input::load_users)
                .transpose()?;
            Ok(Request::CloudHsm(CloudHsmRequest {
                name: a.name.clone(),
                cluster_id: a.cluster_id.clone(),
                trust_anchor,
                password: read_password(&a.secrets)?,
                users,
            }))
        }
        (None, Some(PreflightKind::Xks(a))) => {
            let from_file = match &a.proxy_config {
                Some(f) => input::parse_proxy_config(f)?,
                None => input::XksParams::default(),
            };
            xks_request(from_file, Some(a), &a.probe)
        }
        (None, None) => Err(InputError::new(
            "preflight needs a key store kind (`preflight cloudhsm ...`, `preflight xks ...`) or --cli-input-json FILE",
        )),
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

fn selected(global: &Global, kind: StoreKind) -> Result<Vec<&'static Check>, InputError> {
    let sel = Selection {
        only: global.only.clone(),
        skip: global.skip.clone(),
    };
    let ids: Vec<&str> = checks::registry().iter().map(|c| c.id).collect();
    sel.validate(&ids).map_err(InputError)?;
    let chosen: Vec<&'static Check> = checks::registry()
        .iter()
        .filter(|c| sel.includes(c.id))
        .filter(|c| meta::get(c.id).is_some_and(|m| m.kind == kind || m.kind == StoreKind::Any))
        .collect();
    if chosen.is_empty() {
        return Err(InputError::new(
            "--only/--skip leave no check to run for this key store kind",
        ));
    }
    Ok(chosen)
}

async fn source(global: &Global) -> Result<(Source, Option<String>), InputError> {
    match &global.snapshot {
        Some(dir) => {
            let rec = Recorded::load_dir(dir).map_err(|e| InputError(e.to_string()))?;
            Ok((Source::Recorded(rec), global.region.clone()))
        }
        None => {
            let opts = LiveOptions {
                profile: global.profile.clone(),
                region: global.region.clone(),
                endpoint_url: global.endpoint_url.clone(),
                timeout: Duration::from_secs_f64(global.timeout * 0.9),
            };
            let live = LiveSource::connect(&opts)
                .await
                .map_err(|e| InputError(e.0))?;
            let region = live.region().to_string();
            Ok((Source::Live(live), Some(region)))
        }
    }
}

async fn preflight(global: &Global, args: &PreflightArgs) -> Result<Done, InputError> {
    let mut request = build_request(args)?;
    let kind = match &request {
        Request::Xks(_) => StoreKind::Xks,
        _ => StoreKind::Cloudhsm,
    };
    let checks = selected(global, kind)?;
    let (source, region) = source(global).await?;
    if let Request::Xks(x) = &mut request {
        x.region = region.clone().ok_or_else(|| {
            InputError::new(
                "an external key store pre-flight needs the key store's Region (--region): it goes into the SigV4 scope",
            )
        })?;
        // The whole probe stays inside the checks' timeout.
        x.timeout = Duration::from_secs_f64(global.timeout * 0.8);
    }
    let xks = request.xks();
    let target = Target {
        kind: if xks.is_some() { "xks" } else { "cloudhsm" }.into(),
        operation: "CreateCustomKeyStore".into(),
        custom_key_store_name: request.name().map(str::to_string),
        cloud_hsm_cluster_id: request.cluster_id().map(str::to_string),
        trust_anchor: request.cloudhsm().map(|r| r.trust_anchor.origin.clone()),
        xks_proxy_uri_endpoint: xks.map(|x| x.uri_endpoint.clone()),
        xks_proxy_uri_path: xks.map(|x| x.uri_path.clone()),
        xks_proxy_connectivity: xks.map(|x| x.connectivity.clone()),
        connect_to: xks.and_then(|x| x.connect_addr()).map(|a| a.to_string()),
        region,
        source: match xks {
            Some(_) => format!("{}; the proxy probed live", source.describe()),
            None => source.describe(),
        },
    };
    if let Some(x) = xks {
        if x.connect_to.is_some() && x.connect_addr().is_none() {
            return Err(InputError(format!(
                "--connect-to does not apply to {}:443 (its HOST and first PORT must match the endpoint)",
                x.host().unwrap_or_else(|| x.uri_endpoint.clone())
            )));
        }
    }
    let facts = Facts::new(request, source);
    let results = run_checks(global, facts.clone(), &checks).await;
    let mut report = Report::new(target, results);
    report.latency = facts
        .xks_probe_if_run()
        .map(crate::report::Latency::from_probe);
    if global.verbose > 0 {
        eprintln!("cks-doctor: facts from {}", facts.source().describe());
        for (what, n) in facts.counts.snapshot() {
            eprintln!("cks-doctor: {what}: fetched {n} time(s)");
        }
        if let Some(p) = facts.xks_probe_if_run() {
            eprintln!(
                "cks-doctor: XKS probe of {}: {} TLS handshake(s), signed requests: {}",
                p.url, p.handshakes, p.signed
            );
            if global.verbose > 1 {
                // The probe report holds no secret: the key is only ever used to sign.
                eprintln!("cks-doctor: {p:#?}");
            }
        }
    }
    finish(global, vec![report], None)
}

/// Applies --severity and --status to what is shown (the exit code keeps every check).
fn filtered(global: &Global, report: &Report) -> Report {
    if global.severity.is_none() && global.status.is_empty() {
        return report.clone();
    }
    let min = global.severity.map(|s| match s {
        SeverityArg::Critical => crate::meta::Severity::Critical,
        SeverityArg::High => crate::meta::Severity::High,
        SeverityArg::Medium => crate::meta::Severity::Medium,
        SeverityArg::Low => crate::meta::Severity::Low,
        SeverityArg::Info => crate::meta::Severity::Info,
    });
    let statuses: Vec<crate::checks::Status> = global
        .status
        .iter()
        .map(|s| match s {
            StatusArg::Pass => crate::checks::Status::Pass,
            StatusArg::Fail => crate::checks::Status::Fail,
            StatusArg::Warn => crate::checks::Status::Warn,
            StatusArg::Error => crate::checks::Status::Error,
            StatusArg::Skip => crate::checks::Status::Skip,
            StatusArg::Manual => crate::checks::Status::Manual,
        })
        .collect();
    let checks = report
        .checks
        .iter()
        .filter(|c| min.is_none_or(|m| c.severity.is_none_or(|s| s <= m)))
        .filter(|c| statuses.is_empty() || statuses.contains(&c.status))
        .cloned()
        .collect();
    // The summary and verdict keep covering every check: the filters only hide rows.
    Report {
        checks,
        ..report.clone()
    }
}

/// Renders reports in one format. `scan_errors` is Some for a scan (many stores).
fn render_as(
    global: &Global,
    format: OutputFormat,
    reports: &[Report],
    scan_errors: Option<&[ScanError]>,
) -> String {
    match (format, scan_errors) {
        (OutputFormat::Json, None) if reports.len() == 1 => reports[0].to_json() + "\n",
        (OutputFormat::Json, errors) => {
            serde_json::to_string_pretty(&serde_json::json!({
                "schema_version": crate::report::SCHEMA_VERSION,
                "tool": {"name": env!("CARGO_PKG_NAME"), "version": env!("CARGO_PKG_VERSION")},
                "reports": reports,
                "errors": errors.unwrap_or_default(),
            }))
            .expect("serializes")
                + "\n"
        }
        (OutputFormat::Table, Some(errors)) => scan_table(reports, errors),
        (OutputFormat::Table, None) => reports
            .iter()
            .map(|r| {
                human::render(
                    r,
                    human::Style {
                        color: use_color(global.color),
                    },
                )
            })
            .collect::<Vec<_>>()
            .join("\n"),
        (format, errors) => {
            // A Region or account that could not be scanned is a report of its own, with one
            // "could not check" row, so that no format drops it.
            let mut all = reports.to_vec();
            all.extend(errors.unwrap_or_default().iter().map(scan_error_report));
            match format {
                OutputFormat::Junit => crate::report::junit::render(&all),
                OutputFormat::Sarif => crate::report::sarif::render(&all),
                OutputFormat::Markdown => crate::report::markdown::render(&all),
                OutputFormat::Html => crate::report::html::render(&all),
                _ => crate::report::csv::render(&all),
            }
        }
    }
}

/// Prints in --output's format, writes --report's file, and picks the exit code.
fn finish(
    global: &Global,
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
    let shown: Vec<Report> = reports.iter().map(|r| filtered(global, r)).collect();
    if let Some(path) = &global.report {
        let format = OutputFormat::from_path(path).unwrap_or(global.output);
        let text = render_as(global, format, &shown, scan_errors);
        std::fs::write(path, text)
            .map_err(|e| InputError(format!("--report {}: {e}", path.display())))?;
    }
    Ok(Done {
        stdout: render_as(global, global.output, &shown, scan_errors),
        code,
    })
}

/// Source for one profile and Region (scan), or the global ones.
async fn source_for(
    global: &Global,
    profile: Option<&str>,
    region: Option<&str>,
) -> Result<(Source, Option<String>), InputError> {
    match &global.snapshot {
        Some(_) => source(global).await,
        None => {
            let opts = LiveOptions {
                profile: profile
                    .map(str::to_string)
                    .or_else(|| global.profile.clone()),
                region: region.map(str::to_string).or_else(|| global.region.clone()),
                endpoint_url: global.endpoint_url.clone(),
                timeout: Duration::from_secs_f64(global.timeout * 0.9),
            };
            let live = LiveSource::connect(&opts)
                .await
                .map_err(|e| InputError(e.0))?;
            let region = live.region().to_string();
            Ok((Source::Live(live), Some(region)))
        }
    }
}

fn read_trust_ca(files: &[String]) -> Result<Vec<crate::certs::Cert>, InputError> {
    let mut trust_ca = Vec::new();
    for f in files {
        let text = input::read_text_file("--trust-ca", f)?;
        let origin = f.strip_prefix("file://").unwrap_or(f);
        trust_ca.extend(
            crate::certs::parse_pem_chain(&text)
                .map_err(|e| InputError(format!("--trust-ca {origin}: {e}")))?,
        );
    }
    Ok(trust_ca)
}

/// Diagnoses one existing store: every check that applies to it, and the diagnosis.
async fn diagnose_store(
    global: &Global,
    source: Source,
    region: Option<String>,
    stores: Vec<crate::facts::model::CustomKeyStore>,
    store: crate::facts::model::CustomKeyStore,
    extras: crate::diagnose::Extras,
) -> Result<Report, InputError> {
    let kind = if store.is_cloudhsm() {
        StoreKind::Cloudhsm
    } else {
        StoreKind::Xks
    };
    let checks: Vec<&'static Check> = selected(global, kind)?
        .into_iter()
        .filter(|c| !crate::diagnose::CREATE_ONLY.contains(&c.id))
        .collect();
    let request = crate::diagnose::request_for(&store, extras)
        .map_err(|e| InputError(format!("{}: {e}", store.custom_key_store_id)))?;
    let xks = request.xks();
    let target = Target {
        kind: if xks.is_some() { "xks" } else { "cloudhsm" }.into(),
        operation: "ConnectCustomKeyStore".into(),
        custom_key_store_name: Some(store.custom_key_store_name.clone()),
        cloud_hsm_cluster_id: request.cluster_id().map(str::to_string),
        trust_anchor: request
            .cloudhsm()
            .map(|_| "the store's TrustAnchorCertificate".to_string()),
        xks_proxy_uri_endpoint: xks.map(|x| x.uri_endpoint.clone()),
        xks_proxy_uri_path: xks.map(|x| x.uri_path.clone()),
        xks_proxy_connectivity: xks.map(|x| x.connectivity.clone()),
        connect_to: xks.and_then(|x| x.connect_addr()).map(|a| a.to_string()),
        region,
        source: source.describe(),
    };
    let facts = Facts::with_key_stores(request, source, stores);
    let results = run_checks(global, facts.clone(), &checks).await;
    let diagnosis = crate::diagnose::diagnose(&store, &results);
    let mut report = Report::new(target, results);
    // A FAILED store whose cause no check confirms is not "no failure found".
    if let Some(code) = &diagnosis.connection_error_code {
        if diagnosis.confirmed_by.is_empty()
            && report.verdict.outlook == crate::report::Outlook::NoFailureFound
        {
            report.verdict.outlook = crate::report::Outlook::Incomplete;
            report.verdict.connection_error_codes = vec![code.clone()];
            report.verdict.text = diagnosis.text.clone();
        }
    }
    report.latency = facts
        .xks_probe_if_run()
        .map(crate::report::Latency::from_probe);
    report.diagnosis = Some(diagnosis);
    Ok(report)
}

async fn diagnose(global: &Global, args: &DiagnoseArgs) -> Result<Done, InputError> {
    // Everything the operator supplies is read before any network call.
    let users = args
        .cloudhsm_users
        .as_deref()
        .map(input::load_users)
        .transpose()?;
    let secret = read_xks_secret(&args.xks)?;
    let trust_ca = read_trust_ca(&args.xks.trust_ca)?;
    let (source, region) = source(global).await?;
    let stores = Facts::read_key_stores(&source).await.map_err(|e| {
        InputError(format!(
            "cannot read the account's custom key stores, so there is nothing to diagnose: {e}"
        ))
    })?;
    let store = crate::diagnose::find(&stores, args.id.as_deref(), args.name.as_deref())
        .map_err(InputError)?
        .clone();
    if !store.is_cloudhsm() && region.is_none() {
        return Err(InputError::new(
            "diagnosing an external key store needs its Region (--region): it goes into the SigV4 scope",
        ));
    }
    let extras = crate::diagnose::Extras {
        secret,
        users,
        connect_to: args.xks.connect_to.clone(),
        trust_ca,
        region: region.clone().unwrap_or_default(),
        timeout: Duration::from_secs_f64(global.timeout * 0.8),
    };
    let report = diagnose_store(global, source, region, stores, store, extras).await?;
    finish(global, vec![report], None)
}

/// How many stores of a Region a scan diagnoses at once.
const SCAN_STORES_AT_ONCE: usize = 32;

/// One place scan could not look at, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ScanError {
    pub profile: Option<String>,
    pub region: Option<String>,
    pub error: String,
}

async fn scan_one_region(
    global: &Global,
    profile: Option<String>,
    region: Option<String>,
) -> Result<(Vec<Report>, Vec<ScanError>), ScanError> {
    let fail = |e: String| ScanError {
        profile: profile.clone(),
        region: region.clone(),
        error: e,
    };
    let (source, resolved) = source_for(global, profile.as_deref(), region.as_deref())
        .await
        .map_err(|e| fail(e.0))?;
    let stores = Facts::read_key_stores(&source)
        .await
        .map_err(|e| fail(e.to_string()))?;
    // Stores at once: the AWS facts are read for all of them together (below), so this
    // bounds the XKS proxies probed at the same time; --jobs bounds the checks, across stores.
    let jobs = SCAN_STORES_AT_ONCE;
    // Stores of a kind that --only/--skip leave no check for are not scanned.
    let cloudhsm_checks = selected(global, StoreKind::Cloudhsm).ok();
    let xks_checks = selected(global, StoreKind::Xks).ok();
    let checks_for = |s: &crate::facts::model::CustomKeyStore| {
        if s.is_cloudhsm() {
            cloudhsm_checks.as_deref()
        } else {
            xks_checks.as_deref()
        }
    };
    let scanned: Vec<_> = stores
        .iter()
        .filter(|s| checks_for(s).is_some())
        .cloned()
        .collect();
    // Every fact the stores' checks read, for all the stores at once: one call per kind of
    // fact (per batch AWS allows), not one per store.
    let source = match source {
        Source::Live(_) => {
            let actions = meta::actions_of(
                scanned
                    .iter()
                    .filter_map(checks_for)
                    .flatten()
                    .map(|c| c.id)
                    .filter(|id| !crate::diagnose::CREATE_ONLY.contains(id)),
            );
            let shared =
                crate::facts::shared::Shared::fetch(source, &scanned, &actions, &global.permits)
                    .await;
            Source::Shared(std::sync::Arc::new(shared))
        }
        other => other,
    };
    let work = scanned.into_iter().map(|store| {
        let source = source.clone();
        let stores = stores.clone();
        let resolved = resolved.clone();
        async move {
            let extras = crate::diagnose::Extras {
                region: resolved.clone().unwrap_or_default(),
                timeout: Duration::from_secs_f64(global.timeout * 0.8),
                ..Default::default()
            };
            let id = store.custom_key_store_id.clone();
            diagnose_store(global, source, resolved, stores, store, extras)
                .await
                .map_err(|e| format!("{id}: {}", e.0))
        }
    });
    use futures::StreamExt;
    let results: Vec<Result<Report, String>> = futures::stream::iter(work)
        .buffered(jobs.max(1))
        .collect()
        .await;
    // One store that cannot be diagnosed does not hide the others.
    let mut reports = Vec::new();
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(report) => reports.push(report),
            Err(e) => errors.push(fail(e)),
        }
    }
    Ok((reports, errors))
}

async fn scan(global: &Global, args: &ScanArgs) -> Result<Done, InputError> {
    let profiles: Vec<Option<String>> = if args.profiles.is_empty() {
        vec![None]
    } else {
        args.profiles.iter().cloned().map(Some).collect()
    };
    let mut targets: Vec<(Option<String>, Option<String>)> = Vec::new();
    for p in &profiles {
        let regions: Vec<Option<String>> = if args.all_regions {
            if global.snapshot.is_some() {
                return Err(InputError::new(
                    "--all-regions needs the live AWS APIs (a snapshot holds one Region)",
                ));
            }
            let (source, _) = source_for(global, p.as_deref(), None).await?;
            let Source::Live(live) = &source else {
                return Err(InputError::new("--all-regions needs the live AWS APIs"));
            };
            live.describe_regions()
                .await
                .map_err(|e| InputError(format!("--all-regions: {e}")))?
                .into_iter()
                .map(Some)
                .collect()
        } else if args.regions.is_empty() {
            vec![None]
        } else {
            args.regions.iter().cloned().map(Some).collect()
        };
        targets.extend(regions.into_iter().map(|r| (p.clone(), r)));
    }
    let runs = targets
        .into_iter()
        .map(|(p, r)| scan_one_region(global, p, r));
    let outcomes = futures::future::join_all(runs).await;
    let mut reports = Vec::new();
    let mut errors = Vec::new();
    for o in outcomes {
        match o {
            Ok((r, e)) => {
                reports.extend(r);
                errors.extend(e);
            }
            Err(e) => errors.push(e),
        }
    }
    finish(global, reports, Some(&errors))
}

fn scan_error_report(e: &ScanError) -> Report {
    let place = format!(
        "{}{}",
        e.region.as_deref().unwrap_or("the default Region"),
        e.profile
            .as_deref()
            .map(|p| format!(" (profile {p})"))
            .unwrap_or_default()
    );
    let check = crate::report::CheckResult {
        id: "scan.region".into(),
        title: format!("Key stores of {place} could be read"),
        area: "Account".into(),
        severity: None,
        advisory: false,
        status: crate::checks::Status::Error,
        message: format!("could not check: {}", e.error),
        evidence: Vec::new(),
        kms_exceptions: Vec::new(),
        connection_error_codes: Vec::new(),
        remediation: Some("Fix what stopped the scan (permissions: kms:DescribeCustomKeyStores) and run it again.".into()),
        duration_ms: 0,
    };
    Report::new(
        Target {
            kind: "scan".into(),
            operation: "ConnectCustomKeyStore".into(),
            region: e.region.clone(),
            source: place,
            ..Default::default()
        },
        vec![check],
    )
}

fn scan_table(reports: &[Report], errors: &[ScanError]) -> String {
    let mut table = Table::new();
    let arrangement = if std::io::stdout().is_terminal() {
        ContentArrangement::Dynamic
    } else {
        ContentArrangement::Disabled
    };
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(arrangement)
        .set_header(vec![
            "region",
            "store",
            "name",
            "kind",
            "state",
            "verdict",
            "failing checks",
        ]);
    for r in reports {
        let d = r.diagnosis.as_ref();
        let state = d
            .map(|d| match &d.connection_error_code {
                Some(c) => format!("{} ({c})", d.connection_state),
                None => d.connection_state.clone(),
            })
            .unwrap_or_default();
        let failing: Vec<&str> = r
            .checks
            .iter()
            .filter(|c| c.status == crate::checks::Status::Fail)
            .map(|c| c.id.as_str())
            .collect();
        let verdict = match r.exit_code() {
            EXIT_OK => "ok",
            EXIT_FAIL => "FAIL",
            _ => "incomplete",
        };
        table.add_row(vec![
            r.target.region.clone().unwrap_or_default(),
            d.map(|d| d.custom_key_store_id.clone()).unwrap_or_default(),
            r.target.custom_key_store_name.clone().unwrap_or_default(),
            r.target.kind.clone(),
            state,
            verdict.to_string(),
            failing.join("\n"),
        ]);
    }
    let mut out = format!("{table}\n{} key store(s) scanned\n", reports.len());
    for e in errors {
        out += &format!(
            "could not scan {}{}: {}\n",
            e.region.as_deref().unwrap_or("the default Region"),
            e.profile
                .as_deref()
                .map(|p| format!(" (profile {p})"))
                .unwrap_or_default(),
            e.error
        );
    }
    out
}

fn list_checks(global: &Global) -> Done {
    let all = meta::all();
    if global.output == OutputFormat::Json {
        return Done {
            stdout: serde_json::to_string_pretty(all).expect("metadata serializes") + "\n",
            code: EXIT_OK,
        };
    }
    let mut table = Table::new();
    // On a terminal, wrap titles to its width; in a pipe, never break an id or a name.
    let arrangement = if std::io::stdout().is_terminal() {
        ContentArrangement::Dynamic
    } else {
        ContentArrangement::Disabled
    };
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(arrangement)
        .set_header(vec![
            "id",
            "title",
            "kind",
            "severity",
            "KMS exceptions",
            "ConnectionErrorCodes",
        ]);
    for c in checks::registry() {
        let Some(m) = meta::get(c.id) else { continue };
        table.add_row(vec![
            m.id.clone(),
            m.title.clone(),
            format!("{:?}", m.kind).to_lowercase(),
            format!("{:?}", m.severity).to_lowercase(),
            m.kms_exceptions.join("\n"),
            m.connection_error_codes.join("\n"),
        ]);
    }
    Done {
        stdout: format!("{table}\n{} checks\n", checks::registry().len()),
        code: EXIT_OK,
    }
}

fn explain(global: &Global, name: &str) -> Result<Done, InputError> {
    let json = global.output == OutputFormat::Json;
    if let Some(m) = meta::get(name) {
        let stdout = if json {
            serde_json::to_string_pretty(m).expect("metadata serializes") + "\n"
        } else {
            let mut s = format!("{} — {}\n\n{}\n", m.id, m.title, m.description);
            if !m.kms_exceptions.is_empty() {
                s += &format!("\nKMS exceptions: {}\n", m.kms_exceptions.join(", "));
            }
            if !m.connection_error_codes.is_empty() {
                s += &format!(
                    "ConnectionErrorCodes: {}\n",
                    m.connection_error_codes.join(", ")
                );
            }
            if !m.iam_actions.is_empty() {
                s += &format!("IAM actions: {}\n", m.iam_actions.join(", "));
            }
            s += &format!("\nFix: {}\n", m.remediation);
            for r in &m.references {
                s += &format!("See: {r}\n");
            }
            s
        };
        return Ok(Done {
            stdout,
            code: EXIT_OK,
        });
    }
    if let Some(state) = codes::lookup_state(name) {
        let stdout = if json {
            serde_json::json!({"name": state.name, "kind": "connection_state", "meaning": state.meaning}).to_string() + "\n"
        } else {
            format!("{} (ConnectionState)\n\n{}\n", state.name, state.meaning)
        };
        return Ok(Done {
            stdout,
            code: EXIT_OK,
        });
    }
    let Some(code) = codes::lookup(name) else {
        let hint = codes::suggest(name)
            .map(|s| format!(" (did you mean {s}?)"))
            .unwrap_or_default();
        return Err(InputError(format!(
            "{name:?} is not a KMS exception, ConnectionErrorCode, ConnectionState or check id known to cks-doctor{hint}"
        )));
    };
    let detecting: Vec<&meta::CheckMeta> = meta::all()
        .iter()
        .filter(|m| {
            m.kms_exceptions
                .iter()
                .chain(&m.connection_error_codes)
                .any(|n| n == code.name)
        })
        .collect();
    if json {
        let v = serde_json::json!({
            "code": code,
            "checks": detecting.iter().map(|m| serde_json::json!({"id": m.id, "title": m.title})).collect::<Vec<_>>(),
        });
        return Ok(Done {
            stdout: serde_json::to_string_pretty(&v).expect("serializes") + "\n",
            code: EXIT_OK,
        });
    }
    let kind = match code.kind {
        codes::CodeKind::Exception => "exception",
        codes::CodeKind::ConnectionErrorCode => "ConnectionErrorCode",
    };
    let mut s = format!(
        "{} ({kind}; {})\n\n{}\n",
        code.name,
        code.operations.join(", "),
        code.meaning
    );
    let list = |title: &str, items: &[&str]| -> String {
        if items.is_empty() {
            return String::new();
        }
        let mut t = format!("\n{title}:\n");
        for (i, x) in items.iter().enumerate() {
            t += &format!("  {}. {x}\n", i + 1);
        }
        t
    };
    s += &list("Causes", code.causes);
    s += &list("Fix", code.fix);
    s += &list("Notes", code.notes);
    if detecting.is_empty() {
        s += "\nNo check of this version detects it.\n";
    } else {
        s += "\nChecks that detect it:\n";
        for m in detecting {
            s += &format!("  {} — {}\n", m.id, m.title);
        }
    }
    Ok(Done {
        stdout: s,
        code: EXIT_OK,
    })
}

async fn snapshot(global: &Global, args: &SnapshotArgs) -> Result<Done, InputError> {
    if global.snapshot.is_some() {
        return Err(InputError::new(
            "snapshot records live facts: it cannot read from --snapshot",
        ));
    }
    let (request, out) = match &args.kind {
        SnapshotKind::Cloudhsm { cluster_id, out } => {
            input::validate_cluster_id(cluster_id)?;
            (
                Request::ClusterFacts {
                    cluster_id: cluster_id.clone(),
                },
                out,
            )
        }
        SnapshotKind::Xks {
            vpc_endpoint_service_name,
            vpc_endpoint_service_owner,
            out,
        } => (
            Request::Xks(input::XksRequest {
                name: None,
                uri_endpoint: String::new(),
                uri_path: String::new(),
                connectivity: if vpc_endpoint_service_name.is_some() {
                    crate::checks::vpce::VPC.to_string()
                } else {
                    "PUBLIC_ENDPOINT".to_string()
                },
                vpc_endpoint_service_name: vpc_endpoint_service_name.clone(),
                vpc_endpoint_service_owner: vpc_endpoint_service_owner.clone(),
                access_key_id: None,
                secret: None,
                connect_to: None,
                trust_ca: Vec::new(),
                region: String::new(),
                timeout: Duration::from_secs(1),
            }),
            out,
        ),
    };
    let (source, _) = source(global).await?;
    let facts = Facts::new(request, source);
    let (capture, errors) = facts.capture().await;
    let written = capture
        .write_dir(out)
        .map_err(|e| InputError(format!("--out {}: {e}", out.display())))?;
    let mut text = String::new();
    for p in &written {
        text += &format!("wrote {}\n", p.display());
    }
    for (file, e) in &errors {
        text += &format!("not recorded: {file}: {e}\n");
    }
    Ok(Done {
        stdout: text,
        code: if errors.is_empty() {
            EXIT_OK
        } else {
            EXIT_INCOMPLETE
        },
    })
}

/// Runs checks with --jobs and --timeout, ticking the progress display as each one ends.
async fn run_checks(
    global: &Global,
    facts: std::sync::Arc<Facts>,
    checks: &[&'static Check],
) -> Vec<crate::report::CheckResult> {
    // Every fact the selected checks read starts at once (not when a check first asks); with
    // --jobs, facts are read as the running checks ask, so at most that many calls are in flight.
    if global.jobs.is_none() {
        facts.prefetch(&meta::actions_of(checks.iter().map(|c| c.id)));
    }
    let on_done: Option<runner::OnDone> = global.progress.clone().map(|pb| {
        pb.inc_length(checks.len() as u64);
        std::sync::Arc::new(move |_: &str| pb.inc(1)) as runner::OnDone
    });
    runner::run_limited(
        facts,
        checks,
        Duration::from_secs_f64(global.timeout),
        global.permits.clone(),
        on_done,
    )
    .await
}

/// A progress bar on standard error, only for a person watching a terminal: never with a
/// machine format on standard output, never in a pipe, never with --no-progress.
fn progress_bar(global: &Global, command: &Command) -> Option<indicatif::ProgressBar> {
    let runs_checks = matches!(
        command,
        Command::Preflight(_) | Command::Diagnose(_) | Command::Scan(_)
    );
    if !runs_checks
        || global.no_progress
        || global.output != OutputFormat::Table
        || !std::io::stderr().is_terminal()
    {
        return None;
    }
    let pb = indicatif::ProgressBar::new(0);
    pb.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {pos}/{len} checks done {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    pb.enable_steady_tick(Duration::from_millis(120));
    Some(pb)
}

/// Runs a parsed command line.
pub async fn run(mut cli: Cli) -> Result<Done, InputError> {
    cli.global.progress = progress_bar(&cli.global, &cli.command);
    cli.global.permits = runner::permits(cli.global.jobs.map_or(usize::MAX, |j| j as usize));
    let done = dispatch(&cli).await;
    if let Some(pb) = &cli.global.progress {
        pb.finish_and_clear();
    }
    done
}

async fn dispatch(cli: &Cli) -> Result<Done, InputError> {
    match &cli.command {
        Command::Preflight(args) => preflight(&cli.global, args).await,
        Command::Diagnose(args) => diagnose(&cli.global, args).await,
        Command::Scan(args) => scan(&cli.global, args).await,
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut out = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "cks-doctor", &mut out);
            Ok(Done {
                stdout: String::from_utf8_lossy(&out).into_owned(),
                code: EXIT_OK,
            })
        }
        Command::Man => {
            use clap::CommandFactory;
            let mut out = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut out)
                .map_err(|e| InputError(format!("man page: {e}")))?;
            Ok(Done {
                stdout: String::from_utf8_lossy(&out).into_owned(),
                code: EXIT_OK,
            })
        }
        Command::Checks => Ok(list_checks(&cli.global)),
        Command::Snapshot(args) => snapshot(&cli.global, args).await,
        Command::IamPolicy { kind } => {
            let kind = match kind {
                PolicyKind::Cloudhsm => Some(StoreKind::Cloudhsm),
                PolicyKind::Xks => Some(StoreKind::Xks),
                PolicyKind::All => None,
            };
            Ok(Done {
                stdout: serde_json::to_string_pretty(&meta::iam_policy(kind)).expect("serializes")
                    + "\n",
                code: EXIT_OK,
            })
        }
        Command::Explain { name } => explain(&cli.global, name),
    }
}
