//! Decisions about peers, their audit trail, and the bounded pending list (`peers.rs`).

use super::*;

#[test]
fn approve_revoke_and_the_audit_trail() {
    let (_dir, mut store) = open();
    store
        .record_pending(node(1), "Modena", "10.0.0.1:7447", 10)
        .unwrap();
    let rec = store
        .approve_peer(node(1), Role::Partner, None, None, "peers approve")
        .unwrap();
    assert_eq!(rec.state, PeerState::Approved);
    assert_eq!(
        rec.name.as_deref(),
        Some("Modena"),
        "name comes from the pending request"
    );
    assert_eq!(rec.address.as_deref(), Some("10.0.0.1:7447"));
    assert!(store.pending_peers().unwrap().is_empty());
    let rec = store.revoke_peer(node(1), "peers revoke").unwrap().unwrap();
    assert_eq!(rec.state, PeerState::Revoked);
    assert_eq!(rec.decided_by, "peers revoke");
    let events = store.peer_events(node(1)).unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].1, "revoked");
    assert_eq!(store.revoke_peer(node(9), "x").unwrap(), None);
}

#[test]
fn pending_list_stays_at_its_bound() {
    let (_dir, mut store) = open();
    for i in 0..50u8 {
        store
            .record_pending(node(i), "x", "127.0.0.1:1", 20)
            .unwrap();
    }
    store
        .record_pending(node(49), "x", "127.0.0.1:1", 20)
        .unwrap();
    let pending = store.pending_peers().unwrap();
    assert_eq!(pending.len(), 20);
    let repeat = pending.iter().find(|p| p.node_id == node(49)).unwrap();
    assert_eq!(repeat.attempts, 2);
}
