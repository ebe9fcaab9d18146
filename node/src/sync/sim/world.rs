//! The simulated world: nodes, links, connections, clocks, and the scheduler
//! that picks, seed by seed, what happens next.
//!
//! One [`World`] is one run. Its nodes are [`MemNode`]s whose contents are
//! exactly what they persisted; its connections carry one [`Session`] at
//! each end, and each end keeps, like the driver, the outputs of its last
//! step until they are persisted. Every random choice comes from one
//! [`Rng`], and nothing else varies, so a seed is a run.

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use automerge::AutoCommit;
use labnet_config::Role;
use labnet_protocol::close::ViolationCode;
use labnet_protocol::sync::DocId;

use super::check::{Broken, Oracle, Topology};
use super::rng::Rng;
use super::{
    Stats, ACTIONS_MAX, ACTIONS_MIN, HEAL_STEPS_MAX, INPUTS_PER_STEP_MAX, ISSUES_MAX,
    REPLAYABLE_MAX,
};
use crate::share::publication::sample_body;
use crate::sync::harness::MemNode;
use crate::sync::{Effect, Event, PeerInfo, Session, SessionConfig};
use crate::trust::Scope;

/// A node's clock: its own offset and rate against the world's time, so two
/// nodes' timers fire at different world times.
struct Clock {
    offset_ms: u64,
    /// Parts per million faster (positive) or slower than the world.
    drift_ppm: i64,
}

struct SimNode {
    store: MemNode,
    up: bool,
    clock: Clock,
    /// What it holds a copy of, or held and was not withdrawn from: a node
    /// that held a retracted publication must confirm the retraction.
    held_copy: BTreeSet<DocId>,
}

/// The outputs of one step, waiting to be persisted (effects) and then sent
/// (frames), as the driver persists before it writes.
struct Batch {
    effects: Vec<Effect>,
    events: Vec<Event>,
    transmits: Vec<Vec<u8>>,
}

/// One end of a connection.
struct End {
    session: Session,
    /// Frames from the peer, in order (QUIC streams are ordered).
    inbox: VecDeque<Vec<u8>>,
    /// Something it serves changed, and the session has not been told.
    local_pending: bool,
    pending: Option<Batch>,
    /// The last frames it received, to replay at it.
    seen: VecDeque<Vec<u8>>,
}

/// A live connection on a link: `ends[0]` at the link's lower node.
struct Conn {
    ends: [End; 2],
}

/// One end of a connection: (link, side).
type EndRef = (usize, usize);

/// Where a probe's message comes from.
#[derive(Clone, Copy)]
enum Probe {
    /// A frame this end already received on this connection.
    Replay,
    /// A frame queued behind others, taken out of order.
    Reorder,
    /// A frame another node received from a node other than this end's
    /// peer: what a hostile peer could pass on. A frame the peer itself sent
    /// on another of its connections is never used: over TLS nobody but the
    /// peer speaks for it, and an honest origin does not send one peer what
    /// it addressed to another.
    Foreign,
}

