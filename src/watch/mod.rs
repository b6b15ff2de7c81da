//! Watch mode: apply, then follow a folder of manifests and reconcile what changes.
//!
//! One controller reloads the manifests when their folder reports a change, and tells
//! each campaign's own task what it should now be: run this spec, halt because its
//! manifest is broken, or stop because it was removed. A campaign task runs one reconcile
//! at a time, so a campaign is never reconciled twice at once, while campaigns run
//! concurrently with each other.
//!
//! # Guarantees
//! - Only a change to a campaign's inputs reaches it: its spec, its transport's, or the
//!   bytes of a file it reads (see `inputs`). Reads and metadata changes are not changes;
//!   herald's own writes (the state store, outboxes) are not looked at; a save that leaves
//!   the bytes as they were changes nothing. So sending is never interrupted for nothing.
//! - A change stops the campaign's running reconcile after the calls in flight (within a
//!   second: the sender checks before every call and while waiting for the rate), then it
//!   reconciles again with what is new.
//! - An error that waiting cannot heal (a refusal, a missing secret, refused credentials)
//!   waits for a change; one that may pass is tried again with backoff (see
//!   `reconcile::error_policy`). What watch prints says which.
//! - Every `interval`, inputs are checked again (a `stat` per file), which picks up
//!   audiences outside PATH; a campaign whose inputs are unchanged is left alone.

mod inputs;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::EventKind;
use notify::RecursiveMode;
use notify::event::ModifyKind;
use notify_debouncer_full::{DebounceEventResult, new_debouncer};
use tokio::sync::watch;

use crate::git::GitRevision;
use crate::live::Live;
use crate::manifest::Settings;
use crate::manifest::{self, Campaign, LoadError, Manifests};
use crate::metrics::Metrics;
use crate::reconcile::{self, Action, Context, Ending, Report, Stop, TransportLimits};
use crate::store::Store;

/// How long file events settle before the manifests are reloaded.
const DEBOUNCE: Duration = Duration::from_millis(150);

/// What happened, for the command line to print (and to pass on to whoever else needs
/// the manifests as they are now).
pub enum Event<'a> {
    /// The manifests loaded, as they are now.
    Loaded(&'a Manifests),
    Reconciled(Report),
    /// A reconcile was refused (input) or failed (store, transport).
    Failed {
        campaign: String,
        message: String,
        /// What happens next.
        next: Next,
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

/// What a campaign does after an error, as watch tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Waits for a change to its files.
    Change,
    /// Waits for a change to its files, or a restart with the environment fixed.
    Environment,
    /// Tries again after this long.
    Retry(Duration),
}

impl std::fmt::Display for Next {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Change => write!(f, "waiting for a change to its files"),
            Self::Environment => write!(
                f,
                "waiting for a change to its files, or a restart of herald with the environment fixed"
            ),
            Self::Retry(after) => {
                write!(f, "trying again in {}", humantime::format_duration(*after))
            }
        }
    }
}

/// What a campaign task should be doing.
#[derive(Clone)]
enum Desired {
    Run(Arc<Spec>),
    /// Its manifest does not load; wait for a fix.
    Broken,
    Removed,
}

/// A campaign as loaded, with what a reconcile of it needs.
struct Spec {
    campaign: Campaign,
    git: Option<GitRevision>,
    limits: TransportLimits,
}

struct Task {
    desired: watch::Sender<Desired>,
    /// The digest of the campaign's inputs when it was last told to run.
    inputs: Option<inputs::Digest>,
    manifest: PathBuf,
    handle: tokio::task::JoinHandle<()>,
}

