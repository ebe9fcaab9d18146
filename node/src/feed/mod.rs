//! Feeds: what a node shows of the publications it holds, and the exports an
//! international network passes on to its members.
//!
//! A [`FeedEntry`] is one publication as a reader sees it: who published it,
//! the practice's title and summary, its area and indicators, when it last
//! changed, and the proof of all that. Publications travel through relays, so
//! an entry's id, origin and version come from the publication's **verified
//! statement** (signed by its origin, see `labnet_protocol::statement`), never
//! from the document's own content, which could name any city:
//!
//! - `id` is `urn:labnet:<publication id>`, the id the origin signed (it names
//!   the origin's key) without its generation suffix (`:g2`...): a re-issued
//!   publication keeps its entry id;
//! - `origin` is the NodeId that signed it, `origin_key` its Ed25519 key;
//! - `publisher` is the name this node's admin approved for that origin when it
//!   is a direct peer, our own name for our own publications, and otherwise the
//!   name the origin signed (the document's `meta.origin_city`, which the
//!   signed heads authenticate); `publisher_source` says which. Two origins
//!   shown under the same name (case-insensitive) are both flagged
//!   `publisher_conflict`;
//! - `place` is the practice's own `city` field (a district, a region): where
//!   the practice happens, never who published it;
//! - `statement` and `document` carry the signed statement and the publication
//!   document, so a reader can check the entry offline ([`verify`]).
//!
//! [`collect_entries`] builds the entries from the store's statements.
//! [`FeedFilter`] selects by publisher, area and date, and the exporters in
//! [`export`] write the formats the networks' tools already read: Atom 1.0,
//! JSON Feed 1.1 and CSV, each entry with its proof (CSV: origin and place
//! only). [`verify::verify`] checks an Atom or JSON Feed export offline.
//!
//! Everything here is already anonymized: entries are built from publications,
//! which hold only what the anonymizer let through.

pub mod export;
pub mod verify;

use std::collections::{HashMap, HashSet};

use automerge::{AutoCommit, ChangeHash};
use labnet_protocol::chunk::check_change_chunk;
use labnet_protocol::statement::SignedStatement;
use labnet_protocol::NodeId;
use serde::{Deserialize, Serialize};

use crate::share::{check_publication_shape, Publication};
use crate::store::{DocumentKind, StatementRow, Store, StoreError};

pub use export::{indicator_text, rfc3339, to_atom, to_csv, to_json_feed, FeedError};

/// The XML namespace of labnet's Atom extension elements.
pub const ATOM_EXTENSION_NS: &str = "urn:labnet:feed:1";

/// The feed id of a publication: `urn:labnet:<publication id>` without its
/// generation suffix, so a re-issued publication keeps its entry's id.
pub fn entry_id(publication: &str) -> String {
    format!(
        "urn:labnet:{}",
        crate::share::feed_publication_id(publication)
    )
}

/// One publication as readers see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedEntry {
    /// Stable id: `urn:labnet:<publication id>`, from the signed statement.
    pub id: String,
    /// The origin that signed the publication, as a NodeId is printed.
    pub origin: String,
    /// Who published it: see [`PublisherSource`] for where the name comes from.
    pub publisher: String,
    /// Where [`FeedEntry::publisher`] comes from.
    pub publisher_source: PublisherSource,
    /// Another origin is shown under the same publisher name (compared
    /// case-insensitively): both are flagged, and a reader should look at the
    /// NodeIds.
    pub publisher_conflict: bool,
    /// The publisher again: the field `feed list --json` readers and the
    /// `--city` filter know. Always equal to [`FeedEntry::publisher`].
    pub city: String,
    /// Where the practice happens, as the practice says (its `city` field: a
    /// district, a region); `None` when it gives none. Never the publisher.
    pub place: Option<String>,
    /// The practice's name.
    pub title: String,
    /// Its description (anonymized).
    pub summary: String,
    /// `education` or `care`, when the city gave one.
    pub area: Option<String>,
    /// A public link to the practice, when there is one.
    pub link: Option<String>,
    /// When the origin issued this version, unix seconds (signed).
    pub updated: i64,
    /// Results as published (suppressed figures are absent).
    pub indicators: Vec<FeedIndicator>,
    /// The signed version number.
    pub version: u64,
    /// The origin's Ed25519 public key, hex (its hash is `origin`).
    pub origin_key: String,
    /// The encoded signed statement, hex.
    pub statement: String,
    /// The publication document, hex: its changes as uncompressed Automerge
    /// change chunks, one after the other (what a peer receives; Automerge's
    /// `AutoCommit::load` reads it too). Applied, they give exactly the
    /// statement's heads.
    pub document: String,
}

/// Where an entry's publisher name comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PublisherSource {
    /// This node's own name: the publication is ours.
    Own,
    /// The name this node's admin approved the origin under (a direct peer,
    /// kept after a revocation).
    Peer,
    /// The name the origin signed (`meta.origin_city` of the signed document):
    /// the origin is not a peer of ours.
    Signed,
}

