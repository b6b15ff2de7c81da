//! Rendering: one minijinja environment per campaign, shared by every worker thread.
//!
//! Templates see `recipient` (every audience column), `locale`, `campaign` (`name`,
//! `revision`), `t(key, **args)` and `unsubscribe_url`. Undefined variables are errors;
//! `.html` templates auto-escape, everything else does not; fuel bounds every render.
//!
//! - `environment`: minijinja, strict and fuelled; `translate`: `t()`.
//! - `catalog`: catalogs and their fallbacks; `inline`: `t()` calls inlined per locale.
//! - `direct`: templates of text and values, made by concatenation; `shape`: what the
//!   messages of one locale share, for providers that take shared content.
//! - `link` and `token`: the unsubscribe link and its token; `check`: header, body and
//!   link checks.

mod catalog;
mod check;
mod direct;
mod environment;
mod error;
mod escape;
mod inline;
mod link;
mod locale;
mod paths;
mod shape;
mod token;
mod translate;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use minijinja::value::{Object, Value};
use minijinja::{AutoEscape, Environment, context};

pub use catalog::{Catalogs, Resolved};
pub use direct::Direct;
pub use error::RenderError;
pub use escape::html as escape_html;
pub use locale::Reached;
pub use paths::Branch;
pub use shape::{Personal, Shape, Spans};
pub use token::{UNSUBSCRIBE_KEY_ENV, token_matches, unsubscribe_token};

use environment::{UNSUBSCRIBE, add, describe, located, read_template};
use link::Link;
use translate::Scope;

use crate::audience::Record;
use crate::manifest::Campaign;

/// One recipient's message.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub subject: String,
    pub html: Option<String>,
    pub text: Option<String>,
    /// The recipient's locale as the audience gives it, as a tag in the registry's spelling
    /// (the default when empty; the value as written when mapped or unknown).
    pub locale: String,
    /// How the value reached its catalog.
    pub reached: Reached,
    /// The catalog that answered first for this recipient.
    pub catalog: String,
    /// Whether any `t()` call fell back to another catalog.
    pub fallback: bool,
    /// This recipient's unsubscribe link, when the campaign declares `unsubscribe`.
    pub unsubscribe_url: Option<String>,
    /// Where this recipient's own values sit in the message, when its templates are text
    /// and values (`direct`): what lets a provider call share everything else.
    pub personal: Option<Personal>,
}

pub struct Renderer {
    env: Environment<'static>,
    catalogs: Arc<Catalogs>,
    /// Template names per catalog locale; see `inline`.
    compiled: HashMap<String, Compiled>,
    /// The templates as written, without inlining; kept to check that inlining changes nothing.
    written: Compiled,
    campaign: Value,
    campaign_name: String,
    locale_field: String,
    unsubscribe: Option<Link>,
    /// `file: campaign.unsubscribe.url` and `file: campaign.template.subject`, for messages.
    link_name: String,
    subject_name: String,
    key: Vec<u8>,
    keyed: bool,
    /// The templates with a marker after every branching tag (`paths`), when any has one.
    path_templates: Vec<String>,
    branches: Vec<Branch>,
}

/// One template of one locale: made by concatenation when it is only text and values
/// (`direct`), else run by minijinja.
pub(crate) enum Slot {
    Template(String),
    /// `name` is the same template for minijinja, which reports a value that cannot be found.
    Direct {
        direct: Arc<Direct>,
        name: String,
    },
}

/// One locale's versions of the campaign's templates (or, in `written`, the sources as written).
struct Compiled {
    subject: Slot,
    html: Option<Slot>,
    text: Option<Slot>,
    /// Whether an inlined `t()` text came from a fallback catalog.
    fallback: bool,
    /// The shape of this locale's messages, when every template is text and values.
    shape: Option<Arc<Shape>>,
}

