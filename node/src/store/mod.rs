//! The node's durable store: one SQLite file, spoken to in the domain's terms.
//!
//! Everything a node must not forget lives here: its Automerge documents, the
//! peers its admin approved or revoked, the nodes waiting for a decision, invites,
//! per-peer sync state, and the disclosure log of what left the node.
//!
//! Durability rules, each for a reason:
//! - WAL mode, so readers (the CLI) never block the daemon's writes;
//! - `synchronous = FULL`: with NORMAL, a committed transaction can be lost on
//!   power failure, and we acknowledge writes to operators and peers;
//! - every public write is one transaction, and returns only after its commit, so
//!   "returned Ok" means "on disk" (the kill -9 test in `tests/` checks this);
//! - the schema moves forward only, through the migrations in `schema.rs`.
//!
//! The [`Store`] is a plain synchronous object with a single owner. Async code
//! reaches it through a [`StoreHandle`], which runs each call on tokio's blocking
//! pool so SQLite's fsyncs never stall the network tasks.
//!
//! Map: [`documents`](Store::save_document) (snapshots plus incremental changes,
//! with compaction), [`peers`](Store::approve_peer), [`pending`](Store::record_pending),
//! [`invites`](Store::create_invite), [`sync state`](Store::load_sync_state),
//! [`disclosures`](Store::log_disclosure).

mod schema;
mod sync_tables;

pub use sync_tables::{Batch, IndexRow, PublicationSave};

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use automerge::AutoCommit;
use labnet_config::Role;
use labnet_protocol::NodeId;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

/// The store's file name inside the data directory.
pub const DB_FILE: &str = "labnet.db";

/// Incremental chunks a document may gather before it is compacted into a snapshot.
/// Loading replays every chunk, so this bounds load time; compaction rewrites the
/// whole document, so it should not happen on every save either.
pub const CHANGES_BEFORE_COMPACTION: i64 = 64;

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
    fn as_str(self) -> &'static str {
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

/// Where a peer stands with this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PeerState {
    /// May connect and receive what its role allows.
    Approved,
    /// Refused; the row is kept for the audit trail.
    Revoked,
}

/// A peer an admin has decided about.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PeerRecord {
    /// The peer's identity.
    pub node_id: NodeId,
    /// The name it gave in its last handshake (or the invite), if known.
    pub name: Option<String>,
    /// What it may receive.
    pub role: Role,
    /// Approved or revoked.
    pub state: PeerState,
    /// Where to dial it (`host:port`), if known.
    pub address: Option<String>,
    /// When the current state was decided (unix seconds).
    pub decided_at: i64,
    /// Which command or event decided it, for the audit trail.
    pub decided_by: String,
    /// When it last completed a handshake (unix seconds).
    pub last_seen: Option<i64>,
}

/// A node that connected without being approved.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PendingPeer {
    /// The node's identity, from its certificate.
    pub node_id: NodeId,
    /// The name it gave (unverified: shown to the admin as a hint).
    pub name: String,
    /// The address it came from.
    pub address: String,
    /// First attempt (unix seconds).
    pub first_seen: i64,
    /// Latest attempt (unix seconds).
    pub last_seen: i64,
    /// How many times it tried.
    pub attempts: i64,
}

/// A stored invite (never the secret itself).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InviteRecord {
    /// Short public id, for `invite list` and `invite revoke`.
    pub invite_id: String,
    /// The role the joiner gets.
    pub role: Role,
    /// Created (unix seconds).
    pub created_at: i64,
    /// Expires (unix seconds).
    pub expires_at: i64,
    /// Joins left.
    pub uses_left: i64,
    /// Revoked (unix seconds), if it was.
    pub revoked_at: Option<i64>,
}

/// Why an invite secret was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InviteRefusal {
    /// No invite has this secret: forged, or from another node.
    #[error("no such invite: the token was not issued by this node")]
    Unknown,
    /// Past its expiry.
    #[error("the invite has expired")]
    Expired,
    /// Every use was taken.
    #[error("the invite has been used up")]
    UsedUp,
    /// The inviter revoked it.
    #[error("the invite was revoked")]
    Revoked,
}

