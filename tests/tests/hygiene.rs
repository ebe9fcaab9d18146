//! Local hygiene: what the `labnet` command does to its own machine and
//! terminal, with real processes, real stores and real QUIC.
//!
//! - A CLI write reaches the daemon whenever one runs: the instance lock, not
//!   the admin socket, says whether one does, so a daemon whose socket is gone
//!   or dead makes the command fail instead of writing its store behind it.
//! - A command working on a stopped node holds the lock, so a daemon cannot
//!   start on the store meanwhile.
//! - Peer text (names, pending requests, claims) reaches the terminal with its
//!   escape sequences and bidi controls shown as escapes, and `--json` exact.
//! - A node name with such characters is refused on the wire, and the config's
//!   rule is the wire's, character by character.
//! - A peer that renames itself keeps the name its admin approved; the new one
//!   shows as a claim beside it.

use std::path::Path;
use std::time::{Duration, Instant};

use labnet_config::Role;
use labnet_node::data_dir::DataDir;
use labnet_protocol::NodeId;
use labnet_tests::{
    free_udp_port, json_of, labnet_ok, partner_practices, run_labnet, stderr, stdout, RunningNode,
};

/// How long a test waits for something that must happen.
const WAIT: Duration = Duration::from_secs(30);

/// `labnet init` on `dir` as `name`, listening on `127.0.0.1:port`; returns
/// the NodeId.
fn init(dir: &Path, name: &str, port: u16) -> String {
    let listen = format!("127.0.0.1:{port}");
    let report = json_of(
        dir,
        &["init", "--name", name, "--listen", &listen, "--json"],
    );
    report["node_id"].as_str().expect("node_id").to_string()
}

/// Polls `check` until it holds; panics naming `what` after [`WAIT`].
fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A valid NodeId no node in these tests has.
fn nobody(seed: u8) -> NodeId {
    NodeId::from_public_key(&[seed; 32])
}

/// The attack: an admin socket that does not answer (removed, or replaced by
/// a dead one) while the daemon runs made the CLI take the node for stopped
/// and write its store directly, reporting a success the daemon never saw.
/// Now the command fails, naming the daemon's pid and socket, and the store
/// is unchanged; once the daemon is really stopped, the same write works.
#[test]
fn a_cli_write_beside_a_daemon_whose_socket_does_not_answer_fails_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    init(dir, "Ravenna", 0);
    let node = RunningNode::start(dir, &[], &[]);
    let socket = dir.join("admin.sock");
    let contact = format!("labnet://{}@127.0.0.1:7447", nobody(1));
    let practices = partner_practices();

    // The socket file removed: connecting finds nothing there.
    std::fs::remove_file(&socket).unwrap();
    let added = run_labnet(dir, &["peers", "add", &contact]);
    // A dead socket in its place: connecting is refused.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let imported = run_labnet(dir, &["practice", "import", &practices]);

    for (what, out) in [("peers add", &added), ("practice import", &imported)] {
        assert_eq!(out.status.code(), Some(1), "{what}: {}", stdout(out));
        let msg = stderr(out);
        assert!(
            msg.contains(&format!("pid {}", node.pid()))
                && msg.contains(&socket.display().to_string())
                && msg.contains("nothing was done"),
            "{what}: {msg}"
        );
        assert_eq!(msg.trim().lines().count(), 1, "one-line reason: {msg}");
    }

    let (exit, log) = node.stop_with(15);
    assert!(exit.success(), "{log}");
    // The daemon's store, read now that it is stopped: neither write happened.
    assert_eq!(
        json_of(dir, &["peers", "list", "--json"]),
        serde_json::json!([])
    );
    assert_eq!(
        json_of(dir, &["practice", "list", "--json"]),
        serde_json::json!([])
    );
    // With no daemon, the offline path takes the lock and writes.
    labnet_ok(dir, &["peers", "add", &contact]);
    let peers = json_of(dir, &["peers", "list", "--json"]);
    assert_eq!(peers[0]["node_id"], nobody(1).to_string().as_str());
}

