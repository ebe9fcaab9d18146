//! What an admin can do to a node, as one set of operations.
//!
//! The same [`Control`] answers whether the request came over the running
//! daemon's admin socket or from the CLI on a stopped node (then it works directly
//! on the store, and the decision takes effect when the daemon starts). Keeping
//! one implementation means the two paths cannot drift apart.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use labnet_config::{Config, Role};
use labnet_protocol::{Contact, NodeId};

use crate::admin::{AdminRequest, AdminResponse};
use crate::share;
use crate::store::{
    DocumentCounts, IndexRow, PeerRecord, PeerState, PendingPeer, Store, StoreError, StoreHandle,
};
use crate::transport::{Transport, TransportError};
use crate::trust::PeerTable;
use crate::trust::{visible_to, Scope};
use labnet_protocol::handshake::{PeerRole, INVITE_SECRET_LEN};
use labnet_protocol::invite::{hash_secret, Invite};
use labnet_protocol::sync::DocId;
use tokio::sync::broadcast;

/// What only a running daemon knows: its live state.
pub trait LiveView: Send + Sync {
    /// Whether a peer is connected right now.
    fn is_connected(&self, node_id: NodeId) -> bool;
    /// The listen address actually bound.
    fn listen_addr(&self) -> SocketAddr;
    /// When the daemon started.
    fn started(&self) -> Instant;
}

/// What `labnet status` shows.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StatusReport {
    /// The node's name.
    pub name: String,
    /// The node's id.
    pub node_id: String,
    /// Partner or subscriber.
    pub role: Role,
    /// The address actually bound (the real port when 0 was configured).
    pub listen: String,
    /// Seconds since the daemon started.
    pub uptime_secs: u64,
    /// Bytes the store takes on disk (database plus WAL).
    pub store_bytes: u64,
    /// Documents held, by kind.
    pub documents: DocumentCounts,
    /// Approved peers, and how many are connected.
    pub peers: PeerCounts,
    /// Per approved peer: connection and sync progress.
    pub sync: Vec<PeerSyncStatus>,
    /// Our retracted publications and which peers confirmed them.
    pub retractions: Vec<RetractionStatus>,
    /// The daemon's process id.
    pub pid: u32,
    /// The labnet version running.
    pub version: String,
}

/// How far one peer is with our publications.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PeerSyncStatus {
    /// The peer.
    pub node_id: String,
    /// Its name, if known.
    pub name: Option<String>,
    /// partner or subscriber.
    pub role: Role,
    /// Connected now.
    pub connected: bool,
    /// When it last acknowledged our index (unix seconds).
    pub last_sync: Option<i64>,
    /// Our publications its scope lets it see.
    pub in_scope: usize,
    /// Of those, how many changed after what it acknowledged.
    pub not_up_to_date: usize,
}

/// A retracted publication and who confirmed the retraction.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RetractionStatus {
    /// The publication.
    pub doc_id: String,
    /// Peers that confirmed they deleted it.
    pub confirmed_by: Vec<String>,
}

/// The longest an invite may stay valid.
pub const INVITE_EXPIRY_MAX_SECS: u64 = 90 * 86_400;

/// The most nodes one invite may admit.
pub const INVITE_USES_MAX: u32 = 1000;

/// What `invite create` returns.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct InviteCreated {
    /// The invite's id (for list and revoke).
    pub invite_id: String,
    /// The token to send to the other node's admin.
    pub token: String,
    /// What the joiner becomes.
    pub role: Role,
    /// When it expires (unix seconds).
    pub expires_at: i64,
    /// How many nodes may join with it.
    pub uses: i64,
}

/// What `invite accept` returns.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct InviteAccepted {
    /// The inviter.
    pub node_id: String,
    /// Its name.
    pub name: String,
    /// The address that worked.
    pub address: String,
}

/// Peer counts for `status`.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct PeerCounts {
    /// Approved peers.
    pub approved: usize,
    /// Of those, connected now.
    pub connected: usize,
    /// Pending requests.
    pub pending: usize,
}