impl PublisherSource {
    /// The name exports write.
    pub fn as_str(self) -> &'static str {
        match self {
            PublisherSource::Own => "own",
            PublisherSource::Peer => "peer",
            PublisherSource::Signed => "signed",
        }
    }

    /// The source an export names.
    pub fn from_name(name: &str) -> Option<PublisherSource> {
        match name {
            "own" => Some(PublisherSource::Own),
            "peer" => Some(PublisherSource::Peer),
            "signed" => Some(PublisherSource::Signed),
            _ => None,
        }
    }
}

/// The publisher an entry shows, and where the name comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publisher {
    /// The name shown.
    pub name: String,
    /// Where it comes from.
    pub source: PublisherSource,
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
    /// Only this publisher (case-insensitive; `--city`).
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
            .is_none_or(|c| c.to_lowercase() == entry.publisher.to_lowercase());
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
    /// The entry of a publication, from its statement: the id, origin, version
    /// and time come from `statement`, the text from `publication`, and
    /// `document` is the publication's changes ([`document_bytes`]).
    ///
    /// Checks nothing: [`collect_entries`] and [`verify`] call it only once the
    /// statement verifies and the document has its signed heads.
    /// `publisher_conflict` starts false ([`flag_publisher_conflicts`]).
    pub fn from_publication(
        statement: &SignedStatement,
        publication: &Publication,
        document: &[u8],
        publisher: Publisher,
    ) -> FeedEntry {
        let s = &statement.body;
        let p = &publication.body().practice;
        FeedEntry {
            id: entry_id(s.publication.as_str()),
            origin: s.origin().to_string(),
            city: publisher.name.clone(),
            publisher: publisher.name,
            publisher_source: publisher.source,
            publisher_conflict: false,
            place: (!p.city.trim().is_empty()).then(|| p.city.clone()),
            title: p.name.clone(),
            summary: p.description.clone(),
            area: p.thematic_area.map(|a| a.as_str().to_string()),
            link: p.link.clone(),
            updated: i64::try_from(s.issued_at).unwrap_or(i64::MAX),
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
            version: s.version,
            origin_key: hex(&s.origin_key),
            statement: hex(&statement.encode()),
            document: hex(document),
        }
    }
}

/// The entry of a publication under an unsigned statement that names
/// `origin_key` as its origin's key (the signature is zeros): for tests of
/// what an entry shows, which do not verify it. Tests and benchmarks only.
#[cfg(any(test, feature = "test-support"))]
pub fn unsigned_entry(
    publication: &Publication,
    origin_key: [u8; 32],
    issued_at: u64,
    publisher: &str,
) -> Result<FeedEntry, crate::share::ShareError> {
    use labnet_protocol::statement::{ScopeClass, VersionStatement};
    let mut doc = publication.doc().clone();
    let body = VersionStatement {
        publication: publication.doc_id()?,
        origin_key,
        version: 1,
        heads: sorted(doc.get_heads()).iter().map(|h| h.0).collect(),
        scope: ScopeClass::Partners,
        retracted: false,
        issued_at,
    };
    let statement = SignedStatement::from_parts(body, &[0; 64])
        .map_err(|e| crate::share::ShareError::Internal(e.to_string()))?;
    Ok(FeedEntry::from_publication(
        &statement,
        publication,
        &document_bytes(&mut doc),
        Publisher {
            name: publisher.to_string(),
            source: PublisherSource::Own,
        },
    ))
}

/// Flags every entry whose publisher name (case-insensitive) is shown for
/// more than one origin.
pub fn flag_publisher_conflicts(entries: &mut [FeedEntry]) {
    let mut origins: HashMap<String, HashSet<&str>> = HashMap::new();
    for e in entries.iter() {
        origins
            .entry(e.publisher.to_lowercase())
            .or_default()
            .insert(e.origin.as_str());
    }
    let conflicting: HashSet<String> = origins
        .into_iter()
        .filter(|(_, o)| o.len() > 1)
        .map(|(name, _)| name)
        .collect();
    for e in entries.iter_mut() {
        e.publisher_conflict = conflicting.contains(&e.publisher.to_lowercase());
    }
}

/// A publication document as entries carry it: its changes as uncompressed
/// change chunks, in the document's order. A change that cannot be checked
/// (it cannot happen to a document the store holds) is kept as Automerge
/// gives it, and [`verify`] refuses the entry.
pub fn document_bytes(doc: &mut AutoCommit) -> Vec<u8> {
    let mut out = Vec::new();
    for change in doc.get_changes(&[]) {
        match check_change_chunk(change.raw_bytes()) {
            Ok(checked) => out.extend_from_slice(checked.as_bytes()),
            Err(_) => out.extend_from_slice(change.raw_bytes()),
        }
    }
    out
}

