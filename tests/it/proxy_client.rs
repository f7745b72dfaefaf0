//! The Proxy-aware client on its own against the Auth and Proxy simulators: the exact
//! ClientHello of TLS routing and the upgrade request on the wire, WebSocket pings answered,
//! how the path is chosen (balancers, the environment rule, re-choosing after failures), what
//! `check` and the metric report, and the errors for a wrong cluster, an untrusted web
//! certificate or an address nobody listens on.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use teleport_mattermost::config::{Credentials, TeleportConfig};
use teleport_mattermost::metrics::Metrics;
use teleport_mattermost::signals::Signals;
use teleport_mattermost::teleport::proxy::ConnUpgradeRules;
use teleport_mattermost::teleport::{ConnectPath, ProxyOptions, TeleportClient, TeleportError};
use teleport_mattermost_sim::teleport::fixtures::{self, PLUGIN_USER};
use teleport_mattermost_sim::teleport::proxy::{Front, ProxySim, ProxySimOptions, Route};
use teleport_mattermost_sim::teleport::{SimOptions, TeleportSim};
use tokio_util::sync::CancellationToken;

use crate::harness::WAIT;
use crate::proxy::front;
use crate::teleport::client_options;

struct Rig {
    tp: TeleportSim,
    _dir: tempfile::TempDir,
    identity: PathBuf,
    shutdown: CancellationToken,
}

impl Rig {
    async fn start() -> Self {
        teleport_mattermost::install_crypto_provider();
        let tp = TeleportSim::start(SimOptions::default()).await.unwrap();
        fixtures::standard(&tp);
        let dir = tempfile::tempdir().unwrap();
        let identity = dir.path().join("identity");
        tp.write_identity(PLUGIN_USER, &identity).unwrap();
        Self {
            tp,
            _dir: dir,
            identity,
            shutdown: CancellationToken::new(),
        }
    }

