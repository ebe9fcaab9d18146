//! `labnet demo`: a whole network on one machine, to see labnet work.
//!
//! Starts N city nodes and one subscriber (an international network) on
//! 127.0.0.1, each with its own data directory, and then does what cities do:
//!
//! 1. each city imports its own practices from the partner cities' report
//!    (cities beyond the partners get generated practices), plus a small
//!    stakeholder roster of invented people, so anonymization has work to do;
//! 2. the cities join through invites along the links of a [`Topology`]: the
//!    first [`MESH_CORE`] cities (the partner cities) form a full mesh, and
//!    every further city links to a few others, so a hundred cities need a
//!    few hundred invites, not five thousand; the subscriber is invited by
//!    the cities in [`Topology::subscriber_sponsors`];
//! 3. each city shares its practices with mixed scopes: public, partners, or
//!    one named partner;
//! 4. the network converges: every node ends with exactly the publications
//!    [`expected_holdings`] gives it, with the origin's heads, and nothing else.
//!
//! Everything runs through the same admin operations the CLI uses; nothing is
//! simulated. [`run`] reports progress through a callback and returns the
//! figures the CLI prints.

mod converge;
mod setup;
mod topology;
mod versions;

pub use topology::{city_links, expected_holdings, named_partner, Reach, Topology};
pub use versions::VersionFigures;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use labnet_config::Role;
use labnet_protocol::NodeId;

use crate::api::{
    AdminRequest, FeedEntry, Practice, PracticesImported, RosterImported, SharePreview, Shared,
};
use crate::daemon::{Daemon, NodeContext};
use crate::lab::Roster;
use crate::store::{IndexRow, StoreError};

use converge::converge;
use setup::{generated_practices, invented_person, pair, partner_cities, start_node};
use topology::{reach_for, scope_of};
use versions::measure_versions;

/// The most cities a demo runs: every node is a full node in this process.
pub const DEMO_CITIES_MAX: usize = 150;

/// The first cities, the partner cities of the project, approve each other
/// (a full mesh); the cities after them are linked sparsely.
pub const MESH_CORE: usize = 12;

/// How many invites are under way at once while the cities join.
const PAIRING_PARALLEL: usize = 16;

/// How long the network gets to converge: two minutes, and a second more per
/// city beyond the core.
fn converge_timeout(cities: usize) -> Duration {
    Duration::from_secs(120 + cities.saturating_sub(MESH_CORE) as u64)
}

/// Why the demo failed.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Bad arguments.
    #[error("{0}")]
    Usage(String),
    /// A node could not be set up or started.
    #[error("setting up {node}: {reason}")]
    Setup {
        /// Which node.
        node: String,
        /// What failed.
        reason: String,
    },
    /// The network did not converge in time.
    #[error("the network did not converge within {}s: {summary}", .after.as_secs())]
    NotConverged {
        /// How long it was given.
        after: Duration,
        /// Which nodes miss what, in a sentence.
        summary: String,
    },
    /// A node holds a publication its scope does not give it.
    #[error("{node} holds {count} publication(s) not meant for it, e.g. {examples}")]
    Unexpected {
        /// Which node.
        node: String,
        /// How many publications it should not hold.
        count: usize,
        /// A few of their ids.
        examples: String,
    },
}

/// Figures of one city after the run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CityReport {
    /// The city.
    pub name: String,
    /// The cities it approved (its direct partners).
    pub partners: usize,
    /// Publications it shared.
    pub shared: usize,
    /// Publications it received.
    pub received: usize,
    /// From the first share until this city held everything meant for it.
    pub converged_after_ms: u128,
    /// Bytes it sent on its QUIC connections.
    pub bytes_sent: u64,
}

