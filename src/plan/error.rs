//! Why a plan could not be made. Every variant is a refusal: nothing was sent.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use crate::audience::AudienceError;
use crate::render::RenderError;
use crate::store::StoreError;
use crate::text::Count;

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
    #[error("{}", invalid_rows(file, *count, rows))]
    InvalidRows {
        file: PathBuf,
        count: u64,
        rows: Vec<InvalidRow>,
    },
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
