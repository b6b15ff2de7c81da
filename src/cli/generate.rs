//! `herald completions` and `herald man`: shell completions and manual pages generated
//! from the clap definitions in `args`, so that they can never disagree with `--help`.
//! The Debian package runs both at build time (see `deploy/debian/build.sh`).

use std::io::Write as _;

use clap::CommandFactory as _;
use clap_complete::Generator as _;

use super::args::{Cli, CompletionsArgs, ManArgs};
use super::{Exit, report};

pub fn completions(args: &CompletionsArgs) -> Exit {
    let mut command = Cli::command();
    command.set_bin_name("herald");
    command.build();
    // Into memory first: the generators panic on a write error, a closed pipe included.
    let mut script = Vec::new();
    args.shell.generate(&command, &mut script);
    print(&script)
}

pub fn man(args: &ManArgs) -> Exit {
    let mut command = Cli::command().disable_help_subcommand(true);
    command.build();
    let Some(dir) = &args.dir else {
        return print(&page(command));
    };
    let mut pages = Vec::new();
    collect(command, &mut pages);
    for (name, roff) in pages {
        let path = dir.join(format!("{name}.1"));
        if let Err(error) = std::fs::write(&path, roff) {
            report::error(format_args!("cannot write {}: {error}", path.display()));
            return Exit::Failed;
        }
    }
    Exit::Success
}

/// `command`'s page and those of its subcommands, named as their SEE ALSO lists name them
/// (`herald-suppressions-add`), as `clap_mangen::generate_to` does but dated.
fn collect(command: clap::Command, pages: &mut Vec<(String, Vec<u8>)>) {
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        collect(sub.clone(), pages);
    }
    let name = command
        .get_display_name()
        .unwrap_or_else(|| command.get_name())
        .to_owned();
    pages.push((name, page(command)));
}

fn page(command: clap::Command) -> Vec<u8> {
    let mut roff = Vec::new();
    clap_mangen::Man::new(command)
        .date(env!("HERALD_BUILD_DATE"))
        .manual("herald manual")
        .render(&mut roff)
        .expect("writing to memory cannot fail");
    roff
}

fn print(bytes: &[u8]) -> Exit {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Exit::Success,
        Err(error) => {
            report::error(format_args!("cannot write to stdout: {error}"));
            Exit::Failed
        }
    }
}
