//! `herald watch --listen` as a long-running service, on an audience of realistic size:
//! as fast as apply, quiet when idle, readable while it runs, and its endpoints and
//! status page checked from the outside (the page in a real browser).

use std::process::Command;
use std::time::{Duration, Instant};

use crate::browser::Browser;
use crate::harness::{self, Test, Workspace};
use crate::http;

const CAMPAIGN: &str = "campaigns/welcome.yaml";
const RECIPIENTS: u64 = 40_000;

fn campaign(n: u64, per_second: u64) -> Workspace {
    let audience = harness::audience(usize::try_from(n).unwrap(), 5);
    Test::campaign()
        .file("campaigns/audiences/customers.csv", &audience)
        .file("campaigns/audiences/unsubscribed.csv", "email\n")
        .edit(
            CAMPAIGN,
            "rate: {per_second: 50}",
            &format!("rate: {{per_second: {per_second}}}"),
        )
        .edit(CAMPAIGN, "size: 100", "size: 1000")
        .workspace()
}

/// CPU seconds the process has used (user + system), from `/proc/PID/stat`.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name may hold spaces; fields are counted after its closing parenthesis.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    let per_second: f64 = String::from_utf8(
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .parse()
    .unwrap();
    ticks / per_second
}

fn sent_by_status(port: u16) -> Option<u64> {
    let answer = http::get(port, "/status");
    (answer.status == 200).then(|| answer.json()["campaigns"][0]["sent"].as_u64().unwrap_or(0))
}

