//! Counts of people in free text and in indicator units, in the partner
//! cities' languages.
//!
//! A small count of people identifies them ("3 Syrian women joined in March"),
//! whether it is written in an indicator or in a sentence, in digits or in
//! words ([`super::numbers`]). This module knows:
//!
//! - which words count people ([`is_people_word`]): people, participants, women,
//!   men, children, families, refugees, learners, volunteers, ... in English,
//!   Italian, Spanish, French, German, Dutch and Greek, singular and plural
//!   (`partecipanti`, `participantes`, `Teilnehmerinnen`, `deelnemers`,
//!   `συμμετέχοντες`), compared folded;
//! - which indicator units count people ([`is_people_unit`]: any word of the
//!   unit is such a word, or there is no unit) or are percentages
//!   ([`is_percent_unit`]);
//! - where a text writes a count of people ([`find_counts`]): a number, then at
//!   most [`COUNT_GAP_WORDS_MAX`] other words, then a people word ("3 Syrian
//!   women", "tre delle donne"); a people word, then `:` or `(` or `=`, then a
//!   number ("participants: 7", "n = 7"); a percentage of a count ("8.3 % of
//!   the 12 participants", which is one person);
//! - what an indicator label says its base is ([`label_base`]: "out of 33
//!   enrolled", "su 40", "sur 25").
//!
//! A count below the minimum is removed; one at or above it is rounded to a
//! multiple of the minimum (see [`round_to_base`] and the "Across versions"
//! section of [`super::suppress`]), but only when the number stands right
//! before the people word or with one word between ("40 young refugees"):
//! rounding changes a figure, so it takes the narrow reading, while removal,
//! the safe side, takes the wide one.
//!
//! Not counts: a number after an age word ("aged 6 to 13", "ages 6-10"), a
//! number followed by a measure of time or money ("15 hours a week", "3 years"),
//! a year (a four-digit number from 1900 to 2100 without separators: "in 2018
//! women ..."), and a window broken by sentence punctuation or a preposition
//! other than "of" ("28 itineraries for migrants").

use std::collections::HashSet;
use std::ops::Range;
use std::sync::OnceLock;

use super::count_words::{
    AGE_WORDS, BASE_PHRASES, MEASURES, OF_WORDS, PEOPLE_WORDS, PERCENT_UNITS, WINDOW_BREAKERS,
};
use super::normalize::{gap, Token, TokenKind};
use super::numbers::{digits_at, words_at};

/// What replaces a small count.
pub const COUNT_REMOVED: &str = "[count removed]";

/// The most words between a number and the people word it counts ("three
/// newly arrived Syrian women"): more, and the number is about something else.
pub const COUNT_GAP_WORDS_MAX: usize = 3;

/// The most words between a number and its people word for the number to be
/// rounded (see the module docs).
pub const ROUND_GAP_WORDS_MAX: usize = 1;

/// The most words between a percentage and the count it is a share of ("8.3 %
/// of the 12 participants").
pub const PERCENT_OF_GAP_WORDS_MAX: usize = 3;

fn people_set() -> &'static HashSet<&'static str> {
    static S: OnceLock<HashSet<&'static str>> = OnceLock::new();
    S.get_or_init(|| PEOPLE_WORDS.iter().copied().collect())
}

/// Whether a folded word counts people.
pub fn is_people_word(folded: &str) -> bool {
    people_set().contains(folded)
}

/// Whether an indicator unit counts people: no unit (it may), or any of its
/// words counts people ("young refugees", "persone coinvolte").
pub fn is_people_unit(unit: Option<&str>) -> bool {
    let Some(unit) = unit else { return true };
    let norm = super::normalize::normalize(unit);
    let toks = super::normalize::tokens(&norm);
    toks.is_empty() && !is_percent_unit(unit) || toks.iter().any(|t| is_people_word(&t.folded))
}

/// Whether an indicator unit is a percentage.
pub fn is_percent_unit(unit: &str) -> bool {
    let norm = super::normalize::normalize(unit);
    let key: Vec<String> = super::normalize::tokens(&norm)
        .into_iter()
        .map(|t| t.folded)
        .collect();
    let key = key.join(" ");
    let trimmed = norm.trim();
    trimmed == "%" || PERCENT_UNITS.contains(&key.as_str())
}

