//! Why an audience or suppression file could not be read.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum AudienceError {
    #[error("cannot read `{}`: {source}", path.display())]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("{}:{line}: expected a JSON object per line", path.display())]
    NotAnObject { path: PathBuf, line: u64 },
    #[error("{}: no column `{column}` for addresses; the header has {found}", path.display())]
    MissingColumn {
        path: PathBuf,
        column: String,
        found: String,
    },
}