/// One run of the simulation.
pub(super) struct World {
    seed: u64,
    rng: Rng,
    verbose: bool,
    nodes: Vec<SimNode>,
    oracle: Oracle,
    /// One slot per link of the topology.
    conns: Vec<Option<Conn>>,
    /// While set, links between this side and the rest carry nothing.
    partition: Option<BTreeSet<usize>>,
    now_ms: u64,
    base: Instant,
    config: SessionConfig,
    /// Frames recently received anywhere, with their sender, for
    /// out-of-context probes.
    foreign: VecDeque<(usize, Vec<u8>)>,
    issues_left: usize,
    edits: u64,
    pub(super) stats: Stats,
    /// FNV-1a over every choice and every frame's length: equal for two runs
    /// of one seed, or the run is not deterministic.
    fingerprint: u64,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

impl World {
    /// A world for `seed`: its topology, clocks, first publications.
    pub(super) fn new(seed: u64, verbose: bool) -> World {
        let mut rng = Rng::new(seed);
        let partners = rng.range(4, 6) as usize;
        let subscribers = rng.range(1, 2) as usize;
        let count = partners + subscribers;
        let mut roles = vec![Role::Partner; partners];
        roles.extend(std::iter::repeat_n(Role::Subscriber, subscribers));
        // A ring of partners (so some partners are two hops apart and only
        // relays connect them), sometimes a chord, and each subscriber
        // approved by one or two partners.
        let mut links = BTreeSet::new();
        for i in 0..partners {
            let j = (i + 1) % partners;
            links.insert((i.min(j), i.max(j)));
        }
        if rng.chance(500) {
            let i = rng.below(partners);
            let j = (i + 2) % partners;
            links.insert((i.min(j), i.max(j)));
        }
        for s in partners..count {
            for _ in 0..rng.range(1, 2) {
                links.insert((rng.below(partners), s));
            }
        }
        let links: Vec<_> = links.into_iter().collect();
        let nodes: Vec<SimNode> = (0..count)
            .map(|i| SimNode {
                store: MemNode::new(i as u32, roles[i]),
                up: true,
                clock: Clock {
                    offset_ms: rng.range(0, 3_600_000),
                    drift_ppm: rng.range(0, 40_000) as i64 - 20_000,
                },
                held_copy: BTreeSet::new(),
            })
            .collect();
        let topo = Topology {
            ids: nodes.iter().map(|n| n.store.id).collect(),
            roles,
            links: links.clone(),
        };
        let config = SessionConfig {
            docs_in_flight_max: rng.range(1, 4) as usize,
            ..SessionConfig::default()
        };
        let mut world = World {
            seed,
            rng,
            verbose,
            nodes,
            oracle: Oracle {
                topo,
                docs: Default::default(),
            },
            conns: links.iter().map(|_| None).collect(),
            partition: None,
            now_ms: 0,
            base: Instant::now(),
            config,
            foreign: VecDeque::new(),
            issues_left: ISSUES_MAX,
            edits: 0,
            stats: Stats::default(),
            fingerprint: FNV_OFFSET,
        };
        world.log(&format!(
            "{partners} partners, {subscribers} subscribers, links {links:?}, {} docs in flight",
            world.config.docs_in_flight_max
        ));
        // Two or three origins, one or two publications each to start with.
        let origins = world.rng.range(2, 3) as usize;
        for origin in 0..origins.min(partners) {
            for _ in 0..world.rng.range(1, 2) {
                world.publish(origin);
            }
        }
        world
    }

    fn log(&self, line: &str) {
        if self.verbose {
            eprintln!("[seed {} t={}ms] {line}", self.seed, self.now_ms);
        }
    }

    fn note(&mut self, words: &[u64]) {
        for w in words {
            for b in w.to_le_bytes() {
                self.fingerprint ^= u64::from(b);
                self.fingerprint = self.fingerprint.wrapping_mul(FNV_PRIME);
            }
        }
    }

    /// The fingerprint of the run so far, with the final stores folded in.
    pub(super) fn fingerprint(&mut self) -> u64 {
        let mut words = Vec::new();
        for node in &self.nodes {
            for (doc_id, h) in &node.store.held {
                words.push(doc_id.as_str().len() as u64);
                words.push(h.version);
                for head in &h.heads {
                    words.push(u64::from_le_bytes(head.0[..8].try_into().unwrap_or([0; 8])));
                }
            }
            words.push(node.store.confirmations.len() as u64);
        }
        self.note(&words);
        self.fingerprint
    }

    fn node_of(&self, link: usize, side: usize) -> usize {
        let (a, b) = self.oracle.topo.links[link];
        if side == 0 {
            a
        } else {
            b
        }
    }

    /// Node `n`'s idea of the time.
    fn node_now(&self, n: usize) -> Instant {
        let clock = &self.nodes[n].clock;
        let scaled = self.now_ms as i128 * (1_000_000 + clock.drift_ppm as i128) / 1_000_000;
        self.base + Duration::from_millis(clock.offset_ms + scaled.max(0) as u64)
    }

    fn cut(&self, link: usize) -> bool {
        let (a, b) = self.oracle.topo.links[link];
        self.partition
            .as_ref()
            .is_some_and(|side| side.contains(&a) != side.contains(&b))
    }

    // ---- the origins' admins ------------------------------------------------

