//! Invites: who may invite whom, what a redeemed secret means, and what the
//! joiner records the inviter as.
//!
//! An invite is a one-line token an admin hands to another city (or a
//! subscriber): the inviter's NodeId and addresses, the role the joiner
//! becomes, the inviter's own role, an expiry and a one-time secret. The store
//! keeps only the secret's hash, its role, its expiry and its remaining uses;
//! redeeming looks the hash up and takes one use in a single transaction, so
//! two nodes racing for the last use cannot both get in.
//!
//! Both sides of an invite are decided here:
//!
//! ```text
//!  inviter creates ──▶ may_create(own role, joiner's role)   a subscriber cannot
//!                                                            make partners
//!  joiner accepts ───▶ inviter_role_on_accept(token)         the inviter is recorded
//!                                                            in the role it states
//!  joiner dials ─────▶ check_inviter_claim(token, Welcome)   its handshake must say
//!                                                            the same, or no approval
//!  inviter admits ───▶ refusal_code(redeem outcome)          why a secret was refused
//! ```
//!
//! The inviter's role is the inviter's own statement, in the token and again in
//! its handshake: what the checks catch is an honest mismatch (a token from
//! before a node changed role, a token meant for another network) and a
//! subscriber's invite taken for a city's. The accepting admin is shown the
//! role, and can lower it with `labnet peers approve --role subscriber`.

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

/// Why an invite may not be made or taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InviteRoleError {
    /// A subscriber node asked to make an invite that would make the joiner
    /// a partner.
    #[error(
        "this node is a subscriber: it can only invite subscribers (use --role subscriber); partner invites are made by partner cities"
    )]
    SubscriberCannotMakePartners,
    /// A token says a subscriber made the joiner a partner: no labnet writes
    /// that, so it was altered or forged.
    #[error(
        "the invite says a subscriber makes this node a partner, which labnet never issues: ask for a new invite"
    )]
    SubscriberGrantsPartner,
    /// The inviter's handshake claims another role than its token states.
    #[error(
        "the inviter says it is a {claimed}, but its invite says it is a {stated}: nothing was approved; ask the inviter for a new invite"
    )]
    ClaimMismatch {
        /// The role the token states.
        stated: Role,
        /// The role the inviter's handshake claims.
        claimed: Role,
    },
}

/// Whether a node whose own role is `own` may make an invite whose joiner
/// becomes `joiner`. Only a partner makes partners: a subscriber (an
/// international network, read-only) that made one would tell a city to
/// treat it as an equal.
pub fn may_create(own: Role, joiner: Role) -> Result<(), InviteRoleError> {
    match (own, joiner) {
        (Role::Subscriber, Role::Partner) => Err(InviteRoleError::SubscriberCannotMakePartners),
        _ => Ok(()),
    }
}

/// The role the joiner records the inviter as: the one the token states (a
/// subscriber inviter is recorded as a subscriber and receives public
/// publications only). A token that no labnet would issue is refused.
pub fn inviter_role_on_accept(stated: Role, joiner: Role) -> Result<Role, InviteRoleError> {
    may_create(stated, joiner).map_err(|_| InviteRoleError::SubscriberGrantsPartner)?;
    Ok(stated)
}

/// Checks what the inviter's handshake claims against what its token stated,
/// before the joiner approves it. A mismatch approves nothing.
pub fn check_inviter_claim(stated: Role, claimed: Role) -> Result<Role, InviteRoleError> {
    if stated == claimed {
        Ok(stated)
    } else {
        Err(InviteRoleError::ClaimMismatch { stated, claimed })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_partner_makes_partner_invites() {
        assert_eq!(may_create(Role::Partner, Role::Partner), Ok(()));
        assert_eq!(may_create(Role::Partner, Role::Subscriber), Ok(()));
        assert_eq!(may_create(Role::Subscriber, Role::Subscriber), Ok(()));
        assert_eq!(
            may_create(Role::Subscriber, Role::Partner),
            Err(InviteRoleError::SubscriberCannotMakePartners)
        );
    }

    /// The bug of issue 13: accepting a subscriber's invite made it a partner.
    #[test]
    fn a_subscriber_inviter_is_recorded_as_a_subscriber_not_a_partner() {
        assert_eq!(
            inviter_role_on_accept(Role::Subscriber, Role::Subscriber),
            Ok(Role::Subscriber)
        );
        assert_eq!(
            inviter_role_on_accept(Role::Partner, Role::Subscriber),
            Ok(Role::Partner)
        );
        assert_eq!(
            inviter_role_on_accept(Role::Subscriber, Role::Partner),
            Err(InviteRoleError::SubscriberGrantsPartner),
            "a forged token cannot have a subscriber make partners"
        );
    }

    /// An inviter whose handshake says "partner" while its token said
    /// "subscriber" (or the reverse) is not approved at all.
    #[test]
    fn an_inviter_claiming_another_role_than_its_token_is_refused() {
        assert_eq!(
            check_inviter_claim(Role::Subscriber, Role::Subscriber),
            Ok(Role::Subscriber)
        );
        let err = check_inviter_claim(Role::Subscriber, Role::Partner).unwrap_err();
        assert_eq!(
            err,
            InviteRoleError::ClaimMismatch {
                stated: Role::Subscriber,
                claimed: Role::Partner
            }
        );
        assert!(err.to_string().contains("nothing was approved"), "{err}");
        assert!(check_inviter_claim(Role::Partner, Role::Subscriber).is_err());
    }
}
