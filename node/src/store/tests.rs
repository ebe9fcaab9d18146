//! Unit tests of the store against real SQLite files in temporary directories.

use super::*;
use automerge::{transaction::Transactable, ReadDoc, ROOT};

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

fn node(n: u8) -> NodeId {
    NodeId::from_public_key(&[n; 32])
}

fn counter(doc: &AutoCommit) -> i64 {
    match doc.get(ROOT, "n").unwrap() {
        Some((automerge::Value::Scalar(s), _)) => s.as_i64().unwrap(),
        other => panic!("no counter: {other:?}"),
    }
}

#[test]
fn opens_in_wal_with_full_sync_and_current_schema() {
    let (_dir, store) = open();
    let mode: String = store
        .conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let sync: i64 = store
        .conn
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sync, 2, "synchronous must be FULL (2)");
    assert_eq!(
        store.schema_version().unwrap(),
        schema::MIGRATIONS.len() as i64
    );
    store.integrity_check().unwrap();
}

#[test]
fn reopening_does_not_migrate_twice_and_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    let store = Store::open(dir.path()).unwrap();
    store.conn.pragma_update(None, "user_version", 99).unwrap();
    drop(store);
    let err = Store::open(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{err}");
}

#[test]
fn documents_save_incrementally_and_load_whole() {
    let (_dir, mut store) = open();
    let mut doc = AutoCommit::new();
    doc.put(ROOT, "n", 0).unwrap();
    store
        .save_document("d1", DocumentKind::Private, &mut doc)
        .unwrap();
    for i in 1..=10 {
        doc.put(ROOT, "n", i).unwrap();
        store
            .save_document("d1", DocumentKind::Private, &mut doc)
            .unwrap();
    }
    assert_eq!(store.pending_changes("d1").unwrap(), 10);
    let (kind, mut loaded) = store.load_document("d1").unwrap().unwrap();
    assert_eq!(kind, DocumentKind::Private);
    assert_eq!(counter(&loaded), 10);
    assert_eq!(loaded.get_heads(), doc.get_heads());
}

#[test]
fn saving_without_changes_writes_nothing() {
    let (_dir, mut store) = open();
    let mut doc = AutoCommit::new();
    doc.put(ROOT, "n", 1).unwrap();
    store
        .save_document("d", DocumentKind::Publication, &mut doc)
        .unwrap();
    store
        .save_document("d", DocumentKind::Publication, &mut doc)
        .unwrap();
    assert_eq!(store.pending_changes("d").unwrap(), 0);
}

#[test]
fn many_changes_are_compacted_into_a_snapshot() {
    let (_dir, mut store) = open();
    let mut doc = AutoCommit::new();
    for i in 0..(CHANGES_BEFORE_COMPACTION * 2 + 5) {
        doc.put(ROOT, "n", i).unwrap();
        store
            .save_document("d", DocumentKind::Private, &mut doc)
            .unwrap();
        assert!(store.pending_changes("d").unwrap() < CHANGES_BEFORE_COMPACTION);
    }
    let (_, loaded) = store.load_document("d").unwrap().unwrap();
    assert_eq!(counter(&loaded), CHANGES_BEFORE_COMPACTION * 2 + 4);
}

#[test]
fn a_loaded_document_saves_only_new_changes() {
    let (_dir, mut store) = open();
    let mut doc = AutoCommit::new();
    doc.put(ROOT, "n", 1).unwrap();
    store
        .save_document("d", DocumentKind::Private, &mut doc)
        .unwrap();
    let (_, mut loaded) = store.load_document("d").unwrap().unwrap();
    loaded.put(ROOT, "n", 2).unwrap();
    store
        .save_document("d", DocumentKind::Private, &mut loaded)
        .unwrap();
    let chunk: Vec<u8> = store
        .conn
        .query_row("SELECT chunk FROM document_changes", [], |r| r.get(0))
        .unwrap();
    let snapshot: Vec<u8> = store
        .conn
        .query_row("SELECT snapshot FROM documents", [], |r| r.get(0))
        .unwrap();
    assert!(
        chunk.len() < snapshot.len() + 64,
        "incremental chunk should hold one change, not the document"
    );
    assert_eq!(counter(&store.load_document("d").unwrap().unwrap().1), 2);
}

