//! A publication's history over real nodes: a practice shared before the
//! roster named someone in its text, then shared again after.
//!
//! The second share finds the name in the history peers hold, re-issues the
//! publication (a fresh document under `<id>:g2`) and retracts the first. The
//! partner ends with no document whose history holds the name, keeps a
//! tombstone of the old id, holds the new generation under the same feed id,
//! and the origin's status shows the partner confirmed the deletion.
//!
//! A stricter setting learnt while the node was stopped (a higher minimum
//! count) is checked against every publication's history at start, figures
//! included, before any peer is served.

use std::time::Duration;

use automerge::legacy::{Key, OpType};
use automerge::{AutoCommit, ScalarValue};
use labnet_config::{Overrides, Role};
use labnet_node::api::AdminRequest;
use labnet_node::daemon::{Daemon, StartOptions};
use labnet_node::data_dir::DataDir;
use labnet_node::lab::import::{parse_practices, parse_roster, ImportFormat, ImportInput};
use labnet_tests::nodes::{
    admin, deletion_confirmed, doc_id_of, eventually, fast_transport, feed_entries, holds, init,
    invite, live_publications, partners_in_tmp, replicas, share, shutdown_all, start_partner,
};

const WAIT: Duration = Duration::from_secs(60);

/// Every string written anywhere in a document's history: values put or
/// inserted (overwritten and deleted ones too), map keys, mark names and
/// values, change messages.
fn history_strings(doc: &mut AutoCommit) -> Vec<String> {
    let mut out = Vec::new();
    for change in doc.get_changes(&[]) {
        out.extend(change.message().map(str::to_string));
        for op in change.decode().operations {
            if let Key::Map(k) = &op.key {
                out.push(k.to_string());
            }
            match op.action {
                OpType::Put(ScalarValue::Str(s)) => out.push(s.to_string()),
                OpType::MarkBegin(m) => {
                    out.push(m.name.to_string());
                    if let ScalarValue::Str(s) = m.value {
                        out.push(s.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// The documents `d` holds whose history holds `needle` (any case).
async fn documents_naming(d: &Daemon, needle: &'static str) -> Vec<String> {
    d.context()
        .store
        .call(move |st| {
            let mut found = Vec::new();
            for (id, _) in st.replicas().unwrap() {
                let (_, mut doc) = st.load_document(&id).unwrap().unwrap();
                if history_strings(&mut doc)
                    .iter()
                    .any(|s| s.to_lowercase().contains(needle))
                {
                    found.push(id);
                }
            }
            found
        })
        .await
}

async fn import_practice(d: &Daemon, json: &str) {
    let practices = parse_practices(ImportInput::Text(json), Some(ImportFormat::Json)).unwrap();
    admin(d, AdminRequest::PracticeImport { practices })
        .await
        .unwrap();
}

async fn share_with_partners(d: &Daemon, practice_id: &str) -> serde_json::Value {
    share(d, practice_id, "partners").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_history_that_names_a_person_is_reissued_and_deleted_at_the_peer() {
    let (_tmp, [a, b]) = partners_in_tmp(["Athens", "Bologna"]).await;
    invite(&a, &b, Role::Partner).await;

    import_practice(
        &a,
        r#"{"practices": [{"id": "cafe", "city": "Athens", "name": "Language café",
            "description": "Maria Rossi runs the café every week."}]}"#,
    )
    .await;
    let first = share_with_partners(&a, "cafe").await;
    let old_id = doc_id_of(&first);
    assert!(
        eventually(WAIT, async || holds(&b, &old_id).await).await,
        "B receives the first version"
    );
    assert_eq!(
        documents_naming(&b, "rossi").await,
        vec![old_id.clone()],
        "before the roster, the name went out (the case this fixes)"
    );

    // The roster names her. Importing it re-checks every publication's history
    // and re-issues this one; the share after it finds nothing left to do.
    let roster = parse_roster(
        ImportInput::Text(
            r#"{"stakeholders": [{"name": "Maria Rossi", "organisation": "Café", "area": "civil-society",
                "email": "", "phone": ""}]}"#,
        ),
        Some(ImportFormat::Json),
    )
    .unwrap();
    let imported = admin(&a, AdminRequest::RosterImport { roster })
        .await
        .unwrap();
    let new_id = format!("{old_id}:g2");
    assert_eq!(imported["reissued"][0]["old_doc_id"], old_id.as_str());
    assert_eq!(imported["reissued"][0]["new_doc_id"], new_id.as_str());
    assert_eq!(
        imported["reissued"][0]["fields"],
        serde_json::json!(["practice.description"])
    );
    let second = share_with_partners(&a, "cafe").await;
    assert_eq!(second["doc_id"], new_id.as_str());
    assert_eq!(second["change"], "unchanged");
    assert!(second["reissued"].is_null());

    assert!(
        eventually(WAIT, async || swapped(&b, &old_id, &new_id).await).await,
        "B drops the old document and holds the new generation"
    );
    // The origin learns B deleted it, from B's signed confirmation.
    let b_id = b.node_id();
    assert!(
        eventually(WAIT, async || deletion_confirmed(&a, &old_id, &[b_id])
            .await)
        .await,
        "A's status shows B confirmed the deletion of the old document"
    );

    // Nothing else arrives: a later publication reaches B, and by then B still
    // holds exactly the new generation and it, nothing naming her.
    import_practice(
        &a,
        r#"{"practices": [{"id": "garden", "city": "Athens", "name": "Shared garden",
            "description": "Neighbours grow vegetables together."}]}"#,
    )
    .await;
    let later = doc_id_of(&share_with_partners(&a, "garden").await);
    assert!(eventually(WAIT, async || holds(&b, &later).await).await);
    let held: Vec<String> = replicas(&b).await.into_keys().collect();
    let mut expected = vec![new_id.clone(), later.clone()];
    expected.sort();
    assert_eq!(held, expected);
    assert!(documents_naming(&b, "rossi").await.is_empty());
    assert!(documents_naming(&b, "maria").await.is_empty());

    // At B the old id is a tombstone: a retraction statement, no copy.
    let old = old_id.clone();
    let (tombstone, copy) = b
        .context()
        .store
        .call(move |st| {
            (
                st.statement(&old).unwrap().map(|r| r.retracted),
                st.load_document(&old).unwrap().is_some(),
            )
        })
        .await;
    assert_eq!(tombstone, Some(true));
    assert!(!copy);

    // The feed entry keeps its id across generations.
    let entries = feed_entries(&b).await;
    assert!(entries
        .iter()
        .any(|e| e.id == format!("urn:labnet:{old_id}")));
    assert!(!entries.iter().any(|e| e.id.ends_with(":g2")));

    // A's disclosure log records the re-issue, naming both ids.
    let (old, new) = (old_id.clone(), new_id.clone());
    let logged = a
        .context()
        .store
        .call(move |st| {
            let lines = st.disclosures(None, None).unwrap();
            let on_new = lines
                .iter()
                .any(|d| d.action == "reissue" && d.doc_id == new);
            let on_old = lines.iter().any(|d| {
                d.action == "reissue" && d.doc_id == old && d.settings.contains(new.as_str())
            });
            on_new && on_old
        })
        .await;
    assert!(logged);

    shutdown_all([a, b]).await;
}

