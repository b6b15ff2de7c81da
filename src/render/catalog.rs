//! Locale catalogs: `<locale>.yaml` files of (nested) strings, and the fallback chain.
//!
//! A recipient's locale value resolves to a chain (`locale`: the value as a tag, then ever
//! shorter tags, `zh-Hant-TW` -> `zh-Hant` -> `zh`, then the default locale, keeping only
//! catalogs that exist). Each chain is flattened once into one table, so `t(key)` is a
//! single lookup however deep the chain; each distinct value is resolved once.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use super::escape::Html;
use minijinja::value::Value;

use super::error::RenderError;
use super::locale::{Chooser, Reached};
use crate::langtag::LanguageTag;

/// Every catalog of a campaign, and the flattened tables built from them on demand.
#[derive(Debug)]
pub struct Catalogs {
    chooser: Chooser,
    files: HashMap<String, (PathBuf, HashMap<String, String>)>,
    /// By the locale column's value, trimmed.
    resolved: RwLock<HashMap<String, Arc<Resolved>>>,
    /// By chain, the catalog names joined with NUL.
    flattened: RwLock<HashMap<String, Arc<Flat>>>,
}

/// The strings one locale value sees, with where each came from.
#[derive(Debug)]
pub struct Resolved {
    /// The value as people should see it: `de-AT` for `de_at`, `Deutsch` when mapped.
    pub requested: String,
    pub reached: Reached,
    /// The locale whose catalog answers first (`zh` for a `zh-TW` recipient without `zh-TW.yaml`).
    pub catalog: String,
    flat: Arc<Flat>,
}

/// One chain's strings, flattened.
#[derive(Debug)]
pub struct Flat {
    pub strings: HashMap<String, Entry>,
    /// Keys of the default catalog that this chain takes from a fallback catalog.
    pub fallback_keys: BTreeSet<String>,
}

impl std::ops::Deref for Resolved {
    type Target = Flat;

    fn deref(&self) -> &Flat {
        &self.flat
    }
}

/// One catalog string, prepared once per locale so that `t()` allocates nothing for
/// strings without placeholders and never escapes the same text twice.
#[derive(Debug)]
pub struct Entry {
    pub text: String,
    /// Whether the text comes from a catalog other than the first in the chain.
    pub fallback: bool,
    /// The text as a template value, for templates that do not escape.
    pub plain: Value,
    /// The text HTML-escaped and marked safe, for `.html` templates.
    pub escaped: Value,
    /// The text split at `{name}` placeholders, or `None` when it has none.
    pub parts: Option<Vec<Part>>,
}

impl Entry {
    fn new(text: String, fallback: bool) -> Self {
        let escaped = Html(&text).to_string();
        Self {
            plain: Value::from(text.as_str()),
            escaped: Value::from_safe_string(escaped),
            parts: Some(parts(&text))
                .filter(|p| p.iter().any(|p| matches!(p, Part::Placeholder(_)))),
            text,
            fallback,
        }
    }
}

impl Catalogs {
    /// Loads every `*.yaml`/`*.yml` file in `dir`; the file stem is the locale. `map` is
    /// `locales.map`, its keys lowercased and sorted.
    pub fn load(
        dir: &Path,
        default: &str,
        map: &[(String, LanguageTag)],
    ) -> Result<Self, RenderError> {
        let read_error = |source| RenderError::CatalogFolder {
            path: dir.to_owned(),
            source,
        };
        let mut files = HashMap::new();
        for entry in fs::read_dir(dir).map_err(read_error)? {
            let path = entry.map_err(read_error)?.path();
            let is_yaml = matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            );
            let Some(locale) = path
                .file_stem()
                .and_then(|s| s.to_str())
                .filter(|_| is_yaml)
            else {
                continue;
            };
            if let Err(reason) = LanguageTag::parse(locale) {
                return Err(RenderError::CatalogName {
                    stem: locale.to_owned(),
                    path,
                    reason,
                });
            }
            let strings = read_catalog(&path)?;
            files.insert(locale.to_owned(), (path, strings));
        }
        let chooser =
            Chooser::new(files.keys().map(String::as_str), default, map).ok_or_else(|| {
                RenderError::DefaultCatalogMissing {
                    dir: dir.to_owned(),
                    locale: default.to_owned(),
                }
            })?;
        Ok(Self {
            chooser,
            files,
            resolved: RwLock::default(),
            flattened: RwLock::default(),
        })
    }

    /// The locales that have a catalog file.
    pub fn locales(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    /// The default catalog's locale (its file's stem).
    pub fn default_locale(&self) -> &str {
        self.chooser.default_catalog()
    }

    /// The catalog file of the default locale, for messages about missing keys.
    pub fn default_path(&self) -> &Path {
        &self.files[self.default_locale()].0
    }

    /// The flattened strings for a recipient whose locale column says `value`: chosen
    /// once per distinct value, flattened once per chain.
    pub fn resolve(&self, value: &str) -> Arc<Resolved> {
        let value = value.trim();
        if let Some(found) = self.resolved.read().expect("catalog lock").get(value) {
            return Arc::clone(found);
        }
        let choice = self.chooser.choose(value);
        let resolved = Arc::new(Resolved {
            requested: choice.requested,
            reached: choice.reached,
            catalog: choice.chain[0].clone(),
            flat: self.flatten(&choice.chain),
        });
        let mut cache = self.resolved.write().expect("catalog lock");
        Arc::clone(cache.entry(value.to_owned()).or_insert(resolved))
    }

    fn flatten(&self, chain: &[String]) -> Arc<Flat> {
        let key = chain.join("\0");
        if let Some(found) = self.flattened.read().expect("catalog lock").get(&key) {
            return Arc::clone(found);
        }
        let mut strings: HashMap<String, Entry> = HashMap::new();
        for (depth, locale) in chain.iter().enumerate() {
            for (key, text) in &self.files[locale].1 {
                strings
                    .entry(key.clone())
                    .or_insert_with(|| Entry::new(text.clone(), depth > 0));
            }
        }
        let fallback_keys = strings
            .iter()
            .filter(|(_, e)| e.fallback)
            .map(|(k, _)| k.clone())
            .collect();
        let flat = Arc::new(Flat {
            strings,
            fallback_keys,
        });
        let mut cache = self.flattened.write().expect("catalog lock");
        Arc::clone(cache.entry(key).or_insert(flat))
    }
}

