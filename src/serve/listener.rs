//! Accepting connections for `watch --listen`, with the timeouts `axum::serve` does not
//! set: the listener may face the internet without a proxy, and a client that opens a
//! connection and never finishes a request would otherwise hold a file descriptor (and a
//! task) for as long as it likes.
//!
//! HTTP/1.1 only (providers and proxies post with it): every timeout below is one HTTP/1
//! knows, where HTTP/2 would hold idle streams open on its own terms.
//!
//! # Guarantees
//! - A connection must deliver a whole request head within `HEADER_TIMEOUT` of opening,
//!   and of each answer on it after that: a client that sends half a head, or nothing,
//!   or sits idle between requests, is closed then.
//! - A request must be answered within `REQUEST_TIMEOUT` of its head, its body included:
//!   a body that trickles in slower gets 408, and the connection is closed.
//! - On shutdown no new connection is taken, and the open ones get `SHUTDOWN_GRACE` to
//!   finish their requests.

use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tower_http::timeout::TimeoutLayer;

/// How long a connection may take to send a request head, counted from when it opened or
/// from the last answer on it: also how long it may sit idle.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a request may take once its head arrived, reading its body included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long open connections get to finish on shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serves `router` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = router.layer(TimeoutLayer::with_status_code(
        StatusCode::REQUEST_TIMEOUT,
        REQUEST_TIMEOUT,
    ));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors, say: wait a little rather than spin.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = TowerToHyperService::new(router.clone());
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "a connection ended");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {}
    }
    Ok(())
}
