//! Amazon SES's notifications through SNS against a real `herald watch --listen`: the
//! subscription confirmation, bounce and complaint notifications as AWS documents them
//! (SES's examples, with the workspace's addresses and the `Message-ID` herald gave the
//! message), signed by a fake SNS whose certificate herald fetches over HTTPS; forged,
//! stale, replayed and strangers' messages refused; the suppression list after each.

use serde_json::{Value, json};

use crate::fake_sns::FakeSns;
use crate::feedback::{self, SES_TOPIC, address, events_key, suppressed, watch_env};
use crate::harness::Workspace;
use crate::http;

fn post(port: u16, message: &Value) -> http::Answer {
    // SNS posts its JSON as text/plain, with its message type in a header.
    http::request(
        "POST",
        port,
        "/events/ses",
        &[
            ("Content-Type", "text/plain; charset=UTF-8"),
            (
                "x-amz-sns-message-type",
                message["Type"].as_str().unwrap_or_default(),
            ),
        ],
        &message.to_string(),
    )
}

/// The `Message-ID` herald gave the message to `to` (from the outbox).
fn message_id(workspace: &Workspace, to: &str) -> String {
    let mails = workspace.outbox("welcome");
    let mail = mails.iter().find(|m| m.recipient() == to).unwrap();
    mail.raw
        .lines()
        .find_map(|l| l.strip_prefix("Message-ID: "))
        .unwrap()
        .trim()
        .to_owned()
}

/// SES's `mail` object, with the original headers passed on.
fn mail(to: &str, message_id: &str) -> Value {
    json!({
        "timestamp": "2016-01-27T14:59:38.237Z",
        "source": "news@example.com",
        "sourceArn": "arn:aws:ses:us-east-1:123456789012:identity/example.com",
        "sourceIp": "127.0.3.0",
        "sendingAccountId": "123456789012",
        "callerIdentity": "IAM_user_or_role_name",
        "messageId": "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa0680-000000",
        "destination": [to],
        "headersTruncated": false,
        "headers": [
            {"name": "From", "value": "Example <news@example.com>"},
            {"name": "To", "value": to},
            {"name": "Message-ID", "value": message_id},
            {"name": "Subject", "value": "Welcome"}
        ],
        "commonHeaders": {
            "from": ["Example <news@example.com>"],
            "to": [to],
            "messageId": message_id,
            "subject": "Welcome"
        }
    })
}

/// SES's bounce notification with a DSN, for `to`.
fn bounce(to: &str, message_id: &str, kind: &str) -> Value {
    json!({
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": kind,
            "reportingMTA": "dns; email.example.com",
            "bouncedRecipients": [{
                "emailAddress": to,
                "status": "5.1.1",
                "action": "failed",
                "diagnosticCode": format!("smtp; 550 5.1.1 <{to}>... User")
            }],
            "bounceSubType": "General",
            "timestamp": "2016-01-27T14:59:38.237Z",
            "feedbackId": "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa068a-000000",
            "remoteMtaIp": "127.0.2.0"
        },
        "mail": mail(to, message_id)
    })
}

/// SES's complaint notification with a feedback report, for `to`.
fn complaint(to: &str, message_id: &str, feedback: &str) -> Value {
    json!({
        "notificationType": "Complaint",
        "complaint": {
            "userAgent": "AnyCompany Feedback Loop (V0.01)",
            "complainedRecipients": [{"emailAddress": to}],
            "complaintFeedbackType": feedback,
            "arrivalDate": "2016-01-27T14:59:38.237Z",
            "timestamp": "2016-01-27T14:59:38.237Z",
            "feedbackId": "000001378603177f-18c07c78-fa81-4a58-9dd1-fedc3cb8f49a-000000"
        },
        "mail": mail(to, message_id)
    })
}

fn entry(i: usize, reason: &str) -> (String, String, String) {
    (address(i), reason.to_owned(), "welcome".to_owned())
}

#[test]
fn ses_notifications_through_sns_are_verified_and_only_permanent_ones_suppress() {
    let sns = FakeSns::start();
    let workspace = feedback::workspace(&events_key());
    let env = sns.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (child, port) = watch_env(&workspace, &env);

    // The subscription: confirmed for the configured topic, and for no other.
    let stranger = "arn:aws:sns:us-east-1:999999999999:someone-else";
    let answer = post(port, &sns.confirmation(stranger, "token-of-a-stranger"));
    assert_eq!(answer.status, 403, "{}", answer.body);
    assert_eq!(
        answer.body,
        format!("topic `{stranger}` is not one an smtp transport names in events.topic_arn\n")
    );
    assert_eq!(sns.log().requests, Vec::<String>::new(), "nothing fetched");
    let answer = post(port, &sns.confirmation(SES_TOPIC, "2336412f37fb687f5d51"));
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (200, "subscription confirmed\n")
    );
    assert_eq!(sns.log().confirmed, ["2336412f37fb687f5d51"]);

    let id = |i: usize| message_id(&workspace, &address(i));
    let permanent = sns.notification(SES_TOPIC, &bounce(&address(1), &id(1), "Permanent"), 1, 0);
    assert_forgeries_refused(&sns, port, &permanent, &workspace);

    assert_eq!(post(port, &permanent).status, 200, "SignatureVersion 1");
    assert_eq!(suppressed(&workspace), [entry(1, "bounced")]);
    let replayed = post(port, &permanent);
    assert_eq!(
        (replayed.status, replayed.body.as_str()),
        (403, "a message seen before\n")
    );

    // Transient and undetermined bounces suppress nobody.
    for kind in ["Transient", "Undetermined"] {
        let notification = sns.notification(SES_TOPIC, &bounce(&address(2), &id(2), kind), 2, 0);
        assert_eq!(post(port, &notification).status, 200, "{kind}");
    }
    assert_eq!(suppressed(&workspace), [entry(1, "bounced")]);

    let abuse = sns.notification(SES_TOPIC, &complaint(&address(3), &id(3), "abuse"), 2, 0);
    assert_eq!(post(port, &abuse).status, 200, "SignatureVersion 2");
    let not_spam = sns.notification(SES_TOPIC, &complaint(&address(4), &id(4), "not-spam"), 2, 0);
    assert_eq!(post(port, &not_spam).status, 200);
    assert_eq!(
        suppressed(&workspace),
        [entry(1, "bounced"), entry(3, "complained")]
    );
    assert_eq!(
        sns.log().certificate_fetches,
        1,
        "the certificate is fetched once and kept"
    );
    let status = workspace.run(["status", "-o", "json"]).code(0).json();
    assert_eq!(status["campaigns"][0]["bounced"], 1);
    assert_eq!(status["campaigns"][0]["complained"], 1);
    child.interrupt();
    child.finish().code(0);
}

