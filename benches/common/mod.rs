//! The synthetic campaign both benchmarks run: the shipped templates and catalogs with a
//! generated audience in 5 locales.

use std::fmt::Write as _;
use std::fs;
use std::io::{BufWriter, Write};
use std::path::Path;

/// The shipped campaign's templates and catalogs, with a generated audience.
#[allow(dead_code)] // not every benchmark writes a campaign
pub fn write_campaign(dir: &Path, rows: usize, per_second: u64) {
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
            .replace("suppress:\n      []", "suppress: []")
            .replace("per_second: 50", &format!("per_second: {per_second}")),
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

/// The process's peak resident memory (`VmHWM`), in MB.
#[allow(dead_code)] // not every benchmark reports it
pub fn peak_memory_mb() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

/// A size from the environment variable `variable`, else `default`.
pub fn size(variable: &str, default: usize) -> usize {
    std::env::var(variable)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What `/usr/bin/time` saw of one herald run.
#[allow(dead_code)] // not every benchmark runs the binary
pub struct Timed {
    /// Peak resident memory, MB.
    pub peak_mb: u64,
    /// CPU time, user and system, in seconds.
    pub cpu_seconds: f64,
}

/// Runs the release `herald` (or the binary `HERALD_BENCH_BIN` names, to compare another
/// build side by side) with `args` and `env` to the end, output discarded, under
/// `/usr/bin/time`. Panics unless it exits 0.
#[allow(dead_code)] // not every benchmark runs the binary
pub fn herald_timed(args: &[&std::ffi::OsStr], env: &[(&str, &str)]) -> Timed {
    let herald =
        std::env::var_os("HERALD_BENCH_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_herald").into());
    let output = std::process::Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%M %U %S")
        .arg(herald)
        .args(args)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .output()
        .expect("/usr/bin/time runs herald");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "herald failed: {stderr}");
    let fields: Vec<f64> = stderr
        .lines()
        .last()
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    let [kb, user, system] = fields[..] else {
        panic!("/usr/bin/time printed {stderr}");
    };
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Timed {
        peak_mb: kb as u64 / 1024,
        cpu_seconds: user + system,
    }
}
