//! Why the state store cannot be used. Every message says what to do next.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the state store {} is in use by another herald process{}; wait for it to finish, or stop it",
        path.display(),
        pid.as_ref().map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    Locked { path: PathBuf, pid: Option<String> },
    #[error(
        "the state store {} cannot be read back whole: {reason}. herald never takes lost state for \"nobody was sent\": restore the folder from a backup (or move it aside and start over, knowing that everyone will be sent again)",
        path.display()
    )]
    Damaged { path: PathBuf, reason: String },
    #[error(
        "{} is not a herald state store: {reason}; point --state at the store, or at a folder that does not exist yet",
        path.display()
    )]
    Foreign { path: PathBuf, reason: String },
    #[error(
        "there is no state store at {}, and this run requires one (--require-state); if this is the first apply, create it with `herald init`; if a store existed, restore it: a new one would send to everyone again",
        path.display()
    )]
    Missing { path: PathBuf },
    #[error("a state store already exists at {}", path.display())]
    Exists { path: PathBuf },
    #[error(
        "the state store {} has format version {found}, this herald reads version {expected}",
        path.display()
    )]
    Format {
        path: PathBuf,
        found: String,
        expected: &'static str,
    },
    #[error("the state store {} failed: {reason}", path.display())]
    Io { path: PathBuf, reason: String },
    /// A write failed for want of space: the disk (or the process's share of it) is full.
    #[error(
        "the state store {} is out of space ({reason}); free space on its disk, then run again: calls that never started stay due, and only calls that may have reached the provider are `uncertain` (`herald status`)",
        path.display()
    )]
    Full { path: PathBuf, reason: String },
    #[error("the state store {} holds a damaged record for `{key}`: {reason}", path.display())]
    Corrupt {
        path: PathBuf,
        key: String,
        reason: String,
    },
}

/// Whether `error` says there is no room left to write: a full disk, a used-up quota, or a
/// file past the size the process may write.
pub(super) fn is_full(error: &std::io::Error) -> bool {
    room(error).is_some()
}

/// What `error` says of the room left to write, in words, when it says there is none.
/// (sled hands on an OS error wrapped in text of its own; its kind survives.)
pub(super) fn room(error: &std::io::Error) -> Option<&'static str> {
    use std::io::ErrorKind;
    match error.kind() {
        ErrorKind::StorageFull => Some("no space left on device"),
        ErrorKind::QuotaExceeded => Some("disk quota exceeded"),
        ErrorKind::FileTooLarge => Some("file too large"),
        _ => (error.raw_os_error() == Some(libc::ENOSPC)).then_some("no space left on device"),
    }
}
