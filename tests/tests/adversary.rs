//! A scripted adversarial peer over real QUIC, against a real node.
//!
//! The victim is a whole daemon in this test process (real QUIC on
//! 127.0.0.1, real SQLite in a temporary directory), paired in the ordinary
//! way with an honest partner city. The adversary is a real *approved* peer:
//! its own Ed25519 identity, approved by the victim's admin once as a partner
//! and once (a second identity) as a subscriber. It dials with its own
//! credential, says `Hello`, reads the `Welcome`, and from then on writes sync
//! frames it crafted itself, one bad thing per connection, reconnecting after
//! every close, more than a thousand times in all.
//!
//! For each attempt the test checks the close code the victim used (or, for
//! a replayed older version, that the victim ignored it and kept the
//! connection open); at the end, that the victim stored nothing from the
//! adversary but the one publication it legitimately published, and that no
//! feed entry speaks for a city that did not sign it. All the while the
//! honest partner keeps receiving the victim's new versions, shown by the
//! sync notice of their arrival, mid-attack and at the end. The victim's
//! resident memory (this process's, it runs here) is read before and after.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ChangeHash, ROOT};
use labnet_config::Role;
use labnet_node::daemon::Daemon;
use labnet_node::identity::Identity;
use labnet_node::share::publication::{edit_sample, sample_body, sample_doc};
use labnet_node::sync::driver::SyncNotice;
use labnet_node::trust::Scope;
use labnet_protocol::chunk::{
    check_change_chunk, zeros_change_hash, CHANGE_CHUNK_LEN_MAX, CHUNK_MAGIC,
};
use labnet_protocol::close::{CloseCode, ViolationCode};
use labnet_protocol::handshake::PeerRole;
use labnet_protocol::statement::{ScopeClass, Signable, Signed, Signer, VersionStatement};
use labnet_protocol::sync::{
    publication_id, Announcement, DecodeError, DocId, Inventory, SyncMessage, WantItem,
    MESSAGE_LEN_MAX, SYNC_PROTOCOL_VERSION, WANT_ITEMS_MAX,
};
use labnet_protocol::varint::put_varint;
use labnet_protocol::NodeId;
use labnet_tests::nodes::{
    approve, both_connected, eventually, pair_connected, partners_in_tmp, publish, replicas,
};
use labnet_tests::raw_peer::{
    client_config, client_endpoint, hello, mib, resident_memory_bytes, Ended, RawPeer,
};
use rand::{Rng, SeedableRng};

/// The longest any one step of an attempt may take (connecting, the victim's
/// `Want`, its close). Every answer the victim owes comes within one of its
/// steps; 10 s is for a loaded 2-core machine in a debug build.
/// Where the attempts' inventory sequence numbers start: each attempt's
/// connection announces at `ATTEMPT_SEQ_BASE + n`, and an ignored attempt is
/// shown by the victim's ack of exactly that number.
const ATTEMPT_SEQ_BASE: u64 = 100;

const WAIT: Duration = Duration::from_secs(10);

/// How long the honest partner may take to receive a version the victim
/// publishes while it is under attack.
const CONVERGE: Duration = Duration::from_secs(60);

/// Bad connections of the adversary approved as a partner: 40 rounds of its
/// 17 cases.
const PARTNER_ATTEMPTS: usize = 40 * 17;

/// Bad connections of the adversary approved as a subscriber: 30 rounds of
/// its 14 cases. With the partner's, 1,100 in all.
const SUBSCRIBER_ATTEMPTS: usize = 30 * 14;

/// How soon version 1's Automerge sync message must close the connection:
/// it is refused by its tag byte, before anything of it is read, so the close
/// takes one step of the victim's session (milliseconds); 2 s leaves a wide
/// margin for a loaded machine and still catches a victim that parses it.
const RETIRED_CLOSE_MAX: Duration = Duration::from_secs(2);

/// How much the victim's resident memory may grow over all the attempts.
///
/// What one attempt may make the victim hold is bounded by its own limits:
/// one frame of at most `MESSAGE_LEN_MAX` (8 MiB) while it is read, one
/// change chunk inflated under `INFLATED_CHANGE_LEN_MAX` (1 MiB), a scratch
/// Automerge copy of a practice-sized publication (tens of KiB), and the
/// connection's QUIC state; all of it is dropped when the connection closes.
/// What may stay after a thousand attempts is allocator slack and caches
/// (each session's SQLite read connection and its page cache, quinn's
/// per-endpoint tables), a few MiB. 64 MiB is what one deflate bomb of this
/// test inflates to: a victim that inflated a single bomb in full, or kept
/// the frames of some sixty oversized chunks, crosses it; allocator noise
/// does not. (The figure includes the adversary's own allocations in this
/// process; its payloads are built before the first reading.)
const RSS_GROWTH_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// What the deflate bomb inflates to: 64 MiB of zeros, 64 times the cap.
const BOMB_INFLATED_LEN: usize = 64 * 1024 * 1024;

/// The checksum of a change whose body is `BOMB_INFLATED_LEN` zeros, as
/// `protocol/src/chunk.rs` writes it down and
/// `(printf '\x01\x80\x80\x80\x20'; head -c 67108864 /dev/zero) | sha256sum`
/// gives: the test computes it too, and checks the two agree.
const BOMB_CHECKSUM: [u8; 4] = [0xe6, 0x4a, 0xa4, 0xd5];

/// Version 1's 15-byte Automerge sync message whose Bloom filter claims
/// 2^32-1 probes (which made automerge 0.12 allocate without bound).
const V1_BLOOM_SYNC_MESSAGE: [u8; 15] = [
    0x42, 0, 1, 1, 0x20, 0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0, 0,
];

// ---- the cases ----------------------------------------------------------------

/// One kind of attack; each connection carries one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Case {
    ForgedSignature,
    KeyNotTheId,
    RelayedPartnersScope,
    RelayedNamedScope,
    StaleReplay,
    HeadsMismatch,
    OversizedChunk,
    DeflateBomb,
    DuplicatedWant,
    WantOutOfScope,
    WrongShape,
    ClaimsAnotherCity,
    SubscriberAnnounces,
    SubscriberDelivers,
    SubscriberRelays,
    Truncated,
    TruncatedFrame,
    RandomBytes,
    RetiredBloomMessage,
    OversizedFrame,
}

