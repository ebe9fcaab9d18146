//! The wire messages of a sync session, and their bounded encoding.
//!
//! Once the transport has authenticated a peer (its NodeId and role are known),
//! the two nodes open one bidirectional stream and exchange the messages below,
//! one per frame. The session is symmetric: each side is the *origin* of its own
//! publications and a *replica* of the peer's, so every message belongs to one of
//! two directions of the same conversation ("my publications" and "yours").
//!
//! ```text
//!   replica (R)                                   origin (O)
//!   ───────────                                   ──────────
//!   Resume { epoch, seq }  ───────────────────▶   "I have processed your index
//!                                                  up to seq of epoch" (None:
//!                                                  first contact, send it all)
//!                          ◀───────────────────   Retract { doc, seq }      (tombstones R saw)
//!                          ◀───────────────────   Inventory { entries: [(doc, heads, seq)],
//!                                                             up_to_seq, full, complete }
//!   compare heads per entry: equal → nothing more; different → Automerge sync:
//!   DocSync { doc, msg }   ───────────────────▶   (msg carries no changes:
//!                          ◀───────────────────    DocSync { doc, msg with changes }
//!   DocSync { doc, msg }   ───────────────────▶    ...until both sides are quiet
//!   InventoryAck { up_to_seq } ───────────────▶   every doc of the batches up to
//!                                                  up_to_seq is stored: resume there
//!   RetractAck { doc }     ───────────────────▶   the replica deleted it
//! ```
//!
//! A replica that holds nothing of a publication skips Automerge's negotiation:
//!
//! ```text
//!   WantSnapshots { docs } ───────────────────▶   (scope checked per id)
//!                          ◀───────────────────   Snapshot { doc, bytes = doc.save() }
//! ```
//!
//! One round trip and no sync-message overhead per document; both sides then
//! start their Automerge sync state at the snapshot's heads, so later versions
//! go through Automerge's sync protocol as usual.
//!
//! Both directions run at once over the same stream and many documents are in
//! flight at a time, so a message names the document it is about.
//!
//! The inventory is incremental, like Syncthing's index: the origin numbers every
//! update of a publication (content, scope or retraction) with a local sequence
//! number, and the replica tells it where to resume. `epoch` names one numbering:
//! an origin whose index was rebuilt picks a new epoch, and a `Resume` for another
//! epoch gets a full inventory.
//!
//! # Encoding
//!
//! A message is a tag byte followed by its fields: integers as LEB128 varints,
//! booleans as one byte (0 or 1), byte strings and lists as a varint length and
//! the items, heads as 32 raw bytes. There is no trailing data. Every length is
//! checked against a hard maximum *before* anything is allocated, so decoding
//! arbitrary bytes costs at most the input's size and never panics:
//!
//! | limit | value |
//! |---|---|
//! | [`MESSAGE_LEN_MAX`] | whole encoded message |
//! | [`INVENTORY_ENTRIES_MAX`] | entries per inventory batch |
//! | [`HEADS_PER_ENTRY_MAX`] | heads per inventory entry |
//! | [`DOC_ID_LEN_MAX`] | bytes of a document id (`[A-Za-z0-9._:-]`, so ids are safe in logs) |
//! | [`INVENTORY_BATCHES_UNACKED_MAX`] | inventory batches in flight before an ack |
//!
//! ```
//! use labnet_protocol::sync::{SyncMessage, InventoryEntry, DocId};
//! let msg = SyncMessage::Inventory {
//!     epoch: 7,
//!     entries: vec![InventoryEntry { doc_id: DocId::new("pub-1")?, heads: vec![[1; 32]], seq: 3 }],
//!     up_to_seq: 3,
//!     full: true,
//!     complete: true,
//! };
//! let bytes = msg.encode();
//! assert_eq!(SyncMessage::decode(&bytes)?, msg);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use crate::NodeId;

/// The version of this message set; `Resume` carries it.
pub const SYNC_PROTOCOL_VERSION: u16 = 1;

/// The largest encoded message. A `DocSync` may carry a whole saved publication
/// (a few KiB for a practice); 8 MiB leaves room for large ones and still bounds
/// what one frame can make a node allocate.
pub const MESSAGE_LEN_MAX: usize = 8 * 1024 * 1024;

