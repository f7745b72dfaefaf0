//! The Proxy's public side: its web certificate verified with the system roots plus any
//! configured extra CAs, `GET /webapi/find` (unauthenticated discovery: cluster name, TLS
//! routing), and the test handshake that detects fronts which terminate TLS without ALPN.

use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use rustls::client::danger::ServerCertVerifier;
use rustls_pki_types::{CertificateDer, ServerName};
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::cluster::REVERSE_TUNNEL_ALPN;
use super::error::{DialError, Peer, explain_tls, http_failure, rustls_error};

/// `/webapi/find` answers are small; anything larger is not a Teleport Proxy.
const MAX_FIND_BODY: usize = 1024 * 1024;

/// What the Proxy says about itself, without authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyInfo {
    pub cluster_name: String,
    pub server_version: String,
    pub tls_routing_enabled: bool,
}

#[derive(Deserialize)]
struct FindResponse {
    #[serde(default)]
    cluster_name: String,
    #[serde(default)]
    server_version: String,
    #[serde(default)]
    proxy: FindProxy,
}

#[derive(Deserialize, Default)]
struct FindProxy {
    #[serde(default)]
    tls_routing_enabled: bool,
}

/// TLS clients for the Proxy's web side, built once (loading the system roots reads files).
pub struct Web {
    http: reqwest::Client,
    /// The outer TLS of the connection upgrade: no ALPN, as Teleport's client sends.
    outer: Arc<ClientConfig>,
    /// The test handshake: ALPN `teleport-reversetunnel` only.
    probe: Arc<ClientConfig>,
}

impl Web {
    /// `extra_roots` are trusted on top of the system roots. Honours `HTTPS_PROXY` and
    /// `NO_PROXY` for `/webapi/find` (read once, here).
    pub fn new(extra_roots: &[CertificateDer<'static>]) -> Result<Self, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier: Arc<dyn ServerCertVerifier> = Arc::new(
            rustls_platform_verifier::Verifier::new_with_extra_roots(
                extra_roots.iter().cloned(),
                provider.clone(),
            )
            .map_err(|e| format!("no CA certificates to verify the proxy's web certificate with ({e}); install the system CA bundle (ca-certificates)"))?,
        );
        let config = |alpn: &[&str]| -> Result<ClientConfig, String> {
            let mut c = ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .dangerous()
                .with_custom_certificate_verifier(verifier.clone())
                .with_no_client_auth();
            c.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
            Ok(c)
        };
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(config(&["http/1.1"])?)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(format!("teleport-mattermost/{}", crate::version::VERSION))
            .build()
            .map_err(|e| format!("building the HTTP client for /webapi/find: {e}"))?;
        Ok(Self {
            http,
            outer: Arc::new(config(&[])?),
            probe: Arc::new(config(&[REVERSE_TUNNEL_ALPN])?),
        })
    }

