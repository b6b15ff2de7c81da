//! What provider events leave in the store: the addresses they suppress, recorded in one
//! write per request, and the tokens of signed requests seen lately, so that a captured
//! request replayed later (Mailgun signs only its timestamp and token, not the event) is
//! refused even after a restart.
//!
//! A token is kept until it expires (the sender's freshness window: a request signed
//! longer ago is refused as stale anyway) and pruned by the next write after that. Tokens
//! live in the suppression list's own tree, under keys that start with NUL (`\0seen\0`
//! and the token; no address starts with NUL, and the list is read from `\x01` on), so
//! that a request's suppressions and its token are one atomic batch: never a token
//! recorded without its event (the provider's retry of the same request would be
//! refused and the event lost), never an event without its token (a replay would be
//! taken). They are read whole when the store opens, like the list.
//!
//! # Guarantees
//! - When `record_events` returns `Ok`, the request's suppressions and token are flushed
//!   and vouched for by the ledger, together.
//! - A token recorded and not yet expired is refused (`Recorded::Seen`) and records
//!   nothing, across restarts.

use std::collections::HashMap;

use super::{Store, StoreError, Suppression, io_error, now};

/// The prefix of a seen token's key in the suppressions tree.
const PREFIX: &[u8] = b"\0seen\0";

/// A token to record with a request's events: refused if seen before, kept until
/// `until` (Unix seconds).
#[derive(Debug, Clone, Copy)]
pub struct Once<'a> {
    pub token: &'a str,
    pub until: u64,
}

/// What `Store::record_events` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Recorded: this many addresses were not suppressed before.
    New { suppressed: usize },
    /// The token was seen before: nothing recorded.
    Seen,
}

fn key(token: &str) -> Vec<u8> {
    let mut key = PREFIX.to_vec();
    key.extend_from_slice(token.as_bytes());
    key
}

/// Reads the seen tokens of the suppressions tree: token -> until when it is kept.
pub(super) fn load(
    tree: &sled::Tree,
    path: &std::path::Path,
) -> Result<HashMap<String, u64>, StoreError> {
    let mut seen = HashMap::new();
    for entry in tree.scan_prefix(PREFIX) {
        let (key, value) = entry.map_err(io_error(path))?;
        let token = String::from_utf8_lossy(&key[PREFIX.len()..]).into_owned();
        let until = value
            .as_ref()
            .try_into()
            .map(u64::from_be_bytes)
            .map_err(|_| StoreError::Corrupt {
                path: path.to_owned(),
                key: format!("suppressions/seen/{token}"),
                reason: "not a time".to_owned(),
            })?;
        seen.insert(token, until);
    }
    Ok(seen)
}

impl Store {
    /// Suppresses the addresses of `found` (normalised; the first reason stays, as with
    /// `suppress`) and records `once`, in one batch, and flushes; a token seen before and
    /// not yet expired records nothing and answers `Recorded::Seen`.
    pub fn record_events(
        &self,
        once: Option<Once<'_>>,
        found: &[(String, Suppression)],
    ) -> Result<Recorded, StoreError> {
        let mut list = self.0.suppressions.write().expect("the suppressions lock");
        let mut seen = self.0.seen.lock().expect("the seen tokens lock");
        let now = now();
        if let Some(once) = once {
            if seen.get(once.token).is_some_and(|until| *until >= now) {
                return Ok(Recorded::Seen);
            }
        }
        let mut taken = std::collections::HashSet::new();
        let new: Vec<&(String, Suppression)> = found
            .iter()
            .filter(|(address, _)| !list.contains_key(address) && taken.insert(address.as_str()))
            .collect();
        let expired: Vec<String> = seen
            .iter()
            .filter(|(_, until)| **until < now)
            .map(|(token, _)| token.clone())
            .collect();
        if once.is_none() && new.is_empty() {
            return Ok(Recorded::New { suppressed: 0 });
        }
        self.commit(
            &self.0.suppression_tree,
            |ledger| &mut ledger.suppressions.seq,
            |batch, ledger| {
                for (address, suppression) in &new {
                    let value = serde_json::to_vec(suppression).expect("a suppression serializes");
                    batch.insert(address.as_bytes(), value);
                }
                ledger.suppressions.addresses += new.len() as u64;
                for token in &expired {
                    batch.remove(key(token));
                }
                if let Some(once) = once {
                    batch.insert(key(once.token), &once.until.to_be_bytes());
                }
                Ok(())
            },
        )?;
        for (address, suppression) in &new {
            list.insert(address.clone(), suppression.clone());
        }
        for token in &expired {
            seen.remove(token);
        }
        if let Some(once) = once {
            seen.insert(once.token.to_owned(), once.until);
        }
        Ok(Recorded::New {
            suppressed: new.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::{IfMissing, Store};
    use super::*;

    fn reopen(path: &Path) -> Store {
        super::super::tests::reopen(path).unwrap()
    }

    fn bounced(address: &str) -> (String, Suppression) {
        (
            address.to_owned(),
            Suppression::new("bounced", Some("launch")),
        )
    }

    #[test]
    fn a_token_is_taken_once_across_reopens_with_its_events_in_one_write() {
        let dir = tempfile::tempdir().unwrap();
        let until = now() + 600;
        let once = |token| Some(Once { token, until });
        {
            let store = Store::open(dir.path(), IfMissing::Create).unwrap();
            let found = [
                bounced("a@example.com"),
                bounced("b@example.com"),
                bounced("a@example.com"),
            ];
            assert_eq!(
                store.record_events(once("mailgun:t1"), &found).unwrap(),
                Recorded::New { suppressed: 2 }
            );
            assert_eq!(
                store
                    .record_events(once("mailgun:t1"), &[bounced("c@example.com")])
                    .unwrap(),
                Recorded::Seen
            );
            assert_eq!(
                store.suppressed("c@example.com"),
                None,
                "a replay records nothing"
            );
        }
        let store = reopen(dir.path());
        assert_eq!(
            store
                .record_events(once("mailgun:t1"), &[bounced("c@example.com")])
                .unwrap(),
            Recorded::Seen,
            "after a reopen"
        );
        assert_eq!(
            store.suppressions().keys().collect::<Vec<_>>(),
            ["a@example.com", "b@example.com"],
            "tokens are not addresses"
        );
        // Without a token, a request of addresses all suppressed before writes nothing.
        assert_eq!(
            store
                .record_events(None, &[bounced("a@example.com")])
                .unwrap(),
            Recorded::New { suppressed: 0 }
        );
    }

    #[test]
    fn an_expired_token_is_pruned_by_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), IfMissing::Create).unwrap();
            let stale = Once {
                token: "mailgun:old",
                until: now() - 1,
            };
            store.record_events(Some(stale), &[]).unwrap();
            let fresh = Once {
                token: "mailgun:new",
                until: now() + 600,
            };
            store.record_events(Some(fresh), &[]).unwrap();
            assert!(!store.0.seen.lock().unwrap().contains_key("mailgun:old"));
        }
        let store = reopen(dir.path());
        let seen = store.0.seen.lock().unwrap().clone();
        assert_eq!(seen.keys().collect::<Vec<_>>(), ["mailgun:new"]);
    }
}
