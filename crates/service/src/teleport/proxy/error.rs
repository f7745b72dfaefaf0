//! Dial errors that say what went wrong and what to check: TLS failures are classified by the
//! peer we expected (an Auth Service, directly or behind the Proxy, or the Proxy's web side).

use std::io;
use std::time::Duration;

use rustls::{AlertDescription, CertificateError};

/// Why a dial failed. Converted to `std::io::Error` for tonic, whose error chain keeps the
/// text, so callers see it in [`crate::teleport::TeleportError::ConnectionProblem`].
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    /// TCP could not be opened (refused, no route, name not found, timed out); no method
    /// can work at this address.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: io::Error,
    },
    #[error("{what} at {addr} took longer than {}s", after.as_secs_f32())]
    Timeout {
        what: &'static str,
        addr: String,
        after: Duration,
    },
    /// The address answers with SSH: a Proxy's reverse-tunnel port, which the service does
    /// not use; the Proxy's web address reaches Auth in every listener mode.
    #[error(
        "{addr} answers with SSH (an `SSH-2.0-` banner): it is a Teleport Proxy's reverse-tunnel port (3024 by default), which this service does not use; set teleport.addr to the proxy's web address instead, {}, the one `tsh login --proxy` uses (its ALPN router reaches the Auth Service in separate listener mode too), or to the Auth Service, host:3025",
        web_addr(addr)
    )]
    SshPort { addr: String },
    #[error("{0}")]
    Failed(String),
}

impl DialError {
    /// Whether an error's text is [`DialError::SshPort`]'s: by the time a dial error reaches
    /// a caller it has crossed the gRPC transport as text. Retrying that address cannot help.
    pub fn is_ssh_port_text(text: &str) -> bool {
        text.contains("answers with SSH (an `SSH-2.0-` banner)")
    }
}

/// The usual web address of the proxy whose tunnel port is `addr`: same host, port 3080.
fn web_addr(addr: &str) -> String {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    format!("{host}:3080")
}

impl From<DialError> for io::Error {
    fn from(e: DialError) -> Self {
        let kind = match &e {
            DialError::Connect { source, .. } => source.kind(),
            DialError::Timeout { .. } => io::ErrorKind::TimedOut,
            DialError::SshPort { .. } | DialError::Failed(_) => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}

/// Who answered the TLS handshake, as far as we expected.
#[derive(Debug, Clone, Copy)]
pub enum Peer<'a> {
    /// `teleport.addr` dialed as an Auth Service.
    DirectAuth,
    /// The Auth Service reached through the Proxy's TLS routing for this cluster.
    RoutedAuth { cluster: &'a str },
    /// The Proxy's (or its load balancer's) public web certificate.
    ProxyWeb { host: &'a str },
    /// Mattermost's HTTPS certificate (`mattermost.url`).
    Mattermost { host: &'a str },
}

/// The rustls error inside an I/O error from tokio-rustls, if any.
pub fn rustls_error(e: &io::Error) -> Option<&rustls::Error> {
    find_rustls(e.get_ref()?)
}

/// A rustls error in `e` or what it wraps. I/O errors are looked into explicitly: their
/// `source()` skips the error they wrap, and HTTP clients nest them.
pub fn find_rustls<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        cur = match err.downcast_ref::<io::Error>().and_then(io::Error::get_ref) {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}

/// Why an HTTPS call to `peer` failed: reqwest's error with its causes (refused, name not
/// found, timed out...), a TLS failure explained instead of quoted.
pub fn http_failure(e: &reqwest::Error, peer: Peer<'_>) -> String {
    if let Some(tls) = find_rustls(e) {
        let io = io::Error::new(io::ErrorKind::InvalidData, tls.clone());
        return explain_tls(&io, peer);
    }
    let mut out = String::new();
    let mut cur: Option<&dyn std::error::Error> = Some(e);
    let mut last = String::new();
    while let Some(err) = cur {
        let text = err.to_string();
        if !last.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
        last = text;
        cur = err.source();
    }
    out
}

/// A sentence for a failed TLS handshake with `peer`.
pub fn explain_tls(e: &io::Error, peer: Peer<'_>) -> String {
    use CertificateError as C;
    use rustls::Error as R;
    let Some(tls) = rustls_error(e) else {
        return match (e.kind(), peer) {
            (
                io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset,
                Peer::RoutedAuth { cluster },
            ) => format!(
                "the proxy closed the connection after the TLS ClientHello asking for cluster {cluster:?}: it does not route to that cluster's Auth Service; check that teleport.addr is the proxy of the cluster that issued the identity"
            ),
            (io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset, _) => {
                format!("the server closed the connection during the TLS handshake ({e})")
            }
            _ => format!("TLS handshake failed: {e}"),
        };
    };
    match (tls, peer) {
        (R::InvalidCertificate(C::UnknownIssuer | C::BadSignature), Peer::DirectAuth) => {
            "the server answered with a certificate not signed by the identity's Host CA (is teleport.addr a Teleport Proxy, or another cluster's Auth Service?)".into()
        }
        (R::InvalidCertificate(C::UnknownIssuer | C::BadSignature), Peer::RoutedAuth { cluster }) => format!(
            "the proxy answered with a certificate not signed by the identity's Host CA: check teleport.addr points at the cluster that issued the identity (the proxy serves cluster {cluster:?})"
        ),
        (R::InvalidCertificate(C::UnknownIssuer | C::BadSignature), Peer::ProxyWeb { host }) => format!(
            "the proxy's web certificate for {host} is not signed by a CA this system trusts: install its CA in the system trust store"
        ),
        (R::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }), Peer::ProxyWeb { host }) => {
            format!("the proxy's web certificate is not valid for {host}")
        }
        (R::InvalidCertificate(C::UnknownIssuer | C::BadSignature), Peer::Mattermost { host }) => format!(
            "Mattermost's certificate for {host} is not signed by a CA this system trusts: install its CA in the system trust store"
        ),
        (R::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }), Peer::Mattermost { host }) => {
            format!("Mattermost's certificate is not valid for {host}: check the host name in `mattermost.url`")
        }
        (R::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }), _) => {
            "the server's certificate is not valid for teleport.cluster.local, so it is not a Teleport Auth Service".into()
        }
        (R::InvalidCertificate(
            C::Expired | C::ExpiredContext { .. } | C::NotValidYet | C::NotValidYetContext { .. },
        ), _) => format!(
            "the server's certificate is expired or not yet valid ({tls}); check this machine's clock"
        ),
        (R::AlertReceived(a), Peer::DirectAuth | Peer::RoutedAuth { .. }) if rejects_client_cert(*a) => format!(
            "the server rejected the identity's client certificate (TLS alert {a:?}): renew the identity, and check it was issued by this cluster"
        ),
        (R::AlertReceived(AlertDescription::NoApplicationProtocol), Peer::RoutedAuth { .. }) => {
            "the server refused the offered ALPN protocols (teleport-auth@…, h2): something in between terminates TLS; set TELEPORT_TLS_ROUTING_CONN_UPGRADE=true to tunnel through it".into()
        }
        (R::AlertReceived(AlertDescription::NoApplicationProtocol), _) => {
            "the server does not speak any offered protocol (ALPN)".into()
        }
        _ => format!("TLS handshake failed: {tls}"),
    }
}

