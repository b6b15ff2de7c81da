//! The feedback loop against a real `herald watch --listen` process: one-click
//! unsubscribe and its page (also in Chromium), SendGrid's signed Event Webhook, Mailgun's
//! signed webhooks, and the store's suppression list that every campaign then honours.
//! The workspace and helpers here serve the other providers' tests too
//! (`postmark_events`, `ses_events`, `events_load`).

use std::time::{Duration, Instant};

use base64::Engine as _;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::EncodePublicKey as _;

use crate::browser::Browser;
use crate::harness::{self, Running, Test, Workspace};
use crate::http;

const UNSUBSCRIBE_KEY: &str = "feedback-test-unsubscribe-key";
const EVENTS_ENV: &str = "HERALD_TEST_SENDGRID_EVENTS_KEY";
const MAILGUN_EVENTS_ENV: &str = "HERALD_TEST_MAILGUN_SIGNING_KEY";
pub const MAILGUN_SIGNING_KEY: &str = "mailgun-webhook-signing-key-5e1f";
const POSTMARK_USER_ENV: &str = "HERALD_TEST_POSTMARK_HOOK_USER";
const POSTMARK_PASSWORD_ENV: &str = "HERALD_TEST_POSTMARK_HOOK_PASSWORD";
/// The credentials Postmark's webhooks present (in the webhook URL, as basic auth).
pub const POSTMARK_USER: &str = "postmark-hooks";
pub const POSTMARK_PASSWORD: &str = "pm-hook-password-9d2c41";
/// The SNS topic the `ses` transport names: the only one `/events/ses` takes.
pub const SES_TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:herald-ses-feedback";
pub const RECIPIENTS: usize = 6;

/// The SendGrid key the tests sign events with.
pub fn events_key() -> SigningKey {
    SigningKey::from_slice(&[7; 32]).unwrap()
}

pub fn address(i: usize) -> String {
    format!("user{i:02}@example.com")
}

/// Six recipients with unsubscribe links on the outbox, a SendGrid transport whose events
/// are verified with `events_key`, a Mailgun transport whose webhooks are verified with
/// `MAILGUN_SIGNING_KEY`, a Postmark transport whose webhooks present `POSTMARK_USER` and
/// `POSTMARK_PASSWORD`, and an SMTP transport (SES) whose feedback comes from `SES_TOPIC`
/// (the campaign sends through none of them).
pub fn workspace(events_key: &SigningKey) -> Workspace {
    let public = events_key
        .verifying_key()
        .to_public_key_der()
        .expect("a DER public key");
    let public = base64::engine::general_purpose::STANDARD.encode(public.as_bytes());
    Test::campaign()
        .env("HERALD_UNSUBSCRIBE_KEY", UNSUBSCRIBE_KEY)
        .env(EVENTS_ENV, &public)
        .env(MAILGUN_EVENTS_ENV, MAILGUN_SIGNING_KEY)
        .env(POSTMARK_USER_ENV, POSTMARK_USER)
        .env(POSTMARK_PASSWORD_ENV, POSTMARK_PASSWORD)
        .file(
            "campaigns/audiences/customers.csv",
            &harness::audience(RECIPIENTS, 2),
        )
        .file("campaigns/audiences/unsubscribed.csv", "email\n")
        .file(
            "campaigns/transports.yaml",
            &format!(
                "{}---\napiVersion: herald/v1\nkind: Transport\nmetadata: {{name: sendgrid}}\n\
                 spec: {{type: sendgrid, api_key_env: UNUSED_KEY, events: {{public_key_env: {EVENTS_ENV}}}}}\n\
                 ---\napiVersion: herald/v1\nkind: Transport\nmetadata: {{name: mailgun}}\n\
                 spec: {{type: mailgun, domain: mg.example.com, api_key_env: UNUSED_KEY, events: {{signing_key_env: {MAILGUN_EVENTS_ENV}}}}}\n\
                 ---\napiVersion: herald/v1\nkind: Transport\nmetadata: {{name: postmark}}\n\
                 spec: {{type: postmark, server_token_env: UNUSED_KEY, events: {{username_env: {POSTMARK_USER_ENV}, password_env: {POSTMARK_PASSWORD_ENV}}}}}\n\
                 ---\napiVersion: herald/v1\nkind: Transport\nmetadata: {{name: ses}}\n\
                 spec: {{type: smtp, host: email-smtp.us-east-1.amazonaws.com, events: {{topic_arn: \"{SES_TOPIC}\"}}}}\n",
                harness::TRANSPORTS
            ),
        )
        .edit(
            "campaigns/welcome.yaml",
            "    isolation: per-recipient\n",
            "    isolation: per-recipient\n  unsubscribe: {url: \"https://example.com/u/{{ unsubscribe_token }}\"}\n",
        )
        .edit("campaigns/welcome.yaml", "per_second: 50", "per_second: 1000")
        .workspace()
}

pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `herald watch --listen` on a free port, once everyone is sent.
pub fn watch(workspace: &Workspace) -> (Running, u16) {
    watch_env(workspace, &[])
}

/// `watch` with `env` set besides the workspace's.
pub fn watch_env(workspace: &Workspace, env: &[(&str, &str)]) -> (Running, u16) {
    let port = http::free_port();
    let child = workspace.spawn_env(["watch", "--listen", &format!("127.0.0.1:{port}")], env);
    wait_until("it is ready", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            && http::get(port, "/readyz").status == 200
    });
    wait_until("everyone is sent", || {
        http::get(port, "/status").json()["campaigns"][0]["sent"] == RECIPIENTS
    });
    (child, port)
}

/// The token in the `List-Unsubscribe` header of the message `address` got.
pub fn token_of(workspace: &Workspace, address: &str) -> String {
    let mails = workspace.outbox("welcome");
    let mail = mails
        .iter()
        .find(|m| m.recipient() == address)
        .unwrap_or_else(|| panic!("a message to {address}"));
    let header = mail
        .raw
        .lines()
        .find_map(|l| l.strip_prefix("List-Unsubscribe: "))
        .expect("a List-Unsubscribe header");
    let token = header
        .trim()
        .trim_start_matches("<https://example.com/u/")
        .trim_end_matches('>');
    assert_eq!(token.len(), 32, "{header}");
    token.to_owned()
}

/// The store's suppression list, from a second process while watch holds the store.
pub fn suppressed(workspace: &Workspace) -> Vec<(String, String, String)> {
    let list = workspace
        .run(["suppressions", "list", "-o", "json"])
        .code(0)
        .json();
    list["suppressions"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|s| {
            let field = |f: &str| s[f].as_str().unwrap_or_default().to_owned();
            (field("address"), field("reason"), field("campaign"))
        })
        .collect()
}

