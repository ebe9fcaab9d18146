//! Dates, coarsened to the month whichever way they are written.
//!
//! The day an event happened can single a person out (the day someone arrived,
//! was housed, found work), so every date that leaves is at most as precise as
//! its month. [`find_dates`] finds, in normalized text:
//!
//! - numeric dates with `-`, `/` or `.` between day, month and year, in either
//!   order, with four- or two-digit years: `2018-03-14`, `2018/03/14`,
//!   `14-03-2018`, `14/03/2018`, `14.03.18`, `3/14/2018` (a day above 12 in the
//!   middle is read month first). A time after an ISO date goes with the day
//!   (`2018-03-14T10:00`);
//! - dates with a month name in English, Italian, Spanish, French, German, Dutch
//!   or Greek, full or abbreviated, in either order and with ordinal suffixes,
//!   connectors and weekdays: `14 March 2018`, `March 14th, 2018`, `14th of
//!   March`, `14 de marzo de 2018`, `le 1er mars`, `14. März 2018`, `14 maart`,
//!   `14 Μαρτίου 2018`, `Monday 14 March`, `14-16 March`.
//!
//! Each is replaced by what remains at month precision: the year and month of a
//! numeric date (`2018-03`, `03/2018`, a two-digit year written out, as POSIX
//! reads `%y`: 00-68 are 2000-2068, 69-99 are 1969-1999), and the month name as
//! written for a named date (`14 March 2018` becomes `March 2018`). Dates that are
//! already months (`March 2018`, `2018-03`, `2018-2021`) are left alone.
//!
//! Not read: a day and month written with digits and no year (`14/03`), which is
//! a fraction as often as a date.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::OnceLock;

use super::normalize::{gap, Token, TokenKind};

/// Two-digit years up to this are read as 20YY, later ones as 19YY, as POSIX
/// `strptime` reads `%y`.
pub const TWO_DIGIT_YEAR_PIVOT: u16 = 68;

/// The most bytes between a day and its month (`14 March`, `14. März`, `14,
/// March`): a dot or a comma and spaces. Farther apart, they are not one date.
pub const DAY_MONTH_GAP_BYTES_MAX: usize = 3;

/// A date found in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateHit {
    /// Its bytes in the (normalized) text.
    pub range: Range<usize>,
    /// What it becomes.
    pub replacement: String,
    /// Numeric or named.
    pub named: bool,
}

/// Month names and abbreviations, folded, in the partner languages.
const MONTHS: &[(u8, &[&str])] = &[
    (
        1,
        &[
            "january",
            "jan",
            "gennaio",
            "gen",
            "enero",
            "ene",
            "janvier",
            "janv",
            "januar",
            "jänner",
            "januari",
            "ιανουαριοσ",
            "ιανουαριου",
            "ιαν",
        ],
    ),
    (
        2,
        &[
            "february",
            "feb",
            "febbraio",
            "febrero",
            "fevrier",
            "fevr",
            "fev",
            "februar",
            "feber",
            "februari",
            "φεβρουαριοσ",
            "φεβρουαριου",
            "φεβ",
        ],
    ),
    (
        3,
        &[
            "march",
            "mar",
            "marzo",
            "mars",
            "marz",
            "maart",
            "mrt",
            "μαρτιοσ",
            "μαρτιου",
            "μαρ",
        ],
    ),
    (
        4,
        &[
            "april",
            "apr",
            "aprile",
            "abril",
            "abr",
            "avril",
            "avr",
            "απριλιοσ",
            "απριλιου",
            "απρ",
        ],
    ),
    (
        5,
        &[
            "may",
            "maggio",
            "mag",
            "mayo",
            "mai",
            "mei",
            "μαιοσ",
            "μαιου",
            "μαι",
        ],
    ),
    (
        6,
        &[
            "june",
            "jun",
            "giugno",
            "giu",
            "junio",
            "juin",
            "juni",
            "ιουνιοσ",
            "ιουνιου",
            "ιουν",
        ],
    ),
    (
        7,
        &[
            "july",
            "jul",
            "luglio",
            "lug",
            "julio",
            "juillet",
            "juil",
            "juli",
            "ιουλιοσ",
            "ιουλιου",
            "ιουλ",
        ],
    ),
    (
        8,
        &[
            "august",
            "aug",
            "agosto",
            "ago",
            "aout",
            "augustus",
            "αυγουστοσ",
            "αυγουστου",
            "αυγ",
        ],
    ),
    (
        9,
        &[
            "september",
            "sep",
            "sept",
            "settembre",
            "set",
            "septiembre",
            "setiembre",
            "septembre",
            "σεπτεμβριοσ",
            "σεπτεμβριου",
            "σεπ",
        ],
    ),
    (
        10,
        &[
            "october",
            "oct",
            "ottobre",
            "ott",
            "octubre",
            "octobre",
            "oktober",
            "okt",
            "οκτωβριοσ",
            "οκτωβριου",
            "οκτ",
        ],
    ),
    (
        11,
        &[
            "november",
            "nov",
            "novembre",
            "noviembre",
            "νοεμβριοσ",
            "νοεμβριου",
            "νοε",
        ],
    ),
    (
        12,
        &[
            "december",
            "dec",
            "dicembre",
            "dic",
            "diciembre",
            "decembre",
            "dezember",
            "dez",
            "δεκεμβριοσ",
            "δεκεμβριου",
            "δεκ",
        ],
    ),
];

