//! Conformance to Mattermost's official API description: every request shape the client sends
//! goes through Stoplight Prism (`prism mock`, request validation on) serving the OpenAPI
//! file, via a recording proxy; Prism must accept each one (2xx). A refused request fails the
//! test with Prism's `sl-violations` header.
//!
//! Prism comes from `.ci/prism` (`npm ci --prefix .ci/prism`) or `PRISM_BIN`; the description
//! (Mattermost's official OpenAPI file, which the repository does not carry) from
//! `MATTERMOST_OPENAPI`, which `.ci/run` sets (docs/mattermost-api.md has the facts the service
//! relies on). Without them the test is skipped with a notice, unless `CI=true`,
//! where their absence is a failure.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::response::Response;
use secrecy::SecretString;
use serde_json::json;
use teleport_mattermost::mattermost::model::{
    Dialog, DialogElement, NewPost, OpenDialog, PostPatch, PostUpdate,
};
use teleport_mattermost::mattermost::render::{
    ActionButton, ButtonStyle, RequestView, Status, root_post,
};
use teleport_mattermost::mattermost::{ClientOptions, MattermostClient, RetryPolicy};
use teleport_mattermost::metrics::Metrics;
use teleport_mattermost::route::Recipient;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn prism_bin() -> Option<PathBuf> {
    let path = std::env::var_os("PRISM_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir().join(".ci/prism/node_modules/.bin/prism"));
    path.exists().then_some(path)
}

fn openapi_file() -> Option<PathBuf> {
    let path = PathBuf::from(std::env::var_os("MATTERMOST_OPENAPI")?);
    path.exists().then_some(path)
}

/// One request Prism judged.
#[derive(Debug, Clone)]
struct Judged {
    request: String,
    status: u16,
    violations: Option<String>,
}

impl std::fmt::Display for Judged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} -> {}", self.request, self.status)?;
        if let Some(v) = &self.violations {
            write!(f, "\n    sl-violations: {v}")?;
        }
        Ok(())
    }
}

fn show(judged: &[Judged]) -> String {
    judged.iter().map(|j| format!("\n  {j}")).collect()
}

struct Proxy {
    upstream: String,
    http: reqwest::Client,
    log: Mutex<Vec<Judged>>,
    /// Ask Prism for its documented 429 on the next request (`Prefer: code=429`).
    prefer_429: AtomicBool,
}

/// Forwards a request to Prism unchanged and records Prism's verdict.
async fn forward(State(proxy): State<Arc<Proxy>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, 16 << 20).await.unwrap();
    let path = parts.uri.path_and_query().unwrap().as_str().to_string();
    let mut upstream = proxy
        .http
        .request(parts.method.clone(), format!("{}{path}", proxy.upstream))
        .body(body.to_vec());
    let override_accept = proxy.prefer_429.load(Ordering::SeqCst);
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" && !(override_accept && name == "accept") {
            upstream = upstream.header(name, value);
        }
    }
    if proxy.prefer_429.swap(false, Ordering::SeqCst) {
        // Prism only picks a documented response whose media type the request accepts; the
        // 429 is text/plain (Mattermost's limiter answers so whatever the client accepts).
        upstream = upstream
            .header("prefer", "code=429")
            .header("accept", "*/*");
    }
    let answer = upstream.send().await.expect("Prism answers");
    let status = answer.status();
    let violations = answer
        .headers()
        .get("sl-violations")
        .map(|v| v.to_str().unwrap_or("?").to_string());
    proxy.log.lock().unwrap().push(Judged {
        request: format!("{} {path}", parts.method),
        status: status.as_u16(),
        violations,
    });
    let mut response = Response::builder().status(status.as_u16());
    for (name, value) in answer.headers() {
        if !matches!(
            name.as_str(),
            "content-length" | "transfer-encoding" | "connection"
        ) {
            response = response.header(name, value);
        }
    }
    response
        .body(Body::from(answer.bytes().await.unwrap()))
        .unwrap()
}

