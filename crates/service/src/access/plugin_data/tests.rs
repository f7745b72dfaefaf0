//! Ports of the upstream plugin-data tests (accessrequest/plugindata_test.go and the legacy
//! mattermost/plugindata_test.go) plus property tests.

use std::collections::BTreeMap;

use proptest::prelude::*;
use time::macros::datetime;

use super::*;

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn non_empty(m: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    m.iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Upstream's `getSamplePluginData`.
fn sample() -> PluginData {
    PluginData {
        user: "user-foo".into(),
        roles: vec!["role-foo".into(), "role-bar".into()],
        resources: vec!["cluster-a/node/foo".into(), "cluster-a/node/bar".into()],
        request_reason: "foo reason".into(),
        reviews_count: 3,
        resolution: Resolution::Approved,
        resolve_reason: "foo ok".into(),
        max_duration: Some(datetime!(2006-01-02 15:04:05 UTC)),
        messages: vec![
            SentMessage {
                channel_id: "CHANNEL1".into(),
                post_id: "0000001".into(),
            },
            SentMessage {
                channel_id: "CHANNEL2".into(),
                post_id: "0000002".into(),
            },
        ],
        ..Default::default()
    }
}

fn sample_map() -> BTreeMap<String, String> {
    map(&[
        ("user", "user-foo"),
        ("roles", "role-foo,role-bar"),
        (
            "resources",
            r#"["cluster-a/node/foo","cluster-a/node/bar"]"#,
        ),
        ("request_reason", "foo reason"),
        ("reviews_count", "3"),
        ("resolution", "APPROVED"),
        ("resolve_reason", "foo ok"),
        ("messages", "CHANNEL1/0000001,CHANNEL2/0000002"),
        ("max_duration", "2006-01-02T15:04:05Z"),
    ])
}

/// TestEncodePluginData: upstream's map has exactly these 9 keys; ours adds the three
/// absent optional keys as "" (which deletes them, so Teleport stores the same 9).
#[test]
fn encode_plugin_data_writes_the_nine_upstream_keys_exactly() {
    let encoded = sample().encode();
    assert_eq!(non_empty(&encoded), sample_map());
    assert_eq!(non_empty(&encoded).len(), 9);
    for k in [
        "system_annotations",
        "suggested_reviewers",
        "logins_by_role",
    ] {
        assert_eq!(encoded[k], "", "{k}");
    }
    assert_eq!(encoded.len(), KEYS.len() + OWN_KEYS.len());
}

/// TestDecodePluginData.
#[test]
fn decode_plugin_data_reads_the_upstream_map_back() {
    assert_eq!(PluginData::decode(&sample_map()).unwrap(), sample());
}

/// TestEncodeEmptyPluginData: upstream writes 8 keys, all empty; ours is a superset, also
/// all empty, so it works as an Expect map meaning "no data yet".
#[test]
fn encode_empty_plugin_data_gives_only_empty_values_including_upstreams_eight_keys() {
    let encoded = PluginData::default().encode();
    for k in [
        "user",
        "roles",
        "resources",
        "request_reason",
        "reviews_count",
        "resolution",
        "resolve_reason",
        "messages",
    ] {
        assert_eq!(encoded.get(k).map(String::as_str), Some(""), "{k}");
    }
    assert!(encoded.values().all(String::is_empty), "{encoded:?}");
}

/// TestDecodeEmptyPluginData.
#[test]
fn decode_empty_plugin_data_gives_the_zero_value() {
    assert_eq!(
        PluginData::decode(&BTreeMap::new()).unwrap(),
        PluginData::default()
    );
    assert_eq!(
        PluginData::decode(&PluginData::default().encode()).unwrap(),
        PluginData::default()
    );
}

/// The legacy Mattermost test: 7 keys with `messages` = `CHANNEL1/POST01,CHANNEL2/POST02`.
#[test]
fn legacy_mattermost_plugin_data_with_seven_keys_round_trips() {
    let legacy = map(&[
        ("user", "user-foo"),
        ("roles", "role-foo,role-bar"),
        ("request_reason", "foo reason"),
        ("reviews_count", "3"),
        ("resolution", "APPROVED"),
        ("resolve_reason", "foo ok"),
        ("messages", "CHANNEL1/POST01,CHANNEL2/POST02"),
    ]);
    let data = PluginData::decode(&legacy).unwrap();
    assert_eq!(
        data.messages,
        vec![
            SentMessage {
                channel_id: "CHANNEL1".into(),
                post_id: "POST01".into()
            },
            SentMessage {
                channel_id: "CHANNEL2".into(),
                post_id: "POST02".into()
            },
        ]
    );
    assert_eq!(data.reviews_count, 3);
    assert_eq!(non_empty(&data.encode()), legacy);
}

#[test]
fn legacy_single_message_keys_are_read_as_the_first_message() {
    let data = PluginData::decode(&map(&[
        ("channel_id", "C0"),
        ("timestamp", "P0"),
        ("messages", "C1/P1"),
    ]))
    .unwrap();
    assert_eq!(data.messages.len(), 2);
    assert_eq!(data.messages[0].channel_id, "C0");
    assert_eq!(data.messages[1].post_id, "P1");
}

#[test]
fn a_legacy_pair_left_beside_the_messages_it_was_written_into_is_counted_once() {
    let first = PluginData::decode(&map(&[("channel_id", "C0"), ("timestamp", "P0")])).unwrap();
    // A read-modify-write keeps the legacy keys (they are never written) and now also lists
    // the pair in `messages`; reading that back must not grow the list.
    let mut stored = map(&[("channel_id", "C0"), ("timestamp", "P0")]);
    stored.extend(non_empty(&first.encode()));
    for _ in 0..3 {
        let again = PluginData::decode(&stored).unwrap();
        assert_eq!(again.messages, first.messages);
        stored.extend(non_empty(&again.encode()));
    }
}

#[test]
fn json_values_are_escaped_like_go() {
    let data = PluginData {
        system_annotations: BTreeMap::from([(
            "teleport.dev/<x>".to_string(),
            vec!["a&b".to_string()],
        )]),
        suggested_reviewers: vec!["r1@example.com".into()],
        logins_by_role: BTreeMap::from([("dev".to_string(), vec!["root".to_string()])]),
        ..Default::default()
    };
    let m = data.encode();
    assert_eq!(
        m["system_annotations"],
        r#"{"teleport.dev/\u003cx\u003e":["a\u0026b"]}"#
    );
    assert_eq!(m["suggested_reviewers"], r#"["r1@example.com"]"#);
    assert_eq!(m["logins_by_role"], r#"{"dev":["root"]}"#);
    assert_eq!(PluginData::decode(&m).unwrap(), data);
}

#[test]
fn max_duration_is_written_in_whole_seconds_utc() {
    let data = PluginData {
        max_duration: Some(datetime!(2030-05-06 07:08:09.5 +02:00)),
        ..Default::default()
    };
    assert_eq!(data.encode()["max_duration"], "2030-05-06T05:08:09Z");
}

#[test]
fn unreadable_values_name_the_key() {
    for (k, v) in [
        ("reviews_count", "three"),
        ("resources", "[1,2"),
        ("resolution", "MAYBE"),
        ("system_annotations", "[]"),
        ("suggested_reviewers", "{}"),
        ("logins_by_role", "x"),
        ("max_duration", "yesterday"),
        ("messages", "C1/P1,broken"),
        ("messages", "C1/P1/extra"),
    ] {
        let err = PluginData::decode(&map(&[(k, v)])).unwrap_err();
        assert_eq!(err.key, k);
        assert!(err.to_string().contains(k), "{err}");
    }
}

fn word() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_.@<>&-]{1,12}"
}

fn arb_data() -> impl Strategy<Value = PluginData> {
    (
        (
            ".{0,20}",
            prop::collection::vec(word(), 0..4),
            prop::collection::vec(".{0,10}", 0..3),
            ".{0,30}",
            0u32..1000,
            prop::sample::select(vec![
                Resolution::Unresolved,
                Resolution::Approved,
                Resolution::Denied,
                Resolution::Expired,
                Resolution::Promoted,
            ]),
        ),
        (
            ".{0,30}",
            prop::collection::btree_map(".{0,8}", prop::collection::vec(".{0,8}", 0..3), 0..3),
            prop::collection::vec(".{0,10}", 0..3),
            prop::collection::btree_map(word(), prop::collection::vec(word(), 0..3), 0..3),
            prop::option::of(0i64..4_000_000_000),
            prop::collection::vec((word(), word()), 0..4),
        ),
    )
        .prop_map(
            |(
                (user, roles, resources, request_reason, reviews_count, resolution),
                (resolve_reason, ann, sugg, logins, max, msgs),
            )| PluginData {
                user,
                roles,
                resources,
                request_reason,
                reviews_count,
                resolution,
                resolve_reason,
                system_annotations: ann,
                suggested_reviewers: sugg,
                logins_by_role: logins,
                max_duration: max.map(|s| OffsetDateTime::from_unix_timestamp(s).unwrap()),
                messages: msgs
                    .into_iter()
                    .map(|(c, p)| SentMessage {
                        channel_id: c.replace('/', "_"),
                        post_id: p.replace('/', "_"),
                    })
                    .collect(),
                notices: Notices {
                    reminded: reviews_count.checked_sub(1).map(u64::from),
                    escalated: reviews_count % 2 == 1,
                    ..Notices::default()
                },
            },
        )
}

proptest! {
    #[test]
    fn decode_never_panics_on_arbitrary_maps(
        m in prop::collection::btree_map(
            prop::sample::select(KEYS.iter().chain(LEGACY_KEYS.iter()).chain(OWN_KEYS.iter()).map(|k| k.to_string()).collect::<Vec<_>>()),
            ".{0,40}",
            0..14,
        )
    ) {
        if let Err(e) = PluginData::decode(&m) {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn encode_then_decode_is_the_identity(d in arb_data()) {
        prop_assert_eq!(PluginData::decode(&d.encode()).unwrap(), d);
    }
}
