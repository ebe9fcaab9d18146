//! Deterministic simulation of the sync core: many sans-IO sessions, a
//! seeded scheduler, every fault a federation meets, and invariants checked
//! all along.
//!
//! Each seed builds a small federation: four to six partner cities on a
//! ring (so some partners meet only through relays), sometimes a chord, one
//! or two subscribers approved by one or two partners each, and two or
//! three origins publishing `public`, `partners` and named-scope
//! publications. Then a scheduler driven by one [`rng::Rng`] picks, action
//! by action, what happens: a session takes a step, a step's outputs are
//! persisted, time passes, a link connects, an origin's admin issues a new
//! version, an edit, a re-scope or a retraction, and faults (below). After
//! a few hundred actions the faults stop, the network heals, and it must go
//! quiet and converge.
//!
//! # Which fault is modelled where, and why
//!
//! Sessions run over one QUIC stream per connection, which is reliable and
//! ordered: a live connection never loses, duplicates or reorders a frame.
//! So the faults are placed where they really happen:
//!
//! - **Loss** kills the connection (what a lost path does to QUIC: an idle
//!   timeout or a reset). Both ends' sessions are dropped; each end whose
//!   node is up persists its last step, as the driver does before it sees
//!   the stream fail; the link reconnects later with two new sessions, which
//!   resume from the persisted resume points.
//! - **Delay and reordering across connections**: frames wait in their
//!   connection's queue until the scheduler picks that end, in any order
//!   between connections and between a node's sessions.
//! - **Interleaved steps**: like the driver, an end's step takes up to three
//!   inputs (frames, a local change, a due timer) before its outputs are
//!   drained into one batch that waits to be persisted, and its frames go
//!   out only after that. Another session of the same node may step in
//!   between and read the store as it was.
//! - **Crashes**: a node goes down with every step it has not persisted (its
//!   effects and its frames), and its connections die. Its store is exactly
//!   what it persisted; it restarts from it and reconnects later.
//! - **Partitions**: a random cut; links across it die and cannot connect
//!   until it heals.
//! - **Clock skew**: every node has its own offset (up to an hour) and rate
//!   (±2 %), so `now` differs between nodes and the stall timeout fires at
//!   different world times; time sometimes jumps past the stall timeout.
//! - **Duplicated, reordered and out-of-context frames**, which QUIC cannot
//!   produce, are fed straight to a session as probes: a frame it already
//!   took, one taken out of its queue's order, or one another node got from
//!   another peer. The session must close with a violation, ignore it, or
//!   accept only what every invariant allows (it is checked before anything
//!   else). Its outputs are then dropped, as if persisting them had failed,
//!   and the connection ends, because what the session does after such a
//!   frame is no schedule a real connection could produce.
//!
//! Narrowing a `public` publication is not issued: relays carry what was
//! public onwards and cannot learn that it no longer is (the design relays
//! only `public`, and only an origin withdraws), so no run could converge
//! on it.
//!
//! # Invariants
//!
//! See [`check`]: nothing is accepted that its origin did not issue and
//! sign, with the same heads; no scope is violated, not even by naming an
//! id; no acknowledged write is lost (resume points and forwarded
//! confirmations are backed by what the next hop holds, and origins never
//! lose what they issued); an honest peer is never closed with a violation
//! other than a stall; and after healing every session is idle and every
//! node holds exactly the latest version of what it may see, retractions
//! applied and confirmed back to their origins.
//!
//! # Running and replaying
//!
//! ```text
//! cargo test -p labnet-node --lib sync::sim                        # 500 seeds
//! LABNET_SIM_SEEDS=10000 cargo test --release -p labnet-node --lib sync::sim
//! LABNET_SIM_SEED=1234 cargo test -p labnet-node --lib sync::sim -- --nocapture
//! ```
//!
//! A failure names its seed and the command that replays it; with
//! `LABNET_SIM_SEED` the run prints every action it takes. A seed replays
//! bit for bit: the scheduler's choices, every frame's length and every
//! node's final heads (the documents' Automerge actors are fixed per node)
//! fold into a fingerprint that [`a_seed_replays_bit_for_bit`] compares
//! across two runs. (Retraction confirmations carry the wall-clock second
//! they were signed in; that changes their signature bytes, never their
//! length or what anyone does.)

