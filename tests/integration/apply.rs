//! `herald apply` and `herald status` against the outbox and a real sled store on disk.

use std::collections::BTreeSet;
use std::path::Path;

use crate::harness::{self, Test, Workspace, another_campaign};

const CAMPAIGN: &str = "campaigns/welcome.yaml";
const AUDIENCE: &str = "campaigns/audiences/customers.csv";

/// The `welcome` campaign with three recipients (and one suppressed).
fn three() -> Workspace {
    Test::campaign()
        .file(
            AUDIENCE,
            "email,name,locale\nann@example.com,Ann,en\nbob@example.com,Bob,en\ncat@example.com,Cat,en\ndan@example.com,Dan,en\n",
        )
        .workspace()
}

fn recipients(workspace: &Workspace) -> Vec<String> {
    workspace
        .outbox("welcome")
        .iter()
        .map(|m| m.recipient().to_owned())
        .collect()
}

/// Copies the files of `from` to `to`, leaving out any state store (`.herald`) that
/// running the README's main job in the checkout left there.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() == ".herald" {
            continue;
        }
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The addresses in text: every token with an `@`, lowercased.
fn addresses_in(text: &str) -> BTreeSet<String> {
    text.split(|c: char| c.is_whitespace() || "<>\"'(),;:=&".contains(c))
        .filter(|t| t.contains('@'))
        .map(str::to_lowercase)
        .collect()
}

#[test]
fn shipped_campaign_reaches_everyone_once_in_an_envelope_of_their_own() {
    let workspace = Test::new().workspace();
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("campaigns"),
        &workspace.path().join("campaigns"),
    );
    let run = workspace.run(["apply"]).code(0);
    assert!(
        run.stdout
            .starts_with("index-methodology-2019-11: sent 988 of 988 in "),
        "{}",
        run.stdout
    );

    // Who should get it: the audience, deduplicated, minus suppression, plus the QA seed.
    let audience =
        std::fs::read_to_string(workspace.path().join("campaigns/audiences/customers.csv"))
            .unwrap();
    let everyone: BTreeSet<String> = audience
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().trim().to_lowercase())
        .collect();
    let suppressed = std::fs::read_to_string(
        workspace
            .path()
            .join("campaigns/audiences/unsubscribed.csv"),
    )
    .unwrap();
    let suppressed: BTreeSet<String> = suppressed
        .lines()
        .filter(|l| l.contains('@'))
        .map(|l| l.split(',').next().unwrap().trim().to_lowercase())
        .collect();
    let mut expected: BTreeSet<String> = everyone.difference(&suppressed).cloned().collect();
    expected.insert("qa@example.com".into());

    let mails = workspace.outbox("index-methodology-2019-11");
    assert_eq!(mails.len(), 988);
    let mut got = BTreeSet::new();
    for mail in &mails {
        let to = mail.recipient().to_lowercase();
        assert!(got.insert(to.clone()), "{to} got two messages");
        // Nobody else's address anywhere: headers, text or html.
        let seen = addresses_in(&format!("{}\n{}\n{}", mail.raw, mail.text, mail.html));
        let others: Vec<&String> = seen
            .iter()
            .filter(|a| **a != to && everyone.contains(*a))
            .collect();
        assert!(others.is_empty(), "{} carries {others:?}", mail.file);
    }
    assert_eq!(got, expected);

    workspace
        .run(["apply"])
        .code(0)
        .stdout("index-methodology-2019-11: nothing to send\n  earlier runs: 988 already sent\n");
    assert_eq!(workspace.outbox("index-methodology-2019-11").len(), 988);
}

