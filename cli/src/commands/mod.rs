//! What each command does. Each submodule takes parsed flags, calls the node
//! library or the daemon, and prints.

mod node;

use anyhow::Result;
use labnet_node::admin::AdminError;

use crate::args::{Cli, Command};

/// Runs the command the user typed.
pub(crate) fn dispatch(cli: Cli) -> Result<()> {
    let global = cli.global;
    match cli.command {
        Command::Init(args) => node::init(&global, args),
        Command::Run(args) => node::run(&global, args),
        Command::Status(args) => node::status(&global, args.json),
        Command::Id(args) => node::id(&global, args.json),
    }
}

/// The process exit code for an error: 3 when the daemon is not running.
pub(crate) fn exit_code(e: &anyhow::Error) -> i32 {
    match e.downcast_ref::<AdminError>() {
        Some(AdminError::NotRunning { .. }) => 3,
        _ => 1,
    }
}

/// Prints a value as pretty JSON on stdout.
pub(crate) fn print_json(value: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
