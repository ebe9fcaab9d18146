//! The verbose trace of a run: frames and effects, shortly.

use labnet_protocol::sync::DocId;

use crate::sync::{Effect, SavedVersion};

/// A frame, shortly, for the verbose trace.
pub(super) fn describe(bytes: &[u8]) -> String {
    use labnet_protocol::sync::{Inventory, SyncMessage};
    match SyncMessage::decode(bytes) {
        Ok(SyncMessage::Inventory(Inventory {
            entries, up_to_seq, ..
        })) => format!(
            "inventory up to {up_to_seq} {:?}",
            entries
                .iter()
                .map(|e| (short(&e.doc_id), e.version, e.retracted, e.seq))
                .collect::<Vec<_>>()
        ),
        Ok(SyncMessage::Want { items }) => format!(
            "want {:?}",
            items.iter().map(|i| short(&i.doc_id)).collect::<Vec<_>>()
        ),
        Ok(SyncMessage::Deliver { statement, .. }) => {
            match labnet_protocol::statement::SignedStatement::decode(&statement) {
                Ok(s) => format!(
                    "deliver {} v{} retracted {}",
                    short(&s.body.publication),
                    s.body.version,
                    s.body.retracted
                ),
                Err(_) => "deliver ?".into(),
            }
        }
        Ok(SyncMessage::InventoryAck { up_to_seq, .. }) => format!("ack {up_to_seq}"),
        Ok(SyncMessage::Withdraw { doc_id, seq }) => format!("withdraw {} {seq}", short(&doc_id)),
        Ok(other) => other.kind().to_string(),
        Err(e) => format!("undecodable: {e}"),
    }
}

fn short(doc_id: &DocId) -> String {
    let s = doc_id.as_str();
    format!(
        "{}..{}",
        &s[..4.min(s.len())],
        &s[s.len().saturating_sub(3)..]
    )
}

pub(super) fn describe_effect(effect: &Effect) -> String {
    match effect {
        Effect::SaveVersion(SavedVersion {
            doc_id,
            statement,
            data,
            ..
        }) => format!(
            "save {} v{} via {} {}",
            short(doc_id),
            statement.version,
            statement.via.short(),
            match data {
                crate::sync::ReplicaData::Snapshot(_) => "snapshot",
                crate::sync::ReplicaData::Incremental(_) => "incremental",
            }
        ),
        Effect::SaveTombstone { doc_id, statement } => {
            format!("tombstone {} v{}", short(doc_id), statement.version)
        }
        Effect::Withdrawn { doc_id } => format!("withdrawn {}", short(doc_id)),
        Effect::SaveResumePoint { peer, point } => format!("resume {} {}", peer.short(), point.seq),
        Effect::RecordDelivery {
            peer,
            doc_id,
            version,
        } => {
            format!("delivered {} v{version} to {}", short(doc_id), peer.short())
        }
        other => format!("{other:?}").chars().take(40).collect(),
    }
}
