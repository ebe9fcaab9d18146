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
//! hostile local client cannot hold the daemon. This module is only the
//! transport (bind, call, framing): what the lines say, the requests and their
//! typed replies, is in [`crate::api`]; what answers them is [`crate::control`].

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

use crate::api::{AdminRequest, AdminResponse};

/// The longest request or response line, in bytes.
pub const ADMIN_LINE_MAX: usize = 16 * 1024 * 1024;

/// How long either side waits for the other's line.
pub const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

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
    response.into_result().map_err(AdminError::Refused)
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
