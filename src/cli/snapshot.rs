//! `snapshot`: records the facts a pre-flight reads, as AWS CLI JSON files for `--snapshot`.

use super::{Ctx, Done};
use cks_doctor::engine;
use cks_doctor::facts::kind::FactKind;
use cks_doctor::facts::Facts;
use cks_doctor::input::{self, InputError, KeyRequest, KeyStoreRef, Request};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// Also record the account's KMS keys (ListKeys, and DescribeKey of each), which a key
    /// pre-flight (`preflight key`) reads
    #[arg(long, global = true)]
    pub keys: bool,
    /// Also record the Region's CloudTrail events over --since (LookupEvents: the custom key
    /// store management events and the recent KMS events), which the account.trail checks read
    #[arg(long, global = true)]
    pub cloudtrail: bool,
    #[command(subcommand)]
    pub kind: SnapshotKind,
}

#[derive(Debug, Subcommand)]
pub enum SnapshotKind {
    /// The cluster, its security group and subnets, the account's key stores and their clusters
    Cloudhsm {
        /// The CloudHSM cluster id (cluster-[2-7a-zA-Z]{11,16})
        #[arg(long, value_name = "ID")]
        cluster_id: String,
        /// Directory to write the files to (created if missing)
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// The account's key stores and the caller identity; with a VPC endpoint service name also
    /// the service's configuration, permissions, consumer view and load balancers
    Xks {
        #[arg(long, value_name = "NAME")]
        vpc_endpoint_service_name: Option<String>,
        #[arg(long, value_name = "ACCOUNT")]
        vpc_endpoint_service_owner: Option<String>,
        /// Directory to write the files to (created if missing)
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

pub async fn run(ctx: &Ctx, args: &SnapshotArgs) -> Result<Done, InputError> {
    if ctx.settings.source.snapshot.is_some() {
        return Err(InputError::new(
            "snapshot records live facts: it cannot read from --snapshot",
        ));
    }
    let (request, out) = match &args.kind {
        SnapshotKind::Cloudhsm { cluster_id, out } => {
            input::validate_cluster_id(cluster_id)?;
            (
                Request::ClusterFacts {
                    cluster_id: cluster_id.clone(),
                },
                out,
            )
        }
        SnapshotKind::Xks {
            vpc_endpoint_service_name,
            vpc_endpoint_service_owner,
            out,
        } => (
            Request::Xks(input::XksRequest {
                name: None,
                uri_endpoint: String::new(),
                uri_path: String::new(),
                connectivity: if vpc_endpoint_service_name.is_some() {
                    input::VPC_ENDPOINT_SERVICE.to_string()
                } else {
                    "PUBLIC_ENDPOINT".to_string()
                },
                vpc_endpoint_service_name: vpc_endpoint_service_name.clone(),
                vpc_endpoint_service_owner: vpc_endpoint_service_owner.clone(),
                access_key_id: None,
                secret: None,
                connect_to: None,
                trust_ca: Vec::new(),
                client_identity: None,
                region: String::new(),
                timeout: Duration::from_secs(1),
            }),
            out,
        ),
    };
    let (source, _) = engine::open_source(&ctx.settings, None, None).await?;
    let facts = if args.keys {
        Facts::for_key(
            request,
            source,
            None,
            KeyRequest {
                store: KeyStoreRef::New,
                xks_key_id: None,
            },
        )
    } else {
        Facts::new(request, source)
    };
    facts.set_metric_settings(ctx.settings.metrics);
    let (mut capture, mut errors) = facts.capture().await;
    if args.cloudtrail {
        match facts.trail().await {
            Ok(t) => capture.trail = Some(t.output.as_ref().clone()),
            Err(e) => errors.push((FactKind::Trail.file().file, e.clone())),
        }
    }
    let written = capture
        .write_dir(out)
        .map_err(|e| InputError(format!("--out {}: {e}", out.display())))?;
    let mut text = String::new();
    for p in &written {
        text += &format!("wrote {}\n", p.display());
    }
    for (file, e) in &errors {
        text += &format!("not recorded: {file}: {e}\n");
    }
    Ok(Done {
        stdout: text,
        code: if errors.is_empty() {
            super::EXIT_OK
        } else {
            super::EXIT_INCOMPLETE
        },
    })
}
