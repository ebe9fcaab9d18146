//! The exports: Atom 1.0, JSON Feed 1.1 and CSV.
//!
//! - [`to_atom`]: Atom 1.0 (RFC 4287). Each entry has its `urn:labnet:` id, the
//!   publisher as author, `updated`, title, summary, the indicators both as
//!   text content and as `labnet:indicator` extension elements, and labnet
//!   extension elements (namespace [`ATOM_EXTENSION_NS`]) with what a reader
//!   needs to check it offline: `labnet:origin` (NodeId), `labnet:origin-key`,
//!   `labnet:version`, `labnet:statement`, `labnet:document` (hex), and
//!   `labnet:publisher` (with `source`: own, peer or signed),
//!   `labnet:publisher-conflict`, `labnet:place` and `labnet:city` (the
//!   publisher, for older readers).
//! - [`to_json_feed`]: JSON Feed 1.1, the same in each item's `_labnet` object.
//! - [`to_csv`]: one row per practice, indicators as `label|achieved|target|unit`
//!   items separated by `;` (the import format's convention), with the origin
//!   and place; a cell that a spreadsheet would read as a formula is prefixed
//!   with `'`.
//!
//! [`super::verify`] renders an entry again with [`atom_entry`] and
//! [`json_item`] and compares: what is written here is what is checked.

use std::io::Cursor;

use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;

use super::{FeedEntry, FeedIndicator, FeedInfo, ATOM_EXTENSION_NS};

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// Writing XML failed.
    #[error("writing the Atom feed: {0}")]
    Xml(String),
    /// Writing JSON failed.
    #[error("writing the JSON feed: {0}")]
    Json(#[from] serde_json::Error),
    /// Writing CSV failed.
    #[error("writing the CSV export: {0}")]
    Csv(#[from] csv::Error),
}

/// The JSON Feed version an export declares.
pub const JSON_FEED_VERSION: &str = "https://jsonfeed.org/version/1.1";

/// The Atom namespace.
pub const ATOM_NS: &str = "http://www.w3.org/2005/Atom";

/// RFC 3339 in UTC, as both Atom and JSON Feed require.
pub fn rfc3339(unix: i64) -> String {
    let t =
        time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

fn number(n: Option<f64>) -> String {
    n.map(|v| {
        // Whole numbers print without a trailing ".0": 28, not 28.0.
        if v.fract() == 0.0 && v.abs() < 1e15 {
            format!("{}", v as i64)
        } else {
            format!("{v}")
        }
    })
    .unwrap_or_default()
}

/// One indicator as a line of text: `label: achieved (target T) unit`.
pub fn indicator_text(i: &FeedIndicator) -> String {
    let unit = i
        .unit
        .as_deref()
        .map(|u| {
            if u == "%" {
                u.to_string()
            } else {
                format!(" {u}")
            }
        })
        .unwrap_or_default();
    let achieved = match i.achieved {
        Some(_) => format!("{}{unit}", number(i.achieved)),
        None => "not published".to_string(),
    };
    match i.target {
        Some(_) => format!(
            "{}: {achieved} (target {}{unit})",
            i.label,
            number(i.target)
        ),
        None => format!("{}: {achieved}", i.label),
    }
}

type XmlWriter = Writer<Cursor<Vec<u8>>>;

fn xml_error(e: std::io::Error) -> FeedError {
    FeedError::Xml(e.to_string())
}

/// Writes an Atom 1.0 feed.
pub fn to_atom(info: &FeedInfo, entries: &[FeedEntry]) -> Result<String, FeedError> {
    let mut w = Writer::new_with_indent(Cursor::new(Vec::new()), b' ', 2);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)))
        .map_err(xml_error)?;
    let mut feed = BytesStart::new("feed");
    feed.push_attribute(("xmlns", ATOM_NS));
    feed.push_attribute(("xmlns:labnet", ATOM_EXTENSION_NS));
    w.write_event(Event::Start(feed)).map_err(xml_error)?;
    text_element(&mut w, "id", &info.id)?;
    text_element(&mut w, "title", &info.title)?;
    let updated = entries.iter().map(|e| e.updated).max().unwrap_or(0);
    text_element(&mut w, "updated", &rfc3339(updated))?;
    w.write_event(Event::Start(BytesStart::new("author")))
        .map_err(xml_error)?;
    text_element(&mut w, "name", "labnet")?;
    w.write_event(Event::End(BytesEnd::new("author")))
        .map_err(xml_error)?;
    for e in entries {
        atom_entry(&mut w, e)?;
    }
    w.write_event(Event::End(BytesEnd::new("feed")))
        .map_err(xml_error)?;
    String::from_utf8(w.into_inner().into_inner()).map_err(|e| FeedError::Xml(e.to_string()))
}

