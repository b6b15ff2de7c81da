//! Rules about one document at a time, each problem a diagnostic with its line:
//!
//! - `campaign`: names, senders, single-line values, the rate, referenced files, rollout.
//! - `transport`: which settings each type takes and needs, secrets never inline.
//! - `schedule`: instants in order, a window that is not empty, known zones, and somebody
//!   who could ever be sent.
//! - `values`: rules about single values that both kinds of document share.
//! - `inputs`: files a campaign reads: they exist, are regular, and stay inside the
//!   manifest's folder tree (or `spec.allow_outside`).
//! - `syntax`: what an environment variable name, a URL or a domain is.
//!
//! Rules that relate documents to each other, and the isolation rule, are in
//! `manifest/policy.rs`.

mod campaign;
mod inputs;
mod schedule;
mod syntax;
mod transport;
mod values;

pub use campaign::campaign;
pub use schedule::typed as schedule;
pub use transport::transport;
