//! The replica half of a session: our copies of the peer's publications.
//!
//! It follows the peer's index batch by batch, compares the announced heads
//! with our copies, asks for whole documents it holds nothing of, runs
//! Automerge's sync for the others (many at once, up to
//! `SessionConfig::docs_in_flight_max`), and acknowledges a batch once every
//! document of it is stored. Only the peer's own publications are accepted:
//! anything else is a violation, and nothing of the offending message is kept.

use std::collections::{HashMap, HashSet, VecDeque};

use automerge::sync::{self, SyncDoc};
use automerge::{AutoCommit, Change, ChangeHash, LoadOptions, OnPartialLoad, VerificationMode};
use labnet_protocol::close::ViolationCode;
use labnet_protocol::sync::{
    DocId, InventoryEntry, ResumePoint, SyncMessage, INVENTORY_BATCHES_UNACKED_MAX,
    INVENTORY_ENTRIES_MAX,
};
use tracing::{debug, trace};

use super::{guarded, sorted, state_at, Session, Side};
use crate::sync::{Effect, Event, ReplicaData, SyncView};

/// One inventory batch the replica has not acknowledged yet.
pub(super) struct PendingBatch {
    pub(super) up_to_seq: u64,
    /// Documents of this batch not stored yet.
    pub(super) waiting: HashSet<DocId>,
}

/// The replica half: receiving the peer's index and syncing what differs.
#[derive(Default)]
pub(super) struct ReplicaHalf {
    /// The peer's index epoch, fixed by its first batch.
    pub(super) epoch: Option<u64>,
    /// `up_to_seq` of the last batch received, to check order.
    pub(super) last_seq: Option<u64>,
    pub(super) batches: VecDeque<PendingBatch>,
    /// Heads announced for documents queued or syncing.
    pub(super) targets: HashMap<DocId, Vec<ChangeHash>>,
    /// Documents waiting for a sync slot.
    pub(super) queue: VecDeque<DocId>,
    /// Documents syncing now.
    pub(super) active: HashSet<DocId>,
    /// Documents we hold nothing of, asked for whole with `WantSnapshots`.
    pub(super) wanted: HashSet<DocId>,
    /// Ids to put in the next `WantSnapshots`.
    pub(super) want_buffer: Vec<DocId>,
    /// Ids listed by a full inventory, until it completes.
    pub(super) listed: Option<HashSet<DocId>>,
    /// The peer said its index is complete, and we have reported `CaughtUp` since
    /// the last batch.
    pub(super) complete_seen: bool,
    pub(super) caught_up_reported: bool,
}

/// Checks that every chunk of changes in a sync message loads, strictly.
///
/// Automerge's own loading drops a chunk it cannot parse and carries on, which
/// would hide a malformed message from us. Returns a loaded document when our
/// copy is empty (the message then carries the whole document, and loading it
/// once here replaces loading it again in `receive_sync_message`).
fn check_changes(doc: &AutoCommit, message: &sync::Message) -> Result<Option<AutoCommit>, String> {
    if message.changes.is_empty() {
        return Ok(None);
    }
    let strict = || {
        LoadOptions::new()
            .on_partial_load(OnPartialLoad::Error)
            .verification_mode(VerificationMode::Check)
    };
    if doc.is_empty() {
        let joined: Vec<u8> = message.changes.iter().flatten().copied().collect();
        return AutoCommit::load_with_options(&joined, strict())
            .map(Some)
            .map_err(|e| e.to_string());
    }
    for chunk in message.changes.iter() {
        // A change chunk (the usual V1 message), or else a document chunk (a V2
        // message sending most of the document).
        if Change::try_from(chunk).is_err() {
            AutoCommit::load_with_options(chunk, strict()).map_err(|e| e.to_string())?;
        }
    }
    Ok(None)
}

