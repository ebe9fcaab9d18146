//! `labnet audit`: answers "what did peer X get from us, and when?".

use anyhow::Result;
use labnet_node::api::{AdminRequest, DisclosureEntry};

use super::{parse_date, print_list, request, when};
use crate::args::{AuditArgs, Global};
use crate::table::{left, Column};

const COLUMNS: [Column; 6] = [
    left("WHEN (UTC)"),
    left("ACTION"),
    left("PUBLICATION"),
    left("PEER"),
    left("SCOPE"),
    left("VERSION"),
];

pub(crate) fn run(global: &Global, args: AuditArgs) -> Result<()> {
    let since = args
        .since
        .as_deref()
        .map(|s| parse_date("--since", s))
        .transpose()?;
    let lines: Vec<DisclosureEntry> = request(
        global,
        AdminRequest::Audit {
            peer: args.peer,
            since,
        },
    )?;
    print_list(
        args.json,
        &lines,
        "Nothing in the disclosure log matches.",
        &COLUMNS,
        |d| {
            vec![
                when(Some(d.at)),
                d.action.clone(),
                d.doc_id.clone(),
                d.node_id.clone().unwrap_or_else(|| "-".into()),
                d.scope.clone(),
                // The first head's start names the version, as a short git hash does.
                d.heads.chars().take(12).collect(),
            ]
        },
    )
}
