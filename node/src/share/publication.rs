//! Publications: the Automerge documents that carry an anonymized practice to
//! peers, and the only documents the sync engine sends.
//!
//! A [`Publication`] can only be made here: [`publish`] builds one from an
//! [`Anonymized`] projection (a new document, or the existing publication
//! document with the new projection reconciled in, so an edit adds only the
//! changed operations), and [`Publication::from_replica`] accepts a document from
//! a peer only if it hydrates to exactly the published shape. The constructor is
//! private, so no other code in the node can wrap arbitrary data as a
//! publication. Its document holds a [`PublicationBody`]: the
//! [`PublishedPractice`] and [`PublicationMeta`].
//!
//! [`Publication::preview_json`] is what `labnet share preview` prints: the pretty
//! JSON of the body hydrated from the document, which is what a peer receiving
//! the document would read.

use automerge::{AutoCommit, ReadDoc};
use autosurgeon::{Hydrate, Reconcile};
use labnet_protocol::sync::DocId;
use labnet_protocol::NodeId;
use serde::{Deserialize, Serialize};

use super::anonymize::{Anonymized, PublishedPractice};
use super::ShareError;
use crate::trust::Scope;

/// The anonymization settings a publication was made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct PublicationSettings {
    /// The minimum count applied.
    pub min_count: u64,
}

/// Who published what, for whom, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct PublicationMeta {
    /// The publication's document id: `<origin NodeId>:<practice id>`.
    pub doc_id: String,
    /// The publishing city's name.
    pub origin_city: String,
    /// The publishing node, compact form.
    pub origin_node: String,
    /// The practice's id in its city.
    pub practice_id: String,
    /// Who it is published to, in general terms: `public`, `partners` or
    /// `selected cities`. Which cities a narrow scope names is the origin's
    /// policy and stays in its own index; recipients are not told who else got it.
    pub scope: String,
    /// The anonymization settings used.
    pub settings: PublicationSettings,
    /// When the content last changed, `YYYY-MM` (month precision on purpose).
    pub published_at: String,
}

/// The whole content of a publication document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct PublicationBody {
    /// Metadata.
    pub meta: PublicationMeta,
    /// The anonymized practice.
    pub practice: PublishedPractice,
}

/// What [`publish`] did to the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PublishChange {
    /// A new document.
    Created,
    /// The existing document got new operations.
    Updated,
    /// The existing document already said all this.
    Unchanged,
}

/// A publication document, checked to hold only a published practice.
#[derive(Debug)]
pub struct Publication {
    doc: AutoCommit,
    body: PublicationBody,
}

/// The publication document id of a practice: `<origin NodeId>:<practice id>`.
pub fn publication_doc_id(origin: NodeId, practice_id: &str) -> Result<DocId, ShareError> {
    labnet_protocol::sync::publication_id(origin, practice_id).map_err(|e| {
        ShareError::InvalidDocId {
            practice_id: practice_id.to_string(),
            why: e.to_string(),
        }
    })
}

/// The id of generation `generation` of a practice's publication: generation 1
/// is [`publication_doc_id`], a re-issue (a fresh document with a fresh
/// history, see `share::history`) takes the next one:
/// `<origin NodeId>:<practice id>:g<generation>`. Practice ids never hold a
/// `:`, so the suffix can never be read as part of one.
pub fn generation_doc_id(
    origin: NodeId,
    practice_id: &str,
    generation: u32,
) -> Result<DocId, ShareError> {
    if generation <= 1 {
        return publication_doc_id(origin, practice_id);
    }
    let base = publication_doc_id(origin, practice_id)?;
    DocId::new(format!("{}:g{generation}", base.as_str())).map_err(|e| ShareError::InvalidDocId {
        practice_id: practice_id.to_string(),
        why: e.to_string(),
    })
}

/// A publication id without its generation suffix, and its generation (1 when
/// it has none): `K:p:g3` -> (`K:p`, 3). Only a canonical suffix counts
/// (`:g` and a number from 2, no leading zero) after `<origin>:<practice id>`.
pub fn split_generation(doc_id: &str) -> (&str, u32) {
    if let Some((base, gen)) = doc_id.rsplit_once(":g") {
        let canonical = !gen.starts_with('0') && gen.bytes().all(|b| b.is_ascii_digit());
        if canonical && base.contains(':') {
            if let Ok(n) = gen.parse::<u32>() {
                if n >= 2 {
                    return (base, n);
                }
            }
        }
    }
    (doc_id, 1)
}