    fn client(&self, addr: &str, proxy: ProxyOptions) -> TeleportClient {
        let cfg = TeleportConfig {
            addr: addr.to_string(),
            credentials: Credentials::IdentityFile(self.identity.clone()),
            refresh_identity: false,
            refresh_identity_interval: Duration::from_secs(3600),
            proxy_ca: Vec::new(),
        };
        TeleportClient::connect_with(
            &cfg,
            &Signals::manual(self.shutdown.clone()),
            client_options(),
            proxy,
        )
        .unwrap()
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn trusting(proxy: &ProxySim) -> ProxyOptions {
    ProxyOptions {
        web_roots: vec![proxy.web_ca_der()],
        choose_timeout: Duration::from_secs(10),
        ..Default::default()
    }
}

fn alpn(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn tls_routing_sends_sni_teleport_cluster_local_and_the_auth_alpn_before_h2() {
    let rig = Rig::start().await;
    let proxy = ProxySim::start(&rig.tp, front(Front::Direct))
        .await
        .unwrap();
    let client = rig.client(&proxy.addr().to_string(), trusting(&proxy));
    client.ping().await.unwrap();
    assert_eq!(client.path(), Some(ConnectPath::ProxyTlsRouting));
    let auth = "teleport-auth@73696d2e74656c65706f72742e74657374.teleport.cluster.local";
    let seen: Vec<_> = proxy
        .hellos()
        .into_iter()
        .map(|h| (h.sni, h.alpn, h.route))
        .collect();
    // The order of the attempts: direct Auth (refused: the web certificate answers), the
    // discovery call, the test for an ALPN-stripping front, then the routed handshake.
    let sni = Some("teleport.cluster.local".to_string());
    assert_eq!(
        seen,
        vec![
            (sni.clone(), alpn(&["h2"]), Route::Web),
            (None, alpn(&["http/1.1"]), Route::Web),
            (
                None,
                alpn(&["teleport-reversetunnel"]),
                Route::ReverseTunnel
            ),
            (sni, alpn(&[auth, "h2"]), Route::Auth),
        ]
    );
    assert_eq!(
        rig.tp.faults().connections().last().unwrap().user,
        PLUGIN_USER
    );
}

#[tokio::test]
async fn the_connection_upgrade_sends_websocket_headers_and_answers_pings() {
    let rig = Rig::start().await;
    let proxy = ProxySim::start(&rig.tp, front(Front::StripAlpn))
        .await
        .unwrap();
    let addr = proxy.addr().to_string();
    let client = rig.client(&addr, trusting(&proxy));
    client.ping().await.unwrap();
    assert_eq!(client.path(), Some(ConnectPath::ProxyTlsRoutingUpgrade));

    let up = proxy.upgrades();
    assert_eq!(up.len(), 1, "{up:?}");
    let up = &up[0];
    assert_eq!(
        (up.method.as_str(), up.path.as_str()),
        ("GET", "/webapi/connectionupgrade")
    );
    assert_eq!(up.header("host"), Some(addr.as_str()));
    assert_eq!(up.header("upgrade"), Some("websocket"));
    assert_eq!(up.header("connection"), Some("Upgrade"));
    assert_eq!(up.header("sec-websocket-protocol"), Some("alpn-ping"));
    assert_eq!(up.header("sec-websocket-version"), Some("13"));
    let key = up.header("sec-websocket-key").unwrap();
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(key)
            .unwrap()
            .len(),
        16
    );

    let hellos = proxy.hellos();
    let inner = hellos
        .iter()
        .find(|h| h.via_upgrade)
        .expect("an upgraded hello");
    assert_eq!(inner.sni.as_deref(), Some("teleport.cluster.local"));
    assert_eq!(inner.alpn[1], "h2");
    assert!(inner.alpn[0].starts_with("teleport-auth@"));
    assert_eq!(inner.route, Route::Auth);
    // The upgrade's outer TLS offers no ALPN, as Teleport's client does.
    let outer = &hellos[hellos.len() - 2];
    assert!(outer.alpn.is_empty() && !outer.via_upgrade, "{hellos:?}");

    // An idle connection still answers the server's pings (every 100 ms here).
    let deadline = tokio::time::Instant::now() + WAIT;
    while proxy.pongs().len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "no pongs");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(proxy.pongs().iter().all(|p| p == b"teleport"));
    client.ping().await.unwrap();
}

#[tokio::test]
async fn a_balancer_that_refuses_unknown_alpn_also_leads_to_the_upgrade() {
    let rig = Rig::start().await;
    let proxy = ProxySim::start(&rig.tp, front(Front::Http1Only))
        .await
        .unwrap();
    let client = rig.client(&proxy.addr().to_string(), trusting(&proxy));
    client.ping().await.unwrap();
    assert_eq!(client.path(), Some(ConnectPath::ProxyTlsRoutingUpgrade));
    let probe = proxy
        .hellos()
        .into_iter()
        .find(|h| h.alpn == ["teleport-reversetunnel"])
        .unwrap();
    assert_eq!(probe.route, Route::Refused);
}

#[tokio::test]
async fn the_environment_rule_forces_the_upgrade_even_where_alpn_passes() {
    let rig = Rig::start().await;
    let proxy = ProxySim::start(&rig.tp, front(Front::Direct))
        .await
        .unwrap();
    let addr = proxy.addr().to_string();
    let (rules, problems) = ConnUpgradeRules::parse(&format!("false;{addr}=yes"));
    assert!(problems.is_empty());
    let client = rig.client(
        &addr,
        ProxyOptions {
            conn_upgrade: rules,
            ..trusting(&proxy)
        },
    );
    client.ping().await.unwrap();
    assert_eq!(client.path(), Some(ConnectPath::ProxyTlsRoutingUpgrade));
    assert!(
        proxy
            .hellos()
            .iter()
            .all(|h| h.alpn != ["teleport-reversetunnel"]),
        "a forced decision needs no test handshake"
    );
}

#[tokio::test]
async fn an_upgrade_turned_off_in_front_of_a_stripping_balancer_fails_with_the_fix() {
    let rig = Rig::start().await;
    let proxy = ProxySim::start(&rig.tp, front(Front::StripAlpn))
        .await
        .unwrap();
    let client = rig.client(
        &proxy.addr().to_string(),
        ProxyOptions {
            conn_upgrade: ConnUpgradeRules::parse("0").0,
            ..trusting(&proxy)
        },
    );
    let err = client.ping().await.unwrap_err().to_string();
    assert!(err.contains("TELEPORT_TLS_ROUTING_CONN_UPGRADE"), "{err}");
    assert!(err.contains("set it to true"), "{err}");
}

#[tokio::test]
async fn the_path_is_chosen_again_when_a_balancer_starts_stripping_alpn() {
    let rig = Rig::start().await;
    let proxy = ProxySim::start(&rig.tp, front(Front::Direct))
        .await
        .unwrap();
    let client = rig.client(&proxy.addr().to_string(), trusting(&proxy));
    client.ping().await.unwrap();
    assert_eq!(client.path(), Some(ConnectPath::ProxyTlsRouting));

    proxy.set_front(Front::StripAlpn);
    rig.tp.faults().drop_connections();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match client.ping().await {
            Ok(_) if client.path() == Some(ConnectPath::ProxyTlsRoutingUpgrade) => break,
            Ok(_) => {}
            Err(e) => assert!(e.is_transient(), "{e}"),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "path never re-chosen"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!proxy.upgrades().is_empty());
}

#[tokio::test]
async fn check_reports_the_path_and_the_metric_names_it() {
    let rig = Rig::start().await;
    let proxy = ProxySim::start(&rig.tp, front(Front::Direct))
        .await
        .unwrap();
    let addr = proxy.addr().to_string();
    let client = rig.client(&addr, trusting(&proxy));
    let metrics = Metrics::new();
    client.register_metrics(&metrics);
    assert!(
        !metrics.render().contains("teleport_connection_info{"),
        "no sample before the first connection"
    );
    let r = client.reachability().await.unwrap();
    assert_eq!(
        r.to_string(),
        format!(
            "Teleport reachable via proxy TLS routing ({addr}), cluster sim.teleport.test, v18.11.0"
        )
    );
    let text = metrics.render();
    let line = format!(
        "teleport_mattermost_teleport_connection_info{{addr=\"{addr}\",path=\"proxy_tls_routing\"}} 1"
    );
    assert!(text.contains(&line), "{text}");

    let direct = rig.client(&rig.tp.addr().to_string(), ProxyOptions::default());
    let r = direct.reachability().await.unwrap();
    assert_eq!(r.path, Some(ConnectPath::DirectAuth));
    assert!(
        r.to_string()
            .starts_with("Teleport reachable via direct Auth ("),
        "{r}"
    );
}

#[tokio::test]
async fn a_proxy_that_does_not_route_the_announced_cluster_names_it() {
    let rig = Rig::start().await;
    let proxy = ProxySim::start(
        &rig.tp,
        ProxySimOptions {
            find_cluster_name: Some("wrong.example".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let client = rig.client(&proxy.addr().to_string(), trusting(&proxy));
    let err = client.ping().await.unwrap_err();
    assert!(
        matches!(err, TeleportError::ConnectionProblem(_)),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("does not route to that cluster"), "{text}");
    assert!(text.contains("\"wrong.example\""), "{text}");
    assert_eq!(client.path(), None);
}

#[tokio::test]
async fn an_untrusted_web_certificate_is_named_when_nothing_else_works() {
    let rig = Rig::start().await;
    let proxy = ProxySim::start(&rig.tp, front(Front::Direct))
        .await
        .unwrap();
    let client = rig.client(&proxy.addr().to_string(), ProxyOptions::default());
    let err = client.ping().await.unwrap_err().to_string();
    assert!(err.contains("as an Auth Service"), "{err}");
    assert!(
        err.contains("web certificate for 127.0.0.1 is not signed by a CA this system trusts"),
        "{err}"
    );
}

#[tokio::test]
async fn an_address_nobody_listens_on_fails_at_once_without_trying_the_proxy_methods() {
    let rig = Rig::start().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    let client = rig.client(&addr, ProxyOptions::default());
    let started = std::time::Instant::now();
    let err = client.ping().await.unwrap_err().to_string();
    assert!(err.contains(&format!("cannot connect to {addr}")), "{err}");
    assert!(!err.contains("webapi"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(client.path(), None);
}
