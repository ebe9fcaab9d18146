//! Text normalization, shared by every detector and by the final check.
//!
//! A name or a phone number can hide behind code points a reader never sees or
//! reads as the usual ones: a soft hyphen or a zero-width space inside a name, a
//! narrow no-break space or an en dash between the groups of a phone number,
//! full-width digits, a full-width at sign. Every detector therefore works on
//! [`normalize`]d text:
//!
//! 1. invisible format characters and control characters are removed (see
//!    [`is_invisible`]);
//! 2. NFKC folds compatibility forms (full-width digits and letters, ligatures,
//!    the no-break and thin spaces, the small and full-width at signs) into the
//!    usual ones;
//! 3. every dash and minus sign becomes `-`, every remaining space character a
//!    plain space.
//!
//! Free text is *published* in its normalized form too, so what was checked is
//! byte for byte what leaves: there is no second, un-normalized copy whose
//! invisible characters could carry anything.
//!
//! [`fold`] is the comparison key for words: compatibility decomposition,
//! accents and case dropped. [`tokens`] splits a normalized text into words and
//! numbers with their byte ranges, the unit the name, count and date rules read.

use std::ops::{Range, RangeInclusive};

use labnet_text::{hidden_kind, HiddenKind};
use unicode_normalization::UnicodeNormalization;

/// Whether a character is invisible in running text and must not split or hide a
/// word: soft hyphen, zero-width space, joiners and non-joiners, word joiner,
/// byte-order mark, bidirectional controls, variation selectors, tag characters
/// and the Hangul and Mongolian fillers. Control characters other than line
/// breaks and tabs count as invisible too.
///
/// That is the class a node name must not hold ([`hidden_kind`]), less line
/// breaks and tabs, which separate words, and less `KEPT_FORMAT`.
pub fn is_invisible(c: char) -> bool {
    match hidden_kind(c) {
        Some(HiddenKind::Control) => !matches!(c, '\n' | '\r' | '\t'),
        Some(HiddenKind::Bidi) => true,
        Some(HiddenKind::Invisible) => !KEPT_FORMAT.iter().any(|kept| kept.contains(&c)),
        None => false,
    }
}

/// The format characters of [`hidden_kind`]'s class that normalization leaves
/// in the text: the line and paragraph separators, which [`normalize`] turns
/// into line breaks, and the marks that join the digits or signs around them
/// (Arabic, Syriac and Kaithi number signs, Egyptian hieroglyph controls)
/// rather than hide inside a word.
const KEPT_FORMAT: [RangeInclusive<char>; 9] = [
    '\u{0600}'..='\u{0605}',
    '\u{06DD}'..='\u{06DD}',
    '\u{070F}'..='\u{070F}',
    '\u{0890}'..='\u{0891}',
    '\u{08E2}'..='\u{08E2}',
    '\u{2028}'..='\u{2029}',
    '\u{110BD}'..='\u{110BD}',
    '\u{110CD}'..='\u{110CD}',
    '\u{13430}'..='\u{1343F}',
];

/// Whether a character is a dash or a minus sign that phone numbers and dates
/// may be written with.
fn is_dash(c: char) -> bool {
    matches!(
        c,
        '\u{2010}'
            ..='\u{2015}'
                | '\u{2212}'
                | '\u{2043}'
                | '\u{02D7}'
                | '\u{2E3A}'
                | '\u{2E3B}'
                | '\u{FE58}'
                | '\u{FE63}'
                | '\u{FF0D}'
    )
}

/// The normalized form of a text (see the module docs).
pub fn normalize(text: &str) -> String {
    let visible: String = text.chars().filter(|c| !is_invisible(*c)).collect();
    visible
        .nfkc()
        .filter(|c| !is_invisible(*c))
        .map(|c| match c {
            '\u{2028}' | '\u{2029}' | '\u{0085}' => '\n',
            c if is_dash(c) => '-',
            c if c.is_whitespace() && !matches!(c, '\n' | '\r' | '\t') => ' ',
            c => c,
        })
        .collect()
}

