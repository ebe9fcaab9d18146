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

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use labnet_config::Role;
use labnet_protocol::NodeId;

use crate::api::{
    AdminRequest, FeedEntry, InviteAccepted, InviteCreated, Practice, PracticesImported,
    RosterImported, SharePreview, Shared,
};
use crate::daemon::{Daemon, NodeContext, StartOptions};
use crate::data_dir::DataDir;
use crate::lab::import::{parse_practices, ImportFormat, ImportInput};
use crate::lab::{Contact, MappingArea, Roster, Stakeholder};
use crate::trust::Scope;

const PARTNER_PRACTICES: &str = include_str!("../data/practices.json");

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
const IDLE_WINDOW: Duration = Duration::from_secs(12);

/// How long one new version may take to reach every node before the
/// measurement gives up: far above the 2 s target, so a miss is measured,
/// not cut off.
const VERSION_TIMEOUT: Duration = Duration::from_secs(60);

/// Who approved whom in a demo network of cities and one subscriber.
///
/// Cities are numbered from 0; the first [`MESH_CORE`] are a full mesh. Each
/// further city `i` links to the city before it and to city `i / 2` (a chord
/// back towards the core), and the last city closes the ring to city 0. Every
/// city added links to earlier ones, so the graph is connected; a city beyond
/// the core has 3 to 5 partners, a core city at most `MESH_CORE + 2`, and any
/// city is a few hops (about log2(N / 12) + 2) from any other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// How many cities.
    pub cities: usize,
    /// City–city links, each once as `(a, b)` with `a < b`: both approved each
    /// other.
    pub links: Vec<(usize, usize)>,
    /// The cities that approved the subscriber.
    pub subscriber_sponsors: Vec<usize>,
}

impl Topology {
    /// The demo's network of `cities` cities.
    ///
    /// Only city 0 approves the subscriber: public publications are relayed,
    /// so it receives those of the whole network through that one city, as
    /// an international network does.
    pub fn new(cities: usize) -> Topology {
        let subscriber_sponsors = vec![0];
        Topology {
            cities,
            links: city_links(cities),
            subscriber_sponsors,
        }
    }

    /// Each city's direct partners.
    pub fn partners(&self) -> Vec<BTreeSet<usize>> {
        let mut partners = vec![BTreeSet::new(); self.cities];
        for &(a, b) in &self.links {
            partners[a].insert(b);
            partners[b].insert(a);
        }
        partners
    }

    /// Whether every city can reach every other through links.
    pub fn is_connected(&self) -> bool {
        let component = components(&self.partners());
        component.iter().all(|&c| c == 0)
    }

    /// The most partners any city has.
    pub fn max_degree(&self) -> usize {
        self.partners().iter().map(BTreeSet::len).max().unwrap_or(0)
    }
}

/// The city–city links of the demo's network of `cities` cities (see
/// [`Topology`]), each once as `(a, b)` with `a < b`, sorted.
pub fn city_links(cities: usize) -> Vec<(usize, usize)> {
    let mut links = BTreeSet::new();
    let core = cities.min(MESH_CORE);
    for a in 0..core {
        for b in (a + 1)..core {
            links.insert((a, b));
        }
    }
    for i in MESH_CORE..cities {
        links.insert((i - 1, i));
        links.insert((i / 2, i));
    }
    if cities > MESH_CORE {
        links.insert((0, cities - 1));
    }
    links.into_iter().collect()
}

/// A component label per city: cities linked directly or through others get
/// the same one; labels count from 0 in the order of their lowest city.
fn components(partners: &[BTreeSet<usize>]) -> Vec<usize> {
    let mut label = vec![usize::MAX; partners.len()];
    let mut next = 0;
    for start in 0..partners.len() {
        if label[start] != usize::MAX {
            continue;
        }
        label[start] = next;
        let mut stack = vec![start];
        while let Some(c) = stack.pop() {
            for &p in &partners[c] {
                if label[p] == usize::MAX {
                    label[p] = next;
                    stack.push(p);
                }
            }
        }
        next += 1;
    }
    label
}

/// Whom a publication is for, in the demo's city numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Everyone: relayed to every city linked to the origin directly or
    /// through others, and to subscribers approved by any of them.
    Public,
    /// The origin's direct partners, not further: a relay cannot know whom
    /// the origin approved.
    Partners,
    /// One city, delivered by the origin only: it must be a direct partner.
    Named(usize),
}

