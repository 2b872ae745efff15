//! `cks-doctor alarms`: the CloudWatch alarms AWS recommends for each external key store, as a
//! CloudFormation template or as the input of `aws cloudwatch put-metric-alarm`, and which of
//! them already exist. Read-only: it never creates an alarm.
//!
//! AWS's page "Create CloudWatch alarms for external key stores" (xks-alarms.html) recommends
//! four alarms per store, each on its own ("You cannot create a single alarm for all external
//! key stores in your account or an alarm for external key stores that you might create in the
//! future"):
//!
//! | alarm | metric | statistic | period | whenever |
//! |---|---|---|---|---|
//! | certificate expiration | XksProxyCertificateDaysToExpire | Minimum | 5 minutes | lower than 10 |
//! | response timeout | XksProxyLatency | Average | 5 minutes | greater than 200 |
//! | retryable errors | SUM(XksProxyErrors), ErrorType = Retryable | Sum | 1 minute | greater than 5 |
//! | non-retryable errors | SUM(XksProxyErrors), ErrorType = Non-retryable | Sum | 1 minute | greater than 5 |
//!
//! and "Monitor KMS keys with Amazon CloudWatch" also recommends one for external key manager
//! instances "in a degraded or unavailable state", with no threshold (cks-doctor: more than 0).
//!
//! Every alarm is a Metrics Insights query scoped to the store (`WHERE CustomKeyStoreId =
//! '...'`), as AWS's own error alarms are: it covers every time series of the store whatever
//! its other dimensions (the certificate's name, the operations), so nothing is guessed.
//!
//! Which exist: alarms of these names (`cloudwatch:DescribeAlarms`), and any alarm on the
//! store's time series of each metric, found with `cloudwatch:ListMetrics` and
//! `cloudwatch:DescribeAlarmsForMetric` per metric and exact dimensions (how an alarm made in
//! the console following AWS's page is found). Those three actions are not in `iam-policy`
//! (which lists what the checks read); [`IAM_ACTIONS`] names them.