impl Case {
    /// The attack, in words.
    fn description(self) -> &'static str {
        match self {
            Case::ForgedSignature => {
                "forged signature: a statement for the adversary's own publication, signed with a third city's key"
            }
            Case::KeyNotTheId => {
                "key not matching the id: a statement for the adversary's publication id, carrying and signed by a third city's key"
            }
            Case::RelayedPartnersScope => {
                "relay of a partners-scoped publication: a third city's valid statement and changes, scoped partners, delivered by the adversary"
            }
            Case::RelayedNamedScope => {
                "relay of a named-scope publication: a third city's valid statement and changes, scoped to named cities, delivered by the adversary"
            }
            Case::StaleReplay => {
                "replay of an older version: the adversary's own valid version 1, announced as newer, after version 2 was accepted (must be ignored, the connection stays open)"
            }
            Case::HeadsMismatch => {
                "heads that don't match the changes: a valid statement whose signed heads the delivered changes do not give (an earlier change only, a later change without its dependency, or made-up heads)"
            }
            Case::OversizedChunk => {
                "oversized chunk: a delivery whose one change chunk has CHANGE_CHUNK_LEN_MAX + 1 bytes"
            }
            Case::DeflateBomb => {
                "deflate bomb: a type-2 compressed change of ~420 KB inflating to 64 MiB of zeros, with a correct checksum, under a valid statement"
            }
            Case::DuplicatedWant => {
                "duplicated request: one Want naming the victim's public publication 256 times"
            }
            Case::WantOutOfScope => {
                "request outside the scope: a Want for a victim publication the adversary may not see"
            }
            Case::WrongShape => {
                "wrong shape: a validly signed document with the right heads that is not a publication (built with automerge directly)"
            }
            Case::ClaimsAnotherCity => {
                "content claiming another city: a publication body naming a third city (or the victim) as its origin, under the adversary's own valid statement"
            }
            Case::SubscriberAnnounces => {
                "subscriber announcing: an inventory listing a publication of the subscriber's own (acknowledged and ignored: nothing stored)"
            }
            Case::SubscriberDelivers => {
                "subscriber delivering: its own validly signed publication, unasked"
            }
            Case::SubscriberRelays => {
                "subscriber relaying: a third city's valid public statement and changes, unasked"
            }
            Case::Truncated => "truncated message: a valid delivery cut short, in a whole frame",
            Case::TruncatedFrame => {
                "truncated frame: a frame header announcing a whole delivery, part of it, then the end of the stream (FIN)"
            }
            Case::RandomBytes => "random bytes: a frame of 1 to 256 random bytes that is no sync message",
            Case::RetiredBloomMessage => {
                "version 1's 15-byte Automerge sync message, Bloom filter claiming 2^32-1 probes, framed as tag 0x04, straight after the handshake (must close at once)"
            }
            Case::OversizedFrame => {
                "oversized frame: a frame header announcing MESSAGE_LEN_MAX + 1 bytes"
            }
        }
    }
}

/// What the adversary approved as a partner tries, in turn.
const PARTNER_CASES: [Case; 17] = [
    Case::ForgedSignature,
    Case::KeyNotTheId,
    Case::RelayedPartnersScope,
    Case::RelayedNamedScope,
    Case::StaleReplay,
    Case::HeadsMismatch,
    Case::OversizedChunk,
    Case::DeflateBomb,
    Case::DuplicatedWant,
    Case::WantOutOfScope,
    Case::WrongShape,
    Case::ClaimsAnotherCity,
    Case::Truncated,
    Case::TruncatedFrame,
    Case::RandomBytes,
    Case::RetiredBloomMessage,
    Case::OversizedFrame,
];

/// What the adversary approved as a subscriber tries, in turn. It can never
/// be asked for anything (a subscriber's announcements are refused), so its
/// deliveries are all unasked.
const SUBSCRIBER_CASES: [Case; 14] = [
    Case::ForgedSignature,
    Case::KeyNotTheId,
    Case::SubscriberAnnounces,
    Case::SubscriberDelivers,
    Case::SubscriberRelays,
    Case::OversizedChunk,
    Case::DeflateBomb,
    Case::DuplicatedWant,
    Case::WantOutOfScope,
    Case::Truncated,
    Case::TruncatedFrame,
    Case::RandomBytes,
    Case::RetiredBloomMessage,
    Case::OversizedFrame,
];

/// What the victim must do about an attempt.
#[derive(Debug, Clone)]
enum Expect {
    /// Close the connection with one of these application codes.
    Closed(Vec<u32>),
    /// Ignore it and carry on: the batch is acknowledged, the connection stays.
    Ignored,
}

/// One connection's script.
struct Attempt {
    /// Announce this publication at this version after our `Resume`, and
    /// wait for the victim's `Want` before the bad thing.
    announce: Option<(DocId, u64)>,
    /// Send the bad thing straight after the handshake, before `Resume`.
    before_resume: bool,
    /// The bad thing: bytes as they go on the stream (framed, or not).
    wire: Vec<u8>,
    /// End our side of the stream right after it.
    finish: bool,
    /// Count the deliveries the victim sends after the bad thing (a request
    /// must be checked whole before anything is answered).
    count_deliveries: bool,
    expect: Expect,
}

fn violation(code: ViolationCode) -> Expect {
    Expect::Closed(vec![code.as_u32()])
}

fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 4);
    labnet_protocol::frame::encode_frame(body, &mut out);
    out
}

// ---- documents and statements ---------------------------------------------------

/// A document's id, sorted heads and change chunks (all of its history).
#[derive(Clone)]
struct Doc {
    id: DocId,
    heads: Vec<[u8; 32]>,
    changes: Vec<Vec<u8>>,
}

fn sorted_heads(doc: &mut AutoCommit) -> Vec<[u8; 32]> {
    let mut heads: Vec<[u8; 32]> = doc.get_heads().into_iter().map(|h| h.0).collect();
    heads.sort();
    heads
}

fn chunks_after(doc: &mut AutoCommit, after: &[ChangeHash]) -> Vec<Vec<u8>> {
    doc.get_changes(after)
        .iter()
        .map(|c| c.raw_bytes().to_vec())
        .collect()
}

fn doc_of(id: DocId, mut doc: AutoCommit) -> Doc {
    Doc {
        id,
        heads: sorted_heads(&mut doc),
        changes: chunks_after(&mut doc, &[]),
    }
}

