//! The node's durable store: one SQLite file, spoken to in the domain's terms.
//!
//! Everything a node must not forget lives here: its Automerge documents, the
//! peers its admin approved or revoked, the nodes waiting for a decision, invites,
//! the publication index peers sync from, the replicas and sync progress of other
//! nodes' publications, and the disclosure log of what left the node.
//!
//! Durability rules, each for a reason:
//! - WAL mode, so readers (the CLI) never block the daemon's writes;
//! - `synchronous = FULL`: with NORMAL, a committed transaction can be lost on
//!   power failure, and we acknowledge writes to operators and peers;
//! - every write goes through one helper, `Store::write`, which runs it as one
//!   IMMEDIATE transaction and returns only after its commit, so "returned Ok"
//!   means "on disk" (the kill -9 test in `tests/` checks this);
//! - the schema moves forward only, through the migrations in `schema.rs`.
//!
//! The [`Store`] is a plain synchronous object with a single owner. Async code
//! reaches it through a [`StoreHandle`], which runs each call on tokio's blocking
//! pool so SQLite's fsyncs never stall the network tasks.
//!
//! # Map
//!
//! One file per group of tables; each adds its methods to [`Store`] (reads and
//! single writes) and, where sync sessions write that group, to [`Batch`]:
//!
//! | file              | tables                                         |
//! |-------------------|------------------------------------------------|
//! | `documents.rs`    | `documents`, `document_changes`: snapshots plus incremental chunks, compaction |
//! | `peers.rs`        | `peers`, `peer_events`, `pending_peers`        |
//! | `invites.rs`      | `invites`                                      |
//! | `disclosures.rs`  | `disclosures`, the log of what left the node   |
//! | `publications.rs` | `publication_index`, `index_meta`: our publications as peers see them |
//! | `replicas.rs`     | `replicas`, `resume_points`, `peer_acks`, `retraction_acks` |
//! | `statements.rs`   | `statements`, `confirmations`, `deliveries`: signed versions and who holds what |
//!
//! And the plumbing they share: `db.rs` (statements with the store's error
//! mapping), `batch.rs` (the [`Batch`] a sync step writes through), `codec.rs`
//! (how heads are stored and logged), `schema.rs` (the migrations). This file
//! holds the [`Store`] itself: opening, configuring, migrating, the write
//! helper, and the [`StoreHandle`].

mod batch;
mod codec;
mod db;
mod disclosures;
mod documents;
mod invites;
mod peers;
mod publications;
mod replicas;
mod schema;
mod statements;

pub use batch::Batch;
pub use codec::{decode_heads, encode_heads, heads_hex};
pub use disclosures::{Disclosure, NewDisclosure};
pub use documents::{DocumentCounts, DocumentKind, CHANGES_BEFORE_COMPACTION};
pub use invites::{InviteRecord, InviteRefusal};
pub use peers::{PeerRecord, PeerState, PendingPeer};
pub use publications::{IndexRow, PublicationSave};
pub use statements::{
    scope_class_of, PendingConfirmation, ReceivedStatement, StatementRow,
    CONFIRMATIONS_PER_RETRACTION_MAX,
};

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

use db::{sqlite_error, Db};

/// The store's file name inside the data directory.
pub const DB_FILE: &str = "labnet.db";

/// How long a writer waits for another process's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("store {path}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// SQLite's reason.
        source: Box<rusqlite::Error>,
    },
    /// The database was written by a newer labnet.
    #[error(
        "store {path} has schema version {found}, this labnet knows up to {known}: upgrade labnet"
    )]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// The file's version.
        found: i64,
        /// The newest version this binary can read.
        known: i64,
    },
    /// A stored document did not load as Automerge.
    #[error("document {doc_id} in the store is damaged: {source}")]
    Document {
        /// The document.
        doc_id: String,
        /// Automerge's reason.
        source: Box<automerge::AutomergeError>,
    },
    /// A value in the store is not what the schema allows (a bug or hand edits).
    #[error("store {path}: {what}")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What was wrong.
        what: String,
    },
}

