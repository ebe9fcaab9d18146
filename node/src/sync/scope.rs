//! Who may see a publication: its scope, decided on the sending side.
//!
//! The origin checks [`visible_to`] for every publication before it puts the
//! publication's id in an inventory, before it answers a sync message about it,
//! and again whenever the publication's scope changes. A peer outside the scope
//! never learns the publication exists, not even its id.
//!
//! | scope \ peer role | partner | subscriber |
//! |---|---|---|
//! | `Public` | yes | yes |
//! | `Partners` | yes | no |
//! | `Nodes(ids)` | if named | no |
//!
//! A subscriber is read-only and receives public publications only, even if a
//! publication names it: naming a subscriber in `Nodes` is a mistake the share
//! policy should catch, and failing closed here is the safe answer.

use labnet_config::Role;
use labnet_protocol::NodeId;

/// The audience of a publication.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Every partner city, no subscriber.
    Partners,
    /// Every approved peer, subscribers included.
    Public,
    /// Only these partner cities.
    Nodes(Vec<NodeId>),
}

/// Whether a peer with this id and role may learn of a publication with this
/// scope. Pure, so it can be tested exhaustively and reasoned about alone.
pub fn visible_to(scope: &Scope, peer: NodeId, peer_role: Role) -> bool {
    match (scope, peer_role) {
        (Scope::Public, _) => true,
        (Scope::Partners, Role::Partner) => true,
        (Scope::Partners, Role::Subscriber) => false,
        (Scope::Nodes(ids), Role::Partner) => ids.contains(&peer),
        (Scope::Nodes(_), Role::Subscriber) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(n: u8) -> NodeId {
        NodeId::from_public_key(&[n; 32])
    }

    /// Every scope shape against every role, named and unnamed.
    #[test]
    fn visibility_table_is_exhaustive() {
        let me = node(1);
        let other = node(2);
        let scopes = [
            (Scope::Public, true, true, true, true),
            (Scope::Partners, true, true, false, false),
            (Scope::Nodes(vec![]), false, false, false, false),
            (Scope::Nodes(vec![me]), true, false, false, false),
            (Scope::Nodes(vec![other]), false, true, false, false),
            (Scope::Nodes(vec![me, other]), true, true, false, false),
        ];
        for (scope, partner_me, partner_other, sub_me, sub_other) in scopes {
            assert_eq!(
                visible_to(&scope, me, Role::Partner),
                partner_me,
                "{scope:?}"
            );
            assert_eq!(
                visible_to(&scope, other, Role::Partner),
                partner_other,
                "{scope:?}"
            );
            assert_eq!(
                visible_to(&scope, me, Role::Subscriber),
                sub_me,
                "{scope:?}"
            );
            assert_eq!(
                visible_to(&scope, other, Role::Subscriber),
                sub_other,
                "{scope:?}"
            );
        }
    }
}
