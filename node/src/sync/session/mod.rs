//! The sync session: a sans-IO state machine per peer connection.
//!
//! One [`Session`] runs both halves of the exchange with one peer:
//!
//! ```text
//!  serving half (our index)                  receiving half (the peer's index)
//!  ────────────────────────                  ─────────────────────────────────
//!  wait for the peer's Resume                send Resume(our resume point) at creation
//!  cursor := resume seq (or 0: full)         Inventory batch ──▶ per entry: version newer
//!  loop while < 16 batches unacked:             than the statement we hold? queue a Want
//!    rows := served_after(cursor)            send Want(ids, our heads), up to N at once
//!    visible → announce (id, version)        Deliver ──▶ verify statement, check chunks,
//!    ours, delivered, now hidden → Withdraw     apply to a scratch copy, compare heads,
//!    send Inventory(entries, up_to_seq)         check shape → SaveVersion / SaveTombstone
//!  Want: scope per id → Deliver(statement,   oldest batch fully stored → InventoryAck,
//!        changes after the peer's heads)        SaveResumePoint
//!  InventoryAck → PeerAcked, window opens    Withdraw ──▶ Withdrawn, WithdrawAck
//!  Confirm ──▶ verify, keep, ConfirmAck      retraction stored → sign a confirmation,
//!                                               Confirm towards the origin
//! ```
//!
//! Nothing is kept loaded between messages: a delivery loads the document it
//! needs, and a delivery received is applied to a scratch copy that is either
//! stored or dropped. The index is read as plain rows, so a publication whose
//! version the peer already holds costs one announcement.
//!
//! Every Automerge call on bytes a peer sent runs under `catch_unwind`, but
//! only after labnet's own checks have bounded them: an Automerge bug a peer
//! triggers becomes a violation, not a crashed node.
//!
//! Limits of this module: [`STALL_TIMEOUT`] (below), and the replica quota
//! per origin, [`REPLICAS_PER_ORIGIN_MAX`] copies and
//! [`REPLICA_BYTES_PER_ORIGIN_MAX`] bytes (the defaults of
//! [`SessionConfig`]), which `receive` enforces. `serve` answers each version
//! once per session.
//!
//! Timers: the session notes when it starts waiting on the peer (a `Want`
//! unanswered, a batch unacknowledged, confirmations unacknowledged) and
//! [`Session::poll_timeout`] returns when that wait expires
//! ([`STALL_TIMEOUT`]); [`Session::handle_timeout`] then closes the session.
//!
//! Map:
//! - this file: the session's state, its inputs (`handle_*`) and outputs
//!   (`poll_*`), and the plumbing both halves share;
//! - `serve`: the serving half, streaming our index and answering `Want`;
//! - `receive`: the receiving half, following the peer's index and storing
//!   verified versions;
//! - `confirm`: retraction confirmations, both ways.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use automerge::{AutoCommit, ChangeHash};
use labnet_protocol::sync::{DocId, SyncMessage, SYNC_PROTOCOL_VERSION};
use labnet_protocol::NodeId;
use tracing::{trace, warn};

mod confirm;
mod receive;
mod serve;

use super::{Effect, Event, PeerInfo, SavedVersion, SyncView, ViewError};
use labnet_protocol::close::ViolationCode;

/// How long the session waits on the peer (an answer to a `Want`, an ack of
/// a batch or of confirmations) before it gives up on it. A delivery is at
/// most one frame of 8 MiB; 60 s moves that over a link of 1.1 Mbit/s, slower
/// than any city's uplink, and a peer that sends nothing for that long while
/// we wait is stalled, deliberately or not.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Copies of one origin's publications we keep at most unless the node's
/// config says otherwise (`limits.replicas_per_origin`; why this default:
/// [`labnet_config::DEFAULT_REPLICAS_PER_ORIGIN`]).
pub const REPLICAS_PER_ORIGIN_MAX: usize = labnet_config::DEFAULT_REPLICAS_PER_ORIGIN as usize;

