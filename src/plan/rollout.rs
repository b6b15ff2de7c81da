//! Who the current stage reaches, and who of them is due now given the state store.
//!
//! # Guarantees
//! - A recipient with an outcome is never due again, except: an uncertain one when
//!   `--resend-uncertain` is given, and, when the revision says `resend: all`, one who got
//!   (or may have got: uncertain) an earlier revision. Their new record is of this
//!   revision, so they are due once per revision, however often apply runs or crashes.
//! - An `expired` recipient is never due again under the same revision, whatever the
//!   schedule says now (moving `not_after` takes a revision bump, like changed content).

use std::collections::HashSet;

use sha2::{Digest, Sha256};

use crate::audience::{self, Suppressions};
use crate::manifest::Campaign;
use crate::manifest::Stage;
use crate::store::{CampaignStore, Status, StoreError};

/// The stage of a campaign and the people it reaches.
pub struct Rollout {
    campaign: String,
    stage: Stage,
    /// The campaign's revision, and whether it goes to those who got an earlier one.
    revision: u32,
    resend_all: bool,
    /// Normalised `rollout.seed` addresses, suppressed ones removed.
    seeds: HashSet<String>,
    canary_share: f64,
}

impl Rollout {
    /// Suppression wins over everything, seeds included.
    pub fn new(campaign: &Campaign, suppressed: &Suppressions) -> Self {
        let rollout = &campaign.rollout;
        Self {
            campaign: campaign.name.clone(),
            stage: campaign.stage,
            revision: campaign.revision.number,
            resend_all: campaign.revision.resends(),
            seeds: rollout
                .seed
                .iter()
                .map(|s| audience::normalize(s))
                .filter(|s| !suppressed.contains(s))
                .collect(),
            canary_share: rollout.canary_percent.unwrap_or(0.0) / 100.0,
        }
    }

    pub fn seeds(&self) -> impl Iterator<Item = &str> {
        self.seeds.iter().map(String::as_str)
    }

    /// Whether the current stage reaches the normalised address `key`.
    pub fn reaches(&self, key: &str) -> bool {
        let seed = self.seeds.contains(key);
        match self.stage {
            Stage::Full => true,
            Stage::Canary => seed || in_canary(&self.campaign, key, self.canary_share),
            Stage::Seed => seed,
        }
    }
}

/// What the state store says about sending to one recipient now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Not reached by the current stage, and never sent.
    Later,
    /// Due now: never sent (`None`), or sent again for what the store has for them:
    /// uncertain with `--resend-uncertain`, failed with `--retry-failed`, expired under an
    /// earlier revision.
    Now(Option<Status>),
    /// Due now again: got (or may have got) an earlier revision, and this one says
    /// `resend: all`. Holds what the store has for them.
    Again(Status),
    /// Already has an outcome (or an intent, which `Store::recover` turns into uncertain).
    Done(Status),
    /// Due but for the schedule: their window opens then (`None`: none opens before
    /// `not_after`, so they will expire).
    Waiting(Option<jiff::Timestamp>),
    /// Past `not_after` without an outcome: to be recorded `expired`.
    Expire,
}

/// Who is due again although the state store has an outcome for them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Again {
    /// `--resend-uncertain`: those whose delivery is uncertain.
    pub uncertain: bool,
    /// `--retry-failed[=MATCH]`: those recorded as failed whose reason contains MATCH
    /// (every one, when it is empty).
    pub failed: Option<String>,
}

impl Due {
    /// Whether apply sends to them now.
    pub fn is_now(self) -> bool {
        matches!(self, Self::Now(_) | Self::Again(_))
    }
}

/// The state store of a campaign as apply sees it.
#[derive(Clone, Copy)]
pub struct StateView<'a> {
    pub store: &'a CampaignStore,
    pub again: &'a Again,
}

/// Whether `key` is due now; without a state store, nothing was sent yet.
pub fn due(rollout: &Rollout, state: Option<StateView<'_>>, key: &str) -> Result<Due, StoreError> {
    let Some(view) = state else {
        return Ok(if rollout.reaches(key) {
            Due::Now(None)
        } else {
            Due::Later
        });
    };
    let standing = view.store.standing(key);
    let reached = |due: Due, status: Status| {
        if rollout.reaches(key) {
            due
        } else {
            Due::Done(status)
        }
    };
    Ok(match standing {
        // A correction: whoever got (or may have got) an earlier revision, once more.
        Some((status @ (Status::Sent | Status::Uncertain), revision))
            if rollout.resend_all && revision < rollout.revision =>
        {
            reached(Due::Again(status), status)
        }
        Some((Status::Uncertain, _)) if view.again.uncertain => {
            reached(Due::Now(Some(Status::Uncertain)), Status::Uncertain)
        }
        Some((Status::Failed, _)) if retry_failed(view, key)? => {
            reached(Due::Now(Some(Status::Failed)), Status::Failed)
        }
        // Expired under an earlier revision: a new revision may send them.
        Some((Status::Expired, revision)) if revision < rollout.revision => {
            reached(Due::Now(Some(Status::Expired)), Status::Expired)
        }
        Some((status, _)) => Due::Done(status),
        None if rollout.reaches(key) => Due::Now(None),
        None => Due::Later,
    })
}

/// Whether `--retry-failed[=MATCH]` sends the failed recipient `key` again.
fn retry_failed(view: StateView<'_>, key: &str) -> Result<bool, StoreError> {
    Ok(match view.again.failed.as_deref() {
        None => false,
        Some("") => true,
        Some(matching) => view
            .store
            .get(key)?
            .and_then(|record| record.reason)
            .is_some_and(|reason| reason.contains(matching)),
    })
}

/// Whether `address` falls in the canary sample: a stable hash, the same on every run.
pub fn in_canary(campaign: &str, address: &str, share: f64) -> bool {
    let digest = Sha256::new()
        .chain_update(campaign)
        .chain_update([0])
        .chain_update(address)
        .finalize();
    let bucket = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes")) % 1_000_000;
    #[allow(clippy::cast_precision_loss)]
    let position = bucket as f64 / 1_000_000.0;
    position < share
}

#[cfg(test)]
mod tests {
    use super::in_canary;

    #[test]
    fn canary_is_stable_and_close_to_its_share() {
        let addresses: Vec<String> = (0..20_000)
            .map(|i| format!("user{i}@example.com"))
            .collect();
        let pick = |share| {
            addresses
                .iter()
                .filter(|a| in_canary("launch", a, share))
                .count()
        };
        let five = pick(0.05);
        assert!((800..1200).contains(&five), "{five} of 20000 at 5%");
        assert_eq!(five, pick(0.05), "same people on every run");
        assert_eq!(pick(1.0), 20_000);
        let other_campaign = addresses
            .iter()
            .filter(|a| in_canary("other", a, 0.05))
            .count();
        assert_ne!(
            addresses
                .iter()
                .filter(|a| in_canary("launch", a, 0.05) && in_canary("other", a, 0.05))
                .count(),
            five.min(other_campaign),
            "campaigns sample different people"
        );
    }
}
