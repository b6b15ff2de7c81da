//! The SendGrid transport against the fake on loopback: packing, retries, timeouts, cut
//! connections, refusals, the rate ceiling, and the key kept secret.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant, SystemTime};

use crate::fake_sendgrid::{FakeSendGrid, Scenario};
use crate::harness::{self, Run, Test, Workspace};

pub const KEY_ENV: &str = "HERALD_TEST_SENDGRID_KEY";
pub const KEY: &str = "SG.test-key-5b1f0c2e-never-print-me";
const CAMPAIGN: &str = "campaigns/welcome.yaml";

/// `n` recipients on a SendGrid transport pointed at `fake`. `personal` makes every body
/// differ (a greeting with the name); otherwise all bodies are the same.
pub fn workspace(fake: &FakeSendGrid, n: usize, batch: u32, personal: bool) -> Workspace {
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

/// How often the fake took each address.
fn accepted(fake: &FakeSendGrid) -> BTreeMap<String, usize> {
    let mut count = BTreeMap::new();
    for a in &fake.log().accepted {
        *count.entry(a.to.clone()).or_insert(0) += 1;
    }
    count
}

fn uncertain(workspace: &Workspace) -> Vec<String> {
    workspace.listed_addresses("welcome", "uncertain")
}

/// Every body followed the schema, and every recipient was taken once or is uncertain.
fn assert_once_or_uncertain(fake: &FakeSendGrid, workspace: &Workspace, n: usize) {
    assert_eq!(fake.log().violations, Vec::<String>::new());
    let accepted = accepted(fake);
    let uncertain = uncertain(workspace);
    for i in 0..n {
        let address = format!("user{i:04}@example.com");
        let times = accepted.get(&address).copied().unwrap_or(0);
        let reported = uncertain.contains(&address);
        assert!(
            times <= 1 && (times == 1 || reported),
            "{address} accepted {times} times, reported uncertain: {reported}"
        );
    }
}

#[test]
fn shared_content_goes_a_thousand_personalizations_per_call() {
    let fake = FakeSendGrid::start(Scenario::Accept);
    let workspace = workspace(&fake, 2500, 1000, false);
    let run = apply(&workspace).code(0);
    assert_eq!(run.json()["campaigns"][0]["sent"], 2500);
    assert_eq!(fake.log().requests, 3, "2,500 recipients in calls of 1,000");
    assert_once_or_uncertain(&fake, &workspace, 2500);
    assert!(uncertain(&workspace).is_empty());
    assert!(
        fake.log()
            .authorizations
            .iter()
            .all(|a| a == &format!("Bearer {KEY}"))
    );
    let again = apply(&workspace).code(0);
    assert_eq!(again.json()["campaigns"][0]["ending"], "nothing_to_send");
    assert_eq!(fake.log().requests, 3);
    harness::assert_nowhere(KEY, &workspace, &[&run, &again]);
}

#[test]
fn personal_bodies_share_calls_and_each_recipient_gets_exactly_their_own() {
    let fake = FakeSendGrid::start(Scenario::Accept);
    let workspace = workspace(&fake, 30, 10, true);
    let run = apply(&workspace).code(0);
    assert_eq!(
        fake.log().requests,
        3,
        "30 personal messages in calls of 10"
    );
    assert_eq!(run.json()["campaigns"][0]["calls"], 3);
    assert_once_or_uncertain(&fake, &workspace, 30);
    for a in &fake.log().accepted {
        let i: usize = a.to["user".len()..a.to.find('@').unwrap()].parse().unwrap();
        assert_eq!(
            a.content,
            [format!("Hello User {i}"), format!("<p>Hello User {i}</p>")]
        );
        assert_eq!(a.subject, "Welcome");
        assert_eq!(a.personalizations, 10);
    }
}

#[test]
fn a_429_waits_for_retry_after_and_tries_again() {
    let fake = FakeSendGrid::start(Scenario::TooManyRequests {
        times: 2,
        seconds: 1,
    });
    let workspace = workspace(&fake, 50, 1000, false);
    let started = Instant::now();
    let run = apply(&workspace).code(0);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "waited as told"
    );
    assert_eq!(run.json()["campaigns"][0]["sent"], 50);
    assert_eq!(fake.log().requests, 3);
    assert_once_or_uncertain(&fake, &workspace, 50);
}

#[test]
fn server_errors_are_retried_with_backoff() {
    let fake = FakeSendGrid::start(Scenario::ServerErrors { times: 2 });
    let workspace = workspace(&fake, 20, 1000, false);
    apply(&workspace).code(0);
    assert_eq!(fake.log().requests, 3);
    assert_once_or_uncertain(&fake, &workspace, 20);
}