impl Session {
    pub(super) fn on_snapshot(&mut self, doc_id: DocId, bytes: Vec<u8>) {
        if !self.replica.wanted.remove(&doc_id) {
            return self.violation(
                ViolationCode::UnexpectedMessage,
                format!("snapshot of {doc_id}, which we did not ask for"),
            );
        }
        let loaded = guarded(|| {
            let strict = LoadOptions::new()
                .on_partial_load(OnPartialLoad::Error)
                .verification_mode(VerificationMode::Check);
            AutoCommit::load_with_options(&bytes, strict)
        });
        let Some(mut doc) = self.peer_outcome(
            loaded,
            ViolationCode::BadDocument,
            &format!("snapshot of {doc_id}"),
            "does not load",
        ) else {
            return;
        };
        let heads = sorted(doc.get_heads());
        self.effects.push_back(Effect::SaveReplica {
            doc_id: doc_id.clone(),
            origin: self.info.peer,
            heads: heads.clone(),
            data: ReplicaData::Snapshot(bytes),
        });
        self.effects.push_back(Effect::SaveSyncState {
            peer: self.info.peer,
            doc_id: doc_id.clone(),
            state: state_at(&heads),
        });
        self.events.push_back(Event::ReplicaChanged {
            doc_id: doc_id.clone(),
            heads,
        });
        let met = self
            .replica
            .targets
            .get(&doc_id)
            .is_none_or(|target| doc.get_missing_deps(target).is_empty());
        if met {
            self.finish_replica(&doc_id);
        } else {
            // The origin moved on since it announced: sync the rest normally
            // (the copy is stored now, so this is a small Automerge sync).
            self.replica.queue.push_back(doc_id);
        }
    }

    pub(super) fn on_inventory<V: SyncView + ?Sized>(
        &mut self,
        view: &V,
        epoch: u64,
        entries: Vec<InventoryEntry>,
        up_to_seq: u64,
        full: bool,
        complete: bool,
    ) {
        if self.replica.epoch.is_some_and(|e| e != epoch) {
            return self.violation(
                ViolationCode::InventoryOutOfOrder,
                "inventory epoch changed within a session".into(),
            );
        }
        if self.replica.last_seq.is_some_and(|last| up_to_seq < last)
            || entries.iter().any(|e| e.seq > up_to_seq)
        {
            return self.violation(
                ViolationCode::InventoryOutOfOrder,
                format!("inventory batch up to {up_to_seq} goes backwards"),
            );
        }
        if self.replica.batches.len() >= INVENTORY_BATCHES_UNACKED_MAX {
            return self.violation(
                ViolationCode::InventoryOutOfOrder,
                "more unacknowledged inventory batches than the window allows".into(),
            );
        }
        if self.info.peer_role == labnet_config::Role::Subscriber && !entries.is_empty() {
            // Subscribers are read-only: nothing they announce is accepted.
            return self.violation(
                ViolationCode::NotOrigin,
                "a subscriber announced a publication; subscribers cannot publish".into(),
            );
        }
        // Check every entry before acting on any, so a bad batch changes nothing.
        for entry in &entries {
            if labnet_protocol::sync::origin_of(&entry.doc_id) != Some(self.info.peer) {
                // A publication's id names its origin, so no node can announce
                // (and squat) an id that belongs to another, even before the real
                // origin has been heard from.
                return self.violation(
                    ViolationCode::NotOrigin,
                    format!(
                        "peer announced {}, whose id names another origin",
                        entry.doc_id
                    ),
                );
            }
            if view.publication(&entry.doc_id).is_some() {
                return self.violation(
                    ViolationCode::NotOrigin,
                    format!("peer announced {}, which we publish", entry.doc_id),
                );
            }
            if let Some(r) = view.replica(&entry.doc_id) {
                if r.origin != self.info.peer {
                    return self.violation(
                        ViolationCode::NotOrigin,
                        format!(
                            "peer announced {}, which another node publishes",
                            entry.doc_id
                        ),
                    );
                }
            }
        }
        self.replica.epoch = Some(epoch);
        self.replica.last_seq = Some(up_to_seq);
        if full && self.replica.listed.is_none() {
            self.replica.listed = Some(HashSet::new());
        }
        let mut waiting = HashSet::new();
        for entry in entries {
            if let Some(listed) = self.replica.listed.as_mut() {
                listed.insert(entry.doc_id.clone());
            }
            let announced = sorted(entry.heads.into_iter().map(ChangeHash).collect());
            let ours = match self.cache.get_mut(&entry.doc_id) {
                Some(l) => Some(sorted(l.doc.get_heads())),
                None => view.replica(&entry.doc_id).map(|r| sorted(r.heads)),
            };
            if ours.as_ref() == Some(&announced) {
                // Same heads: this publication costs its inventory entry only.
                continue;
            }
            trace!(doc = %entry.doc_id, "heads differ; syncing");
            let doc_id = entry.doc_id;
            if self
                .replica
                .targets
                .insert(doc_id.clone(), announced)
                .is_none()
            {
                self.replica.queue.push_back(doc_id.clone());
            } else if self.replica.active.contains(&doc_id) {
                // Already syncing: restart so the origin hears us ask again.
                self.restart_sync(&doc_id);
            }
            waiting.insert(doc_id);
        }
        self.replica
            .batches
            .push_back(PendingBatch { up_to_seq, waiting });
        self.replica.caught_up_reported = false;
        if complete {
            self.replica.complete_seen = true;
            if let Some(listed) = self.replica.listed.take() {
                self.drop_unlisted(view, &listed);
            }
        }
    }

