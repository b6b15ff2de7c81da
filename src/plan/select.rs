//! Who a campaign reaches, and who of them is due now: the one walk that plan (which
//! renders and counts everyone) and apply (which sends to those due) share.

use std::collections::BTreeMap;

use jiff::Timestamp;

use super::schedule::{Judged, Timing};
use super::{PlanError, Rollout, StateView, Walked, due, walk};
use crate::audience::{self, Met, Recipient, Suppressions};
use crate::manifest::Campaign;
use crate::plan::Due;

/// One recipient, their key in the state store, and whether they are due now.
pub struct Selected {
    pub recipient: Recipient,
    pub key: String,
    pub due: Due,
    /// Under a schedule: until when they may be sent, and their zone.
    pub judged: Option<Judged>,
}

/// What the walk found, besides the recipients it handed over.
pub struct Selection<'a> {
    pub walked: Walked,
    /// Distinct `rollout.seed` addresses (suppressed ones left out).
    pub seeds: u64,
    /// The schedule's judge, with the zones it met.
    pub timing: Option<Timing<'a>>,
}

/// Walks the audience (suppression lists and rollout applied, seeds outside the audience
/// added; under `campaign.shard`, only the addresses that shard owns) and calls `each` with chunks of recipients in file order and their due status.
/// `met` keeps the addresses met, to tell duplicate rows (`None`: a set of the walk's
/// own). Under a schedule, who is due is judged as of `at`.
pub fn select<'a, E: From<PlanError>>(
    campaign: &'a Campaign,
    state: Option<StateView<'_>>,
    met: Option<Box<dyn Met>>,
    at: Timestamp,
    mut each: impl FnMut(Vec<Selected>) -> Result<(), E>,
) -> Result<Selection<'a>, E> {
    let suppressions = Suppressions::load(&campaign.audience.suppress).map_err(PlanError::from)?;
    let rollout = Rollout::new(campaign, &suppressions);
    let email_field = &campaign.audience.email_field;
    let screen = match met {
        Some(met) => audience::Screen::meeting(email_field, suppressions, met),
        None => audience::Screen::new(email_field, suppressions),
    }
    .only(campaign.shard);
    // The store's own list (unsubscribes, bounces, complaints) holds for every campaign.
    let stored = state.map(|s| s.store.suppressions()).unwrap_or_default();
    let mut by_reason: BTreeMap<String, u64> = BTreeMap::new();
    let mut timing = campaign.schedule.as_ref().map(|s| Timing::new(s, at));
    let mut walked = walk(campaign, screen, &rollout, |chunk| {
        let selected = chunk
            .into_iter()
            .filter_map(|recipient| {
                let key = audience::normalize(&recipient.email);
                // Another shard's (a seed; the screen left the audience's to their shards).
                if campaign.shard.is_some_and(|shard| !shard.owns(&key)) {
                    return None;
                }
                if let Some(suppression) = stored.get(&key) {
                    *by_reason.entry(suppression.reason.clone()).or_default() += 1;
                    return None;
                }
                Some(
                    due(&rollout, state, &key)
                        .map_err(PlanError::from)
                        .map(|due| {
                            let judged = timing.as_mut().map(|t| t.judge(&recipient, due));
                            Selected {
                                due: judged.map_or(due, |j| j.due),
                                recipient,
                                key,
                                judged,
                            }
                        }),
                )
            })
            .collect::<Result<Vec<_>, PlanError>>()?;
        each(selected)
    })?;
    for (reason, recipients) in by_reason {
        walked.tally.suppressed += recipients;
        walked
            .suppressed_by
            .push((format!("state store ({reason})"), recipients));
    }
    Ok(Selection {
        walked,
        seeds: rollout.seeds().count() as u64,
        timing,
    })
}
