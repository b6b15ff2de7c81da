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
mod schedule;
mod select;
mod shards;
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
pub use schedule::{Forecast, Judged, SchedulePlan, Timing};
pub use select::{Selected, Selection, select};
pub use shards::{ShardPlan, combine};
pub use walk::{CHUNK, Walked, row_label, walk};

use crate::audience::{Recipient, Tally};
use crate::manifest::Campaign;
use crate::manifest::{OnInvalid, OnUnknown, Resend, Stage};
use crate::render::{Reached, Rendered, Renderer};
use crate::store::Status;
use crate::text::{Count, Thousands};

/// The plan of one campaign. Serialized as the `-o json` output; see docs/output.md.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignPlan {
    pub name: String,
    pub transport: String,
    /// The revision apply would send, and whether it goes to those who got an earlier one.
    pub revision: PlanRevision,
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
    /// Recorded `expired`: not sent by `not_after`.
    pub expired: u64,
    /// Past `not_after` now, without an outcome: apply records them `expired`.
    pub expiring: u64,
    /// Recipients the current stage reaches who are not sent yet: what apply sends now.
    pub to_send: u64,
    /// Of `to_send`, those who got an earlier revision (`resend: all`).
    pub resend: u64,
    /// Per locale value (the audience column; empty counts as the default), as a tag in
    /// the registry's spelling, or as written when mapped or unknown.
    pub locales: Vec<LocalePlan>,
    /// Per catalog: how many recipients get it.
    pub catalogs: Vec<CatalogPlan>,
    /// Recipients who get the default catalog for want of one of their own: a language
    /// without a catalog, or (with `locales.on_unknown: default`) a value that is none.
    pub defaulted: Defaulted,
    /// Values neither in `locales.map` nor a language tag, with `on_unknown: default`.
    pub unknown_locales: Vec<UnknownLocale>,
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
    /// Under `spec.schedule`: due now, next due, when it ends, how many would expire.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<SchedulePlan>,
    /// Under `spec.shards`: each shard's counts and duration, which the totals above add up.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<ShardPlan>,
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
    /// How the value reached it: `catalog`, `map`, `empty`, `no_catalog` or `unknown`.
    pub reached: Reached,
    pub recipients: u64,
    /// Recipients of this locale whose message used a fallback string.
    pub fallbacks: u64,
    /// Keys this locale takes from a fallback catalog.
    pub fallback_keys: Vec<String>,
}

impl CampaignPlan {
    /// The locale values that chose `catalog`, the most recipients first (then by name).
    pub fn values_of(&self, catalog: &str) -> Vec<&LocalePlan> {
        let mut values: Vec<&LocalePlan> = self
            .locales
            .iter()
            .filter(|l| l.catalog == catalog)
            .collect();
        values.sort_by(|a, b| {
            b.recipients
                .cmp(&a.recipients)
                .then(a.locale.cmp(&b.locale))
        });
        values
    }

    /// The locale values that got the default for want of a catalog of their own.
    pub fn defaulted_values(&self) -> impl Iterator<Item = &LocalePlan> {
        self.locales.iter().filter(|l| l.reached.defaulted())
    }
}

impl LocalePlan {
    /// How a table names this value: `empty` for rows without one, and how it reached its
    /// catalog when not by a catalog of its name (` (map)`, ` (no catalog)`, ` (unknown)`).
    pub fn label(&self) -> (&str, &'static str) {
        let name = if self.reached == Reached::Empty {
            "empty"
        } else {
            &self.locale
        };
        let how = match self.reached {
            Reached::Map => " (map)",
            Reached::NoCatalog => " (no catalog)",
            Reached::Unknown => " (unknown)",
            Reached::Catalog | Reached::Empty => "",
        };
        (name, how)
    }
}

/// `spec.revision`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PlanRevision {
    pub number: u32,
    /// `all` or `none`.
    pub resend: Resend,
}

/// How many recipients get one catalog.
#[derive(Debug, Clone, Serialize)]
pub struct CatalogPlan {
    pub catalog: String,
    pub recipients: u64,
}

/// Recipients who get the default catalog for want of one of their own.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Defaulted {
    /// The default catalog.
    pub catalog: String,
    /// `no_catalog` and `unknown` together.
    pub recipients: u64,
    /// Of every recipient planned, 0 to 1.
    pub share: f64,
    /// Their value is a language tag, but no catalog is on its chain.
    pub no_catalog: u64,
    /// Their value is neither in `locales.map` nor a language tag.
    pub unknown: u64,
}

impl Defaulted {
    /// Above this share, plan and apply warn.
    pub const WARN_SHARE: f64 = 0.01;
}

/// A locale value that is neither in `locales.map` nor a language tag.
#[derive(Debug, Clone, Serialize)]
pub struct UnknownLocale {
    pub value: String,
    pub recipients: u64,
    /// The audience line of the first recipient with it.
    pub first_line: u64,
}

