//! The lab model: a city's private Policy Lab data, and how it maps to Automerge.
//!
//! Everything in this module is **private** lab data. It lives in private
//! documents (`practice:<id>` for each practice, `roster` for the Local
//! Stakeholders Reference Group) that never leave the node, not even in part:
//! Automerge keeps every change forever, so a document that ever held a name
//! holds it in its history. What peers see is computed by [`crate::share`], which
//! reads these types through the field classification in
//! [`crate::share::classes`].
//!
//! The shapes follow the import format (`/work/shared/data/FORMAT.md`), which
//! follows the common template of the partner cities' State-of-the-Art report.
//! The mapping to Automerge uses autosurgeon's derives, so an edit reconciled
//! into an existing document produces only the operations for what changed.
//!
//! Map:
//! - this file: the types, and [`new_doc`] / [`update_doc`] / [`from_doc`], the
//!   one way any of them goes into and out of its document.
//! - [`import`]: reading (and writing) the import format, JSON and CSV; no side
//!   effects.
//! - [`storage`]: where the documents live in the store: import, list, load.
//!
//! Nothing here depends on [`crate::share`]: data flows lab -> share, so
//! sharing reads practices through [`storage`], never the other way round.

pub mod import;
pub mod storage;

use automerge::AutoCommit;
use autosurgeon::{Hydrate, HydrateError, Reconcile};
use serde::{Deserialize, Serialize};

/// The id of the private document holding the stakeholder roster.
pub const ROSTER_DOC_ID: &str = "roster";

/// The prefix of the private documents holding one practice each.
pub const PRACTICE_DOC_PREFIX: &str = "practice:";

/// The private document id of a practice: `practice:<id>`.
pub fn practice_doc_id(practice_id: &str) -> String {
    format!("{PRACTICE_DOC_PREFIX}{practice_id}")
}

/// Why a lab document could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LabDocError {
    /// The document does not have the shape of the lab type.
    #[error("the document is not a valid {what}: {source}")]
    Hydrate {
        /// Which lab type was expected.
        what: &'static str,
        /// autosurgeon's reason.
        source: Box<HydrateError>,
    },
    /// Writing into the document failed.
    #[error("writing the {what} document failed: {source}")]
    Reconcile {
        /// Which lab type was written.
        what: &'static str,
        /// autosurgeon's reason.
        source: Box<autosurgeon::ReconcileError>,
    },
}

/// The two thematic areas the partner cities group their practices in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ThematicArea {
    /// Education, lifelong learning, citizenship, professionalisation.
    Education,
    /// Care, work-life balance, gender equality.
    Care,
}

impl ThematicArea {
    /// The name as written in the import format and in documents.
    pub fn as_str(self) -> &'static str {
        match self {
            ThematicArea::Education => "education",
            ThematicArea::Care => "care",
        }
    }

    /// Reads the import format's name (exact, lowercase).
    pub fn parse(text: &str) -> Option<ThematicArea> {
        match text {
            "education" => Some(ThematicArea::Education),
            "care" => Some(ThematicArea::Care),
            _ => None,
        }
    }
}

/// Implements [`Reconcile`] and [`Hydrate`] for an enum with `as_str` and
/// `parse`, so documents hold the same names as the import format, not the
/// Rust variant names; `$expected` lists the names for a hydrate error.
macro_rules! stored_by_name {
    ($ty:ident, $expected:literal) => {
        impl Reconcile for $ty {
            type Key<'a> = autosurgeon::reconcile::NoKey;
            fn reconcile<R: autosurgeon::Reconciler>(
                &self,
                mut reconciler: R,
            ) -> Result<(), R::Error> {
                reconciler.str(self.as_str())
            }
        }

        impl Hydrate for $ty {
            fn hydrate_string(s: &'_ str) -> Result<Self, HydrateError> {
                $ty::parse(s).ok_or_else(|| HydrateError::unexpected($expected, s.to_string()))
            }
        }
    };
}

stored_by_name!(ThematicArea, "education or care");

