//! Language tags (BCP 47, RFC 5646) as people write them in audience columns: any case,
//! `_` for `-`, checked against the IANA Language Subtag Registry, not only for shape.
//!
//! The registry is bundled: `data/language-subtags.txt` lists every registered subtag by
//! type (its first line gives the registry's date, and `data/language-subtags.py`, which
//! writes it, where it came from). crates.io has parsers that check only the shape
//! (`oxilangtag`, `icu_locale_core`) and `language-tags`, which carries a registry of
//! 2021 without saying its date; a list of our own says which registry it is, and is
//! brought up to date by running the script.
//!
//! # Guarantees
//! - A tag is accepted only when it is well-formed (RFC 5646 section 2.1) and valid
//!   (section 2.2.9): its language, extlang, script, region and variants are registered,
//!   no variant or extension singleton appears twice; grandfathered and private-use tags
//!   are valid as the RFC says. Prefixes the registry recommends are not enforced.
//! - Tags print in the registry's conventions (`de-AT`, `zh-Hant-TW`, `es-419`), however
//!   they were written.
//! - The registry is parsed once per process; a lookup is a binary search.

use std::fmt;
use std::sync::OnceLock;

/// A well-formed, valid language tag, in the registry's case conventions.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LanguageTag(String);

/// Why a text is not a language tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    /// Not of the shape of a tag: `Deutsch`, `en--US`, `日本語`.
    Malformed,
    /// Of the right shape, but a subtag the registry does not have: `xx`, `de-XY`.
    Unregistered { kind: &'static str, subtag: String },
    /// A variant or extension given twice.
    Repeated { subtag: String },
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed => write!(f, "not of the form of a language tag"),
            Self::Unregistered { kind, subtag } => {
                write!(f, "`{subtag}` is not a registered {kind} subtag")
            }
            Self::Repeated { subtag } => write!(f, "`{subtag}` appears twice"),
        }
    }
}

