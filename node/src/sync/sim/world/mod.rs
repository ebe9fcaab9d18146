//! The simulated world: nodes, links, connections, clocks, and the scheduler
//! that picks, seed by seed, what happens next.
//!
//! One [`World`] is one run. Its nodes are [`MemNode`]s whose contents are
//! exactly what they persisted; its connections carry one [`Session`] at
//! each end, and each end keeps, like the driver, the outputs of its last
//! step until they are persisted. Every random choice comes from one
//! [`Rng`], and nothing else varies, so a seed is a run.
//!
//! Here: the world's state and the scheduler; in [`actions`], each thing
//! that can happen; in [`trace`], the verbose trace.

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use labnet_config::Role;
use labnet_protocol::sync::DocId;

use super::check::{Broken, Oracle, Topology};
use super::rng::Rng;
use super::{Stats, ACTIONS_MAX, ACTIONS_MIN, HEAL_STEPS_MAX, ISSUES_MAX};
use crate::sync::harness::MemNode;
use crate::sync::{Effect, Event, Session, SessionConfig};

mod actions;
mod trace;

/// A node's clock: its own offset and rate against the world's time, so two
/// nodes' timers fire at different world times.
struct Clock {
    offset_ms: u64,
    /// Parts per million faster (positive) or slower than the world.
    drift_ppm: i64,
}

struct SimNode {
    store: MemNode,
    up: bool,
    clock: Clock,
    /// What it holds a copy of, or held and was not withdrawn from: a node
    /// that held a retracted publication must confirm the retraction.
    held_copy: BTreeSet<DocId>,
}

/// The outputs of one step, waiting to be persisted (effects) and then sent
/// (frames), as the driver persists before it writes.
struct Batch {
    effects: Vec<Effect>,
    events: Vec<Event>,
    transmits: Vec<Vec<u8>>,
}

/// One end of a connection.
struct End {
    session: Session,
    /// Frames from the peer, in order (QUIC streams are ordered).
    inbox: VecDeque<Vec<u8>>,
    /// Something it serves changed, and the session has not been told.
    local_pending: bool,
    pending: Option<Batch>,
    /// The last frames it received, to replay at it.
    seen: VecDeque<Vec<u8>>,
}

/// A live connection on a link: `ends[0]` at the link's lower node.
struct Conn {
    ends: [End; 2],
}

/// One end of a connection: (link, side).
type EndRef = (usize, usize);

/// Where a probe's message comes from.
#[derive(Clone, Copy)]
enum Probe {
    /// A frame this end already received on this connection.
    Replay,
    /// A frame queued behind others, taken out of order.
    Reorder,
    /// A frame another node received from a node other than this end's
    /// peer: what a hostile peer could pass on. A frame the peer itself sent
    /// on another of its connections is never used: over TLS nobody but the
    /// peer speaks for it, and an honest origin does not send one peer what
    /// it addressed to another.
    Foreign,
}

/// What the faulty phase does next: one of the actions, and where.
enum Action {
    Step(EndRef),
    Persist(EndRef),
    /// The world's time moves on by this many milliseconds.
    Wait(u64),
    Connect(usize),
    Issue,
    DropFrame(EndRef),
    Probe(EndRef),
    Crash(usize),
    Restart(usize),
    TogglePartition,
}

/// One run of the simulation.
pub(super) struct World {
    seed: u64,
    rng: Rng,
    verbose: bool,
    nodes: Vec<SimNode>,
    oracle: Oracle,
    /// One slot per link of the topology.
    conns: Vec<Option<Conn>>,
    /// While set, links between this side and the rest carry nothing.
    partition: Option<BTreeSet<usize>>,
    now_ms: u64,
    base: Instant,
    config: SessionConfig,
    /// Frames recently received anywhere, with their sender, for
    /// out-of-context probes.
    foreign: VecDeque<(usize, Vec<u8>)>,
    issues_left: usize,
    edits: u64,
    pub(super) stats: Stats,
    /// FNV-1a over every choice and every frame's length: equal for two runs
    /// of one seed, or the run is not deterministic.
    fingerprint: u64,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

impl World {
    /// A world for `seed`: its topology, clocks, first publications.
    pub(super) fn new(seed: u64, verbose: bool) -> World {
        let mut rng = Rng::new(seed);
        let partners = rng.range(4, 6) as usize;
        let subscribers = rng.range(1, 2) as usize;
        let count = partners + subscribers;
        let mut roles = vec![Role::Partner; partners];
        roles.extend(std::iter::repeat_n(Role::Subscriber, subscribers));
        // A ring of partners (so some partners are two hops apart and only
        // relays connect them), sometimes a chord, and each subscriber
        // approved by one or two partners.
        let mut links = BTreeSet::new();
        for i in 0..partners {
            let j = (i + 1) % partners;
            links.insert((i.min(j), i.max(j)));
        }
        if rng.chance(500) {
            let i = rng.below(partners);
            let j = (i + 2) % partners;
            links.insert((i.min(j), i.max(j)));
        }
        for s in partners..count {
            for _ in 0..rng.range(1, 2) {
                links.insert((rng.below(partners), s));
            }
        }
        let links: Vec<_> = links.into_iter().collect();
        let nodes: Vec<SimNode> = (0..count)
            .map(|i| SimNode {
                store: MemNode::new(i as u32, roles[i]),
                up: true,
                clock: Clock {
                    offset_ms: rng.range(0, 3_600_000),
                    drift_ppm: rng.range(0, 40_000) as i64 - 20_000,
                },
                held_copy: BTreeSet::new(),
            })
            .collect();
        let topo = Topology {
            ids: nodes.iter().map(|n| n.store.id).collect(),
            roles,
            links: links.clone(),
        };
        let config = SessionConfig {
            docs_in_flight_max: rng.range(1, 4) as usize,
            ..SessionConfig::default()
        };
        let mut world = World {
            seed,
            rng,
            verbose,
            nodes,
            oracle: Oracle {
                topo,
                docs: Default::default(),
            },
            conns: links.iter().map(|_| None).collect(),
            partition: None,
            now_ms: 0,
            base: Instant::now(),
            config,
            foreign: VecDeque::new(),
            issues_left: ISSUES_MAX,
            edits: 0,
            stats: Stats::default(),
            fingerprint: FNV_OFFSET,
        };
        world.log(&format!(
            "{partners} partners, {subscribers} subscribers, links {links:?}, {} docs in flight",
            world.config.docs_in_flight_max
        ));
        // Two or three origins, one or two publications each to start with.
        let origins = world.rng.range(2, 3) as usize;
        for origin in 0..origins.min(partners) {
            for _ in 0..world.rng.range(1, 2) {
                world.publish(origin);
            }
        }
        world
    }