/// The id a publication's feed entry carries, the same for every generation:
/// the publication id without its generation suffix.
pub fn feed_publication_id(doc_id: &str) -> &str {
    split_generation(doc_id).0
}

/// The general audience of a scope, as written in a publication.
pub fn audience(scope: &Scope) -> &'static str {
    match scope {
        Scope::Public => "public",
        Scope::Partners => "partners",
        Scope::Nodes(_) => "selected cities",
    }
}

/// `YYYY-MM` of a unix time.
pub fn month_of(unix_seconds: i64) -> Result<String, ShareError> {
    let t = time::OffsetDateTime::from_unix_timestamp(unix_seconds)
        .map_err(|e| ShareError::Internal(format!("time out of range: {e}")))?;
    Ok(format!("{:04}-{:02}", t.year(), u8::from(t.month())))
}

impl Publication {
    // Private: the only ways in are `publish` and `from_replica`, which check.
    fn new(doc: AutoCommit, body: PublicationBody) -> Publication {
        Publication { doc, body }
    }

    /// Accepts a document received from a peer, if it has exactly the shape of
    /// a publication: a `meta` and a `practice` at the root and nothing else,
    /// both hydrating, with a consistent id.
    pub fn from_replica(doc: AutoCommit) -> Result<Publication, ShareError> {
        let body = validate(&doc)?;
        Ok(Publication::new(doc, body))
    }

    /// The content.
    pub fn body(&self) -> &PublicationBody {
        &self.body
    }

    /// The document id.
    pub fn doc_id(&self) -> Result<DocId, ShareError> {
        DocId::new(self.body.meta.doc_id.clone()).map_err(|e| ShareError::InvalidDocId {
            practice_id: self.body.meta.practice_id.clone(),
            why: e.to_string(),
        })
    }

    /// The document, read-only.
    pub fn doc(&self) -> &AutoCommit {
        &self.doc
    }

    /// The document's bytes, with its whole history.
    pub fn save(&mut self) -> Vec<u8> {
        self.doc.save()
    }

    /// The document, for reading its history (`get_changes` needs `&mut`).
    pub(crate) fn doc_mut(&mut self) -> &mut AutoCommit {
        &mut self.doc
    }

    /// Gives the document up (for storing or syncing).
    pub fn into_doc(self) -> AutoCommit {
        self.doc
    }

    /// Exactly the JSON a peer reads from this document: the body hydrated from
    /// the document itself, pretty-printed.
    pub fn preview_json(&self) -> Result<String, ShareError> {
        let body: PublicationBody =
            autosurgeon::hydrate(&self.doc).map_err(|e| ShareError::Internal(e.to_string()))?;
        serde_json::to_string_pretty(&body).map_err(|e| ShareError::Internal(e.to_string()))
    }
}

/// The most bytes of text a received publication may hold in all, summed over
/// its strings: a practice with every field at the import format's limits is
/// well under it, and a peer cannot make the feed or the console render
/// megabytes per entry.
pub const PUBLICATION_TEXT_BYTES_MAX: usize = 256 * 1024;

/// Checks that a document a peer delivered is a publication, and that its
/// content names the publication and origin its signed statement names (so
/// the text can never claim another city's id).
pub fn check_publication_shape(
    doc: &AutoCommit,
    doc_id: &DocId,
    origin: NodeId,
) -> Result<(), ShareError> {
    let body = validate(doc)?;
    let malformed = |why: String| ShareError::MalformedPublication { why };
    if body.meta.doc_id != doc_id.as_str() {
        return Err(malformed(format!(
            "meta.doc_id names another publication than the statement ({})",
            doc_id
        )));
    }
    if body.meta.origin_node != origin.to_compact() {
        return Err(malformed(
            "meta.origin_node names another origin than the statement's signer".into(),
        ));
    }
    let text = serde_json::to_vec(&body).map_err(|e| ShareError::Internal(e.to_string()))?;
    if text.len() > PUBLICATION_TEXT_BYTES_MAX {
        return Err(malformed(format!(
            "{} bytes of content, the most a publication may hold is {PUBLICATION_TEXT_BYTES_MAX}",
            text.len()
        )));
    }
    Ok(())
}

