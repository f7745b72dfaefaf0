//! Snapshots of every rendered state, and the properties no input may break: size, no
//! mentions, no links, nothing outside its code span.

use serde_json::json;
use time::macros::datetime;
use url::Url;

use super::*;

const ID: &str = "3f6bd3ab-5e41-4d0e-9b5f-2a7c1c0f4c11";

fn pending() -> RequestView {
    RequestView {
        id: ID.into(),
        user: "alice@example.com".into(),
        roles: vec!["editor".into(), "db-admin".into()],
        resources: vec!["node/web-1".into(), "db/orders".into()],
        request_reason: Some("deploying hotfix 4.2".into()),
        cluster: Some("prod.example.com".into()),
        created: datetime!(2026-03-02 14:05 UTC),
        access_expires: Some(datetime!(2026-03-02 22:05 UTC)),
        max_duration: None,
        status: Status::Pending,
        resolve_reason: None,
        reviews: None,
        link: Some(Url::parse(&format!("https://teleport.example.com/web/requests/{ID}")).unwrap()),
        buttons: None,
        promoted_list_title: None,
        waiting: None,
        escalated: false,
    }
}

fn buttons() -> Vec<ActionButton> {
    let url = Url::parse("https://tm.internal:8081/mattermost/action").unwrap();
    vec![
        ActionButton {
            id: "approve".into(),
            name: "Approve".into(),
            style: ButtonStyle::Success,
            url: url.clone(),
            context: json!({"request_id": ID, "action": "approve", "sig": "c2lnbmF0dXJl"}).into(),
        },
        ActionButton {
            id: "deny".into(),
            name: "Deny".into(),
            style: ButtonStyle::Danger,
            url,
            context: json!({"request_id": ID, "action": "deny", "sig": "c2lnbmF0dXJl"}).into(),
        },
    ]
}

fn hostile() -> String {
    "@channel @here @all @bob see [click](https://e.vil) <https://e.vil> ```oops``` \u{202E}evil\u{202C} zero\u{200B}width\n\n# heading\n> quote ~town-square #tag".to_string()
}

#[test]
fn pending_post_with_link() {
    insta::assert_snapshot!(root_post(&pending()).message);
}

#[test]
fn pending_post_without_link_shows_tsh_commands() {
    let view = RequestView {
        link: None,
        ..pending()
    };
    insta::assert_snapshot!(root_post(&view).message);
}

#[test]
fn pending_post_with_review_progress_and_max_duration() {
    let view = RequestView {
        reviews: Some(ReviewProgress {
            approvals: 1,
            approvals_needed: Some(2),
            denials: 0,
            denials_needed: Some(1),
        }),
        max_duration: Some(datetime!(2026-03-02 18:35 UTC)),
        ..pending()
    };
    insta::assert_snapshot!(root_post(&view).message);
}

#[test]
fn approved_post() {
    let view = RequestView {
        status: Status::Approved,
        resolve_reason: Some("okay".into()),
        reviews: Some(ReviewProgress {
            approvals: 2,
            approvals_needed: Some(2),
            ..ReviewProgress::default()
        }),
        ..pending()
    };
    insta::assert_snapshot!(root_post(&view).message);
}

#[test]
fn denied_post_without_link_has_no_commands() {
    let view = RequestView {
        status: Status::Denied,
        resolve_reason: Some(format!("not okay {}", "A".repeat(4000))),
        link: None,
        ..pending()
    };
    let message = root_post(&view).message;
    assert!(message.contains(&format!(
        "**Resolution reason**: ```\nnot okay {}``` (truncated)",
        "A".repeat(491)
    )));
    insta::assert_snapshot!(message);
}

#[test]
fn expired_post() {
    let view = RequestView {
        status: Status::Expired,
        request_reason: None,
        ..pending()
    };
    insta::assert_snapshot!(root_post(&view).message);
}

#[test]
fn promoted_post_names_the_access_list() {
    let view = RequestView {
        status: Status::Promoted,
        promoted_list_title: Some("Database admins".into()),
        resolve_reason: Some("covered by the list".into()),
        ..pending()
    };
    insta::assert_snapshot!(root_post(&view).message);
}

