//! Signed statements, retraction confirmations and deliveries.
//!
//! Three tables behind version 2 of the wire:
//!
//! - `statements`: the origin-signed statement of every publication this node
//!   holds or serves. For our own publications the store signs one with the
//!   node key in the same transaction as the index row it describes (its
//!   version number is the row's index `seq`, which only grows). For other
//!   origins' it keeps the statement a peer delivered with the version, and
//!   who delivered it (`via`). A retracted statement stays as a tombstone. The
//!   `public` statements of other origins get a `relay_seq` in our index
//!   numbering: they are what this node relays.
//! - `confirmations`: signed retraction confirmations, collected by the origin
//!   and forwarded by everyone else towards it (through each tombstone's `via`).
//!   Anyone can make a key and sign a confirmation, so a peer or relay could
//!   grow this table without end for one retraction: at most
//!   [`CONFIRMATIONS_PER_RETRACTION_MAX`] are kept per publication.
//! - `deliveries`: which version of our publications each peer was sent.
//!
//! The store never verifies a peer's statement: the sync session does that
//! before it emits the effect that writes one. What it guarantees is that our
//! own statements and our index never disagree.

use std::sync::Arc;

use automerge::ChangeHash;
use labnet_protocol::statement::{ScopeClass, Signed, SignedStatement, Signer, VersionStatement};
use labnet_protocol::sync::DocId;
use labnet_protocol::NodeId;
use rusqlite::params;

use super::batch::Batch;
use super::db::{Db, FromRow};
use super::{Store, StoreError};

/// The most confirmations kept for one retracted publication. A retraction
/// is confirmed once by every node that held a copy: the cities and
/// subscribers of a network DESIGN.md sizes at a few dozen cities, each with
/// some subscribers, stay far below 1,024. At about 200 bytes a row, the cap
/// bounds what one retraction can cost to 200 KiB however many keys a peer
/// mints. A confirmer already kept may still send a newer version.
pub const CONFIRMATIONS_PER_RETRACTION_MAX: usize = 1024;

/// A statement as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementRow {
    /// The publication.
    pub doc_id: String,
    /// Its origin (the signer).
    pub origin: NodeId,
    /// The signed version number.
    pub version: u64,
    /// The signed scope class.
    pub scope_class: ScopeClass,
    /// The statement retracts the publication.
    pub retracted: bool,
    /// The encoded [`SignedStatement`].
    pub signed: Vec<u8>,
    /// Who delivered it (`None`: we are the origin).
    pub via: Option<NodeId>,
    /// Our index number when we relay it.
    pub relay_seq: Option<u64>,
}

/// A statement a peer delivered, checked by the session, to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedStatement {
    /// The origin.
    pub origin: NodeId,
    /// The signed version number.
    pub version: u64,
    /// The signed scope class.
    pub scope_class: ScopeClass,
    /// The encoded statement.
    pub signed: Vec<u8>,
    /// The peer that delivered it.
    pub via: NodeId,
}

/// A confirmation waiting to be forwarded towards its publication's origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingConfirmation {
    /// The retracted publication.
    pub doc_id: String,
    /// Who confirmed.
    pub confirmer: NodeId,
    /// The encoded signed confirmation.
    pub signed: Vec<u8>,
}

/// The scope class of a scope as `share` writes it (`public`, `partners`,
/// `nodes:...`).
pub fn scope_class_of(scope: &str) -> ScopeClass {
    match scope {
        "public" => ScopeClass::Public,
        "partners" => ScopeClass::Partners,
        _ => ScopeClass::Named,
    }
}

const STATEMENT_COLUMNS: &str =
    "doc_id, origin, version, scope_class, retracted, signed, via, relay_seq";

/// A statement row as the query returns it, before its ids are parsed.
pub(super) type StatementColumns = (
    String,
    String,
    i64,
    String,
    i64,
    Vec<u8>,
    Option<String>,
    Option<i64>,
);

impl FromRow for StatementRow {
    type Columns = StatementColumns;