/// A peer as `labnet peers list` shows it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PeerListEntry {
    /// The peer's id.
    pub node_id: String,
    /// The name it gave, if known.
    pub name: Option<String>,
    /// partner or subscriber.
    pub role: Role,
    /// approved or revoked.
    pub state: String,
    /// Where it is dialed, if known.
    pub address: Option<String>,
    /// Connected now (`None` when the daemon is not running).
    pub connected: Option<bool>,
    /// Last completed handshake (unix seconds).
    pub last_seen: Option<i64>,
    /// When the current state was decided (unix seconds).
    pub decided_at: i64,
    /// By which command or event.
    pub decided_by: String,
}

/// A pending request as `labnet peers pending` shows it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PendingEntry {
    /// The node's id.
    pub node_id: String,
    /// The name it gave (unverified).
    pub name: String,
    /// The address it came from.
    pub address: String,
    /// First attempt (unix seconds).
    pub first_seen: i64,
    /// Latest attempt (unix seconds).
    pub last_seen: i64,
    /// Attempts so far.
    pub attempts: i64,
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
    /// Importing, anonymizing or publishing failed.
    #[error("{0}")]
    Share(#[from] share::ShareError),
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
        f.debug_struct("Control")
            .field("node", &self.node_id)
            .finish_non_exhaustive()
    }
}

impl Control {
    /// Answers one request.
    pub async fn handle(&self, request: AdminRequest) -> AdminResponse {
        match self.dispatch(request).await {
            Ok(value) => AdminResponse {
                ok: true,
                result: Some(value),
                error: None,
            },
            Err(e) => AdminResponse::failure(e.to_string()),
        }
    }

