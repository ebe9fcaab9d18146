//! The demo's kept data directories are a network that comes back: nodes
//! restarted from `labnet demo --keep DIR` listen where their peers last saw
//! them, find each other again, and no approved peer lingers as pending.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use labnet_tests::{json_of, labnet_ok, RunningNode};

/// How long the restarted nodes get to find each other again.
const RECONNECT_WAIT: Duration = Duration::from_secs(60);

fn all_peers_connected(dir: &Path) -> bool {
    let s = json_of(dir, &["status", "--json"]);
    let approved = s["peers"]["approved"].as_u64().unwrap_or(0);
    approved > 0 && s["peers"]["connected"].as_u64() == Some(approved)
}

#[test]
fn nodes_restarted_from_kept_directories_reconnect_and_nothing_approved_stays_pending() {
    let tmp = tempfile::tempdir().unwrap();
    let keep = tmp.path().join("demo");
    let keep_arg = keep.to_str().expect("a UTF-8 temporary path");
    labnet_ok(tmp.path(), &["demo", "--cities", "3", "--keep", keep_arg]);
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&keep)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("labnet.db").exists())
        .collect();
    dirs.sort();
    assert_eq!(dirs.len(), 4, "three cities and the subscriber: {dirs:?}");

    let nodes: Vec<RunningNode> = dirs
        .iter()
        .map(|d| RunningNode::start(d, &[], &[]))
        .collect();
    let deadline = Instant::now() + RECONNECT_WAIT;
    let mut waiting: Vec<&PathBuf> = dirs.iter().collect();
    while !waiting.is_empty() {
        assert!(
            Instant::now() < deadline,
            "not reconnected after a restart: {waiting:?}"
        );
        waiting.retain(|d| !all_peers_connected(d));
        std::thread::sleep(Duration::from_millis(200));
    }
    for dir in &dirs {
        let pending = json_of(dir, &["peers", "pending", "--json"]);
        assert_eq!(
            pending.as_array().map(Vec::len),
            Some(0),
            "{}: an approved peer listed as pending: {pending}",
            dir.display()
        );
    }
    for node in nodes {
        let (status, err) = node.stop_with(15);
        assert!(status.success(), "{err}");
    }
}
