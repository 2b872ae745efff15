//! CloudWatch metrics of external key stores as a fact (`FactKind::Metrics`).
//!
//! KMS publishes, in the `AWS/KMS` namespace, metrics for every external key store (KMS
//! developer guide, "Monitor KMS keys with Amazon CloudWatch", monitoring-cloudwatch.html):
//!
//! | metric | dimensions (as the guide's tables name them) | statistic read here |
//! |---|---|---|
//! | `XksProxyCertificateDaysToExpire` | CustomKeyStoreId, CertificateName | Minimum |
//! | `XksProxyCredentialAge` | CustomKeyStoreId | Maximum |
//! | `XksProxyLatency` (ms) | CustomKeyStoreId, KmsOperation, XksOperation, KeySpec | p99 and Maximum |
//! | `XksProxyErrors` | CustomKeyStoreId, KmsOperation, XksOperation, KeySpec, ErrorType, ExceptionName | Sum |
//! | `XksExternalKeyManagerStates` | CustomKeyStoreId, XksExternalKeyManagerState | Maximum |
//! | `ExternalKeyStoreThrottle` | CustomKeyStoreId, KmsOperation, KeySpec | Sum |
//!
//! The guide disagrees with itself in two places: its alarm page selects the certificate metric
//! by `XksProxyCertificateName`, and its `list-metrics` example names the key manager metric
//! `XksProxyHsmStates` (dimension `XksProxyHsmState`). The queries for those two therefore name
//! no dimension schema: they search by metric name and CustomKeyStoreId only (and the state
//! metric under both names), so whichever name KMS uses is found.
//!
//! Every metric is read with a CloudWatch search expression (`SEARCH(...)`), which finds every
//! time series of the store whatever the values of its other dimensions; a Region's stores
//! are asked in one GetMetricData call (500 queries a call; [`QUERIES_PER_CALL`]).
//!
//! Query ids are `<query>_<store id with '-' turned into '_'>`, e.g. `cert_cks_1234567890abcdef0`
//! ([`Query::id`]): a snapshot recorded by hand with `aws cloudwatch get-metric-data
//! --metric-data-queries file://q.json` from the queries [`queries`] makes (docs/metrics.md lists
//! them) is read as one recorded by `cks-doctor snapshot xks`.

use super::model::{GetMetricDataOutput, MetricDataResult};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub const NAMESPACE: &str = "AWS/KMS";

/// GetMetricData takes at most 500 queries a call.
pub const QUERIES_PER_CALL: usize = 500;

/// The default window (`--since`).
pub const DEFAULT_SINCE: Duration = Duration::from_secs(24 * 3600);
/// The longest window: KMS keeps its metrics "for a period of two weeks" (developer guide), and
/// CloudWatch keeps one-minute data points 15 days.
pub const MAX_SINCE: Duration = Duration::from_secs(15 * 24 * 3600);
/// The shortest window: one five-minute period.
pub const MIN_SINCE: Duration = Duration::from_secs(5 * 60);
/// The default credential age past which `xks.metrics.credential-age` warns (cks-doctor's
/// judgement: AWS gives no rotation period).
pub const DEFAULT_MAX_CREDENTIAL_AGE_DAYS: u32 = 90;

/// What the metrics checks are run with (`--since`, `--max-credential-age`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricSettings {
    pub since: Duration,
    pub max_credential_age_days: u32,
}

impl Default for MetricSettings {
    fn default() -> Self {
        MetricSettings {
            since: DEFAULT_SINCE,
            max_credential_age_days: DEFAULT_MAX_CREDENTIAL_AGE_DAYS,
        }
    }
}

/// The window a read asks for: the last `since`, ending when it is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricWindow {
    pub since: Duration,
}

/// The aggregation period for a window: about 288 data points per time series (five-minute
/// periods for a day), in whole minutes, at least one minute.
pub fn period_for(since: Duration) -> u32 {
    let secs = since.as_secs().max(60);
    let per_point = secs.div_ceil(288);
    let minutes = per_point.div_ceil(60).max(1);
    (minutes * 60).min(u32::MAX as u64) as u32
}

