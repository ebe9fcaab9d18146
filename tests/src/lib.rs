//! Support for labnet's integration tests: the real `labnet` binary and nodes in
//! temporary data directories.
//!
//! The tests in `tests/tests/` run whole nodes: real processes of the `labnet`
//! binary, real SQLite files, real sockets on 127.0.0.1. This crate finds (and if
//! needed builds) the binary once per test process and gives each test its own
//! data directories.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub mod raw_peer;

/// Path of the `labnet` binary built from this workspace, built on first use.
///
/// Built through cargo (escargot) rather than guessed from the test's own path,
/// so `cargo test -p labnet-tests` works on a clean checkout too.
pub fn labnet_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let build = escargot::CargoBuild::new()
            .package("labnet")
            .bin("labnet")
            .current_release()
            .current_target()
            .run()
            .unwrap_or_else(|e| panic!("building the labnet binary failed: {e}"));
        build.path().to_path_buf()
    })
}

/// A `labnet` command on the data directory `dir`, with the environment cleared
/// of `LABNET_*` variables so the developer's own settings cannot leak in.
pub fn labnet(dir: &Path) -> Command {
    let mut cmd = Command::new(labnet_bin());
    for (key, _) in std::env::vars() {
        if key.starts_with("LABNET_") {
            cmd.env_remove(key);
        }
    }
    cmd.env_remove("RUST_LOG").arg("--data-dir").arg(dir);
    cmd
}

/// Runs `labnet --data-dir DIR ARGS...` to completion.
pub fn run_labnet(dir: &Path, args: &[&str]) -> Output {
    labnet(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running labnet {args:?}: {e}"))
}

/// Runs `labnet --data-dir DIR ARGS...` and asserts that it succeeded (its
/// stderr in the failure message); returns its output.
pub fn labnet_ok(dir: &Path, args: &[&str]) -> Output {
    let out = run_labnet(dir, args);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    out
}

/// Runs a `labnet` command that prints JSON (say `practice list --json`),
/// asserts that it succeeded, and parses what it printed.
pub fn json_of(dir: &Path, args: &[&str]) -> serde_json::Value {
    let out = labnet_ok(dir, args);
    serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", stdout(&out)))
}

/// Path of the partner cities' 25 practices shipped with the node
/// (`node/data/practices.json`), as the command line takes it.
pub fn partner_practices() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../node/data/practices.json")
        .display()
        .to_string()
}

/// Writes `text` to the file `dir/name` and returns its path.
pub fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    path
}

/// Stdout of a finished command, as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Stderr of a finished command, as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Ports tests pick for nodes that must restart on the same address: below
/// Linux's ephemeral range (32768-60999), so no socket bound to port 0 in a
/// test running alongside can take one while its node is down.
const FIXED_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A free UDP port on 127.0.0.1 for a node that keeps its address across
/// restarts (bound, read, released: the test binds it again straight away).
pub fn free_udp_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    // Start from a per-process point and walk on, so parallel tests (and test
    // processes) rarely even try the same port.
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let span = FIXED_PORTS.end - FIXED_PORTS.start;
    let _ = NEXT.compare_exchange(
        0,
        (std::process::id() % u32::from(span)) as u16 + 1,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    for _ in 0..span {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed) % span;
        let port = FIXED_PORTS.start + offset;
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free UDP port in {FIXED_PORTS:?}");
}

/// A `labnet run` process, killed if the test fails before stopping it.
pub struct RunningNode {
    child: Option<Child>,
}

