//! Credentials in a running client: rotation picked up on the next reconnect (proved by the
//! certificate serial the simulator saw), periodic refresh, broken files on reload, expired
//! identities at start, key-pair credentials, and trust limited to the identity's CA.

use std::time::Duration;

use teleport_mattermost::config::Credentials;
use teleport_mattermost::signals::Signals;
use teleport_mattermost::teleport::{IdentityError, TeleportClient, TeleportError};
use teleport_mattermost_sim::teleport::fixtures::*;
use teleport_mattermost_sim::teleport::{SimOptions, TeleportSim, Validity};
use tokio::sync::watch;

use crate::teleport::{Env, client_options};

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Pings until one succeeds; the first call after a dropped connection may fail.
async fn ping_through(client: &TeleportClient) {
    for _ in 0..20 {
        match client.ping().await {
            Ok(_) => return,
            Err(e) if e.is_transient() => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => panic!("{e}"),
        }
    }
    panic!("no successful ping after reconnecting");
}

#[tokio::test]
async fn a_rotated_identity_is_used_on_the_next_reconnect_without_restart() {
    let env = Env::start().await;
    let path = env.identity_path(PLUGIN_USER);
    let first = env.sim.write_identity(PLUGIN_USER, &path).unwrap();
    let (hup, reload) = watch::channel(0u64);
    let signals = Signals {
        shutdown: env.shutdown.clone(),
        reload,
    };
    let client =
        TeleportClient::connect(&env.config(PLUGIN_USER), &signals, client_options()).unwrap();
    client.ping().await.unwrap();
    let faults = env.sim.faults();
    assert_eq!(faults.connections().last().unwrap().serial, first.serial);

    let second = env.sim.write_identity(PLUGIN_USER, &path).unwrap();
    assert_ne!(first.serial, second.serial);
    hup.send_modify(|n| *n += 1);
    wait_for("the new identity", || {
        client.identity().serial == second.serial
    })
    .await;
    // The open connection stays up: no restart, no new handshake yet.
    client.ping().await.unwrap();
    assert_eq!(faults.connections().len(), 1);

    faults.drop_connections();
    ping_through(&client).await;
    let conns = faults.connections();
    assert!(conns.len() >= 2, "{conns:?}");
    assert!(
        conns[1..].iter().all(|c| c.serial == second.serial),
        "{conns:?}"
    );
    assert_eq!(conns.last().unwrap().user, PLUGIN_USER);

    // A broken file on reload keeps the current identity.
    std::fs::write(&path, "-----BEGIN PRIVATE KEY-----\ngarbage\n").unwrap();
    hup.send_modify(|n| *n += 1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(client.identity().serial, second.serial);
    faults.drop_connections();
    ping_through(&client).await;
    assert_eq!(faults.connections().last().unwrap().serial, second.serial);
}

#[tokio::test]
async fn refresh_identity_rereads_the_file_every_interval_until_shutdown() {
    let env = Env::start().await;
    let path = env.identity_path(PLUGIN_USER);
    env.sim.write_identity(PLUGIN_USER, &path).unwrap();
    let mut cfg = env.config(PLUGIN_USER);
    cfg.refresh_identity = true;
    cfg.refresh_identity_interval = Duration::from_millis(50);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let client =
        TeleportClient::connect(&cfg, &Signals::manual(shutdown.clone()), client_options())
            .unwrap();
    let second = env.sim.write_identity(PLUGIN_USER, &path).unwrap();
    wait_for("the periodic refresh", || {
        client.identity().serial == second.serial
    })
    .await;

    shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(100)).await;
    env.sim.write_identity(PLUGIN_USER, &path).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        client.identity().serial,
        second.serial,
        "the refresher stopped with shutdown"
    );
}

#[tokio::test]
async fn an_expired_identity_is_a_fatal_start_error_with_the_renew_command() {
    let env = Env::start().await;
    let path = env.identity_path(PLUGIN_USER);
    env.sim
        .write_identity_with(
            PLUGIN_USER,
            &path,
            Validity::expired(Duration::from_secs(3600)),
        )
        .unwrap();
    let err = TeleportClient::connect(
        &env.config(PLUGIN_USER),
        &Signals::manual(env.shutdown.clone()),
        client_options(),
    )
    .unwrap_err();
    assert!(matches!(err, IdentityError::Expired { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("expired at 20"), "{text}");
    assert!(text.contains("tbot"), "{text}");
    assert!(
        text.contains(&format!(
            "tctl auth sign --user=access-plugin --format=file --out={}",
            path.display()
        )),
        "{text}"
    );
}

#[tokio::test]
async fn key_pair_credentials_connect_like_an_identity_file() {
    let env = Env::start().await;
    let id = env
        .sim
        .issue_identity(PLUGIN_USER, Validity::for_ttl(Duration::from_secs(600)));
    let dir = env.dir.path();
    let (key, cert, cas) = (dir.join("p.key"), dir.join("p.crt"), dir.join("p.cas"));
    std::fs::write(&key, &id.key_pem).unwrap();
    std::fs::write(&cert, &id.cert_pem).unwrap();
    std::fs::write(&cas, &id.ca_pem).unwrap();
    let mut cfg = env.config(PLUGIN_USER);
    cfg.credentials = Credentials::KeyPair { key, cert, cas };
    let client = TeleportClient::connect(
        &cfg,
        &Signals::manual(env.shutdown.clone()),
        client_options(),
    )
    .unwrap();
    client.ping().await.unwrap();
    assert_eq!(
        env.sim.faults().connections().last().unwrap().serial,
        id.serial
    );
}

#[tokio::test]
async fn only_the_identitys_own_ca_is_trusted() {
    let env = Env::start().await;
    let other = TeleportSim::start(SimOptions {
        cluster_name: "other.test".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let path = env.identity_path(PLUGIN_USER);
    other.write_identity(PLUGIN_USER, &path).unwrap();
    let client = TeleportClient::connect(
        &env.config(PLUGIN_USER),
        &Signals::manual(env.shutdown.clone()),
        client_options(),
    )
    .unwrap();
    let err = client.ping().await.unwrap_err();
    assert!(
        matches!(err, TeleportError::ConnectionProblem(_)),
        "{err:?}"
    );
    assert!(env.sim.faults().connections().is_empty());
}
