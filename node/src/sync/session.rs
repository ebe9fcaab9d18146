//! The sync session: a sans-IO state machine per peer connection.
//!
//! One [`Session`] runs both halves of the exchange with one peer:
//!
//! ```text
//!  origin half (our publications)            replica half (the peer's publications)
//!  ──────────────────────────────            ──────────────────────────────────────
//!  wait for the peer's Resume                send Resume(our resume point) at creation
//!  cursor := resume seq (or 0: full)         Inventory batch ──▶ compare heads per entry
//!  loop while < 4 batches unacked:             equal: done         differ: queue doc
//!    rows := publications_after(cursor)      start up to N docs: load copy + sync state,
//!    visible → entry; seen, now hidden         send DocSync(first Automerge message);
//!                                               docs we hold nothing of: WantSnapshots
//!  WantSnapshots: scope → Snapshot(save())   Snapshot ──▶ strict load → SaveReplica
//!      → Retract; else → skip silently       DocSync from origin ──▶ apply, reply;
//!    send Inventory(entries, up_to_seq)        doc has the announced heads → SaveReplica,
//!  DocSync from replica:                        SaveSyncState, ReplicaChanged
//!    scope? changes? → violation             oldest batch fully stored → InventoryAck,
//!    load doc + state on demand, reply          SaveResumePoint
//!    (Disclosed if the reply has changes)    Retract ──▶ DeleteReplica, RetractAck
//!  InventoryAck → PeerAcked, window opens
//!  RetractAck → RetractionConfirmed
//! ```
//!
//! Documents are loaded only while their sync runs and live in a small cache
//! (`SessionConfig::docs_loaded_max`); the index is read as plain rows. A
//! document whose heads already match costs one inventory entry and nothing
//! else. Many documents sync at once (`SessionConfig::docs_in_flight_max`), so
//! a connection with a round-trip time of `rtt` moves about
//! `docs_in_flight_max / (1.5 * rtt)` documents per second, not one per round trip.
//!
//! Every Automerge call on data a peer controls runs under `catch_unwind`: an
//! Automerge bug triggered by a peer's bytes becomes a protocol violation, not a
//! crashed node. The document touched is dropped from the cache unsaved.

use std::collections::{HashMap, HashSet, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};

use automerge::sync::{self, SyncDoc};
use automerge::{AutoCommit, Change, ChangeHash, LoadOptions, OnPartialLoad, VerificationMode};
use labnet_protocol::sync::{
    DocId, InventoryEntry, ResumePoint, SyncMessage, HEADS_PER_ENTRY_MAX,
    INVENTORY_BATCHES_UNACKED_MAX, INVENTORY_ENTRIES_MAX, SYNC_PROTOCOL_VERSION,
};
use labnet_protocol::NodeId;
use tracing::{debug, trace, warn};

use super::{visible_to, Effect, Event, PeerInfo, ReplicaData, SyncView, ViewError};
use labnet_protocol::close::ViolationCode;

/// Limits of one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    /// How many of the peer's documents we sync at once. More hides more
    /// round-trip time; each costs one loaded document (~25 KiB).
    pub docs_in_flight_max: usize,
    /// How many documents (ours and the peer's) the session keeps loaded. The
    /// least recently used is saved and dropped beyond this.
    pub docs_loaded_max: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            docs_in_flight_max: 256,
            docs_loaded_max: 512,
        }
    }
}

/// Which half of the session a loaded document belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// One of our publications.
    Origin,
    /// Our copy of one of the peer's publications.
    Replica,
}

/// A document loaded for a running sync, with its sync state.
struct Loaded {
    side: Side,
    doc: AutoCommit,
    state: sync::State,
    /// The state's encoding as last saved, so unchanged states are not rewritten.
    saved_state: Option<Vec<u8>>,
    /// Replica: the heads of the copy as stored (`None`: not stored yet, so the
    /// next save is a snapshot). `save_after` these heads gives what is new.
    saved_heads: Option<Vec<ChangeHash>>,
}

/// One inventory batch the replica has not acknowledged yet.
struct PendingBatch {
    up_to_seq: u64,
    /// Documents of this batch not stored yet.
    waiting: HashSet<DocId>,
}

/// The origin half: streaming our index to the peer.
#[derive(Default)]
struct OriginHalf {
    /// The peer's `Resume` arrived; nothing is announced before it.
    resumed: bool,
    epoch: u64,
    /// The highest index sequence number scanned so far.
    cursor_seq: u64,
    /// This session's inventory started from 0.
    full: bool,
    /// A batch reaching the end of the index was sent.
    complete_sent: bool,
    /// `up_to_seq` of batches sent and not acknowledged, oldest first.
    unacked: VecDeque<u64>,
    /// Retractions sent and not confirmed.
    retracts_pending: HashSet<DocId>,
}

