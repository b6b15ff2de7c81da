//! `herald watch` as a service, timed against `herald apply`.
//!
//! A test binary of its own, because cargo runs test binaries one after another: nothing
//! from the integration tests competes for the machine's cores while this one compares
//! how long watch and apply take on the same campaign.

// The helpers are shared with the integration tests, which use more of them.
#[allow(dead_code)]
#[path = "../integration/browser.rs"]
mod browser;
#[allow(dead_code)]
#[path = "../integration/harness.rs"]
mod harness;
#[allow(dead_code)]
#[path = "../integration/http.rs"]
mod http;
mod service;
