//! The HTTP endpoints of `herald watch --listen` (axum).

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};

use super::Service;
use super::exposition::Format;
use crate::status::Query;

pub fn router(service: Service) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route("/summary", get(super::summary::summary))
        .route("/suppressions", get(super::suppressions::suppressions))
        .route(
            "/unsubscribe/{token}",
            get(super::feedback::unsubscribe_page).post(super::feedback::unsubscribe),
        )
        .route("/events/sendgrid", post(super::events::sendgrid))
        .route("/events/mailgun", post(super::events::mailgun))
        .route("/events/postmark", post(super::events::postmark))
        .route("/events/ses", post(super::events::ses))
        .layer(DefaultBodyLimit::max(super::events::MAX_BODY))
        .with_state(service)
}

async fn livez() -> &'static str {
    "ok\n"
}

/// 200 once every campaign has been prepared once; 503 before.
async fn readyz(State(service): State<Service>) -> Response {
    if service.live.ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: campaigns are still being prepared\n",
        )
            .into_response()
    }
}

/// The JSON of `herald status -o json`.
async fn status(State(service): State<Service>) -> Response {
    let store = service.store.clone();
    let collected = tokio::task::spawn_blocking(move || {
        crate::status::collect(
            &store,
            &Query {
                campaign: None,
                recipients: None,
            },
        )
    })
    .await;
    match collected {
        Ok(Ok(statuses)) => {
            axum::Json(serde_json::json!({ "campaigns": statuses })).into_response()
        }
        Ok(Err(error)) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// OpenMetrics, or the Prometheus text format 0.0.4 when `Accept` prefers it.
async fn metrics(State(service): State<Service>, headers: HeaderMap) -> Response {
    let format = Format::negotiate(
        headers
            .get(header::ACCEPT)
            .and_then(|accept| accept.to_str().ok()),
    );
    let text = tokio::task::spawn_blocking(move || {
        let openmetrics = service.metrics.render(&service.live, &service.store);
        match format {
            Format::OpenMetrics => openmetrics,
            Format::Text => super::exposition::to_text(&openmetrics),
        }
    })
    .await
    .unwrap_or_default();
    // Caches between herald and a scraper must not give one format to those asking the other.
    (
        [
            (header::CONTENT_TYPE, format.content_type()),
            (header::VARY, "accept"),
        ],
        text,
    )
        .into_response()
}

async fn page(State(service): State<Service>) -> Response {
    let rendered = tokio::task::spawn_blocking(move || {
        let statuses = crate::status::collect(
            &service.store,
            &Query {
                campaign: None,
                recipients: None,
            },
        )
        .unwrap_or_default();
        super::page::render(&service.live.snapshot(), &statuses)
    })
    .await;
    match rendered {
        Ok(html) => Html(html).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
