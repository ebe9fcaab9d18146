//! Retraction confirmations: signed by the node that deleted its copy, and
//! carried back to the publication's origin, relays included.
//!
//! A node that stores a retraction signs a [`RetractionConfirmation`] with its
//! own key and sends it to the peer that delivered the retraction. A node
//! that receives a confirmation checks its signature, keeps it, and
//! acknowledges it; if it is not the origin, it forwards it in turn to the
//! peer its own tombstone came from. Each hop stores before it acknowledges,
//! so a confirmation survives a restart anywhere on the way.
//!
//! A confirmation for a publication we hold no retraction of (a re-share
//! crossed it, or a peer is confused) is dropped, not punished: it is signed,
//! so it cannot be forged, only stale.

use std::collections::{HashSet, VecDeque};

use labnet_protocol::close::ViolationCode;
use labnet_protocol::statement::{RetractionConfirmation, Signed, SignedConfirmation};
use labnet_protocol::sync::{origin_of, DocId, SyncMessage, CONFIRMATIONS_PER_MESSAGE_MAX};
use labnet_protocol::NodeId;
use tracing::debug;

use super::Session;
use crate::sync::{Effect, Event, KeptConfirmation, SyncView};

/// Confirmations sent on this session and not acknowledged yet.
#[derive(Default)]
pub(super) struct ConfirmState {
    /// (publication, confirmer) of each sent, oldest first.
    pub(super) in_flight: VecDeque<(DocId, NodeId)>,
    /// The same, to skip what is already on its way.
    pub(super) sent: HashSet<(DocId, NodeId)>,
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Session {
    /// We stored a retraction delivered by the peer: confirm it, signed, and
    /// send the confirmation back the way the retraction came.
    pub(super) fn confirm_retraction(&mut self, doc_id: &DocId, version: u64) {
        let body = RetractionConfirmation {
            publication: doc_id.clone(),
            version,
            confirmer_key: self.info.signer.public_key(),
            confirmed_at: now_unix(),
        };
        let signed: SignedConfirmation = Signed::sign(body, self.info.signer.as_ref());
        let bytes = signed.encode();
        self.effects
            .push_back(Effect::SaveConfirmation(KeptConfirmation {
                doc_id: doc_id.clone(),
                confirmer: self.info.local,
                version,
                signed: bytes.clone(),
                forwarded: false,
            }));
        let key = (doc_id.clone(), self.info.local);
        self.confirm.sent.insert(key.clone());
        self.confirm.in_flight.push_back(key);
        self.send(SyncMessage::Confirm {
            confirmations: vec![bytes],
        });
    }

    /// Sends the confirmations we hold for retractions the peer delivered.
    pub(super) fn forward_confirmations<V: SyncView + ?Sized>(&mut self, view: &V) {
        if self.closed.is_some() || self.confirm.in_flight.len() >= CONFIRMATIONS_PER_MESSAGE_MAX {
            return;
        }
        let Some(pending) = self.read(
            "reading confirmations",
            view.confirmations_to_forward(self.info.peer, CONFIRMATIONS_PER_MESSAGE_MAX * 2),
        ) else {
            return;
        };
        let mut batch = Vec::new();
        for item in pending {
            let key = (item.doc_id, item.confirmer);
            if self.confirm.sent.contains(&key) {
                continue;
            }
            if self.confirm.in_flight.len() + batch.len() >= CONFIRMATIONS_PER_MESSAGE_MAX {
                break;
            }
            self.confirm.sent.insert(key.clone());
            self.confirm.in_flight.push_back(key);
            batch.push(item.signed);
        }
        if !batch.is_empty() {
            debug!(count = batch.len(), "forwarding confirmations");
            self.send(SyncMessage::Confirm {
                confirmations: batch,
            });
        }
    }

    pub(super) fn on_confirm<V: SyncView + ?Sized>(
        &mut self,
        view: &V,
        confirmations: Vec<Vec<u8>>,
    ) {
        let mut verified = Vec::with_capacity(confirmations.len());
        for bytes in confirmations {
            let signed = match SignedConfirmation::decode(&bytes).and_then(|c| {
                c.verify()?;
                Ok(c)
            }) {
                Ok(c) => c,
                Err(e) => {
                    return self.violation(
                        ViolationCode::BadStatement,
                        format!("retraction confirmation: {e}"),
                    )
                }
            };
            verified.push((signed, bytes));
        }
        let count = verified.len() as u32;
        for (signed, bytes) in verified {
            let doc_id = signed.body.publication.clone();
            let confirmer = signed.body.confirmer();
            // Only a retraction we hold (ours, or a tombstone we relay) is
            // confirmed; the version must be the one we retracted with or newer.
            let Some(origin) = origin_of(&doc_id) else {
                continue;
            };
            let ours = origin == self.info.local;
            let retracted_version = if ours {
                match self.read("reading our index", view.served(&doc_id)) {
                    Some(Some(entry)) if entry.retracted => Some(entry.version),
                    Some(_) => None,
                    None => return,
                }
            } else {
                match self.read("reading a statement", view.held(&doc_id)) {
                    Some(Some(held)) if held.retracted => Some(held.version),
                    Some(_) => None,
                    None => return,
                }
            };
            if retracted_version.is_none_or(|v| signed.body.version < v) {
                debug!(doc = %doc_id, "confirmation of no retraction we hold; dropped");
                continue;
            }
            self.effects
                .push_back(Effect::SaveConfirmation(KeptConfirmation {
                    doc_id: doc_id.clone(),
                    confirmer,
                    version: signed.body.version,
                    signed: bytes,
                    forwarded: ours,
                }));
            if ours {
                debug!(doc = %doc_id, %confirmer, "retraction confirmed");
                self.events
                    .push_back(Event::RetractionConfirmed { doc_id, confirmer });
            } else {
                self.events
                    .push_back(Event::ConfirmationToForward { doc_id });
            }
        }
        self.send(SyncMessage::ConfirmAck { count });
    }

    pub(super) fn on_confirm_ack(&mut self, count: u32) {
        let count = count as usize;
        if count > self.confirm.in_flight.len() {
            return self.violation(
                ViolationCode::UnexpectedMessage,
                format!(
                    "ack of {count} confirmations, {} were sent",
                    self.confirm.in_flight.len()
                ),
            );
        }
        let items: Vec<(DocId, NodeId)> = self.confirm.in_flight.drain(..count).collect();
        for item in &items {
            self.confirm.sent.remove(item);
        }
        self.effects
            .push_back(Effect::ConfirmationsForwarded { items });
    }
}
