//! Where each key and value of a YAML document stands in its file.
//!
//! serde gives typed values but forgets positions once deserialization succeeds, so a rule
//! that refuses a well-formed value could not say where it is. This module parses the same
//! text once more with yaml-rust2's event parser and records, for every key path such as
//! `spec.batch.isolation` or `spec.audience.suppress[1]`, the line and column of the key
//! and of scalar values. Lookups of a path that does not exist fall back to the nearest
//! ancestor, which is where a missing key belongs.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl Position {
    fn from_marker(marker: Marker) -> Self {
        // yaml-rust2 counts lines from 1 and columns from 0.
        Self {
            line: marker.line(),
            column: marker.col() + 1,
        }
    }
}

/// What one document of a file looks like, with positions.
#[derive(Debug, Default)]
pub struct DocumentIndex {
    keys: HashMap<String, Position>,
    scalars: HashMap<String, (Position, String)>,
    start: Option<Position>,
    root: Root,
}

/// The shape of a document's top-level node.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    /// Nothing but comments, or an explicit null.
    #[default]
    Empty,
    Mapping,
    Other,
}

impl DocumentIndex {
    pub fn root(&self) -> Root {
        self.root
    }

    /// The scalar text at `path`, if the value there is a scalar.
    pub fn scalar(&self, path: &str) -> Option<&str> {
        self.scalars.get(path).map(|(_, text)| text.as_str())
    }

    /// Whether the document writes the key `path`.
    pub fn has(&self, path: &str) -> bool {
        self.keys.contains_key(path)
    }

    /// Where the value at `path` is, or its key, or the nearest ancestor that exists.
    pub fn value(&self, path: &str) -> Position {
        if let Some((position, _)) = self.scalars.get(path) {
            return *position;
        }
        self.key(path)
    }

    /// Where the key of `path` is, or the nearest ancestor that exists.
    pub fn key(&self, path: &str) -> Position {
        let mut path = path;
        loop {
            if let Some(position) = self.keys.get(path) {
                return *position;
            }
            match parent(path) {
                Some(up) => path = up,
                None => return self.start.unwrap_or(Position { line: 1, column: 1 }),
            }
        }
    }
}

fn parent(path: &str) -> Option<&str> {
    let cut = path.rfind(['.', '['])?;
    Some(&path[..cut])
}

/// A YAML syntax error with its position.
#[derive(Debug, Clone)]
pub struct SyntaxError {
    pub position: Position,
    pub message: String,
}

/// Indexes every document of `text`, in order.
pub fn index(text: &str) -> Result<Vec<DocumentIndex>, SyntaxError> {
    let mut builder = Builder::default();
    Parser::new_from_str(text)
        .load(&mut builder, true)
        .map_err(|error| SyntaxError {
            position: Position::from_marker(*error.marker()),
            message: error.info().to_owned(),
        })?;
    Ok(builder.documents)
}

enum Frame {
    Mapping {
        path: String,
        /// The key whose value comes next, or `None` when a key comes next.
        key: Option<String>,
    },
    Sequence {
        path: String,
        next: usize,
    },
}

#[derive(Default)]
struct Builder {
    documents: Vec<DocumentIndex>,
    stack: Vec<Frame>,
}

impl Builder {
    fn current(&mut self) -> &mut DocumentIndex {
        self.documents
            .last_mut()
            .expect("a node event always follows DocumentStart")
    }

    /// Handles a node (scalar, alias or container start) and returns its path when it is
    /// a value, or `None` when it was a mapping key.
    fn node(&mut self, position: Position, scalar: Option<&str>) -> Option<String> {
        let path = match self.stack.last_mut() {
            None => String::new(),
            Some(Frame::Mapping { path, key }) => match key.take() {
                None => {
                    let name = scalar.unwrap_or("?").to_owned();
                    let full = join(path, &name);
                    *key = Some(name);
                    let document = self.current();
                    // A block mapping's own mark lies after its first key; the first key is
                    // where a reader sees the document start.
                    document.start.get_or_insert(position);
                    document.keys.insert(full, position);
                    return None;
                }
                Some(name) => join(path, &name),
            },
            Some(Frame::Sequence { path, next }) => {
                let full = format!("{path}[{next}]");
                *next += 1;
                self.current().keys.entry(full.clone()).or_insert(position);
                full
            }
        };
        Some(path)
    }
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, marker: Marker) {
        let position = Position::from_marker(marker);
        match event {
            Event::DocumentStart => {
                self.documents.push(DocumentIndex::default());
                self.stack.clear();
            }
            Event::Scalar(text, ..) => {
                let root = self.stack.is_empty();
                if let Some(path) = self.node(position, Some(&text)) {
                    let document = self.current();
                    if root {
                        let null = matches!(text.as_str(), "" | "~" | "null");
                        document.root = if null { Root::Empty } else { Root::Other };
                        document.start = Some(position);
                    }
                    document.scalars.insert(path, (position, text));
                }
            }
            Event::Alias(_) => {
                self.node(position, None);
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let root = self.stack.is_empty();
                let mapping = matches!(event, Event::MappingStart(..));
                let path = self.node(position, None).unwrap_or_default();
                if root {
                    let document = self.current();
                    if mapping {
                        document.root = Root::Mapping;
                    } else {
                        document.root = Root::Other;
                        document.start = Some(position);
                    }
                }
                self.stack.push(if mapping {
                    Frame::Mapping { path, key: None }
                } else {
                    Frame::Sequence { path, next: 0 }
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(line: usize, column: usize) -> Position {
        Position { line, column }
    }

    #[test]
    fn finds_keys_values_and_sequence_items() {
        let text = "kind: Campaign\nspec:\n  batch:\n    isolation: shared\n  suppress:\n    - a.csv\n    - b.csv\n";
        let documents = index(text).unwrap();
        let document = &documents[0];
        assert_eq!(document.root(), Root::Mapping);
        assert_eq!(document.scalar("kind"), Some("Campaign"));
        assert_eq!(document.key("spec.batch.isolation"), at(4, 5));
        assert_eq!(document.value("spec.batch.isolation"), at(4, 16));
        assert_eq!(document.value("spec.suppress[1]"), at(7, 7));
    }

    #[test]
    fn missing_paths_fall_back_to_the_nearest_ancestor() {
        let documents = index("spec:\n  batch:\n    size: 10\n").unwrap();
        assert_eq!(documents[0].key("spec.batch.isolation"), at(2, 3));
        assert_eq!(documents[0].key("apiVersion"), at(1, 1));
    }

    #[test]
    fn counts_every_document_including_empty_ones() {
        let documents = index("# only a comment\n---\na: 1\n---\n# empty\n---\n- x\n").unwrap();
        let roots: Vec<Root> = documents.iter().map(DocumentIndex::root).collect();
        assert_eq!(roots, [Root::Mapping, Root::Empty, Root::Other]);
    }

    #[test]
    fn flow_mappings_are_indexed_too() {
        let documents = index("metadata: {name: Bad_Name}\n").unwrap();
        assert_eq!(documents[0].value("metadata.name"), at(1, 18));
    }

    #[test]
    fn syntax_errors_carry_a_position() {
        let error = index("a: b\n  c: d: e\n").unwrap_err();
        assert_eq!(error.position, at(2, 4));
        assert_eq!(
            error.message,
            "mapping values are not allowed in this context"
        );
    }
}
