//! The anonymizer: from a private practice and the city's roster to the
//! projection peers may see, plus a report of everything removed and why.
//!
//! Pure and deterministic: the same practice, roster and policy always give the
//! same projection, so `labnet share preview` shows exactly what sharing sends.
//! It is driven by [`super::classes`]: every key path of the input is looked up
//! there first, and an unclassed path stops the anonymizer (fail closed). Each
//! published field is then taken only if the table classes it shareable or names
//! the transform applied. The published types ([`PublishedPractice`],
//! [`PublishedIndicator`]) have no field for a person at all.
//!
//! As defence in depth, the finished projection is serialized and scanned again
//! for e-mail addresses, phone numbers and roster names; any hit is an error and
//! nothing is published. Errors and the report name fields, never values: the
//! values may be personal data.

use autosurgeon::{Hydrate, Reconcile};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::classes::{class_of, unclassed_paths, FieldClass, Transform, PUBLISHED_ONLY};
use super::scrub::{find_emails, find_phones, scrub, NameMatcher, ScrubCounts};
use super::ShareError;
use crate::lab::{Indicator, Practice, Roster, ThematicArea};

/// The anonymization settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnonymizationPolicy {
    /// Counts below this are suppressed, and shares whose denominator is below it.
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
    /// Dates made coarser.
    Coarsened,
}

/// One line of the report. Names the field, never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportItem {
    /// The field, e.g. `practice.indicators[2].achieved`.
    pub path: String,
    /// What was done.
    pub action: ReportAction,
    /// Why, in words.
    pub reason: String,
}

/// Everything removed or suppressed, and why.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct AnonymizationReport {
    /// One item per field touched.
    pub items: Vec<ReportItem>,
}

impl AnonymizationReport {
    fn add(&mut self, path: impl Into<String>, action: ReportAction, reason: impl Into<String>) {
        self.items.push(ReportItem {
            path: path.into(),
            action,
            reason: reason.into(),
        });
    }
}

/// The anonymizer's result: the projection, the report, the settings used.
#[derive(Debug, Clone, PartialEq)]
pub struct Anonymized {
    /// What may be published.
    pub practice: PublishedPractice,
    /// What was left out and why.
    pub report: AnonymizationReport,
    /// The settings applied.
    pub policy: AnonymizationPolicy,
}

/// Units that count people (or groups of people): small values identify them.
const PEOPLE_UNITS: &[&str] = &[
    "people",
    "persons",
    "person",
    "participants",
    "participant",
    "beneficiaries",
    "beneficiary",
    "learners",
    "students",
    "pupils",
    "children",
    "young people",
    "youth",
    "migrants",
    "refugees",
    "families",
    "households",
    "trainees",
    "attendees",
    "members",
    "women",
    "men",
    "users",
    "volunteers",
    "residents",
    "individuals",
];

const PERCENT_UNITS: &[&str] = &["%", "percent", "per cent", "percentage"];

/// The class a path must have for the anonymizer to take it, or an error.
fn require(path: &str) -> Result<FieldClass, ShareError> {
    class_of(path).ok_or_else(|| ShareError::Unclassified {
        path: path.to_string(),
    })
}

struct Ctx<'a> {
    names: &'a NameMatcher,
    report: AnonymizationReport,
}

