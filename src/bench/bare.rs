//! The physical limit: the Teleport and Mattermost calls the bridge makes for a new request
//! (read plugin data, compare-and-swap create, two create-posts, compare-and-swap finalize),
//! made by the raw clients in a plain loop with the bridge's concurrency — no watch, queue,
//! claim logic, routing or rendering (the post body is rendered once and reused).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::access::{PluginData, SentMessage};
use crate::config::Config;
use crate::mattermost::{ClientOptions as MmOptions, MattermostClient, model};
use crate::metrics::Metrics;
use crate::route::Recipient;
use crate::signals::Signals;
use crate::teleport::TeleportClient;
use crate::teleport::client::{ClientOptions as TpOptions, PluginDataClient};

/// One post body as the bridge renders it (message and props), reused for every post.
#[derive(Clone)]
pub struct Body {
    pub message: String,
    pub props: Option<serde_json::Value>,
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
        store: teleport.plugin_data(crate::route::PLUGIN_NAME),
        chat,
        recipients,
        body,
    });
    // Warm up: the connections and the recipient cache, as a running service has them.
    for r in &clients.recipients {
        clients.chat.resolve(r).await?;
    }
    let start = Instant::now();
    let mut results = futures_util::stream::iter(ids.iter().cloned())
        .map(|id| {
            let c = clients.clone();
            async move { one(&c, &id).await }
        })
        .buffer_unordered(config.bridge.concurrency);
    while let Some(r) = results.next().await {
        r?;
    }
    let elapsed = start.elapsed();
    stop.cancel();
    Ok(elapsed)
}

async fn one(c: &Clients, id: &str) -> anyhow::Result<()> {
    use crate::access::cas::PluginDataStore;
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
        c.chat.create_post(&post).await
    });
    for (ch, post) in channels
        .iter()
        .zip(futures_util::future::join_all(posts).await)
    {
        data.messages.push(SentMessage {
            channel_id: ch.clone(),
            post_id: post?.id,
        });
    }
    c.store
        .update(id, with_claim(data.encode(), ""), claimed)
        .await?;
    Ok(())
}

fn with_claim(mut m: BTreeMap<String, String>, claim: &str) -> BTreeMap<String, String> {
    m.insert(crate::bridge::claim::KEY.into(), claim.into());
    m
}
