//! The minijinja environment every template of a campaign is compiled in: strict about
//! undefined values, fuelled, with `t()`, and the escaping each kind of template needs;
//! and how its errors read.

use std::path::Path;
use std::sync::Arc;

use minijinja::value::{Kwargs, Value};
use minijinja::{AutoEscape, Environment, State, UndefinedBehavior};

use super::catalog::Catalogs;
use super::{RenderError, check, escape, translate};

/// Instructions one render may spend; a runaway loop fails instead of hanging the run.
const FUEL: u64 = 200_000;
/// The template name of the unsubscribe link.
pub(super) const UNSUBSCRIBE: &str = "unsubscribe";

/// The environment every template of a campaign is compiled in: strict about undefined
/// values, fuelled, `t()`, and the escaping each kind of template needs.
pub(super) fn new(catalogs: &Arc<Catalogs>) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    let lookup = Arc::clone(catalogs);
    env.add_function("t", move |state: &State, key: &str, kwargs: Kwargs| {
        translate::t(&lookup, state, key, &kwargs)
    });
    // Values placed in the unsubscribe link are percent-encoded; `.html` templates
    // escape HTML; others print values as they are.
    env.set_auto_escape_callback(|name| {
        if name == UNSUBSCRIBE {
            AutoEscape::Custom("url".into())
        } else {
            minijinja::default_auto_escape_callback(display_name(name))
        }
    });
    escaping(&mut env);
    env
}

/// How values print: percent-encoded in the unsubscribe link, HTML-escaped by
/// `render::escape` in `.html` templates (the `escape` filter too), as they are elsewhere.
pub(super) fn escaping(env: &mut Environment<'_>) {
    env.set_formatter(|out, state, value| {
        let url = matches!(state.auto_escape(), AutoEscape::Custom(name) if name == "url");
        if url && !value.is_safe() {
            let text = value.to_string();
            return out
                .write_str(&check::percent_encode(&text))
                .map_err(minijinja::Error::from);
        }
        let html = matches!(state.auto_escape(), AutoEscape::Html);
        if let (true, false, Some(text)) = (html, value.is_safe(), value.as_str()) {
            return write!(out, "{}", escape::Html(text)).map_err(minijinja::Error::from);
        }
        minijinja::escape_formatter(out, state, value)
    });
    // `|escape` escapes as the formatter does, so that both read the same.
    let escape_filter = |value: Value| -> Value {
        if value.is_safe() {
            value
        } else {
            Value::from_safe_string(escape::html(&value.to_string()))
        }
    };
    env.add_filter("escape", escape_filter);
    env.add_filter("e", escape_filter);
}

pub(super) fn add(
    env: &mut Environment<'static>,
    name: &str,
    source: String,
) -> Result<(), RenderError> {
    env.add_template_owned(name.to_owned(), source)
        .map_err(|error| RenderError::Syntax {
            template: located(name, &error),
            message: describe(&error),
        })
}

pub(super) fn read_template(path: &Path) -> Result<(String, String), RenderError> {
    let source = crate::input::read_to_string(path)?;
    Ok((path.display().to_string(), source))
}

/// The template's name as the user knows it: without the `\0locale` of a compiled variant
/// (NUL cannot occur in a path, so no file name is cut short).
pub(super) fn display_name(name: &str) -> &str {
    name.split_once('\0').map_or(name, |(file, _)| file)
}

/// `file:line` of an error, or the file alone.
pub(super) fn located(name: &str, error: &minijinja::Error) -> String {
    let name = display_name(name);
    match error.line() {
        Some(line) => format!("{name}:{line}"),
        None => name.to_owned(),
    }
}

/// minijinja's error without its location suffix, which herald prints itself.
pub(super) fn describe(error: &minijinja::Error) -> String {
    match error.detail() {
        Some(detail) => format!("{}: {detail}", error.kind()),
        None => error.kind().to_string(),
    }
}
