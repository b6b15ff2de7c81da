//! Benchmark: apply a synthetic 100,000-recipient campaign (5 locales, the shipped
//! templates) to the outbox with a durable state store, at an unlimited rate, batches of
//! 1,000. Run with `cargo bench --bench apply`; `HERALD_BENCH_ROWS` changes the size.
//!
//! It runs `herald apply` in-process, the same code path as the binary, and times the
//! preflight (plan: render everyone) on its own, so the rest is the send: render again,
//! build each RFC 5322 message, write and rename its file, and flush the state store twice
//! per batch.
//!
//! Afterwards it measures the ceiling the disk sets: the same number of files, with the
//! same bytes (copies of the messages just written), written as herald writes them (a
//! temporary file, then a rename) on all cores, with nothing else to do. herald renders,
//! builds and records state on the same cores, so it can only approach that figure.
//!
//! Target (issue 4): at least 20,000 messages per second.
//!
//! # Running it again
//! On a filesystem without a journal (this machine's ext4 root is one), ext4 skips inodes
//! freed in the last 60 to 360 seconds when it allocates new ones, and every run frees
//! 200,000 when its temporary folder goes. A run started within about 6 minutes of the
//! last one spends most of its time in that search and measures 2 to 5 times slower.
//! Wait between runs, or point `TMPDIR` at another filesystem.

mod common;

use std::path::Path;
use std::time::Instant;

use common::{peak_memory_mb, size, write_campaign};
use rayon::prelude::*;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let rows = size("HERALD_BENCH_ROWS", 100_000);
    let dir = tempfile::tempdir().expect("temporary folder");
    write_campaign(dir.path(), rows, 10_000_000);
    let campaigns = dir.path().join("campaigns");
    let state = dir.path().join("state");

    let manifests = herald::manifest::load(&campaigns).expect("bench manifests are valid");
    let started = Instant::now();
    let campaign = &manifests.campaigns[0];
    let delivery = herald::plan::Delivery::of(campaign, None);
    let plan = herald::plan::plan(campaign, None, &delivery, herald::clock::now())
        .expect("bench campaign plans");
    let preflight = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let exit = herald::cli::run([
        "herald".as_ref(),
        "--state".as_ref(),
        state.as_os_str(),
        "apply".as_ref(),
        campaigns.as_os_str(),
        "-o".as_ref(),
        "json".as_ref(),
    ]);
    let total = started.elapsed().as_secs_f64();
    assert_eq!(exit, herald::cli::Exit::Success);

    let outbox = dir.path().join("outbox/index-methodology-2019-11");
    let messages: Vec<_> = std::fs::read_dir(&outbox)
        .expect("the outbox exists")
        .map(|e| e.expect("the outbox is readable").path())
        .filter(|path| path.extension().is_some_and(|x| x == "eml"))
        .collect();
    let written = messages.len();
    assert_eq!(written as u64, plan.to_send, "one file per recipient");
    let ceiling = file_ceiling(&messages, &dir.path().join("ceiling"));
    #[allow(clippy::cast_precision_loss)]
    let messages = written as f64;
    eprintln!();
    println!("messages:          {written}");
    println!("apply time:        {total:.2} s");
    println!("messages/second:   {:.0}", messages / total);
    println!("  preflight alone: {preflight:.2} s (plan: render everyone)");
    println!(
        "  send phase:      {:.2} s ({:.0} messages/second)",
        total - preflight,
        messages / (total - preflight)
    );
    println!("peak memory:       {} MB", peak_memory_mb());
    println!(
        "the same files alone: {ceiling:.0} per second (herald reached {:.0}% of it)",
        100.0 * messages / total / ceiling
    );
}

/// Files per second when writing a copy of every message in `messages` to `to` (a
/// temporary file, then a rename), on all cores, with nothing else to do.
fn file_ceiling(messages: &[std::path::PathBuf], to: &Path) -> f64 {
    // Sixteen real messages, cycled: the same sizes and locales without reading them all.
    let samples: Vec<Vec<u8>> = messages
        .iter()
        .take(16)
        .map(|path| std::fs::read(path).expect("a message is readable"))
        .collect();
    std::fs::create_dir_all(to).expect("the ceiling folder");
    let started = Instant::now();
    (0..messages.len()).into_par_iter().for_each(|i| {
        let name = format!("r1-{i:016x}-a1.eml");
        let temporary = to.join(format!(".{name}.tmp"));
        std::fs::write(&temporary, &samples[i % samples.len()]).expect("write");
        std::fs::rename(&temporary, to.join(name)).expect("rename");
    });
    #[allow(clippy::cast_precision_loss)]
    let files = messages.len() as f64;
    files / started.elapsed().as_secs_f64()
}
