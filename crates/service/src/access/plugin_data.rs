//! The plugin data the Mattermost plugin keeps in Teleport per access request, in the
//! upstream plugin's exact key/value encoding, so a deployment
//! can switch between the Go plugin and this service without losing track of its posts.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub mod notices;
pub use notices::Notices;

/// Every key this encoding owns, in the order upstream writes them.
pub const KEYS: [&str; 12] = [
    "user",
    "roles",
    "resources",
    "request_reason",
    "reviews_count",
    "resolution",
    "resolve_reason",
    "system_annotations",
    "suggested_reviewers",
    "logins_by_role",
    "max_duration",
    "messages",
];

/// Keys only this service writes beside upstream's (the Go plugin neither reads them nor
/// names them in `Expect`, so they do not disturb its writes). The `claim` key is the
/// processor's, written with these.
pub const OWN_KEYS: [&str; 1] = [notices::KEY];

/// Plugin data as Teleport stores it: a flat map of one plugin's keys for one request.
/// `""` in an update's `Set` deletes a key; `""` in its `Expect` means "absent".
pub type RawData = BTreeMap<String, String>;

/// Keys of the single-message legacy encoding (Slack heritage): read, as upstream's shared
/// decoder reads them, but never written and never migrated. No Mattermost plugin version
/// wrote them (they were the Slack plugin's, stored under the plugin name `slack`), so a
/// deployment switching from the Go plugin has none to clean up.
pub const LEGACY_KEYS: [&str; 2] = ["channel_id", "timestamp"];

/// How a request ended, as recorded by the plugin (`resolution` key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Resolution {
    #[default]
    Unresolved,
    Approved,
    Denied,
    /// The request was deleted (Teleport deletes requests when they expire).
    Expired,
    Promoted,
}

impl Resolution {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unresolved => "",
            Self::Approved => "APPROVED",
            Self::Denied => "DENIED",
            Self::Expired => "EXPIRED",
            Self::Promoted => "PROMOTED",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "" => Self::Unresolved,
            "APPROVED" => Self::Approved,
            "DENIED" => Self::Denied,
            "EXPIRED" => Self::Expired,
            "PROMOTED" => Self::Promoted,
            _ => return None,
        })
    }
}

/// One Mattermost post made for the request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SentMessage {
    pub channel_id: String,
    pub post_id: String,
}

/// Everything the plugin remembers about one access request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PluginData {
    pub user: String,
    pub roles: Vec<String>,
    /// Requested resources as `cluster/kind/name` strings.
    pub resources: Vec<String>,
    pub request_reason: String,
    pub reviews_count: u32,
    pub resolution: Resolution,
    pub resolve_reason: String,
    pub system_annotations: BTreeMap<String, Vec<String>>,
    pub suggested_reviewers: Vec<String>,
    pub logins_by_role: BTreeMap<String, Vec<String>>,
    pub max_duration: Option<OffsetDateTime>,
    pub messages: Vec<SentMessage>,
    /// Reminders, escalation and requester notices sent (`notices`, this service only).
    pub notices: Notices,
}

/// A stored value this encoding cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct DecodeError {
    pub key: &'static str,
    /// The offending value, shortened for logs.
    pub value: String,
    pub expected: &'static str,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "plugin data key {:?} holds {:?}, expected {}; the data was written by another program \
             or corrupted: delete the key with tctl or let the request expire",
            self.key, self.value, self.expected
        )
    }
}

fn bad(key: &'static str, value: &str, expected: &'static str) -> DecodeError {
    let mut short: String = value.chars().take(80).collect();
    if value.chars().nth(80).is_some() {
        short.push('…');
    }
    DecodeError {
        key,
        value: short,
        expected,
    }
}