#[test]
fn status_reports_counts_from_the_state_store() {
    let workspace = three();
    workspace
        .run(["status"])
        .code(0)
        .stdout(
            "no state store at campaigns/.herald (the store of `campaigns`; pass --path PATH for other manifests): \
             nothing has been applied there yet\n",
        );
    workspace.run(["apply"]).code(0);
    let status = workspace.run(["status", "-o", "json"]).code(0).json();
    let campaign = &status["campaigns"][0];
    assert_eq!(campaign["name"], "welcome");
    assert_eq!(campaign["sent"], 3);
    assert_eq!(campaign["failed"], 0);
    assert_eq!(campaign["uncertain"], 0);
    assert_eq!(campaign["revision"], 1);
    assert_eq!(campaign["stage"], "full");
    assert_eq!(campaign["paused"], false);
    assert!(campaign["last_apply"].as_str().unwrap().ends_with('Z'));
    workspace.run(["status", "nope"]).code(2).stderr(
        "error: no campaign named `nope` in the state store campaigns/.herald; it has: `welcome`\n",
    );
    assert!(workspace.listed("welcome", "uncertain").is_empty());
}

#[test]
fn new_audience_rows_are_sent_and_removed_ones_are_not_recalled() {
    let workspace = three();
    workspace.run(["apply"]).code(0);
    assert_eq!(
        recipients(&workspace),
        ["ann@example.com", "cat@example.com", "dan@example.com"]
    );

    workspace.edit(AUDIENCE, "cat@example.com,Cat,en\n", "");
    workspace.write(
        AUDIENCE,
        &(workspace.read(AUDIENCE) + "eve@example.com,Eve,en\nANN@example.com,Ann,en\n"),
    );
    let run = workspace.run(["apply"]).code(0);
    assert!(
        run.stdout.starts_with("welcome: sent 1 of 1 in "),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.ends_with("  earlier runs: 2 already sent\n"),
        "{}",
        run.stdout
    );
    assert_eq!(
        recipients(&workspace),
        [
            "ann@example.com",
            "cat@example.com",
            "dan@example.com",
            "eve@example.com"
        ]
    );
    let status = workspace.run(["status", "-o", "json"]).json();
    assert_eq!(status["campaigns"][0]["sent"], 4, "history stays");
}

#[test]
fn paused_sends_nothing_until_unpaused() {
    let workspace = three();
    workspace.write(CAMPAIGN, &(workspace.read(CAMPAIGN) + "  paused: true\n"));
    workspace.run(["apply"]).code(0).stdout(
        "welcome: paused, nothing sent; 3 still to send (set spec.paused: false to resume)\n",
    );
    assert!(recipients(&workspace).is_empty());
    assert_eq!(
        workspace.run(["status", "-o", "json"]).json()["campaigns"][0]["paused"],
        true
    );

    workspace.edit(CAMPAIGN, "paused: true", "paused: false");
    workspace.run(["apply"]).code(0);
    assert_eq!(recipients(&workspace).len(), 3);
}

#[test]
fn changed_content_is_refused_until_the_revision_is_bumped() {
    let workspace = three();
    workspace.run(["apply"]).code(0);
    workspace.edit("campaigns/locales/en.yaml", "Hello {name}", "Hi {name}");
    workspace.edit(CAMPAIGN, "news@example.com", "hello@example.com");
    workspace.write(
        AUDIENCE,
        &(workspace.read(AUDIENCE) + "eve@example.com,Eve,en\n"),
    );
    let refusal = "error: campaign `welcome`: campaigns/welcome.yaml:5:1: spec.revision: content changed after \
         sending began (catalog en.yaml, from); 3 recipients already got revision 1. Bump spec.revision to 2 to \
         send the new content to those not sent yet, or undo the change; nothing was sent\n";
    // plan refuses as apply does, so the check on a pull request fails before the merge.
    workspace.run(["plan"]).code(2).stdout("").stderr(refusal);
    workspace.run(["apply"]).code(2).stdout("").stderr(refusal);
    assert_eq!(recipients(&workspace).len(), 3, "nothing was sent");

    workspace.write(CAMPAIGN, &(workspace.read(CAMPAIGN) + "  revision: 2\n"));
    let run = workspace.run(["apply"]).code(0);
    assert!(
        run.stdout.starts_with("welcome: sent 1 of 1"),
        "{}",
        run.stdout
    );
    let mails = workspace.outbox("welcome");
    let eve: Vec<_> = mails
        .iter()
        .filter(|m| m.recipient() == "eve@example.com")
        .collect();
    assert_eq!(eve.len(), 1);
    assert!(eve[0].text.starts_with("Hi Eve"), "{}", eve[0].text);
    assert_eq!(eve[0].subject, "Welcome");
    assert!(eve[0].file.starts_with("r2-"), "{}", eve[0].file);
    let old: Vec<_> = mails.iter().filter(|m| m.file.starts_with("r1-")).collect();
    assert_eq!(
        old.len(),
        3,
        "the new revision reaches only those not yet sent"
    );
    assert!(old.iter().all(|m| m.text.starts_with("Hello ")));

    workspace.edit(CAMPAIGN, "revision: 2", "revision: 1");
    workspace.run(["apply"]).code(2).stderr(
        "error: campaign `welcome`: campaigns/welcome.yaml:20:13: spec.revision: `1` is older than revision 2, \
         which was already sent; revisions only move forward; nothing was sent\n",
    );
}

