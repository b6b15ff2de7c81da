//! Postmark's webhooks against a real `herald watch --listen`: the bounce, spam complaint
//! and subscription change records as Postmark's webhook documentation shows them (the
//! address and herald's `Metadata` put in), authenticated with the basic auth credentials
//! Postmark takes from the webhook URL; the suppression list after each.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::feedback::{
    self, POSTMARK_PASSWORD, POSTMARK_USER, address, events_key, suppressed, watch,
};
use crate::http;

fn post(port: u16, credentials: Option<(&str, &str)>, body: &str) -> http::Answer {
    let authorization = credentials.map(|(user, password)| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    });
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(authorization) = &authorization {
        headers.push(("Authorization", authorization));
    }
    http::request("POST", port, "/events/postmark", &headers, body)
}

/// Herald's `Metadata` on every Postmark message: the campaign, and the recipient hashed.
fn metadata() -> Value {
    json!({"campaign": "welcome", "recipient": "5f0c6e2d1b9a4c37"})
}

/// Postmark's Bounce webhook example, for `email`, of bounce type `kind`.
fn bounce(email: &str, kind: &str, code: u32) -> String {
    json!({
        "RecordType": "Bounce",
        "MessageStream": "broadcast",
        "ID": 4_323_372_036u64,
        "Type": kind,
        "TypeCode": code,
        "Name": "Hard bounce",
        "Tag": "Test",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Metadata": metadata(),
        "ServerID": 23,
        "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
        "Details": "Test bounce details",
        "Email": email,
        "From": "news@example.com",
        "BouncedAt": "2019-11-05T16:33:54.9070259Z",
        "DumpAvailable": true,
        "Inactive": true,
        "CanActivate": true,
        "Subject": "Welcome",
        "Content": "Return-Path:<>"
    })
    .to_string()
}

/// Postmark's `SpamComplaint` webhook example, for `email`.
fn spam_complaint(email: &str) -> String {
    json!({
        "RecordType": "SpamComplaint",
        "MessageStream": "broadcast",
        "ID": 42,
        "Type": "SpamComplaint",
        "TypeCode": 100_001,
        "Name": "Spam complaint",
        "Tag": "Test",
        "MessageID": "00000000-0000-0000-0000-000000000000",
        "Metadata": metadata(),
        "ServerID": 1234,
        "Description": "",
        "Details": "Test spam complaint details",
        "Email": email,
        "From": "news@example.com",
        "BouncedAt": "2019-11-05T16:33:54.9070259Z",
        "DumpAvailable": true,
        "Inactive": true,
        "CanActivate": false,
        "Subject": "Welcome",
        "Content": "<Abuse report dump>"
    })
    .to_string()
}

/// Postmark's `SubscriptionChange` webhook example, for `email`.
fn subscription_change(email: &str, suppress: bool, reason: Option<&str>) -> String {
    json!({
        "RecordType": "SubscriptionChange",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "ServerID": 123_456,
        "MessageStream": "broadcast",
        "ChangedAt": "2020-02-01T10:53:34.416071Z",
        "Recipient": email,
        "Origin": "Recipient",
        "SuppressSending": suppress,
        "SuppressionReason": reason,
        "Tag": "my-tag",
        "Metadata": if suppress { metadata() } else { json!({}) }
    })
    .to_string()
}

fn entry(i: usize, reason: &str) -> (String, String, String) {
    (address(i), reason.to_owned(), "welcome".to_owned())
}

#[test]
fn postmark_webhooks_are_authenticated_and_only_permanent_ones_suppress() {
    let workspace = feedback::workspace(&events_key());
    let (child, port) = watch(&workspace);
    let right = Some((POSTMARK_USER, POSTMARK_PASSWORD));
    let hard = bounce(&address(1), "HardBounce", 1);

    let unauthenticated = post(port, None, &hard);
    assert_eq!(unauthenticated.status, 401, "{}", unauthenticated.body);
    assert_eq!(
        unauthenticated.header("www-authenticate"),
        Some("Basic realm=\"herald\"")
    );
    for (what, credentials) in [
        (
            "a wrong password",
            (POSTMARK_USER, "pm-hook-password-9d2c40"),
        ),
        ("a wrong user", ("postmark-hook", POSTMARK_PASSWORD)),
        (
            "the password cut short",
            (POSTMARK_USER, "pm-hook-password"),
        ),
        ("empty", ("", "")),
    ] {
        let answer = post(port, Some(credentials), &hard);
        assert_eq!(answer.status, 403, "{what}: {}", answer.body);
        assert_eq!(
            answer.body,
            "not the credentials a postmark transport names in events.username_env and events.password_env\n"
        );
    }
    assert_eq!(post(port, right, "{\"RecordType\":").status, 400);
    assert_eq!(suppressed(&workspace), [], "nothing recorded yet");

    assert_eq!(post(port, right, &hard).status, 200);
    assert_eq!(suppressed(&workspace), [entry(1, "bounced")]);

    // Soft bounces and delays suppress nobody; an invalid address bounces for good.
    for (kind, code) in [("SoftBounce", 4096), ("Transient", 2), ("DnsError", 256)] {
        assert_eq!(
            post(port, right, &bounce(&address(2), kind, code)).status,
            200
        );
    }
    assert_eq!(suppressed(&workspace), [entry(1, "bounced")]);
    assert_eq!(
        post(
            port,
            right,
            &bounce(&address(2), "BadEmailAddress", 100_000)
        )
        .status,
        200
    );
    assert_eq!(
        suppressed(&workspace),
        [entry(1, "bounced"), entry(2, "bounced")]
    );

    assert_eq!(post(port, right, &spam_complaint(&address(3))).status, 200);
    assert_eq!(
        suppressed(&workspace),
        [
            entry(1, "bounced"),
            entry(2, "bounced"),
            entry(3, "complained")
        ]
    );

    // A recipient's unsubscribe reaches a broadcast stream as a manual suppression.
    let unsubscribed = subscription_change(&address(4), true, Some("ManualSuppression"));
    assert_eq!(post(port, right, &unsubscribed).status, 200);
    // A reactivation takes nobody off herald's list.
    let reactivated = subscription_change(&address(1), false, None);
    assert_eq!(post(port, right, &reactivated).status, 200);
    let after = [
        entry(1, "bounced"),
        entry(2, "bounced"),
        entry(3, "complained"),
        entry(4, "unsubscribed"),
    ];
    assert_eq!(suppressed(&workspace), after);

    // Postmark signs nothing: the same record posted again (as Postmark retries it) is the
    // same record, and changes nothing; so does a complaint about an address already
    // suppressed.
    assert_eq!(post(port, right, &hard).status, 200);
    assert_eq!(post(port, right, &spam_complaint(&address(1))).status, 200);
    assert_eq!(suppressed(&workspace), after);

    let status = workspace.run(["status", "-o", "json"]).code(0).json();
    assert_eq!(status["campaigns"][0]["bounced"], 2);
    assert_eq!(status["campaigns"][0]["complained"], 1);
    assert_eq!(status["campaigns"][0]["unsubscribed"], 1);
    child.interrupt();
    let run = child.finish().code(0);
    crate::harness::assert_nowhere(POSTMARK_PASSWORD, &workspace, &[&run]);
}
