//! labnet's fuzz targets, built with `cargo +nightly fuzz` (see README.md).
//!
//! The targets themselves (`fuzz_targets/*.rs`) are one line each: they call
//! an entry point that the regression tests call too, so a crasher committed
//! under `regressions/<target>/` is replayed by `cargo test` through exactly
//! the code the fuzzer ran.
//!
//! - [`protocol`]: the targets on `labnet-protocol` (frames, handshake, sync
//!   messages, statements, change chunks through Automerge, invite tokens),
//!   replayed by `protocol/tests/fuzz_regressions.rs`;
//! - the node's targets (a delivery through a real session, whole session
//!   messages, the certificate pin, scrubber, anonymizer, config, feed export
//!   and verify) live in `labnet_node::fuzzing`, behind the node's `fuzzing`
//!   feature, replayed by `node/tests/fuzz_regressions.rs`.

pub mod protocol;
