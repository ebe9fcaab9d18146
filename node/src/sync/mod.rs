//! Federated sync: per-peer sessions that exchange publication documents.
//!
//! Once the transport has a connection to an authenticated peer (its [`NodeId`]
//! and [`Role`] are known), the node runs one [`Session`] over one bidirectional
//! stream. The session is sans-IO, in the style of `quinn-proto`: it never touches
//! a socket, a file or a clock. The driver hands it bytes and local changes and
//! takes out bytes to send, events to report and storage effects to persist:
//!
//! ```text
//!                    ┌──────────────────────── Session ─────────────────────────┐
//!   frames in  ───▶  │ handle_message(view, bytes)                              │
//!   local edit ───▶  │ handle_local_change(view, doc)        origin half:       │ ──▶ poll_transmit()  frames out
//!   shutdown   ───▶  │ handle_close()                         our publications  │ ──▶ poll_event()     status, disclosure log
//!                    │                                       replica half:      │ ──▶ poll_effect()    SQLite, in batches
//!                    │                                        the peer's        │
//!                    └──────────────────────────────────────────────────────────┘
//!                                   ▲ reads (ids, seqs, heads, docs on demand)
//!                                   │
//!                               SyncView (the store, or an in-memory fake)
//! ```
//!
//! Each side is the *origin* of its own publications and a *replica* of the
//! peer's, so one session runs both halves of the protocol in
//! [`labnet_protocol::sync`] at once:
//!
//! 1. Each side sends `Resume`: how far it got in the peer's index last time.
//! 2. Each side (as origin) streams its index from there in batches of ids,
//!    heads and sequence numbers, skipping every publication the peer may not
//!    see ([`visible_to`](crate::trust::visible_to)) and sending `Retract` for those the peer had but may no
//!    longer see.
//! 3. Each side (as replica) compares announced heads with its copies. Equal
//!    heads cost nothing more. A publication it holds nothing of is asked for
//!    whole (`WantSnapshots` → `Snapshot`, one round trip, the saved document's
//!    bytes). For the others it runs Automerge's sync protocol,
//!    many documents at once, with one `automerge::sync::State` per (peer,
//!    document) that is persisted so a reconnect sends only what was missed.
//! 4. Once every document of a batch is stored, the replica acknowledges the
//!    batch and saves its resume point.
//!
//! # Rules the session enforces
//!
//! - Scope is checked on the sending side, before any id is announced and before
//!   any sync message about a publication is answered.
//! - Only the origin announces a publication, and a replica accepts changes to a
//!   publication only from its origin. A peer that pushes changes into our
//!   publication or announces someone else's is a [`ViolationCode`]; nothing of
//!   the offending message is stored, and the session stops.
//! - Every publication version sent produces [`Event::Disclosed`].
//!
//! # The caller's contract
//!
//! - Call [`Session::new`] when the stream opens, then loop: feed what arrives
//!   to `handle_*`, then drain `poll_effect`, `poll_event` and `poll_transmit`.
//! - Persist the effects in order, and make them visible to the [`SyncView`]
//!   before the next `handle_*` call: the session reloads documents and sync
//!   states from the view when it needs them again. One SQLite transaction for
//!   everything drained after one `handle_*` call (or a few) is the intent.
//! - After [`Event::ProtocolViolation`] the session ignores input; close the
//!   connection with [`ViolationCode::as_u32`].
//!
//! Map:
//! - [`session`]: the state machine.
//! - [`store_view`]: the view of a real node's SQLite store.
//! - [`driver`]: the tokio task that runs a session over a stream.

use automerge::{AutoCommit, ChangeHash};
use labnet_config::Role;
use labnet_protocol::sync::{DocId, ResumePoint};
use labnet_protocol::NodeId;

pub mod driver;
pub mod session;
pub mod store_view;

#[cfg(test)]
mod harness;
#[cfg(test)]
mod tests;

use crate::trust::Scope;
use labnet_protocol::close::ViolationCode;
pub use session::{Session, SessionConfig};