mod check;
mod regressions;
mod rng;
mod world;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use world::World;

/// Seeds `cargo test` runs by default. Measured: a seed costs about 0.25 s
/// of CPU in a debug build, so 500 take about a minute on two idle cores;
/// the bugs this simulation found and the breakages tried on it showed
/// within the first hundred seeds (one seed in five to one in fifty).
const SEEDS_DEFAULT: u64 = 500;

/// Threads the seeds share out over: the cores there are, up to this (more
/// would only contend for the machine the rest of the test suite runs on).
const THREADS_MAX: usize = 4;

/// The fewest and most scheduler actions of a run's faulty phase: enough for
/// several crashes, partitions and versions; few enough that a debug run
/// takes a fraction of a second.
const ACTIONS_MIN: u64 = 200;
/// See [`ACTIONS_MIN`].
const ACTIONS_MAX: u64 = 500;

/// Versions an origin's admin may issue during one run: each costs
/// deliveries across the whole network, and a dozen already leaves most
/// publications with several versions, a retraction or a new scope.
const ISSUES_MAX: usize = 12;

/// How many inputs one step takes at most: the driver batches whatever has
/// arrived; three is enough to mix frames, local changes and timers in one
/// step without making every step a batch.
const INPUTS_PER_STEP_MAX: usize = 3;

/// Frames kept per end (and network-wide) to replay at sessions: recent
/// ones are the interesting ones, and the bound keeps memory flat.
const REPLAYABLE_MAX: usize = 64;

/// Steps a healed network may take to go quiet. A healthy run needs a few
/// hundred; hitting this means something loops.
const HEAL_STEPS_MAX: usize = 200_000;

/// What a run did, summed over seeds for the report.
#[derive(Debug, Default, Clone)]
pub(super) struct Stats {
    actions: u64,
    heal_actions: u64,
    frames_delivered: u64,
    connections: u64,
    versions_issued: u64,
    versions_stored: u64,
    tombstones_stored: u64,
    drops: u64,
    crashes: u64,
    batches_lost: u64,
    partitions: u64,
    stalls: u64,
    probes_ignored: u64,
    probes_valid_stored: u64,
    /// Probes the session closed on, by violation.
    probes_closed: BTreeMap<String, u64>,
}

impl Stats {
    fn add(&mut self, other: &Stats) {
        self.actions += other.actions;
        self.heal_actions += other.heal_actions;
        self.frames_delivered += other.frames_delivered;
        self.connections += other.connections;
        self.versions_issued += other.versions_issued;
        self.versions_stored += other.versions_stored;
        self.tombstones_stored += other.tombstones_stored;
        self.drops += other.drops;
        self.crashes += other.crashes;
        self.batches_lost += other.batches_lost;
        self.partitions += other.partitions;
        self.stalls += other.stalls;
        self.probes_ignored += other.probes_ignored;
        self.probes_valid_stored += other.probes_valid_stored;
        for (code, n) in &other.probes_closed {
            *self.probes_closed.entry(code.clone()).or_default() += n;
        }
    }
}

/// One whole run: faults, healing, and the end checks. Returns what it did
/// and its fingerprint, or the broken invariant.
fn run_seed(seed: u64, verbose: bool) -> Result<(Stats, u64), String> {
    let mut world = World::new(seed, verbose);
    world.run_faults()?;
    world.heal()?;
    world.check_end()?;
    let fingerprint = world.fingerprint();
    Ok((world.stats, fingerprint))
}