use crate::facts::metrics::{
    CERTIFICATE_METRIC, ERRORS_METRIC, LATENCY_METRIC, MANAGER_STATES_METRIC, NAMESPACE,
};
use crate::facts::FactError;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The read-only IAM actions `alarms` needs to say which alarms exist (besides
/// kms:DescribeCustomKeyStores).
pub const IAM_ACTIONS: &[&str] = &[
    "cloudwatch:DescribeAlarms",
    "cloudwatch:DescribeAlarmsForMetric",
    "cloudwatch:ListMetrics",
];

/// What `AlarmActions` holds when no `--sns-topic-arn` is given (put-metric-alarm input; the
/// CloudFormation template takes a parameter instead).
pub const TOPIC_PLACEHOLDER: &str = "REPLACE-WITH-YOUR-SNS-TOPIC-ARN";

/// The default name prefix of the alarms (`--name-prefix`).
pub const DEFAULT_PREFIX: &str = "cks-doctor";

/// One recommended alarm for one store.
#[derive(Debug, Clone, PartialEq)]
pub struct Alarm {
    pub store_id: String,
    /// `certificate-expiry`, `response-timeout`, `retryable-errors`, `non-retryable-errors`,
    /// `key-manager-unavailable`.
    pub key: &'static str,
    pub name: String,
    pub description: String,
    pub metric: &'static str,
    /// The dimension filter besides CustomKeyStoreId (the error alarms' ErrorType).
    pub filter: Option<(&'static str, &'static str)>,
    /// The Metrics Insights query the alarm watches (its query id is `q1`).
    pub expression: String,
    pub label: &'static str,
    pub period: u32,
    pub threshold: f64,
    pub comparison: &'static str,
    /// Where the threshold comes from.
    pub basis: &'static str,
}

struct Recommendation {
    key: &'static str,
    title: &'static str,
    metric: &'static str,
    function: &'static str,
    filter: Option<(&'static str, &'static str)>,
    /// A filter that excludes a value rather than naming it.
    not: bool,
    label: &'static str,
    period: u32,
    threshold: f64,
    comparison: &'static str,
    basis: &'static str,
}

const RECOMMENDED: &[Recommendation] = &[
    Recommendation {
        key: "certificate-expiry",
        title: "the proxy's TLS certificate expires in less than 10 days",
        metric: CERTIFICATE_METRIC,
        function: "MIN",
        filter: None,
        not: false,
        label: "Certificate days to expire",
        period: 300,
        threshold: 10.0,
        comparison: "LessThanThreshold",
        basis: "xks-alarms: Minimum, 5 minutes, \"Whenever XksProxyCertificateDaysToExpire is Lower than 10\"",
    },
    Recommendation {
        key: "response-timeout",
        title: "the proxy takes longer than 200 ms to respond on average",
        metric: LATENCY_METRIC,
        function: "AVG",
        filter: None,
        not: false,
        label: "Latency",
        period: 300,
        threshold: 200.0,
        comparison: "GreaterThanThreshold",
        basis: "xks-alarms: Average, 5 minutes, \"Whenever XksProxyLatency is Greater than 200\"",
    },
    Recommendation {
        key: "retryable-errors",
        title: "more than 5 retryable errors in a minute",
        metric: ERRORS_METRIC,
        function: "SUM",
        filter: Some(("ErrorType", "Retryable")),
        not: false,
        label: "Retryable errors",
        period: 60,
        threshold: 5.0,
        comparison: "GreaterThanThreshold",
        basis: "xks-alarms: SUM(XksProxyErrors), ErrorType = Retryable, 1 minute, \"Whenever q1 is Greater than 5\"",
    },
    Recommendation {
        key: "non-retryable-errors",
        title: "more than 5 non-retryable errors in a minute",
        metric: ERRORS_METRIC,
        function: "SUM",
        filter: Some(("ErrorType", "Non-retryable")),
        not: false,
        label: "Non-retryable errors",
        period: 60,
        threshold: 5.0,
        comparison: "GreaterThanThreshold",
        basis: "xks-alarms: SUM(XksProxyErrors), ErrorType = Non-retryable, 1 minute, \"Whenever q1 is Greater than 5\"",
    },
    Recommendation {
        key: "key-manager-unavailable",
        title: "an external key manager instance is Degraded or Unavailable",
        metric: MANAGER_STATES_METRIC,
        function: "MAX",
        filter: Some(("XksExternalKeyManagerState", "Active")),
        not: true,
        label: "Degraded or Unavailable instances",
        period: 300,
        threshold: 0.0,
        comparison: "GreaterThanThreshold",
        basis: "monitoring-cloudwatch recommends this alarm without a threshold; cks-doctor's: more than 0 in 5 minutes",
    },
];

/// The alarms recommended for one store (its id as DescribeCustomKeyStores returns it).
pub fn recommended(store_id: &str, prefix: &str) -> Vec<Alarm> {
    let id = store_id.replace('\'', "");
    RECOMMENDED
        .iter()
        .map(|r| {
            let mut condition = format!("CustomKeyStoreId = '{id}'");
            if let Some((dim, value)) = r.filter {
                let op = if r.not { "!=" } else { "=" };
                condition.push_str(&format!(" AND {dim} {op} '{value}'"));
            }
            Alarm {
                store_id: store_id.to_string(),
                key: r.key,
                name: format!("{prefix}-{store_id}-{}", r.key),
                description: format!(
                    "External key store {store_id}: {} (AWS KMS recommendation; {}). Made by cks-doctor alarms.",
                    r.title, r.basis
                ),
                metric: r.metric,
                filter: if r.not { None } else { r.filter },
                expression: format!(
                    "SELECT {}({}) FROM \"{NAMESPACE}\" WHERE {condition}",
                    r.function, r.metric
                ),
                label: r.label,
                period: r.period,
                threshold: r.threshold,
                comparison: r.comparison,
                basis: r.basis,
            }
        })
        .collect()
}

fn number(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        json!(v as i64)
    } else {
        json!(v)
    }
}

