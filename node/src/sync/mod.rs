//! Federated sync: per-peer sessions that exchange signed publication versions.
//!
//! Once the transport has a connection to an authenticated peer (its [`NodeId`]
//! and [`Role`] are known), the node runs one [`Session`] over one bidirectional
//! stream. The session is sans-IO, in the style of `quinn-proto`: it never touches
//! a socket, a file or a clock. The driver hands it bytes, local changes and the
//! time, and takes out bytes to send, events to report, storage effects to
//! persist and the next deadline:
//!
//! ```text
//!                    ┌──────────────────────── Session ─────────────────────────┐
//!   frames in  ───▶  │ handle_message(view, now, bytes)                         │ ──▶ poll_transmit()  frames out
//!   local edit ───▶  │ handle_local_change(view, now, doc)   serving half:      │ ──▶ poll_event()     status, disclosure log
//!   timer      ───▶  │ handle_timeout(now)                    our index (own +  │ ──▶ poll_effect()    SQLite, in batches
//!                    │                                        relayed public)   │ ──▶ poll_timeout()   when to call again
//!                    │                                       receiving half:    │
//!                    │                                        the peer's index  │
//!                    └──────────────────────────────────────────────────────────┘
//!                                   ▲ reads (index rows, statements, docs on demand)
//!                                   │
//!                               SyncView (a read connection, or an in-memory fake)
//! ```
//!
//! Each side *serves* its index (its own publications and the `public`
//! publications of others it relays) and *receives* the peer's, so one session
//! runs both halves of the protocol in [`labnet_protocol::sync`] at once:
//!
//! 1. Each side sends `Resume`: how far it got in the peer's index last time.
//! 2. Each side (serving) streams its index from there in batches of
//!    (id, version, retracted, seq), skipping every publication the peer may
//!    not see ([`visible_to`](crate::trust::visible_to)), and withdrawing those
//!    it had and may no longer see.
//! 3. Each side (receiving) compares announced versions with the statements it
//!    holds. A version it holds, or an older one, costs nothing more. For a
//!    newer one it sends `Want` with the heads of its copy, and the sender
//!    delivers the origin's signed statement with exactly the change chunks
//!    after those heads. No Automerge sync state, no Bloom filter.
//! 4. Once every publication of a batch is stored, the receiver acknowledges
//!    the batch and saves its resume point.
//!
//! # Rules the session enforces
//!
//! - Scope is checked on the sending side, before any id is announced and
//!   before any `Want` is answered: a peer outside it gets the same answer as
//!   for an id that does not exist.
//! - A version is accepted only if its statement verifies against the key the
//!   publication id names, it is newer than the one held, the delivered chunks
//!   pass labnet's own checks ([`labnet_protocol::chunk`]) and, applied to a
//!   scratch copy, give exactly the signed heads, and the result has the shape
//!   of a publication whose content names the same id and origin. Anything
//!   else is a [`ViolationCode`]: nothing of the message is stored, and the
//!   session stops. A valid but older version is ignored.
//! - A relay may deliver only `public` publications; `partners` and named
//!   scopes come from their origin only. Subscribers deliver nothing.
//! - Every version of our own publications sent produces [`Event::Disclosed`].
//! - A local read error ends the session ([`Event::LocalFailure`]); it never
//!   reads as "nothing there".
//!
//! # The caller's contract
//!
//! - Call [`Session::new`] when the stream opens, then loop: feed what arrives
//!   to `handle_*`, then drain `poll_effect`, `poll_event` and `poll_transmit`,
//!   and call `handle_timeout` when `poll_timeout`'s instant passes.
//! - Persist the effects in order, and make them visible to the [`SyncView`]
//!   before the next `handle_*` call. One SQLite transaction for everything
//!   drained after one `handle_*` call (or a few) is the intent.
//! - After [`Session::closed_by`] returns something the session ignores input;
//!   close the connection with the violation's [`ViolationCode::as_u32`].
//!
//! Map:
//! - [`session`]: the state machine.
//! - [`store_view`]: the view of a real node's SQLite store.
//! - [`driver`]: the tokio task that runs a session over a stream.

use std::sync::Arc;

use automerge::{AutoCommit, ChangeHash};
use labnet_config::Role;
use labnet_protocol::statement::Signer;
use labnet_protocol::sync::{DocId, ResumePoint};
use labnet_protocol::NodeId;

pub mod driver;
pub mod session;
pub mod store_view;

#[cfg(test)]
mod harness;
#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;

pub use crate::store::ReceivedStatement;
use crate::trust::Scope;
use labnet_protocol::close::ViolationCode;
pub use session::{saved_if_it_reloads, Session, SessionConfig};

