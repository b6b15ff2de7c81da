//! Preparing a campaign: everything that may refuse it, before anything is sent.
//!
//! # Guarantees
//! - Content changed after sending began is refused until `revision` is bumped, and a
//!   revision may not go back (`check_content`, which plan runs too).
//! - Unsubscribe links through a transport that delivers mail need a secret key.
//! - Every recipient is rendered (the plan) before a call is made.

use std::sync::Arc;

use super::fingerprint::{self, Fingerprint};
use super::{Context, ReconcileError};
use crate::manifest::TransportKind;
use crate::manifest::{Campaign, Transport as TransportManifest};
use crate::plan::{self, CampaignPlan, Delivery, PlanError, StateView};
use crate::render::Renderer;
use crate::store::{CampaignRecord, CampaignStore, StatusCounts, now};
use crate::transport::Transport;

/// A campaign checked and planned, ready to send.
pub struct Prepared {
    /// What the user should know before sending (not a refusal).
    pub(super) warnings: Vec<String>,
    pub(super) campaign: Arc<Campaign>,
    pub(super) renderer: Arc<Renderer>,
    pub plan: CampaignPlan,
    pub(super) store: CampaignStore,
    pub(super) record: CampaignRecord,
    pub(super) counts: StatusCounts,
    pub(super) transport: Transport,
    pub(super) delivery: Delivery,
    /// The instant the plan judged the schedule at; the send walk judges at the same.
    pub(super) at: jiff::Timestamp,
}

impl Prepared {
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

/// Refuses changed content without a new revision, then plans (rendering everyone).
pub fn prepare(campaign: &Campaign, ctx: &Context) -> Result<Prepared, ReconcileError> {
    let store = ctx.store.campaign(&campaign.name)?;
    let counts = store.counts();
    let previous = store.record()?.unwrap_or_default();
    let fingerprint = check_content(campaign, &previous, &counts)?;
    let manifest = &campaign.transport;
    let transport = Transport::new(manifest, campaign)?;
    let renderer = Renderer::new(campaign).map_err(PlanError::from)?;
    let mut warnings = unsubscribe_key(campaign, manifest, &renderer)?;
    let state = StateView {
        store: &store,
        again: &ctx.again,
    };
    let delivery = Delivery::of(campaign, previous.latency.as_ref());
    let at = crate::clock::now();
    let plan = plan::plan_with(campaign, &renderer, Some(state), &delivery, at, None)?;
    warnings.extend(plan.warnings());
    ctx.live.update(&campaign.name, |live| {
        live.prepared = true;
        live.transport.clone_from(&campaign.transport.name);
        live.stage = Some(campaign.stage);
        live.revision = campaign.revision.number;
        live.paused = campaign.paused;
        live.git.clone_from(&ctx.git);
        live.due = plan.to_send;
        live.suppressed = plan.audience.suppressed;
        live.sent = 0;
        live.failed = 0;
        live.uncertain = 0;
        live.waiting = None;
        live.next_due = plan.schedule.as_ref().and_then(|s| s.next_due_at);
    });
    let record = CampaignRecord {
        revision: campaign.revision.number,
        fingerprint,
        stage: Some(campaign.stage),
        paused: campaign.paused,
        halted: None,
        first_apply: previous.first_apply.or(Some(now())),
        last_apply: Some(now()),
        git: ctx.git.clone(),
        latency: previous.latency,
        down: previous.down,
        next_due: plan
            .schedule
            .as_ref()
            .and_then(|s| s.next_due_at)
            .and_then(|at| u64::try_from(at.as_second()).ok()),
    };
    Ok(Prepared {
        warnings,
        campaign: Arc::new(campaign.clone()),
        renderer: Arc::new(renderer),
        plan,
        store,
        record,
        counts,
        transport,
        delivery,
        at,
    })
}

/// The campaign's content fingerprint, unless it changed after sending began without a
/// new revision, or the revision went back: both refused.
pub fn check_content(
    campaign: &Campaign,
    previous: &CampaignRecord,
    counts: &StatusCounts,
) -> Result<Fingerprint, ReconcileError> {
    let fingerprint = fingerprint::of(campaign).map_err(ReconcileError::Content)?;
    if !counts.began() {
        return Ok(fingerprint);
    }
    if campaign.revision.number < previous.revision {
        return Err(ReconcileError::RevisionWentBack {
            at: campaign.revision.at.clone(),
            manifest: campaign.revision.number,
            stored: previous.revision,
        });
    }
    let changed = fingerprint::changed(&previous.fingerprint, &fingerprint);
    if campaign.revision.number == previous.revision && !changed.is_empty() {
        return Err(ReconcileError::ContentChanged {
            at: campaign.revision.at.clone(),
            changed,
            sent: counts.sent + counts.uncertain,
            revision: previous.revision,
        });
    }
    Ok(fingerprint)
}

/// Refuses guessable unsubscribe links on a transport that delivers mail; on the outbox,
/// a warning.
fn unsubscribe_key(
    campaign: &Campaign,
    manifest: &TransportManifest,
    renderer: &Renderer,
) -> Result<Vec<String>, ReconcileError> {
    let Some(unsubscribe) = campaign.unsubscribe.as_ref().filter(|_| !renderer.keyed()) else {
        return Ok(Vec::new());
    };
    if manifest.kind.delivers_mail() {
        return Err(ReconcileError::UnsubscribeUnkeyed {
            at: unsubscribe.at.clone(),
            transport: manifest.name.clone(),
        });
    }
    debug_assert_eq!(manifest.kind, TransportKind::Outbox);
    Ok(vec![format!(
        "{} is not set: the unsubscribe links in the outbox are signed with a fixed, guessable key \
         (fine for trying herald out; transports that deliver mail refuse this)",
        crate::render::UNSUBSCRIBE_KEY_ENV
    )])
}
