//! What can happen in the world, one method each: an origin's admin issues
//! a version, a link connects or dies, an end steps or persists its last
//! step, and the faults (a lost frame, a crash, a restart, a partition, a
//! probe with a frame out of context). The scheduler in the parent module
//! picks among them.

use std::collections::{BTreeSet, VecDeque};

use automerge::AutoCommit;
use labnet_config::Role;
use labnet_protocol::close::ViolationCode;
use labnet_protocol::sync::DocId;

use super::trace::{describe, describe_effect};
use super::{Batch, Conn, End, Probe, World};
use crate::share::publication::sample_body;
use crate::sync::harness::MemNode;
use crate::sync::sim::check::Broken;
use crate::sync::sim::{INPUTS_PER_STEP_MAX, REPLAYABLE_MAX};
use crate::sync::{Effect, Event, PeerInfo, SavedVersion, Session};
use crate::trust::Scope;

impl World {
    // ---- the origins' admins ------------------------------------------------

    pub(super) fn random_scope(&mut self, origin: usize) -> Scope {
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

    pub(super) fn publish(&mut self, origin: usize) {
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
    pub(super) fn issue(&mut self) {
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
    pub(super) fn notify(&mut self, n: usize) {
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

    pub(super) fn connectable(&self, link: usize) -> bool {
        let (a, b) = self.oracle.topo.links[link];
        self.conns[link].is_none() && self.nodes[a].up && self.nodes[b].up && !self.cut(link)
    }

    /// Opens a connection: a new session at each end, its first step's
    /// output (our `Resume`) waiting to be persisted and sent.
    pub(super) fn connect(&mut self, link: usize) {
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
    pub(super) fn kill(&mut self, link: usize) -> Result<(), Broken> {
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

    pub(super) fn timeout_due(&self, link: usize, side: usize) -> bool {
        let now = self.node_now(self.node_of(link, side));
        self.conns[link].as_ref().is_some_and(|c| {
            c.ends[side]
                .session
                .poll_timeout()
                .is_some_and(|deadline| now >= deadline)
        })
    }

    pub(super) fn can_step(&self, link: usize, side: usize) -> bool {
        let due = self.timeout_due(link, side);
        self.conns[link].as_ref().is_some_and(|c| {
            let end = &c.ends[side];
            end.pending.is_none() && (!end.inbox.is_empty() || end.local_pending || due)
        })
    }

    pub(super) fn can_persist(&self, link: usize, side: usize) -> bool {
        self.conns[link]
            .as_ref()
            .is_some_and(|c| c.ends[side].pending.is_some())
    }

    /// One step of one end, as the driver takes it: up to a few inputs
    /// (frames in order, a local change, a due timer), then every output
    /// drained into one batch that waits to be persisted.
    pub(super) fn step(&mut self, link: usize, side: usize) -> Result<(), Broken> {
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
    pub(super) fn persist(&mut self, link: usize, side: usize) -> Result<(), Broken> {
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
    pub(super) fn persist_batch(
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
                Effect::SaveVersion(SavedVersion {
                    doc_id, statement, ..
                }) if node.store.holds_version(doc_id, statement.version) => {
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
    pub(super) fn drop_frame(&mut self, link: usize, side: usize) -> Result<(), Broken> {
        if let Some(conn) = self.conns[link].as_mut() {
            conn.ends[side].inbox.pop_front();
        }
        self.stats.drops += 1;
        self.note(&[5, link as u64, side as u64]);
        self.kill(link)
    }

    /// A node crashes: every connection of it dies, and every step of it not
    /// yet persisted is lost, frames and effects alike.
    pub(super) fn crash(&mut self, n: usize) -> Result<(), Broken> {
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
    pub(super) fn restart(&mut self, n: usize) -> Result<(), Broken> {
        self.log(&format!("node {n} restarts"));
        self.note(&[7, n as u64]);
        self.nodes[n].up = true;
        self.oracle.check_node(n, &self.nodes[n].store)
    }

    pub(super) fn toggle_partition(&mut self) -> Result<(), Broken> {
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
    pub(super) fn probe(&mut self, link: usize, side: usize) -> Result<(), Broken> {
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
