//! A seeded workload of the store's public writes, and a fingerprint of what
//! a store holds.
//!
//! The power-loss test runs the same [`Workload`] twice: once on a plain
//! store, taking a [`fingerprint`] after every operation (what the store must
//! hold once `k` operations were acknowledged), and once per seed on the
//! fault-injecting VFS until the power is cut. The fingerprint leaves out
//! what differs between two runs of the same operations for reasons that are
//! not durability: clocks (every `at`, `created_at`, `decided_at`), the
//! random index epoch, Automerge actor ids and so change hashes, and the
//! signatures over them. It keeps every value the workload chose.

use std::sync::Arc;

use automerge::{transaction::Transactable, AutoCommit, ReadDoc, ROOT};
use labnet_config::Role;
use labnet_node::identity::Identity;
use labnet_node::store::{DocumentKind, NewDisclosure, Store, StoreError};
use labnet_protocol::NodeId;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Private documents the workload edits. Few, and most edits go to the first,
/// so that one crosses the store's compaction threshold (64 chunks).
pub const PRIVATE_SLOTS: usize = 3;
/// Publications the workload shares, updates and retracts.
pub const PUBLICATION_SLOTS: usize = 3;
/// Other nodes (peers, knockers, replica origins) the workload names: few, so
/// approvals, revocations and repeated knocks land on the same rows.
pub const PEERS: u8 = 5;
/// The longest padding a private save adds, in bytes: over one 4 KiB page,
/// so some saves write overflow pages.
pub const PAD_MAX: usize = 6_000;
/// The bound `record_pending` is called with: above the number of knockers.
/// Which request an eviction drops depends on the clock (oldest `last_seen`,
/// in seconds), so two runs of one workload could evict different ones.
const PENDING_BOUND: usize = 16;

/// One write (or lifecycle step) of the store.
#[derive(Debug, Clone)]
pub enum Op {
    /// Sets counter `n` (and a padding string) of a private document and saves it.
    SavePrivate {
        /// Which document.
        slot: usize,
        /// The counter's new value.
        value: i64,
        /// Length of the padding string.
        pad: usize,
    },
    /// Sets a publication's title and saves it to the index (share or update).
    Publish {
        /// Which publication.
        slot: usize,
        /// Its new title.
        title: String,
        /// Its scope.
        scope: &'static str,
    },
    /// Retracts a publication (nothing when it is not shared).
    Retract {
        /// Which publication.
        slot: usize,
    },
    /// Approves a peer as a partner.
    Approve {
        /// Which peer.
        peer: u8,
    },
    /// Revokes a peer.
    Revoke {
        /// Which peer.
        peer: u8,
    },
    /// Records a knock from an unknown node.
    Knock {
        /// Which node.
        peer: u8,
    },
    /// Creates invite number `n`.
    Invite {
        /// Its number (unique in a workload).
        n: u32,
    },
    /// Logs a disclosure.
    Disclose {
        /// Its number, in its settings.
        n: u32,
    },
    /// One sync step's batch: a replica snapshot from `origin`, its resume
    /// point, its ack of our index and a delivery to it, together.
    Receive {
        /// The replica's origin.
        origin: u8,
        /// Which replica, and the resume point and ack it moves to.
        n: u32,
    },
    /// Folds the WAL into the database file.
    Checkpoint,
    /// Closes the store and opens it again.
    Reopen,
}

/// A fixed, seeded sequence of operations.
#[derive(Debug, Clone)]
pub struct Workload {
    /// The operations, in order.
    pub ops: Vec<Op>,
}

impl Workload {
    /// `len` operations chosen by `seed`.
    pub fn generate(seed: u64, len: usize) -> Workload {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut next = 0u32;
        let mut ops = Vec::with_capacity(len);
        for _ in 0..len {
            next += 1;
            let peer = rng.gen_range(1..=PEERS);
            let op = match rng.gen_range(0..100) {
                0..=39 => Op::SavePrivate {
                    slot: if rng.gen_bool(0.7) {
                        0
                    } else {
                        rng.gen_range(0..PRIVATE_SLOTS)
                    },
                    value: rng.gen_range(-1_000_000..1_000_000),
                    pad: if rng.gen_bool(0.2) {
                        rng.gen_range(0..=PAD_MAX)
                    } else {
                        0
                    },
                },
                40..=51 => Op::Publish {
                    slot: rng.gen_range(0..PUBLICATION_SLOTS),
                    title: format!("practice {next}"),
                    scope: if rng.gen_bool(0.5) {
                        "partners"
                    } else {
                        "public"
                    },
                },
                52..=55 => Op::Retract {
                    slot: rng.gen_range(0..PUBLICATION_SLOTS),
                },
                56..=62 => Op::Approve { peer },
                63..=66 => Op::Revoke { peer },
                67..=72 => Op::Knock { peer },
                73..=77 => Op::Invite { n: next },
                78..=83 => Op::Disclose { n: next },
                84..=93 => Op::Receive {
                    origin: peer,
                    n: next,
                },
                94..=96 => Op::Checkpoint,
                _ => Op::Reopen,
            };
            ops.push(op);
        }
        Workload { ops }
    }
}

