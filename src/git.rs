//! The git commit a set of manifests comes from, so that status can say which commit was
//! applied (the `GitOps` approval trail). Uses the `git` program; no git, no commit.

use std::path::Path;
use std::process::Command;

use crate::store::GitRevision;

/// The commit checked out where `path` lives, and whether anything under `path` differs
/// from it; `None` outside a git work tree or without git.
pub fn revision(path: &Path) -> Option<GitRevision> {
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
    let status = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["status", "--porcelain", "--", "."])
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    Some(GitRevision {
        commit,
        dirty: !status.stdout.is_empty(),
    })
}
