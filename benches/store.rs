//! Benchmark: the state store alone, as calls use it: `begin` (one intent of 1,000
//! recipients) then `finish` (their 1,000 outcomes), from several threads at once, on a
//! real store on disk (the journal, with sled beside it). What it measures is the store's share of every message sent.
//!
//! `HERALD_BENCH_CALLS` (default 300) calls of 1,000, `HERALD_BENCH_THREADS` (default 16,
//! SendGrid's calls in flight) at once.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use common::size;

use herald::store::{Change, IfMissing, Intent, RecipientRecord, Status, Store, now};

// The same allocator as the herald binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let calls = size("HERALD_BENCH_CALLS", 300);
    let threads = size("HERALD_BENCH_THREADS", 16);
    let dir = tempfile::tempdir().expect("temporary folder");
    let store = Store::open(&dir.path().join("state"), IfMissing::Create).expect("a store");
    let campaign = Arc::new(store.campaign("bench").expect("a campaign"));
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let (campaign, next) = (Arc::clone(&campaign), Arc::clone(&next));
            scope.spawn(move || {
                loop {
                    let call = next.fetch_add(1, Ordering::SeqCst);
                    if call >= calls {
                        return;
                    }
                    let keys: Vec<String> = (0..1000)
                        .map(|i| format!("user{}@example.com", call * 1000 + i))
                        .collect();
                    let intent = campaign
                        .begin(&Intent {
                            revision: 1,
                            started: now(),
                            recipients: keys.iter().map(|k| (k.clone(), 1)).collect(),
                        })
                        .expect("begin");
                    let changes: Vec<Change> = keys
                        .into_iter()
                        .map(|key| {
                            let record = RecipientRecord {
                                status: Status::Sent,
                                attempts: 1,
                                revision: 1,
                                provider_id: Some("bench-0123456789abcdef".to_owned()),
                                reason: None,
                                updated: now(),
                            };
                            Change { key, record }
                        })
                        .collect();
                    campaign.finish(Some(&intent), &changes).expect("finish");
                }
            });
        }
    });
    let seconds = started.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let per_second = (calls * 1000) as f64 / seconds;
    println!(
        "{calls} calls of 1,000 from {threads} threads: {seconds:.2} s, {per_second:.0} recipients recorded per second, peak memory {} MB",
        common::peak_memory_mb()
    );
    assert_eq!(campaign.counts().sent, calls as u64 * 1000);
}
