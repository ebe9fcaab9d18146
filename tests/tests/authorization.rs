//! Authorization on live sessions (issue 13): what an invite makes of the
//! inviter, who may make partner invites, and what a role change, a scope
//! change or a revocation does to a session that is already running.
//!
//! Real nodes: daemons in this process, real QUIC on 127.0.0.1, real SQLite
//! in temporary directories, driven through the admin API the CLI uses. No
//! test sleeps to show that nothing arrived: each shows it by an event that
//! must come after (a later publication that does arrive, or a resume point
//! that covers the one that did not).

use std::time::{Duration, Instant};

use labnet_config::Role;
use labnet_node::api::AdminRequest;
use labnet_node::daemon::Daemon;
use labnet_node::trust::Scope;
use labnet_protocol::handshake::PeerRole;
use labnet_protocol::invite::Invite;
use labnet_protocol::NodeId;
use labnet_tests::nodes::{
    accept_invite, admin, approve, both_connected, create_invite, eventually, holds,
    invite_partners, is_connected, neither_connected, partners_in_tmp, publish, revoke,
    shutdown_all, start_node, token_of,
};

const WAIT: Duration = Duration::from_secs(20);

/// What "at once" means for a connection a revocation ends: no redial, no
/// timeout, only the change reaching the transport and a close frame crossing
/// loopback.
const AT_ONCE: Duration = Duration::from_secs(2);

/// Whether `d` stored everything `origin` announced up to `seq` (its resume
/// point in `origin`'s index covers it): a publication `origin` announced
/// before `seq` would be stored by now.
async fn caught_up_to(d: &Daemon, origin: NodeId, seq: u64) -> bool {
    d.context()
        .store
        .call(move |s| s.resume_point(origin).unwrap())
        .await
        .is_some_and(|(_, at)| at >= seq)
}

/// The index sequence number of one of `d`'s own publications.
async fn seq_of(d: &Daemon, doc_id: &str) -> u64 {
    let id = doc_id.to_string();
    d.context()
        .store
        .call(move |s| s.publication_row(&id).unwrap().unwrap().seq)
        .await
}

/// Whether `origin`'s deliveries still say `peer` holds `doc_id`.
async fn delivered(origin: &Daemon, peer: NodeId, doc_id: &str) -> bool {
    let id = doc_id.to_string();
    origin
        .context()
        .store
        .call(move |s| s.delivered_version(peer, &id).unwrap())
        .await
        .is_some()
}

/// The role `d` approved `peer` with, from its peer list.
async fn role_of(d: &Daemon, peer: NodeId) -> Option<String> {
    let list = admin(d, AdminRequest::PeersList).await.unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .find(|p| p["node_id"] == peer.to_string())
        .map(|p| p["role"].as_str().unwrap().to_string())
}

