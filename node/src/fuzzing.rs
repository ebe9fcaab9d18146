//! Entry points for the fuzz targets in `fuzz/`, and the seeds of their corpora.
//!
//! Built only with the `fuzzing` feature, so nothing here widens the crate's
//! API in a normal build. Each entry point takes the fuzzer's bytes, drives
//! the real code a peer's (or an export's, or an operator's) bytes reach, and
//! panics only when an invariant the code promises is broken: a panic here is
//! a finding. The same functions replay the committed crashers and the seed
//! corpora in `node/tests/fuzz_regressions.rs`.
//!
//! | target | what it drives | what must hold |
//! |---|---|---|
//! | `deliver` | one `Deliver` to a real [`Session`], chunks from the fuzzer, statement really signed | nothing stored unless it reloads to the signed heads as a publication |
//! | `session` | whole messages from the fuzzer into a [`Session`] holding a replica | the same, for every message |
//! | `cert_pin` | the pinned TLS verifiers on arbitrary DER | a pin accepts exactly the key it names |
//! | `scrub` | the free-text scrubber | what would be published is a fixed point |
//! | `anonymize` | the anonymizer on a fuzzer practice | anonymizing its own output changes nothing |
//! | `config` | the config file and overrides | an accepted config's `init` file parses back the same |
//! | `feed_export` | Atom, JSON Feed, CSV of fuzzer text | the output parses back as XML, JSON and CSV |
//! | `feed_verify` | `feed verify` on arbitrary text | never panics |
//!
//! Under `--cfg fuzzing` the session's and the feed verifier's panic guards
//! are off, so a panic inside Automerge reaches the fuzzer.
//!
//! Input formats are simple on purpose (flag bytes, then length-prefixed or
//! separator-split fields), so the seeds below and the fuzzer's mutations of
//! them stay meaningful.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use automerge::transaction::CommitOptions;
use automerge::{ActorId, AutoCommit, Change, ChangeHash};
use labnet_config::{Config, Overrides, Role};
use labnet_protocol::chunk::check_change_chunks;
use labnet_protocol::close::ViolationCode;
use labnet_protocol::frame::FrameDecoder;
use labnet_protocol::statement::{
    ScopeClass, Signed, SignedStatement, Signer, VersionStatement, PUBLIC_KEY_LEN, SIGNATURE_LEN,
};
use labnet_protocol::sync::{
    publication_id, Announcement, DocId, ResumePoint, SyncMessage, WantItem, MESSAGE_LEN_MAX,
};
use labnet_protocol::NodeId;
use ring::signature::{Ed25519KeyPair, KeyPair};
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::ClientCertVerifier;

use crate::feed::{FeedEntry, FeedIndicator, FeedInfo, Publisher, PublisherSource};
use crate::lab::{Indicator, Practice};
use crate::share::names::{KnownPeople, NameMatcher, NameSource, NotNames};
use crate::share::publication::sample_body;
use crate::share::scrub::Scanner;
use crate::share::{anonymize_with, check_publication_shape, AnonymizationPolicy};
use crate::share::{AnonymizationSettings, AnonymizerInput, Publication};
use crate::sync::{
    Effect, Event, ForwardItem, HeldEntry, PeerInfo, ReplicaData, ServedEntry, Session,
    SessionConfig, SyncView, ViewError,
};
use crate::transport::tls::{node_id_of_certificate, NodeClientVerifier, PinnedServerVerifier};

/// A seed: its file name in the corpus, and its bytes.
pub type Seed = (&'static str, Vec<u8>);

// ---- input helpers -----------------------------------------------------------

/// A cursor over fuzzer bytes that never fails: past the end, it reads zeros.
struct Input<'a> {
    rest: &'a [u8],
}

impl<'a> Input<'a> {
    fn new(data: &'a [u8]) -> Input<'a> {
        Input { rest: data }
    }

    fn byte(&mut self) -> u8 {
        match self.rest.split_first() {
            Some((&b, tail)) => {
                self.rest = tail;
                b
            }
            None => 0,
        }
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.rest.len());
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        head
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        for (i, v) in self.take(8).iter().enumerate() {
            b[i] = *v;
        }
        u64::from_le_bytes(b)
    }

    /// `u16` little-endian length, then that many bytes, until the input ends.
    fn chunks(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while !self.rest.is_empty() {
            let len = usize::from(self.u16());
            out.push(self.take(len).to_vec());
        }
        out
    }
}

