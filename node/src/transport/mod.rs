//! The transport: QUIC connections between approved nodes, and who may have one.
//!
//! One quinn endpoint per node, on the listen socket the daemon bound. Every
//! connection goes through the same gates, in this order:
//!
//! ```text
//!  TLS 1.3 (tls.rs): exactly one self-signed Ed25519 certificate, handshake
//!                     signature checked with its key, NodeId = hash(key);
//!                     when dialing, the key must be the one we meant to reach
//!  ALPN labnet/1     anything else is closed (WrongProtocol)
//!  peer table        approved → go on; revoked → Revoked;
//!                     unknown → with a valid invite secret: approved by the
//!                     invite; otherwise recorded as pending (rate-limited per
//!                     address, bounded list) and closed NotApproved
//!  handshake         versioned Hello / Welcome / Refused on the first stream
//!  one per pair      if both nodes dialed, the connection dialed by the node
//!                     with the smaller NodeId is kept: both compute the same
//!  sync session      on the same stream, until either side stops
//! ```
//!
//! Approved peers with an address are dialed at start and redialed with
//! exponential backoff and jitter; a revoked peer's connection is closed as soon
//! as the revocation is committed. Every wait has a timeout.

pub mod limits;
pub mod tls;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use labnet_config::Role;
use labnet_protocol::handshake::{
    CloseCode, Event as HandshakeEvent, Handshake, Hello, PeerRole, Welcome, ALPN,
    INVITE_SECRET_LEN, PROTOCOL_VERSION,
};
use labnet_protocol::invite::hash_secret;
use labnet_protocol::NodeId;
use quinn::{Connection, Endpoint, RecvStream, SendStream, VarInt};
use rand::Rng;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{watch, Semaphore};
use tracing::{debug, info, info_span, warn, Instrument};

use crate::identity::Identity;
use crate::peers::{PeerChange, PeerDecision, PeerTable};
use crate::store::InviteRefusal;
use crate::sync::driver::{run_session, DriverContext, SessionEnd};
use crate::sync::PeerInfo;
use limits::{Backoff, RateLimiter};

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
            pending_max: crate::peers::PENDING_MAX,
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

/// Makes the node's QUIC endpoint on an already-bound socket.
pub fn make_endpoint(
    socket: std::net::UdpSocket,
    identity: &Identity,
    config: &TransportConfig,
) -> Result<Endpoint, TransportError> {
    let sock = socket2::SockRef::from(&socket);
    // Best effort: the kernel may cap the size (net.core.rmem_max); a smaller
    // buffer still works, with more loss under bursts.
    if let Err(e) = sock.set_recv_buffer_size(config.udp_buffer_bytes) {
        warn!(error = %e, "could not enlarge the UDP receive buffer");
    }
    if let Err(e) = sock.set_send_buffer_size(config.udp_buffer_bytes) {
        warn!(error = %e, "could not enlarge the UDP send buffer");
    }
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(tls::quic_server_config(identity)?));
    server.transport_config(transport_config(config));
    let runtime =
        quinn::default_runtime().ok_or_else(|| std::io::Error::other("no tokio runtime"))?;
    Ok(Endpoint::new(
        quinn::EndpointConfig::default(),
        Some(server),
        socket,
        runtime,
    )?)
}

fn transport_config(config: &TransportConfig) -> Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    t.max_idle_timeout(quinn::IdleTimeout::try_from(config.idle_timeout).ok());
    t.keep_alive_interval(Some(config.keep_alive));
    // One stream carries the whole exchange; nothing else is served.
    t.max_concurrent_bidi_streams(VarInt::from_u32(4));
    t.max_concurrent_uni_streams(VarInt::from_u32(0));
    // Large windows: an initial sync moves megabytes over one stream.
    t.stream_receive_window(VarInt::from_u32(16 << 20));
    t.receive_window(VarInt::from_u32(32 << 20));
    t.send_window(32 << 20);
    Arc::new(t)
}

/// The NodeId of the key a connection's peer proved it holds.
pub fn peer_node_id(connection: &Connection) -> Option<NodeId> {
    let certs = connection
        .peer_identity()?
        .downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
        .ok()?;
    let cert = certs.first()?;
    tls::node_id_of_certificate(cert).ok()
}

