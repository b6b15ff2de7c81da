//! Compiling a template for one locale: `{{ t('key') }}` calls become the locale's text.
//!
//! A `t()` call with a literal key and no arguments yields the same text for every
//! recipient of a locale, so it is replaced in the source, before compiling, by a
//! `{% raw %}` block holding exactly what the call would have printed (HTML-escaped in
//! `.html` templates). A call whose arguments are variable paths or string literals,
//! `{{ t('greeting', name=recipient.first_name) }}`, becomes the text around the
//! placeholders as raw blocks with `{{ recipient.first_name }}` in between, which prints
//! (and escapes) the value exactly as `t()` would. Only recipient-dependent expressions
//! are left for the per-recipient render, which is what makes planning a million
//! recipients fast.
//!
//! # Guarantees
//! - The output is identical to rendering the original template: only calls of exactly the
//!   form `{{ t('key') }}` are replaced, and only with text that has no placeholders, no line
//!   break (so template line numbers in errors stay right) and nothing that could end the
//!   raw block.
//! - A template that already uses `raw` blocks is left alone.
//! - Keys missing from the catalog chain are left as calls, so they fail as before.

use std::fmt::Write as _;

use super::escape::Html;

use super::catalog::{Part, Resolved};

/// `source` with constant `t()` calls inlined, and whether any inlined text is a fallback.
pub fn inline(source: &str, resolved: &Resolved, html: bool) -> (String, bool) {
    if source.contains("raw %}") || source.contains("raw -%}") {
        return (source.to_owned(), false);
    }
    let mut out = String::with_capacity(source.len() * 2);
    let mut fallback = false;
    let mut rest = source;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let candidate = &rest[start..];
        let Some(call) = parse_call(candidate) else {
            out.push_str("{{");
            rest = &candidate[2..];
            continue;
        };
        rest = &candidate[call.length..];
        let Some(entry) = resolved.strings.get(call.key) else {
            out.push_str(&candidate[..call.length]);
            continue;
        };
        let inlined = match &entry.parts {
            None if call.arguments.is_empty() && inlinable(&entry.text) => {
                let text = if html {
                    entry.escaped.to_string()
                } else {
                    entry.text.clone()
                };
                Some(raw(&text))
            }
            Some(parts) => with_arguments(parts, &call.arguments, html),
            None => None,
        };
        if let Some(inlined) = inlined {
            out.push_str(&inlined);
            fallback |= entry.fallback;
        } else {
            out.push_str(&candidate[..call.length]);
        }
    }
    out.push_str(rest);
    (out, fallback)
}

fn inlinable(text: &str) -> bool {
    !text.contains(['\n', '\r']) && !text.contains("{%") && !text.contains("%}")
}

fn raw(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!("{{% raw %}}{text}{{% endraw %}}")
    }
}

/// The text parts as raw blocks and each placeholder as `{{ argument }}`; `None` when a
/// placeholder has no argument (left to `t()`, which says so) or a text cannot be inlined.
fn with_arguments(parts: &[Part], arguments: &[(&str, &str)], html: bool) -> Option<String> {
    let mut out = String::new();
    for part in parts {
        match part {
            Part::Text(text) if inlinable(text) => {
                let text = if html {
                    Html(text).to_string()
                } else {
                    text.clone()
                };
                out.push_str(&raw(&text));
            }
            Part::Text(_) => return None,
            Part::Placeholder(name) => {
                let (_, value) = arguments.iter().find(|(n, _)| n == name)?;
                let _ = write!(out, "{{{{ {value} }}}}");
            }
        }
    }
    Some(out)
}

/// `{{ t('key', name=value, ...) }}` at the start of a template's text.
struct Call<'a> {
    key: &'a str,
    /// Each argument's name and its source: a variable path or a string literal.
    arguments: Vec<(&'a str, &'a str)>,
    /// Of the whole `{{ ... }}`.
    length: usize,
}

