//! Peer trust over QUIC with real nodes on 127.0.0.1: approval, invites,
//! revocation, and every way of presenting the wrong credentials, in both the
//! dialing and the accepting role.

use std::sync::Arc;
use std::time::Duration;

use labnet_config::Role;
use labnet_node::api::AdminRequest;
use labnet_node::daemon::Daemon;
use labnet_node::identity::Identity;
use labnet_protocol::close::CloseCode;
use labnet_protocol::handshake::{
    Event as HandshakeEvent, Handshake, Hello, PeerRole, ALPN, PROTOCOL_VERSION,
};
use labnet_protocol::invite::Invite;
use labnet_tests::free_udp_port;
use labnet_tests::nodes::{
    accept_invite, add_peer, admin, approve, both_connected, create_invite, eventually,
    fast_transport, init, invite, is_connected, neither_connected, pair_connected, partners_in_tmp,
    revoke, shutdown_all, start, token_of,
};
use labnet_tests::raw_peer::{
    self, client_endpoint, credential, own_credential, AcceptAnything, Fixed,
};
use rustls::sign::CertifiedKey;

const WAIT: Duration = Duration::from_secs(10);

/// How long two nodes that dialed each other at once may take to settle on
/// one connection: the loser's dial is dropped and may be retried after a
/// redial backoff, behind a QUIC Retry, on a loaded CI machine.
const TIE_BREAK_WAIT: Duration = Duration::from_secs(30);

async fn peers_of(d: &Daemon) -> serde_json::Value {
    admin(d, AdminRequest::PeersList).await.unwrap()
}

