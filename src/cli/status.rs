//! `herald status`: per-campaign progress from the state store, or, while another herald
//! process holds the store, from that process over the store's socket.

use std::fmt::Write as _;
use std::path::Path;

use super::args::StatusArgs;
use super::{Exit, Listed, Output, report, session};
use crate::manifest::Stage;
use crate::serve::socket::{self, Answer, Request};
use crate::status::{self, CampaignStatus, Query, StatusError};
use crate::store::{Store, StoreError};
use crate::text::Count;

pub fn run(args: &StatusArgs) -> Exit {
    if let Some(path) = args.path.as_deref().filter(|p| !p.exists()) {
        report::error(format_args!("`{}`: no such file or folder", path.display()));
        return Exit::Refused;
    }
    let state = session::state_of(&args.state, args.path.as_deref());
    let query = Query {
        campaign: args.name.clone(),
        recipients: args.recipients.map(|listed| match listed {
            Listed::Failed => status::Listed::Failed,
            Listed::Uncertain => status::Listed::Uncertain,
            Listed::Expired => status::Listed::Expired,
            Listed::Sent => status::Listed::Sent,
        }),
    };
    // A sharded campaign keeps a store per shard inside the state folder.
    let shards = match crate::store::shards::stores(&state) {
        Ok(shards) => shards,
        Err(error) => {
            report::error(error);
            return Exit::Refused;
        }
    };
    let statuses = if shards.is_empty() {
        match at(&state, &query) {
            Ok(Some(statuses)) => statuses,
            Ok(None) => return nothing_applied(args, &state),
            Err(exit) => return exit,
        }
    } else {
        let mut parts = Vec::new();
        match at(&state, &query) {
            Ok(Some(statuses)) => parts.push((crate::audience::Shard::WHOLE, statuses)),
            Ok(None) => {}
            Err(exit) => return exit,
        }
        for (shard, path) in shards {
            match at(&path, &query) {
                Ok(Some(statuses)) => parts.push((shard, statuses)),
                Ok(None) => {}
                Err(exit) => return exit,
            }
        }
        status::aggregate(parts)
    };
    match args.output.output {
        Output::Json => println!("{}", serde_json::json!({ "campaigns": statuses })),
        Output::Text => {
            for status in &statuses {
                print!("{}", text(status));
            }
        }
    }
    Exit::Success
}

/// The campaigns of the store at `state`, read at rest or from the herald holding it;
/// `None` when there is no store.
fn at(state: &Path, query: &Query) -> Result<Option<Vec<CampaignStatus>>, Exit> {
    let statuses = match Store::open_existing(state) {
        Ok(Some(store)) => match status::collect(&store, query) {
            Ok(statuses) => statuses,
            Err(error @ StatusError::Unknown { .. }) => {
                report::error(error);
                return Err(Exit::Refused);
            }
            Err(error) => {
                report::error(error);
                return Err(Exit::Failed);
            }
        },
        Ok(None) => return Ok(None),
        // Another herald holds the store: ask it.
        Err(locked @ StoreError::Locked { .. }) => {
            match socket::ask(state, &Request::Status(query.clone())) {
                Ok(Answer::Ok(json)) => {
                    match serde_json::from_value::<Vec<CampaignStatus>>(json["campaigns"].clone()) {
                        Ok(statuses) => statuses,
                        Err(error) => {
                            report::error(format_args!("an answer herald cannot read: {error}"));
                            return Err(Exit::Failed);
                        }
                    }
                }
                Ok(Answer::Refused(message)) => {
                    report::error(message);
                    return Err(Exit::Refused);
                }
                Ok(Answer::Failed(message)) => {
                    report::error(message);
                    return Err(Exit::Failed);
                }
                Err(error) => {
                    report::error(format_args!("{locked}; {error}"));
                    return Err(Exit::Refused);
                }
            }
        }
        Err(error) => {
            report::error(error);
            return Err(Exit::Refused);
        }
    };
    Ok(Some(statuses))
}

