//! Watch mode: apply, then follow a folder of manifests and reconcile what changes.
//!
//! - `controller`: reloads the manifests on a change and tells each campaign's task what
//!   it should now be.
//! - `task`: one campaign's life, one reconcile at a time, then what the policy says.
//! - `inputs`: what a campaign's inputs are, as one digest.
//! - `changes`: which file events are changes; `follow`: PATH through a swapped symlink.
//!
//! # Guarantees
//! - Only a change to a campaign's inputs reaches it: its spec, its transport's, or the
//!   bytes of a file it reads (see `inputs`). Reads and metadata changes are not changes;
//!   herald's own writes (the state store, outboxes) are not looked at; a save that leaves
//!   the bytes as they were changes nothing. So sending is never interrupted for nothing.
//! - A change stops the campaign's running reconcile after the calls in flight (within a
//!   second: the sender checks before every call and while waiting for the rate), then it
//!   reconciles again with what is new.
//! - What follows an error is `reconcile::error_policy`'s answer, as for apply: an error
//!   that waiting cannot heal waits for a change; one that may pass is tried again with
//!   backoff; a state store that cannot be trusted stops every campaign, and watch exits.
//!   What watch prints says which.
//! - Every `interval`, inputs are checked again (a `stat` per file), which picks up
//!   audiences outside PATH; a campaign whose inputs are unchanged is left alone.

mod changes;
mod controller;
mod follow;
mod inputs;
mod task;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use notify_debouncer_full::{DebounceEventResult, new_debouncer};

pub use follow::state_in_published_folder;

use crate::live::Live;
use crate::manifest::{LoadError, Manifests};
use crate::metrics::Metrics;
use crate::reconcile::{Action, Report, Stop};
use crate::store::Store;

/// How long file events settle before the manifests are reloaded.
const DEBOUNCE: Duration = Duration::from_millis(150);

/// What happened, for the command line to print (and to pass on to whoever else needs
/// the manifests as they are now).
pub enum Event<'a> {
    /// The manifests loaded, as they are now.
    Loaded(&'a Manifests),
    Reconciled(Box<Report>),
    /// A reconcile was refused (input) or failed (store, transport).
    Failed {
        campaign: String,
        message: String,
        /// What happens next.
        next: Action,
    },
    /// The manifests do not load; the campaigns in these files are halted.
    Invalid {
        error: LoadError,
        halted: Vec<String>,
    },
    /// The campaign's manifest is gone: it sends nothing more; its history stays.
    Removed {
        campaign: String,
    },
    /// The campaign has `spec.shards` above 1: its shards send it (`apply --shard I`), each
    /// from a store of its own, so watch never does, though it takes its feedback.
    Sharded {
        campaign: String,
        shards: u32,
    },
}

pub struct Options {
    pub path: PathBuf,
    /// The state store's folder: herald's own writes there are not changes.
    pub state: PathBuf,
    pub only: Option<String>,
    pub interval: Duration,
    pub store: Store,
    /// Intents recovered at start, per campaign.
    pub recovered: BTreeMap<String, u64>,
    /// Ctrl-C or SIGTERM.
    pub stop: Stop,
    pub live: Live,
    pub metrics: Arc<Metrics>,
}

/// How watching ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Asked to stop (Ctrl-C, SIGTERM).
    Stopped,
    /// The state store could not be trusted any more (see `Action::Stop`).
    StoreUnusable,
}

type Reporter = Arc<dyn Fn(Event<'_>) + Send + Sync>;

/// Applies `manifests` and follows changes under `options.path` until stopped.
pub async fn watch(
    manifests: Manifests,
    options: Options,
    report: impl Fn(Event<'_>) + Send + Sync + 'static,
) -> Result<Ended, notify::Error> {
    let report: Reporter = Arc::new(report);
    let ignored = changes::Ignored::new(&options.state, &manifests);
    let (events, mut changes) = tokio::sync::mpsc::unbounded_channel();
    let mut debouncer = new_debouncer(DEBOUNCE, None, move |result: DebounceEventResult| {
        let Ok(batch) = result else { return };
        let paths: Vec<PathBuf> = batch
            .into_iter()
            .filter(|e| changes::is_change(e.event.kind))
            .flat_map(|e| e.event.paths)
            .filter(|p| !ignored.covers(p))
            .collect();
        if !paths.is_empty() {
            let _ = events.send(());
        }
    })?;
    let mut followed = follow::Followed::start(&mut debouncer, &options.path)?;

    // Every task stops on Ctrl-C or SIGTERM, or when one of them must stop them all.
    let (stop_all, mut stop) = Stop::new();
    let stop_all = Arc::new(stop_all);
    let mut asked = options.stop.clone();
    let forward = Arc::clone(&stop_all);
    tokio::spawn(async move {
        asked.wait().await;
        forward.stop();
    });
    let shared = task::Shared {
        store: options.store.clone(),
        live: options.live.clone(),
        metrics: Arc::clone(&options.metrics),
        stop: stop.clone(),
        stop_all,
        stopped_all: Arc::new(AtomicBool::new(false)),
        report: Arc::clone(&report),
        breakers: crate::reconcile::Breakers::default(),
    };
    let stopped_all = Arc::clone(&shared.stopped_all);
    let interval = options.interval;
    let mut controller = controller::Controller::new(options, report, shared);
    controller.update(&manifests);
    let mut pass = tokio::time::interval(interval);
    pass.tick().await;
    loop {
        tokio::select! {
            change = changes.recv() => {
                if change.is_none() {
                    break;
                }
                // Every batch already waiting: one reload for all of them.
                while changes.try_recv().is_ok() {}
                followed.follow(&mut debouncer);
                controller.reload();
            }
            _ = pass.tick() => {
                followed.follow(&mut debouncer);
                controller.reload();
            }
            () = stop.wait() => break,
        }
    }
    drop(debouncer);
    controller.join().await;
    Ok(if stopped_all.load(Ordering::SeqCst) {
        Ended::StoreUnusable
    } else {
        Ended::Stopped
    })
}
