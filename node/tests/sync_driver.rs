//! The sync driver with real SQLite stores, two nodes joined by in-memory pipes.
//!
//! The sans-IO session has its own exhaustive tests; these check what the driver
//! adds: effects persisted in transactions, sessions resuming from what the
//! store remembers, live pushes, retraction acknowledgements and the disclosure
//! log.

#![allow(clippy::unwrap_used)] // a test that unwraps fails loudly, as it should

use std::time::Duration;

use std::sync::Arc;

use labnet_config::Role;
use labnet_node::identity::Identity;
use labnet_node::share::PublicationBody;
use labnet_node::store::StoreHandle;
use labnet_node::sync::driver::{run_session, DriverContext, DriverError, SessionEnd, SyncNotice};
use labnet_node::sync::{PeerInfo, SessionConfig};
use labnet_node::testing::{publish_sample_via, signed_store};
use labnet_node::trust::Scope;
use labnet_protocol::sync::DocId;
use labnet_protocol::NodeId;
use tokio::io::DuplexStream;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

struct TestNode {
    _dir: tempfile::TempDir,
    id: NodeId,
    identity: Arc<Identity>,
    ctx: DriverContext,
}

impl TestNode {
    fn new() -> TestNode {
        let dir = tempfile::tempdir().unwrap();
        let (identity, store) = signed_store(dir.path());
        let store_path = store.path().to_path_buf();
        let store = StoreHandle::new(store);
        let (local_changes, _) = broadcast::channel(1024);
        let (notices, _) = broadcast::channel(4096);
        TestNode {
            _dir: dir,
            id: identity.node_id(),
            identity,
            ctx: DriverContext {
                store,
                store_path,
                local_changes,
                notices,
                config: SessionConfig::default(),
            },
        }
    }

    async fn publish(&self, name: &str, text: &str, scope: Scope) -> String {
        let (doc_id, _) = publish_sample_via(&self.ctx.store, self.id, name, text, &scope).await;
        let _ = self
            .ctx
            .local_changes
            .send(DocId::new(doc_id.clone()).unwrap());
        doc_id
    }

    async fn replica_text(&self, doc_id: &str) -> Option<String> {
        let id = doc_id.to_string();
        self.ctx
            .store
            .call(move |s| {
                let (_, doc) = s.load_document(&id).unwrap()?;
                autosurgeon::hydrate::<_, PublicationBody>(&doc)
                    .ok()
                    .map(|b| b.practice.description)
            })
            .await
    }
}

/// A running sync session: how it ended, or the driver's error.
type SessionTask = JoinHandle<Result<SessionEnd, DriverError>>;

/// A sync session task of `node` with the partner `peer`, over `io` (one end of
/// an in-memory pipe), until `stopped` turns true or the session ends.
fn spawn_session(
    node: &TestNode,
    peer: NodeId,
    io: DuplexStream,
    stopped: watch::Receiver<bool>,
) -> SessionTask {
    let info = PeerInfo {
        local: node.id,
        local_role: Role::Partner,
        peer,
        peer_role: Role::Partner,
        signer: node.identity.clone(),
    };
    let (recv, send) = tokio::io::split(io);
    tokio::spawn(run_session(node.ctx.clone(), info, recv, send, stopped))
}

/// Connects two nodes (both partners) and returns the shutdown switch and the
/// two session tasks.
fn connect(a: &TestNode, b: &TestNode) -> (watch::Sender<bool>, SessionTask, SessionTask) {
    let (a_io, b_io) = tokio::io::duplex(1 << 20);
    let (stop, stopped) = watch::channel(false);
    let ta = spawn_session(a, b.id, a_io, stopped.clone());
    let tb = spawn_session(b, a.id, b_io, stopped);
    (stop, ta, tb)
}

