//! `audit`: the disclosure log, which answers "what did peer X get from us, and
//! when?". Every share, update and unshare, and every version sent to a peer.

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
        let lines = self.store.call(move |s| s.disclosures(peer, since)).await?;
        Ok(lines.into_iter().map(DisclosureEntry::from).collect())
    }
}

impl From<Disclosure> for DisclosureEntry {
    fn from(d: Disclosure) -> DisclosureEntry {
        DisclosureEntry {
            id: d.id,
            at: d.at,
            action: d.action,
            doc_id: d.doc_id,
            heads: d.heads,
            node_id: d.node_id.map(|n| n.to_string()),
            scope: d.scope,
            settings: d.settings,
        }
    }
}
