//! Streaming rows out of an audience file: CSV with a header row, or JSONL objects.
//!
//! Rows are yielded one at a time with the line they start on, so an audience of millions
//! is never held in memory and every message about a row can name its line.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::AudienceError;

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
pub fn rows(path: &Path) -> Result<Rows, AudienceError> {
    let file = File::open(path).map_err(|source| AudienceError::Open {
        path: path.to_owned(),
        source,
    })?;
    let is_jsonl = path.extension().is_some_and(|e| e == "jsonl");
    if is_jsonl {
        return Ok(Rows::Json {
            path: path.to_owned(),
            lines: BufReader::new(file).lines(),
            line: 0,
        });
    }
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(BufReader::new(file));
    let headers = reader.headers().map_err(|error| csv_error(path, &error))?;
    let headers: Arc<[String]> = headers.iter().map(|h| h.trim().to_owned()).collect();
    Ok(Rows::Csv {
        path: path.to_owned(),
        headers,
        reader: Box::new(reader),
    })
}

/// The rows of one audience file, in order.
pub enum Rows {
    Csv {
        path: PathBuf,
        headers: Arc<[String]>,
        reader: Box<csv::Reader<BufReader<File>>>,
    },
    Json {
        path: PathBuf,
        lines: std::io::Lines<BufReader<File>>,
        line: u64,
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
            } => {
                let mut values = csv::StringRecord::new();
                match reader.read_record(&mut values) {
                    Ok(false) => None,
                    Ok(true) => {
                        let line = values.position().map_or(0, csv::Position::line);
                        let record = Record::Csv {
                            headers: Arc::clone(headers),
                            values,
                        };
                        Some(Ok(Row { line, record }))
                    }
                    Err(error) => Some(Err(csv_error(path, &error))),
                }
            }
            Self::Json { path, lines, line } => loop {
                *line += 1;
                let text = match lines.next()? {
                    Ok(text) => text,
                    Err(source) => {
                        return Some(Err(AudienceError::Open {
                            path: path.clone(),
                            source,
                        }));
                    }
                };
                if text.trim().is_empty() {
                    continue;
                }
                let parsed = serde_json::from_str::<serde_json::Value>(&text);
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

fn csv_error(path: &Path, error: &csv::Error) -> AudienceError {
    let line = error.position().map_or(0, csv::Position::line);
    let message = match error.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            format!("expected {expected_len} fields, found {len}")
        }
        _ => error.to_string(),
    };
    AudienceError::Syntax {
        path: path.to_owned(),
        line,
        message,
    }
}
