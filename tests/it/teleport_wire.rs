//! Wire fidelity: every message the client sends and the simulator answers, encoded for a
//! known value and read back with a small hand-written protobuf tag reader, compared with the
//! field numbers and wire types Teleport uses (checked against Teleport's own .proto files);
//! and every message the client decodes, built here byte by byte as a Go server would send
//! it. The simulator's encoder and the client's decoder are separate code, each held to the
//! same bytes, so a wrong field number in `proto/` (which both share) or in either mapping
//! fails here; `sim_encoding_decodes_to_the_same_request_in_the_client` checks that the two
//! mappings agree field by field.

use std::collections::{BTreeMap, HashMap};

use prost::Message;
use teleport_mattermost::access::RequestState;
use teleport_mattermost::teleport::client::review_submission;
use teleport_mattermost::teleport::convert;
use teleport_mattermost::teleport::events::from_wire;
use teleport_mattermost::teleport::wire::teleport::accessmonitoringrules::v1 as amr;
use teleport_mattermost::teleport::wire::{proto, types};
use teleport_mattermost::teleport::{NewReview, WatchEvent, WatchKind, WatchRequest};
use teleport_mattermost_sim::teleport::wire::{self as sim_wire, GO_ZERO_SECONDS};
use teleport_mattermost_sim::teleport::{
    AccessMonitoringRule, AccessRequest, RequestKind, RequestState as SimState, ResourceId, Review,
    RuleNotification, Threshold, User,
};
use time::macros::datetime;

/// A field as found on the wire.
#[derive(Debug, Clone, PartialEq)]
enum Raw {
    Varint(u64),
    Len(Vec<u8>),
    Fixed64(u64),
    Fixed32(u32),
}

/// What we expect in a field.
#[derive(Debug, Clone)]
enum E {
    Int(u64),
    Str(&'static str),
    Bytes(Vec<u8>),
    Msg(Vec<(u32, E)>),
    /// Present with wire type "length-delimited", content not checked.
    AnyLen,
}

fn s(v: &'static str) -> E {
    E::Str(v)
}
fn i(v: u64) -> E {
    E::Int(v)
}
fn m(v: Vec<(u32, E)>) -> E {
    E::Msg(v)
}
fn go_zero() -> E {
    m(vec![(1, i(GO_ZERO_SECONDS as u64))])
}

fn varint(buf: &[u8], pos: &mut usize) -> u64 {
    let mut out = 0u64;
    for shift in (0..64).step_by(7) {
        let b = buf[*pos];
        *pos += 1;
        out |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return out;
        }
    }
    panic!("varint too long");
}

/// The hand-written tag reader: (field number, value) in wire order.
fn read(buf: &[u8]) -> Vec<(u32, Raw)> {
    let mut pos = 0;
    let mut out = Vec::new();
    while pos < buf.len() {
        let key = varint(buf, &mut pos);
        let (field, wire_type) = ((key >> 3) as u32, key & 7);
        let v = match wire_type {
            0 => Raw::Varint(varint(buf, &mut pos)),
            1 => {
                let v = u64::from_le_bytes(buf[pos..pos + 8].try_into().unwrap());
                pos += 8;
                Raw::Fixed64(v)
            }
            2 => {
                let len = varint(buf, &mut pos) as usize;
                let v = buf[pos..pos + len].to_vec();
                pos += len;
                Raw::Len(v)
            }
            5 => {
                let v = u32::from_le_bytes(buf[pos..pos + 4].try_into().unwrap());
                pos += 4;
                Raw::Fixed32(v)
            }
            t => panic!("unexpected wire type {t} for field {field}"),
        };
        out.push((field, v));
    }
    out
}

fn check(buf: &[u8], want: &[(u32, E)], path: &str) {
    let got = read(buf);
    let got_fields: Vec<u32> = got.iter().map(|(f, _)| *f).collect();
    let want_fields: Vec<u32> = want.iter().map(|(f, _)| *f).collect();
    assert_eq!(got_fields, want_fields, "field numbers at {path}: {got:?}");
    for ((f, raw), (_, exp)) in got.iter().zip(want) {
        let here = format!("{path}.{f}");
        match (exp, raw) {
            (E::Int(n), Raw::Varint(v)) => assert_eq!(v, n, "{here}"),
            (E::Str(x), Raw::Len(b)) => assert_eq!(std::str::from_utf8(b).unwrap(), *x, "{here}"),
            (E::Bytes(x), Raw::Len(b)) => assert_eq!(b, x, "{here}"),
            (E::Msg(inner), Raw::Len(b)) => check(b, inner, &here),
            (E::AnyLen, Raw::Len(_)) => {}
            (e, r) => panic!("{here}: expected {e:?}, found wire value {r:?}"),
        }
    }
}

