//! `audit`: the disclosure log, which answers "what did peer X get from us, and
//! when?". Every share, update and unshare, and every version sent to a peer.

use std::collections::HashMap;

use labnet_protocol::NodeId;

use super::{Control, ControlError};
use crate::api::DisclosureEntry;
use crate::store::Disclosure;

impl Control {
    /// The log's lines, oldest first: only those sent to `peer` (as typed) when
    /// given, only from `since` (unix seconds) on when given.
    pub async fn audit(
        &self,
        peer: Option<&str>,
        since: Option<i64>,
    ) -> Result<Vec<DisclosureEntry>, ControlError> {
        let peer = peer
            .map(|p| {
                p.parse::<NodeId>()
                    .map_err(|e| ControlError::BadInput(format!("--peer '{p}': {e}")))
            })
            .transpose()?;
        let (lines, peers) = self
            .store
            .call(move |s| {
                Ok::<_, crate::store::StoreError>((s.disclosures(peer, since)?, s.peers()?))
            })
            .await?;
        let names: HashMap<NodeId, String> = peers
            .into_iter()
            .filter_map(|p| p.name.map(|name| (p.node_id, name)))
            .collect();
        Ok(lines.into_iter().map(|d| entry(d, &names)).collect())
    }
}

/// A log line as the API shows it, the peer named as the admin approved it.
fn entry(d: Disclosure, names: &HashMap<NodeId, String>) -> DisclosureEntry {
    DisclosureEntry {
        id: d.id,
        at: d.at,
        action: d.action,
        doc_id: d.doc_id,
        heads: d.heads,
        peer_name: d.node_id.and_then(|n| names.get(&n).cloned()),
        node_id: d.node_id.map(|n| n.to_string()),
        scope: d.scope,
        settings: d.settings,
    }
}
