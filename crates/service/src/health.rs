//! Readiness: whether the service can do its job right now. The bridge sets it while its
//! watch on Teleport is live, and reports Mattermost refusing the bot token (401) until a
//! call succeeds again; `/readyz` reports it with the reason; the application clears it on
//! the way out. It lives here, not in `http` or `bridge`, so neither has to import the other.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Default, Debug)]
struct State {
    watching: AtomicBool,
    /// Why Mattermost cannot be used right now (it refuses the bot token), if it cannot.
    mattermost: Mutex<Option<String>>,
}

/// Shared state, cheap to clone: every clone sees the same state.
#[derive(Clone, Default, Debug)]
pub struct Readiness(Arc<State>);

impl Readiness {
    /// Whether the watch on Teleport is established.
    pub fn set(&self, ready: bool) {
        self.0.watching.store(ready, Ordering::Release);
    }

    /// Mattermost refused the bot token (`Some(error text)`), or a later call succeeded
    /// (`None`). The text names the fix; it never contains the token.
    pub fn set_mattermost_problem(&self, problem: Option<String>) {
        *crate::sync::lock(&self.0.mattermost) = problem;
    }

    pub fn is_ready(&self) -> bool {
        self.reason().is_none()
    }

    /// Why the service is not ready, in words an operator can act on; `None` when it is.
    pub fn reason(&self) -> Option<String> {
        if !self.0.watching.load(Ordering::Acquire) {
            return Some("the watch on Teleport is not established".into());
        }
        crate::sync::lock(&self.0.mattermost).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_token_makes_a_watching_service_unready_until_cleared() {
        let r = Readiness::default();
        assert!(r.reason().unwrap().contains("watch"));
        r.set(true);
        assert!(r.is_ready());
        r.set_mattermost_problem(Some("Mattermost rejected the bot token (401)".into()));
        assert!(!r.is_ready());
        assert!(r.clone().reason().unwrap().contains("401"));
        r.set_mattermost_problem(None);
        assert!(r.is_ready());
    }
}
