//! Planning: what apply would do now, computed by rendering every recipient first.
//!
//! # Guarantees
//! - Every unique, unsuppressed recipient's message is rendered (subject and bodies, in
//!   their locale, through every fallback) before a plan exists. One failing row fails the
//!   plan, so nothing is ever sent half-rendered.
//! - The audience is streamed: rows are screened one at a time and rendered in chunks on
//!   all cores; only the set of addresses seen is kept for the whole run.
//! - Canary membership is a hash of campaign name and address: the same people on every run.

mod against;
mod delivery;
mod duration;
mod error;
pub mod packing;
mod rollout;
mod select;
mod walk;

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::Serialize;

pub use against::{Live, against};
pub use delivery::{ASSUMED_LATENCY, Binds, Delivery, Estimate};
pub use duration::human_duration;
pub use error::{InvalidRow, PlanError};
pub use packing::Packer;
pub use rollout::{Again, Due, Rollout, StateView, due, in_canary};
pub use select::{Selected, Selection, select};
pub use walk::{CHUNK, Walked, row_label, walk};

use crate::audience::{Recipient, Tally};
use crate::manifest::Campaign;
use crate::manifest::{OnInvalid, Stage};
use crate::render::{Rendered, Renderer};
use crate::store::Status;

/// The plan of one campaign. Serialized as the `-o json` output; see docs/output.md.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignPlan {
    pub name: String,
    pub transport: String,
    pub stage: Stage,
    pub paused: bool,
    pub audience: Tally,
    /// Audience addresses each suppression list (or the state store) removed.
    pub suppressed_by: Vec<SuppressedBy>,
    /// Up to 20 invalid rows (skipped with `on_invalid: skip`).
    pub invalid_rows: Vec<InvalidRow>,
    /// Distinct `rollout.seed` addresses.
    pub seeds: u64,
    /// Audience recipients the state store already has as sent, failed or uncertain.
    pub already_sent: u64,
    pub failed: u64,
    pub uncertain: u64,
    /// Recipients the current stage reaches who are not sent yet: what apply sends now.
    pub to_send: u64,
    /// Per requested locale (the audience column; empty counts as the default).
    pub locales: Vec<LocalePlan>,
    /// Recipients whose message took at least one string from a fallback catalog.
    pub fallback_recipients: u64,
    pub batch_size: u32,
    /// The most recipients one call carries: `batch_size`, the provider's limit and one
    /// second's worth of the rate, whichever is least.
    pub call_size: usize,
    /// The calls apply will make now, recipients packed as apply packs them.
    pub provider_calls: u64,
    pub calls_in_flight: usize,
    /// One call's time: measured in the last run, or assumed (`latency_measured`).
    pub latency_seconds: f64,
    pub latency_measured: bool,
    pub rate_per_second: f64,
    pub duration_seconds: f64,
    /// What keeps it from going faster: `campaign_rate`, `transport_rate` or `calls`.
    pub binds: Binds,
    /// For people: "about 10 h 25 m at 50/s (the campaign's rate binds)".
    pub duration: String,
}

