//! labnet-node: the labnet node daemon as a library.
//!
//! A city runs one node. The node keeps the city's Policy Lab data, decides which
//! peers it talks to, and shares anonymized practices with them. The `labnet`
//! binary is a thin shell around this crate; tests run many nodes in one process
//! by giving each its own data directory and port 0.
//!
//! Map:
//! - [`identity`]: key pair, self-signed certificate, NodeId.
//! - [`store`]: SQLite: documents, peers, invites, sync state, disclosure log.
//! - [`data_dir`]: the files of a node, and `init`.
//! - [`daemon`]: start, serve, shut down.
//! - [`api`]: the admin requests and their typed replies (the CLI's wire types).
//! - [`admin`]: the local socket the CLI talks to (bind, call, framing).
//! - [`trust`]: every decision about who may do what: the peer table, admission,
//!   invites, scope.
//! - [`console`]: the web console, the feed URLs and `/metrics` (HTTP).
//! - [`control`]: the admin operations, one file per area, for the socket and
//!   for stopped nodes.
//! - [`feed`]: what readers see of publications; Atom, JSON Feed and CSV export.
//! - [`sync`]: per-peer sync sessions (sans-IO): inventory, Automerge sync, scope.
//! - [`transport`]: QUIC endpoint, TLS pinned to node keys, connection gates.
//! - [`lab`]: the private lab model (practices, roster, lab record), its
//!   documents, its import and its storage.
//! - [`share`]: field classes, the anonymizer, publications and the share
//!   operations (share, preview, unshare).
//! - [`demo`]: a whole network on one machine.

pub mod admin;
pub mod api;
pub mod console;
pub mod control;
pub mod daemon;
pub mod data_dir;
pub mod demo;
pub mod feed;
pub mod identity;
pub mod lab;
pub mod share;
pub mod store;
pub mod sync;
pub mod transport;
pub mod trust;
