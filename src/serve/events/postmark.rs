//! Postmark's webhooks: one JSON record per request (`RecordType` `Bounce`,
//! `SpamComplaint`, `SubscriptionChange`, and others herald does not need), authenticated
//! with HTTP basic auth credentials written into the webhook URL
//! (`https://USER:PASSWORD@mail.example.com/events/postmark`).
//!
//! Postmark signs nothing: the credentials are the whole of its authentication. A request
//! posted again is the same record again, and suppressing an address twice changes
//! nothing (the first reason stays), so there is nothing more to refuse.
//!
//! # Guarantees
//! - A request without basic auth credentials gets 401 (with the challenge HTTP clients
//!   wait for); credentials that are not those a `postmark` transport names in
//!   `events.username_env` and `events.password_env` get 403. Both parts are compared in
//!   constant time, through their SHA-256 digests, so neither their contents nor their
//!   lengths show in how long the answer takes.
//! - `Bounce` records of the types Postmark documents as permanent (`HardBounce`,
//!   `BadEmailAddress`, `ManuallyDeactivated`) become `bounced`, and one of type
//!   `SpamComplaint` `complained`, as does a `SpamComplaint` record; soft bounces, delays
//!   and the rest suppress nobody. `SubscriptionChange` with `SuppressSending:
//!   true` becomes `bounced`, `complained` or `unsubscribed` after its `SuppressionReason`
//!   (a recipient's unsubscribe is a `ManualSuppression`); a reactivation
//!   (`SuppressSending: false`) takes nobody off herald's list, which changes only by hand.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use super::{record, refuse, suppression, turn};
use crate::serve::Service;
use crate::store::Suppression;

/// Bounce types Postmark documents as permanent: the address cannot be mailed again.
const PERMANENT: [&str; 3] = ["HardBounce", "BadEmailAddress", "ManuallyDeactivated"];

/// `POST /events/postmark`: one Postmark webhook, authenticated, then recorded.
pub async fn postmark(State(service): State<Service>, headers: HeaderMap, body: Bytes) -> Response {
    let Some((user, password)) = credentials(&headers) else {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"herald\"")],
            "no credentials\n",
        )
            .into_response();
    };
    let allowed = service.directory.postmark_credentials();
    if !authenticated(&allowed, &user, &password) {
        return refuse(
            "not the credentials a postmark transport names in events.username_env and events.password_env",
        );
    }
    let Ok(webhook) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "not a JSON webhook\n").into_response();
    };
    let found = record_of(&webhook).into_iter().collect();
    let _turn = turn().await;
    record(&service, None, found, "Postmark").await
}

/// The user name and password of an `Authorization: Basic` header.
fn credentials(headers: &HeaderMap) -> Option<(Vec<u8>, Vec<u8>)> {
    use base64::Engine as _;
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let colon = decoded.iter().position(|b| *b == b':')?;
    Some((decoded[..colon].to_vec(), decoded[colon + 1..].to_vec()))
}

/// Whether `user` and `password` are one of the pairs `allowed` names (environment
/// variables), every pair compared whole and in constant time.
fn authenticated(allowed: &[(String, String)], user: &[u8], password: &[u8]) -> bool {
    let digest = |bytes: &[u8]| Sha256::digest(bytes);
    let (user, password) = (digest(user), digest(password));
    let mut matched = subtle::Choice::from(0);
    for (user_env, password_env) in allowed {
        let (Some(expected_user), Some(expected_password)) = (
            crate::secret::from_env(user_env),
            crate::secret::from_env(password_env),
        ) else {
            tracing::warn!(%user_env, %password_env, "the Postmark webhook credential variables are not set");
            continue;
        };
        let user_matches = digest(expected_user.expose().as_bytes()).ct_eq(&user);
        let password_matches = digest(expected_password.expose().as_bytes()).ct_eq(&password);
        matched |= user_matches & password_matches;
    }
    matched.into()
}