#[test]
fn a_batch_is_all_or_nothing() {
    let (_dir, mut store) = open();
    let mut good = AutoCommit::new();
    good.put(ROOT, "n", 1).unwrap();
    store
        .save_document("taken", DocumentKind::Private, &mut good)
        .unwrap();
    let mut a = AutoCommit::new();
    a.put(ROOT, "n", 1).unwrap();
    let mut b = AutoCommit::new();
    b.put(ROOT, "n", 2).unwrap();
    // The second entry clashes with a stored document of another kind.
    let result = store.save_documents(&mut [
        ("new-a", DocumentKind::Private, &mut a),
        ("taken", DocumentKind::Replica, &mut b),
    ]);
    assert!(result.is_err());
    assert!(
        store.load_document("new-a").unwrap().is_none(),
        "the first write was rolled back"
    );
}

#[test]
fn a_failed_save_is_retried_by_the_next_one() {
    // The store, not the document, remembers what was saved: changes made before a
    // failed save are written by the next successful one.
    let (_dir, mut store) = open();
    let mut doc = AutoCommit::new();
    doc.put(ROOT, "n", 1).unwrap();
    store
        .save_document("d", DocumentKind::Private, &mut doc)
        .unwrap();
    doc.put(ROOT, "n", 2).unwrap();
    assert!(store
        .save_document("d", DocumentKind::Replica, &mut doc)
        .is_err());
    store
        .save_document("d", DocumentKind::Private, &mut doc)
        .unwrap();
    let (_, mut loaded) = store.load_document("d").unwrap().unwrap();
    assert_eq!(counter(&loaded), 2);
    assert_eq!(
        store.document_heads("d").unwrap().unwrap(),
        loaded.get_heads()
    );
}

#[test]
fn a_document_cannot_change_kind() {
    let (_dir, mut store) = open();
    let mut doc = AutoCommit::new();
    doc.put(ROOT, "n", 1).unwrap();
    store
        .save_document("d", DocumentKind::Private, &mut doc)
        .unwrap();
    doc.put(ROOT, "n", 2).unwrap();
    assert!(store
        .save_document("d", DocumentKind::Publication, &mut doc)
        .is_err());
    assert_eq!(
        store.document_counts().unwrap(),
        DocumentCounts {
            private: 1,
            publication: 0,
            replica: 0
        }
    );
}

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

#[test]
fn disclosures_filter_by_peer() {
    let (_dir, mut store) = open();
    let entry = |action, peer| NewDisclosure {
        action,
        doc_id: "p1",
        heads: "abc",
        node_id: peer,
        scope: "partners",
        settings: "{}",
    };
    store.log_disclosure(&entry("share", None)).unwrap();
    store.log_disclosure(&entry("sent", Some(node(1)))).unwrap();
    store.log_disclosure(&entry("sent", Some(node(2)))).unwrap();
    assert_eq!(store.disclosures(None, None).unwrap().len(), 3);
    let to_one = store.disclosures(Some(node(1)), None).unwrap();
    assert_eq!(to_one.len(), 1);
    assert_eq!(to_one[0].node_id, Some(node(1)));
    assert!(store
        .disclosures(None, Some(unix_now() + 10))
        .unwrap()
        .is_empty());
}

