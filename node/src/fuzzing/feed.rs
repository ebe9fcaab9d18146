//! The feed targets: the Atom, JSON Feed and CSV exports (`feed_export`) and
//! `labnet feed verify` (`feed_verify`).

use automerge::AutoCommit;
use labnet_protocol::statement::SignedStatement;

use crate::feed::{FeedEntry, FeedIndicator, FeedInfo, Publisher, PublisherSource};
use crate::share::Publication;

use super::view::{fixture, fuzz_key, ORIGIN};
use super::{fields, join_raw, Input, Seed};

// ---- feed export -------------------------------------------------------------

/// The exports on entries whose text is the fuzzer's (publication text is a
/// peer's). Input: 8 bytes of `updated`, 8 of `version`, then
/// `0xff`-separated fields: publisher, place, title, summary, area, link,
/// then indicator label/unit pairs. The Atom export must parse as XML with
/// one `entry` per entry; the JSON Feed must parse as JSON and give the
/// title and summary back exactly; the CSV must parse back with one record
/// of ten cells per entry, the title in its cell.
pub fn feed_export(data: &[u8]) {
    let mut input = Input::new(data);
    let updated = input.u64() as i64;
    let version = input.u64();
    let achieved = f64::from_bits(input.u64());
    let parts = fields(input.rest);
    let get = |i: usize| parts.get(i).cloned().unwrap_or_default();
    let opt = |i: usize| parts.get(i).filter(|s| !s.is_empty()).cloned();
    let indicators = parts
        .get(6..)
        .unwrap_or_default()
        .chunks(2)
        .take(8)
        .map(|pair| FeedIndicator {
            label: pair.first().cloned().unwrap_or_default(),
            achieved: Some(achieved),
            target: None,
            unit: pair.get(1).cloned(),
        })
        .collect();
    let entry = FeedEntry {
        id: "urn:labnet:fuzz:practice".into(),
        origin: fuzz_key(ORIGIN).node_id().to_string(),
        publisher: get(0),
        publisher_source: PublisherSource::Signed,
        publisher_conflict: false,
        city: get(0),
        place: opt(1),
        title: get(2),
        summary: get(3),
        area: opt(4),
        link: opt(5),
        updated,
        indicators,
        version,
        origin_key: "00".repeat(32),
        statement: "ab".into(),
        document: "cd".into(),
    };
    let entries = vec![entry.clone(), entry];
    let info = FeedInfo::for_node("fuzz");
    if let Ok(atom) = crate::feed::to_atom(&info, &entries) {
        let doc = match roxmltree::Document::parse(&atom) {
            Ok(doc) => doc,
            Err(e) => panic!("the Atom export is not XML: {e}"),
        };
        let count = doc
            .root_element()
            .children()
            .filter(|n| n.has_tag_name((crate::feed::export::ATOM_NS, "entry")))
            .count();
        assert_eq!(count, entries.len(), "Atom entries lost or added");
    }
    if let Ok(json) = crate::feed::to_json_feed(&info, &entries) {
        let value: serde_json::Value = match serde_json::from_str(&json) {
            Ok(v) => v,
            Err(e) => panic!("the JSON Feed export is not JSON: {e}"),
        };
        let items = value["items"].as_array().map(Vec::len);
        assert_eq!(items, Some(entries.len()), "JSON Feed items lost or added");
        assert_eq!(value["items"][0]["title"].as_str(), Some(get(2).as_str()));
        assert_eq!(value["items"][0]["summary"].as_str(), Some(get(3).as_str()));
    }
    if let Ok(csv_text) = crate::feed::to_csv(&entries) {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(csv_text.as_bytes());
        let mut records = 0;
        for record in reader.records() {
            let record = match record {
                Ok(r) => r,
                Err(e) => panic!("the CSV export does not parse: {e}"),
            };
            assert_eq!(record.len(), 10, "a CSV record with another cell count");
            let title = get(2);
            let cell = record.get(2).unwrap_or_default();
            assert!(
                cell == title || cell.strip_prefix('\'') == Some(title.as_str()),
                "the CSV title cell is not the title"
            );
            records += 1;
        }
        assert_eq!(records, entries.len(), "CSV records lost or added");
    }
}

/// Seeds of `feed_export`.
pub fn feed_export_seeds() -> Vec<Seed> {
    let seed = |updated: i64, version: u64, achieved: f64, parts: &[&str]| {
        let mut out = Vec::new();
        out.extend_from_slice(&updated.to_le_bytes());
        out.extend_from_slice(&version.to_le_bytes());
        out.extend_from_slice(&achieved.to_bits().to_le_bytes());
        out.extend_from_slice(&join_raw(parts));
        out
    };
    vec![
        (
            "plain",
            seed(
                1_764_000_000,
                3,
                40.0,
                &[
                    "Modena",
                    "Quartiere San Faustino",
                    "Language cafe",
                    "Mentors meet newcomers every week.",
                    "education",
                    "https://example.org/cafe",
                    "Participants",
                    "people",
                    "Share employed",
                    "%",
                ],
            ),
        ),
        (
            "markup",
            seed(
                -1,
                u64::MAX,
                0.5,
                &[
                    "<b>City & \"Co\"</b>",
                    "",
                    "]]> <![CDATA[ x",
                    "=HYPERLINK(\"http://evil\")",
                    "care",
                    "javascript:alert('x')",
                    "a,b;c|d",
                    "\"",
                ],
            ),
        ),
        (
            "unicode",
            seed(
                0,
                0,
                f64::NAN,
                &[
                    "Mechelen",
                    "Zuid",
                    "Café Ëlan — 日本語",
                    "line one\nline two\ttab",
                    "",
                    "",
                    "label",
                ],
            ),
        ),
    ]
}

// ---- feed verify -------------------------------------------------------------

/// `labnet feed verify` on arbitrary text (an export passed on by a
/// network): never panics, with or without a pin on the origin.
pub fn feed_verify(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = crate::feed::verify::verify(&text, &[]);
    let origin = fuzz_key(ORIGIN).node_id();
    if let Ok(pin) = format!("City {}={origin}", origin.short()).parse() {
        let _ = crate::feed::verify::verify(&text, &[pin]);
    }
}

/// Seeds of `feed_verify`: real Atom and JSON Feed exports of a publication
/// whose statement is really signed, and a damaged one.
pub fn feed_verify_seeds() -> Vec<Seed> {
    let f = fixture();
    let mut out = Vec::new();
    let Ok(mut doc) = AutoCommit::load(&f.v1_saved) else {
        return out;
    };
    let document = crate::feed::document_bytes(&mut doc);
    let Ok(publication) = Publication::from_replica(doc) else {
        return out;
    };
    let Ok(statement) = SignedStatement::decode(&f.v1_statement) else {
        return out;
    };
    let entry = FeedEntry::from_publication(
        &statement,
        &publication,
        &document,
        Publisher {
            name: format!("City {}", f.origin.node_id().short()),
            source: PublisherSource::Signed,
        },
    );
    let info = FeedInfo::for_node(&f.local.node_id().to_string());
    let entries = [entry];
    if let Ok(atom) = crate::feed::to_atom(&info, &entries) {
        out.push((
            "atom-damaged",
            atom.replace("<labnet:version>1", "<labnet:version>2")
                .into_bytes(),
        ));
        out.push(("atom", atom.into_bytes()));
    }
    if let Ok(json) = crate::feed::to_json_feed(&info, &entries) {
        out.push(("json", json.into_bytes()));
    }
    out
}
