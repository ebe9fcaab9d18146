//! The command line, as clap parses it.
//!
//! Stage one of two (as in ripgrep): these types hold what was typed; the
//! commands validate and derive (config overrides, NodeIds, durations) from them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Declares the `Args` of commands that print a result: their own fields,
/// then `--json` ([`JsonFlag`], as `output`), so that every such command
/// takes the flag the same way and lists it last in its `--help`.
macro_rules! printing_args {
    ($(
        $name:ident {
            $($(#[$field_meta:meta])* $field:ident: $ty:ty,)*
        }
    )*) => {$(
        #[derive(Debug, Args)]
        pub(crate) struct $name {
            $($(#[$field_meta])* pub(crate) $field: $ty,)*
            #[command(flatten)]
            pub(crate) output: JsonFlag,
        }
    )*};
}

/// labnet: exchange what works in migrant integration between partner cities.
///
/// Each city runs a node (`labnet run`) that keeps its Policy Lab data and shares
/// anonymized practices with the peer cities its admin approves.
#[derive(Debug, Parser)]
#[command(name = "labnet", version, propagate_version = true)]
#[command(after_help = "Examples:\n  labnet init --name Modena\n  labnet run\n  labnet status")]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Flags every command takes.
#[derive(Debug, Args)]
pub(crate) struct Global {
    /// The node's data directory.
    #[arg(
        long,
        global = true,
        env = "LABNET_DATA_DIR",
        default_value = "./labnet-data"
    )]
    pub(crate) data_dir: PathBuf,
    /// Log format: human or json (default: the config's log.format, else human).
    #[arg(long, global = true, value_name = "FORMAT")]
    pub(crate) log_format: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create a new node: config, key pair and certificate, empty store.
    #[command(
        after_help = "Example:\n  labnet init --name Modena --listen 0.0.0.0:7447\n  labnet --data-dir /srv/labnet init --name \"ISRG\" --role subscriber"
    )]
    Init(InitArgs),
    /// Run the node daemon in the foreground (creates a node first if there is none).
    #[command(
        after_help = "Example:\n  labnet run\n  RUST_LOG=debug labnet run --listen 0.0.0.0:7447\n\nStops cleanly on Ctrl-C (SIGINT) or SIGTERM."
    )]
    Run(RunArgs),
    /// Show what the running node is and how it is doing.
    #[command(
        after_help = "Example:\n  labnet status\n  labnet status --json\n\nExits with 3 when the daemon is not running."
    )]
    Status(JsonFlag),
    /// Print this node's NodeId and the contact string other cities use to add it.
    #[command(after_help = "Example:\n  labnet id\n  labnet id --json")]
    Id(JsonFlag),
    /// Print a login link for the running node's web console (works once, for 15 minutes).
    #[command(
        after_help = "Example:\n  labnet console\n\nFrom another machine, forward the port first:\n  ssh -L 7448:127.0.0.1:7448 lab.example.org\nthen open the link there. Exits with 3 when the daemon is not running."
    )]
    Console(JsonFlag),
    /// Decide who this node talks to: list, approve, add and revoke peers.
    #[command(subcommand)]
    Peers(PeersCommand),
    /// Invite another node: create, list, revoke invites, or accept one.
    #[command(subcommand)]
    Invite(InviteCommand),
    /// The city's practices: import, list, show, edit.
    #[command(subcommand)]
    Practice(PracticeCommand),
    /// The city's Policy Lab record: profile, labs with sessions, micro-experiments (private).
    #[command(subcommand)]
    Lab(LabCommand),
    /// The stakeholder roster (private: it never leaves the node).
    #[command(subcommand)]
    Stakeholder(StakeholderCommand),
    /// Publish a practice's anonymized projection, or preview exactly what would leave.
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    #[command(
        after_help = "Examples:\n  labnet share preview fuenlabrada-milma --scope partners\n  labnet share fuenlabrada-milma --scope partners\n  labnet share modena-mediation --scope public\n  labnet share vienna-care --scope 1JGNN-EZ9WW-2BKE4-C7THM-CF8TA-6QT3V-K9JMQ"
    )]
    Share(ShareArgs),
    /// Retract a practice's publication from every peer that has it.
    #[command(after_help = "Example:\n  labnet unshare fuenlabrada-milma")]
    Unshare(UnshareArgs),
    /// Run a whole network on this machine: cities, a subscriber, invites, shares.
    #[command(
        after_help = "Example:\n  labnet demo\n  labnet demo --cities 3 --keep /tmp/labnet-demo"
    )]
    Demo(DemoArgs),
    /// What this node can show of the network's practices, and exports for other tools.
    #[command(subcommand)]
    Feed(FeedCommand),
    /// What left this node: every share, update, unshare and version sent to a peer.
    #[command(
        after_help = "Example:\n  labnet audit\n  labnet audit --peer 1JGNN-EZ9WW-2BKE4-C7THM-CF8TA-6QT3V-K9JMQ --since 2026-01-01 --json"
    )]
    Audit(AuditArgs),
}

