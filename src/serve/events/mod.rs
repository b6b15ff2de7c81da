//! What providers tell herald after it sent: SendGrid's Event Webhook, Mailgun's and
//! Postmark's webhooks, and Amazon SES's notifications through SNS. Bounces, complaints and
//! unsubscribes end in the store's suppression list, which every campaign sharing the
//! store then skips. One file per provider: how its requests are verified, and what each
//! event means.
//!
//! # Guarantees
//! - A request that is not verified as its provider documents is refused (401 when it
//!   carries no signature or credentials, 403 otherwise) and records nothing; so is
//!   malformed JSON (400). Bodies over `MAX_BODY` are refused whole.
//! - A signed request seen before is refused (403) across restarts: Mailgun's tokens and
//!   SNS's message ids are kept in the store for as long as the request would be fresh.
//! - Only bounces for good, complaints and unsubscribes suppress anyone; deliveries, opens,
//!   temporary failures and the rest never.
//! - A request is answered 2xx only once what it says is durable in the store, in one
//!   write per request; when the store cannot take it, 503, so that the provider sends it
//!   again. The write runs on a blocking thread: the listener goes on answering meanwhile.

pub mod certificates;
mod mailgun;
mod postmark;
mod sendgrid;
mod ses;
mod sns;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::Service;
use crate::store::{Once, Recorded, Suppression};

pub use certificates::{Certificates, TestTrust};
pub use mailgun::mailgun;
pub use postmark::postmark;
pub use sendgrid::sendgrid;
pub use ses::ses;

/// The largest request body taken, in bytes.
pub const MAX_BODY: usize = 1024 * 1024;
/// How far a signed timestamp may be from now (SendGrid, Mailgun).
const MAX_SKEW_SECONDS: u64 = 600;

/// Requests whose events are read and recorded at once, each on a blocking thread. The
/// store takes one write at a time, and two cores read no faster than four requests at a
/// time: a burst of SendGrid's largest requests waits its turn holding only its body,
/// rather than fifty threads each holding their events half-read.
const AT_ONCE: usize = 4;
static TURNS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(AT_ONCE);

/// Waits for a turn to read and record a request's events; the turn ends when dropped.
async fn turn() -> tokio::sync::SemaphorePermit<'static> {
    TURNS.acquire().await.expect("the turns are never closed")
}

/// What a request's events mean for the suppression list: normalised address and why.
type Found = Vec<(String, Suppression)>;

/// `email` suppressed for `reason`, learned from `campaign`; `None` unless an address.
fn suppression(email: &str, reason: &str, campaign: Option<&str>) -> Option<(String, Suppression)> {
    let email = email.trim();
    if !crate::address::is_valid(email) {
        return None;
    }
    Some((
        crate::audience::normalize(email),
        Suppression::new(reason, campaign),
    ))
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

/// 403 with what was wrong.
fn refuse(reason: &str) -> Response {
    (StatusCode::FORBIDDEN, format!("{reason}\n")).into_response()
}

/// A signed request's token, taken once: kept in the store `until` (Unix seconds), and
/// refused with `seen` before then.
struct Token {
    key: String,
    until: u64,
    seen: &'static str,
}

/// Puts what a request found in the suppression list (with its token, if it has one), in
/// one durable write, and answers the provider: 200 once recorded, 403 for a token seen
/// before, 503 (so that it sends them again) when the store cannot take them now. The
/// caller holds a `turn`.
async fn record(
    service: &Service,
    token: Option<Token>,
    found: Found,
    provider: &'static str,
) -> Response {
    let store = service.store.clone();
    let seen = token.as_ref().map_or("", |t| t.seen);
    let recorded = tokio::task::spawn_blocking(move || {
        let once = token.as_ref().map(|t| Once {
            token: &t.key,
            until: t.until,
        });
        store.record_events(once, &found)
    })
    .await;
    match recorded {
        Ok(Ok(Recorded::New { .. })) => (StatusCode::OK, "ok\n").into_response(),
        Ok(Ok(Recorded::Seen)) => refuse(seen),
        Ok(Err(error)) => {
            tracing::error!(%error, provider, "cannot record provider events");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "cannot record these events now; send them again later\n",
            )
                .into_response()
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
