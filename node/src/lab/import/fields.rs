//! Reading the fields of one JSON object with their types checked.
//!
//! Every reader returns a value even when the field is wrong (empty, `None`),
//! and records the problem instead of stopping: the validator goes on, so one
//! pass over a file finds every problem. Problems describe values by their type
//! (`is a number`), never by their content, which may be personal data.

use serde_json::{Map, Number, Value};

use super::error::{push, ImportError};

/// How a value is described in an error: by its JSON type.
pub(super) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "true/false",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// `v` as an object, or a problem at `loc` saying it should describe `what`.
pub(super) fn object<'a>(
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

/// Reads fields of one JSON object, recording every problem.
pub(super) struct Fields<'a> {
    /// The object.
    pub(super) obj: &'a Map<String, Value>,
    /// Where it is in the file, the prefix of every problem's location.
    pub(super) loc: &'a str,
}

impl Fields<'_> {
    /// The location of one field: `<loc>.<field>`.
    pub(super) fn at(&self, field: &str) -> String {
        format!("{}.{field}", self.loc)
    }

    /// Records a problem with `field`.
    pub(super) fn problem(
        &self,
        errs: &mut Vec<ImportError>,
        field: &str,
        problem: impl Into<String>,
        expected: &str,
    ) {
        push(errs, &self.at(field), field, problem, expected);
    }

    /// Records that `field` holds a value of the wrong type.
    fn wrong_type(&self, errs: &mut Vec<ImportError>, field: &str, v: &Value, expected: &str) {
        self.problem(errs, field, format!("is {}", kind(v)), expected);
    }

    /// A text field; absent or null is `None`.
    fn string(&self, field: &str, expected: &str, errs: &mut Vec<ImportError>) -> Option<String> {
        match self.obj.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(v) => {
                self.wrong_type(errs, field, v, expected);
                None
            }
        }
    }

    /// A text field; absent or null is empty.
    pub(super) fn text(&self, field: &str, errs: &mut Vec<ImportError>) -> String {
        self.string(field, "text", errs).unwrap_or_default()
    }

    /// A text field that must not be empty.
    pub(super) fn required_text(&self, field: &str, errs: &mut Vec<ImportError>) -> String {
        let s = self.text(field, errs);
        // A value of the wrong type was reported already by `text`.
        if s.trim().is_empty()
            && matches!(
                self.obj.get(field),
                None | Some(Value::Null) | Some(Value::String(_))
            )
        {
            self.problem(errs, field, "missing or empty", "non-empty text");
        }
        s
    }

    /// An optional text field.
    pub(super) fn opt_text(&self, field: &str, errs: &mut Vec<ImportError>) -> Option<String> {
        self.string(field, "text or null", errs)
    }

    /// A list of items, each read by `item` with its own location
    /// (`<loc>.<field>[i]`); absent or null is empty. `expected` describes the list.
    pub(super) fn items<T>(
        &self,
        field: &str,
        expected: &str,
        errs: &mut Vec<ImportError>,
        mut item: impl FnMut(&Value, &str, &mut Vec<ImportError>) -> Option<T>,
    ) -> Vec<T> {
        match self.obj.get(field) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(i, v)| item(v, &format!("{}[{i}]", self.at(field)), errs))
                .collect(),
            Some(v) => {
                self.wrong_type(errs, field, v, expected);
                Vec::new()
            }
        }
    }

    /// A list of text items.
    pub(super) fn list(&self, field: &str, errs: &mut Vec<ImportError>) -> Vec<String> {
        self.items(field, "a list of text", errs, |v, loc, errs| match v {
            Value::String(s) => Some(s.clone()),
            other => {
                push(errs, loc, field, format!("item is {}", kind(other)), "text");
                None
            }
        })
    }

    /// A field naming one of a fixed set of values, which `parse` knows.
    /// `problem` says what an unknown name is not; `expected` lists the names.
    pub(super) fn choice<T>(
        &self,
        field: &str,
        required: bool,
        parse: impl Fn(&str) -> Option<T>,
        (problem, expected): (&str, &str),
        errs: &mut Vec<ImportError>,
    ) -> Option<T> {
        match self.obj.get(field) {
            None | Some(Value::Null) => {
                if required {
                    self.problem(errs, field, "missing", expected);
                }
                None
            }
            Some(Value::String(s)) => {
                self.unless_refused(parse(s), field, (problem, expected), errs)
            }
            Some(v) => {
                self.wrong_type(errs, field, v, expected);
                None
            }
        }
    }

    /// What a reader made of `field`'s value, with the problem recorded when
    /// it refused it (`None`): `problem` is what the value is, `expected` what
    /// it should be.
    fn unless_refused<T>(
        &self,
        value: Option<T>,
        field: &str,
        (problem, expected): (&str, &str),
        errs: &mut Vec<ImportError>,
    ) -> Option<T> {
        if value.is_none() {
            self.problem(errs, field, problem, expected);
        }
        value
    }

    /// An optional true/false field.
    pub(super) fn opt_bool(&self, field: &str, errs: &mut Vec<ImportError>) -> Option<bool> {
        match self.obj.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(v) => {
                self.wrong_type(errs, field, v, "true or false");
                None
            }
        }
    }

    /// An optional number field, read by `read`; `invalid` is the problem and the
    /// expectation when `read` refuses the number, `expected` what a valid value is.
    fn numeric<T>(
        &self,
        field: &str,
        read: impl Fn(&Number) -> Option<T>,
        (invalid, invalid_expected): (&str, &str),
        expected: &str,
        errs: &mut Vec<ImportError>,
    ) -> Option<T> {
        match self.obj.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => {
                self.unless_refused(read(n), field, (invalid, invalid_expected), errs)
            }
            Some(v) => {
                self.problem(
                    errs,
                    field,
                    format!("is {}, not a number", kind(v)),
                    expected,
                );
                None
            }
        }
    }

    /// An optional figure: a finite number >= 0.
    pub(super) fn opt_number(&self, field: &str, errs: &mut Vec<ImportError>) -> Option<f64> {
        self.numeric(
            field,
            |n| n.as_f64().filter(|x| x.is_finite() && *x >= 0.0),
            ("is negative or out of range", "a number >= 0"),
            "a number such as 32.7, or null",
            errs,
        )
    }

    /// An optional raw count of people: a whole number >= 0.
    pub(super) fn opt_count(&self, field: &str, errs: &mut Vec<ImportError>) -> Option<u64> {
        const EXPECTED: &str = "a count such as 40, or null";
        self.numeric(
            field,
            Number::as_u64,
            ("is not a whole number >= 0", EXPECTED),
            EXPECTED,
            errs,
        )
    }

    /// Records every field not in `known`: an unknown field is an error, never
    /// dropped, so a misspelt private field cannot end up somewhere else.
    pub(super) fn unknown(&self, known: &[&str], errs: &mut Vec<ImportError>) {
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
