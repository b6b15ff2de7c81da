//! What one reconcile of one campaign did. Serialized in `apply -o json`; see docs/output.md.

use serde::Serialize;

use crate::plan::CampaignPlan;

/// How a reconcile ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    /// Nobody was due.
    NothingToSend,
    /// Everyone due got an outcome.
    Done,
    /// `paused: true`: nothing (more) was sent.
    Paused,
    /// The safety gate stopped the campaign.
    Halted,
    /// Ctrl-C or SIGTERM: the batch in flight was finished and recorded.
    Interrupted,
    /// The transport could not take calls: everyone left is due, nobody was charged.
    TransportDown,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub name: String,
    pub ending: Ending,
    /// Outcomes of this run.
    pub sent: u64,
    pub failed: u64,
    pub uncertain: u64,
    /// Due, but certainly not sent (the transport could not take them); due again next run.
    pub not_sent: u64,
    /// Left for their next window: it closed before their call (under a schedule).
    pub deferred: u64,
    /// Recorded `expired` by this run: `not_after` passed before they were sent.
    pub expired: u64,
    /// Under a schedule, when the next recipients become due (RFC 3339); `null` when
    /// nobody is waiting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_due: Option<String>,
    /// When to look again for the schedule: the next due, or `not_after` to record who
    /// expired.
    #[serde(skip)]
    pub wake: Option<jiff::Timestamp>,
    /// `next_due` as an instant.
    #[serde(skip)]
    pub next_due_at: Option<jiff::Timestamp>,
    /// Intents left by an earlier, interrupted run, now reported as uncertain.
    pub recovered: u64,
    /// From earlier runs.
    pub already_sent: u64,
    pub previously_failed: u64,
    pub previously_uncertain: u64,
    /// Due in the current stage when this run started.
    pub due: u64,
    /// Provider calls this run started.
    pub calls: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub halted: Option<String>,
    /// The transport that could not take calls, when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub down: Option<super::breaker::Down>,
    pub seconds: f64,
}

impl Report {
    /// A report of nothing done yet, for the campaign `plan` is about.
    pub fn new(plan: &CampaignPlan, recovered: u64) -> Self {
        Self {
            name: plan.name.clone(),
            ending: Ending::Done,
            sent: 0,
            failed: 0,
            uncertain: 0,
            not_sent: 0,
            deferred: 0,
            expired: 0,
            next_due: plan.schedule.as_ref().and_then(|s| s.next_due.clone()),
            wake: plan.schedule.as_ref().and_then(|s| s.wake),
            next_due_at: plan.schedule.as_ref().and_then(|s| s.next_due_at),
            recovered,
            already_sent: plan.already_sent,
            previously_failed: plan.failed,
            previously_uncertain: plan.uncertain,
            due: plan.to_send,
            calls: 0,
            halted: None,
            down: None,
            seconds: 0.0,
        }
    }

    /// Some recipients left for their next window become due at `at`.
    pub fn due_again(&mut self, at: jiff::Timestamp) {
        let next = self.next_due_at.map_or(at, |next| next.min(at));
        self.next_due_at = Some(next);
        self.next_due = Some(crate::clock::format(next));
        self.wake = Some(self.wake.map_or(at, |wake| wake.min(at)));
    }

    /// Whether this run went wrong part-way: exit code 1.
    pub fn failed_part_way(&self) -> bool {
        self.failed + self.uncertain + self.not_sent + self.recovered > 0
            || matches!(
                self.ending,
                Ending::Halted | Ending::Interrupted | Ending::TransportDown
            )
    }
}
