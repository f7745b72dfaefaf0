//! Conversions between the generated wire messages and the [`crate::access`] domain types,
//! in both directions (the client decodes, the simulator encodes like a Go server would:
//! non-nullable fields always present, the zero time as 0001-01-01).

use std::collections::{BTreeMap, HashMap};

use prost_types::Timestamp;
use time::OffsetDateTime;

use super::wire::teleport::accessmonitoringrules::v1 as amr;
use super::wire::teleport::header::v1 as header;
use super::wire::types;
use crate::access::{
    AccessMonitoringRule, AccessRequest, KIND_ACCESS_MONITORING_RULE, KIND_ACCESS_REQUEST,
    RequestKind, RequestState, ResourceId, Review, RuleNotification, Threshold, User,
};

/// Go's zero `time.Time` (0001-01-01T00:00:00Z) as Unix seconds: what Go sends for an unset
/// non-nullable timestamp.
pub const GO_ZERO_SECONDS: i64 = -62_135_596_800;

/// Decodes a timestamp; absent, Go's zero time and out-of-range values are "unset".
pub fn ts_from(ts: Option<&Timestamp>) -> Option<OffsetDateTime> {
    let ts = ts?;
    if ts.seconds == GO_ZERO_SECONDS && ts.nanos == 0 {
        return None;
    }
    let nanos = i128::from(ts.seconds) * 1_000_000_000 + i128::from(ts.nanos);
    OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
}

/// Encodes a nullable timestamp.
pub fn ts_to(t: Option<OffsetDateTime>) -> Option<Timestamp> {
    t.map(|t| Timestamp {
        seconds: t.unix_timestamp(),
        nanos: t.nanosecond() as i32,
    })
}

/// Encodes a non-nullable timestamp the way Go does: unset becomes the zero time, because an
/// empty proto3 Timestamp would read as 1970-01-01 in Go.
pub fn ts_required(t: Option<OffsetDateTime>) -> Option<Timestamp> {
    Some(ts_to(t).unwrap_or(Timestamp {
        seconds: GO_ZERO_SECONDS,
        nanos: 0,
    }))
}

pub fn labels_from(l: Option<&types::LabelValues>) -> BTreeMap<String, Vec<String>> {
    l.map(|l| {
        l.values
            .iter()
            .map(|(k, v)| (k.clone(), v.values.clone()))
            .collect()
    })
    .unwrap_or_default()
}

pub fn labels_to(m: &BTreeMap<String, Vec<String>>) -> Option<types::LabelValues> {
    Some(types::LabelValues {
        values: m
            .iter()
            .map(|(k, v)| (k.clone(), types::StringValues { values: v.clone() }))
            .collect(),
    })
}

pub fn review_from_proto(r: &types::AccessReview) -> Review {
    Review {
        author: r.author.clone(),
        proposed_state: RequestState::from_i32(r.proposed_state),
        reason: r.reason.clone(),
        created: ts_from(r.created.as_ref()),
        submitted_by: r.submitted_by.clone(),
        on_behalf: r.submitted_on_behalf_of_author,
    }
}

pub fn review_to_proto(r: &Review, threshold_indexes: Vec<u32>) -> types::AccessReview {
    types::AccessReview {
        author: r.author.clone(),
        proposed_state: r.proposed_state.to_i32(),
        reason: r.reason.clone(),
        created: ts_required(r.created),
        annotations: labels_to(&BTreeMap::new()),
        threshold_indexes,
        submitted_by: r.submitted_by.clone(),
        submitted_on_behalf_of_author: r.on_behalf,
        ..Default::default()
    }
}

