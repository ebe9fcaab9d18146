//! The transport: QUIC connections between approved nodes.
//!
//! One quinn endpoint per node, on the listen socket the daemon bound. Every
//! connection goes through the same gates, in this order:
//!
//! ```text
//!  Retry              an Initial from an address not yet validated gets a
//!                     QUIC Retry and takes no handshake slot (accept.rs)
//!  handshake slots    at most handshakes_in_flight_max at once, each for at
//!                     most handshake_timeout; beyond, refused
//!  small windows      64 KiB of flow control in all until admitted, then
//!                     16 MiB (endpoint.rs)
//!  TLS 1.3 (tls.rs)   exactly one self-signed Ed25519 certificate, handshake
//!                     signature checked with its key, NodeId = hash(key);
//!                     when dialing, the key must be the one we meant to reach
//!  ALPN labnet/1      anything else is closed (WrongProtocol)
//!  handshake          versioned Hello / Welcome / Refused on the first stream
//!  admission          decided by trust::admission (approved, revoked, invite,
//!                     pending); accept.rs carries out what it decides
//!  one per pair       if both nodes dialed, the connection dialed by the node
//!                     with the smaller NodeId is kept: both compute the same
//!  hand-over          the stream goes to the session handler the daemon gave
//!                     (sync); the transport does not run sync itself
//! ```
//!
//! Approved peers with an address are dialed at start and redialed with
//! exponential backoff and jitter; a revoked peer's connection is closed as soon
//! as the revocation is committed. Every wait has a timeout.
//!
//! Map:
//! - [`endpoint`]: the quinn endpoint, settings, and the handshake's I/O;
//! - [`tls`]: rustls verifiers pinned to node keys;
//! - `accept`: the accept loop and the admission gates;
//! - `dial`: dialing, redialing, following the peer table;
//! - [`backoff`]: the redial schedule;
//! - `connections` (here): the live-connection registry and the hand-over.

pub mod backoff;
pub mod endpoint;
pub mod tls;

mod accept;
mod dial;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use labnet_config::Role;
use labnet_protocol::close::CloseCode;
use labnet_protocol::NodeId;
use quinn::{Connection, Endpoint, RecvStream, SendStream, VarInt};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{watch, Semaphore};
use tracing::{debug, info, warn};

use crate::identity::Identity;
use crate::trust::rate_limit::RateLimiter;
use crate::trust::{PeerDecision, PeerTable};
pub use endpoint::{make_endpoint, peer_node_id};

/// Source addresses whose pending-request budget is tracked at once.
const PENDING_BUDGET_ADDRESSES_MAX: usize = 4096;

/// How long shutdown waits for close frames to leave, and then for every
/// transport task to end; bounded so shutdown never hangs.
const SHUTDOWN_CLOSE_WAIT: Duration = Duration::from_secs(2);
const SHUTDOWN_TASKS_WAIT: Duration = Duration::from_secs(5);

/// Limits and timeouts of the transport.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// The QUIC and application handshakes together must finish within this.
    pub handshake_timeout: Duration,
    /// A connection with no traffic (keep-alives included) is dropped after this.
    pub idle_timeout: Duration,
    /// Keep-alive interval, well below `idle_timeout`.
    pub keep_alive: Duration,
    /// UDP socket send and receive buffer size (DESIGN.md: the 208 KiB default
    /// loses packets even on loopback).
    pub udp_buffer_bytes: usize,
    /// Incoming handshakes in progress at once; beyond this new ones are refused.
    pub handshakes_in_flight_max: usize,
    /// Pending-request recordings allowed per source address: burst.
    pub pending_burst: u32,
    /// ... and refill per second.
    pub pending_refill_per_sec: f64,
    /// Pending requests kept at most (the oldest are dropped beyond this).
    pub pending_max: usize,
    /// First redial delay.
    pub redial_base: Duration,
    /// Longest redial delay.
    pub redial_max: Duration,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            keep_alive: Duration::from_secs(5),
            udp_buffer_bytes: 8 << 20,
            handshakes_in_flight_max: 64,
            pending_burst: 5,
            pending_refill_per_sec: 0.2,
            pending_max: crate::trust::PENDING_MAX,
            redial_base: Duration::from_millis(500),
            redial_max: Duration::from_secs(60),
        }
    }
}

