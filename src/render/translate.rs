//! `t(key, **args)`: the recipient's string for `key` from their catalog, through its
//! fallbacks, with `{name}` placeholders filled; and the per-render scope it reads.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use minijinja::value::{Kwargs, Object, Value};
use minijinja::{AutoEscape, State};

use super::escape::Html;

use super::catalog::{self, Catalogs, Resolved};

/// The context key of the per-render scope `t()` reads; not part of the template contract.
pub(super) const SCOPE: &str = "__herald";

/// `t(key, **args)`: the recipient's string for `key`, with `{name}` placeholders filled.
/// In `.html` templates the result is escaped here (arguments included) and marked safe.
pub(super) fn t(
    catalogs: &Catalogs,
    state: &State,
    key: &str,
    kwargs: &Kwargs,
) -> Result<Value, minijinja::Error> {
    let invalid =
        |message: String| minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, message);
    let scope = state.lookup(SCOPE);
    let scope = scope
        .as_ref()
        .and_then(|v| v.downcast_object_ref::<Scope>())
        .ok_or_else(|| invalid("t() is only available in herald templates".to_owned()))?;
    let Some(entry) = scope.resolved.strings.get(key) else {
        let path = catalogs.default_path().display();
        return Err(invalid(format!(
            "t(`{key}`): no such key in the default catalog `{path}`"
        )));
    };
    if entry.fallback {
        scope.fell_back.store(true, Ordering::Relaxed);
    }
    let html = matches!(state.auto_escape(), AutoEscape::Html);
    let Some(parts) = &entry.parts else {
        return Ok(if html {
            entry.escaped.clone()
        } else {
            entry.plain.clone()
        });
    };
    let escape = |text: &str| {
        if html {
            Html(text).to_string()
        } else {
            text.to_owned()
        }
    };
    let mut out = String::with_capacity(entry.text.len() + 32);
    for part in parts {
        match part {
            catalog::Part::Text(text) => out.push_str(&escape(text)),
            catalog::Part::Placeholder(name) => {
                let value = kwargs
                    .peek::<Value>(name)
                    .ok()
                    .filter(|v| !v.is_undefined());
                let Some(value) = value else {
                    // Passed, but what was passed is undefined: a column the row lacks.
                    if kwargs.has(name) {
                        return Err(minijinja::Error::new(
                            minijinja::ErrorKind::UndefinedError,
                            format!("t(`{key}`): the value passed as `{name}` is undefined"),
                        ));
                    }
                    return Err(invalid(format!(
                        "t(`{key}`) needs `{name}`: pass t('{key}', {name}=...)"
                    )));
                };
                if value.is_safe() {
                    out.push_str(&value.to_string());
                } else {
                    out.push_str(&escape(&value.to_string()));
                }
            }
        }
    }
    Ok(if html {
        Value::from_safe_string(out)
    } else {
        Value::from(out)
    })
}

/// What `t()` needs to know about the render in progress.
#[derive(Debug)]
pub(super) struct Scope {
    pub(super) resolved: Arc<Resolved>,
    pub(super) fell_back: AtomicBool,
}

impl Object for Scope {}
