//! The stored and the logged form of heads (`codec.rs`).

use super::*;
use automerge::ChangeHash;

#[test]
fn heads_round_trip_and_a_torn_value_is_refused() {
    let heads = [ChangeHash([1; 32]), ChangeHash([2; 32])];
    let bytes = encode_heads(&heads);
    assert_eq!(bytes.len(), 64);
    assert_eq!(decode_heads(&bytes).unwrap(), heads);
    assert_eq!(decode_heads(&[]).unwrap(), []);
    assert_eq!(decode_heads(&bytes[..40]), None);
}

#[test]
fn heads_hex_is_what_the_disclosure_log_has_always_recorded() {
    let mut doc = publication("a");
    let mut other = publication("b").with_actor(automerge::ActorId::random());
    doc.merge(&mut other).unwrap();
    let heads = doc.get_heads();
    assert_eq!(heads.len(), 2);
    // The format `share` and the sync driver wrote before there was a function
    // for it: each hash's Display (lowercase hex), comma-separated.
    let by_hand: Vec<String> = heads.iter().map(ToString::to_string).collect();
    assert_eq!(heads_hex(&heads), by_hand.join(","));
    assert_eq!(heads_hex(&[ChangeHash([0xab; 32])]), "ab".repeat(32));
    assert_eq!(heads_hex(&[]), "");
}
