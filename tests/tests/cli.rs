//! The `labnet` binary as an operator uses it: each command's success and failure
//! paths, on real data directories and real processes.

use std::path::Path;

use labnet_tests::{run_labnet, stderr, stdout, RunningNode};

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

fn node_id_of(dir: &Path) -> String {
    let out = run_labnet(dir, &["id", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    v["node_id"].as_str().unwrap().to_string()
}

#[test]
fn peer_decisions_on_a_stopped_node_persist_and_reach_the_daemon() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    init(&a, "Antwerp");
    init(&b, "Larissa");
    let b_id = node_id_of(&b);
    // Lower case without dashes is accepted, as people type it.
    let typed = b_id.to_lowercase().replace('-', "");
    let contact = format!("labnet://{typed}@127.0.0.1:7447");
    let out = run_labnet(&a, &["peers", "add", &contact, "--role", "subscriber"]);
    assert!(out.status.success(), "{}", stderr(&out));

    let node = RunningNode::start(&a, &[], &[]);
    let out = run_labnet(&a, &["peers", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(list[0]["node_id"], b_id.as_str());
    assert_eq!(list[0]["role"], "subscriber");
    assert_eq!(list[0]["state"], "approved");
    assert_eq!(
        list[0]["connected"], false,
        "the daemon knows the live state"
    );

    let out = run_labnet(&a, &["peers", "revoke", &b_id]);
    assert!(out.status.success(), "{}", stderr(&out));
    drop(node);
    let out = run_labnet(&a, &["peers", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(list[0]["state"], "revoked");
    assert_eq!(list[0]["decided_by"], "peers revoke");
    assert_eq!(
        list[0]["connected"],
        serde_json::Value::Null,
        "unknown while stopped"
    );
}

#[test]
fn peer_commands_refuse_bad_ids_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    init(tmp.path(), "Fuenlabrada");
    let own = node_id_of(tmp.path());
    let mut typo = own.clone().into_bytes();
    typo[3] = if typo[3] == b'A' { b'B' } else { b'A' };
    let typo = String::from_utf8(typo).unwrap();
    let cases: [(&[&str], &str); 5] = [
        (&["peers", "approve", "ZZZ"], "35 characters"),
        (&["peers", "approve", &typo], "mistyped"),
        (&["peers", "approve", &own], "own NodeId"),
        (&["peers", "add", "http://example.org"], "labnet://"),
        (&["peers", "revoke", &NODE_NOBODY], "nothing to revoke"),
    ];
    for (args, expected) in cases {
        let out = run_labnet(tmp.path(), args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&out).contains(expected),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    let out = run_labnet(tmp.path(), &["peers", "list", "--json"]);
    assert_eq!(stdout(&out).trim(), "[]", "nothing was written");
}

/// A valid NodeId that belongs to no node in these tests.
static NODE_NOBODY: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| labnet_protocol::NodeId::from_public_key(&[42; 32]).to_string());

/// `init` pointed at a directory that already holds someone else's files (a
/// mistyped `--data-dir ~/Documents`) used to make it mode 0700 and write a
/// key into it. Now it is refused, the message naming the directory and
/// that it is not empty, with nothing written and the mode unchanged; an
/// empty directory is still a fine place for a node.
#[test]
fn init_refuses_a_non_empty_directory_that_holds_no_node_and_changes_nothing() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("documents");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("notes.txt"), "mine").unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = run_labnet(&dir, &["init", "--name", "Modena"]);
    assert_eq!(out.status.code(), Some(1));
    let msg = stderr(&out);
    assert!(
        msg.contains(&dir.display().to_string()) && msg.contains("not empty"),
        "{msg}"
    );
    let entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, ["notes.txt"]);
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o755);
    // `run`, which creates a node where there is none, refuses it too.
    let out = run_labnet(&dir, &["run", "--listen", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not empty"), "{}", stderr(&out));
    assert!(!dir.join("node.key").exists());

    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    std::fs::set_permissions(&empty, std::fs::Permissions::from_mode(0o755)).unwrap();
    init(&empty, "Modena");
    let mode = std::fs::metadata(&empty).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
}
