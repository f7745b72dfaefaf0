//! Plugin data through the client against the simulator, on the production path: the
//! bridge's `Store` port over real sockets (conflicts seen and resolved, concurrent
//! writers), the processor's exactly-once writes over it, existence and expiry rules, and
//! the RBAC of the plugin-data RPCs.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use teleport_mattermost::access::{PluginData, RawData, Resolution};
use teleport_mattermost::bridge::metrics::BridgeMetrics;
use teleport_mattermost::bridge::ports::{Body, Chat, Found, NewPost, Place, PortError, Store};
use teleport_mattermost::bridge::post_render::PostRenderer;
use teleport_mattermost::bridge::processor::Processor;
use teleport_mattermost::bridge::queue::Outcome;
use teleport_mattermost::bridge::work::Work;
use teleport_mattermost::config::Credentials;
use teleport_mattermost::route::{PLUGIN_NAME, Recipient, Routing};
use teleport_mattermost::teleport::{PluginDataClient, TeleportClient, TeleportError};
use teleport_mattermost_sim::teleport::fixtures::*;
use teleport_mattermost_sim::teleport::{NewRequest, SimRole};

use crate::teleport::Env;

/// A chat that resolves every recipient to a channel named after it (`team/reviews` is
/// `ch-team-reviews`) and records posts.
#[derive(Clone, Default)]
pub struct RecordingChat {
    pub posts: Arc<Mutex<Vec<NewPost>>>,
    pub updates: Arc<Mutex<Vec<String>>>,
}

impl Chat for RecordingChat {
    async fn resolve(&self, r: &Recipient) -> Result<Option<String>, PortError> {
        Ok(Some(format!("ch-{}", r.to_string().replace('/', "-"))))
    }

    async fn post(&self, post: NewPost) -> Result<String, PortError> {
        let mut posts = self.posts.lock().unwrap();
        posts.push(post);
        Ok(format!("post-{}", posts.len()))
    }

    async fn find(&self, _place: Place<'_>) -> Result<Vec<Found>, PortError> {
        // Nothing is ever left unrecorded here: no takeover in these tests.
        Ok(Vec::new())
    }

    async fn update(&self, _channel_id: &str, post_id: &str, _body: Body) -> Result<(), PortError> {
        self.updates.lock().unwrap().push(post_id.to_string());
        Ok(())
    }

    async fn react(&self, _post_id: &str, _emoji: &str) -> Result<(), PortError> {
        Ok(())
    }
}

/// The service's processor over the real Teleport client, posting for the requested role
/// to one channel.
pub fn processor(
    c: &TeleportClient,
    chat: &RecordingChat,
) -> Processor<PluginDataClient, RecordingChat, PostRenderer> {
    let routing = Routing::new(BTreeMap::from([(
        REQUESTED_ROLE.to_string(),
        vec![Recipient::parse("team/reviews").unwrap()],
    )]));
    Processor {
        store: c.plugin_data(PLUGIN_NAME),
        chat: chat.clone(),
        render: PostRenderer::default(),
        routing: Arc::new(routing),
        owner: "it".into(),
        notify_requester: true,
        reminders: None,
        metrics: BridgeMetrics::new(&teleport_mattermost::metrics::Metrics::new()),
        health: Default::default(),
        scans: Default::default(),
    }
}

/// The processor's work for request `id` as the client lists it now.
pub async fn work_of(c: &TeleportClient, id: &str) -> Work {
    Work::put(c.get_access_request(id).await.unwrap().unwrap())
}

/// The first write of a request's data, as the processor makes it: every key expected absent.
async fn create(store: &impl Store, id: &str, data: &PluginData) -> Result<(), PortError> {
    let set = data.encode();
    let absent = set.keys().map(|k| (k.clone(), String::new())).collect();
    store.update(id, set, absent).await
}

/// Read, bump `reviews_count`, write expecting exactly what was read; again on a conflict.
async fn increment(store: &impl Store, id: &str) {
    loop {
        let raw = store.get(id).await.unwrap().unwrap();
        let mut data = PluginData::decode(&raw).unwrap();
        data.reviews_count += 1;
        let set = data.encode();
        let mut expect: RawData = raw.clone();
        for k in set.keys() {
            expect.entry(k.clone()).or_default();
        }
        match store.update(id, set, expect).await {
            Ok(()) => return,
            Err(PortError::Conflict) => {}
            Err(e) => panic!("{e}"),
        }
    }
}

