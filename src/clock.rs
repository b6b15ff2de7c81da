//! The time schedules are judged at: the one clock plan, apply and watch read.
//!
//! It is the system's clock, unless `HERALD_TEST_ONLY_NOW` holds an RFC 3339 instant:
//! then the clock starts at that instant when herald first reads it and runs at the
//! real pace from there. That is for tests only (a week of windows without waiting a
//! week); nothing else reads the time for schedules, so what a test sets holds for the
//! plan, the sends, the times recorded in the state store and watch's wake-ups alike.

use std::sync::OnceLock;
use std::time::Instant;

use jiff::{SignedDuration, Timestamp};

/// Sets the clock, for tests only.
pub const TEST_NOW_ENV: &str = "HERALD_TEST_ONLY_NOW";

/// Where the clock was set, and when (in the machine's monotonic time) it was read first.
static SET: OnceLock<Option<(Timestamp, Instant)>> = OnceLock::new();

/// Now, as schedules see it.
pub fn now() -> Timestamp {
    let set = SET.get_or_init(|| {
        let value = std::env::var(TEST_NOW_ENV).ok()?;
        match value.trim().parse::<Timestamp>() {
            Ok(at) => Some((at, Instant::now())),
            Err(error) => {
                tracing::warn!(
                    "{TEST_NOW_ENV}=`{value}` is not an RFC 3339 instant ({error}): ignored"
                );
                None
            }
        }
    });
    match set {
        Some((at, since)) => {
            let elapsed = SignedDuration::try_from(since.elapsed()).unwrap_or(SignedDuration::MAX);
            at.saturating_add(elapsed).unwrap_or(Timestamp::MAX)
        }
        None => Timestamp::now(),
    }
}

/// Now in Unix seconds, for the records of the state store.
pub fn unix_now() -> u64 {
    u64::try_from(now().as_second()).unwrap_or(0)
}

/// An instant as people and JSON read it: RFC 3339 in UTC, to the second.
pub fn format(at: Timestamp) -> String {
    at.round(jiff::Unit::Second)
        .unwrap_or(at)
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}