/// The attack in reverse: a daemon started while a command is writing a
/// stopped node's store would open the same store at the same time. The
/// command holds the instance lock while it works, so the daemon refuses to
/// start, naming who holds it; once the lock is free it starts.
#[test]
fn a_daemon_cannot_start_while_a_command_holds_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    init(dir, "Ferrara", 0);
    let lock = DataDir::new(dir).lock_offline().unwrap();
    let out = run_labnet(dir, &["run"]);
    assert_eq!(out.status.code(), Some(1));
    let msg = stderr(&out);
    assert!(
        msg.contains("already running") && msg.contains(&format!("pid {}", std::process::id())),
        "{msg}"
    );
    assert!(!dir.join("admin.sock").exists());
    drop(lock);
    let node = RunningNode::start(dir, &[], &[]);
    assert_eq!(json_of(dir, &["status", "--json"])["name"], "Ferrara");
    drop(node);
}

/// A name that retitles the terminal window (OSC 0 ... BEL), clears it (CSI
/// 2J) and reverses the rest of the line (RLO, LRI).
const EVIL_NAME: &str = "Bologna\u{1b}]0;pwned\u{7}\u{202E}anedoM";
const EVIL_PENDING: &str = "Knock\u{1b}[2J\u{2066}x\u{200B}";
const EVIL_CLAIM: &str = "Claim\u{9b}31m\r";

/// Whether `text` holds anything a terminal would act on or hide, line
/// breaks aside.
fn has_hidden(text: &str) -> Option<char> {
    text.chars()
        .find(|&c| c != '\n' && labnet_protocol::handshake::hidden_kind(c).is_some())
}

/// Peer text reaches `labnet peers` and `labnet peers pending` with its
/// escape sequences and bidi controls shown as visible escapes, in the name,
/// the claim and the pending request alike; `--json` keeps it exact. The
/// names are put into the store directly, as a store written before names
/// were checked on the wire holds them.
#[test]
fn peer_names_with_escape_sequences_and_bidi_controls_print_escaped_and_json_stays_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    init(dir, "Lecce", 0);
    {
        let mut store = DataDir::new(dir).open_store().unwrap();
        store
            .approve_peer(
                nobody(2),
                Role::Partner,
                Some(EVIL_NAME),
                Some("127.0.0.1:9"),
                "test",
            )
            .unwrap();
        store.peer_seen(nobody(2), EVIL_CLAIM, None).unwrap();
        store
            .record_pending(nobody(3), EVIL_PENDING, "127.0.0.1:10", Role::Partner, 10)
            .unwrap();
    }
    let list = stdout(&labnet_ok(dir, &["peers", "list"]));
    let pending = stdout(&labnet_ok(dir, &["peers", "pending"]));
    for (what, text) in [("peers list", &list), ("peers pending", &pending)] {
        assert_eq!(has_hidden(text), None, "{what}: {text:?}");
    }
    assert!(
        list.contains(
            "Bologna\\u{1b}]0;pwned\\u{7}\\u{202e}anedoM (claims: Claim\\u{9b}31m\\u{d})"
        ),
        "{list}"
    );
    assert!(
        pending.contains("Knock\\u{1b}[2J\\u{2066}x\\u{200b}"),
        "{pending}"
    );

    let list = json_of(dir, &["peers", "list", "--json"]);
    assert_eq!(list[0]["name"], EVIL_NAME);
    assert_eq!(list[0]["claimed_name"], EVIL_CLAIM);
    let pending = json_of(dir, &["peers", "pending", "--json"]);
    assert_eq!(pending[0]["name"], EVIL_PENDING);
}

