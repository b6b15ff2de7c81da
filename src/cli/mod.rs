//! The command line: clap types, dispatch, and output formatting. Nothing below this
//! module knows about clap; commands hand validated values to the library.

mod apply;
mod args;
mod plan;
mod preview;
mod report;
mod status;
mod validate;
mod watch;

use std::ffi::OsString;

use clap::Parser;

pub use args::{Cli, Command, Listed, Output};

/// What the process exits with; see DESIGN.md "Exit codes".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Everything asked for was done.
    Success = 0,
    /// A run failed part-way: transport errors, permanent failures, uncertain recipients.
    Failed = 1,
    /// Input refused before anything was sent.
    Refused = 2,
}

/// Parses `args` and runs the command, printing results to stdout and errors to stderr.
pub fn run<I, T>(args: I) -> Exit
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() {
                Exit::Refused
            } else {
                Exit::Success
            };
        }
    };
    logs();
    match cli.command {
        Command::Validate { path, output } => validate::run(&path, output),
        Command::Plan {
            path,
            campaign,
            output,
        } => plan::run(&path, campaign.as_deref(), output, &cli.state),
        Command::Apply {
            path,
            campaign,
            resend_uncertain,
            output,
        } => apply::run(&apply::Options {
            path,
            campaign,
            resend_uncertain,
            output,
            state: cli.state,
        }),
        Command::Watch {
            path,
            campaign,
            interval,
        } => watch::run(&path, campaign.as_deref(), interval, &cli.state),
        Command::Status {
            name,
            recipients,
            output,
        } => status::run(&cli.state, name.as_deref(), recipients, output),
        Command::Preview {
            path,
            campaign,
            out,
        } => preview::run(&path, &campaign, &out),
        Command::Schema => {
            print!("{}", crate::schema::json());
            Exit::Success
        }
    }
}

/// Logs go to stderr, filtered by `RUST_LOG` (warnings only by default), never coloured
/// when `NO_COLOR` is set or stderr is not a terminal.
fn logs() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let colour = std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .try_init();
}