/// Whether a word mixes Latin letters with Greek or Cyrillic ones: no word of
/// the partner languages does, but a name typed with a look-alike letter
/// (`Mаria` with a Cyrillic `а`) does.
fn is_mixed_script(word: &str) -> bool {
    let latin = word.chars().any(|c| c.is_ascii_alphabetic());
    latin
        && word
            .chars()
            .any(|c| matches!(c, '\u{0370}'..='\u{03FF}' | '\u{0400}'..='\u{052F}'))
}

/// The Latin letter a Cyrillic letter is drawn like, always (no partner
/// language is written in Cyrillic, so nothing is lost), and the one a Greek
/// letter is drawn like, in a word that also holds Latin letters only: whole
/// Greek words keep their letters, which the Greek word tables are written in.
/// Capitals map by their capital's look (`Н` is `H`), small letters by theirs.
fn latin_lookalike(c: char, mixed: bool) -> Option<char> {
    let cyrillic = match c {
        'А' | 'а' => 'a',
        'В' | 'в' => 'b',
        'Е' | 'е' => 'e',
        'К' | 'к' => 'k',
        'М' | 'м' => 'm',
        'Н' | 'һ' => 'h',
        'О' | 'о' => 'o',
        'Р' | 'р' => 'p',
        'С' | 'с' => 'c',
        'Т' | 'т' => 't',
        'У' | 'у' => 'y',
        'Х' | 'х' => 'x',
        'І' | 'і' | 'Ӏ' | 'ӏ' => 'i',
        'Ј' | 'ј' => 'j',
        'Ѕ' | 'ѕ' => 's',
        'ԁ' => 'd',
        'Ԛ' | 'ԛ' => 'q',
        'Ԝ' | 'ԝ' => 'w',
        _ => '\0',
    };
    if cyrillic != '\0' {
        return Some(cyrillic);
    }
    if !mixed {
        return None;
    }
    Some(match c {
        'Α' | 'α' => 'a',
        'Β' => 'b',
        'Ε' => 'e',
        'Ζ' => 'z',
        'Η' => 'h',
        'Ι' | 'ι' => 'i',
        'Κ' | 'κ' => 'k',
        'Μ' => 'm',
        'Ν' => 'n',
        'ν' => 'v',
        'Ο' | 'ο' => 'o',
        'Ρ' | 'ρ' => 'p',
        'Τ' => 't',
        'Υ' | 'υ' => 'y',
        'Χ' | 'χ' => 'x',
        _ => return None,
    })
}

/// Folds a word for comparison: compatibility decomposition, accents dropped,
/// lowercase, the few Latin letters NFKD leaves whole spelt out, the Greek
/// final sigma made the ordinary one (so `ΜΑΡΙΑΣ` and `Μαρίας` fold alike),
/// and letters drawn like Latin ones read as those (see `latin_lookalike`).
pub fn fold(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    let mixed = is_mixed_script(word);
    for c in word.nfkd() {
        if unicode_normalization::char::is_combining_mark(c) || is_invisible(c) {
            continue;
        }
        if let Some(latin) = latin_lookalike(c, mixed) {
            out.push(latin);
            continue;
        }
        match c {
            'ø' | 'Ø' => out.push('o'),
            'ł' | 'Ł' => out.push('l'),
            'đ' | 'Đ' => out.push('d'),
            'æ' | 'Æ' => out.push_str("ae"),
            'œ' | 'Œ' => out.push_str("oe"),
            'ß' | 'ẞ' => out.push_str("ss"),
            'ı' => out.push('i'),
            'ς' => out.push('σ'),
            _ => {
                for l in c.to_lowercase() {
                    out.push(if l == 'ς' { 'σ' } else { l });
                }
            }
        }
    }
    out
}

/// Lowercase without folding accents: number words are read in this form,
/// because folding would make French `très` ("very") the Spanish `tres`.
pub fn lower(word: &str) -> String {
    word.nfc().flat_map(char::to_lowercase).collect()
}