/// Parses `--since`: a number and a unit (`s`, `m`, `h`, `d`), or several (`1d12h`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let bad = || format!("{text:?} is not a duration such as 30m, 24h, 7d or 1d12h");
    if t.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    let mut number = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            _ => return Err(bad()),
        };
        let n: u64 = number.parse().map_err(|_| bad())?;
        number.clear();
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
    }
    if !number.is_empty() {
        return Err(bad());
    }
    let d = Duration::from_secs(total);
    if d < MIN_SINCE || d > MAX_SINCE {
        return Err(format!(
            "{text:?}: the window must be between 5m and 15d (KMS keeps its CloudWatch metrics two weeks)"
        ));
    }
    Ok(d)
}

/// A duration as `--since` takes it (`24h`, `90m`, `7d`).
pub fn show_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s % 86400 == 0 && s >= 2 * 86400 {
        format!("{}d", s / 86400)
    } else if s % 3600 == 0 {
        format!("{}h", s / 3600)
    } else if s % 60 == 0 {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// One query asked for each store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Query {
    Certificate,
    CredentialAge,
    LatencyP99,
    LatencyMax,
    Errors,
    ManagersActive,
    ManagersDegraded,
    ManagersUnavailable,
    Throttle,
    /// AWS/CloudHSM `HsmUnhealthy` of a cluster (a CloudHSM key store's), per HSM.
    HsmUnhealthy,
}

pub const CERTIFICATE_METRIC: &str = "XksProxyCertificateDaysToExpire";
pub const CREDENTIAL_AGE_METRIC: &str = "XksProxyCredentialAge";
pub const LATENCY_METRIC: &str = "XksProxyLatency";
pub const ERRORS_METRIC: &str = "XksProxyErrors";
pub const MANAGER_STATES_METRIC: &str = "XksExternalKeyManagerStates";
/// The key manager metric's name in the guide's `list-metrics` example.
pub const MANAGER_STATES_METRIC_OLD: &str = "XksProxyHsmStates";
pub const THROTTLE_METRIC: &str = "ExternalKeyStoreThrottle";
/// The namespace of the CloudHSM metrics (AWS CloudHSM user guide, "Getting CloudWatch metrics").
pub const CLOUDHSM_NAMESPACE: &str = "AWS/CloudHSM";
/// "The HSM instance is not performing properly" (a count, dimensions ClusterId and HsmId).
pub const HSM_UNHEALTHY_METRIC: &str = "HsmUnhealthy";

/// The separator of the dimension values in the labels of the queries that ask for several.
pub const LABEL_SEPARATOR: char = '|';

impl Query {
    pub const ALL: [Query; 9] = [
        Query::Certificate,
        Query::CredentialAge,
        Query::LatencyP99,
        Query::LatencyMax,
        Query::Errors,
        Query::ManagersActive,
        Query::ManagersDegraded,
        Query::ManagersUnavailable,
        Query::Throttle,
    ];
    /// The queries asked for each cluster of a CloudHSM key store.
    pub const CLUSTER: [Query; 1] = [Query::HsmUnhealthy];

