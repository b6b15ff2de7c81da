//! An outage is not a failure: a provider or relay that is down, refuses its TLS or the
//! key, or answers 5xx past every retry, charges nobody. apply says so once and exits 1,
//! with everyone still due; watch looks again by itself and sends everyone exactly once
//! when it is back. Against the SendGrid fake and real SMTP servers (tests/servers/smtpd.py).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::fake_sendgrid::{FakeSendGrid, Scenario};
use crate::harness::{self, Run, Running, Test, Workspace};
use crate::servers::{Server, Smtpd, free_port, smtpd};
use crate::tls::TestCa;

const KEY_ENV: &str = "HERALD_TEST_SENDGRID_KEY";
const KEY: &str = "SG.outage-test-key-never-print-me";
const CAMPAIGN: &str = "campaigns/welcome.yaml";

/// `n` recipients through `transport` (named `outbox`, the name the campaign uses), in
/// calls of 10, at a rate that never binds.
fn workspace(transport: &str, n: usize) -> Workspace {
    Test::campaign()
        .file("campaigns/audiences/customers.csv", &harness::audience(n, 4))
        .file(
            "campaigns/transports.yaml",
            &format!("apiVersion: herald/v1\nkind: Transport\nmetadata: {{name: outbox}}\nspec: {transport}\n"),
        )
        .edit(CAMPAIGN, "rate: {per_second: 50}", "rate: {per_second: 100000}")
        .edit(CAMPAIGN, "size: 100", "size: 10")
        .workspace()
}

fn sendgrid(fake: &FakeSendGrid) -> String {
    format!(
        "{{type: sendgrid, endpoint: \"{}\", api_key_env: {KEY_ENV}, timeout_seconds: 5}}",
        fake.endpoint()
    )
}

fn smtp(port: u16) -> String {
    format!("{{type: smtp, host: 127.0.0.1, port: {port}, tls: none, timeout_seconds: 5}}")
}

fn apply(workspace: &Workspace) -> Run {
    workspace.run_env(["apply"], &[(KEY_ENV, KEY)])
}

fn watch(workspace: &Workspace) -> Running {
    workspace.spawn_env(["watch", "--interval", "1h"], &[(KEY_ENV, KEY)])
}

/// The one thing apply says about a transport that is down, its time written `THEN`.
fn down_message(stderr: &str) -> String {
    harness::since_as_then(stderr)
}

/// Recipients the store holds as failed: none, in every outage.
fn failed(workspace: &Workspace) -> Vec<String> {
    workspace.listed_addresses("welcome", "failed")
}

/// Waits until `done` holds (watch sending by itself), then stops watch; what it printed.
fn until(watching: Running, what: &str, limit: Duration, done: impl Fn() -> bool) -> Run {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "watch did not {what} within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    watching.interrupt();
    watching.finish().code(0)
}

/// How often the SendGrid fake took each address.
fn accepted(fake: &FakeSendGrid) -> BTreeMap<String, usize> {
    let mut count = BTreeMap::new();
    for a in &fake.log().accepted {
        *count.entry(a.to.clone()).or_insert(0) += 1;
    }
    count
}

fn everyone_once(count: &BTreeMap<String, usize>, n: usize) {
    assert_eq!(count.len(), n, "everyone: {count:?}");
    assert!(count.values().all(|&times| times == 1), "once: {count:?}");
}

/// SMTP recipients stored, each with how often.
fn stored(server: &Server) -> BTreeMap<String, usize> {
    let mut count = BTreeMap::new();
    for to in server.recipients() {
        *count.entry(to).or_insert(0) += 1;
    }
    count
}

/// The connection-refused text of the platform, with the port as `PORT`.
fn port_as_port(text: &str, port: u16) -> String {
    text.replace(&port.to_string(), "PORT")
}