fn validate(doc: &AutoCommit) -> Result<PublicationBody, ShareError> {
    let malformed = |why: String| ShareError::MalformedPublication { why };
    let keys: Vec<String> = doc.keys(automerge::ROOT).collect();
    for k in &keys {
        if k != "meta" && k != "practice" {
            return Err(malformed(format!("unexpected root field '{k}'")));
        }
    }
    let body: PublicationBody = autosurgeon::hydrate(doc).map_err(|e| malformed(e.to_string()))?;
    let node: NodeId = body
        .meta
        .origin_node
        .parse()
        .map_err(|e| malformed(format!("origin_node is not a NodeId: {e}")))?;
    let (base, generation) = split_generation(&body.meta.doc_id);
    let expected = publication_doc_id(node, &body.meta.practice_id)?;
    if expected.as_str() != base
        || generation_doc_id(node, &body.meta.practice_id, generation)?.as_str() != body.meta.doc_id
    {
        return Err(malformed(
            "doc_id is not <origin NodeId>:<practice id>[:g<generation>]".into(),
        ));
    }
    if body.practice.id != body.meta.practice_id {
        return Err(malformed(
            "practice.id differs from meta.practice_id".into(),
        ));
    }
    Ok(body)
}

/// What a publication says beyond the projection: who publishes it, to whom,
/// and which generation of the practice's publication it is.
#[derive(Debug, Clone, Copy)]
pub struct Imprint<'a> {
    /// The publishing node.
    pub origin: NodeId,
    /// The publishing city's name.
    pub city: &'a str,
    /// Who it is published to.
    pub scope: &'a Scope,
    /// The generation ([`generation_doc_id`]): 1 until the publication is
    /// re-issued.
    pub generation: u32,
}

impl<'a> Imprint<'a> {
    /// The first generation of a publication by `origin`, city `city`, to `scope`.
    pub fn first(origin: NodeId, city: &'a str, scope: &'a Scope) -> Imprint<'a> {
        Imprint {
            origin,
            city,
            scope,
            generation: 1,
        }
    }
}

/// Builds or updates the publication of an anonymized practice, under the
/// document id of `imprint`'s generation.
///
/// `existing` is the publication document already stored for this
/// generation, if any: the new projection is reconciled into it, so peers
/// receive only the changed operations. `published_at` moves to the month of
/// `now_unix` only when the content, scope or settings change.
pub fn publish(
    anonymized: &Anonymized,
    imprint: Imprint<'_>,
    existing: Option<AutoCommit>,
    now_unix: i64,
) -> Result<(Publication, PublishChange), ShareError> {
    let Imprint {
        origin,
        city,
        scope,
        generation,
    } = imprint;
    let doc_id = generation_doc_id(origin, &anonymized.practice.id, generation)?;
    // The city's name is the one string added here; it leaves too.
    super::anonymize::check_string("meta.origin_city", city, &anonymized.scanner)?;
    let mut body = PublicationBody {
        meta: PublicationMeta {
            doc_id: doc_id.as_str().to_string(),
            origin_city: city.to_string(),
            origin_node: origin.to_compact(),
            practice_id: anonymized.practice.id.clone(),
            scope: audience(scope).to_string(),
            settings: PublicationSettings {
                min_count: u64::from(anonymized.policy.min_count),
            },
            published_at: month_of(now_unix)?,
        },
        practice: anonymized.practice.clone(),
    };
    let (mut doc, created) = match existing {
        Some(doc) => {
            let old = validate(&doc)?;
            if old.meta.doc_id != body.meta.doc_id {
                return Err(ShareError::MalformedPublication {
                    why: "the stored publication belongs to another practice or node".into(),
                });
            }
            let mut same = old.meta.clone();
            same.published_at = body.meta.published_at.clone();
            if same == body.meta && old.practice == body.practice {
                body.meta.published_at = old.meta.published_at;
            }
            (doc, false)
        }
        None => (AutoCommit::new(), true),
    };
    let before = doc.get_heads();
    autosurgeon::reconcile(&mut doc, &body).map_err(|e| ShareError::Internal(e.to_string()))?;
    let change = if created {
        PublishChange::Created
    } else if doc.get_heads() == before {
        PublishChange::Unchanged
    } else {
        PublishChange::Updated
    };
    let mut publication = Publication::new(doc, body);
    // Keep the document's own view authoritative: what we hold is what peers read.
    publication.body = validate(&publication.doc)?;
    Ok((publication, change))
}