/// Every publication this node can show, ours and the ones it received, newest
/// first, built from the statements it holds: for each statement that is not
/// a retraction, the statement must decode and verify, agree with its row,
/// the stored document must have exactly the signed heads and be a valid
/// publication of that origin. Anything else is skipped and logged (the
/// publication's id only, never its content), never shown half-read.
///
/// `local` and `local_name` are this node's NodeId and name: the publisher of
/// our own publications.
pub fn collect_entries(
    store: &Store,
    local: NodeId,
    local_name: &str,
) -> Result<Vec<FeedEntry>, StoreError> {
    let approved: HashMap<NodeId, String> = store
        .peers()?
        .into_iter()
        .filter_map(|p| p.name.map(|name| (p.node_id, name)))
        .collect();
    let mut entries = Vec::new();
    for row in store.statements()? {
        if row.retracted {
            continue;
        }
        match entry_of(store, &row, local, local_name, &approved)? {
            Ok(entry) => entries.push(entry),
            Err(why) => {
                tracing::warn!(doc = %row.doc_id, why, "not shown in the feed");
            }
        }
    }
    flag_publisher_conflicts(&mut entries);
    Ok(FeedFilter::default().apply(&entries))
}

/// The entry of one statement row, or why it is not shown (a fixed sentence:
/// nothing from the peer's bytes goes into the log).
fn entry_of(
    store: &Store,
    row: &StatementRow,
    local: NodeId,
    local_name: &str,
    approved: &HashMap<NodeId, String>,
) -> Result<Result<FeedEntry, &'static str>, StoreError> {
    let Ok(statement) = SignedStatement::decode(&row.signed) else {
        return Ok(Err("its statement does not decode"));
    };
    if statement.verify().is_err() {
        return Ok(Err("its statement does not verify"));
    }
    let s = &statement.body;
    let origin = s.origin();
    if s.publication.as_str() != row.doc_id
        || origin != row.origin
        || s.version != row.version
        || s.retracted
    {
        return Ok(Err("its statement disagrees with the store's row"));
    }
    let Some((kind, mut doc)) = store.load_document(&row.doc_id)? else {
        return Ok(Err("no document is held for its statement"));
    };
    let expected_kind = if row.via.is_none() {
        DocumentKind::Publication
    } else {
        DocumentKind::Replica
    };
    if kind != expected_kind {
        return Ok(Err("its document is of the wrong kind"));
    }
    let signed: Vec<ChangeHash> = s.heads.iter().map(|h| ChangeHash(*h)).collect();
    if sorted(doc.get_heads()) != signed {
        return Ok(Err("its document does not have the signed heads"));
    }
    if check_publication_shape(&doc, &s.publication, origin).is_err() {
        return Ok(Err("its document is not a valid publication of its origin"));
    }
    let document = document_bytes(&mut doc);
    let Ok(publication) = Publication::from_replica(doc) else {
        return Ok(Err("its document is not a valid publication"));
    };
    let publisher = if origin == local {
        Publisher {
            name: local_name.to_string(),
            source: PublisherSource::Own,
        }
    } else if let Some(name) = approved.get(&origin) {
        Publisher {
            name: name.clone(),
            source: PublisherSource::Peer,
        }
    } else {
        Publisher {
            name: publication.body().meta.origin_city.clone(),
            source: PublisherSource::Signed,
        }
    };
    Ok(Ok(FeedEntry::from_publication(
        &statement,
        &publication,
        &document,
        publisher,
    )))
}

fn sorted(mut heads: Vec<ChangeHash>) -> Vec<ChangeHash> {
    heads.sort();
    heads.dedup();
    heads
}

/// Feed-level metadata.
#[derive(Debug, Clone)]
pub struct FeedInfo {
    /// Stable id of the feed, e.g. `urn:labnet:feed:<NodeId>`.
    pub id: String,
    /// Title shown by feed readers.
    pub title: String,
}

/// What a feed id starts with; the exporting node's NodeId follows.
pub const FEED_ID_PREFIX: &str = "urn:labnet:feed:";

impl FeedInfo {
    /// The feed of node `node_id`, as `labnet feed export` and the feed URLs
    /// title it.
    pub fn for_node(node_id: &str) -> FeedInfo {
        FeedInfo {
            id: format!("{FEED_ID_PREFIX}{node_id}"),
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

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

/// Reads hex (either case) of at most `max` bytes; the error says what is wrong.
pub(crate) fn unhex(text: &str, max: usize) -> Result<Vec<u8>, String> {
    let text = text.as_bytes();
    if text.len() / 2 > max {
        return Err(format!(
            "{} bytes, the most allowed is {max}",
            text.len() / 2
        ));
    }
    if !text.len().is_multiple_of(2) {
        return Err("not hex: an odd number of digits".into());
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err("not hex: a character other than 0-9 a-f".to_string()),
    };
    text.chunks_exact(2)
        .map(|pair| Ok((digit(pair[0])? << 4) | digit(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod signed_tests;
