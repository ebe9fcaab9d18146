//! Our publication index: what peers sync from, numbered so a reconnect is cheap.
//!
//! A publication is stored as a document of kind `publication` (see
//! `documents.rs`); this file keeps its row in `publication_index`: scope,
//! retraction flag, and a local update sequence number (`seq`, as Syncthing
//! numbers its index). Every change a peer must learn about (new content, a
//! new scope, a retraction) takes the next number from `index_meta`, so a
//! peer that acknowledged up to N needs exactly the rows after N, one indexed
//! query however many publications the node holds, and no Automerge document
//! is loaded to answer it. The index's `epoch` changes only if the numbering
//! is ever rebuilt, which tells peers to start over.
//!
//! A retracted publication stays as a tombstone with a fresh `seq`, so peers
//! that had it learn to delete it (their confirmations are in `replicas.rs`).
//! Sharing it again clears the flag and the confirmations.
//!
//! Only `share` writes here in a normal build, through
//! [`Store::save_publication_logged`], with a document it built from an
//! anonymized projection, and the disclosure-log line in the same
//! transaction. The raw writes ([`Store::save_publication`],
//! [`Store::save_publications`]) exist for tests and benchmarks only, behind
//! the `test-support` feature.

use automerge::{AutoCommit, ChangeHash};
use rusqlite::params;

