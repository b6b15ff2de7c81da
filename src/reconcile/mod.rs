//! Reconciling, kube-style: `reconcile` looks at what the manifests want and what the
//! state store says happened, does the difference, and returns an `Action` saying when
//! to look again. It is level-triggered: it never relies on remembering events, so it can
//! run at any moment, after any crash, and converge. `error_policy` decides what an error
//! means for scheduling, separately.
//!
//! A reconcile is `prepare` (refusals: content changed without a new revision, and the
//! plan, which renders every recipient) then `execute` (sending). `apply` prepares every
//! campaign before executing any, so a refusal anywhere sends nothing anywhere.
//!
//! # Guarantees
//! - Intent is recorded and flushed before a batch is handed to the transport, and the
//!   outcome after; a crash between them leaves that batch `uncertain` (at most one batch,
//!   since one is in flight at a time).
//! - The declared rate is a ceiling: a token bucket refilled at the rate, holding at most
//!   one batch, is drawn from before every call.
//! - A stop request (Ctrl-C, SIGTERM) never interrupts a call in flight; the sender stops
//!   before the next batch, or while waiting for the rate.

mod error;
mod fingerprint;
mod gate;
mod produce;
mod progress;
mod rate;
mod report;

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use error::{Meaning, ReconcileError};
pub use rate::TransportLimits;
pub use report::{Ending, Report};

use crate::git::GitRevision;
use crate::live::Live;
use crate::manifest::{Campaign, Transport as TransportManifest};
use crate::plan::{self, CampaignPlan, PlanError, StateView};
use crate::render::Renderer;
use crate::serve::Metrics;
use crate::store::{
    CampaignRecord, CampaignStore, Intent, RecipientRecord, Status, StatusCounts, Store, now,
};
use crate::transport::{self, Outcome, Transport, TransportError};

/// What a reconcile needs besides the campaign.
pub struct Context {
    pub store: Store,
    pub transports: Vec<TransportManifest>,
    /// `apply --resend-uncertain`: uncertain recipients are due again.
    pub resend_uncertain: bool,
    pub stop: Stop,
    /// Draw a progress bar on stderr.
    pub progress: bool,
    /// Intents found at start and turned uncertain, per campaign.
    pub recovered: BTreeMap<String, u64>,
    /// The git commit of the manifests, recorded with each apply.
    pub git: Option<GitRevision>,
    /// Rate ceilings of transports, shared by the campaigns using them.
    pub limits: TransportLimits,
    /// What each campaign is doing now, for the status page and the metrics.
    pub live: Live,
    pub metrics: Arc<Metrics>,
}

/// When to reconcile a campaign again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Converged (or paused, halted, refused): nothing to do until something changes.
    AwaitChange,
    /// Work is left that a later pass can do (a transport that could not take a batch).
    Requeue(Duration),
}

pub struct Reconciled {
    pub report: Report,
    pub action: Action,
}

/// A request to stop sending, shared by every reconcile.
#[derive(Clone)]
pub struct Stop(tokio::sync::watch::Receiver<bool>);

/// The side that asks to stop.
pub struct StopHandle(tokio::sync::watch::Sender<bool>);

impl Stop {
    pub fn new() -> (StopHandle, Self) {
        let (sender, receiver) = tokio::sync::watch::channel(false);
        (StopHandle(sender), Self(receiver))
    }

