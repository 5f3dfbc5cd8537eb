//! The `slant` binary: parse flags, run, report the error chain (each
//! cause once).
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = slant::cli::Cli::parse();
    match slant::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A closed pipe (`slant score | head`) is not a failure.
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            let _ = slant::cli::report(&e, &mut std::io::stderr().lock());
            ExitCode::FAILURE
        }
    }
}
