//! Sync benchmark: labnet over QUIC against plain in-memory Automerge sync.
//!
//! `cargo bench -p labnet-node --bench sync [-- N ...]` (default N = 1000 10000)
//! builds N publication documents from the partner cities' 25 practices (cycled,
//! each made distinct), then measures in one run, side by side:
//!
//! 1. in-memory Automerge sync of the same documents to an empty peer (one
//!    `sync::State` pair per document, messages passed in memory): the floor;
//! 2. initial sync to a new peer between two real nodes (QUIC on 127.0.0.1,
//!    SQLite stores in temporary directories): time, and bytes on the wire from
//!    quinn's connection statistics;
//! 3. incremental sync after 1% of the publications change, while connected;
//! 4. catch-up after a partition: the peer is stopped, 10 publications change,
//!    the peer restarts and catches up.
//!
//! Figures are printed as a table; BENCHMARKS.md records them with the machine.

#![allow(clippy::unwrap_used)] // a benchmark that fails should fail loudly
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use automerge::sync::SyncDoc;
use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjType, ROOT};
use labnet_config::Role;
use labnet_node::api::AdminRequest;
use labnet_node::daemon::{Daemon, StartOptions};
use labnet_node::data_dir::DataDir;
use labnet_node::transport::TransportConfig;
use labnet_node::trust::Scope;
use labnet_protocol::sync::publication_id;

const PRACTICES_JSON: &str = include_str!("../data/practices.json");

/// Puts a JSON value into an Automerge map under `key`.
fn put_json(doc: &mut AutoCommit, obj: &automerge::ObjId, key: &str, value: &serde_json::Value) {
    match value {
        serde_json::Value::Null => {}
        serde_json::Value::Bool(b) => doc.put(obj, key, *b).unwrap(),
        serde_json::Value::Number(n) => doc.put(obj, key, n.as_f64().unwrap_or(0.0)).unwrap(),
        serde_json::Value::String(s) => doc.put(obj, key, s.as_str()).unwrap(),
        serde_json::Value::Array(items) => {
            let list = doc.put_object(obj, key, ObjType::List).unwrap();
            for (i, item) in items.iter().enumerate() {
                match item {
                    serde_json::Value::Object(map) => {
                        let m = doc.insert_object(&list, i, ObjType::Map).unwrap();
                        for (k, v) in map {
                            put_json(doc, &m, k, v);
                        }
                    }
                    serde_json::Value::String(s) => doc.insert(&list, i, s.as_str()).unwrap(),
                    other => doc.insert(&list, i, other.to_string()).unwrap(),
                }
            }
        }
        serde_json::Value::Object(map) => {
            let m = doc.put_object(obj, key, ObjType::Map).unwrap();
            for (k, v) in map {
                put_json(doc, &m, k, v);
            }
        }
    }
}

/// N publication-shaped documents built from the partner practices, without
/// their private fields, each with its own serial so no two are equal.
fn build_docs(n: usize) -> Vec<AutoCommit> {
    let parsed: serde_json::Value = serde_json::from_str(PRACTICES_JSON).unwrap();
    let practices = parsed["practices"].as_array().unwrap();
    (0..n)
        .map(|i| {
            let p = &practices[i % practices.len()];
            let mut doc = AutoCommit::new();
            for (k, v) in p.as_object().unwrap() {
                if k == "contacts" || k == "internal_notes" {
                    continue;
                }
                put_json(&mut doc, &ROOT, k, v);
            }
            doc.put(ROOT, "serial", i as i64).unwrap();
            doc
        })
        .collect()
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
        let count = b
            .context()
            .store
            .call(|s| s.document_counts().unwrap().replica)
            .await;
        if count < expected {
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
                    doc.put(ROOT, "revision", round).unwrap();
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

async fn run(n: usize) {
    println!("\n== N = {n} publications (partner practices, cycled)");
    let docs = build_docs(n);
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

    let tmp = tempfile::tempdir().unwrap();
    let (a_dir, b_dir) = (tmp.path().join("a"), tmp.path().join("b"));
    for (dir, name) in [(&a_dir, "origin"), (&b_dir, "peer")] {
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        DataDir::new(dir)
            .init(name, Role::Partner, &format!("127.0.0.1:{port}"), &[])
            .unwrap();
    }
    let a = start(&a_dir).await;
    let ids: Vec<String> = (0..n)
        .map(|i| {
            publication_id(a.node_id(), &format!("p{i}"))
                .unwrap()
                .as_str()
                .to_string()
        })
        .collect();
    {
        let mut docs = docs;
        let ids = ids.clone();
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
    println!(
        "initial sync over QUIC:   {:>8.2} s  {:>8.2} MB                      bytes/saved {:.2}",
        quic_time.as_secs_f64(),
        quic_bytes as f64 / 1e6,
        quic_bytes as f64 / saved as f64
    );
    println!(
        "  ratio QUIC / in-memory: time {:.2}x, bytes {:.2}x",
        quic_time.as_secs_f64() / memory.time.as_secs_f64(),
        quic_bytes as f64 / memory.bytes as f64
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
    tokio::time::sleep(Duration::from_millis(200)).await;
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
    let change_bytes: u64 = {
        let ten = ten.clone();
        a.context()
            .store
            .call(move |s| {
                ten.iter()
                    .map(|id| {
                        let (_, mut doc) = s.load_document(id).unwrap().unwrap();
                        let heads = doc.get_heads();
                        doc.put(ROOT, "revision", 2).unwrap();
                        doc.save_after(&heads).len() as u64
                    })
                    .sum()
            })
            .await
    };
    edit(&a, ten.clone(), 2).await;
    let b = start(&b_dir).await;
    let started = Instant::now();
    assert!(wait_synced(&a, &b, Duration::from_secs(300)).await);
    let catch_time = started.elapsed();
    let catch_bytes = wire(&a, &b);
    println!(
        "catch-up after partition, 10 changed: {:>6.3} s  {:>8.1} KB on the new connection (the changes themselves: {:.1} KB)",
        catch_time.as_secs_f64(),
        catch_bytes as f64 / 1e3,
        change_bytes as f64 / 1e3
    );
    a.shutdown().await;
    b.shutdown().await;
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![1_000, 10_000]
    } else {
        sizes
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        for n in sizes {
            run(n).await;
        }
    });
}
