//! SubmitAccessReview through the client against the simulator: own reviews, on-behalf
//! reviews (Teleport v18.11+) and every refusal a chat user can run into.

use teleport_mattermost::access::RequestState;
use teleport_mattermost::teleport::{NewReview, TeleportError};
use teleport_mattermost_sim::teleport::fixtures::*;
use teleport_mattermost_sim::teleport::{self as sim, NewRequest, ReviewAudit, SimRole};

use crate::teleport::Env;

fn approve(author: &str, reason: &str, on_behalf: bool) -> NewReview {
    NewReview {
        author: author.into(),
        proposed_state: RequestState::Approved,
        reason: reason.into(),
        on_behalf,
    }
}

fn pending(env: &Env) -> String {
    env.sim
        .create_request(NewRequest::new(REQUESTER, &[REQUESTED_ROLE]).reason("because of"))
        .id
}

fn denied(msg: &str) -> TeleportError {
    TeleportError::PermissionDenied(msg.into())
}

#[tokio::test]
async fn a_reviewers_own_review_resolves_the_request_with_its_reason() {
    let env = Env::start().await;
    let id = pending(&env);
    let reviewer = env.client(REVIEWER1);
    let after = reviewer
        .submit_review(&id, &approve(REVIEWER1, "okay", false))
        .await
        .unwrap();
    assert_eq!(after.state, RequestState::Approved);
    assert_eq!(after.resolve_reason, "okay");
    assert_eq!(after.reviews.len(), 1);
    let r = &after.reviews[0];
    assert_eq!(
        (r.author.as_str(), r.submitted_by.as_str(), r.on_behalf),
        (REVIEWER1, "", false)
    );
    assert!(r.created.is_some(), "Created is always sent");
    assert_eq!(
        env.sim.request(&id).unwrap().state,
        sim::RequestState::Approved
    );
}

#[tokio::test]
async fn an_on_behalf_review_is_applied_for_the_author_and_audited_with_the_submitter() {
    let env = Env::start().await;
    let id = pending(&env);
    let plugin = env.client(PLUGIN_USER);
    let after = plugin
        .submit_review(&id, &approve(REVIEWER1, "approved from Mattermost", true))
        .await
        .unwrap();
    assert_eq!(after.state, RequestState::Approved);
    let r = &after.reviews[0];
    assert_eq!(r.author, REVIEWER1);
    assert_eq!(r.submitted_by, PLUGIN_USER);
    assert!(r.on_behalf);
    assert_eq!(
        env.sim.review_audit(),
        vec![ReviewAudit {
            request_id: id,
            author: REVIEWER1.into(),
            submitted_by: PLUGIN_USER.into(),
            on_behalf: true,
            proposed_state: sim::RequestState::Approved,
            reason: "approved from Mattermost".into(),
        }]
    );
}

#[tokio::test]
async fn an_author_other_than_the_caller_without_on_behalf_is_refused() {
    let env = Env::start().await;
    let id = pending(&env);
    let plugin = env.client(PLUGIN_USER);
    let err = plugin
        .submit_review(&id, &approve(REVIEWER1, "x", false))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        denied(
            "user \"access-plugin\" cannot submit reviews on behalf of \"reviewer1@example.com\""
        )
    );
    assert!(env.sim.review_audit().is_empty());
}

#[tokio::test]
async fn a_plugin_role_without_submit_for_users_cannot_review_on_behalf() {
    let env = Env::start().await;
    env.sim.add_user("plain-plugin", &["access-plugin"]);
    let id = pending(&env);
    let plugin = env.client("plain-plugin");
    let err = plugin
        .submit_review(&id, &approve(REVIEWER1, "x", true))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        denied(
            "user \"plain-plugin\" cannot submit reviews on behalf of \"reviewer1@example.com\""
        )
    );
    // submit_for_users may also list names.
    env.sim
        .add_role(SimRole::access_plugin().submit_for(&[REVIEWER2]));
    env.sim.add_user("plain-plugin", &["access-plugin"]);
    let err = plugin
        .submit_review(&id, &approve(REVIEWER1, "x", true))
        .await
        .unwrap_err();
    assert!(matches!(err, TeleportError::PermissionDenied(_)));
    plugin
        .submit_review(&id, &approve(REVIEWER2, "ok", true))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_second_review_by_the_same_author_is_refused() {
    let env = Env::start().await;
    let id = env
        .sim
        .create_request(NewRequest {
            thresholds: Some(vec![sim::Threshold {
                name: "two".into(),
                approve: 2,
                deny: 2,
            }]),
            ..NewRequest::new(REQUESTER, &[REQUESTED_ROLE])
        })
        .id;
    let plugin = env.client(PLUGIN_USER);
    let first = plugin
        .submit_review(&id, &approve(REVIEWER1, "okay", true))
        .await
        .unwrap();
    assert_eq!(first.state, RequestState::Pending, "needs two approvals");
    let err = plugin
        .submit_review(&id, &approve(REVIEWER1, "again", true))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        denied("user \"reviewer1@example.com\" has already reviewed this request")
    );
    assert!(err.message().ends_with("has already reviewed this request"));
    let second = plugin
        .submit_review(&id, &approve(REVIEWER2, "finally okay", true))
        .await
        .unwrap();
    assert_eq!(second.state, RequestState::Approved);
    assert_eq!(second.resolve_reason, "finally okay");
}

