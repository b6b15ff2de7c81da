//! One provider call, from intent to outcomes.
//!
//! # Guarantees
//! - The call's recipients are checked (one address each, nobody twice) before anything is
//!   recorded; a failing call is refused whole.
//! - Its intent is recorded and flushed before the transport is handed the call; the
//!   outcomes replace the intent in one atomic write after. A crash in between leaves
//!   exactly this call's recipients `uncertain`.
//! - A retryable answer waits (as the provider says, or backing off) and draws tokens again
//!   before the retry; after `MAX_TRIES` it counts as failed. A stop request during the
//!   wait, or refused credentials, leaves the retried recipients as they were before the
//!   call: certainly not sent, due again.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::ReconcileError;
use super::pace::Pacer;
use super::produce::Pending;
use crate::serve::Metrics;
use crate::store::{CampaignStore, Intent, RecipientRecord, Status, now};
use crate::transport::{self, Deliver, Envelope, Outcome, TransportError};

/// How often one recipient is tried in a run before a retryable answer counts as failed.
pub const MAX_TRIES: u32 = 5;
/// The first backoff; it doubles per try, with jitter, up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What became of a call's recipients.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Settled {
    pub sent: u64,
    pub failed: u64,
    pub uncertain: u64,
    /// Certainly not sent (the transport could not take them); due again next run.
    pub not_sent: u64,
    /// Requests made (the first and every retry), and how long they took in all.
    pub requests: u32,
    pub seconds: f64,
}

/// Where calls are timed and counted.
#[derive(Clone, Copy)]
pub struct Probe<'a> {
    pub transport: &'a str,
    pub metrics: &'a Metrics,
}

impl Probe<'_> {
    /// Hands `batch` to `deliver`, timing the request and counting its outcome.
    async fn deliver<D: Deliver>(
        self,
        deliver: &D,
        batch: Vec<Envelope>,
    ) -> (Vec<(Envelope, Outcome)>, f64) {
        let started = Instant::now();
        let outcomes = deliver.deliver(batch).await;
        let seconds = started.elapsed().as_secs_f64();
        let mut kinds = outcomes.iter().map(|(_, o)| o.kind());
        let first = kinds.next().unwrap_or("sent");
        let outcome = if kinds.all(|k| k == first) {
            first
        } else {
            "mixed"
        };
        self.metrics.call(self.transport, outcome, seconds);
        (outcomes, seconds)
    }
}

/// Sends one call: check, intent, deliver, retry what may be retried, outcomes.
pub async fn send<D: Deliver>(
    deliver: &D,
    store: &CampaignStore,
    revision: u32,
    call: Vec<Pending>,
    pacer: &Pacer,
    probe: Probe<'_>,
) -> Result<Settled, ReconcileError> {
    let (mut priors, envelopes): (HashMap<_, _>, Vec<_>) = call
        .into_iter()
        .map(|p| ((p.envelope.key.clone(), p.prior), p.envelope))
        .unzip();
    transport::check(&envelopes)?;
    let record = |status, attempts, provider_id, reason| RecipientRecord {
        status,
        attempts,
        revision,
        provider_id,
        reason,
        updated: now(),
    };
    let intent = store.begin(&Intent {
        revision,
        started: now(),
        recipients: envelopes
            .iter()
            .map(|e| (e.key.clone(), e.attempt))
            .collect(),
    })?;

    let mut settled = Settled::default();
    let mut records = Vec::with_capacity(envelopes.len());
    let mut unauthorized = None;
    let mut pending = envelopes;
    let mut tries = 1;
    loop {
        let (outcomes, seconds) = probe.deliver(deliver, std::mem::take(&mut pending)).await;
        settled.requests += 1;
        settled.seconds += seconds;
        let mut retry = Vec::new();
        let mut wait: Option<Duration> = None;
        for (mut envelope, outcome) in outcomes {
            let attempts = envelope.attempt;
            let next = match outcome {
                Outcome::Sent { id } => {
                    settled.sent += 1;
                    Some(record(Status::Sent, attempts, Some(id), None))
                }
                Outcome::Failed { reason } => {
                    tracing::debug!(recipient = %envelope.key, %reason, "failed");
                    settled.failed += 1;
                    Some(record(Status::Failed, attempts, None, Some(reason)))
                }
                Outcome::Retry { reason, .. } if tries >= MAX_TRIES => {
                    settled.failed += 1;
                    let reason = format!("{reason} (gave up after {tries} tries)");
                    Some(record(Status::Failed, attempts, None, Some(reason)))
                }
                Outcome::Retry { after, reason } => {
                    tracing::debug!(recipient = %envelope.key, %reason, "will retry");
                    wait = wait.max(after);
                    envelope.attempt += 1;
                    retry.push(envelope);
                    continue;
                }
                Outcome::Uncertain { reason } => {
                    settled.uncertain += 1;
                    Some(record(Status::Uncertain, attempts, None, Some(reason)))
                }
                Outcome::NotSent { reason } => {
                    settled.not_sent += 1;
                    tracing::warn!(recipient = %envelope.key, %reason, "not sent; due again next run");
                    priors.remove(&envelope.key).flatten()
                }
                Outcome::Unauthorized { reason } => {
                    settled.not_sent += 1;
                    unauthorized.get_or_insert(reason);
                    priors.remove(&envelope.key).flatten()
                }
            };
            records.push((envelope.key, next));
        }
        if retry.is_empty() {
            break;
        }
        // Retries wait (as told, or backing off) and draw tokens like any send.
        let delay = wait.unwrap_or_else(|| backoff(tries));
        if unauthorized.is_some() || !pacer.sleep(delay).await || !pacer.ready(retry.len()).await {
            // Retryable answers mean not accepted: these are due again next run.
            for envelope in retry {
                settled.not_sent += 1;
                let prior = priors.remove(&envelope.key).flatten();
                records.push((envelope.key, prior));
            }
            break;
        }
        tries += 1;
        pending = retry;
    }
    store.finish(Some(&intent), &records)?;
    match unauthorized {
        Some(reason) => Err(TransportError::Unauthorized(reason).into()),
        None => Ok(settled),
    }
}

/// Exponential backoff with full jitter, for the `tries`th retry.
fn backoff(tries: u32) -> Duration {
    let ceiling = FIRST_BACKOFF
        .saturating_mul(1 << tries.min(16).saturating_sub(1))
        .min(MAX_BACKOFF);
    ceiling.mul_f64(rand::random_range(0.5..=1.0))
}
