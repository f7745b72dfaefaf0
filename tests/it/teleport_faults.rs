//! The simulator's fault switchboard and load behaviour as the client sees them: dropped
//! watches, failed and delayed calls, a slow watcher cut off with an error, shutdown, and
//! ten thousand requests streamed to a watcher.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use teleport_mattermost::bridge::queue::Outcome;
use teleport_mattermost::teleport::{
    ChannelOptions, ClientOptions, RequestFilter, TeleportClient, TeleportError, WatchEvent,
    WatchRequest,
};
use teleport_mattermost_sim::teleport::fixtures::*;
use teleport_mattermost_sim::teleport::{Method, NewRequest, SimOptions, TeleportSim};
use tonic::Code;

use crate::teleport::{Env, next, next_put};
use crate::teleport_plugin_data::{RecordingChat, processor, work_of};

#[tokio::test]
async fn ending_watch_streams_gives_a_retryable_error_and_rewatching_works() {
    let env = Env::start().await;
    let c = env.client(PLUGIN_USER);
    let mut w = c.watch(WatchRequest::plugin()).await.unwrap();
    assert!(matches!(
        next(&mut w).await.unwrap(),
        WatchEvent::Init { .. }
    ));
    env.sim.faults().end_watch_streams();
    let err = next(&mut w).await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    let end = tokio::time::timeout(Duration::from_secs(5), w.next())
        .await
        .unwrap();
    assert!(end.is_none(), "the stream ends after its error");

    let mut w = c.watch(WatchRequest::plugin()).await.unwrap();
    assert!(matches!(
        next(&mut w).await.unwrap(),
        WatchEvent::Init { .. }
    ));
    let req = env
        .sim
        .create_request(NewRequest::new(REQUESTER, &[REQUESTED_ROLE]));
    assert_eq!(next_put(&mut w).await.id, req.id);
}

#[tokio::test]
async fn planned_failures_hit_exactly_the_next_calls_with_their_code() {
    let env = Env::start().await;
    let c = env.client(PLUGIN_USER);
    let f = env.sim.faults();
    f.fail_next(Method::Ping, 2, Code::Unavailable, "auth is restarting");
    for _ in 0..2 {
        assert_eq!(
            c.ping().await.unwrap_err(),
            TeleportError::ConnectionProblem("auth is restarting".into())
        );
    }
    c.ping().await.unwrap();
    assert_eq!(f.calls(Method::Ping), 3);

    // Conflicts injected on the processor's claim write are absorbed by its CAS rounds.
    let req = env
        .sim
        .create_request(NewRequest::new(REQUESTER, &[REQUESTED_ROLE]));
    let chat = RecordingChat::default();
    let p = processor(&c, &chat);
    let work = work_of(&c, &req.id).await;
    f.fail_next(
        Method::UpdatePluginData,
        2,
        Code::FailedPrecondition,
        "expectations not met for field \"user\"",
    );
    assert!(matches!(p.handle(&req.id, work).await, Outcome::Done));
    assert_eq!(chat.posts.lock().unwrap().len(), 1, "posted once");
    // Two refused claims, the claim, then the progress with the claim released.
    assert_eq!(f.calls(Method::UpdatePluginData), 4);
    let raw = env.sim.plugin_data(&req.id, "mattermost").unwrap();
    assert_eq!(raw["messages"], "ch-team-reviews/post-1");
}

#[tokio::test]
async fn a_delayed_call_times_out_as_a_connection_problem() {
    let env = Env::start().await;
    env.sim
        .write_identity(PLUGIN_USER, &env.identity_path(PLUGIN_USER))
        .unwrap();
    let opts = ClientOptions {
        call_timeout: Duration::from_millis(200),
        channel: ChannelOptions {
            request_timeout: Duration::from_millis(200),
            ..Default::default()
        },
        ..Default::default()
    };
    let c = TeleportClient::connect(
        &env.config(PLUGIN_USER),
        &teleport_mattermost::signals::Signals::manual(env.shutdown.clone()),
        opts,
    )
    .unwrap();
    c.ping().await.unwrap();
    env.sim
        .faults()
        .delay_next(Method::GetUser, 1, Duration::from_secs(2));
    let started = Instant::now();
    let err = c.get_user(PLUGIN_USER).await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    c.get_user(PLUGIN_USER).await.unwrap();
}

#[tokio::test]
async fn a_watcher_that_falls_behind_is_cut_off_with_an_error_not_silent_loss() {
    let env = Env::with(SimOptions {
        watch_buffer: 16,
        ..Default::default()
    })
    .await;
    let c = env.client(PLUGIN_USER);
    let mut w = c.watch(WatchRequest::plugin()).await.unwrap();
    assert!(matches!(
        next(&mut w).await.unwrap(),
        WatchEvent::Init { .. }
    ));
    // Far more than the buffer plus what HTTP/2 flow control lets through unread.
    for i in 0..6000 {
        env.sim.create_request(
            NewRequest::new(REQUESTER, &[REQUESTED_ROLE]).reason(&format!("{i:0>300}")),
        );
    }
    let mut puts = 0;
    let err = loop {
        match next(&mut w).await {
            Ok(WatchEvent::RequestPut(_)) => puts += 1,
            Ok(other) => panic!("{other:?}"),
            Err(e) => break e,
        }
    };
    assert!(puts < 6000, "{puts}");
    assert!(err.is_transient(), "{err:?}");
    assert!(err.message().contains("watcher queue overflow"), "{err}");
}

#[tokio::test]
async fn stopping_the_simulator_ends_watches_with_unavailable() {
    let sim = TeleportSim::start(SimOptions::default()).await.unwrap();
    teleport_mattermost_sim::teleport::fixtures::standard(&sim);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("identity");
    sim.write_identity(PLUGIN_USER, &path).unwrap();
    let cfg = teleport_mattermost::config::TeleportConfig {
        addr: sim.addr().to_string(),
        credentials: teleport_mattermost::config::Credentials::IdentityFile(path),
        refresh_identity: false,
        refresh_identity_interval: Duration::from_secs(60),
        proxy_ca: Vec::new(),
    };
    let token = tokio_util::sync::CancellationToken::new();
    let signals = teleport_mattermost::signals::Signals::manual(token);
    let c = TeleportClient::connect(&cfg, &signals, crate::teleport::client_options()).unwrap();
    let mut w = c.watch(WatchRequest::plugin()).await.unwrap();
    next(&mut w).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), sim.stop())
        .await
        .unwrap();
    let err = next(&mut w).await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
}

#[tokio::test]
async fn ten_thousand_requests_reach_a_watcher_in_order_and_list_back() {
    let env = Env::start().await;
    let c = env.client(PLUGIN_USER);
    let mut w = c.watch(WatchRequest::plugin()).await.unwrap();
    next(&mut w).await.unwrap();
    let started = Instant::now();
    let producer = {
        let ids: Vec<String> = (0..10_000)
            .map(|i| {
                env.sim
                    .create_request(
                        NewRequest::new(REQUESTER, &[REQUESTED_ROLE]).reason(&format!("r{i}")),
                    )
                    .id
            })
            .collect();
        ids
    };
    let mut seen = Vec::with_capacity(producer.len());
    while seen.len() < producer.len() {
        seen.push(next_put(&mut w).await.id);
    }
    let elapsed = started.elapsed();
    assert_eq!(seen, producer);
    assert!(elapsed < Duration::from_secs(20), "{elapsed:?}");
    let all = c
        .list_access_requests(&RequestFilter::default())
        .await
        .unwrap();
    assert_eq!(all.len(), 10_000);
    eprintln!("10k requests created and watched in {elapsed:?}");
}
