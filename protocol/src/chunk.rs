//! Checking a peer's Automerge change chunks before Automerge sees them.
//!
//! Peers send labnet the changes of a publication as Automerge *change
//! chunks* (never as Automerge sync messages). Automerge trusts the bytes it
//! is given: it inflates a compressed change with no limit on the output, so a
//! few kilobytes of DEFLATE can make it allocate gigabytes. This module is the
//! gate in front of it. It checks a chunk's envelope — magic bytes, chunk
//! type, length and checksum — inflates compressed changes itself under a hard
//! cap, and hands back the plain (uncompressed) change chunk and its change
//! hash. Only bytes that came out of [`check_change_chunk`] or
//! [`check_change_chunks`] should reach Automerge.
//!
//! # The chunk format
//!
//! From the [Automerge binary format], as `rust/automerge/src/storage/chunk.rs`
//! reads it:
//!
//! ```text
//!   85 6f 4a 83 | checksum (4) | type (1) | body length (ULEB128) | body
//! ```
//!
//! - type 0 is a document (what `save()` writes), 1 a change, 2 a compressed
//!   change (its body is raw DEFLATE of a change's body), 3 a bundle; labnet
//!   accepts 1 and 2 only;
//! - the change hash is the SHA-256 of `type, ULEB length, body` of the
//!   *uncompressed* change (type 1), and the checksum is its first 4 bytes;
//!   a compressed change carries the checksum of its uncompressed form;
//! - the length is minimally encoded (Automerge refuses an overlong ULEB, and
//!   hashes the length as it re-encodes it, so an overlong one here would
//!   change the hash).
//!
//! A type-1 body needs no inflating: Automerge refuses change chunks whose
//! columns are compressed. The body's columns themselves are Automerge's to
//! parse; this module checks the envelope and bounds the size.
//!
//! # Limits
//!
//! | limit | value | bounds |
//! |---|---|---|
//! | [`CHANGE_CHUNK_LEN_MAX`] | 1 MiB | one chunk as received |
//! | [`INFLATED_CHANGE_LEN_MAX`] | 1 MiB | one compressed change's inflated body |
//! | [`CHANGES_PER_DELIVERY_MAX`] | 4096 | chunks in one delivery |
//! | [`DELIVERY_INFLATED_BYTES_MAX`] | 16 MiB | change bodies of one delivery, inflated, in all |
//!
//! Inflating stops as soon as the output would pass its cap, and the output
//! buffer never grows past the cap plus a 19-byte header; besides it,
//! inflating uses one 8 KiB step buffer and the inflater's own state (its
//! 32 KiB window). Checking arbitrary bytes never panics.
//!
//! ```
//! use automerge::{transaction::Transactable, AutoCommit, ROOT};
//! use labnet_protocol::chunk::check_change_chunk;
//!
//! let mut doc = AutoCommit::new();
//! doc.put(ROOT, "title", "Milma")?;
//! doc.commit();
//! let mut change = doc.get_changes(&[]).remove(0);
//!
//! // What a peer might send: the change as Automerge serializes it
//! // (compressed when it is large).
//! let checked = check_change_chunk(&change.bytes())?;
//! assert_eq!(checked.hash(), change.hash().0);
//! assert_eq!(checked.as_bytes(), change.raw_bytes());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [Automerge binary format]: https://automerge.org/automerge-binary-format-spec/

use flate2::{Decompress, FlushDecompress, Status};
use sha2::{Digest, Sha256};

use crate::varint::put_varint;

/// The most bytes of one change chunk as received, compressed or not.
///
/// A publication's change is a few KiB (a practice and its outcomes, edited);
/// 1 MiB leaves room for an edit that pastes a long text and still lets a node
/// hold a delivery's worth of chunks without thinking about memory.
pub const CHANGE_CHUNK_LEN_MAX: usize = 1024 * 1024;

/// The most bytes one compressed change may inflate to (its body, without the
/// chunk header).
///
/// The same as [`CHANGE_CHUNK_LEN_MAX`], so compression buys a peer no more
/// room than sending the change plainly would (give or take the dozen bytes of
/// the header): the check is on what Automerge will parse, not on the wire
/// form. Without it, a 1 MiB chunk of DEFLATE could stand for a gigabyte.
pub const INFLATED_CHANGE_LEN_MAX: usize = CHANGE_CHUNK_LEN_MAX;

/// The most change chunks in one delivery.
///
/// A publication grows by one change per edit of its single writer; 4096 is
/// years of edits to one publication, so a replica that is far behind still
/// catches up in one delivery, while the count of chunks (and of their
/// per-chunk allocations) stays bounded.
pub const CHANGES_PER_DELIVERY_MAX: usize = 4096;

/// The most change-body bytes one delivery may hold once inflated, counted
/// over all its chunks (plain bodies as they are, compressed ones inflated).
///
/// Each chunk is bounded alone, but 4096 chunks of 1 MiB would be 4 GiB; this
/// bounds what one delivery makes a node hold and Automerge parse. 16 MiB is
/// twice the largest sync message (8 MiB) and hundreds of times a typical
/// publication's whole history.
pub const DELIVERY_INFLATED_BYTES_MAX: usize = 16 * 1024 * 1024;

/// The magic bytes every Automerge chunk starts with.
pub const CHUNK_MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];

const CHUNK_TYPE_DOCUMENT: u8 = 0;
const CHUNK_TYPE_CHANGE: u8 = 1;
const CHUNK_TYPE_COMPRESSED_CHANGE: u8 = 2;
const CHUNK_TYPE_BUNDLE: u8 = 3;

/// Magic bytes, checksum and type byte: the fixed part of a chunk header.
const HEADER_FIXED_LEN: usize = CHUNK_MAGIC.len() + 4 + 1;

/// Where the hashed part of a chunk (type byte, length, body) starts.
const HASHED_START: usize = CHUNK_MAGIC.len() + 4;

/// The longest ULEB128 encoding of a `u64`.
const ULEB_LEN_MAX: usize = 10;

