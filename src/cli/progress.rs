//! The progress bar of a send, for people only: drawn from the reconciler's progress
//! events on stderr when it is a terminal, never with `-o json`. The rate is whole
//! messages per second over the whole run, and the ETA appears once a few seconds give it
//! something to stand on, so neither jumps around.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::reconcile::{Observer, Progress};

/// How long a bar measures before it shows an ETA.
const SETTLE: Duration = Duration::from_secs(3);

/// An observer that draws a bar per campaign being sent, or hears nothing when `show`
/// is false.
pub fn bars(show: bool) -> Observer {
    if !show {
        return Observer::default();
    }
    let bars: Mutex<HashMap<String, Bar>> = Mutex::default();
    Observer::new(move |progress| {
        let mut bars = bars.lock().expect("the progress lock");
        match progress {
            Progress::Started { campaign, due } => {
                bars.insert(campaign.to_owned(), Bar::new(campaign, due));
            }
            Progress::Settled { campaign, settled } => {
                if let Some(bar) = bars.get(campaign) {
                    bar.add(settled);
                }
            }
            Progress::Finished { campaign } => {
                if let Some(bar) = bars.remove(campaign) {
                    bar.bar.finish_and_clear();
                }
            }
        }
    })
}

struct Bar {
    bar: ProgressBar,
    started: Instant,
}

impl Bar {
    fn new(campaign: &str, total: u64) -> Self {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(campaign.to_owned());
        bar.enable_steady_tick(Duration::from_millis(250));
        Self {
            bar,
            started: Instant::now(),
        }
    }

    /// `n` more recipients have an outcome.
    fn add(&self, n: u64) {
        self.bar.inc(n);
        let elapsed = self.started.elapsed();
        let done = self.bar.position();
        #[allow(clippy::cast_precision_loss)]
        let rate = done as f64 / elapsed.as_secs_f64().max(0.001);
        let left = self.bar.length().unwrap_or(done).saturating_sub(done);
        let message = if elapsed < SETTLE || rate <= 0.0 {
            format!("{rate:.0}/s")
        } else {
            #[allow(clippy::cast_precision_loss)]
            let eta = Duration::from_secs_f64(left as f64 / rate);
            format!(
                "{rate:.0}/s, ETA {}",
                humantime::format_duration(Duration::from_secs(eta.as_secs()))
            )
        };
        self.bar.set_message(message);
    }
}
