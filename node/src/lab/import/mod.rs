//! Import and export of practices and stakeholder rosters in labnet's import format.
//!
//! The format (FORMAT.md) is a JSON document `{"practices": [...]}` or
//! `{"stakeholders": [...]}`, or a CSV file with the same fields as columns: lists
//! separated by `;`, indicators as `label|achieved|target|unit` items (optionally
//! `|numerator|denominator`), contacts as `name|role|email|phone` items.
//!
//! Parsing has no side effects and validates the **whole** file before answering:
//! a city fixing a file wants every problem at once, not one per attempt. Each
//! [`ImportError`] says where (JSON path such as `practices[3].indicators[1].achieved`,
//! or CSV data row and file line), which field, what is wrong and what would be
//! valid. Unknown fields are errors, never silently dropped: a misspelt
//! `internal_note` column must not end up nowhere (or, worse, somewhere public).
//!
//! Error messages quote field names and describe values by their type, never by
//! their content, because the content may be personal data.
//!
//! Map, in the order a file goes through it:
//! - `json_items` and `csv_rows`: the file's syntax, to one JSON value per
//!   item with its location (a CSV row's cells converted to what their fields take);
//! - `validate`: one item to a lab type, every field checked, reading fields
//!   with `fields`;
//! - `error`: the problems and how they read.

mod csv_rows;
mod error;
mod fields;
mod json_items;
#[cfg(test)]
mod tests;
mod validate;

use std::path::Path;

use serde_json::Value;
use unicode_normalization::UnicodeNormalization;

use super::{Practice, Roster, Stakeholder};
use error::{all_or_nothing, file_error};
pub use error::{ImportError, ImportErrors};

/// The longest practice id: the publication id `<NodeId>:<practice id>` must fit
/// the 128 characters of a DocId, and a compact NodeId takes 35 plus the colon.
pub const PRACTICE_ID_MAX: usize = 92;

/// The fields of a practice, in the format's order.
pub const PRACTICE_FIELDS: &[&str] = &[
    "id",
    "city",
    "name",
    "area",
    "thematic_area",
    "link",
    "duration",
    "challenges_addressed",
    "stakeholders_involved",
    "description",
    "systematized",
    "indicators",
    "communication",
    "stakeholder_involvement",
    "migrant_involvement",
    "challenges",
    "recommendations",
    "lessons",
    "contacts",
    "internal_notes",
];

/// The parts of an indicator, in the format's order.
const INDICATOR_FIELDS: &[&str] = &[
    "label",
    "achieved",
    "target",
    "unit",
    "numerator",
    "denominator",
];
/// The parts of a contact, in the format's order.
const CONTACT_FIELDS: &[&str] = &["name", "role", "email", "phone"];

/// The fields of a stakeholder, in the format's order.
pub const STAKEHOLDER_FIELDS: &[&str] = &[
    "name",
    "organisation",
    "area",
    "email",
    "phone",
    "migrant_background",
    "nationality",
    "groups",
    "notes",
];

/// Which syntax a file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    /// `{"practices": [...]}` or `{"stakeholders": [...]}`.
    Json,
    /// One row per item, the fields as columns.
    Csv,
}

impl ImportFormat {
    /// The format a file name's extension names (`.json`, `.csv`).
    pub fn from_path(path: &Path) -> Option<ImportFormat> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "json" => Some(ImportFormat::Json),
            "csv" => Some(ImportFormat::Csv),
            _ => None,
        }
    }
}

/// What to parse: a file (format from its extension) or text already read.
#[derive(Debug, Clone, Copy)]
pub enum ImportInput<'a> {
    /// A `.json` or `.csv` file.
    Path(&'a Path),
    /// The file's text.
    Text(&'a str),
}

/// A kind of item an import file lists, and how to read one.
trait Item: Sized {
    /// The JSON key of the list: `{"<KEY>": [...]}`.
    const KEY: &'static str;
    /// The item's fields, which are also the CSV columns.
    const FIELDS: &'static [&'static str];
    /// A CSV cell of `field`, as the JSON value the validator reads.
    fn csv_value(field: &str, cell: &str) -> Value;
    /// Validates one item at `loc`; `None` when it had a problem (recorded in `errs`).
    fn from_value(v: &Value, loc: &str, errs: &mut Vec<ImportError>) -> Option<Self>;
}

