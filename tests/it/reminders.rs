//! Reminders, escalation and requester notices end to end: the service against both
//! simulators over real sockets, with a schedule compressed to seconds (the service runs in
//! real time here; the schedule's arithmetic is unit-tested with paused time).

use std::collections::BTreeMap;
use std::time::Duration;

use teleport_mattermost::app::Options;
use teleport_mattermost_sim::mattermost::SimPost;
use teleport_mattermost_sim::teleport::NewRequest;
use teleport_mattermost_sim::teleport::fixtures::{REQUESTER, REVIEWER2};
use time::OffsetDateTime;

use crate::harness::{Service, WAIT, World};

const SECOND: Duration = Duration::from_secs(1);

/// Requests go to the channel, and to reviewer2's DM as the suggested reviewer.
fn config(reminders: &str) -> String {
    format!(
        "[role_to_recipients]\n\"*\" = [\"team-llama/channel-llama\"]\n\n[reminders]\n{reminders}\n"
    )
}

fn request() -> NewRequest {
    NewRequest::new(REQUESTER, &["editor"])
        .reason("incident at 02:00")
        .suggested_reviewers(&[REVIEWER2])
}

/// The root post of `id` in `channel`, once it is there.
async fn root(w: &World, channel: &str, id: &str) -> SimPost {
    let (ch, rid) = (channel.to_string(), id.to_string());
    w.mm.wait_for(WAIT, move |sim| {
        sim.posts_in(&ch)
            .into_iter()
            .find(|p| p.root_id.is_empty() && p.message.contains(&rid))
    })
    .await
    .unwrap_or_else(|_| panic!("no root post of {id} in {channel}"))
}

fn reminders_in(w: &World, root: &SimPost) -> Vec<SimPost> {
    w.mm.thread_replies(&root.id)
        .into_iter()
        .filter(|p| p.message.contains("**Reminder**"))
        .collect()
}

/// Waits until the thread of `root` has `n` reminders.
async fn reminders(w: &World, root: &SimPost, n: usize) -> Vec<SimPost> {
    let id = root.id.clone();
    w.mm.wait_for(WAIT, move |sim| {
        let got: Vec<SimPost> = sim
            .thread_replies(&id)
            .into_iter()
            .filter(|p| p.message.contains("**Reminder**"))
            .collect();
        (got.len() >= n).then_some(got)
    })
    .await
    .unwrap_or_else(|_| panic!("fewer than {n} reminders: {:?}", reminders_in(w, root)))
}

fn count(svc: &Service, kind: &str, outcome: &str) -> u64 {
    let needle =
        format!("teleport_mattermost_reminders_total{{kind=\"{kind}\",outcome=\"{outcome}\"}} ");
    svc.metrics
        .render()
        .lines()
        .find_map(|l| l.strip_prefix(&needle)?.parse().ok())
        .unwrap_or(0)
}

fn notices(w: &World, id: &str) -> String {
    w.plugin_data(id)
        .and_then(|d| d.get("notices").cloned())
        .unwrap_or_default()
}

