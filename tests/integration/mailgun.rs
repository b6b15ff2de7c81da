//! The Mailgun transport against the fake on loopback: calls of up to 1,000 recipients,
//! each with its `recipient-variables`, exactly once, the outbox's content (subject and
//! unsubscribe link personal too), retries, cut connections, the key kept secret, and
//! every way a user could try to make a call that shows one recipient another's address.

use std::collections::BTreeMap;

use crate::fake_mailgun::{DOMAIN, FakeMailgun, Scenario};
use crate::harness::{self, Run, Workspace};

const KEY_ENV: &str = "HERALD_TEST_MAILGUN_KEY";
const KEY: &str = "key-mg-test-7c21e9-never-print-me";
const CAMPAIGN: &str = "campaigns/welcome.yaml";

/// Personal recipients (`audience` rows) with personal subjects and unsubscribe links,
/// through `transports`.
fn workspace(transports: &str, audience: &str, batch: u32) -> Workspace {
    harness::personal(transports, audience, batch)
        .file(
            "campaigns/locales/en.yaml",
            "subject: \"Welcome, {name}\"\nhello: \"Hello {name}\"\n",
        )
        .edit(
            CAMPAIGN,
            "subject: \"{{ t('subject') }}\"",
            "subject: \"{{ t('subject', name=recipient.name) }}\"",
        )
        .workspace()
}

fn mailgun(fake: &FakeMailgun) -> String {
    format!(
        "apiVersion: herald/v1\nkind: Transport\nmetadata: {{name: outbox}}\n\
         spec: {{type: mailgun, endpoint: \"{}\", domain: {DOMAIN}, api_key_env: {KEY_ENV}, timeout_seconds: 2}}\n",
        fake.endpoint()
    )
}

fn apply(workspace: &Workspace) -> Run {
    workspace.run_env(["apply", "-o", "json"], &[(KEY_ENV, KEY)])
}

fn delivered(fake: &FakeMailgun) -> BTreeMap<String, usize> {
    let mut count = BTreeMap::new();
    for d in &fake.log().delivered {
        *count.entry(d.to.clone()).or_insert(0) += 1;
    }
    count
}

/// What Mailgun delivered is what the outbox writes for the same campaign, for every
/// recipient the outbox wrote.
fn assert_same_as_outbox(fake: &FakeMailgun, outbox: &Workspace) {
    let log = fake.log();
    let by_address: BTreeMap<&str, _> = log.delivered.iter().map(|d| (d.to.as_str(), d)).collect();
    for mail in outbox.outbox("welcome") {
        let to = mail.recipient();
        let got = by_address[to];
        assert_eq!(got.to_header, to, "only their own address in To:");
        assert_eq!(got.subject, mail.subject, "{to}: subject");
        assert_eq!(got.text, mail.text.replace("\r\n", "\n"), "{to}: text");
        assert_eq!(got.html, mail.html.replace("\r\n", "\n"), "{to}: html");
        let header = mail
            .raw
            .lines()
            .find_map(|l| l.strip_prefix("List-Unsubscribe: "))
            .unwrap();
        assert_eq!(got.unsubscribe.as_deref(), Some(header), "{to}");
    }
}

#[test]
fn calls_of_1000_reach_everyone_once_with_what_the_outbox_writes() {
    let n = 2500;
    let audience = harness::audience(n, 4);
    let outbox = workspace(harness::TRANSPORTS, &audience, 1000);
    outbox.run(["apply"]).code(0);
    assert_eq!(outbox.outbox("welcome").len(), n);

    let fake = FakeMailgun::start(Scenario::Accept);
    let sent = workspace(&mailgun(&fake), &audience, 1000);
    let run = apply(&sent).code(0);
    assert_eq!(run.json()["campaigns"][0]["sent"], n);
    {
        let log = fake.log();
        assert_eq!(log.violations, Vec::<String>::new());
        assert_eq!(log.requests, 3, "2,500 in calls of 1,000, 1,000 and 500");
        assert!(log.keys.iter().all(|k| k == KEY));
        assert!(log.with_variables.iter().all(|&with| with));
        assert_eq!(log.delivered.iter().map(|d| d.in_call).max(), Some(1000));
    }
    let counts = delivered(&fake);
    assert_eq!(counts.len(), n);
    assert!(counts.values().all(|&c| c == 1), "everyone once");
    assert_same_as_outbox(&fake, &outbox);
    let again = apply(&sent).code(0);
    assert_eq!(again.json()["campaigns"][0]["ending"], "nothing_to_send");
    assert_eq!(fake.log().requests, 3);
    harness::assert_nowhere(KEY, &sent, &[&run, &again]);
}

