//! Deterministic multi-node tests of the sync core: no sockets, a clock the
//! tests move.
//!
//! Each test builds a [`Net`] of in-memory nodes with real keys, wires
//! sessions along links, and runs until no bytes are in flight; then it checks
//! what every node holds and, where scope is at stake, every message that
//! crossed the wire. The adversarial tests play a peer by injecting bytes.
//!
//! By topic: [`convergence`], [`adversary`], [`scale`]; here, what they share.

use automerge::ChangeHash;
use labnet_protocol::sync::{DocId, Inventory, SyncMessage};

use super::harness::{statement_of, Delivered, MemNode, Net};

mod adversary;
mod convergence;
mod scale;

/// Every publication a message names.
fn doc_ids_in(msg: &SyncMessage) -> Vec<DocId> {
    match msg {
        SyncMessage::Inventory(Inventory { entries, .. }) => {
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

/// Checks every publication every message of `net`'s log names against
/// `may_cross`: whether the message may carry it from `d.from` to `d.to`.
fn check_crossings(net: &Net, may_cross: impl Fn(&Delivered, &DocId) -> bool) {
    for d in &net.log {
        for doc_id in doc_ids_in(&d.msg) {
            assert!(
                may_cross(d, &doc_id),
                "{doc_id} crossed {} → {} in a {} message, outside its scope",
                d.from,
                d.to,
                d.msg.kind()
            );
        }
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

/// `nodes` on a line, each connected to the next, run until quiet.
fn line(nodes: Vec<MemNode>) -> Net {
    let mut net = Net::new(nodes);
    for n in 1..net.nodes.len() {
        net.connect(n - 1, n);
    }
    net.run();
    net
}
