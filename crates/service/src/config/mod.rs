//! Typed configuration: the upstream plugin's TOML keys plus our own sections, loaded with
//! figment (file, then `TELEPORT_MATTERMOST_*` overrides) and validated with every problem
//! reported at once, each naming its key and the fix.

mod env;
mod raw;
pub mod secret;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Format, Toml};
use secrecy::SecretString;
use url::Url;

pub use env::PREFIX as ENV_PREFIX;

use crate::route::Recipient;

/// The default config path, the same as upstream's.
pub const DEFAULT_PATH: &str = "/etc/teleport-mattermost.toml";

/// The commented example printed by `configure`.
pub const EXAMPLE: &str = include_str!("example.toml");

#[derive(Debug, Clone)]
pub struct Config {
    pub teleport: TeleportConfig,
    pub mattermost: MattermostConfig,
    /// Effective routing table: role (or `*`) → recipients.
    pub role_to_recipients: BTreeMap<String, Vec<Recipient>>,
    pub log: LogConfig,
    pub http: HttpConfig,
    /// In-chat review: present only when `review.enabled = true` and valid.
    pub review: Option<EnabledReview>,
    pub bridge: BridgeConfig,
    pub access_lists: AccessListsConfig,
    /// `[reminders]`: `None` when the section is absent (nothing is scheduled).
    pub reminders: Option<RemindersConfig>,
    /// Things that work but deserve attention (deprecated keys, overridden tables).
    pub warnings: Vec<String>,
    /// Recipient entries that are neither a channel, an e-mail nor a @username: skipped (as
    /// upstream skips them at lookup) so the service starts; `check` fails on each.
    pub skipped_recipients: Vec<String>,
    /// The key `teleport.addr` was read from: `teleport.auth_server` when the config uses
    /// that deprecated name, so messages name what the operator wrote.
    pub teleport_addr_key: &'static str,
}

#[derive(Debug, Clone)]
pub struct TeleportConfig {
    /// Auth (`host:3025`) or Proxy (`host:443`, `host:3080`) address.
    pub addr: String,
    pub credentials: Credentials,
    /// Re-read the identity file every `refresh_identity_interval` for the process lifetime.
    pub refresh_identity: bool,
    pub refresh_identity_interval: Duration,
    /// Extra roots for the Proxy's web certificate (`proxy_ca`, PEM): for self-hosted proxies
    /// with a private CA. The Auth Service's certificate is always checked against the
    /// identity's Host CA, never these.
    pub proxy_ca: Vec<rustls_pki_types::CertificateDer<'static>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// `tctl auth sign --format=file` or tbot output.
    IdentityFile(PathBuf),
    /// `tctl auth sign --format=tls` output.
    KeyPair {
        key: PathBuf,
        cert: PathBuf,
        cas: PathBuf,
    },
}

