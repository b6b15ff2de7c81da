//! One campaign's task: reconcile, then do what the policy says (wait for a change, or
//! try again after a while), again. A task runs one reconcile at a time, so a campaign is
//! never reconciled twice at once, while campaigns run concurrently with each other.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;

use super::{Event, Reporter};
use crate::git::GitRevision;
use crate::live::Live;
use crate::manifest::Campaign;
use crate::metrics::Metrics;
use crate::reconcile::{
    self, Action, Context, Ending, ReconcileError, Stop, StopHandle, TransportLimits,
};
use crate::store::Store;

/// What a campaign task should be doing.
#[derive(Clone)]
pub enum Desired {
    Run(Arc<Spec>),
    /// Its manifest does not load; wait for a fix.
    Broken,
    Removed,
}

/// A campaign as loaded, with what a reconcile of it needs.
pub struct Spec {
    pub campaign: Campaign,
    pub git: Option<GitRevision>,
    pub limits: TransportLimits,
}

/// What every campaign task shares.
#[derive(Clone)]
pub struct Shared {
    pub store: Store,
    pub live: Live,
    pub metrics: Arc<Metrics>,
    /// Set by Ctrl-C, SIGTERM, or a task that must stop them all.
    pub stop: Stop,
    /// Stops every task: the policy's `Action::Stop`.
    pub stop_all: Arc<StopHandle>,
    /// Whether a task stopped them all.
    pub stopped_all: Arc<AtomicBool>,
    pub report: Reporter,
    /// Whether each transport takes calls now, shared by every campaign.
    pub breakers: reconcile::Breakers,
}

/// One campaign's life.
pub async fn run(
    mut desired: watch::Receiver<Desired>,
    shared: Shared,
    mut recovered: Option<u64>,
) {
    let mut stop = shared.stop.clone();
    // A pass that changes nothing says nothing.
    let mut last: Option<Ending> = None;
    let mut failures = 0;
    loop {
        if stop.is_set() {
            return;
        }
        let current = desired.borrow_and_update().clone();
        let spec = match current {
            Desired::Removed => return,
            Desired::Broken => {
                tokio::select! {
                    _ = desired.changed() => continue,
                    () = stop.wait() => return,
                }
            }
            Desired::Run(spec) => spec,
        };

        let (run_stop, forward) = stop_on_change(desired.clone(), stop.clone());
        let name = spec.campaign.name.clone();
        let ctx = Context {
            store: shared.store.clone(),
            again: crate::plan::Again::default(),
            stop: run_stop,
            progress: reconcile::Observer::default(),
            recovered: recovered
                .take()
                .map(|n| BTreeMap::from([(name.clone(), n)]))
                .unwrap_or_default(),
            git: spec.git.clone(),
            limits: spec.limits.clone(),
            breakers: shared.breakers.clone(),
            live: shared.live.clone(),
            metrics: Arc::clone(&shared.metrics),
        };
        let result = reconcile::reconcile(&spec.campaign, &ctx).await;
        forward.abort();

        let action = match result {
            Ok(report) => {
                let action = reconcile::after_run(&report, failures + 1);
                failures = if matches!(action, Action::Requeue(_)) {
                    failures + 1
                } else {
                    0
                };
                let idle = report.sent
                    + report.failed
                    + report.uncertain
                    + report.not_sent
                    + report.recovered
                    == 0;
                // Stopped for a change: the next pass reports.
                let quiet =
                    (report.ending == Ending::Interrupted || last == Some(report.ending)) && idle;
                last = Some(report.ending);
                if !quiet {
                    (shared.report)(Event::Reconciled(Box::new(report)));
                }
                action
            }
            Err(error) => {
                last = None;
                failures += 1;
                failed(&shared, &spec.campaign, &error, failures)
            }
        };
        if desired.has_changed().unwrap_or(true) {
            continue;
        }
        match action {
            Action::AwaitChange | Action::AwaitEnvironment => {
                tokio::select! {
                    _ = desired.changed() => {}
                    () = stop.wait() => return,
                }
            }
            Action::Requeue(after) | Action::Wake(after) => {
                tokio::select! {
                    _ = desired.changed() => {}
                    () = tokio::time::sleep(after) => {}
                    () = stop.wait() => return,
                }
            }
            Action::Stop => {
                shared.stopped_all.store(true, Ordering::SeqCst);
                shared.stop_all.stop();
                return;
            }
        }
    }
}

/// A stop for one reconcile, set when the campaign changes or the process is asked to
/// stop; the task that sets it is to be aborted once the reconcile is over.
fn stop_on_change(
    mut changes: watch::Receiver<Desired>,
    mut global: Stop,
) -> (Stop, tokio::task::JoinHandle<()>) {
    let (handle, stop) = Stop::new();
    let forward = tokio::spawn(async move {
        tokio::select! {
            _ = changes.changed() => {}
            () = global.wait() => {}
        }
        handle.stop();
    });
    (stop, forward)
}

/// What a failed reconcile leads to, said truthfully and shown on the status page.
fn failed(shared: &Shared, campaign: &Campaign, error: &ReconcileError, failures: u32) -> Action {
    let action = reconcile::error_policy(campaign, error, failures);
    let message = error.to_string();
    shared.live.update(&campaign.name, |live| {
        live.prepared = true;
        live.waiting = Some(format!("{message}; {action}"));
    });
    (shared.report)(Event::Failed {
        campaign: campaign.name.clone(),
        message,
        next: action,
    });
    action
}
