//! The facts layer: everything cks-doctor reads about an account, fetched once per run.
//!
//! [`Facts`] holds the request being checked and lazily fetches each fact from a [`Source`]
//! the first time a check asks for it; every later request for the same fact (from any check,
//! concurrently) shares that one fetch. Facts that depend on others (the security group and
//! subnets need the cluster; associated clusters need the key store list) are fetched as soon
//! as what they depend on is known, so independent fetches overlap.

pub mod live;
pub mod model;
pub mod recorded;
pub mod shared;

use crate::input::Request;
use model::*;
use std::sync::atomic::{AtomicUsize, Ordering};
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

impl Source {
    pub fn describe(&self) -> String {
        match self {
            Source::Live(l) => l.describe(),
            Source::Recorded(r) => r.describe(),
            Source::Shared(s) => s.inner().describe(),
        }
    }
    pub fn is_live(&self) -> bool {
        match self {
            Source::Live(_) => true,
            Source::Recorded(_) => false,
            Source::Shared(s) => s.inner().is_live(),
        }
    }
    async fn describe_clusters(&self, ids: &[String]) -> Fact<Vec<Cluster>> {
        match self {
            Source::Live(l) => l.describe_clusters(ids).await,
            Source::Recorded(r) => r.describe_clusters(ids),
            Source::Shared(s) => Box::pin(s.describe_clusters(ids)).await,
        }
    }
    /// As `describe_clusters`, each cluster behind an `Arc` (a scan's Region holds them once).
    async fn describe_clusters_shared(&self, ids: &[String]) -> Fact<Vec<Arc<Cluster>>> {
        match self {
            Source::Shared(s) => Box::pin(s.describe_clusters_shared(ids)).await,
            other => Ok(other
                .describe_clusters(ids)
                .await?
                .into_iter()
                .map(Arc::new)
                .collect()),
        }
    }
    async fn describe_security_groups(&self, ids: &[String]) -> Fact<Vec<SecurityGroup>> {
        match self {
            Source::Live(l) => l.describe_security_groups(ids).await,
            Source::Recorded(r) => r.describe_security_groups(ids),
            Source::Shared(s) => Box::pin(s.describe_security_groups(ids)).await,
        }
    }
    async fn describe_subnets(&self, ids: &[String]) -> Fact<Vec<Subnet>> {
        match self {
            Source::Live(l) => l.describe_subnets(ids).await,
            Source::Recorded(r) => r.describe_subnets(ids),
            Source::Shared(s) => Box::pin(s.describe_subnets(ids)).await,
        }
    }
    async fn describe_custom_key_stores(&self) -> Fact<Vec<CustomKeyStore>> {
        match self {
            Source::Live(l) => l.describe_custom_key_stores().await,
            Source::Recorded(r) => r.describe_custom_key_stores(),
            Source::Shared(s) => Box::pin(s.describe_custom_key_stores()).await,
        }
    }
    async fn describe_route_tables(&self, vpc_ids: &[String]) -> Fact<Vec<RouteTable>> {
        match self {
            Source::Live(l) => l.describe_route_tables(vpc_ids).await,
            Source::Recorded(r) => r.describe_route_tables(vpc_ids),
            Source::Shared(s) => Box::pin(s.describe_route_tables(vpc_ids)).await,
        }
    }
    async fn describe_network_acls(&self, vpc_ids: &[String]) -> Fact<Vec<NetworkAcl>> {
        match self {
            Source::Live(l) => l.describe_network_acls(vpc_ids).await,
            Source::Recorded(r) => r.describe_network_acls(vpc_ids),
            Source::Shared(s) => Box::pin(s.describe_network_acls(vpc_ids)).await,
        }
    }
    async fn describe_vpc_endpoint_service_configurations(
        &self,
        name: &[String],
    ) -> Fact<Vec<ServiceConfiguration>> {
        match self {
            Source::Live(l) => l.describe_vpc_endpoint_service_configurations(name).await,
            Source::Recorded(r) => r.describe_vpc_endpoint_service_configurations(name),
            Source::Shared(s) => {
                Box::pin(s.describe_vpc_endpoint_service_configurations(name)).await
            }
        }
    }
    async fn describe_vpc_endpoint_service_permissions(
        &self,
        id: &str,
    ) -> Fact<Vec<AllowedPrincipal>> {
        match self {
            Source::Live(l) => l.describe_vpc_endpoint_service_permissions(id).await,
            Source::Recorded(r) => r.describe_vpc_endpoint_service_permissions(id),
            Source::Shared(s) => Box::pin(s.describe_vpc_endpoint_service_permissions(id)).await,
        }
    }
    async fn describe_vpc_endpoint_services(&self, name: &[String]) -> Fact<Vec<ServiceDetail>> {
        match self {
            Source::Live(l) => l.describe_vpc_endpoint_services(name).await,
            Source::Recorded(r) => r.describe_vpc_endpoint_services(name),
            Source::Shared(s) => Box::pin(s.describe_vpc_endpoint_services(name)).await,
        }
    }
    async fn describe_load_balancers(&self, arns: &[String]) -> Fact<Vec<LoadBalancer>> {
        match self {
            Source::Live(l) => l.describe_load_balancers(arns).await,
            Source::Recorded(r) => r.describe_load_balancers(arns),
            Source::Shared(s) => Box::pin(s.describe_load_balancers(arns)).await,
        }
    }
    async fn get_caller_identity(&self) -> Fact<CallerIdentity> {
        match self {
            Source::Live(l) => l.get_caller_identity().await,
            Source::Recorded(r) => r.get_caller_identity(),
            Source::Shared(s) => Box::pin(s.get_caller_identity()).await,
        }
    }
}

