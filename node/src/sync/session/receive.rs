//! The receiving half of a session: the peer's index, and what we accept of it.
//!
//! It follows the peer's index batch by batch, asks (`Want`) for every
//! announced version newer than the statement we hold, and accepts a
//! delivery only when every check below holds, in this order, cheapest first:
//!
//! 1. the sender is not a peer this city approved as a subscriber
//!    (subscribers deliver nothing; at a subscriber node, which serves
//!    nothing, a peer's role only says what it may receive from us);
//! 2. the statement decodes and its signature verifies against the key the
//!    publication id names (so whoever delivered it, the origin signed it);
//! 3. we asked for that publication, it is not one of ours, and a relay (a
//!    sender that is not the origin) delivers only `public` publications;
//! 4. the version is newer than the one we hold (an older or equal one is
//!    normal with relays: ignored, not punished);
//! 5. the change chunks pass [`check_change_chunks`] (size, number, type,
//!    checksum; compressed ones inflated by labnet under a cap);
//! 6. applied to a scratch copy of what we hold, they give exactly the
//!    signed heads;
//! 7. the result has the shape of a publication, and its content names the
//!    same publication and origin as the statement.
//!
//! Only then is anything stored, and only within the origin's quota
//! ([`SessionConfig`](super::SessionConfig)'s `replicas_per_origin_max` copies
//! and `replica_bytes_per_origin_max` bytes): a valid version over it is
//! refused ([`Event::QuotaExceeded`], logged), stores nothing and evicts
//! nothing, and does not close the session (a relay forwarding what an origin
//! signed did nothing wrong). The session counts from the store's figures when
//! it first meets an origin, plus what it stores itself. A batch is
//! acknowledged once every publication of it is stored, was not needed, or
//! was refused by the quota (so it is not sent again on this session; a later
//! full sync asks again).

use std::collections::{HashMap, HashSet, VecDeque};

use automerge::{AutoCommit, Change, ChangeHash};
use labnet_config::Role;
use labnet_protocol::chunk::check_change_chunks;
use labnet_protocol::close::ViolationCode;
use labnet_protocol::statement::{ScopeClass, SignedStatement};
use labnet_protocol::sync::{
    origin_of, DocId, Inventory, ResumePoint, SyncMessage, WantItem, INVENTORY_BATCHES_UNACKED_MAX,
    WANT_ITEMS_MAX,
};
use labnet_protocol::NodeId;
use tracing::{debug, trace, warn};

use super::{guarded, sorted, Session};
use crate::sync::{
    Effect, Event, ReceivedStatement, ReplicaData, ReplicaUsage, SavedVersion, SyncView,
};

/// One inventory batch not acknowledged yet.
pub(super) struct PendingBatch {
    pub(super) up_to_seq: u64,
    /// Publications of this batch not stored yet.
    pub(super) waiting: HashSet<DocId>,
}

/// The receiving half: the peer's index and our requests.
#[derive(Default)]
pub(super) struct ReceiveHalf {
    /// The peer's index epoch, fixed by its first batch.
    pub(super) epoch: Option<u64>,
    /// `up_to_seq` of the last batch received, to check order.
    pub(super) last_seq: Option<u64>,
    pub(super) batches: VecDeque<PendingBatch>,
    /// Announced versions waiting for a request slot.
    pub(super) queue: VecDeque<DocId>,
    /// The version announced for each publication queued or asked for.
    pub(super) announced: HashMap<DocId, u64>,
    /// Publications asked for and not delivered yet.
    pub(super) wanted: HashSet<DocId>,
    /// The peer said its index is complete, and we have reported `CaughtUp`
    /// since the last batch.
    pub(super) complete_seen: bool,
    pub(super) caught_up_reported: bool,
    /// What each origin's copies take, as read when first needed plus what
    /// this session stored since: the quota is checked against it.
    pub(super) usage: HashMap<NodeId, ReplicaUsage>,
}

/// A check of a delivery failed: the violation to close with.
type Refusal = (ViolationCode, String);

/// A check of a delivered document, run under [`guarded`], as a refusal:
/// its error (worded by `failed`) or Automerge's panic (by `panicked`) is a
/// [`ViolationCode::BadDocument`].
fn bad_document<E>(
    checked: Option<Result<(), E>>,
    failed: impl FnOnce(E) -> String,
    panicked: impl FnOnce() -> String,
) -> Result<(), Refusal> {
    match checked {
        Some(Ok(())) => Ok(()),
        Some(Err(e)) => Err((ViolationCode::BadDocument, failed(e))),
        None => Err((ViolationCode::BadDocument, panicked())),
    }
}

