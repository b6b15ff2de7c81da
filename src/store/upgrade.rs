//! Carrying a store of an older format over into the journal, once, when it is opened.
//!
//! Format 1 (no ledger) and format 2 (a ledger; one sled value per call's outcomes) kept
//! recipients in sled. Each is checked as it was written (format 2 against its ledger),
//! read whole (`legacy`), and written into a new journal; then a ledger of format 3
//! vouches for it, and only then are the old trees dropped. Killed at any point, the next
//! open either starts over (the old ledger still stands) or finishes the drop.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;

use super::journal::{self, Entry};
use super::ledger::{self, CampaignLedger, Ledger};
use super::record::RecipientRecord;
use super::{
    FORMAT, FORMAT_KEY, STORE_KEY, Store, StoreError, io_error, legacy, open, sequence,
    suppressions,
};

/// Records per journal entry when carrying a campaign over.
const CHUNK: usize = 10_000;

impl Store {
    /// Opens sled's files of an older store (`v2`: its ledger, for format 2; `None`: no
    /// ledger, format 1) and carries them over into the journal.
    pub(super) fn upgrade(path: &Path, v2: Option<&Ledger>) -> Result<Self, StoreError> {
        if let Some(ledger) = v2 {
            open::check_size(path, ledger)?;
        }
        let db = open::sled(path)?;
        let io = io_error(path);
        check_format(path, &db, v2.is_some())?;
        let campaigns = legacy::read(&db, path)?;
        let records_tree = db.open_tree("campaigns").map_err(&io)?;
        let suppression_tree = db.open_tree(suppressions::TREE).map_err(&io)?;
        let id = match v2 {
            Some(ledger) => {
                check_v2(path, &db, ledger, &campaigns)?;
                ledger.store.clone()
            }
            None => crate::digest::hex(&rand::random::<[u8; 16]>()),
        };

        // The journal, whole, before any ledger vouches for it.
        let mut ledger = Ledger {
            format: 3,
            store: id.clone(),
            records: sequence(&records_tree).map_err(&io)?,
            suppressions: ledger::SuppressionsLedger {
                seq: sequence(&suppression_tree).map_err(&io)?,
                addresses: suppressions::load(&suppression_tree, path)?.len() as u64,
            },
            ..Ledger::default()
        };
        let bytes = carry_over(&campaigns, &mut ledger);
        let written = std::fs::File::create(path.join(journal::FILE))
            .and_then(|mut file| file.write_all(&bytes).and_then(|()| file.sync_all()));
        written.map_err(|error| StoreError::Io {
            path: path.to_owned(),
            reason: format!("cannot write its journal: {error}"),
        })?;
        ledger.journal_bytes = bytes.len() as u64;
        db.insert(STORE_KEY, id.as_bytes()).map_err(&io)?;
        db.flush().map_err(&io)?;
        ledger.db_bytes = std::fs::metadata(path.join("db")).map_or(0, |m| m.len());
        ledger::write(path, &ledger)?;
        // Vouched for: the old trees may go (`verify_open` finishes this if killed here).
        db.insert(FORMAT_KEY, FORMAT).map_err(&io)?;
        legacy::drop_trees(&db, path)?;
        tracing::info!(path = %path.display(), "carried the state store over into its journal (format 3)");
        Self::verify_open(path, &ledger, db)
    }
}

/// Refuses sled's files unless they say the format expected: 2 when there is a ledger of
/// format 2, else 1.
fn check_format(path: &Path, db: &sled::Db, ledgered: bool) -> Result<(), StoreError> {
    let io = io_error(path);
    let damaged = |reason: String| StoreError::Damaged {
        path: path.to_owned(),
        reason,
    };
    let format = db.get(FORMAT_KEY).map_err(&io)?;
    let expected: &[u8] = if ledgered { b"2" } else { b"1" };
    match format.as_deref() {
        Some(found) if found == expected => {}
        Some(b"2" | b"3") if !ledgered => {
            return Err(damaged(format!("its ledger {} is missing", ledger::FILE)));
        }
        Some(_) if ledgered => {
            return Err(damaged(
                "its data has lost the record of its format, so records are missing".to_owned(),
            ));
        }
        Some(found) => {
            return Err(StoreError::Format {
                path: path.to_owned(),
                found: String::from_utf8_lossy(found).into_owned(),
                expected: FORMAT,
            });
        }
        None => {
            return Err(damaged(format!(
                "it has sled's files but no record of its format and no ledger {}",
                ledger::FILE
            )));
        }
    }
    Ok(())
}

