//! Email address syntax, as herald accepts it for senders and recipients.
//!
//! Deliberately stricter than RFC 5321: no quoted local parts, no comments, no IP literals,
//! ASCII only. Every address herald sends to passes through here, so anything that could
//! smuggle a second recipient or a header break (`,`, `;`, `<`, whitespace, CR/LF) is out.

/// Whether `address` is a plain `local@domain` address herald will send to or from.
pub fn is_valid(address: &str) -> bool {
    let Some((local, domain)) = address.split_once('@') else {
        return false;
    };
    address.len() <= 254 && is_local_part(local) && is_domain(domain)
}

fn is_local_part(local: &str) -> bool {
    const SPECIALS: &[u8] = b"!#$%&'*+-/=?^_`{|}~";
    !local.is_empty()
        && local.len() <= 64
        && local.split('.').all(|atom| {
            !atom.is_empty()
                && atom
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || SPECIALS.contains(&b))
        })
}

fn is_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    domain.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.bytes().any(|b| b.is_ascii_alphabetic()))
}

#[cfg(test)]
mod tests {
    use super::is_valid;

    macro_rules! address_test {
        ($($name:ident: $input:expr => $expected:expr,)*) => {$(
            #[test]
            fn $name() {
                assert_eq!(is_valid($input), $expected, "{:?}", $input);
            }
        )*};
    }

    address_test! {
        plain: "news@example.com" => true,
        plus_and_dots: "first.last+tag@mail.example.co.uk" => true,
        hyphenated_domain: "a@my-host.example" => true,
        no_at: "news.example.com" => false,
        two_ats: "a@b@example.com" => false,
        empty_local: "@example.com" => false,
        dot_at_start: ".a@example.com" => false,
        double_dot: "a..b@example.com" => false,
        no_tld: "a@localhost" => false,
        numeric_tld: "a@1.2.3.4" => false,
        space: "a b@example.com" => false,
        comma_list: "a@example.com,b@example.com" => false,
        angle_brackets: "<a@example.com>" => false,
        crlf: "a@example.com\r\nBcc: b@example.com" => false,
        label_hyphen_edge: "a@-x.example.com" => false,
        non_ascii: "jo\u{e3}o@example.com" => false,
    }
}
