//! Where the lab model lives in the store: one private document per practice
//! (`practice:<id>`), one for the roster (`roster`), one for the lab record
//! (`lab`).
//!
//! Each function works on a [`Store`] synchronously; an import is one store
//! transaction, so a failing import writes nothing. A subscriber node keeps no
//! lab data: every writing operation takes the node's role and refuses a
//! subscriber. Reading is open to both roles (a subscriber simply has nothing).
//!
//! Nothing here logs personal data: log lines and errors name ids and counts,
//! never values from lab documents.

use automerge::AutoCommit;
use labnet_config::Role;

use super::{
    from_doc, new_doc, practice_doc_id, update_doc, CityLab, LabDocError, LabDocument, Practice,
    Roster, LAB_DOC_ID, PRACTICE_DOC_PREFIX, ROSTER_DOC_ID,
};
use crate::store::{DocumentKind, Store, StoreError};

/// Why reading or writing lab data failed. Names ids, never values.
#[derive(Debug, thiserror::Error)]
pub enum LabStoreError {
    /// The node is a subscriber.
    #[error("this node is a subscriber: it keeps no lab data and cannot {operation}; only partner nodes can")]
    NotPartner {
        /// What was refused.
        operation: &'static str,
    },
    /// A lab document id in the store holds another kind of document.
    #[error("document {doc_id} is a {found:?} document, expected Private")]
    WrongKind {
        /// The document.
        doc_id: String,
        /// What it is.
        found: DocumentKind,
    },
    /// A lab document does not have the shape of its type, or could not be written.
    #[error(transparent)]
    Doc(#[from] LabDocError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an import of practices did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Ids of practices new to the store.
    pub created: Vec<String>,
    /// Ids of practices that existed and were updated.
    pub updated: Vec<String>,
}

fn partner_only(role: Role, operation: &'static str) -> Result<(), LabStoreError> {
    match role {
        Role::Partner => Ok(()),
        Role::Subscriber => Err(LabStoreError::NotPartner { operation }),
    }
}

/// The private document `doc_id`, if it exists. Another kind of document under a
/// lab id is an error, never "nothing there".
fn load_private(store: &Store, doc_id: &str) -> Result<Option<AutoCommit>, LabStoreError> {
    store.load_kind(doc_id, DocumentKind::Private, |found| {
        LabStoreError::WrongKind {
            doc_id: doc_id.to_string(),
            found,
        }
    })
}

/// The value in the private document `doc_id`, if it exists.
fn load_value<T: LabDocument>(store: &Store, doc_id: &str) -> Result<Option<T>, LabStoreError> {
    match load_private(store, doc_id)? {
        Some(doc) => Ok(Some(from_doc(&doc)?)),
        None => Ok(None),
    }
}

/// `value` reconciled into the document `doc_id` holds, or a fresh document, and
/// whether the document existed. Reconciling keeps the history small: an edit
/// adds only what changed.
fn reconciled<T: LabDocument>(
    store: &Store,
    doc_id: &str,
    value: &T,
) -> Result<(AutoCommit, bool), LabStoreError> {
    match load_private(store, doc_id)? {
        Some(mut doc) => {
            update_doc(&mut doc, value)?;
            Ok((doc, true))
        }
        None => Ok((new_doc(value)?, false)),
    }
}

/// Stores imported practices, all in one transaction: each new id becomes a
/// private `practice:<id>` document, an existing one is updated by reconcile.
pub fn import_practices(
    store: &mut Store,
    role: Role,
    practices: &[Practice],
) -> Result<ImportReport, LabStoreError> {
    partner_only(role, "import practices")?;
    let mut report = ImportReport::default();
    let mut docs: Vec<(String, AutoCommit)> = Vec::new();
    for p in practices {
        let doc_id = practice_doc_id(&p.id);
        let (doc, existed) = reconciled(store, &doc_id, p)?;
        if existed {
            report.updated.push(p.id.clone());
        } else {
            report.created.push(p.id.clone());
        }
        docs.push((doc_id, doc));
    }
    let mut batch: Vec<(&str, DocumentKind, &mut AutoCommit)> = docs
        .iter_mut()
        .map(|(id, doc)| (id.as_str(), DocumentKind::Private, doc))
        .collect();
    store.save_documents(&mut batch)?;
    tracing::info!(
        created = report.created.len(),
        updated = report.updated.len(),
        "practices imported"
    );
    Ok(report)
}

/// Replaces the stakeholder roster (reconciled into the `roster` document).
pub fn import_roster(store: &mut Store, role: Role, roster: &Roster) -> Result<(), LabStoreError> {
    partner_only(role, "import a stakeholder roster")?;
    let (mut doc, _) = reconciled(store, ROSTER_DOC_ID, roster)?;
    store.save_document(ROSTER_DOC_ID, DocumentKind::Private, &mut doc)?;
    tracing::info!(members = roster.stakeholders.len(), "roster imported");
    Ok(())
}

/// The stakeholder roster, empty when none was imported.
pub fn load_roster(store: &Store) -> Result<Roster, LabStoreError> {
    Ok(load_value(store, ROSTER_DOC_ID)?.unwrap_or_default())
}

/// Every practice in the store, in id order.
pub fn list_practices(store: &Store) -> Result<Vec<Practice>, LabStoreError> {
    let mut out = Vec::new();
    for doc_id in store.document_ids(DocumentKind::Private)? {
        if let Some(id) = doc_id.strip_prefix(PRACTICE_DOC_PREFIX) {
            if let Some(p) = load_practice(store, id)? {
                out.push(p);
            }
        }
    }
    Ok(out)
}

/// One practice, if it exists.
pub fn load_practice(store: &Store, id: &str) -> Result<Option<Practice>, LabStoreError> {
    load_value(store, &practice_doc_id(id))
}

/// Stores the city's lab record (profile, Policy Labs, micro-experiments),
/// reconciling into the existing document so an edit adds only what changed.
pub fn import_lab(store: &mut Store, role: Role, lab: &CityLab) -> Result<(), LabStoreError> {
    partner_only(role, "keep lab data")?;
    let (mut doc, _) = reconciled(store, LAB_DOC_ID, lab)?;
    store.save_document(LAB_DOC_ID, DocumentKind::Private, &mut doc)?;
    Ok(())
}

/// The city's lab record, or an empty one.
pub fn load_lab(store: &Store) -> Result<CityLab, LabStoreError> {
    Ok(load_value(store, LAB_DOC_ID)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::import::{parse_roster, ImportInput};

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        (dir, store)
    }

    #[test]
    fn roster_and_lab_record_round_trip_through_the_store() {
        let (_dir, mut store) = store();
        assert_eq!(load_roster(&store).unwrap(), Roster::default());
        assert_eq!(load_lab(&store).unwrap(), CityLab::default());
        let roster = parse_roster(
            ImportInput::Text(r#"{"stakeholders": [{"name": "A B", "area": "economy"}]}"#),
            None,
        )
        .unwrap();
        import_roster(&mut store, Role::Partner, &roster).unwrap();
        assert_eq!(load_roster(&store).unwrap(), roster);
        let mut lab = CityLab::default();
        lab.profile.name = "Livadia".into();
        import_lab(&mut store, Role::Partner, &lab).unwrap();
        lab.profile.country = "Greece".into();
        import_lab(&mut store, Role::Partner, &lab).unwrap();
        assert_eq!(load_lab(&store).unwrap(), lab);
    }

    #[test]
    fn a_subscriber_keeps_no_lab_data() {
        let (_dir, mut store) = store();
        assert!(matches!(
            import_roster(&mut store, Role::Subscriber, &Roster::default()),
            Err(LabStoreError::NotPartner { .. })
        ));
        assert!(matches!(
            import_lab(&mut store, Role::Subscriber, &CityLab::default()),
            Err(LabStoreError::NotPartner { .. })
        ));
        assert_eq!(store.document_counts().unwrap().private, 0);
    }
}
