//! Per-campaign progress as the state store has it: what `herald status` prints, what a
//! running herald answers on its socket, and what `GET /status` serves. One function
//! builds it for all three, so they cannot disagree.

use serde::{Deserialize, Serialize};

use crate::git::GitRevision;
use crate::manifest::Stage;
use crate::store::{Status, StatusCounts, Store, StoreError, timestamp};
use crate::text::List;

/// One campaign in `status -o json`; see docs/output.md.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignStatus {
    pub name: String,
    pub revision: u32,
    pub stage: Option<Stage>,
    pub paused: bool,
    pub halted: Option<String>,
    /// The transport that could not take this campaign's calls when its last run ended.
    #[serde(default)]
    pub down: Option<DownStatus>,
    pub first_apply: Option<String>,
    pub last_apply: Option<String>,
    /// The git commit of the manifests at the last apply.
    pub git: Option<GitRevision>,
    /// Under a schedule, when the next recipients become due, as the last apply found.
    #[serde(default)]
    pub next_due: Option<String>,
    #[serde(flatten)]
    pub counts: StatusCounts,
    #[serde(flatten)]
    pub feedback: Feedback,
    /// Sent recipients by the revision they last got, the newest first.
    #[serde(default)]
    pub sent_by_revision: Vec<RevisionSent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipients: Option<Vec<RecipientStatus>>,
}

/// What recipients of a campaign told herald after it sent: the store's suppressions that
/// came from this campaign, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Feedback {
    #[serde(default)]
    pub bounced: u64,
    #[serde(default)]
    pub complained: u64,
    #[serde(default)]
    pub unsubscribed: u64,
}

impl Feedback {
    /// Every campaign's feedback from the store's suppression list.
    pub fn of(store: &Store) -> std::collections::BTreeMap<String, Self> {
        let mut feedback: std::collections::BTreeMap<String, Self> =
            std::collections::BTreeMap::new();
        for suppression in store.suppressions().into_values() {
            let Some(campaign) = suppression.campaign else {
                continue;
            };
            let entry = feedback.entry(campaign).or_default();
            match suppression.reason.as_str() {
                "bounced" => entry.bounced += 1,
                "complained" => entry.complained += 1,
                "unsubscribed" => entry.unsubscribed += 1,
                _ => {}
            }
        }
        feedback
    }
}

/// A transport that was down, as status shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownStatus {
    pub transport: String,
    /// `network`, `tls`, `credentials`, `client`, `sender`, `busy` or `storage`.
    pub cause: String,
    pub reason: String,
    /// RFC 3339 UTC: since when it could not take calls.
    pub since: String,
}

/// How many recipients last got one revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevisionSent {
    pub revision: u32,
    pub sent: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientStatus {
    pub address: String,
    pub status: String,
    pub attempts: u32,
    pub revision: u32,
    pub reason: Option<String>,
    pub updated: String,
}

/// Recipients `status --recipients` can list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Listed {
    Failed,
    Uncertain,
    Expired,
    Sent,
}

/// What `status` was asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Query {
    /// Only this campaign.
    pub campaign: Option<String>,
    /// List the recipients in this state.
    pub recipients: Option<Listed>,
}

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no campaign named `{name}` in the state store {path}; it has: {known}")]
    Unknown {
        name: String,
        path: String,
        known: String,
    },
}

/// Every campaign's status (or the one asked for), from the store.
pub fn collect(store: &Store, query: &Query) -> Result<Vec<CampaignStatus>, StatusError> {
    let names = store.campaign_names()?;
    if let Some(name) = &query.campaign {
        if !names.contains(name) {
            return Err(StatusError::Unknown {
                name: name.clone(),
                path: store.path().display().to_string(),
                known: if names.is_empty() {
                    "none".to_owned()
                } else {
                    List::and_ticked(&names).to_string()
                },
            });
        }
    }
    let feedback = Feedback::of(store);
    let mut statuses = Vec::new();
    for name in names {
        if query.campaign.as_ref().is_some_and(|only| *only != name) {
            continue;
        }
        let campaign = store.campaign(&name)?;
        let record = campaign.record()?.unwrap_or_default();
        let recipients = match query.recipients {
            None => None,
            Some(listed) => {
                let mut found = match listed {
                    Listed::Failed => campaign.list(Status::Failed)?,
                    Listed::Expired => campaign.list(Status::Expired)?,
                    Listed::Sent => campaign.list(Status::Sent)?,
                    Listed::Uncertain => {
                        let mut found = campaign.list(Status::Uncertain)?;
                        found.extend(campaign.list(Status::InFlight)?);
                        found
                    }
                };
                found.sort_by(|a, b| a.0.cmp(&b.0));
                Some(
                    found
                        .into_iter()
                        .map(|(address, r)| RecipientStatus {
                            address,
                            status: r.status.as_str().to_owned(),
                            attempts: r.attempts,
                            revision: r.revision,
                            reason: r.reason.map(|r| crate::secret::scrub(&r).into_owned()),
                            updated: timestamp(r.updated),
                        })
                        .collect(),
                )
            }
        };
        let told = feedback.get(&name).copied().unwrap_or_default();
        statuses.push(CampaignStatus {
            name,
            revision: record.revision,
            stage: record.stage,
            paused: record.paused,
            halted: record.halted,
            down: record.down.map(|d| DownStatus {
                transport: d.transport,
                cause: d.cause,
                reason: crate::secret::scrub(&d.reason).into_owned(),
                since: timestamp(d.since),
            }),
            first_apply: record.first_apply.map(timestamp),
            last_apply: record.last_apply.map(timestamp),
            git: record.git,
            next_due: record.next_due.map(timestamp),
            counts: campaign.counts(),
            feedback: told,
            sent_by_revision: campaign
                .by_revision(Status::Sent)
                .into_iter()
                .rev()
                .map(|(revision, sent)| RevisionSent { revision, sent })
                .collect(),
            recipients,
        });
    }
    Ok(statuses)
}

/// The store's suppression list as `herald suppressions list -o json` prints it.
pub fn suppressions(store: &Store) -> serde_json::Value {
    let list: Vec<_> = store
        .suppressions()
        .into_iter()
        .map(|(address, s)| {
            serde_json::json!({
                "address": address,
                "reason": s.reason,
                "campaign": s.campaign,
                "at": crate::store::timestamp(s.at),
            })
        })
        .collect();
    serde_json::json!({ "suppressions": list })
}
