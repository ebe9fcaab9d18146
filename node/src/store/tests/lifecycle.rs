//! Opening, configuring and migrating (`mod.rs`, `schema.rs`).

use super::*;
use rusqlite::Connection;

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

/// A database as a release with schema `version` left it: the first
/// `version` migrations, applied by hand as that release did.
fn store_at_version(dir: &std::path::Path, version: usize) -> Connection {
    let conn = Connection::open(dir.join(DB_FILE)).unwrap();
    for sql in &schema::MIGRATIONS[..version] {
        conn.execute_batch(sql).unwrap();
    }
    conn.pragma_update(None, "user_version", version as i64)
        .unwrap();
    conn
}

/// Whether the schema has an index of this name.
fn has_index(store: &Store, name: &str) -> bool {
    store
        .conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = ?1",
            [name],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
        == 1
}

#[test]
fn a_version_1_store_migrates_forward_keeping_its_data() {
    let dir = tempfile::tempdir().unwrap();
    {
        // Build a store as the first release did: migration 0 only.
        let conn = store_at_version(dir.path(), 1);
        conn.execute(
            "INSERT INTO peers (node_id, role, state, decided_at, decided_by) VALUES (?1, 'partner', 'approved', 1, 'test')",
            [node(1).to_string()],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO disclosures (at, action, doc_id, heads, scope, settings) VALUES (1, 'share', 'p1', 'abc', 'partners', '{}')",
            [],
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
    // Version 3 indexed the disclosure log by publication; version 6 by
    // publication and action.
    assert!(has_index(&store, "disclosures_by_doc_action"));
    assert_eq!(
        store.latest_disclosure_settings("p1").unwrap().as_deref(),
        Some("{}"),
        "the log kept its lines"
    );
}

#[test]
fn a_version_2_store_gains_the_disclosure_index() {
    let dir = tempfile::tempdir().unwrap();
    drop(store_at_version(dir.path(), 2));
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        store.schema_version().unwrap(),
        schema::MIGRATIONS.len() as i64
    );
    // Version 6 replaced the index by one on (doc_id, action).
    assert!(has_index(&store, "disclosures_by_doc_action"));
    store.integrity_check().unwrap();
}

#[test]
fn a_version_3_store_keeps_its_requests_and_peers_and_gains_the_claimed_columns() {
    let dir = tempfile::tempdir().unwrap();
    let conn = store_at_version(dir.path(), 3);
    conn.execute_batch(
        "INSERT INTO pending_peers (node_id, name, address, first_seen, last_seen, attempts)
         VALUES ('n', 'Old', '127.0.0.1:1', 1, 1, 1)",
    )
    .unwrap();
    drop(conn);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        store.schema_version().unwrap(),
        schema::MIGRATIONS.len() as i64
    );
    let claimed: Option<String> = store
        .conn
        .query_row(
            "SELECT role FROM pending_peers WHERE name = 'Old'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(claimed, None, "an old request claimed no role");
    let claimed_names: i64 = store
        .conn
        .query_row(
            "SELECT COUNT(*) FROM pragma_table_info('peers') WHERE name = 'claimed_name'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(claimed_names, 1);
    store.integrity_check().unwrap();
}

/// The query plan of a store's per-publication settings lookup.
fn latest_settings_plan(store: &Store) -> Vec<String> {
    store
        .conn
        .prepare(&format!(
            "EXPLAIN QUERY PLAN {}",
            crate::store::disclosures::LATEST_SETTINGS_SQL
        ))
        .unwrap()
        .query_map(["p1"], |r| r.get::<_, String>(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn the_latest_settings_lookup_searches_the_disclosure_index_by_doc_and_action() {
    let (_dir, store) = open();
    let plan = latest_settings_plan(&store);
    assert!(
        plan.iter()
            .any(|step| step.contains("disclosures_by_doc_action")
                && step.contains("doc_id=?")
                && step.contains("action=?")),
        "{plan:?}"
    );
    assert!(
        !plan.iter().any(|step| step.starts_with("SCAN")),
        "no scan of the log: {plan:?}"
    );
}

/// Version 6 indexes the disclosure log by (doc_id, action): a store of
/// version 5 keeps every line, gains the index, and its lookup uses it.
#[test]
fn a_version_5_store_gains_the_disclosure_index_by_doc_and_action() {
    let dir = tempfile::tempdir().unwrap();
    let conn = store_at_version(dir.path(), 5);
    for (i, action) in ["share", "sent", "sent", "update", "sent"]
        .iter()
        .enumerate()
    {
        conn.execute(
            "INSERT INTO disclosures (at, action, doc_id, heads, node_id, scope, settings) VALUES (?1, ?2, 'p1', '', NULL, 'public', ?3)",
            rusqlite::params![i as i64, action, format!("{{\"n\":{i}}}")],
        )
        .unwrap();
    }
    let before: String = conn
        .query_row(
            "EXPLAIN QUERY PLAN SELECT settings FROM disclosures WHERE doc_id = 'p1' AND action IN ('share', 'update', 'reissue') ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(3),
        )
        .unwrap();
    assert!(!before.contains("disclosures_by_doc_action"), "{before}");
    drop(conn);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.schema_version().unwrap(), 6);
    assert_eq!(
        store.schema_version().unwrap(),
        schema::MIGRATIONS.len() as i64
    );
    assert!(has_index(&store, "disclosures_by_doc_action"));
    assert!(
        !has_index(&store, "disclosures_by_doc"),
        "the old index is dropped"
    );
    assert_eq!(
        store.disclosures(None, None).unwrap().len(),
        5,
        "every line kept"
    );
    assert_eq!(
        store.latest_disclosure_settings("p1").unwrap().as_deref(),
        Some("{\"n\":3}"),
        "the latest update, not a later sent line"
    );
    let plan = latest_settings_plan(&store);
    assert!(
        plan.iter()
            .any(|step| step.contains("disclosures_by_doc_action")),
        "{plan:?}"
    );
    store.integrity_check().unwrap();
}

/// Version 5 is the signed wire: a store of version 4 keeps its own
/// publications, which get a first statement signed with the node key at the
/// first start; the replicas it got unsigned are dropped (and every peer's
/// index starts over, so they come back signed); who was sent what survives
/// as deliveries.
#[test]
fn a_version_4_store_signs_its_publications_and_drops_unsigned_replicas() {
    use labnet_protocol::statement::{ScopeClass, SignedStatement};
    let dir = tempfile::tempdir().unwrap();
    let identity = Arc::new(crate::identity::Identity::generate().unwrap());
    let doc_id = format!("{}:p1", identity.node_id().to_key());
    let mut doc = publication("ours");
    let heads = doc.get_heads();
    {
        let conn = store_at_version(dir.path(), 4);
        conn.execute(
            "INSERT INTO documents (doc_id, kind, snapshot, heads, created_at, updated_at) VALUES (?1, 'publication', ?2, ?3, 1, 1)",
            rusqlite::params![doc_id, doc.save(), encode_heads(&heads)],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO publication_index (doc_id, seq, scope, retracted, updated_at) VALUES (?1, 7, 'public', 0, 1)",
            [&doc_id],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO sync_state (node_id, doc_id, state) VALUES (?1, ?2, x'00')",
            [node(2).to_string(), doc_id.clone()],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO documents (doc_id, kind, snapshot, heads, created_at, updated_at) VALUES ('q:theirs', 'replica', x'', x'', 1, 1)",
            [],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO replicas (doc_id, origin) VALUES ('q:theirs', ?1)",
            [node(3).to_string()],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO resume_points (origin, epoch, seq) VALUES (?1, 1, 40)",
            [node(3).to_string()],
        )
        .unwrap();
    }
    let mut store = Store::open(dir.path()).unwrap();
    assert!(store.statement(&doc_id).unwrap().is_none());
    // Without the node key nothing can be signed, and the store says why.
    let mut unsigned = Store::open(dir.path()).unwrap();
    assert!(unsigned
        .sign_missing_statements()
        .unwrap_err()
        .to_string()
        .contains("no node key"));
    store.set_signer(identity.clone());
    assert_eq!(store.sign_missing_statements().unwrap(), 1);
    assert_eq!(store.sign_missing_statements().unwrap(), 0, "once only");
    let row = store.statement(&doc_id).unwrap().unwrap();
    let signed = SignedStatement::decode(&row.signed).unwrap();
    signed.verify().unwrap();
    assert_eq!(signed.body.origin(), identity.node_id());
    assert_eq!(signed.body.version, 7);
    assert_eq!(signed.body.scope, ScopeClass::Public);
    assert_eq!(signed.body.heads, vec![heads[0].0]);
    assert!(store.replicas().unwrap().is_empty());
    assert!(store.load_document("q:theirs").unwrap().is_none());
    assert_eq!(store.resume_point(node(3)).unwrap(), None);
    assert_eq!(store.delivered_to(&doc_id).unwrap(), [node(2)]);
}