fn wait_until(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every endpoint, from the outside, once everyone is sent.
fn assert_endpoints(port: u16, workspace: &Workspace) {
    let status = http::get(port, "/status");
    assert_eq!(status.status, 200);
    assert_eq!(status.json()["campaigns"][0]["sent"], RECIPIENTS);
    assert_eq!(
        status.json(),
        workspace.run(["status", "-o", "json"]).code(0).json()
    );
    let metrics = http::get(port, "/metrics");
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/openmetrics-text")),
        "{:?}",
        metrics.headers
    );
    for line in [
        format!("herald_recipients{{campaign=\"welcome\",state=\"sent\"}} {RECIPIENTS}"),
        "herald_recipients{campaign=\"welcome\",state=\"due\"} 0".to_owned(),
        "herald_campaign_paused{campaign=\"welcome\"} 0".to_owned(),
        "herald_campaign_halted{campaign=\"welcome\"} 0".to_owned(),
        "herald_provider_calls_total{transport=\"outbox\",outcome=\"sent\"} 40".to_owned(),
        "herald_provider_call_duration_seconds_count{transport=\"outbox\"} 40".to_owned(),
    ] {
        assert!(
            metrics.body.lines().any(|l| l == line),
            "{line} in:\n{}",
            metrics.body
        );
    }
    let page = http::get(port, "/");
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("<dd class=\"sent\">40000</dd>"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("<meta http-equiv=\"refresh\""),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<script"), "no script");
}

/// The page as an operator sees it, in a real browser.
fn check_page_in_a_browser(port: u16) {
    if let Some(browser) = Browser::start() {
        browser.open(&format!("http://127.0.0.1:{port}/"));
        assert_eq!(browser.title(), "herald");
        assert_eq!(browser.text("#welcome dd.sent"), "40000");
        assert_eq!(browser.text("#welcome dd.due"), "0");
        assert_eq!(browser.text("#welcome .state"), "idle");
        let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
        let size = browser.screenshot(&shot);
        assert!(size > 5_000, "a screenshot of the page: {size} bytes");
    }
}

#[test]
fn watch_sends_a_large_audience_as_fast_as_apply_and_serves_its_progress() {
    let _alone = harness::exclusive();
    // The same campaign under apply, for the time to beat (timed again below).
    let reference = campaign(RECIPIENTS, 8000);
    let started = Instant::now();
    reference.run(["apply"]).code(0);
    let apply_took = started.elapsed();

    let workspace = campaign(RECIPIENTS, 8000);
    let port = http::free_port();
    let started = Instant::now();
    let child = workspace.spawn(["watch", "--listen", &format!("127.0.0.1:{port}")]);
    wait_until("it listens", Duration::from_secs(30), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert_eq!(http::get(port, "/livez").status, 200);

    // While it sends: status from a second process, answered by the watch.
    let mut asked_while_sending = false;
    let mut readiness = Vec::new();
    wait_until("everyone is sent", Duration::from_secs(120), || {
        readiness.push(http::get(port, "/readyz").status);
        let sent = sent_by_status(port).unwrap_or(0);
        if sent > 0 && sent < RECIPIENTS && !asked_while_sending {
            let status = workspace.run(["status", "-o", "json"]).code(0).json();
            let seen = status["campaigns"][0]["sent"].as_u64().unwrap();
            assert!(
                seen >= sent,
                "status from another process: {seen} of at least {sent}"
            );
            asked_while_sending = true;
        }
        sent == RECIPIENTS
    });
    let watch_took = started.elapsed();
    // Load from outside the tests comes and goes: apply is timed again right after, and
    // the slower of its two runs is the time to beat.
    let again = campaign(RECIPIENTS, 8000);
    let started = Instant::now();
    again.run(["apply"]).code(0);
    let apply_took = apply_took.max(started.elapsed());
    eprintln!("40,000 recipients: watch {watch_took:?}, apply {apply_took:?}");
    assert!(
        watch_took.as_secs_f64() <= apply_took.as_secs_f64() * 1.5,
        "watch took {watch_took:?}, apply {apply_took:?}"
    );
    assert!(asked_while_sending, "status was asked while sending");
    assert_eq!(readiness.last(), Some(&200));
    assert!(
        readiness
            .iter()
            .skip_while(|s| **s == 503)
            .all(|s| *s == 200),
        "503 before ready, 200 after: {readiness:?}"
    );

    // Converged: idle, it uses no measurable CPU.
    std::thread::sleep(Duration::from_secs(1));
    let before = cpu_seconds(child.id());
    std::thread::sleep(Duration::from_secs(5));
    let idle = cpu_seconds(child.id()) - before;
    assert!(idle < 0.02 * 5.0, "{idle:.3} CPU seconds in 5 s while idle");

    assert_endpoints(port, &workspace);
    check_page_in_a_browser(port);

    child.interrupt();
    let stdout = child.finish().code(0).stdout.clone();
    assert!(
        !stdout.contains("interrupted"),
        "no run interrupted itself:\n{stdout}"
    );
    assert_eq!(
        stdout.matches("welcome: sent 40000 of 40000").count(),
        1,
        "{stdout}"
    );
    let mails = std::fs::read_dir(workspace.path().join("outbox/welcome"))
        .unwrap()
        .count();
    assert_eq!(mails as u64, RECIPIENTS, "everyone once");
}

#[test]
fn touching_every_input_and_resaving_the_manifest_interrupts_nothing() {
    let _alone = harness::exclusive();
    let workspace = campaign(3000, 1000);
    let port = http::free_port();
    let child = workspace.spawn(["watch", "--listen", &format!("127.0.0.1:{port}")]);
    wait_until("it sends", Duration::from_secs(30), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            && sent_by_status(port).is_some_and(|n| n > 0)
    });
    // What editors and sync tools do to files that did not change.
    let files = [
        CAMPAIGN,
        "campaigns/transports.yaml",
        "campaigns/templates/welcome.html.j2",
        "campaigns/templates/welcome.txt.j2",
        "campaigns/locales/en.yaml",
        "campaigns/audiences/customers.csv",
        "campaigns/audiences/unsubscribed.csv",
    ];
    for round in 0..3 {
        for file in files {
            let status = Command::new("touch")
                .arg(workspace.path().join(file))
                .status()
                .unwrap();
            assert!(status.success());
        }
        // Re-saved with the same bytes, once in place and once by renaming over it.
        let manifest = workspace.read(CAMPAIGN);
        workspace.write(CAMPAIGN, &manifest);
        let temporary = workspace
            .path()
            .join(format!("campaigns/.welcome.yaml.{round}"));
        std::fs::write(&temporary, &manifest).unwrap();
        std::fs::rename(&temporary, workspace.path().join(CAMPAIGN)).unwrap();
        std::thread::sleep(Duration::from_millis(300));
    }
    wait_until("everyone is sent", Duration::from_secs(60), || {
        sent_by_status(port) == Some(3000)
    });
    std::thread::sleep(Duration::from_millis(500));
    child.interrupt();
    let stdout = child.finish().code(0).stdout.clone();
    assert!(!stdout.contains("interrupted"), "{stdout}");
    assert_eq!(
        stdout.matches("welcome: sent 3000 of 3000").count(),
        1,
        "{stdout}"
    );
    let mut seen = std::collections::BTreeSet::new();
    for mail in workspace.outbox("welcome") {
        assert!(seen.insert(mail.recipient().to_owned()), "nobody twice");
    }
    assert_eq!(seen.len(), 3000);
}
