//! Bounded resources against hostile peers, over real QUIC on 127.0.0.1.
//!
//! Each test attacks a real daemon in this process (real QUIC, real SQLite in
//! a temporary directory) with a scripted peer, and checks the bound that
//! stops the attack, usually while an honest partner city is still served:
//!
//! - a peer that floods large frames while not reading what the node sends:
//!   what the node lets in stops at its per-connection byte budget, its
//!   resident memory stays bounded, and the peer is dropped after
//!   `WRITE_TIMEOUT`;
//! - a peer that goes silent in the middle of an exchange is closed as
//!   `Stalled` after `STALL_TIMEOUT`;
//! - a flood of spoofed QUIC Initial packets from 200 source addresses does
//!   not keep an honest city from connecting (the node answers them with a
//!   Retry and gives them no handshake slot);
//! - a node nobody approved can make the node buffer at most the small
//!   pre-admission window;
//! - a `Want` repeated for a version already delivered is answered once;
//! - an origin publishing more than `REPLICAS_PER_ORIGIN_MAX` publications
//!   gets the quota's worth stored and the rest refused, evicting nobody.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use labnet_config::Role;
use labnet_node::daemon::Daemon;
use labnet_node::data_dir::DataDir;
use labnet_node::identity::Identity;
use labnet_node::share::publication::{sample_body, sample_doc};
use labnet_node::sync::driver::{SyncNotice, FRAMES_QUEUED_BYTES_MAX, WRITE_TIMEOUT};
use labnet_node::sync::session::{REPLICAS_PER_ORIGIN_MAX, STALL_TIMEOUT};
use labnet_node::transport::endpoint::{RECEIVE_WINDOW_BYTES, RECEIVE_WINDOW_UNADMITTED_BYTES};
use labnet_node::trust::Scope;
use labnet_protocol::close::ViolationCode;
use labnet_protocol::handshake::PeerRole;
use labnet_protocol::statement::{ScopeClass, Signed, Signer, VersionStatement};
use labnet_protocol::sync::{
    publication_id, Announcement, DocId, Inventory, SyncMessage, WantItem, INVENTORY_ENTRIES_MAX,
    MESSAGE_LEN_MAX, SYNC_PROTOCOL_VERSION,
};
use labnet_tests::nodes::{
    add_peer, approve, both_connected, eventually, fast_transport, init, pair_by_contacts,
    pair_connected, partners_in_tmp, publish, replicas, start, start_partner,
};
use labnet_tests::raw_peer::{
    client_config, client_config_with_windows, client_endpoint, hello, mib, resident_memory_bytes,
    Ended, RawPeer,
};

/// How long one step of a scripted peer may take (connecting, an answer
/// the node owes): generous for a loaded 2-core machine in a debug build.
const WAIT: Duration = Duration::from_secs(15);

/// How long an honest partner may take to receive a version while the node
/// is under attack.
const CONVERGE: Duration = Duration::from_secs(60);

/// How long a write of the flood may block before the flood counts as
/// back-pressured: far more than loopback needs to move 8 MiB to a reader
/// that takes it.
const FLOOD_WRITE_STALL: Duration = Duration::from_secs(5);

/// Frames of the flood: 40 of the largest frame, 320 MiB, eight times what
/// the node may hold for one connection.
const FLOOD_FRAMES: usize = 40;

/// What the node may take in of the flood before it stops reading: its
/// frame queue ([`FRAMES_QUEUED_BYTES_MAX`], 16 MiB), one frame under way in
/// the decoder (8 MiB) and one read, and the QUIC window it granted
/// ([`RECEIVE_WINDOW_BYTES`], 16 MiB): 40 MiB, plus 4 MiB for packets in
/// flight when the count is taken.
const FLOOD_ACCEPTED_MAX: usize = FRAMES_QUEUED_BYTES_MAX
    + MESSAGE_LEN_MAX
    + 64 * 1024
    + RECEIVE_WINDOW_BYTES as usize
    + (4 << 20);

