//! From one item of the file (a JSON value, or a CSV row turned into one) to a
//! lab type, checking every field.
//!
//! Each function returns the item only when it had no problem, and records
//! every problem it found either way.

use serde_json::Value;

use super::error::{push, ImportError};
use super::fields::{object, Fields};
use super::{
    slug, CONTACT_FIELDS, INDICATOR_FIELDS, PRACTICE_FIELDS, PRACTICE_ID_MAX, STAKEHOLDER_FIELDS,
};
use crate::lab::{Contact, Indicator, MappingArea, Practice, Stakeholder, ThematicArea};

/// The id an item will get: its `id`, or the slug of its city and name.
pub(super) fn raw_practice_id(v: &Value) -> Option<String> {
    let obj = v.as_object()?;
    match obj.get("id") {
        Some(Value::String(id)) => Some(id.clone()),
        None | Some(Value::Null) => {
            let city = obj.get("city").and_then(Value::as_str).unwrap_or("");
            let name = obj.get("name").and_then(Value::as_str).unwrap_or("");
            Some(slug(city, name)).filter(|s| !s.is_empty())
        }
        Some(_) => None,
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= PRACTICE_ID_MAX
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// A practice's id: the given one, checked, or the slug of its city and name.
fn practice_id(f: &Fields<'_>, city: &str, name: &str, errs: &mut Vec<ImportError>) -> String {
    match f.opt_text("id", errs) {
        Some(id) => {
            if !valid_id(&id) {
                f.problem(
                    errs,
                    "id",
                    "not a valid id",
                    &format!("1 to {PRACTICE_ID_MAX} characters of a-z A-Z 0-9 . _ -"),
                );
            }
            id
        }
        None => {
            let id = slug(city, name);
            if id.is_empty() && !city.is_empty() {
                f.problem(
                    errs,
                    "id",
                    "missing, and city and name give no usable slug",
                    "an id of a-z 0-9 . _ -",
                );
            }
            id
        }
    }
}

/// One practice.
pub(super) fn practice(v: &Value, loc: &str, errs: &mut Vec<ImportError>) -> Option<Practice> {
    let before = errs.len();
    let obj = object(v, loc, "a practice", errs)?;
    let f = Fields { obj, loc };
    f.unknown(PRACTICE_FIELDS, errs);
    let city = f.required_text("city", errs);
    let name = f.required_text("name", errs);
    let id = practice_id(&f, &city, &name, errs);
    let thematic_area = f.choice(
        "thematic_area",
        false,
        ThematicArea::parse,
        ("not a thematic area", "education, care or null"),
        errs,
    );
    let indicators = f.items("indicators", "a list of indicators", errs, indicator);
    let contacts = f.items("contacts", "a list of contacts", errs, contact);
    let p = Practice {
        id,
        city,
        name,
        area: f.text("area", errs),
        thematic_area,
        link: f.opt_text("link", errs),
        duration: f.opt_text("duration", errs),
        challenges_addressed: f.text("challenges_addressed", errs),
        stakeholders_involved: f.list("stakeholders_involved", errs),
        description: f.text("description", errs),
        systematized: f.opt_bool("systematized", errs).unwrap_or(false),
        indicators,
        communication: f.text("communication", errs),
        stakeholder_involvement: f.text("stakeholder_involvement", errs),
        migrant_involvement: f.text("migrant_involvement", errs),
        challenges: f.list("challenges", errs),
        recommendations: f.list("recommendations", errs),
        lessons: f.list("lessons", errs),
        contacts,
        internal_notes: f.text("internal_notes", errs),
    };
    (errs.len() == before).then_some(p)
}

/// One result of a practice. Returned even with problems: the practice as a
/// whole is refused by [`practice`] then.
fn indicator(v: &Value, loc: &str, errs: &mut Vec<ImportError>) -> Option<Indicator> {
    let obj = object(v, loc, "an indicator", errs)?;
    let f = Fields { obj, loc };
    f.unknown(INDICATOR_FIELDS, errs);
    let ind = Indicator {
        label: f.required_text("label", errs),
        achieved: f.opt_number("achieved", errs),
        target: f.opt_number("target", errs),
        unit: f.opt_text("unit", errs),
        numerator: f.opt_count("numerator", errs),
        denominator: f.opt_count("denominator", errs),
    };
    if let (Some(n), Some(d)) = (ind.numerator, ind.denominator) {
        if n > d {
            f.problem(
                errs,
                "numerator",
                "is larger than the denominator",
                "numerator <= denominator",
            );
        }
    }
    Some(ind)
}

/// One person behind a practice (see [`indicator`] on problems).
fn contact(v: &Value, loc: &str, errs: &mut Vec<ImportError>) -> Option<Contact> {
    let obj = object(v, loc, "a contact", errs)?;
    let c = Fields { obj, loc };
    c.unknown(CONTACT_FIELDS, errs);
    Some(Contact {
        name: c.text("name", errs),
        role: c.text("role", errs),
        email: c.text("email", errs),
        phone: c.text("phone", errs),
    })
}

/// One member of the stakeholder roster.
pub(super) fn stakeholder(
    v: &Value,
    loc: &str,
    errs: &mut Vec<ImportError>,
) -> Option<Stakeholder> {
    let before = errs.len();
    let obj = object(v, loc, "a stakeholder", errs)?;
    let f = Fields { obj, loc };
    f.unknown(STAKEHOLDER_FIELDS, errs);
    let area = f.choice(
        "area",
        true,
        |s| MappingArea::parse(s.trim()),
        (
            "not a mapping area",
            "public-administration, migrant-communities, education, civil-society or economy",
        ),
        errs,
    );
    let s = Stakeholder {
        name: f.required_text("name", errs),
        organisation: f.text("organisation", errs),
        // Only read when there was no problem, and then `area` is set.
        area: area.unwrap_or(MappingArea::CivilSociety),
        email: f.text("email", errs),
        phone: f.text("phone", errs),
        migrant_background: f.opt_bool("migrant_background", errs),
        nationality: f.opt_text("nationality", errs),
        groups: f.list("groups", errs),
        notes: f.text("notes", errs),
    };
    (errs.len() == before).then_some(s)
}

/// Checks that every practice id is used once. Checked on the raw id, so an item
/// with other problems still reserves its id and a second use is reported too.
#[derive(Default)]
pub(super) struct UniqueIds {
    /// Each id seen, with where it was first used.
    seen: std::collections::HashMap<String, String>,
}

impl UniqueIds {
    /// Records the item at `loc`, and a problem if its id was used before.
    pub(super) fn check(&mut self, loc: &str, v: &Value, errs: &mut Vec<ImportError>) {
        let Some(id) = raw_practice_id(v) else {
            return;
        };
        if let Some(first) = self.seen.get(&id) {
            push(
                errs,
                loc,
                "id",
                format!("duplicate id, already used at {first}"),
                "ids unique within the file",
            );
        } else {
            self.seen.insert(id, loc.to_string());
        }
    }
}