fn metrics_of(a: &Alarm) -> Value {
    json!([{
        "Id": "q1",
        "Expression": a.expression,
        "Label": a.label,
        "Period": a.period,
        "ReturnData": true,
    }])
}

/// The JSON `aws cloudwatch put-metric-alarm --cli-input-json` takes, one per alarm.
pub fn put_metric_alarm_inputs(alarms: &[Alarm], topic: Option<&str>) -> Vec<Value> {
    let topic = topic.unwrap_or(TOPIC_PLACEHOLDER);
    alarms
        .iter()
        .map(|a| {
            json!({
                "AlarmName": a.name,
                "AlarmDescription": a.description,
                "ActionsEnabled": true,
                "AlarmActions": [topic],
                "Metrics": metrics_of(a),
                "EvaluationPeriods": 1,
                "DatapointsToAlarm": 1,
                "Threshold": number(a.threshold),
                "ComparisonOperator": a.comparison,
            })
        })
        .collect()
}

/// A CloudFormation logical id: letters and digits only.
fn logical_id(a: &Alarm) -> String {
    let mut out = String::new();
    let mut upper = true;
    for c in format!("{}-{}", a.store_id, a.key).chars() {
        if c.is_ascii_alphanumeric() {
            if upper {
                out.extend(c.to_uppercase());
            } else {
                out.push(c);
            }
            upper = false;
        } else {
            upper = true;
        }
    }
    format!("{out}Alarm")
}

/// The CloudFormation template (JSON, which is YAML too): one `AWS::CloudWatch::Alarm` per
/// alarm; without a topic, a required `AlarmTopicArn` parameter.
pub fn cloudformation(alarms: &[Alarm], topic: Option<&str>) -> Value {
    let action = match topic {
        Some(t) => json!(t),
        None => json!({"Ref": "AlarmTopicArn"}),
    };
    let mut resources = serde_json::Map::new();
    for a in alarms {
        resources.insert(
            logical_id(a),
            json!({
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {
                    "AlarmName": a.name,
                    "AlarmDescription": a.description,
                    "ActionsEnabled": true,
                    "AlarmActions": [action],
                    "Metrics": metrics_of(a),
                    "EvaluationPeriods": 1,
                    "DatapointsToAlarm": 1,
                    "Threshold": number(a.threshold),
                    "ComparisonOperator": a.comparison,
                }
            }),
        );
    }
    let mut template = json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "CloudWatch alarms AWS KMS recommends for external key stores (xks-alarms), one set per store; generated by cks-doctor alarms",
        "Resources": resources,
    });
    if topic.is_none() {
        template["Parameters"] = json!({
            "AlarmTopicArn": {
                "Type": "String",
                "Description": "The Amazon SNS topic the alarms notify (AlarmActions)"
            }
        });
    }
    template
}

/// Whether an alarm (or one like it) already exists.
#[derive(Debug, Clone, PartialEq)]
pub enum Existing {
    /// Alarms found: by this name, or on the store's time series of the alarm's metric.
    Found(Vec<String>),
    Missing,
    /// Could not check (the reason).
    Unknown(String),
}

