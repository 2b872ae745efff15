//! Facts recorded with the AWS CLI (`--output json`), one file per command.
//!
//! A snapshot directory holds exactly what the AWS CLI prints, so an operator can record it
//! with the CLI and send it to whoever troubleshoots. A missing file makes only the checks
//! that need that fact "could not check"; a file that is not the CLI's JSON is bad input.

use super::model::*;
use super::{Fact, FactError};
use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

use super::kind::FactKind;
pub use super::kind::{FactFile, FILES};

// The files, as the descriptors of their fact kinds name them.
const CLUSTERS: &FactFile = FactKind::Cluster.file();
const SECURITY_GROUPS: &FactFile = FactKind::SecurityGroup.file();
const SUBNETS: &FactFile = FactKind::Subnets.file();
const CUSTOM_KEY_STORES: &FactFile = FactKind::KeyStores.file();
const ROUTE_TABLES: &FactFile = FactKind::RouteTables.file();
const NETWORK_ACLS: &FactFile = FactKind::NetworkAcls.file();
const VPCE_CONFIGURATIONS: &FactFile = FactKind::VpceConfiguration.file();
const VPCE_PERMISSIONS: &FactFile = FactKind::VpcePermissions.file();
const VPCE_SERVICES: &FactFile = FactKind::VpceService.file();
const LOAD_BALANCERS: &FactFile = FactKind::LoadBalancers.file();
const CALLER_IDENTITY: &FactFile = FactKind::CallerIdentity.file();
const LISTENERS: &FactFile = FactKind::Listeners.file();
const TARGET_HEALTH: &FactFile = FactKind::TargetHealth.file();
const KEYS: &FactFile = FactKind::Keys.file();
const KEY_DESCRIPTIONS: &FactFile = FactKind::KeyDescriptions.file();
const METRIC_DATA: &FactFile = FactKind::Metrics.file();
const TRAIL: &FactFile = FactKind::Trail.file();

/// A snapshot file that exists but cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("snapshot file {path}: {reason}")]
pub struct SnapshotError {
    pub path: PathBuf,
    pub reason: String,
}

/// Facts held in memory: loaded from a snapshot directory, built directly (tests), or read
/// from AWS by `cks-doctor snapshot` to be written as one (each `None` is a fact not held).
#[derive(Debug, Default, Clone)]
pub struct Recorded {
    pub origin: String,
    pub clusters: Option<Vec<Cluster>>,
    pub security_groups: Option<Vec<SecurityGroup>>,
    pub subnets: Option<Vec<Subnet>>,
    pub custom_key_stores: Option<Vec<CustomKeyStore>>,
    pub route_tables: Option<Vec<RouteTable>>,
    pub network_acls: Option<Vec<NetworkAcl>>,
    pub vpce_configurations: Option<Vec<ServiceConfiguration>>,
    pub vpce_permissions: Option<Vec<AllowedPrincipal>>,
    pub vpce_services: Option<Vec<ServiceDetail>>,
    pub load_balancers: Option<Vec<LoadBalancer>>,
    pub caller_identity: Option<CallerIdentity>,
    pub listeners: Option<Vec<Listener>>,
    pub target_health: Option<Vec<TargetHealthDescription>>,
    pub keys: Option<Vec<KeyListEntry>>,
    pub key_descriptions: Option<Vec<KeyMetadata>>,
    /// GetMetricData of the external key stores' AWS/KMS metrics (`super::metrics`).
    pub metric_data: Option<GetMetricDataOutput>,
    /// CloudTrail LookupEvents, the lookups joined (`super::trail`).
    pub trail: Option<super::trail::LookupEventsOutput>,
}

/// Snapshot files larger than this are refused (the CLI output of a whole account is far smaller).
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

fn load<T: DeserializeOwned>(dir: &Path, f: &FactFile) -> Result<Option<T>, SnapshotError> {
    let path = dir.join(f.file);
    let err = |reason: String| SnapshotError {
        path: path.clone(),
        reason,
    };
    let meta = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(e.to_string())),
    };
    if meta.len() > MAX_FILE_BYTES {
        return Err(err(format!(
            "{} bytes is larger than the {} MiB limit",
            meta.len(),
            MAX_FILE_BYTES / 1024 / 1024
        )));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| err(e.to_string()))?;
    serde_json::from_str(&text).map(Some).map_err(|e| {
        err(format!(
            "not the JSON printed by `{}` ({e})",
            f.command.split(" --").next().unwrap_or(f.command)
        ))
    })
}

