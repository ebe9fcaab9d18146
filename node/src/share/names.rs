//! The names of every person the node knows of, and where they occur in a text.
//!
//! The node knows people from two places: its stakeholder roster and the
//! `contacts` of every practice it keeps ([`KnownPeople`]). A person may be
//! written about in many ways, so a name is matched:
//!
//! - whole (`José Pérez García`) and as the family name (`Pérez García`), which
//!   also takes the particles and initials along (`de la Cruz`, `J. R. Smith`);
//! - in part: the given name alone, the family name alone, and each part of a
//!   compound or hyphenated name (`Pérez`, `García` of `Pérez-García`);
//! - run together, as in a user name or a web address (`joselopez`, `jlopez`);
//! - with simple inflections: the possessive `'s` (the `s` is a token of its
//!   own, so the name before it matches), the genitive `-s` (`Annas`, `Jans`),
//!   the Greek genitive and vocative of `-ος`, `-ης`, `-ας` names
//!   (`Γιώργου`, `Γιάννη`) and their Latin transliterations (`Giorgou`);
//! - across a hyphen or line break that splits it (`Pé-\nrez`);
//! - after normalization ([`super::normalize`]): invisible characters removed,
//!   case and accents folded.
//!
//! Short parts. A part of one letter (an initial) never matches alone: it would
//! match every `a`, `y` and `i`. A part of two letters (`Li`, `Jo`, `An`) matches
//! alone only when written with a capital (`An`, `AN`), so the article "an" and
//! the Italian "li" are left alone while the name is still removed at the start
//! of a sentence, in a heading or in capitals. Name particles (`de`, `van`, `von`,
//! `la`, `al`, `ben`, ...) after the given name never match alone: they are in
//! every sentence and identify no one; they go with the full name. Everything
//! else (three letters and more) matches in any case: a common word that is also
//! a name (`Rosa`, `Mar`, `Grace`) is removed, which is the safe side.
//!
//! Exemptions. A data steward may list words that merely look like a name in
//! the config (`anonymization.not_names`, see [`NotNames`]). An exempted word is
//! not removed when it stands alone, and every such occurrence is reported so
//! the preview shows it. An exemption never applies to a whole name: "Rosa Green"
//! is removed even with `green` exempted.

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;

use serde::Serialize;

use super::normalize::{normalize, tokens, Token, TokenKind};
use super::ShareError;
use crate::lab::{Practice, Roster};

/// What replaces a name.
pub const NAME_REMOVED: &str = "[name removed]";

/// Parts of at most this many letters match alone only when written with a
/// capital (see the module docs): shorter words are too often words.
pub const SHORT_PART_LEN_MAX: usize = 2;

/// Parts of at least this many letters are also looked for *inside* the words
/// of a web address (`social.example/joselopez88`): shorter ones would match
/// inside every address.
pub const URL_SUBSTRING_LEN_MIN: usize = 4;

/// The Latin-script inflection rules (`-os` to `-ou`) apply to names with a stem
/// of at least this many letters, so `Luis` does not make `lui` a name.
pub const LATIN_STEM_LEN_MIN: usize = 4;

/// The most names (roster members and contacts together) the matcher is built
/// from. A roster past it is refused rather than matched in part.
pub const KNOWN_NAMES_MAX: usize = 100_000;

/// The most words read from one name. A longer "name" is not a name (a note
/// pasted in the wrong column) and is refused rather than half matched.
pub const NAME_WORDS_MAX: usize = 16;

/// The most words a steward may exempt; the config enforces the same bound.
pub const NOT_NAMES_MAX: usize = labnet_config::NOT_NAMES_MAX;

/// The most bytes between two halves of a name split by a hyphen or a line
/// break (`Pé-\nrez`, `Pé - rez`): a hyphen, a line break and spaces around.
pub const SPLIT_GAP_BYTES_MAX: usize = 4;

/// The most bytes between two name hits that are reported as one name (`José
/// Pérez`, `Pérez-García`): a space or a hyphen, possibly doubled.
pub const MERGE_GAP_BYTES_MAX: usize = 2;

/// Name particles: after the given name they never match alone.
pub const PARTICLES: &[&str] = &[
    "a", "af", "al", "av", "bin", "bint", "ben", "ibn", "abu", "da", "das", "de", "dei", "del",
    "della", "der", "des", "di", "do", "dos", "du", "e", "el", "i", "la", "le", "lo", "los", "mac",
    "mc", "o", "san", "santa", "st", "ten", "ter", "van", "vom", "von", "y", "zu", "zum", "zur",
    "den", "het", "op", "t",
];

