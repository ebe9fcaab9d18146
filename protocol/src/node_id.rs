//! The NodeId: a node's name on the network, derived from its public key.
//!
//! Nodes never trust a name they are told; they trust a key they have checked.
//! The NodeId is a hash of the node's Ed25519 public key, so the id can be
//! recomputed from the certificate a peer presents in the TLS handshake and
//! compared with the id an admin approved.
//!
//! People read NodeIds to each other over the phone, so the printed form is built
//! for that (in the spirit of Syncthing's device IDs):
//!
//! - 21 bytes (168 bits) of `SHA-256("labnet-node-id-v1" || public key)`: far more
//!   than enough that nobody can make a second key with the same id;
//! - written in Crockford's base32 (no I, L, O or U, so nothing looks alike),
//!   34 characters;
//! - followed by Crockford's check symbol (the id's value mod 37, written with the
//!   alphabet plus `*~$=U`). Because 37 is prime and does not divide any power of
//!   32, it catches every single mistyped character and every swap of two
//!   neighbouring characters (a Luhn mod 32 check misses swaps such as `0Z`/`Z0`);
//! - shown as seven groups of five: `7QJ2M-XG4PA-...`.
//!
//! Parsing accepts upper or lower case, with or without `-` or spaces between the
//! groups, and reads `O` as `0` and `I`/`L` as `1` as Crockford intends. A wrong
//! check character is an error, so a typo is rejected rather than matching nothing.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// How many bytes of the key hash make up a NodeId.
pub const NODE_ID_LEN: usize = 21;

/// Characters of base32 that carry the id (21 bytes = 168 bits = 33.6 characters).
const DATA_CHARS: usize = 34;

/// Characters in the printed form, check character included (and no separators).
const TOTAL_CHARS: usize = DATA_CHARS + 1;

/// Characters per printed group.
const GROUP_LEN: usize = 5;

/// Crockford's base32 alphabet, in value order.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Crockford's check symbols: the alphabet, then five extra symbols for 32..=36.
const CHECK_SYMBOLS: &[u8; 37] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ*~$=U";

/// Domain separation for the key hash, so that a NodeId can never be confused with
/// a hash of the same bytes taken for another purpose.
const HASH_DOMAIN: &[u8] = b"labnet-node-id-v1";

/// A node's identity on the network: a hash of its Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId([u8; NODE_ID_LEN]);

/// Why a string is not a NodeId.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeIdError {
    /// After removing separators the id has the wrong number of characters.
    #[error("a NodeId has {expected} characters (without dashes), this has {found}")]
    Length {
        /// Characters a NodeId has.
        expected: usize,
        /// Characters found.
        found: usize,
    },
    /// A character outside Crockford's base32 alphabet.
    #[error("'{character}' at position {position} is not a NodeId character (0-9, A-Z except U; the last may also be * ~ $ =)")]
    Character {
        /// The offending character.
        character: char,
        /// Its position among the id's characters (1-based, separators not counted).
        position: usize,
    },
    /// The check character does not match: the id was mistyped.
    #[error("the check character does not match: the NodeId was mistyped")]
    Check,
}

impl NodeId {
    /// The NodeId of the node holding this Ed25519 public key (32 raw bytes).
    pub fn from_public_key(public_key: &[u8]) -> NodeId {
        let mut hasher = Sha256::new();
        hasher.update(HASH_DOMAIN);
        hasher.update(public_key);
        let digest = hasher.finalize();
        let mut bytes = [0u8; NODE_ID_LEN];
        bytes.copy_from_slice(&digest[..NODE_ID_LEN]);
        NodeId(bytes)
    }

    /// Rebuilds a NodeId from its raw bytes, as stored or sent on the wire.
    pub fn from_bytes(bytes: [u8; NODE_ID_LEN]) -> NodeId {
        NodeId(bytes)
    }

    /// The raw bytes, for storage and the wire.
    pub fn as_bytes(&self) -> &[u8; NODE_ID_LEN] {
        &self.0
    }

    /// The printed form without separators: 35 characters, check character last.
    pub fn to_compact(&self) -> String {
        let data = base32::encode(base32::Alphabet::Crockford, &self.0);
        debug_assert_eq!(data.len(), DATA_CHARS);
        let check = mod37_check(data.bytes().map(char_value_unchecked));
        let mut out = data;
        out.push(CHECK_SYMBOLS[check as usize] as char);
        out
    }

    /// The 34 data characters without the check symbol: for identifiers built
    /// from NodeIds (publication ids), where only `[0-9A-Z]` may appear. Not for
    /// people: typed by hand it would lose the typo check.
    pub fn to_key(&self) -> String {
        let mut compact = self.to_compact();
        compact.truncate(DATA_CHARS);
        compact
    }

