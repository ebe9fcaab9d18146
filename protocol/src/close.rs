//! The one registry of close codes: why a labnet connection was closed.
//!
//! Every number a node puts in QUIC's CONNECTION_CLOSE is defined here, so the
//! two families can never collide and an operator's log line can always be
//! turned back into words:
//!
//! | range | family | raised by |
//! |---|---|---|
//! | `0x00`–`0xff` | [`CloseCode`] | the transport and the handshake: who may connect |
//! | `0x5300`–`0x53ff` | [`ViolationCode`] | a sync session: a peer that broke the sync protocol |
//!
//! [`describe`] names any code of either family.

/// Why a connection was closed: the QUIC application error code and what the
/// other side's operator is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseCode {
    /// Normal close (shutdown, or nothing more to say).
    Normal,
    /// The node has not been approved by this node's admin.
    NotApproved,
    /// The node was approved once and has been revoked.
    Revoked,
    /// The two nodes speak different protocol versions.
    VersionMismatch,
    /// The handshake bytes were not understood.
    Malformed,
    /// A frame exceeded its limit.
    FrameTooLarge,
    /// The other side took too long.
    Timeout,
    /// The invite secret matches no invite of this node.
    InviteInvalid,
    /// The invite has expired.
    InviteExpired,
    /// The invite has no uses left.
    InviteUsedUp,
    /// The invite was revoked.
    InviteRevoked,
    /// A connection between the two nodes already exists and this one is dropped.
    DuplicateConnection,
    /// The node is shutting down.
    ShuttingDown,
    /// Too many attempts from this address.
    RateLimited,
    /// The wrong application protocol (ALPN) or no client certificate.
    WrongProtocol,
}

impl CloseCode {
    /// Every code, for tests and documentation.
    pub const ALL: [CloseCode; 15] = [
        CloseCode::Normal,
        CloseCode::NotApproved,
        CloseCode::Revoked,
        CloseCode::VersionMismatch,
        CloseCode::Malformed,
        CloseCode::FrameTooLarge,
        CloseCode::Timeout,
        CloseCode::InviteInvalid,
        CloseCode::InviteExpired,
        CloseCode::InviteUsedUp,
        CloseCode::InviteRevoked,
        CloseCode::DuplicateConnection,
        CloseCode::ShuttingDown,
        CloseCode::RateLimited,
        CloseCode::WrongProtocol,
    ];

    /// The numeric code sent in QUIC's CONNECTION_CLOSE.
    pub fn as_u32(self) -> u32 {
        match self {
            CloseCode::Normal => 0,
            CloseCode::NotApproved => 0x10,
            CloseCode::Revoked => 0x11,
            CloseCode::VersionMismatch => 0x12,
            CloseCode::Malformed => 0x13,
            CloseCode::FrameTooLarge => 0x14,
            CloseCode::Timeout => 0x15,
            CloseCode::InviteInvalid => 0x16,
            CloseCode::InviteExpired => 0x17,
            CloseCode::InviteUsedUp => 0x18,
            CloseCode::InviteRevoked => 0x19,
            CloseCode::DuplicateConnection => 0x1a,
            CloseCode::ShuttingDown => 0x1b,
            CloseCode::RateLimited => 0x1c,
            CloseCode::WrongProtocol => 0x1d,
        }
    }

    /// The code for a number, if it is one of ours.
    pub fn from_u32(n: u32) -> Option<CloseCode> {
        CloseCode::ALL.into_iter().find(|c| c.as_u32() == n)
    }

    /// What the operator on the other side is told.
    pub fn reason(self) -> &'static str {
        match self {
            CloseCode::Normal => "closed",
            CloseCode::NotApproved => "not approved: the other node's admin has to approve this node (labnet peers approve)",
            CloseCode::Revoked => "revoked: the other node's admin revoked this node",
            CloseCode::VersionMismatch => "protocol version mismatch: upgrade the older node",
            CloseCode::Malformed => "malformed handshake",
            CloseCode::FrameTooLarge => "frame too large",
            CloseCode::Timeout => "timed out",
            CloseCode::InviteInvalid => "invite refused: the inviter did not issue this invite (forged, or meant for another node)",
            CloseCode::InviteExpired => "invite refused: it has expired; ask for a new one",
            CloseCode::InviteUsedUp => "invite refused: it has already been used; ask for a new one",
            CloseCode::InviteRevoked => "invite refused: the inviter revoked it",
            CloseCode::DuplicateConnection => "duplicate connection: the nodes already have one",
            CloseCode::ShuttingDown => "the node is shutting down",
            CloseCode::RateLimited => "too many attempts from this address; try again later",
            CloseCode::WrongProtocol => "wrong application protocol",
        }
    }
}

