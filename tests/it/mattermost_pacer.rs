//! Mattermost's rate limit on (the simulator answers as the server does): the client's pacer
//! keeps bursts under it instead of sending calls to be refused, 429s are waited out without
//! using up attempts or retry budgets, and throttling is counted apart from failures. The
//! limits here refill in about 2 s, like the server's default (10.1 s), only faster.

use std::collections::BTreeSet;
use std::time::Duration;

use futures_util::future::join_all;
use secrecy::SecretString;
use teleport_mattermost::access::PluginData;
use teleport_mattermost::mattermost::model::NewPost;
use teleport_mattermost::mattermost::{ClientOptions, MattermostClient, MattermostError};
use teleport_mattermost::metrics::Metrics;
use teleport_mattermost_sim::mattermost::{MattermostSim, RateLimit, RouteFilter, SimConfig};
use teleport_mattermost_sim::process::metric_value;
use teleport_mattermost_sim::teleport::NewRequest;
use teleport_mattermost_sim::teleport::fixtures::{REQUESTER, REVIEWER1};
use tokio::time::Instant;

use crate::harness::World;
use crate::mattermost::fixture;

fn metered(sim: &MattermostSim, f: impl FnOnce(&mut ClientOptions)) -> (MattermostClient, Metrics) {
    let metrics = Metrics::new();
    let mut options = ClientOptions::new(sim.url(), SecretString::from(sim.bot_token()));
    f(&mut options);
    (MattermostClient::new(options, &metrics).unwrap(), metrics)
}

fn refused(sim: &MattermostSim) -> usize {
    sim.requests().iter().filter(|r| r.status == 429).count()
}

/// The value of one sample of the metrics text (0 when absent).
fn sample(metrics: &Metrics, series: &str) -> f64 {
    metric_value(&metrics.render(), series).unwrap_or(0.0)
}

/// `(posts − allowance) / rate`, the floor the limit sets for `posts` requests at once.
fn floor(posts: usize, limit: &RateLimit) -> Duration {
    let allowed_at_once = limit.max_burst as usize + 1;
    Duration::from_secs_f64(posts.saturating_sub(allowed_at_once) as f64 / f64::from(limit.per_sec))
}

/// The client fixture with a limit of 20/s and a burst of 40 (about 2 s to refill).
async fn limited() -> (crate::mattermost::Fixture, RateLimit) {
    let limit = RateLimit::new(20, 40);
    let fx = fixture(SimConfig {
        rate_limit: Some(limit.clone()),
        ..SimConfig::default()
    })
    .await;
    (fx, limit)
}