impl PluginData {
    /// Encodes every key of [`KEYS`] and [`OWN_KEYS`]; an absent value is `""`. Sent as `Set`, the empty values
    /// delete stale keys; sent as `Expect`, they mean "must not be there". Teleport stores no
    /// empty values, so the stored result is the same as upstream's (which omits the four
    /// optional keys instead of sending them empty).
    pub fn encode(&self) -> RawData {
        let mut m = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            m.insert(k.to_string(), v);
        };
        put("user", self.user.clone());
        put("roles", self.roles.join(","));
        put(
            "resources",
            if self.resources.is_empty() {
                String::new()
            } else {
                go_json(&self.resources)
            },
        );
        put("request_reason", self.request_reason.clone());
        put(
            "reviews_count",
            if self.reviews_count == 0 {
                String::new()
            } else {
                self.reviews_count.to_string()
            },
        );
        put("resolution", self.resolution.as_str().to_string());
        put("resolve_reason", self.resolve_reason.clone());
        put("system_annotations", json_if_any(&self.system_annotations));
        put(
            "suggested_reviewers",
            if self.suggested_reviewers.is_empty() {
                String::new()
            } else {
                go_json(&self.suggested_reviewers)
            },
        );
        put("logins_by_role", json_if_any(&self.logins_by_role));
        put(
            "max_duration",
            self.max_duration.map(rfc3339_seconds).unwrap_or_default(),
        );
        put(
            "messages",
            self.messages
                .iter()
                .map(|m| format!("{}/{}", m.channel_id, m.post_id))
                .collect::<Vec<_>>()
                .join(","),
        );
        put(notices::KEY, self.notices.encode());
        m
    }

    /// Decodes a stored map. Missing keys read as empty; a value that cannot be read is an
    /// error naming the key (never a panic).
    pub fn decode(map: &RawData) -> Result<Self, DecodeError> {
        let get = |k: &str| map.get(k).map(String::as_str).unwrap_or("");
        let mut d = PluginData {
            user: get("user").to_string(),
            request_reason: get("request_reason").to_string(),
            resolve_reason: get("resolve_reason").to_string(),
            ..Default::default()
        };
        if let Some(roles) = non_empty(get("roles")) {
            d.roles = roles.split(',').map(str::to_string).collect();
        }
        if let Some(v) = non_empty(get("resources")) {
            d.resources = serde_json::from_str(v)
                .map_err(|_| bad("resources", v, "a JSON array of strings"))?;
        }
        if let Some(v) = non_empty(get("reviews_count")) {
            d.reviews_count = v
                .trim()
                .parse()
                .map_err(|_| bad("reviews_count", v, "a decimal number"))?;
        }
        let res = get("resolution");
        d.resolution = Resolution::parse(res).ok_or_else(|| {
            bad(
                "resolution",
                res,
                "one of \"\", APPROVED, DENIED, EXPIRED, PROMOTED",
            )
        })?;
        if let Some(v) = non_empty(get("system_annotations")) {
            d.system_annotations = serde_json::from_str(v).map_err(|_| {
                bad(
                    "system_annotations",
                    v,
                    "a JSON object of string to string array",
                )
            })?;
        }
        if let Some(v) = non_empty(get("suggested_reviewers")) {
            d.suggested_reviewers = serde_json::from_str(v)
                .map_err(|_| bad("suggested_reviewers", v, "a JSON array of strings"))?;
        }
        if let Some(v) = non_empty(get("logins_by_role")) {
            d.logins_by_role = serde_json::from_str(v)
                .map_err(|_| bad("logins_by_role", v, "a JSON object of role to login array"))?;
        }
        if let Some(v) = non_empty(get("max_duration")) {
            d.max_duration = Some(
                OffsetDateTime::parse(v, &Rfc3339)
                    .map_err(|_| bad("max_duration", v, "an RFC 3339 time"))?,
            );
        }
        if let Some(v) = non_empty(get("messages")) {
            for pair in v.split(',') {
                match pair.split_once('/') {
                    Some((ch, post))
                        if !ch.is_empty() && !post.is_empty() && !post.contains('/') =>
                    {
                        d.messages.push(SentMessage {
                            channel_id: ch.to_string(),
                            post_id: post.to_string(),
                        })
                    }
                    _ => {
                        return Err(bad(
                            "messages",
                            v,
                            "comma-separated <channel_id>/<post_id> pairs",
                        ));
                    }
                }
            }
        }
        d.notices = Notices::decode(get(notices::KEY))?;
        // The legacy pair is never written back, so once `messages` exists it stays beside it:
        // count it once, or every read-modify-write would list it again.
        let [legacy_channel, legacy_post] = LEGACY_KEYS;
        if let (Some(ch), Some(ts)) = (non_empty(get(legacy_channel)), non_empty(get(legacy_post)))
            && !d
                .messages
                .iter()
                .any(|m| m.channel_id == ch && m.post_id == ts)
        {
            d.messages.insert(
                0,
                SentMessage {
                    channel_id: ch.to_string(),
                    post_id: ts.to_string(),
                },
            );
        }
        Ok(d)
    }
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

fn json_if_any(m: &BTreeMap<String, Vec<String>>) -> String {
    if m.is_empty() {
        String::new()
    } else {
        go_json(m)
    }
}

/// JSON exactly as Go's `json.Marshal` writes it: compact, map keys sorted (a BTreeMap is),
/// and `<`, `>`, `&`, U+2028, U+2029 escaped. These characters can only occur inside
/// strings, so replacing them in the output is safe.
pub(crate) fn go_json<T: Serialize + ?Sized>(v: &T) -> String {
    let s = serde_json::to_string(v).unwrap_or_default();
    if !s.contains(['<', '>', '&', '\u{2028}', '\u{2029}']) {
        return s;
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// Go's `time.RFC3339` layout: whole seconds, `Z` for UTC.
fn rfc3339_seconds(t: OffsetDateTime) -> String {
    let t = t
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(t);
    t.format(&Rfc3339).unwrap_or_default()
}

#[cfg(test)]
mod tests;