/// The most entries in one inventory batch: big enough that 10,000 publications
/// are 40 batches, small enough that a batch is ~30 KiB.
pub const INVENTORY_ENTRIES_MAX: usize = 256;

/// The most heads an inventory entry lists. A publication has one writer, so it
/// has one head, or a few after concurrent edits from two sessions of its origin.
pub const HEADS_PER_ENTRY_MAX: usize = 64;

/// The longest document id, in bytes.
pub const DOC_ID_LEN_MAX: usize = 128;

/// The most inventory batches an origin sends before the replica acknowledges
/// the oldest: flow control, so a replica never holds more than
/// `INVENTORY_BATCHES_UNACKED_MAX * INVENTORY_ENTRIES_MAX` announced documents it
/// has not synced yet. A replica treats more as a protocol violation.
pub const INVENTORY_BATCHES_UNACKED_MAX: usize = 16;

/// The id of a publication document: 1 to [`DOC_ID_LEN_MAX`] bytes of
/// `[A-Za-z0-9._:-]`. The restricted alphabet means an id from a peer can be
/// logged and stored without escaping.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocId(String);

/// The id of `origin`'s publication called `name`: `<origin key>:<name>`, where
/// the key is the NodeId's 34 data characters ([`NodeId::to_key`]).
///
/// Ids name their origin so that two cities' practices never collide and so a
/// replica can tell, from the id alone, which node alone may announce it.
pub fn publication_id(origin: NodeId, name: &str) -> Result<DocId, DocIdError> {
    DocId::new(format!("{}:{name}", origin.to_key()))
}

/// The origin a publication id names, if it is well-formed.
pub fn origin_of(doc_id: &DocId) -> Option<NodeId> {
    let (origin, name) = doc_id.as_str().split_once(':')?;
    if name.is_empty() {
        return None;
    }
    NodeId::from_key(origin)
}

/// Why a string is not a [`DocId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocIdError {
    /// Empty or longer than [`DOC_ID_LEN_MAX`].
    #[error("a document id has 1 to {DOC_ID_LEN_MAX} bytes, this has {0}")]
    Length(usize),
    /// A byte outside `[A-Za-z0-9._:-]`.
    #[error("a document id may contain only A-Z a-z 0-9 . _ : -")]
    Character,
}

impl DocId {
    /// Checks and wraps a document id.
    pub fn new(id: impl Into<String>) -> Result<DocId, DocIdError> {
        let id = id.into();
        if id.is_empty() || id.len() > DOC_ID_LEN_MAX {
            return Err(DocIdError::Length(id.len()));
        }
        if !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
        {
            return Err(DocIdError::Character);
        }
        Ok(DocId(id))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DocId({})", self.0)
    }
}

/// One publication in an origin's inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryEntry {
    /// The publication.
    pub doc_id: DocId,
    /// Its Automerge heads at the origin (at most [`HEADS_PER_ENTRY_MAX`]).
    pub heads: Vec<[u8; 32]>,
    /// The origin's local update sequence number of this version.
    pub seq: u64,
}

/// Where a replica has got to in an origin's index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResumePoint {
    /// The origin's index numbering this `seq` belongs to.
    pub epoch: u64,
    /// Every update up to and including this one has been processed and stored.
    pub seq: u64,
}