/// What each node must end with: for cities `0..N` and then the subscriber
/// (index N), the indices into `publications` (each its origin city and
/// reach) of the publications it holds as replicas. An origin holds none of
/// its own. This is the target behaviour of sync with public publications
/// relayed; it does not depend on how a node learns of a publication.
pub fn expected_holdings(
    topology: &Topology,
    publications: &[(usize, Reach)],
) -> Vec<BTreeSet<usize>> {
    let partners = topology.partners();
    let component = components(&partners);
    let cities = topology.cities;
    let mut out = vec![BTreeSet::new(); cities + 1];
    for (p, &(origin, reach)) in publications.iter().enumerate() {
        match reach {
            Reach::Public => {
                for city in (0..cities).filter(|&c| c != origin) {
                    if component[city] == component[origin] {
                        out[city].insert(p);
                    }
                }
                if topology
                    .subscriber_sponsors
                    .iter()
                    .any(|&s| component[s] == component[origin])
                {
                    out[cities].insert(p);
                }
            }
            Reach::Partners => {
                for &city in &partners[origin] {
                    out[city].insert(p);
                }
            }
            Reach::Named(city) => {
                if partners[origin].contains(&city) {
                    out[city].insert(p);
                }
            }
        }
    }
    out
}

/// The partner a city names when it shares with one city: the first partner
/// after it in city order, wrapping around (the next city, in a full mesh).
pub fn named_partner(partners: &[BTreeSet<usize>], city: usize) -> Option<usize> {
    let n = partners.len();
    partners[city]
        .iter()
        .copied()
        .min_by_key(|&p| (p + n - city) % n)
}

/// The reach of a city's `k`-th practice: public, partners, named, in turn.
fn reach_for(k: usize, named: Option<usize>) -> Reach {
    match (k % 3, named) {
        (0, _) => Reach::Public,
        (2, Some(city)) => Reach::Named(city),
        _ => Reach::Partners,
    }
}

fn scope_of(reach: Reach, ids: &[NodeId]) -> Scope {
    match reach {
        Reach::Public => Scope::Public,
        Reach::Partners => Scope::Partners,
        Reach::Named(city) => Scope::Nodes(vec![ids[city]]),
    }
}

struct Node {
    name: String,
    daemon: Daemon,
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

/// The partner cities and their practices, in the order the demo uses them.
fn partner_cities() -> Vec<(String, Vec<Practice>)> {
    let practices = parse_practices(
        ImportInput::Text(PARTNER_PRACTICES),
        Some(ImportFormat::Json),
    )
    .unwrap_or_default();
    let mut by_city: BTreeMap<String, Vec<Practice>> = BTreeMap::new();
    for p in practices {
        // The report lists one practice "with" Modena: it belongs to Modena.
        let city = p.city.split(" (").next().unwrap_or(&p.city).to_string();
        by_city.entry(city).or_default().push(p);
    }
    let mut cities: Vec<(String, Vec<Practice>)> = by_city.into_iter().collect();
    cities.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then_with(|| a.0.cmp(&b.0)));
    cities
}

/// Practices for a city that is not among the partners.
fn generated_practices(city: &str, n: usize) -> Vec<Practice> {
    let topics = [
        (
            "language-cafe",
            "Language café",
            "Volunteers and newcomers meet weekly to practise the language over coffee.",
        ),
        (
            "mentoring",
            "Job mentoring",
            "Local professionals mentor newcomers through their first job applications.",
        ),
        (
            "care-circles",
            "Care circles",
            "Neighbours organise shared childcare so parents can attend training.",
        ),
    ];
    let city_slug = crate::lab::import::slug(city, "");
    (0..n)
        .map(|k| {
            let (slug, name, description) = topics[k % topics.len()];
            Practice {
                id: format!("{}-{slug}", city_slug.trim_matches('-')),
                name: name.to_string(),
                description: description.to_string(),
                ..blank_practice(city)
            }
        })
        .collect()
}