/// How many times each fact was fetched from the source (for tests and `--verbose`).
#[derive(Debug, Default)]
pub struct FetchCounts {
    pub clusters: AtomicUsize,
    pub security_groups: AtomicUsize,
    pub subnets: AtomicUsize,
    pub custom_key_stores: AtomicUsize,
    pub associated_clusters: AtomicUsize,
    pub route_tables: AtomicUsize,
    pub network_acls: AtomicUsize,
    pub vpce_configurations: AtomicUsize,
    pub vpce_permissions: AtomicUsize,
    pub vpce_services: AtomicUsize,
    pub load_balancers: AtomicUsize,
    pub caller_identity: AtomicUsize,
}

impl FetchCounts {
    pub fn snapshot(&self) -> [(&'static str, usize); 12] {
        [
            (
                "cloudhsmv2:DescribeClusters",
                self.clusters.load(Ordering::Relaxed),
            ),
            (
                "ec2:DescribeSecurityGroups",
                self.security_groups.load(Ordering::Relaxed),
            ),
            ("ec2:DescribeSubnets", self.subnets.load(Ordering::Relaxed)),
            (
                "kms:DescribeCustomKeyStores",
                self.custom_key_stores.load(Ordering::Relaxed),
            ),
            (
                "cloudhsmv2:DescribeClusters (associated clusters)",
                self.associated_clusters.load(Ordering::Relaxed),
            ),
            (
                "ec2:DescribeRouteTables",
                self.route_tables.load(Ordering::Relaxed),
            ),
            (
                "ec2:DescribeNetworkAcls",
                self.network_acls.load(Ordering::Relaxed),
            ),
            (
                "ec2:DescribeVpcEndpointServiceConfigurations",
                self.vpce_configurations.load(Ordering::Relaxed),
            ),
            (
                "ec2:DescribeVpcEndpointServicePermissions",
                self.vpce_permissions.load(Ordering::Relaxed),
            ),
            (
                "ec2:DescribeVpcEndpointServices",
                self.vpce_services.load(Ordering::Relaxed),
            ),
            (
                "elasticloadbalancing:DescribeLoadBalancers",
                self.load_balancers.load(Ordering::Relaxed),
            ),
            (
                "sts:GetCallerIdentity",
                self.caller_identity.load(Ordering::Relaxed),
            ),
        ]
    }
}

/// The request under check plus every fact about the account, each fetched at most once.
pub struct Facts {
    pub request: Request,
    source: Source,
    pub counts: FetchCounts,
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
}

/// A dependency of a fact failed or is absent: the message says which.
fn blocked<T>(why: &str) -> Fact<T> {
    Err(FactError::Unavailable(why.to_string()))
}

impl Facts {
    pub fn new(request: Request, source: Source) -> Arc<Facts> {
        Self::make(request, source, None)
    }

    /// Facts whose key store list was already read (diagnose reads it to find the store and
    /// rebuild the request): the list is not fetched again.
    pub fn with_key_stores(
        request: Request,
        source: Source,
        stores: Vec<CustomKeyStore>,
    ) -> Arc<Facts> {
        let facts = Self::make(request, source, Some(Ok(stores)));
        facts.counts.custom_key_stores.store(1, Ordering::Relaxed);
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
    ) -> Arc<Facts> {
        Arc::new(Facts {
            request,
            source,
            counts: FetchCounts::default(),
            cluster: OnceCell::new(),
            security_group: OnceCell::new(),
            subnets: OnceCell::new(),
            key_stores: OnceCell::new_with(key_stores),
            associated_clusters: OnceCell::new(),
            route_tables: OnceCell::new(),
            network_acls: OnceCell::new(),
            xks_probe: OnceCell::new(),
            vpce_configuration: OnceCell::new(),
            vpce_permissions: OnceCell::new(),
            vpce_service: OnceCell::new(),
            load_balancers: OnceCell::new(),
            caller_identity: OnceCell::new(),
        })
    }

