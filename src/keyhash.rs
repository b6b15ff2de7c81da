//! A private 128-bit fingerprint of a text (a normalised address), and the compact tables
//! that hold millions of them: 16 bytes a recipient instead of the address.
//!
//! Two `SipHash` hashes keyed at random once per process, so nobody can choose an address
//! that collides with another's; by chance, two of a million collide with a probability
//! of about 2^-88. Fingerprints never leave the process.
//!
//! `Set` and `Table` are open-addressing tables with linear probing and nothing but the
//! fingerprints (and, in a table, a `u32` each) in two flat arrays: 16 and 20 bytes a
//! slot, no allocation per entry, no pointer chasing. Fingerprints are uniformly random
//! already, so a slot is picked from the high bits of their low half (any capacity, not
//! only powers of two), and the tables grow by half when 7/8 full. A million recipients
//! take 20 to 35 MB in a `Table`.

use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::OnceLock;

/// The fingerprint of `text`; never 0, which the tables keep for an empty slot.
pub fn of(text: &str) -> u128 {
    static KEYS: OnceLock<(RandomState, RandomState)> = OnceLock::new();
    let (a, b) = KEYS.get_or_init(|| (RandomState::new(), RandomState::new()));
    let half = |state: &RandomState| {
        let mut hasher = state.build_hasher();
        hasher.write(text.as_bytes());
        hasher.finish()
    };
    let fingerprint = (u128::from(half(a)) << 64) | u128::from(half(b));
    fingerprint.max(1)
}

/// Slots per entry the tables keep at least, as a fraction: 8/7.
const FULL: (usize, usize) = (7, 8);
const SMALLEST: usize = 64;

/// A set of fingerprints.
#[derive(Debug, Clone, Default)]
pub struct Set(Table<()>);

impl Set {
    /// A set that holds `entries` without growing.
    pub fn with_capacity(entries: usize) -> Self {
        Self(Table::with_capacity(entries))
    }

    /// Adds `key`; whether it was new.
    pub fn insert(&mut self, key: u128) -> bool {
        self.0.insert(key, ()).is_none()
    }

