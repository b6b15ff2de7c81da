//! `herald apply`: prepare every selected campaign (refusing before anything is sent),
//! then reconcile each, and report.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::Path;

use super::against::Source;
use super::args::ApplyArgs;
use super::{Exit, Output, report, session, shards, suppressions_from};
use crate::audience::Shard;
use crate::manifest::{Campaign, Manifests};
use crate::reconcile::{
    self, Action, Breakers, Context, Ending, Report, Stop, StopHandle, TransportLimits,
};
use crate::store::Suppression;
use crate::text::List;

pub fn run(args: &ApplyArgs) -> Exit {
    match apply(args) {
        Ok(exit) | Err(exit) => exit,
    }
}

fn apply(args: &ApplyArgs) -> Result<Exit, Exit> {
    let path = &args.path.path();
    let manifests = session::load(path)?;
    let campaigns = session::select(&manifests, args.campaign.as_deref())?;
    let state = session::state(&args.state, path)?;
    session::not_a_shard(&state)?;
    let count = shards::count(&campaigns)?;
    let name = campaigns.first().map_or("", |c| c.name.as_str());
    let chosen = shards::chosen(count, args.shard, name)?;
    shards::unchanged(&state, &campaigns, count)?;
    let borrowed = borrowed_suppressions(args)?;
    if count.get() == 1 {
        let (exit, reports) = send(
            args,
            &manifests,
            &campaigns,
            &state,
            Shard::WHOLE,
            &state,
            borrowed.as_ref(),
        )?;
        print(args.output.output, &reports);
        return Ok(exit);
    }
    if args.require.require_state {
        session::require_initialized(&state)?;
    }
    // Shard after shard: each with its own store, its part of the audience, its share of
    // the rates; a refusal of one stops the run before the next.
    let mut all = Vec::new();
    let mut worst = Exit::Success;
    for shard in chosen {
        let parts: Vec<Campaign> = campaigns.iter().map(|c| c.for_shard(shard.index)).collect();
        let parts: Vec<&Campaign> = parts.iter().collect();
        let store = crate::store::shards::folder(&state, shard);
        let sent = shards::claim(&state, &campaigns, shard).and_then(|()| {
            send(
                args,
                &manifests,
                &parts,
                &store,
                shard,
                &state,
                borrowed.as_ref(),
            )
        });
        let (exit, reports) = match sent {
            Ok(sent) => sent,
            Err(exit) if all.is_empty() => return Err(exit),
            // Refused after earlier shards sent: the run failed part-way, and what they
            // did is reported below.
            Err(_) => {
                if worst != Exit::Halted {
                    worst = Exit::Failed;
                }
                break;
            }
        };
        if args.output.output == Output::Text {
            for report in &reports {
                print!("{shard}: {}", text(report));
            }
        }
        all.extend(reports.into_iter().map(|report| (shard, report)));
        // A halt outweighs a failure: it must stop the Job, not be retried.
        if exit != Exit::Success && worst != Exit::Halted {
            worst = exit;
        }
        // Stopped (Ctrl-C, SIGTERM) or halted: the shards after this one wait for the
        // next run (a halt must be fixed first; the same campaign would halt again).
        if all
            .iter()
            .any(|(_, r)| matches!(r.ending, Ending::Interrupted | Ending::Halted))
        {
            break;
        }
    }
    if args.output.output == Output::Json {
        let reports: Vec<serde_json::Value> = all
            .iter()
            .map(|(shard, report)| {
                let mut value = serde_json::to_value(report).unwrap_or_default();
                if let Some(object) = value.as_object_mut() {
                    object.insert("shard".to_owned(), shard.index.into());
                    object.insert("shards".to_owned(), shard.count.get().into());
                }
                value
            })
            .collect();
        println!("{}", serde_json::json!({ "campaigns": reports }));
    }
    Ok(worst)
}

/// Another store's suppression list (`--suppressions-from`), and where it came from.
struct Borrowed {
    source: String,
    list: BTreeMap<String, Suppression>,
}

/// The suppression list `--suppressions-from` names, read whole before anything is sent;
/// none without the flag.
fn borrowed_suppressions(args: &ApplyArgs) -> Result<Option<Borrowed>, Exit> {
    let Some(source) = &args.suppressions_from else {
        return Ok(None);
    };
    let source = Source::parse(source);
    let list = suppressions_from::read(&source).map_err(|unread| {
        report::error(format_args!(
            "cannot read the suppression list from {source}: {}; nothing was sent",
            unread.message.trim_end_matches("; nothing was read")
        ));
        unread.exit
    })?;
    Ok(Some(Borrowed {
        source: source.to_string(),
        list,
    }))
}

/// Copies the list `--suppressions-from` read into the store at `state` before anything
/// is sent, so a later run without the flag still skips them.
fn copy_suppressions(
    store: &crate::store::Store,
    borrowed: &Borrowed,
    state: &Path,
) -> Result<(), Exit> {
    match store.suppress_from(&borrowed.list, &borrowed.source) {
        Ok(added) => {
            report::note(format_args!(
                "{} on the suppression list from {}, {added} of them new to `{}`",
                crate::text::Count("address", borrowed.list.len() as u64),
                borrowed.source,
                state.display()
            ));
            Ok(())
        }
        Err(error) => {
            report::error(format_args!("{error}; nothing was sent"));
            Err(Exit::Failed)
        }
    }
}

/// What apply printed for one run of the selected campaigns.
fn print(output: Output, reports: &[Report]) {
    match output {
        Output::Json => println!("{}", serde_json::json!({ "campaigns": reports })),
        Output::Text => {
            for report in reports {
                print!("{}", text(report));
            }
        }
    }
}