/// Writes one Atom `<entry>`.
pub(super) fn atom_entry(w: &mut XmlWriter, e: &FeedEntry) -> Result<(), FeedError> {
    w.write_event(Event::Start(BytesStart::new("entry")))
        .map_err(xml_error)?;
    text_element(w, "id", &e.id)?;
    text_element(w, "title", &e.title)?;
    text_element(w, "updated", &rfc3339(e.updated))?;
    w.write_event(Event::Start(BytesStart::new("author")))
        .map_err(xml_error)?;
    text_element(w, "name", &e.publisher)?;
    w.write_event(Event::End(BytesEnd::new("author")))
        .map_err(xml_error)?;
    if let Some(link) = &e.link {
        let mut l = BytesStart::new("link");
        l.push_attribute(("rel", "related"));
        l.push_attribute(("href", xml_chars(link).as_ref()));
        w.write_event(Event::Empty(l)).map_err(xml_error)?;
    }
    if let Some(area) = &e.area {
        let mut c = BytesStart::new("category");
        c.push_attribute(("term", xml_chars(area).as_ref()));
        w.write_event(Event::Empty(c)).map_err(xml_error)?;
    }
    text_element(w, "summary", &e.summary)?;
    let content: Vec<String> = e.indicators.iter().map(indicator_text).collect();
    if !content.is_empty() {
        let mut c = BytesStart::new("content");
        c.push_attribute(("type", "text"));
        w.write_event(Event::Start(c)).map_err(xml_error)?;
        w.write_event(Event::Text(BytesText::new(&xml_chars(&content.join("\n")))))
            .map_err(xml_error)?;
        w.write_event(Event::End(BytesEnd::new("content")))
            .map_err(xml_error)?;
    }
    text_element(w, "labnet:city", &e.city)?;
    let mut publisher = BytesStart::new("labnet:publisher");
    publisher.push_attribute(("source", e.publisher_source.as_str()));
    w.write_event(Event::Start(publisher)).map_err(xml_error)?;
    w.write_event(Event::Text(BytesText::new(&xml_chars(&e.publisher))))
        .map_err(xml_error)?;
    w.write_event(Event::End(BytesEnd::new("labnet:publisher")))
        .map_err(xml_error)?;
    text_element(
        w,
        "labnet:publisher-conflict",
        if e.publisher_conflict {
            "true"
        } else {
            "false"
        },
    )?;
    if let Some(place) = &e.place {
        text_element(w, "labnet:place", place)?;
    }
    text_element(w, "labnet:origin", &e.origin)?;
    text_element(w, "labnet:origin-key", &e.origin_key)?;
    text_element(w, "labnet:version", &e.version.to_string())?;
    for i in &e.indicators {
        let mut el = BytesStart::new("labnet:indicator");
        el.push_attribute(("label", xml_chars(&i.label).as_ref()));
        let achieved = number(i.achieved);
        let target = number(i.target);
        if i.achieved.is_some() {
            el.push_attribute(("achieved", achieved.as_str()));
        }
        if i.target.is_some() {
            el.push_attribute(("target", target.as_str()));
        }
        if let Some(unit) = &i.unit {
            el.push_attribute(("unit", xml_chars(unit).as_ref()));
        }
        w.write_event(Event::Empty(el)).map_err(xml_error)?;
    }
    text_element(w, "labnet:statement", &e.statement)?;
    text_element(w, "labnet:document", &e.document)?;
    w.write_event(Event::End(BytesEnd::new("entry")))
        .map_err(xml_error)?;
    Ok(())
}

/// One entry alone, as [`to_atom`] writes it inside a feed (with the
/// namespaces declared on it): what [`super::verify`] compares an entry with.
pub(super) fn atom_entry_alone(e: &FeedEntry) -> Result<String, FeedError> {
    let mut w = Writer::new(Cursor::new(Vec::new()));
    let mut feed = BytesStart::new("feed");
    feed.push_attribute(("xmlns", ATOM_NS));
    feed.push_attribute(("xmlns:labnet", ATOM_EXTENSION_NS));
    w.write_event(Event::Start(feed)).map_err(xml_error)?;
    atom_entry(&mut w, e)?;
    w.write_event(Event::End(BytesEnd::new("feed")))
        .map_err(xml_error)?;
    String::from_utf8(w.into_inner().into_inner()).map_err(|e| FeedError::Xml(e.to_string()))
}