/// Whether a character belongs to a word.
pub fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || unicode_normalization::char::is_combining_mark(c)
}

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Letters (possibly with digits inside, `B2`, `3rd`).
    Word,
    /// Only ASCII digits.
    Digits,
}

/// One word or number of a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// Its bytes in the text.
    pub range: Range<usize>,
    /// Its folded form ([`fold`]).
    pub folded: String,
    /// Word or digits.
    pub kind: TokenKind,
    /// Whether the word as written has an upper-case letter.
    pub has_upper: bool,
}

/// The words and numbers of a text, in order, with their byte ranges.
pub fn tokens(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut start = None;
    let push = |out: &mut Vec<Token>, s: usize, e: usize| {
        let w = &text[s..e];
        let kind = if w.bytes().all(|b| b.is_ascii_digit()) {
            TokenKind::Digits
        } else {
            TokenKind::Word
        };
        out.push(Token {
            range: s..e,
            folded: fold(w),
            kind,
            has_upper: w.chars().any(char::is_uppercase),
        });
    };
    for (i, c) in text.char_indices() {
        match (is_word_char(c), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                push(&mut out, s, i);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        push(&mut out, s, text.len());
    }
    out
}

/// The text between two tokens (what separates them).
pub fn gap<'a>(text: &'a str, before: &Token, after: &Token) -> &'a str {
    text.get(before.range.end..after.range.start).unwrap_or("")
}

/// The largest char boundary at or below `i`.
pub fn floor_boundary(text: &str, i: usize) -> usize {
    let mut i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The smallest char boundary at or above `i`.
pub fn ceil_boundary(text: &str, i: usize) -> usize {
    let mut i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::share::tests::assert_maps;

    #[test]
    fn invisible_characters_inside_a_name_are_removed() {
        for hidden in [
            "Jo\u{00AD}sé",
            "Jo\u{200B}sé",
            "Jo\u{200C}sé",
            "Jo\u{200D}sé",
            "Jo\u{2060}sé",
            "Jo\u{FEFF}sé",
            "Jo\u{202E}sé",
            "Jo\u{2066}sé\u{2069}",
        ] {
            assert_eq!(normalize(hidden), "José", "{hidden:?}");
        }
    }

    #[test]
    fn unicode_spaces_dashes_and_full_width_digits_become_ascii() {
        assert_maps(
            normalize,
            &[
                (
                    "+32\u{00A0}470\u{202F}12\u{2009}34\u{2013}56",
                    "+32 470 12 34-56",
                ),
                ("０４７０—１２−３４", "0470-12-34"),
                ("ana＠city.es", "ana@city.es"),
            ],
        );
    }

    #[test]
    fn folding_drops_case_accents_and_final_sigma() {
        assert_maps(fold, &[("PÉREZ", "perez"), ("Straße", "strasse")]);
        assert_eq!(fold("Μαρίας"), fold("ΜΑΡΙΑΣ"));
        assert_eq!(lower("Très"), "très");
    }

    #[test]
    fn look_alike_letters_fold_to_latin_and_greek_words_keep_theirs() {
        assert_maps(
            fold,
            &[
                // Cyrillic а, о and Н; a Greek Α among Latin letters.
                ("Mаria", "maria"),
                ("Rоssi", "rossi"),
                ("НANS", "hans"),
                ("MΑRIA", "maria"),
                // A whole Greek word is left in Greek: the Greek tables are.
                ("οκτώ", "οκτω"),
                ("Νίκος", "νικοσ"),
            ],
        );
    }

    #[test]
    fn tokens_keep_ranges_and_case() {
        let t = tokens("An idea, 12 José's");
        let words: Vec<&str> = t.iter().map(|t| t.folded.as_str()).collect();
        assert_eq!(words, ["an", "idea", "12", "jose", "s"]);
        assert!(t[0].has_upper && !t[1].has_upper);
        assert_eq!(t[2].kind, TokenKind::Digits);
    }
}