/// How much this process's resident memory may grow while the flood runs.
/// What the node takes in is at most [`FLOOD_ACCEPTED_MAX`] (44 MiB); the
/// flooding peer's own send buffer holds what the node has not acknowledged
/// (at most the same again) and its one 8 MiB frame. 128 MiB leaves room for
/// allocator slack; a node that queued the flood (320 MiB) crosses it.
const FLOOD_RSS_GROWTH_MAX_BYTES: u64 = 128 << 20;

/// Source addresses the spoofed Initial packets come from: 127.0.3.1 to
/// 127.0.3.200, three times the node's 64 handshake slots.
const SPOOFED_SOURCES: u8 = 200;

/// How often every spoofed source sends a fresh Initial: often enough that
/// slots freed by the handshake timeout would be taken again at once.
const SPOOF_INTERVAL: Duration = Duration::from_millis(250);

/// The flood test reads this process's resident memory: it runs alone, the
/// others share (they take the read side, it takes the write side).
fn memory_measured_alone() -> &'static tokio::sync::RwLock<()> {
    static LOCK: std::sync::OnceLock<tokio::sync::RwLock<()>> = std::sync::OnceLock::new();
    LOCK.get_or_init(|| tokio::sync::RwLock::new(()))
}

/// Partner cities named `names` in a fresh temporary directory, started
/// while the test holds its share of the memory lock: the set-up of every
/// attack but the flood, which measures memory and so runs alone.
async fn sharing_memory<const N: usize>(
    names: [&str; N],
) -> (
    tokio::sync::RwLockReadGuard<'static, ()>,
    tempfile::TempDir,
    [Daemon; N],
) {
    let shared = memory_measured_alone().read().await;
    let (tmp, nodes) = partners_in_tmp(names).await;
    (shared, tmp, nodes)
}

/// A fresh identity that `victim` approved as a partner.
async fn approved_partner(victim: &Daemon) -> Identity {
    let id = Identity::generate().unwrap();
    approve(victim, id.node_id(), Role::Partner).await;
    id
}

/// Dials `victim` with `config` as the partner `name`, past the handshake.
async fn dial(victim: &Daemon, config: quinn::ClientConfig, name: &str) -> RawPeer {
    RawPeer::connect(
        &client_endpoint(),
        config,
        victim.listen_addr(),
        hello(name, PeerRole::Partner),
        WAIT,
    )
    .await
    .unwrap()
}

const RESUME: SyncMessage = SyncMessage::Resume {
    version: SYNC_PROTOCOL_VERSION,
    from: None,
};

/// A victim paired with an honest partner, both holding the victim's
/// publication `news`, in a fresh temporary directory.
async fn victim_and_honest() -> (tempfile::TempDir, Daemon, Daemon, String) {
    let (tmp, [victim, honest]) = partners_in_tmp(["Victim", "Honest"]).await;
    pair_connected(&victim, &honest, WAIT).await;
    let (news, _) = publish(&victim, "news", "first", &Scope::Public).await;
    assert!(
        eventually(CONVERGE, async || replicas(&honest)
            .await
            .contains_key(&news))
        .await,
        "the honest partner holds the victim's publication"
    );
    (tmp, victim, honest, news)
}

/// The victim publishes a new version of `doc` while under attack; whether
/// the honest partner receives it.
async fn honest_receives_new_version(
    victim: &Daemon,
    honest: &Daemon,
    name: &str,
    text: &str,
) -> bool {
    let (doc, mut heads) = publish(victim, name, text, &Scope::Public).await;
    heads.sort();
    eventually(CONVERGE, async || {
        replicas(honest).await.get(&doc).map(|h| {
            let mut h = h.clone();
            h.sort();
            h
        }) == Some(heads.clone())
    })
    .await
}