/// The nearest multiple of `base` (halves up), for a count at or above the
/// minimum: versions of such counts then differ by multiples of the minimum.
pub fn round_to_base(value: f64, base: u32) -> f64 {
    if base <= 1 || !value.is_finite() {
        return value;
    }
    let b = f64::from(base);
    ((value / b) + 0.5).floor() * b
}

/// How a count in a text was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountForm {
    /// In digits: "3 women".
    Digits,
    /// In words: "three women", "tre donne".
    Words,
    /// A percentage of a count: "8.3 % of the 12 participants".
    PercentOf,
}

/// A count of people found in a text.
#[derive(Debug, Clone, PartialEq)]
pub struct CountHit {
    /// The number's bytes in the (normalized) text.
    pub range: Range<usize>,
    /// What it is worth (for a percentage, the people it stands for).
    pub people: f64,
    /// For a percentage, the count it is a share of.
    pub base: Option<f64>,
    /// How it was written.
    pub form: CountForm,
    /// Whether it stands close enough to its people word to be rounded.
    pub roundable: bool,
}

/// A number at token `i`, in digits or words: (value, tokens used, form).
fn number_at(text: &str, toks: &[Token], i: usize) -> Option<(f64, usize, CountForm)> {
    if let Some((v, used)) = digits_at(text, toks, i) {
        return Some((v, used, CountForm::Digits));
    }
    words_at(text, toks, i).map(|(v, used)| (v as f64, used, CountForm::Words))
}

/// A four-digit number from 1900 to 2100 written without separators: a year.
fn is_year_like(toks: &[Token], i: usize, used: usize, value: f64) -> bool {
    used == 1
        && toks[i].kind == TokenKind::Digits
        && toks[i].folded.len() == 4
        && (1900.0..=2100.0).contains(&value)
}

/// Whether what separates two tokens ends a sentence or a clause.
fn breaks(g: &str) -> bool {
    g.chars().any(|c| {
        matches!(
            c,
            '.' | ';' | ':' | ',' | '!' | '?' | '(' | ')' | '\n' | '[' | ']' | '/' | '"'
        )
    })
}

fn is_blank(g: &str) -> bool {
    !g.is_empty() && g.chars().all(|c| c == ' ')
}

/// The people word within reach after a number whose last token is
/// `end - 1`: how many words stand between, if one is found.
fn people_after(text: &str, toks: &[Token], end: usize) -> Option<usize> {
    let mut between = 0;
    let mut j = end;
    while j < toks.len() && between <= COUNT_GAP_WORDS_MAX {
        if j > 0 && breaks(gap(text, &toks[j - 1], &toks[j])) {
            return None;
        }
        let t = &toks[j];
        if is_people_word(&t.folded) {
            return Some(between);
        }
        if t.kind == TokenKind::Digits || MEASURES.contains(&t.folded.as_str()) {
            return None;
        }
        if WINDOW_BREAKERS.contains(&t.folded.as_str()) && !OF_WORDS.contains(&t.folded.as_str()) {
            return None;
        }
        between += 1;
        j += 1;
    }
    None
}

/// "participants: 7", "women (3)", "n = 7": a people word (or the sample size
/// `n`), then `:`, `(` or `=`, then the number. `(hit, next token)`.
fn labelled_count_at(text: &str, toks: &[Token], i: usize) -> Option<(CountHit, usize)> {
    let word = &toks[i].folded;
    if !(is_people_word(word) || word == "n") {
        return None;
    }
    let next = toks.get(i + 1)?;
    if !matches!(gap(text, &toks[i], next).trim(), ":" | "(" | "=") {
        return None;
    }
    let (v, used, form) = number_at(text, toks, i + 1)?;
    let hit = CountHit {
        range: next.range.start..toks[i + used].range.end,
        people: v,
        base: None,
        form,
        roundable: true,
    };
    Some((hit, i + 1 + used))
}

/// A range of counts after a number ending before token `end`: "3-5 women",
/// "3 to 5 women". `(upper bound, token after the range)`.
fn range_after(text: &str, toks: &[Token], end: usize) -> Option<(f64, usize)> {
    let next = toks.get(end)?;
    let g = gap(text, &toks[end - 1], next);
    let k = if g.trim() == "-" {
        end
    } else if is_blank(g)
        && matches!(
            next.folded.as_str(),
            "to" | "a" | "al" | "bis" | "tot" | "εωσ" | "or" | "o" | "ou" | "oder"
        )
    {
        end + 1
    } else {
        return None;
    };
    let (v2, used2, _) = number_at(text, toks, k)?;
    Some((v2, k + used2))
}