/// Runs one seed, turning a panic into a failure that names the seed too.
fn run_reported(seed: u64, verbose: bool) -> Result<(Stats, u64), String> {
    let outcome = std::panic::catch_unwind(|| run_seed(seed, verbose));
    let failure = match outcome {
        Ok(Ok(done)) => return Ok(done),
        Ok(Err(broken)) => broken,
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            format!("panicked: {what}")
        }
    };
    Err(format!(
        "simulation seed {seed} failed: {failure}\n  replay: LABNET_SIM_SEED={seed} cargo test -p labnet-node --lib sync::sim -- --nocapture"
    ))
}

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    match value.trim().parse() {
        Ok(n) => Some(n),
        Err(_) => panic!("{name}={value:?} is not a number"),
    }
}

/// The seeds: `LABNET_SIM_SEED` alone (verbose), or `LABNET_SIM_SEEDS`
/// (default [`SEEDS_DEFAULT`]) from `LABNET_SIM_FIRST_SEED` (default 0).
/// Every seed runs even after a failure, so one run lists every failing seed.
#[test]
fn seeded_runs_keep_every_invariant() {
    if let Some(seed) = env_u64("LABNET_SIM_SEED") {
        match run_reported(seed, true) {
            Ok((stats, fingerprint)) => {
                eprintln!("seed {seed} passed, fingerprint {fingerprint:016x}: {stats:#?}")
            }
            Err(failure) => panic!("{failure}"),
        }
        return;
    }
    let count = env_u64("LABNET_SIM_SEEDS").unwrap_or(SEEDS_DEFAULT);
    let first = env_u64("LABNET_SIM_FIRST_SEED").unwrap_or(0);
    let started = Instant::now();
    // Seeds are independent, so they share out over the cores; each seed's
    // run is the same whichever thread takes it.
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(THREADS_MAX);
    let next = AtomicU64::new(first);
    let results = Mutex::new((Stats::default(), Vec::new()));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= first + count {
                    return;
                }
                let outcome = run_reported(seed, false);
                let mut results = results.lock().unwrap_or_else(|e| e.into_inner());
                match outcome {
                    Ok((stats, _)) => results.0.add(&stats),
                    Err(failure) => {
                        eprintln!("{failure}");
                        results.1.push(seed);
                    }
                }
            });
        }
    });
    let (total, mut failures) = results.into_inner().unwrap_or_else(|e| e.into_inner());
    failures.sort();
    eprintln!(
        "{count} seeds from {first} on {threads} threads in {:.1} s, {} failed: {total:#?}",
        started.elapsed().as_secs_f64(),
        failures.len()
    );
    assert!(failures.is_empty(), "failing seeds: {failures:?}");
}

/// Two runs of one seed take the same actions, send frames of the same
/// lengths and end with the same heads everywhere: a seed replays.
#[test]
fn a_seed_replays_bit_for_bit() {
    for seed in [7, 4242] {
        let first = run_reported(seed, false).map(|(_, f)| f);
        let second = run_reported(seed, false).map(|(_, f)| f);
        assert!(first.is_ok(), "{first:?}");
        assert_eq!(first, second, "seed {seed} did not replay");
    }
}

/// The seeds the first 10,000-seed run found failing, each a bug since fixed:
/// - 4244, 6889, 7608: a retraction stored by one session while another
///   stored a copy in the same moment deleted that copy unconfirmed (every
///   stored retraction is now confirmed);
/// - 6359, 9211: a `Want` sent in the step that withdrew our copy named the
///   copy's heads, so the delta that came back fitted nothing (`HeadsMismatch`
///   on an honest origin): a copy changed in this step is asked for whole,
///   and one withdrawn in this step counts as gone;
/// - 2236: a probe replayed an origin's frame to another of its peers, which
///   TLS rules out (the model's fault, now excluded).
#[test]
fn the_seeds_the_first_long_run_found_failing_pass() {
    for seed in [2236, 4244, 6359, 6889, 7608, 9211] {
        if let Err(failure) = run_reported(seed, false) {
            panic!("{failure}");
        }
    }
}
