//! The disclosure log: a line for everything that left the node.
//!
//! A city must be able to answer "what did we give away, to whom, and under
//! which anonymization settings". Every share, update and unshare of a
//! publication, and every version sent to a peer, appends one line to
//! `disclosures`; nothing ever edits or deletes one.
//!
//! Where the act is itself a store write, its line goes into the same
//! transaction, so the log can neither miss the act nor claim one that did not
//! happen: a share or update through the logged publication write in
//! `publications.rs`, a version sent during a sync step through
//! [`Batch::log_disclosure`]. Anything else is a write of its own, through
//! [`Store::log_disclosure`].
//!
//! A version is named by its heads in hex ([`heads_hex`](super::heads_hex));
//! the settings are the anonymizer's, as JSON, copied from the latest share
//! or update when a version is sent ([`Store::latest_disclosure_settings`]).

use labnet_protocol::NodeId;
use rusqlite::params;

use super::batch::Batch;
use super::db::Db;
use super::{unix_now, Store, StoreError};

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

/// The latest share, update or reissue of one publication: read for every
/// version sent, so it must stay an index search on `(doc_id, action)`
/// (`disclosures_by_doc_action`) however long the log grows; a test checks
/// its query plan.
pub(super) const LATEST_SETTINGS_SQL: &str = "SELECT settings FROM disclosures WHERE doc_id = ?1 AND action IN ('share', 'update', 'reissue') AND settings NOT LIKE '{\"reissued_as\"%' ORDER BY id DESC LIMIT 1";

impl Store {
    /// Appends a line to the disclosure log.
    pub fn log_disclosure(&mut self, entry: &NewDisclosure<'_>) -> Result<i64, StoreError> {
        self.write(|tx| insert_disclosure(tx, entry, unix_now()))
    }

    /// The anonymization settings recorded with a publication's latest share or
    /// update, so versions sent to peers are logged with the settings they were
    /// made under.
    pub fn latest_disclosure_settings(&self, doc_id: &str) -> Result<Option<String>, StoreError> {
        self.db()
            .optional_row(LATEST_SETTINGS_SQL, [doc_id], |r| r.get(0))
    }

    /// Disclosure-log lines, oldest first: all, or those sent to one peer, from a
    /// time on.
    pub fn disclosures(
        &self,
        peer: Option<NodeId>,
        since: Option<i64>,
    ) -> Result<Vec<Disclosure>, StoreError> {
        let db = self.db();
        let rows = db.rows(
            "SELECT id, at, action, doc_id, heads, node_id, scope, settings FROM disclosures
             WHERE (?1 IS NULL OR node_id = ?1) AND (?2 IS NULL OR at >= ?2) ORDER BY id",
            params![peer.map(|p| p.to_string()), since],
            |r| {
                Ok((
                    Disclosure {
                        id: r.get(0)?,
                        at: r.get(1)?,
                        action: r.get(2)?,
                        doc_id: r.get(3)?,
                        heads: r.get(4)?,
                        node_id: None,
                        scope: r.get(6)?,
                        settings: r.get(7)?,
                    },
                    r.get::<_, Option<String>>(5)?,
                ))
            },
        )?;
        rows.into_iter()
            .map(|(mut line, node_id)| {
                line.node_id = node_id
                    .map(|n| db.node_id(&n, format_args!("disclosure {}", line.id)))
                    .transpose()?;
                Ok(line)
            })
            .collect()
    }

    /// How many disclosure-log lines there are per action (for `/metrics`), without
    /// reading the lines.
    pub fn disclosure_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.db().rows(
            "SELECT action, COUNT(*) FROM disclosures GROUP BY action ORDER BY action",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }
}

impl Batch<'_> {
    /// Appends a line to the disclosure log, in this transaction.
    pub fn log_disclosure(&mut self, entry: &NewDisclosure<'_>) -> Result<(), StoreError> {
        insert_disclosure(self.tx, entry, self.now)?;
        Ok(())
    }
}

/// Appends `entry` inside an open transaction; returns its row id.
pub(super) fn insert_disclosure(
    tx: Db<'_>,
    entry: &NewDisclosure<'_>,
    now: i64,
) -> Result<i64, StoreError> {
    tx.execute(
        "INSERT INTO disclosures (at, action, doc_id, heads, node_id, scope, settings) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![now, entry.action, entry.doc_id, entry.heads, entry.node_id.map(|n| n.to_string()), entry.scope, entry.settings],
    )?;
    Ok(tx.last_insert_rowid())
}
