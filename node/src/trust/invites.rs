//! Invites: what redeeming an invite secret means.
//!
//! An invite is a one-line token an admin hands to another city (or a
//! subscriber): the inviter's NodeId and addresses, a role, an expiry and a
//! one-time secret. The store keeps only the secret's hash, its role, its
//! expiry and its remaining uses; redeeming looks the hash up and takes one use
//! in a single transaction, so two nodes racing for the last use cannot both
//! get in. This module says what the outcome means for admission: the role the
//! bearer is approved in, or the close code that tells it why not.

use labnet_config::Role;
use labnet_protocol::close::CloseCode;

use crate::store::InviteRefusal;

/// An invite whose secret matched and that had a use left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedeemedInvite {
    /// Which invite, for the audit trail.
    pub invite_id: String,
    /// The role it grants.
    pub role: Role,
}

/// The close code that tells the bearer why its invite was refused.
pub fn refusal_code(refusal: InviteRefusal) -> CloseCode {
    match refusal {
        InviteRefusal::Unknown => CloseCode::InviteInvalid,
        InviteRefusal::Expired => CloseCode::InviteExpired,
        InviteRefusal::UsedUp => CloseCode::InviteUsedUp,
        InviteRefusal::Revoked => CloseCode::InviteRevoked,
    }
}
