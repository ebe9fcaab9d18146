//! The adversary: a peer that sends what an honest one never would (forged
//! statements, deliveries nobody asked for, repeated or out-of-scope wants,
//! bytes that are not a message) is closed with its own code, and nothing it
//! sent is stored.

use std::time::Duration;

use automerge::AutoCommit;
use labnet_config::Role;
use labnet_protocol::close::ViolationCode;
use labnet_protocol::statement::ScopeClass;
use labnet_protocol::sync::{
    publication_id, Announcement, DocId, Inventory, SyncMessage, WantItem,
};

use crate::share::publication::{edit_sample, sample_body, sample_doc};
use crate::sync::harness::{federation, node_id, test_key, MemNode, Net};
use crate::sync::session::{Closed, STALL_TIMEOUT};
use crate::sync::{saved_if_it_reloads, Event, Scope};

/// The adversary's node number: node 1 of every net here, and its key.
const ADVERSARY: u32 = 1;

/// The city whose publications the adversary forges.
const VICTIM: u32 = 7;

/// A node (0) and an adversary (1), connected and synced: node 0 publishes
/// one partners-scoped practice, the adversary one public one.
fn against_adversary(adversary_role: Role) -> (Net, DocId) {
    let mut nodes = vec![
        MemNode::new(0, Role::Partner),
        MemNode::new(ADVERSARY, adversary_role),
    ];
    let ours = nodes[0].publish_practice("ours", 1, Scope::Partners);
    let mut net = Net::synced(nodes);
    net.run();
    (net, ours)
}

/// Publication `name` of test node `n`, and a practice-sized document for
/// it (`seed` varies its text).
fn publication_of(n: u32, name: &str, seed: u32) -> (DocId, AutoCommit) {
    let origin = node_id(n);
    let doc_id = publication_id(origin, name).unwrap();
    (doc_id, sample_doc(&sample_body(origin, name, seed)))
}

fn changes_of(doc: &mut AutoCommit) -> Vec<Vec<u8>> {
    doc.get_changes(&[])
        .iter()
        .map(|c| c.raw_bytes().to_vec())
        .collect()
}

/// An `Inventory` of one announcement, complete.
fn inventory(epoch: u64, doc_id: &DocId, version: u64, seq: u64) -> SyncMessage {
    let entry = Announcement {
        doc_id: doc_id.clone(),
        version,
        retracted: false,
        seq,
    };
    SyncMessage::Inventory(Inventory {
        epoch,
        entries: vec![entry],
        up_to_seq: seq,
        full: false,
        complete: true,
    })
}

/// A `Want` of `doc_id` from scratch, asked `times` times over.
fn want(doc_id: &DocId, times: usize) -> SyncMessage {
    let item = WantItem {
        doc_id: doc_id.clone(),
        have: vec![],
    };
    SyncMessage::Want {
        items: vec![item; times],
    }
}

/// Announces `doc_id` at `version` from the adversary (1) to node 0 and lets
/// node 0 ask for it; returns after node 0's `Want` is out.
fn announce(net: &mut Net, doc_id: &DocId, version: u64) {
    let epoch = net.nodes[ADVERSARY as usize].epoch;
    net.inject(
        1,
        0,
        inventory(epoch, doc_id, version, 10_000 + version).encode(),
    );
    net.step();
    // The adversary answers itself: its own session never sees the Want.
    net.take_in_flight(0, 1);
}

/// Delivers `bytes` as the adversary and reports how node 0's session with
/// it ended, having checked that nothing was stored.
fn deliver_bad(net: &mut Net, bytes: Vec<u8>) -> Option<ViolationCode> {
    let held_before = net.nodes[0].held.len();
    net.inject(1, 0, bytes);
    net.step();
    assert_eq!(net.nodes[0].held.len(), held_before, "something was stored");
    net.closed_with(0, 1)
}

/// A statement of `doc_id` at `version` with the heads of `doc`, signed by
/// test key `signer`.
fn forged_statement(
    signer: u32,
    doc_id: &DocId,
    version: u64,
    doc: &mut AutoCommit,
    scope: ScopeClass,
) -> Vec<u8> {
    let heads = doc.get_heads();
    test_key(signer).sign_version(doc_id, version, &heads, scope, false)
}

/// Delivers `changes` under `statement` as the adversary; see [`deliver_bad`].
fn deliver(net: &mut Net, statement: Vec<u8>, changes: Vec<Vec<u8>>) -> Option<ViolationCode> {
    deliver_bad(net, SyncMessage::Deliver { statement, changes }.encode())
}

