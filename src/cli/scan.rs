//! `scan`: every custom key store of one or more Regions and accounts (profiles).

use super::{Ctx, Done};
use cks_doctor::engine;
use cks_doctor::input::InputError;
use clap::Args;

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Regions to scan (comma-separated or repeated); default: the configured Region
    #[arg(long, value_delimiter = ',', value_name = "REGION")]
    pub regions: Vec<String>,
    /// Every Region enabled for the account (ec2:DescribeRegions)
    #[arg(long, conflicts_with = "regions")]
    pub all_regions: bool,
    /// AWS profiles (accounts) to scan into one report (comma-separated or repeated)
    #[arg(long, value_delimiter = ',', value_name = "PROFILE")]
    pub profiles: Vec<String>,
}

pub async fn run(ctx: &Ctx, args: &ScanArgs) -> Result<Done, InputError> {
    let settings = &ctx.settings;
    let profiles: Vec<Option<String>> = if args.profiles.is_empty() {
        vec![None]
    } else {
        args.profiles.iter().cloned().map(Some).collect()
    };
    let mut targets: Vec<(Option<String>, Option<String>)> = Vec::new();
    for p in &profiles {
        let regions: Vec<Option<String>> = if args.all_regions {
            engine::enabled_regions(settings, p.as_deref())
                .await?
                .into_iter()
                .map(Some)
                .collect()
        } else if args.regions.is_empty() {
            vec![None]
        } else {
            args.regions.iter().cloned().map(Some).collect()
        };
        targets.extend(regions.into_iter().map(|r| (p.clone(), r)));
    }
    let (reports, errors) = engine::scan(settings, targets).await;
    ctx.finish(reports, Some(&errors))
}
