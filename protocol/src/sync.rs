//! The wire messages of a sync session (version 2), and their bounded encoding.
//!
//! Once the transport has authenticated a peer (its NodeId and role are known),
//! the two nodes open one bidirectional stream and exchange the messages below,
//! one per frame. The session is symmetric: each side *serves* its index (its
//! own publications, and the `public` publications of other origins it holds
//! and relays) and *receives* the peer's.
//!
//! ```text
//!   receiver (R)                                  sender (S)
//!   ────────────                                  ──────────
//!   Resume { epoch, seq }  ───────────────────▶   "I have processed your index
//!                                                  up to seq of epoch" (None:
//!                                                  first contact, send it all)
//!                          ◀───────────────────   Inventory { [(doc, version, retracted, seq)],
//!                                                             up_to_seq, full, complete }
//!   version ≤ the one R holds → nothing more (a relay's copy costs an announcement)
//!   Want { [(doc, heads R holds)] } ──────────▶   (scope checked per id)
//!                          ◀───────────────────   Deliver { signed statement,
//!                                                           change chunks after R's heads }
//!   R verifies the statement (the origin's key, a newer version), applies the
//!   chunks to a scratch copy, checks it has exactly the signed heads and the
//!   shape of a publication, and only then stores it.
//!   InventoryAck { up_to_seq } ───────────────▶   resume there next time
//!   Confirm { [signed confirmation] } ────────▶   (towards a retraction's origin)
//!                          ◀───────────────────   ConfirmAck { count }
//!                          ◀───────────────────   Withdraw { doc }   (origin only: left R's scope)
//!   WithdrawAck { doc }    ───────────────────▶
//! ```
//!
//! **No Automerge sync message is ever read from a peer.** A replica never
//! writes, so the sender knows from the receiver's heads exactly which changes
//! it lacks. Peer bytes reach Automerge only as change chunks of bounded size
//! and number, after labnet's own checks. Version 1's `DocSync`,
//! `WantSnapshots` and `Snapshot` tags are recognised only to refuse them
//! ([`DecodeError::Retired`]).
//!
//! Both directions run at once over the same stream and many publications are
//! in flight at a time, so a message names the publication it is about.
//!
//! The inventory is incremental, like Syncthing's index: the sender numbers
//! every update it serves (a new version, a retraction, a scope change) with a
//! local sequence number, and the receiver tells it where to resume. `epoch`
//! names one numbering: a sender whose index was rebuilt picks a new epoch, and
//! a `Resume` for another epoch gets a full inventory.
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
//! | [`WANT_ITEMS_MAX`] | publications per `Want` |
//! | [`HEADS_PER_ENTRY_MAX`] | heads per wanted publication or statement |
//! | [`CHANGES_PER_DELIVERY_MAX`] | change chunks per delivery |
//! | [`CHANGE_CHUNK_LEN_MAX`] | bytes per change chunk |
//! | [`STATEMENT_LEN_MAX`] | bytes per statement or confirmation |
//! | [`CONFIRMATIONS_PER_MESSAGE_MAX`] | confirmations per `Confirm` |
//! | [`DOC_ID_LEN_MAX`] | bytes of a document id (`[A-Za-z0-9._:-]`, so ids are safe in logs) |
//! | [`INVENTORY_BATCHES_UNACKED_MAX`] | inventory batches in flight before an ack |
//!
//! ```
//! use labnet_protocol::sync::{Announcement, DocId, Inventory, SyncMessage};
//! let msg = SyncMessage::Inventory(Inventory {
//!     epoch: 7,
//!     entries: vec![Announcement { doc_id: DocId::new("pub-1")?, version: 3, retracted: false, seq: 3 }],
//!     up_to_seq: 3,
//!     full: true,
//!     complete: true,
//! });
//! let bytes = msg.encode();
//! assert_eq!(SyncMessage::decode(&bytes)?, msg);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

pub(crate) use crate::varint::put_varint;
use crate::NodeId;

/// The version of this message set; `Resume` carries it.
pub const SYNC_PROTOCOL_VERSION: u16 = 2;

/// The largest encoded message. A `DocSync` may carry a whole saved publication
/// (a few KiB for a practice); 8 MiB leaves room for large ones and still bounds
/// what one frame can make a node allocate.
pub const MESSAGE_LEN_MAX: usize = 8 * 1024 * 1024;

