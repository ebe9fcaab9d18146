//! Sync benchmark: labnet over QUIC against plain in-memory Automerge sync.
//!
//! `cargo bench -p labnet-node --bench sync [-- N ...]` (default N = 1000 10000)
//! builds N practice-sized publication documents (the shape `share` writes,
//! about 1.2 KB saved each), then measures in one run, side by side:
//!
//! 1. in-memory Automerge sync of the same documents to an empty peer (one
//!    `sync::State` pair per document, messages passed in memory): the floor;
//! 2. initial sync to a new peer between two real nodes (QUIC on 127.0.0.1,
//!    SQLite stores in temporary directories): time, and UDP bytes from quinn's
//!    connection statistics, against the saved size plus the statements;
//! 3. one small change on a live connection, and the latency from the
//!    origin's commit to the peer's stored copy over 50 such changes;
//! 4. incremental sync after 1% of the publications change, while connected;
//! 5. catch-up after a partition: the peer is stopped, 10 publications change,
//!    the peer restarts and catches up;
//! 6. resident memory of the process (both nodes) against the stores' size;
//! 7. initial sync again across a WAN-like link: a UDP relay the bench runs
//!    between the nodes, 20 ms each way and 1 % loss (this kernel has no netem);
//! 8. at N ≤ 1,000, samod 0.16 (the Rust automerge-repo) on the same documents
//!    over TCP on 127.0.0.1: initial sync, one live change, catch-up after ten
//!    changes, printed next to labnet's figures with the ratios.
//!
//! `cargo bench -p labnet-node --bench sync -- memory [N]` measures instead the
//! resident memory of one node holding N publications (default 10,000), alone
//! in its own process, with 1 and then 12 peers synced from it.
//!
//! Figures are printed as a table; BENCHMARKS.md records them with the machine.

#![allow(clippy::unwrap_used)] // a benchmark that fails should fail loudly
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use automerge::sync::SyncDoc;
use automerge::AutoCommit;
use labnet_config::Role;
use labnet_node::api::AdminRequest;
use labnet_node::daemon::{Daemon, StartOptions};
use labnet_node::data_dir::DataDir;
use labnet_node::share::publication::{sample_body, sample_doc};
use labnet_node::share::PublicationBody;
use labnet_node::sync::driver::SyncNotice;
use labnet_node::transport::TransportConfig;
use labnet_node::trust::Scope;
use labnet_protocol::sync::publication_id;
use labnet_protocol::NodeId;

#[path = "sync/memory.rs"]
mod memory;
#[path = "sync/samod.rs"]
mod samod;

/// N publication documents of `origin`, each distinct.
fn build_docs(origin: NodeId, n: usize) -> Vec<AutoCommit> {
    (0..n)
        .map(|i| sample_doc(&sample_body(origin, &format!("p{i}"), i as u32)))
        .collect()
}

/// A one-field change of about 100 bytes, as an edit of a practice's
/// communication plan is.
fn small_edit(doc: &mut AutoCommit, round: i64) {
    let body = small_edit_body(doc, round);
    autosurgeon::reconcile(doc, &body).unwrap();
}

/// The body `small_edit` reconciles into `doc`.
fn small_edit_body(doc: &impl autosurgeon::ReadDoc, round: i64) -> PublicationBody {
    let mut body: PublicationBody = autosurgeon::hydrate(doc).unwrap();
    body.practice.communication = format!("Posters in the library and the market, round {round}");
    body
}

/// What one side of the comparison measured at one N.
pub(crate) struct Figures {
    /// Initial sync to an empty peer.
    initial: Duration,
    /// Its bytes on the wire, both ways.
    initial_bytes: u64,
    /// One small change on the live connection, until the peer applied it.
    live: Duration,
    /// Its bytes.
    live_bytes: u64,
    /// Catch-up after ten changes while disconnected, until the peer holds
    /// the ten.
    catch_up: Duration,
    /// The bytes of the new connection until then.
    catch_up_bytes: u64,
    /// The bytes of the new connection until it is quiet, where sync goes on
    /// after the ten (samod); `None` where it does not (labnet).
    catch_up_quiet_bytes: Option<u64>,
}

/// Resident memory of this process, in bytes.
fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

struct Memory {
    time: Duration,
    bytes: u64,
    messages: u64,
}