/// What one Postmark record means for the suppression list, if anything.
fn record_of(webhook: &Value) -> Option<(String, Suppression)> {
    let campaign = webhook["Metadata"]["campaign"].as_str();
    match webhook["RecordType"].as_str()? {
        "Bounce" => {
            let kind = webhook["Type"].as_str()?;
            let reason = if PERMANENT.contains(&kind) {
                "bounced"
            } else if kind == "SpamComplaint" {
                "complained"
            } else {
                return None;
            };
            suppression(webhook["Email"].as_str()?, reason, campaign)
        }
        "SpamComplaint" => suppression(webhook["Email"].as_str()?, "complained", campaign),
        "SubscriptionChange" if webhook["SuppressSending"].as_bool() == Some(true) => {
            let reason = match webhook["SuppressionReason"].as_str() {
                Some("HardBounce") => "bounced",
                Some("SpamComplaint") => "complained",
                _ => "unsubscribed",
            };
            suppression(webhook["Recipient"].as_str()?, reason, campaign)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(json: &str) -> Option<String> {
        record_of(&serde_json::from_str(json).unwrap()).map(|(_, s)| s.reason)
    }

    #[test]
    fn only_permanent_bounces_complaints_and_suppressions_suppress() {
        let bounce = |kind: &str| {
            reason(&format!(
                r#"{{"RecordType":"Bounce","Type":"{kind}","Email":"Ann@Example.com","Metadata":{{"campaign":"launch"}}}}"#
            ))
        };
        for kind in PERMANENT {
            assert_eq!(bounce(kind).as_deref(), Some("bounced"), "{kind}");
        }
        assert_eq!(bounce("SpamComplaint").as_deref(), Some("complained"));
        for soft in [
            "Transient",
            "SoftBounce",
            "DnsError",
            "AutoResponder",
            "Blocked",
            "Unknown",
            "DMARCPolicy",
        ] {
            assert_eq!(bounce(soft), None, "{soft}");
        }
        assert_eq!(
            reason(
                r#"{"RecordType":"SpamComplaint","Type":"SpamComplaint","Email":"ann@example.com"}"#
            )
            .as_deref(),
            Some("complained")
        );
        let change = |suppress: bool, why: &str| {
            reason(&format!(
                r#"{{"RecordType":"SubscriptionChange","Recipient":"ann@example.com","SuppressSending":{suppress},"SuppressionReason":{why}}}"#
            ))
        };
        assert_eq!(change(true, "\"HardBounce\"").as_deref(), Some("bounced"));
        assert_eq!(
            change(true, "\"SpamComplaint\"").as_deref(),
            Some("complained")
        );
        assert_eq!(
            change(true, "\"ManualSuppression\"").as_deref(),
            Some("unsubscribed")
        );
        assert_eq!(change(false, "null"), None, "a reactivation");
        for other in ["Delivery", "Open", "Click"] {
            assert_eq!(
                reason(&format!(
                    r#"{{"RecordType":"{other}","Recipient":"ann@example.com","Email":"ann@example.com"}}"#
                )),
                None
            );
        }
        let (address, suppression) = record_of(
            &serde_json::from_str(
                r#"{"RecordType":"Bounce","Type":"HardBounce","Email":"Ann@Example.com","Metadata":{"campaign":"launch","recipient":"00"}}"#,
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(address, "ann@example.com");
        assert_eq!(suppression.campaign.as_deref(), Some("launch"));
    }

    #[test]
    fn credentials_come_from_basic_auth_and_must_match_whole() {
        use base64::Engine as _;
        let mut headers = HeaderMap::new();
        let encoded = base64::engine::general_purpose::STANDARD.encode("hooks:pa:ss");
        headers.insert(
            header::AUTHORIZATION,
            format!("Basic {encoded}").parse().unwrap(),
        );
        assert_eq!(
            credentials(&headers),
            Some((b"hooks".to_vec(), b"pa:ss".to_vec()))
        );
        headers.insert(header::AUTHORIZATION, "Bearer x".parse().unwrap());
        assert_eq!(credentials(&headers), None);
        let allowed = [(
            "HERALD_UNIT_POSTMARK_USER".to_owned(),
            "HERALD_UNIT_POSTMARK_PASSWORD".to_owned(),
        )];
        assert!(!authenticated(&allowed, b"hooks", b"pa:ss"), "unset");
    }
}