    /// After a full inventory: copies of this origin's publications that it did
    /// not list were retracted, or left our scope, while we were away.
    pub(super) fn drop_unlisted<V: SyncView + ?Sized>(
        &mut self,
        view: &V,
        listed: &HashSet<DocId>,
    ) {
        for doc_id in view.replicas_of(self.info.peer) {
            if !listed.contains(&doc_id) {
                debug!(doc = %doc_id, "not in the origin's full inventory; deleting");
                self.forget_replica(&doc_id);
                self.effects.push_back(Effect::DeleteReplica {
                    doc_id: doc_id.clone(),
                });
                self.events.push_back(Event::RetractionReceived { doc_id });
            }
        }
    }

    /// Drops every trace of a replica from the session's memory.
    pub(super) fn forget_replica(&mut self, doc_id: &DocId) {
        self.discard(doc_id);
        self.replica.targets.remove(doc_id);
        self.replica.active.remove(doc_id);
        self.replica.wanted.remove(doc_id);
        self.replica.queue.retain(|d| d != doc_id);
        for batch in &mut self.replica.batches {
            batch.waiting.remove(doc_id);
        }
    }

    pub(super) fn on_retract<V: SyncView + ?Sized>(&mut self, view: &V, doc_id: DocId, seq: u64) {
        if view.publication(&doc_id).is_some()
            || view
                .replica(&doc_id)
                .is_some_and(|r| r.origin != self.info.peer)
        {
            return self.violation(
                ViolationCode::NotOrigin,
                format!("peer retracted {doc_id}, which it does not publish"),
            );
        }
        let held = view.replica(&doc_id).is_some()
            || self.replica.targets.contains_key(&doc_id)
            || self.cache.contains_key(&doc_id);
        self.forget_replica(&doc_id);
        if let Some(listed) = self.replica.listed.as_mut() {
            listed.remove(&doc_id);
        }
        if held {
            debug!(doc = %doc_id, seq, "publication retracted by its origin");
            self.effects.push_back(Effect::DeleteReplica {
                doc_id: doc_id.clone(),
            });
            self.events.push_back(Event::RetractionReceived {
                doc_id: doc_id.clone(),
            });
        }
        self.send(SyncMessage::RetractAck { doc_id });
    }

    /// Resets a running sync's state to its saved form, so the next generated
    /// message asks afresh (Automerge stays silent while a message is in flight).
    pub(super) fn restart_sync(&mut self, doc_id: &DocId) {
        let Some(loaded) = self.cache.get_mut(doc_id) else {
            return;
        };
        loaded.state = sync::State::decode(&loaded.state.encode()).unwrap_or_default();
        let message = loaded.doc.sync().generate_sync_message(&mut loaded.state);
        if let Some(message) = message {
            self.send(SyncMessage::DocSync {
                doc_id: doc_id.clone(),
                message: message.encode(),
            });
        }
    }

    /// Starts queued document syncs while there are free slots; documents we
    /// hold nothing of are asked for whole instead.
    pub(super) fn start_syncs<V: SyncView + ?Sized>(&mut self, view: &V) {
        self.start_syncs_inner(view);
        let wanted = std::mem::take(&mut self.replica.want_buffer);
        for chunk in wanted.chunks(INVENTORY_ENTRIES_MAX) {
            self.send(SyncMessage::WantSnapshots {
                doc_ids: chunk.to_vec(),
            });
        }
    }

