//! `herald watch` as a real process: pause, unpause, break, fix, delete, SIGINT.
//!
//! The "slow transport" is the outbox at 5 messages per second, one per batch, so every
//! message is a provider call of its own and its file's time says when that call began.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::Command;
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

    let child = workspace.spawn(["watch"]);
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

    child.interrupt();
    let run = child.finish().code(0);
    let (stdout, stderr) = (run.stdout.clone(), run.stderr.clone());
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

/// GitOps with a git-sync sidecar: every commit is published by swapping a symlink to a
/// new worktree. watch follows the swap at once (not at the next --interval), and refuses
/// to keep its store inside the published folder, where the next swap would lose it.
#[test]
fn watch_follows_a_symlink_swapped_to_a_new_version_and_keeps_its_store_outside() {
    let workspace = Test::new().workspace();
    let root = workspace.path();
    let outbox = root.join("outbox");
    let version = |name: &str, audience: &str| {
        let dir = root.join(name).join("campaigns");
        std::fs::create_dir_all(dir.join("templates")).unwrap();
        std::fs::create_dir_all(dir.join("locales")).unwrap();
        std::fs::create_dir_all(dir.join("audiences")).unwrap();
        std::fs::write(dir.join("welcome.yaml"), crate::harness::CAMPAIGN).unwrap();
        std::fs::write(
            dir.join("transports.yaml"),
            format!(
                "apiVersion: herald/v1\nkind: Transport\nmetadata: {{name: outbox}}\nspec: {{type: outbox, dir: \"{}\"}}\n",
                outbox.display()
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("templates/welcome.html.j2"),
            "<p>{{ t('hello', name=recipient.name) }}</p>\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("templates/welcome.txt.j2"),
            "{{ t('hello', name=recipient.name) }}\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("locales/en.yaml"),
            "subject: Welcome\nhello: \"Hello {name}\"\n",
        )
        .unwrap();
        std::fs::write(dir.join("audiences/customers.csv"), audience).unwrap();
        std::fs::write(dir.join("audiences/unsubscribed.csv"), "email\n").unwrap();
    };
    version("v1", "email,name,locale\nann@example.com,Ann,en\n");
    version(
        "v2",
        "email,name,locale\nann@example.com,Ann,en\nbob@example.com,Bob,en\n",
    );
    std::os::unix::fs::symlink("v1", root.join("current")).unwrap();

    // The default store would be inside the published folder: refused.
    let refused = workspace.run(["watch", "current/campaigns"]).code(2);
    assert!(
        refused.stderr.starts_with(
            "error: current/campaigns reaches its manifests through a symlink, as git-sync publishes them, and the \
             state store current/campaigns/.herald is inside them"
        ),
        "{}",
        refused.stderr
    );

    let child = workspace.spawn([
        "watch",
        "current/campaigns",
        "--state",
        "state",
        "--interval",
        "10m",
    ]);
    let sent = || {
        std::fs::read_dir(outbox.join("welcome")).map_or(0, |e| {
            e.filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "eml")
            })
            .count()
        })
    };
    wait_until("v1 is sent", || sent() == 1);
    // git-sync's swap: a new link renamed over the old one.
    std::os::unix::fs::symlink("v2", root.join("current.new")).unwrap();
    std::fs::rename(root.join("current.new"), root.join("current")).unwrap();
    let swapped = Instant::now();
    wait_until("v2 is sent", || sent() == 2);
    assert!(
        swapped.elapsed() < Duration::from_secs(5),
        "followed at once, not at --interval"
    );
    // And the next swap too: the watch moved to v2.
    std::fs::write(
        root.join("v2/campaigns/audiences/customers.csv"),
        "email,name,locale\nann@example.com,Ann,en\nbob@example.com,Bob,en\ncat@example.com,Cat,en\n",
    )
    .unwrap();
    wait_until("an edit in v2 is sent", || sent() == 3);
    child.interrupt();
    child.finish().code(0);
    assert!(root.join("state/herald-state.json").is_file());
}
