//! What the console's tests share: nodes with the console (and the feed URLs)
//! on 127.0.0.1 port 0, practices with a roster name in them, and a small HTTP
//! client that keeps the session cookie.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use labnet_config::Role;
use labnet_node::api::AdminRequest;
use labnet_node::daemon::Daemon;
use labnet_node::lab::import::{parse_practices, parse_roster, ImportInput};
use labnet_tests::nodes::{admin, contact, eventually, fast_transport, feed_entries, init, start};

/// How long a sync between two nodes on loopback may take.
pub const CONVERGE: Duration = Duration::from_secs(20);

/// The roster's one stakeholder, whose name must never leave the node.
pub const ROSTER_NAME: &str = "José Pérez";

/// A node in `root/name` whose feed URLs are on too (the console is on
/// 127.0.0.1:0 by default for a node listening on port 0).
pub fn init_with_feed(root: &Path, name: &str, role: Role) -> PathBuf {
    let dir = init(root, name, role, 0);
    let config = dir.join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("listen = \"off\""), "{text}");
    std::fs::write(
        &config,
        text.replace("listen = \"off\"", "listen = \"127.0.0.1:0\""),
    )
    .unwrap();
    dir
}

/// Starts a node with console and feed URLs.
pub async fn node(root: &Path, name: &str, role: Role) -> Daemon {
    start(&init_with_feed(root, name, role), fast_transport()).await
}

/// Imports one practice (whose description names the roster's stakeholder) and
/// the roster into `daemon`.
pub async fn import_practice(daemon: &Daemon, id: &str, name: &str, link: &str) {
    let practice = serde_json::json!({
        "id": id, "city": "Fuenlabrada", "name": name, "thematic_area": "education",
        "link": link,
        "description": format!("Run with {ROSTER_NAME} (jose.perez@example.org) since 2019-03-14."),
        "indicators": [{"label": "participants", "achieved": 40, "unit": "people"}],
        "contacts": [{"name": ROSTER_NAME, "role": "coordinator", "email": "jose.perez@example.org"}],
        "internal_notes": "call Pérez on Fridays"
    });
    let text = serde_json::json!({ "practices": [practice] }).to_string();
    let practices = parse_practices(ImportInput::Text(&text), None).unwrap();
    admin(daemon, AdminRequest::PracticeImport { practices })
        .await
        .unwrap();
    let text = serde_json::json!({"stakeholders": [{
        "name": ROSTER_NAME, "organisation": "Asociación Vecinal", "area": "civil-society",
        "email": "jose.perez@example.org"}]})
    .to_string();
    let roster = parse_roster(ImportInput::Text(&text), None).unwrap();
    admin(daemon, AdminRequest::RosterImport { roster })
        .await
        .unwrap();
}

/// `from` approves `to` ahead of time and dials it: `to` then holds `from` as a
/// pending request.
pub async fn knock(from: &Daemon, to: &Daemon) {
    admin(
        from,
        AdminRequest::PeersAdd {
            contact: contact(to),
            role: Some(Role::Partner),
        },
    )
    .await
    .unwrap();
    let pending = eventually(CONVERGE, async || {
        let p = admin(to, AdminRequest::PeersPending).await.unwrap();
        p.as_array()
            .unwrap()
            .iter()
            .any(|e| e["node_id"] == from.node_id().to_string())
    })
    .await;
    assert!(pending, "{} never showed up as pending", from.node_id());
}

/// Two partners: Fuenlabrada, and `name`, which knocked on it and is pending
/// there.
pub async fn knocking(root: &Path, name: &str) -> (Daemon, Daemon) {
    let a = node(root, "Fuenlabrada", Role::Partner).await;
    let b = node(root, name, Role::Partner).await;
    knock(&b, &a).await;
    (a, b)
}

/// `approver` approves `node` as a partner.
pub async fn approve(approver: &Daemon, node: &Daemon) {
    admin(
        approver,
        AdminRequest::PeersApprove {
            node_id: node.node_id().to_string(),
            role: Some(Role::Partner),
        },
    )
    .await
    .unwrap();
}

/// Whether `daemon` holds a feed entry titled `title`.
pub async fn has_entry(daemon: &Daemon, title: &str) -> bool {
    feed_entries(daemon).await.iter().any(|e| e.title == title)
}

/// The console's base URL, `http://127.0.0.1:PORT`.
pub fn base(daemon: &Daemon) -> String {
    format!(
        "http://{}",
        daemon.console_addr().expect("the console is on")
    )
}
