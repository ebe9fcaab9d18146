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

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use automerge::{ActorId, AutoCommit, ChangeHash};
use labnet_config::Role;
use labnet_protocol::close::ViolationCode;
use labnet_protocol::statement::{
    ScopeClass, Signed, SignedStatement, Signer, VersionStatement, PUBLIC_KEY_LEN, SIGNATURE_LEN,
};
use labnet_protocol::sync::{DocId, ResumePoint, SyncMessage};
use labnet_protocol::NodeId;
use ring::signature::{Ed25519KeyPair, KeyPair};

use super::{
    Effect, EffectSink, Event, ForwardItem, HeldEntry, PeerInfo, ReceivedStatement, ReplicaData,
    Scope, ServedEntry, Session, SessionConfig, SyncView, ViewError,
};
use crate::share::publication::{edit_sample, sample_body, sample_doc};

/// A test node's key: deterministic from its number.
pub(crate) struct TestKey(Ed25519KeyPair);

impl TestKey {
    pub(crate) fn new(n: u32) -> TestKey {
        let mut seed = [0u8; 32];
        seed[..4].copy_from_slice(&n.to_le_bytes());
        seed[31] = 0x5a;
        TestKey(Ed25519KeyPair::from_seed_unchecked(&seed).expect("a 32-byte seed is a key"))
    }

    pub(crate) fn node_id(&self) -> NodeId {
        NodeId::from_public_key(self.0.public_key().as_ref())
    }
}

impl Signer for TestKey {
    fn public_key(&self) -> [u8; PUBLIC_KEY_LEN] {
        let mut key = [0u8; PUBLIC_KEY_LEN];
        key.copy_from_slice(self.0.public_key().as_ref());
        key
    }

    fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        let mut out = [0u8; SIGNATURE_LEN];
        out.copy_from_slice(self.0.sign(message).as_ref());
        out
    }
}

/// The NodeId of test node `n`.
pub(crate) fn node_id(n: u32) -> NodeId {
    TestKey::new(n).node_id()
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
        let key = TestKey::new(n);
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
        let mut heads: Vec<[u8; 32]> = p.heads.iter().map(|h| h.0).collect();
        heads.sort();
        let class = crate::store::scope_class_of(&p.scope.to_text());
        let body = VersionStatement {
            publication: doc_id.clone(),
            origin_key: self.key.public_key(),
            version: p.seq,
            heads,
            scope: class,
            retracted: p.retracted,
            issued_at: 1_764_000_000 + p.seq,
        };
        Signed::sign(body, self.key.as_ref()).encode()
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

    fn check(&self) -> Result<(), ViewError> {
        if self.reads_fail {
            Err("disk I/O error (test)".into())
        } else {
            Ok(())
        }
    }

    fn own_entry(&self, doc_id: &DocId, p: &MemPublication) -> ServedEntry {
        ServedEntry {
            doc_id: doc_id.clone(),
            seq: p.seq,
            origin: self.id,
            version: p.seq,
            retracted: p.retracted,
            scope: Some(p.scope.clone()),
        }
    }

    fn relayed_entry(doc_id: &DocId, h: &MemHeld) -> Option<ServedEntry> {
        Some(ServedEntry {
            doc_id: doc_id.clone(),
            seq: h.relay_seq?,
            origin: h.origin,
            version: h.version,
            retracted: h.retracted,
            scope: None,
        })
    }

    fn store_statement(&mut self, doc_id: &DocId, s: &ReceivedStatement, retracted: bool) {
        let relay_seq = (s.scope_class == ScopeClass::Public).then(|| self.bump());
        let entry = self.held.entry(doc_id.clone()).or_insert(MemHeld {
            origin: s.origin,
            version: 0,
            class: s.scope_class,
            retracted,
            statement: Vec::new(),
            via: s.via,
            relay_seq: None,
            bytes: None,
            heads: Vec::new(),
        });
        entry.origin = s.origin;
        entry.version = s.version;
        entry.class = s.scope_class;
        entry.retracted = retracted;
        entry.statement = s.signed.clone();
        entry.via = s.via;
        entry.relay_seq = relay_seq;
    }
}

impl EffectSink for MemNode {
    type Error = std::convert::Infallible;

    fn held_version(&mut self, doc_id: &DocId) -> Result<Option<u64>, Self::Error> {
        Ok(self.held.get(doc_id).map(|h| h.version))
    }

