//! Checking an exported feed offline: `labnet feed verify`.
//!
//! [`verify`] takes the text of an Atom or JSON Feed export (the format is
//! detected) and checks every entry on its own, with no node and no data
//! directory:
//!
//! 1. the statement decodes and its signature verifies against the key it
//!    carries, whose hash is the NodeId the publication id names (a key can
//!    only vouch for its own publications); it is not a retraction;
//! 2. the entry's stated origin is that NodeId, its id is
//!    `urn:labnet:<the signed publication id>`;
//! 3. the document (at most [`DOCUMENT_BYTES_MAX`] bytes) is a sequence of
//!    uncompressed Automerge change chunks, each checked before Automerge sees
//!    it, none twice; applied, they give exactly the signed heads, and the
//!    result is a valid publication of that origin;
//! 4. the entry is exactly what the exporter writes for that statement and
//!    document: it is rendered again and compared element by element (Atom:
//!    names, attributes and text; JSON Feed: every field), so one changed byte
//!    in a title, a figure, a link, the place, the version, the time, the
//!    statement or the document fails the entry, and so does an element or
//!    field the exporter does not write;
//! 5. the publisher: when the entry says it is the name the origin signed, it
//!    must be; when it says the exporting node named it (its own name, or the
//!    name its admin approved a peer under), nobody signed the name and the
//!    report says so, with the name the origin signed. Two origins under one
//!    publisher name must both be flagged, and an entry given as the
//!    exporter's own must come from the node the feed's id names. With
//!    [`OriginPin`]s (`--origin NAME=NODEID`), an entry whose publisher is
//!    NAME must come from NODEID: that is how a reader pins the NodeIds it
//!    trusts.
//!
//! What it cannot tell: whether a version is the newest its origin issued
//! (an older signed version verifies), and whether names the exporter gave
//! are right (pin them).

mod atom;
mod json;

use crate::sync::session::guarded;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use automerge::{AutoCommit, Change, ChangeHash};
use labnet_protocol::chunk::{check_change_chunks, CHANGES_PER_DELIVERY_MAX, CHUNK_MAGIC};
use labnet_protocol::statement::{SignedStatement, STATEMENT_LEN_MAX};
use labnet_protocol::NodeId;

use super::{sorted, unhex, FeedEntry, Publisher, PublisherSource, FEED_ID_PREFIX};
use crate::share::{check_publication_shape, Publication};
use atom::atom_entries;
use json::json_entries;

/// The largest feed file [`verify`] reads.
pub const FEED_FILE_BYTES_MAX: usize = 128 * 1024 * 1024;

/// The largest document an entry may carry, decoded.
pub const DOCUMENT_BYTES_MAX: usize = 1024 * 1024;

/// How much of a string from the file a report line shows.
const SHOWN_CHARS_MAX: usize = 160;

/// `--origin NAME=NODEID`: entries whose publisher is `name` (compared
/// case-insensitively) must come from `origin`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPin {
    /// The publisher name.
    pub name: String,
    /// The NodeId it must come from.
    pub origin: NodeId,
}

impl FromStr for OriginPin {
    type Err = String;

    fn from_str(s: &str) -> Result<OriginPin, String> {
        // The first '=': a NodeId's check symbol may itself be '=' (one of
        // `*~$=`), so the last one can be part of the NodeId.
        let Some((name, id)) = s.split_once('=') else {
            return Err(format!(
                "'{s}': write NAME=NODEID, e.g. Fuenlabrada=1JGNN-EZ9WW-2BKE4-C7THM-CF8TA-6QT3V-K9JMQ"
            ));
        };
        let name = name.trim();
        if name.is_empty() {
            return Err(format!(
                "'{s}': the name before '=' is empty; write NAME=NODEID"
            ));
        }
        let origin = id
            .trim()
            .parse::<NodeId>()
            .map_err(|e| format!("'{}' after '=' is not a NodeId: {e}", id.trim()))?;
        Ok(OriginPin {
            name: name.to_string(),
            origin,
        })
    }
}

/// The two export formats [`verify`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// Atom 1.0.
    Atom,
    /// JSON Feed 1.1.
    JsonFeed,
}

impl fmt::Display for ExportFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ExportFormat::Atom => "Atom",
            ExportFormat::JsonFeed => "JSON Feed",
        })
    }
}

