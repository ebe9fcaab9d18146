//! `labnet audit`: answers "what did peer X get from us, and when?".

use anyhow::Result;
use labnet_node::admin::AdminRequest;
use labnet_node::store::Disclosure;

use super::{decode, parse_date, print_json, request, when};
use crate::args::{AuditArgs, Global};

pub(crate) fn run(global: &Global, args: AuditArgs) -> Result<()> {
    let since = args
        .since
        .as_deref()
        .map(|s| parse_date("--since", s))
        .transpose()?;
    let lines: Vec<Disclosure> = decode(request(
        global,
        AdminRequest::Audit {
            peer: args.peer,
            since,
        },
    )?)?;
    if args.json {
        return print_json(&lines);
    }
    if lines.is_empty() {
        println!("Nothing in the disclosure log matches.");
        return Ok(());
    }
    println!(
        "{:<16}  {:<8}  {:<36}  {:<41}  {:<12}  VERSION",
        "WHEN (UTC)", "ACTION", "PUBLICATION", "PEER", "SCOPE"
    );
    for d in lines {
        let peer = d
            .node_id
            .map(|n| n.to_string())
            .unwrap_or_else(|| "-".into());
        let version: String = d.heads.chars().take(12).collect();
        println!(
            "{:<16}  {:<8}  {:<36}  {:<41}  {:<12}  {}",
            when(Some(d.at)),
            d.action,
            d.doc_id,
            peer,
            d.scope,
            version
        );
    }
    Ok(())
}
