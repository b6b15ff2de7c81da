//! What a rendered message may contain, checked in the preflight for every recipient, so
//! that nothing the recipient data says can add a header, break one, or add a link.
//!
//! # Guarantees
//! - A header value (the subject, the unsubscribe link) holds no control character (CR and
//!   LF included) and fits an RFC 5322 line of 998 characters once folded.
//! - A body holds no control character but tab, CR and LF: the transfer encoding lettre
//!   picks for plain ASCII (7bit) cannot carry them.
//! - The unsubscribe link is one absolute `https:` or `mailto:` URL made only of the
//!   characters URLs may hold, so it cannot close its `<...>` in `List-Unsubscribe` and
//!   open another.

/// The longest line RFC 5322 allows, without its CRLF.
const LINE: usize = 998;
/// The longest unsubscribe link: `List-Unsubscribe: <` and `>` must fit on one line.
pub const MAX_LINK: usize = LINE - "List-Unsubscribe: <>".len();

/// Why `value` cannot be the header `name`'s value, if it cannot.
pub fn header(name: &str, value: &str) -> Result<(), String> {
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(format!(
            "contains {}; header values must be a single line of text",
            describe(c)
        ));
    }
    // lettre folds an ASCII value at its spaces and encodes any other (RFC 2047, folded
    // too); a run without spaces longer than a line cannot be folded.
    let longest = value.split(' ').map(str::len).max().unwrap_or(0);
    let room = LINE - name.len() - 2;
    if value.is_ascii() && longest > room {
        return Err(format!(
            "has a word of {longest} characters; a header line holds at most {LINE}"
        ));
    }
    Ok(())
}

/// Why `value` cannot be a message body, if it cannot.
pub fn body(value: &str) -> Result<(), String> {
    // It runs over every body of every recipient: bytes in chunks without a branch per
    // byte, which the compiler turns into vector instructions (an ASCII control character
    // is a byte of its own in UTF-8), then the one chunk that fails is looked at again.
    const CHUNK: usize = 64;
    let refused = |b: u8| (b < 0x20 && b != b'\t' && b != b'\n' && b != b'\r') || b == 0x7f;
    for chunk in value.as_bytes().chunks(CHUNK) {
        let any = chunk.iter().fold(false, |any, &b| any | refused(b));
        if any {
            let b = chunk.iter().copied().find(|&b| refused(b)).unwrap_or(0);
            return Err(format!("contains {}", describe(char::from(b))));
        }
    }
    Ok(())
}

/// Why `url` cannot be the unsubscribe link, if it cannot.
pub fn link(url: &str) -> Result<(), String> {
    if let Some(c) = url.chars().find(|c| !is_url_char(*c)) {
        return Err(format!(
            "`{}` contains {}, which a URL cannot hold; values placed in it are percent-encoded, so this comes from the template itself",
            url.escape_debug(),
            describe(c)
        ));
    }
    if url.len() > MAX_LINK {
        return Err(format!(
            "is {} characters long; `List-Unsubscribe` holds a link of at most {MAX_LINK}",
            url.len()
        ));
    }
    match reqwest::Url::parse(url) {
        Ok(parsed) if parsed.scheme() == "https" && parsed.host().is_some() => Ok(()),
        Ok(parsed) if parsed.scheme() == "mailto" => Ok(()),
        Ok(parsed) => Err(format!(
            "`{url}` is a `{}:` link; one-click unsubscribe needs an `https:` (or `mailto:`) link",
            parsed.scheme()
        )),
        Err(error) => Err(format!("`{url}` is not an absolute URL: {error}")),
    }
}

/// The characters RFC 3986 allows in a URI: unreserved, reserved, and `%`.
fn is_url_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~:/?#[]@!$&'()*+,;=%".contains(c)
}

/// Percent-encodes `value` for a URL: everything but RFC 3986's unreserved characters.
pub fn percent_encode(value: &str) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(DIGITS[usize::from(byte >> 4)]));
            out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
        }
    }
    out
}

/// A character as people name it in a message.
fn describe(c: char) -> String {
    let code = format!("U+{:04X}", u32::from(c));
    match c {
        '\n' | '\r' => format!("a line break ({code})"),
        ' ' => format!("a space ({code})"),
        c if c.is_control() => format!("a control character ({code})"),
        c => format!("`{c}` ({code})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_stay_one_line_of_at_most_998_characters() {
        assert!(header("Subject", "Hello, Ann").is_ok());
        assert!(header("Subject", &"word ".repeat(400)).is_ok());
        assert!(header("Subject", &"Привет".repeat(300)).is_ok());
        assert_eq!(
            header("Subject", "Hi\r\nBcc: x@example.com").unwrap_err(),
            "contains a line break (U+000D); header values must be a single line of text"
        );
        assert_eq!(
            header("Subject", "a\u{0}b").unwrap_err(),
            "contains a control character (U+0000); header values must be a single line of text"
        );
        assert_eq!(
            header("Subject", &"x".repeat(1000)).unwrap_err(),
            "has a word of 1000 characters; a header line holds at most 998"
        );
    }

    #[test]
    fn bodies_refuse_control_characters_but_tabs_and_line_breaks() {
        assert!(body("a\tb\r\nc\n").is_ok());
        assert_eq!(
            body("a\u{0}b").unwrap_err(),
            "contains a control character (U+0000)"
        );
        assert_eq!(
            body("\u{7f}").unwrap_err(),
            "contains a control character (U+007F)"
        );
    }

    #[test]
    fn links_are_one_https_or_mailto_url() {
        assert!(link("https://example.com/u/0af3").is_ok());
        assert!(link("mailto:unsubscribe@example.com?subject=x").is_ok());
        assert!(link("https://example.com/u/x>, <mailto:evil@attacker.example").is_err());
        assert!(link("https://example.com/u/a b").is_err());
        assert!(link("http://example.com/u/1").is_err());
        assert!(link("javascript:alert(1)").is_err());
        assert!(link("/u/1").is_err());
        assert!(link(&format!("https://example.com/{}", "a".repeat(1000))).is_err());
        assert_eq!(
            percent_encode("x>, <mailto:evil@a.example> Ünï"),
            "x%3E%2C%20%3Cmailto%3Aevil%40a.example%3E%20%C3%9Cn%C3%AF"
        );
    }
}