    fn columns(r: &rusqlite::Row<'_>) -> rusqlite::Result<StatementColumns> {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
            r.get(7)?,
        ))
    }

    fn parse(db: Db<'_>, c: StatementColumns) -> Result<StatementRow, StoreError> {
        let (doc_id, origin, version, class, retracted, signed, via, relay_seq) = c;
        let origin = db.node_id(&origin, format_args!("statement {doc_id} origin"))?;
        let via = via
            .map(|v| db.node_id(&v, format_args!("statement {doc_id} via")))
            .transpose()?;
        let scope_class = ScopeClass::from_name(&class)
            .ok_or_else(|| db.corrupt(format!("statement {doc_id} has scope class '{class}'")))?;
        Ok(StatementRow {
            doc_id,
            origin,
            version: version as u64,
            scope_class,
            retracted: retracted != 0,
            signed,
            via,
            relay_seq: relay_seq.map(|s| s as u64),
        })
    }
}

impl Store {
    /// Gives the store the node key, which signs our publications' statements.
    /// A store without one refuses to publish.
    pub fn set_signer(&mut self, signer: Arc<dyn Signer>) {
        self.signer = Some(signer);
    }

    /// The node key, or the error that says a store opened without one cannot
    /// publish.
    pub(super) fn signer(&self) -> Result<Arc<dyn Signer>, StoreError> {
        self.signer.clone().ok_or_else(|| {
            self.db().corrupt(
                "no node key to sign publications with: open the store through its data directory"
                    .to_string(),
            )
        })
    }

    /// The statement held for a publication.
    pub fn statement(&self, doc_id: &str) -> Result<Option<StatementRow>, StoreError> {
        self.db().record(
            &format!("SELECT {STATEMENT_COLUMNS} FROM statements WHERE doc_id = ?1"),
            [doc_id],
        )
    }

    /// Every statement held, ours and others', by id.
    pub fn statements(&self) -> Result<Vec<StatementRow>, StoreError> {
        self.db().records(
            &format!("SELECT {STATEMENT_COLUMNS} FROM statements ORDER BY doc_id"),
            [],
        )
    }

