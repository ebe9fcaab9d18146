//! The in-memory store of a test node, seen by its sessions: a [`MemNode`]
//! is a [`SyncView`] and takes effects as an [`EffectSink`], the way the
//! SQLite store does ([`crate::sync::store_view`]), and a read can be made
//! to fail.

use automerge::AutoCommit;
use labnet_config::Role;
use labnet_protocol::statement::ScopeClass;
use labnet_protocol::sync::{DocId, ResumePoint};
use labnet_protocol::NodeId;

use super::{MemConfirmation, MemHeld, MemNode, MemPublication};
use crate::sync::{
    EffectSink, ForwardItem, HeldEntry, KeptConfirmation, ReceivedStatement, ReplicaData,
    SavedVersion, ServedEntry, SyncView, ViewError,
};

impl MemNode {
    fn check(&self) -> Result<(), ViewError> {
        if self.reads_fail {
            Err("disk I/O error (test)".into())
        } else {
            Ok(())
        }
    }

    fn own_entry(&self, doc_id: &DocId, p: &MemPublication) -> ServedEntry {
        ServedEntry {
            doc_id: doc_id.clone(),
            seq: p.seq,
            origin: self.id,
            version: p.seq,
            retracted: p.retracted,
            scope: Some(p.scope.clone()),
        }
    }

    fn relayed_entry(doc_id: &DocId, h: &MemHeld) -> Option<ServedEntry> {
        Some(ServedEntry {
            doc_id: doc_id.clone(),
            seq: h.relay_seq?,
            origin: h.origin,
            version: h.version,
            retracted: h.retracted,
            scope: None,
        })
    }

    fn store_statement(&mut self, doc_id: &DocId, s: &ReceivedStatement, retracted: bool) {
        let relay_seq = (s.scope_class == ScopeClass::Public).then(|| self.bump());
        let entry = self.held.entry(doc_id.clone()).or_insert(MemHeld {
            origin: s.origin,
            version: 0,
            class: s.scope_class,
            retracted,
            statement: Vec::new(),
            via: s.via,
            relay_seq: None,
            bytes: None,
            heads: Vec::new(),
        });
        entry.origin = s.origin;
        entry.version = s.version;
        entry.class = s.scope_class;
        entry.retracted = retracted;
        entry.statement = s.signed.clone();
        entry.via = s.via;
        entry.relay_seq = relay_seq;
    }
}

impl EffectSink for MemNode {
    type Error = std::convert::Infallible;

    fn held_version(&mut self, doc_id: &DocId) -> Result<Option<u64>, Self::Error> {
        Ok(self.held.get(doc_id).map(|h| h.version))
    }

    fn save_version(&mut self, version: &SavedVersion) -> Result<(), Self::Error> {
        let doc_id = &version.doc_id;
        let bytes = match &version.data {
            ReplicaData::Snapshot(bytes) => bytes.clone(),
            ReplicaData::Incremental(chunk) => {
                let mut bytes = self
                    .held
                    .get(doc_id)
                    .and_then(|h| h.bytes.clone())
                    .expect("incremental save of a copy we hold");
                bytes.extend_from_slice(chunk);
                bytes
            }
        };
        self.store_statement(doc_id, &version.statement, false);
        let held = self.held.get_mut(doc_id).unwrap();
        held.bytes = Some(bytes);
        let mut heads = version.heads.clone();
        heads.sort();
        held.heads = heads;
        Ok(())
    }

    fn save_tombstone(
        &mut self,
        doc_id: &DocId,
        statement: &ReceivedStatement,
    ) -> Result<(), Self::Error> {
        self.store_statement(doc_id, statement, true);
        let held = self.held.get_mut(doc_id).unwrap();
        held.bytes = None;
        held.heads.clear();
        Ok(())
    }

    fn withdrawn(&mut self, doc_id: &DocId) -> Result<(), Self::Error> {
        self.held.remove(doc_id);
        Ok(())
    }

    fn save_confirmation(&mut self, c: &KeptConfirmation) -> Result<(), Self::Error> {
        let key = (c.doc_id.clone(), c.confirmer);
        if self
            .confirmations
            .get(&key)
            .is_none_or(|kept| c.version > kept.version)
        {
            self.confirmations.insert(
                key,
                MemConfirmation {
                    version: c.version,
                    signed: c.signed.clone(),
                    forwarded: c.forwarded,
                },
            );
        }
        Ok(())
    }

    fn confirmations_forwarded(&mut self, items: &[(DocId, NodeId)]) -> Result<(), Self::Error> {
        for key in items {
            if let Some(c) = self.confirmations.get_mut(key) {
                c.forwarded = true;
            }
        }
        Ok(())
    }

    fn record_delivery(
        &mut self,
        peer: NodeId,
        doc_id: &DocId,
        _version: u64,
    ) -> Result<(), Self::Error> {
        self.deliveries.insert((peer, doc_id.clone()));
        Ok(())
    }

