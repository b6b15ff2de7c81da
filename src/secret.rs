//! Secrets: read from the environment only, and scrubbed from every text herald stores,
//! logs or prints, whatever that text came from.
//!
//! A provider, or a proxy in front of it, may echo a request's headers in an error message;
//! that message would then reach the state store, `status` and the logs. So every secret
//! read through `from_env` is registered, in the forms it travels in (as is, base64, in
//! HTTP basic auth as `api:KEY` or `KEY:`, percent-encoded, JSON-escaped), and `scrub`
//! replaces each of them with `[redacted]` wherever it appears.
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
/// secrets this short (`from_env`).
const SHORTEST: usize = 8;

/// A secret value. Deliberately neither `Debug` nor `Display`.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// The value, to put where it belongs (an `Authorization` header, say) and nowhere else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Why a secret could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unusable {
    Unset,
    TooShort,
}

/// Reads the secret in the environment variable `variable` and registers it for scrubbing.
pub fn from_env(variable: &str) -> Result<Secret, Unusable> {
    let value = std::env::var(variable).map_err(|_| Unusable::Unset)?;
    if value.is_empty() {
        return Err(Unusable::Unset);
    }
    register(&value);
    if value.len() < SHORTEST {
        return Err(Unusable::TooShort);
    }
    Ok(Secret(value))
}

/// Registers `value` (and the forms it travels in) to be scrubbed from every text.
pub fn register(value: &str) {
    use base64::Engine as _;
    let encode = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
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
    let forms = [
        value.to_owned(),
        encode(value),
        encode(&format!("api:{value}")),
        encode(&format!("{value}:")),
        percent,
        json[1..json.len() - 1].to_owned(),
    ];
    let mut known = KNOWN.write().expect("secret registry lock");
    for form in forms {
        if !known.contains(&form) {
            known.push(form);
        }
    }
    known.sort_by_key(|form| std::cmp::Reverse(form.len()));
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
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("api:{key}"));
        let echoed = format!(
            "400: bad request; headers: Authorization: Bearer {key}, Basic {basic}, \
             query key=SG.unit-test%2Fsecret%2Bkey%3D42, json \"SG.unit-test/secret+key=42\""
        );
        let scrubbed = scrub(&echoed);
        assert!(!scrubbed.contains("unit-test"), "{scrubbed}");
        assert_eq!(scrubbed.matches(REDACTED).count(), 4, "{scrubbed}");
        assert_eq!(scrub("nothing secret here"), "nothing secret here");
    }
}
