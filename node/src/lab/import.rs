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

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use serde_json::{Map, Value};
use unicode_normalization::UnicodeNormalization;

use super::{Contact, Indicator, MappingArea, Practice, Roster, Stakeholder, ThematicArea};

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

const INDICATOR_FIELDS: &[&str] = &[
    "label",
    "achieved",
    "target",
    "unit",
    "numerator",
    "denominator",
];
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

/// One problem in an import file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError {
    /// Where: a JSON path, or `row N (line L)` for CSV, or `file` for the whole file.
    pub location: String,
    /// The field concerned (empty when the problem is the file itself).
    pub field: String,
    /// What is wrong.
    pub problem: String,
    /// What would be valid.
    pub expected: String,
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.location, self.problem)?;
        } else {
            write!(
                f,
                "{}: field '{}': {}",
                self.location, self.field, self.problem
            )?;
        }
        if !self.expected.is_empty() {
            write!(f, " (expected {})", self.expected)?;
        }
        Ok(())
    }
}

/// Every problem found in an import file; nothing was imported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ImportErrors {
    /// The problems, in file order.
    pub errors: Vec<ImportError>,
}

impl fmt::Display for ImportErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} problem(s) in the import file:", self.errors.len())?;
        for e in &self.errors {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

fn file_error(problem: impl Into<String>, expected: impl Into<String>) -> ImportErrors {
    ImportErrors {
        errors: vec![ImportError {
            location: "file".into(),
            field: String::new(),
            problem: problem.into(),
            expected: expected.into(),
        }],
    }
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

/// Parses a practices file. `format` defaults to the path's extension, or JSON
/// for text. No side effects: the caller decides what to store.
pub fn parse_practices(
    input: ImportInput<'_>,
    format: Option<ImportFormat>,
) -> Result<Vec<Practice>, ImportErrors> {
    let (text, format) = read_input(input, format)?;
    let items = match format {
        ImportFormat::Json => json_items(&text, "practices")?,
        ImportFormat::Csv => csv_items(&text, PRACTICE_FIELDS, practice_csv_value)?,
    };
    let mut errs = Vec::new();
    let mut out = Vec::new();
    let mut seen: HashMap<String, String> = HashMap::new();
    for (loc, value) in &items {
        // Duplicates are checked on the raw id, so an item with other problems
        // still reserves its id and the second use is reported too.
        if let Some(id) = raw_practice_id(value) {
            if let Some(first) = seen.get(&id) {
                push(
                    &mut errs,
                    loc,
                    "id",
                    format!("duplicate id, already used at {first}"),
                    "ids unique within the file",
                );
            } else {
                seen.insert(id, loc.clone());
            }
        }
        if let Some(p) = practice_from_value(value, loc, &mut errs) {
            out.push(p);
        }
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(ImportErrors { errors: errs })
    }
}

/// Parses a stakeholder roster file (see [`parse_practices`] for the arguments).
pub fn parse_roster(
    input: ImportInput<'_>,
    format: Option<ImportFormat>,
) -> Result<Roster, ImportErrors> {
    let (text, format) = read_input(input, format)?;
    let items = match format {
        ImportFormat::Json => json_items(&text, "stakeholders")?,
        ImportFormat::Csv => csv_items(&text, STAKEHOLDER_FIELDS, stakeholder_csv_value)?,
    };
    let mut errs = Vec::new();
    let mut stakeholders = Vec::new();
    for (loc, value) in &items {
        if let Some(s) = stakeholder_from_value(value, loc, &mut errs) {
            stakeholders.push(s);
        }
    }
    if errs.is_empty() {
        Ok(Roster { stakeholders })
    } else {
        Err(ImportErrors { errors: errs })
    }
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

/// The id an item will get: its `id`, or the slug of its city and name.
fn raw_practice_id(v: &Value) -> Option<String> {
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

fn push(
    errs: &mut Vec<ImportError>,
    loc: &str,
    field: &str,
    problem: impl Into<String>,
    expected: &str,
) {
    errs.push(ImportError {
        location: loc.to_string(),
        field: field.to_string(),
        problem: problem.into(),
        expected: expected.to_string(),
    });
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "true/false",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The items of a JSON file `{"<key>": [...]}`, each with its path.
fn json_items(text: &str, key: &str) -> Result<Vec<(String, Value)>, ImportErrors> {
    let root: Value = serde_json::from_str(text).map_err(|e| ImportErrors {
        errors: vec![ImportError {
            location: format!("line {} column {}", e.line(), e.column()),
            field: String::new(),
            problem: "not valid JSON".into(),
            expected: format!("a JSON object {{\"{key}\": [...]}}"),
        }],
    })?;
    let mut errs = Vec::new();
    let Value::Object(map) = root else {
        return Err(file_error(
            format!("the top level is {}", kind(&root)),
            format!("an object {{\"{key}\": [...]}}"),
        ));
    };
    for k in map.keys().filter(|k| k.as_str() != key) {
        push(
            &mut errs,
            "(top level)",
            k,
            "unknown field",
            &format!("only '{key}'"),
        );
    }
    let items = match map.get(key) {
        Some(Value::Array(items)) => items.clone(),
        Some(other) => {
            push(
                &mut errs,
                "(top level)",
                key,
                format!("is {}", kind(other)),
                "a list",
            );
            Vec::new()
        }
        None => {
            push(&mut errs, "(top level)", key, "missing", "a list");
            Vec::new()
        }
    };
    if !errs.is_empty() {
        // Report the items' problems too, so one pass shows everything.
        let mut all = errs;
        for (i, item) in items.iter().enumerate() {
            let loc = format!("{key}[{i}]");
            let _ = if key == "practices" {
                practice_from_value(item, &loc, &mut all).map(|_| ())
            } else {
                stakeholder_from_value(item, &loc, &mut all).map(|_| ())
            };
        }
        return Err(ImportErrors { errors: all });
    }
    Ok(items
        .into_iter()
        .enumerate()
        .map(|(i, v)| (format!("{key}[{i}]"), v))
        .collect())
}

/// The rows of a CSV file as JSON objects, each with `row N (line L)`.
fn csv_items(
    text: &str,
    fields: &[&str],
    convert: fn(&str, &str) -> Value,
) -> Result<Vec<(String, Value)>, ImportErrors> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| {
            file_error(
                format!("cannot read the CSV header: {e}"),
                "a header row naming the fields",
            )
        })?
        .clone();
    let mut errs = Vec::new();
    for h in headers.iter() {
        if !fields.contains(&h.trim()) {
            push(
                &mut errs,
                "header (line 1)",
                h.trim(),
                "unknown column",
                &format!("one of {}", fields.join(", ")),
            );
        }
    }
    let mut out = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let row = i + 1;
        match record {
            Ok(record) => {
                let line = record.position().map_or(row as u64 + 1, |p| p.line());
                let loc = format!("row {row} (line {line})");
                let mut obj = Map::new();
                for (h, cell) in headers.iter().zip(record.iter()) {
                    let h = h.trim();
                    if fields.contains(&h) {
                        obj.insert(h.to_string(), convert(h, cell));
                    }
                }
                out.push((loc, Value::Object(obj)));
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                push(
                    &mut errs,
                    &format!("row {row} (line {line})"),
                    "",
                    "malformed CSV row",
                    "as many cells as header columns",
                );
            }
        }
    }
    if !errs.is_empty() {
        let mut all = errs;
        // Still validate the rows, so one pass shows every problem.
        for (loc, v) in &out {
            if fields == PRACTICE_FIELDS {
                let _ = practice_from_value(v, loc, &mut all);
            } else {
                let _ = stakeholder_from_value(v, loc, &mut all);
            }
        }
        return Err(ImportErrors { errors: all });
    }
    Ok(out)
}

fn split_list(cell: &str) -> Value {
    Value::Array(
        cell.split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| Value::String(s.to_string()))
            .collect(),
    )
}

/// A CSV number cell: a JSON number when it parses, the text otherwise (so the
/// validator reports it), null when empty.
fn number_cell(cell: &str) -> Value {
    let cell = cell.trim();
    if cell.is_empty() {
        return Value::Null;
    }
    if let Ok(n) = cell.parse::<u64>() {
        return Value::from(n);
    }
    match cell
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
    {
        Some(n) => Value::Number(n),
        None => Value::String(cell.to_string()),
    }
}

fn empty_is_null(cell: &str) -> Value {
    if cell.trim().is_empty() {
        Value::Null
    } else {
        Value::String(cell.trim().to_string())
    }
}

fn bool_cell(cell: &str) -> Value {
    match cell.trim().to_ascii_lowercase().as_str() {
        "" => Value::Null,
        "true" | "yes" => Value::Bool(true),
        "false" | "no" => Value::Bool(false),
        _ => Value::String(cell.trim().to_string()),
    }
}

fn practice_csv_value(field: &str, cell: &str) -> Value {
    match field {
        "stakeholders_involved" | "challenges" | "recommendations" | "lessons" => split_list(cell),
        "systematized" => bool_cell(cell),
        "thematic_area" | "link" | "duration" | "id" => empty_is_null(cell),
        "indicators" => Value::Array(
            cell.split(';')
                .filter(|s| !s.trim().is_empty())
                .map(|item| {
                    let parts: Vec<&str> = item.split('|').collect();
                    let mut obj = Map::new();
                    for (i, part) in parts.iter().enumerate() {
                        let name = INDICATOR_FIELDS
                            .get(i)
                            .copied()
                            .unwrap_or("extra item part");
                        let v = match name {
                            "label" => Value::String(part.trim().to_string()),
                            "unit" => empty_is_null(part),
                            _ => number_cell(part),
                        };
                        obj.insert(name.to_string(), v);
                    }
                    Value::Object(obj)
                })
                .collect(),
        ),
        "contacts" => Value::Array(
            cell.split(';')
                .filter(|s| !s.trim().is_empty())
                .map(|item| {
                    let mut obj = Map::new();
                    for (i, part) in item.split('|').enumerate() {
                        let name = CONTACT_FIELDS.get(i).copied().unwrap_or("extra item part");
                        obj.insert(name.to_string(), Value::String(part.trim().to_string()));
                    }
                    Value::Object(obj)
                })
                .collect(),
        ),
        _ => Value::String(cell.to_string()),
    }
}

fn stakeholder_csv_value(field: &str, cell: &str) -> Value {
    match field {
        "groups" => split_list(cell),
        "migrant_background" => bool_cell(cell),
        "nationality" => empty_is_null(cell),
        _ => Value::String(cell.trim().to_string()),
    }
}

/// Reads fields of one JSON object, recording every problem.
struct Fields<'a> {
    obj: &'a Map<String, Value>,
    loc: &'a str,
}

