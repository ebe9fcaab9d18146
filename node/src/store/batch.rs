//! A batch: several writes that commit together, for a sync step.
//!
//! A sync session turns what a peer sent into effects: replica changes to
//! store, sync state to remember, a resume point to move, a disclosure to log.
//! They must land together or not at all, or a crash could leave a resume
//! point past changes that were never stored, and the node would never ask
//! for them again. So the driver collects one step's effects and hands them to
//! [`Store::batch`], which runs them through the store's one write helper
//! ([`Store::write`]) as a single transaction.
//!
//! [`Batch`] is only that open transaction and the time the step is stamped
//! with. Its methods live with their tables: replicas, resume points and acks
//! in `replicas.rs`, statements and deliveries in `statements.rs`, the disclosure log in
//! `disclosures.rs`.

use super::db::Db;
use super::{unix_now, Store, StoreError};

/// Writes inside one transaction; see [`Store::batch`].
pub struct Batch<'t> {
    /// The open transaction every method writes through.
    pub(super) tx: Db<'t>,
    /// One timestamp for the whole step, so its rows agree on when it happened.
    pub(super) now: i64,
}

impl Store {
    /// Runs `f` with a [`Batch`] inside one transaction, committed only if `f`
    /// returns `Ok`: how a sync session's effects are persisted.
    pub fn batch<R>(
        &mut self,
        f: impl FnOnce(&mut Batch<'_>) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let now = unix_now();
        self.write(|tx| f(&mut Batch { tx, now }))
    }
}
