//! Where each recipient of a campaign stands, in memory: built when the store is opened
//! (by the same scan that checks it against the ledger), kept current by every call
//! recorded, and asked for every audience row by plan and apply.
//!
//! A recipient is keyed by 128 bits of two `SipHash` hashes of their address, keyed at
//! random once per process (the index never leaves memory), so an address cannot be
//! chosen to collide with another; by chance, two of a million collide with a
//! probability of about 2^-88. Each entry holds the status and where the full record
//! is: under the address itself (stores written before outcomes were kept per call), or
//! among the outcomes of one call. A million recipients take about 64 MB.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::OnceLock;

use super::record::{Status, StatusCounts};

/// Where a recipient's full record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// Under the address itself.
    Own,
    /// Among the outcomes of the call recorded with this sequence number.
    Call(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub status: Status,
    pub place: Place,
}

#[derive(Default)]
pub struct Index {
    entries: HashMap<u128, Entry, BuildHasherDefault<Prehashed>>,
}

impl Index {
    pub fn get(&self, key: &str) -> Option<Entry> {
        self.entries.get(&hash(key)).copied()
    }

    pub fn set(&mut self, key: &str, entry: Entry) {
        self.entries.insert(hash(key), entry);
    }

    pub fn remove(&mut self, key: &str) {
        self.entries.remove(&hash(key));
    }

    /// Every recipient by status.
    pub fn counts(&self) -> StatusCounts {
        let mut counts = StatusCounts::default();
        for entry in self.entries.values() {
            counts.add(entry.status);
        }
        counts
    }
}

fn hash(key: &str) -> u128 {
    static KEYS: OnceLock<(RandomState, RandomState)> = OnceLock::new();
    let (a, b) = KEYS.get_or_init(|| (RandomState::new(), RandomState::new()));
    let half = |state: &RandomState| {
        let mut hasher = state.build_hasher();
        hasher.write(key.as_bytes());
        hasher.finish()
    };
    (u128::from(half(a)) << 64) | u128::from(half(b))
}

/// The map's own hasher: its keys are random already, so it takes their low bits.
#[derive(Default)]
struct Prehashed(u64);

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
    use super::*;

    #[test]
    fn later_places_replace_earlier_ones_and_counts_follow() {
        let mut index = Index::default();
        let sent = |seq| Entry {
            status: Status::Sent,
            place: Place::Call(seq),
        };
        index.set("a@example.com", sent(3));
        index.set(
            "b@example.com",
            Entry {
                status: Status::Uncertain,
                place: Place::Own,
            },
        );
        assert_eq!(index.counts().uncertain, 1);
        index.set("b@example.com", sent(5));
        assert_eq!(index.get("b@example.com"), Some(sent(5)));
        assert_eq!((index.counts().sent, index.counts().uncertain), (2, 0));
        index.remove("a@example.com");
        assert_eq!(index.get("a@example.com"), None);
        assert_eq!(index.get("A@example.com"), None, "keys are exact");
    }
}
