//! Feeds built from real signed publications (real keys, a real store), their
//! exports, and `verify` on them: what it accepts, and that one changed byte,
//! a swapped origin or a wrong pin fails exactly the entry it is in.

use std::sync::Arc;

use automerge::AutoCommit;
use labnet_config::Role;
use labnet_protocol::statement::{ScopeClass, Signed, Signer, VersionStatement};
use labnet_protocol::sync::{publication_id, DocId};
use labnet_protocol::NodeId;

use super::verify::{verify, ExportFormat, OriginPin, VerifyError, VerifyReport};
use super::*;
use crate::identity::Identity;
use crate::lab::ThematicArea;
use crate::share::publication::{sample_body, sample_doc};
use crate::share::{PublicationBody, PublishedIndicator};
use crate::store::ReceivedStatement;

const ME: &str = "Fuenlabrada";

/// A node: its key, its store (signing with that key) and its directory.
struct Node {
    id: Arc<Identity>,
    store: Store,
    _dir: tempfile::TempDir,
}

impl Node {
    fn new() -> Node {
        let dir = tempfile::tempdir().unwrap();
        let (id, store) = crate::testing::signed_store(dir.path());
        Node {
            id,
            store,
            _dir: dir,
        }
    }

    fn node_id(&self) -> NodeId {
        self.id.node_id()
    }

    fn entries(&self) -> Vec<FeedEntry> {
        collect_entries(&self.store, self.node_id(), ME).unwrap()
    }

    fn info(&self) -> FeedInfo {
        FeedInfo::for_node(&self.node_id().to_string())
    }

    fn atom(&self) -> String {
        to_atom(&self.info(), &self.entries()).unwrap()
    }

    fn json(&self) -> String {
        to_json_feed(&self.info(), &self.entries()).unwrap()
    }

    /// Publishes one of our own practices.
    fn publish(&mut self, practice: &str, seed: u32) -> String {
        let body = body(self.node_id(), practice, seed, "Ignored: our name wins");
        let doc_id = body.meta.doc_id.clone();
        let mut doc = sample_doc(&body);
        self.store
            .save_publication(&doc_id, &mut doc, "public")
            .unwrap();
        doc_id
    }

    /// Approves `peer` as a partner under `name`.
    fn approve(&mut self, peer: NodeId, name: &str) {
        self.store
            .approve_peer(peer, Role::Partner, Some(name), None, "test")
            .unwrap();
    }

    /// Holds `doc` as the replica `doc_id`, under a statement `signer` signs,
    /// delivered by `via`.
    fn receive(&mut self, signer: &Identity, doc_id: &DocId, doc: &mut AutoCommit, via: NodeId) {
        let mut heads: Vec<[u8; 32]> = doc.get_heads().iter().map(|h| h.0).collect();
        heads.sort();
        let statement = VersionStatement {
            publication: doc_id.clone(),
            origin_key: Signer::public_key(signer),
            version: 3,
            heads,
            scope: ScopeClass::Public,
            retracted: false,
            issued_at: 1_764_000_000,
        };
        let origin = statement.origin();
        let signed = Signed::sign(statement, signer);
        let received = ReceivedStatement {
            origin,
            version: 3,
            scope_class: ScopeClass::Public,
            signed: signed.encode(),
            via,
        };
        let heads = doc.get_heads();
        let bytes = doc.save();
        self.store
            .batch(|b| {
                b.save_replica_snapshot(doc_id.as_str(), origin, &heads, &bytes)?;
                b.save_received_statement(doc_id.as_str(), &received, false)
            })
            .unwrap();
    }
}

/// A publication body of `origin`, signed as `city`, with a place, an area
/// and figures.
fn body(origin: NodeId, practice: &str, seed: u32, city: &str) -> PublicationBody {
    let mut body = sample_body(origin, practice, seed);
    body.meta.origin_city = city.into();
    body.practice.city = format!("District {seed}");
    body.practice.thematic_area = Some(ThematicArea::Education);
    body.practice.link = Some(format!("https://example.org/{practice}?a=1&b=2"));
    body.practice.indicators = vec![
        PublishedIndicator {
            label: format!("People reached {seed}"),
            achieved: Some(39.28),
            target: Some(35.0),
            unit: Some("%".into()),
            suppressed: false,
        },
        PublishedIndicator {
            label: "Sessions".into(),
            achieved: None,
            target: Some(12.0),
            unit: None,
            suppressed: true,
        },
    ];
    body
}