/// How many audience addresses one suppression source removed.
#[derive(Debug, Clone, Serialize)]
pub struct SuppressedBy {
    /// A list's path, as the manifest resolves it.
    pub source: String,
    pub recipients: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LocalePlan {
    pub locale: String,
    /// The catalog that answers first: the locale's own, its base language's, or the default.
    pub catalog: String,
    pub recipients: u64,
    /// Recipients of this locale whose message used a fallback string.
    pub fallbacks: u64,
    /// Keys this locale takes from a fallback catalog.
    pub fallback_keys: Vec<String>,
}

/// Screens the audience, renders every recipient, and counts what apply would do.
pub fn plan(
    campaign: &Campaign,
    state: Option<StateView<'_>>,
    delivery: &Delivery,
) -> Result<CampaignPlan, PlanError> {
    let renderer = Renderer::new(campaign)?;
    plan_with(campaign, &renderer, state, delivery, |_, _| {})
}

/// Like `plan`, also handing each rendered message to `sample` (used by preview).
pub fn plan_with(
    campaign: &Campaign,
    renderer: &Renderer,
    state: Option<StateView<'_>>,
    delivery: &Delivery,
    mut sample: impl FnMut(&Recipient, &Rendered),
) -> Result<CampaignPlan, PlanError> {
    let mut counts = Counts::default();
    // The calls apply will make: the same packing over the same recipients in order.
    let mut packer = Packer::new(delivery.call_size);
    let mut calls = Vec::new();
    let selection = select(campaign, state, |chunk| {
        let messages: Vec<Result<Rendered, _>> = chunk
            .par_iter()
            .map(|s| {
                let r = &s.recipient;
                renderer.render(&r.email, &r.record, &row_label(campaign, r))
            })
            .collect();
        for (selected, message) in chunk.iter().zip(messages) {
            let message = message?;
            counts.locale(&message);
            counts.add(selected.due);
            if selected.due == Due::Now {
                let key = packing::key(delivery.kind, &message);
                packer.push(key.as_deref(), (), &mut calls);
            }
            sample(&selected.recipient, &message);
        }
        Ok::<_, PlanError>(())
    })?;
    packer.finish(&mut calls);
    let walked = selection.walked;

    let tally = walked.tally;
    if tally.invalid > 0 && campaign.audience.on_invalid == OnInvalid::Refuse {
        return Err(PlanError::InvalidRows {
            file: campaign.audience.file.clone(),
            count: tally.invalid,
            rows: walked.invalid_rows,
        });
    }

    let to_send = counts.due;
    let provider_calls = calls.len() as u64;
    let estimate = delivery.estimate(to_send, provider_calls);
    Ok(CampaignPlan {
        name: campaign.name.clone(),
        transport: campaign.transport.name.clone(),
        stage: campaign.stage,
        paused: campaign.paused,
        audience: tally,
        suppressed_by: walked
            .suppressed_by
            .into_iter()
            .map(|(source, recipients)| SuppressedBy { source, recipients })
            .collect(),
        invalid_rows: walked.invalid_rows,
        seeds: selection.seeds,
        already_sent: counts.sent,
        failed: counts.failed,
        uncertain: counts.uncertain,
        to_send,
        locales: counts.locales(renderer),
        fallback_recipients: counts.locale.values().map(|l| l.fallbacks).sum(),
        batch_size: campaign.batch_size.get(),
        call_size: delivery.call_size,
        provider_calls,
        calls_in_flight: delivery.concurrency,
        latency_seconds: delivery.latency.as_secs_f64(),
        latency_measured: delivery.measured,
        rate_per_second: campaign.rate.per_second(),
        duration_seconds: estimate.seconds,
        binds: estimate.binds,
        duration: delivery.describe(&estimate),
    })
}

#[derive(Default)]
struct Counts {
    locale: BTreeMap<String, LocaleCount>,
    due: u64,
    sent: u64,
    failed: u64,
    uncertain: u64,
}

#[derive(Default)]
struct LocaleCount {
    catalog: String,
    recipients: u64,
    fallbacks: u64,
}

impl Counts {
    fn locale(&mut self, message: &Rendered) {
        let entry = self.locale.entry(message.locale.clone()).or_default();
        entry.recipients += 1;
        entry.fallbacks += u64::from(message.fallback);
        if entry.catalog.is_empty() {
            entry.catalog.clone_from(&message.catalog);
        }
    }

    fn add(&mut self, due: Due) {
        match due {
            Due::Later => {}
            Due::Now => self.due += 1,
            Due::Done(Status::Sent) => self.sent += 1,
            Due::Done(Status::Failed) => self.failed += 1,
            Due::Done(Status::Uncertain | Status::InFlight) => self.uncertain += 1,
        }
    }

    fn locales(&self, renderer: &Renderer) -> Vec<LocalePlan> {
        self.locale
            .iter()
            .map(|(locale, count)| LocalePlan {
                locale: locale.clone(),
                catalog: count.catalog.clone(),
                recipients: count.recipients,
                fallbacks: count.fallbacks,
                fallback_keys: renderer
                    .catalogs()
                    .resolve(locale)
                    .fallback_keys
                    .iter()
                    .cloned()
                    .collect(),
            })
            .collect()
    }
}
