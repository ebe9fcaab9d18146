//! `init`, `run`, `status`, `id`: creating, running and inspecting a node.

use anyhow::{Context, Result};
use labnet_config::{OverrideOrigin, Overrides, Role};
use labnet_node::admin::{self, AdminRequest};
use labnet_node::control::StatusReport;
use labnet_node::daemon::{self, StartOptions};
use labnet_node::data_dir::DataDir;
use labnet_protocol::Contact;

use super::print_json;
use crate::args::{Global, InitArgs, RunArgs};

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
    if args.json {
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
    runtime
        .block_on(async move { daemon::run(options, &default_name, shutdown_signal()).await })?;
    Ok(())
}

pub(crate) fn status(global: &Global, json: bool) -> Result<()> {
    let dir = DataDir::new(&global.data_dir);
    let value = admin::call(&dir.admin_socket(), &AdminRequest::Status)?;
    let report: StatusReport =
        serde_json::from_value(value).context("reading the daemon's status")?;
    if json {
        return print_json(&report);
    }
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
        println!(
            "  {:<41}  {:<18}  {:<10}  {:<9}  {:<16}  {:>8}  {:>8}",
            "PEER", "NAME", "ROLE", "CONNECTED", "LAST SYNC", "IN SCOPE", "BEHIND"
        );
        for p in &report.sync {
            println!(
                "  {:<41}  {:<18}  {:<10}  {:<9}  {:<16}  {:>8}  {:>8}",
                p.node_id,
                p.name.as_deref().unwrap_or("-"),
                p.role,
                if p.connected { "yes" } else { "no" },
                super::when(p.last_sync),
                p.in_scope,
                p.not_up_to_date
            );
        }
    }
    for r in &report.retractions {
        println!(
            "  retracted {}: confirmed by {} peer(s)",
            r.doc_id,
            r.confirmed_by.len()
        );
    }
    Ok(())
}

pub(crate) fn id(global: &Global, json: bool) -> Result<()> {
    let dir = DataDir::new(&global.data_dir);
    let identity = dir.load_identity()?;
    let config = dir.load_config(&[env_overrides()])?;
    // The running daemon knows the port it really bound (the config may say 0).
    let bound = admin::call(&dir.admin_socket(), &AdminRequest::Status)
        .ok()
        .and_then(|v| serde_json::from_value::<StatusReport>(v).ok())
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

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGTERM; stop with Ctrl-C");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
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
