//! HMAC-SHA256 tokens for button contexts and dialog states. Mattermost does not sign its
//! callbacks, so every field we act on travels with our own signature and an expiry.
//! Button contexts are hidden from clients; dialog states are not, so they also bind the
//! clicker's Mattermost user id.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Format version of the signed payload, so a future change cannot be confused with it.
const VERSION: u8 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Approve,
    Deny,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Approve => "approve",
            Action::Deny => "deny",
        }
    }
}

/// What a button carries in `integration.context`. The post id is not known when the post
/// is created, so the context binds the channel; the handler then checks that the clicked
/// post is one recorded for this request in plugin data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ButtonContext {
    pub v: u8,
    pub request_id: String,
    pub action: Action,
    pub channel_id: String,
    /// Unix seconds after which the button is refused.
    pub expires: i64,
    pub sig: String,
}

/// What a reason dialog carries in `state` (visible to the clicker's client).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DialogState {
    pub v: u8,
    pub request_id: String,
    pub action: Action,
    pub post_id: String,
    pub user_id: String,
    pub expires: i64,
    pub sig: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("malformed signed payload: {0}")]
    Malformed(String),
    #[error("signature does not match")]
    BadSignature,
    #[error("signed payload expired")]
    Expired,
}

/// Signs and verifies with the configured `review.signing_secret`.
#[derive(Clone)]
pub struct Signer {
    key: SecretString,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer([REDACTED])")
    }
}

impl Signer {
    pub fn new(key: SecretString) -> Self {
        Self { key }
    }

    fn mac(&self, kind: &str, fields: &[&str]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(self.key.expose_secret().as_bytes())
            .expect("HMAC takes keys of any length");
        // Length-prefixed fields: no field value can shift into another.
        mac.update(kind.as_bytes());
        for f in fields {
            mac.update(&(f.len() as u64).to_be_bytes());
            mac.update(f.as_bytes());
        }
        mac
    }

