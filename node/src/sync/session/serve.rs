//! The serving half of a session: our index, as the peer may see it.
//!
//! It waits for the peer's `Resume`, streams our index from there in windowed
//! batches, and answers `Want` with the origin's statement and the change
//! chunks after the heads the peer holds. Our index holds our own
//! publications and the `public` publications of other origins we relay.
//!
//! Who sees what, decided here before an id goes out:
//! - our own publications: [`visible_to`] their scope; a retracted one is
//!   announced to every peer that may have it (a public one to all, since
//!   relays spread it; a narrower one to the peers it was delivered to);
//! - relayed publications (always public): partners and subscribers alike,
//!   except the origin itself;
//! - a node whose own role is subscriber serves nothing.
//!
//! Each version is answered once per session: a `Want` naming one id twice,
//! or naming a version this session already delivered, is a violation. A
//! receiver asks again only for a version announced newer than what it got,
//! so an honest peer never does either, and a hostile one cannot turn one
//! small request into many full deliveries. What was delivered is remembered
//! per publication, so the memory is bounded by the index the peer may see.

use std::collections::{HashMap, HashSet, VecDeque};

use labnet_config::Role;
use labnet_protocol::close::ViolationCode;
use labnet_protocol::sync::{
    Announcement, DocId, Inventory, ResumePoint, SyncMessage, WantItem, CHANGES_PER_DELIVERY_MAX,
    CHANGE_CHUNK_LEN_MAX, INVENTORY_BATCHES_UNACKED_MAX, INVENTORY_ENTRIES_MAX, MESSAGE_LEN_MAX,
    SYNC_PROTOCOL_VERSION,
};
use tracing::{debug, trace};

use automerge::ChangeHash;

use super::{sorted, Session};
use crate::sync::{Effect, Event, ServedEntry, SyncView};
use crate::trust::{visible_to, Scope};

/// Bytes of a `Deliver` message besides its statement and chunks: the tag
/// and the length prefixes, with room to spare.
const DELIVER_OVERHEAD_BYTES: usize = 64;

/// The serving half: streaming our index to the peer.
#[derive(Default)]
pub(super) struct ServeHalf {
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
    /// Withdrawals sent and not acknowledged.
    pub(super) withdraws_pending: HashSet<DocId>,
    /// The version of each publication delivered on this session: a `Want`
    /// for it again, at that version, is refused rather than answered twice.
    pub(super) delivered: HashMap<DocId, u64>,
    /// Our own publications announced in this session (at most our index):
    /// a `Want` for one that left the peer's sight since is answered with a
    /// withdrawal, not punished, and nobody else learns the id exists.
    pub(super) announced_own: HashSet<DocId>,
}

/// What the peer may be told about one entry of our index.
enum Visibility {
    /// Announce it (and answer `Want` for it).
    Announce,
    /// Ours, delivered to the peer, no longer in its scope: withdraw it.
    Withdraw,
    /// Nothing: the peer never learns the id.
    Hidden,
}

impl Session {
    /// Whether the peer may see `entry`, and so what to tell it.
    fn visibility<V: SyncView + ?Sized>(
        &mut self,
        view: &V,
        entry: &ServedEntry,
    ) -> Option<Visibility> {
        if self.info.local_role == Role::Subscriber || entry.origin == self.info.peer {
            return Some(Visibility::Hidden);
        }
        let Some(scope) = &entry.scope else {
            // Relayed: public, for partners and subscribers alike.
            return Some(Visibility::Announce);
        };
        let in_scope = visible_to(scope, self.info.peer, self.info.peer_role);
        let queued = self.queued_delivery(&entry.doc_id);
        let delivered = || match queued {
            Some(delivered) => Ok(delivered),
            None => view.delivered(self.info.peer, &entry.doc_id),
        };
        let visibility = match (entry.retracted, in_scope) {
            (false, true) => Visibility::Announce,
            // Public retractions go to everyone in scope: relays spread the
            // publication further than our deliveries record.
            (true, true) if *scope == Scope::Public => Visibility::Announce,
            // A retraction goes to whoever got a version, and a publication
            // no longer in scope is withdrawn from whoever got one.
            (retracted, _) => match self.read("reading deliveries", delivered())? {
                false => Visibility::Hidden,
                true if retracted => Visibility::Announce,
                true => Visibility::Withdraw,
            },
        };
        Some(visibility)
    }

