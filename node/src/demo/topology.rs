//! The demo network's shape: who approves whom ([`Topology`]), and what every
//! node must hold in the end ([`expected_holdings`]) for the reach of each
//! publication.

use std::collections::BTreeSet;

use labnet_protocol::NodeId;

use crate::trust::Scope;

use super::MESH_CORE;

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
pub(super) fn components(partners: &[BTreeSet<usize>]) -> Vec<usize> {
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
pub(super) fn reach_for(k: usize, named: Option<usize>) -> Reach {
    match (k % 3, named) {
        (0, _) => Reach::Public,
        (2, Some(city)) => Reach::Named(city),
        _ => Reach::Partners,
    }
}

pub(super) fn scope_of(reach: Reach, ids: &[NodeId]) -> Scope {
    match reach {
        Reach::Public => Scope::Public,
        Reach::Partners => Scope::Partners,
        Reach::Named(city) => Scope::Nodes(vec![ids[city]]),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::{city_links, expected_holdings, named_partner, reach_for, Reach, Topology};
    use crate::demo::MESH_CORE;

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

    /// Three practices for each city, with the reaches the demo gives them.
    fn three_each(partners: &[BTreeSet<usize>]) -> Vec<(usize, Reach)> {
        (0..partners.len())
            .flat_map(|city| {
                let named = named_partner(partners, city);
                (0..3).map(move |k| (city, reach_for(k, named)))
            })
            .collect()
    }

    #[test]
    fn in_the_demo_network_public_reaches_everyone_and_the_rest_only_partners() {
        let n = 40;
        let topology = Topology::new(n);
        let partners = topology.partners();
        let publications = three_each(&partners);
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
        let publications = three_each(&partners);
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
