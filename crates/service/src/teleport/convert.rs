//! Decoding the generated wire messages into the [`crate::access`] domain types (and the few
//! encodings the client sends: reviews and timestamps). Go servers send non-nullable fields
//! always and the zero time as 0001-01-01, which decodes as "unset".

use std::collections::BTreeMap;

use prost_types::Timestamp;
use time::OffsetDateTime;

use super::wire::teleport::accessmonitoringrules::v1 as amr;
use super::wire::types;
use crate::access::{
    AccessMonitoringRule, AccessRequest, RequestKind, RequestState, ResourceId, Review,
    RuleNotification, Threshold, User,
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

/// Takes the message by value: its strings move into the request instead of being copied
/// (one decode per watch event and per listed request).
pub fn request_from_proto(r: types::AccessRequestV3) -> AccessRequest {
    let spec = r.spec.unwrap_or_default();
    let metadata = r.metadata.unwrap_or_default();
    AccessRequest {
        id: metadata.name,
        user: spec.user,
        roles: spec.roles,
        state: RequestState::from_i32(spec.state),
        created: ts_from(spec.created.as_ref()),
        expires: ts_from(spec.expires.as_ref()),
        pending_expires: ts_from(metadata.expires.as_ref()),
        max_duration: ts_from(spec.max_duration.as_ref()),
        session_ttl: ts_from(spec.session_ttl.as_ref()),
        request_reason: spec.request_reason,
        resolve_reason: spec.resolve_reason,
        system_annotations: labels_from(spec.system_annotations.as_ref()),
        thresholds: spec
            .thresholds
            .into_iter()
            .map(|t| Threshold {
                name: t.name,
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
}
