//! Decisions about peers, their audit trail, and the bounded pending list (`peers.rs`).

use super::*;

#[test]
fn approve_revoke_and_the_audit_trail() {
    let (_dir, mut store) = open();
    store
        .record_pending(node(1), "Modena", "10.0.0.1:7447", Role::Subscriber, 10)
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
fn a_pending_request_keeps_the_claimed_role_and_a_decided_node_is_never_pending_again() {
    let (_dir, mut store) = open();
    assert!(store
        .record_pending(node(1), "ISRG", "10.0.0.1:7447", Role::Subscriber, 10)
        .unwrap());
    assert_eq!(
        store.pending_peers().unwrap()[0].claimed_role,
        Some(Role::Subscriber)
    );
    store
        .approve_peer(node(1), Role::Subscriber, None, None, "peers approve")
        .unwrap();
    // The connection that was admitted as unknown before the approval records
    // its request late: it must not reappear as pending.
    assert!(!store
        .record_pending(node(1), "ISRG", "10.0.0.1:7447", Role::Subscriber, 10)
        .unwrap());
    assert!(store.pending_peers().unwrap().is_empty());
}

#[test]
fn a_handshake_name_never_replaces_the_approved_name_and_the_address_follows_the_peer() {
    let (_dir, mut store) = open();
    store
        .approve_peer(node(1), Role::Partner, Some("Modena"), None, "invite")
        .unwrap();
    store
        .peer_seen(node(1), "Mechelen", Some("127.0.0.1:4000"))
        .unwrap();
    let rec = store.peer(node(1)).unwrap().unwrap();
    assert_eq!(rec.name.as_deref(), Some("Modena"));
    assert_eq!(rec.claimed_name.as_deref(), Some("Mechelen"));
    assert_eq!(rec.address.as_deref(), Some("127.0.0.1:4000"));
    store.peer_seen(node(1), "Modena", None).unwrap();
    let rec = store.peer(node(1)).unwrap().unwrap();
    assert_eq!(rec.claimed_name, None, "no longer differs");
    assert_eq!(rec.address.as_deref(), Some("127.0.0.1:4000"));
    // A peer added by contact has no name until its first handshake.
    store
        .approve_peer(node(2), Role::Partner, None, None, "peers add")
        .unwrap();
    store.peer_seen(node(2), "Athens", None).unwrap();
    assert_eq!(
        store.peer(node(2)).unwrap().unwrap().name.as_deref(),
        Some("Athens")
    );
}

#[test]
fn pending_list_stays_at_its_bound() {
    let (_dir, mut store) = open();
    for i in 0..50u8 {
        store
            .record_pending(node(i), "x", "127.0.0.1:1", Role::Partner, 20)
            .unwrap();
    }
    store
        .record_pending(node(49), "x", "127.0.0.1:1", Role::Partner, 20)
        .unwrap();
    let pending = store.pending_peers().unwrap();
    assert_eq!(pending.len(), 20);
    let repeat = pending.iter().find(|p| p.node_id == node(49)).unwrap();
    assert_eq!(repeat.attempts, 2);
}
