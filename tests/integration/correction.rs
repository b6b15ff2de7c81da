//! Corrections on purpose: `revision: {number: 2, resend: all}` sends the corrected
//! content to everyone who got revision 1 (and to those not sent yet), each exactly once
//! per revision, through re-runs and a SIGKILL in the middle.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::harness::{Test, Workspace};

const CAMPAIGN: &str = "apiVersion: herald/v1
kind: Campaign
metadata: {name: fix}
spec:
  transport: outbox
  from: {email: news@example.com}
  template: {subject: \"{{ t('subject') }}\", text: templates/note.txt.j2}
  locales: {default: en, catalog: locales}
  audience: {file: audiences/customers.csv}
  rate: {per_second: 100000}
  batch: {size: 50, isolation: per-recipient}
  revision: 1
---
apiVersion: herald/v1
kind: Transport
metadata: {name: outbox}
spec: {type: outbox, dir: ../outbox, concurrency: 2}
";

fn workspace(recipients: usize) -> Workspace {
    Test::new()
        .file("campaigns/fix.yaml", CAMPAIGN)
        .file(
            "campaigns/templates/note.txt.j2",
            "{{ t('hello', name=recipient.name) }}\n",
        )
        .file(
            "campaigns/locales/en.yaml",
            "subject: Rates\nhello: \"Hello {name}, the rate is 5%\"\n",
        )
        .file(
            "campaigns/audiences/customers.csv",
            &crate::harness::audience(recipients, 5),
        )
        .workspace()
}

/// Per address, the revisions of the messages the outbox holds for it (from the file
/// names, `r<revision>-...`), in order.
fn revisions(workspace: &Workspace) -> BTreeMap<String, Vec<u32>> {
    let mut got: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for mail in workspace.outbox("fix") {
        let revision = mail.file[1..mail.file.find('-').unwrap()].parse().unwrap();
        got.entry(mail.recipient().to_owned())
            .or_default()
            .push(revision);
    }
    for list in got.values_mut() {
        list.sort_unstable();
    }
    got
}

/// The correction: a changed catalog and `revision: {number: 2, resend: all}`.
fn correct(workspace: &Workspace) {
    workspace.edit("campaigns/locales/en.yaml", "is 5%", "is 4.5%");
    workspace.edit(
        "campaigns/fix.yaml",
        "  revision: 1\n",
        "  revision: {number: 2, resend: all}\n",
    );
}

#[test]
fn a_correction_reaches_exactly_those_who_got_revision_1_once() {
    let workspace = workspace(30);
    workspace.run(["apply"]).code(0);
    // Five more join; a changed catalog without a new revision is still refused.
    let mut audience = crate::harness::audience(35, 5);
    workspace.write("campaigns/audiences/customers.csv", &audience);
    workspace.edit("campaigns/locales/en.yaml", "is 5%", "is 4.5%");
    workspace.run(["plan"]).code(2);
    workspace.edit("campaigns/locales/en.yaml", "is 4.5%", "is 5%");
    correct(&workspace);

    let plan = workspace.run(["plan"]).code(0);
    assert!(
        plan.stdout
            .starts_with("campaign fix (revision 2, resend: all, stage full, transport outbox)\n"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains(
            "  to send   35 in stage full, 30 of them again: they got an earlier revision\n"
        ),
        "{}",
        plan.stdout
    );
    let json = workspace.run(["plan", "-o", "json"]).code(0).json();
    let plan = &json["campaigns"][0];
    assert_eq!(
        plan["revision"],
        serde_json::json!({"number": 2, "resend": "all"})
    );
    assert_eq!(
        (plan["to_send"].as_u64(), plan["resend"].as_u64()),
        (Some(35), Some(30))
    );

    workspace.run(["apply"]).code(0);
    let got = revisions(&workspace);
    assert_eq!(got.len(), 35);
    for (address, revisions) in &got {
        let first_thirty = address.as_str() < "user00030@example.com";
        let expected: &[u32] = if first_thirty { &[1, 2] } else { &[2] };
        assert_eq!(revisions, expected, "{address}");
    }
    for mail in workspace.outbox("fix") {
        let revision2 = mail.file.starts_with("r2-");
        assert_eq!(mail.text.contains("4.5%"), revision2, "{}", mail.file);
    }
    workspace
        .run(["apply"])
        .code(0)
        .stdout("fix: nothing to send\n  earlier runs: 35 already sent\n");
    let status = workspace.run(["status", "-o", "json"]).code(0).json();
    assert_eq!(
        status["campaigns"][0]["sent_by_revision"],
        serde_json::json!([{"revision": 2, "sent": 35}])
    );

    // A revision never goes back, and a third without resend reaches only newcomers.
    workspace.edit(
        "campaigns/fix.yaml",
        "  revision: {number: 2, resend: all}\n",
        "  revision: 1\n",
    );
    workspace.run(["plan"]).code(2);
    workspace.edit("campaigns/fix.yaml", "  revision: 1\n", "  revision: 3\n");
    audience.push_str("late@example.com,Late,en\n");
    workspace.write("campaigns/audiences/customers.csv", &audience);
    let plan = workspace.run(["plan", "-o", "json"]).code(0).json();
    assert_eq!(
        (
            plan["campaigns"][0]["to_send"].as_u64(),
            plan["campaigns"][0]["resend"].as_u64()
        ),
        (Some(1), Some(0))
    );
}

/// Killed with SIGKILL while sending the correction, then run again: nobody gets revision
/// 2 twice, and everyone who got revision 1 has revision 2 or is reported uncertain.
#[test]
fn a_correction_killed_mid_way_sends_nobody_a_revision_twice() {
    const RECIPIENTS: usize = 6_000;
    let _alone = crate::harness::exclusive();
    let workspace = workspace(RECIPIENTS);
    workspace.run(["apply"]).code(0);
    correct(&workspace);
    workspace.edit(
        "campaigns/fix.yaml",
        "per_second: 100000",
        "per_second: 1500",
    );

    let mut child = workspace.spawn(["apply"]);
    let started = Instant::now();
    let sent_twice = || {
        std::fs::read_dir(workspace.path().join("outbox/fix"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("r2-")
            })
            .count()
    };
    while sent_twice() < 500 && started.elapsed() < Duration::from_secs(20) {
        assert!(
            child.exited().is_none(),
            "apply finished before the kill; slow it down"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.signal("-KILL");
    drop(child); // waits for it
    let partial = sent_twice();
    assert!(
        partial > 0 && partial < RECIPIENTS,
        "killed mid-way: {partial} sent"
    );

    let rerun = workspace.run(["apply"]);
    assert!(rerun.code == 0 || rerun.code == 1, "{}", rerun.stderr);
    workspace.run(["apply", "-o", "json"]).code(0);
    let uncertain: std::collections::BTreeSet<String> = workspace
        .listed_addresses("fix", "uncertain")
        .into_iter()
        .collect();
    let got = revisions(&workspace);
    assert_eq!(got.len(), RECIPIENTS);
    for (address, revisions) in &got {
        match revisions.as_slice() {
            [1, 2] => {}
            [1] => assert!(
                uncertain.contains(address),
                "{address} has no revision 2 and is not uncertain"
            ),
            other => panic!("{address} got {other:?}"),
        }
    }
    assert!(
        uncertain.len() <= 2 * 50,
        "at most the calls in flight: {}",
        uncertain.len()
    );
}