/// A channel the bot is in, for escalations.
fn oncall(w: &World) -> String {
    let ch = w.mm.add_channel(&w.team_id, "oncall");
    w.mm.add_channel_member(&ch, w.mm.bot_id());
    ch
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminders_reply_in_every_thread_at_each_delay_and_mark_the_root() {
    let w = World::start().await;
    let svc = w.service(&config("remind_after = [\"1s\", \"2s\"]")).await;
    let created = std::time::Instant::now();
    let id = w.tp.create_request(request()).id;
    let channel_root = root(&w, &w.channel_id, &id).await;
    let dm = w.dm(REVIEWER2).expect("the suggested reviewer's DM");
    let dm_root = root(&w, &dm, &id).await;
    let got = reminders(&w, &channel_root, 2).await;
    assert!(
        created.elapsed() >= 2 * SECOND,
        "the second reminder came early"
    );
    assert!(got[0].message.contains("waiting 1s"), "{}", got[0].message);
    assert!(got[1].message.contains("waiting 2s"), "{}", got[1].message);
    for m in &got {
        assert!(m.message.contains("requester"), "{}", m.message);
        assert!(
            m.message.contains("@reviewer2"),
            "suggested reviewer mentioned: {}",
            m.message
        );
        assert!(
            !m.message.contains("@here"),
            "no channel mention by default"
        );
    }
    reminders(&w, &dm_root, 2).await;
    w.mm.wait_for(WAIT, |sim| {
        sim.post(&channel_root.id)
            .filter(|p| p.message.contains("⏰ waiting 2s"))
    })
    .await
    .expect("the root shows how long the request has waited");
    w.data_when(&id, |d| d.notices.reminded == Some(2)).await;
    assert_eq!(notices(&w, &id), "reminded:2");
    tokio::time::sleep(SECOND).await;
    assert_eq!(
        reminders_in(&w, &channel_root).len(),
        2,
        "no third reminder"
    );
    assert_eq!(
        count(&svc, "reminder", "sent"),
        4,
        "two threads, two reminders"
    );
    svc.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalation_is_posted_to_the_escalation_channel_and_updated_on_resolution() {
    let w = World::start().await;
    let oncall = oncall(&w);
    let svc = w
        .service(&config(
            "escalate_after = \"1s\"\nescalate_to = [\"team-llama/oncall\"]\nmention_channel = true\nremind_after = [\"1s\"]",
        ))
        .await;
    let id = w.tp.create_request(request()).id;
    let first = root(&w, &w.channel_id, &id).await;
    assert!(w.mm.posts_in(&oncall).is_empty(), "not escalated at once");
    let escalated = root(&w, &oncall, &id).await;
    assert!(
        escalated.message.contains("escalated"),
        "{}",
        escalated.message
    );
    let reply = reminders(&w, &first, 1).await;
    assert!(reply[0].message.contains("@here"), "{}", reply[0].message);
    let data = w
        .data_when(&id, |d| d.notices.escalated && d.notices.reminded.is_some())
        .await;
    assert!(
        data.messages.iter().any(|m| m.post_id == escalated.id),
        "the escalation joins the posts: {:?}",
        data.messages
    );
    w.tp.approve(&id, "fixed").unwrap();
    let id2 = escalated.id.clone();
    w.mm.wait_for(WAIT, move |sim| {
        sim.post(&id2).filter(|p| p.message.contains("✅ APPROVED"))
    })
    .await
    .expect("the escalation post shows the outcome");
    assert_eq!(count(&svc, "escalation", "sent"), 1);
    svc.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_sent_after_approval_denial_or_deletion() {
    let w = World::start().await;
    let oncall = oncall(&w);
    let svc = w
        .service(&config(
            "remind_after = [\"2s\"]\nescalate_after = \"2s\"\nescalate_to = [\"team-llama/oncall\"]\nexpiry_notice = \"2s\"",
        ))
        .await;
    let soon = OffsetDateTime::now_utc() + time::Duration::seconds(4);
    let ids: Vec<String> = (0..3)
        .map(|_| {
            let mut r = request();
            r.access_expiry = Some(soon);
            w.tp.create_request(r).id
        })
        .collect();
    let mut roots = Vec::new();
    for id in &ids {
        roots.push(root(&w, &w.channel_id, id).await);
    }
    w.tp.approve(&ids[0], "ok").unwrap();
    w.tp.deny(&ids[1], "no").unwrap();
    w.tp.delete_request(&ids[2]);
    for id in &ids[..2] {
        w.data_when(id, |d| {
            d.resolution != teleport_mattermost::access::Resolution::Unresolved
        })
        .await;
    }
    tokio::time::sleep(3 * SECOND).await;
    for r in &roots {
        assert!(
            reminders_in(&w, r).is_empty(),
            "a reminder after resolution"
        );
    }
    assert!(
        w.mm.posts_in(&oncall).is_empty(),
        "an escalation after resolution"
    );
    let requester_dm = w
        .dm(REQUESTER)
        .map(|c| w.mm.posts_in(&c))
        .unwrap_or_default();
    assert!(
        !requester_dm
            .iter()
            .any(|p| p.message.contains("expires in")),
        "a pending-expiry notice after resolution"
    );
    for kind in ["reminder", "escalation"] {
        assert_eq!(count(&svc, kind, "sent"), 0, "{kind}");
    }
    svc.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_send_each_notice_once() {
    let w = World::start().await;
    let oncall = oncall(&w);
    let text = config(
        "remind_after = [\"1s\", \"2s\"]\nescalate_after = \"1s\"\nescalate_to = [\"team-llama/oncall\"]",
    );
    let mut services = Vec::new();
    for i in 1..=3 {
        let options = Options {
            replica: Some(format!("r{i}")),
            ..Options::default()
        };
        services.push(Service::start(w.config(&text), options).await);
    }
    for s in &services {
        s.ready().await;
    }
    let ids: Vec<String> = (0..4).map(|_| w.tp.create_request(request()).id).collect();
    for id in &ids {
        w.data_when(id, |d| d.notices.reminded == Some(2) && d.notices.escalated)
            .await;
    }
    // Give late duplicates their chance.
    tokio::time::sleep(SECOND).await;
    let mut per_thread = BTreeMap::new();
    for id in &ids {
        let r = root(&w, &w.channel_id, id).await;
        per_thread.insert(id.clone(), reminders_in(&w, &r).len());
    }
    assert!(per_thread.values().all(|n| *n == 2), "{per_thread:?}");
    let escalations =
        w.mm.posts_in(&oncall)
            .into_iter()
            .filter(|p| p.root_id.is_empty())
            .count();
    assert_eq!(escalations, ids.len());
    let sent: u64 = services.iter().map(|s| count(s, "reminder", "sent")).sum();
    // The 1 s reminder goes to the channel and the DM; the 2 s one to the escalation too.
    assert_eq!(sent, 5 * ids.len() as u64, "each reminder once per thread");
    let escalated: u64 = services
        .iter()
        .map(|s| count(s, "escalation", "sent"))
        .sum();
    assert_eq!(escalated, ids.len() as u64);
    for s in services {
        s.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_the_schedule_sends_a_missed_reminder_once_late_and_never_resends() {
    let w = World::start().await;
    let text = config("remind_after = [\"1s\", \"2s\", \"8s\"]");
    let first = w.service(&text).await;
    let created = std::time::Instant::now();
    let id = w.tp.create_request(request()).id;
    let channel_root = root(&w, &w.channel_id, &id).await;
    first.stop().await.unwrap();
    assert!(
        created.elapsed() < SECOND,
        "the first service stopped before the first reminder"
    );
    // Down while the 1 s and 2 s reminders come due (the 8 s one leaves a loaded machine
    // time to start the next service before it too is due).
    tokio::time::sleep(3 * SECOND - created.elapsed()).await;
    let second = w.service(&text).await;
    let late = reminders(&w, &channel_root, 1).await;
    assert_eq!(late.len(), 1);
    assert!(
        late[0].message.contains("waiting 2s"),
        "{}",
        late[0].message
    );
    w.data_when(&id, |d| d.notices.reminded == Some(2)).await;
    second.stop().await.unwrap();
    // Restarted again before the 8 s one: nothing is sent twice, the schedule goes on.
    let third = w.service(&text).await;
    let all = reminders(&w, &channel_root, 2).await;
    assert!(created.elapsed() >= 8 * SECOND);
    assert!(all[1].message.contains("waiting 8s"), "{}", all[1].message);
    tokio::time::sleep(SECOND).await;
    assert_eq!(
        reminders_in(&w, &channel_root).len(),
        2,
        "{:?}",
        reminders_in(&w, &channel_root)
    );
    third.stop().await.unwrap();
}

/// The requester's DMs that are expiry notices.
fn expiry_notices(w: &World) -> Vec<String> {
    w.dm(REQUESTER)
        .map(|c| w.mm.posts_in(&c))
        .unwrap_or_default()
        .into_iter()
        .map(|p| p.message)
        .filter(|m| {
            m.starts_with("⌛ Your access request `") || m.starts_with("⌛ The access granted")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_requester_is_told_before_the_request_expires_and_before_access_ends() {
    let w = World::start().await;
    let svc = w.service(&config("expiry_notice = \"2s\"")).await;
    let at = OffsetDateTime::now_utc() + time::Duration::seconds(4);
    let mut pending = request();
    pending.access_expiry = Some(at);
    let pending = w.tp.create_request(pending).id;
    let mut granted = request();
    granted.access_expiry = Some(at);
    let granted = w.tp.create_request(granted).id;
    root(&w, &w.channel_id, &granted).await;
    w.tp.approve(&granted, "go").unwrap();
    let got =
        w.mm.wait_for(WAIT, |_| {
            let n = expiry_notices(&w);
            (n.len() >= 2).then_some(n)
        })
        .await
        .expect("two notices");
    assert!(
        OffsetDateTime::now_utc() >= at - time::Duration::seconds(2),
        "not before the lead time"
    );
    let expiring = got
        .iter()
        .find(|m| m.contains(&pending))
        .expect("pending notice");
    assert!(
        expiring.contains("nobody has reviewed it yet"),
        "{expiring}"
    );
    assert!(
        expiring.contains("tsh request create --roles editor"),
        "{expiring}"
    );
    let ending = got
        .iter()
        .find(|m| m.contains(&granted))
        .expect("access notice");
    assert!(ending.contains("ends in"), "{ending}");
    assert!(
        ending.contains("tsh request create --roles editor"),
        "{ending}"
    );
    tokio::time::sleep(SECOND).await;
    assert_eq!(expiry_notices(&w).len(), 2, "each notice once");
    assert_eq!(count(&svc, "expiry_notice", "sent"), 2);
    svc.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_requester_notice_when_notify_requester_is_off() {
    let w = World::start().await;
    let text = w
        .config_text(&config("expiry_notice = \"1s\""))
        .replace("[mattermost]\n", "[mattermost]\nnotify_requester = false\n");
    let config = teleport_mattermost::config::Config::from_toml(&text).unwrap();
    let svc = Service::start(config, Options::default()).await;
    svc.ready().await;
    let mut r = request();
    r.access_expiry = Some(OffsetDateTime::now_utc() + time::Duration::seconds(2));
    let id = w.tp.create_request(r).id;
    root(&w, &w.channel_id, &id).await;
    tokio::time::sleep(2 * SECOND).await;
    assert!(expiry_notices(&w).is_empty());
    assert_eq!(notices(&w, &id), "");
    svc.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_shows_the_next_reminder_the_escalation_and_who_gets_it() {
    let w = World::start().await;
    oncall(&w);
    let svc = w
        .review_service_with(crate::harness::ReviewSetup {
            extra: config(
                "remind_after = [\"1s\", \"1h\"]\nescalate_after = \"2h\"\nescalate_to = [\"team-llama/oncall\", \"@lead\"]\n\
                 [reminders.roles.editor]\nescalate_after = \"90m\"",
            ),
            ..Default::default()
        })
        .await;
    let id = w.tp.create_request(request()).id;
    let r = root(&w, &w.channel_id, &id).await;
    reminders(&w, &r, 1).await;
    w.data_when(&id, |d| d.notices.reminded == Some(1)).await;
    let text = crate::review::answer(
        &crate::review::slash(&w, &svc, REVIEWER2, &format!("explain {id}")).await,
    );
    assert!(text.contains("**Next reminder**: "), "{text}");
    assert!(
        text.contains("(in 59m)"),
        "the 1 h reminder is next: {text}"
    );
    assert!(
        text.contains("(in 1h29m) to `team-llama/oncall`, `@lead`"),
        "the role's escalation, and who gets it: {text}"
    );
    assert!(text.contains("**Requester notice**: "), "{text}");
    svc.stop().await.unwrap();
}
