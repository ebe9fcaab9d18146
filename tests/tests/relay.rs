//! A relay line of real nodes: A approves B, B approves C, A and C never meet,
//! and a subscriber is approved by C alone.
//!
//! A's public practice reaches C and the subscriber through B, signed by A
//! and checked by each; A's partners-scoped practice stops at B; the
//! subscriber's feed export verifies offline, and one changed byte makes
//! the entry it is in fail.

use std::path::Path;
use std::time::Duration;

use labnet_config::Role;
use labnet_node::api::AdminRequest;
use labnet_node::daemon::Daemon;
use labnet_node::feed::verify::verify;
use labnet_node::feed::{to_atom, FeedInfo};
use labnet_protocol::statement::SignedStatement;
use labnet_tests::nodes::{
    admin, deletion_confirmed, eventually, feed_entries, invite, replicas, share, shutdown_all,
    start_node, start_partner,
};
use labnet_tests::partner_practices;

const WAIT: Duration = Duration::from_secs(60);

/// Imports two of the partner practices into `d` and shares the first
/// `public` and the second `partners`; returns their publication ids.
async fn share_two(d: &Daemon) -> (String, String) {
    let practices = labnet_node::lab::import::parse_practices(
        labnet_node::lab::import::ImportInput::Path(Path::new(&partner_practices())),
        None,
    )
    .unwrap();
    let two: Vec<_> = practices.into_iter().take(2).collect();
    admin(
        d,
        AdminRequest::PracticeImport {
            practices: two.clone(),
        },
    )
    .await
    .unwrap();
    let mut ids = Vec::new();
    for (p, scope) in two.iter().zip(["public", "partners"]) {
        ids.push(
            share(d, &p.id, scope).await["doc_id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    (ids[0].clone(), ids[1].clone())
}

/// Imports a third partner practice into `d` and shares it `public`; returns
/// its publication id.
async fn share_another_public(d: &Daemon) -> String {
    let practices = labnet_node::lab::import::parse_practices(
        labnet_node::lab::import::ImportInput::Path(Path::new(&partner_practices())),
        None,
    )
    .unwrap();
    let third = practices.into_iter().nth(2).unwrap();
    admin(
        d,
        AdminRequest::PracticeImport {
            practices: vec![third.clone()],
        },
    )
    .await
    .unwrap();
    share(d, &third.id, "public").await["doc_id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn holds(d: &Daemon, doc_id: &str) -> bool {
    replicas(d).await.contains_key(doc_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_practice_crosses_a_relay_line_signed_by_its_origin_and_a_partner_one_stops() {
    let tmp = tempfile::tempdir().unwrap();
    let a = start_partner(tmp.path(), "Athens").await;
    let b = start_partner(tmp.path(), "Bologna").await;
    let c = start_partner(tmp.path(), "Catania").await;
    let s = start_node(tmp.path(), "ISRG", Role::Subscriber).await;
    invite(&a, &b, Role::Partner).await;
    invite(&b, &c, Role::Partner).await;
    invite(&c, &s, Role::Subscriber).await;
    let (public, partners) = share_two(&a).await;

    assert!(
        eventually(WAIT, async || holds(&b, &partners).await
            && holds(&b, &public).await)
        .await,
        "B, A's partner, holds both"
    );
    assert!(
        eventually(WAIT, async || holds(&c, &public).await
            && holds(&s, &public).await)
        .await,
        "A's public practice reaches C and the subscriber through B"
    );

    // C checked it: the statement it keeps is A's, it verifies, and it came via B.
    let id = public.clone();
    let row = c
        .context()
        .store
        .call(move |st| st.statement(&id).unwrap().unwrap())
        .await;
    let statement = SignedStatement::decode(&row.signed).unwrap();
    statement.verify().unwrap();
    assert_eq!(statement.body.origin(), a.node_id());
    assert_eq!(row.via, Some(b.node_id()));
    let a_heads = replicas(&b).await[&public].clone();
    assert_eq!(replicas(&c).await[&public], a_heads);

    // A new public version must arrive after anything A's partners-scoped
    // practice could have caused at C; then C's store and disclosure log hold
    // no trace of it.
    let later = share_another_public(&a).await;
    assert!(eventually(WAIT, async || holds(&c, &later).await).await);
    let id = partners.clone();
    let (doc, statement, logged) = c
        .context()
        .store
        .call(move |st| {
            (
                st.load_document(&id).unwrap().is_some(),
                st.statement(&id).unwrap().is_some(),
                st.disclosures(None, None)
                    .unwrap()
                    .iter()
                    .any(|d| d.doc_id == id),
            )
        })
        .await;
    assert!(
        !doc && !statement && !logged,
        "C has no trace of A's partners-scoped practice"
    );
    assert!(!holds(&s, &partners).await);

    // The subscriber's export verifies offline, with A as the origin.
    let entries = feed_entries(&s).await;
    let entry = entries
        .iter()
        .find(|e| e.id.ends_with(&public))
        .expect("the public practice is in the subscriber's feed");
    assert_eq!(entry.origin, a.node_id().to_string());
    let atom = to_atom(&FeedInfo::for_node(&s.node_id().to_string()), &entries).unwrap();
    let report = verify(&atom, &[]).unwrap();
    assert!(report.all_ok(), "{report:?}");
    // One byte of its title changed: that entry fails, and is named.
    let title = entry.title.clone();
    let mut changed = title.clone();
    let last = changed.pop().unwrap();
    changed.push(if last == 'x' { 'y' } else { 'x' });
    let tampered = atom.replacen(&title, &changed, 1);
    let report = verify(&tampered, &[]).unwrap();
    let failed: Vec<_> = report.failed().collect();
    assert_eq!(failed.len(), 1, "{report:?}");
    assert!(format!("{:?}", failed[0]).contains(&public), "{failed:?}");

    shutdown_all([a, b, c, s]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn narrowing_a_public_practice_to_partners_removes_the_copies_relays_passed_on() {
    // The attack on the data: a city narrows a practice it had made public.
    // Relays may only pass on public versions, so without a retraction the
    // copies downstream of them (C, and C's subscriber) would stay public.
    let tmp = tempfile::tempdir().unwrap();
    let a = start_partner(tmp.path(), "Athens").await;
    let b = start_partner(tmp.path(), "Bologna").await;
    let c = start_partner(tmp.path(), "Catania").await;
    let s = start_node(tmp.path(), "ISRG", Role::Subscriber).await;
    invite(&a, &b, Role::Partner).await;
    invite(&b, &c, Role::Partner).await;
    invite(&c, &s, Role::Subscriber).await;
    let (public, _) = share_two(&a).await;
    assert!(
        eventually(WAIT, async || holds(&c, &public).await
            && holds(&s, &public).await)
        .await,
        "the public practice went down the relay line"
    );

    let practice_id = public.rsplit(':').next().unwrap().to_string();
    let narrowed = share(&a, &practice_id, "partners").await;
    let new_id = format!("{public}:g2");
    assert_eq!(narrowed["doc_id"], new_id.as_str());
    assert_eq!(narrowed["reissued"]["narrowed"], true);
    assert_eq!(narrowed["reissued"]["old_doc_id"], public.as_str());

    assert!(
        eventually(WAIT, async || holds(&b, &new_id).await
            && !holds(&b, &public).await)
        .await,
        "B, a partner, swaps the public copy for the partners one"
    );
    assert!(
        eventually(WAIT, async || !holds(&c, &public).await
            && !holds(&s, &public).await)
        .await,
        "C and the subscriber, reached only through B, delete the public copy"
    );
    // Each of them confirmed, through the relays, to the origin.
    let confirmers = [b.node_id(), c.node_id(), s.node_id()];
    assert!(
        eventually(WAIT, async || deletion_confirmed(&a, &public, &confirmers)
            .await)
        .await,
        "A sees B, C and the subscriber confirm"
    );

    // Nothing of the narrowed generation follows: a later public version
    // reaches the subscriber, and by then neither it nor C holds it.
    let later = share_another_public(&a).await;
    assert!(eventually(WAIT, async || holds(&s, &later).await).await);
    assert!(!holds(&c, &new_id).await && !holds(&s, &new_id).await);
    assert!(!holds(&c, &public).await && !holds(&s, &public).await);

    shutdown_all([a, b, c, s]).await;
}
