//! `teleport-mattermost demo`, the README's first command, as a test: the real binary plays
//! the whole story against the built-in simulators and exits 0.

use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn demo_plays_the_whole_story_and_exits_0() {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_teleport-mattermost"))
        .arg("demo")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "teleport-mattermost at http://127.0.0.1:",
        "posted in ~access-requests:",
        "┃ *You have a new pending request to review!*",
        "┃ **Status**: ⏳ PENDING",
        "and as a direct message to the suggested reviewer @reviewer2",
        "only @reviewer1 sees:",
        "as Teleport user `reviewer1@example.com`",
        "┃ reviewer1@example.com reviewed the request at",
        "dialog opened: Approve access request",
        "┃ **Status**: ✅ APPROVED",
        "┃ **Reviews**: approvals 2/2",
        "┃ ✅ Your access request was approved.",
        "tsh login --request-id=",
        "its post now shows ⌛ EXPIRED",
        "┃ :clipboard: Access list review reminder: **Production admins** (prod-admins)",
        "┃ **Review it:** [https://demo.teleport.sh/web/accesslists/prod-admins]",
        "teleport_mattermost_access_list_reminders_total{outcome=\"sent\"} 1",
        "teleport_mattermost_posts_total{kind=\"root\",outcome=\"ok\"} 5",
        "┃ ⏰ **Reminder**: requester@example.com has been waiting 1s for roles auditor",
        "escalated: posted in ~oncall, with the same buttons:",
        "┃ **Status**: ⏳ PENDING · ⏰ waiting 1s · 🔺 escalated",
        "the escalation post turns APPROVED too",
        "teleport_mattermost_reminders_total{kind=\"escalation\",outcome=\"sent\"} 1",
        "teleport_mattermost_reviews_total{outcome=\"submitted\",source=\"command\"} 1",
        "teleport_mattermost_reviews_total{outcome=\"submitted\",source=\"dialog\"} 1",
        "author=reviewer1@example.com submitted_by=access-plugin on_behalf=true",
        "author=reviewer2@example.com submitted_by=access-plugin on_behalf=true",
        "Done in",
    ] {
        assert!(
            text.contains(line),
            "the transcript lacks {line:?}:\n{text}"
        );
    }
    // Both requests are made within a minute: the short ids shown still tell them apart.
    let word_after = |line_marker: &str, marker: &str| {
        let line = text.lines().find(|l| l.contains(line_marker))?;
        let rest = &line[line.find(marker)? + marker.len()..];
        rest.split(' ').next().map(str::to_string)
    };
    let approved = word_after("/teleport approve ", "/teleport approve ").unwrap();
    let expired = word_after(" expired: its post", "request ").unwrap();
    assert_eq!(approved.len(), 8, "{approved}");
    assert_ne!(approved, expired, "{text}");
    // The playground is only for `--keep-running`: the printed story stays as it was.
    assert!(!text.contains("Playground"), "{text}");
    // Well under the 10 s the README promises (a debug build on 2 cores included).
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "demo took {:?}",
        started.elapsed()
    );
}

/// `demo --keep-running` prints commands that work as printed: after `cargo run` there is no
/// `teleport-mattermost` on PATH, so they name the binary that runs.
#[test]
fn keep_running_hints_name_the_running_binary() {
    use std::io::{BufRead, BufReader};
    let bin = env!("CARGO_BIN_EXE_teleport-mattermost");
    let mut child = Command::new(bin)
        .args(["demo", "--keep-running"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains(" check --config ") {
                let _ = tx.send(line);
                return;
            }
        }
    });
    let line = rx.recv_timeout(Duration::from_secs(30));
    child.kill().unwrap();
    child.wait().unwrap();
    let line = line.expect("a `check --config` hint");
    let canonical = std::fs::canonicalize(bin).unwrap();
    let printed = line.trim().split(" check --config ").next().unwrap();
    assert_eq!(std::fs::canonicalize(printed).unwrap(), canonical, "{line}");
}
