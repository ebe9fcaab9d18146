//! Federated sync between real nodes on 127.0.0.1: full mesh convergence under
//! mixed scopes, partitions and restarts, forged publications, retraction, and
//! concurrent edits by the origin.
//!
//! Publications here are written the way the sharing code writes them (store
//! plus a change notification); what is checked is the network's behaviour.

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use labnet_config::Role;
use labnet_node::api::AdminRequest;
use labnet_node::daemon::Daemon;
use labnet_node::share::publication::{edit_sample, sample_body, sample_doc};
use labnet_node::share::PublicationBody;
use labnet_node::trust::Scope;
use labnet_protocol::sync::publication_id;
use labnet_protocol::NodeId;
use labnet_tests::free_udp_port;
use labnet_tests::nodes::{
    admin, announce, eventually, fast_transport, init, pair_by_contacts, partners_in_tmp, publish,
    replicas, shutdown_all, start, start_cities,
};

const CONVERGE: Duration = Duration::from_secs(60);

/// Our own publications: doc id → heads.
async fn published(d: &Daemon) -> BTreeMap<String, Vec<automerge::ChangeHash>> {
    d.context()
        .store
        .call(|s| {
            s.publication_rows()
                .unwrap()
                .into_iter()
                .filter(|r| !r.retracted)
                .map(|r| (r.doc_id, r.heads))
                .collect()
        })
        .await
}

/// How many of `nodes` hold a replica of `doc`.
async fn holders(nodes: &[Daemon], doc: &str) -> usize {
    let mut count = 0;
    for n in nodes {
        if replicas(n).await.contains_key(doc) {
            count += 1;
        }
    }
    count
}

/// Pairs every two of `nodes` by contacts: a full mesh.
async fn connect_all(nodes: &[Daemon]) {
    for (i, a) in nodes.iter().enumerate() {
        for b in nodes.iter().skip(i + 1) {
            pair_by_contacts(a, b).await;
        }
    }
}

/// Waits until every node holds exactly `expected[i]`, with the origin's heads.
async fn converge(nodes: &[impl Borrow<Daemon>], expected: &[BTreeSet<String>]) -> bool {
    eventually(CONVERGE, async || {
        let mut origin_heads = BTreeMap::new();
        for n in nodes {
            origin_heads.extend(published(n.borrow()).await);
        }
        for (n, want) in nodes.iter().zip(expected) {
            let have = replicas(n.borrow()).await;
            if have.keys().cloned().collect::<BTreeSet<_>>() != *want {
                return false;
            }
            if have
                .iter()
                .any(|(id, heads)| origin_heads.get(id) != Some(heads))
            {
                return false;
            }
        }
        true
    })
    .await
}