/// One entry of the index this node serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedEntry {
    /// The publication.
    pub doc_id: DocId,
    /// Our local sequence number of its latest update.
    pub seq: u64,
    /// Its origin: this node, or the origin of a public publication we relay.
    pub origin: NodeId,
    /// The version number of the statement we hold.
    pub version: u64,
    /// That statement retracts it.
    pub retracted: bool,
    /// Who may see it: our scope for our own publications; `None` for a
    /// relayed one, which is `public`.
    pub scope: Option<Scope>,
}

/// What this node holds of another origin's publication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldEntry {
    /// Its origin.
    pub origin: NodeId,
    /// The version of the statement held.
    pub version: u64,
    /// The statement held retracts it (a tombstone: no document).
    pub retracted: bool,
    /// The heads of our copy (empty for a tombstone).
    pub heads: Vec<ChangeHash>,
}

/// A confirmation this node holds and has not forwarded yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardItem {
    /// The retracted publication.
    pub doc_id: DocId,
    /// Who confirmed.
    pub confirmer: NodeId,
    /// The encoded signed confirmation.
    pub signed: Vec<u8>,
}

/// A storage failure reported by a [`SyncView`] (a local problem, not the peer's).
pub type ViewError = Box<dyn std::error::Error + Send + Sync>;

/// Everything a session reads. Every read can fail, and a failure ends the
/// session: an unreadable index must never look like an empty one.
pub trait SyncView {
    /// The epoch of our index numbering; changes only if the index is rebuilt.
    fn index_epoch(&self) -> Result<u64, ViewError>;
    /// Up to `limit` entries of the index we serve with `seq > after_seq`, in
    /// ascending `seq`: our publications and the public ones we relay.
    fn served_after(&self, after_seq: u64, limit: usize) -> Result<Vec<ServedEntry>, ViewError>;
    /// The entry we serve for one publication, if any.
    fn served(&self, doc_id: &DocId) -> Result<Option<ServedEntry>, ViewError>;
    /// The encoded signed statement of a publication we serve or hold.
    fn statement(&self, doc_id: &DocId) -> Result<Option<Vec<u8>>, ViewError>;
    /// Loads a document we serve: our publication, or our copy of another's.
    fn load_served(&self, doc_id: &DocId) -> Result<Option<AutoCommit>, ViewError>;
    /// What we hold of another origin's publication (a copy or a tombstone).
    fn held(&self, doc_id: &DocId) -> Result<Option<HeldEntry>, ViewError>;
    /// Loads our copy of another origin's publication.
    fn load_replica(&self, doc_id: &DocId) -> Result<Option<AutoCommit>, ViewError>;
    /// How far we got in `peer`'s index (saved by [`Effect::SaveResumePoint`]).
    fn resume_point(&self, peer: NodeId) -> Result<Option<ResumePoint>, ViewError>;
    /// Whether `peer` was sent our publication and has not given it up since.
    fn delivered(&self, peer: NodeId, doc_id: &DocId) -> Result<bool, ViewError>;
    /// How far `peer` acknowledged our index (saved by
    /// [`Effect::SaveAckedSeq`]); `None` when it never did, or a decision
    /// about the peer (a new role, a revocation) forgot it.
    fn peer_acked(&self, peer: NodeId) -> Result<Option<ResumePoint>, ViewError>;
    /// Up to `limit` confirmations to forward to `via` (the peer that
    /// delivered the retractions they confirm).
    fn confirmations_to_forward(
        &self,
        via: NodeId,
        limit: usize,
    ) -> Result<Vec<ForwardItem>, ViewError>;
    /// How many copies of `origin`'s publications we hold, and their bytes:
    /// what the replica quota of the session's `SessionConfig` is checked against.
    fn replica_usage(&self, origin: NodeId) -> Result<ReplicaUsage, ViewError>;
}