/// A delivery that passed every check, ready to store.
struct Accepted {
    statement: SignedStatement,
    received: ReceivedStatement,
    /// The new copy and the bytes to store, unless the version retracts.
    copy: Option<(Vec<ChangeHash>, ReplicaData)>,
    /// We held a copy before.
    held_copy: bool,
}

impl Session {
    /// Whether nothing the peer publishes is taken: a city took it as a
    /// subscriber (see `on_inventory` for why a subscriber node does not).
    fn peer_is_read_only(&self) -> bool {
        self.info.peer_role == Role::Subscriber && self.info.local_role == Role::Partner
    }

    pub(super) fn on_inventory<V: SyncView + ?Sized>(&mut self, view: &V, inventory: Inventory) {
        let (epoch, up_to_seq) = (inventory.epoch, inventory.up_to_seq);
        if self.receive.epoch.is_some_and(|e| e != epoch) {
            return self.violation(
                ViolationCode::InventoryOutOfOrder,
                "inventory epoch changed within a session".into(),
            );
        }
        if self.receive.last_seq.is_some_and(|last| up_to_seq < last)
            || inventory.entries.iter().any(|e| e.seq > up_to_seq)
        {
            return self.violation(
                ViolationCode::InventoryOutOfOrder,
                format!("inventory batch up to {up_to_seq} goes backwards"),
            );
        }
        if self.receive.batches.len() >= INVENTORY_BATCHES_UNACKED_MAX {
            return self.violation(
                ViolationCode::InventoryOutOfOrder,
                "more unacknowledged inventory batches than the window allows".into(),
            );
        }
        let entries = if self.peer_is_read_only() && !inventory.entries.is_empty() {
            // A peer a city approved as a subscriber is read-only: nothing it
            // announces is asked for or stored. A city our admin approved (or
            // downgraded) as a subscriber still announces its publications;
            // closing the session for that would end every session before our
            // withdrawals reach it, so the batch is acknowledged and ignored.
            // At a subscriber node a peer's role says what it may receive
            // from us, which is nothing either way (a subscriber serves
            // nothing): a city it recorded through its own invite, which can
            // only make subscribers, still publishes to it.
            debug!(
                count = inventory.entries.len(),
                "a peer approved as a subscriber announced publications; ignored"
            );
            Vec::new()
        } else {
            inventory.entries
        };
        let mut seen = HashSet::new();
        for entry in &entries {
            if origin_of(&entry.doc_id).is_none() || !seen.insert(&entry.doc_id) {
                return self.violation(
                    ViolationCode::MalformedMessage,
                    format!(
                        "inventory entry {} does not name an origin, or is listed twice",
                        entry.doc_id
                    ),
                );
            }
        }
        self.receive.epoch = Some(epoch);
        self.receive.last_seq = Some(up_to_seq);
        let mut waiting = HashSet::new();
        for entry in entries {
            if origin_of(&entry.doc_id) == Some(self.info.local) {
                // Our own publication, relayed back: we hold the newest.
                continue;
            }
            let Some(held) = self.read("reading a statement", view.held(&entry.doc_id)) else {
                return;
            };
            // What we hold, counting what this step stored already.
            let held = match (self.queued_held(&entry.doc_id), held) {
                (Some(None), _) => None,
                (Some(Some(queued)), Some(h)) if h.version > queued.0 => {
                    Some((h.version, h.retracted))
                }
                (Some(Some(queued)), _) => Some(queued),
                (None, held) => held.map(|h| (h.version, h.retracted)),
            };
            let newer = held.is_none_or(|(version, _)| entry.version > version);
            // A retraction of something we never held needs nothing from us.
            let needed = newer && !(entry.retracted && held.is_none_or(|(_, retracted)| retracted));
            if !needed {
                continue;
            }
            let previous = self
                .receive
                .announced
                .insert(entry.doc_id.clone(), entry.version);
            if previous.is_none() {
                self.receive.queue.push_back(entry.doc_id.clone());
            }
            waiting.insert(entry.doc_id);
        }
        self.receive
            .batches
            .push_back(PendingBatch { up_to_seq, waiting });
        self.receive.caught_up_reported = false;
        if inventory.complete {
            self.receive.complete_seen = true;
        }
    }

