//! 100 cities on the demo's sparse topology: time and bytes of a new version.
//!
//! `cargo bench -p labnet-node --bench cities [-- CITIES VERSIONS]` (default
//! 100 cities, 30 versions) runs the whole `labnet demo` (every city a full
//! node in this process, real QUIC on 127.0.0.1, SQLite in temporary
//! directories, joined by invites along the demo's topology, converged and
//! checked against what each node must hold), then publishes new public
//! versions one at a time, each by a different city, and reports:
//!
//! - the median and p99 over the versions of the time from the share request
//!   until the version is stored, at the new heads, on every other node
//!   (target: p99 ≤ 2 s);
//! - the UDP bytes a node received per version, against the version's change
//!   bytes and signed statement (target: ≤ 1.3x that, plus announcements); the
//!   idle traffic (keep-alives) of the same time is measured first and taken
//!   off.

#![allow(clippy::unwrap_used)] // a benchmark that fails should fail loudly
#![allow(missing_docs)]

use labnet_node::demo;

fn main() {
    let numbers: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let cities = numbers.first().copied().unwrap_or(100);
    let versions = numbers.get(1).copied().unwrap_or(30);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let root = tempfile::tempdir().unwrap();
    let report = runtime
        .block_on(demo::run_with_versions(
            cities,
            versions,
            root.path(),
            |line| println!("{line}"),
        ))
        .unwrap();
    let figures = report.versions.unwrap();
    println!(
        "\n== {cities} cities, {} links, {} publications: converged {:.1} s after the first share; pairing {:.1} s; resident {} MiB",
        report.links,
        report.publications,
        report.converged_ms as f64 / 1e3,
        report.pairing_ms as f64 / 1e3,
        report.rss_kib.unwrap_or(0) / 1024
    );
    println!(
        "{} new public versions, each to {} nodes: until on every node median {:.0} ms, p99 {:.0} ms, max {:.0} ms (target p99 ≤ 2000 ms)",
        figures.versions,
        figures.receivers,
        figures.quantile_ms(0.5),
        figures.quantile_ms(0.99),
        figures.quantile_ms(1.0)
    );
    let extra = figures.received_per_node_per_version - 1.3 * figures.version_bytes;
    println!(
        "bytes received per node per version: {:.0} B (idle {:.0} B/s per node taken off) for a version of {:.0} B (changes + statement): {:.2}x; beyond 1.3x: {:.0} B over {:.1} connections per node = {:.0} B per connection for announcements",
        figures.received_per_node_per_version,
        figures.idle_received_per_node_per_second,
        figures.version_bytes,
        figures.received_per_node_per_version / figures.version_bytes,
        extra,
        figures.mean_connections,
        extra / figures.mean_connections
    );
}
