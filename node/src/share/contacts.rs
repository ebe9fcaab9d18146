//! Contact details in free text: web addresses, e-mail addresses and phone
//! numbers, as the partner cities write them.
//!
//! Each finder reads [`super::normalize`]d text and returns byte ranges; what
//! to do with them (remove, keep a link whole) is [`super::scrub`]'s plan:
//!
//! - [`find_urls`]: `http(s)://`, `www.`, contact schemes (`mailto:`, `tel:`,
//!   `whatsapp:` ...) and bare domains with a path, with whether each carries
//!   a person (a messaging host, a profile page, digits of a phone);
//! - [`find_emails`]: plain, with spaces around `@`, or with the "at"/"dot"
//!   words of the partner languages (`x [at] y [dot] z`, `x(at)y`);
//! - [`find_phones`]: runs of at least [`PHONE_DIGITS_MIN`] digits (or
//!   [`PHONE_DIGITS_MIN_INTL`] after a `+`) with the separators the cities
//!   use, years and year ranges left alone.

use std::ops::Range;

use super::dates::all_dates;
use super::normalize::{tokens, Token};

/// Whether two ranges overlap.
pub(super) fn overlaps(a: &Range<usize>, b: &Range<usize>) -> bool {
    a.start < b.end && b.start < a.end
}

/// The fewest digits a phone number has (without a `+`); shorter runs are
/// figures, postcodes or years.
pub const PHONE_DIGITS_MIN: usize = 8;
/// The fewest digits a phone number has after a `+` (country code included).
pub const PHONE_DIGITS_MIN_INTL: usize = 7;
/// The fewest digits inside a web address that make it carry a phone number
/// (`wa.me/32470123456`); article numbers shorter than this are left.
pub const URL_PHONE_DIGITS_MIN: usize = 7;

/// Hosts whose links name an account, that is a person: messaging links.
pub(super) const MESSAGING_HOSTS: &[&str] = &[
    "wa.me",
    "api.whatsapp.com",
    "chat.whatsapp.com",
    "t.me",
    "telegram.me",
    "signal.me",
    "m.me",
    "viber.me",
    "invite.viber.com",
];

/// Address prefixes that are always a person's profile page.
pub(super) const PROFILE_PREFIXES: &[&str] = &[
    "linkedin.com/in/",
    "www.linkedin.com/in/",
    "xing.com/profile/",
];

/// Schemes that carry an address or a number, not a page.
pub(super) const CONTACT_SCHEMES: &[&str] =
    &["mailto:", "tel:", "sms:", "callto:", "whatsapp:", "skype:"];

/// "at" words that only mean the at sign (so a plain `.` may follow).
const AT_WORDS_STRONG: &[&str] = &[
    "chiocciola",
    "arroba",
    "arobase",
    "arrobase",
    "klammeraffe",
    "apenstaartje",
    "παπακι",
    "at",
];
/// "dot" words of the partner languages (folded).
const DOT_WORDS: &[&str] = &["dot", "punto", "point", "punkt", "punt", "τελεια"];
/// Words that start a phrase, not a domain: "at this point it was".
const NOT_DOMAIN_START: &[&str] = &[
    "this", "that", "the", "a", "an", "one", "some", "which", "what", "each", "every", "any",
    "questo", "quel", "este", "ese", "ce", "cet", "cette", "dieser", "dit", "dat", "deze",
];
/// Endings an e-mail domain spelt with the language "dot" words must have
/// (the country and common generic ones), so prose is not read as an address.
const DOMAIN_ENDINGS: &[&str] = &[
    "com", "org", "net", "edu", "gov", "int", "eu", "info", "biz", "it", "es", "fr", "de", "nl",
    "be", "gr", "at", "ch", "uk", "pt", "pl", "se", "dk", "no", "fi", "ie", "lu", "cz", "ro", "bg",
    "hr", "si", "sk", "hu", "cy", "mt", "lt", "lv", "ee", "us", "ca", "io",
];

fn is_local_sep(g: &str) -> bool {
    matches!(g, "." | "_" | "-" | "+" | "%")
}

/// Where an e-mail's local part starts, when it ends with token `t`.
fn local_start(text: &str, toks: &[Token], t: usize) -> usize {
    let mut s = t;
    while s > 0 && is_local_sep(super::normalize::gap(text, &toks[s - 1], &toks[s])) {
        s -= 1;
    }
    s
}

/// How an e-mail's domain separates its labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sep {
    Plain,
    /// `(dot)`, `[punto]`, ` dot `.
    Word,
    /// ` punto `, ` point `, ...: also common words.
    LanguageWord,
}

/// How an e-mail writes its at sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    /// `a@b`.
    Sign,
    /// `a @ b`.
    SpacedSign,
    /// `(at)`, `[at]`, ` chiocciola `, ` arroba `: only ever the at sign.
    Word,
    /// ` at `: also an English preposition.
    WeakWord,
}

