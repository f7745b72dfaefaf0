//! The playground of `demo --keep-running`, driven in a real browser (headless Chromium through
//! WebDriver): a request created on the Teleport side is posted, a reviewer approves it with
//! the dialog, the post turns APPROVED and the requester's DM appears. Also, without a browser:
//! the page's guards and forms, and the simulator's channel post listing the page builds on.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use teleport_mattermost_sim::mattermost::{MattermostSim, SimConfig};
use teleport_mattermost_sim::playground::{self, Playground};
use teleport_mattermost_sim::teleport::fixtures::{self, REQUESTER, REVIEWER1};
use teleport_mattermost_sim::teleport::{SimOptions, TeleportSim};

/// The whole browser test, Chromium's start included.
const BUDGET: Duration = Duration::from_secs(60);

/// Headless Chromium as CI runs it: no sandbox (root in a container), no GPU, and nothing
/// that reaches out to the network on its own.
const CHROME_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1440,900",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_browser_a_reviewer_approves_with_the_dialog_and_the_requester_is_told() {
    let Some((chrome, driver)) = browser() else {
        return;
    };
    let started = Instant::now();
    let demo = Demo::start();
    let driver = Driver::start(&driver);
    let profile = tempfile::tempdir().unwrap();
    let session = driver.session(&chrome, profile.path()).await;
    let outcome = tokio::time::timeout(
        BUDGET.saturating_sub(started.elapsed()),
        approve_in_the_browser(&session, &demo.url),
    )
    .await;
    // Screenshot of whatever the page showed last, kept for a failure's post-mortem too.
    let last = screenshot_path("playground-last.png");
    if let Ok(png) = session.screenshot().await {
        std::fs::write(&last, png).unwrap();
    }
    session.quit().await;
    drop(driver);
    drop(demo);
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(step)) => panic!("{step} (screenshot: {})", last.display()),
        Err(_) => panic!(
            "the browser test took over {BUDGET:?} (screenshot: {})",
            last.display()
        ),
    }
    assert!(started.elapsed() < BUDGET, "took {:?}", started.elapsed());
}

/// The story a newcomer clicks through; each step names what it waited for.
async fn approve_in_the_browser(s: &Session, base: &str) -> Result<(), String> {
    s.goto(&format!("{base}?as=requester")).await?;

    // Teleport side: requester@example.com asks for `editor`, suggesting reviewer1.
    let reason = "Rotate the TLS certificates";
    s.find("#create-reason").await?.type_text(s, reason).await?;
    s.find("input[name=reviewer][value='reviewer1@example.com']")
        .await?
        .click(s)
        .await?;
    s.find("#create-request").await?.click(s).await?;
    let note = s.wait_text("#note", "Created access request").await?;
    let id = note
        .split_whitespace()
        .last()
        .map(|w| w.trim_end_matches('.').to_string())
        .ok_or("the note names no request id")?;
    let post = format!("//div[@data-post-id][contains(., '{id}')]");

    // Mattermost side: the bot posted it in ~access-requests, with buttons.
    s.wait_xpath_text(&post, "PENDING").await?;

    // reviewer1 clicks Approve and gives a reason in the dialog.
    s.find("#as-reviewer1").await?.click(s).await?;
    s.wait_text(".user.on", "reviewer1").await?;
    s.find_xpath(&format!("{post}//button[@value='approve']"))
        .await?
        .click(s)
        .await?;
    s.find("#dialog-form").await?;
    s.find("#dialog-reason")
        .await?
        .type_text(s, "Rotation is due today")
        .await?;
    if let Ok(png) = s.screenshot().await {
        std::fs::write(screenshot_path("playground-dialog.png"), png).unwrap();
    }
    s.find("#dialog-submit").await?.click(s).await?;

    // The post turns APPROVED in place (the page polls), the reviewer's reply is in the thread.
    s.wait_xpath_text(&post, "APPROVED").await?;
    s.wait_xpath_text(
        &format!("{post}/following-sibling::div[@class='replies']"),
        "Rotation is due today",
    )
    .await?;
    if let Ok(png) = s.screenshot().await {
        std::fs::write(screenshot_path("playground.png"), png).unwrap();
    }

    // The requester is told in their DM with the bot.
    s.find("#as-requester").await?.click(s).await?;
    s.find("#sidebar a[data-channel='teleport']")
        .await?
        .click(s)
        .await?;
    s.wait_xpath_text(
        &format!("//div[@data-post-id][contains(., '{id}')]"),
        "Your access request was approved",
    )
    .await?;
    Ok(())
}

