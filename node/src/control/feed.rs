//! `feed ...`: the publications this node can show, its own and those it
//! received, filtered as the admin asked, or one of them by id.
//!
//! The entries come from [`crate::feed`], which takes each publication's id and
//! origin from its verified statement and names our own publications after
//! this node; the CLI makes the exports from them.

use super::{Control, ControlError};
use crate::api::FeedEntry;
use crate::feed::{collect_entries, FeedFilter};

impl Control {
    /// The feed's entries that pass `filter`.
    pub async fn feed_list(&self, filter: FeedFilter) -> Result<Vec<FeedEntry>, ControlError> {
        if let Some(a) = &filter.area {
            if a != "education" && a != "care" {
                return Err(ControlError::BadInput(format!(
                    "--area '{a}': use education or care"
                )));
            }
        }
        let entries = self.entries().await?;
        Ok(filter.apply(&entries))
    }

    /// One entry, by its feed id, its publication id or its practice id.
    pub async fn feed_show(&self, id: &str) -> Result<FeedEntry, ControlError> {
        let entries = self.entries().await?;
        let found = entries.into_iter().find(|e| {
            e.id == id || e.id.ends_with(&format!(":{id}")) || e.id.replace("urn:labnet:", "") == id
        });
        found.ok_or_else(|| {
            ControlError::BadInput(format!(
                "no publication {id} in the feed (see `labnet feed list`)"
            ))
        })
    }

    /// Every entry, ours published under this node's name.
    async fn entries(&self) -> Result<Vec<FeedEntry>, ControlError> {
        let (local, name) = (self.node_id, self.config.name.clone());
        Ok(self
            .store
            .call(move |s| collect_entries(s, local, &name))
            .await?)
    }
}
