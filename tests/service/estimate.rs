//! plan's estimate of how long sending takes, against the apply that follows it, over the
//! SendGrid fake: timed, so it lives in this binary, where nothing else runs meanwhile.

use std::time::Duration;

use crate::fake_sendgrid::{FakeSendGrid, Scenario};
use crate::harness::{self, Run, Test, Workspace};

const CAMPAIGN: &str = "campaigns/welcome.yaml";

const KEY_ENV: &str = "HERALD_TEST_SENDGRID_KEY";
const KEY: &str = "SG.test-key-for-the-fake-never-print-me";

fn workspace(fake: &FakeSendGrid, n: usize, batch: u32, personal: bool) -> Workspace {
    let audience = harness::audience(n, 4);
    let body = if personal {
        "{{ t('hello', name=recipient.name) }}\n"
    } else {
        "{{ t('hello', name='everyone') }}\n"
    };
    Test::campaign()
        .file("campaigns/audiences/customers.csv", &audience)
        .file("campaigns/templates/welcome.txt.j2", body)
        .file("campaigns/templates/welcome.html.j2", &format!("<p>{}</p>", body.trim()))
        .file(
            "campaigns/transports.yaml",
            &format!(
                "apiVersion: herald/v1\nkind: Transport\nmetadata: {{name: outbox}}\n\
                 spec: {{type: sendgrid, endpoint: \"{}\", api_key_env: {KEY_ENV}, timeout_seconds: 1}}\n",
                fake.endpoint()
            ),
        )
        .edit(CAMPAIGN, "rate: {per_second: 50}", "rate: {per_second: 100000}")
        // SendGrid refuses `,` and `;` in names: herald drops such a name.
        .edit(CAMPAIGN, "name: Example}", "name: \"Example, Inc.\"}")
        .edit(CAMPAIGN, "size: 100", &format!("size: {batch}"))
        .workspace()
}

fn apply(workspace: &Workspace) -> Run {
    workspace.run_env(["apply", "-o", "json"], &[(KEY_ENV, KEY)])
}

/// Plan's estimate (`duration_seconds`, and what binds) against how long the apply that
/// follows it took to send (its `seconds`: from the first call to the last outcome, the
/// part plan estimates; loading and rendering come before and vary with the machine).
fn estimate_then_measure(workspace: &Workspace) -> (f64, String, f64) {
    let plan = workspace
        .run_env(["plan", "-o", "json"], &[(KEY_ENV, KEY)])
        .code(0)
        .json();
    let campaign = &plan["campaigns"][0];
    let estimate = campaign["duration_seconds"].as_f64().expect("an estimate");
    let binds = campaign["binds"].as_str().expect("what binds").to_owned();
    let run = apply(workspace).code(0).json();
    let seconds = run["campaigns"][0]["seconds"]
        .as_f64()
        .expect("how long it sent");
    (estimate, binds, seconds)
}

fn assert_within_a_fifth(estimate: f64, measured: f64) {
    assert!(
        (measured - estimate).abs() <= 0.2 * measured,
        "plan estimated {estimate:.2} s, apply took {measured:.2} s"
    );
}

#[test]
fn plan_estimates_a_rate_bound_send_within_a_fifth() {
    let fake = FakeSendGrid::start(Scenario::Accept);
    let workspace = workspace(&fake, 250, 1000, true);
    workspace.edit(
        CAMPAIGN,
        "rate: {per_second: 100000}",
        "rate: {per_second: 50}",
    );
    let (estimate, binds, measured) = estimate_then_measure(&workspace);
    assert_eq!(binds, "campaign_rate");
    assert!(
        (estimate - 4.0).abs() < 1e-9,
        "(250 - 50) / 50 s: {estimate}"
    );
    assert_within_a_fifth(estimate, measured);
}

/// 300 personal messages in calls of 10, 2 in flight, each answered after 200 ms (the
/// latency plan assumes for a transport never used): 15 rounds of 200 ms.
#[test]
fn plan_estimates_a_latency_bound_send_within_a_fifth() {
    let fake = FakeSendGrid::start(Scenario::Latency(Duration::from_millis(200)));
    let workspace = workspace(&fake, 300, 10, true);
    workspace.edit(
        "campaigns/transports.yaml",
        "timeout_seconds: 1}",
        "timeout_seconds: 1, concurrency: 2}",
    );
    let (estimate, binds, measured) = estimate_then_measure(&workspace);
    assert_eq!(binds, "calls");
    assert!(
        (estimate - 3.0).abs() < 1e-9,
        "15 rounds of 200 ms: {estimate}"
    );
    assert_within_a_fifth(estimate, measured);
    assert_eq!(fake.log().requests, 30);
}
