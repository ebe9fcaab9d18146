//! Automerge documents: a snapshot plus the changes saved since.
//!
//! Saving a whole Automerge document on every edit would rewrite its entire
//! history each time, so a document is stored as two things:
//!
//! - a row in `documents`: its kind, a full snapshot (`AutoCommit::save`), and
//!   the heads of everything stored for it;
//! - rows in `document_changes`: incremental chunks (`save_after` the stored
//!   heads), numbered by `seq`, appended by each later save.
//!
//! Loading concatenates the snapshot and the chunks in order and hands them to
//! Automerge in one `load`. Every [`CHANGES_BEFORE_COMPACTION`] chunks, the
//! save that would add one more rewrites the snapshot instead and drops the
//! chunks, in the same transaction: load time stays bounded, and no single
//! save is a full rewrite more often than that.
//!
//! What is new is decided by the heads in the store, not by the document's own
//! "last saved" marker. So a failed commit costs nothing (the next save writes
//! the same changes again), and a second writer (another CLI session) is
//! noticed: its changes are merged in before saving, so both survive.
//!
//! The [`DocumentKind`] decides where a document may go; a document never
//! changes kind, and a replica never lands on one of our own (see
//! `replicas.rs`).

use automerge::AutoCommit;
use rusqlite::params;

use super::codec::encode_heads;
use super::db::Db;
use super::{unix_now, Store, StoreError};

/// Incremental chunks a document may gather before it is compacted into a snapshot.
/// Loading replays every chunk, so this bounds load time; compaction rewrites the
/// whole document, so it should not happen on every save either.
pub const CHANGES_BEFORE_COMPACTION: i64 = 64;

/// What a document is, which decides where it may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DocumentKind {
    /// Lab data: never leaves the node.
    Private,
    /// An anonymized projection this node publishes; it is the only writer.
    Publication,
    /// Another node's publication, received from a peer.
    Replica,
}

impl DocumentKind {
    /// The `kind` column's value.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            DocumentKind::Private => "private",
            DocumentKind::Publication => "publication",
            DocumentKind::Replica => "replica",
        }
    }

    fn parse(s: &str) -> Option<DocumentKind> {
        match s {
            "private" => Some(DocumentKind::Private),
            "publication" => Some(DocumentKind::Publication),
            "replica" => Some(DocumentKind::Replica),
            _ => None,
        }
    }
}

/// Counts for `labnet status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DocumentCounts {
    /// Private lab documents.
    pub private: i64,
    /// Publications this node made.
    pub publication: i64,
    /// Other nodes' publications held here.
    pub replica: i64,
}

impl Store {
    /// Saves what `doc` holds beyond what the store already has.
    ///
    /// The first save of a document writes a full snapshot; later saves append only
    /// the changes after the stored heads, and every [`CHANGES_BEFORE_COMPACTION`]
    /// chunks the document is compacted into a fresh snapshot in the same
    /// transaction. Returns once the transaction has committed. A document with
    /// nothing new costs no write.
    ///
    /// What is saved is decided by the heads recorded in the store, not by the
    /// document's own "last saved" marker: if a commit fails, the next save simply
    /// writes the same changes again.
    pub fn save_document(
        &mut self,
        doc_id: &str,
        kind: DocumentKind,
        doc: &mut AutoCommit,
    ) -> Result<(), StoreError> {
        self.save_documents(&mut [(doc_id, kind, doc)])
    }

    /// Saves several documents in one transaction: all of them or none.
    pub fn save_documents(
        &mut self,
        docs: &mut [(&str, DocumentKind, &mut AutoCommit)],
    ) -> Result<(), StoreError> {
        let now = unix_now();
        self.write(|tx| {
            docs.iter_mut()
                .try_for_each(|(doc_id, kind, doc)| save_in(tx, doc_id, *kind, doc, now))
        })
    }

