//! The peer table: which nodes this node talks to, and in what role.
//!
//! Decisions are the admin's (Syncthing's model): an unknown node that connects
//! is recorded as a pending request and gets nothing; the admin approves it (or
//! adds a peer ahead of time from its contact string, or it joins through an
//! invite); a revoked peer is refused from then on. Every decision is written to
//! the store first and only then takes effect, so decisions survive restarts.
//!
//! Admission ([`super::admission`]) asks [`PeerTable::decide`] when a
//! connection is accepted, and the transport again before serving each stream,
//! so the answer is kept in memory (a lookup per stream must not cost a SQLite
//! query). Changes are broadcast as
//! [`PeerChange`]s: the transport closes a revoked peer's connection and dials a
//! newly added one, and the daemon closes the live connection of a peer whose
//! role changed, so that its next session serves what the new role may see.
//!
//! A decision that changes what a peer may see (a new role, a revocation) also
//! forgets, in the same store transaction, how far the peer acknowledged our
//! index: its next session then walks the whole index again, so publications
//! that did not change are checked against the new role too, and those it holds
//! and may no longer see are withdrawn (see `sync::session::serve`).
//!
//! What a revocation means for the copies a peer holds: it is cut off at once
//! (the transport closes its connection as soon as the decision is committed)
//! and nothing new reaches it, but what it was already sent it keeps, since
//! there is no session left to withdraw through and a node no longer trusted
//! cannot be made to delete anything; the disclosure log says what it holds.
//! If it is approved again, its first session checks the whole index and
//! withdraws what its new role may not see.
//!
//! Accepting an invite approves the inviter in the role its token states, once
//! its handshake claimed the same ([`PeerTable::expect_inviter`],
//! [`PeerTable::approve_inviter`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use labnet_config::Role;
use labnet_protocol::NodeId;
use tokio::sync::broadcast;

use super::invites::{check_inviter_claim, InviteRoleError};
use crate::store::{PeerRecord, PeerState, PendingPeer, StoreError, StoreHandle};

/// How many pending requests are kept. A flood of fresh keys evicts the oldest
/// requests instead of growing the store.
pub const PENDING_MAX: usize = 256;

/// How many peer changes may queue for a slow subscriber before it must resync.
const CHANGES_CAPACITY: usize = 1024;

/// What the node does with a connecting node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerDecision {
    /// Approved: serve it what this role may see.
    Approved(Role),
    /// Never decided: record a pending request, send nothing.
    Unknown,
    /// Revoked: refuse.
    Revoked,
}

/// Anything that answers "what did the admin decide about this node?": the
/// [`PeerTable`], or a plain map in tests of the pure decisions built on it.
pub trait PeerLookup {
    /// The decision for a node.
    fn decide(&self, node_id: NodeId) -> PeerDecision;
}

impl PeerLookup for PeerTable {
    fn decide(&self, node_id: NodeId) -> PeerDecision {
        PeerTable::decide(self, node_id)
    }
}

impl PeerLookup for HashMap<NodeId, PeerDecision> {
    fn decide(&self, node_id: NodeId) -> PeerDecision {
        self.get(&node_id).copied().unwrap_or(PeerDecision::Unknown)
    }
}

/// A change to the peer table, for the transport to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerChange {
    /// A peer was approved (or its role changed); dial it if an address is known.
    Approved {
        /// The peer.
        node_id: NodeId,
        /// Its role now.
        role: Role,
        /// Where to dial it, if known.
        address: Option<String>,
        /// The decision before this one: a live session of a peer that was
        /// approved in another role serves the old role's view, and must end.
        previous: PeerDecision,
    },
    /// A peer was revoked: close its connection now.
    Revoked {
        /// The peer.
        node_id: NodeId,
    },
}