/// An audience of `n` synthetic recipients.
fn audience(n: usize) -> String {
    harness::audience(n, 5)
}

#[test]
fn stages_widen_from_seed_to_a_stable_canary_to_everyone() {
    let staged = || {
        Test::campaign()
            .file(AUDIENCE, &audience(400))
            .edit(
                "campaigns/welcome.yaml",
                "  batch:\n",
                "  stage: seed\n  rollout: {seed: [user00007@example.com, qa@example.com], canary_percent: 10}\n  batch:\n",
            )
            .workspace()
    };
    let workspace = staged();
    let run = workspace.run(["apply"]).code(0);
    assert!(
        run.stdout.starts_with("welcome: sent 2 of 2"),
        "{}",
        run.stdout
    );
    assert_eq!(
        recipients(&workspace),
        ["qa@example.com", "user00007@example.com"]
    );
    let qa = &workspace.outbox("welcome")[0];
    assert_eq!(
        qa.text.trim_end(),
        "Hello [name]",
        "a seed outside the audience gets placeholders"
    );

    workspace.edit(CAMPAIGN, "stage: seed", "stage: canary");
    workspace.run(["apply"]).code(0);
    let canary: BTreeSet<String> = recipients(&workspace).into_iter().collect();
    assert!(
        (2 + 20..2 + 70).contains(&canary.len()),
        "about 10% of 400: {}",
        canary.len()
    );

    // The same manifests in another folder pick the same people.
    let again = staged();
    again.edit(CAMPAIGN, "stage: seed", "stage: canary");
    again.run(["apply"]).code(0);
    let same: BTreeSet<String> = recipients(&again).into_iter().collect();
    assert_eq!(canary, same, "the canary sample is stable");

    workspace.edit(CAMPAIGN, "stage: canary", "stage: full");
    workspace.run(["apply"]).code(0);
    let all = recipients(&workspace);
    assert_eq!(all.len(), 401);
    assert_eq!(
        all.iter().collect::<BTreeSet<_>>().len(),
        401,
        "nobody twice"
    );
}

#[test]
fn a_second_apply_on_the_same_store_is_refused_and_sigterm_stops_cleanly() {
    let workspace = Test::campaign()
        .file(AUDIENCE, &audience(30))
        .edit(CAMPAIGN, "rate: {per_second: 50}", "rate: {per_second: 5}")
        .edit(CAMPAIGN, "size: 100", "size: 5")
        .workspace();
    let first = workspace.spawn(["apply"]);
    // The first batch goes at once; the rest wait for the rate.
    wait_for(|| !recipients(&workspace).is_empty());
    let second = workspace.run(["apply"]).code(2);
    assert_eq!(
        second.stderr,
        format!(
            "error: the state store campaigns/.herald is in use by another herald process (pid {}); \
             wait for it to finish, or stop it; nothing was sent\n",
            first.id()
        )
    );

    first.signal("-TERM");
    let stdout = first.finish().code(1).stdout.clone();
    assert!(
        stdout.starts_with("welcome: interrupted: sent "),
        "{stdout}"
    );
    let sent = recipients(&workspace);
    assert!(sent.len() < 30, "stopped early: {}", sent.len());
    let status = workspace.run(["status", "-o", "json"]).json();
    assert_eq!(
        status["campaigns"][0]["sent"],
        sent.len(),
        "every file is recorded"
    );
    assert_eq!(status["campaigns"][0]["uncertain"], 0);

    let rest = workspace.run(["apply", "-o", "json"]).code(0).json();
    assert_eq!(rest["campaigns"][0]["sent"], 30 - sent.len());
    let all = recipients(&workspace);
    assert_eq!(all.len(), 30);
    assert_eq!(all.iter().collect::<BTreeSet<_>>().len(), 30);
}

