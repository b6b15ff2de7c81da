//! Streaming rows out of an audience file: CSV with a header row, or JSONL objects.
//!
//! Rows are yielded one at a time with the line they start on, so an audience of millions
//! is never held in memory and every message about a row can name its line.
//!
//! # Guarantees
//! - A UTF-8 byte order mark is dropped, in CSV and JSONL alike.
//! - A CSV file is read by the csv crate, whatever its quoting. Its separator is `,`, `;`
//!   or a tab: the one that makes the header hold the address column. A header without
//!   that column is refused before any row is read.
//! - No row may be longer than `input::MAX_RECORD`: a file without line breaks is refused,
//!   not read into memory.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::error::AudienceError;
use super::lines::Lines;
use crate::input::{self, MAX_RECORD};
use crate::text::List;

/// One audience row: its columns, and the line of the file it starts on.
#[derive(Debug, Clone)]
pub struct Row {
    pub line: u64,
    pub record: Record,
}

/// The columns of a row, as the file holds them.
#[derive(Debug, Clone)]
pub enum Record {
    /// CSV values, sharing one header across all rows.
    Csv {
        headers: Arc<[String]>,
        values: csv::StringRecord,
    },
    Json(serde_json::Map<String, serde_json::Value>),
}

impl Record {
    /// The value of `column` as text; JSON strings unquoted, other JSON values as JSON.
    pub fn get(&self, column: &str) -> Option<String> {
        match self {
            Self::Csv { headers, values } => {
                let index = headers.iter().position(|h| h == column)?;
                values.get(index).map(str::to_owned)
            }
            Self::Json(map) => match map.get(column)? {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Null => None,
                other => Some(other.to_string()),
            },
        }
    }

    /// The column names, in file order.
    pub fn columns(&self) -> Vec<String> {
        match self {
            Self::Csv { headers, .. } => headers.to_vec(),
            Self::Json(map) => map.keys().cloned().collect(),
        }
    }

    /// A stand-in row for someone outside the audience (a seed address): every column of
    /// the audience holds its own name in brackets, `[first_name]`, except `set`.
    pub fn placeholder(columns: &[String], set: &[(&str, &str)]) -> Self {
        let mut map: serde_json::Map<String, serde_json::Value> = columns
            .iter()
            .map(|c| (c.clone(), format!("[{c}]").into()))
            .collect();
        for (column, value) in set {
            map.insert((*column).to_owned(), (*value).into());
        }
        Self::Json(map)
    }
}

/// Opens `path` and yields its rows; the format follows the extension (`.jsonl` or CSV).
/// A CSV file must have the column `column` (the address column).
pub fn rows(path: &Path, column: &str) -> Result<Rows, AudienceError> {
    let file = input::open(path)?;
    let limit = Arc::new(AtomicU64::new(MAX_RECORD + SLACK));
    let is_jsonl = path.extension().is_some_and(|e| e == "jsonl");
    // JSONL is read line by line, so it counts its own lines.
    let lines = (!is_jsonl).then(|| Arc::new(Mutex::new(Lines::default())));
    let mut reader = BufReader::new(Bounded {
        inner: file,
        read: 0,
        limit: Arc::clone(&limit),
        lines: lines.clone(),
    });
    if is_jsonl {
        return Ok(Rows::Json {
            path: path.to_owned(),
            reader,
            line: 0,
            limit,
        });
    }
    let mut first = Vec::new();
    reader
        .read_until(b'\n', &mut first)
        .map_err(|error| read_error(path, 1, &error))?;
    let delimiter = delimiter(path, &first, column)?;
    let mut csv = csv::ReaderBuilder::new()
        .flexible(false)
        .delimiter(delimiter)
        .from_reader(Cursor::new(first).chain(reader));
    let lines = lines.expect("CSV lines are tracked");
    let headers = csv
        .headers()
        .map_err(|error| csv_error(path, &error, &lines))?;
    let headers: Arc<[String]> = headers.iter().map(|h| h.trim().to_owned()).collect();
    Ok(Rows::Csv {
        path: path.to_owned(),
        headers,
        reader: Box::new(csv),
        limit,
        lines,
    })
}

/// How far the underlying reader may run ahead of the last complete record.
const SLACK: u64 = 64 * 1024;

type CsvReader = csv::Reader<io::Chain<Cursor<Vec<u8>>, BufReader<Bounded>>>;

/// The rows of one audience file, in order.
pub enum Rows {
    Csv {
        path: PathBuf,
        headers: Arc<[String]>,
        reader: Box<CsvReader>,
        limit: Arc<AtomicU64>,
        /// Where the file's lines start, for line numbers as editors show them.
        lines: Arc<Mutex<Lines>>,
    },
    Json {
        path: PathBuf,
        reader: BufReader<Bounded>,
        line: u64,
        limit: Arc<AtomicU64>,
    },
}

impl Rows {
    /// The CSV header, or `None` for JSONL, whose rows name their own fields.
    pub fn headers(&self) -> Option<&[String]> {
        match self {
            Self::Csv { headers, .. } => Some(headers),
            Self::Json { .. } => None,
        }
    }
}

