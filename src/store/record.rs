//! What the state store keeps, per campaign and per recipient.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::git::GitRevision;
use crate::manifest::Stage;

/// Where one recipient stands. The first byte of every stored recipient record is the
/// status code, so counting and recovery scan keys without parsing values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Intent recorded, outcome not yet: a provider call may be under way.
    InFlight,
    Sent,
    /// Refused permanently by the provider; never retried.
    Failed,
    /// A call may or may not have delivered; never re-sent unless asked.
    Uncertain,
    /// Not sent by the schedule's `not_after`: no call was made, and none ever is for this
    /// revision (a later revision may send them).
    Expired,
}

impl Status {
    pub(super) const fn code(self) -> u8 {
        match self {
            Self::InFlight => b'i',
            Self::Sent => b's',
            Self::Failed => b'f',
            Self::Uncertain => b'u',
            Self::Expired => b'e',
        }
    }

    pub(super) fn from_code(code: u8) -> Option<Self> {
        [
            Self::InFlight,
            Self::Sent,
            Self::Failed,
            Self::Uncertain,
            Self::Expired,
        ]
        .into_iter()
        .find(|s| s.code() == code)
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InFlight => "in_flight",
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::Uncertain => "uncertain",
            Self::Expired => "expired",
        }
    }
}

/// One recipient of one campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientRecord {
    pub status: Status,
    /// Provider calls made for this recipient, across runs.
    pub attempts: u32,
    /// The campaign revision whose content this recipient got (or was sent).
    pub revision: u32,
    /// The provider's id for the accepted message (the file name, for the outbox).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<String>,
    /// What the provider answered, for `failed` and `uncertain`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Unix seconds of the last change.
    pub updated: u64,
}

/// The intent of one provider call: who is in it, written (and flushed) before the call
/// as one record, and removed together with the outcomes after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    pub revision: u32,
    /// Unix seconds when the call began.
    pub started: u64,
    /// Each recipient's key and which attempt this is.
    pub recipients: Vec<(String, u32)>,
}

impl Intent {
    /// The records of this call's recipients as `status` (`uncertain` once recovered,
    /// `in_flight` while listed), with `reason`, updated at `updated`.
    pub fn records<'a>(
        &'a self,
        status: Status,
        reason: &'a str,
        updated: u64,
    ) -> impl Iterator<Item = (String, RecipientRecord)> + 'a {
        self.recipients.iter().map(move |(key, attempts)| {
            let record = RecipientRecord {
                status,
                attempts: *attempts,
                revision: self.revision,
                provider_id: None,
                reason: Some(reason.to_owned()),
                updated,
            };
            (key.clone(), record)
        })
    }
}

/// Counts of recipients by status.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCounts {
    pub sent: u64,
    pub failed: u64,
    pub uncertain: u64,
    pub in_flight: u64,
    #[serde(default)]
    pub expired: u64,
}

impl StatusCounts {
    pub(super) fn add(&mut self, status: Status) {
        *self.slot(status) += 1;
    }

    fn slot(&mut self, status: Status) -> &mut u64 {
        match status {
            Status::InFlight => &mut self.in_flight,
            Status::Sent => &mut self.sent,
            Status::Failed => &mut self.failed,
            Status::Uncertain => &mut self.uncertain,
            Status::Expired => &mut self.expired,
        }
    }

    /// Whether any message may have left for this campaign.
    pub fn began(&self) -> bool {
        self.sent + self.failed + self.uncertain + self.in_flight > 0
    }
}

/// What herald remembers about one campaign between runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CampaignRecord {
    /// The revision whose content is being sent.
    pub revision: u32,
    /// A digest per part of the content (subject, bodies, sender, each catalog file).
    pub fingerprint: BTreeMap<String, String>,
    pub stage: Option<Stage>,
    pub paused: bool,
    /// Why the safety gate stopped the campaign, while it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub halted: Option<String>,
    pub first_apply: Option<u64>,
    pub last_apply: Option<u64>,
    /// The git commit of the manifests at the last apply, when they are in a work tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitRevision>,
    /// How long the last run's provider calls took, for plan's estimate of the next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<CallLatency>,
    /// The transport could not take this campaign's calls when its last run ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub down: Option<TransportDown>,
    /// Under a schedule, when the next recipients become due (Unix seconds), as the
    /// last apply's plan found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_due: Option<u64>,
}

/// A transport that could not take calls: since when, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransportDown {
    pub transport: String,
    /// `network`, `tls`, `credentials`, `client`, `sender`, `busy` or `storage`.
    pub cause: String,
    /// What the last call that failed was told.
    pub reason: String,
    /// Unix seconds of the first failure in a row.
    pub since: u64,
}

/// The mean time of one provider call through `transport`, in the last run that made any.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallLatency {
    pub transport: String,
    pub seconds: f64,
}

/// Unix seconds now.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Unix seconds as an RFC 3339 UTC time, for people and JSON.
pub fn timestamp(seconds: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + std::time::Duration::from_secs(seconds))
        .to_string()
}