    fn random_scope(&mut self, origin: usize) -> Scope {
        match self.rng.below(3) {
            0 => Scope::Public,
            1 => Scope::Partners,
            _ => {
                let partners: Vec<usize> = (0..self.nodes.len())
                    .filter(|&i| i != origin && self.oracle.topo.roles[i] == Role::Partner)
                    .collect();
                let mut named = BTreeSet::new();
                for _ in 0..self.rng.range(1, 2) {
                    if let Some(&p) = self.rng.pick(&partners) {
                        named.insert(self.oracle.topo.ids[p]);
                    }
                }
                Scope::Nodes(named.into_iter().collect())
            }
        }
    }

    fn publish(&mut self, origin: usize) {
        let scope = self.random_scope(origin);
        let name = format!("p{}", self.nodes[origin].store.publications.len());
        let store = &mut self.nodes[origin].store;
        let body = sample_body(store.id, &name, self.edits as u32);
        let mut doc = AutoCommit::new().with_actor(store.actor());
        let _ = autosurgeon::reconcile(&mut doc, &body);
        let doc_id = store.publish(&name, scope.clone(), &mut doc);
        self.oracle
            .record(origin, &self.nodes[origin].store, &doc_id);
        self.log(&format!(
            "node {origin} publishes {doc_id} ({})",
            scope.to_text()
        ));
    }

    /// An origin's admin issues something: a new publication, an edit, a
    /// retraction or a new scope (never narrower than `public` once public:
    /// relays cannot take back what they spread, see the module docs).
    fn issue(&mut self) {
        let origins: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| !self.nodes[i].store.publications.is_empty())
            .collect();
        let Some(&origin) = self.rng.pick(&origins) else {
            return;
        };
        self.issues_left -= 1;
        let live: Vec<DocId> = self.nodes[origin]
            .store
            .publications
            .iter()
            .filter(|(_, p)| !p.retracted)
            .map(|(id, _)| id.clone())
            .collect();
        let what = self.rng.below(8);
        let target = self.rng.pick(&live).cloned();
        self.edits += 1;
        match (what, target) {
            (0, _) | (_, None) => self.publish(origin),
            (1, Some(doc_id)) => {
                self.nodes[origin].store.retract(&doc_id);
                self.log(&format!("node {origin} retracts {doc_id}"));
                self.oracle
                    .record(origin, &self.nodes[origin].store, &doc_id);
            }
            (2 | 3, Some(doc_id))
                if self.nodes[origin].store.publications[&doc_id].scope != Scope::Public =>
            {
                let scope = self.random_scope(origin);
                self.nodes[origin].store.set_scope(&doc_id, scope.clone());
                self.log(&format!(
                    "node {origin} re-scopes {doc_id} to {}",
                    scope.to_text()
                ));
                self.oracle
                    .record(origin, &self.nodes[origin].store, &doc_id);
            }
            (_, Some(doc_id)) => {
                let text = format!("Edit {} of the practice, during the run.", self.edits);
                self.nodes[origin].store.edit(&doc_id, &text);
                self.log(&format!("node {origin} edits {doc_id}"));
                self.oracle
                    .record(origin, &self.nodes[origin].store, &doc_id);
            }
        }
        self.stats.versions_issued += 1;
        self.notify(origin);
    }

    /// Tells every session of node `n` that what it serves changed.
    fn notify(&mut self, n: usize) {
        for link in 0..self.conns.len() {
            for side in 0..2 {
                if self.node_of(link, side) == n {
                    if let Some(conn) = self.conns[link].as_mut() {
                        conn.ends[side].local_pending = true;
                    }
                }
            }
        }
    }

    // ---- connections -------------------------------------------------------

    fn connectable(&self, link: usize) -> bool {
        let (a, b) = self.oracle.topo.links[link];
        self.conns[link].is_none() && self.nodes[a].up && self.nodes[b].up && !self.cut(link)
    }

    /// Opens a connection: a new session at each end, its first step's
    /// output (our `Resume`) waiting to be persisted and sent.
    fn connect(&mut self, link: usize) {
        let ends = [0, 1].map(|side| {
            let me = self.node_of(link, side);
            let them = self.node_of(link, 1 - side);
            let store = &self.nodes[me].store;
            let info = PeerInfo {
                local: store.id,
                local_role: store.role,
                peer: self.nodes[them].store.id,
                peer_role: self.nodes[them].store.role,
                signer: store.key.clone(),
            };
            let mut session = Session::new(info, self.config, store, self.node_now(me));
            let pending = Some(drain(&mut session));
            End {
                session,
                inbox: VecDeque::new(),
                local_pending: false,
                pending,
                seen: VecDeque::new(),
            }
        });
        self.conns[link] = Some(Conn { ends });
        self.stats.connections += 1;
        self.note(&[1, link as u64]);
        self.log(&format!("link {link} connects"));
    }