#[tokio::test]
async fn plugin_data_cas_conflict_is_observed_and_resolved() {
    let env = Env::start().await;
    let c = env.client(PLUGIN_USER);
    let req = env
        .sim
        .create_request(NewRequest::new(REQUESTER, &[REQUESTED_ROLE]));
    let store = c.plugin_data("mattermost");
    let initial = PluginData {
        user: REQUESTER.into(),
        roles: vec![REQUESTED_ROLE.into()],
        ..Default::default()
    };
    create(&store, &req.id, &initial).await.unwrap();
    assert_eq!(
        create(&store, &req.id, &initial).await.unwrap_err(),
        PortError::Conflict,
        "a second creator loses"
    );

    // A stale Expect is refused with Teleport's message.
    let stale = initial.encode();
    let mut newer = initial.clone();
    newer.reviews_count = 1;
    c.update_plugin_data("mattermost", &req.id, newer.encode(), stale.clone())
        .await
        .unwrap();
    let err = c
        .update_plugin_data("mattermost", &req.id, initial.encode(), stale)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        TeleportError::CompareFailed("expectations not met for field \"reviews_count\"".into())
    );

    // Twenty concurrent increments over real sockets: every one lands exactly once.
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let store = c.plugin_data("mattermost");
        let id = req.id.clone();
        tasks.push(tokio::spawn(async move { increment(&store, &id).await }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let raw = env.sim.plugin_data(&req.id, "mattermost").unwrap();
    assert_eq!(raw["reviews_count"], "21");
    assert_eq!(raw["user"], REQUESTER);
    assert!(
        !raw.contains_key("resolution"),
        "empty values are deleted: {raw:?}"
    );
}

#[tokio::test]
async fn plugin_data_needs_an_existing_request_but_outlives_its_deletion() {
    let env = Env::start().await;
    let c = env.client(PLUGIN_USER);
    let data = PluginData {
        user: "u".into(),
        ..Default::default()
    };
    let err = c
        .update_plugin_data(
            "mattermost",
            "missing-id",
            data.encode(),
            Default::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err,
        TeleportError::NotFound("access request \"missing-id\" not found".into())
    );
    assert_eq!(
        create(&c.plugin_data("mattermost"), "missing-id", &data)
            .await
            .unwrap_err(),
        PortError::NotFound,
        "through the port, a missing request is NotFound"
    );

    // The processor posts the request, which is then deleted (it expired): its data is
    // still there to mark the posts expired.
    let req = env
        .sim
        .create_request(NewRequest::new(REQUESTER, &[REQUESTED_ROLE]));
    let chat = RecordingChat::default();
    let p = processor(&c, &chat);
    assert!(matches!(
        p.handle(&req.id, work_of(&c, &req.id).await).await,
        Outcome::Done
    ));
    assert_eq!(chat.posts.lock().unwrap().len(), 1);
    assert!(env.sim.delete_request(&req.id));
    let store = c.plugin_data(PLUGIN_NAME);
    let kept = PluginData::decode(&store.get(&req.id).await.unwrap().unwrap()).unwrap();
    assert_eq!(kept.messages.len(), 1);
    assert!(matches!(
        p.handle(&req.id, Work::Deleted).await,
        Outcome::Done
    ));
    let after = PluginData::decode(&store.get(&req.id).await.unwrap().unwrap()).unwrap();
    assert_eq!(after.resolution, Resolution::Expired);
    assert_eq!(*chat.updates.lock().unwrap(), vec!["post-1".to_string()]);
    // Other plugins' entries are separate.
    assert_eq!(c.get_plugin_data("slack", &req.id).await.unwrap(), None);
}

#[tokio::test]
async fn plugin_data_rights_come_from_access_request_or_access_plugin_data_rules() {
    let env = Env::start().await;
    env.sim.add_role(
        SimRole::new("pd-only").allow(&["access_plugin_data"], &["list", "read", "update"]),
    );
    env.sim.add_user("pd-plugin", &["pd-only"]);
    let req = env
        .sim
        .create_request(NewRequest::new(REQUESTER, &[REQUESTED_ROLE]));
    let ok = env.client("pd-plugin");
    create(
        &ok.plugin_data("mattermost"),
        &req.id,
        &PluginData {
            user: "u".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();

    let denied = env.client(BYSTANDER);
    let err = denied
        .get_plugin_data("mattermost", &req.id)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        TeleportError::PermissionDenied(
            "access denied to perform action \"list\" on \"access_plugin_data\"".into()
        )
    );
    let err = denied
        .update_plugin_data(
            "mattermost",
            &req.id,
            Default::default(),
            Default::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err,
        TeleportError::PermissionDenied(
            "access denied to perform action \"update\" on \"access_plugin_data\"".into()
        )
    );
}

#[tokio::test]
async fn a_refused_first_write_leaves_nothing_behind_and_other_kinds_are_bad_parameters() {
    use std::sync::Arc;
    use teleport_mattermost::teleport::wire::proto::auth_service_client::AuthServiceClient;
    use teleport_mattermost::teleport::wire::types;
    use teleport_mattermost::teleport::{DirectDialer, TlsIdentity, connect};

    let env = Env::start().await;
    let c = env.client(PLUGIN_USER);
    let req = env
        .sim
        .create_request(NewRequest::new(REQUESTER, &[REQUESTED_ROLE]));
    let expect = [("user".to_string(), "someone".to_string())].into();
    let err = c
        .update_plugin_data(
            "mattermost",
            &req.id,
            PluginData::default().encode(),
            expect,
        )
        .await
        .unwrap_err();
    assert_eq!(
        err,
        TeleportError::CompareFailed("expectations not met for field \"user\"".into())
    );
    env.sim.delete_request(&req.id);
    let set = PluginData {
        user: "u".into(),
        ..Default::default()
    }
    .encode();
    let err = c
        .update_plugin_data("mattermost", &req.id, set, Default::default())
        .await
        .unwrap_err();
    assert!(matches!(err, TeleportError::NotFound(_)), "{err:?}");

    // The raw generated client, to send what TeleportClient never would.
    let tls = TlsIdentity::load(&Credentials::IdentityFile(env.identity_path(PLUGIN_USER)))
        .unwrap()
        .fixed();
    let dialer = Arc::new(DirectDialer::new(env.sim.addr().to_string()));
    let mut raw = AuthServiceClient::new(connect::channel(dialer, tls, Default::default()));
    let status = raw
        .get_plugin_data(types::PluginDataFilter {
            kind: "node".into(),
            resource: req.id.clone(),
            plugin: "mattermost".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(status.message(), "unsupported resource kind \"node\"");
    // Without the `version` header the call still works (the header is optional).
    assert!(env.sim.faults().version_headers_seen().contains(""));
}