#[test]
fn a_slow_answer_is_uncertain_and_never_sent_again() {
    let fake = FakeSendGrid::start(Scenario::Slow {
        times: 1,
        delay: Duration::from_secs(3),
    });
    let workspace = workspace(&fake, 30, 10, false);
    let run = apply(&workspace).code(1);
    let report = &run.json()["campaigns"][0];
    assert_eq!(report["uncertain"], 10, "one call of 10 timed out");
    assert_eq!(report["sent"], 20);
    assert_eq!(uncertain(&workspace).len(), 10);
    apply(&workspace).code(0);
    assert_once_or_uncertain(&fake, &workspace, 30);
    assert_eq!(
        accepted(&fake).values().sum::<usize>(),
        30,
        "the provider got each once"
    );
}

#[test]
fn connections_cut_before_or_after_the_body_are_uncertain_not_doubled() {
    for scenario in [
        Scenario::CutBeforeBody { times: 1 },
        Scenario::CutAfterBody { times: 1 },
    ] {
        let fake = FakeSendGrid::start(scenario.clone());
        let workspace = workspace(&fake, 30, 10, false);
        let run = apply(&workspace).code(1);
        assert_eq!(run.json()["campaigns"][0]["uncertain"], 10, "{scenario:?}");
        apply(&workspace).code(0);
        assert_once_or_uncertain(&fake, &workspace, 30);
        assert!(accepted(&fake).values().all(|n| *n == 1), "{scenario:?}");
    }
}

/// An error of one campaign is that campaign's: apply goes on with the others (the same
/// policy as watch), and still exits 1.
#[test]
fn a_campaign_that_fails_leaves_the_others_to_go_on() {
    let fake = FakeSendGrid::start(Scenario::Unauthorized);
    let workspace = workspace(&fake, 3, 10, false);
    let transports = workspace.read("campaigns/transports.yaml");
    workspace.write(
        "campaigns/transports.yaml",
        &format!(
            "{transports}---\napiVersion: herald/v1\nkind: Transport\nmetadata: {{name: local}}\n\
             spec: {{type: outbox, dir: ../outbox}}\n"
        ),
    );
    workspace.write(
        "campaigns/zz-after.yaml",
        &harness::another_campaign("after", "customers.csv", 1000)
            .replace("transport: outbox", "transport: local"),
    );
    let run = apply(&workspace).code(1);
    let reports = run.json()["campaigns"].clone();
    assert_eq!(reports.as_array().map(Vec::len), Some(2), "{reports}");
    assert_eq!(reports[0]["name"], "welcome");
    assert_eq!(reports[0]["ending"], "transport_down");
    assert_eq!(reports[0]["failed"], 0);
    assert_eq!(reports[1]["name"], "after");
    assert_eq!(reports[1]["sent"], 3);
    assert_eq!(workspace.outbox("after").len(), 3);
    assert!(workspace.outbox("welcome").is_empty());
}

#[test]
fn a_wrong_key_stops_the_campaign_and_is_never_shown() {
    let fake = FakeSendGrid::start(Scenario::Unauthorized);
    let workspace = workspace(&fake, 30, 1, false);
    workspace.edit(
        "campaigns/transports.yaml",
        "timeout_seconds: 1}",
        "timeout_seconds: 1, concurrency: 2}",
    );
    let run = apply(&workspace).code(1);
    assert_eq!(
        harness::since_as_then(&run.stderr),
        "error: transport `outbox` is down since THEN: SendGrid answered 401 Unauthorized: The provided \
         authorization grant is invalid, expired, or revoked; check the key in `HERALD_TEST_SENDGRID_KEY` (set, \
         current, and allowed to send); nobody was charged with it: `welcome` waits for it, everyone not yet \
         sent still due; run apply again once it is back\n"
    );
    // The calls already in flight when the first 401 came back, and none after.
    let requests = fake.log().requests;
    assert!(
        (1..=2).contains(&requests),
        "{requests} calls with a wrong key"
    );
    let status = workspace.run(["status", "-o", "json"]).code(0);
    assert_eq!(status.json()["campaigns"][0]["sent"], 0);
    assert_eq!(
        status.json()["campaigns"][0]["uncertain"],
        0,
        "not sent is not uncertain"
    );
    harness::assert_nowhere(KEY, &workspace, &[&run, &status]);

    let missing = workspace.run(["apply"]).code(2);
    assert_eq!(
        missing.stderr,
        format!(
            "error: campaign `welcome`: transport `outbox`: the environment variable `{KEY_ENV}` is not set; \
             export the secret there (it is never read from a manifest); nothing was sent\n"
        )
    );
}