impl CampaignPlan {
    /// What people should know before sending: too many recipients in the default
    /// language for want of their own.
    pub fn warnings(&self) -> Vec<String> {
        let d = &self.defaulted;
        if d.share <= Defaulted::WARN_SHARE {
            return Vec::new();
        }
        let values: Vec<String> = self
            .locales
            .iter()
            .filter(|l| l.reached.defaulted())
            .map(|l| format!("{} {}", l.locale, Thousands(l.recipients)))
            .collect();
        vec![format!(
            "{} ({:.1}%) get `{}`, the default, for want of a catalog of their own ({}); add catalogs, or map their values in `locales.map`",
            Count("recipient", d.recipients),
            d.share * 100.0,
            d.catalog,
            crate::text::List::and(&values),
        )]
    }
}

/// Screens the audience, renders every recipient, and counts what apply would do at
/// `at` (under a schedule, who is due depends on it).
pub fn plan(
    campaign: &Campaign,
    state: Option<StateView<'_>>,
    delivery: &Delivery,
    at: jiff::Timestamp,
) -> Result<CampaignPlan, PlanError> {
    let renderer = Renderer::new(campaign)?;
    plan_with(campaign, &renderer, state, delivery, at, None)
}

/// What the plan keeps of one recipient's rendered message: where its locale led and what
/// it packs under (the message itself only for `sample`).
struct Kept {
    locale: Reaching,
    /// Whether the recipient is due now, and then the key of the calls it may share
    /// (`packing::key`).
    due_now: bool,
    key: Option<String>,
    message: Option<Rendered>,
}

/// Where a recipient's locale value led: what the plan counts per locale.
struct Reaching {
    locale: String,
    reached: Reached,
    catalog: String,
    fallback: bool,
}

impl Reaching {
    fn of(message: &Rendered) -> Self {
        Self {
            locale: message.locale.clone(),
            reached: message.reached,
            catalog: message.catalog.clone(),
            fallback: message.fallback,
        }
    }
}

/// What is handed each rendered message, when one is wanted.
pub type Sample<'a> = &'a mut dyn FnMut(&Recipient, &Rendered);

/// Like `plan`, also handing each rendered message to `sample` (used by preview); without
/// one, each message is dropped as soon as it is counted.
pub fn plan_with(
    campaign: &Campaign,
    renderer: &Renderer,
    state: Option<StateView<'_>>,
    delivery: &Delivery,
    at: jiff::Timestamp,
    mut sample: Option<Sample<'_>>,
) -> Result<CampaignPlan, PlanError> {
    let mut counts = Counts::default();
    let mut forecast = Forecast::new(at);
    // The calls apply will make: the same packing over the same recipients in order.
    let mut packer = Packer::new(delivery.call_size);
    let mut calls = Vec::new();
    let keep = sample.is_some();
    let selection = select(campaign, state, None, at, |chunk| {
        let kept: Vec<Result<Kept, _>> = chunk
            .par_iter()
            .map(|s| {
                let r = &s.recipient;
                let message = renderer.render(&r.email, &r.record, &row_label(campaign, r))?;
                let due_now = s.due.is_now();
                Ok::<_, PlanError>(Kept {
                    locale: Reaching::of(&message),
                    due_now,
                    key: due_now
                        .then(|| packing::key(delivery.kind, &message))
                        .flatten(),
                    message: keep.then_some(message),
                })
            })
            .collect();
        for (selected, kept) in chunk.iter().zip(kept) {
            let kept = kept?;
            counts.locale(kept.locale, selected.recipient.line);
            counts.add(selected.due);
            if let Some(judged) = selected.judged {
                forecast.add(judged);
            }
            if kept.due_now {
                packer.push(kept.key.as_deref(), (), &mut calls);
            }
            if let (Some(sample), Some(message)) = (sample.as_mut(), &kept.message) {
                sample(&selected.recipient, message);
            }
        }
        Ok::<_, PlanError>(())
    })?;
    packer.finish(&mut calls);
    let schedule = selection
        .timing
        .as_ref()
        .map(|timing| forecast.finish(timing, delivery.rate_per_second()));
    let walked = selection.walked;
    let tally = walked.tally;
    let walked = refusals(campaign, renderer, walked, &counts)?;

    let to_send = counts.due;
    let provider_calls = calls.len() as u64;
    let estimate = delivery.estimate(to_send, provider_calls);
    Ok(CampaignPlan {
        name: campaign.name.clone(),
        transport: campaign.transport.name.clone(),
        revision: PlanRevision {
            number: campaign.revision.number,
            resend: campaign.revision.resend,
        },
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
        expired: counts.expired,
        expiring: counts.expire,
        to_send,
        resend: counts.again,
        locales: counts.locales(renderer),
        catalogs: counts.catalogs(),
        defaulted: counts.defaulted(renderer),
        unknown_locales: counts.unknown(),
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
        schedule,
        shards: Vec::new(),
    })
}

