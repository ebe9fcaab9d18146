//! Numbers written in words or digits, in the partner cities' languages (en, it,
//! es, fr, de, nl, el), as the count rules read them.
//!
//! A count of people is a disclosure whichever way it is written: "3 women",
//! "three women", "tre donne", "drei Frauen", "τρεις γυναίκες". This module turns
//! the tokens of a text (see [`super::normalize::tokens`]) that spell a number
//! into its value:
//!
//! - digits, with thousands separators (`1,733`, `1.733`, `20 000`) and
//!   decimals (`2.5`), read by [`digits_at`];
//! - number words from zero to ninety-nine in every partner language, the
//!   compounds included (`twenty-three`, `ventitré`, `veintitrés`, `treinta y
//!   tres`, `vingt-trois`, `soixante-dix`, `dreiundzwanzig`, `drieëntwintig`,
//!   `είκοσι τρία`), and the words for a hundred and a thousand as multipliers
//!   (`two hundred`), read by [`words_at`].
//!
//! Words are compared in lower case with their accents ([`super::normalize::lower`]),
//! not folded: folding would read the French `très` ("very") as the Spanish
//! `tres`. The usual unaccented spellings are listed as well, and Greek is also
//! matched without its tonos, as it is often typed.
//!
//! Singular articles that double as "one" (`un`, `una`, `une`, `ein`, `een`,
//! `ένας`) are not read as numbers: "una donna" tells no count. The unambiguous
//! words for one (`one`, `uno`, `één`, `eins`) are.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::normalize::{fold, lower, Token, TokenKind};

/// The largest value a run of number words is read up to. Runs that multiply
/// past it (`three thousand thousand`) stop there: such values are never below a
/// minimum count, which is what the reading is for.
pub const WORD_VALUE_MAX: u64 = 1_000_000_000;

/// The most tokens one spelt-out number may span (`quatre vingt dix neuf`,
/// `two hundred and thirty four`), so a long list of number words is not read
/// as one value.
pub const NUMBER_WORDS_MAX: usize = 8;

/// The most bytes between two words of one spelt-out number: a hyphen or a
/// space, possibly with spaces around (`vingt - trois`).
pub const NUMBER_GAP_BYTES_MAX: usize = 3;

/// What a word contributes to a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// A value that adds: `three`, `twenty`, `dreiundzwanzig`.
    Value(u64),
    /// A multiplier: `hundred`, `thousand`.
    Times(u64),
    /// A word that joins parts of one number: `and`, `y`, `et`, `und`, `en`, `και`.
    Joiner,
}

