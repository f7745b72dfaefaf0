//! Security properties end to end: the logs of a full run hold no secret; the HTTP server
//! keeps answering health checks under a flood of bad requests and its body limit holds;
//! signed button contexts and dialog states cannot be forged or altered (property tests).

use std::path::Path;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use secrecy::SecretString;
use teleport_mattermost::access::{RequestState, Threshold};
use teleport_mattermost::signing::{Action, ButtonContext, DialogState, SignatureError, Signer};
use teleport_mattermost::teleport::client::NewReview;
use teleport_mattermost_sim::process::{ServiceProcess, free_port};
use teleport_mattermost_sim::teleport::NewRequest;
use teleport_mattermost_sim::teleport::fixtures::{PLUGIN_USER, REQUESTER, REVIEWER1};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{WAIT, World};

const BIN: &str = env!("CARGO_BIN_EXE_teleport-mattermost");
const SIGNING_SECRET: &str = "f3c1d2e4b5a6978877665544332211aa00bbccddeeff1029384756abcdef0123";
const COMMAND_TOKEN: &str = "cmdtok9x8y7w6v5u4t3s2r1q0p";

/// Every 40-character window of the base64 body of a PEM block, within each line and
/// across lines: any of them in a log means key material leaked.
fn pem_windows(pem: &str) -> Vec<String> {
    let lines: Vec<&str> = pem
        .lines()
        .filter(|l| !l.starts_with("-----") && !l.trim().is_empty())
        .collect();
    let joined: String = lines.concat();
    let windows = |s: &str| -> Vec<String> {
        let chars: Vec<char> = s.chars().collect();
        chars
            .windows(40)
            .map(|w| w.iter().collect::<String>())
            .collect()
    };
    let mut out = windows(&joined);
    for l in lines {
        out.extend(windows(l));
    }
    out.sort();
    out.dedup();
    out
}

