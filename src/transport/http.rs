//! What the HTTP providers' answers mean, the same for each: which are retried, which
//! fail the recipients, which say the provider cannot be used now, and what a lost
//! connection means.
//!
//! # Guarantees
//! - Nothing is retried that may have been accepted: an answer that never came, once the
//!   request may have been written, is `uncertain`.
//! - Only an answer about the call's messages fails its recipients; refused credentials
//!   and a connection or TLS that cannot be made change nobody's outcome.

use std::error::Error as _;
use std::time::Duration;

use super::{Cause, Outcome};

/// A status other than the provider's "accepted", with the provider's words in `reason`:
/// 401 and 403 refuse the credentials, 429 and 5xx are retried (429 after `Retry-After`
/// when given), anything else (400, 413, 422) is about the messages and fails them.
pub fn refused(
    status: reqwest::StatusCode,
    retry_after: Option<Duration>,
    reason: String,
) -> Outcome {
    match status.as_u16() {
        401 | 403 => Outcome::Unavailable {
            cause: Cause::Credentials,
            reason,
        },
        429 => Outcome::Retry {
            after: retry_after,
            reason,
            cause: Cause::Busy,
        },
        500..=599 => Outcome::Retry {
            after: None,
            reason,
            cause: Cause::Busy,
        },
        _ => Outcome::Failed { reason },
    }
}

/// The `Retry-After` header, in seconds.
pub fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// No answer. Before the connection was made nothing was sent: a certificate that is
/// not trusted will not be by trying again; anything else (refused, DNS) may pass, so
/// retry. After it, the request may have arrived, so the outcome is uncertain.
pub fn lost(error: &reqwest::Error) -> Outcome {
    let reason = describe(error);
    if error.is_connect() {
        if super::is_tls_failure(error) {
            Outcome::Unavailable {
                cause: Cause::Tls,
                reason: format!("TLS failed: {reason}"),
            }
        } else {
            Outcome::Retry {
                after: None,
                reason: format!("cannot connect: {reason}"),
                cause: Cause::Network,
            }
        }
    } else if error.is_timeout() {
        Outcome::Uncertain {
            reason: format!("no answer in time: {reason}"),
        }
    } else {
        Outcome::Uncertain {
            reason: format!("connection lost: {reason}"),
        }
    }
}

/// reqwest's error with the causes it wraps (its own text stops at "error sending
/// request"), so that the reason says what went wrong.
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        source = cause.source();
    }
    text
}

/// An HTTP client for a provider: rustls, the transport's timeout for connecting and for
/// the whole call, and as many idle connections kept as calls in flight.
pub fn client(transport: &crate::manifest::Transport) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(transport.timeout)
        .connect_timeout(transport.timeout)
        .pool_max_idle_per_host(transport.concurrency.get() as usize)
        .build()
        .expect("an HTTP client with rustls builds")
}
