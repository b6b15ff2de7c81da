//! The systemd units in `deploy/`, judged by the tools an operator runs on them:
//! `systemd-analyze verify` (syntax, the programs they run, the units they depend on, the
//! manual pages they cite) and `systemd-analyze security` (their sandbox: an exposure of
//! at most 2.5 of 10), and the pull they run, against a checkout owned by another user.
//!
//! No systemd runs as PID 1 here or in CI, and `verify` needs none: both commands run
//! offline against a root folder laid out as an installed system would be: the host's
//! own unit files (for the targets ours depend on), ours in `/etc/systemd/system`, the
//! programs they start in `/usr/bin` (this build of herald, the host's git) and, through
//! `MANPATH`, the pages `herald man --dir` writes, which `verify` looks up for
//! `Documentation=man:`.

use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::process::Command;

use crate::servers::unavailable;
use crate::tools::{self, assert_herald_parses, checkout, printed};

const SERVICES: [&str; 2] = ["herald.service", "herald-pull.service"];
const UNITS: [&str; 3] = ["herald.service", "herald-pull.service", "herald-pull.timer"];

fn unit(name: &str) -> String {
    std::fs::read_to_string(checkout().join("deploy").join(name))
        .unwrap_or_else(|e| panic!("deploy/{name}: {e}"))
}

/// Every value of `key` in `unit`, in order.
fn values<'a>(unit: &'a str, key: &str) -> Vec<&'a str> {
    unit.lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .collect()
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        let kind = entry.file_type().unwrap();
        if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path()).unwrap(), target).unwrap();
        } else if kind.is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A root folder with the units installed, and the `MANPATH` holding herald's pages.
fn installed() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    copy_tree(
        Path::new("/usr/lib/systemd/system"),
        &root.path().join("usr/lib/systemd/system"),
    );
    let units = root.path().join("etc/systemd/system");
    std::fs::create_dir_all(&units).unwrap();
    for name in UNITS {
        std::fs::write(units.join(name), unit(name)).unwrap();
    }
    let bin = root.path().join("usr/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_herald"), bin.join("herald")).unwrap();
    std::fs::copy("/usr/bin/git", bin.join("git")).expect("git is installed as /usr/bin/git");
    let man = root.path().join("usr/share/man/man1");
    std::fs::create_dir_all(&man).unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["man", "--dir"])
        .arg(&man)
        .status()
        .unwrap();
    assert!(status.success());
    root
}

fn analyze(root: &Path, args: &[&str]) -> std::process::Output {
    let systemd_analyze = tools::systemd_analyze().expect("checked by the caller");
    Command::new(systemd_analyze)
        .env("MANPATH", root.join("usr/share/man"))
        .args(args)
        .arg(format!("--root={}", root.display()))
        .output()
        .expect("systemd-analyze runs")
}

#[test]
fn units_pass_systemd_analyze_verify() {
    if tools::systemd_analyze().is_none() {
        return;
    }
    let root = installed();
    let mut args = vec!["verify"];
    args.extend(UNITS);
    let verified = analyze(root.path(), &args);
    assert!(
        verified.status.success() && printed(&verified).is_empty(),
        "systemd-analyze verify: {}",
        printed(&verified)
    );
}

#[test]
fn services_are_sandboxed_to_an_exposure_of_at_most_2_5() {
    if tools::systemd_analyze().is_none() {
        return;
    }
    let root = installed();
    for service in SERVICES {
        let rated = analyze(root.path(), &["security", "--offline=true", service]);
        let table = printed(&rated);
        let prefix = format!("Overall exposure level for {service}: ");
        let exposure: f64 = table
            .lines()
            .find_map(|l| l.split_once(&prefix))
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no exposure level for {service} in\n{table}"));
        assert!(
            rated.status.success() && exposure <= 2.5,
            "{service} is exposed at {exposure}:\n{table}"
        );
    }
}

#[test]
fn services_run_herald_and_git_as_herald_with_secrets_only_for_herald() {
    let herald = unit("herald.service");
    let command = values(&herald, "ExecStart");
    assert_eq!(
        command,
        ["/usr/bin/herald watch /srv/herald/campaigns --listen 127.0.0.1:9400"]
    );
    let args: Vec<&str> = command[0].split_whitespace().skip(1).collect();
    assert_herald_parses(&args);
    assert_eq!(
        values(&herald, "EnvironmentFile"),
        ["/etc/herald/secrets.env"]
    );
    assert_eq!(values(&herald, "StateDirectory"), ["herald"]);
    let pull = unit("herald-pull.service");
    assert_eq!(values(&pull, "EnvironmentFile"), Vec::<&str>::new());
    assert_eq!(values(&pull, "TimeoutStartSec"), ["2min"]);
    for unit in [&herald, &pull] {
        assert_eq!(values(unit, "User"), ["herald"]);
    }
}

/// The regression the issue found: a checkout cloned by root, pulled by `herald`, and git
/// refusing every pull with "detected dubious ownership", so that campaigns silently
/// stopped updating. The pull's own command and environment, run here by root against a
/// checkout owned by someone else, must go through.
#[test]
fn pull_goes_through_on_a_checkout_owned_by_another_user() {
    if std::fs::metadata("/proc/self").unwrap().uid() != 0 {
        let _: Option<()> = unavailable("root (to give a checkout to another user)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    // Nothing from this machine's git configuration: only what the unit sets.
    let git = |cwd: &Path, args: &[&str]| {
        let output = Command::new("/usr/bin/git")
            .current_dir(cwd)
            .env("HOME", &home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "git {args:?}: {}",
            printed(&output)
        );
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    };
    let origin = dir.path().join("origin");
    std::fs::create_dir(&origin).unwrap();
    git(&origin, &["init", "-q", "-b", "main"]);
    git(&origin, &["commit", "-q", "--allow-empty", "-m", "first"]);
    git(dir.path(), &["clone", "-q", "origin", "checkout"]);
    git(&origin, &["commit", "-q", "--allow-empty", "-m", "second"]);
    let checkout = dir.path().join("checkout");
    let status = Command::new("chown")
        .args(["-R", "12345:12345"])
        .arg(&checkout)
        .status()
        .unwrap();
    assert!(status.success());

    let pull = unit("herald-pull.service");
    let place = |s: &str| s.replace("/srv/herald", checkout.to_str().unwrap());
    let command: Vec<String> = place(values(&pull, "ExecStart")[0])
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let run = |with_unit_environment: bool| {
        let mut pulled = Command::new(&command[0]);
        pulled
            .args(&command[1..])
            .env("HOME", &home)
            .env("GIT_CONFIG_NOSYSTEM", "1");
        if with_unit_environment {
            for assignment in values(&pull, "Environment")
                .iter()
                .flat_map(|l| l.split(' '))
            {
                let (key, value) = assignment.split_once('=').unwrap();
                pulled.env(key, place(value));
            }
        }
        pulled.output().unwrap()
    };
    let refused = run(false);
    assert!(
        printed(&refused).contains("detected dubious ownership"),
        "without the unit's environment git should refuse: {}",
        printed(&refused)
    );
    let pulled = run(true);
    assert!(pulled.status.success(), "{}", printed(&pulled));
    assert_eq!(
        git(&origin, &["rev-parse", "HEAD"]),
        std::fs::read_to_string(checkout.join(".git/refs/heads/main"))
            .unwrap()
            .trim()
    );
}
