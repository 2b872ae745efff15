//! `preflight`: a CreateCustomKeyStore request, from `--cli-input-json`, the console's proxy
//! configuration file or flags, checked against the account's facts. Secrets come from a
//! file, standard input or the environment, never from an argument value.

use super::{Ctx, Done};
use cks_doctor::diagnose::{self, Extras};
use cks_doctor::engine;
use cks_doctor::input::{self, CloudHsmRequest, InputError, Request, TrustAnchor};
use clap::{Args, Subcommand};
use secrecy::SecretString;
use std::io::Read;
use std::time::Duration;

/// Environment variable that may hold the kmsuser password.
pub const PASSWORD_ENV: &str = "CKS_KEY_STORE_PASSWORD";

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
    pub connect_to: Option<cks_doctor::input::ConnectTo>,
    /// Also trust this CA (PEM) for the proxy's certificate: for lab setups only; KMS itself will
    /// not trust it, and the report says so
    #[arg(long, value_name = "FILE")]
    pub trust_ca: Vec<String>,
    /// Present this client certificate (PEM, leaf first) to a proxy that requires mutual TLS;
    /// KMS presents its own (CN cks.kms.<Region>.amazonaws.com). Needs --client-key
    #[arg(long, value_name = "FILE", requires = "client_key")]
    pub client_cert: Option<String>,
    /// The private key (PEM) of --client-cert; read from the file, never printed
    #[arg(long, value_name = "FILE", requires = "client_cert")]
    pub client_key: Option<String>,
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

#[derive(Debug, Subcommand)]
pub enum PreflightKind {
    /// A CloudHSM key store (CustomKeyStoreType AWS_CLOUDHSM)
    Cloudhsm(CloudHsmArgs),
    /// An external key store (CustomKeyStoreType EXTERNAL_KEY_STORE): probes the XKS proxy as KMS does
    Xks(XksArgs),
    /// CreateKey in an existing custom key store: the store CONNECTED, a CloudHSM store's HSMs,
    /// the key quota, and for an external key store the proxy's GetKeyMetadata for --xks-key-id
    /// (read-only: no key is created)
    Key(KeyArgs),
}

#[derive(Debug, Args)]
pub struct KeyArgs {
    /// The store the key would be created in (CustomKeyStoreId, cks-...)
    #[arg(
        long,
        value_name = "ID",
        required_unless_present = "custom_key_store_name",
        conflicts_with = "custom_key_store_name"
    )]
    pub custom_key_store_id: Option<String>,
    /// Find the store by its name instead
    #[arg(long, value_name = "NAME")]
    pub custom_key_store_name: Option<String>,
    /// XksKeyId: the external key's id in the proxy (external key stores)
    #[arg(long, value_name = "ID")]
    pub xks_key_id: Option<String>,
    #[command(flatten)]
    pub probe: XksProbeArgs,
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
    /// Also pre-flight CreateKey in the new store with this external key (XksKeyId): the
    /// proxy's GetKeyMetadata, as KMS sends it at CreateKey
    #[arg(long, value_name = "ID")]
    pub xks_key_id: Option<String>,
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

pub(super) fn read_xks_secret(args: &XksProbeArgs) -> Result<Option<SecretString>, InputError> {
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

pub(super) fn xks_request(
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
    let client_identity = read_client_identity(probe)?;
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
        client_identity,
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
        (None, Some(PreflightKind::Key(_))) => Err(InputError::new(
            "`preflight key` is about an existing store: it builds no CreateCustomKeyStore request",
        )),
        (None, None) => Err(InputError::new(
            "preflight needs a key store kind (`preflight cloudhsm ...`, `preflight xks ...`) or --cli-input-json FILE",
        )),
    }
}

