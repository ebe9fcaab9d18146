//! The city's lab data and what of it leaves the node: importing practices, the
//! roster and the lab record; listing and showing them; sharing a practice,
//! previewing a share, unsharing.
//!
//! Lab data goes through [`crate::lab::storage`], sharing through
//! [`crate::share`]; this file adds what only the admin layer knows (the node's
//! role, name and policy from its config) and tells the running sync sessions
//! when one of our publications changed.

use labnet_config::Role;
use labnet_protocol::sync::DocId;
use labnet_protocol::NodeId;

use super::{Control, ControlError};
use crate::api::{
    CityLab, FieldAction, LabImported, Practice, PracticesImported, Reissued, Roster,
    RosterImported, ShareChange, ShareExemption, SharePiece, SharePreview, ShareReport,
    ShareReportItem, Shared, Unshared,
};
use crate::lab::storage;
use crate::share::anonymize::ReportAction;
use crate::share::report::{Exemption, Removal, ReportItem};
use crate::share::{
    self, AnonymizationReport, AnonymizationSettings, Preview, PublishChange, ShareOutcome,
    ShareRequest,
};
use crate::trust::Scope;

impl Control {
    /// Stores practices (already parsed and validated), all or none.
    pub async fn practice_import(
        &self,
        practices: Vec<Practice>,
    ) -> Result<PracticesImported, ControlError> {
        let role = self.config.role;
        let report = self
            .store
            .call(move |s| storage::import_practices(s, role, &practices))
            .await?;
        // New contacts are new names the rules know.
        self.recheck_publications().await?;
        Ok(PracticesImported {
            created: report.created,
            updated: report.updated,
        })
    }

    /// Replaces the stakeholder roster.
    pub async fn roster_import(&self, roster: Roster) -> Result<RosterImported, ControlError> {
        let role = self.config.role;
        let stakeholders = roster.stakeholders.len();
        self.store
            .call(move |s| storage::import_roster(s, role, &roster))
            .await?;
        // The rules learnt names: every publication's history is checked again.
        let reissued = self.recheck_publications().await?;
        Ok(RosterImported {
            stakeholders,
            reissued,
        })
    }

    /// Stores the city's lab record.
    pub async fn lab_import(&self, lab: CityLab) -> Result<LabImported, ControlError> {
        let role = self.config.role;
        let imported = LabImported {
            labs: lab.labs.len(),
            experiments: lab.experiments.len(),
        };
        self.store
            .call(move |s| storage::import_lab(s, role, &lab))
            .await?;
        Ok(imported)
    }

    /// The city's lab record, empty when none was imported.
    pub async fn lab_show(&self) -> Result<CityLab, ControlError> {
        Ok(self.store.call(|s| storage::load_lab(s)).await?)
    }

    /// Every practice held here, in id order.
    pub async fn practice_list(&self) -> Result<Vec<Practice>, ControlError> {
        Ok(self.store.call(|s| storage::list_practices(s)).await?)
    }

    /// One practice with every field (private ones too: the city's own view).
    pub async fn practice_show(&self, practice_id: String) -> Result<Practice, ControlError> {
        let id = practice_id.clone();
        match self
            .store
            .call(move |s| storage::load_practice(s, &id))
            .await?
        {
            Some(p) => Ok(p),
            None => Err(ControlError::BadInput(format!(
                "no practice with id {practice_id} (see `labnet practice list`)"
            ))),
        }
    }

    /// Publishes a practice's anonymized projection to `scope` (as typed).
    pub async fn share(&self, practice_id: String, scope: &str) -> Result<Shared, ControlError> {
        let scope = parse_scope(scope)?;
        let context = self.share_context();
        let outcome = self
            .store
            .call(move |s| {
                share::share_practice(s, context.role, &context.request(&practice_id, &scope))
            })
            .await?;
        self.announce(&outcome.doc_id);
        if let Some(r) = &outcome.reissued {
            self.announce(&r.old_doc_id);
        }
        Ok(Shared::from(outcome))
    }

    /// Exactly what sharing to `scope` would send, without writing anything.
    pub async fn share_preview(
        &self,
        practice_id: String,
        scope: &str,
    ) -> Result<SharePreview, ControlError> {
        let scope = parse_scope(scope)?;
        let context = self.share_context();
        let preview = self
            .store
            .call(move |s| share::preview_practice(s, &context.request(&practice_id, &scope)))
            .await?;
        Ok(SharePreview::from(preview))
    }

    /// Retracts a practice's publication; peers delete their copies and confirm.
    pub async fn unshare(&self, practice_id: String) -> Result<Unshared, ControlError> {
        let ShareContext { role, origin, .. } = self.share_context();
        let id = practice_id.clone();
        let (retracted, doc_id) = self
            .store
            .call(move |s| {
                let current = share::current_publication(s, origin, &id)?;
                let retracted = share::unshare_practice(s, role, &id, origin)?;
                Ok::<_, share::ShareError>((retracted, current.map(|(d, _)| d)))
            })
            .await?;
        if !retracted {
            return Err(ControlError::BadInput(format!(
                "{practice_id} is not shared (see `labnet audit`)"
            )));
        }
        if let Some(doc_id) = doc_id {
            self.announce(doc_id.as_str());
        }
        Ok(Unshared {
            practice_id,
            retracted: true,
        })
    }

