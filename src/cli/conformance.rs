//! `conformance`: the XKS proxy API exercised on test keys the way KMS uses it, each case timed
//! against KMS's 250 ms budget (the engine is `cks_doctor::xks::conformance`); here the options
//! and the table, JSON and JUnit renderings.

use super::preflight::{xks_request, XksArgs, XksProbeArgs};
use super::{Ctx, Done};
use cks_doctor::input::{self, InputError, Request};
use cks_doctor::report::render::{Format, TableStyle};
use cks_doctor::xks::conformance::{self as engine, CaseResult, Mapping, Run, Verdict};
use clap::Args;
use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};
use std::fmt::Write;

const LONG_ABOUT: &str = "\
Exercises the XKS proxy API the way KMS uses it — GetHealthStatus, GetKeyMetadata, Encrypt and \
Decrypt — and reports each case: what was sent, what was expected, what came back, how long it \
took against KMS's 250 ms budget, and the KMS error a user would see when the case fails. It covers \
every case of AWS's XKS proxy test client (aws-kms-xksproxy-test-client) and more: \
ciphertextDataIntegrityValue recomputed as the specification defines it, changed AAD, ciphertext, \
tag and IV, the largest plaintext (4300 bytes) and AAD (8192 bytes) KMS sends, wrong credentials, \
a wrong path prefix, a clock 6 minutes off, unsigned requests, an unknown kmsOperation, and the \
error names and bodies of every answer.

It only ever uses the keys you name (--key-id and the optional usage keys) and one key id that \
names no key; it never creates, changes, disables or deletes a key. Encrypt and Decrypt are sent \
on test data it generates (fixed strings and random bytes), never on your data. Every request \
goes over one kept-alive connection, one after the other. The secret is used only to sign and is \
never printed. The proxy's certificate is recorded, not judged (preflight xks judges it against \
KMS's CAs): --trust-ca is accepted so that the same flags serve both commands.";

const AFTER_HELP: &str = "\
Exit codes: 0 every case passed (or was skipped for want of an optional key); 1 at least one case \
failed; 2 usage or invalid input; 3 nothing failed but some cases could not run.";

#[derive(Debug, Args)]
#[command(before_help = LONG_ABOUT, after_help = AFTER_HELP)]
pub struct ConformanceArgs {
    /// XksProxyUriEndpoint: https:// and the proxy's DNS name, no port, no path
    #[arg(long, value_name = "URL")]
    pub uri_endpoint: Option<String>,
    /// XksProxyUriPath, e.g. /example-prefix/kms/xks/v1
    #[arg(long, value_name = "PATH")]
    pub uri_path: Option<String>,
    /// XksProxyAuthenticationCredential.AccessKeyId
    #[arg(long, value_name = "ID")]
    pub access_key_id: Option<String>,
    /// The proxy configuration file the KMS console takes (endpoint, path, credential)
    #[arg(long, value_name = "FILE")]
    pub proxy_config: Option<String>,
    /// The external key id of the test key: AES_256, ENABLED, ENCRYPT and DECRYPT (required). It
    /// is used, never changed
    #[arg(long, value_name = "ID")]
    pub key_id: Option<String>,
    /// A key that allows ENCRYPT only: Decrypt (and Encrypt with a ciphertextDataIntegrityValue,
    /// as AWS's test client expects) must be refused with InvalidKeyUsageException
    #[arg(long, value_name = "ID")]
    pub encrypt_only_key_id: Option<String>,
    /// A key that allows DECRYPT only: Encrypt must be refused with InvalidKeyUsageException
    #[arg(long, value_name = "ID")]
    pub decrypt_only_key_id: Option<String>,
    /// A key that allows neither ENCRYPT nor DECRYPT (the test client's "impotent" key): Encrypt
    /// must be refused with InvalidKeyUsageException
    #[arg(long, value_name = "ID")]
    pub impotent_key_id: Option<String>,
    /// The awsPrincipalArn sent in requestMetadata. It is only what the proxy sees (no AWS call
    /// is made, no identity is checked); a proxy with secondary authorization may need a
    /// principal it allows
    #[arg(long, value_name = "ARN", default_value = engine::DEFAULT_PRINCIPAL_ARN)]
    pub principal_arn: String,
    /// The kmsKeyArn sent with Encrypt, Decrypt and GetKeyMetadata for DescribeKey. Only what
    /// the proxy sees (default: a key ARN of the principal's account in --region that names no
    /// KMS key)
    #[arg(long, value_name = "ARN")]
    pub kms_key_arn: Option<String>,
    #[command(flatten)]
    pub probe: XksProbeArgs,
}