/// The most entries in one inventory batch: big enough that 10,000 publications
/// are 40 batches, small enough that a batch is ~30 KiB.
pub const INVENTORY_ENTRIES_MAX: usize = 256;

/// The most heads a `Want` item or a statement lists. A publication has one writer, so it
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

/// One publication in an inventory: which version of it the sender can serve.
///
/// An announcement is all a link costs for a version the receiver already
/// holds: the receiver compares `version` with the statement it holds and
/// asks (`Want`) only for a newer one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    /// The publication (its id names the origin, who need not be the sender).
    pub doc_id: DocId,
    /// The version number of the origin's signed statement the sender holds.
    pub version: u64,
    /// That statement retracts the publication.
    pub retracted: bool,
    /// The sender's local index sequence number of this entry.
    pub seq: u64,
}

/// One publication a receiver asks for, with what it holds of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantItem {
    /// The publication.
    pub doc_id: DocId,
    /// The heads of the receiver's copy (empty: it holds nothing). The sender
    /// sends the changes after them: a replica never writes, so these are
    /// always heads the sender has seen.
    pub have: Vec<[u8; 32]>,
}

/// A batch of the sender's index, in sequence order ([`SyncMessage::Inventory`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inventory {
    /// The sender's index epoch.
    pub epoch: u64,
    /// Publications the receiver may see that changed in this stretch.
    pub entries: Vec<Announcement>,
    /// The highest sequence number this batch covers (entries the receiver
    /// may not see are skipped but still covered).
    pub up_to_seq: u64,
    /// The inventory started from sequence 0.
    pub full: bool,
    /// This batch reaches the end of the sender's index (for now).
    pub complete: bool,
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
    /// Receiver → sender, first message of a session: where to start the inventory.
    Resume {
        /// [`SYNC_PROTOCOL_VERSION`] of the sender.
        version: u16,
        /// `None` on first contact (or after the receiver lost its data).
        from: Option<ResumePoint>,
    },
    /// Sender → receiver: a batch of the sender's index, in sequence order.
    Inventory(Inventory),
    /// Receiver → sender: every publication of the batches up to `up_to_seq` is
    /// stored (or was not needed).
    InventoryAck {
        /// The epoch of the acknowledged batches.
        epoch: u64,
        /// The acknowledged sequence number.
        up_to_seq: u64,
    },
    /// Receiver → sender: send the announced version of these publications (at
    /// most [`WANT_ITEMS_MAX`]).
    Want {
        /// The publications and what the receiver holds of each.
        items: Vec<WantItem>,
    },
    /// Sender → receiver: one version of one publication: the origin's signed
    /// statement, and the Automerge change chunks after the heads the receiver
    /// said it holds (none for a retraction).
    Deliver {
        /// A [`crate::statement::SignedStatement`], encoded (at most
        /// [`STATEMENT_LEN_MAX`] bytes).
        statement: Vec<u8>,
        /// Automerge change chunks, each at most [`CHANGE_CHUNK_LEN_MAX`], at most
        /// [`CHANGES_PER_DELIVERY_MAX`] of them.
        changes: Vec<Vec<u8>>,
    },
    /// Origin → replica, sent by the origin only: the publication left the
    /// receiver's scope; delete it.
    Withdraw {
        /// The publication.
        doc_id: DocId,
        /// The origin's sequence number of the change.
        seq: u64,
    },
    /// Replica → origin: the withdrawn publication is deleted.
    WithdrawAck {
        /// The publication.
        doc_id: DocId,
    },
    /// Towards a retraction's origin: signed retraction confirmations, each a
    /// [`crate::statement::SignedConfirmation`] (at most
    /// [`CONFIRMATIONS_PER_MESSAGE_MAX`]).
    Confirm {
        /// Encoded confirmations.
        confirmations: Vec<Vec<u8>>,
    },
    /// The receiver of `Confirm` stored the oldest `count` confirmations it was
    /// sent and not yet acknowledged.
    ConfirmAck {
        /// How many.
        count: u32,
    },
}

/// The most publications one `Want` asks for: one inventory batch's worth.
pub const WANT_ITEMS_MAX: usize = INVENTORY_ENTRIES_MAX;