#[test]
fn a_provider_refusing_connections_for_10_s_charges_nobody_and_watch_sends_when_it_is_back() {
    let fake = FakeSendGrid::start_after(Duration::from_secs(10), Scenario::Accept);
    let workspace = workspace(&sendgrid(&fake), 50);
    let port: u16 = fake.endpoint().rsplit(':').next().unwrap().parse().unwrap();
    let run = apply(&workspace).code(1);
    assert_eq!(
        port_as_port(&down_message(&run.stderr), port),
        "error: transport `outbox` is down since THEN: cannot connect: error sending request for url \
         (http://127.0.0.1:PORT/v3/mail/send): client error (Connect): tcp connect error: Connection refused \
         (os error 111) (after 5 tries); herald tries again by itself; nothing to fix unless it lasts; nobody \
         was charged with it: `welcome` waits for it, everyone not yet sent still due; run apply again once it \
         is back\n"
    );
    assert_eq!(failed(&workspace), Vec::<String>::new(), "nobody failed");
    let status = workspace.run(["status", "-o", "json"]).code(0).json();
    assert_eq!(status["campaigns"][0]["down"]["cause"], "network");

    let watching = watch(&workspace);
    until(watching, "send everyone", Duration::from_secs(60), || {
        fake.log().accepted.len() >= 50
    });
    everyone_once(&accepted(&fake), 50);
    assert!(failed(&workspace).is_empty());
    let status = workspace.run(["status", "-o", "json"]).code(0).json();
    assert_eq!(status["campaigns"][0]["sent"], 50);
    assert_eq!(
        status["campaigns"][0]["down"],
        serde_json::Value::Null,
        "up again"
    );
}