/// What one origin's copies take in our store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplicaUsage {
    /// Copies held (tombstones are not copies).
    pub count: usize,
    /// Their stored bytes: snapshots and appended changes.
    pub bytes: u64,
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
    /// Store a verified version of another origin's publication: our copy and
    /// its statement.
    SaveVersion(SavedVersion),
    /// A verified retraction: delete our copy, keep the statement as a tombstone.
    SaveTombstone {
        /// The publication.
        doc_id: DocId,
        /// The verified retraction statement.
        statement: ReceivedStatement,
    },
    /// The origin withdrew the publication from us (it left our scope): delete
    /// our copy and its statement.
    Withdrawn {
        /// The publication.
        doc_id: DocId,
    },
    /// Keep a signed retraction confirmation.
    SaveConfirmation(KeptConfirmation),
    /// The peer stored these confirmations we forwarded.
    ConfirmationsForwarded {
        /// (publication, confirmer) of each.
        items: Vec<(DocId, NodeId)>,
    },
    /// The peer was sent this version of our publication.
    RecordDelivery {
        /// The peer.
        peer: NodeId,
        /// Our publication.
        doc_id: DocId,
        /// The version sent.
        version: u64,
    },
    /// The peer no longer holds our publication (it confirmed a withdrawal).
    DeleteDelivery {
        /// The peer.
        peer: NodeId,
        /// Our publication.
        doc_id: DocId,
    },
    /// Receiving side: every update of `peer`'s index up to `point` is stored.
    SaveResumePoint {
        /// The peer whose index this is.
        peer: NodeId,
        /// Where to resume next time.
        point: ResumePoint,
    },
    /// Serving side: the peer acknowledged our index up to `seq` (for status,
    /// and where its next session resumes).
    SaveAckedSeq {
        /// The peer.
        peer: NodeId,
        /// The role the session serves the peer as: the ack is kept only while
        /// the peer still has it, so a session that outlives a decision about
        /// the peer cannot undo the full check that decision asked for.
        role: Role,
        /// How far: our index epoch and the acknowledged sequence number.
        acked: ResumePoint,
    },
}

/// A verified version of another origin's publication to store
/// ([`Effect::SaveVersion`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedVersion {
    /// The publication.
    pub doc_id: DocId,
    /// Its heads after this save (the signed heads).
    pub heads: Vec<ChangeHash>,
    /// The bytes.
    pub data: ReplicaData,
    /// The verified statement.
    pub statement: ReceivedStatement,
}

/// A signed retraction confirmation to keep ([`Effect::SaveConfirmation`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptConfirmation {
    /// The retracted publication.
    pub doc_id: DocId,
    /// Who confirmed.
    pub confirmer: NodeId,
    /// The retraction version confirmed.
    pub version: u64,
    /// The encoded signed confirmation.
    pub signed: Vec<u8>,
    /// Nothing left to forward (we are the origin, or the peer took it).
    pub forwarded: bool,
}

/// Where effects are persisted: the SQLite store's write batch in a node, a
/// map in the test harness. [`Effect::apply`] is the one place an effect is
/// taken apart, so every sink persists the same things.
pub trait EffectSink {
    /// What a write can fail with.
    type Error;
    /// The version of the statement held of another origin's publication,
    /// as persisted so far (this batch included).
    fn held_version(&mut self, doc_id: &DocId) -> Result<Option<u64>, Self::Error>;
    /// Stores a verified version of another origin's publication.
    fn save_version(&mut self, version: &SavedVersion) -> Result<(), Self::Error>;
    /// Deletes our copy and keeps the retraction statement.
    fn save_tombstone(
        &mut self,
        doc_id: &DocId,
        statement: &ReceivedStatement,
    ) -> Result<(), Self::Error>;
    /// Deletes our copy and its statement.
    fn withdrawn(&mut self, doc_id: &DocId) -> Result<(), Self::Error>;
    /// Keeps a confirmation.
    fn save_confirmation(&mut self, confirmation: &KeptConfirmation) -> Result<(), Self::Error>;
    /// Marks confirmations forwarded.
    fn confirmations_forwarded(&mut self, items: &[(DocId, NodeId)]) -> Result<(), Self::Error>;
    /// Records a delivery of our publication.
    fn record_delivery(
        &mut self,
        peer: NodeId,
        doc_id: &DocId,
        version: u64,
    ) -> Result<(), Self::Error>;
    /// Forgets a delivery.
    fn delete_delivery(&mut self, peer: NodeId, doc_id: &DocId) -> Result<(), Self::Error>;
    /// Saves how far we got in `peer`'s index.
    fn save_resume_point(&mut self, peer: NodeId, point: ResumePoint) -> Result<(), Self::Error>;
    /// Saves how far `peer` acknowledged our index, if the peer is still
    /// approved as `role` (the role the acknowledging session serves).
    fn save_acked_seq(
        &mut self,
        peer: NodeId,
        role: Role,
        acked: ResumePoint,
    ) -> Result<(), Self::Error>;
}

