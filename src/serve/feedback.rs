//! What recipients and providers tell herald after it sent: one-click unsubscribe
//! (RFC 8058) and the page behind the link, and SendGrid's Event Webhook. Each ends in
//! the store's suppression list, which every campaign sharing the store then skips.
//!
//! # Guarantees
//! - A token that is not a real token of a campaign watch follows (forged, truncated,
//!   of an address not in the audience) is a 404 and records nothing; a real one is
//!   checked in constant time. Repeating an unsubscribe is harmless.
//! - An event request that is not signed by a key the manifests name, or whose timestamp
//!   is more than 10 minutes off, is refused (401 unsigned, 403 otherwise) and records
//!   nothing; so is malformed JSON (400). Bodies over `MAX_BODY` are refused whole.
//! - `delivered`, `open` and every other event that is not a bounce, drop, complaint or
//!   unsubscribe never suppresses anyone.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};

use super::Service;
use super::directory::{Named, NotKeyed};
use crate::store::Suppression;

/// The largest request body taken, in bytes.
pub const MAX_BODY: usize = 1024 * 1024;
/// How far an event's timestamp may be from now.
const MAX_SKEW_SECONDS: u64 = 600;
const SIGNATURE: &str = "x-twilio-email-event-webhook-signature";
const TIMESTAMP: &str = "x-twilio-email-event-webhook-timestamp";

/// `GET /unsubscribe/{token}`: a page naming the campaign, with a button that confirms.
pub async fn unsubscribe_page(
    State(service): State<Service>,
    Path(token): Path<String>,
) -> Response {
    match find(&service, token).await {
        Ok(named) => Html(page(
            "Unsubscribe",
            &format!(
                "<p>Stop receiving <strong>{}</strong> and every other message sent from this \
                 list?</p>\n<form method=\"post\">\n<input type=\"hidden\" name=\"List-Unsubscribe\" \
                 value=\"One-Click\">\n<button type=\"submit\">Unsubscribe</button>\n</form>",
                escape(&named.campaign)
            ),
        ))
        .into_response(),
        Err(response) => response,
    }
}

/// `POST /unsubscribe/{token}`: RFC 8058 one-click, or the page's form.
pub async fn unsubscribe(State(service): State<Service>, Path(token): Path<String>) -> Response {
    let named = match find(&service, token).await {
        Ok(named) => named,
        Err(response) => return response,
    };
    let store = service.store.clone();
    let recorded = tokio::task::spawn_blocking(move || {
        let suppression = Suppression::new("unsubscribed", Some(&named.campaign));
        store.suppress(&named.address, &suppression)
    })
    .await;
    match recorded {
        Ok(Ok(_)) => Html(page(
            "Unsubscribed",
            "<p role=\"status\">You are unsubscribed. You will not receive these messages again.</p>",
        ))
        .into_response(),
        Ok(Err(error)) => {
            tracing::error!(%error, "cannot record an unsubscribe");
            (StatusCode::SERVICE_UNAVAILABLE, "cannot record this now; try again later\n").into_response()
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// The recipient behind `token`, or the response that says there is none.
async fn find(service: &Service, token: String) -> Result<Named, Response> {
    let directory = std::sync::Arc::clone(&service.directory);
    let found = tokio::task::spawn_blocking(move || directory.find(&token)).await;
    match found {
        Ok(Ok(Some(named))) => Ok(named),
        Ok(Ok(None)) => Err((
            StatusCode::NOT_FOUND,
            Html(page(
                "Link not recognised",
                "<p>This unsubscribe link is not one herald sent, or it was cut short.</p>",
            )),
        )
            .into_response()),
        Ok(Err(NotKeyed)) => Err((
            StatusCode::SERVICE_UNAVAILABLE,
            "unsubscribe is not available: HERALD_UNSUBSCRIBE_KEY is not set\n",
        )
            .into_response()),
        Err(_) => Err(StatusCode::INTERNAL_SERVER_ERROR.into_response()),
    }
}

/// `POST /events/sendgrid`: SendGrid's Event Webhook, verified, then recorded.
pub async fn sendgrid(State(service): State<Service>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(signature), Some(timestamp)) = (header(SIGNATURE), header(TIMESTAMP)) else {
        return (StatusCode::UNAUTHORIZED, "unsigned\n").into_response();
    };
    let keys = service.directory.sendgrid_keys();
    if let Err(refusal) = verify_sendgrid(&keys, signature, timestamp, &body) {
        return (StatusCode::FORBIDDEN, format!("{refusal}\n")).into_response();
    }
    let Ok(events) = serde_json::from_slice::<Vec<serde_json::Value>>(&body) else {
        return (StatusCode::BAD_REQUEST, "not a JSON array of events\n").into_response();
    };
    let store = service.store.clone();
    let recorded = tokio::task::spawn_blocking(move || {
        for event in &events {
            if let Some((address, suppression)) = sendgrid_event(event) {
                store.suppress(&address, &suppression)?;
            }
        }
        Ok::<_, crate::store::StoreError>(())
    })
    .await;
    match recorded {
        Ok(Ok(())) => (StatusCode::OK, "ok\n").into_response(),
        // Not recorded: SendGrid retries what is not answered with 2xx.
        Ok(Err(error)) => {
            tracing::error!(%error, "cannot record SendGrid events");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
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

    let sent: u64 = timestamp
        .trim()
        .parse()
        .map_err(|_| "a timestamp that is not one")?;
    if crate::store::now().abs_diff(sent) > MAX_SKEW_SECONDS {
        return Err("a stale timestamp");
    }
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
fn sendgrid_event(event: &serde_json::Value) -> Option<(String, Suppression)> {
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

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>body{{font-family:system-ui,sans-serif;max-width:32em;\
         margin:3em auto;padding:0 1em;line-height:1.5}}button{{font-size:1.1em;padding:.5em 1.2em}}</style>\n\
         </head>\n<body>\n<main>\n<h1>{title}</h1>\n{body}\n</main>\n</body>\n</html>\n"
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bounces_drops_complaints_and_unsubscribes_suppress() {
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
}
