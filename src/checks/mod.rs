//! The checks: pure logic over [`Facts`], one file per family.
//!
//! A check reads facts (never the SDK), decides, and returns an [`Outcome`]: a status, a
//! message with the evidence, and optionally a narrower set of KMS exceptions or connection
//! error codes than its metadata lists. Everything static about a check (title, area,
//! severity, the codes it maps to, remediation) lives in its metadata file in `checks/`.

pub mod account;
pub mod cloudhsm;
pub mod key;
pub mod kmsuser;
pub mod metrics;
pub mod params;
pub mod trail;
pub mod vpc;
pub mod vpce;
pub mod xks;

use crate::facts::model::Cluster;
use crate::facts::{FactError, Facts};
use futures::future::BoxFuture;
use std::sync::{Arc, OnceLock};

pub use crate::results::{Outcome, Status, Step};

pub type CheckFn = fn(Arc<Facts>) -> BoxFuture<'static, Outcome>;

/// A registered check: its id (which names its metadata file) and its implementation.
pub struct Check {
    pub id: &'static str,
    pub run: CheckFn,
}

pub fn flatten(s: Step<Outcome>) -> Outcome {
    match s {
        Ok(o) | Err(o) => o,
    }
}

/// Declares a family's checks: `id => async fn(&Facts) -> Step<Outcome>`.
macro_rules! register {
    ($($id:literal => $f:path),* $(,)?) => {
        pub fn checks() -> Vec<$crate::checks::Check> {
            vec![$($crate::checks::Check {
                id: $id,
                run: |facts| Box::pin(async move { $crate::checks::flatten($f(&facts).await) }),
            }),*]
        }
    };
}
pub(crate) use register;

/// Every check, in report order.
pub fn registry() -> &'static [Check] {
    static REGISTRY: OnceLock<Vec<Check>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut all = Vec::new();
        all.extend(params::checks());
        all.extend(account::checks());
        all.extend(cloudhsm::checks());
        all.extend(vpc::checks());
        all.extend(xks::checks());
        all.extend(vpce::checks());
        all.extend(metrics::checks());
        all.extend(trail::checks());
        all.extend(kmsuser::checks());
        all.extend(key::checks());
        all
    })
}

pub fn find(id: &str) -> Option<&'static Check> {
    registry().iter().find(|c| c.id == id)
}

// ----- shared fact access for checks -----

pub const CLUSTER_EXISTS: &str = "cloudhsm.cluster.exists";

/// States in which KMS no longer finds a cluster.
pub fn is_gone(state: &str) -> bool {
    matches!(state, "DELETE_IN_PROGRESS" | "DELETED")
}

/// The requested cluster, or the outcome that ends a check which needs it.
pub async fn need_cluster(f: &Facts) -> Step<&Cluster> {
    match f.cluster().await {
        Ok(Some(c)) if !is_gone(&c.state) => Ok(c),
        Ok(Some(c)) => Err(Outcome::blocked(
            CLUSTER_EXISTS,
            format!("the cluster is {}", c.state),
        )),
        Ok(None) => Err(Outcome::blocked(
            CLUSTER_EXISTS,
            "the cluster was not found",
        )),
        Err(e) => Err(Outcome::could_not_read(e)),
    }
}

/// Lifts a fact into a step: an unreadable fact ends the check as "could not check".
pub fn got<T>(fact: &Result<T, FactError>) -> Step<&T> {
    fact.as_ref().map_err(Outcome::could_not_read)
}
