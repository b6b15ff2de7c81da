//! The declared rate as token buckets (governor): one per campaign, and one per transport
//! that declares `rate`, shared by every campaign sending through it.
//!
//! # Guarantees
//! - A bucket refills at its rate and holds one second's worth of tokens (at least one).
//!   A call draws a token per recipient before it starts, and so does every retry, and no
//!   call is larger than a bucket (`packing::call_size`). So across every call, retry and
//!   call in flight, the messages accepted in any window of W seconds stay under
//!   `rate * W + max(1, rate)`.
//! - Waiting for tokens or for a backoff ends at once when stopping is asked for.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use super::Stop;
use crate::manifest::Manifests;

/// A bucket refilled at a rate, holding one second's worth; `None` when the rate is too
/// high to limit anything (governor counts in nanoseconds).
pub struct Bucket(Option<DefaultDirectRateLimiter>);

impl Bucket {
    pub fn new(per_second: f64) -> Self {
        let period = Duration::from_secs_f64(1.0 / per_second);
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let second = per_second.floor().clamp(1.0, f64::from(u32::MAX)) as u32;
        let burst = NonZeroU32::new(second).unwrap_or(NonZeroU32::MIN);
        Self(Quota::with_period(period).map(|q| RateLimiter::direct(q.allow_burst(burst))))
    }

    /// Waits until `n` tokens are there and takes them. A call never needs more than a
    /// bucket holds; should it, it waits for a full bucket instead of failing.
    async fn take(&self, n: NonZeroU32) {
        let Some(limiter) = &self.0 else { return };
        if limiter.until_n_ready(n).await.is_err() {
            let _ = limiter.until_n_ready(NonZeroU32::MIN).await;
        }
    }
}

/// The shared buckets of transports that declare a rate, by transport name.
#[derive(Clone, Default)]
pub struct TransportLimits {
    buckets: HashMap<String, (f64, Arc<Bucket>)>,
}

impl TransportLimits {
    /// Buckets for `manifests`, keeping those of `previous` whose rate is unchanged (so
    /// that watch does not hand out fresh tokens on every reload).
    pub fn new(manifests: &Manifests, previous: &Self) -> Self {
        let mut buckets = HashMap::new();
        for transport in &manifests.transports {
            let Some(rate) = transport
                .rate
                .as_ref()
                .map(crate::manifest::Rate::per_second)
            else {
                continue;
            };
            let bucket = match previous.buckets.get(&transport.name) {
                Some((r, bucket)) if (*r - rate).abs() < f64::EPSILON => Arc::clone(bucket),
                _ => Arc::new(Bucket::new(rate)),
            };
            buckets.insert(transport.name.clone(), (rate, bucket));
        }
        Self { buckets }
    }

    /// Buckets for `manifests` when `shards` processes share each transport: each gets
    /// its share of the transport's rate (divided, not rounded), so that together they
    /// keep to it.
    pub fn shared(manifests: &Manifests, shards: NonZeroU32) -> Self {
        let mut limits = Self::new(manifests, &Self::default());
        if shards.get() > 1 {
            for (rate, bucket) in limits.buckets.values_mut() {
                *rate /= f64::from(shards.get());
                *bucket = Arc::new(Bucket::new(*rate));
            }
        }
        limits
    }

    pub fn get(&self, transport: &str) -> Option<Arc<Bucket>> {
        self.buckets.get(transport).map(|(_, b)| Arc::clone(b))
    }
}

/// The buckets one campaign draws from, and the stop request that cuts any wait short.
#[derive(Clone)]
pub struct Pacer {
    buckets: Vec<Arc<Bucket>>,
    stop: Stop,
}

impl Pacer {
    pub fn new(campaign: Bucket, transport: Option<Arc<Bucket>>, stop: Stop) -> Self {
        let mut buckets = vec![Arc::new(campaign)];
        buckets.extend(transport);
        Self { buckets, stop }
    }

    /// Waits until every bucket gave `n` tokens; `false` when a stop came first.
    pub async fn ready(&self, n: usize) -> bool {
        let n = NonZeroU32::new(u32::try_from(n).unwrap_or(u32::MAX)).unwrap_or(NonZeroU32::MIN);
        let mut stop = self.stop.clone();
        let ready = async {
            for bucket in &self.buckets {
                bucket.take(n).await;
            }
        };
        tokio::select! {
            () = ready => !self.stop.is_set(),
            () = stop.wait() => false,
        }
    }

    /// Sleeps for `delay`; `false` when a stop came first.
    pub async fn sleep(&self, delay: Duration) -> bool {
        let mut stop = self.stop.clone();
        tokio::select! {
            () = tokio::time::sleep(delay) => true,
            () = stop.wait() => false,
        }
    }
}
