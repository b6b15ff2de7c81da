//! A private 128-bit fingerprint of a text (a normalised address), for sets and maps kept
//! in memory for a million recipients: 16 bytes each instead of the address.
//!
//! Two `SipHash` hashes keyed at random once per process, so nobody can choose an address
//! that collides with another's; by chance, two of a million collide with a probability
//! of about 2^-88. Fingerprints never leave the process.

use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::OnceLock;

/// The fingerprint of `text`.
pub fn of(text: &str) -> u128 {
    static KEYS: OnceLock<(RandomState, RandomState)> = OnceLock::new();
    let (a, b) = KEYS.get_or_init(|| (RandomState::new(), RandomState::new()));
    let half = |state: &RandomState| {
        let mut hasher = state.build_hasher();
        hasher.write(text.as_bytes());
        hasher.finish()
    };
    (u128::from(half(a)) << 64) | u128::from(half(b))
}

/// A map keyed by fingerprints, which are random already: its own hasher takes their
/// low bits.
pub type Map<V> = std::collections::HashMap<u128, V, BuildHasherDefault<Prehashed>>;

#[derive(Default)]
pub struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 ^= u64::from_le_bytes(word);
        }
    }

    #[allow(clippy::cast_possible_truncation)]
    fn write_u128(&mut self, n: u128) {
        self.0 = n as u64;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_same_text_has_the_same_fingerprint_and_others_differ() {
        assert_eq!(super::of("ann@example.com"), super::of("ann@example.com"));
        assert_ne!(super::of("ann@example.com"), super::of("ann@example.co"));
        assert_ne!(super::of(""), super::of(" "));
    }
}
