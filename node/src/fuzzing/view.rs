//! The deterministic node keys, the fixture every sync target starts from (a
//! signed publication of the origin's and its replica) and the in-memory
//! [`SyncView`] the sessions run against.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use automerge::transaction::CommitOptions;
use automerge::{ActorId, AutoCommit, ChangeHash};
use labnet_config::Role;
use labnet_protocol::statement::{ScopeClass, SignedStatement};
use labnet_protocol::sync::{publication_id, DocId, ResumePoint};
use labnet_protocol::NodeId;

use crate::identity::SeededKey;
use crate::share::check_publication_shape;
use crate::share::publication::sample_body;
use crate::sync::{
    Effect, Event, ForwardItem, HeldEntry, PeerInfo, ReplicaData, SavedVersion, ServedEntry,
    Session, SessionConfig, SyncView, ViewError,
};

/// The node keys of the fuzz targets: deterministic, so seeds signed once
/// stay valid in every run.
pub type FuzzKey = SeededKey;

/// Fuzz node key number `n`.
pub fn fuzz_key(n: u8) -> FuzzKey {
    SeededKey::numbered(0x3c, n)
}

pub(super) const LOCAL: u8 = 1;
pub(super) const ORIGIN: u8 = 2;
pub(super) const RELAY: u8 = 3;
pub(super) const PRACTICE: &str = "fuzz-practice";
pub(super) const EPOCH: u64 = 7;

/// What every sync target starts from: the origin's publication at version 1
/// (one change) and version 2 (one more), really signed.
pub(super) struct Fixture {
    pub(super) local: Arc<FuzzKey>,
    pub(super) origin: FuzzKey,
    pub(super) doc_id: DocId,
    pub(super) v1_saved: Vec<u8>,
    pub(super) v1_heads: Vec<ChangeHash>,
    pub(super) v1_statement: Vec<u8>,
    /// The changes of version 2 after version 1's heads, uncompressed.
    pub(super) v2_changes: Vec<Vec<u8>>,
    /// The same, as Automerge sends them (compressed when large).
    pub(super) v2_changes_wire: Vec<Vec<u8>>,
    /// All changes of version 2, uncompressed.
    pub(super) v2_all: Vec<Vec<u8>>,
    pub(super) v2_heads: Vec<ChangeHash>,
}

pub(super) fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let origin = fuzz_key(ORIGIN);
        let doc_id = publication_id(origin.node_id(), PRACTICE).expect("a valid id");
        // A fixed actor and fixed times: the same document in every run, so
        // seeds written once apply to the copy every run holds.
        let at = |t: i64| CommitOptions::default().with_time(t);
        let mut doc = AutoCommit::new().with_actor(ActorId::from(&[0x2b; 16][..]));
        let mut body = sample_body(origin.node_id(), PRACTICE, 1);
        autosurgeon::reconcile(&mut doc, &body).expect("a plain struct reconciles");
        doc.commit_with(at(1_764_000_000));
        let v1_saved = doc.save();
        let v1_heads = sorted(doc.get_heads());
        let v1_statement = sign(&origin, &doc_id, 1, &v1_heads, ScopeClass::Public, false);
        body.practice.description = "A second version: mentors and newcomers cook.".into();
        autosurgeon::reconcile(&mut doc, &body).expect("a plain struct reconciles");
        doc.commit_with(at(1_764_000_060));
        let v2_heads = sorted(doc.get_heads());
        let after = doc.get_changes(&v1_heads);
        let v2_changes = after.iter().map(|c| c.raw_bytes().to_vec()).collect();
        let v2_changes_wire = doc
            .get_changes(&v1_heads)
            .into_iter()
            .map(|mut c| c.bytes().to_vec())
            .collect();
        let v2_all = doc
            .get_changes(&[])
            .iter()
            .map(|c| c.raw_bytes().to_vec())
            .collect();
        Fixture {
            local: Arc::new(fuzz_key(LOCAL)),
            origin,
            doc_id,
            v1_saved,
            v1_heads,
            v1_statement,
            v2_changes,
            v2_changes_wire,
            v2_all,
            v2_heads,
        }
    })
}

pub(super) fn sorted(mut heads: Vec<ChangeHash>) -> Vec<ChangeHash> {
    heads.sort();
    heads.dedup();
    heads
}

/// `key`'s statement of `doc_id` at `version` with `heads` (deduplicated).
pub(super) fn sign(
    key: &FuzzKey,
    doc_id: &DocId,
    version: u64,
    heads: &[ChangeHash],
    scope: ScopeClass,
    retracted: bool,
) -> Vec<u8> {
    key.sign_version(doc_id, version, &sorted(heads.to_vec()), scope, retracted)
}

/// What the local node holds of the origin's publication.
#[derive(Clone)]
pub(super) struct Held {
    version: u64,
    retracted: bool,
    heads: Vec<ChangeHash>,
    bytes: Option<Vec<u8>>,
    statement: Vec<u8>,
}

/// A local node that serves nothing and may hold the origin's publication.
pub(super) struct FuzzView {
    doc_id: DocId,
    held: Option<Held>,
}

impl FuzzView {
    pub(super) fn new(hold_v1: bool) -> FuzzView {
        let f = fixture();
        FuzzView {
            doc_id: f.doc_id.clone(),
            held: hold_v1.then(|| Held {
                version: 1,
                retracted: false,
                heads: f.v1_heads.clone(),
                bytes: Some(f.v1_saved.clone()),
                statement: f.v1_statement.clone(),
            }),
        }
    }

    pub(super) fn held_for(&self, doc_id: &DocId) -> Option<&Held> {
        self.held.as_ref().filter(|_| doc_id == &self.doc_id)
    }

