//! Peers: the nodes an admin decided about, and the ones waiting for a decision.
//!
//! Three tables, one story:
//!
//! - `pending_peers`: nodes that connected without being approved. The list is
//!   bounded ([`Store::record_pending`] evicts the one heard from longest ago),
//!   because anyone can mint a fresh key and knock.
//! - `peers`: one row per decided node, approved or revoked. A revoked peer
//!   keeps its row: the audit trail must say who was trusted when, and a
//!   refused node must stay refused instead of reappearing as pending.
//! - `peer_events`: the audit trail, one line per decision, with who made it.
//!
//! A decision ([`Store::approve_peer`], [`Store::revoke_peer`]) is one
//! transaction that writes the `peers` row, takes the node off the pending
//! list and appends the event, so the three tables never disagree. A decision
//! that changes what the peer may see (another role, a revocation) also drops
//! its `peer_acks` row in that transaction, so its next session is checked
//! against the whole index, not only what changed since its last ack.
//!
//! This file stores decisions; it does not make them. Who may connect, and in
//! which role, is decided outside the store, in `crate::trust`.

use labnet_config::Role;
use labnet_protocol::NodeId;
use rusqlite::params;

use super::db::{Db, FromRow};
use super::{unix_now, Store, StoreError};

/// Where a peer stands with this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PeerState {
    /// May connect and receive what its role allows.
    Approved,
    /// Refused; the row is kept for the audit trail.
    Revoked,
}

/// A peer an admin has decided about.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PeerRecord {
    /// The peer's identity.
    pub node_id: NodeId,
    /// The name it was approved under (what it said when the admin approved
    /// it, or in its first handshake after `peers add`). A later handshake
    /// never changes it: a peer cannot rename itself into another city.
    pub name: Option<String>,
    /// The name it gave in its latest handshake, if it differs from `name`
    /// (shown next to it, never instead of it).
    pub claimed_name: Option<String>,
    /// What it may receive.
    pub role: Role,
    /// Approved or revoked.
    pub state: PeerState,
    /// Where to dial it (`host:port`), if known.
    pub address: Option<String>,
    /// When the current state was decided (unix seconds).
    pub decided_at: i64,
    /// Which command or event decided it, for the audit trail.
    pub decided_by: String,
    /// When it last completed a handshake (unix seconds).
    pub last_seen: Option<i64>,
}

/// A node that connected without being approved.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PendingPeer {
    /// The node's identity, from its certificate.
    pub node_id: NodeId,
    /// The name it gave (unverified: shown to the admin as a hint).
    pub name: String,
    /// The address it came from.
    pub address: String,
    /// The role it claimed (`None` for requests recorded before roles were kept).
    pub claimed_role: Option<Role>,
    /// First attempt (unix seconds).
    pub first_seen: i64,
    /// Latest attempt (unix seconds).
    pub last_seen: i64,
    /// How many times it tried.
    pub attempts: i64,
}

impl super::Batch<'_> {
    /// Records how far `peer` acknowledged our index, if it is still approved
    /// as `role`, in the step's transaction. A session started before a
    /// decision about the peer (a new role, a revocation) may persist one last
    /// ack after the decision forgot the old one; checked here, under the
    /// writer, that ack is dropped and the peer's next session still walks
    /// the whole index.
    pub fn save_peer_ack_as(
        &mut self,
        peer: NodeId,
        role: Role,
        epoch: u64,
        seq: u64,
    ) -> Result<(), StoreError> {
        self.tx.execute(
            "INSERT INTO peer_acks (node_id, epoch, seq, at)
             SELECT ?1, ?2, ?3, ?4
             WHERE EXISTS (SELECT 1 FROM peers WHERE node_id = ?1 AND state = 'approved' AND role = ?5)
             ON CONFLICT(node_id) DO UPDATE SET epoch = excluded.epoch, seq = excluded.seq, at = excluded.at",
            params![peer.to_string(), epoch as i64, seq as i64, self.now, role.as_str()],
        )?;
        Ok(())
    }
}

/// Forgets how far a peer acknowledged our index: its next session walks the
/// whole index again, against what the peer may see now.
fn forget_ack(tx: Db<'_>, id: &str) -> Result<(), StoreError> {
    tx.execute("DELETE FROM peer_acks WHERE node_id = ?1", [id])?;
    Ok(())
}