/// Why a file could not be checked at all (each entry's own verdict is in the
/// [`VerifyReport`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Larger than [`FEED_FILE_BYTES_MAX`].
    #[error("{0} bytes; a feed to verify has at most {FEED_FILE_BYTES_MAX}")]
    TooLarge(usize),
    /// Neither an Atom feed nor a JSON Feed.
    #[error("not an Atom feed or a JSON Feed: {0}")]
    NotAFeed(String),
    /// Looks like XML but does not parse.
    #[error("not well-formed XML: {0}")]
    Xml(String),
    /// Looks like JSON but does not parse.
    #[error("not valid JSON: {0}")]
    Json(String),
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifyReport {
    /// The file's format.
    pub format: ExportFormat,
    /// The exporting node, when the feed's id names one.
    pub exporter: Option<NodeId>,
    /// Every entry, in the file's order.
    pub entries: Vec<EntryReport>,
}

impl VerifyReport {
    /// Every entry verified.
    pub fn all_ok(&self) -> bool {
        self.entries.iter().all(|e| e.outcome.is_ok())
    }

    /// The entries that did not verify.
    pub fn failed(&self) -> impl Iterator<Item = &EntryReport> {
        self.entries.iter().filter(|e| e.outcome.is_err())
    }
}

/// One entry's verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryReport {
    /// The entry's id as the file gives it (`entry N` when it gives none).
    pub id: String,
    /// What it verified as, or why it failed.
    pub outcome: Result<VerifiedEntry, String>,
}

/// What a verified entry stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedEntry {
    /// The origin that signed it.
    pub origin: NodeId,
    /// The publisher shown.
    pub publisher: String,
    /// Where the exporter says the name comes from.
    pub source: PublisherSource,
    /// The name the origin signed (`meta.origin_city`).
    pub signed_name: String,
    /// Another origin in the file shows the same publisher name.
    pub conflict: bool,
}

impl EntryReport {
    /// The line `labnet feed verify` prints: `ok   <id>  origin <NodeId>
    /// <publisher>` (with a note when the name is not the one the origin
    /// signed, or is shared), or `FAIL <id>: <reason>`. Text from the file is
    /// shown without control characters, and cut when long.
    pub fn line(&self) -> String {
        let id = printable(&self.id);
        match &self.outcome {
            Err(reason) => format!("FAIL {id}: {}", clean(reason)),
            Ok(v) => {
                let mut line = format!(
                    "ok   {id}  origin {}  {}",
                    v.origin,
                    printable(&v.publisher)
                );
                if v.publisher != v.signed_name {
                    let by = match v.source {
                        PublisherSource::Own => "the exporting node's own name",
                        _ => "the name the exporting node approved",
                    };
                    line.push_str(&format!(
                        "  ({by}; the origin signed \"{}\")",
                        printable(&v.signed_name)
                    ));
                }
                if v.conflict {
                    line.push_str("  (another origin uses this name too)");
                }
                line
            }
        }
    }
}

/// Text from the file as a terminal line may show it: control characters
/// escaped, cut after [`SHOWN_CHARS_MAX`] characters.
fn printable(s: &str) -> String {
    let mut out = clean(&s.chars().take(SHOWN_CHARS_MAX).collect::<String>());
    if s.chars().nth(SHOWN_CHARS_MAX).is_some() {
        out.push('…');
    }
    out
}

