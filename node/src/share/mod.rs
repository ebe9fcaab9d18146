//! Sharing: what of a city's lab data may leave the node, and the operations
//! that publish it.
//!
//! - [`classes`]: the one table classing every field of the lab model as
//!   private, shareable or transformed.
//! - [`normalize`]: Unicode normalization and folding every detector reads.
//! - [`names`]: everyone the node knows of (roster and contacts), matched whole,
//!   in part and inflected; the steward's exemptions.
//! - [`numbers`], [`counts`], [`dates`]: numbers in digits and words, counts of
//!   people, dates in the partner cities' languages; `count_words` holds the
//!   word lists counts are read with.
//! - `contacts`: web addresses, e-mail addresses and phone numbers in free text.
//! - [`scrub`]: every detector over free text (web addresses, e-mail addresses,
//!   phone numbers, dates, names, counts) in order of precedence, and the final
//!   check of a string.
//! - [`history`]: every string ever written in a publication's history, and
//!   every figure, checked against today's rules; a failing history is
//!   re-issued, and so is a publication whose scope narrows from `public`.
//! - [`suppress`]: primary and secondary suppression and rounding of indicators.
//! - [`report`]: what was removed, piece by piece, with the rule.
//! - [`anonymize`](mod@anonymize): the pure anonymizer, practice + people + settings ->
//!   projection + report.
//! - [`publication`]: the publication document type, which only this module can
//!   make, its preview and its feed entry.
//!
//! The functions below are what the admin layer calls: share, preview and
//! unshare. Each works on a [`Store`] synchronously; writes happen in single
//! store transactions. They read practices and the roster through
//! [`crate::lab::storage`] (data flows lab -> share, never back). A subscriber
//! node publishes nothing: every writing operation takes the node's role and
//! refuses a subscriber.
//!
//! Nothing here logs personal data: log lines and errors name ids and fields,
//! never values from lab documents.

pub mod anonymize;
pub mod classes;
mod contacts;
mod count_words;
pub mod counts;
pub mod dates;
pub mod history;
pub mod names;
pub mod normalize;
pub mod numbers;
pub mod publication;
pub mod report;
pub mod scrub;
pub mod suppress;

use automerge::AutoCommit;
use labnet_config::Role;
use labnet_protocol::statement::ScopeClass;
use labnet_protocol::sync::DocId;
use labnet_protocol::NodeId;

use crate::lab::storage::{list_practices, load_practice, load_roster, LabStoreError};
use crate::store::{
    scope_class_of, DocumentKind, NewDisclosure, PublicationSave, Store, StoreError,
};
use crate::trust::Scope;
pub use anonymize::{
    anonymize, anonymize_with, AnonymizationPolicy, AnonymizationReport, AnonymizationSettings,
    Anonymized, AnonymizerInput, PublishedIndicator, PublishedPractice,
};
pub use history::{check_history, failing_fields, HistoryFailure};
pub use names::{KnownPeople, NameSource, NotNames};
pub use publication::{
    check_publication_shape, feed_publication_id, generation_doc_id, publication_doc_id, publish,
    split_generation, Imprint, Publication, PublicationBody, PublicationMeta, PublishChange,
    PUBLICATION_TEXT_BYTES_MAX,
};

/// Why a share operation failed. Names fields and ids, never their values.
#[derive(Debug, thiserror::Error)]
pub enum ShareError {
    /// A field of the lab model is not in the classification table.
    #[error("field {path} is not classed as private, shareable or transformed; nothing was published (class it in share::classes)")]
    Unclassified {
        /// The field.
        path: String,
    },
    /// A field's class does not fit how the anonymizer would publish it.
    #[error("field {path}: {why}; nothing was published")]
    Misclassified {
        /// The field.
        path: String,
        /// Why.
        why: String,
    },
    /// A value could not be checked against the rules.
    #[error("field {path}: {why}; nothing was published")]
    Unchecked {
        /// The field.
        path: String,
        /// Why.
        why: String,
    },
    /// The final scan found personal data in the projection.
    #[error("field {path} still contains {what} after anonymization; nothing was published (edit the practice)")]
    LeakDetected {
        /// The field.
        path: String,
        /// What kind of data was found.
        what: &'static str,
    },
    /// The practice id does not make a valid publication id.
    #[error("practice {practice_id} gives no valid publication id: {why}")]
    InvalidDocId {
        /// The practice.
        practice_id: String,
        /// Why.
        why: String,
    },
    /// A document is not a valid publication.
    #[error("not a valid publication document: {why}")]
    MalformedPublication {
        /// Why.
        why: String,
    },
    /// No practice with this id.
    #[error("no practice with id {id}")]
    NoSuchPractice {
        /// The id.
        id: String,
    },
    /// A document id in the store holds another kind of document.
    #[error("document {doc_id} is a {found:?} document, expected {expected:?}")]
    WrongKind {
        /// The document.
        doc_id: String,
        /// What it is.
        found: DocumentKind,
        /// What it should be.
        expected: DocumentKind,
    },
    /// The node is a subscriber.
    #[error("this node is a subscriber: it keeps no lab data and cannot {operation}; only partner nodes can")]
    NotPartner {
        /// What was refused.
        operation: &'static str,
    },
    /// The practice or the roster could not be read.
    #[error(transparent)]
    Lab(#[from] LabStoreError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A bug: serialization or Automerge failed on data that should not fail.
    #[error("internal error: {0}")]
    Internal(String),
}

fn partner_only(role: Role, operation: &'static str) -> Result<(), ShareError> {
    match role {
        Role::Partner => Ok(()),
        Role::Subscriber => Err(ShareError::NotPartner { operation }),
    }
}

/// What to share or preview: one practice of this node, to whom, under which
/// anonymization settings.
#[derive(Debug, Clone, Copy)]
pub struct ShareRequest<'a> {
    /// This node, the publication's origin.
    pub origin: NodeId,
    /// This city's name, which the publication carries.
    pub city: &'a str,
    /// The practice.
    pub practice_id: &'a str,
    /// Who it is published to.
    pub scope: &'a Scope,
    /// Every anonymization setting, the steward's `not_names` included
    /// ([`AnonymizationSettings::from_config`]).
    pub settings: &'a AnonymizationSettings,
}

