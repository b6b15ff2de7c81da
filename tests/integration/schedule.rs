//! `spec.schedule`: the real binary, its clock set with `HERALD_TEST_ONLY_NOW` (a week of
//! windows without waiting a week), on an audience in Tokyo, Berlin, New York and without
//! a zone (UTC). Every recipient's send time, as the store records it, must fall inside
//! their own window, across Europe's and North America's daylight saving changes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::harness::{Test, Workspace};

const CAMPAIGN: &str = "campaigns/welcome.yaml";
const CLOCK: &str = "HERALD_TEST_ONLY_NOW";

/// Where each cohort's recipients live: a zone name, or none (the schedule's UTC).
const ZONES: [(&str, &str); 4] = [
    ("tokyo", "Asia/Tokyo"),
    ("berlin", "Europe/Berlin"),
    ("newyork", "America/New_York"),
    ("utc", ""),
];

const SCHEDULE: &str = "  schedule:
    window: {days: [mon, tue, wed, thu, fri], from: \"09:00\", to: \"17:00\"}
    timezone_field: tz
";

/// The audience header and `per` recipients per zone of cohort `cohort`.
fn cohort(cohort: usize, per: usize) -> String {
    let mut rows = String::new();
    for (place, zone) in ZONES {
        for i in 0..per {
            let _ = writeln!(rows, "{place}{cohort}-{i}@example.com,Name,en,{zone}");
        }
    }
    rows
}

/// The `welcome` campaign with `schedule` (indented under `spec`) and an empty audience
/// with a `tz` column.
fn scheduled(schedule: &str) -> Workspace {
    Test::campaign()
        .file(
            "campaigns/audiences/customers.csv",
            "email,name,locale,tz\n",
        )
        .edit(
            CAMPAIGN,
            "    isolation: per-recipient\n",
            &format!("    isolation: per-recipient\n{schedule}"),
        )
        .workspace()
}

/// Whether the wall clock in `zone` (UTC for none) at `at` reads Monday to Friday,
/// 09:00 to 17:00: worked out here, apart from herald's own arithmetic.
fn inside(zone: &str, at: Timestamp) -> bool {
    let tz = if zone.is_empty() {
        TimeZone::UTC
    } else {
        TimeZone::get(zone).unwrap()
    };
    let local = at.to_zoned(tz);
    let weekday = local.weekday().to_monday_one_offset();
    (1..=5).contains(&weekday) && (9..17).contains(&local.hour())
}

fn zone_of(address: &str) -> &'static str {
    ZONES
        .iter()
        .find(|(place, _)| address.starts_with(place))
        .map(|(_, zone)| *zone)
        .unwrap()
}