/// The node another store names as peer `n`.
pub fn peer(n: u8) -> NodeId {
    NodeId::from_public_key(&[n; 32])
}

/// A node that knocks: never one of the peers, so its request stays pending.
fn knocker(n: u8) -> NodeId {
    NodeId::from_public_key(&[n.wrapping_add(100); 32])
}

/// The id of our publication in `slot`.
pub fn publication_id(me: NodeId, slot: usize) -> String {
    format!("{}:practice-{slot}", me.to_key())
}

fn private_id(slot: usize) -> String {
    format!("private-{slot}")
}

fn replica_id(origin: NodeId, n: u32) -> String {
    format!("{}:replica-{n}", origin.to_key())
}

/// Runs a [`Workload`]'s operations against a store it opens (and reopens)
/// itself, keeping the Automerge documents the operations edit.
pub struct Runner {
    /// Opens the store: on the fault-injecting VFS, or plainly.
    open: Box<dyn Fn() -> Result<Store, StoreError>>,
    /// The node key publications are signed with; one per test, so that two
    /// runs name the same publications.
    identity: Arc<Identity>,
    /// The open store; `None` after a reopen that failed.
    store: Option<Store>,
    private: Vec<AutoCommit>,
    publications: Vec<AutoCommit>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl Runner {
    /// Opens the store with `open` and gives it `identity` as its signer.
    pub fn start(
        identity: Arc<Identity>,
        open: Box<dyn Fn() -> Result<Store, StoreError>>,
    ) -> Result<Runner, StoreError> {
        let mut runner = Runner {
            open,
            identity,
            store: None,
            private: (0..PRIVATE_SLOTS).map(|_| AutoCommit::new()).collect(),
            publications: (0..PUBLICATION_SLOTS).map(|_| AutoCommit::new()).collect(),
        };
        runner.reopen()?;
        Ok(runner)
    }

    fn reopen(&mut self) -> Result<(), StoreError> {
        // Closed before it is opened again, as a restarting node does.
        self.store = None;
        let mut store = (self.open)()?;
        store.set_signer(self.identity.clone());
        self.store = Some(store);
        Ok(())
    }

    /// The open store, if the last reopen succeeded.
    pub fn store(&self) -> Option<&Store> {
        self.store.as_ref()
    }

    /// Closes the store (as a node's clean shutdown does, without its final
    /// checkpoint).
    pub fn close(mut self) {
        self.store = None;
    }

    /// Applies one operation; `Ok` means the store acknowledged it.
    pub fn apply(&mut self, op: &Op) -> Result<(), StoreError> {
        if let Op::Reopen = op {
            return self.reopen();
        }
        let me = self.identity.node_id();
        let Some(store) = self.store.as_mut() else {
            // Only a failed reopen leaves no store, and the run stops there.
            return self.reopen();
        };
        match op {
            Op::SavePrivate { slot, value, pad } => {
                let doc = &mut self.private[*slot];
                put(doc, "n", *value);
                put(doc, "pad", "p".repeat(*pad));
                store.save_document(&private_id(*slot), DocumentKind::Private, doc)
            }
            Op::Publish { slot, title, scope } => {
                let doc = &mut self.publications[*slot];
                put(doc, "title", title.as_str());
                store
                    .save_publication(&publication_id(me, *slot), doc, scope)
                    .map(drop)
            }
            Op::Retract { slot } => store
                .retract_publication(&publication_id(me, *slot))
                .map(drop),
            Op::Approve { peer: n } => store
                .approve_peer(
                    peer(*n),
                    Role::Partner,
                    Some(&format!("city {n}")),
                    Some("127.0.0.1:4433"),
                    "test",
                )
                .map(drop),
            Op::Revoke { peer: n } => store.revoke_peer(peer(*n), "test").map(drop),
            Op::Knock { peer: n } => store
                .record_pending(
                    knocker(*n),
                    &format!("knocker {n}"),
                    "192.0.2.1:4433",
                    Role::Subscriber,
                    PENDING_BOUND,
                )
                .map(drop),
            Op::Invite { n } => store
                .create_invite(
                    &format!("inv{n}"),
                    format!("secret {n}").as_bytes(),
                    Role::Partner,
                    4_000_000_000,
                    3,
                )
                .map(drop),
            Op::Disclose { n } => store
                .log_disclosure(&NewDisclosure {
                    action: "update",
                    doc_id: &publication_id(me, 0),
                    heads: "",
                    node_id: Some(peer((*n % u32::from(PEERS)) as u8 + 1)),
                    scope: "partners",
                    settings: &format!("{{\"n\":{n}}}"),
                })
                .map(drop),
            Op::Receive { origin, n } => {
                let origin = peer(*origin);
                let mut doc = AutoCommit::new();
                put(&mut doc, "title", format!("replica {n}"));
                let heads = doc.get_heads();
                let bytes = doc.save();
                let delivered = publication_id(me, *n as usize % PUBLICATION_SLOTS);
                store.batch(|b| {
                    b.save_replica_snapshot(&replica_id(origin, *n), origin, &heads, &bytes)?;
                    b.save_resume_point(origin, 7, u64::from(*n))?;
                    b.save_peer_ack(origin, 9, u64::from(*n))?;
                    b.record_delivery(origin, &delivered, u64::from(*n))
                })
            }
            Op::Checkpoint => store.checkpoint(),
            Op::Reopen => Ok(()),
        }
    }
}

/// Sets a root key; a local document edit cannot fail on a fresh key.
fn put(doc: &mut AutoCommit, key: &str, value: impl Into<automerge::ScalarValue>) {
    doc.put(ROOT, key, value)
        .expect("putting a root scalar into a local document");
}

/// Everything the store holds, read back through its public API, one line
/// per fact, sorted, without what differs between two runs of the same operations
/// (see the module doc). `me` is the node whose publications the store holds.
pub fn fingerprint(store: &Store, me: NodeId) -> Result<Vec<String>, StoreError> {
    let mut lines = vec![format!("schema {}", store.schema_version()?)];
    for kind in [
        DocumentKind::Private,
        DocumentKind::Publication,
        DocumentKind::Replica,
    ] {
        for id in store.document_ids(kind)? {
            let line = match store.load_document(&id)? {
                Some((found, doc)) => format!("doc {kind:?} {id} {found:?} {}", render(&doc)),
                None => format!("doc {kind:?} {id} listed but not loaded"),
            };
            lines.push(line);
        }
    }
    for p in store.peers()? {
        lines.push(format!(
            "peer {} {:?} {:?} {} {:?} {:?} {}",
            p.node_id, p.name, p.claimed_name, p.role, p.state, p.address, p.decided_by
        ));
        for (_, event, by) in store.peer_events(p.node_id)? {
            lines.push(format!("peer {} event {event} by {by}", p.node_id));
        }
    }
    for p in store.pending_peers()? {
        lines.push(format!(
            "pending {} {} {} {:?} {}",
            p.node_id, p.name, p.address, p.claimed_role, p.attempts
        ));
    }
    for i in store.invites()? {
        lines.push(format!(
            "invite {} {} {} {} {}",
            i.invite_id,
            i.role,
            i.expires_at,
            i.uses_left,
            i.revoked_at.is_some()
        ));
    }
    for r in store.publication_rows()? {
        lines.push(format!(
            "index {} {} {} {} {} heads",
            r.doc_id,
            r.seq,
            r.scope,
            r.retracted,
            r.heads.len()
        ));
    }
    for s in store.statements()? {
        lines.push(format!(
            "statement {} {} {} {} {} {:?} {:?}",
            s.doc_id,
            s.origin,
            s.version,
            s.scope_class.as_str(),
            s.retracted,
            s.via,
            s.relay_seq
        ));
    }
    for (id, origin) in store.replicas()? {
        lines.push(format!("replica {id} from {origin}"));
    }
    for n in 1..=PEERS {
        let p = peer(n);
        lines.push(format!(
            "peer {n}: resume {:?} ack {:?}",
            store.resume_point(p)?,
            store.peer_ack(p)?.map(|(epoch, seq, _)| (epoch, seq))
        ));
    }
    for slot in 0..PUBLICATION_SLOTS {
        let id = publication_id(me, slot);
        for p in store.delivered_to(&id)? {
            lines.push(format!(
                "delivered {id} to {p}: {:?}",
                store.delivered_version(p, &id)?
            ));
        }
    }
    for d in store.disclosures(None, None)? {
        lines.push(format!(
            "disclosure {} {} {:?} {} {}",
            d.action, d.doc_id, d.node_id, d.scope, d.settings
        ));
    }
    // Some lists come in clock order (pending requests, invites): compare
    // what is there, not the order two runs' clocks put it in.
    lines.sort();
    Ok(lines)
}

/// A temporary directory for a test's store: in `/dev/shm` where there is
/// one, since what the tests check is the fault-injecting VFS's model of the
/// disk, and real fsyncs on a shared build machine only make them slow.
pub fn scratch_dir() -> std::io::Result<tempfile::TempDir> {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::Builder::new()
            .prefix("labnet-faultfs")
            .tempdir_in(shm)
        {
            return Ok(dir);
        }
    }
    tempfile::Builder::new().prefix("labnet-faultfs").tempdir()
}

/// A document's root scalars; long strings as their length and a checksum.
fn render(doc: &AutoCommit) -> String {
    let mut out = Vec::new();
    for key in doc.keys(ROOT) {
        let value = match doc.get(ROOT, &key) {
            Ok(Some((automerge::Value::Scalar(s), _))) => match s.as_ref() {
                automerge::ScalarValue::Str(text) if text.len() > 32 => {
                    let sum = text
                        .bytes()
                        .fold(0u32, |a, b| a.wrapping_mul(31) ^ u32::from(b));
                    format!("<{} bytes, {sum:08x}>", text.len())
                }
                other => other.to_string(),
            },
            Ok(Some((other, _))) => format!("{other:?}"),
            Ok(None) => "missing".to_string(),
            Err(e) => format!("error {e}"),
        };
        out.push(format!("{key}={value}"));
    }
    out.join(",")
}
