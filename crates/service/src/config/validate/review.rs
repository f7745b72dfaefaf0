//! The `[review]` section: every key is checked whether or not review is enabled, and an
//! [`EnabledReview`] exists only when `review.enabled = true` and all it needs is valid.

use secrecy::ExposeSecret;
use url::Url;

use super::problems::{Problems, set};
use crate::config::raw::RawReview;
use crate::config::{DEFAULT_USER_ID_TRAIT, EnabledReview, RequireReason, secret};

/// Below this an HMAC key is guessable; 32 bytes is what `openssl rand -hex 32` prints.
const MIN_SIGNING_SECRET: usize = 32;

/// `public_addr` is `http.public_addr`, already checked as a URL (`None` when unset or bad).
pub(super) fn review(
    p: &mut Problems,
    r: RawReview,
    public_addr: Option<Url>,
) -> Option<EnabledReview> {
    let enabled = r.enabled.unwrap_or(false);
    let user_id_trait = set(r.user_id_trait).unwrap_or_else(|| DEFAULT_USER_ID_TRAIT.into());
    let require_reason = match set(r.require_reason).map(|s| s.to_lowercase()).as_deref() {
        None | Some("deny") => RequireReason::Deny,
        Some("never") => RequireReason::Never,
        Some("always") => RequireReason::Always,
        Some(other) => {
            p.problem(
                "review.require_reason",
                format!("is {other:?}: use \"never\", \"deny\" or \"always\""),
            );
            RequireReason::Deny
        }
    };
    let signing_secret = set(r.signing_secret).and_then(|s| match secret::load(&s) {
        Ok(secret) => {
            if secret.expose_secret().len() < MIN_SIGNING_SECRET {
                p.problem(
                    "review.signing_secret",
                    format!("is shorter than {MIN_SIGNING_SECRET} characters: generate one with `openssl rand -hex 32`"),
                );
            }
            Some(secret)
        }
        Err(e) => {
            p.problem("review.signing_secret", e);
            None
        }
    });
    let mut command_tokens = Vec::new();
    if let Some(v) = r.command_token {
        for t in p.strings("review.command_token", v).unwrap_or_default() {
            match secret::load(&t) {
                Ok(s) => command_tokens.push(s),
                Err(e) => p.problem("review.command_token", e),
            }
        }
    }
    if !enabled {
        return None;
    }
    if signing_secret.is_none() {
        p.problem(
            "review.signing_secret",
            "is required when `review.enabled = true`: generate one with `openssl rand -hex 32`",
        );
    }
    if public_addr.is_none() {
        p.problem(
            "http.public_addr",
            "is required when `review.enabled = true`: set the URL Mattermost uses to reach this service, e.g. https://teleport-mattermost.internal:8081",
        );
    }
    let (signing_secret, public_addr) = (signing_secret?, public_addr?);
    let action_url = callback_url(p, &public_addr, "mattermost/action")?;
    let dialog_url = callback_url(p, &public_addr, "mattermost/dialog")?;
    Some(EnabledReview {
        public_addr,
        action_url,
        dialog_url,
        signing_secret,
        command_tokens,
        user_id_trait,
        allow_email_username_match: r.allow_email_username_match.unwrap_or(false),
        require_reason,
        link_only_roles: r.link_only_roles,
    })
}

/// `<public_addr>/<path>`: the URL a button or dialog calls back.
fn callback_url(p: &mut Problems, public_addr: &Url, path: &str) -> Option<Url> {
    match public_addr.join(path) {
        Ok(u) => Some(u),
        Err(e) => {
            p.problem(
                "http.public_addr",
                format!("is {public_addr}, which cannot be a base URL ({e}): write e.g. https://host.example.com"),
            );
            None
        }
    }
}