/// Delivers all of `doc` as the adversary, under a statement of `doc_id` at
/// `version` signed by test key `signer`.
fn forge(
    net: &mut Net,
    signer: u32,
    doc_id: &DocId,
    version: u64,
    doc: &mut AutoCommit,
    scope: ScopeClass,
) -> Option<ViolationCode> {
    let statement = forged_statement(signer, doc_id, version, doc, scope);
    deliver(net, statement, changes_of(doc))
}

/// A statement for the victim's id signed by the adversary's key.
fn foreign_id(net: &mut Net) -> Option<ViolationCode> {
    let (doc_id, mut doc) = publication_of(VICTIM, "forged", 1);
    announce(net, &doc_id, 5);
    forge(net, ADVERSARY, &doc_id, 5, &mut doc, ScopeClass::Public)
}

/// A valid statement of another origin, scoped partners, relayed.
fn relayed_partners_scope(net: &mut Net) -> Option<ViolationCode> {
    let (doc_id, mut doc) = publication_of(VICTIM, "p", 2);
    announce(net, &doc_id, 3);
    forge(net, VICTIM, &doc_id, 3, &mut doc, ScopeClass::Partners)
}

/// Heads that don't match the changes: the statement signs a later version.
fn heads_not_of_the_changes(net: &mut Net) -> Option<ViolationCode> {
    let (doc_id, mut v1) = publication_of(ADVERSARY, "own", 3);
    let mut v2 = v1.fork();
    edit_sample(&mut v2, "v2");
    announce(net, &doc_id, 9);
    let statement = forged_statement(ADVERSARY, &doc_id, 9, &mut v2, ScopeClass::Public);
    deliver(net, statement, changes_of(&mut v1))
}

/// A document that is not a publication.
fn not_a_publication(net: &mut Net) -> Option<ViolationCode> {
    use automerge::transaction::Transactable;
    let (doc_id, _) = publication_of(ADVERSARY, "own", 0);
    let mut doc = AutoCommit::new();
    doc.put(automerge::ROOT, "payload", "x".repeat(100))
        .unwrap();
    announce(net, &doc_id, 4);
    forge(net, ADVERSARY, &doc_id, 4, &mut doc, ScopeClass::Public)
}

/// Content that names another city's publication: a valid publication body
/// of the victim, under the adversary's id and signature.
fn content_of_another_city(net: &mut Net) -> Option<ViolationCode> {
    let (doc_id, _) = publication_of(ADVERSARY, "forged", 0);
    let (_, mut doc) = publication_of(VICTIM, "forged", 4);
    announce(net, &doc_id, 4);
    forge(net, ADVERSARY, &doc_id, 4, &mut doc, ScopeClass::Public)
}

/// A delivery nobody asked for.
fn unasked(net: &mut Net) -> Option<ViolationCode> {
    let (doc_id, mut doc) = publication_of(ADVERSARY, "unasked", 5);
    forge(net, ADVERSARY, &doc_id, 4, &mut doc, ScopeClass::Public)
}

/// A chunk that is not a change chunk: a whole saved document.
fn not_a_change_chunk(net: &mut Net) -> Option<ViolationCode> {
    let (doc_id, mut doc) = publication_of(ADVERSARY, "own", 6);
    announce(net, &doc_id, 4);
    let statement = forged_statement(ADVERSARY, &doc_id, 4, &mut doc, ScopeClass::Public);
    deliver(net, statement, vec![doc.save()])
}

/// The 15-byte Automerge sync message of version 1.
fn retired_message(net: &mut Net) -> Option<ViolationCode> {
    let mut bytes = vec![0x04, 1, b'd', 15];
    bytes.extend_from_slice(&[
        0x42, 0, 1, 1, 0x20, 0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0, 0,
    ]);
    deliver_bad(net, bytes)
}