    pub fn contains(&self, key: u128) -> bool {
        self.0.get(key).is_some()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A map from fingerprints to small values (`()` for a set, a packed `u32` for the store's
/// index).
#[derive(Debug, Clone)]
pub struct Table<V> {
    /// 0 marks an empty slot.
    keys: Vec<u128>,
    values: Vec<V>,
    len: usize,
}

impl<V> Default for Table<V> {
    fn default() -> Self {
        Self {
            keys: Vec::new(),
            values: Vec::new(),
            len: 0,
        }
    }
}

impl<V: Copy + Default> Table<V> {
    /// A table that holds `entries` without growing.
    pub fn with_capacity(entries: usize) -> Self {
        let mut table = Self::default();
        table.reserve(entries);
        table
    }

    /// Room for `more` entries beyond those held, without growing again: one sizing
    /// where growing by half would overshoot (a table sized this way is 7/8 full at most).
    pub fn reserve(&mut self, more: usize) {
        let wanted = ((self.len + more) * FULL.1).div_ceil(FULL.0).max(SMALLEST);
        if wanted > self.keys.len() {
            self.resize(wanted);
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The slot `key` starts probing at.
    fn home(&self, key: u128) -> usize {
        // The low half of a fingerprint is uniform: its product with the capacity, shifted,
        // is a uniform slot for any capacity (and below it, so it fits a usize).
        #[allow(clippy::cast_possible_truncation)]
        let slot = ((u128::from(key as u64) * self.keys.len() as u128) >> 64) as usize;
        slot
    }

    /// Where `key` is, or the empty slot where it would go.
    fn find(&self, key: u128) -> (usize, bool) {
        let capacity = self.keys.len();
        let mut slot = self.home(key);
        loop {
            match self.keys[slot] {
                0 => return (slot, false),
                found if found == key => return (slot, true),
                _ => slot = if slot + 1 == capacity { 0 } else { slot + 1 },
            }
        }
    }

    pub fn get(&self, key: u128) -> Option<V> {
        if self.keys.is_empty() {
            return None;
        }
        match self.find(key) {
            (slot, true) => Some(self.values[slot]),
            (_, false) => None,
        }
    }

    /// Where `key` is, or goes (growing first if a new key would fill the table past
    /// 7/8: a key already held never makes it grow), and whether it is held.
    fn place(&mut self, key: u128) -> (usize, bool) {
        debug_assert_ne!(key, 0, "0 marks an empty slot");
        if !self.keys.is_empty() {
            let (slot, found) = self.find(key);
            if found || (self.len + 1) * FULL.1 <= self.keys.len() * FULL.0 {
                return (slot, found);
            }
        }
        self.grow();
        (self.find(key).0, false)
    }

    /// The value of `key`, held from now on (as `V::default()` if it was not).
    pub fn slot_mut(&mut self, key: u128) -> &mut V {
        let (slot, found) = self.place(key);
        if !found {
            self.keys[slot] = key;
            self.values[slot] = V::default();
            self.len += 1;
        }
        &mut self.values[slot]
    }

    /// Every value held, to change in place.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> + '_ {
        self.keys
            .iter()
            .zip(&mut self.values)
            .filter(|(key, _)| **key != 0)
            .map(|(_, value)| value)
    }

    /// Sets `key` to `value`; the value it had.
    pub fn insert(&mut self, key: u128, value: V) -> Option<V> {
        let (slot, found) = self.place(key);
        if found {
            return Some(std::mem::replace(&mut self.values[slot], value));
        }
        self.keys[slot] = key;
        self.values[slot] = value;
        self.len += 1;
        None
    }

    /// Removes `key`, shifting back the entries after it so no probe finds a gap.
    pub fn remove(&mut self, key: u128) -> Option<V> {
        if self.keys.is_empty() {
            return None;
        }
        let (mut hole, found) = self.find(key);
        if !found {
            return None;
        }
        let removed = self.values[hole];
        let capacity = self.keys.len();
        let mut next = hole;
        loop {
            next = if next + 1 == capacity { 0 } else { next + 1 };
            let moved = self.keys[next];
            if moved == 0 {
                break;
            }
            // An entry may fill the hole only if its home is not between the hole and it.
            let start = self.home(moved);
            let stays = if hole <= next {
                hole < start && start <= next
            } else {
                hole < start || start <= next
            };
            if !stays {
                self.keys[hole] = moved;
                self.values[hole] = self.values[next];
                hole = next;
            }
        }
        self.keys[hole] = 0;
        self.values[hole] = V::default();
        self.len -= 1;
        Some(removed)
    }

    /// Every entry, in no order.
    pub fn iter(&self) -> impl Iterator<Item = (u128, V)> + '_ {
        self.keys
            .iter()
            .zip(&self.values)
            .filter(|(key, _)| **key != 0)
            .map(|(key, value)| (*key, *value))
    }

    /// Half as many slots again (at least `SMALLEST`), every entry placed anew.
    fn grow(&mut self) {
        self.resize((self.keys.len() + self.keys.len() / 2).max(SMALLEST));
    }

    fn resize(&mut self, capacity: usize) {
        let keys = std::mem::replace(&mut self.keys, vec![0; capacity]);
        let values = std::mem::replace(&mut self.values, vec![V::default(); capacity]);
        self.len = 0;
        for (key, value) in keys.into_iter().zip(values) {
            if key != 0 {
                let (slot, _) = self.find(key);
                self.keys[slot] = key;
                self.values[slot] = value;
                self.len += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_text_has_the_same_fingerprint_and_others_differ() {
        assert_eq!(super::of("ann@example.com"), super::of("ann@example.com"));
        assert_ne!(super::of("ann@example.com"), super::of("ann@example.co"));
        assert_ne!(super::of(""), super::of(" "));
        assert_ne!(super::of(""), 0);
    }

    /// The table against the standard library's map, through inserts, overwrites and
    /// removals that collide on purpose (keys sharing their low half).
    #[test]
    fn a_table_agrees_with_a_hash_map() {
        use std::collections::HashMap;
        let mut table: Table<u32> = Table::default();
        let mut truth: HashMap<u128, u32> = HashMap::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for i in 0..50_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Few distinct low halves: probe chains that meet and wrap around the end.
            let key = (u128::from(x) << 64) | u128::from(x % 5000) | 1;
            match x % 5 {
                0..=2 => assert_eq!(table.insert(key, i), truth.insert(key, i)),
                3 => assert_eq!(table.remove(key), truth.remove(&key)),
                _ => {
                    let some = *truth.keys().next().unwrap_or(&1);
                    assert_eq!(table.remove(some), truth.remove(&some));
                }
            }
            assert_eq!(table.len(), truth.len());
        }
        for (key, value) in &truth {
            assert_eq!(table.get(*key), Some(*value));
        }
        assert_eq!(table.iter().count(), truth.len());
        let mut set = Set::default();
        assert!(set.insert(5) && !set.insert(5) && set.contains(5) && !set.contains(6));
    }

    #[test]
    fn a_million_fingerprints_take_about_twenty_bytes_each() {
        let mut table: Table<u32> = Table::default();
        for i in 0..1_000_000 {
            table.insert(of(&format!("user{i}@example.com")), i);
        }
        let bytes = table.keys.capacity() * 16 + table.values.capacity() * 4;
        assert!(bytes < 1_000_000 * 36, "{bytes} bytes");
        assert_eq!(table.get(of("user999999@example.com")), Some(999_999));
    }

    /// A table sized for `n` takes `n` keys without growing, and changing the value of a
    /// key it holds never makes it grow, however full it is (a table that grows holds
    /// its old and new slots at once).
    #[test]
    fn a_table_sized_for_n_takes_n_and_changes_without_growing() {
        for n in [1, 7, 8, 1000, 20_001] {
            let mut table: Table<u32> = Table::with_capacity(n);
            let slots = table.keys.len();
            for i in 0..n {
                table.insert(of(&format!("user{i}@example.com")), 1);
            }
            for i in 0..n {
                *table.slot_mut(of(&format!("user{i}@example.com"))) += 1;
                table.insert(of(&format!("user{i}@example.com")), 3);
            }
            assert_eq!((table.keys.len(), table.len()), (slots, n), "sized for {n}");
            table.insert(of("one more@example.com"), 1);
            assert!(table.len() == n + 1 && table.get(of("user0@example.com")) == Some(3));
        }
    }
}