fn key_of(id: &Identity) -> [u8; 32] {
    Signer::public_key(id)
}

fn body(
    doc_id: &DocId,
    origin_key: [u8; 32],
    version: u64,
    heads: &[[u8; 32]],
    scope: ScopeClass,
) -> VersionStatement {
    let mut heads = heads.to_vec();
    heads.sort();
    heads.dedup();
    VersionStatement {
        publication: doc_id.clone(),
        origin_key,
        version,
        heads,
        scope,
        retracted: false,
        issued_at: 1_764_000_000 + version,
    }
}

/// `signer`'s valid statement of version `version` of `doc`.
fn statement(signer: &Identity, doc: &Doc, version: u64, scope: ScopeClass) -> Vec<u8> {
    Signed::sign(
        body(&doc.id, key_of(signer), version, &doc.heads, scope),
        signer,
    )
    .encode()
}

fn deliver(statement: Vec<u8>, changes: Vec<Vec<u8>>) -> Vec<u8> {
    framed(&SyncMessage::Deliver { statement, changes }.encode())
}

// ---- the deflate bomb -----------------------------------------------------------

/// Bits in DEFLATE's order: values least significant bit first, Huffman
/// codes most significant bit first (RFC 1951, 3.1.1).
#[derive(Default)]
struct BitWriter {
    out: Vec<u8>,
    acc: u8,
    used: u32,
}

impl BitWriter {
    fn bit(&mut self, bit: u32) {
        self.acc |= ((bit & 1) as u8) << self.used;
        self.used += 1;
        if self.used == 8 {
            self.out.push(self.acc);
            self.acc = 0;
            self.used = 0;
        }
    }
    fn value(&mut self, value: u32, bits: u32) {
        for i in 0..bits {
            self.bit(value >> i);
        }
    }
    fn code(&mut self, code: u32, bits: u32) {
        for i in (0..bits).rev() {
            self.bit(code >> i);
        }
    }
    fn finish(mut self) -> Vec<u8> {
        if self.used > 0 {
            self.out.push(self.acc);
        }
        self.out
    }
}

/// Raw DEFLATE of `len` zero bytes in one fixed-Huffman block: a literal
/// zero, then copies of 258 bytes at distance 1 (13 bits each), the rest as
/// literals, then the end of the block.
fn deflate_zeros(len: usize) -> Vec<u8> {
    const LITERAL_ZERO: u32 = 0x30; // literals 0..=143: 8 bits from 0b0011_0000
    const LENGTH_258: u32 = 0xc5; // symbol 285: 8 bits, 0b1100_0000 + 5
    const DISTANCE_1: u32 = 0; // distance code 0: 5 bits
    const END_OF_BLOCK: u32 = 0; // symbol 256: 7 bits
    let mut w = BitWriter::default();
    w.value(1, 1); // BFINAL
    w.value(1, 2); // BTYPE 01: fixed Huffman codes
    let mut left = len;
    if left > 0 {
        w.code(LITERAL_ZERO, 8);
        left -= 1;
    }
    while left >= 258 {
        w.code(LENGTH_258, 8);
        w.code(DISTANCE_1, 5);
        left -= 258;
    }
    for _ in 0..left {
        w.code(LITERAL_ZERO, 8);
    }
    w.code(END_OF_BLOCK, 7);
    w.finish()
}

/// A type-2 (compressed) change chunk of `len` zeros, with the checksum of
/// its uncompressed form, as Automerge writes one.
fn compressed_zeros_chunk(len: usize) -> Vec<u8> {
    let hash = zeros_change_hash(len);
    let deflated = deflate_zeros(len);
    let mut out = CHUNK_MAGIC.to_vec();
    out.extend_from_slice(&hash[..4]);
    out.push(2);
    put_varint(&mut out, deflated.len() as u64);
    out.extend_from_slice(&deflated);
    out
}

/// The bomb, with its recipe checked first on a size that passes the cap:
/// the chunk inflates (through labnet's own checker) to exactly the plain
/// change of those zeros, with the hash computed here.
fn deflate_bomb() -> Vec<u8> {
    let small = 100_000;
    let checked = check_change_chunk(&compressed_zeros_chunk(small))
        .expect("a small compressed chunk of zeros passes the checks");
    let mut plain = CHUNK_MAGIC.to_vec();
    let hash = zeros_change_hash(small);
    plain.extend_from_slice(&hash[..4]);
    plain.push(1);
    put_varint(&mut plain, small as u64);
    plain.resize(plain.len() + small, 0);
    assert_eq!(checked.as_bytes(), plain.as_slice());
    assert_eq!(checked.hash(), hash);
    let bomb = compressed_zeros_chunk(BOMB_INFLATED_LEN);
    assert_eq!(bomb[4..8], BOMB_CHECKSUM, "the 64 MiB checksum");
    assert!(
        bomb.len() < CHANGE_CHUNK_LEN_MAX / 2,
        "{} bytes",
        bomb.len()
    );
    assert!(
        check_change_chunk(&bomb).is_err(),
        "the bomb is refused at the cap"
    );
    bomb
}

// ---- what the adversary carries ---------------------------------------------------

/// Everything an adversary's attempts are built from, made before the first
/// memory reading.
struct Arsenal {
    me: Arc<Identity>,
    third: Arc<Identity>,
    /// A publication of ours with two changes.
    own: Doc,
    /// Its first change only, and the heads after it.
    own_first: Doc,
    /// A third city's publication.
    third_doc: Doc,
    /// Not a publication, under our id.
    shapeless: Doc,
    /// Publication bodies of a third city and of the victim, under our id.
    claims: [Doc; 2],
    /// Our legitimate publication: its version 1 (statement, changes); the
    /// victim holds version 2.
    legit_v1: Option<(DocId, Vec<u8>, Vec<Vec<u8>>)>,
    bomb: Vec<u8>,
    oversized_chunk: Vec<u8>,
    /// The victim's public publication, and one we may not see.
    victim_public: DocId,
    victim_hidden: DocId,
}

