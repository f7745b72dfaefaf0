//! The Teleport client against the Auth simulator over real mTLS sockets: ping, watch,
//! listing, plugin data with CAS, users, rules, and permission errors. Shared helpers for
//! the other `teleport_*` modules live here.

use std::path::PathBuf;
use std::time::Duration;

use futures_util::StreamExt;
use teleport_mattermost::access::{
    AccessMonitoringRule, AccessRequest, RequestKind, RequestState, ResourceId, Review,
    RuleNotification, Threshold,
};
use teleport_mattermost::config::{Credentials, TeleportConfig};
use teleport_mattermost::signals::Signals;
use teleport_mattermost::teleport::{
    ChannelOptions, ClientOptions, EventStream, RequestFilter, TeleportClient, TeleportError,
    WatchEvent, WatchKind, WatchRequest,
};
use teleport_mattermost_sim::teleport::fixtures::{self, *};
use teleport_mattermost_sim::teleport::{
    self as sim, NewRequest, SimOptions, SimRole, TeleportSim,
};
use tokio_util::sync::CancellationToken;

pub struct Env {
    pub sim: TeleportSim,
    pub dir: tempfile::TempDir,
    pub shutdown: CancellationToken,
}

impl Env {
    pub async fn start() -> Self {
        Self::with(SimOptions::default()).await
    }

    pub async fn with(opts: SimOptions) -> Self {
        let sim = TeleportSim::start(opts).await.unwrap();
        fixtures::standard(&sim);
        Self {
            sim,
            dir: tempfile::tempdir().unwrap(),
            shutdown: CancellationToken::new(),
        }
    }

    pub fn identity_path(&self, user: &str) -> PathBuf {
        self.dir
            .path()
            .join(format!("{}.identity", user.replace('@', "_")))
    }

    pub fn config(&self, user: &str) -> TeleportConfig {
        TeleportConfig {
            addr: self.sim.addr().to_string(),
            credentials: Credentials::IdentityFile(self.identity_path(user)),
            refresh_identity: false,
            refresh_identity_interval: Duration::from_secs(3600),
            proxy_ca: Vec::new(),
        }
    }