    pub fn source(&self) -> &Source {
        &self.source
    }

    /// The cluster named in the request: `Ok(None)` when DescribeClusters does not return it.
    pub async fn cluster(&self) -> &Fact<Option<Cluster>> {
        self.cluster
            .get_or_init(|| async {
                let Some(id) = self.request.cluster_id() else {
                    return Ok(None);
                };
                self.counts.clusters.fetch_add(1, Ordering::Relaxed);
                let found = self.source.describe_clusters(&[id.to_string()]).await?;
                Ok(found.into_iter().find(|c| c.cluster_id == id))
            })
            .await
    }

    /// The cluster's security group (`Cluster.SecurityGroup`): `Ok(None)` when it no longer exists.
    pub async fn security_group(&self) -> &Fact<Option<SecurityGroup>> {
        self.security_group
            .get_or_init(|| async {
                let group_id = match self.cluster().await {
                    Ok(Some(c)) => match &c.security_group {
                        Some(g) => g.clone(),
                        None => return blocked("the cluster has no security group yet"),
                    },
                    Ok(None) => return blocked("the cluster was not found"),
                    Err(e) => return Err(e.clone()),
                };
                self.counts.security_groups.fetch_add(1, Ordering::Relaxed);
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
        self.subnets
            .get_or_init(|| async {
                let ids: Vec<String> = match self.cluster().await {
                    Ok(Some(c)) => c.subnet_mapping.values().cloned().collect(),
                    Ok(None) => return blocked("the cluster was not found"),
                    Err(e) => return Err(e.clone()),
                };
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                self.counts.subnets.fetch_add(1, Ordering::Relaxed);
                self.source.describe_subnets(&ids).await
            })
            .await
    }

    /// Every custom key store of the account in this Region (all pages).
    pub async fn key_stores(&self) -> &Fact<Vec<CustomKeyStore>> {
        self.key_stores
            .get_or_init(|| async {
                self.counts
                    .custom_key_stores
                    .fetch_add(1, Ordering::Relaxed);
                self.source.describe_custom_key_stores().await
            })
            .await
    }

    /// The clusters associated with the account's CloudHSM key stores, other than the
    /// requested cluster, in one DescribeClusters call. Clusters that no longer exist are absent.
    pub async fn associated_clusters(&self) -> &Fact<Vec<Arc<Cluster>>> {
        self.associated_clusters
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
                self.counts
                    .associated_clusters
                    .fetch_add(1, Ordering::Relaxed);
                self.source.describe_clusters_shared(&ids).await
            })
            .await
    }

