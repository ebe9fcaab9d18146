//! Waiting for the network to converge, and checking that every node holds
//! exactly what it should, with the origin's heads, and nothing else.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::{converge_timeout, resident_memory, DemoError, Node, MESH_CORE};

/// What a node holds, against what it should.
#[derive(Debug, Default)]
pub(super) struct Holding {
    /// Meant for it, not there.
    missing: Vec<String>,
    /// There, but not at the origin's heads.
    behind: Vec<String>,
    /// There, and not meant for it.
    extra: Vec<String>,
}

impl Holding {
    fn complete(&self) -> bool {
        self.missing.is_empty() && self.behind.is_empty() && self.extra.is_empty()
    }

    fn describe(&self, name: &str, expected: usize) -> String {
        let mut parts = Vec::new();
        if !self.missing.is_empty() {
            parts.push(format!(
                "misses {} of {expected} ({})",
                self.missing.len(),
                examples(&self.missing)
            ));
        }
        if !self.behind.is_empty() {
            parts.push(format!(
                "holds {} behind the origin's heads ({})",
                self.behind.len(),
                examples(&self.behind)
            ));
        }
        if !self.extra.is_empty() {
            parts.push(format!(
                "holds {} not meant for it ({})",
                self.extra.len(),
                examples(&self.extra)
            ));
        }
        format!("{name} {}", parts.join(", "))
    }
}

/// A few ids of a list, for a message.
pub(super) fn examples(ids: &[String]) -> String {
    let mut text = ids.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
    if ids.len() > 3 {
        text.push_str(", ...");
    }
    text
}

/// Fails at once when a node holds a publication that is not meant for it.
pub(super) fn nothing_unexpected(node: &Node, holding: &Holding) -> Result<(), DemoError> {
    if holding.extra.is_empty() {
        return Ok(());
    }
    Err(DemoError::Unexpected {
        node: node.name.clone(),
        count: holding.extra.len(),
        examples: examples(&holding.extra),
    })
}

/// Waits until every node (the cities, then the subscriber) holds exactly the
/// publications of `expected`, at the origin's heads. Returns how long after
/// `since` each node got there. Fails at once if a node holds something not
/// meant for it, and on timeout says which nodes miss what.
pub(super) async fn converge(
    nodes: &[Node],
    expected: &[BTreeSet<String>],
    since: Instant,
    progress: &mut impl FnMut(&str),
) -> Result<Vec<Duration>, DemoError> {
    let cities = nodes.len() - 1;
    let timeout = converge_timeout(cities);
    let deadline = Instant::now() + timeout;
    let poll = Duration::from_millis(50 + 2 * cities as u64);
    let report_every = Duration::from_secs(if cities > MESH_CORE { 5 } else { 2 });
    let total: usize = expected.iter().map(BTreeSet::len).sum();
    let mut converged_at: Vec<Option<Duration>> = vec![None; nodes.len()];
    let mut last: Vec<Holding> = nodes.iter().map(|_| Holding::default()).collect();
    let mut last_report = Instant::now();
    loop {
        let heads = all_published(&nodes[..cities]).await;
        for (i, node) in nodes.iter().enumerate() {
            if converged_at[i].is_some() {
                continue;
            }
            let holding = holding(node, &expected[i], &heads).await;
            nothing_unexpected(node, &holding)?;
            if holding.complete() {
                converged_at[i] = Some(since.elapsed());
            }
            last[i] = holding;
        }
        if converged_at.iter().all(Option::is_some) {
            break;
        }
        let lacking: Vec<usize> = (0..nodes.len())
            .filter(|&i| converged_at[i].is_none())
            .collect();
        if Instant::now() > deadline {
            let missing: usize = lacking.iter().map(|&i| last[i].missing.len()).sum();
            let behind: usize = lacking.iter().map(|&i| last[i].behind.len()).sum();
            progress(&format!(
                "not converged after {}s ({}); {} of {} nodes lack publications:",
                timeout.as_secs(),
                resident_memory(),
                lacking.len(),
                nodes.len()
            ));
            for &i in lacking.iter().take(20) {
                progress(&format!(
                    "  {}",
                    last[i].describe(&nodes[i].name, expected[i].len())
                ));
            }
            if lacking.len() > 20 {
                progress(&format!("  ... and {} more nodes", lacking.len() - 20));
            }
            let first = lacking[0];
            return Err(DemoError::NotConverged {
                after: timeout,
                summary: format!(
                    "{} of {} nodes lack publications ({missing} missing, {behind} behind the origin's heads), e.g. {}",
                    lacking.len(),
                    nodes.len(),
                    last[first].describe(&nodes[first].name, expected[first].len())
                ),
            });
        }
        if last_report.elapsed() > report_every {
            let lacking_replicas: usize = lacking
                .iter()
                .map(|&i| last[i].missing.len() + last[i].behind.len())
                .sum();
            progress(&format!(
                "  {}/{cities} cities converged, subscriber {}; {}/{total} replicas in place",
                converged_at[..cities]
                    .iter()
                    .filter(|c| c.is_some())
                    .count(),
                if converged_at[cities].is_some() {
                    "done"
                } else {
                    "syncing"
                },
                total - lacking_replicas
            ));
            last_report = Instant::now();
        }
        tokio::time::sleep(poll).await;
    }
    // Every node once more: one that converged early still holds exactly its set.
    let heads = all_published(&nodes[..cities]).await;
    for (i, node) in nodes.iter().enumerate() {
        let holding = holding(node, &expected[i], &heads).await;
        nothing_unexpected(node, &holding)?;
        if !holding.complete() {
            return Err(DemoError::NotConverged {
                after: since.elapsed(),
                summary: format!(
                    "converged, then {}",
                    holding.describe(&node.name, expected[i].len())
                ),
            });
        }
    }
    Ok(converged_at
        .into_iter()
        .map(Option::unwrap_or_default)
        .collect())
}

/// The heads of every publication the cities have shared, by document id.
pub(super) async fn all_published(nodes: &[Node]) -> BTreeMap<String, Vec<automerge::ChangeHash>> {
    let mut out = BTreeMap::new();
    for n in nodes {
        let rows = n.own_publications().await.unwrap_or_default();
        out.extend(
            rows.into_iter()
                .filter(|r| !r.retracted)
                .map(|r| (r.doc_id, r.heads)),
        );
    }
    out
}

/// What `node` holds as replicas, against `expected` and the origins' heads.
pub(super) async fn holding(
    node: &Node,
    expected: &BTreeSet<String>,
    origin_heads: &BTreeMap<String, Vec<automerge::ChangeHash>>,
) -> Holding {
    let held = node
        .daemon
        .context()
        .store
        .call(|s| {
            let ids = s.replicas().unwrap_or_default();
            ids.into_iter()
                .filter_map(|(id, _)| {
                    s.replica_entry(&id)
                        .ok()
                        .flatten()
                        .map(|(_, heads)| (id, heads))
                })
                .collect::<BTreeMap<_, _>>()
        })
        .await;
    let mut holding = Holding::default();
    for id in expected {
        match held.get(id) {
            None => holding.missing.push(id.clone()),
            Some(heads) if origin_heads.get(id) != Some(heads) => holding.behind.push(id.clone()),
            Some(_) => {}
        }
    }
    holding.extra = held
        .keys()
        .filter(|id| !expected.contains(*id))
        .cloned()
        .collect();
    holding
}
