//! What happens next, decided in one place: after a reconcile that ended, and after one
//! that failed. apply and watch both ask here; they differ only in that apply runs once
//! (a requeue there means "exit, and run apply again"), while watch waits and goes on.
//!
//! Every error is judged by what it means, and every match below names each case, so a new
//! error cannot be classified without someone deciding what it means.

use std::fmt;
use std::time::Duration;

use super::{Ending, ReconcileError, Report};
use crate::manifest::Campaign;
use crate::plan::PlanError;
use crate::render::RenderError;
use crate::store::StoreError;
use crate::transport::TransportError;

/// The first wait after something that may pass by itself; it doubles per failure in a
/// row, up to `LONGEST_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const LONGEST_BACKOFF: Duration = Duration::from_secs(300);
/// The longest wait before looking again whether a transport that was down is back.
const DOWN_BACKOFF: Duration = Duration::from_secs(60);

/// When to reconcile a campaign again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing to do until a manifest or a file it reads changes: converged, paused,
    /// halted, or refused for something only a change can fix.
    AwaitChange,
    /// Nothing to do until herald's environment is fixed (a secret that is not set): a
    /// change to the files, or a restart with the environment fixed.
    AwaitEnvironment,
    /// Work is left that a later pass can do: try again after this long.
    Requeue(Duration),
    /// Everyone due now has an outcome; the schedule makes more due (or expires them)
    /// after this long: look again then. Not a failure: no backoff grows.
    Wake(Duration),
    /// The state store cannot be trusted: nothing more is sent by this process, for any
    /// campaign, until someone looks at it.
    Stop,
}

impl fmt::Display for Action {
    /// What happens next, said to people.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AwaitChange => write!(f, "waiting for a change to its files"),
            Self::AwaitEnvironment => write!(
                f,
                "waiting for a change to its files, or a restart of herald with the environment fixed"
            ),
            Self::Requeue(after) => {
                write!(f, "trying again in {}", humantime::format_duration(*after))
            }
            Self::Wake(after) => write!(
                f,
                "waiting {} for the schedule",
                humantime::format_duration(Duration::from_secs(after.as_secs()))
            ),
            Self::Stop => write!(
                f,
                "herald sends nothing more until the state store is fixed"
            ),
        }
    }
}

/// What an error means for when to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meaning {
    /// Waiting changes nothing: a manifest or a file it reads must change.
    NeedsChange,
    /// Waiting changes nothing, and the fix is in herald's environment (a secret).
    NeedsEnvironment,
    /// It may pass by itself (a disk or store hiccup): try again, backing off.
    Transient,
    /// The state store is damaged, foreign or gone: no campaign may go on.
    StoreUnusable,
}

impl ReconcileError {
    pub fn meaning(&self) -> Meaning {
        match self {
            Self::Plan(error) => plan_meaning(error),
            Self::Store(error) => store_meaning(error),
            Self::Transport(error) => transport_meaning(error),
            Self::ContentChanged { .. } | Self::RevisionWentBack { .. } | Self::Content(_) => {
                Meaning::NeedsChange
            }
            Self::UnsubscribeUnkeyed { .. } => Meaning::NeedsEnvironment,
        }
    }
}

fn plan_meaning(error: &PlanError) -> Meaning {
    match error {
        PlanError::Store(error) => store_meaning(error),
        PlanError::Render(RenderError::ShortKey) => Meaning::NeedsEnvironment,
        PlanError::Render(
            RenderError::CatalogFolder { .. }
            | RenderError::Catalog { .. }
            | RenderError::DefaultCatalogMissing { .. }
            | RenderError::CatalogName { .. }
            | RenderError::Input(_)
            | RenderError::Syntax { .. }
            | RenderError::Template { .. },
        )
        | PlanError::Audience(_)
        | PlanError::InvalidRows { .. }
        | PlanError::UnknownLocales { .. } => Meaning::NeedsChange,
    }
}

