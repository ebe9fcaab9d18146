//! The version benchmark: new public versions published one at a time on the
//! converged network, each timed until it is on every node, and the bytes it
//! cost.

use std::sync::Arc;
use std::time::{Duration, Instant};

use labnet_protocol::NodeId;

use crate::api::{AdminRequest, Practice, PracticesImported, Shared};
use crate::daemon::NodeContext;

use super::topology::Reach;
use super::{admin, DemoError, Node, Publication};

/// What publishing new public versions one at a time on the converged network
/// cost: how long until each was on every node, and the bytes per node.
#[doc(hidden)]
#[derive(Debug, Clone, serde::Serialize)]
pub struct VersionFigures {
    /// New public versions published, each by a different city.
    pub versions: usize,
    /// The nodes each had to reach: every node but its origin.
    pub receivers: usize,
    /// Per version, from the share request until the last node stored it
    /// at the new heads (ms), sorted.
    pub latencies_ms: Vec<f64>,
    /// A version's changes plus its signed statement (bytes, mean).
    pub version_bytes: f64,
    /// UDP bytes a node received per version (mean over all nodes), the idle
    /// traffic of the same time taken off.
    pub received_per_node_per_version: f64,
    /// Idle traffic (keep-alives and their ACKs) a node received per second,
    /// measured on the quiet network before the series.
    pub idle_received_per_node_per_second: f64,
    /// Connections per node (mean).
    pub mean_connections: f64,
}

impl VersionFigures {
    /// The `q`-quantile (0 to 1) of the latencies, in ms.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        let n = self.latencies_ms.len();
        if n == 0 {
            return f64::NAN;
        }
        let at = ((n as f64 * q) as usize).min(n - 1);
        self.latencies_ms.get(at).copied().unwrap_or(f64::NAN)
    }
}

/// How long the idle traffic is measured before the version series: several
/// keep-alive intervals (5 s by default), so the rate is not one ping's luck.
pub(super) const IDLE_WINDOW: Duration = Duration::from_secs(12);

/// How long one new version may take to reach every node before the
/// measurement gives up: far above the 2 s target, so a miss is measured,
/// not cut off.
pub(super) const VERSION_TIMEOUT: Duration = Duration::from_secs(60);

/// UDP bytes `(sent, received)` of each node on all its connections now, and
/// how many connections it has.
pub(super) fn traffic(nodes: &[Node]) -> Vec<(u64, u64, usize)> {
    let ids: Vec<NodeId> = nodes.iter().map(|n| n.daemon.node_id()).collect();
    nodes
        .iter()
        .map(|n| {
            let transport = &n.daemon.context().transport;
            ids.iter()
                .filter_map(|p| transport.connection_bytes(*p))
                .fold((0, 0, 0), |(tx, rx, c), (t, r)| (tx + t, rx + r, c + 1))
        })
        .collect()
}

/// Bytes received by all nodes together between two [`traffic`] readings.
pub(super) fn received_between(before: &[(u64, u64, usize)], after: &[(u64, u64, usize)]) -> u64 {
    before
        .iter()
        .zip(after)
        .map(|(b, a)| a.1.saturating_sub(b.1))
        .sum()
}

/// Fails the measurement with `reason`.
pub(super) fn measuring(reason: impl std::fmt::Display) -> DemoError {
    DemoError::Setup {
        node: "the version measurement".into(),
        reason: reason.to_string(),
    }
}

/// The heads of `doc_id` in `node`'s own publications.
pub(super) async fn own_heads(
    node: &Node,
    doc_id: &str,
) -> Result<Vec<automerge::ChangeHash>, DemoError> {
    let rows = node.own_publications().await.map_err(measuring)?;
    rows.into_iter()
        .find(|r| r.doc_id == doc_id)
        .map(|r| r.heads)
        .ok_or_else(|| measuring(format!("{} has no publication {doc_id}", node.name)))
}

/// Waits until `node` stores `doc_id` at `heads`, from its sync notices
/// (subscribed before the version was made); returns when, after `since`.
pub(super) async fn arrival(
    context: Arc<NodeContext>,
    mut notices: tokio::sync::broadcast::Receiver<crate::sync::driver::SyncNotice>,
    doc_id: String,
    heads: Vec<automerge::ChangeHash>,
    since: Instant,
) -> Option<Duration> {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let check = match notices.recv().await {
            Ok(crate::sync::driver::SyncNotice::ReplicaChanged { doc_id: d, .. }) => d == doc_id,
            Ok(_) => false,
            // Missed notices: the store says whether it is there.
            Err(RecvError::Lagged(_)) => true,
            Err(RecvError::Closed) => return None,
        };
        if check {
            let id = doc_id.clone();
            let held = context
                .store
                .call(move |s| s.replica_entry(&id))
                .await
                .ok()
                .flatten()
                .map(|(_, h)| h);
            if held.as_ref() == Some(&heads) {
                return Some(since.elapsed());
            }
        }
    }
}