impl Arsenal {
    fn new(
        me: Arc<Identity>,
        third: Arc<Identity>,
        victim: NodeId,
        bomb: Vec<u8>,
        victim_public: DocId,
        victim_hidden: DocId,
    ) -> Arsenal {
        let origin = me.node_id();
        let own_id = publication_id(origin, "own").unwrap();
        let mut own_doc = sample_doc(&sample_body(origin, "own", 1));
        let first_heads = own_doc.get_heads();
        let first = chunks_after(&mut own_doc, &[]);
        edit_sample(&mut own_doc, "a second change");
        let own = doc_of(own_id.clone(), own_doc);
        assert_eq!(own.changes.len(), 2);
        let own_first = Doc {
            id: own_id,
            heads: first_heads.into_iter().map(|h| h.0).collect(),
            changes: first,
        };
        let third_id = publication_id(third.node_id(), "theirs").unwrap();
        let third_doc = doc_of(
            third_id,
            sample_doc(&sample_body(third.node_id(), "theirs", 2)),
        );
        let mut shapeless_doc = AutoCommit::new();
        shapeless_doc.put(ROOT, "payload", "x".repeat(200)).unwrap();
        shapeless_doc
            .put(ROOT, "meta", "not a publication")
            .unwrap();
        let shapeless = doc_of(publication_id(origin, "shapeless").unwrap(), shapeless_doc);
        let claimed = publication_id(origin, "claimed").unwrap();
        let claims = [third.node_id(), victim].map(|other| {
            doc_of(
                claimed.clone(),
                sample_doc(&sample_body(other, "claimed", 3)),
            )
        });
        let mut oversized_chunk = CHUNK_MAGIC.to_vec();
        oversized_chunk.extend_from_slice(&[0, 0, 0, 0, 1]);
        put_varint(&mut oversized_chunk, CHANGE_CHUNK_LEN_MAX as u64);
        oversized_chunk.resize(CHANGE_CHUNK_LEN_MAX + 1, 0x5a);
        Arsenal {
            me,
            third,
            own,
            own_first,
            third_doc,
            shapeless,
            claims,
            legit_v1: None,
            bomb,
            oversized_chunk,
            victim_public,
            victim_hidden,
        }
    }

    /// The script of attempt `n`, a `case`, for an adversary of `role`.
    fn build(&self, case: Case, role: PeerRole, n: u64, rng: &mut impl Rng) -> Attempt {
        let partner = role == PeerRole::Partner;
        let version = 10 + n;
        let me = self.me.as_ref();
        let third = self.third.as_ref();
        // A subscriber delivers nothing: any delivery from it fails check 1
        // of `receive.rs` before anything of it is read.
        let announce = |doc: &DocId| partner.then(|| (doc.clone(), version));
        let unasked = |partner_code: ViolationCode| {
            violation(if partner {
                partner_code
            } else {
                ViolationCode::ScopeViolation
            })
        };
        let plain = |announce, wire, expect| Attempt {
            announce,
            before_resume: false,
            wire,
            finish: false,
            count_deliveries: false,
            expect,
        };
        // A statement body of our own publication at this version, public,
        // naming `key` as the origin's and `heads` as the version's.
        let own_body =
            |key, heads: &[[u8; 32]]| body(&self.own.id, key, version, heads, ScopeClass::Public);
        // `signer`'s valid statement of `doc` at this version, with all of
        // `doc`'s changes.
        let valid = |signer: &Identity, doc: &Doc, scope| {
            deliver(statement(signer, doc, version, scope), doc.changes.clone())
        };
        match case {
            Case::ForgedSignature => {
                let b = own_body(key_of(me), &self.own.heads);
                let forged = Signed::from_parts(b.clone(), &third.sign(&b.signing_bytes()))
                    .unwrap()
                    .encode();
                plain(
                    announce(&self.own.id),
                    deliver(forged, self.own.changes.clone()),
                    unasked(ViolationCode::BadStatement),
                )
            }
            Case::KeyNotTheId => {
                let b = own_body(key_of(third), &self.own.heads);
                plain(
                    announce(&self.own.id),
                    deliver(Signed::sign(b, third).encode(), self.own.changes.clone()),
                    unasked(ViolationCode::BadStatement),
                )
            }
            Case::RelayedPartnersScope | Case::RelayedNamedScope => {
                let scope = if case == Case::RelayedNamedScope {
                    ScopeClass::Named
                } else {
                    ScopeClass::Partners
                };
                plain(
                    announce(&self.third_doc.id),
                    valid(third, &self.third_doc, scope),
                    violation(ViolationCode::ScopeViolation),
                )
            }
            Case::StaleReplay => {
                let (id, old, changes) = self.legit_v1.clone().expect("a partner's publication");
                plain(Some((id, version)), deliver(old, changes), Expect::Ignored)
            }
            Case::HeadsMismatch => {
                let (heads, changes) = match n % 3 {
                    // The later heads, the earlier change only.
                    0 => (self.own.heads.clone(), self.own_first.changes.clone()),
                    // The later change without the one it depends on.
                    1 => (self.own.heads.clone(), self.own.changes[1..].to_vec()),
                    // Heads nobody made.
                    _ => (vec![rng.gen::<[u8; 32]>()], self.own.changes.clone()),
                };
                let b = own_body(key_of(me), &heads);
                plain(
                    announce(&self.own.id),
                    deliver(Signed::sign(b, me).encode(), changes),
                    violation(ViolationCode::HeadsMismatch),
                )
            }
            Case::OversizedChunk | Case::DeflateBomb => {
                let (chunk, expect) = if case == Case::OversizedChunk {
                    // Refused by the message decoder's length check before the
                    // chunk is read: MalformedMessage ("exceed a limit"), not
                    // BadChunk.
                    let oversized = &self.oversized_chunk;
                    (oversized, violation(ViolationCode::MalformedMessage))
                } else {
                    (&self.bomb, unasked(ViolationCode::BadChunk))
                };
                let statement = statement(me, &self.own, version, ScopeClass::Public);
                plain(
                    announce(&self.own.id),
                    deliver(statement, vec![chunk.clone()]),
                    expect,
                )
            }
            Case::DuplicatedWant | Case::WantOutOfScope => {
                let (doc, count, code) = if case == Case::DuplicatedWant {
                    let public = &self.victim_public;
                    (public, WANT_ITEMS_MAX, ViolationCode::UnexpectedMessage)
                } else {
                    (&self.victim_hidden, 1, ViolationCode::UnknownDoc)
                };
                let item = WantItem {
                    doc_id: doc.clone(),
                    have: Vec::new(),
                };
                let items = vec![item; count];
                Attempt {
                    count_deliveries: true,
                    ..plain(
                        None,
                        framed(&SyncMessage::Want { items }.encode()),
                        violation(code),
                    )
                }
            }
            Case::WrongShape | Case::ClaimsAnotherCity => {
                let doc = if case == Case::WrongShape {
                    &self.shapeless
                } else {
                    &self.claims[(n % 2) as usize]
                };
                plain(
                    announce(&doc.id),
                    valid(me, doc, ScopeClass::Public),
                    violation(ViolationCode::BadDocument),
                )
            }
            Case::SubscriberAnnounces => {
                // The attempt's own sequence number, which its ack must name.
                let seq = ATTEMPT_SEQ_BASE + n;
                let inventory = SyncMessage::Inventory(Inventory {
                    epoch: 1,
                    entries: vec![Announcement {
                        doc_id: self.own.id.clone(),
                        version,
                        retracted: false,
                        seq,
                    }],
                    up_to_seq: seq,
                    full: true,
                    complete: true,
                });
                // A subscriber's announcements are acknowledged and ignored,
                // not punished: a city downgraded to subscriber still announces
                // its own publications, and must stay connected to have ours
                // withdrawn. Nothing is stored (checked at
                // the end against the victim's store and feed).
                plain(None, framed(&inventory.encode()), Expect::Ignored)
            }
            Case::SubscriberDelivers | Case::SubscriberRelays => {
                let (signer, doc) = if case == Case::SubscriberDelivers {
                    (me, &self.own)
                } else {
                    (third, &self.third_doc)
                };
                plain(
                    None,
                    valid(signer, doc, ScopeClass::Public),
                    violation(ViolationCode::ScopeViolation),
                )
            }
            Case::Truncated => {
                let whole = SyncMessage::Deliver {
                    statement: statement(me, &self.own, version, ScopeClass::Public),
                    changes: self.own.changes.clone(),
                }
                .encode();
                let cut = rng.gen_range(1..whole.len());
                let body = &whole[..cut];
                assert!(
                    !matches!(
                        SyncMessage::decode(body),
                        Ok(_) | Err(DecodeError::Retired(_))
                    ),
                    "a cut delivery does not decode"
                );
                plain(
                    announce(&self.own.id),
                    framed(body),
                    violation(ViolationCode::MalformedMessage),
                )
            }
            Case::TruncatedFrame => {
                let mut wire = valid(me, &self.own, ScopeClass::Public);
                let cut = rng.gen_range(5..wire.len());
                wire.truncate(cut);
                // The stream ends inside a frame: bytes that are no sync
                // message, an error as much as a cut message in a whole frame.
                Attempt {
                    finish: true,
                    ..plain(
                        announce(&self.own.id),
                        wire,
                        violation(ViolationCode::MalformedMessage),
                    )
                }
            }
            Case::RandomBytes => {
                let body = loop {
                    let len = rng.gen_range(1..=256);
                    let bytes: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
                    if !matches!(
                        SyncMessage::decode(&bytes),
                        Ok(_) | Err(DecodeError::Retired(_))
                    ) {
                        break bytes;
                    }
                };
                plain(
                    None,
                    framed(&body),
                    violation(ViolationCode::MalformedMessage),
                )
            }
            Case::RetiredBloomMessage => {
                let mut body = vec![0x04, 1, b'd', V1_BLOOM_SYNC_MESSAGE.len() as u8];
                body.extend_from_slice(&V1_BLOOM_SYNC_MESSAGE);
                Attempt {
                    before_resume: true,
                    ..plain(
                        None,
                        framed(&body),
                        violation(ViolationCode::RetiredMessage),
                    )
                }
            }
            Case::OversizedFrame => {
                let mut wire = (MESSAGE_LEN_MAX as u32 + 1).to_be_bytes().to_vec();
                wire.extend_from_slice(&[0x0a; 64]);
                // Bytes over a limit are the sync registry's MalformedMessage
                // ("bytes that are not a sync message, or exceed a limit"); a
                // frame over its limit is CloseCode::FrameTooLarge in the
                // handshake. Either is an error code; a Normal close is not.
                plain(
                    None,
                    wire,
                    Expect::Closed(vec![
                        ViolationCode::MalformedMessage.as_u32(),
                        CloseCode::FrameTooLarge.as_u32(),
                    ]),
                )
            }
        }
    }
}

