//! A damaged store file gives a clear error, never a panic (issue 13).
//!
//! A real store, made with the public API (private documents, publications
//! with their signed statements, peers, knocks, invites, replicas, the
//! disclosure log) and checkpointed into its one file, has one byte flipped
//! by a seeded RNG; then the node's open path (`Store::open`, then signing
//! missing statements, as `DataDir::open_store` does) opens the copy and
//! everything is read back. Every flip must end in a `StoreError` (at open,
//! at the integrity check, or at a read) or in a store that passes
//! `integrity_check` and reads back; a panic anywhere fails the test.
//!
//! SQLite keeps no checksums, so a flip inside a stored value can read back
//! as a different, well-formed value: that is counted ("read back changed"),
//! not failed. What labnet must not do is crash on it: the Automerge loads,
//! node ids, roles and heads it parses out of the file are all in play.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use labnet_faultfs::{fingerprint, scratch_dir, Runner, Workload};
use labnet_node::identity::Identity;
use labnet_node::store::{Store, DB_FILE};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Flips in a normal (debug) `cargo test`: about a minute or less on a
/// loaded build machine.
const FLIPS: u32 = 1_000;
/// Flips in the long run (`--release -- --ignored`).
const FLIPS_LONG: u32 = 10_000;
/// Operations in the workload that makes the file: every table gets rows, and
/// some documents spill onto overflow pages, in a file small enough to copy
/// ten thousand times.
const WORKLOAD_LEN: usize = 80;

/// How one damaged copy fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    /// The node's open path refused it (`Store::open`, or the statement
    /// signing a node runs at every start).
    OpenRefused,
    /// It opened, and SQLite's integrity check reported the damage.
    IntegrityFailed,
    /// It passed the integrity check and a read reported the damage.
    ReadRefused,
    /// Everything read back, and it is what was stored.
    ReadBackSame,
    /// Everything read back, one value different (a flip inside a value).
    ReadBackChanged,
}

/// Makes the store file and returns its bytes and what it holds.
fn make_store(identity: &Arc<Identity>) -> (Vec<u8>, Vec<String>) {
    let dir = scratch_dir().unwrap();
    let path = dir.path().to_path_buf();
    let mut runner = Runner::start(identity.clone(), Box::new(move || Store::open(&path))).unwrap();
    for op in &Workload::generate(31, WORKLOAD_LEN).ops {
        runner.apply(op).unwrap();
    }
    let store = runner.store().unwrap();
    store.checkpoint().unwrap();
    let expected = fingerprint(store, identity.node_id()).unwrap();
    runner.close();
    let wal = dir.path().join(format!("{DB_FILE}-wal"));
    assert!(
        !wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0,
        "the checkpointed store left a WAL behind"
    );
    let bytes = std::fs::read(dir.path().join(DB_FILE)).unwrap();
    (bytes, expected)
}

/// Opens the damaged copy in `dir` the way a node does
/// (`DataDir::open_store`: open, give it the node key, sign what has no
/// statement) and reads it all back.
fn inspect(dir: &Path, identity: &Arc<Identity>, expected: &[String]) -> Outcome {
    let Ok(mut store) = Store::open(dir) else {
        return Outcome::OpenRefused;
    };
    store.set_signer(identity.clone());
    if store.sign_missing_statements().is_err() {
        return Outcome::OpenRefused;
    }
    if store.integrity_check().is_err() {
        return Outcome::IntegrityFailed;
    }
    match fingerprint(&store, identity.node_id()) {
        Err(_) => Outcome::ReadRefused,
        Ok(found) if found == expected => Outcome::ReadBackSame,
        Ok(_) => Outcome::ReadBackChanged,
    }
}

/// Flips `flips` single bytes, one copy each; panics (failing the test) if
/// any copy panicked the store, after reporting what every flip gave.
fn flip_bytes(flips: u32, seed: u64) {
    let started = Instant::now();
    let identity = Arc::new(Identity::generate().unwrap());
    let (original, expected) = make_store(&identity);
    let dir = scratch_dir().unwrap();
    let db = dir.path().join(DB_FILE);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut outcomes = std::collections::BTreeMap::<Outcome, u32>::new();
    let mut panics = Vec::new();
    for _ in 0..flips {
        let offset = rng.gen_range(0..original.len());
        let mask: u8 = rng.gen_range(1..=255);
        let mut damaged = original.clone();
        damaged[offset] ^= mask;
        for leftover in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(dir.path().join(format!("{DB_FILE}{leftover}")));
        }
        std::fs::write(&db, &damaged).unwrap();
        match catch_unwind(AssertUnwindSafe(|| {
            inspect(dir.path(), &identity, &expected)
        })) {
            Ok(outcome) => *outcomes.entry(outcome).or_default() += 1,
            Err(_) => panics.push(format!("byte {offset} ^ {mask:#04x}")),
        }
    }
    eprintln!(
        "byte flips: {flips} flips in a {} byte store, {} panics, {outcomes:?}, {:.1?}",
        original.len(),
        panics.len(),
        started.elapsed()
    );
    assert!(
        panics.is_empty(),
        "{} of {flips} damaged copies panicked the store instead of failing with an error: {}",
        panics.len(),
        panics.join(", ")
    );
    // The flips must reach the parts that matter, or the test shows nothing.
    let reached = [
        Outcome::OpenRefused,
        Outcome::IntegrityFailed,
        Outcome::ReadRefused,
        Outcome::ReadBackChanged,
    ];
    assert!(
        reached.iter().all(|o| outcomes.contains_key(o)),
        "the flips missed whole kinds of damage: {outcomes:?}"
    );
}

#[test]
fn a_flipped_byte_in_the_store_file_gives_an_error_never_a_panic() {
    flip_bytes(FLIPS, 0x13);
}

#[test]
#[ignore = "10,000 flips: run in release, `cargo test --release -p labnet-faultfs --test byte_flips -- --ignored`"]
fn ten_thousand_flipped_bytes_give_errors_never_a_panic() {
    flip_bytes(FLIPS_LONG, 0x1313);
}