/// The alarms of the account that match: an alarm named as the recommendation, or any alarm
/// on a time series of the store's metric (with the same ErrorType for the error alarms).
pub async fn existing(
    client: &aws_sdk_cloudwatch::Client,
    timeout: std::time::Duration,
    alarms: &[Alarm],
) -> Result<BTreeMap<String, Vec<String>>, FactError> {
    use crate::facts::live::classify;
    use aws_sdk_cloudwatch::types::{Dimension, DimensionFilter};
    let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
    // By name, 100 a call.
    let names: Vec<String> = alarms.iter().map(|a| a.name.clone()).collect();
    for chunk in names.chunks(100) {
        let mut token: Option<String> = None;
        loop {
            let out = client
                .describe_alarms()
                .set_alarm_names(Some(chunk.to_vec()))
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| classify("cloudwatch:DescribeAlarms", timeout, e))?;
            for m in out.metric_alarms() {
                if let Some(n) = m.alarm_name() {
                    found
                        .entry(n.to_string())
                        .or_default()
                        .push(format!("{n} (this name)"));
                }
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
    }
    // By metric: each of the store's time series of the metric, then the alarms on it.
    for a in alarms {
        let mut filters = vec![DimensionFilter::builder()
            .name("CustomKeyStoreId")
            .value(&a.store_id)
            .build()];
        if let Some((dim, value)) = a.filter {
            filters.push(DimensionFilter::builder().name(dim).value(value).build());
        }
        let mut token: Option<String> = None;
        let mut series: Vec<Vec<Dimension>> = Vec::new();
        loop {
            let out = client
                .list_metrics()
                .namespace(NAMESPACE)
                .metric_name(a.metric)
                .set_dimensions(Some(filters.clone()))
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| classify("cloudwatch:ListMetrics", timeout, e))?;
            series.extend(out.metrics().iter().map(|m| m.dimensions().to_vec()));
            match out.next_token() {
                Some(t) if !t.is_empty() && series.len() < 100 => token = Some(t.to_string()),
                _ => break,
            }
        }
        for dims in series.iter().take(100) {
            let out = client
                .describe_alarms_for_metric()
                .namespace(NAMESPACE)
                .metric_name(a.metric)
                .set_dimensions(Some(dims.clone()))
                .send()
                .await
                .map_err(|e| classify("cloudwatch:DescribeAlarmsForMetric", timeout, e))?;
            let shown: Vec<String> = dims
                .iter()
                .filter(|d| d.name() != Some("CustomKeyStoreId"))
                .map(|d| {
                    format!(
                        "{}={}",
                        d.name().unwrap_or_default(),
                        d.value().unwrap_or_default()
                    )
                })
                .collect();
            for m in out.metric_alarms() {
                let n = m.alarm_name().unwrap_or("(unnamed)");
                let entry = found.entry(a.name.clone()).or_default();
                let line = format!(
                    "{n} (on {}{})",
                    a.metric,
                    if shown.is_empty() {
                        String::new()
                    } else {
                        format!(" {}", shown.join(" "))
                    }
                );
                if !entry.contains(&line) {
                    entry.push(line);
                }
            }
        }
    }
    Ok(found)
}