/// A peer that approved "Bologna" restarts calling itself "Modena" (another
/// partner city): the node that approved it keeps showing Bologna, with the
/// new name beside it as the peer's claim, in `--json` and on the terminal.
#[test]
fn a_renamed_peer_keeps_its_approved_name_and_shows_the_new_one_as_a_claim() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    let (port_a, port_b) = (free_udp_port(), free_udp_port());
    let a_id = init(&a, "Antwerp", port_a);
    let b_id = init(&b, "Bologna", port_b);
    labnet_ok(
        &a,
        &[
            "peers",
            "add",
            &format!("labnet://{b_id}@127.0.0.1:{port_b}"),
        ],
    );
    labnet_ok(
        &b,
        &[
            "peers",
            "add",
            &format!("labnet://{a_id}@127.0.0.1:{port_a}"),
        ],
    );
    let node_a = RunningNode::start(&a, &[], &[]);
    let node_b = RunningNode::start(&b, &[], &[]);
    let peer_of_a = || json_of(&a, &["peers", "list", "--json"])[0].clone();
    wait_for("A to learn B's name in a handshake", || {
        peer_of_a()["name"] == "Bologna"
    });
    assert_eq!(peer_of_a()["claimed_name"], serde_json::Value::Null);

    let (exit, log) = node_b.stop_with(15);
    assert!(exit.success(), "{log}");
    let node_b = RunningNode::start(&b, &["--name", "Modena"], &[]);
    wait_for("B's handshake as Modena", || {
        peer_of_a()["claimed_name"] == "Modena"
    });
    let peer = peer_of_a();
    assert_eq!(peer["name"], "Bologna", "{peer}");
    assert_eq!(peer["node_id"], b_id.as_str());
    let shown = stdout(&labnet_ok(&a, &["peers", "list"]));
    let line = shown
        .lines()
        .find(|l| l.starts_with(&b_id))
        .unwrap_or_else(|| panic!("no line for B: {shown}"));
    assert!(line.contains("Bologna (claims: Modena)"), "{line}");
    drop(node_b);
    drop(node_a);
}

/// A peer that announces itself as "Bologna" behind a right-to-left override
/// (to read as another city in the admin's list) is refused with
/// `Malformed` and never becomes a pending request. A well-named node that
/// knocks afterwards does: its request is the proof that the node went on
/// handling connections after the refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hello_with_a_bidi_override_in_its_name_is_refused_and_never_pending() {
    use labnet_node::api::AdminRequest;
    use labnet_node::identity::Identity;
    use labnet_protocol::close::CloseCode;
    use labnet_protocol::handshake::{Handshake, PeerRole};
    use labnet_tests::nodes::{admin, eventually, start_partner};
    use labnet_tests::raw_peer::{client_config, client_endpoint, hello};

    /// Says `name`'s Hello and returns the close code the node ended with.
    async fn knock(target: std::net::SocketAddr, name: &str) -> Option<u64> {
        let id = Identity::generate().unwrap();
        let endpoint = client_endpoint();
        let connection = endpoint
            .connect_with(client_config(&id), target, "labnet")
            .unwrap()
            .await
            .unwrap();
        let (mut send, _recv) = connection.open_bi().await.unwrap();
        let mut handshake = Handshake::dialer(hello(name, PeerRole::Partner));
        let bytes: Vec<u8> = std::iter::from_fn(|| handshake.poll_transmit())
            .flatten()
            .collect();
        send.write_all(&bytes).await.unwrap();
        match tokio::time::timeout(WAIT, connection.closed()).await {
            Ok(quinn::ConnectionError::ApplicationClosed(c)) => Some(c.error_code.into_inner()),
            _ => None,
        }
    }

    let tmp = tempfile::tempdir().unwrap();
    let node = start_partner(tmp.path(), "Trieste").await;
    let target = node.listen_addr();
    let code = knock(target, "Bo\u{202E}angol").await;
    assert_eq!(code, Some(u64::from(CloseCode::Malformed.as_u32())));
    let code = knock(target, "Ravenna").await;
    assert_ne!(code, Some(u64::from(CloseCode::Malformed.as_u32())));
    let pending_names = || async {
        let pending = admin(&node, AdminRequest::PeersPending).await.unwrap();
        pending
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect::<Vec<String>>()
    };
    assert!(
        eventually(WAIT, async || !pending_names().await.is_empty()).await,
        "the well-named node never became a pending request"
    );
    assert_eq!(pending_names().await, ["Ravenna"]);
    node.shutdown().await;
}

