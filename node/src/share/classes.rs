//! The field classification: the one table saying what of the lab model may leave
//! the city.
//!
//! Every field path of the lab model is classed here, and nowhere else:
//!
//! - [`FieldClass::Private`]: never leaves the node, in any form;
//! - [`FieldClass::Shareable`]: may be published as is;
//! - [`FieldClass::Transform`]: published only after the named anonymization.
//!
//! Paths are serde_json key paths from a root (`practice`, `roster`, `city`,
//! `lab`, `experiment`), with `[]` for the items of a list:
//! `practice.indicators[].label`. The anonymizer looks every path of its input up
//! here and fails closed on a path the table does not know, so a field added to
//! the model without being classed cannot be published by accident; a test walks
//! fully populated values and fails on any unclassed path.

use serde_json::Value;

/// How an anonymizing transform treats a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    /// Free text (or a list of it), normalized, then scrubbed of web addresses
    /// carrying personal data, e-mail addresses, phone numbers, the names of
    /// everyone the node knows of (roster and contacts) and small counts of
    /// people; dates coarsened to the month, counts of people rounded to a
    /// multiple of the minimum (see [`super::scrub`]).
    FreeText,
    /// A duration: the free text treatment, which coarsens its dates
    /// (`2018-03-14/2021-08-02` becomes `2018-03/2021-08`).
    Duration,
    /// The list of indicators: checked as a table, with primary and secondary
    /// suppression and rounding (see [`super::suppress`]).
    Indicators,
    /// A published figure (`achieved`, `target`): suppressed when it, the
    /// counts behind it or what they leave are below the minimum, or when a
    /// suppressed cell could be recovered from it; rounded otherwise.
    Figure,
    /// A raw count behind a figure (`numerator`, `denominator`): used to decide
    /// suppression, never published itself.
    CountBasis,
}

/// What may leave the city.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldClass {
    /// Never leaves the node.
    Private,
    /// Leaves as is.
    Shareable,
    /// Leaves only after the transform.
    Transform(Transform),
}

use FieldClass::{Private, Shareable};
use Transform::{CountBasis, Duration, Figure, FreeText, Indicators};

const fn t(x: Transform) -> FieldClass {
    FieldClass::Transform(x)
}

/// The table: every field path of the lab model and its class.
pub const FIELD_CLASSES: &[(&str, FieldClass)] = &[
    // Practices (FORMAT.md).
    ("practice.id", Shareable),
    ("practice.city", Shareable),
    ("practice.name", Shareable),
    ("practice.area", Shareable),
    ("practice.thematic_area", Shareable),
    ("practice.link", Shareable),
    ("practice.duration", t(Duration)),
    ("practice.challenges_addressed", t(FreeText)),
    ("practice.stakeholders_involved", Shareable),
    ("practice.description", t(FreeText)),
    ("practice.systematized", Shareable),
    ("practice.indicators", t(Indicators)),
    ("practice.indicators[].label", t(FreeText)),
    ("practice.indicators[].achieved", t(Figure)),
    ("practice.indicators[].target", t(Figure)),
    ("practice.indicators[].unit", Shareable),
    ("practice.indicators[].numerator", t(CountBasis)),
    ("practice.indicators[].denominator", t(CountBasis)),
    ("practice.communication", t(FreeText)),
    ("practice.stakeholder_involvement", t(FreeText)),
    ("practice.migrant_involvement", t(FreeText)),
    ("practice.challenges", t(FreeText)),
    ("practice.recommendations", t(FreeText)),
    ("practice.lessons", t(FreeText)),
    ("practice.contacts", Private),
    ("practice.contacts[].name", Private),
    ("practice.contacts[].role", Private),
    ("practice.contacts[].email", Private),
    ("practice.contacts[].phone", Private),
    ("practice.internal_notes", Private),
    // The stakeholder roster: every field private.
    ("roster.stakeholders", Private),
    ("roster.stakeholders[].name", Private),
    ("roster.stakeholders[].organisation", Private),
    ("roster.stakeholders[].area", Private),
    ("roster.stakeholders[].email", Private),
    ("roster.stakeholders[].phone", Private),
    ("roster.stakeholders[].migrant_background", Private),
    ("roster.stakeholders[].nationality", Private),
    ("roster.stakeholders[].groups", Private),
    ("roster.stakeholders[].notes", Private),
    // The city profile: public figures from the cities' report.
    ("city.name", Shareable),
    ("city.country", Shareable),
    ("city.population", Shareable),
    ("city.migrant_share_pct", Shareable),
    ("city.migrant_share_definition", Shareable),
    ("city.main_nationalities", Shareable),
    // Policy Labs and micro-experiments: not published yet, so private until a
    // projection for them is designed.
    ("lab.id", Private),
    ("lab.topic", Private),
    ("lab.thematic_area", Private),
    ("lab.sessions", Private),
    ("lab.sessions[].date", Private),
    ("lab.sessions[].topic", Private),
    ("lab.sessions[].attendance", Private),
    ("experiment.id", Private),
    ("experiment.lab_id", Private),
    ("experiment.hypothesis", Private),
    ("experiment.start", Private),
    ("experiment.end", Private),
    ("experiment.measurements", Private),
    ("experiment.measurements[].label", Private),
    ("experiment.measurements[].date", Private),
    ("experiment.measurements[].numerator", Private),
    ("experiment.measurements[].denominator", Private),
    ("experiment.measurements[].unit", Private),
    ("experiment.measurements[].value", Private),
];

