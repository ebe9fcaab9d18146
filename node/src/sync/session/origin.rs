//! The origin half of a session: our publications, as the peer may see them.
//!
//! It waits for the peer's `Resume`, streams our index from there in windowed
//! batches (skipping what the peer may not see, retracting what it may no
//! longer see), answers `WantSnapshots` with whole documents and `DocSync` with
//! Automerge's replies, and turns the peer's acknowledgements into events.
//! Every publication is checked with [`visible_to`] before its id goes out.

use std::collections::{HashSet, VecDeque};

use automerge::sync::{self, SyncDoc};
use labnet_protocol::close::ViolationCode;
use labnet_protocol::sync::{
    DocId, InventoryEntry, ResumePoint, SyncMessage, HEADS_PER_ENTRY_MAX,
    INVENTORY_BATCHES_UNACKED_MAX, INVENTORY_ENTRIES_MAX, SYNC_PROTOCOL_VERSION,
};
use tracing::{debug, trace, warn};

use super::{guarded, sorted, state_at, Session, Side};
use crate::sync::{Effect, Event, SyncView};
use crate::trust::visible_to;

/// The origin half: streaming our index to the peer.
#[derive(Default)]
pub(super) struct OriginHalf {
    /// The peer's `Resume` arrived; nothing is announced before it.
    pub(super) resumed: bool,
    pub(super) epoch: u64,
    /// The highest index sequence number scanned so far.
    pub(super) cursor_seq: u64,
    /// This session's inventory started from 0.
    pub(super) full: bool,
    /// A batch reaching the end of the index was sent.
    pub(super) complete_sent: bool,
    /// `up_to_seq` of batches sent and not acknowledged, oldest first.
    pub(super) unacked: VecDeque<u64>,
    /// Retractions sent and not confirmed.
    pub(super) retracts_pending: HashSet<DocId>,
}

impl Session {
    pub(super) fn on_resume<V: SyncView + ?Sized>(
        &mut self,
        view: &V,
        version: u16,
        from: Option<ResumePoint>,
    ) {
        if self.origin.resumed {
            return self.violation(ViolationCode::UnexpectedMessage, "second Resume".into());
        }
        if version != SYNC_PROTOCOL_VERSION {
            return self.violation(
                ViolationCode::UnsupportedVersion,
                format!("peer speaks sync version {version}, we speak {SYNC_PROTOCOL_VERSION}"),
            );
        }
        let epoch = view.index_epoch();
        self.origin.resumed = true;
        self.origin.epoch = epoch;
        match from {
            Some(point) if point.epoch == epoch => {
                self.origin.cursor_seq = point.seq;
                self.origin.full = false;
            }
            // First contact, or our index was rebuilt since: everything.
            _ => {
                self.origin.cursor_seq = 0;
                self.origin.full = true;
            }
        }
        debug!(
            full = self.origin.full,
            from_seq = self.origin.cursor_seq,
            "peer resumes our index"
        );
        self.pump_inventory(view);
    }

    /// Whether the peer was sent this publication and has not confirmed deleting it.
    pub(super) fn peer_has<V: SyncView + ?Sized>(&self, view: &V, doc_id: &DocId) -> bool {
        self.cache.get(doc_id).map(|l| l.side) == Some(Side::Origin)
            || view.sync_state(self.info.peer, doc_id).is_some()
    }

