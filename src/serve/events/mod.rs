//! What providers tell herald after it sent: SendGrid's Event Webhook and Mailgun's
//! webhooks. Bounces, complaints and unsubscribes end in the store's suppression list,
//! which every campaign sharing the store then skips.
//!
//! # Guarantees
//! - A request that is not signed by a key the manifests name, or whose timestamp is more
//!   than 10 minutes off, is refused (401 unsigned, 403 otherwise) and records nothing;
//!   so is malformed JSON (400). A Mailgun token seen before is a replay: refused, 403.
//!   Bodies over `MAX_BODY` are refused whole.
//! - Only bounces (not SendGrid's `blocked`, only Mailgun's permanent failures), drops,
//!   complaints and unsubscribes suppress anyone; `delivered`, `opened` and the rest never.
//! - An event is answered 2xx only once recorded; otherwise the provider sends it again.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::Service;
use crate::manifest::TransportKind;
use crate::store::Suppression;

/// The largest request body taken, in bytes.
pub const MAX_BODY: usize = 1024 * 1024;
/// How far an event's timestamp may be from now.
const MAX_SKEW_SECONDS: u64 = 600;
const SIGNATURE: &str = "x-twilio-email-event-webhook-signature";
const TIMESTAMP: &str = "x-twilio-email-event-webhook-timestamp";

/// Mailgun tokens seen within the last `MAX_SKEW_SECONDS`, by when they were signed: a
/// token older than that is refused as stale anyway, so nothing older is kept.
#[derive(Default)]
pub struct Replays(Mutex<HashMap<String, u64>>);

impl Replays {
    /// Whether `token` is new; it is remembered either way.
    fn first_use(&self, token: &str, signed: u64) -> bool {
        let mut seen = self.0.lock().expect("the replay lock");
        let now = crate::store::now();
        seen.retain(|_, at| now.abs_diff(*at) <= MAX_SKEW_SECONDS);
        seen.insert(token.to_owned(), signed).is_none()
    }

    /// Forgets `token`, whose event could not be recorded, so the provider's retry of the
    /// same signed request is taken.
    fn forget(&self, token: &str) {
        self.0.lock().expect("the replay lock").remove(token);
    }
}

/// `POST /events/sendgrid`: SendGrid's Event Webhook, verified, then recorded.
pub async fn sendgrid(State(service): State<Service>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(signature), Some(timestamp)) = (header(SIGNATURE), header(TIMESTAMP)) else {
        return (StatusCode::UNAUTHORIZED, "unsigned\n").into_response();
    };
    let keys = service.directory.event_keys(TransportKind::Sendgrid);
    if let Err(refusal) = verify_sendgrid(&keys, signature, timestamp, &body) {
        return (StatusCode::FORBIDDEN, format!("{refusal}\n")).into_response();
    }
    let Ok(events) = serde_json::from_slice::<Vec<Value>>(&body) else {
        return (StatusCode::BAD_REQUEST, "not a JSON array of events\n").into_response();
    };
    let found = events.iter().filter_map(sendgrid_event).collect();
    record(&service, found, "SendGrid").await
}

/// Checks SendGrid's signature: ECDSA P-256 with SHA-256 over the timestamp followed by the
/// raw body, base64 DER, against any of the keys (base64 DER public keys) in `keys`.
fn verify_sendgrid(
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
fn sendgrid_event(event: &Value) -> Option<(String, Suppression)> {
    let email = event["email"].as_str()?.trim();
    if !crate::address::is_valid(email) {
        return None;
    }
    let reason = match event["event"].as_str()? {
        "bounce" if event["type"].as_str() != Some("blocked") => "bounced",
        "dropped" => "bounced",
        "spamreport" => "complained",
        "unsubscribe" | "group_unsubscribe" => "unsubscribed",
        _ => return None,
    };
    let campaign = event["campaign"].as_str();
    Some((
        crate::audience::normalize(email),
        Suppression::new(reason, campaign),
    ))
}

/// `POST /events/mailgun`: one Mailgun webhook, verified, then recorded.
pub async fn mailgun(State(service): State<Service>, body: Bytes) -> Response {
    let Ok(webhook) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "not a JSON webhook\n").into_response();
    };
    let signature = &webhook["signature"];
    let (Some(timestamp), Some(token), Some(signed)) = (
        signature["timestamp"].as_str(),
        signature["token"].as_str(),
        signature["signature"].as_str(),
    ) else {
        return (StatusCode::UNAUTHORIZED, "unsigned\n").into_response();
    };
    let keys = service.directory.event_keys(TransportKind::Mailgun);
    let verified = verify_mailgun(&keys, timestamp, token, signed).and_then(|at| {
        if service.replays.first_use(token, at) {
            Ok(())
        } else {
            Err("a token seen before")
        }
    });
    if let Err(refusal) = verified {
        return (StatusCode::FORBIDDEN, format!("{refusal}\n")).into_response();
    }
    let found = mailgun_event(&webhook["event-data"]).into_iter().collect();
    let answer = record(&service, found, "Mailgun").await;
    if !answer.status().is_success() {
        service.replays.forget(token);
    }
    answer
}

