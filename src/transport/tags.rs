//! Tags: how a call that shares content across recipients marks where each recipient's
//! own values go, and the proof that the provider, putting the values back, gives each
//! recipient exactly the message herald rendered for them.
//!
//! SendGrid's `substitutions` and Mailgun's `recipient-variables` work the same way: the
//! content holds a tag, each recipient carries a value per tag, and the provider replaces
//! every occurrence of each tag by that recipient's value. Only the way a tag is written
//! differs (`Syntax`).
//!
//! # Guarantees
//! - Tags hold a nonce drawn for each run, so recipient data cannot guess them; a value
//!   holding the nonce never shares a call.
//! - `prove` answers a shaped message only when the provider's assembly, done here as the
//!   provider documents it, gives back the rendered subject, text, html and unsubscribe
//!   link byte for byte.
//! - Text that the provider would change besides herald's own tags (Mailgun's
//!   `%recipient...%` and `%...unsubscribe_url%` variables) is a hazard: a message holding
//!   one is never proved, and `hazard` lets a transport refuse to send it whole. It is
//!   looked for in the message as the provider assembles it, not in each value alone: a
//!   variable split across two values, or across a value and the text beside it, is one;
//!   so is one that the shared content makes with a tag beside it, before substitution.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::shaped::Shaped;
use crate::plan::packing::{MAX_PERSONAL_BYTES, TAG_BYTES};
use crate::render::{Rendered, Shape};

/// How a provider writes a tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// `-t<nonce>0-`: any text works as a SendGrid substitution tag; dashes keep it clear
    /// of what HTML escaping would change.
    SendGrid,
    /// `%recipient.t<nonce>0%`: how Mailgun content names a recipient variable.
    Mailgun,
}

impl Syntax {
    fn open(self) -> &'static str {
        match self {
            Self::SendGrid => "-",
            Self::Mailgun => "%recipient.",
        }
    }

    fn close(self) -> &'static str {
        match self {
            Self::SendGrid => "-",
            Self::Mailgun => "%",
        }
    }

    /// Text the provider replaces in any message it sends this way, whatever herald
    /// asks: Mailgun fills in `%recipient%`, `%recipient.NAME%`, `%recipient_fname%` and
    /// its own unsubscribe links in every message of a call with `recipient-variables`.
    fn hazards(self) -> &'static [&'static str] {
        match self {
            Self::SendGrid => &[],
            Self::Mailgun => &["%recipient", "unsubscribe_url%"],
        }
    }

    /// The length of the longest hazard: a hazard that crosses from one piece of text into
    /// the next takes fewer bytes than this of the pieces it only begins or ends in.
    fn longest_hazard(self) -> usize {
        self.hazards().iter().map(|h| h.len()).max().unwrap_or(0)
    }
}

/// This run's tags: for each shape, its content with a tag in place of each value (`t`
/// for the text's values, `h` for the html's, then the value's index). Cheap to clone;
/// clones share the tagged contents.
#[derive(Clone)]
pub struct Tags {
    syntax: Syntax,
    nonce: Arc<str>,
    /// Each shape's content with its tags, made once per run.
    tagged: Arc<Mutex<HashMap<usize, Arc<Tagged>>>>,
}

/// One shape's content with a tag in place of each value.
pub struct Tagged {
    pub text: Option<String>,
    pub html: Option<String>,
    text_tags: Vec<String>,
    html_tags: Vec<String>,
    /// What the provider's pass over each part finds, from nonce to nonce: made once, so
    /// proving a recipient's message is a comparison, not a search.
    text_pieces: Vec<Piece>,
    html_pieces: Vec<Piece>,
    /// Whether the shape's own text holds something the provider would change.
    hazardous: bool,
    /// Keeps the shape alive while its address is the key.
    _shape: Arc<Shape>,
}

impl Tags {
    pub fn new(syntax: Syntax) -> Self {
        Self {
            syntax,
            nonce: nonce().into(),
            tagged: Arc::default(),
        }
    }