    async fn dispatch(&self, request: AdminRequest) -> Result<serde_json::Value, ControlError> {
        match request {
            AdminRequest::Status => json(&self.status().await?),
            AdminRequest::PeersList => json(&self.peers_list().await?),
            AdminRequest::PeersPending => json(&self.peers_pending().await?),
            AdminRequest::PeersApprove { node_id, role } => {
                let node_id = self.parse_peer(&node_id)?;
                let record = self
                    .peers
                    .approve(
                        node_id,
                        role.unwrap_or(Role::Partner),
                        None,
                        None,
                        "peers approve",
                    )
                    .await?;
                json(&self.entry(record))
            }
            AdminRequest::PeersAdd { contact, role } => {
                let contact: Contact = contact
                    .parse()
                    .map_err(|e| ControlError::BadInput(format!("{e}")))?;
                self.refuse_self(contact.node_id)?;
                let record = self
                    .peers
                    .approve(
                        contact.node_id,
                        role.unwrap_or(Role::Partner),
                        None,
                        Some(contact.address),
                        "peers add",
                    )
                    .await?;
                json(&self.entry(record))
            }
            AdminRequest::InviteCreate {
                role,
                expires_secs,
                uses,
            } => json(&self.invite_create(role, expires_secs, uses).await?),
            AdminRequest::InviteList => json(&self.store.call(|s| s.invites()).await?),
            AdminRequest::InviteRevoke { invite_id } => {
                let id = invite_id.clone();
                if self.store.call(move |s| s.revoke_invite(&id)).await? {
                    json(&serde_json::json!({ "invite_id": invite_id, "revoked": true }))
                } else {
                    Err(ControlError::BadInput(format!(
                        "no active invite with id {invite_id} (see `labnet invite list`)"
                    )))
                }
            }
            AdminRequest::InviteAccept { token } => json(&self.invite_accept(&token).await?),
            AdminRequest::PracticeImport { practices } => {
                let role = self.config.role;
                json(
                    &self
                        .store
                        .call(move |s| share::import_practices(s, role, &practices))
                        .await?,
                )
            }
            AdminRequest::RosterImport { roster } => {
                let role = self.config.role;
                let count = roster.stakeholders.len();
                self.store
                    .call(move |s| share::import_roster(s, role, &roster))
                    .await?;
                json(&serde_json::json!({ "stakeholders": count }))
            }
            AdminRequest::LabImport { lab } => {
                let role = self.config.role;
                let summary = serde_json::json!({ "labs": lab.labs.len(), "experiments": lab.experiments.len() });
                self.store
                    .call(move |s| share::import_lab(s, role, &lab))
                    .await?;
                json(&summary)
            }
            AdminRequest::LabShow => json(&self.store.call(|s| share::load_lab(s)).await?),
            AdminRequest::PracticeList => {
                json(&self.store.call(|s| share::list_practices(s)).await?)
            }
            AdminRequest::PracticeShow { practice_id } => {
                let id = practice_id.clone();
                match self
                    .store
                    .call(move |s| share::load_practice(s, &id))
                    .await?
                {
                    Some(p) => json(&p),
                    None => Err(ControlError::BadInput(format!(
                        "no practice with id {practice_id} (see `labnet practice list`)"
                    ))),
                }
            }
            AdminRequest::Share { practice_id, scope } => {
                let scope = Scope::parse(&scope)
                    .map_err(|e| ControlError::BadInput(format!("--scope: {e}")))?;
                let (role, origin, city, policy) = self.share_context();
                let outcome = self
                    .store
                    .call(move |s| {
                        share::share_practice(s, role, origin, &city, &practice_id, scope, &policy)
                    })
                    .await?;
                self.announce(&outcome.doc_id);
                json(&outcome)
            }
            AdminRequest::SharePreview { practice_id, scope } => {
                let scope = Scope::parse(&scope)
                    .map_err(|e| ControlError::BadInput(format!("--scope: {e}")))?;
                let (_, origin, city, policy) = self.share_context();
                json(
                    &self
                        .store
                        .call(move |s| {
                            share::preview_practice(s, origin, &city, &practice_id, &scope, &policy)
                        })
                        .await?,
                )
            }
            AdminRequest::Unshare { practice_id } => {
                let (role, origin, _, _) = self.share_context();
                let id = practice_id.clone();
                let retracted = self
                    .store
                    .call(move |s| share::unshare_practice(s, role, &id, origin))
                    .await?;
                if !retracted {
                    return Err(ControlError::BadInput(format!(
                        "{practice_id} is not shared (see `labnet audit`)"
                    )));
                }
                if let Ok(doc_id) = share::publication_doc_id(origin, &practice_id) {
                    self.announce(doc_id.as_str());
                }
                json(&serde_json::json!({ "practice_id": practice_id, "retracted": true }))
            }
            AdminRequest::FeedList { city, area, since } => {
                if let Some(a) = &area {
                    if a != "education" && a != "care" {
                        return Err(ControlError::BadInput(format!(
                            "--area '{a}': use education or care"
                        )));
                    }
                }
                let filter = crate::feed::FeedFilter { city, area, since };
                let entries = self.store.call(|s| crate::feed::collect_entries(s)).await?;
                json(&filter.apply(&entries))
            }
            AdminRequest::FeedShow { id } => {
                let entries = self.store.call(|s| crate::feed::collect_entries(s)).await?;
                let found = entries.into_iter().find(|e| {
                    e.id == id
                        || e.id.ends_with(&format!(":{id}"))
                        || e.id.replace("urn:labnet:", "") == id
                });
                match found {
                    Some(e) => json(&e),
                    None => Err(ControlError::BadInput(format!(
                        "no publication {id} in the feed (see `labnet feed list`)"
                    ))),
                }
            }
            AdminRequest::Audit { peer, since } => {
                let peer = peer
                    .map(|p| {
                        p.parse::<NodeId>()
                            .map_err(|e| ControlError::BadInput(format!("--peer '{p}': {e}")))
                    })
                    .transpose()?;
                json(&self.store.call(move |s| s.disclosures(peer, since)).await?)
            }
            AdminRequest::PeersRevoke { node_id } => {
                let node_id = self.parse_peer(&node_id)?;
                match self.peers.revoke(node_id, "peers revoke").await? {
                    Some(record) => json(&self.entry(record)),
                    None => Err(ControlError::BadInput(format!(
                        "{node_id} is neither a peer nor pending: nothing to revoke (see `labnet peers list` and `labnet peers pending`)"
                    ))),
                }
            }
        }
    }

    /// The running daemon's status.
    pub async fn status(&self) -> Result<StatusReport, ControlError> {
        let Some(live) = &self.live else {
            return Err(ControlError::NeedsDaemon("status"));
        };
        let (documents, store_bytes, peers, pending, sync, retractions) = self
            .store
            .call(|s| {
                let peers = s.peers()?;
                let (sync, retractions) = sync_progress(s, &peers)?;
                Ok::<_, StoreError>((
                    s.document_counts()?,
                    s.size_bytes(),
                    peers,
                    s.pending_peers()?.len(),
                    sync,
                    retractions,
                ))
            })
            .await?;
        let approved: Vec<NodeId> = peers
            .iter()
            .filter(|p| p.state == PeerState::Approved)
            .map(|p| p.node_id)
            .collect();
        let sync = sync
            .into_iter()
            .map(|mut p| {
                p.connected = p
                    .node_id
                    .parse()
                    .map(|n| live.is_connected(n))
                    .unwrap_or(false);
                p
            })
            .collect();
        Ok(StatusReport {
            name: self.config.name.clone(),
            node_id: self.node_id.to_string(),
            role: self.config.role,
            listen: live.listen_addr().to_string(),
            uptime_secs: live.started().elapsed().as_secs(),
            store_bytes,
            documents,
            peers: PeerCounts {
                approved: approved.len(),
                connected: approved.iter().filter(|n| live.is_connected(**n)).count(),
                pending,
            },
            sync,
            retractions,
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        })
    }

