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

use super::{Service, bearer};

/// The variable holding the token that `GET /summary` asks for, on both sides.
pub const READ_TOKEN_ENV: &str = "HERALD_READ_TOKEN";

/// `GET /summary`.
pub async fn summary(State(service): State<Service>, headers: HeaderMap) -> Response {
    let gate = bearer::Gate {
        token: service.read_token.as_deref(),
        env: READ_TOKEN_ENV,
        what: "the summary",
        name: "the read token",
    };
    if let Some(refusal) = gate.refusal(&headers) {
        return refusal;
    }
    let store = service.store.clone();
    match tokio::task::spawn_blocking(move || store.summary()).await {
        Ok(Ok(summary)) => {
            ([(header::CACHE_CONTROL, "no-store")], axum::Json(summary)).into_response()
        }
        Ok(Err(error)) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{error}\n")).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
