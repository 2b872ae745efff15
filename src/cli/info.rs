//! The commands that describe cks-doctor itself: `checks`, `explain`, `iam-policy`,
//! `completions`, `man`. No AWS call.

use super::{Cli, Ctx, Done};
use cks_doctor::input::InputError;
use cks_doctor::kind::StoreKind;
use cks_doctor::report::{catalogue, explain as explained, render::Format};

pub fn checks(ctx: &Ctx) -> Done {
    Done::ok(match ctx.output {
        Format::Json => catalogue::json(),
        _ => catalogue::table(ctx.style.wrap),
    })
}

pub fn explain(ctx: &Ctx, name: &str) -> Result<Done, InputError> {
    explained::explain(name, ctx.output == Format::Json)
        .map(Done::ok)
        .map_err(InputError)
}

pub fn iam_policy(kind: StoreKind) -> Done {
    Done::ok(serde_json::to_string_pretty(&catalogue::iam_policy(kind)).expect("serializes") + "\n")
}

pub fn completions(shell: clap_complete::Shell) -> Done {
    use clap::CommandFactory;
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "cks-doctor", &mut out);
    Done::ok(String::from_utf8_lossy(&out).into_owned())
}

pub fn man() -> Result<Done, InputError> {
    use clap::CommandFactory;
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut out)
        .map_err(|e| InputError(format!("man page: {e}")))?;
    Ok(Done::ok(String::from_utf8_lossy(&out).into_owned()))
}
