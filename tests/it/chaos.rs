//! Chaos: three service processes (the real binary) share one Teleport and one Mattermost
//! simulator while requests arrive and reviewers approve or deny at random (seeded), one
//! instance is killed with SIGKILL and restarted every ~2 s, Mattermost fails 10% of calls
//! with 500 and answers bursts of 429, the Teleport watch is cut every 5 s and the plugin's
//! identity is rotated once. Afterwards every request has exactly one post per recipient,
//! the posts of resolved requests show the final state, and every review has exactly one
//! reply under every root.
//!
//! A second run does the same with Mattermost's `pending_post_id` de-duplication off (as
//! behind several Mattermost nodes without a shared cache): a killed instance's unrecorded
//! posts must then be adopted by its successor, not re-created.
//!
//! A third does the same with Mattermost's default rate limit on (10 requests/s, a burst of
//! 100, shared by the three instances: one client address): fewer requests, since the limit
//! sets the pace, and a 429 or a turn in the queue must delay posts, never lose or repeat one.
//!
//! `CHAOS_REQUESTS` (default 1000; 60 with the rate limit) and `CHAOS_SEED` change the run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use teleport_mattermost::access::PluginData;
use teleport_mattermost_sim::mattermost::{RateLimit, SimPost};
use teleport_mattermost_sim::process::{ServiceProcess, free_port};
use teleport_mattermost_sim::teleport::NewRequest;
use teleport_mattermost_sim::teleport::fixtures::{PLUGIN_USER, REQUESTER, REVIEWER1, REVIEWER2};
use teleport_mattermost_sim::teleport::{NewReview, RequestState, Threshold};
use tokio::time::Instant;

use crate::harness::{World, request_id};

const BIN: &str = env!("CARGO_BIN_EXE_teleport-mattermost");
const INSTANCES: usize = 3;
/// Requests arrive during this window; reviews up to 3 s later.
const ARRIVALS: Duration = Duration::from_secs(20);
/// Faults (kills, 500s, 429s, watch cuts) last this long.
const CHAOS: Duration = Duration::from_secs(24);
/// Then everything must be right within this (the 12 s claim lease of a killed instance
/// included).
const CONVERGE: Duration = Duration::from_secs(30);

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Instance {
    config: PathBuf,
    log: PathBuf,
    http: std::net::SocketAddr,
    process: Option<ServiceProcess>,
    starts: usize,
}

impl Instance {
    fn start(&mut self) {
        self.process = Some(
            ServiceProcess::spawn(
                Path::new(BIN),
                &self.config,
                self.http,
                &[],
                Some(&self.log),
            )
            .expect("the service binary starts"),
        );
        self.starts += 1;
    }
}

fn config(w: &World, http: std::net::SocketAddr, log: &Path) -> String {
    format!(
        "[teleport]\naddr = \"{}\"\nidentity = {:?}\nrefresh_identity = true\nrefresh_identity_interval = \"1s\"\n\n\
         [mattermost]\nurl = \"{}\"\ntoken = \"{}\"\ntimeout = \"5s\"\n\n\
         [role_to_recipients]\n\"*\" = [\"team-llama/channel-llama\"]\n\n\
         [log]\noutput = {log:?}\nseverity = \"info\"\n\n[http]\nlisten_addr = \"{http}\"\n",
        w.tp.addr(),
        w.identity,
        w.mm.url(),
        w.mm.bot_token(),
    )
}

/// A review a reviewer will make once they see the request's post (reviewer1 in their DM,
/// reviewer2 in the channel), after thinking for `delay`.
struct PlannedReview {
    reviewer: &'static str,
    state: RequestState,
    delay: Duration,
}

struct DueReview {
    due: Instant,
    id: String,
    reviewer: &'static str,
    state: RequestState,
}

/// What is wrong with the posts, per kind of problem (empty when all is right).
#[derive(Debug, Default)]
struct Findings {
    missing: Vec<String>,
    duplicates: Vec<String>,
    stale: Vec<String>,
    replies: Vec<String>,
    outcome: Vec<String>,
    counts: BTreeMap<&'static str, usize>,
}

impl Findings {
    fn ok(&self) -> bool {
        self.missing.is_empty()
            && self.duplicates.is_empty()
            && self.stale.is_empty()
            && self.replies.is_empty()
            && self.outcome.is_empty()
    }
}

fn status_text(state: RequestState) -> &'static str {
    match state {
        RequestState::Approved => "✅ APPROVED",
        RequestState::Denied => "❌ DENIED",
        _ => "⏳ PENDING",
    }
}

