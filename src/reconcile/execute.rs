//! Sending: calls from the producer, up to the transport's `concurrency` in flight, each
//! paced, recorded and counted, until everyone due has an outcome, the safety gate halts
//! the campaign, a stop is asked for, or the transport cannot go on.
//!
//! # Guarantees
//! - Up to `concurrency` calls are in flight, each with its own durable intent, so a
//!   crash leaves at most that many calls `uncertain`. A new call starts as soon as one
//!   finishes: sending never waits for a group of calls to end.
//! - A stop request starts no new call; the calls in flight finish and are recorded.
//! - The gate is judged after every call; once it trips, no new call starts.
//! - A transport that cannot take calls (see `breaker`) ends the run with its recipients
//!   due, nobody charged; a run that finds its transport down sends one call at a time
//!   until one gets through.

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt as _;
use futures::stream::FuturesUnordered;

use super::breaker::Breaker;
use super::call::{self, Probe, Settled, Shared, Slot};
use super::pace::{Bucket, Pacer};
use super::produce::Producer;
use super::{Context, Ending, Prepared, Progress, ReconcileError, Report, gate};
use crate::live::{CampaignLive, Live};
use crate::manifest::Campaign;
use crate::metrics::Metrics;
use crate::plan::CampaignPlan;
use crate::store::{CallLatency, CampaignRecord, CampaignStore, StatusCounts, now, timestamp};
use crate::transport::{Envelope, Transport};

/// Sends to everyone due, up to `concurrency` calls at once.
pub async fn execute(prepared: Prepared, ctx: &Context) -> Result<Report, ReconcileError> {
    let started = Instant::now();
    let Prepared {
        campaign,
        renderer,
        plan,
        store,
        mut record,
        counts,
        transport,
        delivery,
        at,
        warnings: _,
    } = prepared;
    let recovered = ctx.recovered.get(&campaign.name).copied().unwrap_or(0);
    let mut report = Report::new(&plan, recovered);
    let Some(gate) = start(
        &campaign,
        &plan,
        &store,
        &counts,
        &mut record,
        &mut report,
        &ctx.live,
    )?
    else {
        return Ok(report);
    };
    // The walk below records them, before any call.
    report.expired = plan.expiring;

    // Room in the store's index for every address the walk meets, made once rather than
    // grown into.
    // (A table that grows holds its old and new slots at once: 285 MB for 5,000,000.)
    let addresses = plan.audience.unique.saturating_add(plan.seeds);
    store.reserve(usize::try_from(addresses).unwrap_or(usize::MAX));
    ctx.progress.tell(Progress::Started {
        campaign: &campaign.name,
        due: plan.to_send,
    });
    // Enough calls ready to start one whenever another ends, and no more: each holds a
    // thousand recipients' values.
    let (calls, mut received) = tokio::sync::mpsc::channel((delivery.concurrency / 2).max(2));
    let producer = Producer {
        campaign: Arc::clone(&campaign),
        renderer,
        store: store.clone(),
        again: ctx.again.clone(),
        kind: delivery.kind,
        rows: usize::try_from(plan.audience.rows).unwrap_or(usize::MAX),
        at,
        call_size: delivery.call_size,
        tags: transport.tags(),
    }
    .spawn(calls);
    ctx.live.update(&campaign.name, |live| {
        live.sending_since = Some(Instant::now());
    });
    let caller = Caller::new(&campaign, transport, &store, ctx);
    let mut stop = ctx.stop.clone();
    let mut in_flight: FuturesUnordered<Flight> = FuturesUnordered::new();
    let mut slots = Slots::new();
    let mut producing = true;
    let mut run = Run::new(
        report,
        gate,
        record,
        &store,
        ctx,
        Arc::clone(&caller.shared.breaker),
        campaign.transport.clone(),
    );
    loop {
        slots.count_returned();
        // A probe is judged before anything else starts: its outcomes on disk and settled.
        let (busy, concurrency) = if run.probing {
            (in_flight.len(), 1)
        } else {
            (slots.held, delivery.concurrency)
        };
        let may_start = producing && !run.closed && busy < concurrency;
        if !may_start && in_flight.is_empty() {
            break;
        }
        tokio::select! {
            () = slots.returned(), if slots.held > 0 => {}
            Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                let done = done.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
                let (settled, slot) = done.unzip();
                run.judge(settled);
                // A slot the call kept is given back once the run has judged the call.
                drop(slot);
            }
            call = received.recv(), if may_start => match call {
                None => producing = false,
                Some(Err(error)) => run.fail(error),
                // Each call is a task of its own, so calls run on every worker thread,
                // and it waits for the rate itself, so the others go on meanwhile.
                Some(Ok(call)) => in_flight.push(caller.launch(call, slots.take())),
            },
            () = stop.wait(), if !run.closed => run.interrupt(),
        }
    }
    drop(received);
    ctx.live.update(&campaign.name, CampaignLive::finish);
    ctx.progress.tell(Progress::Finished {
        campaign: &campaign.name,
    });
    producer.join().expect("the producer does not panic");
    run.end(&store, &campaign.transport.name, started)
}

