//! herald's integration tests: the real binary, run as a user would, in a temporary folder.

mod apply;
mod crash;
mod fake_sendgrid;
mod fuzz;
mod harness;
mod plan;
mod preview;
mod safety;
mod schema;
mod sendgrid;
mod servers;
mod smtp;
mod validate;
mod watch;
