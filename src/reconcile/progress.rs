//! The progress bar of a send, for people only: on stderr when it is a terminal, never
//! with `-o json`. The rate is whole messages per second over the whole run, and the ETA
//! appears once a few seconds give it something to stand on, so neither jumps around.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How long the bar measures before it shows an ETA.
const SETTLE: Duration = Duration::from_secs(3);

pub struct Bar {
    bar: ProgressBar,
    started: Instant,
}

impl Bar {
    pub fn new(show: bool, campaign: &str, total: u64) -> Self {
        let bar = if show {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
                    .expect("a valid template")
                    .progress_chars("=> "),
            );
            bar.set_prefix(campaign.to_owned());
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        } else {
            ProgressBar::hidden()
        };
        Self {
            bar,
            started: Instant::now(),
        }
    }

    /// `n` more recipients have an outcome.
    pub fn add(&self, n: u64) {
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

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
