//! Amazon SES's bounce and complaint notifications, as SNS posts them to an HTTP(S)
//! subscription: each message verified (see `sns` and `certificates`), the subscription
//! confirmed for the configured topic only, and each notification's SES content read.
//!
//! SES is sent through an `smtp` transport; the SNS topic its feedback goes to is that
//! transport's `events.topic_arn`. The campaign comes from the `Message-ID` herald gave the
//! message (`<campaign.rN.hash@domain>`), which SES passes on in the notification's
//! `mail.commonHeaders` when the identity's notifications include the original headers;
//! without them the suppression names no campaign.
//!
//! # Guarantees
//! - An unsigned message gets 401; one from a topic no `smtp` transport names, whose
//!   certificate URL breaks the host rule, whose signature does not verify, or sent more
//!   than an hour ago (the longest SNS keeps retrying), 403. A message id seen before is
//!   refused (403) too: SNS signs the whole message, so a replay could only repeat what
//!   was recorded, and is refused all the same, across restarts.
//! - A `SubscriptionConfirmation` is confirmed (its `SubscribeURL` fetched, under the same
//!   host rule) only when its topic is a configured one.
//! - `Bounce` with `bounceType: Permanent` suppresses its bounced recipients as `bounced`;
//!   `Complaint` its complained recipients as `complained` (unless the feedback type is
//!   `not-spam`); transient and undetermined bounces, deliveries and the rest suppress
//!   nobody.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::certificates::Unusable;
use super::sns::{Kind, Malformed, Message};
use super::{Found, Token, record, refuse, suppression, turn};
use crate::serve::Service;

/// How old a message may be: SNS retries a delivery for at most an hour.
const MAX_AGE_SECONDS: u64 = 3600;

/// `POST /events/ses`: one SNS message, verified, then confirmed or recorded.
pub async fn ses(State(service): State<Service>, body: Bytes) -> Response {
    let message = match Message::parse(&body) {
        Ok(message) => message,
        Err(Malformed::Unsigned) => {
            return (StatusCode::UNAUTHORIZED, "unsigned\n").into_response();
        }
        Err(Malformed::Invalid(why)) => {
            return (StatusCode::BAD_REQUEST, format!("{why}\n")).into_response();
        }
    };
    if !service.directory.ses_topics().contains(&message.topic_arn) {
        return refuse(&format!(
            "topic `{}` is not one an smtp transport names in events.topic_arn",
            message.topic_arn
        ));
    }
    let key = match service.certificates.key(&message.signing_cert_url).await {
        Ok(key) => key,
        Err(unusable) => return unusable_answer(&unusable),
    };
    if let Err(refusal) = message.verify(&key) {
        return refuse(refusal);
    }
    let Some(sent) = message.sent() else {
        return refuse("a timestamp that is not one");
    };
    if crate::store::now().abs_diff(sent) > MAX_AGE_SECONDS {
        return refuse("a stale timestamp");
    }
    match message.kind {
        Kind::SubscriptionConfirmation => {
            let url = message.subscribe_url.as_deref().unwrap_or_default();
            match service.certificates.confirm(url).await {
                Ok(()) => {
                    tracing::info!(topic = %message.topic_arn, "confirmed the SNS subscription");
                    (StatusCode::OK, "subscription confirmed\n").into_response()
                }
                Err(unusable) => unusable_answer(&unusable),
            }
        }
        Kind::UnsubscribeConfirmation => {
            tracing::warn!(topic = %message.topic_arn, "SNS says this endpoint was unsubscribed");
            (StatusCode::OK, "ok\n").into_response()
        }
        Kind::Notification => {
            let found = notification(&message.text);
            let token = Token {
                key: format!("sns:{}", message.id),
                until: sent + MAX_AGE_SECONDS,
                seen: "a message seen before",
            };
            let _turn = turn().await;
            record(&service, Some(token), found, "SES").await
        }
    }
}

fn unusable_answer(unusable: &Unusable) -> Response {
    match unusable {
        Unusable::Refused(why) => refuse(why),
        Unusable::Unavailable(why) => {
            tracing::warn!(%why, "cannot reach SNS");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot reach SNS now: {why}\n"),
            )
                .into_response()
        }
    }
}

