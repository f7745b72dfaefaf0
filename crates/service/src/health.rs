//! Readiness: whether the service can do its job right now. The bridge sets it while its
//! watch on Teleport is live; `/readyz` reports it; the application clears it on the way out.
//! It lives here, not in `http` or `bridge`, so neither has to import the other.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A shared flag, cheap to clone: every clone sees the same state.
#[derive(Clone, Default, Debug)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}