    /// The tag for value `index` of `part`; with no index, the tag of a value that is a
    /// whole field (Mailgun's subject `s`, unsubscribe link `u`).
    pub fn tag(&self, part: char, index: Option<usize>) -> String {
        let index = index.map(|i| i.to_string()).unwrap_or_default();
        let (open, close) = (self.syntax.open(), self.syntax.close());
        format!("{open}{part}{}{index}{close}", self.nonce)
    }

    /// The variable's name inside a tag: what Mailgun's `recipient-variables` are keyed by.
    pub fn name<'a>(&self, tag: &'a str) -> &'a str {
        &tag[self.syntax.open().len()..tag.len() - self.syntax.close().len()]
    }

    /// The first piece of `text` the provider would change on its own, if any.
    pub fn hazard(&self, text: &str) -> Option<&'static str> {
        self.syntax
            .hazards()
            .iter()
            .copied()
            .find(|h| text.contains(h))
    }

    pub fn tagged(&self, shape: &Arc<Shape>) -> Arc<Tagged> {
        let key = Arc::as_ptr(shape) as usize;
        let mut tagged = self.tagged.lock().expect("tags lock");
        let found = tagged.entry(key).or_insert_with(|| {
            let tag = |texts: &[String], part: char| {
                let mut content = texts[0].clone();
                let mut tags = Vec::with_capacity(texts.len() - 1);
                for (i, text) in texts[1..].iter().enumerate() {
                    let tag = self.tag(part, Some(i));
                    content.push_str(&tag);
                    content.push_str(text);
                    tags.push(tag);
                }
                (content, tags)
            };
            let (text, text_tags) = shape.text.as_ref().map(|d| tag(d.texts(), 't')).unzip();
            let (html, html_tags) = shape.html.as_ref().map(|d| tag(d.texts(), 'h')).unzip();
            let hazardous = [&shape.text, &shape.html]
                .into_iter()
                .flatten()
                .flat_map(|d| d.texts())
                .any(|t| self.hazard(t).is_some())
                || [&text, &html]
                    .into_iter()
                    .flatten()
                    .any(|content| self.stray_hazard(content));
            let (text_tags, html_tags) =
                (text_tags.unwrap_or_default(), html_tags.unwrap_or_default());
            let pieces = |content: &Option<String>, tags: &[String]| {
                content
                    .as_deref()
                    .map(|content| self.pieces(content, tags))
                    .unwrap_or_default()
            };
            Arc::new(Tagged {
                text_pieces: pieces(&text, &text_tags),
                html_pieces: pieces(&html, &html_tags),
                text,
                html,
                text_tags,
                html_tags,
                hazardous,
                _shape: Arc::clone(shape),
            })
        });
        Arc::clone(found)
    }

    /// Whether a shaped message may share a call: the limit on personal values, no value
    /// (subject and unsubscribe link included) holding a tag or a hazard, and no hazard
    /// in the message as assembled, where values meet each other and the shape's text.
    pub fn fits(&self, shaped: &Shaped) -> bool {
        let values = shaped.text().chain(shaped.html());
        let bytes: usize = values.clone().map(|v| v.len() + TAG_BYTES).sum();
        let mut fields = values
            .chain([shaped.subject()])
            .chain(shaped.unsubscribe_url());
        bytes <= MAX_PERSONAL_BYTES
            && !fields.any(|v| v.contains(&*self.nonce) || self.hazard(v).is_some())
            && self.assembled_hazard(shaped).is_none()
    }

    /// The first hazard in `shaped` as the provider assembles it (each part's text with
    /// the values between), where it crosses from a value into what comes next. A hazard
    /// inside a text of the shape alone is the shape's (`Tagged::hazardous`); one inside a
    /// value alone is caught by `fits`. One that crosses a boundary takes less than the
    /// longest hazard's length of each text it begins or ends in, so each long text is
    /// looked at only at its two ends: the cost is the values', not the message's.
    pub fn assembled_hazard(&self, shaped: &Shaped) -> Option<&'static str> {
        let keep = self.syntax.longest_hazard().saturating_sub(1);
        if keep == 0 {
            return None;
        }
        let parts: [(_, &mut dyn Iterator<Item = &str>); 2] = [
            (shaped.shape.text.as_ref(), &mut shaped.text()),
            (shaped.shape.html.as_ref(), &mut shaped.html()),
        ];
        let mut joined = String::new();
        for (direct, values) in parts {
            let Some(direct) = direct else { continue };
            let texts = direct.texts();
            joined.clear();
            for text in texts {
                if text.len() > 2 * keep {
                    joined.push_str(&text[..ceil_boundary(text, keep)]);
                    // No hazard holds a NUL: nothing is found across the cut.
                    joined.push('\0');
                    joined.push_str(&text[floor_boundary(text, text.len() - keep)..]);
                } else {
                    joined.push_str(text);
                }
                if let Some(value) = values.next() {
                    joined.push_str(value);
                }
            }
            if let Some(found) = self.hazard(&joined) {
                return Some(found);
            }
        }
        None
    }

    /// Whether `content`, a shape's text with this run's tags in place of the values,
    /// holds a hazard that is not the start of one of those tags: the provider would see
    /// it before putting any value in.
    fn stray_hazard(&self, content: &str) -> bool {
        let open = self.syntax.open();
        self.syntax.hazards().iter().any(|hazard| {
            content.match_indices(hazard).any(|(at, _)| {
                let rest = &content[at..];
                // A tag: the opening, one ASCII letter for the part, then the nonce.
                let tag = rest
                    .strip_prefix(open)
                    .and_then(|r| r.get(1..))
                    .is_some_and(|r| r.starts_with(&*self.nonce));
                !tag
            })
        })
    }

    /// `rendered`, kept as its values, when the provider given its shape's tagged content
    /// and these values gives back exactly `rendered`: subject, text, html.
    pub fn prove(&self, rendered: &Rendered) -> Option<Shaped> {
        let shaped = Shaped::of(rendered)?;
        if !self.fits(&shaped) {
            return None;
        }
        let tagged = self.tagged(&shaped.shape);
        if tagged.hazardous {
            return None;
        }
        let gives =
            |content: Option<&str>, pieces: &[Piece], values: Vec<&str>, expected: Option<&str>| {
                match (content, expected) {
                    (Some(content), Some(expected)) => {
                        Piece::assemble(pieces, content, &values, expected)
                    }
                    (None, None) => true,
                    _ => false,
                }
            };
        // SendGrid applies substitutions to a personalization's subject too; Mailgun's
        // subject is a tag of its own whose value is the whole subject.
        let subject = match self.syntax {
            Syntax::SendGrid => self.assembles_to(&rendered.subject, &[], &rendered.subject),
            Syntax::Mailgun => {
                let tag = self.tag('s', None);
                self.assembles_to(&tag, &[(&tag, &rendered.subject)], &rendered.subject)
            }
        };
        let proved = subject
            && gives(
                tagged.text.as_deref(),
                &tagged.text_pieces,
                shaped.text().collect(),
                rendered.text.as_deref(),
            )
            && gives(
                tagged.html.as_deref(),
                &tagged.html_pieces,
                shaped.html().collect(),
                rendered.html.as_deref(),
            );
        proved.then_some(shaped)
    }

    /// Whether what the provider makes of `content` with `substitutions` (every
    /// occurrence of each tag replaced by its value) is `expected`, byte for byte.
    pub fn assembles_to(
        &self,
        content: &str,
        substitutions: &[(&str, &str)],
        expected: &str,
    ) -> bool {
        let (tags, values): (Vec<&str>, Vec<&str>) = substitutions.iter().copied().unzip();
        Piece::assemble(&self.pieces(content, &tags), content, &values, expected)
    }

    /// What the provider's pass over `content` finds. Every tag holds the nonce and no
    /// value does, so one pass from nonce to nonce gives what replacing tag after tag
    /// gives, in any order: text up to a tag, the tag's value, text after it, and so on.
    /// A nonce that starts none of `tags` stays text.
    fn pieces(&self, content: &str, tags: &[impl AsRef<str>]) -> Vec<Piece> {
        let mut pieces = Vec::new();
        let (mut from, mut at) = (0, 0);
        // A tag starts this many bytes before its nonce: the opening and the part's letter.
        let lead = self.syntax.open().len() + 1;
        while let Some(found) = content[at..].find(&*self.nonce) {
            let nonce = at + found;
            let start = nonce.saturating_sub(lead).max(at);
            let tag = tags
                .iter()
                .position(|tag| content.as_bytes()[start..].starts_with(tag.as_ref().as_bytes()));
            if let Some(index) = tag {
                // A tag found there is ASCII, so `start` is a character boundary.
                pieces.push(Piece::Text(from..start));
                pieces.push(Piece::Value(index));
                at = start + tags[index].as_ref().len();
                from = at;
            } else {
                at = nonce + self.nonce.len();
            }
        }
        pieces.push(Piece::Text(from..content.len()));
        pieces
    }
}

