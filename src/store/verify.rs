//! Opening a store that has a ledger: it is refused unless sled and the journal hold
//! everything the ledger says they must: the format, the store's identity, each sled
//! tree's sequence number, the journal's length, and each campaign's entries and counts
//! at that length. This is how herald notices what was lost. What the journal holds
//! beyond the ledger's length is kept, except intents (see `vouched`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use super::campaign::CampaignState;
use super::journal::{self, Entry};
use super::ledger::{self, CampaignLedger, Ledger};
use super::{
    FORMAT, FORMAT_KEY, Opened, STORE_KEY, Store, StoreError, io_error, legacy, open, sequence,
    suppressions,
};

impl Store {
    /// Opens a store that has a ledger: one of the journal's format is checked; an older
    /// one is checked the way it was written, then carried over (see `upgrade`).
    pub(super) fn verify(path: &Path, ledger: &Ledger) -> Result<Self, StoreError> {
        match ledger.format {
            3 => {}
            2 => return Self::upgrade(path, Some(ledger)),
            other => {
                return Err(StoreError::Format {
                    path: path.to_owned(),
                    found: other.to_string(),
                    expected: FORMAT,
                });
            }
        }
        open::check_size(path, ledger)?;
        let db = open::sled(path)?;
        Self::verify_open(path, ledger, db)
    }

    /// Checks an open store of the journal's format against its ledger, and assembles it.
    pub(super) fn verify_open(
        path: &Path,
        ledger: &Ledger,
        db: sled::Db,
    ) -> Result<Self, StoreError> {
        let damaged = |reason: String| StoreError::Damaged {
            path: path.to_owned(),
            reason,
        };
        let io = io_error(path);
        match db.get(FORMAT_KEY).map_err(&io)?.as_deref() {
            Some(b"3") => {}
            // An upgrade killed after its journal and ledger were written: finish it.
            Some(b"1" | b"2") => {
                db.insert(FORMAT_KEY, FORMAT).map_err(&io)?;
                legacy::drop_trees(&db, path)?;
            }
            _ => {
                return Err(damaged(
                    "its data has lost the record of its format, so records are missing".to_owned(),
                ));
            }
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
        let read = replay(path, ledger)?;
        for (name, expected) in &ledger.campaigns {
            let found = read.vouched.get(name).copied().unwrap_or_default();
            if found.seq < expected.seq {
                return Err(damaged(format!(
                    "campaign `{name}` lost writes (at {} of {})",
                    found.seq, expected.seq
                )));
            }
            if found != *expected {
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
        let checked = Ledger {
            records,
            suppressions: found,
            campaigns: read.latest,
            journal_bytes: read.length,
            ..ledger.clone()
        };
        let persist = checked != *ledger;
        let unvouched = read.unvouched;
        let store = Self::assemble(
            path,
            db,
            Opened {
                ledger: checked,
                journal_bytes: read.length,
                states: read.states,
                next_call: read.next_call,
            },
        )?;
        // Before anyone reads the intents: those never vouched for were never acted on.
        // Closing them writes the ledger too, vouching for them and their closing at once.
        if !store.close_unvouched(&unvouched)? && persist {
            store.persist_ledger()?;
        }
        Ok(store)
    }
}

/// What a reading of the journal found.
struct Replayed {
    states: HashMap<String, Arc<CampaignState>>,
    /// Each campaign's entries and counts where the ledger's length ends.
    vouched: HashMap<String, CampaignLedger>,
    /// Each campaign's entries and counts at the end.
    latest: std::collections::BTreeMap<String, CampaignLedger>,
    length: u64,
    next_call: u64,
    /// Calls whose intent ends past the ledger's length, by campaign: never made.
    unvouched: Vec<(String, u64)>,
}

/// Reads the journal once, building every campaign's index and calls under way.
fn replay(path: &Path, ledger: &Ledger) -> Result<Replayed, StoreError> {
    let mut states: HashMap<String, Arc<CampaignState>> = HashMap::new();
    let mut seqs: HashMap<String, u64> = HashMap::new();
    let mut vouched: Option<HashMap<String, CampaignLedger>> = None;
    let mut next_call = 1;
    let mut unvouched = Vec::new();
    let tally = |states: &HashMap<String, Arc<CampaignState>>, seqs: &HashMap<String, u64>| {
        states
            .iter()
            .map(|(name, state)| {
                let mut entry = CampaignLedger {
                    seq: seqs.get(name).copied().unwrap_or_default(),
                    ..CampaignLedger::default()
                };
                entry.set_counts(&state.counts());
                (name.clone(), entry)
            })
            .collect::<HashMap<_, _>>()
    };
    if ledger.journal_bytes == 0 {
        vouched = Some(HashMap::new());
    }
    let length = journal::scan(path, ledger.journal_bytes, |entry, end| {
        let (campaign, call) = match &entry {
            Entry::Intent { campaign, call, .. } | Entry::Outcomes { campaign, call, .. } => {
                (campaign.clone(), *call)
            }
        };
        next_call = next_call.max(call + 1);
        if matches!(entry, Entry::Intent { .. }) && end > ledger.journal_bytes {
            unvouched.push((campaign.clone(), call));
        }
        *seqs.entry(campaign.clone()).or_default() += 1;
        states.entry(campaign).or_default().apply(entry);
        if end == ledger.journal_bytes {
            vouched = Some(tally(&states, &seqs));
        }
        Ok(())
    })?;
    let vouched = vouched.ok_or_else(|| StoreError::Damaged {
        path: path.to_owned(),
        reason: format!(
            "its journal has no entry ending at byte {}, where its ledger says one does",
            ledger.journal_bytes
        ),
    })?;
    let latest = tally(&states, &seqs).into_iter().collect();
    Ok(Replayed {
        states,
        vouched,
        latest,
        length,
        next_call,
        unvouched,
    })
}
