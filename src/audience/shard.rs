//! Which shard a recipient belongs to: a fixed, documented function of the address as
//! herald normalizes it, so that every process, every version and any other tool agree.
//!
//! # Guarantees
//! - `shard_of(address, n)` is `u64::from_be_bytes(SHA-256(normalize(address))[..8]) % n`:
//!   no key, no seed, nothing of the process or the platform (see docs/DESIGN.md).
//! - Rows that deduplicate to one address (`A@x.org` and ` a@x.org`) fall in one shard,
//!   so duplicates are told apart within a shard exactly as without shards.

use std::num::NonZeroU32;

use sha2::{Digest, Sha256};

/// The shard that owns `normalized` (an address as `audience::normalize` gives it) among
/// `shards`.
pub fn shard_of(normalized: &str, shards: NonZeroU32) -> u32 {
    let digest = Sha256::digest(normalized.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let shard = u64::from_be_bytes(first) % u64::from(shards.get());
    u32::try_from(shard).expect("a remainder of a u32 fits in one")
}

/// One shard of a campaign's audience: `index` of `count`, 0-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: NonZeroU32,
}

impl Shard {
    /// The whole audience: shard 0 of 1.
    pub const WHOLE: Self = Self {
        index: 0,
        count: NonZeroU32::MIN,
    };

    /// Shard `index` of `count`, for tests.
    #[cfg(test)]
    pub fn of(index: u32, count: u32) -> Self {
        Self {
            index,
            count: NonZeroU32::new(count).expect("a count above 0"),
        }
    }

    /// Whether this shard owns `normalized`.
    pub fn owns(self, normalized: &str) -> bool {
        self.count.get() == 1 || shard_of(normalized, self.count) == self.index
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "shard {} of {}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(count: u32) -> NonZeroU32 {
        NonZeroU32::new(count).unwrap()
    }

    /// Fixed vectors: SHA-256 of the address, its first 8 bytes big-endian, modulo N. The
    /// same figures are in docs/DESIGN.md; a change here re-sends people.
    #[test]
    fn fixed_vectors() {
        // sha256("alice@example.com") begins ff8d9819fc0e12bf.
        let alice = u64::from_be_bytes([0xff, 0x8d, 0x98, 0x19, 0xfc, 0x0e, 0x12, 0xbf]);
        for count in [1, 2, 3, 4, 7, 8, 1024] {
            assert_eq!(
                u64::from(shard_of("alice@example.com", n(count))),
                alice % u64::from(count),
                "{count}"
            );
        }
        let table = [
            ("alice@example.com", 4, 3),
            ("alice@example.com", 8, 7),
            ("bob@example.com", 4, 0),
            ("bob@example.com", 8, 4),
            ("carol@example.org", 4, 3),
            ("dave@example.net", 4, 2),
        ];
        for (address, count, shard) in table {
            assert_eq!(shard_of(address, n(count)), shard, "{address} of {count}");
        }
    }

    #[test]
    fn one_shard_owns_everyone() {
        assert!(Shard::WHOLE.owns("anyone@example.com"));
        assert_eq!(shard_of("anyone@example.com", n(1)), 0);
    }

    /// Spread: 100,000 synthetic addresses over 4 shards, each within 2% of a quarter.
    #[test]
    fn shards_are_even() {
        let mut counts = [0u32; 4];
        for i in 0..100_000 {
            counts[shard_of(&format!("user{i}@example.com"), n(4)) as usize] += 1;
        }
        for count in counts {
            assert!((24_500..=25_500).contains(&count), "{counts:?}");
        }
    }

    #[test]
    fn shown_as_index_of_count() {
        let shard = Shard {
            index: 2,
            count: n(4),
        };
        assert_eq!(shard.to_string(), "shard 2 of 4");
        assert!(shard.owns("alice@example.com") == (shard_of("alice@example.com", n(4)) == 2));
    }
}