/// Sends `campaigns` as `shard` with the store at `state` (inside the state folder `root`,
/// or `root` itself without shards): prepares every one (refusing before anything is
/// sent), then reconciles each.
fn send(
    args: &ApplyArgs,
    manifests: &Manifests,
    campaigns: &[&Campaign],
    state: &Path,
    shard: Shard,
    root: &Path,
    borrowed: Option<&Borrowed>,
) -> Result<(Exit, Vec<Report>), Exit> {
    let path = &args.path.path();
    let whole = shard.count.get() == 1;
    // A shard's store is created on first use inside a state folder that must exist.
    let sending = session::open_for_sending(state, args.require.require_state && whole)?;
    if whole {
        // Without shards the state folder is the store, judged (and made) by opening it;
        // the claim comes after, still before anything is sent.
        super::shards::claim(root, campaigns, Shard::WHOLE)?;
    } else {
        // The shard's claim is tied to this store before it sends: another store in its
        // place is refused from now on, even if this run is killed.
        super::shards::bind(root, campaigns, shard)?;
    }
    if let Some(borrowed) = borrowed {
        copy_suppressions(&sending.store, borrowed, state)?;
    }
    let runtime = session::runtime();
    // Transports are built while preparing, and lettre's connection pool needs a runtime.
    let _entered = runtime.enter();
    let (handle, stop) = Stop::new();
    let output = args.output.output;
    // Other herald processes read the store through this one while it runs.
    let _socket = crate::serve::socket::serve(sending.store.clone());
    let ctx = Context {
        store: sending.store,
        again: crate::plan::Again {
            uncertain: args.again.resend_uncertain,
            failed: args.again.retry_failed.clone(),
        },
        stop,
        progress: super::progress::bars(output == Output::Text && std::io::stderr().is_terminal()),
        recovered: sending.recovered,
        git: crate::git::revision(path, state),
        limits: TransportLimits::shared(manifests, shard.count),
        breakers: Breakers::default(),
        live: crate::live::Live::default(),
        metrics: std::sync::Arc::default(),
    };

    // Every campaign is checked and rendered before any is sent to.
    let mut prepared = Vec::new();
    for &campaign in campaigns {
        match reconcile::prepare(campaign, &ctx) {
            Ok(ready) => {
                for warning in ready.warnings() {
                    report::warning(format_args!("campaign `{}`: {warning}", campaign.name));
                }
                prepared.push((campaign, ready));
            }
            Err(error) => {
                report::refused(&campaign.name, error);
                return Err(Exit::Refused);
            }
        }
    }

    let mut reports = Vec::new();
    let mut failed = false;
    runtime.block_on(async {
        tokio::spawn(stop_on_signal(handle));
        for (campaign, ready) in prepared {
            let name = &campaign.name;
            // A transport found down in this run stays down for it: the campaigns after
            // wait too, everyone due, without knocking again.
            if let Some(waiting) = reconcile::waiting_for_transport(&ready, &ctx) {
                reports.push(waiting);
                continue;
            }
            match reconcile::execute(ready, &ctx).await {
                Ok(report) => reports.push(report),
                Err(error) => {
                    report::error(format_args!(
                        "campaign `{name}`: {error}; stopped (see `herald status {name}`)"
                    ));
                    failed = true;
                    // The same policy as watch's: an error of one campaign leaves the
                    // others to go on, unless nothing can go on.
                    if reconcile::error_policy(campaign, &error, 1) == Action::Stop {
                        break;
                    }
                }
            }
            if ctx.stop.is_set() {
                break;
            }
        }
    });
    runtime.shutdown_background();
    // One message per transport that is down, naming the campaigns waiting for it.
    for down in ctx.breakers.down() {
        let waiting: Vec<&str> = reports
            .iter()
            .filter(|r| {
                r.down
                    .as_ref()
                    .is_some_and(|d| d.transport == down.transport)
            })
            .map(|r| r.name.as_str())
            .collect();
        report::error(format_args!(
            "{down}; nobody was charged with it: {} {} for it, everyone not yet sent still due; \
             run apply again once it is back",
            List::and_ticked(&waiting),
            if waiting.len() == 1 { "waits" } else { "wait" }
        ));
    }

    let exit = if reports.iter().any(|r| r.ending == Ending::Halted) {
        Exit::Halted
    } else if failed || reports.iter().any(Report::failed_part_way) {
        Exit::Failed
    } else {
        Exit::Success
    };
    Ok((exit, reports))
}

/// Ctrl-C or SIGTERM: ask every reconcile to stop after the call in flight.
pub(super) async fn stop_on_signal(handle: StopHandle) {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM can be handled");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    report::note("stopping: finishing the calls in flight, then recording them");
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
        Ending::TransportDown => writeln!(
            out,
            "{name}: sent {} of {}; the rest wait for transport `{}`",
            report.sent,
            report.due,
            report.down.as_ref().map_or("", |d| d.transport.as_str())
        ),
    };
    let mut problems = Vec::new();
    for (count, what) in [
        (report.failed, "failed"),
        (report.uncertain, "uncertain"),
        (report.not_sent, "not sent (due again next run)"),
        (
            report.deferred,
            "left for their next window (it closed before their call)",
        ),
        (report.expired, "expired (not sent by not_after)"),
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
    if let Some(next) = &report.next_due {
        let _ = writeln!(
            out,
            "  schedule: the next become due at {next}; run apply again then (watch does)"
        );
    }
    if report.previously_uncertain + report.uncertain + report.recovered > 0 {
        let _ = writeln!(
            out,
            "  see `herald status {name} --recipients uncertain`; `apply --resend-uncertain` sends to them again"
        );
    }
    out
}