impl Store {
    /// Approves a peer (new, pending or revoked) with a role, and removes it from
    /// the pending list. `by` records which command or event decided it.
    pub fn approve_peer(
        &mut self,
        node_id: NodeId,
        role: Role,
        name: Option<&str>,
        address: Option<&str>,
        by: &str,
    ) -> Result<PeerRecord, StoreError> {
        let now = unix_now();
        let id = node_id.to_string();
        self.write(|tx| {
            let before: Option<(String, String)> = tx.optional_row(
                "SELECT state, role FROM peers WHERE node_id = ?1",
                [&id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let same_view = before
                .as_ref()
                .is_some_and(|(state, old)| state == "approved" && old == role.as_str());
            if !same_view {
                forget_ack(tx, &id)?;
            }
            // What the node said when it knocked fills in what the admin left out.
            let pending = pending_request(tx, &id)?;
            let name = name
                .map(str::to_string)
                .or_else(|| pending.as_ref().map(|p| p.name.clone()));
            let address = address
                .map(str::to_string)
                .or_else(|| pending.as_ref().map(|p| p.address.clone()));
            tx.execute(
                "INSERT INTO peers (node_id, name, role, state, address, decided_at, decided_by)
                 VALUES (?1, ?2, ?3, 'approved', ?4, ?5, ?6)
                 ON CONFLICT(node_id) DO UPDATE SET
                    name = COALESCE(excluded.name, peers.name),
                    role = excluded.role, state = 'approved',
                    address = COALESCE(excluded.address, peers.address),
                    decided_at = excluded.decided_at, decided_by = excluded.decided_by",
                params![id, name, role.as_str(), address, now, by],
            )?;
            close_request(tx, &id, now, &format!("approved as {role}"), by)
        })?;
        self.peer(node_id)?
            .ok_or_else(|| self.db().corrupt("approved peer vanished"))
    }

    /// Revokes a peer, keeping its record. Returns the record, or `None` if the
    /// node was never approved (revoking a pending node also refuses it for good).
    pub fn revoke_peer(
        &mut self,
        node_id: NodeId,
        by: &str,
    ) -> Result<Option<PeerRecord>, StoreError> {
        let now = unix_now();
        let id = node_id.to_string();
        let decided = self.write(|tx| {
            let pending = pending_request(tx, &id)?;
            let updated = tx.execute(
                "UPDATE peers SET state = 'revoked', decided_at = ?2, decided_by = ?3 WHERE node_id = ?1",
                params![id, now, by],
            )?;
            if updated == 0 {
                let Some(PendingRequest { name, address, .. }) = pending else {
                    return Ok(false);
                };
                // A pending node can be refused outright; it is recorded as revoked so
                // its next attempt is refused instead of reappearing as pending.
                tx.execute(
                    "INSERT INTO peers (node_id, name, role, state, address, decided_at, decided_by)
                     VALUES (?1, ?2, 'partner', 'revoked', ?3, ?4, ?5)",
                    params![id, name, address, now, by],
                )?;
            }
            forget_ack(tx, &id)?;
            close_request(tx, &id, now, "revoked", by)?;
            Ok(true)
        })?;
        if !decided {
            return Ok(None);
        }
        self.peer(node_id)
    }

    /// The record of one peer.
    pub fn peer(&self, node_id: NodeId) -> Result<Option<PeerRecord>, StoreError> {
        self.db().record(
            "SELECT node_id, name, role, state, address, decided_at, decided_by, last_seen, claimed_name FROM peers WHERE node_id = ?1",
            [node_id.to_string()],
        )
    }

    /// Every peer decided about, approved first, then by name.
    pub fn peers(&self) -> Result<Vec<PeerRecord>, StoreError> {
        self.db().records(
            "SELECT node_id, name, role, state, address, decided_at, decided_by, last_seen, claimed_name FROM peers
             ORDER BY state, name, node_id",
            [],
        )
    }

    /// Records that an approved peer completed a handshake: its name and when.
    pub fn peer_seen(
        &mut self,
        node_id: NodeId,
        name: &str,
        address: Option<&str>,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE peers SET last_seen = ?2, name = COALESCE(name, ?3),
                    claimed_name = CASE WHEN COALESCE(name, ?3) = ?3 THEN NULL ELSE ?3 END,
                    address = COALESCE(?4, address)
                 WHERE node_id = ?1",
                params![node_id.to_string(), unix_now(), name, address],
            )
        })?;
        Ok(())
    }

    /// The audit trail of one peer: (when, event, by), oldest first.
    pub fn peer_events(&self, node_id: NodeId) -> Result<Vec<(i64, String, String)>, StoreError> {
        self.db().rows(
            "SELECT at, event, by FROM peer_events WHERE node_id = ?1 ORDER BY id",
            [node_id.to_string()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
    }

    /// Records a connection attempt from a node nobody approved.
    ///
    /// The list holds at most `bound` nodes: when a new node arrives at a full list,
    /// the one heard from longest ago is dropped, so a flood of fresh keys cannot
    /// grow the store without limit (the newest requests are the ones an admin is
    /// most likely waiting for). Returns whether the node is now on the list.
    pub fn record_pending(
        &mut self,
        node_id: NodeId,
        name: &str,
        address: &str,
        claimed_role: Role,
        bound: usize,
    ) -> Result<bool, StoreError> {
        if bound == 0 {
            return Ok(false);
        }
        let now = unix_now();
        let id = node_id.to_string();
        let role = claimed_role.as_str();
        self.write(|tx| {
            // A connection admitted as unknown can race with the admin's
            // decision: once a node is approved or revoked it is no request.
            let decided: i64 =
                tx.row("SELECT COUNT(*) FROM peers WHERE node_id = ?1", [&id], |r| {
                    r.get(0)
                })?;
            if decided > 0 {
                return Ok(false);
            }
            let updated = tx.execute(
                "UPDATE pending_peers SET name = ?2, address = ?3, last_seen = ?4, attempts = attempts + 1, role = ?5 WHERE node_id = ?1",
                params![id, name, address, now, role],
            )?;
            if updated > 0 {
                return Ok(true);
            }
            let count: i64 = tx.row("SELECT COUNT(*) FROM pending_peers", [], |r| r.get(0))?;
            let excess = count + 1 - bound as i64;
            if excess > 0 {
                tx.execute(
                    "DELETE FROM pending_peers WHERE node_id IN
                     (SELECT node_id FROM pending_peers ORDER BY last_seen, first_seen LIMIT ?1)",
                    [excess],
                )?;
            }
            tx.execute(
                "INSERT INTO pending_peers (node_id, name, address, first_seen, last_seen, attempts, role) VALUES (?1, ?2, ?3, ?4, ?4, 1, ?5)",
                params![id, name, address, now, role],
            )?;
            Ok(true)
        })
    }

    /// The pending requests, newest first.
    pub fn pending_peers(&self) -> Result<Vec<PendingPeer>, StoreError> {
        let db = self.db();
        type Row = (String, String, String, i64, i64, i64, Option<String>);
        let rows: Vec<Row> = db.rows(
            "SELECT node_id, name, address, first_seen, last_seen, attempts, role FROM pending_peers ORDER BY last_seen DESC, node_id",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)),
        )?;
        rows.into_iter()
            .map(
                |(id, name, address, first_seen, last_seen, attempts, role)| {
                    Ok(PendingPeer {
                        node_id: db.node_id(&id, format_args!("pending id {id}"))?,
                        name,
                        address,
                        claimed_role: role.map(|r| db.role(&r)).transpose()?,
                        first_seen,
                        last_seen,
                        attempts,
                    })
                },
            )
            .collect()
    }
}

