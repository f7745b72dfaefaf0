//! The bridge's renderer over the Mattermost post templates: builds the view from a request
//! summary, adds the cluster, the web link, and signed Approve/Deny buttons when in-chat
//! review applies to the request.

use std::time::Duration;

use time::OffsetDateTime;
use url::Url;

use super::ports::Body;
use super::render::Renderer;
use super::work::Summary;
use crate::access::{RequestState, Resolution, Review};
use crate::mattermost::model::Props;
use crate::mattermost::render::{
    self as mm, ActionButton, ButtonStyle, Ending, RequestView, ReviewProgress, ReviewView, Status,
};
use crate::signing::{Action, Signer};

/// Where buttons point and how they are signed; absent when in-chat review is off or the
/// cluster cannot take on-behalf reviews.
#[derive(Debug, Clone)]
pub struct Buttons {
    pub signer: Signer,
    /// `<public_addr>/mattermost/action`.
    pub action_url: Url,
    /// Requests for these roles get no buttons (review them in Teleport).
    pub link_only_roles: Vec<String>,
}

/// Without a known expiry, buttons stay valid this long (the request itself may expire first).
const DEFAULT_BUTTON_TTL: time::Duration = time::Duration::days(7);

#[derive(Debug, Clone, Default)]
pub struct PostRenderer {
    pub cluster: Option<String>,
    /// `https://<proxy>/web/requests/`; the request id is appended.
    pub link_base: Option<Url>,
    pub buttons: Option<Buttons>,
}

fn status(r: Resolution) -> Status {
    match r {
        Resolution::Unresolved => Status::Pending,
        Resolution::Approved => Status::Approved,
        Resolution::Denied => Status::Denied,
        Resolution::Expired => Status::Expired,
        Resolution::Promoted => Status::Promoted,
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.trim().is_empty()).then(|| s.to_string())
}

impl PostRenderer {
    /// The web link base when the proxy address is known (and, as upstream, the cluster has
    /// the AdvancedAccessWorkflows feature that serves the review page).
    pub fn link_base(proxy_public_addr: &str, advanced_access_workflows: bool) -> Option<Url> {
        if !advanced_access_workflows || proxy_public_addr.trim().is_empty() {
            return None;
        }
        let addr = proxy_public_addr.trim();
        let with_scheme = if addr.contains("://") {
            addr.to_string()
        } else {
            format!("https://{addr}")
        };
        let mut url = Url::parse(&with_scheme).ok()?;
        if url.scheme() == "https" && url.port() == Some(443) {
            let _ = url.set_port(None);
        }
        url.set_path("/web/requests/");
        Some(url)
    }

    fn view(&self, s: &Summary) -> RequestView {
        let reviews = (s.approvals + s.denials > 0).then_some(ReviewProgress {
            approvals: s.approvals,
            approvals_needed: s.needed.map(|n| n.0),
            denials: s.denials,
            denials_needed: s.needed.map(|n| n.1),
        });
        RequestView {
            id: s.id.clone(),
            user: s.user.clone(),
            roles: s.roles.clone(),
            resources: s.resources.clone(),
            request_reason: non_empty(&s.request_reason),
            cluster: self.cluster.clone(),
            created: s.created.unwrap_or_else(OffsetDateTime::now_utc),
            access_expires: s.expires,
            max_duration: s.max_duration,
            status: status(s.status),
            resolve_reason: non_empty(&s.resolve_reason),
            reviews,
            link: self.link_base.as_ref().and_then(|b| b.join(&s.id).ok()),
            buttons: None,
            promoted_list_title: s.promoted_title.clone(),
            waiting: s.waiting.and_then(|w| time::Duration::try_from(w).ok()),
            escalated: s.escalated,
        }
    }

