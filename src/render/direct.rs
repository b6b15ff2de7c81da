//! Rendering without the template engine, for templates that are only text and values.
//!
//! Once `inline` has replaced a locale's `t()` calls, most templates hold nothing but text
//! (`{% raw %}` blocks included) and `{{ recipient.column }}`, `{{ unsubscribe_url }}`,
//! `{{ locale }}`, `{{ campaign.name }}` or a plain string literal. Such a template is compiled here into literal
//! pieces and the values between them; a message is then made by concatenation, escaping
//! each value as minijinja would. The same pieces are the message's shape: everything but
//! the values is shared by every recipient of the locale, which is what lets a provider
//! call carry one copy of the content and each recipient's values beside their address.
//!
//! # Guarantees
//! - Output is byte for byte what minijinja renders from the same source: values are
//!   escaped as minijinja escapes them (`escape`) in `.html` templates, a single trailing
//!   newline is dropped as minijinja drops it, and anything this module does not fully
//!   understand (any other tag, filter, expression, comment or whitespace control) makes
//!   the template fall back to minijinja. Tests compare both on every shipped recipient
//!   and on generated hostile values.
//! - A value that cannot be found (an audience column that does not exist) is not
//!   guessed: the caller renders with minijinja, which reports it.

use std::fmt::Write as _;

use super::escape::Html;

use crate::audience::Record;

/// A template compiled into literal text and values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Direct {
    /// `texts.len() == values.len() + 1`: text, value, text, ..., text.
    texts: Vec<String>,
    values: Vec<Value>,
    /// Whether values are HTML-escaped (`.html` templates).
    html: bool,
    /// Whether the literal pieces pass the preflight's body check, so that only the
    /// values need it per recipient.
    clean: bool,
}

/// What a `{{ ... }}` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Column(String),
    Unsubscribe,
    /// Known when the template is compiled: the locale, the campaign's name or revision.
    Fixed(String),
}

/// What the per-recipient values come from.
pub struct Inputs<'a> {
    pub record: &'a Record,
    pub unsubscribe_url: &'a str,
}

impl Direct {
    /// Compiles `source` (with `t()` calls already inlined) if it holds only text and
    /// values; `None` when minijinja must render it. `fixed` answers `locale`,
    /// `campaign.name` and `campaign.revision`.
    pub fn compile(
        source: &str,
        html: bool,
        fixed: impl Fn(&str) -> Option<String>,
    ) -> Option<Self> {
        let source = strip_trailing_newline(source);
        let mut texts = vec![String::new()];
        let mut values = Vec::new();
        let mut rest = source;
        loop {
            let next = rest.find('{');
            let Some(start) = next else {
                texts.last_mut()?.push_str(rest);
                break;
            };
            let after = &rest[start..];
            if let Some(body) = after.strip_prefix("{% raw %}") {
                let end = body.find("{% endraw %}")?;
                let text = texts.last_mut()?;
                text.push_str(&rest[..start]);
                text.push_str(&body[..end]);
                rest = &body[end + "{% endraw %}".len()..];
            } else if let Some(body) = after.strip_prefix("{{") {
                let end = body.find("}}")?;
                let value = expression(&body[..end], &fixed)?;
                texts.last_mut()?.push_str(&rest[..start]);
                match value {
                    Value::Fixed(text) => {
                        let text = if html { Html(&text).to_string() } else { text };
                        texts.last_mut()?.push_str(&text);
                    }
                    value => {
                        values.push(value);
                        texts.push(String::new());
                    }
                }
                rest = &body[end + 2..];
            } else if after.starts_with("{%") || after.starts_with("{#") {
                return None;
            } else {
                texts.last_mut()?.push_str(&rest[..=start]);
                rest = &rest[start + 1..];
            }
        }
        let clean = texts.iter().all(|t| super::check::body(t).is_ok());
        Some(Self {
            texts,
            values,
            html,
            clean,
        })
    }

    /// Whether the literal pieces pass the body check (then a message's values are all
    /// that is left to check).
    pub fn is_clean(&self) -> bool {
        self.clean
    }

    /// Whether the output is the same for everyone.
    pub fn is_constant(&self) -> bool {
        self.values.is_empty()
    }

    /// The literal pieces, one more than the values.
    pub fn texts(&self) -> &[String] {
        &self.texts
    }

    /// The message for one recipient, and where each value sits in it (byte ranges); `None`
    /// when a value cannot be found.
    pub fn render(&self, inputs: &Inputs<'_>) -> Option<(String, Vec<(usize, usize)>)> {
        let size: usize = self.texts.iter().map(String::len).sum();
        let mut out = String::with_capacity(size + 64 * self.values.len());
        let mut spans = Vec::with_capacity(self.values.len());
        out.push_str(&self.texts[0]);
        for (value, text) in self.values.iter().zip(&self.texts[1..]) {
            let start = out.len();
            match value {
                Value::Column(column) => {
                    let found = inputs.record.get(column)?;
                    self.push(&mut out, &found);
                }
                Value::Unsubscribe => self.push(&mut out, inputs.unsubscribe_url),
                Value::Fixed(_) => unreachable!("fixed values are part of the text"),
            }
            spans.push((start, out.len()));
            out.push_str(text);
        }
        Some((out, spans))
    }

    fn push(&self, out: &mut String, value: &str) {
        if self.html {
            let _ = write!(out, "{}", Html(value));
        } else {
            out.push_str(value);
        }
    }
}