fn one_click(port: u16, token: &str) -> http::Answer {
    http::request(
        "POST",
        port,
        &format!("/unsubscribe/{token}"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        "List-Unsubscribe=One-Click",
    )
}

#[test]
fn unsubscribing_once_suppresses_the_address_for_every_campaign_and_forgeries_change_nothing() {
    let workspace = workspace(&SigningKey::from_slice(&[7; 32]).unwrap());
    let (child, port) = watch(&workspace);

    // Through the page: GET shows a form, naming the campaign and not the address.
    let token = token_of(&workspace, &address(0));
    let page = http::get(port, &format!("/unsubscribe/{token}"));
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("<strong>welcome</strong>"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("<form method=\"post\">"),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains("user00"),
        "the page does not show the address"
    );
    let done = one_click(port, &token);
    assert_eq!(done.status, 200);
    assert!(done.body.contains("You are unsubscribed."), "{}", done.body);
    assert_eq!(one_click(port, &token).status, 200, "repeating is harmless");
    // A bare RFC 8058 POST, as a mail client sends it.
    assert_eq!(
        one_click(port, &token_of(&workspace, &address(1))).status,
        200
    );

    assert_forgeries_refused(&workspace, port);
    let welcome = "welcome".to_owned();
    let unsubscribed = "unsubscribed".to_owned();
    assert_eq!(
        suppressed(&workspace),
        [
            (address(0), unsubscribed.clone(), welcome.clone()),
            (address(1), unsubscribed, welcome)
        ]
    );
    let status = http::get(port, "/status").json();
    assert_eq!(status["campaigns"][0]["unsubscribed"], 2);
    let metrics = http::get(port, "/metrics").body;
    assert!(
        metrics.contains("herald_recipients{campaign=\"welcome\",state=\"unsubscribed\"} 2"),
        "{metrics}"
    );

    // A second campaign on the same audience skips them.
    workspace.write(
        "campaigns/second.yaml",
        &harness::another_campaign("second", "customers.csv", 1000),
    );
    wait_until("the second campaign is sent", || {
        workspace.outbox("second").len() == RECIPIENTS - 2
    });
    std::thread::sleep(Duration::from_millis(300));
    let reached: Vec<String> = workspace
        .outbox("second")
        .iter()
        .map(|m| m.recipient().to_owned())
        .collect();
    assert_eq!(reached, (2..RECIPIENTS).map(address).collect::<Vec<_>>());
    child.interrupt();
    child.finish().code(0);
    // plan counts them as suppressed, by reason.
    let plan = workspace
        .run(["plan", "--campaign", "welcome", "-o", "json"])
        .code(0)
        .json();
    assert_eq!(plan["campaigns"][0]["audience"]["suppressed"], 2);
    assert_eq!(
        plan["campaigns"][0]["suppressed_by"],
        serde_json::json!([
            {"source": "campaigns/audiences/unsubscribed.csv", "recipients": 0},
            {"source": "state store (unsubscribed)", "recipients": 2}
        ])
    );

    assert_export_round_trips(&workspace);
}

/// Forged, truncated, altered tokens: 404, nothing recorded.
fn assert_forgeries_refused(workspace: &Workspace, port: u16) {
    let other = token_of(workspace, &address(2));
    let flipped = format!(
        "{}{}",
        &other[..31],
        if other.ends_with('0') { '1' } else { '0' }
    );
    for forged in [
        flipped.as_str(),
        &other[..31],
        &other.to_uppercase(),
        "00000000000000000000000000000000",
        "not-a-token",
    ] {
        let answer = one_click(port, forged);
        assert_eq!(answer.status, 404, "{forged}: {}", answer.body);
        assert_eq!(
            http::get(port, &format!("/unsubscribe/{forged}")).status,
            404
        );
    }
}

/// Exported, then used as a campaign's suppression list: the same people are skipped.
fn assert_export_round_trips(workspace: &Workspace) {
    let export = workspace.run(["suppressions", "export"]).code(0);
    assert!(
        export
            .stdout
            .starts_with("email,reason,campaign,at\nuser00@example.com,unsubscribed,welcome,"),
        "{}",
        export.stdout
    );
    workspace.write("campaigns/audiences/exported.csv", &export.stdout);
    for i in [0, 1] {
        workspace
            .run(["suppressions", "remove", &address(i)])
            .code(0)
            .stdout(&format!(
                "{}: no longer suppressed; campaigns may mail it again\n",
                address(i)
            ));
    }
    workspace.edit(
        "campaigns/welcome.yaml",
        "suppress: [audiences/unsubscribed.csv]",
        "suppress: [audiences/exported.csv]",
    );
    let plan = workspace
        .run(["plan", "--campaign", "welcome", "-o", "json"])
        .code(0)
        .json();
    assert_eq!(plan["campaigns"][0]["audience"]["suppressed"], 2);
    assert!(
        plan["campaigns"][0]["suppressed_by"][0]["source"]
            .as_str()
            .unwrap()
            .ends_with("audiences/exported.csv")
    );
}

/// A SendGrid Event Webhook request: timestamp and signature headers over `body`.
pub fn signed(key: &SigningKey, timestamp: u64, body: &str) -> Vec<(String, String)> {
    let mut message = timestamp.to_string().into_bytes();
    message.extend_from_slice(body.as_bytes());
    let signature: Signature = key.sign(&message);
    vec![
        (
            "X-Twilio-Email-Event-Webhook-Signature".to_owned(),
            base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes()),
        ),
        (
            "X-Twilio-Email-Event-Webhook-Timestamp".to_owned(),
            timestamp.to_string(),
        ),
    ]
}

