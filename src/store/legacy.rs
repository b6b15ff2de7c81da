//! Stores written before the journal (formats 1 and 2) kept each campaign's recipients in
//! a sled tree `recipients/<campaign>`: records under the address itself (format 1),
//! then one `\0outcomes\0<seq>` value per call (format 2), `\0in-flight…` intents, and
//! `\0seq`. They are read here once, whole, to be carried over into the journal.

use std::collections::BTreeMap;
use std::path::Path;

use super::record::{Intent, RecipientRecord, StatusCounts};
use super::{StoreError, encoding, io_error};

const RECIPIENTS: &str = "recipients/";
const SEQ: &[u8] = b"\0seq";
const IN_FLIGHT: &[u8] = b"\0in-flight";
const OUTCOMES: &[u8] = b"\0outcomes";

/// One campaign of an older store, as it stands.
pub struct Campaign {
    pub name: String,
    /// Every recipient's latest record, by address.
    pub records: BTreeMap<String, RecipientRecord>,
    /// Calls a killed run left under way.
    pub intents: Vec<Intent>,
    /// The tree's sequence number (0 in format 1).
    pub seq: u64,
}

impl Campaign {
    pub fn counts(&self) -> StatusCounts {
        let mut counts = StatusCounts::default();
        for record in self.records.values() {
            counts.add(record.status);
        }
        counts
    }
}

/// The campaigns that have a recipients tree.
pub fn names(db: &sled::Db) -> Vec<String> {
    db.tree_names()
        .iter()
        .filter_map(|n| std::str::from_utf8(n).ok()?.strip_prefix(RECIPIENTS))
        .map(str::to_owned)
        .collect()
}

/// Reads every campaign's tree whole; anything unreadable is damage.
pub fn read(db: &sled::Db, path: &Path) -> Result<Vec<Campaign>, StoreError> {
    names(db)
        .into_iter()
        .map(|name| {
            let tree = db
                .open_tree(format!("{RECIPIENTS}{name}"))
                .map_err(io_error(path))?;
            read_tree(&tree, path, name)
        })
        .collect()
}

/// Drops every recipients tree, once the journal holds what they held.
pub fn drop_trees(db: &sled::Db, path: &Path) -> Result<(), StoreError> {
    for name in names(db) {
        db.drop_tree(format!("{RECIPIENTS}{name}"))
            .map_err(io_error(path))?;
    }
    db.flush().map_err(io_error(path))?;
    Ok(())
}

fn read_tree(tree: &sled::Tree, path: &Path, name: String) -> Result<Campaign, StoreError> {
    let io = io_error(path);
    let corrupt = |key: String, reason: String| StoreError::Damaged {
        path: path.to_owned(),
        reason: format!("the record `{name}/{key}` cannot be read: {reason}"),
    };
    let mut records = BTreeMap::new();
    for entry in tree.range(&[1u8][..]..) {
        let (key, value) = entry.map_err(&io)?;
        let key = String::from_utf8_lossy(&key).into_owned();
        let record = encoding::decode(&value).map_err(|reason| corrupt(key.clone(), reason))?;
        records.insert(key, record);
    }
    for entry in tree.scan_prefix(OUTCOMES) {
        let (key, value) = entry.map_err(&io)?;
        let label = String::from_utf8_lossy(&key).into_owned();
        let outcomes =
            encoding::decode_outcomes(&value).map_err(|reason| corrupt(label.clone(), reason))?;
        for (key, record) in outcomes {
            match record {
                Some(record) => records.insert(key, record),
                None => records.remove(&key),
            };
        }
    }
    let mut intents = Vec::new();
    for entry in tree.scan_prefix(IN_FLIGHT) {
        let (key, value) = entry.map_err(&io)?;
        let intent: Intent = serde_json::from_slice(&value).map_err(|error| {
            corrupt(
                String::from_utf8_lossy(&key).into_owned(),
                error.to_string(),
            )
        })?;
        intents.push(intent);
    }
    let seq = tree
        .get(SEQ)
        .map_err(&io)?
        .and_then(|v| v.as_ref().try_into().ok())
        .map_or(0, u64::from_be_bytes);
    Ok(Campaign {
        name,
        records,
        intents,
        seq,
    })
}