/// minijinja drops a single trailing newline of a template.
fn strip_trailing_newline(source: &str) -> &str {
    let source = source.strip_suffix('\n').unwrap_or(source);
    source.strip_suffix('\r').unwrap_or(source)
}

/// `recipient.column`, `unsubscribe_url`, `locale`, `campaign.name` or `campaign.revision`,
/// with spaces around; anything else is for minijinja.
fn expression(text: &str, fixed: impl Fn(&str) -> Option<String>) -> Option<Value> {
    // `{{-` and `-}}` control whitespace; leave them to minijinja.
    if text.starts_with('-') || text.ends_with('-') {
        return None;
    }
    let path = text.trim_matches(' ');
    // A plain string literal, as `inline` writes a `t()` argument given as text.
    for quote in ['\'', '"'] {
        if let Some(literal) = path
            .strip_prefix(quote)
            .and_then(|rest| rest.strip_suffix(quote))
        {
            let plain = !literal.contains([quote, '\\', '{', '}', '%']);
            return plain.then(|| Value::Fixed(literal.to_owned()));
        }
    }
    let plain = |name: &str| {
        !name.is_empty()
            && name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if let Some(column) = path.strip_prefix("recipient.") {
        return plain(column).then(|| Value::Column(column.to_owned()));
    }
    match path {
        "unsubscribe_url" => Some(Value::Unsubscribe),
        "locale" | "campaign.name" | "campaign.revision" => fixed(path).map(Value::Fixed),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(path: &str) -> Option<String> {
        match path {
            "locale" => Some("ja".to_owned()),
            "campaign.name" => Some("launch & co".to_owned()),
            _ => None,
        }
    }

    #[test]
    fn text_and_values_compile_and_anything_else_does_not() {
        let direct = Direct::compile(
            "<p lang=\"{{ locale }}\">{% raw %}Hi {% endraw %}{{ recipient.name }}, {{unsubscribe_url}}</p>\n",
            true,
            fixed,
        )
        .unwrap();
        assert_eq!(direct.texts(), ["<p lang=\"ja\">Hi ", ", ", "</p>"]);
        assert!(!direct.is_constant());
        for source in [
            "{% if x %}a{% endif %}",
            "{{ recipient.name | upper }}",
            "{{ recipient['name'] }}",
            "{{- recipient.name }}",
            "{# comment #}",
            "{{ t('a') }}",
            "{{ recipient.a.b }}",
            "{{ other }}",
            "{% raw %}unclosed",
            "{{ unclosed",
        ] {
            assert_eq!(Direct::compile(source, true, fixed), None, "{source}");
        }
        let constant =
            Direct::compile("{{ campaign.name }} { not a tag }\r\n", true, fixed).unwrap();
        assert_eq!(constant.texts(), ["launch &amp; co { not a tag }"]);
        let literal = Direct::compile("{{ 'Fish & <b>' }} {{ \"x\" }}", true, fixed).unwrap();
        assert_eq!(literal.texts(), ["Fish &amp; &lt;b&gt; x"]);
        assert_eq!(Direct::compile("{{ 'a\\'b' }}", true, fixed), None);
        assert!(constant.is_constant());
    }

    /// Each construct this module takes, against minijinja itself, in html and text.
    #[test]
    fn every_construct_renders_as_minijinja_renders_it() {
        let headers: std::sync::Arc<[String]> = ["name"].map(str::to_owned).into();
        let sources = [
            "Hi {{ recipient.name }}!",
            "{{recipient.name}}{{ recipient.name }}",
            "{% raw %}{{ not a value }}{% endraw %} {{ recipient.name }}\n",
            "{{ 'Fish & <b>' }} and {{ \"x\" }}\r\n",
            "<a href=\"{{ unsubscribe_url }}\">{{ locale }} {{ campaign.name }}</a>\n\n",
            "{ single } braces {{ recipient.name }} } and {",
            "",
            "\n",
        ];
        for html in [true, false] {
            let mut env = minijinja::Environment::new();
            super::super::environment::escaping(&mut env);
            env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
            env.set_auto_escape_callback(move |_| {
                if html {
                    minijinja::AutoEscape::Html
                } else {
                    minijinja::AutoEscape::None
                }
            });
            for source in sources {
                let direct = Direct::compile(source, html, fixed).expect(source);
                env.add_template_owned("t", source.to_owned()).unwrap();
                for name in ["Ann", "<script>&\"'/", "", "李 😀 \n{{ x }}"] {
                    let values = csv::StringRecord::from(vec![name]);
                    let record = Record::Csv {
                        headers: std::sync::Arc::clone(&headers),
                        values,
                    };
                    let url = "https://example.com/u/ab?x=1&y=2";
                    let expected = env
                        .get_template("t")
                        .unwrap()
                        .render(minijinja::context! {
                            recipient => minijinja::context! { name => name },
                            unsubscribe_url => url,
                            locale => "ja",
                            campaign => minijinja::context! { name => "launch & co" },
                        })
                        .unwrap();
                    let (ours, _) = direct
                        .render(&Inputs {
                            record: &record,
                            unsubscribe_url: url,
                        })
                        .unwrap();
                    assert_eq!(ours, expected, "{source:?} with {name:?}, html {html}");
                }
            }
        }
    }
}
