//! The two forms a document's heads take outside Automerge.
//!
//! Heads (the hashes of a document's latest changes) name a version. The store
//! keeps them in two forms, for two readers:
//!
//! - [`encode_heads`] / [`decode_heads`]: the 32-byte hashes concatenated, in
//!   the `heads` column of `documents`. Compact, compared byte for byte to
//!   decide whether a save has anything new, and never shown to anyone.
//! - [`heads_hex`]: lowercase hex, comma-separated, as the disclosure log
//!   records a version and as the CLI shows it. This is Automerge's own
//!   `Display` of a hash, so a version in the log can be matched against
//!   what any Automerge tool prints.

use automerge::ChangeHash;

/// The length of one encoded hash.
const HASH_LEN: usize = 32;

/// Heads as stored: 32-byte hashes, concatenated.
pub fn encode_heads(heads: &[ChangeHash]) -> Vec<u8> {
    heads.iter().flat_map(|h| h.0).collect()
}

/// Reads heads stored by [`encode_heads`]; `None` if the length is not a multiple of 32.
pub fn decode_heads(bytes: &[u8]) -> Option<Vec<ChangeHash>> {
    if !bytes.len().is_multiple_of(HASH_LEN) {
        return None;
    }
    bytes
        .chunks_exact(HASH_LEN)
        .map(|c| <[u8; HASH_LEN]>::try_from(c).ok().map(ChangeHash))
        .collect()
}

/// Heads as lowercase hex, comma-separated: how the disclosure log names a version.
pub fn heads_hex(heads: &[ChangeHash]) -> String {
    heads
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}
