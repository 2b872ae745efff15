//! `alarms`: the CloudWatch alarms AWS recommends for each external key store, printed as a
//! CloudFormation template or as `aws cloudwatch put-metric-alarm --cli-input-json` input, and
//! which of them already exist (on standard error). Read-only: it creates nothing.

use super::{Ctx, Done};
use cks_doctor::alarms::{self, Existing};
use cks_doctor::engine;
use cks_doctor::facts::Source;
use cks_doctor::input::InputError;
use clap::{Args, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AlarmFormat {
    /// One CloudFormation template (JSON, which is also YAML) for every alarm
    Cloudformation,
    /// One JSON object a line, each the input of `aws cloudwatch put-metric-alarm --cli-input-json`
    PutMetricAlarm,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Which alarms exist is checked with cloudwatch:DescribeAlarms, cloudwatch:ListMetrics and cloudwatch:DescribeAlarmsForMetric (not in `cks-doctor iam-policy`, which lists what the checks read); without them the template is still printed and standard error says it could not check which exist.\n\nput-metric-alarm: while read -r a; do aws cloudwatch put-metric-alarm --cli-input-json \"$a\"; done < alarms.jsonl"
)]
pub struct AlarmsArgs {
    /// External key stores, by id or name (default: every external key store of the account
    /// in the Region)
    #[arg(value_name = "STORE")]
    pub stores: Vec<String>,
    /// What to print
    #[arg(long, value_enum, default_value = "cloudformation")]
    pub format: AlarmFormat,
    /// The Amazon SNS topic the alarms notify (AlarmActions); without it the template takes an
    /// AlarmTopicArn parameter and put-metric-alarm input holds a placeholder to replace
    #[arg(long, value_name = "ARN")]
    pub sns_topic_arn: Option<String>,
    /// Alarm names are PREFIX-<store id>-<alarm>
    #[arg(long, value_name = "PREFIX", default_value = alarms::DEFAULT_PREFIX)]
    pub name_prefix: String,
}

pub async fn run(ctx: &Ctx, args: &AlarmsArgs) -> Result<Done, InputError> {
    if let Some(arn) = &args.sns_topic_arn {
        if !arn.starts_with("arn:") || arn.split(':').count() < 6 {
            return Err(InputError(format!(
                "--sns-topic-arn {arn:?} is not an ARN (arn:aws:sns:<region>:<account>:<topic>)"
            )));
        }
    }
    if args.name_prefix.is_empty()
        || !args
            .name_prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(InputError::new(
            "--name-prefix takes letters, digits, '-', '_' and '.'",
        ));
    }
    let (source, _region) = engine::open_source(&ctx.settings, None, None).await?;
    let stores = engine::key_stores(&source).await?;
    let external: Vec<_> = stores.iter().filter(|s| !s.is_cloudhsm()).collect();
    let chosen: Vec<_> = if args.stores.is_empty() {
        external.clone()
    } else {
        let mut out = Vec::new();
        for named in &args.stores {
            let s = cks_doctor::diagnose::find(&stores, Some(named), Some(named))
                .map_err(InputError)?;
            if s.is_cloudhsm() {
                return Err(InputError(format!(
                    "{} is an AWS CloudHSM key store: KMS publishes these metrics for external key stores only",
                    s.custom_key_store_id
                )));
            }
            if !out
                .iter()
                .any(|x: &&cks_doctor::facts::model::CustomKeyStore| {
                    x.custom_key_store_id == s.custom_key_store_id
                })
            {
                out.push(s);
            }
        }
        out
    };
    if chosen.is_empty() {
        eprintln!("cks-doctor: the account has no external key store in this Region: no alarm to recommend");
        return Ok(Done {
            stdout: String::new(),
            code: super::EXIT_OK,
        });
    }
    let recommended: Vec<alarms::Alarm> = chosen
        .iter()
        .flat_map(|s| alarms::recommended(&s.custom_key_store_id, &args.name_prefix))
        .collect();
    let (lookup, live) = match &source {
        Source::Live(l) => (
            alarms::existing(&l.cloudwatch(), l.timeout(), &recommended)
                .await
                .map_err(|e| e.to_string()),
            true,
        ),
        _ => (
            Err("a snapshot holds no alarms (run against the account to check)".to_string()),
            false,
        ),
    };
    let states = alarms::states(&recommended, &lookup);
    if let Err(why) = &lookup {
        eprintln!("cks-doctor: could not check which alarms exist: {why}");
    }
    for (a, st) in recommended.iter().zip(&states) {
        match st {
            Existing::Found(by) => eprintln!(
                "cks-doctor: {} {}: exists: {}",
                a.store_id,
                a.key,
                by.join("; ")
            ),
            Existing::Missing => eprintln!("cks-doctor: {} {}: not found", a.store_id, a.key),
            Existing::Unknown(_) => {}
        }
    }
    if args.sns_topic_arn.is_none() && args.format == AlarmFormat::PutMetricAlarm {
        eprintln!(
            "cks-doctor: no --sns-topic-arn: AlarmActions holds {} — replace it",
            alarms::TOPIC_PLACEHOLDER
        );
    }
    let topic = args.sns_topic_arn.as_deref();
    let stdout = match args.format {
        AlarmFormat::Cloudformation => {
            serde_json::to_string_pretty(&alarms::cloudformation(&recommended, topic))
                .expect("serializes")
                + "\n"
        }
        AlarmFormat::PutMetricAlarm => alarms::put_metric_alarm_inputs(&recommended, topic)
            .iter()
            .map(|v| v.to_string() + "\n")
            .collect(),
    };
    Ok(Done {
        stdout,
        code: if lookup.is_err() && live {
            super::EXIT_INCOMPLETE
        } else {
            super::EXIT_OK
        },
    })
}