impl Ctx<'_> {
    fn note(&mut self, path: &str, counts: ScrubCounts) {
        let mut what = Vec::new();
        for (n, label) in [
            (counts.emails, "e-mail address"),
            (counts.phones, "phone number"),
            (counts.names, "roster name"),
        ] {
            if n > 0 {
                what.push(format!("{n} {label}(s) removed"));
            }
        }
        if !what.is_empty() {
            self.report
                .add(path, ReportAction::Scrubbed, what.join(", "));
        }
        if counts.dates > 0 {
            self.report.add(
                path,
                ReportAction::Coarsened,
                format!("{} date(s) coarsened to the month", counts.dates),
            );
        }
    }

    /// A text field, treated as the table says.
    fn text(
        &mut self,
        class_path: &str,
        report_path: &str,
        value: &str,
    ) -> Result<String, ShareError> {
        match require(class_path)? {
            FieldClass::Shareable => Ok(value.to_string()),
            FieldClass::Transform(Transform::FreeText)
            | FieldClass::Transform(Transform::Duration) => {
                let (out, counts) = scrub(value, self.names);
                self.note(report_path, counts);
                Ok(out)
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
                }
                Ok(())
            }
            other => Err(ShareError::Misclassified {
                path: path.to_string(),
                why: format!("classed {other:?}, but the anonymizer has no published place for it"),
            }),
        }
    }

    fn indicator(
        &mut self,
        i: usize,
        ind: &Indicator,
        min: u32,
    ) -> Result<PublishedIndicator, ShareError> {
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
        let at = format!("practice.indicators[{i}]");
        for (name, v) in [("achieved", ind.achieved), ("target", ind.target)] {
            if let Some(x) = v {
                if !x.is_finite() || x < 0.0 {
                    return Err(ShareError::Unchecked {
                        path: format!("{at}.{name}"),
                        why:
                            "not a finite number >= 0, so it cannot be checked against the minimum"
                                .into(),
                    });
                }
            }
        }
        let label = self.text(
            "practice.indicators[].label",
            &format!("{at}.label"),
            &ind.label,
        )?;
        let unit = self.shareable("practice.indicators[].unit", &ind.unit)?;
        let unit_key = unit.as_deref().map(|u| u.trim().to_lowercase());
        let percent = unit_key
            .as_deref()
            .is_some_and(|u| PERCENT_UNITS.contains(&u));
        // No unit: it may count people, so it is held to the count rule.
        let people = unit_key
            .as_deref()
            .is_none_or(|u| PEOPLE_UNITS.contains(&u));
        let min_f = f64::from(min);
        let min_u = u64::from(min);
        let mut why: Vec<String> = Vec::new();
        if ind.denominator.is_some_and(|d| d < min_u) {
            why.push(format!(
                "its denominator is below the minimum count of {min}"
            ));
        }
        if !percent && ind.numerator.is_some_and(|n| n < min_u) {
            why.push(format!("its numerator is below the minimum count of {min}"));
        }
        if !percent && people && ind.achieved.is_some_and(|a| a < min_f) {
            why.push(format!("it counts fewer people than the minimum of {min}"));
        }
        if ind.numerator.is_some() || ind.denominator.is_some() {
            self.report.add(
                format!("{at}.numerator/denominator"),
                ReportAction::Dropped,
                "raw counts are used for checking, never published",
            );
        }
        if !why.is_empty() {
            self.report.add(
                format!("{at}.achieved"),
                ReportAction::Suppressed,
                why.join("; "),
            );
            return Ok(PublishedIndicator {
                label,
                achieved: None,
                target: None,
                unit,
                suppressed: true,
            });
        }
        let mut target = ind.target;
        let mut suppressed = false;
        if !percent && people && target.is_some_and(|t| t < min_f) {
            self.report.add(
                format!("{at}.target"),
                ReportAction::Suppressed,
                format!("a planned count of people below the minimum of {min}"),
            );
            target = None;
            suppressed = true;
        }
        Ok(PublishedIndicator {
            label,
            achieved: ind.achieved,
            target,
            unit,
            suppressed,
        })
    }
}

/// Anonymizes a practice for publication. Pure: no I/O, no clock.
pub fn anonymize(
    practice: &Practice,
    roster: &Roster,
    policy: &AnonymizationPolicy,
) -> Result<Anonymized, ShareError> {
    // Fail closed on any field the classification does not know.
    let input = serde_json::to_value(practice).map_err(|e| ShareError::Internal(e.to_string()))?;
    if let Some(path) = unclassed_paths(&input, "practice").into_iter().next() {
        return Err(ShareError::Unclassified { path });
    }
    let names = NameMatcher::new(roster);
    let mut cx = Ctx {
        names: &names,
        report: AnonymizationReport::default(),
    };
    if !roster.stakeholders.is_empty() {
        cx.report.add("roster", ReportAction::Dropped, "private: the stakeholder roster never leaves the city; its names are scrubbed from free text");
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

    if require("practice.indicators")? != FieldClass::Transform(Transform::Indicators) {
        return Err(ShareError::Misclassified {
            path: "practice.indicators".into(),
            why: "the anonymizer publishes indicators only through the indicator rules".into(),
        });
    }
    let indicators = practice
        .indicators
        .iter()
        .enumerate()
        .map(|(i, ind)| cx.indicator(i, ind, policy.min_count))
        .collect::<Result<Vec<_>, _>>()?;
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
    check_projection(&published, &names)?;
    Ok(Anonymized {
        practice: published,
        report: cx.report,
        policy: *policy,
    })
}

/// The last check: serialize the projection and scan it again. Every path must
/// be classed as publishable, and no string may hold an e-mail address, a phone
/// number or a roster name.
pub fn check_projection(
    published: &PublishedPractice,
    names: &NameMatcher,
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
    scan(&value, "practice", names)
}

fn scan(value: &Value, path: &str, names: &NameMatcher) -> Result<(), ShareError> {
    match value {
        Value::String(s) => {
            let what = if !find_emails(s).is_empty() {
                Some("an e-mail address")
            } else if !find_phones(s).is_empty() {
                Some("a phone number")
            } else if !names.find(s).is_empty() {
                Some("a name on the city's stakeholder roster")
            } else {
                None
            };
            match what {
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
            .try_for_each(|(i, v)| scan(v, &format!("{path}[{i}]"), names)),
        Value::Object(map) => map
            .iter()
            .try_for_each(|(k, v)| scan(v, &format!("{path}.{k}"), names)),
        _ => Ok(()),
    }
}