/// Passes `from`'s next sync message for one document, if it has one, to `to`
/// (encoded and decoded, as on a wire); returns the message's encoded length.
fn pass_message(
    from: &mut AutoCommit,
    from_state: &mut automerge::sync::State,
    to: &mut AutoCommit,
    to_state: &mut automerge::sync::State,
) -> Option<u64> {
    let message = from.sync().generate_sync_message(from_state)?;
    let enc = message.encode();
    to.sync()
        .receive_sync_message(to_state, automerge::sync::Message::decode(&enc).unwrap())
        .unwrap();
    Some(enc.len() as u64)
}

fn memory_sync(docs: &[AutoCommit]) -> Memory {
    let mut sources: Vec<AutoCommit> = docs.to_vec();
    let started = Instant::now();
    let (mut bytes, mut messages) = (0u64, 0u64);
    for source in &mut sources {
        let mut target = AutoCommit::new();
        let (mut s_state, mut t_state) =
            (automerge::sync::State::new(), automerge::sync::State::new());
        loop {
            let sent = [
                pass_message(source, &mut s_state, &mut target, &mut t_state),
                pass_message(&mut target, &mut t_state, source, &mut s_state),
            ];
            if sent.iter().all(Option::is_none) {
                break;
            }
            for len in sent.into_iter().flatten() {
                bytes += len;
                messages += 1;
            }
        }
    }
    Memory {
        time: started.elapsed(),
        bytes,
        messages,
    }
}

fn transport() -> TransportConfig {
    TransportConfig {
        redial_base: Duration::from_millis(50),
        redial_max: Duration::from_millis(200),
        ..TransportConfig::default()
    }
}

async fn start(dir: &std::path::Path) -> Daemon {
    let mut options = StartOptions::new(DataDir::new(dir), vec![]);
    options.transport = transport();
    Daemon::start(options).await.unwrap()
}

async fn admin(d: &Daemon, request: AdminRequest) {
    let r = d.context().control.handle(request).await;
    assert!(r.ok, "{:?}", r.error);
}