    /// The first part of the query's id.
    pub const fn tag(self) -> &'static str {
        match self {
            Query::Certificate => "cert",
            Query::CredentialAge => "credage",
            Query::LatencyP99 => "latp99",
            Query::LatencyMax => "latmax",
            Query::Errors => "errors",
            Query::ManagersActive => "ekmactive",
            Query::ManagersDegraded => "ekmdegraded",
            Query::ManagersUnavailable => "ekmunavailable",
            Query::Throttle => "throttle",
            Query::HsmUnhealthy => "hsmunhealthy",
        }
    }

    pub const fn metric(self) -> &'static str {
        match self {
            Query::Certificate => CERTIFICATE_METRIC,
            Query::CredentialAge => CREDENTIAL_AGE_METRIC,
            Query::LatencyP99 | Query::LatencyMax => LATENCY_METRIC,
            Query::Errors => ERRORS_METRIC,
            Query::ManagersActive | Query::ManagersDegraded | Query::ManagersUnavailable => {
                MANAGER_STATES_METRIC
            }
            Query::Throttle => THROTTLE_METRIC,
            Query::HsmUnhealthy => HSM_UNHEALTHY_METRIC,
        }
    }

    pub const fn statistic(self) -> &'static str {
        match self {
            Query::Certificate => "Minimum",
            Query::CredentialAge => "Maximum",
            Query::LatencyP99 => "p99",
            Query::LatencyMax => "Maximum",
            Query::Errors | Query::Throttle => "Sum",
            Query::ManagersActive | Query::ManagersDegraded | Query::ManagersUnavailable => {
                "Maximum"
            }
            Query::HsmUnhealthy => "Maximum",
        }
    }

    /// The namespace the query reads.
    pub const fn namespace(self) -> &'static str {
        match self {
            Query::HsmUnhealthy => CLOUDHSM_NAMESPACE,
            _ => NAMESPACE,
        }
    }

    /// The query's id for a store: `<tag>_<store id with '-' → '_'>`.
    pub fn id(self, store_id: &str) -> String {
        format!("{}_{}", self.tag(), store_id.replace('-', "_"))
    }

    /// The key manager state a state query counts.
    pub const fn manager_state(self) -> Option<&'static str> {
        match self {
            Query::ManagersActive => Some("Active"),
            Query::ManagersDegraded => Some("Degraded"),
            Query::ManagersUnavailable => Some("Unavailable"),
            _ => None,
        }
    }

    /// The search expression for a store (its id already checked by [`usable_store_id`]).
    pub fn expression(self, store_id: &str, period: u32) -> String {
        let stat = self.statistic();
        let store = format!("CustomKeyStoreId=\"{store_id}\"");
        let search =
            |schema: &str, term: String| format!("SEARCH('{schema}{term}', '{stat}', {period})");
        match self {
            // No schema: the guide names the second dimension CertificateName and
            // XksProxyCertificateName.
            Query::Certificate => search(
                "",
                format!("Namespace=\"{NAMESPACE}\" MetricName=\"{CERTIFICATE_METRIC}\" {store}"),
            ),
            Query::CredentialAge => search(
                &format!("{{{NAMESPACE},CustomKeyStoreId}} "),
                format!("MetricName=\"{CREDENTIAL_AGE_METRIC}\" {store}"),
            ),
            Query::LatencyP99 | Query::LatencyMax => search(
                &format!("{{{NAMESPACE},CustomKeyStoreId,KeySpec,KmsOperation,XksOperation}} "),
                format!("MetricName=\"{LATENCY_METRIC}\" {store}"),
            ),
            Query::Errors => search(
                &format!(
                    "{{{NAMESPACE},CustomKeyStoreId,ErrorType,ExceptionName,KeySpec,KmsOperation,XksOperation}} "
                ),
                format!("MetricName=\"{ERRORS_METRIC}\" {store}"),
            ),
            // No schema, both metric names: the guide names the metric and its dimension two
            // ways; the state is matched as an exact term.
            Query::ManagersActive | Query::ManagersDegraded | Query::ManagersUnavailable => {
                format!(
                    "SUM({})",
                    search(
                        "",
                        format!(
                            "Namespace=\"{NAMESPACE}\" (MetricName=\"{MANAGER_STATES_METRIC}\" OR MetricName=\"{MANAGER_STATES_METRIC_OLD}\") {store} \"{}\"",
                            self.manager_state().unwrap_or_default()
                        )
                    )
                )
            }
            Query::Throttle => search(
                &format!("{{{NAMESPACE},CustomKeyStoreId,KeySpec,KmsOperation}} "),
                format!("MetricName=\"{THROTTLE_METRIC}\" {store}"),
            ),
            // The id is a cluster's here; no schema: the series per HSM (ClusterId, HsmId) and
            // any per cluster are both found.
            Query::HsmUnhealthy => search(
                "",
                format!(
                    "Namespace=\"{CLOUDHSM_NAMESPACE}\" MetricName=\"{HSM_UNHEALTHY_METRIC}\" ClusterId=\"{store_id}\""
                ),
            ),
        }
    }

    /// The label asked for (CloudWatch's dynamic labels name each time series a search finds).
    pub fn label(self) -> Option<String> {
        let dim = |d: &str| format!("${{PROP('Dim.{d}')}}");
        let sep = LABEL_SEPARATOR;
        match self {
            Query::LatencyP99 | Query::LatencyMax => Some(format!(
                "{}{sep}{}",
                dim("KmsOperation"),
                dim("XksOperation")
            )),
            Query::Errors => Some(format!(
                "{}{sep}{}{sep}{}{sep}{}",
                dim("ExceptionName"),
                dim("ErrorType"),
                dim("KmsOperation"),
                dim("XksOperation")
            )),
            Query::Throttle => Some(dim("KmsOperation")),
            Query::HsmUnhealthy => Some(dim("HsmId")),
            _ => None,
        }
    }
}

