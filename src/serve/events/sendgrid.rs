//! SendGrid's Event Webhook: a JSON array of up to 1,000 events per request, signed with
//! ECDSA P-256 over the timestamp header followed by the raw body.
//!
//! # Guarantees
//! - Unsigned requests get 401; a signature that is not by a key a `sendgrid` transport
//!   names in `events.public_key_env`, or a timestamp more than 10 minutes off, 403.
//! - `bounce` (but not `blocked`) and `dropped` become `bounced`, `spamreport`
//!   `complained`, `unsubscribe` and `group_unsubscribe` `unsubscribed`; nothing else
//!   suppresses anyone. A request's events are recorded in one write.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::borrow::Cow;

use super::{Found, fresh, record, refuse, suppression, turn};
use crate::manifest::TransportKind;
use crate::serve::Service;
use crate::store::Suppression;

const SIGNATURE: &str = "x-twilio-email-event-webhook-signature";
const TIMESTAMP: &str = "x-twilio-email-event-webhook-timestamp";

/// One event as SendGrid posts it: only the fields herald reads, borrowed from the body
/// where they can be, so that a request of 1,000 events costs little beyond its body.
#[derive(Deserialize)]
struct Event<'a> {
    #[serde(borrow, default)]
    email: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "event")]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "type")]
    kind: Option<Cow<'a, str>>,
    /// herald's custom argument on every message.
    #[serde(borrow, default)]
    campaign: Option<Cow<'a, str>>,
}

/// Why a request's events were not read.
enum Unread {
    Refused(&'static str),
    Malformed,
}

/// `POST /events/sendgrid`: SendGrid's Event Webhook, verified, then recorded.
pub async fn sendgrid(State(service): State<Service>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (Some(signature), Some(timestamp)) = (header(SIGNATURE), header(TIMESTAMP)) else {
        return (StatusCode::UNAUTHORIZED, "unsigned\n").into_response();
    };
    let keys = service.directory.event_keys(TransportKind::Sendgrid);
    let _turn = turn().await;
    // Checking the signature and reading a body of up to 1,000 events is work for a
    // blocking thread, as recording them is: the listener's workers answer meanwhile.
    let read = tokio::task::spawn_blocking(move || {
        verify(&keys, &signature, &timestamp, &body).map_err(Unread::Refused)?;
        let events: Vec<Event<'_>> =
            serde_json::from_slice(&body).map_err(|_| Unread::Malformed)?;
        Ok::<Found, Unread>(events.iter().filter_map(suppression_of).collect())
    })
    .await;
    match read {
        Ok(Ok(found)) => record(&service, None, found, "SendGrid").await,
        Ok(Err(Unread::Refused(refusal))) => refuse(refusal),
        Ok(Err(Unread::Malformed)) => {
            (StatusCode::BAD_REQUEST, "not a JSON array of events\n").into_response()
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// Checks SendGrid's signature: ECDSA P-256 with SHA-256 over the timestamp followed by the
/// raw body, base64 DER, against any of the keys (base64 DER public keys) in `keys`.
fn verify(
    keys: &[String],
    signature: &str,
    timestamp: &str,
    body: &[u8],
) -> Result<(), &'static str> {
    use base64::Engine as _;
    use p256::ecdsa::signature::Verifier as _;
    use p256::ecdsa::{Signature, VerifyingKey};
    use p256::pkcs8::DecodePublicKey as _;

    fresh(timestamp)?;
    let engine = base64::engine::general_purpose::STANDARD;
    let signature = engine
        .decode(signature.trim())
        .ok()
        .and_then(|der| Signature::from_der(&der).ok())
        .ok_or("a signature that is not one")?;
    let mut signed = timestamp.as_bytes().to_vec();
    signed.extend_from_slice(body);
    let verified = keys.iter().any(|variable| {
        let Some(key) = crate::secret::from_env(variable) else {
            tracing::warn!(%variable, "the SendGrid event key variable is not set");
            return false;
        };
        engine
            .decode(key.expose().trim())
            .ok()
            .and_then(|der| VerifyingKey::from_public_key_der(&der).ok())
            .is_some_and(|key| key.verify(&signed, &signature).is_ok())
    });
    if verified {
        Ok(())
    } else {
        Err("not signed by a key a sendgrid transport names in events.public_key_env")
    }
}

/// What one SendGrid event means for the suppression list, if anything.
fn suppression_of(event: &Event<'_>) -> Option<(String, Suppression)> {
    let reason = match event.name.as_deref()? {
        "bounce" if event.kind.as_deref() != Some("blocked") => "bounced",
        "dropped" => "bounced",
        "spamreport" => "complained",
        "unsubscribe" | "group_unsubscribe" => "unsubscribed",
        _ => return None,
    };
    suppression(event.email.as_deref()?, reason, event.campaign.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bounces_drops_complaints_and_unsubscribes_suppress() {
        let event = |json: &str| suppression_of(&serde_json::from_str(json).unwrap());
        let reason = |json: &str| event(json).map(|(_, s)| s.reason);
        let e = r#"{"email":"Ann@Example.com","campaign":"launch","#;
        assert_eq!(
            reason(&format!("{e}\"event\":\"bounce\",\"type\":\"bounce\"}}")).as_deref(),
            Some("bounced")
        );
        assert_eq!(
            reason(&format!("{e}\"event\":\"bounce\",\"type\":\"blocked\"}}")),
            None
        );
        assert_eq!(
            reason(&format!("{e}\"event\":\"dropped\"}}")).as_deref(),
            Some("bounced")
        );
        assert_eq!(
            reason(&format!("{e}\"event\":\"spamreport\"}}")).as_deref(),
            Some("complained")
        );
        assert_eq!(
            reason(&format!("{e}\"event\":\"group_unsubscribe\"}}")).as_deref(),
            Some("unsubscribed")
        );
        for other in ["delivered", "open", "click", "processed", "deferred"] {
            assert_eq!(
                reason(&format!("{e}\"event\":\"{other}\"}}")),
                None,
                "{other}"
            );
        }
        let (address, suppression) = event(&format!("{e}\"event\":\"spamreport\"}}")).unwrap();
        assert_eq!(address, "ann@example.com");
        assert_eq!(suppression.campaign.as_deref(), Some("launch"));
        assert_eq!(
            event(r#"{"email":"not an address","event":"bounce"}"#),
            None
        );
    }
}
