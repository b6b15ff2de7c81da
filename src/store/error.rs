use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the state store {} is in use by another herald process{}; wait for it to finish, or stop it",
        path.display(),
        pid.as_ref().map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    Locked { path: PathBuf, pid: Option<String> },
    #[error("cannot open the state store {}: {reason}", path.display())]
    Open { path: PathBuf, reason: String },
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
    #[error("the state store {} holds a damaged record for `{key}`: {reason}", path.display())]
    Corrupt {
        path: PathBuf,
        key: String,
        reason: String,
    },
}
