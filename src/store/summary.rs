//! What `herald plan --against` needs of a state store, and nothing else: per campaign the
//! revision, the content fingerprint, the stage and how many recipients stand where, and
//! how many addresses the store's suppression list holds. Served by `watch --listen` at
//! `GET /summary` to whoever holds the read token, on the store's socket, and read from a
//! state folder directly: one function builds it for all three, so they cannot disagree.
//!
//! # Guarantees
//! - No address and nothing per recipient: counts, names of campaigns, and digests of
//!   content (subject, sender, templates, catalogs), which say whether content changed
//!   and nothing of a recipient.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{CampaignRecord, Status, StatusCounts, Store, StoreError};
use crate::manifest::Stage;

/// The store as plan sees it from afar; the JSON of `GET /summary` (docs/service.md).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Addresses on the store's own suppression list (every campaign skips them).
    pub suppressed: u64,
    pub campaigns: Vec<CampaignSummary>,
}

/// One campaign, as the store has it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CampaignSummary {
    pub name: String,
    /// The revision whose content is being sent.
    pub revision: u32,
    /// A digest per part of the content, as `check_content` compares them.
    pub fingerprint: BTreeMap<String, String>,
    /// The stage of the last apply.
    pub stage: Option<Stage>,
    pub sent: u64,
    pub failed: u64,
    pub uncertain: u64,
    /// Recipients a schedule's `not_after` left unsent for good. Absent from a herald that
    /// predates schedules.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub expired: u64,
    /// Recipients of calls under way right now.
    pub in_flight: u64,
    /// Addresses this campaign's recipients had suppressed: unsubscribed, bounced or
    /// complained (the store-wide list holds them).
    pub suppressed: u64,
    /// Sent recipients by the revision they last got; what a correction (`resend: all`)
    /// sends again is estimated from it. Absent from a herald that predates corrections.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sent_by_revision: BTreeMap<u32, u64>,
    /// Uncertain recipients by the revision they may have got, likewise.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub uncertain_by_revision: BTreeMap<u32, u64>,
}

impl CampaignSummary {
    /// The record as far as the summary knows it: revision, fingerprint and stage.
    pub fn record(&self) -> CampaignRecord {
        CampaignRecord {
            revision: self.revision,
            fingerprint: self.fingerprint.clone(),
            stage: self.stage,
            ..CampaignRecord::default()
        }
    }

    /// Sent and uncertain recipients of a revision before `revision`: those a correction
    /// to `revision` sends again.
    pub fn earlier(&self, revision: u32) -> u64 {
        self.sent_by_revision
            .range(..revision)
            .chain(self.uncertain_by_revision.range(..revision))
            .map(|(_, count)| count)
            .sum()
    }

    pub fn counts(&self) -> StatusCounts {
        StatusCounts {
            sent: self.sent,
            failed: self.failed,
            uncertain: self.uncertain,
            expired: self.expired,
            in_flight: self.in_flight,
        }
    }
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if takes a reference
fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Summary {
    pub fn campaign(&self, name: &str) -> Option<&CampaignSummary> {
        self.campaigns.iter().find(|c| c.name == name)
    }
}

impl Store {
    /// What plan needs of this store; see the module's guarantees.
    pub fn summary(&self) -> Result<Summary, StoreError> {
        let suppressions = self.suppressions();
        let mut by_campaign: BTreeMap<&str, u64> = BTreeMap::new();
        for suppression in suppressions.values() {
            if let Some(campaign) = &suppression.campaign {
                *by_campaign.entry(campaign.as_str()).or_default() += 1;
            }
        }
        let mut campaigns = Vec::new();
        for name in self.campaign_names()? {
            let store = self.campaign(&name)?;
            let record = store.record()?.unwrap_or_default();
            let counts = store.counts();
            campaigns.push(CampaignSummary {
                suppressed: by_campaign.get(name.as_str()).copied().unwrap_or_default(),
                name,
                revision: record.revision,
                fingerprint: record.fingerprint,
                stage: record.stage,
                sent: counts.sent,
                failed: counts.failed,
                uncertain: counts.uncertain,
                expired: counts.expired,
                in_flight: counts.in_flight,
                sent_by_revision: store.by_revision(Status::Sent),
                uncertain_by_revision: store.by_revision(Status::Uncertain),
            });
        }
        Ok(Summary {
            suppressed: suppressions.len() as u64,
            campaigns,
        })
    }
}
