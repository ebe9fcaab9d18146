//! Invite tokens: one line an admin pastes into an e-mail to let another node in.
//!
//! ```text
//! labnet-invite:2:<Crockford base32 of the payload>
//!
//! payload = total length   u16   (so a cut-off token is told from a damaged one)
//!           inviter        21 bytes (NodeId)
//!           secret         32 bytes (random, one-time; the inviter keeps only its hash)
//!           role           u8    (1 partner, 2 subscriber: what the joiner becomes)
//!           inviter role   u8    (1 partner, 2 subscriber: what the inviter is, and so
//!                                 what the joiner records it as)
//!           expires        u64   (unix seconds)
//!           addresses      u8 count, then each: u8 length + UTF-8 `host:port`
//!           checksum       4 bytes: SHA-256 of everything before, truncated
//! ```
//!
//! The checksum is not security: the secret is. It tells "this token was damaged
//! in transit" apart from "the inviter does not know this secret", so each gets
//! its own message. Parsing is strict and bounded, and never panics.
//!
//! Version 1 tokens did not say what the inviter is, and the joiner took every
//! inviter for a partner city: a subscriber's invite handed it partner data.
//! They are refused ([`InviteError::OlderVersion`]) rather than read with a
//! guessed role.

use sha2::{Digest, Sha256};

use crate::contact::validate_address;
use crate::handshake::{PeerRole, INVITE_SECRET_LEN};
use crate::node_id::{NodeId, NODE_ID_LEN};

/// What every token starts with.
pub const INVITE_PREFIX: &str = "labnet-invite:";

/// The token format version this code writes and reads. Version 2 added the
/// inviter's role; older tokens are refused, never read with a guessed role.
pub const INVITE_VERSION: u32 = 2;

/// The most addresses a token carries.
pub const INVITE_ADDRESSES_MAX: usize = 8;

/// The longest address in a token, in bytes.
pub const INVITE_ADDRESS_LEN_MAX: usize = 255;

const CHECKSUM_LEN: usize = 4;

/// An invitation to join a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    /// The inviting node: the joiner pins this key.
    pub inviter: NodeId,
    /// Where to dial it.
    pub addresses: Vec<String>,
    /// The one-time secret presented in the handshake.
    pub secret: [u8; INVITE_SECRET_LEN],
    /// What the joiner becomes on the inviter's side.
    pub role: PeerRole,
    /// What the inviter is (its own configured role): what the joiner records
    /// it as, and what its handshake must claim.
    pub inviter_role: PeerRole,
    /// When the invite stops working (unix seconds).
    pub expires_at: u64,
}

/// Why a token is not a valid invite.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InviteError {
    /// Not an invite at all.
    #[error("not a labnet invite: a token starts with {INVITE_PREFIX}")]
    NotAnInvite,
    /// Written by a newer labnet.
    #[error("invite format version {0} is not known to this labnet: upgrade labnet")]
    UnknownVersion(String),
    /// Written by an older labnet, whose tokens do not say what the inviter is.
    #[error("invite from an older labnet; ask for a new one (the token is format {0}, this labnet reads format {INVITE_VERSION}, which says what the inviter is)")]
    OlderVersion(u32),
    /// Shorter than it says it is: cut off when copied.
    #[error("the invite token is truncated: copy the whole line")]
    Truncated,
    /// The checksum does not match: characters were changed.
    #[error("the invite token is damaged or was altered: ask for a new one")]
    Tampered,
    /// Structurally wrong.
    #[error("the invite token is malformed: {0}")]
    Malformed(String),
}

/// SHA-256 of a secret: what the inviter stores instead of the secret.
pub fn hash_secret(secret: &[u8; INVITE_SECRET_LEN]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"labnet-invite-secret-v1");
    h.update(secret);
    h.finalize().into()
}

impl Invite {
    /// The one-line token.
    pub fn to_token(&self) -> String {
        let mut body = Vec::new();
        body.extend_from_slice(self.inviter.as_bytes());
        body.extend_from_slice(&self.secret);
        body.push(role_byte(self.role));
        body.push(role_byte(self.inviter_role));
        body.extend_from_slice(&self.expires_at.to_be_bytes());
        let addresses: Vec<&String> = self.addresses.iter().take(INVITE_ADDRESSES_MAX).collect();
        body.push(addresses.len() as u8);
        for a in addresses {
            let bytes = &a.as_bytes()[..a.len().min(INVITE_ADDRESS_LEN_MAX)];
            body.push(bytes.len() as u8);
            body.extend_from_slice(bytes);
        }
        let total = 2 + body.len() + CHECKSUM_LEN;
        let mut payload = Vec::with_capacity(total);
        payload.extend_from_slice(&(total as u16).to_be_bytes());
        payload.extend_from_slice(&body);
        let sum = checksum(&payload);
        payload.extend_from_slice(&sum);
        format!(
            "{INVITE_PREFIX}{INVITE_VERSION}:{}",
            base32::encode(base32::Alphabet::Crockford, &payload)
        )
    }

