//! Snapshots, incremental chunks and compaction (`documents.rs`).

use super::*;

#[test]
fn documents_save_incrementally_and_load_whole() {
    let (_dir, mut store) = open();
    let mut doc = saved_counter(&mut store, "d1", DocumentKind::Private, 0);
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
    let mut doc = saved_counter(&mut store, "d", DocumentKind::Publication, 1);
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
    saved_counter(&mut store, "d", DocumentKind::Private, 1);
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
    saved_counter(&mut store, "taken", DocumentKind::Private, 1);
    let mut a = counter_doc(1);
    let mut b = counter_doc(2);
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

/// A private counter saved at 1, then edited to 2 and saved as another kind,
/// which must fail. Returns the edited document.
fn edited_then_saved_as(store: &mut Store, wrong: DocumentKind) -> AutoCommit {
    let mut doc = saved_counter(store, "d", DocumentKind::Private, 1);
    doc.put(ROOT, "n", 2).unwrap();
    assert!(store.save_document("d", wrong, &mut doc).is_err());
    doc
}

#[test]
fn a_failed_save_is_retried_by_the_next_one() {
    // The store, not the document, remembers what was saved: changes made before a
    // failed save are written by the next successful one.
    let (_dir, mut store) = open();
    let mut doc = edited_then_saved_as(&mut store, DocumentKind::Replica);
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
    edited_then_saved_as(&mut store, DocumentKind::Publication);
    assert_eq!(
        store.document_counts().unwrap(),
        DocumentCounts {
            private: 1,
            publication: 0,
            replica: 0
        }
    );
}
