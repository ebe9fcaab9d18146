//! `init`, `run`, `status`, `id`: creating, running and inspecting a node.

use anyhow::{Context, Result};
use labnet_config::{OverrideOrigin, Overrides, Role};
use labnet_node::api::{AdminRequest, StatusReport};
use labnet_node::daemon::{self, StartOptions};
use labnet_node::data_dir::DataDir;
use labnet_protocol::Contact;

use super::{answer, print_json, request, when};
use crate::args::{Global, InitArgs, RunArgs};
use crate::table::{left, right, Column, Table};

const SYNC_COLUMNS: [Column; 7] = [
    left("PEER"),
    left("NAME"),
    left("ROLE"),
    left("CONNECTED"),
    left("LAST SYNC"),
    right("IN SCOPE"),
    right("BEHIND"),
];

fn env_overrides() -> Overrides {
    Overrides::from_env()
}

pub(crate) fn init(global: &Global, args: InitArgs) -> Result<()> {
    let role: Role = args
        .role
        .parse()
        .map_err(anyhow::Error::msg)
        .context("--role")?;
    let dir = DataDir::new(&global.data_dir);
    // Flags given to init are what the file will say; the environment still
    // overrides them at run time, so it is only used here to validate.
    let report = dir.init(&args.name, role, &args.listen, &[])?;
    if args.output.json {
        return print_json(&report);
    }
    println!(
        "Created node {} in {}",
        report.name,
        report.data_dir.display()
    );
    println!("NodeId: {}", report.node_id);
    println!("Role:   {}", report.role);
    println!("Listen: {}", report.listen);
    println!(
        "Start it with: labnet --data-dir {} run",
        report.data_dir.display()
    );
    Ok(())
}

pub(crate) fn run(global: &Global, args: RunArgs) -> Result<()> {
    let flags = Overrides {
        origin: OverrideOrigin::CommandLine,
        name: args.name,
        listen: args.listen,
        log_format: global.log_format.clone(),
        ..Overrides::default()
    };
    let options = StartOptions::new(DataDir::new(&global.data_dir), vec![env_overrides(), flags]);
    let default_name = default_node_name();
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let shutdown = shutdown_signal();
        daemon::run(options, &default_name, shutdown).await
    })?;
    Ok(())
}

pub(crate) fn status(global: &Global, json: bool) -> Result<()> {
    // Status is live state: it never falls back to a stopped node's store.
    answer(global, AdminRequest::Status, json, |r: &StatusReport| {
        print_status(global, r)
    })
}

fn print_status(global: &Global, report: &StatusReport) {
    println!("{} ({})", report.name, report.role);
    println!("  NodeId:    {}", report.node_id);
    println!("  listening: {}", report.listen);
    println!("  uptime:    {}", human_duration(report.uptime_secs));
    println!(
        "  store:     {} ({})",
        human_bytes(report.store_bytes),
        global.data_dir.display()
    );
    println!(
        "  documents: {} private, {} published, {} received",
        report.documents.private, report.documents.publication, report.documents.replica
    );
    println!(
        "  peers:     {} approved, {} connected, {} pending",
        report.peers.approved, report.peers.connected, report.peers.pending
    );
    println!("  daemon:    pid {}, labnet {}", report.pid, report.version);
    if !report.sync.is_empty() {
        println!();
        let mut table = Table::new(&SYNC_COLUMNS).indented("  ");
        for p in &report.sync {
            table.row(vec![
                p.node_id.clone(),
                p.name.clone().unwrap_or_else(|| "-".into()),
                p.role.to_string(),
                if p.connected { "yes" } else { "no" }.into(),
                when(p.last_sync),
                p.in_scope.to_string(),
                p.not_up_to_date.to_string(),
            ]);
        }
        table.print();
    }
    for r in &report.retractions {
        println!(
            "  retracted {}: confirmed by {} node(s), {} peer(s) it was sent to not yet",
            crate::terminal::line(&r.doc_id),
            r.confirmed_by.len(),
            r.awaiting.len()
        );
    }
}

pub(crate) fn id(global: &Global, json: bool) -> Result<()> {
    let dir = DataDir::new(&global.data_dir);
    let identity = dir.load_identity()?;
    let config = dir.load_config(&[env_overrides()])?;
    // The running daemon knows the port it really bound (the config may say 0).
    let bound = request::<StatusReport>(global, AdminRequest::Status)
        .ok()
        .and_then(|s| s.listen.parse().ok());
    let address = config.contact_address(&labnet_node::transport::endpoint::contact_host(), bound);
    // A node configured on port 0 has no dialable address until it runs; the
    // NodeId is still worth printing.
    let contact = match labnet_protocol::contact::validate_address(&address) {
        Ok(()) => Some(Contact {
            node_id: identity.node_id(),
            address,
        }),
        Err(problem) => {
            eprintln!(
                "labnet: no contact string: {address} is not dialable ({problem}); start the node to learn its port, or set node.listen or node.advertise"
            );
            None
        }
    };
    if json {
        return print_json(&serde_json::json!({
            "node_id": identity.node_id().to_string(),
            "contact": contact.map(|c| c.to_string()),
        }));
    }
    println!("NodeId:  {}", identity.node_id());
    if let Some(contact) = contact {
        println!("Contact: {contact}");
    }
    Ok(())
}

/// The name `init` gives a node when none is given: the machine's host name,
/// or `labnet-node` when it has none (a name, not an address).
fn default_node_name() -> String {
    hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.trim().is_empty())
        .unwrap_or_else(|| "labnet-node".to_string())
}

/// Watches SIGINT and SIGTERM from the call on; the future completes on either.
///
/// The handlers are installed when this is called, not when the future is first
/// polled: the daemon answers on its admin socket before it waits for the
/// signal, and a signal sent as soon as it answers (a service manager stopping
/// it, a test) must shut it down cleanly, not kill it with the default action.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        match (interrupt, terminate) {
            (Ok(mut interrupt), Ok(mut terminate)) => {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
            }
            (Ok(mut interrupt), Err(e)) => {
                tracing::warn!(error = %e, "cannot watch SIGTERM; stop with Ctrl-C");
                interrupt.recv().await;
            }
            (Err(e), _) => {
                tracing::warn!(error = %e, "cannot watch SIGINT; trying Ctrl-C once more");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}

fn human_duration(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m {}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d {}h", s / 86_400, (s % 86_400) / 3600),
    }
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