    /// Reads [`NodeId::to_key`]'s form: exactly 34 upper-case data characters.
    pub fn from_key(key: &str) -> Option<NodeId> {
        if key.len() != DATA_CHARS || !key.bytes().all(|b| ALPHABET.contains(&b)) {
            return None;
        }
        let bytes =
            base32::decode(base32::Alphabet::Crockford, key).filter(|b| b.len() == NODE_ID_LEN)?;
        let mut id = [0u8; NODE_ID_LEN];
        id.copy_from_slice(&bytes);
        let node_id = NodeId(id);
        // The spare bits must be zero, so each NodeId has exactly one key.
        (node_id.to_key() == key).then_some(node_id)
    }

    /// A short prefix for log lines and tables, like a git short hash.
    pub fn short(&self) -> String {
        self.to_compact()[..GROUP_LEN].to_string()
    }
}

/// The value of a character that is known to be in the alphabet.
fn char_value_unchecked(c: u8) -> u8 {
    char_value(c).unwrap_or(0)
}

/// The value of a Crockford base32 character, with its documented aliases.
fn char_value(c: u8) -> Option<u8> {
    let c = c.to_ascii_uppercase();
    let c = match c {
        b'O' => b'0',
        b'I' | b'L' => b'1',
        other => other,
    };
    ALPHABET.iter().position(|&a| a == c).map(|p| p as u8)
}

/// Crockford's check value: the number the characters spell, modulo 37.
fn mod37_check(values: impl Iterator<Item = u8>) -> u8 {
    values.fold(0u32, |rest, value| (rest * 32 + u32::from(value)) % 37) as u8
}

/// The value of a check symbol (the last character), with the alphabet's aliases.
fn check_value(c: u8) -> Option<u8> {
    char_value(c).or_else(|| {
        let c = c.to_ascii_uppercase();
        CHECK_SYMBOLS.iter().position(|&a| a == c).map(|p| p as u8)
    })
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let compact = self.to_compact();
        for (i, chunk) in compact.as_bytes().chunks(GROUP_LEN).enumerate() {
            if i > 0 {
                f.write_str("-")?;
            }
            // The alphabet is ASCII, so every chunk is valid UTF-8.
            f.write_str(std::str::from_utf8(chunk).map_err(|_| fmt::Error)?)?;
        }
        Ok(())
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({self})")
    }
}

impl FromStr for NodeId {
    type Err = NodeIdError;

    fn from_str(s: &str) -> Result<NodeId, NodeIdError> {
        let mut values = Vec::with_capacity(TOTAL_CHARS);
        for c in s.trim().chars() {
            if c == '-' || c == ' ' {
                continue;
            }
            let position = values.len() + 1;
            let decode = if position == TOTAL_CHARS {
                check_value
            } else {
                char_value
            };
            let value = u8::try_from(c)
                .ok()
                .and_then(decode)
                .ok_or(NodeIdError::Character {
                    character: c,
                    position,
                })?;
            values.push(value);
            if values.len() > TOTAL_CHARS {
                break;
            }
        }
        if values.len() != TOTAL_CHARS {
            let found = s.chars().filter(|c| *c != '-' && *c != ' ').count();
            return Err(NodeIdError::Length {
                expected: TOTAL_CHARS,
                found,
            });
        }
        let (data, check) = values.split_at(DATA_CHARS);
        if mod37_check(data.iter().copied()) != check[0] {
            return Err(NodeIdError::Check);
        }
        let canonical: String = data.iter().map(|&v| ALPHABET[v as usize] as char).collect();
        let bytes = base32::decode(base32::Alphabet::Crockford, &canonical)
            .filter(|b| b.len() == NODE_ID_LEN)
            .ok_or(NodeIdError::Check)?;
        let mut id = [0u8; NODE_ID_LEN];
        id.copy_from_slice(&bytes);
        let node_id = NodeId(id);
        // 34 characters hold 170 bits for 168: the two spare bits must be zero, or
        // two different strings would name the same node.
        if node_id.to_compact()[..DATA_CHARS] != canonical {
            return Err(NodeIdError::Check);
        }
        Ok(node_id)
    }
}

