//! The [`SyncView`] of a real node: its SQLite store.
//!
//! Sessions read through this view while the driver holds the store, so reads
//! see every effect the driver has persisted (the session's contract). Reads
//! that fail are logged and answered as "nothing there": the session then treats
//! the document as missing for this round instead of stopping every peer's sync
//! over one bad row. Writes never happen here; they come back as effects.

use automerge::AutoCommit;
use labnet_protocol::sync::{DocId, ResumePoint};
use labnet_protocol::NodeId;
use tracing::warn;

use super::{
    EffectSink, OriginView, PublicationEntry, ReplicaData, ReplicaEntry, ReplicaView, Scope,
    SyncView, ViewError,
};
use crate::store::{Batch, DocumentKind, IndexRow, Store, StoreError};

/// A node's store, seen by its sync sessions.
pub struct StoreView<'a> {
    store: &'a Store,
}

impl<'a> StoreView<'a> {
    /// Views `store`.
    pub fn new(store: &'a Store) -> StoreView<'a> {
        StoreView { store }
    }
}

fn logged<T>(what: &str, result: Result<T, StoreError>) -> Option<T> {
    match result {
        Ok(v) => Some(v),
        Err(e) => {
            warn!(error = %e, "sync view: {what} failed");
            None
        }
    }
}

/// An index row as the session sees it. Rows that do not parse (a bad id or
/// scope, which only a bug or a hand edit could write) are skipped: failing
/// closed means not announcing what we cannot check.
fn entry(row: IndexRow) -> Option<PublicationEntry> {
    let doc_id = DocId::new(row.doc_id.clone()).ok()?;
    let scope = match Scope::parse(&row.scope) {
        Ok(s) => s,
        Err(e) => {
            warn!(doc = %row.doc_id, error = %e, "publication with an unreadable scope is not announced");
            return None;
        }
    };
    Some(PublicationEntry {
        doc_id,
        seq: row.seq,
        scope,
        heads: row.heads,
        retracted: row.retracted,
    })
}

impl OriginView for StoreView<'_> {
    fn index_epoch(&self) -> u64 {
        logged("reading the index epoch", self.store.index_epoch()).unwrap_or(0)
    }

    fn publications_after(&self, after_seq: u64, limit: usize) -> Vec<PublicationEntry> {
        let rows = logged(
            "reading the publication index",
            self.store.publications_after(after_seq, limit),
        )
        .unwrap_or_default();
        rows.into_iter().filter_map(entry).collect()
    }

    fn publication(&self, doc_id: &DocId) -> Option<PublicationEntry> {
        logged(
            "reading a publication",
            self.store.publication_row(doc_id.as_str()),
        )
        .flatten()
        .and_then(entry)
    }

    fn load_publication(&self, doc_id: &DocId) -> Result<Option<AutoCommit>, ViewError> {
        match self.store.load_document(doc_id.as_str())? {
            Some((DocumentKind::Publication, doc)) => Ok(Some(doc)),
            _ => Ok(None),
        }
    }
}

impl ReplicaView for StoreView<'_> {
    fn replica(&self, doc_id: &DocId) -> Option<ReplicaEntry> {
        logged(
            "reading a replica",
            self.store.replica_entry(doc_id.as_str()),
        )
        .flatten()
        .map(|(origin, heads)| ReplicaEntry { origin, heads })
    }

    fn load_replica(&self, doc_id: &DocId) -> Result<Option<AutoCommit>, ViewError> {
        match self.store.load_document(doc_id.as_str())? {
            Some((DocumentKind::Replica, doc)) => Ok(Some(doc)),
            _ => Ok(None),
        }
    }

    fn replicas_of(&self, origin: NodeId) -> Vec<DocId> {
        logged("listing replicas", self.store.replicas_of(origin))
            .unwrap_or_default()
            .into_iter()
            .filter_map(|id| DocId::new(id).ok())
            .collect()
    }

    fn resume_point(&self, origin: NodeId) -> Option<ResumePoint> {
        logged("reading a resume point", self.store.resume_point(origin))
            .flatten()
            .map(|(epoch, seq)| ResumePoint { epoch, seq })
    }
}

impl SyncView for StoreView<'_> {
    fn sync_state(&self, peer: NodeId, doc_id: &DocId) -> Option<Vec<u8>> {
        logged(
            "reading a sync state",
            self.store.load_sync_state(peer, doc_id.as_str()),
        )
        .flatten()
    }
}

/// The driver persists a step's effects into one store transaction.
impl EffectSink for Batch<'_> {
    type Error = StoreError;

    fn save_replica(
        &mut self,
        doc_id: &DocId,
        origin: NodeId,
        heads: &[automerge::ChangeHash],
        data: &ReplicaData,
    ) -> Result<(), StoreError> {
        match data {
            ReplicaData::Snapshot(bytes) => {
                self.save_replica_snapshot(doc_id.as_str(), origin, heads, bytes)
            }
            ReplicaData::Incremental(chunk) => {
                self.append_replica_changes(doc_id.as_str(), origin, heads, chunk)
            }
        }
    }

    fn delete_replica(&mut self, doc_id: &DocId) -> Result<(), StoreError> {
        Batch::delete_replica(self, doc_id.as_str())
    }

    fn save_sync_state(
        &mut self,
        peer: NodeId,
        doc_id: &DocId,
        state: &[u8],
    ) -> Result<(), StoreError> {
        Batch::save_sync_state(self, peer, doc_id.as_str(), state)
    }

    fn delete_sync_state(&mut self, peer: NodeId, doc_id: &DocId) -> Result<(), StoreError> {
        Batch::delete_sync_state(self, peer, doc_id.as_str())
    }

    fn save_resume_point(&mut self, origin: NodeId, point: ResumePoint) -> Result<(), StoreError> {
        Batch::save_resume_point(self, origin, point.epoch, point.seq)
    }

    fn save_acked_seq(&mut self, peer: NodeId, epoch: u64, seq: u64) -> Result<(), StoreError> {
        Batch::save_peer_ack(self, peer, epoch, seq)
    }
}
