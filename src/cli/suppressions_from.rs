//! `apply --suppressions-from SOURCE`: another store's suppression list, read whole before
//! anything is sent. Shards of an Indexed Job send from pods of their own, each with a
//! store of its own, while unsubscribes and complaints reach the service
//! (`herald watch --listen`) and its store; each shard reads that list this way.
//!
//! # Guarantees
//! - Read whole or not at all: the answer must parse and hold as many entries as it says
//!   (`count`); a list that cannot be read refuses the run (exit 2 for a token missing or
//!   refused or a service without the endpoint, 1 for what may pass: unreachable, a 5xx,
//!   an answer cut short), and nothing is sent.
//! - The list is copied into the store the run sends from (`Store::suppress_from`) before
//!   anything is sent, so a run without the flag later still skips them.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::against::{self, Asked, Source, Unread, failed, refused};
use crate::serve::socket::{self, Answer, Request};
use crate::serve::suppressions::SUPPRESSIONS_TOKEN_ENV;
use crate::store::{Store, StoreError, Suppression};

/// The list as `GET /suppressions` and `herald suppressions list -o json` give it.
#[derive(Deserialize)]
struct Listed {
    count: usize,
    suppressions: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    address: String,
    reason: String,
    campaign: Option<String>,
    at: String,
}

/// The suppression list of the store at `source`, by normalised address.
pub fn read(source: &Source) -> Result<BTreeMap<String, Suppression>, Unread> {
    let listed: Listed = match source {
        Source::Service(url) => against::ask(&Asked {
            endpoint: format!("{url}/suppressions"),
            env: SUPPRESSIONS_TOKEN_ENV,
            flag: format!("--suppressions-from {source}"),
            what: "suppression list",
            token: "suppressions token",
        })?,
        Source::Folder(path) => match Store::open_existing(path) {
            Ok(Some(store)) => return Ok(store.suppressions()),
            Ok(None) => {
                return Err(refused(format_args!(
                    "there is no state store in {}",
                    path.display()
                )));
            }
            Err(locked @ StoreError::Locked { .. }) => {
                match socket::ask(path, &Request::Suppressions) {
                    Ok(Answer::Ok(json)) => serde_json::from_value(json).map_err(|error| {
                        failed(format_args!("an answer herald cannot read: {error}"))
                    })?,
                    Ok(Answer::Refused(message)) => return Err(refused(message)),
                    Ok(Answer::Failed(message)) => return Err(failed(message)),
                    Err(error) => return Err(refused(format_args!("{locked}; {error}"))),
                }
            }
            Err(error) => return Err(refused(error)),
        },
    };
    if listed.count != listed.suppressions.len() {
        return Err(failed(format_args!(
            "the suppression list from {source} says it holds {} addresses but {} arrived",
            listed.count,
            listed.suppressions.len()
        )));
    }
    Ok(listed
        .suppressions
        .into_iter()
        .map(|entry| {
            let at = entry
                .at
                .parse::<jiff::Timestamp>()
                .ok()
                .and_then(|t| u64::try_from(t.as_second()).ok())
                .unwrap_or_default();
            let suppression = Suppression {
                reason: entry.reason,
                campaign: entry.campaign,
                at,
            };
            (crate::audience::normalize(&entry.address), suppression)
        })
        .collect())
}