/// Weekday names, folded: they go with the day they name.
const WEEKDAYS: &[&str] = &[
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "mon",
    "tue",
    "wed",
    "thu",
    "fri",
    "sat",
    "sun",
    "lunedi",
    "martedi",
    "mercoledi",
    "giovedi",
    "venerdi",
    "sabato",
    "domenica",
    "lunes",
    "martes",
    "miercoles",
    "jueves",
    "viernes",
    "domingo",
    "lundi",
    "mardi",
    "mercredi",
    "jeudi",
    "vendredi",
    "samedi",
    "dimanche",
    "montag",
    "dienstag",
    "mittwoch",
    "donnerstag",
    "freitag",
    "samstag",
    "sonntag",
    "maandag",
    "dinsdag",
    "woensdag",
    "donderdag",
    "vrijdag",
    "zaterdag",
    "zondag",
    "δευτερα",
    "τριτη",
    "τεταρτη",
    "πεμπτη",
    "παρασκευη",
    "σαββατο",
    "κυριακη",
];

/// Words between a day and its month: `14th of March`, `14 de marzo`.
const CONNECTORS: &[&str] = &["of", "de", "di", "del", "du", "van"];

/// Ordinal endings a day may carry, folded: `14th`, `1st`, `1er`, `1º` (NFKC
/// makes it `1o`), `14η`.
const ORDINALS: &[&str] = &[
    "st", "nd", "rd", "th", "er", "re", "e", "o", "a", "η", "ησ", "ην",
];

/// Words that join the two days of a range: `14 to 16 March`.
const RANGE_WORDS: &[&str] = &["to", "al", "au", "a", "bis", "tot", "έως", "εωσ", "until"];

fn month_table() -> &'static HashMap<&'static str, u8> {
    static T: OnceLock<HashMap<&'static str, u8>> = OnceLock::new();
    T.get_or_init(|| {
        let mut t = HashMap::new();
        for (m, names) in MONTHS {
            for n in *names {
                t.insert(*n, *m);
            }
        }
        t
    })
}

/// The month a token names, folded (`März` and `MARZ` alike).
pub fn month_of(t: &Token) -> Option<u8> {
    (t.kind == TokenKind::Word)
        .then(|| month_table().get(t.folded.as_str()).copied())
        .flatten()
}

/// A day of the month: `1`-`31`, possibly with an ordinal ending.
fn day_of(t: &Token) -> Option<u8> {
    let digits: String = t.folded.chars().take_while(char::is_ascii_digit).collect();
    if digits.is_empty() || digits.len() > 2 {
        return None;
    }
    let rest = &t.folded[digits.len()..];
    if !rest.is_empty() && !ORDINALS.contains(&rest) {
        return None;
    }
    let d: u8 = digits.parse().ok()?;
    (1..=31).contains(&d).then_some(d)
}

fn year4(t: &Token) -> Option<u16> {
    if t.kind != TokenKind::Digits || t.folded.len() != 4 {
        return None;
    }
    let y: u16 = t.folded.parse().ok()?;
    (1900..=2099).contains(&y).then_some(y)
}

/// A two-digit year written out, as POSIX reads `%y`.
fn year2(t: &Token) -> Option<u16> {
    if t.kind != TokenKind::Digits || t.folded.len() != 2 {
        return None;
    }
    let y: u16 = t.folded.parse().ok()?;
    Some(if y <= TWO_DIGIT_YEAR_PIVOT {
        2000 + y
    } else {
        1900 + y
    })
}

fn small(t: &Token, max: u8) -> Option<u8> {
    if t.kind != TokenKind::Digits || t.folded.len() > 2 {
        return None;
    }
    let v: u8 = t.folded.parse().ok()?;
    (1..=max).contains(&v).then_some(v)
}

fn is_blank(s: &str, max_len: usize) -> bool {
    s.len() <= max_len && s.chars().all(|c| c == ' ')
}