#[test]
fn a_version_1_store_migrates_forward_keeping_its_data() {
    let dir = tempfile::tempdir().unwrap();
    {
        // Build a store as the first release did: migration 0 only.
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        conn.execute_batch(schema::MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute(
            "INSERT INTO peers (node_id, role, state, decided_at, decided_by) VALUES (?1, 'partner', 'approved', 1, 'test')",
            [node(1).to_string()],
        )
        .unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        store.schema_version().unwrap(),
        schema::MIGRATIONS.len() as i64
    );
    assert_eq!(
        store.peers().unwrap().len(),
        1,
        "data kept across the migration"
    );
    assert!(store.index_epoch().unwrap() > 0);
}

fn publication(text: &str) -> AutoCommit {
    let mut doc = AutoCommit::new();
    doc.put(ROOT, "title", text).unwrap();
    doc
}

#[test]
fn publications_take_a_new_sequence_number_only_when_they_change() {
    let (_dir, mut store) = open();
    let mut a = publication("a");
    let mut b = publication("b");
    assert_eq!(
        store.save_publication("p:a", &mut a, "partners").unwrap(),
        PublicationSave::Created(1)
    );
    assert_eq!(
        store.save_publication("p:b", &mut b, "public").unwrap(),
        PublicationSave::Created(2)
    );
    assert_eq!(
        store.save_publication("p:a", &mut a, "partners").unwrap(),
        PublicationSave::Unchanged
    );
    a.put(ROOT, "title", "a2").unwrap();
    assert_eq!(
        store.save_publication("p:a", &mut a, "partners").unwrap(),
        PublicationSave::Updated(3)
    );
    assert_eq!(
        store.save_publication("p:b", &mut b, "partners").unwrap(),
        PublicationSave::Updated(4),
        "scope change"
    );
    let after_2: Vec<String> = store
        .publications_after(2, 10)
        .unwrap()
        .into_iter()
        .map(|r| r.doc_id)
        .collect();
    assert_eq!(after_2, ["p:a", "p:b"]);
    assert_eq!(store.retract_publication("p:a").unwrap(), Some(5));
    assert_eq!(
        store.retract_publication("p:a").unwrap(),
        None,
        "already retracted"
    );
    let row = store.publication_row("p:a").unwrap().unwrap();
    assert!(row.retracted);
    assert_eq!(row.heads, a.get_heads());
    assert_eq!(
        store.save_publication("p:a", &mut a, "partners").unwrap(),
        PublicationSave::Updated(6),
        "shared again"
    );
}

#[test]
fn a_batch_stores_replicas_and_never_overwrites_our_own_documents() {
    let (_dir, mut store) = open();
    let mut ours = publication("ours");
    store
        .save_publication("p:ours", &mut ours, "public")
        .unwrap();
    let mut theirs = publication("theirs");
    let heads = theirs.get_heads();
    let bytes = theirs.save();
    store
        .batch(|b| {
            b.save_replica_snapshot("q:theirs", node(2), &heads, &bytes)?;
            b.save_sync_state(node(2), "q:theirs", b"state")?;
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
        b.save_replica_snapshot("p:ours", node(3), &heads, &bytes)
    });
    assert!(result.is_err());
    assert_eq!(store.resume_point(node(3)).unwrap(), None);
    assert_eq!(
        store.load_document("p:ours").unwrap().unwrap().0,
        DocumentKind::Publication
    );
    // Changes from the wrong origin are refused too.
    assert!(store
        .batch(|b| b.append_replica_changes("q:theirs", node(3), &heads, &chunk))
        .is_err());

    store.batch(|b| b.delete_replica("q:theirs")).unwrap();
    assert!(store.replica_entry("q:theirs").unwrap().is_none());
    assert!(store
        .load_sync_state(node(2), "q:theirs")
        .unwrap()
        .is_none());
}

#[test]
fn concurrent_sessions_of_one_document_merge_on_save() {
    let (_dir, mut store) = open();
    let mut base = AutoCommit::new();
    base.put(ROOT, "title", "v1").unwrap();
    store
        .save_publication("p:x", &mut base, "partners")
        .unwrap();
    // Two sessions load the same version and edit different fields.
    let mut one = store
        .load_document("p:x")
        .unwrap()
        .unwrap()
        .1
        .with_actor(automerge::ActorId::random());
    let mut two = store
        .load_document("p:x")
        .unwrap()
        .unwrap()
        .1
        .with_actor(automerge::ActorId::random());
    one.put(ROOT, "summary", "from session one").unwrap();
    two.put(ROOT, "link", "from session two").unwrap();
    store.save_publication("p:x", &mut one, "partners").unwrap();
    store.save_publication("p:x", &mut two, "partners").unwrap();
    let (_, mut merged) = store.load_document("p:x").unwrap().unwrap();
    assert!(
        merged.get(ROOT, "summary").unwrap().is_some(),
        "session one's edit survived"
    );
    assert!(
        merged.get(ROOT, "link").unwrap().is_some(),
        "session two's edit survived"
    );
    assert_eq!(
        store.publication_row("p:x").unwrap().unwrap().heads,
        merged.get_heads(),
        "index heads are the merged heads"
    );
    assert_eq!(
        two.get_heads(),
        merged.get_heads(),
        "the saving session now holds the merge too"
    );
}