/// What a campaign's run amounts to when an earlier campaign of the same one-shot run
/// found its transport down: nothing sent, everyone due; `None` when it is not down.
pub fn waiting_for_transport(prepared: &Prepared, ctx: &Context) -> Option<Report> {
    let down = ctx.breakers.get(&prepared.campaign.transport.name).down()?;
    let recovered = ctx
        .recovered
        .get(&prepared.campaign.name)
        .copied()
        .unwrap_or(0);
    let mut report = Report::new(&prepared.plan, recovered);
    report.ending = Ending::TransportDown;
    report.down = Some(down);
    Some(report)
}

/// The places of calls under way. A call holds one until its outcomes are queued (see
/// `call::send`); it may still be in flight after, waiting for them to be on disk.
struct Slots {
    held: usize,
    release: tokio::sync::mpsc::UnboundedSender<()>,
    released: tokio::sync::mpsc::UnboundedReceiver<()>,
}

impl Slots {
    fn new() -> Self {
        let (release, released) = tokio::sync::mpsc::unbounded_channel();
        Self {
            held: 0,
            release,
            released,
        }
    }

    fn take(&mut self) -> Slot {
        self.held += 1;
        Slot::new(self.release.clone())
    }

    /// Counts every slot given back so far. A call's slot is given back before its task
    /// ends, so once every call is over, none is counted as held.
    fn count_returned(&mut self) {
        while self.released.try_recv().is_ok() {
            self.held -= 1;
        }
    }

    /// Waits for a slot to be given back, and counts it.
    async fn returned(&mut self) {
        if self.released.recv().await.is_some() {
            self.held -= 1;
        }
    }
}

/// A call under way: `None` when a stop came before it started; with its slot when the
/// call kept it (see `call::send`).
type Flight = tokio::task::JoinHandle<Option<(Result<Settled, ReconcileError>, Option<Slot>)>>;

/// What every call of a run shares, to start one.
#[derive(Clone)]
struct Caller {
    transport: Arc<Transport>,
    shared: Shared,
}

impl Caller {
    fn new(
        campaign: &Campaign,
        transport: Transport,
        store: &CampaignStore,
        ctx: &Context,
    ) -> Self {
        let name = &campaign.transport.name;
        let breaker = ctx.breakers.get(name);
        ctx.metrics.transport_up(name, breaker.down().is_none());
        Self {
            transport: Arc::new(transport),
            shared: Shared {
                store: store.clone(),
                revision: campaign.revision.number,
                pacer: Pacer::new(
                    Bucket::new(campaign.rate.per_second()),
                    ctx.limits.get(name),
                    ctx.stop.clone(),
                ),
                probe: Probe {
                    transport: name.as_str().into(),
                    metrics: Arc::clone(&ctx.metrics),
                },
                breaker,
            },
        }
    }

    /// Starts one call as a task of its own, holding `slot`: it waits for the rate, then
    /// sends; `None` when a stop came first.
    fn launch(&self, call: Vec<Envelope>, slot: Slot) -> Flight {
        let Caller { transport, shared } = self.clone();
        tokio::spawn(async move {
            if !shared.pacer.ready(call.len()).await {
                return None;
            }
            let mut slot = Some(slot);
            let settled = call::send(&*transport, &shared, call, &mut slot).await;
            Some((settled, slot))
        })
    }
}

/// What a run keeps track of while calls settle.
struct Run<'a> {
    report: Report,
    gate: gate::Gate,
    record: CampaignRecord,
    store: &'a CampaignStore,
    live: &'a Live,
    progress: &'a super::Observer,
    metrics: &'a Metrics,
    transport: String,
    /// The transport's settings, to say what fixes it when it is down.
    settings: crate::manifest::Transport,
    /// The transport's breaker, and whether it was down when the run began: then one
    /// call at a time, until one gets through.
    breaker: Arc<Breaker>,
    probing: bool,
    /// No new call starts, once something says so.
    closed: bool,
    failure: Option<ReconcileError>,
    timing: Timing,
}

impl<'a> Run<'a> {
    fn new(
        report: Report,
        gate: gate::Gate,
        record: CampaignRecord,
        store: &'a CampaignStore,
        ctx: &'a Context,
        breaker: Arc<Breaker>,
        settings: crate::manifest::Transport,
    ) -> Self {
        Self {
            report,
            gate,
            record,
            store,
            live: &ctx.live,
            progress: &ctx.progress,
            metrics: &ctx.metrics,
            transport: breaker.name().to_owned(),
            settings,
            probing: breaker.down().is_some(),
            breaker,
            closed: false,
            failure: None,
            timing: Timing::default(),
        }
    }

