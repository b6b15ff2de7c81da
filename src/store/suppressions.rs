//! The store's own suppression list: addresses that unsubscribed, bounced for good or
//! complained, learned from the unsubscribe endpoint, provider events or by hand. Every
//! campaign sharing the store skips them from then on.
//!
//! Tree `suppressions` maps a normalised address to a `Suppression` (JSON). The list is
//! small next to an audience (the people who left), so it is read whole when the store
//! opens and kept in memory; every change is committed and flushed like any other, and
//! the ledger counts the addresses, so a lost entry is caught on open like a lost record.
//!
//! # Guarantees
//! - An address once suppressed stays suppressed until removed by hand; suppressing it
//!   again keeps the first reason (repeating an unsubscribe is harmless).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Store, StoreError, io_error, now};

pub const TREE: &str = "suppressions";

/// Why an address is suppressed, and where that was learned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suppression {
    /// `unsubscribed`, `bounced`, `complained`, or what `herald suppressions add` said.
    pub reason: String,
    /// The campaign it came from, when it came from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
    /// Unix seconds.
    pub at: u64,
}

impl Suppression {
    pub fn new(reason: &str, campaign: Option<&str>) -> Self {
        Self {
            reason: reason.to_owned(),
            campaign: campaign.map(str::to_owned),
            at: now(),
        }
    }
}

/// Reads the tree whole.
pub(super) fn load(
    tree: &sled::Tree,
    path: &std::path::Path,
) -> Result<BTreeMap<String, Suppression>, StoreError> {
    let mut list = BTreeMap::new();
    for entry in tree.range(&[1u8][..]..) {
        let (key, value) = entry.map_err(io_error(path))?;
        let key = String::from_utf8_lossy(&key).into_owned();
        let suppression = serde_json::from_slice(&value).map_err(|error| StoreError::Damaged {
            path: path.to_owned(),
            reason: format!("the suppression of `{key}` cannot be read: {error}"),
        })?;
        list.insert(key, suppression);
    }
    Ok(list)
}

impl Store {
    /// Why `key` (a normalised address) is suppressed, if it is.
    pub fn suppressed(&self, key: &str) -> Option<Suppression> {
        self.suppression_list().get(key).cloned()
    }

    /// The whole list, by address.
    pub fn suppressions(&self) -> BTreeMap<String, Suppression> {
        self.suppression_list().clone()
    }

    /// Copies another store's list (`apply --suppressions-from`) into this one, in one
    /// write: each address not on it yet, its reason marked `via SOURCE` (so this store's
    /// feedback counts stay its own). Returns how many were new. A copy, not a view: a run
    /// without the source still skips them.
    pub fn suppress_from(
        &self,
        list: &BTreeMap<String, Suppression>,
        source: &str,
    ) -> Result<u64, StoreError> {
        let mut own = self.0.suppressions.write().expect("the suppressions lock");
        let new: Vec<(String, Suppression)> = list
            .iter()
            .filter(|(key, _)| !own.contains_key(*key))
            .map(|(key, s)| {
                let copy = Suppression {
                    reason: format!("{} (via {source})", s.reason),
                    campaign: s.campaign.clone(),
                    at: s.at,
                };
                (key.clone(), copy)
            })
            .collect();
        if new.is_empty() {
            return Ok(0);
        }
        self.commit(
            &self.0.suppression_tree,
            |ledger| &mut ledger.suppressions.seq,
            |batch, ledger| {
                for (key, suppression) in &new {
                    let value = serde_json::to_vec(suppression).expect("a suppression serializes");
                    batch.insert(key.as_bytes(), value);
                }
                ledger.suppressions.addresses += new.len() as u64;
                Ok(())
            },
        )?;
        let added = new.len() as u64;
        own.extend(new);
        Ok(added)
    }

    fn suppression_list(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Suppression>> {
        self.0.suppressions.read().expect("the suppressions lock")
    }

    /// Suppresses `key` and flushes; `false` when it already was (the first reason stays).
    pub fn suppress(&self, key: &str, suppression: &Suppression) -> Result<bool, StoreError> {
        let mut list = self.0.suppressions.write().expect("the suppressions lock");
        if list.contains_key(key) {
            return Ok(false);
        }
        let value = serde_json::to_vec(suppression).expect("a suppression serializes");
        self.commit(
            &self.0.suppression_tree,
            |ledger| &mut ledger.suppressions.seq,
            |batch, ledger| {
                batch.insert(key.as_bytes(), value);
                ledger.suppressions.addresses += 1;
                Ok(())
            },
        )?;
        list.insert(key.to_owned(), suppression.clone());
        Ok(true)
    }

    /// Removes `key` from the list and flushes; `false` when it was not on it.
    pub fn unsuppress(&self, key: &str) -> Result<bool, StoreError> {
        let mut list = self.0.suppressions.write().expect("the suppressions lock");
        if !list.contains_key(key) {
            return Ok(false);
        }
        self.commit(
            &self.0.suppression_tree,
            |ledger| &mut ledger.suppressions.seq,
            |batch, ledger| {
                batch.remove(key.as_bytes());
                ledger.suppressions.addresses = ledger.suppressions.addresses.saturating_sub(1);
                Ok(())
            },
        )?;
        list.remove(key);
        Ok(true)
    }
}