fn negotiated_alpn(connection: &Connection) -> Option<Vec<u8>> {
    connection
        .handshake_data()?
        .downcast::<quinn::crypto::rustls::HandshakeData>()
        .ok()?
        .protocol
}

fn close(connection: &Connection, code: CloseCode, reason: &str) {
    connection.close(VarInt::from_u32(code.as_u32()), reason.as_bytes());
}

/// A live, handshaken connection.
struct LiveConnection {
    connection: Connection,
    /// Who dialed it: decides which one survives when both nodes dialed.
    dialed_by: NodeId,
    /// Tells this connection apart from a later one to the same peer.
    serial: u64,
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

struct Inner {
    tasks: Tasks,
    endpoint: Endpoint,
    identity: Arc<Identity>,
    local: LocalNode,
    peers: PeerTable,
    sync: DriverContext,
    config: TransportConfig,
    connections: Mutex<HashMap<NodeId, LiveConnection>>,
    connected: Arc<std::sync::RwLock<HashSet<NodeId>>>,
    dialers: Mutex<HashSet<NodeId>>,
    pending_limiter: Mutex<RateLimiter>,
    handshakes: Semaphore,
    serial: AtomicU64,
    shutdown: watch::Receiver<bool>,
}

/// The node's transport: a cloneable handle.
#[derive(Clone)]
pub struct Transport {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("node", &self.inner.local.node_id)
            .finish_non_exhaustive()
    }
}

/// What a successful dial learned.
#[derive(Debug, Clone)]
pub struct Dialed {
    /// The other node's name.
    pub name: String,
    /// The address that worked.
    pub address: String,
}

fn peer_role(role: Role) -> PeerRole {
    match role {
        Role::Partner => PeerRole::Partner,
        Role::Subscriber => PeerRole::Subscriber,
    }
}

