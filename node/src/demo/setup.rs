//! Setting the demo network up: the practices and rosters each city imports
//! (the partner cities' report, generated ones beyond it), starting the nodes,
//! and pairing them through invites.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use labnet_config::Role;

use crate::api::{AdminRequest, InviteAccepted, InviteCreated, Practice};
use crate::daemon::{Daemon, NodeContext, StartOptions};
use crate::data_dir::DataDir;
use crate::lab::import::{parse_practices, ImportFormat, ImportInput};
use crate::lab::{Contact, MappingArea, Stakeholder};

use super::{ask, DemoError, Node, PAIRING_PARALLEL};

pub(super) const PARTNER_PRACTICES: &str = include_str!("../../data/practices.json");

/// The partner cities and their practices, in the order the demo uses them.
pub(super) fn partner_cities() -> Vec<(String, Vec<Practice>)> {
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
pub(super) fn generated_practices(city: &str, n: usize) -> Vec<Practice> {
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

pub(super) fn blank_practice(city: &str) -> Practice {
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
pub(super) fn invented_person(city: &str) -> (Stakeholder, Contact) {
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

pub(super) async fn start_node(root: &Path, name: &str, role: Role) -> Result<Node, DemoError> {
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
pub(super) async fn pair(nodes: &[Node], pairs: &[(usize, usize, Role)]) -> Result<(), DemoError> {
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

pub(super) async fn invite(
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

#[cfg(test)]
mod tests {
    use super::partner_cities;

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
}
