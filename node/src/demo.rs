//! `labnet demo`: a whole network on one machine, to see labnet work.
//!
//! Starts N city nodes and one subscriber (an international network) on
//! 127.0.0.1, each with its own data directory, and then does what cities do:
//!
//! 1. each city imports its own practices from the partner cities' report
//!    (cities beyond the partners get generated practices), plus a small
//!    stakeholder roster of invented people, so anonymization has work to do;
//! 2. every pair of cities joins through an invite, and every city invites the
//!    subscriber as a subscriber;
//! 3. each city shares its practices with mixed scopes: public, partners, or
//!    the next city only;
//! 4. the network converges: every node ends with exactly the publications its
//!    scopes allow, with the origin's heads.
//!
//! Everything runs through the same admin operations the CLI uses; nothing is
//! simulated. [`run`] reports progress through a callback and returns the
//! figures the CLI prints.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use labnet_config::Role;
use labnet_protocol::NodeId;

use crate::api::{
    AdminRequest, FeedEntry, InviteAccepted, InviteCreated, Practice, PracticesImported,
    RosterImported, SharePreview, Shared,
};
use crate::daemon::{Daemon, StartOptions};
use crate::data_dir::DataDir;
use crate::lab::import::{parse_practices, ImportFormat, ImportInput};
use crate::lab::{Contact, MappingArea, Roster, Stakeholder};
use crate::trust::{visible_to, Scope};

const PARTNER_PRACTICES: &str = include_str!("../data/practices.json");

/// The most cities a demo runs: every node is a full node in this process.
pub const DEMO_CITIES_MAX: usize = 60;

/// How long the network gets to converge.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(120);

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
    #[error("the network did not converge within {0:?}")]
    NotConverged(Duration),
}

/// Figures of one city after the run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CityReport {
    /// The city.
    pub name: String,
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
    /// The subscriber's publications received.
    pub subscriber_received: usize,
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
}

struct Node {
    name: String,
    daemon: Daemon,
}

