//! `TELEPORT_TLS_ROUTING_CONN_UPGRADE`: forces the ALPN connection upgrade on or off, for all
//! addresses or per address. Parsed once at start-up; the dialer only consults the result.

/// The variable Teleport's clients read (RFD 0123 names it differently; the code uses this).
pub const CONN_UPGRADE_ENV: &str = "TELEPORT_TLS_ROUTING_CONN_UPGRADE";

/// The parsed variable. `Unset` lets the dialer test the network; otherwise the rules decide
/// and an address the value does not mention gets `false`, as in Teleport's client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ConnUpgradeRules {
    #[default]
    Unset,
    Set {
        /// `<addr>=<bool>` items in order; the first one naming the address wins.
        per_addr: Vec<(String, bool)>,
        /// The last bare `<bool>` item, for every other address.
        all: Option<bool>,
    },
}

impl ConnUpgradeRules {
    /// Parses a value: items separated by `;` or `,`, each `<addr>=<bool>` or `<bool>`.
    /// Items that do not parse are skipped and reported in the second value (for a warning).
    pub fn parse(value: &str) -> (Self, Vec<String>) {
        if value.trim().is_empty() {
            return (Self::Unset, Vec::new());
        }
        let mut per_addr = Vec::new();
        let mut all = None;
        let mut problems = Vec::new();
        for item in value
            .split([';', ','])
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            match item.split_once('=') {
                Some((addr, b)) => match parse_bool(b.trim()) {
                    Some(v) => per_addr.push((addr.trim().to_string(), v)),
                    // Teleport treats an unparsable value for a named address as `false`.
                    None => {
                        problems.push(format!("{item:?}: {:?} is not a boolean", b.trim()));
                        per_addr.push((addr.trim().to_string(), false));
                    }
                },
                None => match parse_bool(item) {
                    Some(v) => all = Some(v),
                    None => problems.push(format!("{item:?} is neither <addr>=<bool> nor <bool>")),
                },
            }
        }
        (Self::Set { per_addr, all }, problems)
    }

    /// Reads the variable from the process environment (start-up only), logging bad items.
    pub fn from_env() -> Self {
        let value = std::env::var(CONN_UPGRADE_ENV).unwrap_or_default();
        let (rules, problems) = Self::parse(&value);
        for p in problems {
            tracing::warn!(
                "{CONN_UPGRADE_ENV}: ignoring {p}; write items such as `true` or `tenant.teleport.sh:443=yes`, separated by `,` or `;`"
            );
        }
        rules
    }

    /// `None`: decide by testing the network; `Some(required)` otherwise.
    pub fn decide(&self, addr: &str) -> Option<bool> {
        match self {
            Self::Unset => None,
            Self::Set { per_addr, all } => Some(
                per_addr
                    .iter()
                    .find(|(a, _)| a == addr)
                    .map(|(_, v)| *v)
                    .or(*all)
                    .unwrap_or(false),
            ),
        }
    }
}

/// Teleport's boolean words (case-insensitive).
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "yes" | "yeah" | "y" | "true" | "1" | "on" => Some(true),
        "no" | "nope" | "n" | "false" | "0" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decide(value: &str, addr: &str) -> Option<bool> {
        ConnUpgradeRules::parse(value).0.decide(addr)
    }

    #[test]
    fn an_unset_or_blank_variable_leaves_the_decision_to_the_network_test() {
        assert_eq!(decide("", "a:443"), None);
        assert_eq!(decide("  ", "a:443"), None);
    }

    #[test]
    fn a_bare_boolean_applies_to_every_address() {
        for (v, want) in [("true", true), ("YES", true), ("1", true), ("on", true)] {
            assert_eq!(decide(v, "a:443"), Some(want), "{v}");
        }
        for v in ["false", "no", "0", "off", "Nope", "n"] {
            assert_eq!(decide(v, "a:443"), Some(false), "{v}");
        }
    }

    #[test]
    fn an_address_item_wins_over_the_bare_boolean_in_either_order() {
        assert_eq!(decide("0,a.example:443=1", "a.example:443"), Some(true));
        assert_eq!(decide("a.example:443=1;0", "a.example:443"), Some(true));
        assert_eq!(decide("0,a.example:443=1", "b.example:443"), Some(false));
        assert_eq!(
            decide("a.example:443=yes,b.example:443=no", "b.example:443"),
            Some(false)
        );
    }

    #[test]
    fn a_set_variable_that_names_neither_the_address_nor_all_means_no_upgrade() {
        assert_eq!(decide("other:443=true", "a:443"), Some(false));
    }

    #[test]
    fn the_address_must_match_exactly_not_as_a_substring() {
        assert_eq!(decide("xa.example:443=true", "a.example:443"), Some(false));
    }

    #[test]
    fn separators_may_be_mixed_and_whitespace_is_ignored() {
        assert_eq!(decide(" a:1 = yes ; b:2=no , false ", "a:1"), Some(true));
        assert_eq!(decide(" a:1 = yes ; b:2=no , true ", "c:3"), Some(true));
    }

    #[test]
    fn bad_items_are_reported_and_a_bad_value_for_an_address_means_false() {
        let (rules, problems) = ConnUpgradeRules::parse("maybe,a:1=perhaps,true");
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("maybe"));
        assert!(problems[1].contains("perhaps"));
        assert_eq!(rules.decide("a:1"), Some(false));
        assert_eq!(rules.decide("b:1"), Some(true));
    }
}
