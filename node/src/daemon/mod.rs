//! The daemon: a node's long-running process, from start to clean shutdown.
//!
//! [`Daemon::start`] does everything that can fail at start, in an order that
//! leaves nothing behind when a step fails:
//!
//! 1. take the instance lock (`daemon.lock`), so two daemons never share a store;
//! 2. read and validate the config, load the identity, open the store;
//! 3. bind the listen address (UDP, for QUIC);
//! 4. bind the admin socket the CLI talks to;
//! 5. bind the console's and the feed URLs' TCP listeners, when they are on.
//!
//! It also follows the peer table: when the admin changes an approved peer's
//! role, the live connection to that peer is closed at once (a session serves
//! the view of the role it started with), and the next one starts from a full
//! check of our index against the new role ([`crate::trust::peers`]). A
//! revocation closes the connection in the transport itself.
//!
//! It returns a [`Daemon`] that serves until [`Daemon::shutdown`], which stops
//! accepting admin requests, closes peer connections, checkpoints the store and
//! removes the socket. The binary's `main` only wires signals to `shutdown`;
//! tests start many daemons in one process, each on port 0.

mod listen;
mod sessions;

use std::collections::HashSet;
use std::fs::File;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use labnet_config::{Config, Overrides, Role};

use labnet_protocol::NodeId;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::admin;
use crate::console::auth::Access;
use crate::console::metrics::{Metrics, MetricsSource};
use crate::console::{self, ConsoleState};
use crate::control::{Control, LiveView};
use crate::data_dir::{DataDir, DataDirError};
use crate::identity::Identity;
use crate::store::StoreHandle;
use crate::sync::driver::DriverContext;
use crate::sync::SessionConfig;
use crate::transport::{
    make_endpoint, LocalNode, Transport, TransportConfig, TransportError, TransportParts,
};
use crate::trust::PeerTable;

use listen::{acquire_lock, bind_http, bind_listen, serve_admin};
use sessions::{end_sessions_on_role_change, session_handler};

/// How long shutdown waits for quinn to release the UDP port: closed
/// connections drain for three probe timeouts first, which after a loss on a
/// busy machine can be seconds.
const PORT_RELEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// Another daemon holds this data directory.
    #[error("another labnet daemon ({holder}) is already running on {dir}")]
    AlreadyRunning {
        /// The data directory.
        dir: PathBuf,
        /// Who holds the lock, e.g. `pid 1234`.
        holder: String,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}{hint}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The operating system's reason.
        source: std::io::Error,
        /// What to do about it.
        hint: &'static str,
    },
    /// The admin socket could not be bound.
    #[error("cannot open the admin socket {path}: {source}")]
    AdminSocket {
        /// The socket path.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The console's or the feed URLs' address could not be bound.
    #[error(
        "cannot listen for the {what} on {addr}: {source} (set {key} in config.toml, or \"off\")"
    )]
    HttpListen {
        /// `console` or `feed URLs`.
        what: &'static str,
        /// The config key to change.
        key: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The data directory (its instance lock included), config, identity or
    /// store failed.
    #[error("{0}")]
    DataDir(#[from] DataDirError),
    /// The QUIC endpoint could not be set up.
    #[error("{0}")]
    Transport(#[from] TransportError),
    /// Checking our publications' histories against the configured rules failed.
    #[error("checking the publications against the anonymization settings: {0}")]
    Recheck(#[from] crate::share::ShareError),
}

/// Log directives that apply whatever `RUST_LOG` asks for. Automerge logs the
/// values it inserts at trace level, and a node's private documents (the
/// roster, the practices before anonymization) hold personal data: a log line
/// must never carry it, so Automerge and autosurgeon only ever log warnings.
pub const FORCED_LOG_DIRECTIVES: &[&str] = &["automerge=warn", "autosurgeon=warn"];

/// Local publication changes that may queue for a slow session before it must
/// restart (and catch up from the store).
const LOCAL_CHANGES_CAPACITY: usize = 16 * 1024;

/// How long the console and the feed URLs may take to finish their requests at
/// shutdown before they are cut off.
const HTTP_SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Sync notices that may queue for a slow listener.
const NOTICES_CAPACITY: usize = 16 * 1024;

/// State shared by the daemon's tasks.
pub struct NodeContext {
    /// Validated settings.
    pub config: Config,
    /// Key pair, certificate, NodeId.
    pub identity: Arc<Identity>,
    /// The one store.
    pub store: StoreHandle,
    /// Who may connect.
    pub peers: PeerTable,
    /// The data directory.
    pub data_dir: DataDir,
    /// Live state: bound address, start time, connected peers.
    pub live: Arc<Live>,
    /// The admin operations, with live state.
    pub control: Control,
    /// QUIC connections to peers.
    pub transport: Transport,
    /// What sync sessions share: the store, change notifications, notices.
    pub sync: DriverContext,
    /// Event counters for `/metrics`.
    pub metrics: Metrics,
}

impl std::fmt::Debug for NodeContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        crate::identity::fmt_node_only(f, "NodeContext", "node", &self.identity.node_id())
    }
}

impl NodeContext {
    /// The node's id.
    pub fn node_id(&self) -> NodeId {
        self.identity.node_id()
    }
}

/// The daemon's live state, as admin operations see it.
#[derive(Debug)]
pub struct Live {
    /// The listen address actually bound.
    pub listen_addr: SocketAddr,
    /// When the daemon started.
    pub started: Instant,
    /// Peers with an open, handshaken connection. The transport keeps it current.
    pub connected: Arc<RwLock<HashSet<NodeId>>>,
    /// The console's login tokens and sessions, when the console is on.
    pub console: Option<Access>,
    /// Where the feed URLs are served, when they are on.
    pub feed_addr: Option<SocketAddr>,
}

impl LiveView for Live {
    fn is_connected(&self, node_id: NodeId) -> bool {
        self.connected
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&node_id)
    }
    fn listen_addr(&self) -> SocketAddr {
        self.listen_addr
    }
    fn started(&self) -> Instant {
        self.started
    }
    fn console_login_url(&self) -> Option<String> {
        self.console.as_ref().map(Access::login_url)
    }
}