/// What one SES notification (an SNS notification's `Message`) means for the suppression
/// list. Identity notifications name their type in `notificationType`, event publishing
/// in `eventType`; anything that is not SES's JSON suppresses nobody.
fn notification(text: &str) -> Found {
    let Ok(content) = serde_json::from_str::<Value>(text) else {
        tracing::warn!("an SNS notification that is not an SES one");
        return Found::new();
    };
    let kind = content["notificationType"]
        .as_str()
        .or_else(|| content["eventType"].as_str());
    let campaign = campaign(&content["mail"]);
    let (recipients, reason) = match kind {
        Some("Bounce") if content["bounce"]["bounceType"].as_str() == Some("Permanent") => {
            (&content["bounce"]["bouncedRecipients"], "bounced")
        }
        Some("Complaint")
            if content["complaint"]["complaintFeedbackType"].as_str() != Some("not-spam") =>
        {
            (&content["complaint"]["complainedRecipients"], "complained")
        }
        _ => return Found::new(),
    };
    recipients
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|r| suppression(r["emailAddress"].as_str()?, reason, campaign.as_deref()))
        .collect()
}

/// The campaign in the original `Message-ID`, when SES passed the headers on.
fn campaign(mail: &Value) -> Option<String> {
    let from_headers = || {
        mail["headers"].as_array()?.iter().find_map(|h| {
            h["name"]
                .as_str()
                .filter(|n| n.eq_ignore_ascii_case("message-id"))
                .and(h["value"].as_str())
        })
    };
    let id = mail["commonHeaders"]["messageId"]
        .as_str()
        .or_else(from_headers)?;
    crate::transport::campaign_of(id).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounce(kind: &str) -> String {
        serde_json::json!({
            "notificationType": "Bounce",
            "bounce": {
                "bounceType": kind,
                "bounceSubType": "General",
                "bouncedRecipients": [
                    {"emailAddress": "Jane@Example.com", "status": "5.1.1", "action": "failed"},
                    {"emailAddress": "richard@example.com", "status": "5.1.1", "action": "failed"}
                ],
                "timestamp": "2016-01-27T14:59:38.237Z",
                "feedbackId": "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa068a-000000"
            },
            "mail": {
                "timestamp": "2016-01-27T14:59:38.237Z",
                "messageId": "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa0680-000000",
                "source": "john@example.com",
                "destination": ["jane@example.com"],
                "headersTruncated": false,
                "headers": [{"name": "Message-ID", "value": "<launch.r1.0011223344556677@example.com>"}],
                "commonHeaders": {"messageId": "<launch.r1.0011223344556677@example.com>"}
            }
        })
        .to_string()
    }

    #[test]
    fn permanent_bounces_and_complaints_suppress_with_their_campaign() {
        let found = notification(&bounce("Permanent"));
        let reasons: Vec<_> = found
            .iter()
            .map(|(a, s)| (a.as_str(), s.reason.as_str(), s.campaign.as_deref()))
            .collect();
        assert_eq!(
            reasons,
            [
                ("jane@example.com", "bounced", Some("launch")),
                ("richard@example.com", "bounced", Some("launch"))
            ]
        );
        assert!(notification(&bounce("Transient")).is_empty());
        assert!(notification(&bounce("Undetermined")).is_empty());
        let complaint = |feedback: &str| {
            serde_json::json!({
                "eventType": "Complaint",
                "complaint": {
                    "complainedRecipients": [{"emailAddress": "jane@example.com"}],
                    "complaintFeedbackType": feedback
                },
                "mail": {"messageId": "0000"}
            })
            .to_string()
        };
        let found = notification(&complaint("abuse"));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].1.reason, "complained");
        assert_eq!(found[0].1.campaign, None, "no original headers");
        assert!(notification(&complaint("not-spam")).is_empty());
        assert!(notification(r#"{"notificationType":"Delivery"}"#).is_empty());
        assert!(notification("plain text").is_empty());
    }
}
