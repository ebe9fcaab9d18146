//! `labnet feed ...`: what this node can show of the network's practices.

use anyhow::{bail, Context, Result};
use labnet_node::api::{AdminRequest, FeedEntry};
use labnet_node::data_dir::DataDir;
use labnet_node::feed::{indicator_text, to_atom, to_csv, to_json_feed, FeedInfo};

use super::{answer, parse_date, print_list, request, when, Listing};
use crate::args::{FeedCommand, FeedFilterArgs, Global};
use crate::table::left;

/// `feed list`.
const ENTRIES: Listing<FeedEntry> = Listing {
    columns: &[
        left("UPDATED (UTC)"),
        left("CITY"),
        left("AREA"),
        left("TITLE"),
    ],
    row: |e| {
        vec![
            when(Some(e.updated)),
            e.city.clone(),
            e.area.clone().unwrap_or_else(|| "-".into()),
            e.title.clone(),
        ]
    },
    empty: "No publications match.",
};

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
                println!("{} ({})", e.title, e.city);
                println!("  id:      {}", e.id);
                println!("  area:    {}", e.area.as_deref().unwrap_or("-"));
                println!("  updated: {} UTC", when(Some(e.updated)));
                if let Some(link) = &e.link {
                    println!("  link:    {link}");
                }
                println!("\n{}\n", e.summary);
                for i in &e.indicators {
                    println!("  - {}", indicator_text(i));
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
    }
}