fn assert_wire<M: Message>(msg: &M, want: Vec<(u32, E)>) {
    check(&msg.encode_to_vec(), &want, "");
}

/// The inverse, for decoding tests: bytes as a Go server would send them.
fn encode(fields: &[(u32, E)]) -> Vec<u8> {
    fn put_varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    let mut out = Vec::new();
    for (f, e) in fields {
        let bytes = match e {
            E::Int(n) => {
                put_varint(&mut out, u64::from(*f) << 3);
                put_varint(&mut out, *n);
                continue;
            }
            E::Str(x) => x.as_bytes().to_vec(),
            E::Bytes(b) => b.clone(),
            E::Msg(inner) => encode(inner),
            E::AnyLen => Vec::new(),
        };
        put_varint(&mut out, (u64::from(*f) << 3) | 2);
        put_varint(&mut out, bytes.len() as u64);
        out.extend(bytes);
    }
    out
}

#[test]
fn ping_response_fields_1_2_3_4_7_and_features_7() {
    let msg = proto::PingResponse {
        cluster_name: "c1".into(),
        server_version: "18.11.0".into(),
        server_features: Some(proto::Features {
            advanced_access_workflows: true,
        }),
        proxy_public_addr: "proxy.example.com:443".into(),
        remote_addr: "10.0.0.1:5000".into(),
        ..Default::default()
    };
    assert_wire(
        &msg,
        vec![
            (1, s("c1")),
            (2, s("18.11.0")),
            (3, m(vec![(7, i(1))])),
            (4, s("proxy.example.com:443")),
            (7, s("10.0.0.1:5000")),
        ],
    );
}

#[test]
fn watch_and_watch_kind_fields() {
    let mut req = WatchRequest::plugin();
    req.kinds[0] = WatchKind::new("access_request").with_filter("user", "alice");
    assert_wire(
        &req.to_wire(),
        vec![
            (
                1,
                m(vec![
                    (1, s("access_request")),
                    (4, m(vec![(1, s("user")), (2, s("alice"))])),
                ]),
            ),
            (1, m(vec![(1, s("access_monitoring_rule"))])),
            (2, i(1)),
        ],
    );
}

fn sample_request() -> AccessRequest {
    AccessRequest {
        id: "0190f3a0-0000-7000-8000-000000000001".into(),
        user: "alice".into(),
        roles: vec!["editor".into()],
        state: SimState::Pending,
        created: Some(datetime!(2025-01-02 03:04:05 UTC)),
        expires: Some(datetime!(2025-01-02 04:04:05 UTC)),
        max_duration: None,
        session_ttl: Some(datetime!(2025-01-02 04:04:05 UTC)),
        request_reason: "because of".into(),
        resolve_reason: String::new(),
        system_annotations: BTreeMap::from([("team".into(), vec!["sre".into()])]),
        thresholds: vec![Threshold::default_single()],
        reviews: Vec::new(),
        suggested_reviewers: vec!["bob".into()],
        resources: vec![ResourceId {
            cluster: "c1".into(),
            kind: "node".into(),
            name: "db-1".into(),
            sub_resource: String::new(),
        }],
        promoted_access_list_title: None,
        kind: RequestKind::LongTerm,
    }
}

const CREATED: u64 = 1_735_787_045;
const EXPIRES: u64 = CREATED + 3600;

