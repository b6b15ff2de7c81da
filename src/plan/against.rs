//! A plan against a store seen from afar (`plan --against`): the store's counts, not its
//! addresses, so who of the audience is due cannot be known one by one.
//!
//! # Caveats
//! - `to_send` is an estimate: the recipients the stage reaches, less every recipient the
//!   store has an outcome for and every address its suppression list holds. Both are
//!   counted as if they were all in this audience, so the estimate is a lower bound: it is
//!   exact when the audience only grew and nobody on the store's list is in it, and too
//!   low by the outcomes of rows since removed and by the listed addresses that are not in
//!   the audience or were sent already. The calls and the duration scale with it.
//! - A correction (`revision: {number, resend: all}`) counts those the store has as sent
//!   or uncertain of an earlier revision as due again, as apply does one by one, and as
//!   if all of them were in this audience and reached by the stage.

use serde::Serialize;

use super::{CampaignPlan, Delivery};
use crate::manifest::{Resend, Stage};
use crate::store::CampaignSummary;

/// What the store seen from afar says of one campaign; beside its plan in `-o json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Live {
    /// Whether the store knows the campaign (else nothing was sent for it).
    pub known: bool,
    pub revision: u32,
    pub stage: Option<Stage>,
    /// Recipients the stage reaches by the audience alone, before the store's counts.
    pub reached: u64,
    /// Addresses on the store's suppression list (of every campaign).
    pub store_suppressed: u64,
}

/// Turns `plan`, made without a store, into the plan against `live` (`None`: the store
/// does not know the campaign) with `store_suppressed` addresses on the store's list.
pub fn against(
    plan: &mut CampaignPlan,
    live: Option<&CampaignSummary>,
    store_suppressed: u64,
    delivery: &Delivery,
) -> Live {
    let reached = plan.to_send;
    let (sent, failed, uncertain) =
        live.map_or((0, 0, 0), |l| (l.sent, l.failed, l.uncertain + l.in_flight));
    // Those a correction sends again keep no one from being sent.
    let again = match live {
        Some(live) if plan.revision.resend == Resend::All => live.earlier(plan.revision.number),
        _ => 0,
    };
    let expired = live.map_or(0, |l| l.expired);
    let done = (sent + failed + uncertain + expired).saturating_sub(again);
    let to_send = reached.saturating_sub(done + store_suppressed);
    let calls = if reached == 0 {
        0
    } else {
        // The calls packed for everyone reached, in proportion.
        let scaled = u128::from(plan.provider_calls) * u128::from(to_send);
        u64::try_from(scaled.div_ceil(u128::from(reached))).unwrap_or(u64::MAX)
    };
    let estimate = delivery.estimate(to_send, calls);
    plan.already_sent = sent;
    plan.failed = failed;
    plan.uncertain = uncertain;
    plan.expired = expired;
    plan.to_send = to_send;
    plan.resend = again.min(to_send);
    plan.provider_calls = calls;
    plan.duration_seconds = estimate.seconds;
    plan.binds = estimate.binds;
    plan.duration = delivery.describe(&estimate);
    Live {
        known: live.is_some(),
        revision: live.map_or(0, |l| l.revision),
        stage: live.and_then(|l| l.stage),
        reached,
        store_suppressed,
    }
}
