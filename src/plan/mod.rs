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

use std::collections::{BTreeMap, HashSet};

use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

pub use duration::{describe_rate, human_duration};
pub use error::{InvalidRow, PlanError};

use crate::audience::{self, Recipient, Tally, Verdict};
use crate::manifest::Campaign;
use crate::manifest::model::{OnInvalid, Stage};
use crate::render::{Rendered, Renderer};

/// Recipients rendered together on the worker threads.
const CHUNK: usize = 4096;
/// Invalid rows listed by line; the rest are only counted.
const LISTED_INVALID: usize = 20;

/// The plan of one campaign. Serialized as the `-o json` output; see README.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignPlan {
    pub name: String,
    pub transport: String,
    pub stage: Stage,
    pub paused: bool,
    pub audience: Tally,
    /// Up to 20 invalid rows (skipped with `on_invalid: skip`).
    pub invalid_rows: Vec<InvalidRow>,
    /// Distinct `rollout.seed` addresses.
    pub seeds: u64,
    /// Recipients the current stage reaches.
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
pub fn plan(campaign: &Campaign) -> Result<CampaignPlan, PlanError> {
    let renderer = Renderer::new(campaign)?;
    plan_with(campaign, &renderer, |_, _| {})
}

/// Like `plan`, also handing each rendered message to `sample` (used by preview).
pub fn plan_with(
    campaign: &Campaign,
    renderer: &Renderer,
    mut sample: impl FnMut(&Recipient, &Rendered),
) -> Result<CampaignPlan, PlanError> {
    let spec = &campaign.spec;
    let suppressed = audience::load_suppressions(&spec.audience.suppress)?;
    let rollout = spec.rollout.clone().unwrap_or_default();
    // Suppression wins over everything, seeds included.
    let seeds: HashSet<String> = rollout
        .seed
        .iter()
        .map(|s| audience::normalize(s))
        .filter(|s| !suppressed.contains(s))
        .collect();
    let canary_share = rollout.canary_percent.unwrap_or(0.0) / 100.0;
    let screen = audience::Screen::new(&spec.audience.email_field, suppressed);

    // One thread reads and screens the audience while the render pool works on the
    // previous chunk; the bounded channel keeps at most a few chunks in memory.
    let mut counts = Counts::default();
    let file = spec.audience.file.display().to_string();
    let (screen, invalid_rows) = std::thread::scope(|scope| {
        let (chunks, received) = std::sync::mpsc::sync_channel(2);
        let screener = scope.spawn(move || screen_audience(&spec.audience.file, screen, &chunks));
        for chunk in received {
            render_chunk(renderer, &file, &chunk, &mut counts, &mut sample)?;
            count_stage(
                campaign,
                spec.stage,
                &seeds,
                canary_share,
                &chunk,
                &mut counts,
            );
        }
        screener
            .join()
            .expect("the screening thread does not panic")
    })?;

    let tally = screen.tally();
    if tally.invalid > 0 && spec.audience.on_invalid == OnInvalid::Refuse {
        return Err(PlanError::InvalidRows {
            file: spec.audience.file.clone(),
            count: tally.invalid,
            rows: invalid_rows,
        });
    }

    // Seeds outside the audience are recipients of their own, in every stage.
    let to_send = counts.stage + (seeds.len() as u64 - counts.seeds_in_audience);
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
        invalid_rows,
        seeds: seeds.len() as u64,
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
    stage: u64,
    seeds_in_audience: u64,
}

#[derive(Default)]
struct LocaleCount {
    catalog: String,
    recipients: u64,
    fallbacks: u64,
}

impl Counts {
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

/// Reads and screens every row, sending chunks of recipients to render. Stops early, and
/// quietly, when the receiver is gone because rendering failed.
fn screen_audience(
    file: &std::path::Path,
    mut screen: audience::Screen,
    chunks: &std::sync::mpsc::SyncSender<Vec<Recipient>>,
) -> Result<(audience::Screen, Vec<InvalidRow>), PlanError> {
    let mut invalid_rows = Vec::new();
    let mut chunk = Vec::with_capacity(CHUNK);
    for row in audience::rows(file)? {
        match screen.screen(row?) {
            Verdict::Send(recipient) => {
                chunk.push(recipient);
                if chunk.len() == CHUNK {
                    let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                    if chunks.send(full).is_err() {
                        return Ok((screen, invalid_rows));
                    }
                }
            }
            Verdict::Invalid { line, value } => {
                if invalid_rows.len() < LISTED_INVALID {
                    invalid_rows.push(InvalidRow { line, value });
                }
            }
            Verdict::Duplicate { .. } | Verdict::Suppressed => {}
        }
    }
    let _ = chunks.send(chunk);
    Ok((screen, invalid_rows))
}

/// Renders a chunk on all cores; the first failing row (in file order) fails the plan.
fn render_chunk(
    renderer: &Renderer,
    file: &str,
    chunk: &[Recipient],
    counts: &mut Counts,
    sample: &mut impl FnMut(&Recipient, &Rendered),
) -> Result<(), PlanError> {
    let messages: Vec<Result<Rendered, _>> = chunk
        .par_iter()
        .map(|r| renderer.render(&r.email, &r.record, &format_args!("{file}:{}", r.line)))
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

fn count_stage(
    campaign: &Campaign,
    stage: Stage,
    seeds: &HashSet<String>,
    canary_share: f64,
    chunk: &[Recipient],
    counts: &mut Counts,
) {
    for recipient in chunk {
        let key = audience::normalize(&recipient.email);
        let seed = seeds.contains(&key);
        counts.seeds_in_audience += u64::from(seed);
        let reached = match stage {
            Stage::Full => true,
            Stage::Canary => seed || in_canary(&campaign.name, &key, canary_share),
            Stage::Seed => seed,
        };
        counts.stage += u64::from(reached);
    }
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
