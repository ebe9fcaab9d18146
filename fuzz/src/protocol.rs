//! Entry points of the fuzz targets on `labnet-protocol`, and their seeds.
//!
//! Each function takes the fuzzer's bytes and panics only when the code
//! breaks a promise it makes: decoding never panics, what decodes re-encodes
//! to the same message, a checked chunk is what Automerge reads. The fuzz
//! targets in `fuzz/fuzz_targets/` call these, and
//! `protocol/tests/fuzz_regressions.rs` includes this file (by path: the
//! protocol crate cannot depend on the fuzz crate) to replay the committed
//! crashers and seeds through the very same functions.
//!
//! Only `labnet_protocol`, `automerge` and `ring` are used, which both the
//! fuzz crate and the protocol crate's tests have.

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, AutoCommit, Change, ReadDoc, ROOT};
use labnet_protocol::chunk::{check_change_chunk, check_change_chunks};
use labnet_protocol::close::CloseCode;
use labnet_protocol::frame::{encode_frame, FrameDecoder, FRAME_HEADER_LEN};
use labnet_protocol::handshake::{Event, Handshake, Hello, PeerRole, Welcome, PROTOCOL_VERSION};
use labnet_protocol::invite::Invite;
use labnet_protocol::statement::{
    RetractionConfirmation, ScopeClass, Signed, SignedConfirmation, SignedStatement, Signer,
    VersionStatement, PUBLIC_KEY_LEN, SIGNATURE_LEN,
};
use labnet_protocol::sync::{
    publication_id, Announcement, DocId, Inventory, ResumePoint, SyncMessage, WantItem,
    SYNC_PROTOCOL_VERSION,
};
use labnet_protocol::NodeId;
use ring::signature::{Ed25519KeyPair, KeyPair};

/// A seed: a file name in the corpus, and its bytes.
pub type Seed = (&'static str, Vec<u8>);

/// `u16` LE length, then that many bytes, until the input ends: how the
/// `chunk` target (and the node's `deliver`) reads a list of change chunks.
fn chunks_of(mut data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let (len, rest) = match data {
            [a, b, rest @ ..] => (usize::from(u16::from_le_bytes([*a, *b])), rest),
            [_] => (0, &data[1..]),
            [] => break,
        };
        let len = len.min(rest.len());
        out.push(rest[..len].to_vec());
        data = &rest[len..];
    }
    out
}

fn put_chunk(out: &mut Vec<u8>, chunk: &[u8]) {
    let len = u16::try_from(chunk.len()).expect("seed chunks are under 64 KiB");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(chunk);
}

// ---- frame_decode ------------------------------------------------------------

/// The frame decoder. Input: a `u16` LE maximum frame length, a byte giving
/// the size of the pieces the stream arrives in, then the stream. Every
/// frame fits the maximum; the frames taken, framed again, are exactly the
/// start of the stream, and what is left is the rest of it.
pub fn frame_decode(data: &[u8]) {
    let (max, step, stream) = match data {
        [a, b, s, rest @ ..] => (
            usize::from(u16::from_le_bytes([*a, *b])),
            usize::from(*s).max(1),
            rest,
        ),
        _ => return,
    };
    let mut decoder = FrameDecoder::new(max);
    let mut framed = Vec::new();
    let mut failed = false;
    'stream: for piece in stream.chunks(step) {
        decoder.push(piece);
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => {
                    assert!(frame.len() <= max, "a frame over the maximum");
                    encode_frame(&frame, &mut framed);
                }
                Ok(None) => break,
                Err(_) => {
                    failed = true;
                    break 'stream;
                }
            }
        }
    }
    assert!(
        stream.starts_with(&framed),
        "the frames are not the start of the stream"
    );
    if failed {
        assert!(decoder.next_frame().is_err(), "a failed decoder recovered");
        return;
    }
    let rest = stream.get(framed.len()..).unwrap_or_default();
    assert_eq!(decoder.buffered_len(), rest.len(), "bytes lost or invented");
    if rest.len() >= FRAME_HEADER_LEN {
        let mut header = [0u8; FRAME_HEADER_LEN];
        header.copy_from_slice(&rest[..FRAME_HEADER_LEN]);
        let len = u32::from_be_bytes(header) as usize;
        assert!(
            len <= max && rest.len() < FRAME_HEADER_LEN + len,
            "a whole frame was left in the buffer"
        );
    }
    assert_eq!(
        decoder.into_remaining(),
        rest,
        "the remainder is not the rest"
    );
}

