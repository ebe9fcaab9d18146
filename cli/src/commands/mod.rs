//! What each command does. Each submodule takes parsed flags, calls the node
//! library or the daemon, and prints.
//!
//! The helpers below are what every command shares: [`request`] (the running
//! daemon, or the store of a stopped node, with a typed reply), [`answer`],
//! [`print_list`] and [`list`] (`--json` or words or a table), and the reading and
//! writing of dates.

mod audit;
mod demo;
mod feed;
mod invite;
mod node;
mod peers;
mod practice;

use anyhow::{Context, Result};
use labnet_config::Overrides;
use labnet_node::admin::{self, AdminError};
use labnet_node::api::AdminRequest;
use labnet_node::data_dir::{DataDir, DataDirError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::time::{Duration, Instant};

use crate::args::{Cli, Command, Global};
use crate::table::{Column, Table};

/// Runs the command the user typed.
pub(crate) fn dispatch(cli: Cli) -> Result<()> {
    let global = cli.global;
    match cli.command {
        Command::Init(args) => node::init(&global, args),
        Command::Run(args) => node::run(&global, args),
        Command::Status(args) => node::status(&global, args.json),
        Command::Id(args) => node::id(&global, args.json),
        Command::Console(args) => answer(
            &global,
            AdminRequest::ConsoleLogin,
            args.json,
            |c: &labnet_node::api::ConsoleLogin| {
                println!("Open the console (the link works once, for 15 minutes):");
                println!("    {}", c.url);
            },
        ),
        Command::Peers(command) => peers::run(&global, command),
        Command::Audit(args) => audit::run(&global, args),
        Command::Feed(command) => feed::run(&global, command),
        Command::Demo(args) => demo::run(args),
        Command::Practice(command) => practice::run(&global, command),
        Command::Stakeholder(command) => practice::stakeholder(&global, command),
        Command::Lab(command) => practice::lab(&global, command),
        Command::Share(args) => practice::share(&global, args),
        Command::Unshare(args) => practice::unshare(&global, args),
        Command::Invite(command) => invite::run(&global, command),
    }
}

/// Sends a request to the running daemon; on a stopped node, carries out the
/// requests that can be (see `AdminRequest::works_offline`) directly on its
/// store. Reads the reply as `T`, the type the request returns (see
/// `labnet_node::api`).
///
/// "Stopped" is what the instance lock says, not the admin socket: a daemon
/// whose socket is gone or dead still holds the lock, and writing its store
/// behind its back would report a success the daemon never sees. Then the
/// command fails, naming the daemon's pid and socket, and writes nothing.
pub(crate) fn request<T: DeserializeOwned>(global: &Global, request: AdminRequest) -> Result<T> {
    let data_dir = DataDir::new(&global.data_dir);
    let value = match admin::call(&data_dir.admin_socket(), &request) {
        Err(AdminError::NotRunning { .. }) if request.works_offline() => {
            offline(&data_dir, request)?
        }
        other => other?,
    };
    serde_json::from_value(value).context(
        "the daemon's answer has an unexpected shape (is the daemon a different labnet version?)",
    )
}

/// How long a command that found no daemon on the admin socket keeps trying
/// when the instance lock is held anyway: long enough for another command's
/// offline work (moments) to finish, and for a daemon that has just taken the
/// lock to open its socket; short enough that an operator with a daemon whose
/// socket is gone is told so at once.
const OFFLINE_LOCK_WAIT: Duration = Duration::from_secs(3);

/// How often the lock and the socket are tried again meanwhile.
const OFFLINE_LOCK_RETRY: Duration = Duration::from_millis(50);

/// Carries out `request` on the stopped node's store, holding the instance
/// lock until it is done; or, if a daemon holds the lock, sends it there once
/// its socket answers, or fails.
fn offline(data_dir: &DataDir, request: AdminRequest) -> Result<serde_json::Value> {
    let deadline = Instant::now() + OFFLINE_LOCK_WAIT;
    let lock = loop {
        match data_dir.lock_offline() {
            Ok(lock) => break lock,
            Err(held @ DataDirError::DaemonUnreachable { .. }) => {
                // The request was never delivered (nobody listened), so
                // sending it again cannot apply it twice.
                match admin::call(&data_dir.admin_socket(), &request) {
                    Err(AdminError::NotRunning { .. }) => {}
                    answered => return Ok(answered?),
                }
                if Instant::now() >= deadline {
                    return Err(held.into());
                }
                std::thread::sleep(OFFLINE_LOCK_RETRY);
            }
            Err(other) => return Err(other.into()),
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let value = runtime.block_on(async {
        let control = labnet_node::daemon::offline_control(&lock, &[Overrides::from_env()]).await?;
        control
            .handle(request)
            .await
            .into_result()
            .map_err(anyhow::Error::msg)
    })?;
    // Only now, with the store closed (the runtime dropped it), may a daemon start.
    drop(runtime);
    drop(lock);
    Ok(value)
}

/// Reads a date as typed on the command line: `YYYY-MM-DD` (midnight UTC) or an
/// RFC 3339 time. Returns unix seconds.
pub(crate) fn parse_date(flag: &str, typed: &str) -> Result<i64> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(typed, &Rfc3339) {
        return Ok(t.unix_timestamp());
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(typed, &format)
        .map(|d| d.midnight().assume_utc().unix_timestamp())
        .map_err(|_| {
            anyhow::anyhow!(
                "{flag} '{typed}': not a date; use YYYY-MM-DD or e.g. 2026-03-01T12:00:00Z"
            )
        })
}

/// Formats unix seconds as `YYYY-MM-DD HH:MM` UTC, or `-`.
pub(crate) fn when(unix: Option<i64>) -> String {
    let Some(t) = unix.and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok()) else {
        return "-".into();
    };
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
    t.format(&format).unwrap_or_else(|_| "-".into())
}

/// The process exit code for an error: 3 when the daemon is not running.
pub(crate) fn exit_code(e: &anyhow::Error) -> i32 {
    match e.downcast_ref::<AdminError>() {
        Some(AdminError::NotRunning { .. }) => 3,
        _ => 1,
    }
}

/// Prints a value as pretty JSON on stdout.
pub(crate) fn print_json(value: &impl Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Sends `request` (see [`request`]) and prints its reply: as JSON with
/// `--json`, else as `human` words it.
pub(crate) fn answer<T: DeserializeOwned + Serialize>(
    global: &Global,
    request: AdminRequest,
    json: bool,
    human: impl FnOnce(&T),
) -> Result<()> {
    let reply: T = self::request(global, request)?;
    if json {
        return print_json(&reply);
    }
    human(&reply);
    Ok(())
}

/// How a list prints as a table: its columns, one row per item, and what is
/// said instead when there is nothing.
pub(crate) struct Listing<T> {
    pub(crate) columns: &'static [Column],
    pub(crate) row: fn(&T) -> Vec<String>,
    pub(crate) empty: &'static str,
}

/// Prints a list: as JSON with `--json`; else the listing's `empty` words when
/// there is nothing, or its table.
pub(crate) fn print_list<T: Serialize>(
    json: bool,
    items: &[T],
    listing: &Listing<T>,
) -> Result<()> {
    if json {
        return print_json(&items);
    }
    if items.is_empty() {
        println!("{}", listing.empty);
        return Ok(());
    }
    let mut table = Table::new(listing.columns);
    for item in items {
        table.row((listing.row)(item));
    }
    table.print();
    Ok(())
}

/// Sends `request` (see [`request`]) for a list and prints it (see
/// [`print_list`]); returns the items.
pub(crate) fn list<T: DeserializeOwned + Serialize>(
    global: &Global,
    request: AdminRequest,
    json: bool,
    listing: &Listing<T>,
) -> Result<Vec<T>> {
    let items: Vec<T> = self::request(global, request)?;
    print_list(json, &items, listing)?;
    Ok(items)
}