impl Transport {
    /// Starts the transport: accepts connections, dials approved peers, and
    /// follows the peer table's changes, until `shutdown` turns true.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        endpoint: Endpoint,
        identity: Arc<Identity>,
        local: LocalNode,
        peers: PeerTable,
        sync: DriverContext,
        config: TransportConfig,
        connected: Arc<std::sync::RwLock<HashSet<NodeId>>>,
        shutdown: watch::Receiver<bool>,
    ) -> Transport {
        let limiter = RateLimiter::new(config.pending_burst, config.pending_refill_per_sec, 4096);
        let transport = Transport {
            inner: Arc::new(Inner {
                tasks: Tasks::default(),
                endpoint,
                identity,
                local,
                peers,
                sync,
                handshakes: Semaphore::new(config.handshakes_in_flight_max),
                config,
                connections: Mutex::new(HashMap::new()),
                connected,
                dialers: Mutex::new(HashSet::new()),
                pending_limiter: Mutex::new(limiter),
                serial: AtomicU64::new(1),
                shutdown,
            }),
        };
        transport.spawn(transport.clone().accept_loop());
        transport.spawn(transport.clone().follow_peer_table());
        transport
    }

    /// Spawns a transport task, counted so shutdown can wait for it.
    fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        self.inner.tasks.running.fetch_add(1, Ordering::AcqRel);
        let guard = TaskGuard(Arc::clone(&self.inner));
        tokio::spawn(async move {
            let _guard = guard;
            task.await;
        });
    }

    /// The node's id.
    pub fn node_id(&self) -> NodeId {
        self.inner.local.node_id
    }

    /// Whether a peer has a live connection.
    pub fn is_connected(&self, node: NodeId) -> bool {
        self.inner
            .connected
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&node)
    }

    /// Bytes sent and received on the live connection to `node` (QUIC's own
    /// counters: UDP payloads, handshake and retransmissions included).
    pub fn connection_bytes(&self, node: NodeId) -> Option<(u64, u64)> {
        let map = self
            .inner
            .connections
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        map.get(&node).map(|c| {
            let stats = c.connection.stats();
            (stats.udp_tx.bytes, stats.udp_rx.bytes)
        })
    }

    /// Which node dialed the live connection to `node` (both sides keep the one
    /// dialed by the smaller NodeId when both dialed).
    pub fn connection_dialer(&self, node: NodeId) -> Option<NodeId> {
        let map = self
            .inner
            .connections
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        map.get(&node).map(|c| c.dialed_by)
    }

    /// Closes every connection and the endpoint.
    pub async fn shutdown(&self) {
        let connections: Vec<Connection> = {
            let mut map = self
                .inner
                .connections
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            map.drain().map(|(_, c)| c.connection).collect()
        };
        for c in &connections {
            close(c, CloseCode::ShuttingDown, CloseCode::ShuttingDown.reason());
        }
        self.inner
            .connected
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.inner.endpoint.close(
            VarInt::from_u32(CloseCode::ShuttingDown.as_u32()),
            b"shutting down",
        );
        // Give the close frames a moment to leave, then wait for every task (each
        // holds the endpoint); bounded so shutdown never hangs.
        let _ = tokio::time::timeout(Duration::from_secs(2), self.inner.endpoint.wait_idle()).await;
        let all_done = async {
            loop {
                let idle = self.inner.tasks.idle.notified();
                if self.inner.tasks.running.load(Ordering::Acquire) == 0 {
                    return;
                }
                idle.await;
            }
        };
        if tokio::time::timeout(Duration::from_secs(5), all_done)
            .await
            .is_err()
        {
            warn!("transport tasks still running after shutdown");
        }
    }

    /// Dials every approved peer with a known address (at start).
    pub async fn dial_approved(&self) {
        match self.inner.peers.dialable().await {
            Ok(list) => {
                for (node, _) in list {
                    self.ensure_dialer(node);
                }
            }
            Err(e) => warn!(error = %e, "cannot list peers to dial"),
        }
    }

    fn shutting_down(&self) -> bool {
        *self.inner.shutdown.borrow()
    }

    // ---- accepting -------------------------------------------------------------

    async fn accept_loop(self) {
        let mut shutdown = self.inner.shutdown.clone();
        loop {
            let incoming = tokio::select! {
                incoming = self.inner.endpoint.accept() => incoming,
                _ = shutdown.changed() => break,
            };
            let Some(incoming) = incoming else { break };
            let Ok(permit) = self.inner.handshakes.try_acquire() else {
                debug!(from = %incoming.remote_address(), "too many handshakes in progress; refused");
                incoming.refuse();
                continue;
            };
            permit.forget();
            let this = self.clone();
            self.spawn(async move {
                let remote = incoming.remote_address();
                let result = tokio::time::timeout(this.inner.config.handshake_timeout, async {
                    let connection = incoming
                        .await
                        .map_err(|e| TransportError::Handshake(e.to_string()))?;
                    this.admit(connection, remote).await
                })
                .await;
                this.inner.handshakes.add_permits(1);
                match result {
                    Ok(Ok(Some((connection, node, recv, send, leftover)))) => {
                        this.serve(connection, node, node, recv, send, leftover)
                            .await
                    }
                    Ok(Ok(None)) => {}
                    Ok(Err(e)) => debug!(from = %remote, error = %e, "incoming connection refused"),
                    Err(_) => debug!(from = %remote, "incoming handshake timed out"),
                }
            });
        }
    }

    /// Runs the gates for an incoming connection. Returns the connection and its
    /// stream when the peer is admitted; closes it otherwise.
    #[allow(clippy::type_complexity)]
    async fn admit(
        &self,
        connection: Connection,
        remote: SocketAddr,
    ) -> Result<Option<(Connection, NodeId, RecvStream, SendStream, Vec<u8>)>, TransportError> {
        let Some(node) = peer_node_id(&connection) else {
            close(
                &connection,
                CloseCode::WrongProtocol,
                "no client certificate",
            );
            return Ok(None);
        };
        if negotiated_alpn(&connection).as_deref() != Some(ALPN) {
            close(
                &connection,
                CloseCode::WrongProtocol,
                CloseCode::WrongProtocol.reason(),
            );
            return Ok(None);
        }
        let span = info_span!("conn", peer = %node.short(), dir = "in");
        async move {
            let (mut send, mut recv) = connection
                .accept_bi()
                .await
                .map_err(|e| TransportError::Handshake(e.to_string()))?;
            let mut handshake = Handshake::acceptor();
            let hello = match read_handshake_event(&mut handshake, &mut recv).await? {
                HandshakeEvent::Hello(hello) => hello,
                HandshakeEvent::Failed { code, reason } => {
                    warn!(%reason, "malformed handshake");
                    close(&connection, code, &reason);
                    return Ok(None);
                }
                _ => {
                    close(
                        &connection,
                        CloseCode::Malformed,
                        "unexpected handshake message",
                    );
                    return Ok(None);
                }
            };
            if hello.version != PROTOCOL_VERSION {
                let reason = format!(
                    "this node speaks labnet protocol {PROTOCOL_VERSION}, the other node {}",
                    hello.version
                );
                self.refuse(
                    &connection,
                    handshake,
                    &mut send,
                    CloseCode::VersionMismatch,
                    &reason,
                )
                .await;
                return Ok(None);
            }
            let decision = self.inner.peers.decide(node);
            let admitted = match decision {
                PeerDecision::Approved(_) => true,
                PeerDecision::Revoked => {
                    info!("revoked node refused");
                    self.refuse(
                        &connection,
                        handshake,
                        &mut send,
                        CloseCode::Revoked,
                        CloseCode::Revoked.reason(),
                    )
                    .await;
                    return Ok(None);
                }
                PeerDecision::Unknown => match hello.invite_secret {
                    Some(secret) => match self.redeem_invite(node, &hello, &secret, remote).await {
                        Ok(()) => true,
                        Err(code) => {
                            self.refuse(&connection, handshake, &mut send, code, code.reason())
                                .await;
                            return Ok(None);
                        }
                    },
                    None => {
                        let allowed = self
                            .inner
                            .pending_limiter
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .allow(remote.ip(), Instant::now());
                        let code = if allowed {
                            if let Err(e) = self
                                .inner
                                .peers
                                .record_pending(node, hello.name.clone(), remote.to_string())
                                .await
                            {
                                warn!(error = %e, "could not record a pending request");
                            }
                            CloseCode::NotApproved
                        } else {
                            CloseCode::RateLimited
                        };
                        self.refuse(&connection, handshake, &mut send, code, code.reason())
                            .await;
                        return Ok(None);
                    }
                },
            };
            debug_assert!(admitted);
            handshake.accept(Welcome {
                name: self.inner.local.name.clone(),
                role: peer_role(self.inner.local.role),
            });
            write_handshake(&mut handshake, &mut send).await?;
            if let Err(e) = self.inner.peers.seen(node, hello.name.clone(), None).await {
                warn!(error = %e, "could not record the peer's handshake");
            }
            info!(name = %hello.name, "peer connected");
            Ok(Some((
                connection,
                node,
                recv,
                send,
                handshake.into_remaining(),
            )))
        }
        .instrument(span)
        .await
    }

    async fn redeem_invite(
        &self,
        node: NodeId,
        hello: &Hello,
        secret: &[u8; INVITE_SECRET_LEN],
        remote: SocketAddr,
    ) -> Result<(), CloseCode> {
        let hash = hash_secret(secret).to_vec();
        let now = crate::store::unix_now();
        let outcome = self
            .inner
            .peers
            .store()
            .call(move |s| s.redeem_invite(&hash, now))
            .await;
        match outcome {
            Ok(Ok((invite_id, role))) => {
                let by = format!("invite {invite_id}");
                self.inner
                    .peers
                    .approve(
                        node,
                        role,
                        Some(hello.name.clone()),
                        Some(remote.to_string()),
                        &by,
                    )
                    .await
                    .map_err(|_| CloseCode::ShuttingDown)?;
                info!(invite = %invite_id, %role, "node joined through an invite");
                Ok(())
            }
            Ok(Err(refusal)) => {
                info!(%refusal, "invite refused");
                Err(match refusal {
                    InviteRefusal::Unknown => CloseCode::InviteInvalid,
                    InviteRefusal::Expired => CloseCode::InviteExpired,
                    InviteRefusal::UsedUp => CloseCode::InviteUsedUp,
                    InviteRefusal::Revoked => CloseCode::InviteRevoked,
                })
            }
            Err(e) => {
                warn!(error = %e, "invite lookup failed");
                Err(CloseCode::ShuttingDown)
            }
        }
    }

    /// Sends a refusal the other side can show, then closes with its code.
    async fn refuse(
        &self,
        connection: &Connection,
        mut handshake: Handshake,
        send: &mut SendStream,
        code: CloseCode,
        reason: &str,
    ) {
        handshake.refuse(code, reason);
        let _ = write_handshake(&mut handshake, send).await;
        let _ = send.finish();
        // Let the refusal arrive before the close overtakes it; bounded.
        let _ = tokio::time::timeout(Duration::from_millis(500), connection.closed()).await;
        close(connection, code, reason);
    }

    // ---- dialing ---------------------------------------------------------------

    /// Dials `node` at `address`, presenting an invite secret if given. On
    /// success the connection is registered and its sync session runs.
    pub async fn dial(
        &self,
        node: NodeId,
        address: &str,
        invite_secret: Option<[u8; INVITE_SECRET_LEN]>,
    ) -> Result<Dialed, TransportError> {
        let span = info_span!("conn", peer = %node.short(), dir = "out");
        let (connection, recv, send, leftover, welcome) = tokio::time::timeout(
            self.inner.config.handshake_timeout,
            self.connect(node, address, invite_secret)
                .instrument(span.clone()),
        )
        .await
        .map_err(|_| TransportError::Timeout("dialing"))??;
        let dialed = Dialed {
            name: welcome.name.clone(),
            address: address.to_string(),
        };
        if invite_secret.is_some() {
            // The inviter let us in: approve it on our side too (a city).
            let by = "invite accept";
            if let Err(e) = self
                .inner
                .peers
                .approve(
                    node,
                    Role::Partner,
                    Some(welcome.name.clone()),
                    Some(address.to_string()),
                    by,
                )
                .await
            {
                close(&connection, CloseCode::ShuttingDown, "local store failure");
                return Err(TransportError::Handshake(e.to_string()));
            }
        } else if let Err(e) = self
            .inner
            .peers
            .seen(node, welcome.name.clone(), None)
            .await
        {
            warn!(error = %e, "could not record the peer's handshake");
        }
        info!(parent: &span, name = %welcome.name, "connected to peer");
        let this = self.clone();
        let local = self.inner.local.node_id;
        self.spawn(
            async move {
                this.serve(connection, node, local, recv, send, leftover)
                    .await
            }
            .instrument(span),
        );
        Ok(dialed)
    }

    async fn connect(
        &self,
        node: NodeId,
        address: &str,
        invite_secret: Option<[u8; INVITE_SECRET_LEN]>,
    ) -> Result<(Connection, RecvStream, SendStream, Vec<u8>, Welcome), TransportError> {
        let addr = tokio::net::lookup_host(address)
            .await
            .map_err(|_| TransportError::Resolve(address.to_string()))?
            .next()
            .ok_or_else(|| TransportError::Resolve(address.to_string()))?;
        let crypto = tls::quic_client_config(&self.inner.identity, node)?;
        let mut client = quinn::ClientConfig::new(Arc::new(crypto));
        client.transport_config(transport_config(&self.inner.config));
        let connecting = self
            .inner
            .endpoint
            .connect_with(client, addr, tls::SERVER_NAME)
            .map_err(|e| TransportError::Connect {
                address: address.to_string(),
                reason: e.to_string(),
            })?;
        let connection = connecting.await.map_err(|e| TransportError::Connect {
            address: address.to_string(),
            reason: e.to_string(),
        })?;
        let (mut send, mut recv) = connection
            .open_bi()
            .await
            .map_err(|e| refused_or(e, "opening the stream"))?;
        let mut handshake = Handshake::dialer(Hello {
            version: PROTOCOL_VERSION,
            name: self.inner.local.name.clone(),
            role: peer_role(self.inner.local.role),
            invite_secret,
        });
        write_handshake(&mut handshake, &mut send).await?;
        match read_handshake_event(&mut handshake, &mut recv).await {
            Ok(HandshakeEvent::Welcome(welcome)) => {
                Ok((connection, recv, send, handshake.into_remaining(), welcome))
            }
            Ok(HandshakeEvent::Refused { code, reason }) => {
                connection.close(VarInt::from_u32(code), b"refused");
                Err(TransportError::Refused { code, reason })
            }
            Ok(HandshakeEvent::Failed { code, reason }) => {
                close(&connection, code, &reason);
                Err(TransportError::Handshake(reason))
            }
            Ok(HandshakeEvent::Hello(_)) => {
                close(&connection, CloseCode::Malformed, "unexpected hello");
                Err(TransportError::Handshake(
                    "the other node sent a hello".into(),
                ))
            }
            Err(e) => Err(match connection.close_reason() {
                Some(reason) => refused_or(reason, "handshake"),
                None => e,
            }),
        }
    }

    fn ensure_dialer(&self, node: NodeId) {
        let mut dialers = self.inner.dialers.lock().unwrap_or_else(|p| p.into_inner());
        if dialers.insert(node) {
            self.spawn(self.clone().dialer(node));
        }
    }

    /// Keeps a connection to `node` up while it stays approved.
    async fn dialer(self, node: NodeId) {
        let mut backoff = Backoff::new(self.inner.config.redial_base, self.inner.config.redial_max);
        let mut shutdown = self.inner.shutdown.clone();
        loop {
            if self.shutting_down()
                || !matches!(self.inner.peers.decide(node), PeerDecision::Approved(_))
            {
                break;
            }
            let wait = if self.is_connected(node) {
                backoff.reset();
                Duration::from_millis(500)
            } else {
                let address = self.inner.peers.address_of(node).await;
                match address {
                    Some(address) => match self.dial(node, &address, None).await {
                        Ok(_) => {
                            backoff.reset();
                            Duration::from_millis(500)
                        }
                        Err(e) => {
                            let delay = backoff.next_delay(rand::thread_rng().gen());
                            debug!(peer = %node.short(), error = %e, ?delay, "dial failed; will retry");
                            delay
                        }
                    },
                    None => break,
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => break,
            }
        }
        self.inner
            .dialers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&node);
    }

    async fn follow_peer_table(self) {
        let mut changes = self.inner.peers.subscribe();
        let mut shutdown = self.inner.shutdown.clone();
        self.dial_approved().await;
        loop {
            let change = tokio::select! {
                change = changes.recv() => change,
                _ = shutdown.changed() => break,
            };
            match change {
                Ok(PeerChange::Revoked { node_id }) => self.disconnect(node_id, CloseCode::Revoked),
                Ok(PeerChange::Approved {
                    node_id,
                    address: Some(_),
                    ..
                }) => self.ensure_dialer(node_id),
                Ok(PeerChange::Approved { .. }) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    // Missed changes: re-read the table and close what is no
                    // longer approved.
                    let live: Vec<NodeId> = self
                        .inner
                        .connections
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .keys()
                        .copied()
                        .collect();
                    for node in live {
                        if !matches!(self.inner.peers.decide(node), PeerDecision::Approved(_)) {
                            self.disconnect(node, CloseCode::Revoked);
                        }
                    }
                    self.dial_approved().await;
                }
                Err(_) => break,
            }
        }
    }

    /// Closes the connection to `node`, if any.
    pub fn disconnect(&self, node: NodeId, code: CloseCode) {
        let removed = self
            .inner
            .connections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&node);
        self.inner
            .connected
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&node);
        if let Some(c) = removed {
            info!(peer = %node.short(), ?code, "closing connection");
            close(&c.connection, code, code.reason());
        }
    }

    // ---- serving ---------------------------------------------------------------

    /// Registers a handshaken connection (keeping one per pair) and runs its sync
    /// session until it ends.
    async fn serve(
        &self,
        connection: Connection,
        node: NodeId,
        dialed_by: NodeId,
        recv: RecvStream,
        send: SendStream,
        leftover: Vec<u8>,
    ) {
        let Some(serial) = self.register(node, &connection, dialed_by) else {
            return;
        };
        let role = match self.inner.peers.decide(node) {
            PeerDecision::Approved(role) => role,
            _ => {
                self.unregister(node, serial);
                close(&connection, CloseCode::Revoked, CloseCode::Revoked.reason());
                return;
            }
        };
        // Streams beyond the first are not served; each attempt is checked
        // against the peer table again, so a revoked peer learns nothing new.
        let guard = tokio::spawn(refuse_extra_streams(
            connection.clone(),
            node,
            self.inner.peers.clone(),
        ));
        let info = PeerInfo {
            local: self.inner.local.node_id,
            peer: node,
            peer_role: role,
        };
        let recv = std::io::Cursor::new(leftover).chain(recv);
        let result = run_session(
            self.inner.sync.clone(),
            info,
            recv,
            send,
            self.inner.shutdown.clone(),
        )
        .await;
        guard.abort();
        match result {
            Ok(SessionEnd::Violation { code, reason }) => {
                warn!(peer = %node.short(), code, %reason, "closing connection: sync protocol violation");
                connection.close(VarInt::from_u32(code), reason.as_bytes());
            }
            Ok(SessionEnd::Shutdown) => close(
                &connection,
                CloseCode::ShuttingDown,
                CloseCode::ShuttingDown.reason(),
            ),
            Ok(SessionEnd::PeerClosed) => close(&connection, CloseCode::Normal, "stream closed"),
            Err(e) => {
                debug!(peer = %node.short(), error = %e, "sync session ended");
                close(&connection, CloseCode::Normal, "session ended");
            }
        }
        self.unregister(node, serial);
    }

    fn register(&self, node: NodeId, connection: &Connection, dialed_by: NodeId) -> Option<u64> {
        let serial = self.inner.serial.fetch_add(1, Ordering::Relaxed);
        let preferred_dialer = node.min(self.inner.local.node_id);
        let mut map = self
            .inner
            .connections
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(existing) = map.get(&node) {
            if existing.connection.close_reason().is_none() {
                if existing.dialed_by == preferred_dialer && dialed_by != preferred_dialer {
                    debug!(peer = %node.short(), "duplicate connection dropped (the other one wins)");
                    close(
                        connection,
                        CloseCode::DuplicateConnection,
                        CloseCode::DuplicateConnection.reason(),
                    );
                    return None;
                }
                debug!(peer = %node.short(), "older connection replaced");
                close(
                    &existing.connection,
                    CloseCode::DuplicateConnection,
                    CloseCode::DuplicateConnection.reason(),
                );
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
        self.inner
            .connected
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(node);
        Some(serial)
    }

    fn unregister(&self, node: NodeId, serial: u64) {
        let mut map = self
            .inner
            .connections
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if map.get(&node).is_some_and(|c| c.serial == serial) {
            map.remove(&node);
            self.inner
                .connected
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&node);
            info!(peer = %node.short(), "peer disconnected");
        }
    }
}