#[test]
fn a_400_fails_that_recipient_with_the_providers_words() {
    let fake = FakeSendGrid::start(Scenario::Reject("user0003@"));
    let workspace = workspace(&fake, 10, 1, false);
    let run = apply(&workspace).code(1);
    assert_eq!(run.json()["campaigns"][0]["failed"], 1);
    assert_eq!(run.json()["campaigns"][0]["sent"], 9);
    let failed = workspace.listed("welcome", "failed");
    let listed = &failed[0];
    assert_eq!(listed["address"], "user0003@example.com");
    assert_eq!(
        listed["reason"],
        "SendGrid answered 400 Bad Request: The to email does not contain a valid address."
    );
}

#[test]
fn a_key_echoed_back_by_the_provider_is_never_stored_printed_or_logged() {
    use base64::Engine as _;
    let fake = FakeSendGrid::start(Scenario::EchoHeaders);
    let workspace = workspace(&fake, 3, 10, false);
    let run = workspace
        .run_env(["apply"], &[(KEY_ENV, KEY), ("RUST_LOG", "herald=debug")])
        .code(1);
    let failed = workspace.listed("welcome", "failed");
    assert_eq!(failed.len(), 3);
    for recipient in &failed {
        let reason = recipient["reason"].as_str().unwrap();
        let raw = reason
            .strip_prefix(
                "SendGrid answered 400 Bad Request: proxy refused the request; headers were: Authorization: Bearer [redacted]; raw: ",
            )
            .unwrap_or_else(|| panic!("{reason}"));
        // Base64 mixes the key's first and last bytes with their neighbours: at most those
        // few characters remain beside the redaction.
        assert!(
            raw.contains("[redacted]") && raw.len() <= "[redacted]".len() + 16,
            "{reason}"
        );
    }
    let text = workspace
        .run(["status", "welcome", "--recipients", "failed"])
        .code(0);
    assert!(text.stdout.contains("Bearer [redacted]"), "{}", text.stdout);
    assert!(
        run.stderr.contains("[redacted]"),
        "the debug log mentions it: {}",
        run.stderr
    );
    harness::assert_nowhere(KEY, &workspace, &[&run, &text]);
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("Bearer {KEY}"));
    assert!(!run.stderr.contains(&encoded) && !text.stdout.contains(&encoded));
}

/// The most messages accepted in any window of `window`, from when the fake took each.
pub fn busiest(times: &[SystemTime], window: Duration) -> usize {
    let mut times = times.to_vec();
    times.sort();
    (0..times.len())
        .map(|i| {
            times[i..]
                .iter()
                .take_while(|t| t.duration_since(times[i]).unwrap() < window)
                .count()
        })
        .max()
        .unwrap_or(0)
}

/// Guarantee 4: in any window of W seconds, at most `rate * W + max(1, rate)` accepted,
/// however large `batch.size` is: a call never carries more than a second's worth.
#[test]
fn the_declared_rate_is_a_ceiling_on_accepted_messages() {
    for (rate, batch, n) in [(20u32, 5u32, 60usize), (5, 1000, 20)] {
        let fake = FakeSendGrid::start(Scenario::Accept);
        let workspace = workspace(&fake, n, batch, true);
        workspace.edit(
            CAMPAIGN,
            "rate: {per_second: 100000}",
            &format!("rate: {{per_second: {rate}}}"),
        );
        let started = Instant::now();
        apply(&workspace).code(0);
        let took = started.elapsed();
        // A second's worth goes at once; the rest at the rate.
        let least = f64::from(u32::try_from(n).unwrap() - rate) / f64::from(rate);
        assert!(took.as_secs_f64() >= least * 0.95, "{rate}/s: {took:?}");
        let times: Vec<SystemTime> = fake.log().accepted.iter().map(|a| a.at).collect();
        assert_eq!(times.len(), n);
        for seconds in [1, 2, 3] {
            let most = busiest(&times, Duration::from_secs(seconds));
            let bound = rate * u32::try_from(seconds).unwrap() + rate;
            assert!(
                most <= bound as usize,
                "{rate}/s: {most} accepted within {seconds} s, bound {bound}"
            );
        }
        let largest = fake.log().accepted.iter().map(|a| a.personalizations).max();
        assert!(
            largest <= Some(rate as usize),
            "{rate}/s: calls of {largest:?}"
        );
    }
}

