//! Opening sled's files that have no ledger: a store of herald's first format is upgraded
//! in place, once; anything else is refused.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use super::ledger::{self, CampaignLedger, Ledger};
use super::{
    FIRST_FORMAT, FORMAT, FORMAT_KEY, IN_FLIGHT, RECIPIENTS, SEQ, STORE_KEY, Store, StoreError,
    campaign, io_error, open, tree_names,
};

impl Store {
    /// Opens sled's files that have no ledger: a store of herald's first format is
    /// upgraded; anything else is refused.
    pub(super) fn upgrade(path: &Path) -> Result<Self, StoreError> {
        let db = open::sled(path)?;
        let io = io_error(path);
        match db.get(FORMAT_KEY).map_err(&io)?.as_deref() {
            Some(found) if found == FIRST_FORMAT.as_bytes() => {}
            Some(found) if found == FORMAT.as_bytes() => {
                return Err(StoreError::Damaged {
                    path: path.to_owned(),
                    reason: format!("its ledger {} is missing", ledger::FILE),
                });
            }
            Some(found) => {
                return Err(StoreError::Format {
                    path: path.to_owned(),
                    found: String::from_utf8_lossy(found).into_owned(),
                    expected: FORMAT,
                });
            }
            None => {
                return Err(StoreError::Damaged {
                    path: path.to_owned(),
                    reason: format!(
                        "it has sled's files but no record of its format and no ledger {}",
                        ledger::FILE
                    ),
                });
            }
        }
        let id = crate::digest::hex(&rand::random::<[u8; 16]>());
        let mut ledger = Ledger {
            format: 2,
            store: id.clone(),
            ..Ledger::default()
        };
        let mut indexes = HashMap::new();
        for name in tree_names(&db) {
            let tree = db.open_tree(format!("{RECIPIENTS}{name}")).map_err(&io)?;
            // The first format's one intent key becomes an intent of the new kind.
            if let Some(intent) = tree.get(IN_FLIGHT).map_err(&io)? {
                let mut batch = sled::Batch::default();
                batch.insert(campaign::intent_key(0), intent);
                batch.remove(IN_FLIGHT);
                tree.apply_batch(batch).map_err(&io)?;
            }
            tree.insert(SEQ, &1u64.to_be_bytes()).map_err(&io)?;
            let (index, seq) = campaign::load(&tree, path, &name)?;
            let mut entry = CampaignLedger {
                seq,
                ..CampaignLedger::default()
            };
            entry.set_counts(&index.counts());
            ledger.campaigns.insert(name.clone(), entry);
            indexes.insert(name, Arc::new(RwLock::new(index)));
        }
        let campaigns = db.open_tree("campaigns").map_err(&io)?;
        campaigns.insert(SEQ, &1u64.to_be_bytes()).map_err(&io)?;
        ledger.records = 1;
        db.insert(STORE_KEY, id.as_bytes()).map_err(&io)?;
        db.insert(FORMAT_KEY, FORMAT).map_err(&io)?;
        db.flush().map_err(&io)?;
        tracing::info!(path = %path.display(), "upgraded the state store to format 2");
        let store = Self::assemble(path, db, ledger, indexes)?;
        store.persist_ledger()?;
        Ok(store)
    }
}
