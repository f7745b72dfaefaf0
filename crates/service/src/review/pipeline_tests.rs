//! The review decision against an in-memory Teleport (requests, submissions) and directory
//! (Mattermost user → Teleport user): one test per check, and one for their order.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::metrics::{ReviewMetrics, Source};
use super::outcome::{ALREADY_REVIEWED, Outcome};
use super::pipeline::{Attempt, ClusterFacts, Decision, Pipeline, Policy};
use super::ports::{Directory, Requests};
use crate::access::{AccessRequest, RequestKind, RequestState, Review};
use crate::config::RequireReason;
use crate::metrics::Metrics;
use crate::signing::Action;
use crate::teleport::TeleportError;
use crate::teleport::client::NewReview;

const ID: &str = "0193a2b4-7c1d-7e2f-8a3b-4c5d6e7f8091";
const REQUESTER: &str = "alice";
const REVIEWER: &str = "bob";
/// Mattermost user ids the fake directory knows.
const MM_BOB: &str = "mm-bob";
const MM_ALICE: &str = "mm-alice";
const MM_NOBODY: &str = "mm-nobody";

/// Every port call, in order, across both fakes.
type Calls = Arc<Mutex<Vec<String>>>;

/// Teleport's requests: reads answer from the map (or `read_error`), submissions are
/// recorded and applied (or refused with `submit_error`).
#[derive(Clone, Default)]
struct FakeTeleport {
    requests: Arc<Mutex<BTreeMap<String, AccessRequest>>>,
    read_error: Arc<Mutex<Option<TeleportError>>>,
    submit_error: Arc<Mutex<Option<TeleportError>>>,
    submitted: Arc<Mutex<Vec<NewReview>>>,
    calls: Calls,
}

impl Requests for FakeTeleport {
    async fn get(&self, request_id: &str) -> Result<Option<AccessRequest>, TeleportError> {
        self.calls.lock().unwrap().push(format!("get {request_id}"));
        if let Some(e) = self.read_error.lock().unwrap().clone() {
            return Err(e);
        }
        Ok(self.requests.lock().unwrap().get(request_id).cloned())
    }

    async fn submit(
        &self,
        request_id: &str,
        review: &NewReview,
    ) -> Result<AccessRequest, TeleportError> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("submit {request_id}"));
        if let Some(e) = self.submit_error.lock().unwrap().clone() {
            return Err(e);
        }
        self.submitted.lock().unwrap().push(review.clone());
        let mut requests = self.requests.lock().unwrap();
        let r = requests
            .get_mut(request_id)
            .ok_or_else(|| TeleportError::NotFound("no such request".into()))?;
        r.reviews.push(Review {
            author: review.author.clone(),
            proposed_state: review.proposed_state,
            reason: review.reason.clone(),
            created: None,
            submitted_by: "access-plugin".into(),
            on_behalf: review.on_behalf,
        });
        r.state = review.proposed_state;
        Ok(r.clone())
    }
}

/// Mattermost user id → Teleport user, or the outcome the real directory would give.
#[derive(Clone)]
struct FakeDirectory {
    users: BTreeMap<String, Result<String, Outcome>>,
    calls: Calls,
}

impl Directory for FakeDirectory {
    async fn identify(&self, chat_user_id: &str) -> Result<String, Outcome> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("identify {chat_user_id}"));
        match self.users.get(chat_user_id) {
            Some(bound) => bound.clone(),
            None => Err(unlinked(chat_user_id)),
        }
    }
}

fn unlinked(chat_user_id: &str) -> Outcome {
    Outcome::Unlinked {
        chat_user_id: chat_user_id.into(),
        trait_name: "mattermost_user_id".into(),
        email_allowed: false,
    }
}

struct World {
    teleport: FakeTeleport,
    calls: Calls,
    metrics: Metrics,
    pipeline: Pipeline<FakeTeleport, FakeDirectory>,
}

fn policy() -> Policy {
    Policy {
        require_reason: RequireReason::Deny,
        link_only_roles: vec!["admin".into()],
        cluster: ClusterFacts {
            version: "18.11.0".into(),
            on_behalf: true,
            link_base: url::Url::parse("https://tp.example.com/web/requests/").ok(),
        },
    }
}

fn pending(user: &str, roles: &[&str]) -> AccessRequest {
    AccessRequest {
        id: ID.into(),
        user: user.into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        state: RequestState::Pending,
        kind: RequestKind::ShortTerm,
        ..Default::default()
    }
}

fn world_with(policy: Policy, request: Option<AccessRequest>) -> World {
    let calls = Calls::default();
    let teleport = FakeTeleport {
        calls: calls.clone(),
        ..Default::default()
    };
    if let Some(r) = request {
        teleport.requests.lock().unwrap().insert(r.id.clone(), r);
    }
    let directory = FakeDirectory {
        users: BTreeMap::from([
            (MM_BOB.to_string(), Ok(REVIEWER.to_string())),
            (MM_ALICE.to_string(), Ok(REQUESTER.to_string())),
        ]),
        calls: calls.clone(),
    };
    let metrics = Metrics::new();
    let pipeline = Pipeline::new(
        teleport.clone(),
        directory,
        policy,
        ReviewMetrics::new(&metrics),
    );
    World {
        teleport,
        calls,
        metrics,
        pipeline,
    }
}