/// What sharing did.
#[derive(Debug, Clone)]
pub struct ShareOutcome {
    /// The publication document id.
    pub doc_id: String,
    /// Its heads after sharing, lowercase hex.
    pub heads: Vec<String>,
    /// Created, updated or unchanged.
    pub change: PublishChange,
    /// Exactly what a peer receives.
    pub preview_json: String,
    /// What was removed or suppressed, and why.
    pub report: AnonymizationReport,
    /// The publication this share re-issued (retracted and replaced by
    /// `doc_id`), because its history failed today's rules.
    pub reissued: Option<Reissue>,
}

/// A publication whose history fails today's rules, and its replacement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reissue {
    /// The publication retracted.
    pub old_doc_id: String,
    /// The fresh publication that replaces it.
    pub new_doc_id: String,
    /// The fields of the old history that fail, once each.
    pub fields: Vec<String>,
    /// Every failure: field, version and change, never the value.
    pub failures: Vec<HistoryFailure>,
    /// Re-issued because the scope narrowed from `public`, not because of
    /// its history: relays hold public copies that only a retraction reaches.
    pub narrowed: bool,
}

/// A preview: what sharing would send, without writing anything.
#[derive(Debug, Clone)]
pub struct Preview {
    /// Exactly what a peer would receive.
    pub json: String,
    /// What was removed or suppressed, and why.
    pub report: AnonymizationReport,
    /// The re-issue sharing would do, if the stored history fails.
    pub reissue: Option<Reissue>,
}

/// Our publication document `doc_id`, if it exists. Another kind of document
/// under a publication id is an error, never "nothing there".
fn load_publication(store: &Store, doc_id: &str) -> Result<Option<AutoCommit>, ShareError> {
    match store.load_document(doc_id)? {
        None => Ok(None),
        Some((DocumentKind::Publication, doc)) => Ok(Some(doc)),
        Some((found, _)) => Err(ShareError::WrongKind {
            doc_id: doc_id.to_string(),
            found,
            expected: DocumentKind::Publication,
        }),
    }
}

/// Everyone the node knows of: the roster and the contacts of every practice
/// (a contact of one practice may be named in another's text).
pub fn known_people(store: &Store) -> Result<KnownPeople, ShareError> {
    let mut people = KnownPeople::from_roster(&load_roster(store)?);
    for p in list_practices(store)? {
        people.add_contacts(&p);
    }
    Ok(people)
}

/// The current generation of a practice's publication among ours: its id and
/// generation number (the highest generation in the index), if it was ever
/// published.
pub fn current_publication(
    store: &Store,
    origin: NodeId,
    practice_id: &str,
) -> Result<Option<(DocId, u32)>, ShareError> {
    let base = publication_doc_id(origin, practice_id)?;
    let mut best: Option<(String, u32)> = None;
    for row in store.publication_rows()? {
        let (b, generation) = split_generation(&row.doc_id);
        if b == base.as_str() && best.as_ref().is_none_or(|(_, g)| generation > *g) {
            best = Some((row.doc_id.clone(), generation));
        }
    }
    best.map(|(id, g)| {
        DocId::new(id)
            .map(|id| (id, g))
            .map_err(|e| ShareError::InvalidDocId {
                practice_id: practice_id.to_string(),
                why: e.to_string(),
            })
    })
    .transpose()
}

