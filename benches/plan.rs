//! Benchmark: plan a synthetic 1,000,000-recipient audience in 5 locales with the shipped
//! campaign's templates (~2.3 KB html + ~0.5 KB text, 18 catalog keys), rendering every
//! recipient on all cores. Run with `cargo bench --bench plan`; set `HERALD_BENCH_ROWS` to
//! change the size. Prints throughput and peak memory (`VmHWM`).
//!
//! Target (issue 3): at least 200,000 recipients rendered per second on 2 cores, peak
//! memory under 300 MB.

use std::fmt::Write as _;
use std::fs;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

// The same allocator as the herald binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let rows: usize = std::env::var("HERALD_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("temporary folder");
    let started = Instant::now();
    write_campaign(dir.path(), rows);
    eprintln!("wrote {rows} rows in {:.1?}", started.elapsed());

    let manifests =
        herald::manifest::load(&dir.path().join("campaigns")).expect("bench manifests are valid");
    let campaign = &manifests.campaigns[0];
    let started = Instant::now();
    let plan = herald::plan::plan(campaign, None).expect("bench campaign plans");
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

/// The shipped campaign's templates and catalogs, with a generated audience.
fn write_campaign(dir: &Path, rows: usize) {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("campaigns");
    let campaigns = dir.join("campaigns");
    for sub in ["templates", "locales", "audiences"] {
        fs::create_dir_all(campaigns.join(sub)).unwrap();
    }
    for sub in ["templates", "locales"] {
        for entry in fs::read_dir(shipped.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            fs::copy(&path, campaigns.join(sub).join(path.file_name().unwrap())).unwrap();
        }
    }
    fs::copy(
        shipped.join("transports.yaml"),
        campaigns.join("transports.yaml"),
    )
    .unwrap();
    let manifest = fs::read_to_string(shipped.join("index-methodology-2019-11.yaml")).unwrap();
    fs::write(
        campaigns.join("campaign.yaml"),
        manifest
            .replace("      - audiences/unsubscribed.csv\n", "      []\n")
            .replace("suppress:\n      []", "suppress: []"),
    )
    .unwrap();

    let locales = ["en", "zh", "ja", "ko", "ru"];
    let names = ["Alice", "王芳", "さくら", "지수", "Ольга"];
    let mut out =
        BufWriter::new(fs::File::create(campaigns.join("audiences/customers.csv")).unwrap());
    writeln!(out, "customer_id,email,first_name,locale,country").unwrap();
    let mut line = String::new();
    for i in 0..rows {
        line.clear();
        let k = i % locales.len();
        let _ = writeln!(
            line,
            "C{i:07},user{i}@example.com,{},{},XX",
            names[k], locales[k]
        );
        out.write_all(line.as_bytes()).unwrap();
    }
    out.flush().unwrap();
}

fn peak_memory_mb() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}