/// The admin operations on a stopped node, working directly on its store.
///
/// Only with the instance lock held ([`DataDir::lock_offline`]), and only
/// while it is: a daemon running on the store would never see what these
/// write, and one starting meanwhile would write it at the same time. The
/// caller keeps `lock` until it is done with the returned [`Control`].
pub async fn offline_control(
    lock: &crate::data_dir::OfflineLock,
    overrides: &[Overrides],
) -> Result<Control, DaemonError> {
    let data_dir = lock.data_dir();
    let config = data_dir.load_config(overrides)?;
    let identity = data_dir.load_identity()?;
    let store = StoreHandle::new(data_dir.open_store()?);
    let peers = PeerTable::load(store.clone())
        .await
        .map_err(DataDirError::from)?;
    Ok(Control {
        config,
        node_id: identity.node_id(),
        store,
        peers,
        live: None,
        transport: None,
        local_changes: None,
    })
}

/// How to start a daemon.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// The node's data directory.
    pub data_dir: DataDir,
    /// Environment and flag overrides, lowest precedence first.
    pub overrides: Vec<Overrides>,
    /// Transport limits and timeouts (tests shorten them).
    pub transport: TransportConfig,
}

impl StartOptions {
    /// Options for the node in `data_dir`, with default limits.
    pub fn new(data_dir: DataDir, overrides: Vec<Overrides>) -> StartOptions {
        StartOptions {
            data_dir,
            overrides,
            transport: TransportConfig::default(),
        }
    }
}

/// A running daemon.
#[derive(Debug)]
pub struct Daemon {
    /// Its Debug shows only the node's id (see [`NodeContext`]).
    context: Arc<NodeContext>,
    shutdown_tx: watch::Sender<bool>,
    admin_task: JoinHandle<()>,
    /// The console's and the feed URLs' servers.
    http_tasks: Vec<JoinHandle<()>>,
    /// Ends the sessions of peers whose role changed.
    role_task: JoinHandle<()>,
    /// Held for the daemon's life: the flock is the instance lock.
    _lock: File,
}

