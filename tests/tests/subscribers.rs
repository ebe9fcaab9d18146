//! Subscribers, feeds and the demo: what an international network sees, the
//! exports it passes on, and the one-command tour of the whole network.

use std::path::Path;
use std::time::Duration;

use automerge::transaction::Transactable;
use automerge::ROOT;
use labnet_config::Role;
use labnet_node::api::AdminRequest;
use labnet_node::daemon::Daemon;
use labnet_protocol::sync::publication_id;
use labnet_tests::nodes::{
    admin, eventually, fast_transport, feed_entries, invite, replicas, shutdown_all, start,
    start_node, start_partner,
};
use labnet_tests::{json_of, labnet_bin, labnet_ok, partner_practices, run_labnet, stdout};

const WAIT: Duration = Duration::from_secs(30);

/// The ids of the replicas a node holds.
async fn replica_ids(d: &Daemon) -> Vec<String> {
    replicas(d).await.into_keys().collect()
}

/// The heads of one of `d`'s own publications.
async fn publication_heads(d: &Daemon, doc_id: &str) -> Vec<automerge::ChangeHash> {
    let doc_id = doc_id.to_string();
    d.context()
        .store
        .call(move |s| s.publication_row(&doc_id).unwrap().unwrap().heads)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_receives_public_publications_only_and_can_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let city = start_partner(tmp.path(), "Vienna").await;
    let other = start_partner(tmp.path(), "Athens").await;
    let subscriber = start_node(tmp.path(), "ISRG", Role::Subscriber).await;
    let practices = labnet_node::lab::import::parse_practices(
        labnet_node::lab::import::ImportInput::Path(Path::new(&partner_practices())),
        None,
    )
    .unwrap();
    let vienna: Vec<_> = practices
        .into_iter()
        .filter(|p| p.city == "Vienna")
        .collect();
    assert!(vienna.len() >= 3);
    admin(
        &city,
        AdminRequest::PracticeImport {
            practices: vienna.clone(),
        },
    )
    .await
    .unwrap();
    invite(&city, &other, Role::Partner).await;
    invite(&city, &subscriber, Role::Subscriber).await;
    let scopes = [
        "public".to_string(),
        "partners".to_string(),
        other.node_id().to_string(),
    ];
    let mut ids = Vec::new();
    for (p, scope) in vienna.iter().zip(&scopes) {
        let out = admin(
            &city,
            AdminRequest::Share {
                practice_id: p.id.clone(),
                scope: scope.clone(),
            },
        )
        .await
        .unwrap();
        ids.push(out["doc_id"].as_str().unwrap().to_string());
    }
    assert!(
        eventually(WAIT, async || replica_ids(&other).await.len() == 3).await,
        "the partner gets all three"
    );
    assert!(
        eventually(WAIT, async || replica_ids(&subscriber).await
            == vec![ids[0].clone()])
        .await,
        "the subscriber gets the public one"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        replica_ids(&subscriber).await,
        vec![ids[0].clone()],
        "and nothing else"
    );
    assert_eq!(feed_entries(&subscriber).await.len(), 1);
    // A subscriber cannot share.
    assert!(admin(
        &subscriber,
        AdminRequest::Share {
            practice_id: vienna[0].id.clone(),
            scope: "public".into()
        }
    )
    .await
    .is_err());

    // Write attempt 1: the subscriber alters its copy of the city's publication
    // and reconnects. Write attempt 2: a publication of its own, as if it
    // could share. A subscriber's node serves nothing, so neither leaves it.
    let public = ids[0].clone();
    let city_heads = publication_heads(&city, &public).await;
    let sub_dir = subscriber.context().data_dir.root().to_path_buf();
    subscriber.shutdown().await;
    {
        // Opened as `labnet` opens a stopped node's store: signing with its key.
        let data_dir = labnet_node::data_dir::DataDir::new(&sub_dir);
        let own_id = data_dir.load_identity().unwrap().node_id();
        let mut store = data_dir.open_store().unwrap();
        let (_, mut doc) = store.load_document(&public).unwrap().unwrap();
        let before = doc.get_heads();
        doc.put(ROOT, "meta", "hijacked").unwrap();
        let chunk = doc.save_after(&before);
        let heads = doc.get_heads();
        let origin = city.node_id();
        store
            .batch(|b| b.append_replica_changes(&public, origin, &heads, &chunk))
            .unwrap();
        let own = publication_id(own_id, "sneaky").unwrap();
        let mut fake = labnet_node::share::publication::sample_doc(
            &labnet_node::share::publication::sample_body(own_id, "sneaky", 1),
        );
        store
            .save_publication(own.as_str(), &mut fake, "public")
            .unwrap();
    }
    let subscriber = start(&sub_dir, fast_transport()).await;
    // Something must arrive after whatever the subscriber could send: the city
    // makes its partners-only practice public, and the subscriber receives it.
    admin(
        &city,
        AdminRequest::Share {
            practice_id: vienna[1].id.clone(),
            scope: "public".into(),
        },
    )
    .await
    .unwrap();
    assert!(
        eventually(WAIT, async || replica_ids(&subscriber)
            .await
            .contains(&ids[1]))
        .await,
        "the subscriber receives the newly public practice"
    );
    let after = publication_heads(&city, &public).await;
    assert_eq!(after, city_heads, "the city's publication is unchanged");
    assert!(
        replica_ids(&city).await.is_empty(),
        "the city stored nothing from the subscriber"
    );
    shutdown_all([city, other, subscriber]).await;
}

