//! The safety gate: a campaign whose permanent failures pass `halt.max_failure_rate`
//! (after `halt.min_attempts` attempts) stops itself.
//!
//! The gate is judged on the totals in the state store, every run and after every batch,
//! so a halted campaign stays halted until the manifest allows more (level-triggered).

use crate::manifest::Halt;
use crate::store::StatusCounts;

pub struct Gate {
    max_failure_rate: f64,
    min_attempts: u64,
    settled: u64,
    failed: u64,
}

impl Gate {
    pub fn new(halt: &Halt, counts: &StatusCounts) -> Self {
        Self {
            max_failure_rate: halt.max_failure_rate,
            min_attempts: u64::from(halt.min_attempts),
            settled: counts.sent + counts.failed,
            failed: counts.failed,
        }
    }

    pub fn record(&mut self, sent: u64, failed: u64) {
        self.settled += sent + failed;
        self.failed += failed;
    }

    /// Why the campaign must stop, when it must.
    pub fn tripped(&self) -> Option<String> {
        if self.settled < self.min_attempts || self.settled == 0 {
            return None;
        }
        #[allow(clippy::cast_precision_loss)]
        let rate = self.failed as f64 / self.settled as f64;
        (rate > self.max_failure_rate).then(|| {
            format!(
                "{} of {} settled messages ({:.1}%) failed permanently, above halt.max_failure_rate {}%; \
                 fix the cause, then raise spec.halt.max_failure_rate to resume",
                self.failed,
                self.settled,
                rate * 100.0,
                self.max_failure_rate * 100.0
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(sent: u64, failed: u64) -> Gate {
        let counts = StatusCounts {
            sent,
            failed,
            ..StatusCounts::default()
        };
        Gate::new(&Halt::default(), &counts)
    }

    #[test]
    fn trips_only_past_the_share_after_enough_attempts() {
        assert!(
            gate(10, 10).tripped().is_none(),
            "20 attempts are too few to judge"
        );
        assert!(gate(95, 5).tripped().is_none(), "exactly 5% is allowed");
        let reason = gate(94, 6).tripped().expect("6% is over");
        assert!(reason.starts_with("6 of 100 settled messages (6.0%) failed permanently"));
        let mut recovering = gate(94, 6);
        recovering.record(100, 0);
        assert!(recovering.tripped().is_none(), "3% after more successes");
    }
}