    fn sign(&self, kind: &str, fields: &[&str]) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(kind, fields).finalize().into_bytes())
    }

    fn verify(&self, kind: &str, fields: &[&str], sig: &str) -> Result<(), SignatureError> {
        let raw = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| SignatureError::Malformed("signature is not base64url".into()))?;
        // `verify_slice` compares in constant time.
        self.mac(kind, fields)
            .verify_slice(&raw)
            .map_err(|_| SignatureError::BadSignature)
    }

    pub fn button(
        &self,
        request_id: &str,
        action: Action,
        channel_id: &str,
        expires: i64,
    ) -> ButtonContext {
        let exp = expires.to_string();
        let sig = self.sign(
            "button",
            &[
                &VERSION.to_string(),
                request_id,
                action.as_str(),
                channel_id,
                &exp,
            ],
        );
        ButtonContext {
            v: VERSION,
            request_id: request_id.into(),
            action,
            channel_id: channel_id.into(),
            expires,
            sig,
        }
    }

    /// Checks signature first, then expiry against `now` (unix seconds).
    pub fn verify_button(&self, c: &ButtonContext, now: i64) -> Result<(), SignatureError> {
        if c.v != VERSION {
            return Err(SignatureError::Malformed(format!(
                "unknown version {}",
                c.v
            )));
        }
        self.verify(
            "button",
            &[
                &c.v.to_string(),
                &c.request_id,
                c.action.as_str(),
                &c.channel_id,
                &c.expires.to_string(),
            ],
            &c.sig,
        )?;
        if now > c.expires {
            return Err(SignatureError::Expired);
        }
        Ok(())
    }

    pub fn dialog(
        &self,
        request_id: &str,
        action: Action,
        post_id: &str,
        user_id: &str,
        expires: i64,
    ) -> DialogState {
        let sig = self.sign(
            "dialog",
            &[
                &VERSION.to_string(),
                request_id,
                action.as_str(),
                post_id,
                user_id,
                &expires.to_string(),
            ],
        );
        DialogState {
            v: VERSION,
            request_id: request_id.into(),
            action,
            post_id: post_id.into(),
            user_id: user_id.into(),
            expires,
            sig,
        }
    }

    pub fn verify_dialog(&self, s: &DialogState, now: i64) -> Result<(), SignatureError> {
        if s.v != VERSION {
            return Err(SignatureError::Malformed(format!(
                "unknown version {}",
                s.v
            )));
        }
        self.verify(
            "dialog",
            &[
                &s.v.to_string(),
                &s.request_id,
                s.action.as_str(),
                &s.post_id,
                &s.user_id,
                &s.expires.to_string(),
            ],
            &s.sig,
        )?;
        if now > s.expires {
            return Err(SignatureError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> Signer {
        Signer::new(SecretString::from(
            "0123456789abcdef0123456789abcdef".to_string(),
        ))
    }

    #[test]
    fn a_signed_button_verifies_until_it_expires() {
        let s = signer();
        let c = s.button("req-1", Action::Approve, "chan-1", 1000);
        assert_eq!(s.verify_button(&c, 999), Ok(()));
        assert_eq!(s.verify_button(&c, 1000), Ok(()));
        assert_eq!(s.verify_button(&c, 1001), Err(SignatureError::Expired));
    }

    #[test]
    fn any_tampered_field_breaks_the_button_signature() {
        let s = signer();
        let c = s.button("req-1", Action::Approve, "chan-1", 1000);
        let mut t = c.clone();
        t.request_id = "req-2".into();
        assert_eq!(s.verify_button(&t, 0), Err(SignatureError::BadSignature));
        let mut t = c.clone();
        t.action = Action::Deny;
        assert_eq!(s.verify_button(&t, 0), Err(SignatureError::BadSignature));
        let mut t = c.clone();
        t.channel_id = "chan-2".into();
        assert_eq!(s.verify_button(&t, 0), Err(SignatureError::BadSignature));
        let mut t = c.clone();
        t.expires = 10_000;
        assert_eq!(s.verify_button(&t, 0), Err(SignatureError::BadSignature));
        let mut t = c;
        t.sig = "!!".into();
        assert!(matches!(
            s.verify_button(&t, 0),
            Err(SignatureError::Malformed(_))
        ));
    }

    #[test]
    fn another_key_does_not_verify() {
        let c = signer().button("req-1", Action::Deny, "chan-1", 1000);
        let other = Signer::new(SecretString::from(
            "another-secret-another-secret-xx".to_string(),
        ));
        assert_eq!(
            other.verify_button(&c, 0),
            Err(SignatureError::BadSignature)
        );
    }

    #[test]
    fn fields_cannot_shift_into_each_other() {
        let s = signer();
        let a = s.button("req-1", Action::Approve, "chan", 1000);
        let b = s.button("req-1approve", Action::Approve, "chan", 1000);
        assert_ne!(a.sig, b.sig);
    }

    #[test]
    fn a_dialog_state_is_bound_to_the_clicker() {
        let s = signer();
        let d = s.dialog("req-1", Action::Deny, "post-1", "user-1", 1000);
        assert_eq!(s.verify_dialog(&d, 5), Ok(()));
        let mut t = d.clone();
        t.user_id = "user-2".into();
        assert_eq!(s.verify_dialog(&t, 5), Err(SignatureError::BadSignature));
        let mut t = d.clone();
        t.post_id = "post-2".into();
        assert_eq!(s.verify_dialog(&t, 5), Err(SignatureError::BadSignature));
        assert_eq!(s.verify_dialog(&d, 1001), Err(SignatureError::Expired));
        // A button signature is not a dialog signature.
        let b = s.button("req-1", Action::Deny, "post-1", 1000);
        let mut t = d;
        t.sig = b.sig;
        assert_eq!(s.verify_dialog(&t, 5), Err(SignatureError::BadSignature));
    }

    proptest::proptest! {
        /// Whatever a caller puts in a context, it verifies only when we signed exactly it.
        #[test]
        fn arbitrary_contexts_never_verify(
            request_id in "\\PC{0,40}", channel_id in "\\PC{0,30}", expires in proptest::prelude::any::<i64>(),
            sig in "[A-Za-z0-9_-]{0,60}", deny in proptest::prelude::any::<bool>(),
        ) {
            let s = signer();
            let action = if deny { Action::Deny } else { Action::Approve };
            let forged = ButtonContext { v: VERSION, request_id: request_id.clone(), action, channel_id: channel_id.clone(), expires, sig };
            proptest::prop_assert!(s.verify_button(&forged, i64::MIN).is_err());
            // Signed, it verifies; any changed field then fails.
            let good = s.button(&request_id, action, &channel_id, expires);
            proptest::prop_assert!(s.verify_button(&good, i64::MIN).is_ok());
            let mut t = good.clone();
            t.request_id.push('x');
            proptest::prop_assert!(s.verify_button(&t, i64::MIN).is_err());
            let mut t = good.clone();
            t.expires = t.expires.wrapping_add(1);
            proptest::prop_assert!(s.verify_button(&t, i64::MIN).is_err());
        }

        /// Callback bodies are parsed from untrusted JSON: any bytes either fail to parse or
        /// parse into a context that does not verify.
        #[test]
        fn arbitrary_json_never_verifies(raw in "\\PC{0,200}") {
            if let Ok(c) = serde_json::from_str::<ButtonContext>(&raw) {
                proptest::prop_assert!(signer().verify_button(&c, i64::MIN).is_err());
            }
            if let Ok(d) = serde_json::from_str::<DialogState>(&raw) {
                proptest::prop_assert!(signer().verify_dialog(&d, i64::MIN).is_err());
            }
        }
    }

    #[test]
    fn debug_never_shows_the_key() {
        assert!(!format!("{:?}", signer()).contains("0123456789"));
    }
}
