//! `herald watch` as a real process: pause, unpause, break, fix, delete, SIGINT.
//!
//! The "slow transport" is the outbox at 5 messages per second, one per batch, so every
//! message is a provider call of its own and its file's time says when that call began.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use crate::harness::{Test, Workspace, another_campaign};

const WELCOME: &str = "campaigns/welcome.yaml";

fn audience(prefix: &str, n: usize) -> String {
    let mut csv = String::from("email,name\n");
    for i in 0..n {
        let _ = writeln!(csv, "{prefix}{i:03}@example.com,N{i}");
    }
    csv
}

/// Files in the outbox of `campaign`, with when each was written.
fn files(workspace: &Workspace, campaign: &str) -> Vec<SystemTime> {
    let Ok(entries) = std::fs::read_dir(workspace.path().join("outbox").join(campaign)) else {
        return Vec::new();
    };
    entries
        .map(|e| e.unwrap())
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .map(|e| e.metadata().unwrap().modified().unwrap())
        .collect()
}

fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn git(workspace: &Workspace, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(workspace.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "git {args:?}");
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

fn interrupt(child: &Child) {
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn watch_follows_pause_unpause_breakage_fixes_and_removal() {
    let other = another_campaign("other", "others.csv", 5);
    let workspace = Test::campaign()
        .edit(WELCOME, "rate: {per_second: 50}", "rate: {per_second: 5}")
        .edit(WELCOME, "size: 100", "size: 1")
        .file("campaigns/audiences/customers.csv", &audience("w", 200))
        .file("campaigns/audiences/others.csv", &audience("o", 200))
        .file("campaigns/other.yaml", &other)
        .workspace();
    git(&workspace, &["init", "-q"]);
    git(&workspace, &["add", "."]);
    git(&workspace, &["commit", "-qm", "campaigns"]);
    let head = git(&workspace, &["rev-parse", "HEAD"]);

    let child = workspace
        .command(["watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("welcome sends", || files(&workspace, "welcome").len() >= 3);

    // Pause: no batch of welcome starts later than a second after the save.
    workspace.write(WELCOME, &(workspace.read(WELCOME) + "  paused: true\n"));
    let saved = SystemTime::now();
    std::thread::sleep(Duration::from_millis(2500));
    let paused = files(&workspace, "welcome");
    let latest = paused.iter().max().unwrap();
    assert!(
        *latest <= saved + Duration::from_secs(1),
        "a batch started {:?} after pausing",
        latest.duration_since(saved).unwrap()
    );
    let others = files(&workspace, "other").len();
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        files(&workspace, "welcome").len(),
        paused.len(),
        "paused stays paused"
    );
    assert!(
        files(&workspace, "other").len() > others,
        "the other campaign keeps sending"
    );

    // Unpause: it resumes where it stopped.
    workspace.edit(WELCOME, "paused: true", "paused: false");
    wait_until("welcome resumes", || {
        files(&workspace, "welcome").len() >= paused.len() + 3
    });

    // Break it: that campaign halts with the diagnostic, the other keeps sending.
    workspace.edit(WELCOME, "isolation: per-recipient", "isolation: shared");
    std::thread::sleep(Duration::from_millis(1500));
    let broken = files(&workspace, "welcome").len();
    let others = files(&workspace, "other").len();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        files(&workspace, "welcome").len(),
        broken,
        "a broken campaign halts"
    );
    assert!(
        files(&workspace, "other").len() > others,
        "the other campaign keeps sending"
    );

    // Fix it: it resumes.
    workspace.edit(WELCOME, "isolation: shared", "isolation: per-recipient");
    wait_until("welcome resumes after the fix", || {
        files(&workspace, "welcome").len() >= broken + 3
    });

    // Delete it: it stops; its history stays.
    std::fs::remove_file(workspace.path().join(WELCOME)).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let removed = files(&workspace, "welcome").len();
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        files(&workspace, "welcome").len(),
        removed,
        "a removed campaign stops"
    );

    interrupt(&child);
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stderr.contains(
            "campaigns/welcome.yaml:19:16: spec.batch.isolation: `shared` is refused: recipients who share an \
             envelope see each other's addresses; set `isolation: per-recipient`, so that every envelope \
             addresses exactly one recipient\n"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("error: halted until fixed: `welcome`; other campaigns keep running\n"),
        "{stderr}"
    );
    assert!(
        stdout.contains(
            "welcome: manifest removed; sends nothing more (its history stays in the state store)\n"
        ),
        "{stdout}"
    );

    assert_consistent(&workspace, &head);
}

/// Nobody got two messages, and the store agrees with the outbox and the git history.
fn assert_consistent(workspace: &Workspace, head: &str) {
    // Consistent: nobody twice, and the store agrees with the outbox.
    let mut seen = BTreeMap::new();
    for campaign in ["welcome", "other"] {
        for mail in workspace.outbox(campaign) {
            *seen
                .entry((campaign, mail.recipient().to_owned()))
                .or_insert(0) += 1;
        }
    }
    assert!(seen.values().all(|n| *n == 1), "nobody twice");
    let status = workspace.run(["status", "-o", "json"]).code(0).json();
    for campaign in status["campaigns"].as_array().unwrap() {
        let name = campaign["name"].as_str().unwrap();
        assert_eq!(campaign["sent"], files(workspace, name).len(), "{name}");
        assert_eq!(campaign["uncertain"], 0, "{name}");
        assert_eq!(
            campaign["git"]["commit"], head,
            "{name}: last applied commit"
        );
    }
    let text = workspace.run(["status", "other"]).code(0).stdout.clone();
    assert!(
        text.contains(&format!("  applied    commit {head}")),
        "{text}"
    );
}