    /// Up to `limit` relayed statements (other origins' public ones) with
    /// `relay_seq > after_seq`, in ascending order.
    pub fn relayed_after(
        &self,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<StatementRow>, StoreError> {
        self.db().records_after(
            &format!(
                "SELECT {STATEMENT_COLUMNS} FROM statements WHERE relay_seq > ?1 ORDER BY relay_seq LIMIT ?2"
            ),
            after_seq,
            limit,
        )
    }

    /// Who confirmed deleting a publication, with the version they acted on.
    pub fn confirmations(&self, doc_id: &str) -> Result<Vec<(NodeId, u64)>, StoreError> {
        let db = self.db();
        let rows: Vec<(String, i64)> = db.rows(
            "SELECT confirmer, version FROM confirmations WHERE doc_id = ?1 ORDER BY confirmer",
            [doc_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        rows.into_iter()
            .map(|(c, v)| {
                Ok((
                    db.node_id(&c, format_args!("confirmation of {doc_id}"))?,
                    v as u64,
                ))
            })
            .collect()
    }

    /// Confirmations not yet forwarded whose tombstone came from `via`: what
    /// the session with `via` sends on towards the origin.
    pub fn confirmations_to_forward(
        &self,
        via: NodeId,
        limit: usize,
    ) -> Result<Vec<PendingConfirmation>, StoreError> {
        let db = self.db();
        let rows: Vec<(String, String, Vec<u8>)> = db.rows(
            "SELECT c.doc_id, c.confirmer, c.signed FROM confirmations c
             JOIN statements s ON s.doc_id = c.doc_id
             WHERE c.forwarded = 0 AND s.via = ?1 AND s.retracted = 1
             ORDER BY c.doc_id, c.confirmer LIMIT ?2",
            params![via.to_string(), limit.min(i64::MAX as usize) as i64],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        rows.into_iter()
            .map(|(doc_id, confirmer, signed)| {
                let confirmer = db.node_id(&confirmer, format_args!("confirmation of {doc_id}"))?;
                Ok(PendingConfirmation {
                    doc_id,
                    confirmer,
                    signed,
                })
            })
            .collect()
    }

    /// The version of our publication `peer` was last sent, if any.
    pub fn delivered_version(&self, peer: NodeId, doc_id: &str) -> Result<Option<u64>, StoreError> {
        self.db().optional_row(
            "SELECT version FROM deliveries WHERE node_id = ?1 AND doc_id = ?2",
            params![peer.to_string(), doc_id],
            |r| Ok(r.get::<_, i64>(0)? as u64),
        )
    }

    /// The peers that were sent one of our publications.
    pub fn delivered_to(&self, doc_id: &str) -> Result<Vec<NodeId>, StoreError> {
        self.db().node_ids(
            "SELECT node_id FROM deliveries WHERE doc_id = ?1 ORDER BY node_id",
            [doc_id],
            |_| format!("delivery of {doc_id}"),
        )
    }

    /// Signs a first statement for every publication of ours that has none:
    /// publications shared before the wire carried statements. Runs at every
    /// start; after the first it finds nothing to do. Returns how many it signed.
    pub fn sign_missing_statements(&mut self) -> Result<usize, StoreError> {
        let signer = self.signer()?;
        let now = super::unix_now();
        self.write(|tx| {
            let rows: Vec<(String, i64, String, i64, Vec<u8>)> = tx.rows(
                "SELECT p.doc_id, p.seq, p.scope, p.retracted, d.heads
                 FROM publication_index p LEFT JOIN documents d ON d.doc_id = p.doc_id
                 LEFT JOIN statements s ON s.doc_id = p.doc_id
                 WHERE s.doc_id IS NULL",
                [],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get::<_, Option<Vec<u8>>>(4)?.unwrap_or_default(),
                    ))
                },
            )?;
            for (doc_id, seq, scope, retracted, heads) in &rows {
                let heads = tx.heads(heads, format_args!("publication {doc_id} heads"))?;
                issue_statement(
                    tx,
                    signer.as_ref(),
                    doc_id,
                    *seq as u64,
                    &heads,
                    scope,
                    *retracted != 0,
                    now,
                )?;
            }
            Ok(rows.len())
        })
    }
}

/// Signs and stores the statement of one of our publications' versions,
/// inside the transaction that gave the version its index number.
#[allow(clippy::too_many_arguments)]
pub(super) fn issue_statement(
    tx: Db<'_>,
    signer: &dyn Signer,
    doc_id: &str,
    version: u64,
    heads: &[ChangeHash],
    scope: &str,
    retracted: bool,
    now: i64,
) -> Result<(), StoreError> {
    let publication =
        DocId::new(doc_id).map_err(|e| tx.corrupt(format!("publication id {doc_id}: {e}")))?;
    let mut heads: Vec<[u8; 32]> = heads.iter().map(|h| h.0).collect();
    heads.sort();
    heads.dedup();
    let body = VersionStatement {
        publication,
        origin_key: signer.public_key(),
        version,
        heads,
        scope: scope_class_of(scope),
        retracted,
        issued_at: now.max(0) as u64,
    };
    let origin = body.origin();
    if labnet_protocol::sync::origin_of(&body.publication) != Some(origin) {
        // A statement no peer could verify: the id names another node.
        return Err(tx.corrupt(format!(
            "publication {doc_id} does not name this node, whose key signs it"
        )));
    }
    let signed: SignedStatement = Signed::sign(body, signer);
    tx.execute(
        "INSERT INTO statements (doc_id, origin, version, scope_class, retracted, signed, via, relay_seq, received_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, NULL, ?7)
         ON CONFLICT(doc_id) DO UPDATE SET origin = excluded.origin, version = excluded.version,
            scope_class = excluded.scope_class, retracted = excluded.retracted,
            signed = excluded.signed, via = NULL, relay_seq = NULL, received_at = excluded.received_at",
        params![
            doc_id,
            origin.to_string(),
            version as i64,
            scope_class_of(scope).as_str(),
            i64::from(retracted),
            signed.encode(),
            now
        ],
    )?;
    Ok(())
}

impl Batch<'_> {
    /// The version of the statement held of another origin's publication,
    /// as this transaction sees it.
    pub fn received_version(&self, doc_id: &str) -> Result<Option<u64>, StoreError> {
        let version: Option<i64> = self.tx.optional_row(
            "SELECT version FROM statements WHERE doc_id = ?1 AND via IS NOT NULL",
            [doc_id],
            |r| r.get(0),
        )?;
        Ok(version.map(|v| v as u64))
    }