/// Sent recipients and the time the store recorded for each.
fn sent(workspace: &Workspace) -> BTreeMap<String, Timestamp> {
    workspace
        .listed("welcome", "sent")
        .iter()
        .map(|r| {
            (
                r["address"].as_str().unwrap().to_owned(),
                r["updated"].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect()
}

/// `plan --at` then `apply` with the clock set to `at`: the plan's due now, and what
/// apply sent.
fn plan_and_apply(workspace: &Workspace, at: &str) -> (u64, serde_json::Value) {
    let plan = workspace
        .run(["plan", "--at", at, "-o", "json"])
        .code(0)
        .json();
    let due = plan["campaigns"][0]["schedule"]["due_now"]
        .as_u64()
        .unwrap();
    let applied = workspace
        .run_env(["apply", "-o", "json"], &[(CLOCK, at)])
        .code(0)
        .json();
    (due, applied["campaigns"][0].clone())
}

/// Applies at each instant in turn, a new cohort joining the audience before each, and
/// checks that each apply sends exactly those waiting whose window is open then (as
/// worked out here), that `plan --at` said so first, and that every recorded send time
/// is inside the recipient's window.
fn a_week(instants: &[&str]) {
    let workspace = scheduled(SCHEDULE);
    let mut audience = String::from("email,name,locale,tz\n");
    let mut waiting: BTreeSet<String> = BTreeSet::new();
    for (step, at) in instants.iter().enumerate() {
        let rows = cohort(step, 2);
        audience.push_str(&rows);
        waiting.extend(
            rows.lines()
                .map(|l| l.split(',').next().unwrap().to_owned()),
        );
        workspace.write("campaigns/audiences/customers.csv", &audience);
        let instant: Timestamp = at.parse().unwrap();
        let expected: BTreeSet<String> = waiting
            .iter()
            .filter(|a| inside(zone_of(a), instant))
            .cloned()
            .collect();
        let (due, report) = plan_and_apply(&workspace, at);
        assert_eq!(due, expected.len() as u64, "plan --at {at}");
        assert_eq!(
            report["sent"],
            expected.len() as u64,
            "apply at {at}: {report}"
        );
        let now_sent = sent(&workspace);
        let this_step: BTreeSet<String> = waiting
            .iter()
            .filter(|a| now_sent.contains_key(*a))
            .cloned()
            .collect();
        assert_eq!(this_step, expected, "who apply sent at {at}");
        waiting.retain(|a| !expected.contains(a));
        if waiting.is_empty() {
            assert!(report.get("next_due").is_none(), "{report}");
        } else {
            assert!(report["next_due"].is_string(), "{report}");
        }
    }
    let all = sent(&workspace);
    assert!(!all.is_empty());
    for (address, at) in &all {
        assert!(
            inside(zone_of(address), *at),
            "{address} was sent at {at}, outside 09:00-17:00 Mon-Fri in {}",
            zone_of(address)
        );
    }
}

/// Europe moves its clocks on Sunday 29 March 2026 (CET +01 to CEST +02); New York
/// already moved on 8 March. Instants one hour apart on Monday tell the two offsets
/// apart: 07:15Z is 09:15 in Berlin (in) but would be 08:15 on last week's offset (out);
/// 15:30Z is 17:30 (out) but would be 16:30 (in).
#[test]
fn a_week_across_europes_change_sends_everyone_inside_their_own_window() {
    a_week(&[
        "2026-03-27T00:30:00Z", // Fri: Tokyo 09:30
        "2026-03-27T08:30:00Z", // Fri: Berlin 09:30 CET, UTC out
        "2026-03-27T20:30:00Z", // Fri: New York 16:30 EDT
        "2026-03-28T12:00:00Z", // Sat: nobody
        "2026-03-29T12:00:00Z", // Sun, after the change: nobody
        "2026-03-30T06:30:00Z", // Mon: Tokyo 15:30, Berlin 08:30 CEST (out)
        "2026-03-30T07:15:00Z", // Mon: Berlin 09:15 CEST (in)
        "2026-03-30T15:30:00Z", // Mon: Berlin 17:30 CEST (out), UTC, New York in
        "2026-03-30T21:30:00Z", // Mon: New York 17:30 EDT (out)
        "2026-03-31T09:30:00Z", // Tue: Berlin, UTC in; the rest of everyone waiting
        "2026-03-31T14:00:00Z", // Tue: New York 10:00
        "2026-04-01T01:00:00Z", // Wed: Tokyo 10:00
    ]);
}

/// North America moves its clocks on Sunday 8 March 2026 (EST -05 to EDT -04); Berlin
/// stays on CET until the 29th.
#[test]
fn a_week_across_north_americas_change_sends_everyone_inside_their_own_window() {
    a_week(&[
        "2026-03-06T21:30:00Z", // Fri: New York 16:30 EST (in)
        "2026-03-06T22:30:00Z", // Fri: New York 17:30 EST (out)
        "2026-03-08T15:00:00Z", // Sun, after the change: nobody
        "2026-03-09T12:30:00Z", // Mon: New York 08:30 EDT (out), Berlin and UTC in
        "2026-03-09T13:15:00Z", // Mon: New York 09:15 EDT (in)
        "2026-03-09T21:30:00Z", // Mon: New York 17:30 EDT (out), would be 16:30 EST
        "2026-03-10T01:00:00Z", // Tue: Tokyo 10:00
        "2026-03-10T14:00:00Z", // Tue: everyone but Tokyo
    ]);
}

/// `not_after` passes with recipients left: they are recorded `expired`, listed by
/// status, and never sent, even when `not_after` moves later; a new revision sends them.
#[test]
fn not_after_expires_the_rest_for_good_in_this_revision() {
    let workspace = scheduled(
        "  schedule:
    not_after: 2026-03-30T12:00:00+02:00
    window: {days: [mon, tue, wed, thu, fri], from: \"09:00\", to: \"17:00\"}
    timezone_field: tz
",
    );
    let mut audience = String::from("email,name,locale,tz\n");
    audience.push_str(&cohort(0, 2));
    workspace.write("campaigns/audiences/customers.csv", &audience);
    // Monday 08:00Z: Berlin (10:00) and UTC (08:00, out) ... only Berlin and Tokyo (17:00, out).
    let (due, report) = plan_and_apply(&workspace, "2026-03-30T08:00:00Z");
    assert_eq!((due, report["sent"].as_u64().unwrap()), (2, 2));
    // Before not_after, plan says who would expire: New York's window opens after it
    // (13:00Z), UTC's at 09:00Z is before it (10:00Z), Tokyo's next on Tuesday.
    let plan = workspace
        .run(["plan", "--at", "2026-03-30T08:30:00Z", "-o", "json"])
        .code(0)
        .json();
    let schedule = &plan["campaigns"][0]["schedule"];
    assert_eq!(schedule["due_now"], 0, "{schedule}");
    assert_eq!(schedule["next_due"], "2026-03-30T09:00:00Z", "{schedule}");
    assert_eq!(schedule["expire"], 4, "Tokyo and New York: {schedule}");
    assert_eq!(
        schedule["ends"], "2026-03-30T09:00:00Z",
        "two at 50/s: {schedule}"
    );
    // After not_after: apply records the rest expired and sends nobody.
    let applied = workspace
        .run_env(["apply", "-o", "json"], &[(CLOCK, "2026-03-30T10:30:00Z")])
        .code(0)
        .json();
    assert_eq!(applied["campaigns"][0]["sent"], 0);
    assert_eq!(applied["campaigns"][0]["expired"], 6, "{applied}");
    let expired = workspace.listed_addresses("welcome", "expired");
    assert_eq!(expired.len(), 6, "{expired:?}");
    assert!(expired.iter().all(|a| !a.starts_with("berlin")));
    // Moving not_after does not bring them back.
    workspace.edit(
        CAMPAIGN,
        "not_after: 2026-03-30T12:00:00+02:00",
        "not_after: 2026-04-30T12:00:00+02:00",
    );
    let again = workspace
        .run_env(["apply", "-o", "json"], &[(CLOCK, "2026-03-31T14:00:00Z")])
        .code(0)
        .json();
    assert_eq!(again["campaigns"][0]["sent"], 0, "{again}");
    let status = workspace.run(["status", "welcome"]).code(0);
    assert!(
        status
            .stdout
            .contains("  expired    6 (not sent by not_after)\n"),
        "{}",
        status.stdout
    );
    // A new revision is a new campaign for them.
    workspace.edit(
        CAMPAIGN,
        "    isolation: per-recipient\n",
        "    isolation: per-recipient\n  revision: 2\n",
    );
    let revised = workspace
        .run_env(["apply", "-o", "json"], &[(CLOCK, "2026-03-31T14:00:00Z")])
        .code(0)
        .json();
    assert_eq!(
        revised["campaigns"][0]["sent"], 4,
        "UTC and New York: {revised}"
    );
    for (address, at) in sent(&workspace) {
        assert!(inside(zone_of(&address), at), "{address} at {at}");
    }
}

/// Regression: past `not_after`, whoever a correction (`resend: all`) or
/// `--resend-uncertain` would send again was recorded `expired` over their outcome, so the
/// next revision mailed them once more. Only those without an outcome expire.
#[test]
fn past_not_after_only_those_without_an_outcome_expire() {
    let workspace = scheduled(
        "  schedule:
    not_after: 2026-03-30T12:00:00+02:00
    timezone_field: tz
",
    );
    let mut audience = String::from("email,name,locale,tz\n");
    audience.push_str(&cohort(0, 2));
    workspace.write("campaigns/audiences/customers.csv", &audience);
    // Everyone sent before not_after (no window: always open).
    let sent = workspace
        .run_env(["apply", "-o", "json"], &[(CLOCK, "2026-03-30T08:00:00Z")])
        .code(0)
        .json();
    assert_eq!(sent["campaigns"][0]["sent"], 8, "{sent}");
    // A correction to everyone, applied after not_after: nobody is sent, nobody expires.
    workspace.edit(
        CAMPAIGN,
        "    isolation: per-recipient\n",
        "    isolation: per-recipient\n  revision: {number: 2, resend: all}\n",
    );
    let late = workspace
        .run_env(
            ["apply", "--resend-uncertain", "-o", "json"],
            &[(CLOCK, "2026-03-30T11:00:00Z")],
        )
        .code(0)
        .json();
    assert_eq!(late["campaigns"][0]["sent"], 0, "{late}");
    assert_eq!(late["campaigns"][0]["expired"], 0, "{late}");
    let status = workspace
        .run(["status", "welcome", "-o", "json"])
        .code(0)
        .json();
    assert_eq!(status["campaigns"][0]["sent"], 8, "{status}");
    assert_eq!(status["campaigns"][0]["expired"], 0, "{status}");
    // The next revision, without resend: all, sends nobody again.
    workspace.edit(
        CAMPAIGN,
        "  revision: {number: 2, resend: all}\n",
        "  revision: 3\n",
    );
    let next = workspace
        .run_env(["apply", "-o", "json"], &[(CLOCK, "2026-03-30T09:00:00Z")])
        .code(0)
        .json();
    assert_eq!(next["campaigns"][0]["sent"], 0, "{next}");
    assert_eq!(workspace.outbox("welcome").len(), 8, "nobody mailed twice");
}

/// SIGKILL in the middle of a window's sending, then apply again: nobody is sent twice,
/// nobody outside their window.
#[test]
fn a_kill_mid_window_and_a_restart_send_nobody_twice() {
    let _machine = crate::harness::exclusive();
    let workspace = scheduled(SCHEDULE);
    workspace.edit(CAMPAIGN, "rate: {per_second: 50}", "rate: {per_second: 40}");
    workspace.edit(CAMPAIGN, "size: 100", "size: 5");
    let mut audience = String::from("email,name,locale,tz\n");
    audience.push_str(&cohort(0, 60));
    workspace.write("campaigns/audiences/customers.csv", &audience);
    // Tuesday 10:00 in Berlin, 09:00 UTC: 120 due at 40/s, three seconds' sending.
    let at = "2026-03-31T09:00:00Z";
    let mut running = workspace.spawn_env(["apply"], &[(CLOCK, at)]);
    let started = Instant::now();
    while workspace
        .path()
        .join("outbox/welcome")
        .read_dir()
        .map_or(0, Iterator::count)
        < 30
    {
        assert!(running.exited().is_none(), "apply ended before the kill");
        assert!(started.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(20));
    }
    running.signal("-KILL");
    drop(running); // waits for it
    let before = workspace.outbox("welcome").len();
    assert!(before < 120, "killed mid-window: {before} sent");
    // The same instant again: the killed run's calls in flight are uncertain, not re-sent
    // (exit 1: they are reported).
    let rerun = workspace.run_env(["apply"], &[(CLOCK, at)]);
    assert!(rerun.code == 0 || rerun.code == 1, "{}", rerun.stderr);
    let mails = workspace.outbox("welcome");
    let mut seen = BTreeSet::new();
    for mail in &mails {
        assert!(
            seen.insert(mail.recipient().to_owned()),
            "{} twice",
            mail.recipient()
        );
    }
    let sent = sent(&workspace);
    let uncertain = workspace.listed_addresses("welcome", "uncertain");
    assert_eq!(
        sent.len() + uncertain.len(),
        120,
        "everyone due has an outcome"
    );
    for (address, at) in &sent {
        assert!(inside(zone_of(address), *at), "{address} at {at}");
    }
}

/// Real time: `not_before` three seconds ahead. apply sends nothing and says when; watch
/// wakes itself then and sends within a second.
#[test]
fn watch_sends_within_a_second_of_not_before() {
    let not_before = Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(3))
        .unwrap()
        .round(jiff::Unit::Second)
        .unwrap();
    let workspace = scheduled(&format!("  schedule:\n    not_before: {not_before}\n"));
    workspace.write(
        "campaigns/audiences/customers.csv",
        "email,name,locale,tz\nann@example.com,Ann,en,\n",
    );
    let applied = workspace.run(["apply"]).code(0);
    assert_eq!(
        applied.stdout,
        format!(
            "welcome: nothing to send\n  schedule: the next become due at {}; run apply again then (watch does)\n",
            not_before.strftime("%Y-%m-%dT%H:%M:%SZ")
        )
    );
    assert!(workspace.outbox("welcome").is_empty());
    let status = workspace.run(["status", "-o", "json"]).code(0).json();
    assert_eq!(
        status["campaigns"][0]["next_due"],
        not_before.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    );
    let mut watch = workspace.spawn(["watch"]);
    let deadline = Instant::now() + Duration::from_secs(15);
    while workspace.outbox("welcome").is_empty() {
        assert!(Instant::now() < deadline, "watch sent nothing");
        assert!(watch.exited().is_none(), "watch ended");
        std::thread::sleep(Duration::from_millis(20));
    }
    let seen = Timestamp::now();
    watch.interrupt();
    let late = seen.duration_since(not_before);
    assert!(
        late >= jiff::SignedDuration::ZERO && late < jiff::SignedDuration::from_secs(1),
        "sent {late} after not_before"
    );
}

#[test]
fn schedule_problems_are_refused_with_their_lines() {
    Test::campaign()
        .edit(
            CAMPAIGN,
            "    isolation: per-recipient\n",
            "    isolation: per-recipient
  schedule:
    not_before: 2026-12-08T09:00:00+01:00
    not_after: 2026-12-08T09:00:00
    window: {days: [mon], from: \"9:00\", to: \"17:00\"}
    timezone: Europe/Berln
",
        )
        .args(["validate"])
        .run()
        .code(2)
        .stdout("")
        .stderr(
            "campaigns/welcome.yaml:22:16: spec.schedule.not_after: `2026-12-08T09:00:00` is not a date and time with an offset (RFC 3339), e.g. `2026-12-08T09:00:00+01:00`
campaigns/welcome.yaml:23:33: spec.schedule.window.from: `9:00` is not a time of day as `HH:MM` (00:00 to 23:59), e.g. `09:00`
campaigns/welcome.yaml:24:15: spec.schedule.timezone: `Europe/Berln` is not a time zone of the IANA database, e.g. `Europe/Berlin` (did you mean `Europe/Berlin`?)
error: 3 problems found in the manifests; nothing was sent
",
        );
}

#[test]
fn a_schedule_under_which_nobody_could_be_sent_is_refused() {
    Test::campaign()
        .edit(
            CAMPAIGN,
            "    isolation: per-recipient\n",
            "    isolation: per-recipient
  schedule:
    not_before: 2026-12-12T00:00:00+01:00
    not_after: 2026-12-13T23:00:00+01:00
    window: {days: [mon, tue, wed, thu, fri], from: \"17:00\", to: \"17:00\"}
    timezone: Europe/Berlin
",
        )
        .args(["validate"])
        .run()
        .code(2)
        .stdout("")
        .stderr(
            "campaigns/welcome.yaml:23:66: spec.schedule.window.to: `from` and `to` are both `17:00`: the window would be empty; to send at any hour, leave `window` out
error: 1 problem found in the manifests; nothing was sent
",
        );
    Test::campaign()
        .edit(
            CAMPAIGN,
            "    isolation: per-recipient\n",
            "    isolation: per-recipient
  schedule:
    not_before: 2026-12-12T00:00:00+01:00
    not_after: 2026-12-12T09:00:00+01:00
    window: {days: [mon, tue, wed, thu, fri], from: \"09:00\", to: \"17:00\"}
    timezone: Europe/Berlin
",
        )
        .args(["validate"])
        .run()
        .code(2)
        .stdout("")
        .stderr(
            "campaigns/welcome.yaml:23:5: spec.schedule.window: no window opens between `not_before` and `not_after` (in `Europe/Berlin`): nobody could ever be sent
error: 1 problem found in the manifests; nothing was sent
",
        );
}

/// An audience row naming a zone the database does not know is an invalid row, with its
/// line, like a bad address; `on_invalid: skip` sends the others.
#[test]
fn a_row_with_an_unknown_zone_is_an_invalid_row() {
    let workspace = scheduled(SCHEDULE);
    workspace.write(
        "campaigns/audiences/customers.csv",
        "email,name,locale,tz\nann@example.com,Ann,en,Europe/Berlin\ncy@example.com,Cy,en,Mars/Base\n",
    );
    let refused = workspace
        .run(["plan", "--at", "2026-03-31T09:00:00Z"])
        .code(2);
    assert!(
        refused
            .stderr
            .contains("campaigns/audiences/customers.csv:3")
            && refused
                .stderr
                .contains("`Mars/Base` in `tz` is not a time zone of the IANA database"),
        "{}",
        refused.stderr
    );
    workspace.edit(
        CAMPAIGN,
        "    suppress:",
        "    on_invalid: skip\n    suppress:",
    );
    workspace
        .run_env(["apply"], &[(CLOCK, "2026-03-31T09:00:00Z")])
        .code(0);
    assert_eq!(
        workspace.listed_addresses("welcome", "sent"),
        ["ann@example.com"]
    );
}

/// A window that closes while apply sends: the check right before each call leaves the
/// rest for their next window, and nobody is sent at or after 17:00.
#[test]
fn a_window_closing_mid_run_sends_nobody_late() {
    let workspace = scheduled(SCHEDULE);
    workspace.edit(CAMPAIGN, "rate: {per_second: 50}", "rate: {per_second: 10}");
    workspace.edit(CAMPAIGN, "size: 100", "size: 1");
    let mut audience = String::from("email,name,locale,tz\n");
    for i in 0..60 {
        let _ = writeln!(audience, "utc{i}@example.com,Name,en,");
    }
    workspace.write("campaigns/audiences/customers.csv", &audience);
    // Tuesday 16:59:58 UTC: two seconds of window at 10/s for 60 due.
    let applied = workspace
        .run_env(["apply", "-o", "json"], &[(CLOCK, "2026-03-31T16:59:58Z")])
        .code(0)
        .json();
    let report = &applied["campaigns"][0];
    let sent_now = report["sent"].as_u64().unwrap();
    assert!((1..60).contains(&sent_now), "{report}");
    assert_eq!(
        report["deferred"].as_u64().unwrap() + sent_now,
        60,
        "{report}"
    );
    assert_eq!(report["next_due"], "2026-04-01T09:00:00Z", "{report}");
    let close: Timestamp = "2026-03-31T17:00:00Z".parse().unwrap();
    for (address, at) in sent(&workspace) {
        assert!(at < close, "{address} sent at {at}");
    }
}

#[test]
fn a_period_that_ends_before_it_starts_and_a_window_without_days_are_refused() {
    Test::campaign()
        .edit(
            CAMPAIGN,
            "    isolation: per-recipient\n",
            "    isolation: per-recipient
  schedule:
    not_before: 2026-12-08T09:00:00+01:00
    not_after: 2026-12-08T08:00:00Z
    window: {days: [], from: \"22:00\", to: \"02:00\"}
",
        )
        .args(["validate"])
        .run()
        .code(2)
        .stdout("")
        .stderr(
            "campaigns/welcome.yaml:22:16: spec.schedule.not_after: `2026-12-08T08:00:00Z` is not after `not_before` (`2026-12-08T09:00:00+01:00`): nobody could ever be sent
campaigns/welcome.yaml:23:14: spec.schedule.window.days: no days: nobody could ever be sent; leave `days` out for every day
error: 2 problems found in the manifests; nothing was sent
",
        );
}

/// A running `watch --listen` tells when the next recipients become due: `/status` as
/// RFC 3339, `/metrics` as Unix seconds.
#[test]
fn status_and_metrics_show_the_next_due_time() {
    let workspace = scheduled(SCHEDULE);
    workspace.write(
        "campaigns/audiences/customers.csv",
        "email,name,locale,tz\nann@example.com,Ann,en,America/New_York\n",
    );
    let port = crate::http::free_port();
    // Tuesday 09:00 UTC: New York's window opens at 13:00 UTC.
    let _watch = workspace.spawn_env(
        ["watch", "--listen", &format!("127.0.0.1:{port}")],
        &[(CLOCK, "2026-03-31T09:00:00Z")],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        assert!(Instant::now() < deadline, "watch never said when");
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            let status = crate::http::get(port, "/status").json();
            if status["campaigns"][0]["next_due"].is_string() {
                break status;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status["campaigns"][0]["next_due"], "2026-03-31T13:00:00Z");
    assert_eq!(status["campaigns"][0]["sent"], 0);
    let metrics = crate::http::get(port, "/metrics").body;
    let due: Timestamp = "2026-03-31T13:00:00Z".parse().unwrap();
    let line = format!(
        "herald_campaign_next_due_timestamp_seconds{{campaign=\"welcome\"}} {}",
        due.as_second()
    );
    assert!(
        metrics.lines().any(|l| l == line),
        "{line} not in:\n{metrics}"
    );
    let status = workspace.run(["status", "welcome"]).code(0);
    assert!(
        status
            .stdout
            .contains("  next due   2026-03-31T13:00:00Z\n"),
        "{}",
        status.stdout
    );
}

/// Stages and pause hold under a schedule: `stage: seed` reaches only the seeds, and only
/// inside their windows; `paused: true` sends nobody, window open or not.
#[test]
fn stages_and_pause_hold_under_a_schedule() {
    let workspace = scheduled(SCHEDULE);
    let mut audience = String::from("email,name,locale,tz\n");
    audience.push_str(&cohort(0, 2));
    workspace.write("campaigns/audiences/customers.csv", &audience);
    workspace.edit(
        CAMPAIGN,
        "  schedule:",
        "  stage: seed\n  rollout: {seed: [tokyo0-0@example.com, berlin0-0@example.com]}\n  schedule:",
    );
    // Tuesday 09:30 UTC: Berlin (11:30) and UTC are open, Tokyo (18:30) is not.
    let at = "2026-03-31T09:30:00Z";
    let (due, report) = plan_and_apply(&workspace, at);
    assert_eq!((due, report["sent"].as_u64().unwrap()), (1, 1), "{report}");
    assert_eq!(
        workspace.listed_addresses("welcome", "sent"),
        ["berlin0-0@example.com"]
    );
    assert_eq!(
        report["next_due"], "2026-04-01T00:00:00Z",
        "the Tokyo seed: {report}"
    );
    workspace.edit(CAMPAIGN, "stage: seed", "stage: full\n  paused: true");
    let paused = workspace
        .run_env(["apply", "-o", "json"], &[(CLOCK, at)])
        .code(0)
        .json();
    assert_eq!(paused["campaigns"][0]["ending"], "paused", "{paused}");
    assert_eq!(workspace.listed_addresses("welcome", "sent").len(), 1);
    workspace.edit(CAMPAIGN, "  paused: true", "  paused: false");
    let (due, report) = plan_and_apply(&workspace, at);
    assert_eq!(
        (due, report["sent"].as_u64().unwrap()),
        (3, 3),
        "Berlin and UTC: {report}"
    );
}

/// A `timezone_field` the audience's header does not have is refused: a typo would send
/// everyone in the default zone's hours.
#[test]
fn a_zone_column_the_audience_lacks_is_refused() {
    let workspace = scheduled(SCHEDULE);
    workspace.edit(CAMPAIGN, "timezone_field: tz", "timezone_field: zone");
    workspace.write(
        "campaigns/audiences/customers.csv",
        "email,name,locale,tz\nann@example.com,Ann,en,Europe/Berlin\n",
    );
    workspace.run(["apply"]).code(2).stdout("").stderr(
        "error: campaign `welcome`: campaigns/audiences/customers.csv:1: no column `zone`, which \
         `schedule.timezone_field` names; the header has `email`, `name`, `locale` and `tz`; \
         nothing was sent\n",
    );
    assert!(workspace.outbox("welcome").is_empty());
}