/// Where the node knows a person from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NameSource {
    /// The stakeholder roster.
    Roster,
    /// A practice's `contacts`.
    Contact,
}

/// Every person the node knows of, by name.
#[derive(Debug, Clone, Default)]
pub struct KnownPeople {
    names: Vec<(String, NameSource)>,
}

impl KnownPeople {
    /// Nobody.
    pub fn new() -> KnownPeople {
        KnownPeople::default()
    }

    /// The members of a roster.
    pub fn from_roster(roster: &Roster) -> KnownPeople {
        let mut people = KnownPeople::new();
        for s in &roster.stakeholders {
            people.add(&s.name, NameSource::Roster);
        }
        people
    }

    /// Adds one person.
    pub fn add(&mut self, name: &str, source: NameSource) {
        if !name.trim().is_empty() {
            self.names.push((name.to_string(), source));
        }
    }

    /// Adds the contacts of a practice.
    pub fn add_contacts(&mut self, practice: &Practice) {
        for c in &practice.contacts {
            self.add(&c.name, NameSource::Contact);
        }
    }

    /// How many names.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether nobody is known.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// Words a data steward declared are not names (`anonymization.not_names`),
/// folded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotNames {
    words: BTreeSet<String>,
}

impl NotNames {
    /// No exemption.
    pub fn none() -> NotNames {
        NotNames::default()
    }

    /// The exemptions for these words (folded; blank words ignored).
    pub fn new<I, S>(words: I) -> NotNames
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let words = words
            .into_iter()
            .filter_map(|w| {
                let t = tokens(&normalize(w.as_ref()));
                // A single word only: the config refuses anything else, and a
                // phrase cannot exempt the one-word matches this applies to.
                (t.len() == 1).then(|| t[0].folded.clone())
            })
            .take(NOT_NAMES_MAX)
            .collect();
        NotNames { words }
    }

    /// Whether a folded word is exempted.
    pub fn contains(&self, folded: &str) -> bool {
        self.words.contains(folded)
    }

    /// Whether there is no exemption.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The exempted words, folded, in order.
    pub fn words(&self) -> impl Iterator<Item = &str> {
        self.words.iter().map(String::as_str)
    }
}

/// How a name was found, for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NameForm {
    /// The whole name, or the whole family name with its particles.
    Full,
    /// The given name alone.
    Given,
    /// The family name alone.
    Family,
    /// One part of a compound or hyphenated name.
    CompoundPart,
    /// A possessive, genitive or other simple inflection of a part.
    Inflected,
    /// Parts run together, as in a user name.
    RunTogether,
    /// A part split across a hyphen or line break.
    Split,
}

impl NameForm {
    /// In words, for the preview.
    pub fn describe(self) -> &'static str {
        match self {
            NameForm::Full => "a full name",
            NameForm::Given => "a given name alone",
            NameForm::Family => "a family name alone",
            NameForm::CompoundPart => "one part of a compound or hyphenated name",
            NameForm::Inflected => "an inflected form of a name (possessive, genitive)",
            NameForm::RunTogether => "name parts run together, as in a user name",
            NameForm::Split => "a name split across a hyphen or line break",
        }
    }
}

/// A name found in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameHit {
    /// Its bytes in the (normalized) text.
    pub range: Range<usize>,
    /// How it was written.
    pub form: NameForm,
    /// Where the node knows the person from.
    pub source: NameSource,
}

/// What [`NameMatcher::find`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameFindings {
    /// Names to remove.
    pub hits: Vec<NameHit>,
    /// Words left in place because a steward exempted them, which would
    /// otherwise have been removed.
    pub exempted: Vec<Range<usize>>,
}

#[derive(Debug, Clone, Copy)]
struct PartInfo {
    form: NameForm,
    short: bool,
    source: NameSource,
}

#[derive(Debug, Clone)]
struct Sequence {
    words: Vec<String>,
    source: NameSource,
}

/// The compiled names: finds them in text. Build once per share.
#[derive(Debug, Clone, Default)]
pub struct NameMatcher {
    /// Sequences of two words and more, by their first word, longest first.
    sequences: HashMap<String, Vec<Sequence>>,
    /// Single words that are a name, with how they relate to it.
    parts: HashMap<String, PartInfo>,
    /// Parts long enough to be looked for inside the words of a web address.
    url_parts: Vec<String>,
    not_names: NotNames,
}

