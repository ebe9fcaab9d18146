//! `/metrics`: the node in Prometheus' text format, for the monitoring a city
//! already runs.
//!
//! Most values are read at scrape time from the same admin operations the CLI
//! uses (`status`, `peers list`, `peers pending`) and from the transport's live
//! connections, so they cannot drift from what `labnet status` says. Only what
//! no table remembers is counted as it happens, through the [`Metrics`] handle
//! the daemon passes to its session handler: sync sessions by how they ended,
//! and protocol violations by close code.
//!
//! The endpoint needs no token: it is read-only and shows counts, NodeIds and
//! names of approved peers, never lab data.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::api::{AdminRequest, PeerListEntry, StatusReport};
use crate::control::Control;
use crate::transport::Transport;

/// Counters that only events can tell, shared by the daemon's tasks. Cloning
/// is cheap: the counters are shared.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// Sync sessions that ended, by outcome (`shutdown`, `peer_closed`,
    /// `violation`, `failed`).
    sessions: Family<OutcomeLabels, Counter>,
    /// Sessions closed because the peer broke the protocol, by close code.
    violations: Family<CodeLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    code: u32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerLabels {
    peer: String,
    name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabels {
    peer: String,
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    action: String,
}

impl Metrics {
    /// Counts a sync session that ended with `outcome` (a fixed word).
    pub fn session_ended(&self, outcome: &'static str) {
        self.sessions
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// Counts a protocol violation that closed a session with `code`.
    pub fn violation(&self, code: u32) {
        self.violations.get_or_create(&CodeLabels { code }).inc();
    }
}

/// Why a scrape failed.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// An admin operation refused.
    #[error("reading {what}: {reason}")]
    Control {
        /// Which operation.
        what: &'static str,
        /// Its reason.
        reason: String,
    },
    /// Formatting the text failed (a bug).
    #[error("encoding the metrics: {0}")]
    Encode(#[from] std::fmt::Error),
}

/// What a scrape reads: the admin operations, the live connections and the
/// event counters.
#[derive(Debug, Clone)]
pub struct MetricsSource {
    /// The admin operations.
    pub control: Control,
    /// Live connections, for bytes per peer.
    pub transport: Transport,
    /// The event counters.
    pub metrics: Metrics,
}

impl MetricsSource {
    /// The node's metrics as Prometheus text (OpenMetrics-compatible).
    pub async fn render(&self) -> Result<String, MetricsError> {
        let status: StatusReport = call(&self.control, AdminRequest::Status, "status").await?;
        let peers: Vec<PeerListEntry> =
            call(&self.control, AdminRequest::PeersList, "peers").await?;
        let disclosures = self
            .control
            .store
            .call(|s| s.disclosure_counts())
            .await
            .map_err(|e| MetricsError::Control {
                what: "the disclosure log",
                reason: e.to_string(),
            })?;

        let mut registry = Registry::with_prefix("labnet");
        let by_state = Family::<StateLabels, Gauge>::default();
        for state in ["approved", "revoked"] {
            by_state
                .get_or_create(&StateLabels {
                    state: state.into(),
                })
                .set(0);
        }
        for p in &peers {
            by_state
                .get_or_create(&StateLabels {
                    state: p.state.clone(),
                })
                .inc();
        }
        by_state
            .get_or_create(&StateLabels {
                state: "pending".into(),
            })
            .set(gauge_value(status.peers.pending));
        registry.register("peers", "Peers by state", by_state);
        register_gauge(
            &mut registry,
            "peers_connected",
            "Approved peers connected now",
            status.peers.connected,
        );
        register_gauge(
            &mut registry,
            "pending_requests",
            "Nodes waiting for approval",
            status.peers.pending,
        );
        let documents = Family::<KindLabels, Gauge>::default();
        for (kind, n) in [
            ("own", status.documents.publication),
            ("held", status.documents.replica),
            ("private", status.documents.private),
        ] {
            documents.get_or_create(&KindLabels { kind }).set(n);
        }
        registry.register(
            "publications",
            "Documents: own publications, publications held from others, private lab documents",
            documents,
        );
        let behind = Family::<PeerLabels, Gauge>::default();
        let since_sync = Family::<PeerLabels, Gauge>::default();
        let now = crate::store::unix_now();
        for s in &status.sync {
            let labels = PeerLabels {
                peer: s.node_id.clone(),
                name: s.name.clone().unwrap_or_default(),
            };
            behind
                .get_or_create(&labels)
                .set(gauge_value(s.not_up_to_date));
            if let Some(t) = s.last_sync {
                since_sync.get_or_create(&labels).set(now.saturating_sub(t));
            }
        }
        registry.register(
            "peer_publications_behind",
            "Our publications in a peer's scope that changed after what it acknowledged",
            behind,
        );
        registry.register(
            "peer_seconds_since_last_sync",
            "Seconds since a peer last acknowledged our index",
            since_sync,
        );
        let bytes = Family::<DirectionLabels, Gauge<u64, AtomicU64>>::default();
        for s in &status.sync {
            let Ok(node) = s.node_id.parse() else {
                continue;
            };
            if let Some((sent, received)) = self.transport.connection_bytes(node) {
                for (direction, n) in [("sent", sent), ("received", received)] {
                    bytes
                        .get_or_create(&DirectionLabels {
                            peer: s.node_id.clone(),
                            direction,
                        })
                        .set(n);
                }
            }
        }
        registry.register(
            "peer_connection_bytes",
            "Bytes sent and received on a peer's current connection (QUIC's UDP payload counters)",
            bytes,
        );
        registry.register(
            "sessions_ended",
            "Sync sessions that ended since the daemon started, by outcome",
            self.metrics.sessions.clone(),
        );
        registry.register(
            "protocol_violations",
            "Sync sessions closed for a protocol violation since the daemon started, by close code",
            self.metrics.violations.clone(),
        );
        let actions = Family::<ActionLabels, Gauge>::default();
        for (action, n) in disclosures {
            actions.get_or_create(&ActionLabels { action }).set(n);
        }
        registry.register(
            "disclosures",
            "Lines of the disclosure log, by action",
            actions,
        );
        register_gauge(
            &mut registry,
            "store_bytes",
            "Bytes the store takes on disk (database and WAL)",
            status.store_bytes,
        );
        register_gauge(
            &mut registry,
            "uptime_seconds",
            "Seconds since the daemon started",
            status.uptime_secs,
        );
        let mut out = String::new();
        encode(&mut out, &registry)?;
        Ok(out)
    }
}

/// A count as a gauge's value (saturating: a count never reaches `i64::MAX`).
fn gauge_value(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

fn register_gauge(registry: &mut Registry, name: &str, help: &str, value: impl TryInto<i64>) {
    let gauge = Gauge::<i64, std::sync::atomic::AtomicI64>::default();
    gauge.set(gauge_value(value));
    registry.register(name, help, gauge);
}

async fn call<T: serde::de::DeserializeOwned>(
    control: &Control,
    request: AdminRequest,
    what: &'static str,
) -> Result<T, MetricsError> {
    let value = control
        .handle(request)
        .await
        .into_result()
        .map_err(|reason| MetricsError::Control { what, reason })?;
    serde_json::from_value(value).map_err(|e| MetricsError::Control {
        what,
        reason: e.to_string(),
    })
}
