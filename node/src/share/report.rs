//! What the anonymizer removed, suppressed or changed, and why: the data
//! `labnet share preview` shows.
//!
//! Two views of the same work:
//!
//! - [`ReportItem`]s, one per field touched, as a summary ("2 name(s) removed");
//! - [`Removal`]s, one per piece: the field, an excerpt of the *published* text
//!   around the piece with the piece between `«` and `»`, the [`Rule`] that
//!   removed it and why in words. The excerpt is cut from what is published,
//!   never from the input, so it cannot hold the personal data it reports on
//!   (nor any other piece removed nearby).
//!
//! [`Exemption`]s list the words a data steward's `not_names` kept in place.
//! None of this is published: peers receive the projection only.

use serde::Serialize;

/// How many characters of published text an excerpt shows on each side of the
/// piece: enough to recognise the sentence, short enough for one line.
pub const EXCERPT_CONTEXT_CHARS: usize = 32;

/// What the anonymizer did to one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportAction {
    /// A private field, left out.
    Dropped,
    /// A figure withheld.
    Suppressed,
    /// Free text with something removed.
    Scrubbed,
    /// Dates made coarser, or counts rounded.
    Coarsened,
}

/// One line of the per-field summary. Names the field, never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportItem {
    /// The field, e.g. `practice.indicators[2].achieved`.
    pub path: String,
    /// What was done.
    pub action: ReportAction,
    /// Why, in words.
    pub reason: String,
}

/// The rule that removed or changed a piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// A private field: never published.
    PrivateField,
    /// An e-mail address.
    Email,
    /// An e-mail address written with spaces or with "at"/"dot" words.
    EmailObfuscated,
    /// A phone number.
    Phone,
    /// A web address that carries a person's name.
    LinkWithName,
    /// A web address that carries an e-mail address.
    LinkWithEmail,
    /// A web address that carries a phone number, or a messaging link.
    LinkWithPhone,
    /// A person's profile page.
    LinkToProfile,
    /// A person's whole name.
    NameFull,
    /// A given name alone.
    NameGiven,
    /// A family name alone.
    NameFamily,
    /// One part of a compound or hyphenated name.
    NameCompoundPart,
    /// A possessive or genitive form of a name.
    NameInflected,
    /// Name parts run together (a user name).
    NameRunTogether,
    /// A name split across a hyphen or line break.
    NameSplit,
    /// A date finer than a month.
    DateDay,
    /// A count of people below the minimum, in text.
    CountBelowMinimum,
    /// A percentage of a count that stands for (or leaves) fewer people than
    /// the minimum, in text.
    PercentOfSmallCount,
    /// A count of people rounded to a multiple of the minimum.
    CountRounded,
    /// An indicator counting fewer people than the minimum.
    IndicatorBelowMinimum,
    /// An indicator whose numerator is below the minimum.
    NumeratorBelowMinimum,
    /// An indicator whose denominator is below the minimum.
    DenominatorBelowMinimum,
    /// A percentage whose numerator, computed from its denominator, is below
    /// the minimum.
    ComputedNumeratorBelowMinimum,
    /// An indicator whose complement (the base minus the count) is below the
    /// minimum.
    RemainderBelowMinimum,
    /// A planned count of people below the minimum.
    TargetBelowMinimum,
    /// A second cell suppressed so a hidden one cannot be recovered by
    /// subtraction.
    SecondarySuppression,
    /// A figure rounded so versions never differ by fewer than the minimum.
    IndicatorRounded,
}

