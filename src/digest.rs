//! Hex digests, for fingerprints, Message-IDs, file names and unsubscribe tokens.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// SHA-256 of `bytes`, in hex.
pub fn sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// The first 16 hex digits of SHA-256 of `text`: short, and unique enough to name things.
pub fn short(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes())[..8])
}
