//! A recipient as written in the config or an access monitoring rule: `team/channel`,
//! an e-mail address (DM) or `@username` (DM). Parsed once: a malformed entry is skipped with
//! a warning at start-up (as upstream skips it at lookup) and `check` fails naming it.

use std::fmt;

/// Where a post goes, before it is resolved to a Mattermost channel id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Recipient {
    /// A channel, by team name and channel name (the URL slugs, not display names).
    Channel { team: String, channel: String },
    /// A direct message to the user with this e-mail (stored lower-case, as Mattermost does).
    Email(String),
    /// A direct message to the user with this username (without the `@`).
    Username(String),
}

/// Why a recipient string was refused; the text says what form is expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "recipient {raw:?} is not valid: {why}; use \"team/channel\", an e-mail address, or \"@username\""
)]
pub struct RecipientError {
    pub raw: String,
    pub why: &'static str,
}

impl Recipient {
    pub fn parse(raw: &str) -> Result<Self, RecipientError> {
        let err = |why| RecipientError {
            raw: raw.to_string(),
            why,
        };
        let s = raw.trim();
        if s.is_empty() {
            return Err(err("it is empty"));
        }
        if s.chars().any(char::is_whitespace) {
            return Err(err("it contains white space"));
        }
        if let Some(name) = s.strip_prefix('@') {
            if name.is_empty() || name.contains(['@', '/']) {
                return Err(err(
                    "a username after '@' must not be empty or contain '@' or '/'",
                ));
            }
            return Ok(Recipient::Username(name.to_lowercase()));
        }
        if s.contains('@') {
            return if is_email(s) {
                Ok(Recipient::Email(s.to_lowercase()))
            } else {
                Err(err("it looks like an e-mail address but is not one"))
            };
        }
        let mut parts = s.split('/');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(team), Some(channel), None) if !team.is_empty() && !channel.is_empty() => {
                Ok(Recipient::Channel {
                    team: team.to_string(),
                    channel: channel.to_string(),
                })
            }
            _ => Err(err("it is neither team/channel, an e-mail, nor @username")),
        }
    }
}

/// A plain `local@domain` address, the same test upstream applies (`net/mail` with the
/// parsed address equal to the input): no display names, no angle brackets.
pub fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.contains(['<', '>', ' ', ',', ';', '"', '(', ')', '[', ']', '\\'])
        && !local.contains('@')
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Recipient::Channel { team, channel } => write!(f, "{team}/{channel}"),
            Recipient::Email(e) => f.write_str(e),
            Recipient::Username(u) => write!(f, "@{u}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_forms() {
        assert_eq!(
            Recipient::parse("team-llama/channel-llama").unwrap(),
            Recipient::Channel {
                team: "team-llama".into(),
                channel: "channel-llama".into()
            }
        );
        assert_eq!(
            Recipient::parse("First.Last@Example.com").unwrap(),
            Recipient::Email("first.last@example.com".into())
        );
        assert_eq!(
            Recipient::parse("@Alice").unwrap(),
            Recipient::Username("alice".into())
        );
    }

    #[test]
    fn refuses_malformed_recipients_with_the_expected_forms() {
        for bad in [
            "",
            "fallback",
            "a/b/c",
            "/chan",
            "team/",
            "Name <a@b.c>",
            "@",
            "a@",
            "x y",
        ] {
            let e = Recipient::parse(bad).unwrap_err().to_string();
            assert!(e.contains("team/channel"), "{bad}: {e}");
        }
    }
}
