//! `labnet feed ...`: what this node can show of the network's practices.

use std::io::Read;

use anyhow::{bail, Context, Result};
use labnet_node::api::{AdminRequest, FeedEntry};
use labnet_node::data_dir::DataDir;
use labnet_node::feed::verify::{verify, FEED_FILE_BYTES_MAX};
use labnet_node::feed::{indicator_text, to_atom, to_csv, to_json_feed, FeedInfo};

use super::{answer, parse_date, print_list, request, when, Listing};
use crate::args::{FeedCommand, FeedFilterArgs, FeedVerifyArgs, Global};
use crate::table::left;
use crate::terminal::{line, text};

/// `feed list`.
const ENTRIES: Listing<FeedEntry> = Listing {
    columns: &[
        left("UPDATED (UTC)"),
        left("PUBLISHER"),
        left("ORIGIN"),
        left("PLACE"),
        left("AREA"),
        left("TITLE"),
    ],
    row: |e| {
        vec![
            when(Some(e.updated)),
            publisher(e),
            // The NodeId's first group (`feed show` prints it whole).
            e.origin.split('-').next().unwrap_or_default().to_string(),
            e.place.clone().unwrap_or_else(|| "-".into()),
            e.area.clone().unwrap_or_else(|| "-".into()),
            e.title.clone(),
        ]
    },
    empty: "No publications match.",
};

/// The publisher as a person should read it: a name two origins share is
/// marked, so the reader looks at the NodeIds.
fn publisher(e: &FeedEntry) -> String {
    if e.publisher_conflict {
        format!("{} (!)", e.publisher)
    } else {
        e.publisher.clone()
    }
}

fn list(global: &Global, filter: &FeedFilterArgs) -> Result<Vec<FeedEntry>> {
    let since = filter
        .since
        .as_deref()
        .map(|s| parse_date("--since", s))
        .transpose()?;
    request(
        global,
        AdminRequest::FeedList {
            city: filter.city.clone(),
            area: filter.area.clone(),
            since,
        },
    )
}

pub(crate) fn run(global: &Global, command: FeedCommand) -> Result<()> {
    match command {
        FeedCommand::List(args) => {
            let entries = list(global, &args.filter)?;
            print_list(args.output.json, &entries, &ENTRIES)
        }
        FeedCommand::Show(args) => answer(
            global,
            AdminRequest::FeedShow { id: args.id },
            args.output.json,
            |e: &FeedEntry| {
                // All of it is the origin's words (or a relay's), so all of it
                // is cleaned for the terminal.
                println!("{} ({})", line(&e.title), line(&e.publisher));
                println!("  id:        {}", line(&e.id));
                println!("  origin:    {}", line(&e.origin));
                let source = match e.publisher_source {
                    labnet_node::feed::PublisherSource::Own => "this node",
                    labnet_node::feed::PublisherSource::Peer => "the name you approved",
                    labnet_node::feed::PublisherSource::Signed => "the name the origin signed",
                };
                println!("  publisher: {} ({source})", line(&e.publisher));
                if e.publisher_conflict {
                    println!("             another origin is shown under this name too: check the NodeId");
                }
                println!("  place:     {}", line(e.place.as_deref().unwrap_or("-")));
                println!("  area:      {}", line(e.area.as_deref().unwrap_or("-")));
                println!(
                    "  updated:   {} UTC (version {})",
                    when(Some(e.updated)),
                    e.version
                );
                if let Some(link) = &e.link {
                    println!("  link:      {}", line(link));
                }
                println!("\n{}\n", text(&e.summary));
                for i in &e.indicators {
                    println!("  - {}", line(&indicator_text(i)));
                }
            },
        ),
        FeedCommand::Export(args) => {
            let entries = list(global, &args.filter)?;
            let node = DataDir::new(&global.data_dir)
                .load_identity()
                .map(|i| i.node_id().to_string())
                .unwrap_or_default();
            let info = FeedInfo::for_node(&node);
            let text = match args.format.to_ascii_lowercase().as_str() {
                "atom" => to_atom(&info, &entries)?,
                "jsonfeed" | "json" => to_json_feed(&info, &entries)?,
                "csv" => to_csv(&entries)?,
                other => bail!("--format '{other}': use atom, jsonfeed or csv"),
            };
            match args.out {
                Some(path) => {
                    // Write beside the target, then rename: a reader never sees half a feed.
                    let tmp = path.with_extension("partial");
                    std::fs::write(&tmp, text.as_bytes())
                        .with_context(|| tmp.display().to_string())?;
                    std::fs::rename(&tmp, &path).with_context(|| path.display().to_string())?;
                    eprintln!("Wrote {} entries to {}.", entries.len(), path.display());
                }
                None => print!("{text}"),
            }
            Ok(())
        }
        FeedCommand::Verify(args) => verify_file(&args),
    }
}

/// `feed verify`: reads the file (nothing else: no node, no data directory),
/// prints one line per entry, and fails if any entry does.
fn verify_file(args: &FeedVerifyArgs) -> Result<()> {
    let shown = args.file.display();
    let file = std::fs::File::open(&args.file).with_context(|| format!("reading {shown}"))?;
    let mut bytes = Vec::new();
    file.take(FEED_FILE_BYTES_MAX as u64 + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {shown}"))?;
    if bytes.len() > FEED_FILE_BYTES_MAX {
        bail!("{shown}: larger than {FEED_FILE_BYTES_MAX} bytes; that is not a labnet export");
    }
    let text = String::from_utf8(bytes).map_err(|_| {
        anyhow::anyhow!("{shown}: not UTF-8 text, so not an Atom or JSON Feed export")
    })?;
    let report = verify(&text, &args.origins).with_context(|| shown.to_string())?;
    for entry in &report.entries {
        // A line quotes the file, which anyone may have written.
        println!("{}", line(&entry.line()));
    }
    let total = report.entries.len();
    let failed = report.failed().count();
    if failed > 0 {
        bail!("{failed} of {total} entries in {shown} do not verify (the FAIL lines say why)");
    }
    if total == 0 {
        println!("{shown} ({}) has no entries.", report.format);
    } else {
        println!("All {total} entries of {shown} ({}) verify.", report.format);
    }
    Ok(())
}