fn store_meaning(error: &StoreError) -> Meaning {
    match error {
        // A write that failed (a full disk, say) or a store another process holds for now.
        StoreError::Io { .. } | StoreError::Full { .. } | StoreError::Locked { .. } => {
            Meaning::Transient
        }
        StoreError::Damaged { .. }
        | StoreError::Corrupt { .. }
        | StoreError::Foreign { .. }
        | StoreError::Format { .. }
        | StoreError::Missing { .. } => Meaning::StoreUnusable,
        // Only `herald init` meets an existing store, and it reconciles nothing.
        StoreError::Exists { .. } => Meaning::NeedsChange,
    }
}

fn transport_meaning(error: &TransportError) -> Meaning {
    match error {
        TransportError::MissingSecret { .. } | TransportError::ShortSecret { .. } => {
            Meaning::NeedsEnvironment
        }
        // A batch that failed the isolation check, or settings the transport cannot use.
        TransportError::Isolation(_) | TransportError::Setup { .. } => Meaning::NeedsChange,
    }
}

/// When to reconcile `campaign` again after `error`, its `failures`th in a row.
pub fn error_policy(campaign: &Campaign, error: &ReconcileError, failures: u32) -> Action {
    let action = match error.meaning() {
        Meaning::NeedsChange => Action::AwaitChange,
        Meaning::NeedsEnvironment => Action::AwaitEnvironment,
        Meaning::Transient => Action::Requeue(backoff(failures)),
        Meaning::StoreUnusable => Action::Stop,
    };
    tracing::debug!(campaign = %campaign.name, ?action, %error, "after an error");
    action
}

/// When to reconcile again after a run that ended as `report` says, its `failures`th in a
/// row to leave recipients due because the transport could not take them.
pub fn after_run(report: &Report, failures: u32) -> Action {
    let action = after_ending(report, failures);
    // Under a schedule, a run that did what was due wakes when the next become due
    // (those a window closed on mid-run included), or at `not_after` to record who
    // expired.
    let wake = report.wake.map(|at| {
        let now = crate::clock::now();
        Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO)
    });
    match (action, wake) {
        (Action::AwaitChange, Some(after))
            if matches!(report.ending, Ending::Done | Ending::NothingToSend) =>
        {
            Action::Wake(after)
        }
        (Action::Requeue(after), Some(wake)) => Action::Requeue(after.min(wake)),
        (action, _) => action,
    }
}

fn after_ending(report: &Report, failures: u32) -> Action {
    match report.ending {
        // The transport could not take some (the outbox could not write): they are due
        // again, and a later pass can send them.
        Ending::Done | Ending::Interrupted if report.not_sent > 0 => {
            Action::Requeue(backoff(failures.max(1)).max(Duration::from_secs(30)))
        }
        // The transport could not take calls: everyone left waits, and a later pass tries
        // one call to see whether it is back, soon at first, then at most a minute apart.
        Ending::TransportDown => Action::Requeue(backoff(failures.max(1)).min(DOWN_BACKOFF)),
        Ending::NothingToSend
        | Ending::Done
        | Ending::Paused
        | Ending::Halted
        | Ending::Interrupted => Action::AwaitChange,
    }
}

/// A wait that doubles per failure in a row, from a second up to five minutes.
fn backoff(failures: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(1 << failures.saturating_sub(1).min(9))
        .min(LONGEST_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_a_second_to_five_minutes() {
        let waits: Vec<u64> = (1..=11).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
    }

    #[test]
    fn a_damaged_store_stops_everything_and_a_failed_write_is_tried_again() {
        let damaged = StoreError::Damaged {
            path: "state".into(),
            reason: "lost writes".into(),
        };
        assert_eq!(store_meaning(&damaged), Meaning::StoreUnusable);
        let full = StoreError::Io {
            path: "state".into(),
            reason: "No space left on device".into(),
        };
        assert_eq!(store_meaning(&full), Meaning::Transient);
    }
}
