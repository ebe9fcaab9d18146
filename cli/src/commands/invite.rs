//! `labnet invite ...`: letting another node in with a one-line token.

use anyhow::{Context, Result};
use labnet_config::Role;
use labnet_node::api::{AdminRequest, InviteAccepted, InviteCreated, InviteEntry, InviteRevoked};

use super::{answer, list, when, Listing};
use crate::args::{Global, InviteCommand};
use crate::table::{left, right};

/// `invite list`.
const INVITES: Listing<InviteEntry> = Listing {
    columns: &[
        left("ID"),
        left("ROLE"),
        left("CREATED"),
        left("EXPIRES"),
        right("USES LEFT"),
        left("STATE"),
    ],
    row: invite_row,
    empty: "No invites. Make one with `labnet invite create`.",
};

fn invite_row(i: &InviteEntry) -> Vec<String> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    vec![
        i.invite_id.clone(),
        i.role.to_string(),
        when(Some(i.created_at)),
        when(Some(i.expires_at)),
        i.uses_left.to_string(),
        state(i, now).into(),
    ]
}

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
            answer(
                global,
                AdminRequest::InviteCreate {
                    role,
                    expires_secs: expires.as_secs(),
                    uses: args.uses,
                },
                args.output.json,
                |c: &InviteCreated| {
                    // The token alone on stdout, so `$(labnet invite create)` is the token.
                    println!("{}", c.token);
                    eprintln!(
                    "Invite {} for a {}: valid until {} UTC, {} use(s). Send the line above to the other node's admin; they run `labnet invite accept TOKEN`.",
                    c.invite_id,
                    c.role,
                    when(Some(c.expires_at)),
                    c.uses
                );
                },
            )
        }
        InviteCommand::List(args) => {
            list(global, AdminRequest::InviteList, args.json, &INVITES).map(drop)
        }
        // No --json: the words are the whole answer.
        InviteCommand::Revoke(args) => answer(
            global,
            AdminRequest::InviteRevoke {
                invite_id: args.invite_id,
            },
            false,
            |revoked: &InviteRevoked| println!("Revoked invite {}.", revoked.invite_id),
        ),
        InviteCommand::Accept(args) => answer(
            global,
            AdminRequest::InviteAccept { token: args.token },
            args.output.json,
            |a: &InviteAccepted| {
                // The name and address came from the inviter's token and Hello.
                let name = crate::terminal::line(&a.name);
                println!(
                    "Joined {name} ({}) at {}. Both nodes have approved each other.",
                    a.node_id,
                    crate::terminal::line(&a.address)
                );
                println!(
                    "{name} is approved here as a {}: {}. This node is a {} there.",
                    a.role,
                    receives(a.role),
                    a.our_role
                );
            },
        ),
    }
}

/// What a peer of `role` receives from this node, in the admin's words.
fn receives(role: Role) -> &'static str {
    match role {
        Role::Partner => {
            "it receives publications scoped to partners, or naming it, and public ones"
        }
        Role::Subscriber => "it receives public publications only",
    }
}

/// Whether an invite can still be used, and if not why, at `now`.
fn state(invite: &InviteEntry, now: i64) -> &'static str {
    if invite.revoked_at.is_some() {
        "revoked"
    } else if invite.expires_at <= now {
        "expired"
    } else if invite.uses_left <= 0 {
        "used up"
    } else {
        "active"
    }
}