#[tokio::test]
async fn reviewing_ones_own_request_is_refused() {
    let env = Env::start().await;
    let id = env
        .sim
        .create_request(NewRequest::new(REVIEWER2, &[REQUESTED_ROLE]))
        .id;
    let plugin = env.client(PLUGIN_USER);
    let err = plugin
        .submit_review(&id, &approve(REVIEWER2, "me", true))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        denied(&format!(
            "user \"reviewer2@example.com\" cannot review request {id:?}"
        ))
    );
}

#[tokio::test]
async fn an_author_without_review_rights_is_refused() {
    let env = Env::start().await;
    let id = pending(&env);
    let plugin = env.client(PLUGIN_USER);
    let err = plugin
        .submit_review(&id, &approve(BYSTANDER, "x", true))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        denied(&format!(
            "user \"bystander@example.com\" cannot review request {id:?}"
        ))
    );
    // The caller's own review needs some review_requests rule at all.
    let bystander = env.client(BYSTANDER);
    let err = bystander
        .submit_review(&id, &approve(BYSTANDER, "x", false))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        denied("user \"bystander@example.com\" cannot submit reviews")
    );
    let err = plugin
        .submit_review(&id, &approve("ghost", "x", true))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        TeleportError::NotFound("user \"ghost\" is not found".into())
    );
}

#[tokio::test]
async fn an_older_server_refuses_on_behalf_reviews() {
    let env = Env::start().await;
    env.sim.set_server_version("18.10.4");
    let id = pending(&env);
    let plugin = env.client(PLUGIN_USER);
    assert!(!plugin.ping().await.unwrap().supports_on_behalf_reviews());
    let err = plugin
        .submit_review(&id, &approve(REVIEWER1, "x", true))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        denied(
            "user \"access-plugin\" cannot submit reviews on behalf of \"reviewer1@example.com\""
        )
    );
    // Its own users still review normally; the new fields are unknown to it.
    let after = env
        .client(REVIEWER1)
        .submit_review(&id, &approve(REVIEWER1, "ok", false))
        .await
        .unwrap();
    assert_eq!(after.state, RequestState::Approved);
}

#[tokio::test]
async fn resolved_requests_and_promoted_proposals_are_refused() {
    let env = Env::start().await;
    let id = pending(&env);
    env.sim.deny(&id, "not okay").unwrap();
    let plugin = env.client(PLUGIN_USER);
    let err = plugin
        .submit_review(&id, &approve(REVIEWER1, "late", true))
        .await
        .unwrap_err();
    assert_eq!(err, denied("the access request has been already denied"));

    let id = pending(&env);
    let mut promote = approve(REVIEWER1, "x", true);
    promote.proposed_state = RequestState::Promoted;
    let err = plugin.submit_review(&id, &promote).await.unwrap_err();
    assert_eq!(
        err,
        TeleportError::BadParameter(
            "state promoted can be only set when promoting to access list".into()
        )
    );
    let err = plugin
        .submit_review("no-such-id", &approve(REVIEWER1, "x", true))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        TeleportError::NotFound("access request \"no-such-id\" not found".into())
    );
}

#[tokio::test]
async fn a_denial_resolves_and_broadcasts_the_updated_request() {
    let env = Env::start().await;
    let plugin = env.client(PLUGIN_USER);
    let mut w = plugin
        .watch(teleport_mattermost::teleport::WatchRequest::plugin())
        .await
        .unwrap();
    crate::teleport::next(&mut w).await.unwrap();
    let id = pending(&env);
    crate::teleport::next_put(&mut w).await;
    let mut deny = approve(REVIEWER1, "not okay", true);
    deny.proposed_state = RequestState::Denied;
    plugin.submit_review(&id, &deny).await.unwrap();
    let put = crate::teleport::next_put(&mut w).await;
    assert_eq!(
        (put.state, put.resolve_reason.as_str()),
        (RequestState::Denied, "not okay")
    );
    assert_eq!(put.reviews[0].submitted_by, PLUGIN_USER);
}

#[tokio::test]
async fn the_admin_api_applies_the_same_review_checks() {
    let env = Env::start().await;
    let id = pending(&env);
    let review = |reason: &str| sim::NewReview {
        author: REVIEWER1.into(),
        proposed_state: sim::RequestState::Approved,
        reason: reason.into(),
        on_behalf: false,
    };
    let err = env
        .sim
        .submit_review_as(BYSTANDER, &id, &review("x"))
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
    let after = env
        .sim
        .submit_review_as(REVIEWER1, &id, &review("ok"))
        .unwrap();
    assert_eq!(after.state, sim::RequestState::Approved);
}
