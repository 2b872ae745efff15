//! Facts read from the AWS APIs with the official SDK clients.
//!
//! One `SdkConfig` from the standard credential and Region chain (profile, environment, SSO,
//! credential process, ...), with the EC2 instance metadata service bounded so that a machine
//! without it does not stall; HTTPS over rustls with the ring provider; the SDK's standard
//! retry mode (throttling is retried) and an operation timeout.

use super::model::*;
use super::{Fact, FactError};
use aws_config::meta::region::RegionProviderChain;
use aws_config::provider_config::ProviderConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_kms::error::SdkError;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use aws_smithy_runtime::client::retries::RetryPartition;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use futures::future::BoxFuture;
use std::time::Duration;

/// What the command line says about how to reach AWS.
#[derive(Debug, Clone, Default)]
pub struct LiveOptions {
    pub profile: Option<String>,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    /// Bound on each API operation, retries included.
    pub timeout: Duration,
    /// `--jobs`: the most AWS calls one read may make at once (DescribeKey of many keys);
    /// `None`: [`DESCRIBE_KEYS_AT_ONCE`].
    pub calls_at_once: Option<usize>,
    /// Credentials to use instead of the standard chain's (a role assumed in another account
    /// of an organisation scan, `src/facts/org.rs`); the profile then only names the Region.
    pub credentials: Option<aws_credential_types::provider::SharedCredentialsProvider>,
    /// The SDK's adaptive retry mode (client-side rate limiting as throttling is met) instead of
    /// standard: a scan of many accounts and Regions.
    pub adaptive_retry: bool,
    /// Whose calls these are (an account id, a profile): with the Region, the SDK retry
    /// partition, so that one account's throttling (AWS throttles per account and Region) does
    /// not slow or use up the retries of another's. None: the configured credentials.
    pub retry_scope: Option<String>,
}

#[derive(Clone)]
pub struct LiveSource {
    region: String,
    endpoint_url: Option<String>,
    timeout: Duration,
    /// DescribeKey calls in flight at once (`--jobs` bounds it).
    describe_keys_at_once: usize,
    cloudhsm: aws_sdk_cloudhsmv2::Client,
    ec2: aws_sdk_ec2::Client,
    kms: aws_sdk_kms::Client,
    elbv2: aws_sdk_elasticloadbalancingv2::Client,
    sts: aws_sdk_sts::Client,
    cloudwatch: aws_sdk_cloudwatch::Client,
    cloudtrail: aws_sdk_cloudtrail::Client,
    /// LookupEvents' 2 calls a second, for every read of this source (this Region).
    trail_pace: std::sync::Arc<tokio::sync::Mutex<super::trail::Pace>>,
    /// Only `scan --security-hub-import` calls it (BatchImportFindings, `src/securityhub.rs`).
    securityhub: aws_sdk_securityhub::Client,
    /// The configuration every client above was made from (credentials, retries, timeouts,
    /// endpoint): for the clients made on demand (Organizations, STS AssumeRole, Security Hub).
    conf: SdkConfig,
}

/// The live source could not be set up (no Region, unusable profile): bad input, exit 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SetupError(pub String);

/// DescribeKey calls in flight at once in a key pre-flight (KMS's DescribeKey request quota is
/// shared with the account's other callers).
pub const DESCRIBE_KEYS_AT_ONCE: usize = 8;

/// The process's one HTTPS client (rustls on ring, its connection pool): every source of a
/// scan shares it, so that many accounts' and Regions' clients neither load the TLS roots nor
/// open connections each for themselves (connections carry no credentials; each request is
/// signed by its own client).
fn http_client() -> aws_sdk_kms::config::SharedHttpClient {
    static HTTP: std::sync::OnceLock<aws_sdk_kms::config::SharedHttpClient> =
        std::sync::OnceLock::new();
    HTTP.get_or_init(|| {
        aws_sdk_kms::config::SharedHttpClient::new(OneHttpClient(
            aws_smithy_http_client::Builder::new()
                .tls_provider(Provider::Rustls(CryptoMode::Ring))
                .build_https(),
        ))
    })
    .clone()
}

/// The HTTPS client, less one thing: the SDK's client validates its configuration when each
/// service client is made by building a throwaway connector, which parses every TLS root
/// certificate again. A scan makes ten service clients per account and Region; measured on an
/// organisation scan, those builds were most of cks-doctor's CPU time. The connectors
/// themselves are built once per timeout setting, on first use, and cached by the client.
#[derive(Debug)]
struct OneHttpClient(aws_sdk_kms::config::SharedHttpClient);

impl aws_smithy_runtime_api::client::http::HttpClient for OneHttpClient {
    fn http_connector(
        &self,
        settings: &aws_smithy_runtime_api::client::http::HttpConnectorSettings,
        components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
    ) -> aws_smithy_runtime_api::client::http::SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn connector_metadata(
        &self,
    ) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

/// How long the instance metadata service may take to answer before cks-doctor moves on.
const IMDS_BUDGET: Duration = Duration::from_millis(1500);

fn imds_client(conf: &ProviderConfig) -> aws_config::imds::Client {
    aws_config::imds::Client::builder()
        .configure(conf)
        .connect_timeout(Duration::from_millis(400))
        .read_timeout(Duration::from_millis(600))
        .max_attempts(1)
        .build()
}

/// An EC2 filter on `name` with these values.
fn filter(name: &str, values: &[String]) -> aws_sdk_ec2::types::Filter {
    aws_sdk_ec2::types::Filter::builder()
        .name(name)
        .set_values(Some(values.to_vec()))
        .build()
}

/// Every page of a paginated call (`$call`, a request builder), each of its `$items` converted
/// with `$convert`; the first error ends it, classified for `$action`.
macro_rules! all_pages {
    ($self:ident, $action:expr, $call:expr, $items:ident, $convert:expr) => {{
        let mut pages = $call.into_paginator().send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| $self.classify($action, e))?;
            out.extend(page.$items().iter().map($convert));
        }
        Ok(out)
    }};
}