/// Control characters escaped (a reason may quote the file).
fn clean(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

/// Checks an exported feed; see the module docs. `Err` only when the text is
/// not a feed at all; each entry's verdict is in the report.
pub fn verify(text: &str, pins: &[OriginPin]) -> Result<VerifyReport, VerifyError> {
    if text.len() > FEED_FILE_BYTES_MAX {
        return Err(VerifyError::TooLarge(text.len()));
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let (format, exporter, mut checked) = match text.trim_start().chars().next() {
        Some('<') => {
            let (exporter, entries) = atom_entries(text)?;
            (ExportFormat::Atom, exporter, entries)
        }
        Some('{') => {
            let (exporter, entries) = json_entries(text)?;
            (ExportFormat::JsonFeed, exporter, entries)
        }
        _ => {
            return Err(VerifyError::NotAFeed(
                "it starts with neither '<' (Atom) nor '{' (JSON Feed)".into(),
            ))
        }
    };
    for (_, outcome) in checked.iter_mut() {
        if let Ok(v) = outcome {
            if v.source == PublisherSource::Own {
                if let Some(exporter) = exporter.filter(|n| *n != v.origin) {
                    *outcome = Err(format!(
                        "the publisher is given as the exporting node's own name, but the feed is {exporter}'s and the entry's origin is {}",
                        v.origin
                    ));
                }
            }
        }
    }
    across_entries(&mut checked, pins);
    Ok(VerifyReport {
        format,
        exporter,
        entries: checked
            .into_iter()
            .map(|(id, outcome)| EntryReport { id, outcome })
            .collect(),
    })
}

/// An entry's id and its verdict so far.
type Checked = (String, Result<VerifiedEntry, String>);

/// The checks that look at more than one entry: ids given twice, publisher
/// conflicts left unflagged, and the pins.
fn across_entries(checked: &mut [Checked], pins: &[OriginPin]) {
    let mut seen = HashSet::new();
    for (id, outcome) in checked.iter_mut() {
        if !seen.insert(id.clone()) && outcome.is_ok() {
            *outcome = Err("the feed holds this entry twice".into());
        }
    }
    let mut origins: HashMap<String, HashSet<NodeId>> = HashMap::new();
    for (_, outcome) in checked.iter() {
        if let Ok(v) = outcome {
            origins
                .entry(v.publisher.to_lowercase())
                .or_default()
                .insert(v.origin);
        }
    }
    for (_, outcome) in checked.iter_mut() {
        let Ok(v) = outcome else { continue };
        let name = v.publisher.to_lowercase();
        let shared = origins.get(&name).is_some_and(|o| o.len() > 1);
        if shared && !v.conflict {
            *outcome = Err(format!(
                "another origin in this feed is shown as \"{}\" too, but the entry does not flag the conflict",
                printable(&v.publisher)
            ));
            continue;
        }
        let pinned: Vec<NodeId> = pins
            .iter()
            .filter(|p| p.name.to_lowercase() == name)
            .map(|p| p.origin)
            .collect();
        if !pinned.is_empty() && !pinned.contains(&v.origin) {
            let wanted: Vec<String> = pinned.iter().map(NodeId::to_string).collect();
            *outcome = Err(format!(
                "\"{}\" must come from {} (--origin), but this entry's origin is {}",
                printable(&v.publisher),
                wanted.join(" or "),
                v.origin
            ));
        }
    }
}

/// What an entry claims, before anything is checked.
struct Claims {
    id: String,
    origin: String,
    statement: String,
    document: String,
    publisher: String,
    source: PublisherSource,
    conflict: bool,
}

/// Checks the statement and the document an entry carries, and returns the
/// entry the exporter would write for them (with the entry's own publisher
/// name, source and conflict flag, which nobody signs).
fn check_signed(claims: &Claims) -> Result<(FeedEntry, VerifiedEntry), String> {
    let bytes =
        unhex(&claims.statement, STATEMENT_LEN_MAX).map_err(|e| format!("statement: {e}"))?;
    let statement = SignedStatement::decode(&bytes).map_err(|e| format!("statement: {e}"))?;
    statement.verify().map_err(|e| format!("statement: {e}"))?;
    let s = &statement.body;
    if s.retracted {
        return Err("the statement retracts the publication".into());
    }
    let origin = s.origin();
    let stated: NodeId = claims.origin.trim().parse().map_err(|e| {
        format!(
            "the stated origin '{}' is not a NodeId: {e}",
            printable(&claims.origin)
        )
    })?;
    if stated != origin {
        return Err(format!(
            "the entry names origin {stated}, but its statement is signed by {origin}"
        ));
    }
    let id = super::entry_id(s.publication.as_str());
    if claims.id != id {
        return Err(format!(
            "the id does not name the signed publication ({id})"
        ));
    }
    let document =
        unhex(&claims.document, DOCUMENT_BYTES_MAX).map_err(|e| format!("document: {e}"))?;
    let (doc, heads) = apply_document(&document).map_err(|e| format!("document: {e}"))?;
    let signed: Vec<ChangeHash> = s.heads.iter().map(|h| ChangeHash(*h)).collect();
    if heads != signed {
        return Err(format!(
            "document: its {} heads are not the {} the origin signed",
            heads.len(),
            signed.len()
        ));
    }
    guarded(|| check_publication_shape(&doc, &s.publication, origin))
        .ok_or("document: Automerge panicked reading it")?
        .map_err(|e| format!("document: {e}"))?;
    let publication = guarded(|| Publication::from_replica(doc))
        .ok_or("document: Automerge panicked reading it")?
        .map_err(|e| format!("document: {e}"))?;
    let signed_name = publication.body().meta.origin_city.clone();
    if claims.source == PublisherSource::Signed && claims.publisher != signed_name {
        return Err(format!(
            "the publisher \"{}\" is given as the name the origin signed, but it signed \"{}\"",
            printable(&claims.publisher),
            printable(&signed_name)
        ));
    }
    let mut expected = FeedEntry::from_publication(
        &statement,
        &publication,
        &document,
        Publisher {
            name: claims.publisher.clone(),
            source: claims.source,
        },
    );
    expected.publisher_conflict = claims.conflict;
    let verified = VerifiedEntry {
        origin,
        publisher: claims.publisher.clone(),
        source: claims.source,
        signed_name,
        conflict: claims.conflict,
    };
    Ok((expected, verified))
}

/// Reads a document as exports carry it: uncompressed change chunks, each
/// checked before Automerge sees it, none twice, none missing a dependency.
/// Returns it with its heads, sorted.
fn apply_document(bytes: &[u8]) -> Result<(AutoCommit, Vec<ChangeHash>), String> {
    let chunks = split_chunks(bytes)?;
    let checked = check_change_chunks(&chunks).map_err(|e| e.to_string())?;
    let mut hashes = HashSet::new();
    for (raw, c) in chunks.iter().zip(&checked) {
        if raw.as_slice() != c.as_bytes() {
            return Err("a change is compressed; exports carry them uncompressed".into());
        }
        if !hashes.insert(c.hash()) {
            return Err("a change appears twice".into());
        }
    }
    let applied = guarded(|| -> Result<(AutoCommit, Vec<ChangeHash>, bool), String> {
        let mut parsed = Vec::with_capacity(checked.len());
        for c in &checked {
            parsed.push(Change::try_from(c.as_bytes()).map_err(|e| e.to_string())?);
        }
        let mut doc = AutoCommit::new();
        doc.apply_changes(parsed).map_err(|e| e.to_string())?;
        let complete = doc.get_missing_deps(&[]).is_empty();
        let heads = sorted(doc.get_heads());
        Ok((doc, heads, complete))
    })
    .ok_or("Automerge panicked applying its changes")??;
    let (doc, heads, complete) = applied;
    if !complete {
        return Err("a change depends on one the document does not carry".into());
    }
    Ok((doc, heads))
}

/// Splits concatenated chunks at their headers (magic, checksum, type, ULEB
/// length); [`check_change_chunks`] checks each one after.
fn split_chunks(bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    const FIXED: usize = 9;
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let n = out.len();
        if n >= CHANGES_PER_DELIVERY_MAX {
            return Err(format!("more than {CHANGES_PER_DELIVERY_MAX} changes"));
        }
        if rest.len() < FIXED || rest[..CHUNK_MAGIC.len()] != CHUNK_MAGIC {
            return Err(format!("change {n} is not an Automerge chunk"));
        }
        let mut len: u64 = 0;
        let mut at = FIXED;
        loop {
            let Some(&b) = rest.get(at) else {
                return Err(format!("change {n} ends inside its header"));
            };
            let shift = 7 * (at - FIXED);
            if shift >= 64 {
                return Err(format!(
                    "change {n} has a length that does not fit in 64 bits"
                ));
            }
            len |= u64::from(b & 0x7f) << shift;
            at += 1;
            if b & 0x80 == 0 {
                break;
            }
        }
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| at.checked_add(l))
            .filter(|end| *end <= rest.len())
            .ok_or_else(|| format!("change {n} ends after the document does"))?;
        out.push(rest[..end].to_vec());
        rest = &rest[end..];
    }
    Ok(out)
}

/// The NodeId a feed id (`urn:labnet:feed:<NodeId>`) names.
fn exporter_of(feed_id: Option<&str>) -> Option<NodeId> {
    feed_id?.trim().strip_prefix(FEED_ID_PREFIX)?.parse().ok()
}
