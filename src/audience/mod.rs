//! Audiences: streaming rows, normalising addresses, dropping duplicates, suppressed and
//! invalid rows, and counting each.
//!
//! # Guarantees
//! - Rows are read one at a time; only the addresses met so far are kept (as fingerprints,
//!   in a set of the walk's own or marked in the state store's index), which is what
//!   deduplication needs.
//! - Addresses are trimmed and compared case-insensitively. The first row of an address
//!   wins; later rows with the same address are counted as duplicates, never sent.
//! - Every row ends up in exactly one bucket: to send, duplicate, suppressed or invalid.

mod error;
mod lines;
mod reader;
mod shard;
mod suppress;

pub use error::AudienceError;
pub use reader::{Record, Row, Rows, rows};
pub use shard::{Shard, shard_of};
pub use suppress::{MAX_SOURCES, SuppressList, Suppressions};

use crate::address;
use crate::text::List;

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
    /// The same address (ignoring case) already appeared on an earlier row.
    Duplicate,
    Suppressed,
    /// A valid address another shard owns (`Screen::only`): neither met nor counted here,
    /// so a shard's walk keeps only its own part of the audience in memory.
    Elsewhere,
    /// No valid address; `value` is what the row holds, possibly empty, and `problem`
    /// says what is wrong with it.
    Invalid {
        line: u64,
        value: String,
        problem: String,
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

/// The addresses a walk has met, to tell a duplicate row.
pub trait Met: Send {
    /// Whether the address with this fingerprint is met for the first time; it is met
    /// from now on.
    fn first(&mut self, fingerprint: u128) -> bool;
}

impl Met for crate::keyhash::Set {
    fn first(&mut self, fingerprint: u128) -> bool {
        self.insert(fingerprint)
    }
}

/// Sorts rows into verdicts, remembering what it has seen.
pub struct Screen {
    email_field: String,
    suppressions: Suppressions,
    /// Audience addresses suppressed, per source of `suppressions`.
    by_source: Vec<u64>,
    /// The addresses met, by fingerprint.
    met: Box<dyn Met>,
    tally: Tally,
    /// Under `spec.shards`, the shard whose addresses this walk keeps.
    only: Option<Shard>,
}

impl Screen {
    /// A screen that keeps the addresses it meets in a set of its own.
    pub fn new(email_field: &str, suppressions: Suppressions) -> Self {
        Self::meeting(
            email_field,
            suppressions,
            Box::new(crate::keyhash::Set::default()),
        )
    }

    /// A screen that keeps the addresses it meets in `met`.
    pub fn meeting(email_field: &str, suppressions: Suppressions, met: Box<dyn Met>) -> Self {
        Self {
            email_field: email_field.to_owned(),
            by_source: vec![0; suppressions.sources().len()],
            suppressions,
            met,
            tally: Tally::default(),
            only: None,
        }
    }

    /// Keeps only the addresses `shard` owns (`None`: every one): the others are screened
    /// for validity like any row, then left to their shards before duplicates and
    /// suppression lists, which fall within one shard (an address's rows all do).
    #[must_use]
    pub fn only(mut self, shard: Option<Shard>) -> Self {
        self.only = shard;
        self
    }

    pub fn screen(&mut self, row: Row) -> Verdict {
        self.screen_with(row, |_| None)
    }

    /// `screen`, with one more rule about a row whose address is valid: `check` answers
    /// the value it refuses and why, and the row is invalid.
    pub fn screen_with(
        &mut self,
        row: Row,
        check: impl FnOnce(&Record) -> Option<(String, String)>,
    ) -> Verdict {
        self.tally.rows += 1;
        let Some(value) = row.record.get(&self.email_field) else {
            self.tally.invalid += 1;
            let columns = row.record.columns();
            return Verdict::Invalid {
                line: row.line,
                value: String::new(),
                problem: format!(
                    "no `{}` field; the row has {}",
                    self.email_field,
                    if columns.is_empty() {
                        "none".to_owned()
                    } else {
                        List::and_ticked(&columns).to_string()
                    }
                ),
            };
        };
        let email = value.trim();
        if !address::is_valid(email) {
            self.tally.invalid += 1;
            return Verdict::Invalid {
                line: row.line,
                problem: format!("`{}` is not a valid email address", value.escape_debug()),
                value,
            };
        }
        if let Some((value, problem)) = check(&row.record) {
            self.tally.invalid += 1;
            return Verdict::Invalid {
                line: row.line,
                value,
                problem,
            };
        }
        let key = normalize(email);
        if self.only.is_some_and(|shard| !shard.owns(&key)) {
            return Verdict::Elsewhere;
        }
        if !self.met.first(crate::keyhash::of(&key)) {
            self.tally.duplicates += 1;
            return Verdict::Duplicate;
        }
        self.tally.unique += 1;
        let sources = self.suppressions.sources_of(&key);
        if sources != 0 {
            self.tally.suppressed += 1;
            for (i, count) in self.by_source.iter_mut().enumerate() {
                *count += (sources >> i) & 1;
            }
            return Verdict::Suppressed;
        }
        Verdict::Send(Recipient {
            line: row.line,
            email: email.to_owned(),
            record: row.record,
        })
    }

    /// Whether no row with the normalised address `key` was screened (suppressed
    /// included); it is met from now on.
    pub fn meet(&mut self, key: &str) -> bool {
        self.met.first(crate::keyhash::of(key))
    }

    pub fn tally(&self) -> Tally {
        self.tally
    }

    /// How many audience addresses each suppression source removed (an address named by
    /// two sources counts in both), in the order of `Suppressions::sources`.
    pub fn suppressed_by(&self) -> Vec<(String, u64)> {
        self.suppressions
            .sources()
            .iter()
            .cloned()
            .zip(self.by_source.iter().copied())
            .collect()
    }

    pub fn suppressions(&self) -> &Suppressions {
        &self.suppressions
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// Screens every row of `audience` and returns the tally and the lines to send.
    fn screen_all(audience: &Path, suppress: &[PathBuf]) -> (Tally, Vec<(u64, String)>) {
        let lists: Vec<SuppressList> = suppress.iter().map(SuppressList::strict).collect();
        let mut screen = Screen::new("email", Suppressions::load(&lists).unwrap());
        let mut send = Vec::new();
        for row in rows(audience, "email").unwrap() {
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
    fn invalid_rows_are_reported_with_their_line_and_problem() {
        let dir = tempfile::tempdir().unwrap();
        let audience = write(
            dir.path(),
            "a.jsonl",
            "{\"email\": \"not-an-address\"}\n{\"mail\": \"x@example.com\", \"id\": 2}\n{\"email\": \"ok@example.com\"}\n",
        );
        let mut screen = Screen::new("email", Suppressions::default());
        let verdicts: Vec<String> = rows(&audience, "email")
            .unwrap()
            .map(|row| match screen.screen(row.unwrap()) {
                Verdict::Invalid { line, problem, .. } => format!("{line}: {problem}"),
                Verdict::Send(r) => format!("{}: send", r.line),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            verdicts,
            [
                "1: `not-an-address` is not a valid email address",
                "2: no `email` field; the row has `id` and `mail`",
                "3: send"
            ]
        );
        assert_eq!(screen.tally().invalid, 2);
    }

    #[test]
    fn csv_separators_quoting_and_byte_order_marks() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [
            ("comma.csv", "email,name\nann@example.com,Ann\n"),
            ("bom.csv", "\u{feff}email,name\nann@example.com,Ann\n"),
            (
                "quoted.csv",
                "\"email\",\"name\"\n\"ann@example.com\",\"Ann, A.\"\n",
            ),
            (
                "semicolon.csv",
                "\"name\";\"email\"\n\"Ann\";\"ann@example.com\"\n",
            ),
            ("tab.csv", "name\temail\nAnn\tann@example.com\n"),
        ] {
            let audience = write(dir.path(), name, text);
            let (tally, send) = screen_all(&audience, &[]);
            assert_eq!(tally.rows, 1, "{name}");
            assert_eq!(send, [(2, "ann@example.com".to_owned())], "{name}");
        }
    }

    #[test]
    fn a_jsonl_byte_order_mark_is_dropped_before_the_first_row_only() {
        let dir = tempfile::tempdir().unwrap();
        let audience = write(
            dir.path(),
            "bom.jsonl",
            "\u{feff}{\"email\": \"ann@example.com\"}\r\n\r\n{\"email\": \"bob@example.com\"}\r\n",
        );
        let (_, send) = screen_all(&audience, &[]);
        assert_eq!(
            send,
            [
                (1, "ann@example.com".to_owned()),
                (3, "bob@example.com".to_owned())
            ]
        );
        let later = write(
            dir.path(),
            "later.jsonl",
            "{\"email\": \"ann@example.com\"}\n\u{feff}{\"email\": \"bob@example.com\"}\n",
        );
        let errors: Vec<String> = rows(&later, "email")
            .unwrap()
            .filter_map(Result::err)
            .map(|e| e.to_string())
            .collect();
        assert_eq!(
            errors,
            [format!(
                "{}:2: expected value at line 1 column 1",
                later.display()
            )]
        );
    }

    #[test]
    fn a_header_without_the_address_column_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let audience = write(
            dir.path(),
            "a.csv",
            "mail,name,locale\nann@example.com,Ann,en\n",
        );
        let error = rows(&audience, "email").err().unwrap();
        assert_eq!(
            error.to_string(),
            format!(
                "{}:1: no column `email` in the header; the header has `mail`, `name` and `locale`",
                audience.display()
            )
        );
    }

    #[test]
    fn a_row_longer_than_the_limit_is_refused_not_read_into_memory() {
        let dir = tempfile::tempdir().unwrap();
        let long = "x".repeat(usize::try_from(crate::input::MAX_RECORD).unwrap() + 10);
        for (name, first) in [
            ("long.csv", "email\na@example.com\n"),
            ("long.jsonl", "{\"email\": \"a@example.com\"}\n"),
        ] {
            let audience = write(dir.path(), name, &format!("{first}{long}"));
            let error = rows(&audience, "email")
                .unwrap()
                .find_map(Result::err)
                .expect("refused");
            assert!(
                error
                    .to_string()
                    .contains("a row of more than 1048576 bytes"),
                "{name}: {error}"
            );
        }
    }

    #[test]
    fn malformed_rows_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let audience = write(
            dir.path(),
            "a.csv",
            "email,name\na@example.com,A\nb@example.com\n",
        );
        let error = rows(&audience, "email")
            .unwrap()
            .nth(1)
            .unwrap()
            .unwrap_err();
        let expected = format!("{}:3: expected 2 fields, found 1", audience.display());
        assert_eq!(error.to_string(), expected);

        let jsonl = write(
            dir.path(),
            "b.jsonl",
            "{\"email\": \"a@example.com\"}\n[1, 2]\n{oops\n",
        );
        let errors: Vec<String> = rows(&jsonl, "email")
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
    fn suppression_lists_in_every_accepted_format() {
        let dir = tempfile::tempdir().unwrap();
        let audience = write(
            dir.path(),
            "a.csv",
            "email\nann@example.com\nbob@example.com\ncat@example.com\ndan@example.com\neve@example.com\nfay@example.com\n",
        );
        let lists = [
            write(
                dir.path(),
                "bom.txt",
                "\u{feff}ANN@example.com\r\n# a comment\n\n",
            ),
            write(
                dir.path(),
                "quoted.csv",
                "\"email\",\"reason\"\n\"bob@example.com\",\"asked\"\n",
            ),
            write(
                dir.path(),
                "semicolon.csv",
                "email;reason\ncat@example.com;bounced\n",
            ),
            write(
                dir.path(),
                "list.jsonl",
                "{\"email\": \"dan@example.com\"}\n",
            ),
            write(
                dir.path(),
                "twice.txt",
                "ann@example.com\neve@example.com\n",
            ),
        ];
        let lists: Vec<SuppressList> = lists.iter().map(SuppressList::strict).collect();
        let suppressions = Suppressions::load(&lists).unwrap();
        let mut screen = Screen::new("email", suppressions);
        let mut send = Vec::new();
        for row in rows(&audience, "email").unwrap() {
            if let Verdict::Send(r) = screen.screen(row.unwrap()) {
                send.push(r.email);
            }
        }
        assert_eq!(send, ["fay@example.com"]);
        assert_eq!(screen.tally().suppressed, 5);
        let counts: Vec<u64> = screen.suppressed_by().iter().map(|(_, n)| *n).collect();
        assert_eq!(counts, [1, 1, 1, 1, 2]);
    }

    #[test]
    fn a_suppression_entry_that_is_not_a_bare_address_refuses_the_list() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text, line, value, hint) in [
            (
                "a.txt",
                "ok@example.com\nAnn <ann@example.com>\n",
                2,
                "Ann <ann@example.com>",
                " (write `ann@example.com`)",
            ),
            (
                "b.txt",
                "mailto:bob@example.com\n",
                1,
                "mailto:bob@example.com",
                " (write `bob@example.com`)",
            ),
            ("c.csv", "email\nok@example.com\nnobody\n", 3, "nobody", ""),
            (
                "d.jsonl",
                "{\"email\": \"a@example.com, b@example.com\"}\n",
                1,
                "a@example.com, b@example.com",
                "",
            ),
            (
                "e.txt",
                "caf\u{e9}@example.com\n",
                1,
                "caf\u{e9}@example.com",
                "",
            ),
        ] {
            let list = write(dir.path(), name, text);
            let error = Suppressions::load(&[SuppressList::strict(&list)]).unwrap_err();
            assert_eq!(
                error.to_string(),
                format!(
                    "{}:{line}: `{value}` is not an email address{hint}; suppression lists hold one bare address per entry",
                    list.display()
                )
            );
        }
    }

    #[test]
    fn suppression_lists_of_unknown_format_or_without_an_email_column_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let list = write(
            dir.path(),
            "s.csv",
            "address,reason\na@example.com,bounced\n",
        );
        let error = Suppressions::load(&[SuppressList::strict(&list)]).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "{}:1: no column `email` in the header; the header has `address` and `reason`",
                list.display()
            )
        );
        let list = write(dir.path(), "s.tsv", "a@example.com\n");
        let error = Suppressions::load(&[SuppressList::strict(&list)]).unwrap_err();
        assert!(
            error
                .to_string()
                .ends_with("herald does not guess the format of an opt-out list"),
            "{error}"
        );
    }
}
