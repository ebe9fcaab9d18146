//! Deterministic multi-node tests of the sync core: no sockets, no clock.
//!
//! Each test builds a [`Net`] of in-memory nodes, wires sessions between them,
//! and runs until no bytes are in flight; then it checks what every node holds
//! and, where scope is at stake, every message that crossed the wire.

use std::collections::BTreeSet;

use automerge::sync::{self, SyncDoc};
use automerge::transaction::Transactable;
use automerge::{AutoCommit, ChangeHash, ReadDoc, ROOT};
use labnet_config::Role;
use labnet_protocol::sync::{DocId, InventoryEntry, SyncMessage};
use proptest::prelude::*;

use super::harness::{practice_doc, title, MemNode, Net};
use super::*;
use crate::trust::visible_to;

fn doc_ids_in(msg: &SyncMessage) -> Vec<&DocId> {
    match msg {
        SyncMessage::Inventory { entries, .. } => entries.iter().map(|e| &e.doc_id).collect(),
        SyncMessage::DocSync { doc_id, .. }
        | SyncMessage::Retract { doc_id, .. }
        | SyncMessage::RetractAck { doc_id }
        | SyncMessage::Snapshot { doc_id, .. } => vec![doc_id],
        SyncMessage::WantSnapshots { doc_ids } => doc_ids.iter().collect(),
        SyncMessage::Resume { .. } | SyncMessage::InventoryAck { .. } => vec![],
    }
}

fn no_violations(net: &Net) {
    for (key, session) in &net.sessions {
        assert_eq!(session.closed_by(), None, "session {key:?}");
    }
}

/// Heads in a fixed order, to compare two nodes' heads of one document.
fn sorted(mut heads: Vec<ChangeHash>) -> Vec<ChangeHash> {
    heads.sort();
    heads
}

/// Node `i` of the federation: partners first, then subscribers.
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
    for i in 0..10 {
        let next = ids[(i + 1) % 10];
        let subscriber = ids[10];
        let scopes = [
            Scope::Public,
            Scope::Partners,
            Scope::Nodes(vec![next]),
            Scope::Nodes(vec![]),
            // Naming a subscriber does not make it a partner.
            Scope::Nodes(vec![subscriber, next]),
        ];
        for (k, scope) in scopes.into_iter().enumerate() {
            nodes[i].publish_practice(&format!("city{i}-pub{k}"), (i * 10 + k) as u32, scope);
        }
    }
    let net = Net::synced(nodes);
    no_violations(&net);

    let roles: Vec<_> = net.nodes.iter().map(|n| n.role).collect();
    for (n, node) in net.nodes.iter().enumerate() {
        let mut expected = BTreeSet::new();
        for (o, origin) in net.nodes.iter().enumerate() {
            if o == n {
                continue;
            }
            for (doc_id, p) in &origin.publications {
                if visible_to(&p.scope, node.id, roles[n]) {
                    expected.insert(doc_id.clone());
                    let replica = node.replicas.get(doc_id).expect("replica missing");
                    assert_eq!(replica.origin, origin.id);
                    let mut copy = node.replica_doc(doc_id).unwrap();
                    assert_eq!(
                        sorted(copy.get_heads()),
                        sorted(p.heads.clone()),
                        "{doc_id} at node {n}"
                    );
                }
            }
        }
        let held: BTreeSet<_> = node.replicas.keys().cloned().collect();
        assert_eq!(held, expected, "node {n}");
    }
    // Subscribers hold public publications only: one per city.
    assert_eq!(net.nodes[10].replicas.len(), 10);

    // Every byte on the wire: a message naming a publication travels only
    // between its origin and a node in its scope.
    let mut owner = std::collections::HashMap::new();
    for (o, node) in net.nodes.iter().enumerate() {
        for (doc_id, p) in &node.publications {
            owner.insert(doc_id.clone(), (o, p.scope.clone()));
        }
    }
    for d in &net.log {
        for doc_id in doc_ids_in(&d.msg) {
            let (o, scope) = &owner[doc_id];
            let other = if d.from == *o { d.to } else { d.from };
            assert!(
                d.from == *o || d.to == *o,
                "{doc_id} relayed by a non-origin"
            );
            assert!(
                visible_to(scope, net.nodes[other].id, roles[other]),
                "{doc_id} leaked to node {other} in a {} message",
                d.msg.kind()
            );
        }
    }
}

