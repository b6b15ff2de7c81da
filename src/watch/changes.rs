//! Which file events are changes: not a read, not metadata, and not herald's own writes
//! (the state store and the outboxes).

use std::path::{Path, PathBuf};

use notify::EventKind;
use notify::event::ModifyKind;

use super::follow::absolute;
use crate::manifest::{Manifests, Settings};

/// Whether a file event can change what a file holds.
pub fn is_change(kind: EventKind) -> bool {
    match kind {
        EventKind::Modify(ModifyKind::Metadata(_)) | EventKind::Access(_) | EventKind::Other => {
            false
        }
        EventKind::Create(_) | EventKind::Remove(_) | EventKind::Modify(_) | EventKind::Any => true,
    }
}

/// Folders herald writes to itself.
pub struct Ignored(Vec<PathBuf>);

impl Ignored {
    pub fn new(state: &Path, manifests: &Manifests) -> Self {
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

    pub fn covers(&self, path: &Path) -> bool {
        self.0.iter().any(|folder| path.starts_with(folder))
    }
}