impl LiveSource {
    pub async fn connect(opts: &LiveOptions) -> Result<LiveSource, SetupError> {
        let http = http_client();
        let base = ProviderConfig::without_region().with_http_client(http.clone());

        // Region: --region, then AWS_REGION/AWS_DEFAULT_REGION and the profile, then IMDS
        // with a short budget.
        let mut env_and_profile = aws_config::profile::region::ProfileFileRegionProvider::builder();
        if let Some(p) = &opts.profile {
            env_and_profile = env_and_profile.profile_name(p);
        }
        let chain = RegionProviderChain::first_try(opts.region.clone().map(Region::new))
            .or_else(aws_config::environment::region::EnvironmentVariableRegionProvider::new())
            .or_else(env_and_profile.build());
        let mut region = chain.region().await;
        if region.is_none() {
            let imds = aws_config::imds::region::ImdsRegionProvider::builder()
                .imds_client(imds_client(&base))
                .build();
            region = tokio::time::timeout(IMDS_BUDGET, imds.region())
                .await
                .ok()
                .flatten();
        }
        let Some(region) = region else {
            return Err(SetupError(
                "no AWS Region configured: pass --region, set AWS_REGION, or set region in the profile".into(),
            ));
        };

        let provider_conf = base.clone().with_region(Some(region.clone()));
        let mut creds =
            aws_config::default_provider::credentials::DefaultCredentialsChain::builder()
                .configure(provider_conf.clone())
                .imds_client(imds_client(&provider_conf))
                .region(region.clone());
        if let Some(p) = &opts.profile {
            creds = creds.profile_name(p);
        }
        let creds = match &opts.credentials {
            Some(given) => given.clone(),
            None => {
                aws_credential_types::provider::SharedCredentialsProvider::new(creds.build().await)
            }
        };
        let retry = if opts.adaptive_retry {
            RetryConfig::adaptive()
        } else {
            RetryConfig::standard()
        };

        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http)
            .region(region.clone())
            .credentials_provider(creds)
            .retry_config(retry.with_max_attempts(4))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3).min(opts.timeout))
                    .operation_timeout(opts.timeout)
                    .build(),
            );
        if let Some(p) = &opts.profile {
            loader = loader.profile_name(p);
        }
        if let Some(url) = &opts.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        let conf: SdkConfig = loader.load().await;
        // One retry partition (token bucket, adaptive rate limiter) per service, account and
        // Region; the SDK's default shares one per service across the whole process.
        let scope = format!(
            "{}/{}",
            opts.retry_scope.as_deref().unwrap_or("default"),
            region
        );
        macro_rules! client {
            ($sdk:ident) => {
                $sdk::Client::from_conf(
                    $sdk::config::Builder::from(&conf)
                        .retry_partition(RetryPartition::new(format!(
                            "{}/{scope}",
                            stringify!($sdk)
                        )))
                        .build(),
                )
            };
        }
        Ok(LiveSource {
            region: region.to_string(),
            endpoint_url: opts.endpoint_url.clone(),
            timeout: opts.timeout,
            describe_keys_at_once: opts
                .calls_at_once
                .unwrap_or(DESCRIBE_KEYS_AT_ONCE)
                .clamp(1, DESCRIBE_KEYS_AT_ONCE),
            cloudhsm: client!(aws_sdk_cloudhsmv2),
            ec2: client!(aws_sdk_ec2),
            kms: client!(aws_sdk_kms),
            elbv2: client!(aws_sdk_elasticloadbalancingv2),
            sts: client!(aws_sdk_sts),
            cloudwatch: client!(aws_sdk_cloudwatch),
            cloudtrail: client!(aws_sdk_cloudtrail),
            trail_pace: Default::default(),
            securityhub: client!(aws_sdk_securityhub),
            conf,
        })
    }

    /// The SDK configuration of this source (for clients made on demand).
    pub fn sdk_config(&self) -> &SdkConfig {
        &self.conf
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// A clone of the KMS client (the same config: credentials, retries, timeouts), for the
    /// one command that changes a store (`src/connect.rs`).
    pub fn kms(&self) -> aws_sdk_kms::Client {
        self.kms.clone()
    }

    /// A clone of the CloudWatch client, for `cks-doctor alarms` (`src/alarms.rs`).
    pub fn cloudwatch(&self) -> aws_sdk_cloudwatch::Client {
        self.cloudwatch.clone()
    }

    /// A clone of the Security Hub client, for `scan --security-hub-import` (`src/securityhub.rs`).
    pub fn securityhub(&self) -> aws_sdk_securityhub::Client {
        self.securityhub.clone()
    }

    /// Each call's time budget (for [`classify`] by callers outside the facts layer).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn describe(&self) -> String {
        match &self.endpoint_url {
            Some(u) => format!("AWS APIs in {} via {u}", self.region),
            None => format!("AWS APIs in {}", self.region),
        }
    }

    fn classify<E, R>(&self, action: &str, err: SdkError<E, R>) -> FactError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        classify(action, self.timeout, err)
    }

    pub async fn describe_clusters(&self, ids: &[String]) -> Fact<Vec<Cluster>> {
        const ACTION: &str = "cloudhsm:DescribeClusters";
        let mut pages = self
            .cloudhsm
            .describe_clusters()
            .filters("clusterIds", ids.to_vec())
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = match page {
                Ok(p) => p,
                // CloudHSM may answer an unknown id with a not-found error rather than an
                // empty list: for one id that is "no such cluster"; for a batch, ask for each
                // id alone so that the clusters that do exist are not lost.
                Err(e) if e.code() == Some("CloudHsmResourceNotFoundException") => {
                    if ids.len() <= 1 {
                        return Ok(out);
                    }
                    let each = futures::future::try_join_all(
                        ids.iter()
                            .map(|id| Box::pin(self.describe_clusters(std::slice::from_ref(id)))),
                    )
                    .await?;
                    return Ok(each.into_iter().flatten().collect());
                }
                Err(e) => return Err(self.classify(ACTION, e)),
            };
            out.extend(page.clusters().iter().map(convert::cluster));
        }
        Ok(out)
    }

    pub async fn describe_security_groups(&self, ids: &[String]) -> Fact<Vec<SecurityGroup>> {
        // A filter, not GroupIds: a deleted group is an empty answer, not an error.
        let call = self
            .ec2
            .describe_security_groups()
            .filters(filter("group-id", ids));
        all_pages!(
            self,
            "ec2:DescribeSecurityGroups",
            call,
            security_groups,
            convert::security_group
        )
    }

    pub async fn describe_subnets(&self, ids: &[String]) -> Fact<Vec<Subnet>> {
        let call = self
            .ec2
            .describe_subnets()
            .filters(filter("subnet-id", ids));
        all_pages!(self, "ec2:DescribeSubnets", call, subnets, convert::subnet)
    }

    pub async fn describe_route_tables(&self, vpc_ids: &[String]) -> Fact<Vec<RouteTable>> {
        let call = self
            .ec2
            .describe_route_tables()
            .filters(filter("vpc-id", vpc_ids));
        all_pages!(
            self,
            "ec2:DescribeRouteTables",
            call,
            route_tables,
            convert::route_table
        )
    }

    pub async fn describe_network_acls(&self, vpc_ids: &[String]) -> Fact<Vec<NetworkAcl>> {
        let call = self
            .ec2
            .describe_network_acls()
            .filters(filter("vpc-id", vpc_ids));
        all_pages!(
            self,
            "ec2:DescribeNetworkAcls",
            call,
            network_acls,
            convert::network_acl
        )
    }

    pub async fn describe_vpc_endpoint_service_configurations(
        &self,
        service_names: &[String],
    ) -> Fact<Vec<ServiceConfiguration>> {
        let call = self
            .ec2
            .describe_vpc_endpoint_service_configurations()
            .filters(filter("service-name", service_names));
        all_pages!(
            self,
            "ec2:DescribeVpcEndpointServiceConfigurations",
            call,
            service_configurations,
            convert::service_configuration
        )
    }

    pub async fn describe_vpc_endpoint_service_permissions(
        &self,
        service_id: &str,
    ) -> Fact<Vec<AllowedPrincipal>> {
        let call = self
            .ec2
            .describe_vpc_endpoint_service_permissions()
            .service_id(service_id);
        all_pages!(
            self,
            "ec2:DescribeVpcEndpointServicePermissions",
            call,
            allowed_principals,
            |p| AllowedPrincipal {
                principal_type: p.principal_type().map(|t| t.as_str().to_string()),
                principal: p.principal().unwrap_or_default().to_string(),
                service_id: Some(p.service_id().unwrap_or(service_id).to_string()),
            }
        )
    }

    pub async fn describe_vpc_endpoint_services(
        &self,
        service_names: &[String],
    ) -> Fact<Vec<ServiceDetail>> {
        const ACTION: &str = "ec2:DescribeVpcEndpointServices";
        // A filter, not ServiceNames: an unknown name is an empty answer, not an error.
        let filter = filter("service-name", service_names);
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .ec2
                .describe_vpc_endpoint_services()
                .filters(filter.clone())
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| self.classify(ACTION, e))?;
            out.extend(page.service_details().iter().map(convert::service_detail));
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(out)
    }

    pub async fn describe_load_balancers(&self, arns: &[String]) -> Fact<Vec<LoadBalancer>> {
        const ACTION: &str = "elasticloadbalancing:DescribeLoadBalancers";
        let result = self
            .elbv2
            .describe_load_balancers()
            .set_load_balancer_arns(Some(arns.to_vec()))
            .send()
            .await;
        match result {
            Ok(out) => Ok(out
                .load_balancers()
                .iter()
                .map(convert::load_balancer)
                .collect()),
            // One missing ARN fails the whole call: ask for each alone and keep what exists.
            Err(e) if e.code() == Some("LoadBalancerNotFound") => {
                if arns.len() <= 1 {
                    return Ok(Vec::new());
                }
                let each =
                    futures::future::try_join_all(arns.iter().map(|arn| {
                        Box::pin(self.describe_load_balancers(std::slice::from_ref(arn)))
                    }))
                    .await?;
                Ok(each.into_iter().flatten().collect())
            }
            Err(e) => Err(self.classify(ACTION, e)),
        }
    }

    pub async fn describe_listeners(&self, lb_arns: &[String]) -> Fact<Vec<Listener>> {
        const ACTION: &str = "elasticloadbalancing:DescribeListeners";
        let mut out = Vec::new();
        for arn in lb_arns {
            let mut marker: Option<String> = None;
            loop {
                let result = self
                    .elbv2
                    .describe_listeners()
                    .load_balancer_arn(arn)
                    .set_marker(marker.clone())
                    .send()
                    .await;
                match result {
                    Ok(page) => {
                        out.extend(page.listeners().iter().map(convert::listener));
                        match page.next_marker() {
                            Some(m) if !m.is_empty() => marker = Some(m.to_string()),
                            _ => break,
                        }
                    }
                    // Deleted since DescribeLoadBalancers: it has no listeners.
                    Err(e) if e.code() == Some("LoadBalancerNotFound") => break,
                    Err(e) => return Err(self.classify(ACTION, e)),
                }
            }
        }
        Ok(out)
    }

    pub async fn describe_target_health(
        &self,
        group_arns: &[String],
    ) -> Fact<Vec<TargetHealthDescription>> {
        const ACTION: &str = "elasticloadbalancing:DescribeTargetHealth";
        let mut out = Vec::new();
        for arn in group_arns {
            let result = self
                .elbv2
                .describe_target_health()
                .target_group_arn(arn)
                .send()
                .await;
            match result {
                Ok(o) => out.extend(
                    o.target_health_descriptions()
                        .iter()
                        .map(convert::target_health),
                ),
                Err(e) if e.code() == Some("TargetGroupNotFound") => {}
                Err(e) => return Err(self.classify(ACTION, e)),
            }
        }
        Ok(out)
    }

    /// The Regions enabled for the account (for `scan --all-regions`).
    pub async fn describe_regions(&self) -> Fact<Vec<String>> {
        const ACTION: &str = "ec2:DescribeRegions";
        let out = self
            .ec2
            .describe_regions()
            .send()
            .await
            .map_err(|e| self.classify(ACTION, e))?;
        let mut regions: Vec<String> = out
            .regions()
            .iter()
            .filter_map(|r| r.region_name().map(str::to_string))
            .collect();
        regions.sort();
        Ok(regions)
    }

    pub async fn get_caller_identity(&self) -> Fact<CallerIdentity> {
        const ACTION: &str = "sts:GetCallerIdentity";
        let out = self
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| self.classify(ACTION, e))?;
        Ok(CallerIdentity {
            account: out.account().unwrap_or_default().to_string(),
            arn: out.arn().map(str::to_string),
            user_id: None,
        })
    }

    /// Every KMS key of the account in this Region (all pages).
    pub async fn list_keys(&self) -> Fact<Vec<KeyListEntry>> {
        let call = self.kms.list_keys().limit(1000);
        all_pages!(self, "kms:ListKeys", call, keys, convert::key_list_entry)
    }

    /// DescribeKey for each key, at most [`DESCRIBE_KEYS_AT_ONCE`] at a time (fewer with `--jobs`). A key whose
    /// policy denies the caller, or that was deleted since it was listed, is unreadable (and
    /// said so); any other error (throttled past the retries, unreachable) ends the read.
    pub async fn describe_keys(&self, ids: &[String]) -> Fact<KeyDescriptions> {
        use futures::stream::{self, StreamExt};
        const ACTION: &str = "kms:DescribeKey";
        let answers: Vec<(String, Result<Option<KeyMetadata>, FactError>)> =
            stream::iter(ids.iter().cloned())
                .map(|id| async move {
                    let r = self.kms.describe_key().key_id(&id).send().await;
                    let r = match r {
                        Ok(o) => Ok(o.key_metadata().map(convert::key_metadata)),
                        Err(e) if e.code() == Some("NotFoundException") => Ok(None),
                        Err(e) => Err(self.classify(ACTION, e)),
                    };
                    (id, r)
                })
                .buffer_unordered(self.describe_keys_at_once)
                .collect()
                .await;
        let mut out = KeyDescriptions::default();
        for (id, r) in answers {
            match r {
                Ok(Some(k)) => out.keys.push(k),
                Ok(None) => out
                    .unreadable
                    .push((id, "not found (deleted since it was listed)".into())),
                Err(e @ FactError::AccessDenied { .. }) => out.unreadable.push((id, e.to_string())),
                Err(e) => return Err(e),
            }
        }
        out.keys.sort_by(|a, b| a.key_id.cmp(&b.key_id));
        out.unreadable.sort();
        Ok(out)
    }

    /// GetMetricData of the AWS/KMS metrics of these external key stores over the last
    /// `window.since` (`super::metrics`): at most 500 queries a call, every page.
    pub async fn get_metric_data(
        &self,
        store_ids: &[String],
        window: &super::metrics::MetricWindow,
    ) -> Fact<super::metrics::MetricData> {
        use super::metrics;
        use aws_sdk_cloudwatch::types::{MetricDataQuery, ScanBy};
        const ACTION: &str = "cloudwatch:GetMetricData";
        let period = metrics::period_for(window.since);
        // Whole periods, ending at the last whole minute (CloudWatch answers faster for
        // aligned times).
        let end = metrics::now_secs() / 60 * 60;
        let start = (end - window.since.as_secs() as i64) / period as i64 * period as i64;
        let asked = metrics::queries(store_ids, period);
        let mut parts = Vec::new();
        for chunk in asked.chunks(metrics::QUERIES_PER_CALL) {
            let queries: Vec<MetricDataQuery> = chunk
                .iter()
                .map(|q| {
                    MetricDataQuery::builder()
                        .id(&q.id)
                        .expression(&q.expression)
                        .set_label(q.label.clone())
                        .return_data(true)
                        .build()
                })
                .collect();
            let mut token: Option<String> = None;
            loop {
                let page = self
                    .cloudwatch
                    .get_metric_data()
                    .set_metric_data_queries(Some(queries.clone()))
                    .start_time(aws_smithy_types::DateTime::from_secs(start))
                    .end_time(aws_smithy_types::DateTime::from_secs(end))
                    .scan_by(ScanBy::TimestampAscending)
                    .set_next_token(token.take())
                    .send()
                    .await
                    .map_err(|e| self.classify(ACTION, e))?;
                parts.push(convert::metric_data(&page));
                match page.next_token() {
                    Some(t) if !t.is_empty() => token = Some(t.to_string()),
                    _ => break,
                }
            }
        }
        Ok(metrics::MetricData {
            output: std::sync::Arc::new(metrics::merge(&asked, parts)),
            window: Some(metrics::Window {
                start,
                end,
                period,
                since: window.since,
            }),
        })
    }

    /// CloudTrail LookupEvents over the last `window.since` (`super::trail`): one lookup
    /// attribute a call, one call after another, at most 2 a second; each lookup's pages up
    /// to its cap (whether more were left is recorded).
    pub async fn lookup_events(
        &self,
        window: &super::trail::TrailWindow,
    ) -> Fact<super::trail::TrailData> {
        use super::trail::{self, Lookup, LookupSummary};
        use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};
        const ACTION: &str = "cloudtrail:LookupEvents";
        let end = super::metrics::now_secs();
        let start = end - window.since.as_secs() as i64;
        let mut parts = Vec::new();
        let mut lookups = Vec::new();
        // One read at a time per source: the quota is per account and Region.
        let mut pace = self.trail_pace.lock().await;
        for lookup in Lookup::all() {
            let (key, value) = lookup.attribute();
            let attribute = LookupAttribute::builder()
                .attribute_key(LookupAttributeKey::from(key))
                .attribute_value(value)
                .build()
                .map_err(|e| FactError::Service {
                    action: ACTION.into(),
                    detail: e.to_string(),
                })?;
            let mut pages = self
                .cloudtrail
                .lookup_events()
                .lookup_attributes(attribute)
                .start_time(aws_smithy_types::DateTime::from_secs(start))
                .end_time(aws_smithy_types::DateTime::from_secs(end))
                .max_results(trail::PAGE_SIZE)
                .into_paginator()
                .send();
            let mut summary = LookupSummary {
                lookup,
                pages: 0,
                events: 0,
                truncated: false,
                oldest: None,
            };
            let mut events = Vec::new();
            loop {
                pace.wait().await;
                let Some(page) = pages.next().await else {
                    break;
                };
                let page = page.map_err(|e| self.classify(ACTION, e))?;
                summary.pages += 1;
                events.extend(page.events().iter().map(convert::trail_event));
                let more = page.next_token().is_some_and(|t| !t.is_empty());
                if more && summary.pages >= lookup.page_cap() {
                    summary.truncated = true;
                    break;
                }
                if !more {
                    break;
                }
            }
            summary.events = events.len();
            summary.oldest = events
                .iter()
                .filter_map(|e: &trail::Event| e.event_time.as_deref())
                .filter_map(super::metrics::parse_time)
                .min();
            lookups.push(summary);
            parts.push(events);
        }
        Ok(trail::TrailData {
            output: std::sync::Arc::new(trail::TrailData::join(parts)),
            window: Some(trail::ReadWindow {
                start,
                end,
                since: window.since,
            }),
            lookups,
        })
    }

    pub async fn describe_custom_key_stores(&self) -> Fact<Vec<CustomKeyStore>> {
        let call = self.kms.describe_custom_key_stores();
        all_pages!(
            self,
            "kms:DescribeCustomKeyStores",
            call,
            custom_key_stores,
            convert::key_store
        )
    }
}

