//! Admission: what to do with a node that completed TLS and said hello.
//!
//! By the time a connection reaches here, TLS has proven which key the other
//! node holds (its [`NodeId`]) and the handshake has read its [`Hello`]. What is
//! left is a decision, and it is a pure one: [`admit`] takes the peer table's
//! answer for that node, the request, and the pending-request budget, and
//! returns a [`Decision`] plus the [`Effect`]s the caller must carry out (a
//! pending row, a rate-limit hit, an approval by invite). The transport does
//! the I/O; nothing here touches a socket or the store, so every branch is a
//! unit test.
//!
//! ```text
//!  wrong version ─────────────────────────────▶ Refuse(VersionMismatch)
//!  approved ──────────────────────────────────▶ Admit(role)     + RecordSeen
//!  revoked ───────────────────────────────────▶ Refuse(Revoked)
//!  unknown, with an invite secret ────────────▶ RedeemInvite ─▶ after_invite(outcome)
//!                                                               ├─ Admit(role) + ApproveByInvite
//!                                                               └─ Refuse(Invite*)
//!  unknown, budget left for its address ──────▶ Refuse(NotApproved) + RecordPending
//!  unknown, no budget left ───────────────────▶ Refuse(RateLimited) + RateLimited
//! ```

use std::net::SocketAddr;
use std::time::Instant;

use labnet_config::Role;
use labnet_protocol::close::CloseCode;
use labnet_protocol::handshake::{Hello, PROTOCOL_VERSION};
use labnet_protocol::invite::hash_secret;
use labnet_protocol::NodeId;

use super::invites::{refusal_code, RedeemedInvite};
use super::peers::{PeerDecision, PeerLookup};
use super::rate_limit::RateLimiter;
use crate::store::InviteRefusal;

/// A node asking to be let in.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The node, as TLS proved it.
    pub node: NodeId,
    /// What it said first.
    pub hello: &'a Hello,
    /// Where it connected from.
    pub remote: SocketAddr,
    /// The time of the request, for the rate limiter.
    pub now: Instant,
}

/// What the transport does with the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Welcome it and hand the connection to sync, serving what this role may see.
    Admit(Role),
    /// Refuse with this code (sent in the handshake, then as the close code).
    Refuse(CloseCode),
    /// The node is unknown but presents an invite secret: redeem it (one store
    /// transaction), then decide with [`after_invite`].
    RedeemInvite {
        /// The secret's hash, which is all the store keeps of an invite.
        secret_hash: [u8; 32],
    },
}

/// A write the caller must carry out for the decision to hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Record a pending request for the admin (`labnet peers pending`).
    RecordPending {
        /// The node.
        node: NodeId,
        /// The name it claimed.
        name: String,
        /// Where it connected from.
        address: String,
        /// The role it claimed: what `peers approve` gives it by default.
        role: Role,
    },
    /// An address ran out of pending-request budget (for the log).
    RateLimited {
        /// Where the attempt came from.
        remote: SocketAddr,
    },
    /// An approved peer completed the handshake: its claimed name, and the
    /// address it came from (a node's one UDP socket both listens and dials,
    /// so that is where it can be dialed now, even after a restart on a new
    /// port).
    RecordSeen {
        /// The peer.
        node: NodeId,
        /// The name it claimed.
        name: String,
        /// Where it connected from.
        address: String,
    },
    /// The node redeemed an invite: approve it in the invite's role. Must be
    /// committed before the node is welcomed.
    ApproveByInvite {
        /// The node.
        node: NodeId,
        /// The invite's role.
        role: Role,
        /// The name it claimed.
        name: String,
        /// Where it connected from (where to dial it later).
        address: String,
        /// Which invite, for the audit trail.
        invite_id: String,
    },
}

/// A decision and the effects that go with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    /// What to do with the connection.
    pub decision: Decision,
    /// What to write, in order, before acting on the decision.
    pub effects: Vec<Effect>,
}

impl Admission {
    fn refuse(code: CloseCode) -> Admission {
        Admission {
            decision: Decision::Refuse(code),
            effects: Vec::new(),
        }
    }
}

/// Decides what to do with a node; see the module docs for the table.
pub fn admit(
    peers: &impl PeerLookup,
    pending_budget: &mut RateLimiter,
    request: &Request<'_>,
) -> Admission {
    let hello = request.hello;
    if hello.version != PROTOCOL_VERSION {
        return Admission::refuse(CloseCode::VersionMismatch);
    }
    match peers.decide(request.node) {
        PeerDecision::Approved(role) => Admission {
            decision: Decision::Admit(role),
            effects: vec![Effect::RecordSeen {
                node: request.node,
                name: hello.name.clone(),
                address: request.remote.to_string(),
            }],
        },
        PeerDecision::Revoked => Admission::refuse(CloseCode::Revoked),
        PeerDecision::Unknown => match &hello.invite_secret {
            Some(secret) => Admission {
                decision: Decision::RedeemInvite {
                    secret_hash: hash_secret(secret),
                },
                effects: Vec::new(),
            },
            None if pending_budget.allow(request.remote.ip(), request.now) => Admission {
                decision: Decision::Refuse(CloseCode::NotApproved),
                effects: vec![Effect::RecordPending {
                    node: request.node,
                    name: hello.name.clone(),
                    address: request.remote.to_string(),
                    role: super::config_role(hello.role),
                }],
            },
            None => Admission {
                decision: Decision::Refuse(CloseCode::RateLimited),
                effects: vec![Effect::RateLimited {
                    remote: request.remote,
                }],
            },
        },
    }
}

