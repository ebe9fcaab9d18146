//! Exports checked with real parsers: Atom with an XML parser, JSON Feed against
//! its required fields, CSV by reading it back. (Entries built from real signed
//! publications, and their verification: `signed_tests.rs`.)

use super::*;

/// An entry with its publisher and the proof fields filled with placeholders
/// (these tests look at the formats, not at the proof).
fn fixture(id: &str, publisher: &str) -> FeedEntry {
    FeedEntry {
        id: id.into(),
        origin: "AAAAA-BBBBB".into(),
        publisher: publisher.into(),
        publisher_source: PublisherSource::Peer,
        publisher_conflict: false,
        city: publisher.into(),
        place: None,
        title: String::new(),
        summary: String::new(),
        area: None,
        link: None,
        updated: 0,
        indicators: Vec::new(),
        version: 1,
        origin_key: "00".repeat(32),
        statement: "00".into(),
        document: "00".into(),
    }
}

fn entries() -> Vec<FeedEntry> {
    vec![
        FeedEntry {
            place: Some("Fuenlabrada (Madrid)".into()),
            title: "MILMA Project <training> & \"jobs\"".into(),
            summary: "Training itineraries co-designed with companies.".into(),
            area: Some("education".into()),
            link: Some("https://www.milma-fuenlabrada.es/index.php/en?a=1&b=2".into()),
            updated: 1_700_000_000,
            indicators: vec![
                FeedIndicator {
                    label: "Migrants who found a job".into(),
                    achieved: Some(39.28),
                    target: Some(35.0),
                    unit: Some("%".into()),
                },
                FeedIndicator {
                    label: "BC Labs implemented".into(),
                    achieved: Some(28.0),
                    target: None,
                    unit: Some("training itineraries".into()),
                },
            ],
            ..fixture("urn:labnet:AAAAA:fuenlabrada-milma", "Fuenlabrada")
        },
        FeedEntry {
            title: "Care circles".into(),
            summary: "Neighbourhood care, with a comma, and a \"quote\"".into(),
            area: Some("care".into()),
            link: None,
            updated: 1_710_000_000,
            indicators: vec![FeedIndicator {
                label: "Participants".into(),
                achieved: None,
                target: Some(50.0),
                unit: Some("people".into()),
            }],
            ..fixture("urn:labnet:BBBBB:vienna-care", "Vienna")
        },
    ]
}

fn info() -> FeedInfo {
    FeedInfo {
        id: "urn:labnet:feed:test".into(),
        title: "labnet practices".into(),
    }
}

const ATOM: &str = "http://www.w3.org/2005/Atom";

/// The Atom entries of `feed`.
fn atom_entries<'a, 'input>(feed: roxmltree::Node<'a, 'input>) -> Vec<roxmltree::Node<'a, 'input>> {
    feed.children()
        .filter(|c| c.tag_name().name() == "entry")
        .collect()
}

/// A filter on the publisher's city alone.
fn city_filter(city: &str) -> FeedFilter {
    FeedFilter {
        city: Some(city.into()),
        ..FeedFilter::default()
    }
}

fn child<'a, 'input>(
    n: roxmltree::Node<'a, 'input>,
    name: &str,
) -> Option<roxmltree::Node<'a, 'input>> {
    n.children()
        .find(|c| c.tag_name().name() == name && c.tag_name().namespace() == Some(ATOM))
}

#[test]
fn atom_is_well_formed_with_required_elements() {
    let xml = to_atom(&info(), &entries()).unwrap();
    let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
    let feed = doc.root_element();
    assert_eq!(feed.tag_name().name(), "feed");
    assert_eq!(feed.tag_name().namespace(), Some(ATOM));
    for required in ["id", "title", "updated"] {
        assert!(child(feed, required).is_some(), "feed lacks {required}");
    }
    let items = atom_entries(feed);
    assert_eq!(items.len(), 2);
    for entry in &items {
        for required in ["id", "title", "updated", "author", "summary"] {
            assert!(child(*entry, required).is_some(), "entry lacks {required}");
        }
        let updated = child(*entry, "updated").unwrap().text().unwrap();
        time::OffsetDateTime::parse(updated, &time::format_description::well_known::Rfc3339)
            .expect("RFC 3339 updated");
    }
    // Escaping survived the round trip.
    assert_eq!(
        child(items[0], "title").unwrap().text(),
        Some("MILMA Project <training> & \"jobs\"")
    );
    let link = child(items[0], "link").unwrap();
    assert_eq!(
        link.attribute("href"),
        Some("https://www.milma-fuenlabrada.es/index.php/en?a=1&b=2")
    );
    let indicators: Vec<_> = items[0]
        .children()
        .filter(|c| {
            c.tag_name().name() == "indicator"
                && c.tag_name().namespace() == Some(ATOM_EXTENSION_NS)
        })
        .collect();
    assert_eq!(indicators.len(), 2);
    assert_eq!(indicators[0].attribute("achieved"), Some("39.28"));
    assert_eq!(indicators[1].attribute("achieved"), Some("28"));
    assert_eq!(indicators[1].attribute("target"), None);
}

