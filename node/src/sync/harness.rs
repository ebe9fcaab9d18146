//! A deterministic in-memory network of sync sessions, for tests.
//!
//! Each [`MemNode`] is a node's store held in memory (publications with their
//! index, replicas, sync states, resume points) and implements [`SyncView`]; it
//! applies effects the way the SQLite driver will. A [`Net`] wires sessions
//! between node pairs and delivers bytes one message at a time, in order per
//! direction, recording every message it delivers so tests can inspect exactly
//! what crossed the "wire". No sockets, no clock, no threads.

use std::collections::{BTreeMap, HashMap, VecDeque};

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ChangeHash, ObjType, ReadDoc, ROOT};
use labnet_config::Role;
use labnet_protocol::close::ViolationCode;
use labnet_protocol::sync::{DocId, ResumePoint, SyncMessage};
use labnet_protocol::NodeId;

use super::{
    Effect, EffectSink, Event, OriginView, PeerInfo, PublicationEntry, ReplicaData, ReplicaEntry,
    ReplicaView, Scope, Session, SessionConfig, SyncView, ViewError,
};

/// One of our publications, stored as bytes like the SQLite store keeps it.
pub(crate) struct MemPublication {
    pub(crate) bytes: Vec<u8>,
    pub(crate) scope: Scope,
    pub(crate) seq: u64,
    pub(crate) heads: Vec<ChangeHash>,
    pub(crate) retracted: bool,
}

impl MemPublication {
    /// The publication's row in the index, as the SQLite store reads it.
    fn entry(&self, doc_id: &DocId) -> PublicationEntry {
        PublicationEntry {
            doc_id: doc_id.clone(),
            seq: self.seq,
            scope: self.scope.clone(),
            heads: self.heads.clone(),
            retracted: self.retracted,
        }
    }
}

/// A copy of another node's publication: snapshot plus appended chunks.
pub(crate) struct MemReplica {
    pub(crate) origin: NodeId,
    pub(crate) bytes: Vec<u8>,
    pub(crate) heads: Vec<ChangeHash>,
}

/// A node's store, in memory.
pub(crate) struct MemNode {
    pub(crate) id: NodeId,
    pub(crate) role: Role,
    pub(crate) epoch: u64,
    pub(crate) next_seq: u64,
    pub(crate) publications: BTreeMap<DocId, MemPublication>,
    pub(crate) replicas: BTreeMap<DocId, MemReplica>,
    pub(crate) states: HashMap<(NodeId, DocId), Vec<u8>>,
    pub(crate) resume: HashMap<NodeId, ResumePoint>,
    pub(crate) acked: HashMap<NodeId, u64>,
    /// (peer, event) in the order they happened.
    pub(crate) events: Vec<(NodeId, Event)>,
}

pub(crate) fn node_id(n: u32) -> NodeId {
    NodeId::from_public_key(&n.to_le_bytes())
}

/// A practice-sized publication: title, ~1 KB description, a few indicators.
pub(crate) fn practice_doc(seed: u32) -> AutoCommit {
    let mut doc = AutoCommit::new();
    doc.put(ROOT, "title", format!("Practice {seed}: language cafe"))
        .unwrap();
    let text = doc.put_object(ROOT, "description", ObjType::Text).unwrap();
    let body: String = (0..20)
        .map(|i| format!("Step {i} of practice {seed}: mentors meet newcomers. "))
        .collect();
    doc.splice_text(&text, 0, 0, &body[..body.len().min(1000)])
        .unwrap();
    let indicators = doc.put_object(ROOT, "indicators", ObjType::Map).unwrap();
    doc.put(&indicators, "participants", i64::from(seed % 97 + 10))
        .unwrap();
    doc.put(&indicators, "target", 120_i64).unwrap();
    doc.put(&indicators, "month", "2025-03").unwrap();
    doc
}

impl MemNode {
    pub(crate) fn new(n: u32, role: Role) -> MemNode {
        MemNode {
            id: node_id(n),
            role,
            epoch: 1000 + u64::from(n),
            next_seq: 0,
            publications: BTreeMap::new(),
            replicas: BTreeMap::new(),
            states: HashMap::new(),
            resume: HashMap::new(),
            acked: HashMap::new(),
            events: Vec::new(),
        }
    }