/// One row of the origin's publication index: plain data, no loaded document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicationEntry {
    /// The publication.
    pub doc_id: DocId,
    /// The local update sequence number of its latest update (content, scope or
    /// retraction): every update takes the next number of the node's index.
    pub seq: u64,
    /// Who may see it.
    pub scope: Scope,
    /// Its Automerge heads.
    pub heads: Vec<ChangeHash>,
    /// Retracted: a tombstone kept in the index so that peers that had it learn.
    pub retracted: bool,
}

/// What this node holds of another node's publication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaEntry {
    /// The node that published it, the only one whose changes it accepts.
    pub origin: NodeId,
    /// The heads of our copy.
    pub heads: Vec<ChangeHash>,
}

/// A storage failure reported by a [`SyncView`] (a local problem, not the peer's).
pub type ViewError = Box<dyn std::error::Error + Send + Sync>;

/// Our side of the publications: what the origin half of a session reads.
pub trait OriginView {
    /// The epoch of our index numbering; changes only if the index is rebuilt.
    fn index_epoch(&self) -> u64;
    /// Up to `limit` index rows with `seq > after_seq`, in ascending `seq`.
    fn publications_after(&self, after_seq: u64, limit: usize) -> Vec<PublicationEntry>;
    /// The index row of one publication, if it is ours.
    fn publication(&self, doc_id: &DocId) -> Option<PublicationEntry>;
    /// Loads one of our publications.
    fn load_publication(&self, doc_id: &DocId) -> Result<Option<AutoCommit>, ViewError>;
}

/// Our copies of other nodes' publications: what the replica half reads.
pub trait ReplicaView {
    /// Our copy of a publication, if we hold one.
    fn replica(&self, doc_id: &DocId) -> Option<ReplicaEntry>;
    /// Loads our copy of a publication.
    fn load_replica(&self, doc_id: &DocId) -> Result<Option<AutoCommit>, ViewError>;
    /// The ids of every copy we hold of `origin`'s publications.
    fn replicas_of(&self, origin: NodeId) -> Vec<DocId>;
    /// How far we got in `origin`'s index (saved by [`Effect::SaveResumePoint`]).
    fn resume_point(&self, origin: NodeId) -> Option<ResumePoint>;
}

/// Everything a session reads, plus the saved Automerge sync states.
pub trait SyncView: OriginView + ReplicaView {
    /// The saved `automerge::sync::State` of one document with one peer. For our
    /// own publications, its presence also means "this peer was sent it".
    fn sync_state(&self, peer: NodeId, doc_id: &DocId) -> Option<Vec<u8>>;
}

/// How a replica's bytes are to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicaData {
    /// A full `save()`: the first time this copy is stored (replaces any row).
    Snapshot(Vec<u8>),
    /// Changes since the last save, to append (`AutoCommit::load` of the snapshot
    /// followed by the chunks gives the document).
    Incremental(Vec<u8>),
}

/// A write the driver must persist, in order. See the module's contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Store (or extend) our copy of a peer's publication.
    SaveReplica {
        /// The publication.
        doc_id: DocId,
        /// Its origin (the peer of this session).
        origin: NodeId,
        /// Its heads after this save.
        heads: Vec<ChangeHash>,
        /// The bytes.
        data: ReplicaData,
    },
    /// Delete our copy of a publication and every sync state kept for it.
    DeleteReplica {
        /// The publication.
        doc_id: DocId,
    },
    /// Save the Automerge sync state of one document with one peer.
    SaveSyncState {
        /// The peer.
        peer: NodeId,
        /// The document.
        doc_id: DocId,
        /// `automerge::sync::State::encode()`.
        state: Vec<u8>,
    },
    /// Forget the sync state of one document with one peer (the peer confirmed a
    /// retraction: it no longer has the document).
    DeleteSyncState {
        /// The peer.
        peer: NodeId,
        /// The document.
        doc_id: DocId,
    },
    /// Replica side: every update of `origin`'s index up to `point` is stored.
    SaveResumePoint {
        /// The peer whose index this is.
        origin: NodeId,
        /// Where to resume next time.
        point: ResumePoint,
    },
    /// Origin side: the peer acknowledged our index up to `seq` (for status).
    SaveAckedSeq {
        /// The peer.
        peer: NodeId,
        /// Our index epoch.
        epoch: u64,
        /// The acknowledged sequence number.
        seq: u64,
    },
}