    /// The connection on `link` ends (lost, or closed by a session): each
    /// end whose node is up persists what its last step produced, as the
    /// driver does before it notices the connection is gone; nothing more
    /// is sent.
    fn kill(&mut self, link: usize) -> Result<(), Broken> {
        let Some(conn) = self.conns[link].take() else {
            return Ok(());
        };
        self.note(&[2, link as u64]);
        self.log(&format!("link {link} disconnects"));
        for (side, mut end) in conn.ends.into_iter().enumerate() {
            let me = self.node_of(link, side);
            if let Some(batch) = end.pending.take() {
                if self.nodes[me].up {
                    self.persist_batch(link, side, batch)?;
                }
            }
        }
        Ok(())
    }

    // ---- steps -------------------------------------------------------------

    fn timeout_due(&self, link: usize, side: usize) -> bool {
        let now = self.node_now(self.node_of(link, side));
        self.conns[link].as_ref().is_some_and(|c| {
            c.ends[side]
                .session
                .poll_timeout()
                .is_some_and(|deadline| now >= deadline)
        })
    }

    fn can_step(&self, link: usize, side: usize) -> bool {
        let due = self.timeout_due(link, side);
        self.conns[link].as_ref().is_some_and(|c| {
            let end = &c.ends[side];
            end.pending.is_none() && (!end.inbox.is_empty() || end.local_pending || due)
        })
    }

    fn can_persist(&self, link: usize, side: usize) -> bool {
        self.conns[link]
            .as_ref()
            .is_some_and(|c| c.ends[side].pending.is_some())
    }

    /// One step of one end, as the driver takes it: up to a few inputs
    /// (frames in order, a local change, a due timer), then every output
    /// drained into one batch that waits to be persisted.
    fn step(&mut self, link: usize, side: usize) -> Result<(), Broken> {
        let me = self.node_of(link, side);
        let now = self.node_now(me);
        let inputs = 1 + self.rng.below(INPUTS_PER_STEP_MAX);
        let mut received = Vec::new();
        for _ in 0..inputs {
            let due = self.timeout_due(link, side);
            let Some(conn) = self.conns[link].as_mut() else {
                break;
            };
            let end = &mut conn.ends[side];
            let mut choices = Vec::new();
            if !end.inbox.is_empty() {
                choices.push(0);
            }
            if end.local_pending {
                choices.push(1);
            }
            if due {
                choices.push(2);
            }
            let Some(&choice) = self.rng.pick(&choices) else {
                break;
            };
            let store = &self.nodes[me].store;
            match choice {
                0 => {
                    let Some(bytes) = end.inbox.pop_front() else {
                        break;
                    };
                    end.session.handle_message(store, now, &bytes);
                    received.push(bytes);
                }
                1 => {
                    end.local_pending = false;
                    end.session.handle_local_change(store, now);
                }
                _ => end.session.handle_timeout(now),
            }
        }
        if let Some(conn) = self.conns[link].as_mut() {
            let end = &mut conn.ends[side];
            end.pending = Some(drain(&mut end.session));
            for bytes in &received {
                end.seen.push_back(bytes.clone());
                if end.seen.len() > REPLAYABLE_MAX {
                    end.seen.pop_front();
                }
            }
        }
        if self.verbose {
            let kinds: Vec<String> = received.iter().map(|b| describe(&b[..])).collect();
            self.log(&format!("node {me} (link {link}) steps on {kinds:?}"));
        }
        let lens: Vec<u64> = received.iter().map(|b| b.len() as u64).collect();
        self.note(&[3, link as u64, side as u64]);
        self.note(&lens);
        let sender = self.node_of(link, 1 - side);
        for bytes in received {
            self.oracle.check_wire(me, &bytes)?;
            self.stats.frames_delivered += 1;
            self.foreign.push_back((sender, bytes));
            if self.foreign.len() > REPLAYABLE_MAX {
                self.foreign.pop_front();
            }
        }
        Ok(())
    }

