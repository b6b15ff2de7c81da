//! Why a campaign's messages could not be rendered.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("cannot read `{}`: {source}", path.display())]
    CatalogFolder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}{}: {message}", path.display(), if *line > 0 { format!(":{line}") } else { String::new() })]
    Catalog {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("`{}`: no catalog for the default locale `{locale}`", dir.display())]
    DefaultCatalogMissing { dir: PathBuf, locale: String },
    /// A catalog whose file name no recipient's value could ever choose.
    #[error(
        "`{}`: a catalog is named after the language tag it holds, and `{stem}` is none ({reason}); \
         name the file after the tag (`ja.yaml`) and map other values to it in `locales.map`",
        path.display()
    )]
    CatalogName {
        path: PathBuf,
        stem: String,
        reason: crate::langtag::Invalid,
    },
    #[error(transparent)]
    Input(#[from] crate::input::InputError),
    #[error(
        "the secret in `HERALD_UNSUBSCRIBE_KEY` is shorter than {} characters; use a random one (`openssl rand -hex 32`)",
        crate::secret::SHORTEST
    )]
    ShortKey,
    /// A template that does not compile.
    #[error("{template}: {message}")]
    Syntax { template: String, message: String },
    /// A template that failed for one recipient; `template` is `file:line`.
    #[error("{template}: {message} (audience row {row})")]
    Template {
        template: String,
        message: String,
        row: String,
    },
}