impl Fields<'_> {
    fn at(&self, field: &str) -> String {
        format!("{}.{field}", self.loc)
    }

    fn text(&self, field: &str, errs: &mut Vec<ImportError>) -> String {
        match self.obj.get(field) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(v) => {
                push(
                    errs,
                    &self.at(field),
                    field,
                    format!("is {}", kind(v)),
                    "text",
                );
                String::new()
            }
        }
    }

    fn required_text(&self, field: &str, errs: &mut Vec<ImportError>) -> String {
        let s = self.text(field, errs);
        if s.trim().is_empty()
            && matches!(
                self.obj.get(field),
                None | Some(Value::Null) | Some(Value::String(_))
            )
        {
            push(
                errs,
                &self.at(field),
                field,
                "missing or empty",
                "non-empty text",
            );
        }
        s
    }

    fn opt_text(&self, field: &str, errs: &mut Vec<ImportError>) -> Option<String> {
        match self.obj.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(v) => {
                push(
                    errs,
                    &self.at(field),
                    field,
                    format!("is {}", kind(v)),
                    "text or null",
                );
                None
            }
        }
    }

    fn list(&self, field: &str, errs: &mut Vec<ImportError>) -> Vec<String> {
        match self.obj.get(field) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(i, v)| match v {
                    Value::String(s) => Some(s.clone()),
                    other => {
                        push(
                            errs,
                            &format!("{}[{i}]", self.at(field)),
                            field,
                            format!("item is {}", kind(other)),
                            "text",
                        );
                        None
                    }
                })
                .collect(),
            Some(v) => {
                push(
                    errs,
                    &self.at(field),
                    field,
                    format!("is {}", kind(v)),
                    "a list of text",
                );
                Vec::new()
            }
        }
    }

    fn opt_bool(&self, field: &str, errs: &mut Vec<ImportError>) -> Option<bool> {
        match self.obj.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(v) => {
                push(
                    errs,
                    &self.at(field),
                    field,
                    format!("is {}", kind(v)),
                    "true or false",
                );
                None
            }
        }
    }

    fn opt_number(&self, field: &str, errs: &mut Vec<ImportError>) -> Option<f64> {
        match self.obj.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => match n.as_f64() {
                Some(x) if x.is_finite() && x >= 0.0 => Some(x),
                _ => {
                    push(
                        errs,
                        &self.at(field),
                        field,
                        "is negative or out of range",
                        "a number >= 0",
                    );
                    None
                }
            },
            Some(v) => {
                push(
                    errs,
                    &self.at(field),
                    field,
                    format!("is {}, not a number", kind(v)),
                    "a number such as 32.7, or null",
                );
                None
            }
        }
    }

    fn opt_count(&self, field: &str, errs: &mut Vec<ImportError>) -> Option<u64> {
        match self.obj.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => match n.as_u64() {
                Some(x) => Some(x),
                None => {
                    push(
                        errs,
                        &self.at(field),
                        field,
                        "is not a whole number >= 0",
                        "a count such as 40, or null",
                    );
                    None
                }
            },
            Some(v) => {
                push(
                    errs,
                    &self.at(field),
                    field,
                    format!("is {}, not a number", kind(v)),
                    "a count such as 40, or null",
                );
                None
            }
        }
    }

    fn unknown(&self, known: &[&str], errs: &mut Vec<ImportError>) {
        for k in self.obj.keys().filter(|k| !known.contains(&k.as_str())) {
            push(
                errs,
                self.loc,
                k,
                "unknown field",
                &format!("one of {}", known.join(", ")),
            );
        }
    }
}