    fn log(&self, line: &str) {
        if self.verbose {
            eprintln!("[seed {} t={}ms] {line}", self.seed, self.now_ms);
        }
    }

    fn note(&mut self, words: &[u64]) {
        for w in words {
            for b in w.to_le_bytes() {
                self.fingerprint ^= u64::from(b);
                self.fingerprint = self.fingerprint.wrapping_mul(FNV_PRIME);
            }
        }
    }

    /// The fingerprint of the run so far, with the final stores folded in.
    pub(super) fn fingerprint(&mut self) -> u64 {
        let mut words = Vec::new();
        for node in &self.nodes {
            for (doc_id, h) in &node.store.held {
                words.push(doc_id.as_str().len() as u64);
                words.push(h.version);
                for head in &h.heads {
                    words.push(u64::from_le_bytes(head.0[..8].try_into().unwrap_or([0; 8])));
                }
            }
            words.push(node.store.confirmations.len() as u64);
        }
        self.note(&words);
        self.fingerprint
    }

    fn node_of(&self, link: usize, side: usize) -> usize {
        let (a, b) = self.oracle.topo.links[link];
        if side == 0 {
            a
        } else {
            b
        }
    }

    /// Node `n`'s idea of the time.
    fn node_now(&self, n: usize) -> Instant {
        let clock = &self.nodes[n].clock;
        let scaled = self.now_ms as i128 * (1_000_000 + clock.drift_ppm as i128) / 1_000_000;
        self.base + Duration::from_millis(clock.offset_ms + scaled.max(0) as u64)
    }

    fn cut(&self, link: usize) -> bool {
        let (a, b) = self.oracle.topo.links[link];
        self.partition
            .as_ref()
            .is_some_and(|side| side.contains(&a) != side.contains(&b))
    }

    // ---- the run -----------------------------------------------------------

    /// Every end that can take a step, and every end with a batch to persist.
    fn runnable(&self) -> (Vec<EndRef>, Vec<EndRef>) {
        let mut steps = Vec::new();
        let mut persists = Vec::new();
        for link in 0..self.conns.len() {
            for side in 0..2 {
                if self.can_step(link, side) {
                    steps.push((link, side));
                }
                if self.can_persist(link, side) {
                    persists.push((link, side));
                }
            }
        }
        (steps, persists)
    }

