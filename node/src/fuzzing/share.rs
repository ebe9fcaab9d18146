//! The share targets: the free-text scrubber (`scrub`) and the anonymizer
//! (`anonymize`), whose output must be a fixed point.

use crate::lab::{Indicator, Practice};
use crate::share::names::{KnownPeople, NameMatcher, NameSource, NotNames};
use crate::share::scrub::Scanner;
use crate::share::{anonymize_with, AnonymizationPolicy};
use crate::share::{AnonymizationSettings, AnonymizerInput};

use super::{fields, join_raw, Input, Seed};

// ---- scrub -------------------------------------------------------------------

/// The scrubber. Input: a byte of minimum count, then `0xff`-separated
/// fields: the text, then names of known people. What the scrub returns is
/// either a fixed point of the scrub or refused by the final check
/// ([`Scanner::leak`]); every piece it reports lies in its text.
pub fn scrub(data: &[u8]) {
    let mut input = Input::new(data);
    let min_count = u32::from(input.byte() % 32).max(1);
    let parts = fields(input.rest);
    let Some((text, names)) = parts.split_first() else {
        return;
    };
    let Some(scanner) = scanner(names, min_count) else {
        return;
    };
    let once = scanner.scrub(text);
    for piece in &once.pieces {
        assert!(
            once.text.get(piece.at.clone()).is_some(),
            "a piece outside the text or off a character boundary"
        );
    }
    if scanner.leak(&once.text).is_none() {
        let twice = scanner.scrub(&once.text);
        assert_eq!(
            twice.text, once.text,
            "scrubbed text passes the final check but a second scrub changes it"
        );
    }
}

fn scanner(names: &[String], min_count: u32) -> Option<Scanner> {
    let mut people = KnownPeople::new();
    for n in names.iter().take(8) {
        people.add(n, NameSource::Roster);
    }
    let matcher = NameMatcher::new(&people, &NotNames::none()).ok()?;
    Some(Scanner::new(matcher, min_count))
}

/// Seeds of `scrub`.
pub fn scrub_seeds() -> Vec<Seed> {
    let seed = |min: u8, parts: &[&str]| [vec![min], join_raw(parts)].concat();
    vec![
        (
            "contacts",
            seed(
                10,
                &[
                    "Call Maria Rossi on +39 059 123 4567 or write to maria.rossi@comune.modena.it.",
                    "Maria Rossi",
                ],
            ),
        ),
        (
            "counts-and-dates",
            seed(
                10,
                &[
                    "On 12 March 2024, 7 families and 43 volunteers met; 32.7% stayed (2018-2021).",
                    "Jan de Vries",
                ],
            ),
        ),
        (
            "links",
            seed(
                5,
                &[
                    "See https://example.org/projects/cafe and https://linkedin.com/in/jan-devries, wa.me/32470123456.",
                    "Jan de Vries",
                ],
            ),
        ),
        (
            "obfuscated-email",
            seed(
                10,
                &["Write to anna dot berg at gmail dot com, or Annas office.", "Anna Berg"],
            ),
        ),
        (
            "accents",
            seed(
                3,
                &["Zoë Müller-Lüdenscheidt und Frau Ångström trafen am 3.4.2023 12 Personen.", "Zoë Müller-Lüdenscheidt", "Åsa Ångström"],
            ),
        ),
    ]
}

// ---- anonymize ---------------------------------------------------------------

