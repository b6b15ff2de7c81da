//! The progress bar of a send: sent/total, rate and ETA on stderr, for people only.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub fn bar(show: bool, campaign: &str, total: u64) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {per_sec} ETA {eta}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(campaign.to_owned());
    bar
}