/// Bytes that are not a message.
fn random_bytes(net: &mut Net) -> Option<ViolationCode> {
    deliver_bad(net, vec![0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
}

/// Each bad delivery closes the session with its own code and stores
/// nothing: a statement signed by a key that is not the origin's, a valid
/// statement from another origin with a scope only it may deliver, heads that
/// don't match the changes, a document that is not a publication, content
/// that names another city's id, a delivery nobody asked for, a chunk that
/// is not a change chunk, a retired version-1 message, and bytes that are
/// not a message.
#[test]
fn bad_deliveries_are_refused_with_their_own_code() {
    type Case = fn(&mut Net) -> Option<ViolationCode>;
    let cases: [(&str, ViolationCode, Case); 9] = [
        ("foreign id", ViolationCode::BadStatement, foreign_id),
        (
            "relayed partners",
            ViolationCode::ScopeViolation,
            relayed_partners_scope,
        ),
        (
            "heads",
            ViolationCode::HeadsMismatch,
            heads_not_of_the_changes,
        ),
        (
            "not a publication",
            ViolationCode::BadDocument,
            not_a_publication,
        ),
        (
            "another city",
            ViolationCode::BadDocument,
            content_of_another_city,
        ),
        ("unasked", ViolationCode::UnexpectedMessage, unasked),
        (
            "not a change chunk",
            ViolationCode::BadChunk,
            not_a_change_chunk,
        ),
        ("retired", ViolationCode::RetiredMessage, retired_message),
        ("random", ViolationCode::MalformedMessage, random_bytes),
    ];
    for (what, code, case) in cases {
        let (mut net, _) = against_adversary(Role::Partner);
        assert_eq!(case(&mut net), Some(code), "{what}");
        assert_eq!(net.closed_with(0, 1), Some(code), "{what}");
    }
}

/// The `chunk` fuzz target's crasher, a change Automerge applies but cannot
/// save back (a string value that is not UTF-8): delivered as a publication,
/// it is refused before anything is stored, because a replica saved from it
/// would fail every later read. The fuzz input is one chunk behind a `u16`
/// length.
const UNSAVEABLE_CHANGE_FUZZ_INPUT: &[u8] = include_bytes!(
    "../../../../fuzz/regressions/chunk/crash-5548effd888422394bea8bd8227db299205f808d"
);

#[test]
fn a_delivery_whose_document_does_not_load_back_is_refused() {
    let change = UNSAVEABLE_CHANGE_FUZZ_INPUT[2..].to_vec();
    let mut doc = AutoCommit::new();
    doc.apply_changes([automerge::Change::try_from(&change[..]).unwrap()])
        .unwrap();
    assert!(
        saved_if_it_reloads(&mut doc).is_none(),
        "Automerge saves it back now"
    );
    let (_, mut honest) = publication_of(ADVERSARY, "honest", 1);
    assert!(saved_if_it_reloads(&mut honest).is_some());

    let (mut net, _) = against_adversary(Role::Partner);
    let (doc_id, _) = publication_of(ADVERSARY, "unsaveable", 0);
    announce(&mut net, &doc_id, 4);
    let statement = forged_statement(ADVERSARY, &doc_id, 4, &mut doc, ScopeClass::Public);
    let code = deliver(&mut net, statement, vec![change]);
    assert_eq!(code, Some(ViolationCode::BadDocument));
    let reason = net.sessions[&(0, 1)].closed_by().map(|(_, r)| r.to_owned());
    assert!(
        reason
            .as_deref()
            .is_some_and(|r| r.contains("does not load back")),
        "{reason:?}"
    );
}

/// A peer approved as a subscriber can publish nothing: its announcements
/// are acknowledged and ignored (no `Want`, nothing stored), and the session
/// stays up, so a city downgraded to subscriber, which still announces its
/// own publications, keeps the session our withdrawals travel on.
#[test]
fn a_subscriber_cannot_announce() {
    let (mut net, _) = against_adversary(Role::Subscriber);
    let (doc_id, _) = publication_of(ADVERSARY, "x", 0);
    let epoch = net.nodes[1].epoch;
    net.inject(1, 0, inventory(epoch, &doc_id, 1, 10_001).encode());
    net.step();
    let sent: Vec<SyncMessage> = net
        .take_in_flight(0, 1)
        .iter()
        .map(|bytes| SyncMessage::decode(bytes).unwrap())
        .collect();
    assert_eq!(net.closed_with(0, 1), None);
    assert!(
        sent.iter().any(|m| matches!(
            m,
            SyncMessage::InventoryAck {
                up_to_seq: 10_001,
                ..
            }
        )),
        "the batch is acknowledged: {sent:?}"
    );
    assert!(
        !sent.iter().any(|m| matches!(m, SyncMessage::Want { .. })),
        "nothing is asked for: {sent:?}"
    );
    assert!(net.nodes[0].held.is_empty());
}

/// The attack of issue 13 in the sans-IO core: a partner holds a
/// partners-only publication, is downgraded to subscriber, and reconnects
/// with a resume point past it. The publication did not change, so resuming
/// from the peer's point alone would never look at it again; the origin's
/// record of the peer's ack is forgotten by the decision, the whole index is
/// checked, and the publication is withdrawn.
#[test]
fn a_downgraded_peer_is_checked_against_the_whole_index_and_loses_what_it_may_not_see() {
    let mut nodes = federation(2, 0);
    let partners = nodes[0].publish_practice("partners", 1, Scope::Partners);
    let public = nodes[0].publish_practice("public", 2, Scope::Public);
    let mut net = Net::synced(nodes);
    assert!(net.nodes[1].copies().contains(&partners));
    net.disconnect(0, 1);

    // What the peer table does on a downgrade: a new role, and the ack forgotten.
    net.nodes[1].role = Role::Subscriber;
    let peer = net.nodes[1].id;
    net.nodes[0].acked.remove(&peer);
    net.connect(0, 1);
    net.run();
    let copies = net.nodes[1].copies();
    assert!(!copies.contains(&partners), "withdrawn: {copies:?}");
    assert!(copies.contains(&public), "the public one stays");
    assert!(!net.nodes[0].deliveries.contains(&(peer, partners.clone())));
}

/// Asking for a publication outside one's scope gets the answer an unknown
/// id gets; asking for one publication twice in one `Want` is refused, not
/// answered twice.
#[test]
fn wants_are_checked_before_anything_is_sent() {
    let (mut net, ours) = against_adversary(Role::Subscriber);
    let before = net.log.len();
    net.inject(1, 0, want(&ours, 1).encode());
    net.run();
    assert_eq!(net.closed_with(0, 1), Some(ViolationCode::UnknownDoc));
    assert_eq!(net.deliveries_since(before), 0);

    let (mut net, ours) = against_adversary(Role::Partner);
    let before = net.log.len();
    net.inject(1, 0, want(&ours, 256).encode());
    net.run();
    assert_eq!(
        net.closed_with(0, 1),
        Some(ViolationCode::UnexpectedMessage)
    );
    assert_eq!(net.deliveries_since(before), 0);
}

/// The attack: a peer repeats one small `Want` to make us send the same
/// full delivery over and over. The adversary's session already asked for
/// and got the publication once while syncing; its repeats close the session
/// with nothing more sent.
#[test]
fn a_repeated_want_is_answered_once() {
    let (mut net, ours) = against_adversary(Role::Partner);
    let delivered_once = net
        .log
        .iter()
        .filter(|d| d.to == 1 && matches!(&d.msg, SyncMessage::Deliver { .. }))
        .count();
    assert_eq!(delivered_once, 1, "the honest sync delivered it once");
    assert_eq!(net.closed_with(0, 1), None);
    let before = net.log.len();
    for _ in 0..10 {
        net.inject(1, 0, want(&ours, 1).encode());
    }
    net.run();
    assert_eq!(
        net.closed_with(0, 1),
        Some(ViolationCode::UnexpectedMessage)
    );
    assert_eq!(net.deliveries_since(before), 0, "answered once in all");
}

/// A valid version older than the one held, delivered by a relay, is
/// ignored, and the session goes on.
#[test]
fn an_older_valid_version_is_ignored_not_punished() {
    let mut nodes = federation(3, 0);
    let doc_id = nodes[0].publish_practice("p", 1, Scope::Public);
    let old_statement = nodes[0].publications[&doc_id].statement.clone();
    let mut net = Net::synced(nodes);
    net.nodes[0].edit(&doc_id, "newer");
    net.local_change(0);
    net.run();
    let held = net.nodes[1].held[&doc_id].version;
    // Node 2 (a relay) claims a newer version, then delivers the old one.
    let claim = inventory(net.nodes[2].epoch, &doc_id, held + 100, 9_999);
    net.inject(2, 1, claim.encode());
    net.step();
    // Node 2's own session never sees the Want: the test answers for it.
    assert!(!net.take_in_flight(1, 2).is_empty());
    net.inject(
        2,
        1,
        SyncMessage::Deliver {
            statement: old_statement,
            changes: vec![],
        }
        .encode(),
    );
    net.step();
    assert_eq!(net.closed_with(1, 2), None);
    assert_eq!(net.nodes[1].held[&doc_id].version, held);
    assert!(net
        .events(1)
        .any(|(_, e)| matches!(e, Event::Stale { doc_id: d } if *d == doc_id)));
}

/// A peer that leaves a `Want` unanswered is dropped after the stall timeout.
#[test]
fn a_stalled_peer_is_dropped() {
    let (mut net, _) = against_adversary(Role::Partner);
    let (doc_id, _) = publication_of(ADVERSARY, "never", 0);
    announce(&mut net, &doc_id, 1);
    net.advance(STALL_TIMEOUT - Duration::from_secs(1));
    assert_eq!(net.closed_with(0, 1), None);
    net.advance(Duration::from_secs(2));
    assert_eq!(net.closed_with(0, 1), Some(ViolationCode::Stalled));
}

/// A local read error ends the session as a local failure: it never reads as
/// an empty index, so the peer withdraws nothing and keeps its copies.
#[test]
fn a_read_error_ends_the_session_and_never_empties_the_index() {
    let mut nodes = federation(2, 0);
    let doc_id = nodes[0].publish_practice("p", 1, Scope::Partners);
    let mut net = Net::synced(nodes);
    net.disconnect_all();
    net.nodes[0].reads_fail = true;
    net.connect(0, 1);
    net.run();
    assert!(matches!(
        net.sessions[&(0, 1)].closed(),
        Some(Closed::Local(_))
    ));
    assert!(net.nodes[1].copies().contains(&doc_id));
}
