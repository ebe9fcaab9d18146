//! Reading a JSON Feed export for [`verify`](super::verify): its items' claims,
//! and the field-by-field comparison with what the exporter writes.

use labnet_protocol::NodeId;

use crate::feed::export::{json_item, JSON_FEED_VERSION};
use crate::feed::PublisherSource;

use super::{check_signed, exporter_of, printable, Checked, Claims, VerifyError};

/// The exporter the id of a JSON Feed names, and the verdict on each of its
/// entries.
pub(super) fn json_entries(text: &str) -> Result<(Option<NodeId>, Vec<Checked>), VerifyError> {
    let feed: serde_json::Value =
        serde_json::from_str(text).map_err(|e| VerifyError::Json(e.to_string()))?;
    let version = feed.get("version").and_then(|v| v.as_str()).unwrap_or("");
    if version != JSON_FEED_VERSION && !version.starts_with("https://jsonfeed.org/version/1") {
        return Err(VerifyError::NotAFeed(
            "its \"version\" is not a JSON Feed version".into(),
        ));
    }
    let Some(items) = feed.get("items").and_then(|i| i.as_array()) else {
        return Err(VerifyError::NotAFeed("it has no \"items\" list".into()));
    };
    let feed_id = feed
        .get("_labnet")
        .and_then(|l| l.get("id"))
        .and_then(|i| i.as_str());
    let exporter = exporter_of(feed_id);
    let checked = items
        .iter()
        .enumerate()
        .map(|(n, item)| {
            let id = item
                .get("id")
                .and_then(|i| i.as_str())
                .map(str::to_string)
                .unwrap_or_else(|| format!("(item {} without an id)", n + 1));
            let outcome = json_claims(item, &id)
                .and_then(|claims| check_signed(&claims))
                .and_then(|(expected, verified)| {
                    same_value(item, &json_item(&expected), "")?;
                    Ok(verified)
                });
            (id, outcome)
        })
        .collect();
    Ok((exporter, checked))
}

fn json_claims(item: &serde_json::Value, id: &str) -> Result<Claims, String> {
    let lab = item
        .get("_labnet")
        .and_then(|l| l.as_object())
        .ok_or("no _labnet object: not a signed labnet entry")?;
    let text = |name: &str| {
        lab.get(name)
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .ok_or_else(|| format!("_labnet.{name} is missing or not a string"))
    };
    let source = text("publisher_source")?;
    let source = PublisherSource::from_name(&source).ok_or_else(|| {
        format!(
            "_labnet.publisher_source \"{}\": use own, peer or signed",
            printable(&source)
        )
    })?;
    let conflict = lab
        .get("publisher_conflict")
        .and_then(|v| v.as_bool())
        .ok_or("_labnet.publisher_conflict is missing or not true/false")?;
    Ok(Claims {
        id: id.to_string(),
        origin: text("origin")?,
        statement: text("statement")?,
        document: text("document")?,
        publisher: text("publisher")?,
        source,
        conflict,
    })
}

/// Compares a JSON value with the one the exporter writes, field by field.
/// Numbers compare as numbers (a parser may read the last bit of a float
/// differently; what the entry displays is in `content_text` too, compared
/// as text).
fn same_value(got: &serde_json::Value, want: &serde_json::Value, path: &str) -> Result<(), String> {
    use serde_json::Value;
    let mismatch = || {
        let what = if path.is_empty() { "the item" } else { path };
        format!("{what} does not match the signed statement and document")
    };
    let field = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            if let Some(extra) = g.keys().find(|k| !w.contains_key(*k)) {
                return Err(format!(
                    "{} is not something the exporter writes",
                    printable(&field(extra))
                ));
            }
            for (k, wv) in w {
                let Some(gv) = g.get(k) else {
                    return Err(format!("{} is missing", field(k)));
                };
                same_value(gv, wv, &field(k))?;
            }
            Ok(())
        }
        (Value::Array(g), Value::Array(w)) => {
            if g.len() != w.len() {
                return Err(mismatch());
            }
            for (i, (gv, wv)) in g.iter().zip(w).enumerate() {
                same_value(gv, wv, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        (Value::Number(g), Value::Number(w)) => {
            let same = match (g.as_i64(), w.as_i64(), g.as_u64(), w.as_u64()) {
                (Some(a), Some(b), _, _) => a == b,
                (_, _, Some(a), Some(b)) => a == b,
                _ => match (g.as_f64(), w.as_f64()) {
                    (Some(a), Some(b)) => {
                        a == b || (a - b).abs() <= 4.0 * f64::EPSILON * a.abs().max(b.abs())
                    }
                    _ => false,
                },
            };
            if same {
                Ok(())
            } else {
                Err(mismatch())
            }
        }
        (g, w) if g == w => Ok(()),
        _ => Err(mismatch()),
    }
}
