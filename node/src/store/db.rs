//! Statements with the store's error mapping: what every table file speaks.
//!
//! rusqlite reports a bare [`rusqlite::Error`]; an operator needs to know which
//! database file it came from, so each one becomes a [`StoreError::Sqlite`]
//! naming the path. Doing that at every call site took a `map_err` per
//! statement and a closure per method; [`Db`] does it once.
//!
//! A [`Db`] is a connection plus the file's path, and it is the same type
//! whether the connection is the store's own (reads, outside a transaction) or
//! an open transaction ([`Store::write`](super::Store::write) hands one to its
//! closure): a `rusqlite::Transaction` is a `Connection` while it is open, so a
//! helper written against `Db` works in both places and cannot tell a read
//! from a write.
//!
//! Values SQLite returns but that the schema cannot type (node ids, roles,
//! heads) are parsed here too, into [`StoreError::Corrupt`] when they are not
//! what the code wrote: a bug or a hand edit, never a peer's input.

use std::fmt::Display;
use std::path::Path;

use automerge::ChangeHash;
use labnet_config::Role;
use labnet_protocol::NodeId;
use rusqlite::{params, Connection, OptionalExtension, Params, Row};

use super::codec::decode_heads;
use super::StoreError;

/// The store's one mapping of SQLite errors: the error, with the file it came from.
pub(super) fn sqlite_error(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |source| StoreError::Sqlite {
        path: path.to_path_buf(),
        source: Box::new(source),
    }
}

/// A connection (or an open transaction) and the path its errors name.
///
/// `Copy`, so helpers take it by value like the two references it is.
#[derive(Clone, Copy)]
pub(super) struct Db<'c> {
    conn: &'c Connection,
    path: &'c Path,
}