    /// Asks for queued publications while there are free slots.
    pub(super) fn send_wants<V: SyncView + ?Sized>(&mut self, view: &V) {
        let mut items = Vec::new();
        while self.receive.wanted.len() < self.config.docs_in_flight_max {
            let Some(doc_id) = self.receive.queue.pop_front() else {
                break;
            };
            let Some(held) = self.read("reading a statement", view.held(&doc_id)) else {
                return;
            };
            let have = match (self.queued_held(&doc_id), held) {
                // This step already withdrew, stored or retracted our copy, and
                // the view does not show it yet: the heads it shows are not
                // what we will hold, so ask for the whole version.
                (Some(_), _) => Vec::new(),
                (None, Some(h)) if !h.retracted => {
                    sorted(h.heads).into_iter().map(|h| h.0).collect()
                }
                (None, _) => Vec::new(),
            };
            self.receive.wanted.insert(doc_id.clone());
            items.push(WantItem { doc_id, have });
            if items.len() == WANT_ITEMS_MAX {
                self.send(SyncMessage::Want {
                    items: std::mem::take(&mut items),
                });
            }
        }
        if !items.is_empty() {
            self.send(SyncMessage::Want { items });
        }
    }

    pub(super) fn on_deliver<V: SyncView + ?Sized>(
        &mut self,
        view: &V,
        statement: &[u8],
        changes: Vec<Vec<u8>>,
    ) {
        let accepted = match self.check_delivery(view, statement, changes) {
            Ok(Some(accepted)) => accepted,
            // Stale, or a local failure already recorded.
            Ok(None) => return,
            Err((code, reason)) => return self.violation(code, reason),
        };
        let doc_id = accepted.statement.body.publication.clone();
        let origin = accepted.received.origin;
        let relayed = accepted.received.scope_class == ScopeClass::Public;
        match accepted.copy {
            Some((heads, data)) => {
                trace!(doc = %doc_id, version = accepted.received.version, "version stored");
                self.effects.push_back(Effect::SaveVersion(SavedVersion {
                    doc_id: doc_id.clone(),
                    heads: heads.clone(),
                    data,
                    statement: accepted.received,
                }));
                self.events.push_back(Event::ReplicaChanged {
                    doc_id: doc_id.clone(),
                    origin,
                    heads,
                    relayed,
                });
            }
            None => {
                debug!(doc = %doc_id, "publication retracted by its origin");
                let version = accepted.received.version;
                self.effects.push_back(Effect::SaveTombstone {
                    doc_id: doc_id.clone(),
                    statement: accepted.received,
                });
                if accepted.held_copy {
                    self.events.push_back(Event::RetractionReceived {
                        doc_id: doc_id.clone(),
                        origin,
                        relayed,
                    });
                }
                // Confirmed even when this session saw no copy: another
                // session of ours may be storing one in the same moment, which
                // this tombstone then deletes, and a confirmation only says,
                // signed, that we hold none. (We asked for this retraction, so
                // the origin's status has a place for it.)
                self.confirm_retraction(&doc_id, version);
            }
        }
        self.finish_want(&doc_id);
    }

    /// A publication asked for is settled: free its slot and its batch entry.
    fn finish_want(&mut self, doc_id: &DocId) {
        self.receive.wanted.remove(doc_id);
        self.receive.announced.remove(doc_id);
        for batch in &mut self.receive.batches {
            batch.waiting.remove(doc_id);
        }
    }