    fn buttons(&self, s: &Summary, channel_id: &str) -> Option<Vec<ActionButton>> {
        let b = self.buttons.as_ref()?;
        let link_only = s.roles.iter().any(|r| b.link_only_roles.contains(r));
        if s.status != Resolution::Unresolved || !s.short_term || link_only {
            return None;
        }
        let expires = s
            .expires
            .unwrap_or_else(|| OffsetDateTime::now_utc() + DEFAULT_BUTTON_TTL)
            .unix_timestamp();
        let button = |action: Action, name: &str, style| ActionButton {
            id: action.as_str().to_string(),
            name: name.to_string(),
            style,
            url: b.action_url.clone(),
            context: Props::of(&b.signer.button(&s.id, action, channel_id, expires))
                .expect("a button context serializes"),
        };
        Some(vec![
            button(Action::Approve, "Approve", ButtonStyle::Success),
            button(Action::Deny, "Deny", ButtonStyle::Danger),
        ])
    }
}

impl Renderer for PostRenderer {
    /// The message is rendered once (it does not show the buttons); props per channel.
    fn roots(&self, s: &Summary, channel_ids: &[&str]) -> Vec<Body> {
        let mut view = self.view(s);
        let message = mm::root_message(&view);
        channel_ids
            .iter()
            .map(|ch| {
                view.buttons = self.buttons(s, ch);
                Body {
                    message: message.clone(),
                    props: Some(mm::root_props(&view).into_json()),
                }
            })
            .collect()
    }

    fn reply(&self, s: &Summary, reviews: &[Review]) -> Body {
        let Some(review) = reviews.last() else {
            return Body::text("");
        };
        let denied = review.proposed_state == RequestState::Denied;
        let count = reviews
            .iter()
            .filter(|r| (r.proposed_state == RequestState::Denied) == denied)
            .count() as u32;
        let (proposed, needed) = if denied {
            (Status::Denied, s.needed.map(|n| n.1))
        } else {
            (Status::Approved, s.needed.map(|n| n.0))
        };
        Body::text(mm::review_reply(&ReviewView {
            author: review.author.clone(),
            created: review.created.unwrap_or_else(OffsetDateTime::now_utc),
            proposed,
            reason: non_empty(&review.reason),
            count,
            needed,
        }))
    }

    fn outcome(&self, s: &Summary) -> Body {
        Body::text(mm::requester_dm(&self.view(s)))
    }

    fn reminder(&self, s: &Summary, waited: Duration, mentions: &[String], here: bool) -> Body {
        let waited = time::Duration::try_from(waited).unwrap_or_default();
        Body::text(mm::reminder_reply(&self.view(s), waited, mentions, here))
    }

    fn expiry_notice(&self, s: &Summary, ending: Ending, at: OffsetDateTime) -> Body {
        let left = (at - OffsetDateTime::now_utc()).max(time::Duration::ZERO);
        Body::text(mm::expiry_notice(&self.view(s), ending, at, left))
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;
    use time::macros::datetime;

    use super::*;

    #[test]
    fn roots_for_several_channels_equal_one_root_per_channel() {
        let r = PostRenderer {
            cluster: Some("c1".into()),
            link_base: None,
            buttons: Some(Buttons {
                signer: Signer::new(SecretString::from("k".repeat(32))),
                action_url: Url::parse("https://tm.example.com/mattermost/action").unwrap(),
                link_only_roles: vec![],
            }),
        };
        let s = Summary {
            id: "req-1".into(),
            user: "alice@example.com".into(),
            roles: vec!["editor".into()],
            request_reason: "because".into(),
            created: Some(datetime!(2026-03-02 14:00 UTC)),
            expires: Some(datetime!(2026-03-02 15:00 UTC)),
            short_term: true,
            ..Summary::default()
        };
        let channels = ["ch-a", "ch-b", "ch-c"];
        let one_by_one: Vec<Body> = channels.iter().flat_map(|c| r.roots(&s, &[c])).collect();
        assert_eq!(r.roots(&s, &channels), one_by_one);
        assert_ne!(
            one_by_one[0].props, one_by_one[1].props,
            "buttons are signed per channel"
        );
        assert!(r.roots(&s, &[]).is_empty());
    }
}
