//! The whole history of a publication, checked against today's rules.
//!
//! Peers receive every change of a publication document, not just its current
//! state, so what today's rules remove must be absent from every change ever
//! written. [`check_history`] decodes every change of the document as it is
//! sent (`get_changes(&[])`, the same chunks `save()` holds) and runs the final
//! check of the projection ([`super::anonymize::check_string`]'s scanner) over
//! every string written in it:
//!
//! - every scalar string an operation puts or inserts (overwritten or deleted
//!   values included: the operation stays in the history);
//! - every map key (our documents only use the fixed field names);
//! - every mark's name and string value, and every change's message.
//!
//! Reading operations rather than materializing each version is what is
//! complete: a value written and overwritten inside one change is never
//! visible in any version, yet it is in the bytes. It is also bounded: one pass
//! over the operations, linear in the history's size.
//!
//! Figures are numbers, not strings, so the scanner does not see them; they
//! are checked against the minimum in force when they were written. Every
//! version records its minimum (`meta.settings.min_count`); a figure of an
//! indicator (`achieved`, `target`) written while the document's minimum was
//! lower than today's fails, whatever it counts: a figure rounded to a smaller
//! base, or left unsuppressed under a smaller minimum, is what a stricter
//! setting now forbids, and two versions rounded to different bases can be
//! subtracted. A figure written before any minimum was recorded is taken as
//! written under none. Lowering the minimum fails nothing.
//!
//! A text object (characters inserted one operation at a time) cannot be checked
//! operation by operation; `share` never writes one (autosurgeon writes strings
//! as scalars), so a history holding one fails, closed.
//!
//! Failures name the field path (`practice.description`, list items as
//! `practice.challenges[]`) and the version (the change's position, from 1,
//! and its hash), never the value.
//!
//! The metadata `share` itself generates (`meta.doc_id`, `meta.origin_node`,
//! `meta.scope`, `meta.published_at`) holds keys, ids and a month, no lab data:
//! it is not scanned, so a NodeId's digits are never taken for a phone number.
//! `meta.origin_city` and `meta.practice_id` are scanned like the rest.

use std::collections::HashMap;

use automerge::legacy::{Key, ObjectId, OpId, OpType};
use automerge::{AutoCommit, ObjType, ScalarValue};
use serde::Serialize;

use super::scrub::Scanner;

/// Where a version records the minimum count it was made with.
const MIN_COUNT_PATH: &str = "meta.settings.min_count";

/// The figures of an indicator, checked against the minimum in force.
const FIGURE_PATHS: &[&str] = &[
    "practice.indicators[].achieved",
    "practice.indicators[].target",
];

/// Metadata fields `share` generates itself (ids, keys, a month): not lab data.
const GENERATED_META: &[&str] = &[
    "meta.doc_id",
    "meta.origin_node",
    "meta.scope",
    "meta.published_at",
];

/// One string in a publication's history that today's rules would not publish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryFailure {
    /// The version: the change's position in the history, from 1.
    pub version: usize,
    /// The change's hash, lowercase hex.
    pub change: String,
    /// The field (`practice.description`, `practice.challenges[]`).
    pub path: String,
    /// What kind of data is there (`a name`, `an e-mail address`...).
    pub what: &'static str,
}