/// What the demo shows at the end.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DemoReport {
    /// Per city.
    pub cities: Vec<CityReport>,
    /// Links between cities (pairs that approved each other).
    pub links: usize,
    /// Cities that approved the subscriber.
    pub subscriber_links: usize,
    /// Publications shared, all cities together.
    pub publications: usize,
    /// The subscriber's publications received.
    pub subscriber_received: usize,
    /// From the first share until the subscriber held everything meant for it.
    pub subscriber_converged_after_ms: u128,
    /// How long joining the nodes through invites took.
    pub pairing_ms: u128,
    /// From the first share until the last node held everything meant for it.
    pub converged_ms: u128,
    /// Resident memory of the process at the end, all nodes running (KiB).
    pub rss_kib: Option<u64>,
    /// The most resident memory the process had (KiB).
    pub rss_peak_kib: Option<u64>,
    /// A practice as the city keeps it (with its private fields).
    pub example_private: String,
    /// The same practice as peers receive it.
    pub example_published: String,
    /// The subscriber's feed.
    pub subscriber_feed: Vec<FeedEntry>,
    /// Wall time of the whole run.
    pub total_ms: u128,
    /// Where the nodes' data directories are.
    pub root: PathBuf,
    /// The per-version measurement, when [`run_with_versions`] was asked for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub versions: Option<VersionFigures>,
}

struct Node {
    name: String,
    daemon: Daemon,
}

impl Node {
    /// The node's own publications, as its store indexes them.
    async fn own_publications(&self) -> Result<Vec<IndexRow>, StoreError> {
        self.daemon
            .context()
            .store
            .call(|s| s.publication_rows())
            .await
    }
}

/// Runs an admin request on a node as the CLI would (through its JSON), and
/// reads the reply as the type the request returns.
async fn ask<T: serde::de::DeserializeOwned>(
    name: &str,
    context: &NodeContext,
    request: AdminRequest,
) -> Result<T, DemoError> {
    let failed = |reason: String| DemoError::Setup {
        node: name.to_string(),
        reason,
    };
    let reply = context
        .control
        .handle(request)
        .await
        .into_result()
        .map_err(failed)?;
    serde_json::from_value(reply).map_err(|e| failed(format!("unexpected reply: {e}")))
}

async fn admin<T: serde::de::DeserializeOwned>(
    node: &Node,
    request: AdminRequest,
) -> Result<T, DemoError> {
    ask(&node.name, node.daemon.context(), request).await
}

/// A publication the demo shared.
struct Publication {
    origin: usize,
    doc_id: String,
    reach: Reach,
}

/// Runs the demo with `cities` city nodes under `root`; `progress` is told what
/// happens as it happens.
pub async fn run(
    cities: usize,
    root: &Path,
    progress: impl FnMut(&str),
) -> Result<DemoReport, DemoError> {
    run_with_versions(cities, 0, root, progress).await
}