    /// Reads a token, as pasted (surrounding whitespace is ignored).
    pub fn parse(token: &str) -> Result<Invite, InviteError> {
        let token = token.trim();
        let rest = crate::contact::strip_prefix_ignore_case(token, INVITE_PREFIX)
            .ok_or(InviteError::NotAnInvite)?;
        let (version, encoded) = rest.split_once(':').ok_or(InviteError::Truncated)?;
        match version.parse::<u32>() {
            Ok(INVITE_VERSION) => {}
            Ok(older) if older < INVITE_VERSION => return Err(InviteError::OlderVersion(older)),
            _ => {
                return Err(InviteError::UnknownVersion(
                    version.chars().take(8).collect(),
                ))
            }
        }
        if encoded.len() > 2048 {
            return Err(InviteError::Malformed("the token is far too long".into()));
        }
        if !encoded.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(InviteError::Malformed(
                "the token contains characters that are not part of an invite".into(),
            ));
        }
        // A token cut mid-character decodes to fewer bytes; both end as Truncated.
        let payload = base32::decode(base32::Alphabet::Crockford, &encoded.to_ascii_uppercase())
            .ok_or(InviteError::Truncated)?;
        if payload.len() < 2 {
            return Err(InviteError::Truncated);
        }
        let total = u16::from_be_bytes([payload[0], payload[1]]) as usize;
        if payload.len() < total {
            return Err(InviteError::Truncated);
        }
        if payload.len() > total || total < 2 + CHECKSUM_LEN {
            return Err(InviteError::Tampered);
        }
        let (signed, sum) = payload.split_at(total - CHECKSUM_LEN);
        if checksum(signed) != sum {
            return Err(InviteError::Tampered);
        }
        decode_body(&signed[2..])
    }
}

fn role_byte(role: PeerRole) -> u8 {
    match role {
        PeerRole::Partner => 1,
        PeerRole::Subscriber => 2,
    }
}

fn role_of(byte: u8) -> Option<PeerRole> {
    match byte {
        1 => Some(PeerRole::Partner),
        2 => Some(PeerRole::Subscriber),
        _ => None,
    }
}

fn checksum(bytes: &[u8]) -> [u8; CHECKSUM_LEN] {
    let digest = Sha256::digest(bytes);
    [digest[0], digest[1], digest[2], digest[3]]
}

