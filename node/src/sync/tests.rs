//! Deterministic multi-node tests of the sync core: no sockets, a clock the
//! tests move.
//!
//! Each test builds a [`Net`] of in-memory nodes with real keys, wires
//! sessions along links, and runs until no bytes are in flight; then it checks
//! what every node holds and, where scope is at stake, every message that
//! crossed the wire. The adversarial tests play a peer by injecting bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use automerge::{AutoCommit, ChangeHash};
use labnet_config::Role;
use labnet_protocol::statement::{ScopeClass, Signed, Signer, VersionStatement};
use labnet_protocol::sync::{Announcement, DocId, SyncMessage, WantItem};

use super::harness::{description, node_id, statement_of, MemNode, Net, TestKey};
use super::session::STALL_TIMEOUT;
use super::*;
use crate::share::publication::{edit_sample, sample_body, sample_doc};
use crate::trust::visible_to;

fn doc_ids_in(msg: &SyncMessage) -> Vec<DocId> {
    match msg {
        SyncMessage::Inventory { entries, .. } => {
            entries.iter().map(|e| e.doc_id.clone()).collect()
        }
        SyncMessage::Want { items } => items.iter().map(|i| i.doc_id.clone()).collect(),
        SyncMessage::Deliver { statement, .. } => vec![statement_of(statement).body.publication],
        SyncMessage::Withdraw { doc_id, .. } | SyncMessage::WithdrawAck { doc_id } => {
            vec![doc_id.clone()]
        }
        SyncMessage::Resume { .. }
        | SyncMessage::InventoryAck { .. }
        | SyncMessage::Confirm { .. }
        | SyncMessage::ConfirmAck { .. } => vec![],
    }
}

fn no_violations(net: &Net) {
    for (key, session) in &net.sessions {
        assert_eq!(session.closed(), None, "session {key:?}");
    }
}

fn heads_of(node: &MemNode, doc_id: &DocId) -> Vec<ChangeHash> {
    let mut heads = node.publications[doc_id].heads.clone();
    heads.sort();
    heads
}

/// Node `i` of a federation: partners first, then subscribers.
fn federation(partners: u32, subscribers: u32) -> Vec<MemNode> {
    (0..partners)
        .map(|n| MemNode::new(n, Role::Partner))
        .chain((partners..partners + subscribers).map(|n| MemNode::new(n, Role::Subscriber)))
        .collect()
}

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
    for d in &net.log {
        let receiver = &net.nodes[d.to];
        for doc_id in doc_ids_in(&d.msg) {
            let (origin, scope) = &scopes[&doc_id];
            if *origin == d.to {
                // A request about its own publication, from one who may see it.
                continue;
            }
            assert!(
                visible_to(scope, receiver.id, receiver.role),
                "{doc_id} reached node {} outside its scope in a {} message",
                d.to,
                d.msg.kind()
            );
        }
    }
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
            SyncMessage::Inventory { entries, .. } => entries.len(),
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
    let mut nodes = vec![
        MemNode::new(0, Role::Partner),
        MemNode::new(1, Role::Partner),
        MemNode::new(2, Role::Partner),
        MemNode::new(3, Role::Subscriber),
    ];
    let b = nodes[1].id;
    let public = nodes[0].publish_practice("public", 1, Scope::Public);
    let partners = nodes[0].publish_practice("partners", 2, Scope::Partners);
    let named = nodes[0].publish_practice("named", 3, Scope::Nodes(vec![b]));
    let mut net = Net::new(nodes);
    net.connect(0, 1);
    net.connect(1, 2);
    net.connect(2, 3);
    net.run();
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
    for d in &net.log {
        if d.from >= 1 && d.to >= 2 || d.from >= 2 {
            for doc_id in doc_ids_in(&d.msg) {
                assert!(
                    doc_id != partners && doc_id != named,
                    "{doc_id} crossed {} → {} in a {}",
                    d.from,
                    d.to,
                    d.msg.kind()
                );
            }
        }
    }
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
    let mut nodes = vec![
        MemNode::new(0, Role::Partner),
        MemNode::new(1, Role::Partner),
        MemNode::new(2, Role::Partner),
        MemNode::new(3, Role::Subscriber),
    ];
    let doc_id = nodes[0].publish_practice("p", 1, Scope::Public);
    let mut net = Net::new(nodes);
    net.connect(0, 1);
    net.connect(1, 2);
    net.connect(2, 3);
    net.run();
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