/// A peer's own publication, signed as `city`.
fn peer_publication(peer: &Identity, practice: &str, seed: u32, city: &str) -> (DocId, AutoCommit) {
    let body = body(peer.node_id(), practice, seed, city);
    let doc_id = DocId::new(body.meta.doc_id.clone()).unwrap();
    (doc_id, sample_doc(&body))
}

/// Us (Fuenlabrada) with one publication of our own, one of a direct peer
/// approved as Vienna (which signs a name of its own), and one relayed by
/// Vienna from a city we do not know (Modena, by the name it signed).
struct World {
    me: Node,
    vienna: Identity,
    modena: Identity,
    ids: [String; 3],
}

fn world() -> World {
    let mut me = Node::new();
    let vienna = Identity::generate().unwrap();
    let modena = Identity::generate().unwrap();
    let own = me.publish("milma", 1);
    me.approve(vienna.node_id(), "Vienna");
    let (v_id, mut v_doc) = peer_publication(&vienna, "care", 2, "Wien");
    me.receive(&vienna, &v_id, &mut v_doc, vienna.node_id());
    let (m_id, mut m_doc) = peer_publication(&modena, "school", 3, "Modena");
    me.receive(&modena, &m_id, &mut m_doc, vienna.node_id());
    World {
        me,
        vienna,
        modena,
        ids: [
            format!("urn:labnet:{own}"),
            format!("urn:labnet:{v_id}"),
            format!("urn:labnet:{m_id}"),
        ],
    }
}

fn find<'a>(entries: &'a [FeedEntry], id: &str) -> &'a FeedEntry {
    entries
        .iter()
        .find(|e| e.id == id)
        .unwrap_or_else(|| panic!("no entry {id} in {entries:#?}"))
}

/// The ids that failed, and the lines printed.
fn failures(report: &VerifyReport) -> Vec<String> {
    report.failed().map(|e| e.id.clone()).collect()
}