#[test]
fn pending_post_with_buttons_carries_them_as_attachment_actions() {
    let view = RequestView {
        buttons: Some(buttons()),
        ..pending()
    };
    let post = root_post(&view);
    insta::assert_json_snapshot!(post.props.to_value());
    assert_eq!(post.message, root_post(&pending()).message);
}

#[test]
fn every_state_has_its_colour_and_first_line_and_a_post_without_buttons_has_no_actions() {
    let colour = |status| {
        let props = root_post(&RequestView {
            status,
            ..pending()
        })
        .props
        .to_value();
        let message = root_post(&RequestView {
            status,
            ..pending()
        })
        .message;
        // Snapshots trim leading blank lines, so the first line is checked here.
        let first = if status == Status::Pending {
            "*You have a new pending request to review!*"
        } else {
            "**User**: alice@example.com"
        };
        assert_eq!(message.lines().next(), Some(first), "{status:?}");
        let a = &props["attachments"][0];
        assert!(a.get("actions").is_none(), "{a}");
        assert_eq!(a["text"], status.text(), "{a}");
        a["color"].as_str().unwrap().to_string()
    };
    let all = [
        Status::Pending,
        Status::Approved,
        Status::Denied,
        Status::Expired,
        Status::Promoted,
    ];
    let colours: std::collections::BTreeSet<String> = all.into_iter().map(colour).collect();
    assert_eq!(
        colours.len(),
        all.len(),
        "one colour per state: {colours:?}"
    );
    insta::assert_json_snapshot!(
        "approved_post_props",
        root_post(&RequestView {
            status: Status::Approved,
            ..pending()
        })
        .props
        .to_value()
    );
}

#[test]
fn suite_long_request_reason_is_truncated_to_489_a() {
    let view = RequestView {
        request_reason: Some(format!("because of {}", "A".repeat(4000))),
        ..pending()
    };
    let message = root_post(&view).message;
    assert!(message.contains(&format!(
        "**Reason**: ```\nbecause of {}``` (truncated)",
        "A".repeat(489)
    )));
    assert!(message.contains("**Status**: ⏳ PENDING"));
}

#[test]
fn hostile_text_is_contained() {
    let view = RequestView {
        user: "@channel [x](https://e.vil)".into(),
        roles: vec!["@all".into(), "*bold*".into()],
        resources: vec!["node/www.e.vil".into()],
        request_reason: Some(hostile()),
        resolve_reason: Some(hostile()),
        cluster: Some("#cluster\n# heading".into()),
        ..pending()
    };
    let message = root_post(&view).message;
    insta::assert_snapshot!(message);
    assert_contained(&message);
}

#[test]
fn review_replies() {
    let approve = ReviewView {
        author: "reviewer1@example.com".into(),
        created: datetime!(2026-03-02 14:10 UTC),
        proposed: Status::Approved,
        reason: Some("okay".into()),
        count: 1,
        needed: Some(2),
    };
    let reply = review_reply(&approve);
    assert!(reply.contains("reviewer1@example.com reviewed the request"));
    // One approval of two resolves nothing: the reply says what the review was and how far.
    assert!(reply.contains("Review: ✅ approved (1 of 2)."), "{reply}");
    assert!(!reply.contains("Resolution"), "{reply}");
    assert!(reply.contains("Reason: ```\nokay```."));
    insta::assert_snapshot!("review_reply_approve", reply);

    let deny = ReviewView {
        author: "reviewer2@example.com".into(),
        proposed: Status::Denied,
        reason: None,
        count: 1,
        needed: None,
        ..approve.clone()
    };
    insta::assert_snapshot!("review_reply_deny_without_reason", review_reply(&deny));

    let hostile_review = ReviewView {
        author: "@here".into(),
        reason: Some(hostile()),
        ..approve
    };
    let reply = review_reply(&hostile_review);
    insta::assert_snapshot!("review_reply_hostile", reply);
    assert_contained(&reply);
}

