//! Mailgun's webhooks: one JSON event per request, with a `signature` object whose
//! `signature` is the hex HMAC-SHA256 of `timestamp` followed by `token`, keyed by the
//! HTTP webhook signing key.
//!
//! Mailgun signs the timestamp and the token, not the event: a captured request could be
//! posted again with other event data under the same signature. The token is what stops
//! that, so each is taken once: it is kept in the store (with the request's events, in
//! the same write) until the timestamp is stale anyway, and a token seen before is
//! refused, across restarts.
//!
//! # Guarantees
//! - Unsigned requests get 401; a signature that is not by a key a `mailgun` transport
//!   names in `events.signing_key_env` (compared in constant time), a timestamp more than
//!   10 minutes off, or a token seen before, 403.
//! - `failed` with `severity: permanent` becomes `bounced`, `complained` `complained`,
//!   `unsubscribed` `unsubscribed`; nothing else suppresses anyone.
//! - A request whose events cannot be recorded leaves no token behind, so Mailgun's retry
//!   of it is taken.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::{MAX_SKEW_SECONDS, Token, fresh, record, refuse, suppression, turn};
use crate::manifest::TransportKind;
use crate::serve::Service;
use crate::store::Suppression;

/// `POST /events/mailgun`: one Mailgun webhook, verified, then recorded with its token.
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
    let at = match verify(&keys, timestamp, token, signed) {
        Ok(at) => at,
        Err(refusal) => return refuse(refusal),
    };
    let found = event(&webhook["event-data"]).into_iter().collect();
    let token = Token {
        key: format!("mailgun:{token}"),
        until: at + MAX_SKEW_SECONDS,
        seen: "a token seen before",
    };
    let _turn = turn().await;
    record(&service, Some(token), found, "Mailgun").await
}

/// Checks Mailgun's signature: HMAC-SHA256, keyed by the webhook signing key, over the
/// timestamp followed by the token, in hex; answers when it was signed.
fn verify(
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

/// What one Mailgun event means for the suppression list, if anything.
fn event(event: &Value) -> Option<(String, Suppression)> {
    let reason = match event["event"].as_str()? {
        "failed" if event["severity"].as_str() == Some("permanent") => "bounced",
        "complained" => "complained",
        "unsubscribed" => "unsubscribed",
        _ => return None,
    };
    let campaign = event["user-variables"]["herald-campaign"].as_str();
    suppression(event["recipient"].as_str()?, reason, campaign)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_permanent_failures_complaints_and_unsubscribes_suppress() {
        let reason =
            |json: &str| event(&serde_json::from_str(json).unwrap()).map(|(_, s)| s.reason);
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
        let (address, suppression) =
            event(&serde_json::from_str(&format!("{e}\"event\":\"complained\"}}")).unwrap())
                .unwrap();
        assert_eq!(address, "ann@example.com");
        assert_eq!(suppression.campaign.as_deref(), Some("launch"));
    }
}