    fn save_version(
        &mut self,
        doc_id: &DocId,
        heads: &[ChangeHash],
        data: &ReplicaData,
        statement: &ReceivedStatement,
    ) -> Result<(), Self::Error> {
        let bytes = match data {
            ReplicaData::Snapshot(bytes) => bytes.clone(),
            ReplicaData::Incremental(chunk) => {
                let mut bytes = self
                    .held
                    .get(doc_id)
                    .and_then(|h| h.bytes.clone())
                    .expect("incremental save of a copy we hold");
                bytes.extend_from_slice(chunk);
                bytes
            }
        };
        self.store_statement(doc_id, statement, false);
        let held = self.held.get_mut(doc_id).unwrap();
        held.bytes = Some(bytes);
        let mut heads = heads.to_vec();
        heads.sort();
        held.heads = heads;
        Ok(())
    }

    fn save_tombstone(
        &mut self,
        doc_id: &DocId,
        statement: &ReceivedStatement,
    ) -> Result<(), Self::Error> {
        self.store_statement(doc_id, statement, true);
        let held = self.held.get_mut(doc_id).unwrap();
        held.bytes = None;
        held.heads.clear();
        Ok(())
    }

    fn withdrawn(&mut self, doc_id: &DocId) -> Result<(), Self::Error> {
        self.held.remove(doc_id);
        Ok(())
    }

    fn save_confirmation(
        &mut self,
        doc_id: &DocId,
        confirmer: NodeId,
        version: u64,
        signed: &[u8],
        forwarded: bool,
    ) -> Result<(), Self::Error> {
        let key = (doc_id.clone(), confirmer);
        if self
            .confirmations
            .get(&key)
            .is_none_or(|c| version > c.version)
        {
            self.confirmations.insert(
                key,
                MemConfirmation {
                    version,
                    signed: signed.to_vec(),
                    forwarded,
                },
            );
        }
        Ok(())
    }

    fn confirmations_forwarded(&mut self, items: &[(DocId, NodeId)]) -> Result<(), Self::Error> {
        for key in items {
            if let Some(c) = self.confirmations.get_mut(key) {
                c.forwarded = true;
            }
        }
        Ok(())
    }

    fn record_delivery(
        &mut self,
        peer: NodeId,
        doc_id: &DocId,
        _version: u64,
    ) -> Result<(), Self::Error> {
        self.deliveries.insert((peer, doc_id.clone()));
        Ok(())
    }

    fn delete_delivery(&mut self, peer: NodeId, doc_id: &DocId) -> Result<(), Self::Error> {
        self.deliveries.remove(&(peer, doc_id.clone()));
        Ok(())
    }

    fn save_resume_point(&mut self, peer: NodeId, point: ResumePoint) -> Result<(), Self::Error> {
        self.resume.insert(peer, point);
        Ok(())
    }

    fn save_acked_seq(
        &mut self,
        peer: NodeId,
        _role: Role,
        _epoch: u64,
        seq: u64,
    ) -> Result<(), Self::Error> {
        self.acked.insert(peer, seq);
        Ok(())
    }
}

impl SyncView for MemNode {
    fn index_epoch(&self) -> Result<u64, ViewError> {
        self.check()?;
        Ok(self.epoch)
    }

    fn served_after(&self, after_seq: u64, limit: usize) -> Result<Vec<ServedEntry>, ViewError> {
        self.check()?;
        let mut rows: Vec<ServedEntry> = self
            .publications
            .iter()
            .filter(|(_, p)| p.seq > after_seq)
            .map(|(id, p)| self.own_entry(id, p))
            .chain(
                self.held
                    .iter()
                    .filter_map(|(id, h)| Self::relayed_entry(id, h))
                    .filter(|e| e.seq > after_seq),
            )
            .collect();
        rows.sort_by_key(|r| r.seq);
        rows.truncate(limit);
        Ok(rows)
    }

    fn served(&self, doc_id: &DocId) -> Result<Option<ServedEntry>, ViewError> {
        self.check()?;
        if let Some(p) = self.publications.get(doc_id) {
            return Ok(Some(self.own_entry(doc_id, p)));
        }
        Ok(self
            .held
            .get(doc_id)
            .and_then(|h| Self::relayed_entry(doc_id, h)))
    }

    fn statement(&self, doc_id: &DocId) -> Result<Option<Vec<u8>>, ViewError> {
        self.check()?;
        if let Some(p) = self.publications.get(doc_id) {
            return Ok(Some(p.statement.clone()));
        }
        Ok(self.held.get(doc_id).map(|h| h.statement.clone()))
    }

    fn load_served(&self, doc_id: &DocId) -> Result<Option<AutoCommit>, ViewError> {
        self.check()?;
        if let Some(p) = self.publications.get(doc_id) {
            return Ok(Some(AutoCommit::load(&p.bytes)?));
        }
        self.load_replica(doc_id)
    }

