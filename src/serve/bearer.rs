//! Endpoints for a bearer of a token from the environment (`GET /summary`,
//! `GET /suppressions`).
//!
//! # Guarantees
//! - The token is compared in constant time, whatever its length.
//! - Without the variable the endpoint answers 503 and serves nothing; without a token
//!   401; with another one 403. The answer never repeats the token.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac as _};

use crate::secret::Secret;

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
pub(super) fn same(a: &str, b: &str) -> bool {
    let mac = |text: &str| {
        let mut mac =
            Hmac::<sha2::Sha256>::new_from_slice(b"herald read token").expect("HMAC takes any key");
        mac.update(text.as_bytes());
        mac
    };
    let expected = mac(a).finalize().into_bytes();
    mac(b).verify_slice(&expected).is_ok()
}

/// One endpoint's token and how its refusals name it.
pub struct Gate<'a> {
    /// The token, when its variable is set.
    pub token: Option<&'a Secret>,
    /// The variable that holds it.
    pub env: &'a str,
    /// What the endpoint serves, for "... is not served".
    pub what: &'a str,
    /// What the token is called, for "... is needed" and "not ...".
    pub name: &'a str,
}

impl Gate<'_> {
    /// The answer that refuses the request; `None` for the bearer of the token.
    pub fn refusal(&self, headers: &HeaderMap) -> Option<Response> {
        let Some(token) = self.token else {
            return Some(
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("{} is not served: {} is not set\n", self.what, self.env),
                )
                    .into_response(),
            );
        };
        match access(token.expose(), headers) {
            Access::Granted => None,
            Access::Anonymous => Some(
                (
                    StatusCode::UNAUTHORIZED,
                    [(header::WWW_AUTHENTICATE, "Bearer realm=\"herald\"")],
                    format!(
                        "{} is needed (the one in {}): `Authorization: Bearer <token>`\n",
                        self.name, self.env
                    ),
                )
                    .into_response(),
            ),
            Access::Wrong => {
                Some((StatusCode::FORBIDDEN, format!("not {}\n", self.name)).into_response())
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