impl Renderer {
    /// Compiles the campaign's templates and loads its catalogs.
    pub fn new(campaign: &Campaign) -> Result<Self, RenderError> {
        let catalogs = Arc::new(Catalogs::load(
            &campaign.locales.catalog,
            &campaign.locales.default,
            &campaign.locales.map,
        )?);
        let mut env = environment::new(&catalogs);
        let subject_name = format!(
            "{}: spec.template.subject",
            campaign.location.file.display()
        );
        let subject = (subject_name.clone(), campaign.template.subject.clone());
        let [html, text] = [&campaign.template.html, &campaign.template.text]
            .map(|path| path.as_deref().map(read_template).transpose());
        let (html, text) = (html?, text?);
        // Compile the sources as written first, so that syntax errors are reported once.
        for (name, source) in [Some(&subject), html.as_ref(), text.as_ref()]
            .into_iter()
            .flatten()
        {
            add(&mut env, name, source.clone())?;
        }
        let (path_templates, branches) =
            paths::compile(&mut env, [Some(&subject), html.as_ref(), text.as_ref()])?;
        let written = Compiled {
            subject: Slot::Template(subject.0.clone()),
            html: html.as_ref().map(|(name, _)| Slot::Template(name.clone())),
            text: text.as_ref().map(|(name, _)| Slot::Template(name.clone())),
            fallback: false,
            shape: None,
        };
        let mut compiled = HashMap::new();
        for locale in catalogs.locales() {
            let resolved = catalogs.resolve(locale);
            let mut fallback = false;
            let fixed = |path: &str| match path {
                "locale" => Some(resolved.catalog.clone()),
                "campaign.name" => Some(campaign.name.clone()),
                "campaign.revision" => Some(campaign.revision.number.to_string()),
                _ => None,
            };
            let mut compile = |(name, source): &(String, String)| -> Result<Slot, RenderError> {
                let escapes = matches!(
                    minijinja::default_auto_escape_callback(name),
                    AutoEscape::Html
                );
                let (inlined, fell_back) = inline::inline(source, &resolved, escapes);
                fallback |= fell_back;
                let compiled_name = format!("{name}\0{locale}");
                let direct = Direct::compile(&inlined, escapes, fixed);
                add(&mut env, &compiled_name, inlined)?;
                Ok(match direct {
                    Some(direct) => Slot::Direct {
                        direct: Arc::new(direct),
                        name: compiled_name,
                    },
                    None => Slot::Template(compiled_name),
                })
            };
            let subject = compile(&subject)?;
            let html = html.as_ref().map(&mut compile).transpose()?;
            let text = text.as_ref().map(&mut compile).transpose()?;
            let shape = shape::of(locale, &subject, html.as_ref(), text.as_ref());
            let set = Compiled {
                subject,
                html,
                text,
                fallback,
                shape,
            };
            compiled.insert(locale.to_owned(), set);
        }
        let (unsubscribe, link_name) = link::compile(&mut env, campaign)?;
        let key = crate::secret::from_env(UNSUBSCRIBE_KEY_ENV);
        if key.as_ref().is_some_and(crate::secret::Secret::is_short) {
            return Err(RenderError::ShortKey);
        }
        Ok(Self {
            env,
            catalogs,
            compiled,
            written,
            campaign: context! { name => campaign.name.clone(), revision => campaign.revision.number },
            campaign_name: campaign.name.clone(),
            locale_field: campaign.locales.field.clone(),
            unsubscribe,
            link_name,
            subject_name,
            keyed: key.is_some(),
            key: key.map_or_else(
                || b"herald-unkeyed".to_vec(),
                |k| k.expose().as_bytes().to_vec(),
            ),
            path_templates,
            branches,
        })
    }

    /// Every branching tag of the templates (`{% if %}`, `{% else %}`, ...), by index.
    pub fn branches(&self) -> &[Branch] {
        &self.branches
    }

    /// The branches `rendered` (this recipient's message) took through the templates, as
    /// indexes into `branches`; empty when the templates do not branch.
    pub fn path(&self, record: &Record, rendered: &Rendered) -> Result<Vec<usize>, RenderError> {
        let mut taken = Vec::new();
        if self.path_templates.is_empty() {
            return Ok(taken);
        }
        let value = record.get(&self.locale_field).unwrap_or_default();
        let resolved = self.catalogs.resolve(&value);
        let scope = Arc::new(Scope {
            resolved: Arc::clone(&resolved),
            fell_back: AtomicBool::new(false),
        });
        let ctx = context! {
            recipient => Value::from_object(Recipient(record.clone())),
            locale => resolved.catalog.clone(),
            campaign => self.campaign.clone(),
            unsubscribe_url => rendered.unsubscribe_url.clone().unwrap_or_default(),
            __herald => Value::from_dyn_object(scope),
        };
        for name in &self.path_templates {
            let output = self.run(name, ctx.clone(), record, &"preview")?;
            paths::taken(&output, &mut taken);
        }
        Ok(taken)
    }

    pub fn catalogs(&self) -> &Catalogs {
        &self.catalogs
    }

    /// Whether unsubscribe tokens are keyed by `HERALD_UNSUBSCRIBE_KEY` (else guessable).
    pub fn keyed(&self) -> bool {
        self.keyed
    }