    pub fn is_set(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once stopping was asked for.
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

impl StopHandle {
    pub fn stop(&self) {
        let _ = self.0.send(true);
    }
}

/// A campaign checked and planned, ready to send.
pub struct Prepared {
    /// What the user should know before sending (not a refusal).
    warnings: Vec<String>,
    campaign: Arc<Campaign>,
    renderer: Arc<Renderer>,
    pub plan: CampaignPlan,
    store: CampaignStore,
    record: CampaignRecord,
    counts: StatusCounts,
    transport: Transport,
}

/// Prepares and executes one campaign. Preparing renders every recipient, so it runs
/// with the worker thread handed over to blocking work (a multi-threaded runtime only).
pub async fn reconcile(campaign: &Campaign, ctx: &Context) -> Result<Reconciled, ReconcileError> {
    let prepared = tokio::task::block_in_place(|| prepare(campaign, ctx))?;
    execute(prepared, ctx).await
}

/// When to reconcile `campaign` again after `error`, its `failures`th in a row: an error
/// that waiting cannot heal waits for a change; one that may pass is tried again after a
/// backoff that doubles, from a second up to five minutes.
pub fn error_policy(campaign: &Campaign, error: &ReconcileError, failures: u32) -> Action {
    match error.meaning() {
        Meaning::NeedsChange | Meaning::NeedsEnvironment => Action::AwaitChange,
        Meaning::Transient => {
            let after = Duration::from_secs(1)
                .saturating_mul(1 << failures.saturating_sub(1).min(9))
                .min(Duration::from_secs(300));
            tracing::debug!(campaign = %campaign.name, ?after, "will try again");
            Action::Requeue(after)
        }
    }
}

/// Refuses changed content without a new revision, then plans (rendering everyone).
pub fn prepare(campaign: &Campaign, ctx: &Context) -> Result<Prepared, ReconcileError> {
    let spec = &campaign.spec;
    let store = ctx.store.campaign(&campaign.name)?;
    let counts = store.counts();
    let fingerprint = fingerprint::of(campaign).map_err(ReconcileError::Content)?;
    let previous = store.record()?.unwrap_or_default();
    if counts.began() {
        if spec.revision < previous.revision {
            return Err(ReconcileError::RevisionWentBack {
                at: campaign.revision_at.clone(),
                manifest: spec.revision,
                stored: previous.revision,
            });
        }
        let changed = fingerprint::changed(&previous.fingerprint, &fingerprint);
        if spec.revision == previous.revision && !changed.is_empty() {
            return Err(ReconcileError::ContentChanged {
                at: campaign.revision_at.clone(),
                changed,
                sent: counts.sent + counts.uncertain,
                revision: previous.revision,
            });
        }
    }
    let manifest = ctx
        .transports
        .iter()
        .find(|t| t.name == spec.transport)
        .ok_or_else(|| ReconcileError::NoTransport(spec.transport.clone()))?;
    let transport = Transport::new(manifest, campaign)?;
    let renderer = Renderer::new(campaign).map_err(PlanError::from)?;
    let mut warnings = Vec::new();
    if spec.unsubscribe.is_some() && !renderer.keyed() {
        if manifest.spec.kind.delivers_mail() {
            return Err(ReconcileError::UnsubscribeUnkeyed {
                at: campaign.unsubscribe_at.clone(),
                transport: manifest.name.clone(),
            });
        }
        warnings.push(format!(
                "{} is not set: the unsubscribe links in the outbox are signed with a fixed, guessable key \
                 (fine for trying herald out; transports that deliver mail refuse this)",
            crate::render::UNSUBSCRIBE_KEY_ENV
        ));
    }
    let state = StateView {
        store: &store,
        resend_uncertain: ctx.resend_uncertain,
    };
    let plan = plan::plan_with(campaign, &renderer, Some(state), |_, _| {})?;
    ctx.live.update(&campaign.name, |live| {
        live.prepared = true;
        live.transport.clone_from(&spec.transport);
        live.stage = Some(spec.stage);
        live.revision = spec.revision;
        live.paused = spec.paused;
        live.git.clone_from(&ctx.git);
        live.due = plan.to_send;
        live.suppressed = plan.audience.suppressed;
        live.sent = 0;
        live.failed = 0;
        live.uncertain = 0;
        live.waiting = None;
    });
    let record = CampaignRecord {
        revision: spec.revision,
        fingerprint,
        stage: Some(spec.stage),
        paused: spec.paused,
        halted: None,
        first_apply: previous.first_apply.or(Some(now())),
        last_apply: Some(now()),
        git: ctx.git.clone(),
    };
    Ok(Prepared {
        warnings,
        campaign: Arc::new(campaign.clone()),
        renderer: Arc::new(renderer),
        plan,
        store,
        record,
        counts,
        transport,
    })
}

impl Prepared {
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

/// Sends to everyone due, batch by batch, recording intent and outcome around each call.
pub async fn execute(prepared: Prepared, ctx: &Context) -> Result<Reconciled, ReconcileError> {
    let started = Instant::now();
    let Prepared {
        warnings: _,
        campaign,
        renderer,
        plan,
        store,
        mut record,
        counts,
        transport,
    } = prepared;
    let spec = &campaign.spec;
    let recovered = ctx.recovered.get(&campaign.name).copied().unwrap_or(0);
    let mut report = Report::new(&plan, recovered);
    let mut gate = gate::Gate::new(&spec.halt.clone().unwrap_or_default(), &counts);
    record.halted = gate.tripped();
    store.save(&record)?;
    ctx.live.update(&campaign.name, |live| {
        live.halted.clone_from(&record.halted);
    });
    report.halted.clone_from(&record.halted);
    if let Some(ending) = early_ending(spec.paused, record.halted.is_some(), plan.to_send) {
        report.ending = ending;
        return Ok(Reconciled {
            report,
            action: Action::AwaitChange,
        });
    }

    let limiter = rate::limiter(campaign.rate, campaign.batch_size);
    let shared = ctx.limits.get(&spec.transport);
    let bar = progress::bar(ctx.progress, &campaign.name, plan.to_send);
    let (batches, mut received) = tokio::sync::mpsc::channel(2);
    let producer = produce::spawn(
        Arc::clone(&campaign),
        renderer,
        store.clone(),
        ctx.resend_uncertain,
        batches,
    );
    let mut stop = ctx.stop.clone();
    let mut action = Action::AwaitChange;
    ctx.live.update(&campaign.name, |live| {
        live.sending_since = Some(Instant::now());
    });
    let probe = Probe {
        transport: &spec.transport,
        metrics: &ctx.metrics,
    };
    let result: Result<(), ReconcileError> = async {
        while let Some(batch) = received.recv().await {
            let batch = batch?;
            let size = u32::try_from(batch.len()).expect("a batch holds at most 1000");
            let size = NonZeroU32::new(size).expect("batches are never empty");
            if stop.is_set() {
                report.ending = Ending::Interrupted;
                break;
            }
            let mut pacer = Pacer {
                campaign: &limiter,
                transport: shared.as_deref(),
                stop: &mut stop,
            };
            if !pacer.ready(size).await {
                report.ending = Ending::Interrupted;
                break;
            }
            let settled =
                send_batch(&transport, &store, spec.revision, batch, &mut pacer, probe).await?;
            settled.count(&mut report, &ctx.live);
            bar.inc(u64::from(size.get()));
            gate.record(settled.sent, settled.failed);
            if let Some(reason) = gate.tripped() {
                record.halted = Some(reason.clone());
                store.save(&record)?;
                ctx.live
                    .update(&campaign.name, |live| live.halted = Some(reason.clone()));
                report.halted = Some(reason);
                report.ending = Ending::Halted;
                break;
            }
            if settled.not_sent > 0 {
                // The transport cannot take messages now; the rest stays due for later.
                action = Action::Requeue(Duration::from_secs(30));
                break;
            }
        }
        Ok(())
    }
    .await;
    drop(received);
    ctx.live
        .update(&campaign.name, crate::live::CampaignLive::finish);
    bar.finish_and_clear();
    producer.join().expect("the producer does not panic");
    result?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(Reconciled { report, action })
}

/// Why a run ends before sending anything, if it does.
fn early_ending(paused: bool, halted: bool, due: u64) -> Option<Ending> {
    if paused {
        Some(Ending::Paused)
    } else if halted {
        Some(Ending::Halted)
    } else if due == 0 {
        Some(Ending::NothingToSend)
    } else {
        None
    }
}

/// How often one recipient is tried in a run before a retryable answer counts as failed.
const MAX_TRIES: u32 = 5;
/// The first backoff; it doubles per try, with jitter, up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The rate buckets a send draws from, and the stop request that cuts any wait short.
struct Pacer<'a> {
    campaign: &'a rate::Limiter,
    transport: Option<&'a rate::Limiter>,
    stop: &'a mut Stop,
}

impl Pacer<'_> {
    /// Waits until every bucket holds `size` tokens; `false` when a stop came first.
    async fn ready(&mut self, size: NonZeroU32) -> bool {
        let buckets = std::iter::once(self.campaign).chain(self.transport);
        let ready = async {
            for bucket in buckets {
                bucket
                    .until_n_ready(size)
                    .await
                    .expect("a batch never exceeds the burst");
            }
        };
        tokio::select! {
            () = ready => true,
            () = self.stop.wait() => false,
        }
    }

    /// Sleeps for `delay`; `false` when a stop came first.
    async fn sleep(&mut self, delay: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(delay) => true,
            () = self.stop.wait() => false,
        }
    }
}