async fn wait_for(
    mut notices: broadcast::Receiver<SyncNotice>,
    mut done: impl FnMut(&SyncNotice) -> bool,
) {
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match notices.recv().await {
                Ok(n) if done(&n) => return,
                Ok(_) => {}
                Err(e) => panic!("notices ended: {e}"),
            }
        }
    })
    .await
    .expect("timed out waiting for a sync notice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_converge_resume_push_and_retract() {
    let a = TestNode::new();
    let b = TestNode::new();
    let mut published = Vec::new();
    for i in 0..20 {
        published.push(
            a.publish(&format!("p{i}"), &format!("practice {i}"), Scope::Partners)
                .await,
        );
    }
    let hidden = a
        .publish(
            "only-for-someone-else",
            "not for b",
            Scope::Nodes(vec![NodeId::from_public_key(&[9; 32])]),
        )
        .await;

    let mut caught_up = b.ctx.notices.subscribe();
    let (stop, ta, tb) = connect(&a, &b);
    wait_for(b.ctx.notices.subscribe(), |n| {
        matches!(n, SyncNotice::CaughtUp { .. })
    })
    .await;
    let _ = caught_up.try_recv();
    for (i, doc_id) in published.iter().enumerate() {
        assert_eq!(
            b.replica_text(doc_id).await.as_deref(),
            Some(format!("practice {i}").as_str())
        );
    }
    assert_eq!(
        b.replica_text(&hidden).await,
        None,
        "out-of-scope publication never reaches b"
    );

    // A live change is pushed while connected.
    let acked = a.ctx.notices.subscribe();
    a.publish("p3", "practice 3, edited", Scope::Partners).await;
    wait_for(
        b.ctx.notices.subscribe(),
        |n| matches!(n, SyncNotice::ReplicaChanged { doc_id, .. } if doc_id == &published[3]),
    )
    .await;
    assert_eq!(
        b.replica_text(&published[3]).await.as_deref(),
        Some("practice 3, edited")
    );
    drop(acked);

    // Disconnect; change two publications on a; reconnect: only those move.
    stop.send(true).unwrap();
    // Both sessions are told to stop; A may see B's stream close first.
    let end = ta.await.unwrap().unwrap();
    assert!(
        matches!(end, SessionEnd::Shutdown | SessionEnd::PeerClosed),
        "{end:?}"
    );
    tb.await.unwrap().unwrap();
    a.publish("p5", "practice 5, v2", Scope::Partners).await;
    a.publish("p7", "practice 7, v2", Scope::Partners).await;
    let store_a = a.ctx.store.clone();
    let sent_before = store_a
        .call(|s| {
            s.disclosures(None, None)
                .unwrap()
                .iter()
                .filter(|d| d.action == "sent")
                .count()
        })
        .await;
    let mut changed = Vec::new();
    let mut notices = b.ctx.notices.subscribe();
    let (stop, ta, tb) = connect(&a, &b);
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match notices.recv().await.unwrap() {
                SyncNotice::ReplicaChanged { doc_id, .. } => changed.push(doc_id),
                SyncNotice::CaughtUp { .. } if changed.len() >= 2 => return,
                _ => {}
            }
        }
    })
    .await
    .unwrap();
    changed.sort();
    assert_eq!(
        changed,
        vec![published[5].clone(), published[7].clone()],
        "only the changed publications are synced"
    );
    let sent_after = store_a.call(|s| s.disclosures(None, None).unwrap()).await;
    let new_sent: Vec<_> = sent_after
        .iter()
        .filter(|d| d.action == "sent")
        .skip(sent_before)
        .collect();
    assert_eq!(
        new_sent.len(),
        2,
        "two versions disclosed on reconnect: {new_sent:?}"
    );
    assert!(new_sent.iter().all(|d| d.node_id == Some(b.id)
        && d.scope == "partners"
        && d.settings.contains("min_count")));

    // Retraction reaches b, which confirms it.
    let doc = published[0].clone();
    let retracted = doc.clone();
    store_a
        .call(move |s| s.retract_publication(&retracted).unwrap())
        .await;
    let _ = a.ctx.local_changes.send(DocId::new(doc.clone()).unwrap());
    wait_for(b.ctx.notices.subscribe(), |n| {
        matches!(n, SyncNotice::ReplicaRemoved { .. })
    })
    .await;
    assert_eq!(b.replica_text(&doc).await, None);
    let confirmed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let d = doc.clone();
            let acks = store_a.call(move |s| s.retraction_acks(&d).unwrap()).await;
            if !acks.is_empty() {
                return acks;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(confirmed, vec![b.id]);
    stop.send(true).unwrap();
    let _ = ta.await;
    let _ = tb.await;
    b.ctx.store.call(|s| s.integrity_check().unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_stream_ends_the_session_with_a_violation() {
    use tokio::io::AsyncWriteExt;
    let a = TestNode::new();
    let peer = NodeId::from_public_key(&[2; 32]);
    let (_stop, stopped) = watch::channel(false);
    let (a_io, mut evil) = tokio::io::duplex(1 << 16);
    let task = spawn_session(&a, peer, a_io, stopped.clone());
    evil.write_all(&[0, 0, 0, 5, 0xff, 0xfe, 0xfd, 0xfc, 0xfb])
        .await
        .unwrap();
    let end = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        matches!(end, SessionEnd::Violation { code, .. } if code > 0x5300),
        "{end:?}"
    );

    // An oversized length prefix is refused before anything is allocated.
    let (a_io, mut evil) = tokio::io::duplex(1 << 16);
    let task = spawn_session(&a, peer, a_io, stopped);
    evil.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    let result = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
    let frame_too_large = labnet_protocol::close::CloseCode::FrameTooLarge.as_u32();
    assert!(
        matches!(result, Ok(SessionEnd::Violation { code, .. }) if code == frame_too_large),
        "an oversized frame ends the session with FrameTooLarge: {result:?}"
    );
}

/// A peer that says Resume and then never reads is dropped once a write has
/// waited `WRITE_TIMEOUT`: it cannot hold the session's buffers (time is
/// paused, so the minute passes at once).
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_peer_that_stops_reading_is_dropped_after_the_write_timeout() {
    use labnet_protocol::frame::encode_frame;
    use labnet_protocol::sync::SyncMessage;
    use tokio::io::AsyncWriteExt;
    let a = TestNode::new();
    for i in 0..40 {
        a.publish(&format!("p{i}"), &format!("practice {i}"), Scope::Partners)
            .await;
    }
    let peer = NodeId::from_public_key(&[2; 32]);
    let (_stop, stopped) = watch::channel(false);
    // A pipe whose buffer holds far less than the inventory.
    let (a_io, mut evil) = tokio::io::duplex(256);
    let task = spawn_session(&a, peer, a_io, stopped);
    let mut frame = Vec::new();
    encode_frame(
        &SyncMessage::Resume {
            version: labnet_protocol::sync::SYNC_PROTOCOL_VERSION,
            from: None,
        }
        .encode(),
        &mut frame,
    );
    evil.write_all(&frame).await.unwrap();
    let result = task.await.unwrap();
    assert!(
        matches!(result, Err(DriverError::WriteTimeout(_))),
        "{result:?}"
    );
    drop(evil);
}
