//! Why an audience or suppression file could not be read.

use std::path::PathBuf;

use crate::input::InputError;

#[derive(Debug, thiserror::Error)]
pub enum AudienceError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("{}:{line}: {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("{}:{line}: expected a JSON object per line", path.display())]
    NotAnObject { path: PathBuf, line: u64 },
    #[error("{}:1: no column `{column}` in the header; the header has {found}", path.display())]
    MissingColumn {
        path: PathBuf,
        column: String,
        found: String,
    },
    /// `locales.field` names a column the audience does not have.
    #[error(
        "{}{}: no {} `{column}`, which `locales.field` names; {found}",
        path.display(),
        if found.starts_with("the header") { ":1" } else { "" },
        if found.starts_with("the header") { "column" } else { "row has a field" }
    )]
    LocaleFieldMissing {
        path: PathBuf,
        column: String,
        /// What there is instead: "the header has `a` and `b` (did you mean `b`?)".
        found: String,
    },
    /// `schedule.timezone_field` names a column the audience's header does not have: a
    /// typo would send everyone in the default zone's hours.
    #[error(
        "{}:1: no column `{column}`, which `schedule.timezone_field` names; {found}",
        path.display()
    )]
    ZoneFieldMissing {
        path: PathBuf,
        column: String,
        found: String,
    },
    /// A suppression list entry that is not an address: the list is refused whole,
    /// because a half-read opt-out list mails people who asked not to be mailed.
    #[error("{}:{line}: `{value}` is not an email address{hint}; suppression lists hold one bare address per entry", path.display())]
    SuppressionEntry {
        path: PathBuf,
        line: u64,
        value: String,
        hint: String,
    },
    #[error(
        "`{}`: a suppression list must be `.csv` (with an `email` column), `.jsonl` (objects with an `email` field) or `.txt` (one address per line); herald does not guess the format of an opt-out list",
        path.display()
    )]
    SuppressionFormat { path: PathBuf },
}
