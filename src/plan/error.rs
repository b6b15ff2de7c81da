//! Why a plan could not be made. Every variant is a refusal: nothing was sent.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use crate::audience::AudienceError;
use crate::render::RenderError;
use crate::store::StoreError;
use crate::text::{Count, Thousands};

/// An audience row without a valid address.
#[derive(Debug, Clone, Serialize)]
pub struct InvalidRow {
    pub line: u64,
    /// What the row holds in the address column (empty when it has none).
    pub value: String,
    /// What is wrong with it, for people.
    pub problem: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Audience(#[from] AudienceError),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{}", unknown_locales(file, field, default, values))]
    UnknownLocales {
        file: PathBuf,
        field: String,
        default: String,
        values: Vec<super::UnknownLocale>,
    },
    #[error("{}", invalid_rows(file, *count, rows))]
    InvalidRows {
        file: PathBuf,
        count: u64,
        rows: Vec<InvalidRow>,
    },
}

/// Values listed by name; the rest are only counted.
const LISTED_UNKNOWN: usize = 10;

fn unknown_locales(
    file: &std::path::Path,
    field: &str,
    default: &str,
    values: &[super::UnknownLocale],
) -> String {
    let rows: u64 = values.iter().map(|v| v.recipients).sum();
    let mut text = format!(
        "{}: {} {} a `{field}` that is neither a language tag nor in `locales.map`:\n",
        file.display(),
        Thousands(rows),
        if rows == 1 { "row has" } else { "rows have" },
    );
    for value in values.iter().take(LISTED_UNKNOWN) {
        let _ = writeln!(
            text,
            "  {}: {} {}, e.g. line {}",
            value.value,
            Thousands(value.recipients),
            crate::text::plural("row", value.recipients),
            value.first_line
        );
    }
    if values.len() > LISTED_UNKNOWN {
        let _ = writeln!(
            text,
            "  ... and {} more values",
            values.len() - LISTED_UNKNOWN
        );
    }
    let example = values.first().map_or("Deutsch", |v| v.value.as_str());
    let _ = write!(
        text,
        "map them to catalogs in `locales.map` (`{{{example}: de}}`), or set `locales.on_unknown: default` to send them in `{default}`"
    );
    text
}

fn invalid_rows(file: &std::path::Path, count: u64, rows: &[InvalidRow]) -> String {
    let mut text = String::new();
    for row in rows {
        let _ = writeln!(text, "{}:{}: {}", file.display(), row.line, row.problem);
    }
    let more = count - rows.len() as u64;
    if more > 0 {
        let _ = writeln!(text, "... and {more} more");
    }
    let _ = write!(
        text,
        "{} without a valid address in `{}`; fix them, or set `audience.on_invalid: skip`",
        Count("row", count),
        file.display()
    );
    text
}
