//! Property test: canaries planted in every private field and inside free text,
//! under every variant the anonymizer must see through, never reach a byte that
//! leaves the node: the projection, the whole saved history of the publication
//! document (every change decoded, not only the current state), its raw saved
//! bytes, the feed exports (Atom, JSON Feed, CSV), and every log line the
//! node writes, at every level its log filter lets through (`RUST_LOG=trace`
//! under [`labnet_node::daemon::FORCED_LOG_DIRECTIVES`]), while it imports the roster and the practice,
//! previews, shares and re-checks them through a real store. Also after an
//! edit re-shared into the same document.
//!
//! Planted in free text:
//! - e-mail addresses in 14 notations (spaced `@`, brackets, the at/dot words
//!   of the partner languages, a full-width at sign, a zero-width space);
//! - phone numbers with ASCII, no-break, narrow no-break and thin spaces, en and
//!   em dashes, minus signs, full-width digits;
//! - names of roster members, of this practice's contacts and of another
//!   practice's contacts: whole, given name alone, family name alone, each part
//!   of a hyphenated family name, run together; in any case, with accents,
//!   with invisible characters inside, with a possessive or genitive ending; a
//!   two-letter given name (with its capital, per the short-name rule);
//! - web addresses carrying a name, a phone number or an e-mail address;
//! - counts of people below the minimum in digits and in number words of the
//!   seven partner languages, with people words of those languages;
//! - dates finer than the month, with month names in the seven languages and in
//!   numeric notations, with two-digit years.
//!
//! Canaries encode the field they were planted in (`canarydescription@...`,
//! `CANARY_internal_notes`), so a shrunk failure names the leaking field.
#![allow(clippy::unwrap_used)]

use automerge::AutoCommit;
use labnet_node::feed::{to_atom, to_csv, to_json_feed, FeedInfo};
use labnet_node::lab::{Contact, Indicator, MappingArea, Practice, Roster, Stakeholder};
use labnet_node::share::normalize::{fold, normalize};
use labnet_node::share::publication::PublicationBody;
use labnet_node::share::{
    anonymize_with, publish, AnonymizationPolicy, AnonymizationSettings, AnonymizerInput, Imprint,
    KnownPeople, NameSource, Publication,
};
use labnet_node::trust::Scope;
use labnet_protocol::NodeId;
use proptest::prelude::*;
use unicode_normalization::UnicodeNormalization;

const NOW: i64 = 1_700_000_000;
const MIN: u32 = 10;

/// Words between plants: none is a name, a number word, a people word that a
/// count could attach to ambiguously, or a month.
const FILLER: &[&str] = &[
    "city", "lab", "training", "school", "the", "and", "with", "group", "support", "network",
];

const INVISIBLE: &[char] = &[
    '\u{00AD}', '\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{FEFF}', '\u{202E}',
];

/// A person: given name, family name parts (two parts: hyphenated).
#[derive(Debug, Clone)]
struct Person {
    given: String,
    family: Vec<String>,
}

impl Person {
    fn full(&self) -> String {
        format!("{} {}", self.given, self.family.join("-"))
    }
    /// The parts the oracle looks for (long enough to search as substrings).
    fn parts(&self) -> Vec<String> {
        let mut v = vec![self.given.clone()];
        v.extend(self.family.iter().cloned());
        v
    }
}

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
        part: u8,
        styling: Vec<u8>,
        ending: u8,
    },
    ShortName {
        styling: Vec<u8>,
    },
    Url {
        form: u8,
        who: usize,
        digits: Vec<u8>,
    },
    Count {
        value: u8,
        form: u8,
        noun: u8,
    },
    Date {
        day: u8,
        month: u8,
        year: u8,
        form: u8,
    },
}

