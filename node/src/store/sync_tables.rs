//! The store's side of federated sync: our publication index, the replicas we
//! hold, resume points, acknowledgements, and batches of sync effects.
//!
//! The index is plain rows (ids, sequence numbers, scopes, heads), never loaded
//! Automerge documents: a reconnect reads "what changed after seq N" with one
//! indexed query however many publications the node holds.

use automerge::{AutoCommit, ChangeHash};
use labnet_protocol::NodeId;
use rusqlite::{params, OptionalExtension, Transaction, TransactionBehavior};

use super::{
    decode_heads, encode_heads, save_in, unix_now, DocumentKind, NewDisclosure, Store, StoreError,
};

/// One row of our publication index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexRow {
    /// The publication document.
    pub doc_id: String,
    /// Local update sequence number of its latest change.
    pub seq: u64,
    /// Its scope, as written by the sharing code (`partners`, `public`, `nodes:...`).
    pub scope: String,
    /// Its heads.
    pub heads: Vec<ChangeHash>,
    /// Retracted (a tombstone).
    pub retracted: bool,
}

/// What changed when a publication was saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublicationSave {
    /// New in the index, with this sequence number.
    Created(u64),
    /// Content or scope changed; it took this sequence number.
    Updated(u64),
    /// Nothing changed: same heads, same scope, not retracted.
    Unchanged,
}

impl Store {
    fn sqlite(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |source| StoreError::Sqlite {
            path: self.path.clone(),
            source: Box::new(source),
        }
    }

