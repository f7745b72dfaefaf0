//! The `/teleport` slash command's text: `help`, `pending`, `show <id>`, `approve <id> [reason]`,
//! `deny <id> [reason]`, `explain <id>`. Usage errors say the correct syntax.

use std::fmt;

use super::pipeline::MAX_REASON_CHARS;

/// Shortest request id prefix accepted, so a typo does not match some random request.
pub const MIN_PREFIX: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help,
    Pending,
    Show(String),
    Approve { id: String, reason: String },
    Deny { id: String, reason: String },
    Explain(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError {
    pub message: String,
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\n\n{}", self.message, USAGE)
    }
}

pub const USAGE: &str = "\
Usage: `/teleport <command>`
- `/teleport pending`: requests you can review
- `/teleport show <request-id>`: one request
- `/teleport approve <request-id> [reason]`: approve (as your Teleport user)
- `/teleport deny <request-id> [reason]`: deny (as your Teleport user)
- `/teleport explain <request-id>`: who was notified and why
- `/teleport help`: this text
A request id may be shortened to a unique prefix of at least 4 characters.";

fn usage(message: impl Into<String>) -> UsageError {
    UsageError {
        message: message.into(),
    }
}

impl Command {
    pub fn parse(text: &str) -> Result<Self, UsageError> {
        let text = text.trim();
        let (verb, rest) = match text.split_once(char::is_whitespace) {
            Some((v, r)) => (v, r.trim()),
            None => (text, ""),
        };
        let verb = verb.to_lowercase();
        let id_and_reason = |rest: &str| -> Result<(String, String), UsageError> {
            let (id, reason) = match rest.split_once(char::is_whitespace) {
                Some((i, r)) => (i, r.trim()),
                None => (rest, ""),
            };
            let id = request_id(&verb, id)?;
            if reason.chars().count() > MAX_REASON_CHARS {
                return Err(usage(format!(
                    "The reason is longer than {MAX_REASON_CHARS} characters; shorten it."
                )));
            }
            Ok((id, reason.to_string()))
        };
        let only_id = |rest: &str| -> Result<String, UsageError> {
            if rest.split_whitespace().count() > 1 {
                return Err(usage(format!(
                    "`/teleport {verb}` takes only a request id."
                )));
            }
            request_id(&verb, rest)
        };
        match verb.as_str() {
            "" | "help" => Ok(Command::Help),
            "pending" | "list" if rest.is_empty() => Ok(Command::Pending),
            "pending" | "list" => Err(usage("`/teleport pending` takes no arguments.")),
            "show" => only_id(rest).map(Command::Show),
            "explain" => only_id(rest).map(Command::Explain),
            "approve" => id_and_reason(rest).map(|(id, reason)| Command::Approve { id, reason }),
            "deny" => id_and_reason(rest).map(|(id, reason)| Command::Deny { id, reason }),
            other => Err(usage(format!("Unknown command `{}`.", truncate(other, 40)))),
        }
    }
}

fn request_id(verb: &str, raw: &str) -> Result<String, UsageError> {
    if raw.is_empty() {
        return Err(usage(format!(
            "`/teleport {verb}` needs a request id: `/teleport {verb} <request-id>`."
        )));
    }
    let ok = raw.len() >= MIN_PREFIX
        && raw.len() <= 64
        && raw.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    if !ok {
        return Err(usage(format!(
            "`{}` is not a request id: use the id from the post (hex digits and dashes, at least {MIN_PREFIX} characters).",
            truncate(raw, 40)
        )));
    }
    Ok(raw.to_lowercase())
}

fn truncate(s: &str, n: usize) -> String {
    let mut out: String = s.chars().take(n).filter(|c| *c != '`').collect();
    if s.chars().count() > n {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const ID: &str = "0193a2b4-7c1d-7e2f-8a3b-4c5d6e7f8091";

    #[test]
    fn parses_every_command() {
        assert_eq!(Command::parse(""), Ok(Command::Help));
        assert_eq!(Command::parse("  HELP "), Ok(Command::Help));
        assert_eq!(Command::parse("pending"), Ok(Command::Pending));
        assert_eq!(
            Command::parse(&format!("show {ID}")),
            Ok(Command::Show(ID.into()))
        );
        assert_eq!(
            Command::parse("explain 0193A2B4"),
            Ok(Command::Explain("0193a2b4".into()))
        );
        assert_eq!(
            Command::parse(&format!("approve {ID}   on call, ticket #42 ")),
            Ok(Command::Approve {
                id: ID.into(),
                reason: "on call, ticket #42".into()
            })
        );
        assert_eq!(
            Command::parse("deny 0193a2b4"),
            Ok(Command::Deny {
                id: "0193a2b4".into(),
                reason: String::new()
            })
        );
    }

    #[test]
    fn usage_errors_give_the_correct_syntax() {
        for (text, needle) in [
            (
                "approve",
                "`/teleport approve` needs a request id: `/teleport approve <request-id>`",
            ),
            ("show a b", "`/teleport show` takes only a request id"),
            ("show xyz!", "is not a request id"),
            ("show 01", "at least 4 characters"),
            ("pending now", "takes no arguments"),
            ("frobnicate", "Unknown command `frobnicate`"),
        ] {
            let e = Command::parse(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{text}: {e}");
            assert!(e.contains("Usage: `/teleport <command>`"), "{text}: {e}");
        }
        let long = format!("deny {ID} {}", "x".repeat(1001));
        assert!(
            Command::parse(&long)
                .unwrap_err()
                .message
                .contains("longer than 1000")
        );
    }

    proptest! {
        #[test]
        fn any_text_parses_or_gives_usage(s in "\\PC{0,300}") {
            match Command::parse(&s) {
                Ok(_) => {}
                Err(e) => prop_assert!(e.to_string().contains("Usage:")),
            }
        }
    }
}
