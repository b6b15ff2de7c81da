//! `herald status`: per-campaign progress from the state store, or, while another herald
//! process holds the store, from that process over the store's socket.

use std::fmt::Write as _;

use super::args::StatusArgs;
use super::{Exit, Listed, Output, report, session};
use crate::manifest::Stage;
use crate::serve::socket::{self, Answer, Request};
use crate::status::{self, CampaignStatus, Query, StatusError};
use crate::store::{Store, StoreError};
use crate::text::Count;

pub fn run(args: &StatusArgs) -> Exit {
    let state = session::state_without_path(&args.state);
    let query = Query {
        campaign: args.name.clone(),
        recipients: args.recipients.map(|listed| match listed {
            Listed::Failed => status::Listed::Failed,
            Listed::Uncertain => status::Listed::Uncertain,
        }),
    };
    let statuses = match Store::open_existing(&state) {
        Ok(Some(store)) => match status::collect(&store, &query) {
            Ok(statuses) => statuses,
            Err(error @ StatusError::Unknown { .. }) => {
                report::error(error);
                return Exit::Refused;
            }
            Err(error) => {
                report::error(error);
                return Exit::Failed;
            }
        },
        Ok(None) => {
            match args.output.output {
                Output::Json => println!("{}", serde_json::json!({ "campaigns": [] })),
                Output::Text => println!(
                    "no state store at {}: nothing has been applied yet",
                    state.display()
                ),
            }
            return Exit::Success;
        }
        // Another herald holds the store: ask it.
        Err(locked @ StoreError::Locked { .. }) => {
            match socket::ask(&state, &Request::Status(query)) {
                Ok(Answer::Ok(json)) => {
                    match serde_json::from_value::<Vec<CampaignStatus>>(json["campaigns"].clone()) {
                        Ok(statuses) => statuses,
                        Err(error) => {
                            report::error(format_args!("an answer herald cannot read: {error}"));
                            return Exit::Failed;
                        }
                    }
                }
                Ok(Answer::Refused(message)) => {
                    report::error(message);
                    return Exit::Refused;
                }
                Ok(Answer::Failed(message)) => {
                    report::error(message);
                    return Exit::Failed;
                }
                Err(error) => {
                    report::error(format_args!("{locked}; {error}"));
                    return Exit::Refused;
                }
            }
        }
        Err(error) => {
            report::error(error);
            return Exit::Refused;
        }
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
    let _ = writeln!(out, "  sent       {}", c.sent);
    let _ = writeln!(out, "  failed     {}", c.failed);
    let _ = writeln!(out, "  uncertain  {}", c.uncertain + c.in_flight);
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
    for r in status.recipients.iter().flatten() {
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