type Reporter = Arc<dyn Fn(Event<'_>) + Send + Sync>;

/// Applies `manifests` and follows changes under `options.path` until stopped.
pub async fn watch(
    manifests: Manifests,
    options: Options,
    report: impl Fn(Event<'_>) + Send + Sync + 'static,
) -> Result<(), notify::Error> {
    let report: Reporter = Arc::new(report);
    let ignored = Ignored::new(&options.state, &manifests);
    let (events, mut changes) = tokio::sync::mpsc::unbounded_channel();
    let mut debouncer = new_debouncer(DEBOUNCE, None, move |result: DebounceEventResult| {
        let Ok(batch) = result else { return };
        let paths: Vec<PathBuf> = batch
            .into_iter()
            .filter(|e| is_change(e.event.kind))
            .flat_map(|e| e.event.paths)
            .filter(|p| !ignored.covers(p))
            .collect();
        if !paths.is_empty() {
            let _ = events.send(());
        }
    })?;
    let mut followed = Followed::start(&mut debouncer, &options.path)?;

    let mut controller = Controller {
        tasks: HashMap::new(),
        limits: TransportLimits::default(),
        hasher: inputs::Hasher::default(),
        options,
        report,
    };
    controller.update(&manifests);
    let mut stop = controller.options.stop.clone();
    let mut pass = tokio::time::interval(controller.options.interval);
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
    for (_, task) in controller.tasks.drain() {
        let _ = task.handle.await;
    }
    Ok(())
}

/// Whether `state` lies inside what `path` resolves to through a symlink: a folder that a
/// tool like git-sync replaces whole, leaving the store behind in the old one.
pub fn state_in_published_folder(path: &Path, state: &Path) -> bool {
    let mut walked = PathBuf::new();
    let mut through_link = false;
    for part in absolute(path).components() {
        walked.push(part);
        through_link |= walked.is_symlink();
    }
    through_link && resolved(state).starts_with(resolved(path))
}

/// `path` with every symlink resolved, as far as it exists; the rest as written.
fn resolved(path: &Path) -> PathBuf {
    let path = absolute(path);
    let mut existing = path.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(found) = std::fs::canonicalize(existing) {
            return rest
                .iter()
                .rev()
                .fold(found, |whole, part| whole.join(part));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => return path,
        }
    }
}

type Debouncer = notify_debouncer_full::Debouncer<
    notify::RecommendedWatcher,
    notify_debouncer_full::RecommendedCache,
>;

/// The folder being watched. PATH may lead through a symlink that is swapped to publish a
/// new version (git-sync does this for every commit): the folder it points to is watched,
/// and so is the folder holding each symlink on the way, so that a swap is seen at once
/// and the watch moves to the new folder.
struct Followed {
    path: PathBuf,
    /// The folders watched now: the target, recursively, then the symlinks' parents.
    watched: Vec<PathBuf>,
}

impl Followed {
    fn start(debouncer: &mut Debouncer, path: &Path) -> Result<Self, notify::Error> {
        let mut followed = Self {
            path: path.to_owned(),
            watched: Vec::new(),
        };
        followed.watch(debouncer)?;
        Ok(followed)
    }

    /// What to watch for `path` as it resolves now.
    fn wanted(&self) -> Vec<PathBuf> {
        let target = std::fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone());
        let mut wanted = vec![target];
        let mut walked = PathBuf::new();
        for part in absolute(&self.path).components() {
            walked.push(part);
            if walked.is_symlink() {
                if let Some(parent) = walked.parent().and_then(|p| std::fs::canonicalize(p).ok()) {
                    wanted.push(parent);
                }
            }
        }
        wanted
    }

    fn watch(&mut self, debouncer: &mut Debouncer) -> Result<(), notify::Error> {
        let wanted = self.wanted();
        for (i, folder) in wanted.iter().enumerate() {
            let mode = if i == 0 {
                RecursiveMode::Recursive
            } else {
                RecursiveMode::NonRecursive
            };
            debouncer.watch(folder, mode)?;
        }
        self.watched = wanted;
        Ok(())
    }

    /// Moves the watch when a symlink on the way now points elsewhere.
    fn follow(&mut self, debouncer: &mut Debouncer) {
        if self.wanted() == self.watched {
            return;
        }
        for folder in &self.watched {
            let _ = debouncer.unwatch(folder);
        }
        if let Err(error) = self.watch(debouncer) {
            tracing::warn!(path = %self.path.display(), %error, "cannot watch the new folder; changes are picked up every --interval");
        } else {
            tracing::info!(path = %self.path.display(), folder = %self.watched[0].display(), "following the new folder");
        }
    }
}

/// Whether a file event can change what a file holds: not a read, not metadata.
fn is_change(kind: EventKind) -> bool {
    match kind {
        EventKind::Modify(ModifyKind::Metadata(_)) | EventKind::Access(_) | EventKind::Other => {
            false
        }
        EventKind::Create(_) | EventKind::Remove(_) | EventKind::Modify(_) | EventKind::Any => true,
    }
}

/// Folders herald writes to itself: the state store and the outboxes.
struct Ignored(Vec<PathBuf>);