/// The longest chunk header.
const HEADER_LEN_MAX: usize = HEADER_FIXED_LEN + ULEB_LEN_MAX;

/// Inflated bytes produced per step. A step whose output would pass the cap
/// is refused before its output is kept, so this step buffer is the only
/// memory inflating needs beyond the capped output (and the inflater's state).
const INFLATE_STEP_LEN: usize = 8 * 1024;

/// A change chunk that passed every check, in its uncompressed form (type 1),
/// ready for Automerge.
#[derive(Clone, PartialEq, Eq)]
pub struct CheckedChange {
    /// The whole uncompressed chunk: header and body.
    bytes: Vec<u8>,
    /// SHA-256 of the type byte, length and body: Automerge's change hash.
    hash: [u8; 32],
    /// Bytes of the body, for the delivery's total.
    body_len: usize,
}

impl CheckedChange {
    /// The uncompressed change chunk, as `Change::raw_bytes()` would give it.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The uncompressed change chunk, owned.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// The change hash, the same bytes as Automerge's `ChangeHash`.
    pub fn hash(&self) -> [u8; 32] {
        self.hash
    }
}

impl std::fmt::Debug for CheckedChange {
    // The bytes would flood a log line; the hash and size say which change it is.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckedChange")
            .field("hash", &Hex(&self.hash))
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// Lower-case hex for `Debug`.
struct Hex<'a>(&'a [u8]);

impl std::fmt::Debug for Hex<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// Why bytes are not an acceptable change chunk, or a delivery not an
/// acceptable list of them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// The chunk is longer than [`CHANGE_CHUNK_LEN_MAX`].
    #[error("change chunk of {len} bytes exceeds the limit of {max} bytes")]
    TooLong {
        /// Bytes received.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The bytes end before the header does.
    #[error("chunk of {len} bytes ends inside its header")]
    Truncated {
        /// Bytes received.
        len: usize,
    },
    /// The first four bytes are not Automerge's magic bytes.
    #[error("not an Automerge chunk: magic bytes {found:02x?}, expected {CHUNK_MAGIC:02x?}")]
    BadMagic {
        /// The first four bytes.
        found: [u8; 4],
    },
    /// A document chunk (type 0): peers send changes, and a snapshot is not
    /// checked here.
    #[error("a document chunk (type 0), not a change chunk")]
    DocumentChunk,
    /// A bundle chunk (type 3): peers send single changes.
    #[error("a bundle chunk (type 3), not a single change chunk")]
    BundleChunk,
    /// A chunk type Automerge does not define.
    #[error("unknown chunk type {0}")]
    UnknownType(u8),
    /// The length is longer than 10 bytes of ULEB128, or above `u64::MAX`
    /// (or above `usize::MAX`).
    #[error("chunk length does not fit in 64 bits")]
    LengthOverflow,
    /// The length is not minimally encoded (a trailing zero byte).
    #[error("chunk length is not minimally encoded")]
    LengthOverlong,
    /// The header announces a body length other than the bytes that follow.
    #[error("chunk header announces {declared} body bytes but {actual} follow")]
    LengthMismatch {
        /// The announced body length.
        declared: u64,
        /// The bytes after the header.
        actual: usize,
    },
    /// The checksum in the header is not the start of the change's hash.
    #[error("bad checksum: the header says {expected:02x?}, the change hashes to {computed:02x?}")]
    BadChecksum {
        /// The checksum in the header.
        expected: [u8; 4],
        /// The first four bytes of the change hash.
        computed: [u8; 4],
    },
    /// A compressed change whose body is not raw DEFLATE.
    #[error("compressed change is not a valid DEFLATE stream")]
    BadDeflate,
    /// A compressed change whose DEFLATE stream stops before its final block.
    #[error("compressed change's DEFLATE stream ends early")]
    DeflateTruncated,
    /// Bytes after the end of a compressed change's DEFLATE stream.
    #[error("{len} bytes after the end of the compressed change's DEFLATE stream")]
    DeflateTrailingBytes {
        /// Bytes left over.
        len: usize,
    },
    /// A compressed change inflates to more than [`INFLATED_CHANGE_LEN_MAX`]
    /// bytes; inflating stopped there.
    #[error("compressed change inflates to more than {max} bytes")]
    InflatedTooLong {
        /// The limit.
        max: usize,
    },
    /// A delivery of more than [`CHANGES_PER_DELIVERY_MAX`] chunks.
    #[error("delivery of {count} change chunks exceeds the limit of {max}")]
    TooManyChunks {
        /// Chunks in the delivery.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// With this chunk, the delivery's bodies would pass
    /// [`DELIVERY_INFLATED_BYTES_MAX`] bytes; inflating stopped there.
    #[error("the delivery's change bodies exceed {max} bytes in all")]
    DeliveryTooLarge {
        /// The limit.
        max: usize,
    },
    /// One chunk of a delivery failed: which, and why.
    #[error("change chunk {index} of the delivery: {error}")]
    InDelivery {
        /// The chunk's position in the delivery, from 0.
        index: usize,
        /// What was wrong with it.
        #[source]
        error: Box<ChunkError>,
    },
}

/// Checks one change chunk from a peer; see the module docs.
///
/// Accepts a change (type 1) or a compressed change (type 2) and returns its
/// uncompressed form and change hash. Refuses everything else, and any chunk
/// longer than [`CHANGE_CHUNK_LEN_MAX`] or inflating past
/// [`INFLATED_CHANGE_LEN_MAX`].
pub fn check_change_chunk(bytes: &[u8]) -> Result<CheckedChange, ChunkError> {
    check_within(bytes, INFLATED_CHANGE_LEN_MAX)
}

/// Checks every chunk of one delivery, in order; see the module docs.
///
/// Refuses more than [`CHANGES_PER_DELIVERY_MAX`] chunks before looking at
/// any, and stops at the first chunk that fails a check or that would take
/// the delivery's bodies past [`DELIVERY_INFLATED_BYTES_MAX`]; that error is
/// [`ChunkError::InDelivery`] with the chunk's index.
pub fn check_change_chunks(chunks: &[Vec<u8>]) -> Result<Vec<CheckedChange>, ChunkError> {
    if chunks.len() > CHANGES_PER_DELIVERY_MAX {
        return Err(ChunkError::TooManyChunks {
            count: chunks.len(),
            max: CHANGES_PER_DELIVERY_MAX,
        });
    }
    let mut checked = Vec::with_capacity(chunks.len());
    let mut body_total = 0usize;
    for (index, chunk) in chunks.iter().enumerate() {
        let in_delivery = |error| ChunkError::InDelivery {
            index,
            error: Box::new(error),
        };
        let delivery_too_large = ChunkError::DeliveryTooLarge {
            max: DELIVERY_INFLATED_BYTES_MAX,
        };
        // What is left of the delivery's budget caps this chunk's inflating
        // too, so a delivery never inflates past its total either.
        let budget_left = DELIVERY_INFLATED_BYTES_MAX - body_total;
        let inflated_max = INFLATED_CHANGE_LEN_MAX.min(budget_left);
        let change = match check_within(chunk, inflated_max) {
            Ok(change) => change,
            Err(ChunkError::InflatedTooLong { .. }) if inflated_max < INFLATED_CHANGE_LEN_MAX => {
                return Err(in_delivery(delivery_too_large));
            }
            Err(error) => return Err(in_delivery(error)),
        };
        if change.body_len > budget_left {
            return Err(in_delivery(delivery_too_large));
        }
        body_total += change.body_len;
        checked.push(change);
    }
    Ok(checked)
}

/// [`check_change_chunk`], with the cap on a compressed change's inflated body
/// given (a delivery lowers it to what is left of its budget).
fn check_within(bytes: &[u8], inflated_max: usize) -> Result<CheckedChange, ChunkError> {
    if bytes.len() > CHANGE_CHUNK_LEN_MAX {
        return Err(ChunkError::TooLong {
            len: bytes.len(),
            max: CHANGE_CHUNK_LEN_MAX,
        });
    }
    let header = parse_header(bytes)?;
    match header.chunk_type {
        CHUNK_TYPE_CHANGE => {
            let hash = change_hash(&bytes[HASHED_START..]);
            check_checksum(header.checksum, &hash)?;
            Ok(CheckedChange {
                bytes: bytes.to_vec(),
                hash,
                body_len: header.body.len(),
            })
        }
        CHUNK_TYPE_COMPRESSED_CHANGE => {
            let mut out = Vec::new();
            let body_len = inflate_change(header.checksum, header.body, inflated_max, &mut out)?;
            let hash = change_hash(&out[HASHED_START..]);
            check_checksum(header.checksum, &hash)?;
            Ok(CheckedChange {
                bytes: out,
                hash,
                body_len,
            })
        }
        // `parse_header` lets only change types through.
        other => Err(ChunkError::UnknownType(other)),
    }
}

/// The parts of a chunk header, and the body it announces.
struct Header<'a> {
    checksum: [u8; 4],
    chunk_type: u8,
    body: &'a [u8],
}

