//! The anonymizer: from a private practice and everyone the node knows of to
//! the projection peers may see, plus a report of everything removed and why.
//!
//! Pure and deterministic: the same practice, people and settings always give
//! the same projection, so `labnet share preview` shows exactly what sharing
//! sends. It is driven by [`super::classes`]: every key path of the input is
//! looked up there first, and an unclassed path stops the anonymizer (fail
//! closed). Each published field is then taken only if the table classes it
//! shareable or names the transform applied. The published types
//! ([`PublishedPractice`], [`PublishedIndicator`]) have no field for a person
//! at all.
//!
//! Inputs ([`AnonymizerInput`]): the practice; [`KnownPeople`], the names on the
//! roster and in the contacts of *every* practice the node keeps (a contact of
//! one practice may be named in another's text); and [`AnonymizationSettings`]:
//! the minimum count and the words a data steward exempted from the name rule.
//!
//! Steps:
//!
//! 1. private fields are dropped;
//! 2. free text is normalized and scrubbed ([`super::scrub`]): web addresses
//!    carrying personal data, e-mail addresses, phone numbers, names, small
//!    counts of people removed; dates coarsened to the month; counts of people
//!    rounded to a multiple of the minimum;
//! 3. indicators go through primary and secondary suppression and rounding
//!    ([`super::suppress`]);
//! 4. the finished projection is serialized and *every* string in it (id, city,
//!    name, area, link, labels, units, list items) is checked again with the
//!    same detectors ([`check_projection`]). A hit is an error naming the field,
//!    and nothing is published: a shareable field is never edited, so a name in
//!    a practice's `name` or a phone number in its `link` refuses the share.
//!
//! Errors and the report name fields, never values: the values may be personal
//! data. The report's excerpts are cut from the published text (see
//! [`super::report`]).

use std::sync::Arc;

use autosurgeon::{Hydrate, Reconcile};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::classes::{class_of, unclassed_paths, FieldClass, Transform, PUBLISHED_ONLY};
use super::names::{KnownPeople, NameMatcher, NotNames};
use super::report::excerpt;
pub use super::report::{AnonymizationReport, Exemption, Removal, ReportAction, ReportItem, Rule};
use super::scrub::{Scanner, Scrubbed, TEXT_BYTES_MAX};
use super::suppress::{decide, INDICATORS_MAX};
use super::ShareError;
use crate::lab::{Practice, Roster, ThematicArea};

/// The numeric anonymization settings, recorded in every publication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnonymizationPolicy {
    /// Counts of people below this are suppressed, and so are percentages whose
    /// numerator, denominator or remainder is below it; counts at or above it
    /// are published as multiples of it.
    pub min_count: u32,
}

impl Default for AnonymizationPolicy {
    fn default() -> Self {
        AnonymizationPolicy {
            min_count: labnet_config::DEFAULT_MIN_COUNT,
        }
    }
}

impl AnonymizationPolicy {
    /// The settings as recorded in the disclosure log: `{"min_count":N}`.
    pub fn settings_json(&self) -> String {
        format!("{{\"min_count\":{}}}", self.min_count)
    }
}

/// Every anonymization setting of a node: the policy, and the words a data
/// steward declared are not names (`anonymization.not_names`). The exemptions
/// stay in the city: they are recorded in its disclosure log, never in a
/// publication (the words are parts of real people's names).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AnonymizationSettings {
    /// The numeric settings.
    pub policy: AnonymizationPolicy,
    /// The exempted words.
    pub not_names: NotNames,
}

impl AnonymizationSettings {
    /// The settings of a node's config.
    pub fn from_config(config: &labnet_config::Config) -> AnonymizationSettings {
        AnonymizationSettings {
            policy: AnonymizationPolicy {
                min_count: config.min_count,
            },
            not_names: NotNames::new(&config.not_names),
        }
    }

    /// The settings as recorded in the disclosure log: `{"min_count":N}`, with
    /// `"not_names":[...]` when a word is exempted.
    pub fn settings_json(&self) -> String {
        if self.not_names.is_empty() {
            return self.policy.settings_json();
        }
        let words: Vec<&str> = self.not_names.words().collect();
        serde_json::json!({ "min_count": self.policy.min_count, "not_names": words }).to_string()
    }
}

impl From<AnonymizationPolicy> for AnonymizationSettings {
    fn from(policy: AnonymizationPolicy) -> Self {
        AnonymizationSettings {
            policy,
            not_names: NotNames::none(),
        }
    }
}

