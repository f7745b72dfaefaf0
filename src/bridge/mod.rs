//! The bridge: Teleport access-request events become Mattermost posts, kept current.

pub mod queue;