    /// The locale column's value for `record` as plan counts it: a tag in the registry's
    /// spelling, the default locale when empty, else the value as written (trimmed).
    pub fn requested_locale(&self, record: &Record) -> String {
        let value = record.get(&self.locale_field).unwrap_or_default();
        self.catalogs.resolve(&value).requested.clone()
    }

    /// Renders subject and bodies for one recipient. `row` names the audience row in errors.
    pub fn render(
        &self,
        email: &str,
        record: &Record,
        row: &dyn std::fmt::Display,
    ) -> Result<Rendered, RenderError> {
        // A failure is rendered again from the sources as written, so that its message
        // and line are those of the template the user wrote, not of its inlined form.
        self.render_with(email, record, row, false)
            .or_else(|_| self.render_with(email, record, row, true))
    }

    /// Renders with the per-locale compiled templates, or (`as_written`) the sources as written.
    fn render_with(
        &self,
        email: &str,
        record: &Record,
        row: &dyn std::fmt::Display,
        as_written: bool,
    ) -> Result<Rendered, RenderError> {
        let value = record.get(&self.locale_field).unwrap_or_default();
        let resolved = self.catalogs.resolve(&value);
        let scope = Arc::new(Scope {
            resolved: Arc::clone(&resolved),
            fell_back: AtomicBool::new(false),
        });
        // `recipient` for minijinja, made only if a template (or the link) needs it.
        let recipient = std::cell::OnceCell::new();
        let locale = resolved.catalog.clone();
        let unsubscribe_url = self.unsubscribe_url(email, record, &recipient, row)?;
        let templates = if as_written {
            &self.written
        } else {
            &self.compiled[&resolved.catalog]
        };
        // minijinja's context is made only if a template needs it.
        let ctx = std::cell::OnceCell::new();
        let context = || {
            ctx.get_or_init(|| {
                context! {
                    recipient => recipient.get_or_init(|| Value::from_object(Recipient(record.clone()))).clone(),
                    locale => locale.clone(),
                    campaign => self.campaign.clone(),
                    unsubscribe_url => unsubscribe_url.clone().unwrap_or_default(),
                    __herald => Value::from_dyn_object(Arc::clone(&scope)),
                }
            })
        };
        let inputs = direct::Inputs {
            record,
            unsubscribe_url: unsubscribe_url.as_deref().unwrap_or_default(),
        };
        let fill = |slot: &Slot| self.fill(slot, &inputs, context, row);
        let (subject, subject_spans) = fill(&templates.subject)?;
        let (html, html_spans) = templates.html.as_ref().map(fill).transpose()?.unzip();
        let (text, text_spans) = templates.text.as_ref().map(fill).transpose()?.unzip();
        let refused = |template: &str, part: &str, message: String| RenderError::Template {
            template: template.to_owned(),
            message: format!("the rendered {part} {message}"),
            row: row.to_string(),
        };
        check::header("Subject", &subject)
            .map_err(|m| refused(&self.subject_name, "subject", m))?;
        for (body, spans, compiled, slot, part) in [
            (
                &html,
                &html_spans,
                &templates.html,
                &self.written.html,
                "html body",
            ),
            (
                &text,
                &text_spans,
                &templates.text,
                &self.written.text,
                "text body",
            ),
        ] {
            if let (Some(body), Some(Slot::Template(name))) = (body, slot) {
                let spans = spans.as_ref().and_then(Option::as_ref);
                check_body(body, compiled.as_ref(), spans).map_err(|m| refused(name, part, m))?;
            }
        }
        let personal = match (
            &templates.shape,
            subject_spans,
            html_spans.flatten(),
            text_spans.flatten(),
        ) {
            (Some(shape), Some(subject), html, text)
                if html.is_some() == shape.html.is_some()
                    && text.is_some() == shape.text.is_some() =>
            {
                Some(Personal {
                    shape: Arc::clone(shape),
                    subject,
                    html: html.unwrap_or_default(),
                    text: text.unwrap_or_default(),
                })
            }
            _ => None,
        };
        Ok(Rendered {
            subject,
            html,
            text,
            locale: resolved.requested.clone(),
            reached: resolved.reached,
            catalog: resolved.catalog.clone(),
            fallback: templates.fallback || scope.fell_back.load(Ordering::Relaxed),
            unsubscribe_url,
            personal,
        })
    }

