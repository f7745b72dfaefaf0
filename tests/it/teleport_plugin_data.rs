//! Plugin data through the client against the simulator: compare-and-swap over real
//! sockets (conflicts seen and resolved, concurrent writers), existence and expiry rules,
//! and the RBAC of the plugin-data RPCs.

use teleport_mattermost::access::PluginData;
use teleport_mattermost::access::cas::{Cas, CasError, Step};
use teleport_mattermost::config::Credentials;
use teleport_mattermost::teleport::TeleportError;
use teleport_mattermost_sim::teleport::fixtures::*;
use teleport_mattermost_sim::teleport::{NewRequest, SimRole};

use crate::teleport::Env;

#[tokio::test]
async fn plugin_data_cas_conflict_is_observed_and_resolved() {
    let env = Env::start().await;
    let c = env.client(PLUGIN_USER);
    let req = env
        .sim
        .create_request(NewRequest::new(REQUESTER, &[REQUESTED_ROLE]));
    let cas = Cas::new(c.plugin_data("mattermost"));
    let initial = PluginData {
        user: REQUESTER.into(),
        roles: vec![REQUESTED_ROLE.into()],
        ..Default::default()
    };
    cas.create(&req.id, &initial).await.unwrap();
    assert!(matches!(
        cas.create(&req.id, &initial).await.unwrap_err(),
        CasError::AlreadyExists {
            current: Some(_),
            ..
        }
    ));

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
        let cas = Cas::new(c.plugin_data("mattermost"));
        let id = req.id.clone();
        tasks.push(tokio::spawn(async move {
            cas.update(&id, |d| {
                let mut n = d.clone();
                n.reviews_count += 1;
                Ok::<_, String>(Step::Write(n))
            })
            .await
            .map(|_| ())
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
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

    let req = env
        .sim
        .create_request(NewRequest::new(REQUESTER, &[REQUESTED_ROLE]));
    let cas = Cas::new(c.plugin_data("mattermost"));
    cas.create(&req.id, &data).await.unwrap();
    assert!(env.sim.delete_request(&req.id));
    assert_eq!(cas.get(&req.id).await.unwrap(), Some(data.clone()));
    let updated = cas
        .update(&req.id, |d| {
            let mut n = d.clone();
            n.resolution = teleport_mattermost::access::Resolution::Expired;
            Ok::<_, String>(Step::Write(n))
        })
        .await
        .unwrap();
    assert_eq!(
        updated.data().resolution,
        teleport_mattermost::access::Resolution::Expired
    );
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
    Cas::new(ok.plugin_data("mattermost"))
        .create(
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
