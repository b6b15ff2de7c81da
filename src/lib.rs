//! herald: declarative bulk email campaigns, one envelope per recipient.
//!
//! The binary is a thin shell over `cli::run`; every stage lives in its own module:
//! `manifest` (format, loading, diagnostics), `policy` (safety rules over manifests),
//! `schema` (the JSON Schema of the format).

pub mod address;
pub mod audience;
pub mod cli;
pub mod manifest;
pub mod message;
pub mod plan;
pub mod policy;
pub mod render;
pub mod schema;
