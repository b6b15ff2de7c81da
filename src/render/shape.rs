//! The shape of a locale's messages: the literal text of each part, between the
//! recipient's own values, when every template is text and values. What lets a provider
//! call carry the shared text once and each recipient's values beside their address.

use std::sync::Arc;

use super::Slot;
use super::direct::Direct;

/// What every message of one locale shares: the literal text of each part, between the
/// recipient's own values.
#[derive(Debug)]
pub struct Shape {
    /// The catalog locale the templates were compiled for; messages of one shape share it.
    pub catalog: String,
    pub subject: Arc<Direct>,
    pub html: Option<Arc<Direct>>,
    pub text: Option<Arc<Direct>>,
}

/// Byte ranges of a part where the recipient's own values sit.
pub type Spans = Vec<(usize, usize)>;

/// Where a recipient's own values sit in their message: byte ranges of each part.
#[derive(Debug, Clone)]
pub struct Personal {
    pub shape: Arc<Shape>,
    pub subject: Vec<(usize, usize)>,
    pub html: Vec<(usize, usize)>,
    pub text: Vec<(usize, usize)>,
}

/// The shape of a locale's messages, when every part is made by concatenation.
pub(super) fn of(
    catalog: &str,
    subject: &Slot,
    html: Option<&Slot>,
    text: Option<&Slot>,
) -> Option<Arc<Shape>> {
    let direct = |slot: &Slot| match slot {
        Slot::Direct { direct, .. } => Some(Arc::clone(direct)),
        Slot::Template(_) => None,
    };
    let part = |slot: Option<&Slot>| slot.map(direct);
    let (html, text) = (part(html), part(text));
    Some(Arc::new(Shape {
        catalog: catalog.to_owned(),
        subject: direct(subject)?,
        html: html.map_or(Some(None), |d| d.map(Some))?,
        text: text.map_or(Some(None), |d| d.map(Some))?,
    }))
}
