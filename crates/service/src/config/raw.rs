//! The config file as written: loose types (strings, optional values) so validation can
//! report every problem at once with the key that holds it, instead of serde's first error.

use std::collections::BTreeMap;

use figment::value::Value;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
pub struct RawConfig {
    #[serde(default)]
    pub teleport: RawTeleport,
    #[serde(default)]
    pub mattermost: RawMattermost,
    #[serde(default)]
    pub role_to_recipients: BTreeMap<String, Value>,
    #[serde(default)]
    pub log: RawLog,
    #[serde(default)]
    pub http: RawHttp,
    #[serde(default)]
    pub review: RawReview,
    #[serde(default)]
    pub bridge: RawBridge,
    #[serde(default)]
    pub access_lists: RawAccessLists,
    pub reminders: Option<RawReminders>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawTeleport {
    pub addr: Option<String>,
    pub auth_server: Option<String>,
    pub identity: Option<String>,
    pub client_key: Option<String>,
    pub client_crt: Option<String>,
    pub root_cas: Option<String>,
    pub refresh_identity: Option<bool>,
    pub refresh_identity_interval: Option<Value>,
    pub proxy_ca: Option<String>,
}

#[derive(Default, Deserialize)]
pub struct RawMattermost {
    pub url: Option<String>,
    pub token: Option<String>,
    #[serde(default)]
    pub recipients: Vec<String>,
    pub timeout: Option<Value>,
    pub notify_requester: Option<bool>,
}

// Hand-written so the token never reaches a Debug print of the raw config.
impl std::fmt::Debug for RawMattermost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawMattermost")
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "[REDACTED]"))
            .field("recipients", &self.recipients)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct RawLog {
    pub output: Option<String>,
    pub severity: Option<String>,
    pub format: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawHttp {
    pub listen_addr: Option<String>,
    pub public_addr: Option<String>,
    #[serde(default)]
    pub callback_allowed_sources: Vec<String>,
}

#[derive(Default, Deserialize)]
pub struct RawReview {
    pub enabled: Option<bool>,
    pub user_id_trait: Option<String>,
    pub allow_email_username_match: Option<bool>,
    pub signing_secret: Option<String>,
    pub command_token: Option<Value>,
    pub require_reason: Option<String>,
    #[serde(default)]
    pub link_only_roles: Vec<String>,
}

impl std::fmt::Debug for RawReview {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawReview")
            .field("enabled", &self.enabled)
            .field("user_id_trait", &self.user_id_trait)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct RawBridge {
    pub concurrency: Option<i64>,
    pub resync_interval: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawAccessLists {
    pub enabled: Option<bool>,
    pub interval: Option<Value>,
    #[serde(default)]
    pub recipients: Vec<String>,
}

/// `[reminders]`, and each `[reminders.roles.<role>]` (the same keys but `roles`).
#[derive(Debug, Default, Deserialize)]
pub struct RawReminders {
    pub remind_after: Option<Value>,
    pub escalate_after: Option<Value>,
    pub escalate_to: Option<Value>,
    pub mention_channel: Option<Value>,
    pub expiry_notice: Option<Value>,
    #[serde(default)]
    pub roles: BTreeMap<String, Value>,
}

/// The keys of one reminder schedule (`[reminders]` and `[reminders.roles.<role>]`).
pub const SCHEDULE_KEYS: &[&str] = &[
    "remind_after",
    "escalate_after",
    "escalate_to",
    "mention_channel",
    "expiry_notice",
];

/// Every key the service understands, by section; anything else is refused by name.
/// `role_to_recipients` is a free-form table (role name → recipients).
pub const SECTIONS: &[(&str, &[&str])] = &[
    (
        "teleport",
        &[
            "addr",
            "auth_server",
            "identity",
            "client_key",
            "client_crt",
            "root_cas",
            "refresh_identity",
            "refresh_identity_interval",
            "proxy_ca",
        ],
    ),
    (
        "mattermost",
        &["url", "token", "recipients", "timeout", "notify_requester"],
    ),
    ("log", &["output", "severity", "format"]),
    (
        "http",
        &["listen_addr", "public_addr", "callback_allowed_sources"],
    ),
    (
        "review",
        &[
            "enabled",
            "user_id_trait",
            "allow_email_username_match",
            "signing_secret",
            "command_token",
            "require_reason",
            "link_only_roles",
        ],
    ),
    ("bridge", &["concurrency", "resync_interval"]),
    ("access_lists", &["enabled", "interval", "recipients"]),
    (
        "reminders",
        &[
            "remind_after",
            "escalate_after",
            "escalate_to",
            "mention_channel",
            "expiry_notice",
            "roles",
        ],
    ),
];

pub const FREE_TABLES: &[&str] = &["role_to_recipients"];