// ---- the adversary --------------------------------------------------------------

/// One version an origin delivers: its signed statement, the changes, and
/// the heads the victim should say it holds when it asks.
struct Version {
    statement: Vec<u8>,
    changes: Vec<Vec<u8>>,
    have: Vec<[u8; 32]>,
}

/// An approved peer that dials the victim with its own credential.
struct Adversary {
    name: &'static str,
    role: PeerRole,
    config: quinn::ClientConfig,
    endpoint: quinn::Endpoint,
    target: SocketAddr,
}

/// What happened to one attempt.
#[derive(Debug)]
enum Outcome {
    /// The victim closed with `code`, `after` the bad thing was sent,
    /// having sent `delivered` deliveries after it.
    Closed {
        code: u64,
        reason: String,
        after: Duration,
        delivered: usize,
    },
    /// The victim acknowledged the batch and kept the connection open.
    Ignored,
    /// Anything else: the victim stalled, or the script could not run.
    Problem(String),
}

fn want_for(msg: &SyncMessage, doc: &DocId) -> Option<Vec<[u8; 32]>> {
    match msg {
        SyncMessage::Want { items } => items
            .iter()
            .find(|i| i.doc_id == *doc)
            .map(|i| i.have.clone()),
        _ => None,
    }
}

fn acked(msg: &SyncMessage, seq: u64) -> Option<()> {
    matches!(msg, SyncMessage::InventoryAck { up_to_seq, .. } if *up_to_seq == seq).then_some(())
}

fn inventory(doc: &DocId, version: u64, seq: u64) -> SyncMessage {
    SyncMessage::Inventory(Inventory {
        epoch: 1,
        entries: vec![Announcement {
            doc_id: doc.clone(),
            version,
            retracted: false,
            seq,
        }],
        up_to_seq: seq,
        full: false,
        complete: true,
    })
}

const RESUME: SyncMessage = SyncMessage::Resume {
    version: SYNC_PROTOCOL_VERSION,
    from: None,
};

impl Adversary {
    async fn connect(&self) -> Result<RawPeer, String> {
        let peer = RawPeer::connect(
            &self.endpoint,
            self.config.clone(),
            self.target,
            hello(self.name, self.role),
            WAIT,
        )
        .await?;
        Ok(peer)
    }

