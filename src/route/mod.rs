//! Who gets a post: recipients from the config, access monitoring rules and suggested reviewers.

pub mod recipient;

pub use recipient::{Recipient, RecipientError};
