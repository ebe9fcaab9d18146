//! Replays the node's fuzz targets (`labnet_node::fuzzing`) on every committed
//! crasher under `fuzz/regressions/<target>/` and every seed under
//! `fuzz/corpus/<target>/`, through the same entry points the fuzzer ran:
//! a crash found once stays fixed.
//!
//! Not vacuous: each target's corpus must hold its seeds, the seeds are
//! checked to be the ones the generator writes today, and the `deliver`
//! seeds must come to the outcome each was written for (honest deliveries
//! stored, forged or misdirected ones refused with their violation).
//!
//! `cargo test -p labnet-node --test fuzz_regressions -- --ignored
//! write_seed_corpus` writes the seed corpora (node and protocol targets).
#![allow(clippy::unwrap_used)]

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use labnet_node::fuzzing::{self, DeliverOutcome};
use labnet_protocol::close::ViolationCode;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `dir`, sorted; none if it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

/// Runs `target` on every file of `dir`; returns how many ran, and panics
/// naming every file that made the target panic.
fn replay(target: &str, dir: &Path) -> usize {
    let mut failed = Vec::new();
    let list = files(dir);
    for path in &list {
        let data = fs::read(path).unwrap();
        let ran = catch_unwind(AssertUnwindSafe(|| {
            assert!(fuzzing::run(target, &data), "no node target {target}");
        }));
        if ran.is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(failed.is_empty(), "{target} panics on {failed:?}");
    list.len()
}

fn targets() -> Vec<&'static str> {
    fuzzing::all_seeds().into_iter().map(|(t, _)| t).collect()
}

/// Every committed crasher of every node target is handled without a panic.
#[test]
fn committed_crashers_no_longer_crash() {
    for target in targets() {
        replay(target, &fuzz_dir().join("regressions").join(target));
    }
}

/// Every seed of every node target is handled without a panic, and each
/// corpus holds the seeds the generator writes.
#[test]
fn seed_corpora_are_handled_without_panic() {
    for (target, seeds) in fuzzing::all_seeds() {
        let dir = fuzz_dir().join("corpus").join(target);
        let ran = replay(target, &dir);
        assert!(ran >= seeds.len(), "{target}: {ran} files in {dir:?}");
        for (name, bytes) in seeds {
            fuzzing::run(target, &bytes);
            // Certificates are made afresh each time; the rest must match.
            if target != "cert_pin" {
                let on_disk = fs::read(dir.join(name))
                    .unwrap_or_else(|e| panic!("{target}/{name}: {e}; regenerate the corpus"));
                assert_eq!(on_disk, bytes, "{target}/{name} is stale; regenerate");
            }
        }
    }
}

/// The `deliver` seeds reach the outcome each stands for: the target really
/// drives the receive path, as far as storing a verified version, and
/// refuses with the violation the attack calls for.
#[test]
fn deliver_seeds_are_stored_or_refused_as_they_should_be() {
    let expected = [
        ("fresh-all-changes", DeliverOutcome::Stored),
        ("held-changes-after", DeliverOutcome::Stored),
        ("held-compressed", DeliverOutcome::Stored),
        ("held-explicit-heads", DeliverOutcome::Stored),
        ("fresh-partners", DeliverOutcome::Stored),
        ("relayed-public", DeliverOutcome::Stored),
        (
            "relayed-partners",
            DeliverOutcome::Refused(ViolationCode::ScopeViolation),
        ),
        ("retraction", DeliverOutcome::Stored),
        ("stale", DeliverOutcome::Ignored),
        (
            "subscriber",
            DeliverOutcome::Refused(ViolationCode::ScopeViolation),
        ),
        (
            "wrong-heads",
            DeliverOutcome::Refused(ViolationCode::HeadsMismatch),
        ),
        (
            "missing-base",
            DeliverOutcome::Refused(ViolationCode::HeadsMismatch),
        ),
    ];
    let seeds = fuzzing::deliver_seeds();
    assert_eq!(seeds.len(), expected.len());
    for ((name, bytes), (want_name, want)) in seeds.iter().zip(expected) {
        assert_eq!(*name, want_name);
        assert_eq!(fuzzing::deliver(bytes), want, "seed {name}");
    }
}

/// Writes every target's seed corpus (node and protocol) under
/// `fuzz/corpus/<target>/`. Run by hand after changing a seed.
#[test]
#[ignore]
fn write_seed_corpus() {
    for (target, seeds) in fuzzing::all_seeds() {
        let dir = fuzz_dir().join("corpus").join(target);
        fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in seeds {
            fs::write(dir.join(name), bytes).unwrap();
        }
    }
}
