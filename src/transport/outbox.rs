//! The embedded default transport: one RFC 5322 file per message under `dir/<campaign>/`.
//!
//! Files are written to `dir/<campaign>/.tmp/` and renamed into place, so a reader (or a
//! crash) never sees half a message. Names are `r<revision>-<address hash>-a<attempt>.eml`:
//! one file per recipient per attempt, so a message sent twice would show as two files.
//!
//! # Caveats
//! - Files are not fsynced one by one: they survive a killed process, not a power cut.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::{Envelope, Outcome};
use crate::manifest::model::Address;
use crate::manifest::{Campaign, Transport};

pub struct Outbox {
    dir: PathBuf,
    from: Address,
    reply_to: Option<Address>,
    revision: u32,
}

impl Outbox {
    pub fn new(transport: &Transport, campaign: &Campaign) -> Self {
        let dir = transport
            .spec
            .dir
            .clone()
            .expect("validated: an outbox transport has a dir");
        Self {
            dir: dir.join(&campaign.name),
            from: campaign.spec.from.clone(),
            reply_to: campaign.spec.reply_to.clone(),
            revision: campaign.spec.revision,
        }
    }

    pub async fn send(&self, batch: Vec<Envelope>) -> Vec<(Envelope, Outcome)> {
        let dir = self.dir.clone();
        let from = self.from.clone();
        let reply_to = self.reply_to.clone();
        let revision = self.revision;
        tokio::task::spawn_blocking(move || {
            let tmp = dir.join(".tmp");
            if let Err(error) = std::fs::create_dir_all(&tmp) {
                let reason = format!("cannot create `{}`: {error}", tmp.display());
                return batch
                    .into_iter()
                    .map(|e| {
                        let reason = reason.clone();
                        (e, Outcome::NotSent { reason })
                    })
                    .collect();
            }
            batch
                .into_par_iter()
                .map(|envelope| {
                    let outcome = write(&dir, &from, reply_to.as_ref(), revision, &envelope);
                    (envelope, outcome)
                })
                .collect()
        })
        .await
        .expect("writing the outbox does not panic")
    }
}

fn write(
    dir: &Path,
    from: &Address,
    reply_to: Option<&Address>,
    revision: u32,
    envelope: &Envelope,
) -> Outcome {
    let message = match crate::message::build(
        from,
        reply_to,
        &envelope.to,
        &envelope.rendered,
        Some(envelope.message_id.clone()),
    ) {
        Ok(message) => message,
        Err(error) => {
            return Outcome::Failed {
                reason: error.to_string(),
            };
        }
    };
    let name = format!(
        "r{revision}-{}-a{}.eml",
        crate::digest::short(&envelope.key),
        envelope.attempt
    );
    let temporary = dir.join(".tmp").join(&name);
    let result = std::fs::write(&temporary, message.formatted())
        .and_then(|()| std::fs::rename(&temporary, dir.join(&name)));
    match result {
        Ok(()) => Outcome::Sent { id: name },
        Err(error) => {
            let _ = std::fs::remove_file(&temporary);
            Outcome::NotSent {
                reason: format!("cannot write `{}`: {error}", dir.join(&name).display()),
            }
        }
    }
}
