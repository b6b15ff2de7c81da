//! The command line: clap types, dispatch, and output formatting. Nothing below this
//! module knows about clap; commands hand validated values to the library.

mod against;
mod apply;
mod args;
mod comment;
mod diff;
mod generate;
mod init;
mod plan;
mod preview;
mod progress;
mod report;
mod session;
mod shards;
mod status;
mod suppressions;
mod suppressions_from;
mod validate;
mod watch;

use std::ffi::OsString;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory as _, FromArgMatches as _};

pub use args::{Cli, Command, Listed, Output, ReviewOutput, VERSION};

/// What the process exits with; see docs/output.md, "Exit codes".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Everything asked for was done.
    Success = 0,
    /// A run failed part-way: transport errors, permanent failures, uncertain recipients.
    Failed = 1,
    /// Input refused before anything was sent.
    Refused = 2,
    /// A campaign halted on its failure rate (`spec.halt`): nothing more is sent to it until
    /// the cause is fixed, so a scheduler must not retry the run (a shard's Job fails).
    Halted = 3,
}

/// Parses `args` and runs the command, printing results to stdout and errors to stderr.
pub fn run<I, T>(args: I) -> Exit
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let parsed = Cli::command()
        .try_get_matches_from(args)
        .and_then(|matches| Ok((Cli::from_arg_matches(&matches)?, matches)));
    let (mut cli, matches) = match parsed {
        Ok(parsed) => parsed,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() {
                Exit::Refused
            } else {
                Exit::Success
            };
        }
    };
    if let Err(message) = state_before_command(&mut cli, &matches) {
        report::error(message);
        return Exit::Refused;
    }
    report::logs();
    match cli.command {
        Command::Validate(args) => validate::run(&args),
        Command::Plan(args) => plan::run(&args),
        Command::Diff(args) => diff::run(&args),
        Command::Apply(args) => apply::run(&args),
        Command::Watch(args) => watch::run(&args),
        Command::Status(args) => status::run(&args),
        Command::Preview(args) => preview::run(&args),
        Command::Init(args) => init::run(&args),
        Command::Suppressions(command) => suppressions::run(&command),
        Command::Schema => {
            print!("{}", crate::manifest::schema::json());
            Exit::Success
        }
        Command::Completions(args) => generate::completions(&args),
        Command::Man(args) => generate::man(&args),
    }
}

/// `herald --state DIR COMMAND`: the state store given before the command is the
/// command's own, unless the command names another.
fn state_before_command(cli: &mut Cli, matches: &ArgMatches) -> Result<(), String> {
    let Some(before) = cli.state.take() else {
        return Ok(());
    };
    let mut command = matches;
    let mut name = String::new();
    while let Some((sub, inner)) = command.subcommand() {
        name = if name.is_empty() {
            sub.to_owned()
        } else {
            format!("{name} {sub}")
        };
        command = inner;
    }
    let Some(state) = cli.command.state_mut() else {
        return Err(format!(
            "`--state` is for the commands that use a state store; `herald {name}` does not"
        ));
    };
    // Given on the command line after the command too (not from HERALD_STATE).
    let given_after = command.value_source("state") == Some(ValueSource::CommandLine);
    match &state.state {
        Some(after) if given_after && *after != before => Err(format!(
            "`--state` is given twice, as `{}` and `{}`; give it once",
            before.display(),
            after.display()
        )),
        _ => {
            state.state = Some(before);
            Ok(())
        }
    }
}