pub use crate::chunk::{CHANGES_PER_DELIVERY_MAX, CHANGE_CHUNK_LEN_MAX};

/// The most confirmations in one `Confirm`.
pub const CONFIRMATIONS_PER_MESSAGE_MAX: usize = 256;

pub use crate::statement::STATEMENT_LEN_MAX;

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
    /// A message of sync version 1, which carried Automerge sync messages and
    /// whole documents; it is never read.
    #[error("retired sync version 1 message (tag {0:#04x}): the peer must upgrade")]
    Retired(u8),
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

/// The byte that opens each message, one variant per [`SyncMessage`]
/// variant: the one table of tags the encoder, the decoder and
/// [`SyncMessage::kind`] read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Tag {
    Resume = 0x01,
    Inventory = 0x02,
    InventoryAck = 0x03,
    Withdraw = 0x05,
    WithdrawAck = 0x06,
    Want = 0x09,
    Deliver = 0x0a,
    Confirm = 0x0b,
    ConfirmAck = 0x0c,
}

/// Version 1's `DocSync` (an Automerge sync message), `WantSnapshots` and
/// `Snapshot` (a whole saved document): never read again.
const RETIRED_TAGS: [u8; 3] = [0x04, 0x07, 0x08];

impl Tag {
    /// Every tag, to read one back from its byte.
    const ALL: [Tag; 9] = [
        Tag::Resume,
        Tag::Inventory,
        Tag::InventoryAck,
        Tag::Withdraw,
        Tag::WithdrawAck,
        Tag::Want,
        Tag::Deliver,
        Tag::Confirm,
        Tag::ConfirmAck,
    ];

    fn from_byte(byte: u8) -> Option<Tag> {
        Tag::ALL.into_iter().find(|tag| *tag as u8 == byte)
    }

    /// The message's short name, for logs and metrics.
    fn kind(self) -> &'static str {
        match self {
            Tag::Resume => "resume",
            Tag::Inventory => "inventory",
            Tag::InventoryAck => "inventory_ack",
            Tag::Want => "want",
            Tag::Deliver => "deliver",
            Tag::Withdraw => "withdraw",
            Tag::WithdrawAck => "withdraw_ack",
            Tag::Confirm => "confirm",
            Tag::ConfirmAck => "confirm_ack",
        }
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

impl SyncMessage {
    /// A short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        self.tag().kind()
    }

    fn tag(&self) -> Tag {
        match self {
            SyncMessage::Resume { .. } => Tag::Resume,
            SyncMessage::Inventory { .. } => Tag::Inventory,
            SyncMessage::InventoryAck { .. } => Tag::InventoryAck,
            SyncMessage::Want { .. } => Tag::Want,
            SyncMessage::Deliver { .. } => Tag::Deliver,
            SyncMessage::Withdraw { .. } => Tag::Withdraw,
            SyncMessage::WithdrawAck { .. } => Tag::WithdrawAck,
            SyncMessage::Confirm { .. } => Tag::Confirm,
            SyncMessage::ConfirmAck { .. } => Tag::ConfirmAck,
        }
    }

