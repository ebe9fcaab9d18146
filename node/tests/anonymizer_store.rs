//! The share operations against a real store: imports (all or nothing),
//! share/update/unshare and their disclosure log rows, subscriber refusal.
#![allow(clippy::unwrap_used)]

mod common;

use common::bare_practice;
use labnet_config::Role;
use labnet_node::lab::import::{parse_practices, ImportFormat, ImportInput};
use labnet_node::lab::storage::{self, LabStoreError};
use labnet_node::share::{
    self, AnonymizationPolicy, AnonymizationSettings, PublishChange, ShareError, ShareRequest,
};
use labnet_node::store::{DocumentKind, Store};
use labnet_node::trust::Scope;
use labnet_protocol::NodeId;

const PARTNERS: &str = include_str!("../data/practices.json");

/// The node key of this test's city, which signs its publications.
fn identity() -> std::sync::Arc<labnet_node::identity::Identity> {
    static IDENTITY: std::sync::OnceLock<std::sync::Arc<labnet_node::identity::Identity>> =
        std::sync::OnceLock::new();
    IDENTITY
        .get_or_init(|| std::sync::Arc::new(labnet_node::identity::Identity::generate().unwrap()))
        .clone()
}

fn origin() -> NodeId {
    identity().node_id()
}

/// A store in `dir` that signs with this test's city key.
fn signed_store(dir: &std::path::Path) -> Store {
    let mut store = Store::open(dir).unwrap();
    store.set_signer(identity());
    store
}

#[test]
fn every_origin_can_name_its_publications() {
    // Publication ids use the NodeId's data characters, never its check symbol
    // (which may be one of `*~$=`), so every node can publish.
    for b in 0u8..=255 {
        let node = NodeId::from_public_key(&[b; 32]);
        let id = share::publication_doc_id(node, "x").unwrap();
        assert_eq!(labnet_protocol::sync::origin_of(&id), Some(node));
    }
}

#[test]
fn a_failing_import_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let bad = r#"{"practices": [{"id": "ok", "city": "C", "name": "N"},
                                 {"id": "bad", "city": "C", "name": "M", "thematic_area": "sport"}]}"#;
    let errs = parse_practices(ImportInput::Text(bad), Some(ImportFormat::Json)).unwrap_err();
    assert_eq!(errs.errors.len(), 1);
    assert_eq!(errs.errors[0].location, "practices[1].thematic_area");
    // Parsing failed, so the caller has nothing to import: the store is untouched.
    assert!(storage::list_practices(&store).unwrap().is_empty());
    assert_eq!(store.document_counts().unwrap().private, 0);
}

#[test]
fn a_subscriber_refuses_import_and_share() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = signed_store(dir.path());
    let ps = parse_practices(ImportInput::Text(PARTNERS), None).unwrap();
    assert!(matches!(
        storage::import_practices(&mut store, Role::Subscriber, &ps),
        Err(LabStoreError::NotPartner { .. })
    ));
    let request = ShareRequest {
        origin: origin(),
        city: "C",
        practice_id: &ps[0].id,
        scope: &Scope::Public,
        settings: &AnonymizationSettings::default(),
    };
    assert!(matches!(
        share::share_practice(&mut store, Role::Subscriber, &request),
        Err(ShareError::NotPartner { .. })
    ));
    assert_eq!(store.document_counts().unwrap().private, 0);
}

