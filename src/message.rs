//! Building RFC 5322 messages from a rendered recipient: exactly one `To`, a `From`,
//! a `Subject` (RFC 2047 encoded when not ASCII), `Date`, a unique `Message-ID`, and
//! multipart/alternative text + html in UTF-8.
//!
//! The `To` header carries the bare address and never an audience display name, so no
//! name from an audience file (with quotes, commas or line breaks) can reach a header.

use lettre::Message;
use lettre::message::{Mailbox, MultiPart, SinglePart};

use crate::manifest::model::Address;
use crate::render::Rendered;

#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("`{address}` is not a usable address: {reason}")]
    Address { address: String, reason: String },
    #[error("cannot build the message for `{to}`: {reason}")]
    Build { to: String, reason: String },
}

/// One message to one recipient.
pub fn build(
    from: &Address,
    reply_to: Option<&Address>,
    to: &str,
    rendered: &Rendered,
) -> Result<Message, MessageError> {
    let mut builder = Message::builder()
        .from(mailbox(from)?)
        .to(mailbox(&Address {
            email: to.to_owned(),
            name: None,
        })?)
        .subject(rendered.subject.clone())
        .message_id(None);
    if let Some(reply_to) = reply_to {
        builder = builder.reply_to(mailbox(reply_to)?);
    }
    let built = match (&rendered.text, &rendered.html) {
        (Some(text), Some(html)) => builder.multipart(MultiPart::alternative_plain_html(
            text.clone(),
            html.clone(),
        )),
        (Some(text), None) => builder.singlepart(SinglePart::plain(text.clone())),
        (None, Some(html)) => builder.singlepart(SinglePart::html(html.clone())),
        (None, None) => builder.body(String::new()),
    };
    built.map_err(|error| MessageError::Build {
        to: to.to_owned(),
        reason: error.to_string(),
    })
}

fn mailbox(address: &Address) -> Result<Mailbox, MessageError> {
    let email = address
        .email
        .parse()
        .map_err(
            |error: lettre::address::AddressError| MessageError::Address {
                address: address.email.clone(),
                reason: error.to_string(),
            },
        )?;
    Ok(Mailbox::new(address.name.clone(), email))
}