/// Exponential backoff with full jitter, for the `tries`th retry.
fn backoff(tries: u32) -> Duration {
    let ceiling = FIRST_BACKOFF
        .saturating_mul(1 << tries.min(16).saturating_sub(1))
        .min(MAX_BACKOFF);
    ceiling.mul_f64(rand::random_range(0.5..=1.0))
}

#[derive(Default)]
struct Settled {
    sent: u64,
    failed: u64,
    uncertain: u64,
    not_sent: u64,
}

impl Settled {
    /// Adds these outcomes to the run's report and to the campaign's live view.
    fn count(&self, report: &mut Report, live: &Live) {
        report.sent += self.sent;
        report.failed += self.failed;
        report.uncertain += self.uncertain;
        report.not_sent += self.not_sent;
        live.update(&report.name, |live| {
            live.sent += self.sent;
            live.failed += self.failed;
            live.uncertain += self.uncertain;
        });
    }
}

/// Where provider calls are timed and counted.
#[derive(Clone, Copy)]
struct Probe<'a> {
    transport: &'a str,
    metrics: &'a Metrics,
}

impl Probe<'_> {
    /// Sends through `transport`, timing the call and counting its outcome.
    async fn send(
        self,
        transport: &Transport,
        batch: Vec<transport::Envelope>,
    ) -> Vec<(transport::Envelope, Outcome)> {
        let started = Instant::now();
        let outcomes = transport.send(batch).await;
        let mut kinds = outcomes.iter().map(|(_, o)| o.kind());
        let first = kinds.next().unwrap_or("sent");
        let outcome = if kinds.all(|k| k == first) {
            first
        } else {
            "mixed"
        };
        self.metrics
            .call(self.transport, outcome, started.elapsed().as_secs_f64());
        outcomes
    }
}

/// One batch: check isolation, record intent, send, retry what may be retried (drawing
/// tokens again), record outcomes.
async fn send_batch(
    transport: &Transport,
    store: &CampaignStore,
    revision: u32,
    batch: Vec<produce::Pending>,
    pacer: &mut Pacer<'_>,
    probe: Probe<'_>,
) -> Result<Settled, ReconcileError> {
    let (mut priors, envelopes): (HashMap<_, _>, Vec<_>) = batch
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
    while !pending.is_empty() {
        let mut retry = Vec::new();
        let mut wait: Option<Duration> = None;
        for (mut envelope, outcome) in probe.send(transport, std::mem::take(&mut pending)).await {
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
        let size =
            NonZeroU32::new(u32::try_from(retry.len()).expect("at most 1000")).expect("not empty");
        let delay = wait.unwrap_or_else(|| backoff(tries));
        if unauthorized.is_some() || !pacer.sleep(delay).await || !pacer.ready(size).await {
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
    tracing::debug!(
        sent = settled.sent,
        failed = settled.failed,
        tries,
        "batch recorded"
    );
    match unauthorized {
        Some(reason) => Err(TransportError::Unauthorized(reason).into()),
        None => Ok(settled),
    }
}