impl Recorded {
    /// Loads every known file present in `dir`. The directory itself must exist.
    pub fn load_dir(dir: &Path) -> Result<Recorded, SnapshotError> {
        if !dir.is_dir() {
            return Err(SnapshotError {
                path: dir.to_path_buf(),
                reason: "not a directory".into(),
            });
        }
        Ok(Recorded {
            origin: format!("snapshot {}", dir.display()),
            clusters: load::<DescribeClustersOutput>(dir, &CLUSTERS)?.map(|o| o.clusters),
            security_groups: load::<DescribeSecurityGroupsOutput>(dir, &SECURITY_GROUPS)?
                .map(|o| o.security_groups),
            subnets: load::<DescribeSubnetsOutput>(dir, &SUBNETS)?.map(|o| o.subnets),
            custom_key_stores: load::<DescribeCustomKeyStoresOutput>(dir, &CUSTOM_KEY_STORES)?
                .map(|o| o.custom_key_stores),
            route_tables: load::<DescribeRouteTablesOutput>(dir, &ROUTE_TABLES)?
                .map(|o| o.route_tables),
            network_acls: load::<DescribeNetworkAclsOutput>(dir, &NETWORK_ACLS)?
                .map(|o| o.network_acls),
            vpce_configurations: load::<DescribeVpcEndpointServiceConfigurationsOutput>(
                dir,
                &VPCE_CONFIGURATIONS,
            )?
            .map(|o| o.service_configurations),
            vpce_permissions: load::<DescribeVpcEndpointServicePermissionsOutput>(
                dir,
                &VPCE_PERMISSIONS,
            )?
            .map(|o| o.allowed_principals),
            vpce_services: load::<DescribeVpcEndpointServicesOutput>(dir, &VPCE_SERVICES)?
                .map(|o| o.service_details),
            load_balancers: load::<DescribeLoadBalancersOutput>(dir, &LOAD_BALANCERS)?
                .map(|o| o.load_balancers),
            caller_identity: load::<CallerIdentity>(dir, &CALLER_IDENTITY)?,
            listeners: load::<DescribeListenersOutput>(dir, LISTENERS)?.map(|o| o.listeners),
            target_health: load::<DescribeTargetHealthOutput>(dir, TARGET_HEALTH)?
                .map(|o| o.target_health_descriptions),
            keys: load::<ListKeysOutput>(dir, KEYS)?.map(|o| o.keys),
            key_descriptions: load::<Vec<DescribeKeyOutput>>(dir, KEY_DESCRIPTIONS)?
                .map(|v| v.into_iter().map(|o| o.key_metadata).collect()),
            metric_data: load::<GetMetricDataOutput>(dir, METRIC_DATA)?,
            trail: load::<super::trail::LookupEventsOutput>(dir, TRAIL)?,
        })
    }

    pub fn describe(&self) -> String {
        if self.origin.is_empty() {
            "recorded facts".into()
        } else {
            self.origin.clone()
        }
    }