/// The Greek and transliterated endings whose other case forms are also names:
/// `(ending, replacements)`.
const GREEK_ENDINGS: &[(&str, &[&str])] = &[
    ("οσ", &["ου", "ο", "ε"]),
    ("ησ", &["η"]),
    ("ασ", &["α"]),
    ("ισ", &["ι"]),
];
const LATIN_ENDINGS: &[(&str, &[&str])] =
    &[("os", &["ou", "o", "e"]), ("is", &["i"]), ("as", &["a"])];

impl NameMatcher {
    /// Compiles the names of `people`, minus the words in `not_names`.
    pub fn new(people: &KnownPeople, not_names: &NotNames) -> Result<NameMatcher, ShareError> {
        if people.len() > KNOWN_NAMES_MAX {
            return Err(ShareError::Unchecked {
                path: "roster".into(),
                why: format!(
                    "more than {KNOWN_NAMES_MAX} known names; the anonymizer does not match a part of them"
                ),
            });
        }
        let mut m = NameMatcher {
            not_names: not_names.clone(),
            ..NameMatcher::default()
        };
        for (name, source) in &people.names {
            let words: Vec<String> = tokens(&normalize(name))
                .into_iter()
                .map(|t| t.folded)
                .collect();
            if words.len() > NAME_WORDS_MAX {
                return Err(ShareError::Unchecked {
                    path: format!("{source:?}").to_lowercase(),
                    why: format!(
                        "a name has more than {NAME_WORDS_MAX} words, so it is not read as a name; fix the record"
                    ),
                });
            }
            m.add_name(&words, *source);
        }
        for seqs in m.sequences.values_mut() {
            seqs.sort_by_key(|s| std::cmp::Reverse(s.words.len()));
        }
        m.url_parts.sort();
        m.url_parts.dedup();
        Ok(m)
    }

    fn add_part(&mut self, word: &str, form: NameForm, source: NameSource) {
        let len = word.chars().count();
        if len < 2 {
            return;
        }
        let short = len <= SHORT_PART_LEN_MAX;
        // The first form a word is known by wins: a given name stays a given name.
        self.parts.entry(word.to_string()).or_insert(PartInfo {
            form,
            short,
            source,
        });
        if len >= URL_SUBSTRING_LEN_MIN && form != NameForm::Inflected {
            self.url_parts.push(word.to_string());
        }
    }

    fn add_inflections(&mut self, word: &str, source: NameSource) {
        let greek = word.chars().any(|c| ('\u{0370}'..='\u{03FF}').contains(&c));
        let endings = if greek { GREEK_ENDINGS } else { LATIN_ENDINGS };
        for (ending, others) in endings {
            if let Some(stem) = word.strip_suffix(ending) {
                if !greek && stem.chars().count() < LATIN_STEM_LEN_MIN {
                    continue;
                }
                if stem.chars().count() < 2 {
                    continue;
                }
                for o in *others {
                    self.add_part(&format!("{stem}{o}"), NameForm::Inflected, source);
                }
            }
        }
    }

    fn add_name(&mut self, words: &[String], source: NameSource) {
        if words.is_empty() {
            return;
        }
        let add_seq = |m: &mut NameMatcher, seq: &[String]| {
            if seq.len() >= 2 {
                m.sequences
                    .entry(seq[0].clone())
                    .or_default()
                    .push(Sequence {
                        words: seq.to_vec(),
                        source,
                    });
            }
        };
        add_seq(self, words);
        if words.len() >= 3 {
            add_seq(self, &words[1..]);
        }
        let family: Vec<&String> = words[1..]
            .iter()
            .filter(|w| !PARTICLES.contains(&w.as_str()) && w.chars().count() >= 2)
            .collect();
        let compound = family.len() >= 2;
        if words[0].chars().count() >= 2 {
            self.add_part(&words[0], NameForm::Given, source);
            self.add_inflections(&words[0], source);
        }
        for w in &family {
            let form = if compound {
                NameForm::CompoundPart
            } else {
                NameForm::Family
            };
            self.add_part(w, form, source);
            self.add_inflections(w, source);
        }
        // Run together, as user names and addresses write them.
        let given = &words[0];
        let initial: String = given.chars().take(1).collect();
        let mut joined_family = String::new();
        for w in &family {
            joined_family.push_str(w);
            for form in [
                format!("{given}{w}"),
                format!("{w}{given}"),
                format!("{initial}{w}"),
            ] {
                if form.chars().count() >= URL_SUBSTRING_LEN_MIN {
                    self.add_part(&form, NameForm::RunTogether, source);
                }
            }
        }
        if compound {
            self.add_part(&joined_family.clone(), NameForm::RunTogether, source);
            self.add_part(
                &format!("{given}{joined_family}"),
                NameForm::RunTogether,
                source,
            );
        }
    }