// ---- the adversary ---------------------------------------------------------

/// A node (0) and an adversary (1), connected and synced: node 0 publishes
/// one partners-scoped practice, the adversary one public one.
fn against_adversary(adversary_role: Role) -> (Net, DocId) {
    let mut nodes = vec![
        MemNode::new(0, Role::Partner),
        MemNode::new(1, adversary_role),
    ];
    let ours = nodes[0].publish_practice("ours", 1, Scope::Partners);
    let mut net = Net::synced(nodes);
    net.run();
    (net, ours)
}

/// A statement for `doc_id` signed by `key`, with the heads of `doc`.
fn statement(
    key: &TestKey,
    doc_id: &DocId,
    version: u64,
    doc: &mut AutoCommit,
    scope: ScopeClass,
    retracted: bool,
) -> Vec<u8> {
    let mut heads: Vec<[u8; 32]> = doc.get_heads().iter().map(|h| h.0).collect();
    heads.sort();
    let body = VersionStatement {
        publication: doc_id.clone(),
        origin_key: key.public_key(),
        version,
        heads,
        scope,
        retracted,
        issued_at: 1_764_000_000,
    };
    Signed::sign(body, key).encode()
}

fn changes_of(doc: &mut AutoCommit) -> Vec<Vec<u8>> {
    doc.get_changes(&[])
        .iter()
        .map(|c| c.raw_bytes().to_vec())
        .collect()
}

/// Announces `doc_id` at `version` from the adversary (1) to node 0 and lets
/// node 0 ask for it; returns after node 0's `Want` is out.
fn announce(net: &mut Net, doc_id: &DocId, version: u64) {
    let inventory = SyncMessage::Inventory {
        epoch: 1001,
        entries: vec![Announcement {
            doc_id: doc_id.clone(),
            version,
            retracted: false,
            seq: 10_000 + version,
        }],
        up_to_seq: 10_000 + version,
        full: false,
        complete: true,
    };
    net.inject(1, 0, inventory.encode());
    net.step();
    // The adversary answers itself: its own session never sees the Want.
    net.take_in_flight(0, 1);
}

/// Delivers `bytes` as the adversary and reports how node 0's session with
/// it ended, having checked that nothing was stored.
fn deliver_bad(net: &mut Net, message: SyncMessage) -> Option<ViolationCode> {
    let held_before = net.nodes[0].held.len();
    net.inject(1, 0, message.encode());
    net.step();
    assert_eq!(net.nodes[0].held.len(), held_before, "something was stored");
    net.closed_with(0, 1)
}

