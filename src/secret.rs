//! Secrets: read from the environment only, and scrubbed from every text herald stores,
//! logs or prints, whatever that text came from.
//!
//! A provider, or a proxy in front of it, may echo a request's headers in an error message;
//! that message would then reach the state store, `status` and the logs. So every secret
//! read through `from_env` is registered, in the forms it travels in (as is, percent-encoded,
//! JSON-escaped, and inside any base64 text such as an HTTP basic auth header or a header
//! echoed in base64), and `scrub` replaces each of them with `[redacted]` wherever it
//! appears.
//!
//! # Guarantees
//! - A `Secret` has no `Debug` or `Display`: it cannot be printed by mistake.
//! - Texts go through `scrub` before they are stored (`store`), printed (`cli::report`) or
//!   logged (the log writer), so a registered secret never leaves in any of those.

use std::borrow::Cow;
use std::sync::RwLock;

/// Every form of every secret read so far, longest first.
static KNOWN: RwLock<Vec<String>> = RwLock::new(Vec::new());

const REDACTED: &str = "[redacted]";
/// Shorter forms are not scrubbed: they would blank out ordinary words. herald refuses
/// keys this short (`Secret::is_short`), since it could not keep them out of its texts.
pub const SHORTEST: usize = 8;

/// A secret value. Deliberately neither `Debug` nor `Display`.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// The value, to put where it belongs (an `Authorization` header, say) and nowhere else.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Too short to be scrubbed from texts: keys this short are refused.
    pub fn is_short(&self) -> bool {
        self.0.len() < SHORTEST
    }
}

/// Reads the secret in the environment variable `variable` (unset or empty: `None`) and
/// registers it for scrubbing.
pub fn from_env(variable: &str) -> Option<Secret> {
    let value = std::env::var(variable).ok().filter(|v| !v.is_empty())?;
    register(&value);
    Some(Secret(value))
}

/// Registers `value` (and the forms it travels in) to be scrubbed from every text.
pub fn register(value: &str) {
    let percent: String = value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let json = serde_json::to_string(value).expect("a string serializes");
    let mut forms = vec![
        value.to_owned(),
        percent,
        json[1..json.len() - 1].to_owned(),
    ];
    forms.extend(in_base64(value.as_bytes()));
    let mut known = KNOWN.write().expect("secret registry lock");
    for form in forms {
        if !known.contains(&form) {
            known.push(form);
        }
    }
    known.sort_by_key(|form| std::cmp::Reverse(form.len()));
}

/// What any base64 text holding `secret` shows of it, whatever precedes it: base64 turns
/// each 3 bytes into 4 characters, so for each of the 3 positions the secret can start at,
/// the whole 3-byte groups inside it always encode the same way (standard and URL-safe).
fn in_base64(secret: &[u8]) -> Vec<String> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let mut forms = Vec::new();
    for skip in 0..3.min(secret.len()) {
        let rest = &secret[skip..];
        let whole = &rest[..rest.len() / 3 * 3];
        for engine in [STANDARD_NO_PAD, URL_SAFE_NO_PAD] {
            forms.push(engine.encode(whole));
        }
    }
    forms
}

/// `text` with every registered secret, in any of its forms, replaced by `[redacted]`.
pub fn scrub(text: &str) -> Cow<'_, str> {
    let known = KNOWN.read().expect("secret registry lock");
    let mut text = Cow::Borrowed(text);
    for form in known.iter().filter(|f| f.len() >= SHORTEST) {
        if text.contains(form.as_str()) {
            text = Cow::Owned(text.replace(form.as_str(), REDACTED));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_of_a_secret_is_scrubbed() {
        use base64::Engine as _;
        let key = "SG.unit-test/secret+key=42";
        register(key);
        let encode = |text: String| base64::engine::general_purpose::STANDARD.encode(text);
        let echoed = format!(
            "400: bad request; headers: Authorization: Bearer {key}, Basic {}, \
             query key=SG.unit-test%2Fsecret%2Bkey%3D42, json \"SG.unit-test/secret+key=42\", \
             raw {}, {}",
            encode(format!("api:{key}")),
            encode(format!("Authorization: Bearer {key}")),
            encode(format!("x{key}y")),
        );
        let scrubbed = scrub(&echoed);
        assert!(!scrubbed.contains("unit-test"), "{scrubbed}");
        assert_eq!(scrubbed.matches(REDACTED).count(), 6, "{scrubbed}");
        for prefix in ["", "a", "ab", "abc"] {
            let text = encode(format!("{prefix}{key}"));
            let scrubbed = scrub(&text);
            // At most the two characters on each side that mix key and other bytes remain.
            assert!(scrubbed.contains(REDACTED), "{prefix:?}: {scrubbed}");
            assert!(
                scrubbed.len() <= REDACTED.len() + 8,
                "{prefix:?}: {scrubbed}"
            );
        }
        assert_eq!(scrub("nothing secret here"), "nothing secret here");
    }
}
