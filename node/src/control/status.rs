//! `status`: what the running daemon is and how it is doing, with each approved
//! peer's progress through our publications and who confirmed our retractions.
//!
//! Only the running daemon can answer: uptime, the bound address and who is
//! connected are live state. Progress is read from plain index rows, never from
//! documents, so a status call stays cheap however many publications there are.

use labnet_protocol::NodeId;

use super::{Control, ControlError};
use crate::api::{DocumentCounts, PeerCounts, PeerSyncStatus, RetractionStatus, StatusReport};
use crate::store::{IndexRow, PeerRecord, PeerState, Store, StoreError};
use crate::trust::{visible_to, Scope};

impl Control {
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
            documents: DocumentCounts {
                private: documents.private,
                publication: documents.publication,
                replica: documents.replica,
            },
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
            // Filled in by the caller, which holds the live view.
            connected: false,
            last_sync: ack.map(|a| a.2),
            in_scope: visible.len(),
            not_up_to_date: visible.iter().filter(|r| r.seq > acked_seq).count(),
        });
    }
    let mut retractions = Vec::new();
    for row in rows.iter().filter(|r| r.retracted) {
        // Confirmations travel back through relays, so they may name nodes we
        // never delivered to; the direct holders we know of are those we did.
        let confirmed = store.retraction_acks(&row.doc_id)?;
        let awaiting = store
            .delivered_to(&row.doc_id)?
            .into_iter()
            .filter(|n| !confirmed.contains(n))
            .map(|n| n.to_string())
            .collect();
        retractions.push(RetractionStatus {
            doc_id: row.doc_id.clone(),
            confirmed_by: confirmed.into_iter().map(|n| n.to_string()).collect(),
            awaiting,
        });
    }
    Ok((out, retractions))
}
