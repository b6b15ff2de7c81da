//! Small helpers that keep herald's wording consistent, after just's `Count` and `List`:
//! `Count("recipient", 3)` is "3 recipients", `List::and_ticked(["a", "b", "c"])` is
//! "`a`, `b` and `c`".

use std::fmt::{self, Display, Formatter};

/// `n` things, with the noun in the singular or the plural (an `s` added, `es` after a
/// hiss, `ies` for a `y` after a consonant).
#[derive(Debug, Clone, Copy)]
pub struct Count<'a>(pub &'a str, pub u64);

impl Display for Count<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let Count(noun, n) = *self;
        if n == 1 {
            write!(f, "1 {noun}")
        } else if let Some(stem) = noun
            .strip_suffix('y')
            .filter(|stem| !stem.ends_with(['a', 'e', 'i', 'o', 'u']))
        {
            write!(f, "{n} {stem}ies")
        } else if noun.ends_with(['s', 'x']) || noun.ends_with("sh") || noun.ends_with("ch") {
            write!(f, "{n} {noun}es")
        } else {
            write!(f, "{n} {noun}s")
        }
    }
}

/// A number with thousands separated by commas: `3,269`.
#[derive(Debug, Clone, Copy)]
pub struct Thousands(pub u64);

impl Display for Thousands {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let digits = self.0.to_string();
        let mut out = String::with_capacity(digits.len() + digits.len() / 3);
        for (i, digit) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(digit);
        }
        f.pad(&out)
    }
}

/// How many columns `text` takes on a terminal: CJK characters take two.
pub fn width(text: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(text)
}

/// `text` padded with spaces to `columns` columns of a terminal, as `{:<n}` pads ASCII.
pub fn pad_to(text: &str, columns: usize) -> String {
    let mut out = text.to_owned();
    out.extend(std::iter::repeat_n(
        ' ',
        columns.saturating_sub(width(text)),
    ));
    out
}

/// Just the noun of a `Count`: "recipient" or "recipients".
pub fn plural(noun: &str, n: u64) -> String {
    let text = Count(noun, n).to_string();
    text.split_once(' ')
        .map_or(text.clone(), |(_, noun)| noun.to_owned())
}

/// "was" or "were", to go with a `Count`.
pub fn was(n: u64) -> &'static str {
    if n == 1 { "was" } else { "were" }
}

/// The one of `known` that `word` is most likely a typo of, if any is close enough.
pub fn closest<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
        .map(|known| (strsim::jaro_winkler(word, known), known))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, known)| known)
}

/// Items joined the way a sentence lists them.
pub struct List<'a, T: Display> {
    items: &'a [T],
    conjunction: &'static str,
    ticked: bool,
}

impl<'a, T: Display> List<'a, T> {
    /// "`a`, `b` and `c`"
    pub fn and_ticked(items: &'a [T]) -> Self {
        Self {
            items,
            conjunction: "and",
            ticked: true,
        }
    }

    /// "`a`, `b` or `c`"
    pub fn or_ticked(items: &'a [T]) -> Self {
        Self {
            items,
            conjunction: "or",
            ticked: true,
        }
    }

    /// "a, b and c"
    pub fn and(items: &'a [T]) -> Self {
        Self {
            items,
            conjunction: "and",
            ticked: false,
        }
    }
}

impl<T: Display> Display for List<'_, T> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let tick = if self.ticked { "`" } else { "" };
        let last = self.items.len().saturating_sub(1);
        for (i, item) in self.items.iter().enumerate() {
            if i > 0 {
                if i == last {
                    write!(f, " {} ", self.conjunction)?;
                } else {
                    write!(f, ", ")?;
                }
            }
            write!(f, "{tick}{item}{tick}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_separated() {
        for (n, text) in [
            (0, "0"),
            (999, "999"),
            (1000, "1,000"),
            (3269, "3,269"),
            (1_875_000, "1,875,000"),
        ] {
            assert_eq!(Thousands(n).to_string(), text);
        }
        assert_eq!(format!("{:>7}", Thousands(3269)), "  3,269");
    }

    #[test]
    fn padding_counts_columns_not_characters() {
        assert_eq!(pad_to("en", 5), "en   ");
        assert_eq!(pad_to("日本語", 8), "日本語  ");
        assert_eq!(width("日本語"), 6);
        assert_eq!(pad_to("toolong", 3), "toolong");
    }

    #[test]
    fn counts_and_lists_read_as_sentences() {
        assert_eq!(Count("recipient", 1).to_string(), "1 recipient");
        assert_eq!(Count("recipient", 0).to_string(), "0 recipients");
        assert_eq!(Count("key", 2).to_string(), "2 keys");
        assert_eq!(Count("duplicate", 3).to_string(), "3 duplicates");
        assert_eq!(Count("entry", 2).to_string(), "2 entries");
        assert_eq!(Count("address", 2).to_string(), "2 addresses");
        assert_eq!(plural("call", 1), "call");
        assert_eq!(plural("call", 7), "calls");
        assert_eq!(List::and_ticked(&["a"]).to_string(), "`a`");
        assert_eq!(List::and_ticked(&["a", "b"]).to_string(), "`a` and `b`");
        assert_eq!(
            List::or_ticked(&["a", "b", "c"]).to_string(),
            "`a`, `b` or `c`"
        );
        assert_eq!(List::and(&[1, 2, 3]).to_string(), "1, 2 and 3");
        assert_eq!(List::<&str>::and(&[]).to_string(), "");
    }
}
