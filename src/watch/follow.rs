//! Following PATH as tools publish it. PATH may lead through a symlink that is swapped to
//! publish a new version (git-sync does this for every commit): the folder it points to
//! is watched, and so is the folder holding each symlink on the way, so that a swap is
//! seen at once and the watch moves to the new folder.

use std::path::{Path, PathBuf};

use notify::RecursiveMode;

pub type Debouncer = notify_debouncer_full::Debouncer<
    notify::RecommendedWatcher,
    notify_debouncer_full::RecommendedCache,
>;

/// The folder being watched.
pub struct Followed {
    path: PathBuf,
    /// The folders watched now: the target, recursively, then the symlinks' parents.
    watched: Vec<PathBuf>,
}

impl Followed {
    pub fn start(debouncer: &mut Debouncer, path: &Path) -> Result<Self, notify::Error> {
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
    pub fn follow(&mut self, debouncer: &mut Debouncer) {
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

pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}
