//! A child process for the durability test: writes documents to a store as fast
//! as it can and prints a line for each write the store acknowledged.
//!
//! Usage: `store-writer DIR FIRST`. Writes alternate between a new document
//! `doc-N` (a full snapshot) and an update to the shared `counter` document (an
//! incremental change, with compaction every so often), with N counting up from
//! FIRST. Each acknowledgement is `ack doc N` or `ack counter N`, printed only
//! after `save_document` returned, and flushed at once. The parent kills this
//! process with SIGKILL at a random moment and checks every acknowledged write.

use std::io::Write;

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ROOT};
use labnet_node::store::{DocumentKind, Store};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: store-writer DIR FIRST"))?;
    let first: i64 = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: store-writer DIR FIRST"))?
        .parse()?;
    let mut store = Store::open(std::path::Path::new(&dir))?;
    let mut counter = match store.load_document("counter")? {
        Some((_, doc)) => doc,
        None => AutoCommit::new(),
    };
    let mut out = std::io::stdout().lock();
    for n in first.. {
        if n % 2 == 0 {
            let mut doc = AutoCommit::new();
            doc.put(ROOT, "n", n)?;
            doc.put(ROOT, "padding", "x".repeat((n % 7 * 300) as usize))?;
            store.save_document(&format!("doc-{n}"), DocumentKind::Private, &mut doc)?;
            writeln!(out, "ack doc {n}")?;
        } else {
            counter.put(ROOT, "n", n)?;
            store.save_document("counter", DocumentKind::Private, &mut counter)?;
            writeln!(out, "ack counter {n}")?;
        }
        out.flush()?;
    }
    Ok(())
}