    pub(super) fn on_resume<V: SyncView + ?Sized>(
        &mut self,
        view: &V,
        version: u16,
        from: Option<ResumePoint>,
    ) {
        if self.serve.resumed {
            return self.violation(ViolationCode::UnexpectedMessage, "second Resume".into());
        }
        if version != SYNC_PROTOCOL_VERSION {
            return self.violation(
                ViolationCode::UnsupportedVersion,
                format!(
                    "peer speaks sync version {version}, we speak {SYNC_PROTOCOL_VERSION}: upgrade the older node"
                ),
            );
        }
        let Some(epoch) = self.read("reading the index epoch", view.index_epoch()) else {
            return;
        };
        let Some(acked) = self.read(
            "reading the peer's acknowledgement",
            view.peer_acked(self.info.peer),
        ) else {
            return;
        };
        self.serve.resumed = true;
        self.serve.epoch = epoch;
        match (from, acked) {
            // Resume from the lower of what the peer says it holds and what we
            // recorded it acknowledged: a decision about the peer (a new role,
            // a revocation) forgets our record, and the whole index is then
            // checked against what the peer may see now, unchanged
            // publications included, withdrawing what it may no longer see.
            (Some(point), Some(acked)) if point.epoch == epoch && acked.epoch == epoch => {
                self.serve.cursor_seq = point.seq.min(acked.seq);
                self.serve.full = false;
            }
            // First contact, our index was rebuilt since, or the peer's view
            // changed: everything.
            _ => {
                self.serve.cursor_seq = 0;
                self.serve.full = true;
            }
        }
        debug!(
            full = self.serve.full,
            from_seq = self.serve.cursor_seq,
            "peer resumes our index"
        );
        self.pump_inventory(view);
    }

    /// Sends inventory batches from the cursor while the window allows.
    pub(super) fn pump_inventory<V: SyncView + ?Sized>(&mut self, view: &V) {
        if !self.serve.resumed {
            return;
        }
        while self.serve.unacked.len() < INVENTORY_BATCHES_UNACKED_MAX {
            let Some(rows) = self.read(
                "reading our index",
                view.served_after(self.serve.cursor_seq, INVENTORY_ENTRIES_MAX),
            ) else {
                return;
            };
            let reached_end = rows.len() < INVENTORY_ENTRIES_MAX;
            let before_seq = self.serve.cursor_seq;
            let mut entries = Vec::new();
            for row in rows {
                // Never move backwards even if the view misorders rows.
                self.serve.cursor_seq = self.serve.cursor_seq.max(row.seq);
                let Some(visibility) = self.visibility(view, &row) else {
                    return;
                };
                match visibility {
                    Visibility::Announce => {
                        if row.origin == self.info.local {
                            self.serve.announced_own.insert(row.doc_id.clone());
                        }
                        entries.push(Announcement {
                            doc_id: row.doc_id,
                            version: row.version,
                            retracted: row.retracted,
                            seq: row.seq,
                        })
                    }
                    Visibility::Withdraw => self.withdraw(row.doc_id, row.seq),
                    Visibility::Hidden => {}
                }
            }
            let first_complete = reached_end && !self.serve.complete_sent;
            if entries.is_empty() && !first_complete {
                if reached_end || self.serve.cursor_seq == before_seq {
                    return;
                }
                // Only rows the peer may not see: keep scanning without a message.
                continue;
            }
            self.send(SyncMessage::Inventory(Inventory {
                epoch: self.serve.epoch,
                entries,
                up_to_seq: self.serve.cursor_seq,
                full: self.serve.full && !self.serve.complete_sent,
                complete: reached_end,
            }));
            self.serve.unacked.push_back(self.serve.cursor_seq);
            if reached_end {
                self.serve.complete_sent = true;
                return;
            }
        }
    }

    /// Tells the peer to drop one of our publications, once: a second
    /// `Withdraw` while one is unacknowledged would get a second ack, which
    /// would acknowledge nothing.
    fn withdraw(&mut self, doc_id: DocId, seq: u64) {
        if self.serve.withdraws_pending.insert(doc_id.clone()) {
            debug!(doc = %doc_id, "withdrawing from peer");
            self.send(SyncMessage::Withdraw { doc_id, seq });
        }
    }

    pub(super) fn on_inventory_ack<V: SyncView + ?Sized>(
        &mut self,
        view: &V,
        epoch: u64,
        up_to_seq: u64,
    ) {
        if epoch != self.serve.epoch || !self.serve.unacked.contains(&up_to_seq) {
            return self.violation(
                ViolationCode::UnexpectedMessage,
                format!("ack of seq {up_to_seq} that was not sent"),
            );
        }
        while let Some(&seq) = self.serve.unacked.front() {
            if seq > up_to_seq {
                break;
            }
            self.serve.unacked.pop_front();
        }
        self.events.push_back(Event::PeerAcked { seq: up_to_seq });
        self.effects.push_back(Effect::SaveAckedSeq {
            peer: self.info.peer,
            role: self.info.peer_role,
            acked: ResumePoint {
                epoch,
                seq: up_to_seq,
            },
        });
        self.pump_inventory(view);
    }

    pub(super) fn on_withdraw_ack(&mut self, doc_id: DocId) {
        if !self.serve.withdraws_pending.remove(&doc_id) {
            return self.violation(
                ViolationCode::UnexpectedMessage,
                format!("WithdrawAck for {doc_id}, which was not withdrawn"),
            );
        }
        debug!(doc = %doc_id, "peer deleted a withdrawn publication");
        self.effects.push_back(Effect::DeleteDelivery {
            peer: self.info.peer,
            doc_id,
        });
    }