/// Whether a token is a day followed by a time, as ISO writes it: `14T10`.
fn day_with_time(t: &Token) -> bool {
    let d: String = t.folded.chars().take_while(char::is_ascii_digit).collect();
    let rest = &t.folded[d.len()..];
    (1..=2).contains(&d.len())
        && d.parse::<u8>().is_ok_and(|v| (1..=31).contains(&v))
        && rest
            .strip_prefix('t')
            .is_some_and(|r| r.chars().all(|c| c.is_ascii_digit()))
}

/// A numeric date starting at token `i`: (tokens used, replacement).
fn numeric_at(text: &str, toks: &[Token], i: usize) -> Option<(usize, String)> {
    let (a, b, c) = (toks.get(i)?, toks.get(i + 1)?, toks.get(i + 2)?);
    let s1 = gap(text, a, b);
    let s2 = gap(text, b, c);
    if s1 != s2 || !matches!(s1, "-" | "/" | ".") {
        return None;
    }
    // Year first: 2018-03-14, with an optional time (14T10:00:00).
    if year4(a).is_some() && small(b, 12).is_some() {
        if small(c, 31).is_some() || day_with_time(c) {
            let mut used = 3;
            if day_with_time(c) {
                // The rest of the time: `:00`, `:00Z`, `.000`.
                while let Some(t) = toks.get(i + used) {
                    let g = gap(text, &toks[i + used - 1], t);
                    if matches!(g, ":" | ".") && t.folded.starts_with(|c: char| c.is_ascii_digit())
                    {
                        used += 1;
                    } else {
                        break;
                    }
                }
            }
            let kept = format!("{}{s1}{}", &text[a.range.clone()], &text[b.range.clone()]);
            return Some((used, kept));
        }
        return None;
    }
    // Day first (or month first, US style): 14-03-2018, 14.03.18, 3/14/2018.
    let year = year4(c).or_else(|| year2(c))?;
    let (x, y) = (small(a, 31)?, small(b, 31)?);
    let month_text = if y <= 12 {
        &text[b.range.clone()]
    } else if x <= 12 {
        &text[a.range.clone()]
    } else {
        return None;
    };
    Some((3, format!("{month_text}/{year}")))
}

/// Whether what separates a day from its month is only spaces, a dot or a
/// comma (`14 March`, `14. März`).
fn close(g: &str) -> bool {
    g.len() <= DAY_MONTH_GAP_BYTES_MAX
        && !g.is_empty()
        && g.chars().all(|c| matches!(c, ' ' | '.' | ','))
}

/// A named date around the month at token `m`: (first token, last token).
fn named_at(text: &str, toks: &[Token], m: usize) -> Option<(usize, usize)> {
    // Day before the month: 14 March, 14th of March, 14. März, 14 de marzo.
    if m > 0 {
        let mut j = m - 1;
        if CONNECTORS.contains(&toks[j].folded.as_str())
            && is_blank(gap(text, &toks[j], &toks[m]), 2)
            && j > 0
        {
            j -= 1;
        }
        if close(gap(text, &toks[j], &toks[j + 1])) && day_of(&toks[j]).is_some() {
            return Some((extend_back(text, toks, j), m));
        }
    }
    // Day after the month: March 14, March 14th, 2018. A year has four digits,
    // a day at most two with its ending, so "March 2018" is left alone.
    let d = toks.get(m + 1)?;
    let g = gap(text, &toks[m], d);
    if !g.is_empty() && is_blank(g, 2) && day_of(d).is_some() {
        return Some((extend_back(text, toks, m), m + 1));
    }
    None
}

/// Takes the days before `s` along (a range `14-16 March`, `14 to 16`, a list
/// `14, 15, 16 March`), so removing one day never leaves another next to the
/// month; and a weekday.
fn extend_back(text: &str, toks: &[Token], s: usize) -> usize {
    let mut s = s;
    loop {
        if s >= 1 && day_of(&toks[s - 1]).is_some() && {
            let g = gap(text, &toks[s - 1], &toks[s]);
            g.trim() == "-" || close(g)
        } {
            s -= 1;
        } else if s >= 2
            && RANGE_WORDS.contains(&toks[s - 1].folded.as_str())
            && day_of(&toks[s - 2]).is_some()
            && is_blank(gap(text, &toks[s - 2], &toks[s - 1]), 2)
            && is_blank(gap(text, &toks[s - 1], &toks[s]), 2)
        {
            s -= 2;
        } else {
            break;
        }
    }
    if s >= 1 && WEEKDAYS.contains(&toks[s - 1].folded.as_str()) {
        let g = gap(text, &toks[s - 1], &toks[s]);
        if g.len() <= DAY_MONTH_GAP_BYTES_MAX && g.chars().all(|c| matches!(c, ' ' | ',' | '.')) {
            s -= 1;
        }
    }
    s
}