impl serde::Serialize for NodeId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for NodeId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<NodeId, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> NodeId {
        NodeId::from_public_key(&[7u8; 32])
    }

    #[test]
    fn printed_form_is_seven_groups_of_five() {
        let printed = sample().to_string();
        let groups: Vec<&str> = printed.split('-').collect();
        assert_eq!(groups.len(), 7, "{printed}");
        assert!(groups.iter().all(|g| g.len() == 5), "{printed}");
    }

    #[test]
    fn parse_accepts_case_and_separator_variants() {
        let id = sample();
        let printed = id.to_string();
        let variants = [
            printed.clone(),
            printed.to_lowercase(),
            printed.replace('-', ""),
            printed.replace('-', " "),
            format!("  {}  ", printed.to_lowercase().replace('-', "")),
        ];
        for v in variants {
            assert_eq!(v.parse::<NodeId>(), Ok(id), "variant {v:?}");
        }
    }

    #[test]
    fn crockford_aliases_read_as_digits() {
        let id = sample();
        let compact = id.to_compact();
        let (data, check) = compact.split_at(DATA_CHARS);
        let aliased = format!("{}{check}", data.replace('0', "o").replace('1', "l"));
        assert_eq!(aliased.parse::<NodeId>(), Ok(id));
    }

    #[test]
    fn different_keys_give_different_ids() {
        assert_ne!(
            NodeId::from_public_key(&[1; 32]),
            NodeId::from_public_key(&[2; 32])
        );
    }

    #[test]
    fn wrong_length_and_bad_characters_are_named() {
        let compact = sample().to_compact();
        assert_eq!(
            compact[..30].parse::<NodeId>(),
            Err(NodeIdError::Length {
                expected: 35,
                found: 30
            })
        );
        for (at, character) in [(3, 'U'), (0, '*')] {
            let mut bad = compact.clone();
            bad.replace_range(at..at + 1, &character.to_string());
            assert_eq!(
                bad.parse::<NodeId>(),
                Err(NodeIdError::Character {
                    character,
                    position: at + 1
                })
            );
        }
    }

    #[test]
    fn spare_bits_must_be_zero() {
        // The last data character carries 3 bits of the id and 2 spare bits; a
        // character that sets a spare bit must not parse, even with a valid check.
        let compact = sample().to_compact();
        let data = &compact[..DATA_CHARS];
        let last = char_value(data.as_bytes()[DATA_CHARS - 1]).unwrap_or(0);
        let tweaked_value = last ^ 0b1;
        let mut tweaked: Vec<u8> = data.bytes().map(char_value_unchecked).collect();
        tweaked[DATA_CHARS - 1] = tweaked_value;
        let check = mod37_check(tweaked.iter().copied());
        let mut s: String = tweaked
            .iter()
            .map(|&v| ALPHABET[v as usize] as char)
            .collect();
        s.push(CHECK_SYMBOLS[check as usize] as char);
        assert_eq!(s.parse::<NodeId>(), Err(NodeIdError::Check));
    }

    proptest! {
        #[test]
        fn round_trip(bytes in proptest::array::uniform21(any::<u8>())) {
            let id = NodeId::from_bytes(bytes);
            prop_assert_eq!(id.to_string().parse::<NodeId>(), Ok(id));
            prop_assert_eq!(id.to_compact().parse::<NodeId>(), Ok(id));
        }

        #[test]
        fn every_single_character_typo_is_rejected(
            bytes in proptest::array::uniform21(any::<u8>()),
            position in 0..TOTAL_CHARS,
            replacement in 0u8..37,
        ) {
            let id = NodeId::from_bytes(bytes);
            let mut chars: Vec<u8> = id.to_compact().into_bytes();
            let replacement = CHECK_SYMBOLS[replacement as usize];
            prop_assume!(chars[position] != replacement);
            chars[position] = replacement;
            let typo = String::from_utf8(chars).unwrap_or_default();
            prop_assert!(typo.parse::<NodeId>().is_err(), "typo {} parsed", typo);
        }

        #[test]
        fn every_neighbour_swap_is_rejected(
            bytes in proptest::array::uniform21(any::<u8>()),
            position in 0..DATA_CHARS - 1,
        ) {
            let id = NodeId::from_bytes(bytes);
            let mut chars: Vec<u8> = id.to_compact().into_bytes();
            prop_assume!(chars[position] != chars[position + 1]);
            chars.swap(position, position + 1);
            let swapped = String::from_utf8(chars).unwrap_or_default();
            prop_assert!(swapped.parse::<NodeId>().is_err(), "swap {} parsed", swapped);
        }

        #[test]
        fn arbitrary_strings_never_panic(s in ".{0,80}") {
            let _ = s.parse::<NodeId>();
            let _ = NodeId::from_key(&s);
        }

        #[test]
        fn keys_round_trip_and_use_only_id_safe_characters(bytes in proptest::array::uniform21(any::<u8>())) {
            let id = NodeId::from_bytes(bytes);
            let key = id.to_key();
            prop_assert!(key.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
            prop_assert_eq!(NodeId::from_key(&key), Some(id));
        }
    }
}
