//! herald's integration tests: the real binary, run as a user would, in a temporary folder.

mod apply;
// Shared with tests/service, which uses parts these tests do not.
#[allow(dead_code)]
mod browser;
mod cli;
mod container;
mod correction;
mod crash;
mod events_load;
mod exports;
mod fake_mailgun;
mod fake_postmark;
// Shared with tests/service, which uses parts these tests do not.
#[allow(dead_code)]
mod fake_sendgrid;
mod fake_sns;
mod feedback;
mod full_disk;
mod fuzz;
mod harness;
#[allow(dead_code)]
mod http;
mod kubernetes;
mod layers;
mod mailgun;
mod metrics;
mod outage;
mod package;
mod plan;
mod postmark;
mod postmark_events;
mod preview;
mod review;
mod safety;
mod schedule;
mod schema;
mod sendgrid;
mod servers;
mod ses_events;
mod shards;
mod smtp;
mod systemd;
mod timeouts;
mod tls;
mod tools;
mod validate;
mod watch;
mod wire;
mod workflow;