/// The node's SQLite store. One owner; see [`StoreHandle`] for async callers.
pub struct Store {
    /// The one connection. Owning it (not a pool) is what makes the store
    /// single-writer inside this process; other processes (the CLI on a
    /// stopped node) are serialized by SQLite's lock and [`BUSY_TIMEOUT`].
    conn: Connection,
    /// The database file, named in every error so an operator knows which
    /// data directory is in trouble.
    path: PathBuf,
    /// The node key that signs our publications' statements; a store opened
    /// without one (a reader, a test) cannot publish.
    signer: Option<Arc<dyn labnet_protocol::statement::Signer>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// The current time in unix seconds, as the store records it.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Store {
    /// Opens (creating if needed) the store in `dir` and migrates it forward.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Store::open_file(&dir.join(DB_FILE))
    }

    /// Opens the store at an explicit file path.
    pub fn open_file(path: &Path) -> Result<Store, StoreError> {
        let conn = Connection::open(path).map_err(sqlite_error(path))?;
        Store::configured(conn, path)
    }

    /// The store over a fresh writable connection to `path`, configured and
    /// migrated: how every writable open ends, whatever opened the file.
    fn configured(conn: Connection, path: &Path) -> Result<Store, StoreError> {
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
            signer: None,
        };
        store.configure()?;
        store.migrate()?;
        Ok(store)
    }

    /// Opens a read-only connection to a store another [`Store`] in this
    /// process owns and has migrated: what a sync session reads through, so
    /// its reads never wait behind the writer's lock (WAL lets readers run
    /// beside a writer) nor hold up anyone else.
    pub fn open_reader(path: &Path) -> Result<Store, StoreError> {
        use rusqlite::OpenFlags;
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sqlite_error(path))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(sqlite_error(path))?;
        let store = Store {
            conn,
            path: path.to_path_buf(),
            signer: None,
        };
        let found = store.schema_version()?;
        let known = schema::MIGRATIONS.len() as i64;
        if found != known {
            return Err(store.db().corrupt(format!(
                "a reader needs schema version {known}, the file has {found}"
            )));
        }
        Ok(store)
    }

    /// Runs `read` in one read transaction, so that every query it makes sees
    /// the same snapshot of the file. A sync session reads through its own
    /// connection while the writer commits beside it: two queries in
    /// autocommit mode could see a write land between them (our publication
    /// at seq 2 missed by the first, a relayed one at seq 3 seen by the
    /// second), and the inventory would then claim to cover seq 2 without
    /// it, for good. Inside a transaction already, `read` just runs in it.
    pub fn read_snapshot<T>(
        &self,
        read: impl FnOnce(&Store) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if !self.conn.is_autocommit() {
            return read(self);
        }
        let snapshot = self
            .conn
            .unchecked_transaction()
            .map_err(sqlite_error(&self.path))?;
        let out = read(self)?;
        // Nothing was written: ending the transaction only lets the snapshot go.
        snapshot.commit().map_err(sqlite_error(&self.path))?;
        Ok(out)
    }

    /// The connection for reads and pragmas, with the store's error mapping.
    /// Writes to tables never use it: they go through [`Store::write`].
    fn db(&self) -> Db<'_> {
        Db::new(&self.conn, &self.path)
    }

    /// Runs `f` in one IMMEDIATE transaction and commits only if it returns
    /// `Ok`; on `Err` (or a panic) the transaction is rolled back when dropped.
    ///
    /// Every write of the store goes through here, so each public write is
    /// all-or-nothing and has committed, under `synchronous = FULL`, by the time
    /// it returns. IMMEDIATE takes the write lock before the first read: a
    /// deferred transaction that reads and then writes could fail halfway with
    /// "database is locked" when another process wrote in between, and the busy
    /// timeout cannot help it then.
    fn write<R>(
        &mut self,
        f: impl FnOnce(Db<'_>) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let sqlite = sqlite_error(&self.path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&sqlite)?;
        let result = f(Db::new(&tx, &self.path))?;
        tx.commit().map_err(&sqlite)?;
        Ok(result)
    }

    fn configure(&mut self) -> Result<(), StoreError> {
        self.conn
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(sqlite_error(&self.path))?;
        let db = self.db();
        // journal_mode answers with the mode in force, which is not WAL when
        // the file cannot use it: check rather than assume.
        let mode: String = db.row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(db.corrupt(format!("could not enable WAL (got {mode})")));
        }
        db.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
    }

    /// Brings the schema to the newest version, all steps in one transaction:
    /// a crash mid-way leaves the old version, never half of a new one.
    fn migrate(&mut self) -> Result<(), StoreError> {
        let known = schema::MIGRATIONS.len() as i64;
        self.write(|tx| {
            let found: i64 = tx.row("PRAGMA user_version", [], |r| r.get(0))?;
            if found > known {
                return Err(StoreError::TooNew {
                    path: tx.path().to_path_buf(),
                    found,
                    known,
                });
            }
            for (i, sql) in schema::MIGRATIONS.iter().enumerate().skip(found as usize) {
                tx.execute_batch(sql)?;
                tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))?;
            }
            Ok(())
        })
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.db().row("PRAGMA user_version", [], |r| r.get(0))
    }

    /// The database file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes on disk: the database plus its write-ahead log.
    pub fn size_bytes(&self) -> u64 {
        let wal = self.path.with_extension("db-wal");
        [self.path.as_path(), wal.as_path()]
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum()
    }

    /// Runs SQLite's own consistency check; `Ok(())` when it answers "ok".
    pub fn integrity_check(&self) -> Result<(), StoreError> {
        let db = self.db();
        let answer: String = db.row("PRAGMA integrity_check", [], |r| r.get(0))?;
        if answer == "ok" {
            Ok(())
        } else {
            Err(db.corrupt(format!("integrity check: {answer}")))
        }
    }

    /// Folds the WAL into the main file, as a clean shutdown should.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.db().execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
    }
}