#[derive(Debug, Subcommand)]
pub(crate) enum InviteCommand {
    /// Make an invite: one line to send to the other node's admin.
    #[command(
        after_help = "Example:\n  labnet invite create\n  labnet invite create --role subscriber --expires 7d --uses 3"
    )]
    Create(InviteCreateArgs),
    /// This node's invites: id, role, expiry, uses left.
    #[command(after_help = "Example:\n  labnet invite list --json")]
    List(JsonFlag),
    /// Revoke an invite so nobody can join with it any more.
    #[command(after_help = "Example:\n  labnet invite revoke 7k2m9q4x")]
    Revoke(InviteRevokeArgs),
    /// Join the node that sent you an invite (the daemon must be running).
    #[command(
        after_help = "The output says what the inviter is recorded as here: a subscriber's invite makes it a subscriber (public publications only).\n\nExample:\n  labnet invite accept labnet-invite:2:..."
    )]
    Accept(InviteAcceptArgs),
}

printing_args! {
    InviteCreateArgs {
        /// What the joiner becomes: partner (a city; only a partner node can make
        /// these) or subscriber (read-only).
        #[arg(long, default_value = "partner")]
        role: String,
        /// How long the invite stays valid (e.g. 30m, 24h, 7d).
        #[arg(long, default_value = "24h")]
        expires: String,
        /// How many nodes may join with it.
        #[arg(long, default_value_t = 1)]
        uses: u32,
    }
}

#[derive(Debug, Args)]
pub(crate) struct InviteRevokeArgs {
    /// The invite's id, from `labnet invite list`.
    pub(crate) invite_id: String,
}

printing_args! {
    InviteAcceptArgs {
        /// The invite token, as received.
        token: String,
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum PracticeCommand {
    /// Import practices from a .json or .csv file (see FORMAT.md); existing ids are updated.
    #[command(
        after_help = "Example:\n  labnet practice import practices.json\n  labnet practice import modena.csv --json"
    )]
    Import(ImportArgs),
    /// The practices held here.
    #[command(after_help = "Example:\n  labnet practice list --json")]
    List(JsonFlag),
    /// One practice with every field (private fields included: this is the city's own view).
    #[command(after_help = "Example:\n  labnet practice show fuenlabrada-milma")]
    Show(PracticeIdArgs),
    /// Edit a practice as JSON in $EDITOR; it is validated before it is saved.
    #[command(after_help = "Example:\n  EDITOR=nano labnet practice edit fuenlabrada-milma")]
    Edit(PracticeIdArgs),
}

#[derive(Debug, Subcommand)]
pub(crate) enum LabCommand {
    /// Store the lab record from a JSON file: {"profile": {...}, "labs": [...], "experiments": [...]}.
    #[command(after_help = "Example:\n  labnet lab import livadia-lab.json")]
    Import(ImportArgs),
    /// Print the lab record as JSON.
    #[command(after_help = "Example:\n  labnet lab show")]
    Show,
}

#[derive(Debug, Subcommand)]
pub(crate) enum StakeholderCommand {
    /// Import the stakeholder roster (LSRG) from a .json or .csv file; replaces the stored roster.
    #[command(after_help = "Example:\n  labnet stakeholder import roster.json")]
    Import(ImportArgs),
}

printing_args! {
    ImportArgs {
        /// The file: .json or .csv.
        file: PathBuf,
    }

    PracticeIdArgs {
        /// The practice's id.
        practice_id: String,
    }

    ShareArgs {
        #[command(subcommand)]
        command: Option<ShareCommand>,
        /// The practice to publish.
        #[arg(required = true)]
        practice_id: Option<String>,
        /// Who receives it: partners, public, or NodeIds separated by commas.
        #[arg(long, required = true)]
        scope: Option<String>,
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum ShareCommand {
    /// Print exactly what a peer would receive, and what was removed or suppressed and why.
    #[command(after_help = "Example:\n  labnet share preview fuenlabrada-milma --scope partners")]
    Preview(PreviewArgs),
}

#[derive(Debug, Args)]
pub(crate) struct PreviewArgs {
    /// The practice.
    pub(crate) practice_id: String,
    /// Who would receive it (default partners).
    #[arg(long, default_value = "partners")]
    pub(crate) scope: String,
}

#[derive(Debug, Args)]
pub(crate) struct UnshareArgs {
    /// The practice whose publication is retracted.
    pub(crate) practice_id: String,
}

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// How many city nodes (the first 11 are the partner cities of the report).
    #[arg(long, default_value_t = 12)]
    pub(crate) cities: usize,
    /// Keep the nodes' data directories here instead of deleting them.
    #[arg(long, value_name = "DIR")]
    pub(crate) keep: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum FeedCommand {
    /// Publications held here (our own and those received), newest first.
    #[command(
        after_help = "Example:\n  labnet feed list --city Modena --area education --since 2026-01-01"
    )]
    List(FeedListArgs),
    /// One publication as received.
    #[command(after_help = "Example:\n  labnet feed show fuenlabrada-milma --json")]
    Show(FeedShowArgs),
    /// Export as Atom, JSON Feed or CSV, with the same filters.
    #[command(
        after_help = "Example:\n  labnet feed export --format atom --out practices.xml\n  labnet feed export --format csv --area care"
    )]
    Export(FeedExportArgs),
    /// Check an exported feed offline: each entry's signature, origin and content.
    #[command(
        after_help = "Works on the file alone (no node needed). Prints one line per entry:\n  ok   <id>  origin <NodeId>  <publisher>\n  FAIL <id>: <reason>\nand exits 1 if any entry fails.\n\nExample:\n  labnet feed verify practices.xml\n  labnet feed verify feed.json --origin Fuenlabrada=1JGNN-EZ9WW-2BKE4-C7THM-CF8TA-6QT3V-K9JMQ"
    )]
    Verify(FeedVerifyArgs),
}