    /// Runs the checks of the module docs. `Ok(None)`: nothing to store
    /// (a stale version, or a local failure that ended the session).
    fn check_delivery<V: SyncView + ?Sized>(
        &mut self,
        view: &V,
        statement_bytes: &[u8],
        changes: Vec<Vec<u8>>,
    ) -> Result<Option<Accepted>, Refusal> {
        if self.peer_is_read_only() {
            // Before anything else: a subscriber has nothing to deliver.
            return Err((
                ViolationCode::ScopeViolation,
                "a subscriber delivered a publication".into(),
            ));
        }
        let bad_statement = |e: labnet_protocol::statement::StatementError| {
            (
                ViolationCode::BadStatement,
                format!("delivered statement: {e}"),
            )
        };
        let statement = SignedStatement::decode(statement_bytes).map_err(bad_statement)?;
        statement.verify().map_err(bad_statement)?;
        let body = &statement.body;
        let doc_id = body.publication.clone();
        if !self.receive.wanted.contains(&doc_id) {
            return Err((
                ViolationCode::UnexpectedMessage,
                format!("delivery of {doc_id}, which we did not ask for"),
            ));
        }
        let origin = body.origin();
        if origin == self.info.local {
            return Err((
                ViolationCode::NotOrigin,
                format!("delivery of our own publication {doc_id}"),
            ));
        }
        if origin != self.info.peer && body.scope != ScopeClass::Public {
            return Err((
                ViolationCode::ScopeViolation,
                format!(
                    "relayed delivery of {doc_id}, scoped {}: only its origin may deliver it",
                    body.scope.as_str()
                ),
            ));
        }
        let Some(held) = self.read("reading a statement", view.held(&doc_id)) else {
            return Ok(None);
        };
        // A copy withdrawn earlier in this step is as good as gone (the view
        // shows it until the step is persisted): what arrives is a new copy.
        let held = match self.queued_held(&doc_id) {
            Some(None) => None,
            _ => held,
        };
        if held.as_ref().is_some_and(|h| h.version >= body.version) {
            trace!(doc = %doc_id, version = body.version, "stale version ignored");
            self.events.push_back(Event::Stale {
                doc_id: doc_id.clone(),
            });
            self.finish_want(&doc_id);
            return Ok(None);
        }
        let held_copy = held.as_ref().is_some_and(|h| !h.retracted);
        let received = ReceivedStatement {
            origin,
            version: body.version,
            scope_class: body.scope,
            signed: statement_bytes.to_vec(),
            via: self.info.peer,
        };
        if body.retracted {
            if !changes.is_empty() {
                return Err((
                    ViolationCode::BadChunk,
                    format!("a retraction of {doc_id} carried changes"),
                ));
            }
            return Ok(Some(Accepted {
                statement,
                received,
                copy: None,
                held_copy,
            }));
        }
        if !held_copy {
            let Some(usage) = self.usage_of(view, origin) else {
                return Ok(None);
            };
            if usage.count >= self.config.replicas_per_origin_max {
                self.quota_exceeded(
                    &doc_id,
                    origin,
                    format!(
                        "the origin's {} copies are at the quota of {}",
                        usage.count, self.config.replicas_per_origin_max
                    ),
                );
                return Ok(None);
            }
        }
        let checked = check_change_chunks(&changes).map_err(|e| {
            (
                ViolationCode::BadChunk,
                format!("changes for {doc_id}: {e}"),
            )
        })?;
        drop(changes);
        let mut scratch = if held_copy {
            match self.read("loading a replica", view.load_replica(&doc_id)) {
                Some(Some(doc)) => doc,
                Some(None) => {
                    self.local_failure(
                        "loading a replica",
                        format!("{doc_id} has a statement but no document").into(),
                    );
                    return Ok(None);
                }
                None => return Ok(None),
            }
        } else {
            AutoCommit::new()
        };
        let mut appended = Vec::new();
        let applied = guarded(|| {
            let mut parsed = Vec::with_capacity(checked.len());
            for chunk in &checked {
                parsed.push(Change::try_from(chunk.as_bytes()).map_err(|e| e.to_string())?);
                appended.extend_from_slice(chunk.as_bytes());
            }
            scratch.apply_changes(parsed).map_err(|e| e.to_string())
        });
        bad_document(
            applied,
            |e| format!("changes for {doc_id} do not apply: {e}"),
            || format!("changes for {doc_id} made Automerge panic"),
        )?;
        let heads = sorted(scratch.get_heads());
        let signed: Vec<ChangeHash> = body.heads.iter().map(|h| ChangeHash(*h)).collect();
        if heads != signed || guarded(|| scratch.get_missing_deps(&[]).is_empty()) != Some(true) {
            return Err((
                ViolationCode::HeadsMismatch,
                format!(
                    "changes for {doc_id} give {} heads that differ from the {} signed",
                    heads.len(),
                    signed.len()
                ),
            ));
        }
        let Some(saved) = super::saved_if_it_reloads(&mut scratch) else {
            return Err((
                ViolationCode::BadDocument,
                format!("changes for {doc_id} make a document that does not load back once saved"),
            ));
        };
        let shape = guarded(|| crate::share::check_publication_shape(&scratch, &doc_id, origin));
        bad_document(
            shape,
            |e| format!("{doc_id} is not a publication: {e}"),
            || format!("reading {doc_id} made Automerge panic"),
        )?;
        let data = if held_copy {
            ReplicaData::Incremental(appended)
        } else {
            ReplicaData::Snapshot(saved)
        };
        let added = match &data {
            ReplicaData::Incremental(b) | ReplicaData::Snapshot(b) => b.len() as u64,
        };
        let Some(usage) = self.usage_of(view, origin) else {
            return Ok(None);
        };
        if usage.bytes.saturating_add(added) > self.config.replica_bytes_per_origin_max {
            self.quota_exceeded(
                &doc_id,
                origin,
                format!(
                    "{added} more bytes would take the origin's copies past the quota of {} (they hold {})",
                    self.config.replica_bytes_per_origin_max, usage.bytes
                ),
            );
            return Ok(None);
        }
        let entry = self.receive.usage.entry(origin).or_default();
        entry.bytes = entry.bytes.saturating_add(added);
        if !held_copy {
            entry.count += 1;
        }
        Ok(Some(Accepted {
            statement,
            received,
            copy: Some((heads, data)),
            held_copy,
        }))
    }