/// Stored bytes of one origin's copies we keep at most unless the node's
/// config says otherwise (`limits.replica_mib_per_origin`; why this default:
/// [`labnet_config::DEFAULT_REPLICA_MIB_PER_ORIGIN`]).
pub const REPLICA_BYTES_PER_ORIGIN_MAX: u64 =
    (labnet_config::DEFAULT_REPLICA_MIB_PER_ORIGIN as u64) << 20;

/// Limits of one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    /// How many of the peer's publications we ask for at once. More hides more
    /// round-trip time; each costs one delivery in flight (a few KiB).
    pub docs_in_flight_max: usize,
    /// Copies of one origin's publications kept at most
    /// ([`REPLICAS_PER_ORIGIN_MAX`]); a new one beyond is refused.
    pub replicas_per_origin_max: usize,
    /// Stored bytes of one origin's copies kept at most
    /// ([`REPLICA_BYTES_PER_ORIGIN_MAX`]); a version that would pass it is refused.
    pub replica_bytes_per_origin_max: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            docs_in_flight_max: 256,
            replicas_per_origin_max: REPLICAS_PER_ORIGIN_MAX,
            replica_bytes_per_origin_max: REPLICA_BYTES_PER_ORIGIN_MAX,
        }
    }
}

/// Why a session stopped taking input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closed {
    /// The peer broke the protocol.
    Violation(ViolationCode, String),
    /// A local failure (a store read): the peer did nothing wrong.
    Local(String),
}

/// A sync session with one authenticated peer. See the module docs.
pub struct Session {
    info: PeerInfo,
    config: SessionConfig,
    span: tracing::Span,
    /// Set on the first violation or local failure; the session then ignores input.
    closed: Option<Closed>,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<Event>,
    effects: VecDeque<Effect>,
    serve: serve::ServeHalf,
    receive: receive::ReceiveHalf,
    confirm: confirm::ConfirmState,
    /// Since when we have been waiting on the peer with nothing from it.
    waiting_since: Option<Instant>,
}

/// Runs an Automerge call on peer-controlled data, turning a panic into `None`.
/// `feed::verify` runs an export's bytes through it too.
///
/// Under `--cfg fuzzing` (cargo-fuzz sets it) the guard is off, so a panic
/// a peer's bytes cause in Automerge is a crash the fuzzer reports, not a
/// violation it never sees.
// `fuzzing` is a cfg only cargo-fuzz sets; the workspace does not declare it.
#[allow(unexpected_cfgs)]
pub(crate) fn guarded<T>(f: impl FnOnce() -> T) -> Option<T> {
    if cfg!(fuzzing) {
        Some(f())
    } else {
        catch_unwind(AssertUnwindSafe(f)).ok()
    }
}

/// `doc` saved, if the saved bytes load again as the same document (the same
/// heads); `None` if they do not.
///
/// Automerge applies some changes it cannot write back the same way. The
/// `chunk` fuzz target found one (`fuzz/regressions/chunk/`): a change whose
/// string value holds bytes that are not UTF-8 applies, but the saved
/// document no longer loads ("mismatching heads"). Stored as a snapshot, or
/// compacted later, such a replica would be garbage that fails every read, so
/// a delivery is refused unless the document it makes survives the round
/// trip. A panic inside Automerge counts as not surviving. The bytes are
/// returned so that a caller storing a snapshot saves only once.
pub fn saved_if_it_reloads(doc: &mut AutoCommit) -> Option<Vec<u8>> {
    let heads = sorted(doc.get_heads());
    guarded(|| {
        let saved = doc.save();
        let again = AutoCommit::load(&saved).ok()?.get_heads();
        (sorted(again) == heads).then_some(saved)
    })
    .flatten()
}

fn sorted(mut heads: Vec<ChangeHash>) -> Vec<ChangeHash> {
    heads.sort();
    heads.dedup();
    heads
}