    /// Encodes the message. The caller keeps within the limits (the session
    /// builds batches of at most [`INVENTORY_ENTRIES_MAX`] entries); a message
    /// outside them encodes but will be refused by the peer's decoder.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.tag() as u8];
        match self {
            SyncMessage::Resume { version, from } => {
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
            SyncMessage::Inventory(inventory) => {
                put_varint(&mut out, inventory.epoch);
                put_varint(&mut out, inventory.entries.len() as u64);
                for entry in &inventory.entries {
                    put_doc_id(&mut out, &entry.doc_id);
                    put_varint(&mut out, entry.version);
                    out.push(u8::from(entry.retracted));
                    put_varint(&mut out, entry.seq);
                }
                put_varint(&mut out, inventory.up_to_seq);
                out.push(u8::from(inventory.full));
                out.push(u8::from(inventory.complete));
            }
            SyncMessage::InventoryAck { epoch, up_to_seq } => {
                put_varint(&mut out, *epoch);
                put_varint(&mut out, *up_to_seq);
            }
            SyncMessage::Want { items } => {
                put_varint(&mut out, items.len() as u64);
                for item in items {
                    put_doc_id(&mut out, &item.doc_id);
                    put_varint(&mut out, item.have.len() as u64);
                    for head in &item.have {
                        out.extend_from_slice(head);
                    }
                }
            }
            SyncMessage::Deliver { statement, changes } => {
                put_bytes(&mut out, statement);
                put_varint(&mut out, changes.len() as u64);
                for chunk in changes {
                    put_bytes(&mut out, chunk);
                }
            }
            SyncMessage::Withdraw { doc_id, seq } => {
                put_doc_id(&mut out, doc_id);
                put_varint(&mut out, *seq);
            }
            SyncMessage::WithdrawAck { doc_id } => {
                put_doc_id(&mut out, doc_id);
            }
            SyncMessage::Confirm { confirmations } => {
                put_varint(&mut out, confirmations.len() as u64);
                for c in confirmations {
                    put_bytes(&mut out, c);
                }
            }
            SyncMessage::ConfirmAck { count } => {
                put_varint(&mut out, u64::from(*count));
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
        let Some(known) = Tag::from_byte(tag) else {
            return Err(if RETIRED_TAGS.contains(&tag) {
                DecodeError::Retired(tag)
            } else {
                DecodeError::UnknownTag(tag)
            });
        };
        let msg = match known {
            Tag::Resume => {
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
            Tag::Inventory => {
                let epoch = r.varint()?;
                let count = r.len("inventory entries", INVENTORY_ENTRIES_MAX)?;
                let mut entries = Vec::with_capacity(count);
                for _ in 0..count {
                    entries.push(Announcement {
                        doc_id: r.doc_id()?,
                        version: r.varint()?,
                        retracted: r.bool()?,
                        seq: r.varint()?,
                    });
                }
                SyncMessage::Inventory(Inventory {
                    epoch,
                    entries,
                    up_to_seq: r.varint()?,
                    full: r.bool()?,
                    complete: r.bool()?,
                })
            }
            Tag::InventoryAck => SyncMessage::InventoryAck {
                epoch: r.varint()?,
                up_to_seq: r.varint()?,
            },
            Tag::Want => {
                let count = r.len("wanted publications", WANT_ITEMS_MAX)?;
                let mut items = Vec::with_capacity(count);
                for _ in 0..count {
                    let doc_id = r.doc_id()?;
                    let heads = r.len("heads", HEADS_PER_ENTRY_MAX)?;
                    let mut have = Vec::with_capacity(heads);
                    for _ in 0..heads {
                        have.push(r.hash()?);
                    }
                    items.push(WantItem { doc_id, have });
                }
                SyncMessage::Want { items }
            }
            Tag::Deliver => {
                let len = r.len("statement bytes", STATEMENT_LEN_MAX)?;
                let statement = r.take(len)?.to_vec();
                let count = r.len("change chunks", CHANGES_PER_DELIVERY_MAX)?;
                let mut changes = Vec::with_capacity(count);
                for _ in 0..count {
                    let len = r.len("change chunk bytes", CHANGE_CHUNK_LEN_MAX)?;
                    changes.push(r.take(len)?.to_vec());
                }
                SyncMessage::Deliver { statement, changes }
            }
            Tag::Withdraw => SyncMessage::Withdraw {
                doc_id: r.doc_id()?,
                seq: r.varint()?,
            },
            Tag::WithdrawAck => SyncMessage::WithdrawAck {
                doc_id: r.doc_id()?,
            },
            Tag::Confirm => {
                let count = r.len("confirmations", CONFIRMATIONS_PER_MESSAGE_MAX)?;
                let mut confirmations = Vec::with_capacity(count);
                for _ in 0..count {
                    let len = r.len("confirmation bytes", STATEMENT_LEN_MAX)?;
                    confirmations.push(r.take(len)?.to_vec());
                }
                SyncMessage::Confirm { confirmations }
            }
            Tag::ConfirmAck => {
                let count = u32::try_from(r.varint()?).map_err(|_| DecodeError::BadVarint)?;
                SyncMessage::ConfirmAck { count }
            }
        };
        if !r.rest.is_empty() {
            return Err(DecodeError::TrailingBytes(r.rest.len()));
        }
        Ok(msg)
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
        let entry = (doc_id(), any::<u64>(), any::<bool>(), any::<u64>()).prop_map(
            |(doc_id, version, retracted, seq)| Announcement {
                doc_id,
                version,
                retracted,
                seq,
            },
        );
        let want = (doc_id(), prop::collection::vec(any::<[u8; 32]>(), 0..4))
            .prop_map(|(doc_id, have)| WantItem { doc_id, have });
        let bytes = || prop::collection::vec(any::<u8>(), 0..64);
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
                    SyncMessage::Inventory(Inventory {
                        epoch,
                        entries,
                        up_to_seq,
                        full,
                        complete,
                    })
                }),
            (any::<u64>(), any::<u64>())
                .prop_map(|(epoch, up_to_seq)| SyncMessage::InventoryAck { epoch, up_to_seq }),
            prop::collection::vec(want, 0..8).prop_map(|items| SyncMessage::Want { items }),
            (bytes(), prop::collection::vec(bytes(), 0..4))
                .prop_map(|(statement, changes)| SyncMessage::Deliver { statement, changes }),
            (doc_id(), any::<u64>())
                .prop_map(|(doc_id, seq)| SyncMessage::Withdraw { doc_id, seq }),
            doc_id().prop_map(|doc_id| SyncMessage::WithdrawAck { doc_id }),
            prop::collection::vec(bytes(), 0..4)
                .prop_map(|confirmations| SyncMessage::Confirm { confirmations }),
            any::<u32>().prop_map(|count| SyncMessage::ConfirmAck { count }),
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
        let mut bytes = vec![Tag::Inventory as u8, 0];
        put_varint(&mut bytes, u64::MAX);
        assert!(matches!(
            SyncMessage::decode(&bytes),
            Err(DecodeError::LimitExceeded { .. })
        ));
        // A change chunk claiming 1 MiB with 3 bytes present.
        let mut bytes = vec![Tag::Deliver as u8, 0, 1];
        put_varint(&mut bytes, 1 << 20);
        bytes.extend_from_slice(&[1, 2, 3]);
        assert_eq!(SyncMessage::decode(&bytes), Err(DecodeError::Truncated));
        // A chunk over the per-chunk limit is refused by its length alone.
        let mut bytes = vec![Tag::Deliver as u8, 0, 1];
        put_varint(&mut bytes, CHANGE_CHUNK_LEN_MAX as u64 + 1);
        assert!(matches!(
            SyncMessage::decode(&bytes),
            Err(DecodeError::LimitExceeded { .. })
        ));
    }

    #[test]
    fn limits_are_enforced() {
        let entries = (0..=INVENTORY_ENTRIES_MAX)
            .map(|i| Announcement {
                doc_id: DocId::new(format!("d{i}")).unwrap(),
                version: 1,
                retracted: false,
                seq: 0,
            })
            .collect();
        let msg = SyncMessage::Inventory(Inventory {
            epoch: 0,
            entries,
            up_to_seq: 0,
            full: false,
            complete: false,
        });
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
        let mut over = vec![Tag::InventoryAck as u8];
        over.extend_from_slice(&[0xff; 10]);
        over.push(0);
        assert_eq!(SyncMessage::decode(&over), Err(DecodeError::BadVarint));
    }

    /// The 15-byte Automerge sync message whose Bloom filter claims 2^32-1
    /// probes (which made automerge 0.12 allocate without bound), framed as
    /// version 1 did: refused by its tag, before any of it is read.
    #[test]
    fn version_1_automerge_sync_messages_are_never_read() {
        let mut bytes = vec![0x04];
        put_doc_id(&mut bytes, &DocId::new("d").unwrap());
        let bloom: [u8; 15] = [
            0x42, 0, 1, 1, 0x20, 0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0, 0,
        ];
        put_varint(&mut bytes, bloom.len() as u64);
        bytes.extend_from_slice(&bloom);
        assert_eq!(SyncMessage::decode(&bytes), Err(DecodeError::Retired(0x04)));
        for tag in RETIRED_TAGS {
            assert_eq!(SyncMessage::decode(&[tag]), Err(DecodeError::Retired(tag)));
            assert_eq!(
                Tag::from_byte(tag),
                None,
                "{tag:#04x} is retired and in use"
            );
        }
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = SyncMessage::WithdrawAck {
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