/// One message of a sync session. See the module docs for the flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncMessage {
    /// Replica → origin, first message of a session: where to start the inventory.
    Resume {
        /// [`SYNC_PROTOCOL_VERSION`] of the sender.
        version: u16,
        /// `None` on first contact (or after the replica lost its data).
        from: Option<ResumePoint>,
    },
    /// Origin → replica: a batch of the origin's index, in sequence order.
    Inventory {
        /// The origin's index epoch.
        epoch: u64,
        /// Publications the replica may see that changed in this stretch.
        entries: Vec<InventoryEntry>,
        /// The highest sequence number this batch covers (entries the replica may
        /// not see are skipped but still covered).
        up_to_seq: u64,
        /// The inventory started from sequence 0: once `complete`, any replica of
        /// this origin that was not listed is gone.
        full: bool,
        /// This batch reaches the end of the origin's index (for now).
        complete: bool,
    },
    /// Replica → origin: every document of the batches up to `up_to_seq` is stored.
    InventoryAck {
        /// The epoch of the acknowledged batches.
        epoch: u64,
        /// The acknowledged sequence number.
        up_to_seq: u64,
    },
    /// Either direction: one Automerge sync message about one document.
    DocSync {
        /// The document.
        doc_id: DocId,
        /// An encoded `automerge::sync::Message`.
        message: Vec<u8>,
    },
    /// Origin → replica: the publication is retracted (or no longer in scope).
    Retract {
        /// The publication.
        doc_id: DocId,
        /// The origin's sequence number of the retraction.
        seq: u64,
    },
    /// Replica → origin: the retracted publication is deleted.
    RetractAck {
        /// The publication.
        doc_id: DocId,
    },
    /// Replica → origin: send these announced publications whole; we hold
    /// nothing of them (at most [`INVENTORY_ENTRIES_MAX`] ids).
    WantSnapshots {
        /// The publications.
        doc_ids: Vec<DocId>,
    },
    /// Origin → replica: a whole publication, `AutoCommit::save()` bytes.
    Snapshot {
        /// The publication.
        doc_id: DocId,
        /// The saved document.
        bytes: Vec<u8>,
    },
}