#[test]
fn requester_dms() {
    let approved = RequestView {
        status: Status::Approved,
        resolve_reason: Some("okay".into()),
        ..pending()
    };
    let dm = requester_dm(&approved);
    assert!(dm.contains(&format!("`tsh login --request-id={ID}`")));
    insta::assert_snapshot!("requester_dm_approved", dm);
    let denied = RequestView {
        status: Status::Denied,
        resolve_reason: Some("not now".into()),
        ..pending()
    };
    let dm = requester_dm(&denied);
    assert!(!dm.contains("tsh login"));
    insta::assert_snapshot!("requester_dm_denied", dm);
    let expired = RequestView {
        status: Status::Expired,
        ..pending()
    };
    insta::assert_snapshot!("requester_dm_expired", requester_dm(&expired));
    insta::assert_snapshot!("requester_dm_pending", requester_dm(&pending()));
}

#[test]
fn enormous_inputs_stay_within_the_post_limit() {
    let many: Vec<String> = (0..5000)
        .map(|i| format!("role-{i}-{}", "x".repeat(50)))
        .collect();
    let view = RequestView {
        user: "u".repeat(10_000),
        roles: many.clone(),
        resources: many.clone(),
        cluster: Some("c".repeat(10_000)),
        request_reason: Some("`".repeat(10_000)),
        resolve_reason: Some("@".repeat(10_000)),
        promoted_list_title: Some("t".repeat(10_000)),
        status: Status::Promoted,
        reviews: Some(ReviewProgress {
            approvals: u32::MAX,
            approvals_needed: Some(u32::MAX),
            denials: u32::MAX,
            denials_needed: Some(u32::MAX),
        }),
        ..pending()
    };
    let message = root_post(&view).message;
    assert!(
        message.chars().count() <= MAX_POST_CHARS,
        "{}",
        message.chars().count()
    );
    assert!(message.contains(" more"));
    let dm = requester_dm(&RequestView {
        roles: many,
        ..view
    });
    assert!(dm.chars().count() <= MAX_POST_CHARS);
}

#[test]
fn create_and_update_bodies_are_what_mattermost_expects() {
    let post = root_post(&RequestView {
        buttons: Some(buttons()),
        ..pending()
    });
    let mut create = post.new_post("hx3u1kzh5prr9ecnk8ss4qb3ga");
    create.pending_post_id = Some("9qnr5tygt7bbtnh7axz3cqafqo:1772460300000".into());
    // As sent on the wire (props are pre-serialized JSON, which insta cannot walk).
    insta::assert_json_snapshot!("create_post_body", serde_json::to_value(&create).unwrap());
    let resolved = root_post(&RequestView {
        status: Status::Approved,
        resolve_reason: Some("okay".into()),
        ..pending()
    });
    insta::assert_json_snapshot!(
        "update_post_body",
        serde_json::to_value(resolved.update("kx8orfo7tjnr7pt3t8mc4qzb9y")).unwrap()
    );
}

/// No mention Mattermost would notify on, no link, no block structure from user text.
fn assert_contained(message: &str) {
    for word in ["@channel", "@here", "@all", "@bob"] {
        assert!(!message.contains(word), "{word} in {message}");
    }
    assert!(!message.contains('\u{202E}'), "bidi override in {message}");
    assert_eq!(
        message.matches("```").count() % 2,
        0,
        "unbalanced: {message}"
    );
    let outside = outside_code(message);
    assert!(!outside.contains("](https://e.vil"), "link in {outside}");
    assert!(
        !outside.contains("<https://e.vil>"),
        "autolink in {outside}"
    );
    assert!(!outside.contains("https://e.vil"), "bare URL in {outside}");
    for line in message.lines() {
        assert!(!line.starts_with('#'), "heading: {line:?}");
        assert!(!line.starts_with('>'), "quote: {line:?}");
    }
}

/// The message without the contents of its "```\n…```" code spans (shown literally).
fn outside_code(message: &str) -> String {
    let mut out = String::new();
    let mut rest = message;
    while let Some(start) = rest.find("```\n") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 4..];
        let end = after.find("```").expect("closed span");
        rest = &after[end + 3..];
    }
    out.push_str(rest);
    out
}