/// The replica half: receiving the peer's index and syncing what differs.
#[derive(Default)]
struct ReplicaHalf {
    /// The peer's index epoch, fixed by its first batch.
    epoch: Option<u64>,
    /// `up_to_seq` of the last batch received, to check order.
    last_seq: Option<u64>,
    batches: VecDeque<PendingBatch>,
    /// Heads announced for documents queued or syncing.
    targets: HashMap<DocId, Vec<ChangeHash>>,
    /// Documents waiting for a sync slot.
    queue: VecDeque<DocId>,
    /// Documents syncing now.
    active: HashSet<DocId>,
    /// Documents we hold nothing of, asked for whole with `WantSnapshots`.
    wanted: HashSet<DocId>,
    /// Ids to put in the next `WantSnapshots`.
    want_buffer: Vec<DocId>,
    /// Ids listed by a full inventory, until it completes.
    listed: Option<HashSet<DocId>>,
    /// The peer said its index is complete, and we have reported `CaughtUp` since
    /// the last batch.
    complete_seen: bool,
    caught_up_reported: bool,
}

/// A sync session with one authenticated peer. See the module docs.
pub struct Session {
    info: PeerInfo,
    config: SessionConfig,
    span: tracing::Span,
    /// Set on the first violation; the session then ignores input.
    closed: Option<(ViolationCode, String)>,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<Event>,
    effects: VecDeque<Effect>,
    origin: OriginHalf,
    replica: ReplicaHalf,
    cache: HashMap<DocId, Loaded>,
    /// Cache use order, least recent first.
    lru: VecDeque<DocId>,
}

