//! Snapshot capture: what `cks-doctor snapshot` writes loads back as the same facts, and an
//! offline run on it gives the same results as the run it was captured from.

use crate::support::common::*;
use cks_doctor::facts::recorded::{Recorded, FILES};
use cks_doctor::facts::{Facts, Source};
use cks_doctor::input::Request;
use std::time::Duration;

async fn statuses(source: Recorded) -> Vec<(String, String, String)> {
    let facts = Facts::new(Request::CloudHsm(request()), Source::Recorded(source));
    let all = cks_doctor::engine::checks_for(
        cks_doctor::kind::StoreKind::Cloudhsm,
        &Default::default(),
        cks_doctor::engine::Stage::Create,
    )
    .unwrap();
    cks_doctor::runner::run(facts, &all, Duration::from_secs(10))
        .await
        .into_iter()
        .map(|r| (r.id, r.status.as_str().to_string(), r.message))
        .collect()
}

fn related_setup() -> Recorded {
    let mut facts = healthy();
    let mut other = cluster();
    other.cluster_id = "cluster-w3bg7xq2k4n".into();
    facts.clusters.as_mut().unwrap().push(other);
    facts.subnets.as_mut().unwrap()[1].available_ip_address_count = Some(0);
    facts
}

#[tokio::test]
async fn capture_round_trips_through_files() {
    let original = related_setup();
    let facts = Facts::new(
        Request::ClusterFacts {
            cluster_id: CLUSTER_ID.into(),
        },
        Source::Recorded(original.clone()),
    );
    let (capture, errors) = facts.capture().await;
    assert!(errors.is_empty(), "{errors:?}");
    let dir = tempfile::tempdir().unwrap();
    let written = capture.write_dir(dir.path()).unwrap();
    // The six files of a CloudHSM pre-flight (VPC endpoint service files are for XKS).
    assert_eq!(written.len(), 6, "{written:?} of {}", FILES.len());
    let loaded = Recorded::load_dir(dir.path()).unwrap();
    assert_eq!(loaded.clusters, original.clusters);
    assert_eq!(loaded.security_groups, original.security_groups);
    assert_eq!(loaded.subnets, original.subnets);
    assert_eq!(loaded.custom_key_stores, original.custom_key_stores);
    let before = statuses(original).await;
    let after = statuses(loaded).await;
    assert_eq!(before, after);
    assert!(
        before.iter().any(|(_, s, _)| s == "FAIL"),
        "the setup has a failure to carry over"
    );
}

#[tokio::test]
async fn capture_leaves_out_unreadable_facts_and_says_why() {
    let mut source = healthy();
    source.security_groups = None;
    let facts = Facts::new(
        Request::ClusterFacts {
            cluster_id: CLUSTER_ID.into(),
        },
        Source::Recorded(source),
    );
    let (capture, errors) = facts.capture().await;
    assert!(capture.security_groups.is_none());
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].0, "ec2-describe-security-groups.json");
}