/// Reads one catalog into dotted keys: `{body: {intro: x}}` becomes `body.intro`.
fn read_catalog(path: &Path) -> Result<HashMap<String, String>, RenderError> {
    let text = crate::input::read_to_string(path)?;
    let value: serde_yaml::Value =
        serde_yaml::from_str(&text).map_err(|error| RenderError::Catalog {
            path: path.to_owned(),
            line: error.location().map_or(0, |l| l.line()),
            message: error.to_string(),
        })?;
    let mut out = HashMap::new();
    flatten_value(path, "", &value, &mut out)?;
    Ok(out)
}

fn flatten_value(
    path: &Path,
    prefix: &str,
    value: &serde_yaml::Value,
    out: &mut HashMap<String, String>,
) -> Result<(), RenderError> {
    use serde_yaml::Value;
    match value {
        Value::Mapping(map) => {
            for (key, value) in map {
                let key = match key {
                    Value::String(s) => s.clone(),
                    other => serde_yaml::to_string(other)
                        .unwrap_or_default()
                        .trim()
                        .to_owned(),
                };
                let full = if prefix.is_empty() {
                    key
                } else {
                    format!("{prefix}.{key}")
                };
                flatten_value(path, &full, value, out)?;
            }
        }
        Value::String(s) => {
            out.insert(prefix.to_owned(), s.clone());
        }
        Value::Number(n) => {
            out.insert(prefix.to_owned(), n.to_string());
        }
        Value::Bool(b) => {
            out.insert(prefix.to_owned(), b.to_string());
        }
        Value::Null if prefix.is_empty() => {}
        _ => {
            return Err(RenderError::Catalog {
                path: path.to_owned(),
                line: 0,
                message: format!("`{prefix}`: expected a string or a mapping of strings"),
            });
        }
    }
    Ok(())
}

/// A piece of a catalog string: literal text, or a `{name}` placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Text(String),
    Placeholder(String),
}

/// Splits `Dear {name},` into text and placeholders; a `{` without `}` is text.
pub fn parts(text: &str) -> Vec<Part> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        if open > 0 {
            out.push(Part::Text(rest[..open].to_owned()));
        }
        out.push(Part::Placeholder(rest[open + 1..open + close].to_owned()));
        rest = &rest[open + close + 1..];
    }
    if !rest.is_empty() {
        out.push(Part::Text(rest.to_owned()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalogs(files: &[(&str, &str)]) -> (tempfile::TempDir, Catalogs) {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let catalogs = Catalogs::load(dir.path(), "en", &[]).unwrap();
        (dir, catalogs)
    }

    #[test]
    fn chain_is_locale_then_base_language_then_default() {
        let (_dir, catalogs) = catalogs(&[
            ("en.yaml", "a: A-en\nb: B-en\nc: {d: D-en}\n"),
            ("zh.yaml", "a: A-zh\nb: B-zh\n"),
            ("zh-TW.yaml", "a: A-tw\n"),
        ]);
        let tw = catalogs.resolve("zh-TW");
        assert_eq!(tw.catalog, "zh-TW");
        let text = |k: &str| (tw.strings[k].text.clone(), tw.strings[k].fallback);
        assert_eq!(text("a"), ("A-tw".to_owned(), false));
        assert_eq!(text("b"), ("B-zh".to_owned(), true));
        assert_eq!(text("c.d"), ("D-en".to_owned(), true));
        assert_eq!(catalogs.resolve("zh-HK").catalog, "zh");
        assert_eq!(catalogs.resolve("pt-BR").catalog, "en");
        assert!(catalogs.resolve("pt-BR").fallback_keys.is_empty());
        assert_eq!(catalogs.resolve("").catalog, "en");
    }

    #[test]
    fn strings_split_at_placeholders() {
        let text = |t: &str| Part::Text(t.to_owned());
        let name = |t: &str| Part::Placeholder(t.to_owned());
        assert_eq!(
            parts("Dear {name},"),
            [text("Dear "), name("name"), text(",")]
        );
        assert_eq!(parts("{a}{b}"), [name("a"), name("b")]);
        assert_eq!(parts("no braces"), [text("no braces")]);
        assert_eq!(parts("open { only"), [text("open { only")]);
    }

    #[test]
    fn lists_in_catalogs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("en.yaml"), "a: [1, 2]\n").unwrap();
        let error = Catalogs::load(dir.path(), "en", &[]).unwrap_err();
        let path = dir.path().join("en.yaml");
        assert_eq!(
            error.to_string(),
            format!(
                "{}: `a`: expected a string or a mapping of strings",
                path.display()
            )
        );
    }
}
