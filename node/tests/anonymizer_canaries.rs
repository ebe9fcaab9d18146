//! Property test: canary strings planted in every private field and inside free
//! text never reach a publication document's saved bytes, history included,
//! also after an edit and a re-share.
//!
//! Canaries encode the field they were planted in (`canarydescription@...`,
//! `CANARY_internal_notes`), so a shrunk failure names the leaking field.
#![allow(clippy::unwrap_used)]

use automerge::AutoCommit;
use labnet_node::lab::{Contact, Indicator, MappingArea, Practice, Roster, Stakeholder};
use labnet_node::share::publication::PublicationBody;
use labnet_node::share::scrub::fold;
use labnet_node::share::{anonymize, publish, AnonymizationPolicy};
use labnet_node::trust::Scope;
use labnet_protocol::NodeId;
use proptest::prelude::*;

const FILLER: &[&str] = &[
    "city", "lab", "training", "school", "the", "and", "with", "group", "support", "families",
];

/// One thing planted in a free-text field.
#[derive(Debug, Clone)]
enum Plant {
    Email {
        form: u8,
    },
    Phone {
        form: u8,
        digits: Vec<u8>,
    },
    Name {
        who: usize,
        full: bool,
        styling: Vec<u8>,
    },
}

fn plant() -> impl Strategy<Value = Plant> {
    prop_oneof![
        (0u8..5).prop_map(|form| Plant::Email { form }),
        (0u8..6, prop::collection::vec(0u8..10, 8))
            .prop_map(|(form, digits)| Plant::Phone { form, digits }),
        (0usize..3, any::<bool>(), prop::collection::vec(0u8..4, 16))
            .prop_map(|(who, full, styling)| Plant::Name { who, full, styling }),
    ]
}

fn style(word: &str, styling: &[u8]) -> String {
    word.chars()
        .zip(styling.iter().cycle())
        .map(|(c, s)| match (s, c) {
            (1, _) => c.to_uppercase().collect(),
            (2, 'a') => "á".into(),
            (2, 'e') => "é".into(),
            (2, 'o') => "ö".into(),
            (2, 'u') => "ú".into(),
            (2, 'n') => "ñ".into(),
            (3, _) => format!("{c}\u{0301}"),
            _ => c.to_string(),
        })
        .collect()
}

fn render(p: &Plant, field: &str, names: &[(String, String)]) -> String {
    let field: String = field.chars().filter(char::is_ascii_alphabetic).collect();
    match p {
        Plant::Email { form } => {
            let local = format!("canary{field}");
            match form {
                0 => format!("{local}@example.org"),
                1 => format!("{local} at example dot org"),
                2 => format!("{local} (at) example (dot) org"),
                3 => format!("{local}[at]example[dot]org"),
                _ => format!("{local} AT example DOT org"),
            }
        }
        Plant::Phone { form, digits } => {
            let d: String = digits.iter().map(|x| char::from(b'0' + x)).collect();
            let (a, b, c, e) = (&d[0..2], &d[2..4], &d[4..6], &d[6..8]);
            match form {
                0 => format!("+32 4{a} {b} {c} {e}"),
                1 => format!("0032 4{a} {b} {c} {e}"),
                2 => format!("+32-4{a}-{b}{c}-{e}"),
                3 => format!("(04{a}) {b}.{c}.{e}"),
                4 => format!("04{a}/{b}{c}{e}"),
                _ => format!("+32 (0)4{a} {b}{c} {e}"),
            }
        }
        Plant::Name { who, full, styling } => {
            let (first, last) = &names[*who % names.len()];
            if *full {
                format!("{} {}", style(first, styling), style(last, &styling[3..]))
            } else {
                style(last, styling)
            }
        }
    }
}

fn text(field: &str, plants: &[Plant], names: &[(String, String)], words: &[usize]) -> String {
    let mut out = Vec::new();
    for (i, p) in plants.iter().enumerate() {
        out.push(FILLER[words.get(i).copied().unwrap_or(0) % FILLER.len()].to_string());
        out.push(render(p, field, names));
    }
    out.push("end".into());
    out.join(" ")
}

#[derive(Debug, Clone)]
struct Case {
    names: Vec<(String, String)>,
    plants: Vec<Vec<Plant>>,
    words: Vec<usize>,
    edit: Vec<Plant>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(("[a-z]{4,7}", "[a-z]{4,7}"), 1..4),
        prop::collection::vec(prop::collection::vec(plant(), 0..3), 12),
        prop::collection::vec(0usize..10, 3),
        prop::collection::vec(plant(), 1..3),
    )
        .prop_map(|(raw, plants, words, edit)| Case {
            // Prefixes keep roster names apart from the filler words.
            names: raw
                .into_iter()
                .map(|(f, l)| (format!("qx{f}"), format!("zq{l}")))
                .collect(),
            plants,
            words,
            edit,
        })
}