/// Whether `d` holds `new_id` and no longer `old_id`.
async fn swapped(d: &Daemon, old_id: &str, new_id: &str) -> bool {
    let held = replicas(d).await;
    held.contains_key(new_id) && !held.contains_key(old_id)
}

/// Starts the node in `dir` with `anonymization.min_count` set to `min`.
async fn start_with_min_count(dir: &std::path::Path, min: u32) -> Daemon {
    let overrides = Overrides {
        min_count: Some(min.to_string()),
        ..Overrides::default()
    };
    let mut options = StartOptions::new(DataDir::new(dir), vec![overrides]);
    options.transport = fast_transport();
    Daemon::start(options).await.expect("daemon starts")
}

/// The people figure of the one indicator in `doc_id` at `d`.
async fn figure(d: &Daemon, doc_id: &str) -> Option<f64> {
    let id = doc_id.to_string();
    d.context()
        .store
        .call(move |st| {
            let (_, doc) = st.load_document(&id).unwrap()?;
            let body: labnet_node::share::publication::PublicationBody =
                autosurgeon::hydrate(&doc).unwrap();
            body.practice.indicators.first().and_then(|i| i.achieved)
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stricter_minimum_set_while_stopped_reissues_at_start_and_the_peer_drops_the_old_figures()
{
    let tmp = tempfile::tempdir().unwrap();
    let a_dir = init(tmp.path(), "Athens", Role::Partner, 0);
    let a = start_with_min_count(&a_dir, 5).await;
    let b = start_partner(tmp.path(), "Bologna").await;
    invite(&a, &b, Role::Partner).await;
    import_practice(
        &a,
        r#"{"practices": [{"id": "cafe", "city": "Athens", "name": "Language café",
            "description": "Neighbours practise Greek together.",
            "indicators": [{"label": "participants", "achieved": 20, "unit": "people"}]}]}"#,
    )
    .await;
    let old_id = doc_id_of(&share_with_partners(&a, "cafe").await);
    assert!(eventually(WAIT, async || holds(&b, &old_id).await).await);
    assert_eq!(
        figure(&b, &old_id).await,
        Some(20.0),
        "rounded to 5s, 20 went out"
    );

    // The steward raises the minimum while the node is stopped. The history
    // peers hold has a figure rounded to a base of 5: at start it is checked
    // against 15 and re-issued before any peer is served.
    shutdown_all([a]).await;
    let a = start_with_min_count(&a_dir, 15).await;
    let new_id = format!("{old_id}:g2");
    assert_eq!(
        live_publications(&a).await,
        vec![new_id.clone()],
        "re-issued at start, old retracted"
    );
    assert!(
        eventually(WAIT, async || swapped(&b, &old_id, &new_id).await).await,
        "B drops the document with the old figures and holds the new generation"
    );
    assert_eq!(figure(&b, &new_id).await, Some(15.0), "rounded to 15s now");
    let new = new_id.clone();
    let logged = a
        .context()
        .store
        .call(move |st| {
            st.disclosures(None, None)
                .unwrap()
                .iter()
                .any(|d| d.action == "reissue" && d.doc_id == new)
        })
        .await;
    assert!(logged, "the disclosure log records the re-issue");

    // A restart with the same settings re-issues nothing more.
    shutdown_all([a]).await;
    let a = start_with_min_count(&a_dir, 15).await;
    assert_eq!(live_publications(&a).await, vec![new_id.clone()]);
    assert!(
        a.context()
            .store
            .call(move |st| st.statement(&new_id).unwrap().is_some())
            .await
    );
    shutdown_all([a, b]).await;
}
