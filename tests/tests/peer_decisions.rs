//! What the admin decides is kept apart from what a node claims: `peers
//! approve` without a role gives a pending node the role it claimed, an
//! explicit role that differs comes with a notice, and the name a peer gives
//! in a later handshake never replaces the one it was approved under, which
//! is also how the disclosure log names it.

use std::path::Path;
use std::time::Duration;

use labnet_config::Role;
use labnet_node::api::{AdminRequest, DisclosureEntry, PeerListEntry, PendingEntry};
use labnet_node::daemon::Daemon;
use labnet_tests::nodes::{add_peer, admin, both_connected, eventually, shutdown_all, start_node};
use labnet_tests::partner_practices;

const WAIT: Duration = Duration::from_secs(20);

async fn pending(d: &Daemon) -> Vec<PendingEntry> {
    let v = admin(d, AdminRequest::PeersPending).await.unwrap();
    serde_json::from_value(v).unwrap()
}

async fn approve(d: &Daemon, node: &Daemon, role: Option<Role>) -> PeerListEntry {
    let request = AdminRequest::PeersApprove {
        node_id: node.node_id().to_string(),
        role,
    };
    serde_json::from_value(admin(d, request).await.unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approving_without_a_role_gives_the_claimed_one_and_a_different_role_is_noted() {
    let tmp = tempfile::tempdir().unwrap();
    let city = start_node(tmp.path(), "Modena", Role::Partner).await;
    let network = start_node(tmp.path(), "ISRG", Role::Subscriber).await;
    let other = start_node(tmp.path(), "Mechelen", Role::Partner).await;
    // Both knock at the city, which knows neither.
    add_peer(&network, &city).await;
    add_peer(&other, &city).await;
    assert!(eventually(WAIT, async || pending(&city).await.len() == 2).await);
    let claimed = |p: &[PendingEntry], d: &Daemon| {
        p.iter()
            .find(|e| e.node_id == d.node_id().to_string())
            .and_then(|e| e.claimed_role)
    };
    let requests = pending(&city).await;
    assert_eq!(claimed(&requests, &network), Some(Role::Subscriber));
    assert_eq!(claimed(&requests, &other), Some(Role::Partner));

    let approved = approve(&city, &network, None).await;
    assert_eq!(
        approved.role,
        Role::Subscriber,
        "the claimed role, not partner"
    );
    assert_eq!(approved.notice, None);
    let approved = approve(&city, &other, Some(Role::Subscriber)).await;
    assert_eq!(
        approved.role,
        Role::Subscriber,
        "an explicit role is obeyed"
    );
    assert!(
        approved
            .notice
            .as_deref()
            .is_some_and(|n| n.contains("claimed to be a partner")),
        "{approved:?}"
    );
    assert!(eventually(WAIT, async || both_connected(&city, &network)).await);
    assert!(
        pending(&city).await.is_empty(),
        "approved nodes are not pending"
    );
    // The name stays the one it was approved under.
    let peers: Vec<PeerListEntry> =
        serde_json::from_value(admin(&city, AdminRequest::PeersList).await.unwrap()).unwrap();
    let isrg = peers
        .iter()
        .find(|p| p.node_id == network.node_id().to_string())
        .unwrap();
    assert_eq!(isrg.name.as_deref(), Some("ISRG"));

    // The disclosure log names the peer as the admin approved it.
    let practices = labnet_node::lab::import::parse_practices(
        labnet_node::lab::import::ImportInput::Path(Path::new(&partner_practices())),
        None,
    )
    .unwrap();
    let first = practices[0].clone();
    let request = AdminRequest::PracticeImport {
        practices: vec![first.clone()],
    };
    admin(&city, request).await.unwrap();
    let request = AdminRequest::Share {
        practice_id: first.id,
        scope: "public".into(),
    };
    admin(&city, request).await.unwrap();
    let sent_to_isrg = async || {
        let request = AdminRequest::Audit {
            peer: Some(network.node_id().to_string()),
            since: None,
        };
        let lines: Vec<DisclosureEntry> =
            serde_json::from_value(admin(&city, request).await.unwrap()).unwrap();
        lines
            .iter()
            .any(|l| l.action == "sent" && l.peer_name.as_deref() == Some("ISRG"))
    };
    assert!(eventually(WAIT, sent_to_isrg).await);
    shutdown_all([city, network, other]).await;
}