/// Where effects are persisted: the SQLite store's write batch in a node, a
/// map in the test harness. [`Effect::apply`] is the one place an effect is
/// taken apart, so every sink persists the same things.
pub trait EffectSink {
    /// What a write can fail with.
    type Error;
    /// Stores (or extends) our copy of a peer's publication.
    fn save_replica(
        &mut self,
        doc_id: &DocId,
        origin: NodeId,
        heads: &[ChangeHash],
        data: &ReplicaData,
    ) -> Result<(), Self::Error>;
    /// Deletes our copy of a publication and every sync state kept for it.
    fn delete_replica(&mut self, doc_id: &DocId) -> Result<(), Self::Error>;
    /// Saves the Automerge sync state of one document with one peer.
    fn save_sync_state(
        &mut self,
        peer: NodeId,
        doc_id: &DocId,
        state: &[u8],
    ) -> Result<(), Self::Error>;
    /// Forgets the sync state of one document with one peer.
    fn delete_sync_state(&mut self, peer: NodeId, doc_id: &DocId) -> Result<(), Self::Error>;
    /// Saves how far we got in `origin`'s index.
    fn save_resume_point(&mut self, origin: NodeId, point: ResumePoint) -> Result<(), Self::Error>;
    /// Saves how far `peer` acknowledged our index.
    fn save_acked_seq(&mut self, peer: NodeId, epoch: u64, seq: u64) -> Result<(), Self::Error>;
}

impl Effect {
    /// Persists this effect into `sink`.
    pub fn apply<S: EffectSink>(&self, sink: &mut S) -> Result<(), S::Error> {
        match self {
            Effect::SaveReplica {
                doc_id,
                origin,
                heads,
                data,
            } => sink.save_replica(doc_id, *origin, heads, data),
            Effect::DeleteReplica { doc_id } => sink.delete_replica(doc_id),
            Effect::SaveSyncState {
                peer,
                doc_id,
                state,
            } => sink.save_sync_state(*peer, doc_id, state),
            Effect::DeleteSyncState { peer, doc_id } => sink.delete_sync_state(*peer, doc_id),
            Effect::SaveResumePoint { origin, point } => sink.save_resume_point(*origin, *point),
            Effect::SaveAckedSeq { peer, epoch, seq } => sink.save_acked_seq(*peer, *epoch, *seq),
        }
    }
}

/// Something that happened, for status, logs and the disclosure log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Our copy of a peer's publication changed (and a `SaveReplica` was emitted).
    ReplicaChanged {
        /// The publication.
        doc_id: DocId,
        /// Its new heads.
        heads: Vec<ChangeHash>,
    },
    /// The origin retracted a publication (or it left our scope); our copy is
    /// deleted (a `DeleteReplica` was emitted).
    RetractionReceived {
        /// The publication.
        doc_id: DocId,
    },
    /// A peer confirmed it deleted a publication we retracted.
    RetractionConfirmed {
        /// The publication.
        doc_id: DocId,
        /// The peer.
        peer: NodeId,
    },
    /// A version of our publication was sent to the peer: log it.
    Disclosed {
        /// The publication.
        doc_id: DocId,
        /// The version sent.
        heads: Vec<ChangeHash>,
    },
    /// The peer acknowledged our index up to `seq`.
    PeerAcked {
        /// The acknowledged sequence number.
        seq: u64,
    },
    /// Replica side: we hold everything the peer's index listed so far.
    CaughtUp,
    /// The peer broke the protocol; the session is closed.
    ProtocolViolation {
        /// What kind of violation, for the connection close code.
        code: ViolationCode,
        /// A description for the log (ids and counts only, no content).
        reason: String,
    },
    /// A local storage failure about one document; the session goes on without it.
    LocalFailure {
        /// The document.
        doc_id: DocId,
        /// What failed.
        reason: String,
    },
}

/// Who we are and who the peer is: what the transport established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerInfo {
    /// This node.
    pub local: NodeId,
    /// The authenticated peer.
    pub peer: NodeId,
    /// The peer's role, as approved by our admin.
    pub peer_role: Role,
}
