//! Which way a recipient's message went through its templates, for preview: a sample of
//! every path, not only of every locale (the `{% else %}` for rows without a first name
//! is a message too, and someone should read it before 40,000 people do).
//!
//! Each template is compiled once more with a marker printed right after every `{% if %}`,
//! `{% elif %}`, `{% else %}` and `{% for %}` tag. Rendering that copy prints the markers
//! of the branches taken, in order; they are the path. The copy is only ever rendered to
//! find the path: messages come from the templates as written.
//!
//! # Caveats
//! - A loop's body counts once however often it runs: a path is which branches were
//!   taken, not how many times.

use std::fmt::Write as _;

/// A marker's delimiters: control characters no escaping touches.
const OPEN: char = '\u{1}';
const CLOSE: char = '\u{2}';

/// One branch a template can take: where its tag is, for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Branch {
    /// `file:line`.
    pub at: String,
    /// The tag as written, `{% if recipient.first_name %}`, cut at 60 characters.
    pub tag: String,
}

/// `source` with a marker after every branching tag; the branches, indexed from `first`.
pub fn instrument(name: &str, source: &str, first: usize) -> (String, Vec<Branch>) {
    let mut out = String::with_capacity(source.len() + 64);
    let mut branches = Vec::new();
    let mut rest = source;
    let mut line = 1;
    while let Some(start) = rest.find("{%") {
        let Some(length) = rest[start..].find("%}").map(|end| end + 2) else {
            break;
        };
        let tag = &rest[start..start + length];
        line += rest[..start].matches('\n').count();
        out.push_str(&rest[..start + length]);
        let keyword = tag
            .trim_start_matches("{%")
            .trim_start_matches(['-', '+'])
            .split_whitespace()
            .next()
            .unwrap_or_default();
        if keyword == "raw" {
            // Copied as it is, up to and with its end.
            let body = &rest[start + length..];
            let end = body
                .find("endraw")
                .and_then(|e| body[e..].find("%}").map(|c| e + c + 2));
            let end = end.unwrap_or(body.len());
            out.push_str(&body[..end]);
            line += tag.matches('\n').count() + body[..end].matches('\n').count();
            rest = &body[end..];
            continue;
        }
        if matches!(keyword, "if" | "elif" | "else" | "for") {
            let index = first + branches.len();
            let _ = write!(out, "{{{{ '{OPEN}{index}{CLOSE}' }}}}");
            let shown: String = tag.chars().take(60).collect();
            branches.push(Branch {
                at: format!("{}:{line}", super::environment::display_name(name)),
                tag: shown,
            });
        }
        line += tag.matches('\n').count();
        rest = &rest[start + length..];
    }
    out.push_str(rest);
    (out, branches)
}

/// Adds the instrumented copy of each of `sources` (name, source) that branches to `env`;
/// their names, and every branch of them by index.
pub(super) fn compile<'a>(
    env: &mut minijinja::Environment<'static>,
    sources: impl IntoIterator<Item = Option<&'a (String, String)>>,
) -> Result<(Vec<String>, Vec<Branch>), super::RenderError> {
    let mut names = Vec::new();
    let mut branches = Vec::new();
    for (name, source) in sources.into_iter().flatten() {
        let (instrumented, found) = instrument(name, source, branches.len());
        if !found.is_empty() {
            let path_name = format!("{name}\0path");
            super::environment::add(env, &path_name, instrumented)?;
            names.push(path_name);
            branches.extend(found);
        }
    }
    Ok((names, branches))
}

/// The branches `rendered` passed through, in order, a loop's repeats counted once.
pub fn taken(rendered: &str, into: &mut Vec<usize>) {
    let mut rest = rendered;
    while let Some(open) = rest.find(OPEN) {
        let after = &rest[open + OPEN.len_utf8()..];
        let Some(close) = after.find(CLOSE) else {
            break;
        };
        if let Ok(index) = after[..close].parse::<usize>() {
            if into.last() != Some(&index) {
                into.push(index);
            }
        }
        rest = &after[close + CLOSE.len_utf8()..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branching_tags_get_markers_with_their_lines() {
        let source = "Dear\n{% if recipient.first_name %}{{ recipient.first_name }}\n{%- else %}customer{% endif %},\n{% raw %}{% if x %}{% endraw %}\n{% for i in [1, 2] %}{{ i }}{% endfor %}";
        let (instrumented, branches) = instrument("t.txt.j2\0en", source, 0);
        let at: Vec<&str> = branches.iter().map(|b| b.at.as_str()).collect();
        assert_eq!(at, ["t.txt.j2:2", "t.txt.j2:3", "t.txt.j2:5"]);
        assert_eq!(branches[1].tag, "{%- else %}");
        assert!(instrumented.contains("{% raw %}{% if x %}{% endraw %}"));
        let mut env = minijinja::Environment::new();
        env.add_template("t", &instrumented).unwrap();
        let template = env.get_template("t").unwrap();
        for (name, expected) in [("Ann", vec![0, 2]), ("", vec![1, 2])] {
            let out = template
                .render(
                    minijinja::context! { recipient => minijinja::context! { first_name => name } },
                )
                .unwrap();
            let mut path = Vec::new();
            taken(&out, &mut path);
            assert_eq!(path, expected, "{out:?}");
        }
    }
}