/// A store id that can go into a search expression (AWS's are `cks-` and hex digits).
pub fn usable_store_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// One query of a GetMetricData call, as the request (and the CLI's q.json) spells it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct QuerySpec {
    pub id: String,
    pub expression: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub return_data: bool,
}

/// Whether a metrics target is a CloudHSM cluster (its queries are [`Query::CLUSTER`]) rather
/// than an external key store ([`Query::ALL`]).
pub fn is_cluster(id: &str) -> bool {
    id.starts_with("cluster-")
}

/// The queries of one target: a store's, or a cluster's.
pub fn queries_of(id: &str) -> &'static [Query] {
    if is_cluster(id) {
        &Query::CLUSTER
    } else {
        &Query::ALL
    }
}

/// Every query for these targets (external key store ids, and the cluster ids of CloudHSM key
/// stores), in order (ids that cannot go into an expression are left out).
pub fn queries(store_ids: &[String], period: u32) -> Vec<QuerySpec> {
    store_ids
        .iter()
        .filter(|id| usable_store_id(id))
        .flat_map(|id| {
            queries_of(id).iter().map(move |q| QuerySpec {
                id: q.id(id),
                expression: q.expression(id, period),
                label: q.label(),
                return_data: true,
            })
        })
        .collect()
}

/// The window a live read asked for (a snapshot does not record it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Seconds since the epoch.
    pub start: i64,
    pub end: i64,
    pub period: u32,
    /// The `--since` asked for (the start is aligned down to a whole period).
    pub since: Duration,
}

/// One GetMetricData read: what `aws cloudwatch get-metric-data --output json` prints (every
/// batch and page merged), and the window it asked for when this run made it.
#[derive(Debug, Clone)]
pub struct MetricData {
    pub output: Arc<GetMetricDataOutput>,
    pub window: Option<Window>,
}

/// Merges the results of several calls and pages: the data points of one time series (same
/// id and label) may come over several pages. Queries that were asked but got no result get
/// an empty one, so that a recorded snapshot says "asked, no data" rather than "not asked".
pub fn merge(asked: &[QuerySpec], parts: Vec<GetMetricDataOutput>) -> GetMetricDataOutput {
    let mut out = GetMetricDataOutput::default();
    for part in parts {
        for r in part.metric_data_results {
            match out
                .metric_data_results
                .iter_mut()
                .find(|x| x.id == r.id && x.label == r.label)
            {
                Some(x) => {
                    x.timestamps.extend(r.timestamps);
                    x.values.extend(r.values);
                    if r.status_code.as_deref() != Some("Complete") && r.status_code.is_some() {
                        x.status_code = r.status_code;
                    }
                    x.messages.extend(r.messages);
                }
                None => out.metric_data_results.push(r),
            }
        }
        out.messages.extend(part.messages);
    }
    for q in asked {
        if !out.metric_data_results.iter().any(|r| r.id == q.id) {
            out.metric_data_results.push(MetricDataResult {
                id: q.id.clone(),
                label: Some(String::new()),
                status_code: Some("Complete".into()),
                ..Default::default()
            });
        }
    }
    out
}

/// An RFC 3339 timestamp (the CLI prints `2024-06-01T12:00:00+00:00`) as seconds since the epoch.
pub fn parse_time(text: &str) -> Option<i64> {
    use aws_smithy_types::date_time::{DateTime, Format};
    DateTime::from_str(text.trim(), Format::DateTimeWithOffset)
        .ok()
        .map(|d| d.secs())
}

/// Seconds since the epoch as the AWS CLI prints a timestamp.
pub fn format_time(secs: i64) -> String {
    use aws_smithy_types::date_time::{DateTime, Format};
    DateTime::from_secs(secs)
        .fmt(Format::DateTime)
        .map(|s| s.trim_end_matches('Z').to_string() + "+00:00")
        .unwrap_or_else(|_| secs.to_string())
}

/// Seconds since the epoch, now.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// One data point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Seconds since the epoch.
    pub t: i64,
    pub v: f64,
}

/// One time series of a query's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The label CloudWatch gave it ([`Query::label`]'s values, or its own default).
    pub label: String,
    /// Oldest first.
    pub points: Vec<Point>,
    /// `Complete`, `PartialData`, `InternalError`, `Forbidden`.
    pub status: Option<String>,
    pub messages: Vec<String>,
}

