//! The facts layer: everything cks-doctor reads about an account, fetched once per run.
//!
//! [`Facts`] holds the request being checked and lazily fetches each fact from a [`Source`]
//! the first time a check asks for it; every later request for the same fact (from any check,
//! concurrently) shares that one fetch. Facts that depend on others (the security group and
//! subnets need the cluster; associated clusters need the key store list) are fetched as soon
//! as what they depend on is known, so independent fetches overlap.

pub mod kind;
pub mod live;
pub mod metrics;
pub mod model;
pub mod org;
pub mod recorded;
pub mod shared;
pub mod trail;

use crate::input::{KeyRequest, Request};
use futures::future::BoxFuture;
pub use kind::{FactKind, FetchCounts};
use model::*;
use std::sync::Arc;
use tokio::sync::OnceCell;

/// Why a fact could not be read. Every variant turns into "could not check" (ERROR), never
/// into a prerequisite failure: it is the tool's problem, not the key store's.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FactError {
    #[error(
        "access denied calling {action}: the caller needs the IAM permission {action} ({detail})"
    )]
    AccessDenied { action: String, detail: String },
    #[error("{action} was throttled and retries were exhausted ({detail})")]
    Throttled { action: String, detail: String },
    #[error("could not reach the AWS endpoint for {action}: {detail}")]
    Unreachable { action: String, detail: String },
    #[error("{action} did not answer within {seconds:.1}s (AWS call budget under --timeout)")]
    TimedOut { action: String, seconds: f64 },
    #[error("{action} failed: {detail}")]
    Service { action: String, detail: String },
    #[error("the snapshot has no {file} (record it with `{command}`)")]
    SnapshotMissing { file: String, command: String },
    #[error("{0}")]
    Unavailable(String),
}

pub type Fact<T> = Result<T, FactError>;

/// Where facts come from: the AWS APIs, or files recorded with the AWS CLI.
#[derive(Clone)]
pub enum Source {
    Live(live::LiveSource),
    Recorded(recorded::Recorded),
    /// A scan's Region: what was read for all its stores at once, in front of the APIs.
    Shared(Arc<shared::Shared>),
}

/// What every source of facts answers: one read per AWS call the facts layer makes. The live
/// source calls the APIs, the recorded one filters snapshot files, the shared one (a scan's
/// Region) answers from what it read for all the Region's stores and passes the rest on.
pub trait Read: Send + Sync {
    /// Where the facts come from, for the report ("AWS APIs in us-east-1", "snapshot DIR").
    fn describe(&self) -> String;
    fn is_live(&self) -> bool;
    fn describe_clusters<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Fact<Vec<Cluster>>>;
    /// As `describe_clusters`, each cluster behind an `Arc` (a scan's Region holds them once).
    fn describe_clusters_shared<'a>(
        &'a self,
        ids: &'a [String],
    ) -> BoxFuture<'a, Fact<Vec<Arc<Cluster>>>> {
        Box::pin(async move {
            Ok(self
                .describe_clusters(ids)
                .await?
                .into_iter()
                .map(Arc::new)
                .collect())
        })
    }
    fn describe_security_groups<'a>(
        &'a self,
        ids: &'a [String],
    ) -> BoxFuture<'a, Fact<Vec<SecurityGroup>>>;
    fn describe_subnets<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Fact<Vec<Subnet>>>;
    fn describe_custom_key_stores<'a>(&'a self) -> BoxFuture<'a, Fact<Vec<CustomKeyStore>>>;
    fn describe_route_tables<'a>(
        &'a self,
        vpc_ids: &'a [String],
    ) -> BoxFuture<'a, Fact<Vec<RouteTable>>>;
    fn describe_network_acls<'a>(
        &'a self,
        vpc_ids: &'a [String],
    ) -> BoxFuture<'a, Fact<Vec<NetworkAcl>>>;
    fn describe_vpc_endpoint_service_configurations<'a>(
        &'a self,
        names: &'a [String],
    ) -> BoxFuture<'a, Fact<Vec<ServiceConfiguration>>>;
    fn describe_vpc_endpoint_service_permissions<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Fact<Vec<AllowedPrincipal>>>;
    fn describe_vpc_endpoint_services<'a>(
        &'a self,
        names: &'a [String],
    ) -> BoxFuture<'a, Fact<Vec<ServiceDetail>>>;
    fn describe_load_balancers<'a>(
        &'a self,
        arns: &'a [String],
    ) -> BoxFuture<'a, Fact<Vec<LoadBalancer>>>;
    fn get_caller_identity<'a>(&'a self) -> BoxFuture<'a, Fact<CallerIdentity>>;
    /// The listeners of these load balancers.
    fn describe_listeners<'a>(
        &'a self,
        lb_arns: &'a [String],
    ) -> BoxFuture<'a, Fact<Vec<Listener>>>;
    /// The targets of these target groups and their health, in one list.
    fn describe_target_health<'a>(
        &'a self,
        group_arns: &'a [String],
    ) -> BoxFuture<'a, Fact<Vec<TargetHealthDescription>>>;
    /// Every KMS key of the account in this Region.
    fn list_keys<'a>(&'a self) -> BoxFuture<'a, Fact<Vec<KeyListEntry>>>;
    /// The metadata of these keys (those that cannot be read are listed as such).
    fn describe_keys<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Fact<KeyDescriptions>>;
    /// GetMetricData of the AWS/KMS metrics of these external key stores over the window
    /// ([`metrics::queries`]): every batch and page of the answer, merged.
    fn get_metric_data<'a>(
        &'a self,
        store_ids: &'a [String],
        window: &'a metrics::MetricWindow,
    ) -> BoxFuture<'a, Fact<metrics::MetricData>>;
    /// CloudTrail LookupEvents over the window ([`trail::Lookup::all`]: one lookup per custom
    /// key store management event, every page, and the KMS event source's most recent pages),
    /// the same for every store of the Region.
    fn lookup_events<'a>(
        &'a self,
        window: &'a trail::TrailWindow,
    ) -> BoxFuture<'a, Fact<trail::TrailData>>;
}

