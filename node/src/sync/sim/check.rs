//! The simulation's oracle and its invariants.
//!
//! The [`Oracle`] records, outside every node, what each origin actually
//! issued (every version's heads, scope and retraction, as signed) and the
//! topology (who approved whom). The checks compare nodes' stores with it:
//!
//! - [`Oracle::check_effect`], before a node persists an effect: a version
//!   or tombstone is stored only with a statement that verifies against its
//!   origin's key, for a version that origin issued, with the same heads, at
//!   a node the origin would serve it to (or that a relay may carry it to);
//! - [`Oracle::check_node`], on a whole store: the same for everything held,
//!   each copy's bytes load and give the signed heads, and the origin still
//!   holds every version it issued;
//! - [`Oracle::check_acks`]: what a node acknowledged of a peer's index (its
//!   persisted resume point) it still holds: an acknowledged write is never
//!   lost, or a reconnect would resume past it and never fetch it again;
//! - [`Oracle::check_wire`]: no message names a publication to a node that
//!   no version of it was ever visible to;
//! - [`Oracle::check_converged`], once the network healed and went quiet:
//!   every node holds exactly the latest version of what it may see, nothing
//!   else, retractions applied and confirmed back to the origin.
//!
//! Each returns the broken rule as a sentence, which the caller prints with
//! the seed.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use automerge::{AutoCommit, ChangeHash};
use labnet_config::Role;
use labnet_protocol::statement::{ScopeClass, SignedConfirmation, SignedStatement};
use labnet_protocol::sync::{origin_of, DocId, Inventory, SyncMessage};
use labnet_protocol::NodeId;

use crate::store::scope_class_of;
use crate::sync::harness::MemNode;
use crate::sync::{Effect, KeptConfirmation, SavedVersion, ServedEntry, SyncView};
use crate::trust::{visible_to, Scope};

/// One version as its origin issued it.
pub(super) struct IssuedVersion {
    pub(super) heads: Vec<ChangeHash>,
    pub(super) retracted: bool,
    pub(super) scope: Scope,
}

/// Everything an origin issued of one publication.
pub(super) struct IssuedDoc {
    pub(super) origin: usize,
    pub(super) versions: BTreeMap<u64, IssuedVersion>,
}

impl IssuedDoc {
    /// The latest version: (number, what it says).
    pub(super) fn latest(&self) -> Option<(u64, &IssuedVersion)> {
        self.versions.iter().next_back().map(|(v, i)| (*v, i))
    }
}

/// Who the nodes are and who approved whom.
pub(super) struct Topology {
    pub(super) ids: Vec<NodeId>,
    pub(super) roles: Vec<Role>,
    /// Approved pairs, `(low, high)`, one connection each at most.
    pub(super) links: Vec<(usize, usize)>,
}

impl Topology {
    pub(super) fn adjacent(&self, a: usize, b: usize) -> bool {
        self.links.contains(&(a.min(b), a.max(b)))
    }

    pub(super) fn index_of(&self, id: NodeId) -> Option<usize> {
        self.ids.iter().position(|&i| i == id)
    }

    /// The nodes a public publication of `origin` can reach: through every
    /// link, but onwards only from partners (subscribers serve nothing).
    pub(super) fn public_reach(&self, origin: usize) -> BTreeSet<usize> {
        let mut reached = BTreeSet::from([origin]);
        let mut queue = VecDeque::from([origin]);
        while let Some(n) = queue.pop_front() {
            if self.roles[n] != Role::Partner {
                continue;
            }
            for &(a, b) in &self.links {
                let next = match (a == n, b == n) {
                    (true, _) => b,
                    (_, true) => a,
                    _ => continue,
                };
                if reached.insert(next) {
                    queue.push_back(next);
                }
            }
        }
        reached
    }

    /// Whether `origin` would (directly, or through relays for `public`)
    /// get a version with `scope` to node `n`.
    pub(super) fn may_see(&self, scope: &Scope, origin: usize, n: usize) -> bool {
        if n == origin {
            return false;
        }
        match scope {
            Scope::Public => self.public_reach(origin).contains(&n),
            _ => self.adjacent(origin, n) && visible_to(scope, self.ids[n], self.roles[n]),
        }
    }
}