/// The number words that stand alone, the units and tens shared with the
/// compound tables below. Where two languages spell a word alike, the first
/// listed gives its value.
fn base_words() -> Vec<(&'static str, u64)> {
    let mut words = Vec::new();
    words.extend([
        // English
        ("zero", 0),
        ("one", 1),
        ("two", 2),
        ("three", 3),
        ("four", 4),
        ("five", 5),
        ("six", 6),
        ("seven", 7),
        ("eight", 8),
        ("nine", 9),
        ("ten", 10),
        ("eleven", 11),
        ("twelve", 12),
        ("thirteen", 13),
        ("fourteen", 14),
        ("fifteen", 15),
        ("sixteen", 16),
        ("seventeen", 17),
        ("eighteen", 18),
        ("nineteen", 19),
        ("twenty", 20),
        ("thirty", 30),
        ("forty", 40),
        ("fourty", 40),
        ("fifty", 50),
        ("sixty", 60),
        ("seventy", 70),
        ("eighty", 80),
        ("ninety", 90),
        ("dozen", 12),
    ]);
    // Italian (compounds of the tens are generated below; `tré` is written in
    // them only)
    words.push(("zero", 0));
    words.extend(IT_UNITS.iter().filter(|(w, _)| *w != "tré"));
    words.extend([
        ("dieci", 10),
        ("undici", 11),
        ("dodici", 12),
        ("tredici", 13),
        ("quattordici", 14),
        ("quindici", 15),
        ("sedici", 16),
        ("diciassette", 17),
        ("diciotto", 18),
        ("diciannove", 19),
        ("dozzina", 12),
        // Spanish
        ("cero", 0),
        ("dos", 2),
        ("tres", 3),
        ("cuatro", 4),
        ("cinco", 5),
        ("seis", 6),
        ("siete", 7),
        ("ocho", 8),
        ("nueve", 9),
        ("diez", 10),
        // "once" (11) is left out: it is also the English "once".
        ("doce", 12),
        ("trece", 13),
        ("catorce", 14),
        ("quince", 15),
        ("dieciséis", 16),
        ("diecisiete", 17),
        ("dieciocho", 18),
        ("diecinueve", 19),
        ("veinte", 20),
        ("veintiuno", 21),
        ("veintiún", 21),
        ("veintiuna", 21),
        ("veintidós", 22),
        ("veintitrés", 23),
        ("veinticuatro", 24),
        ("veinticinco", 25),
        ("veintiséis", 26),
        ("veintisiete", 27),
        ("veintiocho", 28),
        ("veintinueve", 29),
        ("treinta", 30),
        ("cuarenta", 40),
        ("cincuenta", 50),
        ("sesenta", 60),
        ("setenta", 70),
        ("ochenta", 80),
        ("noventa", 90),
        ("docena", 12),
        // French
        ("zéro", 0),
        ("deux", 2),
        ("trois", 3),
        ("quatre", 4),
        ("cinq", 5),
        ("six", 6),
        ("sept", 7),
        ("huit", 8),
        ("neuf", 9),
        ("dix", 10),
        ("onze", 11),
        ("douze", 12),
        ("treize", 13),
        ("quatorze", 14),
        ("quinze", 15),
        ("seize", 16),
        ("vingt", 20),
        ("vingts", 20),
        ("trente", 30),
        ("quarante", 40),
        ("cinquante", 50),
        ("soixante", 60),
        ("septante", 70),
        ("huitante", 80),
        ("octante", 80),
        ("nonante", 90),
        ("douzaine", 12),
    ]);
    // German (compounds generated below; the unit `ein` is the article, `eins`
    // the number)
    words.extend([("null", 0), ("eins", 1)]);
    words.extend(&DE_UNITS[1..]);
    words.extend([
        ("zehn", 10),
        ("elf", 11),
        ("zwölf", 12),
        ("dreizehn", 13),
        ("vierzehn", 14),
        ("fünfzehn", 15),
        ("sechzehn", 16),
        ("siebzehn", 17),
        ("achtzehn", 18),
        ("neunzehn", 19),
    ]);
    words.extend(DE_TENS);
    words.push(("dutzend", 12));
    // Dutch (compounds generated below; the unit `een` is the article, `één`
    // the number)
    words.extend([("nul", 0), ("één", 1), ("eén", 1)]);
    words.extend(&NL_UNITS[1..]);
    words.extend([
        ("tien", 10),
        ("elf", 11),
        ("twaalf", 12),
        ("dertien", 13),
        ("veertien", 14),
        ("vijftien", 15),
        ("zestien", 16),
        ("zeventien", 17),
        ("achttien", 18),
        ("negentien", 19),
    ]);
    words.extend(NL_TENS);
    words.extend([
        ("dozijn", 12),
        // Greek (nominative masculine/feminine and neuter forms)
        ("μηδέν", 0),
        ("δύο", 2),
        ("τρεις", 3),
        ("τρία", 3),
        ("τέσσερις", 4),
        ("τέσσερα", 4),
        ("πέντε", 5),
        ("έξι", 6),
        ("επτά", 7),
        ("εφτά", 7),
        ("οκτώ", 8),
        ("οχτώ", 8),
        ("εννέα", 9),
        ("εννιά", 9),
        ("δέκα", 10),
        ("έντεκα", 11),
        ("ένδεκα", 11),
        ("δώδεκα", 12),
        ("δεκατρία", 13),
        ("δεκατρείς", 13),
        ("δεκατέσσερα", 14),
        ("δεκατέσσερις", 14),
        ("δεκαπέντε", 15),
        ("δεκαέξι", 16),
        ("δεκαεπτά", 17),
        ("δεκαεφτά", 17),
        ("δεκαοκτώ", 18),
        ("δεκαοχτώ", 18),
        ("δεκαεννέα", 19),
        ("δεκαεννιά", 19),
        ("είκοσι", 20),
        ("τριάντα", 30),
        ("σαράντα", 40),
        ("πενήντα", 50),
        ("εξήντα", 60),
        ("εβδομήντα", 70),
        ("ογδόντα", 80),
        ("ενενήντα", 90),
        ("ντουζίνα", 12),
    ]);
    words
}

