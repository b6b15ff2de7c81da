//! The Postmark transport against the fake on loopback: batches of up to 500 complete
//! messages, exactly once, the outbox's content, retries, cut connections, per-message
//! refusals, and the token kept secret.

use std::collections::BTreeMap;

use crate::fake_postmark::{FakePostmark, Scenario};
use crate::harness::{self, Run, Workspace};

const TOKEN_ENV: &str = "HERALD_TEST_POSTMARK_TOKEN";
const TOKEN: &str = "pm-test-token-3f9a1c-never-print-me";

/// `n` personal recipients with unsubscribe links, through `transports`.
fn workspace(transports: &str, n: usize, batch: u32) -> Workspace {
    harness::personal(transports, &harness::audience(n, 4), batch).workspace()
}

fn postmark(fake: &FakePostmark) -> String {
    format!(
        "apiVersion: herald/v1\nkind: Transport\nmetadata: {{name: outbox}}\n\
         spec: {{type: postmark, endpoint: \"{}\", server_token_env: {TOKEN_ENV}, timeout_seconds: 2}}\n",
        fake.endpoint()
    )
}

fn apply(workspace: &Workspace) -> Run {
    workspace.run_env(["apply", "-o", "json"], &[(TOKEN_ENV, TOKEN)])
}

fn accepted(fake: &FakePostmark) -> BTreeMap<String, usize> {
    let mut count = BTreeMap::new();
    for a in &fake.log().accepted {
        *count.entry(a.to.clone()).or_insert(0) += 1;
    }
    count
}

#[test]
fn batches_of_500_reach_everyone_once_with_what_the_outbox_writes() {
    let n = 1200;
    let outbox = workspace(harness::TRANSPORTS, n, 500);
    outbox.run(["apply"]).code(0);
    let written = outbox.outbox("welcome");
    assert_eq!(written.len(), n);

    let fake = FakePostmark::start(Scenario::Accept);
    let sent = workspace(&postmark(&fake), n, 500);
    let run = apply(&sent).code(0);
    assert_eq!(run.json()["campaigns"][0]["sent"], n);
    let log = fake.log();
    assert_eq!(log.violations, Vec::<String>::new());
    assert_eq!(log.requests, 3, "1,200 in calls of 500, 500 and 200");
    assert!(log.tokens.iter().all(|t| t == TOKEN));
    assert!(log.accepted.iter().all(|a| a.in_call <= 500));
    let by_address: BTreeMap<&str, _> = log.accepted.iter().map(|a| (a.to.as_str(), a)).collect();
    assert_eq!(by_address.len(), n, "everyone once");
    for mail in &written {
        let to = mail.recipient();
        let got = by_address[to];
        assert_eq!(got.subject, mail.subject, "{to}");
        assert_eq!(got.text, mail.text.replace("\r\n", "\n"), "{to}: text");
        assert_eq!(got.html, mail.html.replace("\r\n", "\n"), "{to}: html");
        let header = mail
            .raw
            .lines()
            .find_map(|l| l.strip_prefix("List-Unsubscribe: "))
            .unwrap();
        assert_eq!(got.unsubscribe.as_deref(), Some(header), "{to}");
    }
    drop(log);
    let again = apply(&sent).code(0);
    assert_eq!(again.json()["campaigns"][0]["ending"], "nothing_to_send");
    harness::assert_nowhere(TOKEN, &sent, &[&run, &again]);
}

#[test]
fn rate_limits_and_server_errors_are_retried_and_nobody_gets_two() {
    for scenario in [
        Scenario::TooManyRequests { times: 2 },
        Scenario::ServerErrors { times: 2 },
    ] {
        let fake = FakePostmark::start(scenario.clone());
        let workspace = workspace(&postmark(&fake), 30, 10);
        apply(&workspace).code(0);
        let accepted = accepted(&fake);
        assert_eq!(accepted.len(), 30, "{scenario:?}");
        assert!(
            accepted.values().all(|&n| n == 1),
            "{scenario:?}: {accepted:?}"
        );
        assert_eq!(
            fake.log().requests,
            5,
            "{scenario:?}: 3 calls and 2 retries"
        );
    }
}

#[test]
fn a_cut_connection_leaves_its_call_uncertain_and_never_sends_it_again() {
    let fake = FakePostmark::start(Scenario::CutAfterBody { times: 1 });
    let workspace = workspace(&postmark(&fake), 30, 10);
    let run = apply(&workspace).code(1);
    assert_eq!(run.json()["campaigns"][0]["uncertain"], 10);
    let uncertain = workspace.listed_addresses("welcome", "uncertain");
    assert_eq!(uncertain.len(), 10);
    apply(&workspace).code(0);
    let accepted = accepted(&fake);
    assert_eq!(accepted.len(), 30, "the cut call reached Postmark too");
    assert!(accepted.values().all(|&n| n == 1), "{accepted:?}");
}

#[test]
fn refusals_inside_a_200_fail_exactly_those_recipients() {
    let fake = FakePostmark::start(Scenario::RejectSome("user0003"));
    let workspace = workspace(&postmark(&fake), 12, 500);
    let run = apply(&workspace).code(1);
    let report = &run.json()["campaigns"][0];
    assert_eq!(
        (report["sent"].as_u64(), report["failed"].as_u64()),
        (Some(11), Some(1))
    );
    let failed = workspace.listed("welcome", "failed");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["address"], "user0003@example.com");
    assert_eq!(
        failed[0]["reason"],
        "Postmark refused it (300): Invalid 'To' address."
    );
    assert_eq!(fake.log().requests, 1, "one call of 12");
}

#[test]
fn a_refused_token_stops_the_campaign_and_is_never_shown() {
    let fake = FakePostmark::start(Scenario::Unauthorized);
    let workspace = workspace(&postmark(&fake), 5, 500);
    let run = apply(&workspace).code(1);
    assert_eq!(
        harness::since_as_then(&run.stderr),
        "error: transport `outbox` is down since THEN: Postmark answered 401 Unauthorized: The Server Token you \
         provided in the X-Postmark-Server-Token request header was invalid.; check the server token in \
         `HERALD_TEST_POSTMARK_TOKEN`; nobody was charged with it: `welcome` waits for it, everyone not yet \
         sent still due; run apply again once it is back\n"
    );
    assert_eq!(fake.log().requests, 1);
    assert_eq!(
        workspace.listed_addresses("welcome", "failed"),
        Vec::<String>::new()
    );
    harness::assert_nowhere(TOKEN, &workspace, &[&run]);
}

#[test]
fn a_batch_over_postmarks_500_is_refused_with_its_line() {
    let fake = FakePostmark::start(Scenario::Accept);
    let workspace = workspace(&postmark(&fake), 5, 600);
    workspace.run(["validate"]).code(2).stderr(
        "campaigns/welcome.yaml:18:11: spec.batch.size: `600` is out of range: transport `outbox` \
        (postmark) takes 1 to 500 recipients per call\nerror: 1 problem found in the manifests; \
        nothing was sent\n",
    );
    assert_eq!(fake.log().requests, 0);
}