/// Why the endpoint could not be set up or a dial failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// Socket setup failed.
    #[error("QUIC endpoint: {0}")]
    Io(#[from] std::io::Error),
    /// TLS configuration failed.
    #[error("{0}")]
    Tls(#[from] tls::TlsError),
    /// The address could not be resolved.
    #[error("cannot resolve {0}")]
    Resolve(String),
    /// QUIC could not connect.
    #[error("connecting to {address}: {reason}")]
    Connect {
        /// Where.
        address: String,
        /// Why.
        reason: String,
    },
    /// The other node refused us.
    #[error("refused by the other node: {reason} (code {code:#x})")]
    Refused {
        /// The close code.
        code: u32,
        /// Its reason, as the other node gave it.
        reason: String,
    },
    /// A wait ran out.
    #[error("timed out: {0}")]
    Timeout(&'static str),
    /// The handshake went wrong.
    #[error("handshake: {0}")]
    Handshake(String),
}

/// Who this node is, as the transport presents it.
#[derive(Debug, Clone)]
pub struct LocalNode {
    /// The node's id.
    pub node_id: NodeId,
    /// The name sent in handshakes.
    pub name: String,
    /// The role sent in handshakes.
    pub role: Role,
}

/// What a successful dial learned.
#[derive(Debug, Clone)]
pub struct Dialed {
    /// The other node's name.
    pub name: String,
    /// The address that worked.
    pub address: String,
}

/// An authenticated, handshaken stream to an approved peer: what the transport
/// hands to the session handler.
pub struct PeerStream {
    /// The peer, as TLS proved it.
    pub peer: NodeId,
    /// Its role, as our admin approved it (not as it claimed).
    pub role: Role,
    /// What the peer sends, starting with any bytes that arrived behind the
    /// handshake.
    pub recv: Box<dyn AsyncRead + Send + Unpin>,
    /// Where to write to the peer.
    pub send: SendStream,
}

impl std::fmt::Debug for PeerStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerStream")
            .field("peer", &self.peer)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// How the session on a handed-over stream ended: what the transport closes
/// the connection with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionOutcome {
    /// The node is shutting down.
    Shutdown,
    /// The peer closed its side.
    PeerClosed,
    /// The peer broke the protocol: close with this code.
    Violation {
        /// A code of [`labnet_protocol::close`].
        code: u32,
        /// What happened (ids and counts only).
        reason: String,
    },
    /// A local failure ended the session (logged; a reconnect starts afresh).
    Failed(String),
}

/// Runs a session over a handed-over stream until it ends. The daemon gives
/// the transport one, so that the transport never depends on sync.
pub type SessionHandler =
    Arc<dyn Fn(PeerStream) -> Pin<Box<dyn Future<Output = SessionOutcome> + Send>> + Send + Sync>;

/// A connection that passed every gate, with its first stream.
pub(crate) struct Admitted {
    connection: Connection,
    node: NodeId,
    /// Who dialed it: decides which one survives when both nodes dialed.
    dialed_by: NodeId,
    recv: RecvStream,
    send: SendStream,
    /// Bytes that arrived behind the handshake: the start of the session.
    leftover: Vec<u8>,
}

/// A live, handshaken connection.
struct LiveConnection {
    connection: Connection,
    /// Who dialed it: decides which one survives when both nodes dialed.
    dialed_by: NodeId,
    /// Tells this connection apart from a later one to the same peer.
    serial: u64,
}

/// Counts the transport's running tasks, so shutdown can wait for all of them
/// (each holds the endpoint, and the UDP port is free only when none is left).
#[derive(Default)]
struct Tasks {
    running: std::sync::atomic::AtomicUsize,
    idle: tokio::sync::Notify,
}

/// Held by a running task; the count drops when the task ends, however it ends.
struct TaskGuard(Arc<Inner>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        if self.0.tasks.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.tasks.idle.notify_waiters();
        }
    }
}

/// What every clone of a [`Transport`] shares.
struct Inner {
    /// The running tasks, so shutdown can wait until the port is free.
    tasks: Tasks,
    /// What the daemon handed over at start.
    parts: TransportParts,
    /// The one live connection per peer.
    connections: Mutex<HashMap<NodeId, LiveConnection>>,
    /// The peers a dialer task is running for (at most one each).
    dialers: Mutex<HashSet<NodeId>>,
    /// How often each source address may cause a pending request.
    pending_budget: Mutex<RateLimiter>,
    /// Incoming handshakes in progress, bounded.
    handshakes: Semaphore,
    /// The next connection serial.
    serial: AtomicU64,
}

