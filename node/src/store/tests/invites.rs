//! Spending and refusing invites (`invites.rs`).

use super::*;

#[test]
fn invites_are_spent_once_and_refused_with_a_reason() {
    let (_dir, mut store) = open();
    let now = unix_now();
    store
        .create_invite("a", b"hash-a", Role::Subscriber, now + 60, 1)
        .unwrap();
    store
        .create_invite("b", b"hash-b", Role::Partner, now - 1, 1)
        .unwrap();
    store
        .create_invite("c", b"hash-c", Role::Partner, now + 60, 5)
        .unwrap();
    assert_eq!(
        store.redeem_invite(b"hash-a", now).unwrap(),
        Ok(("a".into(), Role::Subscriber))
    );
    assert_eq!(
        store.redeem_invite(b"hash-a", now).unwrap(),
        Err(InviteRefusal::UsedUp)
    );
    assert_eq!(
        store.redeem_invite(b"hash-b", now).unwrap(),
        Err(InviteRefusal::Expired)
    );
    assert_eq!(
        store.redeem_invite(b"nope", now).unwrap(),
        Err(InviteRefusal::Unknown)
    );
    assert!(store.revoke_invite("c").unwrap());
    assert_eq!(
        store.redeem_invite(b"hash-c", now).unwrap(),
        Err(InviteRefusal::Revoked)
    );
    assert_eq!(store.invites().unwrap().len(), 3);
}
