//! Scripted regression tests for the bugs the simulation found, each named
//! after what it guards and giving the seed that first showed it (seeds
//! replay the schedule of the simulation as it was then, so the scripts
//! here are what stays).

use automerge::ChangeHash;
use labnet_config::Role;
use labnet_protocol::statement::ScopeClass;
use labnet_protocol::sync::{DocId, SyncMessage};

use crate::store::Store;
use crate::sync::harness::{federation, node_id, MemNode, Net};
use crate::sync::{Effect, ReceivedStatement, ReplicaData, SavedVersion};
use crate::trust::Scope;

/// The effect a session produces to store `origin`'s publication as it is
/// now, delivered by `via`.
fn save_effect(origin: &MemNode, doc_id: &DocId, via: &MemNode) -> Effect {
    let p = &origin.publications[doc_id];
    let statement = ReceivedStatement {
        origin: origin.id,
        version: p.seq,
        scope_class: ScopeClass::Public,
        signed: p.statement.clone(),
        via: via.id,
    };
    if p.retracted {
        Effect::SaveTombstone {
            doc_id: doc_id.clone(),
            statement,
        }
    } else {
        Effect::SaveVersion(SavedVersion {
            doc_id: doc_id.clone(),
            heads: p.heads.clone(),
            data: ReplicaData::Snapshot(p.bytes.clone()),
            statement,
        })
    }
}

/// Steps `net` until a message that `is` is on the wire from `from` to `to`,
/// and takes what is in flight there off it; nothing if none ever is.
fn step_until_sent(
    net: &mut Net,
    from: usize,
    to: usize,
    is: impl Fn(&SyncMessage) -> bool,
) -> Vec<Vec<u8>> {
    while net.step() {
        let sent = net.take_in_flight(from, to);
        if sent
            .iter()
            .any(|b| SyncMessage::decode(b).is_ok_and(|m| is(&m)))
        {
            return sent;
        }
        for bytes in sent {
            net.inject(from, to, bytes);
        }
    }
    Vec::new()
}

fn sorted(mut heads: Vec<ChangeHash>) -> Vec<ChangeHash> {
    heads.sort();
    heads
}

/// Seed 476: two sessions of one node read the store, each sees nothing
/// newer than v1 and takes a delivery (v3 from the origin, v1 from a relay);
/// they persist in the other order. The older one must not take the copy
/// back behind the resume point that says v3 is held, nor bring back a
/// retracted copy over its tombstone. In memory and in SQLite.
#[test]
fn an_older_version_persisted_after_a_newer_one_is_skipped() {
    let mut origin = MemNode::new(0, Role::Partner);
    let relay = MemNode::new(1, Role::Partner);
    let doc_id = origin.publish_practice("p", 1, Scope::Public);
    let old = save_effect(&origin, &doc_id, &relay);
    origin.edit(&doc_id, "the newer version");
    let new = save_effect(&origin, &doc_id, &origin);
    let new_heads = sorted(origin.publications[&doc_id].heads.clone());
    origin.retract(&doc_id);
    let tombstone = save_effect(&origin, &doc_id, &origin);

    let mut node = MemNode::new(2, Role::Partner);
    node.apply(new.clone());
    node.apply(old.clone());
    assert!(
        node.holds(&doc_id, &new_heads),
        "the older version replaced the newer"
    );
    node.apply(tombstone.clone());
    node.apply(old.clone());
    assert!(node.copies().is_empty(), "a retracted copy came back");

    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut store = Store::open(dir.path()).expect("a new store");
    let version = |store: &Store| {
        store
            .statement(doc_id.as_str())
            .expect("reads")
            .map(|s| (s.version, s.retracted))
    };
    store.batch(|b| new.apply(b)).expect("stores v3");
    store.batch(|b| old.apply(b)).expect("skips v1");
    let (_, replica_heads) = store
        .replica_entry(doc_id.as_str())
        .expect("reads")
        .expect("a copy");
    assert_eq!(sorted(replica_heads), new_heads);
    assert_eq!(
        version(&store),
        Some((origin.publications[&doc_id].seq - 1, false))
    );
    store
        .batch(|b| tombstone.apply(b))
        .expect("stores the tombstone");
    store.batch(|b| old.apply(b)).expect("skips v1");
    assert_eq!(
        version(&store),
        Some((origin.publications[&doc_id].seq, true))
    );
    assert!(store
        .replica_entry(doc_id.as_str())
        .expect("reads")
        .is_none());
}

