//! Tests of `share` over a real store: the paths that re-issue a publication;
//! and [`assert_maps`] and [`assert_kept`], the table checks the detectors'
//! unit tests share.

use std::sync::Arc;

use labnet_config::Role;

use super::*;
use crate::identity::Identity;
use crate::lab::storage;
use crate::lab::{MappingArea, Practice, Roster, Stakeholder};
use crate::store::Store;

/// Asserts that `f` maps the input of each case to its expected output,
/// naming the input of a case that fails.
pub(super) fn assert_maps<O, W>(f: impl Fn(&str) -> O, cases: &[(&str, W)])
where
    O: PartialEq<W> + std::fmt::Debug,
    W: std::fmt::Debug,
{
    for (input, want) in cases {
        assert_eq!(f(input), *want, "{input:?}");
    }
}

/// Asserts that `f` leaves each text as it is, naming a text it changes.
pub(super) fn assert_kept(f: impl Fn(&str) -> String, texts: &[&str]) {
    for text in texts {
        assert_eq!(f(text), *text, "{text:?}");
    }
}

fn open() -> (tempfile::TempDir, Store, NodeId) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let identity = Arc::new(Identity::generate().unwrap());
    let origin = identity.node_id();
    store.set_signer(identity);
    (dir, store, origin)
}

fn practice(description: &str) -> Practice {
    Practice {
        id: "cafe".into(),
        city: "Athens".into(),
        name: "Language café".into(),
        description: description.into(),
        ..Practice::default()
    }
}

fn roster(name: &str) -> Roster {
    Roster {
        stakeholders: vec![Stakeholder {
            name: name.into(),
            organisation: "Café".into(),
            area: MappingArea::CivilSociety,
            email: String::new(),
            phone: String::new(),
            migrant_background: None,
            nationality: None,
            groups: Vec::new(),
            notes: String::new(),
        }],
    }
}

/// Shares the practice `cafe` as Athens, a partner city.
fn share_cafe(
    store: &mut Store,
    origin: NodeId,
    scope: Scope,
    settings: &AnonymizationSettings,
) -> ShareOutcome {
    let request = ShareRequest {
        origin,
        city: "Athens",
        practice_id: "cafe",
        scope: &scope,
        settings,
    };
    share_practice(store, Role::Partner, &request).unwrap()
}

#[test]
fn a_share_that_finds_a_name_in_the_history_reissues_even_without_a_recheck() {
    // The roster learnt the name by a path that did not re-check (here: the
    // storage call itself): the next share still reads the history peers
    // hold, and re-issues rather than adding a version over it.
    let (_dir, mut store, origin) = open();
    let settings = AnonymizationSettings::default();
    storage::import_practices(
        &mut store,
        Role::Partner,
        &[practice("Maria Rossi runs it.")],
    )
    .unwrap();
    let first = share_cafe(&mut store, origin, Scope::Partners, &settings);
    assert!(first.reissued.is_none());
    storage::import_roster(&mut store, Role::Partner, &roster("Maria Rossi")).unwrap();
    let second = share_cafe(&mut store, origin, Scope::Partners, &settings);
    let reissue = second.reissued.expect("the share re-issues");
    assert_eq!(reissue.old_doc_id, first.doc_id);
    assert_eq!(reissue.new_doc_id, format!("{}:g2", first.doc_id));
    assert_eq!(second.doc_id, reissue.new_doc_id);
    assert_eq!(reissue.fields, ["practice.description"]);
    // The old publication is retracted, the new one's history is clean.
    let rows = store.publication_rows().unwrap();
    let old = rows.iter().find(|r| r.doc_id == first.doc_id).unwrap();
    assert!(old.retracted);
    let mut doc = load_publication(&store, &reissue.new_doc_id)
        .unwrap()
        .unwrap();
    let people = known_people(&store).unwrap();
    let scanner = scrub::Scanner::new(
        names::NameMatcher::new(&people, &settings.not_names).unwrap(),
        settings.policy.min_count,
    );
    assert!(check_history(&mut doc, &scanner).is_empty());
    // A third share has nothing left to re-issue.
    let third = share_cafe(&mut store, origin, Scope::Partners, &settings);
    assert!(third.reissued.is_none());
    assert_eq!(third.doc_id, reissue.new_doc_id);
}

fn recheck(store: &mut Store, origin: NodeId, settings: &AnonymizationSettings) -> Vec<Reissue> {
    recheck_publications(store, Role::Partner, origin, "Athens", settings).unwrap()
}

#[test]
fn a_recheck_under_a_raised_minimum_reissues_a_publication_with_figures() {
    let (_dir, mut store, origin) = open();
    let mut p = practice("Neighbours practise Greek together.");
    p.indicators = vec![crate::lab::Indicator {
        label: "participants".into(),
        achieved: Some(20.0),
        target: None,
        unit: Some("people".into()),
        numerator: None,
        denominator: None,
    }];
    storage::import_practices(&mut store, Role::Partner, &[p]).unwrap();
    let mut lenient = AnonymizationSettings::default();
    lenient.policy.min_count = 5;
    let first = share_cafe(&mut store, origin, Scope::Public, &lenient);
    assert!(recheck(&mut store, origin, &lenient).is_empty());
    let mut strict = lenient.clone();
    strict.policy.min_count = 15;
    let done = recheck(&mut store, origin, &strict);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].old_doc_id, first.doc_id);
    assert_eq!(done[0].fields, ["practice.indicators[].achieved"]);
    // Once re-issued under 15, the same rules find nothing more.
    assert!(recheck(&mut store, origin, &strict).is_empty());
}

#[test]
fn only_narrowing_from_public_reissues() {
    let (_dir, mut store, origin) = open();
    let settings = AnonymizationSettings::default();
    storage::import_practices(&mut store, Role::Partner, &[practice("A weekly café.")]).unwrap();
    let mut share = |scope: Scope| share_cafe(&mut store, origin, scope, &settings);
    let first = share(Scope::Partners);
    // Widening, and narrowing among scopes the origin serves itself, are new
    // versions of the same document.
    let wider = share(Scope::Public);
    assert!(wider.reissued.is_none());
    assert_eq!(wider.doc_id, first.doc_id);
    let narrowed = share(Scope::Partners);
    let reissue = narrowed.reissued.expect("public to partners re-issues");
    assert!(reissue.narrowed);
    assert!(reissue.fields.is_empty());
    assert_eq!(reissue.old_doc_id, first.doc_id);
    let named = share(Scope::Nodes(vec![origin]));
    assert!(named.reissued.is_none());
    assert_eq!(named.doc_id, narrowed.doc_id);
}