/// Reads and checks a chunk header: magic, a change type, a minimal length
/// that matches the bytes after it exactly.
fn parse_header(bytes: &[u8]) -> Result<Header<'_>, ChunkError> {
    let truncated = ChunkError::Truncated { len: bytes.len() };
    let Some((fixed, rest)) = bytes.split_first_chunk::<HEADER_FIXED_LEN>() else {
        // Wrong magic is the better answer for a short input that has it wrong.
        let prefix_len = bytes.len().min(CHUNK_MAGIC.len());
        if bytes[..prefix_len] != CHUNK_MAGIC[..prefix_len] {
            let mut found = [0; 4];
            found[..prefix_len].copy_from_slice(&bytes[..prefix_len]);
            return Err(ChunkError::BadMagic { found });
        }
        return Err(truncated);
    };
    let [m0, m1, m2, m3, c0, c1, c2, c3, chunk_type] = *fixed;
    if [m0, m1, m2, m3] != CHUNK_MAGIC {
        return Err(ChunkError::BadMagic {
            found: [m0, m1, m2, m3],
        });
    }
    match chunk_type {
        CHUNK_TYPE_CHANGE | CHUNK_TYPE_COMPRESSED_CHANGE => {}
        CHUNK_TYPE_DOCUMENT => return Err(ChunkError::DocumentChunk),
        CHUNK_TYPE_BUNDLE => return Err(ChunkError::BundleChunk),
        other => return Err(ChunkError::UnknownType(other)),
    }
    let (declared, uleb_len) = read_uleb(rest).map_err(|e| e.unwrap_or(truncated))?;
    let body = &rest[uleb_len..];
    let declared_len = usize::try_from(declared).map_err(|_| ChunkError::LengthOverflow)?;
    if declared_len != body.len() {
        return Err(ChunkError::LengthMismatch {
            declared,
            actual: body.len(),
        });
    }
    Ok(Header {
        checksum: [c0, c1, c2, c3],
        chunk_type,
        body,
    })
}

/// Reads a minimal ULEB128 `u64` from the start of `input`: its value and how
/// many bytes it took. `Err(None)` when the input ends inside it.
fn read_uleb(input: &[u8]) -> Result<(u64, usize), Option<ChunkError>> {
    let mut value = 0u64;
    for (i, &byte) in input.iter().enumerate() {
        if i == ULEB_LEN_MAX {
            return Err(Some(ChunkError::LengthOverflow));
        }
        let low = u64::from(byte & 0x7f);
        // The tenth byte holds bit 63 alone.
        if i == ULEB_LEN_MAX - 1 && low > 1 {
            return Err(Some(ChunkError::LengthOverflow));
        }
        value |= low << (7 * i);
        if byte & 0x80 == 0 {
            if i > 0 && byte == 0 {
                return Err(Some(ChunkError::LengthOverlong));
            }
            return Ok((value, i + 1));
        }
    }
    Err(None)
}

/// SHA-256 of a chunk's type byte, length and body: the change hash.
fn change_hash(hashed: &[u8]) -> [u8; 32] {
    Sha256::digest(hashed).into()
}