    fn corrupt(&self, what: String) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            what,
        }
    }

    /// The epoch of our index numbering.
    pub fn index_epoch(&self) -> Result<u64, StoreError> {
        let epoch: i64 = self
            .conn
            .query_row("SELECT epoch FROM index_meta WHERE id = 1", [], |r| {
                r.get(0)
            })
            .map_err(self.sqlite())?;
        Ok(epoch as u64)
    }

    /// Up to `limit` index rows with `seq > after_seq`, in ascending order.
    pub fn publications_after(
        &self,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<IndexRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT p.doc_id, p.seq, p.scope, d.heads, p.retracted FROM publication_index p
                 JOIN documents d ON d.doc_id = p.doc_id WHERE p.seq > ?1 ORDER BY p.seq LIMIT ?2",
            )
            .map_err(self.sqlite())?;
        let rows = stmt
            .query_map(params![after_seq as i64, limit as i64], raw_index_row)
            .map_err(self.sqlite())?;
        let raw: Vec<RawIndexRow> = rows.collect::<Result<_, _>>().map_err(self.sqlite())?;
        raw.into_iter().map(|r| self.index_row(r)).collect()
    }

    /// The index row of one of our publications.
    pub fn publication_row(&self, doc_id: &str) -> Result<Option<IndexRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT p.doc_id, p.seq, p.scope, d.heads, p.retracted FROM publication_index p
                 JOIN documents d ON d.doc_id = p.doc_id WHERE p.doc_id = ?1",
            )
            .map_err(self.sqlite())?;
        let raw = stmt
            .query_row([doc_id], raw_index_row)
            .optional()
            .map_err(self.sqlite())?;
        raw.map(|r| self.index_row(r)).transpose()
    }

    /// Every row of our index (for status and tests), in sequence order.
    pub fn publication_rows(&self) -> Result<Vec<IndexRow>, StoreError> {
        self.publications_after(0, usize::MAX >> 1)
    }

    fn index_row(&self, r: RawIndexRow) -> Result<IndexRow, StoreError> {
        let heads = decode_heads(&r.heads)
            .ok_or_else(|| self.corrupt(format!("publication {} has malformed heads", r.doc_id)))?;
        Ok(IndexRow {
            doc_id: r.doc_id,
            seq: r.seq as u64,
            scope: r.scope,
            heads,
            retracted: r.retracted != 0,
        })
    }

    /// Saves one of our publications and, when its content or scope changed, gives
    /// it the next index sequence number, all in one transaction.
    ///
    /// Raw publication writes exist for tests and benchmarks only (feature
    /// `test-support`): in a normal build the only way into the publication
    /// index is [`Store::save_publication_logged`], which only `share` calls with
    /// a document it built from an anonymized projection.
    #[cfg(any(test, feature = "test-support"))]
    pub fn save_publication(
        &mut self,
        doc_id: &str,
        doc: &mut AutoCommit,
        scope: &str,
    ) -> Result<PublicationSave, StoreError> {
        let mut outcomes = self.save_publications(&mut [(doc_id, doc, scope)])?;
        outcomes
            .pop()
            .ok_or_else(|| self.corrupt("no outcome for a saved publication".into()))
    }

    /// Saves several publications in one transaction: all or none. Tests and
    /// benchmarks only, as [`Store::save_publication`].
    #[cfg(any(test, feature = "test-support"))]
    pub fn save_publications(
        &mut self,
        docs: &mut [(&str, &mut AutoCommit, &str)],
    ) -> Result<Vec<PublicationSave>, StoreError> {
        let path = self.path.clone();
        let err = |source: rusqlite::Error| StoreError::Sqlite {
            path: path.clone(),
            source: Box::new(source),
        };
        let now = unix_now();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let mut outcomes = Vec::with_capacity(docs.len());
        for (doc_id, doc, scope) in docs.iter_mut() {
            outcomes.push(save_publication_in(&tx, &path, doc_id, doc, scope, now)?);
        }
        tx.commit().map_err(err)?;
        Ok(outcomes)
    }

    /// Saves one of our publications and, in the same transaction, the
    /// disclosure-log line that records it: `decide` is told what the save did
    /// and whether the publication was retracted before, and names the action to
    /// log (`share`, `update`), or none. Either both are on disk or neither.
    pub(crate) fn save_publication_logged(
        &mut self,
        doc_id: &str,
        doc: &mut AutoCommit,
        scope: &str,
        settings: &str,
        decide: impl FnOnce(PublicationSave, bool) -> Option<&'static str>,
    ) -> Result<(PublicationSave, Option<&'static str>), StoreError> {
        let path = self.path.clone();
        let err = |source: rusqlite::Error| StoreError::Sqlite {
            path: path.clone(),
            source: Box::new(source),
        };
        let now = unix_now();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let was_retracted = tx
            .query_row(
                "SELECT retracted FROM publication_index WHERE doc_id = ?1",
                [doc_id],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .map_err(err)?
            == Some(1);
        let saved = save_publication_in(&tx, &path, doc_id, doc, scope, now)?;
        let action = decide(saved, was_retracted);
        if let Some(action) = action {
            let heads: Vec<String> = doc.get_heads().iter().map(ToString::to_string).collect();
            let entry = NewDisclosure {
                action,
                doc_id,
                heads: &heads.join(","),
                node_id: None,
                scope,
                settings,
            };
            super::insert_disclosure(&tx, &entry, now).map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok((saved, action))
    }

    /// Marks one of our publications retracted, with the next sequence number, so
    /// every peer that had it learns. Returns the new seq, or `None` if it was not
    /// published (or already retracted).
    pub fn retract_publication(&mut self, doc_id: &str) -> Result<Option<u64>, StoreError> {
        let path = self.path.clone();
        let err = |source: rusqlite::Error| StoreError::Sqlite {
            path: path.clone(),
            source: Box::new(source),
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let retracted: Option<i64> = tx
            .query_row(
                "SELECT retracted FROM publication_index WHERE doc_id = ?1",
                [doc_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(err)?;
        if retracted != Some(0) {
            return Ok(None);
        }
        let seq = next_seq(&tx, &path)?;
        tx.execute(
            "UPDATE publication_index SET seq = ?2, retracted = 1, updated_at = ?3 WHERE doc_id = ?1",
            params![doc_id, seq as i64, unix_now()],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(Some(seq))
    }

    /// Who published a replica we hold, and its heads.
    pub fn replica_entry(
        &self,
        doc_id: &str,
    ) -> Result<Option<(NodeId, Vec<ChangeHash>)>, StoreError> {
        let row: Option<(String, Vec<u8>)> = self
            .conn
            .query_row(
                "SELECT r.origin, d.heads FROM replicas r JOIN documents d ON d.doc_id = r.doc_id WHERE r.doc_id = ?1",
                [doc_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(self.sqlite())?;
        row.map(|(origin, heads)| {
            let origin = origin
                .parse()
                .map_err(|e| self.corrupt(format!("replica {doc_id} origin: {e}")))?;
            let heads = decode_heads(&heads)
                .ok_or_else(|| self.corrupt(format!("replica {doc_id} heads")))?;
            Ok((origin, heads))
        })
        .transpose()
    }

    /// The replicas we hold of one origin's publications.
    pub fn replicas_of(&self, origin: NodeId) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT doc_id FROM replicas WHERE origin = ?1 ORDER BY doc_id")
            .map_err(self.sqlite())?;
        let rows = stmt
            .query_map([origin.to_string()], |r| r.get(0))
            .map_err(self.sqlite())?;
        rows.collect::<Result<_, _>>().map_err(self.sqlite())
    }

    /// Every replica we hold, with its origin.
    pub fn replicas(&self) -> Result<Vec<(String, NodeId)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT doc_id, origin FROM replicas ORDER BY doc_id")
            .map_err(self.sqlite())?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(self.sqlite())?;
        let mut out = Vec::new();
        for row in rows {
            let (doc_id, origin) = row.map_err(self.sqlite())?;
            let origin = origin
                .parse()
                .map_err(|e| self.corrupt(format!("replica {doc_id} origin: {e}")))?;
            out.push((doc_id, origin));
        }
        Ok(out)
    }

    /// How far we got in `origin`'s index: (epoch, seq).
    pub fn resume_point(&self, origin: NodeId) -> Result<Option<(u64, u64)>, StoreError> {
        self.conn
            .query_row(
                "SELECT epoch, seq FROM resume_points WHERE origin = ?1",
                [origin.to_string()],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
            )
            .optional()
            .map_err(self.sqlite())
    }

    /// How far `peer` acknowledged our index: (epoch, seq, when).
    pub fn peer_ack(&self, peer: NodeId) -> Result<Option<(u64, u64, i64)>, StoreError> {
        self.conn
            .query_row(
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
            .optional()
            .map_err(self.sqlite())
    }

    /// The peers that confirmed they deleted a retracted publication.
    pub fn retraction_acks(&self, doc_id: &str) -> Result<Vec<NodeId>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT node_id FROM retraction_acks WHERE doc_id = ?1 ORDER BY node_id",
            )
            .map_err(self.sqlite())?;
        let rows = stmt
            .query_map([doc_id], |r| r.get::<_, String>(0))
            .map_err(self.sqlite())?;
        let mut out = Vec::new();
        for row in rows {
            let id = row.map_err(self.sqlite())?;
            out.push(
                id.parse()
                    .map_err(|e| self.corrupt(format!("retraction ack {id}: {e}")))?,
            );
        }
        Ok(out)
    }

    /// Runs `f` with a [`Batch`] inside one transaction, committed only if `f`
    /// returns `Ok`: how a sync session's effects are persisted.
    pub fn batch<R>(
        &mut self,
        f: impl FnOnce(&mut Batch<'_>) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let path = self.path.clone();
        let err = |source: rusqlite::Error| StoreError::Sqlite {
            path: path.clone(),
            source: Box::new(source),
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let mut batch = Batch {
            tx: &tx,
            path: &path,
            now: unix_now(),
        };
        let result = f(&mut batch)?;
        tx.commit().map_err(err)?;
        Ok(result)
    }
}

/// Writes inside one transaction; see [`Store::batch`].
pub struct Batch<'t> {
    tx: &'t Transaction<'t>,
    path: &'t std::path::Path,
    now: i64,
}

impl Batch<'_> {
    fn err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |source| StoreError::Sqlite {
            path: self.path.to_path_buf(),
            source: Box::new(source),
        }
    }

    /// Stores a replica from a full `save()`, replacing any copy we had.
    pub fn save_replica_snapshot(
        &mut self,
        doc_id: &str,
        origin: NodeId,
        heads: &[ChangeHash],
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        self.check_not_ours(doc_id)?;
        let err = self.err();
        self.tx
            .execute("DELETE FROM document_changes WHERE doc_id = ?1", [doc_id])
            .map_err(&err)?;
        self.tx
            .execute(
                "INSERT INTO documents (doc_id, kind, snapshot, heads, created_at, updated_at) VALUES (?1, 'replica', ?2, ?3, ?4, ?4)
                 ON CONFLICT(doc_id) DO UPDATE SET snapshot = excluded.snapshot, heads = excluded.heads, updated_at = excluded.updated_at",
                params![doc_id, bytes, encode_heads(heads), self.now],
            )
            .map_err(&err)?;
        self.tx
            .execute(
                "INSERT INTO replicas (doc_id, origin) VALUES (?1, ?2) ON CONFLICT(doc_id) DO UPDATE SET origin = excluded.origin",
                params![doc_id, origin.to_string()],
            )
            .map_err(&err)?;
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
        self.check_not_ours(doc_id)?;
        let err = self.err();
        let exists: Option<String> = self
            .tx
            .query_row(
                "SELECT origin FROM replicas WHERE doc_id = ?1",
                [doc_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(&err)?;
        if exists.as_deref() != Some(origin.to_string().as_str()) {
            return Err(StoreError::Corrupt {
                path: self.path.to_path_buf(),
                what: format!("changes for replica {doc_id}, which is not held from that origin"),
            });
        }
        let last: Option<i64> = self
            .tx
            .query_row(
                "SELECT MAX(seq) FROM document_changes WHERE doc_id = ?1",
                [doc_id],
                |r| r.get(0),
            )
            .map_err(&err)?;
        self.tx
            .execute(
                "INSERT INTO document_changes (doc_id, seq, chunk) VALUES (?1, ?2, ?3)",
                params![doc_id, last.unwrap_or(0) + 1, chunk],
            )
            .map_err(&err)?;
        self.tx
            .execute(
                "UPDATE documents SET heads = ?2, updated_at = ?3 WHERE doc_id = ?1",
                params![doc_id, encode_heads(heads), self.now],
            )
            .map_err(&err)?;
        Ok(())
    }

    /// A replica must never overwrite one of our own documents.
    fn check_not_ours(&self, doc_id: &str) -> Result<(), StoreError> {
        let kind: Option<String> = self
            .tx
            .query_row(
                "SELECT kind FROM documents WHERE doc_id = ?1",
                [doc_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.err())?;
        match kind.as_deref() {
            None | Some("replica") => Ok(()),
            Some(other) => Err(StoreError::Corrupt {
                path: self.path.to_path_buf(),
                what: format!("refusing to store a replica over our own {other} document {doc_id}"),
            }),
        }
    }

    /// Deletes a replica and every sync state kept for it.
    pub fn delete_replica(&mut self, doc_id: &str) -> Result<(), StoreError> {
        let err = self.err();
        self.tx
            .execute(
                "DELETE FROM documents WHERE doc_id = ?1 AND kind = 'replica'",
                [doc_id],
            )
            .map_err(&err)?;
        self.tx
            .execute("DELETE FROM sync_state WHERE doc_id = ?1", [doc_id])
            .map_err(&err)?;
        Ok(())
    }

    /// Saves the Automerge sync state of one document with one peer.
    pub fn save_sync_state(
        &mut self,
        peer: NodeId,
        doc_id: &str,
        state: &[u8],
    ) -> Result<(), StoreError> {
        self.tx
            .execute(
                "INSERT INTO sync_state (node_id, doc_id, state) VALUES (?1, ?2, ?3)
                 ON CONFLICT(node_id, doc_id) DO UPDATE SET state = excluded.state",
                params![peer.to_string(), doc_id, state],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// Forgets the sync state of one document with one peer.
    pub fn delete_sync_state(&mut self, peer: NodeId, doc_id: &str) -> Result<(), StoreError> {
        self.tx
            .execute(
                "DELETE FROM sync_state WHERE node_id = ?1 AND doc_id = ?2",
                params![peer.to_string(), doc_id],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// Records how far we got in `origin`'s index.
    pub fn save_resume_point(
        &mut self,
        origin: NodeId,
        epoch: u64,
        seq: u64,
    ) -> Result<(), StoreError> {
        self.tx
            .execute(
                "INSERT INTO resume_points (origin, epoch, seq) VALUES (?1, ?2, ?3)
                 ON CONFLICT(origin) DO UPDATE SET epoch = excluded.epoch, seq = excluded.seq",
                params![origin.to_string(), epoch as i64, seq as i64],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// Records how far `peer` acknowledged our index.
    pub fn save_peer_ack(&mut self, peer: NodeId, epoch: u64, seq: u64) -> Result<(), StoreError> {
        self.tx
            .execute(
                "INSERT INTO peer_acks (node_id, epoch, seq, at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(node_id) DO UPDATE SET epoch = excluded.epoch, seq = excluded.seq, at = excluded.at",
                params![peer.to_string(), epoch as i64, seq as i64, self.now],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// Records that `peer` confirmed it deleted a retracted publication.
    pub fn save_retraction_ack(&mut self, doc_id: &str, peer: NodeId) -> Result<(), StoreError> {
        self.tx
            .execute(
                "INSERT INTO retraction_acks (doc_id, node_id, at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                params![doc_id, peer.to_string(), self.now],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// Appends a line to the disclosure log, in this transaction.
    pub fn log_disclosure(&mut self, entry: &NewDisclosure<'_>) -> Result<(), StoreError> {
        super::insert_disclosure(self.tx, entry, self.now).map_err(self.err())
    }
}

/// Saves one publication and updates its index row, inside an open transaction.
fn save_publication_in(
    tx: &Transaction<'_>,
    path: &std::path::Path,
    doc_id: &str,
    doc: &mut AutoCommit,
    scope: &str,
    now: i64,
) -> Result<PublicationSave, StoreError> {
    let err = |source: rusqlite::Error| StoreError::Sqlite {
        path: path.to_path_buf(),
        source: Box::new(source),
    };
    let before: Option<Vec<u8>> = tx
        .query_row(
            "SELECT heads FROM documents WHERE doc_id = ?1",
            [doc_id],
            |r| r.get(0),
        )
        .optional()
        .map_err(err)?;
    save_in(tx, path, doc_id, DocumentKind::Publication, doc, now)?;
    let indexed: Option<(String, i64)> = tx
        .query_row(
            "SELECT scope, retracted FROM publication_index WHERE doc_id = ?1",
            [doc_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(err)?;
    let heads_changed = before.as_deref() != Some(encode_heads(&doc.get_heads()).as_slice());
    let outcome = match indexed {
        None => {
            let seq = next_seq(tx, path)?;
            tx.execute(
                "INSERT INTO publication_index (doc_id, seq, scope, retracted, updated_at) VALUES (?1, ?2, ?3, 0, ?4)",
                params![doc_id, seq as i64, scope, now],
            )
            .map_err(err)?;
            PublicationSave::Created(seq)
        }
        Some((old_scope, retracted)) if heads_changed || old_scope != scope || retracted != 0 => {
            let seq = next_seq(tx, path)?;
            tx.execute(
                "UPDATE publication_index SET seq = ?2, scope = ?3, retracted = 0, updated_at = ?4 WHERE doc_id = ?1",
                params![doc_id, seq as i64, scope, now],
            )
            .map_err(err)?;
            tx.execute("DELETE FROM retraction_acks WHERE doc_id = ?1", [doc_id])
                .map_err(err)?;
            PublicationSave::Updated(seq)
        }
        Some(_) => PublicationSave::Unchanged,
    };
    Ok(outcome)
}

fn next_seq(tx: &Transaction<'_>, path: &std::path::Path) -> Result<u64, StoreError> {
    let err = |source: rusqlite::Error| StoreError::Sqlite {
        path: path.to_path_buf(),
        source: Box::new(source),
    };
    let seq: i64 = tx
        .query_row("SELECT next_seq FROM index_meta WHERE id = 1", [], |r| {
            r.get(0)
        })
        .map_err(err)?;
    tx.execute(
        "UPDATE index_meta SET next_seq = next_seq + 1 WHERE id = 1",
        [],
    )
    .map_err(err)?;
    Ok(seq as u64)
}

struct RawIndexRow {
    doc_id: String,
    seq: i64,
    scope: String,
    heads: Vec<u8>,
    retracted: i64,
}

fn raw_index_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawIndexRow> {
    Ok(RawIndexRow {
        doc_id: r.get(0)?,
        seq: r.get(1)?,
        scope: r.get(2)?,
        heads: r.get(3)?,
        retracted: r.get(4)?,
    })
}