#[derive(Debug, Clone)]
pub struct MattermostConfig {
    pub url: Url,
    pub token: SecretString,
    /// Timeout of one Mattermost API call.
    pub timeout: Duration,
    /// Whether the requester gets a direct message with the outcome.
    pub notify_requester: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    pub output: LogOutput,
    pub severity: tracing::Level,
    pub format: LogFormat,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogOutput {
    Stdout,
    Stderr,
    File(PathBuf),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub listen_addr: SocketAddr,
    /// When non-empty, the Mattermost callback routes answer 403 to any other peer.
    pub callback_allowed_sources: Vec<IpNet>,
}

/// The default `review.user_id_trait`: the Teleport user trait holding a Mattermost user id.
pub const DEFAULT_USER_ID_TRAIT: &str = "mattermost_user_id";

/// In-chat review as validated: everything it needs is here, so start-up checks nothing again.
#[derive(Debug, Clone)]
pub struct EnabledReview {
    /// `http.public_addr`: the base URL Mattermost uses to reach this service.
    pub public_addr: Url,
    /// `<public_addr>/mattermost/action`, called by the buttons.
    pub action_url: Url,
    /// `<public_addr>/mattermost/dialog`, called by the reason dialogs.
    pub dialog_url: Url,
    /// Signs button contexts and dialog states (`review.signing_secret`).
    pub signing_secret: SecretString,
    /// `review.command_token`: none means the slash command is refused.
    pub command_tokens: Vec<SecretString>,
    pub user_id_trait: String,
    pub allow_email_username_match: bool,
    pub require_reason: RequireReason,
    pub link_only_roles: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequireReason {
    Never,
    Deny,
    Always,
}

#[derive(Debug, Clone)]
pub struct BridgeConfig {
    /// Events of different access requests processed at once.
    pub concurrency: usize,
    /// How often, while connected, every request is reconciled again: heals what bounded
    /// retries gave up on (Teleport replays nothing).
    pub resync_interval: Duration,
}

/// `[access_lists]`: review reminders to access list owners.
#[derive(Debug, Clone)]
pub struct AccessListsConfig {
    /// `None`: on when the cluster serves access lists and the plugin's role may list them.
    pub enabled: Option<bool>,
    /// How often the lists are looked at (default 3 h, as upstream).
    pub interval: Duration,
    /// Also sent every reminder, once per weekly window (channels, e-mails, `@usernames`).
    pub recipients: Vec<Recipient>,
}

/// `[reminders]`: reminders, escalation and requester notices for pending requests.
#[derive(Debug, Clone, PartialEq)]
pub struct RemindersConfig {
    /// The schedule of requests whose roles have no override.
    pub default: ReminderSchedule,
    /// `[reminders.roles.<role>]`: a role's own schedule (keys it leaves out are the
    /// default's); among a request's roles the most urgent value of each key wins.
    pub roles: BTreeMap<String, ReminderSchedule>,
}

/// One schedule: delays count from the request's creation.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReminderSchedule {
    /// Thread replies at each of these delays, ascending.
    pub remind_after: Vec<Duration>,
    /// When the request is also posted to `escalate_to`; `None`: never.
    pub escalate_after: Option<Duration>,
    /// Channels, e-mails, `@usernames`.
    pub escalate_to: Vec<Recipient>,
    /// Reminders in channels also mention `@here`.
    pub mention_channel: bool,
    /// How long before a pending request expires, and before granted access ends, the
    /// requester is told.
    pub expiry_notice: Duration,
}

/// An IPv4 or IPv6 network in CIDR form, for the callback allow-list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    pub addr: std::net::IpAddr,
    pub prefix: u8,
}

impl IpNet {
    pub fn parse(s: &str) -> Option<Self> {
        let (a, p) = s.split_once('/').unwrap_or((s, ""));
        let addr: std::net::IpAddr = a.trim().parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = if p.is_empty() {
            max
        } else {
            p.trim().parse().ok()?
        };
        (prefix <= max).then_some(Self { addr, prefix })
    }

    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        let ip = canonical(ip);
        match (canonical(self.addr), ip) {
            (std::net::IpAddr::V4(n), std::net::IpAddr::V4(i)) => {
                mask_eq(&n.octets(), &i.octets(), self.prefix)
            }
            (std::net::IpAddr::V6(n), std::net::IpAddr::V6(i)) => {
                mask_eq(&n.octets(), &i.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

/// IPv4-mapped IPv6 peers (dual-stack listeners) compare as IPv4.
fn canonical(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
        v4 => v4,
    }
}

fn mask_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let full = usize::from(prefix / 8);
    let rest = prefix % 8;
    if a[..full] != b[..full] {
        return false;
    }
    rest == 0 || (a[full] ^ b[full]) >> (8 - rest) == 0
}

/// Every problem found in a config, each naming its key and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub source: String,
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration in {}:", self.source)?;
        for p in &self.problems {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Loads `path`, applies `env` overrides and validates. Pass `std::env::vars()` in
    /// production and an explicit list in tests.
    pub fn load(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let source = path.display().to_string();
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                return Err(ConfigError {
                    source,
                    problems: vec![format!(
                        "cannot read the config file: {e}; write one with `teleport-mattermost configure > {}` and edit it",
                        path.display()
                    )],
                });
            }
        };
        if let Err(problem) = validate::syntax(&text) {
            return Err(ConfigError {
                source,
                problems: vec![problem],
            });
        }
        let figment = Figment::new()
            .merge(Toml::file_exact(path))
            .merge(env::EnvOverrides::new(env));
        validate::from_figment(&figment).map_err(|problems| ConfigError { source, problems })
    }

    /// Loads a config from TOML text (tests, `demo`), with no environment overrides.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        if let Err(problem) = validate::syntax(text) {
            return Err(ConfigError {
                source: "TOML text".into(),
                problems: vec![problem],
            });
        }
        let figment = Figment::new().merge(Toml::string(text));
        validate::from_figment(&figment).map_err(|problems| ConfigError {
            source: "TOML text".into(),
            problems,
        })
    }
}

#[cfg(test)]
mod tests;
