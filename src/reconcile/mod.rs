//! Reconciling, kube-style: `reconcile` looks at what the manifests want and what the
//! state store says happened, does the difference, and returns an `Action` saying when
//! to look again. It is level-triggered: it never relies on remembering events, so it can
//! run at any moment, after any crash, and converge. `error_policy` decides separately
//! what an error means for when to try again.
//!
//! A reconcile is `prepare` (refusals, and the plan, which renders every recipient) then
//! `execute` (sending). `apply` prepares every campaign before executing any, so a refusal
//! anywhere sends nothing anywhere.
//!
//! - `prepare`: refusals (changed content, unkeyed unsubscribe links) and the plan.
//! - `produce`: the audience walked again, the due rendered and packed into calls.
//! - `execute`: calls in flight, the rate, the safety gate, stops.
//! - `call`: one call, from durable intent to recorded outcomes, retries included.
//! - `pace`: the rate as token buckets; `gate`: the safety gate.
//!
//! # Guarantees
//! - Intent is recorded and flushed before a call is handed to the transport, and the
//!   outcome after; a crash between them leaves that call `uncertain` (at most
//!   `concurrency` calls, the most in flight at once).
//! - The declared rate is a ceiling: in any window of W seconds, at most
//!   `rate * W + max(1, rate)` messages are accepted (see `pace`).
//! - A stop request (Ctrl-C, SIGTERM, a change under watch) never interrupts a call in
//!   flight; no new call starts, and the sender stops within a second.

mod call;
mod error;
mod execute;
mod fingerprint;
mod gate;
mod pace;
mod prepare;
mod produce;
mod progress;
mod report;
mod stop;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub use error::{Meaning, ReconcileError};
pub use execute::execute;
pub use pace::TransportLimits;
pub use prepare::{Prepared, check_content, prepare};
pub use progress::{Observer, Progress};
pub use report::{Ending, Report};
pub use stop::{Stop, StopHandle};

use crate::git::GitRevision;
use crate::live::Live;
use crate::manifest::Campaign;
use crate::metrics::Metrics;
use crate::store::Store;

/// What a reconcile needs besides the campaign.
pub struct Context {
    pub store: Store,
    /// `apply --resend-uncertain`: uncertain recipients are due again.
    pub resend_uncertain: bool,
    pub stop: Stop,
    /// Who hears how sending goes (the command line's progress bar).
    pub progress: Observer,
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
    /// Work is left that a later pass can do (a transport that could not take a call).
    Requeue(Duration),
}

pub struct Reconciled {
    pub report: Report,
    pub action: Action,
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