/// The attack: an approved peer that never reads what the node sends (so
/// the node's writes block) and floods 8 MiB frames as fast as QUIC takes
/// them. The node stops reading once its byte budget for the connection is
/// spent, so the flood is back-pressured long before it is all sent, its
/// memory stays bounded, the honest partner is still served, and after
/// `WRITE_TIMEOUT` the node drops the peer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_floods_frames_and_never_reads_is_back_pressured_then_dropped() {
    let _alone = memory_measured_alone().write().await;
    let (_tmp, victim, honest, _) = victim_and_honest().await;
    // Enough of the victim's index that its inventory outgrows the tiny
    // window the flooding peer grants.
    for i in 0..60 {
        publish(&victim, &format!("p{i}"), "for partners", &Scope::Partners).await;
    }
    let flooder = approved_partner(&victim).await;
    let config = client_config_with_windows(&flooder, 1024, 1024);
    let mut peer = dial(&victim, config, "flooder").await;
    let resumed = Instant::now();
    peer.send_message(&RESUME).await.unwrap();

    let rss_before = resident_memory_bytes();
    // Any bytes: the node never gets to decode them while its writes block.
    let mut frame = Vec::with_capacity(MESSAGE_LEN_MAX + 4);
    frame.extend_from_slice(&(MESSAGE_LEN_MAX as u32).to_be_bytes());
    frame.resize(MESSAGE_LEN_MAX + 4, 0x5a);
    let mut accepted = 0usize;
    let mut back_pressured = false;
    for _ in 0..FLOOD_FRAMES {
        let mut left = &frame[..];
        while !left.is_empty() {
            match tokio::time::timeout(FLOOD_WRITE_STALL, peer.send_some(left)).await {
                Ok(Ok(n)) => {
                    accepted += n;
                    left = &left[n..];
                }
                Ok(Err(e)) => panic!("the flood's write failed: {e}"),
                Err(_) => {
                    back_pressured = true;
                    break;
                }
            }
        }
        if back_pressured {
            break;
        }
    }
    let rss_growth = resident_memory_bytes().saturating_sub(rss_before);
    println!(
        "flood: {:.1} MiB of {:.0} MiB taken in before back-pressure; resident memory grew {:.1} MiB",
        mib(accepted as u64),
        mib((FLOOD_FRAMES * frame.len()) as u64),
        mib(rss_growth)
    );
    assert!(back_pressured, "the whole flood was taken in");
    assert!(
        accepted <= FLOOD_ACCEPTED_MAX,
        "{:.1} MiB taken in, bound {:.1} MiB",
        mib(accepted as u64),
        mib(FLOOD_ACCEPTED_MAX as u64)
    );
    assert!(
        rss_growth <= FLOOD_RSS_GROWTH_MAX_BYTES,
        "resident memory grew {:.1} MiB",
        mib(rss_growth)
    );
    assert!(
        honest_receives_new_version(&victim, &honest, "news", "during the flood").await,
        "the honest partner is served while the flood is held back"
    );

    // The node's write has waited since the Resume: the peer is dropped once
    // it has waited WRITE_TIMEOUT, not before.
    let ended = peer.ended(WRITE_TIMEOUT + WAIT).await;
    let after = resumed.elapsed();
    assert!(
        matches!(ended, Ended::ByNode { .. }),
        "the node closed the connection: {ended:?}"
    );
    assert!(
        after >= WRITE_TIMEOUT,
        "dropped after {after:?}, before WRITE_TIMEOUT"
    );
    println!("the peer that stopped reading was dropped after {after:?}");
    assert!(both_connected(&victim, &honest));
    victim.shutdown().await;
    honest.shutdown().await;
}

/// A statement of `version` of `doc` (heads `heads`), signed by `signer`.
fn signed_statement(signer: &Identity, doc: &DocId, version: u64, heads: &[[u8; 32]]) -> Vec<u8> {
    let mut heads = heads.to_vec();
    heads.sort();
    Signed::sign(
        VersionStatement {
            publication: doc.clone(),
            origin_key: Signer::public_key(signer),
            version,
            heads,
            scope: ScopeClass::Partners,
            retracted: false,
            issued_at: 1_764_000_000 + version,
        },
        signer,
    )
    .encode()
}