    /// Answers a `Want`: every id is checked before anything is sent, and an
    /// id the peer may not see gets the answer an unknown id gets.
    pub(super) fn on_want<V: SyncView + ?Sized>(&mut self, view: &V, items: Vec<WantItem>) {
        if !self.serve.resumed {
            return self.violation(
                ViolationCode::UnexpectedMessage,
                "Want before Resume".into(),
            );
        }
        let mut seen = HashSet::new();
        let mut entries = Vec::with_capacity(items.len());
        for item in &items {
            if !seen.insert(&item.doc_id) {
                // One answer per publication: a request naming one id many
                // times must not cost many deliveries.
                return self.violation(
                    ViolationCode::UnexpectedMessage,
                    format!("Want names {} twice", item.doc_id),
                );
            }
            let Some(entry) = self.read("reading our index", view.served(&item.doc_id)) else {
                return;
            };
            let visible = match &entry {
                Some(entry) => match self.visibility(view, entry) {
                    Some(v) => matches!(v, Visibility::Announce),
                    None => return,
                },
                None => false,
            };
            if let Some(entry) = entry.as_ref().filter(|_| visible) {
                if self
                    .serve
                    .delivered
                    .get(&item.doc_id)
                    .is_some_and(|&v| v >= entry.version)
                {
                    return self.violation(
                        ViolationCode::UnexpectedMessage,
                        format!(
                            "Want for {} at version {}, already delivered on this session",
                            item.doc_id, entry.version
                        ),
                    );
                }
            }
            match entry {
                Some(entry) if visible => entries.push(Ok(entry)),
                // Announced to the peer in this session, then re-scoped or
                // retracted out of its sight before its `Want` arrived: the
                // peer did nothing wrong; it is told to drop the id.
                Some(entry)
                    if entry.origin == self.info.local
                        && self.serve.announced_own.contains(&item.doc_id) =>
                {
                    entries.push(Err(entry.seq))
                }
                _ => {
                    return self.violation(
                        ViolationCode::UnknownDoc,
                        format!("Want for unknown document {}", item.doc_id),
                    )
                }
            }
        }
        for (item, entry) in items.into_iter().zip(entries) {
            match entry {
                Ok(entry) => self.deliver(view, entry, &item.have),
                Err(seq) => self.withdraw(item.doc_id, seq),
            }
            if self.closed.is_some() {
                return;
            }
        }
    }

    /// Sends one publication's current version: its statement, and the changes
    /// after `have` (all of them when the peer holds nothing).
    fn deliver<V: SyncView + ?Sized>(&mut self, view: &V, entry: ServedEntry, have: &[[u8; 32]]) {
        let doc_id = entry.doc_id.clone();
        let Some(statement) = self.read("reading a statement", view.statement(&doc_id)) else {
            return;
        };
        let Some(statement) = statement else {
            return self.local_failure(
                "reading a statement",
                format!("{doc_id} is in the index without a statement").into(),
            );
        };
        let mut changes = Vec::new();
        let mut heads = Vec::new();
        if !entry.retracted {
            let Some(doc) = self.read("loading a publication", view.load_served(&doc_id)) else {
                return;
            };
            let Some(mut doc) = doc else {
                return self.local_failure(
                    "loading a publication",
                    format!("{doc_id} is in the index but not in the store").into(),
                );
            };
            let have: Vec<ChangeHash> = have.iter().map(|h| ChangeHash(*h)).collect();
            let mut bytes = statement.len() + DELIVER_OVERHEAD_BYTES;
            for mut change in doc.get_changes(&have) {
                // Automerge's own compressed form (DEFLATE, for changes over a
                // few hundred bytes): the receiver inflates it itself, under a
                // cap, so compression costs the receiver nothing it has not
                // bounded, and saves the link most of a practice's bytes.
                let chunk = change.bytes();
                bytes += chunk.len() + 10;
                if chunk.len() > CHANGE_CHUNK_LEN_MAX
                    || changes.len() >= CHANGES_PER_DELIVERY_MAX
                    || bytes > MESSAGE_LEN_MAX
                {
                    return self.local_failure(
                        "delivering a publication",
                        format!(
                            "{doc_id} has more history than one delivery may carry; re-issue it"
                        )
                        .into(),
                    );
                }
                changes.push(chunk.into_owned());
            }
            heads = sorted(doc.get_heads());
        }
        trace!(doc = %doc_id, changes = changes.len(), "delivering");
        self.serve.delivered.insert(doc_id.clone(), entry.version);
        if entry.origin == self.info.local {
            self.events.push_back(Event::Disclosed {
                doc_id: doc_id.clone(),
                heads,
            });
            self.effects.push_back(Effect::RecordDelivery {
                peer: self.info.peer,
                doc_id,
                version: entry.version,
            });
        }
        self.send(SyncMessage::Deliver { statement, changes });
    }
}
