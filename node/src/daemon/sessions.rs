//! Where transport meets sync: each admitted stream becomes a sync session, and
//! a peer's live session ends when the admin changes its role.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use labnet_protocol::close::CloseCode;
use labnet_protocol::NodeId;
use tokio::sync::{broadcast, watch};
use tracing::{info, warn};

use crate::console::metrics::Metrics;
use crate::identity::Identity;
use crate::sync::driver::{run_session, DriverContext, SessionEnd};
use crate::sync::PeerInfo;
use crate::transport::{PeerStream, SessionHandler, SessionOutcome, Transport};
use crate::trust::{PeerChange, PeerDecision};

/// Hands each stream the transport admitted to a sync session: the one place
/// transport and sync meet, so that neither depends on the other.
pub(super) fn session_handler(
    sync: DriverContext,
    identity: Arc<Identity>,
    local_role: labnet_config::Role,
    shutdown: watch::Receiver<bool>,
    metrics: Metrics,
) -> SessionHandler {
    let local = identity.node_id();
    Arc::new(move |stream: PeerStream| {
        let ctx = sync.clone();
        let shutdown = shutdown.clone();
        let metrics = metrics.clone();
        let signer: Arc<dyn labnet_protocol::statement::Signer> = identity.clone();
        Box::pin(async move {
            let info = PeerInfo {
                local,
                local_role,
                peer: stream.peer,
                peer_role: stream.role,
                signer,
            };
            let outcome = match run_session(ctx, info, stream.recv, stream.send, shutdown).await {
                Ok(SessionEnd::Shutdown) => SessionOutcome::Shutdown,
                Ok(SessionEnd::PeerClosed) => SessionOutcome::PeerClosed,
                Ok(SessionEnd::Violation { code, reason }) => {
                    SessionOutcome::Violation { code, reason }
                }
                Err(e) => SessionOutcome::Failed(e.to_string()),
            };
            match &outcome {
                SessionOutcome::Shutdown => metrics.session_ended("shutdown"),
                SessionOutcome::PeerClosed => metrics.session_ended("peer_closed"),
                SessionOutcome::Violation { code, .. } => {
                    metrics.session_ended("violation");
                    metrics.violation(*code);
                }
                SessionOutcome::Failed(_) => metrics.session_ended("failed"),
            }
            outcome
        })
    })
}

/// Ends the live session of every peer whose role the admin changes, until
/// shutdown: the session was started with the old role and serves what that
/// role may see. Redialing (by either side) starts a session in the new role,
/// which walks the whole index and withdraws what the peer may no longer see.
pub(super) async fn end_sessions_on_role_change(
    mut changes: broadcast::Receiver<PeerChange>,
    transport: Transport,
    connected: Arc<RwLock<HashSet<NodeId>>>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let change = tokio::select! {
            change = changes.recv() => change,
            _ = shutdown.changed() => break,
        };
        match change {
            Ok(PeerChange::Approved {
                node_id,
                role,
                previous: PeerDecision::Approved(old),
                ..
            }) if old != role => {
                info!(peer = %node_id.short(), from = %old, to = %role, "role changed: ending the live session");
                transport.disconnect(node_id, CloseCode::Normal);
            }
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                // Which peers changed is lost: end every live session, so
                // each starts again with the role the table holds now.
                warn!(
                    missed,
                    "missed peer table changes: ending every live session"
                );
                let live: Vec<NodeId> = connected
                    .read()
                    .unwrap_or_else(|p| p.into_inner())
                    .iter()
                    .copied()
                    .collect();
                for node in live {
                    transport.disconnect(node, CloseCode::Normal);
                }
            }
            Err(broadcast::error::RecvError::Closed) => break,
        }
    }
}