    fn get<'a, T>(part: &'a Option<Vec<T>>, f: &FactFile) -> Fact<&'a Vec<T>> {
        part.as_ref().ok_or_else(|| FactError::SnapshotMissing {
            file: f.file.to_string(),
            command: f.command.to_string(),
        })
    }

    pub fn describe_clusters(&self, ids: &[String]) -> Fact<Vec<Cluster>> {
        let all = Self::get(&self.clusters, &CLUSTERS)?;
        Ok(all
            .iter()
            .filter(|c| ids.contains(&c.cluster_id))
            .cloned()
            .collect())
    }

    pub fn describe_security_groups(&self, ids: &[String]) -> Fact<Vec<SecurityGroup>> {
        let all = Self::get(&self.security_groups, &SECURITY_GROUPS)?;
        Ok(all
            .iter()
            .filter(|g| ids.contains(&g.group_id))
            .cloned()
            .collect())
    }

    pub fn describe_subnets(&self, ids: &[String]) -> Fact<Vec<Subnet>> {
        let all = Self::get(&self.subnets, &SUBNETS)?;
        Ok(all
            .iter()
            .filter(|s| ids.contains(&s.subnet_id))
            .cloned()
            .collect())
    }

    pub fn describe_custom_key_stores(&self) -> Fact<Vec<CustomKeyStore>> {
        Self::get(&self.custom_key_stores, &CUSTOM_KEY_STORES).cloned()
    }

    pub fn describe_route_tables(&self, vpc_ids: &[String]) -> Fact<Vec<RouteTable>> {
        let all = Self::get(&self.route_tables, &ROUTE_TABLES)?;
        Ok(all
            .iter()
            .filter(|t| t.vpc_id.as_ref().is_some_and(|v| vpc_ids.contains(v)))
            .cloned()
            .collect())
    }

    pub fn describe_vpc_endpoint_service_configurations(
        &self,
        service_names: &[String],
    ) -> Fact<Vec<ServiceConfiguration>> {
        let all = Self::get(&self.vpce_configurations, &VPCE_CONFIGURATIONS)?;
        Ok(all
            .iter()
            .filter(|c| service_names.contains(&c.service_name))
            .cloned()
            .collect())
    }

    pub fn describe_vpc_endpoint_service_permissions(
        &self,
        service_id: &str,
    ) -> Fact<Vec<AllowedPrincipal>> {
        let all = Self::get(&self.vpce_permissions, &VPCE_PERMISSIONS)?;
        Ok(all
            .iter()
            .filter(|p| p.service_id.as_deref().is_none_or(|id| id == service_id))
            .cloned()
            .collect())
    }

    pub fn describe_vpc_endpoint_services(
        &self,
        service_names: &[String],
    ) -> Fact<Vec<ServiceDetail>> {
        let all = Self::get(&self.vpce_services, &VPCE_SERVICES)?;
        Ok(all
            .iter()
            .filter(|d| service_names.contains(&d.service_name))
            .cloned()
            .collect())
    }

    pub fn describe_load_balancers(&self, arns: &[String]) -> Fact<Vec<LoadBalancer>> {
        let all = Self::get(&self.load_balancers, &LOAD_BALANCERS)?;
        Ok(all
            .iter()
            .filter(|l| arns.contains(&l.load_balancer_arn))
            .cloned()
            .collect())
    }

    pub fn describe_listeners(&self, lb_arns: &[String]) -> Fact<Vec<Listener>> {
        let all = Self::get(&self.listeners, LISTENERS)?;
        Ok(all
            .iter()
            .filter(|l| lb_arns.contains(&l.load_balancer_arn))
            .cloned()
            .collect())
    }

    /// The file records the groups of the port 443 listeners together (the CLI's output names
    /// no group), so every description it holds is returned.
    pub fn describe_target_health(
        &self,
        _group_arns: &[String],
    ) -> Fact<Vec<TargetHealthDescription>> {
        Ok(Self::get(&self.target_health, TARGET_HEALTH)?.clone())
    }

    pub fn list_keys(&self) -> Fact<Vec<KeyListEntry>> {
        Ok(Self::get(&self.keys, KEYS)?.clone())
    }

    /// The recorded descriptions of these keys; a listed key the file does not describe is
    /// unreadable, as a live DescribeKey the caller may not make would be.
    pub fn describe_keys(&self, ids: &[String]) -> Fact<KeyDescriptions> {
        let all = Self::get(&self.key_descriptions, KEY_DESCRIPTIONS)?;
        let mut out = KeyDescriptions::default();
        for id in ids {
            match all.iter().find(|k| &k.key_id == id) {
                Some(k) => out.keys.push(k.clone()),
                None => out.unreadable.push((
                    id.clone(),
                    format!("not described in {}", KEY_DESCRIPTIONS.file),
                )),
            }
        }
        Ok(out)
    }

    /// The recorded answer, whole (each store's checks read their own query ids); the window
    /// it was recorded for is not in the file.
    pub fn get_metric_data(&self, _store_ids: &[String]) -> Fact<super::metrics::MetricData> {
        match &self.metric_data {
            Some(o) => Ok(super::metrics::MetricData {
                output: std::sync::Arc::new(o.clone()),
                window: None,
            }),
            None => Err(FactError::SnapshotMissing {
                file: METRIC_DATA.file.to_string(),
                command: METRIC_DATA.command.to_string(),
            }),
        }
    }

    /// The recorded events, whole (each store's checks read their own); the window they were
    /// recorded for is not in the file.
    pub fn lookup_events(&self) -> Fact<super::trail::TrailData> {
        match &self.trail {
            Some(o) => Ok(super::trail::TrailData {
                output: std::sync::Arc::new(o.clone()),
                window: None,
                lookups: Vec::new(),
            }),
            None => Err(FactError::SnapshotMissing {
                file: TRAIL.file.to_string(),
                command: TRAIL.command.to_string(),
            }),
        }
    }

    pub fn get_caller_identity(&self) -> Fact<CallerIdentity> {
        self.caller_identity
            .clone()
            .ok_or_else(|| FactError::SnapshotMissing {
                file: CALLER_IDENTITY.file.to_string(),
                command: CALLER_IDENTITY.command.to_string(),
            })
    }

    pub fn describe_network_acls(&self, vpc_ids: &[String]) -> Fact<Vec<NetworkAcl>> {
        let all = Self::get(&self.network_acls, &NETWORK_ACLS)?;
        Ok(all
            .iter()
            .filter(|a| a.vpc_id.as_ref().is_some_and(|v| vpc_ids.contains(v)))
            .cloned()
            .collect())
    }
}

