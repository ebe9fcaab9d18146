//! Feeds: what a node shows of the publications it holds, and the exports an
//! international network passes on to its members.
//!
//! A [`FeedEntry`] is one publication as a reader sees it: the city, the
//! practice's title and summary, its area and indicators, when it last changed.
//! [`FeedFilter`] selects by city, area and date, and three exporters write the
//! formats the networks' tools already read:
//!
//! - [`to_atom`]: Atom 1.0 (RFC 4287). Each entry has a stable `urn:labnet:` id,
//!   the city as author, `updated`, title, summary, and the indicators both as
//!   text content and as `labnet:indicator` extension elements.
//! - [`to_json_feed`]: JSON Feed 1.1, with the indicators in a `_labnet` extension.
//! - [`to_csv`]: one row per practice, indicators as `label|achieved|target|unit`
//!   items separated by `;` (the import format's convention).
//!
//! Everything here is already anonymized: entries are built from publications,
//! which hold only what the anonymizer let through.

use std::io::Cursor;

use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;
use serde::{Deserialize, Serialize};

use crate::share::Publication;

/// The XML namespace of labnet's Atom extension elements.
pub const ATOM_EXTENSION_NS: &str = "urn:labnet:feed:1";

/// One publication as readers see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedEntry {
    /// Stable id: `urn:labnet:<origin NodeId>:<publication id>`.
    pub id: String,
    /// The publishing city.
    pub city: String,
    /// The practice's name.
    pub title: String,
    /// Its description (anonymized).
    pub summary: String,
    /// `education` or `care`, when the city gave one.
    pub area: Option<String>,
    /// A public link to the practice, when there is one.
    pub link: Option<String>,
    /// When the publication last changed, unix seconds.
    pub updated: i64,
    /// Results as published (suppressed figures are absent).
    pub indicators: Vec<FeedIndicator>,
}

/// A published result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedIndicator {
    /// What was measured.
    pub label: String,
    /// What was achieved, when published.
    pub achieved: Option<f64>,
    /// What was aimed at, when published.
    pub target: Option<f64>,
    /// The unit (`%`, `people`, ...).
    pub unit: Option<String>,
}

/// Which entries to show.
#[derive(Debug, Clone, Default)]
pub struct FeedFilter {
    /// Only this city (case-insensitive).
    pub city: Option<String>,
    /// Only this area (`education` or `care`).
    pub area: Option<String>,
    /// Only entries updated at or after this time (unix seconds).
    pub since: Option<i64>,
}

impl FeedFilter {
    /// Whether an entry passes the filter.
    pub fn matches(&self, entry: &FeedEntry) -> bool {
        let city_ok = self
            .city
            .as_ref()
            .is_none_or(|c| c.to_lowercase() == entry.city.to_lowercase());
        let area_ok = self
            .area
            .as_ref()
            .is_none_or(|a| entry.area.as_deref() == Some(a.as_str()));
        let since_ok = self.since.is_none_or(|t| entry.updated >= t);
        city_ok && area_ok && since_ok
    }

    /// The entries that pass, newest first (ties by id, so output is stable).
    pub fn apply(&self, entries: &[FeedEntry]) -> Vec<FeedEntry> {
        let mut out: Vec<FeedEntry> = entries
            .iter()
            .filter(|e| self.matches(e))
            .cloned()
            .collect();
        out.sort_by(|a, b| b.updated.cmp(&a.updated).then_with(|| a.id.cmp(&b.id)));
        out
    }
}

impl FeedEntry {
    /// A publication as a feed entry; `updated` is when it last changed.
    pub fn from_publication(publication: &Publication, updated: i64) -> FeedEntry {
        let m = &publication.body().meta;
        let p = &publication.body().practice;
        FeedEntry {
            id: format!("urn:labnet:{}:{}", m.origin_node, m.practice_id),
            // The practice's own city (a node may publish for a district or a
            // metropolitan area under another name); the node's name otherwise.
            city: if p.city.trim().is_empty() {
                m.origin_city.clone()
            } else {
                p.city.clone()
            },
            title: p.name.clone(),
            summary: p.description.clone(),
            area: p.thematic_area.map(|a| a.as_str().to_string()),
            link: p.link.clone(),
            updated,
            indicators: p
                .indicators
                .iter()
                .map(|i| FeedIndicator {
                    label: i.label.clone(),
                    achieved: i.achieved,
                    target: i.target,
                    unit: i.unit.clone(),
                })
                .collect(),
        }
    }
}

