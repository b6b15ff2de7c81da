//! Where each recipient of a campaign stands, in memory: built when the store is opened
//! (by the same scan that checks it against the ledger), kept current by every call
//! recorded, and asked for every audience row by plan and apply.
//!
//! A recipient is keyed by the fingerprint of their address (`crate::keyhash`: 128
//! bits, keyed at random per process, so no address can be chosen to collide). Each
//! entry holds the status, the revision it is of, and where the full record
//! is: under the address itself (stores written before outcomes were kept per call), or
//! among the outcomes of one call. A million recipients take about 64 MB.

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
    /// The campaign revision the recipient got (or was sent, for `failed` and `uncertain`).
    pub revision: u32,
    pub place: Place,
}

#[derive(Default)]
pub struct Index {
    entries: crate::keyhash::Map<Entry>,
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

    /// How many recipients with `status` are of each revision, by revision.
    pub fn by_revision(&self, status: Status) -> std::collections::BTreeMap<u32, u64> {
        let mut counts = std::collections::BTreeMap::new();
        for entry in self.entries.values().filter(|e| e.status == status) {
            *counts.entry(entry.revision).or_default() += 1;
        }
        counts
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
    crate::keyhash::of(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_places_replace_earlier_ones_and_counts_follow() {
        let mut index = Index::default();
        let sent = |seq| Entry {
            status: Status::Sent,
            revision: 1,
            place: Place::Call(seq),
        };
        index.set("a@example.com", sent(3));
        index.set(
            "b@example.com",
            Entry {
                status: Status::Uncertain,
                revision: 1,
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
