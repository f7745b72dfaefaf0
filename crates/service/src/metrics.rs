//! The service's Prometheus registry (not the global one, so tests and `demo` can run several
//! services in one process). Components register their own metric families on it.

use prometheus::{IntGaugeVec, Opts, Registry, TextEncoder};

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let build = IntGaugeVec::new(
            Opts::new(
                "teleport_mattermost_build_info",
                "Build information; the value is always 1.",
            ),
            &["version", "git_ref", "rustc"],
        )
        .expect("static metric definition");
        build
            .with_label_values(&[
                crate::version::VERSION,
                crate::version::GIT_REF.unwrap_or(""),
                crate::version::RUSTC,
            ])
            .set(1);
        registry.register(Box::new(build)).expect("fresh registry");
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("fresh registry");
        Self { registry }
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Registers a collector; a duplicate name is a programming error caught by tests.
    pub fn register<C: prometheus::core::Collector + Clone + 'static>(&self, c: &C) -> C {
        self.registry
            .register(Box::new(c.clone()))
            .expect("metric registered twice");
        c.clone()
    }

    /// The registry in Prometheus text exposition format.
    pub fn render(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_else(|e| format!("# error encoding metrics: {e}\n"))
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
