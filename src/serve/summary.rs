//! `GET /summary`: what `herald plan --against URL` needs of the store this process holds,
//! for a pull request's check to refuse what apply would refuse after the merge.
//!
//! # Guarantees
//! - Read-only, and only for a bearer of the read token (`HERALD_READ_TOKEN`, read once
//!   when watch starts, registered to be scrubbed from every text herald prints). The
//!   token is compared in constant time, whatever its length. Without the variable the
//!   endpoint answers 503 and serves nothing; without a token 401; with another one 403.
//! - The answer is `Store::summary`: counts and content digests, never an address (see
//!   `store::summary`). Not cached by anything between.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac as _};

use super::Service;

/// The variable holding the token that `GET /summary` asks for, on both sides.
pub const READ_TOKEN_ENV: &str = "HERALD_READ_TOKEN";

/// What a request may be, as the token goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No `Authorization: Bearer` header.
    Anonymous,
    /// A token, not the one.
    Wrong,
    Granted,
}

/// Whether `headers` carry the token `expected`.
pub fn access(expected: &str, headers: &HeaderMap) -> Access {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, token) = value.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then_some(token.trim())
        })
    else {
        return Access::Anonymous;
    };
    if same(expected, given) {
        Access::Granted
    } else {
        Access::Wrong
    }
}

/// `a == b` in time that depends on neither: both are hashed with HMAC under a fixed key, and the
/// MACs compared in constant time (which the `hmac` crate does through `subtle`).
fn same(a: &str, b: &str) -> bool {
    let mac = |text: &str| {
        let mut mac =
            Hmac::<sha2::Sha256>::new_from_slice(b"herald read token").expect("HMAC takes any key");
        mac.update(text.as_bytes());
        mac
    };
    let expected = mac(a).finalize().into_bytes();
    mac(b).verify_slice(&expected).is_ok()
}

/// `GET /summary`.
pub async fn summary(State(service): State<Service>, headers: HeaderMap) -> Response {
    let Some(token) = service.read_token.as_deref() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the summary is not served: {READ_TOKEN_ENV} is not set\n"),
        )
            .into_response();
    };
    match access(token.expose(), &headers) {
        Access::Anonymous => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer realm=\"herald\"")],
            "a read token is needed: `Authorization: Bearer <token>`\n",
        )
            .into_response(),
        Access::Wrong => (StatusCode::FORBIDDEN, "not the read token\n").into_response(),
        Access::Granted => {
            let store = service.store.clone();
            match tokio::task::spawn_blocking(move || store.summary()).await {
                Ok(Ok(summary)) => {
                    ([(header::CACHE_CONTROL, "no-store")], axum::Json(summary)).into_response()
                }
                Ok(Err(error)) => {
                    (StatusCode::INTERNAL_SERVER_ERROR, format!("{error}\n")).into_response()
                }
                Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, value.parse().unwrap());
        headers
    }

    #[test]
    fn only_the_token_itself_is_granted() {
        let token = "unit-test-read-token";
        assert_eq!(access(token, &HeaderMap::new()), Access::Anonymous);
        assert_eq!(
            access(token, &headers("Basic dXNlcjpwYXNz")),
            Access::Anonymous
        );
        assert_eq!(
            access(token, &headers("Bearer unit-test-read-token")),
            Access::Granted
        );
        assert_eq!(
            access(token, &headers("bearer unit-test-read-token")),
            Access::Granted
        );
        for wrong in ["unit-test-read-toke", "unit-test-read-token2", "", "x"] {
            assert_eq!(
                access(token, &headers(&format!("Bearer {wrong}"))),
                Access::Wrong,
                "{wrong:?}"
            );
        }
    }
}