/// Which publications each node should hold, given who published what to whom.
fn expected(nodes: &[NodeId], shared: &[(usize, String, Scope)]) -> Vec<BTreeSet<String>> {
    nodes
        .iter()
        .enumerate()
        .map(|(i, id)| {
            shared
                .iter()
                .filter(|(origin, _, scope)| {
                    *origin != i && labnet_node::trust::visible_to(scope, *id, Role::Partner)
                })
                .map(|(_, doc, _)| doc.clone())
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twelve_cities_in_full_mesh_converge_to_exactly_their_scopes() {
    let tmp = tempfile::tempdir().unwrap();
    let nodes = start_cities(tmp.path(), 12).await;
    let ids: Vec<NodeId> = nodes.iter().map(|n| n.node_id()).collect();
    connect_all(&nodes).await;
    let mut shared = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let next = ids[(i + 1) % ids.len()];
        for (k, scope) in [Scope::Public, Scope::Partners, Scope::Nodes(vec![next])]
            .into_iter()
            .enumerate()
        {
            let doc = publish(
                n,
                &format!("practice{k}"),
                &format!("practice {k} of city {i}"),
                &scope,
            )
            .await
            .0;
            shared.push((i, doc, scope));
        }
    }
    let want = expected(&ids, &shared);
    assert!(want.iter().all(|w| w.len() == 11 * 2 + 1));
    assert!(
        converge(&nodes, &want).await,
        "the mesh converged to exactly the scopes"
    );

    // A publication scoped to one city was never announced to another: no other
    // node holds it or a sync state for it, and its origin logged sending it to
    // that one city only.
    for (i, n) in nodes.iter().enumerate() {
        let (origin, doc, scope) = shared
            .iter()
            .find(|(o, _, s)| *o == i && matches!(s, Scope::Nodes(_)))
            .unwrap();
        let Scope::Nodes(named) = scope else {
            unreachable!()
        };
        let sent_to: BTreeSet<Option<NodeId>> = n
            .context()
            .store
            .call({
                let doc = doc.clone();
                move |s| {
                    s.disclosures(None, None)
                        .unwrap()
                        .into_iter()
                        .filter(|d| d.action == "sent" && d.doc_id == doc)
                        .map(|d| d.node_id)
                        .collect()
                }
            })
            .await;
        assert_eq!(
            sent_to,
            named.iter().map(|n| Some(*n)).collect(),
            "city {origin}'s scoped publication"
        );
        for (j, other) in nodes.iter().enumerate() {
            if Some(&ids[j]) == named.first() || j == i {
                continue;
            }
            let doc = doc.clone();
            let leaked = other
                .context()
                .store
                .call(move |s| {
                    s.load_document(&doc).unwrap().is_some() || s.statement(&doc).unwrap().is_some()
                })
                .await;
            assert!(
                !leaked,
                "city {j} learned of city {i}'s publication scoped to another city"
            );
        }
    }
    shutdown_all(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_partition_restarted_cities_receive_only_what_they_missed() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs: Vec<PathBuf> = (0..12)
        .map(|i| {
            init(
                tmp.path(),
                &format!("city{i}"),
                Role::Partner,
                free_udp_port(),
            )
        })
        .collect();
    let mut live: Vec<Daemon> = Vec::new();
    for d in &dirs {
        live.push(start(d, fast_transport()).await);
    }
    let ids: Vec<NodeId> = live.iter().map(|n| n.node_id()).collect();
    connect_all(&live).await;
    // Twenty publications of ~3 KB of text per city, random so that Automerge's
    // compression cannot shrink the history to nothing.
    let mut shared = Vec::new();
    for (i, n) in live.iter().enumerate() {
        for k in 0..20 {
            let body: String = {
                use rand::Rng;
                let mut rng = rand::thread_rng();
                (0..3000)
                    .map(|_| rng.sample(rand::distributions::Alphanumeric) as char)
                    .collect()
            };
            let doc = publish(n, &format!("p{k}"), &body, &Scope::Partners)
                .await
                .0;
            shared.push((i, doc, Scope::Partners));
        }
    }
    assert!(
        converge(&live, &expected(&ids, &shared)).await,
        "initial convergence"
    );
    let received = |d: &Daemon| {
        let t = d.context().transport.clone();
        ids.iter()
            .filter_map(|p| t.connection_bytes(*p))
            .map(|(_, rx)| rx)
            .sum::<u64>()
    };
    let initial_rx: Vec<u64> = live.iter().map(received).collect();

    // Partition: stop cities 8..12. Both sides change and share.
    shutdown_all(live.drain(8..)).await;
    for (i, n) in live.iter().enumerate() {
        publish(
            n,
            "p0",
            &format!("edited during the partition by city {i}"),
            &Scope::Partners,
        )
        .await;
        let doc = publish(n, "new", "shared during the partition", &Scope::Partners)
            .await
            .0;
        shared.push((i, doc, Scope::Partners));
    }
    // The stopped cities edit offline (as `labnet share` on a stopped node does).
    for (k, dir) in dirs.iter().enumerate().skip(8) {
        let d = start(dir, fast_transport()).await;
        // Started alone, briefly, to write; the others are not dialed yet (its
        // dialers run, but the test only cares that it ends up converged).
        publish(
            &d,
            "p1",
            &format!("edited offline by city {k}"),
            &Scope::Partners,
        )
        .await;
        d.shutdown().await;
    }
    let mut restarted = Vec::new();
    for dir in dirs.iter().skip(8) {
        restarted.push(start(dir, fast_transport()).await);
    }
    let all: Vec<&Daemon> = live.iter().chain(restarted.iter()).collect();
    assert!(
        converge(&all, &expected(&ids, &shared)).await,
        "all twelve converge after the partition"
    );
    // What each restarted city received on its new connections is of the order
    // of what it missed (8 edits and 8 new small publications, handshakes and
    // inventories), not of the whole history it already had.
    for (k, d) in restarted.iter().enumerate() {
        let rx = received(d);
        let initial = initial_rx[8 + k];
        println!(
            "city {}: caught up with {rx} bytes; its initial sync took {initial}",
            8 + k
        );
        assert!(
            rx * 4 < initial,
            "city {}: caught up with {rx} bytes, initial sync took {initial}",
            8 + k
        );
    }
    shutdown_all(live.into_iter().chain(restarted)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_publications_are_rejected_and_reach_no_replica() {
    let (_tmp, [origin, victim, forger]) = partners_in_tmp(["origin", "victim", "forger"]).await;
    let doc = publish(&origin, "practice", "the origin's text", &Scope::Partners)
        .await
        .0;
    // The forger cannot sign for the origin's id (its store refuses, and no
    // peer would verify it), so it publishes, under its own id and key, a
    // document whose content claims to be the origin's practice.
    let forged = publication_id(forger.node_id(), "practice")
        .unwrap()
        .as_str()
        .to_string();
    let origin_id = origin.node_id();
    let refused = doc.clone();
    forger
        .context()
        .store
        .call(move |s| {
            let mut doc = sample_doc(&sample_body(origin_id, "practice", 1));
            edit_sample(&mut doc, "FORGED");
            assert!(s
                .save_publication(&refused, &mut doc.clone(), "partners")
                .is_err());
            s.save_publication(&forged, &mut doc, "partners").unwrap();
        })
        .await;
    // The victim meets the forger first, then the origin.
    pair_by_contacts(&victim, &forger).await;
    let forger_id = forger.node_id();
    // The forger's connection is closed by the victim (BadDocument), again at each redial.
    let closed = eventually(Duration::from_secs(10), async || {
        let log = victim.context().store.call(|s| s.replicas().unwrap()).await;
        log.is_empty() && !victim.context().transport.is_connected(forger_id)
    })
    .await;
    assert!(closed);
    pair_by_contacts(&victim, &origin).await;
    let origin_heads = published(&origin).await;
    assert!(
        eventually(CONVERGE, async || replicas(&victim).await == origin_heads).await,
        "the victim holds the origin's version"
    );
    let text = victim
        .context()
        .store
        .call(move |s| {
            let (_, d) = s.load_document(&doc).unwrap().unwrap();
            String::from_utf8_lossy(&d.clone().save()).contains("FORGED")
        })
        .await;
    assert!(!text, "no byte of the forged change reached the replica");
    shutdown_all([origin, victim, forger]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retraction_reaches_every_replica_and_is_confirmed() {
    let tmp = tempfile::tempdir().unwrap();
    let nodes = start_cities(tmp.path(), 4).await;
    connect_all(&nodes).await;
    let doc = publish(&nodes[0], "practice", "to be retracted", &Scope::Partners)
        .await
        .0;
    assert!(
        eventually(CONVERGE, async || holders(&nodes[1..], &doc).await
            == nodes.len() - 1)
        .await
    );
    // Status on the origin: every peer connected, one publication in scope,
    // nothing behind once they acknowledged.
    let caught_up = eventually(Duration::from_secs(10), async || {
        let status = admin(&nodes[0], AdminRequest::Status).await.unwrap();
        let sync = status["sync"].as_array().unwrap().clone();
        sync.len() == 3
            && sync.iter().all(|p| {
                p["connected"] == true
                    && p["in_scope"] == 1
                    && p["not_up_to_date"] == 0
                    && p["last_sync"].is_i64()
            })
    })
    .await;
    assert!(
        caught_up,
        "{}",
        admin(&nodes[0], AdminRequest::Status).await.unwrap()
    );
    let id = doc.clone();
    nodes[0]
        .context()
        .store
        .call(move |s| s.retract_publication(&id).unwrap())
        .await;
    announce(&nodes[0], &doc);
    assert!(
        eventually(CONVERGE, async || holders(&nodes[1..], &doc).await == 0).await,
        "every replica removed it"
    );
    let status = admin(&nodes[0], AdminRequest::Status).await.unwrap();
    let confirmed = eventually(Duration::from_secs(10), async || {
        let status = admin(&nodes[0], AdminRequest::Status).await.unwrap();
        status["retractions"][0]["confirmed_by"]
            .as_array()
            .is_some_and(|a| a.len() == 3)
    })
    .await;
    assert!(confirmed, "status shows three confirmations: {status}");
    shutdown_all(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_from_two_sessions_of_the_origin_merge_everywhere() {
    let (_tmp, nodes) = partners_in_tmp(["origin", "reader"]).await;
    connect_all(&nodes).await;
    let doc = publish(&nodes[0], "practice", "first version", &Scope::Partners)
        .await
        .0;
    assert!(
        eventually(CONVERGE, async || replicas(&nodes[1])
            .await
            .contains_key(&doc))
        .await
    );
    // Two sessions (two CLI processes, say) load the same version and each edit
    // a different field, then save one after the other.
    let id = doc.clone();
    nodes[0]
        .context()
        .store
        .call(move |s| {
            let mut one = s
                .load_document(&id)
                .unwrap()
                .unwrap()
                .1
                .with_actor(automerge::ActorId::random());
            let mut two = s
                .load_document(&id)
                .unwrap()
                .unwrap()
                .1
                .with_actor(automerge::ActorId::random());
            let mut body: PublicationBody = autosurgeon::hydrate(&one).unwrap();
            body.practice.name = "title from session one".into();
            autosurgeon::reconcile(&mut one, &body).unwrap();
            let mut body: PublicationBody = autosurgeon::hydrate(&two).unwrap();
            body.practice.link = Some("https://example.org/from-session-two".into());
            autosurgeon::reconcile(&mut two, &body).unwrap();
            s.save_publication(&id, &mut one, "partners").unwrap();
            s.save_publication(&id, &mut two, "partners").unwrap();
        })
        .await;
    announce(&nodes[0], &doc);
    let origin_heads = published(&nodes[0]).await;
    assert_eq!(
        origin_heads[&doc].len(),
        2,
        "two concurrent heads at the origin"
    );
    assert!(
        eventually(CONVERGE, async || replicas(&nodes[1]).await == origin_heads).await,
        "the reader has both edits' heads"
    );
    let id = doc.clone();
    let merged = nodes[1]
        .context()
        .store
        .call(move |s| {
            let (_, d) = s.load_document(&id).unwrap().unwrap();
            let body: PublicationBody = autosurgeon::hydrate(&d).unwrap();
            (
                body.practice.name == "title from session one",
                body.practice.link.as_deref() == Some("https://example.org/from-session-two"),
            )
        })
        .await;
    assert_eq!(
        merged,
        (true, true),
        "both sessions' edits reached the replica"
    );
    shutdown_all(nodes).await;
}