/// Every version sent produces a Disclosed event with the heads that left.
#[test]
fn every_publication_sent_is_disclosed_with_its_heads() {
    let mut nodes = federation(3, 0);
    let id = nodes[0].publish_practice("p", 1, Scope::Partners);
    let net = Net::synced(nodes);
    let heads = net.nodes[0].publications[&id].heads.clone();
    let disclosed: Vec<_> = net
        .events(0)
        .filter_map(|(peer, e)| match e {
            Event::Disclosed { doc_id, heads } if doc_id == &id => Some((*peer, heads.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(disclosed.len(), 2);
    for (_, h) in disclosed {
        assert_eq!(h, heads);
    }
}

/// Reconnecting after changes: only the changed publications are announced, and
/// the unchanged ones cost no sync message (and, with nothing changed, no
/// inventory entry at all).
#[test]
fn reconnect_sends_only_the_delta() {
    let mut nodes = federation(2, 0);
    let mut ids = Vec::new();
    for k in 0..200 {
        ids.push(nodes[0].publish_practice(&format!("p{k}"), k, Scope::Partners));
    }
    let mut net = Net::synced(nodes);
    no_violations(&net);
    assert_eq!(net.nodes[1].replicas.len(), 200);
    let (_, initial_bytes) = net.traffic_since(0);
    net.disconnect_all();

    // Reconnect with nothing changed: two Resumes, two empty complete batches,
    // two acks.
    let mark = net.log.len();
    net.connect_all();
    net.run();
    let (messages, bytes) = net.traffic_since(mark);
    assert_eq!(net.doc_syncs_since(mark), 0);
    assert!(messages <= 6, "{messages} messages");
    assert!(bytes < 100, "{bytes} bytes");
    net.disconnect_all();

    // Three publications change while apart.
    for id in &ids[10..13] {
        net.nodes[0].edit(id, |doc| {
            doc.put(ROOT, "title", "Revised").unwrap();
        });
    }
    let mark = net.log.len();
    net.connect_all();
    net.run();
    no_violations(&net);
    let entries: Vec<&InventoryEntry> = net.log[mark..]
        .iter()
        .flat_map(|d| match &d.msg {
            SyncMessage::Inventory { entries, .. } => entries.iter().collect(),
            _ => vec![],
        })
        .collect();
    assert_eq!(entries.len(), 3);
    let synced: BTreeSet<_> = net.log[mark..]
        .iter()
        .filter_map(|d| match &d.msg {
            SyncMessage::DocSync { doc_id, .. } => Some(doc_id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(synced, ids[10..13].iter().cloned().collect());
    // About 1.5 round trips per changed doc, using the saved sync state.
    assert!(net.doc_syncs_since(mark) <= 3 * 3);
    let (_, delta_bytes) = net.traffic_since(mark);
    assert!(
        delta_bytes * 20 < initial_bytes,
        "delta {delta_bytes} bytes vs initial {initial_bytes}"
    );
    for id in &ids[10..13] {
        assert_eq!(title(&net.nodes[1].replica_doc(id).unwrap()), "Revised");
    }
}

/// A local change reaches a connected peer in scope at once.
#[test]
fn local_changes_are_pushed_to_connected_peers() {
    let mut net = Net::synced(federation(2, 1));
    let id = net.nodes[0].publish_practice("live", 5, Scope::Public);
    net.local_change(0, &id);
    net.run();
    assert!(net.nodes[1].replicas.contains_key(&id));
    assert!(net.nodes[2].replicas.contains_key(&id));
    net.nodes[0].edit(&id, |doc| {
        doc.put(ROOT, "title", "Edited live").unwrap();
    });
    net.local_change(0, &id);
    net.run();
    no_violations(&net);
    for n in [1, 2] {
        assert_eq!(
            title(&net.nodes[n].replica_doc(&id).unwrap()),
            "Edited live"
        );
        assert!(net.sessions[&(n, 0)].is_idle());
    }
}

/// Builds a DocSync frame for `doc_id` that carries a change made on `copy`,
/// our copy of that document.
fn doc_sync_with_change(doc_id: &DocId, copy: &mut AutoCommit) -> Vec<u8> {
    copy.put(ROOT, "title", "Forged").unwrap();
    let change = copy.get_last_local_change().unwrap().raw_bytes().to_vec();
    let message = sync::Message {
        heads: copy.get_heads(),
        need: vec![],
        have: vec![],
        changes: vec![change].into(),
        flags: None,
        version: sync::MessageVersion::V1,
    }
    .encode();
    SyncMessage::DocSync {
        doc_id: doc_id.clone(),
        message,
    }
    .encode()
}

/// Three partners, synced: node 0 published `ours` and node 2 `third`, both to
/// partners, so node 1 holds a replica of each.
fn three_partners_sharing_ours_and_third() -> (Net, DocId, DocId) {
    let mut nodes = federation(3, 0);
    let ours = nodes[0].publish_practice("ours", 1, Scope::Partners);
    let third = nodes[2].publish_practice("third", 2, Scope::Partners);
    (Net::synced(nodes), ours, third)
}

/// A partner that pushes changes into our publication, or into a third city's
/// publication, is refused with distinct codes and nothing is stored.
#[test]
fn forged_changes_from_a_non_origin_are_rejected_and_not_stored() {
    let (mut net, ours, third) = three_partners_sharing_ours_and_third();
    no_violations(&net);

    // Node 1 pushes a change into node 0's publication.
    let mut copy = net.nodes[1].replica_doc(&ours).unwrap();
    let bytes = doc_sync_with_change(&ours, &mut copy);
    let before = net.nodes[0].publications[&ours].bytes.clone();
    net.inject(1, 0, bytes);
    net.run();
    assert_eq!(net.closed_with(0, 1), Some(ViolationCode::ForgedChange));
    assert_eq!(net.nodes[0].publications[&ours].bytes, before);

    // Node 1 pushes a change into node 2's publication, towards node 0.
    let mut copy = net.nodes[1].replica_doc(&third).unwrap();
    let heads_before = net.nodes[0].replicas[&third].heads.clone();
    let bytes = doc_sync_with_change(&third, &mut copy);
    net.connect(0, 1);
    net.inject(1, 0, bytes);
    net.run();
    assert_eq!(net.closed_with(0, 1), Some(ViolationCode::ForgedChange));
    assert_eq!(net.nodes[0].replicas[&third].heads, heads_before);
    assert_eq!(
        title(&net.nodes[0].replica_doc(&third).unwrap()),
        "Practice 2: language cafe"
    );
    assert_ne!(
        ViolationCode::ForgedChange.as_u32(),
        ViolationCode::NotOrigin.as_u32()
    );
}

/// Announcing someone else's publication, or retracting it, is refused.
#[test]
fn announcing_or_retracting_a_publication_one_did_not_originate_is_refused() {
    let (mut net, ours, third) = three_partners_sharing_ours_and_third();
    let epoch = net.nodes[1].epoch;
    for (doc_id, msg) in [
        (
            &ours,
            SyncMessage::Inventory {
                epoch,
                entries: vec![InventoryEntry {
                    doc_id: ours.clone(),
                    heads: vec![[9; 32]],
                    seq: 99,
                }],
                up_to_seq: 99,
                full: false,
                complete: true,
            },
        ),
        (
            &third,
            SyncMessage::Retract {
                doc_id: third.clone(),
                seq: 99,
            },
        ),
    ] {
        net.connect(0, 1);
        net.run();
        net.inject(1, 0, msg.encode());
        net.run();
        assert_eq!(
            net.closed_with(0, 1),
            Some(ViolationCode::NotOrigin),
            "{doc_id}"
        );
    }
    assert!(net.nodes[0].replicas.contains_key(&third));
}

/// Bytes from the origin that carry a broken document are a violation and
/// nothing of them is stored.
#[test]
fn garbage_changes_from_the_origin_are_a_violation_not_a_panic() {
    let mut nodes = federation(2, 0);
    let id = nodes[1].publish_practice("p", 1, Scope::Partners);
    let mut net = Net::synced(nodes);
    let message = sync::Message {
        heads: vec![],
        need: vec![],
        have: vec![],
        changes: vec![vec![0x85, 0x6f, 0x4a, 0x83, 1, 2, 3, 4, 5, 6, 7]].into(),
        flags: None,
        version: sync::MessageVersion::V1,
    }
    .encode();
    let before = net.nodes[0].replicas[&id].bytes.clone();
    net.inject(
        1,
        0,
        SyncMessage::DocSync {
            doc_id: id.clone(),
            message,
        }
        .encode(),
    );
    net.run();
    assert_eq!(net.closed_with(0, 1), Some(ViolationCode::BadDocument));
    assert_eq!(net.nodes[0].replicas[&id].bytes, before);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Arbitrary bytes, as a frame or inside a DocSync, never panic: they are
    /// a violation or (for a well-formed message) handled.
    #[test]
    fn arbitrary_bytes_never_panic(
        frame in prop::collection::vec(any::<u8>(), 0..256),
        inner in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        let mut nodes = federation(2, 0);
        let id = nodes[1].publish_practice("p", 1, Scope::Partners);
        let mine = nodes[0].publish_practice("m", 2, Scope::Partners);
        let mut net = Net::synced(nodes);
        net.inject(1, 0, frame.clone());
        net.run();
        if SyncMessage::decode(&frame).is_err() {
            prop_assert_eq!(
                net.closed_with(0, 1),
                Some(ViolationCode::MalformedMessage)
            );
        }
        for doc_id in [id, mine] {
            net.connect(0, 1);
            net.run();
            let msg = SyncMessage::DocSync { doc_id, message: inner.clone() }.encode();
            net.inject(1, 0, msg);
            net.run();
        }
    }
}

/// Retraction reaches every replica, which deletes it and confirms; narrowing a
/// scope retracts from the peers that had it; a peer that never saw a
/// publication hears nothing about it.
#[test]
fn retraction_propagates_and_is_confirmed() {
    let mut nodes = federation(3, 1);
    let c = nodes[2].id;
    let public = nodes[0].publish_practice("public", 1, Scope::Public);
    let partners = nodes[0].publish_practice("partners", 2, Scope::Partners);
    let only_c = nodes[0].publish_practice("only-c", 3, Scope::Nodes(vec![c]));
    let mut net = Net::synced(nodes);
    assert!(net.nodes[3].replicas.contains_key(&public));
    assert!(net.nodes[1].replicas.contains_key(&partners));

    let mark = net.log.len();
    net.nodes[0].retract(&public);
    net.local_change(0, &public);
    net.nodes[0].set_scope(&partners, Scope::Nodes(vec![c]));
    net.local_change(0, &partners);
    net.nodes[0].retract(&only_c);
    net.local_change(0, &only_c);
    net.run();
    no_violations(&net);

    for n in 1..4 {
        assert!(!net.nodes[n].replicas.contains_key(&public), "node {n}");
    }
    assert!(!net.nodes[1].replicas.contains_key(&partners));
    assert!(net.nodes[2].replicas.contains_key(&partners));
    assert!(!net.nodes[2].replicas.contains_key(&only_c));
    let confirmed: BTreeSet<_> = net
        .events(0)
        .filter_map(|(_, e)| match e {
            Event::RetractionConfirmed { doc_id, peer } => Some((doc_id.clone(), *peer)),
            _ => None,
        })
        .collect();
    let ids: Vec<_> = net.nodes.iter().map(|n| n.id).collect();
    let want: BTreeSet<_> = [
        (public.clone(), ids[1]),
        (public.clone(), ids[2]),
        (public.clone(), ids[3]),
        (partners.clone(), ids[1]),
        (only_c.clone(), ids[2]),
    ]
    .into_iter()
    .collect();
    assert_eq!(confirmed, want);
    assert!(net
        .events(1)
        .any(|(_, e)| matches!(e, Event::RetractionReceived { doc_id } if doc_id == &partners)));
    // Node 1 never saw only-c, and no message about it went there afterwards either.
    for d in &net.log[mark..] {
        if d.to == 1 || d.from == 1 {
            assert!(!doc_ids_in(&d.msg).contains(&&only_c));
        }
    }
}

/// A retraction made while a peer is away reaches it on reconnect.
#[test]
fn retraction_while_disconnected_arrives_on_reconnect() {
    let mut nodes = federation(2, 0);
    let id = nodes[0].publish_practice("p", 1, Scope::Partners);
    let mut net = Net::synced(nodes);
    net.disconnect_all();
    net.nodes[0].retract(&id);
    net.connect_all();
    net.run();
    no_violations(&net);
    assert!(net.nodes[1].replicas.is_empty());
    assert!(net
        .events(0)
        .any(|(_, e)| matches!(e, Event::RetractionConfirmed { doc_id, .. } if doc_id == &id)));
}

/// Edits made concurrently by two editing sessions (two actors) at the origin
/// merge there, and the replica ends with both, on the same two heads.
#[test]
fn concurrent_edits_from_two_origin_actors_merge() {
    let mut nodes = federation(2, 0);
    let id = nodes[0].publish_practice("p", 1, Scope::Partners);
    let mut net = Net::synced(nodes);

    net.nodes[0].edit(&id, |doc| {
        let mut other = doc.fork();
        doc.put(ROOT, "title", "From session one").unwrap();
        other.put(ROOT, "note", "From session two").unwrap();
        doc.merge(&mut other).unwrap();
    });
    assert_eq!(net.nodes[0].publications[&id].heads.len(), 2);
    net.local_change(0, &id);
    net.run();
    no_violations(&net);
    let copy = net.nodes[1].replica_doc(&id).unwrap();
    assert_eq!(title(&copy), "From session one");
    assert!(copy.get(ROOT, "note").unwrap().is_some());
    assert_eq!(
        sorted(net.nodes[1].replicas[&id].heads.clone()),
        sorted(net.nodes[0].publications[&id].heads.clone())
    );
}

/// With saved sync states reloaded, catching up on one small edit of a large
/// document sends the edit, not the document.
#[test]
fn saved_sync_state_gives_a_small_catch_up() {
    let mut nodes = federation(2, 0);
    let mut doc = practice_doc(1);
    // Content that does not compress, so the saved size is honest.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..50 {
        let noise: String = (0..200)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                format!("{:x}", x % 16)
            })
            .collect();
        doc.put(ROOT, format!("field{i}"), noise).unwrap();
        // Many changes, as a document edited over time has (with one change,
        // Automerge rightly sends the whole document when half of it is new).
        doc.commit();
    }
    let saved_len = doc.save().len();
    let id = nodes[0].publish("big", Scope::Partners, &mut doc);
    let mut net = Net::synced(nodes);
    net.disconnect_all();
    assert!(net.nodes[1]
        .states
        .contains_key(&(net.nodes[0].id, id.clone())));

    net.nodes[0].edit(&id, |doc| {
        doc.put(ROOT, "title", "t2").unwrap();
    });
    let mark = net.log.len();
    net.connect_all();
    net.run();
    let (_, bytes) = net.traffic_since(mark);
    assert!(
        bytes * 5 < saved_len,
        "catch-up {bytes} bytes for a {saved_len}-byte document"
    );
    assert_eq!(title(&net.nodes[1].replica_doc(&id).unwrap()), "t2");
}

/// Passes `from`'s next sync message, if it has one, to `to` (encoded and
/// decoded, as on a wire); returns the message's encoded length.
fn pass_message(
    from: &mut AutoCommit,
    from_state: &mut sync::State,
    to: &mut AutoCommit,
    to_state: &mut sync::State,
) -> Option<usize> {
    let message = from.sync().generate_sync_message(from_state)?;
    let enc = message.encode();
    to.sync()
        .receive_sync_message(to_state, sync::Message::decode(&enc).unwrap())
        .unwrap();
    Some(enc.len())
}

/// Measures an initial sync of `n` documents: bytes on the wire against the sum
/// of the documents' saved sizes, and time. Run with
/// `cargo test --release -p labnet-node sync::tests::measure -- --ignored --nocapture`.
#[test]
#[ignore = "measurement, not a check"]
fn measure_initial_sync_of_1000_docs() {
    let n = 1000;
    let mut nodes = federation(2, 0);
    let mut saved_bytes = 0;
    for k in 0..n {
        let mut doc = practice_doc(k);
        saved_bytes += doc.save().len();
        nodes[0].publish(&format!("p{k}"), Scope::Partners, &mut doc);
    }
    let mut net = Net::new(nodes);
    let start = std::time::Instant::now();
    net.connect_all();
    let messages = net.run();
    let elapsed = start.elapsed();
    let (_, wire_bytes) = net.traffic_since(0);
    assert_eq!(net.nodes[1].replicas.len(), n as usize);

    // The floor: plain in-memory Automerge sync of the same documents.
    let docs: Vec<AutoCommit> = (0..n).map(practice_doc).collect();
    let start = std::time::Instant::now();
    let mut plain_bytes = 0;
    for mut a in docs {
        let mut b = AutoCommit::new();
        let (mut sa, mut sb) = (sync::State::new(), sync::State::new());
        loop {
            let m1 = pass_message(&mut b, &mut sb, &mut a, &mut sa);
            let m2 = pass_message(&mut a, &mut sa, &mut b, &mut sb);
            plain_bytes += m1.unwrap_or(0) + m2.unwrap_or(0);
            if m1.is_none() && m2.is_none() {
                break;
            }
        }
    }
    let plain = start.elapsed();
    println!(
        "{n} docs: {messages} messages, {wire_bytes} bytes on the wire, {saved_bytes} bytes saved \
         ({:.2}x); {elapsed:?} vs plain Automerge sync {plain:?} ({plain_bytes} bytes)",
        wire_bytes as f64 / saved_bytes as f64
    );
}

/// A snapshot nobody asked for, or one that does not load, is a violation and
/// is not stored.
#[test]
fn unwanted_or_broken_snapshots_are_refused() {
    let mut nodes = federation(2, 0);
    nodes[1].publish_practice("p", 1, Scope::Partners);
    let mut net = Net::synced(nodes);
    let mut other = practice_doc(2);
    let unasked = SyncMessage::Snapshot {
        doc_id: DocId::new("never-announced").unwrap(),
        bytes: other.save(),
    };
    net.inject(1, 0, unasked.encode());
    net.run();
    assert_eq!(
        net.closed_with(0, 1),
        Some(ViolationCode::UnexpectedMessage)
    );
    assert!(!net.nodes[0]
        .replicas
        .contains_key(&DocId::new("never-announced").unwrap()));

    // Announced and wanted, but the bytes are broken: hand-feed the session.
    let mut fresh = federation(2, 0);
    let b = fresh.pop().unwrap();
    let a = fresh.pop().unwrap();
    let info = PeerInfo {
        local: a.id,
        peer: b.id,
        peer_role: Role::Partner,
    };
    let mut session = Session::new(info, SessionConfig::default(), &a);
    let id = labnet_protocol::sync::publication_id(b.id, "q").unwrap();
    let inventory = SyncMessage::Inventory {
        epoch: 1,
        entries: vec![InventoryEntry {
            doc_id: id.clone(),
            heads: vec![[7; 32]],
            seq: 1,
        }],
        up_to_seq: 1,
        full: true,
        complete: true,
    };
    session.handle_message(&a, &inventory.encode());
    let mut wanted = false;
    while let Some(bytes) = session.poll_transmit() {
        wanted |= matches!(
            SyncMessage::decode(&bytes),
            Ok(SyncMessage::WantSnapshots { doc_ids }) if doc_ids == vec![id.clone()]
        );
    }
    assert!(wanted);
    let broken = SyncMessage::Snapshot {
        doc_id: id,
        bytes: vec![0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 1, 2, 3],
    };
    session.handle_message(&a, &broken.encode());
    assert_eq!(
        session.closed_by().map(|(c, _)| c),
        Some(ViolationCode::BadDocument)
    );
    while let Some(effect) = session.poll_effect() {
        assert!(
            !matches!(effect, Effect::SaveReplica { .. }),
            "stored {effect:?}"
        );
    }
}