    /// One part: by concatenation when it is text and values (with where the values sit),
    /// else by minijinja.
    /// This recipient's unsubscribe link, when the campaign declares one; `recipient` is
    /// minijinja's view of the row, made here if the link is a template.
    fn unsubscribe_url(
        &self,
        email: &str,
        record: &Record,
        recipient: &std::cell::OnceCell<Value>,
        row: &dyn std::fmt::Display,
    ) -> Result<Option<String>, RenderError> {
        let Some(link) = &self.unsubscribe else {
            return Ok(None);
        };
        let token = self.token(email);
        let url = match link {
            Link::Around { before, after } => format!("{before}{token}{after}"),
            Link::Template => {
                let recipient = recipient
                    .get_or_init(|| Value::from_object(Recipient(record.clone())))
                    .clone();
                let ctx = context! { unsubscribe_token => token, recipient => recipient, campaign => self.campaign.clone() };
                let url = self.run(UNSUBSCRIBE, ctx, record, row)?;
                // It becomes a header: refused here, in the preflight, not at send time.
                check::link(&url).map_err(|message| RenderError::Template {
                    template: self.link_name.clone(),
                    message: format!("the rendered link {message}"),
                    row: row.to_string(),
                })?;
                url
            }
        };
        Ok(Some(url))
    }

    fn fill<'c>(
        &self,
        slot: &Slot,
        inputs: &direct::Inputs<'_>,
        context: impl FnOnce() -> &'c Value,
        row: &dyn std::fmt::Display,
    ) -> Result<(String, Option<Spans>), RenderError> {
        match slot {
            Slot::Direct { direct, name } => match direct.render(inputs) {
                Some((text, spans)) => Ok((text, Some(spans))),
                // A value that cannot be found: minijinja says which, in its words.
                None => Ok((self.run(name, context().clone(), inputs.record, row)?, None)),
            },
            Slot::Template(name) => {
                Ok((self.run(name, context().clone(), inputs.record, row)?, None))
            }
        }
    }

    /// Renders template `name`; an undefined value is named with the columns the
    /// recipient's row does have.
    fn run(
        &self,
        name: &str,
        ctx: Value,
        record: &Record,
        row: &dyn std::fmt::Display,
    ) -> Result<String, RenderError> {
        let template = self
            .env
            .get_template(name)
            .expect("every template was added in new");
        template.render(ctx).map_err(|error| {
            let mut message = describe(&error);
            if error.kind() == minijinja::ErrorKind::UndefinedError {
                let columns = record.columns();
                // The column named, or (when a `t()` argument was undefined) one written on
                // the line that the row does not have.
                let line = error
                    .line()
                    .and_then(|n| template.source().lines().nth(n.saturating_sub(1)));
                let named = undefined_column(&message).map(str::to_owned);
                let missing = named.clone().or_else(|| {
                    line.into_iter()
                        .flat_map(columns_named)
                        .find(|name| !columns.iter().any(|c| c == name))
                        .map(str::to_owned)
                });
                if let Some(name) = missing {
                    if named.is_none() {
                        let _ = write!(message, ": `recipient.{name}` is not a column");
                    }
                    let nearest = crate::text::closest(&name, columns.iter().map(String::as_str));
                    if let Some(column) = nearest {
                        let _ = write!(message, " (did you mean `recipient.{column}`?)");
                    }
                }
                let _ = write!(
                    message,
                    "; the audience columns are {}",
                    crate::text::List::and_ticked(&columns)
                );
            }
            RenderError::Template {
                template: located(name, &error),
                message,
                row: row.to_string(),
            }
        })
    }

    /// An opaque, stable token for one recipient of this campaign.
    pub fn token(&self, email: &str) -> String {
        unsubscribe_token(&self.key, &self.campaign_name, email)
    }
}

/// The column an undefined `recipient.NAME` names, as minijinja reports it.
fn undefined_column(message: &str) -> Option<&str> {
    let (_, rest) = message.split_once("`recipient.")?;
    let (name, rest) = rest.split_once('`')?;
    rest.starts_with(" is undefined").then_some(name)
}

/// The columns a line of a template names as `recipient.NAME`.
fn columns_named(line: &str) -> impl Iterator<Item = &str> {
    line.split("recipient.").skip(1).filter_map(|rest| {
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        (end > 0).then(|| &rest[..end])
    })
}

/// `recipient`: every audience column, looked up lazily.
#[derive(Debug)]
struct Recipient(Record);

impl Object for Recipient {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let key = key.as_str()?;
        self.0.get(key).map(Value::from)
    }
}