impl LanguageTag {
    /// Reads `text` as a tag: trimmed, any case, `_` taken as `-`.
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        let text = text.trim();
        if text.is_empty() || !text.is_ascii() {
            return Err(Invalid::Malformed);
        }
        let lower = text.replace('_', "-").to_ascii_lowercase();
        let registry = registry();
        if registry
            .grandfathered
            .binary_search(&lower.as_str())
            .is_ok()
        {
            return Ok(Self(format_subtags(lower.split('-'), true)));
        }
        let subtags: Vec<&str> = lower.split('-').collect();
        if subtags
            .iter()
            .any(|s| s.is_empty() || s.len() > 8 || !s.bytes().all(|b| b.is_ascii_alphanumeric()))
        {
            return Err(Invalid::Malformed);
        }
        if subtags[0] == "x" {
            return if subtags.len() > 1 {
                Ok(Self(lower))
            } else {
                Err(Invalid::Malformed)
            };
        }
        check(&subtags, registry)?;
        Ok(Self(format_subtags(subtags.into_iter(), false)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The primary language: `de` of `de-AT`.
    pub fn language(&self) -> &str {
        self.0.split('-').next().unwrap_or(&self.0)
    }

    /// The tag and the ever shorter tags a lookup falls back to (RFC 4647 section 3.4):
    /// `zh-Hant-TW`, `zh-Hant`, `zh`. A singleton left at the end is dropped with what
    /// follows it.
    pub fn chain(&self) -> impl Iterator<Item = &str> {
        let ends: Vec<usize> = self
            .0
            .match_indices('-')
            .map(|(i, _)| i)
            .chain([self.0.len()])
            .collect();
        let subtags: Vec<&str> = self.0.split('-').collect();
        (0..ends.len())
            .rev()
            .filter(move |&i| subtags[i].len() > 1)
            .map(move |i| &self.0[..ends[i]])
    }
}

impl fmt::Display for LanguageTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where each subtag of a tag stands, read in order (RFC 5646 section 2.1).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Slot {
    Language,
    Extlang,
    Script,
    Region,
    Variant,
    Extension,
}

/// Checks the shape of `subtags` (lowercase, alphanumeric, 1 to 8 long) and that the
/// registry has each.
fn check(subtags: &[&str], registry: &Registry) -> Result<(), Invalid> {
    let language = subtags[0];
    if !(2..=3).contains(&language.len()) || !is_alpha(language) {
        // 4-letter languages are reserved and 5 to 8 letters registered ones: none is.
        return if (4..=8).contains(&language.len()) && is_alpha(language) {
            Err(unregistered("language", language))
        } else {
            Err(Invalid::Malformed)
        };
    }
    registered(&registry.languages, "language", language)?;
    let mut slot = Slot::Language;
    let mut variants: Vec<&str> = Vec::new();
    let mut singletons: Vec<&str> = Vec::new();
    let mut rest = subtags[1..].iter().copied().peekable();
    while let Some(subtag) = rest.next() {
        let length = subtag.len();
        if length == 1 {
            if singletons.contains(&subtag) {
                return Err(Invalid::Repeated {
                    subtag: subtag.to_owned(),
                });
            }
            singletons.push(subtag);
            // An extension (or private use, `x`) takes every subtag to the next singleton.
            let private = subtag == "x";
            let mut taken = 0;
            while let Some(next) = rest.peek() {
                if next.len() == 1 && !private {
                    break;
                }
                rest.next();
                taken += 1;
            }
            if taken == 0 {
                return Err(Invalid::Malformed);
            }
            slot = Slot::Extension;
            continue;
        }
        if slot == Slot::Extension {
            return Err(Invalid::Malformed);
        }
        let next = if length == 3 && is_alpha(subtag) && slot == Slot::Language {
            registered(&registry.extlangs, "extlang", subtag)?;
            Slot::Extlang
        } else if length == 4 && is_alpha(subtag) && slot < Slot::Script {
            registered(&registry.scripts, "script", subtag)?;
            Slot::Script
        } else if ((length == 2 && is_alpha(subtag)) || (length == 3 && is_digit(subtag)))
            && slot < Slot::Region
        {
            registered(&registry.regions, "region", subtag)?;
            Slot::Region
        } else if (5..=8).contains(&length)
            || (length == 4 && subtag.as_bytes()[0].is_ascii_digit())
        {
            registered(&registry.variants, "variant", subtag)?;
            if variants.contains(&subtag) {
                return Err(Invalid::Repeated {
                    subtag: subtag.to_owned(),
                });
            }
            variants.push(subtag);
            Slot::Variant
        } else {
            return Err(Invalid::Malformed);
        };
        slot = next;
    }
    Ok(())
}

fn unregistered(kind: &'static str, subtag: &str) -> Invalid {
    Invalid::Unregistered {
        kind,
        subtag: subtag.to_owned(),
    }
}

fn is_alpha(subtag: &str) -> bool {
    subtag.bytes().all(|b| b.is_ascii_alphabetic())
}

fn is_digit(subtag: &str) -> bool {
    subtag.bytes().all(|b| b.is_ascii_digit())
}

/// Subtags in the registry's conventions: scripts title case and regions upper case, but
/// only before the first singleton; everything else lower case.
fn format_subtags<'a>(subtags: impl Iterator<Item = &'a str>, grandfathered: bool) -> String {
    let mut out = String::new();
    let mut after_singleton = false;
    for (i, subtag) in subtags.enumerate() {
        if i > 0 {
            out.push('-');
        }
        after_singleton |= subtag.len() == 1;
        let tail = i > 0 && !after_singleton && !grandfathered;
        if tail && subtag.len() == 4 && is_alpha(subtag) {
            out.push_str(&subtag[..1].to_ascii_uppercase());
            out.push_str(&subtag[1..]);
        } else if tail && subtag.len() == 2 {
            out.push_str(&subtag.to_ascii_uppercase());
        } else {
            out.push_str(subtag);
        }
    }
    out
}

/// The registered subtags by type, lowercased and sorted.
struct Registry {
    languages: Vec<&'static str>,
    extlangs: Vec<&'static str>,
    scripts: Vec<&'static str>,
    regions: Vec<&'static str>,
    variants: Vec<&'static str>,
    grandfathered: Vec<&'static str>,
}

/// Whether the sorted `list` has `subtag`, or why not.
fn registered(list: &[&str], kind: &'static str, subtag: &str) -> Result<(), Invalid> {
    if list.binary_search(&subtag).is_ok() {
        Ok(())
    } else {
        Err(unregistered(kind, subtag))
    }
}

/// The registry's date, as its file gives it: `2025-08-25`.
pub fn registry_date() -> &'static str {
    REGISTRY
        .lines()
        .next()
        .and_then(|line| line.split("File-Date ").nth(1))
        .and_then(|rest| rest.split(':').next())
        .unwrap_or("unknown")
}

const REGISTRY: &str = include_str!("../data/language-subtags.txt");