fn object<'a>(
    v: &'a Value,
    loc: &str,
    what: &str,
    errs: &mut Vec<ImportError>,
) -> Option<&'a Map<String, Value>> {
    match v {
        Value::Object(m) => Some(m),
        other => {
            push(
                errs,
                loc,
                "",
                format!("is {}", kind(other)),
                &format!("an object describing {what}"),
            );
            None
        }
    }
}

fn practice_from_value(v: &Value, loc: &str, errs: &mut Vec<ImportError>) -> Option<Practice> {
    let before = errs.len();
    let obj = object(v, loc, "a practice", errs)?;
    let f = Fields { obj, loc };
    f.unknown(PRACTICE_FIELDS, errs);
    let city = f.required_text("city", errs);
    let name = f.required_text("name", errs);
    let id = match f.opt_text("id", errs) {
        Some(id) => {
            if !valid_id(&id) {
                push(
                    errs,
                    &f.at("id"),
                    "id",
                    "not a valid id",
                    &format!("1 to {PRACTICE_ID_MAX} characters of a-z A-Z 0-9 . _ -"),
                );
            }
            id
        }
        None => {
            let id = slug(&city, &name);
            if id.is_empty() && !city.is_empty() {
                push(
                    errs,
                    &f.at("id"),
                    "id",
                    "missing, and city and name give no usable slug",
                    "an id of a-z 0-9 . _ -",
                );
            }
            id
        }
    };
    let thematic_area = match obj.get("thematic_area") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            let t = ThematicArea::parse(s);
            if t.is_none() {
                push(
                    errs,
                    &f.at("thematic_area"),
                    "thematic_area",
                    "not a thematic area",
                    "education, care or null",
                );
            }
            t
        }
        Some(other) => {
            push(
                errs,
                &f.at("thematic_area"),
                "thematic_area",
                format!("is {}", kind(other)),
                "education, care or null",
            );
            None
        }
    };
    let indicators = match obj.get("indicators") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| {
                indicator_from_value(item, &format!("{loc}.indicators[{i}]"), errs)
            })
            .collect(),
        Some(other) => {
            push(
                errs,
                &f.at("indicators"),
                "indicators",
                format!("is {}", kind(other)),
                "a list of indicators",
            );
            Vec::new()
        }
    };
    let contacts = match obj.get("contacts") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| {
                let loc = format!("{loc}.contacts[{i}]");
                let obj = object(item, &loc, "a contact", errs)?;
                let c = Fields { obj, loc: &loc };
                c.unknown(CONTACT_FIELDS, errs);
                Some(Contact {
                    name: c.text("name", errs),
                    role: c.text("role", errs),
                    email: c.text("email", errs),
                    phone: c.text("phone", errs),
                })
            })
            .collect(),
        Some(other) => {
            push(
                errs,
                &f.at("contacts"),
                "contacts",
                format!("is {}", kind(other)),
                "a list of contacts",
            );
            Vec::new()
        }
    };
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