/// [`run`], and once the network has converged and been checked, `versions`
/// new public versions published one at a time by different cities, each
/// timed until it is on every node (the benchmark of 100 cities).
#[doc(hidden)]
pub async fn run_with_versions(
    cities: usize,
    versions: usize,
    root: &Path,
    mut progress: impl FnMut(&str),
) -> Result<DemoReport, DemoError> {
    if versions > cities {
        return Err(DemoError::Usage(format!(
            "{versions} versions by different cities need at least as many cities"
        )));
    }
    if !(2..=DEMO_CITIES_MAX).contains(&cities) {
        return Err(DemoError::Usage(format!(
            "--cities must be between 2 and {DEMO_CITIES_MAX}"
        )));
    }
    let started = Instant::now();
    let topology = Topology::new(cities);
    let partners = topology.partners();
    let mut plan: Vec<(String, Vec<Practice>)> =
        partner_cities().into_iter().take(cities).collect();
    while plan.len() < cities {
        let name = format!("City {}", plan.len() + 1);
        plan.push((name.clone(), generated_practices(&name, 3)));
    }

    progress(&format!(
        "starting {cities} city nodes and 1 subscriber on 127.0.0.1 in {}",
        root.display()
    ));
    // Cities first, then the subscriber: node `cities` is the subscriber.
    let mut nodes = Vec::new();
    for (name, _) in &plan {
        nodes.push(start_node(root, name, Role::Partner).await?);
    }
    nodes.push(start_node(root, "ISRG", Role::Subscriber).await?);
    let subscriber = cities;

    progress("importing each city's practices and an (invented) stakeholder roster");
    let mut example: Option<(usize, String)> = None;
    for (i, ((name, practices), node)) in plan.iter().zip(&nodes).enumerate() {
        let (person, contact) = invented_person(name);
        let mut practices = practices.clone();
        if let Some(first) = practices.first_mut() {
            first.contacts.push(contact.clone());
            first.description.push_str(&format!(
                " Coordinated by {} ({}).",
                contact.name, contact.email
            ));
            first.internal_notes = format!("call {} on {}", contact.name, contact.phone);
            if example.is_none() {
                example = Some((i, first.id.clone()));
            }
        }
        let _: RosterImported = admin(
            node,
            AdminRequest::RosterImport {
                roster: Roster {
                    stakeholders: vec![person],
                },
            },
        )
        .await?;
        let _: PracticesImported = admin(node, AdminRequest::PracticeImport { practices }).await?;
    }

    let mut pairs: Vec<(usize, usize, Role)> = topology
        .links
        .iter()
        .map(|&(a, b)| (a, b, Role::Partner))
        .collect();
    pairs.extend(
        topology
            .subscriber_sponsors
            .iter()
            .map(|&c| (c, subscriber, Role::Subscriber)),
    );
    progress(&format!(
        "joining the cities with invites along {} links ({}), and inviting the subscriber from {}",
        topology.links.len(),
        if cities <= MESH_CORE {
            "every pair".to_string()
        } else {
            format!(
                "a full mesh of the first {MESH_CORE}, a ring and chords beyond, at most {} per city",
                topology.max_degree()
            )
        },
        match topology.subscriber_sponsors.as_slice() {
            [one] => nodes[*one].name.clone(),
            all => format!("{} cities", all.len()),
        }
    ));
    let pairing_started = Instant::now();
    pair(&nodes, &pairs).await?;
    let pairing = pairing_started.elapsed();
    progress(&format!(
        "{} invites accepted in {:.1} s; {}",
        pairs.len(),
        pairing.as_secs_f64(),
        resident_memory()
    ));

    progress("sharing with mixed scopes: public, partners, or one named partner");
    let ids: Vec<NodeId> = nodes.iter().map(|n| n.daemon.node_id()).collect();
    let share_started = Instant::now();
    let mut sharing = tokio::task::JoinSet::new();
    for (i, (_, practices)) in plan.iter().enumerate() {
        let named = named_partner(&partners, i);
        let items: Vec<(String, Reach)> = practices
            .iter()
            .enumerate()
            .map(|(k, p)| (p.id.clone(), reach_for(k, named)))
            .collect();
        let name = nodes[i].name.clone();
        let context = Arc::clone(nodes[i].daemon.context());
        let ids = ids.clone();
        sharing.spawn(async move {
            let mut out = Vec::new();
            for (k, (practice_id, reach)) in items.into_iter().enumerate() {
                let scope = scope_of(reach, &ids).to_text();
                let shared: Shared =
                    ask(&name, &context, AdminRequest::Share { practice_id, scope }).await?;
                out.push((k, shared.doc_id, reach));
            }
            Ok::<_, DemoError>((i, out))
        });
    }
    let mut by_city = BTreeMap::new();
    while let Some(joined) = sharing.join_next().await {
        let (i, out) = joined.map_err(|e| DemoError::Setup {
            node: "sharing".into(),
            reason: e.to_string(),
        })??;
        by_city.insert(i, out);
    }
    let publications: Vec<Publication> = by_city
        .into_iter()
        .flat_map(|(origin, out)| {
            out.into_iter().map(move |(_, doc_id, reach)| Publication {
                origin,
                doc_id,
                reach,
            })
        })
        .collect();
    progress(&format!(
        "{} publications shared; waiting for the network to converge",
        publications.len()
    ));

    // What each node must end with.
    let model: Vec<(usize, Reach)> = publications.iter().map(|p| (p.origin, p.reach)).collect();
    let expected: Vec<BTreeSet<String>> = expected_holdings(&topology, &model)
        .into_iter()
        .map(|held| {
            held.into_iter()
                .map(|p| publications[p].doc_id.clone())
                .collect()
        })
        .collect();
    let converged_at = converge(&nodes, &expected, share_started, &mut progress).await?;
    let converged = converged_at.iter().max().copied().unwrap_or_default();
    progress(&format!(
        "converged {:.1} s after the first share",
        converged.as_secs_f64()
    ));

    let mut reports = Vec::new();
    for (i, node) in nodes[..cities].iter().enumerate() {
        let transport = node.daemon.context().transport.clone();
        let bytes_sent = ids
            .iter()
            .filter_map(|p| transport.connection_bytes(*p))
            .map(|(tx, _)| tx)
            .sum();
        reports.push(CityReport {
            name: node.name.clone(),
            partners: partners[i].len(),
            shared: publications.iter().filter(|p| p.origin == i).count(),
            received: expected[i].len(),
            converged_after_ms: converged_at[i].as_millis(),
            bytes_sent,
        });
    }
    let version_figures = if versions > 0 {
        let figures =
            measure_versions(&nodes, &plan, &publications, versions, &mut progress).await?;
        Some(figures)
    } else {
        None
    };
    let (example_private, example_published) = match example {
        Some((i, practice_id)) => {
            let private: Practice = admin(
                &nodes[i],
                AdminRequest::PracticeShow {
                    practice_id: practice_id.clone(),
                },
            )
            .await?;
            let preview: SharePreview = admin(
                &nodes[i],
                AdminRequest::SharePreview {
                    practice_id,
                    scope: "public".into(),
                },
            )
            .await?;
            (
                serde_json::to_string_pretty(&private).unwrap_or_default(),
                preview.json,
            )
        }
        None => (String::new(), String::new()),
    };
    let subscriber_feed: Vec<FeedEntry> = admin(
        &nodes[subscriber],
        AdminRequest::FeedList {
            city: None,
            area: None,
            since: None,
        },
    )
    .await?;
    // Measured with every node still running.
    let rss_kib = proc_status_kib("VmRSS");
    let rss_peak_kib = proc_status_kib("VmHWM");
    // Stop all nodes at once: each waits briefly for its peers' close frames.
    let mut stopping = tokio::task::JoinSet::new();
    for node in nodes {
        stopping.spawn(node.daemon.shutdown());
    }
    while stopping.join_next().await.is_some() {}
    Ok(DemoReport {
        cities: reports,
        links: topology.links.len(),
        subscriber_links: topology.subscriber_sponsors.len(),
        publications: publications.len(),
        subscriber_received: expected[subscriber].len(),
        subscriber_converged_after_ms: converged_at[subscriber].as_millis(),
        pairing_ms: pairing.as_millis(),
        converged_ms: converged.as_millis(),
        rss_kib,
        rss_peak_kib,
        example_private,
        example_published,
        subscriber_feed,
        total_ms: started.elapsed().as_millis(),
        root: root.to_path_buf(),
        versions: version_figures,
    })
}

/// The process's resident memory now, for progress lines.
fn resident_memory() -> String {
    match proc_status_kib("VmRSS") {
        Some(kib) => format!("resident memory {} MiB", kib / 1024),
        None => "resident memory unknown".into(),
    }
}

/// A figure of `/proc/self/status` given in kB (`VmRSS`, `VmHWM`), on Linux.
fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        let value = line.strip_prefix(field)?.strip_prefix(':')?;
        value.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}