/// Each a 401 or 403, nothing recorded, nothing fetched from anywhere but the test host.
fn assert_forgeries_refused(sns: &FakeSns, port: u16, valid: &Value, workspace: &Workspace) {
    let mut altered = valid.clone();
    altered["Message"] = valid["Message"]
        .as_str()
        .unwrap()
        .replace(&address(1), &address(5))
        .into();
    let mut unsigned = valid.clone();
    unsigned.as_object_mut().unwrap().remove("Signature");
    let mut elsewhere = valid.clone();
    elsewhere["SigningCertURL"] =
        "https://sns.us-east-1.amazonaws.com.evil.example/SimpleNotificationService-1.pem".into();
    let mut plain_http = valid.clone();
    plain_http["SigningCertURL"] = sns.certificate_url().replace("https:", "http:").into();
    let mut other_topic = valid.clone();
    other_topic["TopicArn"] = "arn:aws:sns:us-east-1:123456789012:other".into();
    sns.sign(&mut other_topic);
    let stale = sns.notification(
        SES_TOPIC,
        &serde_json::from_str(valid["Message"].as_str().unwrap()).unwrap(),
        2,
        2 * 3600,
    );
    let mut unknown_version = valid.clone();
    unknown_version["SignatureVersion"] = "3".into();
    for (what, message, status, body) in [
        ("unsigned", unsigned, 401, "unsigned\n".to_owned()),
        (
            "altered after signing",
            altered,
            403,
            "not signed by the certificate it names\n".to_owned(),
        ),
        (
            "a certificate elsewhere",
            elsewhere,
            403,
            "`https://sns.us-east-1.amazonaws.com.evil.example/SimpleNotificationService-1.pem` is not on an SNS host (sns.<region>.amazonaws.com)\n".to_owned(),
        ),
        (
            "a certificate over plain http",
            plain_http,
            403,
            format!("`{}` is not an https URL\n", sns.certificate_url().replace("https:", "http:")),
        ),
        (
            "another topic, signed",
            other_topic,
            403,
            "topic `arn:aws:sns:us-east-1:123456789012:other` is not one an smtp transport names in events.topic_arn\n".to_owned(),
        ),
        ("sent two hours ago", stale, 403, "a stale timestamp\n".to_owned()),
        (
            "an unknown signature version",
            unknown_version,
            403,
            "a signature version SNS does not use\n".to_owned(),
        ),
    ] {
        let answer = post(port, &message);
        assert_eq!((answer.status, answer.body), (status, body), "{what}");
        assert_eq!(suppressed(workspace), [], "{what}: nothing recorded");
    }
    assert_eq!(post(port, &json!({"Type": "Notification"})).status, 401);
    assert_eq!(
        http::request("POST", port, "/events/ses", &[], "{").status,
        400
    );
    assert!(
        sns.log()
            .requests
            .iter()
            .all(|r| r.starts_with("GET /SimpleNotificationService-")
                || r.contains("ConfirmSubscription")),
        "{:?}",
        sns.log().requests
    );
}

/// The test-only trust cannot be widened past this machine: any other host is refused
/// before anything is sent or served.
#[test]
fn test_only_sns_trust_reaches_no_further_than_this_machine() {
    let workspace = feedback::workspace(&events_key());
    let ca = crate::tls::TestCa::new();
    let ca = ca.ca.display().to_string();
    for host in [
        "sns.us-east-1.amazonaws.com:443",
        "10.0.0.1:443",
        "example.com:443",
    ] {
        let run = workspace.run_env(
            ["watch", "--listen", "127.0.0.1:0"],
            &[
                ("HERALD_TEST_ONLY_SNS_HOST", host),
                ("HERALD_TEST_ONLY_SNS_CA", &ca),
            ],
        );
        run.code(2).stderr(&format!(
            "error: `HERALD_TEST_ONLY_SNS_HOST` is `{host}`: for tests only, it takes a loopback address and port (`127.0.0.1:PORT`), never another host; nothing was sent\n"
        ));
    }
    workspace
        .run_env(
            ["watch", "--listen", "127.0.0.1:0"],
            &[("HERALD_TEST_ONLY_SNS_HOST", "127.0.0.1:8443")],
        )
        .code(2)
        .stderr(
            "error: `HERALD_TEST_ONLY_SNS_HOST` and `HERALD_TEST_ONLY_SNS_CA` go together, for tests only: set both or neither; nothing was sent\n",
        );
    assert!(workspace.outbox("welcome").is_empty(), "nothing was sent");
}