    /// Persists one end's last step, then sends its frames; a session that
    /// closed takes its connection down.
    fn persist(&mut self, link: usize, side: usize) -> Result<(), Broken> {
        let Some(batch) = self.conns[link]
            .as_mut()
            .and_then(|c| c.ends[side].pending.take())
        else {
            return Ok(());
        };
        self.note(&[4, link as u64, side as u64, batch.effects.len() as u64]);
        let transmits = self.persist_batch(link, side, batch)?;
        let closed = match self.conns[link].as_mut() {
            Some(conn) => {
                conn.ends[1 - side].inbox.extend(transmits);
                conn.ends[side].session.closed().is_some()
            }
            None => false,
        };
        if closed {
            self.kill(link)?;
        }
        Ok(())
    }

    /// Applies a batch's effects to its node's store (each checked against
    /// the oracle first), acts on its events, and returns its frames.
    fn persist_batch(
        &mut self,
        link: usize,
        side: usize,
        batch: Batch,
    ) -> Result<Vec<Vec<u8>>, Broken> {
        let me = self.node_of(link, side);
        let peer = self.node_of(link, 1 - side);
        if self.verbose && !batch.effects.is_empty() {
            let effects: Vec<String> = batch.effects.iter().map(describe_effect).collect();
            self.log(&format!("node {me} persists (from {peer}): {effects:?}"));
        }
        for effect in batch.effects {
            self.oracle.check_effect(me, peer, &effect)?;
            let node = &mut self.nodes[me];
            node.store.apply(effect.clone());
            // Only what really landed counts: a version older than one
            // another session persisted first is skipped.
            match &effect {
                Effect::SaveVersion {
                    doc_id, statement, ..
                } if node.store.holds_version(doc_id, statement.version) => {
                    node.held_copy.insert(doc_id.clone());
                    self.stats.versions_stored += 1;
                }
                Effect::Withdrawn { doc_id } => {
                    node.held_copy.remove(doc_id);
                }
                Effect::SaveTombstone { .. } => self.stats.tombstones_stored += 1,
                _ => {}
            }
        }
        let stores: Vec<&MemNode> = self.nodes.iter().map(|n| &n.store).collect();
        self.oracle.check_acks(me, &stores)?;
        let mut relay = false;
        for event in batch.events {
            match event {
                Event::ReplicaChanged { relayed: true, .. }
                | Event::RetractionReceived { relayed: true, .. }
                | Event::ConfirmationToForward { .. } => relay = true,
                Event::ProtocolViolation {
                    code: ViolationCode::Stalled,
                    ..
                } => self.stats.stalls += 1,
                Event::ProtocolViolation { code, reason } => {
                    return Err(format!(
                        "node {me} closed its honest peer {peer} with {code:?}: {reason}"
                    ));
                }
                Event::LocalFailure { reason } => {
                    return Err(format!("node {me} failed locally: {reason}"));
                }
                _ => {}
            }
        }
        if relay {
            self.notify(me);
        }
        Ok(batch.transmits)
    }

    // ---- faults ------------------------------------------------------------

    /// A frame is lost: QUIC does not lose frames on a live stream, so what
    /// this models is the connection dying with it (timeout, reset).
    fn drop_frame(&mut self, link: usize, side: usize) -> Result<(), Broken> {
        if let Some(conn) = self.conns[link].as_mut() {
            conn.ends[side].inbox.pop_front();
        }
        self.stats.drops += 1;
        self.note(&[5, link as u64, side as u64]);
        self.kill(link)
    }

    /// A node crashes: every connection of it dies, and every step of it not
    /// yet persisted is lost, frames and effects alike.
    fn crash(&mut self, n: usize) -> Result<(), Broken> {
        self.log(&format!("node {n} crashes"));
        self.note(&[6, n as u64]);
        self.stats.crashes += 1;
        for link in 0..self.conns.len() {
            let (a, b) = self.oracle.topo.links[link];
            if a != n && b != n {
                continue;
            }
            if let Some(conn) = self.conns[link].as_mut() {
                let side = usize::from(b == n);
                if conn.ends[side].pending.take().is_some() {
                    self.stats.batches_lost += 1;
                }
            }
            self.nodes[n].up = false;
            self.kill(link)?;
        }
        self.nodes[n].up = false;
        Ok(())
    }

