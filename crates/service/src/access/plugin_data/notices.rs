//! The `notices` key: which reminders, escalation and requester notices were sent for a
//! request (this service only; upstream has no reminders). Written with the other keys by
//! the processor's compare-and-swap, so each notice is sent once across replicas.

use super::{DecodeError, bad};

pub const KEY: &str = "notices";

/// What was sent. Encoded as comma-separated tokens: `reminded:<seconds>` (the delay after
/// creation of the last reminder sent), `escalated`, `expiring` (the requester was told the
/// pending request is about to expire), `ending` (told their access is about to end).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Notices {
    pub reminded: Option<u64>,
    pub escalated: bool,
    pub expiring: bool,
    pub ending: bool,
}

impl Notices {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    pub fn encode(&self) -> String {
        let mut out: Vec<String> = Vec::new();
        if let Some(s) = self.reminded {
            out.push(format!("reminded:{s}"));
        }
        for (on, token) in [
            (self.escalated, "escalated"),
            (self.expiring, "expiring"),
            (self.ending, "ending"),
        ] {
            if on {
                out.push(token.into());
            }
        }
        out.join(",")
    }

    pub fn decode(v: &str) -> Result<Self, DecodeError> {
        let mut n = Self::default();
        if v.is_empty() {
            return Ok(n);
        }
        let expected = "comma-separated reminded:<seconds>, escalated, expiring, ending";
        for token in v.split(',') {
            match token {
                "escalated" => n.escalated = true,
                "expiring" => n.expiring = true,
                "ending" => n.ending = true,
                t => match t.strip_prefix("reminded:").map(str::parse) {
                    Some(Ok(s)) => n.reminded = Some(s),
                    _ => return Err(bad(KEY, v, expected)),
                },
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_what_it_cannot_read() {
        let all = Notices {
            reminded: Some(7200),
            escalated: true,
            expiring: true,
            ending: true,
        };
        assert_eq!(all.encode(), "reminded:7200,escalated,expiring,ending");
        assert_eq!(Notices::decode(&all.encode()).unwrap(), all);
        assert_eq!(Notices::default().encode(), "");
        assert!(Notices::decode("").unwrap().is_empty());
        for bad in ["reminded:", "reminded:x", "sent", "escalated,"] {
            let e = Notices::decode(bad).unwrap_err();
            assert_eq!(e.key, KEY, "{bad}");
        }
    }
}