impl Effect {
    /// Persists this effect into `sink`.
    ///
    /// A version (or tombstone) no newer than the one now held is skipped:
    /// the session checked it was newer when it read the store, but another
    /// session of this node may have persisted a newer one since (two peers
    /// delivering the same publication at once). Storing it would take the
    /// copy back to an older version behind resume points that say it is
    /// held, so it would never be fetched again from that peer, and a
    /// tombstone could be overwritten by the copy it retracted.
    pub fn apply<S: EffectSink>(&self, sink: &mut S) -> Result<(), S::Error> {
        match self {
            Effect::SaveVersion(SavedVersion {
                doc_id, statement, ..
            })
            | Effect::SaveTombstone { doc_id, statement }
                if sink
                    .held_version(doc_id)?
                    .is_some_and(|held| held >= statement.version) =>
            {
                Ok(())
            }
            Effect::SaveVersion(version) => sink.save_version(version),
            Effect::SaveTombstone { doc_id, statement } => sink.save_tombstone(doc_id, statement),
            Effect::Withdrawn { doc_id } => sink.withdrawn(doc_id),
            Effect::SaveConfirmation(confirmation) => sink.save_confirmation(confirmation),
            Effect::ConfirmationsForwarded { items } => sink.confirmations_forwarded(items),
            Effect::RecordDelivery {
                peer,
                doc_id,
                version,
            } => sink.record_delivery(*peer, doc_id, *version),
            Effect::DeleteDelivery { peer, doc_id } => sink.delete_delivery(*peer, doc_id),
            Effect::SaveResumePoint { peer, point } => sink.save_resume_point(*peer, *point),
            Effect::SaveAckedSeq { peer, role, acked } => sink.save_acked_seq(*peer, *role, *acked),
        }
    }
}

/// Something that happened, for status, logs and the disclosure log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A new version of another origin's publication was stored.
    ReplicaChanged {
        /// The publication.
        doc_id: DocId,
        /// Its origin.
        origin: NodeId,
        /// Its new heads.
        heads: Vec<ChangeHash>,
        /// It is public: our other sessions relay it.
        relayed: bool,
    },
    /// A publication we held was retracted by its origin (or withdrawn from
    /// us); our copy is deleted.
    RetractionReceived {
        /// The publication.
        doc_id: DocId,
        /// Its origin.
        origin: NodeId,
        /// A public tombstone: our other sessions relay it.
        relayed: bool,
    },
    /// A node confirmed it deleted a publication we retracted.
    RetractionConfirmed {
        /// The publication.
        doc_id: DocId,
        /// The confirming node (not necessarily the peer: confirmations travel).
        confirmer: NodeId,
    },
    /// A confirmation of another origin's retraction arrived, to forward.
    ConfirmationToForward {
        /// The publication.
        doc_id: DocId,
    },
    /// A version of our own publication was sent to the peer: log it.
    Disclosed {
        /// The publication.
        doc_id: DocId,
        /// The version sent.
        heads: Vec<ChangeHash>,
    },
    /// A valid version was not stored: its origin's copies are at the
    /// quota (`SessionConfig::replicas_per_origin_max` or
    /// `replica_bytes_per_origin_max`). Nothing is stored or evicted, and
    /// the batch is acknowledged, so the peer does not send it again.
    QuotaExceeded {
        /// The publication.
        doc_id: DocId,
        /// Its origin.
        origin: NodeId,
        /// Which quota, and the figures (counts only, no content).
        reason: String,
    },
    /// A valid version no newer than the one held arrived (normal with relays).
    Stale {
        /// The publication.
        doc_id: DocId,
    },
    /// The peer acknowledged our index up to `seq`.
    PeerAcked {
        /// The acknowledged sequence number.
        seq: u64,
    },
    /// Receiving side: we hold everything the peer's index listed so far.
    CaughtUp,
    /// The peer broke the protocol; the session is closed.
    ProtocolViolation {
        /// What kind of violation, for the connection close code.
        code: ViolationCode,
        /// A description for the log (ids and counts only, no content).
        reason: String,
    },
    /// A local failure; the session is closed (the peer did nothing wrong).
    LocalFailure {
        /// What failed.
        reason: String,
    },
}

/// Who we are and who the peer is: what the transport established.
#[derive(Clone)]
pub struct PeerInfo {
    /// This node.
    pub local: NodeId,
    /// This node's role: a subscriber serves nothing.
    pub local_role: Role,
    /// The authenticated peer.
    pub peer: NodeId,
    /// The peer's role, as approved by our admin.
    pub peer_role: Role,
    /// The node key, which signs our retraction confirmations.
    pub signer: Arc<dyn Signer>,
}

impl std::fmt::Debug for PeerInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerInfo")
            .field("local", &self.local)
            .field("local_role", &self.local_role)
            .field("peer", &self.peer)
            .field("peer_role", &self.peer_role)
            .finish_non_exhaustive()
    }
}