/// Appends a chunk in the format [`Input::chunks`] reads.
fn put_chunk(out: &mut Vec<u8>, chunk: &[u8]) {
    let len = u16::try_from(chunk.len()).expect("seed chunks are under 64 KiB");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(chunk);
}

/// Fields separated by `0xff`, a byte UTF-8 never uses, so every other
/// character (NUL and control characters included) can appear in a field.
fn fields(data: &[u8]) -> Vec<String> {
    data.split(|&b| b == 0xff)
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect()
}

/// Joins fields in the format [`fields`] reads.
fn join_raw(fields: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(0xff);
        }
        out.extend_from_slice(f.as_bytes());
    }
    out
}

// ---- keys and the sync view --------------------------------------------------

/// A deterministic node key, so seeds signed once stay valid in every run.
pub struct FuzzKey(Ed25519KeyPair);

impl FuzzKey {
    /// Key number `n`.
    pub fn new(n: u8) -> FuzzKey {
        let mut seed = [0x3c; 32];
        seed[0] = n;
        FuzzKey(Ed25519KeyPair::from_seed_unchecked(&seed).expect("a 32-byte seed is a key"))
    }

    /// Its NodeId.
    pub fn node_id(&self) -> NodeId {
        NodeId::from_public_key(self.0.public_key().as_ref())
    }
}

impl Signer for FuzzKey {
    fn public_key(&self) -> [u8; PUBLIC_KEY_LEN] {
        let mut key = [0u8; PUBLIC_KEY_LEN];
        key.copy_from_slice(self.0.public_key().as_ref());
        key
    }

    fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        let mut out = [0u8; SIGNATURE_LEN];
        out.copy_from_slice(self.0.sign(message).as_ref());
        out
    }
}

const LOCAL: u8 = 1;
const ORIGIN: u8 = 2;
const RELAY: u8 = 3;
const PRACTICE: &str = "fuzz-practice";
const EPOCH: u64 = 7;