impl RunningNode {
    /// Starts `labnet run` on `dir` with extra flags and environment, and waits
    /// until its admin socket answers.
    pub fn start(dir: &Path, extra: &[&str], envs: &[(&str, &str)]) -> RunningNode {
        let mut cmd = labnet(dir);
        cmd.arg("run")
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawning labnet run");
        let node = RunningNode { child: Some(child) };
        // Ready when the admin socket answers: a socket file alone may be left over
        // from a daemon that was killed.
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::os::unix::net::UnixStream::connect(dir.join("admin.sock")).is_err() {
            assert!(
                Instant::now() < deadline,
                "labnet run did not open its admin socket"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        node
    }

    /// The process id of the daemon.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Sends `signal` and waits for the process; returns its exit status and stderr.
    pub fn stop_with(mut self, signal: i32) -> (std::process::ExitStatus, String) {
        let mut child = self.child.take().expect("child");
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
        let output = wait_with_timeout(&mut child, Duration::from_secs(20));
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        (output, err)
    }
}

impl Drop for RunningNode {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn wait_with_timeout(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("labnet did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// In-process nodes: real daemons (real QUIC on 127.0.0.1, real SQLite files)
/// in the test's own tokio runtime, driven through the same admin operations
/// the CLI uses.
pub mod nodes {
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};
    use std::time::{Duration, Instant};

    use labnet_config::Role;
    use labnet_node::api::AdminRequest;
    use labnet_node::daemon::{Daemon, StartOptions};
    use labnet_node::data_dir::DataDir;
    use labnet_node::transport::TransportConfig;
    use labnet_protocol::NodeId;

    /// Transport settings for tests: quick redials, no pending rate limit.
    pub fn fast_transport() -> TransportConfig {
        TransportConfig {
            redial_base: Duration::from_millis(100),
            redial_max: Duration::from_millis(500),
            handshake_timeout: Duration::from_secs(5),
            ..TransportConfig::default()
        }
    }

    /// Creates a node in `root/name` listening on `127.0.0.1:port` (0 for any).
    pub fn init(root: &Path, name: &str, role: Role, port: u16) -> PathBuf {
        let dir = root.join(name);
        DataDir::new(&dir)
            .init(name, role, &format!("127.0.0.1:{port}"), &[])
            .unwrap_or_else(|e| panic!("init {name}: {e}"));
        dir
    }

    /// Starts the daemon of an initialized node.
    pub async fn start(dir: &Path, transport: TransportConfig) -> Daemon {
        let mut options = StartOptions::new(DataDir::new(dir), vec![]);
        options.transport = transport;
        Daemon::start(options)
            .await
            .unwrap_or_else(|e| panic!("starting {}: {e}", dir.display()))
    }

    /// Creates and starts a node `name` with `role` in `root/name`, on any port.
    pub async fn start_node(root: &Path, name: &str, role: Role) -> Daemon {
        start(&init(root, name, role, 0), fast_transport()).await
    }

    /// Creates and starts a partner city `name` in `root/name`, on any port.
    pub async fn start_partner(root: &Path, name: &str) -> Daemon {
        start_node(root, name, Role::Partner).await
    }

    /// A fresh temporary directory and partner cities named `names` started in
    /// it, in that order: the set-up most network tests begin with. The
    /// directory must outlive the nodes, so the test keeps it
    /// (`let (_tmp, [a, b]) = partners_in_tmp([..]).await`).
    pub async fn partners_in_tmp<const N: usize>(
        names: [&str; N],
    ) -> (tempfile::TempDir, [Daemon; N]) {
        let tmp = tempfile::tempdir().expect("creating a temporary directory");
        let mut nodes = Vec::with_capacity(N);
        for name in names {
            nodes.push(start_partner(tmp.path(), name).await);
        }
        let Ok(nodes) = <[Daemon; N]>::try_from(nodes) else {
            unreachable!("one node was started per name")
        };
        (tmp, nodes)
    }

    /// Creates and starts `count` partner cities, `city0`, `city1`, ... in `root`.
    pub async fn start_cities(root: &Path, count: usize) -> Vec<Daemon> {
        let mut nodes = Vec::with_capacity(count);
        for i in 0..count {
            nodes.push(start_partner(root, &format!("city{i}")).await);
        }
        nodes
    }

    /// Shuts the daemons down, one after the other.
    pub async fn shutdown_all(daemons: impl IntoIterator<Item = Daemon>) {
        for daemon in daemons {
            daemon.shutdown().await;
        }
    }

    /// Publishes (or edits) `name` on `d` with `text` as its description, as
    /// `labnet share` does: the signed publication and its disclosure line
    /// in the store, then the change notification to the sync sessions.
    /// Returns its id and heads.
    pub async fn publish(
        d: &Daemon,
        name: &str,
        text: &str,
        scope: &labnet_node::trust::Scope,
    ) -> (String, Vec<automerge::ChangeHash>) {
        let store = &d.context().store;
        let (doc_id, heads) =
            labnet_node::testing::publish_sample_via(store, d.node_id(), name, text, scope).await;
        announce(d, &doc_id);
        (doc_id, heads)
    }

    /// Tells the node's sync sessions that `doc_id` changed in its store, as
    /// the sharing code does after each write.
    pub fn announce(d: &Daemon, doc_id: &str) {
        let doc_id = labnet_protocol::sync::DocId::new(doc_id.to_string()).unwrap();
        let _ = d.context().sync.local_changes.send(doc_id);
    }

    /// The publication id in the reply to a [`share`].
    pub fn doc_id_of(shared: &serde_json::Value) -> String {
        text_field(shared, "doc_id")
    }

    /// Shares `practice_id` at `d` with `scope`, as `labnet share` does;
    /// returns the reply.
    pub async fn share(d: &Daemon, practice_id: &str, scope: &str) -> serde_json::Value {
        admin(
            d,
            AdminRequest::Share {
                practice_id: practice_id.into(),
                scope: scope.into(),
            },
        )
        .await
        .unwrap_or_else(|e| panic!("share {practice_id}: {e}"))
    }

    /// Every entry of `d`'s feed, as `labnet feed list` shows them.
    pub async fn feed_entries(d: &Daemon) -> Vec<labnet_node::api::FeedEntry> {
        let value = admin(
            d,
            AdminRequest::FeedList {
                city: None,
                area: None,
                since: None,
            },
        )
        .await
        .unwrap();
        serde_json::from_value(value).unwrap()
    }

    /// Whether `origin`'s status shows every one of `nodes` confirmed deleting
    /// its retracted publication `doc_id`.
    pub async fn deletion_confirmed(origin: &Daemon, doc_id: &str, nodes: &[NodeId]) -> bool {
        let status = admin(origin, AdminRequest::Status).await.unwrap();
        status["retractions"].as_array().unwrap().iter().any(|r| {
            let by: Vec<Option<NodeId>> = r["confirmed_by"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_str().and_then(|s| s.parse().ok()))
                .collect();
            r["doc_id"] == doc_id && nodes.iter().all(|n| by.contains(&Some(*n)))
        })
    }

    /// The ids of `d`'s own live (not retracted) publications.
    pub async fn live_publications(d: &Daemon) -> Vec<String> {
        d.context()
            .store
            .call(|st| {
                st.publication_rows()
                    .unwrap()
                    .into_iter()
                    .filter(|r| !r.retracted)
                    .map(|r| r.doc_id)
                    .collect()
            })
            .await
    }

    /// Runs an admin request against a running daemon, as the CLI would.
    pub async fn admin(
        daemon: &Daemon,
        request: AdminRequest,
    ) -> Result<serde_json::Value, String> {
        daemon.context().control.handle(request).await.into_result()
    }

    /// The contact string of a running daemon.
    pub fn contact(daemon: &Daemon) -> String {
        format!("labnet://{}@{}", daemon.node_id(), daemon.listen_addr())
    }

    /// `from` adds `to` by its contact, as `labnet peers add` does: `from`
    /// approves `to` and dials it.
    pub async fn add_peer(from: &Daemon, to: &Daemon) {
        let request = AdminRequest::PeersAdd {
            contact: contact(to),
            role: None,
        };
        admin(from, request)
            .await
            .unwrap_or_else(|e| panic!("peers add: {e}"));
    }

    /// Pairs two nodes the manual way: each adds the other by contact.
    pub async fn pair_by_contacts(a: &Daemon, b: &Daemon) {
        add_peer(a, b).await;
        add_peer(b, a).await;
    }

    /// Pairs `a` and `b` by contacts and asserts that they connect within `wait`.
    pub async fn pair_connected(a: &Daemon, b: &Daemon, wait: Duration) {
        pair_by_contacts(a, b).await;
        assert!(
            eventually(wait, async || both_connected(a, b)).await,
            "the paired nodes did not connect within {wait:?}"
        );
    }

    /// `d`'s admin approves the node `peer`, as `labnet peers approve` does,
    /// in `role` (`None`: the role it asked for).
    pub async fn approve(d: &Daemon, peer: NodeId, role: impl Into<Option<Role>>) {
        let request = AdminRequest::PeersApprove {
            node_id: peer.to_string(),
            role: role.into(),
        };
        admin(d, request)
            .await
            .unwrap_or_else(|e| panic!("peers approve: {e}"));
    }

    /// `d`'s admin revokes the node `peer`, as `labnet peers revoke` does.
    pub async fn revoke(d: &Daemon, peer: NodeId) {
        let request = AdminRequest::PeersRevoke {
            node_id: peer.to_string(),
        };
        admin(d, request)
            .await
            .unwrap_or_else(|e| panic!("peers revoke: {e}"));
    }

    /// Whether `daemon` has a live connection to the node `peer`.
    pub fn is_connected(daemon: &Daemon, peer: NodeId) -> bool {
        daemon.context().transport.is_connected(peer)
    }

    /// Whether `a` and `b` are connected, as both of them see it.
    pub fn both_connected(a: &Daemon, b: &Daemon) -> bool {
        is_connected(a, b.node_id()) && is_connected(b, a.node_id())
    }

    /// Whether neither `a` nor `b` holds a connection to the other.
    pub fn neither_connected(a: &Daemon, b: &Daemon) -> bool {
        !is_connected(a, b.node_id()) && !is_connected(b, a.node_id())
    }

    /// Creates a one-use invite for `role` on `inviter`, valid for
    /// `expires_secs`; returns the reply (with `token` and `invite_id`).
    pub async fn create_invite(
        inviter: &Daemon,
        role: Role,
        expires_secs: u64,
    ) -> serde_json::Value {
        let request = AdminRequest::InviteCreate {
            role,
            expires_secs,
            uses: 1,
        };
        admin(inviter, request)
            .await
            .unwrap_or_else(|e| panic!("invite create: {e}"))
    }

    /// The token of an invite, from the reply of [`create_invite`].
    pub fn token_of(created: &serde_json::Value) -> String {
        text_field(created, "token")
    }

    /// The text field `field` of an admin reply.
    fn text_field(reply: &serde_json::Value, field: &str) -> String {
        reply[field]
            .as_str()
            .unwrap_or_else(|| panic!("no {field} in {reply}"))
            .to_string()
    }

    /// `joiner` accepts the invite `token`: the reply (the inviter's `name`,
    /// ...), or the reason it was refused.
    pub async fn accept_invite(
        joiner: &Daemon,
        token: impl Into<String>,
    ) -> Result<serde_json::Value, String> {
        let token = token.into();
        admin(joiner, AdminRequest::InviteAccept { token }).await
    }

    /// `joiner` joins `inviter` as `role` with a fresh one-use invite valid for
    /// an hour; returns the reply to the accept.
    pub async fn invite(inviter: &Daemon, joiner: &Daemon, role: Role) -> serde_json::Value {
        let token = token_of(&create_invite(inviter, role, 3600).await);
        accept_invite(joiner, token)
            .await
            .unwrap_or_else(|e| panic!("invite accept: {e}"))
    }

    /// `inviter` invites each of `joiners` as a partner (one-use invites valid
    /// for an hour), and asserts that it is connected with every one of them
    /// within `wait`.
    pub async fn invite_partners(inviter: &Daemon, joiners: &[&Daemon], wait: Duration) {
        for joiner in joiners {
            invite(inviter, joiner, Role::Partner).await;
        }
        assert!(
            eventually(wait, async || joiners
                .iter()
                .all(|j| both_connected(inviter, j)))
            .await,
            "the invited partners did not all connect within {wait:?}"
        );
    }

    /// Whether `d` holds a copy of `doc_id`.
    pub async fn holds(d: &Daemon, doc_id: &str) -> bool {
        replicas(d).await.contains_key(doc_id)
    }

    /// The replicas (copies of other nodes' publications) a node holds: doc id
    /// → heads.
    pub async fn replicas(d: &Daemon) -> BTreeMap<String, Vec<automerge::ChangeHash>> {
        d.context()
            .store
            .call(|s| {
                s.replicas()
                    .unwrap()
                    .into_iter()
                    .map(|(id, _)| {
                        let heads = s.replica_entry(&id).unwrap().unwrap().1;
                        (id, heads)
                    })
                    .collect()
            })
            .await
    }

    /// Polls `check` until it holds or `timeout` passes; returns whether it held.
    pub async fn eventually(timeout: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if check().await {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}
