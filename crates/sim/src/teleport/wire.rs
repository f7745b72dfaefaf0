//! The simulator's mapping between its model and the generated Teleport messages, written
//! from the field list of Teleport's protos (the repository's `docs/` and `proto/`), the way
//! a Go Auth Service fills them: non-nullable timestamps always present (zero time as
//! 0001-01-01T00:00:00Z), non-nullable wrapper messages present even when empty, nullable
//! ones only when set. The service has its own decoder; the wire tests hold both to the
//! same field numbers.

use std::collections::{BTreeMap, HashMap};

use prost_types::Timestamp;
use teleport_mattermost_proto::teleport::accessmonitoringrules::v1 as amr;
use teleport_mattermost_proto::teleport::header::v1 as header;
use teleport_mattermost_proto::types;
use time::OffsetDateTime;

use super::model::{
    AccessMonitoringRule, AccessRequest, KIND_ACCESS_MONITORING_RULE, KIND_ACCESS_REQUEST,
    NewReview, RequestKind, RequestState, Review, User,
};

/// Go's zero `time.Time` as a protobuf timestamp: 0001-01-01T00:00:00Z.
pub const GO_ZERO_SECONDS: i64 = -62_135_596_800;

/// A nullable timestamp: absent when unset.
pub fn nullable_time(t: Option<OffsetDateTime>) -> Option<Timestamp> {
    t.map(|t| Timestamp {
        seconds: t.unix_timestamp(),
        nanos: t.nanosecond() as i32,
    })
}

/// A non-nullable timestamp: Go sends its zero time for "unset".
pub fn go_time(t: Option<OffsetDateTime>) -> Option<Timestamp> {
    Some(nullable_time(t).unwrap_or(Timestamp {
        seconds: GO_ZERO_SECONDS,
        nanos: 0,
    }))
}

/// The inverse of [`go_time`]: absent and Go's zero time both read as unset.
pub fn time_from(t: Option<&Timestamp>) -> Option<OffsetDateTime> {
    let t = t.filter(|t| t.seconds != GO_ZERO_SECONDS)?;
    let nanos = i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos);
    OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
}

/// `wrappers.LabelValues` (Go's `Traits`), always present.
pub fn label_values(map: &BTreeMap<String, Vec<String>>) -> Option<types::LabelValues> {
    let values = map
        .iter()
        .map(|(k, v)| (k.clone(), types::StringValues { values: v.clone() }))
        .collect();
    Some(types::LabelValues { values })
}

fn kind_number(kind: RequestKind) -> i32 {
    match kind {
        RequestKind::Undefined => 0,
        RequestKind::ShortTerm => 1,
        RequestKind::LongTerm => 2,
    }
}

/// `types.Metadata` of a namespaced resource.
fn metadata(name: &str, expires: Option<OffsetDateTime>) -> Option<types::Metadata> {
    Some(types::Metadata {
        name: name.into(),
        namespace: "default".into(),
        expires: nullable_time(expires),
        ..Default::default()
    })
}

fn review_to_proto(r: &Review, indexes: &[u32]) -> types::AccessReview {
    types::AccessReview {
        author: r.author.clone(),
        proposed_state: r.proposed_state.number(),
        reason: r.reason.clone(),
        created: go_time(r.created),
        annotations: label_values(&BTreeMap::new()),
        threshold_indexes: indexes.to_vec(),
        submitted_by: r.submitted_by.clone(),
        submitted_on_behalf_of_author: r.on_behalf,
        ..Default::default()
    }
}

/// A stored review read back from a submission.
pub fn review_from_proto(r: &types::AccessReview) -> Review {
    Review {
        author: r.author.clone(),
        proposed_state: RequestState::from_number(r.proposed_state),
        reason: r.reason.clone(),
        created: time_from(r.created.as_ref()),
        submitted_by: r.submitted_by.clone(),
        on_behalf: r.submitted_on_behalf_of_author,
    }
}