/// The attack: a peer announces a publication, is asked for it, and goes
/// silent: the node waits `STALL_TIMEOUT`, then closes with `Stalled`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_goes_silent_mid_exchange_is_closed_as_stalled() {
    let (_shared, _tmp, [victim]) = sharing_memory(["Victim"]).await;
    let silent = approved_partner(&victim).await;
    let mut peer = dial(&victim, client_config(&silent), "silent").await;
    let doc = publication_id(silent.node_id(), "never").unwrap();
    peer.send_message(&RESUME).await.unwrap();
    // The node's stall timer cannot start before it has our last message, so
    // its close comes at least STALL_TIMEOUT after we sent it (measuring from
    // when its Want reached us would not hold on a loaded machine).
    let last_sent = Instant::now();
    peer.send_message(&SyncMessage::Inventory(Inventory {
        epoch: 1,
        entries: vec![Announcement {
            doc_id: doc.clone(),
            version: 1,
            retracted: false,
            seq: 1,
        }],
        up_to_seq: 1,
        full: true,
        complete: true,
    }))
    .await
    .unwrap();
    peer.until(WAIT, |m| match m {
        SyncMessage::Want { items } => items.iter().any(|i| i.doc_id == doc).then_some(()),
        _ => None,
    })
    .await
    .unwrap();
    // Nothing more from us. Reading on shows the node sends nothing that
    // could count as progress, and ends when it closes.
    while peer.next_message(STALL_TIMEOUT + WAIT).await.is_ok() {}
    let ended = peer.ended(WAIT).await;
    let after = last_sent.elapsed();
    assert!(
        matches!(&ended, Ended::ByNode { code, .. }
            if *code == u64::from(ViolationCode::Stalled.as_u32())),
        "{ended:?}"
    );
    assert!(after >= STALL_TIMEOUT, "closed after {after:?}");
    println!("the silent peer was closed as stalled after {after:?}");
    victim.shutdown().await;
}

/// Sends, from `socket`, the Initial packets of a fresh QUIC connection to
/// `target`, and never answers what comes back (the Retry included).
fn send_spoofed_initial(
    client: &mut quinn_proto::Endpoint,
    config: &quinn::ClientConfig,
    socket: &UdpSocket,
    target: SocketAddr,
) {
    let now = Instant::now();
    let Ok((_, mut connection)) = client.connect(now, config.clone(), target, "labnet") else {
        return;
    };
    let mut buf = Vec::new();
    while let Some(transmit) = connection.poll_transmit(now, 1, &mut buf) {
        let _ = socket.send_to(&buf[..transmit.size], transmit.destination);
        buf.clear();
    }
}

