//! The `slant` binary: parse flags, run, report the error chain (each
//! cause once).
use std::process::ExitCode;

use clap::Parser;

/// jemalloc, not glibc's malloc. A served call allocates a few dozen small
/// strings and buffers; under load glibc's malloc and free were ~11% of the
/// server's CPU, and with jemalloc gRPC `Score` serves ~10% more requests/s
/// on 2 cores (`slant bench grpc`, median of 6 rounds against the same
/// build on glibc). mimalloc was as fast but kept freed model-load buffers
/// resident (a server at 117–180 MB instead of 88).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read when it starts: one background thread gives
/// freed pages back to the system within a second (a model reload frees
/// the old model's tables), so a serving process stays near glibc's size.
/// (The library's glibc tuning, `slant::service::tune_allocator` and the
/// trim after a reload, is for programs that use it on the system
/// allocator.)
#[allow(non_upper_case_globals)]
#[export_name = "_rjem_malloc_conf"]
pub static malloc_conf: &[u8] =
    b"background_thread:true,max_background_threads:1,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

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
