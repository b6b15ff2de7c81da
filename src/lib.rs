//! herald: declarative bulk email campaigns, one envelope per recipient.
//!
//! The binary is a thin shell over `cli::run`; every stage lives in its own module, in
//! the order a run goes through them: `manifest` (format, loading, diagnostics, and the
//! safety policy over manifests), `audience` (streaming, dedupe, suppression), `render`
//! (templates and catalogs), `plan` (render everyone, count), `store` (the sled state
//! store), `reconcile` (send what is due, record it), `transport` (where messages go),
//! `message` (RFC 5322), `schema` (the JSON Schema of the format).

pub mod address;
pub mod audience;
pub mod cli;
pub mod clock;
pub mod digest;
pub mod git;
pub mod input;
pub mod keyhash;
pub mod langtag;
pub mod live;
pub mod manifest;
pub mod message;
pub mod metrics;
pub mod plan;
pub mod reconcile;
pub mod render;
pub mod review;
pub mod secret;
pub mod serve;
pub mod status;
pub mod store;
pub mod text;
pub mod transport;
pub mod watch;