#[derive(Debug, Args, Clone)]
pub(crate) struct FeedFilterArgs {
    /// Only this publisher (the city that published, not the practice's place).
    #[arg(long)]
    pub(crate) city: Option<String>,
    /// Only this area: education or care.
    #[arg(long)]
    pub(crate) area: Option<String>,
    /// Only publications changed from this date (YYYY-MM-DD) on.
    #[arg(long, value_name = "DATE")]
    pub(crate) since: Option<String>,
}

printing_args! {
    FeedListArgs {
        #[command(flatten)]
        filter: FeedFilterArgs,
    }

    FeedShowArgs {
        /// The entry's id, publication id, or practice id.
        id: String,
    }
}

#[derive(Debug, Args)]
pub(crate) struct FeedExportArgs {
    #[command(flatten)]
    pub(crate) filter: FeedFilterArgs,
    /// atom, jsonfeed or csv.
    #[arg(long)]
    pub(crate) format: String,
    /// Write to this file instead of standard output.
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct FeedVerifyArgs {
    /// The export to check: Atom or JSON Feed (detected).
    pub(crate) file: PathBuf,
    /// Entries whose publisher is NAME must come from NODEID (repeatable).
    #[arg(long = "origin", value_name = "NAME=NODEID")]
    pub(crate) origins: Vec<labnet_node::feed::verify::OriginPin>,
}

printing_args! {
    AuditArgs {
        /// Only what was sent to this peer.
        #[arg(long, value_name = "NODEID")]
        peer: Option<String>,
        /// Only from this date (YYYY-MM-DD, UTC) or time (RFC 3339) on.
        #[arg(long, value_name = "DATE")]
        since: Option<String>,
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum PeersCommand {
    /// Approved and revoked peers, with role, address, connection and last contact.
    #[command(after_help = "Example:\n  labnet peers list\n  labnet peers list --json")]
    List(JsonFlag),
    /// Nodes that tried to connect without being approved.
    #[command(after_help = "Example:\n  labnet peers pending")]
    Pending(JsonFlag),
    /// Approve a node (normally one from `peers pending`).
    #[command(
        after_help = "Example:\n  labnet peers approve 1JGNN-EZ9WW-2BKE4-C7THM-CF8TA-6QT3V-K9JMQ\n  labnet peers approve 1jgnnez9ww2bke4c7thmcf8ta6qt3vk9jmq --role subscriber"
    )]
    Approve(ApproveArgs),
    /// Approve a node ahead of time from its contact string, and dial it.
    #[command(
        after_help = "Example:\n  labnet peers add labnet://1JGNN-EZ9WW-2BKE4-C7THM-CF8TA-6QT3V-K9JMQ@modena.example.org:7447"
    )]
    Add(AddArgs),
    /// Revoke a peer: its connection is closed and it is refused from now on.
    #[command(
        after_help = "Example:\n  labnet peers revoke 1JGNN-EZ9WW-2BKE4-C7THM-CF8TA-6QT3V-K9JMQ"
    )]
    Revoke(RevokeArgs),
}

printing_args! {
    ApproveArgs {
        /// The node's NodeId (case and dashes do not matter).
        node_id: String,
        /// partner (a city) or subscriber (read-only, public publications only).
        /// Default: the role the node claimed when it connected (partner if it
        /// never did).
        #[arg(long)]
        role: Option<String>,
    }

    AddArgs {
        /// The contact string printed by `labnet id` on the other node.
        contact: String,
        /// partner (a city) or subscriber (read-only, public publications only).
        #[arg(long, default_value = "partner")]
        role: String,
    }

    RevokeArgs {
        /// The peer's NodeId.
        node_id: String,
    }

    InitArgs {
        /// The city's (or network's) name, shown to peers.
        #[arg(long)]
        name: String,
        /// UDP address to listen on for peers.
        #[arg(long, default_value = labnet_config::DEFAULT_LISTEN)]
        listen: String,
        /// partner (a city) or subscriber (an international network, read-only).
        #[arg(long, default_value = "partner")]
        role: String,
    }
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Override node.listen for this run.
    #[arg(long)]
    pub(crate) listen: Option<String>,
    /// Override node.name for this run.
    #[arg(long)]
    pub(crate) name: Option<String>,
}

/// `--json`: the flag of every command that prints a result; flattened into
/// the commands that take other arguments too.
#[derive(Debug, Args)]
pub(crate) struct JsonFlag {
    /// Print the result as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}