async fn secrets_never_reach_the_log(env: &[(&str, &str)]) {
    let w = World::start().await;
    let issued = w.tp.write_identity(PLUGIN_USER, &w.identity).unwrap();
    let http = free_port().unwrap();
    let log = w.dir.path().join("service.log");
    let config = w.dir.path().join("service.toml");
    std::fs::write(
        &config,
        format!(
            "[teleport]\naddr = \"{}\"\nidentity = {:?}\n\n[mattermost]\nurl = \"{}\"\ntoken = \"{}\"\n\n\
             [role_to_recipients]\n\"*\" = [\"team-llama/channel-llama\"]\n\n\
             [log]\noutput = {log:?}\nseverity = \"debug\"\n\n\
             [http]\nlisten_addr = \"{http}\"\npublic_addr = \"http://{http}\"\n\n\
             [review]\nenabled = true\nsigning_secret = \"{SIGNING_SECRET}\"\ncommand_token = \"{COMMAND_TOKEN}\"\n",
            w.tp.addr(),
            w.identity,
            w.mm.url(),
            w.mm.bot_token(),
        ),
    )
    .unwrap();
    let mut svc =
        ServiceProcess::spawn_with_env(Path::new(BIN), &config, http, &["-d"], env, Some(&log))
            .unwrap();
    svc.wait_ready(WAIT).await.unwrap();

    // Post (with signed buttons), a review reply, then approval: update and requester DM.
    let mut req = NewRequest::new(REQUESTER, &["editor"])
        .reason("log check")
        .suggested_reviewers(&[REVIEWER1]);
    req.thresholds = Some(vec![Threshold {
        name: "two".into(),
        approve: 2,
        deny: 2,
    }]);
    let id = w.tp.create_request(req).id;
    let posts = w.mm.wait_for_posts(2, WAIT).await.unwrap();
    assert!(
        posts.iter().any(|p| p.actions().next().is_some()),
        "posts carry signed buttons"
    );
    let review = NewReview {
        author: REVIEWER1.into(),
        proposed_state: RequestState::Approved,
        reason: "fine".into(),
        on_behalf: false,
    };
    w.tp.submit_review_as(REVIEWER1, &id, &review).unwrap();
    w.mm.wait_for_posts(4, WAIT).await.unwrap();
    w.tp.approve(&id, "approved by admin").unwrap();
    w.mm.wait_for(WAIT, |sim| {
        w.dm(REQUESTER)
            .and_then(|c| sim.posts_in(&c).into_iter().next())
    })
    .await
    .expect("the requester is told");
    svc.terminate(Duration::from_secs(20)).await.unwrap();

    let text = std::fs::read_to_string(&log).unwrap();
    println!(
        "log with {env:?}: {} bytes, {} lines",
        text.len(),
        text.lines().count()
    );
    // The detector works: the identity file itself is caught.
    let windows = pem_windows(&issued.key_pem);
    assert!(
        windows.len() > 100
            && windows
                .iter()
                .all(|w| issued.identity_file().contains(w.as_str()) || w.len() == 40)
    );
    assert!(
        windows
            .iter()
            .any(|w| issued.identity_file().contains(w.as_str()))
    );
    // The log is real: it covers the scenario at debug level.
    assert!(
        text.contains(&id),
        "the log never mentions the request:\n{text}"
    );
    assert!(text.contains("DEBUG"), "no debug lines:\n{text}");
    let token = w.mm.bot_token();
    let leaks: Vec<(&str, String)> = [
        ("the Mattermost bot token", token.to_string()),
        ("the signing secret", SIGNING_SECRET.to_string()),
        ("the command token", COMMAND_TOKEN.to_string()),
    ]
    .into_iter()
    .chain(
        windows
            .into_iter()
            .map(|w| ("the identity's private key", w)),
    )
    .filter(|(_, secret)| text.contains(secret.as_str()))
    .collect();
    assert!(
        leaks.is_empty(),
        "secrets in the log ({} bytes): {:?}",
        text.len(),
        leaks.iter().map(|(what, _)| *what).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_full_run_at_debug_level_logs_no_token_secret_or_private_key() {
    secrets_never_reach_the_log(&[]).await;
}

#[tokio::test]
async fn even_trace_logging_of_every_library_shows_no_secret() {
    // RUST_LOG overrides the configured level for every crate, hyper, h2, rustls and tonic
    // included: what an operator might turn on while debugging.
    secrets_never_reach_the_log(&[("RUST_LOG", "trace")]).await;
}

/// One bad request of the flood; returns the status (0: the server closed the connection,
/// which is a fine answer to an oversized body). Oversized bodies go on a client without
/// connection reuse: the server answers 413 without reading the body and closes, and a
/// pooled connection would then fail the next request on it.
async fn bad_request(
    client: &reqwest::Client,
    oversize: &reqwest::Client,
    base: &str,
    i: usize,
) -> u16 {
    let big = vec![b'{'; 70 * 1024];
    let paths = [
        "/mattermost/action",
        "/mattermost/dialog",
        "/mattermost/command",
        "/healthz",
    ];
    let path = paths[i % paths.len()];
    let r = match i % 5 {
        0 => client.get(format!(
            "{base}/{}%00..%2f..%2fetc/passwd?{}",
            "x".repeat(i % 300),
            i
        )),
        1 => oversize.post(format!("{base}{path}")).body(big),
        2 => client
            .post(format!("{base}{path}"))
            .header("content-type", "application/json")
            .body("{\"context\": {\"request_id\": [1, 2"),
        3 => client
            .post(format!("{base}{path}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("token=%ZZ&text=%"),
        _ => client.request(reqwest::Method::DELETE, format!("{base}/metrics")),
    };
    match r.send().await {
        Ok(resp) => resp.status().as_u16(),
        Err(_) => 0,
    }
}

/// Raw bytes that are not HTTP at all: whether the server answered or closed in time.
async fn garbage_connection(addr: std::net::SocketAddr, i: usize) -> bool {
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return false;
    };
    let junk: Vec<u8> = (0..512).map(|b| ((b * 31 + i * 7) % 256) as u8).collect();
    let _ = s.write_all(&junk).await;
    let mut buf = [0u8; 256];
    // The server answers 400 or closes; either way within the timeout.
    tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_bad_requests_neither_stops_health_checks_nor_lifts_the_body_limit() {
    let w = World::start().await;
    let svc = w.service("").await;
    let base = format!("http://{}", svc.addr);
    let build = |pool: usize| {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(pool)
            .build()
            .unwrap()
    };
    let (client, oversize) = (build(64), build(0));

    // Health probes during the flood, every 10 ms, on their own connection.
    let flooding = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let probe = {
        let (client, url) = (build(1), format!("{base}/healthz"));
        let flooding = flooding.clone();
        tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut failures = 0;
            while flooding.load(std::sync::atomic::Ordering::Relaxed) {
                let t = Instant::now();
                match client.get(&url).send().await {
                    Ok(r) if r.status() == 200 => lat.push(t.elapsed()),
                    _ => failures += 1,
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (lat, failures)
        })
    };

    const TASKS: usize = 8;
    const PER_TASK: usize = 625;
    let started = Instant::now();
    let floods: Vec<_> = (0..TASKS)
        .map(|t| {
            let (client, oversize, base) = (client.clone(), oversize.clone(), base.clone());
            let addr = svc.addr;
            tokio::spawn(async move {
                let mut statuses = std::collections::BTreeMap::<(usize, u16), usize>::new();
                let budget = Instant::now() + Duration::from_secs(5);
                for i in 0..PER_TASK {
                    if Instant::now() > budget {
                        break;
                    }
                    let n = t * PER_TASK + i;
                    if n % 50 == 49 {
                        let answered = garbage_connection(addr, n).await;
                        *statuses.entry((9, u16::from(answered))).or_default() += 1;
                        continue;
                    }
                    let status = bad_request(&client, &oversize, &base, n).await;
                    *statuses.entry((n % 5, status)).or_default() += 1;
                }
                statuses
            })
        })
        .collect();
    let mut statuses = std::collections::BTreeMap::<(usize, u16), usize>::new();
    for f in floods {
        for (k, v) in f.await.unwrap() {
            *statuses.entry(k).or_default() += v;
        }
    }
    let flood = started.elapsed();
    flooding.store(false, std::sync::atomic::Ordering::Relaxed);
    let (mut lat, failures) = probe.await.unwrap();
    lat.sort();
    let sent: usize = statuses.values().sum();
    let p = |q: f64| lat[((lat.len() as f64 * q).ceil() as usize).clamp(1, lat.len()) - 1];
    println!(
        "flood: {sent} bad requests in {flood:?}; /healthz during it: {} probes, {failures} failed, p50 {:?}, p99 {:?}, max {:?}; statuses (kind, status) → count: {statuses:?}",
        lat.len(),
        p(0.5),
        p(0.99),
        lat.last().unwrap()
    );

    assert!(sent >= 4_000, "only {sent} requests sent within the budget");
    assert_eq!(failures, 0, "health checks failed during the flood");
    assert!(lat.len() >= 20, "too few probes: {}", lat.len());
    assert!(p(0.99) < Duration::from_millis(500), "p99 {:?}", p(0.99));
    for (&(kind, status), &n) in &statuses {
        match kind {
            // Oversized bodies are refused with 413 before routing (or the connection is
            // closed on the client while it still sends), never passed on.
            1 => assert!(
                status == 413 || status == 0,
                "an oversized body got {status} ({n}×)"
            ),
            // Raw garbage connections: answered (400) or closed, never left hanging.
            9 => assert_eq!(status, 1, "{n} garbage connections hung"),
            // Everything else gets a 4xx answer: never a server error, never dropped.
            _ => assert!(
                (400..500).contains(&status),
                "{n} × status {status} for kind {kind}"
            ),
        }
    }
    let refused = statuses.get(&(1, 413)).copied().unwrap_or(0);
    assert!(refused > 0, "no oversized body was answered with 413");
    // Still serving normally afterwards.
    let r = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    svc.stop().await.unwrap();
}

// ---- signed button contexts and dialog states -------------------------------------------

fn signer() -> Signer {
    Signer::new(SecretString::from(SIGNING_SECRET.to_string()))
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![Just(Action::Approve), Just(Action::Deny)]
}

fn text() -> impl Strategy<Value = String> {
    "\\PC{0,40}"
}

/// Arbitrary JSON, biased toward objects with the field names the payloads use.
fn json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        text().prop_map(serde_json::Value::from),
        prop_oneof![Just("approve"), Just("deny")].prop_map(serde_json::Value::from),
    ];
    let keys = prop_oneof![
        Just("v".to_string()),
        Just("request_id".to_string()),
        Just("action".to_string()),
        Just("channel_id".to_string()),
        Just("post_id".to_string()),
        Just("user_id".to_string()),
        Just("expires".to_string()),
        Just("sig".to_string()),
        text(),
    ];
    leaf.prop_recursive(3, 24, 8, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            proptest::collection::btree_map(keys.clone(), inner, 0..9)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    /// Whatever a client sends as a context, it never verifies without our key.
    #[test]
    fn arbitrary_json_never_verifies_as_a_button_or_dialog(v in json(), now in any::<i64>()) {
        let s = signer();
        if let Ok(c) = serde_json::from_value::<ButtonContext>(v.clone()) {
            prop_assert!(s.verify_button(&c, now).is_err());
        }
        if let Ok(d) = serde_json::from_value::<DialogState>(v) {
            prop_assert!(s.verify_dialog(&d, now).is_err());
        }
    }

    /// Well-formed contexts with made-up signatures (of any shape) never verify.
    #[test]
    fn contexts_with_forged_signatures_never_verify(
        request_id in text(), a in action(), channel in text(), expires in any::<i64>(),
        sig in prop_oneof![text(), "[A-Za-z0-9_-]{43}"],
    ) {
        let c = ButtonContext { v: 1, request_id, action: a, channel_id: channel, expires, sig };
        prop_assert!(signer().verify_button(&c, i64::MIN).is_err());
    }

    /// A signed button verifies; changing any one field (through its JSON, as a tampering
    /// client would) breaks it, and another key never verifies it.
    #[test]
    fn tampering_any_button_field_breaks_the_signature(
        request_id in text(), a in action(), channel in text(),
        expires in 0i64..4_000_000_000, field in 0usize..6, junk in text(),
    ) {
        let s = signer();
        let c = s.button(&request_id, a, &channel, expires);
        prop_assert_eq!(s.verify_button(&c, expires), Ok(()));
        prop_assert_eq!(s.verify_button(&c, expires + 1), Err(SignatureError::Expired));
        let other = Signer::new(SecretString::from(format!("{SIGNING_SECRET}x")));
        prop_assert_eq!(other.verify_button(&c, 0), Err(SignatureError::BadSignature));

        let mut v = serde_json::to_value(&c).unwrap();
        let flip = |s: &str| if s == junk { format!("{junk}!") } else { junk.clone() };
        match field {
            0 => v["request_id"] = flip(&c.request_id).into(),
            1 => v["action"] = (if a == Action::Approve { "deny" } else { "approve" }).into(),
            2 => v["channel_id"] = flip(&c.channel_id).into(),
            3 => v["expires"] = (expires + 1 + junk.len() as i64).into(),
            4 => v["v"] = 2.into(),
            _ => v["sig"] = flip(&c.sig).into(),
        }
        let t: ButtonContext = serde_json::from_value(v).unwrap();
        prop_assert!(t != c);
        prop_assert!(s.verify_button(&t, 0).is_err());
    }

    /// The same for dialog states, which also bind the post and the clicker.
    #[test]
    fn tampering_any_dialog_field_breaks_the_signature(
        request_id in text(), a in action(), post in text(), user in text(),
        expires in 0i64..4_000_000_000, field in 0usize..6, junk in text(),
    ) {
        let s = signer();
        let d = s.dialog(&request_id, a, &post, &user, expires);
        prop_assert_eq!(s.verify_dialog(&d, expires), Ok(()));
        let mut t = d.clone();
        let flip = |s: &str| if s == junk { format!("{junk}!") } else { junk.clone() };
        match field {
            0 => t.request_id = flip(&d.request_id),
            1 => t.action = if a == Action::Approve { Action::Deny } else { Action::Approve },
            2 => t.post_id = flip(&d.post_id),
            3 => t.user_id = flip(&d.user_id),
            4 => t.expires = expires + 1 + junk.len() as i64,
            _ => t.sig = s.button(&request_id, a, &post, expires).sig,
        }
        prop_assert!(s.verify_dialog(&t, 0).is_err());
    }
}