async fn pending_ids(d: &Daemon) -> Vec<String> {
    let v = admin(d, AdminRequest::PeersPending).await.unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| p["node_id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_pairs_two_nodes_that_stay_connected_across_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    let a_dir = init(tmp.path(), "Modena", Role::Partner, free_udp_port());
    let b_dir = init(tmp.path(), "Mechelen", Role::Partner, free_udp_port());
    let a = start(&a_dir, fast_transport()).await;
    let b = start(&b_dir, fast_transport()).await;
    let accepted = invite(&a, &b, Role::Partner).await;
    assert_eq!(accepted["name"], "Modena");
    let (a_id, b_id) = (a.node_id(), b.node_id());
    assert!(eventually(WAIT, async || both_connected(&a, &b)).await);
    assert_eq!(peers_of(&a).await[0]["node_id"], b_id.to_string());
    assert!(peers_of(&a).await[0]["decided_by"]
        .as_str()
        .unwrap()
        .starts_with("invite"));
    assert_eq!(peers_of(&b).await[0]["decided_by"], "invite accept");

    // Restart A: it comes back and the pair reconnects.
    a.shutdown().await;
    assert!(
        eventually(WAIT, async || !is_connected(&b, a_id)).await,
        "B notices A left"
    );
    let a = start(&a_dir, fast_transport()).await;
    assert!(
        eventually(WAIT, async || both_connected(&a, &b)).await,
        "reconnected after A restarted"
    );
    // Restart B.
    b.shutdown().await;
    let b = start(&b_dir, fast_transport()).await;
    assert!(
        eventually(WAIT, async || both_connected(&a, &b)).await,
        "reconnected after B restarted"
    );
    shutdown_all([a, b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_add_then_approve_pairs_nodes_and_unknown_nodes_wait_in_pending() {
    let (_tmp, [a, b]) = partners_in_tmp(["Vienna", "Athens"]).await;
    let b_id = b.node_id();
    // B adds A ahead of time and dials it: A has not approved B, so B waits in
    // A's pending list and nothing is connected.
    add_peer(&b, &a).await;
    assert!(
        eventually(WAIT, async || pending_ids(&a)
            .await
            .contains(&b_id.to_string()))
        .await
    );
    assert!(neither_connected(&a, &b));
    let pending = admin(&a, AdminRequest::PeersPending).await.unwrap();
    assert_eq!(pending[0]["name"], "Athens");
    assert!(pending[0]["attempts"].as_i64().unwrap() >= 1);
    // A approves: B's redial gets in.
    approve(&a, b_id, Role::Partner).await;
    assert!(eventually(WAIT, async || both_connected(&a, &b)).await);
    assert!(pending_ids(&a).await.is_empty());
    let listed = peers_of(&a).await;
    assert_eq!(listed[0]["connected"], true);
    assert_eq!(listed[0]["name"], "Athens");
    shutdown_all([a, b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_both_dial_both_keep_the_same_one_connection() {
    let (_tmp, [a, b]) = partners_in_tmp(["Pont-de-Claix", "Grenoble"]).await;
    let (a_id, b_id) = (a.node_id(), b.node_id());
    // Both approve the other with an address at once, so both dial.
    tokio::join!(add_peer(&a, &b), add_peer(&b, &a));
    assert!(eventually(WAIT, async || both_connected(&a, &b)).await);
    let rule = a_id.min(b_id);
    assert!(
        eventually(TIE_BREAK_WAIT, async || {
            a.context().transport.connection_dialer(b_id) == Some(rule)
                && b.context().transport.connection_dialer(a_id) == Some(rule)
        })
        .await,
        "both sides keep the connection dialed by the smaller NodeId"
    );
    // And it stays that way: no flapping between the two.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(a.context().transport.connection_dialer(b_id), Some(rule));
    assert_eq!(b.context().transport.connection_dialer(a_id), Some(rule));
    shutdown_all([a, b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_peer_is_cut_off_within_a_second_and_cannot_come_back() {
    let (_tmp, [a, b]) = partners_in_tmp(["Antwerp", "Larissa"]).await;
    pair_connected(&a, &b, WAIT).await;
    let a_id = a.node_id();
    let revoked_at = std::time::Instant::now();
    revoke(&a, b.node_id()).await;
    assert!(eventually(Duration::from_secs(1), async || neither_connected(&a, &b)).await);
    assert!(
        revoked_at.elapsed() < Duration::from_secs(1),
        "disconnected within one second"
    );
    // B keeps redialing (it still approves A) but is refused every time.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(neither_connected(&a, &b));
    let err = b
        .context()
        .transport
        .dial(a_id, &a.listen_addr().to_string(), None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("revoked"), "{err}");
    assert!(
        pending_ids(&a).await.is_empty(),
        "a revoked node does not reappear as pending"
    );
    let record = &peers_of(&a).await[0];
    assert_eq!(record["state"], "revoked");
    assert_eq!(record["decided_by"], "peers revoke");
    shutdown_all([a, b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_are_refused_each_with_its_own_message() {
    let (_tmp, [a, b, c]) = partners_in_tmp(["Grenoble", "Livadia", "Fuenlabrada"]).await;
    let token =
        async |expires_secs| token_of(&create_invite(&a, Role::Partner, expires_secs).await);

    // Used up: B joins, then C tries the same token.
    let used = token(3600).await;
    accept_invite(&b, &used).await.unwrap();
    let err = accept_invite(&c, &used).await.unwrap_err();
    assert!(err.contains("already been used"), "used up: {err}");

    // Expired: checked by the joiner before dialing, and by the inviter.
    let short = token(1).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let err = accept_invite(&c, &short).await.unwrap_err();
    assert!(err.contains("expired"), "expired: {err}");
    let mut stale = Invite::parse(&short).unwrap();
    stale.expires_at += 3600; // the joiner's clock is fooled; the inviter is not
    let err = accept_invite(&c, stale.to_token()).await.unwrap_err();
    assert!(
        err.contains("did not issue") || err.contains("expired"),
        "forged expiry: {err}"
    );

    // Forged: a well-formed token with a secret the inviter never issued.
    let mut forged = Invite::parse(&used).unwrap();
    forged.secret = [7; 32];
    let err = accept_invite(&c, forged.to_token()).await.unwrap_err();
    assert!(err.contains("did not issue this invite"), "forged: {err}");

    // Truncated and damaged tokens never leave the joiner.
    let fresh = token(3600).await;
    let err = accept_invite(&c, &fresh[..fresh.len() - 9])
        .await
        .unwrap_err();
    assert!(err.contains("truncated"), "truncated: {err}");
    let mut chars: Vec<char> = fresh.chars().collect();
    let i = chars.len() - 20;
    chars[i] = if chars[i] == 'Q' { 'R' } else { 'Q' };
    let err = accept_invite(&c, chars.into_iter().collect::<String>())
        .await
        .unwrap_err();
    assert!(err.contains("damaged"), "tampered: {err}");

    // Revoked.
    let created = create_invite(&a, Role::Partner, 3600).await;
    admin(
        &a,
        AdminRequest::InviteRevoke {
            invite_id: created["invite_id"].as_str().unwrap().to_string(),
        },
    )
    .await
    .unwrap();
    let err = accept_invite(&c, token_of(&created)).await.unwrap_err();
    assert!(err.contains("revoked"), "revoked: {err}");

    // None of it let C in.
    let c_id = c.node_id().to_string();
    assert!(peers_of(&a)
        .await
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["node_id"] != c_id.as_str()));
    shutdown_all([a, b, c]).await;
}

// ---- hand-built peers that present the wrong credentials ---------------------

/// A raw QUIC client speaking labnet's ALPN as a node that never met anyone:
/// a fresh identity with its own, valid certificate.
fn fresh_client() -> quinn::ClientConfig {
    let id = Identity::generate().unwrap();
    raw_client(Some(own_credential(&id)), &[ALPN])
}

/// The Hello of a partner named `name`, at the protocol version this build speaks.
fn hello(name: &str) -> Hello {
    raw_peer::hello(name, PeerRole::Partner)
}

/// A close code as a raw connection sees it.
fn close_code(code: CloseCode) -> Option<u64> {
    Some(u64::from(code.as_u32()))
}

/// A raw QUIC client presenting `cred` (or no certificate), with `alpn`.
fn raw_client(cred: Option<Arc<CertifiedKey>>, alpn: &[&[u8]]) -> quinn::ClientConfig {
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(AcceptAnything));
    let mut config = match cred {
        Some(c) => builder.with_client_cert_resolver(Arc::new(Fixed(c))),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
    quinn::ClientConfig::new(Arc::new(
        quinn::crypto::rustls::QuicClientConfig::try_from(config).unwrap(),
    ))
}

/// A raw QUIC server presenting `cred`, with `alpn`, that accepts any client.
fn raw_server(cred: Arc<CertifiedKey>, alpn: &[&[u8]]) -> quinn::Endpoint {
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_no_client_auth()
    .with_cert_resolver(Arc::new(Fixed(cred)));
    config.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(config).unwrap();
    let server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let endpoint = quinn::Endpoint::server(server, "127.0.0.1:0".parse().unwrap()).unwrap();
    // Accept in the background so handshakes can run.
    let e = endpoint.clone();
    tokio::spawn(async move {
        while let Some(incoming) = e.accept().await {
            tokio::spawn(async move {
                if let Ok(c) = incoming.await {
                    let _ = c.accept_bi().await;
                }
            });
        }
    });
    endpoint
}

/// What happened to a raw client's connection attempt.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// The client's own TLS handshake failed.
    HandshakeFailed(String),
    /// The node closed the connection at the QUIC/TLS level (an alert): the
    /// server side of TLS refused what the client sent.
    ClosedByTls(String),
    /// The node closed it with an application code.
    ClosedByNode(u64),
    /// Still open after a while: the node accepted it.
    StillOpen,
}

async fn try_connect(config: quinn::ClientConfig, target: std::net::SocketAddr) -> Outcome {
    let endpoint = client_endpoint();
    let connecting = match endpoint.connect_with(config, target, "labnet") {
        Ok(c) => c,
        Err(e) => return Outcome::HandshakeFailed(e.to_string()),
    };
    let connection = match tokio::time::timeout(WAIT, connecting).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return Outcome::HandshakeFailed(e.to_string()),
        Err(_) => return Outcome::HandshakeFailed("timeout".into()),
    };
    // In TLS 1.3 the client finishes before the server has checked the client's
    // certificate, so a refusal can arrive just after "connected". Opening a
    // stream forces the exchange.
    if let Ok((mut send, _recv)) = connection.open_bi().await {
        let _ = send.write_all(b"x").await;
    }
    match tokio::time::timeout(Duration::from_secs(2), connection.closed()).await {
        Ok(quinn::ConnectionError::ApplicationClosed(c)) => {
            Outcome::ClosedByNode(c.error_code.into_inner())
        }
        Ok(other) => Outcome::ClosedByTls(other.to_string()),
        Err(_) => Outcome::StillOpen,
    }
}

fn handshake_bytes(hello: Hello) -> Vec<u8> {
    let mut h = Handshake::dialer(hello);
    std::iter::from_fn(|| h.poll_transmit()).flatten().collect()
}

/// Connects, sends `bytes` on a stream, and returns the close code the node
/// used and the handshake reply it sent, if any.
async fn speak(
    config: quinn::ClientConfig,
    target: std::net::SocketAddr,
    bytes: &[u8],
) -> (Option<u64>, Option<HandshakeEvent>) {
    let endpoint = client_endpoint();
    let connection = endpoint
        .connect_with(config, target, "labnet")
        .unwrap()
        .await
        .unwrap();
    let (mut send, mut recv) = connection.open_bi().await.unwrap();
    let _ = send.write_all(bytes).await;
    let mut reader = Handshake::dialer(hello("x"));
    let _ = reader.poll_transmit();
    let mut reply = None;
    let mut buf = [0u8; 2048];
    if let Ok(Ok(Some(n))) = tokio::time::timeout(WAIT, recv.read(&mut buf)).await {
        reader.handle_bytes(&buf[..n]);
        reply = reader.poll_event();
    }
    let code = match tokio::time::timeout(WAIT, connection.closed()).await {
        Ok(quinn::ConnectionError::ApplicationClosed(c)) => Some(c.error_code.into_inner()),
        _ => None,
    };
    (code, reply)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_handshakes_close_with_their_own_codes() {
    let (_tmp, [node]) = partners_in_tmp(["Athens"]).await;
    let target = node.listen_addr();
    // Not a handshake message at all.
    let (got, _) = speak(fresh_client(), target, &[0, 0, 0, 3, 0xee, 0xee, 0xee]).await;
    assert_eq!(got, close_code(CloseCode::Malformed));
    // A frame announcing more than a handshake may hold.
    let (got, _) = speak(fresh_client(), target, &(64 * 1024u32).to_be_bytes()).await;
    assert_eq!(got, close_code(CloseCode::FrameTooLarge));
    // Another protocol version: refused with a reason the operator can act
    // on. A node of the first version of the wire (Automerge sync messages,
    // no signed statements) is told to upgrade.
    let this_version = format!("protocol {PROTOCOL_VERSION}");
    for (name, version, reason_says) in
        [("Future", 9, this_version.as_str()), ("Old", 1, "upgrade")]
    {
        let other = Hello {
            version,
            ..hello(name)
        };
        let (got, reply) = speak(fresh_client(), target, &handshake_bytes(other)).await;
        assert_eq!(
            got,
            close_code(CloseCode::VersionMismatch),
            "version {version}"
        );
        assert!(
            matches!(reply, Some(HandshakeEvent::Refused { ref reason, .. }) if reason.contains(reason_says)),
            "version {version}: {reply:?}"
        );
    }
    // The node is still fine.
    assert!(admin(&node, AdminRequest::Status).await.is_ok());
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_fresh_keys_leave_pending_at_its_bound_and_one_address_is_rate_limited() {
    let tmp = tempfile::tempdir().unwrap();
    let mut transport = fast_transport();
    // Lift the per-address limit so the bound on the list is what is tested.
    transport.pending_burst = 100_000;
    transport.pending_refill_per_sec = 100_000.0;
    transport.pending_max = 256;
    let node = start(&init(tmp.path(), "Flood", Role::Partner, 0), transport).await;
    let target = node.listen_addr();
    let hello = handshake_bytes(hello("flood"));
    let mut tasks = tokio::task::JoinSet::new();
    let attempts = 1000;
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for _ in 0..16 {
        let next = Arc::clone(&next);
        let hello = hello.clone();
        tasks.spawn(async move {
            let endpoint = client_endpoint();
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < attempts {
                let Ok(connecting) = endpoint.connect_with(fresh_client(), target, "labnet") else {
                    continue;
                };
                let Ok(connection) = connecting.await else {
                    continue;
                };
                if let Ok((mut send, _recv)) = connection.open_bi().await {
                    let _ = send.write_all(&hello).await;
                }
                let _ = tokio::time::timeout(WAIT, connection.closed()).await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let pending = pending_ids(&node).await;
    assert_eq!(pending.len(), 256, "the pending list stays at its bound");
    node.shutdown().await;

    // With the default limit, one address gets a handful of pending records, then
    // RateLimited.
    let node = start(&tmp.path().join("Flood"), fast_transport()).await;
    let target = node.listen_addr();
    let mut codes = Vec::new();
    for _ in 0..8 {
        let (code, _) = speak(fresh_client(), target, &hello).await;
        codes.push(code);
    }
    let limited = close_code(CloseCode::RateLimited);
    assert!(
        codes
            .iter()
            .take(5)
            .all(|c| *c == close_code(CloseCode::NotApproved)),
        "{codes:?}"
    );
    assert!(codes.iter().skip(5).all(|c| *c == limited), "{codes:?}");
    node.shutdown().await;
}

fn refused_by_tls(outcome: &Outcome) -> bool {
    matches!(
        outcome,
        Outcome::HandshakeFailed(_) | Outcome::ClosedByTls(_)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_refused_when_the_node_accepts() {
    let (_tmp, [node]) = partners_in_tmp(["Modena"]).await;
    let victim = Identity::generate().unwrap(); // an approved peer the attacker imitates
    approve(&node, victim.node_id(), None).await;
    let attacker = Identity::generate().unwrap();
    let other = Identity::generate().unwrap();
    let target = node.listen_addr();
    let cases: Vec<(&str, Option<Arc<CertifiedKey>>)> = vec![
        (
            "the victim's certificate with the attacker's key",
            Some(credential(vec![victim.cert_der().to_vec()], &attacker)),
        ),
        (
            "extra intermediates",
            Some(credential(
                vec![attacker.cert_der().to_vec(), other.cert_der().to_vec()],
                &attacker,
            )),
        ),
        (
            "a rogue leaf with the pinned certificate appended",
            Some(credential(
                vec![attacker.cert_der().to_vec(), victim.cert_der().to_vec()],
                &attacker,
            )),
        ),
        (
            "malformed DER",
            Some(credential(
                vec![vec![0x30, 0x82, 0x01, 0x00, 0xde, 0xad]],
                &attacker,
            )),
        ),
        ("no client certificate", None),
    ];
    for (what, cred) in cases {
        let outcome = try_connect(raw_client(cred, &[ALPN]), target).await;
        assert!(
            refused_by_tls(&outcome),
            "{what}: TLS must refuse it, got {outcome:?}"
        );
    }
    // Wrong ALPN: refused in TLS, or closed right after with WrongProtocol.
    let good = own_credential(&attacker);
    for alpn in [&[b"h3".as_slice()][..], &[][..]] {
        let outcome = try_connect(raw_client(Some(Arc::clone(&good)), alpn), target).await;
        assert!(
            refused_by_tls(&outcome)
                || outcome == Outcome::ClosedByNode(u64::from(CloseCode::WrongProtocol.as_u32())),
            "ALPN {alpn:?}: {outcome:?}"
        );
    }
    // Impersonation: the attacker's own (valid) key, the victim's name. TLS lets
    // it through, the peer table does not: it is an unknown node, refused
    // NotApproved, parked in pending, and served nothing.
    let (code, reply) = speak(
        raw_client(Some(good), &[ALPN]),
        target,
        &handshake_bytes(hello("Victim City")),
    )
    .await;
    assert_eq!(code, close_code(CloseCode::NotApproved), "{reply:?}");
    assert!(
        matches!(reply, Some(HandshakeEvent::Refused { code, .. }) if code == CloseCode::NotApproved.as_u32()),
        "{reply:?}"
    );
    let pending = pending_ids(&node).await;
    assert_eq!(
        pending,
        vec![attacker.node_id().to_string()],
        "the impersonator is pending under its own id"
    );
    assert!(!is_connected(&node, victim.node_id()));
    assert!(!is_connected(&node, attacker.node_id()));
    assert!(!is_connected(&node, victim.node_id()));
    assert!(!is_connected(&node, attacker.node_id()));
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_refused_when_the_node_dials() {
    let (_tmp, [node]) = partners_in_tmp(["Mechelen"]).await;
    let pinned = Identity::generate().unwrap(); // the peer the node means to reach
    let attacker = Identity::generate().unwrap();
    let other = Identity::generate().unwrap();
    type Case<'a> = (&'a str, Arc<CertifiedKey>, &'a [&'a [u8]]);
    let cases: Vec<Case<'_>> = vec![
        (
            "a different node answering the address",
            own_credential(&attacker),
            &[ALPN],
        ),
        (
            "the pinned certificate with the wrong key",
            credential(vec![pinned.cert_der().to_vec()], &attacker),
            &[ALPN],
        ),
        (
            "extra intermediates",
            credential(
                vec![pinned.cert_der().to_vec(), other.cert_der().to_vec()],
                &pinned,
            ),
            &[ALPN],
        ),
        (
            "a rogue leaf with the pinned certificate appended",
            credential(
                vec![attacker.cert_der().to_vec(), pinned.cert_der().to_vec()],
                &attacker,
            ),
            &[ALPN],
        ),
        (
            "malformed DER",
            credential(vec![vec![0x30, 0x03, 0x02, 0x01, 0x00]], &pinned),
            &[ALPN],
        ),
        ("wrong ALPN", own_credential(&pinned), &[b"h3"]),
    ];
    for (what, cred, alpn) in cases {
        let server = raw_server(cred, alpn);
        let address = server.local_addr().unwrap().to_string();
        let result = node
            .context()
            .transport
            .dial(pinned.node_id(), &address, None)
            .await;
        assert!(result.is_err(), "{what}: dial must fail");
        assert!(!is_connected(&node, pinned.node_id()), "{what}");
        server.close(0u32.into(), b"");
    }
    node.shutdown().await;
}

#[test]
fn tls_1_2_is_refused_in_both_roles() {
    // QUIC cannot carry TLS 1.2 at all (quinn refuses such a config), so the
    // check is made on labnet's own rustls configurations, in memory.
    let ours = Identity::generate().unwrap();
    let theirs = Identity::generate().unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());

    // Our server, a TLS 1.2-only client.
    let server = labnet_node::transport::tls::server_config(&ours).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnything))
        .with_client_cert_resolver(Arc::new(Fixed(own_credential(&theirs))));
    assert!(handshake_in_memory(client, server).is_err());

    // Our client, a TLS 1.2-only server.
    let client = labnet_node::transport::tls::client_config(&ours, theirs.node_id()).unwrap();
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Fixed(own_credential(&theirs))));
    assert!(handshake_in_memory(client, server).is_err());
}

fn handshake_in_memory(
    client: rustls::ClientConfig,
    server: rustls::ServerConfig,
) -> Result<(), rustls::Error> {
    let mut c = rustls::ClientConnection::new(Arc::new(client), "labnet".try_into().unwrap())?;
    let mut s = rustls::ServerConnection::new(Arc::new(server))?;
    for _ in 0..10 {
        let mut buf = Vec::new();
        c.write_tls(&mut buf).unwrap();
        s.read_tls(&mut buf.as_slice()).unwrap();
        s.process_new_packets()?;
        let mut buf = Vec::new();
        s.write_tls(&mut buf).unwrap();
        c.read_tls(&mut buf.as_slice()).unwrap();
        c.process_new_packets()?;
        if !c.is_handshaking() && !s.is_handshaking() {
            return Ok(());
        }
    }
    Err(rustls::Error::General("handshake did not finish".into()))
}
