//! Scale and quotas: a hundred nodes on a sparse topology, and an origin
//! that publishes more than a node keeps of it.

use std::collections::BTreeSet;

use labnet_config::Role;
use labnet_protocol::sync::DocId;
use labnet_protocol::NodeId;

use super::{heads_of, no_violations};
use crate::sync::harness::{federation, MemNode, Net};
use crate::sync::{Event, Scope};

/// The links of a sparse topology of `n` nodes: a ring plus a chord from each
/// node a third of the way round, so every node has degree 3 or 4.
fn sparse_links(n: usize) -> Vec<(usize, usize)> {
    let mut links = BTreeSet::new();
    for i in 0..n {
        for j in [(i + 1) % n, (i + n / 3) % n] {
            if i != j {
                links.insert((i.min(j), i.max(j)));
            }
        }
    }
    links.into_iter().collect()
}

/// 100 nodes on a sparse topology: a new public version reaches all of
/// them; a partition heals; a retraction reaches, and is confirmed by, every
/// node that held it; a restart of a quarter of the nodes catches up.
#[test]
fn a_hundred_nodes_on_a_sparse_topology() {
    let n = 100;
    let mut nodes: Vec<MemNode> = (0..n as u32)
        .map(|i| MemNode::new(i, Role::Partner))
        .collect();
    let publishers = [0, 33, 66];
    let docs: Vec<(usize, DocId)> = publishers
        .iter()
        .map(|&p| (p, nodes[p].publish_practice("p", p as u32, Scope::Public)))
        .collect();
    let mut net = Net::new(nodes);
    let links = sparse_links(n);
    for &(a, b) in &links {
        net.connect(a, b);
    }
    net.run();
    no_violations(&net);
    let everywhere = |net: &Net, origin: usize, doc_id: &DocId| {
        let heads = heads_of(&net.nodes[origin], doc_id);
        (0..n)
            .filter(|&i| i != origin)
            .all(|i| net.nodes[i].holds(doc_id, &heads))
    };
    for (origin, doc_id) in &docs {
        assert!(everywhere(&net, *origin, doc_id));
    }

    // A new version reaches everyone, crossing each link at most once.
    let (origin, doc_id) = docs[0].clone();
    let before = net.log.len();
    net.nodes[origin].edit(&doc_id, "version two");
    net.local_change(origin);
    net.run();
    assert!(everywhere(&net, origin, &doc_id));
    assert!(net.deliveries_since(before) <= links.len());

    // Partition: cut every link between the halves 0..50 and 50..100.
    let cut: Vec<_> = links
        .iter()
        .copied()
        .filter(|&(a, b)| (a < 50) != (b < 50))
        .collect();
    for &(a, b) in &cut {
        net.disconnect(a, b);
    }
    net.nodes[origin].edit(&doc_id, "version three, during the partition");
    net.local_change(origin);
    net.run();
    assert!((50..n).all(|i| !net.nodes[i].holds(&doc_id, &heads_of(&net.nodes[origin], &doc_id))));
    for &(a, b) in &cut {
        net.connect(a, b);
    }
    net.run();
    assert!(everywhere(&net, origin, &doc_id), "the partition healed");

    // A retraction reaches, and is confirmed by, every node that held it.
    let (origin, doc_id) = docs[1].clone();
    net.nodes[origin].retract(&doc_id);
    net.local_change(origin);
    net.run();
    no_violations(&net);
    assert!((0..n).all(|i| !net.nodes[i].copies().contains(&doc_id)));
    let confirmed: BTreeSet<_> = net.nodes[origin]
        .confirmations
        .keys()
        .filter(|(d, _)| *d == doc_id)
        .map(|(_, c)| *c)
        .collect();
    let holders: BTreeSet<_> = (0..n)
        .filter(|&i| i != origin)
        .map(|i| net.nodes[i].id)
        .collect();
    assert_eq!(confirmed, holders);

    // A quarter of the nodes restart (their sessions drop) while a version
    // changes; they catch up on reconnect.
    let (origin, doc_id) = docs[2].clone();
    let restarting: Vec<usize> = (0..n).filter(|i| i % 4 == 1).collect();
    for &(a, b) in &links {
        if restarting.contains(&a) || restarting.contains(&b) {
            net.disconnect(a, b);
        }
    }
    net.nodes[origin].edit(&doc_id, "version two of the third");
    net.local_change(origin);
    net.run();
    for &(a, b) in &links {
        if restarting.contains(&a) || restarting.contains(&b) {
            net.connect(a, b);
        }
    }
    net.run();
    no_violations(&net);
    assert!(everywhere(&net, origin, &doc_id));
}

/// The copies of `origin`'s publications node `me` holds: (count, bytes).
fn copies_of(net: &Net, me: usize, origin: NodeId) -> (usize, u64) {
    net.nodes[me]
        .held
        .values()
        .filter(|h| h.origin == origin)
        .filter_map(|h| h.bytes.as_ref())
        .fold((0, 0), |(n, b), bytes| (n + 1, b + bytes.len() as u64))
}

fn quota_refusals(net: &Net, me: usize) -> usize {
    net.nodes[me]
        .events
        .iter()
        .filter(|(_, e)| matches!(e, Event::QuotaExceeded { .. }))
        .count()
}

/// The attack: one origin publishes more than a node should keep of it, to
/// fill its disk. Copies beyond `replicas_per_origin_max` are refused (and
/// reported), the session goes on and catches up, and another origin's copy
/// is not evicted.
#[test]
fn an_origin_over_its_replica_count_quota_is_refused_and_evicts_nobody() {
    let mut nodes = federation(3, 0);
    let other = nodes[2].publish_practice("other", 9, Scope::Partners);
    for i in 0..5 {
        nodes[1].publish_practice(&format!("p{i}"), i, Scope::Partners);
    }
    let flooder = nodes[1].id;
    let mut net = Net::new(nodes);
    net.config.replicas_per_origin_max = 3;
    net.connect_all();
    net.run();
    assert_eq!(copies_of(&net, 0, flooder).0, 3, "the quota's worth kept");
    assert_eq!(
        quota_refusals(&net, 0),
        2,
        "the rest refused, each reported"
    );
    assert!(net.nodes[0].held[&other].bytes.is_some(), "nobody evicted");
    assert_eq!(
        net.closed_with(0, 1),
        None,
        "an origin over quota broke no rule"
    );
    assert!(
        net.nodes[0]
            .events
            .iter()
            .any(|(p, e)| *p == flooder && matches!(e, Event::CaughtUp)),
        "the refused ones are settled: the batch is acknowledged"
    );
}

/// The same origin, stopped by bytes before its count runs out.
#[test]
fn an_origin_over_its_replica_bytes_quota_is_refused() {
    let build = || {
        let mut nodes = federation(2, 0);
        for i in 0..5 {
            nodes[1].publish_practice(&format!("p{i}"), i, Scope::Partners);
        }
        nodes
    };
    // What the five copies take without a quota.
    let free = Net::synced(build());
    let origin = free.nodes[1].id;
    let (count, bytes) = copies_of(&free, 0, origin);
    assert_eq!(count, 5);
    let max = bytes / 2;
    let mut net = Net::new(build());
    net.config.replica_bytes_per_origin_max = max;
    net.connect_all();
    net.run();
    let (kept, kept_bytes) = copies_of(&net, 0, origin);
    assert!(kept_bytes <= max, "{kept_bytes} bytes kept, quota {max}");
    assert!((1..5).contains(&kept), "{kept} kept");
    assert_eq!(quota_refusals(&net, 0), 5 - kept);
    assert_eq!(net.closed_with(0, 1), None);
}
