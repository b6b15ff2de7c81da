//! Intents the ledger never vouched for: calls that were never made.
//!
//! A call's intent is written, flushed and vouched for by the ledger before the call is
//! made (`CampaignStore::begin`, through `Store::commit`); only once all three are done
//! does `begin` return, and only then is the transport handed the call. An intent is named
//! by its tree's sequence number, and the ledger records each tree's sequence number after
//! the flush that made it durable. So an intent whose number is past the ledger's, as the
//! ledger was found on disk, is one whose `begin` never returned: its flush or its ledger
//! write failed (a full disk), or the process died in between. Its call was never made,
//! and its recipients are certainly not sent: the intent is dropped when the store opens,
//! and they stay due. Only an intent the ledger vouched for may stand for a call that
//! reached the provider, and only those become `uncertain` (`Store::recover`).
//!
//! # Caveats
//! - Commits group: a later commit's ledger write covers an earlier intent whose own
//!   write had failed, when the disk gave room back in between. Such an intent is taken
//!   for a call that may have been made (`uncertain`), never the other way round.

use super::ledger::Ledger;
use super::{IN_FLIGHT, Store, StoreError};

/// The number of an intent, from its key (`\0in-flight\0` and the number).
fn number(key: &[u8]) -> Option<u64> {
    let number = key.strip_prefix(IN_FLIGHT)?.strip_prefix(&[0])?;
    Some(u64::from_be_bytes(number.try_into().ok()?))
}

impl Store {
    /// Drops the intents that `on_disk`, the ledger as the store was found, does not vouch
    /// for; returns how many recipients they named.
    pub(super) fn drop_unvouched(&self, on_disk: &Ledger) -> Result<u64, StoreError> {
        let mut dropped = 0;
        for name in self.campaign_names()? {
            let vouched = on_disk.campaigns.get(&name).map_or(0, |c| c.seq);
            let campaign = self.campaign(&name)?;
            for (key, intent) in campaign.intents()? {
                // A key of another form is vouched for: taken as a call that may be made.
                if number(&key).is_some_and(|n| n > vouched) {
                    tracing::info!(
                        campaign = %name,
                        recipients = intent.recipients.len(),
                        "a call whose intent was never made durable was never made: its recipients stay due"
                    );
                    dropped += intent.recipients.len() as u64;
                    campaign.finish(Some(&key), &[])?;
                }
            }
        }
        Ok(dropped)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::{Duration, Instant};

    use super::super::{IfMissing, Intent, Status, now};
    use super::*;

    fn reopen(path: &Path) -> Store {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match Store::open(path, IfMissing::Refuse) {
                Err(StoreError::Locked { .. }) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                other => return other.unwrap(),
            }
        }
    }

    fn intent(addresses: &[&str]) -> Intent {
        Intent {
            revision: 1,
            started: now(),
            recipients: addresses.iter().map(|a| ((*a).to_owned(), 1)).collect(),
        }
    }

    /// An intent written and flushed whose ledger write failed (the ledger on disk is put
    /// back as it was before it, as a full disk leaves it) was never acted on: dropped,
    /// its recipients due. One the ledger vouched for becomes `uncertain`.
    #[test]
    fn only_intents_the_ledger_vouched_for_become_uncertain() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = dir.path().join(super::super::ledger::FILE);
        {
            let store = Store::open(dir.path(), IfMissing::Create).unwrap();
            let campaign = store.campaign("launch").unwrap();
            campaign.begin(&intent(&["a@example.com"])).unwrap();
            let before = std::fs::read(&ledger).unwrap();
            campaign.begin(&intent(&["b@example.com"])).unwrap();
            std::fs::write(&ledger, before).unwrap();
        }
        let store = reopen(dir.path());
        let campaign = store.campaign("launch").unwrap();
        assert_eq!(
            campaign.intents().unwrap().len(),
            1,
            "the unvouched one is gone"
        );
        assert_eq!(
            store.recover().unwrap().get("launch").copied(),
            Some(1),
            "only the vouched one is uncertain"
        );
        let campaign = store.campaign("launch").unwrap();
        assert_eq!(
            campaign.get("a@example.com").unwrap().map(|r| r.status),
            Some(Status::Uncertain)
        );
        assert_eq!(campaign.get("b@example.com").unwrap(), None, "due");
    }

    #[test]
    fn intent_numbers_come_from_their_keys() {
        assert_eq!(number(&super::super::campaign::intent_key(7)), Some(7));
        assert_eq!(number(IN_FLIGHT), None, "the first format's one key");
        assert_eq!(number(b"user@example.com"), None);
    }
}
