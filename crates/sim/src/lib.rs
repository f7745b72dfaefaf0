//! Simulators of the systems the service talks to, faithful to their wire formats: used by
//! the integration tests, the benchmark and `teleport-mattermost demo`.

pub mod mattermost;
pub mod process;
pub mod teleport;