fn world(request: AccessRequest) -> World {
    world_with(policy(), Some(request))
}

fn attempt(chat_user_id: &str, action: Action, reason: &str) -> Attempt {
    Attempt {
        chat_user_id: chat_user_id.into(),
        request_id: ID.into(),
        action,
        reason: reason.into(),
        source: Source::Button,
    }
}

fn approve(chat_user_id: &str) -> Attempt {
    attempt(chat_user_id, Action::Approve, "")
}

impl World {
    async fn decide(&self, a: &Attempt) -> Decision {
        self.pipeline.decide(a).await
    }

    async fn outcome(&self, a: &Attempt) -> Outcome {
        match self.decide(a).await {
            Decision::Done(o) => o,
            other => panic!("expected an outcome, got {other:?}"),
        }
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    fn submitted(&self) -> Vec<NewReview> {
        self.teleport.submitted.lock().unwrap().clone()
    }

    fn counted(&self, source: &str, outcome: &str) -> bool {
        self.metrics.render().contains(&format!(
            "teleport_mattermost_reviews_total{{outcome=\"{outcome}\",source=\"{source}\"}} 1"
        ))
    }
}

#[tokio::test]
async fn a_pending_request_is_submitted_on_behalf_of_the_bound_teleport_user() {
    let w = world(pending(REQUESTER, &["editor"]));
    let mut a = attempt(MM_BOB, Action::Deny, "not during the freeze");
    a.source = Source::Dialog;
    match w.outcome(&a).await {
        Outcome::Reviewed {
            author,
            action,
            request,
        } => {
            assert_eq!((author.as_str(), action), (REVIEWER, Action::Deny));
            assert_eq!(request.state, RequestState::Denied);
        }
        other => panic!("expected a review, got {other:?}"),
    }
    assert_eq!(
        w.submitted(),
        vec![NewReview {
            author: REVIEWER.into(),
            proposed_state: RequestState::Denied,
            reason: "not during the freeze".into(),
            on_behalf: true,
        }]
    );
    assert!(w.counted("dialog", "submitted"));
}

#[tokio::test]
async fn check_1_a_request_that_no_longer_exists_is_gone_and_nobody_is_looked_up() {
    let w = world_with(policy(), None);
    assert_eq!(w.outcome(&approve(MM_BOB)).await, Outcome::Gone);
    assert_eq!(w.calls(), vec![format!("get {ID}")]);
    assert!(w.counted("button", "resolved"));
}

#[tokio::test]
async fn check_1_an_unreachable_teleport_submits_nothing() {
    let w = world(pending(REQUESTER, &["editor"]));
    *w.teleport.read_error.lock().unwrap() = Some(TeleportError::ConnectionProblem("reset".into()));
    assert_eq!(w.outcome(&approve(MM_BOB)).await, Outcome::Unavailable);
    *w.teleport.read_error.lock().unwrap() = Some(TeleportError::PermissionDenied("no".into()));
    assert_eq!(
        w.outcome(&approve(MM_BOB)).await,
        Outcome::Failed("no".into())
    );
    assert!(w.submitted().is_empty());
}

#[tokio::test]
async fn check_1_a_resolved_request_is_refused_with_its_state() {
    let mut r = pending(REQUESTER, &["editor"]);
    r.state = RequestState::Approved;
    let w = world(r);
    assert_eq!(
        w.outcome(&approve(MM_BOB)).await,
        Outcome::Resolved {
            state: RequestState::Approved
        }
    );
    assert_eq!(w.calls(), vec![format!("get {ID}")]);
}

#[tokio::test]
async fn check_2_link_only_roles_long_term_requests_and_old_clusters_go_to_teleport() {
    let link_only = world(pending(REQUESTER, &["editor", "admin"]));
    let mut long_term = pending(REQUESTER, &["editor"]);
    long_term.kind = RequestKind::LongTerm;
    let long_term = world(long_term);
    let mut old = policy();
    old.cluster.on_behalf = false;
    old.cluster.version = "18.10.2".into();
    let old = world_with(old, Some(pending(REQUESTER, &["editor"])));
    for (w, why) in [
        (&link_only, "role `admin`"),
        (&long_term, "long-term"),
        (&old, "18.10.2"),
    ] {
        match w.outcome(&approve(MM_BOB)).await {
            Outcome::ReviewInTeleport {
                why: text,
                request_id,
                link,
                ..
            } => {
                assert!(text.contains(why), "{text}");
                assert_eq!(request_id, ID);
                assert_eq!(
                    link.unwrap().as_str(),
                    format!("https://tp.example.com/web/requests/{ID}")
                );
            }
            other => panic!("{why}: expected review in Teleport, got {other:?}"),
        }
        assert_eq!(w.calls(), vec![format!("get {ID}")], "{why}");
    }
}

#[tokio::test]
async fn check_3_an_unlinked_reviewer_is_refused_before_submission() {
    let w = world(pending(REQUESTER, &["editor"]));
    assert_eq!(w.outcome(&approve(MM_NOBODY)).await, unlinked(MM_NOBODY));
    assert_eq!(
        w.calls(),
        vec![format!("get {ID}"), format!("identify {MM_NOBODY}")]
    );
    assert!(w.submitted().is_empty());
    assert!(w.counted("button", "unlinked"));
}

#[tokio::test]
async fn check_4_reviewing_ones_own_request_is_refused() {
    let w = world(pending(REQUESTER, &["editor"]));
    assert_eq!(w.outcome(&approve(MM_ALICE)).await, Outcome::SelfReview);
    assert!(w.submitted().is_empty());
    assert!(w.counted("button", "self_review"));
}

#[tokio::test]
async fn check_5_a_missing_required_reason_is_asked_for_and_nothing_is_submitted() {
    let w = world(pending(REQUESTER, &["editor"]));
    match w.decide(&attempt(MM_BOB, Action::Deny, "")).await {
        Decision::NeedsReason {
            problem,
            request,
            author,
        } => {
            assert_eq!(problem, "A reason is required to deny this request.");
            assert_eq!((request.id.as_str(), author.as_str()), (ID, REVIEWER));
        }
        other => panic!("expected a reason to be asked for, got {other:?}"),
    }
    let long = "x".repeat(1001);
    match w.decide(&attempt(MM_BOB, Action::Approve, &long)).await {
        Decision::NeedsReason { problem, .. } => {
            assert!(problem.contains("1001 characters"), "{problem}")
        }
        other => panic!("expected a too-long reason, got {other:?}"),
    }
    assert!(w.submitted().is_empty());
    assert!(
        !w.metrics.render().contains("reviews_total{"),
        "asking for a reason is not an outcome"
    );
}

#[tokio::test]
async fn check_5_require_reason_never_deny_and_always() {
    for (rule, action, asks) in [
        (RequireReason::Never, Action::Deny, false),
        (RequireReason::Deny, Action::Deny, true),
        (RequireReason::Deny, Action::Approve, false),
        (RequireReason::Always, Action::Approve, true),
    ] {
        let mut p = policy();
        p.require_reason = rule;
        let w = world_with(p, Some(pending(REQUESTER, &["editor"])));
        let d = w.decide(&attempt(MM_BOB, action, "")).await;
        assert_eq!(
            matches!(d, Decision::NeedsReason { .. }),
            asks,
            "{rule:?} {action:?}: {d:?}"
        );
        assert_eq!(w.submitted().len(), usize::from(!asks));
    }
}

#[tokio::test]
async fn a_refused_submission_is_classified_after_reading_the_request_again() {
    let w = world(pending(REQUESTER, &["editor"]));
    *w.teleport.submit_error.lock().unwrap() = Some(TeleportError::PermissionDenied(format!(
        "user \"bob\" {ALREADY_REVIEWED}"
    )));
    assert_eq!(
        w.outcome(&approve(MM_BOB)).await,
        Outcome::AlreadyReviewed {
            author: REVIEWER.into()
        }
    );
    *w.teleport.submit_error.lock().unwrap() = Some(TeleportError::PermissionDenied(
        "user \"bob\" cannot review request".into(),
    ));
    let outcome = w.outcome(&approve(MM_BOB)).await;
    assert!(
        matches!(&outcome, Outcome::NotAllowed { author, .. } if author == REVIEWER),
        "{outcome:?}"
    );
    assert_eq!(
        w.calls()[w.calls().len() - 2..],
        [format!("submit {ID}"), format!("get {ID}")],
        "the refusal is explained from the request as it is now"
    );
    *w.teleport.submit_error.lock().unwrap() =
        Some(TeleportError::ConnectionProblem("reset".into()));
    assert_eq!(w.outcome(&approve(MM_BOB)).await, Outcome::Unavailable);
    assert!(w.counted("button", "already_reviewed") && w.counted("button", "not_allowed"));
}

/// One attempt that fails every check; each round repairs the check that answered, and the
/// next one in the documented order must answer.
#[tokio::test]
async fn the_checks_run_in_the_documented_order() {
    let mut request = pending(REQUESTER, &["admin"]);
    request.state = RequestState::Denied;
    let mut p = policy();
    p.require_reason = RequireReason::Always;
    let mut a = attempt(MM_NOBODY, Action::Approve, "");
    let kind = |d: &Decision| match d {
        Decision::Done(o) => o.label(),
        Decision::NeedsReason { .. } => "needs_reason",
    };
    let mut seen = Vec::new();
    for round in 0..6 {
        let w = world_with(p.clone(), Some(request.clone()));
        let d = w.decide(&a).await;
        seen.push(kind(&d));
        match round {
            0 => request.state = RequestState::Pending,
            1 => request.roles = vec!["editor".into()],
            2 => a.chat_user_id = MM_ALICE.into(),
            3 => a.chat_user_id = MM_BOB.into(),
            4 => a.reason = "on call".into(),
            _ => {}
        }
    }
    assert_eq!(
        seen,
        [
            "resolved",
            "review_in_teleport",
            "unlinked",
            "self_review",
            "needs_reason",
            "submitted"
        ]
    );
}