    /// Checks what a session asked to store, then stores it as the driver
    /// would. Panics on anything stored that is not the signed publication.
    pub(super) fn apply(&mut self, effect: &Effect) {
        match effect {
            Effect::SaveVersion(SavedVersion {
                doc_id,
                heads,
                data,
                statement,
            }) => {
                assert_eq!(doc_id, &self.doc_id, "stored another publication");
                let signed =
                    SignedStatement::decode(&statement.signed).expect("a stored statement decodes");
                signed.verify().expect("a stored statement verifies");
                let signed_heads: Vec<ChangeHash> =
                    signed.body.heads.iter().map(|h| ChangeHash(*h)).collect();
                assert_eq!(heads, &signed_heads, "stored heads are not the signed ones");
                let bytes = match data {
                    ReplicaData::Snapshot(bytes) => bytes.clone(),
                    ReplicaData::Incremental(chunk) => {
                        let mut bytes = self
                            .held
                            .as_ref()
                            .and_then(|h| h.bytes.clone())
                            .expect("an incremental save of a copy we hold");
                        bytes.extend_from_slice(chunk);
                        bytes
                    }
                };
                let doc = AutoCommit::load(&bytes).expect("a stored replica loads");
                assert_eq!(
                    sorted(doc.clone().get_heads()),
                    signed_heads,
                    "a stored replica reloads to other heads than the signed ones"
                );
                check_publication_shape(&doc, doc_id, signed.body.origin())
                    .expect("a stored replica is a publication");
                self.held = Some(Held {
                    version: statement.version,
                    retracted: false,
                    heads: signed_heads,
                    bytes: Some(bytes),
                    statement: statement.signed.clone(),
                });
            }
            Effect::SaveTombstone { doc_id, statement } => {
                assert_eq!(doc_id, &self.doc_id, "tombstoned another publication");
                let signed =
                    SignedStatement::decode(&statement.signed).expect("a stored statement decodes");
                signed.verify().expect("a stored statement verifies");
                assert!(signed.body.retracted, "a tombstone of a live version");
                self.held = Some(Held {
                    version: statement.version,
                    retracted: true,
                    heads: Vec::new(),
                    bytes: None,
                    statement: statement.signed.clone(),
                });
            }
            Effect::Withdrawn { doc_id } if doc_id == &self.doc_id => self.held = None,
            _ => {}
        }
    }
}

impl SyncView for FuzzView {
    fn index_epoch(&self) -> Result<u64, ViewError> {
        Ok(EPOCH)
    }
    fn served_after(&self, _after: u64, _limit: usize) -> Result<Vec<ServedEntry>, ViewError> {
        Ok(Vec::new())
    }
    fn served(&self, _doc_id: &DocId) -> Result<Option<ServedEntry>, ViewError> {
        Ok(None)
    }
    fn statement(&self, doc_id: &DocId) -> Result<Option<Vec<u8>>, ViewError> {
        Ok(self.held_for(doc_id).map(|h| h.statement.clone()))
    }
    fn load_served(&self, _doc_id: &DocId) -> Result<Option<AutoCommit>, ViewError> {
        Ok(None)
    }
    fn held(&self, doc_id: &DocId) -> Result<Option<HeldEntry>, ViewError> {
        let origin = fixture().origin.node_id();
        Ok(self.held_for(doc_id).map(|h| HeldEntry {
            origin,
            version: h.version,
            retracted: h.retracted,
            heads: h.heads.clone(),
        }))
    }
    fn load_replica(&self, doc_id: &DocId) -> Result<Option<AutoCommit>, ViewError> {
        match self.held_for(doc_id).and_then(|h| h.bytes.as_ref()) {
            Some(bytes) => Ok(Some(AutoCommit::load(bytes)?)),
            None => Ok(None),
        }
    }
    fn resume_point(&self, _peer: NodeId) -> Result<Option<ResumePoint>, ViewError> {
        Ok(None)
    }
    fn delivered(&self, _peer: NodeId, _doc_id: &DocId) -> Result<bool, ViewError> {
        Ok(false)
    }
    fn confirmations_to_forward(
        &self,
        _via: NodeId,
        _limit: usize,
    ) -> Result<Vec<ForwardItem>, ViewError> {
        Ok(Vec::new())
    }
    fn peer_acked(&self, _peer: NodeId) -> Result<Option<ResumePoint>, ViewError> {
        Ok(None)
    }
    fn replica_usage(&self, _origin: NodeId) -> Result<crate::sync::ReplicaUsage, ViewError> {
        // One copy at most, far under any quota: the quota has its own tests.
        Ok(crate::sync::ReplicaUsage::default())
    }
}

pub(super) fn session_with(
    peer: NodeId,
    peer_role: Role,
    view: &FuzzView,
    now: Instant,
) -> Session {
    let f = fixture();
    let info = PeerInfo {
        local: f.local.node_id(),
        local_role: Role::Partner,
        peer,
        peer_role,
        signer: f.local.clone(),
    };
    Session::new(info, SessionConfig::default(), view, now)
}

/// Drains a session's outputs, checking and applying its effects. Returns
/// whether a version was stored.
pub(super) fn drain(session: &mut Session, view: &mut FuzzView) -> bool {
    let closed = session.closed_by().is_some();
    let mut stored = false;
    while let Some(effect) = session.poll_effect() {
        if matches!(
            effect,
            Effect::SaveVersion { .. } | Effect::SaveTombstone { .. }
        ) {
            assert!(!closed, "a closed session stored something: {effect:?}");
            stored = true;
        }
        view.apply(&effect);
    }
    while session.poll_transmit().is_some() {}
    while let Some(event) = session.poll_event() {
        if let Event::ProtocolViolation { .. } = event {
            assert!(closed, "a violation that did not close the session");
        }
    }
    stored
}