/// The five mapping areas of the partner cities' stakeholder maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MappingArea {
    /// Municipal and other public bodies.
    PublicAdministration,
    /// Migrant communities and their organisations.
    MigrantCommunities,
    /// Schools, universities, training.
    Education,
    /// NGOs, associations, volunteers.
    CivilSociety,
    /// Companies, employers, unions.
    Economy,
}

impl MappingArea {
    /// Every area, in the order the format lists them.
    pub const ALL: [MappingArea; 5] = [
        MappingArea::PublicAdministration,
        MappingArea::MigrantCommunities,
        MappingArea::Education,
        MappingArea::CivilSociety,
        MappingArea::Economy,
    ];

    /// The name as written in the import format and in documents.
    pub fn as_str(self) -> &'static str {
        match self {
            MappingArea::PublicAdministration => "public-administration",
            MappingArea::MigrantCommunities => "migrant-communities",
            MappingArea::Education => "education",
            MappingArea::CivilSociety => "civil-society",
            MappingArea::Economy => "economy",
        }
    }

    /// Reads the import format's name (exact, lowercase).
    pub fn parse(text: &str) -> Option<MappingArea> {
        MappingArea::ALL.into_iter().find(|a| a.as_str() == text)
    }
}

stored_by_name!(
    MappingArea,
    "public-administration, migrant-communities, education, civil-society or economy"
);

/// One result of a practice, as the city measured it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct Indicator {
    /// What was measured.
    pub label: String,
    /// What was achieved.
    pub achieved: Option<f64>,
    /// What was aimed at.
    pub target: Option<f64>,
    /// The unit: `%`, `people`, `projects`, ...
    pub unit: Option<String>,
    /// For a share: how many of the denominator (a raw count of people).
    pub numerator: Option<u64>,
    /// For a share: out of how many (a raw count of people).
    pub denominator: Option<u64>,
}

/// A person behind a practice. Private: never published in any form.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct Contact {
    /// Full name.
    pub name: String,
    /// Role in the practice.
    pub role: String,
    /// E-mail address.
    pub email: String,
    /// Phone number.
    pub phone: String,
}

/// A practice, with every field of the import format.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct Practice {
    /// Slug, unique per city.
    pub id: String,
    /// The city running the practice.
    pub city: String,
    /// The practice's name.
    pub name: String,
    /// The city's own wording of the practice's field.
    pub area: String,
    /// `education` or `care`, when the city gave one.
    pub thematic_area: Option<ThematicArea>,
    /// A public link.
    pub link: Option<String>,
    /// Free text or `YYYY-MM/YYYY-MM`.
    pub duration: Option<String>,
    /// Free text.
    pub challenges_addressed: String,
    /// Types of organisation involved (not people).
    pub stakeholders_involved: Vec<String>,
    /// Free text.
    pub description: String,
    /// Whether the practice was systematized.
    pub systematized: bool,
    /// Results.
    pub indicators: Vec<Indicator>,
    /// Free text.
    pub communication: String,
    /// Free text.
    pub stakeholder_involvement: String,
    /// Free text.
    pub migrant_involvement: String,
    /// Free-text items.
    pub challenges: Vec<String>,
    /// Free-text items.
    pub recommendations: Vec<String>,
    /// Free-text items.
    pub lessons: Vec<String>,
    /// People behind the practice (private).
    pub contacts: Vec<Contact>,
    /// Notes for the city only (private).
    pub internal_notes: String,
}

/// A member of the Local Stakeholders Reference Group. Every field is private.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct Stakeholder {
    /// Full name: also what the anonymizer scrubs from free text.
    pub name: String,
    /// Organisation.
    pub organisation: String,
    /// Mapping area.
    pub area: MappingArea,
    /// E-mail address.
    pub email: String,
    /// Phone number.
    pub phone: String,
    /// Whether the person has a migrant background, when known.
    pub migrant_background: Option<bool>,
    /// Nationality, when known.
    pub nationality: Option<String>,
    /// Groups the person belongs to (`lsrg`, ...).
    pub groups: Vec<String>,
    /// Notes.
    pub notes: String,
}