/// A source is read through [`Read`], whichever it is.
impl std::ops::Deref for Source {
    type Target = dyn Read;
    fn deref(&self) -> &(dyn Read + 'static) {
        match self {
            Source::Live(l) => l,
            Source::Recorded(r) => r,
            Source::Shared(s) => &**s,
        }
    }
}

/// The request under check plus every fact about the account, each fetched at most once.
pub struct Facts {
    pub request: Request,
    /// A CreateKey pre-flight's store and external key; `None` for a store's own checks.
    pub key: Option<KeyRequest>,
    source: Source,
    pub counts: FetchCounts,
    cells: Cells,
    /// The window and thresholds of the CloudWatch metrics checks (`--since`, ...); the
    /// defaults until set.
    metric_settings: std::sync::OnceLock<metrics::MetricSettings>,
}

/// One cell per fact: empty until the first check asks, then the one answer every check reads.
#[derive(Default)]
struct Cells {
    cluster: OnceCell<Fact<Option<Cluster>>>,
    security_group: OnceCell<Fact<Option<SecurityGroup>>>,
    subnets: OnceCell<Fact<Vec<Subnet>>>,
    key_stores: OnceCell<Fact<Vec<CustomKeyStore>>>,
    /// Shared, not copied: in a scan every store of a Region has every other store's cluster.
    associated_clusters: OnceCell<Fact<Vec<Arc<Cluster>>>>,
    route_tables: OnceCell<Fact<Vec<RouteTable>>>,
    network_acls: OnceCell<Fact<Vec<NetworkAcl>>>,
    xks_probe: OnceCell<Option<crate::xks::probe::ProbeReport>>,
    vpce_configuration: OnceCell<Fact<Option<ServiceConfiguration>>>,
    vpce_permissions: OnceCell<Fact<Vec<AllowedPrincipal>>>,
    vpce_service: OnceCell<Fact<Option<ServiceDetail>>>,
    load_balancers: OnceCell<Fact<Vec<LoadBalancer>>>,
    caller_identity: OnceCell<Fact<CallerIdentity>>,
    listeners: OnceCell<Fact<Vec<Listener>>>,
    target_health: OnceCell<Fact<Vec<TargetHealthDescription>>>,
    keys: OnceCell<Fact<Vec<KeyListEntry>>>,
    key_descriptions: OnceCell<Fact<KeyDescriptions>>,
    xks_key_metadata: OnceCell<Option<XksKeyMetadata>>,
    xks_metrics: OnceCell<Fact<metrics::StoreMetrics>>,
    trail: OnceCell<Fact<trail::TrailData>>,
    cluster_metrics: OnceCell<Fact<metrics::StoreMetrics>>,
}

