//! `peers ...`: who this node talks to. Listing approved, revoked and pending
//! nodes, approving one, adding one from its contact string, revoking one.
//!
//! The decisions go through the [`PeerTable`](crate::trust::PeerTable), which
//! also closes a revoked peer's connection when the daemon runs. Node ids come
//! as the admin typed them and are parsed here, so a typo gets the parser's
//! explanation; this node's own id is refused.

use labnet_config::Role;
use labnet_protocol::{Contact, NodeId};

use super::{Control, ControlError};
use crate::api::{PeerListEntry, PendingEntry};
use crate::store::{PeerRecord, PeerState, PendingPeer};

impl Control {
    /// Approved and revoked peers, with live connection state when known.
    pub async fn peers_list(&self) -> Result<Vec<PeerListEntry>, ControlError> {
        Ok(self
            .peers
            .list()
            .await?
            .into_iter()
            .map(|r| self.entry(r))
            .collect())
    }

    /// Pending requests, newest first.
    pub async fn peers_pending(&self) -> Result<Vec<PendingEntry>, ControlError> {
        Ok(self
            .peers
            .pending()
            .await?
            .into_iter()
            .map(PendingEntry::from)
            .collect())
    }

    /// Approves a node (normally a pending one) as `role`; when absent, as the
    /// role it claimed when it connected (partner if it never connected). An
    /// explicit role that differs from the claimed one is approved as asked,
    /// with a notice: a city that claims "subscriber" may be a typo, or not.
    pub async fn peers_approve(
        &self,
        node_id: &str,
        role: Option<Role>,
    ) -> Result<PeerListEntry, ControlError> {
        let node_id = self.parse_peer(node_id)?;
        let claimed = self
            .peers
            .pending()
            .await?
            .into_iter()
            .find(|p| p.node_id == node_id)
            .and_then(|p| p.claimed_role);
        let notice = match (role, claimed) {
            (Some(asked), Some(claimed)) if asked != claimed => Some(format!(
                "the node claimed to be a {claimed}, and is approved as a {asked} as asked"
            )),
            _ => None,
        };
        let role = role.or(claimed).unwrap_or(Role::Partner);
        let record = self
            .peers
            .approve(node_id, role, None, None, "peers approve")
            .await?;
        let mut entry = self.entry(record);
        entry.notice = notice;
        Ok(entry)
    }

    /// Approves a node ahead of time from its contact string; the daemon dials it.
    pub async fn peers_add(
        &self,
        contact: &str,
        role: Option<Role>,
    ) -> Result<PeerListEntry, ControlError> {
        let contact: Contact = contact
            .parse()
            .map_err(|e| ControlError::BadInput(format!("{e}")))?;
        self.refuse_self(contact.node_id)?;
        let record = self
            .peers
            .approve(
                contact.node_id,
                role.unwrap_or(Role::Partner),
                None,
                Some(contact.address),
                "peers add",
            )
            .await?;
        Ok(self.entry(record))
    }

    /// Revokes a peer, or refuses a pending node: refused from now on.
    pub async fn peers_revoke(&self, node_id: &str) -> Result<PeerListEntry, ControlError> {
        let node_id = self.parse_peer(node_id)?;
        match self.peers.revoke(node_id, "peers revoke").await? {
            Some(record) => Ok(self.entry(record)),
            None => Err(ControlError::BadInput(format!(
                "{node_id} is neither a peer nor pending: nothing to revoke (see `labnet peers list` and `labnet peers pending`)"
            ))),
        }
    }

    /// A NodeId as the admin typed it, and not ours.
    fn parse_peer(&self, typed: &str) -> Result<NodeId, ControlError> {
        let node_id: NodeId = typed
            .parse()
            .map_err(|e| ControlError::BadInput(format!("'{typed}': {e}")))?;
        self.refuse_self(node_id)?;
        Ok(node_id)
    }

    fn refuse_self(&self, node_id: NodeId) -> Result<(), ControlError> {
        if node_id == self.node_id {
            return Err(ControlError::BadInput(
                "that is this node's own NodeId".into(),
            ));
        }
        Ok(())
    }

    /// A peer row as the API shows it, with the live connection state when the
    /// daemon runs (`None` otherwise: a stopped node cannot know).
    fn entry(&self, r: PeerRecord) -> PeerListEntry {
        PeerListEntry {
            node_id: r.node_id.to_string(),
            name: r.name,
            claimed_name: r.claimed_name,
            role: r.role,
            state: match r.state {
                PeerState::Approved => "approved".into(),
                PeerState::Revoked => "revoked".into(),
            },
            address: r.address,
            connected: self.live.as_ref().map(|l| l.is_connected(r.node_id)),
            last_seen: r.last_seen,
            decided_at: r.decided_at,
            decided_by: r.decided_by,
            notice: None,
        }
    }
}

impl From<PendingPeer> for PendingEntry {
    fn from(p: PendingPeer) -> PendingEntry {
        PendingEntry {
            node_id: p.node_id.to_string(),
            name: p.name,
            address: p.address,
            claimed_role: p.claimed_role,
            first_seen: p.first_seen,
            last_seen: p.last_seen,
            attempts: p.attempts,
        }
    }
}