/// The domain starting at token `d`: (last token, separators).
fn domain(text: &str, toks: &[Token], d: usize) -> (usize, Vec<Sep>) {
    let gap = |a: usize, b: usize| super::normalize::gap(text, &toks[a], &toks[b]);
    let mut last = d;
    let mut seps = Vec::new();
    while let Some(next) = toks.get(last + 1) {
        let g = gap(last, last + 1);
        if g == "-" {
            last += 1;
            continue;
        }
        if g == "." {
            seps.push(Sep::Plain);
            last += 1;
            continue;
        }
        // A dot word: bracketed, or with spaces on both sides.
        if DOT_WORDS.contains(&next.folded.as_str()) && last + 2 < toks.len() {
            let (bracketed, spaced) = set_off(g, gap(last + 1, last + 2));
            if bracketed || spaced {
                seps.push(if bracketed || next.folded == "dot" {
                    Sep::Word
                } else {
                    Sep::LanguageWord
                });
                last += 2;
                continue;
            }
        }
        break;
    }
    (last, seps)
}

/// How a spelt-out at or dot word is set off from the words around it, given
/// the gaps before and after it: bracketed (`(at)`, `[dot]`), and spaced (a
/// space or more on both sides). A word set off neither way is part of the
/// prose, not of an address.
fn set_off(before: &str, after: &str) -> (bool, bool) {
    let bracketed = matches!(before.trim(), "(" | "[" | "{" | "<")
        && matches!(after.trim(), ")" | "]" | "}" | ">");
    let spaced = |gap: &str| !gap.is_empty() && gap.chars().all(|c| c == ' ');
    (bracketed, spaced(before) && spaced(after))
}

/// Byte ranges of e-mail addresses in a normalized text: plain (`a@b.org`),
/// with spaces around the at sign (`a @ b.org`), and obfuscated with brackets or
/// words (`a (at) b (dot) org`, `a[at]b[dot]org`, `a chiocciola b punto it`,
/// `a arroba b punto es`, `a arobase b point fr`, `a at b dot org`). A spaced
/// English "at" counts only with a spelt-out dot too, so "we met at school.org"
/// is prose.
pub fn find_emails(text: &str) -> Vec<(Range<usize>, bool)> {
    let toks = tokens(text);
    let gap = |a: usize, b: usize| super::normalize::gap(text, &toks[a], &toks[b]);
    let mut out: Vec<(Range<usize>, bool)> = Vec::new();
    let mut i = 0;
    while i + 1 < toks.len() {
        let g = gap(i, i + 1);
        // The at marker between token i (end of the local part) and the domain.
        let marker: Option<(usize, At)> = if g.trim() == "@" {
            Some((
                i + 1,
                if g.len() > 1 {
                    At::SpacedSign
                } else {
                    At::Sign
                },
            ))
        } else if i + 2 < toks.len() && AT_WORDS_STRONG.contains(&toks[i + 1].folded.as_str()) {
            let (bracketed, spaced) = set_off(g, gap(i + 1, i + 2));
            if bracketed || (spaced && toks[i + 1].folded != "at") {
                Some((i + 2, At::Word))
            } else if spaced {
                Some((i + 2, At::WeakWord))
            } else {
                None
            }
        } else {
            None
        };
        let Some((d, at)) = marker else {
            i += 1;
            continue;
        };
        let (last, seps) = domain(text, &toks, d);
        let spelt = seps.iter().any(|s| *s != Sep::Plain);
        let accept = match at {
            At::Sign => true,
            // "name @ domain.org"; "follow @citymodena" is a handle, not this.
            At::SpacedSign | At::Word => !seps.is_empty(),
            // A spaced English "at": needs a spelt-out dot, and with the dot
            // words that are also common words, a domain-like ending and no
            // phrase-like start ("so at this point it works").
            At::WeakWord => {
                spelt
                    && (seps.contains(&Sep::Word)
                        || (DOMAIN_ENDINGS.contains(&toks[last].folded.as_str())
                            && !NOT_DOMAIN_START.contains(&toks[d].folded.as_str())))
            }
        };
        if !accept {
            i += 1;
            continue;
        }
        let obfuscated = at != At::Sign || spelt;
        let s = local_start(text, &toks, i);
        let range = toks[s].range.start..toks[last].range.end;
        if out.last().is_none_or(|(r, _)| r.end <= range.start) {
            out.push((range, obfuscated));
        }
        i = last + 1;
    }
    out
}

fn is_year(g: &str) -> bool {
    g.len() == 4 && (g.starts_with("19") || g.starts_with("20"))
}