#[test]
fn a_relay_down_then_up_charges_nobody_and_watch_sends_when_it_is_back() {
    let port = free_port();
    let workspace = workspace(&smtp(port), 20);
    let run = apply(&workspace).code(1);
    let message = down_message(&run.stderr);
    assert!(
        message.starts_with(
            "error: transport `outbox` is down since THEN: cannot connect: Connection error: Connection refused"
        ) && message.ends_with(
            "(after 5 tries); herald tries again by itself; nothing to fix unless it lasts; nobody was charged \
             with it: `welcome` waits for it, everyone not yet sent still due; run apply again once it is back\n"
        ),
        "{message}"
    );
    assert!(failed(&workspace).is_empty(), "nobody failed");

    // watch as a service: the outage shows in /metrics and /status, and clears by itself.
    let listen = free_port();
    let watching = workspace.spawn_env(
        [
            "watch",
            "--interval",
            "1h",
            "--listen",
            &format!("127.0.0.1:{listen}"),
        ],
        &[(KEY_ENV, KEY)],
    );
    let up = |value: u8| format!("herald_transport_up{{transport=\"outbox\"}} {value}\n");
    let shows = |value: u8| {
        std::net::TcpStream::connect(("127.0.0.1", listen)).is_ok()
            && crate::http::get(listen, "/metrics")
                .body
                .contains(&up(value))
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !shows(0) {
        assert!(Instant::now() < deadline, "herald_transport_up never 0");
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = crate::http::get(listen, "/status").json();
    assert_eq!(
        status["campaigns"][0]["down"]["transport"], "outbox",
        "{status}"
    );
    let Some(server) = smtpd(&Smtpd {
        port: Some(port),
        ..Smtpd::default()
    }) else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    while server.recipients().len() < 20 || !shows(1) {
        assert!(Instant::now() < deadline, "watch did not send everyone");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The run records its last outcomes, then clears `down`.
    let cleared = || {
        let status = crate::http::get(listen, "/status").json();
        status["campaigns"][0]["down"].is_null() && status["campaigns"][0]["sent"] == 20
    };
    while !cleared() {
        let status = crate::http::get(listen, "/status").body;
        assert!(Instant::now() < deadline, "`down` never cleared: {status}");
        std::thread::sleep(Duration::from_millis(100));
    }
    watching.interrupt();
    watching.finish().code(0);
    everyone_once(&stored(&server), 20);
    assert!(failed(&workspace).is_empty());
}

/// A relay whose name does not resolve is an outage like any: nobody failed, exit 1.
#[test]
fn a_relay_whose_name_does_not_resolve_charges_nobody() {
    let transport =
        "{type: smtp, host: relay.herald-test.invalid, port: 25, tls: none, timeout_seconds: 5}";
    let workspace = workspace(transport, 10);
    let run = apply(&workspace).code(1);
    let message = down_message(&run.stderr);
    assert!(
        message.starts_with("error: transport `outbox` is down since THEN: cannot connect: "),
        "{message}"
    );
    assert!(failed(&workspace).is_empty(), "nobody failed");
    assert!(
        workspace
            .listed_addresses("welcome", "uncertain")
            .is_empty()
    );
}

/// `tls_trust: system` trusts the machine's store, which `SSL_CERT_FILE` names (as
/// OpenSSL and rustls-native-certs read it): a relay whose CA is there is trusted.
#[test]
fn tls_trust_system_takes_the_machines_store() {
    let ca = TestCa::new();
    let Some(server) = smtpd(&Smtpd {
        tls: Some((&ca.cert, &ca.key)),
        ..Smtpd::default()
    }) else {
        return;
    };
    let transport = format!(
        "{{type: smtp, host: localhost, port: {}, tls: starttls, tls_trust: system, timeout_seconds: 5}}",
        server.port
    );
    let workspace = workspace(&transport, 12);
    let ca_file = ca.ca.to_str().unwrap().to_owned();
    workspace
        .run_env(["apply"], &[("SSL_CERT_FILE", ca_file.as_str())])
        .code(0);
    everyone_once(&stored(&server), 12);
}

/// STARTTLS and AUTH against a real server, as the SES recipe uses them: a certificate of
/// a private CA is not trusted until `tls_ca_file` names the CA; a wrong password is the
/// relay refusing the credentials. Neither fails anybody.
#[test]
fn starttls_with_auth_an_untrusted_certificate_then_the_ca_file() {
    let ca = TestCa::new();
    let Some(server) = smtpd(&Smtpd {
        tls: Some((&ca.cert, &ca.key)),
        auth: Some(("mailer", "correct-horse-battery")),
        ..Smtpd::default()
    }) else {
        return;
    };
    let transport = |extra: &str| {
        format!(
            "{{type: smtp, host: localhost, port: {}, tls: starttls, username_env: SMTP_USER, \
             password_env: SMTP_PASSWORD, timeout_seconds: 5{extra}}}",
            server.port
        )
    };
    let workspace = workspace(&transport(""), 12);
    let run = |password: &str| {
        workspace.run_env(
            ["apply"],
            &[("SMTP_USER", "mailer"), ("SMTP_PASSWORD", password)],
        )
    };
    let untrusted = run("correct-horse-battery").code(1);
    let message = down_message(&untrusted.stderr);
    assert!(
        message.starts_with("error: transport `outbox` is down since THEN: TLS failed: ")
            && message.ends_with(
                "; if its certificate is signed by a CA of your own, give the CA in `tls_ca_file` (or set \
                 `tls_trust: system` to trust the machine's store); nobody was charged with it: `welcome` waits \
                 for it, everyone not yet sent still due; run apply again once it is back\n"
            ),
        "{message}"
    );
    assert!(failed(&workspace).is_empty(), "nobody failed");
    assert!(server.recipients().is_empty(), "nothing left without TLS");

    std::fs::copy(&ca.ca, workspace.path().join("campaigns/relay-ca.pem")).unwrap();
    let write_transport = |extra: &str| {
        workspace.write(
            "campaigns/transports.yaml",
            &format!(
                "apiVersion: herald/v1\nkind: Transport\nmetadata: {{name: outbox}}\nspec: {}\n",
                transport(extra)
            ),
        );
    };
    write_transport(", tls_ca_file: relay-ca.pem");
    let refused = run("wrong-password-here").code(1);
    assert_eq!(
        down_message(&refused.stderr),
        "error: transport `outbox` is down since THEN: permanent error (535): 5.7.8 Authentication credentials \
         invalid; check the user name in `SMTP_USER` and the password in `SMTP_PASSWORD`; nobody was charged \
         with it: `welcome` waits for it, everyone not yet sent still due; run apply again once it is back\n"
    );
    assert!(failed(&workspace).is_empty(), "nobody failed");

    // watch, waiting on the certificate, sends as soon as the CA is given.
    write_transport("");
    let watching = workspace.spawn_env(
        ["watch", "--interval", "1h"],
        &[
            ("SMTP_USER", "mailer"),
            ("SMTP_PASSWORD", "correct-horse-battery"),
        ],
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(server.recipients().is_empty(), "not without the CA");
    write_transport(", tls_ca_file: relay-ca.pem");
    until(watching, "send everyone", Duration::from_secs(30), || {
        server.recipients().len() >= 12
    });
    everyone_once(&stored(&server), 12);
    assert!(failed(&workspace).is_empty());
}

#[test]
fn a_refused_key_charges_nobody_and_watch_sends_once_it_is_taken() {
    let fake = FakeSendGrid::start(Scenario::UnauthorizedFor(Duration::from_secs(6)));
    let workspace = workspace(&sendgrid(&fake), 30);
    let run = apply(&workspace).code(1);
    assert_eq!(
        down_message(&run.stderr),
        "error: transport `outbox` is down since THEN: SendGrid answered 401 Unauthorized: The provided \
         authorization grant is invalid, expired, or revoked; check the key in `HERALD_TEST_SENDGRID_KEY` (set, \
         current, and allowed to send); nobody was charged with it: `welcome` waits for it, everyone not yet \
         sent still due; run apply again once it is back\n"
    );
    let requests = fake.log().requests;
    assert!(
        (1..=3).contains(&requests),
        "only the calls in flight when the first 401 came back, and none after: {requests}"
    );
    assert!(failed(&workspace).is_empty(), "nobody failed");

    let watching = watch(&workspace);
    until(watching, "send everyone", Duration::from_secs(60), || {
        fake.log().accepted.len() >= 30
    });
    everyone_once(&accepted(&fake), 30);
    assert!(failed(&workspace).is_empty());
}

#[test]
fn a_5xx_storm_outlasting_the_retries_charges_nobody_and_watch_sends_after_it() {
    let fake = FakeSendGrid::start(Scenario::ServerErrorsFor(Duration::from_secs(12)));
    let workspace = workspace(&sendgrid(&fake), 30);
    let run = apply(&workspace).code(1);
    assert_eq!(
        down_message(&run.stderr),
        "error: transport `outbox` is down since THEN: SendGrid answered 503 Service Unavailable:  (after 5 \
         tries); herald tries again by itself; nothing to fix unless it lasts; nobody was charged with it: \
         `welcome` waits for it, everyone not yet sent still due; run apply again once it is back\n"
    );
    assert!(failed(&workspace).is_empty(), "nobody failed");

    let watching = watch(&workspace);
    until(watching, "send everyone", Duration::from_secs(60), || {
        fake.log().accepted.len() >= 30
    });
    everyone_once(&accepted(&fake), 30);
    assert!(failed(&workspace).is_empty());
}

/// A relay that goes silent: before its greeting, after EHLO (never answering MAIL FROM),
/// or after MAIL FROM (never answering RCPT TO), and never answering QUIT either. It holds
/// no call past `timeout_seconds` (lettre bounds only the TCP connect, and waits for QUIT's
/// answer without a limit), and as nothing was sent, nobody is failed or uncertain: the
/// transport is down, apply exits 1.
#[test]
fn a_relay_that_goes_silent_holds_no_call_and_charges_nobody() {
    let before = "no answer in time (1 s) before the message was sent";
    for (answers, said) in [
        (
            &[][..],
            "the relay did not finish its greeting, EHLO, STARTTLS or AUTH within 1 s",
        ),
        (&["EHLO", "HELO"][..], before),
        (&["EHLO", "HELO", "MAIL"][..], before),
    ] {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || silent(stream, answers));
            }
        });
        let transport = smtp(port).replace("timeout_seconds: 5", "timeout_seconds: 1");
        let workspace = workspace(&transport, 10);
        let started = Instant::now();
        let run = apply(&workspace).code(1);
        assert!(
            run.stderr
                .contains("error: transport `outbox` is down since ")
                && run.stderr.contains(said),
            "{answers:?}: {}",
            run.stderr
        );
        assert!(failed(&workspace).is_empty(), "nobody failed");
        assert!(
            workspace
                .listed_addresses("welcome", "uncertain")
                .is_empty(),
            "nobody uncertain"
        );
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{answers:?}: {:?}",
            started.elapsed()
        );
    }
}

