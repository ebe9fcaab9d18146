//! The admin socket: how the `labnet` CLI talks to a running daemon.
//!
//! A Unix socket in the data directory (`admin.sock`, mode 0600), so only the
//! account that runs the node can administer it; there is no network admin API to
//! secure. Each connection carries one request and one response, each a single
//! line of JSON:
//!
//! ```text
//! -> {"cmd":"status"}
//! <- {"ok":true,"result":{...}}      or      {"ok":false,"error":"one-line reason"}
//! ```
//!
//! Lines are bounded ([`ADMIN_LINE_MAX`]) and reads time out, so a stuck or
//! hostile local client cannot hold the daemon. The result is untyped JSON on the
//! wire; each CLI command deserializes it into the type its request returns.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use labnet_config::Role;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

/// The longest request or response line, in bytes.
pub const ADMIN_LINE_MAX: usize = 16 * 1024 * 1024;

/// How long either side waits for the other's line.
pub const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

/// A request from the CLI to the daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum AdminRequest {
    /// What the node is and how it is doing.
    Status,
    /// Approved and revoked peers.
    PeersList,
    /// Nodes that knocked without being approved.
    PeersPending,
    /// Approve a node (normally a pending one).
    PeersApprove {
        /// The node, as typed by the admin (parsed by the daemon).
        node_id: String,
        /// The role to give it; partner when absent.
        role: Option<Role>,
    },
    /// Approve a node ahead of time from its contact string, and dial it.
    PeersAdd {
        /// `labnet://NODEID@HOST:PORT`.
        contact: String,
        /// The role to give it; partner when absent.
        role: Option<Role>,
    },
    /// Revoke a peer: close its connection and refuse it from now on.
    PeersRevoke {
        /// The node, as typed by the admin.
        node_id: String,
    },
    /// Create an invite; returns the token to send.
    InviteCreate {
        /// The role the joiner gets.
        role: Role,
        /// How long the invite stays valid, in seconds.
        expires_secs: u64,
        /// How many nodes may join with it.
        uses: u32,
    },
    /// This node's invites.
    InviteList,
    /// Revoke an invite by id.
    InviteRevoke {
        /// The invite's id, from `invite list`.
        invite_id: String,
    },
    /// Join another node with its invite token.
    InviteAccept {
        /// The token, as pasted.
        token: String,
    },
    /// Import (create or update) practices, already parsed and validated by the CLI.
    PracticeImport {
        /// The practices.
        practices: Vec<crate::lab::Practice>,
    },
    /// Import the stakeholder roster (replaces the stored roster).
    RosterImport {
        /// The roster.
        roster: crate::lab::Roster,
    },
    /// Store the city's lab record (profile, Policy Labs, micro-experiments).
    LabImport {
        /// The record.
        lab: crate::lab::CityLab,
    },
    /// The city's lab record.
    LabShow,
    /// The practices held here.
    PracticeList,
    /// One practice, with every field (private ones too: this is the city's own view).
    PracticeShow {
        /// The practice's id.
        practice_id: String,
    },
    /// Publish a practice's anonymized projection to a scope.
    Share {
        /// The practice's id.
        practice_id: String,
        /// `partners`, `public`, or NodeIds separated by commas.
        scope: String,
    },
    /// Show exactly what a peer would receive, without publishing.
    SharePreview {
        /// The practice's id.
        practice_id: String,
        /// The scope to preview for.
        scope: String,
    },
    /// Retract a practice's publication.
    Unshare {
        /// The practice's id.
        practice_id: String,
    },
    /// The publications this node can show (its own and those received).
    FeedList {
        /// Only this city.
        city: Option<String>,
        /// Only this area: education or care.
        area: Option<String>,
        /// Only entries changed from this time on (unix seconds).
        since: Option<i64>,
    },
    /// One feed entry, by its id, publication id or practice id.
    FeedShow {
        /// The id.
        id: String,
    },
    /// The disclosure log: what left this node, to whom, when.
    Audit {
        /// Only what was sent to this peer (as typed).
        peer: Option<String>,
        /// Only from this time on (unix seconds).
        since: Option<i64>,
    },
}

/// The daemon's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdminResponse {
    /// Whether the request succeeded.
    pub ok: bool,
    /// The request's result, when it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    /// A one-line reason, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl AdminResponse {
    /// A successful answer carrying `result`.
    pub fn success(result: impl Serialize) -> AdminResponse {
        match serde_json::to_value(result) {
            Ok(v) => AdminResponse {
                ok: true,
                result: Some(v),
                error: None,
            },
            Err(e) => AdminResponse::failure(format!("could not encode the answer: {e}")),
        }
    }

    /// A refusal with a one-line reason.
    pub fn failure(reason: impl Into<String>) -> AdminResponse {
        AdminResponse {
            ok: false,
            result: None,
            error: Some(reason.into()),
        }
    }
}

