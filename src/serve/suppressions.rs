//! `GET /suppressions`: the store-wide suppression list of the store this process holds,
//! for shards sending from other machines (`herald apply --suppressions-from URL`), so an
//! unsubscribe or complaint recorded by the service holds for them too.
//!
//! # Guarantees
//! - Only for a bearer of `HERALD_SUPPRESSIONS_TOKEN` (read once when watch starts, kept
//!   out of every text herald prints), compared in constant time; a token of its own, as
//!   the answer holds addresses (the read token of `GET /summary` never does, and pull
//!   requests' checks hold that one). Without the variable the endpoint answers 503.
//! - The answer is the whole list as `herald suppressions list -o json` prints it, with
//!   `count` beside it so a reader can tell a whole list from a cut one. Not cached.

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use super::{Service, bearer};

/// The variable holding the token `GET /suppressions` asks for, on both sides.
pub const SUPPRESSIONS_TOKEN_ENV: &str = "HERALD_SUPPRESSIONS_TOKEN";

/// `GET /suppressions`.
pub async fn suppressions(State(service): State<Service>, headers: HeaderMap) -> Response {
    let gate = bearer::Gate {
        token: service.suppressions_token.as_deref(),
        env: SUPPRESSIONS_TOKEN_ENV,
        what: "the suppression list",
        name: "the suppressions token",
    };
    if let Some(refusal) = gate.refusal(&headers) {
        return refusal;
    }
    let list = crate::status::suppressions(&service.store);
    ([(header::CACHE_CONTROL, "no-store")], axum::Json(list)).into_response()
}