const MULTIPLIERS: &[(&str, u64)] = &[
    ("hundred", 100),
    ("hundreds", 100),
    ("thousand", 1000),
    ("thousands", 1000),
    ("cento", 100),
    ("mille", 1000),
    ("mila", 1000),
    ("cien", 100),
    ("ciento", 100),
    ("cientos", 100),
    ("mil", 1000),
    ("cent", 100),
    ("cents", 100),
    ("hundert", 100),
    ("tausend", 1000),
    ("honderd", 100),
    ("duizend", 1000),
    ("εκατό", 100),
    ("εκατόν", 100),
    ("χίλια", 1000),
    ("χιλιάδες", 1000),
];

/// Singular articles, which also mean "one" in some languages but tell no count.
const ARTICLES: &[&str] = &[
    "a", "an", "un", "una", "une", "ein", "eine", "einen", "einem", "einer", "een", "ένας", "μία",
    "μια", "ένα",
];

const JOINERS: &[&str] = &["and", "y", "e", "et", "und", "en", "και"];

/// Italian tens, as they combine with units (`venti` + `tre` = `ventitré`,
/// with the final vowel elided before `uno` and `otto`).
const IT_TENS: &[(&str, u64)] = &[
    ("venti", 20),
    ("trenta", 30),
    ("quaranta", 40),
    ("cinquanta", 50),
    ("sessanta", 60),
    ("settanta", 70),
    ("ottanta", 80),
    ("novanta", 90),
];
const IT_UNITS: &[(&str, u64)] = &[
    ("uno", 1),
    ("due", 2),
    ("tré", 3),
    ("tre", 3),
    ("quattro", 4),
    ("cinque", 5),
    ("sei", 6),
    ("sette", 7),
    ("otto", 8),
    ("nove", 9),
];
/// German units as they begin a compound (`drei` + `und` + `zwanzig`).
const DE_UNITS: &[(&str, u64)] = &[
    ("ein", 1),
    ("zwei", 2),
    ("drei", 3),
    ("vier", 4),
    ("fünf", 5),
    ("sechs", 6),
    ("sieben", 7),
    ("acht", 8),
    ("neun", 9),
];
const DE_TENS: &[(&str, u64)] = &[
    ("zwanzig", 20),
    ("dreißig", 30),
    ("vierzig", 40),
    ("fünfzig", 50),
    ("sechzig", 60),
    ("siebzig", 70),
    ("achtzig", 80),
    ("neunzig", 90),
];
/// Dutch units as they begin a compound (`drie` + `ën` + `twintig`).
const NL_UNITS: &[(&str, u64)] = &[
    ("een", 1),
    ("twee", 2),
    ("drie", 3),
    ("vier", 4),
    ("vijf", 5),
    ("zes", 6),
    ("zeven", 7),
    ("acht", 8),
    ("negen", 9),
];
const NL_TENS: &[(&str, u64)] = &[
    ("twintig", 20),
    ("dertig", 30),
    ("veertig", 40),
    ("vijftig", 50),
    ("zestig", 60),
    ("zeventig", 70),
    ("tachtig", 80),
    ("negentig", 90),
];

/// Whether a word is written in the Greek script.
fn is_greek(word: &str) -> bool {
    word.chars()
        .any(|c| ('\u{0370}'..='\u{03FF}').contains(&c) || ('\u{1F00}'..='\u{1FFF}').contains(&c))
}

/// The usual unaccented spelling of a Latin-script word (`funf`, `dreissig`,
/// `veintitres`), when it differs.
fn unaccented(word: &str) -> Option<String> {
    let folded = fold(word);
    (folded != word).then_some(folded)
}

