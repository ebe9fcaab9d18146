//! Convergence: every node ends with exactly what its scope allows, at the
//! origin's heads, and what crosses the wire is what changed, once per link.

use std::collections::{BTreeMap, BTreeSet};

use automerge::AutoCommit;
use labnet_protocol::sync::{DocId, Inventory, SyncMessage};

use super::{check_crossings, heads_of, line, no_violations};
use crate::sync::harness::{description, federation, statement_of, Net};
use crate::sync::{Event, Scope};
use crate::trust::visible_to;

/// 10 partner cities and 2 subscribers in full mesh, each city publishing with
/// every kind of scope: every node ends with exactly the publications its scope
/// allows, with the origin's heads, and no message about a publication ever
/// reaches a node outside its scope, not even its id.
#[test]
fn twelve_nodes_with_mixed_scopes_converge_to_exactly_their_scopes() {
    let mut nodes = federation(10, 2);
    let ids: Vec<_> = nodes.iter().map(|n| n.id).collect();
    let mut scopes = BTreeMap::new();
    for i in 0..10 {
        for (k, scope) in [
            Scope::Public,
            Scope::Partners,
            Scope::Nodes(vec![ids[(i + 1) % 10]]),
        ]
        .into_iter()
        .enumerate()
        {
            let doc_id =
                nodes[i].publish_practice(&format!("p{k}"), (i * 3 + k) as u32, scope.clone());
            scopes.insert(doc_id, (i, scope));
        }
    }
    let net = Net::synced(nodes);
    no_violations(&net);
    for (n, node) in net.nodes.iter().enumerate() {
        let expected: BTreeSet<DocId> = scopes
            .iter()
            .filter(|(_, (origin, scope))| *origin != n && visible_to(scope, node.id, node.role))
            .map(|(id, _)| id.clone())
            .collect();
        assert_eq!(node.copies(), expected, "node {n}");
        for doc_id in &expected {
            let origin = &net.nodes[scopes[doc_id].0];
            assert!(node.holds(doc_id, &heads_of(origin, doc_id)));
        }
    }
    check_crossings(&net, |d, doc_id| {
        let (origin, scope) = &scopes[doc_id];
        let receiver = &net.nodes[d.to];
        // A request about its own publication, from one who may see it.
        *origin == d.to || visible_to(scope, receiver.id, receiver.role)
    });
}

/// A change on a live connection is one round trip (`Inventory` → `Want` →
/// `Deliver`, plus the ack), and what crosses is the change and the statement,
/// not the document.
#[test]
fn a_live_change_costs_one_delivery_of_the_change_alone() {
    let mut nodes = federation(2, 0);
    let doc_id = nodes[0].publish_practice("p", 1, Scope::Partners);
    let mut net = Net::synced(nodes);
    let before = net.log.len();
    let old_heads = net.nodes[0].publications[&doc_id].heads.clone();
    net.nodes[0].edit(&doc_id, "A new description, of about sixty bytes in all.");
    let mut origin_doc = AutoCommit::load(&net.nodes[0].publications[&doc_id].bytes).unwrap();
    let change_bytes: usize = origin_doc
        .get_changes(&old_heads)
        .iter()
        .map(|c| c.raw_bytes().len())
        .sum();
    let statement_bytes = net.nodes[0].publications[&doc_id].statement.len();
    net.local_change(0);
    net.run();
    no_violations(&net);
    assert_eq!(net.deliveries_since(before), 1);
    let kinds: Vec<&str> = net.log[before..].iter().map(|d| d.msg.kind()).collect();
    assert_eq!(kinds, ["inventory", "want", "deliver", "inventory_ack"]);
    let deliver = net.log[before..]
        .iter()
        .find(|d| d.msg.kind() == "deliver")
        .unwrap();
    // The change, the statement, and a few bytes of framing: nothing else.
    assert!(
        deliver.len_bytes <= change_bytes + statement_bytes + 16,
        "a one-field change took {} bytes for {change_bytes} of change and {statement_bytes} of statement",
        deliver.len_bytes
    );
    let copy = net.nodes[1].replica_doc(&doc_id).unwrap();
    assert_eq!(
        description(&copy),
        "A new description, of about sixty bytes in all."
    );
    assert!(net.nodes[1].holds(&doc_id, &heads_of(&net.nodes[0], &doc_id)));
}