/// One line of the disclosure log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Disclosure {
    /// Row id, increasing.
    pub id: i64,
    /// When (unix seconds).
    pub at: i64,
    /// `share`, `update`, `unshare` or `sent`.
    pub action: String,
    /// The publication.
    pub doc_id: String,
    /// Its version: Automerge heads, hex, comma-separated.
    pub heads: String,
    /// The peer it went to (`sent`), or none for local actions.
    pub node_id: Option<NodeId>,
    /// The publication's scope at the time.
    pub scope: String,
    /// The anonymization settings used, as JSON.
    pub settings: String,
}

/// A new disclosure-log line.
#[derive(Debug, Clone)]
pub struct NewDisclosure<'a> {
    /// `share`, `update`, `unshare` or `sent`.
    pub action: &'a str,
    /// The publication.
    pub doc_id: &'a str,
    /// Its version.
    pub heads: &'a str,
    /// The peer it went to, for `sent`.
    pub node_id: Option<NodeId>,
    /// Scope at the time.
    pub scope: &'a str,
    /// Anonymization settings, JSON.
    pub settings: &'a str,
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

/// The node's SQLite store. One owner; see [`StoreHandle`] for async callers.
pub struct Store {
    conn: Connection,
    path: PathBuf,
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
        let path = path.to_path_buf();
        let conn =
            Connection::open(&path).map_err(|source: rusqlite::Error| StoreError::Sqlite {
                path: path.clone(),
                source: Box::new(source),
            })?;
        let mut store = Store { conn, path };
        store.configure()?;
        store.migrate()?;
        Ok(store)
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |source: rusqlite::Error| StoreError::Sqlite {
            path: self.path.clone(),
            source: Box::new(source),
        }
    }

    fn configure(&mut self) -> Result<(), StoreError> {
        self.conn.busy_timeout(BUSY_TIMEOUT).map_err(self.err())?;
        let mode: String = self
            .conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(self.err())?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Corrupt {
                path: self.path.clone(),
                what: format!("could not enable WAL (got {mode})"),
            });
        }
        self.conn
            .execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
            .map_err(self.err())?;
        Ok(())
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let known = schema::MIGRATIONS.len() as i64;
        let path = self.path.clone();
        let err = |source: rusqlite::Error| StoreError::Sqlite {
            path: path.clone(),
            source: Box::new(source),
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let version: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(err)?;
        if version > known {
            return Err(StoreError::TooNew {
                path: path.clone(),
                found: version,
                known,
            });
        }
        for (i, sql) in schema::MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.execute_batch(sql).map_err(err)?;
            tx.pragma_update(None, "user_version", i as i64 + 1)
                .map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(())
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(self.err())
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
        let answer: String = self
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .map_err(self.err())?;
        if answer == "ok" {
            Ok(())
        } else {
            Err(StoreError::Corrupt {
                path: self.path.clone(),
                what: format!("integrity check: {answer}"),
            })
        }
    }

    /// Folds the WAL into the main file, as a clean shutdown should.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .map_err(self.err())
    }

    // ---- documents -------------------------------------------------------------

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
        for (doc_id, kind, doc) in docs.iter_mut() {
            save_in(&tx, &path, doc_id, *kind, doc, now)?;
        }
        tx.commit().map_err(err)?;
        Ok(())
    }

    /// The heads the store holds for a document, without loading it.
    pub fn document_heads(
        &self,
        doc_id: &str,
    ) -> Result<Option<Vec<automerge::ChangeHash>>, StoreError> {
        let raw: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT heads FROM documents WHERE doc_id = ?1",
                [doc_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.err())?;
        raw.map(|bytes| {
            decode_heads(&bytes).ok_or_else(|| StoreError::Corrupt {
                path: self.path.clone(),
                what: format!("document {doc_id} has malformed heads"),
            })
        })
        .transpose()
    }

    /// Loads a document: its snapshot with every saved change applied.
    pub fn load_document(
        &self,
        doc_id: &str,
    ) -> Result<Option<(DocumentKind, AutoCommit)>, StoreError> {
        let Some((kind, mut bytes)) = self
            .conn
            .query_row(
                "SELECT kind, snapshot FROM documents WHERE doc_id = ?1",
                [doc_id],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?)),
            )
            .optional()
            .map_err(self.err())?
        else {
            return Ok(None);
        };
        let kind = DocumentKind::parse(&kind).ok_or_else(|| StoreError::Corrupt {
            path: self.path.clone(),
            what: format!("document {doc_id} has kind {kind}"),
        })?;
        let mut stmt = self
            .conn
            .prepare_cached("SELECT chunk FROM document_changes WHERE doc_id = ?1 ORDER BY seq")
            .map_err(self.err())?;
        let chunks = stmt
            .query_map([doc_id], |r| r.get::<_, Vec<u8>>(0))
            .map_err(self.err())?;
        for chunk in chunks {
            bytes.extend_from_slice(&chunk.map_err(self.err())?);
        }
        let doc = AutoCommit::load(&bytes).map_err(|source| StoreError::Document {
            doc_id: doc_id.to_string(),
            source: Box::new(source),
        })?;
        Ok(Some((kind, doc)))
    }

    /// Deletes a document and its changes. Returns whether it existed.
    pub fn delete_document(&mut self, doc_id: &str) -> Result<bool, StoreError> {
        let n = self
            .conn
            .execute("DELETE FROM documents WHERE doc_id = ?1", [doc_id])
            .map_err(self.err())?;
        Ok(n > 0)
    }

    /// Ids of the documents of one kind, in id order.
    pub fn document_ids(&self, kind: DocumentKind) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT doc_id FROM documents WHERE kind = ?1 ORDER BY doc_id")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([kind.as_str()], |r| r.get(0))
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// Ids of the documents of one kind with when each last changed here (unix seconds).
    pub fn documents_changed_at(
        &self,
        kind: DocumentKind,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT doc_id, updated_at FROM documents WHERE kind = ?1 ORDER BY doc_id",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map([kind.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// How many incremental chunks a document has gathered since its last compaction.
    pub fn pending_changes(&self, doc_id: &str) -> Result<i64, StoreError> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM document_changes WHERE doc_id = ?1",
                [doc_id],
                |r| r.get(0),
            )
            .map_err(self.err())
    }

    /// How many documents of each kind the store holds.
    pub fn document_counts(&self) -> Result<DocumentCounts, StoreError> {
        let mut counts = DocumentCounts::default();
        let mut stmt = self
            .conn
            .prepare_cached("SELECT kind, COUNT(*) FROM documents GROUP BY kind")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .map_err(self.err())?;
        for row in rows {
            let (kind, n) = row.map_err(self.err())?;
            match DocumentKind::parse(&kind) {
                Some(DocumentKind::Private) => counts.private = n,
                Some(DocumentKind::Publication) => counts.publication = n,
                Some(DocumentKind::Replica) => counts.replica = n,
                None => {}
            }
        }
        Ok(counts)
    }

    // ---- peers -----------------------------------------------------------------

    /// Approves a peer (new, pending or revoked) with a role, and removes it from
    /// the pending list. `by` records which command or event decided it.
    pub fn approve_peer(
        &mut self,
        node_id: NodeId,
        role: Role,
        name: Option<&str>,
        address: Option<&str>,
        by: &str,
    ) -> Result<PeerRecord, StoreError> {
        let path = self.path.clone();
        let err = |source: rusqlite::Error| StoreError::Sqlite {
            path: path.clone(),
            source: Box::new(source),
        };
        let now = unix_now();
        let id = node_id.to_string();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let pending: Option<(String, String)> = tx
            .query_row(
                "SELECT name, address FROM pending_peers WHERE node_id = ?1",
                [&id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(err)?;
        let name = name
            .map(str::to_string)
            .or_else(|| pending.as_ref().map(|p| p.0.clone()));
        let address = address
            .map(str::to_string)
            .or_else(|| pending.as_ref().map(|p| p.1.clone()));
        tx.execute(
            "INSERT INTO peers (node_id, name, role, state, address, decided_at, decided_by)
             VALUES (?1, ?2, ?3, 'approved', ?4, ?5, ?6)
             ON CONFLICT(node_id) DO UPDATE SET
                name = COALESCE(excluded.name, peers.name),
                role = excluded.role, state = 'approved',
                address = COALESCE(excluded.address, peers.address),
                decided_at = excluded.decided_at, decided_by = excluded.decided_by",
            params![id, name, role.as_str(), address, now, by],
        )
        .map_err(err)?;
        tx.execute("DELETE FROM pending_peers WHERE node_id = ?1", [&id])
            .map_err(err)?;
        tx.execute(
            "INSERT INTO peer_events (node_id, at, event, by) VALUES (?1, ?2, ?3, ?4)",
            params![id, now, format!("approved as {role}"), by],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        self.peer(node_id)?.ok_or_else(|| StoreError::Corrupt {
            path: self.path.clone(),
            what: "approved peer vanished".into(),
        })
    }

    /// Revokes a peer, keeping its record. Returns the record, or `None` if the
    /// node was never approved (revoking a pending node also refuses it for good).
    pub fn revoke_peer(
        &mut self,
        node_id: NodeId,
        by: &str,
    ) -> Result<Option<PeerRecord>, StoreError> {
        let path = self.path.clone();
        let err = |source: rusqlite::Error| StoreError::Sqlite {
            path: path.clone(),
            source: Box::new(source),
        };
        let now = unix_now();
        let id = node_id.to_string();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let pending: Option<(String, String)> = tx
            .query_row(
                "SELECT name, address FROM pending_peers WHERE node_id = ?1",
                [&id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(err)?;
        let updated = tx
            .execute(
                "UPDATE peers SET state = 'revoked', decided_at = ?2, decided_by = ?3 WHERE node_id = ?1",
                params![id, now, by],
            )
            .map_err(err)?;
        if updated == 0 {
            let Some((name, address)) = pending else {
                return Ok(None);
            };
            // A pending node can be refused outright; it is recorded as revoked so
            // its next attempt is refused instead of reappearing as pending.
            tx.execute(
                "INSERT INTO peers (node_id, name, role, state, address, decided_at, decided_by)
                 VALUES (?1, ?2, 'partner', 'revoked', ?3, ?4, ?5)",
                params![id, name, address, now, by],
            )
            .map_err(err)?;
        }
        tx.execute("DELETE FROM pending_peers WHERE node_id = ?1", [&id])
            .map_err(err)?;
        tx.execute(
            "INSERT INTO peer_events (node_id, at, event, by) VALUES (?1, ?2, 'revoked', ?3)",
            params![id, now, by],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        self.peer(node_id)
    }

    /// The record of one peer.
    pub fn peer(&self, node_id: NodeId) -> Result<Option<PeerRecord>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT node_id, name, role, state, address, decided_at, decided_by, last_seen FROM peers WHERE node_id = ?1",
            )
            .map_err(self.err())?;
        let row = stmt
            .query_row([node_id.to_string()], raw_peer)
            .optional()
            .map_err(self.err())?;
        row.map(|r| self.peer_from_raw(r)).transpose()
    }

    /// Every peer decided about, approved first, then by name.
    pub fn peers(&self) -> Result<Vec<PeerRecord>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT node_id, name, role, state, address, decided_at, decided_by, last_seen FROM peers
                 ORDER BY state, name, node_id",
            )
            .map_err(self.err())?;
        let rows = stmt.query_map([], raw_peer).map_err(self.err())?;
        let raw: Vec<RawPeer> = rows.collect::<Result<_, _>>().map_err(self.err())?;
        raw.into_iter().map(|r| self.peer_from_raw(r)).collect()
    }

    /// Records that an approved peer completed a handshake: its name and when.
    pub fn peer_seen(
        &mut self,
        node_id: NodeId,
        name: &str,
        address: Option<&str>,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE peers SET last_seen = ?2, name = ?3, address = COALESCE(?4, address) WHERE node_id = ?1",
                params![node_id.to_string(), unix_now(), name, address],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// The audit trail of one peer: (when, event, by), oldest first.
    pub fn peer_events(&self, node_id: NodeId) -> Result<Vec<(i64, String, String)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT at, event, by FROM peer_events WHERE node_id = ?1 ORDER BY id")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([node_id.to_string()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    fn peer_from_raw(&self, r: RawPeer) -> Result<PeerRecord, StoreError> {
        let corrupt = |what: String| StoreError::Corrupt {
            path: self.path.clone(),
            what,
        };
        Ok(PeerRecord {
            node_id: r
                .node_id
                .parse()
                .map_err(|e| corrupt(format!("peer id {}: {e}", r.node_id)))?,
            name: r.name,
            role: r.role.parse().map_err(corrupt)?,
            state: match r.state.as_str() {
                "approved" => PeerState::Approved,
                "revoked" => PeerState::Revoked,
                other => return Err(corrupt(format!("peer state {other}"))),
            },
            address: r.address,
            decided_at: r.decided_at,
            decided_by: r.decided_by,
            last_seen: r.last_seen,
        })
    }

    // ---- pending requests ------------------------------------------------------

    /// Records a connection attempt from a node nobody approved.
    ///
    /// The list holds at most `bound` nodes: when a new node arrives at a full list,
    /// the one heard from longest ago is dropped, so a flood of fresh keys cannot
    /// grow the store without limit (the newest requests are the ones an admin is
    /// most likely waiting for). Returns whether the node is now on the list.
    pub fn record_pending(
        &mut self,
        node_id: NodeId,
        name: &str,
        address: &str,
        bound: usize,
    ) -> Result<bool, StoreError> {
        if bound == 0 {
            return Ok(false);
        }
        let path = self.path.clone();
        let err = |source: rusqlite::Error| StoreError::Sqlite {
            path: path.clone(),
            source: Box::new(source),
        };
        let now = unix_now();
        let id = node_id.to_string();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let updated = tx
            .execute(
                "UPDATE pending_peers SET name = ?2, address = ?3, last_seen = ?4, attempts = attempts + 1 WHERE node_id = ?1",
                params![id, name, address, now],
            )
            .map_err(err)?;
        if updated == 0 {
            let count: i64 = tx
                .query_row("SELECT COUNT(*) FROM pending_peers", [], |r| r.get(0))
                .map_err(err)?;
            let excess = count + 1 - bound as i64;
            if excess > 0 {
                tx.execute(
                    "DELETE FROM pending_peers WHERE node_id IN
                     (SELECT node_id FROM pending_peers ORDER BY last_seen, first_seen LIMIT ?1)",
                    [excess],
                )
                .map_err(err)?;
            }
            tx.execute(
                "INSERT INTO pending_peers (node_id, name, address, first_seen, last_seen, attempts) VALUES (?1, ?2, ?3, ?4, ?4, 1)",
                params![id, name, address, now],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(true)
    }

    /// The pending requests, newest first.
    pub fn pending_peers(&self) -> Result<Vec<PendingPeer>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT node_id, name, address, first_seen, last_seen, attempts FROM pending_peers ORDER BY last_seen DESC, node_id",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })
            .map_err(self.err())?;
        let mut out = Vec::new();
        for row in rows {
            let (id, name, address, first_seen, last_seen, attempts) = row.map_err(self.err())?;
            let node_id = id.parse().map_err(|e| StoreError::Corrupt {
                path: self.path.clone(),
                what: format!("pending id {id}: {e}"),
            })?;
            out.push(PendingPeer {
                node_id,
                name,
                address,
                first_seen,
                last_seen,
                attempts,
            });
        }
        Ok(out)
    }

    // ---- invites ---------------------------------------------------------------

    /// Stores a new invite: only the hash of its secret.
    pub fn create_invite(
        &mut self,
        invite_id: &str,
        secret_hash: &[u8],
        role: Role,
        expires_at: i64,
        uses: i64,
    ) -> Result<InviteRecord, StoreError> {
        let now = unix_now();
        self.conn
            .execute(
                "INSERT INTO invites (invite_id, secret_hash, role, created_at, expires_at, uses_left) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![invite_id, secret_hash, role.as_str(), now, expires_at, uses],
            )
            .map_err(self.err())?;
        Ok(InviteRecord {
            invite_id: invite_id.to_string(),
            role,
            created_at: now,
            expires_at,
            uses_left: uses,
            revoked_at: None,
        })
    }

    /// Every invite, newest first.
    pub fn invites(&self) -> Result<Vec<InviteRecord>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT invite_id, role, created_at, expires_at, uses_left, revoked_at FROM invites ORDER BY created_at DESC, invite_id",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })
            .map_err(self.err())?;
        let mut out = Vec::new();
        for row in rows {
            let (invite_id, role, created_at, expires_at, uses_left, revoked_at) =
                row.map_err(self.err())?;
            let role = role.parse().map_err(|what| StoreError::Corrupt {
                path: self.path.clone(),
                what,
            })?;
            out.push(InviteRecord {
                invite_id,
                role,
                created_at,
                expires_at,
                uses_left,
                revoked_at,
            });
        }
        Ok(out)
    }

    /// Revokes an invite. Returns whether an unrevoked invite had this id.
    pub fn revoke_invite(&mut self, invite_id: &str) -> Result<bool, StoreError> {
        let n = self
            .conn
            .execute(
                "UPDATE invites SET revoked_at = ?2 WHERE invite_id = ?1 AND revoked_at IS NULL",
                params![invite_id, unix_now()],
            )
            .map_err(self.err())?;
        Ok(n > 0)
    }

    /// Spends one use of the invite whose secret hashes to `secret_hash`, if it is
    /// valid at `now`; returns its role. Check and spend are one transaction, so
    /// two joiners racing for the last use cannot both get it.
    ///
    /// The lookup is by hash, so comparing secrets is left to the hash function:
    /// an attacker learns nothing from timing about a secret they do not know.
    pub fn redeem_invite(
        &mut self,
        secret_hash: &[u8],
        now: i64,
    ) -> Result<Result<(String, Role), InviteRefusal>, StoreError> {
        let path = self.path.clone();
        let err = |source: rusqlite::Error| StoreError::Sqlite {
            path: path.clone(),
            source: Box::new(source),
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let row: Option<(String, String, i64, i64, Option<i64>)> = tx
            .query_row(
                "SELECT invite_id, role, expires_at, uses_left, revoked_at FROM invites WHERE secret_hash = ?1",
                [secret_hash],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()
            .map_err(err)?;
        let Some((invite_id, role, expires_at, uses_left, revoked_at)) = row else {
            return Ok(Err(InviteRefusal::Unknown));
        };
        if revoked_at.is_some() {
            return Ok(Err(InviteRefusal::Revoked));
        }
        if now >= expires_at {
            return Ok(Err(InviteRefusal::Expired));
        }
        if uses_left <= 0 {
            return Ok(Err(InviteRefusal::UsedUp));
        }
        tx.execute(
            "UPDATE invites SET uses_left = uses_left - 1 WHERE invite_id = ?1",
            [&invite_id],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        let role = role.parse().map_err(|what| StoreError::Corrupt {
            path: path.clone(),
            what,
        })?;
        Ok(Ok((invite_id, role)))
    }

    // ---- sync state ------------------------------------------------------------

    /// Loads the sync state of one document with one peer, if any was saved.
    pub fn load_sync_state(
        &self,
        node_id: NodeId,
        doc_id: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.conn
            .query_row(
                "SELECT state FROM sync_state WHERE node_id = ?1 AND doc_id = ?2",
                params![node_id.to_string(), doc_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.err())
    }

    // ---- disclosure log --------------------------------------------------------

    /// Appends a line to the disclosure log.
    pub fn log_disclosure(&mut self, entry: &NewDisclosure<'_>) -> Result<i64, StoreError> {
        insert_disclosure(&self.conn, entry, unix_now()).map_err(self.err())?;
        Ok(self.conn.last_insert_rowid())
    }

    /// The anonymization settings recorded with a publication's latest share or
    /// update, so versions sent to peers are logged with the settings they were
    /// made under.
    pub fn latest_disclosure_settings(&self, doc_id: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row(
                "SELECT settings FROM disclosures WHERE doc_id = ?1 AND action IN ('share', 'update') ORDER BY id DESC LIMIT 1",
                [doc_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.err())
    }

    /// Disclosure-log lines, oldest first: all, or those sent to one peer, from a
    /// time on.
    pub fn disclosures(
        &self,
        peer: Option<NodeId>,
        since: Option<i64>,
    ) -> Result<Vec<Disclosure>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, at, action, doc_id, heads, node_id, scope, settings FROM disclosures
                 WHERE (?1 IS NULL OR node_id = ?1) AND (?2 IS NULL OR at >= ?2) ORDER BY id",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map(params![peer.map(|p| p.to_string()), since], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, String>(7)?,
                ))
            })
            .map_err(self.err())?;
        let mut out = Vec::new();
        for row in rows {
            let (id, at, action, doc_id, heads, node_id, scope, settings) =
                row.map_err(self.err())?;
            let node_id = node_id
                .map(|n| n.parse::<NodeId>())
                .transpose()
                .map_err(|e| StoreError::Corrupt {
                    path: self.path.clone(),
                    what: format!("disclosure {id}: {e}"),
                })?;
            out.push(Disclosure {
                id,
                at,
                action,
                doc_id,
                heads,
                node_id,
                scope,
                settings,
            });
        }
        Ok(out)
    }
}

fn insert_disclosure(
    conn: &Connection,
    entry: &NewDisclosure<'_>,
    now: i64,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO disclosures (at, action, doc_id, heads, node_id, scope, settings) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![now, entry.action, entry.doc_id, entry.heads, entry.node_id.map(|n| n.to_string()), entry.scope, entry.settings],
    )?;
    Ok(())
}