/// Byte ranges of phone numbers in a normalized text: at least
/// [`PHONE_DIGITS_MIN`] digits ([`PHONE_DIGITS_MIN_INTL`] after a `+`) in
/// groups joined by single spaces, dots, dashes, slashes or parentheses. Runs
/// made only of dates, months and years (`14-03-2018`, `2018-03/2021-08`) are
/// not phones.
pub fn find_phones(text: &str) -> Vec<Range<usize>> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !text.is_char_boundary(i) {
            i += 1;
            continue;
        }
        let c = bytes[i];
        let boundary = i == 0 || {
            let prev = text[..i].chars().next_back().unwrap_or(' ');
            !prev.is_alphanumeric()
        };
        let starts = c.is_ascii_digit()
            || (c == b'+' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit))
            || (c == b'('
                && bytes
                    .get(i + 1)
                    .is_some_and(|b| b.is_ascii_digit() || *b == b'+'));
        if !(boundary && starts) {
            i += 1;
            continue;
        }
        let mut j = i;
        let mut last_digit = i;
        let mut groups: Vec<Range<usize>> = Vec::new();
        let mut group_start: Option<usize> = None;
        let mut seps = 0;
        while j < bytes.len() {
            let b = bytes[j];
            if b.is_ascii_digit() {
                if group_start.is_none() {
                    group_start = Some(j);
                }
                last_digit = j;
                seps = 0;
            } else if matches!(b, b' ' | b'.' | b'-' | b'/' | b'(' | b')' | b'+') && seps < 2 {
                if let Some(s) = group_start.take() {
                    groups.push(s..j);
                }
                seps += 1;
            } else {
                break;
            }
            j += 1;
        }
        if let Some(s) = group_start.take() {
            groups.push(s..last_digit + 1);
        }
        let digits: usize = groups.iter().map(|g| g.len()).sum();
        let plus = text[i..].trim_start_matches('(').starts_with('+');
        let enough = digits
            >= if plus {
                PHONE_DIGITS_MIN_INTL
            } else {
                PHONE_DIGITS_MIN
            };
        let texts: Vec<&str> = groups.iter().map(|g| &text[g.clone()]).collect();
        let date_like = !plus
            && (all_dates(&texts)
                || (texts.first().is_some_and(|g| is_year(g))
                    && texts.iter().all(|g| is_year(g) || g.len() <= 2)));
        if enough && !date_like {
            out.push(i..last_digit + 1);
            i = last_digit + 1;
        } else {
            i = last_digit.max(i) + 1;
        }
    }
    out
}

/// Byte ranges of web addresses in a normalized text: `scheme://...`,
/// `www....`, the contact schemes (`mailto:`, `tel:`), and bare
/// `domain.tld/path` addresses. An address is the whole run of text without
/// spaces that holds it, so nothing glued to it (`ana@www.city.es`,
/// `see:https://...`) escapes the address rule; brackets, quotes and
/// punctuation around it are not part of it.
pub fn find_urls(text: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut pos = 0;
    for chunk in text.split([' ', '\n', '\r', '\t']) {
        let start = pos;
        pos += chunk.len() + 1;
        if chunk.is_empty() {
            continue;
        }
        let low = chunk.to_ascii_lowercase();
        let is_url = low.contains("://")
            || low.contains("www.")
            || CONTACT_SCHEMES.iter().any(|s| low.contains(s))
            || bare_domain_with_path(&low).is_some();
        if !is_url {
            continue;
        }
        let mut s = 0;
        while let Some(c) = chunk[s..].chars().next() {
            if !matches!(c, '(' | '[' | '<' | '"' | '\'' | '«' | '“' | '‘' | '{') {
                break;
            }
            s += c.len_utf8();
        }
        let mut e = chunk.len();
        // Trailing punctuation ends a sentence, not an address; a closing
        // bracket belongs to the address only if it opened one.
        while e > s {
            let Some(last) = chunk[..e].chars().next_back() else {
                break;
            };
            let opened = |open: char| chunk[s..e].contains(open);
            let trim = match last {
                '.' | ',' | ';' | ':' | '!' | '?' | '"' | '\'' | '»' | '”' | '’' | '>' => true,
                ')' => !opened('('),
                ']' => !opened('['),
                '}' => !opened('{'),
                _ => false,
            };
            if !trim {
                break;
            }
            e -= last.len_utf8();
        }
        if e > s {
            out.push(start + s..start + e);
        }
    }
    out
}

/// Where a bare `domain.tld/path` address starts in a chunk, if it holds one:
/// a host is the run of letters, digits, dots and dashes just before a slash,
/// wherever it starts (`(at)wa.me/...` holds `wa.me/`).
fn bare_domain_with_path(low: &str) -> Option<usize> {
    low.match_indices('/').find_map(|(slash, _)| {
        let s = low[..slash]
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_alphanumeric() || matches!(c, '.' | '-'))
            .last()
            .map(|(i, _)| i)?;
        let host = &low[s..slash];
        let (name, tld) = host.rsplit_once('.')?;
        let ok = !name.is_empty()
            && (2..=24).contains(&tld.len())
            && tld.chars().all(|c| c.is_ascii_alphabetic());
        ok.then_some(s)
    })
}
