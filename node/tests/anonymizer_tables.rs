//! Indicators as a table: secondary suppression on known figures, and what
//! successive versions of a publication reveal, read from the whole history a
//! peer holds.
#![allow(clippy::unwrap_used)]

use automerge::AutoCommit;
use labnet_node::lab::{Indicator, Practice, Roster};
use labnet_node::share::publication::PublicationBody;
use labnet_node::share::report::Rule;
use labnet_node::share::suppress::{measured as ind, parts_of};
use labnet_node::share::{anonymize, publish, AnonymizationPolicy, Imprint, Publication};
use labnet_node::trust::Scope;
use labnet_protocol::NodeId;

const NOW: i64 = 1_700_000_000;

fn practice(indicators: Vec<Indicator>, description: &str) -> Practice {
    Practice {
        id: "p".into(),
        city: "Modena".into(),
        name: "Job club".into(),
        description: description.into(),
        indicators,
        ..Practice::default()
    }
}

fn figures(indicators: Vec<Indicator>) -> Vec<Option<f64>> {
    anonymize(
        &practice(indicators, ""),
        &Roster::default(),
        &AnonymizationPolicy { min_count: 10 },
    )
    .unwrap()
    .practice
    .indicators
    .iter()
    .map(|i| i.achieved)
    .collect()
}

#[test]
fn secondary_a_total_of_15_next_to_12_women_does_not_reveal_3_men() {
    assert_eq!(
        figures(vec![
            ind("participants", "people", 15.0, None, None),
            ind("women", "people", 12.0, None, None),
        ]),
        [Some(20.0), None]
    );
    // The same declared through the denominator.
    assert_eq!(
        figures(vec![
            ind("participants", "people", 15.0, None, None),
            ind("women", "people", 12.0, Some(12), Some(15)),
        ]),
        [Some(20.0), None]
    );
}

#[test]
fn secondary_a_suppressed_part_is_not_recovered_from_the_total_and_the_other_parts() {
    // 40 = 20 women + 14 men + 6 others (suppressed): 40 - 20 - 14 = 6, so a
    // second part goes.
    let out = figures(parts_of(40, &[("women", 20), ("men", 14), ("others", 6)]));
    assert_eq!(out[2], None);
    assert_eq!(out.iter().filter(|v| v.is_none()).count(), 2, "{out:?}");
    // Larger parts need no second suppression: 60 = 25 + 25 + 10.
    assert_eq!(
        figures(parts_of(60, &[("women", 25), ("men", 25), ("others", 10)])),
        [Some(30.0), Some(30.0), Some(10.0)]
    );
}

#[test]
fn secondary_the_label_declares_the_base_out_of_33_enrolled() {
    assert_eq!(
        figures(vec![ind(
            "Learners who moved up a level (out of 33 enrolled)",
            "people",
            30.0,
            None,
            None
        )]),
        [None]
    );
}

#[test]
fn a_percentage_with_only_a_denominator_computes_its_numerator() {
    // 8.3 % of 12 is one person.
    assert_eq!(
        figures(vec![ind("found a job", "%", 8.3, None, Some(12))]),
        [None]
    );
    // 45 % of 40 is 18 people, 22 others: published, rounded to 20/40.
    assert_eq!(
        figures(vec![ind("found a job", "%", 45.0, None, Some(40))]),
        [Some(50.0)]
    );
    // Neither given: the city attests the base.
    assert_eq!(
        figures(vec![ind("found a job", "%", 8.3, None, None)]),
        [Some(8.3)]
    );
}

/// Every version a peer holds of a publication, oldest first.
fn versions(doc: &mut AutoCommit) -> Vec<PublicationBody> {
    let changes = doc.get_changes(&[]);
    changes
        .iter()
        .map(|c| {
            let at = doc.fork_at(&[c.hash()]).unwrap();
            autosurgeon::hydrate(&at).unwrap()
        })
        .collect()
}