const TEXT_FIELDS: &[&str] = &[
    "description",
    "challenges_addressed",
    "communication",
    "stakeholder_involvement",
    "migrant_involvement",
    "duration",
    "challenges",
    "recommendations",
    "lessons",
    "indicator_label",
];

fn build(c: &Case) -> (Practice, Roster) {
    let t = |i: usize| text(TEXT_FIELDS[i], &c.plants[i], &c.names, &c.words);
    let practice = Practice {
        id: "reference-group".into(),
        city: "Mechelen".into(),
        name: "Reference group".into(),
        area: "Education".into(),
        thematic_area: None,
        link: Some("https://example.org/practice".into()),
        duration: Some(t(5)),
        challenges_addressed: t(1),
        stakeholders_involved: vec!["schools".into()],
        description: t(0),
        systematized: true,
        indicators: vec![Indicator {
            label: t(9),
            achieved: Some(40.0),
            target: None,
            unit: Some("people".into()),
            numerator: None,
            denominator: None,
        }],
        communication: t(2),
        stakeholder_involvement: t(3),
        migrant_involvement: t(4),
        challenges: vec![t(6)],
        recommendations: vec![t(7)],
        lessons: vec![t(8)],
        contacts: vec![Contact {
            name: "CANARY_contacts_name".into(),
            role: "CANARY_contacts_role".into(),
            email: "canary_contacts_email@example.org".into(),
            phone: "CANARY_contacts_phone +32 470 99 88 77".into(),
        }],
        internal_notes: "CANARY_internal_notes".into(),
    };
    let roster = Roster {
        stakeholders: c
            .names
            .iter()
            .map(|(f, l)| Stakeholder {
                name: format!("{f} {l}"),
                organisation: "CANARY_roster_organisation".into(),
                area: MappingArea::MigrantCommunities,
                email: "canary_roster_email@example.org".into(),
                phone: "CANARY_roster_phone".into(),
                migrant_background: Some(true),
                nationality: Some("CANARY_roster_nationality".into()),
                groups: vec!["CANARY_roster_groups".into()],
                notes: "CANARY_roster_notes".into(),
            })
            .collect(),
    };
    (practice, roster)
}

fn check(doc_bytes: &[u8], c: &Case) -> Result<(), TestCaseError> {
    let raw = String::from_utf8_lossy(doc_bytes).to_lowercase();
    if let Some(at) = raw.find("canary") {
        let end = (at + 40).min(raw.len());
        return Err(TestCaseError::fail(format!(
            "leak in saved bytes: {}",
            &raw[at..end]
        )));
    }
    let doc = AutoCommit::load(doc_bytes).unwrap();
    let body: PublicationBody = autosurgeon::hydrate(&doc).unwrap();
    let json = serde_json::to_string(&body).unwrap();
    let folded = fold(&json);
    for (first, last) in &c.names {
        prop_assert!(
            !folded.contains(first.as_str()),
            "roster first name {first} leaked: {json}"
        );
        prop_assert!(
            !folded.contains(last.as_str()),
            "roster surname {last} leaked: {json}"
        );
    }
    // Nothing planted has digits except phones, and nothing published should.
    let strings = serde_json::to_string(&body.practice).unwrap();
    let digits = strings.replace("40.0", "");
    prop_assert!(
        !digits.chars().any(|ch| ch.is_ascii_digit()),
        "digits (a phone?) leaked: {strings}"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn no_canary_reaches_a_publication(c in case()) {
        let origin = NodeId::from_public_key(&[7; 32]);
        let policy = AnonymizationPolicy { min_count: 10 };
        let (mut practice, roster) = build(&c);
        let a = anonymize(&practice, &roster, &policy).unwrap();
        let (mut publication, _) = publish(&a, origin, "Mechelen", &Scope::Partners, None, 1_700_000_000).unwrap();
        check(&publication.doc().clone().save_nocompress(), &c)?;
        check(&publication.save(), &c)?;

        // An edit, re-shared into the same document: the history must stay clean.
        practice.description = text("description", &c.edit, &c.names, &c.words);
        let a = anonymize(&practice, &roster, &policy).unwrap();
        let (publication, _) = publish(&a, origin, "Mechelen", &Scope::Partners, Some(publication.into_doc()), 1_700_000_000).unwrap();
        let mut doc = publication.into_doc();
        check(&doc.save_nocompress(), &c)?;
    }
}
