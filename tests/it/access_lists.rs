//! Access list review reminders end to end: the service against the Teleport simulator
//! (access lists with paging, plugin data on `access_list`) and the Mattermost simulator,
//! over real sockets, with the reminder clock injected so weeks pass without waiting.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use teleport_mattermost::access_lists::Clock;
use teleport_mattermost::app::Options;
use teleport_mattermost_sim::teleport::fixtures::{PLUGIN_USER, REVIEWER1, REVIEWER2};
use teleport_mattermost_sim::teleport::{SimAccessList, SimOptions, SimRole};
use time::OffsetDateTime;
use time::macros::datetime;

use crate::harness::{Service, WAIT, World};

/// Reminders looked at every 50 ms, so a test sees many runs quickly.
const FAST: &str = "[access_lists]\ninterval = \"1s\"\n";
/// The due date of the lists; reminders open two weeks before.
const DUE: OffsetDateTime = datetime!(2026-12-20 00:00 UTC);
const OPENS: OffsetDateTime = datetime!(2026-12-06 00:00 UTC);
const DAY: time::Duration = time::Duration::days(1);

/// A clock the test moves.
#[derive(Clone)]
struct TestClock(Arc<Mutex<OffsetDateTime>>);

impl TestClock {
    fn at(t: OffsetDateTime) -> Self {
        Self(Arc::new(Mutex::new(t)))
    }
    fn set(&self, t: OffsetDateTime) {
        *self.0.lock().unwrap() = t;
    }
    fn options(&self) -> Options {
        let me = self.clone();
        Options {
            clock: Clock::new(move || *me.0.lock().unwrap()),
            ..Default::default()
        }
    }
}

/// A world whose plugin role may also list access lists.
async fn world_with(opts: SimOptions) -> World {
    let w = World::start_with(opts).await;
    w.tp.add_role(SimRole::new("access-list-reader").allow(&["access_list"], &["list", "read"]));
    let mut plugin = w.tp.user(PLUGIN_USER).unwrap();
    plugin.roles.push("access-list-reader".into());
    w.tp.upsert_user(plugin);
    w
}

async fn world() -> World {
    world_with(SimOptions::default()).await
}

async fn service(w: &World, clock: &TestClock) -> Service {
    let s = Service::start(w.config(FAST), clock.options()).await;
    s.ready().await;
    s
}