/// The decision once the store has looked the invite secret up.
pub fn after_invite(
    request: &Request<'_>,
    outcome: Result<RedeemedInvite, InviteRefusal>,
) -> Admission {
    match outcome {
        Ok(invite) => Admission {
            decision: Decision::Admit(invite.role),
            effects: vec![Effect::ApproveByInvite {
                node: request.node,
                role: invite.role,
                name: request.hello.name.clone(),
                address: request.remote.to_string(),
                invite_id: invite.invite_id,
            }],
        },
        Err(refusal) => Admission::refuse(refusal_code(refusal)),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use labnet_protocol::handshake::PeerRole;

    use super::*;

    fn node(n: u8) -> NodeId {
        NodeId::from_public_key(&[n; 32])
    }

    fn hello(secret: Option<[u8; 32]>) -> Hello {
        Hello {
            version: PROTOCOL_VERSION,
            name: "Modena".into(),
            role: PeerRole::Partner,
            invite_secret: secret,
        }
    }

    fn request(hello: &Hello) -> Request<'_> {
        Request {
            node: node(1),
            hello,
            remote: "127.0.0.1:9000".parse().unwrap(),
            now: Instant::now(),
        }
    }

    fn table(decision: Option<PeerDecision>) -> HashMap<NodeId, PeerDecision> {
        decision.into_iter().map(|d| (node(1), d)).collect()
    }

    fn budget() -> RateLimiter {
        RateLimiter::new(2, 0.0, 16)
    }

    #[test]
    fn an_approved_peer_is_admitted_in_its_approved_role_not_the_claimed_one() {
        let h = hello(None);
        let a = admit(
            &table(Some(PeerDecision::Approved(Role::Subscriber))),
            &mut budget(),
            &request(&h),
        );
        assert_eq!(a.decision, Decision::Admit(Role::Subscriber));
        assert_eq!(
            a.effects,
            vec![Effect::RecordSeen {
                node: node(1),
                name: "Modena".into(),
                address: "127.0.0.1:9000".into(),
            }]
        );
    }

    #[test]
    fn a_revoked_node_is_refused_even_with_an_invite_secret() {
        let h = hello(Some([7; 32]));
        let a = admit(
            &table(Some(PeerDecision::Revoked)),
            &mut budget(),
            &request(&h),
        );
        assert_eq!(a.decision, Decision::Refuse(CloseCode::Revoked));
        assert!(a.effects.is_empty(), "a revoked node leaves no trace");
    }

    #[test]
    fn a_node_of_another_protocol_version_is_told_to_upgrade_before_anything_is_written() {
        let mut h = hello(None);
        h.version = PROTOCOL_VERSION + 1;
        let a = admit(&table(None), &mut budget(), &request(&h));
        assert_eq!(a.decision, Decision::Refuse(CloseCode::VersionMismatch));
        assert!(a.effects.is_empty());
    }

    #[test]
    fn a_flood_from_one_unknown_address_records_its_budget_then_is_rate_limited() {
        let h = hello(None);
        let mut budget = budget();
        let peers = table(None);
        for _ in 0..2 {
            let a = admit(&peers, &mut budget, &request(&h));
            assert_eq!(a.decision, Decision::Refuse(CloseCode::NotApproved));
            assert!(matches!(
                a.effects[..],
                [Effect::RecordPending {
                    role: Role::Partner,
                    ..
                }]
            ));
        }
        let a = admit(&peers, &mut budget, &request(&h));
        assert_eq!(a.decision, Decision::Refuse(CloseCode::RateLimited));
        assert!(matches!(a.effects[..], [Effect::RateLimited { .. }]));
    }

    #[test]
    fn an_invite_is_redeemed_by_hash_and_approves_in_the_invites_role() {
        let secret = [7; 32];
        let h = hello(Some(secret));
        let req = request(&h);
        let a = admit(&table(None), &mut budget(), &req);
        assert_eq!(
            a.decision,
            Decision::RedeemInvite {
                secret_hash: hash_secret(&secret)
            }
        );
        let ok = after_invite(
            &req,
            Ok(RedeemedInvite {
                invite_id: "abc".into(),
                role: Role::Subscriber,
            }),
        );
        assert_eq!(ok.decision, Decision::Admit(Role::Subscriber));
        assert!(matches!(
            &ok.effects[..],
            [Effect::ApproveByInvite { role: Role::Subscriber, invite_id, .. }] if invite_id == "abc"
        ));
        for (refusal, code) in [
            (InviteRefusal::Unknown, CloseCode::InviteInvalid),
            (InviteRefusal::Expired, CloseCode::InviteExpired),
            (InviteRefusal::UsedUp, CloseCode::InviteUsedUp),
            (InviteRefusal::Revoked, CloseCode::InviteRevoked),
        ] {
            let a = after_invite(&req, Err(refusal));
            assert_eq!(a.decision, Decision::Refuse(code), "{refusal:?}");
            assert!(a.effects.is_empty());
        }
    }
}
