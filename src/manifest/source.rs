//! Reading manifest files: discovery, YAML parsing, and typed documents with positions.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::diagnostic::{Diagnostic, Location, Problem};
use super::error::LoadError;
use super::locate::{self, DocumentIndex, Root};
use super::model::{API_VERSION, CampaignDoc, TransportDoc};

/// A typed document together with where it came from.
#[derive(Debug)]
pub struct Loaded<T> {
    pub doc: T,
    pub file: PathBuf,
    pub index: DocumentIndex,
}

impl<T> Loaded<T> {
    /// The folder that relative paths inside this document are resolved against.
    pub fn dir(&self) -> &Path {
        self.file.parent().unwrap_or(Path::new(""))
    }

    /// A problem with the value at `key` (or the nearest ancestor when it is missing).
    pub fn at_value(&self, key: &str, problem: Problem) -> Diagnostic {
        Diagnostic {
            location: Location::new(self.file.clone(), self.index.value(key)),
            key: key.to_owned(),
            problem,
        }
    }

    /// A problem with the key itself, such as a field that does not belong there.
    pub fn at_key(&self, key: &str, problem: Problem) -> Diagnostic {
        Diagnostic {
            location: Location::new(self.file.clone(), self.index.key(key)),
            key: key.to_owned(),
            problem,
        }
    }

    pub fn location(&self) -> Location {
        Location::new(self.file.clone(), self.index.value("metadata.name"))
    }
}

/// Every document of every manifest file that parsed into its type.
#[derive(Debug, Default)]
pub struct Documents {
    pub campaigns: Vec<Loaded<CampaignDoc>>,
    pub transports: Vec<Loaded<TransportDoc>>,
}

/// The manifest files at `path`: the file itself, or the `*.yaml`/`*.yml` files directly in
/// the folder, sorted. Subfolders are not searched: they hold templates and catalogs.
pub fn discover(path: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let metadata = fs::metadata(path).map_err(|_| LoadError::NotFound {
        path: path.to_owned(),
    })?;
    if metadata.is_file() {
        return Ok(vec![path.to_owned()]);
    }
    let entries = fs::read_dir(path).map_err(|source| LoadError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| LoadError::Read {
            path: path.to_owned(),
            source,
        })?;
        let file = entry.path();
        let is_yaml = matches!(
            file.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        );
        if is_yaml && file.is_file() {
            files.push(file);
        }
    }
    if files.is_empty() {
        return Err(LoadError::NoManifests {
            path: path.to_owned(),
        });
    }
    files.sort();
    Ok(files)
}

/// Parses every file, adding a diagnostic for each document that cannot be typed.
pub fn read(files: &[PathBuf], diagnostics: &mut Vec<Diagnostic>) -> Result<Documents, LoadError> {
    let mut documents = Documents::default();
    for file in files {
        let text = fs::read_to_string(file).map_err(|source| LoadError::Read {
            path: file.clone(),
            source,
        })?;
        read_text(file, &text, &mut documents, diagnostics);
    }
    Ok(documents)
}

fn read_text(file: &Path, text: &str, out: &mut Documents, diagnostics: &mut Vec<Diagnostic>) {
    let indexes = match locate::index(text) {
        Ok(indexes) => indexes,
        Err(error) => {
            diagnostics.push(Diagnostic {
                location: Location::new(file.to_owned(), error.position),
                key: String::new(),
                problem: Problem::Syntax {
                    message: error.message,
                },
            });
            return;
        }
    };
    // Both parsers agree on document boundaries for text that parsed; `take` also guards
    // against serde_yaml's iterator repeating an error forever.
    let count = indexes.len();
    let typed = serde_yaml::Deserializer::from_str(text).take(count);
    for (index, deserializer) in indexes.into_iter().zip(typed) {
        let header = Loaded {
            doc: (),
            file: file.to_owned(),
            index,
        };
        match header.index.root() {
            Root::Empty => continue,
            Root::Other => {
                diagnostics.push(header.at_value("", Problem::NotAMapping));
                continue;
            }
            Root::Mapping => {}
        }
        let Some(kind) = check_header(&header, diagnostics) else {
            continue;
        };
        let Loaded { file, index, .. } = header;
        match kind {
            Kind::Campaign => match CampaignDoc::deserialize(deserializer) {
                Ok(doc) => out.campaigns.push(Loaded { doc, file, index }),
                Err(error) => diagnostics.push(structure(&file, &index, &error)),
            },
            Kind::Transport => match TransportDoc::deserialize(deserializer) {
                Ok(doc) => out.transports.push(Loaded { doc, file, index }),
                Err(error) => diagnostics.push(structure(&file, &index, &error)),
            },
        }
    }
}

enum Kind {
    Campaign,
    Transport,
}

/// Checks `apiVersion` and `kind`, which decide how the rest is read.
fn check_header(header: &Loaded<()>, diagnostics: &mut Vec<Diagnostic>) -> Option<Kind> {
    let before = diagnostics.len();
    match header.index.scalar("apiVersion") {
        None => diagnostics.push(header.at_key("apiVersion", Problem::ApiVersionMissing)),
        Some(API_VERSION) => {}
        Some(found) => diagnostics.push(header.at_value(
            "apiVersion",
            Problem::ApiVersionWrong {
                found: found.to_owned(),
            },
        )),
    }
    let kind = match header.index.scalar("kind") {
        Some("Campaign") => Some(Kind::Campaign),
        Some("Transport") => Some(Kind::Transport),
        None => {
            diagnostics.push(header.at_key("kind", Problem::KindMissing));
            None
        }
        Some(found) => {
            diagnostics.push(header.at_value(
                "kind",
                Problem::KindUnknown {
                    found: found.to_owned(),
                },
            ));
            None
        }
    };
    if diagnostics.len() > before {
        None
    } else {
        kind
    }
}

/// Turns serde's error into a diagnostic: the path becomes the key, and an unknown field
/// is reported under its own name (`spec.batch.isolaton: unknown key, ...`).
fn structure(file: &Path, index: &DocumentIndex, error: &serde_yaml::Error) -> Diagnostic {
    let mut message = error.to_string();
    let mut position = None;
    if let Some(location) = error.location() {
        let suffix = format!(" at line {} column {}", location.line(), location.column());
        if let Some(end) = message.strip_suffix(&suffix).map(str::len) {
            message.truncate(end);
        }
        position = Some(locate::Position {
            line: location.line(),
            column: location.column(),
        });
    }
    let (mut key, mut message) = match message.split_once(": ") {
        Some((path, rest)) if !path.contains(' ') => (path.to_owned(), rest.to_owned()),
        _ => (String::new(), message),
    };
    if let Some(rest) = message.strip_prefix("unknown field `") {
        if let Some((field, expected)) = rest.split_once("`, ") {
            key = if key.is_empty() {
                field.to_owned()
            } else {
                format!("{key}.{field}")
            };
            message = format!("unknown key, {expected}");
        }
    }
    let position = position.unwrap_or_else(|| index.key(&key));
    Diagnostic {
        location: Location::new(file.to_owned(), position),
        key,
        problem: Problem::Structure { message },
    }
}