/// The config refuses a node name with exactly the characters a peer's Hello
/// is refused for: a name the config let through but the wire refused would
/// keep a node from ever connecting, and the other way round would let one
/// node's config hold what no peer accepts. Both use `labnet-text`'s class;
/// this holds the two real paths (a config file loaded, a Hello decoded by
/// the accepting side) together, for every character the class flags and a
/// sample of those it does not.
#[test]
fn config_and_wire_refuse_the_same_characters_in_names() {
    use labnet_protocol::handshake::{Event, Handshake, Hello, PeerRole, PROTOCOL_VERSION};
    let config_refuses = |name: &str| {
        let file = labnet_config::default_file(name, labnet_config::Role::Partner, "0.0.0.0:7447");
        labnet_config::Config::from_toml("labnet.toml", &file).is_err()
    };
    let wire_refuses = |name: &str| {
        let mut dialer = Handshake::dialer(Hello {
            version: PROTOCOL_VERSION,
            name: name.to_string(),
            role: PeerRole::Partner,
            invite_secret: None,
        });
        let hello = dialer.poll_transmit().expect("the dialer speaks first");
        let mut acceptor = Handshake::acceptor();
        acceptor.handle_bytes(&hello);
        match acceptor.poll_event() {
            Some(Event::Hello(_)) => false,
            Some(Event::Failed { .. }) => true,
            other => panic!("the acceptor answered {other:?}"),
        }
    };
    let mut hidden = 0;
    for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
        let flagged = labnet_protocol::handshake::hidden_kind(c).is_some();
        if !flagged && u32::from(c) % 251 != 0 {
            continue;
        }
        hidden += usize::from(flagged);
        let name = format!("Mod{c}ena");
        let (config, wire) = (config_refuses(&name), wire_refuses(&name));
        assert_eq!(
            config,
            wire,
            "U+{:04X}: config refuses {config}, wire refuses {wire}",
            u32::from(c)
        );
        assert_eq!(wire, flagged, "U+{:04X}", u32::from(c));
    }
    assert!(hidden > 100, "only {hidden} hidden characters were tried");
}

/// A peer's practice title that a spreadsheet would run as a formula when a
/// member opens the CSV export: each prefix a spreadsheet reads as one (`=`,
/// `+`, `-`, `@`, and a tab or carriage return before one) is neutralized
/// with a leading `'`; a title that only contains them is left alone.
#[test]
fn csv_export_neutralizes_every_formula_prefix_in_peer_text() {
    use labnet_node::feed::{to_csv, unsigned_entry, FeedEntry};
    use labnet_node::share::publication::{sample_body, sample_doc};
    use labnet_node::share::Publication;
    // One entry of a sample publication (unsigned: the CSV carries the proof
    // but does not check it), under each title in turn.
    let origin = labnet_protocol::NodeId::from_public_key(&[1; 32]);
    let publication =
        Publication::from_replica(sample_doc(&sample_body(origin, "cafe", 0))).unwrap();
    let sample = unsigned_entry(&publication, [1; 32], 0, "Bologna").unwrap();
    let entry = |title: &str| FeedEntry {
        title: title.into(),
        ..sample.clone()
    };
    let titles = [
        "=HYPERLINK(\"http://evil\")",
        "+1+cmd|' /C calc'!A0",
        "-2+3",
        "@SUM(A1)",
        "\t=1+1",
        "\r=1+1",
        "A = B + C",
    ];
    let entries: Vec<FeedEntry> = titles.iter().map(|t| entry(t)).collect();
    let text = to_csv(&entries).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let column = reader
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "title")
        .expect("a title column");
    let shown: Vec<String> = reader
        .records()
        .map(|r| r.unwrap()[column].to_string())
        .collect();
    let expected: Vec<String> = titles
        .iter()
        .map(|t| {
            if t.starts_with('A') {
                t.to_string()
            } else {
                format!("'{t}")
            }
        })
        .collect();
    assert_eq!(shown, expected);
}