async fn refuse_extra_streams(connection: Connection, node: NodeId, peers: PeerTable) {
    while let Ok((mut send, mut recv)) = connection.accept_bi().await {
        if !matches!(peers.decide(node), PeerDecision::Approved(_)) {
            close(&connection, CloseCode::Revoked, CloseCode::Revoked.reason());
            return;
        }
        let _ = send.reset(VarInt::from_u32(0));
        let _ = recv.stop(VarInt::from_u32(0));
    }
}

fn refused_or(e: quinn::ConnectionError, what: &'static str) -> TransportError {
    match e {
        quinn::ConnectionError::ApplicationClosed(close) => {
            let code = u32::try_from(close.error_code.into_inner()).unwrap_or(u32::MAX);
            let reason = CloseCode::from_u32(code)
                .map(|c| c.reason().to_string())
                .unwrap_or_else(|| String::from_utf8_lossy(&close.reason).into_owned());
            TransportError::Refused { code, reason }
        }
        other => TransportError::Handshake(format!("{what}: {other}")),
    }
}

async fn write_handshake(
    handshake: &mut Handshake,
    send: &mut SendStream,
) -> Result<(), TransportError> {
    while let Some(bytes) = handshake.poll_transmit() {
        send.write_all(&bytes)
            .await
            .map_err(|e| TransportError::Handshake(e.to_string()))?;
    }
    Ok(())
}

async fn read_handshake_event<R: AsyncRead + Unpin>(
    handshake: &mut Handshake,
    recv: &mut R,
) -> Result<HandshakeEvent, TransportError> {
    let mut buf = [0u8; 1024];
    loop {
        if let Some(event) = handshake.poll_event() {
            return Ok(event);
        }
        let n = recv
            .read(&mut buf)
            .await
            .map_err(|e| TransportError::Handshake(e.to_string()))?;
        if n == 0 {
            return Err(TransportError::Handshake(
                "the stream closed during the handshake".into(),
            ));
        }
        handshake.handle_bytes(&buf[..n]);
    }
}