fn decode_body(mut b: &[u8]) -> Result<Invite, InviteError> {
    let malformed = |what: &str| InviteError::Malformed(what.to_string());
    let mut take = |n: usize| -> Result<&[u8], InviteError> {
        if b.len() < n {
            return Err(malformed("fields are missing"));
        }
        let (head, tail) = b.split_at(n);
        b = tail;
        Ok(head)
    };
    let mut id = [0u8; NODE_ID_LEN];
    id.copy_from_slice(take(NODE_ID_LEN)?);
    let mut secret = [0u8; INVITE_SECRET_LEN];
    secret.copy_from_slice(take(INVITE_SECRET_LEN)?);
    let role = role_of(take(1)?[0]).ok_or_else(|| malformed("unknown role"))?;
    let inviter_role = role_of(take(1)?[0]).ok_or_else(|| malformed("unknown inviter role"))?;
    let mut expires = [0u8; 8];
    expires.copy_from_slice(take(8)?);
    let count = take(1)?[0] as usize;
    if count > INVITE_ADDRESSES_MAX {
        return Err(malformed("too many addresses"));
    }
    let mut addresses = Vec::with_capacity(count);
    for _ in 0..count {
        let len = take(1)?[0] as usize;
        let address =
            std::str::from_utf8(take(len)?).map_err(|_| malformed("an address is not text"))?;
        validate_address(address).map_err(|e| InviteError::Malformed(format!("address: {e}")))?;
        addresses.push(address.to_string());
    }
    if !take(0)?.is_empty() {
        return Err(malformed("trailing bytes"));
    }
    if !b.is_empty() {
        return Err(malformed("trailing bytes"));
    }
    Ok(Invite {
        inviter: NodeId::from_bytes(id),
        addresses,
        secret,
        role,
        inviter_role,
        expires_at: u64::from_be_bytes(expires),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn invite() -> Invite {
        Invite {
            inviter: NodeId::from_public_key(&[5; 32]),
            addresses: vec!["127.0.0.1:7447".into(), "modena.example.org:7447".into()],
            secret: [42; 32],
            role: PeerRole::Subscriber,
            inviter_role: PeerRole::Partner,
            expires_at: 1_900_000_000,
        }
    }

    #[test]
    fn round_trip_and_case_and_whitespace() {
        let token = invite().to_token();
        assert!(token.starts_with("labnet-invite:2:"));
        assert!(!token.contains(char::is_whitespace));
        assert_eq!(Invite::parse(&token), Ok(invite()));
        assert_eq!(
            Invite::parse(&format!("  {}\n", token.to_lowercase())),
            Ok(invite())
        );
    }

    #[test]
    fn each_kind_of_bad_token_has_its_own_error() {
        let token = invite().to_token();
        assert_eq!(Invite::parse("hello"), Err(InviteError::NotAnInvite));
        assert!(matches!(
            Invite::parse(&token.replace("invite:2:", "invite:9:")),
            Err(InviteError::UnknownVersion(_))
        ));
        for cut in [token.len() - 1, token.len() - 7, token.len() / 2, 20] {
            assert_eq!(
                Invite::parse(&token[..cut]),
                Err(InviteError::Truncated),
                "cut at {cut}"
            );
        }
        // Change one character in the middle.
        let mut altered: Vec<char> = token.chars().collect();
        let i = altered.len() - 30;
        altered[i] = if altered[i] == 'A' { 'B' } else { 'A' };
        let altered: String = altered.into_iter().collect();
        assert_eq!(Invite::parse(&altered), Err(InviteError::Tampered));
        assert!(matches!(
            Invite::parse(&format!("{token}!")),
            Err(InviteError::Malformed(_))
        ));
    }

    /// The inviter's role survives the round trip: a subscriber's invite says
    /// so, and the joiner cannot mistake it for a city's.
    #[test]
    fn the_inviters_role_round_trips() {
        for (role, inviter_role) in [
            (PeerRole::Partner, PeerRole::Partner),
            (PeerRole::Subscriber, PeerRole::Partner),
            (PeerRole::Subscriber, PeerRole::Subscriber),
        ] {
            let sent = Invite {
                role,
                inviter_role,
                ..invite()
            };
            let read = Invite::parse(&sent.to_token()).unwrap();
            assert_eq!((read.role, read.inviter_role), (role, inviter_role));
        }
    }

    /// A version 1 token (no inviter role) is refused with its own message,
    /// never read as if the inviter were a partner.
    #[test]
    fn a_version_1_token_is_refused_as_older_not_defaulted_to_partner() {
        // A version 1 token exactly as labnet wrote it before the inviter's
        // role was added: same layout minus that byte.
        let inv = invite();
        let mut body = Vec::new();
        body.extend_from_slice(inv.inviter.as_bytes());
        body.extend_from_slice(&inv.secret);
        body.push(1);
        body.extend_from_slice(&inv.expires_at.to_be_bytes());
        body.push(0);
        let total = 2 + body.len() + CHECKSUM_LEN;
        let mut payload = (total as u16).to_be_bytes().to_vec();
        payload.extend_from_slice(&body);
        let sum = checksum(&payload);
        payload.extend_from_slice(&sum);
        let v1 = format!(
            "{INVITE_PREFIX}1:{}",
            base32::encode(base32::Alphabet::Crockford, &payload)
        );
        let err = Invite::parse(&v1).unwrap_err();
        assert_eq!(err, InviteError::OlderVersion(1));
        assert!(
            err.to_string()
                .starts_with("invite from an older labnet; ask for a new one"),
            "{err}"
        );
    }

    #[test]
    fn secrets_hash_differently() {
        assert_ne!(hash_secret(&[1; 32]), hash_secret(&[2; 32]));
        assert_eq!(hash_secret(&[1; 32]), hash_secret(&[1; 32]));
    }

    proptest! {
        #[test]
        fn arbitrary_strings_never_panic(s in ".{0,200}") {
            let _ = Invite::parse(&s);
            let _ = Invite::parse(&format!("labnet-invite:2:{s}"));
        }

        /// Changing a character to another symbol of the alphabet (not one of
        /// Crockford's aliases, O for 0 and so on, which mean the same) is caught.
        #[test]
        fn any_single_character_change_is_caught(pos in 16usize..120, c in "[0-9A-HJKMNP-TV-Z]") {
            let token = invite().to_token();
            prop_assume!(pos < token.len());
            let mut chars: Vec<char> = token.chars().collect();
            let replacement = c.chars().next().unwrap_or('0');
            prop_assume!(chars[pos].to_ascii_uppercase() != replacement);
            chars[pos] = replacement;
            let changed: String = chars.into_iter().collect();
            prop_assert!(Invite::parse(&changed).is_err());
        }
    }
}