    /// Publishes `doc` legitimately, version 1 then version 2, the way an
    /// origin does: announce, wait for the `Want`, deliver, wait for the ack.
    async fn publish(&self, doc_id: &DocId, versions: [Version; 2]) -> Result<(), String> {
        let mut peer = self.connect().await?;
        peer.send_message(&RESUME).await?;
        for (i, version) in versions.into_iter().enumerate() {
            let Version {
                statement,
                changes,
                have,
            } = version;
            let seq = i as u64 + 1;
            peer.send_message(&inventory(doc_id, seq, seq)).await?;
            let (asked, _) = peer.until(WAIT, |m| want_for(m, doc_id)).await?;
            assert_eq!(asked, have, "the victim asks for what it lacks");
            peer.send_message(&SyncMessage::Deliver { statement, changes })
                .await?;
            peer.until(WAIT, |m| acked(m, seq)).await?;
        }
        peer.close();
        Ok(())
    }

    /// One connection carrying one bad thing.
    async fn attempt(&self, a: &Attempt, seq: u64) -> Outcome {
        let mut peer = match self.connect().await {
            Ok(p) => p,
            Err(e) => return Outcome::Problem(format!("connecting: {e}")),
        };
        let outcome = self.run(&mut peer, a, seq).await;
        peer.close();
        outcome
    }

    async fn run(&self, peer: &mut RawPeer, a: &Attempt, seq: u64) -> Outcome {
        if !a.before_resume {
            if let Err(e) = peer.send_message(&RESUME).await {
                return Outcome::Problem(format!("sending Resume: {e}"));
            }
            if let Some((doc, version)) = &a.announce {
                if let Err(e) = peer.send_message(&inventory(doc, *version, seq)).await {
                    return Outcome::Problem(format!("announcing: {e}"));
                }
                if let Err(e) = peer.until(WAIT, |m| want_for(m, doc)).await {
                    return Outcome::Problem(format!(
                        "no Want for the announced {doc}: {e}; {:?}",
                        peer.ended(Duration::ZERO).await
                    ));
                }
            }
        }
        // A write may fail once the victim has closed: what counts is how.
        let _ = peer.send_bytes(&a.wire).await;
        if a.finish {
            let _ = peer.finish();
        }
        let sent = Instant::now();
        match a.expect {
            Expect::Ignored => match peer.until(WAIT, |m| acked(m, seq)).await {
                Ok(_) if peer.connection().close_reason().is_none() => Outcome::Ignored,
                Ok(_) => Outcome::Problem(format!(
                    "acknowledged, then closed: {:?}",
                    peer.connection().close_reason()
                )),
                Err(e) => match peer.ended(Duration::ZERO).await {
                    Ended::ByNode { code, reason } => Outcome::Closed {
                        code,
                        reason,
                        after: sent.elapsed(),
                        delivered: 0,
                    },
                    _ => Outcome::Problem(format!("no acknowledgement: {e}")),
                },
            },
            Expect::Closed(_) => {
                let mut delivered = 0;
                if a.count_deliveries {
                    while let Ok(msg) = peer.next_message(WAIT).await {
                        if matches!(msg, SyncMessage::Deliver { .. }) {
                            delivered += 1;
                        }
                    }
                }
                match peer.ended(WAIT).await {
                    Ended::ByNode { code, reason } => Outcome::Closed {
                        code,
                        reason,
                        after: sent.elapsed(),
                        delivered,
                    },
                    other => Outcome::Problem(format!("not closed by the victim: {other:?}")),
                }
            }
        }
    }
}

// ---- the tally ------------------------------------------------------------------

fn code_name(code: u64) -> String {
    let n = u32::try_from(code).unwrap_or(u32::MAX);
    if let Some(v) = ViolationCode::from_u32(n) {
        format!("{v:?} ({code:#x})")
    } else if let Some(c) = CloseCode::from_u32(n) {
        format!("CloseCode::{c:?} ({code:#x})")
    } else {
        format!("{code:#x}")
    }
}

/// Per case: attempts, outcomes by name, and what went wrong.
#[derive(Default)]
struct CaseTally {
    attempts: usize,
    wrong: usize,
    outcomes: BTreeMap<String, usize>,
    slowest_close: Duration,
    /// The first few wrong outcomes, in words.
    failures: Vec<String>,
}

#[derive(Default)]
struct Tally {
    cases: BTreeMap<(&'static str, Case), CaseTally>,
}

fn expected_name(expect: &Expect) -> String {
    match expect {
        Expect::Ignored => "ignored, the connection kept open".into(),
        Expect::Closed(codes) => codes
            .iter()
            .map(|c| code_name(u64::from(*c)))
            .collect::<Vec<_>>()
            .join(" or "),
    }
}

impl Tally {
    fn record(&mut self, who: &'static str, case: Case, expect: &Expect, outcome: Outcome) {
        let t = self.cases.entry((who, case)).or_default();
        t.attempts += 1;
        let (name, right) = match &outcome {
            Outcome::Ignored => (
                "ignored, open".to_string(),
                matches!(expect, Expect::Ignored),
            ),
            Outcome::Closed {
                code,
                reason,
                after,
                delivered,
            } => {
                t.slowest_close = t.slowest_close.max(*after);
                let code_expected = match expect {
                    Expect::Closed(codes) => codes.iter().any(|c| u64::from(*c) == *code),
                    Expect::Ignored => false,
                };
                let mut name = code_name(*code);
                if ViolationCode::from_u32(*code as u32).is_none() {
                    // Not a sync violation: say what the victim said.
                    name = format!("{name} {reason:?}");
                }
                if *delivered > 0 {
                    name = format!("{name} after {delivered} deliveries");
                }
                (name, code_expected && *delivered == 0)
            }
            Outcome::Problem(why) => (format!("problem: {why}"), false),
        };
        *t.outcomes.entry(name).or_default() += 1;
        if !right {
            t.wrong += 1;
            if t.failures.len() < 3 {
                t.failures
                    .push(format!("{outcome:?}, expected {}", expected_name(expect)));
            }
        }
    }

    fn total(&self) -> usize {
        self.cases.values().map(|t| t.attempts).sum()
    }

