//! Reaching the Auth Service through a Teleport Proxy (Teleport Cloud, self-hosted proxies):
//! discovery ([`web`]), TLS routing with the `teleport-auth@` ALPN ([`cluster`]), the ALPN
//! connection upgrade over WebSocket for fronts that strip ALPN ([`upgrade`], [`ws`], forced by
//! [`env`]), and the dialer that picks a path ([`dialer`]). The Proxy's SSH reverse tunnel is
//! not used: the web listener routes `teleport-auth@` in every listener mode, separate
//! included (docs/teleport-proxy.md).

pub mod cluster;
pub mod dialer;
pub mod env;
pub mod error;
mod metrics;
pub mod upgrade;
pub mod web;
pub mod ws;

use std::fmt;
use std::time::Duration;

use rustls_pki_types::CertificateDer;

pub use dialer::AutoDialer;
pub use env::{CONN_UPGRADE_ENV, ConnUpgradeRules};
pub use error::DialError;
pub use metrics::ConnectionInfo;
pub use web::ProxyInfo;

/// How the connection to the Auth Service is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectPath {
    /// mTLS to the Auth Service's own port (self-hosted, `host:3025`).
    DirectAuth,
    /// One TLS handshake to the Proxy's web port that it forwards, undecrypted, to Auth.
    ProxyTlsRouting,
    /// The same, inside a WebSocket connection upgrade (a front strips ALPN).
    ProxyTlsRoutingUpgrade,
}

impl ConnectPath {
    /// The metric label value.
    pub fn label(self) -> &'static str {
        match self {
            Self::DirectAuth => "direct_auth",
            Self::ProxyTlsRouting => "proxy_tls_routing",
            Self::ProxyTlsRoutingUpgrade => "proxy_tls_routing_upgrade",
        }
    }
}

impl fmt::Display for ConnectPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::DirectAuth => "direct Auth",
            Self::ProxyTlsRouting => "proxy TLS routing",
            Self::ProxyTlsRoutingUpgrade => "proxy TLS routing with ALPN connection upgrade",
        })
    }
}

/// Settings of the Proxy paths.
#[derive(Clone)]
pub struct ProxyOptions {
    /// CAs trusted for the Proxy's web certificate (discovery, the upgrade's outer TLS) on
    /// top of the system roots: a private CA, or a test CA.
    pub web_roots: Vec<CertificateDer<'static>>,
    /// `TELEPORT_TLS_ROUTING_CONN_UPGRADE`, parsed; `Unset` tests the network.
    pub conn_upgrade: ConnUpgradeRules,
    /// Bound of the whole first choice (every method tried in turn).
    pub choose_timeout: Duration,
    /// Bound of the test handshake for an ALPN-stripping front.
    pub probe_timeout: Duration,
    /// Choose again after this many failed dials in a row on the chosen path.
    pub rechoose_after: u32,
}

impl Default for ProxyOptions {
    /// No extra CAs and no forced upgrade; does not read the environment.
    fn default() -> Self {
        Self {
            web_roots: Vec::new(),
            conn_upgrade: ConnUpgradeRules::Unset,
            choose_timeout: Duration::from_secs(30),
            probe_timeout: Duration::from_secs(5),
            rechoose_after: 3,
        }
    }
}

impl fmt::Debug for ProxyOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyOptions")
            .field("web_roots", &self.web_roots.len())
            .field("conn_upgrade", &self.conn_upgrade)
            .field("choose_timeout", &self.choose_timeout)
            .field("probe_timeout", &self.probe_timeout)
            .field("rechoose_after", &self.rechoose_after)
            .finish()
    }
}

impl ProxyOptions {
    /// The process's settings: `TELEPORT_TLS_ROUTING_CONN_UPGRADE` from the environment.
    /// Called once, when the client is built; extra web roots come from the config.
    pub fn from_env() -> Self {
        Self {
            conn_upgrade: ConnUpgradeRules::from_env(),
            ..Self::default()
        }
    }
}

/// What `check` prints: "Teleport reachable via proxy TLS routing (tenant.teleport.sh:443),
/// cluster tenant.teleport.sh, v18.1.4".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reachability {
    /// `None` for a dialer that does not report its path.
    pub path: Option<ConnectPath>,
    pub addr: String,
    pub cluster_name: String,
    pub server_version: String,
}

impl fmt::Display for Reachability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.path {
            Some(p) => write!(f, "Teleport reachable via {p} ({})", self.addr)?,
            None => write!(f, "Teleport reachable at {}", self.addr)?,
        }
        write!(
            f,
            ", cluster {}, v{}",
            self.cluster_name,
            self.server_version.trim_start_matches('v')
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_display_as_the_check_command_prints_them() {
        let r = Reachability {
            path: Some(ConnectPath::ProxyTlsRouting),
            addr: "tenant.teleport.sh:443".into(),
            cluster_name: "tenant.teleport.sh".into(),
            server_version: "18.1.4".into(),
        };
        assert_eq!(
            r.to_string(),
            "Teleport reachable via proxy TLS routing (tenant.teleport.sh:443), cluster tenant.teleport.sh, v18.1.4"
        );
        assert_eq!(ConnectPath::DirectAuth.to_string(), "direct Auth");
        assert_eq!(
            ConnectPath::ProxyTlsRoutingUpgrade.to_string(),
            "proxy TLS routing with ALPN connection upgrade"
        );
    }

    #[test]
    fn default_options_do_not_force_the_upgrade() {
        let o = ProxyOptions::default();
        assert_eq!(o.conn_upgrade.decide("a:443"), None);
        assert_eq!(o.choose_timeout, Duration::from_secs(30));
    }
}