/// One piece of what a provider makes of a part: its own text, or a recipient's value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(std::ops::Range<usize>),
    Value(usize),
}

impl Piece {
    /// Whether `pieces` of `content`, with `values` in place, are `expected`; each piece is
    /// compared as it comes, so nothing is built.
    fn assemble(pieces: &[Self], content: &str, values: &[&str], expected: &str) -> bool {
        let mut rest = expected.as_bytes();
        for piece in pieces {
            let piece = match piece {
                Self::Text(range) => &content.as_bytes()[range.clone()],
                Self::Value(index) => match values.get(*index) {
                    Some(value) => value.as_bytes(),
                    None => return false,
                },
            };
            match rest.strip_prefix(piece) {
                Some(after) => rest = after,
                None => return false,
            }
        }
        rest.is_empty()
    }
}

impl Tagged {
    /// One recipient's values, each beside its tag.
    pub fn substitutions<'a>(&'a self, shaped: &'a Shaped) -> Vec<(&'a str, &'a str)> {
        let pairs = |tags: &'a [String], values: Box<dyn Iterator<Item = &'a str> + 'a>| {
            tags.iter().map(String::as_str).zip(values)
        };
        pairs(&self.text_tags, Box::new(shaped.text()))
            .chain(pairs(&self.html_tags, Box::new(shaped.html())))
            .collect()
    }
}

