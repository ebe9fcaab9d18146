//! Replays the protocol's fuzz targets on every committed crasher under
//! `fuzz/regressions/<target>/` and every seed under `fuzz/corpus/<target>/`,
//! through the same entry points the fuzzer ran (`fuzz/src/protocol.rs`,
//! included here by path): a crash found once stays fixed.
//!
//! Not vacuous: each target's corpus must hold the seeds the generator
//! writes today, and each seed must reach the part of the code it was
//! written for (a real delivery decodes, a real hello is heard).
//!
//! `cargo test -p labnet-protocol --test fuzz_regressions -- --ignored
//! write_seed_corpus` writes the protocol targets' seed corpora.
#![allow(clippy::unwrap_used)]

// The entry points are `pub` for the fuzz crate; here they are private.
#[allow(unreachable_pub)]
#[path = "../../fuzz/src/protocol.rs"]
mod targets;

mod replay;

use labnet_protocol::chunk::check_change_chunks;
use labnet_protocol::sync::SyncMessage;

/// Every committed crasher of every protocol target is handled without a panic.
#[test]
fn committed_crashers_no_longer_crash() {
    replay::replay_crashers(targets::run, targets::all_seeds());
}

/// Every seed is handled without a panic, and each corpus holds the seeds
/// the generator writes.
#[test]
fn seed_corpora_are_handled_without_panic() {
    replay::replay_seed_corpora(targets::run, targets::all_seeds(), |_| true);
}

/// The seeds are real: every sync seed but the retired tags decodes, the
/// delivery carries chunks that pass labnet's checks, and the chunk seeds
/// pass them too, so the targets start deep in the code, not at its door.
#[test]
fn seeds_reach_past_the_first_check() {
    for (name, bytes) in targets::sync_message_seeds() {
        let decoded = SyncMessage::decode(&bytes);
        assert_eq!(decoded.is_ok(), !name.starts_with("retired"), "{name}");
        if let Ok(SyncMessage::Deliver { changes, .. }) = decoded {
            if name == "deliver" {
                assert!(!changes.is_empty());
                assert!(check_change_chunks(&changes).is_ok());
            }
        }
    }
    for (name, bytes) in targets::chunk_seeds() {
        let mut chunks = Vec::new();
        let mut rest = &bytes[..];
        while rest.len() >= 2 {
            let len = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
            chunks.push(rest[2..2 + len].to_vec());
            rest = &rest[2 + len..];
        }
        assert!(check_change_chunks(&chunks).is_ok(), "{name}");
    }
    for (name, bytes) in targets::invite_seeds() {
        let text = String::from_utf8(bytes).unwrap();
        assert_eq!(
            labnet_protocol::invite::Invite::parse(&text).is_ok(),
            name != "cut",
            "{name}"
        );
    }
}

/// Writes the protocol targets' seed corpora under `fuzz/corpus/<target>/`.
#[test]
#[ignore]
fn write_seed_corpus() {
    replay::write_seed_corpora(targets::all_seeds());
}
