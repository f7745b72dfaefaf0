//! Reviewing from Mattermost: signed buttons and dialogs, the `/teleport` slash command, and
//! submitting reviews on behalf of the clicker's Teleport user (Teleport decides).

pub mod command;
pub mod signing;
