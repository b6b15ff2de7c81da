//! What recipients tell herald after it sent: one-click unsubscribe (RFC 8058) and the
//! page behind the link. It ends in the store's suppression list, which every campaign
//! sharing the store then skips. (What providers tell herald is in `events`.)
//!
//! # Guarantees
//! - A token that is not a real token of a campaign watch follows (forged, truncated,
//!   of an address not in the audience) is a 404 and records nothing; a real one is
//!   checked in constant time. Repeating an unsubscribe is harmless.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use super::Service;
use super::directory::{Named, NotKeyed};
use crate::store::Suppression;

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