pub fn request_from_proto(r: &types::AccessRequestV3) -> AccessRequest {
    let spec = r.spec.clone().unwrap_or_default();
    AccessRequest {
        id: r
            .metadata
            .as_ref()
            .map(|m| m.name.clone())
            .unwrap_or_default(),
        user: spec.user,
        roles: spec.roles,
        state: RequestState::from_i32(spec.state),
        created: ts_from(spec.created.as_ref()),
        expires: ts_from(spec.expires.as_ref()),
        max_duration: ts_from(spec.max_duration.as_ref()),
        session_ttl: ts_from(spec.session_ttl.as_ref()),
        request_reason: spec.request_reason,
        resolve_reason: spec.resolve_reason,
        system_annotations: labels_from(spec.system_annotations.as_ref()),
        thresholds: spec
            .thresholds
            .iter()
            .map(|t| Threshold {
                name: t.name.clone(),
                approve: t.approve,
                deny: t.deny,
            })
            .collect(),
        reviews: spec.reviews.iter().map(review_from_proto).collect(),
        suggested_reviewers: spec.suggested_reviewers,
        resources: spec
            .requested_resource_ids
            .into_iter()
            .map(|r| ResourceId {
                cluster: r.cluster_name,
                kind: r.kind,
                name: r.name,
                sub_resource: r.sub_resource_name,
            })
            .collect(),
        promoted_access_list_title: spec.access_list.map(|a| a.title).filter(|t| !t.is_empty()),
        kind: RequestKind::from_i32(spec.request_kind),
    }
}

/// Encodes a request like Teleport does. `review_indexes[i]` are the threshold indexes of
/// review `i` (the simulator computes them); every role maps to one set of all thresholds.
pub fn request_to_proto(
    r: &AccessRequest,
    review_indexes: &[Vec<u32>],
    resource_expires: Option<OffsetDateTime>,
) -> types::AccessRequestV3 {
    let all: Vec<u32> = (0..r.thresholds.len() as u32).collect();
    let rtm: HashMap<String, types::ThresholdIndexSets> = r
        .roles
        .iter()
        .map(|role| {
            (
                role.clone(),
                types::ThresholdIndexSets {
                    sets: vec![types::ThresholdIndexSet {
                        indexes: all.clone(),
                    }],
                },
            )
        })
        .collect();
    types::AccessRequestV3 {
        kind: KIND_ACCESS_REQUEST.into(),
        sub_kind: String::new(),
        version: "v3".into(),
        metadata: Some(types::Metadata {
            name: r.id.clone(),
            namespace: "default".into(),
            expires: ts_to(resource_expires),
            ..Default::default()
        }),
        spec: Some(types::AccessRequestSpecV3 {
            user: r.user.clone(),
            roles: r.roles.clone(),
            state: r.state.to_i32(),
            created: ts_required(r.created),
            expires: ts_required(r.expires),
            request_reason: r.request_reason.clone(),
            resolve_reason: r.resolve_reason.clone(),
            resolve_annotations: labels_to(&BTreeMap::new()),
            system_annotations: labels_to(&r.system_annotations),
            thresholds: r
                .thresholds
                .iter()
                .map(|t| types::AccessReviewThreshold {
                    name: t.name.clone(),
                    filter: String::new(),
                    approve: t.approve,
                    deny: t.deny,
                })
                .collect(),
            role_threshold_mapping: rtm,
            reviews: r
                .reviews
                .iter()
                .enumerate()
                .map(|(i, rev)| {
                    review_to_proto(rev, review_indexes.get(i).cloned().unwrap_or_default())
                })
                .collect(),
            suggested_reviewers: r.suggested_reviewers.clone(),
            requested_resource_ids: r
                .resources
                .iter()
                .map(|id| types::ResourceId {
                    cluster_name: id.cluster.clone(),
                    kind: id.kind.clone(),
                    name: id.name.clone(),
                    sub_resource_name: id.sub_resource.clone(),
                })
                .collect(),
            max_duration: ts_required(r.max_duration),
            session_ttl: ts_required(r.session_ttl),
            access_list: r
                .promoted_access_list_title
                .as_ref()
                .map(|t| types::PromotedAccessList {
                    name: String::new(),
                    title: t.clone(),
                }),
            request_kind: r.kind.to_i32(),
            ..Default::default()
        }),
    }
}

pub fn rule_from_proto(r: &amr::AccessMonitoringRule) -> AccessMonitoringRule {
    let spec = r.spec.clone().unwrap_or_default();
    let n = spec.notification.unwrap_or_default();
    AccessMonitoringRule {
        name: r
            .metadata
            .as_ref()
            .map(|m| m.name.clone())
            .unwrap_or_default(),
        subjects: spec.subjects,
        states: spec.states,
        condition: spec.condition,
        notification: RuleNotification {
            name: n.name,
            recipients: n.recipients,
        },
    }
}