/// Writes one document's unsaved part inside an open transaction.
fn save_in(
    tx: &rusqlite::Transaction<'_>,
    path: &Path,
    doc_id: &str,
    kind: DocumentKind,
    doc: &mut AutoCommit,
    now: i64,
) -> Result<(), StoreError> {
    let err = |source: rusqlite::Error| StoreError::Sqlite {
        path: path.to_path_buf(),
        source: Box::new(source),
    };
    let corrupt = |what: String| StoreError::Corrupt {
        path: path.to_path_buf(),
        what,
    };
    let existing: Option<(String, Vec<u8>)> = tx
        .query_row(
            "SELECT kind, heads FROM documents WHERE doc_id = ?1",
            [doc_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(err)?;
    let Some((stored_kind, stored_heads)) = existing else {
        tx.execute(
            "INSERT INTO documents (doc_id, kind, snapshot, heads, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            params![doc_id, kind.as_str(), doc.save(), encode_heads(&doc.get_heads()), now],
        )
        .map_err(err)?;
        return Ok(());
    };
    if stored_kind != kind.as_str() {
        return Err(corrupt(format!(
            "document {doc_id} is {stored_kind}, cannot save it as {}",
            kind.as_str()
        )));
    }
    let stored_heads = decode_heads(&stored_heads)
        .ok_or_else(|| corrupt(format!("document {doc_id} has malformed heads")))?;
    // Another writer (a second CLI session, say) saved changes this document has
    // not seen: merge them in first, so the stored heads stay the heads of
    // everything stored and both sessions' edits survive.
    if stored_heads
        .iter()
        .any(|h| doc.get_change_by_hash(h).is_none())
    {
        let mut stored = load_in(tx, path, doc_id)?;
        doc.merge(&mut stored)
            .map_err(|source| StoreError::Document {
                doc_id: doc_id.to_string(),
                source: Box::new(source),
            })?;
    }
    let encoded_heads = encode_heads(&doc.get_heads());
    if encode_heads(&stored_heads) == encoded_heads {
        return Ok(());
    }
    let chunk = doc.save_after(&stored_heads);
    let (count, last): (i64, Option<i64>) = tx
        .query_row(
            "SELECT COUNT(*), MAX(seq) FROM document_changes WHERE doc_id = ?1",
            [doc_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(err)?;
    if count + 1 >= CHANGES_BEFORE_COMPACTION {
        tx.execute("DELETE FROM document_changes WHERE doc_id = ?1", [doc_id])
            .map_err(err)?;
        tx.execute(
            "UPDATE documents SET snapshot = ?2, heads = ?3, updated_at = ?4 WHERE doc_id = ?1",
            params![doc_id, doc.save(), encoded_heads, now],
        )
        .map_err(err)?;
    } else {
        tx.execute(
            "INSERT INTO document_changes (doc_id, seq, chunk) VALUES (?1, ?2, ?3)",
            params![doc_id, last.unwrap_or(0) + 1, chunk],
        )
        .map_err(err)?;
        tx.execute(
            "UPDATE documents SET heads = ?2, updated_at = ?3 WHERE doc_id = ?1",
            params![doc_id, encoded_heads, now],
        )
        .map_err(err)?;
    }
    Ok(())
}

/// Loads a document inside an open transaction.
fn load_in(
    tx: &rusqlite::Transaction<'_>,
    path: &Path,
    doc_id: &str,
) -> Result<AutoCommit, StoreError> {
    let err = |source: rusqlite::Error| StoreError::Sqlite {
        path: path.to_path_buf(),
        source: Box::new(source),
    };
    let mut bytes: Vec<u8> = tx
        .query_row(
            "SELECT snapshot FROM documents WHERE doc_id = ?1",
            [doc_id],
            |r| r.get(0),
        )
        .map_err(err)?;
    let mut stmt = tx
        .prepare_cached("SELECT chunk FROM document_changes WHERE doc_id = ?1 ORDER BY seq")
        .map_err(err)?;
    let chunks = stmt
        .query_map([doc_id], |r| r.get::<_, Vec<u8>>(0))
        .map_err(err)?;
    for chunk in chunks {
        bytes.extend_from_slice(&chunk.map_err(err)?);
    }
    AutoCommit::load(&bytes).map_err(|source| StoreError::Document {
        doc_id: doc_id.to_string(),
        source: Box::new(source),
    })
}

/// Heads as stored: 32-byte hashes, concatenated.
pub fn encode_heads(heads: &[automerge::ChangeHash]) -> Vec<u8> {
    heads.iter().flat_map(|h| h.0).collect()
}

/// Reads heads stored by [`encode_heads`]; `None` if the length is not a multiple of 32.
pub fn decode_heads(bytes: &[u8]) -> Option<Vec<automerge::ChangeHash>> {
    if !bytes.len().is_multiple_of(32) {
        return None;
    }
    bytes
        .chunks_exact(32)
        .map(|c| <[u8; 32]>::try_from(c).ok().map(automerge::ChangeHash))
        .collect()
}

type RawPeer = RawPeerRow;

/// A peers row as SQLite returns it, before its text columns are parsed.
struct RawPeerRow {
    node_id: String,
    name: Option<String>,
    role: String,
    state: String,
    address: Option<String>,
    decided_at: i64,
    decided_by: String,
    last_seen: Option<i64>,
}

fn raw_peer(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawPeerRow> {
    Ok(RawPeerRow {
        node_id: r.get(0)?,
        name: r.get(1)?,
        role: r.get(2)?,
        state: r.get(3)?,
        address: r.get(4)?,
        decided_at: r.get(5)?,
        decided_by: r.get(6)?,
        last_seen: r.get(7)?,
    })
}

/// A cloneable, async handle to the one [`Store`].
///
/// Each call runs on tokio's blocking pool, one at a time (SQLite serializes
/// writers anyway), so an fsync never stalls a network task.
#[derive(Clone, Debug)]
pub struct StoreHandle {
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
            Err(join_error) => std::panic::resume_unwind(join_error.into_panic()),
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