/// Parses `{{ t('key') }}` or `{{ t('key', a=recipient.x, b='text') }}` (either quote,
/// optional spaces) at the start of `text`. Anything else (filters, expressions, `{{-`)
/// is not a call this module inlines.
fn parse_call(text: &str) -> Option<Call<'_>> {
    let inner = text.strip_prefix("{{")?;
    let after_open = inner.trim_start_matches(' ');
    let call = after_open.strip_prefix("t(")?;
    let quote = call.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let body = &call[1..];
    let end = body.find(quote)?;
    let key = &body[..end];
    if key.is_empty()
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return None;
    }
    let mut rest = &body[end + 1..];
    let mut arguments = Vec::new();
    loop {
        rest = rest.trim_start_matches(' ');
        if let Some(after) = rest.strip_prefix(')') {
            rest = after;
            break;
        }
        rest = rest.strip_prefix(',')?.trim_start_matches(' ');
        let name_end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
        let name = &rest[..name_end];
        rest = rest[name_end..].trim_start_matches(' ').strip_prefix('=')?;
        rest = rest.trim_start_matches(' ');
        let value_end = argument_length(rest)?;
        arguments.push((name, &rest[..value_end]));
        rest = &rest[value_end..];
    }
    let close = rest.trim_start_matches(' ').strip_prefix("}}")?;
    Some(Call {
        key,
        arguments,
        length: text.len() - close.len(),
    })
}

/// The length of a variable path (`recipient.first_name`) or a plain string literal
/// (`'everyone'`, no escapes) at the start of `text`.
fn argument_length(text: &str) -> Option<usize> {
    let first = text.chars().next()?;
    if first == '\'' || first == '"' {
        let end = text[1..].find(first)?;
        let literal = &text[1..=end];
        return (!literal.contains(['\\', '{', '}', '%'])).then_some(end + 2);
    }
    if !(first.is_ascii_alphabetic() || first == '_') {
        return None;
    }
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .unwrap_or(text.len());
    (!text[..end].ends_with('.')).then_some(end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::Catalogs;

    fn resolved() -> (tempfile::TempDir, std::sync::Arc<Resolved>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("en.yaml"),
            "a: Fish & Chips\nb: \"Hi {name}\"\nc: only en\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("fr.yaml"),
            "a: Poisson & frites\nb: \"Salut {name}\"\n",
        )
        .unwrap();
        let catalogs = Catalogs::load(dir.path(), "en", &[]).unwrap();
        let resolved = catalogs.resolve("fr");
        (dir, resolved)
    }

    #[test]
    fn constant_calls_become_raw_text() {
        let (_dir, fr) = resolved();
        let (text, fallback) = inline("<p>{{ t('a') }}</p>{{t(\"a\")}}", &fr, true);
        assert_eq!(
            text,
            "<p>{% raw %}Poisson &amp; frites{% endraw %}</p>{% raw %}Poisson &amp; frites{% endraw %}"
        );
        assert!(!fallback);
        let (text, _) = inline("{{ t('a') }}", &fr, false);
        assert_eq!(text, "{% raw %}Poisson & frites{% endraw %}");
    }

    #[test]
    fn arguments_become_expressions_between_raw_text() {
        let (_dir, fr) = resolved();
        let (text, _) = inline("{{ t('b', name=recipient.name) }}!", &fr, true);
        assert_eq!(text, "{% raw %}Salut {% endraw %}{{ recipient.name }}!");
        let (text, _) = inline("{{ t('b', name='tout le monde', x=y) }}", &fr, false);
        assert_eq!(text, "{% raw %}Salut {% endraw %}{{ 'tout le monde' }}");
    }

    #[test]
    fn calls_with_other_arguments_filters_or_unknown_keys_stay() {
        let (_dir, fr) = resolved();
        for source in [
            "{{ t('b', name=recipient.name | upper) }}",
            "{{ t('b', name=recipient['name']) }}",
            "{{ t('b', other=recipient.name) }}",
            "{{ t('b') }}",
            "{{ t('a') | upper }}",
            "{{- t('a') }}",
            "{{ t('missing') }}",
            "{{ t(key) }}",
            "{% raw %}{% endraw %}{{ t('a') }}",
        ] {
            assert_eq!(inline(source, &fr, true).0, source);
        }
    }

    #[test]
    fn fallback_texts_are_reported() {
        let (_dir, fr) = resolved();
        let (text, fallback) = inline("{{ t('c') }}", &fr, false);
        assert_eq!(text, "{% raw %}only en{% endraw %}");
        assert!(fallback);
    }
}