/// What the daemon hands the transport when it starts it.
pub struct TransportParts {
    /// The QUIC endpoint, on the socket the daemon bound.
    pub endpoint: Endpoint,
    /// Our key and certificate, for dialing.
    pub identity: Arc<Identity>,
    /// Our id, name and role, as said in handshakes.
    pub local: LocalNode,
    /// The admin's decisions: consulted on accept, on each extra stream, and
    /// by dialers before every attempt.
    pub peers: PeerTable,
    /// Runs sync on each admitted stream (the daemon's wiring).
    pub sessions: SessionHandler,
    /// Limits and timeouts.
    pub config: TransportConfig,
    /// The peers with a live connection, shared with status reports.
    pub connected: Arc<std::sync::RwLock<HashSet<NodeId>>>,
    /// Turns true when the node shuts down.
    pub shutdown: watch::Receiver<bool>,
}

/// The node's transport: a cloneable handle.
#[derive(Clone)]
pub struct Transport {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("node", &self.inner.parts.local.node_id)
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// Starts the transport: accepts connections, dials approved peers, and
    /// follows the peer table's changes, until `shutdown` turns true. Every
    /// admitted stream goes to `sessions`.
    pub fn start(parts: TransportParts) -> Transport {
        let config = &parts.config;
        let budget = RateLimiter::new(
            config.pending_burst,
            config.pending_refill_per_sec,
            PENDING_BUDGET_ADDRESSES_MAX,
        );
        let transport = Transport {
            inner: Arc::new(Inner {
                tasks: Tasks::default(),
                handshakes: Semaphore::new(config.handshakes_in_flight_max),
                connections: Mutex::new(HashMap::new()),
                dialers: Mutex::new(HashSet::new()),
                pending_budget: Mutex::new(budget),
                serial: AtomicU64::new(1),
                parts,
            }),
        };
        transport.spawn(transport.clone().accept_loop());
        transport.spawn(transport.clone().follow_peer_table());
        transport
    }

