//! The publication index and its sequence numbers (`publications.rs`).

use super::*;

/// Saves `doc` as our publication `name` (see [`pid`]) with `scope`.
fn save(store: &mut Store, name: &str, doc: &mut AutoCommit, scope: &str) -> PublicationSave {
    store.save_publication(&pid(name), doc, scope).unwrap()
}

#[test]
fn publications_take_a_new_sequence_number_only_when_they_change() {
    let (_dir, mut store) = open();
    let mut a = publication("a");
    let mut b = publication("b");
    assert_eq!(
        save(&mut store, "a", &mut a, "partners"),
        PublicationSave::Created(1)
    );
    assert_eq!(
        save(&mut store, "b", &mut b, "public"),
        PublicationSave::Created(2)
    );
    assert_eq!(
        save(&mut store, "a", &mut a, "partners"),
        PublicationSave::Unchanged
    );
    a.put(ROOT, "title", "a2").unwrap();
    assert_eq!(
        save(&mut store, "a", &mut a, "partners"),
        PublicationSave::Updated(3)
    );
    assert_eq!(
        save(&mut store, "b", &mut b, "partners"),
        PublicationSave::Updated(4),
        "scope change"
    );
    let after_2: Vec<String> = store
        .publications_after(2, 10)
        .unwrap()
        .into_iter()
        .map(|r| r.doc_id)
        .collect();
    assert_eq!(after_2, [pid("a"), pid("b")]);
    assert_eq!(store.retract_publication(&pid("a")).unwrap(), Some(5));
    assert_eq!(
        store.retract_publication(&pid("a")).unwrap(),
        None,
        "already retracted"
    );
    let row = store.publication_row(&pid("a")).unwrap().unwrap();
    assert!(row.retracted);
    assert_eq!(row.heads, a.get_heads());
    assert_eq!(
        save(&mut store, "a", &mut a, "partners"),
        PublicationSave::Updated(6),
        "shared again"
    );
}

/// A session's copy of stored document `doc_id`, with an actor of its own.
fn session_copy(store: &Store, doc_id: &str) -> AutoCommit {
    let (_, doc) = store.load_document(doc_id).unwrap().unwrap();
    doc.with_actor(automerge::ActorId::random())
}

#[test]
fn concurrent_sessions_of_one_document_merge_on_save() {
    let (_dir, mut store) = open();
    let mut base = AutoCommit::new();
    base.put(ROOT, "title", "v1").unwrap();
    save(&mut store, "x", &mut base, "partners");
    // Two sessions load the same version and edit different fields.
    let mut one = session_copy(&store, &pid("x"));
    let mut two = session_copy(&store, &pid("x"));
    one.put(ROOT, "summary", "from session one").unwrap();
    two.put(ROOT, "link", "from session two").unwrap();
    save(&mut store, "x", &mut one, "partners");
    save(&mut store, "x", &mut two, "partners");
    let (_, mut merged) = store.load_document(&pid("x")).unwrap().unwrap();
    assert!(
        merged.get(ROOT, "summary").unwrap().is_some(),
        "session one's edit survived"
    );
    assert!(
        merged.get(ROOT, "link").unwrap().is_some(),
        "session two's edit survived"
    );
    assert_eq!(
        store.publication_row(&pid("x")).unwrap().unwrap().heads,
        merged.get_heads(),
        "index heads are the merged heads"
    );
    assert_eq!(
        two.get_heads(),
        merged.get_heads(),
        "the saving session now holds the merge too"
    );
}

/// The attack-free race the demo hit: a session reads our index and the
/// relayed statements through its own connection while the writer commits.
/// Inside `read_snapshot` a commit landing between two queries is not seen
/// by the second; outside it, it is (which is why the inventory needs it).
#[test]
fn a_read_snapshot_does_not_see_a_commit_between_its_queries() {
    let (dir, mut store) = open();
    let reader = Store::open_reader(&dir.path().join("labnet.db")).unwrap();
    let mut a = publication("a");
    save(&mut store, "a", &mut a, "partners");
    let (first, second) = reader
        .read_snapshot(|r| {
            let first = r.publications_after(0, 10)?.len();
            let mut b = publication("b");
            save(&mut store, "b", &mut b, "partners");
            Ok((first, r.publications_after(0, 10)?.len()))
        })
        .unwrap();
    assert_eq!((first, second), (1, 1), "one snapshot for both queries");
    // Without a snapshot each query sees the latest commit.
    let mut c = publication("c");
    let before = reader.publications_after(0, 10).unwrap().len();
    save(&mut store, "c", &mut c, "partners");
    assert_eq!(
        (before, reader.publications_after(0, 10).unwrap().len()),
        (2, 3)
    );
}