impl<'c> Db<'c> {
    /// Wraps `conn`, which is the store's connection or a transaction on it.
    pub(super) fn new(conn: &'c Connection, path: &'c Path) -> Db<'c> {
        Db { conn, path }
    }

    /// The database file.
    pub(super) fn path(self) -> &'c Path {
        self.path
    }

    /// A result of rusqlite's, with its error mapped to this file's.
    fn checked<T>(self, result: rusqlite::Result<T>) -> Result<T, StoreError> {
        result.map_err(sqlite_error(self.path))
    }

    /// Runs one statement; returns how many rows it changed.
    pub(super) fn execute(self, sql: &str, params: impl Params) -> Result<usize, StoreError> {
        self.checked(self.conn.execute(sql, params))
    }

    /// Runs several statements with no parameters (pragmas, migrations).
    pub(super) fn execute_batch(self, sql: &str) -> Result<(), StoreError> {
        self.checked(self.conn.execute_batch(sql))
    }

    /// The first row of a query, or `None` when it returns none.
    pub(super) fn optional_row<T>(
        self,
        sql: &str,
        params: impl Params,
        map: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Option<T>, StoreError> {
        self.checked(self.conn.query_row(sql, params, map).optional())
    }

    /// The one row a query must return. No row is SQLite's own
    /// `QueryReturnedNoRows`, as `query_row` reports it.
    pub(super) fn row<T>(
        self,
        sql: &str,
        params: impl Params,
        map: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        self.optional_row(sql, params, map)?
            .ok_or_else(|| sqlite_error(self.path)(rusqlite::Error::QueryReturnedNoRows))
    }

    /// Every row of a query, in the order it returns them. The statement is
    /// cached: list queries are the ones status pages and sync steps repeat.
    pub(super) fn rows<T>(
        self,
        sql: &str,
        params: impl Params,
        map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StoreError> {
        let sqlite = sqlite_error(self.path);
        let mut stmt = self.conn.prepare_cached(sql).map_err(&sqlite)?;
        let rows = stmt.query_map(params, map).map_err(&sqlite)?;
        rows.collect::<Result<_, _>>().map_err(&sqlite)
    }

    /// The first record a query returns, or `None` when it returns none.
    pub(super) fn record<T: FromRow>(
        self,
        sql: &str,
        params: impl Params,
    ) -> Result<Option<T>, StoreError> {
        self.optional_row(sql, params, T::columns)?
            .map(|columns| T::parse(self, columns))
            .transpose()
    }

    /// Every record a query returns, in its order.
    pub(super) fn records<T: FromRow>(
        self,
        sql: &str,
        params: impl Params,
    ) -> Result<Vec<T>, StoreError> {
        self.rows(sql, params, T::columns)?
            .into_iter()
            .map(|columns| T::parse(self, columns))
            .collect()
    }

    /// One page of records from a query whose `?1` is the sequence number to
    /// start after and `?2` the page size: the index walks of sync steps.
    pub(super) fn records_after<T: FromRow>(
        self,
        sql: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<T>, StoreError> {
        // SQLite's LIMIT is an i64; a page that large is every row anyway.
        let limit = limit.min(i64::MAX as usize) as i64;
        self.records(sql, params![after_seq as i64, limit])
    }

    /// The node ids a one-column query returns; `what` names a malformed one
    /// in the error.
    pub(super) fn node_ids(
        self,
        sql: &str,
        params: impl Params,
        what: impl Fn(&str) -> String,
    ) -> Result<Vec<NodeId>, StoreError> {
        let ids: Vec<String> = self.rows(sql, params, |r| r.get(0))?;
        ids.iter().map(|id| self.node_id(id, what(id))).collect()
    }

    /// The rowid of the last row this connection inserted.
    pub(super) fn last_insert_rowid(self) -> i64 {
        self.conn.last_insert_rowid()
    }

    /// A value in the file is not what the code writes.
    pub(super) fn corrupt(self, what: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            path: self.path.to_path_buf(),
            what: what.into(),
        }
    }

    /// A stored node id; `what` names the row in the error.
    pub(super) fn node_id(self, text: &str, what: impl Display) -> Result<NodeId, StoreError> {
        text.parse()
            .map_err(|e| self.corrupt(format!("{what}: {e}")))
    }

    /// A stored role.
    pub(super) fn role(self, text: &str) -> Result<Role, StoreError> {
        text.parse().map_err(|what: String| self.corrupt(what))
    }

    /// Stored heads (see [`encode_heads`](super::encode_heads)); `what` is the
    /// whole error when they are malformed.
    pub(super) fn heads(
        self,
        bytes: &[u8],
        what: impl Display,
    ) -> Result<Vec<ChangeHash>, StoreError> {
        decode_heads(bytes).ok_or_else(|| self.corrupt(what.to_string()))
    }
}

/// A record the store reads back from a query, in two steps: SQLite reads the
/// columns inside the statement, then [`parse`](FromRow::parse) checks what
/// the schema cannot type, with errors that name the file. A table file
/// implements it once for its record, and every query of that record reads
/// through [`Db::record`] or [`Db::records`].
pub(super) trait FromRow: Sized {
    /// The columns as SQLite returns them.
    type Columns;
    /// Reads the columns of one row.
    fn columns(row: &Row<'_>) -> rusqlite::Result<Self::Columns>;
    /// Checks and converts them into the record.
    fn parse(db: Db<'_>, columns: Self::Columns) -> Result<Self, StoreError>;
}

impl super::Store {
    /// Opens (creating if needed) the store at `path` through the SQLite VFS
    /// registered under `vfs`, then configures and migrates it exactly as
    /// [`Store::open_file`](super::Store::open_file) does.
    ///
    /// For tests that put a fault-injecting file layer under the store (the
    /// power-loss tests in `tests/faultfs`): the store on top is the one a node
    /// runs, with the same pragmas and the same write helper, so what those
    /// tests find about durability is about this code, not a copy of it.
    pub fn open_with_vfs(path: &Path, vfs: &str) -> Result<super::Store, StoreError> {
        let conn = Connection::open_with_flags_and_vfs(path, rusqlite::OpenFlags::default(), vfs)
            .map_err(sqlite_error(path))?;
        super::Store::configured(conn, path)
    }
}