/// `--client-cert` and `--client-key`, both or neither.
pub(super) fn read_client_identity(
    probe: &XksProbeArgs,
) -> Result<Option<input::ClientIdentity>, InputError> {
    let (Some(cert), Some(key)) = (&probe.client_cert, &probe.client_key) else {
        return Ok(None);
    };
    let cert_text = input::read_text_file("--client-cert", cert)?;
    let key_text = input::read_text_file("--client-key", key)?;
    input::ClientIdentity::from_pem(
        &format!("--client-cert {cert}"),
        &cert_text,
        &format!("--client-key {key}"),
        &key_text,
    )
    .map(Some)
    .map_err(InputError)
}

pub(super) fn read_trust_ca(files: &[String]) -> Result<Vec<cks_doctor::certs::Cert>, InputError> {
    let mut trust_ca = Vec::new();
    for f in files {
        let text = input::read_text_file("--trust-ca", f)?;
        let origin = f.strip_prefix("file://").unwrap_or(f);
        trust_ca.extend(
            cks_doctor::certs::parse_pem_chain(&text)
                .map_err(|e| InputError(format!("--trust-ca {origin}: {e}")))?,
        );
    }
    Ok(trust_ca)
}

pub async fn run(ctx: &Ctx, args: &PreflightArgs) -> Result<Done, InputError> {
    if let (None, Some(PreflightKind::Key(k))) = (&args.cli_input_json, &args.kind) {
        return run_key(ctx, k).await;
    }
    let xks_key_id = match &args.kind {
        Some(PreflightKind::Xks(x)) if args.cli_input_json.is_none() => x.xks_key_id.clone(),
        _ => None,
    };
    if let Some(id) = &xks_key_id {
        input::validate_xks_key_id(id)?;
    }
    let request = build_request(args)?;
    let settings = &ctx.settings;
    // The checks are selected before any network call: a bad --only is bad input.
    engine::checks_for(request.kind(), &settings.selection, engine::Stage::Create)?;
    let (source, region) = engine::open_source(settings, None, None).await?;
    let run = engine::preflight_with_key(settings, request, source, region, xks_key_id).await?;
    ctx.verbose_facts(&run.facts);
    ctx.finish(vec![run.report], None)
}

/// `preflight key`: CreateKey in an existing store.
async fn run_key(ctx: &Ctx, args: &KeyArgs) -> Result<Done, InputError> {
    let settings = &ctx.settings;
    if let Some(id) = &args.xks_key_id {
        input::validate_xks_key_id(id)?;
    }
    // Everything the operator supplies is read before any network call.
    let secret = read_xks_secret(&args.probe)?;
    let trust_ca = read_trust_ca(&args.probe.trust_ca)?;
    let client_identity = read_client_identity(&args.probe)?;
    let (source, region) = engine::open_source(settings, None, None).await?;
    let stores = engine::key_stores(&source).await?;
    let store = diagnose::find(
        &stores,
        args.custom_key_store_id.as_deref(),
        args.custom_key_store_name.as_deref(),
    )
    .cloned()
    .map_err(
        |_| match (&args.custom_key_store_id, &args.custom_key_store_name) {
            (Some(id), _) => format!("with the id {id}"),
            (None, Some(name)) => format!("named {name:?}"),
            (None, None) => "named nothing".into(),
        },
    );
    if matches!(&store, Ok(s) if !s.is_cloudhsm()) && region.is_none() {
        return Err(InputError::new(
            "a key pre-flight in an external key store needs its Region (--region): it goes into the SigV4 scope",
        ));
    }
    let extras = Extras {
        secret,
        users: None,
        connect_to: args.probe.connect_to.clone(),
        trust_ca,
        client_identity,
        region: region.clone().unwrap_or_default(),
        timeout: settings.probe_timeout(),
    };
    let run = engine::preflight_key(
        settings,
        source,
        region,
        stores,
        store,
        args.xks_key_id.clone(),
        extras,
    )
    .await?;
    ctx.verbose_facts(&run.facts);
    ctx.finish(vec![run.report], None)
}