/// What the anonymizer reads.
#[derive(Debug, Clone, Copy)]
pub struct AnonymizerInput<'a> {
    /// The practice.
    pub practice: &'a Practice,
    /// Everyone the node knows of: the roster and every practice's contacts.
    pub people: &'a KnownPeople,
    /// The settings.
    pub settings: &'a AnonymizationSettings,
}

/// A published result. Suppressed results keep their label only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct PublishedIndicator {
    /// What was measured (scrubbed).
    pub label: String,
    /// What was achieved; absent when suppressed.
    pub achieved: Option<f64>,
    /// What was aimed at; absent when suppressed.
    pub target: Option<f64>,
    /// The unit.
    pub unit: Option<String>,
    /// Whether a figure was withheld because it was below the minimum count.
    pub suppressed: bool,
}

/// The anonymized projection of a practice: what peers receive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct PublishedPractice {
    /// The practice's id in its city.
    pub id: String,
    /// The city.
    pub city: String,
    /// The practice's name.
    pub name: String,
    /// The city's wording of the field.
    pub area: String,
    /// `education` or `care`.
    pub thematic_area: Option<ThematicArea>,
    /// A public link.
    pub link: Option<String>,
    /// Duration, to month precision.
    pub duration: Option<String>,
    /// Scrubbed free text.
    pub challenges_addressed: String,
    /// Types of organisation involved.
    pub stakeholders_involved: Vec<String>,
    /// Scrubbed free text.
    pub description: String,
    /// Whether the practice was systematized.
    pub systematized: bool,
    /// Results, small counts suppressed.
    pub indicators: Vec<PublishedIndicator>,
    /// Scrubbed free text.
    pub communication: String,
    /// Scrubbed free text.
    pub stakeholder_involvement: String,
    /// Scrubbed free text.
    pub migrant_involvement: String,
    /// Scrubbed free-text items.
    pub challenges: Vec<String>,
    /// Scrubbed free-text items.
    pub recommendations: Vec<String>,
    /// Scrubbed free-text items.
    pub lessons: Vec<String>,
}

/// The anonymizer's result: the projection, the report, the settings used.
#[derive(Debug, Clone)]
pub struct Anonymized {
    /// What may be published.
    pub practice: PublishedPractice,
    /// What was left out and why.
    pub report: AnonymizationReport,
    /// The settings applied.
    pub policy: AnonymizationPolicy,
    /// The compiled rules, for the checks of what is added to the projection
    /// on publishing (the city's name).
    pub scanner: Arc<Scanner>,
}

/// The class a path must have for the anonymizer to take it, or an error.
fn require(path: &str) -> Result<FieldClass, ShareError> {
    class_of(path).ok_or_else(|| ShareError::Unclassified {
        path: path.to_string(),
    })
}

fn too_long(path: &str) -> ShareError {
    ShareError::Unchecked {
        path: path.to_string(),
        why: format!("longer than {TEXT_BYTES_MAX} bytes, which the anonymizer does not read"),
    }
}

struct Ctx<'a> {
    scanner: &'a Scanner,
    report: AnonymizationReport,
}

/// The summary line of a scrubbed field: what kinds were removed, how many.
fn summary(pieces: &Scrubbed) -> (Vec<String>, Vec<String>) {
    let mut removed: Vec<(Rule, &str, usize)> = Vec::new();
    let mut changed: Vec<(Rule, &str, usize)> = Vec::new();
    for p in &pieces.pieces {
        let (bucket, label) = match p.rule {
            Rule::Email | Rule::EmailObfuscated => (&mut removed, "e-mail address"),
            Rule::Phone => (&mut removed, "phone number"),
            Rule::LinkWithName
            | Rule::LinkWithEmail
            | Rule::LinkWithPhone
            | Rule::LinkToProfile => (&mut removed, "web address"),
            Rule::CountBelowMinimum | Rule::PercentOfSmallCount => (&mut removed, "small count"),
            Rule::DateDay => (&mut changed, "date(s) coarsened to the month"),
            Rule::CountRounded => (&mut changed, "count(s) rounded to the minimum"),
            _ => (&mut removed, "name"),
        };
        match bucket.iter_mut().find(|(_, l, _)| *l == label) {
            Some(e) => e.2 += 1,
            None => bucket.push((p.rule, label, 1)),
        }
    }
    let removed = removed
        .into_iter()
        .map(|(_, l, n)| format!("{n} {l}(s) removed"))
        .collect();
    let changed = changed
        .into_iter()
        .map(|(_, l, n)| format!("{n} {l}"))
        .collect();
    (removed, changed)
}