    /// `GET https://<addr>/webapi/find`.
    pub async fn find(&self, addr: &str, timeout: Duration) -> Result<ProxyInfo, String> {
        let url = format!("https://{addr}/webapi/find");
        let fetch = async {
            let mut resp = self
                .http
                .get(&url)
                .send()
                .await
                .map_err(|e| describe_reqwest(&e, addr))?;
            let status = resp.status();
            if !status.is_success() {
                return Err(format!("GET {url} answered {status}: not a Teleport Proxy"));
            }
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(|e| format!("GET {url}: {e}"))? {
                body.extend_from_slice(&chunk);
                if body.len() > MAX_FIND_BODY {
                    return Err(format!(
                        "GET {url}: the answer exceeds 1 MiB: not a Teleport Proxy"
                    ));
                }
            }
            let find: FindResponse = serde_json::from_slice(&body).map_err(|e| {
                format!("GET {url} did not answer with Teleport's discovery JSON ({e}): not a Teleport Proxy")
            })?;
            if find.cluster_name.is_empty() {
                return Err(format!(
                    "GET {url} answered without a cluster_name: not a Teleport Proxy"
                ));
            }
            Ok(ProxyInfo {
                cluster_name: find.cluster_name,
                server_version: find.server_version,
                tls_routing_enabled: find.proxy.tls_routing_enabled,
            })
        };
        tokio::time::timeout(timeout, fetch)
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "GET {url}: no answer within {}s",
                    timeout.as_secs_f32()
                ))
            })
    }

    /// Whether `addr` needs the ALPN connection upgrade: a test handshake offering only
    /// `teleport-reversetunnel` that ends without a negotiated protocol, or with the
    /// server's "no application protocol" alert, means something terminates TLS in front
    /// of the Proxy. Any other failure means no (as in Teleport's client).
    pub async fn probe(&self, addr: &str, timeout: Duration) -> bool {
        let test = async {
            let tcp = connect_tcp(addr, timeout).await?;
            let tls = self.handshake(self.probe.clone(), addr, tcp).await?;
            Ok::<_, DialError>(tls.get_ref().1.alpn_protocol().is_none())
        };
        match tokio::time::timeout(timeout, test).await {
            Ok(Ok(required)) => required,
            Ok(Err(DialError::Failed(e))) if e.contains(ALPN_REFUSED) => true,
            Ok(Err(e)) => {
                tracing::debug!(teleport.addr = %addr, "ALPN test handshake failed, assuming no upgrade is needed: {e}");
                false
            }
            Err(_) => false,
        }
    }

    /// The outer TLS of the connection upgrade, verified as the proxy's web certificate.
    pub async fn outer(
        &self,
        addr: &str,
        tcp: TcpStream,
    ) -> Result<TlsStream<TcpStream>, DialError> {
        self.handshake(self.outer.clone(), addr, tcp).await
    }

    async fn handshake(
        &self,
        config: Arc<ClientConfig>,
        addr: &str,
        tcp: TcpStream,
    ) -> Result<TlsStream<TcpStream>, DialError> {
        let host = host_of(addr);
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| DialError::Failed(format!("{host:?} is not a valid host name")))?;
        tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| {
                let refused = matches!(
                    rustls_error(&e),
                    Some(rustls::Error::AlertReceived(
                        rustls::AlertDescription::NoApplicationProtocol
                    )) | Some(rustls::Error::PeerMisbehaved(
                        rustls::PeerMisbehaved::SelectedUnofferedApplicationProtocol
                    ))
                );
                let text = explain_tls(&e, Peer::ProxyWeb { host });
                DialError::Failed(if refused {
                    format!("{ALPN_REFUSED}: {text}")
                } else {
                    text
                })
            })
    }
}

/// Marks a handshake refused for its ALPN (the probe's "upgrade required" signal).
const ALPN_REFUSED: &str = "ALPN refused";

/// TCP with `TCP_NODELAY`, bounded by `timeout`.
pub async fn connect_tcp(addr: &str, timeout: Duration) -> Result<TcpStream, DialError> {
    let connected = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .unwrap_or_else(|_| {
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {}s", timeout.as_secs_f32()),
            ))
        });
    let tcp = connected.map_err(|source| DialError::Connect {
        addr: addr.to_string(),
        source,
    })?;
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

/// The host part of `host:port` (brackets of an IPv6 literal removed).
pub fn host_of(addr: &str) -> &str {
    if let Some(rest) = addr.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    addr.rsplit_once(':').map_or(addr, |(h, _)| h)
}

/// reqwest's error with its causes (a TLS reason is explained, not just quoted).
fn describe_reqwest(e: &reqwest::Error, addr: &str) -> String {
    let peer = Peer::ProxyWeb {
        host: host_of(addr),
    };
    format!(
        "GET https://{addr}/webapi/find failed: {}",
        http_failure(e, peer)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_of_strips_the_port_and_ipv6_brackets() {
        assert_eq!(host_of("tenant.teleport.sh:443"), "tenant.teleport.sh");
        assert_eq!(host_of("127.0.0.1:3080"), "127.0.0.1");
        assert_eq!(host_of("[::1]:443"), "::1");
        assert_eq!(host_of("bare"), "bare");
    }

    #[test]
    fn find_json_like_teleports_is_read_and_unknown_fields_ignored() {
        let body = r#"{"proxy":{"kube":{"enabled":true},"ssh":{"public_addr":"t.teleport.sh:443"},"tls_routing_enabled":true,"assist_enabled":false},"server_version":"18.1.4","min_client_version":"17.0.0-aa","cluster_name":"t.teleport.sh","edition":"ent","fips":false}"#;
        let f: FindResponse = serde_json::from_str(body).unwrap();
        assert_eq!(f.cluster_name, "t.teleport.sh");
        assert_eq!(f.server_version, "18.1.4");
        assert!(f.proxy.tls_routing_enabled);
        let old: FindResponse = serde_json::from_str(r#"{"cluster_name":"c"}"#).unwrap();
        assert!(!old.proxy.tls_routing_enabled);
    }
}