    fn delete_delivery(&mut self, peer: NodeId, doc_id: &DocId) -> Result<(), Self::Error> {
        self.deliveries.remove(&(peer, doc_id.clone()));
        Ok(())
    }

    fn save_resume_point(&mut self, peer: NodeId, point: ResumePoint) -> Result<(), Self::Error> {
        self.resume.insert(peer, point);
        Ok(())
    }

    fn save_acked_seq(
        &mut self,
        peer: NodeId,
        _role: Role,
        acked: ResumePoint,
    ) -> Result<(), Self::Error> {
        self.acked.insert(peer, acked.seq);
        Ok(())
    }
}

impl SyncView for MemNode {
    fn index_epoch(&self) -> Result<u64, ViewError> {
        self.check()?;
        Ok(self.epoch)
    }

    fn served_after(&self, after_seq: u64, limit: usize) -> Result<Vec<ServedEntry>, ViewError> {
        self.check()?;
        let mut rows: Vec<ServedEntry> = self
            .publications
            .iter()
            .filter(|(_, p)| p.seq > after_seq)
            .map(|(id, p)| self.own_entry(id, p))
            .chain(
                self.held
                    .iter()
                    .filter_map(|(id, h)| Self::relayed_entry(id, h))
                    .filter(|e| e.seq > after_seq),
            )
            .collect();
        rows.sort_by_key(|r| r.seq);
        rows.truncate(limit);
        Ok(rows)
    }

    fn served(&self, doc_id: &DocId) -> Result<Option<ServedEntry>, ViewError> {
        self.check()?;
        if let Some(p) = self.publications.get(doc_id) {
            return Ok(Some(self.own_entry(doc_id, p)));
        }
        Ok(self
            .held
            .get(doc_id)
            .and_then(|h| Self::relayed_entry(doc_id, h)))
    }

    fn statement(&self, doc_id: &DocId) -> Result<Option<Vec<u8>>, ViewError> {
        self.check()?;
        if let Some(p) = self.publications.get(doc_id) {
            return Ok(Some(p.statement.clone()));
        }
        Ok(self.held.get(doc_id).map(|h| h.statement.clone()))
    }

    fn load_served(&self, doc_id: &DocId) -> Result<Option<AutoCommit>, ViewError> {
        self.check()?;
        if let Some(p) = self.publications.get(doc_id) {
            return Ok(Some(AutoCommit::load(&p.bytes)?));
        }
        self.load_replica(doc_id)
    }

    fn held(&self, doc_id: &DocId) -> Result<Option<HeldEntry>, ViewError> {
        self.check()?;
        Ok(self.held.get(doc_id).map(|h| HeldEntry {
            origin: h.origin,
            version: h.version,
            retracted: h.retracted,
            heads: h.heads.clone(),
        }))
    }

    fn replica_usage(&self, origin: NodeId) -> Result<crate::sync::ReplicaUsage, ViewError> {
        self.check()?;
        let copies = self
            .held
            .values()
            .filter(|h| h.origin == origin)
            .filter_map(|h| h.bytes.as_ref());
        let mut usage = crate::sync::ReplicaUsage::default();
        for bytes in copies {
            usage.count += 1;
            usage.bytes += bytes.len() as u64;
        }
        Ok(usage)
    }

    fn load_replica(&self, doc_id: &DocId) -> Result<Option<AutoCommit>, ViewError> {
        self.check()?;
        match self.held.get(doc_id).and_then(|h| h.bytes.as_ref()) {
            Some(bytes) => Ok(Some(AutoCommit::load(bytes)?)),
            None => Ok(None),
        }
    }

    fn resume_point(&self, peer: NodeId) -> Result<Option<ResumePoint>, ViewError> {
        self.check()?;
        Ok(self.resume.get(&peer).copied())
    }

    fn delivered(&self, peer: NodeId, doc_id: &DocId) -> Result<bool, ViewError> {
        self.check()?;
        Ok(self.deliveries.contains(&(peer, doc_id.clone())))
    }

    fn peer_acked(&self, peer: NodeId) -> Result<Option<ResumePoint>, ViewError> {
        self.check()?;
        Ok(self.acked.get(&peer).map(|&seq| ResumePoint {
            epoch: self.epoch,
            seq,
        }))
    }

    fn confirmations_to_forward(
        &self,
        via: NodeId,
        limit: usize,
    ) -> Result<Vec<ForwardItem>, ViewError> {
        self.check()?;
        Ok(self
            .confirmations
            .iter()
            .filter(|((doc_id, _), c)| {
                !c.forwarded
                    && self
                        .held
                        .get(doc_id)
                        .is_some_and(|h| h.retracted && h.via == via)
            })
            .take(limit)
            .map(|((doc_id, confirmer), c)| ForwardItem {
                doc_id: doc_id.clone(),
                confirmer: *confirmer,
                signed: c.signed.clone(),
            })
            .collect())
    }
}
