//! One Region's facts for many key stores at once (`cks-doctor scan`).
//!
//! Diagnosing each store on its own would ask AWS the same kinds of questions once per store:
//! a DescribeClusters, a DescribeSecurityGroups, a DescribeSubnets... per CloudHSM store. A scan
//! instead asks each question once for every store of the Region: one DescribeClusters for
//! all their clusters, then (as soon as the clusters are known) one call per EC2 fact for all
//! their groups, subnets and VPCs; the same for the endpoint services of external key stores.
//! The stores' own [`Facts`](super::Facts) then read from [`Shared`], which answers every
//! request it holds the answer to (or the error that fetching it gave) and passes any other on
//! to the AWS APIs. So a scan's AWS calls, and the round trips it waits for, do not grow with
//! the number of stores.

use super::model::*;
use super::{Fact, Read, Source};
use futures::future::BoxFuture;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Most values AWS takes in one call: CloudHSM answers at most 25 clusters a page (so 25 ids
/// a call need no second page), EC2 takes 200 values in a filter, ELB 20 ARNs.
const CLUSTERS_PER_CALL: usize = 25;
const FILTER_VALUES_PER_CALL: usize = 200;
const LOAD_BALANCERS_PER_CALL: usize = 20;

/// The answer to one batched question: everything AWS returned for `keys`, or why it could
/// not be read.
struct Batch<T> {
    keys: BTreeSet<String>,
    result: Fact<Vec<T>>,
}

impl<T: Clone> Batch<T> {
    fn none() -> Self {
        Batch {
            keys: BTreeSet::new(),
            result: Ok(Vec::new()),
        }
    }

    /// The part of the batch that answers a request for `want` (each item's key read by
    /// `key`), or `None` when the batch did not ask for all of them.
    fn answer<'a>(
        &'a self,
        want: &[String],
        key: impl Fn(&'a T) -> Option<&'a str>,
    ) -> Option<Fact<Vec<T>>> {
        if want.is_empty() || !want.iter().all(|w| self.keys.contains(w)) {
            return None;
        }
        Some(match &self.result {
            Ok(items) => Ok(items
                .iter()
                .filter(|i| key(i).is_some_and(|k| want.iter().any(|w| w == k)))
                .cloned()
                .collect()),
            Err(e) => Err(e.clone()),
        })
    }
}

/// Asks for `keys` in calls of at most `per_call` values, all at once (each call holding one of
/// `permits`, the --jobs bound); the first error is the answer for all of them (a denied or
/// throttled call leaves every store "could not check").
async fn batch<T, F, Fut>(
    keys: BTreeSet<String>,
    per_call: usize,
    permits: &Semaphore,
    call: F,
) -> Batch<T>
where
    F: Fn(Vec<String>) -> Fut,
    Fut: std::future::Future<Output = Fact<Vec<T>>>,
{
    if keys.is_empty() {
        return Batch {
            keys,
            result: Ok(Vec::new()),
        };
    }
    let list: Vec<String> = keys.iter().cloned().collect();
    let calls = list.chunks(per_call).map(|c| {
        let c = c.to_vec();
        let call = &call;
        async move {
            let _permit = permits.acquire().await;
            call(c).await
        }
    });
    let result = futures::future::try_join_all(calls)
        .await
        .map(|parts| parts.into_iter().flatten().collect());
    Batch { keys, result }
}

/// What the scan already read about a Region, in front of the Region's AWS APIs.
pub struct Shared {
    inner: Source,
    clusters: Batch<Arc<Cluster>>,
    security_groups: Batch<SecurityGroup>,
    subnets: Batch<Subnet>,
    route_tables: Batch<RouteTable>,
    network_acls: Batch<NetworkAcl>,
    vpce_configurations: Batch<ServiceConfiguration>,
    vpce_services: Batch<ServiceDetail>,
    vpce_permissions: BTreeMap<String, Fact<Vec<AllowedPrincipal>>>,
    load_balancers: Batch<LoadBalancer>,
    /// Read when a store first needs it (only some do), then shared.
    caller_identity: tokio::sync::OnceCell<Fact<CallerIdentity>>,
    /// The Region's KMS keys and their descriptions: read when a store first needs them
    /// (diagnose's account.store-keys), then shared by every store of the Region.
    keys: tokio::sync::OnceCell<Fact<Vec<KeyListEntry>>>,
    key_descriptions: tokio::sync::OnceCell<(Vec<String>, Fact<KeyDescriptions>)>,
    /// The Region's external key stores: the first store that asks for its CloudWatch metrics
    /// reads them for all of them, in one GetMetricData (500 queries a call).
    xks_store_ids: Vec<String>,
    metrics: tokio::sync::OnceCell<(
        super::metrics::MetricWindow,
        Fact<super::metrics::MetricData>,
    )>,
    /// The Region's CloudTrail events: the first store that asks reads them for all.
    trail: tokio::sync::OnceCell<(super::trail::TrailWindow, Fact<super::trail::TrailData>)>,
}

impl Shared {
    /// Reads, for every store in `stores`, each fact that the IAM actions in `actions` (those
    /// of the checks about to run) read, each kind in as few calls as AWS allows; facts that
    /// depend on others follow as soon as those are known. Each call holds one of `permits`
    /// while it is in flight (`--jobs`: one permit makes the calls one after another).
    pub async fn fetch(
        inner: Source,
        stores: &[CustomKeyStore],
        actions: &BTreeSet<&str>,
        permits: &Semaphore,
        since: std::time::Duration,
    ) -> Shared {
        let wants = |a: &str| actions.contains(a);
        let cluster_ids: BTreeSet<String> = if wants("cloudhsm:DescribeClusters") {
            stores
                .iter()
                .filter(|s| s.is_cloudhsm())
                .filter_map(|s| s.cloud_hsm_cluster_id.clone())
                .collect()
        } else {
            BTreeSet::new()
        };
        // A name that breaks the API's pattern is never sent to AWS (the store's own facts
        // say so); and a service is asked about only for the actions the checks use.
        let service_names: BTreeSet<String> = stores
            .iter()
            .filter_map(|s| s.xks_proxy_configuration.as_ref())
            .filter_map(|x| x.vpc_endpoint_service_name.clone())
            .filter(|n| crate::input::name_problem(n).is_none())
            .collect();
        let only_if = |action: &str, keys: &BTreeSet<String>| {
            if wants(action) {
                keys.clone()
            } else {
                BTreeSet::new()
            }
        };
        let source = &inner;

        let cloudhsm = async {
            let clusters = batch(cluster_ids, CLUSTERS_PER_CALL, permits, |ids| async move {
                source.describe_clusters_shared(&ids).await
            })
            .await;
            let found: &[Arc<Cluster>] = clusters.result.as_deref().unwrap_or_default();
            let groups: BTreeSet<String> = found
                .iter()
                .filter_map(|c| c.security_group.clone())
                .collect();
            let subnets: BTreeSet<String> = found
                .iter()
                .flat_map(|c| c.subnet_mapping.values().cloned())
                .collect();
            let vpcs: BTreeSet<String> = found.iter().filter_map(|c| c.vpc_id.clone()).collect();
            let (security_groups, subnets, route_tables, network_acls) = tokio::join!(
                batch(
                    only_if("ec2:DescribeSecurityGroups", &groups),
                    FILTER_VALUES_PER_CALL,
                    permits,
                    |ids| async move { source.describe_security_groups(&ids).await }
                ),
                batch(
                    only_if("ec2:DescribeSubnets", &subnets),
                    FILTER_VALUES_PER_CALL,
                    permits,
                    |ids| async move { source.describe_subnets(&ids).await }
                ),
                batch(
                    only_if("ec2:DescribeRouteTables", &vpcs),
                    FILTER_VALUES_PER_CALL,
                    permits,
                    |ids| async move { source.describe_route_tables(&ids).await }
                ),
                batch(
                    only_if("ec2:DescribeNetworkAcls", &vpcs),
                    FILTER_VALUES_PER_CALL,
                    permits,
                    |ids| async move { source.describe_network_acls(&ids).await }
                ),
            );
            (
                clusters,
                security_groups,
                subnets,
                route_tables,
                network_acls,
            )
        };

        let vpce = async {
            let (configurations, services) = tokio::join!(
                batch(
                    only_if(
                        "ec2:DescribeVpcEndpointServiceConfigurations",
                        &service_names
                    ),
                    FILTER_VALUES_PER_CALL,
                    permits,
                    |names| async move {
                        source
                            .describe_vpc_endpoint_service_configurations(&names)
                            .await
                    }
                ),
                batch(
                    only_if("ec2:DescribeVpcEndpointServices", &service_names),
                    FILTER_VALUES_PER_CALL,
                    permits,
                    |names| async move { source.describe_vpc_endpoint_services(&names).await }
                ),
            );
            let owned: &[ServiceConfiguration] =
                configurations.result.as_deref().unwrap_or_default();
            let service_ids: Vec<String> = if wants("ec2:DescribeVpcEndpointServicePermissions") {
                owned.iter().map(|c| c.service_id.clone()).collect()
            } else {
                Vec::new()
            };
            let arns: BTreeSet<String> = owned
                .iter()
                .flat_map(|c| {
                    c.network_load_balancer_arns
                        .iter()
                        .chain(&c.gateway_load_balancer_arns)
                        .cloned()
                })
                .collect();
            // Permissions are asked per service (the API takes one); all at once.
            let (permissions, load_balancers) = tokio::join!(
                futures::future::join_all(service_ids.iter().map(|id| async move {
                    let _permit = permits.acquire().await;
                    (
                        id.clone(),
                        source.describe_vpc_endpoint_service_permissions(id).await,
                    )
                })),
                batch(
                    only_if("elasticloadbalancing:DescribeLoadBalancers", &arns),
                    LOAD_BALANCERS_PER_CALL,
                    permits,
                    |arns| async move { source.describe_load_balancers(&arns).await }
                ),
            );
            (
                configurations,
                services,
                permissions.into_iter().collect(),
                load_balancers,
            )
        };

        // The Region's KMS keys (what each store holds: account.store-keys), from the first
        // wave on: ListKeys, then DescribeKey of every key, beside the two chains above rather
        // than after them. Each read holds one permit (DescribeKey's calls, 8 at a time, under one).
        let keys = async {
            if !wants("kms:ListKeys") {
                return None;
            }
            let listed = {
                let _permit = permits.acquire().await;
                source.list_keys().await
            };
            let described = match &listed {
                Ok(k) if wants("kms:DescribeKey") => {
                    let ids: Vec<String> = k.iter().map(|k| k.key_id.clone()).collect();
                    let _permit = permits.acquire().await;
                    let d = source.describe_keys(&ids).await;
                    Some((ids, d))
                }
                _ => None,
            };
            Some((listed, described))
        };

        // The Region's metrics (the external key stores', then the CloudHSM key stores'
        // clusters' HsmUnhealthy) and CloudTrail events over --since, also from the first wave:
        // read after the other facts they would each cost the scan one more round trip (the
        // checks start when all of this is read).
        let metric_ids: Vec<String> = stores
            .iter()
            .map(|s| {
                if s.is_cloudhsm() {
                    s.cloud_hsm_cluster_id.clone().unwrap_or_default()
                } else {
                    s.custom_key_store_id.clone()
                }
            })
            .filter(|id| super::metrics::usable_store_id(id))
            .collect();
        let metric_window = super::metrics::MetricWindow { since };
        let metrics = async {
            if !wants("cloudwatch:GetMetricData") || metric_ids.is_empty() {
                return None;
            }
            let _permit = permits.acquire().await;
            Some((
                metric_window,
                source.get_metric_data(&metric_ids, &metric_window).await,
            ))
        };
        let trail_window = super::trail::TrailWindow { since };
        let trail = async {
            if !wants("cloudtrail:LookupEvents") {
                return None;
            }
            let _permit = permits.acquire().await;
            Some((trail_window, source.lookup_events(&trail_window).await))
        };

        let (
            (clusters, security_groups, subnets, route_tables, network_acls),
            (vpce_configurations, vpce_services, vpce_permissions, load_balancers),
            keys,
            metrics,
            trail,
        ) = tokio::join!(cloudhsm, vpce, keys, metrics, trail);
        let (listed, described) = match keys {
            Some((l, d)) => (Some(l), d),
            None => (None, None),
        };
        Shared {
            inner,
            clusters,
            security_groups,
            subnets,
            route_tables,
            network_acls,
            vpce_configurations,
            vpce_services,
            vpce_permissions,
            load_balancers,
            caller_identity: tokio::sync::OnceCell::new(),
            keys: tokio::sync::OnceCell::new_with(listed),
            key_descriptions: tokio::sync::OnceCell::new_with(described),
            // The external key stores, then the clusters of the CloudHSM key stores (their
            // HsmUnhealthy): one GetMetricData for all.
            xks_store_ids: metric_ids,
            metrics: tokio::sync::OnceCell::new_with(metrics),
            trail: tokio::sync::OnceCell::new_with(trail),
        }
    }

    /// Nothing read yet: every request goes to `inner` (for tests of the pass-through).
    pub fn empty(inner: Source) -> Shared {
        Shared {
            inner,
            clusters: Batch::none(),
            security_groups: Batch::none(),
            subnets: Batch::none(),
            route_tables: Batch::none(),
            network_acls: Batch::none(),
            vpce_configurations: Batch::none(),
            vpce_services: Batch::none(),
            vpce_permissions: BTreeMap::new(),
            load_balancers: Batch::none(),
            caller_identity: tokio::sync::OnceCell::new(),
            keys: tokio::sync::OnceCell::new(),
            key_descriptions: tokio::sync::OnceCell::new(),
            xks_store_ids: Vec::new(),
            metrics: tokio::sync::OnceCell::new(),
            trail: tokio::sync::OnceCell::new(),
        }
    }

    pub fn inner(&self) -> &Source {
        &self.inner
    }
}

impl Read for Shared {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn is_live(&self) -> bool {
        self.inner.is_live()
    }
    fn describe_custom_key_stores<'a>(&'a self) -> BoxFuture<'a, Fact<Vec<CustomKeyStore>>> {
        Box::pin(async move { self.inner.describe_custom_key_stores().await })
    }
    fn get_caller_identity<'a>(&'a self) -> BoxFuture<'a, Fact<CallerIdentity>> {
        Box::pin(async move {
            self.caller_identity
                .get_or_init(|| self.inner.get_caller_identity())
                .await
                .clone()
        })
    }
    fn describe_clusters<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Fact<Vec<Cluster>>> {
        Box::pin(async move {
            match self.clusters.answer(ids, |c| Some(&c.cluster_id)) {
                Some(a) => a.map(|v| v.iter().map(|c| Cluster::clone(c)).collect()),
                None => self.inner.describe_clusters(ids).await,
            }
        })
    }
    fn describe_clusters_shared<'a>(
        &'a self,
        ids: &'a [String],
    ) -> BoxFuture<'a, Fact<Vec<Arc<Cluster>>>> {
        Box::pin(async move {
            match self.clusters.answer(ids, |c| Some(&c.cluster_id)) {
                Some(a) => a,
                None => self.inner.describe_clusters_shared(ids).await,
            }
        })
    }
    fn describe_security_groups<'a>(
        &'a self,
        ids: &'a [String],
    ) -> BoxFuture<'a, Fact<Vec<SecurityGroup>>> {
        Box::pin(async move {
            match self.security_groups.answer(ids, |g| Some(&g.group_id)) {
                Some(a) => a,
                None => self.inner.describe_security_groups(ids).await,
            }
        })
    }
    fn describe_subnets<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Fact<Vec<Subnet>>> {
        Box::pin(async move {
            match self.subnets.answer(ids, |s| Some(&s.subnet_id)) {
                Some(a) => a,
                None => self.inner.describe_subnets(ids).await,
            }
        })
    }
    fn describe_route_tables<'a>(
        &'a self,
        vpc_ids: &'a [String],
    ) -> BoxFuture<'a, Fact<Vec<RouteTable>>> {
        Box::pin(async move {
            match self.route_tables.answer(vpc_ids, |t| t.vpc_id.as_deref()) {
                Some(a) => a,
                None => self.inner.describe_route_tables(vpc_ids).await,
            }
        })
    }
    fn describe_network_acls<'a>(
        &'a self,
        vpc_ids: &'a [String],
    ) -> BoxFuture<'a, Fact<Vec<NetworkAcl>>> {
        Box::pin(async move {
            match self.network_acls.answer(vpc_ids, |a| a.vpc_id.as_deref()) {
                Some(a) => a,
                None => self.inner.describe_network_acls(vpc_ids).await,
            }
        })
    }
    fn describe_vpc_endpoint_service_configurations<'a>(
        &'a self,
        names: &'a [String],
    ) -> BoxFuture<'a, Fact<Vec<ServiceConfiguration>>> {
        Box::pin(async move {
            match self
                .vpce_configurations
                .answer(names, |c| Some(&c.service_name))
            {
                Some(a) => a,
                None => {
                    self.inner
                        .describe_vpc_endpoint_service_configurations(names)
                        .await
                }
            }
        })
    }
    fn describe_vpc_endpoint_service_permissions<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Fact<Vec<AllowedPrincipal>>> {
        Box::pin(async move {
            match self.vpce_permissions.get(id) {
                Some(a) => a.clone(),
                None => {
                    self.inner
                        .describe_vpc_endpoint_service_permissions(id)
                        .await
                }
            }
        })
    }
    fn describe_vpc_endpoint_services<'a>(
        &'a self,
        names: &'a [String],
    ) -> BoxFuture<'a, Fact<Vec<ServiceDetail>>> {
        Box::pin(async move {
            match self.vpce_services.answer(names, |d| Some(&d.service_name)) {
                Some(a) => a,
                None => self.inner.describe_vpc_endpoint_services(names).await,
            }
        })
    }
    fn describe_load_balancers<'a>(
        &'a self,
        arns: &'a [String],
    ) -> BoxFuture<'a, Fact<Vec<LoadBalancer>>> {
        Box::pin(async move {
            match self
                .load_balancers
                .answer(arns, |l| Some(&l.load_balancer_arn))
            {
                Some(a) => a,
                None => self.inner.describe_load_balancers(arns).await,
            }
        })
    }
    fn describe_listeners<'a>(
        &'a self,
        lb_arns: &'a [String],
    ) -> BoxFuture<'a, Fact<Vec<Listener>>> {
        // Per store: each service has its own load balancers.
        self.inner.describe_listeners(lb_arns)
    }
    fn describe_target_health<'a>(
        &'a self,
        group_arns: &'a [String],
    ) -> BoxFuture<'a, Fact<Vec<TargetHealthDescription>>> {
        self.inner.describe_target_health(group_arns)
    }
    fn list_keys<'a>(&'a self) -> BoxFuture<'a, Fact<Vec<KeyListEntry>>> {
        Box::pin(async move {
            self.keys
                .get_or_init(|| self.inner.list_keys())
                .await
                .clone()
        })
    }
    fn describe_keys<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Fact<KeyDescriptions>> {
        // Every store asks for every listed key: the first answer serves the others.
        Box::pin(async move {
            let (asked, answer) = self
                .key_descriptions
                .get_or_init(|| async { (ids.to_vec(), self.inner.describe_keys(ids).await) })
                .await;
            if asked.as_slice() == ids {
                answer.clone()
            } else {
                self.inner.describe_keys(ids).await
            }
        })
    }
    fn get_metric_data<'a>(
        &'a self,
        store_ids: &'a [String],
        window: &'a super::metrics::MetricWindow,
    ) -> BoxFuture<'a, Fact<super::metrics::MetricData>> {
        // Every store of the Region asks with the same window: the first read serves them all.
        Box::pin(async move {
            let all = &self.xks_store_ids;
            if store_ids.is_empty() || !store_ids.iter().all(|id| all.contains(id)) {
                return self.inner.get_metric_data(store_ids, window).await;
            }
            let (asked, answer) = self
                .metrics
                .get_or_init(|| async { (*window, self.inner.get_metric_data(all, window).await) })
                .await;
            if asked == window {
                answer.clone()
            } else {
                self.inner.get_metric_data(store_ids, window).await
            }
        })
    }
    fn lookup_events<'a>(
        &'a self,
        window: &'a super::trail::TrailWindow,
    ) -> BoxFuture<'a, Fact<super::trail::TrailData>> {
        // The lookups name no store: the first read serves every store of the Region.
        Box::pin(async move {
            let (asked, answer) = self
                .trail
                .get_or_init(|| async { (*window, self.inner.lookup_events(window).await) })
                .await;
            if asked == window {
                answer.clone()
            } else {
                self.inner.lookup_events(window).await
            }
        })
    }
}