impl Ignored {
    fn new(state: &Path, manifests: &Manifests) -> Self {
        let mut folders = vec![state.to_owned()];
        folders.extend(
            manifests
                .transports
                .iter()
                .filter_map(|t| match &t.settings {
                    Settings::Outbox { dir } => Some(dir.clone()),
                    _ => None,
                }),
        );
        Self(
            folders
                .iter()
                .map(|f| std::fs::canonicalize(f).unwrap_or_else(|_| absolute(f)))
                .collect(),
        )
    }

    fn covers(&self, path: &Path) -> bool {
        self.0.iter().any(|folder| path.starts_with(folder))
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

struct Controller {
    tasks: HashMap<String, Task>,
    limits: TransportLimits,
    hasher: inputs::Hasher,
    options: Options,
    report: Reporter,
}

impl Controller {
    fn reload(&mut self) {
        match manifest::load(&self.options.path) {
            Ok(manifests) => self.update(&manifests),
            Err(LoadError::NoManifests { .. }) => {
                let names: Vec<String> = self.tasks.keys().cloned().collect();
                for name in names {
                    self.remove(&name);
                }
            }
            Err(error) => {
                let broken: Vec<PathBuf> = match &error {
                    LoadError::Invalid(diagnostics) => diagnostics
                        .iter()
                        .map(|d| d.location.file.clone())
                        .collect(),
                    LoadError::Read { path, .. } => vec![path.clone()],
                    LoadError::NotFound { .. } | LoadError::NoManifests { .. } => Vec::new(),
                };
                let mut halted = Vec::new();
                for (name, task) in &mut self.tasks {
                    if broken.contains(&task.manifest) {
                        let already = matches!(*task.desired.borrow(), Desired::Broken);
                        if !already {
                            task.desired.send_replace(Desired::Broken);
                            task.inputs = None;
                            halted.push(name.clone());
                        }
                    }
                }
                if !halted.is_empty() {
                    halted.sort();
                    (self.report)(Event::Invalid { error, halted });
                }
            }
        }
    }

    /// Starts, changes or stops campaign tasks to match `manifests`: a campaign whose
    /// inputs did not change is left alone.
    fn update(&mut self, manifests: &Manifests) {
        (self.report)(Event::Loaded(manifests));
        let only = self.options.only.clone();
        let mut present = Vec::new();
        let mut changed = Vec::new();
        for campaign in &manifests.campaigns {
            if only.as_deref().is_some_and(|o| o != campaign.name) {
                continue;
            }
            present.push(campaign.name.clone());
            let digest = self.hasher.digest(campaign);
            let same = self
                .tasks
                .get(&campaign.name)
                .is_some_and(|t| t.inputs.as_ref() == Some(&digest));
            if !same {
                changed.push((campaign, digest));
            }
        }
        if !changed.is_empty() {
            let git = crate::git::revision(&self.options.path, &self.options.state);
            self.limits = TransportLimits::new(manifests, &self.limits);
            for (campaign, digest) in changed {
                let desired = Desired::Run(Arc::new(Spec {
                    campaign: campaign.clone(),
                    git: git.clone(),
                    limits: self.limits.clone(),
                }));
                self.start_or_change(campaign, digest, desired);
            }
        }
        let gone: Vec<String> = self
            .tasks
            .keys()
            .filter(|name| !present.contains(name))
            .cloned()
            .collect();
        for name in gone {
            self.remove(&name);
        }
    }

    fn start_or_change(&mut self, campaign: &Campaign, digest: inputs::Digest, desired: Desired) {
        if let Some(task) = self.tasks.get_mut(&campaign.name) {
            task.inputs = Some(digest);
            task.manifest.clone_from(&campaign.location.file);
            task.desired.send_replace(desired);
            return;
        }
        let options = &self.options;
        options
            .live
            .update(&campaign.name, |live| live.prepared = false);
        let (sender, receiver) = watch::channel(desired);
        let handle = tokio::spawn(run_campaign(
            receiver,
            Shared {
                store: options.store.clone(),
                live: options.live.clone(),
                metrics: Arc::clone(&options.metrics),
                stop: options.stop.clone(),
                report: Arc::clone(&self.report),
            },
            options.recovered.get(&campaign.name).copied(),
        ));
        self.tasks.insert(
            campaign.name.clone(),
            Task {
                desired: sender,
                inputs: Some(digest),
                manifest: campaign.location.file.clone(),
                handle,
            },
        );
    }

    fn remove(&mut self, name: &str) {
        if let Some(task) = self.tasks.remove(name) {
            task.desired.send_replace(Desired::Removed);
            self.options.live.remove(name);
            (self.report)(Event::Removed {
                campaign: name.to_owned(),
            });
        }
    }
}

/// A stop for one reconcile, set when the campaign changes or the process is asked to
/// stop; the task that sets it is to be aborted once the reconcile is over.
fn stop_on_change(
    mut changes: watch::Receiver<Desired>,
    mut global: Stop,
) -> (Stop, tokio::task::JoinHandle<()>) {
    let (handle, stop) = Stop::new();
    let forward = tokio::spawn(async move {
        tokio::select! {
            _ = changes.changed() => {}
            () = global.wait() => {}
        }
        handle.stop();
    });
    (stop, forward)
}

/// What a failed reconcile leads to, said truthfully and shown on the status page.
fn failed(
    shared: &Shared,
    campaign: &Campaign,
    error: &reconcile::ReconcileError,
    failures: u32,
) -> Action {
    let action = reconcile::error_policy(campaign, error, failures);
    let next = match (action, error.meaning()) {
        (Action::Requeue(after), _) => Next::Retry(after),
        (Action::AwaitChange, reconcile::Meaning::NeedsEnvironment) => Next::Environment,
        (Action::AwaitChange, _) => Next::Change,
    };
    let message = error.to_string();
    shared.live.update(&campaign.name, |live| {
        live.prepared = true;
        live.waiting = Some(format!("{message}; {next}"));
    });
    (shared.report)(Event::Failed {
        campaign: campaign.name.clone(),
        message,
        next,
    });
    action
}

/// What every campaign task shares.
struct Shared {
    store: Store,
    live: Live,
    metrics: Arc<Metrics>,
    stop: Stop,
    report: Reporter,
}

/// One campaign's life: reconcile, then wait for a change (or, after an error that may
/// pass, for the backoff), again.
async fn run_campaign(
    mut desired: watch::Receiver<Desired>,
    shared: Shared,
    mut recovered: Option<u64>,
) {
    let mut stop = shared.stop.clone();
    // A pass that changes nothing says nothing.
    let mut last: Option<Ending> = None;
    let mut failures = 0;
    loop {
        if stop.is_set() {
            return;
        }
        let current = desired.borrow_and_update().clone();
        let spec = match current {
            Desired::Removed => return,
            Desired::Broken => {
                tokio::select! {
                    _ = desired.changed() => continue,
                    () = stop.wait() => return,
                }
            }
            Desired::Run(spec) => spec,
        };

        let (run_stop, forward) = stop_on_change(desired.clone(), stop.clone());
        let name = spec.campaign.name.clone();
        let ctx = Context {
            store: shared.store.clone(),
            resend_uncertain: false,
            stop: run_stop,
            progress: reconcile::Observer::default(),
            recovered: recovered
                .take()
                .map(|n| BTreeMap::from([(name.clone(), n)]))
                .unwrap_or_default(),
            git: spec.git.clone(),
            limits: spec.limits.clone(),
            live: shared.live.clone(),
            metrics: Arc::clone(&shared.metrics),
        };
        let result = reconcile::reconcile(&spec.campaign, &ctx).await;
        forward.abort();

        let action = match result {
            Ok(reconciled) => {
                failures = 0;
                let r = &reconciled.report;
                let idle = r.sent + r.failed + r.uncertain + r.not_sent + r.recovered == 0;
                // Stopped for a change: the next pass reports.
                let quiet = (r.ending == Ending::Interrupted || last == Some(r.ending)) && idle;
                last = Some(r.ending);
                if !quiet {
                    (shared.report)(Event::Reconciled(reconciled.report));
                }
                reconciled.action
            }
            Err(error) => {
                last = None;
                failures += 1;
                failed(&shared, &spec.campaign, &error, failures)
            }
        };
        if desired.has_changed().unwrap_or(true) {
            continue;
        }
        match action {
            Action::AwaitChange => {
                tokio::select! {
                    _ = desired.changed() => {}
                    () = stop.wait() => return,
                }
            }
            Action::Requeue(after) => {
                tokio::select! {
                    _ = desired.changed() => {}
                    () = tokio::time::sleep(after) => {}
                    () = stop.wait() => return,
                }
            }
        }
    }
}
