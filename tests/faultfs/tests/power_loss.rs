//! Acknowledged writes survive a power cut at any I/O operation (issue 13).
//!
//! The store runs a fixed workload of its public writes on the
//! fault-injecting VFS ([`FaultFs`]), which keeps every write in a volatile
//! cache until `xSync` and, at a cut point a seeded RNG picks among all the
//! workload's I/O operations, drops everything unsynced in every file and
//! fails all further I/O. Then the store is reopened the normal way, on the
//! real files (which hold only what was synced), and must pass SQLite's
//! integrity check and hold exactly what a plain run of the workload held
//! after the last acknowledged operation, or after the one that was in
//! flight at the cut (its commit may have reached the disk before the error
//! did).
//!
//! The same harness with `xSync` turned into a no-op (a disk that lies, or
//! `synchronous = OFF`, which never syncs) must find a lost acknowledged
//! write: otherwise the first test would pass whatever the store did.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use labnet_faultfs::{fingerprint, scratch_dir, FaultFs, Runner, SyncMode, Workload};
use labnet_node::identity::Identity;
use labnet_node::store::{Store, DB_FILE};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Cut points tried, one per seed.
const SEEDS: u64 = 200;
/// Operations in the workload: enough that one private document crosses the
/// compaction threshold and the WAL is checkpointed and restarted several
/// times, few enough for 200 seeds in a debug build.
const WORKLOAD_LEN: usize = 160;
/// The workload's own seed (the cut points have theirs).
const WORKLOAD_SEED: u64 = 13;

/// What a plain run of the workload holds after each number of operations:
/// `expected[k]` after the first `k`.
fn expected_states(workload: &Workload, identity: &Arc<Identity>) -> Vec<Vec<String>> {
    let dir = scratch_dir().unwrap();
    let path = dir.path().to_path_buf();
    let mut runner = Runner::start(identity.clone(), Box::new(move || Store::open(&path))).unwrap();
    let me = identity.node_id();
    let mut states = vec![fingerprint(runner.store().unwrap(), me).unwrap()];
    for op in &workload.ops {
        runner.apply(op).unwrap();
        states.push(fingerprint(runner.store().unwrap(), me).unwrap());
    }
    states
}

/// How one run under the fault-injecting VFS ended.
struct Cut {
    /// Operations the store acknowledged before the cut.
    acked: usize,
    /// Whether the power was cut at all (a cut point past the workload's
    /// last I/O lets it finish and close).
    cut: bool,
}

/// Runs the workload on `fs` in `dir` until the power is cut after
/// `cut_after` I/O operations, then closes the store.
fn run_until_cut(
    fs: &'static FaultFs,
    dir: &Path,
    workload: &Workload,
    identity: &Arc<Identity>,
    mode: SyncMode,
    cut_after: u64,
) -> Cut {
    fs.arm(mode, Some(cut_after));
    let path = dir.join(DB_FILE);
    let open = Box::new(move || Store::open_with_vfs(&path, fs.name()));
    let mut acked = 0;
    match Runner::start(identity.clone(), open) {
        Ok(mut runner) => {
            for op in &workload.ops {
                match runner.apply(op) {
                    Ok(()) => acked += 1,
                    Err(e) => {
                        assert!(
                            fs.is_cut(),
                            "operation {acked} ({op:?}) failed with the power on: {e}"
                        );
                        break;
                    }
                }
            }
            runner.close();
        }
        Err(e) => assert!(fs.is_cut(), "opening failed with the power on: {e}"),
    }
    let cut = fs.is_cut();
    // The power is off (or the run is over): the next open is a reboot's,
    // with no trace of this one in the VFS.
    fs.arm(SyncMode::Honest, None);
    Cut { acked, cut }
}

/// Reopens the store the normal way, after the reboot, and says what is
/// wrong with it, if anything. Shared memory does not survive a power cut;
/// SQLite rebuilds it from the WAL.
fn check_after_cut(
    dir: &Path,
    identity: &Arc<Identity>,
    expected: &[Vec<String>],
    acked: usize,
) -> Result<(), String> {
    let shm = dir.join(format!("{DB_FILE}-shm"));
    if shm.exists() {
        std::fs::remove_file(&shm).map_err(|e| format!("removing -shm: {e}"))?;
    }
    let store = Store::open(dir).map_err(|e| format!("reopening: {e}"))?;
    store
        .integrity_check()
        .map_err(|e| format!("integrity: {e}"))?;
    let found = fingerprint(&store, identity.node_id()).map_err(|e| format!("reading: {e}"))?;
    let acknowledged = &expected[acked];
    if &found == acknowledged || expected.get(acked + 1) == Some(&found) {
        return Ok(());
    }
    let lost: Vec<&String> = acknowledged.iter().filter(|l| !found.contains(l)).collect();
    let extra: Vec<&String> = found.iter().filter(|l| !acknowledged.contains(l)).collect();
    Err(format!(
        "after {acked} acknowledged operations the store holds something else:\n  missing {lost:#?}\n  unexpected {extra:#?}"
    ))
}