use super::codec::{encode_heads, heads_hex};
use super::db::{Db, FromRow};
use super::disclosures::{insert_disclosure, NewDisclosure};
use super::documents::save_in;
use super::statements::issue_statement;
use super::{unix_now, DocumentKind, Store, StoreError};
use labnet_protocol::statement::Signer;

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
    /// The epoch of our index numbering.
    pub fn index_epoch(&self) -> Result<u64, StoreError> {
        let epoch: i64 = self
            .db()
            .row("SELECT epoch FROM index_meta WHERE id = 1", [], |r| {
                r.get(0)
            })?;
        Ok(epoch as u64)
    }

    /// Up to `limit` index rows with `seq > after_seq`, in ascending order.
    pub fn publications_after(
        &self,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<IndexRow>, StoreError> {
        self.db().records_after(
            "SELECT p.doc_id, p.seq, p.scope, d.heads, p.retracted FROM publication_index p
             JOIN documents d ON d.doc_id = p.doc_id WHERE p.seq > ?1 ORDER BY p.seq LIMIT ?2",
            after_seq,
            limit,
        )
    }

    /// The index row of one of our publications.
    pub fn publication_row(&self, doc_id: &str) -> Result<Option<IndexRow>, StoreError> {
        self.db().record(
            "SELECT p.doc_id, p.seq, p.scope, d.heads, p.retracted FROM publication_index p
             JOIN documents d ON d.doc_id = p.doc_id WHERE p.doc_id = ?1",
            [doc_id],
        )
    }

    /// Every row of our index (for status and tests), in sequence order.
    pub fn publication_rows(&self) -> Result<Vec<IndexRow>, StoreError> {
        self.publications_after(0, usize::MAX >> 1)
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
            .ok_or_else(|| self.db().corrupt("no outcome for a saved publication"))
    }

    /// Saves several publications in one transaction: all or none. Tests and
    /// benchmarks only, as [`Store::save_publication`].
    #[cfg(any(test, feature = "test-support"))]
    pub fn save_publications(
        &mut self,
        docs: &mut [(&str, &mut AutoCommit, &str)],
    ) -> Result<Vec<PublicationSave>, StoreError> {
        let now = unix_now();
        let signer = self.signer()?;
        self.write(|tx| {
            docs.iter_mut()
                .map(|(doc_id, doc, scope)| {
                    save_publication_in(tx, signer.as_ref(), doc_id, doc, scope, now)
                })
                .collect()
        })
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
        let now = unix_now();
        let signer = self.signer()?;
        self.write(|tx| {
            let was_retracted = retracted_flag(tx, doc_id)? == Some(1);
            let saved = save_publication_in(tx, signer.as_ref(), doc_id, doc, scope, now)?;
            let action = decide(saved, was_retracted);
            if let Some(action) = action {
                let entry = NewDisclosure {
                    action,
                    doc_id,
                    heads: &heads_hex(&doc.get_heads()),
                    node_id: None,
                    scope,
                    settings,
                };
                insert_disclosure(tx, &entry, now)?;
            }
            Ok((saved, action))
        })
    }

    /// Marks one of our publications retracted, with the next sequence number, so
    /// every peer that had it learns. Returns the new seq, or `None` if it was not
    /// published (or already retracted).
    pub fn retract_publication(&mut self, doc_id: &str) -> Result<Option<u64>, StoreError> {
        let signer = self.signer()?;
        let now = unix_now();
        self.write(|tx| retract_in(tx, signer.as_ref(), doc_id, now))
    }

    /// Re-issues one of our publications, all in one transaction: saves `doc`
    /// (a fresh document with a fresh history) under `new_id`, retracts
    /// `old_id` (a signed retraction every peer that had it deletes its copy
    /// on, and confirms), and writes two `reissue` lines to the disclosure log:
    /// one for the new publication with the settings it was made with, one for
    /// the old with `{"reissued_as": new_id}` in its settings. Either all of it
    /// is on disk or none. Returns the new publication's save and the
    /// retraction's sequence number (`None` if the old one was already retracted).
    pub(crate) fn reissue_publication(
        &mut self,
        old_id: &str,
        new_id: &str,
        doc: &mut AutoCommit,
        scope: &str,
        settings: &str,
    ) -> Result<(PublicationSave, Option<u64>), StoreError> {
        let now = unix_now();
        let signer = self.signer()?;
        self.write(|tx| {
            let old: Option<(String, Vec<u8>)> = tx.optional_row(
                "SELECT p.scope, d.heads FROM publication_index p JOIN documents d ON d.doc_id = p.doc_id WHERE p.doc_id = ?1",
                [old_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let saved = save_publication_in(tx, signer.as_ref(), new_id, doc, scope, now)?;
            let retracted = retract_in(tx, signer.as_ref(), old_id, now)?;
            insert_disclosure(
                tx,
                &NewDisclosure {
                    action: "reissue",
                    doc_id: new_id,
                    heads: &heads_hex(&doc.get_heads()),
                    node_id: None,
                    scope,
                    settings,
                },
                now,
            )?;
            if let Some((old_scope, old_heads)) = old {
                let old_heads = tx.heads(&old_heads, format_args!("publication {old_id} heads"))?;
                let note = serde_json::json!({ "reissued_as": new_id }).to_string();
                insert_disclosure(
                    tx,
                    &NewDisclosure {
                        action: "reissue",
                        doc_id: old_id,
                        heads: &heads_hex(&old_heads),
                        node_id: None,
                        scope: &old_scope,
                        settings: &note,
                    },
                    now,
                )?;
            }
            Ok((saved, retracted))
        })
    }
}

/// Retracts one of our publications inside an open transaction: the next
/// sequence number and a signed retraction statement. `None` if it was not
/// published or is already retracted.
fn retract_in(
    tx: Db<'_>,
    signer: &dyn Signer,
    doc_id: &str,
    now: i64,
) -> Result<Option<u64>, StoreError> {
    if retracted_flag(tx, doc_id)? != Some(0) {
        return Ok(None);
    }
    let seq = next_seq(tx)?;
    tx.execute(
        "UPDATE publication_index SET seq = ?2, retracted = 1, updated_at = ?3 WHERE doc_id = ?1",
        params![doc_id, seq as i64, now],
    )?;
    let (scope, heads): (String, Vec<u8>) = tx.row(
        "SELECT p.scope, d.heads FROM publication_index p JOIN documents d ON d.doc_id = p.doc_id WHERE p.doc_id = ?1",
        [doc_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let heads = tx.heads(&heads, format_args!("publication {doc_id} heads"))?;
    issue_statement(tx, signer, doc_id, seq, &heads, &scope, true, now)?;
    Ok(Some(seq))
}

/// Saves one publication and updates its index row, inside an open transaction.
fn save_publication_in(
    tx: Db<'_>,
    signer: &dyn Signer,
    doc_id: &str,
    doc: &mut AutoCommit,
    scope: &str,
    now: i64,
) -> Result<PublicationSave, StoreError> {
    let before: Option<Vec<u8>> = tx.optional_row(
        "SELECT heads FROM documents WHERE doc_id = ?1",
        [doc_id],
        |r| r.get(0),
    )?;
    save_in(tx, doc_id, DocumentKind::Publication, doc, now)?;
    let indexed: Option<(String, i64)> = tx.optional_row(
        "SELECT scope, retracted FROM publication_index WHERE doc_id = ?1",
        [doc_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let heads_changed = before.as_deref() != Some(encode_heads(&doc.get_heads()).as_slice());
    let outcome = match indexed {
        None => {
            let seq = next_seq(tx)?;
            tx.execute(
                "INSERT INTO publication_index (doc_id, seq, scope, retracted, updated_at) VALUES (?1, ?2, ?3, 0, ?4)",
                params![doc_id, seq as i64, scope, now],
            )?;
            issue_statement(tx, signer, doc_id, seq, &doc.get_heads(), scope, false, now)?;
            PublicationSave::Created(seq)
        }
        Some((old_scope, retracted)) if heads_changed || old_scope != scope || retracted != 0 => {
            let seq = next_seq(tx)?;
            tx.execute(
                "UPDATE publication_index SET seq = ?2, scope = ?3, retracted = 0, updated_at = ?4 WHERE doc_id = ?1",
                params![doc_id, seq as i64, scope, now],
            )?;
            // Shared again: the old confirmations were for the tombstone.
            tx.execute("DELETE FROM retraction_acks WHERE doc_id = ?1", [doc_id])?;
            tx.execute("DELETE FROM confirmations WHERE doc_id = ?1", [doc_id])?;
            issue_statement(tx, signer, doc_id, seq, &doc.get_heads(), scope, false, now)?;
            PublicationSave::Updated(seq)
        }
        Some(_) => PublicationSave::Unchanged,
    };
    Ok(outcome)
}

/// The publication's `retracted` column, or `None` when it is not in the index.
fn retracted_flag(tx: Db<'_>, doc_id: &str) -> Result<Option<i64>, StoreError> {
    tx.optional_row(
        "SELECT retracted FROM publication_index WHERE doc_id = ?1",
        [doc_id],
        |r| r.get(0),
    )
}

/// Takes the next index sequence number, inside the transaction that uses it:
/// a rolled-back save gives its number back, so numbers are never skipped.
pub(super) fn next_seq(tx: Db<'_>) -> Result<u64, StoreError> {
    let seq: i64 = tx.row("SELECT next_seq FROM index_meta WHERE id = 1", [], |r| {
        r.get(0)
    })?;
    tx.execute(
        "UPDATE index_meta SET next_seq = next_seq + 1 WHERE id = 1",
        [],
    )?;
    Ok(seq as u64)
}

/// An index row as the query returns it: complete but for its heads, which
/// come second, still encoded (decoding them can fail as corrupt, which a
/// row-mapping closure cannot report).
/// An index row reads its heads from the document's row, still encoded.
impl FromRow for IndexRow {
    type Columns = (IndexRow, Vec<u8>);

    fn columns(r: &rusqlite::Row<'_>) -> rusqlite::Result<(IndexRow, Vec<u8>)> {
        let row = IndexRow {
            doc_id: r.get(0)?,
            seq: r.get::<_, i64>(1)? as u64,
            scope: r.get(2)?,
            heads: Vec::new(),
            retracted: r.get::<_, i64>(4)? != 0,
        };
        Ok((row, r.get(3)?))
    }

    fn parse(db: Db<'_>, (mut row, heads): (IndexRow, Vec<u8>)) -> Result<IndexRow, StoreError> {
        row.heads = db.heads(
            &heads,
            format_args!("publication {} has malformed heads", row.doc_id),
        )?;
        Ok(row)
    }
}