/// Takes a connection and answers nothing; or, when `answers` names commands, the
/// greeting and `250` to those commands, then nothing to any other (QUIT included).
fn silent(stream: std::net::TcpStream, answers: &[&str]) {
    use std::io::{BufRead as _, Read as _, Write as _};
    let mut writer = stream.try_clone().unwrap();
    if answers.is_empty() {
        let _ = (&stream).read_to_end(&mut Vec::new());
        return;
    }
    let _ = writer.write_all(b"220 silent.test ESMTP\r\n");
    for line in std::io::BufReader::new(stream).lines() {
        let Ok(line) = line else { break };
        let command = line.to_ascii_uppercase();
        if answers.iter().any(|a| command.starts_with(a)) {
            let _ = writer.write_all(b"250 silent.test\r\n");
        }
    }
}

/// The safety gate is for a bad campaign: 10% of recipients refused with 550 trips it;
/// a relay that refuses every connection does not.
#[test]
fn the_halt_gate_trips_on_550_answers_and_never_on_an_outage() {
    let Some(server) = smtpd(&Smtpd {
        reject: Some(r"^user\d{3}0@"),
        ..Smtpd::default()
    }) else {
        return;
    };
    let bad = workspace(&smtp(server.port), 200);
    // A halt has its own exit code, so a scheduler does not retry it.
    let run = bad.run(["apply", "-o", "json"]).code(3);
    let report = &run.json()["campaigns"][0];
    assert_eq!(report["ending"], "halted", "{report}");
    assert!(
        report["failed"].as_u64().unwrap() >= 10,
        "10% of at least 100 tries: {report}"
    );

    let outage = workspace(&smtp(free_port()), 200);
    let run = outage.run(["apply", "-o", "json"]).code(1);
    let report = &run.json()["campaigns"][0];
    assert_eq!(report["ending"], "transport_down", "{report}");
    assert_eq!(report["failed"], 0);
    let status = outage.run(["status", "-o", "json"]).code(0).json();
    assert_eq!(status["campaigns"][0]["halted"], serde_json::Value::Null);
}