impl Series {
    /// The label's parts ([`LABEL_SEPARATOR`]).
    pub fn parts(&self) -> Vec<&str> {
        self.label.split(LABEL_SEPARATOR).map(str::trim).collect()
    }
    pub fn latest(&self) -> Option<Point> {
        self.points.last().copied()
    }
    pub fn max(&self) -> Option<Point> {
        self.points
            .iter()
            .copied()
            .fold(None, |m: Option<Point>, p| match m {
                Some(m) if m.v >= p.v => Some(m),
                _ => Some(p),
            })
    }
    pub fn sum(&self) -> f64 {
        self.points.iter().map(|p| p.v).sum()
    }
    /// Whether CloudWatch could not answer this series (a status other than Complete or
    /// PartialData).
    pub fn failed(&self) -> bool {
        matches!(self.status.as_deref(), Some(s) if s != "Complete" && s != "PartialData")
    }
}

/// What one store's metrics checks read: the time series of each of its queries.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StoreMetrics {
    pub store_id: String,
    pub window: Option<Window>,
    /// Each query the answer holds a result for (none: the read did not ask it, e.g. a snapshot
    /// recorded by hand with other queries), and its time series (none: no data).
    pub queries: BTreeMap<Query, Vec<Series>>,
    /// Timestamps that could not be read (a snapshot edited by hand), and messages of the call.
    pub notes: Vec<String>,
}