    /// A node restarts from what it persisted.
    fn restart(&mut self, n: usize) -> Result<(), Broken> {
        self.log(&format!("node {n} restarts"));
        self.note(&[7, n as u64]);
        self.nodes[n].up = true;
        self.oracle.check_node(n, &self.nodes[n].store)
    }

    fn toggle_partition(&mut self) -> Result<(), Broken> {
        if self.partition.take().is_some() {
            self.log("the partition heals");
            self.note(&[8]);
            return Ok(());
        }
        let count = self.nodes.len();
        let side: BTreeSet<usize> = (0..count).filter(|_| self.rng.chance(500)).collect();
        if side.is_empty() || side.len() == count {
            return Ok(());
        }
        self.log(&format!("partition: {side:?} | the rest"));
        self.note(&[9, side.len() as u64]);
        self.stats.partitions += 1;
        self.partition = Some(side);
        for link in 0..self.conns.len() {
            if self.cut(link) {
                self.kill(link)?;
            }
        }
        Ok(())
    }

    /// Feeds one end a frame its connection would never carry then: one it
    /// already took, one out of order, or one from another conversation.
    /// The session must close, or ignore it, or accept only what every
    /// invariant allows; its outputs are then dropped, as if persisting
    /// them had failed, and the connection ends (QUIC could not have
    /// delivered it, so what the session does next is no real schedule).
    fn probe(&mut self, link: usize, side: usize) -> Result<(), Broken> {
        let me = self.node_of(link, side);
        let peer = self.node_of(link, 1 - side);
        let now = self.node_now(me);
        let kind = match self.rng.below(3) {
            0 => Probe::Replay,
            1 => Probe::Reorder,
            _ => Probe::Foreign,
        };
        let pick = self.rng.next_u64() as usize;
        let Some(conn) = self.conns[link].as_mut() else {
            return Ok(());
        };
        let end = &mut conn.ends[side];
        let bytes = match kind {
            Probe::Replay if !end.seen.is_empty() => end.seen.get(pick % end.seen.len()).cloned(),
            Probe::Reorder if end.inbox.len() > 1 => {
                end.inbox.remove(1 + pick % (end.inbox.len() - 1))
            }
            Probe::Foreign => {
                let others = self.foreign.iter().filter(|(from, _)| *from != peer);
                let count = others.clone().count();
                (count > 0)
                    .then(|| others.clone().nth(pick % count).map(|(_, b)| b.clone()))
                    .flatten()
            }
            _ => None,
        };
        let Some(bytes) = bytes else {
            return Ok(());
        };
        end.session
            .handle_message(&self.nodes[me].store, now, &bytes);
        let batch = drain(&mut end.session);
        let closed = end.session.closed_by().map(|(code, _)| code);
        self.note(&[10, link as u64, side as u64, bytes.len() as u64]);
        for effect in &batch.effects {
            self.oracle
                .check_effect(me, peer, effect)
                .map_err(|e| format!("a probe made node {me} accept: {e}"))?;
        }
        let stored = batch.effects.iter().any(|e| {
            matches!(
                e,
                Effect::SaveVersion { .. }
                    | Effect::SaveTombstone { .. }
                    | Effect::Withdrawn { .. }
            )
        });
        match (closed, stored) {
            (Some(code), _) => {
                *self
                    .stats
                    .probes_closed
                    .entry(format!("{code:?}"))
                    .or_default() += 1;
            }
            (None, true) => self.stats.probes_valid_stored += 1,
            (None, false) => self.stats.probes_ignored += 1,
        }
        if let Some(conn) = self.conns[link].as_mut() {
            conn.ends[side].pending = None;
        }
        self.kill(link)
    }

    // ---- the run -----------------------------------------------------------

    /// Every end that can take a step, and every end with a batch to persist.
    fn runnable(&self) -> (Vec<EndRef>, Vec<EndRef>) {
        let mut steps = Vec::new();
        let mut persists = Vec::new();
        for link in 0..self.conns.len() {
            for side in 0..2 {
                if self.can_step(link, side) {
                    steps.push((link, side));
                }
                if self.can_persist(link, side) {
                    persists.push((link, side));
                }
            }
        }
        (steps, persists)
    }

