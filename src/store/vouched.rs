//! Intents the ledger never vouched for: calls that were never made.
//!
//! A call's intent is appended to the journal, flushed, and vouched for by the ledger
//! (which records the journal's length) before the call is made (`CampaignStore::begin`);
//! only once all three are done does `begin` return, and only then is the transport handed
//! the call. So an intent that ends past the journal length the ledger records, as the
//! ledger was found on disk, is one whose `begin` never returned: its ledger write failed
//! (a full disk), or the process died in between. Its call was never made, and its
//! recipients are certainly not sent: the intent is closed with no outcomes when the store
//! opens, and they stay due. Only an intent the ledger vouched for may stand for a call
//! that reached the provider, and only those become `uncertain` (`Store::recover`).
//!
//! Outcomes past the ledger's length are kept: they are what a call that was made did.
//!
//! # Caveats
//! - Appends group: a later group's ledger write covers an earlier intent whose own
//!   write had failed, when the disk gave room back in between. Such an intent is taken
//!   for a call that may have been made (`uncertain`), never the other way round.

use super::{Store, StoreError};

impl Store {
    /// Closes the intents of `calls` (campaign, call) still open, with no outcomes: their
    /// recipients keep what they had. Says whether it closed any (and so wrote the ledger).
    pub(super) fn close_unvouched(&self, calls: &[(String, u64)]) -> Result<bool, StoreError> {
        let mut closed = false;
        for (name, call) in calls {
            let campaign = self.campaign(name)?;
            let Some((key, intent)) = campaign.intents().into_iter().find(|(k, _)| k == call)
            else {
                continue;
            };
            tracing::info!(
                campaign = %name,
                recipients = intent.recipients.len(),
                "a call whose intent was never vouched for was never made: its recipients stay due"
            );
            campaign.finish(Some(&key), &[])?;
            closed = true;
        }
        Ok(closed)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::{IfMissing, Intent, Status, now};
    use super::*;

    fn reopen(path: &Path) -> Store {
        super::super::tests::reopen(path).unwrap()
    }

    fn intent(addresses: &[&str]) -> Intent {
        Intent {
            revision: 1,
            started: now(),
            recipients: addresses.iter().map(|a| ((*a).to_owned(), 1)).collect(),
        }
    }

    /// An intent written and flushed whose ledger write failed (the ledger on disk is put
    /// back as it was before it, as a full disk leaves it) was never acted on: closed,
    /// its recipients due, also after a second opening. One the ledger vouched for
    /// becomes `uncertain`.
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
        {
            let store = reopen(dir.path());
            let campaign = store.campaign("launch").unwrap();
            assert_eq!(campaign.intents().len(), 1, "the unvouched one is closed");
        }
        let store = reopen(dir.path());
        let campaign = store.campaign("launch").unwrap();
        assert_eq!(campaign.intents().len(), 1, "and stays closed");
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
}