/// A publication built in memory, and what writing it would do.
struct Built {
    publication: Publication,
    change: PublishChange,
    report: AnonymizationReport,
    reissue: Option<Reissue>,
}

/// Anonymizes a stored practice and builds its publication in memory: the
/// next version of its current generation, or, when that generation's whole
/// history (with the new version) fails today's rules, a fresh document of
/// the next generation.
fn build(store: &Store, request: &ShareRequest<'_>) -> Result<Built, ShareError> {
    let ShareRequest {
        origin,
        city,
        practice_id,
        scope,
        settings,
    } = *request;
    let practice =
        load_practice(store, practice_id)?.ok_or_else(|| ShareError::NoSuchPractice {
            id: practice_id.to_string(),
        })?;
    let people = known_people(store)?;
    let anonymized = anonymize_with(&AnonymizerInput {
        practice: &practice,
        people: &people,
        settings,
    })?;
    let now = crate::store::unix_now();
    let current = current_publication(store, origin, &anonymized.practice.id)?;
    let (existing, generation) = match &current {
        Some((id, generation)) => (load_publication(store, id.as_str())?, *generation),
        None => (None, 1),
    };
    let had_history = existing.is_some();
    // Public copies travel through relays, and `partners` or named scopes are
    // served by the origin alone: a relay that learns of a narrower version
    // cannot pass it on, so its downstream would keep the public copy. A
    // retraction is public and does reach them, so narrowing from `public`
    // re-issues: the old document is retracted everywhere it went, the
    // new generation goes only where the new scope allows.
    let narrowed = match &current {
        Some((id, _)) => store.publication_row(id.as_str())?.is_some_and(|row| {
            !row.retracted
                && scope_class_of(&row.scope) == ScopeClass::Public
                && scope_class_of(&scope.to_text()) != ScopeClass::Public
        }),
        None => false,
    };
    let imprint = Imprint {
        origin,
        city,
        scope,
        generation,
    };
    let (mut publication, change) = publish(&anonymized, imprint, existing, now)?;
    // The whole history as peers receive it, the new version included.
    let failures = if had_history {
        check_history(publication.doc_mut(), &anonymized.scanner)
    } else {
        Vec::new()
    };
    if !had_history || (failures.is_empty() && !narrowed) {
        return Ok(Built {
            publication,
            change,
            report: anonymized.report,
            reissue: None,
        });
    }
    let old_doc_id = publication.doc_id()?.as_str().to_string();
    let next = Imprint {
        generation: generation
            .checked_add(1)
            .ok_or_else(|| ShareError::Internal("publication generation overflow".into()))?,
        ..imprint
    };
    let (mut fresh, _) = publish(&anonymized, next, None, now)?;
    // A fresh history is the current projection alone, which passed the
    // final check: it must pass here too.
    let left = check_history(fresh.doc_mut(), &anonymized.scanner);
    if let Some(f) = left.first() {
        return Err(ShareError::LeakDetected {
            path: f.path.clone(),
            what: f.what,
        });
    }
    let reissue = Reissue {
        old_doc_id,
        new_doc_id: fresh.doc_id()?.as_str().to_string(),
        fields: failing_fields(&failures),
        narrowed: narrowed && failures.is_empty(),
        failures,
    };
    Ok(Built {
        publication: fresh,
        change: PublishChange::Created,
        report: anonymized.report,
        reissue: Some(reissue),
    })
}