fn screenshot_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(name)
}

/// Chromium and its driver, or `None` (test skipped) when neither CI nor a local install has
/// them. In CI (`CI` set), a missing browser fails the test: `.ci/run` installs both.
fn browser() -> Option<(PathBuf, PathBuf)> {
    let chrome = ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|b| on_path(b));
    let driver = on_path("chromedriver");
    if let (Some(c), Some(d)) = (&chrome, &driver) {
        return Some((c.clone(), d.clone()));
    }
    let missing = match (chrome, driver) {
        (None, None) => "chromium and chromedriver are",
        (None, _) => "chromium is",
        _ => "chromedriver is",
    };
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    assert!(
        !ci,
        "{missing} not installed, and CI must run the browser test (.ci/run installs Debian's chromium and chromium-driver)"
    );
    // Straight to stderr: the test harness captures `println!`, and a skip must be seen.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED the playground browser test: {missing} not installed (Debian: apt-get install chromium chromium-driver)"
    );
    None
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// `teleport-mattermost demo --keep-running`, stopped with Ctrl-C (SIGINT) when dropped.
struct Demo {
    child: Child,
    url: String,
}

impl Demo {
    fn start() -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_teleport-mattermost"))
            .args(["demo", "--keep-running"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        // Reads to the end, so the demo never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut demo = Self {
            child,
            url: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut transcript = String::new();
        // The URL comes first; the scripted story is over once the addresses are listed.
        while !transcript.contains("Everything keeps running") {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(url) = line
                        .strip_prefix("Playground: open ")
                        .and_then(|l| l.split_whitespace().next())
                    {
                        assert!(transcript.is_empty(), "the URL is not the first line");
                        demo.url = url.to_string();
                    }
                    transcript.push_str(&line);
                    transcript.push('\n');
                }
                Err(_) => panic!("demo --keep-running did not get ready:\n{transcript}"),
            }
        }
        assert!(
            demo.url.starts_with("http://127.0.0.1:"),
            "no playground URL:\n{transcript}"
        );
        demo
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// chromedriver on a free loopback port; killed when dropped (after the session quit, which
/// ends the browser).
struct Driver {
    child: Child,
    url: String,
    http: reqwest::Client,
}

impl Driver {
    fn start(binary: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(binary)
            .args([format!("--port={port}"), "--allowed-ips=127.0.0.1".into()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        teleport_mattermost::install_crypto_provider();
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }

    async fn session(&self, chrome: &Path, profile: &Path) -> Session {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let ready = self
                .http
                .get(format!("{}/status", self.url))
                .send()
                .await
                .ok()
                .filter(|r| r.status().is_success());
            if ready.is_some() {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut args: Vec<String> = CHROME_FLAGS.iter().map(|s| s.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chrome, "args": args},
        }}});
        let answer: Value = self
            .http
            .post(format!("{}/session", self.url))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {answer}"));
        Session {
            http: self.http.clone(),
            base: format!("{}/session/{id}", self.url),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A W3C WebDriver session: the few commands the test needs, each step bounded.
struct Session {
    http: reqwest::Client,
    base: String,
}

/// How long one step may wait for its element (the page polls every 0.7 s).
const STEP: Duration = Duration::from_secs(15);

struct Element(String);

impl Session {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> Result<Value, String> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if !body.is_null() {
            request = request.json(&body);
        }
        let answer: Value = request
            .send()
            .await
            .map_err(|e| format!("WebDriver {path}: {e}"))?
            .json()
            .await
            .map_err(|e| format!("WebDriver {path}: {e}"))?;
        match answer["value"].get("error") {
            Some(error) => Err(format!(
                "WebDriver {path}: {error} {}",
                answer["value"]["message"]
            )),
            None => Ok(answer["value"].clone()),
        }
    }

    async fn goto(&self, url: &str) -> Result<(), String> {
        self.call(reqwest::Method::POST, "/url", json!({"url": url}))
            .await
            .map(drop)
    }

    async fn locate(&self, using: &str, value: &str) -> Result<Element, String> {
        let deadline = Instant::now() + STEP;
        loop {
            let found = self
                .call(
                    reqwest::Method::POST,
                    "/element",
                    json!({"using": using, "value": value}),
                )
                .await;
            if let Ok(v) = found
                && let Some(id) = v
                    .as_object()
                    .and_then(|o| o.values().next())
                    .and_then(Value::as_str)
            {
                return Ok(Element(id.to_string()));
            }
            if Instant::now() > deadline {
                return Err(format!("no element {value:?} on the page"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn find(&self, css: &str) -> Result<Element, String> {
        self.locate("css selector", css).await
    }

    async fn find_xpath(&self, xpath: &str) -> Result<Element, String> {
        self.locate("xpath", xpath).await
    }

    /// Waits until the element shows `needle` (found again on each try: the page swaps
    /// regions in place).
    async fn wait_for_text(
        &self,
        using: &str,
        value: &str,
        needle: &str,
    ) -> Result<String, String> {
        let deadline = Instant::now() + STEP;
        let mut last = String::new();
        loop {
            if let Ok(e) = self.locate(using, value).await {
                let text = self
                    .call(
                        reqwest::Method::GET,
                        &format!("/element/{}/text", e.0),
                        Value::Null,
                    )
                    .await
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                if text.contains(needle) {
                    return Ok(text);
                }
                last = text;
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{value:?} never showed {needle:?}; it showed:\n{last}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    async fn wait_text(&self, css: &str, needle: &str) -> Result<String, String> {
        self.wait_for_text("css selector", css, needle).await
    }

    async fn wait_xpath_text(&self, xpath: &str, needle: &str) -> Result<String, String> {
        self.wait_for_text("xpath", xpath, needle).await
    }

    async fn screenshot(&self) -> Result<Vec<u8>, String> {
        use base64::Engine;
        let v = self
            .call(reqwest::Method::GET, "/screenshot", Value::Null)
            .await?;
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .map_err(|e| e.to_string())
    }

    async fn quit(&self) {
        let _ = self.call(reqwest::Method::DELETE, "", Value::Null).await;
    }
}

impl Element {
    async fn click(&self, s: &Session) -> Result<(), String> {
        s.call(
            reqwest::Method::POST,
            &format!("/element/{}/click", self.0),
            json!({}),
        )
        .await
        .map(drop)
    }

    async fn type_text(&self, s: &Session, text: &str) -> Result<(), String> {
        s.call(
            reqwest::Method::POST,
            &format!("/element/{}/value", self.0),
            json!({"text": text}),
        )
        .await
        .map(drop)
    }
}

// ---- without a browser ----------------------------------------------------------------------

/// The simulators and a playground on them (no service: nothing here clicks).
async fn bare_playground() -> (Arc<TeleportSim>, MattermostSim, String, Playground, String) {
    teleport_mattermost::install_crypto_provider();
    let tp = Arc::new(TeleportSim::start(SimOptions::default()).await.unwrap());
    fixtures::standard(&tp);
    let mm = MattermostSim::start(SimConfig::default()).await.unwrap();
    let team = mm.add_team("acme");
    let channel = mm.add_channel(&team, "access-requests");
    mm.add_channel_member(&channel, mm.bot_id());
    let requester = mm.add_user("requester", REQUESTER);
    mm.add_channel_member(&channel, &requester);
    let play = Playground::start(playground::Setup {
        teleport: tp.clone(),
        mattermost: mm.clone(),
        command_url: "http://127.0.0.1:9/mattermost/command".into(),
        command_token: "token".into(),
        channel_id: channel.clone(),
        users: vec![(REQUESTER.into(), requester.clone())],
    })
    .await
    .unwrap();
    (tp, mm, channel, play, requester)
}

fn plain_http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Submits one of the page's forms, as the browser would.
async fn submit(http: &reqwest::Client, url: String, fields: &[(&str, &str)]) -> reqwest::Response {
    http.post(url).form(fields).send().await.unwrap()
}

#[tokio::test]
async fn the_page_shows_posts_and_requests_and_its_forms_create_and_resolve() {
    let (tp, mm, channel, play, requester) = bare_playground().await;
    let channel = channel.as_str();
    let http = plain_http();
    let url = play.url().as_str().to_string();

    let created = submit(
        &http,
        format!("{url}tp/create"),
        &[
            ("as", "requester"),
            ("ch", channel),
            ("user", REQUESTER),
            ("roles", fixtures::REQUESTED_ROLE),
            ("reason", "needs <b>care</b>"),
            ("reviewer", REVIEWER1),
            ("approve", "2"),
            ("deny", "1"),
        ],
    )
    .await;
    assert_eq!(created.status(), 303);
    let requests = tp.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(
        (r.user.as_str(), r.roles.clone()),
        (REQUESTER, vec!["editor".to_string()])
    );
    assert_eq!(r.suggested_reviewers, vec![REVIEWER1.to_string()]);
    assert_eq!((r.thresholds[0].approve, r.thresholds[0].deny), (2, 1));
    let location = created.headers()["location"].to_str().unwrap().to_string();
    assert!(location.contains("Created+access+request"), "{location}");

    mm.post_as(
        mm.bot_id(),
        channel,
        "",
        "**Status**: ⏳ PENDING <script>x</script>",
    )
    .unwrap();
    let page = http
        .get(format!("{url}?as=requester&ch={channel}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("<strong>Status</strong>: ⏳ PENDING"),
        "{page}"
    );
    assert!(!page.contains("<script>x"), "raw HTML must stay text");
    assert!(
        page.contains("needs &lt;b&gt;care&lt;/b&gt;"),
        "request reason escaped"
    );
    assert!(page.contains(&format!(r#"id="req-{}""#, r.id)));
    assert!(
        page.contains(r#"id="as-guest""#),
        "the unlinked user is in the switcher"
    );

    let resolved = submit(
        &http,
        format!("{url}tp/resolve"),
        &[
            ("as", "requester"),
            ("ch", channel),
            ("id", &r.id),
            ("verdict", "deny"),
            ("reason", "no"),
        ],
    )
    .await;
    assert_eq!(resolved.status(), 303);
    assert_eq!(tp.request(&r.id).unwrap().state.name(), "DENIED");

    // A plain message is a post by the user; a foreign site's form is refused.
    let message = [("as", "requester"), ("ch", channel), ("text", "hello")];
    submit(&http, format!("{url}mm/message"), &message).await;
    assert!(
        mm.posts_in(channel)
            .iter()
            .any(|p| p.user_id == requester && p.message == "hello")
    );
    let delete = [("as", "requester"), ("ch", channel), ("id", r.id.as_str())];
    let foreign = http
        .post(format!("{url}tp/delete"))
        .header("origin", "http://evil.test")
        .form(&delete)
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
    assert!(
        tp.request(&r.id).is_some(),
        "the foreign form deleted nothing"
    );
    submit(&http, format!("{url}tp/delete"), &delete).await;
    assert!(tp.request(&r.id).is_none(), "the page's own form deletes");
}

#[tokio::test]
async fn the_simulator_lists_a_channels_posts_newest_first_like_mattermost() {
    let (_tp, mm, channel, _play, requester) = bare_playground().await;
    let root = mm.post_as(mm.bot_id(), &channel, "", "root").unwrap();
    let reply = mm
        .post_as(mm.bot_id(), &channel, &root.id, "reply")
        .unwrap();
    let last = mm.post_as(&requester, &channel, "", "last").unwrap();
    let http = plain_http();
    let base = format!("{}api/v4/channels", mm.url());
    let api = format!("{base}/{channel}/posts");
    let get = |url: String| http.get(url).bearer_auth(mm.bot_token()).send();

    let all: Value = get(api.clone()).await.unwrap().json().await.unwrap();
    assert_eq!(all["order"], json!([last.id, reply.id, root.id]));
    assert_eq!(all["posts"][&reply.id]["root_id"], root.id.as_str());
    assert_eq!(all["has_next"], false);

    // A page holding only the reply also carries its root, and cursors to both neighbours.
    let page: Value = get(format!("{api}?page=1&per_page=1"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["order"], json!([reply.id]));
    assert!(page["posts"].get(&root.id).is_some(), "{page}");
    assert_eq!(
        (page["next_post_id"].as_str(), page["prev_post_id"].as_str()),
        (Some(last.id.as_str()), Some(root.id.as_str()))
    );

    let stranger = mm.add_user("stranger", "stranger@example.com");
    mm.add_token("stranger-token", &stranger);
    let refused = http
        .get(api)
        .bearer_auth("stranger-token")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let bad = get(format!("{base}/not-an-id/posts")).await.unwrap();
    assert_eq!(bad.status(), 400);
}