// The reads of the facts layer are the API calls above.
impl super::Read for LiveSource {
    fn describe(&self) -> String {
        LiveSource::describe(self)
    }
    fn is_live(&self) -> bool {
        true
    }
    fn describe_clusters<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Fact<Vec<Cluster>>> {
        Box::pin(LiveSource::describe_clusters(self, ids))
    }
    fn describe_security_groups<'a>(
        &'a self,
        ids: &'a [String],
    ) -> BoxFuture<'a, Fact<Vec<SecurityGroup>>> {
        Box::pin(LiveSource::describe_security_groups(self, ids))
    }
    fn describe_subnets<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Fact<Vec<Subnet>>> {
        Box::pin(LiveSource::describe_subnets(self, ids))
    }
    fn describe_custom_key_stores<'a>(&'a self) -> BoxFuture<'a, Fact<Vec<CustomKeyStore>>> {
        Box::pin(LiveSource::describe_custom_key_stores(self))
    }
    fn describe_route_tables<'a>(
        &'a self,
        vpc_ids: &'a [String],
    ) -> BoxFuture<'a, Fact<Vec<RouteTable>>> {
        Box::pin(LiveSource::describe_route_tables(self, vpc_ids))
    }
    fn describe_network_acls<'a>(
        &'a self,
        vpc_ids: &'a [String],
    ) -> BoxFuture<'a, Fact<Vec<NetworkAcl>>> {
        Box::pin(LiveSource::describe_network_acls(self, vpc_ids))
    }
    fn describe_vpc_endpoint_service_configurations<'a>(
        &'a self,
        names: &'a [String],
    ) -> BoxFuture<'a, Fact<Vec<ServiceConfiguration>>> {
        Box::pin(LiveSource::describe_vpc_endpoint_service_configurations(
            self, names,
        ))
    }
    fn describe_vpc_endpoint_service_permissions<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Fact<Vec<AllowedPrincipal>>> {
        Box::pin(LiveSource::describe_vpc_endpoint_service_permissions(
            self, id,
        ))
    }
    fn describe_vpc_endpoint_services<'a>(
        &'a self,
        names: &'a [String],
    ) -> BoxFuture<'a, Fact<Vec<ServiceDetail>>> {
        Box::pin(LiveSource::describe_vpc_endpoint_services(self, names))
    }
    fn describe_load_balancers<'a>(
        &'a self,
        arns: &'a [String],
    ) -> BoxFuture<'a, Fact<Vec<LoadBalancer>>> {
        Box::pin(LiveSource::describe_load_balancers(self, arns))
    }
    fn get_caller_identity<'a>(&'a self) -> BoxFuture<'a, Fact<CallerIdentity>> {
        Box::pin(LiveSource::get_caller_identity(self))
    }
    fn describe_listeners<'a>(
        &'a self,
        lb_arns: &'a [String],
    ) -> BoxFuture<'a, Fact<Vec<Listener>>> {
        Box::pin(LiveSource::describe_listeners(self, lb_arns))
    }
    fn describe_target_health<'a>(
        &'a self,
        group_arns: &'a [String],
    ) -> BoxFuture<'a, Fact<Vec<TargetHealthDescription>>> {
        Box::pin(LiveSource::describe_target_health(self, group_arns))
    }
    fn list_keys<'a>(&'a self) -> BoxFuture<'a, Fact<Vec<KeyListEntry>>> {
        Box::pin(LiveSource::list_keys(self))
    }
    fn describe_keys<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Fact<KeyDescriptions>> {
        Box::pin(LiveSource::describe_keys(self, ids))
    }
    fn get_metric_data<'a>(
        &'a self,
        store_ids: &'a [String],
        window: &'a super::metrics::MetricWindow,
    ) -> BoxFuture<'a, Fact<super::metrics::MetricData>> {
        Box::pin(LiveSource::get_metric_data(self, store_ids, window))
    }
    fn lookup_events<'a>(
        &'a self,
        window: &'a super::trail::TrailWindow,
    ) -> BoxFuture<'a, Fact<super::trail::TrailData>> {
        Box::pin(LiveSource::lookup_events(self, window))
    }
}

