//! Where each recipient of a campaign stands, in memory: built when the store is opened
//! (by the same reading of the journal that checks it against the ledger), kept current
//! by every call recorded, and asked for every audience row by plan and apply.
//!
//! A recipient is keyed by the fingerprint of their address (`crate::keyhash`: 128 bits,
//! keyed at random per process, so no address can be chosen to collide), and holds four
//! bytes: the status, the attempts (up to 31; beyond, each new record says 32), whether
//! the send walk under way has met the address (what finds a duplicate row without a set
//! of its own), and the revision. A million recipients take 20 to 35 MB. Their full
//! records stay in the journal. An address the walk met that has no record yet holds
//! only that mark, and reads as absent.
//!
//! The two status bits are all taken, so `expired` is written as `uncertain` with no
//! attempt: every other record comes from a call, so has at least one attempt.

use std::collections::BTreeMap;

use super::record::{Status, StatusCounts};
use crate::keyhash::Table;

/// The highest revision the index holds (24 bits): the most a manifest may declare.
pub use crate::manifest::MOST_REVISION;

/// One recipient's standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub status: Status,
    /// Attempts made, up to 31.
    pub attempts: u32,
    /// The campaign revision the recipient got (or was sent, for `failed` and `uncertain`).
    pub revision: u32,
}

/// The bits of an index value: status (0: no record), attempts, met by the walk under
/// way, revision.
const STATUS: u32 = 0b11;
const MOST_ATTEMPTS: u32 = 31;
const ATTEMPTS_SHIFT: u32 = 2;
const MET: u32 = 1 << 7;
const REVISION_SHIFT: u32 = 8;

impl Entry {
    fn pack(self) -> u32 {
        let (status, attempts) = match self.status {
            Status::Sent => (1, self.attempts.max(1)),
            Status::Failed => (2, self.attempts.max(1)),
            Status::Uncertain => (3, self.attempts.max(1)),
            Status::Expired => (3, 0),
            Status::InFlight => unreachable!("a call under way is not in the index"),
        };
        status
            | (attempts.min(MOST_ATTEMPTS) << ATTEMPTS_SHIFT)
            | (self.revision.min(MOST_REVISION) << REVISION_SHIFT)
    }

    /// The entry a value holds, if it holds a record.
    fn unpack(value: u32) -> Option<Self> {
        let attempts = (value >> ATTEMPTS_SHIFT) & MOST_ATTEMPTS;
        let status = match value & STATUS {
            0 => return None,
            1 => Status::Sent,
            2 => Status::Failed,
            _ if attempts == 0 => Status::Expired,
            _ => Status::Uncertain,
        };
        Some(Self {
            status,
            attempts,
            revision: value >> REVISION_SHIFT,
        })
    }
}

#[derive(Default)]
pub struct Index {
    entries: Table<u32>,
}

impl Index {
    pub fn get(&self, key: &str) -> Option<Entry> {
        self.entries.get(hash(key)).and_then(Entry::unpack)
    }

    /// Records where `key` stands now (keeping whether the walk met it).
    pub fn set(&mut self, key: &str, entry: Entry) {
        let value = self.entries.slot_mut(hash(key));
        *value = entry.pack() | (*value & MET);
    }

    /// Whether the walk under way meets the address with this fingerprint for the first
    /// time; it is met from now on.
    pub fn meet(&mut self, fingerprint: u128) -> bool {
        let value = self.entries.slot_mut(fingerprint);
        let first = *value & MET == 0;
        *value |= MET;
        first
    }

    /// Starts a walk: no address met yet.
    pub fn forget_met(&mut self) {
        for value in self.entries.values_mut() {
            *value &= !MET;
        }
    }

    /// Addresses held: records, and those a walk met.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Room for `more` entries without growing.
    pub fn reserve(&mut self, more: usize) {
        self.entries.reserve(more);
    }

    /// Every recipient with a record.
    fn entries(&self) -> impl Iterator<Item = Entry> + '_ {
        self.entries
            .iter()
            .filter_map(|(_, value)| Entry::unpack(value))
    }

    /// Every recipient by status.
    pub fn counts(&self) -> StatusCounts {
        let mut counts = StatusCounts::default();
        for entry in self.entries() {
            counts.add(entry.status);
        }
        counts
    }

    /// How many recipients with `status` are of each revision, by revision.
    pub fn by_revision(&self, status: Status) -> BTreeMap<u32, u64> {
        let mut counts = BTreeMap::new();
        for entry in self.entries().filter(|e| e.status == status) {
            *counts.entry(entry.revision).or_default() += 1;
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
            Some(entry(Status::Sent, 31, MOST_REVISION)),
            "attempts held up to 31"
        );
        assert_eq!((index.counts().sent, index.counts().uncertain), (2, 0));
        assert_eq!(index.get("A@example.com"), None, "keys are exact");
        assert_eq!(
            index.by_revision(Status::Sent),
            BTreeMap::from([(3, 1), (MOST_REVISION, 1)])
        );
    }

    /// `expired` shares the status bits of `uncertain`, told apart by having no attempt.
    #[test]
    fn expired_and_uncertain_are_told_apart_by_their_attempts() {
        let mut index = Index::default();
        let entry = |status, attempts| Entry {
            status,
            attempts,
            revision: 2,
        };
        index.set("e@example.com", entry(Status::Expired, 0));
        index.set("u@example.com", entry(Status::Uncertain, 1));
        index.set("x@example.com", entry(Status::Expired, 3));
        assert_eq!(index.get("e@example.com"), Some(entry(Status::Expired, 0)));
        assert_eq!(
            index.get("u@example.com"),
            Some(entry(Status::Uncertain, 1))
        );
        assert_eq!(
            index.get("x@example.com"),
            Some(entry(Status::Expired, 0)),
            "an expired recipient holds no attempts in the index"
        );
        let counts = index.counts();
        assert_eq!((counts.expired, counts.uncertain), (2, 1));
    }

    /// The walk's marks neither show as records nor change them, and records kept
    /// through a walk keep its marks.
    #[test]
    fn addresses_met_by_a_walk_are_no_records_and_records_keep_the_mark() {
        let mut index = Index::default();
        let sent = Entry {
            status: Status::Sent,
            attempts: 1,
            revision: 2,
        };
        index.set("a@example.com", sent);
        let (a, b) = (hash("a@example.com"), hash("b@example.com"));
        assert!(index.meet(a) && index.meet(b));
        assert!(!index.meet(a) && !index.meet(b), "met twice is a duplicate");
        assert_eq!(index.get("a@example.com"), Some(sent));
        assert_eq!(index.get("b@example.com"), None, "met, no record");
        assert_eq!(index.counts().sent, 1);
        let failed = Entry {
            status: Status::Failed,
            ..sent
        };
        index.set("b@example.com", failed);
        assert_eq!(index.get("b@example.com"), Some(failed));
        assert!(!index.meet(b), "a record written mid-walk keeps the mark");
        index.forget_met();
        assert!(
            index.meet(a) && index.meet(b),
            "a new walk meets everyone anew"
        );
        assert_eq!(index.by_revision(Status::Failed), BTreeMap::from([(2, 1)]));
    }
}
