//! Power-loss and byte-flip testing of the node's store (issue 13).
//!
//! A `kill -9` test cannot tell `synchronous = FULL` from `OFF`: the page
//! cache survives the process, so every write reaches the disk anyway. Telling
//! them apart takes losing what was written but not synced, which is what
//! [`FaultFs`] does, as a SQLite VFS under the store's own connection.
//!
//! # Map
//!
//! - [`vfs`]: the fault-injecting VFS ([`FaultFs`], [`SyncMode`]);
//! - [`workload`]: a seeded sequence of the store's public writes
//!   ([`Workload`]), a driver that runs it ([`Runner`]), and
//!   [`fingerprint`], everything the store holds read back through its
//!   public API, in a form two stores can be compared by.
//!
//! The tests are in `tests/`: `power_loss.rs` (acknowledged writes survive a
//! cut at any I/O operation, and the checker catches a store that does not
//! sync) and `byte_flips.rs` (a damaged file gives an error, never a panic).
//!
//! # Why this crate allows unsafe code
//!
//! The workspace denies `unsafe_code`. A VFS is a table of C function
//! pointers that SQLite calls with raw pointers (`rusqlite::ffi`), so it
//! cannot be written without `unsafe`. The allowance is for the [`vfs`]
//! module alone, each block with a SAFETY comment; the rest of the crate
//! (and every test) is safe code, and the crate is test-only (never a
//! dependency of the node or the CLI).

#[allow(unsafe_code)]
pub mod vfs;
pub mod workload;

pub use vfs::{FaultFs, RegisterError, SyncMode};
pub use workload::{fingerprint, scratch_dir, Op, Runner, Workload};
