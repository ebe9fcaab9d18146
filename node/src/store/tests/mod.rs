//! Unit tests of the store against real SQLite files in temporary directories.
//!
//! One file per file of the store, plus the helpers they share here: a fresh
//! store, node ids, and the two kinds of test document (a counter for the
//! document tests, a titled publication for the index and replica tests).

mod codec;
mod disclosures;
mod documents;
mod invites;
mod lifecycle;
mod peers;
mod publications;
mod replicas;

use super::*;
use automerge::{transaction::Transactable, AutoCommit, ReadDoc, ROOT};
use labnet_config::Role;
use labnet_protocol::NodeId;

/// A new store in a temporary directory, removed when the `TempDir` drops.
fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    store.set_signer(identity());
    (dir, store)
}

/// The node key of the stores these tests open: publications must name it.
fn identity() -> Arc<crate::identity::Identity> {
    static IDENTITY: std::sync::OnceLock<Arc<crate::identity::Identity>> =
        std::sync::OnceLock::new();
    IDENTITY
        .get_or_init(|| Arc::new(crate::identity::Identity::generate().unwrap()))
        .clone()
}

/// The id of this node's publication `name`.
fn pid(name: &str) -> String {
    format!("{}:{name}", identity().node_id().to_key())
}

fn node(n: u8) -> NodeId {
    NodeId::from_public_key(&[n; 32])
}

/// A document whose counter `n` is `value`.
fn counter_doc(value: i64) -> AutoCommit {
    let mut doc = AutoCommit::new();
    doc.put(ROOT, "n", value).unwrap();
    doc
}

/// A counter document with `value`, saved as `doc_id` of `kind`.
fn saved_counter(store: &mut Store, doc_id: &str, kind: DocumentKind, value: i64) -> AutoCommit {
    let mut doc = counter_doc(value);
    store.save_document(doc_id, kind, &mut doc).unwrap();
    doc
}

fn counter(doc: &AutoCommit) -> i64 {
    match doc.get(ROOT, "n").unwrap() {
        Some((automerge::Value::Scalar(s), _)) => s.as_i64().unwrap(),
        other => panic!("no counter: {other:?}"),
    }
}

/// A publication-like document with a title.
fn publication(text: &str) -> AutoCommit {
    let mut doc = AutoCommit::new();
    doc.put(ROOT, "title", text).unwrap();
    doc
}