#[test]
fn feed_filters_and_exports_on_known_data() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    labnet_ok(
        dir,
        &["init", "--name", "Partners", "--listen", "127.0.0.1:0"],
    );
    labnet_ok(dir, &["practice", "import", &partner_practices()]);
    let list = json_of(dir, &["practice", "list", "--json"]);
    let ids: Vec<(String, String, Option<String>)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap().into(),
                p["city"].as_str().unwrap().into(),
                p["thematic_area"].as_str().map(Into::into),
            )
        })
        .collect();
    for (id, _, _) in &ids {
        labnet_ok(dir, &["share", id, "--scope", "public"]);
    }
    let all = json_of(dir, &["feed", "list", "--json"]);
    assert_eq!(all.as_array().unwrap().len(), 25);
    // --city is the publisher (this node), never a practice's own place.
    let ours = json_of(dir, &["feed", "list", "--city", "partners", "--json"]);
    assert_eq!(ours.as_array().unwrap().len(), 25);
    let modena = json_of(dir, &["feed", "list", "--city", "modena", "--json"]);
    assert_eq!(modena, serde_json::json!([]));
    let want_modena = ids
        .iter()
        .filter(|(_, c, _)| c.to_lowercase() == "modena")
        .count();
    assert!(want_modena > 0);
    let placed_in_modena = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["place"].as_str().map(str::to_lowercase).as_deref() == Some("modena"))
        .count();
    assert_eq!(placed_in_modena, want_modena);
    let care = json_of(dir, &["feed", "list", "--area", "care", "--json"]);
    let want_care = ids
        .iter()
        .filter(|(_, _, a)| a.as_deref() == Some("care"))
        .count();
    assert_eq!(care.as_array().unwrap().len(), want_care);
    assert_eq!(
        json_of(dir, &["feed", "list", "--since", "2999-01-01", "--json"]),
        serde_json::json!([])
    );
    let out = run_labnet(dir, &["feed", "list", "--area", "sport"]);
    assert_eq!(out.status.code(), Some(1));

    // Atom, parsed by an XML parser.
    let atom = dir.join("feed.xml");
    labnet_ok(
        dir,
        &[
            "feed",
            "export",
            "--format",
            "atom",
            "--out",
            atom.to_str().unwrap(),
        ],
    );
    let text = std::fs::read_to_string(&atom).unwrap();
    let doc = roxmltree::Document::parse(&text).expect("valid XML");
    let entries: Vec<_> = doc
        .root_element()
        .children()
        .filter(|n| n.tag_name().name() == "entry")
        .collect();
    assert_eq!(entries.len(), 25);
    for e in &entries {
        for required in ["id", "title", "updated", "author", "summary"] {
            assert!(
                e.children().any(|c| c.tag_name().name() == required),
                "entry without {required}"
            );
        }
    }
    // JSON Feed's required fields.
    let jf: serde_json::Value = serde_json::from_str(&stdout(&run_labnet(
        dir,
        &["feed", "export", "--format", "jsonfeed"],
    )))
    .unwrap();
    assert_eq!(jf["version"], "https://jsonfeed.org/version/1.1");
    assert!(jf["title"].is_string());
    assert!(jf["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["id"].is_string() && i["content_text"].is_string()));
    // CSV: one row per practice, with the filter applied.
    let csv_text = stdout(&run_labnet(
        dir,
        &["feed", "export", "--format", "csv", "--area", "care"],
    ));
    let rows = csv::Reader::from_reader(csv_text.as_bytes())
        .records()
        .count();
    assert_eq!(rows, want_care);
    // A retracted publication leaves the feed.
    labnet_ok(dir, &["unshare", &ids[0].0]);
    assert_eq!(
        json_of(dir, &["feed", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        24
    );
    let out = run_labnet(dir, &["feed", "show", &ids[0].0]);
    assert_eq!(out.status.code(), Some(1));
    let out = run_labnet(dir, &["feed", "export", "--format", "rss"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn the_demo_runs_three_cities_to_convergence() {
    let tmp = tempfile::tempdir().unwrap();
    let keep = tmp.path().join("demo");
    let out = std::process::Command::new(labnet_bin())
        .args(["demo", "--cities", "3", "--keep"])
        .arg(&keep)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("converged"), "{text}");
    assert!(
        text.contains("[name removed]"),
        "the example shows anonymization at work: {text}"
    );
    assert!(text.contains("ISRG (subscriber)"));
    assert!(
        keep.join("isrg").join("labnet.db").exists(),
        "--keep keeps the data directories"
    );
    let out = std::process::Command::new(labnet_bin())
        .args(["demo", "--cities", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}