/// After a reconnect, a node catches up on exactly what changed: the other
/// publications cost nothing, not even an announcement.
#[test]
fn a_reconnect_costs_what_was_missed() {
    let mut nodes = federation(2, 0);
    let ids: Vec<DocId> = (0..50)
        .map(|i| nodes[0].publish_practice(&format!("p{i}"), i, Scope::Public))
        .collect();
    let mut net = Net::synced(nodes);
    net.disconnect_all();
    for doc_id in &ids[..3] {
        net.nodes[0].edit(doc_id, "changed while away");
    }
    let before = net.log.len();
    net.connect(0, 1);
    net.run();
    no_violations(&net);
    assert_eq!(net.deliveries_since(before), 3);
    let announced: usize = net.log[before..]
        .iter()
        .map(|d| match &d.msg {
            SyncMessage::Inventory(Inventory { entries, .. }) => entries.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(announced, 3, "only the changed publications are announced");
    for doc_id in &ids {
        assert!(net.nodes[1].holds(doc_id, &heads_of(&net.nodes[0], doc_id)));
    }
}

/// A relay line: A approves B, B approves C, A and C never meet. A's public
/// practice reaches C, signed by A; its partners-scoped and named ones do
/// not, and no message about them crosses B–C; a subscriber of C alone gets
/// the public one too.
#[test]
fn public_publications_are_relayed_and_narrow_ones_are_not() {
    let mut nodes = federation(3, 1);
    let b = nodes[1].id;
    let public = nodes[0].publish_practice("public", 1, Scope::Public);
    let partners = nodes[0].publish_practice("partners", 2, Scope::Partners);
    let named = nodes[0].publish_practice("named", 3, Scope::Nodes(vec![b]));
    let net = line(nodes);
    no_violations(&net);
    let a_heads = heads_of(&net.nodes[0], &public);
    for n in 1..4 {
        assert!(net.nodes[n].holds(&public, &a_heads), "node {n}");
        let statement = statement_of(&net.nodes[n].held[&public].statement);
        assert_eq!(statement.body.origin(), net.nodes[0].id);
        statement.verify().unwrap();
    }
    assert_eq!(net.nodes[1].copies().len(), 3);
    assert_eq!(net.nodes[2].copies(), BTreeSet::from([public.clone()]));
    assert_eq!(net.nodes[3].copies(), BTreeSet::from([public.clone()]));
    check_crossings(&net, |d, doc_id| {
        let past_b = d.from >= 1 && d.to >= 2 || d.from >= 2;
        !past_b || (*doc_id != partners && *doc_id != named)
    });
}

/// In a triangle, every node hears of a version from two peers; its content
/// crosses each link at most once, and a node that already holds it pays an
/// announcement.
#[test]
fn a_version_crosses_each_link_at_most_once() {
    let mut nodes = federation(3, 0);
    let doc_id = nodes[0].publish_practice("p", 1, Scope::Public);
    let mut net = Net::synced(nodes);
    net.nodes[0].edit(&doc_id, "second version");
    let before = net.log.len();
    net.local_change(0);
    net.run();
    no_violations(&net);
    let mut per_link: BTreeMap<(usize, usize), usize> = BTreeMap::new();
    for d in &net.log[before..] {
        if d.msg.kind() == "deliver" {
            *per_link
                .entry((d.from.min(d.to), d.from.max(d.to)))
                .or_default() += 1;
        }
    }
    assert!(per_link.values().all(|&n| n == 1), "{per_link:?}");
    for n in 1..3 {
        assert!(net.nodes[n].holds(&doc_id, &heads_of(&net.nodes[0], &doc_id)));
    }
}

/// A retraction travels like a version, relays included; every node that held
/// the publication deletes it and confirms, and the confirmations, signed by
/// each confirmer, come back to the origin through the relay.
#[test]
fn retractions_are_relayed_and_confirmed_back_to_the_origin() {
    let mut nodes = federation(3, 1);
    let doc_id = nodes[0].publish_practice("p", 1, Scope::Public);
    let mut net = line(nodes);
    assert!(net.nodes[3].copies().contains(&doc_id));
    net.nodes[0].retract(&doc_id);
    net.local_change(0);
    net.run();
    no_violations(&net);
    for n in 1..4 {
        assert!(net.nodes[n].copies().is_empty(), "node {n} kept its copy");
        assert!(net.nodes[n].held[&doc_id].retracted);
    }
    let confirmed: BTreeSet<_> = net
        .events(0)
        .filter_map(|(_, e)| match e {
            Event::RetractionConfirmed { confirmer, .. } => Some(*confirmer),
            _ => None,
        })
        .collect();
    let holders: BTreeSet<_> = (1..4).map(|n| net.nodes[n].id).collect();
    assert_eq!(confirmed, holders);
    // Every confirmation the origin keeps is signed by its confirmer.
    for ((_, confirmer), c) in &net.nodes[0].confirmations {
        let signed = labnet_protocol::statement::SignedConfirmation::decode(&c.signed).unwrap();
        signed.verify().unwrap();
        assert_eq!(signed.body.confirmer(), *confirmer);
    }
    // An older version replayed after the retraction is not taken back.
    let before = net.log.len();
    net.disconnect_all();
    net.connect(1, 2);
    net.run();
    assert_eq!(net.deliveries_since(before), 0);
    assert!(net.nodes[2].copies().is_empty());
}

/// A publication whose scope no longer includes a peer is withdrawn from it,
/// by the origin, and the peer deletes it.
#[test]
fn a_narrowed_scope_withdraws_the_publication() {
    let mut nodes = federation(3, 0);
    let c = nodes[2].id;
    let doc_id = nodes[0].publish_practice("p", 1, Scope::Partners);
    let mut net = Net::synced(nodes);
    assert!(net.nodes[1].copies().contains(&doc_id));
    net.nodes[0].set_scope(&doc_id, Scope::Nodes(vec![c]));
    net.local_change(0);
    net.run();
    no_violations(&net);
    assert!(net.nodes[1].copies().is_empty());
    assert!(net.nodes[2].holds(&doc_id, &heads_of(&net.nodes[0], &doc_id)));
}
