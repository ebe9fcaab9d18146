//! A deterministic in-memory network of sync sessions, for tests.
//!
//! Each [`MemNode`] is a node's store held in memory (its publications with
//! their signed statements and index, the copies and statements it holds of
//! others', confirmations, deliveries, resume points) and implements
//! [`SyncView`]; it applies effects the way the SQLite store does. Every node
//! has a real Ed25519 key, so statements are really signed and verified.
//!
//! A [`Net`] wires sessions along links and delivers bytes one message at a
//! time, in order per direction, recording every message it delivers so tests
//! can inspect exactly what crossed the "wire". As the driver does, it tells a
//! node's other sessions when a delivery stored something they relay. No
//! sockets, no threads; the clock is a field tests move.
//!
//! Here: the keys, the nodes and how tests build their contents; in
//! [`store`], a node as its sessions see it; in [`net`], the network.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use automerge::{ActorId, AutoCommit, ChangeHash};
use labnet_config::Role;
use labnet_protocol::statement::{ScopeClass, SignedStatement};
use labnet_protocol::sync::{DocId, ResumePoint};
use labnet_protocol::NodeId;

use super::{Effect, Event, Scope};
use crate::identity::SeededKey;
use crate::share::publication::{edit_sample, sample_body, sample_doc};

mod net;
mod store;

pub(crate) use net::{Delivered, Net};

/// A test node's key: deterministic from its number.
pub(crate) type TestKey = SeededKey;

/// Test node `n`'s key. The seed layout (`n` little-endian in the first four
/// bytes, 0x5a in the last) stays as it is: a simulation seed replays the
/// same run only with the same keys.
pub(crate) fn test_key(n: u32) -> TestKey {
    let mut seed = [0u8; 32];
    seed[..4].copy_from_slice(&n.to_le_bytes());
    seed[31] = 0x5a;
    SeededKey::from_seed(seed)
}

/// The NodeId of test node `n`.
pub(crate) fn node_id(n: u32) -> NodeId {
    test_key(n).node_id()
}

/// One of our publications, stored as bytes like the SQLite store keeps it.
pub(crate) struct MemPublication {
    pub(crate) bytes: Vec<u8>,
    pub(crate) scope: Scope,
    pub(crate) seq: u64,
    pub(crate) heads: Vec<ChangeHash>,
    pub(crate) retracted: bool,
    pub(crate) statement: Vec<u8>,
}

/// What a node holds of another origin's publication.
pub(crate) struct MemHeld {
    pub(crate) origin: NodeId,
    pub(crate) version: u64,
    pub(crate) class: ScopeClass,
    pub(crate) retracted: bool,
    pub(crate) statement: Vec<u8>,
    pub(crate) via: NodeId,
    pub(crate) relay_seq: Option<u64>,
    /// The copy: `None` for a tombstone.
    pub(crate) bytes: Option<Vec<u8>>,
    pub(crate) heads: Vec<ChangeHash>,
}

/// A kept confirmation.
pub(crate) struct MemConfirmation {
    pub(crate) version: u64,
    pub(crate) signed: Vec<u8>,
    pub(crate) forwarded: bool,
}

/// A node's store, in memory.
pub(crate) struct MemNode {
    pub(crate) id: NodeId,
    pub(crate) role: Role,
    pub(crate) key: std::sync::Arc<TestKey>,
    pub(crate) epoch: u64,
    pub(crate) next_seq: u64,
    pub(crate) publications: BTreeMap<DocId, MemPublication>,
    pub(crate) held: BTreeMap<DocId, MemHeld>,
    pub(crate) confirmations: BTreeMap<(DocId, NodeId), MemConfirmation>,
    pub(crate) deliveries: HashSet<(NodeId, DocId)>,
    pub(crate) resume: HashMap<NodeId, ResumePoint>,
    pub(crate) acked: HashMap<NodeId, u64>,
    /// Reads fail while this is set (a broken disk, for tests).
    pub(crate) reads_fail: bool,
    /// (peer, event) in the order they happened.
    pub(crate) events: Vec<(NodeId, Event)>,
}

impl MemNode {
    pub(crate) fn new(n: u32, role: Role) -> MemNode {
        let key = test_key(n);
        MemNode {
            id: key.node_id(),
            role,
            key: std::sync::Arc::new(key),
            epoch: 1000 + u64::from(n),
            next_seq: 0,
            publications: BTreeMap::new(),
            held: BTreeMap::new(),
            confirmations: BTreeMap::new(),
            deliveries: HashSet::new(),
            resume: HashMap::new(),
            acked: HashMap::new(),
            reads_fail: false,
            events: Vec::new(),
        }
    }

    /// The Automerge actor of this node's own changes: fixed, so a test
    /// (and a simulation seed) produces the same change hashes every run.
    pub(crate) fn actor(&self) -> ActorId {
        let mut bytes = b"labnet-test-".to_vec();
        bytes.extend_from_slice(&self.epoch.to_be_bytes());
        ActorId::from(bytes)
    }