/// Each alarm's state, from the lookup.
pub fn states(
    alarms: &[Alarm],
    lookup: &Result<BTreeMap<String, Vec<String>>, String>,
) -> Vec<Existing> {
    alarms
        .iter()
        .map(|a| match lookup {
            Err(why) => Existing::Unknown(why.clone()),
            Ok(found) => match found.get(&a.name) {
                Some(v) if !v.is_empty() => Existing::Found(v.clone()),
                _ => Existing::Missing,
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STORE: &str = "cks-1234567890abcdef0";

    #[test]
    fn the_recommended_alarms_have_aws_thresholds() {
        let a = recommended(STORE, DEFAULT_PREFIX);
        assert_eq!(a.len(), 5);
        let by = |k: &str| a.iter().find(|x| x.key == k).unwrap();
        let cert = by("certificate-expiry");
        assert_eq!(
            cert.name,
            "cks-doctor-cks-1234567890abcdef0-certificate-expiry"
        );
        assert_eq!(
            cert.expression,
            "SELECT MIN(XksProxyCertificateDaysToExpire) FROM \"AWS/KMS\" WHERE CustomKeyStoreId = 'cks-1234567890abcdef0'"
        );
        assert_eq!(
            (cert.period, cert.threshold, cert.comparison),
            (300, 10.0, "LessThanThreshold")
        );
        let lat = by("response-timeout");
        assert_eq!(
            (lat.period, lat.threshold, lat.comparison),
            (300, 200.0, "GreaterThanThreshold")
        );
        assert!(lat.expression.starts_with("SELECT AVG(XksProxyLatency)"));
        let r = by("retryable-errors");
        assert_eq!((r.period, r.threshold), (60, 5.0));
        assert!(
            r.expression.ends_with("AND ErrorType = 'Retryable'"),
            "{}",
            r.expression
        );
        assert_eq!(r.label, "Retryable errors");
        assert_eq!(r.filter, Some(("ErrorType", "Retryable")));
        let n = by("non-retryable-errors");
        assert!(n.expression.ends_with("AND ErrorType = 'Non-retryable'"));
        let k = by("key-manager-unavailable");
        assert!(k
            .expression
            .ends_with("AND XksExternalKeyManagerState != 'Active'"));
        assert_eq!(k.filter, None);
    }

    #[test]
    fn put_metric_alarm_input_is_what_the_cli_takes() {
        let a = recommended(STORE, "ops");
        let inputs = put_metric_alarm_inputs(&a, Some("arn:aws:sns:us-east-1:111122223333:kms"));
        assert_eq!(inputs.len(), 5);
        let cert = &inputs[0];
        assert_eq!(
            cert["AlarmName"],
            "ops-cks-1234567890abcdef0-certificate-expiry"
        );
        assert_eq!(
            cert["AlarmActions"][0],
            "arn:aws:sns:us-east-1:111122223333:kms"
        );
        assert_eq!(cert["Threshold"], 10);
        assert_eq!(cert["ComparisonOperator"], "LessThanThreshold");
        assert_eq!(cert["EvaluationPeriods"], 1);
        assert_eq!(cert["Metrics"][0]["Id"], "q1");
        assert_eq!(cert["Metrics"][0]["Period"], 300);
        assert_eq!(cert["Metrics"][0]["ReturnData"], true);
        // Only the keys put-metric-alarm takes.
        let allowed = [
            "AlarmName",
            "AlarmDescription",
            "ActionsEnabled",
            "AlarmActions",
            "Metrics",
            "EvaluationPeriods",
            "DatapointsToAlarm",
            "Threshold",
            "ComparisonOperator",
        ];
        for k in cert.as_object().unwrap().keys() {
            assert!(allowed.contains(&k.as_str()), "{k}");
        }
        let placeholder = put_metric_alarm_inputs(&a, None);
        assert_eq!(placeholder[0]["AlarmActions"][0], TOPIC_PLACEHOLDER);
    }

    #[test]
    fn cloudformation_template_has_one_alarm_each_and_a_topic_parameter() {
        let mut a = recommended(STORE, DEFAULT_PREFIX);
        a.extend(recommended("cks-0b7c1a2d3e4f56789", DEFAULT_PREFIX));
        let t = cloudformation(&a, None);
        assert_eq!(t["AWSTemplateFormatVersion"], "2010-09-09");
        let res = t["Resources"].as_object().unwrap();
        assert_eq!(res.len(), 10);
        let cert = &res["Cks1234567890abcdef0CertificateExpiryAlarm"];
        assert_eq!(cert["Type"], "AWS::CloudWatch::Alarm");
        assert_eq!(
            cert["Properties"]["AlarmActions"][0]["Ref"],
            "AlarmTopicArn"
        );
        assert_eq!(t["Parameters"]["AlarmTopicArn"]["Type"], "String");
        for id in res.keys() {
            assert!(id.chars().all(|c| c.is_ascii_alphanumeric()), "{id}");
        }
        let with_topic = cloudformation(&a, Some("arn:aws:sns:us-east-1:111122223333:kms"));
        assert!(with_topic.get("Parameters").is_none());
    }

    #[test]
    fn states_follow_the_lookup() {
        let a = recommended(STORE, DEFAULT_PREFIX);
        let mut found = BTreeMap::new();
        found.insert(
            a[0].name.clone(),
            vec!["mine (on XksProxyCertificateDaysToExpire)".into()],
        );
        let s = states(&a, &Ok(found));
        assert!(matches!(&s[0], Existing::Found(v) if v.len() == 1));
        assert_eq!(s[1], Existing::Missing);
        let s = states(&a, &Err("denied".into()));
        assert_eq!(s[0], Existing::Unknown("denied".into()));
    }
}