    /// Spawns a transport task, counted so shutdown can wait for it.
    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.inner.tasks.running.fetch_add(1, Ordering::AcqRel);
        let guard = TaskGuard(Arc::clone(&self.inner));
        tokio::spawn(async move {
            let _guard = guard;
            task.await;
        });
    }

    /// The node's id.
    pub fn node_id(&self) -> NodeId {
        self.inner.parts.local.node_id
    }

    /// Whether a peer has a live connection.
    pub fn is_connected(&self, node: NodeId) -> bool {
        self.inner
            .parts
            .connected
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&node)
    }

    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<NodeId, LiveConnection>> {
        self.inner
            .connections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn connected_peers(&self) -> Vec<NodeId> {
        self.live().keys().copied().collect()
    }

    /// Bytes sent and received on the live connection to `node` (QUIC's own
    /// counters: UDP payloads, handshake and retransmissions included).
    pub fn connection_bytes(&self, node: NodeId) -> Option<(u64, u64)> {
        self.live().get(&node).map(|c| {
            let stats = c.connection.stats();
            (stats.udp_tx.bytes, stats.udp_rx.bytes)
        })
    }

    /// Which node dialed the live connection to `node` (both sides keep the one
    /// dialed by the smaller NodeId when both dialed).
    pub fn connection_dialer(&self, node: NodeId) -> Option<NodeId> {
        self.live().get(&node).map(|c| c.dialed_by)
    }

    fn shutting_down(&self) -> bool {
        *self.inner.parts.shutdown.borrow()
    }

    /// Closes every connection and the endpoint.
    pub async fn shutdown(&self) {
        let connections: Vec<Connection> = self.live().drain().map(|(_, c)| c.connection).collect();
        for c in &connections {
            endpoint::close(c, CloseCode::ShuttingDown, CloseCode::ShuttingDown.reason());
        }
        self.set_connected(None);
        self.inner.parts.endpoint.close(
            VarInt::from_u32(CloseCode::ShuttingDown.as_u32()),
            b"shutting down",
        );
        // Give the close frames a moment to leave, then wait for every task (each
        // holds the endpoint).
        let _ =
            tokio::time::timeout(SHUTDOWN_CLOSE_WAIT, self.inner.parts.endpoint.wait_idle()).await;
        let all_done = async {
            loop {
                let idle = self.inner.tasks.idle.notified();
                if self.inner.tasks.running.load(Ordering::Acquire) == 0 {
                    return;
                }
                idle.await;
            }
        };
        if tokio::time::timeout(SHUTDOWN_TASKS_WAIT, all_done)
            .await
            .is_err()
        {
            warn!("transport tasks still running after shutdown");
        }
    }

    /// Closes the connection to `node`, if any.
    pub fn disconnect(&self, node: NodeId, code: CloseCode) {
        let removed = self.live().remove(&node);
        self.set_connected(Some((node, false)));
        if let Some(c) = removed {
            info!(peer = %node.short(), ?code, "closing connection");
            endpoint::close(&c.connection, code, code.reason());
        }
    }

    /// Updates the shared "connected" set: one peer in or out, or `None` to
    /// clear it.
    fn set_connected(&self, change: Option<(NodeId, bool)>) {
        let mut set = self
            .inner
            .parts
            .connected
            .write()
            .unwrap_or_else(|p| p.into_inner());
        match change {
            Some((node, true)) => {
                set.insert(node);
            }
            Some((node, false)) => {
                set.remove(&node);
            }
            None => set.clear(),
        }
    }

    // ---- the hand-over ----------------------------------------------------------

    /// Registers an admitted connection (keeping one per pair), hands its
    /// stream to the session handler, and closes the connection the way the
    /// session ended.
    async fn serve(&self, admitted: Admitted, node: NodeId) {
        let Admitted {
            connection,
            dialed_by,
            recv,
            send,
            leftover,
            ..
        } = admitted;
        let Some(serial) = self.register(node, &connection, dialed_by) else {
            return;
        };
        let role = match self.inner.parts.peers.decide(node) {
            PeerDecision::Approved(role) => role,
            _ => {
                self.unregister(node, serial);
                endpoint::close(&connection, CloseCode::Revoked, CloseCode::Revoked.reason());
                return;
            }
        };
        // Streams beyond the first are not served; each attempt is checked
        // against the peer table again, so a revoked peer learns nothing new.
        let guard = tokio::spawn(refuse_extra_streams(
            connection.clone(),
            node,
            self.inner.parts.peers.clone(),
        ));
        let stream = PeerStream {
            peer: node,
            role,
            recv: Box::new(std::io::Cursor::new(leftover).chain(recv)),
            send,
        };
        let outcome = (self.inner.parts.sessions)(stream).await;
        guard.abort();
        match outcome {
            SessionOutcome::Violation { code, reason } => {
                warn!(peer = %node.short(), code, %reason, "closing connection: sync protocol violation");
                connection.close(VarInt::from_u32(code), reason.as_bytes());
            }
            SessionOutcome::Shutdown => endpoint::close(
                &connection,
                CloseCode::ShuttingDown,
                CloseCode::ShuttingDown.reason(),
            ),
            SessionOutcome::PeerClosed => {
                endpoint::close(&connection, CloseCode::Normal, "stream closed")
            }
            SessionOutcome::Failed(reason) => {
                debug!(peer = %node.short(), %reason, "sync session ended");
                endpoint::close(&connection, CloseCode::Normal, "session ended");
            }
        }
        self.unregister(node, serial);
    }

    fn register(&self, node: NodeId, connection: &Connection, dialed_by: NodeId) -> Option<u64> {
        let serial = self.inner.serial.fetch_add(1, Ordering::Relaxed);
        let preferred_dialer = node.min(self.inner.parts.local.node_id);
        let mut map = self.live();
        if let Some(existing) = map.get(&node) {
            if existing.connection.close_reason().is_none() {
                let duplicate = CloseCode::DuplicateConnection;
                if existing.dialed_by == preferred_dialer && dialed_by != preferred_dialer {
                    debug!(peer = %node.short(), "duplicate connection dropped (the other one wins)");
                    endpoint::close(connection, duplicate, duplicate.reason());
                    return None;
                }
                debug!(peer = %node.short(), "older connection replaced");
                endpoint::close(&existing.connection, duplicate, duplicate.reason());
            }
        }
        map.insert(
            node,
            LiveConnection {
                connection: connection.clone(),
                dialed_by,
                serial,
            },
        );
        // Still under the registry's lock, so a concurrent disconnect cannot
        // slip between the two updates.
        self.set_connected(Some((node, true)));
        Some(serial)
    }

    fn unregister(&self, node: NodeId, serial: u64) {
        let mut map = self.live();
        if map.get(&node).is_some_and(|c| c.serial == serial) {
            map.remove(&node);
            self.set_connected(Some((node, false)));
            info!(peer = %node.short(), "peer disconnected");
        }
    }
}

async fn refuse_extra_streams(connection: Connection, node: NodeId, peers: PeerTable) {
    while let Ok((mut send, mut recv)) = connection.accept_bi().await {
        if !matches!(peers.decide(node), PeerDecision::Approved(_)) {
            endpoint::close(&connection, CloseCode::Revoked, CloseCode::Revoked.reason());
            return;
        }
        let _ = send.reset(VarInt::from_u32(0));
        let _ = recv.stop(VarInt::from_u32(0));
    }
}
