//! `labnet`: run a city's node and administer it.
//!
//! This binary is thin on purpose: it parses flags, sets up logging, and calls the
//! node library (for `init` and `run`) or the running daemon's admin socket (for
//! everything an admin does while the node runs). See `labnet --help`.
//!
//! Exit codes: 0 success; 1 failure (one line on stderr says why); 2 bad usage;
//! 3 the daemon is not running (for commands that need it).

mod args;
mod commands;
mod logging;
mod table;
mod terminal;

use clap::Parser;

fn main() {
    restore_default_sigpipe();
    let cli = args::Cli::parse();
    // The config file's log.format counts too, so a daemon started by a service
    // manager logs as configured; a missing or broken config is reported later by
    // the command itself, with its line.
    let config_format = labnet_node::data_dir::DataDir::new(&cli.global.data_dir)
        .load_config(&[])
        .ok()
        .map(|c| c.log_format.to_string());
    let default_level = match cli.command {
        args::Command::Run(_) => "info",
        _ => "warn",
    };
    logging::init(
        cli.global.log_format.as_deref(),
        config_format.as_deref(),
        default_level,
    );
    match commands::dispatch(cli) {
        Ok(()) => {}
        Err(e) => {
            let code = commands::exit_code(&e);
            eprintln!("labnet: {}", one_line(&e));
            std::process::exit(code);
        }
    }
}

/// Rust ignores SIGPIPE, so `labnet practice list | head` would panic on the
/// closed pipe. A command-line tool should simply stop, as `ls` does.
#[allow(unsafe_code)]
fn restore_default_sigpipe() {
    // SAFETY: called first thing in main, before any thread exists; SIG_DFL is a
    // valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// The error and its causes on one line, as operators read them in scripts and
/// logs, cleaned for the terminal: a reason may quote what a peer sent.
fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    terminal::line(&parts.join(": ").replace('\n', " "))
}
