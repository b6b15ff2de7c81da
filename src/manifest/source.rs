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
    /// Keys taken out so that the rest could be typed, each already reported: the rules
    /// still judge the rest, so one wrong key does not hide the other problems.
    pub removed: Vec<String>,
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

    /// Whether a key taken out of this document explains `diagnostic`: a problem with
    /// that key, with a part of it, or with what holds it (a rule seeing it missing).
    pub fn explains(&self, diagnostic: &Diagnostic) -> bool {
        let key = diagnostic.key.as_str();
        let within = |outer: &str, inner: &str| {
            inner == outer
                || inner
                    .strip_prefix(outer)
                    .is_some_and(|rest| rest.starts_with(['.', '[']))
        };
        self.removed.iter().any(|removed| {
            within(removed, key) || (!key.is_empty() && key != "spec" && within(key, removed))
        })
    }
}

/// Every document of every manifest file that parsed into its type.
#[derive(Debug, Default)]
pub struct Documents {
    pub campaigns: Vec<Loaded<CampaignDoc>>,
    pub transports: Vec<Loaded<TransportDoc>>,
    /// The names of transports that could not be typed at all (already reported), so
    /// that campaigns naming them are not told the transport does not exist.
    pub untyped_transports: Vec<String>,
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
    let parsed = serde_yaml::Deserializer::from_str(text).take(count);
    for (index, deserializer) in indexes.into_iter().zip(parsed) {
        let header = Loaded {
            doc: (),
            file: file.to_owned(),
            index,
            removed: Vec::new(),
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
        // Read as YAML first, then typed: a document that does not fit its type is read
        // again, problem by problem, so one wrong key does not hide the others.
        let value = match serde_yaml::Value::deserialize(deserializer) {
            Ok(value) => value,
            Err(error) => {
                diagnostics.push(structure(&file, &index, &error.to_string()));
                continue;
            }
        };
        match kind {
            Kind::Campaign => {
                let isolation = value
                    .get("spec")
                    .and_then(|s| s.get("batch"))
                    .and_then(|b| b.get("isolation"))
                    .cloned();
                match typed::<CampaignDoc>(&file, &index, value, diagnostics) {
                    Some((doc, removed)) => out.campaigns.push(Loaded {
                        doc,
                        file,
                        index,
                        removed,
                    }),
                    // The rule herald exists for is judged even on a document that
                    // cannot be read as a campaign at all.
                    None => {
                        if let Some(problem) = super::policy::isolation(isolation.as_ref()) {
                            let header = Loaded {
                                doc: (),
                                file,
                                index,
                                removed: Vec::new(),
                            };
                            diagnostics.push(problem.at(&header));
                        }
                    }
                }
            }
            Kind::Transport => {
                let name = index.scalar("metadata.name").map(str::to_owned);
                match typed::<TransportDoc>(&file, &index, value, diagnostics) {
                    Some((doc, removed)) => out.transports.push(Loaded {
                        doc,
                        file,
                        index,
                        removed,
                    }),
                    None => out.untyped_transports.extend(name),
                }
            }
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

/// The most structural problems reported for one document.
const MOST_PROBLEMS: usize = 20;

/// `value` as a `T`, with a diagnostic for every part that does not fit: each problem
/// is reported, the part removed, and the rest read again. What could be typed comes back
/// with the keys removed (the rules judge the rest); `None` when nothing could be.
fn typed<T: serde::de::DeserializeOwned>(
    file: &Path,
    index: &DocumentIndex,
    mut value: serde_yaml::Value,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<(T, Vec<String>)> {
    let mut removed: Vec<String> = Vec::new();
    for _ in 0..MOST_PROBLEMS {
        let error = match serde_path_to_error::deserialize::<_, T>(value.clone()) {
            Ok(doc) => return Some((doc, removed)),
            Err(error) => error,
        };
        let path = error.path().to_string();
        let inner = error.into_inner().to_string();
        // A key removed for a bad value is then missing: that is not a second problem.
        let missing = inner
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split_once('`'))
            .map(|(field, _)| join(&path, field));
        if !missing.as_ref().is_some_and(|key| removed.contains(key)) {
            let message = if path == "." || path.is_empty() {
                inner.clone()
            } else {
                format!("{path}: {inner}")
            };
            diagnostics.push(structure(file, index, &message));
        }
        let unknown = inner.strip_prefix("unknown field `").map(str::to_owned);
        let culprit = match unknown.as_deref() {
            Some(rest) if !path.ends_with(rest.split('`').next().unwrap_or_default()) => {
                join(&path, rest.split('`').next().unwrap_or_default())
            }
            _ => missing.unwrap_or(path),
        };
        if !remove(&mut value, &culprit) {
            return None;
        }
        removed.push(culprit);
    }
    None
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() || path == "." {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

/// Removes the key at `path` (`spec.rollout.seed[0]`) from `value`; `false` when there is
/// none.
fn remove(value: &mut serde_yaml::Value, path: &str) -> bool {
    let path = path.replace('[', ".[");
    let mut parts: Vec<&str> = path.split('.').filter(|p| !p.is_empty()).collect();
    let Some(last) = parts.pop() else {
        return false;
    };
    let mut node = value;
    for part in parts {
        let next = match part.strip_prefix('[').and_then(|p| p.strip_suffix(']')) {
            Some(i) => i.parse().ok().and_then(|i: usize| node.get_mut(i)),
            None => node.get_mut(part),
        };
        let Some(next) = next else { return false };
        node = next;
    }
    match last.strip_prefix('[').and_then(|p| p.strip_suffix(']')) {
        Some(i) => match (node.as_sequence_mut(), i.parse::<usize>()) {
            (Some(sequence), Ok(i)) if i < sequence.len() => {
                sequence.remove(i);
                true
            }
            _ => false,
        },
        None => node.as_mapping_mut().and_then(|m| m.remove(last)).is_some(),
    }
}

/// Turns serde's message into a diagnostic: the path becomes the key, and an unknown field
/// is reported under its own name (`spec.batch.isolaton: unknown key, ...`), with the
/// known key it most likely meant.
fn structure(file: &Path, index: &DocumentIndex, message: &str) -> Diagnostic {
    let mut message = message.to_owned();
    let mut position = None;
    if let Some((rest, line, column)) = trailing_location(&message) {
        position = Some(locate::Position { line, column });
        message = rest;
    }
    let (mut key, mut message) = match message.split_once(": ") {
        Some((path, rest)) if !path.contains(' ') => (path.to_owned(), rest.to_owned()),
        _ => (String::new(), message),
    };
    if let Some(rest) = message.strip_prefix("unknown field `") {
        if let Some((field, expected)) = rest.split_once("`, ") {
            if !key.ends_with(field) {
                key = join(&key, field);
            }
            message = match closest(field, expected) {
                Some(known) => format!("unknown key; did you mean `{known}`? ({expected})"),
                None => format!("unknown key, {expected}"),
            };
        }
    }
    let position = position.unwrap_or_else(|| index.key(&key));
    Diagnostic {
        location: Location::new(file.to_owned(), position),
        key,
        problem: Problem::Structure { message },
    }
}

/// The ` at line L column C` ending of a `serde_yaml` message, split off.
fn trailing_location(message: &str) -> Option<(String, usize, usize)> {
    let (rest, at) = message.rsplit_once(" at line ")?;
    let (line, column) = at.split_once(" column ")?;
    Some((rest.to_owned(), line.parse().ok()?, column.parse().ok()?))
}

/// The known key in `expected` (serde's "expected one of `a`, `b`") closest to `field`,
/// when one is close enough to be a typo of it.
fn closest(field: &str, expected: &str) -> Option<String> {
    crate::text::closest(field, expected.split('`').skip(1).step_by(2)).map(str::to_owned)
}