/// What a node said when it knocked.
struct PendingRequest {
    name: String,
    address: String,
}

/// The name and address a node gave when it knocked, if it is on the pending list.
fn pending_request(tx: Db<'_>, id: &str) -> Result<Option<PendingRequest>, StoreError> {
    tx.optional_row(
        "SELECT name, address FROM pending_peers WHERE node_id = ?1",
        [id],
        |r| {
            Ok(PendingRequest {
                name: r.get(0)?,
                address: r.get(1)?,
            })
        },
    )
}

/// The end of every decision: the node leaves the pending list, and the
/// decision goes into the audit trail with who made it.
fn close_request(tx: Db<'_>, id: &str, now: i64, event: &str, by: &str) -> Result<(), StoreError> {
    tx.execute("DELETE FROM pending_peers WHERE node_id = ?1", [id])?;
    tx.execute(
        "INSERT INTO peer_events (node_id, at, event, by) VALUES (?1, ?2, ?3, ?4)",
        params![id, now, event, by],
    )?;
    Ok(())
}

/// A peers row as SQLite returns it, before its text columns are parsed.
pub(super) struct RawPeer {
    node_id: String,
    name: Option<String>,
    role: String,
    state: String,
    address: Option<String>,
    decided_at: i64,
    decided_by: String,
    last_seen: Option<i64>,
    claimed_name: Option<String>,
}

impl FromRow for PeerRecord {
    type Columns = RawPeer;

    fn columns(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawPeer> {
        Ok(RawPeer {
            node_id: r.get(0)?,
            name: r.get(1)?,
            role: r.get(2)?,
            state: r.get(3)?,
            address: r.get(4)?,
            decided_at: r.get(5)?,
            decided_by: r.get(6)?,
            last_seen: r.get(7)?,
            claimed_name: r.get(8)?,
        })
    }

    fn parse(db: Db<'_>, r: RawPeer) -> Result<PeerRecord, StoreError> {
        Ok(PeerRecord {
            node_id: db.node_id(&r.node_id, format_args!("peer id {}", r.node_id))?,
            name: r.name,
            claimed_name: r.claimed_name,
            role: db.role(&r.role)?,
            state: match r.state.as_str() {
                "approved" => PeerState::Approved,
                "revoked" => PeerState::Revoked,
                other => return Err(db.corrupt(format!("peer state {other}"))),
            },
            address: r.address,
            decided_at: r.decided_at,
            decided_by: r.decided_by,
            last_seen: r.last_seen,
        })
    }
}