/// The city's stakeholder roster (document `roster`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct Roster {
    /// The members.
    pub stakeholders: Vec<Stakeholder>,
}

/// The city's profile, as in the partner cities' report (`cities.json`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(deny_unknown_fields)]
pub struct CityProfile {
    /// City name.
    pub name: String,
    /// Country.
    pub country: String,
    /// Population, when known.
    pub population: Option<u64>,
    /// Share of migrants in percent, when known.
    pub migrant_share_pct: Option<f64>,
    /// What the share counts.
    pub migrant_share_definition: Option<String>,
    /// Main nationalities of the migrant population.
    pub main_nationalities: Vec<String>,
}

/// A dated meeting of a Policy Lab.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(deny_unknown_fields)]
pub struct LabSession {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// What was worked on.
    pub topic: String,
    /// How many people attended (raw count).
    pub attendance: Option<u64>,
}

/// A Policy Lab: a co-design process on one topic.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(deny_unknown_fields)]
pub struct PolicyLab {
    /// Slug.
    pub id: String,
    /// The topic.
    pub topic: String,
    /// `education` or `care`.
    pub thematic_area: Option<ThematicArea>,
    /// Its sessions.
    pub sessions: Vec<LabSession>,
}

/// A measurement of an outcome, with its raw counts.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(deny_unknown_fields)]
pub struct OutcomeMeasurement {
    /// What was measured.
    pub label: String,
    /// `YYYY-MM-DD`.
    pub date: String,
    /// How many of the base had the outcome.
    pub numerator: Option<u64>,
    /// The base.
    pub denominator: Option<u64>,
    /// The unit of a plain value.
    pub unit: Option<String>,
    /// A plain value, when not a share.
    pub value: Option<f64>,
}

/// A small, time-boxed trial run by a Policy Lab.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(deny_unknown_fields)]
pub struct MicroExperiment {
    /// Slug.
    pub id: String,
    /// The lab running it.
    pub lab_id: String,
    /// What is tried.
    pub hypothesis: String,
    /// `YYYY-MM-DD`.
    pub start: String,
    /// `YYYY-MM-DD`, when finished.
    pub end: Option<String>,
    /// Its measurements.
    pub measurements: Vec<OutcomeMeasurement>,
}

/// The id of the private document holding the city's profile, Policy Labs and
/// micro-experiments.
pub const LAB_DOC_ID: &str = "lab";

/// The city's Policy Lab record: its profile, its labs (with sessions and
/// attendance) and its micro-experiments (with raw-count measurements). Private:
/// kept as one Automerge document, never published as such.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, Reconcile, Hydrate)]
#[serde(deny_unknown_fields)]
pub struct CityLab {
    /// The city's profile.
    #[serde(default)]
    pub profile: CityProfile,
    /// Its Policy Labs.
    #[serde(default)]
    pub labs: Vec<PolicyLab>,
    /// Its micro-experiments.
    #[serde(default)]
    pub experiments: Vec<MicroExperiment>,
}

/// A lab type kept as one private Automerge document: a practice, the roster or
/// the lab record. The mapping is autosurgeon's, so the three types share one way
/// in and out of their documents.
pub trait LabDocument: Reconcile + Hydrate {
    /// What the type is called in errors: `practice`, `roster`, `lab record`.
    const WHAT: &'static str;
}

impl LabDocument for Practice {
    const WHAT: &'static str = "practice";
}

impl LabDocument for Roster {
    const WHAT: &'static str = "roster";
}

impl LabDocument for CityLab {
    const WHAT: &'static str = "lab record";
}

/// A fresh Automerge document holding `value`.
pub fn new_doc<T: LabDocument>(value: &T) -> Result<AutoCommit, LabDocError> {
    let mut doc = AutoCommit::new();
    update_doc(&mut doc, value)?;
    Ok(doc)
}

/// Reconciles `value` into its document: only what changed becomes ops.
pub fn update_doc<T: LabDocument>(doc: &mut AutoCommit, value: &T) -> Result<(), LabDocError> {
    autosurgeon::reconcile(doc, value).map_err(|source| LabDocError::Reconcile {
        what: T::WHAT,
        source: Box::new(source),
    })
}