/// Why bytes are not a [`SyncMessage`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// More than [`MESSAGE_LEN_MAX`] bytes.
    #[error("message of {0} bytes exceeds the maximum")]
    TooLong(usize),
    /// The input ended inside a field.
    #[error("message truncated")]
    Truncated,
    /// The first byte names no message.
    #[error("unknown message tag {0:#04x}")]
    UnknownTag(u8),
    /// A list or string is longer than its limit.
    #[error("{what} has {len} items, the maximum is {max}")]
    LimitExceeded {
        /// Which field.
        what: &'static str,
        /// Length announced.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// A varint longer than 10 bytes or above `u64::MAX`.
    #[error("malformed integer")]
    BadVarint,
    /// A boolean that is not 0 or 1.
    #[error("malformed boolean")]
    BadBool,
    /// A document id outside the allowed alphabet or length.
    #[error("bad document id: {0}")]
    BadDocId(#[from] DocIdError),
    /// Bytes after the end of the message.
    #[error("{0} bytes after the end of the message")]
    TrailingBytes(usize),
}

const TAG_RESUME: u8 = 0x01;
const TAG_INVENTORY: u8 = 0x02;
const TAG_INVENTORY_ACK: u8 = 0x03;
const TAG_DOC_SYNC: u8 = 0x04;
const TAG_RETRACT: u8 = 0x05;
const TAG_RETRACT_ACK: u8 = 0x06;
const TAG_WANT_SNAPSHOTS: u8 = 0x07;
const TAG_SNAPSHOT: u8 = 0x08;

impl SyncMessage {
    /// A short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            SyncMessage::Resume { .. } => "resume",
            SyncMessage::Inventory { .. } => "inventory",
            SyncMessage::InventoryAck { .. } => "inventory_ack",
            SyncMessage::DocSync { .. } => "doc_sync",
            SyncMessage::Retract { .. } => "retract",
            SyncMessage::RetractAck { .. } => "retract_ack",
            SyncMessage::WantSnapshots { .. } => "want_snapshots",
            SyncMessage::Snapshot { .. } => "snapshot",
        }
    }

    /// Encodes the message. The caller keeps within the limits (the session
    /// builds batches of at most [`INVENTORY_ENTRIES_MAX`] entries); a message
    /// outside them encodes but will be refused by the peer's decoder.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            SyncMessage::Resume { version, from } => {
                out.push(TAG_RESUME);
                put_varint(&mut out, u64::from(*version));
                match from {
                    None => out.push(0),
                    Some(point) => {
                        out.push(1);
                        put_varint(&mut out, point.epoch);
                        put_varint(&mut out, point.seq);
                    }
                }
            }
            SyncMessage::Inventory {
                epoch,
                entries,
                up_to_seq,
                full,
                complete,
            } => {
                out.push(TAG_INVENTORY);
                put_varint(&mut out, *epoch);
                put_varint(&mut out, entries.len() as u64);
                for entry in entries {
                    put_doc_id(&mut out, &entry.doc_id);
                    put_varint(&mut out, entry.heads.len() as u64);
                    for head in &entry.heads {
                        out.extend_from_slice(head);
                    }
                    put_varint(&mut out, entry.seq);
                }
                put_varint(&mut out, *up_to_seq);
                out.push(u8::from(*full));
                out.push(u8::from(*complete));
            }
            SyncMessage::InventoryAck { epoch, up_to_seq } => {
                out.push(TAG_INVENTORY_ACK);
                put_varint(&mut out, *epoch);
                put_varint(&mut out, *up_to_seq);
            }
            SyncMessage::DocSync { doc_id, message } => {
                out.push(TAG_DOC_SYNC);
                put_doc_id(&mut out, doc_id);
                put_varint(&mut out, message.len() as u64);
                out.extend_from_slice(message);
            }
            SyncMessage::Retract { doc_id, seq } => {
                out.push(TAG_RETRACT);
                put_doc_id(&mut out, doc_id);
                put_varint(&mut out, *seq);
            }
            SyncMessage::RetractAck { doc_id } => {
                out.push(TAG_RETRACT_ACK);
                put_doc_id(&mut out, doc_id);
            }
            SyncMessage::WantSnapshots { doc_ids } => {
                out.push(TAG_WANT_SNAPSHOTS);
                put_varint(&mut out, doc_ids.len() as u64);
                for doc_id in doc_ids {
                    put_doc_id(&mut out, doc_id);
                }
            }
            SyncMessage::Snapshot { doc_id, bytes } => {
                out.push(TAG_SNAPSHOT);
                put_doc_id(&mut out, doc_id);
                put_varint(&mut out, bytes.len() as u64);
                out.extend_from_slice(bytes);
            }
        }
        out
    }

    /// Decodes one whole message. Never panics; allocates at most about the
    /// input's length.
    pub fn decode(bytes: &[u8]) -> Result<SyncMessage, DecodeError> {
        if bytes.len() > MESSAGE_LEN_MAX {
            return Err(DecodeError::TooLong(bytes.len()));
        }
        let mut r = Reader { rest: bytes };
        let tag = r.byte()?;
        let msg = match tag {
            TAG_RESUME => {
                let version = r.varint()?;
                let version = u16::try_from(version).map_err(|_| DecodeError::BadVarint)?;
                let from = if r.bool()? {
                    Some(ResumePoint {
                        epoch: r.varint()?,
                        seq: r.varint()?,
                    })
                } else {
                    None
                };
                SyncMessage::Resume { version, from }
            }
            TAG_INVENTORY => {
                let epoch = r.varint()?;
                let count = r.len("inventory entries", INVENTORY_ENTRIES_MAX)?;
                let mut entries = Vec::with_capacity(count);
                for _ in 0..count {
                    let doc_id = r.doc_id()?;
                    let heads_len = r.len("heads", HEADS_PER_ENTRY_MAX)?;
                    let mut heads = Vec::with_capacity(heads_len);
                    for _ in 0..heads_len {
                        heads.push(r.hash()?);
                    }
                    let seq = r.varint()?;
                    entries.push(InventoryEntry { doc_id, heads, seq });
                }
                SyncMessage::Inventory {
                    epoch,
                    entries,
                    up_to_seq: r.varint()?,
                    full: r.bool()?,
                    complete: r.bool()?,
                }
            }
            TAG_INVENTORY_ACK => SyncMessage::InventoryAck {
                epoch: r.varint()?,
                up_to_seq: r.varint()?,
            },
            TAG_DOC_SYNC => {
                let doc_id = r.doc_id()?;
                let len = r.len("sync message bytes", MESSAGE_LEN_MAX)?;
                let message = r.take(len)?.to_vec();
                SyncMessage::DocSync { doc_id, message }
            }
            TAG_RETRACT => SyncMessage::Retract {
                doc_id: r.doc_id()?,
                seq: r.varint()?,
            },
            TAG_RETRACT_ACK => SyncMessage::RetractAck {
                doc_id: r.doc_id()?,
            },
            TAG_WANT_SNAPSHOTS => {
                let count = r.len("wanted documents", INVENTORY_ENTRIES_MAX)?;
                let mut doc_ids = Vec::with_capacity(count);
                for _ in 0..count {
                    doc_ids.push(r.doc_id()?);
                }
                SyncMessage::WantSnapshots { doc_ids }
            }
            TAG_SNAPSHOT => {
                let doc_id = r.doc_id()?;
                let len = r.len("snapshot bytes", MESSAGE_LEN_MAX)?;
                let bytes = r.take(len)?.to_vec();
                SyncMessage::Snapshot { doc_id, bytes }
            }
            other => return Err(DecodeError::UnknownTag(other)),
        };
        if !r.rest.is_empty() {
            return Err(DecodeError::TrailingBytes(r.rest.len()));
        }
        Ok(msg)
    }
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

