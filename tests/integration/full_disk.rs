//! A full disk under the state store, for real: the store on a tmpfs of a few hundred KB
//! (mounted by the test, which runs as root here and in CI; without root it is skipped
//! with a note, and fails under `CI=true`). apply runs until the disk fills; afterwards
//! only recipients whose call reached the transport are sent or `uncertain`, and those
//! whose call never started are due. The events endpoint answers 503 while the store
//! cannot take an event, so that the provider sends it again.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::feedback::{self, events_key, now, post_events, signed};
use crate::harness::{Test, Workspace};
use crate::http;
use crate::servers::unavailable;

/// A tmpfs mounted for the test's life; unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// A tmpfs of `size` (`mount`'s form, `512k`) at `dir`, or `None` where mounting is not
    /// allowed (a failure under `CI=true`).
    fn mount(dir: &Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(dir).unwrap();
        let mounted = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .is_ok_and(|o| o.status.success());
        if mounted {
            Some(Self(dir.to_owned()))
        } else {
            unavailable("a tmpfs mount (the tests run as root in CI)")
        }
    }

    /// Gives the file system `size` in all: the disk has room again.
    fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success(), "remount {}", self.0.display());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

const RECIPIENTS: usize = 20_000;

fn workspace() -> Workspace {
    let audience = crate::harness::audience(RECIPIENTS, 5);
    Test::campaign()
        .file("campaigns/audiences/customers.csv", &audience)
        .edit(
            "campaigns/welcome.yaml",
            "rate: {per_second: 50}",
            "rate: {per_second: 100000}",
        )
        .edit("campaigns/welcome.yaml", "size: 100", "size: 10")
        .workspace()
}

fn outboxed(workspace: &Workspace) -> BTreeSet<String> {
    workspace
        .outbox("welcome")
        .iter()
        .map(|m| m.recipient().to_owned())
        .collect()
}

/// Regression: a call whose intent could not be made durable on a full disk was never
/// made, yet its recipients were reported `uncertain` and needed `--resend-uncertain`.
#[test]
fn a_store_that_fills_mid_run_leaves_only_calls_that_reached_the_transport_uncertain() {
    let workspace = workspace();
    let Some(disk) = Tmpfs::mount(&workspace.path().join("disk"), "768k") else {
        return;
    };
    let state = disk.0.join("state");
    let state = state.to_str().unwrap();
    let run = workspace.run(["apply", "--state", state]);
    // Whichever write met the full disk first: sled's, the ledger's or the journal's.
    let told = |reason: &str| {
        format!(
            "error: campaign `welcome`: the state store {state} is out of space ({reason}); free space \
             on its disk, then run again: calls that never started stay due, and only calls that may \
             have reached the provider are `uncertain` (`herald status`); stopped (see `herald status welcome`)\n"
        )
    };
    assert!(
        run.code == 1
            && (run.stderr == told("no space left on device")
                || run.stderr == told("cannot write herald-state.json: no space left on device")
                || run.stderr == told("cannot write its journal: no space left on device")),
        "exit {}\n{}",
        run.code,
        run.stderr
    );

    disk.resize("64m");
    let reached = outboxed(&workspace);
    assert!(
        !reached.is_empty() && reached.len() < RECIPIENTS,
        "the disk filled mid-run: {} of {RECIPIENTS} reached the outbox",
        reached.len()
    );
    let status = workspace
        .run(["status", "--state", state, "-o", "json"])
        .code(0)
        .json();
    let campaign = &status["campaigns"][0];
    let uncertain: BTreeSet<String> = workspace
        .run([
            "status",
            "welcome",
            "--state",
            state,
            "--recipients",
            "uncertain",
            "-o",
            "json",
        ])
        .code(0)
        .json()["campaigns"][0]["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["address"].as_str().unwrap().to_owned())
        .collect();
    let not_reached: Vec<&String> = uncertain.difference(&reached).collect();
    assert_eq!(
        not_reached,
        Vec::<&String>::new(),
        "uncertain, though their call never reached the transport"
    );
    let sent = usize::try_from(campaign["sent"].as_u64().unwrap()).unwrap();
    assert_eq!(
        sent + uncertain.len(),
        reached.len(),
        "everyone who reached the outbox is sent or uncertain, and nobody else: {campaign}"
    );

    // With room again, apply sends everyone else, once; it exits 1 when it reports calls
    // of the interrupted run as uncertain, as after any interrupted run.
    let run = workspace
        .run(["apply", "--state", state, "-o", "json"])
        .code(i32::from(!uncertain.is_empty()));
    assert_eq!(
        run.json()["campaigns"][0]["recovered"].as_u64(),
        Some(u64::try_from(uncertain.len()).unwrap())
    );
    assert_eq!(
        usize::try_from(run.json()["campaigns"][0]["sent"].as_u64().unwrap()).unwrap(),
        RECIPIENTS - reached.len()
    );
    let mails = workspace.outbox("welcome");
    assert_eq!(mails.len(), RECIPIENTS, "everyone once");
    assert_eq!(outboxed(&workspace).len(), RECIPIENTS);
}

/// Events the store cannot take are answered 503, so that the provider sends them
/// again; with room again (and herald restarted, as its error says) they are taken.
#[test]
fn events_the_store_cannot_take_are_answered_503_and_taken_when_sent_again() {
    let workspace = feedback::workspace(&events_key());
    let Some(disk) = Tmpfs::mount(&workspace.path().join("disk"), "4m") else {
        return;
    };
    let state = disk.0.join("state");
    let state = state.to_str().unwrap().to_owned();
    let listen = |workspace: &Workspace| {
        let port = http::free_port();
        let child = workspace.spawn([
            "watch",
            "--state",
            &state,
            "--listen",
            &format!("127.0.0.1:{port}"),
        ]);
        feedback::wait_until("it is ready", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                && http::get(port, "/readyz").status == 200
        });
        (child, port)
    };
    let (child, port) = listen(&workspace);
    // Fill what is left of the disk.
    let filler = disk.0.join("filler");
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=64k"])
        .arg(format!("of={}", filler.display()))
        .output();
    let body = format!(
        r#"[{{"email":"{}","event":"bounce","type":"bounce","campaign":"welcome"}}]"#,
        feedback::address(1)
    );
    let answer = post_events(port, &signed(&events_key(), now(), &body), &body);
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (
            503,
            "cannot record these events now; send them again later\n"
        )
    );
    std::fs::remove_file(&filler).unwrap();
    child.interrupt();
    drop(child.finish());
    let (child, port) = listen(&workspace);
    let answer = post_events(port, &signed(&events_key(), now(), &body), &body);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let list = workspace
        .run(["suppressions", "list", "--state", &state, "-o", "json"])
        .code(0)
        .json();
    assert_eq!(list["suppressions"][0]["address"], feedback::address(1));
    child.interrupt();
    child.finish().code(0);
}