/// Error codes AWS services use for a missing permission.
const ACCESS_DENIED: &[&str] = &[
    "AccessDeniedException",
    "AccessDenied",
    "UnauthorizedOperation",
    "UnauthorizedException",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "AuthFailure",
];
/// Error codes AWS services use for throttling (the SDK retries these before giving up).
const THROTTLED: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
];

/// Turns an SDK error into the reason a fact could not be read.
pub fn classify<E, R>(action: &str, timeout: Duration, err: SdkError<E, R>) -> FactError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let action = action.to_string();
    let detail = one_line(&DisplayErrorContext(&err).to_string());
    let seconds = timeout.as_secs_f64();
    match &err {
        SdkError::TimeoutError(_) => FactError::TimedOut { action, seconds },
        SdkError::DispatchFailure(d) if d.is_timeout() => FactError::TimedOut { action, seconds },
        SdkError::DispatchFailure(_) => FactError::Unreachable {
            action,
            detail: root_causes(&err),
        },
        // The connection broke while the answer was being read.
        SdkError::ResponseError(_) => FactError::Unreachable {
            action,
            detail: format!(
                "the connection broke during the answer: {}",
                root_causes(&err)
            ),
        },
        SdkError::ServiceError(_) => {
            let code = err.code().unwrap_or_default();
            let message = err.message().map(one_line);
            let detail = match (code, message) {
                ("", Some(m)) => m,
                ("", None) => detail,
                (c, Some(m)) => format!("{c}: {m}"),
                (c, None) => c.to_string(),
            };
            if ACCESS_DENIED.contains(&code) {
                FactError::AccessDenied { action, detail }
            } else if THROTTLED.contains(&code) {
                FactError::Throttled { action, detail }
            } else {
                FactError::Service { action, detail }
            }
        }
        _ => FactError::Service { action, detail },
    }
}

