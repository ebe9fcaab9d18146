//! `labnet invite ...`: letting another node in with a one-line token.

use anyhow::{Context, Result};
use labnet_config::Role;
use labnet_node::admin::AdminRequest;
use labnet_node::control::{InviteAccepted, InviteCreated};
use labnet_node::store::InviteRecord;

use super::{decode, print_json, request, when};
use crate::args::{Global, InviteCommand};

pub(crate) fn run(global: &Global, command: InviteCommand) -> Result<()> {
    match command {
        InviteCommand::Create(args) => {
            let role: Role = args
                .role
                .parse()
                .map_err(anyhow::Error::msg)
                .context("--role")?;
            let expires = humantime::parse_duration(&args.expires).map_err(|e| {
                anyhow::anyhow!("--expires '{}': {e}; use e.g. 30m, 24h or 7d", args.expires)
            })?;
            let created: InviteCreated = decode(request(
                global,
                AdminRequest::InviteCreate {
                    role,
                    expires_secs: expires.as_secs(),
                    uses: args.uses,
                },
            )?)?;
            if args.json {
                return print_json(&created);
            }
            println!("{}", created.token);
            eprintln!(
                "Invite {} for a {}: valid until {} UTC, {} use(s). Send the line above to the other node's admin; they run `labnet invite accept TOKEN`.",
                created.invite_id,
                created.role,
                when(Some(created.expires_at)),
                created.uses
            );
            Ok(())
        }
        InviteCommand::List(args) => {
            let invites: Vec<InviteRecord> = decode(request(global, AdminRequest::InviteList)?)?;
            if args.json {
                return print_json(&invites);
            }
            if invites.is_empty() {
                println!("No invites. Make one with `labnet invite create`.");
                return Ok(());
            }
            println!(
                "{:<10}  {:<10}  {:<16}  {:<16}  {:>9}  STATE",
                "ID", "ROLE", "CREATED", "EXPIRES", "USES LEFT"
            );
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            for i in invites {
                let state = if i.revoked_at.is_some() {
                    "revoked"
                } else if i.expires_at <= now {
                    "expired"
                } else if i.uses_left <= 0 {
                    "used up"
                } else {
                    "active"
                };
                println!(
                    "{:<10}  {:<10}  {:<16}  {:<16}  {:>9}  {}",
                    i.invite_id,
                    i.role,
                    when(Some(i.created_at)),
                    when(Some(i.expires_at)),
                    i.uses_left,
                    state
                );
            }
            Ok(())
        }
        InviteCommand::Revoke(args) => {
            request(
                global,
                AdminRequest::InviteRevoke {
                    invite_id: args.invite_id.clone(),
                },
            )?;
            println!("Revoked invite {}.", args.invite_id);
            Ok(())
        }
        InviteCommand::Accept(args) => {
            let accepted: InviteAccepted = decode(request(
                global,
                AdminRequest::InviteAccept { token: args.token },
            )?)?;
            if args.json {
                return print_json(&accepted);
            }
            println!(
                "Joined {} ({}) at {}. Both nodes have approved each other.",
                accepted.name, accepted.node_id, accepted.address
            );
            Ok(())
        }
    }
}
