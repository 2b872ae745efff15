mod cli;

use clap::Parser;
use cli::Cli;
use std::io::Write;

fn main() {
    // A crash inside a check is reported as that check's ERROR; keep stderr to one line.
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        eprintln!("cks-doctor: internal error: {msg}");
    }));
    let parsed = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cks-doctor: error: cannot start the async runtime: {e}");
            std::process::exit(cli::EXIT_USAGE);
        }
    };
    let code = match runtime.block_on(cli::run(parsed)) {
        Ok(done) => {
            let mut out = std::io::stdout().lock();
            // A closed pipe (`| head`) is not an error worth a message.
            let _ = out.write_all(done.stdout.as_bytes());
            let _ = out.flush();
            done.code
        }
        Err(e) => {
            eprintln!("cks-doctor: error: {e}");
            cli::EXIT_USAGE
        }
    };
    runtime.shutdown_background();
    std::process::exit(code);
}