    /// The faulty phase: a random schedule of steps, persists, time, and
    /// every fault.
    pub(super) fn run_faults(&mut self) -> Result<(), Broken> {
        let actions = self.rng.range(ACTIONS_MIN, ACTIONS_MAX);
        for _ in 0..actions {
            self.stats.actions += 1;
            let (steps, persists) = self.runnable();
            let links: Vec<usize> = (0..self.conns.len()).collect();
            let connectable: Vec<usize> = links
                .iter()
                .copied()
                .filter(|&l| self.connectable(l))
                .collect();
            let live: Vec<(usize, usize)> = links
                .iter()
                .filter(|&&l| self.conns[l].is_some())
                .flat_map(|&l| [(l, 0), (l, 1)])
                .collect();
            let with_frames: Vec<(usize, usize)> = live
                .iter()
                .copied()
                .filter(|&(l, s)| {
                    self.conns[l]
                        .as_ref()
                        .is_some_and(|c| !c.ends[s].inbox.is_empty())
                })
                .collect();
            // A probe goes to an end whose last step is persisted: the
            // session reads its own writes before its next input.
            let idle_ends: Vec<(usize, usize)> = live
                .iter()
                .copied()
                .filter(|&(l, s)| !self.can_persist(l, s))
                .collect();
            let up: Vec<usize> = (0..self.nodes.len())
                .filter(|&n| self.nodes[n].up)
                .collect();
            let down: Vec<usize> = (0..self.nodes.len())
                .filter(|&n| !self.nodes[n].up)
                .collect();
            let weights = [
                if steps.is_empty() { 0 } else { 40 },
                if persists.is_empty() { 0 } else { 30 },
                8,
                if connectable.is_empty() { 0 } else { 6 },
                if self.issues_left == 0 { 0 } else { 3 },
                if with_frames.is_empty() { 0 } else { 2 },
                if idle_ends.is_empty() { 0 } else { 2 },
                if up.len() < 2 { 0 } else { 1 },
                if down.is_empty() { 0 } else { 3 },
                1,
            ];
            let Some(action) = self.rng.weighted(&weights) else {
                break;
            };
            match action {
                0 => {
                    let (l, s) = steps[self.rng.below(steps.len())];
                    self.step(l, s)?;
                }
                1 => {
                    let (l, s) = persists[self.rng.below(persists.len())];
                    self.persist(l, s)?;
                }
                2 => {
                    // Mostly the time a frame takes; now and then a long
                    // silence, past the stall timeout on some clocks.
                    let by = if self.rng.chance(30) {
                        self.rng.range(30_000, 90_000)
                    } else {
                        self.rng.range(1, 500)
                    };
                    self.now_ms += by;
                    self.note(&[11, by]);
                }
                3 => {
                    let l = connectable[self.rng.below(connectable.len())];
                    self.connect(l);
                }
                4 => self.issue(),
                5 => {
                    let (l, s) = with_frames[self.rng.below(with_frames.len())];
                    self.drop_frame(l, s)?;
                }
                6 => {
                    let (l, s) = idle_ends[self.rng.below(idle_ends.len())];
                    self.probe(l, s)?;
                }
                7 => {
                    let n = up[self.rng.below(up.len())];
                    self.crash(n)?;
                }
                8 => {
                    let n = down[self.rng.below(down.len())];
                    self.restart(n)?;
                }
                _ => self.toggle_partition()?,
            }
        }
        Ok(())
    }

    /// The faults stop: the partition heals, every node comes back, every
    /// link connects, and steps and persists run (in random order still)
    /// until nothing is in flight anywhere.
    pub(super) fn heal(&mut self) -> Result<(), Broken> {
        self.partition = None;
        for n in 0..self.nodes.len() {
            if !self.nodes[n].up {
                self.restart(n)?;
            }
        }
        self.log("healed: no more faults");
        for _ in 0..HEAL_STEPS_MAX {
            for link in 0..self.conns.len() {
                if self.connectable(link) {
                    self.connect(link);
                }
            }
            let (steps, persists) = self.runnable();
            let both = steps.len() + persists.len();
            if both == 0 {
                return Ok(());
            }
            self.stats.heal_actions += 1;
            let i = self.rng.below(both);
            match steps.get(i) {
                Some(&(l, s)) => self.step(l, s)?,
                None => {
                    let (l, s) = persists[i - steps.len()];
                    self.persist(l, s)?;
                }
            }
        }
        Err(format!(
            "no quiet after {HEAL_STEPS_MAX} steps of a healed network"
        ))
    }