/// Publishes `versions` new public versions, one at a time, each by a
/// different city (its first practice, which the demo shares as public),
/// through the same admin operations as a city's admin: the practice is
/// edited and imported, then shared again.
pub(super) async fn measure_versions(
    nodes: &[Node],
    plan: &[(String, Vec<Practice>)],
    publications: &[Publication],
    versions: usize,
    progress: &mut impl FnMut(&str),
) -> Result<VersionFigures, DemoError> {
    let cities = plan.len();
    progress(&format!(
        "measuring {versions} new public versions, one at a time; first {} s of idle traffic",
        IDLE_WINDOW.as_secs()
    ));
    let idle_before = traffic(nodes);
    tokio::time::sleep(IDLE_WINDOW).await;
    let idle = received_between(&idle_before, &traffic(nodes));
    let idle_rate = idle as f64 / nodes.len() as f64 / IDLE_WINDOW.as_secs_f64();

    let before = traffic(nodes);
    let series = Instant::now();
    let mut latencies_ms = Vec::new();
    let mut version_bytes = 0u64;
    for round in 0..versions {
        // 37 is prime to any number of cities that is not a multiple of 37,
        // so the rounds visit different cities (a multiple only repeats
        // after cities / 37 rounds).
        let city = (round * 37 + 1) % cities;
        let origin = &nodes[city];
        let Some(practice) = plan[city].1.first() else {
            return Err(measuring(format!("{} has no practice", origin.name)));
        };
        let Some(publication) = publications
            .iter()
            .find(|p| p.origin == city && p.reach == Reach::Public)
        else {
            return Err(measuring(format!("{} shared nothing public", origin.name)));
        };
        let doc_id = publication.doc_id.clone();
        let old_heads = own_heads(origin, &doc_id).await?;
        let mut edited: Practice = admin(
            origin,
            AdminRequest::PracticeShow {
                practice_id: practice.id.clone(),
            },
        )
        .await?;
        edited.communication = format!("Posters in the library and the market, version {round}");
        let _: PracticesImported = admin(
            origin,
            AdminRequest::PracticeImport {
                practices: vec![edited],
            },
        )
        .await?;
        let receivers: Vec<(Arc<NodeContext>, _)> = nodes
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != city)
            .map(|(_, n)| {
                let context = Arc::clone(n.daemon.context());
                let notices = context.sync.notices.subscribe();
                (context, notices)
            })
            .collect();
        let started = Instant::now();
        let _: Shared = admin(
            origin,
            AdminRequest::Share {
                practice_id: practice.id.clone(),
                scope: "public".into(),
            },
        )
        .await?;
        let heads = own_heads(origin, &doc_id).await?;
        if heads == old_heads {
            return Err(measuring(format!(
                "sharing {doc_id} again made no new version"
            )));
        }
        let mut waiting = tokio::task::JoinSet::new();
        for (context, notices) in receivers {
            waiting.spawn(arrival(
                context,
                notices,
                doc_id.clone(),
                heads.clone(),
                started,
            ));
        }
        let mut last = Duration::ZERO;
        while let Some(joined) = tokio::time::timeout(VERSION_TIMEOUT, waiting.join_next())
            .await
            .map_err(|_| {
                measuring(format!(
                    "version {round} of {doc_id} was not on every node within {} s",
                    VERSION_TIMEOUT.as_secs()
                ))
            })?
        {
            let at = joined
                .map_err(measuring)?
                .ok_or_else(|| measuring("a node stopped"))?;
            last = last.max(at);
        }
        latencies_ms.push(last.as_secs_f64() * 1e3);
        let id = doc_id.clone();
        version_bytes += origin
            .daemon
            .context()
            .store
            .call(move |s| {
                let change: u64 = match s.load_document(&id)? {
                    Some((_, mut doc)) => doc
                        .get_changes(&old_heads)
                        .iter()
                        .map(|c| c.raw_bytes().len() as u64)
                        .sum(),
                    None => 0,
                };
                let statement = s.statement(&id)?.map_or(0, |r| r.signed.len() as u64);
                Ok::<_, crate::store::StoreError>(change + statement)
            })
            .await
            .map_err(measuring)?;
        progress(&format!(
            "  version {round} by {}: on all {} other nodes after {:.1} ms",
            origin.name,
            nodes.len() - 1,
            last.as_secs_f64() * 1e3
        ));
    }
    let after = traffic(nodes);
    let received = received_between(&before, &after) as f64
        - idle_rate * nodes.len() as f64 * series.elapsed().as_secs_f64();
    latencies_ms.sort_by(f64::total_cmp);
    Ok(VersionFigures {
        versions,
        receivers: nodes.len() - 1,
        latencies_ms,
        version_bytes: version_bytes as f64 / versions as f64,
        received_per_node_per_version: received / nodes.len() as f64 / versions as f64,
        idle_received_per_node_per_second: idle_rate,
        mean_connections: after.iter().map(|t| t.2 as f64).sum::<f64>() / nodes.len() as f64,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_version_quantiles_give_the_median_and_at_thirty_the_worst_as_p99() {
        let figures = super::VersionFigures {
            versions: 30,
            receivers: 100,
            latencies_ms: (1..=30).map(f64::from).collect(),
            version_bytes: 379.0,
            received_per_node_per_version: 1822.0,
            idle_received_per_node_per_second: 47.0,
            mean_connections: 4.8,
        };
        assert_eq!(figures.quantile_ms(0.5), 16.0);
        assert_eq!(figures.quantile_ms(0.99), 30.0, "p99 of 30 is the worst");
        assert_eq!(figures.quantile_ms(1.0), 30.0, "never past the end");
        let none = super::VersionFigures {
            latencies_ms: Vec::new(),
            ..figures
        };
        assert!(none.quantile_ms(0.5).is_nan(), "no versions, no figure");
    }
}
