//! The producer side of a send: a thread that walks the audience again, picks the
//! recipients due now, renders them on all cores and cuts batches of `batch.size`.
//!
//! It runs ahead of the sender by at most two batches (a bounded channel), so memory
//! stays flat however large the audience is. When the sender stops early it drops the
//! receiver, and the producer stops at its next send.

use std::sync::Arc;

use rayon::prelude::*;
use tokio::sync::mpsc::Sender;

use super::ReconcileError;
use crate::audience::{self, Recipient};
use crate::manifest::Campaign;
use crate::plan::{Due, PlanError, Rollout, StateView, due, row_label, walk};
use crate::render::Renderer;
use crate::store::{CampaignStore, RecipientRecord};
use crate::transport::{Envelope, message_id};

/// An envelope ready to send, with what the state store held before this attempt.
pub struct Pending {
    pub envelope: Envelope,
    pub prior: Option<RecipientRecord>,
}

pub type Batch = Result<Vec<Pending>, ReconcileError>;

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

pub fn spawn(
    campaign: Arc<Campaign>,
    renderer: Arc<Renderer>,
    store: CampaignStore,
    resend_uncertain: bool,
    batches: Sender<Batch>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let state = StateView {
            store: &store,
            resend_uncertain,
        };
        match produce(&campaign, &renderer, state, &batches) {
            Ok(()) | Err(Failure::Stopped) => {}
            Err(Failure::Error(error)) => {
                let _ = batches.blocking_send(Err(error));
            }
        }
    })
}

fn produce(
    campaign: &Campaign,
    renderer: &Renderer,
    state: StateView<'_>,
    batches: &Sender<Batch>,
) -> Result<(), Failure> {
    let spec = &campaign.spec;
    let size = campaign.batch_size as usize;
    let suppressions =
        audience::Suppressions::load(&spec.audience.suppress).map_err(PlanError::from)?;
    let rollout = Rollout::new(campaign, &suppressions);
    let mut batch = Vec::with_capacity(size);
    let screen = audience::Screen::new(&spec.audience.email_field, suppressions);
    walk(campaign, screen, &rollout, |chunk| {
        let mut due_now = Vec::new();
        for recipient in chunk {
            let key = audience::normalize(&recipient.email);
            if due(&rollout, Some(state), &key).map_err(PlanError::from)? == Due::Now {
                // Only an uncertain recipient being re-sent has a record already.
                let prior = if state.resend_uncertain {
                    state.store.get(&key).map_err(PlanError::from)?
                } else {
                    None
                };
                due_now.push((recipient, key, prior));
            }
        }
        let ready: Vec<Result<Pending, PlanError>> = due_now
            .into_par_iter()
            .map(|(recipient, key, prior)| pending(campaign, renderer, &recipient, key, prior))
            .collect();
        for pending in ready {
            batch.push(pending?);
            if batch.len() == size {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(size));
                batches
                    .blocking_send(Ok(full))
                    .map_err(|_| Failure::Stopped)?;
            }
        }
        Ok::<_, Failure>(())
    })?;
    if !batch.is_empty() {
        batches
            .blocking_send(Ok(batch))
            .map_err(|_| Failure::Stopped)?;
    }
    Ok(())
}

fn pending(
    campaign: &Campaign,
    renderer: &Renderer,
    recipient: &Recipient,
    key: String,
    prior: Option<RecipientRecord>,
) -> Result<Pending, PlanError> {
    let message = renderer.render(
        &recipient.email,
        &recipient.record,
        &row_label(campaign, recipient),
    )?;
    let spec = &campaign.spec;
    Ok(Pending {
        envelope: Envelope {
            message_id: message_id(&campaign.name, spec.revision, &key, &spec.from.email),
            to: recipient.email.clone(),
            attempt: prior.as_ref().map_or(0, |p| p.attempts) + 1,
            key,
            rendered: message,
        },
        prior,
    })
}
