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
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::ReconcileError;
use super::pace::Pacer;
use super::produce::Pending;
use crate::serve::Metrics;
use crate::store::{CampaignStore, Change, Intent, RecipientRecord, Status, StoreError, now};
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
#[derive(Clone)]
pub struct Probe {
    pub transport: Arc<str>,
    pub metrics: Arc<Metrics>,
}

impl Probe {
    /// Hands `batch` to `deliver`, timing the request and counting its outcome.
    async fn deliver<D: Deliver>(
        &self,
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
        self.metrics.call(&self.transport, outcome, seconds);
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
    probe: &Probe,
) -> Result<Settled, ReconcileError> {
    let (priors, envelopes): (HashMap<_, _>, Vec<_>) = call
        .into_iter()
        .map(|p| ((p.envelope.key.clone(), p.prior), p.envelope))
        .unzip();
    transport::check(&envelopes)?;
    let intent = Intent {
        revision,
        started: now(),
        recipients: envelopes
            .iter()
            .map(|e| (e.key.clone(), e.attempt))
            .collect(),
    };
    let intent = durably(store, move |store| store.begin(&intent)).await?;

    let mut tally = Tally::new(revision, priors);
    let mut pending = envelopes;
    let mut tries = 1;
    loop {
        let (outcomes, seconds) = probe.deliver(deliver, std::mem::take(&mut pending)).await;
        tally.settled.requests += 1;
        tally.settled.seconds += seconds;
        let mut retry = Vec::new();
        let mut wait: Option<Duration> = None;
        for (envelope, outcome) in outcomes {
            if let Some((envelope, after)) = tally.judge(envelope, outcome, tries) {
                wait = wait.max(after);
                retry.push(envelope);
            }
        }
        if retry.is_empty() {
            break;
        }
        // Retries wait (as told, or backing off) and draw tokens like any send.
        let delay = wait.unwrap_or_else(|| backoff(tries));
        if tally.unauthorized.is_some()
            || !pacer.sleep(delay).await
            || !pacer.ready(retry.len()).await
        {
            // Retryable answers mean not accepted: these are due again next run.
            for envelope in retry {
                tally.unchanged(envelope.key);
            }
            break;
        }
        tries += 1;
        pending = retry;
    }
    let Tally {
        settled,
        changes,
        unauthorized,
        ..
    } = tally;
    durably(store, move |store| store.finish(Some(&intent), &changes)).await?;
    match unauthorized {
        Some(reason) => Err(TransportError::Unauthorized(reason).into()),
        None => Ok(settled),
    }
}

/// A call's outcomes as they come in: counted, and turned into the store's changes.
struct Tally {
    revision: u32,
    /// Each recipient's record before the call, as the walk that found them due saw it.
    priors: HashMap<String, Option<RecipientRecord>>,
    settled: Settled,
    changes: Vec<Change>,
    unauthorized: Option<String>,
}

impl Tally {
    fn new(revision: u32, priors: HashMap<String, Option<RecipientRecord>>) -> Self {
        Self {
            revision,
            changes: Vec::with_capacity(priors.len()),
            priors,
            settled: Settled::default(),
            unauthorized: None,
        }
    }

    /// Records one recipient's outcome; a retryable one (before `MAX_TRIES`) comes back
    /// with the wait the provider asked for, to be sent again.
    fn judge(
        &mut self,
        mut envelope: Envelope,
        outcome: Outcome,
        tries: u32,
    ) -> Option<(Envelope, Option<Duration>)> {
        let attempts = envelope.attempt;
        let (status, provider_id, reason) = match outcome {
            Outcome::Sent { id } => {
                self.settled.sent += 1;
                (Status::Sent, Some(id), None)
            }
            Outcome::Failed { reason } => {
                tracing::debug!(recipient = %envelope.key, %reason, "failed");
                self.settled.failed += 1;
                (Status::Failed, None, Some(reason))
            }
            Outcome::Retry { reason, .. } if tries >= MAX_TRIES => {
                self.settled.failed += 1;
                let reason = format!("{reason} (gave up after {tries} tries)");
                (Status::Failed, None, Some(reason))
            }
            Outcome::Retry { after, reason } => {
                tracing::debug!(recipient = %envelope.key, %reason, "will retry");
                envelope.attempt += 1;
                return Some((envelope, after));
            }
            Outcome::Uncertain { reason } => {
                self.settled.uncertain += 1;
                (Status::Uncertain, None, Some(reason))
            }
            Outcome::NotSent { reason } => {
                tracing::warn!(recipient = %envelope.key, %reason, "not sent; due again next run");
                self.unchanged(envelope.key);
                return None;
            }
            Outcome::Unauthorized { reason } => {
                self.unauthorized.get_or_insert(reason);
                self.unchanged(envelope.key);
                return None;
            }
        };
        let after = RecipientRecord {
            status,
            attempts,
            revision: self.revision,
            provider_id,
            reason,
            updated: now(),
        };
        let before = self.prior(&envelope.key).map(|p| p.status);
        self.changes.push(Change {
            key: envelope.key,
            before,
            after: Some(after),
        });
        None
    }

    /// Certainly not sent: the recipient's record stays what it was, due again.
    fn unchanged(&mut self, key: String) {
        self.settled.not_sent += 1;
        let prior = self.priors.remove(&key).flatten();
        self.changes.push(Change {
            key,
            before: prior.as_ref().map(|p| p.status),
            after: prior,
        });
    }

    fn prior(&self, key: &str) -> Option<&RecipientRecord> {
        self.priors.get(key).and_then(Option::as_ref)
    }
}

/// Runs a store write, which blocks until it is flushed, off the async workers, so the
/// calls in flight go on meanwhile.
async fn durably<T: Send + 'static>(
    store: &CampaignStore,
    write: impl FnOnce(&CampaignStore) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let store = store.clone();
    match tokio::task::spawn_blocking(move || write(&store)).await {
        Ok(result) => result,
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    }
}

/// Exponential backoff with full jitter, for the `tries`th retry.
fn backoff(tries: u32) -> Duration {
    let ceiling = FIRST_BACKOFF
        .saturating_mul(1 << tries.min(16).saturating_sub(1))
        .min(MAX_BACKOFF);
    ceiling.mul_f64(rand::random_range(0.5..=1.0))
}
