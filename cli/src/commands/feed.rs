//! `labnet feed ...`: what this node can show of the network's practices.

use anyhow::{bail, Context, Result};
use labnet_node::admin::AdminRequest;
use labnet_node::data_dir::DataDir;
use labnet_node::feed::{indicator_text, to_atom, to_csv, to_json_feed, FeedEntry, FeedInfo};

use super::{decode, parse_date, print_json, request, when};
use crate::args::{FeedCommand, FeedFilterArgs, Global};

fn list(global: &Global, filter: &FeedFilterArgs) -> Result<Vec<FeedEntry>> {
    let since = filter
        .since
        .as_deref()
        .map(|s| parse_date("--since", s))
        .transpose()?;
    decode(request(
        global,
        AdminRequest::FeedList {
            city: filter.city.clone(),
            area: filter.area.clone(),
            since,
        },
    )?)
}

pub(crate) fn run(global: &Global, command: FeedCommand) -> Result<()> {
    match command {
        FeedCommand::List(args) => {
            let entries = list(global, &args.filter)?;
            if args.json {
                return print_json(&entries);
            }
            if entries.is_empty() {
                println!("No publications match.");
                return Ok(());
            }
            println!(
                "{:<16}  {:<22}  {:<10}  TITLE",
                "UPDATED (UTC)", "CITY", "AREA"
            );
            for e in entries {
                println!(
                    "{:<16}  {:<22}  {:<10}  {}",
                    when(Some(e.updated)),
                    e.city,
                    e.area.as_deref().unwrap_or("-"),
                    e.title
                );
            }
            Ok(())
        }
        FeedCommand::Show(args) => {
            let entry: FeedEntry =
                decode(request(global, AdminRequest::FeedShow { id: args.id })?)?;
            if args.json {
                return print_json(&entry);
            }
            println!("{} ({})", entry.title, entry.city);
            println!("  id:      {}", entry.id);
            println!("  area:    {}", entry.area.as_deref().unwrap_or("-"));
            println!("  updated: {} UTC", when(Some(entry.updated)));
            if let Some(link) = &entry.link {
                println!("  link:    {link}");
            }
            println!("\n{}\n", entry.summary);
            for i in &entry.indicators {
                println!("  - {}", indicator_text(i));
            }
            Ok(())
        }
        FeedCommand::Export(args) => {
            let entries = list(global, &args.filter)?;
            let node = DataDir::new(&global.data_dir)
                .load_identity()
                .map(|i| i.node_id().to_string())
                .unwrap_or_default();
            let info = FeedInfo {
                id: format!("urn:labnet:feed:{node}"),
                title: "labnet: practices shared by partner cities".into(),
            };
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