    fn bump(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// Publishes (or replaces the content of) a publication. Its id is
    /// `<this node>:<name>`, as publication ids are (see `publication_id`).
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
            },
        );
        doc_id
    }

    /// Publishes [`practice_doc`]`(seed)` as `name`.
    pub(crate) fn publish_practice(&mut self, name: &str, seed: u32, scope: Scope) -> DocId {
        let mut doc = practice_doc(seed);
        self.publish(name, scope, &mut doc)
    }

    /// Changes one of our publications through `change`, under a new sequence
    /// number (as every write to the index is).
    fn update(&mut self, doc_id: &DocId, change: impl FnOnce(&mut MemPublication)) {
        let seq = self.bump();
        let publication = self.publications.get_mut(doc_id).unwrap();
        change(publication);
        publication.seq = seq;
    }

    /// Edits one of our publications through `edit`.
    pub(crate) fn edit(&mut self, doc_id: &DocId, edit: impl FnOnce(&mut AutoCommit)) {
        self.update(doc_id, |publication| {
            let mut doc = AutoCommit::load(&publication.bytes).unwrap();
            edit(&mut doc);
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

    pub(crate) fn replica_doc(&self, doc_id: &DocId) -> Option<AutoCommit> {
        self.load_replica(doc_id).unwrap()
    }

    pub(crate) fn apply(&mut self, effect: Effect) {
        let Ok(()) = effect.apply(self);
    }
}

impl EffectSink for MemNode {
    type Error = std::convert::Infallible;

    fn save_replica(
        &mut self,
        doc_id: &DocId,
        origin: NodeId,
        heads: &[ChangeHash],
        data: &ReplicaData,
    ) -> Result<(), Self::Error> {
        match data {
            ReplicaData::Snapshot(bytes) => {
                let replica = MemReplica {
                    origin,
                    bytes: bytes.clone(),
                    heads: heads.to_vec(),
                };
                self.replicas.insert(doc_id.clone(), replica);
            }
            ReplicaData::Incremental(chunk) => {
                let replica = self.replicas.get_mut(doc_id).unwrap();
                assert_eq!(replica.origin, origin);
                replica.bytes.extend_from_slice(chunk);
                replica.heads = heads.to_vec();
            }
        }
        Ok(())
    }

    fn delete_replica(&mut self, doc_id: &DocId) -> Result<(), Self::Error> {
        self.replicas.remove(doc_id);
        self.states.retain(|(_, d), _| d != doc_id);
        Ok(())
    }

    fn save_sync_state(
        &mut self,
        peer: NodeId,
        doc_id: &DocId,
        state: &[u8],
    ) -> Result<(), Self::Error> {
        self.states.insert((peer, doc_id.clone()), state.to_vec());
        Ok(())
    }

    fn delete_sync_state(&mut self, peer: NodeId, doc_id: &DocId) -> Result<(), Self::Error> {
        self.states.remove(&(peer, doc_id.clone()));
        Ok(())
    }

    fn save_resume_point(&mut self, origin: NodeId, point: ResumePoint) -> Result<(), Self::Error> {
        self.resume.insert(origin, point);
        Ok(())
    }

    fn save_acked_seq(&mut self, peer: NodeId, _epoch: u64, seq: u64) -> Result<(), Self::Error> {
        self.acked.insert(peer, seq);
        Ok(())
    }
}

impl OriginView for MemNode {
    fn index_epoch(&self) -> u64 {
        self.epoch
    }

    fn publications_after(&self, after_seq: u64, limit: usize) -> Vec<PublicationEntry> {
        let mut rows: Vec<PublicationEntry> = self
            .publications
            .iter()
            .filter(|(_, p)| p.seq > after_seq)
            .map(|(id, p)| p.entry(id))
            .collect();
        rows.sort_by_key(|r| r.seq);
        rows.truncate(limit);
        rows
    }

    fn publication(&self, doc_id: &DocId) -> Option<PublicationEntry> {
        self.publications.get(doc_id).map(|p| p.entry(doc_id))
    }

    fn load_publication(&self, doc_id: &DocId) -> Result<Option<AutoCommit>, ViewError> {
        match self.publications.get(doc_id) {
            Some(p) if !p.retracted => Ok(Some(AutoCommit::load(&p.bytes)?)),
            _ => Ok(None),
        }
    }
}

impl ReplicaView for MemNode {
    fn replica(&self, doc_id: &DocId) -> Option<ReplicaEntry> {
        self.replicas.get(doc_id).map(|r| ReplicaEntry {
            origin: r.origin,
            heads: r.heads.clone(),
        })
    }

    fn load_replica(&self, doc_id: &DocId) -> Result<Option<AutoCommit>, ViewError> {
        match self.replicas.get(doc_id) {
            Some(r) => Ok(Some(AutoCommit::load(&r.bytes)?)),
            None => Ok(None),
        }
    }

    fn replicas_of(&self, origin: NodeId) -> Vec<DocId> {
        self.replicas
            .iter()
            .filter(|(_, r)| r.origin == origin)
            .map(|(id, _)| id.clone())
            .collect()
    }

    fn resume_point(&self, origin: NodeId) -> Option<ResumePoint> {
        self.resume.get(&origin).copied()
    }
}

impl SyncView for MemNode {
    fn sync_state(&self, peer: NodeId, doc_id: &DocId) -> Option<Vec<u8>> {
        self.states.get(&(peer, doc_id.clone())).cloned()
    }
}

/// One delivered message, as seen on the wire.
pub(crate) struct Delivered {
    pub(crate) from: usize,
    pub(crate) to: usize,
    pub(crate) len_bytes: usize,
    pub(crate) msg: SyncMessage,
}

/// N nodes and the sessions between them.
pub(crate) struct Net {
    pub(crate) nodes: Vec<MemNode>,
    /// Session of node `.0` with node `.1`.
    pub(crate) sessions: BTreeMap<(usize, usize), Session>,
    in_flight: VecDeque<(usize, usize, Vec<u8>)>,
    pub(crate) log: Vec<Delivered>,
    pub(crate) config: SessionConfig,
}

impl Net {
    pub(crate) fn new(nodes: Vec<MemNode>) -> Net {
        Net {
            nodes,
            sessions: BTreeMap::new(),
            in_flight: VecDeque::new(),
            log: Vec::new(),
            config: SessionConfig::default(),
        }
    }

    /// A net of `nodes` in full mesh, run until no bytes are in flight.
    pub(crate) fn synced(nodes: Vec<MemNode>) -> Net {
        let mut net = Net::new(nodes);
        net.connect_all();
        net.run();
        net
    }

    /// Opens a session in both directions between `a` and `b`.
    pub(crate) fn connect(&mut self, a: usize, b: usize) {
        for (me, them) in [(a, b), (b, a)] {
            let info = PeerInfo {
                local: self.nodes[me].id,
                peer: self.nodes[them].id,
                peer_role: self.nodes[them].role,
            };
            let session = Session::new(info, self.config, &self.nodes[me]);
            self.sessions.insert((me, them), session);
        }
    }

    pub(crate) fn connect_all(&mut self) {
        for a in 0..self.nodes.len() {
            for b in a + 1..self.nodes.len() {
                self.connect(a, b);
            }
        }
    }

    /// Closes every session (saving their progress) and drops bytes in flight.
    pub(crate) fn disconnect_all(&mut self) {
        let keys: Vec<_> = self.sessions.keys().copied().collect();
        for key in keys {
            if let Some(session) = self.sessions.get_mut(&key) {
                session.handle_close();
            }
            self.drain(key);
        }
        self.sessions.clear();
        self.in_flight.clear();
    }

    pub(crate) fn local_change(&mut self, node: usize, doc_id: &DocId) {
        let keys: Vec<_> = self
            .sessions
            .keys()
            .copied()
            .filter(|(me, _)| *me == node)
            .collect();
        for key in keys {
            if let Some(s) = self.sessions.get_mut(&key) {
                s.handle_local_change(&self.nodes[node], doc_id);
            }
        }
    }

    /// Moves a session's effects into its node, events into the log, and bytes
    /// onto the wire.
    fn drain(&mut self, (me, them): (usize, usize)) {
        let Some(session) = self.sessions.get_mut(&(me, them)) else {
            return;
        };
        let peer = self.nodes[them].id;
        while let Some(effect) = session.poll_effect() {
            self.nodes[me].apply(effect);
        }
        while let Some(event) = session.poll_event() {
            self.nodes[me].events.push((peer, event));
        }
        while let Some(bytes) = session.poll_transmit() {
            self.in_flight.push_back((me, them, bytes));
        }
    }

    /// Delivers raw bytes from `from` to `to`, bypassing `from`'s session.
    pub(crate) fn inject(&mut self, from: usize, to: usize, bytes: Vec<u8>) {
        self.in_flight.push_back((from, to, bytes));
    }

    /// Runs until no bytes are in flight. Returns the number of messages delivered.
    pub(crate) fn run(&mut self) -> usize {
        let mut delivered = 0;
        loop {
            let keys: Vec<_> = self.sessions.keys().copied().collect();
            for key in keys {
                self.drain(key);
            }
            let Some((from, to, bytes)) = self.in_flight.pop_front() else {
                return delivered;
            };
            delivered += 1;
            assert!(delivered < 10_000_000, "sync does not converge");
            if let Ok(msg) = SyncMessage::decode(&bytes) {
                self.log.push(Delivered {
                    from,
                    to,
                    len_bytes: bytes.len(),
                    msg,
                });
            }
            if let Some(session) = self.sessions.get_mut(&(to, from)) {
                session.handle_message(&self.nodes[to], &bytes);
            }
            self.drain((to, from));
        }
    }

    /// Messages and bytes delivered since log position `since`.
    pub(crate) fn traffic_since(&self, since: usize) -> (usize, usize) {
        let slice = self.log.get(since..).unwrap_or_default();
        (slice.len(), slice.iter().map(|d| d.len_bytes).sum())
    }

    /// DocSync messages delivered since log position `since`.
    pub(crate) fn doc_syncs_since(&self, since: usize) -> usize {
        self.log
            .get(since..)
            .unwrap_or_default()
            .iter()
            .filter(|d| matches!(d.msg, SyncMessage::DocSync { .. }))
            .count()
    }

    /// The violation node `me`'s session with node `them` closed with, if any.
    pub(crate) fn closed_with(&self, me: usize, them: usize) -> Option<ViolationCode> {
        self.sessions[&(me, them)].closed_by().map(|(code, _)| code)
    }

    /// Events of a kind at one node.
    pub(crate) fn events(&self, node: usize) -> impl Iterator<Item = &(NodeId, Event)> {
        self.nodes[node].events.iter()
    }
}

/// The text of a document's description, for checking content arrived.
pub(crate) fn title(doc: &AutoCommit) -> String {
    match doc.get(ROOT, "title").unwrap() {
        Some((automerge::Value::Scalar(s), _)) => s.as_str().unwrap_or_default().to_string(),
        _ => String::new(),
    }
}