pub fn post_events(port: u16, headers: &[(String, String)], body: &str) -> http::Answer {
    let mut all: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    all.push(("Content-Type", "application/json"));
    http::request("POST", port, "/events/sendgrid", &all, body)
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn sendgrid_events_are_verified_before_anything_is_recorded() {
    let key = SigningKey::from_slice(&[7; 32]).unwrap();
    let stranger = SigningKey::from_slice(&[9; 32]).unwrap();
    let workspace = workspace(&key);
    let (child, port) = watch(&workspace);
    let events = format!(
        r#"[{{"email":"{}","event":"bounce","type":"bounce","campaign":"welcome"}},
            {{"email":"{}","event":"delivered","campaign":"welcome"}},
            {{"email":"{}","event":"bounce","type":"blocked","campaign":"welcome"}}]"#,
        address(2),
        address(3),
        address(4)
    );
    let junk = "x".repeat(1_000_000);
    for (what, headers, body, expected) in [
        ("unsigned", Vec::new(), events.clone(), 401),
        (
            "a stranger's key",
            signed(&stranger, now(), &events),
            events.clone(),
            403,
        ),
        (
            "altered after signing",
            signed(&key, now(), &events),
            events.replace("bounce", "dropped"),
            403,
        ),
        (
            "stale",
            signed(&key, now() - 3600, &events),
            events.clone(),
            403,
        ),
        ("1 MB of junk", Vec::new(), junk.clone(), 401),
        (
            "1 MB of signed junk",
            signed(&key, now(), &junk),
            junk.clone(),
            400,
        ),
        (
            "malformed JSON",
            signed(&key, now(), "[{"),
            "[{".to_owned(),
            400,
        ),
    ] {
        let answer = post_events(port, &headers, &body);
        assert_eq!(answer.status, expected, "{what}: {}", answer.body);
        assert_eq!(suppressed(&workspace), [], "{what}: nothing recorded");
    }

    let answer = post_events(port, &signed(&key, now(), &events), &events);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let complaint = format!(
        r#"[{{"email":"{}","event":"spamreport","campaign":"welcome"}}]"#,
        address(5)
    );
    assert_eq!(
        post_events(port, &signed(&key, now(), &complaint), &complaint).status,
        200
    );
    // Delivered and blocked suppress nobody.
    assert_eq!(
        suppressed(&workspace),
        [
            (address(2), "bounced".to_owned(), "welcome".to_owned()),
            (address(5), "complained".to_owned(), "welcome".to_owned()),
        ]
    );
    let status = workspace.run(["status", "-o", "json"]).code(0).json();
    assert_eq!(status["campaigns"][0]["bounced"], 1);
    assert_eq!(status["campaigns"][0]["complained"], 1);
    child.interrupt();
    child.finish().code(0);
}

/// A Mailgun webhook about `address`, signed with `key` at `timestamp` with `token`.
pub fn mailgun_webhook(
    key: &str,
    timestamp: u64,
    token: &str,
    event: &str,
    address: &str,
) -> String {
    use hmac::Mac as _;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(format!("{timestamp}{token}").as_bytes());
    let signature = mac
        .finalize()
        .into_bytes()
        .iter()
        .fold(String::new(), |mut hex, b| {
            use std::fmt::Write as _;
            let _ = write!(hex, "{b:02x}");
            hex
        });
    serde_json::json!({
        "signature": {"timestamp": timestamp.to_string(), "token": token, "signature": signature},
        "event-data": {
            "event": event.split(':').next().unwrap(),
            "severity": event.split(':').nth(1).unwrap_or(""),
            "recipient": address,
            "user-variables": {"herald-campaign": "welcome"}
        }
    })
    .to_string()
}

