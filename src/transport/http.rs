//! What the HTTP providers' answers mean, the same for each: which are retried, which
//! fail, which stop the campaign, and what a lost connection means.
//!
//! # Guarantees
//! - Nothing is retried that may have been accepted: an answer that never came, once the
//!   connection was made, is `uncertain`.

use std::time::Duration;

use super::Outcome;

/// A status other than the provider's "accepted", with the provider's words in `reason`:
/// 401 stops the campaign, 429 and 5xx are retried (429 after `Retry-After` when given),
/// anything else fails for these recipients.
pub fn refused(
    status: reqwest::StatusCode,
    retry_after: Option<Duration>,
    reason: String,
) -> Outcome {
    match status.as_u16() {
        401 => Outcome::Unauthorized { reason },
        429 => Outcome::Retry {
            after: retry_after,
            reason,
        },
        500..=599 => Outcome::Retry {
            after: None,
            reason,
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

/// No answer: before the connection was made nothing was sent, so retry; after it, the
/// request may have arrived, so the outcome is uncertain.
pub fn lost(error: &reqwest::Error) -> Outcome {
    let reason = error.to_string();
    if error.is_connect() {
        Outcome::Retry {
            after: None,
            reason: format!("cannot connect: {reason}"),
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