    pub(super) fn start_syncs_inner<V: SyncView + ?Sized>(&mut self, view: &V) {
        while self.replica.active.len() < self.config.docs_in_flight_max {
            let Some(doc_id) = self.replica.queue.pop_front() else {
                return;
            };
            if !self.cache.contains_key(&doc_id) && view.replica(&doc_id).is_none() {
                // Nothing to negotiate: a snapshot costs one round trip and no
                // memory here until it arrives.
                self.replica.wanted.insert(doc_id.clone());
                self.replica.want_buffer.push(doc_id);
                continue;
            }
            if !self.load(view, &doc_id, Side::Replica) {
                // Local failure, reported; give up on this doc for this session
                // rather than hold the batch forever.
                self.finish_replica(&doc_id);
                continue;
            }
            self.replica.active.insert(doc_id.clone());
            if self.replica_has_target(&doc_id) {
                self.finish_replica(&doc_id);
                continue;
            }
            self.restart_sync(&doc_id);
        }
    }

    /// Whether our copy has every head the origin announced.
    pub(super) fn replica_has_target(&mut self, doc_id: &DocId) -> bool {
        let Some(target) = self.replica.targets.get(doc_id) else {
            return true;
        };
        match self.cache.get_mut(doc_id) {
            Some(loaded) => loaded.doc.get_missing_deps(target).is_empty(),
            None => false,
        }
    }

    /// A document's sync is done: save it and release its slot.
    pub(super) fn finish_replica(&mut self, doc_id: &DocId) {
        self.evict(doc_id);
        self.replica.active.remove(doc_id);
        self.replica.targets.remove(doc_id);
        for batch in &mut self.replica.batches {
            batch.waiting.remove(doc_id);
        }
    }

    pub(super) fn replica_doc_sync<V: SyncView + ?Sized>(
        &mut self,
        view: &V,
        doc_id: DocId,
        message: sync::Message,
    ) {
        if !self.load(view, &doc_id, Side::Replica) {
            return;
        }
        let Some(loaded) = self.cache.get_mut(&doc_id) else {
            return;
        };
        let mut message = message;
        // Automerge skips chunks it cannot parse; we want to know, so check first.
        let checked = guarded(|| check_changes(&loaded.doc, &message));
        let what = format!("changes for {doc_id}");
        let Some(first_copy) =
            self.peer_outcome(checked, ViolationCode::BadDocument, &what, "do not load")
        else {
            return;
        };
        let Some(loaded) = self.cache.get_mut(&doc_id) else {
            return;
        };
        if let Some(first_copy) = first_copy {
            // Our copy was empty and the message holds the whole document:
            // use the copy we just loaded instead of loading it twice.
            loaded.doc = first_copy;
            message.changes = Vec::<Vec<u8>>::new().into();
        }
        let outcome = guarded(|| {
            loaded
                .doc
                .sync()
                .receive_sync_message(&mut loaded.state, message)?;
            Ok::<_, automerge::AutomergeError>(
                loaded.doc.sync().generate_sync_message(&mut loaded.state),
            )
        });
        let Some(reply) =
            self.peer_outcome(outcome, ViolationCode::BadDocument, &what, "do not load")
        else {
            return;
        };
        let quiet = reply.is_none();
        if let Some(reply) = reply {
            self.send(SyncMessage::DocSync {
                doc_id: doc_id.clone(),
                message: reply.encode(),
            });
        }
        let targeted = self.replica.targets.contains_key(&doc_id);
        if (targeted && self.replica_has_target(&doc_id)) || (!targeted && quiet) {
            self.finish_replica(&doc_id);
        }
    }

    /// Acknowledges every leading batch whose documents are all stored.
    pub(super) fn try_ack(&mut self) {
        let mut acked = None;
        while let Some(batch) = self.replica.batches.front() {
            if !batch.waiting.is_empty() {
                break;
            }
            acked = Some(batch.up_to_seq);
            self.replica.batches.pop_front();
        }
        let Some(epoch) = self.replica.epoch else {
            return;
        };
        if let Some(up_to_seq) = acked {
            self.send(SyncMessage::InventoryAck { epoch, up_to_seq });
            // After the SaveReplica effects of those documents, so a crash in
            // between resumes too early (harmless), never too late.
            self.effects.push_back(Effect::SaveResumePoint {
                origin: self.info.peer,
                point: ResumePoint {
                    epoch,
                    seq: up_to_seq,
                },
            });
        }
        if self.replica.complete_seen
            && !self.replica.caught_up_reported
            && self.replica.batches.is_empty()
            && self.replica.queue.is_empty()
            && self.replica.active.is_empty()
            && self.replica.wanted.is_empty()
        {
            self.replica.caught_up_reported = true;
            debug!("caught up with peer's publications");
            self.events.push_back(Event::CaughtUp);
        }
    }
}
