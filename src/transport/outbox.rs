//! The embedded default transport: one RFC 5322 file per message under `dir/<campaign>/`.
//!
//! Each file is written as `.<name>.tmp` beside its final name and renamed into place, so
//! a reader (or a crash) never sees half a message. Messages are built and written on
//! all cores. Names are `r<revision>-<address hash>-a<attempt>.eml`: one file per
//! recipient per attempt.
//!
//! # Guarantees
//! - A file is never overwritten: the rename refuses an existing name, and a second
//!   message that would take the same name gets `-2`, `-3`, ... before `.eml`. So the
//!   outbox stays an honest record: a message sent twice shows as two files.
//!
//! # Caveats
//! - Files are not fsynced one by one: they survive a killed process, not a power cut.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::{Deliver, Envelope, Outcome};
use crate::manifest::Address;
use crate::manifest::{Campaign, Settings, Transport};

pub struct Outbox {
    dir: PathBuf,
    from: Address,
    reply_to: Option<Address>,
    revision: u32,
}

impl Outbox {
    pub fn new(transport: &Transport, campaign: &Campaign) -> Self {
        let dir = match &transport.settings {
            Settings::Outbox { dir } => dir.clone(),
            // Only an outbox transport makes an `Outbox`.
            _ => PathBuf::from("outbox"),
        };
        Self {
            dir: dir.join(&campaign.name),
            from: campaign.from.clone(),
            reply_to: campaign.reply_to.clone(),
            revision: campaign.revision.number,
        }
    }
}

impl Deliver for Outbox {
    async fn deliver(&self, batch: Vec<Envelope>) -> Vec<(Envelope, Outcome)> {
        let dir = self.dir.clone();
        let from = self.from.clone();
        let reply_to = self.reply_to.clone();
        let revision = self.revision;
        tokio::task::spawn_blocking(move || {
            if let Err(error) = std::fs::create_dir_all(&dir) {
                let reason = format!("cannot create `{}`: {error}", dir.display());
                let outcome = Outcome::Unavailable {
                    cause: super::Cause::Storage,
                    reason,
                };
                return super::each(batch, &outcome);
            }
            batch
                .into_par_iter()
                .map(|envelope| {
                    let outcome = match build(&from, reply_to.as_ref(), &envelope) {
                        Ok(bytes) => write(&dir, revision, &envelope, &bytes),
                        Err(reason) => Outcome::Failed { reason },
                    };
                    (envelope, outcome)
                })
                .collect()
        })
        .await
        .expect("writing the outbox does not panic")
    }
}

/// The message as RFC 5322 bytes, or why it cannot be built (a permanent failure).
fn build(
    from: &Address,
    reply_to: Option<&Address>,
    envelope: &Envelope,
) -> Result<Vec<u8>, String> {
    crate::message::build(
        from,
        reply_to,
        &envelope.to,
        &envelope.message.whole(),
        Some(envelope.message_id.clone()),
    )
    .map(|message| message.formatted())
    .map_err(|error| error.to_string())
}

fn write(dir: &Path, revision: u32, envelope: &Envelope, bytes: &[u8]) -> Outcome {
    let stem = format!(
        "r{revision}-{}-a{}",
        crate::digest::short(&envelope.key),
        envelope.attempt
    );
    let temporary = dir.join(format!(".{stem}.eml.tmp"));
    let result = std::fs::write(&temporary, bytes).and_then(|()| place(dir, &temporary, &stem));
    match result {
        Ok(name) => Outcome::Sent { id: name },
        Err(error) => {
            let _ = std::fs::remove_file(&temporary);
            Outcome::Unavailable {
                cause: super::Cause::Storage,
                reason: format!(
                    "cannot write `{}`: {error}",
                    dir.join(format!("{stem}.eml")).display()
                ),
            }
        }
    }
}

/// Renames `temporary` to `<stem>.eml`, or `<stem>-2.eml`, ... whichever does not exist
/// yet; the name it took.
fn place(dir: &Path, temporary: &Path, stem: &str) -> std::io::Result<String> {
    for copy in 1..=10_000 {
        let name = if copy == 1 {
            format!("{stem}.eml")
        } else {
            format!("{stem}-{copy}.eml")
        };
        match rename_new(temporary, &dir.join(&name)) {
            Ok(()) => return Ok(name),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(error) => return Err(error),
        }
    }
    Err(std::io::Error::other(
        "10,000 messages to one recipient already",
    ))
}

/// Renames `from` to `to` unless `to` exists (then `AlreadyExists`), atomically.
fn rename_new(from: &Path, to: &Path) -> std::io::Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        // A file system without RENAME_NOREPLACE: a hard link refuses an existing name too.
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {
            std::fs::hard_link(from, to)?;
            std::fs::remove_file(from)
        }
        Err(errno) => Err(errno.into()),
    }
}
