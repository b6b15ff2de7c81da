//! `herald suppressions list|add|remove|export`: the store's own suppression list, read
//! and changed directly, or through the herald process that holds the store.

use std::fmt::Write as _;

use super::args::{Output, StateArg, SuppressionsCommand};
use super::{Exit, report, session};
use crate::serve::socket::{self, Answer, Request};
use crate::store::{Store, StoreError};

pub fn run(command: &SuppressionsCommand) -> Exit {
    let (state, request) = match command {
        SuppressionsCommand::List { state, .. } | SuppressionsCommand::Export { state } => {
            (state, Request::Suppressions)
        }
        SuppressionsCommand::Add {
            address,
            reason,
            state,
        } => {
            let Some(address) = valid(address) else {
                return Exit::Refused;
            };
            let reason = reason.trim();
            if reason.is_empty() || reason.contains(['\r', '\n']) {
                report::error("--reason needs a reason on one line");
                return Exit::Refused;
            }
            (
                state,
                Request::Suppress {
                    address,
                    reason: reason.to_owned(),
                },
            )
        }
        SuppressionsCommand::Remove { address, state } => {
            let Some(address) = valid(address) else {
                return Exit::Refused;
            };
            (state, Request::Unsuppress { address })
        }
    };
    let json = match ask(state, &request) {
        Ok(json) => json,
        Err(exit) => return exit,
    };
    match command {
        SuppressionsCommand::List { output, .. } => match output.output {
            Output::Json => println!("{json}"),
            Output::Text => print!("{}", text(&json)),
        },
        SuppressionsCommand::Export { .. } => print!("{}", csv(&json)),
        SuppressionsCommand::Add { address, .. } => {
            if json["added"] == true {
                println!("{address}: suppressed for every campaign of the store");
            } else {
                println!("{address}: already suppressed (the first reason stays)");
            }
        }
        SuppressionsCommand::Remove { address, .. } => {
            if json["removed"] == true {
                println!("{address}: no longer suppressed; campaigns may mail it again");
            } else {
                println!("{address}: was not suppressed");
            }
        }
    }
    Exit::Success
}

/// The normalised address, or `None` after saying why it is not one.
fn valid(address: &str) -> Option<String> {
    let trimmed = address.trim();
    if crate::address::is_valid(trimmed) {
        Some(crate::audience::normalize(trimmed))
    } else {
        report::error(format_args!(
            "`{address}` is not an email address (write a bare address, like `ann@example.com`)"
        ));
        None
    }
}

/// Answers `request` from the store, or from the process that holds it. A list of a store
/// that does not exist yet is empty; a change to one is refused.
fn ask(state: &StateArg, request: &Request) -> Result<serde_json::Value, Exit> {
    let path = session::state_of(state, None);
    let answer = match Store::open_existing(&path) {
        Ok(Some(store)) => socket::answer(&store, request),
        Ok(None) if matches!(request, Request::Suppressions) => {
            return Ok(serde_json::json!({ "suppressions": [] }));
        }
        Ok(None) => {
            report::error(format_args!(
                "no state store at {}: create it with `herald init` (or apply once) first",
                path.display()
            ));
            return Err(Exit::Refused);
        }
        Err(locked @ StoreError::Locked { .. }) => match socket::ask(&path, request) {
            Ok(answer) => answer,
            Err(error) => {
                report::error(format_args!("{locked}; {error}"));
                return Err(Exit::Refused);
            }
        },
        Err(error) => {
            report::error(error);
            return Err(Exit::Refused);
        }
    };
    match answer {
        Answer::Ok(json) => Ok(json),
        Answer::Refused(message) => {
            report::error(message);
            Err(Exit::Refused)
        }
        Answer::Failed(message) => {
            report::error(message);
            Err(Exit::Failed)
        }
    }
}

fn entries(json: &serde_json::Value) -> impl Iterator<Item = [&str; 4]> {
    json["suppressions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|entry| {
            ["address", "reason", "campaign", "at"].map(|field| entry[field].as_str().unwrap_or(""))
        })
}

fn text(json: &serde_json::Value) -> String {
    let mut out = String::new();
    for [address, reason, campaign, at] in entries(json) {
        let from = if campaign.is_empty() {
            String::new()
        } else {
            format!(" (campaign {campaign})")
        };
        let _ = writeln!(out, "{address}  {reason}{from}  {at}");
    }
    if out.is_empty() {
        out.push_str("no suppressed addresses\n");
    }
    out
}

/// `email,reason,campaign,at`, quoted by the csv crate where a field needs it.
fn csv(json: &serde_json::Value) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let _ = writer.write_record(["email", "reason", "campaign", "at"]);
    for entry in entries(json) {
        let _ = writer.write_record(entry);
    }
    String::from_utf8(writer.into_inner().unwrap_or_default()).unwrap_or_default()
}