/// Why an admin request did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Nobody listens on the socket.
    #[error("the labnet daemon is not running for {data_dir} (start it with `labnet run`)")]
    NotRunning {
        /// The data directory asked about.
        data_dir: PathBuf,
    },
    /// Talking to the socket failed.
    #[error("admin socket {path}: {source}")]
    Io {
        /// The socket.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The daemon's answer was not understood.
    #[error("the daemon's answer could not be read: {0}")]
    Protocol(String),
    /// The daemon refused the request.
    #[error("{0}")]
    Refused(String),
}

/// Whether a request can be carried out on a stopped node, directly on its
/// store. Decisions about peers can (they take effect when the daemon starts);
/// requests about live state cannot.
pub fn works_offline(request: &AdminRequest) -> bool {
    match request {
        AdminRequest::Status | AdminRequest::InviteAccept { .. } => false,
        AdminRequest::PeersAdd { .. }
        | AdminRequest::PeersList
        | AdminRequest::PeersPending
        | AdminRequest::PeersApprove { .. }
        | AdminRequest::PeersRevoke { .. }
        | AdminRequest::Audit { .. }
        | AdminRequest::InviteCreate { .. }
        | AdminRequest::InviteList
        | AdminRequest::InviteRevoke { .. }
        | AdminRequest::PracticeImport { .. }
        | AdminRequest::RosterImport { .. }
        | AdminRequest::PracticeList
        | AdminRequest::LabImport { .. }
        | AdminRequest::LabShow
        | AdminRequest::PracticeShow { .. }
        | AdminRequest::Share { .. }
        | AdminRequest::SharePreview { .. }
        | AdminRequest::Unshare { .. }
        | AdminRequest::FeedList { .. }
        | AdminRequest::FeedShow { .. } => true,
    }
}

/// Sends one request to the daemon behind `socket` and waits for its result.
///
/// Blocking on purpose: the CLI makes one call and exits, with no runtime.
pub fn call(socket: &Path, request: &AdminRequest) -> Result<serde_json::Value, AdminError> {
    let data_dir = socket.parent().map(Path::to_path_buf).unwrap_or_default();
    let io = |source| AdminError::Io {
        path: socket.to_path_buf(),
        source,
    };
    let mut stream = match StdUnixStream::connect(socket) {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Err(AdminError::NotRunning { data_dir });
        }
        Err(e) => return Err(io(e)),
    };
    stream.set_read_timeout(Some(ADMIN_TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(ADMIN_TIMEOUT)).map_err(io)?;
    let mut line = serde_json::to_vec(request).map_err(|e| AdminError::Protocol(e.to_string()))?;
    line.push(b'\n');
    stream.write_all(&line).map_err(io)?;
    let mut answer = Vec::new();
    BufReader::new(stream)
        .take(ADMIN_LINE_MAX as u64 + 1)
        .read_until(b'\n', &mut answer)
        .map_err(io)?;
    if answer.len() > ADMIN_LINE_MAX {
        return Err(AdminError::Protocol("answer too long".into()));
    }
    let response: AdminResponse =
        serde_json::from_slice(&answer).map_err(|e| AdminError::Protocol(e.to_string()))?;
    match (response.ok, response.result, response.error) {
        (true, result, _) => Ok(result.unwrap_or(serde_json::Value::Null)),
        (false, _, Some(reason)) => Err(AdminError::Refused(reason)),
        (false, _, None) => Err(AdminError::Refused(
            "the daemon refused without a reason".into(),
        )),
    }
}

/// Binds the admin socket at `path` with mode 0600.
///
/// The caller must hold the instance lock: a socket file left by a daemon that
/// died is then known to be stale and is replaced.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(path)?;
    // The data directory is 0700 already, so there is no window in which another
    // account could reach the socket before this tightens it.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Reads one request from a connection and writes the handler's answer.
pub async fn serve_connection<H, F>(stream: UnixStream, handler: H)
where
    H: FnOnce(AdminRequest) -> F,
    F: std::future::Future<Output = AdminResponse>,
{
    let (read, mut write) = stream.into_split();
    let mut reader = tokio::io::BufReader::new(read.take(ADMIN_LINE_MAX as u64 + 1));
    let mut line = Vec::new();
    let response = match tokio::time::timeout(ADMIN_TIMEOUT, reader.read_until(b'\n', &mut line))
        .await
    {
        Err(_) => AdminResponse::failure("timed out waiting for the request"),
        Ok(Err(e)) => AdminResponse::failure(format!("reading the request: {e}")),
        Ok(Ok(_)) if line.len() > ADMIN_LINE_MAX => AdminResponse::failure("request too long"),
        Ok(Ok(_)) => match serde_json::from_slice::<AdminRequest>(&line) {
            Ok(request) => handler(request).await,
            Err(e) => AdminResponse::failure(format!("not a request this daemon understands: {e}")),
        },
    };
    let mut out = serde_json::to_vec(&response).unwrap_or_else(|_| b"{\"ok\":false}".to_vec());
    out.push(b'\n');
    let _ = tokio::time::timeout(ADMIN_TIMEOUT, write.write_all(&out)).await;
}
