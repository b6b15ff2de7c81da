//! Watch mode: apply, then follow a folder of manifests and re-apply what changes.
//!
//! One controller reloads the manifests on every (debounced, rename-aware) change under
//! PATH and tells each campaign's own task what it should now be: run this spec, halt
//! because its manifest is broken, or stop because it was removed. A campaign task runs
//! one reconcile at a time, so a campaign is never reconciled twice at once, while
//! campaigns run concurrently with each other. A change to a campaign stops its running
//! reconcile after the call in flight (within a second: the sender checks before every
//! batch and while waiting for the rate), then it reconciles again with what is new.
//!
//! A periodic pass (every `interval`) reconciles each campaign again even without a
//! change, which picks up audience files outside PATH and work left for later.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::RecursiveMode;
use notify_debouncer_full::{DebounceEventResult, new_debouncer};
use tokio::sync::watch;

use crate::git::GitRevision;
use crate::manifest::{self, Campaign, LoadError, Manifests, Transport};
use crate::reconcile::{self, Action, Context, Ending, Report, Stop, TransportLimits};
use crate::store::Store;

/// How long file events settle before the manifests are reloaded.
const DEBOUNCE: Duration = Duration::from_millis(150);

/// What happened, for the command line to print.
pub enum Event {
    Reconciled(Report),
    /// A reconcile was refused (input) or failed (store, transport); it halts until fixed.
    Failed {
        campaign: String,
        message: String,
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
    transports: Vec<Transport>,
    git: Option<GitRevision>,
    limits: TransportLimits,
}

struct Task {
    desired: watch::Sender<Desired>,
    /// The campaign's and its transport's spec as JSON, to tell whether a reload changed it.
    spec: serde_json::Value,
    manifest: PathBuf,
    handle: tokio::task::JoinHandle<()>,
}

type Reporter = Arc<dyn Fn(Event) + Send + Sync>;

/// Applies `manifests` and follows changes under `options.path` until stopped.
pub async fn watch(
    manifests: Manifests,
    options: Options,
    report: impl Fn(Event) + Send + Sync + 'static,
) -> Result<(), notify::Error> {
    let report: Reporter = Arc::new(report);
    let (events, mut changes) = tokio::sync::mpsc::unbounded_channel();
    let mut debouncer = new_debouncer(DEBOUNCE, None, move |result: DebounceEventResult| {
        if let Ok(batch) = result {
            let paths: Vec<PathBuf> = batch.into_iter().flat_map(|e| e.event.paths).collect();
            let _ = events.send(paths);
        }
    })?;
    debouncer.watch(&options.path, RecursiveMode::Recursive)?;

    let mut controller = Controller {
        tasks: HashMap::new(),
        limits: TransportLimits::default(),
        options,
        report,
    };
    controller.update(&manifests, &[]);
    let mut stop = controller.options.stop.clone();
    loop {
        tokio::select! {
            batch = changes.recv() => {
                let Some(mut paths) = batch else { break };
                // Take every batch that is already waiting: one reload for all of them.
                while let Ok(more) = changes.try_recv() {
                    paths.extend(more);
                }
                controller.reload(&paths);
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

struct Controller {
    tasks: HashMap<String, Task>,
    limits: TransportLimits,
    options: Options,
    report: Reporter,
}

impl Controller {
    fn reload(&mut self, paths: &[PathBuf]) {
        match manifest::load(&self.options.path) {
            Ok(manifests) => self.update(&manifests, paths),
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
                for (name, task) in &self.tasks {
                    if broken.contains(&task.manifest) {
                        task.desired.send_replace(Desired::Broken);
                        halted.push(name.clone());
                    }
                }
                halted.sort();
                (self.report)(Event::Invalid { error, halted });
            }
        }
    }

    /// Starts, changes or stops campaign tasks to match `manifests`.
    fn update(&mut self, manifests: &Manifests, paths: &[PathBuf]) {
        let git = crate::git::revision(&self.options.path, &self.options.state);
        self.limits = TransportLimits::new(manifests, &self.limits);
        let only = self.options.only.as_deref();
        let mut present = Vec::new();
        for campaign in &manifests.campaigns {
            if only.is_some_and(|o| o != campaign.name) {
                continue;
            }
            present.push(campaign.name.clone());
            // The campaign and its transport: a change to either reconciles it again.
            let transport = manifests
                .transport(&campaign.spec.transport)
                .map(|t| &t.spec);
            let spec =
                serde_json::to_value((&campaign.spec, transport)).expect("a spec serializes");
            let desired = Desired::Run(Arc::new(Spec {
                campaign: campaign.clone(),
                transports: manifests.transports.clone(),
                git: git.clone(),
                limits: self.limits.clone(),
            }));
            if let Some(task) = self.tasks.get_mut(&campaign.name) {
                let broken = matches!(*task.desired.borrow(), Desired::Broken);
                if broken || task.spec != spec || touches(campaign, paths) {
                    task.spec = spec;
                    task.manifest.clone_from(&campaign.location.file);
                    task.desired.send_replace(desired);
                }
            } else {
                let (sender, receiver) = watch::channel(desired);
                let handle = tokio::spawn(run_campaign(
                    receiver,
                    self.options.store.clone(),
                    self.options.recovered.get(&campaign.name).copied(),
                    self.options.interval,
                    self.options.stop.clone(),
                    Arc::clone(&self.report),
                ));
                self.tasks.insert(
                    campaign.name.clone(),
                    Task {
                        desired: sender,
                        spec,
                        manifest: campaign.location.file.clone(),
                        handle,
                    },
                );
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

    fn remove(&mut self, name: &str) {
        if let Some(task) = self.tasks.remove(name) {
            task.desired.send_replace(Desired::Removed);
            (self.report)(Event::Removed {
                campaign: name.to_owned(),
            });
        }
    }
}

/// Whether any of `paths` is one of the campaign's files: manifest, templates, catalogs,
/// audience or suppression lists.
fn touches(campaign: &Campaign, paths: &[PathBuf]) -> bool {
    let spec = &campaign.spec;
    let files: Vec<&Path> = [
        Some(campaign.location.file.as_path()),
        spec.template.html.as_deref(),
        spec.template.text.as_deref(),
        Some(spec.audience.file.as_path()),
    ]
    .into_iter()
    .flatten()
    .chain(spec.audience.suppress.iter().map(PathBuf::as_path))
    .collect();
    paths.iter().any(|changed| {
        let changed = changed.canonicalize().unwrap_or_else(|_| changed.clone());
        let same = |file: &Path| file.canonicalize().is_ok_and(|f| f == changed);
        files.iter().any(|f| same(f))
            || spec
                .locales
                .catalog
                .canonicalize()
                .is_ok_and(|dir| changed.starts_with(dir))
    })
}

/// One campaign's life: reconcile, wait for a change (or the periodic pass), again.
async fn run_campaign(
    mut desired: watch::Receiver<Desired>,
    store: Store,
    mut recovered: Option<u64>,
    interval: Duration,
    mut stop: Stop,
    report: Reporter,
) {
    // A periodic pass that changes nothing says nothing.
    let mut last: Option<Ending> = None;
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

        // Stop this reconcile after the call in flight when the campaign changes or the
        // process is asked to stop.
        let (handle, run_stop) = Stop::new();
        let mut changes = desired.clone();
        let mut global = stop.clone();
        let forward = tokio::spawn(async move {
            tokio::select! {
                _ = changes.changed() => {}
                () = global.wait() => {}
            }
            handle.stop();
        });
        let ctx = Context {
            store: store.clone(),
            transports: spec.transports.clone(),
            resend_uncertain: false,
            stop: run_stop,
            progress: false,
            recovered: recovered
                .take()
                .map(|n| BTreeMap::from([(spec.campaign.name.clone(), n)]))
                .unwrap_or_default(),
            git: spec.git.clone(),
            limits: spec.limits.clone(),
        };
        let result = reconcile::reconcile(&spec.campaign, &ctx).await;
        forward.abort();

        let action = match result {
            Ok(reconciled) => {
                let r = &reconciled.report;
                let idle = r.sent + r.failed + r.uncertain + r.not_sent + r.recovered == 0;
                // Stopped for a change: the next pass reports.
                let quiet = (r.ending == Ending::Interrupted || last == Some(r.ending)) && idle;
                last = Some(r.ending);
                if !quiet {
                    report(Event::Reconciled(reconciled.report));
                }
                reconciled.action
            }
            Err(error) => {
                last = None;
                let action = reconcile::error_policy(&error);
                report(Event::Failed {
                    campaign: spec.campaign.name.clone(),
                    message: error.to_string(),
                });
                action
            }
        };
        if desired.has_changed().unwrap_or(true) {
            continue;
        }
        let wait = match action {
            Action::AwaitChange => interval,
            Action::Requeue(after) => after.min(interval),
        };
        tokio::select! {
            _ = desired.changed() => {}
            () = tokio::time::sleep(wait) => {}
            () = stop.wait() => return,
        }
    }
}
