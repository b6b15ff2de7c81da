//! Benchmark: plan a synthetic 1,000,000-recipient audience in 5 locales with the shipped
//! campaign's templates (~2.3 KB html + ~0.5 KB text, 18 catalog keys), rendering every
//! recipient on all cores. Run with `cargo bench --bench plan`; set `HERALD_BENCH_ROWS` to
//! change the size. Prints throughput and peak memory (`VmHWM`).
//!
//! Target (issue 3): at least 200,000 recipients rendered per second on 2 cores, peak
//! memory under 300 MB.

mod common;

use std::time::Instant;

use common::{peak_memory_mb, size, write_campaign};

// The same allocator as the herald binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let rows = size("HERALD_BENCH_ROWS", 1_000_000);
    let dir = tempfile::tempdir().expect("temporary folder");
    let started = Instant::now();
    write_campaign(dir.path(), rows, 50);
    eprintln!("wrote {rows} rows in {:.1?}", started.elapsed());

    let manifests =
        herald::manifest::load(&dir.path().join("campaigns")).expect("bench manifests are valid");
    let campaign = &manifests.campaigns[0];
    let started = Instant::now();
    let delivery = herald::plan::Delivery::of(campaign, None);
    let plan = herald::plan::plan(campaign, None, &delivery, herald::clock::now())
        .expect("bench campaign plans");
    let elapsed = started.elapsed().as_secs_f64();

    assert_eq!(plan.audience.rows, rows as u64);
    #[allow(clippy::cast_precision_loss)]
    let per_second = plan.audience.unique as f64 / elapsed;
    println!("recipients:       {}", plan.audience.unique);
    println!("locales:          {}", plan.locales.len());
    println!("threads:          {}", rayon::current_num_threads());
    println!("plan time:        {elapsed:.2} s");
    println!("rendered/second:  {per_second:.0}");
    println!("peak memory:      {} MB", peak_memory_mb());
    println!(
        "plan says:        {} to send, {}",
        plan.to_send, plan.duration
    );
}
