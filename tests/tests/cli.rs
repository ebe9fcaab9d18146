//! The `labnet` binary as an operator uses it: each command's success and failure
//! paths, on real data directories and real processes.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use labnet_tests::{labnet, run_labnet, stderr, stdout};

/// A `labnet run` process, killed if the test fails before stopping it.
struct RunningNode {
    child: Option<Child>,
}

impl RunningNode {
    fn start(dir: &Path, extra: &[&str], envs: &[(&str, &str)]) -> RunningNode {
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

    fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Sends `signal` and waits for the process; returns its exit status and stderr.
    fn stop_with(mut self, signal: i32) -> (std::process::ExitStatus, String) {
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

fn init(dir: &Path, name: &str) -> String {
    let out = run_labnet(
        dir,
        &["init", "--name", name, "--listen", "127.0.0.1:0", "--json"],
    );
    assert!(out.status.success(), "init failed: {}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("init --json");
    report["node_id"].as_str().expect("node_id").to_string()
}

fn status_json(dir: &Path) -> serde_json::Value {
    let out = run_labnet(dir, &["status", "--json"]);
    assert!(out.status.success(), "status failed: {}", stderr(&out));
    serde_json::from_str(&stdout(&out)).expect("status --json")
}

#[test]
fn init_creates_a_node_and_a_second_init_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("modena");
    let out = run_labnet(&dir, &["init", "--name", "Modena"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("NodeId:"), "{}", stdout(&out));
    let config = std::fs::read_to_string(dir.join("config.toml")).unwrap();
    for key in [
        "name = \"Modena\"",
        "role = \"partner\"",
        "listen = \"0.0.0.0:7447\"",
        "min_count = 10",
        "format = \"human\"",
    ] {
        assert!(config.contains(key), "config.toml lacks {key}:\n{config}");
    }
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(dir.join("node.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let key_before = std::fs::read(dir.join("node.key")).unwrap();

    let again = run_labnet(&dir, &["init", "--name", "Other"]);
    assert_eq!(again.status.code(), Some(1));
    let msg = stderr(&again);
    assert!(msg.contains("already holds a labnet node"), "{msg}");
    assert_eq!(msg.trim().lines().count(), 1, "one-line reason: {msg}");
    assert_eq!(std::fs::read(dir.join("node.key")).unwrap(), key_before);
    assert_eq!(
        std::fs::read_to_string(dir.join("config.toml")).unwrap(),
        config
    );
}

#[test]
fn init_refuses_bad_arguments_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("n");
    for args in [
        vec!["init", "--name", ""],
        vec!["init", "--name", "A", "--listen", "0.0.0.0:70000"],
        vec!["init", "--name", "A", "--role", "admin"],
    ] {
        let out = run_labnet(&dir, &args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(!stderr(&out).is_empty());
        assert!(!dir.exists(), "{args:?} left files behind");
    }
}

#[test]
fn status_without_a_daemon_says_so_with_exit_3() {
    let tmp = tempfile::tempdir().unwrap();
    init(tmp.path(), "Idle");
    let out = run_labnet(tmp.path(), &["status"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("not running"), "{}", stderr(&out));
}

#[test]
fn run_status_id_and_clean_shutdown_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let node_id = init(tmp.path(), "Mechelen");
    let node = RunningNode::start(tmp.path(), &[], &[]);
    let status = status_json(tmp.path());
    assert_eq!(status["node_id"], node_id.as_str());
    assert_eq!(status["name"], "Mechelen");
    assert_eq!(status["role"], "partner");
    assert_eq!(status["pid"], node.pid());
    assert!(status["store_bytes"].as_u64().unwrap() > 0);
    assert_eq!(status["documents"]["private"], 0);
    let human = stdout(&run_labnet(tmp.path(), &["status"]));
    assert!(
        human.contains("Mechelen") && human.contains(&node_id),
        "{human}"
    );

    let id = run_labnet(tmp.path(), &["id", "--json"]);
    let id: serde_json::Value = serde_json::from_str(&stdout(&id)).unwrap();
    assert_eq!(id["node_id"], node_id.as_str());
    let contact: labnet_protocol::Contact = id["contact"]
        .as_str()
        .unwrap()
        .parse()
        .expect("contact parses");
    assert_eq!(contact.node_id.to_string(), node_id);

    let (exit, log) = node.stop_with(15);
    assert!(exit.success(), "exit {exit:?}: {log}");
    assert!(log.contains("node stopped"), "{log}");
    assert!(
        !tmp.path().join("admin.sock").exists(),
        "socket removed at shutdown"
    );
    let wal = tmp.path().join("labnet.db-wal");
    assert!(
        !wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0,
        "WAL checkpointed at shutdown"
    );
}

#[test]
fn sigint_also_shuts_down_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    init(tmp.path(), "Vienna");
    let node = RunningNode::start(tmp.path(), &[], &[]);
    let (exit, log) = node.stop_with(2);
    assert!(exit.success(), "{log}");
    assert!(!tmp.path().join("admin.sock").exists());
}

#[test]
fn a_second_run_on_the_same_data_dir_names_the_running_process() {
    let tmp = tempfile::tempdir().unwrap();
    init(tmp.path(), "Livadia");
    let node = RunningNode::start(tmp.path(), &[], &[]);
    let second = run_labnet(tmp.path(), &["run"]);
    assert_eq!(second.status.code(), Some(1));
    let msg = stderr(&second);
    assert!(msg.contains(&format!("pid {}", node.pid())), "{msg}");
    // The first daemon is unharmed.
    assert_eq!(status_json(tmp.path())["name"], "Livadia");
}

#[test]
fn run_on_an_empty_data_dir_creates_a_node_first() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fresh");
    let node = RunningNode::start(&dir, &["--listen", "127.0.0.1:0"], &[]);
    let status = status_json(&dir);
    assert!(!status["name"].as_str().unwrap().is_empty());
    assert!(dir.join("node.key").exists() && dir.join("config.toml").exists());
    drop(node);
}

#[test]
fn a_bad_config_is_refused_naming_key_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    init(tmp.path(), "Athens");
    let config = tmp.path().join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let cases = [
        (
            text.replace("min_count = 10", "min_count = 0"),
            "anonymization.min_count",
        ),
        (
            text.replace("listen = \"127.0.0.1:0\"", "listen = \"127.0.0.1:99999\""),
            "node.listen",
        ),
        (text.replace("[log]", "[log]\ncolour = true"), "colour"),
        (text.replace("role = \"partner\"", "role = 7"), "line"),
    ];
    for (bad, expected) in cases {
        std::fs::write(&config, &bad).unwrap();
        let out = run_labnet(tmp.path(), &["run"]);
        assert_eq!(out.status.code(), Some(1), "{expected}");
        let msg = stderr(&out);
        assert!(
            msg.contains(expected) && msg.contains("line "),
            "{expected}: {msg}"
        );
        assert!(!tmp.path().join("admin.sock").exists());
    }
}

#[test]
fn environment_overrides_the_file_and_flags_override_the_environment() {
    let tmp = tempfile::tempdir().unwrap();
    init(tmp.path(), "FileName");
    let node = RunningNode::start(tmp.path(), &[], &[("LABNET_NAME", "EnvName")]);
    assert_eq!(status_json(tmp.path())["name"], "EnvName");
    drop(node);
    let node = RunningNode::start(
        tmp.path(),
        &["--name", "FlagName"],
        &[("LABNET_NAME", "EnvName")],
    );
    assert_eq!(status_json(tmp.path())["name"], "FlagName");
    drop(node);
    let out = run_labnet(tmp.path(), &["run", "--listen", "nowhere"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--listen"), "{}", stderr(&out));
}

#[test]
fn json_logs_are_one_object_per_line() {
    let tmp = tempfile::tempdir().unwrap();
    init(tmp.path(), "Grenoble");
    let node = RunningNode::start(tmp.path(), &["--log-format", "json"], &[]);
    let (_, log) = node.stop_with(15);
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for line in lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v.get("level").is_some(), "{line}");
    }
}

#[test]
fn every_command_has_help_with_an_example() {
    let tmp = tempfile::tempdir().unwrap();
    for command in ["init", "run", "status", "id"] {
        let out = run_labnet(tmp.path(), &[command, "--help"]);
        assert!(out.status.success(), "{command}");
        assert!(
            stdout(&out).contains("Example"),
            "{command} --help has no example"
        );
    }
    let out = run_labnet(tmp.path(), &["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn commands_on_a_missing_node_explain_how_to_make_one() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run_labnet(&tmp.path().join("nothing"), &["id"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("labnet init"), "{}", stderr(&out));
}
