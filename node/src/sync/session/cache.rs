//! The session's cache of loaded documents.
//!
//! A document is loaded only while its sync runs: DESIGN.md measured 22–33 KiB
//! of memory per loaded document, so 10,000 of them loaded at once would cost
//! over 200 MiB. At most `SessionConfig::docs_loaded_max` are kept; the least
//! recently used is saved (what changed of a replica, and the sync state) and
//! dropped to make room.

use automerge::sync;
use automerge::{AutoCommit, ChangeHash};
use labnet_protocol::sync::DocId;
use tracing::warn;

use super::{sorted, Session, Side};
use crate::sync::{Effect, Event, ReplicaData, SyncView, ViewError};

/// A document loaded for a running sync, with its sync state.
pub(super) struct Loaded {
    pub(super) side: Side,
    pub(super) doc: AutoCommit,
    pub(super) state: sync::State,
    /// The state's encoding as last saved, so unchanged states are not rewritten.
    pub(super) saved_state: Option<Vec<u8>>,
    /// Replica: the heads of the copy as stored (`None`: not stored yet, so the
    /// next save is a snapshot). `save_after` these heads gives what is new.
    pub(super) saved_heads: Option<Vec<ChangeHash>>,
}

impl Session {
    pub(super) fn touch(&mut self, doc_id: &DocId) {
        if let Some(pos) = self.lru.iter().position(|d| d == doc_id) {
            self.lru.remove(pos);
        }
        self.lru.push_back(doc_id.clone());
    }

    /// Saves what changed of a loaded document and drops it from memory.
    pub(super) fn evict(&mut self, doc_id: &DocId) {
        if let Some(pos) = self.lru.iter().position(|d| d == doc_id) {
            self.lru.remove(pos);
        }
        if let Some(loaded) = self.cache.remove(doc_id) {
            self.flush(doc_id, loaded);
        }
    }

    /// Drops a loaded document without saving anything of it.
    pub(super) fn discard(&mut self, doc_id: &DocId) {
        self.cache.remove(doc_id);
        if let Some(pos) = self.lru.iter().position(|d| d == doc_id) {
            self.lru.remove(pos);
        }
    }

    pub(super) fn flush(&mut self, doc_id: &DocId, mut loaded: Loaded) {
        if loaded.side == Side::Replica {
            let heads = sorted(loaded.doc.get_heads());
            if loaded.saved_heads.as_ref() != Some(&heads) {
                let data = match &loaded.saved_heads {
                    None => ReplicaData::Snapshot(loaded.doc.save()),
                    Some(saved) => ReplicaData::Incremental(loaded.doc.save_after(saved)),
                };
                self.effects.push_back(Effect::SaveReplica {
                    doc_id: doc_id.clone(),
                    origin: self.info.peer,
                    heads: heads.clone(),
                    data,
                });
                self.events.push_back(Event::ReplicaChanged {
                    doc_id: doc_id.clone(),
                    heads,
                });
            }
        }
        self.save_state(doc_id, &mut loaded);
    }

    pub(super) fn save_state(&mut self, doc_id: &DocId, loaded: &mut Loaded) {
        let encoded = loaded.state.encode();
        if loaded.saved_state.as_ref() != Some(&encoded) {
            loaded.saved_state = Some(encoded.clone());
            self.effects.push_back(Effect::SaveSyncState {
                peer: self.info.peer,
                doc_id: doc_id.clone(),
                state: encoded,
            });
        }
    }

    /// Loads a document and its sync state into the cache (if not there yet),
    /// making room first. Returns whether it is now loaded.
    pub(super) fn load<V: SyncView + ?Sized>(
        &mut self,
        view: &V,
        doc_id: &DocId,
        side: Side,
    ) -> bool {
        if let Some(loaded) = self.cache.get(doc_id) {
            if loaded.side == side {
                self.touch(doc_id);
                return true;
            }
            // A document cannot be ours and the peer's; the caller checked, so
            // this is a stale entry: drop it.
            self.discard(doc_id);
        }
        let loaded: Result<Option<AutoCommit>, ViewError> = match side {
            Side::Origin => view.load_publication(doc_id),
            Side::Replica => view.load_replica(doc_id),
        };
        let (doc, saved_heads) = match (side, loaded) {
            (_, Ok(Some(mut doc))) => {
                let heads = sorted(doc.get_heads());
                (doc, Some(heads))
            }
            // A replica we do not hold yet starts empty and is saved as a snapshot.
            (Side::Replica, Ok(None)) => (AutoCommit::new(), None),
            (Side::Origin, Ok(None)) => {
                self.events.push_back(Event::LocalFailure {
                    doc_id: doc_id.clone(),
                    reason: "publication in the index but not in the store".into(),
                });
                return false;
            }
            (_, Err(e)) => {
                warn!(doc = %doc_id, error = %e, "cannot load document");
                self.events.push_back(Event::LocalFailure {
                    doc_id: doc_id.clone(),
                    reason: e.to_string(),
                });
                return false;
            }
        };
        let saved_state = view.sync_state(self.info.peer, doc_id);
        let mut state = saved_state
            .as_deref()
            .and_then(|b| sync::State::decode(b).ok())
            .unwrap_or_default();
        if side == Side::Origin {
            // Defence in depth: changes a replica sends are refused before they
            // get here, and a read-only state would not apply them anyway.
            state.set_read_only(true);
        }
        while self.cache.len() >= self.config.docs_loaded_max {
            let Some(oldest) = self.lru.front().cloned() else {
                break;
            };
            self.evict(&oldest);
        }
        self.cache.insert(
            doc_id.clone(),
            Loaded {
                side,
                doc,
                state,
                saved_state,
                saved_heads,
            },
        );
        self.touch(doc_id);
        true
    }
}