/// Refuses invalid rows and unknown locale values where the campaign says so; hands the
/// walk back otherwise.
fn refusals(
    campaign: &Campaign,
    renderer: &Renderer,
    walked: Walked,
    counts: &Counts,
) -> Result<Walked, PlanError> {
    let tally = walked.tally;
    if tally.invalid > 0 && campaign.audience.on_invalid == OnInvalid::Refuse {
        return Err(PlanError::InvalidRows {
            file: campaign.audience.file.clone(),
            count: tally.invalid,
            rows: walked.invalid_rows,
        });
    }
    let unknown = counts.unknown();
    if !unknown.is_empty() && campaign.locales.on_unknown == OnUnknown::Refuse {
        return Err(PlanError::UnknownLocales {
            file: campaign.audience.file.clone(),
            field: campaign.locales.field.clone(),
            default: renderer.catalogs().default_locale().to_owned(),
            values: unknown,
        });
    }
    Ok(walked)
}

#[derive(Default)]
struct Counts {
    /// By value as shown and how it reached its catalog (`en` written, and empty, apart).
    locale: BTreeMap<(String, Reached), LocaleCount>,
    due: u64,
    /// Of `due`, those who got an earlier revision.
    again: u64,
    sent: u64,
    failed: u64,
    uncertain: u64,
    /// Recorded `expired` already; and past `not_after` now, to be recorded so.
    expired: u64,
    expire: u64,
}

struct LocaleCount {
    catalog: String,
    reached: Reached,
    recipients: u64,
    fallbacks: u64,
    first_line: u64,
}

impl Counts {
    fn locale(&mut self, reaching: Reaching, line: u64) {
        let Reaching {
            locale,
            reached,
            catalog,
            fallback,
        } = reaching;
        let key = (locale, reached);
        if let Some(entry) = self.locale.get_mut(&key) {
            entry.recipients += 1;
            entry.fallbacks += u64::from(fallback);
            return;
        }
        self.locale.insert(
            key,
            LocaleCount {
                catalog,
                reached,
                recipients: 1,
                fallbacks: u64::from(fallback),
                first_line: line,
            },
        );
    }

    fn catalogs(&self) -> Vec<CatalogPlan> {
        let mut catalogs: BTreeMap<&str, u64> = BTreeMap::new();
        for count in self.locale.values() {
            *catalogs.entry(&count.catalog).or_default() += count.recipients;
        }
        catalogs
            .into_iter()
            .map(|(catalog, recipients)| CatalogPlan {
                catalog: catalog.to_owned(),
                recipients,
            })
            .collect()
    }

    fn defaulted(&self, renderer: &Renderer) -> Defaulted {
        let of = |reached| {
            self.locale
                .values()
                .filter(|c| c.reached == reached)
                .map(|c| c.recipients)
                .sum::<u64>()
        };
        let (no_catalog, unknown) = (of(Reached::NoCatalog), of(Reached::Unknown));
        let total: u64 = self.locale.values().map(|c| c.recipients).sum();
        #[allow(clippy::cast_precision_loss, reason = "a share for people")]
        let share = if total == 0 {
            0.0
        } else {
            (no_catalog + unknown) as f64 / total as f64
        };
        Defaulted {
            catalog: renderer.catalogs().default_locale().to_owned(),
            recipients: no_catalog + unknown,
            share,
            no_catalog,
            unknown,
        }
    }

    /// Values neither mapped nor tags, the most frequent first.
    fn unknown(&self) -> Vec<UnknownLocale> {
        let mut unknown: Vec<UnknownLocale> = self
            .locale
            .iter()
            .filter(|(_, c)| c.reached == Reached::Unknown)
            .map(|((value, _), c)| UnknownLocale {
                value: value.clone(),
                recipients: c.recipients,
                first_line: c.first_line,
            })
            .collect();
        unknown.sort_by(|a, b| {
            b.recipients
                .cmp(&a.recipients)
                .then(a.first_line.cmp(&b.first_line))
        });
        unknown
    }

    fn add(&mut self, due: Due) {
        match due {
            Due::Later | Due::Waiting(_) => {}
            Due::Expire => self.expire += 1,
            Due::Now(_) => self.due += 1,
            Due::Again(_) => {
                self.due += 1;
                self.again += 1;
            }
            Due::Done(Status::Sent) => self.sent += 1,
            Due::Done(Status::Failed) => self.failed += 1,
            Due::Done(Status::Uncertain | Status::InFlight) => self.uncertain += 1,
            Due::Done(Status::Expired) => self.expired += 1,
        }
    }

    fn locales(&self, renderer: &Renderer) -> Vec<LocalePlan> {
        self.locale
            .iter()
            .map(|((locale, _), count)| LocalePlan {
                locale: locale.clone(),
                catalog: count.catalog.clone(),
                reached: count.reached,
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
