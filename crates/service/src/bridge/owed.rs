//! The `owed_recipients` plugin-data key: the recipients of a request still lacking their
//! root post after an attempt (refused, unauthorized, or temporarily failing), as a JSON
//! array of recipients as configured (`team/channel`, an e-mail, `@name`). While it is
//! non-empty, every event, resync and start-up catch-up of the request goes through the post
//! phase again, which posts to every routed recipient without a `messages` entry.
//! It is this service's key, like `claim`: the Go plugin neither reads nor writes it, and it
//! is dropped once the resolution is recorded (a resolved request is final).

pub const KEY: &str = "owed_recipients";

/// `""` (deletes the key) when nothing is owed.
pub fn encode(owed: &[String]) -> String {
    if owed.is_empty() {
        return String::new();
    }
    serde_json::to_string(owed).expect("strings serialize")
}

/// A value that cannot be read still means "something is owed": the post phase recomputes
/// what from the routing, so the text only informs.
pub fn decode(raw: Option<&String>) -> Vec<String> {
    match raw.map(String::as_str) {
        None | Some("") => Vec::new(),
        Some(v) => serde_json::from_str(v).unwrap_or_else(|_| vec![v.to_string()]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_reads_anything_as_owed() {
        let owed = vec!["team/channel".to_string(), "@bob".into(), "a@b.c".into()];
        assert_eq!(decode(Some(&encode(&owed))), owed);
        assert_eq!(encode(&[]), "");
        assert!(decode(None).is_empty());
        assert!(decode(Some(&String::new())).is_empty());
        assert_eq!(
            decode(Some(&"garbage".to_string())),
            vec!["garbage".to_string()]
        );
    }
}