/// Why a rendered body cannot be sent, if it cannot. A body made of pieces checked once
/// (`Direct::is_clean`) and values is checked in its values: the first refused character
/// is in one of them, if anywhere.
fn check_body(body: &str, compiled: Option<&Slot>, spans: Option<&Spans>) -> Result<(), String> {
    match (compiled, spans) {
        (Some(Slot::Direct { direct, .. }), Some(spans)) if direct.is_clean() => spans
            .iter()
            .try_for_each(|(start, end)| check::body(&body[*start..*end])),
        _ => check::body(body),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Inlining `t()` calls must not change a single byte of any message.
    #[test]
    fn compiled_templates_render_exactly_like_the_written_ones() {
        let campaigns = Path::new(env!("CARGO_MANIFEST_DIR")).join("campaigns");
        let manifests = crate::manifest::load(&campaigns).unwrap();
        let campaign = &manifests.campaigns[0];
        let renderer = super::Renderer::new(campaign).unwrap();
        let mut compared = 0;
        for row in crate::audience::rows(&campaign.audience.file, "email").unwrap() {
            let row = row.unwrap();
            let email = row.record.get("email").unwrap();
            let fast = renderer
                .render_with(&email, &row.record, &row.line, false)
                .unwrap();
            let slow = renderer
                .render_with(&email, &row.record, &row.line, true)
                .unwrap();
            assert_eq!(fast.subject, slow.subject, "line {}", row.line);
            assert_eq!(fast.html, slow.html, "line {}", row.line);
            assert_eq!(fast.text, slow.text, "line {}", row.line);
            compared += 1;
        }
        assert_eq!(compared, 1000);
    }

    /// Rebuilds a part from its shape's texts and the values at `spans`.
    fn reassemble(texts: &[String], rendered: &str, spans: &[(usize, usize)]) -> String {
        let mut out = texts[0].clone();
        for ((start, end), text) in spans.iter().zip(&texts[1..]) {
            out.push_str(&rendered[*start..*end]);
            out.push_str(text);
        }
        out
    }

    /// Made by concatenation or by minijinja, every message is the same, whatever the
    /// recipient data holds; and the shape plus the recipient's values is the message.
    #[test]
    fn direct_rendering_equals_minijinja_for_hostile_values() {
        use proptest::prelude::*;
        let campaigns = Path::new(env!("CARGO_MANIFEST_DIR")).join("campaigns");
        let manifests = crate::manifest::load(&campaigns).unwrap();
        let renderer = super::Renderer::new(&manifests.campaigns[0]).unwrap();
        let piece = prop::sample::select(vec![
            "a",
            " ",
            "&",
            "<",
            ">",
            "\"",
            "'",
            "/",
            "=",
            "`",
            "{{",
            "}}",
            "{%",
            "%}",
            "é",
            "李",
            "😀",
            "\\",
            "\n",
            "\t",
            "\r",
            // Refused in a body: both ways must refuse with the same words.
            "\u{1}",
            "\u{1b}",
            "\u{7f}",
            "&amp;",
            "-h0-",
            "%recipient.x%",
        ]);
        let value = prop::collection::vec(piece, 0..16).prop_map(|p| p.concat());
        let locale = prop::sample::select(vec!["en", "ja", "zh-TW", "pt-BR", "", "ko"]);
        let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
            cases: 300,
            failure_persistence: None,
            ..Default::default()
        });
        runner
            .run(&(value, locale), |(name, locale)| {
                let headers: std::sync::Arc<[String]> =
                    ["email", "first_name", "locale"].map(str::to_owned).into();
                let values =
                    csv::StringRecord::from(vec!["ann@example.com", name.as_str(), locale]);
                let record = crate::audience::Record::Csv { headers, values };
                let fast = renderer.render_with("ann@example.com", &record, &2, false);
                let slow = renderer.render_with("ann@example.com", &record, &2, true);
                let (fast, slow) = match (fast, slow) {
                    (Ok(fast), Ok(slow)) => (fast, slow),
                    (Err(fast), Err(slow)) => {
                        prop_assert_eq!(fast.to_string(), slow.to_string());
                        return Ok(());
                    }
                    (fast, slow) => {
                        return Err(TestCaseError::fail(format!("{fast:?} but {slow:?}")));
                    }
                };
                prop_assert_eq!(&fast.subject, &slow.subject);
                prop_assert_eq!(&fast.html, &slow.html);
                prop_assert_eq!(&fast.text, &slow.text);
                let personal = fast
                    .personal
                    .as_ref()
                    .expect("the shipped templates are direct");
                let shape = &personal.shape;
                let html = fast.html.as_deref().unwrap();
                let text = fast.text.as_deref().unwrap();
                prop_assert_eq!(
                    reassemble(shape.html.as_ref().unwrap().texts(), html, &personal.html),
                    html
                );
                prop_assert_eq!(
                    reassemble(shape.text.as_ref().unwrap().texts(), text, &personal.text),
                    text
                );
                prop_assert_eq!(&shape.catalog, &fast.catalog);
                Ok(())
            })
            .unwrap();
    }
}
