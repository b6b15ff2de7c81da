//! Unsubscribe tokens: the first half of an HMAC-SHA256 of campaign and address, keyed by
//! `HERALD_UNSUBSCRIBE_KEY`. A token names one recipient of one campaign, cannot be
//! forged, and holds nothing of the address.
//!
//! # Caveats
//! - Without the key a fixed one is used and the tokens are guessable; `Renderer::keyed`
//!   says which, so commands can warn and transports that deliver mail refuse.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The environment variable holding the key.
pub const UNSUBSCRIBE_KEY_ENV: &str = "HERALD_UNSUBSCRIBE_KEY";

/// The MAC an unsubscribe token is made of: campaign and normalised address, keyed.
fn token_mac(key: &[u8], campaign: &str, email: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(campaign.as_bytes());
    mac.update(b"\n");
    mac.update(crate::audience::normalize(email).as_bytes());
    mac
}

/// The unsubscribe token of `email` in `campaign`: 32 hex digits, the first half of an
/// HMAC-SHA256 keyed by `HERALD_UNSUBSCRIBE_KEY`. It names one recipient of one campaign
/// and holds nothing of the address.
pub fn unsubscribe_token(key: &[u8], campaign: &str, email: &str) -> String {
    crate::digest::hex(&token_mac(key, campaign, email).finalize().into_bytes()[..16])
}

/// Whether `token` is the unsubscribe token of `email` in `campaign`, compared in
/// constant time.
pub fn token_matches(key: &[u8], campaign: &str, email: &str, token: &str) -> bool {
    let Some(bytes) = crate::digest::unhex(token).filter(|b| b.len() == 16) else {
        return false;
    };
    token_mac(key, campaign, email)
        .verify_truncated_left(&bytes)
        .is_ok()
}
