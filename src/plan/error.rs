//! Why a plan could not be made. Every variant is a refusal: nothing was sent.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use crate::audience::AudienceError;
use crate::render::RenderError;
use crate::store::StoreError;

/// An audience row without a valid address.
#[derive(Debug, Clone, Serialize)]
pub struct InvalidRow {
    pub line: u64,
    pub value: String,
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
        let value = row.value.escape_debug();
        let _ = writeln!(
            text,
            "{}:{}: `{value}` is not a valid email address",
            file.display(),
            row.line
        );
    }
    let more = count - rows.len() as u64;
    if more > 0 {
        let _ = writeln!(text, "... and {more} more");
    }
    let plural = if count == 1 { "" } else { "s" };
    let _ = write!(
        text,
        "{count} row{plural} without a valid address in `{}`; fix them, or set `audience.on_invalid: skip`",
        file.display()
    );
    text
}
