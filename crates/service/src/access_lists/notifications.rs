//! What was sent for one access list, kept in its plugin data (kind `access_list`) with the
//! Go plugin's encoding (`integrations/lib/plugindata/access_list.go` upstream), so either
//! program honours the other's history: one key, `user_notifications`, a JSON object of
//! Teleport user → the time that user was last reminded (Go's `time.Time` JSON form,
//! RFC 3339 with up to nine fractional digits; the zero time means "never").

use std::collections::BTreeMap;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::access::RawData;
use crate::access::plugin_data::go_json;

/// The one key of an access list's plugin data.
pub const KEY: &str = "user_notifications";

/// Who was reminded when. Keys are owners' Teleport names, and this service's extra
/// recipients as written in the config (the Go plugin ignores keys it has no owner for).
pub type Notifications = BTreeMap<String, OffsetDateTime>;

/// A stored value that does not parse; the list is skipped rather than overwritten.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "plugin data key \"user_notifications\" does not hold a JSON object of RFC 3339 times: {0}"
)]
pub struct DecodeError(String);

/// Reads the stored map; an absent or empty key is "nobody reminded yet".
pub fn decode(data: &RawData) -> Result<Notifications, DecodeError> {
    let Some(raw) = data.get(KEY).filter(|v| !v.is_empty()) else {
        return Ok(Notifications::new());
    };
    let texts: BTreeMap<String, String> =
        serde_json::from_str(raw).map_err(|e| DecodeError(e.to_string()))?;
    texts
        .into_iter()
        .map(|(who, t)| {
            OffsetDateTime::parse(&t, &Rfc3339)
                .map(|t| (who, t))
                .map_err(|e| DecodeError(format!("{t:?}: {e}")))
        })
        .collect()
}

/// The value Go's `json.Marshal` writes for the same map; `""` (delete) when empty.
pub fn encode(n: &Notifications) -> String {
    if n.is_empty() {
        return String::new();
    }
    let texts: BTreeMap<&str, String> = n.iter().map(|(k, t)| (k.as_str(), go_time(*t))).collect();
    go_json(&texts)
}

/// Go's `time.RFC3339Nano` in UTC: fractional seconds only when non-zero, trailing zeros cut.
fn go_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let whole = t.replace_nanosecond(0).unwrap_or(t);
    let base = whole.format(&Rfc3339).unwrap_or_default();
    match t.nanosecond() {
        0 => base,
        n => {
            let frac = format!("{n:09}");
            let frac = frac.trim_end_matches('0');
            format!("{}.{frac}Z", base.trim_end_matches('Z'))
        }
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn encodes_like_go_and_reads_back() {
        let mut n = Notifications::new();
        n.insert(
            "bob@example.com".into(),
            datetime!(2026-12-02 06:51:34.1205 UTC),
        );
        n.insert("alice".into(), datetime!(0001-01-01 00:00:00 UTC));
        let text = encode(&n);
        assert_eq!(
            text,
            r#"{"alice":"0001-01-01T00:00:00Z","bob@example.com":"2026-12-02T06:51:34.1205Z"}"#
        );
        let raw = RawData::from([(KEY.to_string(), text)]);
        assert_eq!(decode(&raw).unwrap(), n);
    }

    #[test]
    fn reads_go_offsets_and_absence_and_refuses_garbage() {
        let raw = RawData::from([(
            KEY.to_string(),
            r#"{"a":"2026-12-02T08:00:00+02:00"}"#.to_string(),
        )]);
        assert_eq!(
            decode(&raw).unwrap()["a"],
            datetime!(2026-12-02 06:00:00 UTC)
        );
        assert!(decode(&RawData::new()).unwrap().is_empty());
        let bad = RawData::from([(KEY.to_string(), r#"{"a":"yesterday"}"#.to_string())]);
        assert!(decode(&bad).is_err());
        assert_eq!(encode(&Notifications::new()), "");
    }
}
