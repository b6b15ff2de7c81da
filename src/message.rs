//! Building RFC 5322 messages from a rendered recipient: exactly one `To`, a `From`,
//! a `Subject` (RFC 2047 encoded when not ASCII), `Date`, a unique `Message-ID`, and
//! multipart/alternative text + html in UTF-8; with an unsubscribe link, the RFC 8058
//! `List-Unsubscribe` and `List-Unsubscribe-Post` headers.
//!
//! The `To` header carries the bare address and never an audience display name, so no
//! name from an audience file (with quotes, commas or line breaks) can reach a header.

use email_encoding::body::Encoding;
use lettre::Message;
use lettre::message::header::{ContentTransferEncoding, HeaderName, HeaderValue};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};

use crate::manifest::Address;
use crate::render::Rendered;

#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("`{address}` is not a usable address: {reason}")]
    Address { address: String, reason: String },
    #[error("cannot build the message for `{to}`: {reason}")]
    Build { to: String, reason: String },
    #[error("the unsubscribe link for `{to}` contains a line break or control character")]
    HeaderValue { to: String },
}

/// One message to one recipient. Without `message_id`, lettre makes one up.
pub fn build(
    from: &Address,
    reply_to: Option<&Address>,
    to: &str,
    rendered: &Rendered,
    message_id: Option<String>,
) -> Result<Message, MessageError> {
    let mut builder = Message::builder()
        .from(mailbox(from)?)
        .to(mailbox(&Address {
            email: to.to_owned(),
            name: None,
        })?)
        .subject(rendered.subject.clone())
        .message_id(message_id);
    if let Some(reply_to) = reply_to {
        builder = builder.reply_to(mailbox(reply_to)?);
    }
    if let Some(url) = &rendered.unsubscribe_url {
        if url.chars().any(char::is_control) {
            return Err(MessageError::HeaderValue { to: to.to_owned() });
        }
        builder = builder
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe"),
                format!("<{url}>"),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                "List-Unsubscribe=One-Click".to_owned(),
            ));
    }
    let built = match (&rendered.text, &rendered.html) {
        (Some(text), Some(html)) => builder.multipart(MultiPart::alternative_plain_html(
            encoded(text),
            encoded(html),
        )),
        (Some(text), None) => builder.singlepart(SinglePart::plain(encoded(text))),
        (None, Some(html)) => builder.singlepart(SinglePart::html(encoded(html))),
        (None, None) => builder.body(String::new()),
    };
    built.map_err(|error| MessageError::Build {
        to: to.to_owned(),
        reason: error.to_string(),
    })
}

/// `body` with CRLF line endings, in the transfer encoding lettre's `Body::new` would
/// choose (7bit, quoted-printable or base64, by the same chooser), encoded the same way.
///
/// lettre converts line endings by walking the body backwards one character at a time,
/// which took a quarter of building a message; here it is one pass over the lines. A test
/// checks that the bytes equal lettre's own.
fn encoded(body: &str) -> Body {
    let mut crlf = String::with_capacity(body.len() + body.len() / 32);
    let mut lines = body.split('\n');
    crlf.push_str(lines.next().unwrap_or_default());
    for line in lines {
        if !crlf.ends_with('\r') {
            crlf.push('\r');
        }
        crlf.push('\n');
        crlf.push_str(line);
    }
    match Encoding::choose(crlf.as_str(), false) {
        Encoding::SevenBit => {
            Body::dangerous_pre_encoded(crlf.into_bytes(), ContentTransferEncoding::SevenBit)
        }
        Encoding::QuotedPrintable => Body::dangerous_pre_encoded(
            quoted_printable::encode(crlf),
            ContentTransferEncoding::QuotedPrintable,
        ),
        // Not UTF-8 capable (`false` above), so never 8bit.
        Encoding::Base64 | Encoding::EightBit => {
            let mut out =
                String::with_capacity(email_encoding::body::base64::encoded_len(crlf.len()));
            email_encoding::body::base64::encode(crlf.as_bytes(), &mut out)
                .expect("writing to a String cannot fail");
            Body::dangerous_pre_encoded(out.into_bytes(), ContentTransferEncoding::Base64)
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(subject: &str, unsubscribe: Option<&str>) -> Rendered {
        Rendered {
            subject: subject.to_owned(),
            html: Some("<p>hi</p>".into()),
            text: Some("hi".into()),
            locale: "en".into(),
            reached: crate::render::Reached::Catalog,
            catalog: "en".into(),
            fallback: false,
            unsubscribe_url: unsubscribe.map(str::to_owned),
            personal: None,
        }
    }

    /// Line breaks in `from.name` are refused by manifest validation (lettre would panic).
    fn from() -> Address {
        Address {
            email: "news@example.com".into(),
            name: Some("News, Example".into()),
        }
    }

    #[test]
    fn line_breaks_in_subjects_never_start_a_header() {
        let message = build(
            &from(),
            None,
            "ann@example.com",
            &rendered("Hi\r\nBcc: everyone@example.com", None),
            Some("<a@example.com>".into()),
        )
        .unwrap();
        let text = String::from_utf8(message.formatted()).unwrap();
        let headers = text.split("\r\n\r\n").next().unwrap();
        assert!(
            !headers
                .lines()
                .any(|l| l.to_ascii_lowercase().starts_with("bcc:")),
            "{headers}"
        );
        assert_eq!(headers.lines().filter(|l| l.starts_with("To: ")).count(), 1);
    }

    #[test]
    fn bodies_are_encoded_exactly_as_lettre_encodes_them() {
        let long = "word ".repeat(40);
        let bodies = [
            "",
            "Hello\nWorld\n",
            "already\r\ncrlf\r\n",
            "mixed\nand\r\nlone\rreturn\n\n",
            "\nstarts with a break",
            long.as_str(),
            "Здравствуйте, Ольга!\nВаш индекс изменился.\n",
            "Café crème, naïve façade\nmostly ASCII with a few accents\n",
            "さくら様\nEX-50指数の算出方法変更のお知らせ\n",
            "<p>Hello</p>\n<p>\u{1F4EC}</p>\n",
        ];
        for body in bodies {
            let ours = encoded(body);
            let theirs = Body::new(body.to_owned());
            assert_eq!(ours.encoding(), theirs.encoding(), "{body:?}");
            assert_eq!(ours.into_vec(), theirs.into_vec(), "{body:?}");
        }
    }

    #[test]
    fn an_unsubscribe_link_with_a_line_break_is_refused() {
        let error = build(
            &from(),
            None,
            "ann@example.com",
            &rendered("Hi", Some("https://example.com/u\r\nBcc: x@example.com")),
            None,
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "the unsubscribe link for `ann@example.com` contains a line break or control character"
        );
    }
}