fn plant() -> impl Strategy<Value = Plant> {
    prop_oneof![
        (0u8..14).prop_map(|form| Plant::Email { form }),
        (0u8..13, prop::collection::vec(0u8..10, 8))
            .prop_map(|(form, digits)| Plant::Phone { form, digits }),
        (
            0usize..16,
            0u8..6,
            prop::collection::vec(0u8..8, 24),
            0u8..4
        )
            .prop_map(|(who, part, styling, ending)| Plant::Name {
                who,
                part,
                styling,
                ending
            }),
        prop::collection::vec(0u8..8, 4).prop_map(|styling| Plant::ShortName { styling }),
        (0u8..6, 0usize..16, prop::collection::vec(0u8..10, 9))
            .prop_map(|(form, who, digits)| Plant::Url { form, who, digits }),
        (0u8..10, 0u8..9, 0u8..8).prop_map(|(value, form, noun)| Plant::Count {
            value,
            form,
            noun
        }),
        (21u8..29, 1u8..13, 16u8..20, 0u8..13).prop_map(|(day, month, year, form)| {
            Plant::Date {
                day,
                month,
                year,
                form,
            }
        }),
    ]
}

/// Case, accents and invisible characters, per character.
fn style(word: &str, styling: &[u8]) -> String {
    let mut out = String::new();
    for (c, s) in word.chars().zip(styling.iter().cycle()) {
        match (s, c) {
            (1, _) => out.extend(c.to_uppercase()),
            (2, 'a') => out.push('á'),
            (2, 'e') => out.push('é'),
            (2, 'o') => out.push('ö'),
            (2, 'u') => out.push('ú'),
            (2, 'n') => out.push('ñ'),
            (3, _) => {
                out.push(c);
                out.push('\u{0301}');
            }
            (4 | 5, _) => {
                out.push(c);
                out.push(INVISIBLE[usize::from(*s) % INVISIBLE.len()]);
            }
            (6, _) => {
                out.push(c);
                out.push(INVISIBLE[(c as usize) % INVISIBLE.len()]);
            }
            _ => out.push(c),
        }
    }
    out
}

