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
    admin, deletion_confirmed, doc_id_of, eventually, feed_entries, holds, invite, partners_in_tmp,
    replicas, share, shutdown_all, start_node,
};
use labnet_tests::partner_practices;

const WAIT: Duration = Duration::from_secs(60);

/// Imports the partner practices at positions `at` into `d` and shares each
/// with the scope beside it; returns their publication ids, in that order.
async fn import_and_share<const N: usize>(d: &Daemon, at: [(usize, &str); N]) -> [String; N] {
    let practices = labnet_node::lab::import::parse_practices(
        labnet_node::lab::import::ImportInput::Path(Path::new(&partner_practices())),
        None,
    )
    .unwrap();
    let picked: Vec<_> = at.iter().map(|(i, _)| practices[*i].clone()).collect();
    admin(
        d,
        AdminRequest::PracticeImport {
            practices: picked.clone(),
        },
    )
    .await
    .unwrap();
    let mut ids = Vec::new();
    for (p, (_, scope)) in picked.iter().zip(at) {
        ids.push(doc_id_of(&share(d, &p.id, scope).await));
    }
    let Ok(ids) = <[String; N]>::try_from(ids) else {
        unreachable!("one id per practice shared")
    };
    ids
}

/// Imports two of the partner practices into `d` and shares the first
/// `public` and the second `partners`; returns their publication ids.
async fn share_two(d: &Daemon) -> (String, String) {
    let [public, partners] = import_and_share(d, [(0, "public"), (1, "partners")]).await;
    (public, partners)
}

/// Imports a third partner practice into `d` and shares it `public`; returns
/// its publication id.
async fn share_another_public(d: &Daemon) -> String {
    let [id] = import_and_share(d, [(2, "public")]).await;
    id
}

/// The relay line: A approves B, B approves C (all partner cities), C
/// approves the subscriber S; A shares two practices, the first public and
/// the second partners-only, and the public one reaches C and S through B.
/// Returns the nodes A, B, C, S, the ids of the two publications, and the
/// directory they live in.
async fn relay_line_sharing() -> (tempfile::TempDir, [Daemon; 4], String, String) {
    let (tmp, [a, b, c]) = partners_in_tmp(["Athens", "Bologna", "Catania"]).await;
    let s = start_node(tmp.path(), "ISRG", Role::Subscriber).await;
    invite(&a, &b, Role::Partner).await;
    invite(&b, &c, Role::Partner).await;
    invite(&c, &s, Role::Subscriber).await;
    let (public, partners) = share_two(&a).await;
    assert!(
        eventually(WAIT, async || holds(&c, &public).await
            && holds(&s, &public).await)
        .await,
        "A's public practice reaches C and the subscriber through B"
    );
    (tmp, [a, b, c, s], public, partners)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_practice_crosses_a_relay_line_signed_by_its_origin_and_a_partner_one_stops() {
    let (_tmp, [a, b, c, s], public, partners) = relay_line_sharing().await;
    assert!(
        eventually(WAIT, async || holds(&b, &partners).await
            && holds(&b, &public).await)
        .await,
        "B, A's partner, holds both"
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
    let (_tmp, [a, b, c, s], public, _) = relay_line_sharing().await;

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
