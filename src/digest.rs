//! Hex digests, for fingerprints, Message-IDs, file names and unsubscribe tokens.

use sha2::{Digest, Sha256};

/// Lowercase hex of `bytes`. (A table, not `format!`: it runs once or twice per recipient.)
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// The bytes of lowercase hex `text`; `None` unless it is exactly that.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    if text.len() % 2 != 0 {
        return None;
    }
    text.as_bytes()
        .chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

/// SHA-256 of `bytes`, in hex.
pub fn sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// The first 16 hex digits of SHA-256 of `text`: short, and unique enough to name things.
pub fn short(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes())[..8])
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_is_lowercase_two_digits_per_byte() {
        assert_eq!(super::hex(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
        assert_eq!(super::unhex("000fa0ff"), Some(vec![0x00, 0x0f, 0xa0, 0xff]));
        for bad in ["0", "0g", "0F", "zz", " 00"] {
            assert_eq!(super::unhex(bad), None, "{bad}");
        }
        assert_eq!(super::short("a"), "ca978112ca1bbdca");
    }
}
