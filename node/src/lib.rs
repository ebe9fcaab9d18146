//! labnet-node: the labnet node daemon as a library.
//!
//! A city runs one node. The node keeps the city's Policy Lab data, decides which
//! peers it talks to, and shares anonymized practices with them. The `labnet`
//! binary is a thin shell around this crate; tests run many nodes in one process
//! by giving each its own data directory and port 0.
//!
//! Map, in the order a practice travels (import to a peer's feed), then the
//! node's frame:
//!
//! ```text
//!  lab ──▶ share ──▶ store ◀── sync ◀── transport      trust: consulted by transport,
//!  (private)  (anonymize,   (SQLite)  (sessions)  (QUIC)        sync and control
//!             publish)        ▲
//!                             └── feed (what readers see)
//! ```
//!
//! - [`lab`]: the private lab model (practices, roster, lab record), its
//!   documents, its import and its storage. Never synced.
//! - [`share`]: field classes, scrubbers, the anonymizer, publications and the
//!   share operations (share, preview, unshare): the only way out of `lab`.
//! - [`store`]: SQLite, one file per table group, one write helper.
//! - [`sync`]: per-peer sync sessions (sans-IO: serving half, receiving half
//!   that verifies signed deliveries, confirmations), their tokio driver, the
//!   store view.
//! - [`transport`]: the QUIC endpoint, TLS pinned to node keys, accept and
//!   dial; hands authenticated streams to sync.
//! - [`trust`]: every decision about who may do what: the peer table,
//!   admission, invites, scope.
//! - [`feed`]: what readers see of publications; Atom, JSON Feed and CSV export.
//! - [`api`]: the admin requests and their typed replies (the CLI's wire types).
//! - [`console`]: the web console, the feed URLs and `/metrics` (HTTP).
//! - [`control`]: the admin operations, one file per area, for the socket and
//!   for stopped nodes.
//! - [`admin`]: the local socket the CLI talks to (bind, call, framing).
//! - [`identity`]: key pair, self-signed certificate, NodeId, signing.
//! - [`data_dir`]: the files of a node, and `init`.
//! - [`daemon`]: start, serve, shut down; wires transport to sync.
//! - [`demo`]: a whole network on one machine.
//! - `fuzzing` (feature `fuzzing`): the entry points of the fuzz targets in
//!   `fuzz/`.
//! - `testing` (feature `test-support`): set-ups the node's own tests and
//!   `labnet-tests` share (a signed store, a sample publication).

pub mod admin;
pub mod api;
pub mod console;
pub mod control;
pub mod daemon;
pub mod data_dir;
pub mod demo;
pub mod feed;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod identity;
pub mod lab;
pub mod share;
pub mod store;
pub mod sync;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
pub mod transport;
pub mod trust;