fn registry() -> &'static Registry {
    static PARSED: OnceLock<Registry> = OnceLock::new();
    PARSED.get_or_init(|| {
        let mut registry = Registry {
            languages: Vec::new(),
            extlangs: Vec::new(),
            scripts: Vec::new(),
            regions: Vec::new(),
            variants: Vec::new(),
            grandfathered: Vec::new(),
        };
        for line in REGISTRY.lines().filter(|l| !l.starts_with('#')) {
            let mut words = line.split_ascii_whitespace();
            let list = match words.next() {
                Some("language") => &mut registry.languages,
                Some("extlang") => &mut registry.extlangs,
                Some("script") => &mut registry.scripts,
                Some("region") => &mut registry.regions,
                Some("variant") => &mut registry.variants,
                Some("grandfathered") => &mut registry.grandfathered,
                _ => continue,
            };
            list.extend(words);
        }
        for list in [
            &mut registry.languages,
            &mut registry.extlangs,
            &mut registry.scripts,
            &mut registry.regions,
            &mut registry.variants,
            &mut registry.grandfathered,
        ] {
            list.sort_unstable();
        }
        registry
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! tags {
        ($($name:ident: $text:expr => $expected:expr,)*) => {$(
            #[test]
            fn $name() {
                let parsed = LanguageTag::parse($text);
                let expected: Result<&str, Invalid> = $expected;
                assert_eq!(parsed.as_ref().map(LanguageTag::as_str), expected.as_ref().map(|s| *s), "{:?}", $text);
            }
        )*};
    }

    fn unregistered(kind: &'static str, subtag: &str) -> Invalid {
        super::unregistered(kind, subtag)
    }

    tags! {
        language_alone: "de" => Ok("de"),
        any_case: "ES" => Ok("es"),
        region_upper: "de-at" => Ok("de-AT"),
        underscore: "de_DE" => Ok("de-DE"),
        spaces_trimmed: " pt_br " => Ok("pt-BR"),
        numeric_region: "es-419" => Ok("es-419"),
        script_title: "ZH-HANT-tw" => Ok("zh-Hant-TW"),
        three_letters: "yue" => Ok("yue"),
        extlang: "zh-yue-HK" => Ok("zh-yue-HK"),
        variant: "de-CH-1996" => Ok("de-CH-1996"),
        variant_letters: "ca-ES-valencia" => Ok("ca-ES-valencia"),
        extension: "en-US-u-ca-gregory" => Ok("en-US-u-ca-gregory"),
        private_use_tail: "en-x-Twain" => Ok("en-x-twain"),
        private_use: "x-klingon" => Ok("x-klingon"),
        private_language: "qaa" => Ok("qaa"),
        grandfathered: "i-Klingon" => Ok("i-klingon"),
        grandfathered_regular: "zh-min-nan" => Ok("zh-min-nan"),
        name: "Deutsch" => Err(unregistered("language", "deutsch")),
        name_in_japanese: "日本語" => Err(Invalid::Malformed),
        name_with_accent: "Español" => Err(Invalid::Malformed),
        empty: "" => Err(Invalid::Malformed),
        empty_subtag: "en--US" => Err(Invalid::Malformed),
        trailing_dash: "en-" => Err(Invalid::Malformed),
        unregistered_language: "xx" => Err(unregistered("language", "xx")),
        english_word: "english" => Err(unregistered("language", "english")),
        unregistered_region: "de-YY" => Err(unregistered("region", "yy")),
        unregistered_script: "sr-Abcd" => Err(unregistered("script", "abcd")),
        unregistered_variant: "de-CH-19960" => Err(unregistered("variant", "19960")),
        script_after_region: "zh-TW-Hant" => Err(Invalid::Malformed),
        repeated_variant: "de-1996-1996" => Err(Invalid::Repeated { subtag: "1996".to_owned() }),
        repeated_singleton: "en-u-ca-gregory-u-nu-latn" => Err(Invalid::Repeated { subtag: "u".to_owned() }),
        lone_singleton: "en-u" => Err(Invalid::Malformed),
        too_long: "en-abcdefghi" => Err(Invalid::Malformed),
    }

    #[test]
    fn chains_drop_subtags_from_the_end() {
        let chain = |text: &str| -> Vec<String> {
            LanguageTag::parse(text)
                .unwrap()
                .chain()
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(chain("de-AT"), ["de-AT", "de"]);
        assert_eq!(chain("zh-Hant-TW"), ["zh-Hant-TW", "zh-Hant", "zh"]);
        assert_eq!(
            chain("en-a-bbb-x-a-ccc"),
            ["en-a-bbb-x-a-ccc", "en-a-bbb", "en"]
        );
        assert_eq!(chain("ja"), ["ja"]);
    }

    #[test]
    fn the_registry_is_dated_and_whole() {
        assert_eq!(registry_date(), "2025-08-25");
        let registry = registry();
        assert!(
            registry.languages.len() > 8_000,
            "{}",
            registry.languages.len()
        );
        assert!(registry.regions.len() > 300);
        for tag in [
            "en", "zh", "ja", "ko", "ru", "pt-BR", "zh-TW", "de", "es", "fr-CA",
        ] {
            assert!(LanguageTag::parse(tag).is_ok(), "{tag}");
        }
    }
}