/// Seed 39: the origin narrows a publication out of a partner's scope and,
/// before the partner's `WithdrawAck` is back, edits it again. It must not
/// withdraw it a second time: the second ack would acknowledge nothing, and
/// the origin would close its honest partner for it.
#[test]
fn a_publication_is_withdrawn_once_until_acknowledged() {
    let mut nodes = federation(2, 0);
    let doc_id = nodes[0].publish_practice("p", 1, Scope::Partners);
    let mut net = Net::synced(nodes);
    assert_eq!(net.nodes[1].copies().len(), 1);
    net.nodes[0].set_scope(&doc_id, Scope::Nodes(vec![node_id(5)]));
    net.local_change(0);
    net.nodes[0].edit(&doc_id, "edited while the withdrawal is in flight");
    net.local_change(0);
    net.run();
    assert_eq!(net.closed_with(0, 1), None);
    assert_eq!(net.closed_with(1, 0), None);
    assert!(net.nodes[1].copies().is_empty());
    assert!(!net.nodes[0].deliveries.contains(&(net.nodes[1].id, doc_id)));
}

/// Seed 18: the origin announces a publication, and before the partner's
/// `Want` for it arrives, re-scopes it away from that partner (or retracts
/// it, never delivered). The `Want` is honest: it gets a withdrawal, not a
/// close for asking about an unknown document; and the partner ends with
/// nothing of it.
#[test]
fn a_want_raced_by_a_re_scope_is_answered_with_a_withdrawal() {
    for retract in [false, true] {
        let mut nodes = federation(2, 0);
        let doc_id = nodes[0].publish_practice("p", 1, Scope::Partners);
        let mut net = Net::new(nodes);
        net.connect(0, 1);
        net.advance(std::time::Duration::ZERO);
        // Run until the partner's Want is on the wire, then act before it lands.
        let to_origin = step_until_sent(&mut net, 1, 0, |m| matches!(m, SyncMessage::Want { .. }));
        assert!(!to_origin.is_empty(), "the partner never asked");
        for bytes in to_origin {
            net.inject(1, 0, bytes);
        }
        if retract {
            net.nodes[0].retract(&doc_id);
        } else {
            net.nodes[0].set_scope(&doc_id, Scope::Nodes(vec![node_id(5)]));
        }
        net.run();
        net.local_change(0);
        net.run();
        assert_eq!(net.closed_with(0, 1), None, "retract: {retract}");
        assert_eq!(net.closed_with(1, 0), None, "retract: {retract}");
        assert!(net.nodes[1]
            .held
            .get(&doc_id)
            .is_none_or(|h| h.bytes.is_none()));
        assert!(net.nodes[1].copies().is_empty());
    }
}

/// Seed 441: in one step (the driver persists after all of a step's
/// inputs) a partner takes the delivery of a version and then the
/// announcement of its retraction. The view does not show the copy yet; the
/// session must still see that it holds one, fetch the retraction, delete
/// the copy and confirm, rather than acknowledge the retraction as "never
/// held" and keep the copy for good. The same for a withdrawal.
#[test]
fn a_retraction_or_withdrawal_in_the_step_that_stored_the_copy_is_applied() {
    for withdraw in [false, true] {
        let mut net = Net::new(federation(2, 0));
        let doc_id = net.nodes[0].publish_practice("p", 1, Scope::Partners);
        net.connect(0, 1);
        net.advance(std::time::Duration::ZERO);
        // Until the origin's Deliver is on the wire towards the partner.
        let delivering = |m: &SyncMessage| matches!(m, SyncMessage::Deliver { .. });
        let mut to_partner = step_until_sent(&mut net, 0, 1, delivering);
        assert!(!to_partner.is_empty(), "the origin never delivered");
        if withdraw {
            net.nodes[0].set_scope(&doc_id, Scope::Nodes(vec![node_id(5)]));
        } else {
            net.nodes[0].retract(&doc_id);
        }
        net.local_change(0);
        net.advance(std::time::Duration::ZERO);
        to_partner.extend(net.take_in_flight(0, 1));
        assert!(to_partner.iter().any(|b| matches!(
            SyncMessage::decode(b),
            Ok(SyncMessage::Inventory { .. } | SyncMessage::Withdraw { .. })
        )));
        // One step of the partner: every frame, then one persist.
        let now = net.now;
        let session = net
            .sessions
            .get_mut(&(1, 0))
            .expect("the partner's session");
        for bytes in &to_partner {
            session.handle_message(&net.nodes[1], now, bytes);
        }
        net.advance(std::time::Duration::ZERO);
        net.run();
        assert_eq!(net.closed_with(0, 1), None);
        assert_eq!(net.closed_with(1, 0), None);
        assert!(
            net.nodes[1].copies().is_empty(),
            "withdraw: {withdraw}: the copy stayed"
        );
        if !withdraw {
            assert!(net.nodes[0]
                .confirmations
                .contains_key(&(doc_id.clone(), net.nodes[1].id)));
        }
    }
}