/// Runs an admin request on a node as the CLI would (through its JSON), and
/// reads the reply as the type the request returns.
async fn admin<T: serde::de::DeserializeOwned>(
    node: &Node,
    request: AdminRequest,
) -> Result<T, DemoError> {
    let failed = |reason: String| DemoError::Setup {
        node: node.name.clone(),
        reason,
    };
    let reply = node
        .daemon
        .context()
        .control
        .handle(request)
        .await
        .into_result()
        .map_err(failed)?;
    serde_json::from_value(reply).map_err(|e| failed(format!("unexpected reply: {e}")))
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

fn scope_for(k: usize, next: NodeId) -> Scope {
    match k % 3 {
        0 => Scope::Public,
        1 => Scope::Partners,
        _ => Scope::Nodes(vec![next]),
    }
}

/// Runs the demo with `cities` city nodes under `root`; `progress` is told what
/// happens as it happens.
pub async fn run(
    cities: usize,
    root: &Path,
    mut progress: impl FnMut(&str),
) -> Result<DemoReport, DemoError> {
    if !(2..=DEMO_CITIES_MAX).contains(&cities) {
        return Err(DemoError::Usage(format!(
            "--cities must be between 2 and {DEMO_CITIES_MAX}"
        )));
    }
    let started = Instant::now();
    let partners = partner_cities();
    let mut plan: Vec<(String, Vec<Practice>)> = partners.into_iter().take(cities).collect();
    while plan.len() < cities {
        let name = format!("City {}", plan.len() + 1);
        plan.push((name.clone(), generated_practices(&name, 2)));
    }

    progress(&format!(
        "starting {cities} city nodes and 1 subscriber on 127.0.0.1 in {}",
        root.display()
    ));
    let mut nodes = Vec::new();
    for (name, _) in &plan {
        nodes.push(start_node(root, name, Role::Partner).await?);
    }
    let subscriber = start_node(root, "ISRG", Role::Subscriber).await?;

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

    progress("joining every pair of cities with invites, and inviting the subscriber");
    for i in 0..nodes.len() {
        for j in (i + 1)..nodes.len() {
            invite(&nodes[i], &nodes[j], Role::Partner).await?;
        }
        invite(&nodes[i], &subscriber, Role::Subscriber).await?;
    }

    progress("sharing with mixed scopes: public, partners, or the next city only");
    let ids: Vec<NodeId> = nodes.iter().map(|n| n.daemon.node_id()).collect();
    let mut shared: Vec<(usize, String, Scope)> = Vec::new();
    let share_started = Instant::now();
    for (i, ((_, practices), node)) in plan.iter().zip(&nodes).enumerate() {
        let next = ids[(i + 1) % ids.len()];
        for (k, p) in practices.iter().enumerate() {
            let scope = scope_for(k, next);
            let outcome: Shared = admin(
                node,
                AdminRequest::Share {
                    practice_id: p.id.clone(),
                    scope: scope.to_text(),
                },
            )
            .await?;
            shared.push((i, outcome.doc_id, scope));
        }
    }
    progress(&format!(
        "{} publications shared; waiting for the network to converge",
        shared.len()
    ));

    // What each node must end with.
    let mut expected: Vec<BTreeSet<String>> = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        expected.push(
            shared
                .iter()
                .filter(|(o, _, s)| *o != i && visible_to(s, *id, Role::Partner))
                .map(|(_, d, _)| d.clone())
                .collect(),
        );
    }
    let subscriber_expected: BTreeSet<String> = shared
        .iter()
        .filter(|(_, _, s)| visible_to(s, subscriber.daemon.node_id(), Role::Subscriber))
        .map(|(_, d, _)| d.clone())
        .collect();

    let mut converged_at: Vec<Option<Duration>> = vec![None; nodes.len()];
    let mut subscriber_done = false;
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    let mut last_report = Instant::now();
    loop {
        let origin_heads = all_published(&nodes).await;
        for (i, node) in nodes.iter().enumerate() {
            if converged_at[i].is_none() && holds_exactly(node, &expected[i], &origin_heads).await {
                converged_at[i] = Some(share_started.elapsed());
            }
        }
        if !subscriber_done {
            subscriber_done = holds_exactly(&subscriber, &subscriber_expected, &origin_heads).await;
        }
        let done = converged_at.iter().filter(|c| c.is_some()).count();
        if done == nodes.len() && subscriber_done {
            break;
        }
        if Instant::now() > deadline {
            return Err(DemoError::NotConverged(CONVERGE_TIMEOUT));
        }
        if last_report.elapsed() > Duration::from_secs(2) {
            progress(&format!(
                "  {done}/{} cities converged, subscriber {}",
                nodes.len(),
                if subscriber_done { "done" } else { "syncing" }
            ));
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    progress("converged");

    let mut reports = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let transport = node.daemon.context().transport.clone();
        let bytes_sent = ids
            .iter()
            .chain(std::iter::once(&subscriber.daemon.node_id()))
            .filter_map(|p| transport.connection_bytes(*p))
            .map(|(tx, _)| tx)
            .sum();
        reports.push(CityReport {
            name: node.name.clone(),
            shared: shared.iter().filter(|(o, _, _)| *o == i).count(),
            received: expected[i].len(),
            converged_after_ms: converged_at[i].map(|d| d.as_millis()).unwrap_or(0),
            bytes_sent,
        });
    }
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
        &subscriber,
        AdminRequest::FeedList {
            city: None,
            area: None,
            since: None,
        },
    )
    .await?;
    // Stop all nodes at once: each waits briefly for its peers' close frames.
    let mut stopping = tokio::task::JoinSet::new();
    for node in nodes.into_iter().chain(std::iter::once(subscriber)) {
        stopping.spawn(node.daemon.shutdown());
    }
    while stopping.join_next().await.is_some() {}
    Ok(DemoReport {
        cities: reports,
        subscriber_received: subscriber_expected.len(),
        example_private,
        example_published,
        subscriber_feed,
        total_ms: started.elapsed().as_millis(),
        root: root.to_path_buf(),
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

async fn invite(inviter: &Node, joiner: &Node, role: Role) -> Result<(), DemoError> {
    let created: InviteCreated = admin(
        inviter,
        AdminRequest::InviteCreate {
            role,
            expires_secs: 3600,
            uses: 1,
        },
    )
    .await?;
    let _: InviteAccepted = admin(
        joiner,
        AdminRequest::InviteAccept {
            token: created.token,
        },
    )
    .await?;
    Ok(())
}

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

async fn holds_exactly(
    node: &Node,
    expected: &BTreeSet<String>,
    origin_heads: &BTreeMap<String, Vec<automerge::ChangeHash>>,
) -> bool {
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
    held.keys().cloned().collect::<BTreeSet<_>>() == *expected
        && held.iter().all(|(id, h)| origin_heads.get(id) == Some(h))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_partner_data_gives_eleven_cities() {
        let cities = super::partner_cities();
        assert_eq!(
            cities.len(),
            11,
            "{:?}",
            cities.iter().map(|c| &c.0).collect::<Vec<_>>()
        );
        assert_eq!(cities.iter().map(|c| c.1.len()).sum::<usize>(), 25);
    }
}