/// Starts Prism on a free loopback port and waits for "Prism is listening".
async fn start_prism(bin: &Path, spec: &Path) -> (Child, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(bin)
        .args(["mock", "-h", "127.0.0.1", "-p", &port.to_string()])
        .arg(spec)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("starting Prism");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("Prism is listening") {
                return true;
            }
        }
        false
    })
    .await;
    if ready != Ok(true) {
        let mut err = String::new();
        if let Some(stderr) = child.stderr.take() {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Ok(Some(l))) =
                tokio::time::timeout(Duration::from_millis(200), lines.next_line()).await
            {
                err.push_str(&l);
                err.push('\n');
            }
        }
        panic!("Prism did not start within 120 s: {ready:?}\n{err}");
    }
    // Prism logs every request; keep draining its output so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    if let Some(stderr) = child.stderr.take() {
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(_)) = lines.next_line().await {}
        });
    }
    (child, port)
}

fn request_view() -> RequestView {
    RequestView {
        id: "3f6bd3ab-5e41-4d0e-9b5f-2a7c1c0f4c11".into(),
        user: "alice@example.com".into(),
        roles: vec!["editor".into()],
        resources: vec!["node/web-1".into()],
        request_reason: Some("because of".into()),
        cluster: Some("prod".into()),
        created: time::macros::datetime!(2026-03-02 14:05 UTC),
        access_expires: Some(time::macros::datetime!(2026-03-02 22:05 UTC)),
        max_duration: None,
        status: Status::Pending,
        resolve_reason: None,
        reviews: None,
        link: None,
        buttons: Some(vec![
            ActionButton {
                id: "approve".into(),
                name: "Approve".into(),
                style: ButtonStyle::Success,
                url: url::Url::parse("https://tm.example.com/mattermost/action").unwrap(),
                context: json!({"request_id": "r", "action": "approve", "sig": "x"}).into(),
            },
            ActionButton {
                id: "deny".into(),
                name: "Deny".into(),
                style: ButtonStyle::Danger,
                url: url::Url::parse("https://tm.example.com/mattermost/action").unwrap(),
                context: json!({"request_id": "r", "action": "deny", "sig": "x"}).into(),
            },
        ]),
        promoted_list_title: None,
        waiting: None,
        escalated: false,
    }
}