impl Session {
    /// Starts a session with an authenticated peer and queues our `Resume`.
    pub fn new<V: SyncView + ?Sized>(
        info: PeerInfo,
        config: SessionConfig,
        view: &V,
        now: Instant,
    ) -> Session {
        let span = tracing::debug_span!("sync", peer = %info.peer);
        let mut session = Session {
            info,
            config: SessionConfig {
                docs_in_flight_max: config.docs_in_flight_max.max(1),
                ..config
            },
            span,
            closed: None,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            effects: VecDeque::new(),
            serve: serve::ServeHalf::default(),
            receive: receive::ReceiveHalf::default(),
            confirm: confirm::ConfirmState::default(),
            waiting_since: None,
        };
        match view.resume_point(session.info.peer) {
            Ok(from) => session.send(SyncMessage::Resume {
                version: SYNC_PROTOCOL_VERSION,
                from,
            }),
            Err(e) => session.local_failure("reading the resume point", e),
        }
        session.forward_confirmations(view);
        session.update_wait(now);
        session
    }

    /// The peer of this session.
    pub fn peer(&self) -> NodeId {
        self.info.peer
    }

    /// Why the session closed, if it did.
    pub fn closed(&self) -> Option<&Closed> {
        self.closed.as_ref()
    }

    /// The violation that closed the session, if any.
    pub fn closed_by(&self) -> Option<(ViolationCode, &str)> {
        match &self.closed {
            Some(Closed::Violation(c, r)) => Some((*c, r.as_str())),
            _ => None,
        }
    }

    /// Whether there is nothing in flight in either direction.
    pub fn is_idle(&self) -> bool {
        !self.waiting_on_peer() && self.receive.queue.is_empty()
    }