/// The attack of issue 13: a subscriber (an international network) invites a
/// city; accepting used to record every inviter as a partner, so the city
/// handed the subscriber its partners-only practices. Now the token states the
/// inviter's role and the city records it so: the subscriber gets the public
/// practice and not the partners-only one. A subscriber cannot make a partner
/// invite at all, a token of the old format is refused with its own message,
/// and an inviter whose handshake contradicts its token is not approved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscribers_invite_makes_it_a_subscriber_not_a_partner() {
    let (tmp, [city]) = partners_in_tmp(["Vienna"]).await;
    let network = start_node(tmp.path(), "ISRG", Role::Subscriber).await;

    // A subscriber cannot make a partner invite.
    let err = admin(
        &network,
        AdminRequest::InviteCreate {
            role: Role::Partner,
            expires_secs: 3600,
            uses: 1,
        },
    )
    .await
    .unwrap_err();
    assert!(
        err.contains("this node is a subscriber") && err.contains("--role subscriber"),
        "{err}"
    );

    // A token of the old format (no inviter role) is refused, not read as a partner's.
    let token = token_of(&create_invite(&network, Role::Subscriber, 3600).await);
    assert!(token.starts_with("labnet-invite:2:"), "{token}");
    let old = token.replacen("labnet-invite:2:", "labnet-invite:1:", 1);
    let err = accept_invite(&city, old).await.unwrap_err();
    assert!(
        err.contains("invite from an older labnet; ask for a new one"),
        "{err}"
    );

    // The city accepts the subscriber's invite: the subscriber is recorded,
    // and shown, as a subscriber.
    let accepted = accept_invite(&city, token).await.unwrap();
    assert_eq!(accepted["name"], "ISRG");
    assert_eq!(accepted["role"], "subscriber", "{accepted}");
    assert_eq!(accepted["our_role"], "subscriber", "{accepted}");
    assert_eq!(
        role_of(&city, network.node_id()).await.as_deref(),
        Some("subscriber")
    );
    assert!(eventually(WAIT, async || both_connected(&city, &network)).await);

    // Partners-only first, public second: once the subscriber has stored
    // everything up to the public one, the partners one would be there too if
    // the city served it.
    let (partners, _) = publish(&city, "housing-first", "partners only", &Scope::Partners).await;
    let (public, _) = publish(&city, "language-cafe", "for everyone", &Scope::Public).await;
    let public_seq = seq_of(&city, &public).await;
    assert!(
        eventually(WAIT, async || holds(&network, &public).await
            && caught_up_to(&network, city.node_id(), public_seq).await)
        .await,
        "the subscriber receives the public practice"
    );
    assert!(
        !holds(&network, &partners).await,
        "a subscriber's invite must not hand it partners-only data"
    );
    assert!(!delivered(&city, network.node_id(), &partners).await);

    shutdown_all([city, network]).await;
}

/// An inviter whose handshake claims another role than its token states (a
/// token altered to pass a city's invite off as a subscriber's, or from before
/// the inviter changed role) is refused: the joiner approves nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inviter_whose_handshake_contradicts_its_token_is_not_approved() {
    let (_tmp, [inviter, joiner]) = partners_in_tmp(["Modena", "Mechelen"]).await;
    let token = token_of(&create_invite(&inviter, Role::Subscriber, 3600).await);
    let mut altered = Invite::parse(&token).unwrap();
    assert_eq!(altered.inviter_role, PeerRole::Partner);
    altered.inviter_role = PeerRole::Subscriber;
    let err = accept_invite(&joiner, altered.to_token())
        .await
        .unwrap_err();
    assert!(
        err.contains("says it is a partner") && err.contains("nothing was approved"),
        "{err}"
    );
    assert_eq!(role_of(&joiner, inviter.node_id()).await, None);
    shutdown_all([inviter, joiner]).await;
}

/// A partner downgraded to subscriber while connected: its live session ends
/// at once, the next one checks the whole index against the new role (the
/// partners-only practice did not change, and is checked all the same), the
/// city withdraws it and the downgraded node deletes its copy. A public
/// practice published afterwards still reaches it: the connection came back,
/// and that later event is what shows the withdrawn one did not return.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_downgraded_while_connected_loses_its_partner_copies_at_once() {
    let (_tmp, [a, b]) = partners_in_tmp(["Grenoble", "Livadia"]).await;
    invite_partners(&a, &[&b], WAIT).await;
    let (partners, _) = publish(&a, "mentoring", "partners only", &Scope::Partners).await;
    let (early_public, _) = publish(&a, "welcome-desk", "for everyone", &Scope::Public).await;
    assert!(
        eventually(WAIT, async || holds(&b, &partners).await
            && holds(&b, &early_public).await)
        .await
    );
    assert!(delivered(&a, b.node_id(), &partners).await);

    let downgraded_at = Instant::now();
    approve(&a, b.node_id(), Role::Subscriber).await;
    assert!(
        eventually(WAIT, async || !holds(&b, &partners).await).await,
        "the downgraded node's copy of the partners-only practice is deleted"
    );
    eprintln!(
        "downgrade: the partners-only copy was deleted {:?} after the command",
        downgraded_at.elapsed()
    );
    assert!(
        eventually(WAIT, async || !delivered(&a, b.node_id(), &partners).await).await,
        "the city saw the withdrawal confirmed"
    );
    assert!(holds(&b, &early_public).await, "public copies stay");

    let (later_public, _) = publish(&a, "job-fair", "for everyone, later", &Scope::Public).await;
    assert!(
        eventually(WAIT, async || holds(&b, &later_public).await).await,
        "the connection came back: a later public practice arrives"
    );
    assert!(is_connected(&a, b.node_id()));
    assert!(
        !holds(&b, &partners).await,
        "and the withdrawn one did not return"
    );

    // Upgraded again: the unchanged partners-only practice is offered again.
    approve(&a, b.node_id(), Role::Partner).await;
    assert!(
        eventually(WAIT, async || holds(&b, &partners).await).await,
        "a partner again receives the partners-only practice it lost"
    );
    shutdown_all([a, b]).await;
}