/// Seeds of `frame_decode`.
pub fn frame_decode_seeds() -> Vec<Seed> {
    let mut stream = Vec::new();
    encode_frame(b"hello", &mut stream);
    encode_frame(b"", &mut stream);
    encode_frame(&[7u8; 300], &mut stream);
    let with = |max: u16, step: u8, s: &[u8]| [&max.to_le_bytes()[..], &[step], s].concat();
    let mut oversized = Vec::new();
    encode_frame(&[1u8; 100], &mut oversized);
    vec![
        ("three-frames", with(1024, 1, &stream)),
        ("three-frames-big-pieces", with(1024, 200, &stream)),
        ("oversized", with(16, 7, &oversized)),
        ("cut", with(1024, 3, &stream[..stream.len() - 5])),
    ]
}

// ---- handshake ---------------------------------------------------------------

fn hello() -> Hello {
    Hello::new("Modena", PeerRole::Partner)
}

/// Both sides of the handshake. Input: a mode byte (bit 0: we are the
/// dialer; bit 1: the acceptor refuses), a byte giving the size of the
/// pieces, then the other side's bytes. Every message one side learns,
/// said again by a fresh side, is learnt the same.
pub fn handshake(data: &[u8]) {
    let (mode, step, bytes) = match data {
        [m, s, rest @ ..] => (*m, usize::from(*s).max(1), rest),
        _ => return,
    };
    let mut side = if mode & 1 != 0 {
        Handshake::dialer(hello())
    } else {
        Handshake::acceptor()
    };
    while side.poll_transmit().is_some() {}
    for piece in bytes.chunks(step) {
        side.handle_bytes(piece);
    }
    while let Some(event) = side.poll_event() {
        match event {
            Event::Hello(h) => {
                if mode & 2 != 0 {
                    side.refuse(CloseCode::NotApproved, "not approved");
                } else {
                    side.accept(Welcome {
                        name: "Mechelen".into(),
                        role: PeerRole::Partner,
                    });
                }
                if h.version == PROTOCOL_VERSION {
                    let mut dialer = Handshake::dialer(h.clone());
                    let mut acceptor = Handshake::acceptor();
                    dialer.transmit_to(&mut acceptor);
                    assert_eq!(acceptor.poll_event(), Some(Event::Hello(h)));
                }
            }
            Event::Welcome(w) => {
                let mut dialer = Handshake::dialer(hello());
                let mut acceptor = Handshake::acceptor();
                dialer.transmit_to(&mut acceptor);
                let _ = acceptor.poll_event();
                acceptor.accept(w.clone());
                acceptor.transmit_to(&mut dialer);
                assert_eq!(dialer.poll_event(), Some(Event::Welcome(w)));
            }
            Event::Refused { code, reason } => {
                if let Some(close) = CloseCode::from_u32(code) {
                    let mut dialer = Handshake::dialer(hello());
                    let mut acceptor = Handshake::acceptor();
                    dialer.transmit_to(&mut acceptor);
                    let _ = acceptor.poll_event();
                    acceptor.refuse(close, &reason);
                    acceptor.transmit_to(&mut dialer);
                    assert_eq!(dialer.poll_event(), Some(Event::Refused { code, reason }));
                }
            }
            Event::Failed { .. } => {}
        }
    }
    while side.poll_transmit().is_some() {}
    let _ = side.into_remaining();
}

/// Seeds of `handshake`: a real hello (with and without an invite secret),
/// welcome and refusal, with sync bytes behind them.
pub fn handshake_seeds() -> Vec<Seed> {
    let said = |h: &mut Handshake| -> Vec<u8> {
        std::iter::from_fn(|| h.poll_transmit()).flatten().collect()
    };
    let mut plain = Handshake::dialer(hello());
    let mut invited = Handshake::dialer(Hello {
        invite_secret: Some([9; 32]),
        role: PeerRole::Subscriber,
        ..hello()
    });
    let mut welcoming = Handshake::acceptor();
    welcoming.handle_bytes(&said(&mut Handshake::dialer(hello())));
    welcoming.accept(Welcome {
        name: "Mechelen".into(),
        role: PeerRole::Partner,
    });
    let mut refusing = Handshake::acceptor();
    refusing.handle_bytes(&said(&mut Handshake::dialer(hello())));
    refusing.refuse(CloseCode::InviteExpired, CloseCode::InviteExpired.reason());
    let mut welcome = said(&mut welcoming);
    welcome.extend_from_slice(b"sync bytes");
    vec![
        ("hello", [vec![0, 255], said(&mut plain)].concat()),
        ("hello-invite", [vec![2, 3], said(&mut invited)].concat()),
        ("welcome", [vec![1, 255], welcome].concat()),
        ("refused", [vec![1, 1], said(&mut refusing)].concat()),
    ]
}