fn rejects_client_cert(a: AlertDescription) -> bool {
    matches!(
        a,
        AlertDescription::BadCertificate
            | AlertDescription::CertificateRequired
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateUnknown
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateRevoked
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::AccessDenied
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(e: rustls::Error) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }

    #[test]
    fn an_unknown_issuer_names_the_host_ca_and_what_to_check() {
        let e = io(rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer,
        ));
        let routed = explain_tls(
            &e,
            Peer::RoutedAuth {
                cluster: "c.example",
            },
        );
        assert!(
            routed.contains("not signed by the identity's Host CA"),
            "{routed}"
        );
        assert!(
            routed.contains("teleport.addr points at the cluster"),
            "{routed}"
        );
        assert!(routed.contains("\"c.example\""), "{routed}");
        let web = explain_tls(&e, Peer::ProxyWeb { host: "p.example" });
        assert!(web.contains("web certificate for p.example"), "{web}");
    }

    #[test]
    fn a_close_after_the_client_hello_on_the_routed_path_names_the_cluster() {
        let e = io::Error::new(io::ErrorKind::UnexpectedEof, "tls handshake eof");
        let m = explain_tls(
            &e,
            Peer::RoutedAuth {
                cluster: "wrong.example",
            },
        );
        assert!(m.contains("does not route to that cluster"), "{m}");
        assert!(m.contains("\"wrong.example\""), "{m}");
    }

    #[test]
    fn a_rejected_client_certificate_says_to_renew_the_identity() {
        let e = io(rustls::Error::AlertReceived(
            AlertDescription::CertificateRequired,
        ));
        let m = explain_tls(&e, Peer::DirectAuth);
        assert!(
            m.contains("rejected the identity's client certificate"),
            "{m}"
        );
    }

    #[test]
    fn dial_errors_keep_their_io_kind_and_text() {
        let e: io::Error = DialError::Timeout {
            what: "TLS handshake",
            addr: "a:1".into(),
            after: Duration::from_secs(5),
        }
        .into();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(e.to_string(), "TLS handshake at a:1 took longer than 5s");
    }
}