/// Why a peer's session was closed. Each has a distinct close code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum ViolationCode {
    /// Bytes that are not a sync message, or exceed a limit.
    #[error("malformed message")]
    MalformedMessage,
    /// A `Resume` with a protocol version we do not speak.
    #[error("unsupported sync protocol version")]
    UnsupportedVersion,
    /// A message that makes no sense now (a second `Resume`, an ack of nothing).
    #[error("unexpected message")]
    UnexpectedMessage,
    /// The peer announced, retracted or synced a publication it is not the origin of.
    #[error("not the origin of the publication")]
    NotOrigin,
    /// A sync message carrying changes for a publication the peer does not originate.
    #[error("forged change")]
    ForgedChange,
    /// A sync message about a document the peer was never told about.
    #[error("unknown document")]
    UnknownDoc,
    /// An Automerge sync message that does not decode.
    #[error("malformed Automerge sync message")]
    MalformedSyncMessage,
    /// Changes from the origin that Automerge refuses to load.
    #[error("document does not load")]
    BadDocument,
    /// Inventory batches out of order, with a changed epoch, or beyond the window.
    #[error("inventory out of order")]
    InventoryOutOfOrder,
    /// A version statement or retraction confirmation that does not decode or
    /// whose signature does not verify against the key its id names.
    #[error("bad signed statement")]
    BadStatement,
    /// Delivered changes that do not give exactly the heads the statement signs.
    #[error("changes do not match the signed heads")]
    HeadsMismatch,
    /// A relay delivered a publication whose scope only its origin may deliver,
    /// or a subscriber tried to deliver anything.
    #[error("delivery outside the sender's scope")]
    ScopeViolation,
    /// A change chunk that is malformed, of the wrong type, or inflates past
    /// its cap (a chunk longer than its limit is refused by the message
    /// decoder first, as a [`ViolationCode::MalformedMessage`]).
    #[error("refused change chunk")]
    BadChunk,
    /// A message of the retired wire version 1 (Automerge sync messages):
    /// the peer must upgrade.
    #[error("retired message of sync version 1: upgrade the peer")]
    RetiredMessage,
    /// The peer left a request unanswered past the session's timeout.
    #[error("peer stalled")]
    Stalled,
}

impl ViolationCode {
    /// The QUIC application close code for this violation (0x5300 + n).
    pub fn as_u32(self) -> u32 {
        0x5300
            + match self {
                ViolationCode::MalformedMessage => 1,
                ViolationCode::UnsupportedVersion => 2,
                ViolationCode::UnexpectedMessage => 3,
                ViolationCode::NotOrigin => 4,
                ViolationCode::ForgedChange => 5,
                ViolationCode::UnknownDoc => 6,
                ViolationCode::MalformedSyncMessage => 7,
                ViolationCode::BadDocument => 8,
                ViolationCode::InventoryOutOfOrder => 9,
                ViolationCode::BadStatement => 10,
                ViolationCode::HeadsMismatch => 11,
                ViolationCode::ScopeViolation => 12,
                ViolationCode::BadChunk => 13,
                ViolationCode::RetiredMessage => 14,
                ViolationCode::Stalled => 15,
            }
    }
}

impl ViolationCode {
    /// Every violation, for tests and documentation.
    pub const ALL: [ViolationCode; 15] = [
        ViolationCode::MalformedMessage,
        ViolationCode::UnsupportedVersion,
        ViolationCode::UnexpectedMessage,
        ViolationCode::NotOrigin,
        ViolationCode::ForgedChange,
        ViolationCode::UnknownDoc,
        ViolationCode::MalformedSyncMessage,
        ViolationCode::BadDocument,
        ViolationCode::InventoryOutOfOrder,
        ViolationCode::BadStatement,
        ViolationCode::HeadsMismatch,
        ViolationCode::ScopeViolation,
        ViolationCode::BadChunk,
        ViolationCode::RetiredMessage,
        ViolationCode::Stalled,
    ];

    /// The violation for a number, if it is one.
    pub fn from_u32(n: u32) -> Option<ViolationCode> {
        ViolationCode::ALL.into_iter().find(|c| c.as_u32() == n)
    }
}

/// What a close code means, in words, whichever family it belongs to.
pub fn describe(code: u32) -> Option<String> {
    if let Some(c) = CloseCode::from_u32(code) {
        return Some(c.reason().to_string());
    }
    ViolationCode::from_u32(code).map(|v| format!("sync protocol violation: {v}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_of_both_families_are_distinct_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for c in CloseCode::ALL {
            assert!(seen.insert(c.as_u32()), "{c:?} reuses a code");
            assert_eq!(CloseCode::from_u32(c.as_u32()), Some(c));
        }
        for v in ViolationCode::ALL {
            assert!(seen.insert(v.as_u32()), "{v:?} reuses a code");
            assert_eq!(ViolationCode::from_u32(v.as_u32()), Some(v));
            assert!(describe(v.as_u32()).is_some_and(|d| d.contains("violation")));
        }
        assert_eq!(describe(0x4242), None);
    }
}