/// A user cannot make herald send a Mailgun call that shows one recipient another's
/// address: not with two addresses in one cell, not with data that looks like Mailgun's
/// variables, not with names full of commas and brackets. Each either is refused before
/// anything is sent, or goes out in a call where everyone has an envelope of their own.
#[test]
fn no_input_makes_a_call_that_shows_anyone_another_address() {
    let fake = FakeMailgun::start(Scenario::Accept);
    let two_in_a_cell = "email,name,locale\n\"ann@example.com, bea@example.com\",Ann,en\n";
    let refused = workspace(&mailgun(&fake), two_in_a_cell, 1000);
    apply(&refused).code(2).stderr(
        "error: campaign `welcome`: campaigns/audiences/customers.csv:2: `ann@example.com, \
        bea@example.com` is not a valid email address\n1 row without a valid address in \
        `campaigns/audiences/customers.csv`; fix them, or set `audience.on_invalid: skip`; \
        nothing was sent\n",
    );
    assert_eq!(fake.log().requests, 0, "nothing sent");

    let hostile = "email,name,locale\n\
        ann@example.com,Ann,en\n\
        bea@example.com,\"Bea, <carol@example.com>\",en\n\
        carol@example.com,%recipient%,en\n\
        dave@example.com,%recipient.t0%,en\n\
        erin@example.com,Erin %unsubscribe_url%,en\n\
        frank@example.com,\"-t0- & <b>Frank</b>\",en\n\
        grace@example.com,Grace 100% sure,en\n";
    let outbox = workspace(harness::TRANSPORTS, hostile, 1000);
    outbox.run(["apply"]).code(0);
    let sent = workspace(&mailgun(&fake), hostile, 1000);
    let run = apply(&sent).code(1);
    let report = &run.json()["campaigns"][0];
    assert_eq!(
        (report["sent"].as_u64(), report["failed"].as_u64()),
        (Some(4), Some(3))
    );
    let failed = sent.listed("welcome", "failed");
    let failed: BTreeMap<&str, &str> = failed
        .iter()
        .map(|f| {
            (
                f["address"].as_str().unwrap(),
                f["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        failed.keys().copied().collect::<Vec<_>>(),
        ["carol@example.com", "dave@example.com", "erin@example.com"]
    );
    assert_eq!(
        failed["carol@example.com"],
        "the message holds `%recipient`, which Mailgun fills in by itself, so it would not arrive as rendered; reword the template or the recipient's data"
    );
    let log = fake.log();
    assert_eq!(log.violations, Vec::<String>::new());
    assert!(log.with_variables.iter().all(|&with| with), "every call");
    let to: Vec<&str> = log.delivered.iter().map(|d| d.to.as_str()).collect();
    assert_eq!(to.len(), 4);
    assert!(log.delivered.iter().all(|d| d.to_header == d.to));
    drop(log);
    // Those sent got exactly what the outbox wrote for them.
    let by_address: BTreeMap<String, _> = fake
        .log()
        .delivered
        .iter()
        .map(|d| (d.to.clone(), d.clone()))
        .collect();
    for mail in outbox.outbox("welcome") {
        if let Some(got) = by_address.get(mail.recipient()) {
            assert_eq!(got.subject, mail.subject);
            assert_eq!(got.html, mail.html.replace("\r\n", "\n"));
        }
    }
}

/// Regression: each value was checked alone, so a Mailgun variable split across two
/// values of one recipient (a name ending in `%recip`, a city starting with
/// `ient_email%`) went out in a packed call, for Mailgun to fill in.
#[test]
fn a_mailgun_variable_split_across_two_values_is_never_sent() {
    let fake = FakeMailgun::start(Scenario::Accept);
    let audience = "email,name,city,locale\n\
        ann@example.com,Ann %recip,ient_email% Town,en\n\
        bea@example.com,Bea,Paris,en\n\
        carl@example.com,Carl %,unsubscribe_url,en\n\
        dana@example.com,Dana,Rome,en\n";
    let sent = workspace(&mailgun(&fake), audience, 1000);
    sent.write(
        "campaigns/templates/welcome.txt.j2",
        "{{ t('hello', name=recipient.name) }}{{ recipient.city }}%\n",
    );
    sent.write(
        "campaigns/templates/welcome.html.j2",
        "<p>{{ t('hello', name=recipient.name) }}{{ recipient.city }}</p>\n",
    );
    let run = apply(&sent).code(1);
    let report = &run.json()["campaigns"][0];
    assert_eq!(
        (report["sent"].as_u64(), report["failed"].as_u64()),
        (Some(2), Some(2))
    );
    let failed: BTreeMap<String, String> = sent
        .listed("welcome", "failed")
        .iter()
        .map(|f| {
            (
                f["address"].as_str().unwrap().to_owned(),
                f["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let refused = |found: &str| {
        format!(
            "the message holds `{found}`, which Mailgun fills in by itself, so it would not arrive as rendered; reword the template or the recipient's data"
        )
    };
    assert_eq!(
        failed,
        BTreeMap::from([
            ("ann@example.com".to_owned(), refused("%recipient")),
            ("carl@example.com".to_owned(), refused("unsubscribe_url%")),
        ])
    );
    let log = fake.log();
    assert_eq!(log.violations, Vec::<String>::new());
    let to: Vec<&str> = log.delivered.iter().map(|d| d.to.as_str()).collect();
    assert_eq!(to, ["bea@example.com", "dana@example.com"], "in one call");
    assert_eq!(log.requests, 1);
    assert!(
        log.delivered
            .iter()
            .all(|d| !d.text.contains("%recipient") && !d.text.contains("unsubscribe_url%")),
        "nothing Mailgun would fill in reached it"
    );
}

#[test]
fn rate_limits_and_server_errors_are_retried_and_nobody_gets_two() {
    let audience = harness::audience(30, 4);
    for scenario in [
        Scenario::TooManyRequests { times: 2 },
        Scenario::ServerErrors { times: 2 },
    ] {
        let fake = FakeMailgun::start(scenario);
        let workspace = workspace(&mailgun(&fake), &audience, 10);
        apply(&workspace).code(0);
        let delivered = delivered(&fake);
        assert_eq!(delivered.len(), 30, "{scenario:?}");
        assert!(
            delivered.values().all(|&n| n == 1),
            "{scenario:?}: {delivered:?}"
        );
        assert_eq!(
            fake.log().requests,
            5,
            "{scenario:?}: 3 calls and 2 retries"
        );
        assert_eq!(fake.log().violations, Vec::<String>::new());
    }
}

#[test]
fn a_cut_connection_leaves_its_call_uncertain_and_never_sends_it_again() {
    let fake = FakeMailgun::start(Scenario::CutAfterBody { times: 1 });
    let workspace = workspace(&mailgun(&fake), &harness::audience(30, 4), 10);
    let run = apply(&workspace).code(1);
    assert_eq!(run.json()["campaigns"][0]["uncertain"], 10);
    assert_eq!(workspace.listed_addresses("welcome", "uncertain").len(), 10);
    apply(&workspace).code(0);
    let delivered = delivered(&fake);
    assert_eq!(delivered.len(), 30, "the cut call reached Mailgun too");
    assert!(delivered.values().all(|&n| n == 1), "{delivered:?}");
}

#[test]
fn a_refused_key_stops_the_campaign_and_is_never_shown() {
    let fake = FakeMailgun::start(Scenario::Unauthorized);
    let workspace = workspace(&mailgun(&fake), &harness::audience(5, 4), 1000);
    let run = apply(&workspace).code(1);
    assert_eq!(
        harness::since_as_then(&run.stderr),
        "error: transport `outbox` is down since THEN: Mailgun answered 401 Unauthorized: Forbidden; check the \
         key in `HERALD_TEST_MAILGUN_KEY` (set, current, and allowed to send); nobody was charged with it: \
         `welcome` waits for it, everyone not yet sent still due; run apply again once it is back\n"
    );
    assert_eq!(
        workspace.listed_addresses("welcome", "failed"),
        Vec::<String>::new()
    );
    assert_eq!(fake.log().requests, 1);
    harness::assert_nowhere(KEY, &workspace, &[&run]);

    // No key at all: refused before any call, naming the variable, exit 2.
    workspace.run(["apply"]).code(2).stderr(
        "error: campaign `welcome`: transport `outbox`: the environment variable \
        `HERALD_TEST_MAILGUN_KEY` is not set; export the secret there (it is never read from a \
        manifest); nothing was sent\n",
    );
    assert_eq!(fake.log().requests, 1);
}

#[test]
fn mailgun_settings_are_checked_with_their_lines() {
    let fake = FakeMailgun::start(Scenario::Accept);
    let audience = harness::audience(5, 4);
    let check = |transport: &str, expected: &str| {
        let workspace = workspace(transport, &audience, 1000);
        workspace.run(["validate"]).code(2).stderr(expected);
    };
    let head = "apiVersion: herald/v1\nkind: Transport\nmetadata: {name: outbox}\nspec:\n  type: mailgun\n";
    check(
        &format!("{head}  api_key_env: {KEY_ENV}\n"),
        "campaigns/transports.yaml:4:1: spec.domain: missing: `mailgun` transports need it\nerror: \
            1 problem found in the manifests; nothing was sent\n",
    );
    check(
        &format!("{head}  api_key_env: {KEY_ENV}\n  domain: \"mg.example.com/../v4\"\n"),
        "campaigns/transports.yaml:7:11: spec.domain: `mg.example.com/../v4` is not a domain name \
            like `mg.example.com`\nerror: 1 problem found in the manifests; nothing was sent\n",
    );
    check(
        &format!(
            "{head}  api_key_env: {KEY_ENV}\n  domain: {DOMAIN}\n  events: {{public_key_env: MG_EVENTS}}\n"
        ),
        "campaigns/transports.yaml:8:3: spec.events.signing_key_env: missing: `mailgun` transports \
            need it\ncampaigns/transports.yaml:8:12: spec.events.public_key_env: not a setting of \
            `mailgun` transports\nerror: 2 problems found in the manifests; nothing was sent\n",
    );
    let big = workspace(&mailgun(&fake), &audience, 1001);
    big.run(["validate"]).code(2).stderr(
        "campaigns/welcome.yaml:18:11: spec.batch.size: `1001` is out of range: transport `outbox` \
        (mailgun) takes 1 to 1000 recipients per call\nerror: 1 problem found in the manifests; \
        nothing was sent\n",
    );
    assert_eq!(fake.log().requests, 0);
}
