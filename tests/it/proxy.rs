//! Reaching Teleport through a Proxy, end to end over real sockets: the service watching and
//! posting via direct Auth, Proxy TLS routing, and an ALPN-stripping load balancer with the
//! WebSocket connection upgrade (chosen automatically), rotating its identity on each path,
//! and stopping with a clear error for an identity of another cluster. The client's wire
//! behaviour and path choice are in `proxy_client`.

use std::time::Duration;

use teleport_mattermost::app::Options;
use teleport_mattermost::config::Config;
use teleport_mattermost_sim::teleport::fixtures::{PLUGIN_USER, REQUESTER};
use teleport_mattermost_sim::teleport::proxy::{Front, ProxySim, ProxySimOptions, Route};
use teleport_mattermost_sim::teleport::{NewRequest, SimOptions, TeleportSim};

use crate::harness::{Service, WAIT, World};

/// Every request goes to `team-llama/channel-llama`.
const ROUTING: &str = "[role_to_recipients]\n\"*\" = [\"team-llama/channel-llama\"]\n";

/// The world's config with `teleport.addr` = `addr` and extra `[teleport]` keys.
fn config_via(w: &World, addr: &str, teleport_extra: &str) -> Config {
    let ca = w.dir.path().join("proxy-ca.pem");
    let teleport_extra = if ca.exists() {
        format!("{teleport_extra}\nproxy_ca = {:?}", ca)
    } else {
        teleport_extra.to_string()
    };
    let text = format!(
        "[teleport]\naddr = \"{addr}\"\nidentity = {:?}\n{teleport_extra}\n\n[mattermost]\nurl = \"{}\"\ntoken = \"{}\"\n\n[http]\nlisten_addr = \"127.0.0.1:0\"\n\n{ROUTING}",
        w.identity,
        w.mm.url(),
        w.mm.bot_token(),
    );
    Config::from_toml(&text).unwrap_or_else(|e| panic!("{e}"))
}

async fn proxy_for(w: &World, opts: ProxySimOptions) -> ProxySim {
    let proxy = ProxySim::start(&w.tp, opts)
        .await
        .expect("proxy simulator starts");
    // The service trusts the proxy's web certificate through `teleport.proxy_ca`.
    std::fs::write(w.dir.path().join("proxy-ca.pem"), proxy.web_ca_pem()).unwrap();
    proxy
}

pub fn front(front: Front) -> ProxySimOptions {
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
            "refresh_identity = true\nrefresh_identity_interval = \"1s\"",
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
    let proxy = proxy_for(&w, front(Front::Direct)).await;
    let svc = service_posts_and_rotates(&w, &proxy.addr().to_string()).await;
    assert!(proxy.routed_to_auth() >= 2, "{:?}", proxy.hellos());
    assert!(proxy.upgrades().is_empty(), "no upgrade is needed");
    assert!(proxy.hellos().iter().all(|h| !h.via_upgrade));
    svc.stop().await.unwrap();
}

#[tokio::test]
async fn the_service_posts_through_an_alpn_stripping_balancer_with_the_connection_upgrade() {
    let w = World::start().await;
    let proxy = proxy_for(&w, front(Front::StripAlpn)).await;
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

#[tokio::test]
async fn an_identity_from_another_cluster_names_the_host_ca_through_the_proxy() {
    let w = World::start().await;
    let proxy = proxy_for(&w, front(Front::Direct)).await;
    let other = TeleportSim::start(SimOptions {
        cluster_name: "other.test".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    other.write_identity(PLUGIN_USER, &w.identity).unwrap();
    let config = config_via(&w, &proxy.addr().to_string(), "");
    // What start-up reports on every retry (a renewed identity may fix it, so the service
    // stays up, unready, instead of exiting):
    let signals = teleport_mattermost::signals::Signals::manual(Default::default());
    let client = teleport_mattermost::teleport::TeleportClient::connect(
        &config.teleport,
        &signals,
        Default::default(),
    )
    .unwrap();
    let err = client.ping().await.unwrap_err().to_string();
    assert!(
        err.contains("the proxy answered with a certificate not signed by the identity's Host CA"),
        "{err}"
    );
    assert!(
        err.contains("check teleport.addr points at the cluster"),
        "{err}"
    );
    assert!(err.contains("sim.teleport.test"), "{err}");
    let svc = Service::start(config, Options::default()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !svc.readiness.is_ready(),
        "an identity of another cluster must not become ready"
    );
    svc.stop().await.unwrap();
    assert!(w.tp.faults().connections().is_empty());
}

#[tokio::test]
async fn the_service_posts_through_a_separate_mode_proxy_at_its_web_address() {
    let w = World::start().await;
    let proxy = proxy_for(
        &w,
        ProxySimOptions {
            tls_routing_enabled: false,
            ..front(Front::Direct)
        },
    )
    .await;
    let svc = service_posts_and_rotates(&w, &proxy.addr().to_string()).await;
    assert!(proxy.routed_to_auth() >= 2, "{:?}", proxy.hellos());
    svc.stop().await.unwrap();
}
