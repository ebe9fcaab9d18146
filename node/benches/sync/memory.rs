//! Resident memory of one node holding N publications, in a process of its own.
//!
//! The in-process figure of the main bench counts both nodes, the bench's own
//! documents and what the allocator kept of the in-memory run. Here the bench
//! fills a node's store, stops it, and starts it again as a child process (this
//! same binary, with [`HUB_ARG`]), which does nothing but run that node and
//! answer "report" on its standard input with its VmRSS, VmHWM and store size.
//! The peers run in the parent and sync everything from it: first one, then
//! [`PEERS_MAX`].

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use labnet_config::Role;
use labnet_node::api::AdminRequest;
use labnet_node::daemon::Daemon;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::{admin, build_docs, doc_ids, replicas, start, store_docs};

/// The argument that makes this bench binary the measured node: `HUB_ARG DIR`.
pub(super) const HUB_ARG: &str = "--memory-hub";

/// Peers in the second measurement: a partner city in the full mesh of the
/// twelve has eleven partners and a subscriber, twelve connections.
const PEERS_MAX: usize = 12;

/// How long the peers get to sync everything: twelve initial syncs of 10,000
/// publications from one node on two shared cores.
const SYNC_TIMEOUT: Duration = Duration::from_secs(1800);

/// A figure of `/proc/self/status` given in kB, in bytes.
fn status_bytes(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                let value = line.strip_prefix(field)?.strip_prefix(':')?;
                value.trim().strip_suffix("kB")?.trim().parse::<u64>().ok()
            })
        })
        .map(|kib| kib * 1024)
        .unwrap_or(0)
}

/// The child's side: runs the node in `dir` until its standard input ends.
pub(super) async fn hub(dir: &Path) {
    let d = start(dir).await;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    println!("ready");
    while let Ok(Some(line)) = lines.next_line().await {
        if line.trim() == "report" {
            let disk = d.context().store.call(|s| s.size_bytes()).await;
            println!(
                "report {} {} {disk}",
                status_bytes("VmRSS"),
                status_bytes("VmHWM")
            );
        }
    }
    d.shutdown().await;
}

/// A data directory under `root` for `name`, listening on a free port.
fn init(root: &Path, name: &str) -> PathBuf {
    let dir = root.join(name);
    super::init_node(&dir, name);
    dir
}

/// Waits until each of `peers` holds `n` replicas.
async fn all_hold(peers: &[Daemon], n: i64) {
    let deadline = Instant::now() + SYNC_TIMEOUT;
    for p in peers {
        loop {
            if replicas(p).await >= n {
                break;
            }
            assert!(Instant::now() < deadline, "the peers did not sync in time");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Asks the child for its figures and prints them, for `peers` peers.
async fn report(
    stdin: &mut tokio::process::ChildStdin,
    stdout: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    peers: usize,
) {
    stdin.write_all(b"report\n").await.unwrap();
    let line = stdout.next_line().await.unwrap().unwrap();
    let figures: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap())
        .collect();
    let [rss, hwm, disk] = figures[..] else {
        panic!("unexpected report {line:?}");
    };
    println!(
        "{peers:>2} peers: resident {:.1} MB (peak {:.1} MB), store on disk {:.1} MB: resident / disk {:.1}x (target ≤ 8x)",
        rss as f64 / 1e6,
        hwm as f64 / 1e6,
        disk as f64 / 1e6,
        rss as f64 / disk as f64
    );
}

/// Measures a node holding `n` publications alone, then with 1 and
/// [`PEERS_MAX`] peers synced from it.
pub(super) async fn run(n: usize) {
    println!("\n== memory of one node holding {n} publications, in its own process");
    let tmp = tempfile::tempdir().unwrap();
    let hub_dir = init(tmp.path(), "hub");
    let peer_dirs: Vec<PathBuf> = (0..PEERS_MAX)
        .map(|i| init(tmp.path(), &format!("peer{i}")))
        .collect();
    let hub = start(&hub_dir).await;
    let docs = build_docs(hub.node_id(), n);
    store_docs(&hub, doc_ids(&hub, n), docs).await;
    for dir in &peer_dirs {
        let p = start(dir).await;
        let request = AdminRequest::PeersApprove {
            node_id: p.node_id().to_string(),
            role: Some(Role::Partner),
        };
        admin(&hub, request).await;
        p.shutdown().await;
    }
    let contact = format!("labnet://{}@{}", hub.node_id(), hub.listen_addr());
    hub.shutdown().await;

    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .arg(HUB_ARG)
        .arg(&hub_dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(stdout.next_line().await.unwrap().as_deref(), Some("ready"));
    report(&mut stdin, &mut stdout, 0).await;
    let mut peers: Vec<Daemon> = Vec::new();
    for k in [1, PEERS_MAX] {
        let started = Instant::now();
        while peers.len() < k {
            let p = start(&peer_dirs[peers.len()]).await;
            let request = AdminRequest::PeersAdd {
                contact: contact.clone(),
                role: None,
            };
            admin(&p, request).await;
            peers.push(p);
        }
        all_hold(&peers, n as i64).await;
        println!(
            "   ({k} peers hold all {n}; {:.1} s after they dialed)",
            started.elapsed().as_secs_f64()
        );
        report(&mut stdin, &mut stdout, k).await;
    }
    for p in peers {
        p.shutdown().await;
    }
    drop(stdin);
    child.wait().await.unwrap();
}