fn lines(report: &VerifyReport) -> String {
    report
        .entries
        .iter()
        .map(|e| e.line())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Changes one character of `text` at the first `needle` after the first
/// occurrence of `anchor`, `offset` characters into it.
fn tamper(text: &str, anchor: &str, needle: &str, offset: usize) -> String {
    let start = text.find(anchor).unwrap_or_else(|| panic!("no {anchor}"));
    let at = start
        + text[start..]
            .find(needle)
            .unwrap_or_else(|| panic!("no {needle} after {anchor}"))
        + offset;
    let old = text[at..].chars().next().unwrap();
    let new = match old {
        '0' => '1',
        'a' => 'b',
        c if c.is_ascii_hexdigit() => '0',
        c if c.is_ascii_lowercase() => 'x',
        _ => 'X',
    };
    let mut out = text.to_string();
    out.replace_range(at..at + old.len_utf8(), &new.to_string());
    assert_ne!(out, text);
    out
}

#[test]
fn entries_take_id_origin_and_publisher_from_the_statement() {
    let w = world();
    let entries = w.me.entries();
    assert_eq!(entries.len(), 3);

    let own = find(&entries, &w.ids[0]);
    assert_eq!(own.origin, w.me.node_id().to_string());
    assert_eq!(
        own.publisher, ME,
        "our own name, not what the document says"
    );
    assert_eq!(own.publisher_source, PublisherSource::Own);
    assert_eq!(own.city, own.publisher);
    assert_eq!(own.place.as_deref(), Some("District 1"));
    assert_eq!(own.version, 1);

    let vienna = find(&entries, &w.ids[1]);
    assert_eq!(vienna.origin, w.vienna.node_id().to_string());
    assert_eq!(
        vienna.publisher, "Vienna",
        "the approved name, not the signed Wien"
    );
    assert_eq!(vienna.publisher_source, PublisherSource::Peer);
    assert_eq!(vienna.place.as_deref(), Some("District 2"));
    assert_eq!(vienna.version, 3);
    assert_eq!(vienna.updated, 1_764_000_000, "the signed time");
    assert_eq!(vienna.origin_key, hex(&Signer::public_key(&w.vienna)));
    // The document is uncompressed change chunks, which Automerge loads as is.
    let bytes = unhex(&vienna.document, verify::DOCUMENT_BYTES_MAX).unwrap();
    assert_eq!(bytes[8], 1, "an uncompressed change chunk (type 1)");
    let mut loaded = AutoCommit::load(&bytes).unwrap();
    let statement = SignedStatement::decode(&unhex(&vienna.statement, 4096).unwrap()).unwrap();
    let heads: Vec<[u8; 32]> = loaded.get_heads().iter().map(|h| h.0).collect();
    assert_eq!(heads, statement.body.heads);

    let modena = find(&entries, &w.ids[2]);
    assert_eq!(modena.origin, w.modena.node_id().to_string());
    assert_eq!(modena.publisher, "Modena", "the name the origin signed");
    assert_eq!(modena.publisher_source, PublisherSource::Signed);
    assert!(entries.iter().all(|e| !e.publisher_conflict));

    // The filter matches the publisher.
    let only = FeedFilter {
        city: Some("vienna".into()),
        ..FeedFilter::default()
    }
    .apply(&entries);
    assert_eq!(only.len(), 1);
    assert_eq!(only[0].id, w.ids[1]);
}

#[test]
fn a_retracted_publication_leaves_the_feed() {
    let mut me = Node::new();
    let kept = me.publish("kept", 1);
    let gone = me.publish("gone", 2);
    me.store.retract_publication(&gone).unwrap().unwrap();
    let ids: Vec<String> = me.entries().into_iter().map(|e| e.id).collect();
    assert_eq!(ids, [format!("urn:labnet:{kept}")]);
}

#[test]
fn verify_accepts_both_exports_and_names_each_origin() {
    let w = world();
    for (format, text) in [
        (ExportFormat::Atom, w.me.atom()),
        (ExportFormat::JsonFeed, w.me.json()),
    ] {
        let report = verify(&text, &[]).unwrap();
        assert_eq!(report.format, format);
        assert_eq!(report.exporter, Some(w.me.node_id()));
        assert!(report.all_ok(), "{format}:\n{}", lines(&report));
        assert_eq!(report.entries.len(), 3);
        let text = lines(&report);
        for (id, origin, publisher) in [
            (&w.ids[0], w.me.node_id(), ME),
            (&w.ids[1], w.vienna.node_id(), "Vienna"),
            (&w.ids[2], w.modena.node_id(), "Modena"),
        ] {
            let line = format!("ok   {id}  origin {origin}  {publisher}");
            assert!(text.contains(&line), "{format}: no '{line}' in\n{text}");
        }
        assert!(
            text.contains("(the name the exporting node approved; the origin signed \"Wien\")"),
            "{text}"
        );
    }
}

#[test]
fn one_changed_byte_fails_the_entry_it_is_in() {
    let w = world();
    let vienna = w.vienna.node_id().to_string();
    let modena = w.modena.node_id().to_string();
    let entries = w.me.entries();
    let v = find(&entries, &w.ids[1]).clone();
    let m = find(&entries, &w.ids[2]).clone();
    // The first entry at version 3 in the file's order (Vienna's or Modena's).
    let first_v3 = entries.iter().find(|e| e.version == 3).unwrap().id.clone();
    for (format, text) in [("atom", w.me.atom()), ("json", w.me.json())] {
        // One character of the hex field `hex`, `offset` characters into it.
        let in_hex = |hex: &str, offset| tamper(&text, hex, &hex[..8], offset);
        let cases: Vec<(&str, String, &str)> = vec![
            ("title", tamper(&text, &v.title, ":", 2), &w.ids[1]),
            (
                "summary",
                tamper(&text, &m.summary, "mentors", 0),
                &w.ids[2],
            ),
            (
                "statement",
                in_hex(&v.statement, v.statement.len() / 2),
                &w.ids[1],
            ),
            (
                "signature",
                in_hex(&m.statement, m.statement.len() - 3),
                &w.ids[2],
            ),
            (
                "document",
                in_hex(&v.document, v.document.len() / 2),
                &w.ids[1],
            ),
            (
                "figure",
                tamper(&text, "People reached 3", "39.28", 3),
                &w.ids[2],
            ),
            ("place", tamper(&text, "District 2", "2", 0), &w.ids[1]),
            (
                "origin swapped",
                text.replacen(&format!("{vienna}<"), &format!("{modena}<"), 1)
                    .replacen(&format!("\"{vienna}\""), &format!("\"{modena}\""), 1),
                &w.ids[1],
            ),
            (
                "version",
                text.replacen(
                    "<labnet:version>3</labnet:version>",
                    "<labnet:version>4</labnet:version>",
                    1,
                )
                .replacen("\"version\": 3", "\"version\": 4", 1),
                &first_v3,
            ),
        ];
        for (what, tampered, id) in cases {
            assert_ne!(tampered, text, "{format} {what}: nothing changed");
            let report = verify(&tampered, &[]).unwrap();
            assert_eq!(
                failures(&report),
                [id.to_string()],
                "{format} {what}:\n{}",
                lines(&report)
            );
            let line = report.entries.iter().find(|e| e.id == *id).unwrap().line();
            assert!(line.starts_with(&format!("FAIL {id}: ")), "{line}");
        }
    }
}

#[test]
fn an_element_or_field_the_exporter_does_not_write_fails() {
    let w = world();
    let atom = w.me.atom().replacen(
        "<summary>",
        "<link rel=\"alternate\" href=\"https://phish.example\"/><summary>",
        1,
    );
    let report = verify(&atom, &[]).unwrap();
    assert_eq!(failures(&report).len(), 1, "{}", lines(&report));
    let json = w.me.json().replacen(
        "\"summary\":",
        "\"url\": \"https://phish.example\", \"summary\":",
        1,
    );
    let report = verify(&json, &[]).unwrap();
    assert_eq!(failures(&report).len(), 1, "{}", lines(&report));
    assert!(lines(&report).contains("url is not something the exporter writes"));
}

#[test]
fn pins_hold_publishers_to_their_node_ids() {
    let w = world();
    let right = OriginPin {
        name: "vienna".into(),
        origin: w.vienna.node_id(),
    };
    let wrong = OriginPin {
        name: "Vienna".into(),
        origin: w.modena.node_id(),
    };
    for text in [w.me.atom(), w.me.json()] {
        assert!(verify(&text, std::slice::from_ref(&right))
            .unwrap()
            .all_ok());
        let report = verify(&text, std::slice::from_ref(&wrong)).unwrap();
        assert_eq!(failures(&report), [w.ids[1].clone()]);
        let text = lines(&report);
        assert!(text.contains("(--origin)"), "{text}");
        assert!(text.contains(&w.modena.node_id().to_string()), "{text}");
    }
    // A NodeId whose check symbol is '=' still parses (found by a random key).
    let with_equals = (0u8..=255)
        .map(|b| labnet_protocol::NodeId::from_public_key(&[b; 32]))
        .find(|n| n.to_string().ends_with('='))
        .expect("some key has '=' as its check symbol");
    assert_eq!(
        format!("Vienna={with_equals}").parse::<OriginPin>(),
        Ok(OriginPin {
            name: "Vienna".into(),
            origin: with_equals
        })
    );
    let id = w.vienna.node_id();
    assert_eq!(
        format!("Vienna={id}").parse::<OriginPin>(),
        Ok(OriginPin {
            name: "Vienna".into(),
            origin: id
        })
    );
    for bad in ["Vienna", "=ABC", "Vienna=not-a-node-id"] {
        let e = bad.parse::<OriginPin>().unwrap_err();
        assert!(
            e.contains("NAME=NODEID") || e.contains("NodeId"),
            "{bad}: {e}"
        );
    }
}

#[test]
fn a_document_posing_as_another_city_never_shows_under_it() {
    let mut me = Node::new();
    let vienna = Identity::generate().unwrap();
    let poser = Identity::generate().unwrap();
    let stranger = Identity::generate().unwrap();
    me.approve(vienna.node_id(), "Vienna");
    me.approve(poser.node_id(), "Ypsilanti");
    let (v_id, mut v_doc) = peer_publication(&vienna, "care", 1, "Vienna");
    me.receive(&vienna, &v_id, &mut v_doc, vienna.node_id());

    // 1. A direct peer's document signs Vienna's name: shown under the name
    //    our admin approved the peer under, with the peer's NodeId.
    let (named_id, mut named) = peer_publication(&poser, "named", 2, "Vienna");
    me.receive(&poser, &named_id, &mut named, poser.node_id());

    // 2. Content that claims Vienna's id and node outright, held under the
    //    poser's statement for an id of its own: not shown at all.
    let mut claims = body(vienna.node_id(), "claimed", 3, "Vienna");
    claims.practice.name = "Claimed practice".into();
    let mut claimed = sample_doc(&claims);
    let claimed_id = publication_id(poser.node_id(), "claimed").unwrap();
    me.receive(&poser, &claimed_id, &mut claimed, poser.node_id());

    // 3. A city we do not know, relayed, signing Vienna's name: shown as
    //    Vienna (the name it signed) with its own NodeId, and both Viennas
    //    are flagged.
    let (s_id, mut s_doc) = peer_publication(&stranger, "stranger", 4, "Vienna");
    me.receive(&stranger, &s_id, &mut s_doc, vienna.node_id());

    let entries = me.entries();
    assert_eq!(entries.len(), 3, "{entries:#?}");
    assert!(entries.iter().all(|e| e.title != "Claimed practice"));
    let from_vienna: Vec<&str> = entries
        .iter()
        .filter(|e| e.origin == vienna.node_id().to_string())
        .map(|e| e.id.as_str())
        .collect();
    assert_eq!(from_vienna, [format!("urn:labnet:{v_id}")]);
    let named = find(&entries, &format!("urn:labnet:{named_id}"));
    assert_eq!(named.origin, poser.node_id().to_string());
    assert_eq!(named.publisher, "Ypsilanti");
    assert!(!named.publisher_conflict);
    let stranger_entry = find(&entries, &format!("urn:labnet:{s_id}"));
    assert_eq!(stranger_entry.origin, stranger.node_id().to_string());
    assert_eq!(stranger_entry.publisher, "Vienna");
    assert_eq!(stranger_entry.publisher_source, PublisherSource::Signed);
    assert!(stranger_entry.publisher_conflict);
    assert!(find(&entries, &format!("urn:labnet:{v_id}")).publisher_conflict);

    // The export verifies, says the name is shared, and pinning Vienna's
    // NodeId catches the stranger.
    for text in [
        to_atom(&me.info(), &entries).unwrap(),
        to_json_feed(&me.info(), &entries).unwrap(),
    ] {
        let report = verify(&text, &[]).unwrap();
        assert!(report.all_ok(), "{}", lines(&report));
        assert!(lines(&report).contains("another origin uses this name too"));
        let pin = OriginPin {
            name: "Vienna".into(),
            origin: vienna.node_id(),
        };
        let report = verify(&text, &[pin]).unwrap();
        assert_eq!(failures(&report), [format!("urn:labnet:{s_id}")]);
    }
    // Hiding the conflict fails both entries.
    let json = to_json_feed(&me.info(), &entries).unwrap().replace(
        "\"publisher_conflict\": true",
        "\"publisher_conflict\": false",
    );
    let report = verify(&json, &[]).unwrap();
    assert_eq!(failures(&report).len(), 2, "{}", lines(&report));
}

#[test]
fn an_entry_marked_as_ours_must_be_the_exporters() {
    let w = world();
    // Another node re-exports our feed as its own.
    let other = Identity::generate().unwrap().node_id();
    let text = to_atom(&FeedInfo::for_node(&other.to_string()), &w.me.entries()).unwrap();
    let report = verify(&text, &[]).unwrap();
    assert_eq!(failures(&report), [w.ids[0].clone()], "{}", lines(&report));
}

#[test]
fn what_is_not_a_feed_is_an_error_and_an_oversized_document_fails_its_entry() {
    assert!(matches!(
        verify("hello", &[]),
        Err(VerifyError::NotAFeed(_))
    ));
    assert!(matches!(
        verify("<rss version=\"2.0\"/>", &[]),
        Err(VerifyError::NotAFeed(_))
    ));
    assert!(matches!(verify("<feed", &[]), Err(VerifyError::Xml(_))));
    assert!(matches!(
        verify("{\"items\": []}", &[]),
        Err(VerifyError::NotAFeed(_))
    ));
    assert!(matches!(verify("{", &[]), Err(VerifyError::Json(_))));
    let w = world();
    let entries = w.me.entries();
    let v = find(&entries, &w.ids[1]);
    let huge = "00".repeat(verify::DOCUMENT_BYTES_MAX + 1);
    let text = w.me.json().replace(&v.document, &huge);
    let report = verify(&text, &[]).unwrap();
    assert_eq!(failures(&report), [w.ids[1].clone()]);
    assert!(lines(&report).contains("document:"), "{}", lines(&report));
}
