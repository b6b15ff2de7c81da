//! Suppression lists: addresses never to send to.
//!
//! A list is either a CSV file whose header has an `email` column, or plain text with one
//! address per line (blank lines and `#` comments ignored). Addresses compare trimmed and
//! case-insensitively, like audience rows.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use super::error::AudienceError;
use super::normalize;
use super::reader;

/// Every address in `lists`, normalised.
pub fn load(lists: &[impl AsRef<Path>]) -> Result<HashSet<String>, AudienceError> {
    let mut addresses = HashSet::new();
    for path in lists {
        load_one(path.as_ref(), &mut addresses)?;
    }
    Ok(addresses)
}

fn load_one(path: &Path, out: &mut HashSet<String>) -> Result<(), AudienceError> {
    let open_error = |source| AudienceError::Open {
        path: path.to_owned(),
        source,
    };
    let mut first = String::new();
    BufReader::new(File::open(path).map_err(open_error)?)
        .read_line(&mut first)
        .map_err(open_error)?;
    let is_csv = first.contains(',') || normalize(&first) == "email";
    if is_csv {
        let rows = reader::rows(path)?;
        let has_email = rows
            .headers()
            .is_some_and(|h| h.iter().any(|c| c == "email"));
        if !has_email {
            return Err(AudienceError::MissingColumn {
                path: path.to_owned(),
                column: "email".to_owned(),
                found: first.trim().to_owned(),
            });
        }
        for row in rows {
            if let Some(email) = row?.record.get("email") {
                out.insert(normalize(&email));
            }
        }
    } else {
        for line in BufReader::new(File::open(path).map_err(open_error)?).lines() {
            let line = line.map_err(open_error)?;
            let address = line.trim();
            if !address.is_empty() && !address.starts_with('#') {
                out.insert(normalize(address));
            }
        }
    }
    Ok(())
}
