//! What an envelope carries: a recipient's whole rendered message, or, for a transport
//! that shares content across a call, only the recipient's own values, kept after the
//! provider's assembly was proved to give back exactly their message.
//!
//! A shaped message is a few hundred bytes in two allocations where a whole one is a few
//! kilobytes, which is what keeps a million personal messages in calls of 1,000 within
//! memory.

use std::borrow::Cow;
use std::sync::Arc;

use crate::render::{Personal, Rendered, Shape};

/// One recipient's message as it travels to the transport.
#[derive(Debug, Clone)]
pub enum Message {
    Whole(Rendered),
    Shaped(Shaped),
}

/// A message proved to be its shape's text with these values between.
#[derive(Debug, Clone)]
pub struct Shaped {
    pub shape: Arc<Shape>,
    /// Every value one after another: the subject, the unsubscribe link (when there is
    /// one), the text part's values, then the html part's.
    values: String,
    /// Where each value ends in `values`.
    ends: Vec<u32>,
    /// How many values the text part has, and whether there is a link.
    text: u16,
    link: bool,
}

impl Message {
    pub fn subject(&self) -> &str {
        match self {
            Self::Whole(rendered) => &rendered.subject,
            Self::Shaped(shaped) => shaped.subject(),
        }
    }

    pub fn unsubscribe_url(&self) -> Option<&str> {
        match self {
            Self::Whole(rendered) => rendered.unsubscribe_url.as_deref(),
            Self::Shaped(shaped) => shaped.unsubscribe_url(),
        }
    }

    /// The whole message: as rendered, or put back together from shape and values.
    pub fn whole(&self) -> Cow<'_, Rendered> {
        match self {
            Self::Whole(rendered) => Cow::Borrowed(rendered),
            Self::Shaped(shaped) => Cow::Owned(shaped.whole()),
        }
    }
}

impl Shaped {
    /// Keeps only `rendered`'s values; `None` when it has no shape (or more values, or
    /// bytes, than a shaped message holds: thousands).
    pub fn of(rendered: &Rendered) -> Option<Self> {
        let personal = rendered.personal.as_ref()?;
        let text = rendered.text.as_deref().unwrap_or_default();
        let html = rendered.html.as_deref().unwrap_or_default();
        let parts = std::iter::once(rendered.subject.as_str())
            .chain(rendered.unsubscribe_url.as_deref())
            .chain(personal.text.iter().map(|(s, e)| &text[*s..*e]))
            .chain(personal.html.iter().map(|(s, e)| &html[*s..*e]));
        let mut values = String::new();
        let mut ends = Vec::with_capacity(2 + personal.text.len() + personal.html.len());
        for part in parts {
            values.push_str(part);
            ends.push(u32::try_from(values.len()).ok()?);
        }
        Some(Self {
            shape: Arc::clone(&personal.shape),
            values,
            ends,
            text: u16::try_from(personal.text.len()).ok()?,
            link: rendered.unsubscribe_url.is_some(),
        })
    }

    /// The `i`th value.
    fn value(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.values[start..self.ends[i] as usize]
    }

    pub fn subject(&self) -> &str {
        self.value(0)
    }

    pub fn unsubscribe_url(&self) -> Option<&str> {
        self.link.then(|| self.value(1))
    }

    /// The text part's values, in order.
    pub fn text(&self) -> impl Iterator<Item = &str> + Clone {
        let first = 1 + usize::from(self.link);
        (first..first + usize::from(self.text)).map(|i| self.value(i))
    }

    /// The html part's values, in order.
    pub fn html(&self) -> impl Iterator<Item = &str> + Clone {
        let first = 1 + usize::from(self.link) + usize::from(self.text);
        (first..self.ends.len()).map(|i| self.value(i))
    }

    /// The message put back together: each part's text with the values between.
    pub fn whole(&self) -> Rendered {
        let mut spans = (Vec::new(), Vec::new());
        let join = |texts: &[String], values: Vec<&str>, spans: &mut Vec<(usize, usize)>| {
            let mut out = texts[0].clone();
            for (value, text) in values.into_iter().zip(&texts[1..]) {
                let start = out.len();
                out.push_str(value);
                spans.push((start, out.len()));
                out.push_str(text);
            }
            out
        };
        let shape = &self.shape;
        let text = shape
            .text
            .as_ref()
            .map(|d| join(d.texts(), self.text().collect(), &mut spans.0));
        let html = shape
            .html
            .as_ref()
            .map(|d| join(d.texts(), self.html().collect(), &mut spans.1));
        Rendered {
            subject: self.subject().to_owned(),
            html,
            text,
            locale: shape.catalog.clone(),
            reached: crate::render::Reached::Catalog,
            catalog: shape.catalog.clone(),
            fallback: false,
            unsubscribe_url: self.unsubscribe_url().map(str::to_owned),
            personal: Some(Personal {
                shape: Arc::clone(shape),
                subject: Vec::new(),
                text: spans.0,
                html: spans.1,
            }),
        }
    }
}