    fn print(&self) {
        println!("attempts by case:");
        for ((who, case), t) in &self.cases {
            println!(
                "  {who:<10} {:<21} {:>4}  {:?}  slowest close {:?}",
                format!("{case:?}"),
                t.attempts,
                t.outcomes,
                t.slowest_close
            );
        }
    }

    /// Every case that went wrong, with what was sent and what happened.
    fn failures(&self) -> Vec<String> {
        self.cases
            .iter()
            .filter(|(_, t)| t.wrong > 0)
            .map(|((who, case), t)| {
                format!(
                    "{who} / {case:?}: {}\n    {} of {} attempts wrong, e.g. {:?}",
                    case.description(),
                    t.wrong,
                    t.attempts,
                    t.failures
                )
            })
            .collect()
    }
}

/// Runs `attempts` connections of `adversary`, cycling through `cases`.
async fn attack(
    adversary: Adversary,
    arsenal: Arsenal,
    cases: &'static [Case],
    attempts: usize,
    progress: Arc<AtomicUsize>,
    seed: u64,
) -> Tally {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut tally = Tally::default();
    for n in 0..attempts {
        let case = cases[n % cases.len()];
        let attempt = arsenal.build(case, adversary.role, n as u64, &mut rng);
        let outcome = adversary
            .attempt(&attempt, ATTEMPT_SEQ_BASE + n as u64)
            .await;
        tally.record(adversary.name, case, &attempt.expect, outcome);
        progress.fetch_add(1, Ordering::Relaxed);
    }
    tally
}

// ---- the victim and its honest partner ---------------------------------------------

/// Publishes a new version of `doc` on the victim and waits for the honest
/// partner's notice that it stored it; returns whether it did, with the
/// victim's heads.
async fn honest_partner_receives(victim: &Daemon, honest: &Daemon, name: &str, text: &str) -> bool {
    let mut notices = honest.context().sync.notices.subscribe();
    let (doc_id, heads) = publish(victim, name, text, &Scope::Public).await;
    let deadline = tokio::time::Instant::now() + CONVERGE;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, notices.recv()).await {
            Ok(Ok(SyncNotice::ReplicaChanged { doc_id: d, via, .. }))
                if d == doc_id && via == victim.node_id() =>
            {
                let mut held = replicas(honest).await.remove(&doc_id).unwrap_or_default();
                let mut want = heads.clone();
                held.sort();
                want.sort();
                if held == want {
                    return true;
                }
            }
            Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(_)) | Err(_) => return false,
        }
    }
}