    fn bump(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// Signs the statement of one of our publications as it is now.
    fn sign(&self, doc_id: &DocId) -> Vec<u8> {
        let p = &self.publications[doc_id];
        let class = crate::store::scope_class_of(&p.scope.to_text());
        self.key
            .sign_version(doc_id, p.seq, &p.heads, class, p.retracted)
    }

    /// Publishes a document as `name`: its id is `<this node>:<name>`.
    pub(crate) fn publish(&mut self, name: &str, scope: Scope, doc: &mut AutoCommit) -> DocId {
        let doc_id = labnet_protocol::sync::publication_id(self.id, name).unwrap();
        let seq = self.bump();
        self.publications.insert(
            doc_id.clone(),
            MemPublication {
                bytes: doc.save(),
                scope,
                seq,
                heads: doc.get_heads(),
                retracted: false,
                statement: Vec::new(),
            },
        );
        let statement = self.sign(&doc_id);
        self.publications.get_mut(&doc_id).unwrap().statement = statement;
        doc_id
    }

    /// Publishes a practice-sized publication (`seed` varies its text) as `name`.
    pub(crate) fn publish_practice(&mut self, name: &str, seed: u32, scope: Scope) -> DocId {
        let mut doc = sample_doc(&sample_body(self.id, name, seed));
        self.publish(name, scope, &mut doc)
    }

    /// Changes one of our publications through `change`, under a new sequence
    /// number and a new signed statement (as every write to the index is).
    fn update(&mut self, doc_id: &DocId, change: impl FnOnce(&mut MemPublication)) {
        let seq = self.bump();
        let publication = self.publications.get_mut(doc_id).unwrap();
        change(publication);
        publication.seq = seq;
        let statement = self.sign(doc_id);
        self.publications.get_mut(doc_id).unwrap().statement = statement;
    }

    /// Gives one of our publications a new description (one change).
    pub(crate) fn edit(&mut self, doc_id: &DocId, text: &str) {
        let actor = self.actor();
        self.update(doc_id, |publication| {
            let mut doc = AutoCommit::load(&publication.bytes).unwrap();
            doc.set_actor(actor);
            edit_sample(&mut doc, text);
            publication.bytes = doc.save();
            publication.heads = doc.get_heads();
        });
    }

    /// Gives one of our publications a new scope.
    pub(crate) fn set_scope(&mut self, doc_id: &DocId, scope: Scope) {
        self.update(doc_id, |publication| publication.scope = scope);
    }

    /// Retracts one of our publications.
    pub(crate) fn retract(&mut self, doc_id: &DocId) {
        self.update(doc_id, |publication| publication.retracted = true);
    }

    /// Our copy of another origin's publication, loaded.
    pub(crate) fn replica_doc(&self, doc_id: &DocId) -> Option<AutoCommit> {
        self.held
            .get(doc_id)
            .and_then(|h| h.bytes.as_ref())
            .map(|b| AutoCommit::load(b).unwrap())
    }

    /// Whether we hold a live copy of `doc_id` with exactly `heads`.
    pub(crate) fn holds(&self, doc_id: &DocId, heads: &[ChangeHash]) -> bool {
        let mut want = heads.to_vec();
        want.sort();
        self.held
            .get(doc_id)
            .is_some_and(|h| h.bytes.is_some() && h.heads == want)
    }

    /// Whether we hold a live copy of `doc_id` at exactly `version`.
    pub(crate) fn holds_version(&self, doc_id: &DocId, version: u64) -> bool {
        self.held
            .get(doc_id)
            .is_some_and(|h| h.bytes.is_some() && h.version == version)
    }

    /// The ids of the live copies we hold.
    pub(crate) fn copies(&self) -> BTreeSet<DocId> {
        self.held
            .iter()
            .filter(|(_, h)| h.bytes.is_some())
            .map(|(id, _)| id.clone())
            .collect()
    }

    pub(crate) fn apply(&mut self, effect: Effect) {
        let Ok(()) = effect.apply(self);
    }
}

/// Node `i` of a federation: partners first, then subscribers.
pub(crate) fn federation(partners: u32, subscribers: u32) -> Vec<MemNode> {
    (0..partners)
        .map(|n| MemNode::new(n, Role::Partner))
        .chain((partners..partners + subscribers).map(|n| MemNode::new(n, Role::Subscriber)))
        .collect()
}

/// The description of a publication document, for checking content arrived.
pub(crate) fn description(doc: &AutoCommit) -> String {
    autosurgeon::hydrate::<_, crate::share::PublicationBody>(doc)
        .map(|b| b.practice.description)
        .unwrap_or_default()
}

/// Decodes a signed statement (tests only; panics on bad bytes).
pub(crate) fn statement_of(bytes: &[u8]) -> SignedStatement {
    SignedStatement::decode(bytes).unwrap()
}