impl Daemon {
    /// Starts a daemon on an initialized data directory; see the module docs.
    pub async fn start(options: StartOptions) -> Result<Daemon, DaemonError> {
        let data_dir = options.data_dir;
        let lock = acquire_lock(&data_dir)?;
        let config = data_dir.load_config(&options.overrides)?;
        let identity = data_dir.load_identity()?;
        let mut store = data_dir.open_store()?;
        // The settings may be stricter than when the node last ran (a higher
        // minimum, fewer `not_names`): every publication's whole history is
        // checked against them before any peer can be served, and those that
        // fail are re-issued. Peers learn of it from the inventory.
        let reissued = crate::share::recheck_publications(
            &mut store,
            config.role,
            identity.node_id(),
            &config.name,
            &crate::share::AnonymizationSettings::from_config(&config),
        )?;
        if !reissued.is_empty() {
            info!(
                reissued = reissued.len(),
                "publications re-issued under today's anonymization settings"
            );
        }
        let socket = bind_listen(config.listen)?;
        let listen_addr = socket.local_addr().map_err(|source| DaemonError::Listen {
            addr: config.listen,
            source,
            hint: "",
        })?;
        let admin_path = data_dir.admin_socket();
        let listener = admin::bind(&admin_path).map_err(|source| DaemonError::AdminSocket {
            path: admin_path.clone(),
            source,
        })?;

        let console_listener = config
            .console_listen
            .map(|addr| bind_http(addr, "console", "console.listen"))
            .transpose()?;
        let feed_listener = config
            .feed_listen
            .map(|addr| bind_http(addr, "feed URLs", "feed.listen"))
            .transpose()?;
        let console_access = console_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
            .map(Access::new);
        let feed_addr = feed_listener.as_ref().and_then(|l| l.local_addr().ok());

        let transport_config = options.transport;
        let endpoint = make_endpoint(socket, &identity, &transport_config)?;

        let store_path = store.path().to_path_buf();
        let store = StoreHandle::new(store);
        let peers = PeerTable::load(store.clone())
            .await
            .map_err(DataDirError::from)?;
        let connected = Arc::new(RwLock::new(HashSet::new()));
        let live = Arc::new(Live {
            listen_addr,
            started: Instant::now(),
            connected: Arc::clone(&connected),
            console: console_access.clone(),
            feed_addr,
        });
        let metrics = Metrics::default();
        let (local_changes, _) = broadcast::channel(LOCAL_CHANGES_CAPACITY);
        let (notices, _) = broadcast::channel(NOTICES_CAPACITY);
        let sync = DriverContext {
            store: store.clone(),
            store_path,
            local_changes,
            notices,
            config: SessionConfig {
                replicas_per_origin_max: config.limits.replicas_per_origin as usize,
                replica_bytes_per_origin_max: config.limits.replica_bytes_per_origin,
                ..SessionConfig::default()
            },
        };
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let identity = Arc::new(identity);
        let local = LocalNode {
            node_id: identity.node_id(),
            name: config.name.clone(),
            role: config.role,
        };
        let transport = Transport::start(TransportParts {
            endpoint,
            identity: Arc::clone(&identity),
            local,
            peers: peers.clone(),
            sessions: session_handler(
                sync.clone(),
                Arc::clone(&identity),
                config.role,
                shutdown_rx.clone(),
                metrics.clone(),
            ),
            config: transport_config,
            connected,
            shutdown: shutdown_rx.clone(),
        });
        let control = Control {
            config: config.clone(),
            node_id: identity.node_id(),
            store: store.clone(),
            peers: peers.clone(),
            live: Some(Arc::clone(&live) as Arc<dyn LiveView>),
            transport: Some(transport.clone()),
            local_changes: Some(sync.local_changes.clone()),
        };
        let context = Arc::new(NodeContext {
            config,
            identity,
            store,
            peers,
            data_dir,
            live,
            control,
            transport,
            sync,
            metrics,
        });
        let mut http_tasks = Vec::new();
        if let (Some(listener), Some(access)) = (console_listener, console_access) {
            let state = ConsoleState {
                control: context.control.clone(),
                access,
                metrics: MetricsSource {
                    control: context.control.clone(),
                    transport: context.transport.clone(),
                    metrics: context.metrics.clone(),
                },
            };
            http_tasks.push(tokio::spawn(console::serve(
                listener,
                console::router(state),
                shutdown_rx.clone(),
            )));
        }
        if let Some(listener) = feed_listener {
            http_tasks.push(tokio::spawn(console::serve(
                listener,
                console::feed_http::router(context.control.clone()),
                shutdown_rx.clone(),
            )));
        }
        let role_task = tokio::spawn(end_sessions_on_role_change(
            context.peers.subscribe(),
            context.transport.clone(),
            Arc::clone(&context.live.connected),
            shutdown_rx.clone(),
        ));
        let admin_task = tokio::spawn(serve_admin(Arc::clone(&context), listener, shutdown_rx));
        info!(
            node = %context.node_id(),
            name = %context.config.name,
            role = %context.config.role,
            listen = %listen_addr,
            "node started"
        );
        Ok(Daemon {
            context,
            shutdown_tx,
            admin_task,
            http_tasks,
            role_task,
            _lock: lock,
        })
    }

    /// The shared node state (for tests and the transport).
    pub fn context(&self) -> &Arc<NodeContext> {
        &self.context
    }

    /// The node's id.
    pub fn node_id(&self) -> NodeId {
        self.context.node_id()
    }

    /// The bound listen address.
    pub fn listen_addr(&self) -> SocketAddr {
        self.context.live.listen_addr
    }

    /// Where the console listens, when it is on (the real port when 0 was
    /// configured).
    pub fn console_addr(&self) -> Option<SocketAddr> {
        self.context.live.console.as_ref().map(Access::addr)
    }