impl Ctx<'_> {
    fn note(&mut self, path: &str, scrubbed: &Scrubbed) {
        let (removed, changed) = summary(scrubbed);
        if !removed.is_empty() {
            self.report
                .add(path, ReportAction::Scrubbed, removed.join(", "));
        }
        if !changed.is_empty() {
            self.report
                .add(path, ReportAction::Coarsened, changed.join(", "));
        }
        for p in &scrubbed.pieces {
            self.report.removals.push(Removal {
                field: path.to_string(),
                excerpt: excerpt(&scrubbed.text, p.at.clone()),
                rule: p.rule,
                reason: p.reason.clone(),
            });
        }
        for r in &scrubbed.exempted {
            self.report.exemptions.push(Exemption {
                field: path.to_string(),
                word: scrubbed.text.get(r.clone()).unwrap_or_default().to_string(),
                excerpt: excerpt(&scrubbed.text, r.clone()),
            });
        }
    }

    /// A text field, treated as the table says.
    fn text(
        &mut self,
        class_path: &str,
        report_path: &str,
        value: &str,
    ) -> Result<String, ShareError> {
        if value.len() > TEXT_BYTES_MAX {
            return Err(too_long(report_path));
        }
        match require(class_path)? {
            // Published as written; the final check refuses it if it holds
            // anything the scrub would remove.
            FieldClass::Shareable => Ok(value.to_string()),
            FieldClass::Transform(Transform::FreeText)
            | FieldClass::Transform(Transform::Duration) => {
                let scrubbed = self.scanner.scrub(value);
                if scrubbed.text.len() > TEXT_BYTES_MAX {
                    return Err(too_long(report_path));
                }
                self.note(report_path, &scrubbed);
                Ok(scrubbed.text)
            }
            other => Err(ShareError::Misclassified {
                path: class_path.to_string(),
                why: format!("classed {other:?}, but the published type carries it as text"),
            }),
        }
    }

    fn opt_text(&mut self, path: &str, value: Option<&str>) -> Result<Option<String>, ShareError> {
        value.map(|v| self.text(path, path, v)).transpose()
    }

    fn list(&mut self, path: &str, values: &[String]) -> Result<Vec<String>, ShareError> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| self.text(path, &format!("{path}[{i}]"), v))
            .collect()
    }

    fn shareable<T: Clone>(&self, path: &str, value: &T) -> Result<T, ShareError> {
        match require(path)? {
            FieldClass::Shareable => Ok(value.clone()),
            other => Err(ShareError::Misclassified {
                path: path.to_string(),
                why: format!("classed {other:?}, but the published type copies it as is"),
            }),
        }
    }

    fn drop_private(&mut self, path: &str, present: bool, what: &str) -> Result<(), ShareError> {
        match require(path)? {
            FieldClass::Private => {
                if present {
                    self.report
                        .add(path, ReportAction::Dropped, format!("private: {what}"));
                    self.report.removals.push(Removal {
                        field: path.to_string(),
                        excerpt: format!("«{what}: not published»"),
                        rule: Rule::PrivateField,
                        reason: Rule::PrivateField.describe().to_string(),
                    });
                }
                Ok(())
            }
            other => Err(ShareError::Misclassified {
                path: path.to_string(),
                why: format!("classed {other:?}, but the anonymizer has no published place for it"),
            }),
        }
    }

    fn indicators(
        &mut self,
        practice: &Practice,
        min: u32,
    ) -> Result<Vec<PublishedIndicator>, ShareError> {
        if require("practice.indicators")? != FieldClass::Transform(Transform::Indicators) {
            return Err(ShareError::Misclassified {
                path: "practice.indicators".into(),
                why: "the anonymizer publishes indicators only through the indicator rules".into(),
            });
        }
        for (field, class) in [
            ("achieved", Transform::Figure),
            ("target", Transform::Figure),
            ("numerator", Transform::CountBasis),
            ("denominator", Transform::CountBasis),
        ] {
            let path = format!("practice.indicators[].{field}");
            if require(&path)? != FieldClass::Transform(class) {
                return Err(ShareError::Misclassified {
                    path,
                    why: "the indicator rules expect it as a figure or count basis".into(),
                });
            }
        }
        if practice.indicators.len() > INDICATORS_MAX {
            return Err(ShareError::Unchecked {
                path: "practice.indicators".into(),
                why: format!(
                    "more than {INDICATORS_MAX} indicators, which the secondary suppression does not check"
                ),
            });
        }
        for (i, ind) in practice.indicators.iter().enumerate() {
            for (name, v) in [("achieved", ind.achieved), ("target", ind.target)] {
                if v.is_some_and(|x| !x.is_finite() || x < 0.0) {
                    return Err(ShareError::Unchecked {
                        path: format!("practice.indicators[{i}].{name}"),
                        why:
                            "not a finite number >= 0, so it cannot be checked against the minimum"
                                .into(),
                    });
                }
            }
        }
        let decisions = decide(&practice.indicators, min);
        let mut out = Vec::with_capacity(decisions.len());
        for (i, (ind, d)) in practice.indicators.iter().zip(decisions).enumerate() {
            let at = format!("practice.indicators[{i}]");
            let label = self.text(
                "practice.indicators[].label",
                &format!("{at}.label"),
                &ind.label,
            )?;
            let unit = self.shareable("practice.indicators[].unit", &ind.unit)?;
            if ind.numerator.is_some() || ind.denominator.is_some() {
                self.report.add(
                    format!("{at}.numerator/denominator"),
                    ReportAction::Dropped,
                    "raw counts are used for checking, never published",
                );
            }
            for n in &d.notes {
                let path = format!("{at}.{}", n.field);
                let shown = match (n.field, n.rule) {
                    (_, Rule::IndicatorRounded) => d
                        .achieved
                        .map_or_else(|| "suppressed".to_string(), |v| format!("{v}")),
                    _ => "suppressed".to_string(),
                };
                let action = if n.rule == Rule::IndicatorRounded {
                    ReportAction::Coarsened
                } else {
                    ReportAction::Suppressed
                };
                self.report.add(path.clone(), action, n.reason.clone());
                self.report.removals.push(Removal {
                    field: path,
                    excerpt: excerpt(
                        &format!("{label}: {shown}"),
                        label.len() + 2..label.len() + 2 + shown.len(),
                    ),
                    rule: n.rule,
                    reason: n.reason.clone(),
                });
            }
            out.push(PublishedIndicator {
                label,
                achieved: d.achieved,
                target: d.target,
                unit,
                suppressed: d.suppressed,
            });
        }
        Ok(out)
    }
}

