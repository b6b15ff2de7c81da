//! The controller: reloads the manifests when their folder reports a change, and tells
//! each campaign's task what it should now be: run this spec, halt because its manifest
//! is broken, or stop because it was removed. A campaign whose inputs did not change is
//! left alone; a sharded one is its shards' to send (`apply --shard I`), never watch's.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::watch;

use super::inputs;
use super::task::{self, Desired, Shared, Spec};
use super::{Event, Options, Reporter};
use crate::manifest::{self, Campaign, LoadError, Manifests};
use crate::reconcile::TransportLimits;

/// One campaign's task, as the controller holds it.
struct Task {
    desired: watch::Sender<Desired>,
    /// The digest of the campaign's inputs when it was last told to run.
    inputs: Option<inputs::Digest>,
    manifest: PathBuf,
    handle: tokio::task::JoinHandle<()>,
}

pub struct Controller {
    tasks: HashMap<String, Task>,
    limits: TransportLimits,
    hasher: inputs::Hasher,
    options: Options,
    report: Reporter,
    /// What every task shares.
    shared: Shared,
    /// Campaigns left to their shards, already said.
    sharded: HashSet<String>,
}

impl Controller {
    pub fn new(options: Options, report: Reporter, shared: Shared) -> Self {
        Self {
            tasks: HashMap::new(),
            sharded: HashSet::new(),
            limits: TransportLimits::default(),
            hasher: inputs::Hasher::default(),
            options,
            report,
            shared,
        }
    }

    pub fn reload(&mut self) {
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

    /// Starts, changes or stops campaign tasks to match `manifests`.
    pub fn update(&mut self, manifests: &Manifests) {
        (self.report)(Event::Loaded(manifests));
        let only = self.options.only.clone();
        let mut present = Vec::new();
        let mut changed = Vec::new();
        for campaign in &manifests.campaigns {
            if only.as_deref().is_some_and(|o| o != campaign.name) {
                continue;
            }
            // A sharded campaign is sent by its shards, each from its own store; sending it
            // from this store too would mail its audience twice. So is one that began with
            // shards in this state folder, whatever its manifest says now. Said when it
            // first shows.
            let shards = if campaign.shards.get() > 1 {
                Some(campaign.shards.get())
            } else {
                match crate::store::claims::sharded_in(&self.options.state, &campaign.name) {
                    Ok(count) => count.map(std::num::NonZeroU32::get),
                    Err(error) => {
                        (self.report)(Event::Failed {
                            campaign: campaign.name.clone(),
                            message: format!("{error}; nothing is sent to it"),
                            next: crate::reconcile::Action::AwaitChange,
                        });
                        continue;
                    }
                }
            };
            if let Some(shards) = shards {
                if self.sharded.insert(campaign.name.clone()) {
                    (self.report)(Event::Sharded {
                        campaign: campaign.name.clone(),
                        shards,
                    });
                }
                continue;
            }
            self.sharded.remove(&campaign.name);
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
        self.options
            .live
            .update(&campaign.name, |live| live.prepared = false);
        let (sender, receiver) = watch::channel(desired);
        let handle = tokio::spawn(task::run(
            receiver,
            self.shared.clone(),
            self.options.recovered.get(&campaign.name).copied(),
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

    /// Waits for every task to end (after a stop).
    pub async fn join(mut self) {
        for (_, task) in self.tasks.drain() {
            let _ = task.handle.await;
        }
    }
}