// ---- sync_message ------------------------------------------------------------

/// A sync message. Whatever decodes re-encodes to no more bytes than it came
/// in (decoding allocates at most the input's size), and decodes back to the
/// same message.
pub fn sync_message(data: &[u8]) {
    let Ok(message) = SyncMessage::decode(data) else {
        return;
    };
    let _ = message.kind();
    let encoded = message.encode();
    assert!(
        encoded.len() <= data.len(),
        "a message re-encodes longer than it came"
    );
    assert_eq!(
        SyncMessage::decode(&encoded),
        Ok(message),
        "a message does not survive re-encoding"
    );
}

/// Seeds of `sync_message`: one of every message, a delivery with real
/// change chunks, and the retired version 1 tags.
pub fn sync_message_seeds() -> Vec<Seed> {
    let key = TestKey::new(1);
    let doc_id = publication_id(key.node_id(), "milma").expect("a valid id");
    let (chunks, heads) = sample_changes();
    let statement = sign_statement(&key, &doc_id, &heads);
    let messages: Vec<(&'static str, SyncMessage)> = vec![
        (
            "resume",
            SyncMessage::Resume {
                version: SYNC_PROTOCOL_VERSION,
                from: Some(ResumePoint { epoch: 7, seq: 300 }),
            },
        ),
        (
            "resume-first",
            SyncMessage::Resume {
                version: SYNC_PROTOCOL_VERSION,
                from: None,
            },
        ),
        (
            "inventory",
            SyncMessage::Inventory(Inventory {
                epoch: 7,
                entries: (0..3)
                    .map(|i| Announcement {
                        doc_id: doc_id.clone(),
                        version: i + 1,
                        retracted: i == 2,
                        seq: 100 + i,
                    })
                    .collect(),
                up_to_seq: 102,
                full: true,
                complete: false,
            }),
        ),
        (
            "inventory-ack",
            SyncMessage::InventoryAck {
                epoch: 7,
                up_to_seq: u64::MAX,
            },
        ),
        (
            "want",
            SyncMessage::Want {
                items: vec![
                    WantItem {
                        doc_id: doc_id.clone(),
                        have: heads.clone(),
                    },
                    WantItem {
                        doc_id: DocId::new("a.b_c:d-e").expect("a valid id"),
                        have: Vec::new(),
                    },
                ],
            },
        ),
        (
            "deliver",
            SyncMessage::Deliver {
                statement: statement.clone(),
                changes: chunks,
            },
        ),
        (
            "retraction",
            SyncMessage::Deliver {
                statement,
                changes: Vec::new(),
            },
        ),
        (
            "withdraw",
            SyncMessage::Withdraw {
                doc_id: doc_id.clone(),
                seq: 12,
            },
        ),
        (
            "withdraw-ack",
            SyncMessage::WithdrawAck {
                doc_id: doc_id.clone(),
            },
        ),
        (
            "confirm",
            SyncMessage::Confirm {
                confirmations: vec![sign_confirmation(&key, &doc_id)],
            },
        ),
        ("confirm-ack", SyncMessage::ConfirmAck { count: 3 }),
    ];
    let mut out: Vec<Seed> = messages.into_iter().map(|(n, m)| (n, m.encode())).collect();
    out.push(("retired-docsync", vec![0x04, 1, b'd', 0]));
    out.push(("retired-snapshot", vec![0x08]));
    out
}

// ---- statement ---------------------------------------------------------------

/// Signed statements (input's first byte even) and confirmations (odd).
/// What decodes re-encodes to the same value, in no more bytes; verifying
/// never panics.
pub fn statement(data: &[u8]) {
    let Some((kind, bytes)) = data.split_first() else {
        return;
    };
    if kind & 1 == 0 {
        if let Ok(s) = SignedStatement::decode(bytes) {
            let encoded = s.encode();
            assert!(encoded.len() <= bytes.len(), "re-encodes longer");
            assert_eq!(SignedStatement::decode(&encoded).as_ref(), Ok(&s));
            let _ = s.verify();
            let _ = s.body.origin();
        }
    } else if let Ok(c) = SignedConfirmation::decode(bytes) {
        let encoded = c.encode();
        assert!(encoded.len() <= bytes.len(), "re-encodes longer");
        assert_eq!(SignedConfirmation::decode(&encoded).as_ref(), Ok(&c));
        let _ = c.verify();
    }
}

