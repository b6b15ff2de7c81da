//! Rate ceilings as token buckets (governor): one per campaign, and one per transport
//! that declares `rate`, shared by every campaign sending through it.
//!
//! A bucket refills at the rate and holds at most one batch, and a batch is sent only once
//! it holds a token per message: in any window of W seconds at most `rate * W + batch`
//! messages pass.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::manifest::{Manifests, per_second};

pub type Limiter = DefaultDirectRateLimiter;

/// A bucket refilled at `rate` messages per second holding at most `burst`.
pub fn limiter(rate: f64, burst: u32) -> Limiter {
    let period = Duration::from_secs_f64(1.0 / rate);
    let burst = NonZeroU32::new(burst).expect("validated: batch.size is at least 1");
    RateLimiter::direct(
        Quota::with_period(period)
            .expect("validated: the rate is positive")
            .allow_burst(burst),
    )
}

/// The shared buckets of transports that declare a rate, by transport name.
#[derive(Clone, Default)]
pub struct TransportLimits {
    buckets: HashMap<String, (f64, u32, Arc<Limiter>)>,
}

impl TransportLimits {
    /// Buckets for `manifests`, keeping those of `previous` whose rate and burst are unchanged
    /// (so that watch does not hand out fresh tokens on every reload).
    pub fn new(manifests: &Manifests, previous: &Self) -> Self {
        let mut buckets = HashMap::new();
        for transport in &manifests.transports {
            let Some(rate) = transport.spec.rate else {
                continue;
            };
            let rate = per_second(rate);
            // The largest batch of any campaign using it, so every batch fits the bucket.
            let burst = manifests
                .campaigns
                .iter()
                .filter(|c| c.spec.transport == transport.name)
                .map(|c| c.batch_size)
                .max()
                .unwrap_or(1);
            let bucket = match previous.buckets.get(&transport.name) {
                Some((r, b, bucket)) if (*r - rate).abs() < f64::EPSILON && *b == burst => {
                    Arc::clone(bucket)
                }
                _ => Arc::new(limiter(rate, burst)),
            };
            buckets.insert(transport.name.clone(), (rate, burst, bucket));
        }
        Self { buckets }
    }

    pub fn get(&self, transport: &str) -> Option<Arc<Limiter>> {
        self.buckets.get(transport).map(|(_, _, b)| Arc::clone(b))
    }
}