/// The dates of a normalized text finer than a month, with what each becomes.
pub fn find_dates(text: &str, toks: &[Token]) -> Vec<DateHit> {
    let mut out: Vec<DateHit> = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        if let Some((used, replacement)) = numeric_at(text, toks, i) {
            out.push(DateHit {
                range: toks[i].range.start..toks[i + used - 1].range.end,
                replacement,
                named: false,
            });
            i += used;
            continue;
        }
        if month_of(&toks[i]).is_some() {
            if let Some((s, e)) = named_at(text, toks, i) {
                let month = &text[toks[i].range.clone()];
                // A day before the month may already be in a hit (never: the
                // scan moves forward), but a day after it must not be reused.
                if out
                    .last()
                    .is_none_or(|h| h.range.end <= toks[s].range.start)
                {
                    out.push(DateHit {
                        range: toks[s].range.start..toks[e].range.end,
                        replacement: month.to_string(),
                        named: true,
                    });
                }
                i = e + 1;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// Whether the digit groups of a run (as the phone rule splits it) are all
/// dates, months or years (`14-03-2018`, `2018-03/2021-08`, `2018-2021`), so
/// the run is not a phone number.
pub fn all_dates(groups: &[&str]) -> bool {
    let year = |g: &str| g.len() == 4 && (g.starts_with("19") || g.starts_with("20"));
    let upto =
        |g: &str, max: u32| g.len() <= 2 && g.parse::<u32>().is_ok_and(|v| (1..=max).contains(&v));
    let mut i = 0;
    while i < groups.len() {
        let g = groups[i];
        let rest = &groups[i..];
        if year(g) {
            // Y-M-D, Y-M or Y.
            if rest.len() >= 3 && upto(rest[1], 12) && upto(rest[2], 31) {
                i += 3;
            } else if rest.len() >= 2 && upto(rest[1], 12) {
                i += 2;
            } else {
                i += 1;
            }
        } else if rest.len() >= 3
            && upto(g, 31)
            && upto(rest[1], 31)
            && (year(rest[2]) || rest[2].len() == 2)
        {
            i += 3;
        } else if rest.len() >= 2 && upto(g, 12) && year(rest[1]) {
            i += 2;
        } else {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::super::normalize::{normalize, tokens};
    use super::*;
    use crate::share::tests::{assert_kept, assert_maps};

    fn coarse(text: &str) -> String {
        let t = normalize(text);
        let toks = tokens(&t);
        let mut out = String::new();
        let mut copied = 0;
        for h in find_dates(&t, &toks) {
            out.push_str(&t[copied..h.range.start]);
            out.push_str(&h.replacement);
            copied = h.range.end;
        }
        out.push_str(&t[copied..]);
        out
    }

    #[test]
    fn numeric_dates_in_any_order_and_separator() {
        assert_maps(
            coarse,
            &[
                ("on 2018-03-14.", "on 2018-03."),
                ("on 2018/03/14", "on 2018/03"),
                ("on 14-03-2018", "on 03/2018"),
                ("on 14/03/2018", "on 03/2018"),
                ("on 14.03.18", "on 03/2018"),
                ("on 3/14/2018", "on 3/2018"),
                ("at 2018-03-14T10:00:00", "at 2018-03"),
                ("2018-03-14/2021-08-02", "2018-03/2021-08"),
            ],
        );
    }

    #[test]
    fn month_names_in_every_partner_language() {
        assert_maps(
            coarse,
            &[
                ("on 14 March 2018", "on March 2018"),
                ("on March 14, 2018", "on March, 2018"),
                ("on March 14th", "on March"),
                ("the 14th of March", "the March"),
                ("el 14 de marzo de 2018", "el marzo de 2018"),
                ("le 1er mars 2018", "le mars 2018"),
                ("am 14. März 2018", "am März 2018"),
                ("op 14 maart 2018", "op maart 2018"),
                ("il 14 marzo", "il marzo"),
                ("στις 14 Μαρτίου 2018", "στις Μαρτίου 2018"),
                ("on Monday 14 March", "on March"),
                ("14-16 March 2018", "March 2018"),
                ("on 14 SEPT. 2018", "on SEPT. 2018"),
            ],
        );
    }

    #[test]
    fn months_years_and_ranges_are_left_alone() {
        assert_kept(
            coarse,
            &[
                "March 2018 - August 2021",
                "2018-03/2021-08",
                "from 2018-2021",
                "in 2017/2018",
                "3 years (2020-2023)",
                "may 2019",
                "32.7% of 1733 people",
            ],
        );
    }

    #[test]
    fn runs_of_dates_are_not_phones() {
        assert!(all_dates(&["14", "03", "2018"]));
        assert!(all_dates(&["2018", "03", "14", "2021", "08", "02"]));
        assert!(all_dates(&["2018", "2021"]));
        assert!(!all_dates(&["0470", "12", "34", "56"]));
    }
}
