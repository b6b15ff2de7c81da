//! `herald watch`: apply, then follow the manifests until Ctrl-C or SIGTERM.

use super::args::WatchArgs;
use super::{Exit, apply, report, session, validate};
use crate::reconcile::Stop;
use crate::watch::{self, Event, Options};

pub fn run(args: &WatchArgs) -> Exit {
    match watch(args) {
        Ok(exit) | Err(exit) => exit,
    }
}

fn watch(args: &WatchArgs) -> Result<Exit, Exit> {
    let path = &args.path.path;
    let manifests = session::load(path)?;
    session::select(&manifests, args.campaign.as_deref())?;
    let state = session::state(&args.state, path)?;
    let sending = session::open_for_sending(&state, args.require.require_state)?;
    let runtime = session::runtime();
    let (handle, stop) = Stop::new();
    let options = Options {
        path: path.to_owned(),
        state,
        only: args.campaign.clone(),
        interval: args.interval,
        store: sending.store,
        recovered: sending.recovered,
        stop,
    };
    report::note(format_args!("watching {} (Ctrl-C to stop)", path.display()));
    let result = runtime.block_on(async {
        tokio::spawn(apply::stop_on_signal(handle));
        watch::watch(manifests, options, print).await
    });
    match result {
        Ok(()) => Ok(Exit::Success),
        Err(error) => {
            report::error(format_args!("cannot watch {}: {error}", path.display()));
            Ok(Exit::Failed)
        }
    }
}

fn print(event: Event) {
    match event {
        Event::Reconciled(report) => print!("{}", apply::text(&report)),
        Event::Failed { campaign, message } => report::error(format_args!(
            "campaign `{campaign}`: {message}; halted until its files change"
        )),
        Event::Invalid { error, halted } => {
            validate::print_load_error(&error);
            if !halted.is_empty() {
                report::error(format_args!(
                    "halted until fixed: {}; other campaigns keep running",
                    crate::text::List::and_ticked(&halted)
                ));
            }
        }
        Event::Removed { campaign } => println!(
            "{campaign}: manifest removed; sends nothing more (its history stays in the state store)"
        ),
    }
}