fn sample_request_wire() -> Vec<(u32, E)> {
    vec![
        (1, s("access_request")),
        (3, s("v3")),
        (
            4,
            m(vec![
                (1, s("0190f3a0-0000-7000-8000-000000000001")),
                (2, s("default")),
                (6, m(vec![(1, i(EXPIRES))])),
            ]),
        ),
        (
            5,
            m(vec![
                (1, s("alice")),
                (2, s("editor")),
                (3, i(1)),
                (4, m(vec![(1, i(CREATED))])),
                (5, m(vec![(1, i(EXPIRES))])),
                (6, s("because of")),
                (8, m(vec![])),
                (
                    9,
                    m(vec![(
                        1,
                        m(vec![(1, s("team")), (2, m(vec![(1, s("sre"))]))]),
                    )]),
                ),
                (10, m(vec![(1, s("default")), (3, i(1)), (4, i(1))])),
                (
                    11,
                    m(vec![
                        (1, s("editor")),
                        (2, m(vec![(1, m(vec![(1, E::Bytes(vec![0]))]))])),
                    ]),
                ),
                (13, s("bob")),
                (14, m(vec![(1, s("c1")), (2, s("node")), (3, s("db-1"))])),
                (17, go_zero()),
                (18, m(vec![(1, i(EXPIRES))])),
                (24, i(2)),
            ]),
        ),
    ]
}

#[test]
fn access_request_v3_and_spec_fields_1_to_24() {
    assert_wire(
        &sim_wire::request_to_proto(&sample_request(), &[]),
        sample_request_wire(),
    );
}

#[test]
fn the_client_decodes_access_request_fields_1_to_24() {
    let bytes = encode(&sample_request_wire());
    let decoded = types::AccessRequestV3::decode(bytes.as_slice()).unwrap();
    assert_eq!(
        convert::request_from_proto(decoded),
        crate::teleport::as_client_request(&sample_request())
    );
}

#[test]
fn sim_encoding_decodes_to_the_same_request_in_the_client() {
    let mut req = sample_request();
    req.state = SimState::Promoted;
    req.resolve_reason = "promoted".into();
    req.max_duration = Some(datetime!(2025-01-03 03:04:05 UTC));
    req.promoted_access_list_title = Some("Admins".into());
    req.kind = RequestKind::ShortTerm;
    req.resources[0].sub_resource = "ns/pod".into();
    req.thresholds.push(Threshold {
        name: "two".into(),
        approve: 2,
        deny: 3,
    });
    req.reviews = vec![
        Review {
            author: "bob".into(),
            proposed_state: SimState::Approved,
            reason: "fine".into(),
            created: Some(datetime!(2025-01-02 03:05:00.25 UTC)),
            submitted_by: "access-plugin".into(),
            on_behalf: true,
        },
        Review {
            author: "carol".into(),
            proposed_state: SimState::Denied,
            reason: "no".into(),
            created: None,
            submitted_by: String::new(),
            on_behalf: false,
        },
    ];
    let bytes = sim_wire::request_to_proto(&req, &[vec![0, 1], vec![1]]).encode_to_vec();
    let decoded = types::AccessRequestV3::decode(bytes.as_slice()).unwrap();
    assert_eq!(
        convert::request_from_proto(decoded),
        crate::teleport::as_client_request(&req)
    );
}