pub fn post_mailgun(port: u16, body: &str) -> http::Answer {
    http::request(
        "POST",
        port,
        "/events/mailgun",
        &[("Content-Type", "application/json")],
        body,
    )
}

#[test]
fn mailgun_webhooks_are_verified_and_taken_once() {
    let workspace = workspace(&SigningKey::from_slice(&[7; 32]).unwrap());
    let (child, port) = watch(&workspace);
    let bounce = |key: &str, at: u64, token: &str| {
        mailgun_webhook(key, at, token, "failed:permanent", &address(1))
    };
    let valid = bounce(MAILGUN_SIGNING_KEY, now(), "token-a-1f3e5d7c9b");
    let unsigned =
        serde_json::json!({"event-data": {"event": "complained", "recipient": address(1)}});
    for (what, body, expected) in [
        ("unsigned", unsigned.to_string(), 401),
        (
            "a stranger's key",
            bounce("another-signing-key-0000", now(), "token-b"),
            403,
        ),
        (
            "stale",
            bounce(MAILGUN_SIGNING_KEY, now() - 3600, "token-c"),
            403,
        ),
        (
            "altered after signing",
            valid.replace("token-a-1f3e5d7c9b", "token-a-1f3e5d7c9c"),
            403,
        ),
        ("malformed JSON", "{\"signature\":".to_owned(), 400),
    ] {
        let answer = post_mailgun(port, &body);
        assert_eq!(answer.status, expected, "{what}: {}", answer.body);
        assert_eq!(suppressed(&workspace), [], "{what}: nothing recorded");
    }
    assert_eq!(post_mailgun(port, &valid).status, 200);
    let replayed = post_mailgun(port, &valid);
    assert_eq!(replayed.status, 403, "a replay: {}", replayed.body);
    assert_eq!(replayed.body, "a token seen before\n");
    for (token, event, who) in [
        ("token-d", "failed:temporary", 2),
        ("token-e", "delivered", 3),
        ("token-f", "complained", 4),
        ("token-g", "unsubscribed", 5),
    ] {
        let body = mailgun_webhook(MAILGUN_SIGNING_KEY, now(), token, event, &address(who));
        assert_eq!(post_mailgun(port, &body).status, 200, "{event}");
    }
    // Temporary failures and deliveries suppress nobody.
    assert_eq!(
        suppressed(&workspace),
        [
            (address(1), "bounced".to_owned(), "welcome".to_owned()),
            (address(4), "complained".to_owned(), "welcome".to_owned()),
            (address(5), "unsubscribed".to_owned(), "welcome".to_owned()),
        ]
    );
    child.interrupt();
    child.finish().code(0);
}

/// The unsubscribe page as a recipient sees it: loaded in Chromium, the button clicked.
#[test]
fn the_unsubscribe_page_works_in_a_real_browser() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let workspace = workspace(&SigningKey::from_slice(&[7; 32]).unwrap());
    let (child, port) = watch(&workspace);
    let token = token_of(&workspace, &address(3));
    browser.open(&format!("http://127.0.0.1:{port}/unsubscribe/{token}"));
    assert_eq!(browser.title(), "Unsubscribe");
    assert_eq!(browser.text("button"), "Unsubscribe");
    browser.click("button");
    wait_until("the confirmation shows", || {
        browser.title() == "Unsubscribed"
    });
    assert_eq!(
        browser.text("[role=status]"),
        "You are unsubscribed. You will not receive these messages again."
    );
    assert_eq!(
        suppressed(&workspace),
        [(address(3), "unsubscribed".to_owned(), "welcome".to_owned())]
    );
    child.interrupt();
    child.finish().code(0);
}
