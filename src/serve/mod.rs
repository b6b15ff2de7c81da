//! herald as a service: the HTTP side of `herald watch --listen` (health, readiness,
//! metrics, status JSON, a status page, one-click unsubscribe, provider events, and the
//! store's summary for `plan --against`), and the state store's socket, through which
//! other herald processes read a store this one holds.
//!
//! # Guarantees
//! - Nothing listens on TCP unless `--listen` asked for it; the socket is for the store's
//!   owner only (see `socket`).
//! - A connection that does not send a whole request head in time, or sits idle, is
//!   closed; so is a request whose body does not arrive in time (see `listener`).
//! - `/status` and the socket answer from the store through `crate::status`, the same
//!   code `herald status` runs, so the three never disagree; `/summary` and the socket
//!   answer `plan --against` through `Store::summary` alike.

pub mod bearer;
pub mod directory;
pub mod events;
mod exposition;
mod feedback;
mod http;
mod listener;
mod page;
pub mod socket;
pub mod summary;
pub mod suppressions;

use std::sync::Arc;

use crate::metrics::Metrics;
use crate::secret::Secret;

use crate::live::Live;
use crate::store::Store;

/// What the endpoints read.
#[derive(Clone)]
pub struct Service {
    pub store: Store,
    pub live: Live,
    pub metrics: Arc<Metrics>,
    /// The manifests as the feedback endpoints need them; watch keeps it current.
    pub directory: Arc<directory::Directory>,
    /// SNS signing certificates, fetched once each, and subscription confirmations.
    pub certificates: Arc<events::Certificates>,
    /// The token `GET /summary` asks for (`HERALD_READ_TOKEN`); without it, 503.
    pub read_token: Option<Arc<Secret>>,
    /// The token `GET /suppressions` asks for (`HERALD_SUPPRESSIONS_TOKEN`); without it, 503.
    pub suppressions_token: Option<Arc<Secret>>,
}

/// Serves HTTP on `listener` until `shutdown` completes.
pub async fn http(
    listener: tokio::net::TcpListener,
    service: Service,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    listener::serve(listener, http::router(service), shutdown).await
}
