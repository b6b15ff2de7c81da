//! `herald watch`: apply, then follow the manifests until Ctrl-C or SIGTERM.

use std::path::Path;
use std::time::Duration;

use super::{Exit, apply, plan, report, validate};
use crate::reconcile::Stop;
use crate::watch::{self, Event, Options};

pub fn run(path: &Path, only: Option<&str>, interval: Duration, state: &Path) -> Exit {
    let Some(manifests) = validate::load_or_report(path) else {
        return Exit::Refused;
    };
    if plan::select(&manifests, only).is_none() {
        return Exit::Refused;
    }
    let (store, recovered) = match apply::open_for_sending(state) {
        Ok(opened) => opened,
        Err(exit) => return exit,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    let (handle, stop) = Stop::new();
    let options = Options {
        path: path.to_owned(),
        only: only.map(str::to_owned),
        interval,
        store,
        recovered,
        stop,
    };
    eprintln!("watching {} (Ctrl-C to stop)", path.display());
    let result = runtime.block_on(async {
        tokio::spawn(apply::stop_on_signal(handle));
        watch::watch(manifests, options, print).await
    });
    match result {
        Ok(()) => Exit::Success,
        Err(error) => {
            report::error(format_args!("cannot watch {}: {error}", path.display()));
            Exit::Failed
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
                let names: Vec<String> = halted.iter().map(|n| format!("`{n}`")).collect();
                report::error(format_args!(
                    "halted until fixed: {}; other campaigns keep running",
                    names.join(", ")
                ));
            }
        }
        Event::Removed { campaign } => println!(
            "{campaign}: manifest removed; sends nothing more (its history stays in the state store)"
        ),
    }
}