/// Waits until `b` holds replicas whose heads match all of `a`'s publications.
///
/// The full check reads every row, under the store lock the sync sessions need
/// too; it runs only once the replica count is right (a cheap query), and then
/// at most every 50 ms, so measuring does not slow down what is measured.
async fn wait_synced(a: &Daemon, b: &Daemon, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let expected = a
        .context()
        .store
        .call(|s| s.publication_rows().unwrap().len() as i64)
        .await;
    loop {
        if replicas(b).await < expected {
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        let want = a
            .context()
            .store
            .call(|s| s.publication_rows().unwrap())
            .await;
        let ok = b
            .context()
            .store
            .call(move |s| {
                want.iter().all(|r| {
                    s.replica_entry(&r.doc_id)
                        .unwrap()
                        .is_some_and(|(_, h)| h == r.heads)
                })
            })
            .await;
        if ok {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How many replicas `d` holds.
async fn replicas(d: &Daemon) -> i64 {
    d.context()
        .store
        .call(|s| s.document_counts().unwrap().replica)
        .await
}

fn wire(a: &Daemon, b: &Daemon) -> u64 {
    let (tx, rx) = a
        .context()
        .transport
        .connection_bytes(b.node_id())
        .unwrap_or((0, 0));
    tx + rx
}

async fn edit(a: &Daemon, ids: Vec<String>, round: i64) {
    let changed = ids.clone();
    a.context()
        .store
        .call(move |s| {
            let mut batch: Vec<(String, AutoCommit)> = changed
                .iter()
                .map(|id| {
                    let (_, mut doc) = s.load_document(id).unwrap().unwrap();
                    small_edit(&mut doc, round);
                    (id.clone(), doc)
                })
                .collect();
            let mut refs: Vec<(&str, &mut AutoCommit, &str)> = batch
                .iter_mut()
                .map(|(id, d)| (id.as_str(), d, "partners"))
                .collect();
            s.save_publications(&mut refs).unwrap();
        })
        .await;
    for id in ids {
        let _ = a
            .context()
            .sync
            .local_changes
            .send(labnet_protocol::sync::DocId::new(id).unwrap());
    }
}

/// Data directories `a` (the origin) and `b` (its peer) under `root`.
fn init_pair(root: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (a_dir, b_dir) = (root.join("a"), root.join("b"));
    init_node(&a_dir, "origin");
    init_node(&b_dir, "peer");
    (a_dir, b_dir)
}

/// Initializes a partner's data directory `dir` named `name`, listening on a
/// free port, whose quota of one origin's copies holds every bench size.
fn init_node(dir: &std::path::Path, name: &str) {
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let data_dir = DataDir::new(dir);
    data_dir
        .init(name, Role::Partner, &format!("127.0.0.1:{port}"), &[])
        .unwrap();
    // One origin with 10,000 publications is past a city's default quota of
    // copies (limits.replicas_per_origin): the peer must keep them all.
    let config = std::fs::read_to_string(data_dir.config_path()).unwrap();
    let default = format!(
        "replicas_per_origin = {}",
        labnet_config::DEFAULT_REPLICAS_PER_ORIGIN
    );
    assert!(config.contains(&default), "init writes the quota");
    let raised = config.replace(&default, "replicas_per_origin = 100000");
    std::fs::write(data_dir.config_path(), raised).unwrap();
}

/// The ids of `a`'s publications `p0`..`p{n-1}`.
fn doc_ids(a: &Daemon, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            publication_id(a.node_id(), &format!("p{i}"))
                .unwrap()
                .as_str()
                .to_string()
        })
        .collect()
}

/// Saves `docs` as `a`'s partner-scoped publications `ids`, 500 to a
/// transaction (each signed).
async fn store_docs(a: &Daemon, ids: Vec<String>, mut docs: Vec<AutoCommit>) {
    let scope = Scope::Partners.to_text();
    a.context()
        .store
        .call(move |s| {
            for chunk in ids.chunks(500).zip(docs.chunks_mut(500)) {
                let mut refs: Vec<(&str, &mut AutoCommit, &str)> = chunk
                    .0
                    .iter()
                    .zip(chunk.1.iter_mut())
                    .map(|(id, d)| (id.as_str(), d, scope.as_str()))
                    .collect();
                s.save_publications(&mut refs).unwrap();
            }
        })
        .await;
}

/// Bytes of the statements `d` holds of its own publications.
async fn statement_bytes(d: &Daemon) -> u64 {
    d.context()
        .store
        .call(|s| {
            s.statements()
                .unwrap()
                .iter()
                .filter(|r| r.via.is_none())
                .map(|r| r.signed.len() as u64)
                .sum()
        })
        .await
}

/// Waits for `b` to report storing `doc_id`.
async fn stored(notices: &mut tokio::sync::broadcast::Receiver<SyncNotice>, doc_id: &str) {
    loop {
        match notices.recv().await {
            Ok(SyncNotice::ReplicaChanged { doc_id: d, .. }) if d == doc_id => return,
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(e) => panic!("notices ended: {e}"),
        }
    }
}

/// The bytes of the change `small_edit` makes to `doc_id` at `round`, plus
/// the statement that will come with it (measured on a copy).
async fn change_cost(a: &Daemon, doc_id: &str, round: i64) -> u64 {
    let id = doc_id.to_string();
    a.context()
        .store
        .call(move |s| {
            let (_, mut doc) = s.load_document(&id).unwrap().unwrap();
            let heads = doc.get_heads();
            small_edit(&mut doc, round);
            let change: u64 = doc
                .get_changes(&heads)
                .iter()
                .map(|c| c.raw_bytes().len() as u64)
                .sum();
            change + s.statement(&id).unwrap().unwrap().signed.len() as u64
        })
        .await
}

/// The labnet side at `n` publications; also returns the documents when
/// `keep_docs`, for the samod side.
async fn run(n: usize, keep_docs: bool) -> (Figures, Option<Vec<AutoCommit>>) {
    println!("\n== N = {n} publications");
    let tmp = tempfile::tempdir().unwrap();
    let (a_dir, b_dir) = init_pair(tmp.path());
    let a = start(&a_dir).await;
    let docs = build_docs(a.node_id(), n);
    let saved: u64 = docs.iter().map(|d| d.clone().save().len() as u64).sum();
    println!(
        "sum of the documents' saved size: {:.2} MB ({} B per doc)",
        saved as f64 / 1e6,
        saved / n as u64
    );

    let memory = memory_sync(&docs);
    println!(
        "in-memory Automerge sync: {:>8.2} s  {:>8.2} MB  {:>7} messages  bytes/saved {:.2}",
        memory.time.as_secs_f64(),
        memory.bytes as f64 / 1e6,
        memory.messages,
        memory.bytes as f64 / saved as f64
    );

    let kept = keep_docs.then(|| docs.clone());
    let ids = doc_ids(&a, n);
    store_docs(&a, ids.clone(), docs).await;
    let statements = statement_bytes(&a).await;
    println!(
        "statements: {:.2} MB ({} B each)",
        statements as f64 / 1e6,
        statements / n as u64
    );
    let b = start(&b_dir).await;
    let contact = |d: &Daemon| format!("labnet://{}@{}", d.node_id(), d.listen_addr());
    let started = Instant::now();
    // Each adds the other by contact, so both approve and dial.
    for (from, to) in [(&a, &b), (&b, &a)] {
        let request = AdminRequest::PeersAdd {
            contact: contact(to),
            role: None,
        };
        admin(from, request).await;
    }
    assert!(
        wait_synced(&a, &b, Duration::from_secs(600)).await,
        "initial sync did not finish"
    );
    let quic_time = started.elapsed();
    let quic_bytes = wire(&a, &b);
    let base = saved + statements;
    println!(
        "initial sync over QUIC:   {:>8.2} s  {:>8.2} MB   bytes / (saved + statements) {:.2}",
        quic_time.as_secs_f64(),
        quic_bytes as f64 / 1e6,
        quic_bytes as f64 / base as f64
    );
    println!(
        "  ratio QUIC / in-memory: time {:.2}x, bytes {:.2}x",
        quic_time.as_secs_f64() / memory.time.as_secs_f64(),
        quic_bytes as f64 / memory.bytes as f64
    );
    let disk = a.context().store.call(|s| s.size_bytes()).await
        + b.context().store.call(|s| s.size_bytes()).await;
    println!(
        "memory: process resident {:.1} MB for two nodes holding {n} publications each; stores on disk {:.1} MB; ratio {:.1}x",
        rss() as f64 / 1e6,
        disk as f64 / 1e6,
        rss() as f64 / disk as f64
    );

    // One small change on a live connection, then the latency of 50 more.
    let mut notices = b.context().sync.notices.subscribe();
    let one = ids[n / 2].clone();
    let cost = change_cost(&a, &one, 100).await;
    let before = wire(&a, &b);
    let started = Instant::now();
    edit(&a, vec![one.clone()], 100).await;
    stored(&mut notices, &one).await;
    let one_time = started.elapsed();
    let one_bytes = wire(&a, &b) - before;
    println!(
        "one small change, live:   {:>8.2} ms  {:>6} B on the wire for {cost} B of change + statement ({:.2}x)",
        one_time.as_secs_f64() * 1e3,
        one_bytes,
        one_bytes as f64 / cost as f64
    );
    let mut latencies = Vec::new();
    for round in 0..50 {
        let id = ids[(round * 37 + 11) % n].clone();
        let started = Instant::now();
        edit(&a, vec![id.clone()], 200 + round as i64).await;
        stored(&mut notices, &id).await;
        latencies.push(started.elapsed());
    }
    latencies.sort();
    println!(
        "commit-to-remote-apply latency over 50 changes: median {:.2} ms, p99 {:.2} ms",
        latencies[latencies.len() / 2].as_secs_f64() * 1e3,
        latencies[latencies.len() * 99 / 100].as_secs_f64() * 1e3
    );

    // Incremental: 1% change while connected.
    let sent_before = a
        .context()
        .store
        .call(|s| s.disclosures(None, None).unwrap().len())
        .await;
    let before = wire(&a, &b);
    let changed: Vec<String> = ids.iter().step_by(100).cloned().collect();
    let started = Instant::now();
    edit(&a, changed.clone(), 1).await;
    assert!(wait_synced(&a, &b, Duration::from_secs(300)).await);
    let inc_time = started.elapsed();
    let inc_bytes = wire(&a, &b) - before;
    let sent_docs = a
        .context()
        .store
        .call(move |s| s.disclosures(None, None).unwrap().len() - sent_before)
        .await;
    println!(
        "incremental, {} changed (1%): {:>6.3} s  {:>8.1} KB  versions sent {} (unchanged publications sent nothing: {})",
        changed.len(),
        inc_time.as_secs_f64(),
        inc_bytes as f64 / 1e3,
        sent_docs,
        sent_docs == changed.len()
    );

    // Catch-up after a partition: B stops, 10 publications change, B restarts.
    b.shutdown().await;
    let ten: Vec<String> = ids
        .iter()
        .skip(7)
        .step_by((n / 10).max(1))
        .take(10)
        .cloned()
        .collect();
    let mut change_bytes = 0;
    for id in &ten {
        change_bytes += change_cost(&a, id, 2).await;
    }
    edit(&a, ten.clone(), 2).await;
    let b = start(&b_dir).await;
    // Timed until the peer reports the ten stored (its sync notices), then
    // checked in full, untimed: the full check reads every row.
    let mut notices = b.context().sync.notices.subscribe();
    let started = Instant::now();
    let mut missing: std::collections::BTreeSet<String> = ten.iter().cloned().collect();
    while !missing.is_empty() {
        match notices.recv().await {
            Ok(SyncNotice::ReplicaChanged { doc_id, .. }) => {
                missing.remove(&doc_id);
            }
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(e) => panic!("notices ended: {e}"),
        }
    }
    let catch_time = started.elapsed();
    assert!(wait_synced(&a, &b, Duration::from_secs(300)).await);
    let catch_bytes = wire(&a, &b);
    println!(
        "catch-up after partition, 10 changed: {:>6.3} s  {:>8.1} KB on the new connection (changes + statements: {:.1} KB; target 2x that + 8 KB = {:.1} KB)",
        catch_time.as_secs_f64(),
        catch_bytes as f64 / 1e3,
        change_bytes as f64 / 1e3,
        (2 * change_bytes + 8192) as f64 / 1e3
    );
    a.shutdown().await;
    b.shutdown().await;
    let figures = Figures {
        initial: quic_time,
        initial_bytes: quic_bytes,
        live: one_time,
        live_bytes: one_bytes,
        catch_up: catch_time,
        catch_up_bytes: catch_bytes,
        catch_up_quiet_bytes: None,
    };
    (figures, kept)
}

/// Round-trip time the WAN relay adds: 20 ms each way.
const WAN_ONE_WAY: Duration = Duration::from_millis(20);

/// Share of packets the WAN relay drops, each way.
const WAN_LOSS: f64 = 0.01;

/// A UDP relay between a dialing node and `target`: what the dialer sends to
/// the returned address reaches `target` 20 ms later, and the answers come
/// back the same way; 1 % of the packets are lost in each direction. This
/// kernel has no netem, so the bench plays the WAN itself.
async fn wan_relay(target: std::net::SocketAddr) -> std::net::SocketAddr {
    use std::sync::Arc;
    use tokio::net::UdpSocket;
    let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let back = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let addr = front.local_addr().unwrap();
    let dialer = Arc::new(std::sync::Mutex::new(None::<std::net::SocketAddr>));
    let seen = dialer.clone();
    relay_one_way(front.clone(), back.clone(), move |from| {
        *seen.lock().unwrap() = Some(from);
        Some(target)
    });
    relay_one_way(back, front, move |_| *dialer.lock().unwrap());
    addr
}

/// Relays what `from` receives out of `to`, to the address `dest` gives for
/// its sender (none: dropped), [`WAN_ONE_WAY`] later; [`WAN_LOSS`] of the
/// packets are lost.
fn relay_one_way(
    from: std::sync::Arc<tokio::net::UdpSocket>,
    to: std::sync::Arc<tokio::net::UdpSocket>,
    dest: impl Fn(std::net::SocketAddr) -> Option<std::net::SocketAddr> + Send + 'static,
) {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        loop {
            let Ok((n, sender)) = from.recv_from(&mut buf).await else {
                return;
            };
            let Some(dest) = dest(sender) else {
                continue;
            };
            if rand::random::<f64>() < WAN_LOSS {
                continue;
            }
            let packet = buf[..n].to_vec();
            let to = to.clone();
            tokio::spawn(async move {
                tokio::time::sleep(WAN_ONE_WAY).await;
                let _ = to.send_to(&packet, dest).await;
            });
        }
    });
}

