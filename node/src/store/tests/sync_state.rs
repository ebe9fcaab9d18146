//! Sync state rows, written through a batch (`sync_state.rs`).

use super::*;

#[test]
fn sync_state_round_trips_per_peer_and_document() {
    let (_dir, mut store) = open();
    store
        .batch(|b| b.save_sync_state(node(1), "d", b"one"))
        .unwrap();
    store
        .batch(|b| b.save_sync_state(node(1), "d", b"two"))
        .unwrap();
    store
        .batch(|b| b.save_sync_state(node(2), "d", b"other"))
        .unwrap();
    assert_eq!(
        store.load_sync_state(node(1), "d").unwrap().as_deref(),
        Some(&b"two"[..])
    );
    assert_eq!(store.load_sync_state(node(1), "e").unwrap(), None);
}
