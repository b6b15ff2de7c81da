//! Where each recipient of a campaign stands, in memory: built when the store is opened
//! (by the same reading of the journal that checks it against the ledger), kept current
//! by every call recorded, and asked for every audience row by plan and apply.
//!
//! A recipient is keyed by the fingerprint of their address (`crate::keyhash`: 128 bits,
//! keyed at random per process, so no address can be chosen to collide), and holds four
//! bytes: the status, the attempts (up to 63; a record says more), and the revision. A
//! million recipients take 20 to 35 MB. Their full records stay in the journal.

use std::collections::BTreeMap;

use super::record::{Status, StatusCounts};
use crate::keyhash::Table;

/// The highest revision the index holds (24 bits): the most a manifest may declare.
pub use crate::manifest::MOST_REVISION;

/// One recipient's standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub status: Status,
    /// Attempts made, up to 63.
    pub attempts: u32,
    /// The campaign revision the recipient got (or was sent, for `failed` and `uncertain`).
    pub revision: u32,
}

impl Entry {
    fn pack(self) -> u32 {
        let status = match self.status {
            Status::Sent => 1,
            Status::Failed => 2,
            Status::Uncertain => 3,
            Status::InFlight => unreachable!("a call under way is not in the index"),
        };
        status | (self.attempts.min(63) << 2) | (self.revision.min(MOST_REVISION) << 8)
    }

    fn unpack(value: u32) -> Self {
        let status = match value & 3 {
            1 => Status::Sent,
            2 => Status::Failed,
            _ => Status::Uncertain,
        };
        Self {
            status,
            attempts: (value >> 2) & 63,
            revision: value >> 8,
        }
    }
}

#[derive(Default)]
pub struct Index {
    entries: Table<u32>,
}

impl Index {
    pub fn get(&self, key: &str) -> Option<Entry> {
        self.entries.get(hash(key)).map(Entry::unpack)
    }

    pub fn set(&mut self, key: &str, entry: Entry) {
        self.entries.insert(hash(key), entry.pack());
    }

    /// Room for `more` entries without growing.
    pub fn reserve(&mut self, more: usize) {
        self.entries.reserve(more);
    }

    /// Every recipient by status.
    pub fn counts(&self) -> StatusCounts {
        let mut counts = StatusCounts::default();
        for (_, value) in self.entries.iter() {
            counts.add(Entry::unpack(value).status);
        }
        counts
    }

    /// How many recipients with `status` are of each revision, by revision.
    pub fn by_revision(&self, status: Status) -> BTreeMap<u32, u64> {
        let mut counts = BTreeMap::new();
        for (_, value) in self.entries.iter() {
            let entry = Entry::unpack(value);
            if entry.status == status {
                *counts.entry(entry.revision).or_default() += 1;
            }
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
    fn later_entries_replace_earlier_ones_and_counts_follow() {
        let mut index = Index::default();
        let entry = |status, attempts, revision| Entry {
            status,
            attempts,
            revision,
        };
        index.set("a@example.com", entry(Status::Sent, 1, 3));
        index.set("b@example.com", entry(Status::Uncertain, 2, 1));
        assert_eq!(index.counts().uncertain, 1);
        index.set("b@example.com", entry(Status::Sent, 300, MOST_REVISION));
        assert_eq!(
            index.get("b@example.com"),
            Some(entry(Status::Sent, 63, MOST_REVISION)),
            "attempts held up to 63"
        );
        assert_eq!((index.counts().sent, index.counts().uncertain), (2, 0));
        assert_eq!(index.get("A@example.com"), None, "keys are exact");
        assert_eq!(
            index.by_revision(Status::Sent),
            BTreeMap::from([(3, 1), (MOST_REVISION, 1)])
        );
    }
}
