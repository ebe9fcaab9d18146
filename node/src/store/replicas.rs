//! Replicas of other nodes' publications, and how far each side of a sync got.
//!
//! Four tables, two sides of federated sync:
//!
//! - Replica side. `replicas` records who published each replica we hold (the
//!   document itself is a `replica` document, see `documents.rs`);
//!   `resume_points` records how far we got in each origin's publication
//!   index (epoch, seq), so the next session asks only for what came after.
//! - Origin side. `peer_acks` records how far each peer acknowledged our
//!   index, and when; `retraction_acks` records which peers confirmed they
//!   deleted a publication we retracted.
//!
//! Reads are methods of [`Store`]; writes are methods of [`Batch`], because
//! they happen only as part of a sync step, in the step's one transaction.
//!
//! Two rules protect our own data from what peers send: a replica never
//! overwrites one of our private documents or publications, and changes for
//! a replica are accepted only from the origin it is held from.

use automerge::ChangeHash;
use labnet_protocol::NodeId;
use rusqlite::params;

use super::batch::Batch;
use super::codec::encode_heads;
use super::documents::append_chunk;
use super::{Store, StoreError};

impl Store {
    /// Who published a replica we hold, and its heads.
    pub fn replica_entry(
        &self,
        doc_id: &str,
    ) -> Result<Option<(NodeId, Vec<ChangeHash>)>, StoreError> {
        let db = self.db();
        let row: Option<(String, Vec<u8>)> = db.optional_row(
            "SELECT r.origin, d.heads FROM replicas r JOIN documents d ON d.doc_id = r.doc_id WHERE r.doc_id = ?1",
            [doc_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        row.map(|(origin, heads)| {
            let origin = db.node_id(&origin, format_args!("replica {doc_id} origin"))?;
            let heads = db.heads(&heads, format_args!("replica {doc_id} heads"))?;
            Ok((origin, heads))
        })
        .transpose()
    }

    /// The replicas we hold of one origin's publications.
    pub fn replicas_of(&self, origin: NodeId) -> Result<Vec<String>, StoreError> {
        self.db().rows(
            "SELECT doc_id FROM replicas WHERE origin = ?1 ORDER BY doc_id",
            [origin.to_string()],
            |r| r.get(0),
        )
    }

    /// How many replicas of `origin`'s publications we hold, and their
    /// stored bytes (snapshots plus appended chunks): what a sync session
    /// checks the per-origin replica quota against. One indexed lookup of
    /// the origin's rows, which the quota itself bounds.
    pub fn replica_usage(&self, origin: NodeId) -> Result<(usize, u64), StoreError> {
        self.db().optional_row(
            "SELECT COUNT(*), COALESCE(SUM(length(d.snapshot)
                 + COALESCE((SELECT SUM(length(c.chunk)) FROM document_changes c WHERE c.doc_id = d.doc_id), 0)), 0)
             FROM replicas r JOIN documents d ON d.doc_id = r.doc_id WHERE r.origin = ?1",
            [origin.to_string()],
            |r| Ok((r.get::<_, i64>(0)?.max(0) as usize, r.get::<_, i64>(1)?.max(0) as u64)),
        )
        .map(|row| row.unwrap_or((0, 0)))
    }

    /// Every replica we hold, with its origin.
    pub fn replicas(&self) -> Result<Vec<(String, NodeId)>, StoreError> {
        let db = self.db();
        let rows: Vec<(String, String)> = db.rows(
            "SELECT doc_id, origin FROM replicas ORDER BY doc_id",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        rows.into_iter()
            .map(|(doc_id, origin)| {
                let origin = db.node_id(&origin, format_args!("replica {doc_id} origin"))?;
                Ok((doc_id, origin))
            })
            .collect()
    }

    /// How far we got in `origin`'s index: (epoch, seq).
    pub fn resume_point(&self, origin: NodeId) -> Result<Option<(u64, u64)>, StoreError> {
        self.db().optional_row(
            "SELECT epoch, seq FROM resume_points WHERE origin = ?1",
            [origin.to_string()],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
        )
    }

    /// How far `peer` acknowledged our index: (epoch, seq, when).
    pub fn peer_ack(&self, peer: NodeId) -> Result<Option<(u64, u64, i64)>, StoreError> {
        self.db().optional_row(
            "SELECT epoch, seq, at FROM peer_acks WHERE node_id = ?1",
            [peer.to_string()],
            |r| {
                Ok((
                    r.get::<_, i64>(0)? as u64,
                    r.get::<_, i64>(1)? as u64,
                    r.get(2)?,
                ))
            },
        )
    }

    /// The peers that confirmed they deleted a retracted publication.
    pub fn retraction_acks(&self, doc_id: &str) -> Result<Vec<NodeId>, StoreError> {
        self.db().node_ids(
            "SELECT node_id FROM retraction_acks WHERE doc_id = ?1 ORDER BY node_id",
            [doc_id],
            |id| format!("retraction ack {id}"),
        )
    }
}

impl Batch<'_> {
    /// Stores a replica from a full `save()`, replacing any copy we had.
    pub fn save_replica_snapshot(
        &mut self,
        doc_id: &str,
        origin: NodeId,
        heads: &[ChangeHash],
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        self.check_not_ours(doc_id)?;
        // The snapshot holds everything: chunks of an older copy would be
        // replayed on top of it at load.
        self.tx
            .execute("DELETE FROM document_changes WHERE doc_id = ?1", [doc_id])?;
        self.tx.execute(
            "INSERT INTO documents (doc_id, kind, snapshot, heads, created_at, updated_at) VALUES (?1, 'replica', ?2, ?3, ?4, ?4)
             ON CONFLICT(doc_id) DO UPDATE SET snapshot = excluded.snapshot, heads = excluded.heads, updated_at = excluded.updated_at",
            params![doc_id, bytes, encode_heads(heads), self.now],
        )?;
        self.tx.execute(
            "INSERT INTO replicas (doc_id, origin) VALUES (?1, ?2) ON CONFLICT(doc_id) DO UPDATE SET origin = excluded.origin",
            params![doc_id, origin.to_string()],
        )?;
        Ok(())
    }