fn blank_practice(city: &str) -> Practice {
    Practice {
        id: String::new(),
        city: city.to_string(),
        name: String::new(),
        area: "Integration".into(),
        thematic_area: None,
        link: None,
        duration: None,
        challenges_addressed: String::new(),
        stakeholders_involved: Vec::new(),
        description: String::new(),
        systematized: false,
        indicators: Vec::new(),
        communication: String::new(),
        stakeholder_involvement: String::new(),
        migrant_involvement: String::new(),
        challenges: Vec::new(),
        recommendations: Vec::new(),
        lessons: Vec::new(),
        contacts: Vec::new(),
        internal_notes: String::new(),
    }
}

/// An invented roster member: anonymization has a name and contacts to remove.
fn invented_person(city: &str) -> (Stakeholder, Contact) {
    let _ = city;
    let name = "Ana Ejemplo Ruiz".to_string();
    let email = "ana.ejemplo@example.org".to_string();
    let phone = "+34 600 000 000".to_string();
    let stakeholder = Stakeholder {
        name: name.clone(),
        organisation: "Neighbourhood association".into(),
        area: MappingArea::CivilSociety,
        email: email.clone(),
        phone: phone.clone(),
        migrant_background: Some(true),
        nationality: Some("Colombia".into()),
        groups: vec!["lsrg".into()],
        notes: "invented for the demo".into(),
    };
    let contact = Contact {
        name,
        role: "coordinator".into(),
        email,
        phone,
    };
    (stakeholder, contact)
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

/// UDP bytes `(sent, received)` of each node on all its connections now, and
/// how many connections it has.
fn traffic(nodes: &[Node]) -> Vec<(u64, u64, usize)> {
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
fn received_between(before: &[(u64, u64, usize)], after: &[(u64, u64, usize)]) -> u64 {
    before
        .iter()
        .zip(after)
        .map(|(b, a)| a.1.saturating_sub(b.1))
        .sum()
}

/// Fails the measurement with `reason`.
fn measuring(reason: impl std::fmt::Display) -> DemoError {
    DemoError::Setup {
        node: "the version measurement".into(),
        reason: reason.to_string(),
    }
}

/// The heads of `doc_id` in `node`'s own publications.
async fn own_heads(node: &Node, doc_id: &str) -> Result<Vec<automerge::ChangeHash>, DemoError> {
    let rows = node
        .daemon
        .context()
        .store
        .call(|s| s.publication_rows())
        .await
        .map_err(measuring)?;
    rows.into_iter()
        .find(|r| r.doc_id == doc_id)
        .map(|r| r.heads)
        .ok_or_else(|| measuring(format!("{} has no publication {doc_id}", node.name)))
}

/// Waits until `node` stores `doc_id` at `heads`, from its sync notices
/// (subscribed before the version was made); returns when, after `since`.
async fn arrival(
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
async fn measure_versions(
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

async fn start_node(root: &Path, name: &str, role: Role) -> Result<Node, DemoError> {
    let dir = root.join(crate::lab::import::slug(name, "").trim_matches('-'));
    let setup = |reason: String| DemoError::Setup {
        node: name.to_string(),
        reason,
    };
    // A fixed port, written into the node's config: a node restarted from a
    // kept directory listens where its peers last saw it, so they find it again.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map_err(|e| setup(format!("finding a free port: {e}")))?
        .port();
    DataDir::new(&dir)
        .init(name, role, &format!("127.0.0.1:{port}"), &[])
        .map_err(|e| setup(e.to_string()))?;
    let mut options = StartOptions::new(DataDir::new(&dir), vec![]);
    options.transport.redial_base = Duration::from_millis(200);
    options.transport.redial_max = Duration::from_secs(2);
    let daemon = Daemon::start(options)
        .await
        .map_err(|e| setup(e.to_string()))?;
    Ok(Node {
        name: name.to_string(),
        daemon,
    })
}

/// Joins nodes through invites, `PAIRING_PARALLEL` at a time: for each
/// `(inviter, joiner, role)`, the inviter creates an invite and the joiner
/// accepts it, after which both have approved each other.
async fn pair(nodes: &[Node], pairs: &[(usize, usize, Role)]) -> Result<(), DemoError> {
    let mut waiting = pairs.iter().copied();
    let mut running = tokio::task::JoinSet::new();
    loop {
        while running.len() < PAIRING_PARALLEL {
            let Some((a, b, role)) = waiting.next() else {
                break;
            };
            let inviter = (nodes[a].name.clone(), Arc::clone(nodes[a].daemon.context()));
            let joiner = (nodes[b].name.clone(), Arc::clone(nodes[b].daemon.context()));
            running.spawn(async move { invite(inviter, joiner, role).await });
        }
        match running.join_next().await {
            None => return Ok(()),
            Some(Ok(outcome)) => outcome?,
            Some(Err(e)) => {
                return Err(DemoError::Setup {
                    node: "an invite".into(),
                    reason: e.to_string(),
                })
            }
        }
    }
}

async fn invite(
    (inviter, inviter_context): (String, Arc<NodeContext>),
    (joiner, joiner_context): (String, Arc<NodeContext>),
    role: Role,
) -> Result<(), DemoError> {
    let created: InviteCreated = ask(
        &inviter,
        &inviter_context,
        AdminRequest::InviteCreate {
            role,
            expires_secs: 3600,
            uses: 1,
        },
    )
    .await?;
    let _: InviteAccepted = ask(
        &joiner,
        &joiner_context,
        AdminRequest::InviteAccept {
            token: created.token,
        },
    )
    .await?;
    Ok(())
}

/// What a node holds, against what it should.
#[derive(Debug, Default)]
struct Holding {
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
fn examples(ids: &[String]) -> String {
    let mut text = ids.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
    if ids.len() > 3 {
        text.push_str(", ...");
    }
    text
}

/// Fails at once when a node holds a publication that is not meant for it.
fn nothing_unexpected(node: &Node, holding: &Holding) -> Result<(), DemoError> {
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
async fn converge(
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
async fn all_published(nodes: &[Node]) -> BTreeMap<String, Vec<automerge::ChangeHash>> {
    let mut out = BTreeMap::new();
    for n in nodes {
        let rows = n
            .daemon
            .context()
            .store
            .call(|s| s.publication_rows())
            .await
            .unwrap_or_default();
        out.extend(
            rows.into_iter()
                .filter(|r| !r.retracted)
                .map(|r| (r.doc_id, r.heads)),
        );
    }
    out
}

/// What `node` holds as replicas, against `expected` and the origins' heads.
async fn holding(
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::{
        city_links, expected_holdings, named_partner, partner_cities, reach_for, Reach, Topology,
        MESH_CORE,
    };

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

    #[test]
    fn the_partner_data_gives_eleven_cities() {
        let cities = partner_cities();
        assert_eq!(
            cities.len(),
            11,
            "{:?}",
            cities.iter().map(|c| &c.0).collect::<Vec<_>>()
        );
        assert_eq!(cities.iter().map(|c| c.1.len()).sum::<usize>(), 25);
    }

    #[test]
    fn the_topology_is_connected_sparse_past_the_core_and_bounded() {
        for n in [2, 3, 12, 13, 14, 25, 60, 100, 150] {
            let topology = Topology::new(n);
            assert!(topology.is_connected(), "{n} cities: not connected");
            let links = &topology.links;
            assert!(links.iter().all(|&(a, b)| a < b && b < n), "{n}: {links:?}");
            assert!(
                links.windows(2).all(|w| w[0] < w[1]),
                "{n}: sorted, once each"
            );
            let core = n.min(MESH_CORE);
            for a in 0..core {
                for b in (a + 1)..core {
                    assert!(links.contains(&(a, b)), "{n}: the core is a full mesh");
                }
            }
            let partners = topology.partners();
            if n <= MESH_CORE {
                assert_eq!(topology.max_degree(), n - 1);
                assert_eq!(topology.subscriber_sponsors, vec![0]);
            } else {
                assert!(topology.max_degree() <= MESH_CORE + 2, "{n}");
                for (city, p) in partners.iter().enumerate().skip(MESH_CORE) {
                    assert!((3..=5).contains(&p.len()), "{n}: city {city} has {p:?}");
                }
                assert!(links.len() <= core * (core - 1) / 2 + 2 * (n - core) + 1);
                assert_eq!(topology.subscriber_sponsors, vec![0]);
            }
        }
        assert_eq!(city_links(100).len(), 66 + 2 * 88 + 1);
        assert_eq!(Topology::new(150).max_degree(), MESH_CORE + 2);
    }

    #[test]
    fn a_named_partner_is_a_direct_partner_and_the_next_city_in_a_mesh() {
        for n in [2, 12, 13, 60, 100, 150] {
            let partners = Topology::new(n).partners();
            for city in 0..n {
                let named = named_partner(&partners, city).expect("every city has partners");
                assert!(partners[city].contains(&named), "{n}: {city} names {named}");
                if n <= MESH_CORE {
                    assert_eq!(named, (city + 1) % n);
                }
            }
        }
    }

    fn set(items: &[usize]) -> BTreeSet<usize> {
        items.iter().copied().collect()
    }

    #[test]
    fn the_expected_holdings_follow_links_and_scopes_on_a_sparse_graph() {
        // 0 - 1 - 2 - 3 in a line, 4 - 5 apart; the subscriber approved by 0.
        let topology = Topology {
            cities: 6,
            links: vec![(0, 1), (1, 2), (2, 3), (4, 5)],
            subscriber_sponsors: vec![0],
        };
        let publications = [
            (3, Reach::Public),   // 0: relayed along the line, and to the subscriber
            (1, Reach::Partners), // 1: the direct partners 0 and 2 only
            (2, Reach::Named(3)), // 2: the named partner only
            (2, Reach::Named(0)), // 3: named, but not a partner of 2: nobody
            (4, Reach::Public),   // 4: the other component, no subscriber there
            (0, Reach::Public),   // 5: its own sponsor gives the subscriber
            (5, Reach::Partners), // 6
        ];
        let held = expected_holdings(&topology, &publications);
        assert_eq!(held.len(), 7, "six cities and the subscriber");
        assert_eq!(held[0], set(&[0, 1]));
        assert_eq!(held[1], set(&[0, 5]));
        assert_eq!(held[2], set(&[0, 1, 5]));
        assert_eq!(held[3], set(&[2, 5]));
        assert_eq!(held[4], set(&[6]));
        assert_eq!(held[5], set(&[4]));
        assert_eq!(held[6], set(&[0, 5]), "the subscriber");
    }

    #[test]
    fn in_the_demo_network_public_reaches_everyone_and_the_rest_only_partners() {
        let n = 40;
        let topology = Topology::new(n);
        let partners = topology.partners();
        let publications: Vec<(usize, Reach)> = (0..n)
            .flat_map(|city| {
                let named = named_partner(&partners, city);
                (0..3).map(move |k| (city, reach_for(k, named)))
            })
            .collect();
        let held = expected_holdings(&topology, &publications);
        for (p, &(origin, reach)) in publications.iter().enumerate() {
            let holders: BTreeSet<usize> =
                (0..=n).filter(|&node| held[node].contains(&p)).collect();
            let want: BTreeSet<usize> = match reach {
                Reach::Public => (0..=n).filter(|&node| node != origin).collect(),
                Reach::Partners => partners[origin].clone(),
                Reach::Named(city) => set(&[city]),
            };
            assert_eq!(holders, want, "publication {p} of {origin}, {reach:?}");
        }
    }

    #[test]
    fn a_full_mesh_gives_what_direct_delivery_gives() {
        use crate::trust::visible_to;
        use labnet_config::Role;
        use labnet_protocol::NodeId;
        let n = MESH_CORE;
        let topology = Topology::new(n);
        let partners = topology.partners();
        let ids: Vec<NodeId> = (0..=n)
            .map(|i| NodeId::from_public_key(&[i as u8; 32]))
            .collect();
        let publications: Vec<(usize, Reach)> = (0..n)
            .flat_map(|city| {
                let named = named_partner(&partners, city);
                (0..3).map(move |k| (city, reach_for(k, named)))
            })
            .collect();
        let held = expected_holdings(&topology, &publications);
        for (p, &(origin, reach)) in publications.iter().enumerate() {
            let scope = super::scope_of(reach, &ids);
            for node in (0..=n).filter(|&node| node != origin) {
                let role = if node == n {
                    Role::Subscriber
                } else {
                    Role::Partner
                };
                assert_eq!(
                    held[node].contains(&p),
                    visible_to(&scope, ids[node], role),
                    "publication {p} of {origin} ({scope:?}) at node {node}"
                );
            }
        }
    }
}