/// Every publication this node can show: its own live ones and the replicas it
/// received, newest first. A document that does not validate as a publication is
/// skipped (and logged), never shown half-read.
pub fn collect_entries(
    store: &crate::store::Store,
) -> Result<Vec<FeedEntry>, crate::store::StoreError> {
    use crate::store::DocumentKind;
    let retracted: std::collections::HashSet<String> = store
        .publication_rows()?
        .into_iter()
        .filter(|r| r.retracted)
        .map(|r| r.doc_id)
        .collect();
    let mut entries = Vec::new();
    for kind in [DocumentKind::Publication, DocumentKind::Replica] {
        for (doc_id, changed_at) in store.documents_changed_at(kind)? {
            if retracted.contains(&doc_id) {
                continue;
            }
            let Some((_, doc)) = store.load_document(&doc_id)? else {
                continue;
            };
            match Publication::from_replica(doc) {
                Ok(publication) => {
                    entries.push(FeedEntry::from_publication(&publication, changed_at))
                }
                Err(e) => {
                    tracing::warn!(doc = %doc_id, error = %e, "not shown in the feed: not a valid publication")
                }
            }
        }
    }
    Ok(FeedFilter::default().apply(&entries))
}

/// Feed-level metadata.
#[derive(Debug, Clone)]
pub struct FeedInfo {
    /// Stable id of the feed, e.g. `urn:labnet:feed:<NodeId>`.
    pub id: String,
    /// Title shown by feed readers.
    pub title: String,
}

impl FeedInfo {
    /// The feed of node `node_id`, as `labnet feed export` and the feed URLs
    /// title it.
    pub fn for_node(node_id: &str) -> FeedInfo {
        FeedInfo {
            id: format!("urn:labnet:feed:{node_id}"),
            title: "labnet: practices shared by partner cities".into(),
        }
    }
}

/// A date as a filter takes it: `YYYY-MM-DD` (midnight UTC) or an RFC 3339
/// time, as unix seconds. The error says what is wrong, after the value.
pub fn parse_date(typed: &str) -> Result<i64, String> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(typed, &Rfc3339) {
        return Ok(t.unix_timestamp());
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(typed, &format)
        .map(|d| d.midnight().assume_utc().unix_timestamp())
        .map_err(|_| format!("'{typed}': not a date; use YYYY-MM-DD or e.g. 2026-03-01T12:00:00Z"))
}

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