    /// Whether no name is known.
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty() && self.sequences.is_empty()
    }

    /// The part a single word is, if any: as written, with a genitive `-s` or
    /// Greek `-ς` dropped.
    fn part(&self, t: &Token) -> Option<(PartInfo, NameForm)> {
        if t.kind != TokenKind::Word {
            return None;
        }
        let usable = |p: &PartInfo| !p.short || t.has_upper;
        if let Some(p) = self.parts.get(&t.folded).filter(|p| usable(p)) {
            return Some((*p, p.form));
        }
        for suffix in ["s", "σ"] {
            if let Some(stem) = t.folded.strip_suffix(suffix) {
                if let Some(p) = self.parts.get(stem).filter(|p| usable(p)) {
                    return Some((*p, NameForm::Inflected));
                }
            }
        }
        None
    }

    fn sequence_at(&self, toks: &[Token], i: usize) -> Option<(usize, NameSource)> {
        let seqs = self.sequences.get(&toks[i].folded)?;
        seqs.iter()
            .find(|s| {
                i + s.words.len() <= toks.len()
                    && s.words
                        .iter()
                        .zip(&toks[i..])
                        .enumerate()
                        .all(|(k, (w, t))| {
                            // The last word may carry the genitive -s.
                            *w == t.folded
                                || (k + 1 == s.words.len()
                                    && (t.folded.strip_suffix('s') == Some(w.as_str())
                                        || t.folded.strip_suffix('σ') == Some(w.as_str())))
                        })
            })
            .map(|s| (s.words.len(), s.source))
    }

    /// Names in a normalized text, on word boundaries, and the exempted words.
    pub fn find(&self, text: &str) -> NameFindings {
        let mut out = NameFindings::default();
        if self.is_empty() {
            return out;
        }
        let toks = tokens(text);
        let mut i = 0;
        while i < toks.len() {
            if let Some((len, source)) = self.sequence_at(&toks, i) {
                out.hits.push(NameHit {
                    range: toks[i].range.start..toks[i + len - 1].range.end,
                    form: NameForm::Full,
                    source,
                });
                i += len;
                continue;
            }
            if let Some((p, form)) = self.part(&toks[i]) {
                if self.not_names.contains(&toks[i].folded) {
                    out.exempted.push(toks[i].range.clone());
                } else {
                    out.hits.push(NameHit {
                        range: toks[i].range.clone(),
                        form,
                        source: p.source,
                    });
                }
                i += 1;
                continue;
            }
            if let Some(next) = toks.get(i + 1) {
                let between = super::normalize::gap(text, &toks[i], next);
                let splits = between.contains('-') || between.contains('\n');
                if splits
                    && between
                        .chars()
                        .all(|c| matches!(c, '-' | '\n' | '\r' | ' '))
                    && between.len() <= SPLIT_GAP_BYTES_MAX
                {
                    let joined = format!("{}{}", toks[i].folded, next.folded);
                    if let Some(p) = self.parts.get(&joined).filter(|p| !p.short) {
                        if !self.not_names.contains(&joined) {
                            out.hits.push(NameHit {
                                range: toks[i].range.start..next.range.end,
                                form: NameForm::Split,
                                source: p.source,
                            });
                            i += 2;
                            continue;
                        }
                    }
                }
            }
            i += 1;
        }
        out.hits = merge_adjacent(text, out.hits);
        out
    }

    /// Whether a web address carries a known name: as one of its words, or
    /// inside one (`joselopez88`), exemptions aside.
    pub fn in_url(&self, url: &str) -> bool {
        if self.is_empty() {
            return false;
        }
        let text = normalize(url);
        if !self.find(&text).hits.is_empty() {
            return true;
        }
        tokens(&text).iter().any(|t| {
            !self.not_names.contains(&t.folded)
                && self
                    .url_parts
                    .iter()
                    .any(|p| t.folded.len() > p.len() && t.folded.contains(p.as_str()))
        })
    }
}