fn table() -> &'static HashMap<String, Part> {
    static TABLE: OnceLock<HashMap<String, Part>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t: HashMap<String, Part> = HashMap::new();
        let add = |t: &mut HashMap<String, Part>, w: &str, p: Part| {
            t.entry(w.to_string()).or_insert(p);
            if is_greek(w) {
                // Greek typed without its accents: fold keeps the script.
                t.entry(fold(w)).or_insert(p);
            } else if let Some(u) = unaccented(w) {
                // Only fill spellings no word has (`très` would fold onto the
                // Spanish `tres` anyway), and never an article: `één` is "one"
                // but `een` is "a".
                if !ARTICLES.contains(&u.as_str()) {
                    t.entry(u).or_insert(p);
                }
            }
        };
        for (w, v) in base_words() {
            add(&mut t, w, Part::Value(v));
        }
        for (tw, tv) in IT_TENS {
            for (uw, uv) in IT_UNITS {
                let stem = if uw.starts_with('u') || uw.starts_with('o') {
                    &tw[..tw.len() - 1]
                } else {
                    tw
                };
                add(&mut t, &format!("{stem}{uw}"), Part::Value(tv + uv));
            }
            add(&mut t, tw, Part::Value(*tv));
        }
        for (tw, tv) in DE_TENS {
            for (uw, uv) in DE_UNITS {
                add(&mut t, &format!("{uw}und{tw}"), Part::Value(tv + uv));
            }
        }
        for (tw, tv) in NL_TENS {
            for (uw, uv) in NL_UNITS {
                // `ën` after a word ending in `e` (drieëntwintig), `en` otherwise.
                let joined = if uw.ends_with('e') {
                    format!("{uw}ën{tw}")
                } else {
                    format!("{uw}en{tw}")
                };
                add(&mut t, &joined, Part::Value(tv + uv));
            }
        }
        for (w, v) in MULTIPLIERS {
            add(&mut t, w, Part::Times(*v));
        }
        for w in JOINERS {
            t.entry((*w).to_string()).or_insert(Part::Joiner);
        }
        t
    })
}

fn part_of(text: &str, token: &Token) -> Option<Part> {
    if token.kind != TokenKind::Word {
        return None;
    }
    let word = text.get(token.range.clone())?;
    table().get(&lower(word)).copied()
}

/// Whether a token is a number word (not a joiner such as `and`).
pub fn is_number_word(text: &str, token: &Token) -> bool {
    matches!(part_of(text, token), Some(Part::Value(_) | Part::Times(_)))
}

/// What may stand between two words of one spelt-out number: nothing but
/// spaces and hyphens (`twenty-three`, `quatre-vingt-dix`).
fn joins(gap: &str) -> bool {
    !gap.is_empty()
        && gap.len() <= NUMBER_GAP_BYTES_MAX
        && gap.chars().all(|c| c == ' ' || c == '-')
}

/// A number spelt out in words starting at token `i`: its value and how many
/// tokens it spans. `None` when token `i` is no number word.
///
/// Values combine as the languages write them: a smaller unit after a ten adds
/// (`twenty three`, `soixante dix`, `dix sept`), `quatre vingt` multiplies, a
/// multiplier scales what came before (`two hundred`), and a joiner (`and`, `y`,
/// `et`, `und`, `en`, `και`) is taken only when a part follows it. Anything else
/// ends the number: "three three" is two numbers.
pub fn words_at(text: &str, toks: &[Token], i: usize) -> Option<(u64, usize)> {
    let mut total: u64 = 0;
    let mut group: u64 = 0;
    let mut used = 0;
    let mut j = i;
    while j < toks.len() && j - i < NUMBER_WORDS_MAX {
        if j > i && !joins(super::normalize::gap(text, &toks[j - 1], &toks[j])) {
            break;
        }
        match part_of(text, &toks[j]) {
            Some(Part::Value(v)) => {
                let low = group % 100;
                let next = if used == 0 || (group == 0 && total > 0) {
                    Some(v)
                } else if low == 4 && v == 20 {
                    // quatre-vingt(s)
                    Some(group - 4 + 80)
                } else if group > 0 && low == 0 && v < 100 {
                    // two hundred | and thirty
                    Some(group + v)
                } else if low > 0
                    && low.is_multiple_of(10)
                    && low + v < 100
                    && (v < 10 || (matches!(low, 10 | 60 | 80) && v < 20))
                {
                    // twenty | three, dix | sept, soixante | dix
                    Some(group + v)
                } else {
                    None
                };
                let Some(g) = next else { break };
                group = g;
                used = j - i + 1;
            }
            Some(Part::Times(m)) => {
                let g = group.max(1).saturating_mul(m);
                if m >= 1000 {
                    total = total.saturating_add(g);
                    group = 0;
                } else {
                    group = g;
                }
                used = j - i + 1;
            }
            Some(Part::Joiner) if used > 0 => {}
            _ => break,
        }
        j += 1;
    }
    (used > 0).then(|| (total.saturating_add(group).min(WORD_VALUE_MAX), used))
}

