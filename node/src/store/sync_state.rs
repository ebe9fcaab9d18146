//! Automerge sync state, one row per (peer, document).
//!
//! Automerge's sync protocol keeps a small `State` per peer per document:
//! what the peer is known to have. Saving it lets a reconnecting session pick
//! up where the last one stopped, so a reconnect costs what was missed rather
//! than a full exchange of the document. The bytes are Automerge's own
//! encoding (`State::encode`); the store never looks inside.
//!
//! The state is written only by a sync step's [`Batch`], in the same
//! transaction as the changes it describes: saved separately, a crash could
//! leave a state claiming changes the store never got. Deleting a replica
//! drops its states too (see `replicas.rs`).

use labnet_protocol::NodeId;
use rusqlite::params;

use super::batch::Batch;
use super::{Store, StoreError};

impl Store {
    /// Loads the sync state of one document with one peer, if any was saved.
    pub fn load_sync_state(
        &self,
        node_id: NodeId,
        doc_id: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.db().optional_row(
            "SELECT state FROM sync_state WHERE node_id = ?1 AND doc_id = ?2",
            params![node_id.to_string(), doc_id],
            |r| r.get(0),
        )
    }
}

impl Batch<'_> {
    /// Saves the Automerge sync state of one document with one peer.
    pub fn save_sync_state(
        &mut self,
        peer: NodeId,
        doc_id: &str,
        state: &[u8],
    ) -> Result<(), StoreError> {
        self.tx.execute(
            "INSERT INTO sync_state (node_id, doc_id, state) VALUES (?1, ?2, ?3)
             ON CONFLICT(node_id, doc_id) DO UPDATE SET state = excluded.state",
            params![peer.to_string(), doc_id, state],
        )?;
        Ok(())
    }

    /// Forgets the sync state of one document with one peer.
    pub fn delete_sync_state(&mut self, peer: NodeId, doc_id: &str) -> Result<(), StoreError> {
        self.tx.execute(
            "DELETE FROM sync_state WHERE node_id = ?1 AND doc_id = ?2",
            params![peer.to_string(), doc_id],
        )?;
        Ok(())
    }
}