#[tokio::test]
async fn every_request_the_client_makes_is_accepted_by_the_official_api_description() {
    let (Some(bin), Some(spec)) = (prism_bin(), openapi_file()) else {
        let missing = format!(
            "Prism ({}) or the Mattermost OpenAPI file ({}) is missing; install Prism with `npm ci --prefix .ci/prism` (see .ci/run)",
            prism_bin().map_or("absent".into(), |p| p.display().to_string()),
            openapi_file().map_or("absent".into(), |p| p.display().to_string()),
        );
        assert!(!in_ci(), "CI=true: {missing}");
        eprintln!("NOTICE: skipping the Prism conformance test: {missing}");
        return;
    };
    let (mut prism, port) = start_prism(&bin, &spec).await;
    let tls = teleport_mattermost::mattermost::tls::client_config(&[]).unwrap();
    let proxy = Arc::new(Proxy {
        upstream: format!("http://127.0.0.1:{port}"),
        http: reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        log: Mutex::new(Vec::new()),
        prefer_429: AtomicBool::new(false),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_url =
        url::Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
    let app = Router::new().fallback(forward).with_state(proxy.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let mut options = ClientOptions::new(proxy_url, SecretString::from("conformance-token"));
    options.retry = RetryPolicy {
        max_attempts: 2,
        ..RetryPolicy::default()
    };
    let c = MattermostClient::new(options, &Metrics::new()).unwrap();

    let mut failures = Vec::new();
    macro_rules! step {
        ($name:expr, $call:expr) => {{
            let before = proxy.log.lock().unwrap().len();
            let result = $call.await;
            let judged: Vec<Judged> = proxy.log.lock().unwrap()[before..].to_vec();
            if let Err(e) = &result {
                failures.push(format!("{}: {e}{}", $name, show(&judged)));
            }
            result.ok()
        }};
    }

    step!("get_me", c.me());
    step!("get_user", c.user_by_id("q3mzxua9zjfczqakxdkowc6u6y"));
    step!("get_user_by_email", c.user_by_email("Alice@Example.com"));
    step!("get_user_by_username", c.user_by_username("alice"));
    step!("get_team_by_name", c.team_by_name("team-llama"));
    step!(
        "get_channel_by_name",
        c.channel_by_name("team-llama", "channel-llama")
    );
    step!(
        "create_direct_channel",
        c.direct_channel("q3mzxua9zjfczqakxdkowc6u6y")
    );
    step!(
        "resolve channel",
        c.resolve(&Recipient::parse("team-llama/town-square").unwrap())
    );
    step!(
        "resolve e-mail",
        c.resolve(&Recipient::parse("bob@example.com").unwrap())
    );
    step!(
        "resolve username",
        c.resolve(&Recipient::parse("@carol").unwrap())
    );
    let channel = "hx3u1kzh5prr9ecnk8ss4qb3ga";
    step!(
        "create_post plain",
        c.create_post(&NewPost::new(channel, "hello"))
    );
    let rendered = root_post(&request_view());
    let root = step!(
        "create_post with buttons",
        c.create_post(&rendered.new_post(channel))
    );
    let root_id = root.map_or_else(|| "kx8orfo7tjnr7pt3t8mc4qzb9y".to_string(), |p| p.id);
    step!(
        "create_reply",
        c.create_post(&NewPost::new(channel, "reviewer1 reviewed the request").reply_to(&root_id))
    );
    let resolved = root_post(&RequestView {
        status: Status::Approved,
        buttons: None,
        ..request_view()
    });
    step!("update_post", c.update_post(&resolved.update(&root_id)));
    step!(
        "update_post without props",
        c.update_post(&PostUpdate {
            id: root_id.clone(),
            message: "m".into(),
            props: None
        })
    );
    step!(
        "patch_post with props",
        c.patch_post(
            &root_id,
            &PostPatch {
                message: Some(resolved.message.clone()),
                props: Some(rendered.props.clone()),
            }
        )
    );
    step!("get_post", c.get_post(&root_id));
    step!(
        "open_dialog",
        c.open_dialog(&OpenDialog {
            trigger_id: "dHJpZ2dlcg==".into(),
            url: "https://tm.example.com/mattermost/dialog".into(),
            dialog: Dialog {
                callback_id: "deny".into(),
                title: "Deny access request".into(),
                introduction_text: "Why deny?".into(),
                elements: vec![DialogElement {
                    display_name: "Reason".into(),
                    name: "reason".into(),
                    kind: "textarea".into(),
                    max_length: Some(1000),
                    ..DialogElement::default()
                }],
                submit_label: "Deny".into(),
                notify_on_cancel: true,
                state: "r.sig".into(),
            },
        })
    );
    step!("add_reaction", c.add_reaction(&root_id, "white_check_mark"));

    // The documented 429 (plain text, Retry-After) is waited out and retried.
    proxy.prefer_429.store(true, Ordering::SeqCst);
    step!(
        "create_post after a 429",
        c.create_post(&NewPost::new(channel, "again"))
    );

    let log = proxy.log.lock().unwrap().clone();
    let _ = prism.kill().await;
    assert!(
        failures.is_empty(),
        "requests refused:\n{}",
        failures.join("\n")
    );
    let statuses: Vec<u16> = log.iter().map(|j| j.status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        1,
        "{log:#?}"
    );
    assert!(
        log.iter()
            .all(|j| j.status == 429 || (200..300).contains(&j.status)),
        "{log:#?}"
    );
    assert_eq!(log.last().unwrap().status, 201, "{log:#?}");
    assert!(log.len() >= 20, "{log:#?}");
}