fn wait_for(condition: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !condition() {
        assert!(std::time::Instant::now() < deadline, "timed out");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn apply_json_reports_each_campaign() {
    let workspace = three();
    let json = workspace.run(["apply", "-o", "json"]).code(0).json();
    let report = &json["campaigns"][0];
    assert_eq!(report["name"], "welcome");
    assert_eq!(report["ending"], "done");
    assert_eq!(report["sent"], 3);
    assert_eq!(report["due"], 3);
    let json = workspace.run(["apply", "-o", "json"]).code(0).json();
    assert_eq!(json["campaigns"][0]["ending"], "nothing_to_send");
    assert_eq!(json["campaigns"][0]["already_sent"], 3);
}

#[test]
fn a_transport_rate_caps_every_campaign_sharing_it() {
    let second = another_campaign("second", "second.csv", 1000);
    let workspace = Test::campaign()
        .file(AUDIENCE, &audience(30))
        .file(
            "campaigns/audiences/second.csv",
            &audience(30).replace("user", "two"),
        )
        .file("campaigns/second.yaml", &second)
        .edit(
            CAMPAIGN,
            "rate: {per_second: 50}",
            "rate: {per_second: 1000}",
        )
        .edit(CAMPAIGN, "size: 100", "size: 1")
        .edit(
            "campaigns/transports.yaml",
            "spec: {type: outbox, dir: ../outbox}",
            "spec: {type: outbox, dir: ../outbox, rate: {per_second: 20}}",
        )
        .workspace();
    let started = std::time::Instant::now();
    workspace.run(["apply"]).code(0);
    let elapsed = started.elapsed().as_secs_f64();
    // 60 messages at 20/s, a second's worth at once: about 2 s, however fast each
    // campaign may go.
    assert!(elapsed > 1.9, "60 messages at 20/s took {elapsed:.2} s");
    let mut times: Vec<std::time::SystemTime> = ["welcome", "second"]
        .iter()
        .flat_map(|c| {
            std::fs::read_dir(workspace.path().join("outbox").join(c))
                .unwrap()
                .map(|e| e.unwrap().metadata().unwrap().modified().unwrap())
        })
        .collect();
    assert_eq!(times.len(), 60);
    times.sort();
    // In any one-second window: at most rate * 1 s + one second's worth (guarantee 4).
    for (i, start) in times.iter().enumerate() {
        let window = times[i..]
            .iter()
            .take_while(|t| t.duration_since(*start).unwrap() < std::time::Duration::from_secs(1))
            .count();
        assert!(window <= 40, "{window} messages within a second");
    }
}

#[test]
fn line_breaks_in_catalog_strings_never_start_a_header() {
    // In the subject: refused before anything is sent.
    let subject = Test::campaign()
        .file(
            "campaigns/locales/en.yaml",
            "subject: \"Welcome\\r\\nBcc: everyone@example.com\"\nhello: \"Hello {name}\"\n",
        )
        .workspace();
    subject.run(["apply"]).code(2).stderr(
        "error: campaign `welcome`: campaigns/welcome.yaml: spec.template.subject: the rendered subject contains a \
         line break (U+000D); header values must be a single line of text (audience row \
         campaigns/audiences/customers.csv:2); nothing was sent\n",
    );
    assert!(subject.outbox("welcome").is_empty());

    // In a body, from the catalog and from the audience: body text, never a header.
    let workspace = Test::campaign()
        .file(
            "campaigns/locales/en.yaml",
            "subject: Welcome\nhello: \"Hello {name}\\r\\nBcc: all@example.com\"\n",
        )
        .file(
            AUDIENCE,
            "email,name,locale\nann@example.com,\"Ann\r\nCc: bob@example.com\",en\n",
        )
        .workspace();
    workspace.run(["apply"]).code(0);
    let mails = workspace.outbox("welcome");
    assert_eq!(mails.len(), 1);
    let headers = mails[0]
        .raw
        .split("\r\n\r\n")
        .next()
        .unwrap()
        .to_ascii_lowercase();
    for line in headers.lines() {
        assert!(
            !line.starts_with("bcc:") && !line.starts_with("cc:"),
            "an injected header: {line}"
        );
    }
    assert_eq!(mails[0].recipient(), "ann@example.com");
    assert!(
        mails[0].text.contains("Bcc: all@example.com"),
        "{}",
        mails[0].text
    );
}

/// Links in the shipped campaign's HTML are written as URLs, not as `https:&#x2f;&#x2f;`.
#[test]
fn html_links_are_written_as_urls() {
    let workspace = crate::harness::Test::new().workspace();
    copy_shipped(&workspace);
    workspace.edit(
        "campaigns/index-methodology-2019-11.yaml",
        "per_second: 50\n",
        "per_second: 100000\n",
    );
    workspace.run(["apply"]).code(0);
    let mails = workspace.outbox("index-methodology-2019-11");
    assert_eq!(mails.len(), 988);
    for mail in &mails {
        assert!(
            mail.html.contains("href=\"https://example.com/u/"),
            "{}",
            mail.html
        );
        assert!(!mail.html.contains("&#x2f;"), "{}", mail.file);
    }
}

/// Copies the shipped `campaigns/` into the workspace.
fn copy_shipped(workspace: &crate::harness::Workspace) {
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("campaigns");
    let status = std::process::Command::new("cp")
        .args([
            "-r",
            shipped.to_str().unwrap(),
            workspace.path().to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let _ = std::fs::remove_dir_all(workspace.path().join("campaigns/.herald"));
}

/// `status` finds the store as apply does: `--path`, or the folder it runs in when there
/// is no `campaigns` folder; it says where it looked when there is none.
#[test]
fn status_finds_the_store_as_apply_does() {
    let workspace = three();
    std::fs::rename(
        workspace.path().join("campaigns"),
        workspace.path().join("launch"),
    )
    .unwrap();
    workspace
        .run(["status", "--path", "launch"])
        .code(2)
        .stderr("error: no state store at launch/.herald (the store of `launch`): nothing has been applied there yet\n");
    workspace
        .run(["status"])
        .code(0)
        .stdout("no state store at ./.herald (the store of `.`, as there is no `campaigns` folder here; pass --path PATH for other manifests): nothing has been applied there yet\n");
    workspace.run(["apply", "launch"]).code(0);
    let status = workspace
        .run(["status", "--path", "launch", "-o", "json"])
        .code(0)
        .json();
    assert_eq!(status["campaigns"][0]["sent"], 3);
    workspace
        .run(["status", "welcome", "--path", "launch/welcome.yaml"])
        .code(0);
    workspace
        .run(["status", "--path", "nowhere"])
        .code(2)
        .stderr("error: `nowhere`: no such file or folder\n");

    // Inside the folder of manifests, with no `campaigns` folder there, PATH is `.`.
    let inside = |args: &[&str]| {
        let mut command = workspace.command(args);
        command.current_dir(workspace.path().join("launch"));
        command.output().unwrap()
    };
    let apply = inside(&["apply"]);
    assert_eq!(
        apply.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&apply.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&apply.stdout),
        "welcome: nothing to send\n  earlier runs: 3 already sent\n"
    );
    let status = inside(&["status"]);
    assert!(
        String::from_utf8_lossy(&status.stdout)
            .starts_with("campaign welcome (revision 1, stage full, active)\n")
    );
    assert_eq!(inside(&["validate"]).status.code(), Some(0));
    assert_eq!(inside(&["plan"]).status.code(), Some(0));
}