/// The messages of an error's source chain, without the wrappers' debug dumps:
/// "dispatch failure: io error: tcp connect error: Connection refused (os error 111)".
pub(crate) fn root_causes(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        let msg = one_line(&e.to_string());
        if !msg.is_empty() && !parts.iter().any(|p| p.contains(&msg)) {
            parts.push(msg);
        }
        cur = e.source();
    }
    parts.join(": ")
}

fn one_line(s: &str) -> String {
    let s: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().count() > 400 {
        format!("{}…", s.chars().take(400).collect::<String>())
    } else {
        s
    }
}

/// SDK types → the CLI-shaped model. Enum values are kept as the strings AWS sent, so values
/// newer than this build (the SDK's `Unknown` variants) are shown as they are.
/// A DescribeCustomKeyStores entry in the model's shape (for `src/connect.rs`, which calls KMS
/// itself as the one command that changes a store).
pub fn key_store_from_sdk(k: &aws_sdk_kms::types::CustomKeyStoresListEntry) -> CustomKeyStore {
    convert::key_store(k)
}

mod convert {
    use super::*;

    fn s(v: Option<&str>) -> String {
        v.unwrap_or_default().to_string()
    }
    fn o(v: Option<&str>) -> Option<String> {
        v.map(str::to_string)
    }

