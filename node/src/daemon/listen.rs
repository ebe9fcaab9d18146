//! What the daemon takes hold of at start: the instance lock, the UDP listen
//! socket, the console's and feed URLs' TCP listeners, and the admin socket's
//! accept loop.

use std::fs::File;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;

use tokio::sync::watch;
use tracing::{info_span, warn, Instrument};

use crate::admin;
use crate::console;
use crate::data_dir::{DataDir, LockAttempt};

use super::{DaemonError, NodeContext};

pub(super) async fn serve_admin(
    context: Arc<NodeContext>,
    listener: tokio::net::UnixListener,
    mut shutdown: watch::Receiver<bool>,
) {
    let span = info_span!("admin", node = %context.node_id().short());
    async move {
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        let context = Arc::clone(&context);
                        tokio::spawn(async move {
                            admin::serve_connection(stream, |req| async move { context.control.handle(req).await }).await;
                        });
                    }
                    Err(e) => {
                        warn!(error = %e, "admin accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                },
            }
        }
    }
    .instrument(span)
    .await
}

/// Takes the instance lock (`daemon.lock`) for the daemon's lifetime.
pub(super) fn acquire_lock(data_dir: &DataDir) -> Result<File, DaemonError> {
    match data_dir.take_lock()? {
        LockAttempt::Taken(file) => Ok(file),
        LockAttempt::Held { holder } => Err(DaemonError::AlreadyRunning {
            dir: data_dir.root().to_path_buf(),
            holder,
        }),
    }
}

pub(super) fn bind_http(
    addr: SocketAddr,
    what: &'static str,
    key: &'static str,
) -> Result<tokio::net::TcpListener, DaemonError> {
    console::bind(addr).map_err(|source| DaemonError::HttpListen {
        what,
        key,
        addr,
        source,
    })
}

pub(super) fn bind_listen(addr: SocketAddr) -> Result<UdpSocket, DaemonError> {
    UdpSocket::bind(addr).map_err(|source| {
        let hint = match source.kind() {
            std::io::ErrorKind::AddrInUse => {
                " (another program uses this port: set node.listen in config.toml, LABNET_LISTEN, or --listen)"
            }
            std::io::ErrorKind::AddrNotAvailable => " (this machine has no such address: check node.listen)",
            std::io::ErrorKind::PermissionDenied => " (ports below 1024 need privileges: use a higher port)",
            _ => "",
        };
        DaemonError::Listen { addr, source, hint }
    })
}