/// I/O operations the whole workload does, closing included.
fn total_io(fs: &'static FaultFs, workload: &Workload, identity: &Arc<Identity>) -> u64 {
    let dir = scratch_dir().unwrap();
    fs.arm(SyncMode::Honest, None);
    let path = dir.path().join(DB_FILE);
    let mut runner = Runner::start(
        identity.clone(),
        Box::new(move || Store::open_with_vfs(&path, fs.name())),
    )
    .unwrap();
    for op in &workload.ops {
        runner.apply(op).unwrap();
    }
    runner.close();
    fs.ops()
}

/// A test's fault-injecting VFS, its workload, and what plain runs of it do.
struct Harness {
    fs: &'static FaultFs,
    identity: Arc<Identity>,
    workload: Workload,
    /// What a plain run holds after each number of operations.
    expected: Vec<Vec<String>>,
    /// I/O operations the whole workload does, closing included.
    total: u64,
}

impl Harness {
    /// Registers the VFS as `vfs_name` and runs the workload plainly.
    fn new(vfs_name: &str) -> Harness {
        let fs = FaultFs::register(vfs_name).unwrap();
        let identity = Arc::new(Identity::generate().unwrap());
        let workload = Workload::generate(WORKLOAD_SEED, WORKLOAD_LEN);
        let expected = expected_states(&workload, &identity);
        let total = total_io(fs, &workload, &identity);
        Harness {
            fs,
            identity,
            workload,
            expected,
            total,
        }
    }

    /// Runs the workload in a fresh directory with `mode` until the power is
    /// cut after `cut_after` I/O operations, then reopens it after the
    /// reboot: how the run ended, and what is wrong with the store, if
    /// anything.
    fn cut(&self, mode: SyncMode, cut_after: u64) -> (Cut, Result<(), String>) {
        let dir = scratch_dir().unwrap();
        let (fs, identity) = (self.fs, &self.identity);
        let run = run_until_cut(fs, dir.path(), &self.workload, identity, mode, cut_after);
        let checked = check_after_cut(dir.path(), identity, &self.expected, run.acked);
        (run, checked)
    }
}

#[test]
fn acknowledged_writes_survive_a_power_cut_at_any_io_operation() {
    let started = Instant::now();
    let harness = Harness::new("labnet-faultfs-power-loss");
    let total = harness.total;
    assert!(
        total > 1_000,
        "the workload did only {total} I/O operations"
    );

    let mut rng = StdRng::seed_from_u64(0x13);
    let mut cut_points = std::collections::BTreeSet::new();
    let mut acked_counts = std::collections::BTreeSet::new();
    let mut finished = 0;
    let mut failures = Vec::new();
    for seed in 0..SEEDS {
        // Past the end now and then, so the clean close is cut too, or not at all.
        let cut_after = rng.gen_range(0..total + 20);
        cut_points.insert(cut_after);
        let (run, checked) = harness.cut(SyncMode::Honest, cut_after);
        acked_counts.insert(run.acked);
        if !run.cut {
            finished += 1;
        }
        if let Err(why) = checked {
            failures.push(format!(
                "seed {seed}, cut after {cut_after} I/O operations: {why}"
            ));
        }
    }
    eprintln!(
        "power loss: {SEEDS} seeds, {} distinct cut points in {total} I/O operations, \
         {} distinct acknowledged counts, {finished} runs finished uncut, {:.1?}",
        cut_points.len(),
        acked_counts.len(),
        started.elapsed()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The cut points must spread over the workload, or the test proves little.
    assert!(
        acked_counts.len() > 50,
        "cuts landed at only {} distinct points of the workload",
        acked_counts.len()
    );
}

#[test]
fn the_checker_catches_a_store_that_does_not_sync() {
    let harness = Harness::new("labnet-faultfs-no-sync");
    let total = harness.total;

    let mut rng = StdRng::seed_from_u64(0x13);
    let mut caught = 0;
    let mut runs = 0;
    for _ in 0..20 {
        let cut_after = rng.gen_range(total / 4..total);
        let (run, checked) = harness.cut(SyncMode::Ignored, cut_after);
        assert!(run.cut, "cut after {cut_after} of {total} did not cut");
        assert!(run.acked > 0, "nothing was acknowledged before the cut");
        runs += 1;
        if checked.is_err() {
            caught += 1;
        }
    }
    // Nothing was ever synced, so every run lost what it acknowledged.
    assert_eq!(
        caught,
        runs,
        "the checker missed lost writes in {} of {runs} runs",
        runs - caught
    );
}