/// Implements [`Item`] for each `Type => (key, fields, csv cell reader,
/// validator)`: every item kind is those four things, nothing else.
macro_rules! items {
    ($($item:ty => ($key:literal, $fields:expr, $cell:path, $validate:path);)*) => {$(
        impl Item for $item {
            const KEY: &'static str = $key;
            const FIELDS: &'static [&'static str] = $fields;
            fn csv_value(field: &str, cell: &str) -> Value {
                $cell(field, cell)
            }
            fn from_value(v: &Value, loc: &str, errs: &mut Vec<ImportError>) -> Option<Self> {
                $validate(v, loc, errs)
            }
        }
    )*};
}

items! {
    Practice => ("practices", PRACTICE_FIELDS, csv_rows::practice_cell, validate::practice);
    Stakeholder => ("stakeholders", STAKEHOLDER_FIELDS, csv_rows::stakeholder_cell, validate::stakeholder);
}

fn read_input(
    input: ImportInput<'_>,
    format: Option<ImportFormat>,
) -> Result<(String, ImportFormat), ImportErrors> {
    match input {
        ImportInput::Text(t) => Ok((t.to_string(), format.unwrap_or(ImportFormat::Json))),
        ImportInput::Path(p) => {
            let format = match format.or_else(|| ImportFormat::from_path(p)) {
                Some(f) => f,
                None => return Err(file_error("unknown file type", "a .json or .csv file")),
            };
            let text = std::fs::read_to_string(p).map_err(|e| {
                file_error(
                    format!("cannot read the file: {e}"),
                    "a readable UTF-8 file",
                )
            })?;
            Ok((text, format))
        }
    }
}

/// The items of a file, each with its location, in the file's syntax.
fn read_items<T: Item>(
    input: ImportInput<'_>,
    format: Option<ImportFormat>,
) -> Result<Vec<(String, Value)>, ImportErrors> {
    let (text, format) = read_input(input, format)?;
    match format {
        ImportFormat::Json => json_items::items::<T>(&text),
        ImportFormat::Csv => csv_rows::items::<T>(&text),
    }
}

/// Parses a practices file. `format` defaults to the path's extension, or JSON
/// for text. No side effects: the caller decides what to store.
pub fn parse_practices(
    input: ImportInput<'_>,
    format: Option<ImportFormat>,
) -> Result<Vec<Practice>, ImportErrors> {
    let items = read_items::<Practice>(input, format)?;
    let mut errs = Vec::new();
    let mut ids = validate::UniqueIds::default();
    let mut out = Vec::new();
    for (loc, value) in &items {
        ids.check(loc, value, &mut errs);
        out.extend(Practice::from_value(value, loc, &mut errs));
    }
    all_or_nothing(out, errs)
}

/// Parses a stakeholder roster file (see [`parse_practices`] for the arguments).
pub fn parse_roster(
    input: ImportInput<'_>,
    format: Option<ImportFormat>,
) -> Result<Roster, ImportErrors> {
    let items = read_items::<Stakeholder>(input, format)?;
    let mut errs = Vec::new();
    let stakeholders = items
        .iter()
        .filter_map(|(loc, value)| Stakeholder::from_value(value, loc, &mut errs))
        .collect();
    all_or_nothing(Roster { stakeholders }, errs)
}

/// The practices in the import format's JSON (pretty, every field present).
pub fn export_practices_json(practices: &[Practice]) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(&serde_json::json!({ "practices": practices }))
}

/// The roster in the import format's JSON.
pub fn export_roster_json(roster: &Roster) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(roster)
}

/// A slug for a practice without an id: `<city>-<name>`, lowercase ASCII, accents
/// stripped, every other run of characters a single `-`.
pub fn slug(city: &str, name: &str) -> String {
    let mut out = String::new();
    let mut dash = false;
    for c in format!("{city} {name}").nfkd() {
        if unicode_normalization::char::is_combining_mark(c) {
            continue;
        }
        if c.is_ascii_alphanumeric() {
            if dash && !out.is_empty() {
                out.push('-');
            }
            dash = false;
            out.push(c.to_ascii_lowercase());
        } else {
            dash = true;
        }
    }
    out.truncate(PRACTICE_ID_MAX);
    out.trim_end_matches('-').to_string()
}
