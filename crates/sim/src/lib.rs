//! Simulators of the systems the service talks to, faithful to their wire formats: used by
//! the integration tests, the benchmark and `teleport-mattermost demo`
//! (whose `--keep-running` also serves the [`playground`]). They are written from
//! the wire facts alone and share only the generated protobuf types with the service, so the
//! two cannot agree on a mistake.

pub mod mattermost;
pub mod playground;
pub mod process;
pub mod teleport;
pub mod world;