/// Anonymizes a practice for publication against a roster, with the
/// practice's own contacts and no exemptions. Pure: no I/O, no clock.
///
/// Sharing uses [`anonymize_with`] with every practice's contacts; this form is
/// for a practice on its own (tests, tools).
pub fn anonymize(
    practice: &Practice,
    roster: &Roster,
    policy: &AnonymizationPolicy,
) -> Result<Anonymized, ShareError> {
    let mut people = KnownPeople::from_roster(roster);
    people.add_contacts(practice);
    anonymize_with(&AnonymizerInput {
        practice,
        people: &people,
        settings: &AnonymizationSettings::from(*policy),
    })
}

/// Anonymizes a practice for publication. Pure: no I/O, no clock.
pub fn anonymize_with(input: &AnonymizerInput<'_>) -> Result<Anonymized, ShareError> {
    let practice = input.practice;
    let policy = input.settings.policy;
    // Fail closed on any field the classification does not know.
    let value = serde_json::to_value(practice).map_err(|e| ShareError::Internal(e.to_string()))?;
    if let Some(path) = unclassed_paths(&value, "practice").into_iter().next() {
        return Err(ShareError::Unclassified { path });
    }
    // The practice's own contacts are always known, whoever calls.
    let mut people = input.people.clone();
    people.add_contacts(practice);
    let names = NameMatcher::new(&people, &input.settings.not_names)?;
    let scanner = Arc::new(Scanner::new(names, policy.min_count));
    let mut cx = Ctx {
        scanner: &scanner,
        report: AnonymizationReport::default(),
    };
    if !people.is_empty() {
        cx.report.add(
            "roster",
            ReportAction::Dropped,
            "private: the stakeholder roster and the contacts never leave the city; their names are scrubbed from free text",
        );
    }
    cx.drop_private(
        "practice.contacts",
        !practice.contacts.is_empty(),
        "people behind the practice",
    )?;
    for field in ["name", "role", "email", "phone"] {
        cx.drop_private(
            &format!("practice.contacts[].{field}"),
            false,
            "contact details",
        )?;
    }
    cx.drop_private(
        "practice.internal_notes",
        !practice.internal_notes.is_empty(),
        "internal notes",
    )?;

    let indicators = cx.indicators(practice, policy.min_count)?;
    // Durations go through the free-text scrub, which coarsens their dates.
    let duration = cx.opt_text("practice.duration", practice.duration.as_deref())?;
    let published = PublishedPractice {
        id: cx.shareable("practice.id", &practice.id)?,
        city: cx.shareable("practice.city", &practice.city)?,
        name: cx.shareable("practice.name", &practice.name)?,
        area: cx.shareable("practice.area", &practice.area)?,
        thematic_area: cx.shareable("practice.thematic_area", &practice.thematic_area)?,
        link: cx.shareable("practice.link", &practice.link)?,
        duration,
        challenges_addressed: cx.text(
            "practice.challenges_addressed",
            "practice.challenges_addressed",
            &practice.challenges_addressed,
        )?,
        stakeholders_involved: cx.shareable(
            "practice.stakeholders_involved",
            &practice.stakeholders_involved,
        )?,
        description: cx.text(
            "practice.description",
            "practice.description",
            &practice.description,
        )?,
        systematized: cx.shareable("practice.systematized", &practice.systematized)?,
        indicators,
        communication: cx.text(
            "practice.communication",
            "practice.communication",
            &practice.communication,
        )?,
        stakeholder_involvement: cx.text(
            "practice.stakeholder_involvement",
            "practice.stakeholder_involvement",
            &practice.stakeholder_involvement,
        )?,
        migrant_involvement: cx.text(
            "practice.migrant_involvement",
            "practice.migrant_involvement",
            &practice.migrant_involvement,
        )?,
        challenges: cx.list("practice.challenges", &practice.challenges)?,
        recommendations: cx.list("practice.recommendations", &practice.recommendations)?,
        lessons: cx.list("practice.lessons", &practice.lessons)?,
    };
    let report = cx.report;
    check_projection(&published, &scanner)?;
    Ok(Anonymized {
        practice: published,
        report,
        policy,
        scanner,
    })
}

