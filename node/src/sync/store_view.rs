//! The [`SyncView`] of a real node: a read connection to its SQLite store.
//!
//! Each session reads through a read-only connection of its own
//! ([`Store::open_reader`]), so one peer's reads never wait for another's, and
//! never hold up the writer. The driver persists effects through the one
//! writer before the next step, so reads see them (WAL: a read transaction
//! started after a commit sees it).
//!
//! A read that fails is an error, which ends the session: answering "nothing
//! there" could announce an empty index, and make every peer delete our
//! publications. Writes never happen here; they come back as effects.

use automerge::AutoCommit;
use labnet_config::Role;
use labnet_protocol::sync::{DocId, ResumePoint};
use labnet_protocol::NodeId;

use super::{
    EffectSink, ForwardItem, HeldEntry, KeptConfirmation, ReceivedStatement, ReplicaData,
    SavedVersion, Scope, ServedEntry, SyncView, ViewError,
};
use crate::store::{Batch, DocumentKind, IndexRow, StatementRow, Store, StoreError};

/// A node's store, seen by its sync sessions.
///
/// The driver makes one for each step, inside that step's
/// [`Store::read_snapshot`], so every read below (an index page is two
/// queries, our rows and the relayed statements) sees one committed state.
pub struct StoreView<'a> {
    store: &'a Store,
    /// This node: the origin of every row of `publication_index`.
    local: NodeId,
}

impl<'a> StoreView<'a> {
    /// Views `store`, the store of node `local`.
    pub fn new(store: &'a Store, local: NodeId) -> StoreView<'a> {
        StoreView { store, local }
    }
}

fn doc_id(id: &str) -> Result<DocId, ViewError> {
    DocId::new(id).map_err(|e| format!("stored document id {id}: {e}").into())
}

/// One of our index rows as the session sees it. A row that does not parse
/// (only a bug or a hand edit could write one) is an error, not skipped.
fn own_entry(local: NodeId, row: IndexRow) -> Result<ServedEntry, ViewError> {
    let scope = Scope::parse(&row.scope)
        .map_err(|e| format!("publication {} has an unreadable scope: {e}", row.doc_id))?;
    Ok(ServedEntry {
        doc_id: doc_id(&row.doc_id)?,
        seq: row.seq,
        origin: local,
        version: row.seq,
        retracted: row.retracted,
        scope: Some(scope),
    })
}

fn relayed_entry(row: StatementRow) -> Result<Option<ServedEntry>, ViewError> {
    let Some(seq) = row.relay_seq else {
        return Ok(None);
    };
    Ok(Some(ServedEntry {
        doc_id: doc_id(&row.doc_id)?,
        seq,
        origin: row.origin,
        version: row.version,
        retracted: row.retracted,
        scope: None,
    }))
}

impl SyncView for StoreView<'_> {
    fn index_epoch(&self) -> Result<u64, ViewError> {
        Ok(self.store.index_epoch()?)
    }

    fn served_after(&self, after_seq: u64, limit: usize) -> Result<Vec<ServedEntry>, ViewError> {
        let local = self.local;
        // Both reads share the step's snapshot (see the type's doc): a commit
        // between them would make the page cover a seq it never lists.
        let mut entries = Vec::with_capacity(limit);
        for row in self.store.publications_after(after_seq, limit)? {
            entries.push(own_entry(local, row)?);
        }
        for row in self.store.relayed_after(after_seq, limit)? {
            entries.extend(relayed_entry(row)?);
        }
        // Both lists are the first `limit` of their kind after `after_seq`,
        // so the first `limit` of the merge are the first of the whole index.
        entries.sort_by_key(|e| e.seq);
        entries.truncate(limit);
        Ok(entries)
    }

    fn served(&self, doc_id: &DocId) -> Result<Option<ServedEntry>, ViewError> {
        if let Some(row) = self.store.publication_row(doc_id.as_str())? {
            return Ok(Some(own_entry(self.local, row)?));
        }
        match self.store.statement(doc_id.as_str())? {
            Some(row) if row.via.is_some() => relayed_entry(row),
            _ => Ok(None),
        }
    }

    fn statement(&self, doc_id: &DocId) -> Result<Option<Vec<u8>>, ViewError> {
        Ok(self.store.statement(doc_id.as_str())?.map(|r| r.signed))
    }

    fn load_served(&self, doc_id: &DocId) -> Result<Option<AutoCommit>, ViewError> {
        match self.store.load_document(doc_id.as_str())? {
            Some((DocumentKind::Publication | DocumentKind::Replica, doc)) => Ok(Some(doc)),
            _ => Ok(None),
        }
    }

    fn replica_usage(&self, origin: NodeId) -> Result<crate::sync::ReplicaUsage, ViewError> {
        let (count, bytes) = self.store.replica_usage(origin)?;
        Ok(crate::sync::ReplicaUsage { count, bytes })
    }

