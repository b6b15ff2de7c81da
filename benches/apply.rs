//! Benchmark: apply a synthetic 100,000-recipient campaign (5 locales, the shipped
//! templates) to the outbox with a durable state store, at an unlimited rate, batches of
//! 1,000. Run with `cargo bench --bench apply`; `HERALD_BENCH_ROWS` changes the size.
//!
//! It runs `herald apply` in-process, the same code path as the binary, and times the
//! preflight (plan: render everyone) on its own, so the rest is the send: render again,
//! build each RFC 5322 message, write and rename its file, and flush the state store twice
//! per batch.
//!
//! Target (issue 4): at least 20,000 messages per second.

mod common;

use std::time::Instant;

use common::{peak_memory_mb, size, write_campaign};

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
    let plan = herald::plan::plan(&manifests.campaigns[0], None).expect("bench campaign plans");
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

    let written = std::fs::read_dir(dir.path().join("outbox/index-methodology-2019-11"))
        .expect("the outbox exists")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "eml"))
        })
        .count();
    assert_eq!(written as u64, plan.to_send, "one file per recipient");
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
}