/// Waits until every request has `roots` posts recorded and no claim, within `limit` for all
/// of them (a burst under the limit finishes in its own order, not in the requests').
async fn all_posted(w: &World, ids: &[String], roots: usize, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let left: Vec<&String> = ids
            .iter()
            .filter(|id| {
                !w.plugin_data(id).is_some_and(|m| {
                    !m.contains_key("claim")
                        && PluginData::decode(&m).is_ok_and(|d| d.messages.len() == roots)
                })
            })
            .collect();
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} requests not posted within {limit:?}, e.g. {:?}",
            left.len(),
            w.plugin_data(left[0])
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_posts_is_paced_under_the_limit_and_each_is_made_once() {
    // Timed against the limit: not beside the heavy tests.
    let _turn = crate::harness::HEAVY.lock().await;
    let (fx, limit) = limited().await;
    // Long enough a queue that no call is handed back: this is the pacing alone.
    let (c, metrics) = metered(&fx.sim, |o| {
        o.retry.max_queue_wait = Duration::from_secs(30)
    });
    let n = 100;
    let start = Instant::now();
    let posts: Vec<NewPost> = (0..n)
        .map(|i| NewPost::new(&fx.channel, format!("burst {i}")))
        .collect();
    let results = join_all(posts.iter().map(|p| c.create_post(p))).await;
    let took = start.elapsed();
    for r in &results {
        assert!(r.is_ok(), "{r:?}");
    }
    let messages: BTreeSet<String> = fx.sim.posts().into_iter().map(|p| p.message).collect();
    assert_eq!(fx.sim.post_count(), n, "each post made once");
    assert_eq!(messages.len(), n);
    // Near zero: 0–1 on a quiet machine; on a loaded one the first answers, which the pace is
    // learned from, come late (6 of 100 seen with six busy loops beside the test). An unpaced
    // client gets far more: every call past the burst is refused, most of them many times.
    assert!(refused(&fx.sim) <= n / 5, "{} refused", refused(&fx.sim));
    let min = floor(n + 1, &limit);
    assert!(
        took >= min.mul_f64(0.9),
        "{took:?} is faster than the limit allows"
    );
    // Generous: the tests share the machine with the rest of the suite. A call sent to the
    // back of the queue again, or a pace not learned, costs far more than this.
    assert!(
        took <= min.mul_f64(2.0) + Duration::from_secs(2),
        "{took:?} vs {min:?}"
    );
    assert!(
        sample(
            &metrics,
            r#"teleport_mattermost_mattermost_throttled_total{call="create_post",outcome="queued"}"#
        ) > 50.0,
        "{}",
        metrics.render()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_handed_back_get_their_turn_again_and_nothing_is_posted_twice() {
    // Timed against the limit: not beside the heavy tests.
    let _turn = crate::harness::HEAVY.lock().await;
    let (fx, limit) = limited().await;
    // The default queue bound (2 s) is shorter than this burst needs: later calls are handed
    // back with their wait, as the bridge sees them, and come again with the same post.
    let c = MattermostClient::new(
        ClientOptions::new(fx.sim.url(), SecretString::from(fx.sim.bot_token())),
        &Metrics::new(),
    )
    .unwrap();
    let bot = c.bot_id().await.unwrap();
    let n = 120;
    let start = Instant::now();
    let handed_back = std::sync::atomic::AtomicUsize::new(0);
    let posts = (0..n).map(|i| {
        let (c, channel, bot, handed_back) = (&c, &fx.channel, &bot, &handed_back);
        async move {
            let mut post = NewPost::new(channel, format!("burst {i}"));
            post.pending_post_id = Some(format!("{bot}:{i}"));
            loop {
                match c.create_post(&post).await {
                    Ok(p) => return p,
                    Err(MattermostError::RateLimited { wait, .. }) => {
                        handed_back.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        tokio::time::sleep(wait).await;
                    }
                    Err(e) => panic!("{e}"),
                }
            }
        }
    });
    join_all(posts).await;
    let took = start.elapsed();
    assert_eq!(fx.sim.post_count(), n);
    assert!(
        handed_back.into_inner() > 0,
        "the queue bound was never reached"
    );
    // As above: near zero on a quiet machine, a few when the first answers come late.
    assert!(refused(&fx.sim) <= n / 5, "{} refused", refused(&fx.sim));
    // Kept turns: coming back does not queue a call behind everyone again.
    let min = floor(n + 1, &limit);
    // Generous: the tests share the machine with the rest of the suite. A call sent to the
    // back of the queue again, or a pace not learned, costs far more than this.
    assert!(
        took <= min.mul_f64(2.0) + Duration::from_secs(2),
        "{took:?} vs {min:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_429_with_retry_after_is_waited_out_without_spending_an_attempt() {
    let fx = fixture(SimConfig::default()).await;
    // One attempt only: a 429 is not an attempt, so three of them still end in a post.
    let (c, metrics) = metered(&fx.sim, |o| o.retry.max_attempts = 1);
    c.me().await.unwrap();
    fx.sim
        .faults()
        .rate_limit_next(Some(RouteFilter::new("POST", "/api/v4/posts")), 3, 2);
    let start = Instant::now();
    c.create_post(&NewPost::new(&fx.channel, "hi"))
        .await
        .unwrap();
    assert!(
        start.elapsed() >= Duration::from_secs(6),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(fx.sim.post_count(), 1);
    assert_eq!(refused(&fx.sim), 3);
    let throttled =
        r#"teleport_mattermost_mattermost_throttled_total{call="create_post",outcome="refused"}"#;
    assert_eq!(sample(&metrics, throttled), 3.0, "{}", metrics.render());
    // Not a retry of a failure: the retry counter stays at zero.
    let text = metrics.render();
    assert!(
        !text.contains("teleport_mattermost_mattermost_retries_total{"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_a_sustained_limit_the_bridge_posts_everything_once_gives_up_nothing_and_fails_nothing()
 {
    // Timed against the limit: not beside the heavy tests.
    let _turn = crate::harness::HEAVY.lock().await;
    let w = World::start().await;
    // 20/s with a burst of 20: the 200 posts below keep the limit busy for about 9 s, far
    // longer than a call may wait (2 s in the queue, 6 s under the bridge's deadline), so
    // most events are handed back and come again, some several times.
    let limit = RateLimit::new(20, 20);
    w.mm.faults().set_rate_limit(Some(limit.clone()));
    let svc = w
        .service("[role_to_recipients]\n\"*\" = [\"team-llama/channel-llama\"]\n")
        .await;
    let ids: Vec<String> = (0..100)
        .map(|_| {
            w.tp.create_request(
                NewRequest::new(REQUESTER, &["editor"]).suggested_reviewers(&[REVIEWER1]),
            )
            .id
        })
        .collect();
    all_posted(&w, &ids, 2, Duration::from_secs(40)).await;
    let roots =
        w.mm.posts()
            .into_iter()
            .filter(|p| p.root_id.is_empty())
            .count();
    assert_eq!(roots, 200, "each request posted once per recipient");
    // A small fraction: the first answers, which the pace is learned from, may come late on a
    // loaded machine (the unpaced client of the issue got 15 refusals per post; with the pacer
    // bypassed this run is refused over 700 times).
    assert!(refused(&w.mm) <= 60, "{} refused", refused(&w.mm));
    let text = svc.metrics.render();
    // Nothing counted as failed, retried as a failure, or given up on.
    for series in [
        r#"teleport_mattermost_posts_total{kind="root",outcome="error"}"#,
        "teleport_mattermost_mattermost_retries_total{",
    ] {
        assert!(!text.contains(series), "{series} in {text}");
    }
    assert!(
        sample(
            &svc.metrics,
            r#"teleport_mattermost_mattermost_throttled_total{call="create_post",outcome="deferred"}"#
        ) > 0.0,
        "the limit was sustained long enough to hand events back: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_distinct_reviewer_costs_one_lookup_and_one_direct_channel_per_burst() {
    // Timed against the limit: not beside the heavy tests.
    let _turn = crate::harness::HEAVY.lock().await;
    const N: usize = 60;
    let w = World::start().await;
    // Tight enough that some direct-channel steps wait longer than a call may (handed back
    // after the user was looked up): the retried resolution must not look the user up again.
    w.mm.faults().set_rate_limit(Some(RateLimit::new(50, 50)));
    let reviewers: Vec<String> = (0..N).map(|i| format!("rev{i}@example.com")).collect();
    for (i, email) in reviewers.iter().enumerate() {
        w.mm.add_user(&format!("rev{i}"), email);
    }
    let _svc = w
        .service("[role_to_recipients]\n\"*\" = [\"team-llama/channel-llama\"]\n")
        .await;
    // Every reviewer is suggested on two requests created at once, so two resolutions of each
    // run concurrently (and some are handed back by the pacer and retried).
    let ids: Vec<String> = (0..N)
        .map(|i| {
            let pair = [reviewers[i].as_str(), reviewers[(i + 1) % N].as_str()];
            w.tp.create_request(NewRequest::new(REQUESTER, &["editor"]).suggested_reviewers(&pair))
                .id
        })
        .collect();
    all_posted(&w, &ids, 3, Duration::from_secs(40)).await;
    // Counted as the server counts them against the limit: a 429 is the same lookup sent
    // again by the client once its wait is over (and a few are allowed, see above).
    let answered = |method: &str, prefix: &str| {
        w.mm.requests()
            .iter()
            .filter(|r| r.method == method && r.path.starts_with(prefix) && r.status != 429)
            .count()
    };
    assert_eq!(answered("GET", "/api/v4/users/email/"), N);
    assert_eq!(answered("POST", "/api/v4/channels/direct"), N);
    // A small fraction, as above: up to 40 seen with six busy loops beside the test; with the
    // pacer bypassed this burst is refused over 300 times.
    assert!(refused(&w.mm) <= 60, "{} refused", refused(&w.mm));
}
