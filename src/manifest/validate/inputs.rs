//! Where a campaign may read from: its manifest's folder tree, and `spec.allow_outside`.
//! Every file it names must exist, be a regular file, and stay inside one of them.

use std::path::{Path, PathBuf};

use crate::manifest::diagnostic::{Diagnostic, Problem};
use crate::manifest::model::CampaignDoc;
use crate::manifest::source::Loaded;

/// Where a campaign may read from: its manifest's folder tree, and `spec.allow_outside`.
pub struct Inputs<'a> {
    loaded: &'a Loaded<CampaignDoc>,
    /// Canonical folders, the manifest's own first.
    roots: Vec<PathBuf>,
}

impl<'a> Inputs<'a> {
    pub fn new(loaded: &'a Loaded<CampaignDoc>, out: &mut Vec<Diagnostic>) -> Self {
        let dir = loaded.dir();
        let own = canonical(dir);
        let mut roots: Vec<PathBuf> = own.into_iter().collect();
        for (i, folder) in loaded.doc.spec.allow_outside.iter().enumerate() {
            let key = format!("spec.allow_outside[{i}]");
            match canonical(&dir.join(folder)) {
                Some(root) if root.is_dir() => roots.push(root),
                _ => {
                    let value = folder.display().to_string();
                    out.push(loaded.at_value(&key, Problem::NotAFolder { value }));
                }
            }
        }
        Self { loaded, roots }
    }

    /// Checks that the file at `path` exists, is a regular file and may be read.
    pub fn file(&self, key: &str, path: &Path, out: &mut Vec<Diagnostic>) {
        let Some(resolved) = self.exists(key, path, out) else {
            return;
        };
        if !crate::input::is_regular(&resolved) {
            let problem = Problem::NotAFile {
                value: path.display().to_string(),
                what: crate::input::describe_path(&resolved),
            };
            out.push(self.loaded.at_value(key, problem));
            return;
        }
        self.inside(key, path, &resolved, out);
    }

    /// Checks that the folder at `path` exists and may be read; its canonical path.
    pub fn folder(&self, key: &str, path: &Path, out: &mut Vec<Diagnostic>) -> Option<PathBuf> {
        let resolved = self.exists(key, path, out)?;
        if !resolved.is_dir() {
            let value = path.display().to_string();
            out.push(self.loaded.at_value(key, Problem::NotAFolder { value }));
            return None;
        }
        self.inside(key, path, &resolved, out).then_some(resolved)
    }

    /// Every catalog in `folder` must be a regular file that may be read.
    pub fn catalogs(&self, folder: &Path, out: &mut Vec<Diagnostic>) {
        let Ok(catalogs) = crate::input::catalog_files(folder) else {
            return;
        };
        for path in catalogs {
            self.file("spec.locales.catalog", &path, out);
        }
    }

    /// The canonical path of `path` (relative to the manifest), or a diagnostic.
    fn exists(&self, key: &str, path: &Path, out: &mut Vec<Diagnostic>) -> Option<PathBuf> {
        let resolved = self.loaded.dir().join(path);
        if let Some(found) = canonical(&resolved) {
            return Some(found);
        }
        let value = path.display().to_string();
        out.push(
            self.loaded
                .at_value(key, Problem::FileNotFound { value, resolved }),
        );
        None
    }

    fn inside(&self, key: &str, path: &Path, resolved: &Path, out: &mut Vec<Diagnostic>) -> bool {
        if self.roots.iter().any(|root| resolved.starts_with(root)) {
            return true;
        }
        let problem = Problem::OutsideManifestFolder {
            value: path.display().to_string(),
            resolved: resolved.to_owned(),
            folder: self.roots.first().cloned().unwrap_or_default(),
        };
        out.push(self.loaded.at_value(key, problem));
        false
    }
}

/// `path` with symlinks, `.` and `..` resolved; `None` when it does not exist.
fn canonical(path: &Path) -> Option<PathBuf> {
    let path = if path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    };
    std::fs::canonicalize(path).ok()
}