    fn waiting_on_peer(&self) -> bool {
        !self.serve.unacked.is_empty()
            || !self.serve.withdraws_pending.is_empty()
            || !self.receive.wanted.is_empty()
            || !self.confirm.in_flight.is_empty()
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

    /// When to call [`Session::handle_timeout`]: the instant the current wait
    /// on the peer expires, or `None` when we wait for nothing.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed.is_some() {
            return None;
        }
        self.waiting_since.map(|since| since + STALL_TIMEOUT)
    }

    /// Time passed: a peer that left us waiting past [`STALL_TIMEOUT`] is dropped.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(deadline) = self.poll_timeout() {
            if now >= deadline {
                let span = self.span.clone();
                let _enter = span.enter();
                self.violation(
                    ViolationCode::Stalled,
                    format!("no answer from the peer for {} s", STALL_TIMEOUT.as_secs()),
                );
            }
        }
    }

    /// Something we serve changed (one of our publications was updated,
    /// retracted or re-scoped, or we stored a public version to relay), or a
    /// confirmation arrived to forward: announce what the peer may see.
    pub fn handle_local_change<V: SyncView + ?Sized>(&mut self, view: &V, now: Instant) {
        if self.closed.is_some() {
            return;
        }
        let span = self.span.clone();
        let _enter = span.enter();
        self.pump_inventory(view);
        self.forward_confirmations(view);
        self.update_wait(now);
    }

    /// Bytes of one message from the peer (one frame's payload).
    pub fn handle_message<V: SyncView + ?Sized>(&mut self, view: &V, now: Instant, bytes: &[u8]) {
        if self.closed.is_some() {
            return;
        }
        let span = self.span.clone();
        let _enter = span.enter();
        // Whatever the peer sends, it is not stalled.
        self.waiting_since = None;
        let msg = match SyncMessage::decode(bytes) {
            Ok(msg) => msg,
            Err(labnet_protocol::sync::DecodeError::Retired(tag)) => {
                return self.violation(
                    ViolationCode::RetiredMessage,
                    format!("sync version 1 message (tag {tag:#04x}); the peer must upgrade"),
                );
            }
            Err(e) => {
                return self.violation(ViolationCode::MalformedMessage, e.to_string());
            }
        };
        trace!(kind = msg.kind(), len_bytes = bytes.len(), "received");
        match msg {
            SyncMessage::Resume { version, from } => self.on_resume(view, version, from),
            SyncMessage::Inventory(inventory) => self.on_inventory(view, inventory),
            SyncMessage::InventoryAck { epoch, up_to_seq } => {
                self.on_inventory_ack(view, epoch, up_to_seq)
            }
            SyncMessage::Want { items } => self.on_want(view, items),
            SyncMessage::Deliver { statement, changes } => {
                self.on_deliver(view, &statement, changes)
            }
            SyncMessage::Withdraw { doc_id, seq } => self.on_withdraw(view, doc_id, seq),
            SyncMessage::WithdrawAck { doc_id } => self.on_withdraw_ack(doc_id),
            SyncMessage::Confirm { confirmations } => self.on_confirm(view, confirmations),
            SyncMessage::ConfirmAck { count } => self.on_confirm_ack(count),
        }
        if self.closed.is_none() {
            self.send_wants(view);
            self.try_ack();
        }
        self.update_wait(now);
    }

    // ---- plumbing ----------------------------------------------------------

    /// Starts the stall clock when we begin waiting on the peer, and stops it
    /// when we no longer wait.
    fn update_wait(&mut self, now: Instant) {
        if self.waiting_on_peer() {
            self.waiting_since.get_or_insert(now);
        } else {
            self.waiting_since = None;
        }
    }

    fn send(&mut self, msg: SyncMessage) {
        self.transmit.push_back(msg.encode());
    }

    fn violation(&mut self, code: ViolationCode, reason: String) {
        warn!(code = code.as_u32(), %reason, "protocol violation; closing");
        self.closed = Some(Closed::Violation(code, reason.clone()));
        // Nothing more goes out, and nothing the peer sent in this message is
        // stored: effects are only queued once a message is fully checked, but
        // drop whatever this step queued to be sure.
        self.transmit.clear();
        self.effects.clear();
        self.events
            .push_back(Event::ProtocolViolation { code, reason });
    }

    /// What the effects queued so far in this step do to our copy of
    /// `doc_id`: `Some(Some((version, retracted)))` stores that version,
    /// `Some(None)` deletes it, `None` leaves it as the view says. The driver
    /// persists a step's effects after all of its inputs, so within a step
    /// the view does not show them yet.
    fn queued_held(&self, doc_id: &DocId) -> Option<Option<(u64, bool)>> {
        self.effects.iter().rev().find_map(|effect| match effect {
            Effect::SaveVersion(SavedVersion {
                doc_id: d,
                statement,
                ..
            }) if d == doc_id => Some(Some((statement.version, false))),
            Effect::SaveTombstone {
                doc_id: d,
                statement,
            } if d == doc_id => Some(Some((statement.version, true))),
            Effect::Withdrawn { doc_id: d } if d == doc_id => Some(None),
            _ => None,
        })
    }

    /// Whether the effects queued so far in this step record (or forget) a
    /// delivery of our `doc_id` to the peer; see [`Session::queued_held`].
    fn queued_delivery(&self, doc_id: &DocId) -> Option<bool> {
        self.effects.iter().rev().find_map(|effect| match effect {
            Effect::RecordDelivery {
                peer, doc_id: d, ..
            } if *peer == self.info.peer && d == doc_id => Some(true),
            Effect::DeleteDelivery { peer, doc_id: d }
                if *peer == self.info.peer && d == doc_id =>
            {
                Some(false)
            }
            _ => None,
        })
    }

    /// A local read failed: end the session rather than act on a partial view.
    fn local_failure(&mut self, what: &str, error: ViewError) {
        let reason = format!("{what}: {error}");
        warn!(%reason, "local failure; ending the session");
        self.closed = Some(Closed::Local(reason.clone()));
        self.transmit.clear();
        self.events.push_back(Event::LocalFailure { reason });
    }

    /// The value of a view read, or `None` once its failure ended the session.
    fn read<T>(&mut self, what: &str, result: Result<T, ViewError>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.local_failure(what, e);
                None
            }
        }
    }
}