    /// The end state: every session idle and open, every store sound, and
    /// the network converged.
    pub(super) fn check_end(&self) -> Result<(), Broken> {
        for (link, conn) in self.conns.iter().enumerate() {
            let Some(conn) = conn else {
                return Err(format!("link {link} is not connected after healing"));
            };
            for (side, end) in conn.ends.iter().enumerate() {
                if !end.session.is_idle() || end.session.closed().is_some() {
                    return Err(format!(
                        "node {}'s session on link {link} still waits on its peer in a quiet network",
                        self.node_of(link, side)
                    ));
                }
            }
        }
        for (n, node) in self.nodes.iter().enumerate() {
            self.oracle.check_node(n, &node.store)?;
        }
        let stores: Vec<&MemNode> = self.nodes.iter().map(|n| &n.store).collect();
        for n in 0..self.nodes.len() {
            self.oracle.check_acks(n, &stores)?;
        }
        let held: Vec<BTreeSet<DocId>> = self.nodes.iter().map(|n| n.held_copy.clone()).collect();
        self.oracle.check_converged(&stores, &held)
    }
}

/// Takes everything a step produced out of a session.
fn drain(session: &mut Session) -> Batch {
    let mut batch = Batch {
        effects: Vec::new(),
        events: Vec::new(),
        transmits: Vec::new(),
    };
    while let Some(effect) = session.poll_effect() {
        batch.effects.push(effect);
    }
    while let Some(event) = session.poll_event() {
        batch.events.push(event);
    }
    while let Some(bytes) = session.poll_transmit() {
        batch.transmits.push(bytes);
    }
    batch
}

/// A frame, shortly, for the verbose trace.
fn describe(bytes: &[u8]) -> String {
    use labnet_protocol::sync::SyncMessage;
    match SyncMessage::decode(bytes) {
        Ok(SyncMessage::Inventory {
            entries, up_to_seq, ..
        }) => format!(
            "inventory up to {up_to_seq} {:?}",
            entries
                .iter()
                .map(|e| (short(&e.doc_id), e.version, e.retracted, e.seq))
                .collect::<Vec<_>>()
        ),
        Ok(SyncMessage::Want { items }) => format!(
            "want {:?}",
            items.iter().map(|i| short(&i.doc_id)).collect::<Vec<_>>()
        ),
        Ok(SyncMessage::Deliver { statement, .. }) => {
            match labnet_protocol::statement::SignedStatement::decode(&statement) {
                Ok(s) => format!(
                    "deliver {} v{} retracted {}",
                    short(&s.body.publication),
                    s.body.version,
                    s.body.retracted
                ),
                Err(_) => "deliver ?".into(),
            }
        }
        Ok(SyncMessage::InventoryAck { up_to_seq, .. }) => format!("ack {up_to_seq}"),
        Ok(SyncMessage::Withdraw { doc_id, seq }) => format!("withdraw {} {seq}", short(&doc_id)),
        Ok(other) => other.kind().to_string(),
        Err(e) => format!("undecodable: {e}"),
    }
}

fn short(doc_id: &DocId) -> String {
    let s = doc_id.as_str();
    format!(
        "{}..{}",
        &s[..4.min(s.len())],
        &s[s.len().saturating_sub(3)..]
    )
}

fn describe_effect(effect: &Effect) -> String {
    match effect {
        Effect::SaveVersion {
            doc_id,
            statement,
            data,
            ..
        } => format!(
            "save {} v{} via {} {}",
            short(doc_id),
            statement.version,
            statement.via.short(),
            match data {
                crate::sync::ReplicaData::Snapshot(_) => "snapshot",
                crate::sync::ReplicaData::Incremental(_) => "incremental",
            }
        ),
        Effect::SaveTombstone { doc_id, statement } => {
            format!("tombstone {} v{}", short(doc_id), statement.version)
        }
        Effect::Withdrawn { doc_id } => format!("withdrawn {}", short(doc_id)),
        Effect::SaveResumePoint { peer, point } => format!("resume {} {}", peer.short(), point.seq),
        Effect::RecordDelivery {
            peer,
            doc_id,
            version,
        } => {
            format!("delivered {} v{version} to {}", short(doc_id), peer.short())
        }
        other => format!("{other:?}").chars().take(40).collect(),
    }
}
