//! The `teleport-mattermost` binary: parse the command line and hand over to the service
//! library (`start`, `configure`, `check`, `version`), or run `demo` and `bench` against the
//! simulators.

mod bench;
mod cli;
mod demo;

use std::process::ExitCode;

fn main() -> ExitCode {
    teleport_mattermost::install_crypto_provider();
    match cli::parse() {
        Ok(cli) => cli::run(cli),
        Err(code) => code,
    }
}