/// Panics anywhere in this process (the victim's tasks included), with
/// where they happened.
static PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn count_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let at = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        PANICS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(format!("{at}: {info}"));
        default(info);
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_adversary_is_refused_a_thousand_bad_deliveries_while_the_victim_serves_its_partner(
) {
    count_panics();
    let started = Instant::now();
    let (_tmp, [victim, honest]) = partners_in_tmp(["Victim", "Honest"]).await;
    pair_connected(&victim, &honest, WAIT).await;
    let (victim_id, honest_id) = (victim.node_id(), honest.node_id());

    // The victim's publications: a public one (relayed to everyone), one for
    // partners, and one for the honest partner alone.
    let (news, _) = publish(&victim, "news", "first", &Scope::Public).await;
    let (circle, _) = publish(&victim, "circle", "for partners", &Scope::Partners).await;
    let (named, _) = publish(
        &victim,
        "named",
        "for one city",
        &Scope::Nodes(vec![honest_id]),
    )
    .await;
    let own_docs: BTreeSet<String> = [news.clone(), circle.clone(), named.clone()].into();
    assert!(
        eventually(CONVERGE, async || replicas(&honest)
            .await
            .keys()
            .cloned()
            .collect::<BTreeSet<_>>()
            == own_docs)
        .await,
        "the honest partner holds the victim's three publications"
    );

    // The adversaries: two identities the victim's admin approved, one as a
    // partner city, one as a subscriber; a third city that never connects,
    // whose key and publications they abuse.
    let adv_partner = Arc::new(Identity::generate().unwrap());
    let adv_subscriber = Arc::new(Identity::generate().unwrap());
    let third = Arc::new(Identity::generate().unwrap());
    approve(&victim, adv_partner.node_id(), Role::Partner).await;
    approve(&victim, adv_subscriber.node_id(), Role::Subscriber).await;
    let target = victim.listen_addr();
    let adversary = |identity: &Identity, name, role| Adversary {
        name,
        role,
        config: client_config(identity),
        endpoint: client_endpoint(),
        target,
    };
    let partner = adversary(&adv_partner, "partner", PeerRole::Partner);
    let subscriber = adversary(&adv_subscriber, "subscriber", PeerRole::Subscriber);

    // The partner adversary's one legitimate publication: versions 1 and 2,
    // scoped partners (so the victim keeps it and relays it to nobody).
    let legit_id = publication_id(adv_partner.node_id(), "legit").unwrap();
    let mut legit = sample_doc(&sample_body(adv_partner.node_id(), "legit", 7));
    let v1_heads = legit.get_heads();
    let v1 = doc_of(legit_id.clone(), legit.clone());
    edit_sample(&mut legit, "version 2 of the adversary's own publication");
    let v2_changes = chunks_after(&mut legit, &v1_heads);
    let v2 = doc_of(legit_id.clone(), legit);
    let v1_statement = statement(&adv_partner, &v1, 1, ScopeClass::Partners);
    let v2_statement = statement(&adv_partner, &v2, 2, ScopeClass::Partners);
    partner
        .publish(
            &legit_id,
            [
                Version {
                    statement: v1_statement.clone(),
                    changes: v1.changes.clone(),
                    have: Vec::new(),
                },
                Version {
                    statement: v2_statement,
                    changes: v2_changes,
                    have: v1.heads.clone(),
                },
            ],
        )
        .await
        .expect("the adversary's legitimate publication is accepted");
    let held = replicas(&victim).await;
    let mut legit_heads: Vec<[u8; 32]> = held[legit_id.as_str()].iter().map(|h| h.0).collect();
    legit_heads.sort();
    assert_eq!(legit_heads, v2.heads, "the victim holds version 2");

    // Everything the attempts are made of, before the first reading.
    let bomb = deflate_bomb();
    let victim_public = DocId::new(news.clone()).unwrap();
    let mut partner_arsenal = Arsenal::new(
        Arc::clone(&adv_partner),
        Arc::clone(&third),
        victim_id,
        bomb.clone(),
        victim_public.clone(),
        DocId::new(named.clone()).unwrap(),
    );
    partner_arsenal.legit_v1 = Some((legit_id.clone(), v1_statement, v1.changes.clone()));
    let subscriber_arsenal = Arsenal::new(
        Arc::clone(&adv_subscriber),
        Arc::clone(&third),
        victim_id,
        bomb,
        victim_public,
        DocId::new(circle.clone()).unwrap(),
    );

    let rss_before = resident_memory_bytes();
    let attack_started = Instant::now();
    let progress = Arc::new(AtomicUsize::new(0));
    let seed = rand::random::<u64>();
    println!("random seed {seed}");
    let campaigns: [(_, _, &'static [Case], _, _); 2] = [
        (
            partner,
            partner_arsenal,
            &PARTNER_CASES,
            PARTNER_ATTEMPTS,
            seed,
        ),
        (
            subscriber,
            subscriber_arsenal,
            &SUBSCRIBER_CASES,
            SUBSCRIBER_ATTEMPTS,
            seed ^ 0x5eed,
        ),
    ];
    let tasks = campaigns.map(|(adversary, arsenal, cases, attempts, seed)| {
        tokio::spawn(attack(
            adversary,
            arsenal,
            cases,
            attempts,
            Arc::clone(&progress),
            seed,
        ))
    });

    // Mid-attack, the honest partner receives the victim's new version.
    let total = PARTNER_ATTEMPTS + SUBSCRIBER_ATTEMPTS;
    assert!(
        eventually(Duration::from_secs(600), async || progress
            .load(Ordering::Relaxed)
            >= total / 2)
        .await
    );
    let mid_at = progress.load(Ordering::Relaxed);
    assert!(
        honest_partner_receives(&victim, &honest, "news", "second, mid-attack").await,
        "mid-attack, the honest partner receives the victim's new version"
    );
    let mid_done = progress.load(Ordering::Relaxed);
    println!(
        "mid-attack: the honest partner received a new version of news between attempts {mid_at} and {mid_done} of {total}"
    );
    assert!(
        mid_done < total,
        "the attack was still running when the honest partner received it"
    );

    let mut tally = Tally::default();
    for task in tasks {
        tally.cases.extend(task.await.unwrap().cases);
    }
    let attack_time = attack_started.elapsed();
    let rss_after = resident_memory_bytes();

    // At the end too.
    assert!(
        honest_partner_receives(&victim, &honest, "news", "third, after the attack").await,
        "after the attack, the honest partner receives the victim's new version"
    );
    assert!(both_connected(&victim, &honest));

    tally.print();
    let growth = rss_after.saturating_sub(rss_before);
    println!(
        "{} attempts in {attack_time:?}; victim RSS {:.1} MiB before, {:.1} MiB after: +{:.1} MiB (bound {:.0} MiB)",
        tally.total(),
        mib(rss_before),
        mib(rss_after),
        mib(growth),
        mib(RSS_GROWTH_MAX_BYTES)
    );

    // What the victim holds: its own publications, and of the adversaries'
    // only the partner's legitimate one, at version 2.
    let victim_id = victim.node_id();
    let store_state = victim
        .context()
        .store
        .call(move |s| {
            (
                s.replicas().unwrap(),
                s.statements().unwrap(),
                labnet_node::feed::collect_entries(s, victim_id, "victim").unwrap(),
            )
        })
        .await;
    let (replica_rows, statements, feed) = store_state;
    assert_eq!(
        replica_rows,
        vec![(legit_id.as_str().to_string(), adv_partner.node_id())],
        "the only replica is the adversary's legitimate publication"
    );
    let held = replicas(&victim).await;
    let mut legit_heads: Vec<[u8; 32]> = held[legit_id.as_str()].iter().map(|h| h.0).collect();
    legit_heads.sort();
    assert_eq!(legit_heads, v2.heads, "still version 2, untouched");
    for row in &statements {
        let ok = (row.origin == victim_id && row.via.is_none() && own_docs.contains(&row.doc_id))
            || (row.doc_id == legit_id.as_str()
                && row.origin == adv_partner.node_id()
                && row.version == 2
                && row.via == Some(adv_partner.node_id()));
        assert!(ok, "a statement the victim should not hold: {row:?}");
    }
    assert_eq!(statements.len(), own_docs.len() + 1);
    let feed_ids: BTreeSet<String> = feed.iter().map(|e| e.id.clone()).collect();
    let expected_feed: BTreeSet<String> = ["news", "circle", "named"]
        .iter()
        .map(|p| format!("urn:labnet:{}:{p}", victim_id.to_key()))
        .chain([format!(
            "urn:labnet:{}:legit",
            adv_partner.node_id().to_key()
        )])
        .collect();
    assert_eq!(
        feed_ids, expected_feed,
        "no feed entry under a city that did not sign it"
    );
    for other in [third.node_id(), adv_subscriber.node_id(), honest_id] {
        assert!(
            feed.iter().all(|e| !e.id.contains(&other.to_compact())),
            "no feed entry under {other}"
        );
    }
    // Nothing of the adversaries reached the honest partner either.
    let honest_holds: BTreeSet<String> = replicas(&honest).await.into_keys().collect();
    assert_eq!(honest_holds, own_docs);

    let panics = PANICS.lock().unwrap_or_else(|p| p.into_inner()).clone();
    println!("panics in the process: {}", panics.len());
    println!("whole test: {:?}", started.elapsed());

    // The findings, last, so every figure above is printed either way.
    let failures = tally.failures();
    assert!(
        failures.is_empty(),
        "the victim mishandled {} case(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        tally.total() >= 1000,
        "{} attempts, at least 1,000 wanted",
        tally.total()
    );
    assert!(panics.is_empty(), "panics: {panics:#?}");
    for who in ["partner", "subscriber"] {
        let slowest = tally.cases[&(who, Case::RetiredBloomMessage)].slowest_close;
        assert!(
            slowest < RETIRED_CLOSE_MAX,
            "{who}: version 1's sync message closed the connection only after {slowest:?}"
        );
    }
    assert!(
        growth < RSS_GROWTH_MAX_BYTES,
        "the victim's RSS grew by {:.1} MiB, more than {:.0} MiB",
        mib(growth),
        mib(RSS_GROWTH_MAX_BYTES)
    );
    tokio::join!(victim.shutdown(), honest.shutdown());
}
