//! Opening a store that has a ledger: it is refused unless sled holds everything the
//! ledger says it must (the format, the store's identity, every tree's sequence number and
//! every campaign's counts). This is how herald notices what sled lost silently. What sled
//! holds beyond the ledger is kept, except intents the ledger never vouched for (see
//! `vouched`).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, RwLock};

use super::ledger::{self, CampaignLedger, Ledger};
use super::{
    FORMAT, FORMAT_KEY, RECIPIENTS, STORE_KEY, Store, StoreError, campaign, io_error, open,
    sequence, suppressions, tree_names,
};

impl Store {
    /// Opens a store that has a ledger, and refuses it unless sled holds everything the
    /// ledger says it must.
    pub(super) fn verify(path: &Path, ledger: &Ledger) -> Result<Self, StoreError> {
        if ledger.format != 2 {
            return Err(StoreError::Format {
                path: path.to_owned(),
                found: ledger.format.to_string(),
                expected: FORMAT,
            });
        }
        open::check_size(path, ledger)?;
        let db = open::sled(path)?;
        let damaged = |reason: String| StoreError::Damaged {
            path: path.to_owned(),
            reason,
        };
        let io = io_error(path);
        let format = db.get(FORMAT_KEY).map_err(&io)?;
        if format.as_deref() != Some(FORMAT.as_bytes()) {
            return Err(damaged(
                "its data has lost the record of its format, so records are missing".to_owned(),
            ));
        }
        let id = db.get(STORE_KEY).map_err(&io)?;
        if id.as_deref() != Some(ledger.store.as_bytes()) {
            return Err(damaged(format!(
                "its data belongs to another store than its ledger {}",
                ledger::FILE
            )));
        }
        let campaigns = db.open_tree("campaigns").map_err(&io)?;
        let records = sequence(&campaigns).map_err(&io)?;
        if records < ledger.records {
            return Err(damaged(format!(
                "the campaign records lost writes (at {records} of {})",
                ledger.records
            )));
        }
        let mut checked = Ledger {
            records,
            campaigns: BTreeMap::new(),
            ..ledger.clone()
        };
        let mut indexes = HashMap::new();
        for name in tree_names(&db) {
            let tree = db.open_tree(format!("{RECIPIENTS}{name}")).map_err(&io)?;
            let (index, seq) = campaign::load(&tree, path, &name)?;
            let mut entry = CampaignLedger {
                seq,
                ..CampaignLedger::default()
            };
            entry.set_counts(&index.counts());
            checked.campaigns.insert(name.clone(), entry);
            indexes.insert(name, Arc::new(RwLock::new(index)));
        }
        for (name, expected) in &ledger.campaigns {
            let found = checked.campaigns.get(name).copied().unwrap_or_default();
            if found.seq < expected.seq {
                return Err(damaged(format!(
                    "campaign `{name}` lost writes (at {} of {})",
                    found.seq, expected.seq
                )));
            }
            if found.seq == expected.seq && found != *expected {
                return Err(damaged(format!(
                    "campaign `{name}` holds {} sent, {} failed and {} uncertain, where its ledger has {}, {} and {}",
                    found.sent,
                    found.failed,
                    found.uncertain,
                    expected.sent,
                    expected.failed,
                    expected.uncertain
                )));
            }
        }
        let suppression_tree = db.open_tree(suppressions::TREE).map_err(&io)?;
        let found = ledger::SuppressionsLedger {
            seq: sequence(&suppression_tree).map_err(&io)?,
            addresses: suppressions::load(&suppression_tree, path)?.len() as u64,
        };
        let expected = ledger.suppressions;
        if found.seq < expected.seq || (found.seq == expected.seq && found != expected) {
            return Err(damaged(format!(
                "its suppression list lost writes (at {} of {}, {} of {} addresses)",
                found.seq, expected.seq, found.addresses, expected.addresses
            )));
        }
        checked.suppressions = found;
        let store = Self::assemble(path, db, checked.clone(), indexes)?;
        if checked != *ledger {
            store.persist_ledger()?;
        }
        // Before anyone reads the intents: those never vouched for were never acted on.
        store.drop_unvouched(ledger)?;
        Ok(store)
    }
}