/// `text` with every character XML 1.0 cannot carry, not even escaped (the
/// C0 controls but tab, newline and carriage return, and U+FFFE, U+FFFF),
/// replaced by U+FFFD. A publication's text is a peer's and may hold any
/// character; without this one NUL in a title makes the whole Atom export
/// unreadable. `feed verify` renders entries with the same functions, so an
/// entry so written still verifies.
fn xml_chars(text: &str) -> std::borrow::Cow<'_, str> {
    let allowed = |c: char| {
        matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{fffe}' && c != '\u{ffff}')
    };
    if text.chars().all(allowed) {
        text.into()
    } else {
        text.chars()
            .map(|c| if allowed(c) { c } else { '\u{fffd}' })
            .collect::<String>()
            .into()
    }
}

fn text_element(w: &mut XmlWriter, name: &str, text: &str) -> Result<(), FeedError> {
    w.write_event(Event::Start(BytesStart::new(name)))
        .map_err(xml_error)?;
    w.write_event(Event::Text(BytesText::new(&xml_chars(text))))
        .map_err(xml_error)?;
    w.write_event(Event::End(BytesEnd::new(name)))
        .map_err(xml_error)?;
    Ok(())
}

/// Writes a JSON Feed 1.1 document.
pub fn to_json_feed(info: &FeedInfo, entries: &[FeedEntry]) -> Result<String, FeedError> {
    let items: Vec<serde_json::Value> = entries.iter().map(json_item).collect();
    // JSON Feed has no feed id: labnet's goes in the feed's `_labnet` object.
    let feed = serde_json::json!({
        "version": JSON_FEED_VERSION,
        "title": info.title,
        "_labnet": { "id": info.id },
        "items": items,
    });
    Ok(serde_json::to_string_pretty(&feed)?)
}

/// One JSON Feed item.
pub(super) fn json_item(e: &FeedEntry) -> serde_json::Value {
    let mut item = serde_json::json!({
        "id": e.id,
        "title": e.title,
        "summary": e.summary,
        "content_text": content_text(e),
        "date_modified": rfc3339(e.updated),
        "authors": [{ "name": e.publisher }],
        "tags": e.area.iter().collect::<Vec<_>>(),
        "_labnet": {
            "city": e.city,
            "publisher": e.publisher,
            "publisher_source": e.publisher_source,
            "publisher_conflict": e.publisher_conflict,
            "place": e.place,
            "area": e.area,
            "indicators": e.indicators,
            "origin": e.origin,
            "origin_key": e.origin_key,
            "version": e.version,
            "statement": e.statement,
            "document": e.document,
        },
    });
    if let (Some(link), Some(obj)) = (&e.link, item.as_object_mut()) {
        obj.insert(
            "external_url".into(),
            serde_json::Value::String(link.clone()),
        );
    }
    item
}

fn content_text(e: &FeedEntry) -> String {
    let mut text = e.summary.clone();
    for i in &e.indicators {
        text.push('\n');
        text.push_str(&indicator_text(i));
    }
    text
}

/// A cell as a spreadsheet should see it: text that starts like a formula
/// (`=`, `+`, `-`, `@`, or a tab or carriage return before one) gets a leading
/// `'`, so opening the export never runs it.
fn cell(text: &str) -> std::borrow::Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}").into()
    } else {
        text.into()
    }
}

/// Writes one CSV row per practice.
pub fn to_csv(entries: &[FeedEntry]) -> Result<String, FeedError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "id",
        "city",
        "title",
        "area",
        "updated",
        "link",
        "summary",
        "indicators",
        "origin",
        "place",
    ])?;
    for e in entries {
        let indicators: Vec<String> = e
            .indicators
            .iter()
            .map(|i| {
                format!(
                    "{}|{}|{}|{}",
                    i.label,
                    number(i.achieved),
                    number(i.target),
                    i.unit.as_deref().unwrap_or("")
                )
            })
            .collect();
        let updated = rfc3339(e.updated);
        let indicators = indicators.join(";");
        let row = [
            e.id.as_str(),
            e.city.as_str(),
            e.title.as_str(),
            e.area.as_deref().unwrap_or(""),
            updated.as_str(),
            e.link.as_deref().unwrap_or(""),
            e.summary.as_str(),
            indicators.as_str(),
            e.origin.as_str(),
            e.place.as_deref().unwrap_or(""),
        ];
        w.write_record(row.iter().map(|c| cell(c).into_owned()))?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| FeedError::Csv(e.into_error().into()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