/// What the proxy answered to GetKeyMetadata for the pre-flight's external key, and the
/// principal the request named (KMS names the caller of CreateKey).
#[derive(Debug, Clone)]
pub struct XksKeyMetadata {
    pub principal: String,
    /// Why the principal is not the caller's own ARN, when it is not.
    pub principal_note: Option<String>,
    pub answer: Result<crate::xks::api::KeyMetadataAnswer, String>,
}

/// The awsPrincipalArn sent when the caller's own ARN is not known.
pub const PLACEHOLDER_PRINCIPAL: &str = "arn:aws:iam::000000000000:user/cks-doctor-unknown-caller";

/// A dependency of a fact failed or is absent: the message says which.
fn blocked<T>(why: &str) -> Fact<T> {
    Err(FactError::Unavailable(why.to_string()))
}

impl Facts {
    pub fn new(request: Request, source: Source) -> Arc<Facts> {
        Self::make(request, source, None, None)
    }

    /// Facts for a CreateKey pre-flight: the store's request (rebuilt from the existing store,
    /// or the one about to be created) and the key. `stores`, when already read, is not read again.
    pub fn for_key(
        request: Request,
        source: Source,
        stores: Option<Vec<CustomKeyStore>>,
        key: KeyRequest,
    ) -> Arc<Facts> {
        let read = stores.is_some();
        let facts = Self::make(request, source, stores.map(Ok), Some(key));
        if read {
            facts.counts.set(FactKind::KeyStores, 1);
        }
        facts
    }

    /// Reads the account's key stores from a source before any request exists.
    pub async fn read_key_stores(source: &Source) -> Fact<Vec<CustomKeyStore>> {
        source.describe_custom_key_stores().await
    }

    fn make(
        request: Request,
        source: Source,
        key_stores: Option<Fact<Vec<CustomKeyStore>>>,
        key: Option<KeyRequest>,
    ) -> Arc<Facts> {
        Arc::new(Facts {
            request,
            key,
            source,
            counts: FetchCounts::default(),
            cells: Cells {
                key_stores: OnceCell::new_with(key_stores),
                ..Cells::default()
            },
            metric_settings: std::sync::OnceLock::new(),
        })
    }

    /// Sets the window and thresholds of the metrics checks (before they run; later calls
    /// change nothing).
    pub fn set_metric_settings(&self, settings: metrics::MetricSettings) {
        let _ = self.metric_settings.set(settings);
    }

    pub fn metric_settings(&self) -> metrics::MetricSettings {
        self.metric_settings.get().copied().unwrap_or_default()
    }

    /// The AWS/KMS CloudWatch metrics of the existing external key store under check (diagnose,
    /// scan) over `--since`; in a scan, one GetMetricData serves every store of the Region.
    pub async fn xks_metrics(&self) -> &Fact<metrics::StoreMetrics> {
        self.cells
            .xks_metrics
            .get_or_init(|| async {
                let Some(store) = self.key.as_ref().and_then(|k| k.existing()) else {
                    return blocked("CloudWatch metrics are read for an existing key store only");
                };
                if store.is_cloudhsm() {
                    return blocked("not an external key store");
                }
                let id = store.custom_key_store_id.clone();
                if !metrics::usable_store_id(&id) {
                    return blocked(
                        "the store id cannot be used in a CloudWatch search expression",
                    );
                }
                self.metrics_of(id).await
            })
            .await
    }

    /// The AWS/CloudHSM metrics of the cluster of the existing CloudHSM key store under check
    /// (HsmUnhealthy) over `--since`; in a scan, the Region's one GetMetricData holds them.
    pub async fn cluster_metrics(&self) -> &Fact<metrics::StoreMetrics> {
        self.cells
            .cluster_metrics
            .get_or_init(|| async {
                let Some(store) = self.key.as_ref().and_then(|k| k.existing()) else {
                    return blocked("CloudWatch metrics are read for an existing key store only");
                };
                let Some(id) = store
                    .cloud_hsm_cluster_id
                    .clone()
                    .filter(|_| store.is_cloudhsm())
                else {
                    return blocked("not a CloudHSM key store");
                };
                if !metrics::usable_store_id(&id) || !metrics::is_cluster(&id) {
                    return blocked(
                        "the cluster id cannot be used in a CloudWatch search expression",
                    );
                }
                self.metrics_of(id).await
            })
            .await
    }

