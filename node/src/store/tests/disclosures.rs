//! The disclosure log (`disclosures.rs`).

use super::*;

#[test]
fn disclosures_filter_by_peer() {
    let (_dir, mut store) = open();
    let entry = |action, peer| NewDisclosure {
        action,
        doc_id: "p1",
        heads: "abc",
        node_id: peer,
        scope: "partners",
        settings: "{}",
    };
    store.log_disclosure(&entry("share", None)).unwrap();
    store.log_disclosure(&entry("sent", Some(node(1)))).unwrap();
    store.log_disclosure(&entry("sent", Some(node(2)))).unwrap();
    assert_eq!(store.disclosures(None, None).unwrap().len(), 3);
    let to_one = store.disclosures(Some(node(1)), None).unwrap();
    assert_eq!(to_one.len(), 1);
    assert_eq!(to_one[0].node_id, Some(node(1)));
    assert!(store
        .disclosures(None, Some(unix_now() + 10))
        .unwrap()
        .is_empty());
}
