//! Compiling a template for one locale: `{{ t('key') }}` calls become the locale's text.
//!
//! A `t()` call with a literal key and no arguments yields the same text for every
//! recipient of a locale, so it is replaced in the source, before compiling, by a
//! `{% raw %}` block holding exactly what the call would have printed (HTML-escaped in
//! `.html` templates). Only recipient-dependent expressions are left for the per-recipient
//! render, which is what makes planning a million recipients fast.
//!
//! # Guarantees
//! - The output is identical to rendering the original template: only calls of exactly the
//!   form `{{ t('key') }}` are replaced, and only with text that has no placeholders, no line
//!   break (so template line numbers in errors stay right) and nothing that could end the
//!   raw block.
//! - A template that already uses `raw` blocks is left alone.
//! - Keys missing from the catalog chain are left as calls, so they fail as before.

use std::fmt::Write as _;

use super::catalog::Resolved;

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
        let Some((key, length)) = constant_call(candidate) else {
            out.push_str("{{");
            rest = &candidate[2..];
            continue;
        };
        rest = &candidate[length..];
        match resolved.strings.get(key) {
            Some(entry) if entry.parts.is_none() && inlinable(&entry.text) => {
                out.push_str("{% raw %}");
                if html {
                    let _ = write!(out, "{}", entry.escaped);
                } else {
                    out.push_str(&entry.text);
                }
                out.push_str("{% endraw %}");
                fallback |= entry.fallback;
            }
            _ => out.push_str(&candidate[..length]),
        }
    }
    out.push_str(rest);
    (out, fallback)
}

/// Whether `source` has nothing to evaluate: only text and `{% raw %}` blocks.
pub fn is_constant(source: &str) -> bool {
    let mut rest = source;
    loop {
        let outside = rest.find("{% raw %}").map_or(rest, |start| &rest[..start]);
        if outside.contains("{{") || outside.contains("{%") || outside.contains("{#") {
            return false;
        }
        let Some(start) = rest.find("{% raw %}") else {
            return true;
        };
        let Some(end) = rest[start..].find("{% endraw %}") else {
            return false;
        };
        rest = &rest[start + end + "{% endraw %}".len()..];
    }
}

fn inlinable(text: &str) -> bool {
    !text.contains(['\n', '\r']) && !text.contains("{%") && !text.contains("%}")
}

/// Parses `{{ t('key') }}` (either quote, optional spaces) at the start of `text`:
/// the key and the length of the whole expression.
fn constant_call(text: &str) -> Option<(&str, usize)> {
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
    let tail = body[end + 1..].strip_prefix(')')?;
    let close = tail.trim_start_matches(' ').strip_prefix("}}")?;
    Some((key, text.len() - close.len()))
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
        let catalogs = Catalogs::load(dir.path(), "en").unwrap();
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
    fn calls_with_arguments_filters_or_unknown_keys_stay() {
        let (_dir, fr) = resolved();
        for source in [
            "{{ t('b', name=recipient.name) }}",
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
    fn constant_sources_have_nothing_left_to_evaluate() {
        assert!(is_constant("{% raw %}Hello{% endraw %}"));
        assert!(is_constant("Re: {% raw %}Hello{% endraw %}!"));
        assert!(is_constant("plain"));
        assert!(!is_constant(
            "{% raw %}Hello{% endraw %} {{ recipient.name }}"
        ));
        assert!(!is_constant("{% if x %}{% raw %}a{% endraw %}{% endif %}"));
        assert!(!is_constant("{# comment #}"));
    }

    #[test]
    fn fallback_texts_are_reported() {
        let (_dir, fr) = resolved();
        let (text, fallback) = inline("{{ t('c') }}", &fr, false);
        assert_eq!(text, "{% raw %}only en{% endraw %}");
        assert!(fallback);
    }
}