/// The journal that carries `campaigns` over: each campaign's records, then its calls a
/// killed run left under way; `ledger` learns each campaign's entries and counts.
fn carry_over(campaigns: &[legacy::Campaign], ledger: &mut Ledger) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut call = 1;
    for campaign in campaigns {
        let mut seq = 0;
        let records: Vec<(String, RecipientRecord)> = campaign
            .records
            .iter()
            .map(|(key, record)| (key.clone(), record.clone()))
            .collect();
        for chunk in records.chunks(CHUNK) {
            Entry::Outcomes {
                campaign: campaign.name.clone(),
                call: 0,
                outcomes: chunk.to_vec(),
            }
            .frame(&mut bytes);
            seq += 1;
        }
        for intent in &campaign.intents {
            Entry::Intent {
                campaign: campaign.name.clone(),
                call,
                intent: intent.clone(),
            }
            .frame(&mut bytes);
            call += 1;
            seq += 1;
        }
        let mut entry = CampaignLedger {
            seq,
            ..CampaignLedger::default()
        };
        entry.set_counts(&campaign.counts());
        ledger.campaigns.insert(campaign.name.clone(), entry);
    }
    bytes
}

/// Refuses a store of format 2 that does not hold what its ledger says.
fn check_v2(
    path: &Path,
    db: &sled::Db,
    ledger: &Ledger,
    campaigns: &[legacy::Campaign],
) -> Result<(), StoreError> {
    let damaged = |reason: String| StoreError::Damaged {
        path: path.to_owned(),
        reason,
    };
    let io = io_error(path);
    let id = db.get(STORE_KEY).map_err(&io)?;
    if id.as_deref() != Some(ledger.store.as_bytes()) {
        return Err(damaged(format!(
            "its data belongs to another store than its ledger {}",
            ledger::FILE
        )));
    }
    let records = sequence(&db.open_tree("campaigns").map_err(&io)?).map_err(&io)?;
    if records < ledger.records {
        return Err(damaged(format!(
            "the campaign records lost writes (at {records} of {})",
            ledger.records
        )));
    }
    let suppression_tree = db.open_tree(suppressions::TREE).map_err(&io)?;
    let listed = ledger::SuppressionsLedger {
        seq: sequence(&suppression_tree).map_err(&io)?,
        addresses: suppressions::load(&suppression_tree, path)?.len() as u64,
    };
    let expected = ledger.suppressions;
    if listed.seq < expected.seq || (listed.seq == expected.seq && listed != expected) {
        return Err(damaged(format!(
            "its suppression list lost writes (at {} of {}, {} of {} addresses)",
            listed.seq, expected.seq, listed.addresses, expected.addresses
        )));
    }
    let found: BTreeMap<&str, &legacy::Campaign> =
        campaigns.iter().map(|c| (c.name.as_str(), c)).collect();
    for (name, expected) in &ledger.campaigns {
        let (seq, counts) = found
            .get(name.as_str())
            .map(|c| (c.seq, c.counts()))
            .unwrap_or_default();
        if seq < expected.seq {
            return Err(damaged(format!(
                "campaign `{name}` lost writes (at {seq} of {})",
                expected.seq
            )));
        }
        if seq == expected.seq && counts != expected.counts() {
            return Err(damaged(format!(
                "campaign `{name}` holds {} sent, {} failed and {} uncertain, where its ledger has {}, {} and {}",
                counts.sent,
                counts.failed,
                counts.uncertain,
                expected.sent,
                expected.failed,
                expected.uncertain
            )));
        }
    }
    Ok(())
}
