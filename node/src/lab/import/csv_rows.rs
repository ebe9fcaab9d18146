//! CSV files: rows to JSON objects, so one validator serves both syntaxes.
//!
//! A cell becomes the JSON value its field takes: lists split on `;`, items of
//! indicators and contacts split on `|`, numbers and true/false parsed when they
//! parse. A cell that does not parse stays text, so the validator reports it
//! with its row and field instead of this module guessing.

use serde_json::{Map, Value};

use super::error::{file_error, push, ImportErrors};
use super::{Item, CONTACT_FIELDS, INDICATOR_FIELDS};

/// The rows of a CSV file as JSON objects, each with `row N (line L)`.
pub(super) fn items<T: Item>(text: &str) -> Result<Vec<(String, Value)>, ImportErrors> {
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
        if !T::FIELDS.contains(&h.trim()) {
            push(
                &mut errs,
                "header (line 1)",
                h.trim(),
                "unknown column",
                &format!("one of {}", T::FIELDS.join(", ")),
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
                    if T::FIELDS.contains(&h) {
                        obj.insert(h.to_string(), T::csv_value(h, cell));
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
        // Still validate the rows, so one pass shows every problem.
        for (loc, v) in &out {
            let _ = T::from_value(v, loc, &mut errs);
        }
        return Err(ImportErrors { errors: errs });
    }
    Ok(out)
}

/// A list cell: items separated by `;`, blanks dropped.
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

/// An optional text cell: empty is null.
fn empty_is_null(cell: &str) -> Value {
    if cell.trim().is_empty() {
        Value::Null
    } else {
        Value::String(cell.trim().to_string())
    }
}

/// A true/false cell: `true`/`yes`, `false`/`no`, empty is null.
fn bool_cell(cell: &str) -> Value {
    match cell.trim().to_ascii_lowercase().as_str() {
        "" => Value::Null,
        "true" | "yes" => Value::Bool(true),
        "false" | "no" => Value::Bool(false),
        _ => Value::String(cell.trim().to_string()),
    }
}

/// A cell of structured items: items separated by `;`, each item's parts by `|`,
/// named in order by `names` (a part beyond them is named so the validator
/// refuses it as an unknown field), each part read by `part`.
fn items_cell(cell: &str, names: &[&'static str], part: fn(&str, &str) -> Value) -> Value {
    Value::Array(
        cell.split(';')
            .filter(|s| !s.trim().is_empty())
            .map(|item| {
                let mut obj = Map::new();
                for (i, text) in item.split('|').enumerate() {
                    let name = names.get(i).copied().unwrap_or("extra item part");
                    obj.insert(name.to_string(), part(name, text));
                }
                Value::Object(obj)
            })
            .collect(),
    )
}

/// A part of an indicator item: `label|achieved|target|unit|numerator|denominator`.
fn indicator_part(name: &str, text: &str) -> Value {
    match name {
        "label" => Value::String(text.trim().to_string()),
        "unit" => empty_is_null(text),
        _ => number_cell(text),
    }
}

/// A part of a contact item: `name|role|email|phone`, all text.
fn contact_part(_name: &str, text: &str) -> Value {
    Value::String(text.trim().to_string())
}

/// A cell of a practices file.
pub(super) fn practice_cell(field: &str, cell: &str) -> Value {
    match field {
        "stakeholders_involved" | "challenges" | "recommendations" | "lessons" => split_list(cell),
        "systematized" => bool_cell(cell),
        "thematic_area" | "link" | "duration" | "id" => empty_is_null(cell),
        "indicators" => items_cell(cell, INDICATOR_FIELDS, indicator_part),
        "contacts" => items_cell(cell, CONTACT_FIELDS, contact_part),
        _ => Value::String(cell.to_string()),
    }
}

/// A cell of a roster file.
pub(super) fn stakeholder_cell(field: &str, cell: &str) -> Value {
    match field {
        "groups" => split_list(cell),
        "migrant_background" => bool_cell(cell),
        "nationality" => empty_is_null(cell),
        _ => Value::String(cell.trim().to_string()),
    }
}