    /// Stores a peer-delivered statement (a new version or a tombstone) and,
    /// when it is public, gives it the next number of our index so that our
    /// sessions relay it.
    pub fn save_received_statement(
        &mut self,
        doc_id: &str,
        statement: &ReceivedStatement,
        retracted: bool,
    ) -> Result<(), StoreError> {
        let relay_seq = if statement.scope_class == ScopeClass::Public {
            Some(super::publications::next_seq(self.tx)? as i64)
        } else {
            None
        };
        self.tx.execute(
            "INSERT INTO statements (doc_id, origin, version, scope_class, retracted, signed, via, relay_seq, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT(doc_id) DO UPDATE SET origin = excluded.origin, version = excluded.version,
                scope_class = excluded.scope_class, retracted = excluded.retracted, signed = excluded.signed,
                via = excluded.via, relay_seq = excluded.relay_seq, received_at = excluded.received_at",
            params![
                doc_id,
                statement.origin.to_string(),
                statement.version as i64,
                statement.scope_class.as_str(),
                i64::from(retracted),
                statement.signed,
                statement.via.to_string(),
                relay_seq,
                self.now
            ],
        )?;
        Ok(())
    }

    /// Forgets the statement of another origin's publication (it left our
    /// scope). Our own statements are never deleted this way.
    pub fn delete_received_statement(&mut self, doc_id: &str) -> Result<(), StoreError> {
        self.tx.execute(
            "DELETE FROM statements WHERE doc_id = ?1 AND via IS NOT NULL",
            [doc_id],
        )?;
        Ok(())
    }

    /// Keeps a signed confirmation (once per publication and confirmer, and
    /// for a new confirmer only while the publication has fewer than
    /// [`CONFIRMATIONS_PER_RETRACTION_MAX`]). Returns whether it was kept;
    /// one over the cap is dropped, and the caller acknowledges it anyway
    /// (it is signed, so dropping it loses nothing but a line of the audit).
    pub fn save_confirmation(
        &mut self,
        doc_id: &str,
        confirmer: NodeId,
        version: u64,
        signed: &[u8],
        forwarded: bool,
    ) -> Result<bool, StoreError> {
        let changed = self.tx.execute(
            "INSERT INTO confirmations (doc_id, confirmer, version, signed, forwarded, at)
             SELECT ?1, ?2, ?3, ?4, ?5, ?6
             WHERE EXISTS (SELECT 1 FROM confirmations WHERE doc_id = ?1 AND confirmer = ?2)
                OR (SELECT COUNT(*) FROM confirmations WHERE doc_id = ?1) < ?7
             ON CONFLICT(doc_id, confirmer) DO UPDATE SET version = excluded.version,
                signed = excluded.signed, forwarded = excluded.forwarded, at = excluded.at
             WHERE excluded.version > confirmations.version",
            params![
                doc_id,
                confirmer.to_string(),
                version as i64,
                signed,
                i64::from(forwarded),
                self.now,
                CONFIRMATIONS_PER_RETRACTION_MAX as i64
            ],
        )?;
        if changed == 0 {
            let held: bool = self
                .tx
                .optional_row(
                    "SELECT 1 FROM confirmations WHERE doc_id = ?1 AND confirmer = ?2",
                    params![doc_id, confirmer.to_string()],
                    |_| Ok(true),
                )?
                .unwrap_or(false);
            if !held {
                tracing::warn!(
                    doc = %doc_id,
                    max = CONFIRMATIONS_PER_RETRACTION_MAX,
                    "confirmation dropped: the retraction has as many as are kept"
                );
            }
            return Ok(held);
        }
        Ok(true)
    }

    /// Marks a confirmation as forwarded towards its origin.
    pub fn mark_confirmation_forwarded(
        &mut self,
        doc_id: &str,
        confirmer: NodeId,
    ) -> Result<(), StoreError> {
        self.tx.execute(
            "UPDATE confirmations SET forwarded = 1 WHERE doc_id = ?1 AND confirmer = ?2",
            params![doc_id, confirmer.to_string()],
        )?;
        Ok(())
    }

    /// Records that `peer` was sent `version` of our publication.
    pub fn record_delivery(
        &mut self,
        peer: NodeId,
        doc_id: &str,
        version: u64,
    ) -> Result<(), StoreError> {
        self.tx.execute(
            "INSERT INTO deliveries (node_id, doc_id, version, at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(node_id, doc_id) DO UPDATE SET version = excluded.version, at = excluded.at",
            params![peer.to_string(), doc_id, version as i64, self.now],
        )?;
        Ok(())
    }

    /// Forgets that `peer` holds our publication (it confirmed deleting it).
    pub fn delete_delivery(&mut self, peer: NodeId, doc_id: &str) -> Result<(), StoreError> {
        self.tx.execute(
            "DELETE FROM deliveries WHERE node_id = ?1 AND doc_id = ?2",
            params![peer.to_string(), doc_id],
        )?;
        Ok(())
    }
}