/// What was issued, and where.
pub(super) struct Oracle {
    pub(super) topo: Topology,
    pub(super) docs: BTreeMap<DocId, IssuedDoc>,
}

/// The broken rule, as a sentence.
pub(super) type Broken = String;

fn sorted(mut heads: Vec<ChangeHash>) -> Vec<ChangeHash> {
    heads.sort();
    heads.dedup();
    heads
}

impl Oracle {
    /// Records the version `origin` just issued of `doc_id`, as its store holds it.
    pub(super) fn record(&mut self, origin: usize, store: &MemNode, doc_id: &DocId) {
        let Some(p) = store.publications.get(doc_id) else {
            return;
        };
        self.docs
            .entry(doc_id.clone())
            .or_insert_with(|| IssuedDoc {
                origin,
                versions: BTreeMap::new(),
            })
            .versions
            .insert(
                p.seq,
                IssuedVersion {
                    heads: sorted(p.heads.clone()),
                    retracted: p.retracted,
                    scope: p.scope.clone(),
                },
            );
    }

    fn doc(&self, doc_id: &DocId) -> Result<&IssuedDoc, Broken> {
        self.docs
            .get(doc_id)
            .ok_or_else(|| format!("{doc_id} was never issued by anyone"))
    }

    /// Whether some version of `doc_id` was ever visible to node `n`.
    fn ever_may_see(&self, doc: &IssuedDoc, n: usize) -> bool {
        doc.versions
            .values()
            .any(|v| self.topo.may_see(&v.scope, doc.origin, n))
    }

    /// The statement verifies against the origin's key and says exactly
    /// what the origin issued as `version`; returns that version.
    fn check_signed(
        &self,
        doc_id: &DocId,
        signed: &[u8],
        version: u64,
        retracted: bool,
        class: ScopeClass,
    ) -> Result<(&IssuedDoc, &IssuedVersion), Broken> {
        let doc = self.doc(doc_id)?;
        let statement = SignedStatement::decode(signed)
            .map_err(|e| format!("{doc_id}: a held statement does not decode: {e}"))?;
        statement
            .verify()
            .map_err(|e| format!("{doc_id}: a held statement does not verify: {e}"))?;
        let body = &statement.body;
        if body.publication != *doc_id || body.origin() != self.topo.ids[doc.origin] {
            return Err(format!(
                "{doc_id}: held under a statement of {} by another origin",
                body.publication
            ));
        }
        let issued = doc.versions.get(&body.version).ok_or_else(|| {
            format!(
                "{doc_id}: version {} is held but its origin never issued it",
                body.version
            )
        })?;
        let issued_heads: Vec<[u8; 32]> = issued.heads.iter().map(|h| h.0).collect();
        if body.version != version
            || body.retracted != retracted
            || body.retracted != issued.retracted
            || body.heads != issued_heads
            || body.scope != class
            || class != scope_class_of(&issued.scope.to_text())
        {
            return Err(format!(
                "{doc_id}: the held version {version} (retracted {retracted}, {}) differs from what its origin issued as {}",
                class.as_str(),
                body.version
            ));
        }
        Ok((doc, issued))
    }

