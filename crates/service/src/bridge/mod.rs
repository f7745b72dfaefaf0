//! The bridge: Teleport access-request events become Mattermost posts, kept current.
//!
//! - [`queue`]: per-request ordering, bounded parallelism, retries.
//! - [`processor`]: one request's posts brought up to date, exactly once (see [`claim`]).
//! - [`ports`]: the Teleport and Mattermost operations it needs; [`render`]: post texts.

pub mod claim;
pub mod mattermost_chat;
pub mod metrics;
pub mod owed;
pub mod ports;
pub mod post_render;
pub mod processor;
pub mod queue;
pub mod render;
pub mod teleport_store;
pub mod unchanged;
pub mod watcher;
pub mod work;

#[cfg(test)]
mod delivery_tests;
#[cfg(test)]
mod fakes;
#[cfg(test)]
mod processor_tests;