/// Each bad delivery closes the session with its own code and stores
/// nothing: a statement signed by a key that is not the origin's, a valid
/// statement from another origin with a scope only it may deliver, heads that
/// don't match the changes, a document that is not a publication, content
/// that names another city's id, a retired version-1 message, and bytes
/// that are not a message.
#[test]
fn bad_deliveries_are_refused_with_their_own_code() {
    let victim = node_id(7);
    let a_doc = move |seed| sample_doc(&sample_body(victim, "forged", seed));
    let victim_doc_id = labnet_protocol::sync::publication_id(victim, "forged").unwrap();
    let adversary = TestKey::new(1);
    let own_id = labnet_protocol::sync::publication_id(adversary.node_id(), "own").unwrap();

    type Case = Box<dyn Fn(&mut Net)>;
    let cases: Vec<(&str, ViolationCode, Case)> = vec![
        (
            "a statement for another city's id signed by the adversary's key",
            ViolationCode::BadStatement,
            Box::new(move |net| {
                let mut doc = a_doc(1);
                announce(net, &victim_doc_id, 5);
                let signed = statement(
                    &adversary,
                    &victim_doc_id,
                    5,
                    &mut doc,
                    ScopeClass::Public,
                    false,
                );
                let code = deliver_bad(
                    net,
                    SyncMessage::Deliver {
                        statement: signed,
                        changes: changes_of(&mut doc),
                    },
                );
                assert_eq!(code, Some(ViolationCode::BadStatement));
            }),
        ),
        (
            "a valid statement of another origin, scoped partners, relayed",
            ViolationCode::ScopeViolation,
            Box::new(move |net| {
                let origin = TestKey::new(7);
                let doc_id = labnet_protocol::sync::publication_id(origin.node_id(), "p").unwrap();
                let mut doc = sample_doc(&sample_body(origin.node_id(), "p", 2));
                announce(net, &doc_id, 3);
                let signed = statement(&origin, &doc_id, 3, &mut doc, ScopeClass::Partners, false);
                let code = deliver_bad(
                    net,
                    SyncMessage::Deliver {
                        statement: signed,
                        changes: changes_of(&mut doc),
                    },
                );
                assert_eq!(code, Some(ViolationCode::ScopeViolation));
            }),
        ),
        (
            "heads that don't match the changes",
            ViolationCode::HeadsMismatch,
            Box::new(move |net| {
                let key = TestKey::new(1);
                let doc_id = labnet_protocol::sync::publication_id(key.node_id(), "own").unwrap();
                let mut v1 = sample_doc(&sample_body(key.node_id(), "own", 3));
                let mut v2 = v1.fork();
                edit_sample(&mut v2, "v2");
                announce(net, &doc_id, 9);
                let signed = statement(&key, &doc_id, 9, &mut v2, ScopeClass::Public, false);
                let code = deliver_bad(
                    net,
                    SyncMessage::Deliver {
                        statement: signed,
                        changes: changes_of(&mut v1),
                    },
                );
                assert_eq!(code, Some(ViolationCode::HeadsMismatch));
            }),
        ),
        (
            "a document that is not a publication",
            ViolationCode::BadDocument,
            Box::new(move |net| {
                use automerge::transaction::Transactable;
                let key = TestKey::new(1);
                let mut doc = AutoCommit::new();
                doc.put(automerge::ROOT, "payload", "x".repeat(100))
                    .unwrap();
                announce(net, &own_id, 4);
                let signed = statement(&key, &own_id, 4, &mut doc, ScopeClass::Public, false);
                let code = deliver_bad(
                    net,
                    SyncMessage::Deliver {
                        statement: signed,
                        changes: changes_of(&mut doc),
                    },
                );
                assert_eq!(code, Some(ViolationCode::BadDocument));
            }),
        ),
        (
            "content that names another city's publication",
            ViolationCode::BadDocument,
            Box::new(move |net| {
                let key = TestKey::new(1);
                let doc_id =
                    labnet_protocol::sync::publication_id(key.node_id(), "forged").unwrap();
                // A valid publication body of the victim city, signed by the adversary.
                let mut doc = sample_doc(&sample_body(node_id(7), "forged", 4));
                announce(net, &doc_id, 4);
                let signed = statement(&key, &doc_id, 4, &mut doc, ScopeClass::Public, false);
                let code = deliver_bad(
                    net,
                    SyncMessage::Deliver {
                        statement: signed,
                        changes: changes_of(&mut doc),
                    },
                );
                assert_eq!(code, Some(ViolationCode::BadDocument));
            }),
        ),
        (
            "a delivery nobody asked for",
            ViolationCode::UnexpectedMessage,
            Box::new(move |net| {
                let key = TestKey::new(1);
                let doc_id =
                    labnet_protocol::sync::publication_id(key.node_id(), "unasked").unwrap();
                let mut doc = sample_doc(&sample_body(key.node_id(), "unasked", 5));
                let signed = statement(&key, &doc_id, 4, &mut doc, ScopeClass::Public, false);
                let code = deliver_bad(
                    net,
                    SyncMessage::Deliver {
                        statement: signed,
                        changes: changes_of(&mut doc),
                    },
                );
                assert_eq!(code, Some(ViolationCode::UnexpectedMessage));
            }),
        ),
        (
            "a chunk that is not a change chunk",
            ViolationCode::BadChunk,
            Box::new(move |net| {
                let key = TestKey::new(1);
                let doc_id = labnet_protocol::sync::publication_id(key.node_id(), "own").unwrap();
                let mut doc = sample_doc(&sample_body(key.node_id(), "own", 6));
                announce(net, &doc_id, 4);
                let signed = statement(&key, &doc_id, 4, &mut doc, ScopeClass::Public, false);
                let code = deliver_bad(
                    net,
                    SyncMessage::Deliver {
                        statement: signed,
                        changes: vec![doc.save()],
                    },
                );
                assert_eq!(code, Some(ViolationCode::BadChunk));
            }),
        ),
        (
            "the 15-byte Automerge sync message of version 1",
            ViolationCode::RetiredMessage,
            Box::new(move |net| {
                let mut bytes = vec![0x04, 1, b'd', 15];
                bytes.extend_from_slice(&[
                    0x42, 0, 1, 1, 0x20, 0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0, 0,
                ]);
                net.inject(1, 0, bytes);
                net.step();
                assert_eq!(net.closed_with(0, 1), Some(ViolationCode::RetiredMessage));
            }),
        ),
        (
            "random bytes",
            ViolationCode::MalformedMessage,
            Box::new(move |net| {
                net.inject(1, 0, vec![0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
                net.step();
                assert_eq!(net.closed_with(0, 1), Some(ViolationCode::MalformedMessage));
            }),
        ),
    ];
    for (what, code, case) in cases {
        let (mut net, _) = against_adversary(Role::Partner);
        case(&mut net);
        assert_eq!(net.closed_with(0, 1), Some(code), "{what}");
    }
}

/// The `chunk` fuzz target's crasher, a change Automerge applies but cannot
/// save back (a string value that is not UTF-8): delivered as a publication,
/// it is refused before anything is stored, because a replica saved from it
/// would fail every later read. The fuzz input is one chunk behind a `u16`
/// length.
const UNSAVEABLE_CHANGE_FUZZ_INPUT: &[u8] = include_bytes!(
    "../../../fuzz/regressions/chunk/crash-5548effd888422394bea8bd8227db299205f808d"
);

#[test]
fn a_delivery_whose_document_does_not_load_back_is_refused() {
    let change = UNSAVEABLE_CHANGE_FUZZ_INPUT[2..].to_vec();
    let mut doc = AutoCommit::new();
    doc.apply_changes([automerge::Change::try_from(&change[..]).unwrap()])
        .unwrap();
    assert!(
        saved_if_it_reloads(&mut doc).is_none(),
        "Automerge saves it back now"
    );
    let mut honest = sample_doc(&sample_body(node_id(1), "honest", 1));
    assert!(saved_if_it_reloads(&mut honest).is_some());

    let (mut net, _) = against_adversary(Role::Partner);
    let key = TestKey::new(1);
    let doc_id = labnet_protocol::sync::publication_id(key.node_id(), "unsaveable").unwrap();
    announce(&mut net, &doc_id, 4);
    let signed = statement(&key, &doc_id, 4, &mut doc, ScopeClass::Public, false);
    let code = deliver_bad(
        &mut net,
        SyncMessage::Deliver {
            statement: signed,
            changes: vec![change],
        },
    );
    assert_eq!(code, Some(ViolationCode::BadDocument));
    let reason = net.sessions[&(0, 1)].closed_by().map(|(_, r)| r.to_owned());
    assert!(
        reason
            .as_deref()
            .is_some_and(|r| r.contains("does not load back")),
        "{reason:?}"
    );
}

/// A peer approved as a subscriber can publish nothing: its announcements
/// are acknowledged and ignored (no `Want`, nothing stored), and the session
/// stays up, so a city downgraded to subscriber, which still announces its
/// own publications, keeps the session our withdrawals travel on.
#[test]
fn a_subscriber_cannot_announce() {
    let (mut net, _) = against_adversary(Role::Subscriber);
    let doc_id = labnet_protocol::sync::publication_id(net.nodes[1].id, "x").unwrap();
    let inventory = SyncMessage::Inventory {
        epoch: 1001,
        entries: vec![Announcement {
            doc_id,
            version: 1,
            retracted: false,
            seq: 10_001,
        }],
        up_to_seq: 10_001,
        full: false,
        complete: true,
    };
    net.inject(1, 0, inventory.encode());
    net.step();
    let sent: Vec<SyncMessage> = net
        .take_in_flight(0, 1)
        .iter()
        .map(|bytes| SyncMessage::decode(bytes).unwrap())
        .collect();
    assert_eq!(net.closed_with(0, 1), None);
    assert!(
        sent.iter().any(|m| matches!(
            m,
            SyncMessage::InventoryAck {
                up_to_seq: 10_001,
                ..
            }
        )),
        "the batch is acknowledged: {sent:?}"
    );
    assert!(
        !sent.iter().any(|m| matches!(m, SyncMessage::Want { .. })),
        "nothing is asked for: {sent:?}"
    );
    assert!(net.nodes[0].held.is_empty());
}

/// The attack of issue 13 in the sans-IO core: a partner holds a
/// partners-only publication, is downgraded to subscriber, and reconnects
/// with a resume point past it. The publication did not change, so resuming
/// from the peer's point alone would never look at it again; the origin's
/// record of the peer's ack is forgotten by the decision, the whole index is
/// checked, and the publication is withdrawn.
#[test]
fn a_downgraded_peer_is_checked_against_the_whole_index_and_loses_what_it_may_not_see() {
    let mut nodes = vec![
        MemNode::new(0, Role::Partner),
        MemNode::new(1, Role::Partner),
    ];
    let partners = nodes[0].publish_practice("partners", 1, Scope::Partners);
    let public = nodes[0].publish_practice("public", 2, Scope::Public);
    let mut net = Net::synced(nodes);
    assert!(net.nodes[1].copies().contains(&partners));
    net.disconnect(0, 1);

    // What the peer table does on a downgrade: a new role, and the ack forgotten.
    net.nodes[1].role = Role::Subscriber;
    let peer = net.nodes[1].id;
    net.nodes[0].acked.remove(&peer);
    net.connect(0, 1);
    net.run();
    let copies = net.nodes[1].copies();
    assert!(!copies.contains(&partners), "withdrawn: {copies:?}");
    assert!(copies.contains(&public), "the public one stays");
    assert!(!net.nodes[0].deliveries.contains(&(peer, partners.clone())));
}

/// Asking for a publication outside one's scope gets the answer an unknown
/// id gets; asking for one publication twice in one `Want` is refused, not
/// answered twice.
#[test]
fn wants_are_checked_before_anything_is_sent() {
    let (mut net, ours) = against_adversary(Role::Subscriber);
    let before = net.log.len();
    let want = SyncMessage::Want {
        items: vec![WantItem {
            doc_id: ours.clone(),
            have: vec![],
        }],
    };
    net.inject(1, 0, want.encode());
    net.run();
    assert_eq!(net.closed_with(0, 1), Some(ViolationCode::UnknownDoc));
    assert_eq!(net.deliveries_since(before), 0);

    let (mut net, ours) = against_adversary(Role::Partner);
    let before = net.log.len();
    let item = WantItem {
        doc_id: ours,
        have: vec![],
    };
    net.inject(
        1,
        0,
        SyncMessage::Want {
            items: vec![item; 256],
        }
        .encode(),
    );
    net.run();
    assert_eq!(
        net.closed_with(0, 1),
        Some(ViolationCode::UnexpectedMessage)
    );
    assert_eq!(net.deliveries_since(before), 0);
}

/// The attack: a peer repeats one small `Want` to make us send the same
/// full delivery over and over. The adversary's session already asked for
/// and got the publication once while syncing; its repeats close the session
/// with nothing more sent.
#[test]
fn a_repeated_want_is_answered_once() {
    let (mut net, ours) = against_adversary(Role::Partner);
    let delivered_once = net
        .log
        .iter()
        .filter(|d| d.to == 1 && matches!(&d.msg, SyncMessage::Deliver { .. }))
        .count();
    assert_eq!(delivered_once, 1, "the honest sync delivered it once");
    assert_eq!(net.closed_with(0, 1), None);
    let before = net.log.len();
    let want = SyncMessage::Want {
        items: vec![WantItem {
            doc_id: ours,
            have: vec![],
        }],
    };
    for _ in 0..10 {
        net.inject(1, 0, want.encode());
    }
    net.run();
    assert_eq!(
        net.closed_with(0, 1),
        Some(ViolationCode::UnexpectedMessage)
    );
    assert_eq!(net.deliveries_since(before), 0, "answered once in all");
}

/// A valid version older than the one held, delivered by a relay, is
/// ignored, and the session goes on.
#[test]
fn an_older_valid_version_is_ignored_not_punished() {
    let mut nodes = federation(3, 0);
    let doc_id = nodes[0].publish_practice("p", 1, Scope::Public);
    let old_statement = nodes[0].publications[&doc_id].statement.clone();
    let mut net = Net::synced(nodes);
    net.nodes[0].edit(&doc_id, "newer");
    net.local_change(0);
    net.run();
    let held = net.nodes[1].held[&doc_id].version;
    // Node 2 (a relay) claims a newer version, then delivers the old one.
    let inventory = SyncMessage::Inventory {
        epoch: net.nodes[2].epoch,
        entries: vec![Announcement {
            doc_id: doc_id.clone(),
            version: held + 100,
            retracted: false,
            seq: 9_999,
        }],
        up_to_seq: 9_999,
        full: false,
        complete: true,
    };
    net.inject(2, 1, inventory.encode());
    net.step();
    // Node 2's own session never sees the Want: the test answers for it.
    assert!(!net.take_in_flight(1, 2).is_empty());
    net.inject(
        2,
        1,
        SyncMessage::Deliver {
            statement: old_statement,
            changes: vec![],
        }
        .encode(),
    );
    net.step();
    assert_eq!(net.closed_with(1, 2), None);
    assert_eq!(net.nodes[1].held[&doc_id].version, held);
    assert!(net
        .events(1)
        .any(|(_, e)| matches!(e, Event::Stale { doc_id: d } if *d == doc_id)));
}

/// A peer that leaves a `Want` unanswered is dropped after the stall timeout.
#[test]
fn a_stalled_peer_is_dropped() {
    let (mut net, _) = against_adversary(Role::Partner);
    let doc_id = labnet_protocol::sync::publication_id(net.nodes[1].id, "never").unwrap();
    announce(&mut net, &doc_id, 1);
    net.advance(STALL_TIMEOUT - Duration::from_secs(1));
    assert_eq!(net.closed_with(0, 1), None);
    net.advance(Duration::from_secs(2));
    assert_eq!(net.closed_with(0, 1), Some(ViolationCode::Stalled));
}

/// A local read error ends the session as a local failure: it never reads as
/// an empty index, so the peer withdraws nothing and keeps its copies.
#[test]
fn a_read_error_ends_the_session_and_never_empties_the_index() {
    let mut nodes = federation(2, 0);
    let doc_id = nodes[0].publish_practice("p", 1, Scope::Partners);
    let mut net = Net::synced(nodes);
    net.disconnect_all();
    net.nodes[0].reads_fail = true;
    net.connect(0, 1);
    net.run();
    assert!(matches!(
        net.sessions[&(0, 1)].closed(),
        Some(super::session::Closed::Local(_))
    ));
    assert!(net.nodes[1].copies().contains(&doc_id));
}

// ---- scale -----------------------------------------------------------------

/// The links of a sparse topology of `n` nodes: a ring plus a chord from each
/// node a third of the way round, so every node has degree 3 or 4.
fn sparse_links(n: usize) -> Vec<(usize, usize)> {
    let mut links = BTreeSet::new();
    for i in 0..n {
        for j in [(i + 1) % n, (i + n / 3) % n] {
            if i != j {
                links.insert((i.min(j), i.max(j)));
            }
        }
    }
    links.into_iter().collect()
}

/// 100 nodes on a sparse topology: a new public version reaches all of
/// them; a partition heals; a retraction reaches, and is confirmed by, every
/// node that held it; a restart of a quarter of the nodes catches up.
#[test]
fn a_hundred_nodes_on_a_sparse_topology() {
    let n = 100;
    let mut nodes: Vec<MemNode> = (0..n as u32)
        .map(|i| MemNode::new(i, Role::Partner))
        .collect();
    let publishers = [0, 33, 66];
    let docs: Vec<(usize, DocId)> = publishers
        .iter()
        .map(|&p| (p, nodes[p].publish_practice("p", p as u32, Scope::Public)))
        .collect();
    let mut net = Net::new(nodes);
    let links = sparse_links(n);
    for &(a, b) in &links {
        net.connect(a, b);
    }
    net.run();
    no_violations(&net);
    let everywhere = |net: &Net, origin: usize, doc_id: &DocId| {
        let heads = heads_of(&net.nodes[origin], doc_id);
        (0..n)
            .filter(|&i| i != origin)
            .all(|i| net.nodes[i].holds(doc_id, &heads))
    };
    for (origin, doc_id) in &docs {
        assert!(everywhere(&net, *origin, doc_id));
    }

    // A new version reaches everyone, crossing each link at most once.
    let (origin, doc_id) = docs[0].clone();
    let before = net.log.len();
    net.nodes[origin].edit(&doc_id, "version two");
    net.local_change(origin);
    net.run();
    assert!(everywhere(&net, origin, &doc_id));
    assert!(net.deliveries_since(before) <= links.len());

    // Partition: cut every link between the halves 0..50 and 50..100.
    let cut: Vec<_> = links
        .iter()
        .copied()
        .filter(|&(a, b)| (a < 50) != (b < 50))
        .collect();
    for &(a, b) in &cut {
        net.disconnect(a, b);
    }
    net.nodes[origin].edit(&doc_id, "version three, during the partition");
    net.local_change(origin);
    net.run();
    assert!((50..n).all(|i| !net.nodes[i].holds(&doc_id, &heads_of(&net.nodes[origin], &doc_id))));
    for &(a, b) in &cut {
        net.connect(a, b);
    }
    net.run();
    assert!(everywhere(&net, origin, &doc_id), "the partition healed");

    // A retraction reaches, and is confirmed by, every node that held it.
    let (origin, doc_id) = docs[1].clone();
    net.nodes[origin].retract(&doc_id);
    net.local_change(origin);
    net.run();
    no_violations(&net);
    assert!((0..n).all(|i| !net.nodes[i].copies().contains(&doc_id)));
    let confirmed: BTreeSet<_> = net.nodes[origin]
        .confirmations
        .keys()
        .filter(|(d, _)| *d == doc_id)
        .map(|(_, c)| *c)
        .collect();
    let holders: BTreeSet<_> = (0..n)
        .filter(|&i| i != origin)
        .map(|i| net.nodes[i].id)
        .collect();
    assert_eq!(confirmed, holders);

    // A quarter of the nodes restart (their sessions drop) while a version
    // changes; they catch up on reconnect.
    let (origin, doc_id) = docs[2].clone();
    let restarting: Vec<usize> = (0..n).filter(|i| i % 4 == 1).collect();
    for &(a, b) in &links {
        if restarting.contains(&a) || restarting.contains(&b) {
            net.disconnect(a, b);
        }
    }
    net.nodes[origin].edit(&doc_id, "version two of the third");
    net.local_change(origin);
    net.run();
    for &(a, b) in &links {
        if restarting.contains(&a) || restarting.contains(&b) {
            net.connect(a, b);
        }
    }
    net.run();
    no_violations(&net);
    assert!(everywhere(&net, origin, &doc_id));
}

/// The copies of `origin`'s publications node `me` holds: (count, bytes).
fn copies_of(net: &Net, me: usize, origin: NodeId) -> (usize, u64) {
    net.nodes[me]
        .held
        .values()
        .filter(|h| h.origin == origin)
        .filter_map(|h| h.bytes.as_ref())
        .fold((0, 0), |(n, b), bytes| (n + 1, b + bytes.len() as u64))
}

fn quota_refusals(net: &Net, me: usize) -> usize {
    net.nodes[me]
        .events
        .iter()
        .filter(|(_, e)| matches!(e, Event::QuotaExceeded { .. }))
        .count()
}

/// The attack: one origin publishes more than a node should keep of it, to
/// fill its disk. Copies beyond `replicas_per_origin_max` are refused (and
/// reported), the session goes on and catches up, and another origin's copy
/// is not evicted.
#[test]
fn an_origin_over_its_replica_count_quota_is_refused_and_evicts_nobody() {
    let mut nodes = vec![
        MemNode::new(0, Role::Partner),
        MemNode::new(1, Role::Partner),
        MemNode::new(2, Role::Partner),
    ];
    let other = nodes[2].publish_practice("other", 9, Scope::Partners);
    for i in 0..5 {
        nodes[1].publish_practice(&format!("p{i}"), i, Scope::Partners);
    }
    let flooder = nodes[1].id;
    let mut net = Net::new(nodes);
    net.config.replicas_per_origin_max = 3;
    net.connect_all();
    net.run();
    assert_eq!(copies_of(&net, 0, flooder).0, 3, "the quota's worth kept");
    assert_eq!(
        quota_refusals(&net, 0),
        2,
        "the rest refused, each reported"
    );
    assert!(net.nodes[0].held[&other].bytes.is_some(), "nobody evicted");
    assert_eq!(
        net.closed_with(0, 1),
        None,
        "an origin over quota broke no rule"
    );
    assert!(
        net.nodes[0]
            .events
            .iter()
            .any(|(p, e)| *p == flooder && matches!(e, Event::CaughtUp)),
        "the refused ones are settled: the batch is acknowledged"
    );
}

/// The same origin, stopped by bytes before its count runs out.
#[test]
fn an_origin_over_its_replica_bytes_quota_is_refused() {
    let build = || {
        let mut nodes = vec![
            MemNode::new(0, Role::Partner),
            MemNode::new(1, Role::Partner),
        ];
        for i in 0..5 {
            nodes[1].publish_practice(&format!("p{i}"), i, Scope::Partners);
        }
        nodes
    };
    // What the five copies take without a quota.
    let free = Net::synced(build());
    let origin = free.nodes[1].id;
    let (count, bytes) = copies_of(&free, 0, origin);
    assert_eq!(count, 5);
    let max = bytes / 2;
    let mut net = Net::new(build());
    net.config.replica_bytes_per_origin_max = max;
    net.connect_all();
    net.run();
    let (kept, kept_bytes) = copies_of(&net, 0, origin);
    assert!(kept_bytes <= max, "{kept_bytes} bytes kept, quota {max}");
    assert!((1..5).contains(&kept), "{kept} kept");
    assert_eq!(quota_refusals(&net, 0), 5 - kept);
    assert_eq!(net.closed_with(0, 1), None);
}