    fn held(&self, doc_id: &DocId) -> Result<Option<HeldEntry>, ViewError> {
        let Some(row) = self.store.statement(doc_id.as_str())? else {
            return Ok(None);
        };
        if row.via.is_none() {
            // Ours: not something we hold of another origin.
            return Ok(None);
        }
        let heads = if row.retracted {
            Vec::new()
        } else {
            match self.store.replica_entry(doc_id.as_str())? {
                Some((_, heads)) => heads,
                None => return Err(format!("{doc_id} has a statement but no copy").into()),
            }
        };
        Ok(Some(HeldEntry {
            origin: row.origin,
            version: row.version,
            retracted: row.retracted,
            heads,
        }))
    }

    fn load_replica(&self, doc_id: &DocId) -> Result<Option<AutoCommit>, ViewError> {
        match self.store.load_document(doc_id.as_str())? {
            Some((DocumentKind::Replica, doc)) => Ok(Some(doc)),
            _ => Ok(None),
        }
    }

    fn resume_point(&self, peer: NodeId) -> Result<Option<ResumePoint>, ViewError> {
        Ok(self
            .store
            .resume_point(peer)?
            .map(|(epoch, seq)| ResumePoint { epoch, seq }))
    }

    fn delivered(&self, peer: NodeId, doc_id: &DocId) -> Result<bool, ViewError> {
        Ok(self
            .store
            .delivered_version(peer, doc_id.as_str())?
            .is_some())
    }

    fn peer_acked(&self, peer: NodeId) -> Result<Option<ResumePoint>, ViewError> {
        Ok(self
            .store
            .peer_ack(peer)?
            .map(|(epoch, seq, _)| ResumePoint { epoch, seq }))
    }

    fn confirmations_to_forward(
        &self,
        via: NodeId,
        limit: usize,
    ) -> Result<Vec<ForwardItem>, ViewError> {
        self.store
            .confirmations_to_forward(via, limit)?
            .into_iter()
            .map(|c| {
                Ok(ForwardItem {
                    doc_id: doc_id(&c.doc_id)?,
                    confirmer: c.confirmer,
                    signed: c.signed,
                })
            })
            .collect()
    }
}

/// The driver persists a step's effects into one store transaction.
impl EffectSink for Batch<'_> {
    type Error = StoreError;

    fn held_version(&mut self, doc_id: &DocId) -> Result<Option<u64>, StoreError> {
        self.received_version(doc_id.as_str())
    }

    fn save_version(&mut self, version: &SavedVersion) -> Result<(), StoreError> {
        let doc_id = version.doc_id.as_str();
        let origin = version.statement.origin;
        match &version.data {
            ReplicaData::Snapshot(bytes) => {
                self.save_replica_snapshot(doc_id, origin, &version.heads, bytes)?
            }
            ReplicaData::Incremental(chunk) => {
                self.append_replica_changes(doc_id, origin, &version.heads, chunk)?
            }
        }
        self.save_received_statement(doc_id, &version.statement, false)
    }

    fn save_tombstone(
        &mut self,
        doc_id: &DocId,
        statement: &ReceivedStatement,
    ) -> Result<(), StoreError> {
        Batch::delete_replica(self, doc_id.as_str())?;
        self.save_received_statement(doc_id.as_str(), statement, true)
    }

    fn withdrawn(&mut self, doc_id: &DocId) -> Result<(), StoreError> {
        Batch::delete_replica(self, doc_id.as_str())?;
        self.delete_received_statement(doc_id.as_str())
    }

    fn save_confirmation(&mut self, c: &KeptConfirmation) -> Result<(), StoreError> {
        let doc_id = c.doc_id.as_str();
        let kept =
            Batch::save_confirmation(self, doc_id, c.confirmer, c.version, &c.signed, c.forwarded)?;
        // One over the cap is not kept, so it is not listed as confirmed either.
        if c.forwarded && kept {
            // Ours: the status of a retraction lists who confirmed it.
            self.save_retraction_ack(doc_id, c.confirmer)?;
        }
        Ok(())
    }

    fn confirmations_forwarded(&mut self, items: &[(DocId, NodeId)]) -> Result<(), StoreError> {
        for (doc_id, confirmer) in items {
            self.mark_confirmation_forwarded(doc_id.as_str(), *confirmer)?;
        }
        Ok(())
    }

    fn record_delivery(
        &mut self,
        peer: NodeId,
        doc_id: &DocId,
        version: u64,
    ) -> Result<(), StoreError> {
        Batch::record_delivery(self, peer, doc_id.as_str(), version)
    }

    fn delete_delivery(&mut self, peer: NodeId, doc_id: &DocId) -> Result<(), StoreError> {
        Batch::delete_delivery(self, peer, doc_id.as_str())
    }

    fn save_resume_point(&mut self, peer: NodeId, point: ResumePoint) -> Result<(), StoreError> {
        Batch::save_resume_point(self, peer, point.epoch, point.seq)
    }

    fn save_acked_seq(
        &mut self,
        peer: NodeId,
        role: Role,
        acked: ResumePoint,
    ) -> Result<(), StoreError> {
        self.save_peer_ack_as(peer, role, acked.epoch, acked.seq)
    }
}
