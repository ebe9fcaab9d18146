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

/// Stdout of a finished command, as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Stderr of a finished command, as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A free UDP port on 127.0.0.1 (bound, read, released: good enough for tests
/// that then bind it themselves straight away).
pub fn free_udp_port() -> u16 {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap_or_else(|e| panic!("binding a UDP port: {e}"));
    socket
        .local_addr()
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("reading the bound port: {e}"))
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
    use std::path::{Path, PathBuf};
    use std::time::{Duration, Instant};

    use labnet_config::Role;
    use labnet_node::api::AdminRequest;
    use labnet_node::daemon::{Daemon, StartOptions};
    use labnet_node::data_dir::DataDir;
    use labnet_node::transport::TransportConfig;

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
