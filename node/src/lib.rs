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
//! - [`admin`]: the local socket the CLI talks to.
//! - [`trust`]: every decision about who may do what: the peer table, admission,
//!   invites, scope.
//! - [`control`]: the admin operations, for the socket and for stopped nodes.
//! - [`feed`]: what readers see of publications; Atom, JSON Feed and CSV export.
//! - [`sync`]: per-peer sync sessions (sans-IO): inventory, Automerge sync, scope.
//! - [`transport`]: QUIC endpoint, TLS pinned to node keys, connection gates.
//! - [`lab`]: the private lab model (practices, roster), its documents and import.
//! - [`share`]: field classes, the anonymizer, publications and the share operations.
//! - [`demo`]: a whole network on one machine.

pub mod admin;
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