// The reads of the facts layer are the snapshot files above, filtered as the API would.
impl super::Read for Recorded {
    fn describe(&self) -> String {
        Recorded::describe(self)
    }
    fn is_live(&self) -> bool {
        false
    }
    fn describe_clusters<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Fact<Vec<Cluster>>> {
        Box::pin(std::future::ready(Recorded::describe_clusters(self, ids)))
    }
    fn describe_security_groups<'a>(
        &'a self,
        ids: &'a [String],
    ) -> BoxFuture<'a, Fact<Vec<SecurityGroup>>> {
        Box::pin(std::future::ready(Recorded::describe_security_groups(
            self, ids,
        )))
    }
    fn describe_subnets<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Fact<Vec<Subnet>>> {
        Box::pin(std::future::ready(Recorded::describe_subnets(self, ids)))
    }
    fn describe_custom_key_stores<'a>(&'a self) -> BoxFuture<'a, Fact<Vec<CustomKeyStore>>> {
        Box::pin(std::future::ready(Recorded::describe_custom_key_stores(
            self,
        )))
    }
    fn describe_route_tables<'a>(
        &'a self,
        vpc_ids: &'a [String],
    ) -> BoxFuture<'a, Fact<Vec<RouteTable>>> {
        Box::pin(std::future::ready(Recorded::describe_route_tables(
            self, vpc_ids,
        )))
    }
    fn describe_network_acls<'a>(
        &'a self,
        vpc_ids: &'a [String],
    ) -> BoxFuture<'a, Fact<Vec<NetworkAcl>>> {
        Box::pin(std::future::ready(Recorded::describe_network_acls(
            self, vpc_ids,
        )))
    }
    fn describe_vpc_endpoint_service_configurations<'a>(
        &'a self,
        names: &'a [String],
    ) -> BoxFuture<'a, Fact<Vec<ServiceConfiguration>>> {
        Box::pin(std::future::ready(
            Recorded::describe_vpc_endpoint_service_configurations(self, names),
        ))
    }
    fn describe_vpc_endpoint_service_permissions<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Fact<Vec<AllowedPrincipal>>> {
        Box::pin(std::future::ready(
            Recorded::describe_vpc_endpoint_service_permissions(self, id),
        ))
    }
    fn describe_vpc_endpoint_services<'a>(
        &'a self,
        names: &'a [String],
    ) -> BoxFuture<'a, Fact<Vec<ServiceDetail>>> {
        Box::pin(std::future::ready(
            Recorded::describe_vpc_endpoint_services(self, names),
        ))
    }
    fn describe_load_balancers<'a>(
        &'a self,
        arns: &'a [String],
    ) -> BoxFuture<'a, Fact<Vec<LoadBalancer>>> {
        Box::pin(std::future::ready(Recorded::describe_load_balancers(
            self, arns,
        )))
    }
    fn get_caller_identity<'a>(&'a self) -> BoxFuture<'a, Fact<CallerIdentity>> {
        Box::pin(std::future::ready(Recorded::get_caller_identity(self)))
    }
    fn describe_listeners<'a>(
        &'a self,
        lb_arns: &'a [String],
    ) -> BoxFuture<'a, Fact<Vec<Listener>>> {
        Box::pin(std::future::ready(Recorded::describe_listeners(
            self, lb_arns,
        )))
    }
    fn describe_target_health<'a>(
        &'a self,
        group_arns: &'a [String],
    ) -> BoxFuture<'a, Fact<Vec<TargetHealthDescription>>> {
        Box::pin(std::future::ready(Recorded::describe_target_health(
            self, group_arns,
        )))
    }
    fn list_keys<'a>(&'a self) -> BoxFuture<'a, Fact<Vec<KeyListEntry>>> {
        Box::pin(std::future::ready(Recorded::list_keys(self)))
    }
    fn describe_keys<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Fact<KeyDescriptions>> {
        Box::pin(std::future::ready(Recorded::describe_keys(self, ids)))
    }
    fn get_metric_data<'a>(
        &'a self,
        store_ids: &'a [String],
        _window: &'a super::metrics::MetricWindow,
    ) -> BoxFuture<'a, Fact<super::metrics::MetricData>> {
        Box::pin(std::future::ready(Recorded::get_metric_data(
            self, store_ids,
        )))
    }
    fn lookup_events<'a>(
        &'a self,
        _window: &'a super::trail::TrailWindow,
    ) -> BoxFuture<'a, Fact<super::trail::TrailData>> {
        Box::pin(std::future::ready(Recorded::lookup_events(self)))
    }
}