pub fn rule_to_proto(r: &AccessMonitoringRule) -> amr::AccessMonitoringRule {
    amr::AccessMonitoringRule {
        metadata: Some(header::Metadata {
            name: r.name.clone(),
            namespace: String::new(),
            ..Default::default()
        }),
        kind: KIND_ACCESS_MONITORING_RULE.into(),
        sub_kind: String::new(),
        version: "v1".into(),
        spec: Some(amr::AccessMonitoringRuleSpec {
            subjects: r.subjects.clone(),
            states: r.states.clone(),
            condition: r.condition.clone(),
            notification: Some(amr::Notification {
                name: r.notification.name.clone(),
                recipients: r.notification.recipients.clone(),
            }),
            ..Default::default()
        }),
    }
}

pub fn user_from_proto(u: &types::UserV2) -> User {
    let spec = u.spec.clone().unwrap_or_default();
    User {
        name: u
            .metadata
            .as_ref()
            .map(|m| m.name.clone())
            .unwrap_or_default(),
        roles: spec.roles,
        traits: labels_from(spec.traits.as_ref()),
    }
}

pub fn user_to_proto(u: &User) -> types::UserV2 {
    types::UserV2 {
        kind: "user".into(),
        sub_kind: String::new(),
        version: "v2".into(),
        metadata: Some(types::Metadata {
            name: u.name.clone(),
            namespace: "default".into(),
            ..Default::default()
        }),
        spec: Some(types::UserSpecV2 {
            roles: u.roles.clone(),
            traits: labels_to(&u.traits),
            expires: ts_required(None),
        }),
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn go_zero_time_and_absent_timestamps_decode_as_unset() {
        assert_eq!(ts_from(None), None);
        assert_eq!(ts_from(ts_required(None).as_ref()), None);
        assert_eq!(ts_required(None).unwrap().seconds, GO_ZERO_SECONDS);
        let t = datetime!(2025-03-04 05:06:07.25 UTC);
        assert_eq!(ts_from(ts_to(Some(t)).as_ref()), Some(t));
        // An empty proto3 Timestamp is 1970, a real time, not "unset".
        assert_eq!(
            ts_from(Some(&Timestamp::default())),
            Some(OffsetDateTime::UNIX_EPOCH)
        );
    }

    #[test]
    fn requests_round_trip_through_the_wire_types() {
        let req = AccessRequest {
            id: "0190f3a0-aaaa-7bbb-8ccc-123456789abc".into(),
            user: "alice".into(),
            roles: vec!["editor".into()],
            state: RequestState::Pending,
            created: Some(datetime!(2025-01-01 00:00 UTC)),
            expires: Some(datetime!(2025-01-01 01:00 UTC)),
            max_duration: None,
            session_ttl: Some(datetime!(2025-01-01 08:00 UTC)),
            request_reason: "because of".into(),
            resolve_reason: String::new(),
            system_annotations: BTreeMap::from([("k".into(), vec!["v".into()])]),
            thresholds: vec![Threshold::default_single()],
            reviews: vec![Review {
                author: "bob".into(),
                proposed_state: RequestState::Approved,
                reason: "ok".into(),
                created: Some(datetime!(2025-01-01 00:10 UTC)),
                submitted_by: "access-plugin".into(),
                on_behalf: true,
            }],
            suggested_reviewers: vec!["bob".into()],
            resources: vec![ResourceId {
                cluster: "c".into(),
                kind: "node".into(),
                name: "n".into(),
                sub_resource: String::new(),
            }],
            promoted_access_list_title: None,
            kind: RequestKind::ShortTerm,
        };
        let wire = request_to_proto(&req, &[vec![0]], None);
        assert_eq!(
            wire.spec.as_ref().unwrap().reviews[0].threshold_indexes,
            vec![0]
        );
        assert_eq!(request_from_proto(&wire), req);
    }
}