/// Checks Mailgun's signature: HMAC-SHA256, keyed by the webhook signing key, over the
/// timestamp followed by the token, in hex; answers when it was signed.
fn verify_mailgun(
    keys: &[String],
    timestamp: &str,
    token: &str,
    signature: &str,
) -> Result<u64, &'static str> {
    use hmac::{Hmac, Mac as _};

    let sent = fresh(timestamp)?;
    let signature = crate::digest::unhex(signature).ok_or("a signature that is not one")?;
    let verified = keys.iter().any(|variable| {
        let Some(key) = crate::secret::from_env(variable) else {
            tracing::warn!(%variable, "the Mailgun signing key variable is not set");
            return false;
        };
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.expose().as_bytes())
            .expect("HMAC takes any key");
        mac.update(timestamp.as_bytes());
        mac.update(token.as_bytes());
        // Compared in constant time.
        mac.verify_slice(&signature).is_ok()
    });
    if verified {
        Ok(sent)
    } else {
        Err("not signed by a key a mailgun transport names in events.signing_key_env")
    }
}

/// When a request was signed (Unix seconds), if that is within `MAX_SKEW_SECONDS` of now.
fn fresh(timestamp: &str) -> Result<u64, &'static str> {
    let sent: u64 = timestamp
        .trim()
        .parse()
        .map_err(|_| "a timestamp that is not one")?;
    if crate::store::now().abs_diff(sent) > MAX_SKEW_SECONDS {
        return Err("a stale timestamp");
    }
    Ok(sent)
}

/// What one Mailgun event means for the suppression list, if anything.
fn mailgun_event(event: &Value) -> Option<(String, Suppression)> {
    let email = event["recipient"].as_str()?.trim();
    if !crate::address::is_valid(email) {
        return None;
    }
    let reason = match event["event"].as_str()? {
        "failed" if event["severity"].as_str() == Some("permanent") => "bounced",
        "complained" => "complained",
        "unsubscribed" => "unsubscribed",
        _ => return None,
    };
    let campaign = event["user-variables"]["herald-campaign"].as_str();
    Some((
        crate::audience::normalize(email),
        Suppression::new(reason, campaign),
    ))
}

/// Puts what the events found in the suppression list, and answers the provider: 200 once
/// recorded, 503 (so that it sends them again) when the store cannot take them now.
async fn record(service: &Service, found: Vec<(String, Suppression)>, provider: &str) -> Response {
    let store = service.store.clone();
    let recorded = tokio::task::spawn_blocking(move || {
        for (address, suppression) in &found {
            store.suppress(address, suppression)?;
        }
        Ok::<_, crate::store::StoreError>(())
    })
    .await;
    match recorded {
        Ok(Ok(())) => (StatusCode::OK, "ok\n").into_response(),
        Ok(Err(error)) => {
            tracing::error!(%error, provider, "cannot record provider events");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sendgrid_bounces_drops_complaints_and_unsubscribes_suppress() {
        let event = |json: &str| sendgrid_event(&serde_json::from_str(json).unwrap());
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

    #[test]
    fn only_mailgun_permanent_failures_complaints_and_unsubscribes_suppress() {
        let reason =
            |json: &str| mailgun_event(&serde_json::from_str(json).unwrap()).map(|(_, s)| s.reason);
        let e = r#"{"recipient":"Ann@Example.com","user-variables":{"herald-campaign":"launch"},"#;
        assert_eq!(
            reason(&format!(
                "{e}\"event\":\"failed\",\"severity\":\"permanent\"}}"
            ))
            .as_deref(),
            Some("bounced")
        );
        assert_eq!(
            reason(&format!(
                "{e}\"event\":\"failed\",\"severity\":\"temporary\"}}"
            )),
            None
        );
        assert_eq!(
            reason(&format!("{e}\"event\":\"complained\"}}")).as_deref(),
            Some("complained")
        );
        assert_eq!(
            reason(&format!("{e}\"event\":\"unsubscribed\"}}")).as_deref(),
            Some("unsubscribed")
        );
        for other in ["delivered", "opened", "clicked", "accepted", "stored"] {
            assert_eq!(
                reason(&format!("{e}\"event\":\"{other}\"}}")),
                None,
                "{other}"
            );
        }
        let (address, suppression) = mailgun_event(
            &serde_json::from_str(&format!("{e}\"event\":\"complained\"}}")).unwrap(),
        )
        .unwrap();
        assert_eq!(address, "ann@example.com");
        assert_eq!(suppression.campaign.as_deref(), Some("launch"));
    }
}