/// An external key id as the specification allows it (it goes into the request path).
fn validate_key_id(flag: &str, id: &str) -> Result<(), InputError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    if ok {
        Ok(())
    } else {
        Err(InputError(format!(
            "{flag} {:?}: an external key id is 1 to 128 characters of A-Z, a-z, 0-9, '-', '.' and '_'",
            id.chars().take(40).collect::<String>()
        )))
    }
}

fn formats(output: Format, flag: &str) -> Result<Format, InputError> {
    match output {
        Format::Table | Format::Json | Format::Junit => Ok(output),
        _ => Err(InputError(format!(
            "{flag}: conformance reports as table, json or junit"
        ))),
    }
}

pub async fn run(ctx: &Ctx, args: &ConformanceArgs) -> Result<Done, InputError> {
    let output = formats(ctx.output, "--output")?;
    let report_format = match &ctx.report_file {
        Some(p) => Some(formats(
            Format::from_path(p).unwrap_or(output),
            &format!("--report {}", p.display()),
        )?),
        None => None,
    };
    let key_id = args.key_id.clone().ok_or_else(|| {
        InputError::new(
            "conformance needs --key-id ID: the external key id of a test key (AES_256, ENABLED, ENCRYPT and DECRYPT)",
        )
    })?;
    validate_key_id("--key-id", &key_id)?;
    for (flag, v) in [
        ("--encrypt-only-key-id", &args.encrypt_only_key_id),
        ("--decrypt-only-key-id", &args.decrypt_only_key_id),
        ("--impotent-key-id", &args.impotent_key_id),
    ] {
        if let Some(v) = v {
            validate_key_id(flag, v)?;
        }
    }
    let from_file = match &args.proxy_config {
        Some(f) => input::parse_proxy_config(f)?,
        None => input::XksParams::default(),
    };
    let xks = XksArgs {
        uri_endpoint: args.uri_endpoint.clone(),
        uri_path: args.uri_path.clone(),
        connectivity: None,
        access_key_id: args.access_key_id.clone(),
        vpc_endpoint_service_name: None,
        vpc_endpoint_service_owner: None,
        proxy_config: args.proxy_config.clone(),
        name: None,
        xks_key_id: None,
        probe: args.probe.clone(),
    };
    let Request::Xks(mut request) = xks_request(from_file, Some(&xks), &args.probe)? else {
        return Err(InputError::new(
            "conformance needs an external key store proxy",
        ));
    };
    let region = ctx
        .settings
        .source
        .region
        .clone()
        .or_else(|| std::env::var("AWS_REGION").ok())
        .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
        .filter(|r| !r.is_empty())
        .ok_or_else(|| {
            InputError::new(
                "conformance needs the key store's Region (--region): it goes into the SigV4 scope",
            )
        })?;
    request.region = region.clone();
    request.timeout = ctx.settings.timeout;
    if request.access_key_id.is_none() {
        return Err(InputError::new(
            "conformance signs every request: give the access key id (--access-key-id or --proxy-config)",
        ));
    }
    if request.secret.is_none() {
        return Err(InputError::new(
            "conformance signs every request: give the secret with --secret-file, --secret-stdin or CKS_XKS_SECRET_ACCESS_KEY",
        ));
    }
    let cfg = request.probe_config("KmsHealthCheck").ok_or_else(|| {
        InputError::new("XksProxyUriEndpoint must be https:// followed by the proxy's DNS name (--uri-endpoint)")
    })?;
    let opts = engine::Options {
        kms_key_arn: args
            .kms_key_arn
            .clone()
            .unwrap_or_else(|| engine::Options::default_kms_key_arn(&region, &args.principal_arn)),
        key_id,
        encrypt_only_key_id: args.encrypt_only_key_id.clone(),
        decrypt_only_key_id: args.decrypt_only_key_id.clone(),
        impotent_key_id: args.impotent_key_id.clone(),
        principal_arn: args.principal_arn.clone(),
    };
    let run = engine::run(&cfg, &request.uri_endpoint, &opts).await;
    if ctx.verbose > 0 {
        eprintln!(
            "cks-doctor: conformance: {} request(s) on {} connection(s)",
            run.connection.requests, run.connection.connections
        );
    }
    if let (Some(path), Some(format)) = (&ctx.report_file, report_format) {
        std::fs::write(path, render(format, &run, ctx.style))
            .map_err(|e| InputError(format!("--report {}: {e}", path.display())))?;
    }
    Ok(Done {
        stdout: render(output, &run, ctx.style),
        code: run.exit_code(),
    })
}