    /// What `origin`'s copies take: read once per session, then kept up to
    /// date by what the session stores. `None` once a read failure ended the
    /// session.
    fn usage_of<V: SyncView + ?Sized>(&mut self, view: &V, origin: NodeId) -> Option<ReplicaUsage> {
        if let Some(usage) = self.receive.usage.get(&origin) {
            return Some(*usage);
        }
        let usage = self.read("reading replica usage", view.replica_usage(origin))?;
        self.receive.usage.insert(origin, usage);
        Some(usage)
    }

    /// A valid version over its origin's quota: refused, logged, and settled
    /// so its batch can be acknowledged.
    fn quota_exceeded(&mut self, doc_id: &DocId, origin: NodeId, reason: String) {
        warn!(doc = %doc_id, %origin, %reason, "replica quota: version refused, nothing stored");
        self.events.push_back(Event::QuotaExceeded {
            doc_id: doc_id.clone(),
            origin,
            reason,
        });
        self.finish_want(doc_id);
    }

    pub(super) fn on_withdraw<V: SyncView + ?Sized>(&mut self, view: &V, doc_id: DocId, seq: u64) {
        // Only the origin may withdraw; a relay has no say in its scope.
        if origin_of(&doc_id) != Some(self.info.peer) {
            return self.violation(
                ViolationCode::NotOrigin,
                format!("peer withdrew {doc_id}, which it does not publish"),
            );
        }
        let Some(held) = self.read("reading a statement", view.held(&doc_id)) else {
            return;
        };
        let stored_this_step = matches!(self.queued_held(&doc_id), Some(Some(_)));
        if held.is_some() || stored_this_step {
            debug!(doc = %doc_id, seq, "withdrawn by its origin");
            self.effects.push_back(Effect::Withdrawn {
                doc_id: doc_id.clone(),
            });
            self.events.push_back(Event::RetractionReceived {
                doc_id: doc_id.clone(),
                origin: self.info.peer,
                relayed: false,
            });
        }
        if self.receive.wanted.contains(&doc_id) || self.receive.announced.contains_key(&doc_id) {
            self.receive.queue.retain(|d| d != &doc_id);
            self.finish_want(&doc_id);
        }
        self.send(SyncMessage::WithdrawAck { doc_id });
    }

    /// Acknowledges every leading batch whose publications are all stored.
    pub(super) fn try_ack(&mut self) {
        let mut acked = None;
        while let Some(batch) = self.receive.batches.front() {
            if !batch.waiting.is_empty() {
                break;
            }
            acked = Some(batch.up_to_seq);
            self.receive.batches.pop_front();
        }
        let Some(epoch) = self.receive.epoch else {
            return;
        };
        if let Some(up_to_seq) = acked {
            self.send(SyncMessage::InventoryAck { epoch, up_to_seq });
            // After the SaveVersion effects of those publications, so a crash
            // in between resumes too early (harmless), never too late.
            self.effects.push_back(Effect::SaveResumePoint {
                peer: self.info.peer,
                point: ResumePoint {
                    epoch,
                    seq: up_to_seq,
                },
            });
        }
        if self.receive.complete_seen
            && !self.receive.caught_up_reported
            && self.receive.batches.is_empty()
            && self.receive.queue.is_empty()
            && self.receive.wanted.is_empty()
        {
            self.receive.caught_up_reported = true;
            debug!("caught up with the peer's index");
            self.events.push_back(Event::CaughtUp);
        }
    }
}
