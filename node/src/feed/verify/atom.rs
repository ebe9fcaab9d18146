//! Reading an Atom export for [`verify`](super::verify): its entries' claims, and
//! the element-by-element comparison with what the exporter writes.

use labnet_protocol::NodeId;
use roxmltree::Node;

use crate::feed::export::{atom_entry_alone, ATOM_NS};
use crate::feed::{FeedEntry, PublisherSource, ATOM_EXTENSION_NS};

use super::{check_signed, exporter_of, printable, Checked, Claims, VerifyError};

/// The exporter the id of an Atom feed names, and the verdict on each of its
/// entries.
pub(super) fn atom_entries(text: &str) -> Result<(Option<NodeId>, Vec<Checked>), VerifyError> {
    let doc = roxmltree::Document::parse(text).map_err(|e| VerifyError::Xml(e.to_string()))?;
    let feed = doc.root_element();
    if feed.tag_name().name() != "feed" || feed.tag_name().namespace() != Some(ATOM_NS) {
        return Err(VerifyError::NotAFeed(format!(
            "the root element is <{}>, not an Atom <feed>",
            printable(&xml_name(feed))
        )));
    }
    let feed_id = feed.children().find(|c| is(*c, ATOM_NS, "id")).map(text_of);
    let exporter = exporter_of(feed_id.as_deref());
    let checked = feed
        .children()
        .filter(|c| is(*c, ATOM_NS, "entry"))
        .enumerate()
        .map(|(n, entry)| {
            let id = entry
                .children()
                .find(|c| is(*c, ATOM_NS, "id"))
                .map(text_of)
                .unwrap_or_else(|| format!("(entry {} without an id)", n + 1));
            let outcome = atom_claims(entry, &id)
                .and_then(|claims| check_signed(&claims))
                .and_then(|(expected, verified)| {
                    compare_atom(entry, &expected)?;
                    Ok(verified)
                });
            (id, outcome)
        })
        .collect();
    Ok((exporter, checked))
}

fn is(node: Node<'_, '_>, ns: &str, name: &str) -> bool {
    node.is_element() && node.tag_name().namespace() == Some(ns) && node.tag_name().name() == name
}

/// The text inside an element (its text and CDATA children, joined).
fn text_of(node: Node<'_, '_>) -> String {
    node.children()
        .filter(Node::is_text)
        .filter_map(|t| t.text())
        .collect()
}

/// An element's name as a reader knows it: `title`, `labnet:statement`.
fn xml_name(node: Node<'_, '_>) -> String {
    let name = node.tag_name();
    match name.namespace() {
        Some(ATOM_NS) => name.name().to_string(),
        Some(ATOM_EXTENSION_NS) => format!("labnet:{}", name.name()),
        Some(ns) => format!("{{{ns}}}{}", name.name()),
        None => name.name().to_string(),
    }
}

fn atom_claims(entry: Node<'_, '_>, id: &str) -> Result<Claims, String> {
    let ext = |name: &str| entry.children().find(|c| is(*c, ATOM_EXTENSION_NS, name));
    let required = |name: &str| {
        ext(name).ok_or_else(|| format!("no <labnet:{name}>: not a signed labnet entry"))
    };
    let publisher = required("publisher")?;
    let source = publisher.attribute("source").unwrap_or_default();
    let source = PublisherSource::from_name(source).ok_or_else(|| {
        format!(
            "<labnet:publisher source=\"{}\">: use own, peer or signed",
            printable(source)
        )
    })?;
    let conflict = match text_of(required("publisher-conflict")?).as_str() {
        "true" => true,
        "false" => false,
        other => {
            return Err(format!(
                "<labnet:publisher-conflict> is \"{}\", not true or false",
                printable(other)
            ))
        }
    };
    Ok(Claims {
        id: id.to_string(),
        origin: text_of(required("origin")?),
        statement: text_of(required("statement")?),
        document: text_of(required("document")?),
        publisher: text_of(publisher),
        source,
        conflict,
    })
}

/// Compares an entry with the one the exporter writes for its statement and
/// document, element by element.
fn compare_atom(entry: Node<'_, '_>, expected: &FeedEntry) -> Result<(), String> {
    let xml = atom_entry_alone(expected).map_err(|e| e.to_string())?;
    let doc = roxmltree::Document::parse(&xml).map_err(|e| e.to_string())?;
    let want = doc
        .root_element()
        .first_element_child()
        .ok_or("the exporter wrote no entry")?;
    same_element(entry, want)
}

fn same_element(got: Node<'_, '_>, want: Node<'_, '_>) -> Result<(), String> {
    let mismatch = || {
        format!(
            "<{}> does not match the signed statement and document",
            xml_name(want)
        )
    };
    let attributes = |n: Node<'_, '_>| {
        let mut a: Vec<(Option<String>, String, String)> = n
            .attributes()
            .map(|a| {
                (
                    a.namespace().map(str::to_string),
                    a.name().to_string(),
                    a.value().to_string(),
                )
            })
            .collect();
        a.sort();
        a
    };
    if attributes(got) != attributes(want) {
        return Err(mismatch());
    }
    let got_children: Vec<Node<'_, '_>> = got.children().filter(Node::is_element).collect();
    let want_children: Vec<Node<'_, '_>> = want.children().filter(Node::is_element).collect();
    if want_children.is_empty() && got_children.is_empty() {
        return if text_of(got) == text_of(want) {
            Ok(())
        } else {
            Err(mismatch())
        };
    }
    if !text_of(got).trim().is_empty() {
        return Err(format!("<{}> holds text it should not", xml_name(got)));
    }
    for i in 0..got_children.len().max(want_children.len()) {
        match (got_children.get(i), want_children.get(i)) {
            (Some(g), Some(w)) if g.tag_name() == w.tag_name() => same_element(*g, *w)?,
            (Some(g), Some(w)) => {
                return Err(format!(
                    "<{}> where the exporter writes <{}>",
                    printable(&xml_name(*g)),
                    xml_name(*w)
                ))
            }
            (Some(g), None) => {
                return Err(format!(
                    "<{}> is not something the exporter writes there",
                    printable(&xml_name(*g))
                ))
            }
            (None, Some(w)) => return Err(format!("<{}> is missing", xml_name(*w))),
            (None, None) => {}
        }
    }
    Ok(())
}