/// Shares a practice: anonymizes it, writes or updates its publication
/// document with the scope, and records the disclosure (`share` for a new
/// publication, `update` for a changed one; nothing for an unchanged one).
///
/// Every share checks the publication's whole history against today's rules
/// ([`history`]): when it fails, the publication is re-issued, a fresh
/// document under the next generation's id, the old one retracted, and the
/// disclosure log records `reissue`, all in one transaction.
pub fn share_practice(
    store: &mut Store,
    role: Role,
    request: &ShareRequest<'_>,
) -> Result<ShareOutcome, ShareError> {
    partner_only(role, "share practices")?;
    let Built {
        publication,
        change,
        report,
        reissue,
    } = build(store, request)?;
    let settings = request.settings;
    let doc_id = publication.doc_id()?;
    let preview_json = publication.preview_json()?;
    let scope_text = request.scope.to_text();
    let mut doc = publication.into_doc();
    let change = if let Some(r) = &reissue {
        store.reissue_publication(
            &r.old_doc_id,
            doc_id.as_str(),
            &mut doc,
            &scope_text,
            &settings.settings_json(),
        )?;
        tracing::info!(
            old = r.old_doc_id.as_str(),
            new = doc_id.as_str(),
            fields = ?r.fields,
            "publication re-issued: its history fails today's rules"
        );
        PublishChange::Created
    } else {
        // The disclosure line is written in the publication's own transaction.
        let (saved, _action) = store.save_publication_logged(
            doc_id.as_str(),
            &mut doc,
            &scope_text,
            &settings.settings_json(),
            |saved, was_retracted| match (change, saved) {
                // Sharing again after `unshare` publishes anew: logged as a share.
                (_, PublicationSave::Updated(_)) if was_retracted => Some("share"),
                (PublishChange::Created, _) | (_, PublicationSave::Created(_)) => Some("share"),
                (_, PublicationSave::Updated(_))
                | (PublishChange::Updated, PublicationSave::Unchanged) => Some("update"),
                (PublishChange::Unchanged, PublicationSave::Unchanged) => None,
            },
        )?;
        // A new scope or a re-share changes what peers get even when the
        // content does not: report it as an update.
        let change = match (change, saved) {
            (
                PublishChange::Unchanged,
                PublicationSave::Updated(_) | PublicationSave::Created(_),
            ) => PublishChange::Updated,
            (change, _) => change,
        };
        tracing::info!(doc_id = doc_id.as_str(), ?change, "practice shared");
        change
    };
    let heads: Vec<String> = doc.get_heads().iter().map(ToString::to_string).collect();
    Ok(ShareOutcome {
        doc_id: doc_id.as_str().to_string(),
        heads,
        change,
        preview_json,
        report,
        reissued: reissue,
    })
}

/// Checks the whole history of every live publication of ours against
/// today's rules (after a roster import, a changed contact, a stricter
/// setting) and re-shares, so re-issues, each one whose history fails, with
/// its stored scope. Returns the re-issues done. A publication whose practice
/// is gone is retracted instead: nothing can replace it.
pub fn recheck_publications(
    store: &mut Store,
    role: Role,
    origin: NodeId,
    city: &str,
    settings: &AnonymizationSettings,
) -> Result<Vec<Reissue>, ShareError> {
    if role != Role::Partner {
        return Ok(Vec::new());
    }
    let origin_key = format!("{}:", origin.to_key());
    let mut done = Vec::new();
    // Everyone the node knows of (the roster and every practice's contacts),
    // matched once for all publications: the rules are the same for each.
    let people = known_people(store)?;
    let names = names::NameMatcher::new(&people, &settings.not_names)?;
    let scanner = scrub::Scanner::new(names, settings.policy.min_count);
    for row in store.publication_rows()? {
        if row.retracted || !row.doc_id.starts_with(&origin_key) {
            continue;
        }
        let Some(mut doc) = load_publication(store, &row.doc_id)? else {
            continue;
        };
        let practice_id = split_generation(&row.doc_id).0[origin_key.len()..].to_string();
        if check_history(&mut doc, &scanner).is_empty() {
            continue;
        }
        if load_practice(store, &practice_id)?.is_none() {
            store.retract_publication(&row.doc_id)?;
            continue;
        }
        let scope = Scope::parse(&row.scope).map_err(ShareError::Internal)?;
        let request = ShareRequest {
            origin,
            city,
            practice_id: &practice_id,
            scope: &scope,
            settings,
        };
        let outcome = share_practice(store, role, &request)?;
        done.extend(outcome.reissued);
    }
    Ok(done)
}

/// Retracts a practice's publication and records the disclosure `unshare`.
/// Returns whether there was a live publication to retract.
pub fn unshare_practice(
    store: &mut Store,
    role: Role,
    practice_id: &str,
    origin: NodeId,
) -> Result<bool, ShareError> {
    partner_only(role, "unshare practices")?;
    let Some((doc_id, _)) = current_publication(store, origin, practice_id)? else {
        return Ok(false);
    };
    let Some(mut doc) = load_publication(store, doc_id.as_str())? else {
        return Ok(false);
    };
    let scope = store
        .publication_row(doc_id.as_str())?
        .map(|r| r.scope)
        .unwrap_or_default();
    if store.retract_publication(doc_id.as_str())?.is_none() {
        return Ok(false);
    }
    store.log_disclosure(&NewDisclosure {
        action: "unshare",
        doc_id: doc_id.as_str(),
        heads: &crate::store::heads_hex(&doc.get_heads()),
        node_id: None,
        scope: &scope,
        settings: "",
    })?;
    tracing::info!(doc_id = doc_id.as_str(), "practice unshared");
    Ok(true)
}

/// What sharing a practice would send, byte for byte, without writing anything.
pub fn preview_practice(store: &Store, request: &ShareRequest<'_>) -> Result<Preview, ShareError> {
    let built = build(store, request)?;
    Ok(Preview {
        json: built.publication.preview_json()?,
        report: built.report,
        reissue: built.reissue,
    })
}

#[cfg(test)]
mod tests;