impl Iterator for Rows {
    type Item = Result<Row, AudienceError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Self::Csv {
                path,
                headers,
                reader,
                limit,
                lines,
            } => {
                let mut values = csv::StringRecord::new();
                match reader.read_record(&mut values) {
                    Ok(false) => None,
                    Ok(true) => {
                        let line = values.position().map_or(0, |p| line_at(lines, p.byte()));
                        if values.as_byte_record().as_slice().len() as u64 > MAX_RECORD {
                            return Some(Err(too_long(path, line)));
                        }
                        let end = reader.position().byte();
                        limit.store(end + MAX_RECORD + SLACK, Ordering::Relaxed);
                        let record = Record::Csv {
                            headers: Arc::clone(headers),
                            values,
                        };
                        Some(Ok(Row { line, record }))
                    }
                    Err(error) => {
                        let mut error = csv_error(path, &error, lines);
                        if let AudienceError::Syntax { line, .. } = &mut error {
                            if *line == 0 {
                                *line = line_at(lines, reader.position().byte());
                            }
                        }
                        Some(Err(error))
                    }
                }
            }
            Self::Json {
                path,
                reader,
                line,
                limit,
            } => loop {
                *line += 1;
                let mut bytes = Vec::new();
                match reader.read_until(b'\n', &mut bytes) {
                    Ok(0) => return None,
                    Ok(_) => {}
                    Err(error) => return Some(Err(read_error(path, *line, &error))),
                }
                if bytes.len() as u64 > MAX_RECORD {
                    return Some(Err(too_long(path, *line)));
                }
                let consumed = reader.get_ref().read - reader.buffer().len() as u64;
                limit.store(consumed + MAX_RECORD + SLACK, Ordering::Relaxed);
                let Ok(text) = std::str::from_utf8(&bytes) else {
                    return Some(Err(AudienceError::Syntax {
                        path: path.clone(),
                        line: *line,
                        message: "not valid UTF-8".to_owned(),
                    }));
                };
                let text = if *line == 1 {
                    text.strip_prefix('\u{feff}').unwrap_or(text)
                } else {
                    text
                };
                if text.trim().is_empty() {
                    continue;
                }
                let parsed = serde_json::from_str::<serde_json::Value>(text);
                return Some(match parsed {
                    Ok(serde_json::Value::Object(map)) => Ok(Row {
                        line: *line,
                        record: Record::Json(map),
                    }),
                    Ok(_) => Err(AudienceError::NotAnObject {
                        path: path.clone(),
                        line: *line,
                    }),
                    Err(error) => Err(AudienceError::Syntax {
                        path: path.clone(),
                        line: *line,
                        message: error.to_string(),
                    }),
                });
            },
        }
    }
}

/// The separator that makes the header hold `column`: `,`, `;` or a tab, tried in that
/// order. A header that holds it with none of them is refused.
fn delimiter(path: &Path, header: &[u8], column: &str) -> Result<u8, AudienceError> {
    let fields = |delimiter: u8| -> Vec<String> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .from_reader(header);
        let mut record = csv::StringRecord::new();
        match reader.read_record(&mut record) {
            Ok(true) => record.iter().map(|f| f.trim().to_owned()).collect(),
            _ => Vec::new(),
        }
    };
    let candidates = [b',', b';', b'\t'].map(|d| (d, fields(d)));
    if let Some((delimiter, _)) = candidates
        .iter()
        .find(|(_, fields)| fields.iter().any(|f| f == column))
    {
        return Ok(*delimiter);
    }
    let found = candidates
        .into_iter()
        .map(|(_, fields)| fields)
        .max_by_key(Vec::len)
        .unwrap_or_default();
    Err(AudienceError::MissingColumn {
        path: path.to_owned(),
        column: column.to_owned(),
        found: if found.iter().all(String::is_empty) {
            "nothing: the file is empty".to_owned()
        } else {
            List::and_ticked(&found).to_string()
        },
    })
}

/// A reader that fails once it runs more than `limit` bytes into the file: the rows
/// reader moves the limit forward after every complete record.
pub struct Bounded {
    inner: File,
    read: u64,
    limit: Arc<AtomicU64>,
    /// Notes where lines start as they are read (CSV only).
    lines: Option<Arc<Mutex<Lines>>>,
}

#[derive(Debug)]
struct TooLong;

impl std::fmt::Display for TooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "a row of more than {MAX_RECORD} bytes; herald refuses rows that long"
        )
    }
}

impl std::error::Error for TooLong {}

impl Read for Bounded {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.read > self.limit.load(Ordering::Relaxed) {
            return Err(io::Error::new(io::ErrorKind::InvalidData, TooLong));
        }
        let n = self.inner.read(buf)?;
        if let Some(lines) = &self.lines {
            let mut lines = lines.lock().unwrap_or_else(PoisonError::into_inner);
            lines.scan(&buf[..n], self.read);
        }
        self.read += n as u64;
        Ok(n)
    }
}

fn too_long(path: &Path, line: u64) -> AudienceError {
    AudienceError::Syntax {
        path: path.to_owned(),
        line,
        message: TooLong.to_string(),
    }
}

fn read_error(path: &Path, line: u64, error: &io::Error) -> AudienceError {
    AudienceError::Syntax {
        path: path.to_owned(),
        line,
        message: error.to_string(),
    }
}

/// The line, as an editor shows it, of the record the parser stamped with byte `offset`.
fn line_at(lines: &Mutex<Lines>, offset: u64) -> u64 {
    lines
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .at(offset)
}

fn csv_error(path: &Path, error: &csv::Error, lines: &Mutex<Lines>) -> AudienceError {
    let line = error.position().map_or(0, |p| line_at(lines, p.byte()));
    let message = match error.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            format!("expected {expected_len} fields, found {len}")
        }
        csv::ErrorKind::Io(error) => error.to_string(),
        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".to_owned(),
        _ => error.to_string(),
    };
    AudienceError::Syntax {
        path: path.to_owned(),
        line,
        message,
    }
}