/// Paths that exist only in the published projection (not in the lab model),
/// and so may appear in a publication without a lab field behind them.
pub const PUBLISHED_ONLY: &[&str] = &["practice.indicators[].suppressed"];

/// The class of a path, or `None` if the table does not know it.
pub fn class_of(path: &str) -> Option<FieldClass> {
    FIELD_CLASSES
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, c)| *c)
}

/// Every key path in a JSON value, under `prefix` (`practice`, `roster`, ...).
/// Items of lists that are objects contribute `list[].key`.
pub fn key_paths(value: &Value, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    walk(value, prefix, &mut out);
    out
}

fn walk(value: &Value, path: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let p = format!("{path}.{k}");
                out.push(p.clone());
                walk(v, &p, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                walk(item, &format!("{path}[]"), out);
            }
        }
        _ => {}
    }
}

/// The key paths of a value that the table does not class, deduplicated.
pub fn unclassed_paths(value: &Value, prefix: &str) -> Vec<String> {
    let mut out: Vec<String> = key_paths(value, prefix)
        .into_iter()
        .filter(|p| class_of(p).is_none())
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::*;

    fn full_practice() -> Practice {
        Practice {
            id: "a".into(),
            city: "b".into(),
            name: "c".into(),
            area: "d".into(),
            thematic_area: Some(ThematicArea::Care),
            link: Some("e".into()),
            duration: Some("f".into()),
            challenges_addressed: "g".into(),
            stakeholders_involved: vec!["h".into()],
            description: "i".into(),
            systematized: true,
            indicators: vec![Indicator {
                label: "j".into(),
                achieved: Some(1.0),
                target: Some(2.0),
                unit: Some("%".into()),
                numerator: Some(3),
                denominator: Some(4),
            }],
            communication: "k".into(),
            stakeholder_involvement: "l".into(),
            migrant_involvement: "m".into(),
            challenges: vec!["n".into()],
            recommendations: vec!["o".into()],
            lessons: vec!["p".into()],
            contacts: vec![Contact {
                name: "q".into(),
                role: "r".into(),
                email: "s".into(),
                phone: "t".into(),
            }],
            internal_notes: "u".into(),
        }
    }

    fn full_roster() -> Roster {
        Roster {
            stakeholders: vec![Stakeholder {
                name: "a".into(),
                organisation: "b".into(),
                area: MappingArea::Economy,
                email: "c".into(),
                phone: "d".into(),
                migrant_background: Some(true),
                nationality: Some("e".into()),
                groups: vec!["f".into()],
                notes: "g".into(),
            }],
        }
    }

    /// Adding a field to the model without classing it fails here.
    #[test]
    fn every_field_of_the_lab_model_is_classed() {
        let values = [
            (serde_json::to_value(full_practice()).unwrap(), "practice"),
            (serde_json::to_value(full_roster()).unwrap(), "roster"),
            (
                serde_json::to_value(CityProfile {
                    population: Some(1),
                    migrant_share_pct: Some(1.0),
                    migrant_share_definition: Some("x".into()),
                    main_nationalities: vec!["x".into()],
                    ..CityProfile::default()
                })
                .unwrap(),
                "city",
            ),
            (
                serde_json::to_value(PolicyLab {
                    thematic_area: Some(ThematicArea::Education),
                    sessions: vec![LabSession {
                        attendance: Some(1),
                        ..LabSession::default()
                    }],
                    ..PolicyLab::default()
                })
                .unwrap(),
                "lab",
            ),
            (
                serde_json::to_value(MicroExperiment {
                    end: Some("x".into()),
                    measurements: vec![OutcomeMeasurement {
                        numerator: Some(1),
                        denominator: Some(2),
                        unit: Some("x".into()),
                        value: Some(1.0),
                        ..OutcomeMeasurement::default()
                    }],
                    ..MicroExperiment::default()
                })
                .unwrap(),
                "experiment",
            ),
        ];
        for (value, prefix) in values {
            let missing = unclassed_paths(&value, prefix);
            assert!(missing.is_empty(), "unclassed fields: {missing:?}");
        }
    }

    #[test]
    fn people_fields_are_private() {
        for p in [
            "practice.contacts[].name",
            "practice.contacts[].email",
            "practice.internal_notes",
            "roster.stakeholders[].name",
            "roster.stakeholders[].notes",
        ] {
            assert_eq!(class_of(p), Some(FieldClass::Private), "{p}");
        }
        assert_eq!(class_of("practice.nonexistent"), None);
    }
}