    /// A call is over: `None` when it was stopped before it started.
    fn settle(
        &mut self,
        done: Option<Result<Settled, ReconcileError>>,
    ) -> Result<(), ReconcileError> {
        let settled = match done {
            None => {
                self.interrupt();
                return Ok(());
            }
            Some(Err(error)) => {
                self.report.calls += 1;
                self.fail(error);
                return Ok(());
            }
            Some(Ok(settled)) => settled,
        };
        self.report.calls += 1;
        count(&settled, &mut self.report, self.live);
        self.progress.tell(Progress::Settled {
            campaign: &self.report.name,
            settled: settled.sent + settled.failed + settled.uncertain,
        });
        self.timing.add(&settled);
        self.gate.record(settled.sent, settled.failed);
        if let (Some(reason), None) = (self.gate.tripped(), &self.report.halted) {
            self.record.halted = Some(reason.clone());
            self.store.save(&self.record)?;
            self.live
                .update(&self.report.name, |live| live.halted = Some(reason.clone()));
            self.report.halted = Some(reason);
            self.report.ending = Ending::Halted;
            self.closed = true;
        }
        self.transport(&settled)?;
        Ok(())
    }

    /// What the call says of its transport: up when it answered, one more failure when it
    /// could not take the call; once down, the run ends with everyone left due.
    fn transport(&mut self, settled: &Settled) -> Result<(), ReconcileError> {
        let name = &self.transport;
        if settled.answered {
            if self.probing || self.breaker.down().is_some() {
                tracing::info!(transport = %name, "the transport takes calls again");
            }
            if self.record.down.take().is_some() {
                self.live
                    .update(&self.report.name, |live| live.waiting = None);
            }
            self.breaker.succeeded();
            self.probing = false;
            self.metrics.transport_up(name, true);
            return Ok(());
        }
        let Some((cause, reason)) = &settled.unavailable else {
            return Ok(());
        };
        let fix = super::breaker::remedy(*cause, &self.settings);
        self.breaker.failed(*cause, reason, now(), &fix);
        if self.report.down.is_some() {
            return Ok(());
        }
        let down = self.breaker.down().expect("the breaker is down");
        self.metrics.transport_up(name, false);
        self.record.down = Some(down.clone().into());
        self.store.save(&self.record)?;
        let waiting = format!(
            "transport `{}` is down since {}: {}",
            down.transport,
            timestamp(down.since),
            down.reason
        );
        self.live
            .update(&self.report.name, |live| live.waiting = Some(waiting));
        self.report.down = Some(down);
        self.report.ending = Ending::TransportDown;
        self.closed = true;
        Ok(())
    }

    /// What the run did, once every call is over; the calls' mean time is kept for
    /// plan's next estimate.
    fn end(
        self,
        store: &CampaignStore,
        transport: &str,
        started: Instant,
    ) -> Result<Report, ReconcileError> {
        let Self {
            mut report,
            mut record,
            failure,
            timing,
            ..
        } = self;
        if let Some(seconds) = timing.mean() {
            record.latency = Some(CallLatency {
                transport: transport.to_owned(),
                seconds,
            });
            store.save(&record)?;
        }
        if let Some(error) = failure {
            return Err(error);
        }
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }

    /// `settle`, an error ending the run once the calls under way are over, never
    /// before: they would go on sending after it, beside the next run's.
    fn judge(&mut self, done: Option<Result<Settled, ReconcileError>>) {
        if let Err(error) = self.settle(done) {
            self.fail(error);
        }
    }

    fn fail(&mut self, error: ReconcileError) {
        self.failure.get_or_insert(error);
        self.closed = true;
    }

    fn interrupt(&mut self) {
        self.report.ending = Ending::Interrupted;
        self.closed = true;
    }
}

/// How long the run's requests took, for plan's next estimate.
#[derive(Default)]
struct Timing {
    requests: u32,
    seconds: f64,
}

impl Timing {
    fn add(&mut self, settled: &Settled) {
        self.requests += settled.requests;
        self.seconds += settled.seconds;
    }

    fn mean(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.seconds / f64::from(self.requests))
    }
}

/// Adds a call's outcomes to the run's report and to the campaign's live view.
fn count(settled: &Settled, report: &mut Report, live: &Live) {
    report.sent += settled.sent;
    report.failed += settled.failed;
    report.uncertain += settled.uncertain;
    report.not_sent += settled.not_sent;
    report.deferred += settled.deferred;
    if let Some(reopens) = settled.reopens {
        report.due_again(reopens);
    }
    live.update(&report.name, |live| {
        live.sent += settled.sent;
        live.failed += settled.failed;
        live.uncertain += settled.uncertain;
    });
}

/// Judges the safety gate and records the run's start; `None` when the run ends before
/// sending anything (paused, halted, nobody due), with `report` saying why.
fn start(
    campaign: &Campaign,
    plan: &CampaignPlan,
    store: &CampaignStore,
    counts: &StatusCounts,
    record: &mut CampaignRecord,
    report: &mut Report,
    live: &Live,
) -> Result<Option<gate::Gate>, ReconcileError> {
    let gate = gate::Gate::new(&campaign.halt, counts);
    record.halted = gate.tripped();
    store.save(record)?;
    live.update(&campaign.name, |live| {
        live.halted.clone_from(&record.halted);
    });
    report.halted.clone_from(&record.halted);
    // Past `not_after`, the run records who expired even when nobody is due.
    let work = plan.to_send + plan.expiring;
    if let Some(ending) = early_ending(campaign.paused, record.halted.is_some(), work) {
        report.ending = ending;
        return Ok(None);
    }
    Ok(Some(gate))
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