fn write_json<T: serde::Serialize>(
    dir: &Path,
    f: &FactFile,
    value: &T,
) -> std::io::Result<PathBuf> {
    let path = dir.join(f.file);
    let mut text = serde_json::to_string_pretty(value).map_err(std::io::Error::other)?;
    text.push('\n');
    std::fs::write(&path, text)?;
    Ok(path)
}

impl Recorded {
    /// Writes every fact held (those `cks-doctor snapshot` could read) in the AWS CLI's `--output json` shape; returns the files written.
    pub fn write_dir(&self, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir)?;
        let mut written = Vec::new();
        if let Some(v) = &self.clusters {
            written.push(write_json(
                dir,
                &CLUSTERS,
                &DescribeClustersOutput {
                    clusters: v.clone(),
                },
            )?);
        }
        if let Some(v) = &self.security_groups {
            written.push(write_json(
                dir,
                &SECURITY_GROUPS,
                &DescribeSecurityGroupsOutput {
                    security_groups: v.clone(),
                },
            )?);
        }
        if let Some(v) = &self.subnets {
            written.push(write_json(
                dir,
                &SUBNETS,
                &DescribeSubnetsOutput { subnets: v.clone() },
            )?);
        }
        if let Some(v) = &self.custom_key_stores {
            written.push(write_json(
                dir,
                &CUSTOM_KEY_STORES,
                &DescribeCustomKeyStoresOutput {
                    custom_key_stores: v.clone(),
                },
            )?);
        }
        if let Some(v) = &self.route_tables {
            written.push(write_json(
                dir,
                &ROUTE_TABLES,
                &DescribeRouteTablesOutput {
                    route_tables: v.clone(),
                },
            )?);
        }
        if let Some(v) = &self.vpce_configurations {
            written.push(write_json(
                dir,
                &VPCE_CONFIGURATIONS,
                &DescribeVpcEndpointServiceConfigurationsOutput {
                    service_configurations: v.clone(),
                },
            )?);
        }
        if let Some(v) = &self.vpce_permissions {
            written.push(write_json(
                dir,
                &VPCE_PERMISSIONS,
                &DescribeVpcEndpointServicePermissionsOutput {
                    allowed_principals: v.clone(),
                },
            )?);
        }
        if let Some(v) = &self.vpce_services {
            written.push(write_json(
                dir,
                &VPCE_SERVICES,
                &DescribeVpcEndpointServicesOutput {
                    service_details: v.clone(),
                },
            )?);
        }
        if let Some(v) = &self.load_balancers {
            written.push(write_json(
                dir,
                &LOAD_BALANCERS,
                &DescribeLoadBalancersOutput {
                    load_balancers: v.clone(),
                },
            )?);
        }
        if let Some(v) = &self.caller_identity {
            written.push(write_json(dir, &CALLER_IDENTITY, v)?);
        }
        if let Some(v) = &self.listeners {
            written.push(write_json(
                dir,
                LISTENERS,
                &DescribeListenersOutput {
                    listeners: v.clone(),
                },
            )?);
        }
        if let Some(v) = &self.target_health {
            written.push(write_json(
                dir,
                TARGET_HEALTH,
                &DescribeTargetHealthOutput {
                    target_health_descriptions: v.clone(),
                },
            )?);
        }
        if let Some(v) = &self.keys {
            written.push(write_json(dir, KEYS, &ListKeysOutput { keys: v.clone() })?);
        }
        if let Some(v) = &self.key_descriptions {
            let outputs: Vec<DescribeKeyOutput> = v
                .iter()
                .map(|k| DescribeKeyOutput {
                    key_metadata: k.clone(),
                })
                .collect();
            written.push(write_json(dir, KEY_DESCRIPTIONS, &outputs)?);
        }
        if let Some(v) = &self.network_acls {
            written.push(write_json(
                dir,
                &NETWORK_ACLS,
                &DescribeNetworkAclsOutput {
                    network_acls: v.clone(),
                },
            )?);
        }
        if let Some(v) = &self.metric_data {
            written.push(write_json(dir, METRIC_DATA, v)?);
        }
        if let Some(v) = &self.trail {
            written.push(write_json(dir, TRAIL, v)?);
        }
        Ok(written)
    }
}