/// The anonymizer on a practice made of fuzzer text. Input: a byte of minimum
/// count, then `0xff`-separated fields: known names (`|`-separated), then
/// the practice's id, city, name, area, duration, challenges addressed,
/// description, communication, stakeholder involvement, migrant involvement,
/// challenges, recommendations, lessons (lists `|`-separated) and indicator
/// labels (`|`-separated). What it publishes, anonymized again with the same
/// people and settings, must come out unchanged.
pub fn anonymize(data: &[u8]) {
    let mut input = Input::new(data);
    let min_count = u32::from(input.byte() % 32).max(1);
    let achieved = input.byte();
    let mut parts = fields(input.rest).into_iter();
    let mut next = || parts.next().unwrap_or_default();
    let list = |s: String| -> Vec<String> {
        s.split('|')
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect()
    };
    let names = list(next());
    let mut people = KnownPeople::new();
    for n in names.iter().take(8) {
        people.add(n, NameSource::Roster);
    }
    let practice = Practice {
        id: next(),
        city: next(),
        name: next(),
        area: next(),
        duration: Some(next()).filter(|d| !d.is_empty()),
        challenges_addressed: next(),
        description: next(),
        communication: next(),
        stakeholder_involvement: next(),
        migrant_involvement: next(),
        challenges: list(next()),
        recommendations: list(next()),
        lessons: list(next()),
        indicators: list(next())
            .into_iter()
            .take(8)
            .map(|label| Indicator {
                label,
                achieved: Some(f64::from(achieved)),
                target: None,
                unit: Some("people".into()),
                numerator: None,
                denominator: None,
            })
            .collect(),
        ..Practice::default()
    };
    let settings = AnonymizationSettings::from(AnonymizationPolicy { min_count });
    let run = |practice: &Practice| {
        anonymize_with(&AnonymizerInput {
            practice,
            people: &people,
            settings: &settings,
        })
    };
    let Ok(first) = run(&practice) else {
        return;
    };
    let p = &first.practice;
    let again = Practice {
        id: p.id.clone(),
        city: p.city.clone(),
        name: p.name.clone(),
        area: p.area.clone(),
        thematic_area: p.thematic_area,
        link: p.link.clone(),
        duration: p.duration.clone(),
        challenges_addressed: p.challenges_addressed.clone(),
        stakeholders_involved: p.stakeholders_involved.clone(),
        description: p.description.clone(),
        systematized: p.systematized,
        indicators: p
            .indicators
            .iter()
            .map(|i| Indicator {
                label: i.label.clone(),
                achieved: i.achieved,
                target: i.target,
                unit: i.unit.clone(),
                numerator: None,
                denominator: None,
            })
            .collect(),
        communication: p.communication.clone(),
        stakeholder_involvement: p.stakeholder_involvement.clone(),
        migrant_involvement: p.migrant_involvement.clone(),
        challenges: p.challenges.clone(),
        recommendations: p.recommendations.clone(),
        lessons: p.lessons.clone(),
        contacts: Vec::new(),
        internal_notes: String::new(),
    };
    let second = match run(&again) {
        Ok(second) => second,
        Err(e) => panic!("the anonymizer refuses its own output: {e}"),
    };
    // A suppressed result keeps its label and loses its figures, so the
    // second pass sees a result with no figures, which it does not call
    // suppressed: the flag is the one thing a projection cannot carry back.
    let unflagged = |mut p: crate::share::PublishedPractice| {
        for i in &mut p.indicators {
            i.suppressed = false;
        }
        p
    };
    assert_eq!(
        unflagged(second.practice),
        unflagged(first.practice.clone()),
        "anonymizing a projection again changes it"
    );
}

/// Seeds of `anonymize`.
pub fn anonymize_seeds() -> Vec<Seed> {
    let seed = |min: u8, parts: &[&str]| [vec![min, 40], join_raw(parts)].concat();
    vec![
        (
            "language-cafe",
            seed(
                10,
                &[
                    "Maria Rossi|Jan de Vries",
                    "language-cafe",
                    "Modena",
                    "Language cafe",
                    "Language learning",
                    "2023-03/2024-06",
                    "Isolation of newcomers",
                    "Every Tuesday since 14 March 2023 Maria Rossi (maria@comune.it, +39 059 1234567) hosts 7 newcomers and 40 volunteers.",
                    "Posters in the library; ask Jan de Vries.",
                    "Monthly meetings",
                    "Co-design with 12 participants",
                    "Volunteers' time|Rooms",
                    "Start small",
                    "Food helps|Call Jan on 0470 12 34 56",
                    "Participants|Volunteers",
                ],
            ),
        ),
        (
            "short",
            seed(5, &["Anna Berg", "p1", "", "Mentoring", "Care", "", "", "Anna Berg mentors 3 families.", "", "", "", "", "", "", ""]),
        ),
    ]
}
