//! What an admin can do to a node, as one set of operations.
//!
//! The same [`Control`] answers whether the request came over the running
//! daemon's admin socket or from the CLI on a stopped node (then it works directly
//! on the store, and the decision takes effect when the daemon starts). Keeping
//! one implementation means the two paths cannot drift apart.
//!
//! [`Control::handle`] takes an [`AdminRequest`] and routes it to its area; each
//! area is a file with typed operations returning the [`crate::api`] reply types,
//! which a caller in this process (the demo, tests) can also call directly:
//! - `status`: the running daemon's status and each peer's sync progress;
//! - `peers`: listing, approving, adding and revoking peers;
//! - `invites`: creating, listing, revoking and accepting invites;
//! - `practices`: the lab data (import, list, show) and sharing it (share,
//!   preview, unshare);
//! - `feed`: the publications this node can show;
//! - `audit`: the disclosure log;
//! - `console`: login links for the web console.
//!
//! The conversions from store rows to API types live in these files too: the
//! store's rows are not wire types.

mod audit;
mod console;
mod feed;
mod invites;
mod peers;
mod practices;
mod status;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use labnet_config::Config;
use labnet_protocol::sync::DocId;
use labnet_protocol::NodeId;
use tokio::sync::broadcast;

use crate::api::{AdminRequest, AdminResponse};
use crate::feed::FeedFilter;
use crate::lab::storage::LabStoreError;
use crate::share::ShareError;
use crate::store::{StoreError, StoreHandle};
use crate::transport::Transport;
use crate::trust::PeerTable;
pub use invites::{INVITE_EXPIRY_MAX_SECS, INVITE_USES_MAX};

/// What only a running daemon knows: its live state.
pub trait LiveView: Send + Sync {
    /// Whether a peer is connected right now.
    fn is_connected(&self, node_id: NodeId) -> bool;
    /// The listen address actually bound.
    fn listen_addr(&self) -> SocketAddr;
    /// When the daemon started.
    fn started(&self) -> Instant;
    /// A fresh login link for the web console, or `None` when it is off.
    fn console_login_url(&self) -> Option<String> {
        None
    }
}

/// Why an admin operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The admin typed something that is not valid.
    #[error("{0}")]
    BadInput(String),
    /// The operation needs the running daemon.
    #[error("{0} needs the running daemon: start it with `labnet run`")]
    NeedsDaemon(&'static str),
    /// The store failed.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// Reading or writing the lab data failed.
    #[error("{0}")]
    Lab(#[from] LabStoreError),
    /// Anonymizing or publishing failed.
    #[error("{0}")]
    Share(#[from] ShareError),
    /// A bug: a reply could not be encoded as JSON. Nothing the admin typed can
    /// cause it, so it is not [`ControlError::BadInput`].
    #[error("internal error: encoding the answer failed: {0}")]
    Encode(#[source] serde_json::Error),
}

/// The admin operations of one node.
#[derive(Clone)]
pub struct Control {
    /// The node's settings.
    pub config: Config,
    /// The node's id (to refuse approving ourselves).
    pub node_id: NodeId,
    /// The store.
    pub store: StoreHandle,
    /// The peer table.
    pub peers: PeerTable,
    /// Live state, when the daemon runs.
    pub live: Option<Arc<dyn LiveView>>,
    /// The transport, when the daemon runs (dialing invites).
    pub transport: Option<Transport>,
    /// Where to announce changes to our publications, when the daemon runs.
    pub local_changes: Option<broadcast::Sender<DocId>>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        crate::identity::fmt_node_only(f, "Control", "node", &self.node_id)
    }
}

impl Control {
    /// Answers one request.
    pub async fn handle(&self, request: AdminRequest) -> AdminResponse {
        match self.dispatch(request).await {
            Ok(value) => AdminResponse::success(value),
            Err(e) => AdminResponse::failure(e.to_string()),
        }
    }

    /// Routes a request to its area's operation and encodes the typed reply.
    async fn dispatch(&self, request: AdminRequest) -> Result<serde_json::Value, ControlError> {
        use AdminRequest as R;
        match request {
            R::Status => reply(self.status().await),
            R::PeersList => reply(self.peers_list().await),
            R::PeersPending => reply(self.peers_pending().await),
            R::PeersApprove { node_id, role } => reply(self.peers_approve(&node_id, role).await),
            R::PeersAdd { contact, role } => reply(self.peers_add(&contact, role).await),
            R::PeersRevoke { node_id } => reply(self.peers_revoke(&node_id).await),
            R::InviteCreate {
                role,
                expires_secs,
                uses,
            } => reply(self.invite_create(role, expires_secs, uses).await),
            R::InviteList => reply(self.invite_list().await),
            R::InviteRevoke { invite_id } => reply(self.invite_revoke(invite_id).await),
            R::InviteAccept { token } => reply(self.invite_accept(&token).await),
            R::PracticeImport { practices } => reply(self.practice_import(practices).await),
            R::RosterImport { roster } => reply(self.roster_import(roster).await),
            R::LabImport { lab } => reply(self.lab_import(lab).await),
            R::LabShow => reply(self.lab_show().await),
            R::PracticeList => reply(self.practice_list().await),
            R::PracticeShow { practice_id } => reply(self.practice_show(practice_id).await),
            R::Share { practice_id, scope } => reply(self.share(practice_id, &scope).await),
            R::SharePreview { practice_id, scope } => {
                reply(self.share_preview(practice_id, &scope).await)
            }
            R::Unshare { practice_id } => reply(self.unshare(practice_id).await),
            R::FeedList { city, area, since } => {
                reply(self.feed_list(FeedFilter { city, area, since }).await)
            }
            R::FeedShow { id } => reply(self.feed_show(&id).await),
            R::Audit { peer, since } => reply(self.audit(peer.as_deref(), since).await),
            R::ConsoleLogin => reply(self.console_login()),
        }
    }
}

/// An operation's typed reply as the JSON the response carries.
fn reply<T: serde::Serialize>(
    result: Result<T, ControlError>,
) -> Result<serde_json::Value, ControlError> {
    serde_json::to_value(result?).map_err(ControlError::Encode)
}