/// Initial sync of `n` publications across the WAN relay, against the
/// loopback figure of the same run plus 20 round trips.
async fn run_wan(n: usize, loopback: Duration) {
    let tmp = tempfile::tempdir().unwrap();
    let (a_dir, b_dir) = init_pair(tmp.path());
    let a = start(&a_dir).await;
    let docs = build_docs(a.node_id(), n);
    store_docs(&a, doc_ids(&a, n), docs).await;
    let b = start(&b_dir).await;
    let relay = wan_relay(a.listen_addr()).await;
    // A approves B without an address (so it never dials B directly); B
    // dials A through the relay.
    admin(
        &a,
        AdminRequest::PeersApprove {
            node_id: b.node_id().to_string(),
            role: Some(Role::Partner),
        },
    )
    .await;
    let started = Instant::now();
    admin(
        &b,
        AdminRequest::PeersAdd {
            contact: format!("labnet://{}@{relay}", a.node_id()),
            role: None,
        },
    )
    .await;
    assert!(
        wait_synced(&a, &b, Duration::from_secs(900)).await,
        "WAN initial sync did not finish"
    );
    let wan_time = started.elapsed();
    let rtt = 2 * WAN_ONE_WAY;
    let budget = loopback + 20 * rtt;
    println!(
        "initial sync across the WAN relay (40 ms RTT, 1 % loss each way): {:.2} s, {:.2} MB; target loopback {:.2} s + 20 RTT = {:.2} s ({})",
        wan_time.as_secs_f64(),
        wire(&b, &a) as f64 / 1e6,
        loopback.as_secs_f64(),
        budget.as_secs_f64(),
        if wan_time <= budget { "met" } else { "missed" }
    );
    a.shutdown().await;
    b.shutdown().await;
}

