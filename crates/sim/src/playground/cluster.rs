//! The Teleport side of the playground: what the admin panel shows of each access request and
//! the admin actions, through the Teleport simulator's admin API. The one place that knows the
//! simulator's request types, so the page code only sees [`Card`].

use time::OffsetDateTime;

use crate::teleport::model::{AccessRequest, Threshold};

use crate::teleport::{NewRequest, TeleportSim};

/// The plugin-data entry the service keeps per request.
pub(crate) const PLUGIN: &str = "mattermost";

/// One access request as the panel shows it.
#[derive(Debug, Clone)]
pub(crate) struct Card {
    pub id: String,
    pub user: String,
    pub roles: Vec<String>,
    /// `PENDING`, `APPROVED`, `DENIED`, ...
    pub state: &'static str,
    pub created: Option<OffsetDateTime>,
    pub reason: String,
    pub resolve_reason: String,
    pub suggested_reviewers: Vec<String>,
    /// (approvals, denials) needed, per threshold.
    pub thresholds: Vec<(u32, u32)>,
    pub reviews: Vec<ReviewLine>,
    /// The service's plugin data: its whole state for this request.
    pub plugin_data: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub(crate) struct ReviewLine {
    pub author: String,
    pub submitted_by: String,
    pub on_behalf: bool,
    pub verdict: &'static str,
    pub reason: String,
}

/// What the create form asks for.
#[derive(Debug, Clone, Default)]
pub(crate) struct NewCard {
    pub user: String,
    pub roles: Vec<String>,
    pub reason: String,
    pub reviewers: Vec<String>,
    pub approve: u32,
    pub deny: u32,
}

/// Every request, newest first (ids are UUIDv7, so the simulator's id order is creation order).
pub(crate) fn cards(tp: &TeleportSim) -> Vec<Card> {
    let mut requests = tp.requests();
    requests.sort_by(|a, b| (b.created, &b.id).cmp(&(a.created, &a.id)));
    requests.into_iter().map(|r| card(tp, r)).collect()
}

fn card(tp: &TeleportSim, r: AccessRequest) -> Card {
    Card {
        plugin_data: tp
            .plugin_data(&r.id, PLUGIN)
            .map(|d| d.into_iter().collect())
            .unwrap_or_default(),
        state: r.state.name(),
        thresholds: r.thresholds.iter().map(|t| (t.approve, t.deny)).collect(),
        reviews: r
            .reviews
            .iter()
            .map(|v| ReviewLine {
                author: v.author.clone(),
                submitted_by: v.submitted_by.clone(),
                on_behalf: v.on_behalf,
                verdict: v.proposed_state.name(),
                reason: v.reason.clone(),
            })
            .collect(),
        id: r.id,
        user: r.user,
        roles: r.roles,
        created: r.created,
        reason: r.request_reason,
        resolve_reason: r.resolve_reason,
        suggested_reviewers: r.suggested_reviewers,
    }
}

/// Creates a PENDING request, as `tsh request create` would; returns its id.
pub(crate) fn create(tp: &TeleportSim, new: NewCard) -> Result<String, String> {
    if tp.user(&new.user).is_none() {
        return Err(format!("Teleport has no user {:?}", new.user));
    }
    if new.roles.is_empty() {
        return Err("name at least one role to request".into());
    }
    let req = NewRequest {
        user: new.user,
        roles: new.roles,
        reason: new.reason,
        suggested_reviewers: new.reviewers,
        thresholds: Some(vec![Threshold {
            name: "playground".into(),
            approve: new.approve.max(1),
            deny: new.deny.max(1),
        }]),
        ..NewRequest::default()
    };
    Ok(tp.create_request(req).id)
}

/// Approves or denies as an admin (`tctl request approve|deny`).
pub(crate) fn resolve(
    tp: &TeleportSim,
    id: &str,
    approve: bool,
    reason: &str,
) -> Result<(), String> {
    let done = if approve {
        tp.approve(id, reason)
    } else {
        tp.deny(id, reason)
    };
    done.map(|_| ()).map_err(|s| s.message().to_string())
}

/// Deletes the request, which is what Teleport does when it expires.
pub(crate) fn delete(tp: &TeleportSim, id: &str) -> Result<(), String> {
    if tp.delete_request(id) {
        Ok(())
    } else {
        Err(format!("no access request {id}"))
    }
}