/// Whether a percent sign or word follows the number ending before token `k`:
/// `(index of the first token after the percentage, byte end of it)`.
fn percent_after(text: &str, toks: &[Token], k: usize) -> Option<(usize, usize)> {
    let prev = toks.get(k.checked_sub(1)?)?;
    let after = text.get(prev.range.end..)?;
    let trimmed = after.trim_start();
    if trimmed.starts_with('%') {
        let at = prev.range.end + (after.len() - trimmed.len()) + 1;
        return Some((k, at));
    }
    let t = toks.get(k)?;
    match t.folded.as_str() {
        "percent" | "prozent" | "procent" => Some((k + 1, t.range.end)),
        "per" | "por" | "pour" | "τοισ" => {
            let n = toks.get(k + 1)?;
            matches!(n.folded.as_str(), "cent" | "cento" | "ciento" | "εκατο")
                .then_some((k + 2, n.range.end))
        }
        _ => None,
    }
}

/// The people a percentage stands for when it is "of" a count ("8.3 % of the
/// 12 participants" is one person), and that count.
fn percent_of_count(text: &str, toks: &[Token], k: usize, pct: f64) -> Option<(f64, f64)> {
    let of = toks.get(k)?;
    if !matches!(
        of.folded.as_str(),
        "of" | "di" | "de" | "des" | "del" | "van" | "von" | "των" | "του" | "su" | "sur" | "sobre"
    ) {
        return None;
    }
    let mut j = k + 1;
    let mut between = 0;
    while j < toks.len() && between <= PERCENT_OF_GAP_WORDS_MAX {
        if breaks(gap(text, &toks[j - 1], &toks[j])) {
            return None;
        }
        if let Some((base, used, _)) = number_at(text, toks, j) {
            people_after(text, toks, j + used)?;
            return Some(((pct * base / 100.0).round(), base));
        }
        between += 1;
        j += 1;
    }
    None
}

/// Counts of people in a normalized text (see the module docs).
pub fn find_counts(text: &str, toks: &[Token]) -> Vec<CountHit> {
    let mut out: Vec<CountHit> = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        if let Some((hit, next)) = labelled_count_at(text, toks, i) {
            out.push(hit);
            i = next;
            continue;
        }
        let Some((v, used, form)) = number_at(text, toks, i) else {
            i += 1;
            continue;
        };
        let end = i + used;
        let after_age = i > 0 && AGE_WORDS.contains(&toks[i - 1].folded.as_str());
        if after_age || is_year_like(toks, i, used, v) {
            i = end;
            continue;
        }
        if let Some((pct_end, byte_end)) = percent_after(text, toks, end) {
            if let Some((people, base)) = percent_of_count(text, toks, pct_end, v) {
                out.push(CountHit {
                    range: toks[i].range.start..byte_end,
                    people,
                    base: Some(base),
                    form: CountForm::PercentOf,
                    roundable: false,
                });
            }
            // The count after "of" is read on its own.
            i = pct_end.max(end);
            continue;
        }
        let (people, last) = match range_after(text, toks, end) {
            // The upper bound decides: "3-5 women" is at most five.
            Some((v2, e)) => (v.max(v2), e),
            None => (v, end),
        };
        if let Some(between) = people_after(text, toks, last) {
            // Numbers just before belong to the figure ("1⁄4", "1 000"): were
            // they left, removing this one would make them the count.
            let mut first = i;
            while first > 0
                && !breaks(gap(text, &toks[first - 1], &toks[first]))
                && number_at(text, toks, first - 1).is_some_and(|(v, u, _)| {
                    first - 1 + u <= i && !is_year_like(toks, first - 1, u, v)
                })
                && out
                    .last()
                    .is_none_or(|h| h.range.end <= toks[first - 1].range.start)
            {
                first -= 1;
            }
            out.push(CountHit {
                range: toks[first].range.start..toks[last - 1].range.end,
                people,
                base: None,
                form,
                roundable: last == end && between <= ROUND_GAP_WORDS_MAX,
            });
        }
        i = last;
    }
    out
}