    /// The metrics of one store or cluster id over `--since` (one GetMetricData, or the
    /// scan's shared one).
    async fn metrics_of(&self, id: String) -> Fact<metrics::StoreMetrics> {
        let window = metrics::MetricWindow {
            since: self.metric_settings().since,
        };
        self.counts.add(FactKind::Metrics);
        let data = self
            .source
            .get_metric_data(std::slice::from_ref(&id), &window)
            .await?;
        Ok(metrics::StoreMetrics::of(&data, &id))
    }

    /// The CloudTrail events of the Region over `--since` ([`trail`]): account-wide lookups,
    /// which the trail checks read for their store; in a scan one read serves every store.
    pub async fn trail(&self) -> &Fact<trail::TrailData> {
        self.cells
            .trail
            .get_or_init(|| async {
                let window = trail::TrailWindow {
                    since: self.metric_settings().since,
                };
                self.counts.add(FactKind::Trail);
                self.source.lookup_events(&window).await
            })
            .await
    }

    /// `snapshot xks`: the metrics of every external key store of the account (one read).
    async fn capture_metrics(
        &self,
        stores: &Fact<Vec<CustomKeyStore>>,
    ) -> Option<Fact<metrics::MetricData>> {
        self.request.xks()?;
        let ids: Vec<String> = stores
            .as_ref()
            .ok()?
            .iter()
            .filter(|s| !s.is_cloudhsm())
            .map(|s| s.custom_key_store_id.clone())
            .filter(|id| metrics::usable_store_id(id))
            .collect();
        if ids.is_empty() {
            return None;
        }
        let window = metrics::MetricWindow {
            since: self.metric_settings().since,
        };
        self.counts.add(FactKind::Metrics);
        Some(self.source.get_metric_data(&ids, &window).await)
    }

    pub fn source(&self) -> &Source {
        &self.source
    }

    /// The cluster named in the request: `Ok(None)` when DescribeClusters does not return it.
    pub async fn cluster(&self) -> &Fact<Option<Cluster>> {
        self.cells
            .cluster
            .get_or_init(|| async {
                let Some(id) = self.request.cluster_id() else {
                    return Ok(None);
                };
                self.counts.add(FactKind::Cluster);
                let found = self.source.describe_clusters(&[id.to_string()]).await?;
                Ok(found.into_iter().find(|c| c.cluster_id == id))
            })
            .await
    }

    /// The cluster's security group (`Cluster.SecurityGroup`): `Ok(None)` when it no longer exists.
    pub async fn security_group(&self) -> &Fact<Option<SecurityGroup>> {
        self.cells
            .security_group
            .get_or_init(|| async {
                let group_id = match self.cluster().await {
                    Ok(Some(c)) => match &c.security_group {
                        Some(g) => g.clone(),
                        None => return blocked("the cluster has no security group yet"),
                    },
                    Ok(None) => return blocked("the cluster was not found"),
                    Err(e) => return Err(e.clone()),
                };
                self.counts.add(FactKind::SecurityGroup);
                let groups = self
                    .source
                    .describe_security_groups(&[group_id.clone()])
                    .await?;
                Ok(groups.into_iter().find(|g| g.group_id == group_id))
            })
            .await
    }

    /// Every subnet in `Cluster.SubnetMapping`, in one DescribeSubnets call. Subnets that no
    /// longer exist are simply absent.
    pub async fn subnets(&self) -> &Fact<Vec<Subnet>> {
        self.cells
            .subnets
            .get_or_init(|| async {
                let ids: Vec<String> = match self.cluster().await {
                    Ok(Some(c)) => c.subnet_mapping.values().cloned().collect(),
                    Ok(None) => return blocked("the cluster was not found"),
                    Err(e) => return Err(e.clone()),
                };
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                self.counts.add(FactKind::Subnets);
                self.source.describe_subnets(&ids).await
            })
            .await
    }

    /// Every custom key store of the account in this Region (all pages).
    pub async fn key_stores(&self) -> &Fact<Vec<CustomKeyStore>> {
        self.cells
            .key_stores
            .get_or_init(|| async {
                self.counts.add(FactKind::KeyStores);
                self.source.describe_custom_key_stores().await
            })
            .await
    }