    /// Checks an effect node `n` is about to persist from its session with
    /// node `peer`.
    pub(super) fn check_effect(
        &self,
        n: usize,
        peer: usize,
        effect: &Effect,
    ) -> Result<(), Broken> {
        match effect {
            Effect::SaveVersion(SavedVersion {
                doc_id,
                heads,
                statement,
                ..
            }) => {
                let (doc, issued) = self.check_signed(
                    doc_id,
                    &statement.signed,
                    statement.version,
                    false,
                    statement.scope_class,
                )?;
                self.check_received(n, peer, doc_id, doc, statement.origin, statement.via)?;
                let signed_heads = sorted(heads.clone()) == issued.heads;
                let version = statement.version;
                self.check_version(n, "stores", doc_id, version, signed_heads, (doc, issued))
            }
            Effect::SaveTombstone { doc_id, statement } => {
                let (doc, _) = self.check_signed(
                    doc_id,
                    &statement.signed,
                    statement.version,
                    true,
                    statement.scope_class,
                )?;
                self.check_received(n, peer, doc_id, doc, statement.origin, statement.via)?;
                if !self.ever_may_see(doc, n) {
                    return Err(format!(
                        "scope violated: node {n} learns of {doc_id}'s retraction, no version of which it could see"
                    ));
                }
                Ok(())
            }
            Effect::Withdrawn { doc_id } => {
                if origin_of(doc_id) != Some(self.topo.ids[peer]) {
                    return Err(format!(
                        "node {n} deletes {doc_id} on a withdrawal by node {peer}, not its origin"
                    ));
                }
                Ok(())
            }
            Effect::SaveConfirmation(KeptConfirmation {
                doc_id,
                confirmer,
                signed,
                ..
            }) => {
                let c = SignedConfirmation::decode(signed).map_err(|e| {
                    format!("node {n} keeps a confirmation that does not decode: {e}")
                })?;
                c.verify().map_err(|e| {
                    format!("node {n} keeps a confirmation that does not verify: {e}")
                })?;
                if c.body.publication != *doc_id || c.body.confirmer() != *confirmer {
                    return Err(format!(
                        "node {n} keeps a confirmation of {doc_id} signed for another"
                    ));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Version `version` of `doc_id`, which node `n` keeps (`how`: "stores"
    /// or "holds" it) as [`Self::check_signed`] found it `signed`, has the
    /// heads its origin signed (`signed_heads`), and the node is in the
    /// scope it signed.
    fn check_version(
        &self,
        n: usize,
        how: &str,
        doc_id: &DocId,
        version: u64,
        signed_heads: bool,
        (doc, issued): (&IssuedDoc, &IssuedVersion),
    ) -> Result<(), Broken> {
        if !signed_heads {
            return Err(format!(
                "node {n} {how} {doc_id} v{version} with heads other than the ones its origin signed"
            ));
        }
        if !self.topo.may_see(&issued.scope, doc.origin, n) {
            return Err(format!(
                "scope violated: node {n} {how} {doc_id} v{version}, scoped {}, which its origin {} would not serve it",
                issued.scope.to_text(),
                doc.origin
            ));
        }
        Ok(())
    }

    /// A stored version names the right origin, came from a peer that may
    /// deliver it, and is not the node's own.
    fn check_received(
        &self,
        n: usize,
        peer: usize,
        doc_id: &DocId,
        doc: &IssuedDoc,
        origin: NodeId,
        via: NodeId,
    ) -> Result<(), Broken> {
        if doc.origin == n {
            return Err(format!("node {n} stores its own {doc_id} as a replica"));
        }
        if origin != self.topo.ids[doc.origin] || via != self.topo.ids[peer] {
            return Err(format!(
                "node {n} stores {doc_id} under the wrong origin or relay"
            ));
        }
        Ok(())
    }

    /// Everything node `n` holds: verified, issued, with its heads, in scope;
    /// and what it issued itself is all there.
    pub(super) fn check_node(&self, n: usize, store: &MemNode) -> Result<(), Broken> {
        for (doc_id, h) in &store.held {
            let (doc, issued) =
                self.check_signed(doc_id, &h.statement, h.version, h.retracted, h.class)?;
            if doc.origin == n || h.origin != self.topo.ids[doc.origin] {
                return Err(format!("node {n} holds {doc_id} under the wrong origin"));
            }
            match &h.bytes {
                Some(bytes) => {
                    if h.retracted {
                        return Err(format!("node {n} keeps a copy of retracted {doc_id}"));
                    }
                    let mut copy = AutoCommit::load(bytes)
                        .map_err(|e| format!("node {n}'s copy of {doc_id} does not load: {e}"))?;
                    let signed_heads =
                        sorted(copy.get_heads()) == issued.heads && h.heads == issued.heads;
                    self.check_version(n, "holds", doc_id, h.version, signed_heads, (doc, issued))?;
                }
                None if !h.retracted => {
                    return Err(format!("node {n} holds {doc_id} without its document"));
                }
                None => {
                    if !self.ever_may_see(doc, n) {
                        return Err(format!(
                            "scope violated: node {n} holds a tombstone of {doc_id}, never in its scope"
                        ));
                    }
                }
            }
        }
        for (doc_id, doc) in &self.docs {
            if doc.origin != n {
                continue;
            }
            let latest = doc.latest().map(|(v, _)| v);
            let held = store.publications.get(doc_id).map(|p| p.seq);
            if held != latest {
                return Err(format!(
                    "origin {n} lost what it issued of {doc_id}: holds {held:?}, issued {latest:?}"
                ));
            }
        }
        Ok(())
    }

    /// Whether `server` would announce `entry` of its index to node `n`
    /// (the serving half's rules, restated).
    fn announces(server: &MemNode, entry: &ServedEntry, n_id: NodeId, n_role: Role) -> bool {
        if server.role == Role::Subscriber || entry.origin == n_id {
            return false;
        }
        let Some(scope) = &entry.scope else {
            return true;
        };
        let delivered = server.deliveries.contains(&(n_id, entry.doc_id.clone()));
        match (entry.retracted, visible_to(scope, n_id, n_role)) {
            (false, true) => true,
            (true, true) if *scope == Scope::Public => true,
            (true, _) => delivered,
            (false, false) => false,
        }
    }

    /// Node `n` holds at least every version its persisted resume points say
    /// it acknowledged: an acknowledged write is never lost.
    pub(super) fn check_acks(&self, n: usize, stores: &[&MemNode]) -> Result<(), Broken> {
        let me = stores[n];
        let mut points: Vec<_> = me.resume.iter().collect();
        points.sort_by_key(|(peer, _)| **peer);
        for (peer_id, point) in points {
            let Some(p) = self.topo.index_of(*peer_id) else {
                return Err(format!("node {n} has a resume point for an unknown node"));
            };
            let server = stores[p];
            if point.epoch != server.epoch {
                continue;
            }
            let rows = server
                .served_after(0, usize::MAX)
                .map_err(|e| format!("node {p}'s index does not read: {e}"))?;
            for entry in rows.iter().filter(|e| e.seq <= point.seq) {
                if !Self::announces(server, entry, me.id, me.role) {
                    continue;
                }
                let held = me.held.get(&entry.doc_id);
                // A retraction of something not held is acknowledged without
                // storing anything; an older copy may then still arrive from
                // another relay, which holds it too and so will learn of the
                // retraction and pass it on (convergence checks that it does).
                let fine = held.is_some_and(|h| h.version >= entry.version)
                    || (entry.retracted && held.is_none_or(|h| h.retracted || h.via != server.id));
                if !fine {
                    return Err(format!(
                        "acknowledged write lost: node {n} acknowledged node {p}'s index up to seq {} but holds {} at {:?}, not v{}",
                        point.seq,
                        entry.doc_id,
                        held.map(|h| h.version),
                        entry.version
                    ));
                }
            }
        }
        Ok(())
    }

    /// Every publication a message delivered to node `n` names was visible
    /// to `n` in some version: a node outside the scope never learns an id.
    pub(super) fn check_wire(&self, n: usize, bytes: &[u8]) -> Result<(), Broken> {
        let msg = SyncMessage::decode(bytes)
            .map_err(|e| format!("an honest node sent node {n} bytes that do not decode: {e}"))?;
        let ids: Vec<DocId> = match &msg {
            SyncMessage::Inventory(Inventory { entries, .. }) => {
                entries.iter().map(|e| e.doc_id.clone()).collect()
            }
            SyncMessage::Want { items } => items.iter().map(|i| i.doc_id.clone()).collect(),
            SyncMessage::Deliver { statement, .. } => SignedStatement::decode(statement)
                .map(|s| vec![s.body.publication])
                .map_err(|e| format!("an honest node delivered a bad statement: {e}"))?,
            SyncMessage::Withdraw { doc_id, .. } | SyncMessage::WithdrawAck { doc_id } => {
                vec![doc_id.clone()]
            }
            _ => Vec::new(),
        };
        for doc_id in ids {
            let doc = self.doc(&doc_id)?;
            if doc.origin != n && !self.ever_may_see(doc, n) {
                return Err(format!(
                    "scope violated: a {} message names {doc_id} to node {n}, outside every scope it had",
                    msg.kind()
                ));
            }
        }
        Ok(())
    }

    /// The network healed and went quiet: every node holds exactly the latest
    /// version of each publication it may see and nothing of the others,
    /// retractions are applied, and every confirmation reached its origin.
    /// `held_copy[n]` is what node `n` held a copy of and was not withdrawn from.
    pub(super) fn check_converged(
        &self,
        stores: &[&MemNode],
        held_copy: &[BTreeSet<DocId>],
    ) -> Result<(), Broken> {
        for (doc_id, doc) in &self.docs {
            let Some((version, latest)) = doc.latest() else {
                continue;
            };
            let origin = stores[doc.origin];
            for (n, store) in stores.iter().enumerate() {
                if n == doc.origin {
                    continue;
                }
                let held = store.held.get(doc_id);
                let sees = self.topo.may_see(&latest.scope, doc.origin, n);
                if latest.retracted {
                    if held.is_some_and(|h| h.bytes.is_some()) {
                        return Err(format!(
                            "not converged: node {n} keeps a copy of {doc_id}, retracted at v{version}"
                        ));
                    }
                    if held_copy[n].contains(doc_id) {
                        if !held.is_some_and(|h| h.retracted && h.version == version) {
                            return Err(format!(
                                "not converged: node {n} held {doc_id} and has no tombstone of v{version}"
                            ));
                        }
                        if !origin
                            .confirmations
                            .contains_key(&(doc_id.clone(), store.id))
                        {
                            return Err(format!(
                                "not converged: node {n} deleted {doc_id}; its confirmation never reached origin {}",
                                doc.origin
                            ));
                        }
                    }
                } else if sees {
                    let fine = held.is_some_and(|h| {
                        h.version == version && h.bytes.is_some() && h.heads == latest.heads
                    });
                    if !fine {
                        return Err(format!(
                            "not converged: node {n} holds {:?} of {doc_id}, not its latest v{version}",
                            held.map(|h| h.version)
                        ));
                    }
                } else if let Some(h) = held {
                    return Err(format!(
                        "not converged: node {n} holds v{} of {doc_id}, whose latest scope ({}) excludes it",
                        h.version,
                        latest.scope.to_text()
                    ));
                }
            }
        }
        // Nothing is left waiting to be forwarded, and what was marked
        // forwarded is held by the next hop (it acknowledged it).
        for (n, store) in stores.iter().enumerate() {
            for ((doc_id, confirmer), c) in &store.confirmations {
                let Some(doc) = self.docs.get(doc_id) else {
                    return Err(format!("node {n} keeps a confirmation of unknown {doc_id}"));
                };
                if doc.origin == n {
                    continue;
                }
                if !c.forwarded {
                    return Err(format!(
                        "not converged: node {n} never forwarded the confirmation of {doc_id}"
                    ));
                }
                let via = store
                    .held
                    .get(doc_id)
                    .and_then(|h| self.topo.index_of(h.via));
                let Some(via) = via else {
                    return Err(format!(
                        "node {n} forwarded a confirmation of {doc_id} it holds no tombstone of"
                    ));
                };
                if !stores[via]
                    .confirmations
                    .contains_key(&(doc_id.clone(), *confirmer))
                {
                    return Err(format!(
                        "acknowledged write lost: node {via} acknowledged node {n}'s confirmation of {doc_id} and does not hold it"
                    ));
                }
            }
        }
        Ok(())
    }
}