/// The attack: Initial packets from 200 source addresses (127.0.3.1 to
/// 127.0.3.200; real sockets, so only what a spoofer could do: send, never
/// answer), a fresh one from each every 250 ms, 800 a second. Each would
/// hold one of the 64 handshake slots for the handshake timeout if it got
/// one, and then every honest connection would be refused ("too many
/// handshakes"). With the Retry gate none of them gets a slot: an approved
/// peer connects five times in a row while the flood goes on, and an honest
/// city that dials the node pairs with it and syncs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spoofed_initial_packets_from_many_addresses_take_no_handshake_slot() {
    let (_shared, _tmp, [victim, honest]) = sharing_memory(["Victim", "Honest"]).await;
    let knocker = approved_partner(&victim).await;
    let target = victim.listen_addr();
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let flood = {
        let (stop, sent) = (Arc::clone(&stop), Arc::clone(&sent));
        std::thread::spawn(move || {
            let spoofer = Identity::generate().unwrap();
            let config = client_config(&spoofer);
            let sockets: Vec<UdpSocket> = (1..=SPOOFED_SOURCES)
                .map(|i| UdpSocket::bind(format!("127.0.3.{i}:0")).unwrap())
                .collect();
            let endpoint = || {
                quinn_proto::Endpoint::new(
                    Arc::new(quinn_proto::EndpointConfig::default()),
                    None,
                    false,
                    None,
                )
            };
            while !stop.load(Ordering::Relaxed) {
                let wave = Instant::now();
                // A fresh client endpoint each wave: the old connections'
                // state would only grow, since none of them is ever driven.
                let mut client = endpoint();
                for socket in &sockets {
                    send_spoofed_initial(&mut client, &config, socket, target);
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(SPOOF_INTERVAL.saturating_sub(wave.elapsed()));
            }
        })
    };
    // Let the flood take hold first: a few waves, far more than the slots.
    assert!(
        eventually(WAIT, async || sent.load(Ordering::Relaxed)
            >= 3 * usize::from(SPOOFED_SOURCES))
        .await
    );
    let endpoint = client_endpoint();
    let mut knocks = Vec::new();
    for _ in 0..5 {
        let knock = RawPeer::connect(
            &endpoint,
            client_config(&knocker),
            target,
            hello("knocker", PeerRole::Partner),
            WAIT,
        )
        .await;
        if let Ok(peer) = &knock {
            peer.close();
        }
        knocks.push(knock.map(|_| ()));
    }
    // The honest city dials; the node only approves it (no address, so the
    // node does not dial back): its way in is through the flooded door.
    approve(&victim, honest.node_id(), Role::Partner).await;
    add_peer(&honest, &victim).await;
    let connected = eventually(CONVERGE, async || both_connected(&victim, &honest)).await;
    let synced = connected && {
        let (doc, _) = publish(&victim, "news", "under a spoofed flood", &Scope::Public).await;
        eventually(CONVERGE, async || {
            replicas(&honest).await.contains_key(&doc)
        })
        .await
    };
    stop.store(true, Ordering::Relaxed);
    flood.join().unwrap();
    println!(
        "{} spoofed Initial packets sent from {SPOOFED_SOURCES} addresses; knocks: {knocks:?}",
        sent.load(Ordering::Relaxed)
    );
    assert!(
        knocks.iter().all(Result::is_ok),
        "an approved peer was kept out by the flood: {knocks:?}"
    );
    assert!(
        connected,
        "the honest city could not connect under the flood"
    );
    assert!(synced, "the honest city did not sync under the flood");
    victim.shutdown().await;
    honest.shutdown().await;
}

/// The attack: a node nobody approved completes the QUIC handshake, opens
/// the stream the node waits on for a `Hello` but says nothing there, and
/// writes as much as it can on a second stream the node never reads. All it
/// can make the node buffer is the pre-admission window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_nobody_approved_can_fill_only_the_small_window() {
    let (_shared, _tmp, [victim]) = sharing_memory(["Victim"]).await;
    let stranger = Identity::generate().unwrap();
    let endpoint = client_endpoint();
    let connection = endpoint
        .connect_with(client_config(&stranger), victim.listen_addr(), "labnet")
        .unwrap()
        .await
        .unwrap();
    let (_hello_send, _hello_recv) = connection.open_bi().await.unwrap();
    let (mut send, _recv) = connection.open_bi().await.unwrap();
    let chunk = vec![0u8; 64 * 1024];
    let mut accepted = 0usize;
    loop {
        match tokio::time::timeout(Duration::from_secs(3), send.write(&chunk)).await {
            Ok(Ok(n)) => accepted += n,
            Ok(Err(e)) => panic!("write failed: {e}"),
            Err(_) => break,
        }
        assert!(accepted <= 64 << 20, "the node keeps taking bytes");
    }
    println!("a node nobody approved got {accepted} bytes buffered");
    assert!(
        accepted <= RECEIVE_WINDOW_UNADMITTED_BYTES as usize,
        "{accepted} bytes taken before admission, window {RECEIVE_WINDOW_UNADMITTED_BYTES}"
    );
    assert!(accepted > 0, "the window is small, not shut");
    connection.close(0u32.into(), b"done");
    victim.shutdown().await;
}