/// The largest N samod runs at: its initial sync grows with the square of
/// the number of documents (DESIGN.md's measurements), so 10,000 would take
/// the better part of an hour.
const SAMOD_N_MAX: usize = 1_000;

/// One row of [`compare`]: what it shows, and how to read it off a run's
/// figures.
type FigureRow = (&'static str, fn(&Figures) -> f64);

/// samod's figures next to labnet's, with the ratios (samod / labnet: above
/// 1 means labnet is faster or smaller).
fn compare(n: usize, labnet: &Figures, samod: &Figures) {
    let ratio = |s: f64, l: f64| if l > 0.0 { s / l } else { f64::NAN };
    println!("samod 0.16 vs labnet, same {n} documents (samod over TCP on 127.0.0.1, filesystem storage; labnet over QUIC, SQLite):");
    let rows: [FigureRow; 6] = [
        ("initial sync, time (s)", |f| f.initial.as_secs_f64()),
        ("initial sync, bytes (MB)", |f| f.initial_bytes as f64 / 1e6),
        ("one live change, time (ms)", |f| f.live.as_secs_f64() * 1e3),
        ("one live change, bytes (KB)", |f| f.live_bytes as f64 / 1e3),
        ("reconnect, 10 changed, time (s)", |f| {
            f.catch_up.as_secs_f64()
        }),
        ("reconnect, 10 changed, bytes (KB)", |f| {
            f.catch_up_bytes as f64 / 1e3
        }),
    ];
    for (what, figure) in rows {
        let (s, l) = (figure(samod), figure(labnet));
        println!(
            "  {what:<36} samod {s:>10.3}  labnet {l:>10.3}  samod/labnet {:>7.2}x",
            ratio(s, l)
        );
    }
    if let Some(quiet) = samod.catch_up_quiet_bytes {
        println!(
            "  {:<36} samod {:>10.3}  (samod syncs every open document on reconnect)  samod/labnet {:>7.2}x",
            "reconnect, bytes until quiet (KB)",
            quiet as f64 / 1e3,
            ratio(quiet as f64, labnet.catch_up_bytes as f64)
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let sizes: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if let Some(at) = args.iter().position(|a| a == memory::HUB_ARG) {
        let dir = std::path::PathBuf::from(&args[at + 1]);
        runtime.block_on(memory::hub(&dir));
        return;
    }
    if args.iter().any(|a| a == "memory") {
        let n = sizes.first().copied().unwrap_or(10_000);
        runtime.block_on(memory::run(n));
        return;
    }
    let sizes = if sizes.is_empty() {
        vec![1_000, 10_000]
    } else {
        sizes
    };
    runtime.block_on(async {
        for n in sizes {
            let with_samod = n <= SAMOD_N_MAX;
            let (labnet, docs) = run(n, with_samod).await;
            run_wan(n, labnet.initial).await;
            if let Some(docs) = docs {
                let samod = samod::run(&docs).await;
                compare(n, &labnet, &samod);
            }
        }
    });
}