/// Writes an Atom 1.0 feed.
pub fn to_atom(info: &FeedInfo, entries: &[FeedEntry]) -> Result<String, FeedError> {
    let mut w = Writer::new_with_indent(Cursor::new(Vec::new()), b' ', 2);
    let xml = |e: std::io::Error| FeedError::Xml(e.to_string());
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)))
        .map_err(xml)?;
    let mut feed = BytesStart::new("feed");
    feed.push_attribute(("xmlns", "http://www.w3.org/2005/Atom"));
    feed.push_attribute(("xmlns:labnet", ATOM_EXTENSION_NS));
    w.write_event(Event::Start(feed)).map_err(xml)?;
    text_element(&mut w, "id", &info.id)?;
    text_element(&mut w, "title", &info.title)?;
    let updated = entries.iter().map(|e| e.updated).max().unwrap_or(0);
    text_element(&mut w, "updated", &rfc3339(updated))?;
    w.write_event(Event::Start(BytesStart::new("author")))
        .map_err(xml)?;
    text_element(&mut w, "name", "labnet")?;
    w.write_event(Event::End(BytesEnd::new("author")))
        .map_err(xml)?;
    for e in entries {
        w.write_event(Event::Start(BytesStart::new("entry")))
            .map_err(xml)?;
        text_element(&mut w, "id", &e.id)?;
        text_element(&mut w, "title", &e.title)?;
        text_element(&mut w, "updated", &rfc3339(e.updated))?;
        w.write_event(Event::Start(BytesStart::new("author")))
            .map_err(xml)?;
        text_element(&mut w, "name", &e.city)?;
        w.write_event(Event::End(BytesEnd::new("author")))
            .map_err(xml)?;
        if let Some(link) = &e.link {
            let mut l = BytesStart::new("link");
            l.push_attribute(("rel", "related"));
            l.push_attribute(("href", link.as_str()));
            w.write_event(Event::Empty(l)).map_err(xml)?;
        }
        if let Some(area) = &e.area {
            let mut c = BytesStart::new("category");
            c.push_attribute(("term", area.as_str()));
            w.write_event(Event::Empty(c)).map_err(xml)?;
        }
        text_element(&mut w, "summary", &e.summary)?;
        let content: Vec<String> = e.indicators.iter().map(indicator_text).collect();
        if !content.is_empty() {
            let mut c = BytesStart::new("content");
            c.push_attribute(("type", "text"));
            w.write_event(Event::Start(c)).map_err(xml)?;
            w.write_event(Event::Text(BytesText::new(&content.join("\n"))))
                .map_err(xml)?;
            w.write_event(Event::End(BytesEnd::new("content")))
                .map_err(xml)?;
        }
        text_element(&mut w, "labnet:city", &e.city)?;
        for i in &e.indicators {
            let mut el = BytesStart::new("labnet:indicator");
            el.push_attribute(("label", i.label.as_str()));
            let achieved = number(i.achieved);
            let target = number(i.target);
            if i.achieved.is_some() {
                el.push_attribute(("achieved", achieved.as_str()));
            }
            if i.target.is_some() {
                el.push_attribute(("target", target.as_str()));
            }
            if let Some(unit) = &i.unit {
                el.push_attribute(("unit", unit.as_str()));
            }
            w.write_event(Event::Empty(el)).map_err(xml)?;
        }
        w.write_event(Event::End(BytesEnd::new("entry")))
            .map_err(xml)?;
    }
    w.write_event(Event::End(BytesEnd::new("feed")))
        .map_err(xml)?;
    String::from_utf8(w.into_inner().into_inner()).map_err(|e| FeedError::Xml(e.to_string()))
}

fn text_element(w: &mut Writer<Cursor<Vec<u8>>>, name: &str, text: &str) -> Result<(), FeedError> {
    let xml = |e: std::io::Error| FeedError::Xml(e.to_string());
    w.write_event(Event::Start(BytesStart::new(name)))
        .map_err(xml)?;
    w.write_event(Event::Text(BytesText::new(text)))
        .map_err(xml)?;
    w.write_event(Event::End(BytesEnd::new(name)))
        .map_err(xml)?;
    Ok(())
}

/// Writes a JSON Feed 1.1 document.
pub fn to_json_feed(info: &FeedInfo, entries: &[FeedEntry]) -> Result<String, FeedError> {
    let items: Vec<serde_json::Value> = entries
        .iter()
        .map(|e| {
            let mut item = serde_json::json!({
                "id": e.id,
                "title": e.title,
                "summary": e.summary,
                "content_text": content_text(e),
                "date_modified": rfc3339(e.updated),
                "authors": [{ "name": e.city }],
                "tags": e.area.iter().collect::<Vec<_>>(),
                "_labnet": {
                    "city": e.city,
                    "area": e.area,
                    "indicators": e.indicators,
                },
            });
            if let (Some(link), Some(obj)) = (&e.link, item.as_object_mut()) {
                obj.insert(
                    "external_url".into(),
                    serde_json::Value::String(link.clone()),
                );
            }
            item
        })
        .collect();
    let feed = serde_json::json!({
        "version": "https://jsonfeed.org/version/1.1",
        "title": info.title,
        "items": items,
    });
    Ok(serde_json::to_string_pretty(&feed)?)
}

fn content_text(e: &FeedEntry) -> String {
    let mut text = e.summary.clone();
    for i in &e.indicators {
        text.push('\n');
        text.push_str(&indicator_text(i));
    }
    text
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
        w.write_record([
            e.id.as_str(),
            e.city.as_str(),
            e.title.as_str(),
            e.area.as_deref().unwrap_or(""),
            &rfc3339(e.updated),
            e.link.as_deref().unwrap_or(""),
            e.summary.as_str(),
            &indicators.join(";"),
        ])?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| FeedError::Csv(e.into_error().into()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests;