    fn held(&self, doc_id: &DocId) -> Result<Option<HeldEntry>, ViewError> {
        self.check()?;
        Ok(self.held.get(doc_id).map(|h| HeldEntry {
            origin: h.origin,
            version: h.version,
            retracted: h.retracted,
            heads: h.heads.clone(),
        }))
    }

    fn replica_usage(&self, origin: NodeId) -> Result<crate::sync::ReplicaUsage, ViewError> {
        self.check()?;
        let copies = self
            .held
            .values()
            .filter(|h| h.origin == origin)
            .filter_map(|h| h.bytes.as_ref());
        let mut usage = crate::sync::ReplicaUsage::default();
        for bytes in copies {
            usage.count += 1;
            usage.bytes += bytes.len() as u64;
        }
        Ok(usage)
    }

    fn load_replica(&self, doc_id: &DocId) -> Result<Option<AutoCommit>, ViewError> {
        self.check()?;
        match self.held.get(doc_id).and_then(|h| h.bytes.as_ref()) {
            Some(bytes) => Ok(Some(AutoCommit::load(bytes)?)),
            None => Ok(None),
        }
    }

    fn resume_point(&self, peer: NodeId) -> Result<Option<ResumePoint>, ViewError> {
        self.check()?;
        Ok(self.resume.get(&peer).copied())
    }

    fn delivered(&self, peer: NodeId, doc_id: &DocId) -> Result<bool, ViewError> {
        self.check()?;
        Ok(self.deliveries.contains(&(peer, doc_id.clone())))
    }

    fn peer_acked(&self, peer: NodeId) -> Result<Option<ResumePoint>, ViewError> {
        self.check()?;
        Ok(self.acked.get(&peer).map(|&seq| ResumePoint {
            epoch: self.epoch,
            seq,
        }))
    }

    fn confirmations_to_forward(
        &self,
        via: NodeId,
        limit: usize,
    ) -> Result<Vec<ForwardItem>, ViewError> {
        self.check()?;
        Ok(self
            .confirmations
            .iter()
            .filter(|((doc_id, _), c)| {
                !c.forwarded
                    && self
                        .held
                        .get(doc_id)
                        .is_some_and(|h| h.retracted && h.via == via)
            })
            .take(limit)
            .map(|((doc_id, confirmer), c)| ForwardItem {
                doc_id: doc_id.clone(),
                confirmer: *confirmer,
                signed: c.signed.clone(),
            })
            .collect())
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
    /// The harness's clock.
    pub(crate) now: Instant,
}

impl Net {
    pub(crate) fn new(nodes: Vec<MemNode>) -> Net {
        Net {
            nodes,
            sessions: BTreeMap::new(),
            in_flight: VecDeque::new(),
            log: Vec::new(),
            config: SessionConfig::default(),
            now: Instant::now(),
        }
    }

    /// A net of `nodes` in full mesh, run until no bytes are in flight.
    pub(crate) fn synced(nodes: Vec<MemNode>) -> Net {
        let mut net = Net::new(nodes);
        net.connect_all();
        net.run();
        net
    }

    /// The session of node `me` with node `them`, as the transport would
    /// start it (the peer's role is the role `me` approved it with).
    fn open(&mut self, me: usize, them: usize) {
        let info = PeerInfo {
            local: self.nodes[me].id,
            local_role: self.nodes[me].role,
            peer: self.nodes[them].id,
            peer_role: self.nodes[them].role,
            signer: self.nodes[me].key.clone(),
        };
        let session = Session::new(info, self.config, &self.nodes[me], self.now);
        self.sessions.insert((me, them), session);
    }

    /// Opens a session in both directions between `a` and `b`.
    pub(crate) fn connect(&mut self, a: usize, b: usize) {
        self.open(a, b);
        self.open(b, a);
    }

    pub(crate) fn connect_all(&mut self) {
        for a in 0..self.nodes.len() {
            for b in a + 1..self.nodes.len() {
                self.connect(a, b);
            }
        }
    }

    /// Closes the sessions between `a` and `b` and drops their bytes in flight.
    pub(crate) fn disconnect(&mut self, a: usize, b: usize) {
        for key in [(a, b), (b, a)] {
            self.sessions.remove(&key);
        }
        self.in_flight
            .retain(|(f, t, _)| !((*f == a && *t == b) || (*f == b && *t == a)));
    }

    /// Closes every session and drops bytes in flight.
    pub(crate) fn disconnect_all(&mut self) {
        let keys: Vec<_> = self.sessions.keys().copied().collect();
        for key in keys {
            self.drain(key);
        }
        self.sessions.clear();
        self.in_flight.clear();
    }

