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

impl Scope {
    /// The scope as stored and as typed on the command line: `partners`,
    /// `public`, or NodeIds separated by commas (stored as `nodes:ID,ID`).
    pub fn to_text(&self) -> String {
        match self {
            Scope::Partners => "partners".into(),
            Scope::Public => "public".into(),
            Scope::Nodes(ids) => {
                let ids: Vec<String> = ids.iter().map(|n| n.to_compact()).collect();
                format!("nodes:{}", ids.join(","))
            }
        }
    }

    /// Reads a scope written by [`Scope::to_text`], or typed by an admin
    /// (`partners`, `public`, or one or more NodeIds separated by commas).
    pub fn parse(text: &str) -> Result<Scope, String> {
        let text = text.trim();
        match text.to_ascii_lowercase().as_str() {
            "partners" => return Ok(Scope::Partners),
            "public" => return Ok(Scope::Public),
            "" => {
                return Err(
                    "empty scope: use partners, public, or NodeIds separated by commas".into(),
                )
            }
            _ => {}
        }
        let list = text.strip_prefix("nodes:").unwrap_or(text);
        let mut ids = Vec::new();
        for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let id: NodeId = part
                .parse()
                .map_err(|e| format!("'{part}' is neither partners, public nor a NodeId: {e}"))?;
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        if ids.is_empty() {
            return Err("no NodeId in the scope".into());
        }
        ids.sort();
        Ok(Scope::Nodes(ids))
    }
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
    #[test]
    fn scope_text_round_trips_and_refuses_junk() {
        use super::Scope;
        let a = labnet_protocol::NodeId::from_public_key(&[1; 32]);
        let b = labnet_protocol::NodeId::from_public_key(&[2; 32]);
        for scope in [
            Scope::Partners,
            Scope::Public,
            Scope::Nodes(vec![a.min(b), a.max(b)]),
        ] {
            assert_eq!(Scope::parse(&scope.to_text()), Ok(scope));
        }
        assert_eq!(
            Scope::parse(&format!("{b}, {a},{a}")),
            Ok(Scope::Nodes(vec![a.min(b), a.max(b)]))
        );
        assert_eq!(Scope::parse("PUBLIC"), Ok(Scope::Public));
        assert!(Scope::parse("everyone").is_err());
        assert!(Scope::parse("").is_err());
        assert!(Scope::parse("nodes:").is_err());
    }

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
            let cases = [
                (me, Role::Partner, partner_me),
                (other, Role::Partner, partner_other),
                (me, Role::Subscriber, sub_me),
                (other, Role::Subscriber, sub_other),
            ];
            for (peer, role, expected) in cases {
                assert_eq!(
                    visible_to(&scope, peer, role),
                    expected,
                    "{scope:?} to {role:?}"
                );
            }
        }
    }
}
