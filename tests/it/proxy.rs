//! Reaching Teleport through a Proxy, end to end over real sockets: the service watching and
//! posting via direct Auth, Proxy TLS routing, and an ALPN-stripping load balancer with the
//! WebSocket connection upgrade (chosen automatically); identity rotation on the Proxy paths;
//! the path chosen again when the network changes; clear errors for a wrong CA or cluster.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use teleport_mattermost::app::Options;
use teleport_mattermost::config::{Config, Credentials, TeleportConfig};
use teleport_mattermost::metrics::Metrics;
use teleport_mattermost::signals::Signals;
use teleport_mattermost::sim::teleport::fixtures::{self, PLUGIN_USER, REQUESTER};
use teleport_mattermost::sim::teleport::proxy::{Front, ProxySim, ProxySimOptions, Route};
use teleport_mattermost::sim::teleport::{NewRequest, SimOptions, TeleportSim};
use teleport_mattermost::teleport::proxy::{ConnUpgradeRules, add_process_web_roots};
use teleport_mattermost::teleport::{ConnectPath, ProxyOptions, TeleportClient, TeleportError};
use tokio_util::sync::CancellationToken;

use crate::harness::{Service, WAIT, World};
use crate::teleport::client_options;

/// Every request goes to `team-llama/channel-llama`.
const ROUTING: &str = "[role_to_recipients]\n\"*\" = [\"team-llama/channel-llama\"]\n";

/// The world's config with `teleport.addr` = `addr` and extra `[teleport]` keys.
fn config_via(w: &World, addr: &str, teleport_extra: &str) -> Config {
    let text = format!(
        "[teleport]\naddr = \"{addr}\"\nidentity = {:?}\n{teleport_extra}\n\n[mattermost]\nurl = \"{}\"\ntoken = \"{}\"\n\n[http]\nlisten_addr = \"127.0.0.1:0\"\n\n{ROUTING}",
        w.identity,
        w.mm.url(),
        w.mm.bot_token(),
    );
    Config::from_toml(&text).unwrap_or_else(|e| panic!("{e}"))
}

async fn proxy_for(tp: &TeleportSim, opts: ProxySimOptions) -> ProxySim {
    let proxy = ProxySim::start(tp, opts)
        .await
        .expect("proxy simulator starts");
    // The service builds its client with the process's Proxy settings.
    add_process_web_roots([proxy.web_ca_der()]);
    proxy
}

fn front(front: Front) -> ProxySimOptions {
    ProxySimOptions {
        front,
        ping_interval: Duration::from_millis(100),
        ..Default::default()
    }
}

/// Creates a request and waits for its post in the channel.
async fn request_is_posted(w: &World, reason: &str) {
    let before = w.mm.posts_in(&w.channel_id).len();
    w.tp.create_request(NewRequest::new(REQUESTER, &["editor"]).reason(reason));
    let channel = w.channel_id.clone();
    let wanted = reason.to_string();
    w.mm.wait_for(WAIT, move |sim| {
        let posts = sim.posts_in(&channel);
        (posts.len() > before && posts.iter().any(|p| p.message.contains(&wanted))).then_some(())
    })
    .await
    .unwrap_or_else(|_| panic!("no post for {reason:?}"));
}

/// Breaks connections until the Auth simulator sees `serial` (the service re-reads its
/// identity file every 50 ms, so the first reconnects may still use the old one).
async fn reconnects_with(tp: &TeleportSim, serial: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        tp.faults().drop_connections();
        tokio::time::sleep(Duration::from_millis(150)).await;
        if tp.faults().connections().iter().any(|c| c.serial == serial) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the Auth simulator never saw serial {serial}: {:?}",
            tp.faults().connections()
        );
    }
}

async fn service_posts_and_rotates(w: &World, addr: &str) -> Service {
    let svc = Service::start(
        config_via(
            w,
            addr,
            "refresh_identity = true\nrefresh_identity_interval = \"50ms\"",
        ),
        Options::default(),
    )
    .await;
    svc.ready().await;
    request_is_posted(w, "first through the path").await;

    let second = w.tp.write_identity(PLUGIN_USER, &w.identity).unwrap();
    reconnects_with(&w.tp, &second.serial).await;
    request_is_posted(w, "second after the rotation").await;
    svc
}

#[tokio::test]
async fn the_service_posts_through_a_direct_auth_address_and_rotates_its_identity() {
    let w = World::start().await;
    let svc = service_posts_and_rotates(&w, &w.tp.addr().to_string()).await;
    svc.stop().await.unwrap();
}

#[tokio::test]
async fn the_service_posts_through_proxy_tls_routing_and_rotates_its_identity() {
    let w = World::start().await;
    let proxy = proxy_for(&w.tp, front(Front::Direct)).await;
    let svc = service_posts_and_rotates(&w, &proxy.addr().to_string()).await;
    assert!(proxy.routed_to_auth() >= 2, "{:?}", proxy.hellos());
    assert!(proxy.upgrades().is_empty(), "no upgrade is needed");
    assert!(proxy.hellos().iter().all(|h| !h.via_upgrade));
    svc.stop().await.unwrap();
}

#[tokio::test]
async fn the_service_posts_through_an_alpn_stripping_balancer_with_the_connection_upgrade() {
    let w = World::start().await;
    let proxy = proxy_for(&w.tp, front(Front::StripAlpn)).await;
    let svc = service_posts_and_rotates(&w, &proxy.addr().to_string()).await;
    let routed: Vec<_> = proxy
        .hellos()
        .into_iter()
        .filter(|h| h.route == Route::Auth)
        .collect();
    assert!(routed.len() >= 2, "{routed:?}");
    assert!(routed.iter().all(|h| h.via_upgrade), "{routed:?}");
    assert!(proxy.upgrades().len() >= 2);
    svc.stop().await.unwrap();
}

// ----- the client on its own -----

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
            Err(e) => assert!(e.is_retryable(), "{e}"),
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
async fn an_identity_from_another_cluster_names_the_host_ca_through_the_proxy() {
    let w = World::start().await;
    let proxy = proxy_for(&w.tp, front(Front::Direct)).await;
    let other = TeleportSim::start(SimOptions {
        cluster_name: "other.test".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    other.write_identity(PLUGIN_USER, &w.identity).unwrap();
    let svc = Service::start(
        config_via(&w, &proxy.addr().to_string(), ""),
        Options::default(),
    )
    .await;
    let err = format!("{:#}", svc.ended().await.unwrap_err());
    assert!(
        err.contains("the proxy answered with a certificate not signed by the identity's Host CA"),
        "{err}"
    );
    assert!(
        err.contains("check teleport.addr points at the cluster"),
        "{err}"
    );
    assert!(err.contains("sim.teleport.test"), "{err}");
    assert!(w.tp.faults().connections().is_empty());
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