/// The attack: an approved partner asks for a publication, gets it, then
/// asks for the same version again and again to make the node send it over
/// and over. It gets one delivery; the repeat closes the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_want_repeated_for_a_delivered_version_is_answered_once() {
    let (_shared, _tmp, [victim]) = sharing_memory(["Victim"]).await;
    let (doc, _) = publish(&victim, "circle", "for partners", &Scope::Partners).await;
    let doc = DocId::new(doc).unwrap();
    let asker = approved_partner(&victim).await;
    let mut peer = dial(&victim, client_config(&asker), "asker").await;
    peer.send_message(&RESUME).await.unwrap();
    peer.until(WAIT, |m| match m {
        SyncMessage::Inventory(Inventory { entries, .. }) => {
            entries.iter().any(|e| e.doc_id == doc).then_some(())
        }
        _ => None,
    })
    .await
    .unwrap();
    let want = SyncMessage::Want {
        items: vec![WantItem {
            doc_id: doc.clone(),
            have: vec![],
        }],
    };
    peer.send_message(&want).await.unwrap();
    peer.until(WAIT, |m| {
        matches!(m, SyncMessage::Deliver { .. }).then_some(())
    })
    .await
    .unwrap();
    for _ in 0..20 {
        if peer.send_message(&want).await.is_err() {
            break;
        }
    }
    let mut more_deliveries = 0;
    while let Ok(msg) = peer.next_message(WAIT).await {
        if matches!(msg, SyncMessage::Deliver { .. }) {
            more_deliveries += 1;
        }
    }
    let ended = peer.ended(WAIT).await;
    assert!(
        matches!(&ended, Ended::ByNode { code, .. }
            if *code == u64::from(ViolationCode::UnexpectedMessage.as_u32())),
        "{ended:?}"
    );
    assert_eq!(more_deliveries, 0, "the repeats got no delivery");
    victim.shutdown().await;
}

/// A publication of `origin` called `name`, version 1, as its origin
/// delivers it: its id, signed statement and change chunks.
fn origin_publication(origin: &Identity, name: &str, seed: u32) -> (DocId, Vec<u8>, Vec<Vec<u8>>) {
    let doc_id = publication_id(origin.node_id(), name).unwrap();
    let mut doc = sample_doc(&sample_body(origin.node_id(), name, seed));
    let heads: Vec<[u8; 32]> = doc.get_heads().iter().map(|h| h.0).collect();
    let changes = doc
        .get_changes(&[])
        .iter()
        .map(|c| c.raw_bytes().to_vec())
        .collect();
    let statement = signed_statement(origin, &doc_id, 1, &heads);
    (doc_id, statement, changes)
}

/// The attack: an approved origin publishes one more publication than a
/// node keeps of one origin ([`REPLICAS_PER_ORIGIN_MAX`]), all valid and
/// signed, to fill its disk. The node stores the quota's worth, refuses the
/// rest with a notice (and a warning in its log), acknowledges the batch so
/// the origin does not resend it, and keeps the copy it holds of another
/// city's publication.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_origin_publishing_over_its_replica_quota_is_refused_and_evicts_nobody() {
    flood_over_quota(None).await;
}

/// The same attack on a node whose operator set the quota in its config
/// (`[limits] replicas_per_origin`): the configured number is the one the
/// flooding origin meets, not the default.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_quota_set_in_the_config_is_the_one_a_flooding_origin_meets() {
    flood_over_quota(Some(5)).await;
}

