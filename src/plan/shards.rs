//! Plans of a sharded campaign: each shard's counts and duration, and the campaign's
//! totals made of them.
//!
//! # Guarantees
//! - Shards partition the audience, so the totals of what depends on the store (sent,
//!   failed, uncertain, expired, to send, calls) are the sums of the shards' and equal what
//!   one process would count; what does not (audience, locales) is the whole plan's own.
//! - Shards send at once, each at its share of the rate: the campaign takes as long as
//!   its slowest shard.

use serde::Serialize;

use super::CampaignPlan;
use crate::audience::Shard;

/// One shard in a plan; `-o json`'s `shards` array.
#[derive(Debug, Clone, Serialize)]
pub struct ShardPlan {
    pub shard: u32,
    pub shards: u32,
    /// Recipients this shard owns (the audience's and seeds), whatever their state.
    pub recipients: u64,
    pub already_sent: u64,
    pub failed: u64,
    pub uncertain: u64,
    pub expired: u64,
    pub to_send: u64,
    pub provider_calls: u64,
    /// Its share of the campaign's rate.
    pub rate_per_second: f64,
    pub duration_seconds: f64,
    pub duration: String,
}

impl ShardPlan {
    pub fn of(shard: Shard, plan: &CampaignPlan) -> Self {
        Self {
            shard: shard.index,
            shards: shard.count.get(),
            recipients: plan.locales.iter().map(|l| l.recipients).sum(),
            already_sent: plan.already_sent,
            failed: plan.failed,
            uncertain: plan.uncertain,
            expired: plan.expired,
            to_send: plan.to_send,
            provider_calls: plan.provider_calls,
            rate_per_second: plan.rate_per_second,
            duration_seconds: plan.duration_seconds,
            duration: plan.duration.clone(),
        }
    }
}

/// The campaign's plan made of its shards' `parts`: `whole` is the plan of everyone
/// (audience, locales, rate), its store-dependent counts replaced by the sums of the
/// shards' and its duration by the slowest shard's.
pub fn combine(whole: &mut CampaignPlan, parts: &[(Shard, CampaignPlan)]) {
    whole.already_sent = parts.iter().map(|(_, p)| p.already_sent).sum();
    whole.failed = parts.iter().map(|(_, p)| p.failed).sum();
    whole.uncertain = parts.iter().map(|(_, p)| p.uncertain).sum();
    whole.expired = parts.iter().map(|(_, p)| p.expired).sum();
    whole.expiring = parts.iter().map(|(_, p)| p.expiring).sum();
    whole.to_send = parts.iter().map(|(_, p)| p.to_send).sum();
    whole.resend = parts.iter().map(|(_, p)| p.resend).sum();
    whole.provider_calls = parts.iter().map(|(_, p)| p.provider_calls).sum();
    if let Some((_, slowest)) = parts
        .iter()
        .max_by(|(_, a), (_, b)| a.duration_seconds.total_cmp(&b.duration_seconds))
    {
        whole.duration_seconds = slowest.duration_seconds;
        whole.duration = format!(
            "{} ({} shards at once, the slowest)",
            slowest.duration,
            parts.len()
        );
        whole.binds = slowest.binds;
    }
    whole.shards = parts.iter().map(|(s, p)| ShardPlan::of(*s, p)).collect();
}