/// The most digits a number is read with: longer runs are identifiers or phone
/// numbers, never counts (the phone rule removes them first).
pub const DIGITS_MAX: usize = 15;

/// A number written in digits starting at token `i`: its value and how many
/// tokens it spans. Thousands separators (`,`, `.`, `'`, a space) join groups of
/// exactly three digits; a `.` or `,` before other digits is a decimal point.
/// `None` when token `i` is not digits.
pub fn digits_at(text: &str, toks: &[Token], i: usize) -> Option<(f64, usize)> {
    let first = toks.get(i)?;
    if first.kind != TokenKind::Digits || first.folded.len() > DIGITS_MAX {
        return None;
    }
    let mut int: String = first.folded.clone();
    let mut decimals = String::new();
    let mut used = 1;
    while let Some(next) = toks.get(i + used) {
        let sep = super::normalize::gap(text, &toks[i + used - 1], next);
        if next.kind != TokenKind::Digits {
            break;
        }
        let grouped = next.folded.len() == 3 && (used > 1 || int.len() <= 3);
        if matches!(sep, "," | "." | "'" | " ") && grouped && int.len() + 3 <= DIGITS_MAX {
            int.push_str(&next.folded);
            used += 1;
            continue;
        }
        if matches!(sep, "," | ".") && used == 1 && next.folded.len() <= DIGITS_MAX {
            decimals.clone_from(&next.folded);
            used += 1;
        }
        break;
    }
    let written = if decimals.is_empty() {
        int
    } else {
        format!("{int}.{decimals}")
    };
    written.parse::<f64>().ok().map(|v| (v, used))
}

#[cfg(test)]
mod tests {
    use super::super::normalize::{normalize, tokens};
    use super::*;

    fn word_value(text: &str) -> Option<u64> {
        let t = normalize(text);
        let toks = tokens(&t);
        words_at(&t, &toks, 0).map(|(v, _)| v)
    }

    #[test]
    fn number_words_in_every_partner_language() {
        for (text, v) in [
            ("seven", 7),
            ("SEVEN", 7),
            ("twenty-three", 23),
            ("two hundred and thirty four", 234),
            ("tre", 3),
            ("ventitré", 23),
            ("ventotto", 28),
            ("cinco", 5),
            ("veintitrés", 23),
            ("veintitres", 23),
            ("treinta y tres", 33),
            ("trois", 3),
            ("vingt-trois", 23),
            ("soixante-dix", 70),
            ("quatre-vingt-dix", 90),
            ("drei", 3),
            ("dreiundzwanzig", 23),
            ("fünf", 5),
            ("funf", 5),
            ("drie", 3),
            ("drieëntwintig", 23),
            ("drieentwintig", 23),
            ("één", 1),
            ("τρεις", 3),
            ("τρεισ", 3),
            ("είκοσι τρία", 23),
            ("εικοσι τρια", 23),
        ] {
            assert_eq!(word_value(text), Some(v), "{text}");
        }
    }

    #[test]
    fn articles_and_look_alikes_are_not_numbers() {
        for text in ["una", "un", "une", "ein", "een", "très", "a", "and"] {
            assert_eq!(word_value(text), None, "{text}");
        }
    }

    #[test]
    fn digits_with_separators_and_decimals() {
        for (text, v) in [
            ("1,733", 1733.0),
            ("1.733", 1733.0),
            ("20 000", 20000.0),
            ("2.5", 2.5),
            ("7", 7.0),
        ] {
            let t = normalize(text);
            let toks = tokens(&t);
            assert_eq!(digits_at(&t, &toks, 0).map(|x| x.0), Some(v), "{text}");
        }
    }
}
