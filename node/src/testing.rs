//! Set-ups that tests, benchmarks and demos share (feature `test-support`):
//! a store signed by a fresh node key, and a sample practice published the
//! way `labnet share` publishes one (the signed publication, its line in the
//! disclosure log). Plain library code so the node's unit tests, its
//! integration tests and the `labnet-tests` crate all open nodes the same way.
//!
//! These helpers panic on any failure: they set up a test, and a set-up that
//! fails should stop it loudly.

use std::path::Path;
use std::sync::Arc;

use automerge::ChangeHash;
use labnet_protocol::NodeId;

use crate::identity::Identity;
use crate::share::publication::{edit_sample, sample_body, sample_doc};
use crate::store::{NewDisclosure, Store, StoreHandle};
use crate::trust::Scope;

/// The anonymization settings a sample publication's disclosure line
/// records: those of the default configuration, as `labnet share` would.
pub const SAMPLE_SETTINGS: &str = "{\"min_count\":10}";

/// Opens the store in `dir` signing with a freshly generated node key, and
/// returns both.
pub fn signed_store(dir: &Path) -> (Arc<Identity>, Store) {
    let identity = Arc::new(Identity::generate().expect("generating a node key"));
    let mut store = Store::open(dir).expect("opening the store");
    store.set_signer(identity.clone());
    (identity, store)
}

/// The id of `origin`'s publication of practice `name`.
pub fn sample_id(origin: NodeId, name: &str) -> String {
    labnet_protocol::sync::publication_id(origin, name)
        .expect("a valid practice name")
        .as_str()
        .to_string()
}

/// Publishes (or edits) `origin`'s sample practice `name` in `store` with
/// `text` as its description, under `scope`: the signed publication and its
/// disclosure line. The store must sign with `origin`'s key. Returns the
/// publication's id and heads.
pub fn publish_sample(
    store: &mut Store,
    origin: NodeId,
    name: &str,
    text: &str,
    scope: &Scope,
) -> (String, Vec<ChangeHash>) {
    let doc_id = sample_id(origin, name);
    let scope = scope.to_text();
    let mut doc = match store.load_document(&doc_id).expect("reading the store") {
        Some((_, doc)) => doc,
        None => sample_doc(&sample_body(origin, name, 0)),
    };
    edit_sample(&mut doc, text);
    store
        .save_publication(&doc_id, &mut doc, &scope)
        .expect("saving the publication");
    store
        .log_disclosure(&NewDisclosure {
            action: "share",
            doc_id: &doc_id,
            heads: "",
            node_id: None,
            scope: &scope,
            settings: SAMPLE_SETTINGS,
        })
        .expect("logging the disclosure");
    let heads = store
        .publication_row(&doc_id)
        .expect("reading the store")
        .expect("the publication just saved")
        .heads;
    (doc_id, heads)
}

/// [`publish_sample`] through a store handle, as a running node's code
/// writes. The caller tells the sync sessions about the change.
pub async fn publish_sample_via(
    store: &StoreHandle,
    origin: NodeId,
    name: &str,
    text: &str,
    scope: &Scope,
) -> (String, Vec<ChangeHash>) {
    let (name, text, scope) = (name.to_string(), text.to_string(), scope.clone());
    store
        .call(move |s| publish_sample(s, origin, &name, &text, &scope))
        .await
}