    pub fn cluster(c: &aws_sdk_cloudhsmv2::types::Cluster) -> Cluster {
        Cluster {
            cluster_id: s(c.cluster_id()),
            state: c
                .state()
                .map(|v| v.as_str().to_string())
                .unwrap_or_default(),
            state_message: o(c.state_message()),
            hsm_type: o(c.hsm_type()),
            mode: c.mode().map(|m| m.as_str().to_string()),
            security_group: o(c.security_group()),
            vpc_id: o(c.vpc_id()),
            subnet_mapping: c
                .subnet_mapping()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
            hsms: c
                .hsms()
                .iter()
                .map(|h| Hsm {
                    hsm_id: h.hsm_id().to_string(),
                    availability_zone: s(h.availability_zone()),
                    subnet_id: o(h.subnet_id()),
                    eni_id: o(h.eni_id()),
                    eni_ip: o(h.eni_ip()),
                    cluster_id: o(h.cluster_id()),
                    state: h
                        .state()
                        .map(|v| v.as_str().to_string())
                        .unwrap_or_default(),
                    state_message: o(h.state_message()),
                })
                .collect(),
            certificates: c.certificates().map(|x| Certificates {
                cluster_csr: o(x.cluster_csr()),
                hsm_certificate: o(x.hsm_certificate()),
                aws_hardware_certificate: o(x.aws_hardware_certificate()),
                manufacturer_hardware_certificate: o(x.manufacturer_hardware_certificate()),
                cluster_certificate: o(x.cluster_certificate()),
            }),
        }
    }