/// Reads a value back from its document.
pub fn from_doc<T: LabDocument>(doc: &AutoCommit) -> Result<T, LabDocError> {
    autosurgeon::hydrate(doc).map_err(|source| LabDocError::Hydrate {
        what: T::WHAT,
        source: Box::new(source),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lab_record_round_trips_and_edits_are_deltas() {
        let mut lab = CityLab {
            profile: CityProfile {
                name: "Livadia".into(),
                country: "Greece".into(),
                population: Some(32_000),
                ..CityProfile::default()
            },
            labs: vec![PolicyLab {
                id: "livadia-care".into(),
                topic: "childcare for working mothers".into(),
                thematic_area: Some(ThematicArea::Care),
                sessions: vec![LabSession {
                    date: "2023-05-10".into(),
                    topic: "kick-off".into(),
                    attendance: Some(17),
                }],
            }],
            experiments: vec![MicroExperiment {
                id: "e1".into(),
                lab_id: "livadia-care".into(),
                hypothesis: "a Saturday play group frees time for language classes".into(),
                start: "2023-09-01".into(),
                end: None,
                measurements: vec![OutcomeMeasurement {
                    label: "mothers attending class".into(),
                    date: "2023-12-01".into(),
                    numerator: Some(9),
                    denominator: Some(14),
                    unit: None,
                    value: None,
                }],
            }],
        };
        let mut doc = new_doc(&lab).unwrap();
        assert_eq!(from_doc::<CityLab>(&doc).unwrap(), lab);
        let before = doc.save().len();
        lab.labs[0].sessions.push(LabSession {
            date: "2023-06-07".into(),
            topic: "solutions".into(),
            attendance: Some(15),
        });
        update_doc(&mut doc, &lab).unwrap();
        assert_eq!(from_doc::<CityLab>(&doc).unwrap(), lab);
        assert!(
            doc.save().len() < before + 200,
            "an added session is a small delta"
        );
        let unknown = r#"{"profile": {"name": "X", "country": "Y", "mayor": "Z"}}"#;
        assert!(
            serde_json::from_str::<CityLab>(unknown).is_err(),
            "unknown fields are refused"
        );
    }

    fn sample() -> Practice {
        Practice {
            id: "x-p".into(),
            city: "X".into(),
            name: "P".into(),
            thematic_area: Some(ThematicArea::Care),
            indicators: vec![Indicator {
                label: "l".into(),
                achieved: Some(12.5),
                unit: Some("%".into()),
                denominator: Some(40),
                ..Indicator::default()
            }],
            contacts: vec![Contact {
                name: "n".into(),
                ..Contact::default()
            }],
            ..Practice::default()
        }
    }

    #[test]
    fn practice_round_trips_through_a_document() {
        let p = sample();
        let doc = new_doc(&p).unwrap();
        assert_eq!(from_doc::<Practice>(&doc).unwrap(), p);
    }

    #[test]
    fn an_edit_reconciles_to_a_small_change() {
        let mut p = sample();
        p.description = "a long description ".repeat(50);
        let mut doc = new_doc(&p).unwrap();
        let before = doc.save().len();
        p.name = "Q".into();
        update_doc(&mut doc, &p).unwrap();
        let delta = doc.save_incremental();
        assert!(delta.len() < 200, "delta {} bytes", delta.len());
        assert!(doc.save().len() < before + 200);
        assert_eq!(from_doc::<Practice>(&doc).unwrap(), p);
    }

    #[test]
    fn roster_round_trips_through_a_document() {
        let r = Roster {
            stakeholders: vec![Stakeholder {
                name: "A B".into(),
                organisation: "O".into(),
                area: MappingArea::CivilSociety,
                email: String::new(),
                phone: String::new(),
                migrant_background: Some(true),
                nationality: None,
                groups: vec!["lsrg".into()],
                notes: String::new(),
            }],
        };
        let doc = new_doc(&r).unwrap();
        assert_eq!(from_doc::<Roster>(&doc).unwrap(), r);
    }
}