/// There is no store where `args` say: where herald looked, and why there. Without a
/// PATH that may be the wrong place, so it is not an error; with one, it is.
fn nothing_applied(args: &StatusArgs, state: &Path) -> Exit {
    let why = if args.state.state.is_some() {
        "given by --state".to_owned()
    } else if let Some(path) = &args.path {
        format!("the store of `{}`", path.display())
    } else if Path::new("campaigns").is_dir() {
        "the store of `campaigns`; pass --path PATH for other manifests".to_owned()
    } else {
        "the store of `.`, as there is no `campaigns` folder here; pass --path PATH for other manifests"
            .to_owned()
    };
    let given = args.path.is_some();
    let message = format!(
        "no state store at {} ({why}): nothing has been applied there yet",
        state.display()
    );
    match (args.output.output, given) {
        (Output::Json, _) => println!(
            "{}",
            serde_json::json!({ "campaigns": [], "state": { "path": state, "exists": false } })
        ),
        (Output::Text, false) => println!("{message}"),
        (Output::Text, true) => {}
    }
    if given {
        report::error(message);
        Exit::Refused
    } else {
        Exit::Success
    }
}

fn text(status: &CampaignStatus) -> String {
    let mut out = String::new();
    let stage = status.stage.map_or("-", Stage::as_str);
    let condition = match (&status.halted, status.paused) {
        (Some(_), _) => "halted",
        (None, true) => "paused",
        (None, false) => "active",
    };
    let _ = writeln!(
        out,
        "campaign {} (revision {}, stage {stage}, {condition})",
        status.name, status.revision
    );
    if let Some(reason) = &status.halted {
        let _ = writeln!(out, "  halted     {reason}");
    }
    if let Some(down) = &status.down {
        let _ = writeln!(
            out,
            "  waiting    for transport `{}`, down since {}: {}",
            down.transport, down.since, down.reason
        );
    }
    let c = &status.counts;
    let by_revision = &status.sent_by_revision;
    let mixed = by_revision.len() > 1 || by_revision.iter().any(|r| r.revision != status.revision);
    if mixed {
        let parts: Vec<String> = by_revision
            .iter()
            .map(|r| format!("{} of revision {}", r.sent, r.revision))
            .collect();
        let _ = writeln!(out, "  sent       {} ({})", c.sent, parts.join(", "));
    } else {
        let _ = writeln!(out, "  sent       {}", c.sent);
    }
    let _ = writeln!(out, "  failed     {}", c.failed);
    let _ = writeln!(out, "  uncertain  {}", c.uncertain + c.in_flight);
    if c.expired > 0 {
        let _ = writeln!(out, "  expired    {} (not sent by not_after)", c.expired);
    }
    if let Some(next) = &status.next_due {
        let _ = writeln!(out, "  next due   {next}");
    }
    let f = &status.feedback;
    if f.bounced + f.complained + f.unsubscribed > 0 {
        let _ = writeln!(
            out,
            "  feedback   {} bounced, {} complained, {} unsubscribed (suppressed from now on)",
            f.bounced, f.complained, f.unsubscribed
        );
    }
    if let Some(last) = &status.last_apply {
        let _ = writeln!(out, "  last apply {last}");
    }
    if let Some(git) = &status.git {
        let dirty = if git.dirty {
            " (with uncommitted changes)"
        } else {
            ""
        };
        let _ = writeln!(out, "  applied    commit {}{dirty}", git.commit);
    }
    for part in &status.shards {
        let c = &part.counts;
        let _ = writeln!(
            out,
            "  shard {} of {}: sent {}, failed {}, uncertain {}{}",
            part.shard,
            part.shards,
            c.sent,
            c.failed,
            c.uncertain + c.in_flight,
            if c.expired > 0 {
                format!(", expired {}", c.expired)
            } else {
                String::new()
            }
        );
    }
    for r in status.recipients.iter().flatten() {
        if r.status == "sent" {
            let _ = writeln!(out, "  {} sent at {}", r.address, r.updated);
            continue;
        }
        let reason = r.reason.as_deref().unwrap_or_default();
        let _ = writeln!(
            out,
            "  {} {} after {}: {reason}",
            r.address,
            r.status,
            Count("attempt", u64::from(r.attempts))
        );
    }
    out
}