pub(crate) fn put_doc_id(out: &mut Vec<u8>, id: &DocId) {
    put_varint(out, id.0.len() as u64);
    out.extend_from_slice(id.0.as_bytes());
}

/// A cursor over the input that checks before it reads.
pub(crate) struct Reader<'a> {
    pub(crate) rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.rest.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    pub(crate) fn byte(&mut self) -> Result<u8, DecodeError> {
        let (&first, tail) = self.rest.split_first().ok_or(DecodeError::Truncated)?;
        self.rest = tail;
        Ok(first)
    }

    pub(crate) fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::BadBool),
        }
    }

    pub(crate) fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value: u64 = 0;
        for i in 0..10u32 {
            let byte = self.byte()?;
            let bits = u64::from(byte & 0x7f);
            // The tenth byte may only hold the top bit of a u64.
            if i == 9 && bits > 1 {
                return Err(DecodeError::BadVarint);
            }
            value |= bits << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::BadVarint)
    }

    /// A length, checked against its limit and against the bytes left, so a
    /// lying length cannot make us allocate.
    pub(crate) fn len(&mut self, what: &'static str, max: usize) -> Result<usize, DecodeError> {
        let len = self.varint()?;
        match usize::try_from(len) {
            Ok(n) if n <= max => {
                // Every item takes at least one byte.
                if n > self.rest.len() {
                    return Err(DecodeError::Truncated);
                }
                Ok(n)
            }
            _ => Err(DecodeError::LimitExceeded { what, len, max }),
        }
    }

    pub(crate) fn doc_id(&mut self) -> Result<DocId, DecodeError> {
        let len = self.varint()?;
        let len = match usize::try_from(len) {
            Ok(n) if (1..=DOC_ID_LEN_MAX).contains(&n) => n,
            _ => return Err(DocIdError::Length(len.min(usize::MAX as u64) as usize).into()),
        };
        let bytes = self.take(len)?;
        let id = std::str::from_utf8(bytes).map_err(|_| DocIdError::Character)?;
        Ok(DocId::new(id)?)
    }

    pub(crate) fn hash(&mut self) -> Result<[u8; 32], DecodeError> {
        let bytes = self.take(32)?;
        let mut out = [0u8; 32];
        out.copy_from_slice(bytes);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn doc_id() -> impl Strategy<Value = DocId> {
        "[A-Za-z0-9._:-]{1,128}".prop_map(|s| DocId::new(s).unwrap())
    }

    fn message() -> impl Strategy<Value = SyncMessage> {
        let entry = (
            doc_id(),
            prop::collection::vec(any::<[u8; 32]>(), 0..4),
            any::<u64>(),
        )
            .prop_map(|(doc_id, heads, seq)| InventoryEntry { doc_id, heads, seq });
        prop_oneof![
            (any::<u16>(), prop::option::of((any::<u64>(), any::<u64>()))).prop_map(
                |(version, from)| SyncMessage::Resume {
                    version,
                    from: from.map(|(epoch, seq)| ResumePoint { epoch, seq }),
                }
            ),
            (
                any::<u64>(),
                prop::collection::vec(entry, 0..8),
                any::<u64>(),
                any::<bool>(),
                any::<bool>()
            )
                .prop_map(|(epoch, entries, up_to_seq, full, complete)| {
                    SyncMessage::Inventory {
                        epoch,
                        entries,
                        up_to_seq,
                        full,
                        complete,
                    }
                }),
            (any::<u64>(), any::<u64>())
                .prop_map(|(epoch, up_to_seq)| SyncMessage::InventoryAck { epoch, up_to_seq }),
            (doc_id(), prop::collection::vec(any::<u8>(), 0..64))
                .prop_map(|(doc_id, message)| SyncMessage::DocSync { doc_id, message }),
            (doc_id(), any::<u64>()).prop_map(|(doc_id, seq)| SyncMessage::Retract { doc_id, seq }),
            doc_id().prop_map(|doc_id| SyncMessage::RetractAck { doc_id }),
            prop::collection::vec(doc_id(), 0..8)
                .prop_map(|doc_ids| SyncMessage::WantSnapshots { doc_ids }),
            (doc_id(), prop::collection::vec(any::<u8>(), 0..64))
                .prop_map(|(doc_id, bytes)| SyncMessage::Snapshot { doc_id, bytes }),
        ]
    }

    proptest! {
        #[test]
        fn round_trips(msg in message()) {
            prop_assert_eq!(SyncMessage::decode(&msg.encode()), Ok(msg));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = SyncMessage::decode(&bytes);
        }

        #[test]
        fn mutated_messages_never_panic(msg in message(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let mut bytes = msg.encode();
            let i = at.index(bytes.len());
            bytes[i] = byte;
            let _ = SyncMessage::decode(&bytes);
            bytes.truncate(i);
            let _ = SyncMessage::decode(&bytes);
        }
    }

    #[test]
    fn lying_lengths_are_refused_before_allocating() {
        // An inventory claiming u64::MAX entries.
        let mut bytes = vec![TAG_INVENTORY, 0];
        put_varint(&mut bytes, u64::MAX);
        assert!(matches!(
            SyncMessage::decode(&bytes),
            Err(DecodeError::LimitExceeded { .. })
        ));
        // A sync message claiming 1 MiB with 3 bytes present.
        let mut bytes = vec![TAG_DOC_SYNC];
        put_doc_id(&mut bytes, &DocId::new("d").unwrap());
        put_varint(&mut bytes, 1 << 20);
        bytes.extend_from_slice(&[1, 2, 3]);
        assert_eq!(SyncMessage::decode(&bytes), Err(DecodeError::Truncated));
    }

    #[test]
    fn limits_are_enforced() {
        let entries = (0..=INVENTORY_ENTRIES_MAX)
            .map(|i| InventoryEntry {
                doc_id: DocId::new(format!("d{i}")).unwrap(),
                heads: vec![],
                seq: 0,
            })
            .collect();
        let msg = SyncMessage::Inventory {
            epoch: 0,
            entries,
            up_to_seq: 0,
            full: false,
            complete: false,
        };
        assert!(matches!(
            SyncMessage::decode(&msg.encode()),
            Err(DecodeError::LimitExceeded { .. })
        ));
        assert!(DocId::new("a".repeat(DOC_ID_LEN_MAX + 1)).is_err());
        assert!(DocId::new("").is_err());
        assert!(DocId::new("has space").is_err());
        assert!(DocId::new("ünï").is_err());
        assert_eq!(
            SyncMessage::decode(&[0xff; 11][..]),
            Err(DecodeError::UnknownTag(0xff))
        );
        let mut over = vec![TAG_INVENTORY_ACK];
        over.extend_from_slice(&[0xff; 10]);
        over.push(0);
        assert_eq!(SyncMessage::decode(&over), Err(DecodeError::BadVarint));
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = SyncMessage::RetractAck {
            doc_id: DocId::new("x").unwrap(),
        }
        .encode();
        bytes.push(0);
        assert_eq!(
            SyncMessage::decode(&bytes),
            Err(DecodeError::TrailingBytes(1))
        );
    }
}
