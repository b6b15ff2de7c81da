//! Per-campaign progress as the state store has it: what `herald status` prints, what a
//! running herald answers on its socket, and what `GET /status` serves. One function
//! builds it for all three, so they cannot disagree.

use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use crate::audience::Shard;
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
    /// Under `spec.shards`: each shard's counts, which the counts above add up.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<ShardStatus>,
}

/// One shard's counts of a campaign, from its own store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardStatus {
    pub shard: u32,
    pub shards: u32,
    #[serde(flatten)]
    pub counts: StatusCounts,
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
            shards: Vec::new(),
        });
    }
    Ok(statuses)
}

/// Each campaign as the stores of all its shards have it, added up: counts, feedback,
/// sent by revision and listed recipients are the sums of the shards'; the latest apply,
/// the newest revision, and a halt or an outage of any shard are the campaign's. Each
/// shard's counts are kept beside them, in shard order.
pub fn aggregate(parts: Vec<(Shard, Vec<CampaignStatus>)>) -> Vec<CampaignStatus> {
    let mut campaigns: BTreeMap<String, CampaignStatus> = BTreeMap::new();
    for (shard, statuses) in parts {
        for status in statuses {
            let part = ShardStatus {
                shard: shard.index,
                shards: shard.count.get(),
                counts: status.counts,
            };
            let Some(whole) = campaigns.get_mut(&status.name) else {
                let mut first = status;
                first.shards = vec![part];
                campaigns.insert(first.name.clone(), first);
                continue;
            };
            whole.shards.push(part);
            add(whole, status);
        }
    }
    campaigns.into_values().collect()
}

fn add(whole: &mut CampaignStatus, part: CampaignStatus) {
    let (counts, more) = (&mut whole.counts, part.counts);
    counts.sent += more.sent;
    counts.failed += more.failed;
    counts.uncertain += more.uncertain;
    counts.in_flight += more.in_flight;
    counts.expired += more.expired;
    let (told, more) = (&mut whole.feedback, part.feedback);
    told.bounced += more.bounced;
    told.complained += more.complained;
    told.unsubscribed += more.unsubscribed;
    for sent in part.sent_by_revision {
        match whole
            .sent_by_revision
            .iter_mut()
            .find(|r| r.revision == sent.revision)
        {
            Some(r) => r.sent += sent.sent,
            None => whole.sent_by_revision.push(sent),
        }
    }
    whole
        .sent_by_revision
        .sort_by_key(|r| std::cmp::Reverse(r.revision));
    if let (Some(all), Some(more)) = (&mut whole.recipients, part.recipients) {
        all.extend(more);
    }
    whole.revision = whole.revision.max(part.revision);
    whole.paused |= part.paused;
    whole.halted = whole.halted.take().or(part.halted);
    whole.down = whole.down.take().or(part.down);
    // RFC 3339 in UTC: the text orders as the instants do.
    if part.last_apply > whole.last_apply {
        whole.last_apply = part.last_apply;
        whole.git = part.git;
        whole.stage = part.stage;
    }
    whole.first_apply = match (whole.first_apply.take(), part.first_apply) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    whole.next_due = match (whole.next_due.take(), part.next_due) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
}

/// The store's suppression list as `herald suppressions list -o json` prints it (and
/// `GET /suppressions` serves it), `count` the number of entries.
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
    serde_json::json!({ "count": list.len(), "suppressions": list })
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;

    fn part(sent: u64, uncertain: u64, revision: u32, last_apply: &str) -> CampaignStatus {
        CampaignStatus {
            name: "welcome".to_owned(),
            revision,
            stage: Some(Stage::Full),
            paused: false,
            halted: None,
            down: None,
            first_apply: Some(last_apply.to_owned()),
            last_apply: Some(last_apply.to_owned()),
            git: None,
            next_due: None,
            counts: StatusCounts {
                sent,
                uncertain,
                ..StatusCounts::default()
            },
            feedback: Feedback {
                unsubscribed: 1,
                ..Feedback::default()
            },
            sent_by_revision: vec![RevisionSent { revision, sent }],
            recipients: None,
            shards: Vec::new(),
        }
    }

    fn shard(index: u32) -> Shard {
        Shard {
            index,
            count: NonZeroU32::new(3).unwrap(),
        }
    }

    /// The campaign's counts are the sums of its shards', each shard kept beside them;
    /// the latest apply and the newest revision are the campaign's.
    #[test]
    fn shards_add_up() {
        let whole = aggregate(vec![
            (shard(0), vec![part(10, 0, 1, "2026-12-05T04:00:00Z")]),
            (shard(1), vec![part(12, 2, 2, "2026-12-05T05:00:00Z")]),
            (shard(2), vec![]),
        ]);
        assert_eq!(whole.len(), 1);
        let campaign = &whole[0];
        assert_eq!(campaign.counts.sent, 22);
        assert_eq!(campaign.counts.uncertain, 2);
        assert_eq!(campaign.feedback.unsubscribed, 2);
        assert_eq!(campaign.revision, 2);
        assert_eq!(campaign.last_apply.as_deref(), Some("2026-12-05T05:00:00Z"));
        assert_eq!(
            campaign.first_apply.as_deref(),
            Some("2026-12-05T04:00:00Z")
        );
        assert_eq!(
            campaign.sent_by_revision,
            [
                RevisionSent {
                    revision: 2,
                    sent: 12
                },
                RevisionSent {
                    revision: 1,
                    sent: 10
                }
            ]
        );
        let indexes: Vec<(u32, u64)> = campaign
            .shards
            .iter()
            .map(|s| (s.shard, s.counts.sent))
            .collect();
        assert_eq!(indexes, [(0, 10), (1, 12)]);
    }
}