    fn permission(p: &aws_sdk_ec2::types::IpPermission) -> IpPermission {
        IpPermission {
            ip_protocol: s(p.ip_protocol()),
            from_port: p.from_port(),
            to_port: p.to_port(),
            user_id_group_pairs: p
                .user_id_group_pairs()
                .iter()
                .map(|g| UserIdGroupPair {
                    group_id: o(g.group_id()),
                    user_id: o(g.user_id()),
                })
                .collect(),
            ip_ranges: p
                .ip_ranges()
                .iter()
                .map(|r| IpRange {
                    cidr_ip: s(r.cidr_ip()),
                })
                .collect(),
            ipv6_ranges: p
                .ipv6_ranges()
                .iter()
                .map(|r| Ipv6Range {
                    cidr_ipv6: s(r.cidr_ipv6()),
                })
                .collect(),
            prefix_list_ids: p
                .prefix_list_ids()
                .iter()
                .map(|r| PrefixListId {
                    prefix_list_id: s(r.prefix_list_id()),
                })
                .collect(),
        }
    }

    pub fn security_group(g: &aws_sdk_ec2::types::SecurityGroup) -> SecurityGroup {
        SecurityGroup {
            group_id: s(g.group_id()),
            group_name: o(g.group_name()),
            vpc_id: o(g.vpc_id()),
            owner_id: o(g.owner_id()),
            ip_permissions: g.ip_permissions().iter().map(permission).collect(),
            ip_permissions_egress: g.ip_permissions_egress().iter().map(permission).collect(),
        }
    }

    pub fn subnet(n: &aws_sdk_ec2::types::Subnet) -> Subnet {
        Subnet {
            subnet_id: s(n.subnet_id()),
            vpc_id: o(n.vpc_id()),
            availability_zone: o(n.availability_zone()),
            state: n.state().map(|v| v.as_str().to_string()),
            available_ip_address_count: n.available_ip_address_count(),
            cidr_block: o(n.cidr_block()),
        }
    }

    pub fn route_table(t: &aws_sdk_ec2::types::RouteTable) -> RouteTable {
        RouteTable {
            route_table_id: s(t.route_table_id()),
            vpc_id: o(t.vpc_id()),
            associations: t
                .associations()
                .iter()
                .map(|a| RouteTableAssociation {
                    main: a.main().unwrap_or(false),
                    subnet_id: o(a.subnet_id()),
                })
                .collect(),
            routes: t
                .routes()
                .iter()
                .map(|r| Route {
                    destination_cidr_block: o(r.destination_cidr_block()),
                    destination_ipv6_cidr_block: o(r.destination_ipv6_cidr_block()),
                    gateway_id: o(r.gateway_id()),
                    state: r.state().map(|v| v.as_str().to_string()),
                })
                .collect(),
        }
    }

    pub fn network_acl(a: &aws_sdk_ec2::types::NetworkAcl) -> NetworkAcl {
        NetworkAcl {
            network_acl_id: s(a.network_acl_id()),
            vpc_id: o(a.vpc_id()),
            is_default: a.is_default().unwrap_or(false),
            associations: a
                .associations()
                .iter()
                .map(|x| NetworkAclAssociation {
                    subnet_id: o(x.subnet_id()),
                })
                .collect(),
            entries: a
                .entries()
                .iter()
                .map(|e| NetworkAclEntry {
                    rule_number: e.rule_number().unwrap_or_default(),
                    protocol: s(e.protocol()),
                    rule_action: e
                        .rule_action()
                        .map(|v| v.as_str().to_string())
                        .unwrap_or_default(),
                    egress: e.egress().unwrap_or(false),
                    cidr_block: o(e.cidr_block()),
                    ipv6_cidr_block: o(e.ipv6_cidr_block()),
                    port_range: e.port_range().map(|p| PortRange {
                        from: p.from().unwrap_or_default(),
                        to: p.to().unwrap_or_default(),
                    }),
                })
                .collect(),
        }
    }

    fn types(t: &[aws_sdk_ec2::types::ServiceTypeDetail]) -> Vec<ServiceTypeDetail> {
        t.iter()
            .map(|x| ServiceTypeDetail {
                service_type: x
                    .service_type()
                    .map(|v| v.as_str().to_string())
                    .unwrap_or_default(),
            })
            .collect()
    }

    pub fn service_configuration(
        c: &aws_sdk_ec2::types::ServiceConfiguration,
    ) -> ServiceConfiguration {
        ServiceConfiguration {
            service_type: types(c.service_type()),
            service_id: s(c.service_id()),
            service_name: s(c.service_name()),
            service_state: c.service_state().map(|v| v.as_str().to_string()),
            availability_zones: c.availability_zones().to_vec(),
            acceptance_required: c.acceptance_required(),
            network_load_balancer_arns: c.network_load_balancer_arns().to_vec(),
            gateway_load_balancer_arns: c.gateway_load_balancer_arns().to_vec(),
            private_dns_name: o(c.private_dns_name()),
            private_dns_name_configuration: c.private_dns_name_configuration().map(|p| {
                PrivateDnsNameConfiguration {
                    state: p.state().map(|v| v.as_str().to_string()),
                    r#type: o(p.r#type()),
                    value: o(p.value()),
                    name: o(p.name()),
                }
            }),
            supported_ip_address_types: c
                .supported_ip_address_types()
                .iter()
                .map(|t| t.as_str().to_string())
                .collect(),
        }
    }

    pub fn service_detail(d: &aws_sdk_ec2::types::ServiceDetail) -> ServiceDetail {
        ServiceDetail {
            service_name: s(d.service_name()),
            service_id: o(d.service_id()),
            service_type: types(d.service_type()),
            availability_zones: d.availability_zones().to_vec(),
            owner: o(d.owner()),
            acceptance_required: d.acceptance_required(),
            private_dns_name: o(d.private_dns_name()),
            private_dns_name_verification_state: d
                .private_dns_name_verification_state()
                .map(|v| v.as_str().to_string()),
        }
    }