/// `AccessRequestV3` as an Auth Service sends it. `review_indexes[i]`: the thresholds review
/// `i` counted towards. Every requested role maps to one set holding every threshold (the
/// simulator has no threshold filters).
pub fn request_to_proto(r: &AccessRequest, review_indexes: &[Vec<u32>]) -> types::AccessRequestV3 {
    let all: Vec<u32> = (0..r.thresholds.len() as u32).collect();
    let role_threshold_mapping: HashMap<String, types::ThresholdIndexSets> = r
        .roles
        .iter()
        .map(|role| {
            let set = types::ThresholdIndexSet {
                indexes: all.clone(),
            };
            (role.clone(), types::ThresholdIndexSets { sets: vec![set] })
        })
        .collect();
    let spec = types::AccessRequestSpecV3 {
        user: r.user.clone(),
        roles: r.roles.clone(),
        state: r.state.number(),
        created: go_time(r.created),
        expires: go_time(r.expires),
        request_reason: r.request_reason.clone(),
        resolve_reason: r.resolve_reason.clone(),
        resolve_annotations: label_values(&BTreeMap::new()),
        system_annotations: label_values(&r.system_annotations),
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
        role_threshold_mapping,
        reviews: r
            .reviews
            .iter()
            .enumerate()
            .map(|(i, rev)| review_to_proto(rev, review_indexes.get(i).map_or(&[], |v| v)))
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
        max_duration: go_time(r.max_duration),
        session_ttl: go_time(r.session_ttl),
        access_list: r
            .promoted_access_list_title
            .as_ref()
            .map(|title| types::PromotedAccessList {
                name: String::new(),
                title: title.clone(),
            }),
        request_kind: kind_number(r.kind),
        ..Default::default()
    };
    types::AccessRequestV3 {
        kind: KIND_ACCESS_REQUEST.into(),
        sub_kind: String::new(),
        version: "v3".into(),
        metadata: metadata(&r.id, r.expires),
        spec: Some(spec),
    }
}

/// The submission a client identity `caller` would send for `review` (what the admin API's
/// `submit_review_as` feeds through the same checks as gRPC).
pub fn review_submission(
    request_id: &str,
    review: &NewReview,
    caller: &str,
    now: OffsetDateTime,
) -> types::AccessReviewSubmission {
    let stored = Review {
        author: review.author.clone(),
        proposed_state: review.proposed_state,
        reason: review.reason.clone(),
        created: Some(now),
        submitted_by: if review.on_behalf {
            caller.into()
        } else {
            String::new()
        },
        on_behalf: review.on_behalf,
    };
    types::AccessReviewSubmission {
        request_id: request_id.into(),
        review: Some(review_to_proto(&stored, &[])),
    }
}

/// `teleport.accessmonitoringrules.v1.AccessMonitoringRule` (v1 header metadata: name only).
pub fn rule_to_proto(r: &AccessMonitoringRule) -> amr::AccessMonitoringRule {
    amr::AccessMonitoringRule {
        metadata: Some(header::Metadata {
            name: r.name.clone(),
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

/// `types.UserV2` with roles and traits; the user never expires.
pub fn user_to_proto(u: &User) -> types::UserV2 {
    types::UserV2 {
        kind: "user".into(),
        sub_kind: String::new(),
        version: "v2".into(),
        metadata: metadata(&u.name, None),
        spec: Some(types::UserSpecV2 {
            roles: u.roles.clone(),
            traits: label_values(&u.traits),
            expires: go_time(None),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn go_zero_time_round_trips_as_unset() {
        assert_eq!(time_from(go_time(None).as_ref()), None);
        assert_eq!(time_from(None), None);
        let t = datetime!(2025-01-02 03:04:05.5 UTC);
        assert_eq!(time_from(go_time(Some(t)).as_ref()), Some(t));
    }

    #[test]
    fn on_behalf_fields_are_only_set_for_on_behalf_reviews() {
        let now = OffsetDateTime::now_utc();
        let mut review = NewReview {
            author: "bob".into(),
            proposed_state: RequestState::Approved,
            reason: "ok".into(),
            on_behalf: false,
        };
        let own = review_submission("r1", &review, "plugin", now)
            .review
            .unwrap();
        assert!(own.submitted_by.is_empty() && !own.submitted_on_behalf_of_author);
        review.on_behalf = true;
        let sub = review_submission("r1", &review, "plugin", now)
            .review
            .unwrap();
        assert_eq!(sub.submitted_by, "plugin");
        assert!(sub.submitted_on_behalf_of_author);
    }
}