    async fn invite_create(
        &self,
        role: Role,
        expires_secs: u64,
        uses: u32,
    ) -> Result<InviteCreated, ControlError> {
        if expires_secs == 0 || expires_secs > INVITE_EXPIRY_MAX_SECS {
            return Err(ControlError::BadInput(format!(
                "--expires must be between 1 second and {} days",
                INVITE_EXPIRY_MAX_SECS / 86_400
            )));
        }
        if uses == 0 || uses > INVITE_USES_MAX {
            return Err(ControlError::BadInput(format!(
                "--uses must be between 1 and {INVITE_USES_MAX}"
            )));
        }
        let mut secret = [0u8; INVITE_SECRET_LEN];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret);
        let mut id_bytes = [0u8; 5];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut id_bytes);
        let invite_id = base32::encode(base32::Alphabet::Crockford, &id_bytes).to_lowercase();
        let expires_at = crate::store::unix_now() + expires_secs as i64;
        let hash = hash_secret(&secret).to_vec();
        let id = invite_id.clone();
        let record = self
            .store
            .call(move |s| s.create_invite(&id, &hash, role, expires_at, i64::from(uses)))
            .await?;
        let bound = self.live.as_ref().map(|l| l.listen_addr());
        let host = hostname::get()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "localhost".into());
        let address = self.config.contact_address(&host, bound);
        labnet_protocol::contact::validate_address(&address).map_err(|problem| {
            ControlError::BadInput(format!(
                "this node has no dialable address ({address}: {problem}); start it first, or set node.listen or node.advertise"
            ))
        })?;
        let invite = Invite {
            inviter: self.node_id,
            addresses: vec![address],
            secret,
            role: match role {
                Role::Partner => PeerRole::Partner,
                Role::Subscriber => PeerRole::Subscriber,
            },
            expires_at: expires_at as u64,
        };
        Ok(InviteCreated {
            invite_id,
            token: invite.to_token(),
            role,
            expires_at,
            uses: record.uses_left,
        })
    }

    async fn invite_accept(&self, token: &str) -> Result<InviteAccepted, ControlError> {
        let invite = Invite::parse(token).map_err(|e| ControlError::BadInput(e.to_string()))?;
        if invite.inviter == self.node_id {
            return Err(ControlError::BadInput(
                "this invite was made by this node".into(),
            ));
        }
        if (invite.expires_at as i64) <= crate::store::unix_now() {
            return Err(ControlError::BadInput(
                "the invite has expired; ask for a new one".into(),
            ));
        }
        let Some(transport) = &self.transport else {
            return Err(ControlError::NeedsDaemon("invite accept"));
        };
        let mut last_error = String::from("the invite lists no address");
        for address in &invite.addresses {
            match transport
                .dial(invite.inviter, address, Some(invite.secret))
                .await
            {
                Ok(dialed) => {
                    return Ok(InviteAccepted {
                        node_id: invite.inviter.to_string(),
                        name: dialed.name,
                        address: dialed.address,
                    })
                }
                Err(TransportError::Refused { reason, .. }) => {
                    return Err(ControlError::BadInput(reason))
                }
                Err(e) => last_error = format!("{address}: {e}"),
            }
        }
        Err(ControlError::BadInput(format!(
            "could not reach the inviter: {last_error}"
        )))
    }

    fn share_context(&self) -> (Role, NodeId, String, share::AnonymizationPolicy) {
        (
            self.config.role,
            self.node_id,
            self.config.name.clone(),
            share::AnonymizationPolicy {
                min_count: self.config.min_count,
            },
        )
    }

    /// Tells connected peers' sessions that one of our publications changed.
    fn announce(&self, doc_id: &str) {
        if let (Some(changes), Ok(doc_id)) = (&self.local_changes, DocId::new(doc_id)) {
            // No session listening is fine: peers catch up when they connect.
            let _ = changes.send(doc_id);
        }
    }

    fn parse_peer(&self, typed: &str) -> Result<NodeId, ControlError> {
        let node_id: NodeId = typed
            .parse()
            .map_err(|e| ControlError::BadInput(format!("'{typed}': {e}")))?;
        self.refuse_self(node_id)?;
        Ok(node_id)
    }

    fn refuse_self(&self, node_id: NodeId) -> Result<(), ControlError> {
        if node_id == self.node_id {
            return Err(ControlError::BadInput(
                "that is this node's own NodeId".into(),
            ));
        }
        Ok(())
    }

    /// Approved and revoked peers, with live connection state when known.
    pub async fn peers_list(&self) -> Result<Vec<PeerListEntry>, ControlError> {
        Ok(self
            .peers
            .list()
            .await?
            .into_iter()
            .map(|r| self.entry(r))
            .collect())
    }

    /// Pending requests, newest first.
    pub async fn peers_pending(&self) -> Result<Vec<PendingEntry>, ControlError> {
        Ok(self
            .peers
            .pending()
            .await?
            .into_iter()
            .map(pending_entry)
            .collect())
    }

    fn entry(&self, r: PeerRecord) -> PeerListEntry {
        PeerListEntry {
            node_id: r.node_id.to_string(),
            name: r.name,
            role: r.role,
            state: match r.state {
                PeerState::Approved => "approved".into(),
                PeerState::Revoked => "revoked".into(),
            },
            address: r.address,
            connected: self.live.as_ref().map(|l| l.is_connected(r.node_id)),
            last_seen: r.last_seen,
            decided_at: r.decided_at,
            decided_by: r.decided_by,
        }
    }
}

