//! The producer side of a send: a thread that walks the audience again (`plan::select`,
//! the walk plan makes), renders the recipients due now on all cores, and packs them into
//! calls (`plan::packing`), as plan counted them.
//!
//! It runs ahead of the sender by a bounded channel of calls, so memory stays flat however
//! large the audience is. When the sender stops early it drops the receiver, and the
//! producer stops at its next send.

use std::sync::Arc;

use rayon::prelude::*;
use tokio::sync::mpsc::Sender;

use super::ReconcileError;
use crate::audience::Met;
use crate::keyhash::Set;
use crate::manifest::Campaign;
use crate::manifest::TransportKind;
use crate::plan::Due;
use crate::plan::packing::{self, Packer};
use crate::plan::{Again, PlanError, Selected, StateView, row_label, select};
use crate::render::Renderer;
use crate::store::{CampaignStore, Change, RecipientRecord, Status};
use crate::transport::{Envelope, Message, Shaped, Tags, message_id};

/// Why a recipient is recorded `expired`.
pub const EXPIRED: &str = "not sent by the schedule's not_after";

/// One call's envelopes, or why producing failed.
pub type Call = Result<Vec<Envelope>, ReconcileError>;

/// What the producer needs.
pub struct Producer {
    pub campaign: Arc<Campaign>,
    pub renderer: Arc<Renderer>,
    pub store: CampaignStore,
    /// Who is due again although the store has an outcome for them.
    pub again: Again,
    pub kind: TransportKind,
    /// The audience's rows, as the plan counted them.
    pub rows: usize,
    /// The instant the plan judged the schedule at.
    pub at: jiff::Timestamp,
    pub call_size: usize,
    /// For a transport that shares content across a call: proves each message and keeps
    /// only its values.
    pub tags: Option<Tags>,
}

/// Why producing ended early.
enum Failure {
    /// The receiver went away: not an error, the sender stopped on purpose.
    Stopped,
    Error(ReconcileError),
}

impl From<PlanError> for Failure {
    fn from(error: PlanError) -> Self {
        Self::Error(error.into())
    }
}

impl Producer {
    pub fn spawn(self, calls: Sender<Call>) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || match self.produce(&calls) {
            Ok(()) | Err(Failure::Stopped) => {}
            Err(Failure::Error(error)) => {
                let _ = calls.blocking_send(Err(error));
            }
        })
    }

    fn produce(&self, calls: &Sender<Call>) -> Result<(), Failure> {
        let state = StateView {
            store: &self.store,
            again: &self.again,
        };
        let mut packer = Packer::new(self.call_size);
        let mut full: Vec<Vec<Envelope>> = Vec::new();
        let send = |full: &mut Vec<Vec<Envelope>>| {
            for call in full.drain(..) {
                calls
                    .blocking_send(Ok(call))
                    .map_err(|_| Failure::Stopped)?;
            }
            Ok::<_, Failure>(())
        };
        // The store's index tells duplicate rows; a set of the walk's own only if another
        // walk holds the index.
        let met: Box<dyn Met> = match self.store.marks() {
            Some(marks) => Box::new(marks),
            None => Box::new(Set::with_capacity(self.rows)),
        };
        select(&self.campaign, Some(state), Some(met), self.at, |chunk| {
            let (due, rest): (Vec<Selected>, Vec<Selected>) =
                chunk.into_iter().partition(|s| s.due.is_now());
            self.expire(rest).map_err(Failure::Error)?;
            let ready: Vec<Result<(Envelope, Option<String>), PlanError>> = due
                .into_par_iter()
                .map(|selected| self.pending(selected))
                .collect();
            for pending in ready {
                let (pending, key) = pending?;
                packer.push(key.as_deref(), pending, &mut full);
            }
            send(&mut full)
        })?;
        packer.finish(&mut full);
        send(&mut full)
    }

    /// Records `expired` whoever `not_after` left unsent, among `selected`.
    fn expire(&self, selected: Vec<Selected>) -> Result<(), ReconcileError> {
        let updated = crate::clock::unix_now();
        let changes: Vec<Change> = selected
            .into_iter()
            .filter(|s| s.due == Due::Expire)
            .map(|s| Change {
                record: RecipientRecord {
                    status: Status::Expired,
                    attempts: self.store.attempts(&s.key),
                    revision: self.campaign.revision.number,
                    provider_id: None,
                    reason: Some(EXPIRED.to_owned()),
                    updated,
                },
                key: s.key,
            })
            .collect();
        if !changes.is_empty() {
            self.store.finish(None, &changes)?;
        }
        Ok(())
    }

    /// The recipient's envelope and the key it packs under.
    fn pending(&self, selected: Selected) -> Result<(Envelope, Option<String>), PlanError> {
        let Selected {
            recipient,
            key,
            judged,
            ..
        } = selected;
        // Only a recipient sent again (uncertain, failed, or one who got an earlier
        // revision) has attempts already.
        let attempts = self.store.attempts(&key);
        let campaign = &self.campaign;
        let message = self.renderer.render(
            &recipient.email,
            &recipient.record,
            &row_label(campaign, &recipient),
        )?;
        let mut pack = packing::key(self.kind, &message);
        // Where calls share content, a message goes in one only once proved, and then
        // only its values are kept; one that cannot be proved goes alone, whole.
        let message = match (&self.tags, &pack) {
            (Some(tags), Some(_)) => {
                if let Some(shaped) = tags.prove(&message) {
                    Message::Shaped(shaped)
                } else {
                    pack = None;
                    Message::Whole(message)
                }
            }
            (Some(_), None) => Message::Whole(message),
            // Where every message goes whole, it waits for its call as its values all
            // the same, and is written out piece by piece when the call is made.
            (None, _) => match Shaped::keep(&message) {
                Some(shaped) => Message::Shaped(shaped),
                None => Message::Whole(message),
            },
        };
        let envelope = Envelope {
            message_id: message_id(
                &campaign.name,
                campaign.revision.number,
                &key,
                &campaign.from.email,
            ),
            to: recipient.email,
            attempt: attempts + 1,
            key,
            message,
            slot: judged.and_then(|j| j.slot),
        };
        Ok((envelope, pack))
    }
}
