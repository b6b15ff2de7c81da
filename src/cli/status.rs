//! `herald status`: per-campaign progress, read from the state store alone.

use std::fmt::Write as _;

use serde::Serialize;

use super::args::StatusArgs;
use super::{Exit, Listed, Output, report, session};
use crate::git::GitRevision;
use crate::manifest::model::Stage;
use crate::store::{Status, StatusCounts, Store, StoreError, timestamp};
use crate::text::{Count, List};

/// One campaign in `status -o json`; see README.
#[derive(Debug, Serialize)]
struct CampaignStatus {
    name: String,
    revision: u32,
    stage: Option<Stage>,
    paused: bool,
    halted: Option<String>,
    first_apply: Option<String>,
    last_apply: Option<String>,
    /// The git commit of the manifests at the last apply.
    git: Option<GitRevision>,
    #[serde(flatten)]
    counts: StatusCounts,
    #[serde(skip_serializing_if = "Option::is_none")]
    recipients: Option<Vec<RecipientStatus>>,
}

#[derive(Debug, Serialize)]
struct RecipientStatus {
    address: String,
    status: &'static str,
    attempts: u32,
    revision: u32,
    reason: Option<String>,
    updated: String,
}

pub fn run(args: &StatusArgs) -> Exit {
    let state = session::state_without_path(&args.state);
    let output = args.output.output;
    let store = match session::open_existing(&state) {
        Ok(Some(store)) => store,
        Ok(None) => {
            match output {
                Output::Json => println!("{}", serde_json::json!({ "campaigns": [] })),
                Output::Text => println!(
                    "no state store at {}: nothing has been applied yet",
                    state.display()
                ),
            }
            return Exit::Success;
        }
        Err(exit) => return exit,
    };
    let statuses = match collect(&store, args.name.as_deref(), args.recipients) {
        Ok(Some(statuses)) => statuses,
        Ok(None) => return Exit::Refused,
        Err(error) => {
            report::error(error);
            return Exit::Failed;
        }
    };
    match output {
        Output::Json => println!("{}", serde_json::json!({ "campaigns": statuses })),
        Output::Text => {
            for status in &statuses {
                print!("{}", text(status));
            }
        }
    }
    Exit::Success
}

/// Every campaign's status, or `None` after reporting an unknown name.
fn collect(
    store: &Store,
    only: Option<&str>,
    listed: Option<Listed>,
) -> Result<Option<Vec<CampaignStatus>>, StoreError> {
    let names = store.campaign_names()?;
    if let Some(name) = only {
        if !names.iter().any(|n| n == name) {
            report::error(format_args!(
                "no campaign named `{name}` in the state store {}; it has: {}",
                store.path().display(),
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    List::and_ticked(&names).to_string()
                }
            ));
            return Ok(None);
        }
    }
    let mut statuses = Vec::new();
    for name in names.into_iter().filter(|n| only.is_none_or(|o| o == n)) {
        let campaign = store.campaign(&name)?;
        let record = campaign.record()?.unwrap_or_default();
        let recipients = match listed {
            None => None,
            Some(listed) => {
                let status = match listed {
                    Listed::Failed => Status::Failed,
                    Listed::Uncertain => Status::Uncertain,
                };
                let mut listed = campaign.list(status)?;
                if status == Status::Uncertain {
                    listed.extend(campaign.list(Status::InFlight)?);
                }
                Some(
                    listed
                        .into_iter()
                        .map(|(address, r)| RecipientStatus {
                            address,
                            status: r.status.as_str(),
                            attempts: r.attempts,
                            revision: r.revision,
                            reason: r.reason.map(|r| crate::secret::scrub(&r).into_owned()),
                            updated: timestamp(r.updated),
                        })
                        .collect(),
                )
            }
        };
        statuses.push(CampaignStatus {
            name,
            revision: record.revision,
            stage: record.stage,
            paused: record.paused,
            halted: record.halted,
            first_apply: record.first_apply.map(timestamp),
            last_apply: record.last_apply.map(timestamp),
            git: record.git,
            counts: campaign.counts(),
            recipients,
        });
    }
    Ok(Some(statuses))
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
    let c = &status.counts;
    let _ = writeln!(out, "  sent       {}", c.sent);
    let _ = writeln!(out, "  failed     {}", c.failed);
    let _ = writeln!(out, "  uncertain  {}", c.uncertain + c.in_flight);
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
