//! `labnet audit`: answers "what did peer X get from us, and when?".

use anyhow::Result;
use labnet_node::api::{AdminRequest, DisclosureEntry};

use super::{list, parse_date, when, Listing};
use crate::args::{AuditArgs, Global};
use crate::table::left;

/// `audit`.
const DISCLOSURES: Listing<DisclosureEntry> = Listing {
    columns: &[
        left("WHEN (UTC)"),
        left("ACTION"),
        left("PUBLICATION"),
        left("PEER"),
        left("SCOPE"),
        left("VERSION"),
    ],
    row: disclosure_row,
    empty: "Nothing in the disclosure log matches.",
};

fn disclosure_row(d: &DisclosureEntry) -> Vec<String> {
    vec![
        when(Some(d.at)),
        d.action.clone(),
        d.doc_id.clone(),
        peer_label(d),
        d.scope.clone(),
        // The first head's start names the version, as a short git hash does.
        d.heads.chars().take(12).collect(),
    ]
}

/// The peer as the admin knows it: its approved name and the start of its
/// NodeId (enough to tell two same-named nodes apart), or `-` for local actions.
fn peer_label(d: &DisclosureEntry) -> String {
    match (&d.node_id, &d.peer_name) {
        (None, _) => "-".into(),
        (Some(id), Some(name)) => format!("{name} ({})", id.chars().take(5).collect::<String>()),
        (Some(id), None) => id.clone(),
    }
}

pub(crate) fn run(global: &Global, args: AuditArgs) -> Result<()> {
    let since = args
        .since
        .as_deref()
        .map(|s| parse_date("--since", s))
        .transpose()?;
    let request = AdminRequest::Audit {
        peer: args.peer,
        since,
    };
    list(global, request, args.output.json, &DISCLOSURES).map(drop)
}
