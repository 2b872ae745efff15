//! `diagnose`: why an existing key store is FAILED (or whether a CONNECTED one is sound).

use super::preflight::{read_client_identity, read_trust_ca, read_xks_secret, XksProbeArgs};
use super::{Ctx, Done};
use cks_doctor::diagnose::{self, Extras};
use cks_doctor::engine;
use cks_doctor::input::{self, InputError};
use clap::Args;

#[derive(Debug, Args)]
pub struct DiagnoseArgs {
    /// The custom key store id (cks-...)
    #[arg(value_name = "STORE_ID", required_unless_present = "name")]
    pub id: Option<String>,
    /// Find the store by its name instead
    #[arg(long, value_name = "NAME", conflicts_with = "id")]
    pub name: Option<String>,
    /// JSON output of `cloudhsm-cli user list`, evidence for the kmsuser codes
    #[arg(long, value_name = "FILE")]
    pub cloudhsm_users: Option<String>,
    #[command(flatten)]
    pub xks: XksProbeArgs,
}

pub async fn run(ctx: &Ctx, args: &DiagnoseArgs) -> Result<Done, InputError> {
    let settings = &ctx.settings;
    // Everything the operator supplies is read before any network call.
    let users = args
        .cloudhsm_users
        .as_deref()
        .map(input::load_users)
        .transpose()?;
    let secret = read_xks_secret(&args.xks)?;
    let trust_ca = read_trust_ca(&args.xks.trust_ca)?;
    let client_identity = read_client_identity(&args.xks)?;
    let (source, region) = engine::open_source(settings, None, None).await?;
    let stores = engine::key_stores(&source).await?;
    let store = diagnose::find(&stores, args.id.as_deref(), args.name.as_deref())
        .map_err(InputError)?
        .clone();
    if !store.is_cloudhsm() && region.is_none() {
        return Err(InputError::new(
            "diagnosing an external key store needs its Region (--region): it goes into the SigV4 scope",
        ));
    }
    let extras = Extras {
        secret,
        users,
        connect_to: args.xks.connect_to.clone(),
        trust_ca,
        client_identity,
        region: region.clone().unwrap_or_default(),
        timeout: settings.probe_timeout(),
    };
    let run = engine::diagnose_store(settings, source, region, stores, store, extras).await?;
    ctx.finish(vec![run.report], None)
}