/// Why the inviter of an invite being accepted was not approved.
#[derive(Debug, thiserror::Error)]
pub enum InviterError {
    /// No accept is under way for this node: a dial with a secret nobody
    /// asked for approves nothing.
    #[error("no invite from this node is being accepted")]
    NotExpected,
    /// Its handshake claims another role than its token states.
    #[error("{0}")]
    Role(#[from] InviteRoleError),
    /// The approval could not be stored.
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// An invite being accepted, between the admin's command and the inviter's
/// handshake.
#[derive(Debug, Clone, Copy)]
enum Accepting {
    /// The role the inviter's token states.
    Expecting(Role),
    /// The inviter's handshake did not match; what the admin is told.
    Refused(InviteRoleError),
}

/// The peer table: the store's decisions, cached for lookups, with change events.
#[derive(Clone, Debug)]
pub struct PeerTable {
    store: StoreHandle,
    decisions: Arc<RwLock<HashMap<NodeId, (PeerState, Role)>>>,
    changes: broadcast::Sender<PeerChange>,
    /// Invites being accepted, by inviter. An entry lives only while an
    /// admin's `invite accept` dials, so the admin bounds it.
    accepting: Arc<Mutex<HashMap<NodeId, Accepting>>>,
}

impl PeerTable {
    /// Loads every decision from the store.
    pub async fn load(store: StoreHandle) -> Result<PeerTable, StoreError> {
        let peers = store.call(|s| s.peers()).await?;
        let decisions = peers
            .into_iter()
            .map(|p| (p.node_id, (p.state, p.role)))
            .collect();
        let (changes, _) = broadcast::channel(CHANGES_CAPACITY);
        Ok(PeerTable {
            store,
            decisions: Arc::new(RwLock::new(decisions)),
            changes,
            accepting: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    /// The decision for a node, from memory.
    pub fn decide(&self, node_id: NodeId) -> PeerDecision {
        let decisions = self.decisions.read().unwrap_or_else(|p| p.into_inner());
        match decisions.get(&node_id) {
            Some((PeerState::Approved, role)) => PeerDecision::Approved(*role),
            Some((PeerState::Revoked, _)) => PeerDecision::Revoked,
            None => PeerDecision::Unknown,
        }
    }

    /// Subscribes to changes (approvals and revocations) from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<PeerChange> {
        self.changes.subscribe()
    }

    /// Approves a node with a role. `by` names the command or event, for the audit
    /// trail. Takes effect (and is broadcast) once the store has committed it.
    pub async fn approve(
        &self,
        node_id: NodeId,
        role: Role,
        name: Option<String>,
        address: Option<String>,
        by: &str,
    ) -> Result<PeerRecord, StoreError> {
        let by = by.to_string();
        let previous = self.decide(node_id);
        let record = self
            .store
            .call(move |s| s.approve_peer(node_id, role, name.as_deref(), address.as_deref(), &by))
            .await?;
        self.set(node_id, PeerState::Approved, role);
        match previous {
            PeerDecision::Approved(old) if old != role => {
                tracing::info!(peer = %node_id, from = %old, to = %role, "peer's role changed")
            }
            _ => tracing::info!(peer = %node_id, %role, "peer approved"),
        }
        let _ = self.changes.send(PeerChange::Approved {
            node_id,
            role,
            address: record.address.clone(),
            previous,
        });
        Ok(record)
    }

    /// Notes that the admin is accepting an invite from `inviter`, whose token
    /// states it is a `stated`. Call before dialing it with the secret, and
    /// [`PeerTable::finish_inviter`] after.
    pub fn expect_inviter(&self, inviter: NodeId, stated: Role) {
        self.accepting_map()
            .insert(inviter, Accepting::Expecting(stated));
    }

    /// The inviter let us in and its handshake claims `claimed`: approves it in
    /// the role its token stated when the two agree. Called by the dialer
    /// before the connection is served.
    pub async fn approve_inviter(
        &self,
        inviter: NodeId,
        claimed: Role,
        name: Option<String>,
        address: Option<String>,
    ) -> Result<PeerRecord, InviterError> {
        let expected = self.accepting_map().get(&inviter).copied();
        let stated = match expected {
            Some(Accepting::Expecting(stated)) => stated,
            Some(Accepting::Refused(e)) => return Err(e.into()),
            None => return Err(InviterError::NotExpected),
        };
        let role = match check_inviter_claim(stated, claimed) {
            Ok(role) => role,
            Err(e) => {
                tracing::warn!(peer = %inviter, %stated, %claimed, "inviter's handshake contradicts its invite; not approved");
                self.accepting_map().insert(inviter, Accepting::Refused(e));
                return Err(e.into());
            }
        };
        Ok(self
            .approve(inviter, role, name, address, "invite accept")
            .await?)
    }

    /// Ends the accept of an invite from `inviter`: why its handshake was
    /// refused, if it was.
    pub fn finish_inviter(&self, inviter: NodeId) -> Option<InviteRoleError> {
        match self.accepting_map().remove(&inviter) {
            Some(Accepting::Refused(e)) => Some(e),
            _ => None,
        }
    }

    fn accepting_map(&self) -> std::sync::MutexGuard<'_, HashMap<NodeId, Accepting>> {
        self.accepting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Revokes a node (approved or pending). Returns its record, or `None` if the
    /// node was neither.
    pub async fn revoke(
        &self,
        node_id: NodeId,
        by: &str,
    ) -> Result<Option<PeerRecord>, StoreError> {
        let by = by.to_string();
        let record = self
            .store
            .call(move |s| s.revoke_peer(node_id, &by))
            .await?;
        if let Some(r) = &record {
            self.set(node_id, PeerState::Revoked, r.role);
            tracing::info!(peer = %node_id, "peer revoked");
            let _ = self.changes.send(PeerChange::Revoked { node_id });
        }
        Ok(record)
    }

    /// Records a connection attempt from a node nobody approved (bounded list),
    /// with the role it claimed. A node decided about meanwhile is not recorded.
    pub async fn record_pending(
        &self,
        node_id: NodeId,
        name: String,
        address: String,
        claimed_role: Role,
    ) -> Result<(), StoreError> {
        let recorded = self
            .store
            .call(move |s| s.record_pending(node_id, &name, &address, claimed_role, PENDING_MAX))
            .await?;
        if recorded {
            tracing::info!(peer = %node_id, "connection from an unknown node recorded as pending");
        }
        Ok(())
    }

    /// Records that an approved peer completed a handshake, and where it came
    /// from when that is known: a peer that restarted on a new address is found
    /// there again.
    pub async fn seen(
        &self,
        node_id: NodeId,
        name: String,
        address: Option<String>,
    ) -> Result<(), StoreError> {
        self.store
            .call(move |s| s.peer_seen(node_id, &name, address.as_deref()))
            .await
    }

    /// Every peer decided about.
    pub async fn list(&self) -> Result<Vec<PeerRecord>, StoreError> {
        self.store.call(|s| s.peers()).await
    }

    /// The pending requests, newest first.
    pub async fn pending(&self) -> Result<Vec<PendingPeer>, StoreError> {
        self.store.call(|s| s.pending_peers()).await
    }

    /// The store behind the table (for invite redemption, which must approve in
    /// the same breath).
    pub fn store(&self) -> &StoreHandle {
        &self.store
    }

    /// Where to dial an approved peer, if known.
    pub async fn address_of(&self, node_id: NodeId) -> Option<String> {
        match self.store.call(move |s| s.peer(node_id)).await {
            Ok(Some(p)) if p.state == PeerState::Approved => p.address,
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read a peer's address");
                None
            }
        }
    }

    /// The approved peers with a known address: the ones to dial at start.
    pub async fn dialable(&self) -> Result<Vec<(NodeId, String)>, StoreError> {
        let peers = self.list().await?;
        Ok(peers
            .into_iter()
            .filter(|p| p.state == PeerState::Approved)
            .filter_map(|p| p.address.map(|a| (p.node_id, a)))
            .collect())
    }

    fn set(&self, node_id: NodeId, state: PeerState, role: Role) {
        let mut decisions = self.decisions.write().unwrap_or_else(|p| p.into_inner());
        decisions.insert(node_id, (state, role));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn node(n: u8) -> NodeId {
        NodeId::from_public_key(&[n; 32])
    }

    #[tokio::test]
    async fn decisions_are_cached_broadcast_and_survive_reload() {
        let tmp = tempfile::tempdir().unwrap();
        let store = StoreHandle::new(Store::open(tmp.path()).unwrap());
        let table = PeerTable::load(store.clone()).await.unwrap();
        let mut changes = table.subscribe();
        assert_eq!(table.decide(node(1)), PeerDecision::Unknown);
        table
            .record_pending(
                node(1),
                "Modena".into(),
                "127.0.0.1:9".into(),
                Role::Partner,
            )
            .await
            .unwrap();
        assert_eq!(
            table.decide(node(1)),
            PeerDecision::Unknown,
            "pending is not approved"
        );
        table
            .approve(node(1), Role::Subscriber, None, None, "peers approve")
            .await
            .unwrap();
        assert_eq!(
            table.decide(node(1)),
            PeerDecision::Approved(Role::Subscriber)
        );
        assert_eq!(
            changes.recv().await.unwrap(),
            PeerChange::Approved {
                node_id: node(1),
                role: Role::Subscriber,
                address: Some("127.0.0.1:9".into()),
                previous: PeerDecision::Unknown,
            }
        );
        table.revoke(node(1), "peers revoke").await.unwrap();
        assert_eq!(table.decide(node(1)), PeerDecision::Revoked);
        assert_eq!(
            changes.recv().await.unwrap(),
            PeerChange::Revoked { node_id: node(1) }
        );
        assert_eq!(table.revoke(node(2), "x").await.unwrap(), None);

        let reloaded = PeerTable::load(store).await.unwrap();
        assert_eq!(reloaded.decide(node(1)), PeerDecision::Revoked);
    }

    /// A decision that changes what a peer may see forgets how far it
    /// acknowledged our index (its next session checks everything) and says
    /// what the peer was before; approving it again as it was forgets nothing.
    #[tokio::test]
    async fn a_role_change_forgets_the_peers_ack_and_names_the_old_role() {
        let tmp = tempfile::tempdir().unwrap();
        let store = StoreHandle::new(Store::open(tmp.path()).unwrap());
        let table = PeerTable::load(store.clone()).await.unwrap();
        let set_ack = |store: StoreHandle| async move {
            store
                .call(|s| s.batch(|b| b.save_peer_ack(node(1), 1, 7)))
                .await
                .unwrap()
        };
        // Checks the seq of the peer's stored ack.
        let acked = |expected: Option<u64>, why: &'static str| {
            let store = store.clone();
            async move {
                let seq = store
                    .call(|s| s.peer_ack(node(1)).unwrap().map(|a| a.1))
                    .await;
                assert_eq!(seq, expected, "{why}");
            }
        };
        // What a session serving the peer as `role` persists at its end.
        let ack_as = |store: StoreHandle, role: Role, seq: u64| async move {
            store
                .call(move |s| s.batch(|b| b.save_peer_ack_as(node(1), role, 1, seq)))
                .await
                .unwrap()
        };
        let approve = |role: Role, by: &'static str| table.approve(node(1), role, None, None, by);
        // The (previous decision, new role) of the next change, if an approval.
        let approval = |change: PeerChange| match change {
            PeerChange::Approved { previous, role, .. } => Some((previous, role)),
            _ => None,
        };
        approve(Role::Partner, "peers add").await.unwrap();
        set_ack(store.clone()).await;
        let mut changes = table.subscribe();
        approve(Role::Partner, "peers approve").await.unwrap();
        acked(Some(7), "same role: nothing forgotten").await;
        assert_eq!(
            approval(changes.recv().await.unwrap()),
            Some((PeerDecision::Approved(Role::Partner), Role::Partner))
        );
        approve(Role::Subscriber, "peers approve").await.unwrap();
        acked(None, "downgraded: forgotten").await;
        // The session that served it as a partner acks once more, late: dropped.
        ack_as(store.clone(), Role::Partner, 9).await;
        acked(None, "a late ack of the old role is dropped").await;
        ack_as(store.clone(), Role::Subscriber, 3).await;
        acked(Some(3), "the new role's session acks").await;
        assert_eq!(
            approval(changes.recv().await.unwrap()),
            Some((PeerDecision::Approved(Role::Partner), Role::Subscriber))
        );
        set_ack(store.clone()).await;
        table.revoke(node(1), "peers revoke").await.unwrap();
        acked(None, "revoked: forgotten").await;
    }

    /// The joiner approves an inviter only in the role its token stated, and
    /// only when its handshake claims the same.
    #[tokio::test]
    async fn an_inviter_is_approved_only_as_its_token_and_handshake_agree() {
        let tmp = tempfile::tempdir().unwrap();
        let store = StoreHandle::new(Store::open(tmp.path()).unwrap());
        let table = PeerTable::load(store).await.unwrap();
        assert!(matches!(
            table
                .approve_inviter(node(1), Role::Partner, None, None)
                .await,
            Err(InviterError::NotExpected)
        ));
        table.expect_inviter(node(1), Role::Subscriber);
        assert!(matches!(
            table
                .approve_inviter(node(1), Role::Partner, None, None)
                .await,
            Err(InviterError::Role(InviteRoleError::ClaimMismatch { .. }))
        ));
        assert_eq!(table.decide(node(1)), PeerDecision::Unknown);
        assert!(table.finish_inviter(node(1)).is_some());

        table.expect_inviter(node(2), Role::Subscriber);
        let record = table
            .approve_inviter(node(2), Role::Subscriber, None, None)
            .await
            .unwrap();
        assert_eq!(record.role, Role::Subscriber);
        assert_eq!(table.finish_inviter(node(2)), None);
        assert_eq!(
            table.decide(node(2)),
            PeerDecision::Approved(Role::Subscriber)
        );
    }
}
