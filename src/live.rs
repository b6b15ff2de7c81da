//! What each campaign is doing right now, in memory: written by the reconciler as it
//! prepares and sends, read by the status page, `/readyz` and the metrics. The state store
//! stays the record of what happened; this is the view of what is happening.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::git::GitRevision;
use crate::manifest::Stage;

/// Every campaign's live view. Cheap to clone; clones share it.
#[derive(Clone, Default)]
pub struct Live(Arc<Mutex<BTreeMap<String, CampaignLive>>>);

#[derive(Debug, Clone, Default)]
pub struct CampaignLive {
    /// Whether it has been through `prepare` once, whatever came of it.
    pub prepared: bool,
    pub transport: String,
    pub stage: Option<Stage>,
    pub revision: u32,
    pub paused: bool,
    pub halted: Option<String>,
    pub git: Option<GitRevision>,
    /// Due when the current (or last) run started.
    pub due: u64,
    /// Audience addresses suppressed, in the last plan.
    pub suppressed: u64,
    /// Outcomes of the current (or last) run.
    pub sent: u64,
    pub failed: u64,
    pub uncertain: u64,
    /// When the current run started sending, while it sends.
    pub sending_since: Option<Instant>,
    /// The last finished run: how many it sent, in how many seconds.
    pub last_run: Option<(u64, f64)>,
    /// Why it is not sending, when it is not: a refusal, a wait, a halt.
    pub waiting: Option<String>,
    /// Under a schedule, when the next recipients become due, as the last plan found.
    pub next_due: Option<jiff::Timestamp>,
}

impl CampaignLive {
    /// Marks the end of a run.
    pub fn finish(&mut self) {
        if let Some(since) = self.sending_since.take() {
            self.last_run = Some((self.sent, since.elapsed().as_secs_f64()));
        }
    }

    /// Messages per second in the current run.
    pub fn rate(&self) -> Option<f64> {
        let since = self.sending_since?;
        let seconds = since.elapsed().as_secs_f64();
        #[allow(clippy::cast_precision_loss)]
        (seconds >= 1.0).then(|| self.sent as f64 / seconds)
    }

    /// Seconds until everyone due has an outcome, at the current rate.
    pub fn eta(&self) -> Option<f64> {
        let rate = self.rate().filter(|r| *r > 0.0)?;
        let left = self
            .due
            .saturating_sub(self.sent + self.failed + self.uncertain);
        #[allow(clippy::cast_precision_loss)]
        Some(left as f64 / rate)
    }
}

impl Live {
    /// Changes one campaign's view.
    pub fn update(&self, campaign: &str, change: impl FnOnce(&mut CampaignLive)) {
        let mut all = self.0.lock().expect("live lock");
        change(all.entry(campaign.to_owned()).or_default());
    }

    /// Forgets a campaign whose manifest is gone.
    pub fn remove(&self, campaign: &str) {
        self.0.lock().expect("live lock").remove(campaign);
    }

    /// A copy of every campaign's view, by name.
    pub fn snapshot(&self) -> BTreeMap<String, CampaignLive> {
        self.0.lock().expect("live lock").clone()
    }

    /// Whether every campaign known here has been prepared once.
    pub fn ready(&self) -> bool {
        self.0
            .lock()
            .expect("live lock")
            .values()
            .all(|c| c.prepared)
    }
}
