//! `herald apply`: prepare every selected campaign (refusing before anything is sent),
//! then reconcile each, and report.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use super::{Exit, Output, plan, report, validate};
use crate::reconcile::{self, Context, Ending, Report, Stop, StopHandle, TransportLimits};
use crate::store::Store;

pub struct Options {
    pub path: PathBuf,
    pub campaign: Option<String>,
    pub resend_uncertain: bool,
    pub output: Output,
    pub state: PathBuf,
}

pub fn run(options: &Options) -> Exit {
    let Some(manifests) = validate::load_or_report(&options.path) else {
        return Exit::Refused;
    };
    let Some(campaigns) = plan::select(&manifests, options.campaign.as_deref()) else {
        return Exit::Refused;
    };
    let (store, recovered) = match open_for_sending(&options.state) {
        Ok(opened) => opened,
        Err(exit) => return exit,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    // Transports are built while preparing, and lettre's connection pool needs a runtime.
    let _entered = runtime.enter();
    let (handle, stop) = Stop::new();
    let ctx = Context {
        store,
        transports: manifests.transports.clone(),
        resend_uncertain: options.resend_uncertain,
        stop,
        progress: options.output == Output::Text && std::io::stderr().is_terminal(),
        recovered,
        git: crate::git::revision(&options.path),
        limits: TransportLimits::new(&manifests, &TransportLimits::default()),
    };

    // Every campaign is checked and rendered before any is sent to.
    let mut prepared = Vec::new();
    for campaign in campaigns {
        match reconcile::prepare(campaign, &ctx) {
            Ok(ready) => prepared.push(ready),
            Err(error) => {
                report::refused(&campaign.name, error);
                return Exit::Refused;
            }
        }
    }

    let mut reports = Vec::new();
    let mut failed = false;
    runtime.block_on(async {
        tokio::spawn(stop_on_signal(handle));
        for ready in prepared {
            let name = ready.plan.name.clone();
            match reconcile::execute(ready, &ctx).await {
                Ok(reconciled) => reports.push(reconciled.report),
                Err(error) => {
                    report::error(format_args!(
                        "campaign `{name}`: {error}; stopped (see `herald status {name}`)"
                    ));
                    failed = true;
                    break;
                }
            }
            if ctx.stop.is_set() {
                break;
            }
        }
    });
    runtime.shutdown_background();

    match options.output {
        Output::Json => println!("{}", serde_json::json!({ "campaigns": reports })),
        Output::Text => {
            for report in &reports {
                print!("{}", text(report));
            }
        }
    }
    if failed || reports.iter().any(Report::failed_part_way) {
        Exit::Failed
    } else {
        Exit::Success
    }
}

/// Opens the state store for sending (apply, watch) and turns a killed run's intents into
/// `uncertain`, warning about them; the exit code when that fails.
pub(super) fn open_for_sending(state: &Path) -> Result<(Store, BTreeMap<String, u64>), Exit> {
    let store = Store::open(state).map_err(|error| {
        report::error(format_args!("{error}; nothing was sent"));
        Exit::Refused
    })?;
    let recovered = store.recover().map_err(|error| {
        report::error(format_args!("{error}; nothing was sent"));
        Exit::Failed
    })?;
    for (name, count) in &recovered {
        eprintln!(
            "warning: campaign `{name}`: {count} recipients were in flight when an earlier run stopped; \
             they are now uncertain and are not re-sent (see `herald status {name} --recipients uncertain`)"
        );
    }
    Ok((store, recovered))
}

/// Ctrl-C or SIGTERM: ask every reconcile to stop after the call in flight.
pub(super) async fn stop_on_signal(handle: StopHandle) {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM can be handled");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    eprintln!("stopping: finishing the call in flight, then recording it");
    handle.stop();
}

/// One campaign's report, for people; shared with watch.
pub(super) fn text(report: &Report) -> String {
    let name = &report.name;
    let mut out = String::new();
    let _ = match report.ending {
        Ending::NothingToSend => writeln!(out, "{name}: nothing to send"),
        Ending::Done => writeln!(
            out,
            "{name}: sent {} of {} in {:.1} s",
            report.sent, report.due, report.seconds
        ),
        Ending::Paused => writeln!(
            out,
            "{name}: paused, nothing sent; {} still to send (set spec.paused: false to resume)",
            report.due
        ),
        Ending::Halted => writeln!(
            out,
            "{name}: halted: {}",
            report.halted.as_deref().unwrap_or_default()
        ),
        Ending::Interrupted => writeln!(
            out,
            "{name}: interrupted: sent {} of {}; run apply again to continue",
            report.sent, report.due
        ),
    };
    let mut problems = Vec::new();
    for (count, what) in [
        (report.failed, "failed"),
        (report.uncertain, "uncertain"),
        (report.not_sent, "not sent (due again next run)"),
    ] {
        if count > 0 {
            problems.push(format!("{count} {what}"));
        }
    }
    if !problems.is_empty() {
        let _ = writeln!(out, "  this run: {}", problems.join(", "));
    }
    let earlier = [
        (report.already_sent, "already sent"),
        (report.previously_failed, "failed"),
        (report.previously_uncertain, "uncertain, not re-sent"),
    ];
    if earlier.iter().any(|(count, _)| *count > 0) {
        let listed: Vec<String> = earlier
            .iter()
            .filter(|(count, _)| *count > 0)
            .map(|(count, what)| format!("{count} {what}"))
            .collect();
        let _ = writeln!(out, "  earlier runs: {}", listed.join(", "));
    }
    if report.previously_uncertain + report.uncertain + report.recovered > 0 {
        let _ = writeln!(
            out,
            "  see `herald status {name} --recipients uncertain`; `apply --resend-uncertain` sends to them again"
        );
    }
    out
}
