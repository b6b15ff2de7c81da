//! Why a set of manifests could not be loaded.

use std::path::PathBuf;

use super::diagnostic::Diagnostic;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("`{}`: no such file or folder", path.display())]
    NotFound { path: PathBuf },
    #[error("no `*.yaml` or `*.yml` manifests in `{}`", path.display())]
    NoManifests { path: PathBuf },
    #[error("cannot read `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Every problem found, sorted by file and position.
    #[error("{}", summary(.0))]
    Invalid(Vec<Diagnostic>),
}

fn summary(diagnostics: &[Diagnostic]) -> String {
    let count = diagnostics.len();
    let plural = if count == 1 { "" } else { "s" };
    format!("{count} problem{plural} found in the manifests")
}