/// Calls of ListAccessLists the service made, from its own call metrics.
fn list_calls(svc: &Service) -> u64 {
    svc.metrics
        .render()
        .lines()
        .filter(|l| {
            l.starts_with("teleport_mattermost_teleport_call_duration_seconds_count")
                && l.contains("call=\"ListAccessLists\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Lets the service look at least `n` more times.
async fn runs(svc: &Service, n: u64) {
    calls_reach(svc, list_calls(svc) + n).await;
}

/// Waits until the service has listed access lists `target` times in all.
async fn calls_reach(svc: &Service, target: u64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while list_calls(svc) < target {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the reminder loop stalled"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn reminder_count(svc: &Service, outcome: &str) -> u64 {
    let needle =
        format!("teleport_mattermost_access_list_reminders_total{{outcome=\"{outcome}\"}} ");
    svc.metrics
        .render()
        .lines()
        .find_map(|l| l.strip_prefix(&needle)?.parse().ok())
        .unwrap_or(0)
}

/// Reminders in a cast member's DM channel.
fn dms(w: &World, user: &str) -> Vec<String> {
    w.dm(user)
        .map(|c| {
            w.mm.posts_in(&c)
                .into_iter()
                .map(|p| p.message)
                .filter(|m| m.contains("Access list review reminder"))
                .collect()
        })
        .unwrap_or_default()
}

fn notified(w: &World, list: &str) -> BTreeMap<String, String> {
    w.tp.access_list_plugin_data(list, "mattermost")
        .and_then(|d| d.get("user_notifications").cloned())
        .map(|v| serde_json::from_str(&v).unwrap())
        .unwrap_or_default()
}

fn list() -> SimAccessList {
    SimAccessList::new("prod-admins", &[REVIEWER1, REVIEWER2], DUE)
        .title("Production admins")
        .members(7)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_not_yet_due_gets_no_reminder() {
    let w = world().await;
    w.tp.upsert_access_list(list());
    let clock = TestClock::at(OPENS - DAY);
    let svc = service(&w, &clock).await;
    runs(&svc, 3).await;
    assert!(dms(&w, REVIEWER1).is_empty() && dms(&w, REVIEWER2).is_empty());
    assert_eq!(
        w.tp.access_list_plugin_data("prod-admins", "mattermost"),
        None
    );
    svc.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_are_reminded_once_per_weekly_window() {
    let w = world().await;
    w.tp.upsert_access_list(list());
    let clock = TestClock::at(OPENS + DAY);
    let svc = service(&w, &clock).await;
    // Due: one DM per owner (REVIEWER1 through the trait binding, both have e-mail names).
    runs(&svc, 3).await;
    for owner in [REVIEWER1, REVIEWER2] {
        let got = dms(&w, owner);
        assert_eq!(got.len(), 1, "{owner}: {got:?}");
        let text = &got[0];
        assert!(
            text.contains("Production admins") && text.contains("prod-admins"),
            "{text}"
        );
        assert!(text.contains("**Due:** 2026-12-20 (in 13 days)"), "{text}");
        assert!(text.contains("**Members:** 7"), "{text}");
        assert!(
            text.contains("https://teleport.sim.test/web/accesslists/prod-admins"),
            "{text}"
        );
        assert!(
            text.contains("tctl acl reviews create prod-admins"),
            "{text}"
        );
    }
    let data = notified(&w, "prod-admins");
    assert_eq!(
        data.keys().collect::<Vec<_>>(),
        vec![REVIEWER1, REVIEWER2],
        "the Go plugin's encoding: owner → time"
    );
    assert_eq!(data[REVIEWER1], "2026-12-07T00:00:00Z");
    // Later in the same window: nothing new.
    clock.set(OPENS + DAY * 6);
    runs(&svc, 3).await;
    assert_eq!(dms(&w, REVIEWER1).len(), 1);
    assert_eq!(dms(&w, REVIEWER2).len(), 1);
    // The next week: once more each.
    clock.set(OPENS + DAY * 8);
    runs(&svc, 3).await;
    assert_eq!(dms(&w, REVIEWER1).len(), 2);
    assert_eq!(dms(&w, REVIEWER2).len(), 2);
    assert_eq!(reminder_count(&svc, "sent"), 4);
    svc.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_history_written_by_the_go_plugin_is_honoured() {
    let w = world().await;
    w.tp.upsert_access_list(list());
    // What the Go plugin stored after reminding REVIEWER1 this week (RFC 3339 with nanos).
    let history = r#"{"reviewer1@example.com":"2026-12-06T10:00:00.123456789Z","reviewer2@example.com":"0001-01-01T00:00:00Z"}"#;
    let set = BTreeMap::from([("user_notifications".to_string(), history.to_string())]);
    let expect = BTreeMap::from([("user_notifications".to_string(), String::new())]);
    w.other_program()
        .update_plugin_data_of("access_list", "mattermost", "prod-admins", set, expect)
        .await
        .unwrap();
    let clock = TestClock::at(OPENS + DAY);
    let svc = service(&w, &clock).await;
    runs(&svc, 3).await;
    assert!(dms(&w, REVIEWER1).is_empty(), "already reminded this week");
    assert_eq!(dms(&w, REVIEWER2).len(), 1, "the zero time means never");
    svc.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_send_one_reminder_per_owner() {
    let w = world().await;
    w.tp.upsert_access_list(list());
    let clock = TestClock::at(OPENS + DAY);
    let a = service(&w, &clock).await;
    let b = service(&w, &clock).await;
    runs(&a, 4).await;
    runs(&b, 4).await;
    assert_eq!(dms(&w, REVIEWER1).len(), 1);
    assert_eq!(dms(&w, REVIEWER2).len(), 1);
    assert_eq!(reminder_count(&a, "sent") + reminder_count(&b, "sent"), 2);
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_owner_is_logged_and_the_others_are_reminded() {
    let w = world().await;
    // "ghost" is neither an e-mail nor bound by the trait; the nested list is skipped.
    let mut l = SimAccessList::new("db-readers", &["ghost", REVIEWER2], DUE);
    l.list_owners.push("other-list".into());
    w.tp.upsert_access_list(l);
    let clock = TestClock::at(OPENS + DAY);
    let svc = service(&w, &clock).await;
    runs(&svc, 4).await;
    assert_eq!(dms(&w, REVIEWER2).len(), 1);
    assert_eq!(
        reminder_count(&svc, "unresolved"),
        1,
        "logged once per window"
    );
    let data = notified(&w, "db-readers");
    assert_eq!(data.keys().collect::<Vec<_>>(), vec![REVIEWER2]);
    svc.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_are_read_page_by_page() {
    let w = world().await;
    // More lists than one page holds (200), each due, owned by REVIEWER2.
    for i in 0..205 {
        w.tp.upsert_access_list(SimAccessList::new(
            &format!("list-{i:03}"),
            &[REVIEWER2],
            DUE,
        ));
    }
    let clock = TestClock::at(OPENS + DAY);
    let svc = service(&w, &clock).await;
    let deadline = tokio::time::Instant::now() + WAIT * 3;
    while dms(&w, REVIEWER2).len() < 205 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} reminders",
            dms(&w, REVIEWER2).len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !notified(&w, "list-204").is_empty(),
        "the second page was read"
    );
    svc.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_without_access_lists_stops_the_loop_and_the_service_stays_up() {
    let w = world_with(SimOptions {
        access_lists: false,
        ..SimOptions::default()
    })
    .await;
    let clock = TestClock::at(OPENS + DAY);
    let svc = service(&w, &clock).await;
    calls_reach(&svc, 1).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(list_calls(&svc), 1, "asked once, then stopped");
    assert!(svc.readiness.is_ready());
    svc.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extra_recipients_get_each_reminder_once() {
    let w = world().await;
    w.tp.upsert_access_list(SimAccessList::new("prod-admins", &[REVIEWER2], DUE));
    let clock = TestClock::at(OPENS + DAY);
    let cfg = format!("{FAST}recipients = [\"team-llama/channel-llama\"]\n");
    let svc = Service::start(w.config(&cfg), clock.options()).await;
    svc.ready().await;
    runs(&svc, 3).await;
    let in_channel =
        w.mm.posts_in(&w.channel_id)
            .into_iter()
            .filter(|p| p.message.contains("Access list review reminder"))
            .count();
    assert_eq!(in_channel, 1);
    assert_eq!(dms(&w, REVIEWER2).len(), 1);
    assert_eq!(
        reminder_count(&svc, "sent"),
        2,
        "posted once each, not de-duplicated"
    );
    svc.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_says_whether_reminders_are_on_and_lists_unreachable_owners() {
    let w = World::start().await;
    w.tp.upsert_access_list(SimAccessList::new("db-readers", &["ghost", REVIEWER2], DUE));
    // The standard plugin role may not list access lists: off, and what to add.
    let text = teleport_mattermost::check::run(&w.config("")).await.text();
    assert!(text.contains("review reminders are off"), "{text}");
    assert!(
        text.contains("resources [access_list], verbs [list, read]"),
        "{text}"
    );
    let w = world().await;
    w.tp.upsert_access_list(SimAccessList::new("db-readers", &["ghost", REVIEWER2], DUE));
    let report = teleport_mattermost::check::run(&w.config("")).await;
    let text = report.text();
    assert!(
        text.contains("review reminders are on: 1 lists, 1 owners reachable"),
        "{text}"
    );
    assert!(
        text.contains("owner \"ghost\" of access list \"db-readers\""),
        "{text}"
    );
    assert!(
        text.contains("may update plugin data on access lists"),
        "{text}"
    );
    // Unimplemented: off, and said so.
    let w = world_with(SimOptions {
        access_lists: false,
        ..SimOptions::default()
    })
    .await;
    let text = teleport_mattermost::check::run(&w.config("")).await.text();
    assert!(text.contains("has no access list API"), "{text}");
}