    /// The XKS proxy as KMS would see it (one probe per run, shared by every XKS check);
    /// `None` when the request is not an external key store or its endpoint is not usable.
    pub async fn xks_probe(&self) -> Option<&crate::xks::probe::ProbeReport> {
        self.xks_probe
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
        self.vpce_configuration
            .get_or_init(|| async {
                let name = self.vpce_name()?;
                self.counts
                    .vpce_configurations
                    .fetch_add(1, Ordering::Relaxed);
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
        self.vpce_permissions
            .get_or_init(|| async {
                let id = match self.vpce_configuration().await {
                    Ok(Some(c)) => c.service_id.clone(),
                    Ok(None) => return blocked("this account does not own the endpoint service"),
                    Err(e) => return Err(e.clone()),
                };
                self.counts.vpce_permissions.fetch_add(1, Ordering::Relaxed);
                self.source
                    .describe_vpc_endpoint_service_permissions(&id)
                    .await
            })
            .await
    }

    /// The service as a consumer sees it (also for services of another account that this
    /// account may connect to): `Ok(None)` when it is not visible.
    pub async fn vpce_service(&self) -> &Fact<Option<ServiceDetail>> {
        self.vpce_service
            .get_or_init(|| async {
                let name = self.vpce_name()?;
                self.counts.vpce_services.fetch_add(1, Ordering::Relaxed);
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
        self.load_balancers
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
                self.counts.load_balancers.fetch_add(1, Ordering::Relaxed);
                self.source.describe_load_balancers(&arns).await
            })
            .await
    }

    /// The account the tool runs as.
    pub async fn caller_identity(&self) -> &Fact<CallerIdentity> {
        self.caller_identity
            .get_or_init(|| async {
                self.counts.caller_identity.fetch_add(1, Ordering::Relaxed);
                self.source.get_caller_identity().await
            })
            .await
    }

    /// Starts, in the background, every AWS fact the given IAM actions read (those of the checks
    /// about to run), so that a fact that depends on another is asked for as soon as that one
    /// is known, whatever order the checks happen to await them in. Each fact is still fetched
    /// once: the checks then find it fetched or in flight.
    pub fn prefetch(self: &Arc<Self>, iam_actions: &std::collections::BTreeSet<&str>) {
        macro_rules! start {
            ($($action:literal => $fact:ident),* $(,)?) => {$(
                if iam_actions.contains($action) {
                    let facts = self.clone();
                    tokio::spawn(async move {
                        let _ = facts.$fact().await;
                    });
                }
            )*};
        }
        start! {
            "cloudhsm:DescribeClusters" => cluster,
            "kms:DescribeCustomKeyStores" => key_stores,
            "ec2:DescribeSecurityGroups" => security_group,
            "ec2:DescribeSubnets" => subnets,
            "ec2:DescribeRouteTables" => route_tables,
            "ec2:DescribeNetworkAcls" => network_acls,
            "ec2:DescribeVpcEndpointServiceConfigurations" => vpce_configuration,
            "ec2:DescribeVpcEndpointServicePermissions" => vpce_permissions,
            "elasticloadbalancing:DescribeLoadBalancers" => load_balancers,
        }
        if iam_actions.contains("cloudhsm:DescribeClusters")
            && iam_actions.contains("kms:DescribeCustomKeyStores")
            && self.request.cluster_id().is_some()
        {
            let facts = self.clone();
            tokio::spawn(async move {
                let _ = facts.associated_clusters().await;
            });
        }
    }

    /// The probe if it already ran (for the report), without starting it.
    pub fn xks_probe_if_run(&self) -> Option<&crate::xks::probe::ProbeReport> {
        self.xks_probe.get().and_then(Option::as_ref)
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
        self.route_tables
            .get_or_init(|| async {
                let vpc = self.vpc_id().await?;
                self.counts.route_tables.fetch_add(1, Ordering::Relaxed);
                self.source.describe_route_tables(&[vpc]).await
            })
            .await
    }

    /// Every network ACL of the cluster's VPC.
    pub async fn network_acls(&self) -> &Fact<Vec<NetworkAcl>> {
        self.network_acls
            .get_or_init(|| async {
                let vpc = self.vpc_id().await?;
                self.counts.network_acls.fetch_add(1, Ordering::Relaxed);
                self.source.describe_network_acls(&[vpc]).await
            })
            .await
    }

    /// Reads every fact the request needs (concurrently, each once) for `cks-doctor snapshot`.
    /// Facts that could not be read are left out and listed with the reason; a cluster that
    /// does not exist is recorded as an empty list, as the AWS CLI would print it.
    pub async fn capture(&self) -> (recorded::Capture, Vec<(&'static str, FactError)>) {
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
        let (config, permissions, service, lbs, caller) = tokio::join!(
            self.vpce_configuration(),
            self.vpce_permissions(),
            self.vpce_service(),
            self.load_balancers(),
            // Only an external key store's snapshot needs to know who is asking.
            async {
                match self.request.xks() {
                    Some(_) => Some(self.caller_identity().await),
                    None => None,
                }
            }
        );
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
        let mut capture = recorded::Capture::default();
        capture.custom_key_stores = take(
            &mut errors,
            recorded::CUSTOM_KEY_STORES.file,
            stores.as_ref().map(Clone::clone),
        );
        if let Some(caller) = caller {
            capture.caller_identity = take(
                &mut errors,
                recorded::CALLER_IDENTITY.file,
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
                (Err(e), _) | (_, Err(e)) => take(&mut errors, recorded::CLUSTERS.file, Err(e)),
            };
            capture.security_groups = take(
                &mut errors,
                recorded::SECURITY_GROUPS.file,
                group.as_ref().map(|g| g.iter().cloned().collect()),
            );
            capture.subnets = take(
                &mut errors,
                recorded::SUBNETS.file,
                subnets.as_ref().map(Clone::clone),
            );
            capture.route_tables = take(
                &mut errors,
                recorded::ROUTE_TABLES.file,
                routes.as_ref().map(Clone::clone),
            );
            capture.network_acls = take(
                &mut errors,
                recorded::NETWORK_ACLS.file,
                acls.as_ref().map(Clone::clone),
            );
        }
        if vpce {
            capture.vpce_configurations = take(
                &mut errors,
                recorded::VPCE_CONFIGURATIONS.file,
                config.as_ref().map(|c| c.iter().cloned().collect()),
            );
            capture.vpce_permissions = take(
                &mut errors,
                recorded::VPCE_PERMISSIONS.file,
                permissions.as_ref().map(Clone::clone),
            );
            capture.vpce_services = take(
                &mut errors,
                recorded::VPCE_SERVICES.file,
                service.as_ref().map(|d| d.iter().cloned().collect()),
            );
            capture.load_balancers = take(
                &mut errors,
                recorded::LOAD_BALANCERS.file,
                lbs.as_ref().map(Clone::clone),
            );
        }
        (capture, errors)
    }
}
