//! The `teleport-mattermost` binary: parse the command line and hand over to the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    teleport_mattermost::install_crypto_provider();
    match teleport_mattermost::cli::parse() {
        Ok(cli) => teleport_mattermost::cli::run(cli),
        Err(code) => code,
    }
}