/// How a query's answer reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reading<'a> {
    /// The read holds no result for the query.
    NotAsked,
    /// CloudWatch answered the query with an error status (the message says which).
    Failed(&'a Series),
    /// No data point in the window.
    NoData,
    /// Every time series that has data points.
    Data(&'a [Series]),
}

impl StoreMetrics {
    /// This store's part of a read.
    pub fn of(data: &MetricData, store_id: &str) -> StoreMetrics {
        let mut out = StoreMetrics {
            store_id: store_id.to_string(),
            window: data.window,
            ..Default::default()
        };
        let ids: Vec<(Query, String)> = queries_of(store_id)
            .iter()
            .map(|q| (*q, q.id(store_id)))
            .collect();
        for r in &data.output.metric_data_results {
            let Some((q, _)) = ids.iter().find(|(_, id)| *id == r.id) else {
                continue;
            };
            let mut points = Vec::new();
            for (i, t) in r.timestamps.iter().enumerate() {
                match (parse_time(t), r.values.get(i)) {
                    (Some(t), Some(v)) if v.is_finite() => points.push(Point { t, v: *v }),
                    (None, _) => out
                        .notes
                        .push(format!("{}: timestamp {t:?} is not RFC 3339", r.id)),
                    _ => {}
                }
            }
            points.sort_by_key(|p| p.t);
            let series = out.queries.entry(*q).or_default();
            let status = r.status_code.clone();
            let failed =
                matches!(status.as_deref(), Some(s) if s != "Complete" && s != "PartialData");
            if !points.is_empty() || failed {
                series.push(Series {
                    label: r.label.clone().unwrap_or_default(),
                    points,
                    status,
                    messages: r
                        .messages
                        .iter()
                        .map(|m| {
                            format!(
                                "{}: {}",
                                m.code.as_deref().unwrap_or("message"),
                                m.value.as_deref().unwrap_or_default()
                            )
                        })
                        .collect(),
                });
            }
        }
        for m in &data.output.messages {
            out.notes.push(format!(
                "GetMetricData: {}: {}",
                m.code.as_deref().unwrap_or("message"),
                m.value.as_deref().unwrap_or_default()
            ));
        }
        out
    }

    pub fn read(&self, q: Query) -> Reading<'_> {
        match self.queries.get(&q) {
            None => Reading::NotAsked,
            Some(s) => {
                if let Some(f) = s.iter().find(|s| s.failed()) {
                    return Reading::Failed(f);
                }
                if s.iter().all(|s| s.points.is_empty()) {
                    Reading::NoData
                } else {
                    Reading::Data(s)
                }
            }
        }
    }

    /// The window in words: "the last 24h (2024-06-01T12:00:00+00:00 to ...)" or, for a
    /// snapshot, "the recorded window".
    pub fn window_text(&self) -> String {
        match self.window {
            Some(w) => format!(
                "the last {} ({} to {}, {}-second periods)",
                show_duration(w.since),
                format_time(w.start),
                format_time(w.end),
                w.period
            ),
            None => "the recorded window".to_string(),
        }
    }

    /// The aggregation period, when known (a live read), else guessed from the spacing of the
    /// data points of `series` (a snapshot).
    pub fn period(&self, series: &[Series]) -> Option<u32> {
        if let Some(w) = self.window {
            return Some(w.period);
        }
        series
            .iter()
            .flat_map(|s| s.points.windows(2).map(|w| (w[1].t - w[0].t).max(0)))
            .filter(|d| *d > 0)
            .min()
            .map(|d| d as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_give_about_288_points() {
        assert_eq!(period_for(Duration::from_secs(86400)), 300);
        assert_eq!(period_for(Duration::from_secs(3600)), 60);
        assert_eq!(period_for(Duration::from_secs(7 * 86400)), 2100);
        assert_eq!(period_for(Duration::from_secs(300)), 60);
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("24h").unwrap(), Duration::from_secs(86400));
        assert_eq!(
            parse_duration("1d12h").unwrap(),
            Duration::from_secs(129600)
        );
        assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1800));
        assert!(parse_duration("1m").is_err());
        assert!(parse_duration("16d").is_err());
        assert!(parse_duration("24").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("2w").is_err());
        assert_eq!(show_duration(Duration::from_secs(86400)), "24h");
        assert_eq!(show_duration(Duration::from_secs(7 * 86400)), "7d");
        assert_eq!(show_duration(Duration::from_secs(7200)), "2h");
    }

    #[test]
    fn ids_and_expressions() {
        let id = "cks-1234567890abcdef0";
        assert_eq!(Query::Certificate.id(id), "cert_cks_1234567890abcdef0");
        assert_eq!(
            Query::Errors.expression(id, 300),
            "SEARCH('{AWS/KMS,CustomKeyStoreId,ErrorType,ExceptionName,KeySpec,KmsOperation,XksOperation} MetricName=\"XksProxyErrors\" CustomKeyStoreId=\"cks-1234567890abcdef0\"', 'Sum', 300)"
        );
        assert_eq!(
            Query::ManagersDegraded.expression(id, 60),
            "SUM(SEARCH('Namespace=\"AWS/KMS\" (MetricName=\"XksExternalKeyManagerStates\" OR MetricName=\"XksProxyHsmStates\") CustomKeyStoreId=\"cks-1234567890abcdef0\" \"Degraded\"', 'Maximum', 60))"
        );
        assert_eq!(
            Query::Errors.label().unwrap(),
            "${PROP('Dim.ExceptionName')}|${PROP('Dim.ErrorType')}|${PROP('Dim.KmsOperation')}|${PROP('Dim.XksOperation')}"
        );
        let q = queries(&[id.to_string(), "bad\"id".to_string()], 300);
        assert_eq!(q.len(), Query::ALL.len());
        let mut ids: Vec<&str> = q.iter().map(|q| q.id.as_str()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), Query::ALL.len());
    }

    #[test]
    fn times_round_trip_as_the_cli_prints_them() {
        let t = parse_time("2024-06-01T12:00:00+00:00").unwrap();
        assert_eq!(format_time(t), "2024-06-01T12:00:00+00:00");
        assert_eq!(parse_time("2024-06-01T12:00:00Z"), Some(t));
        assert_eq!(parse_time("2024-06-01T14:00:00+02:00"), Some(t));
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn merging_joins_pages_and_marks_queries_without_answer() {
        let asked = queries(&["cks-1".to_string()], 300);
        let page = |t: &str, v: f64| GetMetricDataOutput {
            metric_data_results: vec![MetricDataResult {
                id: "cert_cks_1".into(),
                label: Some("a".into()),
                timestamps: vec![t.into()],
                values: vec![v],
                status_code: Some("Complete".into()),
                ..Default::default()
            }],
            ..Default::default()
        };
        let m = merge(
            &asked,
            vec![
                page("2024-06-01T12:05:00+00:00", 40.0),
                page("2024-06-01T12:00:00+00:00", 41.0),
            ],
        );
        assert_eq!(m.metric_data_results.len(), Query::ALL.len());
        let data = MetricData {
            output: Arc::new(m),
            window: None,
        };
        let s = StoreMetrics::of(&data, "cks-1");
        match s.read(Query::Certificate) {
            Reading::Data(series) => {
                assert_eq!(series[0].points.len(), 2);
                assert_eq!(series[0].latest().unwrap().v, 40.0);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(s.read(Query::Errors), Reading::NoData);
        assert_eq!(
            StoreMetrics::of(&data, "cks-2").read(Query::Errors),
            Reading::NotAsked
        );
    }
}