/// Runs an Automerge call on peer-controlled data, turning a panic into `None`.
fn guarded<T>(f: impl FnOnce() -> T) -> Option<T> {
    catch_unwind(AssertUnwindSafe(f)).ok()
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

/// An encoded sync state for a peer known to have exactly `heads`.
fn state_at(heads: &[ChangeHash]) -> Vec<u8> {
    let mut state = sync::State::new();
    state.shared_heads = heads.to_vec();
    state.encode()
}

fn sorted(mut heads: Vec<ChangeHash>) -> Vec<ChangeHash> {
    heads.sort();
    heads.dedup();
    heads
}

impl Session {
    /// Starts a session with an authenticated peer and queues our `Resume`.
    pub fn new<V: SyncView + ?Sized>(info: PeerInfo, config: SessionConfig, view: &V) -> Session {
        let span = tracing::debug_span!("sync", peer = %info.peer);
        let mut session = Session {
            info,
            config: SessionConfig {
                docs_in_flight_max: config.docs_in_flight_max.max(1),
                docs_loaded_max: config.docs_loaded_max.max(config.docs_in_flight_max + 1),
            },
            span,
            closed: None,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            effects: VecDeque::new(),
            origin: OriginHalf::default(),
            replica: ReplicaHalf::default(),
            cache: HashMap::new(),
            lru: VecDeque::new(),
        };
        let from = view.resume_point(info.peer);
        session.send(SyncMessage::Resume {
            version: SYNC_PROTOCOL_VERSION,
            from,
        });
        session
    }

    /// The peer of this session.
    pub fn peer(&self) -> NodeId {
        self.info.peer
    }

    /// The violation that closed the session, if any.
    pub fn closed_by(&self) -> Option<(ViolationCode, &str)> {
        self.closed.as_ref().map(|(c, r)| (*c, r.as_str()))
    }

    /// Whether there is nothing in flight in either direction: no unacknowledged
    /// batch, no document queued or syncing, no retraction unconfirmed.
    pub fn is_idle(&self) -> bool {
        self.origin.unacked.is_empty()
            && self.origin.retracts_pending.is_empty()
            && self.replica.batches.is_empty()
            && self.replica.queue.is_empty()
            && self.replica.active.is_empty()
            && self.replica.wanted.is_empty()
    }

    /// Next bytes to frame and send on the stream, in order.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Next storage effect; persist them in order (batched) before the next `handle_*`.
    pub fn poll_effect(&mut self) -> Option<Effect> {
        self.effects.pop_front()
    }

    /// One of our publications changed, was retracted or changed scope (its index
    /// row has a new `seq`): announce it to the peer if the peer may see it, or
    /// retract it if the peer had it and may no longer see it.
    pub fn handle_local_change<V: SyncView + ?Sized>(&mut self, view: &V, doc_id: &DocId) {
        if self.closed.is_some() {
            return;
        }
        let span = self.span.clone();
        let _enter = span.enter();
        // A sync running on the old version would go on answering from the old
        // document; drop it so the next message reloads the new one.
        if self.cache.get(doc_id).map(|l| l.side) == Some(Side::Origin) {
            self.evict(doc_id);
        }
        self.pump_inventory(view);
    }

    /// The stream is closing: save every loaded document's progress.
    pub fn handle_close(&mut self) {
        let ids: Vec<DocId> = self.lru.iter().cloned().collect();
        for doc_id in ids {
            self.evict(&doc_id);
        }
    }

    /// Bytes of one message from the peer (one frame's payload).
    pub fn handle_message<V: SyncView + ?Sized>(&mut self, view: &V, bytes: &[u8]) {
        if self.closed.is_some() {
            return;
        }
        let span = self.span.clone();
        let _enter = span.enter();
        let msg = match SyncMessage::decode(bytes) {
            Ok(msg) => msg,
            Err(e) => {
                return self.violation(ViolationCode::MalformedMessage, e.to_string());
            }
        };
        trace!(kind = msg.kind(), len_bytes = bytes.len(), "received");
        match msg {
            SyncMessage::Resume { version, from } => self.on_resume(view, version, from),
            SyncMessage::Inventory {
                epoch,
                entries,
                up_to_seq,
                full,
                complete,
            } => self.on_inventory(view, epoch, entries, up_to_seq, full, complete),
            SyncMessage::InventoryAck { epoch, up_to_seq } => {
                self.on_inventory_ack(view, epoch, up_to_seq)
            }
            SyncMessage::DocSync { doc_id, message } => {
                // One span per document sync step, inside the peer's span, so a
                // document's exchange can be followed in the logs by `doc`.
                let doc_span = tracing::debug_span!("doc_sync", doc = %doc_id);
                let _doc = doc_span.enter();
                self.on_doc_sync(view, doc_id, &message)
            }
            SyncMessage::Retract { doc_id, seq } => self.on_retract(view, doc_id, seq),
            SyncMessage::RetractAck { doc_id } => self.on_retract_ack(doc_id),
            SyncMessage::WantSnapshots { doc_ids } => self.on_want_snapshots(view, doc_ids),
            SyncMessage::Snapshot { doc_id, bytes } => {
                let doc_span = tracing::debug_span!("doc_sync", doc = %doc_id);
                let _doc = doc_span.enter();
                self.on_snapshot(doc_id, bytes)
            }
        }
        if self.closed.is_none() {
            self.start_syncs(view);
            self.try_ack();
        }
    }

    // ---- plumbing ----------------------------------------------------------

    fn send(&mut self, msg: SyncMessage) {
        self.transmit.push_back(msg.encode());
    }

    fn violation(&mut self, code: ViolationCode, reason: String) {
        warn!(code = code.as_u32(), %reason, "protocol violation; closing");
        self.closed = Some((code, reason.clone()));
        // Nothing more goes out, and nothing the peer sent is stored: drop what
        // this message queued, and drop loaded copies of the peer's documents
        // unsaved (their progress is saved only when a sync completes cleanly).
        self.transmit.clear();
        self.cache.retain(|_, l| l.side == Side::Origin);
        self.lru.retain(|id| self.cache.contains_key(id));
        self.events
            .push_back(Event::ProtocolViolation { code, reason });
    }

    fn touch(&mut self, doc_id: &DocId) {
        if let Some(pos) = self.lru.iter().position(|d| d == doc_id) {
            self.lru.remove(pos);
        }
        self.lru.push_back(doc_id.clone());
    }

    /// Saves what changed of a loaded document and drops it from memory.
    fn evict(&mut self, doc_id: &DocId) {
        if let Some(pos) = self.lru.iter().position(|d| d == doc_id) {
            self.lru.remove(pos);
        }
        if let Some(loaded) = self.cache.remove(doc_id) {
            self.flush(doc_id, loaded);
        }
    }

    /// Drops a loaded document without saving anything of it.
    fn discard(&mut self, doc_id: &DocId) {
        self.cache.remove(doc_id);
        if let Some(pos) = self.lru.iter().position(|d| d == doc_id) {
            self.lru.remove(pos);
        }
    }

    fn flush(&mut self, doc_id: &DocId, mut loaded: Loaded) {
        if loaded.side == Side::Replica {
            let heads = sorted(loaded.doc.get_heads());
            if loaded.saved_heads.as_ref() != Some(&heads) {
                let data = match &loaded.saved_heads {
                    None => ReplicaData::Snapshot(loaded.doc.save()),
                    Some(saved) => ReplicaData::Incremental(loaded.doc.save_after(saved)),
                };
                self.effects.push_back(Effect::SaveReplica {
                    doc_id: doc_id.clone(),
                    origin: self.info.peer,
                    heads: heads.clone(),
                    data,
                });
                self.events.push_back(Event::ReplicaChanged {
                    doc_id: doc_id.clone(),
                    heads,
                });
            }
        }
        self.save_state(doc_id, &mut loaded);
    }

    fn save_state(&mut self, doc_id: &DocId, loaded: &mut Loaded) {
        let encoded = loaded.state.encode();
        if loaded.saved_state.as_ref() != Some(&encoded) {
            loaded.saved_state = Some(encoded.clone());
            self.effects.push_back(Effect::SaveSyncState {
                peer: self.info.peer,
                doc_id: doc_id.clone(),
                state: encoded,
            });
        }
    }

    /// Loads a document and its sync state into the cache (if not there yet),
    /// making room first. Returns whether it is now loaded.
    fn load<V: SyncView + ?Sized>(&mut self, view: &V, doc_id: &DocId, side: Side) -> bool {
        if let Some(loaded) = self.cache.get(doc_id) {
            if loaded.side == side {
                self.touch(doc_id);
                return true;
            }
            // A document cannot be ours and the peer's; the caller checked, so
            // this is a stale entry: drop it.
            self.discard(doc_id);
        }
        let loaded: Result<Option<AutoCommit>, ViewError> = match side {
            Side::Origin => view.load_publication(doc_id),
            Side::Replica => view.load_replica(doc_id),
        };
        let (doc, saved_heads) = match (side, loaded) {
            (_, Ok(Some(mut doc))) => {
                let heads = sorted(doc.get_heads());
                (doc, Some(heads))
            }
            // A replica we do not hold yet starts empty and is saved as a snapshot.
            (Side::Replica, Ok(None)) => (AutoCommit::new(), None),
            (Side::Origin, Ok(None)) => {
                self.events.push_back(Event::LocalFailure {
                    doc_id: doc_id.clone(),
                    reason: "publication in the index but not in the store".into(),
                });
                return false;
            }
            (_, Err(e)) => {
                warn!(doc = %doc_id, error = %e, "cannot load document");
                self.events.push_back(Event::LocalFailure {
                    doc_id: doc_id.clone(),
                    reason: e.to_string(),
                });
                return false;
            }
        };
        let saved_state = view.sync_state(self.info.peer, doc_id);
        let mut state = saved_state
            .as_deref()
            .and_then(|b| sync::State::decode(b).ok())
            .unwrap_or_default();
        if side == Side::Origin {
            // Defence in depth: changes a replica sends are refused before they
            // get here, and a read-only state would not apply them anyway.
            state.set_read_only(true);
        }
        while self.cache.len() >= self.config.docs_loaded_max {
            let Some(oldest) = self.lru.front().cloned() else {
                break;
            };
            self.evict(&oldest);
        }
        self.cache.insert(
            doc_id.clone(),
            Loaded {
                side,
                doc,
                state,
                saved_state,
                saved_heads,
            },
        );
        self.touch(doc_id);
        true
    }

    // ---- origin half -------------------------------------------------------

    fn on_resume<V: SyncView + ?Sized>(
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
    fn peer_has<V: SyncView + ?Sized>(&self, view: &V, doc_id: &DocId) -> bool {
        self.cache.get(doc_id).map(|l| l.side) == Some(Side::Origin)
            || view.sync_state(self.info.peer, doc_id).is_some()
    }

    /// Sends inventory batches from the cursor while the window allows.
    fn pump_inventory<V: SyncView + ?Sized>(&mut self, view: &V) {
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

    fn on_inventory_ack<V: SyncView + ?Sized>(&mut self, view: &V, epoch: u64, up_to_seq: u64) {
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

    fn on_retract_ack(&mut self, doc_id: DocId) {
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

    fn on_doc_sync<V: SyncView + ?Sized>(&mut self, view: &V, doc_id: DocId, bytes: &[u8]) {
        let message = match guarded(|| sync::Message::decode(bytes)) {
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                return self.violation(
                    ViolationCode::MalformedSyncMessage,
                    format!("sync message for {doc_id}: {e}"),
                )
            }
            None => {
                return self.violation(
                    ViolationCode::MalformedSyncMessage,
                    format!("sync message for {doc_id} made Automerge panic"),
                )
            }
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

    fn origin_doc_sync<V: SyncView + ?Sized>(
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
        let (reply, disclosed) = match outcome {
            Some(Ok(r)) => r,
            Some(Err(e)) => {
                self.discard(&doc_id);
                return self.violation(
                    ViolationCode::MalformedSyncMessage,
                    format!("sync message for {doc_id} refused: {e}"),
                );
            }
            None => {
                self.discard(&doc_id);
                return self.violation(
                    ViolationCode::MalformedSyncMessage,
                    format!("sync message for {doc_id} made Automerge panic"),
                );
            }
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

    fn on_want_snapshots<V: SyncView + ?Sized>(&mut self, view: &V, doc_ids: Vec<DocId>) {
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

    // ---- replica half ------------------------------------------------------

    fn on_snapshot(&mut self, doc_id: DocId, bytes: Vec<u8>) {
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
        let mut doc = match loaded {
            Some(Ok(doc)) => doc,
            Some(Err(e)) => {
                return self.violation(
                    ViolationCode::BadDocument,
                    format!("snapshot of {doc_id} does not load: {e}"),
                )
            }
            None => {
                return self.violation(
                    ViolationCode::BadDocument,
                    format!("snapshot of {doc_id} made Automerge panic"),
                )
            }
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

    fn on_inventory<V: SyncView + ?Sized>(
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
            if super::origin_of(&entry.doc_id) != Some(self.info.peer) {
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
    fn drop_unlisted<V: SyncView + ?Sized>(&mut self, view: &V, listed: &HashSet<DocId>) {
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
    fn forget_replica(&mut self, doc_id: &DocId) {
        self.discard(doc_id);
        self.replica.targets.remove(doc_id);
        self.replica.active.remove(doc_id);
        self.replica.wanted.remove(doc_id);
        self.replica.queue.retain(|d| d != doc_id);
        for batch in &mut self.replica.batches {
            batch.waiting.remove(doc_id);
        }
    }

    fn on_retract<V: SyncView + ?Sized>(&mut self, view: &V, doc_id: DocId, seq: u64) {
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
    fn restart_sync(&mut self, doc_id: &DocId) {
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
    fn start_syncs<V: SyncView + ?Sized>(&mut self, view: &V) {
        self.start_syncs_inner(view);
        let wanted = std::mem::take(&mut self.replica.want_buffer);
        for chunk in wanted.chunks(INVENTORY_ENTRIES_MAX) {
            self.send(SyncMessage::WantSnapshots {
                doc_ids: chunk.to_vec(),
            });
        }
    }

    fn start_syncs_inner<V: SyncView + ?Sized>(&mut self, view: &V) {
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
    fn replica_has_target(&mut self, doc_id: &DocId) -> bool {
        let Some(target) = self.replica.targets.get(doc_id) else {
            return true;
        };
        match self.cache.get_mut(doc_id) {
            Some(loaded) => loaded.doc.get_missing_deps(target).is_empty(),
            None => false,
        }
    }

    /// A document's sync is done: save it and release its slot.
    fn finish_replica(&mut self, doc_id: &DocId) {
        self.evict(doc_id);
        self.replica.active.remove(doc_id);
        self.replica.targets.remove(doc_id);
        for batch in &mut self.replica.batches {
            batch.waiting.remove(doc_id);
        }
    }

    fn replica_doc_sync<V: SyncView + ?Sized>(
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
        match guarded(|| check_changes(&loaded.doc, &message)) {
            Some(Ok(None)) => {}
            Some(Ok(Some(first_copy))) => {
                // Our copy was empty and the message holds the whole document:
                // use the copy we just loaded instead of loading it twice.
                loaded.doc = first_copy;
                message.changes = Vec::<Vec<u8>>::new().into();
            }
            Some(Err(e)) => {
                return self.violation(
                    ViolationCode::BadDocument,
                    format!("changes for {doc_id} do not load: {e}"),
                )
            }
            None => {
                return self.violation(
                    ViolationCode::BadDocument,
                    format!("changes for {doc_id} made Automerge panic"),
                )
            }
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
        let reply = match outcome {
            Some(Ok(reply)) => reply,
            Some(Err(e)) => {
                return self.violation(
                    ViolationCode::BadDocument,
                    format!("changes for {doc_id} do not load: {e}"),
                )
            }
            None => {
                return self.violation(
                    ViolationCode::BadDocument,
                    format!("changes for {doc_id} made Automerge panic"),
                )
            }
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
    fn try_ack(&mut self) {
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