/// Checks every string ever written in `doc`'s history against `scanner`.
/// Empty when the whole history passes.
pub fn check_history(doc: &mut AutoCommit, scanner: &Scanner) -> Vec<HistoryFailure> {
    let mut failures = Vec::new();
    // Object id -> field path. Lists' items get `[]`: their position in a past
    // version is not what matters, the field is.
    let mut paths: HashMap<OpId, String> = HashMap::new();
    let changes = doc.get_changes(&[]);
    let today_min = u64::from(scanner.min_count());
    // Our publications are written by one actor, change after change, so the
    // minimum last written is the one in force for what follows it.
    let mut min_in_force: u64 = 0;
    for (i, change) in changes.iter().enumerate() {
        let version = i + 1;
        let hash = change.hash().to_string();
        let mut fail = |path: String, what: &'static str| {
            failures.push(HistoryFailure {
                version,
                change: hash.clone(),
                path,
                what,
            })
        };
        if let Some(message) = change.message() {
            if let Some(what) = scanner.leak(message) {
                fail("(change message)".into(), what);
            }
        }
        let expanded = change.decode();
        let start = expanded.start_op.get();
        for (n, op) in expanded.operations.iter().enumerate() {
            let parent = match &op.obj {
                ObjectId::Root => String::new(),
                ObjectId::Id(id) => paths
                    .get(id)
                    .cloned()
                    .unwrap_or_else(|| "(unknown object)".into()),
            };
            let path = match &op.key {
                Key::Map(k) => {
                    if let Some(what) = scanner.leak(k) {
                        fail(format!("{parent} (a key)"), what);
                    }
                    if parent.is_empty() {
                        k.to_string()
                    } else {
                        format!("{parent}.{k}")
                    }
                }
                Key::Seq(_) => format!("{parent}[]"),
            };
            let scanned = !GENERATED_META.contains(&path.as_str());
            match &op.action {
                OpType::Make(kind) => {
                    if *kind == ObjType::Text {
                        fail(path.clone(), "a text object, which is not checked");
                    }
                    let id = OpId::new(start + n as u64, &expanded.actor_id);
                    paths.insert(id, path);
                }
                OpType::Put(ScalarValue::Str(s)) if scanned => {
                    if let Some(what) = scanner.leak(s) {
                        fail(path, what);
                    }
                }
                OpType::Put(value) if path == MIN_COUNT_PATH => {
                    min_in_force = match value {
                        ScalarValue::Uint(n) => *n,
                        ScalarValue::Int(n) => u64::try_from(*n).unwrap_or(0),
                        _ => 0,
                    };
                }
                OpType::Put(
                    ScalarValue::F64(_)
                    | ScalarValue::Int(_)
                    | ScalarValue::Uint(_)
                    | ScalarValue::Counter(_),
                ) if FIGURE_PATHS.contains(&path.as_str()) && min_in_force < today_min => {
                    fail(path, "a figure published under a lower minimum count");
                }
                OpType::MarkBegin(mark) => {
                    if let Some(what) = scanner.leak(&mark.name) {
                        fail(format!("{path} (a mark)"), what);
                    }
                    if let ScalarValue::Str(s) = &mark.value {
                        if let Some(what) = scanner.leak(s) {
                            fail(format!("{path} (a mark)"), what);
                        }
                    }
                }
                _ => {}
            }
        }
    }
    failures
}