    /// Tells every session of `node` that what it serves changed.
    pub(crate) fn local_change(&mut self, node: usize) {
        let keys: Vec<_> = self
            .sessions
            .keys()
            .copied()
            .filter(|(me, _)| *me == node)
            .collect();
        for key in keys {
            if let Some(s) = self.sessions.get_mut(&key) {
                s.handle_local_change(&self.nodes[node], self.now);
            }
        }
    }

    /// Moves the clock and fires the sessions' timers that are due.
    pub(crate) fn advance(&mut self, by: Duration) {
        self.now += by;
        let keys: Vec<_> = self.sessions.keys().copied().collect();
        for key in keys {
            if let Some(s) = self.sessions.get_mut(&key) {
                s.handle_timeout(self.now);
            }
            self.drain(key);
        }
    }

    /// Moves a session's effects into its node, events into the log, and bytes
    /// onto the wire; then, as the driver does, tells the node's other
    /// sessions about anything stored that they relay or forward.
    fn drain(&mut self, (me, them): (usize, usize)) {
        let Some(session) = self.sessions.get_mut(&(me, them)) else {
            return;
        };
        let peer = self.nodes[them].id;
        while let Some(effect) = session.poll_effect() {
            self.nodes[me].apply(effect);
        }
        let mut relay = false;
        while let Some(event) = session.poll_event() {
            relay |= matches!(
                event,
                Event::ReplicaChanged { relayed: true, .. }
                    | Event::RetractionReceived { relayed: true, .. }
                    | Event::ConfirmationToForward { .. }
            );
            self.nodes[me].events.push((peer, event));
        }
        while let Some(bytes) = session.poll_transmit() {
            self.in_flight.push_back((me, them, bytes));
        }
        if relay {
            self.local_change(me);
            let keys: Vec<_> = self
                .sessions
                .keys()
                .copied()
                .filter(|(m, t)| *m == me && *t != them)
                .collect();
            for key in keys {
                if let Some(session) = self.sessions.get_mut(&key) {
                    while let Some(bytes) = session.poll_transmit() {
                        self.in_flight.push_back((key.0, key.1, bytes));
                    }
                }
            }
        }
    }

    /// Delivers raw bytes from `from` to `to`, bypassing `from`'s session.
    pub(crate) fn inject(&mut self, from: usize, to: usize, bytes: Vec<u8>) {
        self.in_flight.push_back((from, to, bytes));
    }

    /// Takes the bytes in flight from `from` to `to` off the wire.
    pub(crate) fn take_in_flight(&mut self, from: usize, to: usize) -> Vec<Vec<u8>> {
        let mut taken = Vec::new();
        self.in_flight.retain(|(f, t, bytes)| {
            let hit = *f == from && *t == to;
            if hit {
                taken.push(bytes.clone());
            }
            !hit
        });
        taken
    }

    /// Delivers one message, if any is in flight.
    pub(crate) fn step(&mut self) -> bool {
        let Some((from, to, bytes)) = self.in_flight.pop_front() else {
            return false;
        };
        if let Ok(msg) = SyncMessage::decode(&bytes) {
            self.log.push(Delivered {
                from,
                to,
                len_bytes: bytes.len(),
                msg,
            });
        }
        if let Some(session) = self.sessions.get_mut(&(to, from)) {
            session.handle_message(&self.nodes[to], self.now, &bytes);
        }
        self.drain((to, from));
        true
    }

    /// Runs until no bytes are in flight. Returns the number of messages delivered.
    pub(crate) fn run(&mut self) -> usize {
        let mut delivered = 0;
        loop {
            let keys: Vec<_> = self.sessions.keys().copied().collect();
            for key in keys {
                self.drain(key);
            }
            if !self.step() {
                return delivered;
            }
            delivered += 1;
            assert!(delivered < 10_000_000, "sync does not converge");
        }
    }

    /// `Deliver` messages delivered since log position `since`.
    pub(crate) fn deliveries_since(&self, since: usize) -> usize {
        self.log
            .get(since..)
            .unwrap_or_default()
            .iter()
            .filter(|d| matches!(d.msg, SyncMessage::Deliver { .. }))
            .count()
    }

    /// The violation node `me`'s session with node `them` closed with, if any.
    pub(crate) fn closed_with(&self, me: usize, them: usize) -> Option<ViolationCode> {
        self.sessions
            .get(&(me, them))
            .and_then(|s| s.closed_by().map(|(code, _)| code))
    }

    /// Events at one node.
    pub(crate) fn events(&self, node: usize) -> impl Iterator<Item = &(NodeId, Event)> {
        self.nodes[node].events.iter()
    }
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