/// A practice-sized publication body for tests and benchmarks: what `publish`
/// would build for practice `practice_id` of `origin`, with `seed` varying
/// the text (about 1.2 KB of it).
#[cfg(any(test, feature = "test-support"))]
pub fn sample_body(origin: NodeId, practice_id: &str, seed: u32) -> PublicationBody {
    let doc_id = labnet_protocol::sync::publication_id(origin, practice_id)
        .map(|d| d.as_str().to_string())
        .unwrap_or_default();
    let description: String = (0..20)
        .map(|i| format!("Step {i} of practice {seed}: mentors meet newcomers. "))
        .collect();
    PublicationBody {
        meta: PublicationMeta {
            doc_id,
            origin_city: format!("City {}", origin.short()),
            origin_node: origin.to_compact(),
            practice_id: practice_id.to_string(),
            scope: "public".into(),
            settings: PublicationSettings { min_count: 5 },
            published_at: "2026-11".into(),
        },
        practice: PublishedPractice {
            id: practice_id.to_string(),
            city: String::new(),
            name: format!("Practice {seed}: language cafe"),
            area: "Language learning".into(),
            thematic_area: None,
            link: None,
            duration: Some("2025-03".into()),
            challenges_addressed: "Isolation of newcomers".into(),
            stakeholders_involved: vec!["NGO".into(), "Municipality".into()],
            description: description[..description.len().min(1000)].to_string(),
            systematized: seed.is_multiple_of(2),
            indicators: Vec::new(),
            communication: "Posters in the library".into(),
            stakeholder_involvement: "Monthly meetings".into(),
            migrant_involvement: "Co-design of the sessions".into(),
            challenges: vec!["Volunteers' time".into()],
            recommendations: vec!["Start small".into()],
            lessons: vec!["Food helps".into()],
        },
    }
}

/// The document of a publication body (one change), for tests and benchmarks.
#[cfg(any(test, feature = "test-support"))]
pub fn sample_doc(body: &PublicationBody) -> AutoCommit {
    let mut doc = AutoCommit::new();
    // Reconciling a plain struct into a new document cannot fail.
    let _ = autosurgeon::reconcile(&mut doc, body);
    doc
}

/// Changes a publication document's description to `text` (one change), as a
/// new version of its origin would.
#[cfg(any(test, feature = "test-support"))]
pub fn edit_sample(doc: &mut AutoCommit, text: &str) {
    if let Ok(mut body) = autosurgeon::hydrate::<_, PublicationBody>(doc) {
        body.practice.description = text.to_string();
        let _ = autosurgeon::reconcile(doc, &body);
    }
}

#[cfg(test)]
mod generation_tests {
    use super::*;

    #[test]
    fn generations_round_trip_and_keep_the_base() {
        let origin = NodeId::from_public_key(&[3; 32]);
        let base = publication_doc_id(origin, "cafe.g2").unwrap();
        assert_eq!(generation_doc_id(origin, "cafe.g2", 1).unwrap(), base);
        let g3 = generation_doc_id(origin, "cafe.g2", 3).unwrap();
        assert_eq!(g3.as_str(), format!("{}:g3", base.as_str()));
        assert_eq!(split_generation(g3.as_str()), (base.as_str(), 3));
        assert_eq!(feed_publication_id(g3.as_str()), base.as_str());
        // A practice id that merely ends like a suffix is no generation.
        assert_eq!(split_generation(base.as_str()), (base.as_str(), 1));
        for odd in [":g1", ":g01", ":g", ":gx"] {
            let id = format!("{}{odd}", base.as_str());
            assert_eq!(split_generation(&id).1, 1, "{odd}");
        }
        // A re-issued body validates with the suffixed id.
        let mut body = sample_body(origin, "cafe.g2", 1);
        body.meta.doc_id = g3.as_str().to_string();
        let doc = sample_doc(&body);
        check_publication_shape(&doc, &g3, origin).unwrap();
        body.meta.doc_id = format!("{}:g01", base.as_str());
        assert!(validate(&sample_doc(&body)).is_err());
    }
}