    pub fn listener(l: &aws_sdk_elasticloadbalancingv2::types::Listener) -> Listener {
        Listener {
            listener_arn: s(l.listener_arn()),
            load_balancer_arn: s(l.load_balancer_arn()),
            port: l.port(),
            protocol: l.protocol().map(|p| p.as_str().to_string()),
            default_actions: l
                .default_actions()
                .iter()
                .map(|a| ListenerAction {
                    r#type: a
                        .r#type()
                        .map(|t| t.as_str().to_string())
                        .unwrap_or_default(),
                    target_group_arn: o(a.target_group_arn()),
                    forward_config: a.forward_config().map(|f| ForwardConfig {
                        target_groups: f
                            .target_groups()
                            .iter()
                            .map(|t| TargetGroupTuple {
                                target_group_arn: s(t.target_group_arn()),
                            })
                            .collect(),
                    }),
                })
                .collect(),
        }
    }

    pub fn target_health(
        d: &aws_sdk_elasticloadbalancingv2::types::TargetHealthDescription,
    ) -> TargetHealthDescription {
        TargetHealthDescription {
            target: d.target().map(|t| TargetDescription {
                id: s(t.id()),
                port: t.port(),
                availability_zone: o(t.availability_zone()),
            }),
            health_check_port: o(d.health_check_port()),
            target_health: d.target_health().map(|h| TargetHealth {
                state: h
                    .state()
                    .map(|v| v.as_str().to_string())
                    .unwrap_or_default(),
                reason: h.reason().map(|v| v.as_str().to_string()),
                description: o(h.description()),
            }),
        }
    }

    pub fn load_balancer(l: &aws_sdk_elasticloadbalancingv2::types::LoadBalancer) -> LoadBalancer {
        LoadBalancer {
            load_balancer_arn: s(l.load_balancer_arn()),
            load_balancer_name: o(l.load_balancer_name()),
            r#type: l.r#type().map(|v| v.as_str().to_string()),
            scheme: l.scheme().map(|v| v.as_str().to_string()),
            vpc_id: o(l.vpc_id()),
            state: l.state().map(|st| LoadBalancerState {
                code: st
                    .code()
                    .map(|c| c.as_str().to_string())
                    .unwrap_or_default(),
            }),
            availability_zones: l
                .availability_zones()
                .iter()
                .map(|z| LbAvailabilityZone {
                    zone_name: s(z.zone_name()),
                    subnet_id: o(z.subnet_id()),
                })
                .collect(),
        }
    }

    pub fn key_list_entry(k: &aws_sdk_kms::types::KeyListEntry) -> KeyListEntry {
        KeyListEntry {
            key_id: s(k.key_id()),
            key_arn: o(k.key_arn()),
        }
    }

    pub fn key_metadata(k: &aws_sdk_kms::types::KeyMetadata) -> KeyMetadata {
        KeyMetadata {
            key_id: k.key_id().to_string(),
            arn: o(k.arn()),
            key_state: k.key_state().map(|v| v.as_str().to_string()),
            key_manager: k.key_manager().map(|v| v.as_str().to_string()),
            origin: k.origin().map(|v| v.as_str().to_string()),
            custom_key_store_id: o(k.custom_key_store_id()),
            xks_key_configuration: k
                .xks_key_configuration()
                .map(|x| XksKeyConfiguration { id: o(x.id()) }),
        }
    }

    pub fn metric_data(
        out: &aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataOutput,
    ) -> GetMetricDataOutput {
        let message = |m: &aws_sdk_cloudwatch::types::MessageData| MessageData {
            code: o(m.code()),
            value: o(m.value()),
        };
        GetMetricDataOutput {
            metric_data_results: out
                .metric_data_results()
                .iter()
                .map(|r| MetricDataResult {
                    id: s(r.id()),
                    label: o(r.label()),
                    timestamps: r
                        .timestamps()
                        .iter()
                        .map(|t| super::super::metrics::format_time(t.secs()))
                        .collect(),
                    values: r.values().to_vec(),
                    status_code: r.status_code().map(|c| c.as_str().to_string()),
                    messages: r.messages().iter().map(message).collect(),
                })
                .collect(),
            messages: out.messages().iter().map(message).collect(),
        }
    }

    pub fn trail_event(e: &aws_sdk_cloudtrail::types::Event) -> super::super::trail::Event {
        use super::super::trail::{Event, Resource};
        Event {
            event_id: o(e.event_id()),
            event_name: o(e.event_name()),
            read_only: o(e.read_only()),
            access_key_id: o(e.access_key_id()),
            event_time: e
                .event_time()
                .map(|t| super::super::metrics::format_time(t.secs())),
            event_source: o(e.event_source()),
            username: o(e.username()),
            resources: e
                .resources()
                .iter()
                .map(|r| Resource {
                    resource_type: o(r.resource_type()),
                    resource_name: o(r.resource_name()),
                })
                .collect(),
            cloud_trail_event: o(e.cloud_trail_event()),
        }
    }

    pub fn key_store(k: &aws_sdk_kms::types::CustomKeyStoresListEntry) -> CustomKeyStore {
        CustomKeyStore {
            custom_key_store_id: s(k.custom_key_store_id()),
            custom_key_store_name: s(k.custom_key_store_name()),
            custom_key_store_type: k.custom_key_store_type().map(|v| v.as_str().to_string()),
            cloud_hsm_cluster_id: o(k.cloud_hsm_cluster_id()),
            trust_anchor_certificate: o(k.trust_anchor_certificate()),
            connection_state: k.connection_state().map(|v| v.as_str().to_string()),
            connection_error_code: k.connection_error_code().map(|v| v.as_str().to_string()),
            xks_proxy_configuration: k.xks_proxy_configuration().map(|x| XksProxyConfiguration {
                connectivity: x.connectivity().map(|v| v.as_str().to_string()),
                access_key_id: o(x.access_key_id()),
                uri_endpoint: o(x.uri_endpoint()),
                uri_path: o(x.uri_path()),
                vpc_endpoint_service_name: o(x.vpc_endpoint_service_name()),
                vpc_endpoint_service_owner: o(x.vpc_endpoint_service_owner()),
            }),
        }
    }
}
