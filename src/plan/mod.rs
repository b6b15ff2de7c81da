//! Planning: what apply would do now, computed by rendering every recipient first.
//!
//! # Guarantees
//! - Every unique, unsuppressed recipient's message is rendered (subject and bodies, in
//!   their locale, through every fallback) before a plan exists. One failing row fails the
//!   plan, so nothing is ever sent half-rendered.
//! - The audience is streamed: rows are screened one at a time and rendered in chunks on
//!   all cores; only the set of addresses seen is kept for the whole run.
//! - Canary membership is a hash of campaign name and address: the same people on every run.

mod duration;
mod error;
mod rollout;
mod walk;

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::Serialize;

pub use duration::{describe_rate, human_duration};
pub use error::{InvalidRow, PlanError};
pub use rollout::{Due, Rollout, StateView, due, in_canary};
pub use walk::{CHUNK, Walked, row_label, walk};

use crate::audience::{self, Recipient, Suppressions, Tally};
use crate::manifest::Campaign;
use crate::manifest::model::{OnInvalid, Stage};
use crate::render::{Rendered, Renderer};
use crate::store::Status;

/// The plan of one campaign. Serialized as the `-o json` output; see README.
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
    pub provider_calls: u64,
    pub rate_per_second: f64,
    pub duration_seconds: f64,
    /// For people: "about 10 h 25 m at 50/s".
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
pub fn plan(campaign: &Campaign, state: Option<StateView<'_>>) -> Result<CampaignPlan, PlanError> {
    let renderer = Renderer::new(campaign)?;
    plan_with(campaign, &renderer, state, |_, _| {})
}

/// Like `plan`, also handing each rendered message to `sample` (used by preview).
pub fn plan_with(
    campaign: &Campaign,
    renderer: &Renderer,
    state: Option<StateView<'_>>,
    mut sample: impl FnMut(&Recipient, &Rendered),
) -> Result<CampaignPlan, PlanError> {
    let spec = &campaign.spec;
    let suppressions = Suppressions::load(&spec.audience.suppress)?;
    let rollout = Rollout::new(campaign, &suppressions);
    let mut counts = Counts::default();
    let screen = audience::Screen::new(&spec.audience.email_field, suppressions);
    let walked = walk(campaign, screen, &rollout, |chunk| {
        render_chunk(campaign, renderer, &chunk, &mut counts, &mut sample)?;
        for recipient in &chunk {
            let key = audience::normalize(&recipient.email);
            counts.add(due(&rollout, state, &key)?);
        }
        Ok::<_, PlanError>(())
    })?;

    let tally = walked.tally;
    if tally.invalid > 0 && spec.audience.on_invalid == OnInvalid::Refuse {
        return Err(PlanError::InvalidRows {
            file: spec.audience.file.clone(),
            count: tally.invalid,
            rows: walked.invalid_rows,
        });
    }

    let to_send = counts.due;
    let provider_calls = to_send.div_ceil(u64::from(campaign.batch_size));
    #[allow(clippy::cast_precision_loss)]
    let duration_seconds = to_send as f64 / campaign.rate;
    let rate = spec
        .rate
        .expect("validated: every campaign declares a rate");
    Ok(CampaignPlan {
        name: campaign.name.clone(),
        transport: spec.transport.clone(),
        stage: spec.stage,
        paused: spec.paused,
        audience: tally,
        suppressed_by: walked
            .suppressed_by
            .into_iter()
            .map(|(source, recipients)| SuppressedBy { source, recipients })
            .collect(),
        invalid_rows: walked.invalid_rows,
        seeds: rollout.seeds().count() as u64,
        already_sent: counts.sent,
        failed: counts.failed,
        uncertain: counts.uncertain,
        to_send,
        locales: counts.locales(renderer),
        fallback_recipients: counts.locale.values().map(|l| l.fallbacks).sum(),
        batch_size: campaign.batch_size,
        provider_calls,
        rate_per_second: campaign.rate,
        duration_seconds,
        duration: format!(
            "{} at {}",
            human_duration(duration_seconds),
            describe_rate(rate)
        ),
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

/// Renders a chunk on all cores; the first failing row (in file order) fails the plan.
fn render_chunk(
    campaign: &Campaign,
    renderer: &Renderer,
    chunk: &[Recipient],
    counts: &mut Counts,
    sample: &mut impl FnMut(&Recipient, &Rendered),
) -> Result<(), PlanError> {
    let messages: Vec<Result<Rendered, _>> = chunk
        .par_iter()
        .map(|r| renderer.render(&r.email, &r.record, &row_label(campaign, r)))
        .collect();
    for (recipient, result) in chunk.iter().zip(messages) {
        let message = result?;
        let entry = counts.locale.entry(message.locale.clone()).or_default();
        entry.recipients += 1;
        entry.fallbacks += u64::from(message.fallback);
        if entry.catalog.is_empty() {
            entry.catalog.clone_from(&message.catalog);
        }
        sample(recipient, &message);
    }
    Ok(())
}