    /// The faulty phase: a random schedule of steps, persists, time, and
    /// every fault.
    pub(super) fn run_faults(&mut self) -> Result<(), Broken> {
        let actions = self.rng.range(ACTIONS_MIN, ACTIONS_MAX);
        for _ in 0..actions {
            self.stats.actions += 1;
            let (steps, persists) = self.runnable();
            let links: Vec<usize> = (0..self.conns.len()).collect();
            let connectable: Vec<usize> = links
                .iter()
                .copied()
                .filter(|&l| self.connectable(l))
                .collect();
            let live: Vec<(usize, usize)> = links
                .iter()
                .filter(|&&l| self.conns[l].is_some())
                .flat_map(|&l| [(l, 0), (l, 1)])
                .collect();
            let with_frames: Vec<(usize, usize)> = live
                .iter()
                .copied()
                .filter(|&(l, s)| {
                    self.conns[l]
                        .as_ref()
                        .is_some_and(|c| !c.ends[s].inbox.is_empty())
                })
                .collect();
            // A probe goes to an end whose last step is persisted: the
            // session reads its own writes before its next input.
            let idle_ends: Vec<(usize, usize)> = live
                .iter()
                .copied()
                .filter(|&(l, s)| !self.can_persist(l, s))
                .collect();
            let up: Vec<usize> = (0..self.nodes.len())
                .filter(|&n| self.nodes[n].up)
                .collect();
            let down: Vec<usize> = (0..self.nodes.len())
                .filter(|&n| !self.nodes[n].up)
                .collect();
            let weights = [
                if steps.is_empty() { 0 } else { 40 },
                if persists.is_empty() { 0 } else { 30 },
                8,
                if connectable.is_empty() { 0 } else { 6 },
                if self.issues_left == 0 { 0 } else { 3 },
                if with_frames.is_empty() { 0 } else { 2 },
                if idle_ends.is_empty() { 0 } else { 2 },
                if up.len() < 2 { 0 } else { 1 },
                if down.is_empty() { 0 } else { 3 },
                1,
            ];
            let action = match self.rng.weighted(&weights) {
                None => break,
                Some(0) => Action::Step(self.choose(&steps)),
                Some(1) => Action::Persist(self.choose(&persists)),
                Some(2) => Action::Wait(self.wait_ms()),
                Some(3) => Action::Connect(self.choose(&connectable)),
                Some(4) => Action::Issue,
                Some(5) => Action::DropFrame(self.choose(&with_frames)),
                Some(6) => Action::Probe(self.choose(&idle_ends)),
                Some(7) => Action::Crash(self.choose(&up)),
                Some(8) => Action::Restart(self.choose(&down)),
                Some(_) => Action::TogglePartition,
            };
            self.act(action)?;
        }
        Ok(())
    }

    /// One of `items`, which a non-zero weight says is not empty.
    fn choose<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.rng.below(items.len())]
    }

    /// Mostly the time a frame takes; now and then a long silence, past the
    /// stall timeout on some clocks.
    fn wait_ms(&mut self) -> u64 {
        if self.rng.chance(30) {
            self.rng.range(30_000, 90_000)
        } else {
            self.rng.range(1, 500)
        }
    }

    fn act(&mut self, action: Action) -> Result<(), Broken> {
        match action {
            Action::Step((l, s)) => self.step(l, s),
            Action::Persist((l, s)) => self.persist(l, s),
            Action::Wait(by) => {
                self.now_ms += by;
                self.note(&[11, by]);
                Ok(())
            }
            Action::Connect(l) => {
                self.connect(l);
                Ok(())
            }
            Action::Issue => {
                self.issue();
                Ok(())
            }
            Action::DropFrame((l, s)) => self.drop_frame(l, s),
            Action::Probe((l, s)) => self.probe(l, s),
            Action::Crash(n) => self.crash(n),
            Action::Restart(n) => self.restart(n),
            Action::TogglePartition => self.toggle_partition(),
        }
    }

    /// The faults stop: the partition heals, every node comes back, every
    /// link connects, and steps and persists run (in random order still)
    /// until nothing is in flight anywhere.
    pub(super) fn heal(&mut self) -> Result<(), Broken> {
        self.partition = None;
        for n in 0..self.nodes.len() {
            if !self.nodes[n].up {
                self.restart(n)?;
            }
        }
        self.log("healed: no more faults");
        for _ in 0..HEAL_STEPS_MAX {
            for link in 0..self.conns.len() {
                if self.connectable(link) {
                    self.connect(link);
                }
            }
            let (steps, persists) = self.runnable();
            let both = steps.len() + persists.len();
            if both == 0 {
                return Ok(());
            }
            self.stats.heal_actions += 1;
            let i = self.rng.below(both);
            match steps.get(i) {
                Some(&(l, s)) => self.step(l, s)?,
                None => {
                    let (l, s) = persists[i - steps.len()];
                    self.persist(l, s)?;
                }
            }
        }
        Err(format!(
            "no quiet after {HEAL_STEPS_MAX} steps of a healed network"
        ))
    }

    /// The end state: every session idle and open, every store sound, and
    /// the network converged.
    pub(super) fn check_end(&self) -> Result<(), Broken> {
        for (link, conn) in self.conns.iter().enumerate() {
            let Some(conn) = conn else {
                return Err(format!("link {link} is not connected after healing"));
            };
            for (side, end) in conn.ends.iter().enumerate() {
                if !end.session.is_idle() || end.session.closed().is_some() {
                    return Err(format!(
                        "node {}'s session on link {link} still waits on its peer in a quiet network",
                        self.node_of(link, side)
                    ));
                }
            }
        }
        for (n, node) in self.nodes.iter().enumerate() {
            self.oracle.check_node(n, &node.store)?;
        }
        let stores: Vec<&MemNode> = self.nodes.iter().map(|n| &n.store).collect();
        for n in 0..self.nodes.len() {
            self.oracle.check_acks(n, &stores)?;
        }
        let held: Vec<BTreeSet<DocId>> = self.nodes.iter().map(|n| n.held_copy.clone()).collect();
        self.oracle.check_converged(&stores, &held)
    }
}