    /// A client logged in as `user` with a fresh identity.
    pub fn client(&self, user: &str) -> TeleportClient {
        self.sim
            .write_identity(user, &self.identity_path(user))
            .unwrap();
        TeleportClient::connect(
            &self.config(user),
            &Signals::manual(self.shutdown.clone()),
            client_options(),
        )
        .unwrap()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub fn client_options() -> ClientOptions {
    ClientOptions {
        channel: ChannelOptions {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
            ..Default::default()
        },
        call_timeout: Duration::from_secs(5),
        list_timeout: Duration::from_secs(10),
    }
}

pub async fn next(stream: &mut EventStream) -> Result<WatchEvent, TeleportError> {
    tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("an event within 5s")
        .expect("the stream is still open")
}

/// What the client must decode for a request the simulator holds: the same facts in the
/// service's own model (the two models share no code, so this is the test's assertion).
pub fn as_client_request(r: &sim::AccessRequest) -> AccessRequest {
    AccessRequest {
        id: r.id.clone(),
        user: r.user.clone(),
        roles: r.roles.clone(),
        state: as_client_state(r.state),
        created: r.created,
        expires: r.expires,
        // The simulator's resource expiry is the access expiry.
        pending_expires: r.expires,
        max_duration: r.max_duration,
        session_ttl: r.session_ttl,
        request_reason: r.request_reason.clone(),
        resolve_reason: r.resolve_reason.clone(),
        system_annotations: r.system_annotations.clone(),
        thresholds: r
            .thresholds
            .iter()
            .map(|t| Threshold {
                name: t.name.clone(),
                approve: t.approve,
                deny: t.deny,
            })
            .collect(),
        reviews: r
            .reviews
            .iter()
            .map(|v| Review {
                author: v.author.clone(),
                proposed_state: as_client_state(v.proposed_state),
                reason: v.reason.clone(),
                created: v.created,
                submitted_by: v.submitted_by.clone(),
                on_behalf: v.on_behalf,
            })
            .collect(),
        suggested_reviewers: r.suggested_reviewers.clone(),
        resources: r
            .resources
            .iter()
            .map(|id| ResourceId {
                cluster: id.cluster.clone(),
                kind: id.kind.clone(),
                name: id.name.clone(),
                sub_resource: id.sub_resource.clone(),
            })
            .collect(),
        promoted_access_list_title: r.promoted_access_list_title.clone(),
        kind: match r.kind {
            sim::RequestKind::Undefined => RequestKind::Undefined,
            sim::RequestKind::ShortTerm => RequestKind::ShortTerm,
            sim::RequestKind::LongTerm => RequestKind::LongTerm,
        },
    }
}

/// A simulator state in the service's model, by Teleport's name for it.
pub fn as_client_state(s: sim::RequestState) -> RequestState {
    s.name()
        .parse()
        .expect("both models know Teleport's state names")
}

/// A simulator rule in the service's model.
pub fn as_client_rule(r: &sim::AccessMonitoringRule) -> AccessMonitoringRule {
    AccessMonitoringRule {
        name: r.name.clone(),
        subjects: r.subjects.clone(),
        states: r.states.clone(),
        condition: r.condition.clone(),
        notification: RuleNotification {
            name: r.notification.name.clone(),
            recipients: r.notification.recipients.clone(),
        },
    }
}

pub async fn next_put(stream: &mut EventStream) -> AccessRequest {
    match next(stream).await.unwrap() {
        WatchEvent::RequestPut(r) => *r,
        other => panic!("expected a request PUT, got {other:?}"),
    }
}

#[tokio::test]
async fn ping_reports_the_cluster_and_every_call_carries_a_semver_version_header() {
    let env = Env::start().await;
    let c = env.client(PLUGIN_USER);
    let ping = c.ping().await.unwrap();
    assert_eq!(ping.cluster_name, "sim.teleport.test");
    assert_eq!(ping.server_version, "18.11.0");
    assert_eq!(ping.proxy_public_addr, "teleport.sim.test:443");
    assert!(ping.advanced_access_workflows);
    assert!(ping.supports_on_behalf_reviews());
    assert_eq!(c.identity().username, PLUGIN_USER);

    env.sim.set_advanced_access_workflows(false);
    env.sim.set_server_version("17.4.2");
    let ping = c.ping().await.unwrap();
    assert!(!ping.advanced_access_workflows);
    assert!(!ping.supports_on_behalf_reviews());

    let versions = env.sim.faults().version_headers_seen();
    assert_eq!(versions.len(), 1, "{versions:?}");
    let v = versions.iter().next().unwrap();
    assert_eq!(
        v.split('.').filter(|p| p.parse::<u64>().is_ok()).count(),
        3,
        "{v}"
    );
}

#[tokio::test]
async fn grpc_paths_are_teleports_service_paths() {
    let env = Env::start().await;
    let c = env.client(PLUGIN_USER);
    c.ping().await.unwrap();
    let mut w = c.watch(WatchRequest::plugin()).await.unwrap();
    next(&mut w).await.unwrap();
    c.list_access_requests(&RequestFilter::default())
        .await
        .unwrap();
    c.get_plugin_data("mattermost", "x").await.unwrap();
    let _ = c
        .update_plugin_data("mattermost", "x", Default::default(), Default::default())
        .await;
    c.list_access_monitoring_rules("mattermost").await.unwrap();
    c.get_user(PLUGIN_USER).await.unwrap();
    let _ = c
        .submit_review(
            "x",
            &teleport_mattermost::teleport::NewReview {
                author: PLUGIN_USER.into(),
                proposed_state: RequestState::Approved,
                reason: String::new(),
                on_behalf: false,
            },
        )
        .await;
    let paths: Vec<String> = env.sim.faults().paths_seen().into_iter().collect();
    assert_eq!(
        paths,
        vec![
            "/proto.AuthService/GetAccessRequestsV2",
            "/proto.AuthService/GetPluginData",
            "/proto.AuthService/GetUser",
            "/proto.AuthService/Ping",
            "/proto.AuthService/SubmitAccessReview",
            "/proto.AuthService/UpdatePluginData",
            "/proto.AuthService/WatchEvents",
            "/teleport.accessmonitoringrules.v1.AccessMonitoringRulesService/ListAccessMonitoringRulesWithFilter",
        ]
    );
}

#[tokio::test]
async fn watch_starts_with_init_then_streams_puts_and_deletes_of_requests_and_rules() {
    let env = Env::start().await;
    let c = env.client(PLUGIN_USER);
    let mut w = c.watch(WatchRequest::plugin()).await.unwrap();
    assert_eq!(
        next(&mut w).await.unwrap(),
        WatchEvent::Init {
            confirmed_kinds: Some(vec![
                "access_request".into(),
                "access_monitoring_rule".into()
            ])
        }
    );

    let created = env.sim.create_request(
        NewRequest::new(REQUESTER, &[REQUESTED_ROLE])
            .reason("because of")
            .suggested_reviewers(&[REVIEWER1]),
    );
    let put = next_put(&mut w).await;
    assert_eq!(put, as_client_request(&created));
    assert_eq!(put.state, RequestState::Pending);
    assert_eq!(put.request_reason, "because of");
    assert_eq!(put.suggested_reviewers, vec![REVIEWER1.to_string()]);
    assert!(put.created.is_some() && put.expires.is_some());
    assert_eq!(put.max_duration, None, "Go's zero time decodes as unset");

    env.sim.approve(&created.id, "okay").unwrap();
    let put = next_put(&mut w).await;
    assert_eq!(
        (put.state, put.resolve_reason.as_str()),
        (RequestState::Approved, "okay")
    );

    env.sim.delete_request(&created.id);
    assert_eq!(
        next(&mut w).await.unwrap(),
        WatchEvent::RequestDelete {
            id: created.id.clone()
        }
    );

    let rule = sim::AccessMonitoringRule {
        name: "route-editors".into(),
        subjects: vec!["access_request".into()],
        states: vec![],
        condition: "contains(access_request.spec.roles, \"editor\")".into(),
        notification: sim::RuleNotification {
            name: "mattermost".into(),
            recipients: vec!["team/channel".into()],
        },
    };
    env.sim.upsert_rule(rule.clone());
    assert_eq!(
        next(&mut w).await.unwrap(),
        WatchEvent::RulePut(as_client_rule(&rule))
    );
    env.sim.delete_rule("route-editors");
    assert_eq!(
        next(&mut w).await.unwrap(),
        WatchEvent::RuleDelete {
            name: "route-editors".into()
        }
    );
}

#[tokio::test]
async fn partial_success_drops_kinds_the_caller_may_not_read() {
    let env = Env::start().await;
    env.sim.add_role(
        SimRole::new("requests-only").allow(&["access_request"], &["list", "read", "update"]),
    );
    env.sim.add_user("narrow-plugin", &["requests-only"]);
    let c = env.client("narrow-plugin");
    let mut w = c.watch(WatchRequest::plugin()).await.unwrap();
    assert_eq!(
        next(&mut w).await.unwrap(),
        WatchEvent::Init {
            confirmed_kinds: Some(vec!["access_request".into()])
        }
    );
    let err = c
        .list_access_monitoring_rules("mattermost")
        .await
        .unwrap_err();
    assert_eq!(
        err,
        TeleportError::PermissionDenied(
            "access denied to perform action \"read\" on \"access_monitoring_rule\"".into()
        )
    );
}

#[tokio::test]
async fn a_client_without_permission_gets_permission_denied_on_watch() {
    let env = Env::start().await;
    let c = env.client(BYSTANDER);
    let strict = WatchRequest {
        allow_partial_success: false,
        ..WatchRequest::plugin()
    };
    let err = match c.watch(strict).await {
        Err(e) => e,
        Ok(mut s) => next(&mut s).await.unwrap_err(),
    };
    assert_eq!(
        err,
        TeleportError::PermissionDenied(
            "access denied to perform action \"read\" on \"access_request\"".into()
        )
    );
    assert!(!err.is_transient());

    let err = match c.watch(WatchRequest::plugin()).await {
        Err(e) => e,
        Ok(mut s) => next(&mut s).await.unwrap_err(),
    };
    assert_eq!(
        err,
        TeleportError::BadParameter("none of the requested kinds can be watched".into())
    );

    // Users may always watch their own requests.
    let own = WatchRequest {
        kinds: vec![WatchKind::new("access_request").with_filter("user", BYSTANDER)],
        allow_partial_success: false,
    };
    let mut w = c.watch(own).await.unwrap();
    assert!(matches!(
        next(&mut w).await.unwrap(),
        WatchEvent::Init { .. }
    ));
    env.sim
        .create_request(NewRequest::new(REQUESTER, &[REQUESTED_ROLE]));
    let mine = env
        .sim
        .create_request(NewRequest::new(BYSTANDER, &[REQUESTED_ROLE]));
    assert_eq!(
        next_put(&mut w).await.id,
        mine.id,
        "the filter skips other users' requests"
    );
}

#[tokio::test]
async fn list_access_requests_filters_by_state_and_id() {
    let env = Env::start().await;
    let c = env.client(PLUGIN_USER);
    let ids: Vec<String> = (0..3)
        .map(|i| {
            env.sim
                .create_request(
                    NewRequest::new(REQUESTER, &[REQUESTED_ROLE]).reason(&format!("r{i}")),
                )
                .id
        })
        .collect();
    env.sim.deny(&ids[1], "no").unwrap();
    let all = c
        .list_access_requests(&RequestFilter::default())
        .await
        .unwrap();
    assert_eq!(all.len(), 3);
    let pending = c
        .list_access_requests(&RequestFilter::state(RequestState::Pending))
        .await
        .unwrap();
    assert_eq!(
        pending.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
        vec![ids[0].clone(), ids[2].clone()]
    );
    let one = c.get_access_request(&ids[1]).await.unwrap().unwrap();
    assert_eq!(one.state, RequestState::Denied);
    assert_eq!(c.get_access_request("nope").await.unwrap(), None);

    // Without list/read a reviewer sees only what it may review; others see their own.
    let reviewer = env.client(REVIEWER1);
    assert_eq!(
        reviewer
            .list_access_requests(&RequestFilter::default())
            .await
            .unwrap()
            .len(),
        3
    );
    let bystander = env.client(BYSTANDER);
    assert!(
        bystander
            .list_access_requests(&RequestFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn get_user_returns_roles_and_traits() {
    let env = Env::start().await;
    let c = env.client(PLUGIN_USER);
    env.sim
        .add_role(SimRole::new("user-reader").allow(&["user"], &["read"]));
    env.sim.add_user("reader", &["user-reader"]);
    let reader = env.client("reader");
    let u = reader.get_user(REVIEWER1).await.unwrap();
    assert_eq!(u.roles, vec!["reviewer".to_string()]);
    assert_eq!(
        u.traits["mattermost_user_id"],
        vec!["mm-reviewer-1".to_string()]
    );
    assert_eq!(
        reader.get_user("ghost").await.unwrap_err(),
        TeleportError::NotFound("user \"ghost\" is not found".into())
    );
    // Anyone may read themselves; others need `read` on `user` (which the plugin's
    // `access-plugin-with-review` role has, for in-chat review; the requester has not).
    assert_eq!(c.get_user(PLUGIN_USER).await.unwrap().name, PLUGIN_USER);
    let requester = env.client(REQUESTER);
    assert_eq!(requester.get_user(REQUESTER).await.unwrap().name, REQUESTER);
    assert!(matches!(
        requester.get_user(REVIEWER1).await,
        Err(TeleportError::PermissionDenied(_))
    ));
}

#[tokio::test]
async fn access_monitoring_rules_are_listed_across_pages_for_this_plugin_only() {
    let env = Env::start().await;
    let c = env.client(PLUGIN_USER);
    for i in 0..2100 {
        let plugin = if i % 3 == 0 { "slack" } else { "mattermost" };
        let subject = if i % 7 == 0 {
            "other_kind"
        } else {
            "access_request"
        };
        env.sim.upsert_rule(sim::AccessMonitoringRule {
            name: format!("rule-{i:05}"),
            subjects: vec![subject.into()],
            states: vec![],
            condition: "true".into(),
            notification: sim::RuleNotification {
                name: plugin.into(),
                recipients: vec![format!("r{i}")],
            },
        });
    }
    let rules = c.list_access_monitoring_rules("mattermost").await.unwrap();
    let expected = (0..2100).filter(|i| i % 3 != 0 && i % 7 != 0).count();
    assert_eq!(rules.len(), expected);
    assert!(expected > 1000, "needs more than one page");
    assert!(rules.iter().all(|r| r.notification.name == "mattermost"));
    assert!(
        rules.windows(2).all(|w| w[0].name < w[1].name),
        "each rule once, in order"
    );
    assert_eq!(
        env.sim
            .faults()
            .calls(teleport_mattermost_sim::teleport::Method::ListAccessMonitoringRules),
        2
    );
}