const EN_MONTHS: &[&str] = &[
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const IT_MONTHS: &[&str] = &[
    "gennaio",
    "febbraio",
    "marzo",
    "aprile",
    "maggio",
    "giugno",
    "luglio",
    "agosto",
    "settembre",
    "ottobre",
    "novembre",
    "dicembre",
];
const ES_MONTHS: &[&str] = &[
    "enero",
    "febrero",
    "marzo",
    "abril",
    "mayo",
    "junio",
    "julio",
    "agosto",
    "septiembre",
    "octubre",
    "noviembre",
    "diciembre",
];
const FR_MONTHS: &[&str] = &[
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];
const DE_MONTHS: &[&str] = &[
    "Januar",
    "Februar",
    "März",
    "April",
    "Mai",
    "Juni",
    "Juli",
    "August",
    "September",
    "Oktober",
    "November",
    "Dezember",
];
const NL_MONTHS: &[&str] = &[
    "januari",
    "februari",
    "maart",
    "april",
    "mei",
    "juni",
    "juli",
    "augustus",
    "september",
    "oktober",
    "november",
    "december",
];
const EL_MONTHS: &[&str] = &[
    "Ιανουαρίου",
    "Φεβρουαρίου",
    "Μαρτίου",
    "Απριλίου",
    "Μαΐου",
    "Ιουνίου",
    "Ιουλίου",
    "Αυγούστου",
    "Σεπτεμβρίου",
    "Οκτωβρίου",
    "Νοεμβρίου",
    "Δεκεμβρίου",
];

/// Number words for 0-9 per language, and people words of that language.
const NUMBER_WORDS: &[(&[&str], &[&str])] = &[
    (
        &[
            "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
        ],
        &[
            "participants",
            "women",
            "families",
            "children",
            "refugees",
            "people",
        ],
    ),
    (
        &[
            "zero", "uno", "due", "tre", "quattro", "cinque", "sei", "sette", "otto", "nove",
        ],
        &[
            "partecipanti",
            "donne",
            "famiglie",
            "bambini",
            "persone",
            "ragazze",
        ],
    ),
    (
        &[
            "cero", "uno", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve",
        ],
        &[
            "participantes",
            "mujeres",
            "familias",
            "niños",
            "personas",
            "jóvenes",
        ],
    ),
    (
        &[
            "zéro", "", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf",
        ],
        &[
            "participants",
            "femmes",
            "familles",
            "enfants",
            "personnes",
            "réfugiés",
        ],
    ),
    (
        &[
            "null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun",
        ],
        &[
            "Teilnehmer",
            "Frauen",
            "Familien",
            "Kinder",
            "Teilnehmerinnen",
            "Menschen",
        ],
    ),
    (
        &[
            "nul", "één", "twee", "drie", "vier", "vijf", "zes", "zeven", "acht", "negen",
        ],
        &[
            "deelnemers",
            "vrouwen",
            "gezinnen",
            "kinderen",
            "mensen",
            "vluchtelingen",
        ],
    ),
    (
        &[
            "μηδέν",
            "",
            "δύο",
            "τρεις",
            "τέσσερις",
            "πέντε",
            "έξι",
            "επτά",
            "οκτώ",
            "εννέα",
        ],
        &[
            "συμμετέχοντες",
            "γυναίκες",
            "οικογένειες",
            "παιδιά",
            "άτομα",
            "πρόσφυγες",
        ],
    ),
];

fn render(p: &Plant, field: &str, people: &[Person], short: &Person) -> String {
    let field: String = field.chars().filter(char::is_ascii_alphabetic).collect();
    let local = format!("canary{field}");
    match p {
        Plant::Email { form } => match form {
            0 => format!("{local}@example.org"),
            1 => format!("{local} @ example.org"),
            2 => format!("{local} at example dot org"),
            3 => format!("{local} (at) example (dot) org"),
            4 => format!("{local}[at]example[dot]org"),
            5 => format!("{local} AT example DOT org"),
            6 => format!("{local} chiocciola example punto it"),
            7 => format!("{local} arroba example punto es"),
            8 => format!("{local} arobase example point fr"),
            9 => format!("{local} (at) example (punkt) de"),
            10 => format!("{local} (at) example (punt) nl"),
            11 => format!("{local} παπάκι example τελεία gr"),
            12 => format!("{local}＠example.org"),
            _ => format!("{local}\u{200B}@example.org"),
        },
        Plant::Phone { form, digits } => {
            let d: String = digits.iter().map(|x| char::from(b'0' + x)).collect();
            let (a, b, c, e) = (&d[0..2], &d[2..4], &d[4..6], &d[6..8]);
            match form {
                0 => format!("+32 4{a} {b} {c} {e}"),
                1 => format!("0032 4{a} {b} {c} {e}"),
                2 => format!("+32-4{a}-{b}{c}-{e}"),
                3 => format!("(04{a}) {b}.{c}.{e}"),
                4 => format!("04{a}/{b}{c}{e}"),
                5 => format!("+32 (0)4{a} {b}{c} {e}"),
                6 => format!("+32\u{00A0}4{a}\u{00A0}{b}\u{00A0}{c}\u{00A0}{e}"),
                7 => format!("+32\u{202F}4{a}\u{202F}{b}\u{202F}{c}\u{202F}{e}"),
                8 => format!("+32\u{2009}4{a}\u{2009}{b}{c}\u{2009}{e}"),
                9 => format!("04{a}\u{2013}{b}\u{2013}{c}\u{2013}{e}"),
                10 => format!("04{a}\u{2014}{b}{c}\u{2014}{e}"),
                11 => format!("04{a}\u{2212}{b}\u{2212}{c}{e}"),
                _ => format!("+32 4{a} {b} {c} {e}")
                    .chars()
                    .map(|ch| match ch {
                        '0'..='9' => char::from_u32(ch as u32 - '0' as u32 + 0xFF10).unwrap(),
                        '+' => '＋',
                        c => c,
                    })
                    .collect(),
            }
        }
        Plant::Name {
            who,
            part,
            styling,
            ending,
        } => {
            let person = &people[*who % people.len()];
            let fam = &person.family;
            let word = match part {
                0 => person.full(),
                1 => person.given.clone(),
                2 => fam.join("-"),
                3 => fam[0].clone(),
                4 => fam[fam.len() - 1].clone(),
                _ => format!("{}{}", person.given, fam[0]),
            };
            let styled = style(&word, styling);
            match ending {
                0 => styled,
                1 => format!("{styled}'s"),
                2 => format!("{styled}’s"),
                _ => format!("{styled}s"),
            }
        }
        Plant::ShortName { styling } => {
            // The short-name rule: a two-letter part matches with its capital.
            let mut s = style(&short.given, styling);
            if !s.chars().any(char::is_uppercase) {
                s = s.to_uppercase();
            }
            s
        }
        Plant::Url { form, who, digits } => {
            let person = &people[*who % people.len()];
            let d: String = digits.iter().map(|x| char::from(b'0' + x)).collect();
            match form {
                0 => format!(
                    "https://social.example/{}.{}",
                    person.given, person.family[0]
                ),
                1 => format!(
                    "https://social.example/{}{}99",
                    person.given, person.family[0]
                ),
                2 => format!("https://wa.me/324{d}"),
                3 => format!("mailto:{local}@example.org"),
                4 => format!("https://example.org/u?mail={local}@example.org"),
                _ => format!(
                    "www.social.example/{}",
                    person.family[person.family.len() - 1]
                ),
            }
        }
        Plant::Count { value, form, noun } => {
            let (words, nouns) = NUMBER_WORDS[usize::from(*form) % NUMBER_WORDS.len()];
            let noun = nouns[usize::from(*noun) % nouns.len()];
            let word = words[usize::from(*value)];
            match form {
                7 => format!("{value} {noun}"),
                8 => format!("{noun}: {value}"),
                _ if word.is_empty() => format!("{value} Syrian {noun}"),
                _ => format!("{word} {noun}"),
            }
        }
        Plant::Date {
            day,
            month,
            year,
            form,
        } => {
            let m = usize::from(*month - 1);
            let y = 2000 + u32::from(*year);
            match form {
                0 => format!("{day} {} {y}", EN_MONTHS[m]),
                1 => format!("{} {day}, {y}", EN_MONTHS[m]),
                2 => format!("{day}th of {}", EN_MONTHS[m]),
                3 => format!("{day} de {} de {y}", ES_MONTHS[m]),
                4 => format!("le {day} {} {y}", FR_MONTHS[m]),
                5 => format!("{day}. {} {y}", DE_MONTHS[m]),
                6 => format!("{day} {} {y}", NL_MONTHS[m]),
                7 => format!("{day} {} {y}", EL_MONTHS[m]),
                8 => format!("{day}-{month:02}-{y}"),
                9 => format!("{y}/{month:02}/{day}"),
                10 => format!("{day}.{month:02}.{year}"),
                11 => format!("{y}-{month:02}-{day}"),
                _ => format!("{day} {} {y}", IT_MONTHS[m]),
            }
        }
    }
}

fn text(field: &str, plants: &[Plant], c: &Case, words: &[usize]) -> String {
    let mut out = Vec::new();
    for (i, p) in plants.iter().enumerate() {
        out.push(FILLER[words.get(i).copied().unwrap_or(0) % FILLER.len()].to_string());
        out.push(render(p, field, &c.people, &c.short));
    }
    out.push("end".into());
    out.join(" ")
}

#[derive(Debug, Clone)]
struct Case {
    /// Roster members, this practice's contact, another practice's contact.
    people: Vec<Person>,
    short: Person,
    roster_len: usize,
    plants: Vec<Vec<Plant>>,
    words: Vec<usize>,
    edit: Vec<Plant>,
}

fn person(prefix: (&str, &str, &str), raw: (String, String, String, bool)) -> Person {
    let (g, f1, f2, hyphenated) = raw;
    let mut family = vec![format!("{}{f1}", prefix.1)];
    if hyphenated {
        family.push(format!("{}{f2}", prefix.2));
    }
    Person {
        given: format!("{}{g}", prefix.0),
        family,
    }
}

fn case() -> impl Strategy<Value = Case> {
    let raw = || ("[a-z]{4,7}", "[a-z]{4,7}", "[a-z]{4,7}", any::<bool>());
    (
        prop::collection::vec(raw(), 1..4),
        raw(),
        raw(),
        "[a-z]{4,7}",
        prop::collection::vec(prop::collection::vec(plant(), 0..4), 12),
        prop::collection::vec(0usize..10, 4),
        prop::collection::vec(plant(), 1..4),
    )
        .prop_map(
            |(roster, contact, other, short_family, plants, words, edit)| {
                // Prefixes keep names apart from the filler and from each other.
                let mut people: Vec<Person> = roster
                    .into_iter()
                    .map(|r| person(("qx", "zq", "zr"), r))
                    .collect();
                let roster_len = people.len();
                people.push(person(("qc", "zc", "zd"), contact));
                people.push(person(("qo", "zo", "zp"), other));
                Case {
                    people,
                    short: Person {
                        given: "qy".into(),
                        family: vec![format!("zs{short_family}")],
                    },
                    roster_len,
                    plants,
                    words,
                    edit,
                }
            },
        )
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
    "challenges_second",
    "lessons_second",
];

fn build(c: &Case) -> (Practice, Roster, KnownPeople) {
    let t = |i: usize| text(TEXT_FIELDS[i], &c.plants[i], c, &c.words);
    let contact = &c.people[c.roster_len];
    let other = &c.people[c.roster_len + 1];
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
        challenges: vec![t(6), t(10)],
        recommendations: vec![t(7)],
        lessons: vec![t(8), t(11)],
        contacts: vec![Contact {
            name: contact.full(),
            role: "CANARY_contacts_role".into(),
            email: "canary_contacts_email@example.org".into(),
            phone: "CANARY_contacts_phone +32 470 99 88 77".into(),
        }],
        internal_notes: "CANARY_internal_notes".into(),
    };
    let mut roster_people: Vec<&Person> = c.people[..c.roster_len].iter().collect();
    roster_people.push(&c.short);
    let roster = Roster {
        stakeholders: roster_people
            .iter()
            .map(|p| Stakeholder {
                name: p.full(),
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
    // Everyone the node knows of: the roster and every practice's contacts,
    // this one's and another practice's.
    let mut people = KnownPeople::from_roster(&roster);
    people.add(&other.full(), NameSource::Contact);
    (practice, roster, people)
}

/// What the oracle reads: normalized (no invisible characters, NFKC digits)
/// and folded (no case, no accents).
fn seen(text: &str) -> String {
    fold(&normalize(text))
}

/// Checks a text that leaves against the names, the e-mail canaries and the
/// private-field canaries.
fn check_text(what: &str, text: &str, c: &Case) -> Result<(), TestCaseError> {
    let s = seen(text);
    if let Some(at) = s.find("canary") {
        let end = (at + 40).min(s.len());
        return Err(TestCaseError::fail(format!(
            "{what}: canary leaked: {}",
            s.get(at..end).unwrap_or(&s[at..])
        )));
    }
    for p in c.people.iter().chain([&c.short]) {
        for part in p.parts() {
            if part.len() >= 4 {
                prop_assert!(
                    !s.contains(part.as_str()),
                    "{what}: name part {part} leaked: {text}"
                );
            }
        }
    }
    // The two-letter given name, as a word of its own (inflections included).
    let words: Vec<&str> = s.split(|ch: char| !ch.is_alphanumeric()).collect();
    prop_assert!(
        !words.iter().any(|w| *w == "qy" || *w == "qys"),
        "{what}: the short given name leaked: {text}"
    );
    Ok(())
}

/// Checks a published free-text string: beyond names and canaries, no digit
/// but a year (2016-2019) and a month beside one (the coarsened dates), and no
/// number word of the planted counts.
fn check_published_string(what: &str, text: &str, c: &Case) -> Result<(), TestCaseError> {
    check_text(what, text, c)?;
    let s: String = normalize(text).nfkc().collect();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_numeric() {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && chars[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return Err(TestCaseError::fail(format!(
                "{what}: a non-ASCII digit leaked: {text}"
            )));
        }
        let run: String = chars[start..i].iter().collect();
        let year = run.len() == 4 && ("2016"..="2019").contains(&run.as_str());
        let before = start.checked_sub(1).map(|k| chars[k]);
        let after = chars.get(i).copied();
        let next_is_year = |k: usize| {
            let y: String = chars.iter().skip(k).take(4).collect();
            ("2016"..="2019").contains(&y.as_str())
        };
        let month = run.len() <= 2
            && run.parse::<u32>().is_ok_and(|m| (1..=12).contains(&m))
            && ((matches!(after, Some('/')) && next_is_year(i + 1))
                || (matches!(before, Some('-' | '/'))
                    && start >= 5
                    && ("2016"..="2019").contains(
                        &chars[start - 5..start - 1]
                            .iter()
                            .collect::<String>()
                            .as_str(),
                    )));
        // The indicator's figure is published as a number, not in a string.
        prop_assert!(year || month, "{what}: digits {run} leaked: {text}");
    }
    let folded = seen(text);
    let tokens: Vec<&str> = folded.split(|ch: char| !ch.is_alphanumeric()).collect();
    for (words, _) in NUMBER_WORDS {
        for w in words.iter().filter(|w| !w.is_empty()) {
            let fw = seen(w);
            prop_assert!(
                !tokens.contains(&fw.as_str()),
                "{what}: number word {w} leaked: {text}"
            );
        }
    }
    Ok(())
}

/// Every string value in a JSON value.
fn strings(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        serde_json::Value::Object(m) => m.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

/// The string values written by every change in a document's saved history.
fn history_strings(bytes: &[u8]) -> Vec<String> {
    let mut doc = AutoCommit::load(bytes).unwrap();
    let mut out = Vec::new();
    for change in doc.get_changes(&[]) {
        let decoded = serde_json::to_value(change.decode()).unwrap();
        for op in decoded["ops"].as_array().cloned().unwrap_or_default() {
            if let Some(v) = op.get("value") {
                strings(v, &mut out);
            }
            if let Some(k) = op.get("key").and_then(|k| k.as_str()) {
                out.push(k.to_string());
            }
        }
    }
    out
}

/// Checks every byte of a publication that leaves: raw saved bytes, every
/// string in its decoded history, its current projection, its feed exports.
fn check_publication(publication: &mut Publication, c: &Case) -> Result<(), TestCaseError> {
    let bytes = publication.save();
    let raw = String::from_utf8_lossy(&bytes).to_lowercase();
    prop_assert!(!raw.contains("canary"), "canary in the raw saved bytes");
    let nocompress = publication.doc().clone().save_nocompress();
    prop_assert!(
        !String::from_utf8_lossy(&nocompress)
            .to_lowercase()
            .contains("canary"),
        "canary in the uncompressed saved bytes"
    );
    let received = AutoCommit::load(&bytes).unwrap();
    let body: PublicationBody = autosurgeon::hydrate(&received).unwrap();
    // The metadata (node id, month of publication) is the node's, not the
    // practice's: names and canaries are checked in it, figures are not.
    let mut meta = Vec::new();
    strings(&serde_json::to_value(&body.meta).unwrap(), &mut meta);
    let history = history_strings(&bytes);
    prop_assert!(!history.is_empty());
    for s in &history {
        if meta.contains(s) {
            check_text("history (meta)", s, c)?;
        } else {
            check_published_string("history", s, c)?;
        }
    }
    let mut projection = Vec::new();
    strings(
        &serde_json::to_value(&body.practice).unwrap(),
        &mut projection,
    );
    for s in &projection {
        check_published_string("projection", s, c)?;
    }
    let replica = Publication::from_replica(received).unwrap();
    let entry =
        labnet_node::feed::unsigned_entry(&replica, [7; 32], NOW as u64, "Mechelen").unwrap();
    let info = FeedInfo {
        id: "urn:labnet:feed:test".into(),
        title: "test".into(),
    };
    let entries = [entry];
    check_text("atom", &to_atom(&info, &entries).unwrap(), c)?;
    check_text("json feed", &to_json_feed(&info, &entries).unwrap(), c)?;
    check_text("csv", &to_csv(&entries).unwrap(), c)?;
    Ok(())
}

/// A log sink the test can read back.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Everything logged, at every level and with every field, while the node
/// imports the case's roster and practice into a real store, previews,
/// shares, edits and shares again, and re-checks its publications.
fn logs_of_the_share_path(c: &Case, edited: &Practice, settings: &AnonymizationSettings) -> String {
    use labnet_config::Role;
    use labnet_node::lab::storage;
    use labnet_node::share::{
        preview_practice, recheck_publications, share_practice, ShareRequest,
    };
    let sink = Captured::default();
    let writer = sink.clone();
    // Every level, as an operator's RUST_LOG=trace would, under the
    // directives the node forces whatever RUST_LOG says.
    let mut filter = tracing_subscriber::EnvFilter::new("trace");
    for directive in labnet_node::daemon::FORCED_LOG_DIRECTIVES {
        filter = filter.add_directive(directive.parse().unwrap());
    }
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let dir = tempfile::tempdir().unwrap();
        let mut store = labnet_node::store::Store::open(dir.path()).unwrap();
        let identity = std::sync::Arc::new(labnet_node::identity::Identity::generate().unwrap());
        let origin = identity.node_id();
        store.set_signer(identity);
        let (practice, roster, _) = build(c);
        storage::import_roster(&mut store, Role::Partner, &roster).unwrap();
        storage::import_practices(&mut store, Role::Partner, std::slice::from_ref(&practice))
            .unwrap();
        let id = practice.id.clone();
        let request = |scope| ShareRequest {
            origin,
            city: "Mechelen",
            practice_id: &id,
            scope,
            settings,
        };
        preview_practice(&store, &request(&Scope::Partners)).unwrap();
        let share = |store: &mut labnet_node::store::Store, scope| {
            share_practice(store, Role::Partner, &request(scope)).unwrap();
        };
        share(&mut store, &Scope::Partners);
        storage::import_practices(&mut store, Role::Partner, std::slice::from_ref(edited)).unwrap();
        share(&mut store, &Scope::Public);
        recheck_publications(&mut store, Role::Partner, origin, "Mechelen", settings).unwrap();
    });
    let bytes = sink.0.lock().unwrap().clone();
    String::from_utf8_lossy(&bytes).into_owned()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn no_canary_reaches_a_byte_that_leaves(c in case()) {
        let origin = NodeId::from_public_key(&[7; 32]);
        let settings = AnonymizationSettings::from(AnonymizationPolicy { min_count: MIN });
        let (mut practice, _roster, people) = build(&c);
        let a = anonymize_with(&AnonymizerInput { practice: &practice, people: &people, settings: &settings }).unwrap();
        let imprint = Imprint::first(origin, "Mechelen", &Scope::Partners);
        let (mut publication, _) = publish(&a, imprint, None, NOW).unwrap();
        check_publication(&mut publication, &c)?;

        // An edit, re-shared into the same document: the history must stay clean.
        practice.description = text("description", &c.edit, &c, &c.words);
        practice.lessons.push(text("lessons_edit", &c.edit, &c, &c.words));
        let a = anonymize_with(&AnonymizerInput { practice: &practice, people: &people, settings: &settings }).unwrap();
        let (mut publication, _) = publish(&a, imprint, Some(publication.into_doc()), NOW).unwrap();
        check_publication(&mut publication, &c)?;

        let logs = logs_of_the_share_path(&c, &practice, &settings);
        prop_assert!(logs.contains("practice shared"), "the share path logged nothing: {logs}");
        check_text("logs", &logs, &c)?;
    }
}