pub fn render(format: Format, run: &Run, style: TableStyle) -> String {
    match format {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(run).unwrap_or_else(|_| "{}".into());
            s.push('\n');
            s
        }
        Format::Junit => junit(run),
        _ => table(run, style),
    }
}

fn mark(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "✓",
        Verdict::Fail => "✗",
        Verdict::Error => "?",
        Verdict::Skip => "-",
    }
}

fn colour(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "32",
        Verdict::Fail => "31;1",
        Verdict::Error => "35",
        Verdict::Skip => "2",
    }
}

fn paint(style: TableStyle, code: &str, s: &str) -> String {
    if style.color {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

fn observed(c: &CaseResult) -> String {
    match (&c.observed.status, &c.observed.error_name) {
        (Some(s), Some(n)) => format!("{s} {n}"),
        (Some(s), None) => s.to_string(),
        _ => "–".into(),
    }
}

fn expected_short(c: &CaseResult) -> String {
    match (&c.expected.status, &c.expected.error_name) {
        (Some(s), Some(n)) => format!("{s} {n}"),
        (Some(s), None) => s.to_string(),
        _ => "–".into(),
    }
}

fn mapping_label(m: Mapping) -> &'static str {
    match m {
        Mapping::Documented => "documented",
        Mapping::Inferred => "inferred",
        Mapping::None => "no KMS error",
    }
}

fn table(run: &Run, style: TableStyle) -> String {
    let mut out = String::new();
    let t = &run.target;
    let _ = writeln!(
        out,
        "{} conformance of the XKS proxy {}{} (key {}, Region {})",
        paint(style, "1", "cks-doctor"),
        t.uri_endpoint,
        t.uri_path,
        t.key_id,
        t.region
    );
    if let Some(c) = &t.connect_to {
        let _ = writeln!(
            out,
            "--connect-to: the proxy was reached at {c}, not through DNS"
        );
    }
    let c = &run.connection;
    match (&c.error, &c.tls_version, &c.cipher_suite) {
        (Some(e), _, _) => {
            let _ = writeln!(out, "could not connect: {e}");
        }
        (None, Some(v), Some(s)) => {
            let _ = writeln!(
                out,
                "{v}, {s}; {} request(s) on {} connection(s)",
                c.requests, c.connections
            );
        }
        _ => {}
    }
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(if style.wrap {
            ContentArrangement::Dynamic
        } else {
            ContentArrangement::Disabled
        })
        .set_header(vec!["", "case", "expected", "observed", "ms"]);
    let mut group = "";
    for c in &run.cases {
        if c.group != group {
            group = c.group;
            table.add_row(vec![
                String::new(),
                paint(style, "1", group),
                String::new(),
                String::new(),
                String::new(),
            ]);
        }
        table.add_row(vec![
            paint(style, colour(c.verdict), mark(c.verdict)),
            format!("{}  {}", c.id, c.title),
            expected_short(c),
            observed(c),
            c.request_ms.map(|m| format!("{m:.1}")).unwrap_or_default(),
        ]);
    }
    let _ = writeln!(out, "{table}");
    let mut details = String::new();
    for c in &run.cases {
        if !matches!(c.verdict, Verdict::Fail | Verdict::Error) {
            continue;
        }
        let _ = writeln!(
            details,
            "  {} {} — {}",
            paint(style, colour(c.verdict), &format!("[{}]", mark(c.verdict))),
            c.id,
            c.message
        );
        if c.verdict == Verdict::Fail {
            let _ = writeln!(
                details,
                "      {} {} ({})",
                paint(style, "2", "KMS:"),
                paint(style, "1", &c.kms_error),
                mapping_label(c.kms_error_mapping)
            );
            let _ = writeln!(
                details,
                "      {} {}",
                paint(style, "2", "Why:"),
                c.kms_error_note
            );
        }
    }
    if !details.is_empty() {
        let _ = writeln!(out, "\n{}", paint(style, "1", "Failed and could not run"));
        out.push_str(&details);
    }
    let s = &run.summary;
    let l = &s.latency;
    let _ = writeln!(
        out,
        "\n{} passed, {} failed, {} could not run, {} skipped",
        s.pass, s.fail, s.error, s.skip
    );
    if let (Some(min), Some(med), Some(max)) = (l.min_ms, l.median_ms, l.max_ms) {
        let _ = writeln!(
            out,
            "request latency (from here) min {min:.1} ms, median {med:.1} ms, max {max:.1} ms against KMS's {:.0} ms budget ({} over)",
            l.budget_ms, l.over_budget
        );
        let _ = writeln!(
            out,
            "{} requests took {:.1} ms in all, one after the other: {:.1} ms from the first sent to the last answer, {:.1} ms with the connection set-up",
            l.count,
            l.sum_ms,
            s.requests_wall_ms.unwrap_or(0.0),
            s.wall_ms
        );
    }
    let painted = match run.exit_code() {
        0 => paint(style, "32;1", &run.verdict),
        1 => paint(style, "31;1", &run.verdict),
        _ => paint(style, "35;1", &run.verdict),
    };
    let _ = writeln!(out, "{painted}");
    out
}

fn slug(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

fn junit(run: &Run) -> String {
    use quick_junit::{NonSuccessKind, Property, TestCase, TestCaseStatus, TestSuite};
    let t = &run.target;
    let mut suite = TestSuite::new(format!(
        "cks-doctor conformance {}{}",
        t.uri_endpoint, t.uri_path
    ));
    for (k, v) in [
        ("uri_endpoint", Some(t.uri_endpoint.clone())),
        ("uri_path", Some(t.uri_path.clone())),
        ("region", Some(t.region.clone())),
        ("key_id", Some(t.key_id.clone())),
        ("connect_to", t.connect_to.clone()),
        ("verdict", Some(run.verdict.clone())),
    ] {
        if let Some(v) = v {
            suite.add_property(Property::new(k, v));
        }
    }
    suite.set_system_out(format!("{}\n", run.verdict));
    for c in &run.cases {
        let status = match c.verdict {
            Verdict::Pass => TestCaseStatus::success(),
            Verdict::Fail => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(format!("{} — KMS: {}", c.message, c.kms_error))
                    .set_type(format!("FAIL ({})", mapping_label(c.kms_error_mapping)))
                    .set_description(format!(
                        "sent: {}\nexpected: {}\nobserved: {}\n{}\n",
                        c.sent,
                        c.expected.text,
                        observed(c),
                        c.kms_error_note
                    ));
                s
            }
            Verdict::Error => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                s.set_message(c.message.clone()).set_type("ERROR");
                s
            }
            Verdict::Skip => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(format!("skipped: {}", c.message))
                    .set_type("SKIP");
                s
            }
        };
        let mut tc = TestCase::new(format!("{}: {}", c.id, c.title), status);
        tc.set_classname(format!("cks-doctor.conformance.{}", slug(c.group)));
        if let Some(ms) = c.request_ms {
            tc.set_time(std::time::Duration::from_secs_f64(ms / 1000.0));
        }
        if c.verdict == Verdict::Pass {
            tc.set_system_out(format!("{}\n", c.message));
        }
        tc.add_property(Property::new("verdict", c.verdict.as_str()));
        tc.add_property(Property::new("operation", c.operation));
        if !c.test_client_cases.is_empty() {
            tc.add_property(Property::new(
                "test_client_cases",
                c.test_client_cases
                    .iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            ));
        }
        suite.add_test_case(tc);
    }
    let mut report = quick_junit::Report::new("cks-doctor");
    report.add_test_suite(suite);
    report
        .to_string()
        .expect("a JUnit report of strings serializes")
}