    /// Sends inventory batches from the cursor while the window allows.
    pub(super) fn pump_inventory<V: SyncView + ?Sized>(&mut self, view: &V) {
        if !self.origin.resumed {
            return;
        }
        while self.origin.unacked.len() < INVENTORY_BATCHES_UNACKED_MAX {
            let rows = view.publications_after(self.origin.cursor_seq, INVENTORY_ENTRIES_MAX);
            let reached_end = rows.len() < INVENTORY_ENTRIES_MAX;
            let before_seq = self.origin.cursor_seq;
            let mut entries = Vec::new();
            for row in rows {
                // Never move backwards even if the view misorders rows.
                self.origin.cursor_seq = self.origin.cursor_seq.max(row.seq);
                let visible =
                    !row.retracted && visible_to(&row.scope, self.info.peer, self.info.peer_role);
                if visible {
                    entries.push(InventoryEntry {
                        doc_id: row.doc_id,
                        heads: sorted(row.heads)
                            .into_iter()
                            .take(HEADS_PER_ENTRY_MAX)
                            .map(|h| h.0)
                            .collect(),
                        seq: row.seq,
                    });
                } else if self.peer_has(view, &row.doc_id) {
                    // Retracted, or the scope no longer includes the peer: it had
                    // the publication, so it must delete it.
                    if self.cache.get(&row.doc_id).map(|l| l.side) == Some(Side::Origin) {
                        self.discard(&row.doc_id);
                    }
                    debug!(doc = %row.doc_id, "retracting from peer");
                    self.origin.retracts_pending.insert(row.doc_id.clone());
                    self.send(SyncMessage::Retract {
                        doc_id: row.doc_id,
                        seq: row.seq,
                    });
                }
                // Otherwise the peer never saw it and learns nothing, not its id.
            }
            let first_complete = reached_end && !self.origin.complete_sent;
            if entries.is_empty() && !first_complete {
                if reached_end {
                    return;
                }
                if self.origin.cursor_seq == before_seq {
                    // A view that returns rows it should not: stop rather than spin.
                    return;
                }
                // Only rows the peer may not see: keep scanning without a message.
                continue;
            }
            self.send(SyncMessage::Inventory {
                epoch: self.origin.epoch,
                entries,
                up_to_seq: self.origin.cursor_seq,
                full: self.origin.full && !self.origin.complete_sent,
                complete: reached_end,
            });
            self.origin.unacked.push_back(self.origin.cursor_seq);
            if reached_end {
                self.origin.complete_sent = true;
                return;
            }
        }
    }

    pub(super) fn on_inventory_ack<V: SyncView + ?Sized>(
        &mut self,
        view: &V,
        epoch: u64,
        up_to_seq: u64,
    ) {
        if epoch != self.origin.epoch || !self.origin.unacked.contains(&up_to_seq) {
            return self.violation(
                ViolationCode::UnexpectedMessage,
                format!("ack of seq {up_to_seq} that was not sent"),
            );
        }
        while let Some(&seq) = self.origin.unacked.front() {
            if seq > up_to_seq {
                break;
            }
            self.origin.unacked.pop_front();
        }
        self.events.push_back(Event::PeerAcked { seq: up_to_seq });
        self.effects.push_back(Effect::SaveAckedSeq {
            peer: self.info.peer,
            epoch,
            seq: up_to_seq,
        });
        self.pump_inventory(view);
    }

    pub(super) fn on_retract_ack(&mut self, doc_id: DocId) {
        if !self.origin.retracts_pending.remove(&doc_id) {
            return self.violation(
                ViolationCode::UnexpectedMessage,
                format!("RetractAck for {doc_id}, which was not retracted"),
            );
        }
        debug!(doc = %doc_id, "peer confirmed retraction");
        self.effects.push_back(Effect::DeleteSyncState {
            peer: self.info.peer,
            doc_id: doc_id.clone(),
        });
        self.events.push_back(Event::RetractionConfirmed {
            doc_id,
            peer: self.info.peer,
        });
    }

    pub(super) fn on_doc_sync<V: SyncView + ?Sized>(
        &mut self,
        view: &V,
        doc_id: DocId,
        bytes: &[u8],
    ) {
        let decoded = guarded(|| sync::Message::decode(bytes));
        let Some(message) = self.peer_outcome(
            decoded,
            ViolationCode::MalformedSyncMessage,
            &format!("sync message for {doc_id}"),
            "does not decode",
        ) else {
            return;
        };
        if let Some(entry) = view.publication(&doc_id) {
            // Ours. Scope first: a peer outside it gets the same answer as for an
            // id that does not exist, so it cannot probe for ids.
            if entry.retracted || !visible_to(&entry.scope, self.info.peer, self.info.peer_role) {
                return self.violation(
                    ViolationCode::UnknownDoc,
                    format!("sync for unknown document {doc_id}"),
                );
            }
            if !message.changes.is_empty() {
                return self.violation(
                    ViolationCode::ForgedChange,
                    format!("peer sent changes into our publication {doc_id}"),
                );
            }
            return self.origin_doc_sync(view, doc_id, message);
        }
        let announced = self.replica.targets.contains_key(&doc_id)
            || self.cache.get(&doc_id).map(|l| l.side) == Some(Side::Replica);
        match view.replica(&doc_id) {
            Some(r) if r.origin != self.info.peer => {
                let code = if message.changes.is_empty() {
                    ViolationCode::NotOrigin
                } else {
                    ViolationCode::ForgedChange
                };
                self.violation(
                    code,
                    format!("sync for {doc_id}, which the peer did not publish"),
                )
            }
            Some(_) => self.replica_doc_sync(view, doc_id, message),
            None if announced => self.replica_doc_sync(view, doc_id, message),
            None => self.violation(
                ViolationCode::UnknownDoc,
                format!("sync for {doc_id}, which the peer never announced"),
            ),
        }
    }

