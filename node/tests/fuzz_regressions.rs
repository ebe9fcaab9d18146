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

#[path = "../../protocol/tests/replay/mod.rs"]
mod replay;

use labnet_node::fuzzing::{self, DeliverOutcome};
use labnet_protocol::close::ViolationCode;

/// Every committed crasher of every node target is handled without a panic.
#[test]
fn committed_crashers_no_longer_crash() {
    replay::replay_crashers(fuzzing::run, fuzzing::all_seeds());
}

/// Every seed of every node target is handled without a panic, and each
/// corpus holds the seeds the generator writes.
#[test]
fn seed_corpora_are_handled_without_panic() {
    // Certificates are made afresh each time; the rest must match.
    replay::replay_seed_corpora(fuzzing::run, fuzzing::all_seeds(), |target| {
        target != "cert_pin"
    });
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
    replay::write_seed_corpora(fuzzing::all_seeds());
}
