//! Trust: every decision about who may do what.
//!
//! Nothing else in the node decides whether a node may connect, in which role,
//! or what it may see. The transport asks [`admission`] when a node knocks, the
//! sync session asks [`scope`] before it names a publication, and the admin
//! operations change the [`peers`] table. Keeping the decisions here, as plain
//! functions over plain data, is what lets them be read, tested and audited in
//! one place:
//!
//! ```text
//!  a node knocks ──▶ admission::admit(peer table, request) ──▶ decision + effects
//!                                   │                               (transport carries them out)
//!                                   ├─ peers: approved / revoked / unknown (Syncthing's model)
//!                                   ├─ rate_limit: pending requests per address
//!                                   └─ invites: a secret that approves its bearer
//!  a publication leaves ──▶ scope::visible_to(scope, peer, role)
//! ```
//!
//! Map:
//! - [`peers`]: the peer table (the admin's decisions, cached, with change events).
//! - [`admission`]: what to do with a node that completed TLS and said hello.
//! - [`invites`]: what a redeemed invite secret means.
//! - [`rate_limit`]: the per-address budget for pending requests.
//! - [`scope`]: a publication's audience and [`visible_to`].

pub mod admission;
pub mod invites;
pub mod peers;
pub mod rate_limit;
pub mod scope;

use labnet_config::Role;
use labnet_protocol::handshake::PeerRole;

pub use peers::{PeerChange, PeerDecision, PeerLookup, PeerTable, PENDING_MAX};
pub use scope::{visible_to, Scope};

// The wire must carry every name the config accepts: a character takes at most
// four bytes of UTF-8. protocol and config depend on neither of the others, so
// the two limits meet here.
const _: () = assert!(
    labnet_protocol::handshake::NAME_BYTES_MAX == labnet_config::NAME_CHARS_MAX * 4,
    "the wire's name limit must hold the config's longest name"
);

/// The role a node claims on the wire for a role of the config. The one place
/// the two meet: `protocol` and `config` know nothing of each other.
pub fn wire_role(role: Role) -> PeerRole {
    match role {
        Role::Partner => PeerRole::Partner,
        Role::Subscriber => PeerRole::Subscriber,
    }
}

/// The config's role for a role claimed on the wire.
pub fn config_role(role: PeerRole) -> Role {
    match role {
        PeerRole::Partner => Role::Partner,
        PeerRole::Subscriber => Role::Subscriber,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_between_config_and_wire() {
        for role in [Role::Partner, Role::Subscriber] {
            assert_eq!(config_role(wire_role(role)), role);
        }
        assert_eq!(wire_role(Role::Subscriber), PeerRole::Subscriber);
    }
}
