//! Suppression lists: addresses never to send to.
//!
//! The format follows the extension, and nothing else is accepted:
//! - `.csv`: a header row with an `email` column (separated by `,`, `;` or tabs, quoted or
//!   not), one address per row;
//! - `.jsonl`: one JSON object per line with an `email` field;
//! - `.txt`: one address per line; blank lines and lines starting with `#` are skipped.
//!
//! An export from an email service keeps its own header (`Email Address`, say): a list
//! given with `email_field` is read from that column instead, as strictly.
//!
//! # Guarantees
//! - Every entry must be a bare address (`ann@example.com`). `Ann <ann@example.com>`,
//!   `mailto:ann@example.com` or anything else refuses the whole list with its file and
//!   line: a list read in part would mail people who asked not to be mailed.
//! - A UTF-8 byte order mark is dropped. Addresses compare trimmed and case-insensitively,
//!   like audience rows.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read as _};
use std::path::{Path, PathBuf};

use super::error::AudienceError;
use super::{normalize, reader};
use crate::address;
use crate::input::{self, MAX_RECORD};

/// The most sources (lists, and the state store's reasons) one campaign can draw on.
pub const MAX_SOURCES: usize = 64;

/// One list to read: its file and, for an export, the column holding the addresses
/// (`email` unless given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuppressList {
    pub file: PathBuf,
    pub email_field: Option<String>,
}

impl SuppressList {
    /// A list read strictly, from an `email` column or field or one address per line.
    pub fn strict(file: impl Into<PathBuf>) -> Self {
        Self {
            file: file.into(),
            email_field: None,
        }
    }
}

/// Every suppressed address, and which sources name it.
#[derive(Debug, Default, Clone)]
pub struct Suppressions {
    /// Normalised address -> a bit per source naming it.
    addresses: HashMap<String, u64>,
    /// What each source is, for people: a list's path, or `state store (unsubscribed)`.
    sources: Vec<String>,
}

impl Suppressions {
    /// Reads every list in `lists`, refusing the first entry that is not an address.
    pub fn load(lists: &[SuppressList]) -> Result<Self, AudienceError> {
        let mut suppressions = Self::default();
        for list in lists {
            let path = list.file.as_path();
            let source = suppressions.source(path.display().to_string());
            let column = list.email_field.as_deref().unwrap_or("email");
            for (line, value) in entries(path, column)? {
                let address = value.trim();
                if !address::is_valid(address) {
                    return Err(AudienceError::SuppressionEntry {
                        path: path.to_owned(),
                        line,
                        value: value.escape_debug().to_string(),
                        hint: hint(address),
                    });
                }
                suppressions.insert(normalize(address), source);
            }
        }
        Ok(suppressions)
    }

    /// Adds a source named `label`; its index, for `insert`.
    pub fn source(&mut self, label: String) -> usize {
        assert!(
            self.sources.len() < MAX_SOURCES,
            "validated: at most {MAX_SOURCES} sources"
        );
        self.sources.push(label);
        self.sources.len() - 1
    }

    /// Marks the normalised address `key` as suppressed by `source`.
    pub fn insert(&mut self, key: String, source: usize) {
        *self.addresses.entry(key).or_default() |= 1 << source;
    }

    pub fn contains(&self, key: &str) -> bool {
        self.addresses.contains_key(key)
    }

    /// A bit per source naming `key`; 0 when none does.
    pub fn sources_of(&self, key: &str) -> u64 {
        self.addresses.get(key).copied().unwrap_or(0)
    }

    /// The sources, in the order they were added.
    pub fn sources(&self) -> &[String] {
        &self.sources
    }

    pub fn len(&self) -> usize {
        self.addresses.len()
    }

    /// Every suppressed address, normalised, in no particular order.
    pub fn addresses(&self) -> impl Iterator<Item = &str> {
        self.addresses.keys().map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.addresses.is_empty()
    }
}

/// What to write instead of an entry that is almost an address.
fn hint(entry: &str) -> String {
    let inner = entry
        .strip_prefix("mailto:")
        .or_else(|| {
            let open = entry.rfind('<')?;
            entry[open + 1..].strip_suffix('>')
        })
        .map(str::trim);
    match inner {
        Some(bare) if address::is_valid(bare) => format!(" (write `{bare}`)"),
        _ => String::new(),
    }
}

/// Every entry of the list at `path` with its line, as written; a CSV or JSONL list's
/// addresses are in `column`.
fn entries(path: &Path, column: &str) -> Result<Vec<(u64, String)>, AudienceError> {
    let extension = path.extension().and_then(|e| e.to_str());
    match extension {
        Some("csv" | "jsonl") => {
            let mut entries = Vec::new();
            for row in reader::rows(path, column)? {
                let row = row?;
                let Some(value) = row.record.get(column) else {
                    return Err(AudienceError::Syntax {
                        path: path.to_owned(),
                        line: row.line,
                        message: format!("no `{column}` field"),
                    });
                };
                entries.push((row.line, value));
            }
            Ok(entries)
        }
        Some("txt") => lines(path),
        _ => Err(AudienceError::SuppressionFormat {
            path: path.to_owned(),
        }),
    }
}

/// The entries of a one-address-per-line list.
fn lines(path: &Path) -> Result<Vec<(u64, String)>, AudienceError> {
    let file = input::open(path)?;
    let mut reader = BufReader::new(file);
    let mut entries = Vec::new();
    let mut line = 0;
    loop {
        line += 1;
        let mut bytes = Vec::new();
        let read = (&mut reader)
            .take(MAX_RECORD + 1)
            .read_until(b'\n', &mut bytes)
            .map_err(|error| syntax(path, line, &error.to_string()))?;
        if read == 0 {
            return Ok(entries);
        }
        if bytes.len() as u64 > MAX_RECORD {
            let message = format!("a line of more than {MAX_RECORD} bytes");
            return Err(syntax(path, line, &message));
        }
        let text = String::from_utf8(bytes).map_err(|_| syntax(path, line, "not valid UTF-8"))?;
        let text = if line == 1 {
            text.trim_start_matches('\u{feff}')
        } else {
            &text
        };
        let entry = text.trim();
        if !entry.is_empty() && !entry.starts_with('#') {
            entries.push((line, entry.to_owned()));
        }
    }
}

fn syntax(path: &Path, line: u64, message: &str) -> AudienceError {
    AudienceError::Syntax {
        path: PathBuf::from(path),
        line,
        message: message.to_owned(),
    }
}
