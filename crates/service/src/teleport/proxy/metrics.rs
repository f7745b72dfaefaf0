//! `teleport_mattermost_teleport_connection_info{path, addr}`: 1 for the path in use, read
//! from the dialer at every scrape (no sample before the first connection).

use std::sync::Arc;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntGaugeVec, Opts};

use crate::teleport::connect::Dialer;

#[derive(Clone)]
pub struct ConnectionInfo {
    dialer: Arc<dyn Dialer>,
    gauge: IntGaugeVec,
}

impl ConnectionInfo {
    pub fn new(dialer: Arc<dyn Dialer>) -> Self {
        let gauge = IntGaugeVec::new(
            Opts::new(
                "teleport_mattermost_teleport_connection_info",
                "How the service reaches Teleport: 1 for the path in use (direct_auth, proxy_tls_routing, proxy_tls_routing_upgrade) and the configured address.",
            ),
            &["path", "addr"],
        )
        .expect("static metric definition");
        Self { dialer, gauge }
    }
}

impl Collector for ConnectionInfo {
    fn desc(&self) -> Vec<&Desc> {
        self.gauge.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.gauge.reset();
        if let Some(path) = self.dialer.path() {
            self.gauge
                .with_label_values(&[path.label(), self.dialer.target().as_str()])
                .set(1);
        }
        self.gauge.collect()
    }
}
