//! HTML escaping for `.html` templates: what HTML requires, and no more.
//!
//! minijinja's `HtmlEscape` also writes `/` as `&#x2f;`, so a link became
//! `href="https:&#x2f;&#x2f;example.com&#x2f;u&#x2f;..."`: valid HTML, but it reads as broken
//! in the source, and link scanners and click-tracking rewriters differ in how they decode
//! it. Here `&`, `<`, `>`, `"` and `'` are escaped (which keeps text and quoted attribute
//! values of either quote safe) and everything else, `/` and `:` included, is written as is.
//! Every path that escapes (the template engine's output, catalog strings, `t()`, inlined
//! and concatenated templates, the `escape` filter) goes through this one function, so
//! they agree byte for byte.

use std::fmt;

/// `text`, HTML-escaped when displayed.
pub struct Html<'a>(pub &'a str);

impl fmt::Display for Html<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0;
        let mut last = 0;
        for (i, byte) in text.bytes().enumerate() {
            let entity = match byte {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                b'\'' => "&#x27;",
                _ => continue,
            };
            f.write_str(&text[last..i])?;
            f.write_str(entity)?;
            last = i + 1;
        }
        f.write_str(&text[last..])
    }
}

/// `text` HTML-escaped.
pub fn html(text: &str) -> String {
    Html(text).to_string()
}

#[cfg(test)]
mod tests {
    use super::html;

    #[test]
    fn escapes_what_html_requires_and_keeps_urls_readable() {
        assert_eq!(
            html("https://example.com/u/a?b=1&c=<2>\"'"),
            "https://example.com/u/a?b=1&amp;c=&lt;2&gt;&quot;&#x27;"
        );
        assert_eq!(html("李 😀 plain"), "李 😀 plain");
        assert_eq!(html(""), "");
    }
}
