//! The git commit a set of manifests comes from, so that status can say which commit was
//! applied (the `GitOps` approval trail). Uses the `git` program; no git, no commit.

use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};

/// Which commit of the manifests was applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitRevision {
    pub commit: String,
    /// Whether the work tree had uncommitted changes under the manifests' path.
    pub dirty: bool,
}

/// The commit checked out where `path` lives, and whether anything under `path` differs
/// from it (herald's own state store, `state`, aside); `None` outside a git work tree or
/// without git.
pub fn revision(path: &Path, state: &Path) -> Option<GitRevision> {
    let dir = if path.is_dir() { path } else { path.parent()? };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let head = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let commit = String::from_utf8(head.stdout).ok()?.trim().to_owned();
    let mut status = Command::new("git");
    status
        .arg("-C")
        .arg(dir)
        .args(["status", "--porcelain", "--", "."]);
    let inside = std::fs::canonicalize(state)
        .ok()
        .zip(std::fs::canonicalize(dir).ok())
        .and_then(|(state, dir)| state.strip_prefix(dir).ok().map(Path::to_owned));
    if let Some(relative) = inside {
        status.arg(format!(":(exclude){}", relative.display()));
    }
    let status = status.output().ok().filter(|o| o.status.success())?;
    Some(GitRevision {
        commit,
        dirty: !status.stdout.is_empty(),
    })
}
