//! Audiences: streaming rows, normalising addresses, dropping duplicates, suppressed and
//! invalid rows, and counting each.
//!
//! # Guarantees
//! - Rows are read one at a time; only the set of addresses seen so far is kept, which is
//!   what deduplication needs.
//! - Addresses are trimmed and compared case-insensitively. The first row of an address
//!   wins; later rows with the same address are counted as duplicates, never sent.
//! - Every row ends up in exactly one bucket: to send, duplicate, suppressed or invalid.

mod error;
mod reader;
mod suppress;

use std::collections::{HashMap, HashSet};

pub use error::AudienceError;
pub use reader::{Record, Row, Rows, rows};
pub use suppress::load as load_suppressions;

use crate::address;

/// The form addresses are compared in.
pub fn normalize(address: &str) -> String {
    address.trim().to_lowercase()
}

/// A row that is to receive the message.
#[derive(Debug, Clone)]
pub struct Recipient {
    pub line: u64,
    /// The address as written, trimmed.
    pub email: String,
    pub record: Record,
}

/// What happens to one row.
#[derive(Debug)]
pub enum Verdict {
    Send(Recipient),
    /// The same address (ignoring case) already appeared on `first_line`.
    Duplicate {
        first_line: u64,
    },
    Suppressed,
    /// No valid address; `value` is what the row holds, possibly empty.
    Invalid {
        line: u64,
        value: String,
    },
}

/// How many rows went where.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Tally {
    pub rows: u64,
    /// Distinct valid addresses, suppressed ones included.
    pub unique: u64,
    pub duplicates: u64,
    pub suppressed: u64,
    pub invalid: u64,
}

/// Sorts rows into verdicts, remembering what it has seen.
pub struct Screen {
    email_field: String,
    suppressed: HashSet<String>,
    seen: HashMap<String, u64>,
    tally: Tally,
}

impl Screen {
    pub fn new(email_field: &str, suppressed: HashSet<String>) -> Self {
        Self {
            email_field: email_field.to_owned(),
            suppressed,
            seen: HashMap::new(),
            tally: Tally::default(),
        }
    }

    pub fn screen(&mut self, row: Row) -> Verdict {
        self.tally.rows += 1;
        let value = row.record.get(&self.email_field).unwrap_or_default();
        let email = value.trim();
        if !address::is_valid(email) {
            self.tally.invalid += 1;
            return Verdict::Invalid {
                line: row.line,
                value: value.clone(),
            };
        }
        let key = normalize(email);
        if let Some(&first_line) = self.seen.get(&key) {
            self.tally.duplicates += 1;
            return Verdict::Duplicate { first_line };
        }
        self.tally.unique += 1;
        let suppressed = self.suppressed.contains(&key);
        self.seen.insert(key, row.line);
        if suppressed {
            self.tally.suppressed += 1;
            return Verdict::Suppressed;
        }
        Verdict::Send(Recipient {
            line: row.line,
            email: email.to_owned(),
            record: row.record,
        })
    }

    /// Whether a row with the normalised address `key` was screened (suppressed included).
    pub fn seen(&self, key: &str) -> bool {
        self.seen.contains_key(key)
    }