    /// Where the feed URLs are served, when they are on.
    pub fn feed_addr(&self) -> Option<SocketAddr> {
        self.context.live.feed_addr
    }

    /// A fresh console login link (what `labnet console` prints), when the
    /// console is on.
    pub fn console_login_url(&self) -> Option<String> {
        self.context.live.console_login_url()
    }

    /// Stops the daemon: admin socket closed and removed, store checkpointed, lock
    /// released.
    pub async fn shutdown(self) {
        let _ = self.shutdown_tx.send(true);
        self.context.transport.shutdown().await;
        let _ = self.admin_task.await;
        let _ = self.role_task.await;
        // A browser may hold a request open; the HTTP servers get a bounded
        // time to finish, then are dropped.
        for task in self.http_tasks {
            let abort = task.abort_handle();
            if tokio::time::timeout(HTTP_SHUTDOWN_GRACE, task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        let socket = self.context.data_dir.admin_socket();
        if let Err(e) = std::fs::remove_file(&socket) {
            if e.kind() != std::io::ErrorKind::NotFound {
                warn!(path = %socket.display(), error = %e, "could not remove the admin socket");
            }
        }
        if let Err(e) = self.context.store.call(|s| s.checkpoint()).await {
            warn!(error = %e, "store checkpoint at shutdown failed; the WAL will be replayed at next start");
        }
        let node = self.context.node_id();
        let listen = self.context.live.listen_addr;
        drop(self.context);
        // The UDP port is released when quinn's endpoint driver notices its last
        // handle is gone; wait (briefly) until the port can be bound again, so a
        // restart right after shutdown finds it free.
        let waited = Instant::now();
        while UdpSocket::bind(listen).is_err() {
            if waited.elapsed() > PORT_RELEASE_WAIT {
                warn!(%listen, "the UDP port is still bound after shutdown");
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        info!(node = %node, "node stopped");
    }
}

/// Starts a daemon, creating the node first if the data directory holds none, then
/// serves until `shutdown` completes. This is what `labnet run` does.
pub async fn run(
    options: StartOptions,
    default_name: &str,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), DaemonError> {
    if !options.data_dir.is_initialized() {
        let report = options.data_dir.init(
            default_name,
            Role::Partner,
            labnet_config::DEFAULT_LISTEN,
            &options.overrides,
        )?;
        info!(node = %report.node_id, dir = %report.data_dir.display(), "created a new node");
    }
    let daemon = Daemon::start(options).await?;
    shutdown.await;
    info!("shutting down");
    daemon.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::AdminRequest;

    async fn started(tmp: &tempfile::TempDir) -> Daemon {
        let dir = DataDir::new(tmp.path().join("n"));
        dir.init("Test", Role::Partner, "127.0.0.1:0", &[]).unwrap();
        Daemon::start(StartOptions::new(dir, vec![])).await.unwrap()
    }

    #[tokio::test]
    async fn status_over_the_admin_socket_then_clean_shutdown() {
        let tmp = tempfile::tempdir().unwrap();
        let daemon = started(&tmp).await;
        let socket = daemon.context().data_dir.admin_socket();
        let node_id = daemon.node_id();
        let s = socket.clone();
        let result = tokio::task::spawn_blocking(move || admin::call(&s, &AdminRequest::Status))
            .await
            .unwrap()
            .unwrap();
        let report: crate::api::StatusReport = serde_json::from_value(result).unwrap();
        assert_eq!(report.node_id, node_id.to_string());
        assert_eq!(report.name, "Test");
        assert_ne!(report.listen, "127.0.0.1:0", "the real port is reported");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777,
            0o600
        );
        daemon.shutdown().await;
        assert!(!socket.exists());
        assert!(matches!(
            admin::call(&socket, &AdminRequest::Status),
            Err(admin::AdminError::NotRunning { .. })
        ));
    }

    #[tokio::test]
    async fn a_second_daemon_on_the_same_dir_names_the_first() {
        let tmp = tempfile::tempdir().unwrap();
        let daemon = started(&tmp).await;
        let err = Daemon::start(StartOptions::new(daemon.context().data_dir.clone(), vec![]))
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        daemon.shutdown().await;
    }

    #[tokio::test]
    async fn a_port_in_use_is_reported_with_a_hint() {
        let tmp = tempfile::tempdir().unwrap();
        let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
        let dir = DataDir::new(tmp.path().join("n"));
        let addr = taken.local_addr().unwrap().to_string();
        dir.init("Test", Role::Partner, &addr, &[]).unwrap();
        let err = Daemon::start(StartOptions::new(dir, vec![]))
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&addr) && msg.contains("another program uses this port"),
            "{msg}"
        );
    }
}
