//! The sync targets: one delivery into a real session (`deliver`), and whole
//! messages into one (`session`).

use std::time::{Duration, Instant};

use automerge::{Change, ChangeHash};
use labnet_config::Role;
use labnet_protocol::chunk::check_change_chunks;
use labnet_protocol::close::ViolationCode;
use labnet_protocol::frame::FrameDecoder;
use labnet_protocol::statement::ScopeClass;
use labnet_protocol::sync::{Announcement, Inventory, SyncMessage, WantItem, MESSAGE_LEN_MAX};

use super::view::{drain, fixture, fuzz_key, session_with, sign, sorted, FuzzView, EPOCH, RELAY};
use super::{put_chunk, Input, Seed};

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
        fuzz_key(RELAY).node_id()
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
        let inventory = SyncMessage::Inventory(Inventory {
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
        });
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
    let inventory = |version: u64, retracted: bool| {
        SyncMessage::Inventory(Inventory {
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
        })
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