/// The last check: serialize the projection and scan it again. Every path must
/// be classed as publishable, and no string may hold anything the scrub would
/// remove: an e-mail address, a phone number, a web address carrying personal
/// data, the name of a person the node knows of, a date finer than the month,
/// a count of people below the minimum.
pub fn check_projection(
    published: &PublishedPractice,
    scanner: &Scanner,
) -> Result<(), ShareError> {
    let value = serde_json::to_value(published).map_err(|e| ShareError::Internal(e.to_string()))?;
    for path in super::classes::key_paths(&value, "practice") {
        if PUBLISHED_ONLY.contains(&path.as_str()) {
            continue;
        }
        match class_of(&path) {
            Some(FieldClass::Shareable) | Some(FieldClass::Transform(_)) => {}
            Some(FieldClass::Private) => {
                return Err(ShareError::Misclassified {
                    path,
                    why: "a private field appears in the projection".into(),
                })
            }
            None => return Err(ShareError::Unclassified { path }),
        }
    }
    scan(&value, "practice", scanner)
}

/// Checks one string about to be published (outside the projection: the
/// city's name in the publication's metadata).
pub fn check_string(path: &str, value: &str, scanner: &Scanner) -> Result<(), ShareError> {
    scan(&Value::String(value.to_string()), path, scanner)
}

fn scan(value: &Value, path: &str, scanner: &Scanner) -> Result<(), ShareError> {
    match value {
        Value::String(s) => {
            if s.len() > TEXT_BYTES_MAX {
                return Err(too_long(path));
            }
            match scanner.leak(s) {
                Some(what) => Err(ShareError::LeakDetected {
                    path: path.to_string(),
                    what,
                }),
                None => Ok(()),
            }
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| scan(v, &format!("{path}[{i}]"), scanner)),
        Value::Object(map) => map
            .iter()
            .try_for_each(|(k, v)| scan(v, &format!("{path}.{k}"), scanner)),
        _ => Ok(()),
    }
}