    /// The heads the store holds for a document, without loading it.
    pub fn document_heads(
        &self,
        doc_id: &str,
    ) -> Result<Option<Vec<automerge::ChangeHash>>, StoreError> {
        let db = self.db();
        let raw: Option<Vec<u8>> = db.optional_row(
            "SELECT heads FROM documents WHERE doc_id = ?1",
            [doc_id],
            |r| r.get(0),
        )?;
        raw.map(|bytes| {
            db.heads(
                &bytes,
                format_args!("document {doc_id} has malformed heads"),
            )
        })
        .transpose()
    }

    /// Loads a document: its snapshot with every saved change applied.
    pub fn load_document(
        &self,
        doc_id: &str,
    ) -> Result<Option<(DocumentKind, AutoCommit)>, StoreError> {
        let db = self.db();
        let Some((kind, snapshot)) = db.optional_row(
            "SELECT kind, snapshot FROM documents WHERE doc_id = ?1",
            [doc_id],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?)),
        )?
        else {
            return Ok(None);
        };
        let kind = DocumentKind::parse(&kind)
            .ok_or_else(|| db.corrupt(format!("document {doc_id} has kind {kind}")))?;
        Ok(Some((kind, load_after(db, doc_id, snapshot)?)))
    }

    /// Loads the document `doc_id` when it is of `kind`: `None` when there is no
    /// such document; another kind under that id is the caller's error, made by
    /// `wrong_kind` from the kind found (never "nothing there").
    pub fn load_kind<E: From<StoreError>>(
        &self,
        doc_id: &str,
        kind: DocumentKind,
        wrong_kind: impl FnOnce(DocumentKind) -> E,
    ) -> Result<Option<AutoCommit>, E> {
        match self.load_document(doc_id)? {
            None => Ok(None),
            Some((found, doc)) if found == kind => Ok(Some(doc)),
            Some((found, _)) => Err(wrong_kind(found)),
        }
    }

    /// Deletes a document and its changes. Returns whether it existed.
    pub fn delete_document(&mut self, doc_id: &str) -> Result<bool, StoreError> {
        let n = self.write(|tx| tx.execute("DELETE FROM documents WHERE doc_id = ?1", [doc_id]))?;
        Ok(n > 0)
    }

    /// Ids of the documents of one kind, in id order.
    pub fn document_ids(&self, kind: DocumentKind) -> Result<Vec<String>, StoreError> {
        self.db().rows(
            "SELECT doc_id FROM documents WHERE kind = ?1 ORDER BY doc_id",
            [kind.as_str()],
            |r| r.get(0),
        )
    }

    /// Ids of the documents of one kind with when each last changed here (unix seconds).
    pub fn documents_changed_at(
        &self,
        kind: DocumentKind,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        self.db().rows(
            "SELECT doc_id, updated_at FROM documents WHERE kind = ?1 ORDER BY doc_id",
            [kind.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    /// How many incremental chunks a document has gathered since its last compaction.
    pub fn pending_changes(&self, doc_id: &str) -> Result<i64, StoreError> {
        self.db().row(
            "SELECT COUNT(*) FROM document_changes WHERE doc_id = ?1",
            [doc_id],
            |r| r.get(0),
        )
    }

    /// How many documents of each kind the store holds.
    pub fn document_counts(&self) -> Result<DocumentCounts, StoreError> {
        let rows: Vec<(String, i64)> = self.db().rows(
            "SELECT kind, COUNT(*) FROM documents GROUP BY kind",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let mut counts = DocumentCounts::default();
        for (kind, n) in rows {
            match DocumentKind::parse(&kind) {
                Some(DocumentKind::Private) => counts.private = n,
                Some(DocumentKind::Publication) => counts.publication = n,
                Some(DocumentKind::Replica) => counts.replica = n,
                None => {}
            }
        }
        Ok(counts)
    }
}

/// Writes one document's unsaved part inside an open transaction.
pub(super) fn save_in(
    tx: Db<'_>,
    doc_id: &str,
    kind: DocumentKind,
    doc: &mut AutoCommit,
    now: i64,
) -> Result<(), StoreError> {
    let existing: Option<(String, Vec<u8>)> = tx.optional_row(
        "SELECT kind, heads FROM documents WHERE doc_id = ?1",
        [doc_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let Some((stored_kind, stored_heads)) = existing else {
        tx.execute(
            "INSERT INTO documents (doc_id, kind, snapshot, heads, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            params![doc_id, kind.as_str(), doc.save(), encode_heads(&doc.get_heads()), now],
        )?;
        return Ok(());
    };
    if stored_kind != kind.as_str() {
        return Err(tx.corrupt(format!(
            "document {doc_id} is {stored_kind}, cannot save it as {}",
            kind.as_str()
        )));
    }
    let stored_heads = tx.heads(
        &stored_heads,
        format_args!("document {doc_id} has malformed heads"),
    )?;
    // Another writer (a second CLI session, say) saved changes this document has
    // not seen: merge them in first, so the stored heads stay the heads of
    // everything stored and both sessions' edits survive.
    if stored_heads
        .iter()
        .any(|h| doc.get_change_by_hash(h).is_none())
    {
        let mut stored = load_in(tx, doc_id)?;
        doc.merge(&mut stored)
            .map_err(|source| damaged(doc_id, source))?;
    }
    let encoded_heads = encode_heads(&doc.get_heads());
    if encode_heads(&stored_heads) == encoded_heads {
        return Ok(());
    }
    let chunk = doc.save_after(&stored_heads);
    let (count, last): (i64, Option<i64>) = tx.row(
        "SELECT COUNT(*), MAX(seq) FROM document_changes WHERE doc_id = ?1",
        [doc_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if count + 1 >= CHANGES_BEFORE_COMPACTION {
        tx.execute("DELETE FROM document_changes WHERE doc_id = ?1", [doc_id])?;
        tx.execute(
            "UPDATE documents SET snapshot = ?2, heads = ?3, updated_at = ?4 WHERE doc_id = ?1",
            params![doc_id, doc.save(), encoded_heads, now],
        )?;
    } else {
        append_chunk(tx, doc_id, last, &chunk, &encoded_heads, now)?;
    }
    Ok(())
}

/// Appends one chunk of changes after chunk `last` and moves the document's
/// stored heads to `heads` (encoded), inside an open transaction. The heads
/// move in the same transaction as the chunk, so they always name exactly
/// what is stored.
pub(super) fn append_chunk(
    tx: Db<'_>,
    doc_id: &str,
    last: Option<i64>,
    chunk: &[u8],
    heads: &[u8],
    now: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO document_changes (doc_id, seq, chunk) VALUES (?1, ?2, ?3)",
        params![doc_id, last.unwrap_or(0) + 1, chunk],
    )?;
    tx.execute(
        "UPDATE documents SET heads = ?2, updated_at = ?3 WHERE doc_id = ?1",
        params![doc_id, heads, now],
    )?;
    Ok(())
}

/// Loads a document inside an open transaction.
fn load_in(tx: Db<'_>, doc_id: &str) -> Result<AutoCommit, StoreError> {
    let snapshot: Vec<u8> = tx.row(
        "SELECT snapshot FROM documents WHERE doc_id = ?1",
        [doc_id],
        |r| r.get(0),
    )?;
    load_after(tx, doc_id, snapshot)
}

/// Loads `snapshot` with the document's saved chunks after it: one Automerge
/// `load` of the bytes concatenated, which is what a snapshot followed by
/// `save_after` chunks is designed for.
fn load_after(db: Db<'_>, doc_id: &str, mut snapshot: Vec<u8>) -> Result<AutoCommit, StoreError> {
    let chunks: Vec<Vec<u8>> = db.rows(
        "SELECT chunk FROM document_changes WHERE doc_id = ?1 ORDER BY seq",
        [doc_id],
        |r| r.get(0),
    )?;
    for chunk in chunks {
        snapshot.extend_from_slice(&chunk);
    }
    AutoCommit::load(&snapshot).map_err(|source| damaged(doc_id, source))
}

fn damaged(doc_id: &str, source: automerge::AutomergeError) -> StoreError {
    StoreError::Document {
        doc_id: doc_id.to_string(),
        source: Box::new(source),
    }
}
