//! `labnet peers ...`: who this node talks to.
//!
//! A peer is shown by the name its admin approved. What the peer calls itself
//! now, when that differs, follows as `(claims: NAME)`: a claim is the peer's
//! word, and a peer that renames itself to another city's name must not be
//! mistaken for that city.

use anyhow::{Context, Result};
use labnet_config::Role;
use labnet_node::api::{AdminRequest, PeerListEntry, PendingEntry};

use super::{answer, list, when, Listing};
use crate::args::{Global, PeersCommand};
use crate::table::{left, right};
use crate::terminal;

/// `peers list`.
const PEERS: Listing<PeerListEntry> = Listing {
    columns: &[
        left("NODE ID"),
        left("NAME"),
        left("ROLE"),
        left("STATE"),
        left("CONNECTED"),
        left("ADDRESS"),
        left("LAST SEEN"),
    ],
    row: peer_row,
    empty: "No peers yet. Add one with `labnet peers add CONTACT`, or approve one from `labnet peers pending`.",
};

/// `peers pending`.
const PENDING: Listing<PendingEntry> = Listing {
    columns: &[
        left("NODE ID"),
        left("NAME (unverified)"),
        left("ADDRESS"),
        left("FIRST SEEN"),
        left("LAST SEEN"),
        right("ATTEMPTS"),
    ],
    row: pending_row,
    empty: "No pending requests.",
};

fn peer_row(p: &PeerListEntry) -> Vec<String> {
    let connected = match p.connected {
        Some(true) => "yes",
        Some(false) => "no",
        // A stopped node cannot know.
        None => "?",
    };
    vec![
        p.node_id.clone(),
        shown_name(p),
        p.role.to_string(),
        p.state.clone(),
        connected.into(),
        p.address.clone().unwrap_or_else(|| "-".into()),
        when(p.last_seen),
    ]
}

/// The approved name, then the name the peer claims now if it differs.
fn shown_name(p: &PeerListEntry) -> String {
    let approved = p.name.as_deref().unwrap_or("-");
    match &p.claimed_name {
        Some(claimed) => format!("{approved} (claims: {claimed})"),
        None => approved.to_string(),
    }
}

fn pending_row(p: &PendingEntry) -> Vec<String> {
    vec![
        p.node_id.clone(),
        p.name.clone(),
        p.address.clone(),
        when(Some(p.first_seen)),
        when(Some(p.last_seen)),
        p.attempts.to_string(),
    ]
}

pub(crate) fn run(global: &Global, command: PeersCommand) -> Result<()> {
    match command {
        PeersCommand::List(args) => {
            list(global, AdminRequest::PeersList, args.json, &PEERS).map(drop)
        }
        PeersCommand::Pending(args) => {
            let pending = list(global, AdminRequest::PeersPending, args.json, &PENDING)?;
            if !args.json && !pending.is_empty() {
                println!(
                    "Approve one with `labnet peers approve NODEID [--role partner|subscriber]`."
                );
            }
            Ok(())
        }
        PeersCommand::Approve(args) => answer(
            global,
            AdminRequest::PeersApprove {
                node_id: args.node_id,
                role: args.role.as_deref().map(parse_role).transpose()?,
            },
            args.output.json,
            |e: &PeerListEntry| {
                if let Some(notice) = &e.notice {
                    eprintln!("Note: {}", terminal::line(notice));
                }
                println!(
                    "Approved {} ({}) as {}.",
                    e.node_id,
                    terminal::line(e.name.as_deref().unwrap_or("name not known yet")),
                    e.role
                )
            },
        ),
        PeersCommand::Add(args) => answer(
            global,
            AdminRequest::PeersAdd {
                contact: args.contact,
                role: Some(parse_role(&args.role)?),
            },
            args.output.json,
            |e: &PeerListEntry| {
                println!(
                    "Added {} as {} at {}; the node dials it while it runs.",
                    e.node_id,
                    e.role,
                    terminal::line(e.address.as_deref().unwrap_or("?"))
                )
            },
        ),
        PeersCommand::Revoke(args) => answer(
            global,
            AdminRequest::PeersRevoke {
                node_id: args.node_id,
            },
            args.output.json,
            |e: &PeerListEntry| {
                println!(
                    "Revoked {}. Its connection is closed and it will be refused from now on.",
                    e.node_id
                )
            },
        ),
    }
}

fn parse_role(typed: &str) -> Result<Role> {
    typed
        .parse::<Role>()
        .map_err(anyhow::Error::msg)
        .context("--role")
}
