//! The command line: clap types, dispatch, and output formatting. Nothing below this
//! module knows about clap; commands hand validated values to the library.

mod apply;
mod args;
mod generate;
mod init;
mod plan;
mod preview;
mod report;
mod session;
mod status;
mod suppressions;
mod validate;
mod watch;

use std::ffi::OsString;

use clap::Parser;

pub use args::{Cli, Command, Listed, Output, VERSION};

/// What the process exits with; see README "Exit codes".
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
    report::logs();
    match cli.command {
        Command::Validate(args) => validate::run(&args),
        Command::Plan(args) => plan::run(&args),
        Command::Apply(args) => apply::run(&args),
        Command::Watch(args) => watch::run(&args),
        Command::Status(args) => status::run(&args),
        Command::Preview(args) => preview::run(&args),
        Command::Init(args) => init::run(&args),
        Command::Suppressions(command) => suppressions::run(&command),
        Command::Schema => {
            print!("{}", crate::schema::json());
            Exit::Success
        }
        Command::Completions(args) => generate::completions(&args),
        Command::Man(args) => generate::man(&args),
    }
}