/// The fields that fail, once each, in history order (what a report shows).
pub fn failing_fields(failures: &[HistoryFailure]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for f in failures {
        if !out.contains(&f.path) {
            out.push(f.path.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::share::publication::{edit_sample, sample_body, sample_doc};
    use labnet_protocol::NodeId;

    fn scanner(people: &[&str]) -> Scanner {
        Scanner::of_roster(people, 10)
    }

    /// A publication whose description reads `first` in version one and
    /// `then` in version two.
    fn two_versions(first: &str, then: &str) -> AutoCommit {
        let mut body = sample_body(origin(), "cafe", 1);
        body.practice.description = first.into();
        let mut doc = sample_doc(&body);
        doc.commit();
        edit_sample(&mut doc, then);
        doc
    }

    fn origin() -> NodeId {
        NodeId::from_public_key(&[7; 32])
    }

    #[test]
    fn a_name_written_in_version_one_and_removed_in_version_two_is_found() {
        let mut doc = two_versions("Maria Rossi runs the café.", "A volunteer runs the café.");
        assert_eq!(doc.get_changes(&[]).len(), 2);
        let failures = check_history(&mut doc, &scanner(&["Maria Rossi"]));
        assert!(!failures.is_empty());
        assert!(failures
            .iter()
            .all(|f| f.version == 1 && f.path == "practice.description"));
        assert_eq!(failing_fields(&failures), ["practice.description"]);
        // The report names the field, never the value.
        let text = serde_json::to_string(&failures).expect("json");
        assert!(!text.contains("Rossi") && !text.contains("Maria"));
    }

    #[test]
    fn a_clean_history_passes() {
        let mut doc = two_versions(
            "A volunteer runs the café.",
            "Volunteers run the café together.",
        );
        assert_eq!(check_history(&mut doc, &scanner(&["Maria Rossi"])), []);
        // The generated metadata (NodeId, ids, month) is never taken for data.
        assert!(check_history(&mut doc, &scanner(&[])).is_empty());
    }

    #[test]
    fn a_name_in_a_list_item_of_an_old_version_is_found() {
        let mut body = sample_body(origin(), "cafe", 1);
        body.practice.lessons = vec!["Ask Rossi first".into()];
        let mut doc = sample_doc(&body);
        doc.commit();
        body.practice.lessons = vec!["Ask first".into()];
        autosurgeon::reconcile(&mut doc, &body).expect("reconcile");
        let failures = check_history(&mut doc, &scanner(&["Maria Rossi"]));
        assert_eq!(failing_fields(&failures), ["practice.lessons[]"]);
    }

    fn scanner_with_min(min: u32) -> Scanner {
        Scanner::of_roster(&[], min)
    }

    fn with_figure(min_count: u64, achieved: f64) -> AutoCommit {
        use crate::share::anonymize::PublishedIndicator;
        let mut body = sample_body(origin(), "cafe", 1);
        body.meta.settings.min_count = min_count;
        body.practice.indicators = vec![PublishedIndicator {
            label: "participants".into(),
            achieved: Some(achieved),
            target: None,
            unit: Some("people".into()),
            suppressed: false,
        }];
        let mut doc = sample_doc(&body);
        doc.commit();
        doc
    }

    #[test]
    fn a_figure_published_under_a_lower_minimum_fails_once_the_minimum_is_raised() {
        // 20 was rounded to a base of 5; with 15 now, versions rounded to
        // different bases can be subtracted, so the history must go.
        let mut doc = with_figure(5, 20.0);
        assert!(check_history(&mut doc, &scanner_with_min(5)).is_empty());
        assert!(check_history(&mut doc, &scanner_with_min(3)).is_empty());
        let failures = check_history(&mut doc, &scanner_with_min(15));
        assert_eq!(
            failing_fields(&failures),
            ["practice.indicators[].achieved"]
        );
        assert!(failures
            .iter()
            .all(|f| f.what == "a figure published under a lower minimum count"));
    }

    #[test]
    fn an_old_version_under_a_lower_minimum_fails_even_when_the_latest_is_compliant() {
        // Version 1 under 5, version 2 re-made under 15 with a new figure:
        // version 1's figure is still in every peer's history.
        let mut doc = with_figure(5, 20.0);
        let mut body: crate::share::publication::PublicationBody =
            autosurgeon::hydrate(&doc).expect("hydrate");
        body.meta.settings.min_count = 15;
        body.practice.indicators[0].achieved = Some(30.0);
        autosurgeon::reconcile(&mut doc, &body).expect("reconcile");
        doc.commit();
        let failures = check_history(&mut doc, &scanner_with_min(15));
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert_eq!(failures[0].version, 1);
        // A document made under 15 from the start passes at 15.
        assert!(check_history(&mut with_figure(15, 30.0), &scanner_with_min(15)).is_empty());
    }

    #[test]
    fn a_text_object_fails_closed() {
        use automerge::transaction::Transactable;
        let mut doc = sample_doc(&sample_body(origin(), "cafe", 1));
        let practice = match automerge::ReadDoc::get(&doc, automerge::ROOT, "practice") {
            Ok(Some((_, id))) => id,
            _ => panic!("no practice"),
        };
        let text = doc
            .put_object(&practice, "description", ObjType::Text)
            .expect("text");
        doc.splice_text(&text, 0, 0, "fine").expect("splice");
        let failures = check_history(&mut doc, &scanner(&[]));
        assert_eq!(failing_fields(&failures), ["practice.description"]);
    }
}
