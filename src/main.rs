//! The `teleport-mattermost` binary: parse the command line and hand over to the service
//! library (`start`, `configure`, `check`, `version`), or run `demo` and `bench` against the
//! simulators.

mod bench;
mod cli;
mod demo;

use std::process::ExitCode;

/// mimalloc instead of glibc's malloc: the service makes many small, short-lived allocations
/// from several threads (every request's protobuf, JSON and HTTP messages), which glibc served
/// at about a quarter of the service's CPU; mimalloc also returns the memory of a burst to
/// the system once it is over (see BENCHMARKS.md, issue 20). Built without transparent huge
/// pages (`no_thp`): with them, its idle resident memory grew by 11 MB.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    teleport_mattermost::install_crypto_provider();
    match cli::parse() {
        Ok(cli) => cli::run(cli),
        Err(code) => code,
    }
}
