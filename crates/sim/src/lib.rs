//! Simulators of the systems the service talks to, faithful to their wire formats: used by
//! the integration tests, the benchmark and `teleport-mattermost demo` (whose `--keep-running`
//! also serves the [`playground`]).

pub mod mattermost;
pub mod playground;
pub mod process;
pub mod teleport;
