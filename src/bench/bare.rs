//! The physical limit: the Teleport and Mattermost calls the bridge makes for a new request
//! (read plugin data, compare-and-swap create, two create-posts, compare-and-swap finalize),
//! made by the raw clients in a plain loop with the bridge's concurrency — no watch, queue,
//! claim logic, routing or rendering (the post body is rendered once and reused). It runs
//! in a child process (`bench --bare-worker <dir>`), like the service, so both see the same
//! process layout.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use teleport_mattermost::access::{PluginData, SentMessage};
use teleport_mattermost::config::Config;
use teleport_mattermost::mattermost::{ClientOptions as MmOptions, MattermostClient, model};
use teleport_mattermost::metrics::Metrics;
use teleport_mattermost::route::Recipient;
use teleport_mattermost::signals::Signals;
use teleport_mattermost::teleport::TeleportClient;
use teleport_mattermost::teleport::client::{ClientOptions as TpOptions, PluginDataClient};

/// The worker's inputs in its directory: the service config and the body to post.
pub const CONFIG_FILE: &str = "bare.toml";
pub const BODY_FILE: &str = "body.json";

/// One post body as the bridge renders it (message and props), reused for every post.
#[derive(Clone, Serialize, Deserialize)]
pub struct Body {
    pub message: String,
    pub props: Option<teleport_mattermost::mattermost::model::Props>,
}

struct Clients {
    store: PluginDataClient,
    chat: MattermostClient,
    recipients: Vec<Recipient>,
    body: Body,
}

/// Runs the loop over `ids` (requests that exist, without plugin data); returns how long it
/// took. Any failed call is an error: there are no faults in this run.
pub async fn run(
    config: &Config,
    recipients: Vec<Recipient>,
    body: Body,
    ids: &[String],
) -> anyhow::Result<Duration> {
    let stop = CancellationToken::new();
    let signals = Signals::manual(stop.clone());
    let teleport = TeleportClient::connect(&config.teleport, &signals, TpOptions::default())?;
    let chat = MattermostClient::new(MmOptions::from_config(&config.mattermost), &Metrics::new())?;
    chat.me().await?;
    let clients = Arc::new(Clients {
        store: teleport.plugin_data(teleport_mattermost::route::PLUGIN_NAME),
        chat,
        recipients,
        body,
    });
    // Warm up: the connections and the recipient cache, as a running service has them.
    for r in &clients.recipients {
        clients.chat.resolve(r).await?;
    }
    // As many tasks as the bridge runs requests at once, each taking the next request.
    let ids: Arc<Vec<String>> = Arc::new(ids.to_vec());
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..config.bridge.concurrency.max(1))
        .map(|_| {
            let (c, ids, next) = (clients.clone(), ids.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(id) = ids.get(i) else {
                        return anyhow::Ok(());
                    };
                    one(&c, id).await?;
                }
            })
        })
        .collect();
    for w in workers {
        w.await??;
    }
    let elapsed = start.elapsed();
    stop.cancel();
    Ok(elapsed)
}

/// What the worker prints on stdout.
#[derive(Debug, Serialize, Deserialize)]
pub struct WorkerResult {
    pub requests: usize,
    pub elapsed_secs: f64,
    /// CPU time the worker used during the loop.
    pub cpu_secs: f64,
}

/// `bench --bare-worker <dir>`: loops over every PENDING request of the configured Teleport
/// and prints a [`WorkerResult`] as JSON.
pub fn worker_main(dir: &Path) -> ExitCode {
    teleport_mattermost::install_crypto_provider();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(worker(dir)));
    match result {
        Ok(r) => {
            println!("{}", serde_json::to_string(&r).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bare worker failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn worker(dir: &Path) -> anyhow::Result<WorkerResult> {
    let config = Config::load(
        &dir.join(CONFIG_FILE),
        std::iter::empty::<(String, String)>(),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let body: Body = serde_json::from_slice(
        &std::fs::read(dir.join(BODY_FILE)).context("reading the body to post")?,
    )?;
    let stop = CancellationToken::new();
    let teleport = TeleportClient::connect(
        &config.teleport,
        &Signals::manual(stop.clone()),
        TpOptions::default(),
    )?;
    let filter = teleport_mattermost::teleport::client::RequestFilter {
        state: Some(teleport_mattermost::access::RequestState::Pending),
        ..Default::default()
    };
    let ids: Vec<String> = teleport
        .list_access_requests(&filter)
        .await?
        .into_iter()
        .map(|r| r.id)
        .collect();
    stop.cancel();
    let recipients = config
        .role_to_recipients
        .get("*")
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .chain([Recipient::Email(
            teleport_mattermost_sim::teleport::fixtures::REVIEWER1.to_string(),
        )])
        .collect();
    let cpu = super::process::cpu_secs("self");
    let elapsed = run(&config, recipients, body, &ids).await?;
    let cpu = cpu
        .zip(super::process::cpu_secs("self"))
        .map_or(f64::NAN, |(b, a)| a - b);
    Ok(WorkerResult {
        requests: ids.len(),
        elapsed_secs: elapsed.as_secs_f64(),
        cpu_secs: cpu,
    })
}

async fn one(c: &Clients, id: &str) -> anyhow::Result<()> {
    use teleport_mattermost::bridge::ports::Store;
    let existing = c.store.get(id).await?;
    anyhow::ensure!(existing.is_none(), "request {id} already has plugin data");
    let mut data = PluginData {
        user: "requester@example.com".into(),
        roles: vec!["editor".into()],
        request_reason: "benchmark".into(),
        ..PluginData::default()
    };
    let claimed = with_claim(data.encode(), "bare;0;post");
    let empty = claimed.keys().map(|k| (k.clone(), String::new())).collect();
    c.store.update(id, claimed.clone(), empty).await?;
    let mut channels = Vec::new();
    for r in &c.recipients {
        channels.push(c.chat.resolve(r).await?.channel_id);
    }
    let posts = channels.iter().map(|ch| async move {
        let post = model::NewPost {
            channel_id: ch.clone(),
            message: c.body.message.clone(),
            root_id: None,
            props: c.body.props.clone(),
            pending_post_id: Some(format!("tm:{id}:root:{ch}")),
        };
        c.chat.create_post_id(&post).await
    });
    for (ch, post) in channels
        .iter()
        .zip(futures_util::future::join_all(posts).await)
    {
        data.messages.push(SentMessage {
            channel_id: ch.clone(),
            post_id: post?,
        });
    }
    c.store
        .update(id, with_claim(data.encode(), ""), claimed)
        .await?;
    Ok(())
}

fn with_claim(mut m: BTreeMap<String, String>, claim: &str) -> BTreeMap<String, String> {
    m.insert(teleport_mattermost::bridge::claim::KEY.into(), claim.into());
    m
}