/// The first character boundary of `text` at or after `at`.
fn ceil_boundary(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at += 1;
    }
    at
}

/// The last character boundary of `text` at or before `at`.
fn floor_boundary(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// Eight random lowercase letters and digits.
fn nonce() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..8)
        .map(|_| char::from(ALPHABET[rand::random_range(0..ALPHABET.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn substitutions_assemble_exactly_or_not_at_all(syntax: Syntax) {
        let tags = Tags::new(syntax);
        let tag = |i: usize| tags.tag('t', Some(i));
        let content = format!("Hello {}, your code is {}.", tag(0), tag(1));
        let (t0, t1) = (tag(0), tag(1));
        let subs = [(t0.as_str(), "Ann & <b>"), (t1.as_str(), "-t0-")];
        let gives = |expected: &str| tags.assembles_to(&content, &subs, expected);
        assert!(gives("Hello Ann & <b>, your code is -t0-."));
        assert!(!gives("Hello Ann & <b>, your code is -t0-"), "cut short");
        assert!(!gives("Hello Ann & <b>, your code is -t0-.!"), "longer");
        assert!(!gives("Hello Ann, your code is -t0-."), "another value");
        // A tag with no substitution stays as it is.
        assert!(tags.assembles_to(
            &content,
            &subs[..1],
            &format!("Hello Ann & <b>, your code is {t1}.")
        ));
        assert!(tags.assembles_to("no tags", &subs, "no tags"));
        // A nonce right after characters of several bytes is no tag.
        let odd = format!("€{}", &*tags.nonce);
        assert!(tags.assembles_to(&odd, &subs, &odd));
    }

    #[test]
    fn sendgrid_substitutions_assemble_exactly_or_not_at_all() {
        substitutions_assemble_exactly_or_not_at_all(Syntax::SendGrid);
    }

    #[test]
    fn mailgun_variables_assemble_exactly_or_not_at_all() {
        substitutions_assemble_exactly_or_not_at_all(Syntax::Mailgun);
    }

    /// A text shape `Hello {{ recipient.first }}{{ recipient.city }}!` (or `source`), and
    /// a recipient's values for it.
    fn shaped(source: &str, values: &[&str]) -> Shaped {
        use crate::render::{Direct, Personal, Reached, Rendered};
        let direct = |source: &str| Arc::new(Direct::compile(source, false, |_| None).unwrap());
        let text = direct(source);
        // The shape's texts with the values between, and where each value sits.
        let mut body = String::new();
        let mut ranges = Vec::new();
        for (i, piece) in text.texts().iter().enumerate() {
            body.push_str(piece);
            if let Some(value) = values.get(i) {
                ranges.push((body.len(), body.len() + value.len()));
                body.push_str(value);
            }
        }
        let rendered = Rendered {
            subject: "Hello".to_owned(),
            html: None,
            text: Some(body),
            locale: "en".to_owned(),
            reached: Reached::Catalog,
            catalog: "en".to_owned(),
            fallback: false,
            unsubscribe_url: None,
            personal: Some(Personal {
                shape: Arc::new(Shape {
                    catalog: "en".to_owned(),
                    subject: direct("Hello"),
                    html: None,
                    text: Some(text),
                }),
                subject: Vec::new(),
                html: Vec::new(),
                text: ranges,
            }),
        };
        Shaped::of(&rendered).expect("a shaped message")
    }

    /// Regression: each value was checked alone, so a Mailgun variable split across two
    /// values of one recipient (or a value and the text beside it) went out in a packed
    /// call, for Mailgun to fill in.
    #[test]
    fn a_mailgun_variable_split_across_values_is_a_hazard() {
        let tags = Tags::new(Syntax::Mailgun);
        let adjacent = "Hello {{ recipient.first }}{{ recipient.city }}!";
        let split = shaped(adjacent, &["Ann %recip", "ient_email% Town"]);
        assert_eq!(tags.assembled_hazard(&split), Some("%recipient"));
        assert!(!tags.fits(&split));
        let harmless = shaped(adjacent, &["Ann %", "Town"]);
        assert_eq!(tags.assembled_hazard(&harmless), None);
        assert!(tags.fits(&harmless));
        // A value and the shape's text around it, with long texts on either side.
        let long = "x".repeat(100);
        let around = format!("{long} %tag_{{{{ recipient.first }}}}url% {long}");
        assert_eq!(
            tags.assembled_hazard(&shaped(&around, &["unsubscribe_"])),
            Some("unsubscribe_url%")
        );
        assert_eq!(tags.assembled_hazard(&shaped(&around, &["other_"])), None);
        // Multi-byte text at the cut points.
        let wide = format!(
            "{} {{{{ recipient.first }}}} {}",
            "é".repeat(40),
            "李".repeat(40)
        );
        assert_eq!(tags.assembled_hazard(&shaped(&wide, &["Ann"])), None);
        assert_eq!(Tags::new(Syntax::SendGrid).assembled_hazard(&split), None);
    }

    /// The shared content is what Mailgun reads before putting values in: text of the
    /// shape that makes a variable with the tag beside it is a hazard too.
    #[test]
    fn a_mailgun_variable_the_shape_makes_with_a_tag_is_a_hazard() {
        let tags = Tags::new(Syntax::Mailgun);
        let tag = tags.tag('t', Some(0));
        assert!(!tags.stray_hazard(&format!("Hello {tag}, 100% yours")));
        assert!(tags.stray_hazard(&format!("Hello %tag_unsubscribe_url{tag}")));
        assert!(tags.stray_hazard(&format!("Hello %recipient{tag}")));
        assert!(tags.stray_hazard("%recipient.t00000000%"), "another nonce");
    }

    #[test]
    fn mailgun_tags_name_their_variables_and_its_own_variables_are_hazards() {
        let tags = Tags::new(Syntax::Mailgun);
        let tag = tags.tag('h', Some(12));
        assert!(tag.starts_with("%recipient.h") && tag.ends_with("12%"));
        assert_eq!(tags.name(&tag), &tag["%recipient.".len()..tag.len() - 1]);
        assert_eq!(tags.hazard("Hi %recipient%!"), Some("%recipient"));
        assert_eq!(
            tags.hazard("<%tag_unsubscribe_url%>"),
            Some("unsubscribe_url%")
        );
        assert_eq!(tags.hazard("50% off, 100% sure"), None);
        assert_eq!(Tags::new(Syntax::SendGrid).hazard("Hi %recipient%!"), None);
    }
}