/// How many zeros [`zeros_change_hash`] hashes at a time: its whole memory,
/// whatever the length it is asked for.
const ZEROS_HASH_STEP_LEN: usize = 64 * 1024;

/// The change hash of a plain change chunk whose body is `len` zeros (its
/// first 4 bytes are the checksum of that change, compressed or not), hashed
/// in steps so the body is never held.
///
/// For building an oversized chunk header without holding the body: the
/// tests of this gate and the adversary peers of `labnet-tests` send
/// compressed changes (deflate bombs) that claim tens of MiB of zeros, whose
/// header must carry the right checksum to reach the inflation cap.
pub fn zeros_change_hash(len: usize) -> [u8; 32] {
    let mut hasher = Sha256::new();
    let mut hashed_header = vec![CHUNK_TYPE_CHANGE];
    put_varint(&mut hashed_header, len as u64);
    hasher.update(&hashed_header);
    let zeros = vec![0u8; ZEROS_HASH_STEP_LEN];
    let mut left = len;
    while left > 0 {
        let n = left.min(zeros.len());
        hasher.update(&zeros[..n]);
        left -= n;
    }
    hasher.finalize().into()
}

fn check_checksum(expected: [u8; 4], hash: &[u8; 32]) -> Result<(), ChunkError> {
    let computed = [hash[0], hash[1], hash[2], hash[3]];
    if computed == expected {
        Ok(())
    } else {
        Err(ChunkError::BadChecksum { expected, computed })
    }
}

/// Inflates a compressed change's raw-DEFLATE body into `out` (which must be
/// empty) and turns `out` into the equivalent uncompressed chunk, header
/// included, carrying `checksum`. Returns the body's length.
///
/// Stops with [`ChunkError::InflatedTooLong`] as soon as the body would pass
/// `body_len_max`; `out`'s capacity never passes `body_len_max` plus the
/// longest header, whatever the input.
fn inflate_change(
    checksum: [u8; 4],
    compressed: &[u8],
    body_len_max: usize,
    out: &mut Vec<u8>,
) -> Result<usize, ChunkError> {
    debug_assert!(out.is_empty(), "inflate_change appends to an empty buffer");
    let capacity_max = HEADER_LEN_MAX + body_len_max;
    // Room for the longest header goes first; the header is written into its
    // end once the body's length is known, and the unused start cut off.
    out.reserve_exact(HEADER_LEN_MAX + INFLATE_STEP_LEN.min(body_len_max));
    out.resize(HEADER_LEN_MAX, 0);

    // Raw DEFLATE, no zlib header: what Automerge's `DeflateDecoder` reads.
    let mut inflater = Decompress::new(false);
    let mut step = [0u8; INFLATE_STEP_LEN];
    let mut consumed = 0usize;
    loop {
        let (in_before, out_before) = (inflater.total_in(), inflater.total_out());
        let status = inflater
            .decompress(&compressed[consumed..], &mut step, FlushDecompress::None)
            .map_err(|_| ChunkError::BadDeflate)?;
        // Both deltas are bounded by the slices just passed in.
        let read = usize::try_from(inflater.total_in() - in_before).unwrap_or(usize::MAX);
        let written = usize::try_from(inflater.total_out() - out_before).unwrap_or(usize::MAX);
        let (Some(after_read), Some(produced)) = (consumed.checked_add(read), step.get(..written))
        else {
            return Err(ChunkError::BadDeflate);
        };
        consumed = after_read.min(compressed.len());

        if out.len() - HEADER_LEN_MAX + produced.len() > body_len_max {
            return Err(ChunkError::InflatedTooLong { max: body_len_max });
        }
        reserve_within(out, produced.len(), capacity_max);
        out.extend_from_slice(produced);

        match status {
            Status::StreamEnd => break,
            Status::Ok | Status::BufError if read == 0 && written == 0 => {
                // No progress with room to write: the input ran out before
                // the stream's final block, or the inflater is stuck.
                return Err(if consumed == compressed.len() {
                    ChunkError::DeflateTruncated
                } else {
                    ChunkError::BadDeflate
                });
            }
            Status::Ok | Status::BufError => {}
        }
    }
    if consumed != compressed.len() {
        return Err(ChunkError::DeflateTrailingBytes {
            len: compressed.len() - consumed,
        });
    }

    let body_len = out.len() - HEADER_LEN_MAX;
    let mut header = Vec::with_capacity(HEADER_LEN_MAX);
    header.extend_from_slice(&CHUNK_MAGIC);
    header.extend_from_slice(&checksum);
    header.push(CHUNK_TYPE_CHANGE);
    put_varint(&mut header, body_len as u64);
    let start = HEADER_LEN_MAX - header.len();
    out[start..HEADER_LEN_MAX].copy_from_slice(&header);
    // Shifts in place: no second buffer the size of the body.
    out.drain(..start);
    Ok(body_len)
}

