//! `labnet demo`: the whole network on one machine, with a report at the end.

use anyhow::{bail, Context, Result};
use labnet_node::demo;

use crate::args::DemoArgs;

pub(crate) fn run(args: DemoArgs) -> Result<()> {
    let (root, _cleanup) = match &args.keep {
        Some(dir) => {
            if dir.exists()
                && std::fs::read_dir(dir)
                    .map(|mut d| d.next().is_some())
                    .unwrap_or(true)
            {
                bail!(
                    "--keep {}: the directory exists and is not empty; give a new or empty one",
                    dir.display()
                );
            }
            std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
            (dir.clone(), None)
        }
        None => {
            let tmp = tempfile::Builder::new()
                .prefix("labnet-demo-")
                .tempdir()
                .context("creating a temporary directory")?;
            (tmp.path().to_path_buf(), Some(tmp))
        }
    };
    let started = std::time::Instant::now();
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let report = runtime.block_on(demo::run(args.cities, &root, |line| {
        eprintln!("[{:>5.1}s] {line}", started.elapsed().as_secs_f64());
    }))?;

    println!();
    println!(
        "{:<26} {:>8} {:>7} {:>9} {:>12} {:>12}",
        "CITY", "PARTNERS", "SHARED", "RECEIVED", "CONVERGED", "BYTES SENT"
    );
    for c in &report.cities {
        println!(
            "{:<26} {:>8} {:>7} {:>9} {:>10.2} s {:>12}",
            c.name,
            c.partners,
            c.shared,
            c.received,
            c.converged_after_ms as f64 / 1000.0,
            c.bytes_sent
        );
    }
    println!(
        "{:<26} {:>8} {:>7} {:>9} {:>10.2} s",
        "ISRG (subscriber)",
        report.subscriber_links,
        0,
        report.subscriber_received,
        report.subscriber_converged_after_ms as f64 / 1000.0
    );
    println!();
    println!("A practice as its city keeps it (private fields included):");
    println!("{}", indent(&excerpt(&report.example_private)));
    println!("The same practice as peers receive it (after anonymization):");
    println!("{}", indent(&excerpt(&report.example_published)));
    println!(
        "The subscriber's feed ({} public practices):",
        report.subscriber_feed.len()
    );
    for e in report.subscriber_feed.iter().take(15) {
        println!(
            "  {:<26} {}",
            crate::terminal::line(&e.city),
            crate::terminal::line(&e.title)
        );
    }
    if report.subscriber_feed.len() > 15 {
        println!(
            "  ... and {} more (labnet feed list)",
            report.subscriber_feed.len() - 15
        );
    }
    println!();
    println!(
        "Cities:          {} ({} links between cities; the subscriber approved by {})",
        report.cities.len(),
        report.links,
        match report.subscriber_links {
            1 => "1 city".to_string(),
            n => format!("{n} cities"),
        }
    );
    println!("Publications:    {}", report.publications);
    println!(
        "Pairing:         {:.1} s",
        report.pairing_ms as f64 / 1000.0
    );
    println!(
        "Converged:       {:.1} s after the first share",
        report.converged_ms as f64 / 1000.0
    );
    println!(
        "Resident memory: {} (peak {})",
        mib(report.rss_kib),
        mib(report.rss_peak_kib)
    );
    println!();
    println!(
        "All {} cities and the subscriber converged in {:.1} s.",
        report.cities.len(),
        report.total_ms as f64 / 1000.0
    );
    if args.keep.is_some() {
        println!(
            "The nodes' data directories are in {}.",
            report.root.display()
        );
    }
    Ok(())
}

/// KiB as MiB, for the figures.
fn mib(kib: Option<u64>) -> String {
    match kib {
        Some(kib) => format!("{:.0} MiB", kib as f64 / 1024.0),
        None => "unknown".into(),
    }
}

/// The fields that show what anonymization does, not the whole record.
fn excerpt(json: &str) -> String {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(json) else {
        return json.to_string();
    };
    let practice = value.get("practice").unwrap_or(&value);
    let mut shown = serde_json::Map::new();
    for key in [
        "id",
        "city",
        "name",
        "description",
        "indicators",
        "contacts",
        "internal_notes",
    ] {
        if let Some(v) = practice.get(key) {
            shown.insert(key.to_string(), v.clone());
        }
    }
    serde_json::to_string_pretty(&shown).unwrap_or_default()
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