    /// The clusters associated with the account's CloudHSM key stores, other than the
    /// requested cluster, in one DescribeClusters call. Clusters that no longer exist are absent.
    pub async fn associated_clusters(&self) -> &Fact<Vec<Arc<Cluster>>> {
        self.cells
            .associated_clusters
            .get_or_init(|| async {
                let own = self.request.cluster_id().unwrap_or_default();
                let mut ids: Vec<String> = match self.key_stores().await {
                    Ok(stores) => stores
                        .iter()
                        .filter(|s| s.is_cloudhsm())
                        .filter_map(|s| s.cloud_hsm_cluster_id.clone())
                        .filter(|id| id != own)
                        .collect(),
                    Err(e) => return Err(e.clone()),
                };
                ids.sort();
                ids.dedup();
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                self.counts.add(FactKind::AssociatedClusters);
                self.source.describe_clusters_shared(&ids).await
            })
            .await
    }

    /// The XKS proxy as KMS would see it (one probe per run, shared by every XKS check);
    /// `None` when the request is not an external key store or its endpoint is not usable.
    pub async fn xks_probe(&self) -> Option<&crate::xks::probe::ProbeReport> {
        self.cells
            .xks_probe
            .get_or_init(|| async {
                let x = self.request.xks()?;
                // KMS contacts a proxy behind a VPC endpoint service only when it connects.
                let operation = if x.connectivity == "VPC_ENDPOINT_SERVICE" {
                    "ConnectCustomKeyStore"
                } else {
                    "CreateCustomKeyStore"
                };
                let cfg = x.probe_config(operation)?;
                Some(crate::xks::probe::run(&cfg).await)
            })
            .await
            .as_ref()
    }

    /// The VPC endpoint service name of an XKS request with VPC connectivity.
    fn vpce_name(&self) -> Fact<String> {
        match self
            .request
            .xks()
            .and_then(|x| x.vpc_endpoint_service_name.clone())
        {
            // A name that breaks the API's pattern is never sent to AWS.
            Some(n) if crate::input::name_problem(&n).is_none() => Ok(n),
            Some(_) => blocked("the VPC endpoint service name is not valid"),
            None => blocked("no VPC endpoint service name in the request"),
        }
    }

    /// The endpoint service's configuration, when this account owns it (only the owner can
    /// read it): `Ok(None)` when no service of this account has that name.
    pub async fn vpce_configuration(&self) -> &Fact<Option<ServiceConfiguration>> {
        self.cells
            .vpce_configuration
            .get_or_init(|| async {
                let name = self.vpce_name()?;
                self.counts.add(FactKind::VpceConfiguration);
                let found = self
                    .source
                    .describe_vpc_endpoint_service_configurations(std::slice::from_ref(&name))
                    .await?;
                Ok(found.into_iter().find(|c| c.service_name == name))
            })
            .await
    }

    /// Who may connect to the service (owner only).
    pub async fn vpce_permissions(&self) -> &Fact<Vec<AllowedPrincipal>> {
        self.cells
            .vpce_permissions
            .get_or_init(|| async {
                let id = match self.vpce_configuration().await {
                    Ok(Some(c)) => c.service_id.clone(),
                    Ok(None) => return blocked("this account does not own the endpoint service"),
                    Err(e) => return Err(e.clone()),
                };
                self.counts.add(FactKind::VpcePermissions);
                self.source
                    .describe_vpc_endpoint_service_permissions(&id)
                    .await
            })
            .await
    }

    /// The service as a consumer sees it (also for services of another account that this
    /// account may connect to): `Ok(None)` when it is not visible.
    pub async fn vpce_service(&self) -> &Fact<Option<ServiceDetail>> {
        self.cells
            .vpce_service
            .get_or_init(|| async {
                let name = self.vpce_name()?;
                self.counts.add(FactKind::VpceService);
                let found = self
                    .source
                    .describe_vpc_endpoint_services(std::slice::from_ref(&name))
                    .await?;
                Ok(found.into_iter().find(|d| d.service_name == name))
            })
            .await
    }

    /// The load balancers behind the service (owner only), in one call.
    pub async fn load_balancers(&self) -> &Fact<Vec<LoadBalancer>> {
        self.cells
            .load_balancers
            .get_or_init(|| async {
                let arns: Vec<String> = match self.vpce_configuration().await {
                    Ok(Some(c)) => c
                        .network_load_balancer_arns
                        .iter()
                        .chain(&c.gateway_load_balancer_arns)
                        .cloned()
                        .collect(),
                    Ok(None) => return blocked("this account does not own the endpoint service"),
                    Err(e) => return Err(e.clone()),
                };
                if arns.is_empty() {
                    return Ok(Vec::new());
                }
                self.counts.add(FactKind::LoadBalancers);
                self.source.describe_load_balancers(&arns).await
            })
            .await
    }

