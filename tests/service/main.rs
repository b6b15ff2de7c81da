//! The timed tests: `herald watch` as a service against `herald apply`, and plan's
//! estimate of a send against the send.
//!
//! A test binary of its own, because cargo runs test binaries one after another: nothing
//! from the integration tests competes for the machine's cores while these compare how
//! long things take.

// The helpers are shared with the integration tests, which use more of them.
#[allow(dead_code)]
#[path = "../integration/browser.rs"]
mod browser;
mod estimate;
#[allow(dead_code)]
#[path = "../integration/fake_sendgrid.rs"]
mod fake_sendgrid;
#[allow(dead_code)]
#[path = "../integration/harness.rs"]
mod harness;
#[allow(dead_code)]
#[path = "../integration/http.rs"]
mod http;
mod memory;
mod service;
#[allow(dead_code)]
#[path = "../integration/wire.rs"]
mod wire;