/// A publication re-scoped from one named city to another while both are
/// connected: the city it no longer names deletes its copy, and a later
/// public practice still reaches it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_scope_that_drops_a_city_withdraws_its_copy_on_the_live_session() {
    let (_tmp, [a, b, c]) = partners_in_tmp(["Vienna", "Athens", "Turin"]).await;
    invite_partners(&a, &[&b, &c], WAIT).await;
    let named_b = Scope::Nodes(vec![b.node_id()]);
    let (doc, _) = publish(&a, "legal-clinic", "for Athens", &named_b).await;
    assert!(eventually(WAIT, async || holds(&b, &doc).await).await);
    assert!(!holds(&c, &doc).await);

    let named_c = Scope::Nodes(vec![c.node_id()]);
    publish(&a, "legal-clinic", "for Turin", &named_c).await;
    assert!(
        eventually(WAIT, async || !holds(&b, &doc).await
            && holds(&c, &doc).await)
        .await,
        "Athens deletes its copy; Turin, now named, receives it"
    );
    let (later, _) = publish(&a, "sports-club", "for everyone", &Scope::Public).await;
    assert!(eventually(WAIT, async || holds(&b, &later).await).await);
    assert!(!holds(&b, &doc).await);
    shutdown_all([a, b, c]).await;
}

/// A revocation closes the live session at once, and nothing published after
/// it reaches the revoked node (a third city, still approved, receives the
/// same publication: the later event). What a revoked node already holds it
/// keeps (the origin has no session left to withdraw through; the disclosure
/// log says what it was sent) until it is approved again: its first session
/// then checks the whole index and withdraws what its new role may not see.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_partner_is_cut_off_at_once_and_a_later_approval_withdraws_its_copies() {
    let (_tmp, [a, b, c]) = partners_in_tmp(["Fuenlabrada", "Mechelen", "Modena"]).await;
    invite_partners(&a, &[&b, &c], WAIT).await;
    let (partners, _) = publish(&a, "night-school", "partners only", &Scope::Partners).await;
    assert!(eventually(WAIT, async || holds(&b, &partners).await).await);

    let revoked_at = Instant::now();
    revoke(&a, b.node_id()).await;
    assert!(
        eventually(AT_ONCE, async || neither_connected(&a, &b)).await,
        "the revocation closes the connection at once"
    );
    eprintln!(
        "revoke: connection closed on both sides {:?} after the command",
        revoked_at.elapsed()
    );

    let (after, _) = publish(&a, "after-revoke", "for everyone", &Scope::Public).await;
    assert!(
        eventually(WAIT, async || holds(&c, &after).await).await,
        "a city still approved receives it"
    );
    assert!(!holds(&b, &after).await, "the revoked city does not");
    assert!(!is_connected(&a, b.node_id()), "and stays cut off");

    approve(&a, b.node_id(), Role::Subscriber).await;
    assert!(
        eventually(WAIT, async || holds(&b, &after).await).await,
        "approved again (as a subscriber), it reconnects and gets the public practice"
    );
    assert!(
        eventually(WAIT, async || !holds(&b, &partners).await).await,
        "and the partners-only copy it kept is withdrawn"
    );
    shutdown_all([a, b, c]).await;
}