fn indicator_from_value(v: &Value, loc: &str, errs: &mut Vec<ImportError>) -> Option<Indicator> {
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
            push(
                errs,
                &f.at("numerator"),
                "numerator",
                "is larger than the denominator",
                "numerator <= denominator",
            );
        }
    }
    Some(ind)
}

fn stakeholder_from_value(
    v: &Value,
    loc: &str,
    errs: &mut Vec<ImportError>,
) -> Option<Stakeholder> {
    let before = errs.len();
    let obj = object(v, loc, "a stakeholder", errs)?;
    let f = Fields { obj, loc };
    f.unknown(STAKEHOLDER_FIELDS, errs);
    let expected_areas =
        "public-administration, migrant-communities, education, civil-society or economy";
    let area = match obj.get("area") {
        Some(Value::String(s)) => {
            let a = MappingArea::parse(s.trim());
            if a.is_none() {
                push(
                    errs,
                    &f.at("area"),
                    "area",
                    "not a mapping area",
                    expected_areas,
                );
            }
            a
        }
        None | Some(Value::Null) => {
            push(errs, &f.at("area"), "area", "missing", expected_areas);
            None
        }
        Some(other) => {
            push(
                errs,
                &f.at("area"),
                "area",
                format!("is {}", kind(other)),
                expected_areas,
            );
            None
        }
    };
    let s = Stakeholder {
        name: f.required_text("name", errs),
        organisation: f.text("organisation", errs),
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

#[cfg(test)]
mod tests {
    use super::*;

    const PARTNERS: &str = include_str!("../../data/practices.json");

    #[test]
    fn partner_practices_import_and_round_trip() {
        let ps = parse_practices(ImportInput::Text(PARTNERS), Some(ImportFormat::Json)).unwrap();
        assert_eq!(ps.len(), 25);
        let json = export_practices_json(&ps).unwrap();
        let again = parse_practices(ImportInput::Text(&json), Some(ImportFormat::Json)).unwrap();
        assert_eq!(ps, again);
    }

    #[test]
    fn json_errors_are_all_collected_with_paths() {
        let text = r#"{"practices": [
            {"id": "a", "city": "C", "name": "N", "thematic_area": "health",
             "indicators": [{"label": "x", "achieved": 1}, {"label": "y", "achieved": "lots"}],
             "internal_note": "x"},
            {"id": "a", "city": "C", "name": "M"}
        ]}"#;
        let errs = parse_practices(ImportInput::Text(text), None)
            .unwrap_err()
            .errors;
        let has =
            |loc: &str, field: &str| errs.iter().any(|e| e.location == loc && e.field == field);
        assert!(
            has("practices[0].thematic_area", "thematic_area"),
            "{errs:?}"
        );
        assert!(
            has("practices[0].indicators[1].achieved", "achieved"),
            "{errs:?}"
        );
        assert!(has("practices[0]", "internal_note"), "{errs:?}");
        assert!(has("practices[1]", "id"), "{errs:?}");
        assert!(errs
            .iter()
            .all(|e| !e.expected.is_empty() || e.field.is_empty()));
    }

    #[test]
    fn csv_rows_parse_and_errors_name_row_and_line() {
        let text = "city,name,thematic_area,indicators,challenges\n\
                    Mechelen,Reference group,education,share|32.7|30|%;people|12||people,a;b\n\
                    Mechelen,Other,health,bad|many||people,\n";
        let errs = parse_practices(ImportInput::Text(text), Some(ImportFormat::Csv))
            .unwrap_err()
            .errors;
        assert!(
            errs.iter()
                .any(|e| e.location == "row 2 (line 3).thematic_area"),
            "{errs:?}"
        );
        assert!(
            errs.iter()
                .any(|e| e.location == "row 2 (line 3).indicators[0].achieved"),
            "{errs:?}"
        );
        let ok = "city,name,indicators,challenges\nMechelen,Reference group,share|32.7|30|%;people|12||people,a;b\n";
        let ps = parse_practices(ImportInput::Text(ok), Some(ImportFormat::Csv)).unwrap();
        assert_eq!(ps[0].id, "mechelen-reference-group");
        assert_eq!(ps[0].indicators[1].achieved, Some(12.0));
        assert_eq!(ps[0].challenges, vec!["a", "b"]);
    }

    #[test]
    fn csv_unknown_column_is_named() {
        let text = "city,name,secret\nA,B,c\n";
        let errs = parse_practices(ImportInput::Text(text), Some(ImportFormat::Csv))
            .unwrap_err()
            .errors;
        assert!(errs
            .iter()
            .any(|e| e.field == "secret" && e.problem == "unknown column"));
    }

    #[test]
    fn roster_parses_and_checks_areas() {
        let ok =
            r#"{"stakeholders": [{"name": "José Pérez", "area": "economy", "groups": ["lsrg"]}]}"#;
        let r = parse_roster(ImportInput::Text(ok), None).unwrap();
        assert_eq!(r.stakeholders[0].area, MappingArea::Economy);
        let bad = r#"{"stakeholders": [{"name": "X", "area": "sports", "age": 3}]}"#;
        let errs = parse_roster(ImportInput::Text(bad), None)
            .unwrap_err()
            .errors;
        assert!(errs.iter().any(|e| e.location == "stakeholders[0].area"));
        assert!(errs.iter().any(|e| e.field == "age"));
        let csv = "name,area,groups,migrant_background\nAna Ruiz,civil-society,lsrg;board,yes\n";
        let r = parse_roster(ImportInput::Text(csv), Some(ImportFormat::Csv)).unwrap();
        assert_eq!(r.stakeholders[0].groups, vec!["lsrg", "board"]);
        assert_eq!(r.stakeholders[0].migrant_background, Some(true));
    }

    #[test]
    fn slugs_strip_accents() {
        assert_eq!(
            slug("Pont-de-Claix", "Ateliers sociolinguistiques (été)"),
            "pont-de-claix-ateliers-sociolinguistiques-ete"
        );
    }
}