    pub fn tally(&self) -> Tally {
        self.tally
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn write(dir: &Path, name: &str, contents: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// Screens every row of `audience` and returns the tally and the lines to send.
    fn screen_all(audience: &Path, suppress: &[std::path::PathBuf]) -> (Tally, Vec<(u64, String)>) {
        let mut screen = Screen::new("email", load_suppressions(suppress).unwrap());
        let mut send = Vec::new();
        for row in rows(audience).unwrap() {
            if let Verdict::Send(recipient) = screen.screen(row.unwrap()) {
                send.push((recipient.line, recipient.email));
            }
        }
        (screen.tally(), send)
    }

    #[test]
    fn shipped_example_counts() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("campaigns/audiences");
        let (tally, send) = screen_all(&dir.join("customers.csv"), &[dir.join("unsubscribed.csv")]);
        let expected = Tally {
            rows: 1000,
            unique: 997,
            duplicates: 3,
            suppressed: 10,
            invalid: 0,
        };
        assert_eq!(tally, expected);
        assert_eq!(send.len(), 987);
    }

    #[test]
    fn duplicates_ignore_case_and_spaces_and_keep_the_first_row() {
        let dir = tempfile::tempdir().unwrap();
        let csv =
            "email,name\nAnn@Example.com,Ann\n bob@example.com ,Bob\nann@example.COM,Ann again\n";
        let audience = write(dir.path(), "a.csv", csv);
        let (tally, send) = screen_all(&audience, &[]);
        assert_eq!((tally.rows, tally.unique, tally.duplicates), (3, 2, 1));
        assert_eq!(
            send,
            [
                (2, "Ann@Example.com".to_owned()),
                (3, "bob@example.com".to_owned())
            ]
        );
    }

    #[test]
    fn invalid_rows_are_reported_with_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let audience = write(
            dir.path(),
            "a.csv",
            "email,name\nnot-an-address,X\n,Empty\nok@example.com,Ok\n",
        );
        let mut screen = Screen::new("email", HashSet::new());
        let verdicts: Vec<String> = rows(&audience)
            .unwrap()
            .map(|row| match screen.screen(row.unwrap()) {
                Verdict::Invalid { line, value } => format!("invalid {line} {value:?}"),
                Verdict::Send(r) => format!("send {}", r.line),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            verdicts,
            ["invalid 2 \"not-an-address\"", "invalid 3 \"\"", "send 4"]
        );
        assert_eq!(screen.tally().invalid, 2);
    }

    #[test]
    fn jsonl_rows_and_plain_text_suppression() {
        let dir = tempfile::tempdir().unwrap();
        let jsonl = "{\"email\": \"a@example.com\", \"locale\": \"ja\"}\n\n{\"email\": \"B@example.com\", \"n\": 3}\n";
        let audience = write(dir.path(), "a.jsonl", jsonl);
        let list = write(
            dir.path(),
            "optout.txt",
            "# people who asked\nb@EXAMPLE.com\n\n",
        );
        let (tally, send) = screen_all(&audience, &[list]);
        assert_eq!((tally.rows, tally.suppressed), (2, 1));
        assert_eq!(send, [(1, "a@example.com".to_owned())]);
        let row = rows(&audience).unwrap().nth(1).unwrap().unwrap();
        assert_eq!((row.line, row.record.get("n").as_deref()), (3, Some("3")));
    }

    #[test]
    fn malformed_rows_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let audience = write(
            dir.path(),
            "a.csv",
            "email,name\na@example.com,A\nb@example.com\n",
        );
        let error = rows(&audience).unwrap().nth(1).unwrap().unwrap_err();
        let expected = format!("{}:3: expected 2 fields, found 1", audience.display());
        assert_eq!(error.to_string(), expected);

        let jsonl = write(
            dir.path(),
            "b.jsonl",
            "{\"email\": \"a@example.com\"}\n[1, 2]\n{oops\n",
        );
        let errors: Vec<String> = rows(&jsonl)
            .unwrap()
            .filter_map(Result::err)
            .map(|e| e.to_string())
            .collect();
        assert_eq!(
            errors[0],
            format!("{}:2: expected a JSON object per line", jsonl.display())
        );
        assert!(
            errors[1].starts_with(&format!("{}:3: key must be a string", jsonl.display())),
            "{}",
            errors[1]
        );
    }

    #[test]
    fn suppression_csv_needs_an_email_column() {
        let dir = tempfile::tempdir().unwrap();
        let list = write(
            dir.path(),
            "s.csv",
            "address,reason\na@example.com,bounced\n",
        );
        let error = load_suppressions(&[&list]).unwrap_err();
        let expected = format!(
            "{}: no column `email` for addresses; the header has address,reason",
            list.display()
        );
        assert_eq!(error.to_string(), expected);
    }
}