/// `--retry-failed` is the way back for recipients charged with a failure: counted by
/// plan first, sent once each, and only those (optionally only those of one reason).
#[test]
fn retry_failed_reaches_exactly_the_failed_recipients_once() {
    let port = free_port();
    let workspace = workspace(&smtp(port), 100);
    workspace.edit(
        CAMPAIGN,
        "  batch:\n",
        "  halt: {max_failure_rate: 0.5}\n  batch:\n",
    );
    let Some(refusing) = smtpd(&Smtpd {
        port: Some(port),
        reject: Some(r"^user\d{3}0@"),
        ..Smtpd::default()
    }) else {
        return;
    };
    workspace.run(["apply"]).code(1);
    let first = stored(&refusing);
    drop(refusing);
    let failed_before = failed(&workspace);
    assert_eq!(failed_before.len(), 10);
    assert_eq!(first.len(), 90);

    let plan = workspace
        .run(["plan", "--retry-failed", "-o", "json"])
        .code(0)
        .json();
    assert_eq!(
        plan["campaigns"][0]["to_send"], 10,
        "plan counts them first"
    );
    let plan = workspace.run(["plan", "-o", "json"]).code(0).json();
    assert_eq!(plan["campaigns"][0]["to_send"], 0);

    let Some(taking) = smtpd(&Smtpd {
        port: Some(port),
        ..Smtpd::default()
    }) else {
        return;
    };
    workspace
        .run(["apply", "--retry-failed=no such reason"])
        .code(0)
        .stdout("welcome: nothing to send\n  earlier runs: 90 already sent, 10 failed\n");
    workspace
        .run(["apply", "--retry-failed=User unknown"])
        .code(0);
    let again = stored(&taking);
    assert_eq!(again.keys().cloned().collect::<Vec<_>>(), failed_before);
    assert!(again.values().all(|&n| n == 1));
    assert!(failed(&workspace).is_empty());
    workspace
        .run(["apply", "--retry-failed"])
        .code(0)
        .stdout("welcome: nothing to send\n  earlier runs: 100 already sent\n");
    assert_eq!(stored(&taking).len(), 10, "nobody twice");
}
