//! The sync session: a sans-IO state machine per peer connection.
//!
//! One [`Session`] runs both halves of the exchange with one peer:
//!
//! ```text
//!  origin half (our publications)            replica half (the peer's publications)
//!  ──────────────────────────────            ──────────────────────────────────────
//!  wait for the peer's Resume                send Resume(our resume point) at creation
//!  cursor := resume seq (or 0: full)         Inventory batch ──▶ compare heads per entry
//!  loop while < 16 batches unacked:             equal: done         differ: queue doc
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
//!
//! Map:
//! - this file: the session's state, its inputs (`handle_*`) and outputs
//!   (`poll_*`), and the plumbing both halves share;
//! - `origin`: the origin half, streaming our index and answering for our
//!   publications;
//! - `replica`: the replica half, following the peer's index and syncing our
//!   copies of its publications;
//! - `cache`: the bounded cache of loaded documents and their sync states.

use std::collections::{HashMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};

use automerge::sync::{self};
use automerge::ChangeHash;
use labnet_protocol::sync::{DocId, SyncMessage, SYNC_PROTOCOL_VERSION};
use labnet_protocol::NodeId;
use tracing::{trace, warn};

mod cache;
mod origin;
mod replica;

use super::{Effect, Event, PeerInfo, SyncView};
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
    origin: origin::OriginHalf,
    replica: replica::ReplicaHalf,
    cache: HashMap<DocId, cache::Loaded>,
    /// Cache use order, least recent first.
    lru: VecDeque<DocId>,
}

/// Runs an Automerge call on peer-controlled data, turning a panic into `None`.
fn guarded<T>(f: impl FnOnce() -> T) -> Option<T> {
    catch_unwind(AssertUnwindSafe(f)).ok()
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
            origin: origin::OriginHalf::default(),
            replica: replica::ReplicaHalf::default(),
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

    /// The value of an Automerge call on a peer's bytes (run under
    /// [`guarded`]), or `None` once its error or panic has been turned into a
    /// violation with `code`. `what` names the input for the log ("snapshot of
    /// X"), `refused` what went wrong with it ("does not load").
    fn peer_outcome<T, E: std::fmt::Display>(
        &mut self,
        outcome: Option<Result<T, E>>,
        code: ViolationCode,
        what: &str,
        refused: &str,
    ) -> Option<T> {
        match outcome {
            Some(Ok(value)) => Some(value),
            Some(Err(e)) => {
                self.violation(code, format!("{what} {refused}: {e}"));
                None
            }
            None => {
                self.violation(code, format!("{what} made Automerge panic"));
                None
            }
        }
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
}
