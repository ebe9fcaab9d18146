//! `labnet peers ...`: who this node talks to.

use anyhow::{Context, Result};
use labnet_config::Role;
use labnet_node::admin::AdminRequest;
use labnet_node::control::{PeerListEntry, PendingEntry};

use super::{decode, print_json, request, when};
use crate::args::{Global, PeersCommand};

pub(crate) fn run(global: &Global, command: PeersCommand) -> Result<()> {
    match command {
        PeersCommand::List(args) => {
            let peers: Vec<PeerListEntry> = decode(request(global, AdminRequest::PeersList)?)?;
            if args.json {
                return print_json(&peers);
            }
            if peers.is_empty() {
                println!("No peers yet. Add one with `labnet peers add CONTACT`, or approve one from `labnet peers pending`.");
                return Ok(());
            }
            println!(
                "{:<41}  {:<20}  {:<10}  {:<8}  {:<9}  {:<22}  LAST SEEN",
                "NODE ID", "NAME", "ROLE", "STATE", "CONNECTED", "ADDRESS"
            );
            for p in peers {
                let connected = match p.connected {
                    Some(true) => "yes",
                    Some(false) => "no",
                    None => "?",
                };
                println!(
                    "{:<41}  {:<20}  {:<10}  {:<8}  {:<9}  {:<22}  {}",
                    p.node_id,
                    p.name.as_deref().unwrap_or("-"),
                    p.role,
                    p.state,
                    connected,
                    p.address.as_deref().unwrap_or("-"),
                    when(p.last_seen)
                );
            }
            Ok(())
        }
        PeersCommand::Pending(args) => {
            let pending: Vec<PendingEntry> = decode(request(global, AdminRequest::PeersPending)?)?;
            if args.json {
                return print_json(&pending);
            }
            if pending.is_empty() {
                println!("No pending requests.");
                return Ok(());
            }
            println!(
                "{:<41}  {:<20}  {:<22}  {:<16}  {:<16}  ATTEMPTS",
                "NODE ID", "NAME (unverified)", "ADDRESS", "FIRST SEEN", "LAST SEEN"
            );
            for p in pending {
                println!(
                    "{:<41}  {:<20}  {:<22}  {:<16}  {:<16}  {}",
                    p.node_id,
                    p.name,
                    p.address,
                    when(Some(p.first_seen)),
                    when(Some(p.last_seen)),
                    p.attempts
                );
            }
            println!("Approve one with `labnet peers approve NODEID [--role partner|subscriber]`.");
            Ok(())
        }
        PeersCommand::Approve(args) => {
            let role = parse_role(&args.role)?;
            let entry: PeerListEntry = decode(request(
                global,
                AdminRequest::PeersApprove {
                    node_id: args.node_id,
                    role: Some(role),
                },
            )?)?;
            if args.json {
                return print_json(&entry);
            }
            println!(
                "Approved {} ({}) as {}.",
                entry.node_id,
                entry.name.as_deref().unwrap_or("name not known yet"),
                entry.role
            );
            Ok(())
        }
        PeersCommand::Add(args) => {
            let role = parse_role(&args.role)?;
            let entry: PeerListEntry = decode(request(
                global,
                AdminRequest::PeersAdd {
                    contact: args.contact,
                    role: Some(role),
                },
            )?)?;
            if args.json {
                return print_json(&entry);
            }
            println!(
                "Added {} as {} at {}; the node dials it while it runs.",
                entry.node_id,
                entry.role,
                entry.address.as_deref().unwrap_or("?")
            );
            Ok(())
        }
        PeersCommand::Revoke(args) => {
            let entry: PeerListEntry = decode(request(
                global,
                AdminRequest::PeersRevoke {
                    node_id: args.node_id,
                },
            )?)?;
            if args.json {
                return print_json(&entry);
            }
            println!(
                "Revoked {}. Its connection is closed and it will be refused from now on.",
                entry.node_id
            );
            Ok(())
        }
    }
}

fn parse_role(typed: &str) -> Result<Role> {
    typed
        .parse::<Role>()
        .map_err(anyhow::Error::msg)
        .context("--role")
}
