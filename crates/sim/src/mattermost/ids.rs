//! Ids shaped like Mattermost's: 26 lowercase base32 characters (`model.NewId`).

use rand::Rng;

const ALPHABET: &[u8] = b"ybndrfg8ejkmcpqxot1uwisza345h769";

pub fn new_id() -> String {
    let mut rng = rand::rng();
    (0..26)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Whether `s` has the shape of a Mattermost id.
pub fn is_valid_id(s: &str) -> bool {
    s.len() == 26
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Milliseconds since the Unix epoch, as Mattermost stores times.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_26_lowercase_alphanumerics() {
        for _ in 0..100 {
            let id = super::new_id();
            assert!(super::is_valid_id(&id), "{id}");
        }
    }
}