#[test]
fn import_share_update_unshare_with_disclosures() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = signed_store(dir.path());
    let mut ps = parse_practices(ImportInput::Text(PARTNERS), None).unwrap();
    let report = storage::import_practices(&mut store, Role::Partner, &ps).unwrap();
    assert_eq!(report.created.len(), 25);
    assert!(report.updated.is_empty());
    ps[0].internal_notes = "call back".into();
    let report = storage::import_practices(&mut store, Role::Partner, &ps[..1]).unwrap();
    assert_eq!(report.updated, vec![ps[0].id.clone()]);
    assert_eq!(
        storage::load_practice(&store, &ps[0].id).unwrap().unwrap(),
        ps[0]
    );
    assert_eq!(storage::list_practices(&store).unwrap().len(), 25);

    let settings = AnonymizationSettings::from(AnonymizationPolicy { min_count: 10 });
    let id = ps[0].id.clone();
    let request = |scope| ShareRequest {
        origin: origin(),
        city: "Fuenlabrada",
        practice_id: &id,
        scope,
        settings: &settings,
    };
    let preview = share::preview_practice(&store, &request(&Scope::Partners)).unwrap();
    assert_eq!(
        store.document_counts().unwrap().publication,
        0,
        "preview writes nothing"
    );

    let share = |store: &mut Store, scope| {
        share::share_practice(store, Role::Partner, &request(scope)).unwrap()
    };
    let out = share(&mut store, &Scope::Partners);
    assert_eq!(out.change, PublishChange::Created);
    assert_eq!(out.doc_id, format!("{}:{id}", origin().to_key()));
    assert_eq!(out.preview_json, preview.json);
    assert!(!out.preview_json.contains("call back"));
    let (kind, _) = store.load_document(&out.doc_id).unwrap().unwrap();
    assert_eq!(kind, DocumentKind::Publication);

    let again = share(&mut store, &Scope::Partners);
    assert_eq!(again.change, PublishChange::Unchanged);

    ps[0].description.push_str(" Extended in 2022.");
    storage::import_practices(&mut store, Role::Partner, &ps[..1]).unwrap();
    let upd = share(&mut store, &Scope::Public);
    assert_eq!(upd.change, PublishChange::Updated);

    assert!(share::unshare_practice(&mut store, Role::Partner, &id, origin()).unwrap());
    assert!(!share::unshare_practice(&mut store, Role::Partner, &id, origin()).unwrap());

    let log = store.disclosures(None, None).unwrap();
    let actions: Vec<&str> = log.iter().map(|d| d.action.as_str()).collect();
    assert_eq!(actions, vec!["share", "update", "unshare"]);
    assert_eq!(log[0].scope, "partners");
    assert_eq!(log[0].settings, "{\"min_count\":10}");
    assert_eq!(log[0].heads, out.heads.join(","));
    assert!(log[0]
        .heads
        .chars()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase() || c == ','));
    assert_eq!(log[1].scope, "public");
    assert_eq!(log[1].heads, upd.heads.join(","));
    assert_eq!(log.iter().filter(|d| d.doc_id == out.doc_id).count(), 3);
}

#[test]
fn a_contact_of_another_practice_is_scrubbed_and_exemptions_are_logged() {
    use labnet_node::lab::{Contact, Practice};
    use labnet_node::share::NotNames;
    let dir = tempfile::tempdir().unwrap();
    let mut store = signed_store(dir.path());
    let a = Practice {
        description: "Ask Dimitra about the green corners.".into(),
        ..bare_practice("a", "Modena", "Green corners")
    };
    let b = Practice {
        contacts: vec![Contact {
            name: "Dimitra Green".into(),
            ..Contact::default()
        }],
        ..bare_practice("b", "Modena", "Other")
    };
    labnet_node::lab::storage::import_practices(&mut store, Role::Partner, &[a, b]).unwrap();
    // "Green" is a contact's family name: without an exemption the practice's
    // own name cannot be published.
    let policy = AnonymizationPolicy { min_count: 10 };
    fn request(settings: &AnonymizationSettings) -> ShareRequest<'_> {
        ShareRequest {
            origin: origin(),
            city: "Modena",
            practice_id: "a",
            scope: &Scope::Partners,
            settings,
        }
    }
    let share_a = |store: &mut Store, settings: &AnonymizationSettings| {
        share::share_practice(store, Role::Partner, &request(settings))
    };
    let err = share_a(&mut store, &policy.into()).unwrap_err();
    assert!(
        matches!(&err, ShareError::LeakDetected { path, .. } if path == "practice.name"),
        "{err}"
    );
    assert!(err.to_string().contains("not_names"), "{err}");
    let settings = AnonymizationSettings {
        policy,
        not_names: NotNames::new(["green"]),
    };
    let preview = share::preview_practice(&store, &request(&settings)).unwrap();
    assert!(preview
        .json
        .contains("Ask [name removed] about the green corners."));
    assert_eq!(preview.report.exemptions.len(), 1);
    let out = share_a(&mut store, &settings).unwrap();
    assert_eq!(out.preview_json, preview.json);
    let log = store.disclosures(None, None).unwrap();
    assert_eq!(log[0].settings, r#"{"min_count":10,"not_names":["green"]}"#);
    // The exemptions stay in the city: the publication carries min_count only.
    assert!(!out.preview_json.contains("not_names"));
}