/// Values a recipient's data may hold that a careless packer would get wrong: markup,
/// entities, quotes, non-ASCII, text that looks like a substitution tag, and values long
/// enough to pass SendGrid's 10,000 bytes per personalization.
fn hostile_names() -> Vec<String> {
    let mut names: Vec<String> = [
        "Ann & Bob",
        "<b>Ann</b>",
        "\"quoted\" 'single'",
        "Zoë Ångström",
        "淑芬",
        "Ивана",
        "-t0-",
        "-h",
        "%name%",
        "{{ recipient.name }}",
        ":name",
        "-nhello-",
        "a\\b",
        "&amp;",
        "Plain",
    ]
    .map(str::to_owned)
    .to_vec();
    // 6,000 bytes appear in text and html alike: 12,000 bytes of substitutions.
    names.push("x".repeat(6_000));
    names.push("<&>".repeat(1_800));
    names
}

/// Guarantee 9: what SendGrid makes of a packed call (its substitutions applied to the
/// shared content, as it documents) is, for every recipient, byte for byte the subject,
/// text and html the outbox writes for the same campaign (line ends aside).
#[test]
fn a_packed_call_reconstructs_exactly_what_the_outbox_writes() {
    let names = hostile_names();
    let mut audience = String::from("email,name,code,locale\n");
    for (i, name) in names.iter().chain(names.iter()).enumerate() {
        let locale = if i % 2 == 0 { "en" } else { "de" };
        let name = name.replace('"', "\"\"");
        let _ = writeln!(audience, "user{i:04}@example.com,\"{name}\",C-{i},{locale}");
    }
    let recipients = names.len() * 2;
    let build = |transport: &str| {
        Test::campaign()
            .env("HERALD_UNSUBSCRIBE_KEY", "reconstruct-test-unsubscribe-key")
            .file("campaigns/audiences/customers.csv", &audience)
            .file(
                "campaigns/locales/de.yaml",
                "subject: Willkommen\nhello: \"Hallo {name}\"\n",
            )
            .file("campaigns/transports.yaml", transport)
            .edit(
                CAMPAIGN,
                "subject: \"{{ t('subject') }}\"",
                "subject: \"{{ t('subject') }} {{ recipient.code }}\"",
            )
            .edit(CAMPAIGN, "rate: {per_second: 50}", "rate: {per_second: 100000}")
            .edit(
                CAMPAIGN,
                "    isolation: per-recipient\n",
                "    isolation: per-recipient\n  unsubscribe: {url: \"https://example.com/u/{{ unsubscribe_token }}?n={{ recipient.code }}\"}\n",
            )
            .edit(
                "campaigns/templates/welcome.html.j2",
                "</p>",
                "</p>\n<a href=\"{{ unsubscribe_url }}\">{{ recipient.name }}</a>",
            )
            .edit(
                "campaigns/templates/welcome.txt.j2",
                "}}\n",
                "}}\n{{ recipient.name }} / {{ unsubscribe_url }}\n",
            )
            .workspace()
    };
    let outbox = build(harness::TRANSPORTS);
    outbox.run(["apply"]).code(0);
    let written = outbox.outbox("welcome");
    assert_eq!(written.len(), recipients);

    let fake = FakeSendGrid::start(Scenario::Accept);
    let sendgrid = build(&format!(
        "apiVersion: herald/v1\nkind: Transport\nmetadata: {{name: outbox}}\n\
         spec: {{type: sendgrid, endpoint: \"{}\", api_key_env: {KEY_ENV}}}\n",
        fake.endpoint()
    ));
    let run = apply(&sendgrid).code(0);
    assert_eq!(run.json()["campaigns"][0]["sent"], recipients);
    let log = fake.log();
    assert_eq!(log.violations, Vec::<String>::new());
    assert_eq!(log.accepted.len(), recipients);
    let accepted: BTreeMap<&str, &crate::fake_sendgrid::Accepted> =
        log.accepted.iter().map(|a| (a.to.as_str(), a)).collect();
    for mail in &written {
        let to = mail.recipient();
        let got = accepted[to];
        assert_eq!(got.subject, mail.subject, "{to}: subject");
        // A message file ends its lines in CRLF, as RFC 5322 says; the API takes LF.
        assert_eq!(
            got.content[0],
            mail.text.replace("\r\n", "\n"),
            "{to}: text"
        );
        assert_eq!(
            got.content[1],
            mail.html.replace("\r\n", "\n"),
            "{to}: html"
        );
    }
    // Everyone whose values fit went packed: per locale, one call of all but the
    // four long names; those four (two per locale) went alone.
    let packed = log
        .accepted
        .iter()
        .filter(|a| a.personalizations > 1)
        .count();
    assert_eq!(packed, recipients - 4, "recipients in packed calls");
    assert_eq!(log.requests, 2 + 4);
}
