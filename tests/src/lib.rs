//! Support for labnet's integration tests: the real `labnet` binary and nodes in
//! temporary data directories.
//!
//! The tests in `tests/tests/` run whole nodes: real processes of the `labnet`
//! binary, real SQLite files, real sockets on 127.0.0.1. This crate finds (and if
//! needed builds) the binary once per test process and gives each test its own
//! data directories.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

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
    cmd.env("RUST_LOG", "info").arg("--data-dir").arg(dir);
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
