//! The real binary: `version`, `configure`, `check` and `start` with SIGTERM.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_teleport-mattermost");

fn run(args: &[&str]) -> std::process::Output {
    Command::new(BIN).args(args).output().unwrap()
}

#[test]
fn version_prints_semver_git_and_rustc() {
    let out = run(&["version"]);
    assert!(out.status.success());
    let line = String::from_utf8(out.stdout).unwrap();
    let line = line.trim();
    let words: Vec<&str> = line.split(' ').collect();
    assert_eq!(words[0], "teleport-mattermost");
    assert!(
        words[1].starts_with('v') && words[1][1..].split('.').count() == 3,
        "{line}"
    );
    let rest = &words[2..];
    let rest = if rest[0].starts_with("git:") {
        assert!(rest[0].len() > 4, "{line}");
        &rest[1..]
    } else {
        rest
    };
    assert_eq!(rest[0], "rustc", "{line}");
    assert!(rest[1].chars().next().unwrap().is_ascii_digit(), "{line}");
}

#[test]
fn usage_errors_exit_1_like_upstream() {
    assert_eq!(run(&[]).status.code(), Some(1));
    assert_eq!(run(&["start", "--pid-file=/x"]).status.code(), Some(1));
    assert_eq!(run(&["--help"]).status.code(), Some(0));
}

fn fixture_config(dir: &std::path::Path, listen: &str) -> std::path::PathBuf {
    std::fs::write(dir.join("auth_id"), "identity").unwrap();
    let path = dir.join("tm.toml");
    std::fs::write(
        &path,
        format!(
            "[teleport]\nidentity = {:?}\n[mattermost]\nurl = \"https://mm.example.com\"\ntoken = \"tok\"\n[http]\nlisten_addr = {listen:?}\n",
            dir.join("auth_id")
        ),
    )
    .unwrap();
    path
}