impl Rule {
    /// The rule in words, for the preview.
    pub fn describe(self) -> &'static str {
        match self {
            Rule::PrivateField => "a private field never leaves the city",
            Rule::Email => "an e-mail address",
            Rule::EmailObfuscated => "an e-mail address written with spaces or with at/dot words",
            Rule::Phone => "a phone number",
            Rule::LinkWithName => "a web address that carries a person's name",
            Rule::LinkWithEmail => "a web address that carries an e-mail address or a handle",
            Rule::LinkWithPhone => "a web address with a phone number, or a messaging link",
            Rule::LinkToProfile => "a link to a person's profile page",
            Rule::NameFull => "a person's name",
            Rule::NameGiven => "a person's given name alone",
            Rule::NameFamily => "a person's family name alone",
            Rule::NameCompoundPart => "one part of a person's compound or hyphenated name",
            Rule::NameInflected => "a possessive or genitive form of a person's name",
            Rule::NameRunTogether => "parts of a person's name run together, as in a user name",
            Rule::NameSplit => "a person's name split across a hyphen or line break",
            Rule::DateDay => "a date coarsened to the month",
            Rule::CountBelowMinimum => "a count of people below the minimum",
            Rule::PercentOfSmallCount => {
                "a percentage that stands for, or leaves, fewer people than the minimum"
            }
            Rule::CountRounded => {
                "a count of people rounded to a multiple of the minimum, so versions never differ by fewer"
            }
            Rule::IndicatorBelowMinimum => "it counts fewer people than the minimum",
            Rule::NumeratorBelowMinimum => "its numerator is below the minimum",
            Rule::DenominatorBelowMinimum => "its denominator is below the minimum",
            Rule::ComputedNumeratorBelowMinimum => {
                "the people it stands for (computed from its denominator) are fewer than the minimum"
            }
            Rule::RemainderBelowMinimum => {
                "its base minus its count (the others) is below the minimum"
            }
            Rule::TargetBelowMinimum => "a planned count of people below the minimum",
            Rule::SecondarySuppression => {
                "a hidden count could be recovered by subtraction from this one (secondary suppression)"
            }
            Rule::IndicatorRounded => {
                "rounded to a multiple of the minimum, so versions never differ by fewer people"
            }
        }
    }
}

/// One removed, suppressed or changed piece, in context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Removal {
    /// The field, e.g. `practice.description` or `practice.lessons[2]`.
    pub field: String,
    /// The published text around the piece, the piece as published between
    /// `«` and `»` (a placeholder, a month, a rounded figure).
    pub excerpt: String,
    /// The rule.
    pub rule: Rule,
    /// Why, in words (the rule with its figures: the minimum, where the name is
    /// known from).
    pub reason: String,
}

/// A word kept in place because a data steward listed it in
/// `anonymization.not_names`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Exemption {
    /// The field.
    pub field: String,
    /// The word as published.
    pub word: String,
    /// The published text around it, the word between `«` and `»`.
    pub excerpt: String,
}

/// Everything removed or suppressed, and why.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct AnonymizationReport {
    /// One item per field touched.
    pub items: Vec<ReportItem>,
    /// One entry per piece removed, suppressed or changed.
    pub removals: Vec<Removal>,
    /// Words exempted by the data steward that would otherwise be removed.
    pub exemptions: Vec<Exemption>,
}

impl AnonymizationReport {
    /// Adds a per-field summary line.
    pub fn add(
        &mut self,
        path: impl Into<String>,
        action: ReportAction,
        reason: impl Into<String>,
    ) {
        self.items.push(ReportItem {
            path: path.into(),
            action,
            reason: reason.into(),
        });
    }
}

/// The excerpt of published text `out` around `piece` (a byte range of it).
pub fn excerpt(out: &str, piece: std::ops::Range<usize>) -> String {
    let start = super::normalize::floor_boundary(out, piece.start);
    let end = super::normalize::ceil_boundary(out, piece.end.max(start));
    let before: String = {
        let chars: Vec<char> = out[..start].chars().collect();
        let from = chars.len().saturating_sub(EXCERPT_CONTEXT_CHARS);
        let mut s: String = chars[from..].iter().collect();
        if from > 0 {
            s.insert(0, '…');
        }
        s
    };
    let after: String = {
        let mut s: String = out[end..].chars().take(EXCERPT_CONTEXT_CHARS).collect();
        if out[end..].chars().count() > EXCERPT_CONTEXT_CHARS {
            s.push('…');
        }
        s
    };
    let line = format!("{before}«{}»{after}", &out[start..end]);
    // One line: a line break in the text would break the preview's layout.
    line.replace(['\n', '\r', '\t'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_marks_the_piece_and_cuts_long_context() {
        let out = format!("{} [name removed] said {}", "a".repeat(40), "b".repeat(40));
        let at = out.find("[name").unwrap();
        let e = excerpt(&out, at..at + "[name removed]".len());
        assert!(e.starts_with('…') && e.ends_with('…'), "{e}");
        assert!(e.contains("«[name removed]» said"), "{e}");
    }
}