/// A cloneable, async handle to the one [`Store`].
///
/// Each call runs on tokio's blocking pool, one at a time (SQLite serializes
/// writers anyway), so an fsync never stalls a network task.
#[derive(Clone, Debug)]
pub struct StoreHandle {
    /// The store; the mutex is what makes "one call at a time" true.
    store: Arc<Mutex<Store>>,
}

impl StoreHandle {
    /// Wraps a store for sharing among tasks.
    pub fn new(store: Store) -> StoreHandle {
        StoreHandle {
            store: Arc::new(Mutex::new(store)),
        }
    }

    /// Runs `f` with the store on the blocking pool and returns its result.
    pub async fn call<R, F>(&self, f: F) -> R
    where
        F: FnOnce(&mut Store) -> R + Send + 'static,
        R: Send + 'static,
    {
        let store = Arc::clone(&self.store);
        let run = move || {
            // A panic while holding the lock poisons it; the store itself is still
            // consistent (SQLite rolled the transaction back), so carry on.
            let mut guard = store
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&mut guard)
        };
        match tokio::task::spawn_blocking(run).await {
            Ok(r) => r,
            Err(join_error) if join_error.is_panic() => {
                std::panic::resume_unwind(join_error.into_panic())
            }
            // Cancelled: the runtime is shutting down and drops this task's
            // caller too; there is no result to give, and nothing to panic about.
            Err(_) => std::future::pending().await,
        }
    }

    /// Runs `f` with the store on the current thread (for non-async callers).
    pub fn blocking<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        let mut guard = self
            .store
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut guard)
    }
}

#[cfg(test)]
mod tests;