#[test]
fn check_reports_every_problem_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[log]\nseverity = \"x\"\n[mattermost]\ntoken = \"hunter2-secret\"\n",
    )
    .unwrap();
    let out = run(&["check", "--config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("✘ `mattermost.url` is missing"), "{text}");
    assert!(text.contains("✘ `log.severity`"), "{text}");
    assert!(
        !text.contains("hunter2"),
        "check output leaked the token: {text}"
    );
    // A valid config passes the config step, then the live checks name the broken identity.
    let good = fixture_config(dir.path(), "127.0.0.1:0");
    let out = run(&["check", "-c", good.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.starts_with("✔ config"), "{text}");
    assert!(text.contains("✘ Teleport identity unusable"), "{text}");
}

#[test]
fn configure_prints_a_loadable_example() {
    let out = run(&["configure"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("[teleport]") && text.contains("[mattermost]"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_serves_health_and_stops_within_15s_of_sigterm() {
    let w = crate::harness::World::start().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let config = w.dir.path().join("tm.toml");
    let text = w.config_text("").replace(
        "listen_addr = \"127.0.0.1:0\"",
        &format!("listen_addr = {listen:?}"),
    );
    std::fs::write(&config, text).unwrap();
    let mut child = Command::new(BIN)
        .args(["start", "--config", config.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if http_get(&listen, "/readyz").is_ok_and(|b| b.starts_with("HTTP/1.1 200")) {
            break;
        }
        assert!(Instant::now() < deadline, "service did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(http_get(&listen, "/healthz").unwrap().ends_with("ok\n"));
    assert!(
        http_get(&listen, "/metrics")
            .unwrap()
            .contains("teleport_mattermost_build_info")
    );
    // SIGHUP reloads the identity; it must not kill the process.
    signal(child.id(), "HUP");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "SIGHUP killed the process"
    );
    signal(child.id(), "TERM");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no exit within 15 s of SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "exit status {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_fails_with_exit_1_and_the_fix_when_the_token_is_wrong() {
    let w = crate::harness::World::start().await;
    let config = w.dir.path().join("tm.toml");
    std::fs::write(
        &config,
        w.config_text("").replace(w.mm.bot_token(), "wrong-token"),
    )
    .unwrap();
    let out =
        tokio::task::spawn_blocking(move || run(&["start", "--config", config.to_str().unwrap()]))
            .await
            .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("API health check failed"), "{err}");
    assert!(err.contains("set `mattermost.token`"), "{err}");
    assert!(!err.contains("wrong-token"), "the token leaked: {err}");
    // Printed once: the log line on stderr, not again as a bare message.
    assert_eq!(
        err.matches("API health check failed").count(),
        1,
        "the fatal error is printed more than once:\n{err}"
    );
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

/// A minimal HTTP/1.1 GET, so this test needs no client crate.
fn http_get(addr: &str, path: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// `start -d` tells the start-up story step by step, as Teleport's guide shows it for the Go
/// plugin (docs/setup.md maps the lines): each milestone once, in this order.
#[tokio::test]
async fn start_with_debug_logs_the_start_up_milestones_in_order() {
    use teleport_mattermost_sim::process::{ServiceProcess, free_port};
    let w = crate::harness::World::start().await;
    let http = free_port().unwrap();
    let config = w.dir.path().join("debug.toml");
    let text = w
        .config_text("[role_to_recipients]\n\"*\" = [\"team-llama/channel-llama\"]\n")
        .replace(
            "listen_addr = \"127.0.0.1:0\"",
            &format!("listen_addr = \"{http}\""),
        );
    std::fs::write(&config, text).unwrap();
    let log = w.dir.path().join("debug.log");
    let mut svc = ServiceProcess::spawn(
        std::path::Path::new(BIN),
        &config,
        http,
        &["-d"],
        Some(&log),
    )
    .unwrap();
    svc.wait_ready(Duration::from_secs(20)).await.unwrap();
    svc.terminate(Duration::from_secs(20)).await.unwrap();
    let log = std::fs::read_to_string(&log).unwrap();
    let milestones = [
        "HTTP server listening",
        "checking the Teleport server version",
        "connected to Teleport",
        "starting the Mattermost API health check",
        "Mattermost API health check passed",
        "starting the request watcher",
        "request watcher connected",
        "Plugin is ready",
    ];
    let mut from = 0;
    for m in milestones {
        let at = log[from..]
            .find(m)
            .unwrap_or_else(|| panic!("{m:?} missing after byte {from}:\n{log}"));
        from += at + m.len();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upstream_test_config_starts_with_a_warning_naming_the_entry() {
    let w = crate::harness::World::start().await;
    let http = teleport_mattermost_sim::process::free_port().unwrap();
    let config = w.dir.path().join("tm.toml");
    let log = w.dir.path().join("tm.log");
    std::fs::write(
        &config,
        w.config_text(crate::check::UPSTREAM_RECIPIENTS).replace(
            "listen_addr = \"127.0.0.1:0\"",
            &format!("listen_addr = \"{http}\""),
        ),
    )
    .unwrap();
    let mut svc = teleport_mattermost_sim::process::ServiceProcess::spawn_with_env(
        std::path::Path::new(BIN),
        &config,
        http,
        &[],
        &[],
        Some(&log),
    )
    .unwrap();
    svc.wait_ready(crate::harness::WAIT).await.unwrap();
    svc.terminate(Duration::from_secs(20)).await.unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    let warning = text
        .lines()
        .find(|l| l.contains("\"fallback\""))
        .unwrap_or_else(|| panic!("no warning names the entry:\n{text}"));
    assert!(
        warning.contains("WARN")
            && warning.contains("is skipped")
            && warning.contains("write \"team/channel\""),
        "{warning}"
    );
}

#[test]
fn start_never_prints_a_secret_from_a_broken_config() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(fixture_config(dir.path(), "127.0.0.1:0")).unwrap();
    let secret = "sekr1tsekr1tsekr1tsekr1tsekr1tsekr1t";
    for (broken, names) in [
        (
            good.replace("token = \"tok\"", &format!("token = \"{secret}")),
            "not valid TOML at line 5, column 46 (key `mattermost.token`): invalid basic string",
        ),
        (
            format!("{good}[review]\nsigning_secret = \"{secret}\nenabled = true\n"),
            "(key `review.signing_secret`)",
        ),
        (
            good.replace("token = \"tok\"", "token = 4242424242"),
            "`mattermost.token` in ",
        ),
    ] {
        let path = dir.path().join("broken.toml");
        std::fs::write(&path, &broken).unwrap();
        let out = run(&["start", "--config", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(names), "{err}");
        assert!(
            !err.contains("sekr1t") && !err.contains("4242424242"),
            "leaked: {err}"
        );
        assert!(!err.contains("\n in "), "a dangling `in file`: {err}");
        assert_eq!(err.lines().count(), 2, "printed once: {err}");
    }
}
