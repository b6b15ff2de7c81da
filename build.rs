//! Names the build in `herald --version`: the commit it was built from and the date.
//!
//! An operator looking at a running herald needs to know which source it is, and a bug
//! report needs the same. The commit comes from `HERALD_BUILD_COMMIT` when set (the
//! `Containerfile` passes its `REVISION` build argument, since the image's build context
//! has no `.git`), else from `git rev-parse` when this package is the top of a git work
//! tree, else `unknown` (a source tarball). The date is `SOURCE_DATE_EPOCH` when set, so
//! that a reproducible build gives the same binary twice, else today (UTC).
//!
//! # Caveats
//! The script runs again only when the checked-out commit or those variables change, so
//! a development build keeps the date of its first build after the last commit. Release
//! builds (the package, the image) start clean and get the right one.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=HERALD_BUILD_COMMIT");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let commit = std::env::var("HERALD_BUILD_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .map(|c| c.trim().to_owned())
        .or_else(|| git_commit(&manifest))
        .unwrap_or_else(|| "unknown".to_owned());
    let seconds = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
        });
    println!("cargo:rustc-env=HERALD_BUILD_COMMIT={commit}");
    println!("cargo:rustc-env=HERALD_BUILD_DATE={}", date(seconds));
}

/// The short commit of the work tree whose top is `manifest`, watching the files that
/// change when it moves; `None` without git or outside a work tree of this package.
fn git_commit(manifest: &Path) -> Option<String> {
    let top = git(manifest, &["rev-parse", "--show-toplevel"])?;
    // A tarball unpacked inside some other repository is not that repository's commit.
    if std::fs::canonicalize(top).ok()? != std::fs::canonicalize(manifest).ok()? {
        return None;
    }
    let commit = git(manifest, &["rev-parse", "--short=12", "HEAD"])?;
    let git_dir = git(manifest, &["rev-parse", "--absolute-git-dir"])?;
    let common = git(manifest, &["rev-parse", "--git-common-dir"])
        .map_or_else(|| PathBuf::from(&git_dir), |c| manifest.join(c));
    let mut watched = vec![Path::new(&git_dir).join("HEAD"), common.join("packed-refs")];
    if let Some(branch) = git(manifest, &["symbolic-ref", "-q", "HEAD"]) {
        watched.push(common.join(branch));
    }
    // A path that does not exist would make cargo run this script on every build.
    for path in watched.iter().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    Some(commit)
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let text = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (!text.is_empty()).then_some(text)
}

/// `YYYY-MM-DD` (UTC) of a Unix time, by Howard Hinnant's `civil_from_days`.
fn date(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}