    /// Checks the whole history of every live publication of ours against
    /// today's rules, re-issues those that fail and tells the sessions. Returns
    /// the re-issues, old id and new.
    pub async fn recheck_publications(&self) -> Result<Vec<Reissued>, ControlError> {
        let ShareContext {
            role,
            origin,
            city,
            settings,
        } = self.share_context();
        let done = self
            .store
            .call(move |s| share::recheck_publications(s, role, origin, &city, &settings))
            .await?;
        for r in &done {
            self.announce(&r.new_doc_id);
            self.announce(&r.old_doc_id);
        }
        Ok(done.into_iter().map(Reissued::from).collect())
    }

    /// What sharing needs from the config.
    fn share_context(&self) -> ShareContext {
        ShareContext {
            role: self.config.role,
            origin: self.node_id,
            city: self.config.name.clone(),
            settings: AnonymizationSettings::from_config(&self.config),
        }
    }

    /// Tells connected peers' sessions that one of our publications changed.
    fn announce(&self, doc_id: &str) {
        if let (Some(changes), Ok(doc_id)) = (&self.local_changes, DocId::new(doc_id)) {
            // No session listening is fine: peers catch up when they connect.
            let _ = changes.send(doc_id);
        }
    }
}

/// What sharing needs from the config, owned, so a store call can take it.
struct ShareContext {
    /// The node's role: a subscriber shares nothing.
    role: Role,
    /// This node, the origin of its publications.
    origin: NodeId,
    /// The city's name.
    city: String,
    /// The anonymization settings: the minimum count, the steward's `not_names`.
    settings: AnonymizationSettings,
}

impl ShareContext {
    /// The request to share or preview `practice_id` to `scope`.
    fn request<'a>(&'a self, practice_id: &'a str, scope: &'a Scope) -> ShareRequest<'a> {
        ShareRequest {
            origin: self.origin,
            city: &self.city,
            practice_id,
            scope,
            settings: &self.settings,
        }
    }
}

fn parse_scope(typed: &str) -> Result<Scope, ControlError> {
    Scope::parse(typed).map_err(|e| ControlError::BadInput(format!("--scope: {e}")))
}

impl From<ShareOutcome> for Shared {
    fn from(o: ShareOutcome) -> Shared {
        Shared {
            doc_id: o.doc_id,
            heads: o.heads,
            change: match o.change {
                PublishChange::Created => ShareChange::Created,
                PublishChange::Updated => ShareChange::Updated,
                PublishChange::Unchanged => ShareChange::Unchanged,
            },
            preview_json: o.preview_json,
            report: ShareReport::from(o.report),
            reissued: o.reissued.map(Reissued::from),
        }
    }
}

impl From<Preview> for SharePreview {
    fn from(p: Preview) -> SharePreview {
        SharePreview {
            json: p.json,
            report: ShareReport::from(p.report),
            reissue: p.reissue.map(Reissued::from),
        }
    }
}

impl From<share::Reissue> for Reissued {
    fn from(r: share::Reissue) -> Reissued {
        Reissued {
            old_doc_id: r.old_doc_id,
            new_doc_id: r.new_doc_id,
            fields: r.fields,
            versions: {
                let mut v: Vec<usize> = r.failures.iter().map(|f| f.version).collect();
                v.dedup();
                v
            },
            narrowed: r.narrowed,
        }
    }
}

impl From<AnonymizationReport> for ShareReport {
    fn from(r: AnonymizationReport) -> ShareReport {
        ShareReport {
            items: all_into(r.items),
            removals: all_into(r.removals),
            exemptions: all_into(r.exemptions),
        }
    }
}

/// Each of `items` converted: the report's lists go over the wire item by item.
fn all_into<T, U: From<T>>(items: Vec<T>) -> Vec<U> {
    items.into_iter().map(U::from).collect()
}

impl From<ReportItem> for ShareReportItem {
    fn from(i: ReportItem) -> ShareReportItem {
        ShareReportItem {
            path: i.path,
            action: match i.action {
                ReportAction::Dropped => FieldAction::Dropped,
                ReportAction::Suppressed => FieldAction::Suppressed,
                ReportAction::Scrubbed => FieldAction::Scrubbed,
                ReportAction::Coarsened => FieldAction::Coarsened,
            },
            reason: i.reason,
        }
    }
}

impl From<Removal> for SharePiece {
    fn from(p: Removal) -> SharePiece {
        SharePiece {
            field: p.field,
            excerpt: p.excerpt,
            rule: p.rule.describe().to_string(),
            reason: p.reason,
        }
    }
}

impl From<Exemption> for ShareExemption {
    fn from(e: Exemption) -> ShareExemption {
        ShareExemption {
            field: e.field,
            word: e.word,
            excerpt: e.excerpt,
        }
    }
}