/// What every sync target starts from: the origin's publication at version 1
/// (one change) and version 2 (one more), really signed.
struct Fixture {
    local: Arc<FuzzKey>,
    origin: FuzzKey,
    doc_id: DocId,
    v1_saved: Vec<u8>,
    v1_heads: Vec<ChangeHash>,
    v1_statement: Vec<u8>,
    /// The changes of version 2 after version 1's heads, uncompressed.
    v2_changes: Vec<Vec<u8>>,
    /// The same, as Automerge sends them (compressed when large).
    v2_changes_wire: Vec<Vec<u8>>,
    /// All changes of version 2, uncompressed.
    v2_all: Vec<Vec<u8>>,
    v2_heads: Vec<ChangeHash>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let origin = FuzzKey::new(ORIGIN);
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
            local: Arc::new(FuzzKey::new(LOCAL)),
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

fn sorted(mut heads: Vec<ChangeHash>) -> Vec<ChangeHash> {
    heads.sort();
    heads.dedup();
    heads
}

fn sign(
    key: &FuzzKey,
    doc_id: &DocId,
    version: u64,
    heads: &[ChangeHash],
    scope: ScopeClass,
    retracted: bool,
) -> Vec<u8> {
    let body = VersionStatement {
        publication: doc_id.clone(),
        origin_key: key.public_key(),
        version,
        heads: sorted(heads.to_vec()).iter().map(|h| h.0).collect(),
        scope,
        retracted,
        issued_at: 1_764_000_000 + version,
    };
    Signed::sign(body, key).encode()
}

/// What the local node holds of the origin's publication.
#[derive(Clone)]
struct Held {
    version: u64,
    retracted: bool,
    heads: Vec<ChangeHash>,
    bytes: Option<Vec<u8>>,
    statement: Vec<u8>,
}

/// A local node that serves nothing and may hold the origin's publication.
struct FuzzView {
    doc_id: DocId,
    held: Option<Held>,
}

impl FuzzView {
    fn new(hold_v1: bool) -> FuzzView {
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

    fn held_for(&self, doc_id: &DocId) -> Option<&Held> {
        self.held.as_ref().filter(|_| doc_id == &self.doc_id)
    }

    /// Checks what a session asked to store, then stores it as the driver
    /// would. Panics on anything stored that is not the signed publication.
    fn apply(&mut self, effect: &Effect) {
        match effect {
            Effect::SaveVersion {
                doc_id,
                heads,
                data,
                statement,
            } => {
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

fn session_with(peer: NodeId, peer_role: Role, view: &FuzzView, now: Instant) -> Session {
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
fn drain(session: &mut Session, view: &mut FuzzView) -> bool {
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

// ---- deliver -----------------------------------------------------------------

/// What one delivery came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliverOutcome {
    /// Something was stored (a version or a tombstone).
    Stored,
    /// The session closed with this violation.
    Refused(ViolationCode),
    /// Neither (a stale version).
    Ignored,
}

/// The flags byte of a `deliver` input.
mod flag {
    /// We hold version 1; the delivery is on top of it.
    pub(super) const HELD: u8 = 1;
    /// The statement retracts.
    pub(super) const RETRACTED: u8 = 1 << 1;
    /// Two bits: where the signed heads come from (see [`super::deliver`]).
    pub(super) const HEADS_SHIFT: u8 = 2;
    /// The statement's scope is `partners` instead of `public`.
    pub(super) const PARTNERS: u8 = 1 << 4;
    /// A relay, not the origin, delivers.
    pub(super) const RELAYED: u8 = 1 << 5;
    /// The peer is a subscriber.
    pub(super) const SUBSCRIBER: u8 = 1 << 6;
    /// The statement's version is 1, not 2.
    pub(super) const OLD_VERSION: u8 = 1 << 7;
}

/// The heads the changes give applied after `base`: every change hash and
/// base head that no change depends on. Only chunks that pass labnet's
/// checks are parsed, as in the session.
fn tips(base: &[ChangeHash], chunks: &[Vec<u8>]) -> Vec<ChangeHash> {
    let Ok(checked) = check_change_chunks(chunks) else {
        return Vec::new();
    };
    let mut all: Vec<ChangeHash> = base.to_vec();
    let mut deps = Vec::new();
    for c in &checked {
        let Ok(change) = Change::try_from(c.as_bytes()) else {
            return Vec::new();
        };
        all.push(change.hash());
        deps.extend(change.deps().iter().copied());
    }
    all.retain(|h| !deps.contains(h));
    sorted(all)
}

/// One `Deliver` to a real session that asked for the publication.
///
/// Input: a flags byte ([`flag`]), a count byte `n` (mod 4) and `n` heads of
/// 32 bytes, then change chunks, each a `u16` LE length and its bytes. The
/// statement is signed by the origin's real key over heads chosen by the two
/// heads bits: 0 the tips of the chunks (so well-formed changes reach the
/// shape check), 1 the `n` heads given, 2 version 1's heads, 3 the tips and
/// the given heads. Whatever is stored is checked by [`FuzzView::apply`].
pub fn deliver(data: &[u8]) -> DeliverOutcome {
    let f = fixture();
    let mut input = Input::new(data);
    let flags = input.byte();
    let count = input.byte() % 4;
    let mut given = Vec::new();
    for _ in 0..count {
        let mut h = [0u8; 32];
        for (i, b) in input.take(32).iter().enumerate() {
            h[i] = *b;
        }
        given.push(ChangeHash(h));
    }
    let chunks = input.chunks();
    let held = flags & flag::HELD != 0;
    let base = if held { f.v1_heads.clone() } else { Vec::new() };
    let heads = match (flags >> flag::HEADS_SHIFT) & 3 {
        0 => tips(&base, &chunks),
        1 => given,
        2 => f.v1_heads.clone(),
        _ => [tips(&base, &chunks), given].concat(),
    };
    let retracted = flags & flag::RETRACTED != 0;
    let scope = if flags & flag::PARTNERS != 0 {
        ScopeClass::Partners
    } else {
        ScopeClass::Public
    };
    let version = if flags & flag::OLD_VERSION != 0 { 1 } else { 2 };
    let statement = sign(&f.origin, &f.doc_id, version, &heads, scope, retracted);
    let peer = if flags & flag::RELAYED != 0 {
        FuzzKey::new(RELAY).node_id()
    } else {
        f.origin.node_id()
    };
    let role = if flags & flag::SUBSCRIBER != 0 {
        Role::Subscriber
    } else {
        Role::Partner
    };
    let now = Instant::now();
    let mut view = FuzzView::new(held);
    let mut session = session_with(peer, role, &view, now);
    drain(&mut session, &mut view);
    if role == Role::Partner {
        let inventory = SyncMessage::Inventory {
            epoch: EPOCH,
            entries: vec![Announcement {
                doc_id: f.doc_id.clone(),
                version: 2,
                retracted,
                seq: 1,
            }],
            up_to_seq: 1,
            full: true,
            complete: true,
        };
        session.handle_message(&view, now, &inventory.encode());
        let mut asked = false;
        while let Some(bytes) = session.poll_transmit() {
            asked |= matches!(SyncMessage::decode(&bytes), Ok(SyncMessage::Want { .. }));
        }
        // A retraction of something we never held needs nothing from us.
        assert!(
            asked || (retracted && !held),
            "an announced newer version was not asked for"
        );
        drain(&mut session, &mut view);
    }
    let message = SyncMessage::Deliver {
        statement,
        changes: chunks,
    }
    .encode();
    if message.len() > MESSAGE_LEN_MAX {
        return DeliverOutcome::Ignored;
    }
    session.handle_message(&view, now, &message);
    let stored = drain(&mut session, &mut view);
    session.handle_timeout(now + Duration::from_secs(3600));
    drain(&mut session, &mut view);
    match (stored, session.closed_by()) {
        (true, _) => DeliverOutcome::Stored,
        (false, Some((code, _))) => DeliverOutcome::Refused(code),
        (false, None) => DeliverOutcome::Ignored,
    }
}

/// Seeds of `deliver`: honest deliveries (fresh, on top of a held copy,
/// compressed chunks, a retraction) and a few that must be refused.
pub fn deliver_seeds() -> Vec<Seed> {
    let f = fixture();
    let with = |flags: u8, heads: &[ChangeHash], chunks: &[Vec<u8>]| {
        let mut out = vec![flags, heads.len() as u8];
        for h in heads {
            out.extend_from_slice(&h.0);
        }
        for c in chunks {
            put_chunk(&mut out, c);
        }
        out
    };
    let explicit = 1 << flag::HEADS_SHIFT;
    vec![
        ("fresh-all-changes", with(0, &[], &f.v2_all)),
        ("held-changes-after", with(flag::HELD, &[], &f.v2_changes)),
        ("held-compressed", with(flag::HELD, &[], &f.v2_changes_wire)),
        (
            "held-explicit-heads",
            with(flag::HELD | explicit, &f.v2_heads, &f.v2_changes),
        ),
        ("fresh-partners", with(flag::PARTNERS, &[], &f.v2_all)),
        ("relayed-public", with(flag::RELAYED, &[], &f.v2_all)),
        (
            "relayed-partners",
            with(flag::RELAYED | flag::PARTNERS, &[], &f.v2_all),
        ),
        ("retraction", with(flag::HELD | flag::RETRACTED, &[], &[])),
        (
            "stale",
            with(flag::HELD | flag::OLD_VERSION, &[], &f.v2_changes),
        ),
        ("subscriber", with(flag::SUBSCRIBER, &[], &f.v2_all)),
        (
            "wrong-heads",
            with(flag::HELD | explicit, &f.v1_heads, &f.v2_changes),
        ),
        ("missing-base", with(0, &[], &f.v2_changes)),
    ]
}

// ---- session -----------------------------------------------------------------

/// Whole messages into a session that holds version 1 (when the flags byte's
/// low bit is set) and talks to the origin (or, bit 1, a subscriber).
///
/// Input: a flags byte, then a byte stream cut into frames by the real
/// [`FrameDecoder`]; each frame is one message to `handle_message`. Effects
/// are checked and applied between messages, as the driver does.
pub fn session(data: &[u8]) {
    let f = fixture();
    let mut input = Input::new(data);
    let flags = input.byte();
    let role = if flags & 2 != 0 {
        Role::Subscriber
    } else {
        Role::Partner
    };
    let mut view = FuzzView::new(flags & 1 != 0);
    let now = Instant::now();
    let mut session = session_with(f.origin.node_id(), role, &view, now);
    drain(&mut session, &mut view);
    let mut decoder = FrameDecoder::new(MESSAGE_LEN_MAX);
    decoder.push(input.rest);
    let mut at = now;
    while let Ok(Some(frame)) = decoder.next_frame() {
        at += Duration::from_secs(1);
        session.handle_message(&view, at, &frame);
        drain(&mut session, &mut view);
        if session.closed().is_some() {
            break;
        }
    }
    session.handle_local_change(&view, at);
    drain(&mut session, &mut view);
    session.handle_timeout(at + Duration::from_secs(3600));
    drain(&mut session, &mut view);
}

/// Seeds of `session`: the exchange an origin would have with us, and the
/// other messages of the protocol.
pub fn session_seeds() -> Vec<Seed> {
    let f = fixture();
    let framed = |flags: u8, messages: &[SyncMessage]| {
        let mut out = vec![flags];
        for m in messages {
            labnet_protocol::frame::encode_frame(&m.encode(), &mut out);
        }
        out
    };
    let inventory = |version: u64, retracted: bool| SyncMessage::Inventory {
        epoch: EPOCH,
        entries: vec![Announcement {
            doc_id: f.doc_id.clone(),
            version,
            retracted,
            seq: version,
        }],
        up_to_seq: version,
        full: true,
        complete: true,
    };
    let v2 = sign(
        &f.origin,
        &f.doc_id,
        2,
        &f.v2_heads,
        ScopeClass::Public,
        false,
    );
    let v3 = sign(&f.origin, &f.doc_id, 3, &[], ScopeClass::Public, true);
    let resume = SyncMessage::Resume {
        version: labnet_protocol::sync::SYNC_PROTOCOL_VERSION,
        from: None,
    };
    vec![
        (
            "held-update",
            framed(
                1,
                &[
                    resume.clone(),
                    inventory(2, false),
                    SyncMessage::Deliver {
                        statement: v2.clone(),
                        changes: f.v2_changes.clone(),
                    },
                ],
            ),
        ),
        (
            "fresh-copy",
            framed(
                0,
                &[
                    inventory(2, false),
                    SyncMessage::Deliver {
                        statement: v2.clone(),
                        changes: f.v2_all.clone(),
                    },
                ],
            ),
        ),
        (
            "retraction",
            framed(
                1,
                &[
                    inventory(3, true),
                    SyncMessage::Deliver {
                        statement: v3,
                        changes: Vec::new(),
                    },
                    SyncMessage::ConfirmAck { count: 1 },
                ],
            ),
        ),
        (
            "withdraw",
            framed(
                1,
                &[SyncMessage::Withdraw {
                    doc_id: f.doc_id.clone(),
                    seq: 4,
                }],
            ),
        ),
        (
            "serving-half",
            framed(
                0,
                &[
                    resume,
                    SyncMessage::Want {
                        items: vec![WantItem {
                            doc_id: f.doc_id.clone(),
                            have: f.v1_heads.iter().map(|h| h.0).collect(),
                        }],
                    },
                    SyncMessage::InventoryAck {
                        epoch: EPOCH,
                        up_to_seq: 0,
                    },
                    SyncMessage::WithdrawAck {
                        doc_id: f.doc_id.clone(),
                    },
                    SyncMessage::Confirm {
                        confirmations: vec![vec![0; 40]],
                    },
                ],
            ),
        ),
        (
            "subscriber-delivers",
            framed(
                2,
                &[SyncMessage::Deliver {
                    statement: v2,
                    changes: f.v2_all.clone(),
                }],
            ),
        ),
    ]
}

// ---- certificate pin ---------------------------------------------------------

/// The pinned verifiers on arbitrary DER. A certificate whose key is NodeId
/// `id` is accepted by a pin on `id` and by the client verifier, refused by a
/// pin on any other id and when it comes with a chain; one that is refused has
/// no NodeId.
pub fn cert_pin(der: &[u8]) {
    let cert = CertificateDer::from(der);
    let name = ServerName::try_from("labnet").expect("a valid server name");
    let now = UnixTime::since_unix_epoch(Duration::from_secs(1_764_000_000));
    let other = FuzzKey::new(LOCAL).node_id();
    let pinned = |id: NodeId, chain: &[CertificateDer<'_>]| {
        PinnedServerVerifier::new(id)
            .verify_server_cert(&cert, chain, &name, &[], now)
            .is_ok()
    };
    let client = NodeClientVerifier::default()
        .verify_client_cert(&cert, &[], now)
        .is_ok();
    match node_id_of_certificate(&cert) {
        Ok(id) => {
            assert!(pinned(id, &[]), "a pin refuses the key it names");
            assert!(client, "the client verifier refuses a node key");
            assert!(!pinned(id, std::slice::from_ref(&cert)), "a chain passed");
            if id != other {
                assert!(!pinned(other, &[]), "a pin accepts another key");
            }
        }
        Err(_) => {
            assert!(!pinned(other, &[]), "a pin accepts what has no NodeId");
            assert!(!client, "the client verifier accepts what has no NodeId");
        }
    }
}

/// Seeds of `cert_pin`: a node's own certificate, certificates with other
/// key types, and damaged DER.
pub fn cert_pin_seeds() -> Vec<Seed> {
    let mut out = Vec::new();
    if let Ok(identity) = crate::identity::Identity::generate() {
        let der = identity.cert_der().to_vec();
        let mut trailing = der.clone();
        trailing.push(0);
        let cut = der[..der.len() / 2].to_vec();
        out.push(("node-cert", der));
        out.push(("node-cert-trailing", trailing));
        out.push(("node-cert-cut", cut));
    }
    for (name, alg) in [
        ("p256-cert", &rcgen::PKCS_ECDSA_P256_SHA256),
        ("p384-cert", &rcgen::PKCS_ECDSA_P384_SHA384),
    ] {
        if let Ok(key) = rcgen::KeyPair::generate_for(alg) {
            if let Ok(params) = rcgen::CertificateParams::new(vec!["labnet".to_string()]) {
                if let Ok(cert) = params.self_signed(&key) {
                    out.push((name, cert.der().to_vec()));
                }
            }
        }
    }
    out
}

// ---- scrub -------------------------------------------------------------------

/// The scrubber. Input: a byte of minimum count, then `0xff`-separated
/// fields: the text, then names of known people. What the scrub returns is
/// either a fixed point of the scrub or refused by the final check
/// ([`Scanner::leak`]); every piece it reports lies in its text.
pub fn scrub(data: &[u8]) {
    let mut input = Input::new(data);
    let min_count = u32::from(input.byte() % 32).max(1);
    let parts = fields(input.rest);
    let Some((text, names)) = parts.split_first() else {
        return;
    };
    let Some(scanner) = scanner(names, min_count) else {
        return;
    };
    let once = scanner.scrub(text);
    for piece in &once.pieces {
        assert!(
            once.text.get(piece.at.clone()).is_some(),
            "a piece outside the text or off a character boundary"
        );
    }
    if scanner.leak(&once.text).is_none() {
        let twice = scanner.scrub(&once.text);
        assert_eq!(
            twice.text, once.text,
            "scrubbed text passes the final check but a second scrub changes it"
        );
    }
}

fn scanner(names: &[String], min_count: u32) -> Option<Scanner> {
    let mut people = KnownPeople::new();
    for n in names.iter().take(8) {
        people.add(n, NameSource::Roster);
    }
    let matcher = NameMatcher::new(&people, &NotNames::none()).ok()?;
    Some(Scanner::new(matcher, min_count))
}

/// Seeds of `scrub`.
pub fn scrub_seeds() -> Vec<Seed> {
    let seed = |min: u8, parts: &[&str]| [vec![min], join_raw(parts)].concat();
    vec![
        (
            "contacts",
            seed(
                10,
                &[
                    "Call Maria Rossi on +39 059 123 4567 or write to maria.rossi@comune.modena.it.",
                    "Maria Rossi",
                ],
            ),
        ),
        (
            "counts-and-dates",
            seed(
                10,
                &[
                    "On 12 March 2024, 7 families and 43 volunteers met; 32.7% stayed (2018-2021).",
                    "Jan de Vries",
                ],
            ),
        ),
        (
            "links",
            seed(
                5,
                &[
                    "See https://example.org/projects/cafe and https://linkedin.com/in/jan-devries, wa.me/32470123456.",
                    "Jan de Vries",
                ],
            ),
        ),
        (
            "obfuscated-email",
            seed(
                10,
                &["Write to anna dot berg at gmail dot com, or Annas office.", "Anna Berg"],
            ),
        ),
        (
            "accents",
            seed(
                3,
                &["Zoë Müller-Lüdenscheidt und Frau Ångström trafen am 3.4.2023 12 Personen.", "Zoë Müller-Lüdenscheidt", "Åsa Ångström"],
            ),
        ),
    ]
}

// ---- anonymize ---------------------------------------------------------------

/// The anonymizer on a practice made of fuzzer text. Input: a byte of minimum
/// count, then `0xff`-separated fields: known names (`|`-separated), then
/// the practice's id, city, name, area, duration, challenges addressed,
/// description, communication, stakeholder involvement, migrant involvement,
/// challenges, recommendations, lessons (lists `|`-separated) and indicator
/// labels (`|`-separated). What it publishes, anonymized again with the same
/// people and settings, must come out unchanged.
pub fn anonymize(data: &[u8]) {
    let mut input = Input::new(data);
    let min_count = u32::from(input.byte() % 32).max(1);
    let achieved = input.byte();
    let mut parts = fields(input.rest).into_iter();
    let mut next = || parts.next().unwrap_or_default();
    let list = |s: String| -> Vec<String> {
        s.split('|')
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect()
    };
    let names = list(next());
    let mut people = KnownPeople::new();
    for n in names.iter().take(8) {
        people.add(n, NameSource::Roster);
    }
    let practice = Practice {
        id: next(),
        city: next(),
        name: next(),
        area: next(),
        duration: Some(next()).filter(|d| !d.is_empty()),
        challenges_addressed: next(),
        description: next(),
        communication: next(),
        stakeholder_involvement: next(),
        migrant_involvement: next(),
        challenges: list(next()),
        recommendations: list(next()),
        lessons: list(next()),
        indicators: list(next())
            .into_iter()
            .take(8)
            .map(|label| Indicator {
                label,
                achieved: Some(f64::from(achieved)),
                target: None,
                unit: Some("people".into()),
                numerator: None,
                denominator: None,
            })
            .collect(),
        ..Practice::default()
    };
    let settings = AnonymizationSettings::from(AnonymizationPolicy { min_count });
    let run = |practice: &Practice| {
        anonymize_with(&AnonymizerInput {
            practice,
            people: &people,
            settings: &settings,
        })
    };
    let Ok(first) = run(&practice) else {
        return;
    };
    let p = &first.practice;
    let again = Practice {
        id: p.id.clone(),
        city: p.city.clone(),
        name: p.name.clone(),
        area: p.area.clone(),
        thematic_area: p.thematic_area,
        link: p.link.clone(),
        duration: p.duration.clone(),
        challenges_addressed: p.challenges_addressed.clone(),
        stakeholders_involved: p.stakeholders_involved.clone(),
        description: p.description.clone(),
        systematized: p.systematized,
        indicators: p
            .indicators
            .iter()
            .map(|i| Indicator {
                label: i.label.clone(),
                achieved: i.achieved,
                target: i.target,
                unit: i.unit.clone(),
                numerator: None,
                denominator: None,
            })
            .collect(),
        communication: p.communication.clone(),
        stakeholder_involvement: p.stakeholder_involvement.clone(),
        migrant_involvement: p.migrant_involvement.clone(),
        challenges: p.challenges.clone(),
        recommendations: p.recommendations.clone(),
        lessons: p.lessons.clone(),
        contacts: Vec::new(),
        internal_notes: String::new(),
    };
    let second = match run(&again) {
        Ok(second) => second,
        Err(e) => panic!("the anonymizer refuses its own output: {e}"),
    };
    // A suppressed result keeps its label and loses its figures, so the
    // second pass sees a result with no figures, which it does not call
    // suppressed: the flag is the one thing a projection cannot carry back.
    let unflagged = |mut p: crate::share::PublishedPractice| {
        for i in &mut p.indicators {
            i.suppressed = false;
        }
        p
    };
    assert_eq!(
        unflagged(second.practice),
        unflagged(first.practice.clone()),
        "anonymizing a projection again changes it"
    );
}

/// Seeds of `anonymize`.
pub fn anonymize_seeds() -> Vec<Seed> {
    let seed = |min: u8, parts: &[&str]| [vec![min, 40], join_raw(parts)].concat();
    vec![
        (
            "language-cafe",
            seed(
                10,
                &[
                    "Maria Rossi|Jan de Vries",
                    "language-cafe",
                    "Modena",
                    "Language cafe",
                    "Language learning",
                    "2023-03/2024-06",
                    "Isolation of newcomers",
                    "Every Tuesday since 14 March 2023 Maria Rossi (maria@comune.it, +39 059 1234567) hosts 7 newcomers and 40 volunteers.",
                    "Posters in the library; ask Jan de Vries.",
                    "Monthly meetings",
                    "Co-design with 12 participants",
                    "Volunteers' time|Rooms",
                    "Start small",
                    "Food helps|Call Jan on 0470 12 34 56",
                    "Participants|Volunteers",
                ],
            ),
        ),
        (
            "short",
            seed(5, &["Anna Berg", "p1", "", "Mentoring", "Care", "", "", "Anna Berg mentors 3 families.", "", "", "", "", "", "", ""]),
        ),
    ]
}

// ---- config ------------------------------------------------------------------

/// The config file and its overrides. Input: `0xff`-separated fields: the
/// file's text, then the values of `LABNET_NAME`, `LABNET_ROLE`,
/// `LABNET_LISTEN`, `LABNET_ADVERTISE`, `LABNET_LOG_FORMAT` and
/// `LABNET_MIN_COUNT` (an empty field is unset). An accepted config's
/// `labnet init` file, written with its name, role and listen address,
/// parses back to the same three.
pub fn config(data: &[u8]) {
    let parts = fields(data);
    let Some((text, env)) = parts.split_first() else {
        return;
    };
    let keys = [
        "LABNET_NAME",
        "LABNET_ROLE",
        "LABNET_LISTEN",
        "LABNET_ADVERTISE",
        "LABNET_LOG_FORMAT",
        "LABNET_MIN_COUNT",
    ];
    let overrides = Overrides::from_lookup(|key| {
        let i = keys.iter().position(|k| *k == key)?;
        env.get(i).filter(|v| !v.is_empty()).cloned()
    });
    let _ = Config::from_toml("fuzz.toml", text);
    let Ok(config) = Config::load("fuzz.toml", text, &[overrides]) else {
        return;
    };
    let _ = config.contact_address("fuzz.example.org", None);
    let listen = config.listen.to_string();
    let file = labnet_config::default_file(&config.name, config.role, &listen);
    match Config::from_toml("init.toml", &file) {
        Ok(back) => {
            assert_eq!(back.name, config.name, "init wrote another name");
            assert_eq!(back.role, config.role, "init wrote another role");
            assert_eq!(back.listen, config.listen, "init wrote another address");
        }
        Err(e) => panic!("the init file of an accepted config does not parse: {e}"),
    }
}

/// Seeds of `config`: the example file shipped in `dist/`, and small ones.
pub fn config_seeds() -> Vec<Seed> {
    let example = include_str!("../../dist/config.example.toml");
    let init = labnet_config::default_file("Mechelen", Role::Partner, "0.0.0.0:7447");
    vec![
        ("example", example.as_bytes().to_vec()),
        ("init", init.into_bytes()),
        (
            "minimal-with-env",
            join_raw(&[
                "[node]\nname = \"Modena\"\n",
                "Pont-de-Claix",
                "subscriber",
                "127.0.0.1:0",
                "labnet.example.org:7447",
                "json",
                "5",
            ]),
        ),
        (
            "not-names",
            b"[node]\nname = \"X\"\nrole = \"partner\"\n[anonymization]\nmin_count = 3\nnot_names = [\"green\", \"rose\"]\n[console]\nlisten = \"off\"\n[feed]\nlisten = \"127.0.0.1:0\"\n".to_vec(),
        ),
    ]
}

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
        origin: FuzzKey::new(ORIGIN).node_id().to_string(),
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
    let origin = FuzzKey::new(ORIGIN).node_id();
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

/// Every node target's seeds, by target name: what the corpus generator
/// writes to `fuzz/corpus/<target>/` and the regression test replays.
pub fn all_seeds() -> Vec<(&'static str, Vec<Seed>)> {
    vec![
        ("deliver", deliver_seeds()),
        ("session", session_seeds()),
        ("cert_pin", cert_pin_seeds()),
        ("scrub", scrub_seeds()),
        ("anonymize", anonymize_seeds()),
        ("config", config_seeds()),
        ("feed_export", feed_export_seeds()),
        ("feed_verify", feed_verify_seeds()),
    ]
}

/// Runs the node target called `target` on `data`; `false` if no target has
/// that name.
pub fn run(target: &str, data: &[u8]) -> bool {
    match target {
        "deliver" => {
            let _ = deliver(data);
        }
        "session" => session(data),
        "cert_pin" => cert_pin(data),
        "scrub" => scrub(data),
        "anonymize" => anonymize(data),
        "config" => config(data),
        "feed_export" => feed_export(data),
        "feed_verify" => feed_verify(data),
        _ => return false,
    }
    true
}
