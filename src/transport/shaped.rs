//! What an envelope carries: a recipient's whole rendered message, or, for a transport
//! that shares content across a call, only the recipient's own values, kept after the
//! provider's assembly was proved to give back exactly their message.
//!
//! A shaped message is a few hundred bytes in two allocations where a whole one is a few
//! kilobytes, which is what keeps a million personal messages in calls of 1,000 within
//! memory.

use std::borrow::Cow;
use std::fmt;
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

    /// The text part, to be written piece by piece.
    pub fn text(&self) -> Option<Part<'_>> {
        match self {
            Self::Whole(rendered) => rendered.text.as_deref().map(Part::Whole),
            Self::Shaped(shaped) => shaped.part(false),
        }
    }

    /// The html part, to be written piece by piece.
    pub fn html(&self) -> Option<Part<'_>> {
        match self {
            Self::Whole(rendered) => rendered.html.as_deref().map(Part::Whole),
            Self::Shaped(shaped) => shaped.part(true),
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

    /// `rendered` kept as its values, when putting them back between its shape's text
    /// gives exactly its subject, text and html (compared piece by piece, nothing built).
    /// What a transport that sends whole messages keeps while a message waits for its call.
    pub fn keep(rendered: &Rendered) -> Option<Self> {
        let shaped = Self::of(rendered)?;
        let same = |part: Option<Part<'_>>, expected: Option<&str>| match (part, expected) {
            (Some(part), Some(expected)) => part.is(expected),
            (None, None) => true,
            _ => false,
        };
        let kept = same(shaped.part(false), rendered.text.as_deref())
            && same(shaped.part(true), rendered.html.as_deref());
        kept.then_some(shaped)
    }

    /// One part, as the shape's text with these values between.
    fn part(&self, html: bool) -> Option<Part<'_>> {
        let direct = if html {
            &self.shape.html
        } else {
            &self.shape.text
        };
        direct.as_ref().map(|direct| Part::Shaped {
            texts: direct.texts(),
            shaped: self,
            html,
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
    /// (Transports that can write a part as it goes use [`Message::text`] and
    /// [`Message::html`] instead.)
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

/// One part of a message, text or html, written (`Display`) piece by piece: a shaped
/// message's part is never put together in memory to be sent.
#[derive(Clone, Copy)]
pub enum Part<'a> {
    Whole(&'a str),
    Shaped {
        texts: &'a [String],
        shaped: &'a Shaped,
        html: bool,
    },
}

impl<'a> Part<'a> {
    /// The pieces, in order.
    fn pieces(self) -> impl Iterator<Item = &'a str> {
        let (first, rest): (&str, Box<dyn Iterator<Item = &'a str>>) = match self {
            Self::Whole(text) => (text, Box::new(std::iter::empty())),
            Self::Shaped {
                texts,
                shaped,
                html,
            } => {
                let values: Box<dyn Iterator<Item = &'a str>> = if html {
                    Box::new(shaped.html())
                } else {
                    Box::new(shaped.text())
                };
                let between = values
                    .zip(&texts[1..])
                    .flat_map(|(value, text)| [value, text.as_str()]);
                (texts[0].as_str(), Box::new(between))
            }
        };
        std::iter::once(first).chain(rest)
    }

    /// How many bytes the part is.
    pub fn len(self) -> usize {
        self.pieces().map(str::len).sum()
    }

    /// Whether the part is exactly `expected`.
    fn is(self, expected: &str) -> bool {
        let mut rest = expected;
        for piece in self.pieces() {
            match rest.strip_prefix(piece) {
                Some(after) => rest = after,
                None => return false,
            }
        }
        rest.is_empty()
    }
}

impl fmt::Display for Part<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.pieces().try_for_each(|piece| f.write_str(piece))
    }
}

impl serde::Serialize for Part<'_> {
    /// A JSON string written (and escaped) piece by piece.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// Every shipped recipient's message, kept as values, is written back byte for byte,
    /// and a message whose shared text differs from its shape's is not kept.
    #[test]
    fn a_kept_message_is_written_back_exactly_and_a_different_one_is_not_kept() {
        let campaigns = Path::new(env!("CARGO_MANIFEST_DIR")).join("campaigns");
        let manifests = crate::manifest::load(&campaigns).unwrap();
        let campaign = &manifests.campaigns[0];
        let templates = crate::render::Renderer::new(campaign).unwrap();
        let mut kept = 0;
        for row in crate::audience::rows(&campaign.audience.file, "email").unwrap() {
            let row = row.unwrap();
            let email = row.record.get("email").unwrap();
            let rendered = templates.render(&email, &row.record, &row.line).unwrap();
            let shaped = Shaped::keep(&rendered).expect("the shipped templates have a shape");
            let message = Message::Shaped(shaped);
            let written = |part: Option<Part<'_>>| part.map(|p| (p.to_string(), p.len()));
            let expected = |part: &Option<String>| part.clone().map(|p| (p.clone(), p.len()));
            assert_eq!(written(message.text()), expected(&rendered.text));
            assert_eq!(written(message.html()), expected(&rendered.html));
            assert_eq!(message.subject(), rendered.subject);
            assert_eq!(
                message.unsubscribe_url(),
                rendered.unsubscribe_url.as_deref()
            );
            let whole = message.whole();
            assert_eq!((&whole.text, &whole.html), (&rendered.text, &rendered.html));
            kept += 1;

            let mut changed = rendered.clone();
            let html = changed.html.as_mut().unwrap();
            // The first byte is shared text (the doctype), never a value.
            html.replace_range(0..1, "X");
            assert!(Shaped::keep(&changed).is_none());
            let mut longer = rendered.clone();
            longer.text.as_mut().unwrap().push('!');
            assert!(Shaped::keep(&longer).is_none());
        }
        assert_eq!(kept, 1000);
    }

    /// In JSON a part is escaped as the same text would be.
    #[test]
    fn a_part_in_json_is_the_string_it_writes() {
        let part = Part::Whole("Ann \"&\" <b>\n\u{1}é");
        assert_eq!(
            serde_json::to_string(&part).unwrap(),
            serde_json::to_string("Ann \"&\" <b>\n\u{1}é").unwrap()
        );
    }
}
