//! Reconciling, kube-style: `reconcile` looks at what the manifests want and what the
//! state store says happened, does the difference, and returns an `Action` saying when
//! to look again. It is level-triggered: it never relies on remembering events, so it can
//! run at any moment, after any crash, and converge. `policy` decides what happens
//! next, after a run and after an error, for apply and watch alike.
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

mod breaker;
mod call;
mod error;
mod execute;
pub mod fingerprint;
mod gate;
mod pace;
mod policy;
mod prepare;
mod produce;
mod progress;
mod report;
mod stop;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use breaker::{Breakers, Down};
pub use error::ReconcileError;
pub use execute::{execute, waiting_for_transport};
pub use pace::TransportLimits;
pub use policy::{Action, Meaning, after_run, error_policy};
pub use prepare::{Prepared, check_content, prepare};
pub use progress::{Observer, Progress};
pub use report::{Ending, Report};
pub use stop::{Stop, StopHandle};

use crate::git::GitRevision;
use crate::live::Live;
use crate::manifest::Campaign;
use crate::metrics::Metrics;
use crate::plan::Again;
use crate::store::Store;

/// What a reconcile needs besides the campaign.
pub struct Context {
    pub store: Store,
    /// `apply --resend-uncertain` and `--retry-failed`: who is due again.
    pub again: Again,
    pub stop: Stop,
    /// Who hears how sending goes (the command line's progress bar).
    pub progress: Observer,
    /// Intents found at start and turned uncertain, per campaign.
    pub recovered: BTreeMap<String, u64>,
    /// The git commit of the manifests, recorded with each apply.
    pub git: Option<GitRevision>,
    /// Rate ceilings of transports, shared by the campaigns using them.
    pub limits: TransportLimits,
    /// Whether each transport takes calls now, shared by the campaigns using it.
    pub breakers: Breakers,
    /// What each campaign is doing now, for the status page and the metrics.
    pub live: Live,
    pub metrics: Arc<Metrics>,
}

/// Prepares and executes one campaign. Preparing renders every recipient, so it runs
/// with the worker thread handed over to blocking work (a multi-threaded runtime only).
pub async fn reconcile(campaign: &Campaign, ctx: &Context) -> Result<Report, ReconcileError> {
    let prepared = tokio::task::block_in_place(|| prepare(campaign, ctx))?;
    execute(prepared, ctx).await
}
