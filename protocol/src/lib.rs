//! labnet's wire protocol, with no I/O.
//!
//! Everything a node says to another node is defined here: how nodes name each
//! other ([`NodeId`]), how bytes are cut into frames, what messages mean, and the
//! state machines that turn received bytes into events and replies. Nothing in this
//! crate touches a socket, a file or a clock: callers hand in bytes (and `now` where
//! time matters) and get bytes and events back, so every piece can be tested and
//! fuzzed without a network, the way `quinn-proto` is.
//!
//! Map:
//! - [`node_id`]: the NodeId, derived from a node's public key, printed for people.
//! - [`contact`]: `labnet://NODEID@HOST:PORT`, how operators exchange addresses.
//! - [`close`]: the one registry of connection close codes (handshake and sync).
//! - [`frame`]: length-prefixed frames with a hard maximum.
//! - [`handshake`]: the versioned application handshake and close codes.
//! - [`invite`]: invite tokens.
//! - [`statement`]: signed version statements and retraction confirmations.
//! - [`sync`]: the messages of a sync session (inventory, want, signed
//!   deliveries, withdrawals, confirmations) and their bounded encoding.
//! - [`chunk`]: labnet's own checks of Automerge change chunks from a peer,
//!   inflated under a cap, before Automerge sees them.

pub mod chunk;
pub mod close;
pub mod contact;
pub mod frame;
pub mod handshake;
pub mod invite;
pub mod node_id;
pub mod statement;
pub mod sync;
pub mod varint;

pub use contact::{Contact, ContactError};
pub use node_id::{NodeId, NodeIdError};