fn pending_entry(p: PendingPeer) -> PendingEntry {
    PendingEntry {
        node_id: p.node_id.to_string(),
        name: p.name,
        address: p.address,
        first_seen: p.first_seen,
        last_seen: p.last_seen,
        attempts: p.attempts,
    }
}

/// Each approved peer's progress through our publication index, and who
/// confirmed our retractions. Reads plain index rows, never documents.
fn sync_progress(
    store: &Store,
    peers: &[PeerRecord],
) -> Result<(Vec<PeerSyncStatus>, Vec<RetractionStatus>), StoreError> {
    let rows = store.publication_rows()?;
    let epoch = store.index_epoch()?;
    let scopes: Vec<(Option<Scope>, &IndexRow)> = rows
        .iter()
        .map(|r| (Scope::parse(&r.scope).ok(), r))
        .collect();
    let mut out = Vec::new();
    for peer in peers.iter().filter(|p| p.state == PeerState::Approved) {
        let ack = store.peer_ack(peer.node_id)?;
        // An ack of another epoch says nothing about the current numbering.
        let acked_seq = ack.filter(|a| a.0 == epoch).map(|a| a.1).unwrap_or(0);
        let visible: Vec<&IndexRow> = scopes
            .iter()
            .filter(|(scope, row)| {
                !row.retracted
                    && scope
                        .as_ref()
                        .is_some_and(|s| visible_to(s, peer.node_id, peer.role))
            })
            .map(|(_, row)| *row)
            .collect();
        out.push(PeerSyncStatus {
            node_id: peer.node_id.to_string(),
            name: peer.name.clone(),
            role: peer.role,
            connected: false,
            last_sync: ack.map(|a| a.2),
            in_scope: visible.len(),
            not_up_to_date: visible.iter().filter(|r| r.seq > acked_seq).count(),
        });
    }
    let mut retractions = Vec::new();
    for row in rows.iter().filter(|r| r.retracted) {
        let confirmed_by = store
            .retraction_acks(&row.doc_id)?
            .into_iter()
            .map(|n| n.to_string())
            .collect();
        retractions.push(RetractionStatus {
            doc_id: row.doc_id.clone(),
            confirmed_by,
        });
    }
    Ok((out, retractions))
}

fn json(value: &impl serde::Serialize) -> Result<serde_json::Value, ControlError> {
    serde_json::to_value(value)
        .map_err(|e| ControlError::BadInput(format!("encoding the answer: {e}")))
}