/// An approved origin publishes one more publication than the victim keeps of
/// one origin: `configured` in its config file, or the default.
async fn flood_over_quota(configured: Option<u32>) {
    let _shared = memory_measured_alone().read().await;
    let tmp = tempfile::tempdir().unwrap();
    let victim_dir = init(tmp.path(), "Victim", Role::Partner, 0);
    let quota = match configured {
        Some(quota) => {
            let path = DataDir::new(&victim_dir).config_path();
            let text = std::fs::read_to_string(&path).unwrap();
            let default = format!(
                "replicas_per_origin = {}",
                labnet_config::DEFAULT_REPLICAS_PER_ORIGIN
            );
            assert!(text.contains(&default), "init writes the quota");
            let text = text.replace(&default, &format!("replicas_per_origin = {quota}"));
            std::fs::write(&path, text).unwrap();
            quota as usize
        }
        None => REPLICAS_PER_ORIGIN_MAX,
    };
    let victim = start(&victim_dir, fast_transport()).await;
    let honest = start_partner(tmp.path(), "Honest").await;
    pair_by_contacts(&victim, &honest).await;
    let (theirs, _) = publish(&honest, "theirs", "the honest city's", &Scope::Partners).await;
    assert!(
        eventually(CONVERGE, async || replicas(&victim)
            .await
            .contains_key(&theirs))
        .await
    );

    let origin = approved_partner(&victim).await;
    let total = quota + 1;
    let publications: std::collections::HashMap<DocId, (Vec<u8>, Vec<Vec<u8>>)> = (0..total)
        .map(|i| {
            let (id, statement, changes) = origin_publication(&origin, &format!("p{i}"), i as u32);
            (id, (statement, changes))
        })
        .collect();
    let ids: Vec<DocId> = publications.keys().cloned().collect();
    let mut notices = victim.context().sync.notices.subscribe();
    let mut peer = dial(&victim, client_config(&origin), "flooding origin").await;
    peer.send_message(&RESUME).await.unwrap();
    let mut seq = 0u64;
    for batch in ids.chunks(INVENTORY_ENTRIES_MAX) {
        let entries = batch
            .iter()
            .map(|id| {
                seq += 1;
                Announcement {
                    doc_id: id.clone(),
                    version: 1,
                    retracted: false,
                    seq,
                }
            })
            .collect();
        peer.send_message(&SyncMessage::Inventory(Inventory {
            epoch: 1,
            entries,
            up_to_seq: seq,
            full: true,
            complete: seq as usize == total,
        }))
        .await
        .unwrap();
    }
    let last_seq = seq;
    // Answer every Want until the last batch is acknowledged.
    let started = Instant::now();
    loop {
        let msg = peer.next_message(CONVERGE).await.unwrap();
        match msg {
            SyncMessage::Want { items } => {
                for item in items {
                    let (statement, changes) = publications[&item.doc_id].clone();
                    peer.send_message(&SyncMessage::Deliver { statement, changes })
                        .await
                        .unwrap();
                }
            }
            SyncMessage::InventoryAck { up_to_seq, .. } if up_to_seq == last_seq => break,
            _ => {}
        }
    }
    println!(
        "{total} publications delivered and settled in {:?}",
        started.elapsed()
    );
    let (mut stored, mut refused) = (0, 0);
    while stored + refused < total {
        match tokio::time::timeout(WAIT, notices.recv()).await {
            Ok(Ok(SyncNotice::ReplicaChanged { origin: o, .. })) if o == origin.node_id() => {
                stored += 1
            }
            Ok(Ok(SyncNotice::ReplicaRefused { origin: o, .. })) if o == origin.node_id() => {
                refused += 1
            }
            Ok(Ok(_)) => {}
            other => panic!("notices: {other:?} after {stored} stored, {refused} refused"),
        }
    }
    assert_eq!((stored, refused), (quota, 1));
    let held = victim
        .context()
        .store
        .call({
            let o = origin.node_id();
            move |s| s.replicas_of(o).unwrap().len()
        })
        .await;
    assert_eq!(held, quota, "nothing over the quota stored");
    assert!(
        replicas(&victim).await.contains_key(&theirs),
        "the other city's copy is not evicted"
    );
    assert_eq!(
        peer.ended(Duration::ZERO).await,
        Ended::StillOpen,
        "an origin over its quota broke no rule"
    );
    peer.close();
    victim.shutdown().await;
    honest.shutdown().await;
}