#[test]
fn json_feed_has_the_required_fields() {
    let text = to_json_feed(&info(), &entries()).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["version"], "https://jsonfeed.org/version/1.1");
    assert!(v["title"].is_string());
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    let mut ids = std::collections::HashSet::new();
    for item in items {
        assert!(item["id"].is_string(), "id must be a string");
        assert!(
            ids.insert(item["id"].as_str().unwrap().to_string()),
            "ids are unique"
        );
        assert!(item["content_text"].is_string() || item["content_html"].is_string());
        time::OffsetDateTime::parse(
            item["date_modified"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        assert!(item["authors"][0]["name"].is_string());
    }
    assert_eq!(items[0]["_labnet"]["indicators"][0]["achieved"], 39.28);
    assert_eq!(
        items[1]["_labnet"]["indicators"][0]["achieved"],
        serde_json::Value::Null
    );
}

#[test]
fn csv_has_one_row_per_practice_and_reads_back() {
    let text = to_csv(&entries()).unwrap();
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<csv::StringRecord> = r.records().collect::<Result<_, _>>().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        &rows[1][6],
        "Neighbourhood care, with a comma, and a \"quote\""
    );
    assert_eq!(
        &rows[0][7],
        "Migrants who found a job|39.28|35|%;BC Labs implemented|28||training itineraries"
    );
}

#[test]
fn filters_by_city_area_and_date() {
    let all = entries();
    let by_city = city_filter("vienna").apply(&all);
    assert_eq!(by_city.len(), 1);
    assert_eq!(by_city[0].city, "Vienna");
    let by_area = FeedFilter {
        area: Some("education".into()),
        ..FeedFilter::default()
    }
    .apply(&all);
    assert_eq!(
        by_area.iter().map(|e| e.city.as_str()).collect::<Vec<_>>(),
        ["Fuenlabrada"]
    );
    let since = FeedFilter {
        since: Some(1_705_000_000),
        ..FeedFilter::default()
    }
    .apply(&all);
    assert_eq!(since.len(), 1);
    let newest_first = FeedFilter::default().apply(&all);
    assert_eq!(newest_first[0].city, "Vienna");
}

#[test]
fn indicator_text_reads_naturally() {
    let e = &entries()[0];
    assert_eq!(
        indicator_text(&e.indicators[0]),
        "Migrants who found a job: 39.28% (target 35%)"
    );
    assert_eq!(
        indicator_text(&e.indicators[1]),
        "BC Labs implemented: 28 training itineraries"
    );
}

#[test]
fn csv_carries_origin_and_place_and_never_a_formula() {
    let mut all = entries();
    all[1].title = "=HYPERLINK(\"http://evil\")".into();
    all[1].summary = "@SUM(A1)".into();
    all[1].place = Some("-Floridsdorf".into());
    all[0].summary = "+1 more".into();
    let text = to_csv(&all).unwrap();
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let header = r.headers().unwrap().clone();
    assert_eq!(&header[8], "origin");
    assert_eq!(&header[9], "place");
    let rows: Vec<csv::StringRecord> = r.records().collect::<Result<_, _>>().unwrap();
    assert_eq!(&rows[0][8], "AAAAA-BBBBB");
    assert_eq!(&rows[0][9], "Fuenlabrada (Madrid)");
    assert_eq!(&rows[0][6], "'+1 more");
    assert_eq!(&rows[1][2], "'=HYPERLINK(\"http://evil\")");
    assert_eq!(&rows[1][6], "'@SUM(A1)");
    assert_eq!(&rows[1][9], "'-Floridsdorf");
    // Text that merely contains the characters is left alone.
    assert_eq!(&rows[0][2], "MILMA Project <training> & \"jobs\"");
}

#[test]
fn the_same_publisher_name_from_two_origins_flags_both() {
    let mut all = vec![
        fixture("urn:labnet:A:1", "Vienna"),
        FeedEntry {
            origin: "OTHER".into(),
            ..fixture("urn:labnet:B:1", "vienna")
        },
        fixture("urn:labnet:A:2", "Vienna"),
        fixture("urn:labnet:C:1", "Modena"),
    ];
    flag_publisher_conflicts(&mut all);
    let flags: Vec<bool> = all.iter().map(|e| e.publisher_conflict).collect();
    assert_eq!(flags, [true, true, true, false]);
}

#[test]
fn the_city_filter_matches_the_publisher_not_the_place() {
    let mut all = entries();
    all[1].place = Some("Fuenlabrada".into());
    let shown = city_filter("fuenlabrada").apply(&all);
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0].publisher, "Fuenlabrada");
}
