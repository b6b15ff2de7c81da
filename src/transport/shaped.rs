//! What an envelope carries: a recipient's whole rendered message, or, for a transport
//! that shares content across a call, only the recipient's own values, kept after the
//! provider's assembly was proved to give back exactly their message.
//!
//! A shaped message is a few hundred bytes where a whole one is a few kilobytes, which is
//! what keeps a million personal messages in calls of 1,000 within memory.

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
    pub subject: String,
    pub unsubscribe_url: Option<String>,
    pub shape: Arc<Shape>,
    /// The values of the text part, then of the html part, in order.
    pub text: Vec<String>,
    pub html: Vec<String>,
}

impl Message {
    pub fn subject(&self) -> &str {
        match self {
            Self::Whole(rendered) => &rendered.subject,
            Self::Shaped(shaped) => &shaped.subject,
        }
    }

    pub fn unsubscribe_url(&self) -> Option<&str> {
        match self {
            Self::Whole(rendered) => rendered.unsubscribe_url.as_deref(),
            Self::Shaped(shaped) => shaped.unsubscribe_url.as_deref(),
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
    /// Keeps only `rendered`'s values; `None` when it has no shape.
    pub fn of(rendered: &Rendered) -> Option<Self> {
        let personal = rendered.personal.as_ref()?;
        let values = |body: Option<&String>, spans: &[(usize, usize)]| -> Vec<String> {
            let body = body.map_or("", String::as_str);
            spans
                .iter()
                .map(|(start, end)| body[*start..*end].to_owned())
                .collect()
        };
        Some(Self {
            subject: rendered.subject.clone(),
            unsubscribe_url: rendered.unsubscribe_url.clone(),
            shape: Arc::clone(&personal.shape),
            text: values(rendered.text.as_ref(), &personal.text),
            html: values(rendered.html.as_ref(), &personal.html),
        })
    }

    /// The message put back together: each part's text with the values between.
    pub fn whole(&self) -> Rendered {
        let mut spans = (Vec::new(), Vec::new());
        let join = |texts: &[String], values: &[String], spans: &mut Vec<(usize, usize)>| {
            let mut out = texts[0].clone();
            for (value, text) in values.iter().zip(&texts[1..]) {
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
            .map(|d| join(d.texts(), &self.text, &mut spans.0));
        let html = shape
            .html
            .as_ref()
            .map(|d| join(d.texts(), &self.html, &mut spans.1));
        Rendered {
            subject: self.subject.clone(),
            html,
            text,
            locale: shape.catalog.clone(),
            reached: crate::render::Reached::Catalog,
            catalog: shape.catalog.clone(),
            fallback: false,
            unsubscribe_url: self.unsubscribe_url.clone(),
            personal: Some(Personal {
                shape: Arc::clone(shape),
                subject: Vec::new(),
                text: spans.0,
                html: spans.1,
            }),
        }
    }
}
