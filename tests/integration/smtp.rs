//! The SMTP transport against real servers: aiosmtpd for delivery, Postfix smtp-sink for
//! faults.

use std::collections::BTreeSet;

use crate::harness::{self, Mail, Test, Workspace};
use crate::servers::{aiosmtpd, smtp_sink};

fn workspace(port: u16, n: usize) -> Workspace {
    let audience = harness::audience(n, 3);
    Test::campaign()
        .file("campaigns/audiences/customers.csv", &audience)
        .file(
            "campaigns/transports.yaml",
            &format!(
                "apiVersion: herald/v1\nkind: Transport\nmetadata: {{name: outbox}}\n\
                 spec: {{type: smtp, host: 127.0.0.1, port: {port}, tls: none, timeout_seconds: 5}}\n"
            ),
        )
        .edit(
            "campaigns/welcome.yaml",
            "  batch:\n",
            "  unsubscribe: {url: \"https://example.com/u/{{ unsubscribe_token }}\"}\n  batch:\n",
        )
        .edit("campaigns/welcome.yaml", "rate: {per_second: 50}", "rate: {per_second: 10000}")
        .edit("campaigns/welcome.yaml", "size: 100", "size: 10")
        .env("HERALD_UNSUBSCRIBE_KEY", "smtp-test-unsubscribe-key")
        .workspace()
}

#[test]
fn every_stored_message_has_one_rcpt_to_equal_to_its_only_to() {
    let Some(server) = aiosmtpd() else { return };
    let workspace = workspace(server.port, 25);
    let run = workspace.run(["apply", "-o", "json"]).code(0);
    assert_eq!(run.json()["campaigns"][0]["sent"], 25);

    let new = server.maildir.as_ref().unwrap().path().join("new");
    let mut recipients = BTreeSet::new();
    for entry in std::fs::read_dir(new).unwrap() {
        let mail = Mail::read(&entry.unwrap().path());
        let rcpt: Vec<&str> = mail
            .raw
            .lines()
            .filter_map(|l| l.strip_prefix("X-RcptTo: "))
            .collect();
        assert_eq!(
            rcpt,
            [mail.recipient()],
            "{}: one RCPT TO, the To",
            mail.file
        );
        assert!(
            mail.raw
                .contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click")
        );
        let i: usize = mail.recipient()[4..7].parse().unwrap();
        assert!(
            mail.text.contains(&format!("Hello User {i}")),
            "{}",
            mail.text
        );
        assert!(recipients.insert(mail.recipient().to_owned()), "twice");
    }
    assert_eq!(recipients.len(), 25);
    workspace
        .run(["apply"])
        .code(0)
        .stdout("welcome: nothing to send\n  earlier runs: 25 already sent\n");
}

fn failed(workspace: &Workspace) -> Vec<serde_json::Value> {
    workspace.listed("welcome", "failed")
}

#[test]
fn a_5xx_fails_at_once_with_the_servers_words() {
    let Some(server) = smtp_sink(&["-f", "rcpt"]) else {
        return;
    };
    let workspace = workspace(server.port, 3);
    let run = workspace.run(["apply", "-o", "json"]).code(1);
    assert_eq!(run.json()["campaigns"][0]["failed"], 3);
    for recipient in failed(&workspace) {
        assert_eq!(recipient["attempts"], 1, "not retried");
        assert_eq!(
            recipient["reason"],
            "permanent error (500): 5.3.0 Error: command failed"
        );
    }
}

/// A 5xx to DATA, or to the message itself, is about this message: it fails the recipient,
/// as one to their RCPT TO does.
#[test]
fn a_5xx_to_data_or_the_message_fails_the_recipient() {
    for command in ["data", "."] {
        let Some(server) = smtp_sink(&["-f", command]) else {
            return;
        };
        let workspace = workspace(server.port, 2);
        let run = workspace.run(["apply", "-o", "json"]).code(1);
        assert_eq!(run.json()["campaigns"][0]["failed"], 2, "-f {command}");
        assert_eq!(run.json()["campaigns"][0]["down"], serde_json::Value::Null);
    }
}

/// A 4xx is "not now": retried with backoff, and when it lasts past every retry the
/// relay is busy, not the recipients wrong: nobody is failed, everyone stays due.
#[test]
fn a_4xx_is_retried_with_backoff_then_leaves_everyone_due() {
    let Some(server) = smtp_sink(&["-r", "rcpt"]) else {
        return;
    };
    let workspace = workspace(server.port, 2);
    let started = std::time::Instant::now();
    let run = workspace.run(["apply", "-o", "json"]).code(1);
    assert!(
        started.elapsed().as_secs_f64() > 3.0,
        "backed off between tries"
    );
    let report = &run.json()["campaigns"][0];
    assert_eq!(report["ending"], "transport_down");
    assert_eq!(
        (report["failed"].as_u64(), report["not_sent"].as_u64()),
        (Some(0), Some(2))
    );
    assert_eq!(report["down"]["cause"], "busy");
    assert_eq!(
        report["down"]["reason"],
        "transient error (450): 4.3.0 Error: command failed (after 5 tries)"
    );
    assert!(failed(&workspace).is_empty(), "nobody failed");
}