/// Makes room for `extra` more bytes in `out`, growing it the way `Vec` does
/// (doubling) but never past `capacity_max` bytes.
fn reserve_within(out: &mut Vec<u8>, extra: usize, capacity_max: usize) {
    let needed = out.len() + extra;
    if needed > out.capacity() {
        let target = out
            .capacity()
            .saturating_mul(2)
            .min(capacity_max)
            .max(needed);
        out.reserve_exact(target - out.len());
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use automerge::{transaction::Transactable, AutoCommit, ROOT};
    use flate2::{write::DeflateEncoder, Compression};
    use proptest::prelude::*;

    use super::*;

    /// Asserts that the chunk is refused with the named error variant, and
    /// shows what came back when it is not.
    macro_rules! assert_refused {
        ($chunk:expr, $variant:path) => {
            let result = check_change_chunk($chunk);
            assert!(matches!(result, Err($variant { .. })), "{result:?}");
        };
    }

    /// A document with one small commit.
    fn small_doc() -> AutoCommit {
        let mut doc = AutoCommit::new();
        doc.put(ROOT, "title", "Milma").unwrap();
        doc.put(ROOT, "stops", 3).unwrap();
        doc.commit();
        doc
    }

    /// A change from `small_doc`, as Automerge stores it (uncompressed).
    fn small_change() -> automerge::Change {
        small_doc().get_changes(&[]).remove(0)
    }

    /// A plain chunk of any type, with the checksum of `body` as a change.
    fn plain_chunk(chunk_type: u8, body: &[u8]) -> Vec<u8> {
        let mut out = CHUNK_MAGIC.to_vec();
        let mut hashed = vec![chunk_type];
        put_varint(&mut hashed, body.len() as u64);
        hashed.extend_from_slice(body);
        let hash = change_hash(&[&[CHUNK_TYPE_CHANGE], &hashed[1..]].concat());
        out.extend_from_slice(&hash[..4]);
        out.extend_from_slice(&hashed);
        out
    }

    /// Wraps raw DEFLATE `deflated` as a compressed change carrying `checksum`
    /// (which should be that of the uncompressed change).
    fn compressed_chunk_with(checksum: [u8; 4], deflated: &[u8]) -> Vec<u8> {
        let mut out = CHUNK_MAGIC.to_vec();
        out.extend_from_slice(&checksum);
        out.push(CHUNK_TYPE_COMPRESSED_CHANGE);
        put_varint(&mut out, deflated.len() as u64);
        out.extend_from_slice(deflated);
        out
    }

    fn checksum_of(hash: &[u8; 32]) -> [u8; 4] {
        [hash[0], hash[1], hash[2], hash[3]]
    }

    fn deflate(body: &[u8]) -> Vec<u8> {
        let mut encoder = DeflateEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(body).unwrap();
        encoder.finish().unwrap()
    }

    /// A compressed change of `body`, with the right checksum.
    fn compressed_chunk(body: &[u8]) -> Vec<u8> {
        let plain = plain_chunk(CHUNK_TYPE_CHANGE, body);
        let checksum = checksum_of(&change_hash(&plain[HASHED_START..]));
        compressed_chunk_with(checksum, &deflate(body))
    }

    /// A raw DEFLATE stream of `mib` MiB of zeros, cheap to build at any size:
    /// one MiB compressed and sync-flushed (so it ends on a byte boundary and
    /// is not the final block), repeated, then a final empty stored block.
    /// Repeating is sound because a copy's back-references only ever reach
    /// zeros, before it as in the first copy.
    fn zeros_deflated(mib: usize) -> Vec<u8> {
        let mut encoder = DeflateEncoder::new(Vec::new(), Compression::best());
        encoder.write_all(&vec![0u8; 1024 * 1024]).unwrap();
        encoder.flush().unwrap();
        let mut stream = encoder.get_ref().repeat(mib);
        stream.extend_from_slice(&[0x01, 0x00, 0x00, 0xff, 0xff]);
        stream
    }

    /// The checksum of a change whose body is `len` zeros, streamed so the
    /// test never holds them.
    fn zeros_checksum(len: usize) -> [u8; 4] {
        checksum_of(&zeros_change_hash(len))
    }

    /// A compressed change of `mib` MiB of zeros, with the right checksum.
    fn zeros_chunk(mib: usize) -> Vec<u8> {
        compressed_chunk_with(zeros_checksum(mib * 1024 * 1024), &zeros_deflated(mib))
    }

    /// The deflate bomb: 64 MiB of zeros as a compressed change of about
    /// 64 KiB, with a correct checksum. Hashing 64 MiB takes seconds in a
    /// debug build, so the checksum is written down; it is
    /// `(printf '\x01\x80\x80\x80\x20'; head -c 67108864 /dev/zero) | sha256sum`
    /// cut to 4 bytes (type 1, the ULEB of 64 MiB, the body), and
    /// `zeros_checksum_matches_sha256sum_at_small_sizes` checks the recipe.
    fn deflate_bomb() -> Vec<u8> {
        compressed_chunk_with([0xe6, 0x4a, 0xa4, 0xd5], &zeros_deflated(64))
    }

    fn in_delivery(result: Result<Vec<CheckedChange>, ChunkError>) -> (usize, ChunkError) {
        match result {
            Err(ChunkError::InDelivery { index, error }) => (index, *error),
            other => panic!("expected an error in the delivery, got {other:?}"),
        }
    }

    /// The index of the chunk that took `delivery` past its inflated total;
    /// panics if the delivery is not refused for that.
    fn over_budget_at(delivery: &[Vec<u8>]) -> usize {
        let (index, error) = in_delivery(check_change_chunks(delivery));
        assert_eq!(
            error,
            ChunkError::DeliveryTooLarge {
                max: DELIVERY_INFLATED_BYTES_MAX
            }
        );
        index
    }

    #[test]
    fn real_change_passes_and_its_hash_is_automerges() {
        let change = small_change();
        let checked = check_change_chunk(change.raw_bytes()).unwrap();
        assert_eq!(checked.as_bytes(), change.raw_bytes());
        assert_eq!(checked.hash(), change.hash().0);
        // And Automerge takes what comes out.
        let again = automerge::Change::from_bytes(checked.into_bytes()).unwrap();
        assert_eq!(again.hash(), change.hash());
    }

    #[test]
    fn small_change_bytes_stay_uncompressed_and_pass() {
        let mut change = small_change();
        let bytes = change.bytes().into_owned();
        assert_eq!(
            bytes[8], CHUNK_TYPE_CHANGE,
            "small changes are not compressed"
        );
        assert_eq!(check_change_chunk(&bytes).unwrap().hash(), change.hash().0);
    }

    #[test]
    fn large_change_compressed_by_automerge_is_inflated_to_its_raw_bytes() {
        let mut doc = AutoCommit::new();
        for i in 0..200 {
            doc.put(
                ROOT,
                format!("stop-{i}"),
                format!("Stop number {i} of the practice"),
            )
            .unwrap();
        }
        doc.commit();
        let mut change = doc.get_changes(&[]).remove(0);
        let compressed = change.bytes().into_owned();
        assert_eq!(
            compressed[8], CHUNK_TYPE_COMPRESSED_CHANGE,
            "Automerge compressed it"
        );
        assert!(compressed.len() < change.raw_bytes().len());

        let checked = check_change_chunk(&compressed).unwrap();
        assert_eq!(checked.as_bytes(), change.raw_bytes());
        assert_eq!(checked.hash(), change.hash().0);
        // The rebuilt chunk needs no inflating and checks the same.
        assert_eq!(check_change_chunk(checked.as_bytes()).unwrap(), checked);

        let mut replica = AutoCommit::new();
        replica
            .apply_changes([automerge::Change::from_bytes(checked.into_bytes()).unwrap()])
            .unwrap();
        assert_eq!(replica.get_heads(), vec![change.hash()]);
    }

    #[test]
    fn deflate_bomb_of_64_mib_is_refused_at_the_cap() {
        let bomb = deflate_bomb();
        assert!(
            bomb.len() < 100 * 1024,
            "the bomb is small on the wire: {}",
            bomb.len()
        );
        assert_eq!(
            check_change_chunk(&bomb),
            Err(ChunkError::InflatedTooLong {
                max: INFLATED_CHANGE_LEN_MAX
            })
        );

        // The buffer it inflated into stopped growing at the cap.
        let header = parse_header(&bomb).unwrap();
        let mut out = Vec::new();
        let result = inflate_change(
            header.checksum,
            header.body,
            INFLATED_CHANGE_LEN_MAX,
            &mut out,
        );
        assert!(matches!(result, Err(ChunkError::InflatedTooLong { .. })));
        assert!(out.capacity() <= HEADER_LEN_MAX + INFLATED_CHANGE_LEN_MAX);
    }

    #[test]
    fn zeros_checksum_matches_sha256sum_at_small_sizes() {
        // The streamed checksum is the checksum of the plain chunk...
        for len in [0, 1, 300, 200_000] {
            let plain = plain_chunk(CHUNK_TYPE_CHANGE, &vec![0; len]);
            assert_eq!(zeros_checksum(len), plain[4..8], "{len} zeros");
        }
        // ...and the repeated stream inflates to exactly that many zeros.
        let chunk = zeros_chunk(3);
        let header = parse_header(&chunk).unwrap();
        let mut out = Vec::new();
        let body_len = inflate_change(header.checksum, header.body, 3 << 20, &mut out).unwrap();
        assert_eq!(body_len, 3 << 20);
        assert!(out[HEADER_FIXED_LEN + 4..].iter().all(|&b| b == 0));
        check_checksum(header.checksum, &change_hash(&out[HASHED_START..])).unwrap();
    }

    /// Slow in a debug build (inflates and hashes 64 MiB): run with
    /// `cargo test -p labnet-protocol -- --ignored` after changing the bomb.
    #[test]
    #[ignore]
    fn deflate_bomb_checksum_is_right_for_its_64_mib() {
        let bomb = deflate_bomb();
        let header = parse_header(&bomb).unwrap();
        let mut out = Vec::new();
        let body_len = inflate_change(header.checksum, header.body, 64 << 20, &mut out).unwrap();
        assert_eq!(body_len, 64 << 20);
        check_checksum(header.checksum, &change_hash(&out[HASHED_START..])).unwrap();
    }

    #[test]
    fn deflate_bomb_in_a_delivery_is_refused_with_its_index() {
        let delivery = vec![small_change().raw_bytes().to_vec(), deflate_bomb()];
        let (index, error) = in_delivery(check_change_chunks(&delivery));
        assert_eq!(index, 1);
        assert_eq!(
            error,
            ChunkError::InflatedTooLong {
                max: INFLATED_CHANGE_LEN_MAX
            }
        );
    }

    #[test]
    fn inflating_exactly_to_the_cap_passes_and_one_byte_more_does_not() {
        assert_eq!(INFLATED_CHANGE_LEN_MAX, 1024 * 1024);
        let at_cap = check_change_chunk(&zeros_chunk(1)).unwrap();
        assert_eq!(at_cap.body_len, INFLATED_CHANGE_LEN_MAX);
        assert_eq!(
            at_cap.as_bytes().len(),
            HEADER_FIXED_LEN + 3 + INFLATED_CHANGE_LEN_MAX
        );
        assert_eq!(
            check_change_chunk(&compressed_chunk(&vec![0; INFLATED_CHANGE_LEN_MAX + 1])),
            Err(ChunkError::InflatedTooLong {
                max: INFLATED_CHANGE_LEN_MAX
            })
        );
    }

    #[test]
    fn wrong_magic_is_refused() {
        let mut bytes = small_change().raw_bytes().to_vec();
        bytes[0] = 0x00;
        assert_eq!(
            check_change_chunk(&bytes),
            Err(ChunkError::BadMagic {
                found: [0x00, 0x6f, 0x4a, 0x83]
            })
        );
        assert_refused!(b"{\"json\": true}", ChunkError::BadMagic);
        assert_refused!(b"hi", ChunkError::BadMagic);
    }

    #[test]
    fn bad_checksum_is_refused() {
        let good = small_change().raw_bytes().to_vec();
        let mut bad_sum = good.clone();
        bad_sum[4] ^= 0xff;
        assert_refused!(&bad_sum, ChunkError::BadChecksum);
        let mut bad_body = good;
        let last = bad_body.len() - 1;
        bad_body[last] ^= 0x01;
        assert_refused!(&bad_body, ChunkError::BadChecksum);
    }

    #[test]
    fn compressed_change_with_a_bad_checksum_is_refused() {
        let mut chunk = compressed_chunk(b"not really a change, but checksummed as one");
        assert!(check_change_chunk(&chunk).is_ok());
        chunk[5] ^= 0x01;
        assert_refused!(&chunk, ChunkError::BadChecksum);
    }

    #[test]
    fn compressed_change_checksummed_over_its_compressed_form_is_refused() {
        // The checksum must be of the uncompressed form, as Automerge writes it.
        let body = b"some body bytes";
        let deflated = deflate(body);
        let mut wrong = vec![CHUNK_TYPE_COMPRESSED_CHANGE];
        put_varint(&mut wrong, deflated.len() as u64);
        wrong.extend_from_slice(&deflated);
        let chunk = compressed_chunk_with(checksum_of(&change_hash(&wrong)), &deflated);
        assert_refused!(&chunk, ChunkError::BadChecksum);
    }

    #[test]
    fn truncated_chunk_is_refused() {
        let good = small_change().raw_bytes().to_vec();
        for len in 0..good.len() {
            let result = check_change_chunk(&good[..len]);
            match result {
                Err(ChunkError::Truncated { len: l }) => assert_eq!(l, len),
                Err(ChunkError::LengthMismatch { actual, .. }) => {
                    assert!(len > HEADER_FIXED_LEN, "cut at {len}");
                    assert!(actual < good.len() - HEADER_FIXED_LEN);
                }
                other => panic!("cut at {len}: {other:?}"),
            }
        }
        assert_eq!(
            check_change_chunk(&good[..HEADER_FIXED_LEN]),
            Err(ChunkError::Truncated {
                len: HEADER_FIXED_LEN
            })
        );
    }

    #[test]
    fn truncated_deflate_stream_is_refused() {
        let body = vec![7u8; 5000];
        let plain = plain_chunk(CHUNK_TYPE_CHANGE, &body);
        let deflated = deflate(&body);
        let cut = compressed_chunk_with(
            checksum_of(&change_hash(&plain[HASHED_START..])),
            &deflated[..deflated.len() - 1],
        );
        assert_eq!(check_change_chunk(&cut), Err(ChunkError::DeflateTruncated));
        let empty = compressed_chunk_with(checksum_of(&change_hash(&plain[HASHED_START..])), &[]);
        assert_eq!(
            check_change_chunk(&empty),
            Err(ChunkError::DeflateTruncated)
        );
    }

    #[test]
    fn garbage_deflate_stream_is_refused() {
        // Block type 3 does not exist in DEFLATE.
        let chunk = compressed_chunk_with([0; 4], &[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(check_change_chunk(&chunk), Err(ChunkError::BadDeflate));
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = small_change().raw_bytes().to_vec();
        let body_len = bytes.len() - HEADER_FIXED_LEN - 1;
        bytes.push(0);
        assert_eq!(
            check_change_chunk(&bytes),
            Err(ChunkError::LengthMismatch {
                declared: body_len as u64,
                actual: body_len + 1
            })
        );
        // Two chunks glued together are not one.
        let two = [small_change().raw_bytes(), small_change().raw_bytes()].concat();
        assert_refused!(&two, ChunkError::LengthMismatch);
    }

    #[test]
    fn trailing_bytes_after_the_deflate_stream_are_refused() {
        let body = b"body";
        let plain = plain_chunk(CHUNK_TYPE_CHANGE, body);
        let mut deflated = deflate(body);
        deflated.extend_from_slice(b"extra");
        let chunk =
            compressed_chunk_with(checksum_of(&change_hash(&plain[HASHED_START..])), &deflated);
        assert_eq!(
            check_change_chunk(&chunk),
            Err(ChunkError::DeflateTrailingBytes { len: 5 })
        );
    }

    #[test]
    fn length_overflow_is_refused() {
        let header = |uleb: &[u8]| {
            let mut bytes = CHUNK_MAGIC.to_vec();
            bytes.extend_from_slice(&[0; 4]);
            bytes.push(CHUNK_TYPE_CHANGE);
            bytes.extend_from_slice(uleb);
            bytes.extend_from_slice(b"body");
            bytes
        };
        // Eleven bytes of ULEB.
        let eleven = header(&[0xff; 10].iter().copied().chain([0x01]).collect::<Vec<_>>());
        assert_eq!(check_change_chunk(&eleven), Err(ChunkError::LengthOverflow));
        // Ten bytes, but the tenth holds more than bit 63.
        let above_u64 = header(&[0xff; 9].iter().copied().chain([0x02]).collect::<Vec<_>>());
        assert_eq!(
            check_change_chunk(&above_u64),
            Err(ChunkError::LengthOverflow)
        );
        // Exactly u64::MAX fits the ULEB but not the bytes that follow.
        let max = header(&[0xff; 9].iter().copied().chain([0x01]).collect::<Vec<_>>());
        assert!(matches!(
            check_change_chunk(&max),
            Err(ChunkError::LengthMismatch {
                declared: u64::MAX,
                ..
            })
        ));
        // Endless continuation bytes run into the limit, not off the end.
        assert_eq!(
            check_change_chunk(&header(&[0x80; 64])),
            Err(ChunkError::LengthOverflow)
        );
    }

    #[test]
    fn overlong_length_is_refused() {
        // 4 as `84 80 00`: the hash Automerge computes re-encodes it as `04`.
        let mut bytes = CHUNK_MAGIC.to_vec();
        bytes.extend_from_slice(&[0; 4]);
        bytes.push(CHUNK_TYPE_CHANGE);
        bytes.extend_from_slice(&[0x84, 0x80, 0x00]);
        bytes.extend_from_slice(b"body");
        assert_eq!(check_change_chunk(&bytes), Err(ChunkError::LengthOverlong));
    }

    #[test]
    fn document_chunk_from_save_is_refused() {
        let saved = small_doc().save();
        assert_eq!(saved[8], CHUNK_TYPE_DOCUMENT);
        assert_eq!(check_change_chunk(&saved), Err(ChunkError::DocumentChunk));
    }

    #[test]
    fn bundle_and_unknown_chunk_types_are_refused() {
        assert_eq!(
            check_change_chunk(&plain_chunk(CHUNK_TYPE_BUNDLE, b"body")),
            Err(ChunkError::BundleChunk)
        );
        for chunk_type in [4, 0x7f, 0xff] {
            assert_eq!(
                check_change_chunk(&plain_chunk(chunk_type, b"body")),
                Err(ChunkError::UnknownType(chunk_type))
            );
        }
    }

    #[test]
    fn chunk_over_the_length_limit_is_refused() {
        let body = vec![1u8; CHANGE_CHUNK_LEN_MAX];
        let chunk = plain_chunk(CHUNK_TYPE_CHANGE, &body);
        assert_eq!(
            check_change_chunk(&chunk),
            Err(ChunkError::TooLong {
                len: chunk.len(),
                max: CHANGE_CHUNK_LEN_MAX
            })
        );
        let just_fits = plain_chunk(CHUNK_TYPE_CHANGE, &body[..CHANGE_CHUNK_LEN_MAX - 12]);
        assert_eq!(just_fits.len(), CHANGE_CHUNK_LEN_MAX);
        assert!(check_change_chunk(&just_fits).is_ok());
    }

    #[test]
    fn delivery_of_real_changes_passes_in_order() {
        let mut doc = small_doc();
        doc.put(ROOT, "title", "Milma, revised").unwrap();
        doc.commit();
        let changes = doc.get_changes(&[]);
        let delivery: Vec<Vec<u8>> = changes.iter().map(|c| c.raw_bytes().to_vec()).collect();
        let checked = check_change_chunks(&delivery).unwrap();
        let hashes: Vec<[u8; 32]> = checked.iter().map(CheckedChange::hash).collect();
        let expected: Vec<[u8; 32]> = changes.iter().map(|c| c.hash().0).collect();
        assert_eq!(hashes, expected);
        assert_eq!(check_change_chunks(&[]), Ok(vec![]));
    }

    #[test]
    fn delivery_names_the_chunk_that_failed() {
        let good = small_change().raw_bytes().to_vec();
        let mut bad = good.clone();
        bad[4] ^= 0xff;
        let delivery = vec![good.clone(), good, bad];
        let result = check_change_chunks(&delivery);
        let message = result.as_ref().unwrap_err().to_string();
        assert!(
            message.starts_with("change chunk 2 of the delivery: bad checksum"),
            "{message}"
        );
        let (index, error) = in_delivery(result);
        assert_eq!(index, 2);
        assert!(matches!(error, ChunkError::BadChecksum { .. }));
    }

    #[test]
    fn too_many_chunks_are_refused_before_any_is_read() {
        let delivery = vec![Vec::new(); CHANGES_PER_DELIVERY_MAX + 1];
        assert_eq!(
            check_change_chunks(&delivery),
            Err(ChunkError::TooManyChunks {
                count: CHANGES_PER_DELIVERY_MAX + 1,
                max: CHANGES_PER_DELIVERY_MAX
            })
        );
        let at_limit = vec![small_change().raw_bytes().to_vec(); CHANGES_PER_DELIVERY_MAX];
        assert_eq!(
            check_change_chunks(&at_limit).unwrap().len(),
            CHANGES_PER_DELIVERY_MAX
        );
    }

    #[test]
    fn delivery_inflating_past_its_total_is_refused() {
        // Each chunk inflates to the per-chunk cap: fine alone, and sixteen of
        // them fill the delivery's budget exactly.
        let one = zeros_chunk(INFLATED_CHANGE_LEN_MAX / (1024 * 1024));
        let per_budget = DELIVERY_INFLATED_BYTES_MAX / INFLATED_CHANGE_LEN_MAX;
        assert_eq!(
            check_change_chunks(&vec![one.clone(); per_budget])
                .unwrap()
                .len(),
            per_budget
        );

        assert_eq!(over_budget_at(&vec![one; per_budget + 1]), per_budget);
    }

    #[test]
    fn delivery_of_plain_chunks_past_its_total_is_refused() {
        // Plain bodies count toward the total too.
        let big = plain_chunk(CHUNK_TYPE_CHANGE, &vec![1u8; CHANGE_CHUNK_LEN_MAX - 12]);
        let fit = DELIVERY_INFLATED_BYTES_MAX / (CHANGE_CHUNK_LEN_MAX - 12);
        assert_eq!(over_budget_at(&vec![big; fit + 1]), fit);
    }

    #[test]
    fn uleb_round_trips_at_the_edges() {
        for value in [0, 1, 127, 128, 300, 1 << 20, u64::MAX >> 1, u64::MAX] {
            let mut bytes = Vec::new();
            put_varint(&mut bytes, value);
            assert_eq!(read_uleb(&bytes), Ok((value, bytes.len())));
        }
    }

    /// Bytes that reach past the header checks: magic, any checksum, any type,
    /// a correct length, any body.
    fn framed() -> impl Strategy<Value = Vec<u8>> {
        (
            any::<[u8; 4]>(),
            0u8..5,
            proptest::collection::vec(any::<u8>(), 0..256),
        )
            .prop_map(|(checksum, chunk_type, body)| {
                let mut bytes = CHUNK_MAGIC.to_vec();
                bytes.extend_from_slice(&checksum);
                bytes.push(chunk_type);
                put_varint(&mut bytes, body.len() as u64);
                bytes.extend_from_slice(&body);
                bytes
            })
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = check_change_chunk(&bytes);
            let mut with_magic = CHUNK_MAGIC.to_vec();
            with_magic.extend_from_slice(&bytes);
            let _ = check_change_chunk(&with_magic);
        }

        #[test]
        fn framed_bytes_never_panic_and_what_passes_is_a_plain_change(bytes in framed()) {
            if let Ok(checked) = check_change_chunk(&bytes) {
                prop_assert_eq!(checked.as_bytes()[8], CHUNK_TYPE_CHANGE);
                prop_assert_eq!(check_change_chunk(checked.as_bytes()), Ok(checked));
            }
        }

        #[test]
        fn any_body_passes_plain_and_compressed_alike(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let plain = check_change_chunk(&plain_chunk(CHUNK_TYPE_CHANGE, &body)).unwrap();
            let compressed = check_change_chunk(&compressed_chunk(&body)).unwrap();
            prop_assert_eq!(plain, compressed);
        }

        #[test]
        fn arbitrary_deliveries_never_panic(
            chunks in proptest::collection::vec(prop_oneof![
                framed(),
                proptest::collection::vec(any::<u8>(), 0..64),
            ], 0..8)
        ) {
            let _ = check_change_chunks(&chunks);
        }
    }
}