/// Seeds of `statement`.
pub fn statement_seeds() -> Vec<Seed> {
    let key = TestKey::new(2);
    let doc_id = publication_id(key.node_id(), "milma").expect("a valid id");
    let (_, heads) = sample_changes();
    vec![
        (
            "statement",
            [vec![0], sign_statement(&key, &doc_id, &heads)].concat(),
        ),
        (
            "confirmation",
            [vec![1], sign_confirmation(&key, &doc_id)].concat(),
        ),
    ]
}

// ---- chunk -------------------------------------------------------------------

/// Change chunks through labnet's checks and then Automerge, unguarded.
/// Input: chunks, each a `u16` LE length and its bytes. A checked chunk
/// checks again to itself; Automerge parses it to the change hash labnet
/// computed; applying, saving and loading never panic. A
/// panic inside Automerge here is one a peer could cause: the fix is to
/// refuse the input in `labnet_protocol::chunk`, before Automerge.
pub fn chunk(data: &[u8]) {
    let chunks = chunks_of(data);
    let Ok(checked) = check_change_chunks(&chunks) else {
        return;
    };
    let mut parsed = Vec::with_capacity(checked.len());
    for c in &checked {
        match check_change_chunk(c.as_bytes()) {
            Ok(again) => {
                assert_eq!(again.as_bytes(), c.as_bytes(), "a checked chunk changes");
                assert_eq!(again.hash(), c.hash(), "a checked chunk's hash changes");
            }
            Err(e) => panic!("a checked chunk fails its check: {e}"),
        }
        let Ok(change) = Change::try_from(c.as_bytes()) else {
            return;
        };
        assert_eq!(
            change.hash().0,
            c.hash(),
            "labnet's change hash differs from Automerge's"
        );
        parsed.push(change);
    }
    let mut doc = AutoCommit::new();
    if doc.apply_changes(parsed).is_err() {
        return;
    }
    let _ = doc.get_heads();
    let _ = doc.get_missing_deps(&[]);
    let _ = doc.keys(ROOT).count();
    // Automerge applies some changes it cannot save back: a string value
    // that is not UTF-8 (`regressions/chunk/`) makes a saved document that no
    // longer loads. That is not labnet's check to make here: the receive path
    // refuses such a delivery (`labnet_node::sync::saved_if_it_reloads`, held by
    // the `deliver` target and `sync::tests`). Saving and loading still run,
    // so a panic in either is a finding.
    let saved = doc.save();
    if let Ok(mut loaded) = AutoCommit::load(&saved) {
        let _ = loaded.get_heads();
    }
}

/// Seeds of `chunk`: real changes, plain and compressed.
pub fn chunk_seeds() -> Vec<Seed> {
    let (raw, _) = sample_changes();
    let mut doc = sample_doc();
    let compressed: Vec<Vec<u8>> = doc
        .get_changes(&[])
        .into_iter()
        .map(|mut c| c.bytes().to_vec())
        .collect();
    let list = |chunks: &[Vec<u8>]| {
        let mut out = Vec::new();
        for c in chunks {
            put_chunk(&mut out, c);
        }
        out
    };
    vec![
        ("raw", list(&raw)),
        ("compressed", list(&compressed)),
        ("first-only", list(&raw[..1])),
        ("last-only", list(&raw[raw.len() - 1..])),
    ]
}

// ---- invite ------------------------------------------------------------------

/// Invite tokens. A token that parses, written again, parses to the same
/// invite, in lower case too.
pub fn invite(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(invite) = Invite::parse(text) else {
        return;
    };
    let token = invite.to_token();
    assert_eq!(Invite::parse(&token).as_ref(), Ok(&invite));
    assert_eq!(Invite::parse(&token.to_lowercase()).as_ref(), Ok(&invite));
}

