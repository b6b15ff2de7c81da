//! Which catalog a recipient's locale value chooses.
//!
//! A value is looked up in `locales.map` first (case-insensitively: `Deutsch`, `deutsch`),
//! else read as a language tag (`crate::langtag`: any case, `_` for `-`, registered
//! subtags only). A tag falls back along its chain, `de-AT` then `de`, to the first
//! catalog there is, and to the default catalog when there is none. An empty value takes
//! the default. A value that is neither mapped nor a tag is `Unknown`: it gets the default
//! catalog here, and plan refuses it unless `locales.on_unknown: default` says otherwise.
//!
//! Catalog files are matched as tags are: `zh-TW.yaml`, `zh_tw.yaml` and `ZH-tw.yaml` are
//! the same locale.

use std::collections::HashMap;

use serde::Serialize;

use crate::langtag::LanguageTag;

/// How a value reached its catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reached {
    /// A tag whose chain has a catalog (`zh-TW` reaching `zh.yaml` included).
    Catalog,
    /// Through `locales.map`.
    Map,
    /// An empty value: the default, as intended.
    Empty,
    /// A tag without a catalog anywhere on its chain: the default, for want of its own.
    NoCatalog,
    /// Neither in `locales.map` nor a language tag.
    Unknown,
}

impl Reached {
    /// Whether the recipient gets the default catalog for want of one of their own.
    pub fn defaulted(self) -> bool {
        matches!(self, Self::NoCatalog | Self::Unknown)
    }
}

/// What one value chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// The value as people should see it: the tag in the registry's spelling (`de-AT`
    /// for `de_at`), the default locale for an empty value, or the value as written
    /// (trimmed) when it was mapped or is unknown.
    pub requested: String,
    pub reached: Reached,
    /// The catalogs to look strings up in, in order, the default last.
    pub chain: Vec<String>,
}

/// Chooses catalogs for values.
#[derive(Debug)]
pub struct Chooser {
    /// The default catalog's name (its file stem).
    default: String,
    /// `locales.map`, keys lowercased, sorted.
    map: Vec<(String, LanguageTag)>,
    /// Catalog names by their tag in lower case: `zh-tw` -> `zh-TW`.
    catalogs: HashMap<String, String>,
}

impl Chooser {
    /// `names` are the catalogs' file stems; `default` one of them (any case).
    pub fn new<'a>(
        names: impl IntoIterator<Item = &'a str>,
        default: &str,
        map: &[(String, LanguageTag)],
    ) -> Option<Self> {
        let catalogs: HashMap<String, String> = names
            .into_iter()
            .map(|name| (key(name), name.to_owned()))
            .collect();
        let default = catalogs.get(&key(default))?.clone();
        Some(Self {
            default,
            map: map.to_vec(),
            catalogs,
        })
    }

    /// The default catalog's name.
    pub fn default_catalog(&self) -> &str {
        &self.default
    }

    /// The catalog name for `tag`, if there is a catalog for it.
    pub fn catalog(&self, tag: &str) -> Option<&str> {
        self.catalogs.get(&key(tag)).map(String::as_str)
    }

    pub fn choose(&self, value: &str) -> Choice {
        let value = value.trim();
        if value.is_empty() {
            return self.default_choice(self.default.clone(), Reached::Empty);
        }
        let lower = value.to_lowercase();
        if let Ok(i) = self.map.binary_search_by(|(k, _)| k.as_str().cmp(&lower)) {
            let chain = self.chain(&self.map[i].1);
            return match chain {
                Some(chain) => Choice {
                    requested: value.to_owned(),
                    reached: Reached::Map,
                    chain,
                },
                None => self.default_choice(value.to_owned(), Reached::Map),
            };
        }
        match LanguageTag::parse(value) {
            Ok(tag) => match self.chain(&tag) {
                Some(chain) => Choice {
                    requested: tag.to_string(),
                    reached: Reached::Catalog,
                    chain,
                },
                None => self.default_choice(tag.to_string(), Reached::NoCatalog),
            },
            Err(_) => self.default_choice(value.to_owned(), Reached::Unknown),
        }
    }

    fn default_choice(&self, requested: String, reached: Reached) -> Choice {
        Choice {
            requested,
            reached,
            chain: vec![self.default.clone()],
        }
    }

    /// The catalogs on `tag`'s chain, then the default; `None` when the chain has none.
    fn chain(&self, tag: &LanguageTag) -> Option<Vec<String>> {
        let mut chain: Vec<String> = tag
            .chain()
            .filter_map(|candidate| self.catalog(candidate))
            .map(str::to_owned)
            .collect();
        if chain.is_empty() {
            return None;
        }
        if !chain.contains(&self.default) {
            chain.push(self.default.clone());
        }
        Some(chain)
    }
}

/// A catalog name or tag as compared: lower case, `_` as `-`.
fn key(name: &str) -> String {
    name.trim().replace('_', "-").to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chooser() -> Chooser {
        let map = [("deutsch", "de"), ("日本語", "ja"), ("español", "es")]
            .map(|(k, v)| (k.to_owned(), LanguageTag::parse(v).unwrap()));
        let mut map = map.to_vec();
        map.sort();
        Chooser::new(["en", "de", "ja", "es", "zh", "zh-TW"], "en", &map).unwrap()
    }

    #[test]
    fn values_choose_catalogs_as_people_write_them() {
        let chooser = chooser();
        let choose = |value: &str| {
            let choice = chooser.choose(value);
            (choice.requested, choice.reached, choice.chain.join(" "))
        };
        let own = |requested: &str, chain: &str| {
            (requested.to_owned(), Reached::Catalog, chain.to_owned())
        };
        assert_eq!(choose("de"), own("de", "de en"));
        assert_eq!(choose("de-AT"), own("de-AT", "de en"));
        assert_eq!(choose("de-at"), own("de-AT", "de en"));
        assert_eq!(choose("de_DE"), own("de-DE", "de en"));
        assert_eq!(choose("ES"), own("es", "es en"));
        assert_eq!(choose(" es-419 "), own("es-419", "es en"));
        assert_eq!(choose("zh-tw"), own("zh-TW", "zh-TW zh en"));
        assert_eq!(choose("zh-Hant-TW"), own("zh-Hant-TW", "zh en"));
        assert_eq!(choose("en-GB"), own("en-GB", "en"));
        let mapped =
            |requested: &str, chain: &str| (requested.to_owned(), Reached::Map, chain.to_owned());
        assert_eq!(choose("Deutsch"), mapped("Deutsch", "de en"));
        assert_eq!(choose("DEUTSCH"), mapped("DEUTSCH", "de en"));
        assert_eq!(choose("日本語"), mapped("日本語", "ja en"));
        assert_eq!(choose("Español"), mapped("Español", "es en"));
        assert_eq!(
            choose(""),
            ("en".to_owned(), Reached::Empty, "en".to_owned())
        );
        assert_eq!(
            choose("  "),
            ("en".to_owned(), Reached::Empty, "en".to_owned())
        );
        assert_eq!(
            choose("pt-br"),
            ("pt-BR".to_owned(), Reached::NoCatalog, "en".to_owned())
        );
        assert_eq!(
            choose("Klingon"),
            ("Klingon".to_owned(), Reached::Unknown, "en".to_owned())
        );
        assert_eq!(
            choose("xx"),
            ("xx".to_owned(), Reached::Unknown, "en".to_owned())
        );
    }
}
