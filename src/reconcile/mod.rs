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

pub use error::ReconcileError;
pub use rate::TransportLimits;
pub use report::{Ending, Report};

use crate::manifest::{Campaign, Transport as TransportManifest};
use crate::plan::{self, CampaignPlan, PlanError, StateView};
use crate::render::Renderer;
use crate::store::{
    CampaignRecord, CampaignStore, GitRevision, RecipientRecord, Status, StatusCounts, Store, now,
};
use crate::transport::{self, Outcome, Transport};

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
    campaign: Arc<Campaign>,
    renderer: Arc<Renderer>,
    pub plan: CampaignPlan,
    store: CampaignStore,
    record: CampaignRecord,
    counts: StatusCounts,
    transport: Transport,
}

/// Prepares and executes one campaign.
pub async fn reconcile(campaign: &Campaign, ctx: &Context) -> Result<Reconciled, ReconcileError> {
    let prepared = prepare(campaign, ctx)?;
    execute(prepared, ctx).await
}

/// What an error means for scheduling: refusals wait for the manifests to change; a
/// store or transport failure is tried again later.
pub fn error_policy(error: &ReconcileError) -> Action {
    match error {
        ReconcileError::Plan(_)
        | ReconcileError::ContentChanged { .. }
        | ReconcileError::RevisionWentBack { .. }
        | ReconcileError::Content(_)
        | ReconcileError::NoTransport(_) => Action::AwaitChange,
        ReconcileError::Store(_) | ReconcileError::Transport(_) => {
            Action::Requeue(Duration::from_secs(30))
        }
    }
}

/// Refuses changed content without a new revision, then plans (rendering everyone).
pub fn prepare(campaign: &Campaign, ctx: &Context) -> Result<Prepared, ReconcileError> {
    let spec = &campaign.spec;
    let store = ctx.store.campaign(&campaign.name)?;
    let counts = store.counts()?;
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
    let state = StateView {
        store: &store,
        resend_uncertain: ctx.resend_uncertain,
    };
    let plan = plan::plan_with(campaign, &renderer, Some(state), |_, _| {})?;
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
        campaign: Arc::new(campaign.clone()),
        renderer: Arc::new(renderer),
        plan,
        store,
        record,
        counts,
        transport,
    })
}

/// Sends to everyone due, batch by batch, recording intent and outcome around each call.
pub async fn execute(prepared: Prepared, ctx: &Context) -> Result<Reconciled, ReconcileError> {
    let started = Instant::now();
    let Prepared {
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
    let early = if spec.paused {
        Some(Ending::Paused)
    } else if record.halted.is_some() {
        report.halted.clone_from(&record.halted);
        Some(Ending::Halted)
    } else if plan.to_send == 0 {
        Some(Ending::NothingToSend)
    } else {
        None
    };
    if let Some(ending) = early {
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
    let result: Result<(), ReconcileError> = async {
        while let Some(batch) = received.recv().await {
            let batch = batch?;
            let size = u32::try_from(batch.len()).expect("a batch holds at most 1000");
            let size = NonZeroU32::new(size).expect("batches are never empty");
            if stop.is_set() {
                report.ending = Ending::Interrupted;
                break;
            }
            if !pace(&limiter, shared.as_deref(), size, &mut stop).await {
                report.ending = Ending::Interrupted;
                break;
            }
            let call = Instant::now();
            let settled = send_batch(&transport, &store, spec.revision, batch).await?;
            tracing::debug!(
                campaign = %campaign.name,
                size = size.get(),
                sent = settled.sent,
                failed = settled.failed,
                elapsed = ?call.elapsed(),
                "batch recorded"
            );
            report.sent += settled.sent;
            report.failed += settled.failed;
            report.uncertain += settled.uncertain;
            report.not_sent += settled.not_sent;
            bar.inc(u64::from(size.get()));
            gate.record(settled.sent, settled.failed);
            if let Some(reason) = gate.tripped() {
                record.halted = Some(reason.clone());
                store.save(&record)?;
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
    bar.finish_and_clear();
    producer.join().expect("the producer does not panic");
    result?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(Reconciled { report, action })
}

/// Waits until the campaign's bucket and the transport's (if any) both hold `size` tokens;
/// `false` when a stop was asked for meanwhile.
async fn pace(
    campaign: &rate::Limiter,
    transport: Option<&rate::Limiter>,
    size: NonZeroU32,
    stop: &mut Stop,
) -> bool {
    let ready = async {
        for bucket in std::iter::once(campaign).chain(transport) {
            bucket
                .until_n_ready(size)
                .await
                .expect("a batch never exceeds the burst");
        }
    };
    tokio::select! {
        () = ready => true,
        () = stop.wait() => false,
    }
}

#[derive(Default)]
struct Settled {
    sent: u64,
    failed: u64,
    uncertain: u64,
    not_sent: u64,
}

/// One provider call: check isolation, record intent, send, record outcomes.
async fn send_batch(
    transport: &Transport,
    store: &CampaignStore,
    revision: u32,
    batch: Vec<produce::Pending>,
) -> Result<Settled, ReconcileError> {
    let mut priors = HashMap::with_capacity(batch.len());
    let mut envelopes = Vec::with_capacity(batch.len());
    for pending in batch {
        priors.insert(pending.envelope.key.clone(), pending.prior);
        envelopes.push(pending.envelope);
    }
    transport::check(&envelopes)?;
    let record = |status, attempts, provider_id, reason| RecipientRecord {
        status,
        attempts,
        revision,
        provider_id,
        reason,
        updated: now(),
    };
    let intents: Vec<_> = envelopes
        .iter()
        .map(|e| {
            let intent = record(Status::InFlight, e.attempt, None, None);
            (e.key.clone(), Some(intent))
        })
        .collect();
    store.write(&intents)?;

    let mut settled = Settled::default();
    let outcomes = transport.send(envelopes).await;
    let mut records = Vec::with_capacity(outcomes.len());
    for (envelope, outcome) in outcomes {
        let attempts = envelope.attempt;
        let next = match outcome {
            Outcome::Sent { id } => {
                settled.sent += 1;
                Some(record(Status::Sent, attempts, Some(id), None))
            }
            Outcome::Failed { reason } => {
                settled.failed += 1;
                Some(record(Status::Failed, attempts, None, Some(reason)))
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
        };
        records.push((envelope.key, next));
    }
    store.write(&records)?;
    Ok(settled)
}
