//! Replicas, resume points and acknowledgements, written through a batch (`replicas.rs`).

use super::*;

#[test]
fn a_batch_stores_replicas_and_never_overwrites_our_own_documents() {
    let (_dir, mut store) = open();
    let mut ours = publication("ours");
    store
        .save_publication(&pid("ours"), &mut ours, "public")
        .unwrap();
    let mut theirs = publication("theirs");
    let heads = theirs.get_heads();
    let bytes = theirs.save();
    store
        .batch(|b| {
            b.save_replica_snapshot("q:theirs", node(2), &heads, &bytes)?;
            b.save_resume_point(node(2), 7, 3)?;
            b.save_peer_ack(node(2), 9, 4)
        })
        .unwrap();
    theirs.put(ROOT, "title", "theirs, edited").unwrap();
    let chunk = theirs.save_after(&heads);
    let new_heads = theirs.get_heads();
    store
        .batch(|b| b.append_replica_changes("q:theirs", node(2), &new_heads, &chunk))
        .unwrap();
    let (mut loaded, replica) = (
        store.load_document("q:theirs").unwrap().unwrap().1,
        store.replica_entry("q:theirs").unwrap().unwrap(),
    );
    assert_eq!(loaded.get_heads(), new_heads);
    assert_eq!(replica, (node(2), new_heads));
    assert_eq!(store.replicas_of(node(2)).unwrap(), ["q:theirs"]);
    assert_eq!(store.resume_point(node(2)).unwrap(), Some((7, 3)));
    assert_eq!(
        store.peer_ack(node(2)).unwrap().map(|a| (a.0, a.1)),
        Some((9, 4))
    );

    // A replica may not land on one of our publications, and a failed batch
    // writes nothing at all.
    let result = store.batch(|b| {
        b.save_resume_point(node(3), 1, 1)?;
        b.save_replica_snapshot(&pid("ours"), node(3), &heads, &bytes)
    });
    assert!(result.is_err());
    assert_eq!(store.resume_point(node(3)).unwrap(), None);
    assert_eq!(
        store.load_document(&pid("ours")).unwrap().unwrap().0,
        DocumentKind::Publication
    );
    // Changes from the wrong origin are refused too.
    assert!(store
        .batch(|b| b.append_replica_changes("q:theirs", node(3), &heads, &chunk))
        .is_err());

    store.batch(|b| b.delete_replica("q:theirs")).unwrap();
    assert!(store.replica_entry("q:theirs").unwrap().is_none());
}

/// The attack: a peer (or a relay) mints a fresh key per confirmation and
/// sends thousands of signed confirmations of one retraction. Only
/// `CONFIRMATIONS_PER_RETRACTION_MAX` are kept; a confirmer already kept can
/// still replace its own with a newer version, and another retraction has a
/// budget of its own.
#[test]
fn confirmations_of_one_retraction_stop_at_their_cap() {
    use crate::store::CONFIRMATIONS_PER_RETRACTION_MAX;
    let (_dir, mut store) = open();
    let confirmer = |i: usize| {
        NodeId::from_public_key(&{
            let mut key = [0u8; 32];
            key[..8].copy_from_slice(&(i as u64).to_be_bytes());
            key
        })
    };
    let over = CONFIRMATIONS_PER_RETRACTION_MAX + 50;
    let kept = store
        .batch(|b| {
            let mut kept = 0;
            for i in 0..over {
                if b.save_confirmation("q:gone", confirmer(i), 3, b"signed", true)? {
                    kept += 1;
                }
            }
            Ok(kept)
        })
        .unwrap();
    assert_eq!(kept, CONFIRMATIONS_PER_RETRACTION_MAX);
    assert_eq!(
        store.confirmations("q:gone").unwrap().len(),
        CONFIRMATIONS_PER_RETRACTION_MAX
    );
    // A kept confirmer may update its row; the table does not grow.
    let updated = store
        .batch(|b| b.save_confirmation("q:gone", confirmer(0), 4, b"newer", true))
        .unwrap();
    assert!(updated);
    let versions = store.confirmations("q:gone").unwrap();
    assert_eq!(versions.len(), CONFIRMATIONS_PER_RETRACTION_MAX);
    assert!(versions.contains(&(confirmer(0), 4)));
    // Another retraction is not starved by the first one's flood.
    assert!(store
        .batch(|b| b.save_confirmation("q:other", confirmer(over + 1), 1, b"signed", true))
        .unwrap());
}
