//! JSON files: `{"<key>": [...]}` to its items, each with its JSON path.

use serde_json::Value;

use super::error::{file_error, push, ImportError, ImportErrors};
use super::fields::kind;
use super::Item;

/// The items of a JSON file `{"<key>": [...]}`, each with its path.
pub(super) fn items<T: Item>(text: &str) -> Result<Vec<(String, Value)>, ImportErrors> {
    let key = T::KEY;
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
    let items: Vec<(String, Value)> = items
        .into_iter()
        .enumerate()
        .map(|(i, v)| (format!("{key}[{i}]"), v))
        .collect();
    if !errs.is_empty() {
        // Report the items' problems too, so one pass shows everything.
        for (loc, item) in &items {
            let _ = T::from_value(item, loc, &mut errs);
        }
        return Err(ImportErrors { errors: errs });
    }
    Ok(items)
}