    pub(super) fn origin_doc_sync<V: SyncView + ?Sized>(
        &mut self,
        view: &V,
        doc_id: DocId,
        message: sync::Message,
    ) {
        if !self.load(view, &doc_id, Side::Origin) {
            return;
        }
        let Some(loaded) = self.cache.get_mut(&doc_id) else {
            return;
        };
        let outcome = guarded(|| {
            loaded
                .doc
                .sync()
                .receive_sync_message(&mut loaded.state, message)?;
            let reply = loaded.doc.sync().generate_sync_message(&mut loaded.state);
            let heads = reply
                .as_ref()
                .filter(|m| !m.changes.is_empty())
                .map(|_| sorted(loaded.doc.get_heads()));
            Ok::<_, automerge::AutomergeError>((reply, heads))
        });
        if !matches!(outcome, Some(Ok(_))) {
            // Our own document, touched by a call that failed: reload it next time.
            self.discard(&doc_id);
        }
        let Some((reply, disclosed)) = self.peer_outcome(
            outcome,
            ViolationCode::MalformedSyncMessage,
            &format!("sync message for {doc_id}"),
            "refused",
        ) else {
            return;
        };
        match reply {
            Some(reply) => {
                if let Some(heads) = disclosed {
                    trace!(doc = %doc_id, "disclosed");
                    self.events.push_back(Event::Disclosed {
                        doc_id: doc_id.clone(),
                        heads,
                    });
                    // Save now: the saved state is also the record that the peer
                    // has this publication, which decides whether a later scope
                    // change must retract it.
                    if let Some(mut loaded) = self.cache.remove(&doc_id) {
                        self.save_state(&doc_id, &mut loaded);
                        self.cache.insert(doc_id.clone(), loaded);
                    }
                }
                self.send(SyncMessage::DocSync {
                    doc_id,
                    message: reply.encode(),
                });
            }
            // Nothing more to say: this document's sync is quiet, free the memory.
            None => self.evict(&doc_id),
        }
    }

    pub(super) fn on_want_snapshots<V: SyncView + ?Sized>(
        &mut self,
        view: &V,
        doc_ids: Vec<DocId>,
    ) {
        // Check every id before sending anything.
        for doc_id in &doc_ids {
            let visible = view.publication(doc_id).is_some_and(|entry| {
                !entry.retracted && visible_to(&entry.scope, self.info.peer, self.info.peer_role)
            });
            if !visible {
                return self.violation(
                    ViolationCode::UnknownDoc,
                    format!("snapshot wanted of unknown document {doc_id}"),
                );
            }
        }
        for doc_id in doc_ids {
            let mut doc = match view.load_publication(&doc_id) {
                Ok(Some(doc)) => doc,
                Ok(None) => {
                    self.events.push_back(Event::LocalFailure {
                        doc_id,
                        reason: "publication in the index but not in the store".into(),
                    });
                    continue;
                }
                Err(e) => {
                    warn!(doc = %doc_id, error = %e, "cannot load publication");
                    self.events.push_back(Event::LocalFailure {
                        doc_id,
                        reason: e.to_string(),
                    });
                    continue;
                }
            };
            // A running sync's state predates the snapshot; start afresh from it.
            self.discard(&doc_id);
            let bytes = doc.save();
            let heads = sorted(doc.get_heads());
            self.effects.push_back(Effect::SaveSyncState {
                peer: self.info.peer,
                doc_id: doc_id.clone(),
                state: state_at(&heads),
            });
            trace!(doc = %doc_id, "disclosed as snapshot");
            self.events.push_back(Event::Disclosed {
                doc_id: doc_id.clone(),
                heads,
            });
            self.send(SyncMessage::Snapshot { doc_id, bytes });
        }
    }
}