#[test]
fn event_init_put_delete_use_fields_43_14_2_54() {
    let init = proto::Event {
        r#type: proto::Operation::Init as i32,
        resource: Some(proto::event::Resource::WatchStatus(types::WatchStatusV1 {
            kind: "watch_status".into(),
            spec: Some(types::WatchStatusSpecV1 {
                kinds: vec![types::WatchKind {
                    kind: "access_request".into(),
                    ..Default::default()
                }],
            }),
            ..Default::default()
        })),
    };
    // INIT = 0 is the proto3 default, so field 1 is absent.
    assert_wire(
        &init,
        vec![(
            43,
            m(vec![
                (1, s("watch_status")),
                (5, m(vec![(1, m(vec![(1, s("access_request"))]))])),
            ]),
        )],
    );

    let put = proto::Event {
        r#type: proto::Operation::Put as i32,
        resource: Some(proto::event::Resource::AccessRequest(
            sim_wire::request_to_proto(&sample_request(), &[]),
        )),
    };
    assert_wire(&put, vec![(1, i(1)), (14, m(sample_request_wire()))]);

    let delete = proto::Event {
        r#type: proto::Operation::Delete as i32,
        resource: Some(proto::event::Resource::ResourceHeader(
            types::ResourceHeader {
                kind: "access_request".into(),
                version: "v3".into(),
                metadata: Some(types::Metadata {
                    name: "r1".into(),
                    namespace: "default".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )),
    };
    assert_wire(
        &delete,
        vec![
            (1, i(2)),
            (
                2,
                m(vec![
                    (1, s("access_request")),
                    (3, s("v3")),
                    (4, m(vec![(1, s("r1")), (2, s("default"))])),
                ]),
            ),
        ],
    );

    let rule = proto::Event {
        r#type: proto::Operation::Put as i32,
        resource: Some(proto::event::Resource::AccessMonitoringRule(
            sim_wire::rule_to_proto(&sample_rule()),
        )),
    };
    assert_wire(&rule, vec![(1, i(1)), (54, m(sample_rule_wire()))]);
}

#[test]
fn a_go_style_put_event_with_unknown_fields_decodes() {
    let bytes = encode(&[
        (1, i(1)),
        (
            14,
            m(vec![
                (1, s("access_request")),
                (3, s("v3")),
                (4, m(vec![(1, s("r9")), (2, s("default")), (7, i(42))])),
                (
                    5,
                    m(vec![
                        (1, s("carol")),
                        (2, s("dba")),
                        (3, i(2)),
                        (4, m(vec![(1, i(CREATED))])),
                        (7, s("looks fine")),
                        (
                            12,
                            m(vec![
                                (1, s("dave")),
                                (3, i(2)),
                                (4, s("ok")),
                                (5, m(vec![(1, i(CREATED))])),
                                (11, s("access-plugin")),
                                (12, i(1)),
                            ]),
                        ),
                        (17, go_zero()),
                        (20, m(vec![(1, s("al")), (2, s("Admins"))])),
                        (26, m(vec![(1, s("future field"))])),
                    ]),
                ),
            ]),
        ),
        (99, s("a field this client does not know")),
    ]);
    let ev = proto::Event::decode(bytes.as_slice()).unwrap();
    let Some(WatchEvent::RequestPut(r)) = from_wire(ev) else {
        panic!("not a request put")
    };
    assert_eq!(r.id, "r9");
    assert_eq!(r.user, "carol");
    assert_eq!(r.state, RequestState::Approved);
    assert_eq!(r.resolve_reason, "looks fine");
    assert_eq!(r.max_duration, None);
    assert_eq!(r.promoted_access_list_title.as_deref(), Some("Admins"));
    assert_eq!(r.reviews[0].author, "dave");
    assert_eq!(r.reviews[0].submitted_by, "access-plugin");
    assert!(r.reviews[0].on_behalf);
    assert_eq!(r.created.unwrap().unix_timestamp() as u64, CREATED);
}

#[test]
fn access_review_submission_fields_including_11_and_12() {
    let now = datetime!(2025-01-02 03:04:05.5 UTC);
    let review = NewReview {
        author: "bob".into(),
        proposed_state: RequestState::Approved,
        reason: "ok".into(),
        on_behalf: true,
    };
    let on_behalf = vec![
        (1, s("r1")),
        (
            2,
            m(vec![
                (1, s("bob")),
                (3, i(2)),
                (4, s("ok")),
                (5, m(vec![(1, i(CREATED)), (2, i(500_000_000))])),
                (6, m(vec![])),
                (11, s("access-plugin")),
                (12, i(1)),
            ]),
        ),
    ];
    assert_wire(
        &review_submission("r1", &review, "access-plugin", now),
        on_behalf.clone(),
    );
    // The simulator reads the same bytes with its own mapping.
    let sub = types::AccessReviewSubmission::decode(encode(&on_behalf).as_slice()).unwrap();
    assert_eq!(sub.request_id, "r1");
    assert_eq!(
        sim_wire::review_from_proto(&sub.review.unwrap()),
        Review {
            author: "bob".into(),
            proposed_state: SimState::Approved,
            reason: "ok".into(),
            created: Some(now),
            submitted_by: "access-plugin".into(),
            on_behalf: true,
        }
    );
    // Not on behalf: neither 11 nor 12 is sent (older servers would not know them).
    let own = NewReview {
        on_behalf: false,
        proposed_state: RequestState::Denied,
        ..review
    };
    assert_wire(
        &review_submission("r1", &own, "access-plugin", now),
        vec![
            (1, s("r1")),
            (
                2,
                m(vec![
                    (1, s("bob")),
                    (3, i(3)),
                    (4, s("ok")),
                    (5, m(vec![(1, i(CREATED)), (2, i(500_000_000))])),
                    (6, m(vec![])),
                ]),
            ),
        ],
    );
}

#[test]
fn plugin_data_filter_update_params_and_seq_fields() {
    assert_wire(
        &types::PluginDataFilter {
            kind: "access_request".into(),
            resource: "r1".into(),
            plugin: "mattermost".into(),
        },
        vec![(1, s("access_request")), (2, s("r1")), (3, s("mattermost"))],
    );
    assert_wire(
        &types::PluginDataUpdateParams {
            kind: "access_request".into(),
            resource: "r1".into(),
            plugin: "mattermost".into(),
            set: HashMap::from([("messages".into(), "ch/post".into())]),
            expect: HashMap::from([("messages".into(), "".into())]),
        },
        vec![
            (1, s("access_request")),
            (2, s("r1")),
            (3, s("mattermost")),
            (4, m(vec![(1, s("messages")), (2, s("ch/post"))])),
            // An empty map value is left out of the entry; Go reads it as "".
            (5, m(vec![(1, s("messages"))])),
        ],
    );
    let seq = proto::PluginDataSeq::decode(
        encode(&[(
            1,
            m(vec![
                (1, s("plugin_data")),
                (2, s("access_request")),
                (3, s("v3")),
                (4, m(vec![(1, s("r1"))])),
                (
                    5,
                    m(vec![(
                        1,
                        m(vec![
                            (1, s("mattermost")),
                            (2, m(vec![(1, m(vec![(1, s("user")), (2, s("alice"))]))])),
                        ]),
                    )]),
                ),
            ]),
        )])
        .as_slice(),
    )
    .unwrap();
    let pd = &seq.plugin_data[0];
    assert_eq!(pd.metadata.as_ref().unwrap().name, "r1");
    assert_eq!(
        pd.spec.as_ref().unwrap().entries["mattermost"].data["user"],
        "alice"
    );
}

#[test]
fn access_request_filter_fields() {
    assert_wire(
        &types::AccessRequestFilter {
            id: "r1".into(),
            user: "alice".into(),
            state: RequestState::Pending.to_i32(),
        },
        vec![(1, s("r1")), (2, s("alice")), (3, i(1))],
    );
}

#[test]
fn list_access_monitoring_rules_with_filter_request_fields() {
    assert_wire(
        &amr::ListAccessMonitoringRulesWithFilterRequest {
            page_size: 1000,
            page_token: "next".into(),
            subjects: vec!["access_request".into()],
            notification_name: "mattermost".into(),
            automatic_review_name: String::new(),
        },
        vec![
            (1, i(1000)),
            (2, s("next")),
            (3, s("access_request")),
            (4, s("mattermost")),
        ],
    );
    let resp = amr::ListAccessMonitoringRulesWithFilterResponse::decode(
        encode(&[(1, m(sample_rule_wire())), (2, s("tok"))]).as_slice(),
    )
    .unwrap();
    assert_eq!(resp.next_page_token, "tok");
    assert_eq!(
        convert::rule_from_proto(&resp.rules[0]),
        crate::teleport::as_client_rule(&sample_rule())
    );
}

fn sample_rule() -> AccessMonitoringRule {
    AccessMonitoringRule {
        name: "amr-1".into(),
        subjects: vec!["access_request".into()],
        states: vec!["pending".into()],
        condition: "true".into(),
        notification: RuleNotification {
            name: "mattermost".into(),
            recipients: vec!["team/channel".into()],
        },
    }
}

fn sample_rule_wire() -> Vec<(u32, E)> {
    vec![
        (1, m(vec![(1, s("amr-1"))])),
        (2, s("access_monitoring_rule")),
        (4, s("v1")),
        (
            5,
            m(vec![
                (1, s("access_request")),
                (2, s("pending")),
                (3, s("true")),
                (4, m(vec![(1, s("mattermost")), (2, s("team/channel"))])),
            ]),
        ),
    ]
}

#[test]
fn access_monitoring_rule_fields() {
    assert_wire(&sim_wire::rule_to_proto(&sample_rule()), sample_rule_wire());
}

#[test]
fn get_user_request_and_user_v2_fields() {
    assert_wire(
        &proto::GetUserRequest {
            name: "bob".into(),
            with_secrets: true,
        },
        vec![(1, s("bob")), (2, i(1))],
    );
    let user = User {
        name: "bob".into(),
        roles: vec!["reviewer".into()],
        traits: BTreeMap::from([("mattermost_user_id".into(), vec!["mm1".into()])]),
    };
    let want = vec![
        (1, s("user")),
        (3, s("v2")),
        (4, m(vec![(1, s("bob")), (2, s("default"))])),
        (
            5,
            m(vec![
                (4, s("reviewer")),
                (
                    5,
                    m(vec![(
                        1,
                        m(vec![
                            (1, s("mattermost_user_id")),
                            (2, m(vec![(1, s("mm1"))])),
                        ]),
                    )]),
                ),
                (7, go_zero()),
            ]),
        ),
    ];
    assert_wire(&sim_wire::user_to_proto(&user), want);
    // And a Go-encoded user with a status (field 6) and other spec fields decodes.
    let bytes = encode(&[
        (1, s("user")),
        (4, m(vec![(1, s("bob"))])),
        (
            5,
            m(vec![
                (1, E::AnyLen),
                (4, s("reviewer")),
                (4, s("dev")),
                (8, E::AnyLen),
            ]),
        ),
        (6, m(vec![])),
    ]);
    let u = convert::user_from_proto(&types::UserV2::decode(bytes.as_slice()).unwrap());
    assert_eq!(u.roles, vec!["reviewer".to_string(), "dev".to_string()]);
}

#[test]
fn list_access_lists_request_fields_1_2() {
    use teleport_mattermost::teleport::wire::teleport::accesslist::v1 as al;
    assert_wire(
        &al::ListAccessListsRequest {
            page_size: 200,
            next_token: "list-200".into(),
        },
        vec![(1, i(200)), (2, s("list-200"))],
    );
}

#[test]
fn a_go_encoded_access_list_page_decodes_to_owners_due_date_and_window() {
    use teleport_mattermost::access::AccessList;
    use teleport_mattermost::teleport::client::access_list_from_proto;
    use teleport_mattermost::teleport::wire::teleport::accesslist::v1 as al;
    let due = datetime!(2026-12-20 00:00 UTC).unix_timestamp() as u64;
    // ListAccessListsResponse: access_lists = 1, next_token = 2. AccessList: header = 1
    // (ResourceHeader: kind 1, sub_kind 2, version 3, metadata 4 → name 1), spec = 2,
    // status = 3 (member_count 1). Spec: description 1, owners 2 (name 1, description 2,
    // ineligible_status 3, membership_kind 4), audit 3 (next_audit_date 2, recurrence 3,
    // notifications 4 → start 1), grants 6 (unread), title 8.
    let list = m(vec![
        (
            1,
            m(vec![
                (1, s("access_list")),
                (3, s("v1")),
                (4, m(vec![(1, s("prod-admins")), (2, s("default"))])),
            ]),
        ),
        (
            2,
            m(vec![
                (1, s("who may administer production")),
                (
                    2,
                    m(vec![
                        (1, s("alice@example.com")),
                        (2, s("lead")),
                        (3, i(1)),
                        (4, i(1)),
                    ]),
                ),
                (2, m(vec![(1, s("nested-list")), (4, i(2))])),
                (2, m(vec![(1, s("bob"))])),
                (
                    3,
                    m(vec![
                        (2, m(vec![(1, i(due))])),
                        (3, m(vec![(1, i(3)), (2, i(15))])),
                        (4, m(vec![(1, m(vec![(1, i(14 * 86_400))]))])),
                    ]),
                ),
                (6, m(vec![(1, s("prod-admin"))])),
                (8, s("Production admins")),
            ]),
        ),
        (3, m(vec![(1, i(7)), (2, i(1))])),
    ]);
    let bytes = encode(&[(1, list), (2, s("next-page"))]);
    let page = al::ListAccessListsResponse::decode(bytes.as_slice()).unwrap();
    assert_eq!(page.next_token, "next-page");
    assert_eq!(
        access_list_from_proto(&page.access_lists[0]),
        AccessList {
            name: "prod-admins".into(),
            title: "Production admins".into(),
            owners: vec!["alice@example.com".into(), "bob".into()],
            next_audit_date: Some(datetime!(2026-12-20 00:00 UTC)),
            notify_before: std::time::Duration::from_secs(14 * 86_400),
            member_count: Some(7),
        }
    );
    // Go's zero time for an unset review date reads as "no date".
    let undated = encode(&[(2, m(vec![(3, m(vec![(2, go_zero())]))]))]);
    let l = al::AccessList::decode(undated.as_slice()).unwrap();
    assert_eq!(access_list_from_proto(&l).next_audit_date, None);
}