#[test]
fn a_421_is_retried_like_any_4xx() {
    let Some(server) = smtp_sink(&["-b", "421 4.3.2 Service shutting down", "-r", "mail"]) else {
        return;
    };
    let workspace = workspace(server.port, 1);
    let run = workspace.run(["apply", "-o", "json"]).code(1);
    let report = &run.json()["campaigns"][0];
    assert_eq!(report["ending"], "transport_down");
    assert!(
        report["down"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("transient error (421)"),
        "{}",
        report["down"]["reason"]
    );
    assert!(failed(&workspace).is_empty(), "nobody failed");
}

#[test]
fn a_connection_lost_after_data_is_uncertain_and_not_sent_again() {
    let Some(server) = smtp_sink(&["-q", "."]) else {
        return;
    };
    let workspace = workspace(server.port, 3);
    let run = workspace.run(["apply", "-o", "json"]).code(1);
    assert_eq!(run.json()["campaigns"][0]["uncertain"], 3);
    let again = workspace.run(["apply", "-o", "json"]).code(0);
    assert_eq!(again.json()["campaigns"][0]["ending"], "nothing_to_send");
    assert_eq!(again.json()["campaigns"][0]["previously_uncertain"], 3);
}

/// Credentials go only over TLS, or to this machine, unless the manifest says the network
/// is its own; a CA file without TLS is a mistake, and one that is not there too.
#[test]
fn credentials_in_clear_text_are_refused_unless_loopback_or_allowed() {
    let transport = |spec: &str| {
        Test::campaign()
            .file(
                "campaigns/transports.yaml",
                &format!("apiVersion: herald/v1\nkind: Transport\nmetadata: {{name: outbox}}\nspec: {spec}\n"),
            )
            .args(["validate"])
            .run()
    };
    transport(
        "{type: smtp, host: smtp.example.com, tls: none, username_env: SMTP_USER, password_env: SMTP_PASSWORD}",
    )
    .code(2)
    .stderr(
        "campaigns/transports.yaml:4:49: spec.tls: `none` would send the credentials to `smtp.example.com` in \
         clear text, readable by anyone on the way; use `starttls` or `tls`, or set `allow_plaintext_auth: true` \
         if the network to it is your own\nerror: 1 problem found in the manifests; nothing was sent\n",
    );
    for allowed in [
        "{type: smtp, host: smtp.example.com, tls: none, allow_plaintext_auth: true, username_env: U, password_env: P}",
        "{type: smtp, host: 127.0.0.1, tls: none, username_env: U, password_env: P}",
        "{type: smtp, host: localhost, tls: none, username_env: U, password_env: P}",
        "{type: smtp, host: smtp.example.com, tls: none}",
    ] {
        transport(allowed).code(0);
    }
    transport("{type: smtp, host: relay.example.com, tls: none, tls_ca_file: ca.pem}")
        .code(2)
        .stderr(
            "campaigns/transports.yaml:4:56: spec.tls_ca_file: a CA file is for TLS, and `tls: none` uses none; \
             remove it or set `tls: starttls`\n\
             campaigns/transports.yaml:4:69: spec.tls_ca_file: `ca.pem` not found (looked for `campaigns/ca.pem`)\n\
             error: 2 problems found in the manifests; nothing was sent\n",
        );
}

/// A 5xx before any recipient is named (to the greeting, EHLO or MAIL FROM) is the relay
/// refusing herald or the sender, not an answer about anybody: nobody fails, everyone
/// stays due, and apply says once what to fix.
#[test]
fn a_5xx_to_the_greeting_ehlo_or_mail_from_fails_nobody_and_says_what_to_fix() {
    const CLIENT: &str = "error: transport `outbox` is down since THEN: the relay refused the connection (its \
         greeting or EHLO): permanent error (500): 5.3.0 Error: command failed; check that the relay takes \
         connections from this machine (its client access rules) with `tls` as set here; nobody was charged \
         with it: `welcome` waits for it, everyone not yet sent still due; run apply again once it is back\n";
    for (command, cause, message) in [
        ("connect", "client", CLIENT),
        ("ehlo", "client", CLIENT),
        (
            "mail",
            "sender",
            "error: transport `outbox` is down since THEN: the relay refused the sender `news@example.com` \
             (MAIL FROM): permanent error (500): 5.3.0 Error: command failed; check that the relay lets these \
             credentials, or this machine, send from the campaign's `from` address; nobody was charged with \
             it: `welcome` waits for it, everyone not yet sent still due; run apply again once it is back\n",
        ),
    ] {
        let Some(server) = smtp_sink(&["-f", command]) else {
            return;
        };
        let workspace = workspace(server.port, 20);
        let run = workspace.run(["apply"]).code(1);
        assert_eq!(harness::since_as_then(&run.stderr), message, "-f {command}");
        let status = workspace.run(["status", "-o", "json"]).code(0).json();
        let campaign = &status["campaigns"][0];
        assert_eq!(
            (campaign["failed"].as_u64(), campaign["sent"].as_u64()),
            (Some(0), Some(0)),
            "-f {command}: nobody failed"
        );
        assert_eq!(campaign["down"]["cause"], cause, "-f {command}");
        assert!(failed(&workspace).is_empty(), "-f {command}: nobody failed");
    }
}