/// Compares Mattermost with Teleport, the source of truth.
fn inspect(w: &World, ids: &[String]) -> Findings {
    let mut f = Findings::default();
    let channels = [w.channel_id.clone(), w.dm(REVIEWER1).unwrap_or_default()];
    let requester_dm = w.dm(REQUESTER).unwrap_or_default();
    let posts = w.mm.posts();
    let mut roots: BTreeMap<(String, String), Vec<&SimPost>> = BTreeMap::new();
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for p in posts.iter().filter(|p| p.root_id.is_empty()) {
        if p.channel_id == requester_dm {
            *outcomes
                .entry(request_id(p).unwrap_or_default())
                .or_default() += 1;
        } else if let Some(id) = request_id(p) {
            roots.entry((id, p.channel_id.clone())).or_default().push(p);
        }
    }
    f.counts.insert("posts", posts.len());
    f.counts
        .insert("root posts", roots.values().map(Vec::len).sum());
    f.counts
        .insert("requester messages", outcomes.values().sum());
    let mut reviews = 0;
    let mut resolved = 0;
    for id in ids {
        let Some(req) = w.tp.request(id) else {
            f.missing.push(format!("{id}: request gone"));
            continue;
        };
        reviews += req.reviews.len();
        if req.state.is_resolved() {
            resolved += 1;
            match outcomes.get(id) {
                Some(1) => {}
                n => f.outcome.push(format!("{id}: requester told {n:?} times")),
            }
        }
        for ch in &channels {
            let found = roots.get(&(id.clone(), ch.clone()));
            let Some(root) = found.and_then(|v| v.first()) else {
                f.missing.push(format!("{id} in {ch}"));
                continue;
            };
            if found.is_some_and(|v| v.len() > 1) {
                f.duplicates
                    .push(format!("{id} in {ch}: {} roots", found.unwrap().len()));
            }
            let want = status_text(req.state);
            if !root.message.contains(want) {
                f.stale.push(format!("{id} in {ch}: not {want}"));
            }
            let replies = w.mm.thread_replies(&root.id);
            let by_reviewer = |r: &str| replies.iter().filter(|p| p.message.contains(r)).count();
            let ok = replies.len() == req.reviews.len()
                && req.reviews.iter().all(|r| by_reviewer(&r.author) == 1);
            if !ok {
                f.replies.push(format!(
                    "{id} in {ch}: {} replies for {} reviews",
                    replies.len(),
                    req.reviews.len()
                ));
            }
        }
    }
    f.counts.insert("requests", ids.len());
    f.counts.insert("resolved requests", resolved);
    f.counts.insert("reviews", reviews);
    f
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_killed_at_random_converge_to_exactly_one_post_per_recipient() {
    chaos(true, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_mattermost_dedup_killed_processes_still_converge_to_exactly_one_post_per_recipient()
 {
    chaos(false, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_mattermosts_default_rate_limit_killed_processes_still_converge_to_exactly_one_post_per_recipient()
 {
    chaos(true, Some(RateLimit::default())).await;
}

/// One chaos run; `dedup` is Mattermost's `pending_post_id` de-duplication, `rate_limit` its
/// rate limiter throughout.
async fn chaos(dedup: bool, rate_limit: Option<RateLimit>) {
    let _turn = crate::harness::HEAVY.lock().await;
    let limited = rate_limit.is_some();
    let requests: usize = env_or("CHAOS_REQUESTS", if limited { 60 } else { 1000 });
    let seed: u64 = env_or("CHAOS_SEED", 20_250_101);
    let mut rng = StdRng::seed_from_u64(seed);
    let began = Instant::now();
    let w = World::start().await;
    w.mm.set_pending_post_dedup(dedup);
    w.mm.faults().set_rate_limit(rate_limit.clone());
    // Under the limit every call waits its turn: the posts that queued up during the chaos
    // take up to (calls − burst) / rate longer.
    let converge = if limited { CONVERGE * 2 } else { CONVERGE };
    let mut instances: Vec<Instance> = (0..INSTANCES)
        .map(|i| {
            let http = free_port().unwrap();
            let log = w.dir.path().join(format!("i{i}.log"));
            let path = w.dir.path().join(format!("i{i}.toml"));
            std::fs::write(&path, config(&w, http, &log)).unwrap();
            Instance {
                config: path,
                log,
                http,
                process: None,
                starts: 0,
            }
        })
        .collect();
    for i in &mut instances {
        i.start();
    }
    for i in &mut instances {
        i.process
            .as_mut()
            .unwrap()
            .wait_ready(Duration::from_secs(20))
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", tail(&i.log, 20)));
    }

    w.mm.faults().set_error_rate(10.0, 500, seed);
    let start = Instant::now();
    let gap = ARRIVALS / requests.max(1) as u32;
    let mut next_request = start;
    let mut next_kill = start + Duration::from_secs(2);
    let mut next_cut = start + Duration::from_secs(5);
    let mut next_429 = start + Duration::from_millis(1500);
    let rotate_at = start + Duration::from_secs(8);
    let mut rotated: Option<(String, usize)> = None;
    let mut dropped_at: Option<usize> = None;
    let mut ids: Vec<String> = Vec::new();
    let mut waiting: BTreeMap<String, Vec<PlannedReview>> = BTreeMap::new();
    let mut planned: Vec<DueReview> = Vec::new();
    let mut seen_posts = w.mm.post_count();
    let reviewer1_dm = || w.dm(REVIEWER1);
    let (mut kills, mut cuts, mut bursts, mut accepted, mut refused) = (0, 0, 0, 0, 0);
    let mut exits = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    // Until the chaos is over and every review whose post appeared is made (bounded: a post
    // that never appears fails the checks below instead).
    // Under the rate limit posts appear later, so reviewers keep watching for them (bounded
    // the same way).
    while start.elapsed() < CHAOS
        || (!planned.is_empty() && start.elapsed() < CHAOS + Duration::from_secs(10))
        || (limited
            && waiting.values().any(|plan| !plan.is_empty())
            && start.elapsed() < CHAOS + converge / 2)
    {
        tick.tick().await;
        let now = Instant::now();
        while ids.len() < requests && next_request <= now {
            let mut req = NewRequest::new(REQUESTER, &["editor"])
                .reason(&format!("chaos {}", ids.len()))
                .suggested_reviewers(&[REVIEWER1]);
            let threshold = rng.random_range(1..=2);
            req.thresholds = Some(vec![Threshold {
                name: "chaos".into(),
                approve: threshold,
                deny: threshold,
            }]);
            let id = w.tp.create_request(req).id;
            // Zero, one or two reviews, each approve or deny, up to 3 s after the post.
            let mut plan = Vec::new();
            for reviewer in [REVIEWER1, REVIEWER2] {
                if rng.random_bool(0.7) {
                    plan.push(PlannedReview {
                        reviewer,
                        state: if rng.random_bool(0.7) {
                            RequestState::Approved
                        } else {
                            RequestState::Denied
                        },
                        delay: Duration::from_millis(rng.random_range(0..3000)),
                    });
                }
            }
            waiting.insert(id.clone(), plan);
            ids.push(id);
            next_request += gap;
        }
        // Reviewers act on what they see: a new root post starts its reviewer's clock.
        let new_posts = w.mm.post_times(seen_posts);
        seen_posts += new_posts.len();
        for (post_id, _) in new_posts {
            let Some(post) = w.mm.post(&post_id).filter(|p| p.root_id.is_empty()) else {
                continue;
            };
            let Some(id) = request_id(&post) else {
                continue;
            };
            let viewer = if Some(&post.channel_id) == reviewer1_dm().as_ref() {
                REVIEWER1
            } else if post.channel_id == w.channel_id {
                REVIEWER2
            } else {
                continue;
            };
            if let Some(plan) = waiting.get_mut(&id) {
                plan.retain(|r| {
                    if r.reviewer != viewer {
                        return true;
                    }
                    planned.push(DueReview {
                        due: now + r.delay,
                        id: id.clone(),
                        reviewer: r.reviewer,
                        state: r.state,
                    });
                    false
                });
            }
        }
        let (due, later): (Vec<_>, Vec<_>) = planned.into_iter().partition(|r| r.due <= now);
        planned = later;
        for r in due {
            let review = NewReview {
                author: r.reviewer.into(),
                proposed_state: r.state,
                reason: format!("chaos review by {}", r.reviewer),
                on_behalf: false,
            };
            // Refused once the request is resolved: that is Teleport's call, not a failure.
            match w.tp.submit_review_as(r.reviewer, &r.id, &review) {
                Ok(_) => accepted += 1,
                Err(_) => refused += 1,
            }
        }
        if start.elapsed() >= CHAOS {
            continue;
        }
        // A supervisor (systemd, Kubernetes) restarts an instance that exits by itself.
        for i in &mut instances {
            if i.process.as_mut().is_some_and(|p| p.exited().is_some()) {
                exits += 1;
                i.start();
            }
        }
        if now >= next_kill {
            let i = rng.random_range(0..INSTANCES);
            if let Some(p) = instances[i].process.take() {
                p.kill().await;
            }
            kills += 1;
            instances[i].start();
            next_kill = now + Duration::from_millis(rng.random_range(1500..2500));
        }
        if now >= next_cut {
            w.tp.faults().end_watch_streams();
            cuts += 1;
            next_cut = now + Duration::from_secs(5);
        }
        // With the limiter on, its own 429s replace the injected bursts (which count calls,
        // not time: at the limit's pace 30 calls last seconds, and bursts every 2-4 s would
        // refuse nearly everything).
        if !limited && now >= next_429 {
            w.mm.faults().rate_limit_next(None, 30, 1);
            bursts += 1;
            next_429 = now + Duration::from_millis(rng.random_range(2000..4000));
        }
        if rotated.is_none() && now >= rotate_at {
            let new = w.tp.write_identity(PLUGIN_USER, &w.identity).unwrap();
            rotated = Some((new.serial, w.tp.faults().connections().len()));
        }
        // Once every instance has had time to re-read the file (1 s interval), break every
        // connection: whatever reconnects must present the new certificate.
        if dropped_at.is_none() && now >= rotate_at + Duration::from_secs(3) {
            dropped_at = Some(w.tp.faults().connections().len());
            w.tp.faults().drop_connections();
        }
    }
    w.mm.faults().clear();
    let chaos_secs = start.elapsed().as_secs_f64();

    // Converge: all three up, no more faults.
    for i in &mut instances {
        if i.process.as_mut().is_none_or(|p| p.exited().is_some()) {
            i.start();
        }
    }
    let deadline = Instant::now() + converge;
    let findings = loop {
        let f = inspect(&w, &ids);
        if f.ok() || Instant::now() > deadline {
            break f;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let converge_secs = start.elapsed().as_secs_f64() - chaos_secs;
    // Nothing more may arrive once converged (a late duplicate would show here).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let findings = if findings.ok() {
        inspect(&w, &ids)
    } else {
        findings
    };

    let starts: Vec<usize> = instances.iter().map(|i| i.starts).collect();
    let limit = rate_limit.map_or("off".into(), |l| {
        format!("{}/s burst {}", l.per_sec, l.max_burst)
    });
    let calls = w.mm.requests();
    println!(
        "chaos (seed {seed}, pending_post_id de-duplication {}, rate limit {limit}): {} requests, {accepted} reviews accepted ({refused} refused as already resolved); \
         {kills} SIGKILLs, {exits} exits by themselves (starts per instance {starts:?}), {cuts} watch cuts, {bursts} bursts of 429, \
         10% of Mattermost calls failed with 500, identity rotated once; chaos {chaos_secs:.1} s, converged in {converge_secs:.1} s, total {:.1} s",
        if dedup { "on" } else { "off" },
        ids.len(),
        began.elapsed().as_secs_f64()
    );
    println!("counts: {:?}", findings.counts);
    println!(
        "Mattermost calls {}, answered 429 {}",
        calls.len(),
        calls.iter().filter(|r| r.status == 429).count()
    );
    println!(
        "missing {}, duplicates {}, stale {}, wrong replies {}, wrong requester messages {}",
        findings.missing.len(),
        findings.duplicates.len(),
        findings.stale.len(),
        findings.replies.len(),
        findings.outcome.len()
    );
    if !findings.ok() {
        for i in &instances {
            eprintln!("--- {}:\n{}", i.log.display(), tail(&i.log, 40));
        }
        for (what, list) in [
            ("missing", &findings.missing),
            ("duplicates", &findings.duplicates),
            ("stale", &findings.stale),
            ("replies", &findings.replies),
            ("requester", &findings.outcome),
        ] {
            eprintln!("{what}: {:?}", &list[..list.len().min(10)]);
        }
        for id in findings.missing.iter().chain(&findings.stale).take(3) {
            let id = id.split([' ', ':']).next().unwrap();
            let raw = w.plugin_data(id);
            eprintln!(
                "plugin data of {id}: {:?}\n  claim {:?}, owed {:?}",
                raw.as_ref().map(PluginData::decode),
                raw.as_ref().and_then(|m| m.get("claim")),
                raw.as_ref().and_then(|m| m.get("owed_recipients")),
            );
            for i in &instances {
                let log = std::fs::read_to_string(&i.log).unwrap_or_default();
                for line in log.lines().filter(|l| l.contains(id)) {
                    eprintln!("  {}: {line}", i.log.display());
                }
            }
        }
    }
    assert!(
        findings.ok(),
        "the posts did not converge within {converge:?}"
    );
    assert!(
        kills >= 8 && cuts >= 3,
        "not enough chaos: {kills} kills, {cuts} cuts"
    );

    // The rotated identity: after the refresh and the dropped connections, only the new
    // certificate is presented.
    let (serial, _) = rotated.expect("identity rotated");
    let after: Vec<_> = w.tp.faults().connections()[dropped_at.unwrap()..]
        .iter()
        .filter(|c| c.user == PLUGIN_USER)
        .cloned()
        .collect();
    assert!(after.len() >= INSTANCES, "{after:?}");
    assert!(
        after.iter().all(|c| c.serial == serial),
        "a connection after the rotation used an old certificate: {after:?}"
    );

    for i in instances {
        if let Some(p) = i.process {
            p.terminate(Duration::from_secs(20)).await.unwrap();
        }
    }
}