    /// Appends changes to a replica we hold.
    pub fn append_replica_changes(
        &mut self,
        doc_id: &str,
        origin: NodeId,
        heads: &[ChangeHash],
        chunk: &[u8],
    ) -> Result<(), StoreError> {
        self.check_held_from(doc_id, origin)?;
        let last: Option<i64> = self.tx.row(
            "SELECT MAX(seq) FROM document_changes WHERE doc_id = ?1",
            [doc_id],
            |r| r.get(0),
        )?;
        append_chunk(self.tx, doc_id, last, chunk, &encode_heads(heads), self.now)
    }

    /// Changes for a replica are accepted only from the origin it is held
    /// from, and never over one of our own documents.
    fn check_held_from(&self, doc_id: &str, origin: NodeId) -> Result<(), StoreError> {
        self.check_not_ours(doc_id)?;
        let held_from: Option<String> = self.tx.optional_row(
            "SELECT origin FROM replicas WHERE doc_id = ?1",
            [doc_id],
            |r| r.get(0),
        )?;
        if held_from.as_deref() != Some(origin.to_string().as_str()) {
            return Err(self.tx.corrupt(format!(
                "changes for replica {doc_id}, which is not held from that origin"
            )));
        }
        Ok(())
    }

    /// A replica must never overwrite one of our own documents.
    fn check_not_ours(&self, doc_id: &str) -> Result<(), StoreError> {
        let kind: Option<String> = self.tx.optional_row(
            "SELECT kind FROM documents WHERE doc_id = ?1",
            [doc_id],
            |r| r.get(0),
        )?;
        match kind.as_deref() {
            None | Some("replica") => Ok(()),
            Some(other) => Err(self.tx.corrupt(format!(
                "refusing to store a replica over our own {other} document {doc_id}"
            ))),
        }
    }

    /// Deletes our copy of a replica's document (its statement stays: see
    /// `statements.rs`).
    pub fn delete_replica(&mut self, doc_id: &str) -> Result<(), StoreError> {
        self.tx.execute(
            "DELETE FROM documents WHERE doc_id = ?1 AND kind = 'replica'",
            [doc_id],
        )?;
        Ok(())
    }

    /// Records how far we got in `origin`'s index.
    pub fn save_resume_point(
        &mut self,
        origin: NodeId,
        epoch: u64,
        seq: u64,
    ) -> Result<(), StoreError> {
        self.tx.execute(
            "INSERT INTO resume_points (origin, epoch, seq) VALUES (?1, ?2, ?3)
             ON CONFLICT(origin) DO UPDATE SET epoch = excluded.epoch, seq = excluded.seq",
            params![origin.to_string(), epoch as i64, seq as i64],
        )?;
        Ok(())
    }

    /// Records how far `peer` acknowledged our index.
    pub fn save_peer_ack(&mut self, peer: NodeId, epoch: u64, seq: u64) -> Result<(), StoreError> {
        self.tx.execute(
            "INSERT INTO peer_acks (node_id, epoch, seq, at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(node_id) DO UPDATE SET epoch = excluded.epoch, seq = excluded.seq, at = excluded.at",
            params![peer.to_string(), epoch as i64, seq as i64, self.now],
        )?;
        Ok(())
    }

    /// Records that `peer` confirmed it deleted a retracted publication.
    pub fn save_retraction_ack(&mut self, doc_id: &str, peer: NodeId) -> Result<(), StoreError> {
        self.tx.execute(
            "INSERT INTO retraction_acks (doc_id, node_id, at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            params![doc_id, peer.to_string(), self.now],
        )?;
        Ok(())
    }
}