/// Joins hits separated only by spaces or a hyphen ("José Pérez" written with
/// parts of two people, or given and family name apart from a roster entry),
/// so one name is one removal.
fn merge_adjacent(text: &str, hits: Vec<NameHit>) -> Vec<NameHit> {
    let mut out: Vec<NameHit> = Vec::with_capacity(hits.len());
    for h in hits {
        if let Some(last) = out.last_mut() {
            let between = text.get(last.range.end..h.range.start).unwrap_or("x");
            if between.len() <= MERGE_GAP_BYTES_MAX && between.chars().all(|c| c == ' ' || c == '-')
            {
                last.range.end = h.range.end;
                if h.form < last.form {
                    last.form = h.form;
                }
                continue;
            }
        }
        out.push(h);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(names: &[&str], not_names: &[&str]) -> NameMatcher {
        let mut p = KnownPeople::new();
        for n in names {
            p.add(n, NameSource::Roster);
        }
        NameMatcher::new(&p, &NotNames::new(not_names)).unwrap()
    }

    fn found(m: &NameMatcher, text: &str) -> Vec<String> {
        let t = normalize(text);
        m.find(&t)
            .hits
            .iter()
            .map(|h| t[h.range.clone()].to_string())
            .collect()
    }

    /// Texts, each with the one name found in it (as written).
    type Found = [(&'static str, &'static str)];

    /// Each case: what it shows, the roster, and what is found.
    const FOUND: &[(&str, &[&str], &Found)] = &[
        (
            "a given name alone",
            &["Ana Ruiz"],
            &[("Ana said it works", "Ana")],
        ),
        (
            "one half of a hyphenated family name",
            &["José Pérez-García"],
            &[
                ("thanks to García", "García"),
                ("thanks to perez", "perez"),
                ("PÉREZ-GARCÍA", "PÉREZ-GARCÍA"),
            ],
        ),
        (
            "possessive and genitive forms",
            &["Anna Berger", "Γιώργος Παπαδόπουλος"],
            &[
                ("Anna's idea", "Anna"),
                ("Anna’s idea", "Anna"),
                ("Annas Idee", "Annas"),
                ("του Γιώργου", "Γιώργου"),
                ("ο κ. ΠΑΠΑΔΟΠΟΥΛΟΣ", "ΠΑΠΑΔΟΠΟΥΛΟΣ"),
            ],
        ),
        (
            "a name split by a line-break hyphen",
            &["José Pérez"],
            &[("Pé-\nrez", "Pé-\nrez")],
        ),
        (
            "a two-letter given name with a capital, a family name with a particle",
            &["An de Vries"],
            &[
                ("An said", "An"),
                ("AN said", "AN"),
                ("de Vries", "de Vries"),
                ("Vries", "Vries"),
                ("An de Vries", "An de Vries"),
            ],
        ),
    ];

    #[test]
    fn names_are_found_whole_in_part_and_inflected() {
        for (case, roster, texts) in FOUND {
            let m = matcher(roster, &[]);
            for (text, name) in *texts {
                assert_eq!(found(&m, text), [*name], "{case}: {text:?}");
            }
        }
    }

    #[test]
    fn invisible_characters_do_not_split_a_name() {
        let m = matcher(&["José Pérez"], &[]);
        for t in [
            "Pé\u{00AD}rez",
            "Pé\u{200B}rez",
            "P\u{200D}érez",
            "Pé\u{2060}rez",
        ] {
            assert_eq!(found(&m, t).len(), 1, "{t:?}");
        }
    }

    #[test]
    fn two_letter_given_name_needs_a_capital_and_particles_never_match_alone() {
        let m = matcher(&["An de Vries"], &[]);
        assert!(found(&m, "an idea of de stad").is_empty());
    }

    #[test]
    fn exempted_words_stay_and_are_reported_but_full_names_go() {
        let m = matcher(&["Rosa Green"], &["green"]);
        let t = normalize("green spaces by Rosa Green");
        let f = m.find(&t);
        assert_eq!(f.exempted.len(), 1);
        assert_eq!(&t[f.exempted[0].clone()], "green");
        assert_eq!(f.hits.len(), 1);
        assert_eq!(&t[f.hits[0].range.clone()], "Rosa Green");
    }

    #[test]
    fn profile_url_with_a_name_inside_a_word() {
        let m = matcher(&["José López"], &[]);
        assert!(m.in_url("https://social.example/jose.lopez"));
        assert!(m.in_url("https://social.example/joselopez88"));
        assert!(m.in_url("https://social.example/JLopez"));
        assert!(!m.in_url("https://www.milma-fuenlabrada.es/index.php/en"));
    }
}