/// Publishes the figures one version after another into one document, and
/// returns what each version in its history says of every indicator.
fn history_of(
    series: &[Vec<Indicator>],
    description: &[&str],
) -> (Vec<Vec<Option<f64>>>, Vec<String>) {
    let origin = NodeId::from_public_key(&[7; 32]);
    let policy = AnonymizationPolicy { min_count: 10 };
    let imprint = Imprint::first(origin, "Modena", &Scope::Partners);
    let mut doc: Option<AutoCommit> = None;
    for (k, inds) in series.iter().enumerate() {
        let p = practice(inds.clone(), description.get(k).copied().unwrap_or(""));
        let a = anonymize(&p, &Roster::default(), &policy).unwrap();
        let (publication, _) = publish(&a, imprint, doc.take(), NOW).unwrap();
        doc = Some(publication.into_doc());
    }
    let mut doc = doc.unwrap();
    let bytes = doc.save();
    // What a peer receives: the whole history.
    let mut received = AutoCommit::load(&bytes).unwrap();
    Publication::from_replica(received.clone()).unwrap();
    let all = versions(&mut received);
    (
        all.iter()
            .map(|b| b.practice.indicators.iter().map(|i| i.achieved).collect())
            .collect(),
        all.iter().map(|b| b.practice.description.clone()).collect(),
    )
}

#[test]
fn versions_15_then_18_participants_never_differ_by_fewer_than_the_minimum() {
    let series: Vec<Vec<Indicator>> = [15.0, 18.0, 23.0, 27.0, 31.0, 26.0, 96.0, 99.0]
        .iter()
        .map(|n| vec![ind("participants", "people", *n, None, None)])
        .collect();
    let (history, _) = history_of(&series, &[]);
    let values: Vec<f64> = history.iter().filter_map(|v| v[0]).collect();
    assert!(values.len() >= 3, "{values:?}");
    // Every pair, not only consecutive ones: peers hold them all.
    for a in &values {
        for b in &values {
            let d = (a - b).abs();
            assert!(d == 0.0 || d >= 10.0, "{a} and {b} differ by {d}");
        }
    }
    // The known figures: 15 -> 20, 18 -> 20 (no change), 23 -> 20, 27 -> 30,
    // 31 -> 30, 26 -> 30, 96 -> 100, 99 -> 100.
    let mut distinct = values.clone();
    distinct.dedup();
    assert_eq!(distinct, [20.0, 30.0, 100.0]);
}

#[test]
fn versions_of_a_percentage_with_a_base_do_not_reveal_two_people() {
    // 50 % then 55 % of 40 is 20 then 22 people: both published as 20/40.
    let series = vec![
        vec![ind("women", "%", 50.0, None, Some(40))],
        vec![ind("women", "%", 55.0, None, Some(40))],
    ];
    let (history, _) = history_of(&series, &[]);
    let values: Vec<f64> = history.iter().filter_map(|v| v[0]).collect();
    assert!(values.iter().all(|v| *v == 50.0), "{values:?}");
}

#[test]
fn versions_of_a_count_in_free_text_are_rounded_too() {
    let series = vec![vec![], vec![]];
    let (_, texts) = history_of(
        &series,
        &["45 participants joined", "48 participants joined"],
    );
    let texts: Vec<&String> = texts.iter().filter(|t| !t.is_empty()).collect();
    assert!(
        texts.iter().all(|t| t.as_str() == "50 participants joined"),
        "{texts:?}"
    );
}

#[test]
fn a_count_dropping_below_the_minimum_is_suppressed_not_shown() {
    let series = vec![
        vec![ind("participants", "people", 12.0, None, None)],
        vec![ind("participants", "people", 9.0, None, None)],
    ];
    let (history, _) = history_of(&series, &[]);
    let last = history.last().unwrap();
    assert_eq!(last[0], None);
    let a = anonymize(
        &practice(series[1].clone(), ""),
        &Roster::default(),
        &AnonymizationPolicy { min_count: 10 },
    )
    .unwrap();
    assert_eq!(a.report.removals[0].rule, Rule::IndicatorBelowMinimum);
    assert_eq!(a.report.removals[0].excerpt, "participants: «suppressed»");
}
