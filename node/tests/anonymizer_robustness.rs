//! The anonymizer reads imports and peers' text: no input may make it panic,
//! and what it publishes must pass its own final check. Property tests over
//! arbitrary Unicode and over text built from the fragments the detectors
//! look for (digits, separators, month and number words, at/dot words, people
//! words, web addresses, names, invisible characters).
#![allow(clippy::unwrap_used)]

mod common;

use common::{bare_practice, stakeholder};
use labnet_node::lab::{Contact, Indicator, MappingArea, Practice, Roster, Stakeholder};
use labnet_node::share::names::NameMatcher;
use labnet_node::share::scrub::Scanner;
use labnet_node::share::{anonymize, AnonymizationPolicy, KnownPeople, NameSource, NotNames};
use proptest::prelude::*;

const FRAGMENTS: &[&str] = &[
    "3",
    "12",
    "2018",
    "14",
    "03",
    "+32",
    "0470",
    "00",
    "1.733",
    "8,5",
    "%",
    "-",
    "–",
    "—",
    "/",
    ".",
    ",",
    ":",
    "(",
    ")",
    "[",
    "]",
    "@",
    "＠",
    " @ ",
    " at ",
    " dot ",
    "(at)",
    "[dot]",
    "punto",
    "chiocciola",
    "arroba",
    "point",
    "March",
    "marzo",
    "Μαρτίου",
    "14th",
    "of",
    "de",
    "seven",
    "tre",
    "veintitrés",
    "quatre-vingt-dix",
    "drieëntwintig",
    "τρεις",
    "women",
    "donne",
    "Teilnehmerinnen",
    "συμμετέχοντες",
    "participants",
    "people",
    "aged",
    "years",
    "https://",
    "www.",
    "wa.me/",
    "social.example/",
    "mailto:",
    ".org",
    "José",
    "Pérez",
    "García",
    "An",
    "an",
    "Γιώργος",
    "de la",
    "\u{00AD}",
    "\u{200B}",
    "\u{200D}",
    "\u{FEFF}",
    "\u{202E}",
    "\u{00A0}",
    "\u{202F}",
    "\n",
    " ",
    " ",
    " ",
    "[name removed]",
    "[count removed]",
    "ﬁ",
    "ß",
    "İ",
    "ǅ",
    "\u{0301}",
    "１２",
    "e\u{0301}",
];

fn fragment_text() -> impl Strategy<Value = String> {
    fragments(40)
}

fn fragments(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::sample::select(FRAGMENTS).prop_map(str::to_string),
            1 => any::<String>().prop_map(|s| s.chars().take(6).collect()),
        ],
        0..max,
    )
    .prop_map(|v| v.concat())
}

/// The rules for these names; `None` when a "name" is too long to be one
/// (the anonymizer refuses those, which is tested elsewhere).
fn scanner(names: &[String], not_names: &[String], min: u32) -> Option<Scanner> {
    let mut people = KnownPeople::new();
    for n in names {
        people.add(n, NameSource::Roster);
    }
    let m = NameMatcher::new(&people, &NotNames::new(not_names)).ok()?;
    Some(Scanner::new(m, min))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn scrubbed_text_passes_the_final_check(
        text in fragment_text(),
        names in prop::collection::vec(fragments(8), 0..3),
        not_names in prop::collection::vec("[a-zA-Zé]{1,8}", 0..2),
        min in 1u32..30,
    ) {
        let sc = scanner(&names, &not_names, min);
        prop_assume!(sc.is_some());
        let sc = sc.unwrap();
        let once = sc.scrub(&text);
        prop_assert_eq!(sc.leak(&once.text), None, "after scrub: {:?} -> {:?}", text, once.text);
        for p in &once.pieces {
            prop_assert!(once.text.get(p.at.clone()).is_some());
        }
    }

    #[test]
    fn arbitrary_unicode_never_panics(
        text in any::<String>(),
        name in any::<String>(),
    ) {
        let sc = scanner(&[name], &[], 10);
        prop_assume!(sc.is_some());
        let sc = sc.unwrap();
        let once = sc.scrub(&text);
        let _ = sc.leak(&text);
        prop_assert_eq!(sc.leak(&once.text), None);
    }

    #[test]
    fn arbitrary_practices_never_panic(
        strings in prop::collection::vec(fragment_text(), 12),
        figures in prop::collection::vec(
            (
                prop::option::of(prop_oneof![any::<f64>(), 0.0f64..50.0]),
                prop::option::of(0.0f64..200.0),
                prop::option::of(any::<u64>()),
                prop::option::of(0u64..60),
                prop::option::of(prop::sample::select(&["people", "%", "projects", "donne", ""][..])),
            ),
            0..6,
        ),
        roster_name in fragments(8),
    ) {
        let s = |i: usize| strings[i].clone();
        let p = Practice {
            area: s(2),
            link: Some(s(3)),
            duration: Some(s(4)),
            description: s(5),
            challenges_addressed: s(6),
            lessons: vec![s(7), s(8)],
            indicators: figures
                .iter()
                .map(|(a, t, n, d, u)| Indicator {
                    label: s(9),
                    achieved: *a,
                    target: *t,
                    unit: u.map(str::to_string),
                    numerator: *n,
                    denominator: *d,
                })
                .collect(),
            contacts: vec![Contact { name: s(10), ..Contact::default() }],
            internal_notes: s(11),
            ..bare_practice("p", &s(0), &s(1))
        };
        let roster = Roster {
            stakeholders: vec![Stakeholder {
                area: MappingArea::Economy,
                ..stakeholder(&roster_name)
            }],
        };
        // Ok or a refusal naming a field; never a panic.
        let _ = anonymize(&p, &roster, &AnonymizationPolicy { min_count: 10 });
    }
}