    /// The listeners of the service's network load balancers (one call per load balancer).
    pub async fn listeners(&self) -> &Fact<Vec<Listener>> {
        self.cells
            .listeners
            .get_or_init(|| async {
                let arns: Vec<String> = match self.load_balancers().await {
                    Ok(lbs) => lbs
                        .iter()
                        .filter(|l| l.r#type.as_deref() == Some("network"))
                        .map(|l| l.load_balancer_arn.clone())
                        .collect(),
                    Err(e) => return Err(e.clone()),
                };
                if arns.is_empty() {
                    return blocked("the service has no network load balancer");
                }
                self.counts.add(FactKind::Listeners);
                self.source.describe_listeners(&arns).await
            })
            .await
    }

    /// The health of the targets behind the port 443 listeners (one call per target group).
    pub async fn target_health(&self) -> &Fact<Vec<TargetHealthDescription>> {
        self.cells
            .target_health
            .get_or_init(|| async {
                let groups: Vec<String> = match self.listeners().await {
                    Ok(ls) => {
                        let mut g: Vec<String> = Vec::new();
                        for l in ls.iter().filter(|l| l.takes_kms()) {
                            for t in l.target_groups() {
                                if !g.contains(&t) {
                                    g.push(t);
                                }
                            }
                        }
                        g
                    }
                    Err(e) => return Err(e.clone()),
                };
                if groups.is_empty() {
                    return blocked("no port 443 listener forwards to a target group");
                }
                self.counts.add(FactKind::TargetHealth);
                self.source.describe_target_health(&groups).await
            })
            .await
    }

    /// Every KMS key of the account in this Region (ListKeys, all pages).
    pub async fn keys(&self) -> &Fact<Vec<KeyListEntry>> {
        self.cells
            .keys
            .get_or_init(|| async {
                self.counts.add(FactKind::Keys);
                self.source.list_keys().await
            })
            .await
    }

    /// DescribeKey of every listed key (a key's store and external key id are in no list).
    pub async fn key_descriptions(&self) -> &Fact<KeyDescriptions> {
        self.cells
            .key_descriptions
            .get_or_init(|| async {
                let ids: Vec<String> = match self.keys().await {
                    Ok(k) => k.iter().map(|k| k.key_id.clone()).collect(),
                    Err(e) => return Err(e.clone()),
                };
                if ids.is_empty() {
                    return Ok(KeyDescriptions::default());
                }
                self.counts.add(FactKind::KeyDescriptions);
                self.source.describe_keys(&ids).await
            })
            .await
    }

    /// GetKeyMetadata for the pre-flight's external key, sent to the proxy as KMS sends it at
    /// CreateKey (kmsOperation CreateKey, the caller's ARN as awsPrincipalArn, no kmsKeyArn);
    /// `None` without an external key id or a usable proxy endpoint.
    pub async fn xks_key_metadata(&self) -> Option<&XksKeyMetadata> {
        self.cells
            .xks_key_metadata
            .get_or_init(|| async {
                let key_id = self.key.as_ref()?.xks_key_id.clone()?;
                let cfg = self.request.xks()?.probe_config("CreateKey")?;
                let (principal, principal_note) = match self.caller_identity().await {
                    Ok(CallerIdentity { arn: Some(arn), .. }) if !arn.is_empty() => {
                        (arn.clone(), None)
                    }
                    Ok(_) => (
                        PLACEHOLDER_PRINCIPAL.to_string(),
                        Some("the caller identity has no ARN".to_string()),
                    ),
                    Err(e) => (
                        PLACEHOLDER_PRINCIPAL.to_string(),
                        Some(format!("the caller identity could not be read: {e}")),
                    ),
                };
                let metadata = crate::xks::api::RequestMetadata {
                    aws_principal_arn: principal.clone(),
                    kms_key_arn: None,
                    kms_operation: "CreateKey".into(),
                };
                let answer = crate::xks::api::get_key_metadata(&cfg, &key_id, &metadata).await;
                Some(XksKeyMetadata {
                    principal,
                    principal_note,
                    answer,
                })
            })
            .await
            .as_ref()
    }

    /// The account the tool runs as.
    pub async fn caller_identity(&self) -> &Fact<CallerIdentity> {
        self.cells
            .caller_identity
            .get_or_init(|| async {
                self.counts.add(FactKind::CallerIdentity);
                self.source.get_caller_identity().await
            })
            .await
    }

    /// Starts, in the background, every AWS fact the given IAM actions read (those of the checks
    /// about to run), so that a fact that depends on another is asked for as soon as that one
    /// is known, whatever order the checks happen to await them in. Each fact is still fetched
    /// once: the checks then find it fetched or in flight.
    pub fn prefetch(self: &Arc<Self>, iam_actions: &std::collections::BTreeSet<&str>) {
        let wants = |kind: FactKind| iam_actions.contains(kind.info().iam_action);
        macro_rules! start {
            ($($kind:ident => $fact:ident),* $(,)?) => {$(
                if wants(FactKind::$kind) {
                    let facts = self.clone();
                    tokio::spawn(async move {
                        let _ = facts.$fact().await;
                    });
                }
            )*};
        }
        start! {
            Cluster => cluster,
            KeyStores => key_stores,
            SecurityGroup => security_group,
            Subnets => subnets,
            RouteTables => route_tables,
            NetworkAcls => network_acls,
            VpceConfiguration => vpce_configuration,
            VpcePermissions => vpce_permissions,
            LoadBalancers => load_balancers,
            Listeners => listeners,
            TargetHealth => target_health,
            Keys => keys,
            KeyDescriptions => key_descriptions,
            Metrics => xks_metrics,
            Trail => trail,
        }
        // The other key stores' clusters need both reads.
        if wants(FactKind::AssociatedClusters)
            && wants(FactKind::KeyStores)
            && self.request.cluster_id().is_some()
        {
            let facts = self.clone();
            tokio::spawn(async move {
                let _ = facts.associated_clusters().await;
            });
        }
    }

    /// The caller identity if it was read (for the report), without reading it.
    pub fn caller_identity_if_read(&self) -> Option<&Fact<CallerIdentity>> {
        self.cells.caller_identity.get()
    }

    /// The probe if it already ran (for the report), without starting it.
    pub fn xks_probe_if_run(&self) -> Option<&crate::xks::probe::ProbeReport> {
        self.cells.xks_probe.get().and_then(Option::as_ref)
    }

    /// The cluster VPC's id, or why it is not known.
    async fn vpc_id(&self) -> Fact<String> {
        match self.cluster().await {
            Ok(Some(c)) => match &c.vpc_id {
                Some(v) => Ok(v.clone()),
                None => blocked("the cluster reports no VPC"),
            },
            Ok(None) => blocked("the cluster was not found"),
            Err(e) => Err(e.clone()),
        }
    }

    /// Every route table of the cluster's VPC (the main table applies to unassociated subnets).
    pub async fn route_tables(&self) -> &Fact<Vec<RouteTable>> {
        self.cells
            .route_tables
            .get_or_init(|| async {
                let vpc = self.vpc_id().await?;
                self.counts.add(FactKind::RouteTables);
                self.source.describe_route_tables(&[vpc]).await
            })
            .await
    }

    /// Every network ACL of the cluster's VPC.
    pub async fn network_acls(&self) -> &Fact<Vec<NetworkAcl>> {
        self.cells
            .network_acls
            .get_or_init(|| async {
                let vpc = self.vpc_id().await?;
                self.counts.add(FactKind::NetworkAcls);
                self.source.describe_network_acls(&[vpc]).await
            })
            .await
    }

    /// Reads every fact the request needs (concurrently, each once) for `cks-doctor snapshot`.
    /// Facts that could not be read are left out and listed with the reason; a cluster that
    /// does not exist is recorded as an empty list, as the AWS CLI would print it.
    pub async fn capture(&self) -> (recorded::Recorded, Vec<(&'static str, FactError)>) {
        let cloudhsm = self.request.cluster_id().is_some();
        let vpce = self
            .request
            .xks()
            .is_some_and(|x| x.vpc_endpoint_service_name.is_some());
        let (cluster, group, subnets, stores, associated, routes, acls) = tokio::join!(
            self.cluster(),
            self.security_group(),
            self.subnets(),
            self.key_stores(),
            self.associated_clusters(),
            self.route_tables(),
            self.network_acls()
        );
        let (config, permissions, service, lbs, listeners, targets, caller) = tokio::join!(
            self.vpce_configuration(),
            self.vpce_permissions(),
            self.vpce_service(),
            self.load_balancers(),
            self.listeners(),
            self.target_health(),
            // Only an external key store's snapshot needs to know who is asking.
            async {
                match self.request.xks() {
                    Some(_) => Some(self.caller_identity().await),
                    None => None,
                }
            }
        );
        let metric_data = self.capture_metrics(stores).await;
        let (keys, key_descriptions) = match &self.key {
            Some(_) => {
                let (k, d) = tokio::join!(self.keys(), self.key_descriptions());
                (Some(k), Some(d))
            }
            None => (None, None),
        };
        let mut errors = Vec::new();
        fn take<T>(
            errors: &mut Vec<(&'static str, FactError)>,
            file: &'static str,
            r: Result<T, &FactError>,
        ) -> Option<T> {
            match r {
                Ok(v) => Some(v),
                Err(e) => {
                    // A fact blocked by a missing dependency is not an error of its own.
                    if !matches!(e, FactError::Unavailable(_)) {
                        errors.push((file, e.clone()));
                    }
                    None
                }
            }
        }
        let mut capture = recorded::Recorded::default();
        capture.custom_key_stores = take(
            &mut errors,
            FactKind::KeyStores.file().file,
            stores.as_ref().map(Clone::clone),
        );
        if let (Some(keys), Some(descriptions)) = (keys, key_descriptions) {
            capture.keys = take(
                &mut errors,
                FactKind::Keys.file().file,
                keys.as_ref().map(Clone::clone),
            );
            capture.key_descriptions = take(
                &mut errors,
                FactKind::KeyDescriptions.file().file,
                descriptions.as_ref().map(|d| d.keys.clone()),
            );
            if let Ok(d) = descriptions {
                for (id, why) in &d.unreadable {
                    errors.push((
                        FactKind::KeyDescriptions.file().file,
                        FactError::Unavailable(format!("key {id} not described: {why}")),
                    ));
                }
            }
        }
        if let Some(m) = &metric_data {
            capture.metric_data = take(
                &mut errors,
                FactKind::Metrics.file().file,
                m.as_ref().map(|d| GetMetricDataOutput::clone(&d.output)),
            );
        }
        if let Some(caller) = caller {
            capture.caller_identity = take(
                &mut errors,
                FactKind::CallerIdentity.file().file,
                caller.as_ref().map(Clone::clone),
            );
        }
        if cloudhsm {
            capture.clusters = match (cluster, associated) {
                (Ok(c), Ok(a)) => Some(
                    c.iter()
                        .cloned()
                        .chain(a.iter().map(|x| Cluster::clone(x)))
                        .collect(),
                ),
                (Err(e), _) | (_, Err(e)) => {
                    take(&mut errors, FactKind::Cluster.file().file, Err(e))
                }
            };
            capture.security_groups = take(
                &mut errors,
                FactKind::SecurityGroup.file().file,
                group.as_ref().map(|g| g.iter().cloned().collect()),
            );
            capture.subnets = take(
                &mut errors,
                FactKind::Subnets.file().file,
                subnets.as_ref().map(Clone::clone),
            );
            capture.route_tables = take(
                &mut errors,
                FactKind::RouteTables.file().file,
                routes.as_ref().map(Clone::clone),
            );
            capture.network_acls = take(
                &mut errors,
                FactKind::NetworkAcls.file().file,
                acls.as_ref().map(Clone::clone),
            );
        }
        if vpce {
            capture.vpce_configurations = take(
                &mut errors,
                FactKind::VpceConfiguration.file().file,
                config.as_ref().map(|c| c.iter().cloned().collect()),
            );
            capture.vpce_permissions = take(
                &mut errors,
                FactKind::VpcePermissions.file().file,
                permissions.as_ref().map(Clone::clone),
            );
            capture.vpce_services = take(
                &mut errors,
                FactKind::VpceService.file().file,
                service.as_ref().map(|d| d.iter().cloned().collect()),
            );
            capture.load_balancers = take(
                &mut errors,
                FactKind::LoadBalancers.file().file,
                lbs.as_ref().map(Clone::clone),
            );
            capture.listeners = take(
                &mut errors,
                FactKind::Listeners.file().file,
                listeners.as_ref().map(Clone::clone),
            );
            capture.target_health = take(
                &mut errors,
                FactKind::TargetHealth.file().file,
                targets.as_ref().map(Clone::clone),
            );
        }
        (capture, errors)
    }
}