/// Seeds of `invite`.
pub fn invite_seeds() -> Vec<Seed> {
    let base = Invite {
        inviter: TestKey::new(3).node_id(),
        inviter_role: PeerRole::Partner,
        addresses: vec!["127.0.0.1:7447".into(), "modena.example.org:7447".into()],
        secret: [42; 32],
        role: PeerRole::Subscriber,
        expires_at: 1_900_000_000,
    };
    let token = base.to_token();
    let none = Invite {
        addresses: Vec::new(),
        role: PeerRole::Partner,
        ..base.clone()
    };
    let many = Invite {
        addresses: (0..8).map(|i| format!("[::1]:{}", 7000 + i)).collect(),
        ..base
    };
    vec![
        ("token", token.clone().into_bytes()),
        (
            "token-pasted",
            format!("  {}\n", token.to_lowercase()).into_bytes(),
        ),
        ("no-addresses", none.to_token().into_bytes()),
        ("eight-addresses", many.to_token().into_bytes()),
        ("cut", token.as_bytes()[..token.len() / 2].to_vec()),
    ]
}

// ---- shared seed material ----------------------------------------------------

/// Every protocol target's seeds, by target name.
pub fn all_seeds() -> Vec<(&'static str, Vec<Seed>)> {
    vec![
        ("frame_decode", frame_decode_seeds()),
        ("handshake", handshake_seeds()),
        ("sync_message", sync_message_seeds()),
        ("statement", statement_seeds()),
        ("chunk", chunk_seeds()),
        ("invite", invite_seeds()),
    ]
}

/// Runs the protocol target called `target` on `data`; `false` if no target
/// has that name.
pub fn run(target: &str, data: &[u8]) -> bool {
    match target {
        "frame_decode" => frame_decode(data),
        "handshake" => handshake(data),
        "sync_message" => sync_message(data),
        "statement" => statement(data),
        "chunk" => chunk(data),
        "invite" => invite(data),
        _ => return false,
    }
    true
}

/// A deterministic Ed25519 key, so seeds are the same in every run.
struct TestKey(Ed25519KeyPair);

impl TestKey {
    fn new(n: u8) -> TestKey {
        let mut seed = [0x5a; 32];
        seed[0] = n;
        TestKey(Ed25519KeyPair::from_seed_unchecked(&seed).expect("a 32-byte seed is a key"))
    }

    fn node_id(&self) -> NodeId {
        NodeId::from_public_key(self.0.public_key().as_ref())
    }
}

impl Signer for TestKey {
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

/// A document of a few changes, one with a text long enough that Automerge
/// compresses it. The actor and the times are fixed, so the seeds are the
/// same bytes in every run.
fn sample_doc() -> AutoCommit {
    let at = |t: i64| CommitOptions::default().with_time(t);
    let mut doc = AutoCommit::new().with_actor(ActorId::from(&[0x1a; 16][..]));
    let _ = doc.put(ROOT, "title", "Language cafe");
    doc.commit_with(at(1_764_000_000));
    let long: String = (0..40)
        .map(|i| format!("Step {i}: mentors meet newcomers. "))
        .collect();
    let _ = doc.put(ROOT, "description", long);
    doc.commit_with(at(1_764_000_060));
    if let Ok(list) = doc.put_object(ROOT, "lessons", automerge::ObjType::List) {
        let _ = doc.insert(&list, 0, "Food helps");
    }
    doc.commit_with(at(1_764_000_120));
    doc
}

/// The sample document's changes, uncompressed, and its heads.
fn sample_changes() -> (Vec<Vec<u8>>, Vec<[u8; 32]>) {
    let mut doc = sample_doc();
    let chunks = doc
        .get_changes(&[])
        .iter()
        .map(|c| c.raw_bytes().to_vec())
        .collect();
    let mut heads: Vec<[u8; 32]> = doc.get_heads().iter().map(|h| h.0).collect();
    heads.sort();
    (chunks, heads)
}

fn sign_statement(key: &TestKey, doc_id: &DocId, heads: &[[u8; 32]]) -> Vec<u8> {
    let body = VersionStatement {
        publication: doc_id.clone(),
        origin_key: key.public_key(),
        version: 3,
        heads: heads.to_vec(),
        scope: ScopeClass::Public,
        retracted: false,
        issued_at: 1_764_000_000,
    };
    Signed::sign(body, key).encode()
}

fn sign_confirmation(key: &TestKey, doc_id: &DocId) -> Vec<u8> {
    let body = RetractionConfirmation {
        publication: doc_id.clone(),
        version: 4,
        confirmer_key: key.public_key(),
        confirmed_at: 1_764_000_100,
    };
    Signed::sign(body, key).encode()
}