/// The base a label states for its figure ("out of 33 enrolled", "su 40"), if
/// any: the first number after a base phrase.
pub fn label_base(text: &str) -> Option<u64> {
    let norm = super::normalize::normalize(text);
    let toks = super::normalize::tokens(&norm);
    for i in 0..toks.len() {
        for phrase in BASE_PHRASES {
            let n = phrase.len();
            if i + n >= toks.len() {
                continue;
            }
            if toks[i..i + n]
                .iter()
                .zip(phrase.iter())
                .all(|(t, w)| t.folded == *w)
            {
                if let Some((v, used)) = digits_at(&norm, &toks, i + n) {
                    if !is_year_like(&toks, i + n, used, v) && v.fract() == 0.0 && v >= 0.0 {
                        return Some(v as u64);
                    }
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::normalize::{normalize, tokens};
    use super::*;

    fn counts(text: &str) -> Vec<(String, f64)> {
        let t = normalize(text);
        let toks = tokens(&t);
        find_counts(&t, &toks)
            .into_iter()
            .map(|h| (t[h.range].to_string(), h.people))
            .collect()
    }

    #[test]
    fn small_counts_in_digits_and_words_in_every_partner_language() {
        for (text, number, v) in [
            ("3 Syrian women joined", "3", 3.0),
            ("seven participants came", "seven", 7.0),
            ("SEVEN PARTICIPANTS", "SEVEN", 7.0),
            ("tre donne", "tre", 3.0),
            ("cinco mujeres", "cinco", 5.0),
            ("trois femmes", "trois", 3.0),
            ("drei Frauen", "drei", 3.0),
            ("vier Teilnehmerinnen", "vier", 4.0),
            ("drie deelnemers", "drie", 3.0),
            ("τρεις γυναίκες", "τρεις", 3.0),
            ("5 συμμετέχοντες", "5", 5.0),
            ("6 partecipanti", "6", 6.0),
            ("8 participantes", "8", 8.0),
            ("3 of the women", "3", 3.0),
            ("participants: 7", "7", 7.0),
            ("n = 7", "7", 7.0),
            ("3-5 women", "3-5", 5.0),
            ("two families", "two", 2.0),
            ("an 11-person team", "11", 11.0),
        ] {
            assert_eq!(counts(text), vec![(number.to_string(), v)], "{text}");
        }
    }

    #[test]
    fn a_percentage_of_a_small_count_is_a_count() {
        assert_eq!(
            counts("8.3 % of the 12 participants"),
            vec![("8.3 %".to_string(), 1.0), ("12".to_string(), 12.0)]
        );
    }

    #[test]
    fn measures_ages_years_and_other_nouns_are_not_counts() {
        for text in [
            "a trainer working 15 hours a week",
            "children aged 6 to 13, with parents",
            "in 2018 women started",
            "28 itineraries for migrants",
            "3 years of support for women",
            "32.7% of participants",
            "28 'BC Lab' training itineraries",
            "una donna",
            "très jeunes femmes",
            "five languages",
        ] {
            assert!(counts(text).is_empty(), "{text}: {:?}", counts(text));
        }
    }

    #[test]
    fn people_units_in_the_partner_languages() {
        for u in [
            "people",
            "partecipanti",
            "participantes",
            "Teilnehmer",
            "deelnemers",
            "συμμετέχοντες",
            "young refugees",
            "Frauen",
        ] {
            assert!(is_people_unit(Some(u)), "{u}");
        }
        for u in [
            "%",
            "projects",
            "ideas",
            "training itineraries",
            "action points",
        ] {
            assert!(!is_people_unit(Some(u)), "{u}");
        }
        assert!(is_people_unit(None));
        assert!(is_percent_unit("%") && is_percent_unit("per cent") && is_percent_unit("Prozent"));
    }

    #[test]
    fn label_bases() {
        assert_eq!(
            label_base("Learners who moved up (out of 33 enrolled)"),
            Some(33)
        );
        assert_eq!(label_base("Donne occupate su 40"), Some(40));
        assert_eq!(label_base("People enrolled in 2018-2019"), None);
        assert_eq!(label_base("von 2018 bis 2020"), None);
    }

    #[test]
    fn rounding_to_the_minimum() {
        assert_eq!(round_to_base(14.0, 10), 10.0);
        assert_eq!(round_to_base(15.0, 10), 20.0);
        assert_eq!(round_to_base(1733.0, 10), 1730.0);
        assert_eq!(round_to_base(7.0, 1), 7.0);
    }
}
